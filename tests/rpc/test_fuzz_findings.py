"""What fuzzing the RPC sessions found (``python -m fuzz --target rpc_server --target rpc_client``),
each the smallest input that showed it."""

from __future__ import annotations

from services import Echo

import jetwire
from jetwire import rpc
from jetwire.rpc.session import Call, ServerSession

ECHO = rpc.spec_of(Echo)


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text")


def test_a_debug_server_answers_an_exception_whose_text_cannot_be_made() -> None:
    # r[jetstream.rpc.mux.one-response]: str() of the exception raised inside fail(), so the
    # call was never answered and the client waited for ever
    server = ServerSession(ECHO, debug=True)
    server.receive_data(bytes(ECHO.Tframe(1, ECHO.by_name["fail"].request()).encode()))
    call = server.next_event()
    assert isinstance(call, Call)
    data = server.fail(call, ValueError(Unprintable()))
    answer = ECHO.Rframe.decode(data)
    assert answer.tag == 1 and isinstance(answer.msg, jetwire.Error)
    assert answer.msg.message.startswith("fail failed: ValueError: ")
    assert server.in_flight == 0


def _answer_of(server: ServerSession, error: BaseException) -> jetwire.Error:
    server.receive_data(bytes(ECHO.Tframe(1, ECHO.by_name["fail"].request()).encode()))
    call = server.next_event()
    assert isinstance(call, Call)
    answer = ECHO.Rframe.decode(server.fail(call, error))
    assert answer.tag == 1 and isinstance(answer.msg, jetwire.Error)
    return answer.msg


def test_an_error_whose_message_has_a_lone_surrogate_is_answered() -> None:
    # the Error does not encode (a lone surrogate has no UTF-8); the error about that quoted
    # the message, and cutting it to size raised UnicodeEncodeError: no answer at all
    message = _answer_of(ServerSession(ECHO), jetwire.Error("no file \udcff here")).message
    assert message.startswith("the error could not be encoded") and "no file ? here" in message


def test_a_debug_server_answers_an_exception_naming_a_file_read_with_surrogateescape() -> None:
    error = ValueError("cannot parse " + b"bad\xff".decode(errors="surrogateescape"))
    answer = _answer_of(ServerSession(ECHO, debug=True), error)
    assert answer.message == "fail failed: ValueError: cannot parse bad?"

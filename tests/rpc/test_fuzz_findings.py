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

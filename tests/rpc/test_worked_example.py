"""The spec's worked example (rpc.md §12), byte for byte, in both directions
(r[jetstream.rpc.example.bytes]): every frame encodes to exactly the bytes shown and decodes
from them to the same type, tag and message; then the same frames go through the sans-I/O
sessions, as a TS-style client and as a server would exchange them.

The service is the spec's ``Echo``: ``ping(message: String) -> String`` at index 0 and
``fail() -> ()`` at index 1, name ``echo``, version ``rs.jetstream.proto/echo/1.0.0+abcdef12``.
"""

from __future__ import annotations

import re

import pytest

import jetwire
from jetwire import rpc
from jetwire.rpc import session
from jetwire.rpc.protocol import NOTAG, RERROR, RVERSION, TVERSION, Rversion, Tversion
from jetwire.stdtypes import Backtrace, BacktraceFrame, FieldPair, Level

VERSION = "rs.jetstream.proto/echo/1.0.0+abcdef12"


@rpc.service(version="1.0.0")
class Echo(rpc.Service):
    async def ping(self, message: str) -> str:
        raise NotImplementedError

    async def fail(self) -> None:
        raise NotImplementedError


SPEC = rpc.spec_of(Echo)
Tframe, Rframe = SPEC.Tframe, SPEC.Rframe
Tping, Rping = SPEC.by_name["ping"].request, SPEC.by_name["ping"].response
Tfail, Rfail = SPEC.by_name["fail"].request, SPEC.by_name["fail"].response


def spec_bytes(text: str) -> bytes:
    """The spec's notation: two-digit hex bytes and "quoted" UTF-8 text, separated by blanks."""
    out = bytearray()
    for quoted, byte in re.findall(r'"([^"]*)"|(\S+)', text):
        out += quoted.encode() if quoted or not byte else bytes.fromhex(byte)
    return bytes(out)


VERSION_BYTES = '26 00 "rs.jetstream.proto/echo/1.0.0+abcdef12"'

# The non-empty backtrace body fragment of §12, for decoders.
BACKTRACE_FRAGMENT = spec_bytes("""
    07 00  00 00  0b 00 "src/echo.rs"  04 00 "echo"  04 00 "fail"  0c 00 "echo::server"
           01 00 "x"  01 00 "1"
    01 00  04 00 "fail"  03 00  02 00  04 00  01 00  2a 00  01 00  05 00 06 00  02
""")
BACKTRACE = Backtrace(
    intern_table=("", "src/echo.rs", "echo", "fail", "echo::server", "x", "1"),
    frames=(BacktraceFrame(msg="fail", name=3, target=2, module=4, file=1, line=42,
                           fields=(FieldPair(5, 6),), level=Level.INFO),),
)

# (what, frame class, frame, the spec's bytes)
FRAMES = [
    ("Tversion from a TS-style client, tag 0xFFFF, msize 65536", Tframe,
     Tframe(NOTAG, Tversion(msize=65536, version=VERSION)),
     "33 00 00 00  64  ff ff  00 00 01 00 " + VERSION_BYTES),
    ("Rversion from a Rust router to a Rust client's tag 1, msize 0xFFFFFFFF", Rframe,
     Rframe(1, Rversion(msize=0xFFFFFFFF, version=VERSION)),
     "33 00 00 00  65  01 00  ff ff ff ff " + VERSION_BYTES),
    ("Rversion from the TS server to the TS Tversion", Rframe,
     Rframe(NOTAG, Rversion(msize=65536, version=VERSION)),
     "33 00 00 00  65  ff ff  00 00 01 00 " + VERSION_BYTES),
    ("rejection, tag 1", Rframe,
     Rframe(1, Rversion(msize=0, version="unknown")),
     '14 00 00 00  65  01 00  00 00 00 00  07 00 "unknown"'),
    ('ping("hi"), tag 1', Tframe, Tframe(1, Tping(message="hi")), "0b 00 00 00  66  01 00  02 00 68 69"),
    ('Ok("hi"), tag 1', Rframe, Rframe(1, Rping(value="hi")), "0b 00 00 00  67  01 00  02 00 68 69"),
    ('ping("héllo"), tag 2', Tframe, Tframe(2, Tping(message="héllo")),
     "0f 00 00 00  66  02 00  06 00 68 c3 a9 6c 6c 6f"),
    ("fail(), tag 2", Tframe, Tframe(2, Tfail()), "07 00 00 00  68  02 00"),
    ("Ok(()), tag 2", Rframe, Rframe(2, Rfail()), "07 00 00 00  69  02 00"),
    ('a Rust server\'s Error::with_code("boom", "E1"), no span trace', Rframe,
     Rframe(2, jetwire.Error("boom", code="E1", backtrace=Backtrace(intern_table=(), frames=()))),
     "18 00 00 00  05  02 00  04 00 62 6f 6f 6d  01 02 00 45 31  00  00  00 00  00 00"),
    ('a TS handler\'s new Error("boom")', Rframe,
     Rframe(2, jetwire.Error("Error: boom", backtrace=Backtrace(intern_table=("",), frames=()))),
     "1d 00 00 00  05  02 00  0b 00 45 72 72 6f 72 3a 20 62 6f 6f 6d  00 00 00  01 00 00 00  00 00"),
]
IDS = [what for what, *_ in FRAMES]


@pytest.mark.parametrize(("what", "frame_class", "frame", "text"), FRAMES, ids=IDS)
def test_each_frame_encodes_to_the_spec_bytes(what, frame_class, frame, text):
    """r[jetstream.rpc.example.bytes] r[jetstream.rpc.frame.header]"""
    assert frame.encode() == spec_bytes(text)
    assert frame.byte_size() == len(spec_bytes(text))


@pytest.mark.parametrize(("what", "frame_class", "frame", "text"), FRAMES, ids=IDS)
def test_each_frame_decodes_from_the_spec_bytes(what, frame_class, frame, text):
    """r[jetstream.rpc.example.bytes]"""
    data = spec_bytes(text)
    decoded = frame_class.decode(data)
    assert type(decoded.msg) is type(frame.msg)
    assert decoded.tag == frame.tag
    assert decoded == frame
    assert data[4] == {Tversion: TVERSION, Rversion: RVERSION, jetwire.Error: RERROR}.get(
        type(frame.msg), data[4])


def test_the_type_numbers_are_the_spec_s():
    """r[jetstream.rpc.example.bytes] r[jetstream.rpc.numbering.method-ids]: TPING 102, RPING 103,
    TFAIL 104, RFAIL 105; the name is ``echo``."""
    assert [(m.name, m.request_type, m.response_type) for m in SPEC.methods] == [("ping", 102, 103), ("fail", 104, 105)]
    assert Echo.NAME == "echo"
    assert Echo.VERSION.startswith("rs.jetstream.proto/echo/1.0.0+")
    assert len(VERSION.encode()) == 0x26 == 38


def test_the_non_empty_backtrace_fragment_decodes_and_encodes():
    """r[jetstream.rpc.example.bytes]: the §12 backtrace body fragment, both ways."""
    assert jetwire.decode(Backtrace, BACKTRACE_FRAGMENT) == BACKTRACE
    assert jetwire.encode(BACKTRACE) == BACKTRACE_FRAGMENT
    frame = BACKTRACE.frames[0]
    assert [BACKTRACE.lookup(i) for i in (frame.name, frame.target, frame.module, frame.file)] == [
        "fail", "echo", "echo::server", "src/echo.rs"]
    assert [(BACKTRACE.lookup(p.key), BACKTRACE.lookup(p.value)) for p in frame.fields] == [("x", "1")]


def test_an_error_frame_carrying_the_backtrace_fragment():
    """r[jetstream.rpc.example.bytes] r[jetstream.rpc.error.frame]: the Rust error of §12 with the
    non-empty backtrace in place of the empty one, framed with tag 2."""
    body = spec_bytes("04 00 62 6f 6f 6d  01 02 00 45 31  00  00") + BACKTRACE_FRAGMENT
    data = (7 + len(body)).to_bytes(4, "little") + bytes([RERROR]) + (2).to_bytes(2, "little") + body
    error = jetwire.Error("boom", code="E1", backtrace=BACKTRACE)
    assert Rframe(2, error).encode() == data
    decoded = Rframe.decode(data)
    assert decoded.tag == 2 and decoded.msg == error and decoded.msg.backtrace == BACKTRACE


# ---------------------------------------------------------------------------------------------
# The same bytes through the sessions

def spec_frames(*texts: str) -> bytes:
    return b"".join(spec_bytes(t) for t in texts)


TS_TVERSION = FRAMES[0][3]
TS_RVERSION = FRAMES[2][3]
PING = SPEC.by_name["ping"]
FAIL = SPEC.by_name["fail"]


def drain(session) -> list:
    events = []
    while (event := session.next_event()) is not None:
        events.append(event)
    return events


def handshake(client_msize: int = 65536) -> tuple[session.ClientSession, session.ServerSession]:
    client = session.ClientSession(SPEC, max_frame_size=client_msize, version=VERSION)
    server = session.ServerSession(SPEC)
    server.receive_data(client.start())
    (answer,) = drain(server)
    client.receive_data(answer.data)
    assert drain(client) == [session.Negotiated(client_msize, VERSION)]
    return client, server


def test_a_ts_style_handshake_through_the_sessions():
    """r[jetstream.rpc.example.bytes] r[jetstream.rpc.version.client-tag] r[jetstream.rpc.version.reply-tag]:
    the client's Tversion is the spec's TS-style one (tag 0xFFFF, msize 65536), and the server
    answers it as the spec shows, with the client's tag, msize and version string."""
    client = session.ClientSession(SPEC, max_frame_size=65536, version=VERSION)
    assert client.start() == spec_bytes(TS_TVERSION)
    server = session.ServerSession(SPEC)
    server.receive_data(spec_bytes(TS_TVERSION))
    assert drain(server) == [session.Send(spec_bytes(TS_RVERSION))]
    client.receive_data(spec_bytes(TS_RVERSION))
    assert drain(client) == [session.Negotiated(65536, VERSION)]


def test_a_rust_router_s_rversion_through_the_server_session():
    """r[jetstream.rpc.example.bytes] r[jetstream.rpc.version.reply-tag]: a Rust client's Tversion
    (tag 1, msize 0xFFFFFFFF) to a server whose own limit is as large is answered with the bytes
    the spec shows a Rust router sending."""
    server = session.ServerSession(SPEC, max_frame_size=0xFFFFFFFF)
    server.receive_data(Tframe(1, Tversion(0xFFFFFFFF, VERSION)).encode())
    assert drain(server) == [session.Send(spec_bytes(FRAMES[1][3]))]


def test_the_rejection_through_the_server_session():
    """r[jetstream.rpc.example.bytes] r[jetstream.rpc.version.reject-unknown]: a Tversion naming
    another service (tag 1) is answered with the spec's rejection bytes, then the stream ends."""
    server = session.ServerSession(SPEC)
    server.receive_data(Tframe(1, Tversion(0xFFFFFFFF, "rs.jetstream.proto/other/1.0.0+abcdef12")).encode())
    events = drain(server)
    assert events[0] == session.Send(spec_bytes(FRAMES[3][3]))
    assert [type(e) for e in events[1:]] == [session.Violation]
    client = session.ClientSession(SPEC, version=VERSION)
    client.start()
    client.receive_data(spec_bytes(FRAMES[3][3]))
    (broken,) = drain(client)
    assert isinstance(broken, session.Broken) and isinstance(broken.error, rpc.VersionError)


def test_the_calls_and_answers_through_the_sessions():
    """r[jetstream.rpc.example.bytes]: ping("hi") as tag 1 and ping("héllo") as tag 2, each
    request and answer the spec's bytes, and fail() answered with ``Ok(())``."""
    client, server = handshake()
    tag, data = client.call(PING, Tping(message="hi"))
    assert (tag, data) == (1, spec_bytes('0b 00 00 00  66  01 00  02 00 68 69'))
    tag, data = client.call(PING, Tping(message="héllo"))
    assert (tag, data) == (2, spec_bytes("0f 00 00 00  66  02 00  06 00 68 c3 a9 6c 6c 6f"))
    server.receive_data(spec_frames('0b 00 00 00  66  01 00  02 00 68 69',
                                    "0f 00 00 00  66  02 00  06 00 68 c3 a9 6c 6c 6f"))
    hi, hello = drain(server)
    assert (hi.tag, hi.method, hi.request) == (1, PING, Tping(message="hi"))
    assert (hello.tag, hello.request) == (2, Tping(message="héllo"))
    assert server.respond(hi, "hi") == spec_bytes("0b 00 00 00  67  01 00  02 00 68 69")
    client.receive_data(spec_bytes("0b 00 00 00  67  01 00  02 00 68 69"))
    assert drain(client) == [session.Reply(1, "hi")]
    assert server.respond(hello, "héllo") == Rframe(2, Rping(value="héllo")).encode()

    client, server = handshake()
    client.call(PING, Tping(message="x"))  # tag 1 in flight: fail() gets tag 2, as in the spec
    tag, data = client.call(FAIL, Tfail())
    assert (tag, data) == (2, spec_bytes("07 00 00 00  68  02 00"))
    server.receive_data(data)
    (call,) = drain(server)
    assert (call.tag, call.method, call.request) == (2, FAIL, Tfail())
    answer = server.respond(call, None)
    assert answer == spec_bytes("07 00 00 00  69  02 00")
    client.receive_data(answer)
    assert drain(client) == [session.Reply(2, None)]


@pytest.mark.parametrize(("error", "text"), [
    (jetwire.Error("boom", code="E1", backtrace=Backtrace(intern_table=(), frames=())), FRAMES[9][3]),
    (jetwire.Error("Error: boom"), FRAMES[10][3]),
    (jetwire.Error("boom", code="E1", backtrace=BACKTRACE), None),
], ids=["rust-style", "ts-style", "non-empty backtrace"])
def test_a_failure_through_the_sessions(error, text):
    """r[jetstream.rpc.example.bytes] r[jetstream.rpc.error.frame] r[jetstream.rpc.error.client-surface]:
    fail() raising the spec's errors is answered with the spec's error frames (a jetwire.Error
    with the default backtrace is the TS-style one), and the client gets the error whole,
    message, code, help, url and backtrace."""
    client, server = handshake()
    client.call(PING, Tping(message="x"))
    _, data = client.call(FAIL, Tfail())
    server.receive_data(data)
    (call,) = drain(server)
    answer = server.fail(call, error)
    if text is not None:
        assert answer == spec_bytes(text)
    else:
        assert answer == Rframe(2, error).encode() and answer.endswith(BACKTRACE_FRAGMENT)
    client.receive_data(answer)
    (failed,) = drain(client)
    assert isinstance(failed, session.Failed) and failed.tag == 2
    received = failed.error
    assert isinstance(received, jetwire.Error)
    assert (received.message, received.code, received.help, received.url, received.backtrace) == (
        error.message, error.code, error.help, error.url, error.backtrace)


def test_the_pipelined_session():
    """r[jetstream.rpc.example.bytes] r[jetstream.rpc.mux.pipelining] r[jetstream.rpc.mux.out-of-order]:
    Tping(1, "a"), Tfail(2), Tping(3, "ccc") written in one go; the server answers tag 1, then
    tag 3, then tag 2's error frame, and the client matches each answer by its tag."""
    client, server = handshake()
    sent = [client.call(PING, Tping(message="a")), client.call(FAIL, Tfail()), client.call(PING, Tping(message="ccc"))]
    assert [tag for tag, _ in sent] == [1, 2, 3]
    written = b"".join(data for _, data in sent)
    assert written == spec_frames('0a 00 00 00  66  01 00  01 00 "a"', "07 00 00 00  68  02 00",
                                  '0c 00 00 00  66  03 00  03 00 "ccc"')
    server.receive_data(written)
    a, fail, ccc = drain(server)
    assert [(c.tag, c.method.name) for c in (a, fail, ccc)] == [(1, "ping"), (2, "fail"), (3, "ping")]
    rust_error = jetwire.Error("boom", code="E1", backtrace=Backtrace(intern_table=(), frames=()))
    answers = server.respond(a, "a") + server.respond(ccc, "ccc") + server.fail(fail, rust_error)
    assert answers == spec_frames('0a 00 00 00  67  01 00  01 00 "a"', '0c 00 00 00  67  03 00  03 00 "ccc"',
                                  FRAMES[9][3])
    client.receive_data(answers)
    assert drain(client) == [session.Reply(1, "a"), session.Reply(3, "ccc"), session.Failed(2, rust_error)]
    assert client.in_flight == 0

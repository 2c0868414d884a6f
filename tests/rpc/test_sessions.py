"""The sans-I/O sessions against the RPC spec, rule by rule: ``ClientSession`` and
``ServerSession`` driven with bytes only (no sockets), the bytes worked out from
../shared/spec/rpc.md (§1, §5, §11, §12)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from services import Echo, Toolbox

import jetwire
from jetwire import rpc
from jetwire.rpc.session import (
    MAX_TAGS,
    Broken,
    Call,
    ClientSession,
    Failed,
    Ignored,
    Negotiated,
    Reply,
    Send,
    ServerSession,
    Stray,
    Violation,
)

ECHO = rpc.spec_of(Echo)
PING = ECHO.by_name["ping"]
FAIL = ECHO.by_name["fail"]
TOOLBOX = rpc.spec_of(Toolbox)

SPEC_VERSION = "rs.jetstream.proto/echo/1.0.0+abcdef12"
"""The version string of the spec's worked example (§12): 38 bytes."""
VERSION_HEX = SPEC_VERSION.encode().hex()


def h(text: str) -> bytes:
    """Bytes from hex written as the spec writes it, spaces anywhere."""
    return bytes.fromhex(text)


def frame(type_: int, tag: int, body: bytes = b"") -> bytes:
    return (7 + len(body)).to_bytes(4, "little") + bytes([type_]) + tag.to_bytes(2, "little") + body


def wire_str(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return len(raw).to_bytes(2, "little") + raw


def drain(session: ClientSession | ServerSession) -> list[Any]:
    events = []
    while (event := session.next_event()) is not None:
        events.append(event)
    return events


def feed(session: ClientSession | ServerSession, data: bytes) -> list[Any]:
    session.receive_data(data)
    return drain(session)


def rversion(tag: int = 0xFFFF, msize: int = 65536, version: str = SPEC_VERSION) -> bytes:
    return frame(101, tag, msize.to_bytes(4, "little") + wire_str(version))


def tversion(tag: int = 0xFFFF, msize: int = 65536, version: str = SPEC_VERSION) -> bytes:
    return frame(100, tag, msize.to_bytes(4, "little") + wire_str(version))


def ready_client(spec: rpc.ServiceSpec = ECHO, *, msize: int = 65536, **options: Any) -> ClientSession:
    """A client whose handshake the server accepted."""
    client = ClientSession(spec, version=options.pop("version", SPEC_VERSION if spec is ECHO else None),
                           **options)
    client.start()
    version = client.version
    assert feed(client, rversion(msize=msize, version=version)) == [Negotiated(msize, version)]
    return client


# --- §1 frames ---------------------------------------------------------------------------------

def test_frames_are_size_type_tag_body() -> None:
    """r[jetstream.rpc.frame.header] r[jetstream.rpc.example.bytes]: the §12 request and answers,
    byte for byte, both ways through the sessions."""
    client = ready_client()
    tag, data = client.call(PING, PING.request("hi"))
    assert (tag, data) == (1, h("0b000000 66 0100 0200 6869"))
    server = ServerSession(ECHO)
    [call] = feed(server, data)
    assert call == Call(1, PING, PING.request("hi"))
    answer = server.respond(call, "hi")
    assert answer == h("0b000000 67 0100 0200 6869")
    assert feed(client, answer) == [Reply(1, "hi")]

    tag, data = client.call(PING, PING.request("héllo"))
    assert data == h("0f000000 66 0100 0600 68c3a96c6c6f")  # tag 1 again: it was freed
    [call] = feed(server, data)
    assert feed(client, server.respond(call, "héllo")) == [Reply(1, "héllo")]

    client.call(PING, PING.request("busy"))  # holds tag 1
    tag, data = client.call(FAIL, FAIL.request())
    assert (tag, data) == (2, h("07000000 68 0200"))
    [call] = feed(server, data)
    assert server.respond(call, None) == h("07000000 69 0200")
    [call] = feed(server, data)
    rust_error = jetwire.Error("boom", code="E1", backtrace=rpc_empty_backtrace())
    error_frame = server.fail(call, rust_error)
    assert error_frame == h("18000000 05 0200 0400 626f6f6d 01 0200 4531 00 00 0000 0000")
    assert feed(client, error_frame) == [Failed(2, rust_error)]


def rpc_empty_backtrace() -> jetwire.Backtrace:
    """What a Rust server without span capture sends: no intern table at all (§4.1)."""
    return jetwire.Backtrace(intern_table=(), frames=())


def test_a_ts_handlers_error_frame_decodes() -> None:
    """r[jetstream.rpc.error.frame] r[jetstream.rpc.error.client-surface]: the §12 TS error frame
    fails just its call, with every part of the error."""
    client = ready_client()
    client.call(PING, PING.request("a"))
    client.call(FAIL, FAIL.request())
    events = feed(client, h("1d000000 05 0200 0b00 4572726f723a20626f6f6d 00 00 00 0100 0000 0000"))
    assert events == [Failed(2, jetwire.Error("Error: boom"))]
    assert events[0].error.backtrace == jetwire.Backtrace(("",), ())
    assert feed(client, h("0a000000 67 0100 0100 61")) == [Reply(1, "a")]
    assert client.broken is None and client.in_flight == 0


def test_the_handshake_bytes_of_the_spec() -> None:
    """r[jetstream.rpc.example.bytes] r[jetstream.rpc.version.client-tag]: a client announcing
    msize 65536 sends the 51 bytes of the TS-style Tversion; the server answers as the TS server."""
    client = ClientSession(ECHO, max_frame_size=65536, version=SPEC_VERSION)
    expected = h("33000000 64 ffff 00000100 2600") + SPEC_VERSION.encode()
    assert client.start() == expected and len(expected) == 51
    server = ServerSession(ECHO)
    assert feed(server, expected) == [Send(h("33000000 65 ffff 00000100 2600") + SPEC_VERSION.encode())]


STREAM = (tversion() + frame(102, 1, wire_str("a")) + frame(104, 2) + frame(102, 3, wire_str("ccc")))
"""The §12 pipelined session, after its handshake."""


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = [0, *sorted(c for c in cuts if 0 < c < len(data)), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(points)]


@pytest.mark.parametrize("chunks", [
    pytest.param([STREAM], id="coalesced"),
    pytest.param([STREAM[i:i + 1] for i in range(len(STREAM))], id="one-byte-at-a-time"),
    pytest.param(split_at(STREAM, [2, 5, 7, 50, 52, 61, 62, 63, 70]), id="split-inside-headers"),
    pytest.param(split_at(STREAM, [51, 61, 68]), id="frame-by-frame"),
])
def test_the_server_reads_any_split_of_the_same_bytes_the_same(chunks: list[bytes]) -> None:
    """r[jetstream.rpc.frame.read] r[jetstream.rpc.mux.pipelining]: split frames, coalesced
    frames and a stream fed one byte at a time give the same events."""
    server = ServerSession(ECHO)
    events = []
    for chunk in chunks:
        events += feed(server, chunk)
    assert events == [
        Send(rversion(msize=65536)),
        Call(1, PING, PING.request("a")), Call(2, FAIL, FAIL.request()), Call(3, PING, PING.request("ccc")),
    ]
    assert server.buffered == 0 and server.in_flight == 3


ANSWERS = rversion() + frame(103, 1, wire_str("a")) + frame(103, 3, wire_str("ccc")) + \
    h("18000000 05 0200 0400 626f6f6d 01 0200 4531 00 00 0000 0000")


@pytest.mark.parametrize("step", [len(ANSWERS), 1, 2, 3, 5, 8, 13])
def test_the_client_reads_any_split_of_the_same_bytes_the_same(step: int) -> None:
    """r[jetstream.rpc.frame.read] r[jetstream.rpc.mux.out-of-order]: answers in another order
    than the calls, matched by tag only, however the bytes arrive."""
    client = ClientSession(ECHO, version=SPEC_VERSION)
    client.start()
    events: list[Any] = []
    handshake, answers = ANSWERS[:51], ANSWERS[51:]
    for i in range(0, len(handshake), step):
        events += feed(client, handshake[i:i + step])
    assert events == [Negotiated(65536, SPEC_VERSION)]
    assert [client.call(PING, PING.request("a"))[0], client.call(FAIL, FAIL.request())[0],
            client.call(PING, PING.request("ccc"))[0]] == [1, 2, 3]
    events = []
    for i in range(0, len(answers), step):
        events += feed(client, answers[i:i + step])
    assert events == [
        Reply(1, "a"), Reply(3, "ccc"),
        Failed(2, jetwire.Error("boom", code="E1", backtrace=rpc_empty_backtrace())),
    ]
    assert client.in_flight == 0


@pytest.mark.parametrize("size", [0, 1, 3, 4, 6])
def test_a_size_below_7_is_rejected(size: int) -> None:
    """r[jetstream.rpc.frame.min-size] r[jetstream.rpc.reject.truncated]"""
    server = ServerSession(ECHO)
    [violation] = feed(server, size.to_bytes(4, "little") + h("66 0100"))
    assert isinstance(violation, Violation) and "size" in str(violation.error)
    client = ready_client()
    client.call(PING, PING.request("x"))
    failed, broken = feed(client, size.to_bytes(4, "little") + h("67 0100"))
    assert isinstance(failed, Failed) and failed.tag == 1 and isinstance(broken, Broken)
    assert isinstance(broken.error, rpc.RemoteProtocolError)


@pytest.mark.parametrize("data", [
    pytest.param(frame(102, 1, wire_str("hi") + b"\x00"), id="one-byte-after-the-string"),
    pytest.param(frame(104, 1, b"\x00\x00"), id="bytes-in-an-empty-body"),
])
def test_trailing_bytes_in_a_request_close_the_stream(data: bytes) -> None:
    """r[jetstream.rpc.frame.exact-body] r[jetstream.rpc.reject.trailing-bytes]: the call is not
    dispatched, nothing is answered, and the next frames are not read."""
    server = ServerSession(ECHO)
    [violation] = feed(server, data + frame(102, 2, wire_str("after")))
    assert isinstance(violation, Violation)
    assert "left over" in str(violation.error) or "trailing" in str(violation.error)
    assert server.in_flight == 0 and drain(server) == []


def test_trailing_bytes_in_an_answer_break_the_client() -> None:
    """r[jetstream.rpc.frame.exact-body] r[jetstream.rpc.reject.trailing-bytes]
    r[jetstream.rpc.reject.close-stream]"""
    client = ready_client()
    client.call(PING, PING.request("hi"))
    failed, broken = feed(client, frame(103, 1, wire_str("hi") + b"!"))
    assert failed == Failed(1, broken.error) and isinstance(broken.error, rpc.RemoteProtocolError)


# --- §2 numbering --------------------------------------------------------------------------------

RLERROR = frame(7, 1, (2).to_bytes(4, "little"))  # Rlerror{ecode: ENOENT}
RERROR_9P = frame(107, 1, wire_str("gone"))  # Rerror{ename: "gone"}


def test_jetwire_never_emits_the_legacy_9p_errors() -> None:
    """r[jetstream.rpc.numbering.legacy-errors]: a server's failures, of any kind, are type 5."""
    assert 7 not in ECHO.type_numbers.values() and 107 not in ECHO.type_numbers.values()
    server = ServerSession(ECHO, debug=True)
    for tag, error in enumerate([jetwire.Error("x"), KeyError("k"), OSError(2, "ENOENT"), RuntimeError()]):
        [call] = feed(server, frame(104, tag))
        assert server.fail(call, error)[4] == 5
    [call] = feed(server, frame(102, 9, wire_str("x")))
    assert server.respond(call, 12345)[4] == 5  # a value that has no encoding


@pytest.mark.parametrize("legacy", [RLERROR, RERROR_9P], ids=["Rlerror-7", "Rerror-107"])
def test_a_legacy_9p_error_is_an_unknown_type_to_a_client(legacy: bytes) -> None:
    """r[jetstream.rpc.numbering.legacy-errors] r[jetstream.rpc.reject.unknown-type]: jetwire
    clients do not take up the MAY of §2.1: no JetStream server sends 7 or 107 as an error, so
    either is a frame the service does not know, which breaks the stream and fails every call."""
    client = ready_client()
    client.call(PING, PING.request("a"))
    client.call(FAIL, FAIL.request())
    events = feed(client, legacy)
    assert [type(e) for e in events] == [Failed, Failed, Broken]
    assert {e.tag for e in events[:2]} == {1, 2}
    assert isinstance(events[2].error, rpc.RemoteProtocolError) and "type" in str(events[2].error)


def test_type_107_is_a_method_answer_where_the_service_has_a_third_method() -> None:
    """r[jetstream.rpc.numbering.legacy-errors] r[jetstream.rpc.reject.wrong-response-type]: for
    Toolbox, 107 is sleep's answer; an ``Rerror`` to an ``add`` call fails that call only."""
    add = TOOLBOX.by_name["add"]
    client = ready_client(TOOLBOX)
    client.call(add, add.request(1, 2))
    client.call(add, add.request(3, 4))
    [failed] = feed(client, RERROR_9P)
    assert failed.tag == 1 and isinstance(failed.error, rpc.RemoteProtocolError)
    assert "Rsleep" in str(failed.error)
    assert feed(client, frame(103, 2, (7).to_bytes(4, "little"))) == [Reply(2, 7)]
    assert client.broken is None


# --- §5 the version handshake ----------------------------------------------------------------------

@pytest.mark.parametrize(("client_msize", "own", "agreed"), [
    (0xFFFFFFFF, 4 * 1024 * 1024, 4 * 1024 * 1024),  # a Rust client: our limit
    (65536, 4 * 1024 * 1024, 65536),  # a TS client: its own
    (65536, 1000, 1000),
])
def test_the_server_agrees_the_smaller_msize(client_msize: int, own: int, agreed: int) -> None:
    """r[jetstream.rpc.version.handshake]: Rversion{min(client msize, own limit), the client's
    version string}."""
    server = ServerSession(ECHO, max_frame_size=own)
    assert feed(server, tversion(tag=1, msize=client_msize)) == [Send(rversion(tag=1, msize=agreed))]
    assert server.peer_msize == agreed and server.version == SPEC_VERSION


def test_any_semver_of_the_same_service_is_accepted_and_echoed() -> None:
    """r[jetstream.rpc.version.handshake]: the name decides; the client's string comes back."""
    server = ServerSession(ECHO)
    other = "rs.jetstream.proto/echo/9.9.9-rc.1"
    assert feed(server, tversion(msize=100, version=other)) == [Send(rversion(msize=100, version=other))]


@pytest.mark.parametrize("tag", [0, 1, 0x1234, 0xFFFE, 0xFFFF])
def test_the_rversion_echoes_the_tversions_tag(tag: int) -> None:
    """r[jetstream.rpc.version.reply-tag]"""
    server = ServerSession(ECHO)
    [send] = feed(server, tversion(tag=tag))
    assert send.data[5:7] == tag.to_bytes(2, "little") and send.data == rversion(tag=tag)


@pytest.mark.parametrize("version", [
    "rs.jetstream.proto/other/1.0.0",  # another service
    "rs.jetstream.proto/echo/1.0",  # not SemVer
    "rs.jetstream.proto/echo/1.0.0/x",  # four pieces
    "9P2000.L",
    "",
])
def test_an_unknown_version_is_refused_then_the_stream_closes(version: str) -> None:
    """r[jetstream.rpc.version.reject-unknown]: Rversion{0, "unknown"} (§12's rejection bytes),
    then nothing more is read."""
    server = ServerSession(ECHO)
    events = feed(server, tversion(tag=1, version=version) + frame(102, 2, wire_str("a")))
    assert events[0] == Send(h("14000000 65 0100 00000000 0700 756e6b6e6f776e"))
    assert [type(e) for e in events] == [Send, Violation]
    assert feed(server, frame(102, 3, wire_str("b"))) == [] and server.in_flight == 0


@pytest.mark.parametrize("msize", [0, 6])
def test_a_client_msize_no_answer_fits_is_refused(msize: int) -> None:
    """r[jetstream.rpc.version.reject-unknown]: a client that could receive no frame at all is
    refused as an unknown version is, rather than accepted and then sent frames over its msize."""
    server = ServerSession(ECHO)
    events = feed(server, tversion(tag=1, msize=msize))
    assert events[0] == Send(h("14000000 65 0100 00000000 0700 756e6b6e6f776e"))
    assert [type(e) for e in events] == [Send, Violation] and "fits no frame" in str(events[1].error)


def test_a_refused_tversion_after_calls_without_one_closes_the_stream() -> None:
    """r[jetstream.rpc.version.reject-unknown] r[jetstream.rpc.transport.stream-no-handshake]: no
    version was ever agreed, so the refusal ends the stream; the calls read before it are answered."""
    server = ServerSession(ECHO)
    [call] = feed(server, frame(104, 1))
    events = feed(server, tversion(tag=2, version="rs.jetstream.proto/other/1.0.0") + frame(104, 3))
    assert events[0] == Send(frame(101, 2, h("00000000") + wire_str("unknown")))
    assert [type(e) for e in events] == [Send, Violation]
    assert server.respond(call, None) == frame(105, 1) and server.in_flight == 0


@pytest.mark.parametrize("first", [
    frame(102, 1, wire_str("a")),
    frame(104, 0xFFFF),
    rversion(),  # a client that sends an Rversion: not even a type the server reads
])
def test_a_router_style_server_wants_a_tversion_first(first: bytes) -> None:
    """r[jetstream.rpc.version.first-frame]: the first frame is not dispatched, nothing is sent,
    and the stream is closed: a Tversion after it is not answered."""
    server = ServerSession(ECHO, require_version=True)
    events = feed(server, first + tversion())
    assert [type(e) for e in events] == [Violation]
    assert server.in_flight == 0 and drain(server) == [] and server.version is None


def test_a_router_style_server_serves_after_its_tversion() -> None:
    """r[jetstream.rpc.version.first-frame] r[jetstream.rpc.version.handshake]"""
    server = ServerSession(ECHO, require_version=True)
    events = feed(server, tversion() + frame(102, 1, wire_str("a")))
    assert events == [Send(rversion()), Call(1, PING, PING.request("a"))]


def test_a_later_tversion_is_answered_and_resets_nothing() -> None:
    """r[jetstream.rpc.version.renegotiate]: calls in flight are still answered, the new msize
    applies, and a later refused version leaves the agreed one standing."""
    server = ServerSession(ECHO)
    events = feed(server, tversion(tag=0xFFFF, msize=1000) + frame(102, 1, wire_str("a")))
    call = events[1]
    assert feed(server, tversion(tag=7, msize=50, version=ECHO.version)) == [
        Send(rversion(tag=7, msize=50, version=ECHO.version))]
    assert server.peer_msize == 50 and server.in_flight == 1
    assert server.respond(call, "a") == frame(103, 1, wire_str("a"))
    refused = feed(server, tversion(tag=8, version="rs.jetstream.proto/other/1.0.0"))
    assert refused == [Send(frame(101, 8, h("00000000") + wire_str("unknown")))]
    assert feed(server, frame(104, 2)) == [Call(2, FAIL, FAIL.request())]
    assert server.version == ECHO.version and server.peer_msize == 50 and server.closed is None


OURS = ECHO.version.rsplit("/", 1)[1]  # 1.0.0+<digest>


@pytest.mark.parametrize(("asked", "agreed"), [
    ("0.9.0", "0.9.0"),
    ("1.0.0-rc.1+ffffffff", "1.0.0-rc.1+ffffffff"),  # a pre-release precedes its release
    ("1.0.0", "1.0.0"),  # no build metadata sorts first, as upstream's semver orders it
    (OURS, OURS),
    ("1.0.1", OURS),
    ("2.0.0+zz", OURS),
])
def test_a_later_tversion_of_this_service_gets_the_lower_version(asked: str, agreed: str) -> None:
    """r[jetstream.rpc.version.renegotiate] (§5.2): the same name is accepted whatever its
    version; the answer names this server's service at the lower of the two versions (SemVer
    precedence, then build metadata), with the client's tag."""
    server = ServerSession(ECHO)
    feed(server, tversion(msize=1000))
    later = f"rs.jetstream.proto/echo/{asked}"
    assert feed(server, tversion(tag=3, msize=900, version=later)) == [
        Send(rversion(tag=3, msize=900, version=f"rs.jetstream.proto/echo/{agreed}"))]
    assert server.version == f"rs.jetstream.proto/echo/{agreed}" and server.closed is None


@pytest.mark.parametrize("version", ["9P2000.L", "9P2000", "rs.jetstream.proto/other/1.0.0"])
def test_a_later_tversion_of_another_protocol_is_refused_and_the_stream_stays(version: str) -> None:
    """r[jetstream.rpc.version.renegotiate] (§5.2): another service, or 9P, is answered
    ``unknown`` with msize 0; nothing is reset, the stream stays open and its calls answered."""
    server = ServerSession(ECHO)
    [_, call] = feed(server, tversion(msize=1000) + frame(104, 1))
    assert feed(server, tversion(tag=4, version=version) + frame(104, 2)) == [
        Send(frame(101, 4, h("00000000") + wire_str("unknown"))), Call(2, FAIL, FAIL.request())]
    assert server.version == SPEC_VERSION and server.peer_msize == 1000 and server.closed is None
    assert server.fail(call, jetwire.Error("x"))[5:7] == h("0100")


@pytest.mark.parametrize("version", ["", "unknown", "rs.jetstream.proto/echo", "rs.jetstream.proto/echo/1.0",
                                     "rs.jetstream.proto/echo/01.0.0", "9P2000.u", "rs.jetstream.proto/a/b/1.0.0"])
def test_a_later_tversion_that_does_not_parse_is_not_answered(version: str) -> None:
    """r[jetstream.rpc.version.renegotiate] (§5.2, §4.2): no reply to that tag; the stream goes on."""
    server = ServerSession(ECHO)
    feed(server, tversion(msize=1000))
    events = feed(server, tversion(tag=5, version=version) + frame(104, 6))
    assert events == [Ignored(5, f"a Tversion whose version {version!r} does not parse is not answered"),
                      Call(6, FAIL, FAIL.request())]
    assert server.version == SPEC_VERSION and server.closed is None


@pytest.mark.parametrize("tag", [0, 1, 0xFFFF])
def test_the_client_sends_its_tversion_with_notag_and_takes_any_reply_tag(tag: int) -> None:
    """r[jetstream.rpc.version.client-tag]"""
    client = ClientSession(ECHO, max_frame_size=1 << 20, version=SPEC_VERSION)
    assert client.start() == tversion(tag=0xFFFF, msize=1 << 20)
    assert feed(client, rversion(tag=tag, msize=5000)) == [Negotiated(5000, SPEC_VERSION)]
    assert client.peer_msize == 5000


@pytest.mark.parametrize("answer", [
    pytest.param(rversion(tag=0xFFFF, msize=0, version="unknown"), id="unknown"),
    pytest.param(rversion(version="rs.jetstream.proto/other/1.0.0"), id="another-service"),
    pytest.param(rversion(version="9P2000.L"), id="not-jetstream"),
    pytest.param(frame(5, 0xFFFF, h("0400 6e6f7065 00 00 00 0100 0000 0000")), id="type-5"),
    pytest.param(rversion(msize=6), id="accepted-with-an-msize-no-frame-fits"),
])
def test_a_refused_handshake_breaks_the_client(answer: bytes) -> None:
    """r[jetstream.rpc.version.client-reject]: no call may be sent afterwards."""
    client = ClientSession(ECHO, version=SPEC_VERSION)
    client.start()
    [broken] = feed(client, answer)
    assert isinstance(broken, Broken) and isinstance(broken.error, rpc.VersionError)
    with pytest.raises(rpc.ConnectionClosed):
        client.call(PING, PING.request("a"))
    assert feed(client, rversion()) == [] and not client.negotiated


def test_no_call_before_the_handshake_is_answered() -> None:
    """r[jetstream.rpc.version.client-wait]"""
    client = ClientSession(ECHO, version=SPEC_VERSION)
    with pytest.raises(rpc.LocalProtocolError, match="version handshake"):
        client.call(PING, PING.request("a"))
    client.start()
    with pytest.raises(rpc.LocalProtocolError, match="version handshake"):
        client.call(PING, PING.request("a"))
    assert client.in_flight == 0
    feed(client, rversion())
    assert client.call(PING, PING.request("a"))[0] == 1  # the refused calls took no tag
    with pytest.raises(rpc.LocalProtocolError, match="already"):
        client.start()


def test_an_rversion_to_no_tversion_breaks_the_client() -> None:
    """r[jetstream.rpc.mux.one-response]: a client that sent no Tversion asked for no Rversion,
    so it is not negotiated by one."""
    client = ClientSession(ECHO, version=SPEC_VERSION)
    [broken] = feed(client, rversion())
    assert isinstance(broken, Broken) and isinstance(broken.error, rpc.RemoteProtocolError)
    assert not client.negotiated and "Rversion" in str(broken.error)
    with pytest.raises(rpc.ConnectionClosed):
        client.call(PING, PING.request("a"))


@pytest.mark.parametrize("size", [-1, 0, 6, 0x1_0000_0000, True, 7.0])
def test_a_frame_limit_no_frame_fits_or_no_msize_can_say_is_refused(size: Any) -> None:
    """r[jetstream.rpc.frame.header] r[jetstream.rpc.frame.min-size]: 7 to 2**32 - 1 bytes."""
    with pytest.raises(ValueError, match="max_frame_size"):
        ClientSession(ECHO, max_frame_size=size)
    with pytest.raises(ValueError, match="max_frame_size"):
        ServerSession(ECHO, max_frame_size=size)


def test_the_frame_limits_at_both_ends_of_the_range() -> None:
    """r[jetstream.rpc.frame.min-size]: the control for the refused limits above."""
    client = ClientSession(ECHO, max_frame_size=0xFFFF_FFFF, version=SPEC_VERSION)
    assert client.start() == tversion(msize=0xFFFF_FFFF)
    server = ServerSession(ECHO, max_frame_size=7)
    assert feed(server, frame(104, 1)) == [Call(1, FAIL, FAIL.request())]


def test_a_call_before_the_rversion_breaks_the_client() -> None:
    """r[jetstream.rpc.version.client-wait]: an answer before the Rversion is out of turn."""
    client = ClientSession(ECHO, version=SPEC_VERSION)
    client.start()
    [broken] = feed(client, frame(103, 1, wire_str("a")))
    assert isinstance(broken, Broken) and "before" in str(broken.error)


def test_a_byte_stream_server_serves_calls_without_a_tversion() -> None:
    """r[jetstream.rpc.transport.stream-no-handshake]: and answers one that comes later."""
    server = ServerSession(ECHO)
    [call] = feed(server, frame(102, 1, wire_str("hi")))
    assert server.respond(call, "hi") == h("0b000000 67 0100 0200 6869")
    assert server.peer_msize is None  # no msize was announced: none is enforced
    [call] = feed(server, frame(102, 2, wire_str("x" * 60000)))
    assert len(server.respond(call, "x" * 60000)) == 60009
    assert feed(server, tversion(tag=3, msize=100)) == [Send(rversion(tag=3, msize=100))]
    [call] = feed(server, frame(102, 4, wire_str("hi")))
    assert server.respond(call, "hi") == h("0b000000 67 0400 0200 6869")


# --- §6 tags and multiplexing ------------------------------------------------------------------------

def test_no_tag_is_reused_while_its_call_is_outstanding() -> None:
    """r[jetstream.rpc.tag.unique] r[jetstream.rpc.tag.client-pool]: exhaustion raises, nothing
    is sent for it, and a freed tag is handed out again."""
    client = ready_client(max_tags=3)
    assert [client.call(PING, PING.request(str(i)))[0] for i in range(3)] == [1, 2, 3]
    assert not client.tags_free()
    with pytest.raises(rpc.TagsExhausted):
        client.call(PING, PING.request("one too many"))
    assert feed(client, frame(103, 2, wire_str("1"))) == [Reply(2, "1")]
    assert client.tags_free() and client.call(FAIL, FAIL.request())[0] == 2
    with pytest.raises(rpc.TagsExhausted):
        client.call(FAIL, FAIL.request())
    assert client.in_flight == 3


def test_the_whole_pool_never_hands_out_0xffff_or_0() -> None:
    """r[jetstream.rpc.tag.client-pool]: tags 1 to 0xFFFE, each once while held."""
    client = ready_client(msize=1 << 20)
    request = FAIL.request()
    tags = [client.call(FAIL, request)[0] for _ in range(MAX_TAGS)]
    assert sorted(tags) == list(range(1, 0xFFFF))
    with pytest.raises(rpc.TagsExhausted):
        client.call(FAIL, request)
    assert client.in_flight == MAX_TAGS


@pytest.mark.parametrize("max_tags", [0, -1, 0xFFFF, 0x10000])
def test_a_pool_that_would_reach_0xffff_is_refused(max_tags: int) -> None:
    """r[jetstream.rpc.tag.client-pool]"""
    with pytest.raises(ValueError, match="max_tags"):
        ClientSession(ECHO, max_tags=max_tags)


def test_the_server_echoes_every_tag_duplicates_included() -> None:
    """r[jetstream.rpc.tag.echo-any]: tags 0 and 0xFFFF, and a tag already in flight, are all
    served; each answer carries its request's tag."""
    server = ServerSession(ECHO)
    tags = [0, 0xFFFF, 5, 5, 1]
    calls = feed(server, b"".join(frame(102, t, wire_str(str(i))) for i, t in enumerate(tags)))
    assert [c.tag for c in calls] == tags and server.in_flight == 5
    for i, call in reversed(list(enumerate(calls))):
        assert server.respond(call, str(i)) == frame(103, tags[i], wire_str(str(i)))
    assert server.in_flight == 0


def test_the_server_answers_each_call_once() -> None:
    """r[jetstream.rpc.mux.one-response]: one frame per call, with its tag, and nothing the
    client did not ask for."""
    server = ServerSession(ECHO)
    assert drain(server) == []
    [call] = feed(server, frame(104, 9))
    assert server.respond(call, None) == frame(105, 9)
    assert server.in_flight == 0
    with pytest.raises(rpc.LocalProtocolError, match="already answered"):
        server.respond(call, None)
    with pytest.raises(rpc.LocalProtocolError, match="already answered"):
        server.fail(call, jetwire.Error("late"))
    assert server.in_flight == 0 and drain(server) == []


def test_an_answer_to_no_call_is_ignored_and_counted() -> None:
    """r[jetstream.rpc.mux.unknown-tag]: a Stray event; the calls in flight carry on."""
    client = ready_client()
    client.call(PING, PING.request("a"))
    strays = frame(103, 9, wire_str("?")) + frame(5, 0, h("0100 3f 00 00 00 0000 0000")) + rversion(tag=2)
    assert feed(client, strays) == [Stray(9, 103), Stray(0, 5), Stray(2, 101)]
    assert client.strays == 3 and client.in_flight == 1
    assert feed(client, frame(103, 1, wire_str("a"))) == [Reply(1, "a")]
    assert feed(client, frame(103, 1, wire_str("a"))) == [Stray(1, 103)]  # answered already
    assert client.strays == 4 and client.broken is None


def test_a_lost_connection_fails_every_call_then_breaks() -> None:
    """r[jetstream.rpc.mux.fail-on-close]: an abandoned call gets no Failed (nobody waits)."""
    client = ready_client()
    for text in "abc":
        client.call(PING, PING.request(text))
    client.abandon(2)
    client.connection_lost(OSError("reset"))
    events = drain(client)
    assert [type(e) for e in events] == [Failed, Failed, Broken] and [e.tag for e in events[:2]] == [1, 3]
    error = events[-1].error
    assert isinstance(error, rpc.ConnectionClosed) and isinstance(error.__cause__, OSError)
    assert all(e.error is error for e in events[:2]) and client.in_flight == 0
    with pytest.raises(rpc.ConnectionClosed):
        client.call(PING, PING.request("d"))
    client.connection_lost()
    assert feed(client, frame(103, 1, wire_str("a"))) == []


def test_answers_received_before_the_end_are_still_read() -> None:
    """r[jetstream.rpc.mux.fail-on-close] r[jetstream.rpc.frame.read]: the stream's end comes
    after the bytes that came before it, whether or not they were made into events yet; only the
    calls still outstanding then fail. No call may be sent once the end is known."""
    client = ready_client()
    for text in "abc":
        client.call(PING, PING.request(text))
    client.receive_data(frame(103, 2, wire_str("b")) + frame(103, 1, wire_str("a"))[:9])
    client.connection_lost()
    with pytest.raises(rpc.ConnectionClosed):
        client.call(PING, PING.request("d"))
    client.receive_data(frame(103, 1, wire_str("a"))[9:])  # after the end: not read
    events = drain(client)
    assert [type(e) for e in events] == [Reply, Failed, Failed, Broken]
    assert events[0] == Reply(2, "b") and [e.tag for e in events[1:3]] == [1, 3]
    assert client.in_flight == 0


def test_a_frame_that_does_not_decode_fails_every_call_then_breaks() -> None:
    """r[jetstream.rpc.mux.fail-on-close] r[jetstream.rpc.reject.close-stream]: the frames after
    it are not read, even good ones."""
    client = ready_client()
    client.call(PING, PING.request("a"))
    client.call(FAIL, FAIL.request())
    events = feed(client, frame(200, 1) + frame(105, 2))
    assert [type(e) for e in events] == [Failed, Failed, Broken]
    assert isinstance(events[-1].error, rpc.RemoteProtocolError) and client.in_flight == 0
    client.connection_lost()
    assert drain(client) == []


def test_a_connection_lost_before_the_handshake_breaks_the_client() -> None:
    """r[jetstream.rpc.mux.fail-on-close]"""
    client = ClientSession(ECHO)
    client.start()
    client.receive_data(rversion()[:10])
    client.connection_lost()
    [broken] = drain(client)
    assert isinstance(broken, Broken) and isinstance(broken.error, rpc.ConnectionClosed)


# --- §7 abandoning a call --------------------------------------------------------------------------

def test_an_abandoned_call_keeps_its_tag_until_the_late_answer() -> None:
    """r[jetstream.rpc.cancel.local]: nothing to send; the late answer is dropped and frees the tag."""
    client = ready_client(max_tags=1)
    tag, _ = client.call(PING, PING.request("slow"))
    assert client.abandon(tag) is None  # type: ignore[func-returns-value]
    assert client.in_flight == 1 and not client.tags_free()
    with pytest.raises(rpc.TagsExhausted):
        client.call(PING, PING.request("next"))
    assert feed(client, frame(103, tag, wire_str("slow"))) == []
    assert client.in_flight == 0 and client.strays == 0
    assert client.call(PING, PING.request("next"))[0] == tag
    assert feed(client, frame(103, tag, wire_str("next"))) == [Reply(tag, "next")]


@pytest.mark.parametrize("late", [
    pytest.param(frame(5, 1, h("0100 78 00 00 00 0000 0000")), id="error"),
    pytest.param(frame(105, 1), id="wrong-type"),
])
def test_any_late_answer_to_an_abandoned_call_is_dropped(late: bytes) -> None:
    """r[jetstream.rpc.cancel.local]"""
    client = ready_client()
    client.call(PING, PING.request("slow"))
    client.abandon(1)
    client.abandon(1)
    client.abandon(77)  # no such call: nothing to do
    assert feed(client, late) == [] and client.in_flight == 0 and client.broken is None


# --- §10 limits ------------------------------------------------------------------------------------

HUGE_HEADER = h("ffffff7f 67 0100")
"""The header of a 2 GiB answer; its body is never sent."""


def test_the_client_refuses_a_huge_frame_from_its_header() -> None:
    """r[jetstream.rpc.limits.max-frame]: the size field alone decides, before any body."""
    client = ready_client(max_frame_size=1024)
    client.call(PING, PING.request("a"))
    failed, broken = feed(client, HUGE_HEADER)
    assert failed.tag == 1 and isinstance(broken.error, rpc.RemoteProtocolError)
    assert "limit" in str(broken.error) and client._reader.buffered == 0


def test_the_server_refuses_a_huge_frame_from_its_header() -> None:
    """r[jetstream.rpc.limits.max-frame]"""
    server = ServerSession(ECHO, max_frame_size=1024)
    [violation] = feed(server, h("01040000 66 0100"))  # 1025 bytes
    assert isinstance(violation, Violation) and "limit of 1024" in str(violation.error)
    assert server.buffered == 0
    server.receive_data(b"x" * 5000)  # the rest is not kept
    assert server.buffered == 0


def test_a_frame_of_exactly_the_limit_is_read() -> None:
    """r[jetstream.rpc.limits.max-frame]"""
    server = ServerSession(ECHO, max_frame_size=1024)
    [call] = feed(server, frame(102, 1, wire_str("x" * 1015)))
    assert call.request.message == "x" * 1015


def test_the_client_sends_nothing_over_the_servers_msize() -> None:
    """r[jetstream.rpc.limits.peer-msize]: MsizeError, and the tag is not taken."""
    client = ready_client(msize=20, max_tags=1)
    with pytest.raises(rpc.MsizeError, match="over the 20"):
        client.call(PING, PING.request("x" * 14))
    assert client.in_flight == 0
    tag, data = client.call(PING, PING.request("x" * 11))
    assert len(data) == 20 and tag == 1


def test_the_server_turns_an_answer_over_the_clients_msize_into_an_error() -> None:
    """r[jetstream.rpc.limits.peer-msize]"""
    server = ServerSession(ECHO)
    feed(server, tversion(msize=200))
    [call] = feed(server, frame(102, 4, wire_str("a")))
    data = server.respond(call, "x" * 300)
    assert len(data) <= 200 and data[4] == 5 and data[5:7] == h("0400")
    client = ready_client(msize=200)
    client.call(PING, PING.request("a"))
    [failed] = feed(client, data[:5] + h("0100") + data[7:])
    assert isinstance(failed.error, jetwire.Error) and failed.error.code == "jetwire::rpc::msize"
    assert "200" in failed.error.message



@pytest.mark.parametrize("msize", [16, 17, 18, 19, 24, 40, 300])
@pytest.mark.parametrize("message", ["e" * 1000, "é" * 500])
def test_the_server_cuts_a_handlers_error_to_the_clients_msize(msize: int, message: str) -> None:
    """r[jetstream.rpc.limits.peer-msize]: an error too long for the client's msize goes out cut
    to fit (at a character boundary) rather than over it."""
    server = ServerSession(ECHO)
    feed(server, tversion(msize=msize))
    [call] = feed(server, frame(104, 1))
    data = server.fail(call, jetwire.Error(message, code="E1", help="h" * 500, url="u"))
    assert len(data) <= msize and data[4] == 5
    client = ready_client(msize=msize)
    client.call(FAIL, FAIL.request())
    [failed] = feed(client, data)
    error = failed.error
    assert isinstance(error, jetwire.Error) and message.startswith(error.message.rstrip("…"))
    assert error.help is None and error.url is None
    if msize >= 21:  # room for the code and some text
        assert error.code == "E1" and error.message.endswith("…")


@pytest.mark.parametrize("char", ["e", "é", "€", "🐍"])
def test_a_debug_error_text_is_cut_to_a_byte_budget(char: str) -> None:
    """In debug mode an exception's text and traceback go out, each cut to MAX_ERROR_TEXT UTF-8
    bytes at a character boundary, whatever its characters' widths."""
    from jetwire.rpc.session import MAX_ERROR_TEXT

    server = ServerSession(ECHO, debug=True)
    [call] = feed(server, frame(104, 1))
    try:
        raise ValueError(char * 5000)
    except ValueError as exc:
        data = server.fail(call, exc)
    client = ready_client()
    client.call(FAIL, FAIL.request())
    [failed] = feed(client, data)
    error = failed.error
    assert isinstance(error, jetwire.Error) and error.help is not None
    for text in (error.message, error.help):
        assert MAX_ERROR_TEXT - 4 <= len(text.encode()) <= MAX_ERROR_TEXT and text.endswith("…")
    assert error.message.startswith("fail failed: ValueError: " + char)


def test_an_msize_below_the_smallest_error_frame_still_gets_its_answer() -> None:
    """r[jetstream.rpc.mux.one-response]: the call is answered even then."""
    server = ServerSession(ECHO)
    feed(server, tversion(msize=7))
    [call] = feed(server, frame(104, 3))
    assert server.fail(call, jetwire.Error("boom")) == frame(5, 3, h("0000 00 00 00 0000 0000"))


# --- §11 what to reject ----------------------------------------------------------------------------

@pytest.mark.parametrize("data", [
    pytest.param(frame(102, 1, h("0200 68")), id="string-cut-short"),
    pytest.param(frame(102, 1, h("02")), id="length-cut-short"),
    pytest.param(frame(102, 1), id="no-body"),
    pytest.param(frame(100, 1, h("00000100 2600") + SPEC_VERSION.encode()[:10]), id="tversion-cut-short"),
])
def test_a_truncated_request_closes_the_stream(data: bytes) -> None:
    """r[jetstream.rpc.reject.truncated] r[jetstream.rpc.reject.close-stream]"""
    server = ServerSession(ECHO)
    [violation] = feed(server, data + frame(104, 2))
    assert isinstance(violation, Violation) and server.in_flight == 0 and drain(server) == []


def test_a_truncated_answer_breaks_the_client() -> None:
    """r[jetstream.rpc.reject.truncated]"""
    client = ready_client()
    client.call(PING, PING.request("hi"))
    failed, broken = feed(client, frame(103, 1, h("0200 68")))
    assert failed.tag == 1 and isinstance(broken.error, rpc.RemoteProtocolError)


@pytest.mark.parametrize("type_", [0, 5, 7, 101, 103, 106, 107, 200, 255])
def test_a_type_the_server_does_not_read_closes_the_stream(type_: int) -> None:
    """r[jetstream.rpc.reject.unknown-type]: answers, errors, Rversion and ids of no method."""
    server = ServerSession(ECHO)
    [violation] = feed(server, frame(type_, 1) + frame(104, 2))
    assert isinstance(violation, Violation) and str(type_) in str(violation.error)
    assert drain(server) == [] and server.in_flight == 0


@pytest.mark.parametrize("type_", [0, 100, 102, 104, 106, 200])
def test_a_type_the_client_does_not_read_breaks_it(type_: int) -> None:
    """r[jetstream.rpc.reject.unknown-type]: requests, Tversion and ids of no method."""
    client = ready_client()
    client.call(FAIL, FAIL.request())
    failed, broken = feed(client, frame(type_, 1))
    assert failed.tag == 1 and str(type_) in str(broken.error)


@pytest.mark.parametrize("body", [
    pytest.param(h("0200 c328"), id="bad-utf8"),
    pytest.param(h("0300 eda080"), id="utf8-surrogate"),
])
def test_a_request_with_an_invalid_value_closes_the_stream(body: bytes) -> None:
    """r[jetstream.rpc.reject.invalid-value]"""
    server = ServerSession(ECHO)
    [violation] = feed(server, frame(102, 1, body))
    assert isinstance(violation, Violation) and server.in_flight == 0


BT_FRAME = h("0000 0000 0000 0000 0000 0000 0000")  # msg "", five u16 indexes 0, no fields


@pytest.mark.parametrize("body", [
    pytest.param(h("0100 78 02"), id="option-tag-2"),
    pytest.param(h("0100 78 00 ff"), id="option-tag-255"),
    pytest.param(h("0100 78 00 00 00 0000 0100") + BT_FRAME + h("05"), id="level-5"),
    pytest.param(h("0100 ff 00 00 00 0000 0000"), id="bad-utf8-message"),
])
def test_an_error_frame_with_an_invalid_value_breaks_the_client(body: bytes) -> None:
    """r[jetstream.rpc.reject.invalid-value] r[jetstream.rpc.reject.close-stream]"""
    client = ready_client()
    client.call(FAIL, FAIL.request())
    client.call(FAIL, FAIL.request())
    events = feed(client, frame(5, 1, body) + frame(105, 2))
    assert [type(e) for e in events] == [Failed, Failed, Broken]


def test_the_level_byte_4_is_the_last_valid_one() -> None:
    """r[jetstream.rpc.reject.invalid-value]: the control for level 5 above."""
    client = ready_client()
    client.call(FAIL, FAIL.request())
    [failed] = feed(client, frame(5, 1, h("0100 78 00 00 00 0000 0100") + BT_FRAME + h("04")))
    assert failed.error.backtrace.frames[0].level == jetwire.Level.ERROR


def test_after_a_violation_the_server_reads_nothing_but_answers_its_calls() -> None:
    """r[jetstream.rpc.reject.close-stream]: the calls read before the bad frame are answered."""
    server = ServerSession(ECHO)
    events = feed(server, frame(102, 1, wire_str("a")) + frame(104, 2) + frame(99, 3) + frame(104, 4))
    assert [type(e) for e in events] == [Call, Call, Violation]
    assert server.closed is events[2].error and isinstance(server.closed, rpc.RemoteProtocolError)
    server.receive_data(frame(104, 5))
    assert drain(server) == [] and server.in_flight == 2
    assert server.respond(events[1], None) == frame(105, 2)
    assert server.respond(events[0], "a") == frame(103, 1, wire_str("a"))
    assert server.in_flight == 0


def test_an_answer_of_another_method_fails_that_call_only() -> None:
    """r[jetstream.rpc.reject.wrong-response-type]: neither the expected R id nor 5."""
    client = ready_client()
    client.call(PING, PING.request("a"))
    client.call(FAIL, FAIL.request())
    client.call(PING, PING.request("c"))
    events = feed(client, frame(105, 1) + frame(103, 2, wire_str("b")) + rversion(tag=3))
    assert [e.tag for e in events] == [1, 2, 3] and all(type(e) is Failed for e in events)
    assert all(isinstance(e.error, rpc.RemoteProtocolError) for e in events)
    assert "Rfail" in str(events[0].error) and "Rping" in str(events[1].error)
    assert client.broken is None and client.in_flight == 0
    client.call(PING, PING.request("d"))
    assert feed(client, frame(103, 3, wire_str("d"))) == [Reply(3, "d")]


# --- §4 errors -------------------------------------------------------------------------------------

SPEC_BACKTRACE = (
    h("0700 0000 0b00") + b"src/echo.rs" + h("0400") + b"echo" + h("0400") + b"fail" + h("0c00") + b"echo::server"
    + h("0100") + b"x" + h("0100") + b"1"
    + h("0100 0400") + b"fail" + h("0300 0200 0400 0100 2a00 0100 0500 0600 02")
)
"""The §12 non-empty backtrace."""


def test_the_specs_backtrace_decodes() -> None:
    """r[jetstream.rpc.error.lenient-decode] r[jetstream.rpc.example.bytes]"""
    client = ready_client()
    client.call(FAIL, FAIL.request())
    [failed] = feed(client, frame(5, 1, h("0400 626f6f6d 00 00 00") + SPEC_BACKTRACE))
    trace = failed.error.backtrace
    assert trace.intern_table == ("", "src/echo.rs", "echo", "fail", "echo::server", "x", "1")
    [bt] = trace.frames
    assert (bt.msg, bt.name, bt.target, bt.module, bt.file, bt.line) == ("fail", 3, 2, 4, 1, 42)
    assert [(f.key, f.value) for f in bt.fields] == [(5, 6)] and bt.level == jetwire.Level.INFO


def test_out_of_range_intern_indexes_decode() -> None:
    """r[jetstream.rpc.error.lenient-decode]: indexes past the table, and an empty table, are
    kept as they came: the call fails with the server's error, the stream carries on."""
    client = ready_client()
    client.call(FAIL, FAIL.request())
    client.call(FAIL, FAIL.request())
    far = h("0100 61 0900 ffff 6400 0200 0700 0200 0100 ffff 0500 0300") + h("04")  # msg "a", out of range
    body = h("0400 626f6f6d 00 00 00") + h("0100 0100 7a") + h("0100") + far
    [failed] = feed(client, frame(5, 1, body))
    [bt] = failed.error.backtrace.frames
    assert failed.error.backtrace.intern_table == ("z",)
    assert (bt.name, bt.target, bt.module, bt.file, bt.line) == (9, 0xFFFF, 100, 2, 7)
    assert [(f.key, f.value) for f in bt.fields] == [(1, 0xFFFF), (5, 3)]
    empty_table = h("0400 626f6f6d 00 00 00") + h("0000") + h("0100") + far
    assert [type(e) for e in feed(client, frame(5, 2, empty_table))] == [Failed]
    assert client.broken is None


def test_a_request_that_does_not_encode_takes_no_tag() -> None:
    """r[jetstream.rpc.tag.unique]: the tag goes back to the pool."""
    client = ready_client(max_tags=1)
    with pytest.raises(jetwire.EncodeError):
        client.call(PING, PING.request(123))
    assert client.in_flight == 0 and client.call(PING, PING.request("a"))[0] == 1


# --- a client and a server in memory, every interleaving ---------------------------------------------

class Pipe:
    """Bytes in one direction, with the frames' boundaries kept: which frames a delivery completed."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.frames: list[tuple[int, int | None]] = []  # (length, the call's tag or None)
        self.sent = 0  # bytes of the first frame already delivered

    def put(self, data: bytes, tag: int | None) -> None:
        self.data += data
        self.frames.append((len(data), tag))

    def take(self, n: int) -> tuple[bytes, list[int | None]]:
        chunk = bytes(self.data[:n])
        del self.data[:n]
        done = []
        self.sent += len(chunk)
        while self.frames and self.sent >= self.frames[0][0]:
            length, tag = self.frames.pop(0)
            self.sent -= length
            done.append(tag)
        return chunk, done


st_text = st.text(alphabet="aé€𝄞", max_size=6)
OPS = st.lists(st.one_of(
    st.tuples(st.just("call"), st.booleans(), st_text),
    st.tuples(st.just("abandon"), st.integers(0, 7)),
    st.tuples(st.just("to_server"), st.integers(1, 40)),
    st.tuples(st.just("answer"), st.integers(0, 7), st.booleans()),
    st.tuples(st.just("to_client"), st.integers(1, 40)),
    st.tuples(st.just("lose")),
), max_size=60)


@given(max_tags=st.integers(1, 4), handshake_step=st.integers(1, 60), ops=OPS)
def test_any_interleaving_answers_every_call_once(max_tags: int, handshake_step: int,
                                                  ops: list[tuple[Any, ...]]) -> None:
    """r[jetstream.rpc.tag.unique] r[jetstream.rpc.mux.one-response] r[jetstream.rpc.mux.out-of-order]
    r[jetstream.rpc.cancel.local] r[jetstream.rpc.frame.read] r[jetstream.rpc.mux.fail-on-close]:
    calls, answers in any order, abandons, byte splits and the connection's loss at any point,
    between two sessions in memory. Every call not abandoned gets exactly one Reply or Failed
    (with its own answer, or the loss); no tag is handed out while held; nothing stays in flight."""
    client = ClientSession(ECHO, max_tags=max_tags, version=SPEC_VERSION)
    server = ServerSession(ECHO)
    up, down = Pipe(), Pipe()
    up.put(client.start(), None)
    held: set[int] = set()  # tags whose answer has not wholly reached the client
    waiting: dict[int, str | None] = {}  # tag to the ping's text (None: a fail call), not abandoned
    expected: dict[int, Any] = {}  # tag to the event its answer must make
    calls: list[Call] = []  # received by the server, not yet answered

    def to_server(n: int) -> None:
        chunk, _ = up.take(n)
        for event in feed(server, chunk):
            if isinstance(event, Send):
                down.put(event.data, None)
            else:
                assert isinstance(event, Call), event
                calls.append(event)

    def to_client(n: int) -> None:
        chunk, done = down.take(n)
        for event in feed(client, chunk):
            if isinstance(event, Negotiated):
                continue
            assert isinstance(event, (Reply, Failed)), event
            assert event.tag in waiting, f"an event for tag {event.tag}, which no caller waits for"
            del waiting[event.tag]
            assert event == expected.pop(event.tag)
        for tag in done:
            if tag is not None:  # an answer wholly delivered: its event came, or it was dropped
                assert tag not in waiting
                expected.pop(tag, None)
                held.discard(tag)

    def answer(k: int, fail: bool) -> None:
        call = calls.pop(k % len(calls))
        if call.method is PING:
            value = call.request.message
            data = server.fail(call, jetwire.Error(value)) if fail else server.respond(call, value)
            expected[call.tag] = Failed(call.tag, jetwire.Error(value)) if fail else Reply(call.tag, value)
        else:
            data = server.fail(call, jetwire.Error("boom")) if fail else server.respond(call, None)
            expected[call.tag] = Failed(call.tag, jetwire.Error("boom")) if fail else Reply(call.tag, None)
        down.put(data, call.tag)

    pieces = -(-51 // handshake_step)  # the handshake's frames are 51 bytes each way
    handshake = [("call", True, "early"), *[("to_server", handshake_step)] * pieces,
                 *[("to_client", handshake_step)] * pieces]
    for op in handshake + ops:
        if op[0] == "call":
            method, request = (PING, PING.request(op[2])) if op[1] else (FAIL, FAIL.request())
            if not client.negotiated:
                with pytest.raises(rpc.LocalProtocolError):
                    client.call(method, request)
            elif len(held) == max_tags:
                assert not client.tags_free()
                with pytest.raises(rpc.TagsExhausted):
                    client.call(method, request)
            else:
                tag, data = client.call(method, request)
                assert tag not in held and 1 <= tag <= max_tags
                held.add(tag)
                waiting[tag] = op[2] if op[1] else None
                up.put(data, tag)
        elif op[0] == "abandon" and waiting:
            tag = sorted(waiting)[op[1] % len(waiting)]
            client.abandon(tag)
            del waiting[tag]
        elif op[0] == "to_server":
            to_server(op[1])
        elif op[0] == "answer" and calls:
            answer(op[1], op[2])
        elif op[0] == "to_client":
            to_client(op[1])
        elif op[0] == "lose":
            break
        assert client.in_flight == len(held)
    else:
        while up.data or calls or down.data:
            to_server(len(up.data))
            while calls:
                answer(0, False)
            to_client(len(down.data))
    client.connection_lost()
    *failed, broken = drain(client)
    assert isinstance(broken, Broken) and isinstance(broken.error, rpc.ConnectionClosed)
    assert sorted(e.tag for e in failed) == sorted(waiting)
    assert all(e == Failed(e.tag, broken.error) for e in failed)
    assert client.in_flight == 0 and client.strays == 0
    if op[0] != "lose":
        assert waiting == {} and held == set() and expected == {} and server.in_flight == 0
        assert server.closed is None


VALID_UP = [tversion(), frame(102, 1, wire_str("hé")), frame(104, 2), tversion(tag=3, version="9P2000.L")]
VALID_DOWN = [rversion(tag=5), frame(103, 1, wire_str("hé")), frame(105, 2),
              frame(5, 3, h("0400 626f6f6d 01 0200 4531 00 00") + SPEC_BACKTRACE)]


def mangled(frames: list[bytes]) -> st.SearchStrategy[bytes]:
    """Valid frames with some bytes changed, cut or inserted, or bytes of any kind."""
    edits = st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255), st.sampled_from(["set", "cut", "add"])),
                     max_size=4)

    def apply(data: bytes, changes: list[tuple[int, int, str]]) -> bytes:
        out = bytearray(data)
        for where, byte, how in changes:
            at = where % (len(out) + 1)
            if how == "set" and at < len(out):
                out[at] = byte
            elif how == "cut":
                del out[at:at + 1 + byte % 4]
            else:
                out[at:at] = bytes([byte])
        return bytes(out)

    valid = st.lists(st.sampled_from(frames), min_size=1, max_size=5).map(b"".join)
    return st.one_of(st.builds(apply, valid, edits), st.binary(max_size=80))


@given(data=mangled(VALID_UP), step=st.integers(1, 50), require_version=st.booleans())
def test_a_server_turns_any_bytes_into_calls_or_a_violation(data: bytes, step: int, require_version: bool) -> None:
    """r[jetstream.rpc.reject.close-stream] r[jetstream.rpc.reject.truncated]
    r[jetstream.rpc.reject.unknown-type]: never an exception from reading, and nothing read after
    a Violation."""
    server = ServerSession(ECHO, max_frame_size=1000, require_version=require_version)
    events = []
    for i in range(0, len(data), step):
        events += feed(server, data[i:i + step])
    assert all(isinstance(e, (Call, Send, Violation, Ignored)) for e in events)
    violations = [i for i, e in enumerate(events) if isinstance(e, Violation)]
    assert violations in ([], [len(events) - 1])
    assert server.in_flight == sum(isinstance(e, Call) for e in events)
    for event in events:
        if isinstance(event, Call):
            answer = server.respond(event, "x") if event.method is PING else server.fail(event, KeyError())
            assert answer[5:7] == event.tag.to_bytes(2, "little")
    assert server.in_flight == 0


def taking_calls(room: int) -> Callable[[ServerSession], list[Any]]:
    """As ``drain``, the calls taken by ``take_calls(room)`` (as aio's server takes them), made events."""
    def drain_with_calls(session: ServerSession) -> list[Any]:
        events: list[Any] = []
        while True:
            while calls := session.take_calls(room):
                assert len(calls) <= room
                events += [Call(*call) for call in calls]
            event = session.next_event()
            if event is None:
                return events
            events.append(event)
    return drain_with_calls


@given(data=mangled(VALID_UP), step=st.integers(1, 50), require_version=st.booleans(), room=st.integers(1, 5))
def test_take_calls_then_next_event_read_as_next_event_alone(data: bytes, step: int, require_version: bool,
                                                               room: int) -> None:
    """The fast path aio's server reads calls with shows the events ``next_event`` shows, in
    order, and leaves the session as it leaves it, whatever the bytes (Tversions first or later,
    frames that do not decode), however they arrive and however many calls are taken at once;
    ``respond_to`` answers as ``respond``."""
    seen = []
    drain_with_calls = taking_calls(room)
    for read in (drain, drain_with_calls):
        server = ServerSession(ECHO, max_frame_size=1000, require_version=require_version)
        events = []
        for i in range(0, len(data), step):
            server.receive_data(data[i:i + step])
            events += read(server)
        in_flight = server.in_flight
        answers = [server.respond_to(e.tag, e.method, "x" if e.method is PING else None) if read is drain_with_calls
                   else server.respond(e, "x" if e.method is PING else None) for e in events if isinstance(e, Call)]
        # exceptions compare by identity: two sessions' errors are alike if they say the same
        described = [(type(e).__name__, getattr(e, "tag", None), getattr(e, "method", None),
                      getattr(e, "request", None), getattr(e, "data", None), repr(getattr(e, "error", None)))
                     for e in events]
        seen.append((described, in_flight, answers, server.in_flight, server.buffered, repr(server.closed),
                     server.version, server.peer_msize))
    assert seen[0] == seen[1]


@given(data=mangled(VALID_DOWN), step=st.integers(1, 50))
def test_a_client_turns_any_bytes_into_events_or_breaks(data: bytes, step: int) -> None:
    """r[jetstream.rpc.reject.close-stream] r[jetstream.rpc.mux.fail-on-close]: never an exception
    from reading; every call ends with one event."""
    client = ready_client(max_frame_size=1000)
    client.call(PING, PING.request("a"))
    client.call(FAIL, FAIL.request())
    client.call(FAIL, FAIL.request())
    events = []
    for i in range(0, len(data), step):
        events += feed(client, data[i:i + step])
    client.connection_lost()
    events += drain(client)
    ends = [e.tag for e in events if isinstance(e, (Reply, Failed))]
    assert sorted(ends) == [1, 2, 3] and isinstance(events[-1], Broken)
    assert all(isinstance(e, (Reply, Failed, Stray)) for e in events[:-1])
    assert client.in_flight == 0


def drain_with_replies(session: ClientSession) -> list[Any]:
    """As ``drain``, the plain answers taken by ``next_replies`` (as aio's client takes them)."""
    events: list[Any] = []
    while True:
        events += [Reply(tag, value) for tag, value in session.next_replies()]
        event = session.next_event()
        if event is None:
            return events
        events.append(event)


ANSWER_KINDS = st.sampled_from(["right", "right", "right", "error", "wrong", "stray", "garbage", "rversion"])


@given(calls=st.lists(st.booleans(), min_size=1, max_size=6), abandoned=st.sets(st.integers(1, 6), max_size=2),
       answers=st.lists(st.tuples(ANSWER_KINDS, st.integers(1, 6)), max_size=10),
       step=st.integers(1, 40), lost=st.booleans(), handshake=st.sampled_from([True, True, True, False]))
def test_next_replies_then_next_event_read_as_next_event_alone(
        calls: list[bool], abandoned: set[int], answers: list[tuple[str, int]], step: int, lost: bool,
        handshake: bool) -> None:
    """The fast path aio's client reads answers with shows the events ``next_event`` shows, in
    order, and leaves the session as it leaves it: answers of every kind (the method's, an error,
    the other method's, a stray, one that does not decode, a late Rversion) to calls in flight
    or abandoned, before or after the handshake, however the bytes arrive."""
    def right(tag: int) -> Any:
        pings = tag > len(calls) or calls[tag - 1]
        return PING.response(f"v{tag}") if pings else FAIL.response()

    def wrong(tag: int) -> Any:
        return FAIL.response() if isinstance(right(tag), PING.response) else PING.response("w")

    encoded = {"right": lambda tag: ECHO.Rframe(tag, right(tag)).encode(),
               "error": lambda tag: ECHO.Rframe(tag, jetwire.Error("no", code="E")).encode(),
               "wrong": lambda tag: ECHO.Rframe(tag, wrong(tag)).encode(),
               "stray": lambda tag: ECHO.Rframe(tag + 100, PING.response("s")).encode(),
               "garbage": lambda tag: frame(103, tag, b"\x09"),
               "rversion": lambda tag: rversion(tag)}
    data = b"".join(encoded[kind](tag) for kind, tag in answers)
    sessions = []
    for _ in range(2):
        client = ready_client() if handshake else ClientSession(ECHO, version=SPEC_VERSION)
        if handshake:
            for ping in calls:
                method = PING if ping else FAIL
                client.call(method, method.request("x") if ping else method.request())
            for tag in abandoned:
                client.abandon(tag)
        else:
            client.start()
        sessions.append(client)
    seen = []
    for client, read in zip(sessions, (drain, drain_with_replies), strict=True):
        events = []
        for i in range(0, len(data), step):
            client.receive_data(data[i:i + step])
            events += read(client)
        if lost:
            client.connection_lost()
            events += read(client)
        # exceptions compare by identity: two sessions' errors are alike if they say the same
        described = [(type(e).__name__, getattr(e, "tag", None), getattr(e, "value", None),
                      repr(getattr(e, "error", None))) for e in events]
        seen.append((described, client.in_flight, client.strays, client.tags_free(), client.negotiated,
                     repr(client.broken), client.call(PING, PING.request("n"))[0] if client.negotiated
                     and client.broken is None and not lost and client.tags_free() else None))
    assert seen[0] == seen[1]

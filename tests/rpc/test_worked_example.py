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

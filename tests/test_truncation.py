"""Running out of data is a kind of its own: ``TruncatedError``, a ``DecodeError``.

A reader holding the first bytes of a stream must tell "wait for more" from "this is wrong";
the class says which, so nothing has to read the message's words. Every way of running out
(a frame's header or body, a string, a list, an int, a custom codec's field) raises it, on
every decoding path; no other refusal does, a frame whose own size cuts its message included.
"""

from __future__ import annotations

import asyncio
import io
import pickle
from typing import Any, Optional

import pytest

import jetwire as jw
from jetwire import DecodeError, FrameError, FrameReader, TruncatedError, u8, u16, u32, wireenum, wireformat
from jetwire.compiler import interpret
from jetwire.compiler.framing import HEADER_SIZE, parse_header, size_below_minimum
from jetwire.p9 import Rclunk, Rframe, Tclunk, Tframe, Twalk


@wireformat
class Named:
    id: u32
    name: str
    parts: list[u16]
    note: Optional[str] = None


@wireenum
class Shape:
    class Dot:
        pass

    class Circle:
        r: u16


@wireformat
class WithLevel:
    level: jw.Level  # a custom codec (LevelCodec): its reader runs out as a field does
    after: u8


WALK = Tframe(tag=3, msg=Twalk(fid=1, newfid=2, wnames=["usr", "lib"]))

# (type, a valid encoding): every strict prefix of each runs out somewhere different
CASES: list[tuple[str, Any, bytes]] = [
    ("frame", Tframe, WALK.encode()),
    ("fixed frame", Tframe, Tframe(tag=1, msg=Tclunk(fid=7)).encode()),
    ("struct with a string and a list", Named, Named(5, "héllo", [1, 2, 3], "n").encode()),
    ("string", str, jw.encode("abc", str)),
    ("list", list[u32], jw.encode([1, 2], list[u32])),
    ("int", u32, jw.encode(7, u32)),
    ("enum", Shape, Shape.Circle(9).encode()),  # type: ignore[attr-defined]
    ("custom codec", WithLevel, WithLevel(jw.Level.WARN, 1).encode()),
]


def _decoders(tp: Any) -> list[tuple[str, Any]]:
    node = jw.Codec(tp).node
    return [
        ("decode", lambda data: jw.decode(tp, data)),
        ("decode_prefix", lambda data: jw.decode_prefix(tp, data)),
        ("decode of a view", lambda data: jw.decode(tp, memoryview(bytearray(data)))),
        ("interpreter", lambda data: interpret.decode_buffer(node, data, 0, node.label)),
        ("read_value", lambda data: jw.read_value(tp, io.BytesIO(data))),
    ]


@pytest.mark.parametrize(("what", "tp", "data"), CASES, ids=[c[0] for c in CASES])
def test_every_cut_of_a_valid_encoding_is_truncated(what: str, tp: Any, data: bytes) -> None:
    for name, decode in _decoders(tp):
        assert decode(data) is not None
        # read_value at the very start of a source is EOFError: no value began
        for cut in range(1 if name == "read_value" else 0, len(data)):
            with pytest.raises(TruncatedError) as info:
                decode(data[:cut])
            assert info.value.offset <= cut, (name, cut)


def test_a_cut_frame_header_is_truncated_with_the_field_it_cut() -> None:
    data = WALK.encode()
    with pytest.raises(TruncatedError) as info:
        Tframe.decode(data[:2])  # inside size[4]
    assert info.value.path == "Tframe.size"
    with pytest.raises(TruncatedError) as info:
        Tframe.decode(data[:5])  # size read, type[1] tag[2] cut
    assert info.value.path == "Tframe" and info.value.offset == 4


def test_reading_from_an_asyncio_stream_that_ends_inside_a_value() -> None:
    async def scenario() -> None:
        stream = asyncio.StreamReader()
        stream.feed_data(WALK.encode()[:-2])
        stream.feed_eof()
        with pytest.raises(TruncatedError):
            await jw.read_value_async(Tframe, jw.ValueReader(stream))

    asyncio.run(scenario())


def _frame_with_size(frame: bytes, size: int) -> bytes:
    return size.to_bytes(4, "little") + frame[4:size]


NOT_TRUNCATED: list[tuple[str, Any, bytes]] = [
    ("invalid UTF-8", str, b"\x02\x00\xff\xfe"),
    ("a bool that is 2", bool, b"\x02"),
    ("an unknown variant", Shape, b"\x07"),
    ("a frame size below 7", Tframe, b"\x05\x00\x00\x00\x00\x00\x00"),
    ("an unknown message type", Tframe, b"\x07\x00\x00\x00\x01\x00\x00"),
    # every byte is there: the frame's own size ends inside Twalk's wnames, so more input
    # would be read as the next frame, not as the rest of this one
    ("a frame whose size cuts its message", Tframe, _frame_with_size(WALK.encode(), len(WALK.encode()) - 2)),
    ("bytes left over inside a frame", Tframe, _frame_with_size(Tframe(tag=1, msg=Tclunk(fid=7)).encode() + b"\0", 12)),
    ("a bad custom value", WithLevel, b"\x09\x01"),
]


@pytest.mark.parametrize(("what", "tp", "data"), NOT_TRUNCATED, ids=[c[0] for c in NOT_TRUNCATED])
def test_other_refusals_are_not_truncated(what: str, tp: Any, data: bytes) -> None:
    for name, decode in _decoders(tp):
        with pytest.raises(DecodeError) as info:
            decode(data)
        assert not isinstance(info.value, TruncatedError), (name, info.value)


def test_bytes_left_over_are_not_truncated() -> None:
    for data in (b"\x01\x00\x00", bytearray(b"\x01\x00\x00")):
        with pytest.raises(DecodeError, match="left over") as info:
            jw.decode(u16, data)
        assert not isinstance(info.value, TruncatedError)


def test_nesting_too_deep_is_not_truncated() -> None:
    @wireformat
    class Link:
        next: Optional[Link]

    data = b"\x01" * (jw.MAX_DEPTH + 5) + b"\x00"
    with pytest.raises(DecodeError, match="nesting too deep") as info:
        Link.decode(data)
    assert not isinstance(info.value, TruncatedError)


def test_the_frame_reader_never_reports_a_frame_as_truncated() -> None:
    """It waits for ``size`` bytes before decoding: a frame it refuses is wrong, not short."""
    reader: FrameReader[Rframe] = FrameReader(Rframe)
    reader.feed(Rframe(tag=1, msg=Rclunk()).encode()[:-1])
    assert reader.next_frame() is None  # a cut frame is waited for
    short = _frame_with_size(WALK.encode(), len(WALK.encode()) - 2)
    frames: FrameReader[Tframe] = FrameReader(Tframe)
    frames.feed(short)
    with pytest.raises(FrameError) as info:
        frames.next_frame()
    assert not isinstance(info.value, TruncatedError)
    assert (info.value.tag, info.value.type) == (3, 110)


def test_the_kind_survives_pickling_and_is_a_decode_error() -> None:
    with pytest.raises(TruncatedError) as info:
        Named.decode(Named(1, "x", []).encode()[:-1])
    copy = pickle.loads(pickle.dumps(info.value))
    assert type(copy) is TruncatedError and str(copy) == str(info.value)
    assert issubclass(TruncatedError, DecodeError) and issubclass(TruncatedError, jw.JetwireError)


def test_the_frame_facts_agree_with_the_declared_frames() -> None:
    """One header layout for every reader: what parse_header reads is what Frame.encode wrote."""
    data = WALK.encode()
    assert HEADER_SIZE == 7
    assert parse_header(data) == (len(data), 110, 3)
    assert parse_header(b"\0" + data, 1) == (len(data), 110, 3)
    with pytest.raises(DecodeError) as info:
        Tframe.decode(b"\x06\x00\x00\x00\x00\x00")
    assert info.value.reason == size_below_minimum(6)
    reader: FrameReader[Tframe] = FrameReader(Tframe)
    reader.feed(b"\x06\x00\x00\x00")
    with pytest.raises(FrameError) as frame_info:
        reader.next_frame()
    assert frame_info.value.reason == size_below_minimum(6)

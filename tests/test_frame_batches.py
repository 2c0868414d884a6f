"""``FrameReader.next_frames`` (every whole frame of a read at once) and ``next_messages`` (the
same as ``(tag, message)`` pairs) give what ``next_frame`` gives one by one: the same frames in the same order, the same error at the same frame, the
same bytes left buffered, however the stream is cut into reads. Both kinds of generated batch
decoder: 9P's (many types: each frame's decoder looked up and called) and a frame class of a
few types (each type's decoding inline in the loop)."""

from __future__ import annotations

import struct
from typing import Annotated, Any, Optional, Union

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jetwire import Frame, FrameError, FrameReader, Tagged, i32, u8, u16, wireformat
from jetwire.compiler.unions import INLINE_FRAME_TYPES
from jetwire.p9 import Rclunk, Rframe, Rlerror, Rread, Rversion

GOOD = [
    bytes(Rframe(1, Rclunk()).encode()),
    bytes(Rframe(2, Rread(data=b"abc" * 5)).encode()),
    bytes(Rframe(3, Rlerror(ecode=2)).encode()),
    bytes(Rframe(0xFFFF, Rversion(msize=8192, version="9P2000.L")).encode()),
]
BAD = [
    struct.pack("<IBH", 9, 255, 7) + b"xy",  # an unknown type
    struct.pack("<IBH", 8, 12, 8) + b"z",  # Rclunk with a byte left over
    struct.pack("<I", 3),  # a size below 7: only its 4 bytes go
    struct.pack("<IBH", 70_000, 117, 9) + b"\0" * 20,  # over max_size; the rest of it is skipped as it arrives
]



@wireformat
class Note:
    text: str
    marks: list[u8]
    flag: Optional[u16]


@wireformat
class Point:
    x: i32
    y: i32


@wireformat
class Placed:
    where: Point
    label: str


@wireformat
class Clash:
    """Fields named as decode_frames's own locals are: the generated loop must name theirs apart."""

    end: u8
    max: u16
    frames: str
    sizes: list[u8]
    ty: u8


class Small(Frame[Annotated[Union[Note, Point, Placed, Clash],
                            Tagged({100: Note, 102: Point, 104: Placed, 106: Clash})]]):
    """Few enough types for decode_frames to decode each in its own branch of the loop."""


SMALL_GOOD = [
    bytes(Small(1, Note("héllo", [1, 2, 3], 7)).encode()),
    bytes(Small(2, Note("", [], None)).encode()),
    bytes(Small(3, Point(-1, 2**31 - 1)).encode()),
    bytes(Small(0xFFFF, Placed(Point(5, 6), "here")).encode()),
    bytes(Small(4, Clash(1, 2, "three", [4, 5], 6)).encode()),
]
SMALL_BAD = [
    struct.pack("<IBH", 9, 101, 7) + b"xy",  # a type of no message
    struct.pack("<IBHii", 16, 102, 8, 1, 2) + b"!",  # a Point with a byte left over
    struct.pack("<IBHH", 12, 100, 9, 40) + b"abc",  # a text running past its frame, into the next one
    struct.pack("<IBHH", 11, 100, 10, 2) + b"\xff\xfe",  # a text that is not UTF-8 (and nothing after it)
    struct.pack("<I", 3),  # a size below 7: only its 4 bytes go
    struct.pack("<IBH", 70_000, 102, 11) + b"\0" * 20,  # over max_size; the rest of it is skipped as it arrives
]
CASES = [(Rframe, GOOD + BAD), (Small, SMALL_GOOD + SMALL_BAD)]


def test_the_small_frame_class_is_decoded_inline() -> None:
    """The case this file's second kind stands for: its decoder has a branch per type."""
    from jetwire.compiler.unit import install

    assert 3 <= INLINE_FRAME_TYPES

    source = install(Small).group_source("decode frames")
    assert "_ty == 100" in source and "_ty == 104" in source and "_FDEC" not in source
    assert "_FDEC[" in install(Rframe).group_source("decode frames")


def one_by_one(reader: FrameReader[Any]) -> list[object]:
    out: list[object] = []
    while True:
        try:
            frame = reader.next_frame()
        except FrameError as exc:
            out.append((exc.reason, exc.tag, exc.size))
            continue
        if frame is None:
            return out
        out.append(frame)


def in_batches(reader: FrameReader[Any], pairs: bool = False) -> list[object]:
    """What ``next_frames`` (or, with ``pairs``, ``next_messages``, made frames again) gives."""
    out: list[object] = []
    while True:
        sizes: list[int] = []
        if pairs:
            batch = [reader.frame_type(tag, msg) for tag, msg in reader.next_messages(sizes)]
        else:
            batch = reader.next_frames(sizes)
        assert sizes == [len(frame.encode()) for frame in batch]
        out += batch
        try:  # what the batch stopped at: an error, a frame only the slow path decodes, or nothing yet
            frame = reader.next_frame()
        except FrameError as exc:
            out.append((exc.reason, exc.tag, exc.size))
            continue
        if frame is None:
            return out
        out.append(frame)


@pytest.mark.parametrize(("frame_type", "samples"), CASES, ids=["9P Rframe", "a few types"])
@given(data=st.data())
def test_next_frames_reads_as_next_frame_does(frame_type: Any, samples: list[bytes], data: st.DataObject) -> None:
    pieces = data.draw(st.lists(st.sampled_from(samples), max_size=12))
    cuts = data.draw(st.lists(st.integers(0, 400), max_size=6))
    stream = b"".join(pieces)
    points = sorted({min(cut, len(stream)) for cut in cuts})
    reads = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)])]
    single, batched, paired = (FrameReader(frame_type, 65536) for _ in range(3))
    expected: list[object] = []
    got: list[object] = []
    got_pairs: list[object] = []
    for data in reads:
        for reader in (single, batched, paired):
            reader.feed(data)
        expected += one_by_one(single)
        got += in_batches(batched)
        got_pairs += in_batches(paired, pairs=True)
        assert batched.buffered == single.buffered == paired.buffered
    assert got == expected
    assert got_pairs == expected


@pytest.mark.parametrize(("frame_type", "good"), [(Rframe, GOOD), (Small, SMALL_GOOD)], ids=["9P Rframe", "a few types"])
def test_next_frames_takes_every_whole_frame_of_a_read_at_once(frame_type: Any, good: list[bytes]) -> None:
    reader = FrameReader(frame_type)
    reader.feed(b"".join(good) + good[0][:5])
    assert reader.next_frames() == [frame_type.decode(data) for data in good]
    assert reader.buffered == 5 and reader.next_frames() == []
    reader.feed(good[0][5:])
    assert reader.next_frames() == [frame_type.decode(good[0])] and reader.buffered == 0
    reader.feed(b"".join(good))
    frames = [frame_type.decode(data) for data in good]
    assert reader.next_messages() == [(frame.tag, frame.msg) for frame in frames] and reader.buffered == 0

"""``FrameReader.next_frames`` (every whole frame of a read at once) gives what ``next_frame``
gives one by one: the same frames in the same order, the same error at the same frame, the
same bytes left buffered, however the stream is cut into reads."""

from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st

from jetwire import FrameError, FrameReader
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


def one_by_one(reader: FrameReader[Rframe]) -> list[object]:
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


def in_batches(reader: FrameReader[Rframe]) -> list[object]:
    out: list[object] = []
    while True:
        sizes: list[int] = []
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


@given(st.lists(st.sampled_from(GOOD + BAD), max_size=12), st.lists(st.integers(0, 400), max_size=6))
def test_next_frames_reads_as_next_frame_does(pieces: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(pieces)
    points = sorted({min(cut, len(stream)) for cut in cuts})
    reads = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)])]
    single, batched = FrameReader(Rframe, 65536), FrameReader(Rframe, 65536)
    expected: list[object] = []
    got: list[object] = []
    for data in reads:
        single.feed(data)
        batched.feed(data)
        expected += one_by_one(single)
        got += in_batches(batched)
        assert batched.buffered == single.buffered
    assert got == expected


def test_next_frames_takes_every_whole_frame_of_a_read_at_once() -> None:
    reader = FrameReader(Rframe)
    reader.feed(b"".join(GOOD) + GOOD[0][:5])
    assert reader.next_frames() == [Rframe.decode(data) for data in GOOD]
    assert reader.buffered == 5 and reader.next_frames() == []
    reader.feed(GOOD[0][5:])
    assert reader.next_frames() == [Rframe.decode(GOOD[0])] and reader.buffered == 0

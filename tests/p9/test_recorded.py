"""A diod session recorded from diod's own tools (tests/p9/fixtures/diod-session.bin): bytes
that nobody here wrote, each frame decoded by jetwire and re-encoded to the identical bytes."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from jetwire import DecodeError, FrameReader
from jetwire.p9 import Rframe, Rlerror, Rreaddir, Tframe, Tversion, parse_dirents

FIXTURE = Path(__file__).parent / "fixtures" / "diod-session.bin"


def records() -> list[tuple[str, bytes]]:
    data = FIXTURE.read_bytes()
    out = []
    pos = 0
    while pos < len(data):
        direction = chr(data[pos])
        size = int.from_bytes(data[pos + 1:pos + 5], "little")
        out.append((direction, data[pos + 1:pos + 1 + size]))
        pos += 1 + size
    assert pos == len(data)
    return out


def test_every_recorded_frame_round_trips() -> None:
    """r[9p2000l.frame.header], r[9p2000l.types]: 224 frames of diodls, diodcat, dioddate."""
    seen: Counter[str] = Counter()
    for direction, raw in records():
        frame_type = Tframe if direction == "T" else Rframe
        frame = frame_type.decode(raw)
        assert frame.encode() == raw, f"{frame!r} re-encodes differently"
        assert frame.byte_size() == len(raw)
        seen[type(frame.msg).__name__] += 1
    assert seen["Tversion"] == seen["Rversion"] == 8
    assert {"Twalk", "Rwalk", "Tgetattr", "Rgetattr", "Treaddir", "Rreaddir", "Tread", "Rread", "Tclunk"} <= set(seen)
    assert sum(seen.values()) == 224


def test_recorded_streams_through_the_frame_reader() -> None:
    """The server's replies as one byte stream, cut in awkward chunks: the same frames come out."""
    replies = b"".join(raw for direction, raw in records() if direction == "R")
    expected = [Rframe.decode(raw) for direction, raw in records() if direction == "R"]
    for chunk in (1, 3, 7, 64, 4096):
        reader = FrameReader(Rframe, max_size=65536)
        got = []
        for i in range(0, len(replies), chunk):
            reader.feed(replies[i:i + chunk])
            got.extend(reader)
        assert got == expected and reader.buffered == 0


def test_recorded_details() -> None:
    """r[9p2000l.version.first]: each connection opens with Tversion tag NOTAG;
    r[9p2000l.readdir.dirent]: diod's Rreaddir data parses into whole entries;
    r[9p2000l.error.rlerror]: its Tauth answers are Rlerror ENOENT (no auth needed)."""
    frames = [(d, (Tframe if d == "T" else Rframe).decode(raw)) for d, raw in records()]
    versions = [f for d, f in frames if isinstance(f.msg, Tversion)]
    assert versions and all(f.tag == 0xFFFF and f.msg.version == "9P2000.L" for f in versions)
    listings = [f.msg for d, f in frames if isinstance(f.msg, Rreaddir) and f.msg.data]
    names = {e.name for listing in listings for e in parse_dirents(listing.data)}
    assert {".", ".."} <= names and len(names) > 3
    errors = [f.msg.ecode for d, f in frames if isinstance(f.msg, Rlerror)]
    assert errors and set(errors) == {2}


@pytest.mark.parametrize("cut", [1, 5, 6])
def test_a_truncated_recorded_frame_is_refused(cut: int) -> None:
    raw = next(raw for d, raw in records() if d == "R" and len(raw) > 20)
    with pytest.raises(DecodeError, match="needs"):
        Rframe.decode(raw[:-cut])


def test_frames_read_from_files_and_streams() -> None:
    """read_value / read_value_async on a stream of frames: each call consumes exactly one
    frame; a clean end is EOFError, a cut frame or a size below 7 is a DecodeError naming it."""
    import asyncio
    import io

    from jetwire import read_value, read_value_async

    replies = [raw for direction, raw in records() if direction == "R"]
    stream = io.BytesIO(b"".join(replies))
    got = [read_value(Rframe, stream) for _ in replies]
    assert got == [Rframe.decode(raw) for raw in replies]
    with pytest.raises(EOFError):
        read_value(Rframe, stream)
    with pytest.raises(DecodeError, match="needs"):
        read_value(Rframe, io.BytesIO(replies[5][:-3]))
    with pytest.raises(DecodeError, match="below the 7-byte minimum"):
        read_value(Rframe, io.BytesIO(b"\x05\x00\x00\x00\x07"))

    async def read_all() -> list[Rframe]:
        reader = asyncio.StreamReader()
        reader.feed_data(b"".join(replies))
        reader.feed_eof()
        frames = [await read_value_async(Rframe, reader) for _ in replies]
        with pytest.raises(EOFError):
            await read_value_async(Rframe, reader)
        return frames

    assert asyncio.run(read_all()) == got


def test_a_huge_claimed_size_does_not_size_a_buffer() -> None:
    """A frame claiming 4 GiB on a stream that holds 10 bytes: a DecodeError, read in bounded
    chunks (nothing allocates what the size field says)."""
    import io

    from jetwire import read_value

    class Counting(io.BytesIO):
        largest = 0

        def read(self, n: int | None = -1) -> bytes:
            Counting.largest = max(Counting.largest, n or 0)
            return super().read(n)

    with pytest.raises(DecodeError, match="needs"):
        read_value(Rframe, Counting(b"\xff\xff\xff\xff\x75\x01\x00abc"))
    assert Counting.largest <= 1 << 20

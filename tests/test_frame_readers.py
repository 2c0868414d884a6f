"""Every reader of frames agrees on a bad size, however the bytes arrive: ``FrameReader`` (one
chunk or byte by byte), ``read_value`` on a file, ``ValueReader`` and ``read_value_async`` on an
asyncio stream. A size below 7 (r[9p2000l.frame.header]) is a ``DecodeError`` naming it, and
only its 4 size bytes are dropped: a size that small cannot be skipped by."""

from __future__ import annotations

import asyncio
import io
import struct
from pathlib import Path

import pytest

from jetwire import DecodeError, FrameError, FrameReader, ValueReader, read_value, read_value_async
from jetwire.p9 import Rclunk, Rframe, Tframe

REPLAY = bytes.fromhex("05 00 00 00 00 00 00 00 00")  # size 5, then size 0, then one byte
# what each reader says, in turn: two sizes refused 4 bytes apart, then a frame cut after 1 byte
EXPECTED = ["size 5 is below the 7-byte minimum", "size 0 is below the 7-byte minimum", "cut"]


def outcome(exc: BaseException) -> str:
    assert isinstance(exc, DecodeError), repr(exc)
    text = str(exc)
    for words in EXPECTED[:2]:
        if words in text:
            assert exc.path == "Tframe.size" and exc.offset == 0
            return words
    return "cut"


def frame_reader(chunks: list[bytes]) -> list[str]:
    reader = FrameReader(Tframe)
    seen = []
    for chunk in chunks:
        reader.feed(chunk)
        while True:
            try:
                if reader.next_frame() is None:
                    break
            except FrameError as exc:
                assert exc.tag is None and exc.type is None
                seen.append(outcome(exc))
    if reader.buffered:  # it waits for the rest of a frame
        seen.append("cut")
    return seen


@pytest.mark.parametrize("by_byte", [False, True], ids=["one chunk", "byte by byte"])
def test_frame_reader(by_byte: bool) -> None:
    chunks = [REPLAY[i:i + 1] for i in range(len(REPLAY))] if by_byte else [REPLAY]
    assert frame_reader(chunks) == EXPECTED


def read_all_from(file: io.BufferedIOBase | io.BytesIO) -> list[str]:
    seen = []
    while True:
        try:
            read_value(Tframe, file)  # type: ignore[arg-type]
        except EOFError:
            return seen
        except DecodeError as exc:
            seen.append(outcome(exc))


@pytest.mark.parametrize("kind", ["BytesIO", "file", "unseekable"])
def test_read_value(kind: str, tmp_path: Path) -> None:
    if kind == "BytesIO":
        assert read_all_from(io.BytesIO(REPLAY)) == EXPECTED
        return
    path = tmp_path / "replay"
    path.write_bytes(REPLAY)
    if kind == "file":
        with path.open("rb") as file:
            assert read_all_from(file) == EXPECTED
    else:
        with path.open("rb", buffering=0) as raw:
            raw.seekable = lambda: False  # type: ignore[method-assign]
            assert read_all_from(io.BufferedReader(raw)) == EXPECTED  # type: ignore[arg-type]


@pytest.mark.parametrize("how", ["ValueReader", "bare StreamReader"])
@pytest.mark.parametrize("by_byte", [False, True], ids=["one chunk", "byte by byte"])
def test_asyncio_streams(how: str, by_byte: bool) -> None:
    async def body() -> list[str]:
        stream = asyncio.StreamReader()
        for i in range(len(REPLAY)) if by_byte else [None]:
            stream.feed_data(REPLAY if i is None else REPLAY[i:i + 1])
        stream.feed_eof()
        source: asyncio.StreamReader | ValueReader = ValueReader(stream) if how == "ValueReader" else stream
        seen = []
        while True:
            try:
                await read_value_async(Tframe, source)
            except EOFError:
                return seen
            except DecodeError as exc:
                seen.append(outcome(exc))

    assert asyncio.run(body()) == EXPECTED


def oversized(tag: int) -> bytes:
    return struct.pack("<IBH", 100_000, 25, tag) + bytes(100_000 - 7)


GOOD = Rframe(tag=3, msg=Rclunk())


@pytest.mark.parametrize("first", [1, 4, 5, 6, 7, 100, 100_000])
def test_an_oversized_frames_error_carries_its_tag_however_it_is_split(first: int) -> None:
    """The tag used to come with the error only when the first chunk held 7 bytes of it."""
    data = oversized(tag=9) + GOOD.encode()
    reader = FrameReader(Rframe, max_size=8192)
    errors = []
    frames = []
    for chunk in (data[:first], data[first:]):
        reader.feed(chunk)
        while True:
            try:
                frame = reader.next_frame()
            except FrameError as exc:
                errors.append(exc)
                continue
            if frame is None:
                break
            frames.append(frame)
    (error,) = errors
    assert (error.tag, error.type, error.size) == (9, 25, 100_000)
    assert "size 100000 is over the limit of 8192" in str(error)
    assert frames == [GOOD] and reader.buffered == 0  # the whole frame was dropped, and nothing more

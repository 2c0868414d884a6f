"""Reading values from files and asyncio streams: every kind of source, cut anywhere.

Whatever the source (seekable or not, with ``peek`` or not, short reads, asyncio chunks),
a run of values reads back whole with the bytes after them left for the next reader; a
value cut by the end of the source raises the ``DecodeError`` the bytes decoder raises for
the same bytes (same reason, path and offset), and ``EOFError`` before its first byte.
"""

from __future__ import annotations

import asyncio
import io
import os
import socket
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any, Optional

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jetwire as jw
from jetwire import u16, u32, wireenum, wireformat
from jetwire.p9 import Rframe, Rread, Tframe, Twalk
from jetwire.testing.strategies import strategy


@wireformat
class Item:
    a: u16
    label: str


@wireenum
class Shape:
    class Dot:
        pass

    class Circle:
        radius: u32


@wireformat
class Msg:
    id: u32
    name: str
    note: Optional[str]
    items: list[Item]
    shape: Shape
    blob: bytes


@wireformat
class Pair:  # fixed size: one read of 6 bytes
    a: u32
    b: u16


class Trickle(io.RawIOBase):
    """A raw file that is neither seekable nor peekable and returns short reads (a pipe or a
    socket): each read gives at most the next of ``sizes`` bytes (cycling)."""

    def __init__(self, data: bytes, sizes: tuple[int, ...] = (1,)) -> None:
        self._data = data
        self._pos = 0
        self._sizes = sizes
        self._turn = 0
        self.largest_request = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        self.largest_request = max(self.largest_request, len(buf))
        size = self._sizes[self._turn % len(self._sizes)]
        self._turn += 1
        n = min(len(buf), size, len(self._data) - self._pos)
        buf[:n] = self._data[self._pos:self._pos + n]
        self._pos += n
        return n

    def rest(self) -> bytes:
        return self._data[self._pos:]


def file_sources(data: bytes, sizes: tuple[int, ...] = (1, 7, 3)) -> Iterator[tuple[str, Any, Callable[[], bytes]]]:
    """(name, file, what is left in it) for each kind of file the readers tell apart."""
    plain = io.BytesIO(data)
    yield "BytesIO (seekable)", plain, plain.read
    raw = Trickle(data, sizes)
    yield "unbuffered pipe (exact reads)", raw, raw.rest
    for buffer_size in (1, 5, 64, 8192):
        buffered = io.BufferedReader(Trickle(data, sizes), buffer_size=buffer_size)
        yield f"BufferedReader({buffer_size}) over a pipe (peek)", buffered, buffered.read
        seekable = io.BufferedReader(io.BytesIO(data), buffer_size=buffer_size)  # type: ignore[arg-type]
        yield f"BufferedReader({buffer_size}) over BytesIO (seek)", seekable, seekable.read


def fed(data: bytes, cuts: list[int]) -> asyncio.StreamReader:
    """A StreamReader given ``data`` in pieces ending at ``cuts``, then its end."""
    reader = asyncio.StreamReader()
    start = 0
    for cut in sorted(set(cuts)) + [len(data)]:
        if start < cut <= len(data):
            reader.feed_data(data[start:cut])
            start = cut
    reader.feed_eof()
    return reader


async def read_async_all(tp: Any, data: bytes, cuts: list[int], count: int, chunk_size: int) -> list[tuple[list[Any], bytes]]:
    """The values read by a ValueReader and by bare read_value_async, and what each left."""
    wrapped = jw.ValueReader(fed(data, cuts), chunk_size=chunk_size)
    values = [await wrapped.read(tp) for _ in range(count)]
    left = wrapped.take_buffered() + await wrapped.stream.read()  # type: ignore[attr-defined]
    bare = fed(data, cuts)
    bare_values = [await jw.read_value_async(tp, bare) for _ in range(count)]
    return [(values, left), (bare_values, await bare.read())]


def error_of(call: Callable[[], Any]) -> tuple[str, str, int]:
    with pytest.raises(jw.DecodeError) as info:
        call()
    return (info.value.reason, info.value.path, info.value.offset)


async def async_error_of(call: Callable[[], Any]) -> tuple[str, str, int]:
    with pytest.raises(jw.DecodeError) as info:
        await call()
    return (info.value.reason, info.value.path, info.value.offset)


TRAILER = b"\xfe\xed after the values"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=st.lists(strategy(Msg), min_size=1, max_size=4), data=st.data())
def test_runs_of_values_read_back_whole_from_every_source(values: list[Msg], data: st.DataObject) -> None:
    blob = b"".join(v.encode() for v in values) + TRAILER
    sizes = tuple(data.draw(st.lists(st.integers(1, 40), min_size=1, max_size=5), label="read sizes"))
    for name, file, rest in file_sources(blob, sizes):
        assert [Msg.decode_from(file) for _ in values] == values, name
        assert rest() == TRAILER, name
    cuts = data.draw(st.lists(st.integers(0, len(blob)), max_size=8), label="chunk ends")
    chunk_size = data.draw(st.sampled_from([1, 3, 16, 1 << 16]), label="chunk_size")
    for got, left in asyncio.run(read_async_all(Msg, blob, cuts, len(values), chunk_size)):
        assert got == values and left == TRAILER


@pytest.mark.parametrize("tp,value", [
    (Msg, Msg(7, "name", "nöte", [Item(1, "a"), Item(2, "")], Shape.Circle(9), b"\x00\x01")),
    (Pair, Pair(1, 2)),
    (Tframe, Tframe(3, Twalk(1, 2, ["usr", "lib"]))),
])
def test_a_value_cut_anywhere_fails_as_the_bytes_decoder_does(tp: Any, value: Any) -> None:
    """Every split point: the source ends after ``cut`` bytes of the value."""
    whole = jw.encode(value, tp)
    for cut in range(len(whole)):
        part = whole[:cut]
        for name, file, _ in file_sources(part, (2, 1)):
            if cut == 0:
                with pytest.raises(EOFError):
                    jw.read_value(tp, file)
                continue
            assert error_of(lambda: jw.read_value(tp, file)) == error_of(lambda: jw.decode_prefix(tp, part)), (name, cut)

        async def cut_streams(part: bytes = part) -> None:
            for chunk_size in (1, 4, 1 << 16):
                for reader in (jw.ValueReader(fed(part, [1, 3]), chunk_size), fed(part, [2])):
                    if not part:
                        with pytest.raises(EOFError):
                            await jw.read_value_async(tp, reader)
                        continue
                    got = await async_error_of(lambda r=reader: jw.read_value_async(tp, r))  # type: ignore[misc]
                    assert got == error_of(lambda: jw.decode_prefix(tp, part))

        asyncio.run(cut_streams())


def test_a_bad_value_fails_as_the_bytes_decoder_does() -> None:
    good = Msg(1, "n", None, [Item(1, "x")], Shape.Dot(), b"").encode()
    at = len(good) - 5  # the shape's tag, before the blob's 4-byte length
    bad = good[:at] + b"\x07" + good[at + 1:] + TRAILER
    expected = error_of(lambda: Msg.decode_prefix(bad))
    assert expected[1] == "Msg.shape"
    for name, file, _ in file_sources(bad):
        assert error_of(lambda: Msg.decode_from(file)) == expected, name

    async def streams() -> None:
        for reader in (jw.ValueReader(fed(bad, [5])), fed(bad, [5])):
            assert await async_error_of(lambda: jw.read_value_async(Msg, reader)) == expected

    asyncio.run(streams())


def test_after_a_bad_frame_the_next_frame_reads() -> None:
    """A frame's size says where it ends: a bad one is dropped whole (as FrameReader does)."""
    first = Rframe(1, Rread(b"abc")).encode()
    bad = first[:4] + b"\x01" + first[5:]  # type 1 is no R-message
    second = Rframe(2, Rread(b"xyz")).encode()
    for name, file, _ in file_sources(bad + second + first):
        with pytest.raises(jw.DecodeError, match="unknown message type"):
            jw.read_value(Rframe, file)
        assert jw.read_value(Rframe, file) == Rframe(2, Rread(b"xyz")), name
        assert jw.read_value(Rframe, file) == Rframe(1, Rread(b"abc")), name

    async def streams() -> None:
        for reader in (jw.ValueReader(fed(bad + second, [3])), fed(bad + second, [3])):
            with pytest.raises(jw.DecodeError, match="unknown message type"):
                await jw.read_value_async(Rframe, reader)
            assert await jw.read_value_async(Rframe, reader) == Rframe(2, Rread(b"xyz"))

    asyncio.run(streams())


def test_a_bad_value_on_an_open_pipe_fails_without_waiting_for_more() -> None:
    """Reading ahead waits for more bytes only when decoding proves the value needs them: a
    bad value followed by a silent (open) peer is an error now, not a hang."""
    good = Msg(1, "n", None, [], Shape.Dot(), b"").encode()
    bad = good[:-5] + b"\x09" + good[-4:]  # a bad shape tag, then 4 bytes of the blob's length
    left, right = socket.socketpair()
    try:
        right.sendall(bad)
        file = left.makefile("rb")
        outcome: list[BaseException] = []

        def read() -> None:
            try:
                Msg.decode_from(file)
            except BaseException as exc:
                outcome.append(exc)

        thread = threading.Thread(target=read, daemon=True)
        thread.start()
        thread.join(5)
        assert not thread.is_alive(), "read_value waited for bytes a bad value does not need"
        assert isinstance(outcome[0], jw.DecodeError) and outcome[0].path == "Msg.shape"
    finally:
        left.close()
        right.close()

    async def silent_stream() -> None:
        reader = asyncio.StreamReader()
        reader.feed_data(bad)  # and no end: the peer waits for an answer
        with pytest.raises(jw.DecodeError, match="invalid variant index 9"):
            await asyncio.wait_for(jw.ValueReader(reader, chunk_size=3).read(Msg), 5)

    asyncio.run(silent_stream())


def test_a_value_straddling_chunks_reads_fast_and_whole() -> None:
    """Values that end past what a peek or a chunk holds, many in a row, on a real pipe."""
    values = [Msg(i, "x" * (i % 50), None, [Item(i, "y")] * (i % 7), Shape.Circle(i), bytes(i % 300)) for i in range(300)]
    blob = b"".join(v.encode() for v in values)
    read_end, write_end = os.pipe()

    def write() -> None:
        with os.fdopen(write_end, "wb") as out:
            for at in range(0, len(blob), 1000):
                out.write(blob[at:at + 1000])
                out.flush()

    writer = threading.Thread(target=write)
    writer.start()
    with os.fdopen(read_end, "rb", buffering=512) as file:
        assert [Msg.decode_from(file) for _ in values] == values
        with pytest.raises(EOFError):
            Msg.decode_from(file)
    writer.join()


@pytest.mark.parametrize("claim", [
    b"\xff\xff\xff\xff\x75\x01\x00abc",  # an Rframe of 4 GiB
    b"\x00\x00\x00\xff" + b"abc",  # an Rframe of 4 GiB, the other way round
])
def test_a_huge_claimed_size_never_sizes_a_buffer(claim: bytes) -> None:
    """Only what arrived is held: each source, reading a frame that claims 4 GiB, holds a few
    bytes and raises DecodeError."""
    tracemalloc.start()
    try:
        for name, file, _ in file_sources(claim):
            with pytest.raises(jw.DecodeError):
                jw.read_value(Rframe, file)
            assert tracemalloc.get_traced_memory()[1] < 8 << 20, name

        async def streams() -> None:
            for reader in (jw.ValueReader(fed(claim, [2])), fed(claim, [2])):
                with pytest.raises(jw.DecodeError):
                    await jw.read_value_async(Rframe, reader)

        asyncio.run(streams())
        assert tracemalloc.get_traced_memory()[1] < 8 << 20
    finally:
        tracemalloc.stop()


def test_a_file_without_peek_or_seek_is_asked_for_bounded_reads() -> None:
    raw = Trickle(b"\xff\xff\xff\x7f" + b"\x75" * 100, (1 << 30,))
    with pytest.raises(jw.DecodeError, match="needs"):
        jw.read_value(Rframe, raw)
    assert raw.largest_request <= 1 << 20


def test_value_reader_reads_many_values_until_the_end() -> None:
    values = [Msg(i, "n", None, [], Shape.Dot(), b"") for i in range(5)]
    blob = b"".join(v.encode() for v in values)

    async def scenario() -> None:
        reader = jw.ValueReader(fed(blob + b"\x01\x00", [3, 40]))
        got = []
        async for value in reader.values(Msg):
            got.append(value)
            if len(got) == len(values):
                break
        assert got == values
        assert reader.buffered == 2
        assert await reader.read(u16) == 1
        assert [v async for v in reader.values(Msg)] == []  # a clean end between two values

        cut = jw.ValueReader(fed(blob[:-1], []))
        with pytest.raises(jw.DecodeError, match="unexpected end"):
            [v async for v in cut.values(Msg)]

    asyncio.run(scenario())


def test_value_reader_hands_back_what_it_read_ahead() -> None:
    async def scenario() -> None:
        stream = fed(Pair(1, 2).encode() + b"next protocol", [])
        reader = jw.ValueReader(stream)
        assert await reader.read(Pair) == Pair(1, 2)
        assert reader.take_buffered() + await stream.read() == b"next protocol"
        assert reader.buffered == 0

    asyncio.run(scenario())


def test_value_reader_refuses_a_second_read_while_one_waits() -> None:
    async def scenario() -> None:
        stream = asyncio.StreamReader()
        reader = jw.ValueReader(stream)
        stream.feed_data(Msg(1, "n", None, [], Shape.Dot(), b"").encode()[:5])
        first = asyncio.ensure_future(reader.read(Msg))
        await asyncio.sleep(0)
        with pytest.raises(RuntimeError, match="another read"):
            await reader.read(Msg)
        stream.feed_data(Msg(1, "n", None, [], Shape.Dot(), b"").encode()[5:])
        assert await first == Msg(1, "n", None, [], Shape.Dot(), b"")
        with pytest.raises(ValueError, match="chunk_size"):
            jw.ValueReader(stream, chunk_size=0)

    asyncio.run(scenario())


def test_a_value_of_no_bytes_reads_even_at_the_end() -> None:
    @wireformat
    class Empty:
        pass

    assert jw.read_value(Empty, io.BytesIO(b"")) == Empty()
    assert jw.read_value(Empty, io.BufferedReader(Trickle(b""))) == Empty()

    async def scenario() -> None:
        assert await jw.ValueReader(fed(b"", [])).read(Empty) == Empty()

    asyncio.run(scenario())


def test_a_value_reader_read_cancelled_mid_value_loses_nothing() -> None:
    """``asyncio.wait_for(reader.read(T), timeout)`` that times out inside a value keeps its
    bytes: the next read starts from the value's first byte."""
    value = Msg(5, "n" * 30, "note", [Item(1, "x")] * 5, Shape.Circle(2), b"abc")
    whole = value.encode()

    async def scenario() -> None:
        stream = asyncio.StreamReader()
        reader = jw.ValueReader(stream, chunk_size=4)
        stream.feed_data(whole[:20])
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(reader.read(Msg), 0.05)
        stream.feed_data(whole[20:] + b"\x07\x00")
        assert await asyncio.wait_for(reader.read(Msg), 5) == value
        assert await reader.read(u16) == 7

    asyncio.run(scenario())


def test_straddling_values_read_from_a_value_reader_in_small_chunks() -> None:
    values = [Msg(i, "x" * i, None, [Item(i, "y")] * (i % 4), Shape.Dot(), bytes(i)) for i in range(60)]
    blob = b"".join(v.encode() for v in values)

    async def scenario() -> None:
        for chunk_size in (7, 50, 333):
            reader = jw.ValueReader(fed(blob, list(range(0, len(blob), 97))), chunk_size)
            assert [v async for v in reader.values(Msg)] == values

    asyncio.run(scenario())


def outcome_of_bytes(tp: Any, data: bytes) -> tuple[str, Any, Any]:
    """What the bytes decoder makes of ``data``: the value and what follows it, or the error."""
    if not data:
        return ("eof", None, None)
    try:
        value, end = jw.decode_prefix(tp, data)
    except jw.DecodeError as exc:
        return ("error", exc.path, (exc.reason, exc.offset))
    return ("value", value, data[end:])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.one_of(st.binary(max_size=80), strategy(Msg).map(lambda m: m.encode()).flatmap(
    lambda good: st.tuples(st.integers(0, len(good)), st.binary(max_size=3)).map(
        lambda cut: good[:cut[0]] + cut[1] + good[cut[0] + len(cut[1]):]))),
       sizes=st.lists(st.integers(1, 9), min_size=1, max_size=4), cuts=st.lists(st.integers(0, 90), max_size=4))
def test_any_bytes_read_as_the_bytes_decoder_reads_them(data: bytes, sizes: list[int], cuts: list[int]) -> None:
    """Random and damaged encodings: each source gives the bytes decoder's value and leaves
    what follows it, or raises its error (same reason, path, offset), or EOFError on nothing."""
    expected = outcome_of_bytes(Msg, data)

    def outcome(read: Callable[[], Any], rest: Callable[[], bytes]) -> tuple[str, Any, Any]:
        try:
            value = read()
        except EOFError:
            return ("eof", None, None)
        except jw.DecodeError as exc:
            return ("error", exc.path, (exc.reason, exc.offset))
        return ("value", value, rest())

    for name, file, rest in file_sources(data, tuple(sizes)):
        assert outcome(lambda: jw.read_value(Msg, file), rest) == expected, name

    async def streams() -> list[tuple[str, Any, Any]]:
        got = []
        for chunk_size in (2, 1 << 16):
            wrapped = jw.ValueReader(fed(data, cuts), chunk_size)
            try:
                got.append(("value", await wrapped.read(Msg), wrapped.take_buffered() + await wrapped.stream.read()))  # type: ignore[attr-defined]
            except EOFError:
                got.append(("eof", None, None))
            except jw.DecodeError as exc:
                got.append(("error", exc.path, (exc.reason, exc.offset)))
        return got

    assert asyncio.run(streams()) == [expected, expected]

"""The fuzz targets: each turns one case's ``random.Random`` into inputs and asks the oracle.

A target is a function ``(rng, types) -> str`` that raises ``Finding`` when a rule breaks and
otherwise returns a short description of what it checked. ``types`` is the catalogue (or the
part of it ``--type`` selected); the case draws its type from it.
"""

from __future__ import annotations

import asyncio
import io
import random
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable
from typing import Any, Optional

import jetwire as jw
from jetwire.compiler import interpret
from jetwire.compiler.plan import (
    MAX_FRAME_SIZE,
    FrameNode,
    MapNode,
    Node,
    OptionNode,
    SeqNode,
    SetNode,
    StructNode,
    TupleNode,
    UnionNode,
    reaches_zero_width,
)
from jetwire.compiler.planner import plan
from jetwire.compiler.values import variant_of
from jetwire.runtime import streams

from . import catalogue
from .mutators import chunk_sizes, mutate, pieces
from .oracle import (
    Finding,
    Outcome,
    check_bytes,
    check_value,
    error_outcome,
    fast_decode,
    fast_decode_prefix,
    same,
    same_outcome,
    show,
    show_outcome,
    slow_decode,
    unexpected,
)
from .values import Values

Target = Callable[[random.Random, dict[str, Any]], str]


def _pick(rng: random.Random, types: dict[str, Any], keep: Callable[[Node], bool] | None = None) -> tuple[str, Any]:
    names = sorted(types)
    if keep is not None:
        names = [n for n in names if keep(plan(types[n]))]
    if not names:
        raise LookupError("no type of the selection suits this target")
    name = rng.choice(names)
    return name, types[name]


def _codec(rng: random.Random, tp: Any) -> jw.Codec[Any]:
    """The type's codec; with a small zero-width budget when it has zero-width collections:
    the edges of the budget are what breaks, and decoding up to the default one (a million
    elements) takes seconds, which the chunks, threads and amplify targets still do."""
    if reaches_zero_width(plan(tp)):
        return jw.Codec(tp, max_zero_width_elements=rng.choice([0, 1, 2, 5, 100, 10_000]))
    return jw.Codec(tp)


def _valid(rng: random.Random, tp: Any, size: int = 4) -> Any:
    return Values(rng, size=size).of(plan(tp))


# ---------------------------------------------------------------------------------------------
# Bytes and values


def _encode_valid(codec: jw.Codec[Any], value: Any) -> bytes:
    try:
        return codec.encode(value)
    except Exception as exc:
        raise unexpected("encoding a valid value", exc) from None


def target_bytes(rng: random.Random, types: dict[str, Any]) -> str:
    """Mutated valid encodings (and now and then random bytes) of a type, decoded."""
    name, tp = _pick(rng, types)
    codec = _codec(rng, tp)
    if rng.random() < 0.1:
        data = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 64)))
    else:
        base = _encode_valid(codec, _valid(rng, tp))
        other = _encode_valid(codec, _valid(rng, tp))
        data = mutate(base, rng, other)
    outcome = check_bytes(codec, data)
    _check_buffers(codec, data, outcome, rng)
    return f"{name} <- {data[:64].hex()}: {outcome[0]}"


def _check_buffers(codec: jw.Codec[Any], data: bytes, outcome: Outcome, rng: random.Random) -> None:
    """The same bytes as a bytearray, a memoryview into a larger buffer, and after a prefix
    (decode_prefix at an offset): the same value, or the same error, its offset shifted."""
    prefix = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 5)))
    for what, buffer in (("bytearray", bytearray(data)), ("memoryview", memoryview(prefix + data)[len(prefix):])):
        got = fast_decode(codec, buffer)  # type: ignore[arg-type]
        if not same_outcome(got, outcome):
            raise Finding(f"decode of a {what} differs from decode of bytes",
                          f"{data[:80].hex()}: {show_outcome(got)} vs {show_outcome(outcome)}")
    whole = slow_decode(codec, data, 0, whole=False)
    shifted = fast_decode_prefix(codec, prefix + data, len(prefix))
    if whole[0] == "value":
        expected: Outcome = ("value", (whole[1][0], whole[1][1] + len(prefix)))
    else:
        expected = (whole[0], whole[1], whole[2], whole[3] + len(prefix))
    if not same_outcome(shifted, expected):
        raise Finding("decode_prefix at an offset differs from decode_prefix at 0",
                      f"{prefix.hex()}|{data[:80].hex()}: {show_outcome(shifted)} vs {show_outcome(expected)}")


def target_values(rng: random.Random, types: dict[str, Any]) -> str:
    """Valid values: both encoders agree, byte_size, round trip, and the value between other bytes."""
    name, tp = _pick(rng, types)
    codec = jw.Codec(tp)  # the default budget: a small one may refuse what a value holds
    value = _valid(rng, tp, size=rng.choice([0, 2, 6]))
    encoded = check_value(codec, value)
    prefix = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 5)))
    suffix = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 5)))
    framed = prefix + encoded + suffix
    for buffer in (framed, bytearray(framed), memoryview(framed)):
        try:
            found = codec.decode_prefix(buffer, len(prefix))
        except Exception as exc:
            raise unexpected("decode_prefix of a valid value between other bytes", exc) from None
        if found[1] != len(prefix) + len(encoded) or not same(found[0], value):
            raise Finding("decode_prefix of a valid value between other bytes is wrong",
                          f"{type(buffer).__name__} {framed.hex()}: {show(found)}")
    return f"{name}: {encoded[:64].hex()}"


# ---------------------------------------------------------------------------------------------
# Chunking: files and streams against decode_prefix


Event = tuple[Any, ...]


def _reference_events(codec: jw.Codec[Any], data: bytes) -> list[Event]:
    """What reading values one after the other must give: decode_prefix walking the bytes,
    up to the end of the data (EOF) or the first error (offsets from the value's first byte)."""
    events: list[Event] = []
    pos = 0
    while pos < len(data):
        try:
            value, end = codec.decode_prefix(data, pos)
        except jw.DecodeError as exc:
            events.append(("error", exc.reason, exc.path, exc.offset - pos))
            return events
        events.append(("value", value))
        pos = end
    events.append(("eof",))
    return events


class ChunkedRaw(io.RawIOBase):
    """An unseekable file (a pipe, a socket) whose reads return what one ``recv`` would: at
    most the next chunk."""

    def __init__(self, data: bytes, sizes: list[int]) -> None:
        self.data = data
        self.pos = 0
        self.sizes = sizes
        self.turn = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        size = self.sizes[self.turn % len(self.sizes)]
        self.turn += 1
        chunk = self.data[self.pos:self.pos + min(size, len(buffer))]
        buffer[:len(chunk)] = chunk
        self.pos += len(chunk)
        return len(chunk)


class ChunkedStream:
    """An asyncio byte stream whose reads return at most the next chunk, yielding to the loop."""

    def __init__(self, data: bytes, sizes: list[int]) -> None:
        self.raw = ChunkedRaw(data, sizes)

    async def read(self, n: int = -1) -> bytes:
        await asyncio.sleep(0)
        buffer = bytearray(n if n > 0 else 1 << 16)
        got = self.raw.readinto(buffer)
        return bytes(buffer[:got])


def _read_all(read: Callable[[], Any], limit: int) -> list[Event]:
    events: list[Event] = []
    for _ in range(limit):
        try:
            events.append(("value", read()))
        except EOFError:
            events.append(("eof",))
            return events
        except jw.DecodeError as exc:
            events.append(error_outcome(exc))
            return events
    return events


async def _read_all_async(read: Callable[[], Any], limit: int) -> list[Event]:
    events: list[Event] = []
    for _ in range(limit):
        try:
            events.append(("value", await read()))
        except EOFError:
            events.append(("eof",))
            return events
        except jw.DecodeError as exc:
            events.append(error_outcome(exc))
            return events
    return events


async def _stream_reader_events(tp: Any, data: bytes, sizes: list[int], limit: int) -> list[Event]:
    reader = asyncio.StreamReader()

    async def produce() -> None:
        pos = 0
        turn = 0
        while pos < len(data):
            size = sizes[turn % len(sizes)]
            turn += 1
            reader.feed_data(data[pos:pos + size])
            pos += size
            await asyncio.sleep(0)
        reader.feed_eof()

    producer = asyncio.ensure_future(produce())
    try:
        return await _read_all_async(lambda: jw.read_value_async(tp, reader), limit)
    finally:
        producer.cancel()


def _same_events(a: list[Event], b: list[Event]) -> bool:
    return len(a) == len(b) and all(x[0] == y[0] and (same(x[1], y[1]) if x[0] == "value" else x == y)
                                    for x, y in zip(a, b))


def _show_events(events: list[Event]) -> str:
    return "[" + ", ".join(show(e[1]) if e[0] == "value" else show(e) for e in events) + "]"


def target_chunks(rng: random.Random, types: dict[str, Any]) -> str:
    """Values back to back, maybe a bad one last, read from files and streams in random chunks:
    every reader gives what decode_prefix gives walking the same bytes."""
    name, tp = _pick(rng, types, keep=lambda node: node.fixed != 0)  # zero bytes: no stream to read
    codec = jw.Codec(tp)
    parts = [_encode_valid(codec, _valid(rng, tp)) for _ in range(rng.randint(1, 4))]
    if rng.random() < 0.6:
        parts[-1] = mutate(parts[-1], rng, parts[0])
    data = b"".join(parts)
    expected = _reference_events(codec, data)
    limit = len(expected) + 1
    streams._ahead.clear()  # how far a file is read ahead depends on earlier values: replay the same
    sizes = chunk_sizes(rng)
    buffer_size = rng.choice([1, 2, 7, 64, 8192])
    chunk_size = rng.choice([1, 3, 16, 1 << 16])
    readers: dict[str, Callable[[], list[Event]]] = {
        "read_value(BytesIO)": lambda: _read_all(lambda: jw.read_value(tp, f), limit),
        f"read_value(BufferedReader({buffer_size}) over chunks {sizes})":
            lambda: _read_all(lambda: jw.read_value(tp, g), limit),
        f"read_value(unbuffered chunks {sizes})": lambda: _read_all(lambda: jw.read_value(tp, h), limit),
        f"ValueReader(chunk_size={chunk_size}) over chunks {sizes}":
            lambda: asyncio.run(_read_all_async(lambda: v.read(tp), limit)),
        f"read_value_async(StreamReader fed chunks {sizes})":
            lambda: asyncio.run(_stream_reader_events(tp, data, sizes, limit)),
    }
    f = io.BytesIO(data)
    g = io.BufferedReader(ChunkedRaw(data, sizes), buffer_size=buffer_size)
    h: Any = ChunkedRaw(data, sizes)  # a raw file is a BinaryIO in all but its annotations
    v = jw.ValueReader(ChunkedStream(data, sizes), chunk_size=chunk_size)
    for what, read in readers.items():
        try:
            got = read()
        except Exception as exc:
            raise unexpected(what.split("(")[0] if "(" in what else what, exc) from None
        if not _same_events(got, expected):
            raise Finding(f"{what.split(' ')[0].split('(')[0]}: differs from decode_prefix",
                          f"{name} <- {data[:80].hex()}; {what}: {_show_events(got)}; "
                          f"decode_prefix: {_show_events(expected)}")
    return f"{name} <- {data[:64].hex()}: {len(expected)} events"


def _frame_stream(rng: random.Random, tp: Any) -> bytes:
    codec = jw.Codec(tp)
    parts = []
    for _ in range(rng.randint(1, 5)):
        roll = rng.random()
        frame = _encode_valid(codec, _valid(rng, tp, size=2))
        if roll < 0.5:
            parts.append(frame)
        elif roll < 0.8:
            parts.append(mutate(frame, rng, frame))
        else:  # a header alone with an edge size (under 7, or 7 and up with a short body)
            size = rng.choice([0, 1, 3, 4, 5, 6, 7, 8, 9, 12, 0x10000, 0xFFFFFFFF])
            parts.append(size.to_bytes(4, "little") + bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 8))))
    return b"".join(parts)


def _frame_events(reader: jw.FrameReader[Any], events: list[Event]) -> None:
    while True:
        try:
            frame = reader.next_frame()
        except jw.FrameError as exc:
            events.append(("error", exc.reason, exc.path, exc.offset, exc.tag, exc.type, exc.size))
            continue
        except Exception as exc:
            raise unexpected("FrameReader.next_frame", exc) from None
        if frame is None:
            return
        events.append(("value", frame))


def target_frames(rng: random.Random, types: dict[str, Any]) -> str:
    """A stream of frames, good, bad and cut, fed to FrameReader whole and in random chunks
    (the same frames and errors), and read by read_value (the same, frame by frame)."""
    name, tp = _pick(rng, types, keep=lambda node: isinstance(node, FrameNode))
    data = _frame_stream(rng, tp)
    max_size = rng.choice([MAX_FRAME_SIZE, MAX_FRAME_SIZE, rng.randint(7, 64), rng.randint(64, 4096)])
    whole = jw.FrameReader(tp, max_size=max_size)
    expected: list[Event] = []
    whole.feed(data)
    _frame_events(whole, expected)
    expected.append(("buffered", whole.buffered))
    chunked = jw.FrameReader(tp, max_size=max_size)
    got: list[Event] = []
    pos = 0
    sizes = chunk_sizes(rng)
    turn = 0
    while pos < len(data):
        size = sizes[turn % len(sizes)]
        turn += 1
        chunked.feed(data[pos:pos + size])
        pos += size
        _frame_events(chunked, got)
    got.append(("buffered", chunked.buffered))
    if not _same_events(got, expected):
        raise Finding("FrameReader: the chunking changes the frames",
                      f"{name} max_size={max_size} <- {data[:80].hex()}; chunks {sizes}: {_show_events(got)}; "
                      f"whole: {_show_events(expected)}")
    if max_size == MAX_FRAME_SIZE:
        _frames_as_values(tp, name, data, expected)
    return f"{name} <- {data[:64].hex()}: {len(expected)} events"


def _frames_as_values(tp: Any, name: str, data: bytes, expected: list[Event]) -> None:
    """read_value over the same bytes: after a bad frame, the file stands past it as the
    FrameReader does, so frames and errors come in the same order."""
    file = io.BytesIO(data)
    got: list[Event] = []
    for _ in range(len(expected) + 1):
        try:
            got.append(("value", jw.read_value(tp, file)))
        except EOFError:
            break
        except jw.DecodeError as exc:
            got.append(("error", exc.reason, exc.path, exc.offset))
        except Exception as exc:
            raise unexpected("read_value of a frame", exc) from None
    frames = [e[:4] for e in expected if e[0] != "buffered"]
    if expected[-1][1]:  # the reader waits for the rest of a cut frame: read_value says it is cut
        got = got[:-1]
    if not _same_events(got, frames):
        raise Finding("read_value and FrameReader disagree on a frame stream",
                      f"{name} <- {data[:80].hex()}; read_value: {_show_events(got)}; "
                      f"FrameReader: {_show_events(frames)}")


# ---------------------------------------------------------------------------------------------
# Threads: first use from 8 threads at once

THREADS = 8
_fresh = 0
FIELD_POOL: list[Any] = [
    jw.u8, jw.u16, jw.u64, jw.i128, jw.f32, bool, str, bytes, Optional[str], list[jw.u16],
    dict[str, jw.u8], set[jw.i16], tuple[jw.u8, str], catalogue.Point, catalogue.Shape,
    Optional[catalogue.Point], list[catalogue.Shape], catalogue.Color,
]


def _fresh_class(rng: random.Random, inner: Any = None) -> Any:
    """A class never used before, so that its first use (planning, compiling) is what races."""
    global _fresh
    _fresh += 1
    fields = {f"f{i}": rng.choice(FIELD_POOL) for i in range(rng.randint(1, 5))}
    if inner is not None:
        fields["kid"] = rng.choice([inner, list[inner], Optional[inner], dict[jw.u8, inner]])
    cls = type(f"Fresh{_fresh}", (), {"__annotations__": fields, "__module__": __name__})
    return jw.wireformat(cls)


def target_threads(rng: random.Random, types: dict[str, Any]) -> str:
    """A new class, used for the first time by 8 threads at once: each gets what one thread gets."""
    inner = _fresh_class(rng)
    outer = _fresh_class(rng, inner)
    node = plan(outer)
    value = Values(rng).of(node)
    expected = interpret.encode_checked(node, value, node.label)
    ops: list[Callable[[], Any]] = [
        lambda: outer.encode(value), lambda: outer.decode(expected), lambda: outer.decode_prefix(expected)[0],
        lambda: outer.byte_size(value), lambda: jw.encode(value, outer), lambda: jw.decode(outer, expected),
        lambda: jw.read_value(outer, io.BytesIO(expected)), lambda: jw.Codec(outer).decode(expected),
    ]
    rng.shuffle(ops)
    results: list[Any] = [None] * THREADS
    barrier = threading.Barrier(THREADS)

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = ("ok", ops[i]())
        except BaseException as exc:
            results[i] = ("raised", exc)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: races show up more
    try:
        threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        sys.setswitchinterval(old)
    if any(t.is_alive() for t in threads):
        raise Finding("first use from 8 threads hangs", f"{node.label}: {show(value)}")
    for result in results:
        if result is None or result[0] == "raised":
            exc = result[1] if result else RuntimeError("no result")
            raise unexpected("first use from 8 threads", exc)
        got = result[1]
        if isinstance(got, bytes):
            ok = got == expected
        elif isinstance(got, int):
            ok = got == len(expected)
        else:
            ok = same(got, value)
        if not ok:
            raise Finding("first use from 8 threads gives another result",
                          f"{node.label}: {show(got)}, one thread: {show(value)} / {expected.hex()}")
    return f"{node.label}: {expected[:32].hex()}"


# ---------------------------------------------------------------------------------------------
# 9P: a server's reply stream, mutated, fed to the sans-I/O session


def _p9_session(seed: int, chunks: list[int] | None) -> tuple[list[Event], bytes]:
    """A session with requests in flight, fed replies built from ``seed`` (the same replies
    whatever ``chunks``), whole or in chunks of these sizes; what it reports."""
    from jetwire.p9 import messages as m
    from jetwire.p9.session import Failed, Flushed, Orphan, ProtocolError, Reply, Session, Stray

    rng = random.Random(seed)
    session = Session(msize=rng.choice([8192, 65536 + 24]))
    session.start()
    reply = m.Rframe(tag=0xFFFF, msg=m.Rversion(msize=session.msize, version="9P2000.L")).encode()
    session.receive(reply)
    requests: list[Any] = []
    for _ in range(rng.randint(1, 6)):
        fid = session.alloc_fid() if rng.random() < 0.7 else 0
        kind = rng.choice([m.Tclunk, m.Twalk, m.Tread, m.Tgetattr, m.Tattach, m.Tflush, m.Tremove, m.Treaddir])
        if kind is m.Tflush:
            if not session.pending or len(session.pending) == 1:
                continue
            msg: Any = m.Tflush(oldtag=rng.choice(sorted(t for t in session.pending if t != 0xFFFF)))
        elif kind is m.Twalk:
            msg = m.Twalk(fid=fid, newfid=fid + 100, wnames=["a", "b"][: rng.randint(0, 2)])
        elif kind is m.Tattach:
            msg = m.Tattach(fid=fid + 200, afid=0xFFFFFFFF, uname="u", aname="", n_uname=0)
        else:
            msg = Values(rng, size=2).of(plan(kind))
            if hasattr(msg, "fid"):
                msg.fid = fid
        session.request(msg)
        requests.append(msg)
    replies = []
    for tag, pending in list(session.pending.items()):
        roll = rng.random()
        if roll < 0.5:
            reply_cls = getattr(m, "R" + type(pending.request).__name__[1:])
        elif roll < 0.7:
            reply_cls = m.Rlerror
        else:
            reply_cls = rng.choice([m.Rclunk, m.Rwalk, m.Rread, m.Rgetattr, m.Rflush, m.Rversion])
        body = Values(rng, size=3).of(plan(reply_cls))
        replies.append(m.Rframe(tag=rng.choice([tag, tag, tag, rng.getrandbits(16)]), msg=body).encode())
    rng.shuffle(replies)
    data = b"".join(replies)
    if rng.random() < 0.7:
        data = mutate(data, rng, data, rounds=rng.randint(1, 6))
    events: list[Event] = []
    kinds = (Reply, Failed, Flushed, Orphan, Stray)
    for piece in pieces(data, chunks):
        try:
            got = session.receive(piece)
        except ProtocolError as exc:
            events.append(("ProtocolError", str(exc)))
            break
        except Exception as exc:
            raise unexpected("Session.receive", exc) from None
        for event in got:
            if not isinstance(event, kinds):
                raise Finding("Session.receive returned something that is not an event", show(event))
            events.append(_event_key(event))
    events.append(("pending", tuple(sorted(session.pending)), tuple(sorted(session.fids_in_use))))
    return events, data


def _event_key(event: Any) -> Event:
    fields = {name: getattr(event, name) for name in event.__slots__}
    error = fields.pop("error", None)
    return (type(event).__name__, repr(fields), None if error is None else (type(error).__name__, str(error)))


def target_p9(rng: random.Random, types: dict[str, Any]) -> str:
    """Replies (right, wrong, errors, unknown tags), mutated, fed to a Session whole and in
    random chunks: only events come out (or ProtocolError), the same whatever the chunking."""
    seed = rng.getrandbits(64)
    whole, data = _p9_session(seed, None)
    sizes = chunk_sizes(rng)
    chunked, _ = _p9_session(seed, sizes)
    if whole != chunked:
        raise Finding("Session.receive: the chunking changes the events",
                      f"{data[:80].hex()}; chunks {sizes}: {show(chunked)}; whole: {show(whole)}")
    return f"{data[:64].hex()}: {len(whole)} events"


# ---------------------------------------------------------------------------------------------
# Amplification: the most objects per input byte, under tracemalloc

PER_BYTE = 200  # bytes of memory per input byte allowed (the benchmark measures at most ~90, ~160 on 3.10)
SLACK = 256 * 1024  # what a decode may take whatever its input: code objects, caches
# A value nested MAX_DEPTH deep keeps a field path for each level it is inside, each one longer:
# quadratic in the depth, so about 1 MB at MAX_DEPTH whatever the input's size.
DEEP_PATHS = 1024 * 1024
ZERO_WIDTH_BUDGET = 2000
PER_ZERO_WIDTH = 200
EXPLAIN_WEIGHT = 1  # explain's share of the probes (out of 5 or 6)
# explain keeps the lines of the first and last 1,000 values (about 500 bytes each: the path,
# the hex, the value's text), whatever the input's size: a constant beside the per-byte share.
EXPLAIN_SHOWN = 2000 * 600


class Bomb:
    """Bytes that decode (mostly) with the largest counts the byte budget allows and the
    cheapest elements: the shape of an amplification attack on ``node``."""

    def __init__(self, rng: random.Random, budget: int) -> None:
        self.rng = rng
        self.budget = budget
        self.depth = 0

    def of(self, node: Node) -> bytes:
        rng = self.rng
        if node.fixed is not None:
            return bytes(rng.choice([0, 1]) for _ in range(node.fixed)) if node.fixed < 64 else bytes(node.fixed)
        if self.depth > 30 or self.budget <= 0:
            return self.smallest(node)
        self.depth += 1
        try:
            if isinstance(node, (SeqNode, SetNode, MapNode)):
                count = rng.choice([0, 1, 2, 255, 0xFFFF, rng.randint(0, 0xFFFF)])
                out = [count.to_bytes(2, "little")]
                for _ in range(count):
                    if self.budget <= 0:
                        break
                    if isinstance(node, MapNode):
                        item = self.of(node.key) + self.of(node.value)
                    else:
                        item = self.of(node.elem)
                    self.budget -= max(len(item), 1)
                    out.append(item)
                return b"".join(out)
            if isinstance(node, OptionNode):
                return b"\x01" + self.of(node.inner)
            if isinstance(node, TupleNode):
                return b"".join(self.of(item) for item in node.items)
            if isinstance(node, StructNode):
                return b"".join(self.of(f.node) for f in node.wire_fields if f.node is not None)
            if isinstance(node, UnionNode):
                variant = rng.choice(node.variants)
                return bytes([variant.tag]) + self.of(variant.node)
            return self.smallest(node)
        finally:
            self.depth -= 1

    def smallest(self, node: Node) -> bytes:
        if isinstance(node, UnionNode):  # the variant with the least bytes
            variant = min(node.variants, key=lambda v: v.node.min_size)
            return bytes([variant.tag]) + bytes(variant.node.min_size)
        return bytes(node.min_size)


def target_amplify(rng: random.Random, types: dict[str, Any]) -> str:
    """An amplification probe: decoding it (bytes, a file read in chunks, explain) may take at
    most PER_BYTE bytes of memory per input byte (plus the zero-width budget's worth for types
    with zero-width collections)."""
    name, tp = _pick(rng, types, keep=lambda node: not isinstance(node, FrameNode))
    node = plan(tp)
    zero_width = reaches_zero_width(node)
    codec = jw.Codec(tp, max_zero_width_elements=ZERO_WIDTH_BUDGET) if zero_width else jw.Codec(tp)
    data = Bomb(rng, rng.choice([256, 4096, 65536])).of(node)
    if rng.random() < 0.3:
        data = mutate(data, rng, data)
    valid = _encode_valid(codec, _valid(rng, tp))
    # every way compiled before measuring (code is not input): decode, the stream reader, explain
    codec.decode(valid)
    jw.read_value(tp, io.BytesIO(valid))
    codec.explain(valid)
    # files and streams decode with the default zero-width budget, which this bound does not cover
    ways = ["decode"] * 4 + ["explain"] * EXPLAIN_WEIGHT + ([] if zero_width else ["read_value"])
    way = rng.choice(ways)
    source = io.BufferedReader(ChunkedRaw(data, chunk_sizes(rng)), buffer_size=rng.choice([64, 8192]))
    tracemalloc.start()
    try:
        if way == "decode":
            outcome = fast_decode(codec, data)
        elif way == "explain":
            try:
                codec.explain(data)
            except Exception as exc:
                raise unexpected("explain", exc) from None
            outcome = ("explained",)
        else:
            outcome = _read_all(lambda: jw.read_value(tp, source), 1)[0]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    allowed = SLACK + DEEP_PATHS + PER_BYTE * len(data) + (ZERO_WIDTH_BUDGET * PER_ZERO_WIDTH if zero_width else 0)
    if way == "explain":
        allowed += EXPLAIN_SHOWN
    if peak > allowed:
        raise Finding(f"{way} takes memory out of proportion to the input",
                      f"{name}: {peak:,} bytes at the peak from {len(data):,} input bytes "
                      f"(allowed {allowed:,}; {outcome[0]})")
    return f"{name} {way}: {len(data)} bytes -> {peak:,} peak, {outcome[0]}"


TARGETS: dict[str, Target] = {
    "bytes": target_bytes,
    "values": target_values,
    "chunks": target_chunks,
    "frames": target_frames,
    "threads": target_threads,
    "p9": target_p9,
    "amplify": target_amplify,
}


# ---------------------------------------------------------------------------------------------
# Encoding odd values: a valid value with a part replaced by something else


class RaisingIndex:
    """An int-like whose conversion fails: the failure must come out as an EncodeError."""

    def __index__(self) -> int:
        raise ZeroDivisionError("__index__ failed")

    def __float__(self) -> float:
        raise ZeroDivisionError("__float__ failed")

    def __repr__(self) -> str:
        return "RaisingIndex()"


class RaisingIter:
    def __iter__(self) -> Any:
        raise ZeroDivisionError("__iter__ failed")

    def __len__(self) -> int:
        return 1

    def __repr__(self) -> str:
        return "RaisingIter()"


class RaisingHash:
    def __hash__(self) -> int:
        raise ZeroDivisionError("__hash__ failed")

    def __eq__(self, other: object) -> bool:
        raise ZeroDivisionError("__eq__ failed")

    def __repr__(self) -> str:
        return "RaisingHash()"


def _odd_values() -> list[Any]:
    import datetime
    import decimal
    import fractions
    import ipaddress
    import math

    utc = datetime.timezone.utc
    return [
        True, False, 0, 1, -1, 2**31, 2**64, -(2**127) - 1, 2**128, 10**400, -(10**400), 1.0, 1.5, -0.0,
        math.inf, -math.inf, math.nan, 3.5e38, 1e308 * 10, "", "x", "\ud800", "\x00" * 3, "a" * 70000,
        b"", b"x", bytearray(b"xy"), memoryview(b"x"), None, [], (), {}, set(), frozenset({1}), [1], [None],
        (1, 2), {1: 2}, {"a": None}, {1}, jw.Some(1), jw.Some(None), decimal.Decimal("1.5"),
        decimal.Decimal("NaN"), fractions.Fraction(1, 3), 1j, object(), catalogue.Color.RED,
        catalogue.Point(1, 2), catalogue.Shape.Empty(), catalogue.Tree(1, []), ipaddress.IPv4Address(1),
        ipaddress.IPv6Address(1), datetime.datetime(2000, 1, 1), datetime.datetime(2000, 1, 1, tzinfo=utc),
        datetime.datetime(1969, 12, 31, tzinfo=utc), datetime.datetime(9999, 12, 31, 23, 59, tzinfo=utc),
        datetime.date(2000, 1, 1), jw.Url("http://x/"), "http://x/", RaisingIndex(), RaisingIter(), RaisingHash(),
        [RaisingHash()], {RaisingIndex(): 1},
    ]


ODD_VALUES = _odd_values()


def _corrupt(rng: random.Random, node: Node, value: Any) -> Any:
    """``value`` with itself or one part of it replaced by an odd value."""
    import copy

    if rng.random() < 0.3:
        return rng.choice(ODD_VALUES)
    if isinstance(node, StructNode) and node.wire_fields:
        field = rng.choice(node.wire_fields)
        assert field.node is not None
        changed = copy.copy(value)
        object.__setattr__(changed, field.name, _corrupt(rng, field.node, getattr(value, field.name)))
        return changed
    if isinstance(node, UnionNode):
        variant = variant_of(node, value)
        return value if variant is None else _corrupt(rng, variant.node, value)
    if isinstance(node, FrameNode):
        frame = copy.copy(value)
        if rng.random() < 0.3:
            frame.tag = rng.choice(ODD_VALUES)
        else:
            frame.msg = _corrupt(rng, node.union, value.msg)
        return frame
    if isinstance(node, (SeqNode, TupleNode)) and len(value):
        at = rng.randrange(len(value))
        element = node.elem if isinstance(node, SeqNode) else node.items[at]
        items = list(value)
        items[at] = _corrupt(rng, element, items[at])
        return type(value)(items)
    if isinstance(node, MapNode) and value:
        key = rng.choice(list(value))
        if rng.random() < 0.5:
            return {**value, key: _corrupt(rng, node.value, value[key])}
        try:
            return {**value, _corrupt(rng, node.key, key): value[key]}
        except Exception:  # an unhashable key: a dict cannot hold it, whatever jetwire does
            return value
    if isinstance(node, OptionNode) and value is not None:
        inner = value.value if node.wrapped else value
        changed_inner = _corrupt(rng, node.inner, inner)
        return jw.Some(changed_inner) if node.wrapped else changed_inner
    return rng.choice(ODD_VALUES)


def target_encode(rng: random.Random, types: dict[str, Any]) -> str:
    """Odd values where a type expects another: encode gives bytes or EncodeError (never another
    exception), the same on both paths; and what it writes decodes."""
    name, tp = _pick(rng, types)
    codec = jw.Codec(tp)
    node = codec.node
    value = _corrupt(rng, node, _valid(rng, tp, size=3))
    outcomes: list[tuple[Any, ...]] = []
    for what, encode in (("encode", codec.encode), ("the interpreter's encode",
                                                     lambda v: interpret.encode_checked(node, v, node.label))):
        try:
            outcomes.append(("bytes", encode(value)))
        except jw.EncodeError as exc:
            outcomes.append(("error", exc.reason, exc.path))
        except Exception as exc:
            raise unexpected(what, exc) from None
    fast, slow = outcomes
    if fast != slow:
        raise Finding(f"encode: fast path and interpreter disagree ({fast[0]} vs {slow[0]})",
                      f"{name} {show(value)}: fast {show(fast)}, interpreter {show(slow)}")
    if fast[0] == "bytes":
        try:
            size = codec.byte_size(value)
        except Exception as exc:
            raise unexpected("byte_size of a value encode takes", exc) from None
        if size != len(fast[1]):
            raise Finding("byte_size is not the encoded length", f"{name} {show(value)}: {size} vs {len(fast[1])}")
        try:
            codec.decode(fast[1])
        except Exception as exc:
            raise unexpected("decoding what encode wrote", exc) from None
    return f"{name} {show(value)[:80]}: {fast[0]}"


# ---------------------------------------------------------------------------------------------
# Type expressions: random nesting of containers, declared on the spot

MAX_TYPE_DEPTH = 40  # containers inside each other: Python's compiler allows 20 nested blocks
DEEPEST_TYPE = 500  # now and then: deeper than a recursive planner can go
LEAVES: list[Any] = [jw.u8, jw.i64, jw.f32, bool, str, bytes, None, catalogue.Point, catalogue.Color]


_Option: Any = jw.Option  # applied to a variable, which mypy takes for a type application


def _random_type(rng: random.Random, depth: int) -> Any:
    if depth <= 0:
        return rng.choice(LEAVES)
    inner = _random_type(rng, depth - 1)
    kind = rng.randrange(7)
    if kind == 0:
        return list[inner]  # type: ignore[valid-type]
    if kind == 1:
        return tuple[inner, ...]  # type: ignore[valid-type]
    if kind == 2:
        return Optional[inner] if inner is not None and not _optional(inner) else _Option[inner]
    if kind == 3:
        return tuple[inner, jw.u8]  # type: ignore[valid-type]
    if kind == 4:
        return dict[jw.u16, inner]  # type: ignore[valid-type]
    if kind == 5:
        return _Option[inner]
    return list[inner]  # type: ignore[valid-type]


def _optional(tp: Any) -> bool:
    from typing import Union, get_args, get_origin

    return get_origin(tp) is Union and type(None) in get_args(tp)


def target_types(rng: random.Random, types: dict[str, Any]) -> str:
    """A type nested 1 to MAX_TYPE_DEPTH containers deep: declaring it gives a codec or a
    SchemaError (nothing else), and its values and mutated bytes pass the oracle."""
    depth = rng.choice([1, 2, 4, 8, min(16, MAX_TYPE_DEPTH), rng.randint(1, MAX_TYPE_DEPTH)])
    if rng.random() < 0.05:
        depth = DEEPEST_TYPE
    tp = _random_type(rng, depth)
    try:
        if rng.random() < 0.5:  # as a field: planned when the class is declared
            global _fresh
            _fresh += 1
            tp = jw.wireformat(type(f"Nested{_fresh}", (), {"__annotations__": {"deep": tp}, "__module__": __name__}))
        codec = jw.Codec(tp)
    except jw.SchemaError:
        return f"depth {depth}: refused at declaration"
    except Exception as exc:
        raise unexpected("declaring a nested type", exc) from None
    try:
        value = Values(rng, size=2, max_depth=64).of(codec.node)
    except RecursionError:
        return f"depth {depth}: too deep to make a value"
    encoded = check_value(codec, value)
    check_bytes(codec, mutate(encoded, rng, encoded))
    return f"depth {depth} {codec.node.label[:60]}: {encoded[:32].hex()}"


# ---------------------------------------------------------------------------------------------
# Depth: recursive values near MAX_DEPTH, in every reader

_DEEP_SCRIPT = """
import io, sys, threading
import jetwire as jw
from fuzz.catalogue import CATALOGUE
tp = CATALOGUE[sys.argv[1]]
data = bytes.fromhex(sys.argv[2])
def run():
    reads = (lambda: jw.decode(tp, data), lambda: jw.read_value(tp, io.BytesIO(data)), lambda: jw.explain(tp, data))
    for read in reads:
        try:
            value = read()
            repr(value)
            value == value
        except jw.DecodeError:
            pass
# the smallest stack jetwire promises MAX_DEPTH in (docs/design.md, "Depth and the stack")
threading.stack_size((128 if sys.version_info >= (3, 11) else 192) * 1024)
t = threading.Thread(target=run)
t.start()
t.join()
"""


def _nested_bytes(name: str, depth: int, rng: random.Random) -> bytes:
    """``depth`` levels of a recursive type, as bytes (each level one struct or enum)."""
    if name == "Tree":  # value u16, children count 1, ... the last: count 0
        return (b"\x07\x00\x01\x00" * (depth - 1)) + b"\x07\x00\x00\x00"
    if name == "Expr":  # Neg (tag 1) ... Lit (tag 0, i64)
        return b"\x01" * (depth - 1) + b"\x00" + bytes(8)
    if name == "Ping":  # Ping(n, Some(Pong(label "", [Ping ...]))): two levels a pair
        pair = b"\x01\x01\x00\x00\x01\x00"
        if depth % 2:
            return pair * (depth // 2) + b"\x01\x00"  # ... then Ping(n, None)
        return pair * (depth // 2 - 1) + b"\x01\x01\x00\x00\x00\x00"  # ... then Ping(n, Some(Pong("", [])))
    raise LookupError(name)


def target_deep(rng: random.Random, types: dict[str, Any]) -> str:
    """Recursive values nested around MAX_DEPTH (decode, prefix, explain, streams, the value's
    repr and ==); now and then in a thread with a small stack, in a child process (a crash
    there is a finding, not the end of the run)."""
    import subprocess

    name = rng.choice([n for n in ("Tree", "Expr", "Ping") if n in types] or ["Tree"])
    tp = catalogue.CATALOGUE[name]
    depth = rng.choice([jw.MAX_DEPTH - 1, jw.MAX_DEPTH, jw.MAX_DEPTH + 1, rng.randint(2, 3 * jw.MAX_DEPTH)])
    data = _nested_bytes(name, depth, rng)
    mutated = rng.random() < 0.3
    if mutated:
        data = mutate(data, rng, data)
    codec = jw.Codec(tp)
    outcome = check_bytes(codec, data)
    if not mutated and (outcome[0] == "value") != (depth <= jw.MAX_DEPTH):
        raise Finding("the depth limit is not MAX_DEPTH structs and enums (an enum and its variant are one)",
                      f"{name} nested {depth} deep (MAX_DEPTH {jw.MAX_DEPTH}): {show(outcome)[:200]}")
    if outcome[0] == "value":
        try:
            repr(outcome[1])
            _ = outcome[1] == outcome[1]
        except Exception as exc:
            raise unexpected("repr or == of a decoded value", exc) from None
    file = io.BytesIO(data)
    streamed = _read_all(lambda: jw.read_value(tp, file), 2)
    expected = _reference_events(codec, data)[:2]
    if not _same_events(streamed, expected):
        raise Finding("read_value: differs from decode_prefix (deep)", f"{name} depth {depth}: {_show_events(streamed)}"
                      f" vs {_show_events(expected)}")
    if rng.random() < 0.1:
        import os

        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        child = subprocess.run([sys.executable, "-c", _DEEP_SCRIPT, name, data.hex()], env=env,  # noqa: S603
                               capture_output=True, timeout=120, check=False)
        if child.returncode != 0:
            raise Finding(f"a thread with a small stack (128 KiB; 192 KiB on 3.10) dies (exit {child.returncode})",
                          f"{name} depth {depth}: {child.stderr.decode(errors='replace')[-300:]}")
    return f"{name} depth {depth}: {outcome[0]}"


# ---------------------------------------------------------------------------------------------
# Hash flooding: keys that all hash alike

HASH_MODULUS = 2**61 - 1  # Python's hash of an int is the int modulo this


def target_collide(rng: random.Random, types: dict[str, Any]) -> str:
    """Sets and maps of keys that share one hash value: decoding (and encoding) them must not
    take much longer than as many keys that do not (a ratio, so the machine's speed cancels)."""
    count = rng.choice([2000, 4000])
    key_type = rng.choice([jw.u128, jw.i128, tuple[jw.u128, jw.u8]])
    container = rng.choice(["set", "dict"])
    tp: Any = set[key_type] if container == "set" else dict[key_type, jw.u8]  # type: ignore[valid-type]
    codec = jw.Codec(tp)

    def keys(colliding: bool) -> list[Any]:
        ints = [(i + 1) * HASH_MODULUS if colliding else (i + 1) * 7919 for i in range(count)]
        return [(k, 1) for k in ints] if key_type not in (jw.u128, jw.i128) else ints

    timings = []
    for colliding in (False, True):
        items = keys(colliding)
        value = set(items) if container == "set" else dict.fromkeys(items, 1)
        data = interpret.encode_checked(codec.node, value, codec.node.label)
        start = time.perf_counter()
        try:
            codec.decode(data)
            codec.encode(value)
        except jw.WireError:
            pass  # refusing colliding keys is a way to stay fast
        except Exception as exc:
            raise unexpected("decoding colliding keys", exc) from None
        timings.append(time.perf_counter() - start)
    ratio = timings[1] / max(timings[0], 1e-6)
    if ratio > 20:
        raise Finding("keys that hash alike make decoding or encoding superlinear",
                      f"{codec.node.label}, {count} keys: {ratio:.0f}x the time of distinct hashes "
                      f"({timings[1] * 1e3:.0f} ms)")
    return f"{codec.node.label} x{count}: {ratio:.1f}x"


TARGETS.update({
    "encode": target_encode,
    "types": target_types,
    "deep": target_deep,
    "collide": target_collide,
})


# ---------------------------------------------------------------------------------------------
# Plain data: to_builtins and convert


def _has_user_code(node: Node) -> bool:
    from jetwire.compiler.plan import ConvertNode, CustomNode, reaches

    return reaches(node, lambda current: isinstance(current, (CustomNode, ConvertNode)))


def _corrupt_plain(rng: random.Random, data: Any) -> Any:
    """Plain data (dicts, lists, scalars) with one part replaced by an odd value."""
    if rng.random() < 0.3:
        return rng.choice(ODD_VALUES)
    if isinstance(data, dict) and data:
        key = rng.choice(list(data))
        changed = dict(data)
        if rng.random() < 0.2:
            del changed[key]
        elif rng.random() < 0.1:
            changed["unknown_field"] = 1
        else:
            changed[key] = _corrupt_plain(rng, data[key])
        return changed
    if isinstance(data, list) and data:
        at = rng.randrange(len(data))
        return [*data[:at], _corrupt_plain(rng, data[at]), *data[at + 1:]]
    return rng.choice(ODD_VALUES)


def target_builtins(rng: random.Random, types: dict[str, Any]) -> str:
    """to_builtins gives JSON-ready data for any valid value, convert reads it back as the value
    decoding its encoding gives; convert of broken data gives a value encode takes, or ConvertError."""
    import json

    name, tp = _pick(rng, types, keep=lambda node: not _has_user_code(node) and not isinstance(node, FrameNode))
    codec = jw.Codec(tp)
    value = _valid(rng, tp)
    wire_value = codec.decode(_encode_valid(codec, value))
    try:
        plain = jw.to_builtins(value, tp)
        json.dumps(plain, allow_nan=False)
        back = jw.convert(plain, tp)
    except Exception as exc:
        raise unexpected("to_builtins, json.dumps or convert of a valid value", exc) from None
    if not same(back, wire_value, nan_bits=False):  # plain data spells every NaN "NaN"
        raise Finding("convert(to_builtins(v)) is not decode(encode(v))",
                      f"{name} {show(value)}: {show(plain)} -> {show(back)}, wire: {show(wire_value)}")
    broken = _corrupt_plain(rng, plain)
    try:
        converted = jw.convert(broken, tp)
    except jw.ConvertError:
        return f"{name}: {show(broken)[:60]} refused"
    except Exception as exc:
        raise unexpected("convert of broken plain data", exc) from None
    try:
        codec.encode(converted)
    except Exception as exc:
        raise unexpected("encoding what convert accepted", exc) from None
    return f"{name}: {show(broken)[:60]} accepted"


TARGETS["builtins"] = target_builtins


# The protocol layers' targets (RPC sessions, the 9P file server) live in protocols.py.
from .protocols import TARGETS as PROTOCOL_TARGETS  # noqa: E402 - after every helper protocols.py does not use

TARGETS.update(PROTOCOL_TARGETS)

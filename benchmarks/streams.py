"""Reading values from files and streams, against ``decode_prefix`` on bytes, in one run:
``python -m benchmarks.streams`` from the project root (about a minute).

Each source holds one message encoded back to back over ``--kib`` KiB (256: 7,000 SmallMsg,
120 AppMsg); a timing reads them all one call at a time and reports the time per value. The baseline walks the same bytes with
``Codec.decode_prefix(data, offset)``. Every round times every reader once (so a change in the
machine's load touches all alike); the figures are medians over ``--rounds`` rounds, and each
ratio is a reader's median over the baseline's median. The sources:

* ``BufferedReader``: ``io.BufferedReader`` over ``BytesIO`` (seekable: read ahead, seek back), and
  over an unseekable raw file, as a pipe or socket is (``peek``, then ``read`` of the value);
* ``open(path, "rb")``: a real file on disk (seekable, with system calls);
* ``BytesIO``: seekable, no ``peek`` (read ahead, seek back);
* ``ValueReader``: an ``asyncio.StreamReader`` fed in 64 KiB chunks, wrapped in ``ValueReader``;
* for reference, the sources that cannot give bytes back and so are read a field at a time: a
  bare ``asyncio.StreamReader`` (``read_value_async``) and an unbuffered, unseekable raw file.

Saved as ``benchmarks/results/<date>-streams.md`` (``--no-save`` to only print).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import gc
import io
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any, Optional

import jetwire
from jetwire import u16, u32, wireformat

from .messages import AppMsg, sample_app
from .report import RESULTS, environment


@wireformat
class SmallMsg:
    """A small application message (44 bytes)."""

    id: u32
    name: str
    flags: u16
    note: Optional[str]
    scores: list[u16]


def sample_small() -> SmallMsg:
    return SmallMsg(7, "sensor-12", 3, "ok", [1, 2, 3, 4, 5, 6])


class _Unbuffered(io.RawIOBase):
    """A raw file that is neither seekable nor peekable (a pipe or a socket, unbuffered)."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self._pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        n = min(len(buf), len(self._data) - self._pos)
        buf[:n] = self._data[self._pos:self._pos + n]
        self._pos += n
        return n


Reader = Callable[[Any, bytes, int], float]  # (type, all the bytes, count) -> seconds


def time_prefix(tp: Any, data: bytes, count: int) -> float:
    decode_prefix = tp.decode_prefix
    offset = 0
    start = time.perf_counter()
    for _ in range(count):
        _, offset = decode_prefix(data, offset)
    return time.perf_counter() - start


def _time_file(tp: Any, file: Any, count: int) -> float:
    read_value = jetwire.read_value
    start = time.perf_counter()
    for _ in range(count):
        read_value(tp, file)
    elapsed = time.perf_counter() - start
    assert not file.read(1), "the reader left bytes unread"
    return elapsed


def time_buffered(tp: Any, data: bytes, count: int) -> float:
    return _time_file(tp, io.BufferedReader(io.BytesIO(data)), count)  # type: ignore[arg-type]


def time_buffered_pipe(tp: Any, data: bytes, count: int) -> float:
    return _time_file(tp, io.BufferedReader(_Unbuffered(data)), count)


def time_bytesio(tp: Any, data: bytes, count: int) -> float:
    return _time_file(tp, io.BytesIO(data), count)


def time_unbuffered(tp: Any, data: bytes, count: int) -> float:
    return _time_file(tp, _Unbuffered(data), count)


def time_disk(tp: Any, data: bytes, count: int) -> float:
    with tempfile.NamedTemporaryFile(delete=False) as tmp:
        tmp.write(data)
    try:
        with open(tmp.name, "rb") as file:
            return _time_file(tp, file, count)
    finally:
        os.unlink(tmp.name)


def _fed(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader(limit=1 << 30)
    for at in range(0, len(data), 1 << 16):
        reader.feed_data(data[at:at + (1 << 16)])
    reader.feed_eof()
    return reader


def time_value_reader(tp: Any, data: bytes, count: int) -> float:
    async def run() -> float:
        reader = jetwire.ValueReader(_fed(data))
        read = reader.read
        start = time.perf_counter()
        for _ in range(count):
            await read(tp)
        return time.perf_counter() - start

    return asyncio.run(run())


def time_bare_stream(tp: Any, data: bytes, count: int) -> float:
    async def run() -> float:
        reader = _fed(data)
        read_value_async = jetwire.read_value_async
        start = time.perf_counter()
        for _ in range(count):
            await read_value_async(tp, reader)
        return time.perf_counter() - start

    return asyncio.run(run())


READERS: list[tuple[str, Reader]] = [
    ("decode_prefix on bytes (baseline)", time_prefix),
    ("read_value: BufferedReader (seekable)", time_buffered),
    ("read_value: BufferedReader over a pipe (peek)", time_buffered_pipe),
    ('read_value: open(path, "rb")', time_disk),
    ("read_value: BytesIO", time_bytesio),
    ("ValueReader.read: asyncio stream", time_value_reader),
    ("read_value_async: bare StreamReader", time_bare_stream),
    ("read_value: unbuffered, unseekable raw file", time_unbuffered),
]

MESSAGES: list[tuple[str, Any, Callable[[], Any]]] = [
    ("SmallMsg", SmallMsg, sample_small),
    ("Twalk frame", jetwire.p9.Tframe, lambda: jetwire.p9.Tframe(2, jetwire.p9.Twalk(1, 2, ["usr", "lib", "x"]))),
    ("AppMsg", AppMsg, sample_app),
]


def measure(kib: int, rounds: int) -> dict[tuple[str, str], float]:
    """Median ns per value of every (message, reader)."""
    medians = {}
    for name, tp, sample in MESSAGES:
        one = jetwire.encode(sample(), tp)
        count = max(1, kib * 1024 // len(one))
        data = one * count
        for _, reader in READERS:  # warm up: compile, fill caches
            reader(tp, data, count)
        samples: dict[str, list[float]] = {label: [] for label, _ in READERS}
        for _ in range(rounds):
            for label, reader in READERS:
                gc.collect()  # the garbage of the reader before is not this one's to collect
                samples[label].append(reader(tp, data, count) / count * 1e9)
        for label, _ in READERS:
            medians[(name, label)] = statistics.median(samples[label])
    return medians


def render(medians: dict[tuple[str, str], float], kib: int, rounds: int) -> str:
    lines = ["# Reading from files and streams vs decode_prefix on bytes", ""]
    lines.append(environment("streams", f"sources of {kib} KiB, {rounds} interleaved rounds, medians"))
    lines += ["", "ns per value (ratio to decode_prefix on the same bytes, same run; goal: within 1.5x):", ""]
    header = "| reader | " + " | ".join(
        f"{name} ({len(jetwire.encode(sample(), tp))} B)" for name, tp, sample in MESSAGES) + " |"
    lines += [header, "|---" * (len(MESSAGES) + 1) + "|"]
    for label, _ in READERS:
        cells = []
        for name, _, _ in MESSAGES:
            ns, base = medians[(name, label)], medians[(name, READERS[0][0])]
            cells.append(f"{ns:,.0f} ({ns / base:.2f}x)")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kib", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()
    text = render(measure(args.kib, args.rounds), args.kib, args.rounds)
    print(text)
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"{datetime.date.today().isoformat()}-streams.md"
        path.write_text(text)
        print(f"saved {path}")


if __name__ == "__main__":
    main()

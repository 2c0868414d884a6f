"""How much memory and time a few input bytes can cost a decoder: bytes in -> peak memory.

Each case is an input crafted to make as many Python objects per byte as its type allows (empty
inner lists, the shortest strings that are not shared singletons, leaves of a recursive type,
elements that take no bytes at all). A decoder is safe when memory per input byte is bounded by
a constant for every type, and when what takes no bytes (zero-width elements) is bounded by the
per-decode budget (``jetwire.MAX_ZERO_WIDTH_ELEMENTS``) rather than by the input.

``python -m benchmarks.amplification`` prints the table and saves it as
``benchmarks/results/<date>-amplification.md`` (``--no-save`` to only print).
``tests/test_amplification.py`` asserts the bounds over the same cases.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import gc
import ipaddress
import pathlib
import platform
import time
import tracemalloc
from collections.abc import Callable
from typing import Annotated, Any, Optional

import jetwire as jw
from jetwire.compiler.interpret import decode_buffer
from jetwire.compiler.planner import plan

COUNT = 0xFFFF  # the most elements a collection holds


def u16(n: int) -> bytes:
    return n.to_bytes(2, "little")


@jw.wireformat
class Leaf:
    """A recursive type's cheapest value: a node with no children, 2 bytes."""

    kids: list[Leaf]


@jw.wireformat
class Flagged:
    """A struct of one byte: one object per input byte."""

    on: bool


@jw.wireformat(frozen=True)
class Blank:
    """No wire fields: a list of these is a list of zero-width elements."""


class ReadsNothing:
    """A user's codec (``With``) whose values take no bytes: only decoding tells."""

    @staticmethod
    def byte_size(value: int) -> int:
        return 0

    @staticmethod
    def encode(value: int, writer: jw.Writer) -> None:
        pass

    @staticmethod
    def decode(reader: jw.Reader) -> int:
        return 0


Nothing = Annotated[int, jw.With(ReadsNothing)]


@dataclasses.dataclass(frozen=True)
class Case:
    """An adversarial input of ``type``: ``data(count, budget)`` with ``count`` elements per
    collection (at most 65,535), for a decoder whose zero-width budget is ``budget``."""

    name: str
    type: Any
    data: Callable[[int, int], bytes]
    zero_width: bool = False  # bounded by the budget, not per input byte
    refused: bool = False  # asks for more zero-width elements than the budget
    note: str = ""


def _many(element: bytes) -> Callable[[int, int], bytes]:
    return lambda count, budget: u16(count) + element * count


def _numbered(width: int, tail: bytes = b"") -> Callable[[int, int], bytes]:
    """Distinct keys 0, 1, ...: sets and maps refuse duplicates."""
    return lambda count, budget: u16(count) + b"".join(i.to_bytes(width, "little") + tail for i in range(count))


def _at_budget(count: int, budget: int) -> bytes:
    """Inner lists of ``count`` zero-width elements, as many as the budget allows: the most
    elements a decode may make, from 2 bytes per inner list."""
    return u16(budget // count) + u16(count) * (budget // count)


def _all_inner_lists(count: int, budget: int) -> bytes:
    """``count`` inner lists of ``count`` zero-width elements (65,535: 4 billion elements)."""
    return u16(count) + u16(count) * count


CASES: list[Case] = [
    Case("list[u8], full", list[jw.u8], _many(b"\x07")),
    Case("list[list[u8]], every inner list empty", list[list[jw.u8]], _many(u16(0))),
    Case("list[str], empty strings", list[str], _many(u16(0)), note="one shared ''"),
    Case("list[str], 2-byte strings", list[str], _many(u16(2) + b"ab")),
    Case("list[bytes], 2-byte Data", list[bytes], _many(bytes([2, 0, 0, 0]) + b"ab")),
    Case("dict[u16, u8]", dict[jw.u16, jw.u8], _numbered(2, b"\x01")),
    Case("set[u16]", set[jw.u16], _numbered(2)),
    Case("list[Option[Optional[u8]]], all Some(None)", list[jw.Option[Optional[jw.u8]]], _many(b"\x01\x00")),
    Case("list[Optional[list[u8]]], all empty", list[Optional[list[jw.u8]]], _many(b"\x01" + u16(0))),
    Case("list[tuple[None, u8]]", list[tuple[None, jw.u8]], _many(b"\x05")),
    Case("list[Flagged] (1-byte struct)", list[Flagged], _many(b"\x01")),
    Case("recursive: Leaf with leaf kids", Leaf, _many(u16(0))),
    Case("recursive: list[list[Leaf]], empty inner lists", list[list[Leaf]], _many(u16(0))),
    Case("list[IPv4Address]", list[ipaddress.IPv4Address], _many(b"\x0a\x00\x00\x01")),
    Case("list[datetime]", list[datetime.datetime], _many((1_700_000_000_000).to_bytes(8, "little"))),
    Case("list[None], 2 bytes", list[None], _many(b""), zero_width=True),
    Case("list[Blank], 2 bytes", list[Blank], _many(b""), zero_width=True),
    Case("list[list[None]], at the budget", list[list[None]], _at_budget, zero_width=True),
    Case("list[list[Blank]], at the budget", list[list[Blank]], _at_budget, zero_width=True),
    Case(
        "list[list[None]], count x count asked", list[list[None]], _all_inner_lists,
        zero_width=True, refused=True, note="refused: past the budget",
    ),
    Case(
        "list[list[Blank]], count x count asked", list[list[Blank]], _all_inner_lists,
        zero_width=True, refused=True, note="refused: past the budget",
    ),
    Case(
        "list[list[With(codec reading nothing)]], count x count asked", list[list[Nothing]], _all_inner_lists,
        zero_width=True, refused=True, note="refused: past the budget",
    ),
]


@dataclasses.dataclass
class Row:
    case: Case
    size: int  # input bytes
    peak: int  # bytes allocated at the peak of the decode, the result included
    seconds: float
    outcome: str  # "ok" or the error's reason, short

    @property
    def per_byte(self) -> float:
        return self.peak / self.size


def fast_decode(case: Case, budget: int) -> Callable[[bytes], Any]:
    return jw.Codec(case.type, max_zero_width_elements=budget).decode


def interpreted_decode(case: Case, budget: int) -> Callable[[bytes], Any]:
    node = plan(case.type)
    return lambda data: decode_buffer(node, data, 0, node.label, max_zero_width=budget)[0]


Decoder = Callable[[Case, int], Callable[[bytes], Any]]


def measure(
    case: Case,
    make_decoder: Decoder = fast_decode,
    count: int = COUNT,
    budget: int = jw.MAX_ZERO_WIDTH_ELEMENTS,
    repeat: int = 3,
) -> Row:
    """Peak memory (tracemalloc) of one decode of the case's input, and its time (untraced,
    best of ``repeat``)."""
    data = case.data(count, budget)
    decode = make_decoder(case, budget)
    _run(decode, data)  # compile the codec outside the measurement
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        outcome, result = _run(decode, data)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    del result
    times = [float("inf")]
    for _ in range(repeat):
        start = time.perf_counter()
        _run(decode, data)
        times.append(time.perf_counter() - start)
    return Row(case, len(data), peak, min(times), outcome)


def _run(decode: Callable[[bytes], Any], data: bytes) -> tuple[str, Any]:
    try:
        return "ok", decode(data)
    except jw.DecodeError as exc:
        return f"DecodeError at byte {exc.offset}", None


def report(rows: list[Row], interpreted: list[Row]) -> str:
    lines = [
        f"# Decoding amplification, {datetime.date.today().isoformat()}",
        "",
        f"Python {platform.python_version()}; `python -m benchmarks.amplification`. Peak: bytes "
        "allocated (tracemalloc) at the peak of one decode, the decoded value included. Time: one "
        "decode, untraced, best of 3. Fast: generated code (`Codec.decode`); interpreter: the "
        "reference interpreter that files, streams and `explain` use.",
        f"Budget for zero-width elements: `jetwire.MAX_ZERO_WIDTH_ELEMENTS` = {jw.MAX_ZERO_WIDTH_ELEMENTS:,}.",
        "",
        "| input | bytes in | outcome | peak (fast) | per byte | time (fast) | peak (interp.) | per byte | time (interp.) |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for fast, slow in zip(rows, interpreted):
        name = fast.case.name + (f" ({fast.case.note})" if fast.case.note else "")
        lines.append(
            f"| {name} | {fast.size:,} | {fast.outcome} | {_mib(fast.peak)} | {fast.per_byte:,.1f} | "
            f"{fast.seconds * 1e3:,.2f} ms | {_mib(slow.peak)} | {slow.per_byte:,.1f} | {slow.seconds * 1e3:,.1f} ms |"
        )
    bounded = [r for r in rows + interpreted if not r.case.zero_width]
    worst = max(bounded, key=lambda r: r.per_byte)
    lines += [
        "",
        f"Worst per input byte, zero-width cases aside: {worst.per_byte:,.1f} bytes ({worst.case.name}). "
        "Zero-width cases are bounded by the budget instead: at most "
        f"{jw.MAX_ZERO_WIDTH_ELEMENTS:,} elements, whatever the input.",
    ]
    return "\n".join(lines) + "\n"


def _mib(n: int) -> str:
    return f"{n / 2**20:,.2f} MiB" if n >= 2**20 else f"{n / 1024:,.1f} KiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()
    rows = [measure(case) for case in CASES]
    interpreted = [measure(case, interpreted_decode) for case in CASES]
    text = report(rows, interpreted)
    print(text)
    if not args.no_save:
        out = pathlib.Path(__file__).parent / "results" / f"{datetime.date.today().isoformat()}-amplification.md"
        out.write_text(text)
        print(f"saved {out}")


if __name__ == "__main__":
    main()

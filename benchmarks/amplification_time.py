"""Bytes in -> peak memory and time, at growing input sizes: what a few bytes can cost.

The inputs are ``benchmarks.amplification``'s adversarial cases (the most objects per input
byte each type allows), each at several element counts, plus one the fuzzer found cheap to
send and dear to refuse: the zero-width budget filled, then one byte too many, so the generated
code makes every element, finds the byte left over, and the interpreter makes them all again.
For each size: the peak memory of one decode (tracemalloc, the decoded value included) and
the median time of several untraced decodes, generated code and interpreter; and the time per
input byte, which stays flat when decoding is linear.

``python -m benchmarks.amplification_time`` prints the table and saves it as
``benchmarks/results/<date>-amplification-time.md`` (``--no-save`` to only print,
``--quick`` for two sizes).
"""

from __future__ import annotations

import argparse
import datetime
import gc
import os
import pathlib
import platform
import statistics
import subprocess
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import jetwire as jw
from benchmarks.amplification import CASES, Blank, Case, _at_budget, fast_decode, interpreted_decode

COUNTS = (64, 1024, 16384, 65535)
QUICK_COUNTS = (64, 4096)
BUDGETS = (1000, 100_000, jw.MAX_ZERO_WIDTH_ELEMENTS)  # what zero-width cases grow with instead
MAX_RUNS = 7
SECONDS_PER_CELL = 1.0  # fewer runs for slow decodes (at least 3)


def _at_budget_one_byte_over(count: int, budget: int) -> bytes:
    return _at_budget(count, budget) + b"\x00"


FUZZ_CASES = [
    Case(
        "list[list[Blank]], at the budget, one byte left over", list[list[Blank]], _at_budget_one_byte_over,
        zero_width=True, refused=True,
        note="the fuzzer's 38-byte ZeroWidth: the generated code makes every element, then the interpreter again",
    ),
]


def _decode_outcome(decode: Callable[[bytes], Any], data: bytes) -> str:
    try:
        decode(data)
    except jw.DecodeError:
        return "DecodeError"
    return "ok"


def measure(decode: Callable[[bytes], Any], data: bytes) -> tuple[int, float, int, str]:
    """Peak bytes of one traced decode, the median seconds of untraced ones, how many, the outcome."""
    outcome = _decode_outcome(decode, data)  # compiles the codec outside the measurement
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        _decode_outcome(decode, data)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    times: list[float] = []
    spent = 0.0
    while len(times) < MAX_RUNS and (len(times) < 3 or spent < SECONDS_PER_CELL):
        start = time.perf_counter()
        _decode_outcome(decode, data)
        took = time.perf_counter() - start
        times.append(took)
        spent += took
    return peak, statistics.median(times), len(times), outcome


def _mib(n: int) -> str:
    return f"{n / 2**20:,.2f} MiB" if n >= 2**20 else f"{n / 1024:,.1f} KiB"


def _time(seconds: float) -> str:
    return f"{seconds:,.2f} s" if seconds >= 1 else f"{seconds * 1e3:,.2f} ms"


def rows(cases: list[Case], counts: tuple[int, ...], budgets: tuple[int, ...]) -> list[str]:
    lines = []
    for case in cases:
        if not case.zero_width:
            sizes = [(count, jw.MAX_ZERO_WIDTH_ELEMENTS) for count in counts]
        elif case.refused and case.data is not _at_budget_one_byte_over:  # asks for count x count whatever the budget
            sizes = [(counts[-1], budget) for budget in budgets]
        else:  # as many elements as the budget allows, from as few bytes as the case needs
            sizes = [(budget // -(-budget // 0xFFFF), budget) for budget in budgets]
        for count, budget in sizes:
            data = case.data(count, budget)
            fast_peak, fast_time, _, outcome = measure(fast_decode(case, budget), data)
            slow_peak, slow_time, _, _ = measure(interpreted_decode(case, budget), data)
            scale = f"budget {budget:,}" if case.zero_width else f"{count:,} elements"
            lines.append(
                f"| {case.name}{f' ({case.note})' if case.note else ''} | {scale} | {len(data):,} | {outcome} | {_mib(fast_peak)} | "
                f"{fast_peak / len(data):,.1f} | {_time(fast_time)} | {fast_time / len(data) * 1e9:,.0f} | "
                f"{_mib(slow_peak)} | {_time(slow_time)} | {slow_time / len(data) * 1e9:,.0f} |"
            )
            print(lines[-1], flush=True)
    return lines


def _commit() -> str:
    try:
        found = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                               cwd=pathlib.Path(__file__).parent, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "an unknown commit"
    return found.stdout.strip()


def report(lines: list[str], counts: tuple[int, ...], commit: str) -> str:
    head = [
        f"# Amplification: bytes in -> peak memory and time, {datetime.date.today().isoformat()}",
        "",
        f"jetwire at {commit}, Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f} "
        "at the end; `python -m benchmarks.amplification_time`. Each input is decoded "
        "by the generated code (`Codec.decode`, which hands bad input to the interpreter) and by the reference "
        "interpreter alone (what files, streams and `explain` use). Peak: bytes allocated at the peak of one "
        "decode (tracemalloc), the decoded value included. Time: median of 3 to 7 untraced decodes. "
        "ns/byte: the median time per input byte, flat when decoding is linear in its input. "
        f"Element counts {', '.join(f'{c:,}' for c in counts)}; zero-width cases grow with the budget "
        "(`max_zero_width_elements`), not the input.",
        "",
        "| input | size | bytes in | outcome | peak (fast) | peak/byte | time (fast) | ns/byte (fast) "
        "| peak (interp.) | time (interp.) | ns/byte (interp.) |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    return "\n".join(head + lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-save", action="store_true")
    parser.add_argument("--quick", action="store_true", help="two sizes, the smallest budgets")
    args = parser.parse_args()
    commit = _commit()  # before measuring: the code measured is the code imported now
    counts = QUICK_COUNTS if args.quick else COUNTS
    budgets = BUDGETS[:2] if args.quick else BUDGETS
    lines = rows(CASES + FUZZ_CASES, counts, budgets)
    text = report(lines, counts, commit)
    print(text)
    if not args.no_save:
        out = pathlib.Path(__file__).parent / "results" / f"{datetime.date.today().isoformat()}-amplification-time.md"
        out.write_text(text)
        print(f"saved {out}")


if __name__ == "__main__":
    main()

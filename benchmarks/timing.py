"""The in-process timer of quick mode (full mode uses pyperf with the same loop)."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from time import perf_counter
from typing import Any


def time_loop(loops: int, fn: Callable[[Any], Any], arg: Any) -> float:
    """Seconds for ``loops`` calls of ``fn(arg)``: the loop every implementation is timed in."""
    it = range(loops)
    start = perf_counter()
    for _ in it:
        fn(arg)
    return perf_counter() - start


def calibrate(fn: Callable[[Any], Any], arg: Any, target: float) -> int:
    """Loops that take about ``target`` seconds (running it also warms the code up)."""
    loops = 1
    while True:
        elapsed = time_loop(loops, fn, arg)
        if elapsed >= 0.001 or loops >= 10**7:
            return max(1, round(loops * target / max(elapsed, 1e-9)))
        loops *= 10


def measure_ns(fn: Callable[[Any], Any], arg: Any, *, repeats: int, target: float) -> float:
    """Median ns per call over ``repeats`` runs of about ``target`` seconds each."""
    loops = calibrate(fn, arg, target)
    return statistics.median(time_loop(loops, fn, arg) / loops for _ in range(repeats)) * 1e9


def measure_interleaved(jobs: Sequence[tuple[Callable[[Any], Any], Any]], *, rounds: int, target: float) -> list[float]:
    """Median ns per call of each job, timed in ``rounds`` rounds that each run every job once,
    so a change in the machine's load touches all jobs alike."""
    loops = [calibrate(fn, arg, target) for fn, arg in jobs]
    samples: list[list[float]] = [[] for _ in jobs]
    for _ in range(rounds):
        for i, (fn, arg) in enumerate(jobs):
            samples[i].append(time_loop(loops[i], fn, arg) / loops[i])
    return [statistics.median(s) * 1e9 for s in samples]

"""Frames and the application message as a user calls them, against hand-written ``struct`` code,
in interleaved runs, the values kept and summarised as pyperf benchmarks (issue 11, "Speed").

    python -m benchmarks.pyperf_frames [--sweeps 3] [--processes 3] [--values 5] [--only Tversion,Twalk]
                                       [--no-save] [-o suite.json]

jetwire is timed as written in an application: ``frame.encode()``, ``Rframe.decode(data)``,
``msg.encode()``, ``AppMsg.decode(data)``, method lookup included (the generated functions are
installed on first use, which is not timed). The hand-written codec is ``handwritten.py``'s:
precompiled ``Struct``s with bound methods, one ``pack`` per run of fixed fields with the header,
a dict from message class (encode) or type byte (decode) to a function per message, called as a
module-level function (``encode_tframe(frame)``, ``decode_rframe(data)``).

pyperf's runner times one benchmark after another (seconds apart), so on a shared machine a
change of load between the hand-written benchmark and jetwire's becomes a false ratio. Here
every worker process (``--processes`` fresh ones per sweep, ``--sweeps`` sweeps) calibrates
the loop count of each (payload, operation) pair to ``--min-time`` seconds (pyperf's way), warms
both sides up, then takes ``--values`` rounds; each round times every pair, the hand-written
loop and jetwire's back to back, which one first alternating. A ratio is jetwire's time over
the hand-written one of the same round, each timed by the CPU time of the thread (see
``_clock``); the report gives the median of all of them and
pyperf's median of each side's values (``-o`` saves the values as a pyperf suite, for
``python -m pyperf stats`` or ``compare_to``). Saved as
``benchmarks/results/<date>-pyperf-frames.md``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import cases, extras

PAYLOADS = ("Tversion", "Twalk", "Rgetattr", "Rread", "Twrite", "AppMsg")
IMPLS = ("hand", "jetwire")
RESULTS = Path(__file__).parent / "results"


# The CPU time of this thread, not the wall clock: on a 2-core machine shared with other work a
# process is off the CPU for whole time slices, which the wall clock counts against whichever
# side was running (a ratio of 0.05 or 8 from one round to the next at a load average of 12).
_clock = time.thread_time


def _time_jetwire_encode(loops: int, value: Any) -> float:
    it = range(loops)
    start = _clock()
    for _ in it:
        value.encode()
    return _clock() - start


def _time_jetwire_decode(loops: int, cls: Any, data: bytes) -> float:
    it = range(loops)
    start = _clock()
    for _ in it:
        cls.decode(data)
    return _clock() - start


def _time_hand(loops: int, fn: Any, arg: Any) -> float:
    it = range(loops)
    start = _clock()
    for _ in it:
        fn(arg)
    return _clock() - start


def _timer(payload: str, op: str, impl: str) -> Callable[[int], float]:
    """``loops -> seconds`` for one side of one pair, the value and bytes made once."""
    spec = cases.SPECS[payload]
    value = spec.sample()
    data = value.encode()
    spec.cls.decode(data)  # first use compiles; not timed
    if impl == "jetwire":
        if op == "encode":
            return lambda loops: _time_jetwire_encode(loops, value)
        return lambda loops: _time_jetwire_decode(loops, spec.cls, data)
    if op == "encode":
        return lambda loops: _time_hand(loops, spec.hand_encode, value)
    return lambda loops: _time_hand(loops, spec.hand_decode, data)


def _calibrate(timer: Callable[[int], float], min_time: float) -> int:
    """pyperf's rule: double the loops until one value takes at least ``min_time``."""
    loops = 1
    while timer(loops) < min_time and loops < 2**30:
        loops *= 2
    return loops


def worker(payloads: tuple[str, ...], values: int, min_time: float, first: int) -> dict[str, Any]:
    """One process: every pair calibrated, warmed up, then ``values`` interleaved rounds."""
    pairs = [(payload, op) for payload in payloads for op in ("encode", "decode")]
    timers = {(payload, op, impl): _timer(payload, op, impl) for payload, op in pairs for impl in IMPLS}
    loops = {pair: _calibrate(timers[(*pair, "hand")], min_time) for pair in pairs}
    for (payload, op, _), timer in timers.items():
        timer(loops[(payload, op)])  # warm-up
    times: dict[str, list[float]] = {bench_name(*key): [] for key in timers}
    for round_ in range(values):
        for i, pair in enumerate(pairs):
            order = IMPLS if (first + round_ + i) % 2 == 0 else IMPLS[::-1]
            for impl in order:
                times[bench_name(*pair, impl)].append(timers[(*pair, impl)](loops[pair]) / loops[pair])
    return {"loops": {bench_name(*pair, impl): loops[pair] for pair in pairs for impl in IMPLS}, "times": times}


def bench_name(payload: str, op: str, impl: str) -> str:
    return f"{payload} {op} {impl}"


def run_worker(payloads: tuple[str, ...], args: argparse.Namespace, first: int) -> dict[str, Any]:
    """Runs one worker in a fresh process (as pyperf does) and returns what it measured."""
    env = dict(os.environ)
    env.setdefault("PYTHONPYCACHEPREFIX", str(extras.PYCACHE))  # as benchmarks.run: no compile at import
    cmd = [sys.executable, "-m", "benchmarks.pyperf_frames", "--worker", "--only", ",".join(payloads),
           "--values", str(args.values), "--min-time", str(args.min_time), "--first", str(first)]
    done = subprocess.run(cmd, check=True, env=env, cwd=Path(__file__).parent.parent, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def to_suite(runs: list[dict[str, Any]]) -> Any:
    """The values as a pyperf suite: one benchmark per (payload, operation, side), a run per process."""
    import pyperf

    benches: dict[str, Any] = {}
    for run in runs:
        for name, values in run["times"].items():
            meta = {"name": name, "loops": run["loops"][name], "unit": "second"}
            one = pyperf.Run(values, metadata=meta, collect_metadata=False)
            if name in benches:
                benches[name].add_run(one)
            else:
                benches[name] = pyperf.Benchmark([one])
    return pyperf.BenchmarkSuite(list(benches.values()))


def render(payloads: tuple[str, ...], runs: list[dict[str, Any]], args: argparse.Namespace, seconds: float) -> str:
    suite = to_suite(runs)

    def med(payload: str, op: str, impl: str) -> float:
        return float(suite.get_benchmark(bench_name(payload, op, impl)).median()) * 1e9

    def ratios(payload: str, op: str) -> list[float]:
        out = []
        for run in runs:
            jw, hand = run["times"][bench_name(payload, op, "jetwire")], run["times"][bench_name(payload, op, "hand")]
            out += [j / h for j, h in zip(jw, hand)]
        return out

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [
        f"# Frames as called, interleaved, {datetime.date.today().isoformat()}",
        "",
        f"Python {platform.python_version()}; `python -m benchmarks.pyperf_frames --sweeps {args.sweeps} "
        f"--processes {args.processes} --values {args.values} --min-time {args.min_time}`: "
        f"{len(runs)} worker processes x {args.values} interleaved rounds, {seconds:.0f} s in all, "
        f"load average {load:.1f} at the end.",
        "jetwire as called: `frame.encode()`, `Rframe.decode(data)` (`msg.encode()`, `AppMsg.decode(data)`); "
        "hand-written: `encode_tframe(frame)`, `decode_rframe(data)` (benchmarks/handwritten.py).",
        "Ratio: median of jetwire's time / the hand-written time in the same round (quartiles in "
        "brackets); ns: pyperf's median of each side's values.",
        "",
        "| payload | encode ratio | jetwire ns | hand ns | decode ratio | jetwire ns | hand ns |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    within = 0
    for payload in payloads:
        cells = []
        for op in ("encode", "decode"):
            rs = ratios(payload, op)
            ratio = statistics.median(rs)
            within += ratio <= 1.0
            low, _, high = statistics.quantiles(rs, n=4) if len(rs) > 1 else (ratio, ratio, ratio)
            cells.append(f"{ratio:.2f} ({low:.2f}-{high:.2f}) | {med(payload, op, 'jetwire'):,.0f} | "
                         f"{med(payload, op, 'hand'):,.0f}")
        lines.append(f"| {payload} | {' | '.join(cells)} |")
    lines += ["", f"jetwire at most 1.00x the hand-written time: {within} of {2 * len(payloads)}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pyperf_frames")
    parser.add_argument("--sweeps", type=int, default=3, help="rounds of worker processes (default 3)")
    parser.add_argument("--processes", type=int, default=3, help="worker processes per sweep (default 3)")
    parser.add_argument("--values", type=int, default=5, help="interleaved rounds per process (default 5)")
    parser.add_argument("--min-time", type=float, default=0.05, help="seconds per value at least (default 0.05)")
    parser.add_argument("--only", default="", help="payloads, comma-separated (default: all six)")
    parser.add_argument("--no-save", action="store_true")
    parser.add_argument("--label", help="saved as results/<date>-<label>-pyperf-frames.md")
    parser.add_argument("-o", "--output", help="also save every value as a pyperf JSON suite")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--first", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    payloads = tuple(p for p in PAYLOADS if not args.only or p in args.only.split(","))
    if not payloads:
        raise SystemExit(f"no payload selected; choose from {', '.join(PAYLOADS)}")
    if args.worker:
        print(json.dumps(worker(payloads, args.values, args.min_time, args.first)))
        return
    started = time.perf_counter()
    runs = []
    for sweep in range(args.sweeps):
        print(f"sweep {sweep + 1} of {args.sweeps}", flush=True)
        for process in range(args.processes):
            runs.append(run_worker(payloads, args, first=sweep + process))
    report = render(payloads, runs, args, time.perf_counter() - started)
    print(report)
    if args.output:
        to_suite(runs).dump(args.output, replace=True)
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        label = f"{args.label}-" if args.label else ""
        path = RESULTS / f"{datetime.date.today().isoformat()}-{label}pyperf-frames.md"
        path.write_text(report)
        print(f"saved {path}")


if __name__ == "__main__":
    main()

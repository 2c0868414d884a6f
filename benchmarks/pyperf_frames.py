"""Frames and the application message as a user calls them, against hand-written ``struct`` code,
timed by pyperf in interleaved sweeps (issue 11, "Speed").

    python -m benchmarks.pyperf_frames [--sweeps 4] [--processes 3] [--only Tversion,Twalk] [--no-save]

jetwire is timed as written in an application: ``frame.encode()``, ``Rframe.decode(data)``,
``msg.encode()``, ``AppMsg.decode(data)``, method lookup included (the generated functions are
installed on first use, which is not timed). The hand-written codec is ``handwritten.py``'s:
precompiled ``Struct``s with bound methods, one ``pack`` per run of fixed fields with the header,
a dict from message class (encode) or type byte (decode) to a function per message, called as a
module-level function (``encode_tframe(frame)``, ``decode_rframe(data)``).

A sweep is one pyperf run (a calibration process, then ``--processes`` worker processes x
``--values`` values after a warm-up, each value at least ``--min-time`` seconds) over every
(payload, operation) pair, the hand-written benchmark and jetwire's one right after the other,
the order of the two swapped from one pair to the next and from one sweep to the next. A ratio
is jetwire's pyperf median over the hand-written one from the same sweep; the report gives the
median of the sweeps' ratios and of their nanoseconds. Sweeps repeat the whole set, so a change
in the machine's load lands on both sides of most ratios. Saved as
``benchmarks/results/<date>-pyperf-frames.md``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from . import cases, extras

PAYLOADS = ("Tversion", "Twalk", "Rgetattr", "Rread", "Twrite", "AppMsg")
IMPLS = ("hand", "jetwire")
RESULTS = Path(__file__).parent / "results"


def _time_jetwire_encode(loops: int, value: Any) -> float:
    it = range(loops)
    start = time.perf_counter()
    for _ in it:
        value.encode()
    return time.perf_counter() - start


def _time_jetwire_decode(loops: int, cls: Any, data: bytes) -> float:
    it = range(loops)
    start = time.perf_counter()
    for _ in it:
        cls.decode(data)
    return time.perf_counter() - start


def _time_hand(loops: int, fn: Any, arg: Any) -> float:
    it = range(loops)
    start = time.perf_counter()
    for _ in it:
        fn(arg)
    return time.perf_counter() - start


def _time_func(loops: int, payload: str, op: str, impl: str) -> float:
    spec = cases.SPECS[payload]
    value = spec.sample()
    data = value.encode()
    spec.cls.decode(data)  # first use compiles; not timed
    if impl == "jetwire":
        if op == "encode":
            return _time_jetwire_encode(loops, value)
        return _time_jetwire_decode(loops, spec.cls, data)
    if op == "encode":
        return _time_hand(loops, spec.hand_encode, value)
    return _time_hand(loops, spec.hand_decode, data)


def bench_order(payloads: tuple[str, ...], sweep: int) -> list[tuple[str, str, str]]:
    """(payload, op, impl): each pair side by side, which one goes first alternating."""
    out = []
    pair = sweep
    for payload in payloads:
        for op in ("encode", "decode"):
            impls = IMPLS if pair % 2 == 0 else IMPLS[::-1]
            out += [(payload, op, impl) for impl in impls]
            pair += 1
    return out


def bench_name(payload: str, op: str, impl: str) -> str:
    return f"{payload} {op} {impl}"


def sweep_main(argv: list[str]) -> None:
    """One pyperf run over every pair (this process and its workers)."""
    import pyperf

    def add_cmdline_args(cmd: list[str], args: argparse.Namespace) -> None:
        cmd += ["--sweep", str(args.sweep), "--only", args.only]

    runner = pyperf.Runner(program_args=("-m", "benchmarks.pyperf_frames"), add_cmdline_args=add_cmdline_args)
    runner.argparser.add_argument("--sweep", type=int, required=True)
    runner.argparser.add_argument("--only", required=True)
    args = runner.parse_args(argv)
    for key in bench_order(tuple(args.only.split(",")), args.sweep):
        runner.bench_time_func(bench_name(*key), _time_func, *key)


def run_sweep(sweep: int, payloads: tuple[str, ...], args: argparse.Namespace, out: Path) -> dict[str, float]:
    """Runs one sweep in a fresh pyperf process; pyperf medians in ns by benchmark name."""
    import pyperf

    env = dict(os.environ)
    env.setdefault("PYTHONPYCACHEPREFIX", str(extras.PYCACHE))  # as benchmarks.run: no compile at import
    cmd = [
        sys.executable, "-m", "benchmarks.pyperf_frames", "--sweep", str(sweep), "--only", ",".join(payloads),
        "--processes", str(args.processes), "--values", str(args.values), "--warmups", "1",
        "--min-time", str(args.min_time), "--inherit-environ", "PYTHONPATH,PYTHONPYCACHEPREFIX,PYTHONHASHSEED",
        "--quiet", "-o", str(out),
    ]
    subprocess.run(cmd, check=True, env=env, cwd=Path(__file__).parent.parent)
    suite = pyperf.BenchmarkSuite.load(str(out))
    return {bench.get_name(): bench.median() * 1e9 for bench in suite.get_benchmarks()}


def render(payloads: tuple[str, ...], sweeps: list[dict[str, float]], args: argparse.Namespace,
           seconds: float) -> str:
    def med(payload: str, op: str, impl: str) -> float:
        return statistics.median(s[bench_name(payload, op, impl)] for s in sweeps)

    def ratios(payload: str, op: str) -> list[float]:
        return [s[bench_name(payload, op, "jetwire")] / s[bench_name(payload, op, "hand")] for s in sweeps]

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [
        f"# Frames as called, pyperf interleaved sweeps, {datetime.date.today().isoformat()}",
        "",
        f"Python {platform.python_version()}, pyperf; `python -m benchmarks.pyperf_frames --sweeps {args.sweeps} "
        f"--processes {args.processes} --values {args.values} --min-time {args.min_time}`: {len(sweeps)} sweeps, "
        f"each a pyperf run of {args.processes} worker processes x {args.values} values per benchmark, "
        f"hand-written and jetwire side by side; {seconds:.0f} s in all, load average {load:.1f} at the end.",
        "jetwire as called: `frame.encode()`, `Rframe.decode(data)` (`msg.encode()`, `AppMsg.decode(data)`); "
        "hand-written: `encode_tframe(frame)`, `decode_rframe(data)` (benchmarks/handwritten.py).",
        "Ratio: median over sweeps of (jetwire's pyperf median / hand-written's, same sweep); "
        "ns: median over sweeps of pyperf's medians. Every sweep's ratio in brackets.",
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
            spread = ", ".join(f"{r:.2f}" for r in rs)
            cells.append(f"{ratio:.2f} ({spread}) | {med(payload, op, 'jetwire'):,.0f} | {med(payload, op, 'hand'):,.0f}")
        lines.append(f"| {payload} | {' | '.join(cells)} |")
    lines += ["", f"jetwire at most 1.00x the hand-written time: {within} of {2 * len(payloads)}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if "--sweep" in argv or "--worker" in argv:
        sweep_main(argv)
        return
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pyperf_frames")
    parser.add_argument("--sweeps", type=int, default=4, help="pyperf runs over every pair (default 4)")
    parser.add_argument("--processes", type=int, default=3, help="pyperf worker processes per benchmark (default 3)")
    parser.add_argument("--values", type=int, default=3, help="values per worker process (default 3)")
    parser.add_argument("--min-time", type=float, default=0.1, help="seconds per value at least (default 0.1)")
    parser.add_argument("--only", default="", help="payloads, comma-separated (default: all six)")
    parser.add_argument("--no-save", action="store_true")
    parser.add_argument("--label", help="saved as results/<date>-<label>-pyperf-frames.md")
    args = parser.parse_args(argv)
    payloads = tuple(p for p in PAYLOADS if not args.only or p in args.only.split(","))
    if not payloads:
        raise SystemExit(f"no payload selected; choose from {', '.join(PAYLOADS)}")
    started = time.perf_counter()
    sweeps = []
    with tempfile.TemporaryDirectory() as tmp:
        for sweep in range(args.sweeps):
            print(f"sweep {sweep + 1} of {args.sweeps}", flush=True)
            sweeps.append(run_sweep(sweep, payloads, args, Path(tmp) / f"sweep{sweep}.json"))
    report = render(payloads, sweeps, args, time.perf_counter() - started)
    print(report)
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        label = f"{args.label}-" if args.label else ""
        path = RESULTS / f"{datetime.date.today().isoformat()}-{label}pyperf-frames.md"
        path.write_text(report)
        print(f"saved {path}")


if __name__ == "__main__":
    main()

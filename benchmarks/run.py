"""jetwire's benchmark harness: ``python -m benchmarks.run [--quick]`` from the project root.

Full mode (the default) times every payload x implementation x operation with pyperf (warm-up,
several worker processes, medians); ``--quick`` times them in this process in interleaved rounds
(a few seconds, for development). Both first verify that jetwire, the hand-written codec and
construct produce identical bytes and that every implementation round-trips, then time, then
measure the extras (copies, scaling, declaring classes, ``import jetwire``), print the report and
save it as ``benchmarks/results/<date>[-<label>]-<mode>.md``. See README.md.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
from typing import Any

from . import cases, extras, report
from .timing import measure_interleaved, time_loop

FULL = {"processes": 5, "values": 3, "warmups": 1, "min_time": 0.1}


def selected(only: str | None) -> tuple[str, ...]:
    if not only:
        return cases.PAYLOADS
    names = tuple(p.strip() for p in only.split(","))
    unknown = [p for p in names if p not in cases.PAYLOADS]
    if unknown:
        raise SystemExit(f"unknown payload(s) {unknown}; choose from {', '.join(cases.PAYLOADS)}")
    return names


def all_benches(payloads: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """(payload, impl, op) in the order they are timed: the hand-written codec and jetwire next to
    each other for each operation, so that in full mode (one benchmark after another) a change in
    the machine's load between them is as unlikely as it can be."""
    return [(payload, impl, op) for payload in payloads for op in cases.OPS for impl in cases.IMPLS]


def _bench(payload: str, impl: str, op: str) -> cases.Bench:
    for bench in cases.benches(payload, (impl,)):
        if bench.op == op:
            return bench
    raise LookupError((payload, impl, op))


def run_verification(payloads: tuple[str, ...]) -> list[str]:
    lines: list[str] = []

    def log(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    print("verifying (nothing is timed until this passes):", flush=True)
    cases.verify(payloads, log)
    return lines


def run_extras(quick: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    print("extras: copies of a 64 KiB Twrite decode", flush=True)
    out["copies"] = extras.copy_check()
    print("extras: 10 / 1,000 / 60,000 elements", flush=True)
    out["scaling"] = extras.scaling(repeats=3 if quick else 7, target=0.01 if quick else 0.05)
    print("extras: declaring classes (fresh processes)", flush=True)
    kinds = ("app", "9p") if quick else ("app", "app-postponed", "9p")
    out["decoration"] = extras.decoration(runs=1 if quick else 5, kinds=kinds)
    print("extras: import jetwire, import jetwire.p9 (fresh processes)", flush=True)
    out["import"] = extras.import_time(runs=3 if quick else 15)
    return out


def finish(results: report.Results, payloads: tuple[str, ...], more: dict[str, Any], *, mode: str, settings: str,
           save: bool, label: str | None) -> None:
    date = datetime.date.today()
    text = report.render(results, payloads, more, mode=mode, settings=settings, date=date)
    print()
    print(text)
    if save:
        print(f"saved {report.save(text, mode=mode, date=date, label=label).relative_to(report.ROOT)}")


def quick_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run --quick")
    parser.add_argument("--quick", action="store_true", required=True)
    parser.add_argument("--only", help="comma-separated payloads (default: all)")
    parser.add_argument("--skip-extras", action="store_true", help="only the main table")
    parser.add_argument("--no-save", action="store_true", help="print the report but do not save it")
    parser.add_argument("--label", help="saved as results/<date>-<label>-quick.md")
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds (default 15)")
    parser.add_argument("--target", type=float, default=0.002, help="seconds per timing (default 0.002)")
    parser.add_argument("--cprofile", metavar="PAYLOAD", help="profile jetwire's encode and decode of PAYLOAD and exit")
    args = parser.parse_args(argv)
    if args.cprofile:
        profile(args.cprofile)
        return
    started = time.perf_counter()
    payloads = selected(args.only)
    verification = run_verification(payloads)
    keys = all_benches(payloads)
    jobs = [(b.fn, b.arg) for b in (_bench(*key) for key in keys)]
    print(f"timing {len(jobs)} operations, {args.rounds} interleaved rounds", flush=True)
    medians = measure_interleaved(jobs, rounds=args.rounds, target=args.target)
    results = dict(zip(keys, medians))
    more: dict[str, Any] = {} if args.skip_extras else run_extras(quick=True)
    more["verification"] = verification
    settings = (f"in-process, {args.rounds} interleaved rounds of ~{args.target * 1e3:.0f} ms per operation after a "
                f"calibration run, medians; {time.perf_counter() - started:.0f} s in all.")
    finish(results, payloads, more, mode="quick", settings=settings, save=not args.no_save, label=args.label)


def _time_func(loops: int, payload: str, impl: str, op: str) -> float:
    bench = _bench(payload, impl, op)  # built on first call, in the worker that times it
    return time_loop(loops, bench.fn, bench.arg)


def full_main() -> None:
    import pyperf

    def add_cmdline_args(cmd: list[str], args: argparse.Namespace) -> None:
        if args.only:
            cmd += ["--only", args.only]

    runner = pyperf.Runner(**FULL, program_args=("-m", "benchmarks.run"), add_cmdline_args=add_cmdline_args)  # type: ignore[arg-type]
    runner.argparser.add_argument("--only", help="comma-separated payloads (default: all)")
    runner.argparser.add_argument("--skip-extras", action="store_true", help="only the main table")
    runner.argparser.add_argument("--no-save", action="store_true", help="print the report but do not save it")
    runner.argparser.add_argument("--label", help="saved as results/<date>-<label>-full.md")
    args = runner.parse_args()
    payloads = selected(args.only)
    if not args.worker:
        # workers cache their bytecode outside the project (pyperf passes on only the variables named here)
        os.environ.setdefault("PYTHONPYCACHEPREFIX", str(extras.PYCACHE))
        args.inherit_environ = [*(args.inherit_environ or ()), "PYTHONPYCACHEPREFIX"]
    started = time.perf_counter()
    verification = [] if args.worker else run_verification(payloads)
    results: report.Results = {}
    for key in all_benches(payloads):
        bench = runner.bench_time_func(" ".join((key[0], key[2], key[1])), _time_func, *key)
        if bench is not None and not args.worker:  # a worker gets its own run back (none if calibrating)
            results[key] = bench.median() * 1e9
    if args.worker:
        return
    more: dict[str, Any] = {} if args.skip_extras else run_extras(quick=False)
    more["verification"] = verification
    settings = (f"pyperf, {args.processes} worker processes x {args.values} values after {args.warmups} warm-up, "
                f"min_time {args.min_time} s, loops calibrated per benchmark; medians; "
                f"{time.perf_counter() - started:.0f} s in all.")
    finish(results, payloads, more, mode="full", settings=settings, save=not args.no_save, label=args.label)


def profile(payload: str) -> None:
    """cProfile of jetwire's encode and decode of one payload, ~1 s each: where the time goes."""
    import cProfile
    import pstats

    payload = selected(payload)[0]
    for bench in cases.benches(payload, (cases.JETWIRE,)):
        loops = max(1, int(1.0 / max(time_loop(100, bench.fn, bench.arg) / 100, 1e-9)))
        print(f"\n=== {bench.name}: {loops} calls under cProfile ===")
        profiler = cProfile.Profile()
        profiler.runcall(time_loop, loops, bench.fn, bench.arg)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(12)


def main() -> None:
    if "--quick" in sys.argv[1:]:
        quick_main(sys.argv[1:])
    else:
        full_main()


if __name__ == "__main__":
    main()

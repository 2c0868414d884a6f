"""Vivaldi updates per second: ``python -m benchmarks.cluster`` from the project root.

* One ``jetwire.cluster.Client`` (8 dimensions, the default config) fed ``--updates`` round trips
  from 16 peers in turn, and Serf's Go client doing the same work in the same run
  (``tests/cluster/serf_driver.go``, built against Debian's Serf source; it times itself, so
  process start-up is not counted). Rounds alternate the two; the medians and their ratio are
  reported.
* 1,000 nodes converging: Serf's split scenario (two LANs, 1 ms inside, +10 ms across) at 1,000
  nodes, ``--cycles`` rounds of one update per node, timed, then the average and worst relative
  error over all 499,500 pairs (the evaluation is not timed).

The report is printed and saved as ``benchmarks/results/<date>-cluster.md``.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from jetwire.cluster import Client, Config, Coordinate
from jetwire.cluster.simulate import MILLISECOND, Simulation, split

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "cluster"))
from serf import Serf, build_driver  # noqa: E402


def python_updates(count: int) -> int:
    """Nanoseconds for ``count`` updates, the same workload as the driver's ``bench``."""
    config = Config()
    client = Client(config)
    others = []
    for k in range(16):
        other = Coordinate.new(config)
        other.vec = [0.001 * ((k * 7 + d * 3) % 11) for d in range(config.dimensionality)]
        others.append(other)
    names = [f"node_{k}" for k in range(16)]
    rtts = [(5 + k) / 1000 for k in range(16)]
    update = client.update
    begin = time.perf_counter_ns()
    for i in range(count):
        k = i % 16
        update(names[k], others[k], rtts[k])
    return time.perf_counter_ns() - begin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--updates", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--cycles", type=int, default=100)
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as directory:
        serf = Serf(build_driver(Path(directory)))
        go_ns, py_ns = [], []
        for _ in range(args.rounds):
            go_ns.append(int(serf.ask(f"bench {args.updates}")))
            py_ns.append(python_updates(args.updates))
        serf.close()
    go_rate = args.updates / (statistics.median(go_ns) / 1e9)
    py_rate = args.updates / (statistics.median(py_ns) / 1e9)

    simulation = Simulation(split(args.nodes, MILLISECOND, 10 * MILLISECOND))
    begin = time.perf_counter()
    simulation.run(args.cycles)
    seconds = time.perf_counter() - begin
    stats = simulation.evaluate()
    updates = args.nodes * args.cycles

    lines = [
        f"# Vivaldi coordinates, {datetime.date.today()}",
        "",
        f"Python {platform.python_version()} on {platform.machine()}; medians of {args.rounds} interleaved rounds.",
        "",
        f"| one client, 8 dimensions, {args.updates:,} updates | updates/s | µs/update |",
        "| --- | ---: | ---: |",
        f"| jetwire.cluster.Client | {py_rate:,.0f} | {1e6 / py_rate:.2f} |",
        f"| Serf (Go) | {go_rate:,.0f} | {1e6 / go_rate:.2f} |",
        f"| ratio Go / jetwire | {go_rate / py_rate:.1f}x | |",
        "",
        f"{args.nodes:,} nodes, split scenario, {args.cycles} cycles ({updates:,} updates, each node pinging a "
        f"random peer): {seconds:.2f} s ({updates / seconds:,.0f} updates/s including the simulation's own "
        f"bookkeeping); afterwards error avg {stats.error_avg:.6f}, max {stats.error_max:.6f}.",
    ]
    report = "\n".join(lines)
    print(report)
    if not args.no_save:
        path = ROOT / "benchmarks" / "results" / f"{datetime.date.today()}-cluster.md"
        path.write_text(report + "\n")
        print(f"\nsaved {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

"""``python -m jetwire.cluster simulate --scenario split [--cycles N] [--plot out.svg]``: runs one of
Serf's scenarios, prints the error as it falls, and optionally draws the coordinates and the error
curve (matplotlib, the ``plot`` extra)."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Sequence
from typing import Any

from .simulate import SCENARIOS, Simulation, Stats

PLOT_MISSING = ("--plot needs matplotlib, which jetwire does not install by default: "
                "pip install 'jetwire[plot]' (or pip install matplotlib)")


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m jetwire.cluster", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    simulate = commands.add_parser("simulate", help="run one of Serf's simulation scenarios")
    simulate.add_argument("--scenario", choices=sorted(SCENARIOS), default="split")
    simulate.add_argument("--cycles", type=int, default=None, help="rounds (default: as Serf's test)")
    simulate.add_argument("--every", type=int, default=50, help="report the error every N rounds")
    simulate.add_argument("--seed", type=int, default=1)
    simulate.add_argument("--plot", metavar="FILE", help="draw the coordinates and the error (svg, png, pdf)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    if (args.cycles is not None and args.cycles < 1) or args.every < 1:
        print("--cycles and --every must be at least 1", file=sys.stderr)
        return 2
    if args.plot:  # before the run: a missing extra should not cost the user the simulation first
        if importlib.util.find_spec("matplotlib") is None:
            print(PLOT_MISSING, file=sys.stderr)
            return 2
    scenario = SCENARIOS[args.scenario]
    simulation = scenario.simulation()
    cycles = scenario.cycles if args.cycles is None else args.cycles
    history: list[tuple[int, Stats]] = []

    def progress(cycle: int, stats: Stats) -> None:
        history.append((cycle, stats))
        print(f"cycle {cycle:6d}  error avg {stats.error_avg:9.6f}  max {stats.error_max:9.6f}")

    print(f"{scenario.name}: {scenario.description}, {cycles} cycles")
    final = simulation.run(cycles, seed=args.seed, every=args.every, on_progress=progress)
    if not history or history[-1][0] != cycles:
        progress(cycles, final)
    if args.plot:
        _plot(args.plot, scenario.name, simulation, history)
        print(f"wrote {args.plot}")
    return 0


def _plot(path: str, name: str, simulation: Simulation, history: list[tuple[int, Stats]]) -> None:
    # Imported by name: matplotlib is an optional extra, and mypy must pass with or without it.
    matplotlib: Any = importlib.import_module("matplotlib")
    matplotlib.use("Agg")  # files only: no display needed
    plt: Any = importlib.import_module("matplotlib.pyplot")

    coordinates = simulation.coordinates()
    figure, (space, errors) = plt.subplots(1, 2, figsize=(11, 4.8))
    xs = [c.vec[0] * 1000 for c in coordinates]
    ys = [(c.vec[1] if len(c.vec) > 1 else 0.0) * 1000 for c in coordinates]
    heights = [c.height * 1000 for c in coordinates]
    points = space.scatter(xs, ys, c=heights, cmap="viridis")
    for index, (x, y) in enumerate(zip(xs, ys)):
        space.annotate(str(index), (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    colorbar = figure.colorbar(points, ax=space, label="height (ms)")
    colorbar.formatter.set_useOffset(False)  # near-equal heights would otherwise read as "1e-7 + 1e-2"
    colorbar.update_ticks()
    space.set(title=f"{name}: coordinates (first two dimensions)", xlabel="ms", ylabel="ms")
    space.set_aspect("equal", adjustable="datalim")
    cycles = [cycle for cycle, _ in history]
    errors.plot(cycles, [s.error_avg for _, s in history], label="average")
    errors.plot(cycles, [s.error_max for _, s in history], label="worst")
    errors.set(title="relative error of the estimates", xlabel="cycle", ylabel="|estimate - truth| / truth",
               yscale="log")
    errors.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


if __name__ == "__main__":
    sys.exit(main())

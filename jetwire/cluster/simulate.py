"""Serf's simulation scenarios: known round-trip times between nodes, clients that learn them by
pinging random peers, and how far their estimates end up from the truth.

The scenarios and their sizes are those of Serf's performance tests (``phantom.go``). Round trips
are whole nanoseconds, as Go's durations are, and reach the clients through the same conversion.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from .client import Client
from .coordinate import Config, Coordinate, seconds_of

__all__ = [
    "SCENARIOS",
    "PythonSource",
    "Scenario",
    "Simulation",
    "Source",
    "Stats",
    "circle",
    "grid",
    "line",
    "random_rtts",
    "split",
]

MILLISECOND = 1_000_000  # nanoseconds
Truth = list[list[int]]  # round-trip times in nanoseconds, symmetric, zero on the diagonal


class Source(Protocol):
    """The randomness a simulation draws: which peer each node pings, and the direction coincident
    points part along. Serf draws both from one generator, reseeded at each run."""

    def seed(self, seed: int) -> None: ...

    def intn(self, n: int) -> int: ...

    def random(self) -> float: ...


class PythonSource:
    """Python's own generator (the default): reproducible for a seed, not Go's sequence."""

    def __init__(self) -> None:
        self._random = random.Random(1)  # noqa: S311 (a simulation, not cryptography)

    def seed(self, seed: int) -> None:
        self._random.seed(seed)

    def intn(self, n: int) -> int:
        return self._random.randrange(n)

    def random(self) -> float:
        return self._random.random()


def _matrix(nodes: int, rtt: Callable[[int, int], int]) -> Truth:
    truth = [[0] * nodes for _ in range(nodes)]
    for i in range(nodes):
        for j in range(i + 1, nodes):
            truth[i][j] = truth[j][i] = rtt(i, j)
    return truth


def line(nodes: int, spacing: int) -> Truth:
    """Nodes evenly spaced on a line."""
    return _matrix(nodes, lambda i, j: (j - i) * spacing)


def grid(nodes: int, spacing: int) -> Truth:
    """Nodes on a square grid, row by row."""
    side = int(math.sqrt(nodes))

    def rtt(i: int, j: int) -> int:
        dx, dy = float(j % side) - float(i % side), float(j // side) - float(i // side)
        return int(math.sqrt(dx * dx + dy * dy) * float(spacing))

    return _matrix(nodes, rtt)


def split(nodes: int, lan: int, wan: int) -> Truth:
    """Two LAN clusters joined by a WAN link (the first holds nodes 0..nodes//2)."""
    half = nodes // 2
    return _matrix(nodes, lambda i, j: lan + (wan if (i <= half) != (j <= half) else 0))


def circle(nodes: int, radius: int) -> Truth:
    """Nodes on a circle, except node 0, which is ``2 * radius`` from all: only a height fits it."""

    def rtt(i: int, j: int) -> int:
        if i == 0:
            return 2 * radius
        t1, t2 = 2.0 * math.pi * i / nodes, 2.0 * math.pi * j / nodes
        dx, dy = math.cos(t2) - math.cos(t1), math.sin(t2) - math.sin(t1)
        return int(math.sqrt(dx * dx + dy * dy) * float(radius))

    return _matrix(nodes, rtt)


def random_rtts(nodes: int, mean: int, deviation: int, seed: int = 1) -> Truth:
    """Normally distributed round trips, no geometry behind them."""
    generator = random.Random(seed)  # noqa: S311
    return _matrix(nodes, lambda i, j: int(generator.gauss(0.0, 1.0) * deviation + mean))


@dataclass(frozen=True)
class Stats:
    error_avg: float  # mean over all pairs of |estimate - truth| / truth
    error_max: float


@dataclass
class Simulation:
    """Clients that learn a truth matrix, as Serf's ``Simulate`` drives them."""

    truth: Truth
    config: Config = field(default_factory=Config)
    source: Source = field(default_factory=PythonSource)
    clients: list[Client] = field(init=False)

    def __post_init__(self) -> None:
        self.clients = [Client(self.config, random=self.source.random) for _ in self.truth]
        self._seconds = [[seconds_of(rtt) for rtt in row] for row in self.truth]

    def run(self, cycles: int, seed: int = 1, every: int = 0,
            on_progress: Callable[[int, Stats], None] | None = None) -> Stats:
        """``cycles`` rounds in which each node pings a random peer; reseeds the source first, as
        Serf does. ``on_progress(cycle, stats)`` is called every ``every`` cycles when given."""
        source, clients, seconds = self.source, self.clients, self._seconds
        source.seed(seed)
        nodes = len(clients)
        names = [f"node_{j}" for j in range(nodes)]
        for cycle in range(cycles):
            for i, client in enumerate(clients):
                j = source.intn(nodes)
                if j != i:
                    client.update(names[j], clients[j].coordinate, seconds[i][j])
            if every and on_progress is not None and (cycle + 1) % every == 0:
                on_progress(cycle + 1, self.evaluate())
        return self.evaluate()

    def evaluate(self) -> Stats:
        coordinates = [client.coordinate for client in self.clients]
        total, worst, count = 0.0, 0.0, 0
        for i, mine in enumerate(coordinates):
            for j in range(i + 1, len(coordinates)):
                actual = self._seconds[i][j]
                error = abs(mine.distance_seconds(coordinates[j]) - actual) / actual
                worst = max(worst, error)
                total += error
                count += 1
        return Stats(total / count if count else 0.0, worst)

    def coordinates(self) -> list[Coordinate]:
        return [client.coordinate for client in self.clients]


@dataclass(frozen=True)
class Scenario:
    """One of Serf's performance tests: its truth, its configuration, how many cycles."""

    name: str
    description: str
    truth: Callable[[], Truth]
    cycles: int = 1000
    dimensionality: int = 8
    start: Sequence[Sequence[float]] = ()  # initial vectors, when not all at the origin

    def simulation(self, source: Source | None = None, config: Config | None = None,
                   truth: Truth | None = None) -> Simulation:
        """A fresh simulation of this scenario; ``truth`` replaces the scenario's own matrix (the
        tests hand in Go's, to rule out last-bit differences of cos and sin)."""
        if config is None:
            config = Config(dimensionality=self.dimensionality)
        simulation = Simulation(self.truth() if truth is None else truth, config,
                                PythonSource() if source is None else source)
        for client, vec in zip(simulation.clients, self.start):
            start = Coordinate.new(config)
            start.vec = list(vec)
            client.set_coordinate(start)
        return simulation


def _drift_truth() -> Truth:
    distance = 500 * MILLISECOND
    return _matrix(4, lambda i, j: int(math.sqrt(2) * distance) if i % 2 == 0 and j % 2 == 0 else distance)


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("line", "10 nodes 10 ms apart on a line", lambda: line(10, 10 * MILLISECOND)),
    Scenario("grid", "25 nodes on a 5x5 grid, 10 ms spacing", lambda: grid(25, 10 * MILLISECOND)),
    Scenario("split", "two LAN clusters (1 ms) joined by a 10 ms WAN link",
             lambda: split(25, MILLISECOND, 10 * MILLISECOND)),
    Scenario("height", "24 nodes on a circle of radius 100 ms and one 200 ms from all (2 dimensions)",
             lambda: circle(25, 100 * MILLISECOND), dimensionality=2),
    Scenario("random", "25 nodes, round trips drawn around 100 ms (deviation 10 ms)",
             lambda: random_rtts(25, 100 * MILLISECOND, 10 * MILLISECOND)),
    Scenario("drift", "4 nodes on a square of side 500 ms, started off-centre (2 dimensions)",
             _drift_truth, dimensionality=2,
             start=((0.0, 0.0), (0.0, 0.5), (0.5, 0.5), (0.5, 0.5))),
)}

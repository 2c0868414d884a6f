"""jetwire's Vivaldi maths against Serf's own Go code, fed the same inputs: every output agrees to
1e-9 relative (in practice bit for bit), and the simulations end at least as accurate."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from serf import GoSource, Serf, config_text, coordinate_text, parse_coordinate

from jetwire.cluster import Client, Config, Coordinate, CoordinateError, DimensionalityConflict, InvalidRtt
from jetwire.cluster.coordinate import adjusted_distance, nanoseconds_of, seconds_of
from jetwire.cluster.simulate import SCENARIOS

RELATIVE = 1e-9


def close(a: float, b: float) -> bool:
    return a == b or math.isclose(a, b, rel_tol=RELATIVE)


def assert_same(mine: Coordinate, theirs: Coordinate) -> None:
    assert len(mine.vec) == len(theirs.vec)
    pairs = [*zip(mine.vec, theirs.vec), (mine.error, theirs.error), (mine.adjustment, theirs.adjustment),
             (mine.height, theirs.height)]
    assert all(close(a, b) for a, b in pairs), (mine, theirs)


seconds = st.floats(-0.5, 0.5, allow_nan=False)


@st.composite
def coordinates(draw: st.DrawFn, dimensionality: int = 8) -> Coordinate:
    return Coordinate(draw(st.lists(seconds, min_size=dimensionality, max_size=dimensionality)),
                      draw(st.floats(0.0, 1.5)), draw(st.floats(-0.01, 0.01)), draw(st.floats(1e-5, 0.1)))


@settings(max_examples=150)
@given(coordinates(), coordinates())
def test_distance_agrees_with_serf(serf: Serf, a: Coordinate, b: Coordinate) -> None:
    theirs = int(serf.ask(f"distance {coordinate_text(a)} {coordinate_text(b)}"))
    assert nanoseconds_of(adjusted_distance(a, b)) == theirs
    assert a.distance_seconds(b) == seconds_of(theirs)


@settings(max_examples=150)
@given(coordinates(), coordinates(), st.floats(-0.1, 0.1))
def test_apply_force_agrees_with_serf(serf: Serf, a: Coordinate, b: Coordinate, force: float) -> None:
    assume(math.dist(a.vec, b.vec) > 1e-5)  # coincident points part along a random direction
    config = Config()
    serf.ask(config_text(config))
    theirs = parse_coordinate(serf.ask(f"force {number(force)} {coordinate_text(a)} {coordinate_text(b)}"))
    assert_same(a.apply_force(config, force, b), theirs)


def number(value: float) -> str:
    return repr(float(value))


CONFIGS = [
    Config(),
    Config(dimensionality=2, adjustment_window_size=0, latency_filter_size=1),
    Config(dimensionality=3, vivaldi_ce=0.5, vivaldi_cc=0.1, adjustment_window_size=5, height_min=1e-4,
           latency_filter_size=5, gravity_rho=20.0),
]


@pytest.mark.parametrize("config", CONFIGS, ids=["default", "no-window", "tuned"])
def test_update_sequences_agree_with_serf(serf: Serf, config: Config) -> None:
    """Long runs of updates from several peers, forgetting some on the way, through the latency
    filter, the adjustment window and gravity: each returned coordinate as Serf's."""
    generator = random.Random(14)
    serf.ask(config_text(config))
    serf.ask("client me")
    mine = Client(config)
    start = Coordinate.new(config)
    start.vec = [0.001 * (k + 1) for k in range(config.dimensionality)]  # off the origin: no random push
    serf.ask(f"set me {coordinate_text(start)}")
    mine.set_coordinate(start)
    peers = []
    for k in range(6):
        peer = Coordinate.new(config)
        peer.vec = [generator.uniform(-0.05, 0.05) for _ in range(config.dimensionality)]
        peer.height = generator.uniform(config.height_min, 0.01)
        peer.error = generator.uniform(0.05, 1.5)
        peer.adjustment = generator.uniform(-0.002, 0.002)
        peers.append((f"peer{k}", peer))
    for step in range(1500):
        node, peer = peers[generator.randrange(len(peers))]
        if step % 97 == 96:
            serf.ask(f"forget me {node}")
            mine.forget_node(node)
        rtt_ns = generator.randrange(0, 200_000_000) if step % 50 else 0
        theirs = parse_coordinate(serf.ask(f"update me {node} {rtt_ns} {coordinate_text(peer)}"))
        assert_same(mine.update(node, peer, seconds_of(rtt_ns)), theirs)
    assert_same(mine.coordinate, parse_coordinate(serf.ask("get me")))


def test_invalid_input_is_refused_by_both_and_changes_nothing(serf: Serf) -> None:
    config = Config(dimensionality=3)
    serf.ask(config_text(config))
    serf.ask("client guard")
    mine = Client(config)
    peer = Coordinate.new(config)
    peer.vec = [0.01, 0.02, 0.03]
    for rtt_ns in (20_000_000, 30_000_000):
        serf.ask(f"update guard p {rtt_ns} {coordinate_text(peer)}")
        mine.update("p", peer, seconds_of(rtt_ns))
    before = mine.coordinate
    nan = peer.clone()
    nan.vec[1] = math.nan
    wide = Coordinate.new(Config(dimensionality=4))
    cases: list[tuple[Coordinate, int, type[CoordinateError]]] = [
        (nan, 20_000_000, CoordinateError),
        (wide, 20_000_000, DimensionalityConflict),
        (peer, -1, InvalidRtt),
        (peer, 10_000_000_001, InvalidRtt),
    ]
    for other, rtt_ns, error in cases:
        assert serf.ask(f"update guard p {rtt_ns} {coordinate_text(other)}").startswith("error")
        with pytest.raises(error):
            mine.update("p", other, seconds_of(rtt_ns))
        assert mine.coordinate == before
    # The latency filter kept no sample of the refused updates: the next one agrees again.
    theirs = parse_coordinate(serf.ask(f"update guard p 25000000 {coordinate_text(peer)}"))
    assert_same(mine.update("p", peer, 0.025), theirs)


def test_a_result_out_of_range_resets_both_and_is_counted(serf: Serf) -> None:
    config = Config(dimensionality=2)
    serf.ask(config_text(config))
    serf.ask("client poisoned")
    mine = Client(config)
    extreme = Coordinate([1e300, -1e300], 1.0, 0.0, 1e-5)  # valid, but its distance overflows
    theirs = parse_coordinate(serf.ask(f"update poisoned p 5000000 {coordinate_text(extreme)}"))
    assert_same(mine.update("p", extreme, 0.005), theirs)
    assert mine.coordinate == Coordinate.new(config)
    assert int(serf.ask("resets poisoned")) == mine.stats().resets == 1


@pytest.mark.parametrize("name", ["line", "grid", "split", "height", "drift"])
def test_scenario_truth_matches_serf(serf: Serf, name: str) -> None:
    """The matrices jetwire builds are Serf's (random's differ: Python's generator, not Go's)."""
    scenario = SCENARIOS[name]
    theirs = [int(v) for v in serf.ask(f"truth {scenario.name}").split()]
    mine = [rtt for row in scenario.truth() for rtt in row]
    # Go computes cos and sin in Go, Python through the C library: a last-bit difference may move
    # a truncated nanosecond by one.
    assert all(abs(a - b) <= (1 if scenario.name == "height" else 0) for a, b in zip(mine, theirs, strict=True))


CYCLES = {"line": (1000,), "grid": (1000,), "split": (1000,), "height": (1000,), "random": (1000,),
          "drift": (1000, 10000)}
FIGURES: dict[str, tuple[float, float, float, float]] = {}


@pytest.mark.parametrize("name", sorted(CYCLES))
def test_scenario_is_at_least_as_accurate_as_serf(serf: Serf, name: str) -> None:
    """Serf's performance tests rebuilt: the same truth (Go's matrix), the same random choices
    (Go's generator), the same cycles; the average and worst relative error beside Serf's."""
    scenario = SCENARIOS[name]
    answer = serf.ask(f"simulate {name} {' '.join(map(str, CYCLES[name]))}").split(";")
    serf_avg, serf_max = map(float, answer[0].split())
    truth_values = [int(v) for v in serf.ask(f"truth {name}").split()]
    nodes = math.isqrt(len(truth_values))
    truth = [truth_values[i * nodes:(i + 1) * nodes] for i in range(nodes)]
    simulation = scenario.simulation(GoSource(serf, 400_000), truth=truth)
    for cycles in CYCLES[name]:
        stats = simulation.run(cycles)
    FIGURES[name] = (stats.error_avg, stats.error_max, serf_avg, serf_max)
    print(f"{name}: jetwire avg {stats.error_avg:.9f} max {stats.error_max:.9f}; "
          f"Serf avg {serf_avg:.9f} max {serf_max:.9f}")
    for mine, text in zip(simulation.coordinates(), answer[1:], strict=True):
        assert_same(mine, parse_coordinate(text))
    assert stats.error_avg <= serf_avg * (1 + RELATIVE)
    assert stats.error_max <= serf_max * (1 + RELATIVE)


@st.composite
def configs(draw: st.DrawFn) -> Config:
    return Config(
        dimensionality=draw(st.integers(1, 8)),
        vivaldi_error_max=draw(st.floats(0.1, 3.0)),
        vivaldi_ce=draw(st.floats(0.0, 1.0)),
        vivaldi_cc=draw(st.floats(0.0, 1.0)),
        adjustment_window_size=draw(st.integers(0, 8)),
        height_min=draw(st.sampled_from([0.0, 1e-6, 10e-6, 1e-3])),
        latency_filter_size=draw(st.integers(1, 5)),
        gravity_rho=draw(st.floats(0.5, 500.0)),
    )


RTTS_NS = st.one_of(st.sampled_from([0, 1, 999, 1000, 10_000_000_000]), st.integers(0, 10_000_000_000),
                    st.integers(0, 200_000_000))


@settings(max_examples=60)
@given(st.data(), configs(), st.integers(1, 2**31))
def test_any_update_sequence_agrees_with_serf(serf: Serf, data: st.DataObject, config: Config, seed: int) -> None:
    """Any configuration, peers anywhere (the origin included, so coincident points part along
    directions drawn from Go's generator, seeded alike on both sides), any valid round trips."""
    serf.ask(config_text(config))
    serf.ask("client any")
    serf.ask(f"seed {seed}")
    mine = Client(config, random=GoSource(serf, 2000, seed).random)
    point = st.floats(-0.2, 0.2, allow_nan=False) | st.just(0.0)
    peers = data.draw(st.lists(st.builds(
        Coordinate, st.lists(point, min_size=config.dimensionality, max_size=config.dimensionality),
        st.floats(0.0, 2.0), st.floats(-0.05, 0.05), st.floats(0.0, 0.05)), min_size=1, max_size=4))
    steps = data.draw(st.lists(st.tuples(st.integers(0, len(peers) - 1), RTTS_NS), min_size=1, max_size=40))
    for index, rtt_ns in steps:
        node, peer = f"p{index}", peers[index]
        theirs = parse_coordinate(serf.ask(f"update any {node} {rtt_ns} {coordinate_text(peer)}"))
        assert_same(mine.update(node, peer, seconds_of(rtt_ns)), theirs)
    assert mine.stats().resets == int(serf.ask("resets any"))

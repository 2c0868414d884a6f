"""Config and Coordinate: bytes as upstream lays them out, round trips, the maths' edge cases, and
refusals that leave the client as it was."""

from __future__ import annotations

import math
import threading
from datetime import timedelta

import pytest
from hypothesis import given

from jetwire import DecodeError, JetwireError
from jetwire.cluster import (
    MAX_DIMENSIONALITY,
    MAX_WINDOW,
    Client,
    ClientStats,
    Config,
    ConfigError,
    Coordinate,
    CoordinateError,
    DimensionalityConflict,
    InvalidRtt,
    InvalidValues,
)
from jetwire.cluster.coordinate import nanoseconds_of, seconds_of
from jetwire.testing import strategy

# Upstream's layout: the usize fields as 8 little-endian bytes, the f64s as IEEE 754 little-endian,
# in declaration order; Vec<f64> is a u16 count, then the values.
CONFIG_DEFAULT = bytes.fromhex(
    "0800000000000000"  # dimensionality 8
    "000000000000f83f"  # vivaldi_error_max 1.5
    "000000000000d03f"  # vivaldi_ce 0.25
    "000000000000d03f"  # vivaldi_cc 0.25
    "1400000000000000"  # adjustment_window_size 20
    "f168e388b5f8e43e"  # height_min 1e-5
    "0300000000000000"  # latency_filter_size 3
    "0000000000c06240"  # gravity_rho 150.0
)
COORDINATE = bytes.fromhex(
    "0200"  # two dimensions
    "000000000000f03f"  # 1.0
    "00000000000000c0"  # -2.0
    "000000000000e03f"  # error 0.5
    "000000000000d0bf"  # adjustment -0.25
    "f168e388b5f8e43e"  # height 1e-5
)


def test_golden_bytes() -> None:
    assert Config().encode() == CONFIG_DEFAULT
    assert Config.decode(CONFIG_DEFAULT) == Config()
    coordinate = Coordinate([1.0, -2.0], 0.5, -0.25, 1e-5)
    assert coordinate.encode() == COORDINATE
    assert Coordinate.decode(COORDINATE) == coordinate


def test_truncated_bytes_are_a_decode_error() -> None:
    with pytest.raises(DecodeError):
        Coordinate.decode(COORDINATE[:-1])
    with pytest.raises(DecodeError):
        Config.decode(CONFIG_DEFAULT[:20])


@given(strategy(Config))
def test_config_round_trips(config: Config) -> None:
    assert Config.decode(config.encode()) == config


@given(strategy(Coordinate))
def test_coordinate_round_trips(coordinate: Coordinate) -> None:
    back = Coordinate.decode(coordinate.encode())
    assert back.encode() == coordinate.encode()  # bytes, since NaN != NaN
    assert back.is_valid() == coordinate.is_valid()


def test_defaults_are_upstreams() -> None:
    assert Config() == Config(8, 1.5, 0.25, 0.25, 20, 10e-6, 3, 150.0)
    origin = Coordinate.new(Config(dimensionality=3))
    assert origin == Coordinate([0.0, 0.0, 0.0], 1.5, 0.0, 10e-6)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("where", ["vec", "error", "adjustment", "height"])
def test_validity(bad: float, where: str) -> None:
    coordinate = Coordinate([0.1, 0.2], 0.5, 0.0, 1e-5)
    assert coordinate.is_valid()
    if where == "vec":
        coordinate.vec[1] = bad
    else:
        setattr(coordinate, where, bad)
    assert not coordinate.is_valid()


def test_distance_adds_heights_and_adjustments_while_positive() -> None:
    a = Coordinate([0.0, 0.3], 0.5, 0.0, 0.01)
    b = Coordinate([0.4, 0.0], 0.5, 0.0, 0.02)
    assert a.raw_distance_to(b) == pytest.approx(0.53)
    assert a.distance_seconds(b) == pytest.approx(0.53, abs=1e-9)
    a.adjustment, b.adjustment = 0.1, -0.05
    assert a.distance_seconds(b) == pytest.approx(0.58, abs=1e-9)
    a.adjustment = -1.0  # the sum would be negative: the adjustments are left out
    assert a.distance_seconds(b) == pytest.approx(0.53, abs=1e-9)
    assert a.distance_to(b) == timedelta(microseconds=530000)


def test_distance_is_whole_nanoseconds_and_timedelta_whole_microseconds() -> None:
    a = Coordinate([0.0], 0.5, 0.0, 0.0)
    b = Coordinate([0.0012345678919], 0.5, 0.0, 0.0)
    assert a.distance_seconds(b) == seconds_of(1_234_567)
    assert a.distance_to(b) == timedelta(microseconds=1234)


def test_conversions_never_raise() -> None:
    assert nanoseconds_of(math.inf) == nanoseconds_of(math.nan) == nanoseconds_of(1e300) == -(1 << 63)
    assert nanoseconds_of(-1.5e-9) == -1
    assert seconds_of(-1_500_000_000) == -1.5
    huge = Coordinate([1e300, 0.0], 0.5, 0.0, 0.0)
    assert huge.is_valid()
    assert huge.distance_seconds(Coordinate([-1e300, 0.0], 0.5, 0.0, 0.0)) < 0  # Go's answer, not an exception


def test_incompatible_coordinates_raise() -> None:
    a, b = Coordinate.new(Config(dimensionality=3)), Coordinate.new(Config(dimensionality=2))
    assert not a.is_compatible_with(b)
    for call in (a.distance_to, a.distance_seconds, a.raw_distance_to,
                 lambda other: a.apply_force(Config(dimensionality=3), 1.0, other)):
        with pytest.raises(DimensionalityConflict):
            call(b)


def test_force_moves_away_and_raises_height() -> None:
    config = Config(dimensionality=2)
    a = Coordinate([1.0, 0.0], 0.5, 0.0, 0.1)
    moved = a.apply_force(config, 0.5, Coordinate([0.0, 0.0], 0.5, 0.0, 0.1))
    assert moved.vec == [1.5, 0.0]
    assert moved.height == pytest.approx(0.2)
    pulled = a.apply_force(config, -5.0, Coordinate([0.0, 0.0], 0.5, 0.0, 0.1))
    assert pulled.height == config.height_min  # never below the minimum


def test_coincident_points_part_along_the_drawn_direction() -> None:
    config = Config(dimensionality=2)
    a = Coordinate.new(config)
    draws = iter([1.0, 0.5])  # direction (0.5, 0): along the first axis
    moved = a.apply_force(config, 2.0, a, random=lambda: next(draws))
    assert moved.vec == [2.0, 0.0]
    assert moved.height == a.height
    stuck = a.apply_force(config, 3.0, a, random=lambda: 0.5)  # no direction drawn: the first axis
    assert stuck.vec == [3.0, 0.0]


@pytest.mark.parametrize("change", [
    {"dimensionality": 0}, {"dimensionality": MAX_DIMENSIONALITY + 1}, {"latency_filter_size": 0},
    {"adjustment_window_size": 1 << 40}, {"latency_filter_size": 1 << 40}, {"gravity_rho": 0.0},
    {"vivaldi_error_max": math.nan}, {"height_min": -1.0}, {"vivaldi_cc": math.inf},
])
def test_unusable_configs_are_refused(change: dict[str, float]) -> None:
    config = Config(**change)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        Client(config)
    with pytest.raises(ConfigError):
        Coordinate.new(config)


def peer(*vec: float) -> Coordinate:
    return Coordinate(list(vec), 0.5, 0.0, 1e-5)


def test_refused_updates_leave_everything_unchanged() -> None:
    client = Client(Config(dimensionality=2))
    client.set_coordinate(peer(0.01, 0.0))
    client.update("a", peer(0.0, 0.02), 0.03)
    state = (client.coordinate, dict(client._latency_samples), list(client._adjustment_samples),
             client._adjustment_index)
    for other, rtt, error in [
        (peer(math.nan, 0.0), 0.02, InvalidValues), (peer(0.0, math.inf), 0.02, InvalidValues),
        (peer(0.0, 0.0, 0.0), 0.02, DimensionalityConflict), (peer(0.0, 0.02), -0.001, InvalidRtt),
        (peer(0.0, 0.02), 10.5, InvalidRtt), (peer(0.0, 0.02), math.nan, InvalidRtt),
        (peer(0.0, 0.02), timedelta(seconds=11), InvalidRtt), (peer(0.0, 0.02), timedelta(seconds=-1), InvalidRtt),
        (peer(0.0, 0.02), "0.02", InvalidRtt), (peer(0.0, 0.02), True, InvalidRtt), (peer(0.0, 0.02), None, InvalidRtt),
    ]:
        with pytest.raises(error):
            client.update("a", other, rtt)
        assert (client.coordinate, dict(client._latency_samples), list(client._adjustment_samples),
                client._adjustment_index) == state
    with pytest.raises(InvalidValues):
        client.set_coordinate(peer(math.nan, 0.0))
    with pytest.raises(DimensionalityConflict):
        client.set_coordinate(peer(0.0, 0.0, 0.0))
    assert client.coordinate == state[0]


def test_latency_filter_is_a_median_per_node_and_forgettable() -> None:
    client = Client(Config(dimensionality=2))
    for rtt in (0.201, 0.200, 0.207):
        assert client._latency_filter("alice", rtt) in (0.201, 0.200, 0.201)
    assert client._latency_filter("alice", 0.800) == 0.207  # 0.200 fell out: median of 0.207, 0.201, 0.800
    assert client._latency_filter("bob", 0.310) == 0.310
    client.forget_node("alice")
    assert client._latency_filter("alice", 0.888) == 0.888


def test_timedelta_and_seconds_rtts_are_the_same_update() -> None:
    one, two = Client(Config(dimensionality=2)), Client(Config(dimensionality=2))
    for client in (one, two):
        client.set_coordinate(peer(0.01, 0.0))
    assert one.update("a", peer(0.0, 0.02), timedelta(milliseconds=30)) == two.update("a", peer(0.0, 0.02), 0.03)


def test_stats_count_resets() -> None:
    client = Client(Config(dimensionality=2))
    assert client.stats() == ClientStats(resets=0)
    client.update("far", Coordinate([1e300, -1e300], 1.0, 0.0, 1e-5), 0.005)
    assert client.stats().resets == 1
    assert client.coordinate == Coordinate.new(Config(dimensionality=2))


def test_an_update_runs_whole_under_the_clients_lock() -> None:
    """The random direction is drawn mid-update (coincident points): the lock is held then."""
    config = Config(dimensionality=2)
    seen: list[bool] = []
    client: Client

    def draw() -> float:
        seen.append(client._lock.locked())
        return 0.75

    client = Client(config, random=draw)
    client.update("a", Coordinate.new(config), 0.01)
    assert seen and all(seen)


def test_threads_sharing_a_client_lose_no_update() -> None:
    client = Client(Config(dimensionality=3, adjustment_window_size=MAX_WINDOW))
    client.set_coordinate(Coordinate([0.01, 0.0, 0.0], 1.5, 0.0, 1e-5))
    per_thread, threads = 200, 4

    def work(k: int) -> None:
        for n in range(per_thread):
            client.update(f"n{k}", peer(0.0, 0.001 * (n % 7), 0.001 * k), 0.001 * (1 + n % 5))

    workers = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert client._adjustment_index == per_thread * threads  # one step per update
    assert client.coordinate.is_valid()
    assert sorted(client._latency_samples) == [f"n{k}" for k in range(threads)]


def test_errors_are_jetwire_errors_and_value_errors() -> None:
    for error in (DimensionalityConflict, InvalidValues, InvalidRtt):
        assert issubclass(error, CoordinateError)
    for error in (CoordinateError, ConfigError):
        assert issubclass(error, JetwireError) and issubclass(error, ValueError)

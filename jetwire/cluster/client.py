"""Serf's Vivaldi client: turns round-trip times to other nodes into this node's coordinate."""

from __future__ import annotations

import math
import random as _random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from .coordinate import (
    ZERO_THRESHOLD,
    Config,
    Coordinate,
    DimensionalityConflict,
    InvalidRtt,
    InvalidValues,
    apply_force,
    nanoseconds_of,
    raw_distance,
    seconds_of,
)

__all__ = ["Client", "ClientStats", "MAX_RTT"]

# Serf's bound: a longer round trip is a broken measurement, not a far node.
MAX_RTT = 10.0


@dataclass(frozen=True)
class ClientStats:
    resets: int = 0  # updates whose result held NaN or infinity, after which the client restarted


class Client:
    """One node's view: its coordinate, refined by each ``update`` with a measured round trip.

    Every method takes the client's lock, so threads may share one client. An update that raises
    (incompatible or invalid coordinate, round trip out of range) has changed nothing.
    """

    def __init__(self, config: Config | None = None, *, random: Callable[[], float] = _random.random) -> None:
        self._config = config = Config() if config is None else config
        config.check()
        self._random = random
        self._lock = threading.Lock()
        self._dimensionality = config.dimensionality
        self._reset_coordinate()
        self._adjustment_index = 0
        self._adjustment_samples = [0.0] * config.adjustment_window_size
        self._latency_samples: dict[str, list[float]] = {}
        self._resets = 0

    def _reset_coordinate(self) -> None:
        config = self._config
        self._vec = [0.0] * config.dimensionality
        self._error = config.vivaldi_error_max
        self._adjustment = 0.0
        self._height = config.height_min

    @property
    def config(self) -> Config:
        return self._config

    @property
    def coordinate(self) -> Coordinate:
        """A copy of the current coordinate."""
        with self._lock:
            return Coordinate(list(self._vec), self._error, self._adjustment, self._height)

    def set_coordinate(self, coordinate: Coordinate) -> None:
        with self._lock:
            self._check(coordinate)
            self._vec = list(coordinate.vec)
            self._error = coordinate.error
            self._adjustment = coordinate.adjustment
            self._height = coordinate.height

    def forget_node(self, node: str) -> None:
        """Drops the node's latency samples (call it when the node leaves)."""
        with self._lock:
            self._latency_samples.pop(node, None)

    def stats(self) -> ClientStats:
        with self._lock:
            return ClientStats(resets=self._resets)

    def distance_to(self, other: Coordinate) -> timedelta:
        return self.coordinate.distance_to(other)

    def distance_seconds(self, other: Coordinate) -> float:
        return self.coordinate.distance_seconds(other)

    def _check(self, other: Coordinate) -> None:
        if len(other.vec) != self._dimensionality:
            raise DimensionalityConflict(self._dimensionality, len(other.vec))
        if not other.is_valid():
            raise InvalidValues()

    def update(self, node: str, other: Coordinate, rtt: timedelta | float) -> Coordinate:
        """Learns from one round trip of ``rtt`` (a timedelta, or seconds) to ``node``, whose
        coordinate is ``other``; returns the new coordinate."""
        if isinstance(rtt, timedelta):
            seconds = seconds_of((rtt.days * 86_400 + rtt.seconds) * 1_000_000_000 + rtt.microseconds * 1000)
        elif isinstance(rtt, (int, float)) and not isinstance(rtt, bool):
            seconds = float(rtt)
        else:  # float() would also take a string such as "0.1"
            raise InvalidRtt(rtt)
        if not 0.0 <= seconds <= MAX_RTT:  # NaN fails too
            raise InvalidRtt(rtt)
        with self._lock:
            self._check(other)
            rtt_seconds = self._latency_filter(node, seconds)
            self._update_vivaldi(other, rtt_seconds)
            self._update_adjustment(other, rtt_seconds)
            self._update_gravity()
            if not (all(map(math.isfinite, self._vec)) and math.isfinite(self._error)
                    and math.isfinite(self._adjustment) and math.isfinite(self._height)):
                self._resets += 1
                self._reset_coordinate()
            return Coordinate(list(self._vec), self._error, self._adjustment, self._height)

    def _latency_filter(self, node: str, rtt_seconds: float) -> float:
        samples = self._latency_samples.get(node)
        if samples is None:
            samples = self._latency_samples[node] = []
        samples.append(rtt_seconds)
        if len(samples) > self._config.latency_filter_size:
            del samples[0]
        return sorted(samples)[len(samples) // 2]

    def _update_vivaldi(self, other: Coordinate, rtt_seconds: float) -> None:
        config = self._config
        distance = raw_distance(self._vec, other.vec, self._height, other.height)
        adjusted = distance + self._adjustment + other.adjustment
        if adjusted > 0.0:
            distance = adjusted
        distance = seconds_of(nanoseconds_of(distance))
        if rtt_seconds < ZERO_THRESHOLD:
            rtt_seconds = ZERO_THRESHOLD
        wrongness = abs(distance - rtt_seconds) / rtt_seconds
        total_error = self._error + other.error
        if total_error < ZERO_THRESHOLD:
            total_error = ZERO_THRESHOLD
        weight = self._error / total_error
        error = config.vivaldi_ce * weight * wrongness + self._error * (1.0 - config.vivaldi_ce * weight)
        self._error = config.vivaldi_error_max if error > config.vivaldi_error_max else error
        force = config.vivaldi_cc * weight * (rtt_seconds - distance)
        self._vec, self._height = apply_force(
            self._vec, self._height, other.vec, other.height, force, config.height_min, self._random)

    def _update_adjustment(self, other: Coordinate, rtt_seconds: float) -> None:
        window = self._config.adjustment_window_size
        if window == 0:
            return
        samples = self._adjustment_samples
        samples[self._adjustment_index] = rtt_seconds - raw_distance(self._vec, other.vec, self._height, other.height)
        self._adjustment_index = (self._adjustment_index + 1) % window
        total = 0.0
        for sample in samples:
            total += sample
        self._adjustment = total / (2.0 * window)

    def _update_gravity(self) -> None:
        config = self._config
        origin = [0.0] * self._dimensionality
        # The origin as Serf's client holds it: height_min high, no adjustment; it comes first
        # in the sum, as in Serf.
        distance = raw_distance(origin, self._vec, config.height_min, self._height)
        adjusted = distance + 0.0 + self._adjustment
        if adjusted > 0.0:
            distance = adjusted
        scaled = seconds_of(nanoseconds_of(distance)) / config.gravity_rho
        force = -1.0 * (scaled * scaled)
        self._vec, self._height = apply_force(
            self._vec, self._height, origin, config.height_min, force, config.height_min, self._random)

"""Serf's Vivaldi client: turns round-trip times to other nodes into this node's coordinate."""

from __future__ import annotations

import random as _random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from math import isfinite, sqrt

from .coordinate import (
    ZERO_THRESHOLD,
    Config,
    Coordinate,
    DimensionalityConflict,
    InvalidRtt,
    InvalidValues,
    apply_force,
    nanoseconds_of,
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
            self._learn(other, self._latency_filter(node, seconds))
            vec, error, adjustment, height = self._vec, self._error, self._adjustment, self._height
            if not (all(map(isfinite, vec)) and isfinite(error) and isfinite(adjustment) and isfinite(height)):
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

    def _learn(self, other: Coordinate, rtt_seconds: float) -> None:
        """Serf's three steps (Vivaldi, adjustment, gravity) in one function: this is the hot path,
        and calls cost more than the arithmetic. Each sum and product is Serf's, in Serf's order;
        a magnitude Serf computes twice from the same numbers is computed once."""
        config = self._config
        height_min = config.height_min
        vec, height, error = self._vec, self._height, self._error
        other_vec, other_height = other.vec, other.height

        # Vivaldi: move along the line to the other node by a share of the distance's error.
        total = 0.0
        for x, y in zip(vec, other_vec):
            d = x - y
            total += d * d
        magnitude = sqrt(total)
        distance = magnitude + height + other_height
        adjusted = distance + self._adjustment + other.adjustment
        if adjusted > 0.0:
            distance = adjusted
        distance = _truncated(distance)
        # Floored for the Vivaldi step only: the adjustment below learns from the filtered value.
        rtt = rtt_seconds if rtt_seconds >= ZERO_THRESHOLD else ZERO_THRESHOLD
        wrongness = abs(distance - rtt) / rtt
        total_error = error + other.error
        if total_error < ZERO_THRESHOLD:
            total_error = ZERO_THRESHOLD
        weight = error / total_error
        error = config.vivaldi_ce * weight * wrongness + error * (1.0 - config.vivaldi_ce * weight)
        self._error = config.vivaldi_error_max if error > config.vivaldi_error_max else error
        force = config.vivaldi_cc * weight * (rtt - distance)
        if magnitude > ZERO_THRESHOLD:
            scale = 1.0 / magnitude
            vec = [x + (x - y) * scale * force for x, y in zip(vec, other_vec)]
            height = (height + other_height) * force / magnitude + height
            if height < height_min:
                height = height_min
        else:
            vec, height = apply_force(vec, height, other_vec, other_height, force, height_min, self._random)

        # Adjustment: half the mean of the recent differences between measured and raw distance.
        window = config.adjustment_window_size
        if window:
            total = 0.0
            for x, y in zip(vec, other_vec):
                d = x - y
                total += d * d
            samples = self._adjustment_samples
            samples[self._adjustment_index] = rtt_seconds - (sqrt(total) + height + other_height)
            self._adjustment_index = (self._adjustment_index + 1) % window
            total = 0.0
            for sample in samples:  # in order, not sum(): Python 3.12's sum() compensates
                total += sample
            self._adjustment = total / (2.0 * window)

        # Gravity: a pull toward the origin (height height_min, no adjustment), which comes first
        # in Serf's sums; x - 0.0 is x, so the direction is the vector itself.
        total = 0.0
        for x in vec:
            total += x * x
        magnitude = sqrt(total)
        distance = magnitude + height_min + height
        adjusted = distance + 0.0 + self._adjustment
        if adjusted > 0.0:
            distance = adjusted
        scaled = _truncated(distance) / config.gravity_rho
        force = -1.0 * (scaled * scaled)
        if magnitude > ZERO_THRESHOLD:
            scale = 1.0 / magnitude
            vec = [x + x * scale * force for x in vec]
            height = (height + height_min) * force / magnitude + height
            if height < height_min:
                height = height_min
        else:
            vec, height = apply_force(vec, height, [0.0] * len(vec), height_min, force, height_min, self._random)
        self._vec, self._height = vec, height


def _truncated(seconds: float) -> float:
    """``seconds`` cut to whole nanoseconds as Go's ``time.Duration(seconds * 1e9).Seconds()``."""
    scaled = seconds * 1.0e9
    if 0.0 <= scaled < 9.223372036854775808e18:
        whole, rest = divmod(int(scaled), 1_000_000_000)
        return whole + rest / 1e9
    return seconds_of(nanoseconds_of(seconds))

"""Vivaldi network coordinates (Dabek et al., SIGCOMM 2004) as HashiCorp Serf computes them.

``Config`` and ``Coordinate`` are upstream's ``jetstream_cluster::coordinate`` types, field for
field, so their bytes are interchangeable with it. The arithmetic follows Serf's ``coordinate``
package operation for operation (the same order of additions, a multiplication by the reciprocal
of a magnitude where Serf has one), because ``tests/cluster`` holds jetwire to Serf's own results
to 1e-9 relative, and floating-point sums only agree when they are summed alike.
"""

from __future__ import annotations

import math
import random as _random
from collections.abc import Callable, Sequence
from datetime import timedelta

from ..errors import JetwireError
from ..markers import f64, usize
from ..runtime.decorators import wireformat

__all__ = [
    "Config",
    "ConfigError",
    "Coordinate",
    "CoordinateError",
    "DimensionalityConflict",
    "InvalidRtt",
    "InvalidValues",
    "MAX_DIMENSIONALITY",
    "MAX_WINDOW",
]

# Closer than this, two points count as one (Serf's and upstream's threshold, in seconds).
ZERO_THRESHOLD = 1.0e-6
# A Coordinate's vec is a list on the wire, whose u16 length caps it; larger would not travel.
MAX_DIMENSIONALITY = 0xFFFF
# The adjustment window and the latency filter are allocated per client and per node: a bound
# keeps a decoded or mistyped Config from asking for unbounded memory.
MAX_WINDOW = 1 << 16
_INT64_MIN = -(1 << 63)
_NANOSECONDS = 1_000_000_000


class CoordinateError(JetwireError, ValueError):
    """A coordinate or round-trip time that the Vivaldi maths cannot use (upstream's three cases
    are the subclasses)."""


class ConfigError(JetwireError, ValueError):
    """A ``Config`` the client cannot run with."""


class DimensionalityConflict(CoordinateError):
    def __init__(self, mine: int, theirs: int) -> None:
        super().__init__(f"coordinates of {mine} and {theirs} dimensions cannot be compared")


class InvalidValues(CoordinateError):
    def __init__(self, what: str = "coordinate") -> None:
        super().__init__(f"{what} holds NaN or infinity")


class InvalidRtt(CoordinateError):
    def __init__(self, rtt: object) -> None:
        super().__init__(f"round-trip time {rtt!r} is not between 0 and 10 seconds")


@wireformat(frozen=True)
class Config:
    """How a Vivaldi client learns (upstream's field order and defaults; times in seconds)."""

    dimensionality: usize = 8
    vivaldi_error_max: f64 = 1.5  # the error of a new coordinate, and the most it can reach
    vivaldi_ce: f64 = 0.25  # how far one observation moves the error estimate
    vivaldi_cc: f64 = 0.25  # how far one observation moves the coordinate
    adjustment_window_size: usize = 20  # 0 turns the adjustment term off
    height_min: f64 = 10.0e-6
    latency_filter_size: usize = 3  # samples per node whose median is used
    gravity_rho: f64 = 150.0  # larger: weaker pull toward the origin

    def check(self) -> None:
        """Raises ``ConfigError`` for a configuration the client cannot run with (Serf checks
        only the dimensionality; the rest would fail later, mid-update, or allocate without
        bound)."""
        if not 0 < self.dimensionality <= MAX_DIMENSIONALITY:
            raise ConfigError(f"dimensionality must be 1..{MAX_DIMENSIONALITY}, not {self.dimensionality}")
        if not 0 < self.latency_filter_size <= MAX_WINDOW:
            raise ConfigError(f"latency_filter_size must be 1..{MAX_WINDOW}, not {self.latency_filter_size}")
        if not 0 <= self.adjustment_window_size <= MAX_WINDOW:
            raise ConfigError(f"adjustment_window_size must be 0..{MAX_WINDOW}, not {self.adjustment_window_size}")
        for name in ("vivaldi_error_max", "vivaldi_ce", "vivaldi_cc", "height_min", "gravity_rho"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ConfigError(f"{name} must be a finite number >= 0, not {value!r}")
        if self.gravity_rho == 0:
            raise ConfigError("gravity_rho must be > 0: the pull toward the origin divides by it")


@wireformat
class Coordinate:
    """A point in the Vivaldi space: a Euclidean part, a height above it, and an adjustment, all
    in seconds, with the error (confidence) of the estimate."""

    vec: list[f64]
    error: f64
    adjustment: f64
    height: f64

    @classmethod
    def new(cls, config: Config) -> Coordinate:
        """The origin, with the largest error: where every node starts."""
        config.check()
        return cls([0.0] * config.dimensionality, config.vivaldi_error_max, 0.0, config.height_min)

    def clone(self) -> Coordinate:
        return Coordinate(list(self.vec), self.error, self.adjustment, self.height)

    def is_valid(self) -> bool:
        """No NaN and no infinity in any component."""
        isfinite = math.isfinite
        return all(map(isfinite, self.vec)) and isfinite(self.error) and isfinite(self.adjustment) \
            and isfinite(self.height)

    def is_compatible_with(self, other: Coordinate) -> bool:
        return len(self.vec) == len(other.vec)

    def _check_compatible(self, other: Coordinate) -> None:
        if len(self.vec) != len(other.vec):
            raise DimensionalityConflict(len(self.vec), len(other.vec))

    def distance_seconds(self, other: Coordinate) -> float:
        """The estimated round-trip time to ``other`` in seconds, truncated to whole nanoseconds as
        upstream's and Serf's durations are (Serf's client learns from this truncated value)."""
        self._check_compatible(other)
        return seconds_of(nanoseconds_of(adjusted_distance(self, other)))

    def distance_to(self, other: Coordinate) -> timedelta:
        """The estimated round-trip time to ``other`` (whole microseconds: timedelta's grain)."""
        self._check_compatible(other)
        nanoseconds = nanoseconds_of(adjusted_distance(self, other))
        return timedelta(microseconds=nanoseconds // 1000 if nanoseconds >= 0 else -(-nanoseconds // 1000))

    def raw_distance_to(self, other: Coordinate) -> float:
        """The distance without the adjustments, in seconds, untruncated."""
        self._check_compatible(other)
        return raw_distance(self.vec, other.vec, self.height, other.height)

    def apply_force(self, config: Config, force: float, other: Coordinate,
                    random: Callable[[], float] = _random.random) -> Coordinate:
        """A copy of this coordinate moved by ``force`` seconds away from ``other`` (toward it when
        negative). Coincident points push apart along a random direction drawn from ``random``
        (uniform on [0, 1), like Serf's)."""
        self._check_compatible(other)
        vec, height = apply_force(self.vec, self.height, other.vec, other.height, force, config.height_min, random)
        return Coordinate(vec, self.error, self.adjustment, height)


def nanoseconds_of(seconds: float) -> int:
    """Go's and Rust's conversion of seconds to an integer duration: truncation toward zero; what
    does not fit in an int64 (or NaN) becomes int64's minimum, as amd64's conversion gives."""
    scaled = seconds * 1.0e9
    if scaled != scaled or not -9.223372036854775808e18 <= scaled < 9.223372036854775808e18:
        return _INT64_MIN
    return int(scaled)


def seconds_of(nanoseconds: int) -> float:
    """Go's ``Duration.Seconds()``: whole seconds plus the remainder, which rounds differently from
    one division."""
    whole, rest = divmod(abs(nanoseconds), _NANOSECONDS)
    seconds = whole + rest / 1e9
    return -seconds if nanoseconds < 0 else seconds


def raw_distance(a: Sequence[float], b: Sequence[float], height_a: float, height_b: float) -> float:
    total = 0.0
    for x, y in zip(a, b):
        d = x - y
        total += d * d
    return math.sqrt(total) + height_a + height_b


def adjusted_distance(a: Coordinate, b: Coordinate) -> float:
    """The distance in seconds, with both adjustments unless they would make it zero or less."""
    distance = raw_distance(a.vec, b.vec, a.height, b.height)
    adjusted = distance + a.adjustment + b.adjustment
    return adjusted if adjusted > 0.0 else distance


def apply_force(vec: Sequence[float], height: float, other_vec: Sequence[float], other_height: float,
                force: float, height_min: float, random: Callable[[], float]) -> tuple[list[float], float]:
    """The new vector and height after a push of ``force`` away from the other point."""
    direction = [x - y for x, y in zip(vec, other_vec)]
    total = 0.0
    for d in direction:
        total += d * d
    magnitude = math.sqrt(total)
    if magnitude > ZERO_THRESHOLD:
        scale = 1.0 / magnitude
        moved = [x + d * scale * force for x, d in zip(vec, direction)]
        height = (height + other_height) * force / magnitude + height
        return moved, max(height, height_min)
    # Coincident: a random direction, and the height stays (no distance to scale it by).
    direction = [random() - 0.5 for _ in direction]
    total = 0.0
    for d in direction:
        total += d * d
    magnitude = math.sqrt(total)
    if magnitude > ZERO_THRESHOLD:
        scale = 1.0 / magnitude
        return [x + d * scale * force for x, d in zip(vec, direction)], height
    return [x + (1.0 if i == 0 else 0.0) * force for i, x in enumerate(vec)], height

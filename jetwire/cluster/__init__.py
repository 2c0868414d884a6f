"""Vivaldi network coordinates: upstream's ``jetstream_cluster::coordinate`` types and Serf's client.

``Client.update(node, coordinate, rtt)`` after each round trip; ``Coordinate.distance_to`` to
estimate one that was never measured. See docs/cluster.md.
"""

from .client import MAX_RTT, Client, ClientStats
from .coordinate import (
    MAX_DIMENSIONALITY,
    MAX_WINDOW,
    Config,
    ConfigError,
    Coordinate,
    CoordinateError,
    DimensionalityConflict,
    InvalidRtt,
    InvalidValues,
)

__all__ = [
    "Client",
    "ClientStats",
    "Config",
    "ConfigError",
    "Coordinate",
    "CoordinateError",
    "DimensionalityConflict",
    "InvalidRtt",
    "InvalidValues",
    "MAX_DIMENSIONALITY",
    "MAX_RTT",
    "MAX_WINDOW",
]

"""examples/cluster_ping.py, run briefly: RPC servers ping each other and learn coordinates."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path

import pytest

from jetwire.cluster import Coordinate

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cluster_ping.py"


def test_the_example_learns_from_real_round_trips(capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("cluster_ping", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["cluster_ping"] = module  # dataclasses and @rpc.service look the module up
    try:
        spec.loader.exec_module(module)
        cluster = asyncio.run(module.run(3, 6))
        names = {node.name for node in cluster}
        origin = Coordinate.new(module.CONFIG)
        for node in cluster:
            assert set(node.measured) == names - {node.name}
            assert all(rtt > 0 for rtt in node.measured.values())
            assert node.client.coordinate.is_valid() and node.client.coordinate != origin
        module.report(cluster)
    finally:
        del sys.modules["cluster_ping"]
    printed = capsys.readouterr().out
    assert printed.count("estimated") == 6 and "node0:" in printed and "to node2:" in printed

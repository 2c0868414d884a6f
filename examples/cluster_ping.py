"""A small cluster of jetwire RPC servers that ping each other and learn network coordinates.

Each node serves ``Ping`` on a loopback port. Every round, each node pings every other node,
carrying its coordinate in the request; the answer carries the peer's. The measured round trip
and the peer's coordinate go into the node's ``jetwire.cluster.Client``. Loopback is equally
fast everywhere, so each server waits before answering as if the nodes stood on a line, 10 ms
apart. At the end each node prints its estimate of every round trip next to the last one it
measured.

    python examples/cluster_ping.py [--nodes 4] [--rounds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from jetwire import rpc
from jetwire.cluster import Client, Config, Coordinate

SPACING = 0.010  # seconds of simulated round trip between neighbours
CONFIG = Config(dimensionality=2)


@rpc.service(version="1.0.0")
class Ping(rpc.Service):
    async def ping(self, sender: str, coordinate: Coordinate) -> Coordinate:
        raise NotImplementedError  # a declaration: Node below answers


class Node(Ping):
    def __init__(self, name: str, position: int) -> None:
        self.name = name
        self.position = position
        self.positions: dict[str, int] = {}
        self.client = Client(CONFIG)
        self.measured: dict[str, float] = {}

    async def ping(self, sender: str, coordinate: Coordinate) -> Coordinate:
        # The simulated network: the farther the sender stands on the line, the later the answer.
        await asyncio.sleep(abs(self.positions[sender] - self.position) * SPACING)
        return self.client.coordinate

    async def ping_peer(self, peer: str, remote: Ping) -> None:
        start = time.perf_counter()
        theirs = await remote.ping(self.name, self.client.coordinate)
        rtt = time.perf_counter() - start
        self.measured[peer] = rtt
        self.client.update(peer, theirs, rtt)


async def run(nodes: int, rounds: int) -> list[Node]:
    cluster = [Node(f"node{i}", i) for i in range(nodes)]
    positions = {node.name: node.position for node in cluster}
    for node in cluster:
        node.positions = positions
    servers = [await rpc.serve(node, "tcp://127.0.0.1:0") for node in cluster]
    try:
        urls = {node.name: server.urls[0] for node, server in zip(cluster, servers)}
        links = {(node.name, peer): await Ping.connect(url) for node in cluster for peer, url in urls.items()
                 if peer != node.name}
        try:
            for _ in range(rounds):
                await asyncio.gather(*(node.ping_peer(peer, links[node.name, peer])
                                       for node in cluster for peer in urls if peer != node.name))
        finally:
            for link in links.values():
                await link.close()
    finally:
        for server in servers:
            await server.close()
    return cluster


def report(cluster: list[Node]) -> None:
    coordinates = {node.name: node.client.coordinate for node in cluster}
    for node in cluster:
        print(f"{node.name}:")
        for peer, measured in sorted(node.measured.items()):
            estimate = node.client.distance_seconds(coordinates[peer])
            print(f"  to {peer}: estimated {estimate * 1000:6.1f} ms, measured {measured * 1000:6.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    report(asyncio.run(run(args.nodes, args.rounds)))


if __name__ == "__main__":
    main()

"""What the tracing proxy costs: ``python -m benchmarks.p9_proxy`` from the project root (about
half a minute).

jetwire's server serves a temporary directory holding one file of ``--mib`` MiB over TCP; one
jetwire client connects to it directly and one through ``jetwire.p9.proxy`` (its lines go to a
function that keeps only their count, so what is measured is the proxy, not a terminal). Each
round times, for each way in turn (so a change in the machine's load touches both alike):

* ``read_bytes`` of the file at msize 1 MiB + 24 and at 64 KiB + 24;
* ``stat`` of the file 2,000 times, 32 at once (a walk, a getattr and a clunk each).

The figures are medians over ``--rounds`` rounds; the ratio is the proxied median over the
direct one. The report is printed and saved as ``benchmarks/results/<date>-p9-proxy.md``
(``--no-save`` to only print).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import statistics
import tempfile
import time
from pathlib import Path

from jetwire.p9 import Client
from jetwire.p9.localfs import LocalFilesystem
from jetwire.p9.proxy import proxy
from jetwire.p9.serving import serve

from .report import RESULTS

STATS = 2000
IN_FLIGHT = 32


async def _stats(client: Client) -> None:
    limit = asyncio.Semaphore(IN_FLIGHT)

    async def one() -> None:
        async with limit:
            await client.stat("big.bin")

    await asyncio.gather(*(one() for _ in range(STATS)))


async def measure(mib: int, rounds: int) -> tuple[dict[str, dict[str, float]], int]:
    lines = 0

    def count(text: str) -> None:
        nonlocal lines
        lines += text.count("\n") + 1

    with tempfile.TemporaryDirectory() as directory:
        data = os.urandom(mib << 20)
        (Path(directory) / "big.bin").write_bytes(data)
        server = await serve(LocalFilesystem(directory), "127.0.0.1:0")
        tracing = await proxy(server.addresses[0], "127.0.0.1:0", output=count)
        ways = {"direct": server.addresses[0], "proxied": tracing.addresses[0]}
        times: dict[str, dict[str, list[float]]] = {}
        try:
            for _ in range(rounds):
                for way, address in ways.items():
                    host, port = address.rsplit(":", 1)
                    for msize in (1024 * 1024 + 24, 65536 + 24):
                        client = await Client.connect(host, int(port), msize=msize, timeout=60)
                        try:
                            started = time.perf_counter()
                            got = await client.read_bytes("big.bin")
                            elapsed = time.perf_counter() - started
                            assert got == data
                            times.setdefault(f"read {mib} MiB, msize {msize - 24 >> 10} KiB", {}).setdefault(
                                way, []).append(elapsed)
                            if msize < 1024 * 1024:
                                started = time.perf_counter()
                                await _stats(client)
                                times.setdefault(f"{STATS:,} stat, {IN_FLIGHT} in flight", {}).setdefault(
                                    way, []).append(time.perf_counter() - started)
                        finally:
                            await client.close()
        finally:
            await tracing.close()
            await server.close()
    medians = {case: {way: statistics.median(values) for way, values in by_way.items()}
               for case, by_way in times.items()}
    return medians, lines


def report(medians: dict[str, dict[str, float]], lines: int, rounds: int) -> str:
    rows = ["| case | direct (ms) | through the proxy (ms) | ratio |", "|---|---:|---:|---:|"]
    for case, by_way in medians.items():
        direct, proxied = by_way["direct"], by_way["proxied"]
        rows.append(f"| {case} | {direct * 1000:.1f} | {proxied * 1000:.1f} | {proxied / direct:.2f}x |")
    return (f"# The tracing proxy's cost ({datetime.date.today().isoformat()})\n\n"
            f"Medians of {rounds} rounds; {lines:,} trace lines made in all.\n\n" + "\n".join(rows) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mib", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--no-save", action="store_true", help="print the report but do not save it")
    args = parser.parse_args(argv)
    medians, lines = asyncio.run(measure(args.mib, args.rounds))
    text = report(medians, lines, args.rounds)
    print(text)
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"{datetime.date.today().isoformat()}-p9-proxy.md").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()

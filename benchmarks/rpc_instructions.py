"""Instructions per RPC call, counted by valgrind's callgrind: what ``benchmarks/rpc.py`` times,
made deterministic, so a change to jetwire.rpc's per-call path is weighed by a count that the
load of a shared machine does not move.

    python -m benchmarks.rpc_instructions [--calls 4000] [--inflight 1,32] [--baseline-tree DIR] [--quic]
        [--annotate DIR]

Client and server run in ONE process, on one event loop, over TCP loopback (the bytes and the
batching of ``benchmarks/rpc.py``'s processes, with no scheduler between them: Linux delivers a
loopback send before ``send()`` returns, so every run takes the same path). With ``--quic`` the
pairs are the QUIC ones (``raw-quic``, aioquic's own glue, and ``jetwire-quic``) over UDP
loopback, after a count of aioquic alone (``benchmarks/quic_core.py``: its two ends handing each
other datagrams, no event loop, no RPC), the part of a round trip that is aioquic's core; timers of aioquic (the delayed ACK, loss detection) run on the real clock, which
valgrind slows some fifty times, so a QUIC count moves by a percent or two from run to run. Each figure is
(instructions of a process making N + W calls - one making W) / N, W the warm-up, so start-up,
imports, code generation and connecting cancel out.

Pairs, each a client kind against a server kind of ``benchmarks/rpc.py``:

- raw → raw: the hand-written echo both ways, the floor;
- jetwire → raw and raw → jetwire: one jetwire side against the raw other; minus the floor,
  what the jetwire client (server) costs per call above the raw client (server);
- raw → jetwire-inline: the jetwire server started with ``steps_inline=True`` (a handler's
  first step without a task of its own);
- jetwire → jetwire: the whole call, to compare with the floor;
- raw → raw-tasks: the raw server with a task per call, what a task alone costs.

With ``--baseline-tree DIR`` the pairs with a jetwire side run again with the jetwire of
``DIR`` (a directory holding ``jetwire/``), in the same run. With ``--annotate DIR`` each count
also leaves its callgrind file in DIR (``<client>-<server>-<inflight>-<calls>.out``), for
``callgrind_annotate --inclusive=yes`` to split by function (the difference of the two files of
a pair is the counted calls').
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PAIRS = (("raw", "raw"), ("jetwire", "raw"), ("raw", "jetwire"), ("raw", "jetwire-inline"), ("jetwire", "jetwire"),
         ("raw", "raw-tasks"))

CORE = "aioquic-core"  # benchmarks/quic_core.py: aioquic's two ends alone, one message each way, no loop, no RPC

QUIC_PAIRS = (("raw-quic", "raw-quic"), ("jetwire-quic", "raw-quic"), ("raw-quic", "jetwire-quic"),
              ("jetwire-quic", "jetwire-quic"))

_CHILD = """
import asyncio, itertools, sys
from benchmarks.rpc import answer, connect, default_url, serve

async def main(client_kind, server_kind, inflight, warmup, calls):
    served = await serve(server_kind, default_url(server_kind))
    client = await connect(client_kind, served.url)
    counter = itertools.count(1 << 40)

    async def worker(n):
        square = client.square
        for _ in range(n):
            i = next(counter)
            if await square(i) != answer(i):
                raise SystemExit(f"square({{i}}) answered wrong")

    for n in (warmup, calls):
        if n:
            await asyncio.gather(*(worker(n // inflight) for _ in range(inflight)))
    await client.close()
    await served.stop()

asyncio.run(main({client!r}, {server!r}, {inflight}, {warmup}, {calls}))
"""


def child(client: str, server: str, inflight: int, warmup: int, calls: int) -> list[str]:
    """The command of a child process: ``calls`` calls (``warmup`` of them first), ``inflight`` at once."""
    if client == CORE:
        return [sys.executable, "-c", f"from benchmarks.quic_core import main; main({calls})"]
    code = _CHILD.format(client=client, server=server, inflight=inflight, warmup=warmup, calls=calls)
    return [sys.executable, "-c", code]


def count(client: str, server: str, inflight: int, warmup: int, calls: int, tree: Path | None,
          annotate: Path | None = None) -> int:
    """Instructions callgrind counts for a whole child process (its callgrind file left in ``annotate``)."""
    # the baseline's jetwire first on the path, this tree's benchmarks after it
    path = [str(tree), str(ROOT)] if tree is not None else [str(ROOT)]
    result = subprocess.run(
        ["valgrind", "--tool=callgrind",
         f"--callgrind-out-file={'/dev/null' if annotate is None else annotate / f'{client}-{server}-{inflight}-{calls}.out'}",
         *child(client, server, inflight, warmup, calls)],
        capture_output=True, text=True, cwd=path[0],
        # one string hash seed for every process: a random one changes dict probing, and with it
        # the count, by a few percent from run to run
        env={**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": os.pathsep.join(path)},
    )
    found = re.search(r"Collected : (\d+)", result.stderr)
    if result.returncode != 0 or found is None:
        raise RuntimeError(f"{client} → {server} failed:\n{result.stderr[-3000:]}")
    return int(found.group(1))


def per_call(client: str, server: str, inflight: int, warmup: int, calls: int, tree: Path | None,
             annotate: Path | None = None) -> float:
    calls -= calls % inflight
    warmup -= warmup % inflight
    return (count(client, server, inflight, warmup, warmup + calls, tree, annotate)
            - count(client, server, inflight, warmup, warmup, tree, annotate)) / calls


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.rpc_instructions")
    parser.add_argument("--calls", type=int, default=4000, help="calls counted per figure")
    parser.add_argument("--warmup", type=int, default=640, help="calls before the counted ones, in both processes")
    parser.add_argument("--inflight", default="1,32", help="calls in flight, comma-separated")
    parser.add_argument("--baseline-tree", help="also count with the jetwire of this tree")
    parser.add_argument("--quic", action="store_true", help="the QUIC pairs (raw-quic, jetwire-quic) rather than TCP's")
    parser.add_argument("--annotate", help="keep each run's callgrind file in this directory")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is missing (Debian package valgrind)")
    trees: list[tuple[str, Path | None]] = [("", None)]
    if args.baseline_tree:
        trees.append((" (baseline)", Path(args.baseline_tree).resolve()))
    annotate = None
    if args.annotate:
        annotate = Path(args.annotate).resolve()
        annotate.mkdir(parents=True, exist_ok=True)
    pairs = QUIC_PAIRS if args.quic else PAIRS
    if args.quic:
        from benchmarks.rpc import make_certificate

        certificates = tempfile.TemporaryDirectory()
        make_certificate(Path(certificates.name))
        os.environ["JETWIRE_BENCH_CERT_DIR"] = certificates.name  # read by the children's serve and connect
    raw, jetwire = ("raw-quic", "jetwire-quic") if args.quic else ("raw", "jetwire")
    print(f"instructions per call, {args.calls} calls after {args.warmup}, client and server in one process")
    if args.quic:
        core = per_call(CORE, CORE, 1, args.warmup, args.calls, None, annotate)
        print(f"aioquic alone (benchmarks/quic_core.py), one round trip: {core:,.0f}", flush=True)
    for inflight in (int(n) for n in args.inflight.split(",")):
        floor = per_call(raw, raw, inflight, args.warmup, args.calls, None, annotate)
        print(f"{inflight} in flight: {raw} → {raw} {floor:,.0f}", flush=True)
        for label, tree in trees:
            figures = {}
            for client, server in pairs[1:]:
                if tree is not None and (jetwire not in (client, server) or server == "jetwire-inline"):
                    continue  # the baseline has no steps_inline to measure against
                figures[client, server] = per_call(client, server, inflight, args.warmup, args.calls, tree,
                                                   None if tree is not None else annotate)
                print(f"{inflight} in flight{label}: {client} → {server} {figures[client, server]:,.0f}", flush=True)
            inline = figures.get((raw, "jetwire-inline"))
            print(f"{inflight} in flight{label}: jetwire client +{figures[jetwire, raw] - floor:,.0f} over raw, "
                  f"jetwire server +{figures[raw, jetwire] - floor:,.0f} over raw"
                  + ("" if inline is None else f" (+{inline - floor:,.0f} with steps_inline)")
                  + f", jetwire → jetwire {figures[jetwire, jetwire] / floor:.2f}x raw → raw", flush=True)


if __name__ == "__main__":
    main()

"""Calls upstream JetStream's ``EchoHttp`` service over TCP and checks every answer.

    python examples/echo_client.py --connect 127.0.0.1:4000

One line per check (``add(2, 3) = 5``), then ``ok: N checks answered as expected``; exits 0
only then, and 1 when an answer is wrong, a call fails, or the server cannot be reached or
refuses the service. The server may be ``echo_server.py`` or upstream's TypeScript ``EchoHttp`` server
over a TCP stream.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable

from echohttp import EchoHttp, host_port

import jetwire
from jetwire import rpc

PIPELINED = 20
"""Calls sent at once on the one connection, to be answered in any order."""


async def check(label: str, call: Awaitable[object], expected: object) -> bool:
    try:
        got = await call
    except jetwire.Error as exc:
        print(f"{label} raised {exc!r}")
        return False
    print(f"{label} = {got!r}")
    if got != expected:
        print(f"  expected {expected!r}")
        return False
    return True


async def run(address: str, timeout: float) -> int:
    async with await EchoHttp.connect(f"tcp://{address}", timeout=timeout, connect_timeout=timeout) as client:
        print(f"connected to {address} as {EchoHttp.VERSION}")
        results = [
            await check("ping('hello')", client.ping("hello"), "hello"),
            await check("ping('héllo')", client.ping("héllo"), "héllo"),
            await check("ping('')", client.ping(""), ""),
            await check("add(2, 3)", client.add(2, 3), 5),
            await check("add(-7, 3)", client.add(-7, 3), -4),
            await check("add(2147483646, 1)", client.add(2147483646, 1), 2147483647),
        ]
        pipelined = asyncio.gather(*(client.add(i, 1000) for i in range(PIPELINED)))
        results.append(await check(
            f"{PIPELINED} pipelined add(i, 1000)", pipelined, [i + 1000 for i in range(PIPELINED)]
        ))
    failed = results.count(False)
    if failed:
        print(f"FAILED: {failed} of {len(results)} checks")
        return 1
    print(f"ok: {len(results)} checks answered as expected")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connect", default="127.0.0.1:4000", metavar="HOST:PORT", type=host_port)
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="seconds to wait for the handshake and for each answer")
    args = parser.parse_args(argv)
    try:
        return asyncio.run(run(args.connect, args.timeout))
    # refused, reset, a refused version, no answer (asyncio's TimeoutError is no OSError on 3.10)
    except (OSError, asyncio.TimeoutError, rpc.RpcError) as exc:
        print(f"FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

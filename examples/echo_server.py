"""Serves upstream JetStream's ``EchoHttp`` service over TCP.

    python examples/echo_server.py --listen 127.0.0.1:4000

It prints ``listening tcp://HOST:PORT`` once it accepts connections (``--listen 127.0.0.1:0``
picks a free port) and serves until interrupted (Ctrl-C or SIGTERM), then lets running calls
finish. Any JetStream client of ``echohttp`` can call it: ``echo_client.py``, or upstream's
TypeScript ``EchoHttpClient`` over a TCP stream.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from echohttp import I32_MAX, I32_MIN, EchoHttp, host_port

import jetwire
from jetwire import rpc


class Echo(EchoHttp):
    async def ping(self, message: str) -> str:
        return message

    async def add(self, a: int, b: int) -> int:
        total = a + b
        if not I32_MIN <= total <= I32_MAX:
            # Upstream's TS server wraps, its Rust one panics (debug) or wraps (release): the
            # caller gets an error frame that says why instead.
            raise jetwire.Error(f"{a} + {b} does not fit in an i32", code="echohttp::overflow")
        return total


async def serve(listen: str) -> None:
    server = await rpc.serve(Echo(), f"tcp://{listen}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    print(f"listening {server.urls[0]}", flush=True)
    try:
        await stop.wait()
    finally:
        await server.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1:4000", metavar="HOST:PORT", type=host_port)
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(args.listen))
    except OSError as exc:
        print(f"echo_server: cannot listen on {args.listen}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

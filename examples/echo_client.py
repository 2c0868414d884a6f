"""Calls upstream JetStream's ``EchoHttp`` service over TCP, or over QUIC, and checks every answer.

    python examples/echo_client.py --connect 127.0.0.1:4000
    python examples/echo_client.py --connect 127.0.0.1:4433 --quic --cafile ca.pem --server-name localhost

One line per check (``add(2, 3) = 5``), then ``ok: N checks answered as expected``; exits 0
only then, and 1 when an answer is wrong, a call fails, or the server cannot be reached or
refuses the service. The server may be ``echo_server.py`` or upstream's TypeScript ``EchoHttp`` server
over a TCP stream. Over QUIC the server's certificate is checked against ``--cafile`` (the
system's CAs without it) for ``--server-name`` (the host of ``--connect`` without it).
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


async def run(address: str, timeout: float, tls: rpc.TLS | None = None) -> int:
    scheme = "tcp" if tls is None else "quic"
    async with await EchoHttp.connect(f"{scheme}://{address}", tls=tls, timeout=timeout,
                                      connect_timeout=timeout) as client:
        print(f"connected to {address}{'' if tls is None else ' over QUIC'} as {EchoHttp.VERSION}")
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
    parser.add_argument("--quic", action="store_true", help="connect over QUIC (ALPN jetstream) instead of TCP")
    parser.add_argument("--cafile", metavar="PEM",
                        help="with --quic: trust the CA certificates in this file (default: the system's)")
    parser.add_argument("--server-name", metavar="NAME",
                        help="with --quic: the name the server's certificate must carry (default: the host)")
    args = parser.parse_args(argv)
    if not args.quic and (args.cafile or args.server_name):
        parser.error("--cafile and --server-name are for --quic (the TCP client is plaintext, as upstream's)")
    tls = rpc.TLS(cafile=args.cafile, server_name=args.server_name) if args.quic else None
    try:
        return asyncio.run(run(args.connect, args.timeout, tls))
    # refused, reset, a refused version, no answer (asyncio's TimeoutError is no OSError on 3.10);
    # over QUIC also a certificate not trusted (the handshake fails), a CA file not PEM, no aioquic
    except (OSError, ValueError, asyncio.TimeoutError, rpc.RpcError) as exc:
        print(f"FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

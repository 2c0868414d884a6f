"""Serves upstream JetStream's ``EchoHttp`` service over TCP, or over QUIC.

    python examples/echo_server.py --listen 127.0.0.1:4000
    python examples/echo_server.py --listen 127.0.0.1:4433 --quic --cert server.pem --key server.key

It prints ``listening tcp://HOST:PORT`` (``quic://`` with ``--quic``) once it accepts
connections (``--listen 127.0.0.1:0`` picks a free port) and serves until interrupted (Ctrl-C or
SIGTERM), then lets running calls finish. Any JetStream client of ``echohttp`` can call it:
``echo_client.py``, or upstream's TypeScript ``EchoHttpClient`` over a TCP stream. QUIC needs
aioquic (``pip install 'jetwire[quic]'``) and a certificate with its key, PEM files
(docs/rpc-quic.md shows how to make a test one).
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


async def serve(url: str, tls: rpc.TLS | None) -> None:
    server = await rpc.serve(Echo(), url, tls=tls)
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
    parser.add_argument("--quic", action="store_true", help="serve QUIC (ALPN jetstream) instead of TCP")
    parser.add_argument("--cert", metavar="PEM", help="with --quic: the server's certificate chain")
    parser.add_argument("--key", metavar="PEM", help="with --quic: the certificate's private key")
    args = parser.parse_args(argv)
    if args.quic and not args.cert:
        parser.error("--quic needs --cert (and --key, unless the key is in the --cert file): QUIC always uses TLS")
    if not args.quic and (args.cert or args.key):
        parser.error("--cert and --key are for --quic (the TCP server is plaintext, as upstream's)")
    url = f"{'quic' if args.quic else 'tcp'}://{args.listen}"
    tls = rpc.TLS(certfile=args.cert, keyfile=args.key) if args.quic else None
    try:
        asyncio.run(serve(url, tls))
    except (OSError, ValueError) as exc:  # a busy port; a certificate file missing or not PEM; no aioquic
        print(f"echo_server: cannot listen on {url}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

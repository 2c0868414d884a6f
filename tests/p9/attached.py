"""A handler served for the length of a block, and jetwire's client connected to it (version and
attach done): the setup most tests of the 9P server share."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

from jetwire.p9 import Client
from jetwire.p9.server import Handler
from jetwire.p9.serving import Server, serve


class Listening(Protocol):
    """A server or a proxy: the addresses it listens on, in ``serve``'s form."""

    addresses: list[str]


@asynccontextmanager
async def serving(handler: Handler[Any], address: str = "127.0.0.1:0", **options: Any) -> AsyncIterator[Server]:
    """``handler`` served on ``address`` (a free local TCP port unless told) until the block ends."""
    server = await serve(handler, address, **options)
    try:
        yield server
    finally:
        await server.close()


async def connect(server: Listening, timeout: float = 10, **options: Any) -> Client:
    """A client of ``server``'s first address, attached; ``options`` go to ``Client.connect``
    (``uname``, ``n_uname``, ``aname``, ``msize``)."""
    if server.addresses[0].startswith("unix:"):
        return await Client.connect(path=server.addresses[0].removeprefix("unix:"), timeout=timeout, **options)
    return await Client.connect(*tcp_address(server), timeout=timeout, **options)


def tcp_address(server: Listening) -> tuple[str, int]:
    """``server``'s first address, a TCP one, as (host, port)."""
    host, port = server.addresses[0].rsplit(":", 1)
    return host, int(port)

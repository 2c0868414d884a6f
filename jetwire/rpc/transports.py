"""Where bytes travel: a URL's scheme picks a transport (``tcp://``, ``unix://``, ``quic://``).

Every transport hands the RPC layer the same seam, asyncio's own: a stream is an
``asyncio.Transport`` driving an ``asyncio.Protocol``. TCP and unix sockets are asyncio's;
QUIC streams are adapted to it (``quic.py``); WebTransport streams will be too. So the
sessions and the asyncio shell never know which transport they run on.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import socket
import stat
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import urlsplit

from ..errors import JetwireError

__all__ = ["TLS", "Address", "Listener", "Transport", "TRANSPORTS", "parse_url", "listen", "open_stream",
           "UnsupportedURL", "Missing"]

ProtocolFactory = Callable[[], asyncio.Protocol]


class UnsupportedURL(JetwireError, ValueError):
    """A URL jetwire cannot serve or connect to: an unknown scheme, no port, no path."""


@dataclasses.dataclass(frozen=True)
class TLS:
    """TLS settings: the server's certificate and key; what the client trusts and the name it
    expects. QUIC always uses TLS; TCP does when given one.

    Mutual TLS: a server given ``client_cafile`` requires every client to present a
    certificate signed by a CA in that file, and refuses the connection otherwise; a client
    presents ``certfile`` and ``keyfile`` as its own certificate."""

    certfile: str | None = None
    keyfile: str | None = None
    cafile: str | None = None
    server_name: str | None = None
    verify: bool = True
    client_cafile: str | None = None


@dataclasses.dataclass(frozen=True)
class Address:
    """A parsed URL: ``scheme``, then ``host`` and ``port`` or a unix socket's ``path``."""

    scheme: str
    host: str = ""
    port: int = 0
    path: str = ""
    query: str = ""
    """The transport's options (``quic://HOST:PORT?idle_timeout=30``); not part of ``str()``."""

    def __str__(self) -> str:
        if self.scheme == "unix":
            return f"unix://{self.path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def parse_url(url: str) -> Address:
    """``tcp://HOST:PORT``, ``quic://HOST:PORT[?OPTIONS]`` (IPv6 hosts in brackets), ``unix:///abs/path`` or
    ``unix:relative/path``."""
    if not isinstance(url, str):
        raise UnsupportedURL(f"a URL is text such as 'tcp://127.0.0.1:4000', not {url!r}")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if parts.query and scheme in ("tcp", "unix"):
        raise UnsupportedURL(f"{url!r}: {parts.scheme}:// takes no options (the part after '?')")
    if scheme == "unix":
        path = parts.netloc + parts.path if parts.netloc else parts.path
        if not path:
            raise UnsupportedURL(f"{url!r}: a unix URL names a socket path, e.g. unix:///run/svc.sock")
        return Address("unix", path=path)
    if scheme not in TRANSPORTS:
        raise UnsupportedURL(f"{url!r}: unknown scheme {parts.scheme!r} (known: {', '.join(sorted(TRANSPORTS))})")
    try:
        port = parts.port
    except ValueError as exc:
        raise UnsupportedURL(f"{url!r}: {exc}") from None
    if port is None or parts.hostname is None:
        raise UnsupportedURL(f"{url!r}: give a host and a port, e.g. {scheme}://127.0.0.1:4000 (port 0: any free one)")
    return Address(scheme, host=parts.hostname, port=port, query=parts.query)


class Listener(Protocol):
    """A listening transport: the URLs it is bound to, and how to stop it."""

    urls: list[str]

    def close(self) -> None: ...

    async def wait_closed(self) -> None: ...


class Transport(Protocol):
    """A scheme's way to listen and to connect."""

    async def listen(self, address: Address, factory: ProtocolFactory, tls: TLS | None) -> Listener: ...

    async def open(self, address: Address, factory: ProtocolFactory,
                   tls: TLS | None) -> tuple[asyncio.BaseTransport, asyncio.Protocol]: ...


class _ServerListener:
    def __init__(self, server: asyncio.AbstractServer, urls: list[str], unlink: str | None = None) -> None:
        self.server = server
        self.urls = urls
        self._unlink = unlink

    def close(self) -> None:
        self.server.close()
        if self._unlink is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._unlink)
            self._unlink = None

    async def wait_closed(self) -> None:
        await self.server.wait_closed()


def _server_ssl(tls: TLS | None) -> Any:
    if tls is None:
        return None
    import ssl

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    if tls.certfile is None:
        raise UnsupportedURL("a TLS server needs TLS(certfile=..., keyfile=...)")
    context.load_cert_chain(tls.certfile, tls.keyfile)
    if tls.client_cafile is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=tls.client_cafile)
    return context


def _client_ssl(tls: TLS | None) -> Any:
    if tls is None:
        return None
    import ssl

    context = ssl.create_default_context(cafile=tls.cafile)
    if not tls.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if tls.certfile is not None:
        context.load_cert_chain(tls.certfile, tls.keyfile)
    return context


class _TCP:
    async def listen(self, address: Address, factory: ProtocolFactory, tls: TLS | None) -> Listener:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(factory, address.host, address.port, ssl=_server_ssl(tls))
        urls = [str(Address("tcp", sock.getsockname()[0], sock.getsockname()[1])) for sock in server.sockets]
        return _ServerListener(server, urls)

    async def open(self, address: Address, factory: ProtocolFactory,
                   tls: TLS | None) -> tuple[asyncio.BaseTransport, asyncio.Protocol]:
        loop = asyncio.get_running_loop()
        ssl = _client_ssl(tls)
        hostname = (tls.server_name or address.host) if tls is not None else None
        return await loop.create_connection(factory, address.host, address.port, ssl=ssl,
                                            server_hostname=hostname)


class _Unix:
    async def listen(self, address: Address, factory: ProtocolFactory, tls: TLS | None) -> Listener:
        loop = asyncio.get_running_loop()
        _remove_stale_socket(address.path)
        server = await loop.create_unix_server(factory, address.path, ssl=_server_ssl(tls))
        return _ServerListener(server, [str(address)], unlink=address.path)

    async def open(self, address: Address, factory: ProtocolFactory,
                   tls: TLS | None) -> tuple[asyncio.BaseTransport, asyncio.Protocol]:
        loop = asyncio.get_running_loop()
        ssl = _client_ssl(tls)
        return await loop.create_unix_connection(factory, address.path, ssl=ssl,
                                                 server_hostname=(tls.server_name or "localhost") if tls else None)


def _remove_stale_socket(path: str) -> None:
    """A socket file nobody listens on (left by a process that died) is removed; anything else at
    ``path`` is left for the bind to refuse."""
    try:
        if not stat.S_ISSOCK(os.stat(path).st_mode):
            return
    except OSError:
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except ConnectionRefusedError:
        with contextlib.suppress(OSError):
            os.unlink(path)
    except OSError:
        pass
    finally:
        probe.close()


class Missing:
    """A transport whose optional dependency is not installed: using it says what to install."""

    def __init__(self, scheme: str, extra: str, cause: str) -> None:
        self.message = f"{scheme}:// needs {cause}: pip install 'jetwire[{extra}]'"

    async def listen(self, address: Address, factory: ProtocolFactory, tls: TLS | None) -> Listener:
        raise UnsupportedURL(self.message)

    async def open(self, address: Address, factory: ProtocolFactory,
                   tls: TLS | None) -> tuple[asyncio.BaseTransport, asyncio.Protocol]:
        raise UnsupportedURL(self.message)


TRANSPORTS: dict[str, Transport] = {"tcp": _TCP(), "unix": _Unix(), "quic": Missing("quic", "quic", "aioquic")}
"""Scheme to transport. ``quic`` is replaced by ``quic.QUIC`` when it is first used and aioquic
can be imported (``aio.py`` does it: aioquic is imported only by programs that use QUIC)."""


async def listen(url: str, factory: ProtocolFactory, tls: TLS | None = None) -> Listener:
    address = parse_url(url)
    return await TRANSPORTS[address.scheme].listen(address, factory, tls)


async def open_stream(url: str, factory: ProtocolFactory,
                      tls: TLS | None = None) -> tuple[asyncio.BaseTransport, asyncio.Protocol]:
    address = parse_url(url)
    return await TRANSPORTS[address.scheme].open(address, factory, tls)

"""RPC calls per second and memory: ``python -m benchmarks.rpc [--quick]`` from the project root.

Issue 12's speed section. The service is upstream's benchmark method, ``square(i: u64) -> str``
(the answer is the decimal text of ``i * i``), served and called three ways:

* **raw**: the limit for any Python RPC over asyncio. An ``asyncio.Protocol`` client writes the
  very request frames a jetwire client writes (``size[4] type[1] tag[2] i[8]``, type 102, after
  the same ``Tversion``) and a protocol server answers with the very response frames
  (``type 103``, the text as ``u16`` length + UTF-8), each hand-written with ``struct``: a future
  per call matched by tag, frames parsed in ``data_received``, answers computed inline, no
  jetwire on the hot path. ``verify()`` checks the bytes against jetwire's before anything is
  timed.
* **grpc**: ``grpc.aio`` (grpcio's asyncio API), one generic unary-unary method with
  hand-written (de)serializers (``u64`` as 8 bytes little-endian, ``str`` as UTF-8: no protobuf),
  one channel, so one HTTP/2 connection. Skipped with a line saying so when grpcio is missing
  (``pip install -e '.[bench]'``).
* **jetwire**: ``jetwire.rpc``: ``await rpc.serve(impl, "tcp://127.0.0.1:0")`` and
  ``await Benchmark.connect(url)``, called as a user calls it (``await client.square(i)``).

Every server runs in a process of its own (``--serve KIND``), and every measurement's client in
a fresh process (``--client KIND``): the two cores are used as a deployment uses them. Each
client warms up (and checks every answer), then runs two timed windows on one connection: 1
call in flight (one coroutine awaiting calls in a loop), then 32 (32 such coroutines); calls per
second is calls completed / wall time of the window. The CPU time of the client process
(``time.process_time``, all its threads) and of the server process (``/proc/PID/stat``) over each
window gives the CPU cost per call on each side. Rounds interleave the implementations (in an
order that rotates), so a change of load touches all alike; the report gives medians over rounds
and the median of the per-round ratios.

Memory (``--no-memory`` skips it): a fresh server per implementation, and a fresh client that
opens N connections (one call each to warm them up), then makes K calls on each that the server
holds (its handler awaits a gate) until measured. Each side's resident set (``VmRSS``, after
``gc.collect()``) before and after gives bytes per idle connection ((after N connections -
before) / N) and per call in flight ((with N*K calls held - idle) / (N*K)); a second run with
``tracemalloc`` started in both processes gives the same figures counting Python allocations only
(grpcio's C core does not show there; RSS is the figure that counts for it). RSS moves in pages
and the allocator keeps freed memory, so the figures are averages over many connections and
calls, good to a few hundred bytes.

``--profile`` runs one more jetwire client and server under cProfile (32 in flight) and lists
where each side's time goes per call.

The report is printed and saved as ``benchmarks/results/<date>-rpc[-quick].md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import gc
import importlib.util
import inspect
import itertools
import json
import os
import platform
import statistics
import struct
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from .extras import subprocess_env
from .report import RESULTS, ROOT, _git_revision, _version, profile_areas

KINDS = ("raw", "raw-tasks", "grpc", "jetwire", "jetwire-inline", "raw-quic", "jetwire-quic")
INLINE_KIND = "jetwire-inline"
"""jetwire's server started with ``steps_inline=True`` (an opt-in: a handler takes its first
step without a task of its own); the ``jetwire`` rows are the default, a task per call."""
INFLIGHT = (1, 32)

# The frames of square(i), as upstream's service macro numbers them: method 0, request type
# 102, response type 103; Tversion 100 and Rversion 101 (../shared/spec/rpc.md, sections 1, 2, 5).
T_SQUARE, R_SQUARE, T_VERSION, R_VERSION, R_ERROR = 102, 103, 100, 101, 5
HEADER = struct.Struct("<IBH")
REQUEST = struct.Struct("<IBHQ")
RESPONSE_HEAD = struct.Struct("<IBHH")
VERSION_HEAD = struct.Struct("<IBHIH")
U64 = struct.Struct("<Q")
NOTAG = 0xFFFF
# What the raw client announces when jetwire.rpc cannot tell it (a tree without the core): the
# shape of a jetwire version string. verify() compares with the real one when jetwire.rpc exists.
FALLBACK_VERSION = "rs.jetstream.proto/benchmark/1.0.0+00000000"
FALLBACK_MSIZE = 65536
GRPC_METHOD = "/jetwire.bench.Benchmark/Square"


def answer(i: int) -> str:
    return str(i * i)


# --------------------------------------------------------------------------------------------
# Holding calls (memory per call in flight): every server's square() waits at the gate while it
# is closed, and counts how many wait.


class Gate:
    def __init__(self) -> None:
        self.open = True
        self.held = 0
        self._event: asyncio.Event | None = None
        self.on_release: list[Callable[[], None]] = []

    def close(self) -> None:
        self.open = False
        self._event = asyncio.Event()

    def release(self) -> None:
        self.open = True
        if self._event is not None:
            self._event.set()
        callbacks, self.on_release = self.on_release, []
        for callback in callbacks:
            callback()

    async def wait(self) -> None:
        assert self._event is not None
        self.held += 1
        try:
            await self._event.wait()
        finally:
            self.held -= 1


# --------------------------------------------------------------------------------------------
# raw: hand-written frames over asyncio.Protocol


class RawServerCore:
    """Answers Tversion (echoing tag, msize and version) and square requests, inline: bytes in,
    bytes to write out. ``write`` sends the answers to held calls once the gate opens."""

    def __init__(self, gate: Gate, write: Callable[[bytes], None], abort: Callable[[], None]) -> None:
        self.gate = gate
        self.write = write
        self.abort = abort
        self.buffer = bytearray()
        self.held: list[tuple[int, int]] = []

    def feed(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        end = len(buffer)
        pos = 0
        out = []
        while end - pos >= 7:
            size, kind, tag = HEADER.unpack_from(buffer, pos)
            if size < 7 or size > 1 << 20:
                self.abort()
                return
            if end - pos < size:
                break
            if kind == T_SQUARE and size == 15:
                self.square(tag, U64.unpack_from(buffer, pos + 7)[0], out)
            elif kind == T_VERSION:
                msize, length = struct.unpack_from("<IH", buffer, pos + 7)
                version = bytes(buffer[pos + 13:pos + 13 + length])
                out.append(VERSION_HEAD.pack(size, R_VERSION, tag, msize, length) + version)
            else:
                self.abort()
                return
            pos += size
        del buffer[:pos]
        if out:
            self.write(b"".join(out))

    def square(self, tag: int, i: int, out: list[bytes]) -> None:
        if self.gate.open:
            out.append(_raw_response(tag, i))
        else:
            self.held.append((tag, i))
            self.gate.held += 1
            if len(self.held) == 1:
                self.gate.on_release.append(self._release)

    def _release(self) -> None:
        held, self.held = self.held, []
        self.gate.held -= len(held)
        self.write(b"".join(_raw_response(tag, i) for tag, i in held))


class RawTaskServerCore(RawServerCore):
    """The raw server as a concurrent RPC server must be (issue 12: a connection's calls run
    concurrently, so a handler may await): each request runs as a task of its own, and the
    answers finished in one turn of the loop go out in one write. A reference row, not a target:
    what a task per call costs, with nothing else of an RPC layer."""

    def __init__(self, gate: Gate, write: Callable[[bytes], None], abort: Callable[[], None]) -> None:
        super().__init__(gate, write, abort)
        self.loop = asyncio.get_running_loop()
        self.batch = Batch(self.loop, write)
        self.tasks: set[asyncio.Task[None]] = set()

    def square(self, tag: int, i: int, out: list[bytes]) -> None:
        task = self.loop.create_task(self._serve(tag, i))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _serve(self, tag: int, i: int) -> None:
        gate = self.gate
        if not gate.open:
            await gate.wait()
        self.batch.write(_raw_response(tag, i))


class Batch:
    """Frames written in one turn of the event loop go out in one write at the end of it: 32
    callers woken by one read then cost one send() instead of 32 (on loopback each send also
    runs the receiving side's TCP work)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, write: Callable[[bytes], None]) -> None:
        self.loop = loop
        self.write_now = write
        self.out: list[bytes] = []

    def write(self, data: bytes) -> None:
        if self.out:
            self.out.append(data)
        else:
            self.out = [data]
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        out, self.out = self.out, []
        self.write_now(b"".join(out) if len(out) > 1 else out[0])


def _raw_response(tag: int, i: int) -> bytes:
    text = str(i * i).encode()
    return RESPONSE_HEAD.pack(9 + len(text), R_SQUARE, tag, len(text)) + text


class RawServerProtocol(asyncio.Protocol):
    def __init__(self, gate: Gate, core: type[RawServerCore] = RawServerCore) -> None:
        self.core = core(gate, self._write, self._abort)
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.data_received = self.core.feed  # type: ignore[method-assign]

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _abort(self) -> None:
        if self.transport is not None:
            self.transport.close()


class RawClientCore:
    """The least a multiplexing client does per call: a tag from a free list, a future in a
    dict, the frame queued (a ``Batch``: the limit writes what one turn of the loop makes at
    once); on the way back, frames cut from a buffer, the future found by tag."""

    def __init__(self, write: Callable[[bytes], None], tags: int = 256) -> None:
        self.loop = asyncio.get_running_loop()
        self.write = Batch(self.loop, write).write
        self.buffer = bytearray()
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.free = list(range(tags, 0, -1))

    def lost(self) -> None:
        for future in self.pending.values():
            if not future.done():
                future.set_exception(ConnectionError("connection lost"))

    def feed(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        end = len(buffer)
        pos = 0
        while end - pos >= 7:
            size, kind, tag = HEADER.unpack_from(buffer, pos)
            if size < 7:
                raise ValueError(f"frame size {size} < 7")
            if end - pos < size:
                break
            future = self.pending.pop(tag)
            if kind == R_SQUARE:
                (length,) = struct.unpack_from("<H", buffer, pos + 7)
                if 9 + length != size:
                    raise ValueError("response body does not fill its frame")
                future.set_result(buffer[pos + 9:pos + size].decode())
            elif kind == R_VERSION:
                future.set_result(bytes(buffer[pos + 7:pos + size]))
            else:
                future.set_exception(ValueError(f"unexpected frame type {kind}"))
            if tag != NOTAG:
                self.free.append(tag)
            pos += size
        del buffer[:pos]

    async def handshake(self, version: str, msize: int) -> None:
        encoded = version.encode()
        future = self.loop.create_future()
        self.pending[NOTAG] = future
        self.write(VERSION_HEAD.pack(13 + len(encoded), T_VERSION, NOTAG, msize, len(encoded)) + encoded)
        await future

    async def square(self, i: int) -> str:
        tag = self.free.pop()
        future = self.loop.create_future()
        self.pending[tag] = future
        self.write(REQUEST.pack(15, T_SQUARE, tag, i))
        result: str = await future
        return result


class RawClient(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.core = RawClientCore(transport.write)
        self.data_received = self.core.feed  # type: ignore[method-assign]
        self.square = self.core.square

    def connection_lost(self, exc: Exception | None) -> None:
        self.core.lost()
        if not self.closed.done():
            self.closed.set_result(None)

    async def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        await self.closed


# The same over QUIC (aioquic): one bidirectional stream opened by the client, ALPN "jetstream"
# (../shared/spec/rpc.md section 9.1). aioquic sends what the server queued when its datagram
# handling returns; the client's calls go out with one transmit per turn of the loop. This is
# aioquic's own asyncio glue, not jetwire's transport: it holds each ACK back for aioquic's 1 ms
# delay, so with 1 call in flight each side also sends an ACK-only packet about every other call,
# which jetwire's transport sends with the next data instead (docs/rpc-quic.md, "Latency").

ALPN = "jetstream"


def _quic_protocols() -> tuple[type, type]:
    from aioquic.asyncio import QuicConnectionProtocol
    from aioquic.quic.events import ConnectionTerminated, StreamDataReceived

    class RawQuicServer(QuicConnectionProtocol):  # type: ignore[misc]
        gate: Gate

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.cores: dict[int, RawServerCore] = {}

        def quic_event_received(self, event: Any) -> None:
            if isinstance(event, StreamDataReceived):
                core = self.cores.get(event.stream_id)
                if core is None:
                    stream_id = event.stream_id

                    def write(data: bytes) -> None:
                        self._quic.send_stream_data(stream_id, data)
                        self.transmit()

                    core = self.cores[stream_id] = RawServerCore(self.gate, write, self.close)
                core.feed(event.data)

    class RawQuicClient(QuicConnectionProtocol):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.stream_id = self._quic.get_next_available_stream_id()
            self.core = RawClientCore(self._send)
            self.square = self.core.square

        def _send(self, data: bytes) -> None:  # once per turn of the loop (RawClientCore.write)
            self._quic.send_stream_data(self.stream_id, data)
            self.transmit()

        def quic_event_received(self, event: Any) -> None:
            if isinstance(event, StreamDataReceived):
                self.core.feed(event.data)
            elif isinstance(event, ConnectionTerminated):
                self.core.lost()

    return RawQuicServer, RawQuicClient


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1, and its key (PEM files)."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    certfile, keyfile = directory / "cert.pem", directory / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return certfile, keyfile


def _cert_files() -> tuple[Path, Path]:
    """The certificate the parent made for this run (``JETWIRE_BENCH_CERT_DIR``)."""
    directory = Path(os.environ["JETWIRE_BENCH_CERT_DIR"])
    return directory / "cert.pem", directory / "key.pem"


def jetwire_version() -> tuple[str, int]:
    """The version string and msize a jetwire client of Benchmark announces, so that the raw
    client's Tversion is the same frame; a stand-in where jetwire.rpc does not exist yet."""
    service = benchmark_service()
    if service is None:
        return FALLBACK_VERSION, FALLBACK_MSIZE
    return str(service.VERSION), _jetwire_client_msize()


def _jetwire_client_msize() -> int:
    """A jetwire client announces the largest frame it accepts as its msize."""
    from jetwire.rpc import protocol

    return int(protocol.DEFAULT_MAX_FRAME_SIZE)


# --------------------------------------------------------------------------------------------
# jetwire


def benchmark_service() -> Any:
    """The Benchmark service class (``square(i: u64) -> str``), or None without jetwire.rpc."""
    try:
        from jetwire import rpc
    except ImportError:
        return None
    if not hasattr(rpc, "serve"):  # a namespace package: another checkout's unfinished rpc/
        return None
    from .rpc_service import Benchmark

    return Benchmark


def benchmark_service_serve() -> Callable[..., Any]:
    from jetwire import rpc

    return rpc.serve


def jetwire_impl(gate: Gate) -> Any:
    from .rpc_service import Squares

    return Squares(gate)


# --------------------------------------------------------------------------------------------
# The three servers and clients behind one shape


class Client(Protocol):
    async def square(self, i: int) -> str: ...

    async def close(self) -> None: ...


class _GrpcClient:
    def __init__(self, channel: Any) -> None:
        self.channel = channel
        self.square = channel.unary_unary(GRPC_METHOD, request_serializer=U64.pack,
                                          response_deserializer=bytes.decode)

    async def close(self) -> None:
        await self.channel.close()


class _JetwireClient:
    def __init__(self, client: Any) -> None:
        self.client = client
        self.square = client.square

    async def close(self) -> None:
        await self.client.close()


def _u64_from_bytes(data: bytes) -> int:
    value: int = U64.unpack(data)[0]
    return value


def _utf8(text: str | bytes) -> bytes:
    # grpc.aio's server encodes a str response as UTF-8 itself before it calls the serializer
    # (grpcio 1.85), so the text arrives as bytes there; the client side passes it unchanged.
    return text if isinstance(text, bytes) else text.encode()


def grpc_available() -> bool:
    try:
        import grpc  # noqa: F401
    except ImportError:
        return False
    return True


def available(kind: str) -> str | None:
    """None when ``kind`` can run here, else why not."""
    if kind == "grpc" and not grpc_available():
        return "grpcio is not installed (pip install -e '.[bench]'): the grpc rows are skipped"
    if kind.startswith("jetwire") and benchmark_service() is None:
        return "jetwire.rpc is not in this tree: the jetwire rows are skipped"
    if kind.endswith("-quic"):
        try:
            import aioquic  # noqa: F401
        except ImportError:
            return f"aioquic is not installed (pip install -e '.[quic]'): the {kind} rows are skipped"
    if kind == INLINE_KIND and "steps_inline" not in inspect.signature(benchmark_service_serve()).parameters:
        return "jetwire.rpc.serve has no steps_inline option in this tree: the jetwire-inline rows are skipped"
    if kind in QUIC_JETWIRE_KINDS and importlib.util.find_spec("jetwire.rpc.quic") is None:
        return "jetwire.rpc has no QUIC transport in this tree (jetwire/rpc/quic.py): the jetwire-quic rows are skipped"
    return None


def baseline(kind: str) -> str:
    """The raw implementation over the same transport."""
    return "raw-quic" if kind.endswith("-quic") else "raw"


def default_url(kind: str) -> str:
    return "quic://127.0.0.1:0" if kind.endswith("-quic") else "tcp://127.0.0.1:0"


def _split_url(url: str) -> tuple[str, int]:
    scheme, _, rest = url.partition("://")
    if scheme not in ("tcp", "quic"):
        raise SystemExit(f"the raw and grpc sides serve tcp:// and quic:// only, not {url}")
    host, _, port = rest.rpartition(":")
    return host.strip("[]"), int(port)


def _jetwire_tls(server: bool) -> Any:
    from jetwire import rpc

    certfile, keyfile = _cert_files()
    if server:
        return rpc.TLS(certfile=str(certfile), keyfile=str(keyfile))
    return rpc.TLS(cafile=str(certfile), server_name="localhost")


async def connect(kind: str, url: str) -> Client:
    if kind in ("raw", "raw-tasks"):
        host, port = _split_url(url)
        _, protocol = await asyncio.get_running_loop().create_connection(RawClient, host, port)
        version, msize = jetwire_version()
        await protocol.core.handshake(version, msize)
        return protocol
    if kind == "raw-quic":
        return await _RawQuicConnection.open(url)
    if kind == "grpc":
        import grpc

        host, port = _split_url(url)
        # A channel of its own per connection: channels to one target otherwise share a subchannel
        # (one TCP connection), which would hide the cost of a connection in the memory figures.
        channel = grpc.aio.insecure_channel(f"{host}:{port}", options=[("grpc.use_local_subchannel_pool", 1)])
        await channel.channel_ready()
        return _GrpcClient(channel)
    if kind in ("jetwire", INLINE_KIND, BASELINE_KIND):
        return _JetwireClient(await benchmark_service().connect(url))
    if kind in QUIC_JETWIRE_KINDS:
        return _JetwireClient(await benchmark_service().connect(url, tls=_jetwire_tls(server=False)))
    raise ValueError(kind)


class _RawQuicConnection:
    def __init__(self, context: Any, protocol: Any) -> None:
        self.context = context
        self.protocol = protocol
        self.square = protocol.square

    @classmethod
    async def open(cls, url: str) -> _RawQuicConnection:
        from aioquic.asyncio import connect as quic_connect
        from aioquic.quic.configuration import QuicConfiguration

        host, port = _split_url(url)
        certfile, _ = _cert_files()
        configuration = QuicConfiguration(is_client=True, alpn_protocols=[ALPN], server_name="localhost")
        configuration.load_verify_locations(str(certfile))
        context = quic_connect(host, port, configuration=configuration, create_protocol=_quic_protocols()[1])
        protocol = await context.__aenter__()
        version, msize = jetwire_version()
        await protocol.core.handshake(version, msize)
        return cls(context, protocol)

    async def close(self) -> None:
        await self.context.__aexit__(None, None, None)


class Served:
    """A running server of one kind: its URL, its gate, how to stop it."""

    def __init__(self, url: str, gate: Gate, stop: Callable[[], Awaitable[None]]) -> None:
        self.url = url
        self.gate = gate
        self.stop = stop


async def serve(kind: str, url: str | None = None) -> Served:
    gate = Gate()
    url = url or default_url(kind)
    if kind in ("raw", "raw-tasks"):
        host, port = _split_url(url)
        core = RawTaskServerCore if kind == "raw-tasks" else RawServerCore
        server = await asyncio.get_running_loop().create_server(lambda: RawServerProtocol(gate, core), host, port)
        bound = server.sockets[0].getsockname()

        async def stop_raw() -> None:
            server.close()
            await server.wait_closed()

        return Served(f"tcp://{bound[0]}:{bound[1]}", gate, stop_raw)
    if kind == "raw-quic":
        from aioquic.asyncio import serve as quic_serve
        from aioquic.quic.configuration import QuicConfiguration

        host, port = _split_url(url)
        certfile, keyfile = _cert_files()
        configuration = QuicConfiguration(is_client=False, alpn_protocols=[ALPN])
        configuration.load_cert_chain(str(certfile), str(keyfile))
        server_protocol = _quic_protocols()[0]
        server_protocol.gate = gate
        quic_server = await quic_serve(host, port, configuration=configuration, create_protocol=server_protocol)
        bound = quic_server._transport.get_extra_info("sockname")

        async def stop_raw_quic() -> None:
            quic_server.close()

        return Served(f"quic://{bound[0]}:{bound[1]}", gate, stop_raw_quic)
    if kind == "grpc":
        import grpc

        async def square(i: int, context: Any) -> str:
            if not gate.open:
                await gate.wait()
            return str(i * i)

        handler = grpc.method_handlers_generic_handler("jetwire.bench.Benchmark", {
            "Square": grpc.unary_unary_rpc_method_handler(
                square, request_deserializer=_u64_from_bytes, response_serializer=_utf8)})
        host, port = _split_url(url)
        grpc_server = grpc.aio.server()
        grpc_server.add_generic_rpc_handlers((handler,))
        bound_port = grpc_server.add_insecure_port(f"{host}:{port}")
        await grpc_server.start()

        async def stop_grpc() -> None:
            await grpc_server.stop(1.0)

        return Served(f"tcp://{host}:{bound_port}", gate, stop_grpc)
    if kind in ("jetwire", INLINE_KIND, BASELINE_KIND, *QUIC_JETWIRE_KINDS):
        from jetwire import rpc

        tls = _jetwire_tls(server=True) if kind in QUIC_JETWIRE_KINDS else None
        options = {"steps_inline": True} if kind == INLINE_KIND else {}
        jw_server = await rpc.serve(jetwire_impl(gate), url, tls=tls, **options)

        async def stop_jetwire() -> None:
            await jw_server.close()

        return Served(jw_server.urls[0], gate, stop_jetwire)
    raise ValueError(kind)


# --------------------------------------------------------------------------------------------
# Memory of this process


def memory() -> dict[str, int | None]:
    """Resident set and (when tracing) Python's traced bytes, after a full collection."""
    gc.collect()
    with open("/proc/self/statm") as statm:
        rss = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    traced = tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else None
    return {"rss": rss, "traced": traced}


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------------------------
# The server process: ``--serve KIND``. Prints {"url", "pid"}, then obeys lines on stdin:
# ``hold`` (close the gate), ``mem N`` (wait until N calls are held, print memory()),
# ``release``; end of input stops it (and dumps the profile when ``--profile-out`` is given).


async def _stdin_lines() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


def _say(obj: object) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def server_main(kind: str, url: str, profile_out: str | None) -> None:
    served = await serve(kind, url)
    profiler = _toggled_profiler() if profile_out else None
    snapshot = tracemalloc.take_snapshot() if tracemalloc.is_tracing() else None
    _say({"url": served.url, "pid": os.getpid()})
    commands = await _stdin_lines()
    while line := (await commands.readline()).decode().strip():
        word, _, arg = line.partition(" ")
        if word == "hold":
            served.gate.close()
            _say({"ok": True})
        elif word == "release":
            served.gate.release()
            _say({"ok": True})
        elif word == "mem":
            want, _, patience = arg.partition(" ")
            # grpc.aio takes its time starting thousands of calls, and under load left a few
            # dozen of 2,000 never arriving: after ``patience`` seconds the figures count those that did.
            for _ in range(int(float(patience or 60) * 100)):
                if served.gate.held >= int(want or 0):
                    break
                await asyncio.sleep(0.01)
            figures: dict[str, Any] = dict(memory(), held=served.gate.held)
            if snapshot is not None:
                later = tracemalloc.take_snapshot()
                figures["grew"] = _grew(later, snapshot)
                snapshot = later
            _say(figures)
        else:
            raise SystemExit(f"unknown command {line!r}")
    await served.stop()
    if profiler is not None and profile_out:
        profiler.disable()
        profiler.dump_stats(profile_out)


def _toggled_profiler() -> Any:
    """A profiler of CPU time (the wait in epoll costs none), switched on and off by SIGUSR1: the
    client sends it around its timed window, so set-up and warm-up are left out."""
    import cProfile
    import signal

    profiler = cProfile.Profile(time.process_time)
    running = False

    def toggle() -> None:
        nonlocal running
        if running:
            profiler.disable()
        else:
            profiler.enable()
        running = not running

    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, toggle)
    return profiler


def _grew(later: tracemalloc.Snapshot, earlier: tracemalloc.Snapshot, top: int = 8) -> list[tuple[str, int, int]]:
    """Where traced memory grew between two snapshots: (file:line, bytes, blocks), largest first."""
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<frozen importlib*")]
    stats = later.filter_traces(ignore).compare_to(earlier.filter_traces(ignore), "lineno")
    out = []
    for stat in stats[:top]:
        frame = stat.traceback[0]
        where = frame.filename.replace(str(ROOT) + "/", "").replace(os.path.dirname(os.__file__) + "/", "")
        where = f"{where.split('site-packages/')[-1]}:{frame.lineno}"
        out.append((where, stat.size_diff, stat.count_diff))
    return out


BASELINE_KIND = "jetwire-baseline"
"""jetwire from another copy of the tree (``--baseline-tree DIR``, a directory holding a
``jetwire`` package): the same service, measured in the same rounds, to weigh a change."""

QUIC_BASELINE_KIND = "jetwire-baseline-quic"
"""The same over QUIC, when the run has ``jetwire-quic``."""

QUIC_JETWIRE_KINDS = ("jetwire-quic", QUIC_BASELINE_KIND)


def _placement(kind: str) -> tuple[Path, dict[str, str]]:
    """Where a child process of ``kind`` runs, and with what environment. For the baseline:
    in the baseline tree (``python -m`` puts the working directory first on ``sys.path``, so its
    ``jetwire`` is imported), with this tree after it for ``benchmarks``."""
    env = subprocess_env()
    if kind not in (BASELINE_KIND, QUIC_BASELINE_KIND):
        return ROOT, env
    tree = os.environ["JETWIRE_BENCH_BASELINE_TREE"]
    env["PYTHONPATH"] = os.pathsep.join([tree, str(ROOT)])
    return Path(tree), env


class ServerProcess:
    """``python -m benchmarks.rpc --serve KIND`` as a child process."""

    def __init__(self, kind: str, *, trace: bool = False, profile_out: Path | None = None) -> None:
        argv = [sys.executable, "-m", "benchmarks.rpc", "--serve", kind]
        if trace:
            argv.append("--trace")
        if profile_out is not None:
            argv += ["--profile-out", str(profile_out)]
        cwd, env = _placement(kind)
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        hello = self._read()
        self.url: str = hello["url"]
        self.pid: int = hello["pid"]

    def _read(self) -> Any:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the server process ended ({self.proc.wait()})")
        return json.loads(line)

    def command(self, line: str) -> Any:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self._read()

    def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


# --------------------------------------------------------------------------------------------
# The client process: ``--client KIND --url URL --server-pid PID``: one connection, a warm-up
# with every answer checked, then one timed window per entry of --inflight. Prints one JSON line.


async def run_window(client: Client, inflight: int, seconds: float, first: int) -> int:
    """Calls completed by ``inflight`` coroutines calling in a loop until ``seconds`` pass."""
    running = True
    counter = itertools.count(first)
    done = 0

    def stop() -> None:
        nonlocal running
        running = False

    async def worker() -> None:
        nonlocal done
        square = client.square
        while running:
            await square(next(counter))
            done += 1

    handle = asyncio.get_running_loop().call_later(seconds, stop)
    await asyncio.gather(*(worker() for _ in range(inflight)))
    handle.cancel()
    return done


async def warm_up(client: Client, calls: int) -> None:
    """``calls`` calls, 8 in flight, each answer checked (nothing is timed before this passes)."""
    counter = itertools.count(1 << 31)

    async def worker() -> None:
        for _ in range(calls // 8):
            i = next(counter)
            got = await client.square(i)
            if got != answer(i):
                raise AssertionError(f"square({i}) answered {got!r}")

    await asyncio.gather(*(worker() for _ in range(8)))


async def client_main(kind: str, url: str, server_pid: int, inflight: Sequence[int], seconds: float,
                      warmup: int) -> dict[str, Any]:
    client = await connect(kind, url)
    await warm_up(client, warmup)
    profile_out = os.environ.get("JETWIRE_BENCH_PROFILE")
    windows = []
    for n in inflight:
        profiler = _start_profiles(server_pid) if profile_out else None
        cpu, server_cpu, start = time.process_time(), _cpu_seconds(server_pid), time.perf_counter()
        calls = await run_window(client, n, seconds, first=n << 40)
        wall = time.perf_counter() - start
        if profiler is not None and profile_out:
            _stop_profiles(profiler, server_pid, profile_out)
        windows.append({"inflight": n, "calls": calls, "wall": wall, "client_cpu": time.process_time() - cpu,
                        "server_cpu": _cpu_seconds(server_pid) - server_cpu})
    await client.close()
    return {"kind": kind, "windows": windows}


def _start_profiles(server_pid: int) -> Any:
    """This process's profiler (CPU time), and the server's, switched on by a signal."""
    import cProfile
    import signal

    os.kill(server_pid, signal.SIGUSR1)
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    return profiler


def _stop_profiles(profiler: Any, server_pid: int, out: str) -> None:
    import signal

    profiler.disable()
    os.kill(server_pid, signal.SIGUSR1)
    profiler.dump_stats(out)


def run_client(kind: str, server: ServerProcess, inflight: Sequence[int], seconds: float, warmup: int,
               env: dict[str, str] | None = None) -> dict[str, Any]:
    argv = [sys.executable, "-m", "benchmarks.rpc", "--client", kind, "--url", server.url, "--server-pid",
            str(server.pid), "--inflight", ",".join(map(str, inflight)), "--seconds", str(seconds),
            "--warmup", str(warmup)]
    cwd, default_env = _placement(kind)
    done = subprocess.run(argv, cwd=cwd, env=env or default_env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"the {kind} client failed ({done.returncode}):\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# --------------------------------------------------------------------------------------------
# Memory: ``--memory-client KIND --url URL --connections N --calls K``, steered by the parent
# through stdin (lines "calls", "measure", "finish") while it asks the server for its memory.


async def memory_client_main(kind: str, url: str, connections: int, calls_each: int, patience: float) -> None:
    commands = await _stdin_lines()
    warm = await connect(kind, url)  # first use: imports, generated code, grpc's threads
    await warm_up(warm, 8)
    await warm.close()
    before = memory()
    clients = [await connect(kind, url) for _ in range(connections)]
    for n, client in enumerate(clients):
        if await client.square(n) != answer(n):
            raise AssertionError("wrong answer")
    idle = memory()
    _say({"before": before, "idle": idle})
    await commands.readline()  # "calls": the server now holds every call
    tasks = [asyncio.ensure_future(client.square(k)) for k in range(calls_each) for client in clients]
    await asyncio.sleep(0.2)
    _say({"started": len(tasks)})
    await commands.readline()  # "measure": the server holds them all
    loaded = memory()
    _say({"loaded": loaded})
    await commands.readline()  # "finish": the server has released them
    done, pending = await asyncio.wait(tasks, timeout=patience)
    expected = [answer(k) for k in range(calls_each) for _ in clients]
    # grpc.aio under tracemalloc cancelled a few of its calls: counted as unanswered, not answers
    failed = {task for task in done if task.cancelled() or task.exception() is not None}
    if any(task.result() != want for task, want in zip(tasks, expected) if task in done and task not in failed):
        raise AssertionError("wrong answers after the release")
    for task in pending:
        task.cancel()
    never = pending | failed
    for client in clients:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.close(), 10)
    # After the run the allocator has freed memory to reuse, which RSS does not see: only the
    # traced figure means anything here.
    bare_task = await _bare_task_bytes(len(tasks)) if tracemalloc.is_tracing() else None
    _say({"done": True, "bare_task": bare_task, "unanswered": len(never)})


async def _bare_task_bytes(count: int) -> float:
    """Bytes per task of a coroutine awaiting a future that never completes: what every
    implementation's caller pays for a call in flight before the RPC client adds anything."""
    loop = asyncio.get_running_loop()

    async def caller(future: asyncio.Future[None]) -> None:
        await future

    before = memory()
    futures = [loop.create_future() for _ in range(count)]
    tasks = [asyncio.ensure_future(caller(future)) for future in futures]
    await asyncio.sleep(0)
    after = memory()
    for future in futures:
        future.set_result(None)
    await asyncio.gather(*tasks)
    assert after["traced"] is not None and before["traced"] is not None
    return (after["traced"] - before["traced"]) / count


def measure_memory(kind: str, connections: int, calls_each: int, trace: bool, patience: float = 60) -> dict[str, Any]:
    server = ServerProcess(kind, trace=trace)
    argv = [sys.executable, "-m", "benchmarks.rpc", "--memory-client", kind, "--url", server.url,
            "--connections", str(connections), "--calls", str(calls_each), "--patience", str(patience)]
    if trace:
        argv.append("--trace")
    client = subprocess.Popen(argv, cwd=ROOT, env=subprocess_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    assert client.stdin is not None and client.stdout is not None

    def read() -> Any:
        assert client.stdout is not None
        line = client.stdout.readline()
        if not line:
            raise RuntimeError(f"the {kind} memory client ended ({client.wait()})")
        return json.loads(line)

    def tell(line: str) -> None:
        assert client.stdin is not None
        client.stdin.write(line + "\n")
        client.stdin.flush()

    try:
        server_before = server.command("mem 0")
        first = read()
        server_idle = server.command("mem 0")
        server.command("hold")
        tell("calls")
        read()
        total = connections * calls_each
        server_loaded = server.command(f"mem {total} {patience}")
        tell("measure")
        client_loaded = read()["loaded"]
        server.command("release")
        tell("finish")
        finished = read()
        bare_task = finished["bare_task"]
    finally:
        client.stdin.close()
        client.wait(timeout=60)
        client.stdout.close()
        server.stop()
    # server_before was taken before any connection: it is the baseline for idle connections
    # only once the warm-up connection has come and gone, so the client's own warm-up is
    # counted in neither figure.
    out: dict[str, Any] = {"kind": kind, "trace": trace, "connections": connections, "calls": total,
                           "reached": server_loaded["held"], "unanswered": finished["unanswered"]}
    key = "traced" if trace else "rss"
    out["server_per_connection"] = (server_idle[key] - server_before[key]) / connections
    out["server_per_call"] = (server_loaded[key] - server_idle[key]) / max(server_loaded["held"], 1)
    out["client_per_connection"] = (first["idle"][key] - first["before"][key]) / connections
    out["client_per_call"] = (client_loaded[key] - first["idle"][key]) / total
    out["bare_task"] = bare_task
    if trace:
        out["server_grew_per_connection"] = [(where, size / connections) for where, size, _ in server_idle["grew"]]
        out["server_grew_per_call"] = [(where, size / total) for where, size, _ in server_loaded["grew"]]
    return out


# --------------------------------------------------------------------------------------------
# Checks before timing: the raw frames are jetwire's frames


def verify(kinds: Sequence[str], warmup: int) -> list[str]:
    """The raw client's and server's bytes against a jetwire client's and server's (in-memory
    sessions). Over the wire, every client of the rounds checks each of its warm-up answers
    before it times anything, and a wrong one stops the run."""
    lines = []
    service = benchmark_service()
    if service is not None:
        lines += _verify_bytes(service)
    lines.append(f"{', '.join(kinds)}: each client process checked its {warmup // 8 * 8} warm-up answers "
                 "before its timed windows")
    return lines


def _verify_bytes(service: Any) -> list[str]:
    """What jetwire's client writes for Tversion and square(i), and its server for the answers,
    equals what the raw client and server write."""
    from jetwire.rpc import session as rpc_session

    version, msize = jetwire_version()
    encoded = version.encode()
    raw_tversion = VERSION_HEAD.pack(13 + len(encoded), T_VERSION, NOTAG, msize, len(encoded)) + encoded
    checks = _jetwire_frames(rpc_session, service)
    out = []
    if checks["tversion"] != raw_tversion:
        raise AssertionError(f"Tversion differs: jetwire {checks['tversion'].hex()} raw {raw_tversion.hex()}")
    out.append(f"the raw client's Tversion is jetwire's ({len(raw_tversion)} bytes, {version!r})")
    for i, tag, request, response in checks["calls"]:
        if request != REQUEST.pack(15, T_SQUARE, tag, i):
            raise AssertionError(f"square({i}) request differs: {request.hex()}")
        if response != _raw_response(tag, i):
            raise AssertionError(f"square({i}) response differs: {response.hex()}")
    out.append(f"the raw request and response frames are jetwire's (sessions in memory) for "
               f"{len(checks['calls'])} values of i from 0 to 2**64 - 1")
    return out


VERIFY_VALUES = (0, 1, 9, 10, 255, 65535, 2**32 - 1, 2**32, 3037000499, 3037000500, 2**64 - 1)
"""Answers of 1 to 39 digits: 3037000499 is the largest i whose square fits in 63 bits."""


def _jetwire_frames(rpc_session: Any, service: Any) -> dict[str, Any]:
    """A jetwire client session and server session talking in memory: the Tversion the client
    writes, and for each value the request it writes and the response the server writes."""
    from jetwire.rpc.service import spec_of

    spec = spec_of(service)
    client, server = rpc_session.ClientSession(spec), rpc_session.ServerSession(spec)
    tversion = client.start()
    server.receive_data(tversion)
    client.receive_data(server.next_event().data)
    if not isinstance(client.next_event(), rpc_session.Negotiated):
        raise AssertionError("the in-memory handshake failed")
    method = spec.by_name["square"]
    calls = []
    for i in VERIFY_VALUES:
        tag, request = client.call(method, method.request(i))
        server.receive_data(request)
        call = server.next_event()
        response = server.respond(call, answer(i))
        client.receive_data(response)
        reply = client.next_event()
        if reply.value != answer(i):
            raise AssertionError(f"square({i}) came back as {reply!r}")
        calls.append((i, tag, bytes(request), bytes(response)))
    return {"tversion": bytes(tversion), "calls": calls}


# --------------------------------------------------------------------------------------------
# Profile: jetwire client and server under cProfile


def profile_jetwire(seconds: float, top: int = 18) -> list[str]:
    import tempfile

    out: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        server_prof, client_prof = Path(tmp) / "server.prof", Path(tmp) / "client.prof"
        server = ServerProcess("jetwire", profile_out=server_prof)
        try:
            env = dict(subprocess_env(), JETWIRE_BENCH_PROFILE=str(client_prof))
            result = run_client("jetwire", server, (32,), seconds, 256, env=env)
        finally:
            server.stop()
        calls = result["windows"][0]["calls"]
        for title, path in (("client", client_prof), ("server", server_prof)):
            out += [f"### jetwire {title}, 32 in flight, under cProfile ({calls:,} calls)", "",
                    _profile_text(path, calls, top), ""]
    return out


def _profile_text(path: Path, calls: int, top: int) -> str:
    body, total, areas = profile_areas(path, top, _area)
    shares = ", ".join(f"{name} {own / calls * 1e6:.1f} µs ({own / total:.0%})"
                       for name, own in sorted(areas.items(), key=lambda kv: -kv[1]))
    return (f"{total / calls * 1e6:.1f} µs of profiled time per call. Own time per call by area: {shares}.\n\n"
            f"```\n{body}\n```")


def _area(filename: str, function: str) -> str:
    if filename.startswith("<jetwire generated "):
        return "generated codecs"
    for part, name in (("jetwire/rpc/session.py", "rpc session"), ("jetwire/rpc/aio.py", "rpc asyncio shell"),
                       ("jetwire/rpc/", "rpc (other)"), ("jetwire/runtime/", "jetwire runtime"),
                       ("benchmarks/", "benchmark loop"), ("/asyncio/", "asyncio (Python)")):
        if part in filename:
            return name
    if filename == "~":
        if any(f"'{word}'" in function or f"{word}" in function for word in ("send", "recv", "select", "epoll")):
            return "socket and poll calls (C)"
        return "other built-ins (C)"
    return "other Python"


# --------------------------------------------------------------------------------------------
# The report


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def render(rounds: list[dict[str, dict[str, Any]]], kinds: Sequence[str], skipped: list[str],
           mem: list[dict[str, Any]], checks: list[str], profile: list[str], args: argparse.Namespace,
           elapsed: float) -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    mode = "quick" if args.quick else "full"
    lines = [f"# RPC calls per second, {datetime.date.today().isoformat()} ({mode})", "",
             f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores, load average "
             f"{load} at the end; jetwire at {_git_revision()}, grpcio {_version('grpcio')}.  ",
             f"`python -m benchmarks.rpc{' --quick' if args.quick else ''}`: {len(rounds)} rounds, each a fresh "
             f"client process per implementation ({args.seconds:g} s per window, after {args.warmup} warm-up calls), "
             f"every server in a process of its own, over loopback; {elapsed:.0f} s in all.", ""]
    lines += [f"- {line}" for line in skipped]
    if skipped:
        lines.append("")
    lines += ["| implementation | in flight | calls/s (median) | min | max | x raw | client CPU µs/call "
              "| server CPU µs/call |", "|---|---:|---:|---:|---:|---:|---:|---:|"]

    def window(r: dict[str, dict[str, Any]], kind: str, n: int) -> dict[str, Any] | None:
        if kind not in r:
            return None
        for w in r[kind]["windows"]:
            if w["inflight"] == n:
                return dict(w)
        return None

    def rate(w: dict[str, Any]) -> float:
        return float(w["calls"] / w["wall"])

    def ratio(kind: str, base: str, n: int) -> tuple[float, float, float] | None:
        values = []
        for r in rounds:
            a, b = window(r, kind, n), window(r, base, n)
            if a and b:
                values.append(rate(a) / rate(b))
        if not values:
            return None
        return _median(values), min(values), max(values)

    def cpu_ratio(kind: str, base: str, n: int, side: str) -> tuple[float, float, float] | None:
        values = []
        for r in rounds:
            a, b = window(r, kind, n), window(r, base, n)
            if a and b:
                values.append((a[side] / a["calls"]) / (b[side] / b["calls"]))
        return (_median(values), min(values), max(values)) if values else None

    medians: dict[tuple[str, int], float] = {}
    for n in INFLIGHT:
        for kind in kinds:
            ws = [w for r in rounds if (w := window(r, kind, n))]
            if not ws:
                continue
            rates = [rate(w) for w in ws]
            medians[(kind, n)] = _median(rates)
            vs_raw = ratio(kind, baseline(kind), n)
            client_cpu = _median([w["client_cpu"] / w["calls"] * 1e6 for w in ws])
            server_cpu = _median([w["server_cpu"] / w["calls"] * 1e6 for w in ws])
            lines.append(f"| {kind} | {n} | **{_median(rates):,.0f}** | {min(rates):,.0f} | {max(rates):,.0f} "
                         f"| {vs_raw[0]:.2f} | {client_cpu:.1f} | {server_cpu:.1f} |" if vs_raw else
                         f"| {kind} | {n} | **{_median(rates):,.0f}** | {min(rates):,.0f} | {max(rates):,.0f} "
                         f"| — | {client_cpu:.1f} | {server_cpu:.1f} |")
    lines += ["", "\"x raw\": the median over rounds of this row's calls/s divided by the raw echo's over the same "
              "transport in the same round. "
              "CPU µs/call: CPU time of the whole client or server process over the window (user + system, every "
              "thread) divided by the calls: which side is the bottleneck (about 1 call per CPU-µs of the busier "
              "side's time is the rate).", ""]
    pairs = [(jw, baseline(jw)) for jw in ("jetwire", INLINE_KIND, "jetwire-quic") if jw in kinds]
    if pairs:
        lines += ["Targets (issue 12): jetwire at least 0.7x the raw echo over the same transport, and at least 2x "
                  "grpc (which runs over TCP only).", "",
                  "| jetwire over | in flight | jetwire / raw | target 0.7 | jetwire / grpc | target 2 |",
                  "|---|---:|---:|---|---:|---|"]
        for jw, raw in pairs:
            for n in INFLIGHT:
                to_raw, to_grpc = ratio(jw, raw, n), ratio(jw, "grpc", n)
                over = "QUIC" if jw.endswith("-quic") else "TCP, steps_inline=True" if jw == INLINE_KIND else "TCP"
                lines.append(f"| {over} | {n} | {_fmt_ratio(to_raw)} "
                             f"| {_verdict(to_raw, 0.7)} | {_fmt_ratio(to_grpc)} | {_verdict(to_grpc, 2.0)} |")
        lines += ["", "Ratios: median of the per-round ratios (min-max in brackets).", ""]
    for jw, base in (("jetwire", BASELINE_KIND), ("jetwire-quic", QUIC_BASELINE_KIND)):
        if base not in kinds or jw not in kinds:
            continue
        lines += [f"{jw} against {jw} from `{args.baseline_tree}` (the {base} rows), same rounds:", "",
                  "| in flight | jetwire / baseline calls/s | client CPU/call / baseline | server CPU/call / baseline |",
                  "|---:|---:|---:|---:|"]
        for n in INFLIGHT:
            lines.append(f"| {n} | {_fmt_ratio(ratio(jw, base, n))} "
                         f"| {_fmt_ratio(cpu_ratio(jw, base, n, 'client_cpu'))} "
                         f"| {_fmt_ratio(cpu_ratio(jw, base, n, 'server_cpu'))} |")
        lines.append("")
    if mem:
        lines += _memory_table(mem, args)
    if profile:
        lines += ["## Where jetwire's time goes", "",
                  "One more run under cProfile (which slows Python code down: compare shares, not totals), "
                  "top functions by own time, and own time per call by area.", ""] + profile
    lines += ["## Checked before timing", ""] + [f"- {line}" for line in checks]
    return "\n".join(lines) + "\n"


def _fmt_ratio(r: tuple[float, float, float] | None) -> str:
    return "—" if r is None else f"**{r[0]:.2f}** ({r[1]:.2f}-{r[2]:.2f})"


def _verdict(r: tuple[float, float, float] | None, target: float) -> str:
    if r is None:
        return "not measured"
    return "met" if r[0] >= target else "not met"


def _bytes(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def _memory_table(mem: list[dict[str, Any]], args: argparse.Namespace) -> list[str]:
    first = mem[0]
    lines = ["## Memory", "",
             f"A fresh server per implementation and a client process opening {first['connections']} connections "
             f"(one call each), then making {first['calls'] // first['connections']} calls on each that the server "
             f"holds ({first['calls']:,} in flight) until measured. Bytes = growth of the process (after "
             "`gc.collect()`) divided by connections or by calls in flight. RSS: resident set (`/proc/self/statm`), "
             "every allocation, C included; traced: `tracemalloc` in a second run (Python objects only: grpcio's C "
             "core is invisible there). A call in flight on the client includes the caller's task and coroutine: "
             "the last column is what such a task costs with a plain future in place of the call, the same for "
             "every implementation (traced only: measured after the run, when RSS no longer grows).", "",
             "| implementation | measure | server B/connection | server B/call in flight | client B/connection "
             "| client B/call in flight | of which a bare task |", "|---|---|---:|---:|---:|---:|---:|"]
    for m in mem:
        lines.append(f"| {m['kind']} | {'traced' if m['trace'] else 'RSS'} | {m['server_per_connection']:,.0f} "
                     f"| {m['server_per_call']:,.0f} | {m['client_per_connection']:,.0f} "
                     f"| {m['client_per_call']:,.0f} | {_bytes(m['bare_task'])} |")
    lines.append("")
    for m in mem:
        if m["reached"] < m["calls"] or m["unanswered"]:
            lines.append(f"- {m['kind']} ({'traced' if m['trace'] else 'RSS'}): {m['reached']:,} of the {m['calls']:,} "
                         f"calls reached the server in time (its figure per call counts those), "
                         f"{m['unanswered']:,} failed or were unanswered in time after the release")
    lines.append("")
    for m in mem:
        if m["trace"] and m["kind"].startswith("jetwire"):
            for what, key in (("idle connection", "server_grew_per_connection"),
                              ("call in flight", "server_grew_per_call")):
                sites = ", ".join(f"`{where}` {size:,.0f}" for where, size in m[key] if size >= 16)
                lines.append(f"- {m['kind']} server, bytes per {what} by allocating line (tracemalloc): {sites}")
            lines.append("")
    return lines


# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.rpc")
    parser.add_argument("--quick", action="store_true",
                        help="3 rounds of 0.5 s windows, no raw-tasks row, memory by RSS over TCP only (under a minute)")
    parser.add_argument("--rounds", type=int, help="rounds (default 7; quick 3)")
    parser.add_argument("--seconds", type=float, help="seconds per timed window (default 2; quick 0.5)")
    parser.add_argument("--warmup", type=int, help="warm-up calls per client (default 2000; quick 400)")
    parser.add_argument("--only", default="", help="implementations, comma-separated (default: all of raw,raw-tasks,grpc,jetwire,jetwire-inline,raw-quic,jetwire-quic)")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory measurements")
    parser.add_argument("--profile", action="store_true", help="also profile the jetwire client and server")
    parser.add_argument("--no-save", action="store_true")
    parser.add_argument("--baseline-tree", help="also run jetwire from this tree (a directory holding jetwire/), "
                        "in the same rounds, and give the ratios")
    # the child processes
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--memory-client", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--server-pid", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--inflight", default="1,32", help=argparse.SUPPRESS)
    parser.add_argument("--connections", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--calls", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--patience", type=float, default=60, help=argparse.SUPPRESS)
    parser.add_argument("--profile-out", help=argparse.SUPPRESS)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    args.rounds = args.rounds or (3 if args.quick else 7)
    args.seconds = args.seconds or (0.5 if args.quick else 2.0)
    args.warmup = args.warmup or (400 if args.quick else 2000)
    if args.trace:
        tracemalloc.start()
    if args.serve:
        asyncio.run(server_main(args.serve, args.url, args.profile_out))
        return
    if args.client:
        result = asyncio.run(client_main(args.client, args.url, args.server_pid,
                                         [int(n) for n in args.inflight.split(",")], args.seconds, args.warmup))
        print(json.dumps(result))
        return
    if args.memory_client:
        asyncio.run(memory_client_main(args.memory_client, args.url, args.connections, args.calls, args.patience))
        return
    run(args)


def run(args: argparse.Namespace) -> None:
    import tempfile

    # raw-tasks is a reference row (what a task per call costs), left to the full run and --only
    wanted = [k for k in KINDS if k in args.only.split(",")] if args.only else \
        [k for k in KINDS if not (args.quick and k == "raw-tasks")]
    if args.baseline_tree:
        os.environ["JETWIRE_BENCH_BASELINE_TREE"] = str(Path(args.baseline_tree).resolve())
        if "jetwire" in wanted or "jetwire-quic" not in wanted:
            wanted.append(BASELINE_KIND)
        if "jetwire-quic" in wanted:
            wanted.append(QUIC_BASELINE_KIND)
    kinds, skipped = [], []
    for kind in wanted:
        why = available(kind)
        if why:
            if why not in skipped:
                print(why, flush=True)
                skipped.append(why)
        else:
            kinds.append(kind)
    if "raw-quic" in kinds and "jetwire-quic" not in kinds and not args.only:
        kinds.remove("raw-quic")
        skipped.append("raw-quic is left out with jetwire-quic, having nothing to be compared with "
                       "(`--only raw-quic` runs it)")
        print(skipped[-1], flush=True)
    with tempfile.TemporaryDirectory(prefix="jetwire-bench-rpc-") as tmp:
        if any(kind.endswith("-quic") for kind in kinds):
            # every process of the run (servers, clients) finds the certificate through the environment
            make_certificate(Path(tmp))
            os.environ["JETWIRE_BENCH_CERT_DIR"] = tmp
        _run(args, kinds, skipped)


def _run(args: argparse.Namespace, kinds: list[str], skipped: list[str]) -> None:
    started = time.perf_counter()
    print("verifying (nothing is timed until this passes):", flush=True)
    checks = verify(kinds, args.warmup)
    for line in checks:
        print(f"  {line}", flush=True)
    servers = {kind: ServerProcess(kind) for kind in kinds}
    rounds: list[dict[str, dict[str, Any]]] = []
    try:
        for number in range(args.rounds):
            order = kinds[number % len(kinds):] + kinds[:number % len(kinds)]
            one: dict[str, dict[str, Any]] = {}
            for kind in order:
                one[kind] = run_client(kind, servers[kind], INFLIGHT, args.seconds, args.warmup)
            rounds.append(one)
            print(f"round {number + 1} of {args.rounds}: " + ", ".join(
                f"{kind} " + "/".join(f"{w['calls'] / w['wall']:,.0f}" for w in one[kind]["windows"])
                for kind in kinds), flush=True)
    finally:
        for server in servers.values():
            server.stop()
    mem: list[dict[str, Any]] = []
    if not args.no_memory:
        connections, calls_each = 200, 10
        # Quick mode measures memory over TCP only: 400 QUIC handshakes take longer than its minute.
        measured = [kind for kind in kinds if not (args.quick and kind.endswith("-quic"))]
        if len(measured) < len(kinds):
            skipped.append("quick mode: memory over TCP only (the full run measures QUIC too)")
        for trace in (False,) if args.quick else (False, True):
            for kind in measured:
                print(f"memory: {kind}, {'tracemalloc' if trace else 'RSS'}", flush=True)
                mem.append(measure_memory(kind, connections, calls_each, trace, patience=5 if args.quick else 60))
    profile = profile_jetwire(args.seconds) if args.profile and "jetwire" in kinds else []
    report = render(rounds, kinds, skipped, mem, checks, profile, args, time.perf_counter() - started)
    print()
    print(report)
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"{datetime.date.today().isoformat()}-rpc{'-quick' if args.quick else ''}.md"
        path.write_text(report)
        print(f"saved {path}")


if __name__ == "__main__":
    main()

"""QUIC through aioquic (jetwire.rpc.quic): each client-opened bidirectional stream drives an
``asyncio.Protocol`` as a TCP connection would.

The certificates are made at test time (a CA and a leaf for ``localhost``/127.0.0.1). Every
test runs under ``asyncio.wait_for``, so a hang fails instead of hanging; waits are on events
or on conditions polled under that guard, never on a sleep's length.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import hashlib
import ipaddress
import pathlib
import re
import socket
import ssl
import subprocess
import sys
import types
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest
from aioquic import tls as aioquic_tls
from aioquic.asyncio import connect as aioquic_connect
from aioquic.asyncio import serve as aioquic_serve
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.quic import events
from aioquic.quic.configuration import QuicConfiguration
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from services import Echo, EchoServer, Toolbox, ToolboxServer

import jetwire
from jetwire import rpc
from jetwire.rpc import TLS, quic
from jetwire.rpc.transports import Address, UnsupportedURL

GUARD = 20.0


# -- certificates ------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Certs:
    cafile: str
    certfile: str
    keyfile: str
    other_cafile: str  # a CA that did not sign the server's certificate


def Url(host: str, port: int) -> Address:
    return Address("quic", host, port)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(subject: str, key: ec.EllipticCurvePrivateKey, issuer: str, issuer_key: ec.EllipticCurvePrivateKey,
                 *, ca: bool) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write_pem(path: pathlib.Path, certificate: x509.Certificate) -> str:
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return str(path)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    directory = tmp_path_factory.mktemp("quic-certs")
    ca_key, other_key, leaf_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    ca = _certificate("jetwire test CA", ca_key, "jetwire test CA", ca_key, ca=True)
    other = _certificate("some other CA", other_key, "some other CA", other_key, ca=True)
    leaf = _certificate("localhost", leaf_key, "jetwire test CA", ca_key, ca=False)
    keyfile = directory / "server.key"
    keyfile.write_bytes(leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    return Certs(cafile=_write_pem(directory / "ca.pem", ca), certfile=_write_pem(directory / "server.pem", leaf),
                 keyfile=str(keyfile), other_cafile=_write_pem(directory / "other-ca.pem", other))


def server_tls(certs: Certs) -> TLS:
    return TLS(certfile=certs.certfile, keyfile=certs.keyfile)


def client_tls(certs: Certs) -> TLS:
    return TLS(cafile=certs.cafile, server_name="localhost")


# -- protocols the tests drive -----------------------------------------------------------------

class Recorder(asyncio.Protocol):
    """Records what a transport gives it; ``until`` waits for a condition on it."""

    def __init__(self) -> None:
        self.transport: Any = None
        self.data = bytearray()
        self.eof = asyncio.Event()
        self.lost = asyncio.Event()
        self.lost_with: BaseException | None = None
        self.paused_writing = 0
        self.resumed_writing = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.data += data

    def eof_received(self) -> bool:
        self.eof.set()
        return True  # keep our half open: the test closes it

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost_with = exc
        self.lost.set()

    def pause_writing(self) -> None:
        self.paused_writing += 1

    def resume_writing(self) -> None:
        self.resumed_writing += 1


class EchoBytes(Recorder):
    """Writes back what it reads; after the peer's FIN, closes its half (our FIN)."""

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self.transport.write(data)

    def eof_received(self) -> bool:
        self.eof.set()
        return False  # the transport closes itself, as a TCP transport does


class Factory:
    """A protocol factory that keeps every protocol it made."""

    def __init__(self, kind: type[Recorder] = EchoBytes) -> None:
        self.kind = kind
        self.made: list[Recorder] = []
        self.one = asyncio.Event()

    def __call__(self) -> Recorder:
        protocol = self.kind()
        self.made.append(protocol)
        self.one.set()
        return protocol


def run(body: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(body(), GUARD))


async def until(condition: Callable[[], object]) -> None:
    """Waits until ``condition()`` holds; the test's ``wait_for`` guard fails it if it never does."""
    while not condition():
        await asyncio.sleep(0.002)


async def serving(certs: Certs, factory: Factory, **options: Any) -> tuple[quic.QuicListener, Address]:
    listener = await quic.listen(Url("127.0.0.1", 0), factory, server_tls(certs), **options)
    port = int(listener.urls[0].rsplit(":", 1)[1])
    return listener, Url("127.0.0.1", port)


async def shut(listener: quic.QuicListener) -> None:
    listener.close()
    await listener.wait_closed()


def client_connection(transport: asyncio.BaseTransport) -> QuicConnectionProtocol:
    connection = transport.get_extra_info("quic_connection")
    assert isinstance(connection, QuicConnectionProtocol)
    return connection


def raw_client_configuration(certs: Certs, alpn: list[str] | None) -> QuicConfiguration:
    configuration = QuicConfiguration(is_client=True, alpn_protocols=alpn, server_name="localhost")
    configuration.load_verify_locations(cafile=certs.cafile)
    return configuration


def send_raw(connection: QuicConnectionProtocol, stream_id: int, data: bytes) -> None:
    """Writes on a stream of an aioquic client without a StreamWriter (which, collected after the server
    reset its stream, would raise in its __del__)."""
    connection._quic.send_stream_data(stream_id, data)
    connection.transmit()


class EventLog(QuicConnectionProtocol):
    """An aioquic client connection that keeps every event (to see what the server did to its streams)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.events: list[events.QuicEvent] = []
        self.stream_writers: dict[int, Any] = {}
        self.cut: set[int] = set()

    def _create_stream(self, stream_id: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = super()._create_stream(stream_id)
        self.stream_writers[stream_id] = writer.transport
        if stream_id in self.cut:
            self.cut_stream(stream_id)
        return reader, writer

    def cut_stream(self, stream_id: int) -> None:
        """Our sending half is reset: aioquic's stream writer must not send a FIN when collected (it would raise)."""
        self.cut.add(stream_id)
        writer = self.stream_writers.get(stream_id)
        if writer is not None:
            writer._closing = True

    def quic_event_received(self, event: events.QuicEvent) -> None:
        self.events.append(event)
        if isinstance(event, events.StopSendingReceived):
            self.cut_stream(event.stream_id)
        super().quic_event_received(event)


def raw_connect(certs: Certs, host: str, port: int) -> AbstractAsyncContextManager[QuicConnectionProtocol]:
    """A plain aioquic client connection offering ALPN "jetstream", keeping its events (an EventLog)."""
    return aioquic_connect(host, port, configuration=raw_client_configuration(certs, ["jetstream"]),
                           create_protocol=EventLog)


# -- the tests ---------------------------------------------------------------------------------

def test_a_stream_echoes_and_ends_cleanly(certs: Certs) -> None:
    """One stream both ways: bytes, FIN each way, connection_lost(None) on both ends, ALPN jetstream.

    r[jetstream.rpc.transport.quic-alpn] r[jetstream.rpc.transport.quic-stream]
    """
    async def body() -> None:
        factory = Factory()
        listener, url = await serving(certs, factory)
        transport, client = await quic.open(url, Recorder, client_tls(certs))
        assert isinstance(client, Recorder)
        transport.write(b"hello ")
        transport.writelines([b"over ", bytearray(b"quic")])
        transport.write_eof()
        await client.eof.wait()
        assert bytes(client.data) == b"hello over quic"
        server = factory.made[0]
        assert server.eof.is_set()
        assert transport.get_extra_info("alpn_protocol") == "jetstream"
        assert transport.get_extra_info("quic_stream_id") == 0
        assert transport.get_extra_info("peername")[1] == url.port
        assert server.transport.get_extra_info("quic_stream_id") == 0
        assert server.transport.get_extra_info("peername")[0] == "127.0.0.1"
        assert server.transport.get_extra_info("sockname")[1] == url.port
        assert server.transport.get_extra_info("alpn_protocol") == "jetstream"
        certificate = transport.get_extra_info("peer_certificate")
        assert certificate.subject.rfc4514_string() == "CN=localhost"
        assert server.transport.get_extra_info("peer_certificate") is None  # no client certificate
        assert transport.get_extra_info("no such thing", "default") == "default"
        transport.close()
        await client.lost.wait()
        await server.lost.wait()
        assert client.lost_with is None and server.lost_with is None
        await client_connection(transport).wait_closed()
        await shut(listener)
        assert len(factory.made) == 1
    run(body)


def test_several_streams_on_one_connection_are_separate_sessions(certs: Certs) -> None:
    """Each bidirectional stream a client opens gets a protocol of its own; all share one connection.

    r[jetstream.rpc.transport.quic-stream]
    """
    async def body() -> None:
        factory = Factory()
        listener, url = await serving(certs, factory)
        async with raw_connect(certs, url.host, url.port) as connection:
            streams = []
            for number in range(5):  # aioquic names a stream only once something is written on it
                reader, writer = await connection.create_stream()
                writer.write(f"stream {number} ".encode() * (number + 1))
                streams.append((reader, writer))
            for _, writer in reversed(streams):
                writer.write_eof()
            answers = [await reader.read() for reader, _ in streams]
        assert answers == [f"stream {number} ".encode() * (number + 1) for number in range(5)]
        assert len(factory.made) == 5
        assert sorted(p.transport.get_extra_info("quic_stream_id") for p in factory.made) == [0, 4, 8, 12, 16]
        assert len({id(p.transport.get_extra_info("quic_connection")) for p in factory.made}) == 1
        await shut(listener)
    run(body)


def test_unidirectional_streams_are_refused(certs: Certs) -> None:
    """A unidirectional stream gets no protocol, and the client is told to stop sending on it.

    r[jetstream.rpc.transport.quic-stream]
    """
    async def body() -> None:
        factory = Factory()
        listener, url = await serving(certs, factory)
        async with raw_connect(certs, url.host, url.port) as connection:
            assert isinstance(connection, EventLog)
            send_raw(connection, connection._quic.get_next_available_stream_id(is_unidirectional=True), b"ignored")
            await until(lambda: any(isinstance(e, events.StopSendingReceived) for e in connection.events))
            stopped = [e for e in connection.events if isinstance(e, events.StopSendingReceived)]
            assert [(e.stream_id, e.error_code) for e in stopped] == [(2, quic.CODE_REFUSED)]
            reader, writer = await connection.create_stream()  # the connection still serves bidirectional ones
            writer.write(b"still here")
            writer.write_eof()
            assert await reader.read() == b"still here"
        assert len(factory.made) == 1
        await shut(listener)
    run(body)


@pytest.mark.parametrize("alpn", [["h3"], None, ["jetstream2", "rs.jetstream.proto/echo/1.0.0"]])
def test_a_client_without_the_jetstream_alpn_is_closed(certs: Certs, alpn: list[str] | None) -> None:
    """A connection that offers no ALPN, or not "jetstream", is closed in the handshake: no stream is served.

    r[jetstream.rpc.transport.quic-alpn]
    """
    async def body() -> None:
        factory = Factory()
        listener, url = await serving(certs, factory)
        with pytest.raises(ConnectionError):
            async with aioquic_connect(url.host, url.port, configuration=raw_client_configuration(certs, alpn)):
                pytest.fail("the handshake completed")
        assert factory.made == []
        await shut(listener)
    run(body)


def test_the_client_offers_jetstream_and_refuses_a_server_that_picks_another(certs: Certs) -> None:
    """r[jetstream.rpc.transport.quic-alpn]: our client offers exactly "jetstream"; a server answering with
    another ALPN fails the handshake with a ConnectionError that says so."""
    async def body() -> None:
        offered: list[list[str] | None] = []
        for server_alpn in (["jetstream"], ["h3"]):
            configuration = QuicConfiguration(is_client=False, alpn_protocols=server_alpn)
            configuration.load_cert_chain(certs.certfile, certs.keyfile)

            class Peek(QuicConnectionProtocol):
                def quic_event_received(self, event: events.QuicEvent) -> None:
                    if isinstance(event, events.ProtocolNegotiated):
                        offered.append(self._quic.tls.alpn_negotiated)

            server = await aioquic_serve("127.0.0.1", 0, configuration=configuration, create_protocol=Peek)
            port = server._transport.get_extra_info("sockname")[1]
            try:
                if server_alpn == ["jetstream"]:
                    transport, _ = await quic.open(Url("127.0.0.1", port), Recorder, client_tls(certs))
                    transport.close()
                    await client_connection(transport).wait_closed()
                else:
                    with pytest.raises(ConnectionError, match=r"QUIC handshake with quic://127\.0\.0\.1:\d+ failed: No common ALPN"):
                        await quic.open(Url("127.0.0.1", port), Recorder, client_tls(certs))
            finally:
                server.close()
        assert offered == ["jetstream"]  # the h3-only server found nothing in common
    run(body)


def test_certificates_are_verified(certs: Certs) -> None:
    """The client checks the server's certificate against tls.cafile; verify=False skips the check."""
    async def body() -> None:
        factory = Factory()
        listener, url = await serving(certs, factory)
        with pytest.raises(ConnectionError, match="QUIC handshake"):
            await quic.open(url, Recorder, TLS(cafile=certs.other_cafile, server_name="localhost"))
        with pytest.raises(ConnectionError, match="QUIC handshake"):
            await quic.open(url, Recorder, TLS(cafile=certs.cafile, server_name="not-the-name.example"))
        transport, client = await quic.open(url, Recorder, TLS(verify=False))
        transport.write(b"x")
        await until(lambda: client.data == b"x")
        transport.close()
        await client_connection(transport).wait_closed()
        await shut(listener)
    run(body)


class SlowAnswers(Recorder):
    """Answers each line it reads only when the test says so, after the client's FIN."""

    def __init__(self) -> None:
        super().__init__()
        self.eof_seen_with: bytes = b""

    def eof_received(self) -> bool:
        self.eof_seen_with = bytes(self.data)
        self.eof.set()
        return True  # in-progress work still answers: keep the sending half

    def answer_all_and_close(self) -> None:
        for line in bytes(self.data).splitlines():
            self.transport.write(b"answer to " + line + b"\n")
        self.transport.close()


def test_after_the_client_fin_every_request_read_is_still_answered(certs: Certs) -> None:
    """The client's FIN is eof_received on the server; the server's half stays writable, every request
    read before the FIN is answered, then the server's close() is its FIN and the client sees EOF.

    r[jetstream.rpc.transport.quic-shutdown]
    """
    async def body() -> None:
        factory = Factory(SlowAnswers)
        listener, url = await serving(certs, factory)
        transport, client = await quic.open(url, Recorder, client_tls(certs))
        assert isinstance(client, Recorder)
        transport.write(b"one\ntwo\nthree\n")
        transport.write_eof()
        await factory.one.wait()
        server = factory.made[0]
        assert isinstance(server, SlowAnswers)
        await server.eof.wait()
        assert server.eof_seen_with == b"one\ntwo\nthree\n"
        assert not client.eof.is_set()
        assert not server.transport.is_closing()
        with pytest.raises(RuntimeError, match="write_eof"):
            transport.write(b"after our FIN")
        server.answer_all_and_close()
        await client.eof.wait()
        assert bytes(client.data) == b"answer to one\nanswer to two\nanswer to three\n"
        await server.lost.wait()
        assert server.lost_with is None
        transport.close()
        await client.lost.wait()
        assert client.lost_with is None
        await client_connection(transport).wait_closed()
        await shut(listener)
    run(body)


class PausedAtOnce(Recorder):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.transport.pause_reading()


def test_pause_reading_bounds_what_the_peer_can_send(certs: Certs) -> None:
    """A paused stream holds back flow-control credit: the client can send only one window beyond
    what the protocol consumed, however much it has to send. The server buffers at most that, the
    client's writes back up (pause_writing), and resuming delivers everything, in order."""
    window = 64 * 1024
    payload = hashlib.sha256(b"seed").digest() * (2 * 1024 * 1024 // 32)  # 2 MiB, 32 windows

    async def body() -> None:
        factory = Factory(PausedAtOnce)
        listener, url = await serving(certs, factory, stream_window=window)
        transport, client = await quic.open(url, Recorder, client_tls(certs))
        assert isinstance(client, Recorder)
        transport.write(payload)
        assert client.paused_writing == 1  # aioquic holds what it cannot send yet
        await factory.one.wait()
        server = factory.made[0]
        await until(lambda: server.transport.get_read_buffer_size() >= window)
        connection = client_connection(transport)
        for _ in range(5):  # several more round trips: still nothing beyond the window
            await connection.ping()
        assert server.transport.get_read_buffer_size() == window
        assert server.data == b""
        stream = server.transport.get_extra_info("quic_connection")._quic._streams[0]
        assert stream.receiver.highest_offset == window
        assert transport.get_write_buffer_size() >= len(payload) - window

        server.transport.resume_reading()
        await until(lambda: len(server.data) == len(payload))
        assert bytes(server.data) == payload
        await until(lambda: client.resumed_writing == 1)
        transport.close()
        await connection.wait_closed()
        await shut(listener)
    run(body)


def test_pause_reading_keeps_the_fin_until_resumed(certs: Certs) -> None:
    """A FIN that arrives while reading is paused is delivered after the data, on resume_reading()."""
    async def body() -> None:
        factory = Factory(PausedAtOnce)
        listener, url = await serving(certs, factory)
        transport, _ = await quic.open(url, Recorder, client_tls(certs))
        transport.write(b"queued")
        transport.write_eof()
        await factory.one.wait()
        server = factory.made[0]
        await until(lambda: server.transport.get_read_buffer_size() == 6)
        await client_connection(transport).ping()
        assert not server.eof.is_set() and not server.transport.is_reading()
        server.transport.resume_reading()
        await server.eof.wait()
        assert server.data == b"queued"
        transport.close()
        await client_connection(transport).wait_closed()
        await shut(listener)
    run(body)


def test_a_reset_stream_is_connection_lost_with_an_error(certs: Certs) -> None:
    """The peer resetting its half (or the stream) ends that stream's protocol with ConnectionResetError;
    the other streams of the connection go on."""
    async def body() -> None:
        factory = Factory()
        listener, url = await serving(certs, factory)
        async with raw_connect(certs, url.host, url.port) as connection:
            assert isinstance(connection, EventLog)
            send_raw(connection, 0, b"x")
            await factory.one.wait()
            connection._quic.reset_stream(0, 7)
            connection.cut_stream(0)
            connection.transmit()
            reader, writer = await connection.create_stream()
            writer.write(b"alive")
            writer.write_eof()
            assert await reader.read() == b"alive"
            await factory.made[0].lost.wait()
        assert isinstance(factory.made[0].lost_with, ConnectionResetError)
        assert "reset by the peer (code 7)" in str(factory.made[0].lost_with)
        assert factory.made[1].lost_with is None
        await shut(listener)
    run(body)


class Raises(Recorder):
    def data_received(self, data: bytes) -> None:
        raise ValueError("a protocol bug")


def test_a_protocol_that_raises_loses_its_stream_only(certs: Certs) -> None:
    """A raising protocol callback is reported to the loop's exception handler and aborts its stream;
    the connection and its other streams are unaffected."""
    async def body() -> None:
        reported: list[dict[str, Any]] = []
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: reported.append(context))
        kinds = iter([Raises, EchoBytes])
        factory = Factory()
        factory.kind = Recorder  # replaced per call below

        def make() -> Recorder:
            factory.kind = next(kinds)
            return factory()

        listener = await quic.listen(Url("127.0.0.1", 0), make, server_tls(certs))
        port = int(listener.urls[0].rsplit(":", 1)[1])
        async with raw_connect(certs, "127.0.0.1", port) as connection:
            assert isinstance(connection, EventLog)
            send_raw(connection, connection._quic.get_next_available_stream_id(), b"boom")
            await until(lambda: any(isinstance(e, events.StreamReset) for e in connection.events))
            reader, writer = await connection.create_stream()
            writer.write(b"fine")
            writer.write_eof()
            assert await reader.read() == b"fine"
        assert [type(c["exception"]) for c in reported] == [ValueError]
        assert "data_received raised" in reported[0]["message"]
        assert factory.made[0].lost.is_set() and factory.made[0].lost_with is None
        await shut(listener)
    run(body)


def test_closing_the_listener_refuses_new_streams_and_lets_open_ones_finish(certs: Certs) -> None:
    """After close(), streams already open are served to their end; a new stream on an open connection
    is refused, a new connection is closed; wait_closed() returns once the last connection closed,
    with no task left behind."""
    async def body() -> None:
        tasks_before = asyncio.all_tasks()
        factory = Factory(SlowAnswers)
        listener, url = await serving(certs, factory)
        transport, client = await quic.open(url, Recorder, client_tls(certs))
        assert isinstance(client, Recorder)
        transport.write(b"before close\n")
        async with raw_connect(certs, url.host, url.port) as early:
            assert isinstance(early, EventLog)
            send_raw(early, 0, b"early\n")
            await until(lambda: len(factory.made) == 2 and all(p.data.endswith(b"\n") for p in factory.made))
            listener.close()
            closed = asyncio.ensure_future(listener.wait_closed())

            send_raw(early, 4, b"after close")
            await until(lambda: any(isinstance(e, events.StopSendingReceived) for e in early.events))
            assert [e.stream_id for e in early.events if isinstance(e, events.StreamReset)] == [4]

            async with raw_connect(certs, url.host, url.port) as late:
                await late.wait_closed()
            assert len(factory.made) == 2
            assert not closed.done()

            for server in factory.made:
                assert isinstance(server, SlowAnswers)
                server.answer_all_and_close()
            await client.eof.wait()
            assert client.data == b"answer to before close\n"
            transport.close()
            await until(lambda: any(isinstance(e, events.StreamDataReceived) and e.end_stream for e in early.events))
        await closed
        await client_connection(transport).wait_closed()
        assert listener.connections == set()
        assert asyncio.all_tasks() == tasks_before
    run(body)


def test_a_server_needs_a_certificate(certs: Certs) -> None:
    async def body() -> None:
        with pytest.raises(UnsupportedURL, match="needs a certificate"):
            await quic.listen(Url("127.0.0.1", 0), Factory(), None)
        with pytest.raises(UnsupportedURL, match="needs a certificate"):
            await quic.listen(Url("127.0.0.1", 0), Factory(), TLS(cafile=certs.cafile))
    run(body)


def test_jetwire_imports_without_aioquic_and_quic_says_what_to_install(certs: Certs) -> None:
    """Without aioquic, jetwire.rpc imports and serves TCP; quic:// (serving or connecting) raises
    UnsupportedURL naming the extra to install."""
    script = f"""
import asyncio, sys
sys.modules["aioquic"] = None  # every "import aioquic..." now fails, as if it were not installed
from jetwire import rpc

@rpc.service(version="1.0.0")
class Hello(rpc.Service):
    async def hi(self) -> str: ...

class HelloServer(Hello):
    async def hi(self) -> str:
        return "hi"

async def main():
    async with await rpc.serve(HelloServer(), "tcp://127.0.0.1:0") as server:
        async with await Hello.connect(server.urls[0]) as client:
            print(await client.hi())
    tls = rpc.TLS(certfile={certs.certfile!r}, keyfile={certs.keyfile!r})
    for attempt in (rpc.serve(HelloServer(), "quic://127.0.0.1:0", tls=tls), Hello.connect("quic://127.0.0.1:9")):
        try:
            await attempt
        except rpc.UnsupportedURL as error:
            print(error)
    assert "jetwire.rpc.quic" not in sys.modules

asyncio.run(main())
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["hi"] + ["quic:// needs aioquic: pip install 'jetwire[quic]'"] * 2


def test_nothing_listening_fails_the_connect_at_once() -> None:
    """The ICMP "port unreachable" of a UDP port nobody listens on ends the handshake at once,
    with a ConnectionError that says so, rather than after the handshake's idle timeout."""
    async def body() -> None:
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        tasks_before = asyncio.all_tasks()
        with pytest.raises(ConnectionError, match=r"failed: .*[Rr]efused"):
            await quic.open(Url("127.0.0.1", port), Recorder, TLS(verify=False))
        assert asyncio.all_tasks() == tasks_before
    run(body)


class Flood(Recorder):
    """Writes ``size`` bytes as soon as its stream opens."""

    size = 2 * 1024 * 1024

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.transport.write(bytes(range(256)) * (self.size // 256))


def test_a_paused_client_holds_back_the_server(certs: Certs) -> None:
    """The same bound the other way: a client that stops reading lets the server send one window;
    the server's protocol is paused (pause_writing) and resumed once the client reads again."""
    window = 64 * 1024

    class PausedClient(Recorder):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            self.transport.pause_reading()

    async def body() -> None:
        factory = Factory(Flood)
        listener, url = await serving(certs, factory)
        transport, client = await quic.open(url, PausedClient, client_tls(certs), stream_window=window)
        transport.write(b"start")
        await factory.one.wait()
        server = factory.made[0]
        assert server.paused_writing == 1
        await until(lambda: transport.get_read_buffer_size() >= window)
        for _ in range(5):
            await client_connection(transport).ping()
        assert transport.get_read_buffer_size() == window
        transport.resume_reading()
        await until(lambda: len(client.data) == Flood.size)
        assert bytes(client.data) == bytes(range(256)) * (Flood.size // 256)
        await until(lambda: server.resumed_writing == 1)
        transport.close()
        await client_connection(transport).wait_closed()
        await shut(listener)
    run(body)


def test_a_client_whose_server_vanished_still_closes(certs: Certs, monkeypatch: pytest.MonkeyPatch) -> None:
    """Closing waits for the peer to acknowledge our last bytes, but not for ever: with nobody
    answering, the connection closes after DRAIN_TIMEOUT and connection_lost comes."""
    monkeypatch.setattr(quic, "DRAIN_TIMEOUT", 0.2)

    async def body() -> None:
        factory = Factory()
        listener, url = await serving(certs, factory)
        transport, client = await quic.open(url, Recorder, client_tls(certs))
        transport.write(b"x")
        await until(lambda: client.data == b"x")
        [server] = listener.connections
        server.datagram_received = lambda data, addr: None  # type: ignore[method-assign]  # deaf from now on
        transport.write(b"into the void")
        transport.close()
        await client.lost.wait()
        assert client_connection(transport).termination is not None
        assert client_connection(transport)._transport.is_closing()
        server._close_now()
        await shut(listener)
    run(body)


def test_a_factory_that_raises_refuses_its_stream_only(certs: Certs) -> None:
    """A protocol factory that raises is reported to the loop's exception handler; its stream is
    refused (reset), and the connection serves the next stream."""
    async def body() -> None:
        reported: list[dict[str, Any]] = []
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: reported.append(context))
        served = Factory()
        calls = 0

        def factory() -> Recorder:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise RuntimeError("no protocol for you")
            return served()

        listener = await quic.listen(Url("127.0.0.1", 0), factory, server_tls(certs))
        port = int(listener.urls[0].rsplit(":", 1)[1])
        async with raw_connect(certs, "127.0.0.1", port) as connection:
            assert isinstance(connection, EventLog)
            send_raw(connection, 0, b"first")
            await until(lambda: any(isinstance(e, events.StreamReset) for e in connection.events))
            reader, writer = await connection.create_stream()
            writer.write(b"second")
            writer.write_eof()
            assert await reader.read() == b"second"
        assert [str(c["exception"]) for c in reported] == ["no protocol for you"]
        assert len(served.made) == 1
        await shut(listener)
    run(body)


def test_abort_resets_the_stream_both_ways(certs: Certs) -> None:
    """abort() resets the stream: the server's protocol loses it with ConnectionResetError; the
    client's gets connection_lost(None) once its connection closed."""
    async def body() -> None:
        factory = Factory(Recorder)
        listener, url = await serving(certs, factory)
        transport, client = await quic.open(url, Recorder, client_tls(certs))
        transport.write(b"x")
        await factory.one.wait()
        server = factory.made[0]
        await until(lambda: server.data == b"x")
        transport.abort()
        assert transport.is_closing()
        await server.lost.wait()
        assert isinstance(server.lost_with, ConnectionResetError)
        await client.lost.wait()
        assert client.lost_with is None
        await shut(listener)
    run(body)


def test_a_long_lived_connection_remembers_only_the_streams_aioquic_holds(certs: Certs) -> None:
    """Finished streams are remembered (to ignore late frames) only while aioquic still holds
    them: a connection that served a hundred streams one after another keeps a few ids, not a
    hundred."""
    async def body() -> None:
        factory = Factory()
        listener, url = await serving(certs, factory)
        async with aioquic_connect(url.host, url.port,
                                   configuration=raw_client_configuration(certs, ["jetstream"])) as connection:
            for number in range(100):
                reader, writer = await connection.create_stream()
                writer.write(b"%d" % number)
                writer.write_eof()
                assert await reader.read() == b"%d" % number
            [handler] = {p.transport.get_extra_info("quic_connection") for p in factory.made}
            assert len(factory.made) == 100
            assert len(handler._ended) <= 64
        await shut(listener)
    run(body)


def test_an_idle_client_connection_is_kept_alive(certs: Certs, monkeypatch: pytest.MonkeyPatch) -> None:
    """A client pings three times per idle timeout: its connection outlives quiet periods longer
    than the server's idle timeout (here 2 s, and over twice that without a byte of calls)."""
    monkeypatch.setattr(quic, "IDLE_TIMEOUT", 2.0)

    async def body() -> None:
        factory = Factory()
        listener, url = await serving(certs, factory)
        monkeypatch.setattr(quic, "IDLE_TIMEOUT", 60.0)  # the client's own: the server's shorter one counts
        transport, client = await quic.open(url, Recorder, client_tls(certs))
        transport.write(b"before")
        await until(lambda: client.data == b"before")
        loop = asyncio.get_running_loop()
        quiet_until = loop.time() + 4.2
        await until(lambda: loop.time() > quiet_until)
        assert client_connection(transport).termination is None
        transport.write(b" and after")
        await until(lambda: client.data == b"before and after")
        transport.close()
        await client_connection(transport).wait_closed()
        await shut(listener)
    run(body)


class ClosesAtOnce(Recorder):
    """Answers the first bytes and closes its end before the client finished sending."""

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self.transport.write(b"bye")
        self.transport.close()


@pytest.mark.parametrize("then", ["abort", "write_and_close"])
def test_after_the_peer_stopped_reading_writes_are_dropped(certs: Certs, then: str) -> None:
    """A server that closes its end while the client still sends: the client reads the answer and
    the FIN; what it writes after the server's STOP_SENDING is dropped, and abort() or close() then
    end the stream without error (aioquic refuses data and a second reset on a reset stream)."""
    async def body() -> None:
        reported: list[dict[str, Any]] = []
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: reported.append(context))
        factory = Factory(ClosesAtOnce)
        listener, url = await serving(certs, factory)
        transport, client = await quic.open(url, Recorder, client_tls(certs))
        transport.write(b"hello")
        await client.eof.wait()
        assert client.data == b"bye"
        await until(lambda: transport._write_stopped)
        if then == "abort":
            transport.abort()
        else:
            transport.write(b"nobody reads this")
            transport.close()
        await client.lost.wait()
        assert client.lost_with is None
        assert reported == []
        await shut(listener)
    run(body)


# -- the RPC layer over quic:// ----------------------------------------------------------------

def test_a_service_over_quic(certs: Certs) -> None:
    """rpc.serve on quic:// and Svc.connect("quic://...", tls=TLS(cafile=...)): calls, errors, the
    Context's transport and peer; two clients, each its own connection; clean shutdown.

    r[jetstream.rpc.transport.quic-alpn] r[jetstream.rpc.transport.quic-stream]
    """
    async def main() -> None:
        tasks_before = asyncio.all_tasks()
        async with await rpc.serve(EchoServer(), "quic://127.0.0.1:0", tls=server_tls(certs)) as server:
            assert server.urls[0].startswith("quic://127.0.0.1:")
            async with await Echo.connect(server.urls[0], tls=client_tls(certs)) as one, \
                    await Echo.connect(server.urls[0], tls=client_tls(certs)) as two:
                assert await asyncio.gather(one.ping("héllo"), two.ping("quic")) == ["héllo", "quic"]
                with pytest.raises(jetwire.Error) as caught:
                    await one.fail()
                assert caught.value == jetwire.Error("boom", code="E1")
                assert await one.ping("after") == "after"
                assert server.connections == 2
        async with await rpc.serve(ToolboxServer(), "quic://127.0.0.1:0", tls=server_tls(certs)) as server, \
                await Toolbox.connect(server.urls[0], tls=TLS(verify=False)) as client:
            assert await client.add(2, 3) == 5
            assert (await client.whoami()).startswith("quic whoami tag=") and "'127.0.0.1'" in await client.whoami()
        assert asyncio.all_tasks() == tasks_before
    run(main)


async def raw_session(certs: Certs, url: str) -> tuple[Any, EventLog]:
    """An aioquic client connection to ``url``, kept open by the caller (``await close_raw(...)``)."""
    address = rpc.parse_url(url)
    manager = raw_connect(certs, address.host, address.port)
    connection = await manager.__aenter__()
    assert isinstance(connection, EventLog)
    return manager, connection


async def read_replies(reader: asyncio.StreamReader, session: rpc.ClientSession) -> list[Any]:
    """Every event the server's bytes make, until its FIN."""
    session.receive_data(await reader.read())
    found = []
    while (event := session.next_event()) is not None:
        found.append(event)
    return found


def test_on_quic_the_first_frame_must_be_a_tversion(certs: Certs) -> None:
    """A QUIC stream whose first frame is a call gets no answer and is closed; a stream that starts
    with Tversion, on the same connection, is served (upstream's router rule).

    r[jetstream.rpc.version.first-frame] r[jetstream.rpc.transport.quic-stream]
    """
    async def main() -> None:
        spec = rpc.spec_of(Echo)
        ping = spec.by_name["ping"]
        async with await rpc.serve(EchoServer(), "quic://127.0.0.1:0", tls=server_tls(certs)) as server:
            manager, connection = await raw_session(certs, server.urls[0])
            try:
                reader, writer = await connection.create_stream()
                writer.write(spec.Tframe(1, ping.request("no handshake")).encode())
                writer.write_eof()  # were the call served, its answer would come before the server's FIN
                assert await reader.read() == b""  # closed, nothing answered

                reader, writer = await connection.create_stream()
                session = rpc.ClientSession(spec)
                writer.write(session.start())
                session.receive_data(await reader.readexactly(7 + 4 + 2 + len(Echo.VERSION)))
                assert type(session.next_event()).__name__ == "Negotiated"
                tag, frame = session.call(ping, ping.request("handshake first"))
                writer.write(frame)
                writer.write_eof()
                [reply] = await read_replies(reader, session)
                assert (reply.tag, reply.value) == (tag, "handshake first")
            finally:
                await manager.__aexit__(None, None, None)
    run(main)


def test_on_quic_calls_sent_before_the_client_fin_are_all_answered(certs: Certs) -> None:
    """The client sends calls, then FIN, at once; the server reads no more but answers every call it
    read, slow ones included, and then ends its half.

    r[jetstream.rpc.transport.quic-shutdown]
    """
    async def main() -> None:
        spec = rpc.spec_of(Toolbox)
        sleep, add = spec.by_name["sleep"], spec.by_name["add"]
        impl = ToolboxServer()
        async with await rpc.serve(impl, "quic://127.0.0.1:0", tls=server_tls(certs)) as server:
            manager, connection = await raw_session(certs, server.urls[0])
            try:
                reader, writer = await connection.create_stream()
                session = rpc.ClientSession(spec)
                writer.write(session.start())
                session.receive_data(await reader.readexactly(7 + 4 + 2 + len(Toolbox.VERSION)))
                assert type(session.next_event()).__name__ == "Negotiated"
                sent = {}
                for seconds in (0.2, 0.0, 0.1):
                    tag, frame = session.call(sleep, sleep.request(seconds))
                    sent[tag] = f"slept {seconds}"
                    writer.write(frame)
                tag, frame = session.call(add, add.request(40, 2))
                sent[tag] = 42
                writer.write(frame)
                writer.write_eof()
                replies = await read_replies(reader, session)  # to the server's FIN
                assert {reply.tag: reply.value for reply in replies} == sent
                assert impl.finished == 3 and impl.cancelled == 0
            finally:
                await manager.__aexit__(None, None, None)
    run(main)


def test_closing_a_quic_server_lets_running_calls_finish(certs: Certs) -> None:
    """server.close() stops accepting, lets the call in flight answer, then closes the QUIC
    connection; the client then sees its stream end."""
    async def main() -> None:
        tasks_before = asyncio.all_tasks()
        impl = ToolboxServer()
        server = await rpc.serve(impl, "quic://127.0.0.1:0", tls=server_tls(certs))
        client = await Toolbox.connect(server.urls[0], tls=client_tls(certs))
        running = asyncio.ensure_future(client.sleep(0.2))
        await until(lambda: impl.started == 1)
        await server.close()
        assert running.done() and running.result() == "slept 0.2"
        with pytest.raises(rpc.ConnectionClosed):
            await client.add(1, 2)
        await client.close()
        assert asyncio.all_tasks() == tasks_before
    run(main)


def test_the_docs_example_runs(certs: Certs) -> None:
    """docs/rpc-quic.md's example, with this test's certificates for its file names."""
    page = (pathlib.Path(__file__).parents[2] / "docs" / "rpc-quic.md").read_text()
    [source] = re.findall(r"^```python\n(.*?)^```", page, re.S | re.M)
    for name, path in (("server.pem", certs.certfile), ("server.key", certs.keyfile), ("ca.pem", certs.cafile)):
        assert f'"{name}"' in source
        source = source.replace(f'"{name}"', repr(path))
    module = types.ModuleType("docs_rpc_quic")
    sys.modules[module.__name__] = module
    try:
        exec(compile(source, module.__name__, "exec"), module.__dict__)
        run(module.main)
    finally:
        del sys.modules[module.__name__]


def test_a_service_over_quic_on_ipv6(certs: Certs) -> None:
    """An IPv6 address in brackets, served and called; a name that resolves (localhost) connects too."""
    async def main() -> None:
        async with await rpc.serve(EchoServer(), "quic://[::1]:0", tls=server_tls(certs)) as server:
            assert server.urls[0].startswith("quic://[::1]:")
            async with await Echo.connect(server.urls[0], tls=client_tls(certs)) as client:
                assert await client.ping("v6") == "v6"
        async with await rpc.serve(EchoServer(), "quic://localhost:0", tls=server_tls(certs)) as server:
            port = server.urls[0].rsplit(":", 1)[1]  # bound where "localhost" resolves first, as the client looks
            async with await Echo.connect(f"quic://localhost:{port}", tls=TLS(cafile=certs.cafile)) as client:
                assert await client.ping("by name") == "by name"
    run(main)


def test_many_calls_through_held_credit_all_complete(certs: Certs) -> None:
    """A server that runs 4 calls at a time stops reading, which over QUIC holds the clients'
    credit: 3 clients with 150 calls of 8 KiB each in flight (far past one window) still get every
    answer, each its own, once the server reads again."""
    async def main() -> None:
        async with await rpc.serve(EchoServer(), "quic://127.0.0.1:0", tls=server_tls(certs), max_calls=4) as server:
            clients = [await Echo.connect(server.urls[0], tls=client_tls(certs)) for _ in range(3)]
            try:
                messages = [[f"{c}:{n}:".ljust(8192, "x") for n in range(150)] for c in range(3)]
                answers = await asyncio.gather(*(
                    asyncio.gather(*(client.ping(message) for message in mine))
                    for client, mine in zip(clients, messages)))
                assert answers == messages
            finally:
                for client in clients:
                    await client.close()
    run(main)


# -- one call in flight: packets and transmits per round trip ----------------------------------

class LateEcho(Recorder):
    """Writes back what it reads two turns of the loop later, as the RPC server answers a call
    (the handler's task runs, then its done callback writes)."""

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        loop = asyncio.get_running_loop()
        loop.call_soon(loop.call_soon, self.transport.write, data)


def unacknowledged(connection: Any) -> int:
    """Packets sent on ``connection`` (a ``_ConnectionHandler``) that the peer has not acknowledged yet."""
    space = connection._quic._spaces[aioquic_tls.Epoch.ONE_RTT]
    return len(space.sent_packets)


async def ping_pong(transport: asyncio.BaseTransport, client: Recorder, round_trips: int) -> None:
    """``round_trips`` messages, each written once the echo of the one before has come back."""
    assert isinstance(transport, asyncio.Transport)
    start = len(client.data)
    for n in range(1, round_trips + 1):
        transport.write(b"%08d" % n)
        await until(lambda: len(client.data) == start + 8 * n)


def test_each_packet_of_a_ping_pong_carries_the_ack_of_the_last_one_received(certs: Certs) -> None:
    """With one message in flight, the packet that carries the data acknowledges what came in,
    instead of aioquic's ACK of its own after its delay: the ACK delay is made an hour here, so
    only the ACKs that ride with data can arrive, and every packet but the last few is acknowledged
    on both sides (without them, every one of the 30 each way would be outstanding)."""

    async def body() -> None:
        factory = Factory(LateEcho)
        listener, url = await serving(certs, factory)
        transport, client = await quic.open(url, Recorder, client_tls(certs))
        assert isinstance(client, Recorder)
        [server_connection] = listener.connections
        client_connection = transport.get_extra_info("quic_connection")
        for connection in (server_connection, client_connection):
            connection._quic._ack_delay = 3600.0
        await ping_pong(transport, client, 30)
        assert unacknowledged(client_connection) <= 3  # the last message (and a probe, should one have gone)
        assert unacknowledged(server_connection) <= 3
        transport.close()
        await client.lost.wait()
        await shut(listener)
    run(body)


def test_an_answer_written_some_turns_after_its_datagram_goes_in_that_datagrams_transmit(certs: Certs) -> None:
    """A transmit scheduled by an arriving datagram waits for the callbacks that datagram set off
    (up to a few turns of the loop): the answer written two turns later goes out in it, so each
    round trip costs the server one transmit, not an empty one first and the answer's after it."""

    async def body() -> None:
        factory = Factory(LateEcho)
        listener, url = await serving(certs, factory)
        transport, client = await quic.open(url, Recorder, client_tls(certs))
        assert isinstance(client, Recorder)
        await ping_pong(transport, client, 1)
        [server_connection] = listener.connections
        for connection in (server_connection, transport.get_extra_info("quic_connection")):
            connection._quic._ack_delay = 3600.0  # no ACK timer: every transmit is one a datagram or a write asked for
        transmits = counted_transmits(server_connection)
        await ping_pong(transport, client, 30)
        assert transmits[0] <= 30 + 3  # a probe timer or two on a slow machine; 60 when each answer had its own
        transport.close()
        await client.lost.wait()
        await shut(listener)
    run(body)


def test_on_a_loop_without_a_ready_queue_each_transmit_goes_on_the_next_turn(certs: Certs) -> None:
    """Waiting for a datagram's callbacks looks at asyncio's ready queue, which another event loop
    (uvloop) does not have: there the transmit goes on the next turn, as aioquic's own does. The
    answers then leave in transmits of their own (about 2 per round trip, not 1), and all arrive."""

    async def body() -> None:
        listener, url = await serving(certs, Factory(LateEcho))
        transport, client = await quic.open(url, Recorder, client_tls(certs))
        assert isinstance(client, Recorder)
        await ping_pong(transport, client, 1)
        [server_connection] = listener.connections
        for connection in (server_connection, transport.get_extra_info("quic_connection")):
            assert connection._ready_callbacks is not None  # asyncio's own loop has one
            connection._ready_callbacks = None
            connection._quic._ack_delay = 3600.0
        transmits = counted_transmits(server_connection)
        await ping_pong(transport, client, 30)
        assert transmits[0] >= 50
        transport.close()
        await client.lost.wait()
        await shut(listener)
    run(body)


class LateEchoes(LateEcho):
    """A LateEcho that stops after ``limit`` messages: with a LateEcho it plays ping-pong on its own."""

    def __init__(self) -> None:
        super().__init__()
        self.limit = 0
        self.done = asyncio.Event()

    async def play(self, round_trips: int) -> None:
        self.data.clear()
        self.limit = round_trips
        self.done.clear()
        self.transport.write(b"%08d" % 0)
        await self.done.wait()

    def data_received(self, data: bytes) -> None:
        if len(self.data) >= 8 * self.limit:
            self.done.set()
            return
        super().data_received(data)


def test_a_ping_pong_does_not_rearm_a_timer_per_packet(certs: Certs) -> None:
    """aioquic's deadline moves later with each packet sent (the loss detection timer counts from
    the last one): its own glue cancels asyncio's timer and arms a new one on every transmit. The
    timer armed earlier stays instead, so 30 round trips (60 transmits) arm only a few, once the
    RTT estimate has settled (it starts at 100 ms, and each deadline it shortens is armed)."""

    async def body() -> None:
        listener, url = await serving(certs, Factory(LateEcho))
        transport, client = await quic.open(url, LateEchoes, client_tls(certs))
        assert isinstance(client, LateEchoes)
        await client.play(200)
        connections = {*listener.connections, transport.get_extra_info("quic_connection")}
        loop = asyncio.get_running_loop()
        armed = 0
        call_at = loop.call_at

        def counted(when: float, callback: Callable[..., object], *args: Any, **kwargs: Any) -> asyncio.TimerHandle:
            nonlocal armed
            armed += getattr(callback, "__self__", None) in connections
            return call_at(when, callback, *args, **kwargs)

        loop.call_at = counted  # type: ignore[method-assign, assignment]
        try:
            await client.play(30)
        finally:
            del loop.call_at
        assert armed <= 10  # about 60, one per transmit, when each re-armed it
        transport.close()
        await client.lost.wait()
        await shut(listener)
    run(body)


def test_a_timer_armed_for_a_deadline_that_moved_on_arms_again_and_sends_nothing(certs: Certs) -> None:
    """The timer kept from an earlier deadline fires before aioquic's current one: it hands
    aioquic nothing (so nothing is sent for it), only arms itself for the deadline now due.
    aioquic's deadline is held far off for the test, so that a loaded machine, whose loop may
    wake late, cannot reach the real one meanwhile."""

    async def body() -> None:
        listener, url = await serving(certs, Factory(LateEcho))
        transport, client = await quic.open(url, Recorder, client_tls(certs))
        assert isinstance(client, Recorder)
        await ping_pong(transport, client, 1)
        connection = transport.get_extra_info("quic_connection")
        loop = asyncio.get_running_loop()
        quic_state = connection._quic
        far = loop.time() + 60
        handed: list[float] = []
        quic_state.get_timer = lambda: far
        quic_state.handle_timer = lambda now: handed.append(now)
        try:
            connection._arm_timer(loop.time())  # an earlier deadline, as one that has moved on since
            assert connection._wake_at < far
            for _ in range(1000):  # the early timer's turn: a few turns of the loop, however slow
                if connection._wake_at == far:
                    break
                await asyncio.sleep(0.001)
            assert handed == []
            assert connection._wake is not None and connection._wake_at == far
        finally:
            del quic_state.get_timer, quic_state.handle_timer  # aioquic's own methods again
            connection._arm_timer(quic_state.get_timer())
        transport.close()
        await client.lost.wait()
        await shut(listener)
    run(body)


def counted_transmits(connection: Any) -> list[int]:
    """Counts the transmits of one QUIC connection from now on: ``[n]``, kept up to date."""
    calls = [0]
    transmit = connection.transmit

    def counted() -> None:
        calls[0] += 1
        transmit()

    connection.transmit = counted
    return calls


def count_calls(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str,
                counted: Callable[[Any], bool] = lambda result: True) -> list[int]:
    """Counts the calls of ``owner.name`` (a function of a module or class) whose result ``counted`` accepts."""
    calls = [0]
    original = getattr(owner, name)

    def counting(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        calls[0] += bool(counted(result))
        return result

    monkeypatch.setattr(owner, name, counting)
    return calls


def test_aioquic_sender_state_is_the_one_the_transport_expects() -> None:
    """The installed aioquic keeps a sender's pending bytes where quic.py looks for them, so the
    tests below measure the fast path, not the fallback."""
    assert quic._SENDER_STATE_KNOWN


@pytest.mark.parametrize("state_known", [True, False])
def test_a_stream_with_nothing_left_is_not_asked_again_in_the_same_transmit(
        certs: Certs, monkeypatch: pytest.MonkeyPatch, state_known: bool) -> None:
    """aioquic tries one more packet after each packet it sends, and asks every stream that has
    not said it is empty for a frame. A stream whose last bytes just went says so at once: over a
    ping-pong no stream is asked for a frame it does not have (twice per transmit when it was).
    Without aioquic's sender state as quic.py knows it, the plain path runs and still delivers."""

    async def body() -> None:
        monkeypatch.setattr(quic, "_SENDER_STATE_KNOWN", state_known)
        listener, url = await serving(certs, Factory(LateEcho))
        transport, client = await quic.open(url, Recorder, client_tls(certs))
        assert isinstance(client, Recorder)
        await ping_pong(transport, client, 1)
        from aioquic.quic.stream import QuicStreamSender
        empty_asks = count_calls(monkeypatch, QuicStreamSender, "get_frame", lambda frame: frame is None)
        await ping_pong(transport, client, 30)
        if state_known:
            assert empty_asks[0] <= 2  # a probe or a retransmission on a slow machine
        else:
            assert empty_asks[0] >= 60  # each side's transmit per round trip asks once more
        transport.close()
        await client.lost.wait()
        await shut(listener)
    run(body)


@pytest.mark.parametrize("routed", [True, False])
def test_a_short_header_packet_goes_to_its_connection_without_a_second_header_parse(
        certs: Certs, monkeypatch: pytest.MonkeyPatch, routed: bool) -> None:
    """The server finds a 1-RTT packet's connection by the connection ID right after its first
    byte, and leaves the header to the connection: aioquic's server, which parses it first,
    is not asked over a ping-pong. Without aioquic's table of connections (another aioquic) the
    server goes aioquic's way, and still serves."""

    async def body() -> None:
        listener, url = await serving(certs, Factory(LateEcho))
        assert listener._socket is not None
        server = listener._socket.get_protocol()
        assert isinstance(server, quic._RoutingServer) and server._routes is not None
        if not routed:
            server._routes = None
        transport, client = await quic.open(url, Recorder, client_tls(certs))
        assert isinstance(client, Recorder)
        await ping_pong(transport, client, 1)
        import aioquic.asyncio.server
        parsed = count_calls(monkeypatch, aioquic.asyncio.server, "pull_quic_header")
        await ping_pong(transport, client, 30)
        if routed:
            assert parsed[0] == 0
        else:
            assert parsed[0] >= 30
        transport.close()
        await client.lost.wait()
        await shut(listener)
    run(body)


def test_a_long_header_or_unknown_connection_id_still_goes_aioquics_way(certs: Certs) -> None:
    """Datagrams the short-header route does not know are aioquic's to judge: a new connection's
    Initial packets (long headers) connect as before, and a short-header packet for a connection
    ID nobody holds is dropped without harm to the connection that is served."""

    async def body() -> None:
        listener, url = await serving(certs, Factory(EchoBytes))
        transport, client = await quic.open(url, Recorder, client_tls(certs))
        assert isinstance(client, Recorder)
        assert listener._socket is not None
        server = listener._socket.get_protocol()
        assert isinstance(server, quic._RoutingServer)
        server.datagram_received(b"\x40" + b"\x00" * 40, ("127.0.0.1", 9))  # no such connection ID
        server.datagram_received(b"\x40", ("127.0.0.1", 9))  # too short to hold one
        transport.write(b"still served")
        await until(lambda: bytes(client.data) == b"still served")
        transport.close()
        await client.lost.wait()
        await shut(listener)
    run(body)


# -- options: the stream window and the idle timeout -------------------------------------------

def test_the_url_query_sets_the_stream_window_and_the_idle_timeout(certs: Certs) -> None:
    """``quic://HOST:PORT?stream_window=N&idle_timeout=S`` on either end: each end announces them
    to the other in its transport parameters (what the peer may send on a stream before it
    grants more; when an idle connection closes), and holds back credit by that window."""
    async def main() -> None:
        url = "quic://127.0.0.1:0?stream_window=100000&idle_timeout=7.5"
        async with await rpc.serve(EchoServer(), url, tls=server_tls(certs)) as server:
            assert server.urls[0].startswith("quic://127.0.0.1:") and "?" not in server.urls[0]
            async with await Echo.connect(server.urls[0] + "?stream_window=70000&idle_timeout=4.25",
                                          tls=client_tls(certs)) as client:
                assert await client.ping("windows") == "windows"
                client_connection = client._jetwire_channel.transport.get_extra_info("quic_connection")
                [listener] = server.listeners
                assert isinstance(listener, quic.QuicListener)
                [server_connection] = listener.connections
                [client_stream] = client_connection._quic._streams.values()
                [server_stream] = server_connection._quic._streams.values()
                assert client_stream.max_stream_data_remote == 100000  # the server's window
                assert server_stream.max_stream_data_remote == 70000  # the client's
                assert client_connection._credit.receive_windows[0].size == 70000
                assert server_connection._credit.receive_windows[0].size == 100000
                assert client_connection._quic._remote_max_idle_timeout == 7.5
                assert server_connection._quic._remote_max_idle_timeout == 4.25
    run(main)


def test_the_defaults_are_a_256_kib_window_and_60_seconds(certs: Certs) -> None:
    async def main() -> None:
        async with await rpc.serve(EchoServer(), "quic://127.0.0.1:0", tls=server_tls(certs)) as server, \
                await Echo.connect(server.urls[0], tls=client_tls(certs)) as client:
            assert await client.ping("defaults") == "defaults"
            connection = client._jetwire_channel.transport.get_extra_info("quic_connection")
            [stream] = connection._quic._streams.values()
            assert stream.max_stream_data_remote == quic.STREAM_WINDOW == 256 * 1024
            assert connection._quic._remote_max_idle_timeout == quic.IDLE_TIMEOUT == 60.0
    run(main)


def test_an_idle_timeout_option_closes_a_quiet_connection(certs: Certs) -> None:
    """A peer that never pings (a bare aioquic client) loses its connection once the server's
    idle_timeout has passed without traffic (a wait on the event, bounded by the test's guard)."""
    async def main() -> None:
        listener = await quic.listen(Url("127.0.0.1", 0), Factory(), server_tls(certs), idle_timeout=0.2)
        port = int(listener.urls[0].rsplit(":", 1)[1])
        async with raw_connect(certs, "127.0.0.1", port) as raw:
            await raw.wait_closed()
            [terminated] = [e for e in raw.events if isinstance(e, events.ConnectionTerminated)]
            assert terminated.reason_phrase == "Idle timeout"
        await until(lambda: not listener.connections)
        await shut(listener)
    run(main)


@pytest.mark.parametrize(("query", "message"), [
    ("stream_window=0", "stream_window is a number of bytes from 1 to 2**62 - 1, not 0"),
    ("stream_window=4611686018427387904", "from 1 to 2**62 - 1"),
    ("stream_window=64k", "stream_window is a whole number of bytes, not '64k'"),
    ("idle_timeout=0", "idle_timeout is a number of seconds from 0.001, not 0.0"),
    ("idle_timeout=nan", "idle_timeout is a number of seconds from 0.001"),
    ("idle_timeout=inf", "idle_timeout is a number of seconds from 0.001"),
    ("idle_timeout=soon", "idle_timeout is a number of seconds, not 'soon'"),
    ("idle_timeout=1&idle_timeout=2", "idle_timeout is given twice"),
    ("window=1", "unknown option 'window' (known: idle_timeout, stream_window)"),
    ("stream_window", "options are name=value pairs"),
])
def test_bad_options_are_refused_with_the_reason(certs: Certs, query: str, message: str) -> None:
    async def main() -> None:
        for attempt in (rpc.serve(EchoServer(), f"quic://127.0.0.1:0?{query}", tls=server_tls(certs)),
                        Echo.connect(f"quic://127.0.0.1:9?{query}", tls=client_tls(certs))):
            with pytest.raises(UnsupportedURL, match=re.escape(message)):
                await attempt
    run(main)


def test_the_keyword_options_are_checked_too(certs: Certs) -> None:
    async def main() -> None:
        with pytest.raises(UnsupportedURL, match="stream_window"):
            await quic.listen(Url("127.0.0.1", 0), Factory(), server_tls(certs), stream_window=True)
        with pytest.raises(UnsupportedURL, match="idle_timeout"):
            await quic.open(Url("127.0.0.1", 9), Recorder, client_tls(certs), idle_timeout=-1.0)
    run(main)


@pytest.mark.parametrize("url", ["tcp://127.0.0.1:4000?idle_timeout=1", "unix:///tmp/x.sock?stream_window=1"])
def test_tcp_and_unix_urls_take_no_options(url: str) -> None:
    with pytest.raises(UnsupportedURL, match="takes no options"):
        rpc.parse_url(url)


def test_a_ca_file_that_cannot_be_read_fails_the_connect_at_once(certs: Certs, tmp_path: pathlib.Path) -> None:
    """As over TCP (ssl's own errors), not from inside aioquic's handshake, which left the
    connect waiting for its timeout."""
    not_pem = tmp_path / "notes.txt"
    not_pem.write_text("not a certificate\n")

    async def main() -> None:
        listener, url = await serving(certs, Factory())
        with pytest.raises(ssl.SSLError):
            await Echo.connect(f"quic://127.0.0.1:{url.port}", tls=TLS(cafile=str(not_pem), server_name="localhost"))
        with pytest.raises(FileNotFoundError):
            await quic.open(url, Recorder, TLS(cafile=str(tmp_path / "missing.pem")))
        assert listener.connections == set()  # no handshake was even begun
        await shut(listener)
    run(main)

"""``examples/echo_server.py`` and ``examples/echo_client.py``, run as a user runs them: as
processes, over TCP, against each other and against stand-ins that answer as upstream's
TypeScript server does (rpc.md §5.3: the Rversion's tag is always 0xFFFF, its msize the
smaller of 65536 and the client's, its version the client's own string or "unknown").

The bytes a TypeScript ``EchoHttpClient`` sends are written out here as the spec gives them
(a Tversion with tag 0xFFFF and msize 65536, then one call at a time from tag 1), so the
server's answers are checked byte for byte without node.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import sys

import pytest
from echo_processes import (
    EXAMPLES,
    EXPECTED_CLIENT_OUTPUT,
    EchoHttp,
    Radd,
    Rframe,
    Rping,
    Tadd,
    Tframe,
    Tping,
    environment,
    read_frame,
    run,
    run_client,
    start_server,
    stop_server,
)

import jetwire
from jetwire import rpc
from jetwire.markers import i32
from jetwire.rpc.protocol import NOTAG, Rversion, Tversion

TS_VERSION = "rs.jetstream.proto/echohttp/15.0.0+bfd7d20e"
"""The version string of upstream's generated TypeScript EchoHttp client."""


def test_the_client_gets_every_answer_from_the_server():
    """The two examples against each other: every check passes, the client exits 0, and the
    server stops on SIGTERM with status 0."""
    async def body() -> None:
        server, address = await start_server()
        try:
            code, lines, err = await run_client(address)
        finally:
            server_code, _, server_err = await stop_server(server)
        assert code == 0, (lines, err)
        assert lines[0].startswith(f"connected to {address} as rs.jetstream.proto/echohttp/15.0.0+")
        assert lines[1:] == EXPECTED_CLIENT_OUTPUT
        assert server_code == 0, server_err

    run(body)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_the_server_stops_cleanly_on_a_signal(signum):
    """Ctrl-C or SIGTERM: the server closes its listener and exits 0, with nothing on stderr
    (no traceback), after serving a client that is still connected when the signal arrives."""
    async def body() -> None:
        server, address = await start_server()
        host, port = address.rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(Tframe(NOTAG, Tversion(65536, TS_VERSION)).encode())
        await read_frame(reader)
        server.send_signal(signum)
        assert await reader.read() == b""  # the idle connection is closed, not left hanging
        writer.close()
        out, err = await server.communicate()
        assert server.returncode == 0
        assert err == b""
        assert out == b""  # the "listening" line was read by start_server

    run(body)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_client_fails_when_nothing_listens():
    async def body() -> None:
        code, lines, err = await run_client(f"127.0.0.1:{free_port()}")
        assert code == 1
        assert lines == []
        assert err.startswith("FAILED: ConnectionRefusedError")

    run(body)


def test_the_server_fails_on_an_address_in_use():
    async def body() -> None:
        server, address = await start_server()
        try:
            second = await asyncio.create_subprocess_exec(
                sys.executable, str(EXAMPLES / "echo_server.py"), "--listen", address,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=environment())
            out, err = await second.communicate()
        finally:
            await stop_server(server)
        assert second.returncode == 1
        assert out == b""
        assert b"cannot listen on" in err

    run(body)


class WrongEcho(EchoHttp):
    async def ping(self, message: str) -> str:
        return message.upper()

    async def add(self, a: i32, b: i32) -> i32:
        if a == 2147483646:
            raise jetwire.Error("no", code="test::refused")
        return a + b


def test_the_client_exits_1_on_a_wrong_answer_or_an_error():
    """A server whose answers are wrong: each wrong one is shown with what was expected, an
    error as the jetwire.Error received, and the client exits 1."""
    async def body() -> None:
        async with await rpc.serve(WrongEcho(), "tcp://127.0.0.1:0") as server:
            code, lines, _ = await run_client(server.urls[0].removeprefix("tcp://"))
        assert code == 1
        assert "ping('hello') = 'HELLO'" in lines
        assert "  expected 'hello'" in lines
        assert "add(2147483646, 1) raised Error(message='no', code='test::refused', help=None, url=None, " \
               "backtrace=Backtrace(intern_table=('',), frames=()))" in lines
        assert lines[-1] == "FAILED: 3 of 7 checks"

    run(body)


@rpc.service(version="1.0.0")
class Other(rpc.Service):
    async def ping(self, message: str) -> str:
        return message


def test_the_client_exits_1_when_the_server_serves_another_service():
    """r[jetstream.rpc.version.client-reject]: the server answers "unknown"; the client sends no
    call and exits 1, saying why."""
    async def body() -> None:
        async with await rpc.serve(Other(), "tcp://127.0.0.1:0") as server:
            code, lines, err = await run_client(server.urls[0].removeprefix("tcp://"))
            assert server.calls == 0
        assert code == 1
        assert lines == []
        assert err.startswith("FAILED: VersionError")

    run(body)


# ---------------------------------------------------------------------------------------------
# The server, as upstream's TypeScript client talks to it

def test_the_server_answers_the_bytes_of_a_typescript_client():
    """r[jetstream.rpc.version.reply-tag] r[jetstream.rpc.version.handshake]: the Tversion of
    upstream's TS EchoHttpClient (tag 0xFFFF, msize 65536, its own version string) is answered
    with tag 0xFFFF, msize 65536 and that string; its calls (ping, then add, tag 1 each time)
    with their answers; an add that overflows i32 with an error frame; and when the client
    closes its side, the server closes its own."""
    async def body() -> None:
        server, address = await start_server()
        try:
            host, port = address.rsplit(":", 1)
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(Tframe(NOTAG, Tversion(65536, TS_VERSION)).encode())
            assert await read_frame(reader) == Rframe(NOTAG, Rversion(65536, TS_VERSION)).encode()
            exchanges = [
                (Tping(message="hello"), Rping(value="hello")),
                (Tping(message="héllo"), Rping(value="héllo")),
                (Tadd(a=2, b=3), Radd(value=5)),
                (Tadd(a=-7, b=3), Radd(value=-4)),
                (Tadd(a=2147483647, b=1),
                 jetwire.Error("2147483647 + 1 does not fit in an i32", code="echohttp::overflow")),
            ]
            for request, answer in exchanges:
                writer.write(Tframe(1, request).encode())
                assert await read_frame(reader) == Rframe(1, answer).encode()
            writer.write_eof()
            assert await reader.read() == b""
            writer.close()
        finally:
            code, _, err = await stop_server(server)
        assert code == 0, err

    run(body)


# ---------------------------------------------------------------------------------------------
# The client, against a server that answers as upstream's TypeScript one does

async def ts_style_server(mode: str, seen: list[bytes]) -> asyncio.Server:
    """Answers the first frame as upstream's TS ``acceptVersion`` does, then each call as its
    ``serverLoop`` with EchoHttp's handler would (``mode`` "accept"); or refuses the version
    ("refuse"); or answers the handshake and then nothing ("mute after handshake"); or nothing
    at all ("mute")."""
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first = Tframe.decode(await read_frame(reader))
        seen.append(first.encode())
        assert isinstance(first.msg, Tversion)
        if mode == "mute":
            await reader.read()  # until the client gives up and closes
            writer.close()
            return
        name_known = first.msg.version.rsplit("/", 1)[0] == "rs.jetstream.proto/echohttp"
        version = first.msg.version if mode != "refuse" and name_known else "unknown"
        writer.write(Rframe(NOTAG, Rversion(min(65536, first.msg.msize), version)).encode())
        while version != "unknown":
            try:
                frame = Tframe.decode(await read_frame(reader))
            except (asyncio.IncompleteReadError, ConnectionResetError):  # a client closing with calls in flight resets
                break
            msg = frame.msg
            answer = Rping(value=msg.message) if isinstance(msg, Tping) else Radd(value=msg.a + msg.b)
            if mode == "accept":
                writer.write(Rframe(frame.tag, answer).encode())
        writer.close()

    return await asyncio.start_server(serve, "127.0.0.1", 0)


@pytest.mark.parametrize(("mode", "code", "failure"), [
    ("accept", 0, ""),
    ("refuse", 1, "FAILED: VersionError"),
    ("mute after handshake", 1, "FAILED: CallTimeout"),
    ("mute", 1, "FAILED: ConnectTimeout"),  # connect_timeout past: a ConnectTimeout (a CallTimeout)
])
def test_the_client_against_a_typescript_style_server(mode, code, failure):
    """r[jetstream.rpc.version.client-tag] r[jetstream.rpc.version.client-reject]: the client's
    first frame is a Tversion with tag 0xFFFF naming echohttp; against a TS-style server
    (Rversion tag 0xFFFF, msize 65536) every check passes; when it answers "unknown", or never
    answers (``--timeout`` bounds the handshake and each call), the client exits 1 saying why."""
    async def body() -> None:
        seen: list[bytes] = []
        server = await ts_style_server(mode, seen)
        async with server:
            port = server.sockets[0].getsockname()[1]
            got, lines, err = await run_client(f"127.0.0.1:{port}", "--timeout", "0.5")
        (first,) = seen
        frame = Tframe.decode(first)
        assert frame.tag == NOTAG
        assert frame.msg.version == EchoHttp.VERSION
        assert got == code, (lines, err)
        if code == 0:
            assert lines[1:] == EXPECTED_CLIENT_OUTPUT
        else:
            assert err.startswith(failure)
            handshaken = mode == "mute after handshake"
            assert [line.split(" as ")[0] for line in lines] == ([f"connected to 127.0.0.1:{port}"] if handshaken else [])

    run(body)


@pytest.mark.parametrize("script", ["echo_server.py --listen", "echo_client.py --connect"])
@pytest.mark.parametrize("address", ["nonsense", "127.0.0.1", "127.0.0.1:http"])
def test_an_address_that_is_not_host_port_is_refused(script, address):
    async def body() -> None:
        name, option = script.split()
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(EXAMPLES / name), option, address,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=environment())
        out, err = await process.communicate()
        assert process.returncode == 2  # argparse's usage error
        assert out == b""
        assert f"{option}: {address!r} is not HOST:PORT".encode() in err

    run(body)


# -- over QUIC ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def self_signed(tmp_path_factory):
    """A self-signed certificate for localhost and 127.0.0.1 and its key, as PEM files: the server's
    certificate, and the one thing its clients trust (``--cafile``)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .sign(key, hashes.SHA256()))
    directory = tmp_path_factory.mktemp("echo-quic")
    certfile, keyfile = directory / "server.pem", directory / "server.key"
    certfile.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return str(certfile), str(keyfile)


def test_over_quic_the_client_gets_every_answer_from_the_server(self_signed):
    """``--quic``: the server with its certificate and key, the client trusting that certificate
    (``--cafile``) under the name it carries (``--server-name``): every check passes, both exit 0.

    r[jetstream.rpc.transport.quic-alpn]
    """
    certfile, keyfile = self_signed

    async def body() -> None:
        server, address = await start_server("127.0.0.1:0", "--quic", "--cert", certfile, "--key", keyfile)
        try:
            code, lines, err = await run_client(address, "--quic", "--cafile", certfile, "--server-name", "localhost")
        finally:
            server_code, _, server_err = await stop_server(server)
        assert code == 0, (lines, err)
        assert lines[0].startswith(f"connected to {address} over QUIC as rs.jetstream.proto/echohttp/15.0.0+")
        assert lines[1:] == EXPECTED_CLIENT_OUTPUT
        assert server_code == 0, server_err

    run(body)


def test_over_quic_the_client_refuses_a_certificate_it_does_not_trust(self_signed):
    """Without ``--cafile`` the self-signed certificate is checked against the system's CAs, and
    fails the handshake: exit 1, the reason on stderr, no call made."""
    certfile, keyfile = self_signed

    async def body() -> None:
        server, address = await start_server("127.0.0.1:0", "--quic", "--cert", certfile, "--key", keyfile)
        try:
            code, lines, err = await run_client(address, "--quic", "--server-name", "localhost")
        finally:
            server_code, _, server_err = await stop_server(server)
        assert code == 1
        assert lines == []
        assert f"FAILED: ConnectionError: QUIC handshake with quic://{address} failed" in err
        assert server_code == 0, server_err

    run(body)


@pytest.mark.parametrize(("script", "arguments", "complaint"), [
    ("echo_server.py", ["--quic"], "--quic needs --cert"),
    ("echo_server.py", ["--cert", "server.pem"], "--cert and --key are for --quic"),
    ("echo_client.py", ["--cafile", "ca.pem"], "--cafile and --server-name are for --quic"),
])
def test_quic_options_without_their_mode_are_usage_errors(script, arguments, complaint):
    async def body() -> None:
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(EXAMPLES / script), *arguments,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=environment())
        out, err = await process.communicate()
        assert process.returncode == 2  # argparse's usage error
        assert out == b""
        assert complaint.encode() in err

    run(body)

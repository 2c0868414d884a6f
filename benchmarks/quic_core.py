"""aioquic alone, as jetwire's QUIC transport drives it, for ``benchmarks/rpc_instructions.py --quic``:
two ``QuicConnection`` objects hand each other their datagrams directly (no socket, no event
loop, no RPC), one small message each way per round trip, the ACK owed riding with the data as
``jetwire.rpc.quic`` makes it. What a jetwire-quic round trip costs above this is asyncio, the
stream transport and the RPC shell.

    python -m benchmarks.quic_core [ROUND_TRIPS]
"""

from __future__ import annotations

import ssl
import sys
import tempfile
import time
from pathlib import Path

from aioquic import tls
from aioquic.buffer import Buffer
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.packet import pull_quic_header

# About the sizes of a square() call's frame and its answer's.
REQUEST = b"q" * 24
ANSWER = b"a" * 40
CLIENT_ADDRESS = ("127.0.0.1", 40000)
SERVER_ADDRESS = ("127.0.0.1", 4433)


def _deliver(sender: QuicConnection, receiver: QuicConnection, sender_address: tuple[str, int]) -> int:
    """Hands every datagram ``sender`` has to ``receiver``; the events it makes are drained. The datagrams' count."""
    now = time.monotonic()
    datagrams = sender.datagrams_to_send(now=now)
    for data, _ in datagrams:
        receiver.receive_datagram(data, sender_address, now=now)
    while receiver.next_event() is not None:
        pass
    return len(datagrams)


def _ack_rides(connection: QuicConnection) -> None:
    space = connection._spaces[tls.Epoch.ONE_RTT]
    if space.ack_at is not None:
        space.ack_at = time.monotonic()


def connected_pair(certificates: Path) -> tuple[QuicConnection, QuicConnection]:
    """A client and a server connection, handshake done, with a certificate made in ``certificates``."""
    from benchmarks.rpc import make_certificate

    certfile, keyfile = make_certificate(certificates)
    client = QuicConnection(configuration=QuicConfiguration(
        is_client=True, alpn_protocols=["jetstream"], verify_mode=ssl.CERT_NONE, server_name="localhost"))
    server_configuration = QuicConfiguration(is_client=False, alpn_protocols=["jetstream"])
    server_configuration.load_cert_chain(str(certfile), str(keyfile))
    client.connect(SERVER_ADDRESS, now=time.monotonic())
    first = client.datagrams_to_send(now=time.monotonic())
    header = pull_quic_header(Buffer(data=first[0][0]), host_cid_length=8)
    server = QuicConnection(configuration=server_configuration,
                            original_destination_connection_id=header.destination_cid)
    for data, _ in first:
        server.receive_datagram(data, CLIENT_ADDRESS, now=time.monotonic())
    for _ in range(10):  # the handshake takes a few flights
        _deliver(server, client, SERVER_ADDRESS)
        _deliver(client, server, CLIENT_ADDRESS)
    return client, server


def round_trips(client: QuicConnection, server: QuicConnection, count: int) -> None:
    stream_id = client.get_next_available_stream_id()
    for _ in range(count):
        client.send_stream_data(stream_id, REQUEST)
        _ack_rides(client)
        if _deliver(client, server, CLIENT_ADDRESS) != 1:
            raise SystemExit("a request took more than one datagram")
        client.get_timer()
        server.send_stream_data(stream_id, ANSWER)
        _ack_rides(server)
        if _deliver(server, client, SERVER_ADDRESS) != 1:
            raise SystemExit("an answer took more than one datagram")
        server.get_timer()


def main(count: int) -> None:
    """``count`` round trips on a new pair; prints nothing (what callgrind counts)."""
    with tempfile.TemporaryDirectory() as directory:
        client, server = connected_pair(Path(directory))
    round_trips(client, server, count)


if __name__ == "__main__":
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    with tempfile.TemporaryDirectory() as where:
        pair = connected_pair(Path(where))
    started = time.perf_counter()
    round_trips(*pair, total)
    print(f"{(time.perf_counter() - started) / total * 1e6:.1f} µs per round trip, both ends")

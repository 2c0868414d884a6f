"""QUIC for jetwire.rpc, through aioquic (the optional extra ``jetwire[quic]``).

Each bidirectional stream a client opens is one session (spec §9.1): the server gives it a new
``asyncio.Protocol`` from its factory and drives it through a ``QuicStreamTransport``, which
behaves as a TCP transport does (``write``, ``write_eof``, ``close``, ``pause_reading``,
``pause_writing``...), so the RPC shell runs on it unchanged. The client opens one connection
and one stream per ``open()``. ALPN is ``jetstream`` both ways; unidirectional streams and
streams the server would open are refused.

Backpressure. aioquic grants the peer more credit on a stream as data *arrives* (it doubles the
window once half of it has come in), whatever the application has done with it, so a paused
reader alone would not stop a sender. The connection class here grants stream credit from what
the stream's protocol has *consumed* instead: the peer may send at most ``stream_window`` bytes
beyond what ``data_received`` was given, so a paused stream buffers at most that much, and a
peer that sends more breaks QUIC flow control and loses its connection. Connection-wide credit
is left to aioquic; what one connection can make a server buffer is bounded by the streams it
may have open at once times ``stream_window``.

Writing: bytes handed to ``write`` are kept by aioquic until the peer acknowledges them;
``get_write_buffer_size()`` counts them, and ``pause_writing``/``resume_writing`` follow it
with asyncio's default high and low water marks.
"""

from __future__ import annotations

import asyncio
import functools
import math
import socket
import ssl
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qsl

from aioquic import tls as aioquic_tls
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.asyncio.server import QuicServer
from aioquic.quic import events
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.stream import QuicStreamSender

from .certificates import NO_CERTIFICATE, PeerCertificate, from_x509
from .transports import TLS, Address, UnsupportedURL

if TYPE_CHECKING:
    from aioquic.quic.packet_builder import QuicPacketBuilder
    from aioquic.quic.recovery import QuicPacketSpace
    from aioquic.quic.stream import QuicStream

__all__ = ["ALPN", "STREAM_WINDOW", "IDLE_TIMEOUT", "QUIC", "options", "QuicStreamTransport", "QuicListener", "listen",
           "open"]

ALPN = "jetstream"
"""The one application protocol a jetwire QUIC endpoint offers and accepts (r[jetstream.rpc.transport.quic-alpn])."""

STREAM_WINDOW = 256 * 1024
"""Bytes a peer may send on one stream beyond what its protocol has consumed."""

# Application error codes on RESET_STREAM/STOP_SENDING. The spec names none; 0 says "done, no
# error" (closing a half we no longer read), the others say why a stream was cut.
CODE_DONE = 0x0
CODE_REFUSED = 0x1  # a stream this endpoint does not serve (unidirectional, or opened after close)
CODE_ABORTED = 0x2  # abort() or a protocol callback that raised
# CRYPTO_ERROR (0x100) + TLS alert no_application_protocol (120), as RFC 9001 §4.8 maps alerts.
CODE_NO_APPLICATION_PROTOCOL = 0x178
CODE_CRYPTO_ERROR = 0x100

# How long a closing connection waits for the peer to acknowledge what is still in flight (the
# last responses, the FIN) before it closes regardless.
DRAIN_TIMEOUT = 5.0

# How many turns of the event loop a transmit waits at most for the callbacks ahead of it (see
# _ConnectionHandler._transmit_soon).
SETTLE_TURNS = 3

# A connection nothing is sent on for this long is closed by either end (the shorter of the two
# ends' values counts: quinn's default is 30 s). A client pings three times per idle timeout,
# so that a connection held for later calls outlives quiet periods, as gRPC's keepalive does.
IDLE_TIMEOUT = 60.0

MAX_STREAM_WINDOW = 2**62 - 1  # QUIC's largest variable-length integer, so its largest flow-control limit


ProtocolFactory = Callable[[], asyncio.Protocol]


# -- receive credit ----------------------------------------------------------------------------

class _ReceiveWindow:
    """How far the peer may send on one stream: what the protocol consumed, plus ``size``."""

    __slots__ = ("consumed", "granted", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self.consumed = 0
        self.granted = size

    def limit(self) -> int:
        target = self.consumed + self.size
        # Re-grant once half a window is free, not on every byte: one MAX_STREAM_DATA frame per
        # half window consumed, as aioquic itself paces them.
        if target - self.granted >= self.size // 2:
            self.granted = target
        return self.granted


def _sender_state_known() -> bool:
    """Whether aioquic's stream sender keeps what it still has to send as this module expects:
    ``_pending``, a RangeSet of byte ranges, and ``_pending_eof``, a FIN still owed (1.2 to 1.7
    do). Another aioquic goes the plain way."""
    try:
        sender = QuicStreamSender(stream_id=0, writable=True)
        return len(sender._pending) == 0 and sender._pending_eof is False
    except Exception:  # any shape this module does not know
        return False


_SENDER_STATE_KNOWN = _sender_state_known()


class _CreditHeldConnection(QuicConnection):
    """An aioquic connection that raises a stream's receive limit from what its reader consumed.

    The server side gets its connections from aioquic's ``QuicServer``, so the handler switches
    their class to this one (it adds no state of its own: ``receive_windows`` is the handler's).
    """

    receive_windows: dict[int, _ReceiveWindow]

    def _write_stream_limits(self, builder: QuicPacketBuilder, space: QuicPacketSpace, stream: QuicStream) -> None:
        window = None if stream.stream_id is None else self.receive_windows.get(stream.stream_id)
        if window is None:
            super()._write_stream_limits(builder, space, stream)
            return
        limit = window.limit()
        if limit > stream.max_stream_data_local:
            stream.max_stream_data_local = limit
        elif stream.max_stream_data_local_sent == stream.max_stream_data_local:
            return  # no new credit, and the last grant was not lost: this runs for every packet
        # aioquic doubles the limit whenever half of it has arrived; hiding what arrived leaves
        # it only the sending of the limit set above (and its retransmission when lost).
        arrived = stream.receiver.highest_offset
        stream.receiver.highest_offset = 0
        try:
            super()._write_stream_limits(builder, space, stream)
        finally:
            stream.receiver.highest_offset = arrived


    def _write_stream_frame(self, builder: QuicPacketBuilder, space: QuicPacketSpace, stream: QuicStream,
                            max_offset: int) -> int:
        used = super()._write_stream_frame(builder, space, stream, max_offset)
        # aioquic learns that a stream has nothing left to send only by asking it again, and
        # _write_application asks again in one more packet attempt after every packet sent. Said
        # now, that attempt passes the stream by. The flag is the one aioquic sets itself on that
        # next ask (nothing pending, no FIN owed) and clears on a write or a loss.
        sender = stream.sender
        if _SENDER_STATE_KNOWN and not len(sender._pending) and not sender._pending_eof:
            sender.buffer_is_empty = True
        return used


def _ask_for_a_client_certificate(quic: QuicConnection) -> None:
    """aioquic's server sends a CertificateRequest only when a flag of its TLS context is set,
    which it keeps private (as a test feature), and that context is made at the connection's
    first datagram: set the flag right after."""
    make_tls = quic._initialize

    def make_tls_asking(peer_cid: bytes) -> None:
        make_tls(peer_cid)
        quic.tls._request_client_certificate = True

    quic._initialize = make_tls_asking  # type: ignore[method-assign]


# -- one stream as an asyncio transport --------------------------------------------------------

class QuicStreamTransport(asyncio.Transport):
    """One bidirectional QUIC stream, driving an ``asyncio.Protocol`` as a TCP transport would.

    The peer's FIN is ``eof_received()``; when that returns a true value the sending half stays
    open (answers still go out) until ``close()``, which sends our FIN. ``close()`` before the
    peer's FIN also asks the peer to stop sending (STOP_SENDING); ``abort()`` resets both
    halves. ``connection_lost`` follows, with ``None`` after a close or abort, or a
    ``ConnectionResetError`` when the peer reset the stream or the connection ended abnormally:
    on the next loop iteration on a server, once the connection is closed on a client (which
    has a connection of its own per stream).
    """

    def __init__(self, connection: _ConnectionHandler, stream_id: int, protocol: asyncio.Protocol,
                 window: _ReceiveWindow) -> None:
        super().__init__()
        self._connection = connection
        self._stream_id = stream_id
        self._protocol = protocol
        self._window = window
        self._loop = asyncio.get_running_loop()
        self._pending = bytearray()  # arrived while reading was paused
        self._pending_eof = False
        self._reading = True
        self._drain_scheduled = False
        self._peer_finished = False  # the peer's FIN (or reset) arrived: nothing more to read
        self._eof_written = False
        self._closing = False
        self._lost = False
        self._writing_paused = False
        self._write_stopped = False  # the peer sent STOP_SENDING: aioquic reset our half
        self._high_water = 64 * 1024
        self._low_water = 16 * 1024

    # -- asyncio.BaseTransport

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "quic_stream_id":
            return self._stream_id
        if name == "peername":
            return self._connection.peer_address
        if name == "sockname":
            return self._connection.local_address
        if name == "alpn_protocol":
            return self._connection.alpn_protocol
        if name == "peer_certificate":  # a cryptography x509.Certificate, not ssl's "peercert" dict
            return self._connection.peer_certificate
        if name == "quic_connection":
            return self._connection
        if name == "verified_peer_certificate":  # (the ssl-style dict, DER) for rpc.Context
            return self._connection.verified_peer_certificate
        return default

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        """Ends our half with a FIN after what was written; stops reading (STOP_SENDING if the peer still sends)."""
        if self._closing:
            return
        self._closing = True
        self._pending.clear()
        self._pending_eof = False
        if not self._eof_written and not self._write_stopped:
            self._connection.send(self._stream_id, b"", end_stream=True)
        self._eof_written = True
        if not self._peer_finished:
            self._connection.stop_receiving(self._stream_id, CODE_DONE)
        self._end(None)

    def abort(self) -> None:
        """Resets both halves at once: what was written and not yet acknowledged may never arrive."""
        if self._lost:
            return
        self._closing = True
        self._pending.clear()
        self._connection.reset_sending(self._stream_id, CODE_ABORTED)
        if not self._peer_finished:
            self._connection.stop_receiving(self._stream_id, CODE_ABORTED)
        self._end(None)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        assert isinstance(protocol, asyncio.Protocol)
        self._protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    # -- asyncio.ReadTransport

    def is_reading(self) -> bool:
        return self._reading and not self._closing

    def pause_reading(self) -> None:
        self._reading = False

    def get_read_buffer_size(self) -> int:
        """Bytes that arrived while reading was paused and wait for ``resume_reading()``: at most the stream window."""
        return len(self._pending)

    def resume_reading(self) -> None:
        if self._reading:
            return
        self._reading = True
        # Not from inside this call, as a socket transport would not either: the protocol may
        # resume from a callback that does not expect data_received to run again under it.
        if (self._pending or self._pending_eof) and not self._drain_scheduled:
            self._drain_scheduled = True
            self._loop.call_soon(self._deliver_pending)

    # -- asyncio.WriteTransport

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._eof_written and not self._closing:
            raise RuntimeError("Cannot call write() after write_eof()")
        if self._closing or self._write_stopped or not data:
            return  # as a socket transport drops what is written once the connection is closed
        self._connection.send(self._stream_id, bytes(data))
        self._check_write_buffer()

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        self.write(b"".join(list_of_data))

    def write_eof(self) -> None:
        if self._eof_written or self._closing:
            return
        self._eof_written = True
        if not self._write_stopped:
            self._connection.send(self._stream_id, b"", end_stream=True)

    def can_write_eof(self) -> bool:
        return True

    def get_write_buffer_size(self) -> int:
        return self._connection.unacknowledged(self._stream_id)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (self._low_water, self._high_water)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        if high is None:
            high = 64 * 1024 if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self._high_water, self._low_water = high, low
        self._check_write_buffer()

    # -- fed by the connection handler

    def _feed(self, data: bytes, fin: bool) -> None:
        if self._closing:
            return
        if fin:
            self._peer_finished = True
        if self._reading and not self._pending and not self._pending_eof:
            if data:
                self._deliver(data)
            if fin and not self._closing:
                self._deliver_eof()
            return
        self._pending += data
        self._pending_eof = self._pending_eof or fin

    def _deliver_pending(self) -> None:
        self._drain_scheduled = False
        if not self._reading or self._closing:
            return
        data = bytes(self._pending)
        self._pending.clear()
        eof, self._pending_eof = self._pending_eof, False
        if data:
            self._deliver(data)
            self._connection.credit_changed()
        if eof and not self._closing:
            self._deliver_eof()

    def _deliver(self, data: bytes) -> None:
        self._window.consumed += len(data)
        self._call(self._protocol.data_received, data)

    def _deliver_eof(self) -> None:
        keep_open = self._call(self._protocol.eof_received)
        if not keep_open and not self._closing:
            self.close()

    def _peer_reset(self, reason: str) -> None:
        """The peer reset its half: what it sent is cut short, so the session cannot go on."""
        if self._lost:
            return
        self._closing = self._peer_finished = True
        self._pending.clear()
        self._connection.reset_sending(self._stream_id, CODE_ABORTED)
        self._end(ConnectionResetError(reason))

    def _peer_stopped_reading(self, reason: str) -> None:
        """The peer will read nothing more (it closed its end): what we write from now on is dropped,
        while what the peer still sends us, up to its FIN, is delivered as before."""
        self._write_stopped = True
        if self._peer_finished and not self._pending_eof and not self._lost:
            # Nothing is left to read either, and what the protocol kept its half open to send
            # (it returned true from eof_received) can no longer arrive.
            self._closing = True
            self._end(ConnectionResetError(reason))

    def _connection_ended(self, error: Exception | None) -> None:
        if not self._lost:
            self._closing = True
            self._lost = True
            self._call(self._protocol.connection_lost, error)

    def _check_write_buffer(self) -> None:
        if self._lost:
            return
        size = self.get_write_buffer_size()
        if not self._writing_paused and size > self._high_water:
            self._writing_paused = True
            self._connection.write_paused.add(self)
            self._call(self._protocol.pause_writing)
        elif self._writing_paused and size <= self._low_water:
            self._writing_paused = False
            self._connection.write_paused.discard(self)
            self._call(self._protocol.resume_writing)

    def _end(self, error: Exception | None) -> None:
        """Leaves the connection's books now, and tells the protocol on the next loop iteration, or,
        on a client, once the connection has closed and released its socket (as a TCP transport's
        connection_lost comes once its socket is closed)."""
        self._connection.forget(self, error)

    def _call(self, callback: Callable[..., Any], *args: Any) -> Any:
        # A protocol that raises must not break aioquic's event loop over the other streams:
        # report it as asyncio reports a raising protocol, and drop this stream.
        try:
            return callback(*args)
        except Exception as error:  # handed to the loop's exception handler
            self._loop.call_exception_handler({
                "message": f"QUIC stream {self._stream_id}: protocol callback {callback.__qualname__} raised",
                "exception": error, "transport": self, "protocol": self._protocol,
            })
            if not self._lost:
                self.abort()
            return None


# -- one connection ----------------------------------------------------------------------------

def _can_send(stream: QuicStream) -> bool:
    """Whether our half of ``stream`` is neither reset (by us, or for the peer's STOP_SENDING) nor
    finished. aioquic refuses data after a reset, and a second reset (1.2 asserts, later versions
    raise or ignore), so both are checked here first."""
    sender = stream.sender
    return sender._reset_error_code is None and not sender.is_finished


class _ConnectionHandler(QuicConnectionProtocol):
    """The asyncio side of one QUIC connection: it turns streams into ``QuicStreamTransport``s.

    A server connection (``accept`` set) gives each bidirectional stream the client opens a
    protocol of its own; a client connection serves only the stream ``open()`` made on it. Once
    it has no stream left and should close (a client's stream ended; the listener closed), it
    waits for the peer to acknowledge what is still in flight, then closes.
    """

    def __init__(self, quic: QuicConnection, stream_handler: Any = None, *,
                 accept: ProtocolFactory | None = None, listener: QuicListener | None = None,
                 stream_window: int = STREAM_WINDOW, client_cafile: str | None = None) -> None:
        super().__init__(quic)
        self._client_cafile = client_cafile
        self._client_trusted = client_cafile is None
        if client_cafile is not None:
            _ask_for_a_client_certificate(quic)
        quic.__class__ = _CreditHeldConnection
        assert isinstance(quic, _CreditHeldConnection)
        quic.receive_windows = {}
        self._credit = quic
        self._accept = accept
        self._listener = listener
        self._stream_window = stream_window
        self._live: dict[int, QuicStreamTransport] = {}
        self.write_paused: set[QuicStreamTransport] = set()  # those to resume as acknowledgements come
        self._ended: set[int] = set()  # streams served and finished: later frames for them are ignored
        self._ended_limit = 64
        self._should_close = False
        self._drain_timer: asyncio.TimerHandle | None = None
        self._keepalive_timer: asyncio.TimerHandle | None = None
        self._owns_socket = accept is None
        self._lost_at_close: list[tuple[QuicStreamTransport, Exception | None]] = []
        self.peer_address: Any = None
        self.alpn_protocol: str | None = None
        self.verified_peer_certificate: PeerCertificate = NO_CERTIFICATE  # set once the chain checks out
        self.termination: events.ConnectionTerminated | None = None
        self._refused: Exception | None = None
        self._data_written = False  # stream data since the last transmit: the ACK owed rides with it
        self._spaces_seen: dict[aioquic_tls.Epoch, QuicPacketSpace] | None = None  # (see _let_the_owed_ack_ride)
        self._application_space: QuicPacketSpace | None = None
        # asyncio's deque of ready callbacks, private to its event loops (see _transmit_when_settled)
        self._ready_callbacks: Any = getattr(self._loop, "_ready", None)
        self._wake: asyncio.TimerHandle | None = None  # aioquic's timer (see _arm_timer)
        self._wake_at = 0.0
        if listener is not None:
            listener.connections.add(self)

    @property
    def peer_certificate(self) -> Any:
        """The certificate the peer presented (the server's, seen from a client), or None."""
        return getattr(self._quic.tls, "_peer_certificate", None)

    @property
    def local_address(self) -> Any:
        return None if self._transport is None else self._transport.get_extra_info("sockname")

    # -- what stream transports ask for

    def send(self, stream_id: int, data: bytes, end_stream: bool = False) -> None:
        stream = self._aioquic_stream(stream_id)
        if self.termination is not None or (stream is not None and not _can_send(stream)):
            return  # the peer's STOP_SENDING reset our half before its event reached the transport
        self._quic.send_stream_data(stream_id, data, end_stream=end_stream)
        self._data_written = True
        self._transmit_soon()

    def stop_receiving(self, stream_id: int, code: int) -> None:
        if self._aioquic_stream(stream_id) is not None:
            self._quic.stop_stream(stream_id, code)
            self._transmit_soon()

    def reset_sending(self, stream_id: int, code: int) -> None:
        stream = self._aioquic_stream(stream_id)
        if stream is not None and _can_send(stream):
            self._quic.reset_stream(stream_id, code)
            self._transmit_soon()

    def credit_changed(self) -> None:
        self._transmit_soon()

    def unacknowledged(self, stream_id: int) -> int:
        stream = self._aioquic_stream(stream_id)
        if stream is None:
            return 0
        # aioquic keeps a stream's outgoing bytes from the first unacknowledged one to the last written.
        sender = stream.sender
        return int(sender._buffer_stop - sender._buffer_start)

    def forget(self, transport: QuicStreamTransport, error: Exception | None) -> None:
        stream_id = transport._stream_id
        if self._live.pop(stream_id, None) is None:
            return
        self.write_paused.discard(transport)
        if self._owns_socket and self.termination is None:
            self._lost_at_close.append((transport, error))
        else:
            self._loop.call_soon(transport._connection_ended, error)
        self._credit.receive_windows.pop(stream_id, None)
        self._remember_ended(stream_id)
        if not self._live and (self._accept is None or (self._listener is not None and self._listener.closing)):
            self.close_when_drained()

    def _aioquic_stream(self, stream_id: int) -> QuicStream | None:
        stream: QuicStream | None = self._quic._streams.get(stream_id)
        return stream

    # -- opening streams

    def open_stream(self, protocol_factory: ProtocolFactory) -> QuicStreamTransport:
        """The client's stream: a new bidirectional stream, which the server sees once we write on it."""
        stream_id = self._quic.get_next_available_stream_id()
        return self._adopt(stream_id, protocol_factory)

    def _adopt(self, stream_id: int, protocol_factory: ProtocolFactory) -> QuicStreamTransport:
        protocol = protocol_factory()
        window = _ReceiveWindow(self._stream_window)
        self._credit.receive_windows[stream_id] = window
        transport = QuicStreamTransport(self, stream_id, protocol, window)
        self._live[stream_id] = transport
        transport._call(protocol.connection_made, transport)
        return transport  # closed already if connection_made raised: _feed then drops what comes

    def _remember_ended(self, stream_id: int) -> None:
        self._ended.add(stream_id)
        if len(self._ended) > self._ended_limit:
            # A stream aioquic has discarded (both halves done) makes no more events: only those
            # it still holds need remembering, so the set stays as small as aioquic's own table.
            streams = self._quic._streams
            self._ended = {ended for ended in self._ended if ended in streams}
            self._ended_limit = max(64, 2 * len(self._ended))

    def _refuse(self, stream_id: int) -> None:
        self._remember_ended(stream_id)
        self._quic.stop_stream(stream_id, CODE_REFUSED)
        if not stream_id & 2:  # bidirectional: our half too
            self._quic.reset_stream(stream_id, CODE_REFUSED)

    def _accepts(self, stream_id: int) -> bool:
        client_opened_bidirectional = stream_id & 3 == 0
        return (self._accept is not None and client_opened_bidirectional and self.alpn_protocol == ALPN
                and self._client_trusted and not (self._listener is not None and self._listener.closing))

    # -- aioquic's side

    def datagram_received(self, data: bytes | str, addr: Any) -> None:
        self.peer_address = addr
        self._quic.receive_datagram(cast(bytes, data), addr, now=self._loop.time())
        self._process_events()
        # aioquic transmits at once here. A moment later, once the callbacks this data made
        # ready have run, what they wrote (an answer from a handler that did not wait) rides in
        # the packet that acknowledges it, and a burst of datagrams is acknowledged once.
        self._transmit_soon()

    def quic_event_received(self, event: events.QuicEvent) -> None:
        if isinstance(event, events.StreamDataReceived):
            self._stream_data(event)
        elif isinstance(event, events.ProtocolNegotiated):
            self.alpn_protocol = event.alpn_protocol
            # aioquic's TLS already refuses a client whose ALPN list lacks ours; this is the
            # rule itself, should a configuration ever let another through.
            if event.alpn_protocol != ALPN:
                self.close(error_code=CODE_NO_APPLICATION_PROTOCOL,
                           reason_phrase=f"ALPN {event.alpn_protocol!r} is not served; offer {ALPN!r}")
        elif isinstance(event, events.HandshakeCompleted):
            if self._client_cafile is not None:
                self._check_client_certificate(self._client_cafile)
            if self._listener is not None and self._listener.closing:
                self.close_when_drained()
            if self._accept is None:
                self._keep_alive()
        elif isinstance(event, events.StreamReset):
            transport = self._live.get(event.stream_id)
            if transport is not None:
                transport._peer_reset(f"QUIC stream {event.stream_id} reset by the peer (code {event.error_code})")
        elif isinstance(event, events.StopSendingReceived):
            transport = self._live.get(event.stream_id)
            if transport is not None:
                transport._peer_stopped_reading(
                    f"QUIC stream {event.stream_id}: the peer stopped reading (code {event.error_code})")
        elif isinstance(event, events.ConnectionTerminated):
            self._terminated(event)

    def _check_client_certificate(self, cafile: str) -> None:
        """Mutual TLS: aioquic's server checks only that the client holds the key of the
        certificate it sent, and goes on without one; the chain is checked here, before any
        stream is served."""
        context = self._quic.tls
        certificate = getattr(context, "_peer_certificate", None)
        if certificate is None:
            self.close(error_code=CODE_CRYPTO_ERROR + 116,  # TLS alert certificate_required
                       reason_phrase="this server requires a client certificate")
            return
        try:
            chain = getattr(context, "_peer_certificate_chain", [])
            aioquic_tls.verify_certificate(certificate=certificate, chain=chain, cafile=cafile)
        except aioquic_tls.Alert as refused:
            self.close(error_code=CODE_CRYPTO_ERROR + int(refused.description),
                       reason_phrase=f"client certificate refused: {refused}")
            return
        self.verified_peer_certificate = from_x509(certificate)
        self._client_trusted = True

    def _stream_data(self, event: events.StreamDataReceived) -> None:
        stream_id = event.stream_id
        transport = self._live.get(stream_id)
        if transport is None:
            if stream_id in self._ended:
                return
            if self._accept is None or not self._accepts(stream_id):
                self._refuse(stream_id)
                return
            try:
                transport = self._adopt(stream_id, self._accept)
            except Exception as error:  # the factory's: it must not stop aioquic serving the other streams
                self._loop.call_exception_handler({
                    "message": f"QUIC stream {stream_id}: the protocol factory raised", "exception": error})
                self._refuse(stream_id)
                return
        transport._feed(event.data, event.end_stream)

    def _transmit_soon(self) -> None:
        if self._transmit_task is None:
            self._transmit_task = self._loop.call_soon(self._transmit_when_settled, SETTLE_TURNS)

    def _transmit_when_settled(self, turns_left: int) -> None:
        # What a datagram sets off reaches a write only some turns of the loop later (a task's
        # step, its done callback, the channel's flush of the turn's frames): a transmit that
        # runs before then sends nothing, or an ACK alone, and the answer goes in a packet of
        # its own after one more turn. So it waits while other callbacks are ready (a few turns
        # at most). asyncio's ready queue is not public: on a loop without one it goes at once.
        ready = self._ready_callbacks
        if turns_left and ready:
            self._transmit_task = self._loop.call_soon(self._transmit_when_settled, turns_left - 1)
            return
        self.transmit()

    def transmit(self) -> None:
        self._transmit_task = None
        quic = self._quic
        now = self._loop.time()
        if self._data_written:
            self._data_written = False
            self._let_the_owed_ack_ride(now)
        transport = self._transport
        for data, addr in quic.datagrams_to_send(now=now):
            transport.sendto(data, addr)  # type: ignore[union-attr]
        self._arm_timer(None if self.termination is not None else quic.get_timer())
        # Called after every datagram and timer: acknowledgements may have freed write buffers
        # or finished what a closing connection waits for.
        if self.write_paused:
            for paused in list(self.write_paused):
                paused._check_write_buffer()
        if self._should_close and self._drained():
            self._close_now()

    def _let_the_owed_ack_ride(self, now: float) -> None:
        # aioquic holds an ACK back until its delay (1 ms) has passed, even when a packet goes
        # out now anyway: one call in flight then costs each side a packet of its own (and a
        # timer) for the ACK. Due now, it rides in the packet carrying the data; an ACK sent
        # earlier than the delay is always allowed (RFC 9000 section 13.2.1).
        spaces = self._quic._spaces
        if spaces is not self._spaces_seen:
            # Found once per table, not per transmit: a lookup by an Enum key runs Enum's
            # __hash__ in Python. aioquic makes the table anew only when it starts over (a
            # Retry, another version), which the identity check catches.
            self._spaces_seen = spaces
            self._application_space = spaces.get(aioquic_tls.Epoch.ONE_RTT)
        space = self._application_space
        if space is not None and space.ack_at is not None:
            space.ack_at = now

    def _arm_timer(self, timer_at: float | None) -> None:
        # aioquic's deadline moves later with almost every packet (the loss detection timer
        # counts from the last one sent): re-arming asyncio's timer for each would cancel one
        # TimerHandle and make another per transmit. A timer armed earlier than the new
        # deadline is kept instead; firing early, it arms itself again for the deadline then due.
        wake = self._wake
        if wake is not None:
            if timer_at is not None and self._wake_at <= timer_at:
                return
            wake.cancel()
            self._wake = None
        if timer_at is not None:
            self._wake_at = timer_at
            self._wake = self._loop.call_at(timer_at, self._on_timer)

    def _on_timer(self) -> None:
        self._wake = None
        # asyncio may run a timer a little before its time (its clock's resolution): aioquic
        # is told the time it asked for, as its own glue does.
        now = max(self._wake_at, self._loop.time())
        due = self._quic.get_timer()
        if due is not None and due > now:
            self._arm_timer(due)  # armed for an earlier deadline that has moved on since
            return
        self._quic.handle_timer(now=now)
        self._process_events()
        if self._transmit_task is None:
            self.transmit()
        # else a transmit waits for what a datagram set off (an answer, which the ACK due
        # now rides with): sending now would send the ACK alone, and the answer right after.

    # -- closing

    def _keep_alive(self) -> None:
        if self.termination is not None:
            return
        if self._keepalive_timer is not None:  # not the first: the timer fired
            self._quic.send_ping(0)
            self.transmit()
        # aioquic's own reckoning: the shorter of both ends' idle timeouts, and never under three
        # probe timeouts.
        self._keepalive_timer = self._loop.call_later(self._quic._idle_timeout() / 3, self._keep_alive)

    def close_when_drained(self) -> None:
        if self._should_close or self.termination is not None:
            return
        self._should_close = True
        self._drain_timer = self._loop.call_later(DRAIN_TIMEOUT, self._close_now)
        self._transmit_soon()

    def _drained(self) -> bool:
        """Whether the peer acknowledged everything sent on every stream (FINs and resets included)."""
        return all(stream.sender.is_finished for stream in self._quic._streams.values())

    def _close_now(self) -> None:
        """Closes the connection, and ends aioquic's closing period at once.

        The closing period keeps a closed connection's state to repeat CONNECTION_CLOSE should
        the peer keep sending; RFC 9000 §10.2 lets an endpoint skip it, and skipping it lets a
        client release its socket, and a listener its port, without waiting three probe
        timeouts.
        """
        self._should_close = False
        if self.termination is not None:
            return
        self.close()
        end_of_closing = self._quic.get_timer()
        if end_of_closing is not None and self.termination is None:
            self._quic.handle_timer(now=end_of_closing)
            self._process_events()
            self.transmit()

    def abandon(self) -> None:
        """Gives up a connection whose handshake failed or was cancelled: close it, release its socket."""
        self._close_now()
        if self._transport is not None:
            self._transport.close()

    def failure(self) -> str:
        """Why the connection ended, for an error message."""
        if self._refused is not None:
            return str(self._refused)
        if self.termination is None:
            return "connection closed"
        return f"{self.termination.reason_phrase or 'connection closed'} (code {self.termination.error_code:#x})"

    def error_received(self, exc: Exception) -> None:
        # Only a client's connected socket gets these (ICMP errors), as ConnectionRefusedError
        # when nothing listens: during the handshake that ends the attempt at once.
        if self._connected_waiter is not None and not self._connected_waiter.done():
            self._refused = exc
            self._connected_waiter.set_exception(ConnectionError(str(exc)))
            self._connected_waiter = None

    def _terminated(self, event: events.ConnectionTerminated) -> None:
        self.termination = event
        for timer in (self._drain_timer, self._keepalive_timer, self._wake):
            if timer is not None:
                timer.cancel()
        self._drain_timer = self._keepalive_timer = self._wake = None
        ended_cleanly = event.error_code == 0
        for transport in list(self._live.values()):
            transport._closing = transport._peer_finished = True
            error = None if ended_cleanly else ConnectionResetError(
                f"QUIC connection closed: {event.reason_phrase or 'no reason given'} (code {event.error_code:#x})")
            transport._end(error)
        self._ended.clear()
        if self._owns_socket and self._transport is not None:
            self._transport.close()
        for transport, why in self._lost_at_close:
            self._loop.call_soon(transport._connection_ended, why)
        self._lost_at_close.clear()
        if self._listener is not None:
            self._listener.connection_ended(self)


# -- server ------------------------------------------------------------------------------------

class _RoutingServer(QuicServer):
    """aioquic's server, routing a short-header packet of a known connection without parsing its header.

    aioquic's server parses every datagram's header to find its connection, which parses it
    again. A short header (RFC 9000 section 17.3) is a first byte, then the destination
    connection ID, whose length this endpoint chose (``connection_id_length``): that ID is the
    key of aioquic's table of connections (its private ``_protocols``). Anything else (long
    headers, unknown IDs, no such table in another aioquic) goes aioquic's way.
    """

    def __init__(self, *, configuration: QuicConfiguration, create_protocol: Callable[..., Any]) -> None:
        super().__init__(configuration=configuration, create_protocol=create_protocol)
        routes = getattr(self, "_protocols", None)
        self._routes: dict[bytes, QuicConnectionProtocol] | None = routes if isinstance(routes, dict) else None
        self._cid_end = 1 + configuration.connection_id_length

    def datagram_received(self, data: bytes | str, addr: Any) -> None:
        routes = self._routes
        packet = cast(bytes, data)  # a datagram socket's
        # 0x40, the fixed bit, set and 0x80, the long-header bit, clear
        if routes is not None and len(packet) > self._cid_end and packet[0] & 0xC0 == 0x40:
            connection = routes.get(packet[1:self._cid_end])
            if connection is not None:
                connection.datagram_received(packet, addr)
                return
        super().datagram_received(packet, addr)


class QuicListener:
    """The UDP socket a QUIC server listens on, and the connections it accepted.

    ``close()`` stops accepting connections and streams; the connections already open go on
    until their streams end (the RPC server closes them), then close. ``wait_closed()``
    returns once every one has, and the socket is closed.
    """

    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.connections: set[_ConnectionHandler] = set()
        self.closing = False
        self._socket: asyncio.DatagramTransport | None = None
        self._closed = asyncio.get_running_loop().create_future()

    def close(self) -> None:
        if self.closing:
            return
        self.closing = True
        for connection in list(self.connections):
            if not connection._live:
                connection.close_when_drained()
        self._close_socket_if_idle()

    async def wait_closed(self) -> None:
        await asyncio.shield(self._closed)

    def connection_ended(self, connection: _ConnectionHandler) -> None:
        self.connections.discard(connection)
        self._close_socket_if_idle()

    def _close_socket_if_idle(self) -> None:
        if self.closing and not self.connections and not self._closed.done():
            if self._socket is not None:
                self._socket.close()
            self._closed.set_result(None)


async def listen(address: Address, protocol_factory: ProtocolFactory, tls: TLS | None,
                 *, stream_window: int = STREAM_WINDOW, idle_timeout: float = IDLE_TIMEOUT) -> QuicListener:
    """Serves ``quic://HOST:PORT``: each bidirectional stream a client opens gets a protocol from the factory.

    ``tls`` must name the server's certificate and key (QUIC has no plaintext mode).
    ``stream_window`` and ``idle_timeout`` are as in ``options()``.
    """
    if tls is None or not tls.certfile:
        raise UnsupportedURL("a QUIC server needs a certificate: pass tls=TLS(certfile=..., keyfile=...)")
    _check(stream_window, idle_timeout)
    configuration = QuicConfiguration(is_client=False, alpn_protocols=[ALPN], max_stream_data=stream_window,
                                      idle_timeout=idle_timeout)
    configuration.load_cert_chain(tls.certfile, tls.keyfile)
    loop = asyncio.get_running_loop()
    listener = QuicListener([])
    handler = functools.partial(_ConnectionHandler, accept=protocol_factory, listener=listener,
                                stream_window=stream_window, client_cafile=tls.client_cafile)
    udp, _ = await loop.create_datagram_endpoint(
        lambda: _RoutingServer(configuration=configuration, create_protocol=handler),
        local_addr=(address.host, address.port))
    listener._socket = udp
    bound = udp.get_extra_info("sockname")
    listener.urls.append(str(Address("quic", bound[0], bound[1])))
    return listener


# -- client ------------------------------------------------------------------------------------

async def open(address: Address, protocol_factory: ProtocolFactory, tls: TLS | None,  # noqa: A001
               *, stream_window: int = STREAM_WINDOW,
               idle_timeout: float = IDLE_TIMEOUT) -> tuple[QuicStreamTransport, asyncio.Protocol]:
    """Connects to ``quic://HOST:PORT`` and opens one bidirectional stream for ``protocol_factory()``'s protocol.

    The server's certificate is checked against ``tls.cafile`` (the system's CAs without one)
    for ``tls.server_name`` (the URL's host without one), unless ``tls.verify`` is false. When
    the stream ends, the connection closes once the server has acknowledged our last bytes, and
    the protocol's ``connection_lost`` comes after that, when the socket is released.
    ``stream_window`` and ``idle_timeout`` are as in ``options()``.
    """
    _check(stream_window, idle_timeout)
    host, port = address.host, address.port
    configuration = QuicConfiguration(is_client=True, alpn_protocols=[ALPN], max_stream_data=stream_window,
                                      idle_timeout=idle_timeout,
                                      server_name=(tls.server_name if tls is not None else None) or host)
    if tls is not None and not tls.verify:
        configuration.verify_mode = ssl.CERT_NONE
    elif tls is not None and tls.cafile:
        # aioquic reads the file only in the handshake, where one that is missing or holds no
        # certificate raises inside its datagram handling, and the connect waits for its
        # timeout: read here, as a TCP client's ssl context does, it fails the connect at once.
        ssl.create_default_context(cafile=tls.cafile)
        configuration.load_verify_locations(cafile=tls.cafile)
    if tls is not None and tls.certfile is not None:
        configuration.load_cert_chain(tls.certfile, tls.keyfile)  # mutual TLS: the client's own
    loop = asyncio.get_running_loop()
    family, _, _, _, peer = (await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM))[0]
    # A connected socket, so that an ICMP "port unreachable" comes back as error_received and
    # the connection fails at once instead of at the handshake's idle timeout. Made here, as
    # asyncio's remote_addr takes no IPv6 address as getaddrinfo gives it.
    udp = socket.socket(family, socket.SOCK_DGRAM)
    try:
        udp.setblocking(False)
        udp.connect(peer)
        _, handler = await loop.create_datagram_endpoint(
            lambda: _ConnectionHandler(QuicConnection(configuration=configuration), stream_window=stream_window),
            sock=udp)
    except BaseException:
        udp.close()
        raise
    handler.peer_address = peer
    try:
        handler.connect(peer)
        await handler.wait_connected()
    except BaseException as error:
        handler.abandon()
        if isinstance(error, ConnectionError):
            raise ConnectionError(f"QUIC handshake with {address} failed: {handler.failure()}") from None
        raise
    try:
        transport = handler.open_stream(protocol_factory)
    except BaseException:
        handler.abandon()
        raise
    return transport, transport._protocol


def options(address: Address) -> dict[str, Any]:
    """The keyword arguments of ``listen`` and ``open`` that a URL's query gives, checked:

    - ``stream_window`` (bytes, default 262144): how far beyond what a stream's reader has
      consumed the peer may send on it, so what a paused stream buffers at most;
    - ``idle_timeout`` (seconds, default 60): a connection nothing travels on for this long is
      closed (the shorter of both ends' values counts); a client pings three times per timeout.

    ``quic://127.0.0.1:4433?stream_window=1048576&idle_timeout=30``. An unknown name, a name
    given twice or a value out of range is an ``UnsupportedURL``.
    """
    where = f"{address}?{address.query}"
    try:
        pairs = parse_qsl(address.query, keep_blank_values=True, strict_parsing=True) if address.query else []
    except ValueError:
        raise UnsupportedURL(f"{where}: options are name=value pairs joined by '&'") from None
    found: dict[str, Any] = {}
    for name, text in pairs:
        if name in found:
            raise UnsupportedURL(f"{where}: {name} is given twice")
        if name == "stream_window":
            try:
                found[name] = int(text)
            except ValueError:
                raise UnsupportedURL(f"{where}: stream_window is a whole number of bytes, not {text!r}") from None
        elif name == "idle_timeout":
            try:
                found[name] = float(text)
            except ValueError:
                raise UnsupportedURL(f"{where}: idle_timeout is a number of seconds, not {text!r}") from None
        else:
            raise UnsupportedURL(f"{where}: unknown option {name!r} (known: idle_timeout, stream_window)")
    _check(found.get("stream_window", STREAM_WINDOW), found.get("idle_timeout", IDLE_TIMEOUT), where=f"{where}: ")
    return found


def _check(stream_window: int, idle_timeout: float, where: str = "") -> None:
    if type(stream_window) is not int or not 1 <= stream_window <= MAX_STREAM_WINDOW:
        raise UnsupportedURL(f"{where}stream_window is a number of bytes from 1 to 2**62 - 1, not {stream_window!r}")
    # QUIC carries it in whole milliseconds, and 0 would mean no timeout at all.
    if type(idle_timeout) not in (int, float) or not (idle_timeout >= 0.001 and math.isfinite(idle_timeout)):
        raise UnsupportedURL(f"{where}idle_timeout is a number of seconds from 0.001, not {idle_timeout!r}")


class _QUIC:
    """The ``quic://`` entry of ``transports.TRANSPORTS``: the URL's query gives the options."""

    async def listen(self, address: Address, factory: ProtocolFactory, tls: TLS | None) -> QuicListener:
        return await listen(address, factory, tls, **options(address))

    async def open(self, address: Address, factory: ProtocolFactory,
                   tls: TLS | None) -> tuple[asyncio.BaseTransport, asyncio.Protocol]:
        return await open(address, factory, tls, **options(address))


QUIC = _QUIC()

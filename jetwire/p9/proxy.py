"""A tracing 9P2000.L proxy, upstream's ``proxy``: ``python -m jetwire.p9 proxy --listen A --to B``
forwards the bytes between any 9P client and server as they arrive, unchanged, and prints each
message they carry, one line each::

    [1] -> Twalk tag=3 fid=1 newfid=2 wnames=['a', 'b']
    [1] <- Rwalk tag=3 (0.3 ms) wqids=[Qid(dir path=0x1a2b v=0), Qid(file path=0x1a2c v=7)]

``Tracer`` is the sans-I/O heart: it is fed the bytes of each direction and returns what they
held, frame by frame (``Traced``: the exact bytes, the decoded message or why it did not
decode, and for a reply the request of its tag and how long the answer took). Tracing never
touches what is forwarded: the shell writes every chunk on before the tracer sees it, so a frame
that does not decode is still forwarded byte for byte, and the tracer only says why.

What the tracer holds is bounded: at most one frame per direction, and no frame over
``max_frame`` bytes. A frame whose ``size`` is below 7 or over that bound cannot be skipped by
(a lie, or a stream out of step), so the tracer stops tracing the connection (``Stopped``), drops
what it held and ignores every later byte; the proxy keeps forwarding raw. A frame over the
negotiated msize but within the bound is traced, with the violation as its error.
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno as host_errno
import itertools
import logging
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..compiler.framing import HEADER_SIZE, SIZE_FIELD, parse_header, size_below_minimum
from ..errors import DecodeError
from ..runtime.codec import explain
from ..runtime.records import Record
from . import constants as c
from .messages import Dirent, Qid, Rflush, Rframe, Rreaddir, Rversion, Tflush, Tframe, Tversion
from .serving import Listener, listening, no_delay, parse_listen, until_stopped

__all__ = ["Tracer", "Traced", "Stopped", "TraceEvent", "Proxy", "proxy", "format_event", "explain_event",
           "DEFAULT_MAX_FRAME", "DEFAULT_CONNECT_TIMEOUT",
           "REQUEST", "REPLY"]

log = logging.getLogger("jetwire.p9.proxy")

REQUEST = "->"  # client to server
REPLY = "<-"  # server to client
#: The largest frame the tracer holds to decode: Linux proposes 512 KiB at most, diod and
#: jetwire's server accept 1 MiB; 4 MiB leaves room without letting a lying size cost much.
DEFAULT_MAX_FRAME = 4 * 1024 * 1024 + c.P9_IOHDRSZ
#: Seconds a client waits for the proxy's own connection to the server before it is closed: a
#: server that drops the handshake would otherwise hold it for the system's minutes.
DEFAULT_CONNECT_TIMEOUT = 10.0
_READ_CHUNK = 256 * 1024
_PREVIEW = 16  # bytes of hex shown for a frame that did not decode


class Traced(Record):
    """One frame as it crossed: ``direction`` (``REQUEST`` or ``REPLY``), its exact bytes, and
    either ``msg`` (the T- or R-message) or ``error`` (a ``DecodeError`` whose offset counts from
    the frame's first byte). ``tag`` and ``type`` are the header's. A reply also gets the request
    its tag was waiting for (None if no request was) and ``latency`` in seconds."""

    __slots__ = ("direction", "error", "frame", "latency", "msg", "request", "request_type", "tag", "type")

    def __init__(self, direction: str, frame: bytes, tag: int, type: int, msg: Any = None,  # noqa: A002
                 error: DecodeError | None = None, request: Any = None, latency: float | None = None,
                 request_type: int | None = None) -> None:
        self.direction = direction
        self.frame = frame
        self.tag = tag
        self.type = type
        self.msg = msg
        self.error = error
        self.request = request
        self.latency = latency
        self.request_type = request_type  # the request's type number, even when it did not decode


class Stopped(Record):
    """Tracing of the connection stopped for good: a ``size`` out of bounds came from
    ``direction``; ``preview`` is the bytes from that frame's start (at most 16)."""

    __slots__ = ("direction", "error", "preview")

    def __init__(self, direction: str, error: DecodeError, preview: bytes) -> None:
        self.direction = direction
        self.error = error
        self.preview = preview


TraceEvent = Traced | Stopped


class _Pending:
    __slots__ = ("msg", "sent", "type")

    def __init__(self, msg: Any, type: int, sent: float) -> None:  # noqa: A002
        self.msg = msg
        self.type = type
        self.sent = sent


class Tracer:
    """The messages of one 9P connection, from its bytes: ``feed(REQUEST, data)`` with what the
    client sent, ``feed(REPLY, data)`` with what the server sent; each returns the frames the
    bytes completed. ``version`` and ``msize`` are the negotiated ones (the proposal until the
    Rversion), ``stopped`` why tracing stopped (None while it goes on)."""

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME, clock: Callable[[], float] = time.monotonic) -> None:
        if max_frame < HEADER_SIZE:
            raise ValueError(f"max_frame {max_frame} is below the {HEADER_SIZE}-byte header")
        self.max_frame = max_frame
        self.clock = clock
        self.msize: int | None = None
        self.version: str | None = None
        self.negotiated = False
        self.stopped: DecodeError | None = None
        self._buffers = {REQUEST: bytearray(), REPLY: bytearray()}
        self._pending: dict[int, _Pending] = {}  # by tag: at most 65,536

    @property
    def buffered(self) -> int:
        """Bytes held for frames not yet whole."""
        return sum(map(len, self._buffers.values()))

    def feed(self, direction: str, data: bytes | bytearray | memoryview) -> list[TraceEvent]:
        if self.stopped is not None:
            return []
        buffer = self._buffers[direction]
        buffer += data
        events: list[TraceEvent] = []
        frame_type = Tframe if direction == REQUEST else Rframe
        while len(buffer) >= SIZE_FIELD:
            size = int.from_bytes(buffer[:SIZE_FIELD], "little")
            if size < HEADER_SIZE or size > self.max_frame:
                reason = size_below_minimum(size) if size < HEADER_SIZE else (
                    f"frame size {size} is over the {self.max_frame} bytes the tracer holds: "
                    "tracing stops here, forwarding goes on")
                self.stopped = DecodeError(reason, f"{frame_type.__name__}.size", 0)
                events.append(Stopped(direction, self.stopped, bytes(buffer[:_PREVIEW])))
                for held in self._buffers.values():
                    held.clear()
                self._pending.clear()
                break
            if len(buffer) < size:
                break
            frame = bytes(buffer[:size])
            del buffer[:size]  # a bytearray drops its head without moving the rest
            events.append(self._trace(direction, frame_type, frame))
        return events

    def _trace(self, direction: str, frame_type: type[Tframe] | type[Rframe], frame: bytes) -> Traced:
        now = self.clock()
        _, kind, tag = parse_header(frame)
        event = Traced(direction, frame, tag, kind)
        if self.msize is not None and len(frame) > self.msize and self.negotiated:
            event.error = DecodeError(f"frame size {len(frame)} is over the negotiated msize of {self.msize}",
                                      f"{frame_type.__name__}.size", 0)
        else:
            try:
                event.msg = frame_type.decode(frame).msg
            except DecodeError as exc:
                event.error = exc
        msg = event.msg
        if direction == REQUEST:
            if msg.__class__ is Tversion:
                self.msize, self.version, self.negotiated = msg.msize, msg.version, False
                self._pending.clear()  # r[9p2000l.version.first]: a Tversion ends what was in flight
            self._pending[tag] = _Pending(msg, kind, now)
        else:
            pending = self._pending.pop(tag, None)
            if pending is not None:
                event.request = pending.msg
                event.request_type = pending.type
                event.latency = now - pending.sent
                if pending.msg.__class__ is Tflush and msg.__class__ is Rflush:
                    self._pending.pop(pending.msg.oldtag, None)  # its reply will not come now
            if msg.__class__ is Rversion:
                # r[9p2000l.version.string]: "unknown" is the server saying no
                self.msize, self.version, self.negotiated = msg.msize, msg.version, msg.version != "unknown"
        return event


# -- one line per message --------------------------------------------------------------------------

_QID_TYPES = ((c.P9_QTDIR, "dir"), (c.P9_QTAPPEND, "append"), (c.P9_QTEXCL, "excl"), (c.P9_QTMOUNT, "mount"),
              (c.P9_QTAUTH, "auth"), (c.P9_QTTMP, "tmp"), (c.P9_QTSYMLINK, "symlink"), (c.P9_QTLINK, "link"))
_OCTAL = frozenset({"mode", "perm"})
_HEX = frozenset({"flags", "valid", "request_mask", "mask"})
_MAX_ITEMS = 8
_MAX_TEXT = 80


def _qid(qid: Qid) -> str:
    kinds = "|".join(name for bit, name in _QID_TYPES if qid.type & bit) or "file"
    return f"Qid({kinds} path={qid.path:#x} v={qid.version})"


def _value(value: Any) -> str:
    kind = value.__class__
    if kind is int:  # most fields: the common case first
        return str(value)
    if kind is Qid:
        return _qid(value)
    if kind is bytes or kind is bytearray:
        head = bytes(value[:_PREVIEW]).hex(" ")
        return f"<{len(value)} bytes{': ' + head if head else ''}{' …' if len(value) > _PREVIEW else ''}>"
    if kind is list:
        shown = [_value(item) for item in value[:_MAX_ITEMS]]
        if len(value) > _MAX_ITEMS:
            shown.append(f"… {len(value) - _MAX_ITEMS} more")
        return f"[{', '.join(shown)}]"
    text = repr(value)
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + "…"


def _octal(value: int) -> str:
    return f"{value:#o}"


def _hex(value: int) -> str:
    return f"{value:#x}"


def _dirents(data: bytes) -> str:
    """Rreaddir's data as the names it lists, each with its entry's offset, which is what a
    client resumes from (r[9p2000l.readdir.dirent]); data that does not parse as entries is
    shown as bytes, with where it stopped."""
    names: list[str] = []
    count = offset = 0
    last: Dirent | None = None
    try:
        while offset < len(data):
            last, offset = Dirent.decode_prefix(data, offset)
            if count < _MAX_ITEMS:
                names.append(f"{_value(last.name)}@{last.offset}")
            count += 1
    except DecodeError as exc:
        return f"{_value(data)} (no entry at byte {offset}: {exc.reason})"
    if last is not None and count > _MAX_ITEMS:
        names.append(f"… {count - _MAX_ITEMS} more, the last {_value(last.name)}@{last.offset}")
    return f"<{len(data)} bytes, {count} entries{': ' if names else ''}{', '.join(names)}>"


def _errno_name(number: int) -> str:
    name = c.LINUX_ERRNO_NAMES.get(number)
    if name is None and sys.platform.startswith("linux"):
        name = host_errno.errorcode.get(number)  # this host's numbers are Linux's
    return f"{number} ({name})" if name else str(number)


def _fid(value: int) -> str:
    return "NOFID" if value == c.NOFID else str(value)


def _uid(value: int) -> str:
    return "NONUNAME" if value == c.NONUNAME else str(value)


_SHOW_FIELD: dict[str, Callable[[Any], str]] = {
    **dict.fromkeys(_OCTAL, _octal), **dict.fromkeys(_HEX, _hex), "ecode": _errno_name,
    "afid": _fid, "n_uname": _uid,
}
# per message class, each field with how it is shown: a line is made for every message that
# crosses, and looking the fields up each time was a third of its cost
_LAYOUTS: dict[type, tuple[tuple[str, Callable[[Any], str]], ...]] = {}


def _fields(msg: Any) -> str:
    layout = _LAYOUTS.get(msg.__class__)
    if layout is None:
        layout = _LAYOUTS[msg.__class__] = tuple(
            (field.name, _dirents if msg.__class__ is Rreaddir else _SHOW_FIELD.get(field.name, _value))
            for field in dataclasses.fields(msg))
    return " ".join([f"{name}={show(getattr(msg, name))}" for name, show in layout])


def format_event(event: TraceEvent) -> str:
    """One line for an event, without the connection's number."""
    if isinstance(event, Stopped):
        return (f"{event.direction} tracing stopped: {event.error}; "
                f"bytes at that frame: {event.preview.hex(' ')}")
    direction, msg, error = event.direction, event.msg, event.error
    name = type(msg).__name__ if error is None else _type_name(direction, event.type)
    line = f"{direction} {name} tag={_tag(event.tag)}"
    if direction == REPLY:
        if event.latency is not None and event.request_type is not None:
            answered = _type_name(REQUEST, event.request_type)
            expected = answered[:1] == "T" and name == "R" + answered[1:]
            about = f"{event.latency * 1000:.1f} ms" if expected else f"{answered}, {event.latency * 1000:.1f} ms"
            line += f" ({about})"
        else:
            line += " (no request has this tag)"
    if error is not None:
        return (f"{line} UNDECODABLE ({len(event.frame)} bytes): {error.reason} at byte {error.offset} "
                f"[{error.path}]; bytes there: {event.frame[error.offset:error.offset + _PREVIEW].hex(' ')}")
    body = _fields(msg)
    return f"{line} {body}" if body else line


def _tag(tag: int) -> str:
    return "NOTAG" if tag == c.NOTAG else str(tag)


def _type_name(direction: str, number: int) -> str:
    union = Tframe if direction == REQUEST else Rframe
    known = _MESSAGE_NAMES[union].get(number)
    return known if known is not None else f"type {number}"


def _message_names() -> dict[type, dict[int, str]]:
    from typing import get_args

    from .messages import Rmessage, Tmessage

    names: dict[type, dict[int, str]] = {}
    for frame, union in ((Tframe, Tmessage), (Rframe, Rmessage)):
        names[frame] = {number: cls.__name__ for meta in get_args(union)[1:] for number, cls in meta.tags.items()}
    return names


_MESSAGE_NAMES = _message_names()


def explain_event(event: Traced) -> str:
    """``jetwire.explain`` of the frame, field by field with offsets (its last line, the whole
    value as ``repr``, left out: the event's own line says it, without megabytes of data)."""
    text = explain(Tframe if event.direction == REQUEST else Rframe, event.frame)
    lines = text.split("\n")
    if lines and lines[-1].startswith("decoded: "):
        lines.pop()
    return "\n".join(lines)


# -- the asyncio shell -----------------------------------------------------------------------------

_NOT_ENDED = "end of stream"


class _Link:
    """One client, its own upstream connection, and their tracer."""

    def __init__(self, proxy: Proxy, number: int, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.proxy = proxy
        self.number = number
        self.client_reader = reader
        self.client_writer = writer
        self.tracer = Tracer(proxy.max_frame)
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else (peer or "unix socket")
        self.ended = _NOT_ENDED
        self.bytes = {REQUEST: 0, REPLY: 0}
        self.tracing = True

    async def run(self) -> None:
        started = time.monotonic()
        log.info("proxy connection %d from %s: open, to %s", self.number, self.peer, self.proxy.upstream)
        upstream_writer: asyncio.StreamWriter | None = None
        try:
            try:
                upstream_reader, upstream = await asyncio.wait_for(_open(self.proxy.upstream),
                                                                   self.proxy.connect_timeout)
            except asyncio.TimeoutError:  # not an OSError before 3.11
                self.ended = f"no connection to the server within {self.proxy.connect_timeout:g} s"
                return
            upstream_writer = upstream
            ups = asyncio.ensure_future(self._pump(REQUEST, self.client_reader, upstream))
            downs = asyncio.ensure_future(self._pump(REPLY, upstream_reader, self.client_writer))
            try:
                # one side's end of stream is passed on as a half-close (a client that shuts down
                # its writing still gets the replies to what it sent); the link ends when both
                # ways have ended, or at once when either fails
                pending: set[asyncio.Future[None]] = {ups, downs}
                while pending:
                    done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                    for task in done:
                        task.result()
                        ended_to = upstream if task is ups else self.client_writer
                        if not ended_to.can_write_eof():
                            return
                        ended_to.write_eof()  # after what is still buffered for that side
            finally:
                for task in (ups, downs):
                    task.cancel()
                await asyncio.gather(ups, downs, return_exceptions=True)
        except (ConnectionError, OSError) as exc:
            if self.ended == _NOT_ENDED:  # after one side's end, that end is the reason
                self.ended = f"{type(exc).__name__}: {exc}"
        except asyncio.CancelledError:
            self.ended = "proxy stopping"
        finally:
            for writer in (self.client_writer, upstream_writer):
                if writer is not None:
                    writer.close()  # what was written still goes out first
            seconds = time.monotonic() - started
            tracer = self.tracer
            spoke = f"{tracer.version} msize {tracer.msize}" if tracer.negotiated else "no version agreed"
            log.info("proxy connection %d from %s: closed after %.1f s, %d bytes up, %d down, %s, ended: %s",
                     self.number, self.peer, seconds, self.bytes[REQUEST], self.bytes[REPLY], spoke, self.ended)

    async def _pump(self, direction: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            data = await reader.read(_READ_CHUNK)
            if not data:
                if self.ended == _NOT_ENDED:  # the first side to end is why the link ended
                    self.ended = "client closed" if direction == REQUEST else "server closed"
                return
            self.bytes[direction] += len(data)
            writer.write(data)  # first, and as received: tracing never changes or holds a byte
            if self.tracing:
                self._trace(direction, data)
            await writer.drain()  # a side that stops reading stops the other being read

    def _trace(self, direction: str, data: bytes) -> None:
        prefix = f"[{self.number}] "
        try:
            lines = []
            for event in self.tracer.feed(direction, data):
                lines.append(prefix + format_event(event))
                if self.proxy.verbose and isinstance(event, Traced):
                    lines += [prefix + "    " + line for line in explain_event(event).split("\n")]
            if lines:
                self.proxy.output("\n".join(lines))
        except Exception:  # a bug in tracing (or in the output) must not cut the connection it watches
            log.exception("proxy connection %d: tracing failed; it stops, forwarding goes on", self.number)
            self.tracing = False


async def _open(address: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port, path = parse_listen(address)
    if path is not None:
        return await asyncio.open_unix_connection(path, limit=_READ_CHUNK)
    reader, writer = await asyncio.open_connection(host, port, limit=_READ_CHUNK)
    no_delay(writer)
    return reader, writer


def _print(text: str) -> None:
    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except BrokenPipeError:  # `... | head`: the trace has no reader any more, the proxy goes on
        pass


class Proxy(Listener[_Link]):
    """Listens on addresses and forwards each connection to ``upstream`` (``HOST:PORT`` or
    ``unix:PATH``), tracing it to ``output`` (one call per chunk of lines); ``close()`` stops
    listening and ends every connection. ``connections``: their ``number``, ``peer``,
    ``tracer``."""

    def __init__(self, upstream: str, *, verbose: bool = False, output: Callable[[str], None] = _print,
                 max_frame: int = DEFAULT_MAX_FRAME, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT) -> None:
        host, _, path = parse_listen(upstream)  # a bad address fails here, not per connection
        if path is None and not host:
            raise ValueError(f"{upstream!r} names no host to connect to")
        Tracer(max_frame)  # a bad bound fails here, not at each connection
        super().__init__()
        self.upstream = upstream
        self.verbose = verbose
        self.output = output
        self.max_frame = max_frame
        self.connect_timeout = connect_timeout
        self._numbers = itertools.count(1)
        self._listening = f"proxy forwarding to {upstream}, listening"

    def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> _Link:
        return _Link(self, next(self._numbers), reader, writer)


async def proxy(upstream: str, *addresses: str, **options: Any) -> Proxy:
    """A ``Proxy`` to ``upstream`` listening on every address given."""
    return await listening(Proxy(upstream, **options), addresses)


def proxy_main(argv: Sequence[str]) -> int:
    """``proxy --listen ADDRESS [--listen ...] --to ADDRESS [-v]``: forwards and traces until
    SIGINT or SIGTERM; exit status 0 after a signal, 1 if it cannot listen."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m jetwire.p9 proxy",
                                     description="Forward 9P2000.L connections unchanged, printing every message.")
    parser.add_argument("--listen", action="append", required=True, help="HOST:PORT or unix:PATH (repeatable)")
    parser.add_argument("--to", required=True, help="the server: HOST:PORT or unix:PATH")
    parser.add_argument("-v", "--verbose", action="store_true", help="also explain each frame field by field")
    parser.add_argument("--max-frame", type=int, default=DEFAULT_MAX_FRAME,
                        help="the largest frame traced; a larger size stops tracing that connection")
    parser.add_argument("--connect-timeout", type=float, default=DEFAULT_CONNECT_TIMEOUT,
                        help="seconds to wait for the server for each client (default 10)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no log line per connection")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(asctime)s %(message)s")
    try:
        Proxy(args.to, max_frame=args.max_frame)
    except ValueError as exc:
        parser.error(str(exc))

    async def run() -> int:
        try:
            server = await proxy(args.to, *args.listen, verbose=args.verbose, max_frame=args.max_frame,
                                 connect_timeout=args.connect_timeout)
        except (OSError, ValueError) as exc:
            print(f"jetwire.p9 proxy: {exc}", file=sys.stderr)
            return 1
        await until_stopped(f"proxying {' '.join(server.addresses)} to {args.to}")
        await server.close()
        return 0

    return asyncio.run(run())

"""Both ends of a JetStream RPC stream without I/O (the h11 shape): bytes in with
``receive_data``, events out with ``next_event``; calls and answers out as bytes.

``ClientSession`` owns the handshake, the tags and what each call in flight expects back;
``ServerSession`` owns the handshake's answers, the count of calls in flight and the limits.
Neither reads a socket: ``aio.py`` does, and tests drive them byte by byte.
"""

from __future__ import annotations

import traceback
from collections import deque
from typing import Any

from ..errors import WireError
from ..runtime.frames import HEADER_SIZE, FrameError, FrameReader, frame_encoder
from ..runtime.records import Record as _Event
from ..stdtypes import Backtrace, Error
from .protocol import (
    DEFAULT_MAX_FRAME_SIZE,
    LEGACY_9P_VERSIONS,
    NOTAG,
    UNKNOWN_VERSION,
    VERSION_PREFIX,
    ConnectionClosed,
    LocalProtocolError,
    MsizeError,
    RemoteProtocolError,
    Rversion,
    TagsExhausted,
    Tversion,
    VersionError,
    parse_version,
    semver_key,
)
from .service import Method, ServiceSpec

__all__ = [
    "ClientSession", "ServerSession", "Negotiated", "Reply", "Failed", "Stray", "Broken", "Call", "Send",
    "Violation", "Ignored", "MAX_TAGS", "INTERNAL_ERROR_CODE", "MAX_ERROR_TEXT",
]

MAX_TAGS = 0xFFFE
"""Tags 1 to 65534: 0xFFFF is the handshake's (r[jetstream.rpc.tag.client-pool]); 0 is left
out as upstream's pools leave it out."""
INTERNAL_ERROR_CODE = "jetwire::rpc::internal"
"""The code of the error a server sends for an exception that is not a ``jetwire.Error``."""
MAX_ERROR_TEXT = 4096
"""Error texts made from Python exceptions are cut to this many UTF-8 bytes."""

_new = object.__new__  # a message made as its decoder makes it: no __init__ frame


# --- client events -----------------------------------------------------------------------------

class Negotiated(_Event):
    """The server accepted the version: calls may be sent (r[jetstream.rpc.version.client-wait])."""

    __slots__ = ("msize", "version")

    def __init__(self, msize: int, version: str) -> None:
        self.msize = msize
        self.version = version


class Reply(_Event):
    """A call's answer: ``value`` is what the method returned (None for ``-> None``)."""

    __slots__ = ("tag", "value")

    def __init__(self, tag: int, value: Any) -> None:
        self.tag = tag
        self.value = value


class Failed(_Event):
    """A call that failed: the server's ``jetwire.Error``, or a local reason (the stream ended,
    the answer broke the protocol)."""

    __slots__ = ("error", "tag")

    def __init__(self, tag: int, error: BaseException) -> None:
        self.tag = tag
        self.error = error


class Stray(_Event):
    """An answer to a tag with no call in flight: ignored and counted (r[jetstream.rpc.mux.unknown-tag])."""

    __slots__ = ("tag", "type")

    def __init__(self, tag: int, type: int) -> None:  # noqa: A002
        self.tag = tag
        self.type = type


class Broken(_Event):
    """The stream can no longer be used: the handshake failed, the peer sent what does not
    decode, or the connection was lost. Every call in flight has had its ``Failed`` before this."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


# --- server events -----------------------------------------------------------------------------

class _Answerable(_Event):
    # A slot of a base class is not among the fields events compare and print by (the class's
    # own __slots__): whether a call was answered is its state, not what the client asked.
    __slots__ = ("answered",)


class Call(_Answerable):
    """A request to serve: answer it exactly once, with ``respond`` or ``fail`` (r[jetstream.rpc.mux.one-response])."""

    __slots__ = ("method", "request", "tag")

    def __init__(self, tag: int, method: Method, request: Any) -> None:
        self.tag = tag
        self.method = method
        self.request = request
        self.answered = False


class Send(_Event):
    """Bytes the session itself answers with (a handshake's ``Rversion``): write them."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


class Violation(_Event):
    """The client broke the protocol: read no more from this stream, answer the calls already
    received, then close it (r[jetstream.rpc.reject.close-stream])."""

    __slots__ = ("error",)

    def __init__(self, error: RemoteProtocolError) -> None:
        self.error = error


class Ignored(_Event):
    """A frame the session reads and answers with nothing, the stream going on: a later
    ``Tversion`` whose version does not parse (r[jetstream.rpc.version.renegotiate])."""

    __slots__ = ("reason", "tag")

    def __init__(self, tag: int, reason: str) -> None:
        self.tag = tag
        self.reason = reason


def _check_max_frame_size(size: int) -> None:
    """A limit below the 7-byte header refuses every frame, and above the u32 size field
    (r[jetstream.rpc.frame.header]) cannot be announced as an msize: both are mistakes."""
    if isinstance(size, bool) or not isinstance(size, int) or not HEADER_SIZE <= size <= 0xFFFFFFFF:
        raise ValueError(f"max_frame_size is {HEADER_SIZE} to {0xFFFFFFFF} bytes, not {size!r}")


def _frame_problem(exc: FrameError) -> str:
    where = f"frame type {exc.type}, tag {exc.tag}: " if exc.type is not None else ""
    return f"{where}{exc}"


class ClientSession:
    """The calling end of one stream of one service.

    ``start()`` gives the ``Tversion`` to send first; ``call()`` the bytes of each call once
    ``Negotiated`` has arrived; ``receive_data()`` and ``next_event()`` turn what the server
    sends into events.
    """

    def __init__(self, spec: ServiceSpec, *, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
                 max_tags: int = MAX_TAGS, version: str | None = None) -> None:
        if not 1 <= max_tags <= MAX_TAGS:
            raise ValueError(f"max_tags is 1 to {MAX_TAGS}, not {max_tags}")
        _check_max_frame_size(max_frame_size)
        self.spec = spec
        self.version = spec.version if version is None else version
        self.max_frame_size = max_frame_size
        self.max_tags = max_tags
        self.peer_msize = 0
        self.negotiated = False
        self.broken: BaseException | None = None
        self.strays = 0
        """Answers to tags with no call in flight, ignored."""
        self._started = False
        self._lost: ConnectionClosed | None = None
        """The stream's end, once known: it breaks the session after the bytes received before it."""
        self._reader = FrameReader(spec.Rframe, max_frame_size)
        self._encode_call = frame_encoder(spec.Tframe)
        self._pending: dict[int, Method] = {}
        self._abandoned: set[int] = set()
        self._free: list[int] = []  # tags answered, reused most recent first
        self._fresh = 1  # the lowest tag never handed out: tags are made only as calls need them
        self._events: list[_Event] = []
        self._ahead: deque[tuple[int, Any]] = deque()  # (tag, message) of each frame of a read, not yet events

    @property
    def in_flight(self) -> int:
        """Tags held: calls awaiting their answer, abandoned ones included."""
        return len(self._pending)

    def tags_free(self) -> bool:
        return bool(self._free) or self._fresh <= self.max_tags

    def start(self) -> bytes:
        """The ``Tversion`` frame, tag 0xFFFF (r[jetstream.rpc.version.client-tag]); send nothing
        else until ``Negotiated`` (r[jetstream.rpc.version.client-wait])."""
        if self._started:
            raise LocalProtocolError("the handshake was already started")
        self._started = True
        return bytes(self.spec.Tframe(NOTAG, Tversion(self.max_frame_size, self.version)).encode())

    def call(self, method: Method, request: Any) -> tuple[int, bytes]:
        """A tag for the call and the frame to send (r[jetstream.rpc.tag.unique]).

        Raises ``ConnectionClosed`` once the stream is broken, ``LocalProtocolError`` before the
        handshake is done, ``TagsExhausted`` when every tag is in flight, ``MsizeError`` for a
        frame over the server's msize, ``EncodeError`` for a value that has no encoding.
        """
        closed = self.broken or self._lost
        if closed is not None:
            raise ConnectionClosed(f"the connection is closed: {closed}") from closed
        if not self.negotiated:
            raise LocalProtocolError("no call before the server has answered the version handshake")
        if self._free:
            tag = self._free.pop()
        elif self._fresh <= self.max_tags:
            tag = self._fresh
            self._fresh += 1
        else:
            raise TagsExhausted(f"all {self.max_tags} tags are held by calls in flight")
        try:
            data = self._encode_call(tag, request)
        except BaseException:
            self._free.append(tag)
            raise
        if len(data) > self.peer_msize:
            self._free.append(tag)
            raise MsizeError(
                f"the {method.name} call is {len(data)} bytes, over the {self.peer_msize} the server accepts"
            )
        self._pending[tag] = method
        return tag, data

    def abandon(self, tag: int) -> None:
        """The caller stopped waiting for ``tag``: nothing is sent, the tag stays held until the
        answer arrives, and that answer is dropped (r[jetstream.rpc.cancel.local])."""
        if tag in self._pending:
            self._abandoned.add(tag)

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        if self.broken is None and self._lost is None and data:
            self._reader.feed(data)

    def next_event(self) -> _Event | None:
        """The next event the bytes received make, or None until more arrive."""
        if self._events:
            return self._events.pop(0)
        if self.broken is not None:
            return None
        ahead = self._ahead
        while True:
            if not ahead:
                ahead.extend(self._reader.next_messages())
            if ahead:
                tag, msg = ahead.popleft()
            else:
                try:
                    frame = self._reader.next_frame()
                except FrameError as exc:
                    return self._break(RemoteProtocolError(f"the server sent a frame that does not decode: "
                                                           f"{_frame_problem(exc)}"))
                if frame is None:
                    return None if self._lost is None else self._break(self._lost)
                tag, msg = frame.tag, frame.msg
            event = self._answer(tag, msg)
            if event is not None:
                return event

    def next_replies(self) -> list[tuple[int, Any]]:
        """The ``Reply`` events next in line, as ``(tag, value)`` pairs, up to the first frame
        that makes any other event (or none): ``next_event()`` gives that one. A caller that
        takes these first, then one event, and so on, sees what ``next_event()`` alone would
        show, without an event object per answer."""
        replies: list[tuple[int, Any]] = []
        if self._events or self.broken is not None or not self.negotiated:
            return replies
        ahead = self._ahead
        if not ahead:
            ahead.extend(self._reader.next_messages())
        pending, abandoned, free = self._pending, self._abandoned, self._free
        while ahead:
            tag, msg = ahead[0]
            method = pending.get(tag)
            if method is None or msg.__class__ is not method.response or tag in abandoned:
                break
            ahead.popleft()
            del pending[tag]
            free.append(tag)
            replies.append((tag, None if method.returns_none else msg.value))  # type: ignore[attr-defined]
        return replies

    def _answer(self, tag: int, msg: Any) -> _Event | None:
        method = self._pending.pop(tag, None)
        if method is not None and self.negotiated:
            if tag in self._abandoned:
                self._abandoned.discard(tag)
                self._free.append(tag)
                return None
            self._free.append(tag)
            kind: type = msg.__class__
            if kind is method.response:
                return Reply(tag, None if method.returns_none else msg.value)
            if kind is Error:
                return Failed(tag, msg)  # r[jetstream.rpc.error.client-surface]
            return Failed(tag, RemoteProtocolError(  # r[jetstream.rpc.reject.wrong-response-type]
                f"the answer to {method.name} (tag {tag}) is a {type(msg).__name__}, not a {method.response.__name__}"))
        if not self.negotiated:
            if method is not None:  # cannot be: no call is sent before the handshake
                self._pending[tag] = method
            if msg.__class__ is Rversion and self._started:  # an Rversion to no Tversion is out of turn
                return self._negotiate(msg)
            if msg.__class__ is Error:
                return self._break(VersionError(f"the server answered the version handshake with an error: {msg}"))
            return self._break(RemoteProtocolError(
                f"the server sent a {type(msg).__name__} (tag {tag}) before answering the version handshake"))
        self.strays += 1
        return Stray(tag, self.spec.type_numbers[msg.__class__])

    def _negotiate(self, msg: Rversion) -> _Event:
        parsed = parse_version(msg.version)
        if msg.version == UNKNOWN_VERSION or parsed is None:
            return self._break(VersionError(
                f"the server refused version {self.version!r} (it answered {msg.version!r})"))
        ours = parse_version(self.version)
        if ours is not None and parsed.name != ours.name:
            return self._break(VersionError(
                f"the server answered with service {parsed.name!r}, not {ours.name!r} ({msg.version!r})"))
        if msg.msize < HEADER_SIZE:  # an acceptance no answer could ever fit: a refusal in all but name
            return self._break(VersionError(
                f"the server accepted {msg.version!r} with msize {msg.msize}, in which no frame fits"))
        self.negotiated = True
        self.peer_msize = msg.msize
        return Negotiated(msg.msize, msg.version)

    def _break(self, error: BaseException) -> _Event:
        """Fails every call in flight, then reports the stream broken (r[jetstream.rpc.mux.fail-on-close])."""
        if self.broken is not None:
            return Broken(self.broken)
        self.broken = error
        for tag in list(self._pending):
            del self._pending[tag]
            if tag not in self._abandoned:
                self._events.append(Failed(tag, error))
        self._abandoned.clear()
        self._events.append(Broken(error))
        return self._events.pop(0)

    def connection_lost(self, exc: BaseException | None = None) -> None:
        """The stream ended: the next events are those of the bytes received before the end, then
        a ``Failed`` for every call still in flight, then ``Broken``."""
        if self.broken is None and self._lost is None:
            error = ConnectionClosed("the connection was closed" + (f": {exc}" if exc else ""))
            if exc is not None:
                error.__cause__ = exc
            self._lost = error


class ServerSession:
    """The serving end of one stream of one service.

    ``require_version``: the first frame must be a ``Tversion`` (QUIC and WebTransport, as
    upstream's router: r[jetstream.rpc.version.first-frame]); on byte streams calls may come
    without one (r[jetstream.rpc.transport.stream-no-handshake]).
    """

    def __init__(self, spec: ServiceSpec, *, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
                 require_version: bool = False, debug: bool = False) -> None:
        _check_max_frame_size(max_frame_size)
        self.spec = spec
        self.max_frame_size = max_frame_size
        self.require_version = require_version
        self.debug = debug
        self.peer_msize: int | None = None
        """The client's msize once a Tversion was accepted: no answer is sent larger."""
        self.version: str | None = None
        self.in_flight = 0
        """Calls handed out as ``Call`` events and not yet answered."""
        self.closed: RemoteProtocolError | None = None
        self._reader = FrameReader(spec.Tframe, max_frame_size)
        self._encode_answer = frame_encoder(spec.Rframe)
        self._seen_frame = False
        self._events: list[_Event] = []
        self._ahead: deque[tuple[int, Any]] = deque()  # (tag, message) of each frame of a read, not yet events
        self._ahead_sizes: deque[int] = deque()

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        if self.closed is None and data:
            self._reader.feed(data)

    @property
    def buffered(self) -> int:
        """Bytes received and not yet made into events."""
        return self._reader.buffered + sum(self._ahead_sizes)

    def next_event(self) -> _Event | None:
        """The next event, or None until more bytes arrive. A caller that wants no more calls for
        now (too many in flight) simply stops asking: the bytes wait here."""
        if self._events:
            return self._events.pop(0)
        if self.closed is not None:
            return None
        ahead = self._ahead
        if not ahead:
            self._read_ahead()
        if ahead:
            tag, msg = ahead.popleft()
            self._ahead_sizes.popleft()
        else:
            try:
                frame = self._reader.next_frame()
            except FrameError as exc:
                return self._violation(f"the client sent a frame that does not decode: {_frame_problem(exc)}")
            if frame is None:
                return None
            tag, msg = frame.tag, frame.msg
        first = not self._seen_frame
        self._seen_frame = True
        if msg.__class__ is Tversion:
            return self._version(tag, msg, first)
        if first and self.require_version:
            return self._violation(
                f"the first frame must be a Tversion, not a {type(msg).__name__} (tag {tag})")
        self.in_flight += 1
        return Call(tag, self.spec.by_request[msg.__class__], msg)

    def _read_ahead(self) -> None:
        """Decodes every whole frame buffered into ``_ahead`` (once per read, not per frame); a
        frame that does not decode stays for ``next_frame`` to report."""
        sizes: list[int] = []
        self._ahead.extend(self._reader.next_messages(sizes))
        self._ahead_sizes.extend(sizes)

    def take_calls(self, room: int) -> list[tuple[int, Method, Any]]:
        """Up to ``room`` of the ``Call`` events next in line, as ``(tag, method, request)``
        without the event objects, counted in ``in_flight`` as a ``Call`` is: the calls of a
        read in one step, up to the first frame that makes any other event. Empty if the next
        event is not a call (``next_event()`` gives it) or none has come. Answer each with
        ``respond_to``, or make it a ``Call(tag, method, request)`` for ``respond`` and
        ``fail``, which check that a call is answered once (``respond_to`` does not)."""
        calls: list[tuple[int, Method, Any]] = []
        if self._events or self.closed is not None or room <= 0:
            return calls
        ahead = self._ahead
        if not ahead:
            self._read_ahead()
        if not ahead or (self.require_version and not self._seen_frame):
            return calls  # a first frame that must be a Tversion: next_event says what it makes
        by_request = self.spec.by_request
        sizes = self._ahead_sizes
        while ahead and room:
            tag, msg = ahead[0]
            method = by_request.get(msg.__class__)
            if method is None:
                break  # a Tversion: next_event answers it
            ahead.popleft()
            sizes.popleft()
            calls.append((tag, method, msg))
            room -= 1
        if calls:
            self._seen_frame = True
            self.in_flight += len(calls)
        return calls

    def _violation(self, reason: str) -> _Event:
        self.closed = RemoteProtocolError(reason)
        return Violation(self.closed)

    def _version(self, tag: int, msg: Tversion, first: bool) -> _Event:
        """r[jetstream.rpc.version.handshake], reply-tag, reject-unknown; a Tversion after an
        agreed one goes to ``_renegotiate``."""
        if self.version is not None:
            return self._renegotiate(tag, msg)
        parsed = parse_version(msg.version)
        if parsed is None or parsed.name != self.spec.name or msg.msize < HEADER_SIZE:
            why = (f"its msize {msg.msize} fits no frame" if parsed is not None and parsed.name == self.spec.name
                   else f"this server serves {self.spec.name!r}")
            self._events.append(self._violation(f"the client asked for {msg.version!r}; {why}"))
            return Send(self.spec.Rframe(tag, Rversion(0, UNKNOWN_VERSION)).encode())
        self.version = msg.version  # the client's own string: same name, and upstream echoes it
        self.peer_msize = min(msg.msize, self.max_frame_size)
        return Send(self.spec.Rframe(tag, Rversion(self.peer_msize, msg.version)).encode())

    def _renegotiate(self, tag: int, msg: Tversion) -> _Event:
        """A Tversion on a stream that has agreed a version is answered as upstream's generated
        service answers one, nothing reset, calls in flight unaffected
        (r[jetstream.rpc.version.renegotiate], the spec's §5.2): a version string that does not
        parse gets no answer; the same service's name is accepted with the lower of the two
        versions; anything else, 9P's versions included, gets ``unknown``. The msize is the
        client's capped at ``max_frame_size`` as in the first handshake, since this server
        enforces its limit where upstream's enforces none."""
        if msg.version not in LEGACY_9P_VERSIONS:
            parsed = parse_version(msg.version)
            if parsed is None:
                return Ignored(tag, f"a Tversion whose version {msg.version!r} does not parse is not answered")
            if parsed.name == self.spec.name and msg.msize >= HEADER_SIZE:
                ours = self.spec.version.rsplit("/", 1)[1]
                agreed = min(parsed.semver, ours, key=semver_key)
                self.version = f"{VERSION_PREFIX}/{self.spec.name}/{agreed}"
                self.peer_msize = min(msg.msize, self.max_frame_size)
                return Send(self.spec.Rframe(tag, Rversion(self.peer_msize, self.version)).encode())
        return Send(self.spec.Rframe(tag, Rversion(0, UNKNOWN_VERSION)).encode())

    def respond(self, call: Call, value: Any) -> bytes:
        """The answer to ``call``: the method's response frame, with the call's tag. A value that
        cannot be encoded, or an answer over the client's msize, becomes an error frame instead
        (the client gets an answer either way, and the reason when ``debug``)."""
        if call.answered:
            raise _answered_twice(call)
        call.answered = True
        return self.respond_to(call.tag, call.method, value)

    def respond_to(self, tag: int, method: Method, value: Any) -> bytes:
        """``respond`` to a call taken with ``take_calls``: its tag and method, no ``Call``."""
        self.in_flight -= 1
        try:
            if method.returns_none:
                response = method.response()
            else:  # a @wireformat dataclass of one field (service._message): stored as its __init__ stores it
                response = _new(method.response)
                response.value = value
            data = self._encode_answer(tag, response)
        except WireError as exc:
            return self._error_frame(tag, _internal(f"{method.name} returned a value with no encoding", exc,
                                                    self.debug))
        if self.peer_msize is not None and len(data) > self.peer_msize:
            return self._error_frame(tag, Error(
                f"the answer to {method.name} is {len(data)} bytes, over the client's msize of {self.peer_msize}",
                code="jetwire::rpc::msize"))
        return bytes(data)

    def fail(self, call: Call, error: BaseException) -> bytes:
        """The error frame (type 5) answering ``call`` (r[jetstream.rpc.error.frame]): a
        ``jetwire.Error`` as it is, any other exception as a generic error that says what
        happened only when ``debug`` is set."""
        if call.answered:
            raise _answered_twice(call)
        call.answered = True
        self.in_flight -= 1
        if not isinstance(error, Error):
            error = _internal(f"{call.method.name} failed", error, self.debug)
        return self._error_frame(call.tag, error)

    def _error_frame(self, tag: int, error: Error) -> bytes:
        try:
            data = self._encode_answer(tag, error)
        except WireError as exc:  # an Error too big for its u16 lengths, say: send what can be sent
            error = Error(_cut(f"the error could not be encoded ({exc.reason}): {error.message}"),
                          code=INTERNAL_ERROR_CODE, backtrace=Backtrace())
            data = self.spec.Rframe(tag, error).encode()
        if self.peer_msize is not None and len(data) > self.peer_msize:
            return self._fitted_error_frame(tag, error, self.peer_msize)
        return bytes(data)

    def _fitted_error_frame(self, tag: int, error: Error, limit: int) -> bytes:
        """The error cut to the client's msize (r[jetstream.rpc.limits.peer-msize]): help, url
        and backtrace go first, then the message's tail, then the code. Below the smallest error
        frame (16 bytes) that one goes out all the same: the call must be answered."""
        no_trace = Backtrace(intern_table=(), frames=())
        for code in (error.code, None):
            room = limit - len(self.spec.Rframe(tag, Error("", code=code, backtrace=no_trace)).encode())
            if room < 0:
                continue
            return bytes(self.spec.Rframe(tag, Error(_cut(error.message, room), code=code,
                                                     backtrace=no_trace)).encode())
        return bytes(self.spec.Rframe(tag, Error("", backtrace=no_trace)).encode())


_CUT_MARK = "…"
_CUT_MARK_SIZE = len(_CUT_MARK.encode())


def _cut(text: str, room: int = MAX_ERROR_TEXT) -> str:
    """``text`` (lone surrogates replaced) if it fits in ``room`` UTF-8 bytes, else its start cut
    at a character boundary, marked as cut when the mark fits too. Bytes, not characters, are
    what a frame has room for."""
    # errors="replace": a lone surrogate (a file name read with surrogateescape, say) has no
    # UTF-8; it becomes "?" rather than an exception that leaves the call unanswered
    raw = text.encode(errors="replace")
    if len(raw) <= room:
        return raw.decode()
    if room < _CUT_MARK_SIZE:
        return raw[:room].decode(errors="ignore")
    return raw[:room - _CUT_MARK_SIZE].decode(errors="ignore") + _CUT_MARK


def _answered_twice(call: Call) -> LocalProtocolError:
    """A second answer would be a frame with a tag the client may already have given to another
    call (r[jetstream.rpc.mux.one-response])."""
    return LocalProtocolError(f"the {call.method.name} call (tag {call.tag}) was already answered")


def _internal(what: str, exc: BaseException, debug: bool) -> Error:
    """A generic error for an exception that is not a ``jetwire.Error``: its type and text, and
    the traceback as ``help``, only in debug mode: they may say what the client should not know."""
    if not debug:
        return Error(f"internal error: {what}", code=INTERNAL_ERROR_CODE)
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    try:
        text = str(exc)
    except Exception:  # an exception whose text cannot be made must still be answered
        text = "<its text could not be made>"
    return Error(_cut(f"{what}: {type(exc).__name__}: {text}"), code=INTERNAL_ERROR_CODE, help=_cut(tb))

"""The asyncio shell around the sessions: one ``asyncio.Protocol`` per stream, whatever the
transport (``transports.py``).

A client channel writes calls and resolves their futures as answers arrive, in any order
(r[jetstream.rpc.mux.out-of-order]). A server channel runs each call as a task of its own
(r[jetstream.rpc.transport.stream-concurrent]), at most ``max_calls`` at a time per stream:
past that it stops reading (r[jetstream.rpc.limits.max-frame] bounds one frame, this bounds how
many), as it does while the peer is not reading its answers, so memory stays bounded by the
limits, never by the peer.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import select
import socket
import struct
import sys
from collections import deque
from collections.abc import Awaitable, Callable
from contextvars import copy_context
from typing import Any, ClassVar, TypeVar

from typing_extensions import Self

from ..runtime.steps import finish
from ..stdtypes import Error
from .certificates import verified_peer_certificate
from .protocol import DEFAULT_MAX_FRAME_SIZE, CallTimeout, ConnectionClosed, ConnectTimeout
from .service import Context, Method, ServiceSpec, service_of, spec_of
from .session import (
    MAX_TAGS,
    Broken,
    Call,
    ClientSession,
    Failed,
    Ignored,
    Negotiated,
    Reply,
    Send,
    ServerSession,
    Violation,
)
from .transports import TLS, TRANSPORTS, Listener, Missing, listen, open_stream, parse_url

__all__ = ["Service", "ClientChannel", "ServerChannel", "Server", "serve", "connect", "DEFAULT_MAX_CALLS",
           "DEADLINE_CODE", "UNIMPLEMENTED_CODE", "SHUTDOWN_CODE"]

log = logging.getLogger("jetwire.rpc")
S = TypeVar("S")

DEFAULT_MAX_CALLS = 256
"""Calls of one stream a server runs at once before it stops reading that stream (upstream's
Rust router queues 256 answers)."""
DEADLINE_CODE = "jetwire::rpc::deadline_exceeded"
UNIMPLEMENTED_CODE = "jetwire::rpc::unimplemented"
SHUTDOWN_CODE = "jetwire::rpc::shutting_down"

_Task: Any = asyncio.Task
# asyncio's own table of running tasks (3.10, 3.11): a look-up there costs less than current_task()
_RunningTasks = dict[asyncio.AbstractEventLoop, asyncio.Task[Any]]
_current_tasks: _RunningTasks | None = getattr(asyncio.tasks, "_current_tasks", None)
_EAGER = sys.version_info >= (3, 12)  # a call that needs no await runs to its end before a task is scheduled
_FLUSH_AT = 64 * 1024  # asyncio's default high-water mark: a client's unsent calls are written past it


class Service:
    """The base of a service declaration, for what a type checker should know of its clients:
    ``Svc.connect(url)`` returns a client typed as the service itself, whose methods are the
    declaration's, and which is an async context manager (leaving it closes the connection).

    ``@rpc.service`` works on a class without it too; ``rpc.connect(Svc, url)`` connects then.
    """

    NAME: ClassVar[str]
    """The service's name: the class name lowercased unless ``@service(name=...)``."""
    VERSION: ClassVar[str]
    """``rs.jetstream.proto/<NAME>/<semver>+<digest>`` (r[jetstream.rpc.version.string])."""

    @classmethod
    async def connect(cls, url: str, *, tls: TLS | None = None, timeout: float | None = None,
                      connect_timeout: float | None = 30.0, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
                      max_tags: int = MAX_TAGS, version: str | None = None) -> Self:
        """A client connected to ``url`` (``tcp://host:port``, ``unix:///path``,
        ``quic://host:port``), the version handshake done: see ``jetwire.rpc.connect``."""
        return await connect(cls, url, tls=tls, timeout=timeout, connect_timeout=connect_timeout,
                             max_frame_size=max_frame_size, max_tags=max_tags, version=version)

    def with_timeout(self, seconds: float | None) -> Self:
        """This client with another per-call timeout (None: none); the connection is shared."""
        raise TypeError(f"{type(self).__qualname__} is a service declaration, not a connected client")

    async def close(self) -> None:
        """Closes the client's connection; calls still in flight fail with ``ConnectionClosed``."""
        raise TypeError(f"{type(self).__qualname__} is a service declaration, not a connected client")

    @property
    def strays(self) -> int:
        """Answers that arrived for no call in flight on this connection, ignored
        (r[jetstream.rpc.mux.unknown-tag]): a server answering twice, or tags it made up."""
        raise TypeError(f"{type(self).__qualname__} is a service declaration, not a connected client")

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def _load_transport(url: str) -> None:
    """Checks ``url``; the place where a transport with an optional dependency (QUIC) is loaded
    on first use, so that only programs using it import that dependency."""
    if parse_url(url).scheme == "quic" and isinstance(TRANSPORTS["quic"], Missing):
        try:
            from . import quic
        except ModuleNotFoundError as missing:
            if not (missing.name or "").startswith("aioquic"):
                raise
            return  # the Missing entry says what to install when it is used
        TRANSPORTS["quic"] = quic.QUIC


# =============================================================================================
# Client

class ClientChannel(asyncio.Protocol):
    """One client stream: the session, the transport, and a future per call in flight."""

    def __init__(self, session: ClientSession, url: str) -> None:
        self.session = session
        self.url = url
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.ready: asyncio.Future[None] = self.loop.create_future()
        self.closed: asyncio.Future[None] = self.loop.create_future()
        self._futures: dict[int, asyncio.Future[Any]] = {}
        self._waiters: deque[asyncio.Future[None]] = deque()  # calls waiting for a tag or for the writer
        self._writable = True
        self._unsent: list[bytes] = []  # calls made in this turn of the loop, sent at its end
        self._unsent_bytes = 0
        self._new_future = _future_maker(self.loop)

    def __repr__(self) -> str:
        state = "closed" if self.session.broken is not None else f"{len(self._futures)} calls in flight"
        return f"<ClientChannel {self.url} {state}>"

    # --- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.session.start())

    def data_received(self, data: bytes) -> None:
        session = self.session
        session.receive_data(data)
        futures = self._futures
        while True:
            for tag, value in session.next_replies():  # most answers: no event object each
                future = futures.pop(tag, None)
                if future is not None and not future.done():
                    future.set_result(value)
            event = session.next_event()
            if event is None:
                break
            kind = event.__class__
            if kind is Reply:
                future = futures.pop(event.tag, None)  # type: ignore[attr-defined]
                if future is not None and not future.done():
                    future.set_result(event.value)  # type: ignore[attr-defined]
            elif kind is Failed:
                future = futures.pop(event.tag, None)  # type: ignore[attr-defined]
                if future is not None and not future.done():
                    future.set_exception(event.error)  # type: ignore[attr-defined]
            elif kind is Negotiated:
                if not self.ready.done():
                    self.ready.set_result(None)
            elif kind is Broken:
                self._shut(event.error)  # type: ignore[attr-defined]
            else:  # Stray: r[jetstream.rpc.mux.unknown-tag]
                log.debug("%s: %r ignored (no call in flight has that tag)", self.url, event)
        if self._waiters and self._writable and session.tags_free():
            self._wake()  # a late answer to an abandoned call frees its tag too, with no event

    def eof_received(self) -> bool | None:
        return False  # the server is done: close, and connection_lost fails what is in flight

    def connection_lost(self, exc: Exception | None) -> None:
        self.session.connection_lost(exc)
        self.data_received(b"")  # the session's Failed and Broken events
        self._shut(ConnectionClosed("the connection was closed" + (f": {exc}" if exc else "")))
        if not self.closed.done():
            self.closed.set_result(None)

    def pause_writing(self) -> None:
        self._writable = False

    def resume_writing(self) -> None:
        self._writable = True
        self._wake()

    # --- calls
    async def call(self, method: Method, request: Any, timeout: float | None) -> Any:
        """Sends the call and awaits its answer (what the generated client methods return)."""
        session = self.session
        if not self._writable or not session.tags_free():
            if timeout is None:
                await self._wait_for_room()
            else:  # the call's timeout covers its wait: tags held by calls never answered may never free
                started = self.loop.time()
                try:
                    await asyncio.wait_for(self._wait_for_room(), timeout)
                except asyncio.TimeoutError:
                    waited_for = (f"no free tag (all {session.max_tags} held by calls in flight or abandoned)"
                                  if not session.tags_free() else "the server reading what was sent")
                    raise CallTimeout(f"{method.name}: {waited_for}, for {timeout} s, on {self.url}") from None
                timeout = max(0.0, timeout - (self.loop.time() - started))
        try:
            tag, data = session.call(method, request)  # raises once closed: the error says why
        finally:
            if self._waiters and self._writable and session.tags_free():
                self._wake()  # room for more than this call (or it took none): the next waiting one goes
        future = self._new_future()
        self._futures[tag] = future
        # Calls made in one turn of the event loop (32 callers woken by one read of answers)
        # leave in one write at its end: one send() instead of one each (client CPU per call at
        # 32 in flight 0.58x in benchmarks/rpc.py). Past 64 KiB unsent, the write happens
        # at once, so the transport's pause_writing stops further calls as it did write by write.
        unsent = self._unsent
        unsent.append(data)
        self._unsent_bytes += len(data)
        if len(unsent) == 1:
            self.loop.call_soon(self._flush)
        elif self._unsent_bytes >= _FLUSH_AT:
            self._flush()
        timer = None if timeout is None else self.loop.call_later(timeout, self._expire, tag, future, method, timeout)
        try:
            return await future
        except asyncio.CancelledError:
            if self._futures.get(tag) is future:  # still ours: the answer has not come
                del self._futures[tag]
                session.abandon(tag)
            raise
        finally:
            if timer is not None:
                timer.cancel()

    def _flush(self) -> None:
        unsent = self._unsent
        if unsent:
            self._unsent, self._unsent_bytes = [], 0
            if self.transport is not None and not self.transport.is_closing():
                self.transport.write(b"".join(unsent) if len(unsent) > 1 else unsent[0])

    def _expire(self, tag: int, future: asyncio.Future[Any], method: Method, timeout: float) -> None:
        if self._futures.get(tag) is future and not future.done():
            del self._futures[tag]
            self.session.abandon(tag)
            future.set_exception(CallTimeout(
                f"{method.name} (tag {tag}): no answer within {timeout} s from {self.url}"))

    async def _wait_for_room(self) -> None:
        """Waits its turn for a free tag and a transport that takes writes (or a closed stream).
        Each freed tag wakes one waiter, so waiting costs nothing while no tag is free."""
        line_up = self._waiters.append
        while self.session.broken is None and (not self._writable or not self.session.tags_free()):
            waiter = self.loop.create_future()
            line_up(waiter)
            line_up = self._waiters.appendleft  # woken, but a new call took the tag first: still first in line
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake()  # woken, then cancelled: the turn passes on
                else:
                    with contextlib.suppress(ValueError):
                        self._waiters.remove(waiter)
                raise

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _shut(self, error: BaseException) -> None:
        # Only once the session is broken (its Broken event, or connection_lost after it made
        # that event): the session's state says the channel is closed, none of the channel's own.
        for future in self._futures.values():
            if not future.done():
                future.set_exception(ConnectionClosed(f"the connection to {self.url} closed: {error}"))
        self._futures.clear()
        if not self.ready.done():
            self.ready.set_exception(error)
            self.ready.exception()  # retrieved: the caller of connect sees it through ready, or never waited
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)  # they retry, and session.call raises ConnectionClosed
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    async def close(self) -> None:
        """Closes the stream; calls in flight fail with ``ConnectionClosed``. With tags still
        held (calls in flight, or abandoned and not yet answered) the close is abortive: the
        server then cancels their handlers instead of running them for nobody."""
        transport = self.transport
        if transport is not None:
            if self.session.in_flight:
                _reset(transport)
            else:
                transport.close()
        await asyncio.shield(self.closed)

    @property
    def in_flight(self) -> int:
        return len(self._futures)


def _future_maker(loop: asyncio.AbstractEventLoop) -> Callable[[], asyncio.Future[Any]]:
    """``loop.create_future``, or what it does, without its frame: asyncio's own loops make
    ``asyncio.Future(loop=loop)`` (a frame fewer per call); another loop (uvloop) keeps its own."""
    if getattr(type(loop), "create_future", None) is asyncio.BaseEventLoop.create_future:
        return functools.partial(asyncio.Future, loop=loop)
    return loop.create_future


def _reset(transport: asyncio.Transport) -> None:
    """Closes now, unsent bytes dropped; over TCP with a reset, as a FIN would only say that the
    client sends no more, and the server would answer every call first
    (r[jetstream.rpc.transport.quic-shutdown])."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.type == socket.SOCK_STREAM and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def connect(service: type[S], url: str, *, tls: TLS | None = None, timeout: float | None = None,
                  connect_timeout: float | None = 30.0, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
                  max_tags: int = MAX_TAGS, version: str | None = None) -> S:
    """A client of ``service`` connected to ``url``, the version handshake done
    (r[jetstream.rpc.version.client-wait]). ``timeout`` is every call's default (None: wait for
    ever; ``client.with_timeout(s)`` for others); ``connect_timeout`` bounds the connection and
    the handshake. Raises ``VersionError`` if the server refuses the service, ``OSError`` if
    nothing listens there, ``ConnectTimeout`` (a ``CallTimeout``) past ``connect_timeout``."""
    spec = spec_of(service)
    _load_transport(url)  # a bad URL fails here, with its own message
    session = ClientSession(spec, max_frame_size=max_frame_size, max_tags=max_tags, version=version)

    async def handshake() -> ClientChannel:
        _, channel = await open_stream(url, lambda: ClientChannel(session, url), tls)
        assert isinstance(channel, ClientChannel)
        try:
            await asyncio.shield(channel.ready)
        except BaseException:
            await channel.close()
            raise
        return channel

    try:
        channel = await asyncio.wait_for(handshake(), connect_timeout)
    except asyncio.TimeoutError:  # a jetwire error, and a TimeoutError on 3.10 too (asyncio's was not one)
        raise ConnectTimeout(f"{url}: no connection and version handshake within {connect_timeout} s") from None
    client: S = spec.client_class(channel, timeout)
    return client


# =============================================================================================
# Server

class ServerChannel(asyncio.Protocol):
    """One served stream: reads calls, runs each as a task, writes each answer when ready."""

    def __init__(self, server: Server, transport_name: str) -> None:
        self.server = server
        self.transport_name = transport_name
        self.session = ServerSession(server.spec, max_frame_size=server.max_frame_size,
                                     require_version=server.require_version, debug=server.debug)
        self.loop = server.loop
        self.transport: asyncio.Transport | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.peer: Any = None
        self.local: Any = None
        self.credentials: tuple[int, int, int] | None = None
        self.peer_certificate: dict[str, Any] | None = None
        self.peer_certificate_der: bytes | None = None
        self._reading = True  # whether this side wants bytes (the transport is paused otherwise)
        self._writable = True
        self._draining = False  # no more calls from this stream: answer those running, then close
        self._lost = False
        self._pumping = False  # _pump's loop is running (further up the stack)
        self._unsent: list[bytes] = []  # answers written in this turn of the loop, sent at its end

    # --- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.peer = transport.get_extra_info("peername")
        self.local = transport.get_extra_info("sockname")
        if self.transport_name == "unix":
            self.credentials = _peer_credentials(transport)
        self.peer_certificate, self.peer_certificate_der = verified_peer_certificate(transport)
        server = self.server
        if server.max_connections is not None and len(server._channels) >= server.max_connections:
            server.refused += 1
            log.info("%s: connection from %s refused: already %d, max_connections", server.spec.name, self.peer,
                     len(server._channels))
            self._lost = self._draining = True  # nothing read, nothing written: gone at once
            transport.abort()
            return
        server._channels.add(self)
        if server._closing:
            self.drain()

    def data_received(self, data: bytes) -> None:
        self.session.receive_data(data)
        self._pump()

    def eof_received(self) -> bool | None:
        if _hung_up(self.transport):
            return False  # closed, not half-closed: nobody reads the answers (connection_lost cancels)
        # The client finished sending: the calls it sent are still answered, then this side
        # closes (r[jetstream.rpc.transport.quic-shutdown]).
        self.drain()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._draining = True
        for task in list(self.tasks):
            task.cancel()  # nobody will read the answers
        self.server._channels.discard(self)
        self.server._channel_gone()

    def pause_writing(self) -> None:
        # The client is not reading its answers: read no more calls from it until it does.
        self._writable = False
        self._set_reading()

    def resume_writing(self) -> None:
        self._writable = True
        self._pump()

    # --- calls
    def _pump(self) -> None:
        """Turns buffered bytes into calls while the limits allow; stops reading when they don't."""
        if self._pumping:
            # A call this loop started has ended and asks for the next one: the loop takes it
            # when that call's _start returns. Taking it here would nest a call inside a call,
            # a stack frame deeper for each of thousands of quick calls queued behind max_calls.
            return
        self._pumping = True
        try:
            self._take_calls()
        finally:
            self._pumping = False
        self._set_reading()

    def _take_calls(self) -> None:
        session = self.session
        server = self.server
        limit = server.max_calls
        while not self._draining and self._writable and session.in_flight < limit:
            calls = session.take_calls(limit - session.in_flight)  # most reads: calls only, no event objects
            if calls:
                # Calls taken together are started together, even if one of them drains the
                # stream in its first step (a handler that closes the server): each was read
                # within max_calls, so it runs and is answered as a call already running is.
                if server.steps_inline:
                    self._step_inline(calls)
                else:
                    start = self._start
                    for tag, method, request in calls:
                        start(tag, method, request)
                continue
            event = session.next_event()
            if event is None:
                break
            kind = event.__class__
            if kind is Call:  # one take_calls left to next_event, that decoded it the slow way
                call = (event.tag, event.method, event.request)  # type: ignore[attr-defined]
                if server.steps_inline:
                    self._step_inline([call])
                else:
                    self._start(*call)
            elif kind is Send:
                self._write(event.data)  # type: ignore[attr-defined]
            elif kind is Violation:
                log.warning("%s from %s: %s; closing the stream", self.server.spec.name, self.peer,
                            event.error)  # type: ignore[attr-defined]
                self.drain()
            elif kind is Ignored:
                log.info("%s from %s: %s", self.server.spec.name, self.peer, event.reason)  # type: ignore[attr-defined]

    def _set_reading(self) -> None:
        want = not self._draining and self._writable and self.session.in_flight < self.server.max_calls
        if want != self._reading and self.transport is not None and not self._lost:
            self._reading = want
            if want:
                self.transport.resume_reading()
            else:
                self.transport.pause_reading()

    def _start(self, tag: int, method: Method, request: Any) -> None:
        server = self.server
        server.calls += 1
        context = None
        if method.context_params:
            context = self._context(tag, method)
        handler = server.handlers[method.request]
        try:
            running: Any = handler(server.impl, request, context)  # a coroutine, by the declaration
            if server.call_timeout is not None:
                running = asyncio.wait_for(running, server.call_timeout)
            # The handler's coroutine is the task itself, answered from its done callback: no
            # coroutine of ours around it. It starts eagerly (3.12+, or _step_now), so a call
            # that never awaits is answered here, before any task is scheduled.
            if _EAGER:
                task = _Task(running, loop=self.loop, eager_start=True)
            else:  # the Task as on 3.12 (no task factory), without create_task's frame
                task = _Task(running, loop=self.loop)
                _step_now(self.loop, task)
        except Exception as exc:  # an implementation whose method is not a coroutine function, or takes other arguments
            self._write(self._failure(Call(tag, method, request), exc))
            self._finished()
            return
        if not task.done():
            call = Call(tag, method, request)  # the event object only for a call that waits
            self.tasks.add(task)
            task.add_done_callback(functools.partial(self._answer, call))
            return
        try:
            value = task.result()  # most calls: _answer's common case, without its frame and its look in self.tasks
        except BaseException:  # cancelled, or the handler's exception: _answer says which
            self._answer(Call(tag, method, request), task)
            return
        if self._lost:
            self.session.in_flight -= 1  # as _answer does: nobody is there to read an answer
            return
        data = self.session.respond_to(tag, method, value)
        if self._unsent:  # _write's common case, without its frame: the turn's flush is already queued
            self._unsent.append(data)
        else:
            self._write(data)
        if self._draining or not self._reading:  # what _finished acts on; most calls: neither
            self._finished()

    def _step_inline(self, calls: list[tuple[int, Method, Any]]) -> None:
        """``serve(steps_inline=True)``: each handler runs here up to its first wait, with no
        task (a call that never waits is answered without one); a call that waits goes on in a
        task from where it stopped. Each call still has contextvars of its own: the first step
        runs in a copy of this callback's context, and the task in a copy of that
        (runtime/steps.py). One loop for the calls of a read, the common case of each inline."""
        server = self.server
        server.calls += len(calls)
        impl, handlers, respond_to = server.impl, server.handlers, self.session.respond_to
        for tag, method, request in calls:
            context = None
            if method.context_params:
                context = self._context(tag, method)
            try:
                coroutine: Any = handlers[method.request](impl, request, context)
                values = copy_context()
                waiting_on = values.run(coroutine.send, None)  # first_step, without its frame
            except StopIteration as done:
                data = respond_to(tag, method, done.value)
                if self._unsent:  # _write's common case, without its frame: the turn's flush is queued
                    self._unsent.append(data)
                else:
                    self._write(data)
                continue
            except (Exception, asyncio.CancelledError) as exc:
                self._write(self._failure(Call(tag, method, request), exc))
                continue
            running: Any = finish(coroutine, waiting_on)
            if server.call_timeout is not None:
                running = asyncio.wait_for(running, server.call_timeout)
            task = values.run(self.loop.create_task, running)
            self.tasks.add(task)
            task.add_done_callback(functools.partial(self._answer, Call(tag, method, request)))
        if self._draining or not self._reading:  # what _finished acts on; most reads: neither
            self._finished()

    def _context(self, tag: int, method: Method) -> Context:
        return Context(peer=self.peer, local=self.local, transport=self.transport_name, tag=tag,
                       method=method.name, service=self.server.spec.name, credentials=self.credentials,
                       peer_certificate=self.peer_certificate, peer_certificate_der=self.peer_certificate_der)

    def _answer(self, call: Call, task: asyncio.Task[Any]) -> None:
        """Writes the answer of a finished call (exactly one: r[jetstream.rpc.mux.one-response])."""
        self.tasks.discard(task)
        session = self.session
        if task.cancelled():
            if self._lost:  # nobody is there to read an answer
                session.in_flight -= 1
                return
            data = session.fail(call, Error(f"{call.method.name} was cancelled: the server is shutting down",
                                            code=SHUTDOWN_CODE))
        else:
            exc = task.exception()
            if exc is None:
                data = session.respond(call, task.result())
            elif isinstance(exc, asyncio.TimeoutError) and self.server.call_timeout is not None:
                data = session.fail(call, Error(
                    f"{call.method.name} did not finish within {self.server.call_timeout} s", code=DEADLINE_CODE))
            else:
                data = self._failure(call, exc)
        if self._lost:
            return
        self._write(data)
        self._finished()

    def _failure(self, call: Call, exc: BaseException) -> bytes:
        """The error answer of a handler that raised: the call's failure, never the server's."""
        if not isinstance(exc, Error):
            log.error("%s.%s failed", self.server.spec.name, call.method.name, exc_info=exc)
        return self.session.fail(call, exc)

    def _write(self, data: bytes) -> None:
        # Answers finished in one turn of the event loop leave in one write at its end: with
        # many calls in flight, one send() for all instead of one each (measured in
        # benchmarks/rpc.py: the server's CPU per call at 32 in flight fell by about a third).
        if self._unsent:
            self._unsent.append(data)
        elif not self._lost:
            self._unsent = [data]
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        unsent, self._unsent = self._unsent, []
        if unsent and not self._lost and self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(unsent) if len(unsent) > 1 else unsent[0])

    def _finished(self) -> None:
        if self._draining:
            if self.session.in_flight == 0:
                self._close()
        elif not self._reading:
            # Reading stopped at the limit of calls (or for a peer not reading): one call fewer
            # may let it go on. While reading, _pump has already made a call of every whole frame
            # received, so asking again per answer would only find nothing (a tenth of the
            # server's Python time per call at 32 in flight went there).
            self._pump()

    def drain(self) -> None:
        """Reads no more calls; answers those running, then closes the stream."""
        self._draining = True
        self._set_reading()
        if self.server._closing:
            self._refuse_waiting_calls()
        if self.session.in_flight == 0:
            self._close()

    def _refuse_waiting_calls(self) -> None:
        """Calls read but held back by max_calls are answered at once, with an error saying they
        did not run: their clients may send them again elsewhere, as they may not a call that
        fails with ConnectionClosed (it may have run)."""
        session = self.session
        while True:
            event = session.next_event()
            if event is None:
                return
            if isinstance(event, Call):
                self._write(session.fail(event, Error(
                    f"{event.method.name} was not started: the server is shutting down", code=SHUTDOWN_CODE)))
            elif isinstance(event, Send):
                self._write(event.data)

    def _close(self) -> None:
        self._flush()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()  # after the answers written before it


class TimedServerChannel(ServerChannel):
    """A served stream under ``idle_timeout`` or ``frame_timeout``. Reads note the time (per
    read, not per frame, and only on servers with these options: ``ServerChannel`` pays
    nothing); one timer per stream, re-armed every ``Server.check_every`` seconds, compares.
    A stream past a timeout is drained (running calls answered, then closed), and aborted at
    a later check if it is still open with nothing running (a peer not reading what is left)."""

    _timer: asyncio.TimerHandle | None = None
    _timed_out = False

    def __init__(self, server: Server, transport_name: str) -> None:
        super().__init__(server, transport_name)
        self.clock: Callable[[], float] = self.loop.time
        """Where the stream's times come from: the loop's clock (tests give their own)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._last_read = self._busy = self._frame_began = self.clock()
        super().connection_made(transport)
        if not self._lost:
            self._timer = self.loop.call_later(self.server.check_every, self._tick)

    def data_received(self, data: bytes) -> None:
        now = self._last_read = self.clock()
        if not self.session.buffered:
            self._frame_began = now  # this read begins a frame
        super().data_received(data)

    def _pump(self) -> None:
        before = self.session.buffered
        super()._pump()
        if self.session.buffered < before:
            self._frame_began = self.clock()  # a frame was read whole: what is left begins now

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().connection_lost(exc)

    def _tick(self) -> None:
        self._timer = None
        if not self._lost:
            self.check(self.clock())
            if not self._lost:
                self._timer = self.loop.call_later(self.server.check_every, self._tick)

    def check(self, now: float) -> None:
        """Closes the stream if it is past a timeout at ``now`` (the timer's work; public for tests)."""
        server, session, transport = self.server, self.session, self.transport
        if transport is None:
            return
        if self._timed_out:
            if not session.in_flight:
                transport.abort()  # drained a check ago and still open: its peer is not reading
            return
        if transport.is_closing():
            return
        if session.in_flight:
            self._busy = now
        if not self._reading:
            self._frame_began = now  # a frame waits for this side, not for the peer
        if (server.frame_timeout is not None and self._reading and session.buffered
                and now - self._frame_began >= server.frame_timeout):
            server.slow_frames += 1
            self._time_out(f"a frame begun {now - self._frame_began:.3g} s ago is not finished "
                           f"(frame_timeout {server.frame_timeout} s)")
        elif (server.idle_timeout is not None and not session.in_flight
              and (not session.buffered or not self._writable)
              and now - max(self._last_read, self._busy) >= server.idle_timeout):
            server.idle_closed += 1
            self._time_out(f"no call and nothing received for {now - max(self._last_read, self._busy):.3g} s "
                           f"(idle_timeout {server.idle_timeout} s)")

    def _time_out(self, why: str) -> None:
        log.info("%s: closing the connection from %s: %s", self.server.spec.name, self.peer, why)
        self._timed_out = True
        self.drain()


def _step_now(loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any]) -> None:
    """3.12's eager start on 3.10 and 3.11: the task's first step, which creating it has just
    queued, runs here instead, inside the task (current_task() is the call's, its contextvars
    its own), so a call that never awaits ends with no turn of the loop and no done callback
    (measured in benchmarks/rpc.py). Their asyncio no longer changes; any other loop (uvloop
    has no ``_ready``), or a task already running (one cannot be entered inside another),
    leaves the step queued."""
    # Private attributes relied on, each looked up with a default: the loop's ``_ready`` deque,
    # a Handle's ``_callback`` and ``_context``; without any of them the step stays queued.
    # The handle's own _run is not called: its frame only catches what a task's step never
    # raises (the step catches everything but SystemExit and KeyboardInterrupt, which _run
    # re-raises too), and a task's step takes no arguments.
    ready = getattr(loop, "_ready", None)
    if not ready:
        return
    handle = ready[-1]
    step = getattr(handle, "_callback", None)
    context = getattr(handle, "_context", None)
    if context is None or getattr(step, "__self__", None) is not task:
        return
    running = asyncio.current_task(loop) if _current_tasks is None else _current_tasks.get(loop)
    if running is None:
        ready.pop()
        context.run(step)


def _hung_up(transport: asyncio.BaseTransport | None) -> bool:
    """Whether the peer closed both ways. After a FIN, TCP cannot tell (its client resets
    instead: ``_reset``); a unix socket whose peer closed reports POLLHUP, one whose peer only
    shut down its writing does not."""
    sock = None if transport is None else transport.get_extra_info("socket")
    if sock is None or sock.fileno() < 0 or not hasattr(select, "poll"):
        return False
    poller = select.poll()
    poller.register(sock.fileno(), 0)  # POLLHUP is reported whatever is asked for
    return any(events & select.POLLHUP for _, events in poller.poll(0))


def _peer_credentials(transport: asyncio.BaseTransport) -> tuple[int, int, int] | None:
    sock = transport.get_extra_info("socket")
    option = getattr(socket, "SO_PEERCRED", None)
    if sock is None or option is None:
        return None
    try:
        pid, uid, gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i")))
    except OSError:
        return None
    return pid, uid, gid


class Server:
    """A service being served: ``async with await rpc.serve(impl, url) as server``.

    ``urls`` are the addresses bound (port 0 becomes the port chosen). ``close(timeout)`` stops
    accepting, reads no more calls (those read but held back by ``max_calls`` get a
    ``shutting_down`` error saying they were not started), lets running calls finish for up to
    ``timeout`` seconds, then cancels the rest (their clients get a ``shutting_down`` error) and
    closes every stream.
    """

    def __init__(self, impl: object, spec: ServiceSpec, *, max_frame_size: int, max_calls: int,
                 call_timeout: float | None, debug: bool, require_version: bool,
                 idle_timeout: float | None = None, frame_timeout: float | None = None,
                 max_connections: int | None = None, steps_inline: bool = False) -> None:
        for name, value in (("idle_timeout", idle_timeout), ("frame_timeout", frame_timeout)):
            if value is not None and not value > 0:
                raise ValueError(f"{name} is a number of seconds above 0, or None, not {value!r}")
        if max_connections is not None and max_connections < 1:
            raise ValueError(f"max_connections is at least 1, or None, not {max_connections}")
        self.impl = impl
        self.spec = spec
        self.max_frame_size = max_frame_size
        self.max_calls = max_calls
        self.call_timeout = call_timeout
        self.steps_inline = steps_inline
        """Whether handlers take their first step, up to their first wait, without a task of their own."""
        self.idle_timeout = idle_timeout
        self.frame_timeout = frame_timeout
        self.max_connections = max_connections
        timeouts = [t for t in (idle_timeout, frame_timeout) if t is not None]
        self.check_every = min(timeouts) / 4 if timeouts else 0.0
        """How often a stream's timer compares its clocks: a timeout acts within a quarter of itself."""
        self.channel_class: type[ServerChannel] = TimedServerChannel if timeouts else ServerChannel
        self.refused = 0
        """Connections closed at once because ``max_connections`` were open."""
        self.idle_closed = 0
        """Connections closed by ``idle_timeout``."""
        self.slow_frames = 0
        """Connections closed by ``frame_timeout``: a frame begun and not finished in time."""
        self.debug = debug
        self.require_version = require_version
        self.loop = asyncio.get_running_loop()
        self.handlers = _bind(impl, spec)
        self.listeners: list[Listener] = []
        self.calls = 0
        """Calls started since the server started."""
        self.abandoned = 0
        """Calls whose handlers were still running after close() cancelled them and waited its
        grace: left running, unanswered."""
        self._channels: set[ServerChannel] = set()
        self._closing = False
        self._idle: asyncio.Future[None] | None = None

    @property
    def urls(self) -> list[str]:
        return [url for listener in self.listeners for url in listener.urls]

    @property
    def connections(self) -> int:
        return len(self._channels)

    @property
    def in_flight(self) -> int:
        return sum(channel.session.in_flight for channel in self._channels)

    def _channel_gone(self) -> None:
        if not self._channels and self._idle is not None and not self._idle.done():
            self._idle.set_result(None)

    async def close(self, timeout: float = 10.0, *, grace: float = 1.0) -> None:
        """Graceful shutdown (see the class). ``grace``: how long cancelled calls have to end
        before their connections are aborted and the calls that still run are abandoned."""
        self._closing = True
        for listener in self.listeners:
            listener.close()
        for channel in list(self._channels):
            channel.drain()
        if self._channels:
            if self._idle is None or self._idle.done():
                self._idle = self.loop.create_future()  # one for every close() waiting at once
            try:
                await asyncio.wait_for(asyncio.shield(self._idle), timeout)
            except asyncio.TimeoutError:
                for channel in list(self._channels):
                    for task in list(channel.tasks):
                        task.cancel()  # answered with a shutting_down error, then the stream closes
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(self._idle), grace)
                self._abandon()
                for channel in list(self._channels):
                    if channel.transport is not None:
                        channel.transport.abort()
                with contextlib.suppress(asyncio.TimeoutError):
                    # abort calls connection_lost on the next turn; a transport that never does
                    # must not hold close() either
                    await asyncio.wait_for(asyncio.shield(self._idle), grace)
                if self._channels:
                    log.warning("%s: %d connections did not report their end; forgotten", self.spec.name,
                                len(self._channels))
                    self._channels.clear()
                    self._channel_gone()
        for listener in self.listeners:
            await listener.wait_closed()

    def _abandon(self) -> None:
        """Calls cancelled and still running after the grace (a handler that catches
        CancelledError and goes on) are left to run for nobody: no answer is written for them
        and close() does not wait for them."""
        stuck = [task for channel in self._channels for task in channel.tasks if not task.done()]
        if stuck:
            self.abandoned += len(stuck)
            log.warning("%s: %d calls did not end when cancelled (their handlers caught CancelledError); "
                        "abandoned: %s", self.spec.name, len(stuck),
                        ", ".join(sorted({getattr(task.get_coro(), "__qualname__", "?") for task in stuck})))

    async def serve_forever(self) -> None:
        """Waits until the task running it is cancelled, then closes gracefully."""
        try:
            await asyncio.Future()
        finally:
            await self.close()

    async def __aenter__(self) -> Server:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<Server {self.spec.name} at {', '.join(self.urls)}: {self.connections} connections>"


def _bind(impl: object, spec: ServiceSpec) -> dict[type, Callable[[Any, Any, Any], Awaitable[Any]]]:
    """The handler of each request: the generated one, or, for a method ``impl`` leaves as the
    declaration wrote it, one that answers ``unimplemented``."""
    handlers = dict(spec.handlers)
    for m in spec.methods:
        # Looked up on impl itself, not its type: any object serves, a module or a namespace of
        # functions too; a bound method is compared by its function.
        found = getattr(impl, m.name, None)
        if found is None or getattr(found, "__func__", found) is m.declared:
            handlers[m.request] = _unimplemented(m, spec)
    return handlers


def _unimplemented(m: Method, spec: ServiceSpec) -> Callable[[Any, Any, Any], Awaitable[Any]]:
    async def answer(impl: Any, request: Any, context: Any) -> Any:
        raise Error(f"{spec.name}.{m.name} is not implemented by this server", code=UNIMPLEMENTED_CODE)

    return answer


async def serve(impl: object, url: str | list[str], *, service: type | None = None, tls: TLS | None = None,
                max_frame_size: int = DEFAULT_MAX_FRAME_SIZE, max_calls: int = DEFAULT_MAX_CALLS,
                call_timeout: float | None = None, debug: bool = False, idle_timeout: float | None = None,
                frame_timeout: float | None = None, max_connections: int | None = None,
                steps_inline: bool = False) -> Server:
    """Serves ``impl`` at ``url`` (one or a list): ``tcp://HOST:PORT``, ``unix:///path``,
    ``quic://HOST:PORT`` (with ``tls``). ``service`` defaults to the ``@rpc.service`` class
    ``impl`` derives from.

    ``max_calls``: calls of one stream running at once (then the stream is not read until one
    ends); ``max_frame_size``: the largest frame read, checked from its size field;
    ``call_timeout``: each call's deadline, past which it is cancelled and answered with an
    error; ``debug``: errors that are not ``jetwire.Error`` say what they were (else only that
    the call failed); ``idle_timeout``: a stream with no call running and nothing received for
    that long is closed; ``frame_timeout``: a stream that began a frame and has not finished it
    within that long is closed; ``max_connections``: streams open at once, past which a new one
    is closed as soon as it is accepted (counted in ``Server.refused``); ``steps_inline``: each
    handler runs up to its first ``await`` in the server's own callback, with no task, and in a
    task only from there if it waits (a call that never waits then costs about 12,900 fewer
    instructions, nearly a fifth of the whole call): before its first ``await`` a handler has no
    ``asyncio.current_task()``, so no ``asyncio.timeout``, ``TaskGroup`` or (3.12+) ``wait_for`` there.
    """
    spec = spec_of(service if service is not None else service_of(impl))
    if max_calls < 1:
        raise ValueError(f"max_calls is at least 1, not {max_calls}")
    server = Server(impl, spec, max_frame_size=max_frame_size, max_calls=max_calls, call_timeout=call_timeout,
                    debug=debug, require_version=False, idle_timeout=idle_timeout, frame_timeout=frame_timeout,
                    max_connections=max_connections, steps_inline=steps_inline)
    try:
        for one in [url] if isinstance(url, str) else url:
            _load_transport(one)
            address = parse_url(one)
            # QUIC streams, as upstream's router, must open with a Tversion (r[jetstream.rpc.version.first-frame])
            require = address.scheme == "quic"

            def factory(name: str = address.scheme, require: bool = require) -> asyncio.Protocol:
                channel = server.channel_class(server, name)
                channel.session.require_version = require
                return channel

            server.listeners.append(await listen(one, factory, tls))
    except BaseException:
        await server.close(0)
        raise
    return server


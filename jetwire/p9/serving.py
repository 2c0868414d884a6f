"""The asyncio shell of the 9P2000.L server: sockets in, ``ServerSession`` per connection,
``Handler`` calls as tasks (r[9p2000l.server.concurrency]).

    server = await jetwire.p9.serve(LocalFilesystem("/srv/export"), "127.0.0.1:5640")
    ...
    await server.close()

Each connection reads only while fewer than ``max_in_flight`` of its requests are being worked
on or have replies not yet taken by the client (r[9p2000l.server.limits]), so a client that
stops reading stops being read: memory per connection stays near ``max_in_flight`` times msize.
When a connection ends, calls still running finish (their replies are dropped) before the
fids they use are released (r[9p2000l.server.disconnect]).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import stat
import sys
import time
from collections.abc import Awaitable, Sequence
from typing import Any, Generic, Protocol, TypeVar

from typing_extensions import Self

from ..runtime.steps import Resume as _Resume
from ..runtime.steps import first_step
from .server import (
    DEFAULT_MAX_FIDS,
    DEFAULT_MAX_MSIZE,
    Call,
    Close,
    Handler,
    Release,
    Send,
    ServerSession,
    current_connection,
)

__all__ = ["Listener", "Server", "serve", "listening", "parse_listen", "no_delay", "until_stopped",
           "DEFAULT_MAX_IN_FLIGHT"]

log = logging.getLogger("jetwire.p9.server")

DEFAULT_MAX_IN_FLIGHT = 64  # r[9p2000l.server.limits]
_READ_CHUNK = 256 * 1024
_WRITE_AT_ONCE = 16 * 1024  # replies from this size up are not held back to be batched


def parse_listen(address: str) -> tuple[str | None, int, str | None]:
    """``HOST:PORT`` (``[::1]:5640`` for IPv6) or ``unix:PATH`` → (host, port, path)."""
    if address.startswith("unix:"):
        path = address[len("unix:"):]
        if not path:
            raise ValueError("unix: needs a socket path")
        return None, 0, path
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"{address!r} is not HOST:PORT or unix:PATH")
    return host.strip("[]") or None, int(port), None


class _Connection:
    """One client: its session, its calls in progress, its socket."""

    def __init__(self, server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        handler = server.handler
        self.session = ServerSession(max_msize=server.max_msize, max_fids=server.max_fids,
                                     read_only=handler.read_only)
        self.tasks: set[asyncio.Task[None]] = set()
        self.open = True
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else (peer or "unix socket")
        self.ended = "end of stream"
        self.paused = True  # not waiting for bytes from the socket (at the limit, or writing)
        # small replies of one batch of requests (or of one call's completion), written together
        # by _flush: a send() per reply was most of a pipelined getattr's cost
        self.pending: list[bytes] = []
        self.loop = asyncio.get_running_loop()

    async def run(self) -> None:
        started = time.monotonic()
        # this task's context, copied into every call's task: the handler knows whose call it is
        current_connection.set(self.session)
        try:
            await self._read_loop()
        except (ConnectionError, OSError) as exc:
            self.ended = f"{type(exc).__name__}: {exc}"
        except asyncio.CancelledError:
            self.ended = "server stopping"
        finally:
            self.open = False
            # abort, not close: replies still buffered for a client that stopped reading would
            # hold the close (and a server stopping) for as long as it does not read
            self.writer.transport.abort()
            # fids no call uses are released now; those of calls still running once they finish
            self._apply(self.session.close())
            # the calls still running, not self.tasks: a task leaves that set in a done
            # callback, which runs a turn later, and on 3.12+ gathering tasks that are all done
            # returns without a turn of the loop, so waiting for the set to empty spun for ever
            running = [task for task in self.tasks if not task.done()]
            while running:
                await asyncio.gather(*running, return_exceptions=True)
                running = [task for task in self.tasks if not task.done()]
            seconds = time.monotonic() - started
            log.info("9P connection %s: %d requests in %.1f s, ended: %s", self.peer, self.session.requests,
                     seconds, self.ended)

    async def _read_loop(self) -> None:
        limit = self.server.max_in_flight
        session = self.session
        while self.open:
            while len(self.tasks) >= limit:
                await asyncio.wait(self.tasks, return_when=asyncio.FIRST_COMPLETED)
            if session.more:  # frames of an earlier read, held back by the limit
                events = session.receive(max_frames=limit - len(self.tasks))
            else:
                self.paused = False
                data = await self.reader.read(_READ_CHUNK)
                self.paused = True
                if not data:
                    return
                events = session.receive(data, max_frames=limit - len(self.tasks))
            self._apply(events)
            # the replies of the calls that never waited, out before the next frames are taken,
            # so that drain() holds a client that does not read (r[9p2000l.server.limits])
            self._flush()
            await self.writer.drain()

    def _apply(self, events: Sequence[Any]) -> None:
        for event in events:
            kind = event.__class__
            if kind is Send:
                if self.open:
                    if len(event.data) >= _WRITE_AT_ONCE:
                        # a large reply leaves now, so that the client works on it while the
                        # next ones are made (a batch of 64 KiB Rreads halved the read rate)
                        self._flush()
                        self.writer.write(event.data)
                    else:
                        self.pending.append(event.data)
            elif kind is Call:
                self._start(event)
            elif kind is Release:
                try:
                    self.server.handler.release(event.obj)
                except Exception:  # a handler's bug must not take the connection's other fids with it
                    log.exception("releasing a fid failed")
            elif kind is Close:
                self.ended = event.reason
                self._flush()
                self.open = False
                self.writer.close()

    def _flush(self) -> None:
        pending = self.pending
        # a transport closing (aborted, or its peer gone) takes nothing more: Python 3.12's and
        # 3.13.0's writelines() would register its socket with the loop for writing even after
        # the connection was lost (CPython issue 136234), a registration left behind when the
        # socket closes, on which the next connection given that descriptor number is never read
        if not pending or not self.open or self.writer.transport.is_closing():
            pending.clear()
            return
        if len(pending) == 1:
            self.writer.write(pending[0])
        else:
            self.writer.writelines(pending)
        self.pending = []

    def _start(self, call: Call) -> None:
        """Runs the handler's method up to its first wait when the handler allows it
        (``Handler.steps_inline``): most calls (a getattr, a read from the page cache) never wait
        and are answered here, without a task and without a turn of the loop. A call that waits,
        or any call of another handler, goes on in a task (r[9p2000l.server.concurrency])."""
        handler = self.server.handler
        if not handler.steps_inline:
            self._spawn(call, None)  # the method is called in the task, so its first step is there too
            return
        try:
            # inside the try: a method that is not a coroutine function, or raises when called,
            # fails only its call, as it did when awaited in a task
            coroutine = getattr(handler, call.method)(call.msg, *call.args)
            # in a context of its own, as a task would have given it (runtime/steps.py)
            waiting_on, values = first_step(coroutine)
        except StopIteration as done:
            result: Any = done.value
        except OSError as exc:
            result = exc
        except (Exception, asyncio.CancelledError) as exc:  # r[9p2000l.server.errors]: EIO, the connection goes on
            log.exception("%s failed in the handler", type(call.msg).__name__)
            result = exc
        else:
            values.run(self._spawn, call, _Resume(coroutine, waiting_on))  # the task goes on in that context
            return
        self._apply(self.session.complete(call, result))

    def _spawn(self, call: Call, rest: Awaitable[Any] | None) -> None:
        task = self.loop.create_task(self._run(call, rest))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(self, call: Call, rest: Awaitable[Any] | None) -> None:
        """Finishes ``call``: awaits ``rest`` (a method already started), or the whole method."""
        try:
            if rest is None:
                rest = getattr(self.server.handler, call.method)(call.msg, *call.args)
            result: Any = await rest
        except OSError as exc:
            result = exc
        except Exception as exc:  # r[9p2000l.server.errors]: EIO, and the connection goes on
            log.exception("%s failed in the handler", type(call.msg).__name__)
            result = exc
        self._apply(self.session.complete(call, result))
        self._flush()
        if self.open:
            try:
                await self.writer.drain()  # held here while the client does not read
            except (ConnectionError, OSError):
                self.open = False


class _Runs(Protocol):
    async def run(self) -> None: ...


ConnectionT = TypeVar("ConnectionT", bound=_Runs)


class Listener(Generic[ConnectionT]):
    """Listening sockets and one task per accepted connection, each running what
    ``_connection`` makes of it: what the file server and the tracing proxy share.
    ``close()`` stops listening and cancels every connection's task."""

    _listening = "listening"  # the log line's words before the address

    def __init__(self) -> None:
        self.addresses: list[str] = []
        self._servers: list[asyncio.Server] = []
        self._connections: dict[asyncio.Task[None], ConnectionT] = {}

    def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> ConnectionT:
        raise NotImplementedError

    async def listen(self, address: str) -> str:
        """Starts listening on ``address`` (``HOST:PORT``, port 0 picks one, or ``unix:PATH``);
        returns the address actually bound, in the same form."""
        host, port, path = parse_listen(address)
        if path is not None:
            with contextlib.suppress(FileNotFoundError):
                if not stat.S_ISSOCK(os.lstat(path).st_mode):
                    raise FileExistsError(f"{path} exists and is not a socket")
                os.unlink(path)
            server = await asyncio.start_unix_server(self._accept, path=path, limit=_READ_CHUNK)
            bound = f"unix:{path}"
        else:
            server = await asyncio.start_server(self._accept, host=host, port=port, limit=_READ_CHUNK)
            name = server.sockets[0].getsockname()
            bound = f"[{name[0]}]:{name[1]}" if ":" in name[0] else f"{name[0]}:{name[1]}"
        self._servers.append(server)
        self.addresses.append(bound)
        log.info("%s on %s", self._listening, bound)
        return bound

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        no_delay(writer)
        task = asyncio.current_task()
        assert task is not None
        connection = self._connections[task] = self._connection(reader, writer)
        try:
            await connection.run()
        finally:
            del self._connections[task]

    @property
    def connections(self) -> list[ConnectionT]:
        """The connections open now."""
        return list(self._connections.values())

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()
        self._servers.clear()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def no_delay(writer: asyncio.StreamWriter) -> None:
    """TCP_NODELAY on a TCP stream: a 9P exchange is small frames waiting for each other."""
    sock = writer.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


async def until_stopped(banner: str) -> None:
    """Prints ``banner`` to stderr once SIGINT and SIGTERM are caught (so whoever waits for it
    may signal at once), then returns at either: how the command line's long-running modes
    end cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    print(banner, file=sys.stderr, flush=True)
    await stop.wait()


class Server(Listener[_Connection]):
    """Serves ``handler`` on listening sockets (``listen``); ``close()`` stops listening and
    ends every connection (releasing its fids). ``connections``: their ``session``, ``peer``,
    ``tasks``, ``paused``."""

    _listening = "serving 9P2000.L"

    def __init__(self, handler: Handler[Any], *, max_msize: int = DEFAULT_MAX_MSIZE,
                 max_fids: int = DEFAULT_MAX_FIDS, max_in_flight: int = DEFAULT_MAX_IN_FLIGHT) -> None:
        super().__init__()
        self.handler = handler
        self.max_msize = max_msize
        self.max_fids = max_fids
        self.max_in_flight = max_in_flight

    def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> _Connection:
        return _Connection(self, reader, writer)


async def serve(handler: Handler[Any], *addresses: str, **options: Any) -> Server:
    """A ``Server`` listening on every address given."""
    return await listening(Server(handler, **options), addresses)


ListenerT = TypeVar("ListenerT", bound=Listener[Any])


async def listening(listener: ListenerT, addresses: Sequence[str]) -> ListenerT:
    """``listener`` listening on every address given, or closed if one fails."""
    try:
        for address in addresses:
            await listener.listen(address)
    except BaseException:
        await listener.close()
        raise
    return listener

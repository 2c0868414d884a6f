"""The connection layer of the asyncio 9P2000.L client: a transport around ``Session`` (which does
all the protocol), a future per tag, one timer for every timeout, Tflush when a caller stops
waiting, and ``_call``: one request sent, its reply (typed by the request) or its error back.
It knows nothing of fids beyond naming them in errors; ``calls.py`` builds on it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import os
import posixpath
from typing import Any, overload

from typing_extensions import Self

from ..errors import DecodeError
from . import constants as c
from . import messages as m
from .session import (
    Failed,
    Flushed,
    Orphan,
    RemoteProtocolError,
    Reply,
    Session,
    Stray,
    error_from_errno,
)

_TAGS = c.NOTAG  # requests that may be outstanding at once: every tag but NOTAG
_CLOSE_GRACE = 5.0  # the longest close() waits for the server to take what is still buffered


class Connection:
    """One 9P2000.L connection, its version agreed, nothing attached: what ``Calls`` builds on."""

    def __init__(self, session: Session, timeout: float | None) -> None:
        self.session = session
        self.timeout = timeout
        self.address = ""  # HOST:PORT or the socket's path, for errors that concern the connection
        self._transport: asyncio.Transport | None = None
        self._waiters: dict[int, asyncio.Future[Any]] = {}
        self._closed: BaseException | None = None
        self._gone = asyncio.Event()  # set once the transport is closed
        self._writable = asyncio.Event()  # cleared while the transport's buffer is full
        self._writable.set()
        self._outbox: list[bytes] = []  # frames written together at the end of this loop turn
        self._deadlines: dict[int, tuple[float, Any]] = {}  # tag: (when it times out, its request)
        # fid: its path below the root, for the filename of errors (as os gives); a fid's entry is
        # overwritten when the number is reused, so the map is no larger than the most fids held.
        self._fid_paths: dict[int, str] = {}
        self._sweeper: asyncio.TimerHandle | None = None
        # tag: when the session must be rid of it (its reply or the Rflush of its Tflush in), for
        # requests nobody waits for, and the session's record of that request (the tag may be
        # reused once free); past it the server is taken for dead, not left holding tags
        self._release_by: dict[int, tuple[float, Any]] = {}
        self._backlog: collections.deque[Any] = collections.deque()  # Tflush targets (int), clunks: no tag was free
        self._tag_waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    # -- connecting -------------------------------------------------------------------------------

    @classmethod
    async def _dial(cls, host: str | None, port: int, path: str | None, msize: int, timeout: float | None) -> Self:
        """Connects over TCP (``host``, ``port``) or a unix socket (``path``) and negotiates
        9P2000.L; a connection that fails to negotiate is closed again."""
        loop = asyncio.get_running_loop()
        client = cls(Session(msize), timeout)
        wire = _Wire(client)
        if path:
            opening = loop.create_unix_connection(lambda: wire, path)
            address = path
        elif host:
            opening = loop.create_connection(lambda: wire, host, port)
            address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        else:
            raise ValueError("connect needs a host (TCP) or a path (unix socket)")
        client.address = address
        try:
            await asyncio.wait_for(opening, timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(errno.ETIMEDOUT, f"no connection within {timeout} s", address) from None
        except OSError as exc:  # name the address, as os names the file (gaierror does not)
            number = exc.errno
            text = os.strerror(number) if isinstance(number, int) and number > 0 else exc.strerror or str(exc)
            raise type(exc)(number, text, address) from exc
        try:
            await client._negotiate()
        except BaseException:
            await client.close()
            raise
        return client

    async def _negotiate(self) -> None:
        data = self.session.start()
        future = self._expect(c.NOTAG, "Tversion")
        self._send(data)
        await self._wait(future, c.NOTAG, "Tversion")

    async def close(self) -> None:
        """Closes the connection; outstanding calls get ``ConnectionError``. What is still
        buffered is sent first if the server takes it within ``min(timeout, 5)`` seconds;
        otherwise the connection is aborted (a server that stopped reading holds nothing up)."""
        if self._closed is None:
            self._closed = ConnectionError("the client was closed")
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        if self._transport is not None:
            self._transport.close()
            grace = _CLOSE_GRACE if self.timeout is None else min(self.timeout, _CLOSE_GRACE)
            try:
                await asyncio.wait_for(self._gone.wait(), grace)
            except asyncio.TimeoutError:
                self._transport.abort()
                with contextlib.suppress(asyncio.TimeoutError):  # abort reports the loss a loop turn later
                    await asyncio.wait_for(self._gone.wait(), 1)
        self.session.connection_lost()
        self._fail_all(self._closed)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def msize(self) -> int:
        return self.session.msize

    # -- bytes in (called by the transport's protocol) ------------------------------------------------

    def _received(self, data: bytes) -> None:
        try:
            events = self.session.receive(data)
            for event in events:
                self._dispatch(event)
            if self._backlog or self._tag_waiters:
                self._use_freed_tags()
        except Exception as exc:  # a bug here must end the connection loudly, not stall it
            self._die(ConnectionError(f"the client failed on a reply: {exc!r}"))

    def _lost(self, exc: BaseException | None) -> None:
        if self._closed is None:
            reason = f": {exc!r}" if exc is not None else ""
            self._closed = ConnectionError(f"the server closed the connection{reason}")
        self.session.connection_lost()
        self._fail_all(self._closed)
        self._writable.set()
        self._gone.set()

    def _die(self, error: ConnectionError) -> None:
        """Gives up on a connection that cannot go on: every call fails with ``error`` now, and
        the transport is aborted, not closed (closing would wait to send what is buffered, to a
        server that may never read it)."""
        if self._closed is None:
            self._closed = error
        self.session.connection_lost()
        if self._transport is not None:
            self._transport.abort()
        self._fail_all(self._closed)

    def _dispatch(self, event: Any) -> None:
        kind = event.__class__
        if kind is Reply or kind is Failed or kind is Flushed:
            future = self._waiters.pop(event.tag, None)
            if future is None or future.done():
                return
            if kind is Reply:
                future.set_result(event.msg)
            elif kind is Failed:
                future.set_exception(event.error)
            else:
                future.set_exception(asyncio.CancelledError())
        elif kind is Orphan:
            self._send_nowait(m.Tclunk(fid=event.fid))
        elif kind is Stray:  # out of step: every later reply would be misread or skipped
            text = f"{self.address}: the 9P stream is out of step ({event.error}): connection closed"
            self._die(ConnectionError(text))

    def _fail_all(self, error: BaseException) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for future in self._waiters.values():
            if not future.done():
                future.set_exception(ConnectionError(str(error)))
        self._waiters.clear()
        for waiter in self._tag_waiters:
            if not waiter.done():
                waiter.set_exception(ConnectionError(str(error)))
        self._tag_waiters.clear()
        self._backlog.clear()
        self._release_by.clear()

    def _use_freed_tags(self) -> None:
        """Hands tags that replies freed to what waits for one: Tflushes and clunks first (they
        free tags and fids), then calls, one per free tag (each checks again when it runs)."""
        pending = self.session.pending
        while self._backlog and len(pending) < _TAGS and self._closed is None:
            item = self._backlog.popleft()
            if item.__class__ is int:
                self._send_flush(item)
            else:
                self._send_nowait(item)
        free = _TAGS - len(pending)
        while self._tag_waiters and free > 0:
            waiter = self._tag_waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                free -= 1

    async def _tag_freed(self, what: Any) -> None:
        """Waits until a tag is free (65535 requests are outstanding), at most ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = None if self.timeout is None else loop.time() + self.timeout
        while len(self.session.pending) >= _TAGS:
            if self._closed is not None:
                raise ConnectionError(str(self._closed))
            waiter: asyncio.Future[None] = loop.create_future()
            self._tag_waiters.append(waiter)
            if deadline is None:
                await waiter
                continue
            try:
                await asyncio.wait_for(waiter, max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                text = (f"no tag came free for {_describe(what)} within {self.timeout} s "
                        f"({_TAGS} requests are outstanding)")
                filename = self._paths_of(what)[0] if not isinstance(what, str) else self.address
                raise TimeoutError(errno.ETIMEDOUT, text, filename) from None

    def _send(self, data: bytes) -> None:
        """Queues a frame; the frames of one loop turn go out in one write (one system call
        for 32 pipelined requests rather than 32)."""
        if not self._outbox:
            asyncio.get_running_loop().call_soon(self._flush_outbox)
        self._outbox.append(data)

    def _flush_outbox(self) -> None:
        frames, self._outbox = self._outbox, []
        if self._closed is None and frames and self._transport is not None:
            try:
                self._transport.write(frames[0] if len(frames) == 1 else b"".join(frames))
            except Exception as exc:  # a callback that raised would leave the calls to wait for replies
                self._die(ConnectionError(f"{self.address}: the requests could not be sent: {exc!r}"))

    def _send_nowait(self, msg: Any) -> None:
        """Sends ``msg`` now (or once a tag is free) and lets its reply go: clean-up that nobody
        waits for, though the server must still answer it within ``timeout``."""
        if self._closed is not None:
            return
        if len(self.session.pending) >= _TAGS:
            self._backlog.append(msg)
            return
        tag, data = self.session.request(msg)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_ignore_result)
        self._waiters[tag] = future
        self._owe(tag)
        self._send(data)

    def _owe(self, tag: int) -> None:
        """Nobody waits for ``tag`` any more, but its reply (or Rflush) must still come within
        ``timeout``: else the sweep gives up on the connection rather than hold the tag for good."""
        record = self.session.pending.get(tag)
        if self.timeout is None or record is None:
            return
        owed = self._release_by.get(tag)
        if owed is not None and owed[1] is record:  # already owed: the first deadline stands
            return
        loop = asyncio.get_running_loop()
        self._release_by[tag] = (loop.time() + self.timeout, record)
        if self._sweeper is None:
            self._sweeper = loop.call_later(self._sweep_every, self._sweep)

    # -- calls ----------------------------------------------------------------------------------

    def _no_tag_free(self) -> bool:
        """Whether every tag is outstanding, so that a request must wait for ``_tag_freed``."""
        return len(self.session.pending) >= _TAGS

    # One overload per request, so that the reply's type follows from the request's: the
    # session fails any reply that is neither the request's R-message nor an error, and
    # _result raises the errors, so the overloads hold at run time too (tests/p9 checks they
    # match the session's reply table).
    @overload
    async def _call(self, msg: m.Tstatfs, filename: str | None = None) -> m.Rstatfs: ...
    @overload
    async def _call(self, msg: m.Tlopen, filename: str | None = None) -> m.Rlopen: ...
    @overload
    async def _call(self, msg: m.Tlcreate, filename: str | None = None) -> m.Rlcreate: ...
    @overload
    async def _call(self, msg: m.Tsymlink, filename: str | None = None) -> m.Rsymlink: ...
    @overload
    async def _call(self, msg: m.Tmknod, filename: str | None = None) -> m.Rmknod: ...
    @overload
    async def _call(self, msg: m.Trename, filename: str | None = None) -> m.Rrename: ...
    @overload
    async def _call(self, msg: m.Treadlink, filename: str | None = None) -> m.Rreadlink: ...
    @overload
    async def _call(self, msg: m.Tgetattr, filename: str | None = None) -> m.Rgetattr: ...
    @overload
    async def _call(self, msg: m.Tsetattr, filename: str | None = None) -> m.Rsetattr: ...
    @overload
    async def _call(self, msg: m.Txattrwalk, filename: str | None = None) -> m.Rxattrwalk: ...
    @overload
    async def _call(self, msg: m.Txattrcreate, filename: str | None = None) -> m.Rxattrcreate: ...
    @overload
    async def _call(self, msg: m.Treaddir, filename: str | None = None) -> m.Rreaddir: ...
    @overload
    async def _call(self, msg: m.Tfsync, filename: str | None = None) -> m.Rfsync: ...
    @overload
    async def _call(self, msg: m.Tlock, filename: str | None = None) -> m.Rlock: ...
    @overload
    async def _call(self, msg: m.Tgetlock, filename: str | None = None) -> m.Rgetlock: ...
    @overload
    async def _call(self, msg: m.Tlink, filename: str | None = None) -> m.Rlink: ...
    @overload
    async def _call(self, msg: m.Tmkdir, filename: str | None = None) -> m.Rmkdir: ...
    @overload
    async def _call(self, msg: m.Trenameat, filename: str | None = None) -> m.Rrenameat: ...
    @overload
    async def _call(self, msg: m.Tunlinkat, filename: str | None = None) -> m.Runlinkat: ...
    @overload
    async def _call(self, msg: m.Tauth, filename: str | None = None) -> m.Rauth: ...
    @overload
    async def _call(self, msg: m.Tattach, filename: str | None = None) -> m.Rattach: ...
    @overload
    async def _call(self, msg: m.Tflush, filename: str | None = None) -> m.Rflush: ...
    @overload
    async def _call(self, msg: m.Twalk, filename: str | None = None) -> m.Rwalk: ...
    @overload
    async def _call(self, msg: m.Tread, filename: str | None = None) -> m.Rread: ...
    @overload
    async def _call(self, msg: m.Twrite, filename: str | None = None) -> m.Rwrite: ...
    @overload
    async def _call(self, msg: m.Tclunk, filename: str | None = None) -> m.Rclunk: ...
    @overload
    async def _call(self, msg: m.Tremove, filename: str | None = None) -> m.Rremove: ...
    async def _call(self, msg: Any, filename: str | None = None) -> Any:
        """Sends ``msg`` and waits for its reply; Rlerror becomes the matching ``OSError``."""
        if len(self.session.pending) >= _TAGS:
            await self._tag_freed(msg)
        tag, future = self._start(msg)
        if not self._writable.is_set():
            await self._drained(tag, future)  # the server is slow to read: wait rather than pile up
        return await self._result(tag, future, msg, filename)

    async def _drained(self, tag: int, future: asyncio.Future[Any]) -> None:
        """Waits until the transport takes writes again, or until ``future`` is settled (timed
        out, connection lost): a server that stopped reading holds no call past its timeout."""
        writable = asyncio.ensure_future(self._writable.wait())
        try:
            await asyncio.wait((future, writable), return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            self._deadlines.pop(tag, None)
            if self._waiters.get(tag) is future:
                self._abandon(tag)
            raise
        finally:
            writable.cancel()

    def _start(self, msg: Any) -> tuple[int, asyncio.Future[Any]]:
        """Registers and queues ``msg``; the future gets its reply (or the reason there is none)."""
        if self._closed is not None:
            raise ConnectionError(str(self._closed))
        tag, data = self.session.request(msg)
        future = self._expect(tag, msg)
        self._send(data)
        return tag, future

    def _expect(self, tag: int, what: Any) -> asyncio.Future[Any]:
        """The future that the reply to ``tag`` resolves; the sweep fails it when overdue."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._waiters[tag] = future
        if self.timeout is not None:
            self._deadlines[tag] = (loop.time() + self.timeout, what)
            if self._sweeper is None:
                self._sweeper = loop.call_later(self._sweep_every, self._sweep)
        return future

    async def _result(self, tag: int, future: asyncio.Future[Any], msg: Any, filename: str | None = None) -> Any:
        reply = await self._wait(future, tag, msg)
        if reply.__class__ is m.Rlerror or reply.__class__ is m.Rerror:
            raise self._error(reply.ecode, msg, filename)
        return reply

    def _error(self, linux_errno: int, msg: Any, filename: str | None = None) -> OSError:
        """The ``OSError`` for a failed ``msg``, naming its path(s) as ``os`` would."""
        names = (filename, None) if filename is not None else self._paths_of(msg)
        return error_from_errno(linux_errno, _describe(msg), *names)

    def path_of(self, fid: int) -> str | None:
        """The path ``fid`` was walked to (below the root), or None for a fid this client did not make."""
        return self._fid_paths.get(fid)

    def _joined(self, dfid: int, name: str) -> str | None:
        parent = self._fid_paths.get(dfid)
        return None if parent is None else posixpath.join(parent, name)

    def _paths_of(self, msg: Any) -> tuple[str | None, str | None]:
        """What ``os`` would give as ``filename`` and ``filename2`` for the call ``msg`` stands for."""
        kind = msg.__class__
        if kind is m.Tattach or kind is m.Tauth:
            return msg.aname, None
        if kind is m.Tlcreate or kind is m.Tsymlink:
            return self._joined(msg.fid, msg.name), None
        if kind is m.Tmkdir or kind is m.Tmknod:
            return self._joined(msg.dfid, msg.name), None
        if kind is m.Tunlinkat:
            return self._joined(msg.dirfd, msg.name), None
        if kind is m.Twalk:
            parent = self._fid_paths.get(msg.fid)
            return (None if parent is None else posixpath.join(parent, *msg.wnames)), None
        if kind is m.Tlink:  # os.link(src, dst)
            return self._fid_paths.get(msg.fid), self._joined(msg.dfid, msg.name)
        if kind is m.Trename:
            return self._fid_paths.get(msg.fid), self._joined(msg.dfid, msg.name)
        if kind is m.Trenameat:
            return self._joined(msg.olddirfid, msg.oldname), self._joined(msg.newdirfid, msg.newname)
        fid = getattr(msg, "fid", None)
        return (None if fid is None else self._fid_paths.get(fid)), None

    async def _wait(self, future: asyncio.Future[Any], tag: int, what: Any) -> Any:
        try:
            return await future
        except asyncio.CancelledError:
            if self._waiters.get(tag) is future:
                self._abandon(tag)
            raise
        except DecodeError as exc:
            raise RemoteProtocolError(f"the reply to {_describe(what)} could not be decoded: {exc}") from exc
        finally:
            self._deadlines.pop(tag, None)

    @property
    def _sweep_every(self) -> float:
        return max(0.01, min(1.0, (self.timeout or 1.0) / 8))

    def _sweep(self) -> None:
        """Fails the calls whose reply is overdue (one timer for all, not one per request:
        pipelined calls would spend more on timers than on 9P). Precision: timeout / 8. A
        timer that raised would never run again and leave every later call waiting forever:
        whatever goes wrong here ends the connection instead."""
        self._sweeper = None
        try:
            alive = self._sweep_overdue()
        except Exception as exc:
            self._die(ConnectionError(f"the client failed while timing out calls: {exc!r}"))
            return
        if alive and (self._deadlines or self._release_by) and self._closed is None:
            self._sweeper = asyncio.get_running_loop().call_later(self._sweep_every, self._sweep)

    def _sweep_overdue(self) -> bool:
        """Times out overdue calls; False once the connection is given up."""
        now = asyncio.get_running_loop().time()
        overdue = [(tag, what) for tag, (deadline, what) in self._deadlines.items() if deadline <= now]
        for tag, what in overdue:
            del self._deadlines[tag]
            future = self._waiters.get(tag)
            if future is not None and not future.done():
                text = f"no reply to {_describe(what)} (tag {tag}) within {self.timeout} s"
                filename = self._paths_of(what)[0] if not isinstance(what, str) else self.address
                future.set_exception(TimeoutError(errno.ETIMEDOUT, text, filename))
                self._abandon(tag)
        if self._release_by:
            pending = self.session.pending
            for tag, (deadline, record) in list(self._release_by.items()):
                if pending.get(tag) is not record:
                    del self._release_by[tag]
                elif deadline <= now:
                    text = (f"{self.address}: the server answered neither the request with tag {tag} nor its "
                            f"Tflush within {self.timeout} s: connection given up")
                    self._die(ConnectionError(text))
                    return False
        return True

    def _abandon(self, tag: int) -> None:
        """Sends Tflush for a request whose caller stopped waiting (r[9p2000l.flush]). The tag
        stays reserved until Rflush (or the late reply) arrives, within ``timeout`` or the
        connection is given up; a fid the request creates anyway is clunked then."""
        self._waiters.pop(tag, None)
        if self._closed is not None or tag == c.NOTAG:
            return
        self._owe(tag)
        self._send_flush(tag)

    def _send_flush(self, tag: int) -> None:
        if len(self.session.pending) >= _TAGS:
            self._backlog.append(tag)  # sent as soon as a reply frees a tag
            return
        flush = self.session.flush(tag)
        if flush is not None:
            flush_tag, data = flush
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            future.add_done_callback(_ignore_result)
            self._waiters[flush_tag] = future
            self._send(data)


class _Wire(asyncio.Protocol):
    """The transport's callbacks, handed straight to the client: no stream buffer between the
    socket and the frame reader, so received bytes are not copied on the way."""

    def __init__(self, client: Connection) -> None:
        self.client = client

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.client._transport = transport

    def data_received(self, data: bytes) -> None:
        self.client._received(data)

    def eof_received(self) -> bool:
        return False  # close our side too: 9P has no half-closed state

    def connection_lost(self, exc: Exception | None) -> None:
        self.client._lost(exc)

    def pause_writing(self) -> None:
        self.client._writable.clear()

    def resume_writing(self) -> None:
        self.client._writable.set()



def _describe(request: Any) -> str:
    """A request as error messages name it: its type, and for Tattach/Tauth who asked for what."""
    if isinstance(request, str):
        return request
    kind = type(request).__name__
    if isinstance(request, (m.Tattach, m.Tauth)):
        who = f"uname {request.uname!r}"
        if request.n_uname != c.NONUNAME:
            who += f", n_uname {request.n_uname}"
        return f"{kind} of aname {request.aname!r} as {who}"
    return kind


def _ignore_result(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


"""An asyncio 9P2000.L client: a thin shell around ``Session`` (which does all the protocol).

``await Client.connect("127.0.0.1", 564, aname="/srv")`` negotiates the version and attaches;
then the low-level calls (``walk``, ``lopen``, ``read``...) take and return fids, and the
``pathlib``-like ones (``read_bytes``, ``listdir``, ``open``...) take paths and manage fids
themselves. Many requests may be in flight at once; cancelling one sends Tflush; server errors
raise ``OSError`` subclasses with the errno (``FileNotFoundError`` for ENOENT, ...).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import errno
import fnmatch
import io
import os
import posixpath
import stat as stat_module
import sys
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import PurePosixPath
from typing import Any, TypeVar, cast

from ..errors import DecodeError
from . import constants as c
from .messages import (
    Dirent,
    Qid,
    Rerror,
    Rgetattr,
    Rgetlock,
    Rlerror,
    Rstatfs,
    Tattach,
    Tauth,
    Tclunk,
    Tfsync,
    Tgetattr,
    Tgetlock,
    Tlcreate,
    Tlink,
    Tlock,
    Tlopen,
    Tmkdir,
    Tmknod,
    Tread,
    Treaddir,
    Treadlink,
    Tremove,
    Trename,
    Trenameat,
    Tsetattr,
    Tstatfs,
    Tsymlink,
    Tunlinkat,
    Twalk,
    Twrite,
    Txattrcreate,
    Txattrwalk,
)
from .session import Failed, Flushed, Orphan, ProtocolError, Reply, Session, Stray, error_from_errno

__all__ = ["Client", "File", "RemotePath", "Stat", "parse_dirents", "connect"]

R = TypeVar("R")
_MAX_SYMLINKS = 40  # Linux's limit on symlinks followed in one lookup (ELOOP after)
_TAGS = c.NOTAG  # requests that may be outstanding at once: every tag but NOTAG
_CLOSE_GRACE = 5.0  # the longest close() waits for the server to take what is still buffered


def parse_dirents(data: bytes) -> list[Dirent]:
    """The entries of one Rreaddir's data (r[9p2000l.readdir.dirent]); a cut entry is an error."""
    entries = []
    offset = 0
    while offset < len(data):
        entry, offset = Dirent.decode_prefix(data, offset)
        entries.append(entry)
    return entries


@dataclasses.dataclass(frozen=True)
class Stat:
    """``os.stat_result``'s view of an Rgetattr (r[9p2000l.getattr])."""

    st_mode: int
    st_ino: int
    st_nlink: int
    st_uid: int
    st_gid: int
    st_rdev: int
    st_size: int
    st_blksize: int
    st_blocks: int
    st_atime_ns: int
    st_mtime_ns: int
    st_ctime_ns: int
    qid: Qid

    @classmethod
    def from_reply(cls, r: Rgetattr) -> Stat:
        return cls(
            st_mode=r.mode, st_ino=r.qid.path, st_nlink=r.nlink, st_uid=r.uid, st_gid=r.gid, st_rdev=r.rdev,
            st_size=r.size, st_blksize=r.blksize, st_blocks=r.blocks,
            st_atime_ns=r.atime_sec * 1_000_000_000 + r.atime_nsec,
            st_mtime_ns=r.mtime_sec * 1_000_000_000 + r.mtime_nsec,
            st_ctime_ns=r.ctime_sec * 1_000_000_000 + r.ctime_nsec,
            qid=r.qid,
        )

    @property
    def st_atime(self) -> float:
        return self.st_atime_ns / 1e9

    @property
    def st_mtime(self) -> float:
        return self.st_mtime_ns / 1e9

    @property
    def st_ctime(self) -> float:
        return self.st_ctime_ns / 1e9


@contextlib.contextmanager
def _both_named(filename: str, filename2: str) -> Iterator[None]:
    """Errors inside name both paths, as ``os.rename``/``os.link``/``os.symlink`` do, whichever
    request failed (a walk to either parent, or the call itself)."""
    try:
        yield
    except OSError as exc:
        exc.filename, exc.filename2 = filename, filename2
        raise


def _link_target(names: list[str], target: str, path: str) -> list[str]:
    """The names of what the symlink ``names`` leads to; only a place inside the export will do."""
    joined = "" if target.startswith("/") else posixpath.normpath(posixpath.join("/".join(names[:-1]), target))
    if not joined or joined == ".." or joined.startswith("../"):
        raise error_from_errno(c.ENOENT, f"the symlink leads out of the export to {target!r}", path)
    return split_path(joined)


def _split(path: str) -> tuple[str, str]:
    """(parent, name) of a normalised ``path``: ``a/b/`` is ``("a", "b")``, as os sees it."""
    names = split_path(path)
    return "/".join(names[:-1]), (names[-1] if names else "")


def split_path(path: str) -> list[str]:
    """The names of a path below the attach root; ``..`` is refused rather than trusted to the
    server (r[9p2000l.walk.dotdot]: some servers let it leave the export)."""
    names = [n for n in path.split("/") if n not in ("", ".")]
    if ".." in names:
        raise ValueError(f"{path!r}: '..' is not walked; normalise the path first")
    return names


class Client:
    """One 9P2000.L connection. Use ``await Client.connect(...)`` (or ``jetwire.p9.connect``)."""

    def __init__(self, session: Session, timeout: float | None) -> None:
        self.session = session
        self.timeout = timeout
        self.root: int | None = None
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
    async def connect(
        cls,
        host: str | None = None,
        port: int = 564,
        *,
        path: str | None = None,
        aname: str = "",
        uname: str = "root",
        n_uname: int = c.NONUNAME,
        msize: int = 65536 + c.P9_IOHDRSZ,
        timeout: float | None = 30.0,
    ) -> Client:
        """Connects over TCP (``host``, ``port``) or a unix socket (``path``), negotiates
        9P2000.L and attaches ``aname`` as ``uname``/``n_uname``. ``timeout`` bounds every
        reply: a server that never answers raises ``TimeoutError``, never hangs the caller."""
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
            await client.attach(aname=aname, uname=uname, n_uname=n_uname)
        except BaseException:
            await client.close()
            raise
        return client

    async def _negotiate(self) -> None:
        data = self.session.start()
        future = self._expect(c.NOTAG, "Tversion")
        self._send(data)
        await self._wait(future, c.NOTAG, "Tversion")

    async def attach(self, aname: str = "", uname: str = "root", n_uname: int = c.NONUNAME,
                     afid: int = c.NOFID) -> int:
        """Attaches a new fid to the root of ``aname`` (r[9p2000l.attach]); the first becomes ``root``."""
        fid = self.session.alloc_fid()
        await self._call(Tattach(fid=fid, afid=afid, uname=uname, aname=aname, n_uname=n_uname))
        self._fid_paths[fid] = ""
        if self.root is None:
            self.root = fid
        return fid

    async def auth(self, aname: str = "", uname: str = "root", n_uname: int = c.NONUNAME) -> tuple[int, Qid]:
        """Starts authentication (r[9p2000l.auth]); servers that need none answer an error."""
        afid = self.session.alloc_fid()
        reply = await self._call(Tauth(afid=afid, uname=uname, aname=aname, n_uname=n_uname))
        self._fid_paths[afid] = aname
        return afid, reply.aqid

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

    async def __aenter__(self) -> Client:
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
            self._send_nowait(Tclunk(fid=event.fid))
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
        if reply.__class__ is Rlerror or reply.__class__ is Rerror:
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
        if kind is Tattach or kind is Tauth:
            return msg.aname, None
        if kind is Tlcreate or kind is Tsymlink:
            return self._joined(msg.fid, msg.name), None
        if kind is Tmkdir or kind is Tmknod:
            return self._joined(msg.dfid, msg.name), None
        if kind is Tunlinkat:
            return self._joined(msg.dirfd, msg.name), None
        if kind is Twalk:
            parent = self._fid_paths.get(msg.fid)
            return (None if parent is None else posixpath.join(parent, *msg.wnames)), None
        if kind is Tlink:  # os.link(src, dst)
            return self._fid_paths.get(msg.fid), self._joined(msg.dfid, msg.name)
        if kind is Trename:
            return self._fid_paths.get(msg.fid), self._joined(msg.dfid, msg.name)
        if kind is Trenameat:
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
            raise ProtocolError(f"the reply to {_describe(what)} could not be decoded: {exc}") from exc
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

    # -- low level: one request each (names as the messages) ------------------------------------------

    async def walk(self, fid: int, names: Iterable[str], newfid: int | None = None) -> tuple[int, list[Qid]]:
        """Walks ``names`` from ``fid`` to a new fid (r[9p2000l.walk.clone]); paths longer than
        MAXWELEM names take several walks (r[9p2000l.walk.max]). A name that does not exist
        raises ``FileNotFoundError``; no fid is left behind."""
        names = list(names)
        target = self.session.alloc_fid() if newfid is None else newfid
        chunks = [names[i:i + c.MAXWELEM] for i in range(0, len(names), c.MAXWELEM)] or [[]]
        qids: list[Qid] = []
        source = fid
        base = self._fid_paths.get(fid, "")
        path = posixpath.join(base, *names)
        try:
            for chunk in chunks:
                reply = await self._call(Twalk(fid=source, newfid=target, wnames=chunk), filename=path)
                qids.extend(reply.wqids)
                if len(reply.wqids) != len(chunk):  # r[9p2000l.walk.partial]
                    missing = posixpath.join(base, *names[: len(qids) + 1])
                    raise error_from_errno(c.ENOENT, "Twalk", missing)
                source = target
        except BaseException:
            if source == target and target != fid:
                await self._clunk_shielded(target)  # an earlier chunk made it
            elif newfid is None and target in self.session.fids_in_use and not self._owned_by_request(target):
                self.session.free_fid(target)
            raise
        self._fid_paths[target] = path
        return target, qids

    def _owned_by_request(self, fid: int) -> bool:
        return any(p.creates_fid == fid or p.frees_fid == fid for p in self.session.pending.values())

    async def _clunk_shielded(self, fid: int) -> None:
        """Clunks even when the caller is being cancelled: a fid must never leak."""
        with contextlib.suppress(Exception):
            await asyncio.shield(self._call(Tclunk(fid=fid)))

    async def clunk(self, fid: int) -> None:
        """Forgets ``fid``; it is free afterwards even if the server complains (r[9p2000l.clunk])."""
        await asyncio.shield(self._call(Tclunk(fid=fid)))

    async def remove(self, fid: int) -> None:
        """Removes the file ``fid`` names and clunks the fid (r[9p2000l.remove])."""
        await asyncio.shield(self._call(Tremove(fid=fid)))

    async def lopen(self, fid: int, flags: int) -> tuple[Qid, int]:
        reply = await self._call(Tlopen(fid=fid, flags=flags))
        return reply.qid, reply.iounit

    async def lcreate(self, fid: int, name: str, flags: int, mode: int, gid: int = 0) -> tuple[Qid, int]:
        reply = await self._call(Tlcreate(fid=fid, name=name, flags=flags, mode=mode, gid=gid))
        self._fid_paths[fid] = self._joined(fid, name) or name  # the fid is the new file now
        return reply.qid, reply.iounit

    async def read(self, fid: int, offset: int, count: int, iounit: int = 0) -> bytes:
        """One Tread of at most ``count`` bytes, capped to what msize and iounit allow."""
        count = min(count, self.session.io_size(iounit))
        return _checked_read(await self._call(Tread(fid=fid, offset=offset, count=count)), count)

    async def write(self, fid: int, offset: int, data: bytes, iounit: int = 0) -> int:
        """One Twrite of as much of ``data`` as msize and iounit allow; returns the count written."""
        chunk = data[: self.session.io_size(iounit)]
        reply = await self._call(Twrite(fid=fid, offset=offset, data=chunk))
        count: int = reply.count
        if count > len(chunk):
            raise ProtocolError(f"Rwrite counted {count} bytes for a Twrite of {len(chunk)}")
        return count

    async def read_range(self, fid: int, offset: int = 0, length: int | None = None, iounit: int = 0,
                         window: int = 8, *, file_size: int | None = None) -> bytes:
        """Reads ``length`` bytes, or to end of file, with up to ``window`` Treads in flight from
        the first. To end of file, the size comes from ``file_size`` or a Tgetattr, and the last
        Tread asks one byte past it, so its short answer proves the end without another round
        trip; a file that grew meanwhile is read on to its new end, one that shrank gives what
        is there. Each Rread's data is copied once, into the result: ``BytesIO`` grows its
        buffer in place and hands it over as the ``bytes`` (a ``bytearray`` filled and then
        converted would touch twice the memory, and fresh memory is what a big read costs)."""
        if length is None:
            if file_size is None:
                file_size = (await self.getattr(fid, c.P9_GETATTR_SIZE)).size
            end = offset + max(0, file_size - offset) + 1
        else:
            end = offset + length
        out = io.BytesIO()
        async for chunk in self._pipelined_reads(fid, offset, end, iounit, window, False):
            out.write(chunk)
        if length is None and offset + out.tell() == end:  # the file grew after Tgetattr
            async for chunk in self.read_chunks(fid, end, None, iounit, window):
                out.write(chunk)
        return out.getvalue()

    def read_chunks(self, fid: int, offset: int = 0, length: int | None = None, iounit: int = 0,
                    window: int = 8) -> AsyncIterator[bytes]:
        """The data from ``offset`` to ``offset + length`` (or end of file), in order, one Rread
        at a time, with up to ``window`` Treads in flight once the first comes back full (a
        small file costs one round trip): a stream that never holds the whole file. A short
        read ends it (r[9p2000l.read]); reads in flight past the end are dropped."""
        end = None if length is None else offset + length
        return self._pipelined_reads(fid, offset, end, iounit, window, True)  # not wrapped: one hop less per chunk

    async def _pipelined_reads(self, fid: int, offset: int, end: int | None, iounit: int, window: int,
                               probe_first: bool) -> AsyncIterator[bytes]:
        """Rread data from ``offset`` to ``end`` (or end of file) in order, up to ``window``
        Treads in flight (after a first one alone if ``probe_first``). Leaving early drops the
        reads still in flight; leaving on an error or a cancellation flushes them."""
        step = self.session.io_size(iounit)
        position = offset
        if probe_first:
            first = await self.read(fid, offset, step if end is None else min(step, end - offset), iounit)
            if first:
                yield first
            position += len(first)
            if len(first) < step or position == end:
                return
        inflight: collections.deque[tuple[int, asyncio.Future[Any], Tread]] = collections.deque()
        issued = position
        failed = True
        try:
            while True:
                while len(inflight) < window and (end is None or issued < end):
                    count = step if end is None else min(step, end - issued)
                    request = Tread(fid=fid, offset=issued, count=count)
                    if len(self.session.pending) >= _TAGS:
                        await self._tag_freed(request)
                    inflight.append((*self._start(request), request))
                    issued += count
                if not inflight:
                    failed = False
                    return
                tag, future, request = inflight.popleft()
                chunk = _checked_read(await self._result(tag, future, request), request.count)
                position += len(chunk)
                if len(chunk) < request.count and (end is None or position < end):
                    failed = False  # end of file: what is still in flight read past it
                if chunk:
                    yield chunk
                if not failed:
                    return
        finally:
            for tag, future, _ in inflight:
                future.add_done_callback(_ignore_result)
                if failed:
                    self._abandon(tag)  # Tflush: the caller gave up on these
                else:  # their replies are not wanted: drop them as they come
                    self._waiters.pop(tag, None)
                    self._deadlines.pop(tag, None)
                    self._owe(tag)

    async def write_range(self, fid: int, data: bytes | bytearray | memoryview, offset: int = 0, iounit: int = 0,
                          window: int = 8) -> int:
        """Writes all of ``data`` at ``offset``, keeping up to ``window`` Twrites in flight, each
        carrying a slice of ``data`` (no copy before encoding). After a short write
        (r[9p2000l.write]) the writes in flight are awaited and it goes on from where the server
        stopped; leaving on an error or a cancellation flushes what is still in flight."""
        step = self.session.io_size(iounit)
        inflight: collections.deque[tuple[int, asyncio.Future[Any], Twrite]] = collections.deque()
        failed = True
        with memoryview(data) as whole, whole.cast("B") as view:
            total = len(view)
            issued = done = 0
            try:
                while done < total:
                    while len(inflight) < window and issued < total:
                        # the encoder takes any buffer: a slice of view saves copying the chunk out
                        chunk = cast(bytes, view[issued:issued + step])
                        request = Twrite(fid=fid, offset=offset + issued, data=chunk)
                        if len(self.session.pending) >= _TAGS:
                            await self._tag_freed(request)
                        inflight.append((*self._start(request), request))
                        issued += len(request.data)
                    tag, future, request = inflight.popleft()
                    count = (await self._result(tag, future, request)).count
                    sent = len(request.data)
                    if count > sent:
                        raise ProtocolError(f"Rwrite counted {count} bytes for a Twrite of {sent}")
                    if count == 0:
                        text = f"the server wrote nothing at offset {request.offset} (Twrite)"
                        raise OSError(errno.EIO, text, self._fid_paths.get(fid))
                    done += count
                    if count < sent:  # the rest goes again, in order, from where the server stopped
                        while inflight:
                            tag, future, request = inflight.popleft()
                            await self._result(tag, future, request)
                        issued = done
                failed = False
            finally:
                for tag, future, _ in inflight:
                    future.add_done_callback(_ignore_result)
                    if failed:
                        self._abandon(tag)
                inflight.clear()  # the requests hold slices of view, which must be released
        return done

    async def readdir(self, fid: int) -> list[Dirent]:
        """Every entry of the directory open on ``fid`` (r[9p2000l.readdir])."""
        entries: list[Dirent] = []
        offset = 0
        count = self.session.io_size()
        while True:
            reply = await self._call(Treaddir(fid=fid, offset=offset, count=count))
            if len(reply.data) > count:  # r[9p2000l.readdir]: at most count bytes
                raise ProtocolError(f"Rreaddir carried {len(reply.data)} bytes for a Treaddir of {count}")
            batch = parse_dirents(reply.data)
            if not batch:
                return entries
            if batch[-1].offset == offset:  # the same entries again and again: a listing without end
                raise ProtocolError(f"Rreaddir's last entry points back at offset {offset}")
            entries.extend(batch)
            offset = batch[-1].offset

    async def getattr(self, fid: int, request_mask: int = c.P9_GETATTR_BASIC) -> Rgetattr:
        reply: Rgetattr = await self._call(Tgetattr(fid=fid, request_mask=request_mask))
        return reply

    async def setattr(self, fid: int, valid: int, mode: int = 0, uid: int = 0, gid: int = 0, size: int = 0,
                      atime_sec: int = 0, atime_nsec: int = 0, mtime_sec: int = 0, mtime_nsec: int = 0) -> None:
        await self._call(Tsetattr(fid=fid, valid=valid, mode=mode, uid=uid, gid=gid, size=size, atime_sec=atime_sec,
                                  atime_nsec=atime_nsec, mtime_sec=mtime_sec, mtime_nsec=mtime_nsec))

    async def statfs(self, fid: int) -> Rstatfs:
        reply: Rstatfs = await self._call(Tstatfs(fid=fid))
        return reply

    async def mkdir_at(self, dfid: int, name: str, mode: int = 0o755, gid: int = 0) -> Qid:
        reply = await self._call(Tmkdir(dfid=dfid, name=name, mode=mode, gid=gid))
        qid: Qid = reply.qid
        return qid

    async def symlink_at(self, fid: int, name: str, target: str, gid: int = 0) -> Qid:
        reply = await self._call(Tsymlink(fid=fid, name=name, symtgt=target, gid=gid))
        qid: Qid = reply.qid
        return qid

    async def mknod_at(self, dfid: int, name: str, mode: int, major: int = 0, minor: int = 0, gid: int = 0) -> Qid:
        reply = await self._call(Tmknod(dfid=dfid, name=name, mode=mode, major=major, minor=minor, gid=gid))
        qid: Qid = reply.qid
        return qid

    async def readlink_fid(self, fid: int) -> str:
        reply = await self._call(Treadlink(fid=fid))
        target: str = reply.target
        return target

    async def link_at(self, dfid: int, fid: int, name: str) -> None:
        await self._call(Tlink(dfid=dfid, fid=fid, name=name))

    async def rename_fid(self, fid: int, dfid: int, name: str) -> None:
        await self._call(Trename(fid=fid, dfid=dfid, name=name))
        self._fid_paths[fid] = self._joined(dfid, name) or name

    async def renameat(self, olddirfid: int, oldname: str, newdirfid: int, newname: str) -> None:
        await self._call(Trenameat(olddirfid=olddirfid, oldname=oldname, newdirfid=newdirfid, newname=newname))

    async def unlinkat(self, dirfd: int, name: str, flags: int = 0) -> None:
        await self._call(Tunlinkat(dirfd=dirfd, name=name, flags=flags))

    async def fsync(self, fid: int, datasync: bool = False) -> None:
        await self._call(Tfsync(fid=fid, datasync=1 if datasync else 0))

    async def lock(self, fid: int, type: int, start: int = 0, length: int = 0, flags: int = 0,  # noqa: A002
                   proc_id: int = 0, client_id: str = "jetwire") -> int:
        """Tlock (r[9p2000l.lock]); returns the status (P9_LOCK_SUCCESS, BLOCKED, ...)."""
        reply = await self._call(Tlock(fid=fid, type=type, flags=flags, start=start, length=length,
                                       proc_id=proc_id, client_id=client_id))
        status: int = reply.status
        return status

    async def getlock(self, fid: int, type: int, start: int = 0, length: int = 0,  # noqa: A002
                      proc_id: int = 0, client_id: str = "jetwire") -> Rgetlock:
        reply: Rgetlock = await self._call(Tgetlock(fid=fid, type=type, start=start, length=length,
                                                    proc_id=proc_id, client_id=client_id))
        return reply

    async def xattrwalk(self, fid: int, name: str = "") -> tuple[int, int]:
        """A new fid on attribute ``name`` (or the name list), and its size (r[9p2000l.xattrwalk])."""
        newfid = self.session.alloc_fid()
        reply = await self._call(Txattrwalk(fid=fid, newfid=newfid, name=name))
        self._fid_paths[newfid] = self._fid_paths.get(fid, "")
        return newfid, reply.size

    async def xattrcreate(self, fid: int, name: str, attr_size: int, flags: int = 0) -> None:
        await self._call(Txattrcreate(fid=fid, name=name, attr_size=attr_size, flags=flags))

    async def flush(self, tag: int) -> None:
        """Asks the server to abandon the request ``tag``; returns when Rflush arrives."""
        if len(self.session.pending) >= _TAGS:
            await self._tag_freed("Tflush")
        flush = self.session.flush(tag)
        if flush is None:
            return
        flush_tag, data = flush
        future = self._expect(flush_tag, "Tflush")
        self._send(data)
        await self._wait(future, flush_tag, "Tflush")

    # -- paths ----------------------------------------------------------------------------------

    def path(self, *parts: str) -> RemotePath:
        """A ``pathlib``-shaped handle: ``await client.path("a", "b.txt").read_bytes()``."""
        return RemotePath(self, *parts)

    def _root(self) -> int:
        if self.root is None:
            raise ProtocolError("not attached")
        return self.root

    @contextlib.asynccontextmanager
    async def fid_of(self, path: str, *, follow_symlinks: bool = False) -> AsyncIterator[int]:
        """A fid on ``path`` for the duration of the ``async with``; clunked on every way out.
        With ``follow_symlinks``, on what a symlink at its end leads to (see ``follow``)."""
        if follow_symlinks:
            fid, _, _ = await self._walk_following(path)
        else:
            fid, _ = await self.walk(self._root(), split_path(path))
        try:
            yield fid
        finally:
            await self._clunk_shielded(fid)

    async def stat(self, path: str, *, follow_symlinks: bool = True) -> Stat:
        """``os.stat``: a symlink at the end of ``path`` is followed (see ``follow``) unless
        ``follow_symlinks`` is false (``lstat``)."""
        async with self.fid_of(path, follow_symlinks=follow_symlinks) as fid:
            return Stat.from_reply(await self.getattr(fid, c.P9_GETATTR_ALL))

    async def lstat(self, path: str) -> Stat:
        """``os.lstat``: the symlink itself (a walk never follows one, r[9p2000l.walk])."""
        return await self.stat(path, follow_symlinks=False)

    async def follow(self, path: str) -> str:
        """``path`` with the symlink it names followed, and the one that names, ... (at most 40,
        then ``ELOOP``, as Linux). The client follows them, as Linux's v9fs does, and only
        inside the export: a target that is absolute or leads above the root names nothing
        here (``FileNotFoundError``). A path that names no symlink comes back as it is."""
        fid, resolved, _ = await self._walk_following(path)
        await self._clunk_shielded(fid)
        return resolved

    async def _walk_following(self, path: str) -> tuple[int, str, Qid | None]:
        """A fid on what ``path`` leads to once symlinks at its end are followed, that path, and
        its qid (None for the root).
        A target that does not exist is ``FileNotFoundError`` naming ``path``, as ``os`` does."""
        names = split_path(path)
        for _ in range(_MAX_SYMLINKS + 1):
            try:
                fid, qids = await self.walk(self._root(), names)
            except FileNotFoundError as exc:
                exc.filename = path
                raise
            if not qids or not qids[-1].type & c.P9_QTSYMLINK:
                self._fid_paths[fid] = "/".join(split_path(path))  # errors name the path given, as os does
                return fid, "/".join(names), qids[-1] if qids else None
            try:
                target = await self.readlink_fid(fid)
            finally:
                await self._clunk_shielded(fid)
            names = _link_target(names, target, path)
        raise error_from_errno(c.ELOOP, "", path)

    async def exists(self, path: str) -> bool:
        try:
            async with self.fid_of(path):
                return True
        except FileNotFoundError:
            return False

    async def read_bytes(self, path: str) -> bytes:
        """The whole file: Tlopen and Tgetattr (its size) in one round trip, then ``read_range``."""
        async with self.fid_of(path, follow_symlinks=True) as fid:
            (_, iounit), attrs = await asyncio.gather(self.lopen(fid, c.P9_RDONLY),
                                                      self.getattr(fid, c.P9_GETATTR_SIZE))
            return await self.read_range(fid, 0, None, iounit, file_size=attrs.size)

    async def write_bytes(self, path: str, data: bytes, mode: int = 0o644) -> int:
        """Creates or truncates ``path`` and writes ``data``."""
        fid, iounit = await self._open_path(path, c.P9_WRONLY | c.P9_TRUNC, True, mode)
        try:
            return await self.write_range(fid, data, 0, iounit)
        finally:
            await self._clunk_shielded(fid)

    async def listdir(self, path: str = "") -> list[str]:
        """The names in directory ``path``, without ``.`` and ``..`` (as ``os.listdir``)."""
        return [e.name for e in await self.scandir(path)]

    async def scandir(self, path: str = "") -> list[Dirent]:
        """The entries of directory ``path`` (a symlink to one is followed, as ``os.scandir``
        does); a file is ``NotADirectoryError`` (nfs-ganesha would say EINVAL)."""
        fid, _, qid = await self._walk_following(path)
        try:
            if qid is not None and not qid.type & c.P9_QTDIR:
                raise error_from_errno(c.ENOTDIR, "Tlopen", path)
            await self.lopen(fid, c.P9_RDONLY | c.P9_DIRECTORY)
            return [e for e in await self.readdir(fid) if e.name not in (".", "..")]
        finally:
            await self._clunk_shielded(fid)

    async def walk_tree(self, top: str = "") -> AsyncIterator[tuple[str, list[str], list[str]]]:
        """``os.walk``: (dirpath, dirnames, filenames) for ``top`` and every directory below."""
        entries = await self.scandir(top)
        dirs = [e.name for e in entries if e.type == c.DT_DIR]
        files = [e.name for e in entries if e.type != c.DT_DIR]
        yield top, dirs, files
        for name in dirs:
            async for item in self.walk_tree(posixpath.join(top, name)):
                yield item

    async def mkdir(self, path: str, mode: int = 0o755) -> None:
        parent, name = _split(path)
        async with self.fid_of(parent) as dfid:
            await self.mkdir_at(dfid, name, mode)

    async def symlink(self, target: str, path: str) -> None:
        """Like ``os.symlink(target, path)``: ``path`` becomes a link to ``target``."""
        parent, name = _split(path)
        with _both_named(target, path):
            async with self.fid_of(parent) as dfid:
                await self.symlink_at(dfid, name, target)

    async def readlink(self, path: str) -> str:
        async with self.fid_of(path) as fid:
            return await self.readlink_fid(fid)

    async def link(self, src: str, dst: str) -> None:
        """Like ``os.link(src, dst)``."""
        parent, name = _split(dst)
        with _both_named(src, dst):
            async with self.fid_of(src) as fid, self.fid_of(parent) as dfid:
                if await self._is_dir(fid, None):  # nfs-ganesha would say EINVAL
                    raise error_from_errno(c.EPERM, "Tlink: a directory cannot be hard-linked", src)
                await self.link_at(dfid, fid, name)

    async def remove_path(self, path: str, directory: bool | None = None) -> None:
        """Removes a file (``directory=False``: ``os.unlink``), an empty directory (``True``:
        ``os.rmdir``) or either (``None``). The type is checked first, from the walk's qid, and
        a mismatch refused as ``os`` does (``IsADirectoryError`` for a directory to unlink,
        ``NotADirectoryError`` for a file to rmdir): Tunlinkat's AT_REMOVEDIR is not enough
        (nfs-ganesha ignores it), nor is Tremove, the fallback where the server lacks Tunlinkat
        (diod; Linux does the same, r[9p2000l.unlinkat]), which removes whatever its fid names."""
        names = split_path(path)
        if not names:
            raise error_from_errno(c.EINVAL, "Tunlinkat: the root cannot be removed", path)
        async with self.fid_of("/".join(names[:-1])) as dfid:
            fid, qids = await self.walk(dfid, names[-1:])
            fid_gone = False
            try:
                found_dir = await self._is_dir(fid, qids[-1] if qids else None)
                if directory is not None and found_dir != directory:
                    raise error_from_errno(c.EISDIR if found_dir else c.ENOTDIR, "Tunlinkat", path)
                try:
                    await self.unlinkat(dfid, names[-1], c.AT_REMOVEDIR if found_dir else 0)
                    return
                except OSError as exc:
                    if exc.errno != errno.EOPNOTSUPP:
                        raise
                fid_gone = True  # Tremove clunks the fid whatever the answer
                await self.remove(fid)
            finally:
                if not fid_gone:
                    await self._clunk_shielded(fid)

    async def _is_dir(self, fid: int, qid: Qid | None) -> bool:
        """Whether ``fid`` names a directory (not following a symlink): from the walk's qid
        when there is one (r[9p2000l.encoding.qid]), else from Tgetattr."""
        if qid is not None:
            return bool(qid.type & c.P9_QTDIR)
        # P9_GETATTR_BASIC, not P9_GETATTR_MODE alone: nfs-ganesha answers that with mode 0
        return (await self.getattr(fid, c.P9_GETATTR_BASIC)).mode & c.S_IFMT == c.S_IFDIR

    async def rmtree(self, path: str, ignore_errors: bool = False) -> None:
        """``shutil.rmtree``: removes the directory ``path`` and everything below it, without
        following symlinks (a symlink as ``path`` is refused, as shutil does). With
        ``ignore_errors`` whatever cannot be removed is left and the rest goes."""
        try:
            if stat_module.S_ISLNK((await self.lstat(path)).st_mode):
                raise OSError("Cannot call rmtree on a symbolic link")
            await self._rmtree(path, ignore_errors)
        except OSError:
            if not ignore_errors:
                raise

    async def _rmtree(self, path: str, ignore_errors: bool) -> None:
        try:
            entries = await self.scandir(path)
        except OSError:
            if not ignore_errors:
                raise
            entries = []
        for entry in entries:
            child = posixpath.join(path, entry.name)
            try:
                is_dir = entry.type == c.DT_DIR
                if entry.type == c.DT_UNKNOWN:  # the server does not say: ask
                    is_dir = stat_module.S_ISDIR((await self.lstat(child)).st_mode)
                if is_dir:
                    await self._rmtree(child, ignore_errors)
                else:
                    await self.remove_path(child, directory=False)
            except OSError:
                if not ignore_errors:
                    raise
        await self.remove_path(path, directory=True)

    async def touch(self, path: str, mode: int = 0o666, exist_ok: bool = True) -> None:
        """``Path.touch``: sets an existing file's access and modification times to the
        server's now, or creates it empty (with ``mode``; ``FileExistsError`` if it exists
        and not ``exist_ok``)."""
        if exist_ok:
            try:
                async with self.fid_of(path, follow_symlinks=True) as fid:
                    await self.setattr(fid, c.P9_SETATTR_ATIME | c.P9_SETATTR_MTIME)
                return
            except OSError:
                pass  # as pathlib: then try to create it, which says what is wrong
        fid, _ = await self._open_path(path, c.P9_WRONLY | (0 if exist_ok else c.P9_EXCL), True, mode)
        await self._clunk_shielded(fid)

    async def rename(self, src: str, dst: str) -> None:
        """Like ``os.rename``: Trenameat, or Trename where the server lacks it (r[9p2000l.renameat])."""
        old_parent, old_name = _split(src)
        new_parent, new_name = _split(dst)
        with _both_named(src, dst):
            async with self.fid_of(old_parent) as olddir, self.fid_of(new_parent) as newdir:
                try:
                    await self.renameat(olddir, old_name, newdir, new_name)
                    return
                except OSError as exc:
                    if exc.errno != errno.EOPNOTSUPP:
                        raise
                async with self.fid_of(src) as fid:
                    await self.rename_fid(fid, newdir, new_name)

    async def chmod(self, path: str, mode: int) -> None:
        async with self.fid_of(path, follow_symlinks=True) as fid:
            await self.setattr(fid, c.P9_SETATTR_MODE, mode=mode)

    async def truncate(self, path: str, size: int) -> None:
        async with self.fid_of(path, follow_symlinks=True) as fid:
            await self.setattr(fid, c.P9_SETATTR_SIZE, size=size)

    async def getxattr(self, path: str, name: str) -> bytes:
        async with self.fid_of(path, follow_symlinks=True) as fid:
            xfid, size = await self.xattrwalk(fid, name)
            try:
                return await self.read_range(xfid, 0, size) if size else b""
            finally:
                await self._clunk_shielded(xfid)

    async def listxattr(self, path: str) -> list[str]:
        raw = await self.getxattr(path, "")
        return [n.decode("utf-8", "surrogateescape") for n in raw.split(b"\0") if n]

    async def setxattr(self, path: str, name: str, value: bytes, flags: int = 0) -> None:
        """Txattrcreate on a clone, the value written, then the clunk that sets it (r[9p2000l.xattrcreate])."""
        async with self.fid_of(path, follow_symlinks=True) as fid:
            xfid, _ = await self.walk(fid, [])
            try:
                await self.xattrcreate(xfid, name, len(value), flags)
                if value:
                    await self.write_range(xfid, value)
            except BaseException:
                await self._clunk_shielded(xfid)
                raise
            await self.clunk(xfid)  # the attribute is set here; its error is the caller's

    async def statvfs(self, path: str = "") -> Rstatfs:
        async with self.fid_of(path, follow_symlinks=True) as fid:
            return await self.statfs(fid)

    async def _open_path(self, path: str, flags: int, create: bool, mode: int) -> tuple[int, int]:
        """A fid open with ``flags`` on ``path`` (created with ``mode`` if ``create`` and it is
        missing), and its iounit; the fid is the caller's, and none is left when this raises.
        As ``os.open``: a symlink at the end is followed (a walk does not follow one, and
        nfs-ganesha's Tlcreate opens the link itself), an existing name with EXCL is
        ``FileExistsError`` (nfs-ganesha ignores EXCL), and TRUNC truncates (nfs-ganesha
        ignores it in Tlopen and Tlcreate: Linux's v9fs truncates with Tsetattr, and so does
        this). Hence the walk first, then Tlcreate only where nothing is there."""
        for _ in range(_MAX_SYMLINKS + 1):
            names = split_path(path)
            if not create or not names:
                fid, path, qid = await self._walk_following(path)
                break
            async with self.fid_of("/".join(names[:-1])) as dfid:
                try:
                    fid, qids = await self.walk(dfid, names[-1:])
                except FileNotFoundError:
                    return await self._create(dfid, names[-1], flags, mode)
            qid = qids[-1]
            if not flags & c.P9_EXCL and not qid.type & c.P9_QTSYMLINK:
                break
            try:
                if flags & c.P9_EXCL:
                    raise error_from_errno(c.EEXIST, "Tlcreate", path)
                target = await self.readlink_fid(fid)
            finally:
                await self._clunk_shielded(fid)
            path = "/".join(_link_target(names, target, path))
        else:
            raise error_from_errno(c.ELOOP, "", path)
        if qid is not None and qid.type & c.P9_QTDIR and flags & c.P9_ACCMODE != c.P9_RDONLY:
            await self._clunk_shielded(fid)  # nfs-ganesha would open a directory for writing
            raise error_from_errno(c.EISDIR, "Tlopen", path)
        return fid, await self._lopen_owned(fid, flags)

    async def _create(self, dfid: int, name: str, flags: int, mode: int) -> tuple[int, int]:
        """Tlcreate of ``name`` in ``dfid`` on a clone of it; if another client made the name
        since the walk found nothing (EEXIST, and no EXCL), the file is opened instead."""
        fid, _ = await self.walk(dfid, [])
        try:
            _, iounit = await self.lcreate(fid, name, flags | c.P9_CREATE, mode)
            return fid, iounit
        except FileExistsError:
            await self._clunk_shielded(fid)
            if flags & c.P9_EXCL:
                raise
        except BaseException:
            await self._clunk_shielded(fid)
            raise
        fid, _ = await self.walk(dfid, [name])
        return fid, await self._lopen_owned(fid, flags)

    async def _lopen_owned(self, fid: int, flags: int) -> int:
        """Tlopen of a fid this call owns (clunked if it fails), then Tsetattr to size 0 for
        TRUNC; returns the iounit."""
        try:
            _, iounit = await self.lopen(fid, flags)
            if flags & c.P9_TRUNC:
                await self.setattr(fid, c.P9_SETATTR_SIZE, size=0)
        except BaseException:
            await self._clunk_shielded(fid)
            raise
        return iounit

    async def open(self, path: str, mode: str = "rb") -> File:
        """An async file object: ``async with await client.open("a.txt", "wb") as f: await f.write(b"x")``.
        Modes: r, w (create/truncate), a (append), x (exclusive create), with optional + and b."""
        flags, create = _open_flags(mode)
        fid, iounit = await self._open_path(path, flags, create, 0o644)
        position = 0
        if flags & c.P9_APPEND:
            try:
                position = (await self.getattr(fid, c.P9_GETATTR_SIZE)).size
            except BaseException:
                await self._clunk_shielded(fid)
                raise
        return File(self, fid, iounit, path, position)


class _Wire(asyncio.Protocol):
    """The transport's callbacks, handed straight to the client: no stream buffer between the
    socket and the frame reader, so received bytes are not copied on the way."""

    def __init__(self, client: Client) -> None:
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


def _open_flags(mode: str) -> tuple[int, bool]:
    base = mode.replace("b", "")
    plus = "+" in base
    kind = base.replace("+", "")
    if kind not in ("r", "w", "a", "x") or len(kind) != 1:
        raise ValueError(f"invalid mode {mode!r}")
    access = c.P9_RDWR if plus else (c.P9_RDONLY if kind == "r" else c.P9_WRONLY)
    if kind == "r":
        return access, False
    if kind == "w":
        return access | c.P9_TRUNC, True
    if kind == "a":
        return access | c.P9_APPEND, True
    return access | c.P9_EXCL, True


class File:
    """An open file on the server, read and written through its fid."""

    def __init__(self, client: Client, fid: int, iounit: int, name: str, position: int = 0) -> None:
        self.client = client
        self.fid = fid
        self.iounit = iounit
        self.name = name
        self.position = position
        self.closed = False

    async def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes from the current position (all the rest when ``size`` < 0)."""
        self._check()
        if size < 0:
            data = await self.client.read_range(self.fid, self.position, None, self.iounit)
        else:
            data = await self.client.read_range(self.fid, self.position, size, self.iounit)
        self.position += len(data)
        return data

    async def write(self, data: bytes) -> int:
        self._check()
        count = await self.client.write_range(self.fid, data, self.position, self.iounit)
        self.position += count
        return count

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == 0:
            self.position = offset
        elif whence == 1:
            self.position += offset
        else:
            raise ValueError("seek from the end: stat the file first")
        return self.position

    def tell(self) -> int:
        return self.position

    async def stat(self) -> Stat:
        self._check()
        return Stat.from_reply(await self.client.getattr(self.fid, c.P9_GETATTR_ALL))

    async def fsync(self) -> None:
        self._check()
        await self.client.fsync(self.fid)

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            await self.client._clunk_shielded(self.fid)

    def _check(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed file")

    async def __aenter__(self) -> File:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def connect(address: str, **options: Any) -> Client:
    """``connect("HOST:PORT/aname")`` or ``connect("unix:/path/sock/aname")``: the CLI's address form."""
    host, port, path, aname = parse_address(address)
    return await Client.connect(host, port, path=path, aname=options.pop("aname", aname), **options)


def parse_address(address: str) -> tuple[str | None, int, str | None, str]:
    """``HOST:PORT[/aname]`` → (host, port, None, aname); ``unix:SOCKET[:aname]`` → (None, 0, SOCKET, aname)."""
    if address.startswith("unix:"):
        rest = address[5:]
        sock, _, aname = rest.partition(":")
        return None, 0, sock, aname
    hostport, slash, aname = address.partition("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"{address!r}: expected HOST:PORT[/aname]")
    return host.strip("[]"), int(port), None, slash + aname if aname else ""


def _checked_read(reply: Any, count: int) -> bytes:
    data: bytes = reply.data
    if len(data) > count:  # as Linux does ("bogus RREAD count"): never pass it on
        raise ProtocolError(f"Rread carried {len(data)} bytes for a Tread of {count}")
    return data


def _describe(request: Any) -> str:
    """A request as error messages name it: its type, and for Tattach/Tauth who asked for what."""
    if isinstance(request, str):
        return request
    kind = type(request).__name__
    if isinstance(request, (Tattach, Tauth)):
        who = f"uname {request.uname!r}"
        if request.n_uname != c.NONUNAME:
            who += f", n_uname {request.n_uname}"
        return f"{kind} of aname {request.aname!r} as {who}"
    return kind


def _ignore_result(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


# Python 3.13's pathlib: a pattern ending in "**" matches files too, not only directories
_TRAILING_STARSTAR_MATCHES_FILES = sys.version_info >= (3, 13)


class RemotePath:
    """A path on the server, shaped like ``pathlib.Path`` with awaitable methods:
    ``p = client.path("notes") / "today.txt"; await p.write_bytes(b"hi"); await p.stat()``.

    The pure parts (``name``, ``suffix``, ``with_suffix``, ``parents``...) are
    ``PurePosixPath``'s, so they behave and fail as pathlib's do. Paths are relative to the
    attached root, which is ``client.path()`` (``str`` gives ``""``)."""

    __slots__ = ("client", "parts")

    def __init__(self, client: Client, *parts: str) -> None:
        self.client = client
        self.parts = tuple(split_path("/".join(parts)))

    # -- pure: no request ---------------------------------------------------------------------------

    def _pure(self) -> PurePosixPath:
        return PurePosixPath(*self.parts)

    def _with(self, pure: PurePosixPath) -> RemotePath:
        return RemotePath(self.client, str(pure))

    def __truediv__(self, other: str | RemotePath) -> RemotePath:
        return self.joinpath(other)

    def joinpath(self, *others: str | RemotePath) -> RemotePath:
        """``self / a / b``; a ``RemotePath`` joins by its parts (it is below the same root)."""
        parts = [*self.parts]
        for other in others:
            parts.extend(other.parts if isinstance(other, RemotePath) else [other])
        return RemotePath(self.client, *parts)

    def __str__(self) -> str:
        return "/".join(self.parts)

    def __repr__(self) -> str:
        return f"RemotePath({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RemotePath) and (other.client, other.parts) == (self.client, self.parts)

    def __hash__(self) -> int:
        return hash(self.parts)

    def __lt__(self, other: RemotePath) -> bool:
        if not isinstance(other, RemotePath):
            return NotImplemented
        return self.parts < other.parts

    def as_posix(self) -> str:
        return str(self)

    @property
    def name(self) -> str:
        return self.parts[-1] if self.parts else ""

    @property
    def suffix(self) -> str:
        return self._pure().suffix

    @property
    def suffixes(self) -> list[str]:
        return self._pure().suffixes

    @property
    def stem(self) -> str:
        return self._pure().stem

    @property
    def parent(self) -> RemotePath:
        return RemotePath(self.client, *self.parts[:-1])

    @property
    def parents(self) -> tuple[RemotePath, ...]:
        """The ancestors, nearest first, ending with the root (as ``Path.parents``, which ends with ``.``)."""
        return tuple(RemotePath(self.client, *self.parts[:i]) for i in range(len(self.parts) - 1, -1, -1))

    def with_name(self, name: str) -> RemotePath:
        return self._with(self._pure().with_name(name))

    def with_stem(self, stem: str) -> RemotePath:
        return self._with(self._pure().with_stem(stem))

    def with_suffix(self, suffix: str) -> RemotePath:
        return self._with(self._pure().with_suffix(suffix))

    def relative_to(self, other: str | RemotePath) -> PurePosixPath:
        """The rest of this path below ``other`` (``ValueError`` if it is not below it). A
        ``PurePosixPath``: a relative path names no place on the server."""
        return self._pure().relative_to(PurePosixPath(*_parts_of(other)))

    def is_relative_to(self, other: str | RemotePath) -> bool:
        parts = tuple(_parts_of(other))
        return self.parts[:len(parts)] == parts

    def match(self, pattern: str) -> bool:
        """``PurePath.match``: the pattern matched from the right (no request is sent)."""
        return self._pure().match(pattern)

    # -- the server: one or a few requests each ---------------------------------------------------------

    async def stat(self, *, follow_symlinks: bool = True) -> Stat:
        return await self.client.stat(str(self), follow_symlinks=follow_symlinks)

    async def lstat(self) -> Stat:
        return await self.client.lstat(str(self))

    async def _mode(self, follow_symlinks: bool = True) -> int | None:
        """The mode, or None where pathlib's ``exists``/``is_*`` say False (nothing there, a
        name under a file, a symlink loop or one that leads out of the export)."""
        try:
            return (await self.stat(follow_symlinks=follow_symlinks)).st_mode
        except OSError as exc:
            if exc.errno in _MISSING:
                return None
            raise

    async def exists(self, *, follow_symlinks: bool = True) -> bool:
        return await self._mode(follow_symlinks) is not None

    async def is_dir(self) -> bool:
        return stat_module.S_ISDIR(await self._mode() or 0)

    async def is_file(self) -> bool:
        return stat_module.S_ISREG(await self._mode() or 0)

    async def is_symlink(self) -> bool:
        return stat_module.S_ISLNK(await self._mode(follow_symlinks=False) or 0)

    async def samefile(self, other: str | RemotePath) -> bool:
        """Whether both name the same file (the same qid path, r[9p2000l.encoding.qid])."""
        other_path = other if isinstance(other, RemotePath) else RemotePath(self.client, other)
        return (await self.stat()).st_ino == (await other_path.stat()).st_ino

    async def read_bytes(self) -> bytes:
        return await self.client.read_bytes(str(self))

    async def read_text(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return (await self.read_bytes()).decode(encoding, errors)

    async def write_bytes(self, data: bytes) -> int:
        return await self.client.write_bytes(str(self), data)

    async def write_text(self, text: str, encoding: str = "utf-8", errors: str = "strict") -> int:
        return await self.write_bytes(text.encode(encoding, errors))

    async def open(self, mode: str = "rb") -> File:
        return await self.client.open(str(self), mode)

    async def touch(self, mode: int = 0o666, exist_ok: bool = True) -> None:
        await self.client.touch(str(self), mode, exist_ok)

    async def iterdir(self) -> list[RemotePath]:
        """The entries of this directory (``.`` and ``..`` left out), as paths."""
        return [self / name for name in await self.client.listdir(str(self))]

    async def walk(self) -> AsyncIterator[tuple[RemotePath, list[str], list[str]]]:
        """``Path.walk`` (Python 3.12): (dirpath, dirnames, filenames), top down."""
        async for top, dirs, files in self.client.walk_tree(str(self)):
            yield RemotePath(self.client, top), dirs, files

    async def glob(self, pattern: str) -> AsyncIterator[RemotePath]:
        """``Path.glob``: the paths below this one that match ``pattern`` (``*``, ``?``,
        ``[...]`` within a name, ``**`` for this directory and every one below it, and for the
        files there too when it ends the pattern on Python 3.13 and later, as pathlib does), in
        directory order. Wildcards match names starting with ``.`` too, as pathlib's do.
        A symlink to a directory is not descended into: not by ``**`` (nor is it by pathlib)
        and, unlike pathlib, not by a wildcard either (the client would follow it itself)."""
        if not pattern:
            raise ValueError(f"Unacceptable pattern: {pattern!r}")
        if pattern.startswith("/"):
            raise NotImplementedError("Non-relative patterns are unsupported")
        parts = [p for p in pattern.split("/") if p not in ("", ".")]
        seen: set[RemotePath] = set()
        async for path in self._select(parts):
            if path not in seen:  # "**" reaches a path once per way down to it
                seen.add(path)
                yield path

    async def rglob(self, pattern: str) -> AsyncIterator[RemotePath]:
        """``Path.rglob``: ``glob("**/" + pattern)``."""
        async for path in self.glob(f"**/{pattern}"):
            yield path

    async def _select(self, parts: list[str]) -> AsyncIterator[RemotePath]:
        if not parts:
            yield self
            return
        head, rest = parts[0], parts[1:]
        if head == "**":
            async for top, _, files in self.walk():
                async for path in top._select(rest):
                    yield path
                if not rest and _TRAILING_STARSTAR_MATCHES_FILES:
                    for name in files:
                        yield top / name
        elif any(ch in head for ch in "*?["):
            try:
                entries = await self.client.scandir(str(self))
            except OSError as exc:
                if exc.errno in _MISSING or exc.errno in (errno.EACCES, errno.EPERM):
                    return  # as pathlib: a directory that cannot be listed matches nothing
                raise
            for entry in entries:
                if fnmatch.fnmatchcase(entry.name, head) and (not rest or entry.type in (c.DT_DIR, c.DT_UNKNOWN)):
                    async for path in (self / entry.name)._select(rest):
                        yield path
        elif rest:
            async for path in (self / head)._select(rest):
                yield path
        elif await (self / head).exists(follow_symlinks=False):
            yield self / head

    async def mkdir(self, mode: int = 0o755, parents: bool = False, exist_ok: bool = False) -> None:
        try:
            await self.client.mkdir(str(self), mode)
        except FileNotFoundError:
            if not parents or not self.parts:
                raise
            await self.parent.mkdir(mode, parents=True, exist_ok=True)
            await self.mkdir(mode, parents=False, exist_ok=exist_ok)
        except FileExistsError:
            if not exist_ok or not await self.is_dir():
                raise

    async def remove(self) -> None:
        """Removes the file or empty directory (``os.remove`` and ``os.rmdir`` in one)."""
        await self.client.remove_path(str(self))

    async def unlink(self, missing_ok: bool = False) -> None:
        try:
            await self.client.remove_path(str(self), directory=False)
        except FileNotFoundError:
            if not missing_ok:
                raise

    async def rmdir(self) -> None:
        await self.client.remove_path(str(self), directory=True)

    async def rmtree(self, ignore_errors: bool = False) -> None:
        """``shutil.rmtree(self)``."""
        await self.client.rmtree(str(self), ignore_errors)

    async def rename(self, target: RemotePath | str) -> RemotePath:
        """``Path.rename``: on the server, as POSIX rename, an existing file at ``target`` is replaced."""
        await self.client.rename(str(self), str(target))
        return target if isinstance(target, RemotePath) else RemotePath(self.client, target)

    async def replace(self, target: RemotePath | str) -> RemotePath:
        """``Path.replace``: ``rename``, which replaces ``target`` already (POSIX rename)."""
        return await self.rename(target)

    async def symlink_to(self, target: str) -> None:
        await self.client.symlink(target, str(self))

    async def hardlink_to(self, target: RemotePath | str) -> None:
        await self.client.link(str(target), str(self))

    async def readlink(self) -> str:
        return await self.client.readlink(str(self))

    async def chmod(self, mode: int) -> None:
        await self.client.chmod(str(self), mode)


# errnos after which pathlib's exists()/is_dir()/is_file() answer False rather than raise
_MISSING = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP})


def _parts_of(path: str | RemotePath) -> list[str]:
    return list(path.parts) if isinstance(path, RemotePath) else split_path(path)

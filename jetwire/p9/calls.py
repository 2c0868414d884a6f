"""The calls layer: one method per 9P2000.L request (names as the messages), on fids, over the
connection layer; reads and writes split by msize and iounit with several requests in flight.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import io
import posixpath
from collections.abc import AsyncIterator, Iterable
from typing import Any, cast

from typing_extensions import Self

from . import constants as c
from . import messages as m
from .connection import Connection, _ignore_result
from .session import ListingTooLongError, LocalProtocolError, RemoteProtocolError, Session, error_from_errno

MAX_LISTING = 1_000_000
"""The most entries ``readdir`` (and so ``listdir``, ``scandir``, ``walk_tree``) holds from one
listing by default: about 200 MB of ``Dirent`` objects with short names."""


def parse_dirents(data: bytes) -> list[m.Dirent]:
    """The entries of one Rreaddir's data (r[9p2000l.readdir.dirent]); a cut entry is an error."""
    entries = []
    offset = 0
    while offset < len(data):
        entry, offset = m.Dirent.decode_prefix(data, offset)
        entries.append(entry)
    return entries


class Calls(Connection):
    """One method per request, taking and returning fids (names as the messages), over one
    attached connection. A fid a call makes is the caller's; a call that fails leaves none."""

    def __init__(self, session: Session, timeout: float | None) -> None:
        super().__init__(session, timeout)
        self.root: int | None = None
        self.max_listing = MAX_LISTING
        """The most entries one ``readdir`` (``listdir``, ``scandir``, ``walk_tree``...) holds."""

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
    ) -> Self:
        """Connects over TCP (``host``, ``port``) or a unix socket (``path``), negotiates
        9P2000.L and attaches ``aname`` as ``uname``/``n_uname``. ``timeout`` bounds every
        reply: a server that never answers raises ``TimeoutError``, never hangs the caller."""
        client = await cls._dial(host, port, path, msize, timeout)
        try:
            await client.attach(aname=aname, uname=uname, n_uname=n_uname)
        except BaseException:
            await client.close()
            raise
        return client

    def _root(self) -> int:
        if self.root is None:
            raise LocalProtocolError("not attached")
        return self.root

    # -- fids a call makes ------------------------------------------------------------------------

    def _reserved_fid(self, fid: int | None = None) -> _ReservedFid:
        """``async with self._reserved_fid() as fid:`` around the request that creates ``fid``."""
        return _ReservedFid(self, fid)

    def _owned_fid(self, fid: int) -> _OwnedFid:
        """``async with self._owned_fid(fid):`` around what must succeed for ``fid`` to be handed on."""
        return _OwnedFid(self, fid)

    def _owned_by_request(self, fid: int) -> bool:
        return any(p.creates_fid == fid or p.frees_fid == fid for p in self.session.pending.values())

    async def _clunk_shielded(self, fid: int) -> None:
        """Clunks even when the caller is being cancelled: a fid must never leak."""
        with contextlib.suppress(Exception):
            await asyncio.shield(self._call(m.Tclunk(fid=fid)))

    # -- one request each (names as the messages) -----------------------------------------------

    async def attach(self, aname: str = "", uname: str = "root", n_uname: int = c.NONUNAME,
                     afid: int = c.NOFID) -> int:
        """Attaches a new fid to the root of ``aname`` (r[9p2000l.attach]); the first becomes ``root``."""
        async with self._reserved_fid() as fid:
            await self._call(m.Tattach(fid=fid, afid=afid, uname=uname, aname=aname, n_uname=n_uname))
        self._fid_paths[fid] = ""
        if self.root is None:
            self.root = fid
        return fid

    async def auth(self, aname: str = "", uname: str = "root", n_uname: int = c.NONUNAME) -> tuple[int, m.Qid]:
        """Starts authentication (r[9p2000l.auth]); servers that need none answer an error."""
        async with self._reserved_fid() as afid:
            reply = await self._call(m.Tauth(afid=afid, uname=uname, aname=aname, n_uname=n_uname))
        self._fid_paths[afid] = aname
        return afid, reply.aqid

    async def walk(self, fid: int, names: Iterable[str], newfid: int | None = None) -> tuple[int, list[m.Qid]]:
        """Walks ``names`` from ``fid`` to a new fid (r[9p2000l.walk.clone]); paths longer than
        MAXWELEM names take several walks (r[9p2000l.walk.max]). A name that does not exist
        raises ``FileNotFoundError``; no fid is left behind."""
        names = list(names)
        chunks = [names[i:i + c.MAXWELEM] for i in range(0, len(names), c.MAXWELEM)] or [[]]
        base = self._fid_paths.get(fid, "")
        path = posixpath.join(base, *names)
        qids: list[m.Qid] = []
        async with self._reserved_fid(newfid) as target:
            reply = await self._call(m.Twalk(fid=fid, newfid=target, wnames=chunks[0]), filename=path)
            _walked(reply.wqids, chunks[0], qids, names, base)
        if len(chunks) > 1:  # the first walk made target; the rest walk it in place
            async with self._owned_fid(target) if target != fid else contextlib.nullcontext(target):
                for chunk in chunks[1:]:
                    reply = await self._call(m.Twalk(fid=target, newfid=target, wnames=chunk), filename=path)
                    _walked(reply.wqids, chunk, qids, names, base)
        self._fid_paths[target] = path
        return target, qids

    async def clunk(self, fid: int) -> None:
        """Forgets ``fid``; it is free afterwards even if the server complains (r[9p2000l.clunk])."""
        await asyncio.shield(self._call(m.Tclunk(fid=fid)))

    async def remove(self, fid: int) -> None:
        """Removes the file ``fid`` names and clunks the fid (r[9p2000l.remove])."""
        await asyncio.shield(self._call(m.Tremove(fid=fid)))

    async def lopen(self, fid: int, flags: int) -> tuple[m.Qid, int]:
        reply = await self._call(m.Tlopen(fid=fid, flags=flags))
        return reply.qid, reply.iounit

    async def lcreate(self, fid: int, name: str, flags: int, mode: int, gid: int = 0) -> tuple[m.Qid, int]:
        reply = await self._call(m.Tlcreate(fid=fid, name=name, flags=flags, mode=mode, gid=gid))
        self._fid_paths[fid] = self._joined(fid, name) or name  # the fid is the new file now
        return reply.qid, reply.iounit

    async def read(self, fid: int, offset: int, count: int, iounit: int = 0) -> bytes:
        """One Tread of at most ``count`` bytes, capped to what msize and iounit allow."""
        count = min(count, self.session.io_size(iounit))
        return _checked_read(await self._call(m.Tread(fid=fid, offset=offset, count=count)), count)

    async def write(self, fid: int, offset: int, data: bytes, iounit: int = 0) -> int:
        """One Twrite of as much of ``data`` as msize and iounit allow; returns the count written."""
        chunk = data[: self.session.io_size(iounit)]
        count = (await self._call(m.Twrite(fid=fid, offset=offset, data=chunk))).count
        if count > len(chunk):
            raise RemoteProtocolError(f"Rwrite counted {count} bytes for a Twrite of {len(chunk)}")
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
        inflight: collections.deque[tuple[int, asyncio.Future[Any], m.Tread]] = collections.deque()
        issued = position
        failed = True
        try:
            while True:
                while len(inflight) < window and (end is None or issued < end):
                    count = step if end is None else min(step, end - issued)
                    request = m.Tread(fid=fid, offset=issued, count=count)
                    if self._no_tag_free():
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
        inflight: collections.deque[tuple[int, asyncio.Future[Any], m.Twrite]] = collections.deque()
        failed = True
        with memoryview(data) as whole, whole.cast("B") as view:
            total = len(view)
            issued = done = 0
            try:
                while done < total:
                    while len(inflight) < window and issued < total:
                        # the encoder takes any buffer: a slice of view saves copying the chunk out
                        chunk = cast(bytes, view[issued:issued + step])
                        request = m.Twrite(fid=fid, offset=offset + issued, data=chunk)
                        if self._no_tag_free():
                            await self._tag_freed(request)
                        inflight.append((*self._start(request), request))
                        issued += len(request.data)
                    tag, future, request = inflight.popleft()
                    count = (await self._result(tag, future, request)).count
                    sent = len(request.data)
                    if count > sent:
                        raise RemoteProtocolError(f"Rwrite counted {count} bytes for a Twrite of {sent}")
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

    async def readdir(self, fid: int) -> list[m.Dirent]:
        """Every entry of the directory open on ``fid`` (r[9p2000l.readdir]), at most
        ``max_listing`` of them: past that, ``ListingTooLongError``, since a server may hand out
        new offsets for ever. ``readdir_batches`` lists any directory in constant memory."""
        entries: list[m.Dirent] = []
        bound = self.max_listing
        async for batch in self.readdir_batches(fid):
            entries.extend(batch)
            if len(entries) > bound:
                raise ListingTooLongError(f"the directory of fid {fid} has more than {bound} entries "
                                          f"(the client's max_listing)")
        return entries

    async def readdir_batches(self, fid: int) -> AsyncIterator[list[m.Dirent]]:
        """The entries of the directory open on ``fid``, one Rreaddir's worth at a time: what
        is held is the batch the caller has, whatever the directory's size."""
        offset = 0
        count = self.session.io_size()
        # Offsets already asked for: a server that leads back to one (a->b->a...) would list
        # forever. One per Rreaddir of at least one entry, so no more than the batches read.
        asked = {offset}
        while True:
            reply = await self._call(m.Treaddir(fid=fid, offset=offset, count=count))
            if len(reply.data) > count:  # r[9p2000l.readdir]: at most count bytes
                raise RemoteProtocolError(f"Rreaddir carried {len(reply.data)} bytes for a Treaddir of {count}")
            batch = parse_dirents(reply.data)
            if not batch:
                return
            for entry in batch:
                name = entry.name
                # what Linux's getdents refuses too (EUCLEAN): a caller joining it to a path
                # would reach another file than the one listed ("a/b", "../x"), or none ("")
                if not name or "/" in name or "\0" in name:
                    raise RemoteProtocolError(f"Rreaddir listed an entry named {name!r}, which is no file name")
            offset = batch[-1].offset
            if offset in asked:  # the same entries again and again: a listing without end
                raise RemoteProtocolError(
                    f"Rreaddir's last entry points back at offset {offset}, already read in this listing"
                )
            asked.add(offset)
            yield batch

    async def getattr(self, fid: int, request_mask: int = c.P9_GETATTR_BASIC) -> m.Rgetattr:
        return await self._call(m.Tgetattr(fid=fid, request_mask=request_mask))

    async def setattr(self, fid: int, valid: int, mode: int = 0, uid: int = 0, gid: int = 0, size: int = 0,
                      atime_sec: int = 0, atime_nsec: int = 0, mtime_sec: int = 0, mtime_nsec: int = 0) -> None:
        await self._call(m.Tsetattr(fid=fid, valid=valid, mode=mode, uid=uid, gid=gid, size=size, atime_sec=atime_sec,
                                  atime_nsec=atime_nsec, mtime_sec=mtime_sec, mtime_nsec=mtime_nsec))

    async def statfs(self, fid: int) -> m.Rstatfs:
        return await self._call(m.Tstatfs(fid=fid))

    async def mkdir_at(self, dfid: int, name: str, mode: int = 0o755, gid: int = 0) -> m.Qid:
        return (await self._call(m.Tmkdir(dfid=dfid, name=name, mode=mode, gid=gid))).qid

    async def symlink_at(self, fid: int, name: str, target: str, gid: int = 0) -> m.Qid:
        return (await self._call(m.Tsymlink(fid=fid, name=name, symtgt=target, gid=gid))).qid

    async def mknod_at(self, dfid: int, name: str, mode: int, major: int = 0, minor: int = 0, gid: int = 0) -> m.Qid:
        return (await self._call(m.Tmknod(dfid=dfid, name=name, mode=mode, major=major, minor=minor, gid=gid))).qid

    async def readlink_fid(self, fid: int) -> str:
        return (await self._call(m.Treadlink(fid=fid))).target

    async def link_at(self, dfid: int, fid: int, name: str) -> None:
        await self._call(m.Tlink(dfid=dfid, fid=fid, name=name))

    async def rename_fid(self, fid: int, dfid: int, name: str) -> None:
        await self._call(m.Trename(fid=fid, dfid=dfid, name=name))
        self._fid_paths[fid] = self._joined(dfid, name) or name

    async def renameat(self, olddirfid: int, oldname: str, newdirfid: int, newname: str) -> None:
        await self._call(m.Trenameat(olddirfid=olddirfid, oldname=oldname, newdirfid=newdirfid, newname=newname))

    async def unlinkat(self, dirfd: int, name: str, flags: int = 0) -> None:
        await self._call(m.Tunlinkat(dirfd=dirfd, name=name, flags=flags))

    async def fsync(self, fid: int, datasync: bool = False) -> None:
        await self._call(m.Tfsync(fid=fid, datasync=1 if datasync else 0))

    async def lock(self, fid: int, type: int, start: int = 0, length: int = 0, flags: int = 0,  # noqa: A002
                   proc_id: int = 0, client_id: str = "jetwire") -> int:
        """Tlock (r[9p2000l.lock]); returns the status (P9_LOCK_SUCCESS, BLOCKED, ...)."""
        reply = await self._call(m.Tlock(fid=fid, type=type, flags=flags, start=start, length=length,
                                       proc_id=proc_id, client_id=client_id))
        return reply.status

    async def getlock(self, fid: int, type: int, start: int = 0, length: int = 0,  # noqa: A002
                      proc_id: int = 0, client_id: str = "jetwire") -> m.Rgetlock:
        return await self._call(m.Tgetlock(fid=fid, type=type, start=start, length=length,
                                         proc_id=proc_id, client_id=client_id))

    async def xattrwalk(self, fid: int, name: str = "") -> tuple[int, int]:
        """A new fid on attribute ``name`` (or the name list), and its size (r[9p2000l.xattrwalk])."""
        async with self._reserved_fid() as newfid:
            reply = await self._call(m.Txattrwalk(fid=fid, newfid=newfid, name=name))
        self._fid_paths[newfid] = self._fid_paths.get(fid, "")
        return newfid, reply.size

    async def xattrcreate(self, fid: int, name: str, attr_size: int, flags: int = 0) -> None:
        await self._call(m.Txattrcreate(fid=fid, name=name, attr_size=attr_size, flags=flags))

    async def flush(self, tag: int) -> None:
        """Asks the server to abandon the request ``tag``; returns when Rflush arrives."""
        if self._no_tag_free():
            await self._tag_freed("Tflush")
        flush = self.session.flush(tag)
        if flush is None:
            return
        flush_tag, data = flush
        future = self._expect(flush_tag, "Tflush")
        self._send(data)
        await self._wait(future, flush_tag, "Tflush")



class _ReservedFid:
    """The number for the fid a request creates: the caller's choice, or a free one reserved in
    the session. If the body raises before a request took the reservation over (no tag came
    free, the connection was closed), the reservation is dropped; once a request has it, the
    session frees it when that request ends without making the fid. (A class rather than
    ``asynccontextmanager``: every walk passes through, and a generator costs more calls.)"""

    __slots__ = ("calls", "chosen", "fid")

    def __init__(self, calls: Calls, chosen: int | None) -> None:
        self.calls = calls
        self.chosen = chosen
        self.fid = calls.session.alloc_fid() if chosen is None else chosen

    async def __aenter__(self) -> int:
        return self.fid

    async def __aexit__(self, kind: type[BaseException] | None, error: object, traceback: object) -> None:
        if kind is None or self.chosen is not None:
            return
        session = self.calls.session
        if self.fid in session.fids_in_use and not self.calls._owned_by_request(self.fid):
            session.free_fid(self.fid)


class _OwnedFid:
    """A fid the server made, owned by the body of the ``async with``: clunked if the body
    raises (cancellation included), handed on untouched if it completes."""

    __slots__ = ("calls", "fid")

    def __init__(self, calls: Calls, fid: int) -> None:
        self.calls = calls
        self.fid = fid

    async def __aenter__(self) -> int:
        return self.fid

    async def __aexit__(self, kind: type[BaseException] | None, error: object, traceback: object) -> None:
        if kind is not None:
            await self.calls._clunk_shielded(self.fid)


def _walked(wqids: list[m.Qid], chunk: list[str], qids: list[m.Qid], names: list[str], base: str) -> None:
    """Adds one Rwalk's qids to ``qids``; fewer than the names sent is ENOENT naming the first
    missing one (r[9p2000l.walk.partial])."""
    qids.extend(wqids)
    if len(wqids) != len(chunk):
        raise error_from_errno(c.ENOENT, "Twalk", posixpath.join(base, *names[: len(qids) + 1]))


def _checked_read(reply: Any, count: int) -> bytes:
    data: bytes = reply.data
    if len(data) > count:  # as Linux does ("bogus RREAD count"): never pass it on
        raise RemoteProtocolError(f"Rread carried {len(data)} bytes for a Tread of {count}")
    return data


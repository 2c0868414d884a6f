"""POSIX record locks for the file server (r[9p2000l.server.lock] in ../shared/spec/9p2000L.md).

Two parts. ``LockTable`` is pure data: per file, each owner's byte ranges with the ``fcntl``
rules (a range replaces what its owner held there, ranges of one type split and merge, read
locks share, a write lock excludes every other owner); it decides between the server's own
clients and knows whose lock is in the way. ``HostLocks`` mirrors each connection's part of the
table as Linux open-file-description locks (``F_OFD_SETLK``) on a descriptor the server keeps
per connection and file, so that processes on the host and the server's clients respect each
other's locks: a host lock in the way makes the request BLOCKED, as a client's does.

An owner is (connection, ``proc_id``, ``client_id``): fids of one client process share their
locks, different connections never do. Nothing here waits for a lock: a conflict is answered
at once. What may block is the host's own work (opening a descriptor, ``fcntl``, closing one: an
NFS or FUSE file system can take any time over them): ``HostLocks`` hands those to the ``run``
its caller gives, which puts them in a worker thread unless the file system cannot keep them
waiting (``at_once``), and serves one connection's lock requests one at a time meanwhile.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import itertools
import os
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import asynccontextmanager
from typing import Any, NamedTuple

from . import constants as c

__all__ = ["END", "Owner", "Lock", "LockTable", "HostLocks", "Conflict", "DEFAULT_MAX_RANGES", "MAX_CLIENT_ID",
           "Runner", "at_once", "in_thread"]

#: One past the largest offset a host ``off_t`` holds: a lock to the end of the file ends here.
END = 1 << 63
#: Ranges one connection may hold over all its files: each lock or unlock in the middle of a
#: range splits it, so without a cap a client could grow the table without end (answered ERROR).
DEFAULT_MAX_RANGES = 10_000
#: A lock's owner is kept with its ranges: a longer ``client_id`` (Linux sends its host name, at
#: most 64 bytes) cannot be recorded, so that the table's memory stays bounded by the cap above.
MAX_CLIENT_ID = 255

RDLCK = c.P9_LOCK_TYPE_RDLCK
WRLCK = c.P9_LOCK_TYPE_WRLCK
UNLCK = c.P9_LOCK_TYPE_UNLCK


class Owner(NamedTuple):
    connection: Hashable
    proc_id: int
    client_id: str


class Lock(NamedTuple):
    """``[start, end)`` held by ``owner``; ``type`` is RDLCK or WRLCK (the wire's numbers)."""

    start: int
    end: int
    type: int
    owner: Owner


class Conflict(NamedTuple):
    """A lock in the way, as Rgetlock reports it (``length`` 0: to the end of the file)."""

    type: int
    start: int
    length: int
    proc_id: int
    client_id: str


def _conflicts(wanted: int, held: int) -> bool:
    return wanted == WRLCK or held == WRLCK


class LockTable:
    """Every owner's locks, per file (any hashable key: the server uses (st_dev, st_ino)).

    Each owner's list is sorted, its ranges do not overlap, and no two ranges of one type touch
    (they are merged), so a list is the one canonical description of what its owner holds.
    """

    def __init__(self, max_ranges: int = DEFAULT_MAX_RANGES) -> None:
        self.max_ranges = max_ranges
        self._files: dict[Hashable, dict[Owner, list[Lock]]] = {}
        self._ranges: dict[Hashable, int] = {}  # per connection, over all its files

    def locks(self, key: Hashable, owner: Owner) -> list[Lock]:
        return list(self._files.get(key, {}).get(owner, ()))

    def owners(self, key: Hashable) -> list[Owner]:
        return list(self._files.get(key, ()))

    def conflict(self, key: Hashable, owner: Owner, wanted: int, start: int, end: int) -> Lock | None:
        """The lock of another owner that ``wanted`` on ``[start, end)`` conflicts with, the one
        starting first; None if the lock could be placed."""
        found: Lock | None = None
        for other, held in self._files.get(key, {}).items():
            if other == owner:
                continue
            for lock in held:
                if lock.start >= end:
                    break
                if lock.end > start and _conflicts(wanted, lock.type):
                    if found is None or lock.start < found.start:
                        found = lock
                    break
        return found

    def set(self, key: Hashable, owner: Owner, wanted: int, start: int, end: int) -> bool:
        """``owner`` now holds ``wanted`` on ``[start, end)`` (UNLCK: nothing there), whatever
        it held there before; the caller has checked ``conflict``. False, and nothing changed,
        when the owner's connection would hold more than ``max_ranges`` ranges."""
        if not self.fits(key, owner, wanted, start, end):
            return False
        files = self._files.setdefault(key, {})
        before = files.get(owner, [])
        if before:
            owner = before[0].owner  # one owner object for all its ranges, not one per request
        after = _placed(before, owner, wanted, start, end)
        total = self._ranges.get(owner.connection, 0) + len(after) - len(before)
        self._ranges[owner.connection] = total
        if after:
            files[owner] = after
        else:
            files.pop(owner, None)
            if not files:
                del self._files[key]
        if total == 0:
            del self._ranges[owner.connection]
        return True

    def fits(self, key: Hashable, owner: Owner, wanted: int, start: int, end: int) -> bool:
        """Whether ``set`` would record this (the connection stays within ``max_ranges``)."""
        before = self._files.get(key, {}).get(owner, [])
        grows = len(_placed(before, owner, wanted, start, end)) - len(before)
        return grows <= 0 or self._ranges.get(owner.connection, 0) + grows <= self.max_ranges

    def held(self, key: Hashable, connection: Hashable, start: int = 0, end: int = END) -> list[tuple[int, int, int]]:
        """What ``connection``'s owners hold together on ``[start, end)``, as sorted, merged
        ``(start, end, type)``: for each byte the strongest type any of them holds (owners of
        one connection never hold conflicting types on one byte)."""
        cuts: list[tuple[int, int, int]] = []
        for owner, locks in self._files.get(key, {}).items():
            if owner.connection != connection:
                continue
            for lock in locks:
                low, high = max(lock.start, start), min(lock.end, end)
                if low < high:
                    cuts.append((low, high, lock.type))
        if not cuts:
            return []
        points = sorted({p for low, high, _ in cuts for p in (low, high)})
        pieces: list[tuple[int, int, int]] = []
        for low, high in itertools.pairwise(points):
            kinds = [kind for a, b, kind in cuts if a <= low and high <= b]
            if not kinds:
                continue
            kind = max(kinds)  # WRLCK (1) over RDLCK (0)
            if pieces and pieces[-1][1] == low and pieces[-1][2] == kind:
                pieces[-1] = (pieces[-1][0], high, kind)
            else:
                pieces.append((low, high, kind))
        return pieces

    def release(self, key: Hashable, connection: Hashable) -> None:
        """Drops every lock ``connection``'s owners hold on ``key``."""
        files = self._files.get(key)
        if files is None:
            return
        for owner in [o for o in files if o.connection == connection]:
            left = self._ranges.get(connection, 0) - len(files.pop(owner))
            if left > 0:
                self._ranges[connection] = left
            else:
                self._ranges.pop(connection, None)
        if not files:
            del self._files[key]

    def ranges(self, connection: Hashable) -> int:
        """How many ranges ``connection``'s owners hold, over every file."""
        return self._ranges.get(connection, 0)


def _placed(locks: list[Lock], owner: Owner, wanted: int, start: int, end: int) -> list[Lock]:
    """``locks`` (one owner's, canonical) with ``[start, end)`` set to ``wanted``, canonical."""
    kept: list[Lock] = []
    for lock in locks:
        if lock.end <= start or lock.start >= end:
            kept.append(lock)
            continue
        if lock.start < start:
            kept.append(lock._replace(end=start))  # the part before survives (a split)
        if lock.end > end:
            kept.append(lock._replace(start=end))
    if wanted != UNLCK:
        kept.append(Lock(start, end, wanted, owner))
        kept.sort()
    merged: list[Lock] = []
    for lock in kept:
        if merged and merged[-1].end == lock.start and merged[-1].type == lock.type:
            merged[-1] = merged[-1]._replace(end=lock.end)
        else:
            merged.append(lock)
    return merged


# -- the host side: open file description locks ----------------------------------------------------

_F_OFD_GETLK = getattr(fcntl, "F_OFD_GETLK", 36)  # Linux's numbers, where Python does not name them
_F_OFD_SETLK = getattr(fcntl, "F_OFD_SETLK", 37)
_HOST_TYPES = {RDLCK: fcntl.F_RDLCK, WRLCK: fcntl.F_WRLCK, UNLCK: fcntl.F_UNLCK}
_WIRE_TYPES = {host: wire for wire, host in _HOST_TYPES.items()}
# struct flock on 64-bit Linux: l_type, l_whence, (padding), l_start, l_len, l_pid, (padding)
_FLOCK = struct.Struct("hhqqi4x")
_BUSY = (errno.EAGAIN, errno.EACCES)  # a lock in the way (fcntl may say either)


#: How the host's calls are made: ``await run(function, *args)`` (``asyncio.to_thread`` by default)
Runner = Callable[..., Awaitable[Any]]


async def in_thread(function: Callable[..., Any], *args: Any) -> Any:
    """The default ``Runner``: a worker thread."""
    return await asyncio.to_thread(function, *args)


async def at_once(function: Callable[..., Any], *args: Any) -> Any:
    """A ``Runner`` for a local file system, where these calls do not wait: no thread's hand-off
    (a description's open that would wait for a lease still goes to a thread)."""
    return function(*args)


class _Description:
    """One connection's descriptor of one file, which holds that connection's locks on it."""

    __slots__ = ("fd", "readable", "writable")

    def __init__(self, fd: int, readable: bool, writable: bool) -> None:
        self.fd = fd
        self.readable = readable
        self.writable = writable


def _flock(kind: int, start: int, end: int) -> bytes:
    return _FLOCK.pack(_HOST_TYPES[kind], os.SEEK_SET, start, 0 if end >= END else end - start, 0)


class HostLocks:
    """The table and its mirror on the host, for a server's every connection.

    Per (connection, file) the server keeps one open file description, opened through the
    fid's ``O_PATH`` descriptor when the connection first locks the file and closed (which
    drops its host locks) when the table holds nothing more of that connection there.
    ``opened``/``closed`` count the connection's open fids per file: when the last one goes,
    its owners' locks on the file go too.

    The table is read and changed only on the event loop's thread; the host's calls go through
    ``run``. While one of them is out, the connection's other lock requests wait their turn
    (they share its descriptors); other connections' go on, and the host decides between them
    as it does between any two descriptors.
    """

    def __init__(self, max_ranges: int = DEFAULT_MAX_RANGES) -> None:
        self.table = LockTable(max_ranges)
        self._open: dict[tuple[Hashable, Hashable], int] = {}
        self._descriptions: dict[tuple[Hashable, Hashable], _Description] = {}
        self._turns: dict[Hashable, tuple[asyncio.Lock, list[int]]] = {}  # per connection: its lock, waiters

    @asynccontextmanager
    async def _turn(self, connection: Hashable) -> AsyncIterator[None]:
        turn = self._turns.get(connection)
        if turn is None:
            turn = self._turns[connection] = (asyncio.Lock(), [0])
        lock, users = turn
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if not users[0]:
                del self._turns[connection]

    def opened(self, connection: Hashable, key: Hashable) -> None:
        self._open[connection, key] = self._open.get((connection, key), 0) + 1

    def closed(self, connection: Hashable, key: Hashable, close: Callable[[int], Any] = os.close) -> None:
        """One open fid of ``connection`` on ``key`` is gone; with the last, its locks go.
        ``close`` closes the descriptor that held them on the host (a caller on the event loop
        passes one that does it in a thread where closing may wait)."""
        left = self._open.get((connection, key), 0) - 1
        if left > 0:
            self._open[connection, key] = left
            return
        self._open.pop((connection, key), None)
        self.table.release(key, connection)
        description = self._descriptions.pop((connection, key), None)
        if description is not None:
            close(description.fd)

    async def lock(self, key: Hashable, owner: Owner, wanted: int, start: int, end: int, path_fd: int,
                   run: Runner = in_thread) -> int:
        """Tlock: the status (SUCCESS, BLOCKED or ERROR). ``path_fd`` reopens the file when the
        connection has no descriptor of it yet (or one without the access ``wanted`` needs)."""
        # its length on the wire: an fsstr holds the bytes that are not UTF-8 as surrogates
        if len(owner.client_id.encode("utf-8", "surrogateescape")) > MAX_CLIENT_ID:
            return c.P9_LOCK_ERROR
        async with self._turn(owner.connection):
            return await self._lock(key, owner, wanted, start, end, path_fd, run)

    async def _lock(self, key: Hashable, owner: Owner, wanted: int, start: int, end: int, path_fd: int,
                    run: Runner) -> int:
        table = self.table
        connection = owner.connection
        if wanted == UNLCK:
            if not table.set(key, owner, UNLCK, start, end):
                return c.P9_LOCK_ERROR
            await self._unlock_gaps(connection, key, start, end, run)
            return c.P9_LOCK_SUCCESS
        if table.conflict(key, owner, wanted, start, end) is not None:
            return c.P9_LOCK_BLOCKED
        if not table.fits(key, owner, wanted, start, end):  # asked first: a refusal changes nothing on the host
            return c.P9_LOCK_ERROR
        description = await self._description(connection, key, wanted, path_fd, run)
        if description is None:
            return c.P9_LOCK_ERROR
        try:
            # another connection's lock placed meanwhile is on another descriptor: the host refuses
            # one of the two, so the table cannot end up holding both
            await run(fcntl.fcntl, description.fd, _F_OFD_SETLK, _flock(wanted, start, end))
        except OSError as exc:
            await self._drop_if_unused(connection, key, run)
            return c.P9_LOCK_BLOCKED if exc.errno in _BUSY else c.P9_LOCK_ERROR
        table.set(key, owner, wanted, start, end)
        return c.P9_LOCK_SUCCESS

    async def getlock(self, key: Hashable, owner: Owner, wanted: int, start: int, end: int, io_fd: int,
                      run: Runner = in_thread) -> Conflict | None:
        """Tgetlock: the lock in the way (a client's, or a host process's with an empty
        ``client_id``), or None. ``io_fd`` asks the host when the connection has no
        descriptor of the file (it holds none of the server's locks, so finds only others')."""
        lock = self.table.conflict(key, owner, wanted, start, end)
        if lock is not None:
            length = 0 if lock.end >= END else lock.end - lock.start
            return Conflict(lock.type, lock.start, length, lock.owner.proc_id, lock.owner.client_id)
        async with self._turn(owner.connection):  # its descriptor is not replaced while the host is asked
            description = self._descriptions.get((owner.connection, key))
            fd = description.fd if description is not None else io_fd
            # the connection's own locks are on that descriptor, so the host reports only others'
            # (and other connections' agree with the table, which found none)
            answer = await run(fcntl.fcntl, fd, _F_OFD_GETLK, _flock(wanted, start, end))
        kind, _, found_start, found_length, pid = _FLOCK.unpack(answer)
        if kind == fcntl.F_UNLCK:
            return None
        # an OFD lock has no process (l_pid -1): reported as 0, which Linux shows as no pid
        return Conflict(_WIRE_TYPES[kind], found_start, found_length, max(pid, 0), "")

    # -- descriptors --------------------------------------------------------------------------------

    async def _description(self, connection: Hashable, key: Hashable, wanted: int, path_fd: int,
                           run: Runner) -> _Description | None:
        """The connection's descriptor of the file, with the access ``wanted`` needs (fcntl: a
        read lock needs one open for reading, a write lock one open for writing). Opened for
        reading only when that is enough, so that locking does not open files for writing
        (which a running executable refuses, and watchers see when it is closed). None when
        the host will not give one: the lock cannot be recorded."""
        current = self._descriptions.get((connection, key))
        if current is not None and (current.readable if wanted == RDLCK else current.writable):
            return current
        if current is None:
            modes = [(os.O_RDONLY, True, False)] if wanted == RDLCK else [(os.O_RDWR, True, True),
                                                                         (os.O_WRONLY, False, True)]
        else:  # it must hold what the old one held too, so it can take its place
            modes = [(os.O_RDWR, True, True)]
        fresh: _Description | None = None
        for mode, readable, writable in modes:
            path, flags = f"/proc/self/fd/{path_fd}", mode | os.O_CLOEXEC | os.O_NOCTTY
            try:
                try:
                    # no lease can be in the way (the fid's own open descriptor of the file, with
                    # the access this one asks, excludes a conflicting lease), but were it so, an
                    # open that must first break one (up to 45 s) fails at once with O_NONBLOCK,
                    # even from a runner that calls at once; O_NONBLOCK changes nothing for fcntl
                    fd = await run(os.open, path, flags | os.O_NONBLOCK)
                except BlockingIOError:
                    fd = await in_thread(os.open, path, flags)
            except OSError:
                continue
            fresh = _Description(fd, readable, writable)
            break
        if fresh is None:
            return None
        if current is not None:
            # take over what the old descriptor holds before closing it: read locks share, so
            # the host never sees the connection's locks missing. Write locks cannot be held
            # twice; only a write-only descriptor (the server could not read the file when
            # it was opened) can hold them and need replacing: that lock is ERROR.
            held = self.table.held(key, connection)
            try:
                if any(kind != RDLCK for _, _, kind in held):
                    raise OSError(errno.ENOLCK, "write locks cannot move to another descriptor")
                for low, high, kind in held:
                    await run(fcntl.fcntl, fresh.fd, _F_OFD_SETLK, _flock(kind, low, high))
            except OSError:
                await run(os.close, fresh.fd)
                return None
            await run(os.close, current.fd)
        self._descriptions[connection, key] = fresh
        return fresh

    async def _unlock_gaps(self, connection: Hashable, key: Hashable, start: int, end: int, run: Runner) -> None:
        """Unlocks on the host what no owner of the connection holds any more in [start, end);
        what other owners of the connection hold there stays as it was."""
        description = self._descriptions.get((connection, key))
        if description is None:
            return
        if not self.table.held(key, connection):
            await self._drop(connection, key, run)  # closing it drops every host lock it held
            return
        position = start
        for low, high, _ in self.table.held(key, connection, start, end) + [(end, end, UNLCK)]:
            if position < low:
                try:
                    await run(fcntl.fcntl, description.fd, _F_OFD_SETLK, _flock(UNLCK, position, low))
                except OSError:
                    pass  # the host keeps a lock the table no longer has: stricter, never looser
            position = high

    async def _drop_if_unused(self, connection: Hashable, key: Hashable, run: Runner) -> None:
        if not self.table.held(key, connection):
            await self._drop(connection, key, run)

    async def _drop(self, connection: Hashable, key: Hashable, run: Runner) -> None:
        description = self._descriptions.pop((connection, key), None)
        if description is not None:
            await run(os.close, description.fd)

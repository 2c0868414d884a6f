"""``LocalFilesystem``: a ``Handler`` that serves one host directory, confined to it.

Confinement (r[9p2000l.server.confine.beneath]): a fid holds file descriptors, never a path.
Each name a client sends is one component, looked up relative to the descriptor of the
directory its fid names with ``openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
RESOLVE_NO_MAGICLINKS)`` where the kernel has it, else ``openat(O_PATH | O_NOFOLLOW)``; ``..``
stops at the export root, found by device and inode. So no symlink is ever followed, and what a
fid names cannot be redirected by renaming or swapping entries between two requests.

Operations that the kernel refuses on ``O_PATH`` descriptors (chmod, truncate, utimes, opening
for I/O, link) go through ``/proc/self/fd/N``, which names the very inode the descriptor holds:
no lookup by name happens there. Symbolic links themselves are only ever acted on through
their parent directory's descriptor with the no-follow calls.

Blocking system calls run in worker threads, so one slow request does not hold up the others
(r[9p2000l.server.concurrency]). Except where they cannot block for long: on an export whose
file system keeps its data on this machine (ext4, xfs, btrfs, tmpfs and the like, by its magic
number) and has nothing mounted beneath the export root, a walk, an open, a create, a mkdir,
a setattr that sets no size and a read run on the event loop's thread, for a fid on the
export's own device and of no mapped user (a fid on any other device, a file system mounted
there later, goes to the threads, and so does a walk that reaches such a mount point, where
openat2 tells it before the mounted file system is asked). A read first
asks the kernel with ``RWF_NOWAIT`` for what the page cache holds; only what would wait for the
disk is read in a thread; writes use ``RWF_NOWAIT`` where the file system takes it, and
elsewhere stay on the loop's thread only when they can do nothing but copy into the page cache
(writes.py says when, and bounds what throttling can cost). A thread's hand-off costs more
than these calls on a local file system (it was most of the time of creating a small file);
NFS, FUSE and other file systems that may wait on the network or on another process always
get threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import functools
import os
import re
import stat as st
import struct
import threading
import time
from bisect import bisect_right
from collections.abc import Iterator
from itertools import accumulate
from typing import Any

from . import constants as c
from . import messages as m
from .locks import END, HostLocks, Owner, Runner, at_once, in_thread
from .server import Handler, ReadBuffer, current_connection, linux_error
from .syscalls import libc_function, raise_errno, syscall
from .users import User, check_can_map_users, run_as, user_for, user_threads
from .writes import LoopWrites

__all__ = ["LocalFilesystem", "LocalFid", "openat2_available", "local_calls_inline"]

_O_PATH = getattr(os, "O_PATH", 0)  # Linux's; elsewhere the module imports but cannot serve
_PATH_FLAGS = _O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
_RESOLVE_NO_XDEV = 0x01
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_NO_SYMLINKS = 0x04
_RESOLVE_BENEATH = 0x08
_RESOLVE = _RESOLVE_BENEATH | _RESOLVE_NO_SYMLINKS | _RESOLVE_NO_MAGICLINKS  # how every name is looked up
_SYS_OPENAT2 = 437  # the same number on every Linux architecture (added in 5.6)


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def _find_openat2() -> Any:
    """libc's ``syscall`` if this kernel answers openat2, else None (older kernels: ENOSYS)."""
    if syscall is None:
        return None
    how = _OpenHow(_PATH_FLAGS, 0, _RESOLVE)
    fd = syscall(_SYS_OPENAT2, -100, b".", ctypes.byref(how), ctypes.sizeof(how))  # AT_FDCWD
    if fd < 0:
        return None
    os.close(fd)
    return syscall


_OPENAT2 = _find_openat2()


# statfs f_type of file systems whose metadata calls and cached reads do not wait on a network
# or another process: ext2/3/4, xfs, btrfs, tmpfs, ramfs, f2fs, overlayfs
_LOCAL_FS_TYPES = frozenset({0xEF53, 0x58465342, 0x9123683E, 0x01021994, 0x858458F6, 0xF2F52010, 0x794C7630})


def _fs_type(path: str) -> int | None:
    """``statfs``'s f_type (the first field, a C long on Linux's 64-bit ABIs), or None."""
    statfs = libc_function("statfs")
    if statfs is None:
        return None
    buffer = ctypes.create_string_buffer(256)  # struct statfs is 120 bytes on x86_64
    if statfs(os.fsencode(path), buffer) != 0:
        return None
    return ctypes.c_long.from_buffer(buffer).value & 0xFFFFFFFF


def _mounts_beneath(root: str, table: str = "/proc/self/mountinfo") -> bool:
    """Whether anything is mounted below ``root`` (or whether that cannot be told)."""
    try:
        with open(table, "rb") as lines:
            points = [line.split()[4] for line in lines]
    except (OSError, IndexError):
        return True
    prefix = os.fsencode(root.rstrip("/") + "/")
    # mountinfo writes space, tab, newline and backslash as \ooo (octal); names are bytes
    return any(re.sub(rb"\\([0-7]{3})", lambda escape: bytes([int(escape.group(1), 8)]), point).startswith(prefix)
               for point in points)


def local_calls_inline(root: str) -> bool:
    """Whether ``LocalFilesystem`` may make its quick system calls on the event loop's thread for
    the export ``root`` (see the module's docstring)."""
    if os.uname().sysname != "Linux" or not hasattr(os, "RWF_NOWAIT"):
        return False
    return _fs_type(root) in _LOCAL_FS_TYPES and not _mounts_beneath(os.path.realpath(root))


def openat2_available() -> bool:
    """Whether names are resolved with openat2 here (else the O_NOFOLLOW walk)."""
    return _OPENAT2 is not None


class _CrossesMount(Exception):
    """A walk on the loop's thread reached a mount point: it is made again in a thread."""


def _open_beneath(dirfd: int, name: str, same_mount: bool = False) -> int:
    """An ``O_PATH`` descriptor for the entry ``name`` (one component) of ``dirfd``, never
    following a symlink: a symlink gives a descriptor of the link itself. ``same_mount``: an
    entry that something is mounted on raises ``_CrossesMount`` (where openat2 can tell:
    RESOLVE_NO_XDEV), before the mounted file system is asked anything."""
    if _OPENAT2 is not None:
        how = _OpenHow(_PATH_FLAGS, 0, _RESOLVE | _RESOLVE_NO_XDEV if same_mount else _RESOLVE)
        fd = int(_OPENAT2(_SYS_OPENAT2, dirfd, os.fsencode(name), ctypes.byref(how), ctypes.sizeof(how)))
        if fd < 0:
            if same_mount and ctypes.get_errno() == errno.EXDEV:  # names are single components: no escape
                raise _CrossesMount(name)
            raise_errno(name)
        return fd
    return os.open(name, _PATH_FLAGS, dir_fd=dirfd)


def _open_parent(dirfd: int) -> int:
    """An ``O_PATH`` descriptor of the directory ``dirfd``'s directory is in."""
    return os.open("..", _PATH_FLAGS | os.O_DIRECTORY, dir_fd=dirfd)


def _dirent(qid: m.Qid, offset: int, dtype: int, name: str) -> bytes:
    return m.Dirent(qid=qid, offset=offset, type=dtype, name=name).encode()


# Dirent's fixed part, packed directly for the bulk of a listing (the generated encoder builds a
# Dirent and a Qid per entry, which was most of a 10,000-entry snapshot's time):
# qid.type[1] qid.version[4] qid.path[8] offset[8] type[1] len(name)[2]
_DIRENT_HEAD = struct.Struct("<BIQQBH")
_DIRENT_LEAST = _DIRENT_HEAD.size + 1  # an entry's name has one byte at least


def _host_string(text: str) -> str:
    """``text`` for a system call, which cannot carry a NUL byte: a symlink's target or an
    xattr's name holding one is refused with EINVAL (names are refused by the session,
    r[9p2000l.server.walk.names]), rather than failing in the handler with ValueError."""
    if "\0" in text:
        raise linux_error("EINVAL")
    return text


def _proc(fd: int) -> str:
    return f"/proc/self/fd/{fd}"


def _take_back(dirfd: int, name: str, made: int, remove: Any) -> None:
    """Removes ``name`` from ``dirfd`` with ``remove``, if it still holds the file open as
    ``made``: what a create made before a later step of it failed."""
    try:
        now, ours = os.stat(name, dir_fd=dirfd, follow_symlinks=False), os.fstat(made)
        if (now.st_dev, now.st_ino) == (ours.st_dev, ours.st_ino):
            remove(name, dir_fd=dirfd)
    except OSError:
        pass  # gone already, or not ours to remove: the error the client gets stands


def _close_in_thread(fd: int) -> None:
    """Closes ``fd`` in a worker thread, unwaited (at once when no event loop runs here)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        os.close(fd)
        return
    loop.run_in_executor(None, _close_quietly, fd)


def _close_quietly(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass  # NFS reports a failed write-back here; the fid is gone, nobody can be told


# -- tables -----------------------------------------------------------------------------------------

# r[9p2000l.server.lopen]: the wire's open flags passed on to the host (by name: the numbers
# differ between architectures); the others (CREATE, NOCTTY, FASYNC, LARGEFILE, DIRECT, NOATIME,
# NOFOLLOW, CLOEXEC) are dropped, and this side adds its own CLOEXEC.
_PASSED_FLAGS: tuple[tuple[int, int], ...] = tuple(
    (wire, getattr(os, name))
    for wire, name in (
        (c.P9_EXCL, "O_EXCL"), (c.P9_TRUNC, "O_TRUNC"), (c.P9_APPEND, "O_APPEND"), (c.P9_NONBLOCK, "O_NONBLOCK"),
        (c.P9_DSYNC, "O_DSYNC"), (c.P9_SYNC, "O_SYNC"), (c.P9_DIRECTORY, "O_DIRECTORY"),
    )
    if hasattr(os, name)
)
_ACCESS = {c.P9_RDONLY: os.O_RDONLY, c.P9_WRONLY: os.O_WRONLY, c.P9_RDWR: os.O_RDWR}


def _host_open_flags(wire_flags: int, dropped: tuple[int, ...]) -> tuple[int, int]:
    """Tlopen's or Tlcreate's flags: (the access mode on the wire, the host's open flags, with
    CLOEXEC); EINVAL for an access mode that is none of the three. The wire's flags in
    ``dropped`` are not passed on."""
    access = wire_flags & c.P9_ACCMODE
    if access not in _ACCESS:
        raise linux_error("EINVAL")
    flags = _ACCESS[access] | os.O_CLOEXEC
    for wire, host in _PASSED_FLAGS:
        if wire_flags & wire and wire not in dropped:
            flags |= host
    return access, flags

_QID_TYPES = {st.S_IFDIR: c.P9_QTDIR, st.S_IFLNK: c.P9_QTSYMLINK}  # all else QTFILE
_DIRENT_TYPES = {
    st.S_IFDIR: c.DT_DIR, st.S_IFREG: c.DT_REG, st.S_IFLNK: c.DT_LNK, st.S_IFIFO: c.DT_FIFO,
    st.S_IFSOCK: c.DT_SOCK, st.S_IFCHR: c.DT_CHR, st.S_IFBLK: c.DT_BLK,
}
_QID_BY_DIRENT = {c.DT_DIR: c.P9_QTDIR, c.DT_LNK: c.P9_QTSYMLINK}  # all else QTFILE
#: r[9p2000l.server.limits]: bytes that the readdir snapshots of one connection may hold at once
#: (about 900 directories of 1,000 entries); a snapshot that would pass it is ENOMEM
DEFAULT_READDIR_BUDGET = 64 * 1024 * 1024
_HELD_PER_ENTRY = 41  # what Python adds to each encoded entry: the bytes object's header, its list slot
_BUDGET_STEP = 64 * 1024  # taken from the budget in steps, not per entry (one lock per step)
# r[9p2000l.server.confine.special-files]: what Tmknod may make
_MKNOD_TYPES = frozenset({st.S_IFIFO, st.S_IFSOCK, st.S_IFREG})
# Rgetattr's fields by the mask bit that selects them (r[9p2000l.const.getattr-mask])
_GETATTR_FIELDS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (c.P9_GETATTR_MODE, ("mode",)), (c.P9_GETATTR_NLINK, ("nlink",)), (c.P9_GETATTR_UID, ("uid",)),
    (c.P9_GETATTR_GID, ("gid",)), (c.P9_GETATTR_RDEV, ("rdev",)),
    (c.P9_GETATTR_ATIME, ("atime_sec", "atime_nsec")), (c.P9_GETATTR_MTIME, ("mtime_sec", "mtime_nsec")),
    (c.P9_GETATTR_CTIME, ("ctime_sec", "ctime_nsec")), (c.P9_GETATTR_SIZE, ("size",)),
    (c.P9_GETATTR_BLOCKS, ("blocks", "blksize")),
)
_GETATTR_FILLED = c.P9_GETATTR_BASIC  # INO is the qid, always filled; BTIME, GEN, DATA_VERSION never


class _XattrSet:
    """r[9p2000l.server.xattrcreate]: an attribute to set when the fid is clunked."""

    __slots__ = ("flags", "name", "size", "value", "written")

    def __init__(self, name: str, size: int, flags: int) -> None:
        self.name = name
        self.size = size
        self.flags = flags
        self.value = bytearray(size)
        self.written = 0


_XATTR_SIZE_MAX = 65536  # Linux's XATTR_SIZE_MAX
_XATTR_FLAGS = {0: 0, c.XATTR_CREATE: getattr(os, "XATTR_CREATE", 1), c.XATTR_REPLACE: getattr(os, "XATTR_REPLACE", 2)}


class LocalFid:
    """What one fid holds: an ``O_PATH`` descriptor of its file (for a file its Tlcreate made, a
    duplicate of the descriptor opened then), the descriptor of the directory
    it was reached through (for remove and rename, and for acting on a symlink itself), and,
    once opened, the descriptor for I/O and a directory's listing."""

    __slots__ = ("dev", "entries", "fd", "ftype", "held", "held_for", "ino", "io", "io_flags", "lock_scope", "name",
                 "parent", "readable", "user", "writable", "xattr", "xattr_set")

    def __init__(self, fd: int, parent: int | None, name: str, stat: os.stat_result | None) -> None:
        self.fd = fd
        self.parent = parent  # None at the export root, or when reached by `..`
        self.name = name
        # None: the caller sets ftype, dev and ino (a clone copies them from its fid)
        self.ftype = 0 if stat is None else st.S_IFMT(stat.st_mode)
        self.dev = 0 if stat is None else stat.st_dev
        self.ino = 0 if stat is None else stat.st_ino
        self.io: int | None = None
        self.io_flags = 0  # the host's flags ``io`` was opened with (writes.py needs O_SYNC and O_APPEND)
        self.readable = False
        self.writable = False
        self.entries: list[bytes] | None = None  # a readdir snapshot (offset 0), entries encoded
        self.held = 0  # bytes of the snapshot counted against its connection's readdir budget
        self.held_for: object = None  # that connection (a handler called directly: None)
        self.xattr: bytes | None = None  # a Txattrwalk fid: the value (or name list) taken then
        self.xattr_set: _XattrSet | None = None  # a Txattrcreate fid: what its Tclunk will set
        self.user: User | None = None  # map_users: who attached the tree this fid belongs to
        self.lock_scope: tuple[Any, tuple[int, int]] | None = None  # once open: (connection, file) for locks

    def open_for_io(self, io: int, flags: int, access: int) -> None:
        """The fid holds ``io``, opened with the host's ``flags`` for the wire's ``access``."""
        self.io, self.io_flags = io, flags
        self.readable = access in (c.P9_RDONLY, c.P9_RDWR)
        self.writable = access in (c.P9_WRONLY, c.P9_RDWR)

    def close(self, close: Any = os.close) -> None:
        for fd in (self.io, self.fd, self.parent):
            if fd is not None:
                try:
                    close(fd)
                except OSError:
                    pass
        self.io = self.parent = None
        self.fd = -1


class LocalFilesystem(Handler[LocalFid]):
    """Serves the directory ``root``; ``read_only`` refuses every change with EROFS.

    By default files are created and changed with the server's own credentials
    (r[9p2000l.server.identity]): ``uname``/``n_uname`` grant nothing. With ``map_users`` (the
    server must run as root, else ``PermissionError`` here) each attach's user is who that fid
    tree acts as: its files are created as that user, and the kernel checks its permissions.
    """

    steps_inline = True  # no method needs its own task before it waits (threads, locks: none do)

    def __init__(self, root: str | os.PathLike[str], read_only: bool = False, map_users: bool = False,
                 readdir_budget: int = DEFAULT_READDIR_BUDGET, inline: bool | None = None) -> None:
        if map_users:
            check_can_map_users()
        self.map_users = map_users
        self.root = os.path.abspath(os.fspath(root))
        # quick system calls on the loop's thread (module docstring); None decides from the export
        self.inline = local_calls_inline(self.root) if inline is None else inline
        self._nowait_writes = True  # until the file system says RWF_NOWAIT writes are not supported
        self.read_only = read_only
        self._root_fd = os.open(self.root, _O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        root_stat = os.stat(self._root_fd)
        self._root_id = (root_stat.st_dev, root_stat.st_ino)
        self._other_devices: dict[tuple[int, int], int] = {}
        # r[9p2000l.server.limits]: bytes the readdir snapshots of one connection may hold; each
        # connection's count lives only while it holds some, so a disconnect (whose fids are
        # released) leaves nothing behind
        self.readdir_budget = readdir_budget
        self._snapshot_bytes: dict[object, int] = {}
        self._budget_lock = threading.Lock()  # snapshots are taken in worker threads
        self.locks = HostLocks()  # r[9p2000l.server.lock]: shared by every connection
        self._loop_writes = LoopWrites()

    def close(self) -> None:
        if self._root_fd >= 0:
            os.close(self._root_fd)
            self._root_fd = -1

    # -- qids (r[9p2000l.server.qid]) --------------------------------------------------------------

    def _qid(self, stat: os.stat_result) -> m.Qid:
        return m.Qid(type=_QID_TYPES.get(st.S_IFMT(stat.st_mode), c.P9_QTFILE), version=0,
                   path=self._qid_path(stat.st_dev, stat.st_ino))

    def _qid_path(self, dev: int, ino: int) -> int:
        if dev == self._root_id[0]:
            return ino
        key = (dev, ino)
        number = self._other_devices.get(key)
        if number is None:
            number = self._other_devices[key] = (1 << 63) | len(self._other_devices)
        return number

    def _here(self, fid: LocalFid) -> bool:
        """Whether calls for ``fid`` run on the loop's thread (a local export, its own device)."""
        # a mapped user's calls run in a thread that takes on that user's identity
        return self.inline and fid.user is None and fid.dev == self._root_id[0]

    def _local(self, fid: LocalFid) -> bool:
        """Whether a call on ``fid``'s file that needs no identity (fstat, readlink, close) runs on
        the loop's thread: only on a local export's own device, since elsewhere the file system
        may wait (NFS asks its server to revalidate, FUSE its daemon)."""
        return self.inline and fid.dev == self._root_id[0]

    def _at_root(self, fid: LocalFid) -> bool:
        return (fid.dev, fid.ino) == self._root_id

    # -- fids -------------------------------------------------------------------------------------

    def release(self, fid: LocalFid) -> None:
        self._drop_snapshot(fid)
        # closing can wait on a file system that is not local (NFS writes back, FUSE asks its
        # daemon): there in a thread, so that a release never holds up the event loop
        close = os.close if self._local(fid) else _close_in_thread
        if fid.lock_scope is not None:  # r[9p2000l.server.lock]: the connection's last open fid drops its locks
            self.locks.closed(*fid.lock_scope, close=close)
            fid.lock_scope = None
        fid.close(close)

    async def attach(self, msg: m.Tattach, afid: LocalFid | None) -> tuple[m.Rattach, LocalFid]:
        if afid is not None:
            raise linux_error("EBADF")
        if msg.aname not in ("", "/", self.root):
            raise linux_error("ENOENT")  # r[9p2000l.server.attach]: one export per server
        # the user database may be LDAP or sssd behind NSS: asked in a thread, never on the loop
        user = await asyncio.to_thread(user_for, msg.uname, msg.n_uname, c.NONUNAME) if self.map_users else None
        stat = os.stat(self._root_fd) if self.inline else await asyncio.to_thread(os.stat, self._root_fd)
        # duplicated only once nothing more can fail: a failed (or abandoned) stat keeps nothing open
        made = LocalFid(os.dup(self._root_fd), None, "", stat)
        made.user = user
        return m.Rattach(qid=self._qid(stat)), made

    @staticmethod
    def _as_user(user: User | None, call: Any, *args: Any, **kwargs: Any) -> Any:
        """``call`` in a worker thread, as ``user`` (who attached the fid's tree) when mapping
        users: each thread switches its own file-system identity (users.py), so calls of
        different users run side by side."""
        if user is None:
            return asyncio.to_thread(call, *args, **kwargs)
        # in threads that only ever run such calls (users.py), so a thread stranded as a user
        # can never run another call, of the server or of another user
        return asyncio.get_running_loop().run_in_executor(user_threads(), functools.partial(
            run_as, user, call, *args, **kwargs))

    @staticmethod
    def _creator(fid: LocalFid, gid: int) -> User | None:
        """Who creates a file: with mapping, in the group the client asks for (Tlcreate, Tmkdir,
        Tsymlink and Tmknod carry one) only if the user is in it, else the user's own."""
        user = fid.user
        if user is None or gid == user.gid or gid not in user.groups:
            return user
        return User(user.uid, gid, user.groups)

    async def walk(self, msg: m.Twalk, fid: LocalFid) -> tuple[m.Rwalk, LocalFid | None]:
        if fid.xattr is not None or fid.xattr_set is not None:
            raise linux_error("EBADF")  # r[9p2000l.server.xattrwalk]: not walked
        if msg.wnames and msg.newfid == msg.fid and fid.io is not None:
            raise linux_error("EBADF")  # r[9p2000l.server.walk.partial]
        if self._here(fid):
            try:
                return self._walk(msg.wnames, fid, True)  # the same mount only
            except _CrossesMount:
                # mounted after the server started (NFS, FUSE, an automount): what is mounted
                # there may wait on the network or a daemon when asked, so it is asked in a thread
                pass
        walked: tuple[m.Rwalk, LocalFid | None] = await self._as_user(fid.user, self._walk, msg.wnames, fid)
        return walked

    def _walk(self, names: list[str], start: LocalFid, same_mount: bool = False) -> tuple[m.Rwalk, LocalFid | None]:
        """r[9p2000l.server.walk.partial]; ``same_mount`` (on the loop's thread): a name
        something is mounted on raises ``_CrossesMount``, the whole walk undone."""
        qids: list[m.Qid] = []
        fd = os.dup(start.fd)
        parent = None
        name = start.name
        try:
            if start.parent is not None:
                parent = os.dup(start.parent)  # EMFILE here must not keep the first duplicate
            if not names:  # a clone (what precedes nearly every Tlcreate): the same file, no fstat needed
                made = LocalFid(fd, parent, name, None)
                made.ftype, made.dev, made.ino, made.user = start.ftype, start.dev, start.ino, start.user
                return m.Rwalk(wqids=qids), made
            stat = os.stat(fd)
            for component in names:
                if not st.S_ISDIR(stat.st_mode):
                    failure: OSError = linux_error("ENOTDIR")
                elif component == "..":
                    if (stat.st_dev, stat.st_ino) == self._root_id:
                        qids.append(self._qid(stat))  # r[9p2000l.server.walk.dotdot-root]
                        continue
                    try:
                        up = _open_parent(fd)
                    except OSError as exc:
                        failure = exc
                    else:
                        # the new descriptors are held before the old ones are closed: a close
                        # that raises leaves none to be closed twice below
                        old_fd, old_parent = fd, parent
                        fd, parent, name = up, None, ""  # its own parent is found on demand
                        os.close(old_fd)
                        if old_parent is not None:
                            os.close(old_parent)
                        stat = os.stat(fd)
                        qids.append(self._qid(stat))
                        continue
                else:
                    try:
                        child = _open_beneath(fd, component, same_mount)
                    except OSError as exc:
                        failure = exc
                    else:
                        old_parent = parent
                        parent, fd, name = fd, child, component
                        if old_parent is not None:
                            os.close(old_parent)
                        stat = os.stat(fd)
                        qids.append(self._qid(stat))
                        continue
                if not qids:
                    raise failure  # r[9p2000l.server.walk.partial]: the first name failed
                os.close(fd)
                if parent is not None:
                    os.close(parent)
                return m.Rwalk(wqids=qids), None
        except BaseException:
            os.close(fd)
            if parent is not None:
                os.close(parent)
            raise
        made = LocalFid(fd, parent, name, stat)
        made.user = start.user
        return m.Rwalk(wqids=qids), made

    # -- attributes -------------------------------------------------------------------------------

    async def getattr(self, msg: m.Tgetattr, fid: LocalFid) -> m.Rgetattr:
        # fstat: the file itself, a symlink included (r[9p2000l.server.getattr]); NFS may ask its server
        if self.inline and fid.dev == self._root_id[0]:  # self._local(fid), spelt out: nearly every request
            stat = os.stat(fid.fd)
        else:
            stat = await asyncio.to_thread(os.stat, fid.fd)
        valid = msg.request_mask & _GETATTR_FILLED
        if valid & c.P9_GETATTR_BASIC:
            valid |= c.P9_GETATTR_BASIC
        if valid == c.P9_GETATTR_BASIC:  # any basic field asked for gives them all: nearly every request
            atime_sec, atime_nsec = divmod(stat.st_atime_ns, 10**9)
            mtime_sec, mtime_nsec = divmod(stat.st_mtime_ns, 10**9)
            ctime_sec, ctime_nsec = divmod(stat.st_ctime_ns, 10**9)
            return m.Rgetattr(valid=valid, qid=self._qid(stat), mode=stat.st_mode, uid=stat.st_uid, gid=stat.st_gid,
                            nlink=stat.st_nlink, rdev=stat.st_rdev, size=stat.st_size, blksize=stat.st_blksize,
                            blocks=stat.st_blocks, atime_sec=atime_sec & _U64, atime_nsec=atime_nsec,
                            mtime_sec=mtime_sec & _U64, mtime_nsec=mtime_nsec, ctime_sec=ctime_sec & _U64,
                            ctime_nsec=ctime_nsec, btime_sec=0, btime_nsec=0, gen=0, data_version=0)
        values: dict[str, int] = {}
        for bit, fields in _GETATTR_FIELDS:
            if valid & bit:
                for field in fields:
                    values[field] = _STAT_FIELDS[field](stat)
        return m.Rgetattr(valid=valid, qid=self._qid(stat), mode=values.get("mode", 0), uid=values.get("uid", 0),
                        gid=values.get("gid", 0), nlink=values.get("nlink", 0), rdev=values.get("rdev", 0),
                        size=values.get("size", 0), blksize=values.get("blksize", 0),
                        blocks=values.get("blocks", 0), atime_sec=values.get("atime_sec", 0),
                        atime_nsec=values.get("atime_nsec", 0), mtime_sec=values.get("mtime_sec", 0),
                        mtime_nsec=values.get("mtime_nsec", 0), ctime_sec=values.get("ctime_sec", 0),
                        ctime_nsec=values.get("ctime_nsec", 0), btime_sec=0, btime_nsec=0, gen=0,
                        data_version=0)

    async def setattr(self, msg: m.Tsetattr, fid: LocalFid) -> m.Rsetattr:
        # a mode, an owner or times change one inode, quickly on a local file system; a size may
        # free the blocks of a large file, and a symlink is found again through its directory
        if self._here(fid) and not msg.valid & c.P9_SETATTR_SIZE and fid.ftype != st.S_IFLNK:
            self._setattr(msg, fid)
        else:
            await self._as_user(fid.user, self._setattr, msg, fid)
        return m.Rsetattr()

    def _setattr(self, msg: m.Tsetattr, fid: LocalFid) -> None:
        """r[9p2000l.server.setattr]: in diod's order; the first failure is the answer."""
        valid = msg.valid
        link = fid.ftype == st.S_IFLNK
        if valid & c.P9_SETATTR_MODE:
            if link:
                raise linux_error("EOPNOTSUPP")  # r[9p2000l.server.confine.symlinks]
            os.chmod(_proc(fid.fd), msg.mode & 0o7777)
        if valid & (c.P9_SETATTR_UID | c.P9_SETATTR_GID):
            uid = _signed(msg.uid) if valid & c.P9_SETATTR_UID else -1
            gid = _signed(msg.gid) if valid & c.P9_SETATTR_GID else -1
            self._chown(fid, uid, gid)
        if valid & c.P9_SETATTR_SIZE:
            if fid.ftype == st.S_IFDIR:
                raise linux_error("EISDIR")
            if fid.ftype != st.S_IFREG or msg.size >> 63:  # from 2**63 up, a negative off_t
                raise linux_error("EINVAL")
            os.truncate(_proc(fid.fd), msg.size)
        if valid & (c.P9_SETATTR_ATIME | c.P9_SETATTR_MTIME):
            now = time.time_ns()
            current = os.stat(fid.fd)
            atime = current.st_atime_ns
            mtime = current.st_mtime_ns
            if valid & c.P9_SETATTR_ATIME:
                atime = _wire_time_ns(msg.atime_sec, msg.atime_nsec) if valid & c.P9_SETATTR_ATIME_SET else now
            if valid & c.P9_SETATTR_MTIME:
                mtime = _wire_time_ns(msg.mtime_sec, msg.mtime_nsec) if valid & c.P9_SETATTR_MTIME_SET else now
            if link:
                self._on_entry(fid, lambda parent, name: os.utime(name, ns=(atime, mtime), dir_fd=parent,
                                                                  follow_symlinks=False))
            else:
                os.utime(_proc(fid.fd), ns=(atime, mtime))
        elif valid & c.P9_SETATTR_CTIME and not valid & (c.P9_SETATTR_UID | c.P9_SETATTR_GID | c.P9_SETATTR_MODE):
            self._chown(fid, -1, -1)  # a no-op chown updates only the change time

    def _chown(self, fid: LocalFid, uid: int, gid: int) -> None:
        if fid.ftype == st.S_IFLNK:
            self._on_entry(fid, lambda parent, name: os.chown(name, uid, gid, dir_fd=parent, follow_symlinks=False))
        else:
            os.chown(_proc(fid.fd), uid, gid)

    def _on_entry(self, fid: LocalFid, action: Any) -> None:
        """``action(parent, name)`` on the entry ``fid`` was reached through (a symlink itself,
        a removal), after checking the name still holds the same file (else ENOENT rather than
        acting on whatever replaced it)."""
        with self._entry(fid) as (parent, name):
            now = os.stat(name, dir_fd=parent, follow_symlinks=False)
            if (now.st_dev, now.st_ino) != (fid.dev, fid.ino):
                raise linux_error("ENOENT")
            action(parent, name)

    @contextlib.contextmanager
    def _entry(self, fid: LocalFid) -> Iterator[tuple[int, str]]:
        """``_parent_of(fid)`` for the ``with`` block; a directory looked up for it is closed after."""
        parent, name = self._parent_of(fid)
        try:
            yield parent, name
        finally:
            if parent != fid.parent:
                os.close(parent)

    def _parent_of(self, fid: LocalFid) -> tuple[int, str]:
        """The directory descriptor and name through which ``fid``'s file is reached. A fid
        reached by ``..`` has none recorded: its parent is looked up and searched by inode."""
        if fid.parent is not None:
            return fid.parent, fid.name
        if self._at_root(fid):
            raise linux_error("EBUSY")
        parent = _open_parent(fid.fd)
        try:
            listing = os.open(_proc(parent), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                with os.scandir(listing) as entries:
                    for entry in entries:
                        if entry.inode() == fid.ino:
                            return parent, entry.name
            finally:
                os.close(listing)
        except BaseException:
            os.close(parent)
            raise
        os.close(parent)
        raise linux_error("ENOENT")

    async def statfs(self, msg: m.Tstatfs, fid: LocalFid) -> m.Rstatfs:
        vfs = await asyncio.to_thread(os.fstatvfs, fid.fd)
        return m.Rstatfs(type=c.V9FS_MAGIC, bsize=vfs.f_bsize, blocks=vfs.f_blocks, bfree=vfs.f_bfree,
                       bavail=vfs.f_bavail, files=vfs.f_files, ffree=vfs.f_ffree,
                       fsid=vfs.f_fsid & 0xFFFFFFFFFFFFFFFF, namelen=vfs.f_namemax)

    # -- open, create, I/O ------------------------------------------------------------------------

    async def lopen(self, msg: m.Tlopen, fid: LocalFid) -> m.Rlopen:
        if fid.io is not None or fid.xattr is not None or fid.xattr_set is not None:
            raise linux_error("EINVAL")  # r[9p2000l.server.lopen]: opened once
        if self._here(fid):
            try:
                self._open_io(fid, msg.flags, os.O_NONBLOCK)
            except BlockingIOError:  # another process's lease on the file: giving it up can take 45 s
                await asyncio.to_thread(self._open_io, fid, msg.flags)
        else:
            await self._as_user(fid.user, self._open_io, fid, msg.flags)
        self._opened(fid)
        stat = os.stat(fid.fd) if self._local(fid) else await asyncio.to_thread(os.stat, fid.fd)
        return m.Rlopen(qid=self._qid(stat), iounit=0)

    def _open_io(self, fid: LocalFid, wire_flags: int, nonblocking: int = 0) -> None:
        """Opens ``fid`` for I/O; ``nonblocking`` (O_NONBLOCK) makes an open that would wait for a
        lease to be broken fail with BlockingIOError instead, and is taken off again after."""
        if fid.ftype == st.S_IFLNK:
            raise linux_error("ELOOP")  # r[9p2000l.server.confine.symlinks]
        if fid.ftype not in (st.S_IFREG, st.S_IFDIR):
            raise linux_error("EOPNOTSUPP")  # r[9p2000l.server.confine.special-files]
        access, flags = _host_open_flags(wire_flags, (c.P9_EXCL,))
        # /proc/self/fd names the inode the fid holds: no name is looked up again
        io = os.open(_proc(fid.fd), flags | nonblocking)
        fid.open_for_io(io, flags, access)
        if nonblocking and not flags & os.O_NONBLOCK:
            os.set_blocking(io, True)

    async def lcreate(self, msg: m.Tlcreate, fid: LocalFid) -> m.Rlcreate:
        if fid.io is not None:
            raise linux_error("EINVAL")
        if fid.ftype != st.S_IFDIR:
            raise linux_error("ENOTDIR")
        if self._here(fid):
            try:
                qid = self._lcreate(msg, fid, wait_for_lease=False)
            except BlockingIOError:  # an existing file under another process's lease, as in Tlopen
                qid = await asyncio.to_thread(self._lcreate, msg, fid)
        else:
            qid = await self._as_user(self._creator(fid, msg.gid), self._lcreate, msg, fid)
        self._opened(fid)
        return m.Rlcreate(qid=qid, iounit=0)

    def _lcreate(self, msg: m.Tlcreate, fid: LocalFid, wait_for_lease: bool = True) -> m.Qid:
        """r[9p2000l.server.lcreate]: on success the fid names the new file, open. An existing
        file is opened without waiting for a FIFO's other end or a device (EOPNOTSUPP: never
        opened for I/O); one held by another process's lease is waited for only with
        ``wait_for_lease`` (else BlockingIOError)."""
        access, flags = _host_open_flags(msg.flags, (c.P9_EXCL, c.P9_DIRECTORY))
        flags |= os.O_NOFOLLOW
        mode = msg.mode & 0o7777
        try:
            io = os.open(msg.name, flags | os.O_CREAT | os.O_EXCL, mode, dir_fd=fid.fd)
            created = True
        except FileExistsError:
            if msg.flags & c.P9_EXCL:
                raise
            io = self._open_existing(msg.name, flags, fid.fd, wait_for_lease)
            created = False
        try:
            stat = os.fstat(io)
            if not st.S_ISREG(stat.st_mode):
                raise linux_error("EOPNOTSUPP")  # a FIFO under that name: never opened for I/O
            if not created and not flags & os.O_NONBLOCK:
                os.set_blocking(io, True)
            if created and st.S_IMODE(stat.st_mode) != mode:
                os.fchmod(io, mode)  # the server's umask does not apply (a chmod only where it took bits)
            # the fid's descriptor of its file: a duplicate of the one just opened names the very
            # inode created, as an O_PATH reopening through /proc would, for a tenth of its cost
            path_fd = os.dup(io)
        except BaseException:
            try:
                if created:  # the client is told the create failed (EMFILE at the dup): nothing stays
                    _take_back(fid.fd, msg.name, io, os.unlink)
            finally:
                os.close(io)
            raise
        old_parent = fid.parent
        # the directory's own descriptor becomes the new file's parent: it moves, no copy
        fid.fd, fid.parent, fid.name = path_fd, fid.fd, msg.name
        fid.ftype, fid.dev, fid.ino = st.S_IFREG, stat.st_dev, stat.st_ino
        fid.open_for_io(io, flags, access)
        if old_parent is not None:
            os.close(old_parent)
        return self._qid(stat)

    @staticmethod
    def _open_existing(name: str, flags: int, dirfd: int, wait_for_lease: bool) -> int:
        """Tlcreate's open of a name that exists: O_NONBLOCK, so that a FIFO (which waits for its
        other end) or a device is opened at once, to be refused; only an open that must break
        another process's lease (BlockingIOError) is made again waiting, when allowed."""
        try:
            return os.open(name, flags | os.O_NONBLOCK, dir_fd=dirfd)  # a symlink: ELOOP (O_NOFOLLOW)
        except BlockingIOError:
            if not wait_for_lease:
                raise
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # a FIFO for writing with no reader, a socket
                raise linux_error("EOPNOTSUPP") from None
            raise
        return os.open(name, flags, dir_fd=dirfd)

    async def read(self, msg: m.Tread, fid: LocalFid) -> m.Rread:
        if fid.xattr is not None:  # r[9p2000l.server.xattrwalk]: the value at any offset
            return m.Rread(data=fid.xattr[msg.offset:msg.offset + msg.count])
        if fid.ftype == st.S_IFDIR and fid.io is not None:
            raise linux_error("EISDIR")  # r[9p2000l.server.io]
        if fid.io is None or not fid.readable:
            raise linux_error("EBADF")
        if self._here(fid) and msg.count:
            buffer = ReadBuffer(msg.count)  # the reply's frame, sent without copying the data again
            try:
                got = os.preadv(fid.io, [buffer.data()], msg.offset, os.RWF_NOWAIT)  # the page cache's share
            except BlockingIOError:
                got = 0
            else:
                if got == 0:
                    return m.Rread(data=b"")  # the end of the file
            if got == msg.count:
                return buffer.answer(got)
            rest = await asyncio.to_thread(os.pread, fid.io, msg.count - got, msg.offset + got)
            buffer.data()[got:got + len(rest)] = rest
            return buffer.answer(got + len(rest))
        data = await asyncio.to_thread(os.pread, fid.io, msg.count, msg.offset)
        return m.Rread(data=data)

    async def write(self, msg: m.Twrite, fid: LocalFid) -> m.Rwrite:
        pending = fid.xattr_set
        if pending is not None:  # r[9p2000l.server.xattrcreate]: stored until the clunk
            if msg.offset >= pending.size and msg.data:
                raise linux_error("ENOSPC")
            part = msg.data[:max(0, pending.size - msg.offset)]
            pending.value[msg.offset:msg.offset + len(part)] = part
            pending.written += len(part)
            return m.Rwrite(count=len(part))
        if fid.io is None or not fid.writable:
            raise linux_error("EBADF")
        # O_APPEND descriptors append whatever the offset (Linux pwrite), as r[9p2000l.server.io] wants
        if self._nowait_writes and self._here(fid):
            try:
                return m.Rwrite(count=os.pwritev(fid.io, [msg.data], msg.offset, os.RWF_NOWAIT))
            except BlockingIOError:
                pass
            except OSError as exc:
                if exc.errno != errno.EOPNOTSUPP:
                    raise
                self._nowait_writes = False  # this file system has no non-waiting buffered writes
        written = 0
        if not self._nowait_writes and self._here(fid):
            # on this thread where no disk read, and no long throttling, can hold it (writes.py)
            written, answered = self._loop_writes.write(fid.io, msg.data, msg.offset, fid.io_flags)
            if answered:
                return m.Rwrite(count=written)
        data = memoryview(msg.data)[written:] if written else msg.data
        count = await asyncio.to_thread(os.pwrite, fid.io, data, msg.offset + written)
        return m.Rwrite(count=written + count)

    async def fsync(self, msg: m.Tfsync, fid: LocalFid) -> m.Rfsync:
        if fid.io is None:
            raise linux_error("EBADF")
        await asyncio.to_thread(os.fdatasync if msg.datasync else os.fsync, fid.io)
        return m.Rfsync()

    async def readdir(self, msg: m.Treaddir, fid: LocalFid) -> m.Rreaddir:
        if fid.io is None:
            raise linux_error("EBADF")
        if fid.ftype != st.S_IFDIR:
            raise linux_error("ENOTDIR")
        if msg.offset == 0:
            # the listing before counts no more: a fid listing again needs room for one snapshot only
            self._drop_snapshot(fid)
            connection = current_connection.get()
            taken, held = await asyncio.to_thread(self._snapshot, fid, connection)
            self._drop_snapshot(fid)  # one a concurrent call took meanwhile
            fid.entries, fid.held, fid.held_for = taken, held, connection
        entries = fid.entries
        if entries is None or msg.offset > len(entries):
            raise linux_error("EINVAL")  # r[9p2000l.server.readdir.cookies]
        position = msg.offset
        # no more than count // _DIRENT_LEAST entries can fit: their sizes are summed in C, not
        # one by one in Python (which was a tenth of a listing's time)
        window = entries[position:position + msg.count // _DIRENT_LEAST]
        fitting = bisect_right(list(accumulate(map(len, window))), msg.count)
        if fitting == 0 and position < len(entries):
            raise linux_error("EINVAL")  # r[9p2000l.readdir.small-count]
        return m.Rreaddir(data=b"".join(window[:fitting]))

    def _take_budget(self, connection: object, size: int) -> bool:
        with self._budget_lock:
            held = self._snapshot_bytes.get(connection, 0) + size
            if held > self.readdir_budget:
                return False
            self._snapshot_bytes[connection] = held
            return True

    def _give_budget(self, connection: object, size: int) -> None:
        with self._budget_lock:
            held = self._snapshot_bytes.get(connection, 0) - size
            if held > 0:
                self._snapshot_bytes[connection] = held
            else:
                self._snapshot_bytes.pop(connection, None)

    def snapshot_bytes(self, connection: object) -> int:
        """Bytes of readdir snapshots ``connection`` holds now (r[9p2000l.server.limits])."""
        with self._budget_lock:
            return self._snapshot_bytes.get(connection, 0)

    def _drop_snapshot(self, fid: LocalFid) -> None:
        if fid.held:
            self._give_budget(fid.held_for, fid.held)
        fid.entries, fid.held, fid.held_for = None, 0, None

    def _snapshot(self, fid: LocalFid, connection: object = None) -> tuple[list[bytes], int]:
        """r[9p2000l.server.readdir.cookies]: the entries at offset 0, in the host's order, each
        encoded once with its offset (its 1-based position), so later calls only join bytes;
        and the bytes they hold, taken from ``connection``'s readdir budget as the listing
        grows. ENOMEM when the budget cannot hold them (r[9p2000l.server.limits])."""
        here = os.stat(fid.fd)
        if self._at_root(fid):
            up = here
        else:
            up_fd = _open_parent(fid.fd)
            try:
                up = os.stat(up_fd)
            finally:
                os.close(up_fd)
        entries = [_dirent(self._qid(here), 1, c.DT_DIR, "."), _dirent(self._qid(up), 2, c.DT_DIR, "..")]
        qid_path = self._qid_path
        pack = _DIRENT_HEAD.pack
        dev = here.st_dev
        held = reserved = sum(map(len, entries)) + 2 * _HELD_PER_ENTRY
        if not self._take_budget(connection, reserved):
            raise linux_error("ENOMEM")
        assert fid.io is not None
        try:
            # scandir duplicates the descriptor it is given and closes only its duplicate
            with os.scandir(fid.io) as found:
                for entry in found:
                    # the commonest kinds first: each test is a call, answered from d_type when it can be
                    try:
                        if entry.is_file(follow_symlinks=False):
                            qtype, dtype = c.P9_QTFILE, c.DT_REG
                        elif entry.is_dir(follow_symlinks=False):
                            qtype, dtype = c.P9_QTDIR, c.DT_DIR
                        elif entry.is_symlink():
                            qtype, dtype = c.P9_QTSYMLINK, c.DT_LNK
                        else:
                            kind = st.S_IFMT(entry.stat(follow_symlinks=False).st_mode)
                            qtype, dtype = _QID_TYPES.get(kind, c.P9_QTFILE), _DIRENT_TYPES.get(kind, c.DT_UNKNOWN)
                    except OSError:
                        continue  # vanished since it was listed: left out, never an error
                    name = entry.name.encode("utf-8", "surrogateescape")  # fsstr, as the Dirent encoder writes it
                    encoded = pack(qtype, 0, qid_path(dev, entry.inode()), len(entries) + 1, dtype, len(name)) + name
                    held += len(encoded) + _HELD_PER_ENTRY
                    if held > reserved:
                        step = max(held - reserved, _BUDGET_STEP)
                        if not self._take_budget(connection, step):
                            raise linux_error("ENOMEM")  # what was reserved is given back below
                        reserved += step
                    entries.append(encoded)
        except BaseException:
            self._give_budget(connection, reserved)
            raise
        self._give_budget(connection, reserved - held)
        return entries, held

    # -- names in a directory ---------------------------------------------------------------------

    def _directory(self, fid: LocalFid) -> int:
        if fid.ftype != st.S_IFDIR:
            raise linux_error("ENOTDIR")
        return fid.fd

    def _stat_qid(self, dirfd: int, name: str) -> m.Qid:
        return self._qid(os.stat(name, dir_fd=dirfd, follow_symlinks=False))

    async def mkdir(self, msg: m.Tmkdir, dfid: LocalFid) -> m.Rmkdir:
        dirfd = self._directory(dfid)
        mode = msg.mode & 0o7777

        def make() -> m.Qid:
            os.mkdir(msg.name, mode, dir_fd=dirfd)
            try:
                fd = _open_beneath(dirfd, msg.name)
            except BaseException:
                # the client is told the mkdir failed (EMFILE at the open): no directory stays
                with contextlib.suppress(OSError):
                    os.rmdir(msg.name, dir_fd=dirfd)
                raise
            try:
                stat = os.stat(fd)
                if st.S_IMODE(stat.st_mode) != mode:
                    os.chmod(_proc(fd), mode)  # the server's umask (or a setgid parent) does not apply
                return self._qid(stat)
            finally:
                os.close(fd)

        if self._here(dfid):  # as quick as a Tlcreate on a local file system
            return m.Rmkdir(qid=make())
        return m.Rmkdir(qid=await self._as_user(self._creator(dfid, msg.gid), make))

    async def symlink(self, msg: m.Tsymlink, fid: LocalFid) -> m.Rsymlink:
        dirfd = self._directory(fid)

        def make() -> m.Qid:
            # stored verbatim (r[9p2000l.server.confine.symlinks])
            os.symlink(_host_string(msg.symtgt), msg.name, dir_fd=dirfd)
            return self._stat_qid(dirfd, msg.name)

        return m.Rsymlink(qid=await self._as_user(self._creator(fid, msg.gid), make))

    async def mknod(self, msg: m.Tmknod, dfid: LocalFid) -> m.Rmknod:
        dirfd = self._directory(dfid)
        kind = st.S_IFMT(msg.mode)
        if kind not in _MKNOD_TYPES:
            raise linux_error("EPERM")  # r[9p2000l.server.confine.special-files]: no device nodes

        def make() -> m.Qid:
            os.mknod(msg.name, kind | (msg.mode & 0o7777), dir_fd=dirfd)
            return self._stat_qid(dirfd, msg.name)

        return m.Rmknod(qid=await self._as_user(self._creator(dfid, msg.gid), make))

    async def readlink(self, msg: m.Treadlink, fid: LocalFid) -> m.Rreadlink:
        if fid.ftype != st.S_IFLNK:
            raise linux_error("EINVAL")
        if self._local(fid):
            return m.Rreadlink(target=os.readlink("", dir_fd=fid.fd))
        return m.Rreadlink(target=await asyncio.to_thread(os.readlink, "", dir_fd=fid.fd))

    async def link(self, msg: m.Tlink, dfid: LocalFid, fid: LocalFid) -> m.Rlink:
        dirfd = self._directory(dfid)
        if fid.ftype == st.S_IFDIR:
            raise linux_error("EPERM")
        # r[9p2000l.server.confine.links]: the inode the fid holds, not a name looked up again
        if fid.ftype == st.S_IFLNK:
            def make() -> None:
                self._on_entry(fid, lambda parent, name: os.link(name, msg.name, src_dir_fd=parent, dst_dir_fd=dirfd,
                                                                 follow_symlinks=False))
        else:
            def make() -> None:
                os.link(_proc(fid.fd), msg.name, dst_dir_fd=dirfd, follow_symlinks=True)
        await self._as_user(dfid.user, make)
        return m.Rlink()

    async def rename(self, msg: m.Trename, fid: LocalFid, dfid: LocalFid) -> m.Rrename:
        dirfd = self._directory(dfid)

        def move() -> None:
            # the fid's new directory, taken before anything changes: EMFILE afterwards would
            # leave the fid holding its old directory's descriptor closed, to be closed again
            new_parent = os.dup(dirfd)
            try:
                with self._entry(fid) as (parent, name):
                    os.rename(name, msg.name, src_dir_fd=parent, dst_dir_fd=dirfd)
            except BaseException:
                os.close(new_parent)
                raise
            old_parent, fid.parent, fid.name = fid.parent, new_parent, msg.name
            if old_parent is not None:
                os.close(old_parent)

        await self._as_user(dfid.user, move)
        return m.Rrename()

    async def renameat(self, msg: m.Trenameat, olddirfid: LocalFid, newdirfid: LocalFid) -> m.Rrenameat:
        old, new = self._directory(olddirfid), self._directory(newdirfid)
        await self._as_user(olddirfid.user, os.rename, msg.oldname, msg.newname, src_dir_fd=old, dst_dir_fd=new)
        return m.Rrenameat()

    async def unlinkat(self, msg: m.Tunlinkat, dirfd: LocalFid) -> m.Runlinkat:
        directory = self._directory(dirfd)
        if msg.flags & c.AT_REMOVEDIR:
            await self._as_user(dirfd.user, os.rmdir, msg.name, dir_fd=directory)
        else:
            await self._as_user(dirfd.user, os.unlink, msg.name, dir_fd=directory)
        return m.Runlinkat()

    async def remove(self, msg: m.Tremove, fid: LocalFid) -> m.Rremove:
        """r[9p2000l.server.fid.remove]: the entry the fid was reached through, if it still
        holds the same file; the export root is EBUSY."""
        if self._at_root(fid):
            raise linux_error("EBUSY")

        removal = os.rmdir if fid.ftype == st.S_IFDIR else os.unlink
        await self._as_user(fid.user, self._on_entry, fid, lambda parent, name: removal(name, dir_fd=parent))
        return m.Rremove()

    async def clunk(self, msg: m.Tclunk, fid: LocalFid) -> m.Rclunk:
        pending = fid.xattr_set
        if pending is not None:  # r[9p2000l.server.xattrcreate]: only an explicit Tclunk sets
            fid.xattr_set = None
            if pending.written != pending.size:
                raise linux_error("EINVAL")
            await self._as_user(fid.user, self._commit_xattr, fid, pending)
        return m.Rclunk()

    def _commit_xattr(self, fid: LocalFid, pending: _XattrSet) -> None:
        if fid.ftype == st.S_IFLNK:
            raise linux_error("EOPNOTSUPP")
        if pending.size == 0:  # Linux's removexattr
            os.removexattr(_proc(fid.fd), pending.name)
        else:
            os.setxattr(_proc(fid.fd), pending.name, bytes(pending.value), _XATTR_FLAGS[pending.flags])

    async def xattrwalk(self, msg: m.Txattrwalk, fid: LocalFid) -> tuple[m.Rxattrwalk, LocalFid]:
        """r[9p2000l.server.xattrwalk]: the value (or the NUL-terminated names) taken now."""
        if fid.xattr is not None or fid.xattr_set is not None:
            raise linux_error("EBADF")
        if fid.ftype == st.S_IFLNK:
            raise linux_error("ENODATA" if msg.name else "EOPNOTSUPP")  # no user xattrs on links

        def take() -> bytes:
            path = _proc(fid.fd)
            if not msg.name:
                return b"".join(os.fsencode(name) + b"\0" for name in os.listxattr(path))
            return os.getxattr(path, _host_string(msg.name))

        value: bytes = await self._as_user(fid.user, take)
        stat = os.stat(fid.fd) if self._local(fid) else await asyncio.to_thread(os.stat, fid.fd)
        made = LocalFid(os.dup(fid.fd), None, "", stat)
        made.user = fid.user
        made.xattr = value
        return m.Rxattrwalk(size=len(value)), made

    async def xattrcreate(self, msg: m.Txattrcreate, fid: LocalFid) -> m.Rxattrcreate:
        if fid.io is not None or fid.xattr is not None or fid.xattr_set is not None:
            raise linux_error("EINVAL")
        if msg.flags not in _XATTR_FLAGS:
            raise linux_error("EINVAL")
        if msg.attr_size > _XATTR_SIZE_MAX:
            raise linux_error("E2BIG")
        fid.xattr_set = _XattrSet(_host_string(msg.name), msg.attr_size, msg.flags)
        return m.Rxattrcreate()

    # -- POSIX locks (r[9p2000l.server.lock]) -------------------------------------------------------

    def _opened(self, fid: LocalFid) -> None:
        """Counts an open fid for its connection's locks on the file (released with the last)."""
        if fid.lock_scope is None:
            connection = current_connection.get()
            fid.lock_scope = (connection, (fid.dev, fid.ino))
            self.locks.opened(*fid.lock_scope)

    def _lock_runner(self, fid: LocalFid) -> Runner:
        """How the host's part of a lock on ``fid``'s file is done: at once on a local file system
        (a non-waiting fcntl, an open that fails rather than wait for a lease), else in a thread."""
        return at_once if self._local(fid) else in_thread

    def _lock_range(self, fid: LocalFid, start: int, length: int) -> tuple[int, int]:
        """``[start, end)`` of a lock on ``fid``, which must be open (as fcntl: the descriptor first)."""
        if fid.io is None or fid.lock_scope is None:
            raise linux_error("EBADF")  # an open fid only
        if start >= END or start + length > END:
            raise linux_error("EINVAL")  # past the largest host off_t (fcntl: EINVAL or EOVERFLOW)
        return start, start + length if length else END

    async def lock(self, msg: m.Tlock, fid: LocalFid) -> m.Rlock:
        start, end = self._lock_range(fid, msg.start, msg.length)
        if msg.type not in (c.P9_LOCK_TYPE_RDLCK, c.P9_LOCK_TYPE_WRLCK, c.P9_LOCK_TYPE_UNLCK):
            raise linux_error("EINVAL")
        if msg.flags & ~c.P9_LOCK_FLAGS_BLOCK:
            raise linux_error("EINVAL")  # RECLAIM is reserved
        if (msg.type == c.P9_LOCK_TYPE_RDLCK and not fid.readable) or (
                msg.type == c.P9_LOCK_TYPE_WRLCK and not fid.writable):
            raise linux_error("EBADF")  # fcntl: a read lock needs a fid open for reading, a write lock for writing
        assert fid.lock_scope is not None
        connection, key = fid.lock_scope
        # BLOCK or not, a lock in the way is answered at once: Linux retries BLOCK requests itself
        status = await self.locks.lock(key, Owner(connection, msg.proc_id, msg.client_id), msg.type, start, end,
                                       fid.fd, self._lock_runner(fid))
        return m.Rlock(status=status)

    async def getlock(self, msg: m.Tgetlock, fid: LocalFid) -> m.Rgetlock:
        start, end = self._lock_range(fid, msg.start, msg.length)
        if msg.type not in (c.P9_LOCK_TYPE_RDLCK, c.P9_LOCK_TYPE_WRLCK, c.P9_LOCK_TYPE_UNLCK):
            raise linux_error("EINVAL")
        # Linux sends every Tgetlock with type UNLCK (its own local test overwrote the type
        # asked): answered as a write lock would be, with any other owner's lock in the range
        wanted = c.P9_LOCK_TYPE_WRLCK if msg.type == c.P9_LOCK_TYPE_UNLCK else msg.type
        assert fid.lock_scope is not None and fid.io is not None
        connection, key = fid.lock_scope
        found = await self.locks.getlock(key, Owner(connection, msg.proc_id, msg.client_id), wanted, start, end,
                                         fid.io, self._lock_runner(fid))
        if found is None:
            return m.Rgetlock(type=c.P9_LOCK_TYPE_UNLCK, start=msg.start, length=msg.length, proc_id=msg.proc_id,
                            client_id=msg.client_id)
        return m.Rgetlock(type=found.type, start=found.start, length=found.length, proc_id=found.proc_id,
                        client_id=found.client_id)


def _signed(value: int) -> int:
    """A u32 owner id as the host takes it: 0xFFFFFFFF is -1, "unchanged" (r[9p2000l.encoding.little-endian])."""
    return -1 if value == 0xFFFFFFFF else value


_U64 = (1 << 64) - 1  # a time before 1970 travels as its two's complement


def _wire_time_ns(sec: int, nsec: int) -> int:
    """A Tsetattr time in nanoseconds: its seconds are a two's complement, as Rgetattr sends
    them (read as unsigned, a time before 1970 was past what the host's time_t holds, and
    utime raised OverflowError)."""
    return (sec - (1 << 64) if sec >> 63 else sec) * 10**9 + nsec


_STAT_FIELDS: dict[str, Any] = {
    "mode": lambda s: s.st_mode, "nlink": lambda s: s.st_nlink, "uid": lambda s: s.st_uid,
    "gid": lambda s: s.st_gid, "rdev": lambda s: s.st_rdev, "size": lambda s: s.st_size,
    "blocks": lambda s: s.st_blocks, "blksize": lambda s: s.st_blksize,
    "atime_sec": lambda s: (s.st_atime_ns // 10**9) & _U64, "atime_nsec": lambda s: s.st_atime_ns % 10**9,
    "mtime_sec": lambda s: (s.st_mtime_ns // 10**9) & _U64, "mtime_nsec": lambda s: s.st_mtime_ns % 10**9,
    "ctime_sec": lambda s: (s.st_ctime_ns // 10**9) & _U64, "ctime_nsec": lambda s: s.st_ctime_ns % 10**9,
}

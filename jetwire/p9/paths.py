"""The paths layer: ``Client``, whose path methods (``read_bytes``, ``listdir``, ``open``...) take
paths and manage fids themselves, ``RemotePath`` (``pathlib``-shaped) and ``File``, over the calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import fnmatch
import posixpath
import stat as stat_module
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import PurePosixPath
from typing import Any

from . import constants as c
from .calls import Calls
from .messages import Dirent, Qid, Rgetattr, Rstatfs
from .session import error_from_errno

_MAX_SYMLINKS = 40  # Linux's limit on symlinks followed in one lookup (ELOOP after)


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


class Client(Calls):
    """One 9P2000.L connection. Use ``await Client.connect(...)`` (or ``jetwire.p9.connect``).

    Besides the calls on fids (``walk``, ``lopen``, ``read``...), methods that take paths below
    the attached root and manage fids themselves (``read_bytes``, ``listdir``, ``open``...)."""

    def path(self, *parts: str) -> RemotePath:
        """A ``pathlib``-shaped handle: ``await client.path("a", "b.txt").read_bytes()``."""
        return RemotePath(self, *parts)

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
            async with self._owned_fid(xfid):
                await self.xattrcreate(xfid, name, len(value), flags)
                if value:
                    await self.write_range(xfid, value)
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
        async with self._owned_fid(fid):
            if qid is not None and qid.type & c.P9_QTDIR and flags & c.P9_ACCMODE != c.P9_RDONLY:
                raise error_from_errno(c.EISDIR, "Tlopen", path)  # nfs-ganesha would open it for writing
            return fid, await self._lopen_truncating(fid, flags)

    async def _create(self, dfid: int, name: str, flags: int, mode: int) -> tuple[int, int]:
        """Tlcreate of ``name`` in ``dfid`` on a clone of it; if another client made the name
        since the walk found nothing (EEXIST, and no EXCL), the file is opened instead."""
        fid, _ = await self.walk(dfid, [])
        try:
            async with self._owned_fid(fid):
                _, iounit = await self.lcreate(fid, name, flags | c.P9_CREATE, mode)
            return fid, iounit
        except FileExistsError:
            if flags & c.P9_EXCL:
                raise
        fid, _ = await self.walk(dfid, [name])
        async with self._owned_fid(fid):
            return fid, await self._lopen_truncating(fid, flags)

    async def _lopen_truncating(self, fid: int, flags: int) -> int:
        """Tlopen, then Tsetattr to size 0 for TRUNC (which nfs-ganesha's Tlopen ignores);
        returns the iounit."""
        _, iounit = await self.lopen(fid, flags)
        if flags & c.P9_TRUNC:
            await self.setattr(fid, c.P9_SETATTR_SIZE, size=0)
        return iounit

    async def open(self, path: str, mode: str = "rb") -> File:
        """An async file object: ``async with await client.open("a.txt", "wb") as f: await f.write(b"x")``.
        Modes: r, w (create/truncate), a (append), x (exclusive create), with optional + and b."""
        flags, create = _open_flags(mode)
        fid, iounit = await self._open_path(path, flags, create, 0o644)
        position = 0
        if flags & c.P9_APPEND:
            async with self._owned_fid(fid):
                position = (await self.getattr(fid, c.P9_GETATTR_SIZE)).size
        return File(self, fid, iounit, path, position)


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

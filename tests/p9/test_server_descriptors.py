"""``LocalFilesystem`` out of file descriptors (r[9p2000l.server.limits]): every request that
opens, duplicates or ``openat``s a descriptor, made with the process's table full but for 0, 1,
2 ... free slots, so that EMFILE strikes at each of its steps in turn. Whatever step fails, the
server holds afterwards exactly the descriptors it held before, every fid it kept still holds
open descriptors, and a create that failed leaves nothing behind; over a connection the client
gets Rlerror EMFILE and the connection goes on.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import resource
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from attached import connect, serving

from jetwire.p9 import constants as c
from jetwire.p9 import messages as m
from jetwire.p9.localfs import LocalFid, LocalFilesystem

GUARD = 60.0
MOST_FREE = 6  # more free slots than any request here needs
OUT_OF_DESCRIPTORS = (errno.EMFILE, errno.ENFILE)


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd")) - 1  # less the listing's own


@contextmanager
def descriptors_left(free: int) -> Iterator[None]:
    """The process's descriptor table full but for ``free`` slots: its soft limit lowered to
    a little above the descriptors in use, and the rest taken by descriptors of /dev/null."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    highest = max(int(name) for name in os.listdir("/proc/self/fd"))
    resource.setrlimit(resource.RLIMIT_NOFILE, (highest + 32, hard))
    fillers: list[int] = []
    try:
        while True:
            try:
                fillers.append(os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC))
            except OSError as exc:
                assert exc.errno == errno.EMFILE
                break
        for _ in range(free):
            os.close(fillers.pop())
        yield
    finally:
        for fd in fillers:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def held_descriptors_open(fid: LocalFid) -> None:
    for fd in (fid.fd, fid.parent, fid.io):
        if fd is not None:
            fcntl.fcntl(fd, fcntl.F_GETFD)  # EBADF: the fid holds a number it no longer owns


class Tree:
    """An export with a directory holding a file and ``sub/inner/innermost``, and fids of the
    root, the directory, the file and ``sub`` (reached by ``..``, so that it has no recorded
    parent), made through the handler's own methods."""

    def __init__(self, fs: LocalFilesystem, export: Path, round: int) -> None:
        self.fs = fs
        self.export = export
        self.round = round
        self.fids: list[LocalFid] = []

    async def walk(self, start: LocalFid, *names: str) -> LocalFid:
        reply, fid = await self.fs.walk(m.Twalk(fid=0, newfid=1, wnames=list(names)), start)
        assert fid is not None and len(reply.wqids) == len(names)
        self.fids.append(fid)
        return fid

    async def make(self) -> None:
        dirpath = self.export / f"dir{self.round}"
        dirpath.mkdir()
        (dirpath / "file").write_text("data")
        (dirpath / "existing").write_text("old")
        (dirpath / "sub" / "inner" / "innermost").mkdir(parents=True)
        _, self.root = await self.fs.attach(m.Tattach(fid=0, afid=c.NOFID, uname="", aname="", n_uname=0), None)
        self.fids.append(self.root)
        self.dir = await self.walk(self.root, dirpath.name)
        self.file = await self.walk(self.root, dirpath.name, "file")
        self.sub_by_dotdot = await self.walk(self.root, dirpath.name, "sub", "inner", "..")
        assert self.sub_by_dotdot.parent is None

    def release(self) -> None:
        for fid in self.fids:
            held_descriptors_open(fid)
            self.fs.release(fid)

    @property
    def name(self) -> str:
        return f"new{self.round}"

    @property
    def path(self) -> Path:
        return self.export / f"dir{self.round}"


async def clone_with_parent(t: Tree) -> Any:
    return await t.fs.walk(m.Twalk(fid=0, newfid=1, wnames=[]), t.file)


async def walk_names(t: Tree) -> Any:
    return await t.fs.walk(m.Twalk(fid=0, newfid=1, wnames=[t.path.name, "..", t.path.name, "file"]), t.root)


async def attach(t: Tree) -> Any:
    return await t.fs.attach(m.Tattach(fid=0, afid=c.NOFID, uname="", aname="", n_uname=0), None)


async def lopen(t: Tree) -> Any:
    return await t.fs.lopen(m.Tlopen(fid=0, flags=c.P9_RDWR), t.file)


async def lcreate_new(t: Tree) -> Any:
    fid = await t.walk(t.dir)
    return await t.fs.lcreate(m.Tlcreate(fid=0, name=t.name, flags=c.P9_RDWR, mode=0o600, gid=0), fid)


async def lcreate_existing(t: Tree) -> Any:
    fid = await t.walk(t.dir)
    return await t.fs.lcreate(m.Tlcreate(fid=0, name="existing", flags=c.P9_RDWR, mode=0o600, gid=0), fid)


async def mkdir(t: Tree) -> Any:
    return await t.fs.mkdir(m.Tmkdir(dfid=0, name=t.name, mode=0o700, gid=0), t.dir)


async def symlink(t: Tree) -> Any:
    return await t.fs.symlink(m.Tsymlink(fid=0, name=t.name, symtgt="file", gid=0), t.dir)


async def mknod(t: Tree) -> Any:
    return await t.fs.mknod(m.Tmknod(dfid=0, name=t.name, mode=0o600 | 0o010000, major=0, minor=0, gid=0), t.dir)


async def link(t: Tree) -> Any:
    return await t.fs.link(m.Tlink(dfid=0, fid=1, name=t.name), t.dir, t.file)


async def rename(t: Tree) -> Any:
    return await t.fs.rename(m.Trename(fid=0, dfid=1, name=t.name), t.file, t.dir)


async def rename_found_by_dotdot(t: Tree) -> Any:
    return await t.fs.rename(m.Trename(fid=0, dfid=1, name=t.name), t.sub_by_dotdot, t.dir)


async def renameat(t: Tree) -> Any:
    return await t.fs.renameat(m.Trenameat(olddirfid=0, oldname="file", newdirfid=1, newname=t.name), t.dir, t.dir)


async def remove_found_by_dotdot(t: Tree) -> Any:
    inner = await t.walk(t.root, t.path.name, "sub", "inner", "innermost", "..")
    (t.path / "sub" / "inner" / "innermost").rmdir()  # so that the directory the fid names is empty
    with descriptors_left(t.round):
        return await t.fs.remove(m.Tremove(fid=0), inner)


async def readdir(t: Tree) -> Any:
    fid = await t.walk(t.dir)
    await t.fs.lopen(m.Tlopen(fid=0, flags=c.P9_RDONLY), fid)
    with descriptors_left(t.round):  # the open above needs one more: the listing is what is measured
        return await t.fs.readdir(m.Treaddir(fid=0, offset=0, count=8192), fid)


async def xattrwalk(t: Tree) -> Any:
    return await t.fs.xattrwalk(m.Txattrwalk(fid=0, newfid=1, name=""), t.file)


async def statfs(t: Tree) -> Any:
    return await t.fs.statfs(m.Tstatfs(fid=0), t.file)


async def lock(t: Tree) -> Any:
    fid = await t.walk(t.file)
    await t.fs.lopen(m.Tlopen(fid=0, flags=c.P9_RDONLY), fid)
    with descriptors_left(t.round):
        reply = await t.fs.lock(m.Tlock(fid=0, type=c.P9_LOCK_TYPE_RDLCK, flags=0, start=0, length=0, proc_id=1,
                                        client_id="me"), fid)
    if reply.status == c.P9_LOCK_ERROR:  # how Tlock says the host gave no descriptor for the lock
        raise OSError(errno.EMFILE, "Rlock ERROR")
    return reply


REQUESTS: dict[str, Callable[[Tree], Awaitable[Any]]] = {
    call.__name__: call for call in (
        attach, clone_with_parent, walk_names, lopen, lcreate_new, lcreate_existing, mkdir, symlink, mknod, link,
        rename, rename_found_by_dotdot, renameat, remove_found_by_dotdot, readdir, xattrwalk, statfs, lock)
}
OPENS_ITSELF = {"readdir", "lock", "remove_found_by_dotdot"}  # open their fid first, with room to spare
MAKES = {"lcreate_new", "mkdir", "symlink", "mknod", "link"}  # a name that must not stay when they fail


@pytest.mark.parametrize("request_name", sorted(REQUESTS))
@pytest.mark.parametrize("inline", [True, False], ids=["loop", "threads"])
def test_out_of_descriptors_at_every_step_leaks_none(tmp_path: Path, request_name: str, inline: bool) -> None:
    request = REQUESTS[request_name]
    export = tmp_path / "export"
    export.mkdir()
    outcomes: list[str] = []

    async def body() -> None:
        # one worker: the closes a release leaves to it (a file system that is not local) are
        # done once a call queued after them is
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=1))
        fs = LocalFilesystem(export, inline=inline)
        for free in range(MOST_FREE + 1):
            before = open_descriptors()
            tree = Tree(fs, export, free)
            await tree.make()
            made: Any = None
            try:
                if request_name in OPENS_ITSELF:
                    made = await request(tree)
                else:
                    with descriptors_left(free):
                        made = await request(tree)
            except OSError as exc:
                assert exc.errno in OUT_OF_DESCRIPTORS, exc
                outcomes.append("EMFILE")
                if request_name in MAKES:
                    assert not (tree.path / tree.name).exists(), "a failed create left its file"
            else:
                outcomes.append("done")
            if isinstance(made, tuple) and isinstance(made[1], LocalFid):
                tree.fids.append(made[1])
            tree.release()
            await asyncio.to_thread(lambda: None)
            assert open_descriptors() == before, f"with {free} free: {outcomes}"
        fs.close()

    asyncio.run(asyncio.wait_for(body(), GUARD))
    # the sweep went from failing to succeeding (no request here needs more than MOST_FREE)
    assert outcomes[-1] == "done", outcomes
    if request_name not in ("symlink", "mknod", "link", "renameat", "statfs"):  # these open nothing
        assert outcomes[0] == "EMFILE", outcomes


def test_over_a_connection_the_client_gets_emfile_and_goes_on(tmp_path: Path) -> None:
    """The same through the server: Rlerror EMFILE for walks, opens and creates made with no
    descriptor free, then, with descriptors again, the same connection works and the server
    holds what it held before."""
    export = tmp_path / "export"
    export.mkdir()
    (export / "file").write_text("data")

    async def body() -> None:
        async with serving(LocalFilesystem(export), "127.0.0.1:0") as server, await connect(server) as fs:
            dir_fid, _ = await fs.walk(fs.root, [])
            before = open_descriptors()
            with descriptors_left(0):
                with pytest.raises(OSError) as walked:
                    await fs.walk(fs.root, ["file"])
                with pytest.raises(OSError) as created:
                    await fs.lcreate(dir_fid, "new", c.P9_RDWR, 0o600)
            assert walked.value.errno == errno.EMFILE and created.value.errno == errno.EMFILE
            assert open_descriptors() == before
            assert not (export / "new").exists()
            fid, _ = await fs.walk(fs.root, ["file"])
            await fs.lopen(fid, c.P9_RDONLY)
            assert await fs.read(fid, 0, 4) == b"data"

    asyncio.run(asyncio.wait_for(body(), GUARD))

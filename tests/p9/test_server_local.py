"""``LocalFilesystem`` served over TCP and unix sockets, driven by jetwire's own client: every
operation, each result checked on the host side too; escape attempts; concurrency and release
on disconnect; the command line. Rule ids: ../shared/spec/9p2000L.md, "Server behaviour".
"""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from attached import connect, serving

from jetwire.p9 import Client, Qid, Rgetattr, Rread, Tgetattr, Tread, Twalk, localfs
from jetwire.p9 import constants as c
from jetwire.p9.localfs import LocalFid, LocalFilesystem, openat2_available
from jetwire.p9.server import Handler
from jetwire.p9.serving import Server, serve

GUARD = 60.0
REPO = Path(__file__).resolve().parents[2]


def run(body: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(body(), GUARD))


@asynccontextmanager
async def served(handler: Handler[Any], unix: Path | None = None, **options: Any) -> AsyncIterator[Client]:
    """A server for ``handler`` and one client attached to it."""
    address = f"unix:{unix}" if unix is not None else "127.0.0.1:0"
    async with serving(handler, address, **options) as server, await connect(server) as client:
        yield client


async def opened_root(fs: LocalFilesystem) -> tuple[Any, Any]:
    """The export's root attached, then cloned and opened for reading, through the handler's
    own methods (no connection): (the attached fid, the open one a listing reads)."""
    from jetwire.p9 import Tattach, Tlopen, Twalk

    _, root = await fs.attach(Tattach(fid=0, afid=c.NOFID, uname="", aname="", n_uname=0), None)
    _, fid = await fs.walk(Twalk(fid=0, newfid=1, wnames=[]), root)
    assert fid is not None
    await fs.lopen(Tlopen(fid=1, flags=c.P9_RDONLY), fid)
    return root, fid


@pytest.fixture(params=["openat2", "nofollow-walk"])
def resolver(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs a test with each way of resolving names: openat2, and the O_NOFOLLOW walk that
    kernels before 5.6 get."""
    if request.param == "nofollow-walk":
        monkeypatch.setattr(localfs, "_OPENAT2", None)
    elif not openat2_available():
        pytest.skip("this kernel has no openat2")
    return str(request.param)


@pytest.fixture
def export(tmp_path: Path) -> Path:
    root = tmp_path / "export"
    root.mkdir()
    (tmp_path / "outside.txt").write_text("secret")
    return root


# -- every operation, checked on the host ------------------------------------------------------------

@pytest.mark.parametrize("transport", ["tcp", "unix"])
def test_files_round_trip_and_the_host_sees_them(export: Path, tmp_path: Path, transport: str) -> None:
    # r[9p2000l.server.lcreate], r[9p2000l.server.io], r[9p2000l.server.lopen]
    async def body() -> None:
        unix = tmp_path / "s.sock" if transport == "unix" else None
        async with served(LocalFilesystem(export), unix) as fs:
            data = os.urandom(300_000)  # several Twrites at this msize
            await fs.write_bytes("f.bin", data, mode=0o640)
            assert (export / "f.bin").read_bytes() == data
            assert stat.S_IMODE((export / "f.bin").stat().st_mode) == 0o640  # the umask does not apply
            assert await fs.read_bytes("f.bin") == data
            async with await fs.open("f.bin", "ab") as f:
                await f.write(b"tail")
            assert (export / "f.bin").read_bytes() == data + b"tail"

    run(body)


def test_directories_links_and_renames(export: Path) -> None:
    # r[9p2000l.server.confine.symlinks], r[9p2000l.server.confine.links]
    async def body() -> None:
        async with served(LocalFilesystem(export)) as fs:
            await fs.mkdir("a", 0o750)
            assert (export / "a").is_dir() and stat.S_IMODE((export / "a").stat().st_mode) == 0o750
            await fs.write_bytes("a/x", b"1")
            await fs.symlink("../../etc/passwd", "a/sym")
            assert os.readlink(export / "a/sym") == "../../etc/passwd"  # stored verbatim
            assert await fs.readlink("a/sym") == "../../etc/passwd"
            await fs.link("a/x", "hard")
            assert (export / "hard").stat().st_ino == (export / "a/x").stat().st_ino
            await fs.mkdir("b")
            await fs.rename("a/x", "b/y")  # Trenameat
            assert (export / "b/y").read_bytes() == b"1" and not (export / "a/x").exists()
            fid, _ = await fs.walk(fs.root, ["b", "y"])
            dfid, _ = await fs.walk(fs.root, ["a"])
            await fs.rename_fid(fid, dfid, "z")  # Trename moves what the fid names
            assert (export / "a/z").read_bytes() == b"1"
            await fs.remove(fid)  # Tremove through the entry the fid now names
            await fs.clunk(dfid)
            assert not (export / "a/z").exists()
            await fs.rmtree("a")
            assert sorted(os.listdir(export)) == ["b", "hard"]

    run(body)


def test_attributes(export: Path) -> None:
    # r[9p2000l.server.getattr], r[9p2000l.server.setattr], r[9p2000l.server.qid], r[9p2000l.server.statfs]
    (export / "f").write_bytes(b"hello world")
    os.symlink("f", export / "l")

    async def body() -> None:
        async with served(LocalFilesystem(export)) as fs:
            host = os.stat(export / "f")
            st = await fs.lstat("f")
            assert (st.st_mode, st.st_size, st.st_ino, st.st_mtime_ns) == (
                host.st_mode, host.st_size, host.st_ino, host.st_mtime_ns)
            assert st.qid == Qid(type=c.P9_QTFILE, version=0, path=host.st_ino)
            link = await fs.lstat("l")
            assert stat.S_ISLNK(link.st_mode) and link.qid.type == c.P9_QTSYMLINK  # the link itself
            fid, _ = await fs.walk(fs.root, ["f"])
            only = await fs.getattr(fid, c.P9_GETATTR_SIZE)
            assert only.size == 11 and only.valid & c.P9_GETATTR_SIZE
            assert only.valid & ~c.P9_GETATTR_BASIC == 0 and only.btime_sec == 0
            none = await fs.getattr(fid, c.P9_GETATTR_GEN)  # nothing this server fills
            assert none.valid == 0 and none.mode == 0 and none.size == 0
            await fs.setattr(fid, c.P9_SETATTR_MODE, mode=0o100600)
            await fs.setattr(fid, c.P9_SETATTR_SIZE | c.P9_SETATTR_MTIME | c.P9_SETATTR_CTIME, size=5)
            await fs.setattr(fid, c.P9_SETATTR_ATIME | c.P9_SETATTR_ATIME_SET | c.P9_SETATTR_MTIME
                             | c.P9_SETATTR_MTIME_SET, atime_sec=1000, atime_nsec=5, mtime_sec=2000, mtime_nsec=7)
            now = os.stat(export / "f")
            assert stat.S_IMODE(now.st_mode) == 0o600 and now.st_size == 5
            assert (now.st_atime_ns, now.st_mtime_ns) == (1000 * 10**9 + 5, 2000 * 10**9 + 7)
            await fs.setattr(fid, c.P9_SETATTR_MTIME)  # "now", atime untouched
            later = os.stat(export / "f")
            assert later.st_mtime > time.time() - 60 and later.st_atime_ns == 1000 * 10**9 + 5
            lfid, _ = await fs.walk(fs.root, ["l"])
            with pytest.raises(OSError) as info:
                await fs.setattr(lfid, c.P9_SETATTR_MODE, mode=0o777)
            assert info.value.errno == 95  # never the target's mode
            assert stat.S_IMODE(os.stat(export / "f").st_mode) == 0o600
            vfs = await fs.statvfs("")
            host_vfs = os.statvfs(export)
            assert (vfs.type, vfs.bsize, vfs.blocks, vfs.namelen) == (
                c.V9FS_MAGIC, host_vfs.f_bsize, host_vfs.f_blocks, host_vfs.f_namemax)

    run(body)


def test_files_belong_to_the_server_whoever_attaches(export: Path) -> None:
    # r[9p2000l.server.identity]: uname/n_uname grant nothing; the server's own credentials
    async def body() -> None:
        server = await serve(LocalFilesystem(export), "127.0.0.1:0")
        try:
            async with await connect(server, uname="nobody", n_uname=65534) as fs:
                await fs.write_bytes("mine", b"x")
                await fs.mkdir("dir")
        finally:
            await server.close()
        for name in ("mine", "dir"):
            assert (os.stat(export / name).st_uid, os.stat(export / name).st_gid) == (os.getuid(), os.getgid())

    run(body)


def test_iounit_is_zero(export: Path) -> None:
    # r[9p2000l.server.iounit]: 0, "msize - 24"; Linux then sizes its reads from msize
    (export / "f").write_text("x")

    async def body() -> None:
        async with served(LocalFilesystem(export)) as fs:
            fid, _ = await fs.walk(fs.root, ["f"])
            assert (await fs.lopen(fid, c.P9_RDONLY))[1] == 0
            dfid, _ = await fs.walk(fs.root, [])
            assert (await fs.lcreate(dfid, "g", c.P9_RDWR, 0o644))[1] == 0

    run(body)


def test_extended_attributes(export: Path) -> None:
    # r[9p2000l.server.xattrwalk], r[9p2000l.server.xattrcreate]
    (export / "f").write_text("x")
    os.setxattr(export / "f", "user.host", b"from the host")

    async def body() -> None:
        async with served(LocalFilesystem(export)) as fs:
            assert await fs.getxattr("f", "user.host") == b"from the host"
            assert await fs.listxattr("f") == ["user.host"]
            with pytest.raises(OSError) as info:
                await fs.getxattr("f", "user.missing")
            assert info.value.errno == c.ENODATA
            await fs.setxattr("f", "user.new", b"v" * 1000)
            assert os.getxattr(export / "f", "user.new") == b"v" * 1000
            with pytest.raises(FileExistsError):
                await fs.setxattr("f", "user.new", b"again", flags=c.XATTR_CREATE)
            await fs.setxattr("f", "user.new", b"")  # removexattr, as Linux sends it
            assert sorted(os.listxattr(export / "f")) == ["user.host"]
            fid, _ = await fs.walk(fs.root, ["f"])
            with pytest.raises(OSError) as info:
                await fs.xattrcreate(fid, "user.big", 65537)
            assert info.value.errno == 7  # E2BIG, and the fid is unchanged
            await fs.xattrcreate(fid, "user.short", 10)
            await fs.write(fid, 0, b"12345")
            with pytest.raises(OSError) as info:
                await fs.clunk(fid)  # 5 of 10 bytes: nothing is set
            assert info.value.errno == c.EINVAL and "user.short" not in os.listxattr(export / "f")
            xfid, _ = await fs.xattrwalk(fs.root, "")
            with pytest.raises(OSError) as info:
                await fs.lopen(xfid, c.P9_RDONLY)
            assert info.value.errno == c.EINVAL

    run(body)


def test_an_uncommitted_xattr_is_dropped_on_disconnect(export: Path) -> None:
    # r[9p2000l.server.disconnect]: only an explicit Tclunk sets anything
    (export / "f").write_text("x")

    async def body() -> None:
        async with served(LocalFilesystem(export)) as fs:
            fid, _ = await fs.walk(fs.root, ["f"])
            await fs.xattrcreate(fid, "user.never", 3)
            await fs.write(fid, 0, b"abc")
        assert "user.never" not in os.listxattr(export / "f")

    run(body)


def test_mknod_makes_fifos_never_devices_and_never_opens_them(export: Path) -> None:
    # r[9p2000l.server.confine.special-files]
    async def body() -> None:
        async with served(LocalFilesystem(export)) as fs:
            await fs.mknod_at(fs.root, "p", stat.S_IFIFO | 0o644)
            assert stat.S_ISFIFO(os.lstat(export / "p").st_mode)
            with pytest.raises(PermissionError):
                await fs.mknod_at(fs.root, "dev", stat.S_IFCHR | 0o644, 1, 3)
            assert not (export / "dev").exists()
            fid, _ = await fs.walk(fs.root, ["p"])
            with pytest.raises(OSError) as info:
                await fs.lopen(fid, c.P9_RDONLY)  # a blocking FIFO open would tie up the server
            assert info.value.errno == 95

    run(body)


def test_unlinkat_and_fsync(export: Path) -> None:
    # r[9p2000l.unlinkat], r[9p2000l.fsync]
    (export / "d").mkdir()
    (export / "f").write_text("x")

    async def body() -> None:
        async with served(LocalFilesystem(export)) as fs:
            async with await fs.open("f", "r+b") as f:
                await f.write(b"y")
                await f.fsync()
            await fs.unlinkat(fs.root, "f")
            with pytest.raises(IsADirectoryError):
                await fs.unlinkat(fs.root, "d")
            await fs.unlinkat(fs.root, "d", c.AT_REMOVEDIR)
            assert os.listdir(export) == []

    run(body)


def test_lcreate_does_not_follow_a_symlink(export: Path, tmp_path: Path, resolver: str) -> None:
    # r[9p2000l.server.confine.symlinks]: O_NOFOLLOW with O_CREAT, so ELOOP, not the target
    os.symlink(tmp_path / "outside.txt", export / "trap")

    async def body() -> None:
        async with served(LocalFilesystem(export)) as fs:
            dfid, _ = await fs.walk(fs.root, [])
            with pytest.raises(OSError) as info:
                await fs.lcreate(dfid, "trap", c.P9_WRONLY | c.P9_TRUNC, 0o644)
            assert info.value.errno == 40
            assert (tmp_path / "outside.txt").read_text() == "secret"

    run(body)


def test_read_only_export(export: Path) -> None:
    # r[9p2000l.server.read-only]
    (export / "f").write_text("kept")

    async def body() -> None:
        async with served(LocalFilesystem(export, read_only=True)) as fs:
            assert await fs.read_bytes("f") == b"kept"
            for attempt in (fs.write_bytes("f", b"x"), fs.mkdir("d"), fs.symlink("x", "l"), fs.rename("f", "g"),
                            fs.chmod("f", 0o777), fs.remove_path("f")):
                with pytest.raises(OSError) as info:
                    await attempt
                assert info.value.errno == 30
            assert os.listdir(export) == ["f"] and (export / "f").read_text() == "kept"

    run(body)


# -- escapes (r[9p2000l.server.confine.beneath]) ------------------------------------------------------

def test_dotdot_stays_at_the_root(export: Path, resolver: str) -> None:
    # r[9p2000l.server.walk.dotdot-root]
    (export / "a" / "b").mkdir(parents=True)

    async def body() -> None:
        async with served(LocalFilesystem(export)) as fs:
            root = (await fs.lstat("")).qid
            _, qids = await fs.walk(fs.root, [".."] * 16)
            assert qids == [root] * 16
            assert sorted(e.name for e in await fs.scandir("") if e.name not in (".", "..")) == ["a"]
            fid2, qids = await fs.walk(fs.root, ["a", "b"] + [".."] * 14)
            assert qids[-1] == root
            await fs.lopen(fid2, c.P9_RDONLY)
            listed = {e.name for e in await fs.readdir(fid2)}
            assert listed == {".", "..", "a"}

    run(body)


def test_a_fid_reached_by_dotdot_can_be_renamed_and_removed(export: Path) -> None:
    # r[9p2000l.server.fid.remove]: the entry it is reached through is found by its inode
    (export / "a" / "b").mkdir(parents=True)

    async def body() -> None:
        async with served(LocalFilesystem(export)) as fs:
            fid, _ = await fs.walk(fs.root, ["a", "b", ".."])
            await fs.rename_fid(fid, fs.root, "renamed")
            assert sorted(os.listdir(export)) == ["renamed"]
            await fs.clunk(fid)
            again, _ = await fs.walk(fs.root, ["renamed", "b", ".."])
            os.rmdir(export / "renamed" / "b")
            await fs.remove(again)
            assert os.listdir(export) == []

    run(body)


def test_symlinks_out_are_never_followed(export: Path, tmp_path: Path, resolver: str) -> None:
    # r[9p2000l.server.confine.symlinks], r[9p2000l.server.confine.beneath]
    os.symlink("/", export / "root")
    os.symlink("../..", export / "up")
    os.symlink(tmp_path / "outside.txt", export / "out")

    async def body() -> None:
        async with served(LocalFilesystem(export)) as fs:
            for path in (["root", "etc"], ["up", "outside.txt"], ["root"], ["out"]):
                try:
                    fid, qids = await fs.walk(fs.root, path)
                except FileNotFoundError:  # a short Rwalk: a name after a symlink fails as after a file
                    reply = await fs._call(Twalk(fid=fs.root, newfid=99, wnames=path))
                    assert [q.type for q in reply.wqids] == [c.P9_QTSYMLINK]
                    continue
                assert qids[-1].type == c.P9_QTSYMLINK  # the link itself, never its target
                with pytest.raises(OSError) as info:
                    await fs.lopen(fid, c.P9_RDONLY)
                assert info.value.errno == 40
                await fs.clunk(fid)
            with pytest.raises(OSError):
                await fs.read_bytes("out")  # the client follows links itself: "/…" is outside its root
            assert await fs.readlink("root") == "/"

    run(body)


def test_a_hard_link_to_a_file_outside_is_refused(export: Path, tmp_path: Path, resolver: str) -> None:
    # r[9p2000l.server.confine.links]: Tlink links what the fid holds; a symlink stays a symlink
    os.symlink(tmp_path / "outside.txt", export / "out")

    async def body() -> None:
        async with served(LocalFilesystem(export)) as fs:
            fid, _ = await fs.walk(fs.root, ["out"])
            await fs.link_at(fs.root, fid, "copy")
            assert os.path.islink(export / "copy")  # the link, not the outside inode
            assert os.lstat(export / "copy").st_ino != os.stat(tmp_path / "outside.txt").st_ino
            reply = await fs._call(Twalk(fid=fs.root, newfid=98, wnames=["..", "outside.txt"]))
            assert reply.wqids[:1] == [(await fs.lstat("")).qid] and len(reply.wqids) == 1  # no fid to link

    run(body)


def test_rename_cannot_leave_the_export(export: Path, tmp_path: Path, resolver: str) -> None:
    # r[9p2000l.server.confine.links]: only between directories held by fids of the export
    (export / "d").mkdir()

    async def body() -> None:
        async with served(LocalFilesystem(export)) as fs:
            for newname in ("../moved", "..", "/tmp/moved", "a/../../moved"):
                with pytest.raises(OSError) as info:
                    await fs.renameat(fs.root, "d", fs.root, newname)
                assert info.value.errno == 22
            up, _ = await fs.walk(fs.root, [".."])  # the root's parent is the root
            await fs.renameat(fs.root, "d", up, "moved")
            assert (export / "moved").is_dir() and not (tmp_path / "moved").exists()

    run(body)


def test_a_directory_swapped_for_a_symlink_does_not_redirect_a_fid(export: Path, tmp_path: Path, resolver: str) -> None:
    # r[9p2000l.server.confine.beneath]: the fid holds the directory itself, not its name
    (export / "d").mkdir()
    (export / "d" / "inside.txt").write_text("in")

    async def body() -> None:
        async with served(LocalFilesystem(export)) as fs:
            fid, _ = await fs.walk(fs.root, ["d"])
            os.rename(export / "d", export / "d2")
            os.symlink(tmp_path, export / "d")  # the same name now leads outside
            _, qids = await fs.walk(fid, ["inside.txt"])
            assert qids[0].path == os.stat(export / "d2" / "inside.txt").st_ino
            with pytest.raises(FileNotFoundError):
                await fs.walk(fid, ["outside.txt"])
            reply = await fs._call(Twalk(fid=fs.root, newfid=99, wnames=["d", "outside.txt"]))
            assert [q.type for q in reply.wqids] == [c.P9_QTSYMLINK]  # stops at the link

    run(body)


def test_confinement_uses_openat2_on_this_kernel() -> None:
    # r[9p2000l.server.confine.beneath]: openat2 where the kernel has it (5.6 and later)
    release = tuple(int(x) for x in os.uname().release.split(".")[:2] if x.isdigit())
    if sys.platform == "linux" and release >= (5, 6):
        assert openat2_available()


# -- readdir (r[9p2000l.server.readdir], r[9p2000l.server.readdir.cookies]) ---------------------------

def test_readdir_of_10000_entries_resumes_from_every_offset(export: Path) -> None:
    """The bug class other servers shipped: every count from the least that fits an entry,
    resuming from every offset returned; nothing lost, nothing repeated."""
    names = {f"{'n' * (i % 37)}{i}" for i in range(10_000)} | {"n0"}  # lengths vary, so cuts fall everywhere
    (export / "n0").touch()
    for name in names - {"n0"}:
        os.link(export / "n0", export / name)  # links: quicker to make than 10,000 inodes
    expected = names | {".", ".."}
    msize = 8192
    fs = LocalFilesystem(export)
    from jetwire.p9 import Treaddir
    from jetwire.p9.calls import parse_dirents

    async def body() -> None:
        root, fid = await opened_root(fs)

        async def listing(count: int) -> list[Any]:
            entries: list[Any] = []
            offset = 0
            while True:
                data = (await fs.readdir(Treaddir(fid=1, offset=offset, count=count), fid)).data
                assert len(data) <= count
                batch = parse_dirents(data)
                if not batch:
                    return entries
                entries += batch
                offset = batch[-1].offset

        longest = 24 + max(len(n) for n in expected)
        full = await listing(msize - 11)
        assert sorted(e.name for e in full) == sorted(expected)
        # every count from the least that fits the longest entry, across more than one entry's length
        for count in list(range(longest, longest + 40)) + [257, 1000, 4096, msize - 24, msize - 11]:
            got = await listing(count)
            assert [e.name for e in got] == [e.name for e in full], count
        # resuming from every offset returned gives the entry after it first
        for index, entry in enumerate(full[:-1]):
            data = (await fs.readdir(Treaddir(fid=1, offset=entry.offset, count=longest), fid)).data
            assert parse_dirents(data)[0].name == full[index + 1].name
        end = (await fs.readdir(Treaddir(fid=1, offset=full[-1].offset, count=longest), fid)).data
        assert end == b""
        with pytest.raises(OSError) as info:  # too small for the next entry: never an empty answer
            await fs.readdir(Treaddir(fid=1, offset=0, count=24), fid)  # no entry is under 25 bytes
        assert info.value.errno == 22
        with pytest.raises(OSError):  # an offset no entry had
            await fs.readdir(Treaddir(fid=1, offset=len(full) + 1, count=msize), fid)
        fs.release(fid)
        fs.release(root)
        fs.close()

    run(body)


def test_readdir_entries_match_walks_and_vanished_entries_are_left_out(export: Path) -> None:
    # r[9p2000l.server.readdir]: qid type and path as a walk gives; `..` of the root is the root
    (export / "d").mkdir()
    (export / "f").write_text("x")
    os.symlink("f", export / "l")

    async def body() -> None:
        async with served(LocalFilesystem(export)) as fs:
            dfid, _ = await fs.walk(fs.root, [])
            await fs.lopen(dfid, c.P9_RDONLY)
            entries = {e.name: e for e in await fs.readdir(dfid)}
            root = (await fs.lstat("")).qid
            assert entries["."].qid == root and entries[".."].qid == root
            for name, dtype in (("d", c.DT_DIR), ("f", c.DT_REG), ("l", c.DT_LNK)):
                _, qids = await fs.walk(fs.root, [name])
                assert (entries[name].qid.type, entries[name].qid.path, entries[name].type) == (
                    qids[0].type, qids[0].path, dtype)

    run(body)


def test_readdir_snapshot_entries_are_the_dirent_encoders_bytes(export: Path) -> None:
    """r[9p2000l.readdir.dirent]: the listing packs its entries itself (not through Dirent): each is
    the bytes the generated encoder writes for the same entry, for every kind of file and for a
    name that is not UTF-8."""
    import socket

    from jetwire.p9 import Dirent

    (export / "d").mkdir()
    (export / "f").write_text("x")
    os.symlink("f", export / "l")
    os.mkfifo(export / "p")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(export / "s"))
    (export / os.fsdecode(b"bad\xff\xfename")).touch()
    expected_kinds = {".": (c.P9_QTDIR, c.DT_DIR), "..": (c.P9_QTDIR, c.DT_DIR), "d": (c.P9_QTDIR, c.DT_DIR),
                      "f": (c.P9_QTFILE, c.DT_REG), "l": (c.P9_QTSYMLINK, c.DT_LNK), "p": (c.P9_QTFILE, c.DT_FIFO),
                      "s": (c.P9_QTFILE, c.DT_SOCK), os.fsdecode(b"bad\xff\xfename"): (c.P9_QTFILE, c.DT_REG)}
    fs = LocalFilesystem(export)

    async def body() -> None:
        root, fid = await opened_root(fs)
        snapshot, _ = fs._snapshot(fid)
        assert snapshot is not None
        seen = {}
        for position, data in enumerate(snapshot, 1):
            entry = Dirent.decode(data)
            assert Dirent(qid=entry.qid, offset=entry.offset, type=entry.type, name=entry.name).encode() == data
            assert entry.offset == position
            seen[entry.name] = (entry.qid.type, entry.type)
            if entry.name not in (".", ".."):
                assert entry.qid.path == os.lstat(export / entry.name).st_ino
        assert seen == expected_kinds
        fs.release(fid)
        fs.release(root)
        fs.close()

    run(body)


def test_readdir_snapshots_never_hold_more_than_the_budget(export: Path) -> None:
    """r[9p2000l.server.limits]: many fids each listing a big directory hold at most the
    budget in snapshots, counted in bytes of the objects held; a snapshot past it is ENOMEM
    (never a listing of some other kind), listing again from offset 0 replaces a fid's snapshot
    rather than adding one, and releasing the fids gives the budget back."""
    names = {f"entry-{i:05}-{'x' * (i % 23)}" for i in range(3000)}
    first = sorted(names)[0]
    (export / first).touch()
    for name in names - {first}:
        os.link(export / first, export / name)
    budget = 1 << 20  # a snapshot of this directory takes about a quarter of it
    fs = LocalFilesystem(export, readdir_budget=budget)
    from jetwire.p9 import Tattach, Tlopen, Treaddir, Twalk
    from jetwire.p9.calls import parse_dirents

    async def body() -> None:
        _, root = await fs.attach(Tattach(fid=0, afid=c.NOFID, uname="", aname="", n_uname=0), None)
        fids: list[LocalFid] = []
        for number in range(1, 11):
            _, fid = await fs.walk(Twalk(fid=0, newfid=number, wnames=[]), root)
            assert fid is not None
            await fs.lopen(Tlopen(fid=number, flags=c.P9_RDONLY), fid)
            fids.append(fid)
        refused = []
        for repeat in range(2):
            for number, fid in enumerate(fids, 1):
                listed: list[str] = []
                offset = 0
                try:
                    while batch := parse_dirents((await fs.readdir(Treaddir(fid=number, offset=offset,
                                                                            count=8181), fid)).data):
                        listed += [e.name for e in batch]
                        offset = batch[-1].offset
                except OSError as exc:
                    assert exc.errno == 12 and fid.entries is None  # ENOMEM, and nothing held for it
                    refused.append((repeat, number))
                    continue
                assert sorted(listed) == sorted(names | {".", ".."})
                held = sum(sys.getsizeof(e) + 8 for f in fids if f.entries is not None for e in f.entries)
                assert held <= budget, (repeat, number, held)
                assert fs.snapshot_bytes(None) <= budget
        snapshots = sum(f.entries is not None for f in fids)
        assert 2 <= snapshots < len(fids)  # the budget was used, then refused
        # a second round lists again the fids that held snapshots: each replaced its own
        assert [number for repeat, number in refused if repeat == 1] == [n for r, n in refused if r == 0]
        for fid in fids:
            fs.release(fid)
        fs.release(root)
        assert fs.snapshot_bytes(None) == 0
        fs.close()

    run(body)


def test_one_connection_cannot_spend_anothers_readdir_budget(export: Path) -> None:
    """r[9p2000l.server.limits]: the budget is each connection's own. A client holding all of its
    budget gets ENOMEM for one more snapshot, while another client lists the same directory with
    a snapshot of its own; a disconnect gives back what that connection held."""
    for number in range(2000):
        (export / f"file-{number:05}").touch()
    fs = LocalFilesystem(export, readdir_budget=250_000)  # one snapshot (about 150,000 bytes), not two

    async def listing(client: Client) -> int:
        dfid, _ = await client.walk(client.root, [])
        await client.lopen(dfid, c.P9_RDONLY)
        return len(await client.readdir(dfid))

    async def body() -> None:
        server = await serve(fs, "127.0.0.1:0")
        host, port = server.addresses[0].rsplit(":", 1)
        try:
            first = await Client.connect(host, int(port), timeout=10)
            second = await Client.connect(host, int(port), timeout=10)
            assert await listing(first) == 2002
            with pytest.raises(OSError) as refused:
                await listing(first)  # the first's budget holds one snapshot
            assert refused.value.errno == 12  # ENOMEM
            [held] = fs._snapshot_bytes.values()
            assert 0 < held <= 250_000
            assert await listing(second) == 2002  # a snapshot of its own, not refused for the first's
            assert sorted(fs._snapshot_bytes.values()) == [held, held]
            await first.close()
            for _ in range(500):  # released once the server has seen the end of the stream
                if len(fs._snapshot_bytes) == 1:
                    break
                await asyncio.sleep(0.01)
            assert list(fs._snapshot_bytes.values()) == [held]  # the second's, still held
            await second.close()
            for _ in range(500):
                if not fs._snapshot_bytes:
                    break
                await asyncio.sleep(0.01)
            assert fs._snapshot_bytes == {}
        finally:
            await server.close()

    run(body)


# -- concurrency and disconnects -------------------------------------------------------------------

class Gated(LocalFilesystem):
    """Reads wait for ``gate``; every release is counted."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.gate = asyncio.Event()
        self.live = 0

    async def attach(self, msg: Any, afid: Any) -> Any:
        self.live += 1
        return await super().attach(msg, afid)

    async def walk(self, msg: Any, fid: LocalFid) -> Any:
        reply, made = await super().walk(msg, fid)
        if made is not None:
            self.live += 1
        return reply, made

    async def read(self, msg: Any, fid: LocalFid) -> Any:
        await self.gate.wait()
        return await super().read(msg, fid)

    def release(self, fid: LocalFid) -> None:
        self.live -= 1
        super().release(fid)


def test_a_slow_read_does_not_hold_up_other_requests(export: Path) -> None:
    # r[9p2000l.server.concurrency]: answered in any order
    (export / "f").write_text("data")
    handler = Gated(export)

    async def body() -> None:
        async with served(handler) as fs:
            fid, _ = await fs.walk(fs.root, ["f"])
            await fs.lopen(fid, c.P9_RDONLY)
            reading = asyncio.ensure_future(fs._call(Tread(fid=fid, offset=0, count=10)))
            stat_reply = await fs._call(Tgetattr(fid=fid, request_mask=c.P9_GETATTR_SIZE))
            assert isinstance(stat_reply, Rgetattr) and not reading.done()
            handler.gate.set()
            reply = await reading
            assert isinstance(reply, Rread) and reply.data == b"data"

    run(body)


def test_a_disconnect_releases_every_fid(export: Path) -> None:
    # r[9p2000l.server.disconnect]: also the fids of calls still running when it went
    (export / "f").write_text("data")
    handler = Gated(export)

    async def body() -> None:
        server: Server = await serve(handler, "127.0.0.1:0")
        fs = await connect(server)
        fid, _ = await fs.walk(fs.root, ["f"])
        await fs.walk(fs.root, [])
        await fs.lopen(fid, c.P9_RDONLY)
        pending = asyncio.ensure_future(fs._call(Tread(fid=fid, offset=0, count=10)))
        await asyncio.sleep(0.05)  # the read reaches the server and waits at the gate
        assert handler.live == 3
        await fs.close()
        pending.cancel()
        for _ in range(100):
            if handler.live == 1:
                break
            await asyncio.sleep(0.01)
        assert handler.live == 1  # the fid the read is using waits for it
        handler.gate.set()
        for _ in range(200):
            if handler.live == 0:
                break
            await asyncio.sleep(0.01)
        assert handler.live == 0
        await server.close()

    run(body)


@pytest.mark.parametrize("locked", [False, True])
def test_a_close_that_waits_holds_up_no_other_request(export: Path, locked: bool,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """r[9p2000l.server.concurrency]: on a file system that is not local (NFS writes back at
    close, FUSE asks its daemon) releasing a fid closes its descriptors in a thread, and so do the
    locks it held: a close that waits holds up no request. Simulated with ``inline=False`` (what
    such an export gets) and a close of the file "slow" that waits for a gate."""
    import threading

    (export / "slow").write_text("data")
    (export / "other").write_text("more")
    gate, entered = threading.Event(), threading.Event()
    real_close = os.close

    def waiting_close(fd: int) -> None:
        try:
            slow = os.readlink(f"/proc/self/fd/{fd}").endswith("/slow")
        except OSError:
            slow = False
        if slow and not entered.is_set():
            entered.set()
            gate.wait(GUARD / 4)
        real_close(fd)

    rescue = threading.Timer(GUARD / 6, gate.set)  # without the fix the loop waits here: fail, not hang
    rescue.start()

    async def body() -> None:
        async with served(LocalFilesystem(export, inline=False)) as fs:
            fid, _ = await fs.walk(fs.root, ["slow"])
            await fs.lopen(fid, c.P9_RDWR)
            if locked:
                assert await fs.lock(fid, c.P9_LOCK_TYPE_WRLCK) == c.P9_LOCK_SUCCESS
            other, _ = await fs.walk(fs.root, ["other"])
            await fs.lopen(other, c.P9_RDONLY)
            monkeypatch.setattr(os, "close", waiting_close)
            await fs.clunk(fid)  # the reply goes before the release
            while not entered.is_set():
                await asyncio.sleep(0.01)
            assert await fs.read(other, 0, 4) == b"more"
            answered_while_closing = not gate.is_set()
            gate.set()
            assert answered_while_closing

    try:
        run(body)
    finally:
        gate.set()
        rescue.cancel()


@pytest.mark.parametrize("call", ["getattr", "lopen", "readlink", "xattrwalk", "attach"])
def test_a_stat_that_waits_holds_up_no_other_request(export: Path, call: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """r[9p2000l.server.concurrency]: on a file system that is not local an fstat or a readlink
    may wait (NFS revalidates with its server, FUSE asks its daemon): there Tgetattr, Tlopen's
    qid, Treadlink, Txattrwalk and Tattach make them in a thread. Simulated with ``inline=False``
    (what such an export gets) and, once armed, an fstat or readlink of a "slow" file that waits."""
    import threading

    (export / "slow").write_text("data")
    os.symlink("target", export / "slow-link")
    (export / "other").write_text("more")
    slow_name = {"readlink": "slow-link", "attach": "export"}.get(call, "slow")
    gate, entered = threading.Event(), threading.Event()
    armed = threading.Event()
    real_stat, real_readlink = os.stat, os.readlink

    def is_slow(fd: int) -> bool:
        try:
            return real_readlink(f"/proc/self/fd/{fd}").rsplit("/", 1)[-1] == slow_name
        except OSError:
            return False

    def waiting_stat(path: Any, *args: Any, **kwargs: Any) -> Any:
        if armed.is_set() and isinstance(path, int) and is_slow(path) and not entered.is_set():
            entered.set()
            gate.wait(GUARD / 4)
        return real_stat(path, *args, **kwargs)

    def waiting_readlink(path: Any, *args: Any, dir_fd: int | None = None, **kwargs: Any) -> Any:
        if armed.is_set() and dir_fd is not None and is_slow(dir_fd) and not entered.is_set():
            entered.set()
            gate.wait(GUARD / 4)
        return real_readlink(path, *args, dir_fd=dir_fd, **kwargs)

    monkeypatch.setattr(os, "stat", waiting_stat)
    monkeypatch.setattr(os, "readlink", waiting_readlink)
    rescue = threading.Timer(GUARD / 6, gate.set)  # without the fix the loop waits in the call: fail, not hang
    rescue.start()

    async def body() -> None:
        server = await serve(LocalFilesystem(export, inline=False), "127.0.0.1:0")
        host, port = server.addresses[0].rsplit(":", 1)
        async with await Client.connect(host, int(port), timeout=10) as fs:
            other, _ = await fs.walk(fs.root, ["other"])
            await fs.lopen(other, c.P9_RDONLY)
            slow, _ = await fs.walk(fs.root, [slow_name] if call != "attach" else [])
            armed.set()
            if call == "getattr":
                waiting = asyncio.ensure_future(fs.getattr(slow))
            elif call == "lopen":
                waiting = asyncio.ensure_future(fs.lopen(slow, c.P9_RDONLY))
            elif call == "readlink":
                waiting = asyncio.ensure_future(fs.readlink_fid(slow))
            elif call == "xattrwalk":
                waiting = asyncio.ensure_future(fs.xattrwalk(slow, ""))
            else:
                waiting = asyncio.ensure_future(Client.connect(host, int(port), timeout=10))
            while not entered.is_set():
                await asyncio.sleep(0.01)
            assert await fs.read(other, 0, 4) == b"more"
            answered_while_waiting = not gate.is_set()
            gate.set()
            done = await waiting
            if call == "attach":
                await done.close()
            assert answered_while_waiting
        await server.close()

    try:
        run(body)
    finally:
        gate.set()
        rescue.cancel()


def test_an_open_that_must_break_a_lease_holds_up_no_other_request(export: Path) -> None:
    """r[9p2000l.server.concurrency]: on a local export Tlopen opens on the loop's thread, but
    an open that conflicts with another process's lease (F_SETLEASE: Samba and the kernel's NFS
    server take them) waits until the lease is given up, up to lease-break-time (45 s): such an
    open is finished in a thread. Here a helper process holds a read lease and gives it up only
    once another request has been answered."""
    import threading

    (export / "leased").write_text("data")
    (export / "other").write_text("more")
    holder = LeaseHolder(export / "leased")
    rescue = threading.Timer(GUARD / 6, holder.give_up)  # without the fix the loop waits in the open: fail, not hang
    rescue.start()

    async def body() -> None:
        handler = LocalFilesystem(export)
        assert handler.inline  # the export this test runs on is a local one (else nothing to show)
        async with served(handler) as fs:
            other, _ = await fs.walk(fs.root, ["other"])
            await fs.lopen(other, c.P9_RDONLY)
            leased, _ = await fs.walk(fs.root, ["leased"])
            opening = asyncio.ensure_future(fs.lopen(leased, c.P9_WRONLY))  # a write breaks a read lease
            assert await fs.read(other, 0, 4) == b"more"
            answered_while_leased = not holder.given_up
            await asyncio.to_thread(holder.give_up)
            await opening
            assert answered_while_leased

    try:
        run(body)
    finally:
        rescue.cancel()
        holder.close()


def test_a_walk_into_a_file_system_mounted_later_is_made_in_a_thread(export: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """r[9p2000l.server.concurrency]: a local export runs walks on the loop's thread, but what is
    mounted beneath it after the server started (NFS, FUSE, an automount) may wait on the
    network or a daemon when it is looked up: a walk that reaches a mount point is made again
    in a thread (openat2's RESOLVE_NO_XDEV tells it, before the mounted file system is asked).
    Shown with a tmpfs mounted there, and the name's successful lookups recorded by thread."""
    import threading

    if not openat2_available():
        pytest.skip("this kernel has no openat2 (the O_NOFOLLOW walk cannot tell a mount point first)")
    (export / "mnt").mkdir()
    handler = LocalFilesystem(export)
    assert handler.inline  # nothing mounted beneath the export yet
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "jetwire-test", str(export / "mnt")],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount here: {mounted.stderr.strip()}")
    try:
        (export / "mnt" / "inside").write_text("mounted")
        found_on: list[str] = []
        real_open_beneath = localfs._open_beneath

        def recorded(dirfd: int, name: str, *args: Any) -> int:
            fd = real_open_beneath(dirfd, name, *args)
            if name == "mnt":
                found_on.append(threading.current_thread().name)
            return fd

        monkeypatch.setattr(localfs, "_open_beneath", recorded)

        async def body() -> None:
            async with served(handler) as fs:
                fid, _ = await fs.walk(fs.root, ["mnt", "inside"])
                await fs.lopen(fid, c.P9_RDONLY)
                assert await fs.read(fid, 0, 7) == b"mounted"
                await fs.clunk(fid)

        run(body)
        assert found_on and threading.main_thread().name not in found_on, found_on
    finally:
        subprocess.run(["umount", "-l", str(export / "mnt")], check=True)


_LEASE_HOLDER = """
import fcntl, os, signal, sys
signal.signal(signal.SIGIO, signal.SIG_IGN)  # the lease break's notice (else it kills)
fd = os.open(sys.argv[1], os.O_RDONLY)
try:
    fcntl.fcntl(fd, getattr(fcntl, "F_SETLEASE", 1024), fcntl.F_RDLCK)
except OSError as exc:
    print("refused", exc, flush=True)
    sys.exit()
print("held", flush=True)
sys.stdin.readline()
fcntl.fcntl(fd, getattr(fcntl, "F_SETLEASE", 1024), fcntl.F_UNLCK)
print("given up", flush=True)
sys.stdin.readline()
"""


class LeaseHolder:
    """Another process holding a read lease on ``path`` until ``give_up()`` (from any thread)."""

    def __init__(self, path: Path) -> None:
        import threading

        self.process = subprocess.Popen([sys.executable, "-c", _LEASE_HOLDER, str(path)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
        self.lock = threading.Lock()
        self.given_up = False
        assert self.process.stdout is not None
        answer = self.process.stdout.readline()
        if not answer.startswith("held"):
            self.close()
            pytest.skip(f"no leases on this file system: {answer.strip()}")

    def give_up(self) -> None:
        with self.lock:
            if self.given_up:
                return
            self.given_up = True
            assert self.process.stdin is not None and self.process.stdout is not None
            self.process.stdin.write("\n")
            self.process.stdin.flush()
            assert self.process.stdout.readline().startswith("given up")

    def close(self) -> None:
        self.process.kill()
        self.process.wait()


def test_a_create_that_opens_a_leased_file_holds_up_no_other_request(export: Path) -> None:
    """r[9p2000l.server.concurrency]: Tlcreate of a name that exists opens that file, and an
    open that conflicts with another process's lease waits until the lease is given up (up to
    lease-break-time, 45 s): as in Tlopen, that open is finished in a thread. Here a helper
    process holds a read lease and gives it up only once another request has been answered."""
    import threading

    (export / "leased").write_text("data")
    (export / "other").write_text("more")
    holder = LeaseHolder(export / "leased")
    rescue = threading.Timer(GUARD / 6, holder.give_up)  # without the fix the loop waits in the open: fail, not hang
    rescue.start()

    async def body() -> None:
        handler = LocalFilesystem(export)
        assert handler.inline  # the export this test runs on is a local one (else nothing to show)
        async with served(handler) as fs:
            other, _ = await fs.walk(fs.root, ["other"])
            await fs.lopen(other, c.P9_RDONLY)
            directory, _ = await fs.walk(fs.root, [])
            creating = asyncio.ensure_future(fs.lcreate(directory, "leased", c.P9_WRONLY, 0o644))  # breaks the lease
            assert await fs.read(other, 0, 4) == b"more"
            answered_while_leased = not holder.given_up
            await asyncio.to_thread(holder.give_up)
            await creating
            await fs.write(directory, 0, b"DATA")
            assert answered_while_leased
        assert (export / "leased").read_bytes() == b"DATA"

    try:
        run(body)
    finally:
        rescue.cancel()
        holder.close()


@pytest.mark.parametrize("flags", [c.P9_RDONLY, c.P9_WRONLY], ids=["read", "write"])
def test_a_create_of_a_fifo_that_exists_is_refused_at_once(export: Path, flags: int) -> None:
    """r[9p2000l.server.confine.special-files]: Tlcreate of a name that holds a FIFO is
    EOPNOTSUPP, answered at once: opening a FIFO waits for its other end (for ever, were there
    none), so it is opened O_NONBLOCK, never waiting on the loop's thread or in a thread."""
    import threading

    fifo = export / "fifo"
    os.mkfifo(fifo)
    rescued = threading.Event()
    other_end: list[int] = []

    def rescue() -> None:  # without the fix the loop waits in the open: the other end frees it
        rescued.set()
        other_end.append(os.open(fifo, (os.O_WRONLY if flags == c.P9_RDONLY else os.O_RDONLY) | os.O_NONBLOCK))

    timer = threading.Timer(GUARD / 6, rescue)
    timer.start()

    async def body() -> None:
        async with served(LocalFilesystem(export)) as fs:
            directory, _ = await fs.walk(fs.root, [])
            with pytest.raises(OSError) as refused:
                await fs.lcreate(directory, "fifo", flags, 0o644)
            assert refused.value.errno == c.EOPNOTSUPP
            assert not rescued.is_set()

    try:
        run(body)
    finally:
        timer.cancel()
        for fd in other_end:
            os.close(fd)


# -- the command line ------------------------------------------------------------------------------

def test_serve_command_line_stops_cleanly_on_sigterm(export: Path, tmp_path: Path) -> None:
    (export / "hello.txt").write_text("hi")
    sock = tmp_path / "cli.sock"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "jetwire.p9", "serve", str(export), "--listen", f"unix:{sock}",
                             "--listen", "127.0.0.1:0", "--read-only"], stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        while not line.startswith("serving /"):  # after the log lines of each listening socket
            if not line:
                pytest.fail("the server said nothing")
            line = proc.stderr.readline()
        assert f"unix:{sock}" in line and "127.0.0.1:" in line
        out = subprocess.run([sys.executable, "-m", "jetwire.p9", "cat", f"unix:{sock}", "hello.txt"], env=env,
                             capture_output=True, timeout=30)
        assert out.stdout == b"hi"
        put = subprocess.run([sys.executable, "-m", "jetwire.p9", "mkdir", f"unix:{sock}", "new"], env=env,
                             capture_output=True, timeout=30)
        assert put.returncode == 1 and not (export / "new").exists()  # --read-only
        proc.send_signal(signal.SIGTERM)
        rest = proc.communicate(timeout=30)[1]
        assert proc.returncode == 0
        assert rest.count("9P connection") == 2  # one line per connection
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

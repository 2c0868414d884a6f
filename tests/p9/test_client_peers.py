"""jetwire.p9.Client against real 9P2000.L servers nobody here wrote: diod and nfs-ganesha.

Every operation is checked through the host file system (``os.stat``, file contents, link
targets, xattrs), never through the client alone. Where the two servers differ, the test says
what each does (diod lacks Tunlinkat/Trenameat; ganesha sends errors as type 107).
"""

from __future__ import annotations

import asyncio
import errno
import os
import stat
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from peers import Peer

from jetwire.p9 import Client
from jetwire.p9 import constants as c

SERVERS = ["diod", "ganesha"]


@pytest.fixture(params=SERVERS)
def peer(request: pytest.FixtureRequest) -> Peer:
    server: Peer = request.getfixturevalue(request.param)
    assert server.running(), server.log_tail()
    return server


@pytest.fixture
def area(peer: Peer) -> Iterator[tuple[Peer, Path, str]]:
    """A fresh directory in the export for one test: (peer, host path, path for the client)."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    host = peer.export / name
    host.mkdir()
    yield peer, host, name


def run(peer: Peer, body: Callable[[Client], Awaitable[Any]], **options: Any) -> Any:
    """Connects, runs ``body``, checks no fid but the root is left, closes."""

    async def main() -> Any:
        client = await Client.connect(peer.host, peer.port, aname=peer.aname, uname=peer.uname,
                                      n_uname=peer.n_uname, timeout=10, **options)
        try:
            result = await body(client)
            await asyncio.sleep(0.05)  # orphan clunks answered
            assert client.session.fids_in_use == {client.root}, "a fid leaked"
            assert not client.session.pending, "a request is still outstanding"
            return result
        finally:
            await client.close()

    return asyncio.run(asyncio.wait_for(main(), 60))


# -- session ---------------------------------------------------------------------------------------


def test_version_and_attach(peer: Peer) -> None:
    """r[9p2000l.version.msize]: both servers cap msize at 65536; r[9p2000l.attach]: the root qid is a directory."""

    async def body(client: Client) -> tuple[int, int]:
        st = await client.stat("")
        return client.msize, st.qid.type

    msize, qtype = run(peer, body, msize=1 << 20)
    assert msize == 65536
    assert qtype == c.P9_QTDIR


def test_auth_is_refused_then_attach_with_nofid(peer: Peer) -> None:
    """r[9p2000l.auth]: a server that needs no authentication answers Tauth with an error;
    r[9p2000l.frame.nofid]: attaching with afid NOFID then works (Client.connect does)."""

    async def body(client: Client) -> int:
        with pytest.raises(OSError) as info:
            await client.auth(aname=peer.aname, uname="root", n_uname=0)
        second = await client.attach(aname=peer.aname, uname="root", n_uname=0, afid=c.NOFID)
        await client.clunk(second)
        return info.value.errno or 0

    assert run(peer, body) in (errno.ENOENT, errno.EOPNOTSUPP, errno.EINVAL)


def test_unix_socket(tmp_path: Path) -> None:
    """The client speaks over unix sockets too (diod listening on one)."""
    from peers import start_diod

    export = tmp_path / "export"
    export.mkdir()
    (export / "f").write_bytes(b"over a unix socket")
    server = start_diod(export, tmp_path / "w", unix_socket=True)
    try:
        async def main() -> bytes:
            assert server.socket_path is not None
            async with await Client.connect(path=str(server.socket_path), aname=server.aname, n_uname=0) as fs:
                return await fs.read_bytes("f")

        assert asyncio.run(main()) == b"over a unix socket"
    finally:
        server.stop()


# -- reading and writing ---------------------------------------------------------------------------


def test_read_and_write_split_by_msize(area: tuple[Peer, Path, str]) -> None:
    """r[9p2000l.read], r[9p2000l.write], r[9p2000l.version.iounit]: 1 MiB goes in several
    Twrites and comes back in several Treads, none over msize - 24; the host sees every byte."""
    peer, host, name = area
    data = os.urandom(1 << 20) + b"tail"

    async def body(client: Client) -> bytes:
        written = await client.write_bytes(f"{name}/big.bin", data)
        assert written == len(data)
        async with client.fid_of(f"{name}/big.bin") as fid:
            _, iounit = await client.lopen(fid, c.P9_RDONLY)
            chunks = [chunk async for chunk in client.read_chunks(fid, 1000, 100_000, iounit, window=4)]
            assert all(len(chunk) <= client.msize - 24 for chunk in chunks) and len(chunks) > 10
            assert b"".join(chunks) == data[1000:101_000]
            async for chunk in client.read_chunks(fid, 0, None, iounit):  # stopping early is fine
                assert chunk == data[: len(chunk)]
                break
        return await client.read_bytes(f"{name}/big.bin")

    assert run(peer, body, msize=8192 + 24) == data
    assert (host / "big.bin").read_bytes() == data


def test_file_object_modes(area: tuple[Peer, Path, str]) -> None:
    """r[9p2000l.lcreate], r[9p2000l.lopen]: open() in w, a, r, x, r+ modes."""
    peer, host, name = area

    async def body(client: Client) -> tuple[bytes, bytes]:
        async with await client.open(f"{name}/f.txt", "wb") as f:
            await f.write(b"hello ")
        async with await client.open(f"{name}/f.txt", "ab") as f:
            await f.write(b"world")
        async with await client.open(f"{name}/f.txt", "rb") as f:
            head = await f.read(5)
            rest = await f.read()
        with pytest.raises(FileExistsError):
            await client.open(f"{name}/f.txt", "xb")
        async with await client.open(f"{name}/f.txt", "r+b") as f:
            f.seek(6)
            await f.write(b"WORLD")
            await f.fsync()  # r[9p2000l.fsync]
            assert (await f.stat()).st_size == 11
        return head, rest

    assert run(peer, body) == (b"hello", b" world")
    assert (host / "f.txt").read_bytes() == b"hello WORLD"


def test_read_on_directory_is_an_error(area: tuple[Peer, Path, str]) -> None:
    """r[9p2000l.read]: Tread on a directory is EISDIR."""
    peer, _host, name = area

    async def body(client: Client) -> None:
        async with client.fid_of(name) as fid:
            await client.lopen(fid, c.P9_RDONLY | c.P9_DIRECTORY)
            with pytest.raises(IsADirectoryError):
                await client.read(fid, 0, 100)

    run(peer, body)


# -- names ------------------------------------------------------------------------------------------


def test_readdir_lists_everything(area: tuple[Peer, Path, str]) -> None:
    """r[9p2000l.readdir], r[9p2000l.readdir.dirent], r[9p2000l.const.dirent-type]: 300 entries
    take several Treaddirs; each entry's type and qid agree with the host."""
    peer, host, name = area
    for i in range(300):
        (host / f"file-{i:03}-{'x' * 40}").write_bytes(b"")
    (host / "dir").mkdir()
    os.symlink("file-000", host / "link")

    async def body(client: Client) -> list[Any]:
        return await client.scandir(name)

    entries = run(peer, body, msize=4096)
    names = sorted(e.name for e in entries)
    assert names == sorted(os.listdir(host))
    by_name = {e.name: e for e in entries}
    assert by_name["dir"].type == c.DT_DIR and by_name["dir"].qid.type == c.P9_QTDIR
    assert by_name["link"].type == c.DT_LNK and by_name["link"].qid.type == c.P9_QTSYMLINK
    assert by_name["file-000-" + "x" * 40].type == c.DT_REG
    assert by_name["dir"].qid.path == os.stat(host / "dir").st_ino


def test_walk_deeper_than_maxwelem(area: tuple[Peer, Path, str]) -> None:
    """r[9p2000l.walk.max]: a path of 40 names is walked 16 names at a time."""
    peer, host, name = area
    parts = [f"d{i}" for i in range(40)]
    deep = host.joinpath(*parts)
    deep.mkdir(parents=True)
    (deep / "leaf").write_bytes(b"deep")

    async def body(client: Client) -> tuple[bytes, int]:
        fid, qids = await client.walk(client.root or 0, [name, *parts])
        await client.clunk(fid)
        clone, none = await client.walk(client.root or 0, [])  # r[9p2000l.walk.clone]
        assert none == []
        await client.clunk(clone)
        return await client.read_bytes("/".join([name, *parts, "leaf"])), len(qids)

    assert run(peer, body) == (b"deep", 41)


def test_missing_names_raise_filenotfound(area: tuple[Peer, Path, str]) -> None:
    """r[9p2000l.walk.partial]: a walk that fails on a later name creates no fid (the client
    clunks it anyway, since diod creates it); the error is FileNotFoundError."""
    peer, host, name = area
    (host / "a").mkdir()
    (host / "plain").write_bytes(b"")

    async def body(client: Client) -> None:
        with pytest.raises(FileNotFoundError):
            await client.walk(client.root or 0, [name, "a", "missing", "x"])
        with pytest.raises(FileNotFoundError):
            await client.read_bytes("no-such-file")
        with pytest.raises(OSError) as info:  # walking through a file: ENOTDIR (diod) or ENOENT
            await client.mkdir(f"{name}/plain/sub")
        assert info.value.errno in (errno.ENOTDIR, errno.ENOENT)

    run(peer, body)


def test_dotdot_is_refused_by_the_client(area: tuple[Peer, Path, str]) -> None:
    """r[9p2000l.walk.dotdot]: diod lets '..' leave the export, so the client never sends it."""
    peer, _host, _name = area

    async def body(client: Client) -> None:
        with pytest.raises(ValueError, match=r"'\.\.'"):
            await client.read_bytes("../etc/passwd")

    run(peer, body)


def test_names_that_are_not_utf8(area: tuple[Peer, Path, str]) -> None:
    """r[9p2000l.encoding.string]: a Linux name is any bytes; it round-trips as os.fsdecode's str."""
    peer, host, name = area
    raw = b"caf\xe9-\xff"
    with open(os.path.join(os.fsencode(host), raw), "wb") as f:
        f.write(b"latin-1 name")
    created = os.fsdecode(b"new-\xfe\xfd")

    async def body(client: Client) -> tuple[list[str], bytes]:
        listed = await client.listdir(name)
        data = await client.read_bytes(f"{name}/{os.fsdecode(raw)}")
        await client.write_bytes(f"{name}/{created}", b"made")
        return listed, data

    listed, data = run(peer, body)
    assert os.fsdecode(raw) in listed
    assert data == b"latin-1 name"
    assert b"new-\xfe\xfd" in os.listdir(os.fsencode(host))


def test_mkdir_symlink_readlink_link(area: tuple[Peer, Path, str]) -> None:
    """r[9p2000l.mkdir], r[9p2000l.symlink], r[9p2000l.readlink], r[9p2000l.link]."""
    peer, host, name = area
    (host / "target.txt").write_bytes(b"t")

    async def body(client: Client) -> str:
        await client.mkdir(f"{name}/newdir", 0o750)
        with pytest.raises(FileExistsError):
            await client.mkdir(f"{name}/newdir")
        await client.symlink("target.txt", f"{name}/sym")
        await client.link(f"{name}/target.txt", f"{name}/hard")
        return await client.readlink(f"{name}/sym")

    assert run(peer, body) == "target.txt"
    assert stat.S_ISDIR(os.stat(host / "newdir").st_mode)
    assert stat.S_IMODE(os.stat(host / "newdir").st_mode) == 0o750 & ~_umask_of(peer)
    assert os.readlink(host / "sym") == "target.txt"
    assert os.path.samefile(host / "hard", host / "target.txt")
    assert os.stat(host / "target.txt").st_nlink == 2


def _umask_of(peer: Peer) -> int:
    return 0  # both servers create with the mode given (no umask applied by the protocol)


def test_mknod_fifo(area: tuple[Peer, Path, str]) -> None:
    """r[9p2000l.mknod], r[9p2000l.const.mode]: a FIFO made with S_IFIFO|0644."""
    peer, host, name = area

    async def body(client: Client) -> None:
        async with client.fid_of(name) as dfid:
            await client.mknod_at(dfid, "fifo", c.S_IFIFO | 0o644)

    run(peer, body)
    assert stat.S_ISFIFO(os.lstat(host / "fifo").st_mode)


def test_rename_and_renameat(area: tuple[Peer, Path, str]) -> None:
    """r[9p2000l.renameat]: diod lacks Trenameat (EOPNOTSUPP) and the client falls back to
    r[9p2000l.rename] Trename, as Linux does; ganesha implements it."""
    peer, host, name = area
    (host / "old").write_bytes(b"moved")
    (host / "sub").mkdir()

    async def body(client: Client) -> int | None:
        async with client.fid_of(name) as dfid:
            try:
                await client.renameat(dfid, "old", dfid, "direct")
                direct = None
            except OSError as exc:
                direct = exc.errno
        await client.rename(f"{name}/{'direct' if direct is None else 'old'}", f"{name}/sub/new")
        return direct

    direct = run(peer, body)
    assert direct == (errno.EOPNOTSUPP if peer.name == "diod" else None)
    assert (host / "sub" / "new").read_bytes() == b"moved"
    assert not (host / "old").exists()


def test_remove_unlinkat(area: tuple[Peer, Path, str]) -> None:
    """r[9p2000l.unlinkat], r[9p2000l.const.at-flags], r[9p2000l.remove]: files and empty
    directories go; a non-empty directory is ENOTEMPTY; Tremove clunks its fid either way."""
    peer, host, name = area
    (host / "f").write_bytes(b"")
    (host / "d").mkdir()
    (host / "full").mkdir()
    (host / "full" / "x").write_bytes(b"")

    async def body(client: Client) -> int | None:
        async with client.fid_of(name) as dfid:
            try:
                await client.unlinkat(dfid, "f", 0)
                unlinkat = None
            except OSError as exc:
                unlinkat = exc.errno
        await client.remove_path(f"{name}/d")
        if unlinkat is not None:
            await client.remove_path(f"{name}/f")
        with pytest.raises(OSError) as info:
            await client.remove_path(f"{name}/full")
        assert info.value.errno == errno.ENOTEMPTY
        fid, _ = await client.walk(client.root or 0, [name, "full", "x"])
        if peer.name == "ganesha":  # ganesha 4.3 answers Tremove of a file with ENOENT
            with pytest.raises(FileNotFoundError):
                await client.remove(fid)  # the fid is clunked all the same: run() checks
        else:
            await client.remove(fid)  # clunks fid: the leak check in run() proves it
        return unlinkat

    unlinkat = run(peer, body)
    assert unlinkat == (errno.EOPNOTSUPP if peer.name == "diod" else None)
    assert sorted(os.listdir(host)) == ["full"]
    assert os.listdir(host / "full") == ([] if peer.name == "diod" else ["x"])


# -- attributes -------------------------------------------------------------------------------------


def test_getattr_matches_host_stat(area: tuple[Peer, Path, str]) -> None:
    """r[9p2000l.getattr], r[9p2000l.const.getattr-mask], r[9p2000l.encoding.qid]."""
    peer, host, name = area
    (host / "f").write_bytes(b"x" * 5000)
    os.utime(host / "f", ns=(1_600_000_000_123_456_789, 1_700_000_000_987_654_321))

    async def body(client: Client) -> Any:
        async with client.fid_of(f"{name}/f") as fid:
            return await client.getattr(fid, c.P9_GETATTR_ALL)

    reply = run(peer, body)
    st = os.stat(host / "f")
    assert reply.valid & c.P9_GETATTR_BASIC == c.P9_GETATTR_BASIC
    assert (reply.mode, reply.size, reply.nlink, reply.uid, reply.gid) == (st.st_mode, 5000, 1, st.st_uid, st.st_gid)
    assert reply.qid.path == st.st_ino and reply.qid.type == c.P9_QTFILE
    assert (reply.mtime_sec, reply.mtime_nsec) == (1_700_000_000, 987_654_321)
    assert (reply.atime_sec, reply.atime_nsec) == (1_600_000_000, 123_456_789)
    if peer.name == "diod":  # ganesha sends size // 512, not the blocks allocated
        assert reply.blocks == st.st_blocks


def test_setattr_chmod_truncate_times(area: tuple[Peer, Path, str]) -> None:
    """r[9p2000l.setattr], r[9p2000l.const.setattr-valid]: MODE, SIZE, and times with *_SET."""
    peer, host, name = area
    (host / "f").write_bytes(b"0123456789")

    async def body(client: Client) -> None:
        await client.chmod(f"{name}/f", 0o600)
        await client.truncate(f"{name}/f", 4)
        async with client.fid_of(f"{name}/f") as fid:
            valid = c.P9_SETATTR_ATIME | c.P9_SETATTR_ATIME_SET | c.P9_SETATTR_MTIME | c.P9_SETATTR_MTIME_SET
            await client.setattr(fid, valid, atime_sec=1_000_000_000, atime_nsec=5,
                                 mtime_sec=1_200_000_000, mtime_nsec=7)

    run(peer, body)
    st = os.stat(host / "f")
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert (host / "f").read_bytes() == b"0123"
    assert st.st_mtime_ns == 1_200_000_000_000_000_007
    assert st.st_atime_ns == 1_000_000_000_000_000_005


def test_statfs_matches_host(area: tuple[Peer, Path, str]) -> None:
    """r[9p2000l.statfs]: block size, totals and name length as statvfs(2) sees them."""
    peer, host, name = area

    async def body(client: Client) -> Any:
        return await client.statvfs(name)

    reply = run(peer, body)
    vfs = os.statvfs(host)
    assert reply.bsize * reply.blocks == vfs.f_frsize * vfs.f_blocks  # ganesha counts in bytes (bsize 1)
    assert reply.namelen == vfs.f_namemax
    assert reply.files == vfs.f_files


def test_xattrs(area: tuple[Peer, Path, str]) -> None:
    """r[9p2000l.xattrwalk], r[9p2000l.xattrcreate], r[9p2000l.const.xattr-flags]: set through
    the protocol, read on the host, and back; a missing attribute is ENODATA."""
    peer, host, name = area
    (host / "f").write_bytes(b"")
    try:
        os.setxattr(host / "f", "user.probe", b"1")
    except OSError as exc:
        pytest.fail(f"the test export does not support user xattrs here: {exc}")
    os.setxattr(host / "f", "user.host", b"from host")

    async def body(client: Client) -> tuple[bytes, list[str]]:
        path = f"{name}/f"
        await client.setxattr(path, "user.client", b"from client \x00\xff")
        with pytest.raises(OSError) as info:
            await client.setxattr(path, "user.client", b"again", flags=c.XATTR_CREATE)
        assert info.value.errno == errno.EEXIST
        with pytest.raises(OSError) as missing:
            await client.getxattr(path, "user.missing")
        assert missing.value.errno == errno.ENODATA
        return await client.getxattr(path, "user.host"), await client.listxattr(path)

    value, names = run(peer, body)
    assert value == b"from host"
    assert os.getxattr(host / "f", "user.client") == b"from client \x00\xff"
    assert {"user.host", "user.client", "user.probe"} <= set(names)


def test_locks(area: tuple[Peer, Path, str]) -> None:
    """r[9p2000l.lock], r[9p2000l.getlock], r[9p2000l.const.lock]: a write lock is granted and
    reported by Tgetlock from another fid; unlocking works."""
    peer, host, name = area
    (host / "f").write_bytes(b"data")

    async def body(client: Client) -> tuple[int, int, int]:
        async with await client.open(f"{name}/f", "r+b") as f:
            granted = await client.lock(f.fid, c.P9_LOCK_TYPE_WRLCK, 0, 0, proc_id=1234)
            probe = await client.getlock(f.fid, c.P9_LOCK_TYPE_WRLCK, 0, 0, proc_id=1234)
            released = await client.lock(f.fid, c.P9_LOCK_TYPE_UNLCK, 0, 0, proc_id=1234)
            return granted, probe.type, released

    if peer.name == "ganesha":  # a 9P-only ganesha (no NLM) refuses every Tlock with EINVAL
        with pytest.raises(OSError) as info:
            run(peer, body)
        assert info.value.errno == errno.EINVAL
        return
    granted, probe_type, released = run(peer, body)
    assert granted == c.P9_LOCK_SUCCESS
    assert released == c.P9_LOCK_SUCCESS
    assert probe_type in (c.P9_LOCK_TYPE_UNLCK, c.P9_LOCK_TYPE_WRLCK)


def test_walk_tree(area: tuple[Peer, Path, str]) -> None:
    """The os.walk-shaped helper visits every directory once."""
    peer, host, name = area
    (host / "a" / "b").mkdir(parents=True)
    (host / "a" / "f1").write_bytes(b"")
    (host / "a" / "b" / "f2").write_bytes(b"")

    async def body(client: Client) -> list[tuple[str, list[str], list[str]]]:
        return [(p, sorted(d), sorted(f)) async for p, d, f in client.walk_tree(name)]

    assert run(peer, body) == [
        (name, ["a"], []),
        (f"{name}/a", ["b"], ["f1"]),
        (f"{name}/a/b", [], ["f2"]),
    ]


def test_flush_of_finished_request(area: tuple[Peer, Path, str]) -> None:
    """r[9p2000l.flush]: flushing a tag that is not outstanding is a no-op for the client;
    cancelling an in-flight request leaves no tag or fid behind (run() checks)."""
    peer, host, name = area
    (host / "f").write_bytes(os.urandom(200_000))

    async def body(client: Client) -> None:
        await client.flush(1234)
        task = asyncio.ensure_future(client.read_bytes(f"{name}/f"))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.2)

    run(peer, body)


def test_pipelined_getattr(area: tuple[Peer, Path, str]) -> None:
    """r[9p2000l.frame.tag]: 64 requests in flight on one connection, each answered by tag."""
    peer, host, name = area
    for i in range(8):
        (host / f"f{i}").write_bytes(b"x" * i)

    async def body(client: Client) -> list[int]:
        fids = [(await client.walk(client.root or 0, [name, f"f{i}"]))[0] for i in range(8)]
        try:
            replies = await asyncio.gather(*(client.getattr(fids[i % 8]) for i in range(64)))
            return [r.size for r in replies]
        finally:
            for fid in fids:
                await client.clunk(fid)

    assert run(peer, body) == [i % 8 for i in range(64)]


def test_cli(area: tuple[Peer, Path, str], capsys: pytest.CaptureFixture[str]) -> None:
    """python -m jetwire.p9: ls, cat, put, stat, mkdir, rm against a real server."""
    import io
    import sys

    from jetwire.p9.__main__ import main

    peer, host, name = area
    (host / "hello.txt").write_bytes(b"hello\n")
    address = f"{peer.host}:{peer.port}{peer.aname}"
    common = ["--n-uname", "0"]
    assert main(["ls", address, name, *common]) == 0
    assert capsys.readouterr().out.split() == ["hello.txt"]
    assert main(["mkdir", address, f"{name}/d", *common]) == 0
    assert (host / "d").is_dir()
    old_stdin = sys.stdin
    sys.stdin = io.TextIOWrapper(io.BytesIO(b"put me"))
    try:
        assert main(["put", address, f"{name}/d/p", *common]) == 0
    finally:
        sys.stdin = old_stdin
    assert (host / "d" / "p").read_bytes() == b"put me"
    assert main(["stat", address, f"{name}/d/p", *common]) == 0
    assert "size 6" in capsys.readouterr().out
    assert main(["rm", address, f"{name}/d/p", *common]) == 0
    assert not (host / "d" / "p").exists()
    assert main(["cat", address, f"{name}/missing", *common]) == 1
    assert "No such file or directory" in capsys.readouterr().err


def test_unknown_message_type_does_not_hang_the_client(peer: Peer) -> None:
    """r[9p2000l.frame.unknown-type]: diod drops the connection, ganesha answers nothing; either
    way the client's next call ends clearly (ConnectionError) or works, and never hangs."""

    async def main() -> str:
        client = await Client.connect(peer.host, peer.port, aname=peer.aname, uname=peer.uname,
                                      n_uname=peer.n_uname, timeout=3)
        try:
            unknown = (7 + 4).to_bytes(4, "little") + bytes([98]) + (1234).to_bytes(2, "little") + bytes(4)
            assert client._transport is not None
            client._transport.write(unknown)
            try:
                await client.getattr(client.root or 0)
                return "kept"
            except ConnectionError:
                return "dropped"
        finally:
            await client.close()

    outcome = asyncio.run(asyncio.wait_for(main(), 20))
    assert outcome == ("dropped" if peer.name == "diod" else "kept")


def test_readdir_with_a_count_too_small(area: tuple[Peer, Path, str]) -> None:
    """r[9p2000l.readdir.small-count]: a count too small for the next entry should be EINVAL;
    diod answers an empty Rreaddir, which would read as "end of directory". The client never
    asks for less than msize - 24 (room for any entry), so its listings stay whole."""
    from jetwire.p9 import Treaddir

    peer, host, name = area
    (host / ("n" * 200)).write_bytes(b"")

    async def body(client: Client) -> tuple[int | None, list[str]]:
        async with client.fid_of(name) as fid:
            await client.lopen(fid, c.P9_RDONLY | c.P9_DIRECTORY)
            try:
                reply = await client._call(Treaddir(fid=fid, offset=0, count=10))
                tiny: int | None = len(reply.data)
            except OSError as exc:
                tiny = -(exc.errno or 0)
        assert client.session.io_size() >= 24 + 255
        return tiny, await client.listdir(name)

    tiny, listed = run(peer, body, msize=4096)
    if peer.name == "diod":
        assert tiny == 0  # the flaw the spec records
    else:
        assert tiny == -errno.EIO  # ganesha refuses it, with EIO rather than EINVAL
    assert listed == ["n" * 200]


def test_pathlib_shaped_api(area: tuple[Peer, Path, str]) -> None:
    """client.path(...): the pathlib shape (read/write, iterdir, walk, mkdir(parents), rename,
    symlink_to, hardlink_to, readlink, unlink, rmdir, remove), checked on the host."""
    peer, host, name = area

    async def body(client: Client) -> list[tuple[str, list[str], list[str]]]:
        top = client.path(name)
        deep = top / "a" / "b"
        await deep.mkdir(parents=True)
        await deep.mkdir(exist_ok=True)
        with pytest.raises(FileExistsError):
            await deep.mkdir()
        note = deep / "note.txt"
        assert await note.write_text("héllo") == 6
        assert await note.read_text() == "héllo"
        assert (await note.stat()).st_size == 6 and not await note.is_dir() and await deep.is_dir()
        await (top / "link").symlink_to("a/b/note.txt")
        assert await (top / "link").readlink() == "a/b/note.txt"
        await (top / "hard").hardlink_to(note)
        moved = await note.rename(top / "a" / "moved.txt")
        assert str(moved) == f"{name}/a/moved.txt" and moved.name == "moved.txt" and moved.parent == top / "a"
        assert not await note.exists() and await moved.exists()
        assert sorted(p.name for p in await top.iterdir()) == ["a", "hard", "link"]
        tree = [(str(p), sorted(d), sorted(f)) async for p, d, f in top.walk()]
        await (top / "hard").unlink()
        await (top / "gone").unlink(missing_ok=True)
        await deep.rmdir()
        await (top / "link").remove()
        return tree

    tree = run(peer, body)
    assert tree == [(name, ["a"], ["hard", "link"]), (f"{name}/a", ["b"], ["moved.txt"]), (f"{name}/a/b", [], [])]
    assert sorted(os.listdir(host)) == ["a"] and os.listdir(host / "a") == ["moved.txt"]
    assert (host / "a" / "moved.txt").read_text() == "héllo"


def test_unlink_and_rmdir_keep_their_meaning(area: tuple[Peer, Path, str]) -> None:
    """``rmdir`` of a file and ``unlink`` of an empty directory fail as ``os`` does (errno and
    filename) and remove nothing, on diod too, where Tunlinkat is missing and the client falls
    back to Tremove (which removes whatever its fid names)."""
    peer, host, name = area
    (host / "afile").write_bytes(b"keep me")
    (host / "adir").mkdir()
    (host / "alink").symlink_to("adir")

    async def body(client: Client) -> list[tuple[type[OSError], int | None, str | None]]:
        failures = []
        for attempt in (client.path(name, "afile").rmdir(), client.path(name, "adir").unlink(),
                        client.path(name, "alink").rmdir(), client.remove_path(f"{name}/adir", directory=False)):
            with pytest.raises(OSError) as info:
                await attempt
            failures.append((type(info.value), info.value.errno, info.value.filename))
        await client.path(name, "alink").unlink()  # the link goes, not the directory it names
        return failures

    failures = run(peer, body)
    assert failures == [
        (NotADirectoryError, errno.ENOTDIR, f"{name}/afile"),
        (IsADirectoryError, errno.EISDIR, f"{name}/adir"),
        (NotADirectoryError, errno.ENOTDIR, f"{name}/alink"),
        (IsADirectoryError, errno.EISDIR, f"{name}/adir"),
    ]
    assert (host / "afile").read_bytes() == b"keep me"
    assert (host / "adir").is_dir() and not (host / "alink").is_symlink()


def test_pathlib_queries_follow_symlinks_as_pathlib_does(area: tuple[Peer, Path, str]) -> None:
    """is_file/is_dir/exists/stat follow a symlink (inside the export), is_symlink/lstat do not;
    the times are os.stat's. Every answer is compared with the host's own pathlib."""
    peer, host, name = area
    (host / "f.txt").write_bytes(b"12345")
    (host / "d").mkdir()
    links = {"to_f": "f.txt", "to_d": "d", "dangling": "nothing", "loop": "loop", "chain": "to_f",
             "up": "../" + name + "/f.txt"}
    for link, target in links.items():
        (host / link).symlink_to(target)
    (host / "d" / "rel").symlink_to("../f.txt")
    names = ["f.txt", "d", "missing", "f.txt/under", "d/rel", *links]

    async def body(client: Client) -> dict[str, tuple[bool, bool, bool, bool]]:
        answers = {}
        for n in names:
            p = client.path(name, n)
            answers[n] = (await p.exists(), await p.is_file(), await p.is_dir(), await p.is_symlink())
        outside = client.path(name, "outside")
        await outside.symlink_to("/etc/hostname")  # absolute: the client cannot follow it in the export
        assert not await outside.exists() and await outside.is_symlink()
        with pytest.raises(FileNotFoundError):
            await outside.stat()
        with pytest.raises(OSError) as loop:
            await client.path(name, "loop").stat()
        assert loop.value.errno == errno.ELOOP
        st, lst = await client.path(name, "chain").stat(), await client.path(name, "chain").lstat()
        host_st, host_lst = os.stat(host / "chain"), os.lstat(host / "chain")
        for ours, theirs in ((st, host_st), (lst, host_lst)):
            assert (ours.st_mode, ours.st_size, ours.st_ino) == (theirs.st_mode, theirs.st_size, theirs.st_ino)
            assert (ours.st_atime_ns, ours.st_ctime_ns) == (theirs.st_atime_ns, theirs.st_ctime_ns)
            assert (ours.st_atime, ours.st_ctime) == (theirs.st_atime_ns / 1e9, theirs.st_ctime_ns / 1e9)
        assert await client.path(name, "to_f").samefile(client.path(name, "f.txt"))
        return answers

    answers = run(peer, body)
    for n in names:
        p = host / n
        assert answers[n] == (p.exists(), p.is_file(), p.is_dir(), p.is_symlink()), n


def test_touch_glob_replace_rmtree(area: tuple[Peer, Path, str]) -> None:
    peer, host, name = area
    (host / "old.txt").write_bytes(b"old")
    os.utime(host / "old.txt", (1_000_000, 1_000_000))
    tree = ["a/x.py", "a/b/y.py", "a/b/c/z.txt", "a/.hidden.py", "top.py", "a/b/c/deep.py"]
    for rel in tree:
        (host / rel).parent.mkdir(parents=True, exist_ok=True)
        (host / rel).write_bytes(rel.encode())
    keep = host.parent / f"{name}-keep"  # a directory outside the tree, linked from inside it
    keep.mkdir()
    (keep / "precious").write_bytes(b"x")
    (host / "a" / "b" / "link").symlink_to(keep)
    patterns = ["*.py", "a/*", "a/*/*.py", "**/*.py", "**", "a/**/c", "a/b/c/z.txt", "nothing/*", "*/b"]
    expected = {p: sorted(str(q.relative_to(host)) for q in host.glob(p)) for p in patterns}
    expected["rglob"] = sorted(str(q.relative_to(host)) for q in host.rglob("*.txt"))

    async def body(client: Client) -> dict[str, list[str]]:
        top = client.path(name)
        found = {}  # globbed first, from the tree `expected` saw (on 3.13 "**" lists files too)
        for pattern in patterns:
            found[pattern] = sorted([str(p.relative_to(top)) async for p in top.glob(pattern)])
        found["rglob"] = sorted([str(p.relative_to(top)) async for p in top.rglob("*.txt")])
        await (top / "new").touch()
        await (top / "old.txt").touch()
        with pytest.raises(FileExistsError) as exists:
            await (top / "old.txt").touch(exist_ok=False)
        assert exists.value.filename == f"{name}/old.txt"
        (host / "dst").write_bytes(b"replaced")
        moved = await (top / "old.txt").replace(top / "dst")
        assert moved == top / "dst"
        with pytest.raises(OSError, match="symbolic link"):
            await (top / "a" / "b" / "link").rmtree()
        with pytest.raises(FileNotFoundError):
            await (top / "gone").rmtree()
        await (top / "gone").rmtree(ignore_errors=True)
        await (top / "a").rmtree()
        return found

    found = run(peer, body)
    assert (host / "new").read_bytes() == b"" and (host / "dst").read_bytes() == b"old"
    assert os.stat(host / "dst").st_mtime > 1_000_000  # touched
    assert not (host / "a").exists() and (keep / "precious").read_bytes() == b"x"  # the link was not followed
    assert found == expected
    assert found["**/*.py"] == ["a/.hidden.py", "a/b/c/deep.py", "a/b/y.py", "a/x.py", "top.py"]


def test_rename_link_symlink_errors_name_both_paths_as_os(area: tuple[Peer, Path, str]) -> None:
    """Whichever request fails (a walk, Trenameat, or diod's Trename fallback), the error is
    os's: the same errno and both names. Rename keeps its meaning through the fallback."""
    peer, host, name = area
    (host / "f").write_bytes(b"x")
    (host / "d").mkdir()
    (host / "e").mkdir()
    (host / "e" / "x").write_bytes(b"")
    cases = [("rename", "f", "d"), ("rename", "d", "f"), ("rename", "d", "e"), ("rename", "nope", "z"),
             ("rename", "f", "no/z"), ("link", "nope", "z"), ("link", "f", "d"), ("symlink", "t", "f")]

    def host_error(call: str, src: str, dst: str) -> tuple[int | None, str | None, str | None]:
        os_call = {"rename": os.rename, "link": os.link, "symlink": os.symlink}[call]
        with pytest.raises(OSError) as info:
            os_call(src if call == "symlink" else host / src, host / dst)
        error = info.value
        return error.errno, error.filename and Path(error.filename).name, error.filename2 and Path(error.filename2).name

    expected = [host_error(*case) for case in cases]

    async def body(client: Client) -> list[tuple[int | None, str | None, str | None]]:
        ours = []
        for call, src, dst in cases:
            with pytest.raises(OSError) as info:
                if call == "rename":
                    await client.rename(f"{name}/{src}", f"{name}/{dst}")
                elif call == "link":
                    await client.link(f"{name}/{src}", f"{name}/{dst}")
                else:
                    await client.symlink(src, f"{name}/{dst}")
            error = info.value
            ours.append((error.errno, error.filename and Path(error.filename).name,
                         error.filename2 and Path(error.filename2).name))
        return ours

    assert run(peer, body) == expected
    assert sorted(os.listdir(host)) == ["d", "e", "f"]


@pytest.mark.parametrize("mode", ["wb", "ab", "xb", "rb"])
def test_open_and_write_bytes_mean_what_os_open_does(area: tuple[Peer, Path, str], mode: str) -> None:
    """open(name, mode) on a file, a directory, symlinks to each and a dangling symlink leaves the
    same files and raises the same errors as the host's open. nfs-ganesha ignores O_TRUNC and
    O_EXCL, opens a directory for writing and opens a symlink itself rather than its target: the
    client truncates with Tsetattr and checks and follows before opening, as Linux's v9fs does."""
    peer, host, name = area
    names = ["f", "d", "lf", "ld", "dangling"]

    def make(case: str) -> Path:  # a fresh directory per case: ganesha caches what it has seen
        top = host / case
        top.mkdir()
        (top / "f").write_bytes(b"old contents")
        (top / "d").mkdir()
        (top / "lf").symlink_to("f")
        (top / "ld").symlink_to("d")
        (top / "dangling").symlink_to("target")
        return top

    def state(top: Path) -> list[tuple[str, bytes | None]]:
        return sorted((p.name, p.read_bytes() if p.is_file() else None) for p in top.iterdir())

    expected = {}
    for n in names:
        top = make(f"host-{n}")
        try:
            with open(top / n, mode) as f:
                f.read() if mode == "rb" else f.write(b"new")
            outcome: type[BaseException] | None = None
        except OSError as exc:
            outcome = type(exc)
        expected[n] = (outcome, state(top))
        make(f"ours-{n}")

    async def body(client: Client) -> dict[str, type[BaseException] | None]:
        outcomes: dict[str, type[BaseException] | None] = {}
        for n in names:
            try:
                async with await client.open(f"{name}/ours-{n}/{n}", mode) as f:
                    await (f.read() if mode == "rb" else f.write(b"new"))
                outcomes[n] = None
            except OSError as exc:
                outcomes[n] = type(exc)
        if mode == "wb":  # write_bytes is open "wb" + write
            await client.write_bytes(f"{name}/ours-f/lf", b"again")
        return outcomes

    outcomes = run(peer, body)
    if mode == "wb":
        (host / "host-f" / "lf").write_bytes(b"again")
        expected["f"] = (expected["f"][0], state(host / "host-f"))
    assert {n: (outcomes[n], state(host / f"ours-{n}")) for n in names} == expected


def test_path_calls_follow_symlinks_and_fail_as_os(area: tuple[Peer, Path, str]) -> None:
    """chmod, truncate, listdir, getxattr follow a symlink as os does (diod follows it itself,
    nfs-ganesha does not); listing a file, hard-linking a directory and the rest fail with os's
    errno (nfs-ganesha would say EINVAL for the first two). Files are compared on the host."""
    peer, host, name = area
    calls: dict[str, tuple[Callable[[Path], Any], Callable[[Client, str], Awaitable[Any]]]] = {
        "chmod lf": (lambda d: os.chmod(d / "lf", 0o600), lambda c, n: c.chmod(f"{n}/lf", 0o600)),
        "truncate lf": (lambda d: os.truncate(d / "lf", 3), lambda c, n: c.truncate(f"{n}/lf", 3)),
        "listdir ld": (lambda d: sorted(os.listdir(d / "ld")), lambda c, n: c.listdir(f"{n}/ld")),
        "listdir f": (lambda d: os.listdir(d / "f"), lambda c, n: c.listdir(f"{n}/f")),
        "readlink f": (lambda d: os.readlink(d / "f"), lambda c, n: c.readlink(f"{n}/f")),
        "mkdir f/x": (lambda d: os.mkdir(d / "f" / "x"), lambda c, n: c.mkdir(f"{n}/f/x")),
        "link d": (lambda d: os.link(d / "d", d / "d2"), lambda c, n: c.link(f"{n}/d", f"{n}/d2")),
        "getxattr lf": (lambda d: os.getxattr(d / "lf", "user.none"), lambda c, n: c.getxattr(f"{n}/lf", "user.none")),
    }

    def make(case: str) -> Path:  # a fresh directory per case: ganesha caches what it has seen
        top = host / case
        top.mkdir()
        (top / "f").write_bytes(b"old contents")
        os.chmod(top / "f", 0o644)
        (top / "d").mkdir()
        (top / "d" / "x").write_bytes(b"")
        (top / "lf").symlink_to("f")
        (top / "ld").symlink_to("d")
        return top

    def state(top: Path) -> list[tuple[str, bytes | None, int]]:
        return sorted((p.relative_to(top).as_posix(), p.read_bytes() if p.is_file() and not p.is_symlink() else None,
                       p.lstat().st_mode) for p in top.rglob("*"))

    def outcome(result: Any) -> tuple[Any, ...]:
        if isinstance(result, OSError):
            return type(result), result.errno
        return ("ok", sorted(result) if isinstance(result, list) else None)

    expected = {}
    for i, (label, (host_call, _)) in enumerate(calls.items()):
        top = make(f"host{i}")
        try:
            result = host_call(top)
        except OSError as exc:
            result = exc
        expected[label] = (outcome(result), state(top))
        make(f"ours{i}")

    async def body(client: Client) -> dict[str, tuple[Any, ...]]:
        outcomes = {}
        for i, (label, (_, our_call)) in enumerate(calls.items()):
            try:
                result = await our_call(client, f"{name}/ours{i}")
            except OSError as exc:
                result = exc
                if label == "getxattr lf":
                    assert exc.filename == f"{name}/ours{i}/lf"  # the path given, as os names it
            outcomes[label] = outcome(result)
        return outcomes

    outcomes = run(peer, body)
    assert {label: (outcomes[label], state(host / f"ours{i}")) for i, label in enumerate(calls)} == expected

"""The server's quick paths (issue 13, speed) answer exactly what the slow ones answer: a call
that never waits is answered without a task, the replies of one batch of requests leave in one
write, and ``LocalFilesystem``'s system calls on the loop's thread (a local export only; reads
through ``RWF_NOWAIT`` with the rest in a thread) give the same bytes as the threads. Rule ids:
../shared/spec/9p2000L.md, "Server behaviour"."""

from __future__ import annotations

import asyncio
import contextvars
import errno
import os
from pathlib import Path
from typing import Any

import pytest
from test_server_hostile import Raw, run

from jetwire.p9 import Rgetattr, Rread, Tgetattr, Tlopen, Tread, Twalk, Twrite, localfs
from jetwire.p9 import constants as c
from jetwire.p9.localfs import LocalFilesystem, local_calls_inline
from jetwire.p9.serving import Server, serve


async def walked_to_f(server: Server) -> Raw:
    """A raw connection, attached as fid 0, with fid 1 walked to ``f``."""
    raw = await Raw.connect(server)
    await raw.start()
    raw.send((2, Twalk(fid=0, newfid=1, wnames=["f"])))
    await raw.replies(1)
    return raw


def record_writes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every ``StreamWriter`` write in this process from here until ``monkeypatch.undo()``, in
    order: ``("write", its bytes)`` or ``("writelines", its buffers)``."""
    writes: list[tuple[str, int]] = []
    real_write, real_writelines = asyncio.StreamWriter.write, asyncio.StreamWriter.writelines

    def write(self: asyncio.StreamWriter, data: Any) -> None:
        writes.append(("write", len(data)))
        real_write(self, data)

    def writelines(self: asyncio.StreamWriter, data: Any) -> None:
        data = list(data)
        writes.append(("writelines", len(data)))
        real_writelines(self, data)

    monkeypatch.setattr(asyncio.StreamWriter, "write", write)
    monkeypatch.setattr(asyncio.StreamWriter, "writelines", writelines)
    return writes


def frames_in(writes: list[tuple[str, int]]) -> int:
    """How many frames ``writes`` carried: the server writes a frame alone or frames in writelines."""
    return sum(1 if kind == "write" else n for kind, n in writes)


def test_a_batch_of_pipelined_requests_is_answered_in_a_few_writes(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """r[9p2000l.server.concurrency]: 32 Tgetattr sent at once get their 32 replies, in few writes
    (one per batch of frames read), each reply its own frame with its own tag."""
    (tmp_path / "f").write_text("x")

    async def body() -> None:
        server = await serve(LocalFilesystem(tmp_path), "127.0.0.1:0")
        try:
            raw = await walked_to_f(server)
            raw.send(*((tag, Tgetattr(fid=1, request_mask=c.P9_GETATTR_BASIC)) for tag in range(10, 42)))
            writes = record_writes(monkeypatch)  # the server's writes from here
            replies = await raw.replies(32)
            monkeypatch.undo()
            assert sorted(r.tag for r in replies) == list(range(10, 42))
            assert all(isinstance(r.msg, Rgetattr) and r.msg.size == 1 for r in replies)
            assert frames_in(writes) == 32 and len(writes) <= 4, writes  # the client wrote them in one segment
            raw.writer.close()
        finally:
            await server.close()

    run(body)


def test_large_replies_leave_one_by_one_without_waiting_for_the_batch(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Rreads of 16 KiB and more are written as each is made, so that the client works on the
    first while the server reads the next; the small replies of the same batch are batched."""
    data = os.urandom(4 * 20_000)
    (tmp_path / "f").write_bytes(data)

    async def body() -> None:
        server = await serve(LocalFilesystem(tmp_path), "127.0.0.1:0")
        try:
            raw = await walked_to_f(server)
            raw.send((3, Tlopen(fid=1, flags=c.P9_RDONLY)))
            await raw.replies(1)
            raw.send(*((10 + i, Tread(fid=1, offset=i * 20_000, count=20_000)) for i in range(4)),
                     *((20 + i, Tgetattr(fid=1, request_mask=c.P9_GETATTR_BASIC)) for i in range(4)))
            writes = record_writes(monkeypatch)  # the server's writes from here
            replies = {r.tag: r.msg for r in await raw.replies(8)}
            monkeypatch.undo()
            assert b"".join(replies[10 + i].data for i in range(4)) == data
            assert writes[:4] == [("write", 20_000 + 11)] * 4, writes  # each Rread frame on its own
            assert len(writes) <= 6 and frames_in(writes) == 8, writes
            raw.writer.close()
        finally:
            await server.close()

    run(body)


def test_a_handler_that_fails_before_waiting_is_answered_eio(tmp_path: Path) -> None:
    """r[9p2000l.server.errors]: a bug in a method's first step (before any await) is EIO for
    that call; the connection goes on."""
    (tmp_path / "f").write_text("x")

    class Broken(LocalFilesystem):
        async def getattr(self, msg: Any, fid: Any) -> Any:
            raise KeyError("a bug")

    async def body() -> None:
        server = await serve(Broken(tmp_path), "127.0.0.1:0")
        try:
            raw = await walked_to_f(server)
            raw.send((3, Tgetattr(fid=1, request_mask=1)), (4, Twalk(fid=0, newfid=2, wnames=["f"])))
            failed, walked = await raw.replies(2)
            assert (failed.tag, failed.msg.ecode) == (3, c.EIO)
            assert walked.tag == 4 and len(walked.msg.wqids) == 1
            raw.writer.close()
        finally:
            await server.close()

    run(body)


def test_a_call_that_waits_after_its_first_step_is_answered_and_can_be_cancelled(tmp_path: Path) -> None:
    """A method run up to its first await goes on in a task from there (its result, and a
    cancellation when the server closes, reach the coroutine)."""
    (tmp_path / "f").write_text("x")
    gate = asyncio.Event()
    reached: list[str] = []

    class Waits(LocalFilesystem):
        async def getattr(self, msg: Any, fid: Any) -> Any:
            reached.append("first step")
            await asyncio.sleep(0)
            reached.append("after a turn")
            if msg.request_mask == 2:
                try:
                    await gate.wait()
                except asyncio.CancelledError:
                    reached.append("cancelled")
                    raise
            return await super().getattr(msg, fid)

    async def body() -> None:
        server = await serve(Waits(tmp_path), "127.0.0.1:0")
        raw = await walked_to_f(server)
        raw.send((3, Tgetattr(fid=1, request_mask=c.P9_GETATTR_BASIC)))
        (answered,) = await raw.replies(1)
        assert isinstance(answered.msg, Rgetattr) and answered.msg.size == 1
        raw.send((4, Tgetattr(fid=1, request_mask=2)), (5, Tgetattr(fid=1, request_mask=2)))
        while reached.count("after a turn") < 3:
            await asyncio.sleep(0.01)
        (connection,) = server.connections
        assert len(connection.tasks) == 2  # the two held calls, each in the task that took it over
        next(iter(connection.tasks)).cancel()
        while "cancelled" not in reached:
            await asyncio.sleep(0.01)
        gate.set()
        (answered,) = await raw.replies(1)
        assert answered.tag in (4, 5) and isinstance(answered.msg, Rgetattr)
        raw.writer.close()
        await server.close()

    run(body)


# -- LocalFilesystem on the loop's thread -----------------------------------------------------------

def test_inline_calls_only_on_a_local_file_system_with_nothing_mounted_beneath(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert local_calls_inline("/proc") is False  # procfs: not a file system that keeps data here
    monkeypatch.setattr(localfs, "_fs_type", lambda path: 0xEF53)
    monkeypatch.setattr(localfs, "_mounts_beneath", lambda root: False)
    assert local_calls_inline(str(tmp_path)) is True
    monkeypatch.setattr(localfs, "_fs_type", lambda path: 0x6969)  # NFS
    assert local_calls_inline(str(tmp_path)) is False
    monkeypatch.setattr(localfs, "_fs_type", lambda path: 0xEF53)
    monkeypatch.setattr(localfs, "_mounts_beneath", lambda root: True)
    assert local_calls_inline(str(tmp_path)) is False
    monkeypatch.undo()
    assert localfs._mounts_beneath("/") is True  # /proc at least is mounted beneath /
    assert LocalFilesystem(tmp_path, inline=False).inline is False


def _opened(fs: LocalFilesystem, name: str, flags: int) -> Any:
    from jetwire.p9 import Tattach

    async def open_it() -> Any:
        _, root = await fs.attach(Tattach(fid=0, afid=c.NOFID, uname="", aname="", n_uname=0), None)
        _, fid = await fs.walk(Twalk(fid=0, newfid=1, wnames=[name]), root)
        await fs.lopen(Tlopen(fid=1, flags=flags), fid)
        fs.release(root)
        return fid

    return asyncio.run(open_it())


@pytest.mark.parametrize("inline", [True, False])
def test_reads_give_the_files_bytes_on_either_path(tmp_path: Path, inline: bool) -> None:
    """r[9p2000l.server.io]: the same bytes at every offset, at the end of the file, and past it."""
    data = os.urandom(200_000)
    (tmp_path / "f").write_bytes(data)
    fs = LocalFilesystem(tmp_path, inline=inline)
    fid = _opened(fs, "f", c.P9_RDONLY)

    async def body() -> None:
        for offset, count in ((0, 65536), (1, 1000), (150_000, 65536), (199_999, 10), (200_000, 10), (300_000, 5),
                              (5, 0)):
            reply = await fs.read(Tread(fid=1, offset=offset, count=count), fid)
            assert isinstance(reply, Rread) and bytes(reply.data) == data[offset:offset + count]

    asyncio.run(body())
    fs.release(fid)
    fs.close()


def test_a_read_that_would_wait_for_the_disk_goes_to_a_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """RWF_NOWAIT's answers: EAGAIN (nothing cached) and a short read (part cached) are completed
    by a read in a thread, whose bytes follow the cached ones."""
    data = os.urandom(100_000)
    (tmp_path / "f").write_bytes(data)
    fs = LocalFilesystem(tmp_path, inline=True)
    fid = _opened(fs, "f", c.P9_RDONLY)
    threaded: list[tuple[int, int]] = []
    real_pread = os.pread

    def counting_pread(fd: int, count: int, offset: int) -> bytes:
        threaded.append((count, offset))
        return real_pread(fd, count, offset)

    def nothing_cached(fd: int, buffers: list[bytearray], offset: int, flags: int) -> int:
        assert flags == os.RWF_NOWAIT
        raise BlockingIOError(errno.EAGAIN, "would wait")

    def part_cached(fd: int, buffers: list[bytearray], offset: int, flags: int) -> int:
        buffers[0][:1000] = data[offset:offset + 1000]
        return 1000

    monkeypatch.setattr(os, "pread", counting_pread)

    async def body() -> None:
        monkeypatch.setattr(os, "preadv", nothing_cached)
        assert bytes((await fs.read(Tread(fid=1, offset=10, count=5000), fid)).data) == data[10:5010]
        monkeypatch.setattr(os, "preadv", part_cached)
        assert bytes((await fs.read(Tread(fid=1, offset=20, count=5000), fid)).data) == data[20:5020]

    asyncio.run(body())
    assert threaded == [(5000, 10), (4000, 1020)]
    fs.release(fid)
    fs.close()


def test_writes_fall_back_to_a_thread_where_rwf_nowait_cannot_write(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """EAGAIN: this write goes to a thread; EOPNOTSUPP: RWF_NOWAIT is not tried again (writes
    go through writes.py's checks instead, tests/p9/test_server_io.py)."""
    (tmp_path / "f").write_bytes(b"")
    fs = LocalFilesystem(tmp_path, inline=True)
    fid = _opened(fs, "f", c.P9_RDWR)
    tried: list[str] = []

    def would_wait(fd: int, buffers: list[bytes], offset: int, flags: int) -> int:
        tried.append("wait")
        raise BlockingIOError(errno.EAGAIN, "would wait")

    def unsupported(fd: int, buffers: list[bytes], offset: int, flags: int) -> int:
        tried.append("unsupported")
        raise OSError(errno.EOPNOTSUPP, "not here")

    async def body() -> None:
        monkeypatch.setattr(os, "pwritev", would_wait)
        assert (await fs.write(Twrite(fid=1, offset=0, data=b"abc"), fid)).count == 3
        monkeypatch.setattr(os, "pwritev", unsupported)
        assert (await fs.write(Twrite(fid=1, offset=3, data=b"def"), fid)).count == 3
        assert (await fs.write(Twrite(fid=1, offset=6, data=b"ghi"), fid)).count == 3

    asyncio.run(body())
    assert tried == ["wait", "unsupported"]
    assert (tmp_path / "f").read_bytes() == b"abcdefghi"
    fs.release(fid)
    fs.close()


def test_a_fid_on_another_device_is_served_from_threads(tmp_path: Path) -> None:
    """A file system mounted beneath the export after it was checked: its fids are not local."""
    (tmp_path / "f").write_text("x")
    fs = LocalFilesystem(tmp_path, inline=True)
    fid = _opened(fs, "f", c.P9_RDONLY)
    assert fs._here(fid)
    fid.dev += 1
    assert not fs._here(fid)
    fid.dev -= 1
    from jetwire.p9.users import User

    fid.user = User(os.getuid(), os.getgid(), ())  # a mapped user's calls take on its identity in a thread
    assert not fs._here(fid)
    fid.user = None
    fs.release(fid)
    fs.close()


def test_a_basic_getattr_fills_every_basic_field_as_the_tables_say(tmp_path: Path) -> None:
    """r[9p2000l.server.getattr]: the reply built at once for P9_GETATTR_BASIC (what nearly every
    request gets) has each field as localfs's per-field table computes it, a time before 1970
    included (its two's complement)."""
    from jetwire.p9 import Tattach

    (tmp_path / "f").write_bytes(b"12345")
    os.utime(tmp_path / "f", ns=(-1_500_000_001, 1_700_000_000_123_456_789))
    fs = LocalFilesystem(tmp_path)

    async def body() -> None:
        _, root = await fs.attach(Tattach(fid=0, afid=c.NOFID, uname="", aname="", n_uname=0), None)
        _, fid = await fs.walk(Twalk(fid=0, newfid=1, wnames=["f"]), root)
        for mask in (c.P9_GETATTR_BASIC, c.P9_GETATTR_SIZE, c.P9_GETATTR_ALL):
            reply = await fs.getattr(Tgetattr(fid=1, request_mask=mask), fid)
            host = os.stat(tmp_path / "f")
            assert reply.valid == c.P9_GETATTR_BASIC
            for field, compute in localfs._STAT_FIELDS.items():
                assert getattr(reply, field) == compute(host), field
            assert reply.atime_sec == (-2) & ((1 << 64) - 1) and reply.atime_nsec == 499_999_999
            assert reply.qid.path == host.st_ino
        fs.release(fid)
        fs.release(root)

    asyncio.run(body())
    fs.close()


def test_mounts_beneath_the_export_are_read_from_mountinfo_with_its_escapes(tmp_path: Path) -> None:
    """A mount point's name in mountinfo has space, tab, newline and backslash as octal escapes,
    and may be any bytes: a mount beneath ``/srv/my export`` or ``/srv/é`` is seen, one beside it not."""
    table = tmp_path / "mountinfo"

    def mounted(*points: bytes) -> Path:
        table.write_bytes(b"".join(b"36 35 98:0 / " + point + b" rw,noatime - ext4 /dev/sda1 rw\n"
                                   for point in points))
        return table

    assert localfs._mounts_beneath("/srv/my export", str(mounted(b"/", b"/srv/my\\040export/nfs")))
    assert not localfs._mounts_beneath("/srv/my export", str(mounted(b"/", b"/srv/my\\040exports/nfs")))
    assert localfs._mounts_beneath("/srv/é", str(mounted(b"/", "/srv/é/x".encode())))
    assert localfs._mounts_beneath(os.fsdecode(b"/srv/\xff"), str(mounted(b"/srv/\xff/x")))
    assert not localfs._mounts_beneath("/srv/a", str(mounted(b"/", b"/srv/a", b"/srv/ab/c")))
    assert localfs._mounts_beneath("/srv/a", str(tmp_path / "missing"))  # cannot tell: no inline calls


def test_a_method_that_is_not_a_coroutine_function_fails_only_its_call(tmp_path: Path) -> None:
    """r[9p2000l.server.errors]: a handler whose method raises when called, or returns something
    that is not a coroutine, answers EIO for that call; the connection goes on."""
    (tmp_path / "f").write_text("x")

    class Plain(LocalFilesystem):
        def getattr(self, msg: Any, fid: Any) -> Any:  # type: ignore[override]
            if msg.request_mask == 1:
                raise KeyError("raised when called")
            return Rgetattr  # not a coroutine

    async def body() -> None:
        server = await serve(Plain(tmp_path), "127.0.0.1:0")
        try:
            raw = await walked_to_f(server)
            raw.send((3, Tgetattr(fid=1, request_mask=1)), (4, Tgetattr(fid=1, request_mask=2)))
            replies = {r.tag: r.msg for r in await raw.replies(2)}
            assert replies[3].ecode == c.EIO and replies[4].ecode == c.EIO
            raw.send((5, Twalk(fid=0, newfid=2, wnames=["f"])))
            (walked,) = await raw.replies(1)
            assert len(walked.msg.wqids) == 1
            raw.writer.close()
        finally:
            await server.close()

    run(body)


@pytest.mark.parametrize("inline", [False, True])
def test_a_handler_runs_its_first_step_outside_its_task_only_when_it_says_it_may(tmp_path: Path,
                                                                                inline: bool) -> None:
    """``Handler.steps_inline`` is False by default: a handler written without knowing of the
    quick path keeps asyncio's rules, each call in a task of its own from its first line
    (``asyncio.timeout`` there would bind to the call, not to the connection's task);
    ``LocalFilesystem`` says True, and a call that never waits then makes no task."""
    (tmp_path / "f").write_text("x")
    seen: list[tuple[asyncio.Task[Any] | None, asyncio.Task[Any] | None]] = []

    class Recording(LocalFilesystem):
        steps_inline = inline

        async def getattr(self, msg: Any, fid: Any) -> Any:
            first = asyncio.current_task()  # what asyncio.timeout or a TaskGroup would bind to
            await asyncio.sleep(0)
            seen.append((first, asyncio.current_task()))
            return await super().getattr(msg, fid)

    async def body() -> None:
        server = await serve(Recording(tmp_path), "127.0.0.1:0")
        try:
            raw = await walked_to_f(server)
            raw.send((3, Tgetattr(fid=1, request_mask=c.P9_GETATTR_BASIC)))
            (answered,) = await raw.replies(1)
            assert isinstance(answered.msg, Rgetattr)
            raw.writer.close()
        finally:
            await server.close()

    run(body)
    ((first, after),) = seen
    assert (first is after) is not inline


_SET_BY_A_CALL: contextvars.ContextVar[str] = contextvars.ContextVar("set_by_a_call", default="unset")


@pytest.mark.parametrize("waits", [False, True])
def test_a_call_stepped_without_a_task_keeps_its_context_variables_to_itself(tmp_path: Path, waits: bool) -> None:
    """A handler that takes its first step on the connection's own task (``steps_inline``)
    still has context variables of its own, as a call in a task of its own would: what one
    call sets, before or after it waits, is not seen by the next call on the connection."""
    (tmp_path / "f").write_text("x")
    seen: list[str] = []

    class Setting(LocalFilesystem):
        async def getattr(self, msg: Any, fid: Any) -> Any:
            seen.append(_SET_BY_A_CALL.get())
            _SET_BY_A_CALL.set(f"call {len(seen)}")
            if waits:
                await asyncio.sleep(0)
            return await super().getattr(msg, fid)

    async def body() -> None:
        server = await serve(Setting(tmp_path), "127.0.0.1:0")
        try:
            raw = await walked_to_f(server)
            for tag in (3, 4, 5):
                raw.send((tag, Tgetattr(fid=1, request_mask=c.P9_GETATTR_BASIC)))
                (answered,) = await raw.replies(1)
                assert isinstance(answered.msg, Rgetattr)
            raw.writer.close()
        finally:
            await server.close()

    run(body)
    assert seen == ["unset", "unset", "unset"]


def _attached(fs: LocalFilesystem) -> Any:
    from jetwire.p9 import Tattach

    async def attach() -> Any:
        return (await fs.attach(Tattach(fid=0, afid=c.NOFID, uname="", aname="", n_uname=0), None))[1]

    return asyncio.run(attach())


def _setattr(valid: int, mode: int = 0, size: int = 0) -> Any:
    from jetwire.p9 import Tsetattr

    return Tsetattr(fid=1, valid=valid, mode=mode, uid=0, gid=0, size=size, atime_sec=0, atime_nsec=0, mtime_sec=0,
                    mtime_nsec=0)


@pytest.mark.parametrize("umask", [0o077, 0])
def test_creations_get_the_mode_asked_with_a_chmod_only_where_the_umask_took_bits(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, umask: int) -> None:
    """r[9p2000l.server.identity]: Tlcreate and Tmkdir give exactly the mode asked whatever the
    server's umask; the chmod that restores what the umask took is made only when it took
    something (a system call less per file created otherwise)."""
    from jetwire.p9 import Tlcreate, Tmkdir

    fs = LocalFilesystem(tmp_path)
    root = _attached(fs)
    chmods: list[str] = []
    real_fchmod, real_chmod = os.fchmod, os.chmod

    def fchmod(fd: int, mode: int) -> None:
        chmods.append("fchmod")
        real_fchmod(fd, mode)

    def chmod(path: Any, mode: int, **kwargs: Any) -> None:
        chmods.append("chmod")
        real_chmod(path, mode, **kwargs)

    async def body() -> None:
        _, fid = await fs.walk(Twalk(fid=0, newfid=1, wnames=[]), root)
        await fs.lcreate(Tlcreate(fid=1, name="f", flags=c.P9_WRONLY | c.P9_CREATE, mode=0o644, gid=0), fid)
        await fs.mkdir(Tmkdir(dfid=0, name="d", mode=0o755, gid=0), root)
        fs.release(fid)

    monkeypatch.setattr(os, "fchmod", fchmod)
    monkeypatch.setattr(os, "chmod", chmod)
    previous = os.umask(umask)
    try:
        asyncio.run(body())
    finally:
        os.umask(previous)
    monkeypatch.undo()
    assert (os.stat(tmp_path / "f").st_mode & 0o7777, os.stat(tmp_path / "d").st_mode & 0o7777) == (0o644, 0o755)
    assert chmods == (["fchmod", "chmod"] if umask else [])
    fs.release(root)
    fs.close()


@pytest.mark.parametrize("inline", [True, False])
def test_mkdir_and_a_setattr_without_a_size_run_on_the_loops_thread_of_a_local_export(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, inline: bool) -> None:
    """r[9p2000l.server.concurrency]: on a local export Tmkdir and a Tsetattr of mode, owner or
    times are quick inode changes, made without a thread's hand-off; a size (which may free a
    large file's blocks) still goes to a thread, and every call does where calls are not inline."""
    from jetwire.p9 import Tmkdir

    (tmp_path / "f").write_bytes(b"12345")
    fs = LocalFilesystem(tmp_path, inline=inline)
    root = _attached(fs)
    threaded: list[str] = []
    real_to_thread = asyncio.to_thread

    async def to_thread(call: Any, *args: Any, **kwargs: Any) -> Any:
        threaded.append(getattr(call, "__name__", "?"))
        return await real_to_thread(call, *args, **kwargs)

    monkeypatch.setattr(asyncio, "to_thread", to_thread)

    async def body() -> None:
        await fs.mkdir(Tmkdir(dfid=0, name="d", mode=0o700, gid=0), root)
        _, fid = await fs.walk(Twalk(fid=0, newfid=1, wnames=["f"]), root)
        await fs.setattr(_setattr(c.P9_SETATTR_MODE, mode=0o600), fid)
        await fs.setattr(_setattr(c.P9_SETATTR_ATIME | c.P9_SETATTR_MTIME), fid)
        await fs.setattr(_setattr(c.P9_SETATTR_SIZE, size=2), fid)
        fs.release(fid)

    asyncio.run(body())
    monkeypatch.undo()
    assert threaded == (["_setattr"] if inline else ["make", "_walk", "_setattr", "_setattr", "_setattr"])
    assert (tmp_path / "d").is_dir() and (tmp_path / "f").read_bytes() == b"12"
    assert os.stat(tmp_path / "f").st_mode & 0o7777 == 0o600
    fs.release(root)
    fs.close()


def test_a_created_files_fid_serves_every_call_a_walked_fid_does(tmp_path: Path) -> None:
    """r[9p2000l.server.lcreate]: the fid a Tlcreate leaves names the new file, open, for
    getattr, setattr, xattrs, locks and a clone that opens it again, as a fid walked to it."""
    from jetwire.p9 import Tlcreate, Tlock, Txattrwalk

    fs = LocalFilesystem(tmp_path)
    root = _attached(fs)

    async def body() -> None:
        _, fid = await fs.walk(Twalk(fid=0, newfid=1, wnames=[]), root)
        await fs.lcreate(Tlcreate(fid=1, name="f", flags=c.P9_RDWR | c.P9_CREATE, mode=0o640, gid=0), fid)
        assert (await fs.write(Twrite(fid=1, offset=0, data=b"hello"), fid)).count == 5
        host = os.stat(tmp_path / "f")
        attrs = await fs.getattr(Tgetattr(fid=1, request_mask=c.P9_GETATTR_BASIC), fid)
        assert (attrs.qid.path, attrs.size, attrs.mode) == (host.st_ino, 5, host.st_mode)
        await fs.setattr(_setattr(c.P9_SETATTR_MODE, mode=0o600), fid)
        assert os.stat(tmp_path / "f").st_mode & 0o7777 == 0o600
        _, names = await fs.xattrwalk(Txattrwalk(fid=1, newfid=2, name=""), fid)
        fs.release(names)
        lock = Tlock(fid=1, type=c.P9_LOCK_TYPE_WRLCK, flags=0, start=0, length=0, proc_id=1, client_id="c")
        assert (await fs.lock(lock, fid)).status == c.P9_LOCK_SUCCESS
        _, clone = await fs.walk(Twalk(fid=1, newfid=3, wnames=[]), fid)
        assert (clone.ftype, clone.dev, clone.ino, clone.name) == (fid.ftype, fid.dev, fid.ino, "f")
        await fs.lopen(Tlopen(fid=3, flags=c.P9_RDONLY), clone)
        assert bytes((await fs.read(Tread(fid=3, offset=0, count=100), clone)).data) == b"hello"
        fs.release(clone)
        fs.release(fid)

    asyncio.run(body())
    fs.release(root)
    fs.close()


def test_a_readdir_answers_every_entry_that_fits_its_count(tmp_path: Path) -> None:
    """r[9p2000l.server.readdir.cookies]: each Treaddir from a snapshot holds as many entries as
    its count has room for, the least entries (one-byte names, 25 bytes each) included, counts
    that fit them exactly included: the reply is cut where the next entry would not fit."""
    import string

    from jetwire.p9 import Treaddir
    from jetwire.p9.calls import parse_dirents

    for name in string.ascii_letters + string.digits:
        (tmp_path / name).touch()
    fs = LocalFilesystem(tmp_path)
    root = _attached(fs)

    async def body() -> None:
        _, fid = await fs.walk(Twalk(fid=0, newfid=1, wnames=[]), root)
        await fs.lopen(Tlopen(fid=1, flags=c.P9_RDONLY | c.P9_DIRECTORY), fid)
        whole = parse_dirents((await fs.readdir(Treaddir(fid=1, offset=0, count=65536), fid)).data)
        assert len(whole) == 64
        sizes = [25 + len(e.name.encode()) - 1 for e in whole]
        for offset in (0, 2, 63):
            for count in range(25, 25 * 70, 7):
                got = parse_dirents((await fs.readdir(Treaddir(fid=1, offset=offset, count=count), fid)).data)
                fitting = 0
                while offset + fitting < len(sizes) and sum(sizes[offset:offset + fitting + 1]) <= count:
                    fitting += 1
                assert [e.name for e in got] == [e.name for e in whole[offset:offset + fitting]], (offset, count)
        fs.release(fid)

    asyncio.run(body())
    fs.release(root)
    fs.close()

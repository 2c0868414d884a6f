"""The file server's I/O paths (issue 13, speed). Twrite on the event loop's thread
(jetwire/p9/writes.py): a buffered write that can only copy into the page cache is made there,
and every write that could wait for the disk (a synchronous file, a page to read first, a
kernel that throttled the last one) goes to a thread, with the same bytes on disk either way.
Rread from a ``ReadBuffer``: the data read into the frame's own buffer, sent without a copy.
Rule ids: ../shared/spec/9p2000L.md, "Server behaviour" (r[9p2000l.server.io],
r[9p2000l.server.concurrency])."""

from __future__ import annotations

import asyncio
import errno
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
from test_server_fast_paths import _opened

from jetwire.p9 import Rframe, Rread, Tattach, Tframe, Tlcreate, Tread, Tversion, Twalk, Twrite, writes
from jetwire.p9 import constants as c
from jetwire.p9.localfs import LocalFilesystem
from jetwire.p9.server import Call, Handler, ReadBuffer, Send, ServerSession
from jetwire.p9.writes import PIECE, SLOW, LoopWrites, page_cached

PAGE = os.sysconf("SC_PAGE_SIZE")


def _no_rwf_nowait(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on ext4 here: buffered RWF_NOWAIT writes refused, so writes.py decides."""

    def unsupported(fd: int, buffers: list[bytes], offset: int, flags: int) -> int:
        raise OSError(errno.EOPNOTSUPP, "not here")

    monkeypatch.setattr(os, "pwritev", unsupported)


def _count_threads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """The (length, offset) of each pwrite made through asyncio.to_thread."""
    threaded: list[tuple[int, int]] = []
    real_to_thread = asyncio.to_thread

    async def to_thread(call: Callable[..., Any], *args: Any) -> Any:
        if call is os.pwrite:
            threaded.append((len(args[1]), args[2]))
        return await real_to_thread(call, *args)

    monkeypatch.setattr(asyncio, "to_thread", to_thread)
    return threaded


def test_writes_to_the_page_cache_are_made_on_the_loops_thread(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """r[9p2000l.server.io]: appending 64 KiB Twrites, and writing a page in place that the
    page cache holds, takes no thread; the file holds every byte."""
    (tmp_path / "f").write_bytes(b"")
    fs = LocalFilesystem(tmp_path, inline=True)
    fid = _opened(fs, "f", c.P9_WRONLY)
    _no_rwf_nowait(monkeypatch)
    threaded = _count_threads(monkeypatch)
    chunks = [os.urandom(65512) for _ in range(6)]

    async def body() -> None:
        for i, chunk in enumerate(chunks):
            assert (await fs.write(Twrite(fid=1, offset=i * 65512, data=chunk), fid)).count == 65512
        assert (await fs.write(Twrite(fid=1, offset=100, data=b"in place"), fid)).count == 8

    asyncio.run(body())
    expected = bytearray(b"".join(chunks))
    expected[100:108] = b"in place"
    assert threaded == []
    assert (tmp_path / "f").read_bytes() == expected
    fs.release(fid)
    fs.close()


def test_a_write_that_would_read_a_page_from_the_disk_goes_to_a_thread(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A page the write covers in part and the file has data in must come from the page cache
    (else the kernel reads it from the disk, on the loop's thread): asked of cachestat for
    each end. Whole pages, and pages past the end of the file, are never read."""
    data = bytearray(os.urandom(10 * PAGE))
    (tmp_path / "f").write_bytes(data)
    fs = LocalFilesystem(tmp_path, inline=True)
    fid = _opened(fs, "f", c.P9_WRONLY)
    _no_rwf_nowait(monkeypatch)
    threaded = _count_threads(monkeypatch)
    asked: list[int] = []

    def nothing_cached(fd: int, page_start: int) -> bool:
        asked.append(page_start)
        return False

    monkeypatch.setattr(writes, "page_cached", nothing_cached)

    async def write(offset: int, length: int) -> None:
        part = os.urandom(length)
        assert (await fs.write(Twrite(fid=1, offset=offset, data=part), fid)).count == length
        data.extend(bytes(max(0, offset - len(data))))  # a hole reads as zeros
        data[offset:offset + length] = part

    async def body() -> None:
        await write(2 * PAGE, 3 * PAGE)  # whole pages: nothing to read, nothing asked
        await write(20 * PAGE + 5, 100)  # past the end: nothing to read
        await write(PAGE + 10, 100)  # inside one page of data: its start is asked for
        await write(3 * PAGE, PAGE + 1)  # ends inside a page of data
        await write(5 * PAGE - 7, 14)  # starts inside one page of data, ends inside the next

    asyncio.run(body())
    assert threaded == [(100, PAGE + 10), (PAGE + 1, 3 * PAGE), (14, 5 * PAGE - 7)]
    assert asked == [PAGE, 4 * PAGE, 4 * PAGE]  # the last write's head page refused: its tail is not asked
    assert (tmp_path / "f").read_bytes() == data
    fs.release(fid)
    fs.close()


def test_cachestat_tells_a_cached_page_from_one_past_the_end(tmp_path: Path) -> None:
    """page_cached asks the kernel (cachestat, Linux 6.5): a page just written is there, one
    past the end of the file is not; where the kernel cannot say, the answer is "not cached"."""
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.write(fd, b"x" * PAGE)
        assert not page_cached(fd, 8 * PAGE)
        version = re.match(r"(\d+)\.(\d+)", os.uname().release)
        if version is not None and (int(version[1]), int(version[2])) >= (6, 5):
            assert page_cached(fd, 0)
        assert not page_cached(-1, 0)  # EBADF: not known, not cached
    finally:
        os.close(fd)


def _created(fs: LocalFilesystem, name: str, flags: int) -> Any:
    """A fid of a file its Tlcreate made, open with ``flags``."""
    async def create_it() -> Any:
        _, root = await fs.attach(Tattach(fid=0, afid=c.NOFID, uname="", aname="", n_uname=0), None)
        _, fid = await fs.walk(Twalk(fid=0, newfid=1, wnames=[]), root)
        await fs.lcreate(Tlcreate(fid=1, name=name, flags=flags, mode=0o600, gid=0), fid)
        fs.release(root)
        return fid

    return asyncio.run(create_it())


@pytest.mark.parametrize("opened", [_opened, _created], ids=["lopen", "lcreate"])
def test_a_synchronous_file_is_written_from_a_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    opened: Callable[[LocalFilesystem, str, int], Any]) -> None:
    """O_SYNC and O_DSYNC (P9_SYNC, P9_DSYNC) make every write wait for the disk, whether the
    file was opened by Tlopen or by Tlcreate (the flags are kept with the open file)."""
    if opened is _opened:
        (tmp_path / "f").write_bytes(b"")
    fs = LocalFilesystem(tmp_path, inline=True)
    fid = opened(fs, "f", c.P9_WRONLY | c.P9_DSYNC)
    _no_rwf_nowait(monkeypatch)
    threaded = _count_threads(monkeypatch)

    async def body() -> None:
        assert (await fs.write(Twrite(fid=1, offset=0, data=b"abc"), fid)).count == 3

    asyncio.run(body())
    assert threaded == [(3, 0)]
    assert (tmp_path / "f").read_bytes() == b"abc"
    fs.release(fid)
    fs.close()


def test_a_write_of_whole_pages_asks_the_kernel_nothing_first(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The open flags (O_SYNC, O_APPEND) are those of Tlopen, kept with the fid: no F_GETFL per
    Twrite; and the file's size matters only to a write that starts or ends inside a page, or
    appends: a write of whole pages makes no fstat either."""
    import fcntl

    (tmp_path / "f").write_bytes(bytes(4 * PAGE))
    fs = LocalFilesystem(tmp_path, inline=True)
    fid = _opened(fs, "f", c.P9_WRONLY)
    _no_rwf_nowait(monkeypatch)
    threaded = _count_threads(monkeypatch)
    asked: list[str] = []
    real_fcntl, real_fstat = fcntl.fcntl, os.fstat

    def counted_fcntl(fd: int, command: int, *args: Any) -> Any:
        asked.append(f"fcntl {command}")
        return real_fcntl(fd, command, *args)

    def counted_fstat(fd: int) -> os.stat_result:
        asked.append("fstat")
        return real_fstat(fd)

    monkeypatch.setattr(fcntl, "fcntl", counted_fcntl)
    monkeypatch.setattr(os, "fstat", counted_fstat)

    async def body() -> None:
        assert (await fs.write(Twrite(fid=1, offset=PAGE, data=b"x" * 2 * PAGE), fid)).count == 2 * PAGE
        assert asked == []
        assert (await fs.write(Twrite(fid=1, offset=PAGE + 1, data=b"y"), fid)).count == 1
        assert asked == ["fstat"]  # inside a page: is there file data to read first?

    asyncio.run(body())
    assert threaded == []
    assert (tmp_path / "f").read_bytes() == bytes(PAGE) + b"xy" + b"x" * (2 * PAGE - 2) + bytes(PAGE)
    fs.release(fid)
    fs.close()


class _Clock:
    """A clock that a patched pwrite moves on: a write that takes ``slow_next`` seconds, and
    sleeps in the kernel meanwhile unless ``preempted`` (``sleeps`` counts those sleeps)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slow_next = 0.0
        self.preempted = False
        self.slept = 0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
        if seconds and not self.preempted:
            self.slept += 1

    def sleeps(self) -> int:
        return self.slept


def test_a_slow_write_sends_its_rest_and_later_writes_to_threads_for_a_while(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The kernel throttling a writer (or ext4 waiting for its journal) shows as a write that
    took long and slept: the rest of that Twrite goes to a thread, and so does every write for
    1 s, then 2 s if it happens again soon after: the loop is held by one piece per back-off
    period. A write that took long because the thread was preempted changes nothing."""
    clock = _Clock()
    real_pwrite = os.pwrite

    def timed_pwrite(fd: int, data: Any, offset: int) -> int:
        clock.advance(clock.slow_next)
        clock.slow_next = 0.0
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", timed_pwrite)
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT, 0o600)
    loop_writes = LoopWrites(clock, clock.sleeps)
    data = os.urandom(3 * PIECE)
    try:
        assert loop_writes.write(fd, data, 0) == (len(data), True)  # fast: all here
        clock.preempted, clock.slow_next = True, 2 * SLOW
        assert loop_writes.write(fd, data, 0) == (len(data), True)  # slow, but the CPU was elsewhere
        clock.preempted = False
        clock.slow_next = 2 * SLOW
        written, answered = loop_writes.write(fd, data, 5)  # the first piece is slow
        assert not answered and written == PIECE // PAGE * PAGE - 5  # it ends on a page boundary
        assert os.pread(fd, written, 5) == data[:written]
        clock.now += 0.5
        assert loop_writes.write(fd, b"later", 0) == (0, False)  # within the second: a thread's
        clock.now += 0.6
        clock.slow_next = 2 * SLOW
        assert loop_writes.write(fd, b"again", 0) == (5, True)  # all written, but slow again...
        clock.now += 1.5
        assert loop_writes.write(fd, b"still", 0) == (0, False)  # ...so 2 s this time
        clock.now += 0.6
        assert loop_writes.write(fd, b"after", 0) == (5, True)
        clock.now += 60
        clock.slow_next = 2 * SLOW
        loop_writes.write(fd, b"long after", 0)
        assert loop_writes.backoff == 1.0  # not soon after the last: back to 1 s
    finally:
        os.close(fd)


def test_a_twrite_cut_by_a_slow_piece_is_finished_in_a_thread(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """r[9p2000l.server.io]: what the loop's thread wrote and what the thread wrote after it
    make the whole Twrite, counted once."""
    (tmp_path / "f").write_bytes(b"")
    fs = LocalFilesystem(tmp_path, inline=True)
    fid = _opened(fs, "f", c.P9_WRONLY)
    _no_rwf_nowait(monkeypatch)
    threaded = _count_threads(monkeypatch)
    clock = _Clock()
    real_pwrite = os.pwrite

    def slow_pwrite(fd: int, data: Any, offset: int) -> int:
        clock.advance(2 * SLOW)
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", slow_pwrite)
    fs._loop_writes = LoopWrites(clock, clock.sleeps)
    data = os.urandom(3 * PIECE)

    async def body() -> None:
        assert (await fs.write(Twrite(fid=1, offset=0, data=data), fid)).count == len(data)

    asyncio.run(body())
    assert threaded == [(len(data) - PIECE, PIECE)]
    assert (tmp_path / "f").read_bytes() == data
    fs.release(fid)
    fs.close()


class _Reads(Handler[str]):
    """Answers Tattach, and Tread with ``read``'s reply."""

    def __init__(self, read: Callable[[Tread], Rread]) -> None:
        self.answer = read

    async def attach(self, msg: Tattach, afid: str | None) -> tuple[Any, str]:
        from jetwire.p9 import Qid, Rattach

        return Rattach(qid=Qid(type=c.P9_QTDIR, version=0, path=1)), "root"

    async def read(self, msg: Tread, fid: str) -> Rread:
        return self.answer(msg)


def _read_reply(read: Callable[[Tread], Rread], count: int = 100) -> Send:
    """The Send that answers one Tread of ``count`` bytes (tag 7) answered by ``read``."""
    session = ServerSession(max_msize=8192)
    handler = _Reads(read)
    events = session.receive(b"".join(Tframe(tag=tag, msg=msg).encode() for tag, msg in (
        (c.NOTAG, Tversion(msize=8192, version=c.VERSION_9P2000L)),
        (1, Tattach(fid=0, afid=c.NOFID, uname="", aname="", n_uname=0)),
    )))
    for event in events:
        if isinstance(event, Call):
            session.complete(event, asyncio.run(getattr(handler, event.method)(event.msg, *event.args)))
    (call,) = session.receive(Tframe(tag=7, msg=Tread(fid=0, offset=0, count=count)).encode())
    assert isinstance(call, Call)
    (send,) = session.complete(call, asyncio.run(handler.read(call.msg, "root")))
    assert isinstance(send, Send)
    return send


def test_an_rread_from_a_read_buffer_is_sent_as_that_buffer() -> None:
    """r[9p2000l.server.io]: the frame is the buffer the data was read into, its header written
    in front: the same bytes the encoder makes, with no copy of the data."""
    buffers: list[ReadBuffer] = []

    def read(msg: Tread) -> Rread:
        buffer = ReadBuffer(msg.count)
        buffers.append(buffer)
        buffer.data()[:5] = b"hello"
        return buffer.answer(5)

    send = _read_reply(read)
    assert isinstance(send.data, memoryview) and send.data.obj is buffers[0]
    assert bytes(send.data) == Rframe(tag=7, msg=Rread(data=b"hello")).encode()


def test_a_read_buffer_answered_otherwise_is_encoded_as_any_rread() -> None:
    """A view of a ReadBuffer that is not what answer() gave (another length) is encoded as
    data like any other: the header's room is only trusted as answer() made it."""

    def read(msg: Tread) -> Rread:
        buffer = ReadBuffer(msg.count)
        buffer.data()[:5] = b"hello"
        buffer.answer(5)
        return Rread(data=cast(bytes, buffer.data()[:3]))

    send = _read_reply(read)
    assert bytes(send.data) == Rframe(tag=7, msg=Rread(data=b"hel")).encode()
    assert not isinstance(send.data, memoryview)


def test_localfs_reads_answer_from_read_buffers(tmp_path: Path) -> None:
    """LocalFilesystem's reads on the loop's thread fill the reply's own buffer, whole or in
    part (the end of the file)."""
    data = os.urandom(10_000)
    (tmp_path / "f").write_bytes(data)
    fs = LocalFilesystem(tmp_path, inline=True)
    fid = _opened(fs, "f", c.P9_RDONLY)

    async def body() -> None:
        for offset, count in ((0, 4096), (9_000, 4096)):
            reply = await fs.read(Tread(fid=1, offset=offset, count=count), fid)
            view: Any = reply.data
            assert isinstance(view, memoryview) and isinstance(view.obj, ReadBuffer)
            assert bytes(view) == data[offset:offset + count]

    asyncio.run(body())
    fs.release(fid)
    fs.close()


def test_a_thread_that_sleeps_is_told_from_one_that_runs() -> None:
    """voluntary_switches counts this thread's sleeps: a sleep adds one, work does not."""
    before = writes.voluntary_switches()
    sum(range(10_000))
    assert writes.voluntary_switches() == before
    time.sleep(0.001)
    assert writes.voluntary_switches() > before

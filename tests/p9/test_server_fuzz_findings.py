"""What fuzzing the 9P file server found (``python -m fuzz --target p9_server`` and
``p9_served``), each the smallest input that showed it: against the sans-I/O session of
``test_server_session``, a ``LocalFilesystem`` called directly, or the asyncio shell serving a
unix socket, in the order of events that broke it made on purpose."""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import threading
from pathlib import Path
from typing import Any

import pytest
from test_server_session import ROOT_QID, Driver, Toy, calls, error_of, frame, released, replies

from jetwire.p9 import (
    Rattach,
    Rframe,
    Rgetattr,
    Rversion,
    Tattach,
    Tgetattr,
    Tlcreate,
    Tlock,
    Tlopen,
    Treaddir,
    Tremove,
    Tsetattr,
    Tsymlink,
    Tversion,
    Twalk,
    Txattrcreate,
    Txattrwalk,
)
from jetwire.p9 import constants as c
from jetwire.p9.localfs import LocalFilesystem
from jetwire.p9.serving import serve
from jetwire.runtime.frames import FrameReader


def test_an_attach_with_fid_and_afid_both_nofid_is_a_fid_in_use() -> None:
    # r[9p2000l.server.fid.in-use]: NOFID is never a fid; the session took the two equal
    # numbers for a walk in place and failed an assertion when the attach completed
    d = Driver().ready()
    events = d.send(frame(2, Tattach(fid=c.NOFID, afid=c.NOFID, uname="", aname="", n_uname=c.NONUNAME)))
    assert error_of(events) == c.EEXIST
    assert set(d.session.fids) == {0}


def test_an_attach_whose_afid_is_its_own_fid_is_a_fid_in_use() -> None:
    d = Driver().ready()
    assert error_of(d.send(frame(2, Tattach(fid=0, afid=0, uname="", aname="", n_uname=c.NONUNAME)))) == c.EEXIST
    (_, reply), = replies(d.send(frame(3, Tgetattr(fid=0, request_mask=1))))
    assert reply.size == len("/")


def test_an_xattrwalk_onto_its_own_fid_is_a_fid_in_use() -> None:
    # only Twalk moves a fid in place; Txattrwalk's newfid must be free like any made fid
    d = Driver().ready()
    assert error_of(d.send(frame(2, Txattrwalk(fid=0, newfid=0, name="")))) == c.EEXIST
    assert set(d.session.fids) == {0}


@pytest.mark.parametrize("call", ["symlink", "xattrwalk", "xattrcreate"])
def test_a_nul_in_a_string_the_host_takes_is_einval(call: str, tmp_path: Path) -> None:
    # names with NUL are refused by the session; a symlink's target and an xattr's name are not
    # names, and reached the system call, whose ValueError the server answered EIO and logged
    # as a handler's bug
    fs = LocalFilesystem(tmp_path)

    async def body() -> None:
        _, root = await fs.attach(Tattach(fid=0, afid=c.NOFID, uname="", aname="", n_uname=c.NONUNAME), None)
        try:
            with pytest.raises(OSError) as refused:
                if call == "symlink":
                    await fs.symlink(Tsymlink(fid=0, name="link", symtgt="a\0b", gid=0), root)
                elif call == "xattrwalk":
                    await fs.xattrwalk(Txattrwalk(fid=0, newfid=1, name="user.a\0b"), root)
                else:
                    await fs.xattrcreate(Txattrcreate(fid=0, name="user.a\0b", attr_size=1, flags=0), root)
            assert refused.value.errno == errno.EINVAL
        finally:
            fs.release(root)

    try:
        asyncio.run(body())
    finally:
        fs.close()
    assert not os.path.lexists(tmp_path / "link")


def test_a_refused_remove_of_a_fid_in_use_waits_for_its_calls_before_the_release() -> None:
    # r[9p2000l.server.fid.remove]: the fid is gone even when the remove is refused (EROFS), but
    # its object must outlive the calls still using it; the refusal took one of their counts and
    # the object was released while a call held it
    d = Driver(read_only=True).ready()
    getattr_call, = calls(d.send(frame(2, Tgetattr(fid=0, request_mask=1)), hold=True))
    refused = d.send(frame(3, Tremove(fid=0)))
    assert error_of(refused) == c.EROFS
    assert not released(refused) and 0 not in d.session.fids
    d.finish(getattr_call)
    assert d.released == ["/"]


def test_a_refused_remove_of_an_idle_fid_releases_it_at_once() -> None:
    d = Driver(read_only=True).ready()
    assert error_of(d.send(frame(2, Tremove(fid=0)))) == c.EROFS
    assert d.released == ["/"]


def _descriptors() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts descriptors in /proc")
def test_listing_a_directory_leaves_no_descriptor_open(tmp_path: Path) -> None:
    # r[9p2000l.server.readdir]: every listing from offset 0 left one descriptor open for good
    # (a duplicate handed to os.scandir, which lists a duplicate of its own)
    (tmp_path / "a").write_bytes(b"")
    before = _descriptors()
    fs = LocalFilesystem(tmp_path)

    async def body() -> None:
        _, root = await fs.attach(Tattach(fid=0, afid=c.NOFID, uname="", aname="", n_uname=c.NONUNAME), None)
        await fs.lopen(Tlopen(fid=0, flags=c.P9_RDONLY), root)
        for _ in range(3):
            listed = await fs.readdir(Treaddir(fid=0, offset=0, count=8192), root)
            assert b"a" in listed.data
        fs.release(root)

    asyncio.run(body())
    fs.close()
    assert _descriptors() == before


def test_a_lock_whose_client_id_is_not_utf8_is_taken(tmp_path: Path) -> None:
    # r[9p2000l.server.lock]: client_id is an fsstr, whose bytes that are not UTF-8 arrive as
    # surrogates; measuring its length raised UnicodeEncodeError, answered EIO
    (tmp_path / "f").write_bytes(b"data")
    fs = LocalFilesystem(tmp_path)
    client_id = b"host\xff".decode("utf-8", "surrogateescape")

    async def body() -> int:
        _, root = await fs.attach(Tattach(fid=0, afid=c.NOFID, uname="", aname="", n_uname=c.NONUNAME), None)
        _, file = await fs.walk(Twalk(fid=0, newfid=1, wnames=["f"]), root)
        try:
            await fs.lopen(Tlopen(fid=1, flags=c.P9_RDWR), file)
            reply = await fs.lock(Tlock(fid=1, type=c.P9_LOCK_TYPE_WRLCK, flags=0, start=0, length=0, proc_id=1,
                                        client_id=client_id), file)
            return int(reply.status)
        finally:
            fs.release(file)
            fs.release(root)

    try:
        assert asyncio.run(body()) == c.P9_LOCK_SUCCESS
    finally:
        fs.close()


@pytest.mark.parametrize("access", [c.P9_WRONLY, c.P9_RDONLY, c.P9_RDWR])
def test_lcreate_of_an_existing_fifo_is_refused_without_waiting(access: int, tmp_path: Path) -> None:
    # r[9p2000l.server.confine.special-files]: Tlcreate without EXCL opens an existing name; a
    # FIFO's blocking open for writing waited for a reader for ever, on the event loop's thread
    os.mkfifo(tmp_path / "fifo")
    fs = LocalFilesystem(tmp_path)
    outcome: list[BaseException | None] = []

    async def body() -> None:
        _, root = await fs.attach(Tattach(fid=0, afid=c.NOFID, uname="", aname="", n_uname=c.NONUNAME), None)
        try:
            await fs.lcreate(Tlcreate(fid=0, name="fifo", flags=access, mode=0o644, gid=0), root)
        except OSError as exc:
            outcome.append(exc)
        else:
            outcome.append(None)
        finally:
            fs.release(root)

    worker = threading.Thread(target=asyncio.run, args=(body(),), daemon=True)
    worker.start()
    worker.join(10)
    try:
        assert not worker.is_alive(), "Tlcreate of a FIFO is still waiting"
    finally:
        if worker.is_alive():  # a reader lets the stuck open through, and the thread end
            os.close(os.open(tmp_path / "fifo", os.O_RDONLY | os.O_NONBLOCK))
            worker.join(10)
        fs.close()
    error, = outcome
    assert isinstance(error, OSError) and error.errno == errno.EOPNOTSUPP


def test_setattr_takes_a_time_before_1970_as_getattr_sends_it(tmp_path: Path) -> None:
    # r[9p2000l.server.setattr]: seconds travel as a two's complement (Rgetattr sends a time
    # before 1970 so); read as unsigned they overflowed the host's time_t: OverflowError, EIO
    (tmp_path / "f").write_bytes(b"")
    fs = LocalFilesystem(tmp_path)
    before_1970 = (1 << 64) - 86400  # 1969-12-31

    async def body() -> int:
        _, root = await fs.attach(Tattach(fid=0, afid=c.NOFID, uname="", aname="", n_uname=c.NONUNAME), None)
        _, file = await fs.walk(Twalk(fid=0, newfid=1, wnames=["f"]), root)
        try:
            valid = c.P9_SETATTR_MTIME | c.P9_SETATTR_MTIME_SET
            await fs.setattr(Tsetattr(fid=1, valid=valid, mode=0, uid=0, gid=0, size=0, atime_sec=0, atime_nsec=0,
                                      mtime_sec=before_1970, mtime_nsec=0), file)
            reply = await fs.getattr(Tgetattr(fid=1, request_mask=c.P9_GETATTR_MTIME), file)
            return int(reply.mtime_sec)
        finally:
            fs.release(file)
            fs.release(root)

    try:
        assert asyncio.run(body()) == before_1970
    finally:
        fs.close()
    assert os.stat(tmp_path / "f").st_mtime_ns == -86400 * 10**9


@pytest.mark.parametrize("size", [1 << 63, (1 << 64) - 1])
def test_setattr_to_a_size_past_the_largest_off_t_is_einval(size: int, tmp_path: Path) -> None:
    # r[9p2000l.server.setattr]: a u64 size from 2**63 up is negative as the host's off_t;
    # truncate raised OverflowError, answered EIO and logged as a handler's bug
    (tmp_path / "f").write_bytes(b"data")
    fs = LocalFilesystem(tmp_path)

    async def body() -> None:
        _, root = await fs.attach(Tattach(fid=0, afid=c.NOFID, uname="", aname="", n_uname=c.NONUNAME), None)
        _, file = await fs.walk(Twalk(fid=0, newfid=1, wnames=["f"]), root)
        try:
            with pytest.raises(OSError) as refused:
                await fs.setattr(Tsetattr(fid=1, valid=c.P9_SETATTR_SIZE, mode=0, uid=0, gid=0, size=size,
                                          atime_sec=0, atime_nsec=0, mtime_sec=0, mtime_nsec=0), file)
            assert refused.value.errno == errno.EINVAL
        finally:
            fs.release(file)
            fs.release(root)

    try:
        asyncio.run(body())
    finally:
        fs.close()
    assert (tmp_path / "f").read_bytes() == b"data"


class _LastCallEndsWithTheStream(Toy):
    """A Toy whose getattr, in a task of its own, ends after its connection has seen the end of
    the stream: the connection's task wakes to that end before the call's task's done
    callbacks have run, the order that held the loop (fuzz: p9_served)."""

    steps_inline = False
    server: Any = None

    async def getattr(self, msg: Tgetattr, fid: str) -> Any:
        await asyncio.sleep(0)  # in the task now
        self.server.connections[0].reader.feed_eof()  # the connection's read returns at its next step
        return await super().getattr(msg, fid)


class _Held(Exception):
    pass


async def _attached(path: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
    """A client of the server on ``path`` that has sent Tversion and attached fid 0: its
    streams, and the two replies."""
    reader, writer = await asyncio.open_unix_connection(path)
    writer.write(frame(c.NOTAG, Tversion(msize=8192, version=c.VERSION_9P2000L))
                 + frame(1, Tattach(fid=0, afid=c.NOFID, uname="", aname="", n_uname=c.NONUNAME)))
    attached = len(Rframe(tag=c.NOTAG, msg=Rversion(msize=8192, version=c.VERSION_9P2000L)).encode()
                   + Rframe(tag=1, msg=Rattach(qid=ROOT_QID)).encode())
    return reader, writer, await asyncio.wait_for(reader.readexactly(attached), 10)


async def _until_no_connection(server: Any) -> None:
    for _ in range(100):
        if not server.connections:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{len(server.connections)} connections left a second after their clients went")


def test_a_connection_ending_as_its_last_call_ends_does_not_hold_the_loop(tmp_path: Path) -> None:
    # On Python 3.12 and later, gathering tasks that are all done completes at once, without a
    # turn of the loop; the connection waited for its calls by gathering them until its set of
    # tasks was empty, a set emptied by the tasks' done callbacks, which then never ran: the
    # loop spun there for ever. The alarm turns such a spin into a failure of this test.
    handler = _LastCallEndsWithTheStream()
    path = str(tmp_path / "9p.sock")
    problems: list[dict[str, Any]] = []

    def on_alarm(signum: int, frame: Any) -> None:
        raise _Held("the loop was held")

    async def body() -> bytes:
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: problems.append(context))
        handler.server = server = await serve(handler, f"unix:{path}")
        try:
            reader, writer, received = await _attached(path)
            writer.write(frame(2, Tgetattr(fid=0, request_mask=c.P9_GETATTR_BASIC)))
            received += await asyncio.wait_for(reader.read(), 10)  # until the server ends the connection
            writer.close()
            await _until_no_connection(server)
            return received
        finally:
            await server.close()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, 10)
    try:
        received = asyncio.run(body())
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert not problems, problems[0].get("message")
    frames = FrameReader(Rframe, max_size=8192)
    frames.feed(received)
    assert [(f.tag, type(f.msg)) for f in frames] == [(c.NOTAG, Rversion), (1, Rattach), (2, Rgetattr)]


class _AbortsOnFirstGetattr(Toy):
    """A Toy whose first getattr ends its connection's transport, as a client's reset would,
    while the calls read with it are still to be answered (fuzz: p9_served)."""

    steps_inline = True
    server: Any = None

    async def getattr(self, msg: Tgetattr, fid: str) -> Any:
        transport = self.server.connections[0].writer.transport
        if not transport.is_closing():
            transport.abort()
        return await super().getattr(msg, fid)


def test_answers_to_a_connection_already_lost_leave_nothing_registered_with_the_loop(tmp_path: Path) -> None:
    # Python 3.12 and 3.13.0's socket transport writelines() has no check for a lost connection
    # (CPython issue 136234; write() has one): the answers of one read, written together after
    # the connection was lost, registered the closed socket's descriptor for writing. The loop
    # kept that registration after the socket closed, so the next connection given the same
    # descriptor number could not be read from: a new client was never answered.
    handler = _AbortsOnFirstGetattr()
    path = str(tmp_path / "9p.sock")
    problems: list[dict[str, Any]] = []

    async def body() -> bytes:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda loop, context: problems.append(context))
        handler.server = server = await serve(handler, f"unix:{path}")
        try:
            reader, writer, _ = await _attached(path)
            socket_fd = server.connections[0].writer.transport.get_extra_info("socket").fileno()
            writer.write(b"".join(frame(tag, Tgetattr(fid=0, request_mask=c.P9_GETATTR_BASIC)) for tag in (2, 3, 4)))
            await asyncio.wait_for(reader.read(), 10)  # the server ended the connection
            writer.close()
            await _until_no_connection(server)
            # the loop's own table of descriptors (private): the closed socket's must be gone
            registered = loop._selector.get_map()  # type: ignore[attr-defined]
            assert socket_fd not in registered, f"descriptor {socket_fd} is still registered with the loop"
            reader, writer = await asyncio.open_unix_connection(path)  # most likely given that number again
            writer.write(frame(c.NOTAG, Tversion(msize=8192, version=c.VERSION_9P2000L)))
            answer = await asyncio.wait_for(reader.read(4096), 5)
            writer.close()
            return answer
        finally:
            await server.close()

    answer = asyncio.run(body())
    assert not problems, problems[0].get("message")
    assert isinstance(Rframe.decode(answer).msg, Rversion)

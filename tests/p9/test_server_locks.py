"""POSIX locks served by ``LocalFilesystem`` (r[9p2000l.server.lock] in ../shared/spec/9p2000L.md):
two connections through jetwire's own client, and processes on the host holding real ``fcntl``
locks, both ways.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import struct
import subprocess
import sys
import textwrap
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from attached import connect, serving

from jetwire import FrameReader
from jetwire.p9 import Client, Rframe, Rlock, Rversion, Tattach, Tframe, Tlock, Tlopen, Tversion, Twalk, locks
from jetwire.p9 import constants as c
from jetwire.p9.localfs import LocalFilesystem

RD, WR, UN = c.P9_LOCK_TYPE_RDLCK, c.P9_LOCK_TYPE_WRLCK, c.P9_LOCK_TYPE_UNLCK
OK, BLOCKED, ERROR = c.P9_LOCK_SUCCESS, c.P9_LOCK_BLOCKED, c.P9_LOCK_ERROR
BLOCK = c.P9_LOCK_FLAGS_BLOCK
GUARD = 60.0


def run(body: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(body(), GUARD))


@pytest.fixture
def export(tmp_path: Path) -> Path:
    root = tmp_path / "export"
    root.mkdir()
    (root / "f").write_bytes(b"x" * 100)
    (root / "g").write_bytes(b"y" * 100)
    return root



async def opened(client: Client, name: str = "f", flags: int = c.P9_RDWR) -> int:
    fid, _ = await client.walk(client.root, [name])  # type: ignore[arg-type]
    await client.lopen(fid, flags)
    return fid


def test_locks_need_an_open_fid_and_valid_arguments(export: Path) -> None:
    # r[9p2000l.server.lock]: EBADF unless open; bad type or flags EINVAL; fcntl's access rules
    async def body() -> None:
        async with serving(LocalFilesystem(export)) as server:
            a = await connect(server)
            walked, _ = await a.walk(a.root, ["f"])  # type: ignore[arg-type]
            for call in (a.lock(walked, RD), a.getlock(walked, RD)):
                with pytest.raises(OSError) as info:
                    await call
                assert info.value.errno == c.EBADF
            fid = await opened(a)
            for bad in (a.lock(fid, 3), a.lock(fid, RD, flags=c.P9_LOCK_FLAGS_RECLAIM), a.lock(fid, RD, flags=4),
                        a.getlock(fid, 3)):
                with pytest.raises(OSError) as info:
                    await bad
                assert info.value.errno == c.EINVAL
            with pytest.raises(OSError) as info:
                await a.lock(fid, RD, start=1 << 63)
            assert info.value.errno == c.EINVAL
            with pytest.raises(OSError) as info:
                await a.lock(fid, RD, start=(1 << 63) - 10, length=11)
            assert info.value.errno == c.EINVAL
            assert await a.lock(fid, RD, start=(1 << 63) - 10, length=10) == OK  # the last bytes fit
            reader = await opened(a, "g", c.P9_RDONLY)
            writer = await opened(a, "g", c.P9_WRONLY)
            with pytest.raises(OSError) as info:
                await a.lock(reader, WR)
            assert info.value.errno == c.EBADF  # a write lock needs a fid open for writing
            with pytest.raises(OSError) as info:
                await a.lock(writer, RD)
            assert info.value.errno == c.EBADF  # a read lock one open for reading
            assert await a.lock(reader, RD) == OK and await a.lock(writer, WR, start=200) == OK
            await a.close()

    run(body)


def test_two_connections_conflict_and_getlock_names_the_owner(export: Path) -> None:
    # r[9p2000l.server.lock]: BLOCKED at once with or without BLOCK; Rgetlock describes the lock
    # in the way with its owner's proc_id and client_id, or is UNLCK echoing the request
    async def body() -> None:
        async with serving(LocalFilesystem(export)) as server:
            a, b = await connect(server), await connect(server)
            fa, fb = await opened(a), await opened(b)
            assert await a.lock(fa, WR, 0, 10, proc_id=7, client_id="alpha") == OK
            assert await b.lock(fb, RD, 5, 10, proc_id=7, client_id="alpha") == BLOCKED  # another connection
            assert await b.lock(fb, RD, 5, 10, flags=BLOCK, proc_id=9, client_id="beta") == BLOCKED  # never held
            reply = await b.getlock(fb, RD, 5, 1, proc_id=9, client_id="beta")
            assert (reply.type, reply.start, reply.length, reply.proc_id, reply.client_id) == (WR, 0, 10, 7, "alpha")
            assert await b.lock(fb, WR, 10, 10, proc_id=9, client_id="beta") == OK  # next to it: no overlap
            reply = await b.getlock(fb, WR, 20, 5, proc_id=9, client_id="beta")
            assert (reply.type, reply.start, reply.length, reply.proc_id, reply.client_id) == (UN, 20, 5, 9, "beta")
            # to the end of the file (length 0), reported as length 0
            assert await a.lock(fa, RD, 1000, 0, proc_id=7, client_id="alpha") == OK
            assert await b.lock(fb, WR, 10**12, 1, proc_id=9, client_id="beta") == BLOCKED
            assert await b.lock(fb, RD, 10**12, 1, proc_id=9, client_id="beta") == OK  # readers share
            reply = await b.getlock(fb, WR, 5000, 0, proc_id=9, client_id="beta")
            assert (reply.type, reply.start, reply.length) == (RD, 1000, 0)
            # Linux asks every Tgetlock as UNLCK: answered as a write lock's test, read locks included
            reply = await b.getlock(fb, UN, 5000, 0, proc_id=9, client_id="beta")
            assert (reply.type, reply.start, reply.length, reply.proc_id) == (RD, 1000, 0, 7)
            reply = await b.getlock(fb, UN, 100, 10, proc_id=9, client_id="beta")
            assert (reply.type, reply.start, reply.length, reply.proc_id) == (UN, 100, 10, 9)
            await a.close()
            await b.close()

    run(body)


def test_owners_within_one_connection(export: Path) -> None:
    # r[9p2000l.server.lock]: the owner is (connection, proc_id, client_id): two fids of one
    # process share their locks; another proc_id, or client_id, on the same connection conflicts
    async def body() -> None:
        async with serving(LocalFilesystem(export)) as server:
            a, b = await connect(server), await connect(server)
            one, two, other = await opened(a), await opened(a), await opened(b)
            assert await a.lock(one, WR, 0, 10, proc_id=1, client_id="h") == OK
            assert await a.lock(two, WR, 0, 10, proc_id=1, client_id="h") == OK  # the same owner
            assert await a.lock(two, RD, 0, 1, proc_id=2, client_id="h") == BLOCKED
            assert await a.lock(two, RD, 0, 1, proc_id=1, client_id="other-host") == BLOCKED
            assert await a.lock(two, UN, 0, 10, proc_id=1, client_id="h") == OK  # releases what `one` took
            assert await b.lock(other, WR, 0, 10) == OK
            await a.close()
            await b.close()

    run(body)


def test_upgrades_downgrades_splits_and_merges(export: Path) -> None:
    # r[9p2000l.server.lock]: fcntl rules for byte ranges
    async def body() -> None:
        async with serving(LocalFilesystem(export)) as server:
            a, b = await connect(server), await connect(server)
            fa, fb = await opened(a), await opened(b)
            assert await a.lock(fa, RD, 0, 10) == OK
            assert await b.lock(fb, RD, 0, 10) == OK
            assert await a.lock(fa, WR, 0, 10) == BLOCKED  # an upgrade another reader is in the way of
            assert await b.lock(fb, UN, 0, 10) == OK
            assert await a.lock(fa, WR, 0, 10) == OK  # upgraded
            assert await b.lock(fb, RD, 3, 1) == BLOCKED
            assert await a.lock(fa, RD, 0, 10) == OK  # downgraded
            assert await b.lock(fb, RD, 3, 1) == OK and await b.lock(fb, UN, 3, 1) == OK
            assert await b.lock(fb, WR, 3, 1) == BLOCKED
            # split: a write lock with a hole unlocked in the middle
            assert await a.lock(fa, WR, 0, 30) == OK
            assert await a.lock(fa, UN, 10, 10) == OK
            assert await b.lock(fb, WR, 10, 10) == OK
            left = await b.getlock(fb, WR, 5, 1)
            right = await b.getlock(fb, WR, 25, 1)
            assert (left.type, left.start, left.length) == (WR, 0, 10)
            assert (right.type, right.start, right.length) == (WR, 20, 10)
            # merge: adjacent ranges of one type become one
            assert await b.lock(fb, UN, 10, 10) == OK
            assert await a.lock(fa, WR, 10, 10) == OK
            whole = await b.getlock(fb, RD, 15, 1)
            assert (whole.type, whole.start, whole.length) == (WR, 0, 30)
            await a.close()
            await b.close()

    run(body)


def test_locks_go_with_the_last_open_fid_and_with_the_connection(export: Path) -> None:
    # r[9p2000l.server.lock]: released when the connection's last open fid on the file is
    # clunked, and when the connection ends (r[9p2000l.server.disconnect])
    async def body() -> None:
        async with serving(LocalFilesystem(export)) as server:
            a, b = await connect(server), await connect(server)
            one, two, elsewhere = await opened(a), await opened(a), await opened(a, "g")
            walked, _ = await a.walk(a.root, ["f"])  # type: ignore[arg-type]
            fb = await opened(b)
            assert await a.lock(one, WR, 0, 10) == OK
            await a.clunk(one)
            await a.clunk(walked)  # never opened: counts for nothing
            await a.clunk(elsewhere)  # another file
            assert await b.lock(fb, RD, 0, 1) == BLOCKED  # `two` is still open
            await a.clunk(two)
            assert await b.lock(fb, RD, 0, 1) == OK
            assert await b.lock(fb, UN, 0, 1) == OK
            again = await opened(a)
            assert await a.lock(again, WR, 50, 0) == OK
            assert await b.lock(fb, WR, 60, 1) == BLOCKED
            await a.close()  # the disconnect releases it
            for _ in range(200):
                if await b.lock(fb, WR, 60, 1) == OK:
                    break
                await asyncio.sleep(0.01)
            reply = await b.getlock(fb, WR, 0, 0)
            assert reply.type == UN
            await b.close()

    run(body)


def test_a_new_tversion_drops_the_connections_locks(export: Path) -> None:
    # r[9p2000l.server.version.reset]: locks dropped, as on disconnect (r[9p2000l.server.lock])
    async def body() -> None:
        async with serving(LocalFilesystem(export)) as server:
            host, port = server.addresses[0].rsplit(":", 1)
            reader, writer = await asyncio.open_connection(host, int(port))
            frames: FrameReader[Rframe] = FrameReader(Rframe, max_size=1 << 20)

            async def ask(msg: Any) -> Any:
                writer.write(Tframe(tag=1, msg=msg).encode())
                frame = frames.next_frame()
                while frame is None:
                    frames.feed(await reader.read(1 << 16))
                    frame = frames.next_frame()
                return frame.msg

            version = Tversion(msize=65536, version="9P2000.L")
            assert isinstance(await ask(version), Rversion)
            for msg in (Tattach(fid=0, afid=c.NOFID, uname="", aname="", n_uname=c.NONUNAME),
                        Twalk(fid=0, newfid=1, wnames=["f"]), Tlopen(fid=1, flags=c.P9_RDWR)):
                await ask(msg)
            reply = await ask(Tlock(fid=1, type=WR, flags=0, start=0, length=0, proc_id=1, client_id="raw"))
            assert reply == Rlock(status=OK)
            b = await connect(server)
            fb = await opened(b)
            assert await b.lock(fb, WR, 0, 1) == BLOCKED
            assert isinstance(await ask(version), Rversion)
            assert await b.lock(fb, WR, 0, 1) == OK
            writer.close()
            await b.close()

    run(body)


def test_a_connection_past_its_ranges_gets_error(export: Path) -> None:
    # r[9p2000l.server.lock]: ERROR for locks the server cannot record
    async def body() -> None:
        fs = LocalFilesystem(export)
        fs.locks.table.max_ranges = 3
        async with serving(fs) as server:
            a = await connect(server)
            fa = await opened(a)
            for start in (0, 10, 20):
                assert await a.lock(fa, RD, start, 5) == OK
            assert await a.lock(fa, RD, 30, 5) == ERROR
            assert await a.lock(fa, UN, 1, 1) == ERROR  # a split is one more range too
            assert await a.lock(fa, RD, 5, 5) == OK  # merging makes fewer
            assert await a.lock(fa, RD, 100, 1, client_id="h" * 256) == ERROR  # too long an owner to keep
            assert await a.lock(fa, RD, 100, 1, client_id="h" * 255) == OK  # the longest kept
            await a.close()

    run(body)


def test_a_lock_the_host_cannot_record_is_error(export: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # r[9p2000l.server.lock]: ERROR (Linux: ENOLCK) when the host refuses for another reason
    # than a lock in the way, as a file system without lock support does
    real = fcntl.fcntl

    def no_locks(fd: int, command: int, arg: Any = 0) -> Any:
        if command == fcntl.F_OFD_SETLK and struct.unpack("hhqqi4x", arg)[0] != fcntl.F_UNLCK:
            raise OSError(errno.ENOLCK, "no locks here")
        return real(fd, command, arg)

    async def body() -> None:
        async with serving(LocalFilesystem(export)) as server:
            a, b = await connect(server), await connect(server)
            fa, fb = await opened(a), await opened(b)
            monkeypatch.setattr(locks.fcntl, "fcntl", no_locks)
            assert await a.lock(fa, WR, 0, 10) == ERROR
            monkeypatch.setattr(locks.fcntl, "fcntl", real)
            assert await b.lock(fb, WR, 0, 10) == OK  # nothing was recorded
            await a.close()
            await b.close()

    run(body)


def test_read_only_exports_lock_too(export: Path) -> None:
    # r[9p2000l.server.read-only]: Tlock and Tgetlock work as usual
    async def body() -> None:
        async with serving(LocalFilesystem(export, read_only=True)) as server:
            a, b = await connect(server), await connect(server)
            fa, fb = await opened(a, flags=c.P9_RDONLY), await opened(b, flags=c.P9_RDONLY)
            assert await a.lock(fa, RD, 0, 0) == OK
            assert (await b.getlock(fb, RD, 0, 0)).type == UN
            await a.close()
            await b.close()

    run(body)


# -- processes on the host --------------------------------------------------------------------------

HOLDER = textwrap.dedent("""
    import fcntl, os, struct, sys
    fd = os.open(sys.argv[1], os.O_RDWR)
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 0)  # a classic POSIX lock on bytes 0..9
    print("held", flush=True)
    sys.stdin.readline()
""")


def _try_host_lock(path: Path, kind: int, start: int, length: int) -> tuple[bool, int, int]:
    """Whether a host process could take the lock now, and the type and pid F_GETLK reports."""
    script = textwrap.dedent("""
        import fcntl, os, struct, sys
        kind, start, length = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
        fd = os.open(sys.argv[1], os.O_RDWR)
        found = struct.unpack("hhqqi4x", fcntl.fcntl(fd, fcntl.F_GETLK, struct.pack("hhqqi4x", kind, 0, start, length, 0)))
        try:
            fcntl.fcntl(fd, fcntl.F_SETLK, struct.pack("hhqqi4x", kind, 0, start, length, 0))
            took = 1
        except OSError:
            took = 0
        print(took, found[0], found[4])
    """)
    out = subprocess.run([sys.executable, "-c", script, str(path), str(kind), str(start), str(length)],
                         capture_output=True, text=True, timeout=30, check=True)
    took, found_type, pid = out.stdout.split()
    return took == "1", int(found_type), int(pid)


def test_host_processes_and_clients_respect_each_other(export: Path) -> None:
    # r[9p2000l.server.lock]: backed by real fcntl locks; a host lock in the way is BLOCKED and
    # Rgetlock reports its pid with an empty client_id
    path = export / "f"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)

    async def body() -> None:
        assert holder.stdout is not None
        assert (await asyncio.to_thread(holder.stdout.readline)).strip() == "held"
        async with serving(LocalFilesystem(export)) as server:
            a = await connect(server)
            fa = await opened(a)
            assert await a.lock(fa, RD, 5, 1) == BLOCKED
            assert await a.lock(fa, WR, 9, 2, flags=BLOCK) == BLOCKED
            reply = await a.getlock(fa, RD, 0, 0)
            assert (reply.type, reply.start, reply.length, reply.proc_id, reply.client_id) == (
                WR, 0, 10, holder.pid, "")
            assert await a.lock(fa, WR, 10, 10) == OK  # beside it
            # and the other way: the host sees the client's lock
            took, found, pid = await asyncio.to_thread(_try_host_lock, path, fcntl.F_RDLCK, 15, 1)
            assert (took, found, pid) == (False, fcntl.F_WRLCK, -1)  # an OFD lock has no pid
            assert await a.lock(fa, RD, 10, 10) == OK  # downgraded: host readers may now share
            took, _, _ = await asyncio.to_thread(_try_host_lock, path, fcntl.F_RDLCK, 15, 1)
            assert took
            took, _, _ = await asyncio.to_thread(_try_host_lock, path, fcntl.F_WRLCK, 15, 1)
            assert not took
            assert await a.lock(fa, UN, 0, 0) == OK
            took, found, _ = await asyncio.to_thread(_try_host_lock, path, fcntl.F_WRLCK, 15, 1)
            assert took and found == fcntl.F_UNLCK
            # the host process ends: its lock goes, and the client may take the range
            assert holder.stdin is not None
            holder.stdin.write("\n")
            holder.stdin.flush()
            await asyncio.to_thread(holder.wait, 30)
            assert await a.lock(fa, WR, 0, 10) == OK
            # released on the host with the connection
            await a.close()
            for _ in range(200):
                took, _, _ = await asyncio.to_thread(_try_host_lock, path, fcntl.F_WRLCK, 0, 10)
                if took:
                    break
                await asyncio.sleep(0.01)
            assert took

    try:
        run(body)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_one_connections_readers_and_writers_on_the_host(export: Path) -> None:
    # r[9p2000l.server.lock]: a connection's locks on the host are its owners' locks together,
    # also when a writer comes after a reader (the host descriptor is reopened for writing)
    path = export / "f"

    async def body() -> None:
        async with serving(LocalFilesystem(export)) as server:
            a = await connect(server)
            reader = await opened(a, flags=c.P9_RDONLY)
            writer = await opened(a, flags=c.P9_RDWR)
            assert await a.lock(reader, RD, 0, 10, proc_id=1) == OK
            assert await a.lock(reader, RD, 5, 10, proc_id=2) == OK
            assert await a.lock(writer, WR, 50, 10, proc_id=3) == OK
            assert (await asyncio.to_thread(_try_host_lock, path, fcntl.F_WRLCK, 0, 1))[0] is False  # still held
            assert (await asyncio.to_thread(_try_host_lock, path, fcntl.F_RDLCK, 55, 1))[0] is False
            assert await a.lock(reader, UN, 0, 0, proc_id=1) == OK  # proc 2 still reads 5..14
            assert (await asyncio.to_thread(_try_host_lock, path, fcntl.F_WRLCK, 0, 5))[0] is True
            assert (await asyncio.to_thread(_try_host_lock, path, fcntl.F_WRLCK, 5, 1))[0] is False
            assert (await asyncio.to_thread(_try_host_lock, path, fcntl.F_WRLCK, 14, 1))[0] is False
            assert await a.lock(reader, UN, 0, 0, proc_id=2) == OK
            assert (await asyncio.to_thread(_try_host_lock, path, fcntl.F_WRLCK, 0, 20))[0] is True
            await a.close()

    run(body)


@pytest.mark.parametrize("hung", ["open", "fcntl"])
def test_a_lock_whose_host_call_hangs_holds_up_no_other_request(export: Path, hung: str,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """r[9p2000l.server.concurrency]: on a file system that is not local the host's part of
    Tlock and Tgetlock (opening the descriptor that holds a connection's locks, fcntl) runs off
    the event loop, so an open or a fcntl that waits (NFS, FUSE) holds up neither another client
    nor the same client's other requests. Simulated with ``inline=False`` (what such an export
    gets): the server's first open of such a descriptor (Tlock), or its first F_OFD_GETLK
    (Tgetlock), waits for a gate."""
    import os
    import threading

    gate, entered = threading.Event(), threading.Event()
    real_open, real_fcntl = os.open, fcntl.fcntl

    def waiting_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if not entered.is_set() and flags & os.O_NOCTTY:  # only the lock table's descriptors are opened with it
            entered.set()
            gate.wait(GUARD / 4)
        return real_open(path, flags, *args, **kwargs)

    def waiting_fcntl(fd: int, command: int, *args: Any) -> Any:
        if not entered.is_set() and command == locks._F_OFD_GETLK:
            entered.set()
            gate.wait(GUARD / 4)
        return real_fcntl(fd, command, *args)

    if hung == "open":
        monkeypatch.setattr(os, "open", waiting_open)
    else:
        monkeypatch.setattr(fcntl, "fcntl", waiting_fcntl)
    # without the fix the loop itself waits in the call: this releases it (late), so the test fails
    # rather than hangs
    rescue = threading.Timer(GUARD / 6, gate.set)
    rescue.start()

    async def body() -> None:
        async with serving(LocalFilesystem(export, inline=False)) as server:
            a, b = await connect(server), await connect(server)
            fa, fb = await opened(a), await opened(b, "g")
            if hung == "open":
                stuck = asyncio.ensure_future(a.lock(fa, WR, 0, 10))
            else:
                stuck = asyncio.ensure_future(a.getlock(fa, WR, 0, 10))
            while not entered.is_set():
                await asyncio.sleep(0.01)
            assert (await b.read(fb, 0, 10)) == b"y" * 10  # another client
            assert (await a.read(fa, 0, 10)) == b"x" * 10  # the same client's other request
            assert await b.lock(fb, WR, 0, 10) == OK  # another connection's lock on another file
            answered_while_hung = not gate.is_set()
            gate.set()
            result = await stuck
            assert result == OK if hung == "open" else result.type == UN
            assert answered_while_hung
            await a.close()
            await b.close()

    try:
        run(body)
    finally:
        gate.set()
        rescue.cancel()

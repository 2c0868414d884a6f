"""The asyncio ``Client`` against scriptable fake servers that misbehave on purpose.

Each test starts a ``Fake`` (``asyncio.start_server`` on 127.0.0.1 port 0, or a unix socket),
which cuts the client's bytes into ``Tframe``s, records every one in ``fake.requests`` and
answers through a per-test handler: ``handler(fake, frame)`` returns a list of actions (an
``Rframe``; raw ``bytes``; ``DROP`` to close the connection, ``RESET`` to reset it; a coroutine
such as ``later(...)`` or ``dribble(...)`` to answer in the background) or ``None`` for the
default answer. ``[]`` never answers; the test can answer later itself with ``fake.send``.
Every test runs under ``asyncio.wait_for``, so a client that hangs fails instead of hanging.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import inspect
import socket
import struct
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from jetwire import DecodeError, FrameReader
from jetwire.p9 import (
    Client,
    ProtocolError,
    Qid,
    Rattach,
    Rclunk,
    Rerror,
    Rflush,
    Rframe,
    Rgetattr,
    Rlcreate,
    Rlerror,
    Rlopen,
    Rread,
    Rremove,
    Rsetattr,
    Rversion,
    Rwalk,
    Rwrite,
    Tattach,
    Tclunk,
    Tflush,
    Tframe,
    Tgetattr,
    Tlcreate,
    Tlopen,
    Tread,
    Tremove,
    Trename,
    Tsetattr,
    Tunlinkat,
    Tversion,
    Twalk,
    Twrite,
)
from jetwire.p9 import constants as c

DROP = "drop"  # action: close the connection
RESET = "reset"  # action: abort it with a TCP RST
CONTENT = b"hello, world"
GUARD = 10.0  # no test may take longer than this, whatever the client does

Handler = Callable[["Fake", Tframe], "list[Any] | None"]


def qid(path: int, type_: int = 0) -> Qid:
    return Qid(type=type_, version=0, path=path)


def rgetattr(size: int) -> Rgetattr:
    return Rgetattr(valid=c.P9_GETATTR_BASIC, qid=qid(size), mode=0o100644, uid=0, gid=0, nlink=1, rdev=0,
                    size=size, blksize=4096, blocks=0, atime_sec=0, atime_nsec=0, mtime_sec=0, mtime_nsec=0,
                    ctime_sec=0, ctime_nsec=0, btime_sec=0, btime_nsec=0, gen=0, data_version=0)


def reply(frame: Tframe, msg: Any) -> Rframe:
    return Rframe(tag=frame.tag, msg=msg)


def raw(type_: int, tag: int, body: bytes) -> bytes:
    """A hand-made frame: any type number, any body."""
    return struct.pack("<IBH", 7 + len(body), type_, tag) + body


class Fake:
    def __init__(self, handler: Handler | None = None, *, msize: int | None = None,
                 version: str = c.VERSION_9P2000L) -> None:
        self.handler = handler
        self.msize = msize  # the Rversion msize; None echoes the proposal
        self.version = version
        self.requests: list[Tframe] = []
        self.errors: list[Exception] = []  # frames the client sent that did not decode; handler crashes
        self.eof = asyncio.Event()  # the client closed the connection
        self.writer: asyncio.StreamWriter | None = None
        self.tasks: list[asyncio.Future[Any]] = []  # background answers (later, dribble)
        self.server: asyncio.AbstractServer | None = None
        self.port = 0

    async def start(self, unix_path: str | None = None) -> None:
        if unix_path is not None:
            self.server = await asyncio.start_unix_server(self._serve, path=unix_path)
        else:
            self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
            self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Closes the server; fails if the client sent a frame that did not decode or a handler crashed."""
        assert self.server is not None
        self.server.close()
        for task in self.tasks:
            task.cancel()
        if self.writer is not None:
            self.writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.server.wait_closed(), 2)
        if self.errors:
            raise AssertionError(f"the fake server failed: {self.errors}") from self.errors[0]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        frames = FrameReader(Tframe)
        try:
            while data := await reader.read(65536):
                frames.feed(data)
                while True:
                    try:
                        frame = frames.next_frame()
                    except DecodeError as exc:
                        self.errors.append(exc)
                        continue
                    if frame is None:
                        break
                    self.requests.append(frame)
                    actions = self.handler(self, frame) if self.handler else None
                    for action in self.default(frame) if actions is None else actions:
                        if isinstance(action, str):  # DROP or RESET
                            if action == RESET:  # linger 0: closing sends RST, the client's read fails
                                sock = writer.get_extra_info("socket")
                                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                                writer.transport.abort()
                            writer.close()
                            return
                        if inspect.isawaitable(action):
                            self.tasks.append(asyncio.ensure_future(action))
                        else:
                            self.send(action)
            self.eof.set()
        except ConnectionError:
            self.eof.set()
        except Exception as exc:  # a bug in the test's handler: fail the test, not just this connection
            self.errors.append(exc)
        finally:
            writer.close()

    def send(self, *items: Rframe | bytes) -> None:
        assert self.writer is not None
        for item in items:
            self.writer.write(item if isinstance(item, bytes) else item.encode())

    def default(self, f: Tframe) -> list[Any]:
        m = f.msg
        if isinstance(m, Tversion):
            return [reply(f, Rversion(msize=m.msize if self.msize is None else self.msize, version=self.version))]
        if isinstance(m, Tattach):
            return [reply(f, Rattach(qid=qid(1, c.P9_QTDIR)))]
        if isinstance(m, Twalk):
            return [reply(f, Rwalk(wqids=[qid(100 + i) for i in range(len(m.wnames))]))]
        if isinstance(m, Tclunk):
            return [reply(f, Rclunk())]
        if isinstance(m, Tflush):
            return [reply(f, Rflush())]
        if isinstance(m, Tgetattr):
            return [reply(f, rgetattr(m.fid * 10))]
        if isinstance(m, Tlopen):
            return [reply(f, Rlopen(qid=qid(7), iounit=0))]
        if isinstance(m, Tread):
            return [reply(f, Rread(data=CONTENT[m.offset:m.offset + m.count]))]
        return [reply(f, Rlerror(ecode=95))]

    def of(self, kind: type) -> list[Tframe]:
        return [f for f in self.requests if isinstance(f.msg, kind)]

    async def until(self, condition: Callable[[], object], timeout: float = 3.0) -> None:
        """Waits until ``condition()`` holds (checked every few ms); fails after ``timeout``."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting; the fake got {self.requests}")
            await asyncio.sleep(0.005)


async def later(fake: Fake, delay: float, *items: Rframe | bytes) -> None:
    await asyncio.sleep(delay)
    fake.send(*items)


async def dribble(fake: Fake, data: bytes) -> None:
    """Sends ``data`` one byte per write (and per TCP segment, as each write is drained first)."""
    assert fake.writer is not None
    for i in range(len(data)):
        fake.send(data[i:i + 1])
        await fake.writer.drain()
        await asyncio.sleep(0.0005)


def run(body: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(body(), GUARD))


@contextlib.asynccontextmanager
async def serving(handler: Handler | None = None, *, msize: int | None = None,
                  **connect: Any) -> AsyncIterator[tuple[Fake, Client]]:
    fake = Fake(handler, msize=msize)
    await fake.start()
    connect.setdefault("timeout", 2.0)
    client = await Client.connect("127.0.0.1", fake.port, **connect)
    try:
        yield fake, client
    finally:
        await client.close()
        await fake.stop()


def only_root(client: Client) -> bool:
    return client.session.fids_in_use == {client.root}


def clunked(fake: Fake, fid: int) -> bool:
    return any(f.msg.fid == fid for f in fake.of(Tclunk))


# -- 1. no answer ------------------------------------------------------------------------------------


def test_a_request_nobody_answers_times_out_and_is_flushed() -> None:
    def handler(fake: Fake, f: Tframe) -> list[Any] | None:
        return [] if isinstance(f.msg, Tgetattr) and f.msg.fid == 5 else None

    async def body() -> None:
        async with serving(handler, timeout=0.5) as (fake, client):
            start = time.monotonic()
            with pytest.raises(TimeoutError, match="Tgetattr"):
                await client.getattr(5)
            assert time.monotonic() - start > 0.4  # not before its timeout (how late depends on the machine's load)
            # r[9p2000l.flush]: the abandoned tag is flushed, and free again once Rflush is back
            (request,) = fake.of(Tgetattr)
            await fake.until(lambda: fake.of(Tflush))
            (flush,) = fake.of(Tflush)
            assert flush.msg.oldtag == request.tag and flush.tag not in (request.tag, c.NOTAG)
            await fake.until(lambda: not client.session.pending)
            assert (await client.getattr(6)).size == 60  # the connection still works

    run(body)


@pytest.mark.parametrize("late_reply", [False, True])
def test_a_walk_that_times_out_leaks_no_fid(late_reply: bool) -> None:
    def handler(fake: Fake, f: Tframe) -> list[Any] | None:
        if isinstance(f.msg, Twalk):
            return []
        if isinstance(f.msg, Tflush) and late_reply:  # the walk did succeed, just too late
            walk = fake.of(Twalk)[0]
            return [later(fake, 0.1, reply(walk, Rwalk(wqids=[qid(9)])), reply(f, Rflush()))]
        return None

    async def body() -> None:  # r[9p2000l.flush]
        async with serving(handler, timeout=0.5) as (fake, client):
            with pytest.raises(TimeoutError, match="Twalk"):
                await client.walk(client.root, ["a"])
            newfid = fake.of(Twalk)[0].msg.newfid
            await fake.until(lambda: fake.of(Tflush) and not client.session.pending)
            if late_reply:
                await fake.until(lambda: clunked(fake, newfid))  # made after all: clunked, not leaked
            else:
                assert not fake.of(Tclunk)  # Rflush without Rwalk: the fid was never made
            await fake.until(lambda: only_root(client) and not client.session.pending)

    run(body)


# -- 2. silence and hang-ups ---------------------------------------------------------------------------


def test_a_server_that_never_answers_tversion_fails_connect() -> None:
    async def body() -> None:
        fake = Fake(lambda fake, f: [])
        await fake.start()
        start = time.monotonic()
        with pytest.raises(TimeoutError, match="Tversion"):
            await Client.connect("127.0.0.1", fake.port, timeout=0.5)
        assert time.monotonic() - start < 2.0
        await fake.until(fake.eof.is_set)  # the client hung up
        (version,) = fake.requests
        assert version.tag == c.NOTAG  # r[9p2000l.version.first]
        await fake.stop()

    run(body)


@pytest.mark.parametrize("kind", [Tversion, Tattach])
def test_a_server_that_hangs_up_during_connect(kind: type) -> None:
    async def body() -> None:
        fake = Fake(lambda fake, f: [DROP] if isinstance(f.msg, kind) else None)
        await fake.start()
        with pytest.raises(ConnectionError):
            await Client.connect("127.0.0.1", fake.port, timeout=2.0)
        await fake.stop()

    run(body)


@pytest.mark.parametrize("how", [DROP, RESET])
def test_a_server_that_hangs_up_mid_request(how: str) -> None:
    def handler(fake: Fake, f: Tframe) -> list[Any] | None:
        if isinstance(f.msg, Tgetattr):
            return [how] if f.msg.fid == 4 else []  # fids 1-3 wait; 4 hangs up on all of them
        return None

    async def body() -> None:
        async with serving(handler) as (fake, client):
            start = time.monotonic()
            results = await asyncio.gather(*(client.getattr(fid) for fid in (1, 2, 3, 4)), return_exceptions=True)
            assert [type(r) for r in results] == [ConnectionError] * 4, results
            assert time.monotonic() - start < 1.5  # at once, not after the 2 s timeout
            with pytest.raises(ConnectionError):
                await client.getattr(1)
            with pytest.raises(ConnectionError):
                await client.read_bytes("a")
            assert len(fake.of(Tgetattr)) == 4  # nothing more was sent

    run(body)


def test_close_fails_outstanding_calls() -> None:
    async def body() -> None:
        async with serving(lambda fake, f: [] if isinstance(f.msg, Tgetattr) else None) as (fake, client):
            task = asyncio.ensure_future(client.getattr(1))
            await fake.until(lambda: fake.of(Tgetattr))
            await client.close()
            with pytest.raises(ConnectionError):
                await task
            with pytest.raises(ConnectionError):
                await client.getattr(2)
            await fake.until(fake.eof.is_set)

    run(body)


# -- 3. version ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("version", "match"), [("unknown", "unknown"), ("9P2000", "9P2000"), ("9P2000.u", "9P2000.u")])
def test_a_version_the_client_does_not_speak_fails_connect(version: str, match: str) -> None:
    async def body() -> None:  # r[9p2000l.version.string]
        fake = Fake(version=version)
        await fake.start()
        with pytest.raises(ProtocolError, match=match):
            await Client.connect("127.0.0.1", fake.port, timeout=2.0)
        await fake.until(fake.eof.is_set)  # the client stops: it hangs up and attaches nothing
        assert [type(f.msg) for f in fake.requests] == [Tversion]
        await fake.stop()

    run(body)


def test_a_dot_extension_of_9p2000l_is_accepted() -> None:
    async def body() -> None:  # r[9p2000l.version.string]
        fake = Fake(version="9P2000.L.jetwire")
        await fake.start()
        client = await Client.connect("127.0.0.1", fake.port, timeout=2.0)
        assert client.root is not None
        await client.close()
        await fake.stop()

    run(body)


def test_an_msize_above_the_proposal_fails_connect() -> None:
    async def body() -> None:  # r[9p2000l.version.msize]
        fake = Fake(msize=8193)
        await fake.start()
        with pytest.raises(ProtocolError, match="msize"):
            await Client.connect("127.0.0.1", fake.port, msize=8192, timeout=2.0)
        assert [type(f.msg) for f in fake.requests] == [Tversion]
        await fake.stop()

    run(body)


def test_an_msize_below_the_proposal_is_used() -> None:
    async def body() -> None:  # r[9p2000l.version.msize], r[9p2000l.version.iounit]
        async with serving(msize=8192) as (fake, client):
            assert fake.requests[0].msg.msize == 65536 + c.P9_IOHDRSZ  # the proposal
            assert client.msize == 8192
            assert await client.read(3, 0, 1 << 20) == CONTENT
            assert fake.of(Tread)[0].msg.count == 8192 - c.P9_IOHDRSZ

    run(body)


# -- 4. errors ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "ecode", "exception"), [
    (Rlerror, 2, FileNotFoundError), (Rlerror, 13, PermissionError),
    (Rerror, 2, FileNotFoundError), (Rerror, 13, PermissionError),
])
def test_error_replies_become_oserrors(kind: type, ecode: int, exception: type) -> None:
    def handler(fake: Fake, f: Tframe) -> list[Any] | None:
        return [reply(f, kind(ecode=ecode))] if isinstance(f.msg, Twalk) else None

    async def body() -> None:  # r[9p2000l.error.rlerror], r[9p2000l.error.rerror-compat]
        async with serving(handler) as (fake, client):
            with pytest.raises(exception) as info:
                await client.walk(client.root, ["a", "b"])
            assert info.value.errno == {2: errno.ENOENT, 13: errno.EACCES}[ecode]
            assert info.value.filename == "a/b"
            assert only_root(client) and not fake.of(Tclunk)  # a failed walk made no fid
            assert (await client.getattr(2)).size == 20

    run(body)


# -- 5. pipelining ---------------------------------------------------------------------------------------------


def test_32_requests_in_flight_answered_in_reverse() -> None:
    held: list[Tframe] = []

    def handler(fake: Fake, f: Tframe) -> list[Any] | None:
        if not isinstance(f.msg, Tgetattr):
            return None
        held.append(f)
        return [reply(h, rgetattr(h.msg.fid * 7)) for h in reversed(held)] if len(held) == 32 else []

    async def body() -> None:  # r[9p2000l.frame.tag]
        async with serving(handler) as (fake, client):
            fids = list(range(1000, 1032))
            results = await asyncio.gather(*(client.getattr(fid) for fid in fids))
            assert [r.size for r in results] == [fid * 7 for fid in fids]
            tags = [f.tag for f in held]
            assert len(fake.of(Tgetattr)) == 32 and len(set(tags)) == 32 and c.NOTAG not in tags
            assert not client.session.pending

    run(body)


# -- 6. cancellation ---------------------------------------------------------------------------------------------


def test_a_cancelled_read_is_flushed_and_its_tag_reused_only_after_rflush() -> None:
    def handler(fake: Fake, f: Tframe) -> list[Any] | None:
        return [] if isinstance(f.msg, (Tread, Tflush)) else None  # the test answers Tflush itself

    async def body() -> None:  # r[9p2000l.flush], r[9p2000l.frame.tag]
        async with serving(handler) as (fake, client):
            task = asyncio.ensure_future(client.read(5, 0, 100))
            await fake.until(lambda: fake.of(Tread))
            oldtag = fake.of(Tread)[0].tag
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await fake.until(lambda: fake.of(Tflush))
            (flush,) = fake.of(Tflush)
            assert flush.msg.oldtag == oldtag and flush.tag not in (oldtag, c.NOTAG)
            # until Rflush the old tag is taken: point the tag allocator at it, it must step over
            client.session._next_tag = oldtag
            assert (await client.getattr(2)).size == 20
            assert fake.of(Tgetattr)[-1].tag not in (oldtag, flush.tag)
            fake.send(reply(flush, Rflush()))
            await fake.until(lambda: not client.session.pending)
            client.session._next_tag = oldtag  # now it is free: reusing it gets the new reply only
            assert (await client.getattr(3)).size == 30
            assert fake.of(Tgetattr)[-1].tag == oldtag
            assert len(fake.of(Tflush)) == 1

    run(body)


@pytest.mark.parametrize("walk_replied", [True, False])
def test_a_cancelled_walk_leaks_no_fid(walk_replied: bool) -> None:
    walks: list[Tframe] = []

    def handler(fake: Fake, f: Tframe) -> list[Any] | None:
        if isinstance(f.msg, Twalk):
            walks.append(f)
            return []
        if isinstance(f.msg, Tflush) and walk_replied:  # the walk's success wins the race with Tflush
            return [reply(walks[0], Rwalk(wqids=[qid(9)])), reply(f, Rflush())]
        return None

    async def body() -> None:  # r[9p2000l.flush]
        async with serving(handler) as (fake, client):
            task = asyncio.ensure_future(client.walk(client.root, ["a"]))
            await fake.until(lambda: walks)
            newfid = walks[0].msg.newfid
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await fake.until(lambda: fake.of(Tflush) and not client.session.pending)
            assert fake.of(Tflush)[0].msg.oldtag == walks[0].tag
            if walk_replied:
                await fake.until(lambda: clunked(fake, newfid))  # the fid exists on the server: clunked
            else:
                assert not fake.of(Tclunk)  # no reply before Rflush: the fid was never made
            await fake.until(lambda: only_root(client) and not client.session.pending)
            assert (await client.getattr(2)).size == 20

    run(body)


# -- 7, 8. walks -------------------------------------------------------------------------------------------------


def test_a_partial_walk_is_enoent_and_the_newfid_is_clunked() -> None:
    def handler(fake: Fake, f: Tframe) -> list[Any] | None:
        return [reply(f, Rwalk(wqids=[qid(5, c.P9_QTDIR)]))] if isinstance(f.msg, Twalk) else None

    async def body() -> None:  # r[9p2000l.walk.partial]
        async with serving(handler) as (fake, client):
            with pytest.raises(FileNotFoundError) as info:
                await client.walk(client.root, ["a", "b"])
            assert info.value.filename == "a/b"
            newfid = fake.of(Twalk)[0].msg.newfid
            await fake.until(lambda: clunked(fake, newfid))  # diod creates it regardless
            await fake.until(lambda: only_root(client) and not client.session.pending)
            with pytest.raises(FileNotFoundError):
                await client.stat("a/b")
            await fake.until(lambda: only_root(client) and not client.session.pending)

    run(body)


@pytest.mark.parametrize(("count", "chunks"), [(0, [0]), (16, [16]), (17, [16, 1]), (40, [16, 16, 8])])
def test_long_walks_are_split_into_16_name_walks(count: int, chunks: list[int]) -> None:
    async def body() -> None:  # r[9p2000l.walk.max], r[9p2000l.walk.clone]
        async with serving() as (fake, client):
            names = [f"n{i}" for i in range(count)]
            newfid, qids = await client.walk(client.root, names)
            assert len(qids) == count
            walks = [f.msg for f in fake.of(Twalk)]
            assert [len(w.wnames) for w in walks] == chunks
            assert [name for w in walks for name in w.wnames] == names
            assert walks[0].fid == client.root and newfid != client.root
            assert all(w.newfid == newfid for w in walks) and all(w.fid == newfid for w in walks[1:])
            await client.clunk(newfid)
            assert only_root(client)

    run(body)


@pytest.mark.parametrize("failure", ["rlerror", "partial"])
def test_a_failing_later_walk_chunk_clunks_the_newfid(failure: str) -> None:
    def handler(fake: Fake, f: Tframe) -> list[Any] | None:
        if isinstance(f.msg, Twalk) and f.msg.fid == f.msg.newfid:  # the second chunk
            return [reply(f, Rlerror(ecode=2) if failure == "rlerror" else Rwalk(wqids=[qid(1), qid(2), qid(3)]))]
        return None

    async def body() -> None:  # r[9p2000l.walk.max], r[9p2000l.walk.partial]
        async with serving(handler) as (fake, client):
            names = [f"n{i}" for i in range(40)]
            with pytest.raises(FileNotFoundError) as info:
                await client.walk(client.root, names)
            if failure == "partial":
                assert info.value.filename == "/".join(names[:20])  # 16 + 3 walked, the 20th is missing
            assert len(fake.of(Twalk)) == 2
            newfid = fake.of(Twalk)[0].msg.newfid
            await fake.until(lambda: clunked(fake, newfid))
            await fake.until(lambda: only_root(client) and not client.session.pending)

    run(body)


# -- 9, 10. broken replies ------------------------------------------------------------------------------------------


GOOD = rgetattr(0).encode()  # a valid Rgetattr body (153 bytes)
BROKEN = {
    "short body": lambda tag: raw(25, tag, GOOD[:10]),
    "bytes left over": lambda tag: raw(25, tag, GOOD + b"xyz"),
    "unknown type 200": lambda tag: raw(200, tag, GOOD),  # r[9p2000l.frame.unknown-type]: the client survives
    "type 107 in the 9P2000 form": lambda tag: raw(107, tag, b"\x06\x00ENOENT"),
    "wrong reply type": lambda tag: Rframe(tag=tag, msg=Rclunk()).encode(),
    "Rflush to a request": lambda tag: Rframe(tag=tag, msg=Rflush()).encode(),
}


@pytest.mark.parametrize("broken", list(BROKEN))
def test_a_broken_reply_fails_only_its_own_request(broken: str) -> None:
    held: list[Tframe] = []

    def handler(fake: Fake, f: Tframe) -> list[Any] | None:
        if isinstance(f.msg, Tgetattr) and f.msg.fid in (1, 2):
            held.append(f)
            if len(held) < 2:
                return []
            bad, good = sorted(held, key=lambda h: h.msg.fid)
            return [BROKEN[broken](bad.tag) + reply(good, rgetattr(22)).encode()]  # one write, bad first
        return None

    async def body() -> None:  # r[9p2000l.frame.header], r[9p2000l.frame.reply-type]
        async with serving(handler, msize=4096) as (fake, client):
            first, second = await asyncio.gather(client.getattr(1), client.getattr(2), return_exceptions=True)
            assert isinstance(first, ProtocolError), first
            assert "Tgetattr" in str(first)
            assert isinstance(second, Rgetattr) and second.size == 22
            assert not client.session.pending
            assert (await client.getattr(3)).size == 30  # the stream is still in step
            assert len(fake.of(Tgetattr)) == 3

    run(body)


def test_a_frame_below_7_bytes_fails_no_request() -> None:
    """A 4-byte frame has no tag: the reader must not take one from the next frame's size bytes
    (it did before 4960a4e, failing whichever request had tag ``size >> 8`` of the next frame).
    It puts the stream out of step: the call fails with ConnectionError, saying why."""
    def handler(fake: Fake, f: Tframe) -> list[Any] | None:
        if not isinstance(f.msg, Tread):
            return None
        data = bytes(f.tag * 256 + 50 - 11)  # the Rread's size[4] is 0x??TT: its bytes 1-2 read as the tag
        return [struct.pack("<I", 4) + reply(f, Rread(data=data)).encode()]  # a frame of just size[4]

    async def body() -> None:  # r[9p2000l.frame.header]
        async with serving(handler) as (_, client):
            with pytest.raises(ConnectionError, match="size 4 is below the 7-byte minimum"):
                await client.read(5, 0, 4096)

    run(body)


def test_a_reply_that_arrives_one_byte_at_a_time() -> None:
    def handler(fake: Fake, f: Tframe) -> list[Any] | None:
        if isinstance(f.msg, Tgetattr):
            return [dribble(fake, reply(f, rgetattr(f.msg.fid * 10)).encode())]
        return None

    async def body() -> None:  # r[9p2000l.frame.header]: size[4] says where the frame ends
        async with serving(handler) as (_, client):
            assert (await client.getattr(4)).size == 40
            assert (await client.getattr(5)).size == 50

    run(body)


def test_an_unsolicited_reply_ends_the_connection() -> None:
    def handler(fake: Fake, f: Tframe) -> list[Any] | None:
        if isinstance(f.msg, Tgetattr):
            return [Rframe(tag=f.tag + 100, msg=rgetattr(1)), reply(f, rgetattr(5))]
        return None

    async def body() -> None:  # r[9p2000l.frame.tag]: the stream is out of step, nothing after it is trusted
        async with serving(handler) as (_, client):
            with pytest.raises(ConnectionError, match="out of step"):
                await client.getattr(1)
            with pytest.raises(ConnectionError, match="out of step"):
                await client.getattr(2)

    run(body)


def test_an_rread_longer_than_asked_is_refused() -> None:
    def handler(fake: Fake, f: Tframe) -> list[Any] | None:
        return [reply(f, Rread(data=bytes(f.msg.count + 10)))] if isinstance(f.msg, Tread) else None

    async def body() -> None:  # r[9p2000l.read]: at most count bytes
        async with serving(handler) as (_, client):
            with pytest.raises(ProtocolError, match="15 bytes for a Tread of 5"):  # as Linux: refused
                await client.read(1, 0, 5)
            assert (await client.getattr(2)).size == 20

    run(body)


def test_an_rwrite_count_above_the_data_sent_is_refused() -> None:
    def handler(fake: Fake, f: Tframe) -> list[Any] | None:
        return [reply(f, Rwrite(count=len(f.msg.data) + 10))] if isinstance(f.msg, Twrite) else None

    async def body() -> None:  # r[9p2000l.write]: fewer than sent is allowed, more is not
        async with serving(handler) as (_, client):
            with pytest.raises(ProtocolError, match="13 bytes for a Twrite of 3"):
                await client.write(1, 0, b"abc")

    run(body)


# -- 11. fid hygiene -------------------------------------------------------------------------------------------------


def test_read_bytes_clunks_the_fid_when_lopen_fails() -> None:
    def handler(fake: Fake, f: Tframe) -> list[Any] | None:
        return [reply(f, Rlerror(ecode=13))] if isinstance(f.msg, Tlopen) else None

    async def body() -> None:  # r[9p2000l.clunk]
        async with serving(handler) as (fake, client):
            with pytest.raises(PermissionError):
                await client.read_bytes("d/f")
            (walk,) = fake.of(Twalk)
            assert walk.msg.wnames == ["d", "f"] and fake.of(Tlopen)[0].msg.fid == walk.msg.newfid
            assert clunked(fake, walk.msg.newfid)
            assert only_root(client) and not client.session.pending

    run(body)


@pytest.mark.parametrize("after_eexist", ["walk fails", "lopen fails"])
def test_write_bytes_over_a_file_that_vanishes_clunks_each_fid_once(after_eexist: str) -> None:
    """The walk finds no file, Tlcreate says EEXIST (another client made it), then the file is
    gone (walk ENOENT) or refuses Tlopen: the clone that Tlcreate used and the walked fids are
    each clunked exactly once, and no fid the client might hand out again is clunked behind
    its new owner's back."""
    failed_walks: set[int] = set()  # the tags of the walks answered ENOENT (tags are not reused here)

    def handler(fake: Fake, f: Tframe) -> list[Any] | None:
        m = f.msg
        if isinstance(m, Tlcreate):
            return [reply(f, Rlerror(ecode=c.EEXIST))]
        if isinstance(m, Twalk) and m.wnames == ["f"] and (not failed_walks or after_eexist == "walk fails"):
            failed_walks.add(f.tag)
            return [reply(f, Rlerror(ecode=c.ENOENT))]
        if isinstance(m, Tlopen) and after_eexist == "lopen fails":
            return [reply(f, Rlerror(ecode=c.EACCES))]
        return None

    async def body() -> None:
        async with serving(handler) as (fake, client):
            with pytest.raises(FileNotFoundError if after_eexist == "walk fails" else PermissionError):
                await client.write_bytes("d/f", b"data")
            await fake.until(lambda: not client.session.pending)
            made = Counter(w.msg.newfid for w in fake.of(Twalk) if w.tag not in failed_walks)
            clunks = Counter(f.msg.fid for f in fake.of(Tclunk))
            assert clunks == made, f"fids made by walks {made}, clunked {clunks}"  # each exactly once
            assert fake.of(Tlcreate)[0].msg.fid in clunks
            assert only_root(client)

    run(body)


# -- 12. unix socket -------------------------------------------------------------------------------------------------


def test_a_unix_socket_end_to_end(tmp_path: Any) -> None:
    sock = str(tmp_path / "9p.sock")
    if len(sock) > 107:
        pytest.fail(f"socket path too long for AF_UNIX: {sock}")

    async def body() -> None:
        fake = Fake()
        await fake.start(unix_path=sock)
        async with await Client.connect(path=sock, aname="/srv", uname="joe", timeout=2.0) as client:
            assert await client.read_bytes("dir/file") == CONTENT
            assert (await client.stat("dir")).st_size == (client.root + 1) * 10
            assert only_root(client)
        attach = fake.of(Tattach)[0].msg
        assert (attach.aname, attach.uname, attach.afid) == ("/srv", "joe", c.NOFID)
        await fake.until(fake.eof.is_set)
        await fake.stop()

    run(body)


# -- 9. path operations keep their meaning; errors name their paths -----------------------------------


def typed_walks(fake: Fake, f: Tframe) -> list[Any] | None:
    """Names starting with "d" are directories; Tremove works; Tunlinkat is missing (EOPNOTSUPP, as diod)."""
    if isinstance(f.msg, Twalk):
        return [reply(f, Rwalk(wqids=[qid(100 + i, c.P9_QTDIR if n.startswith("d") else 0)
                                      for i, n in enumerate(f.msg.wnames)]))]
    if isinstance(f.msg, Tremove):
        return [reply(f, Rremove())]
    return None


@pytest.mark.parametrize(("path", "directory", "exception", "code"), [
    ("sub/afile", True, NotADirectoryError, errno.ENOTDIR),
    ("sub/dempty", False, IsADirectoryError, errno.EISDIR),
])
def test_without_unlinkat_the_tremove_fallback_keeps_unlink_and_rmdir_apart(
        path: str, directory: bool, exception: type, code: int) -> None:
    async def body() -> None:
        async with serving(typed_walks) as (fake, client):
            with pytest.raises(exception) as info:
                await client.remove_path(path, directory=directory)
            assert (info.value.errno, info.value.filename) == (code, path)
            assert not fake.of(Tremove) and not fake.of(Tunlinkat)  # nothing was asked to go
            await fake.until(lambda: only_root(client) and not client.session.pending)
            await client.remove_path(path, directory=not directory)  # the right call goes through
            (unlinkat,) = fake.of(Tunlinkat)
            assert unlinkat.msg.flags == (0 if directory else c.AT_REMOVEDIR)
            (remove,) = fake.of(Tremove)
            assert remove.msg.fid not in client.session.fids_in_use  # Tremove clunked it
            await fake.until(lambda: only_root(client) and not client.session.pending)

    run(body)


def test_errors_on_fids_name_the_path_the_fid_was_walked_to() -> None:
    """Tread, Tremove, Tgetattr... carry no name on the wire; the OSError names the path as os does,
    and a rename names both (filename2)."""
    def handler(fake: Fake, f: Tframe) -> list[Any] | None:
        if isinstance(f.msg, (Tread, Tremove, Trename, Tgetattr)):
            return [reply(f, Rlerror(ecode=c.EIO if not isinstance(f.msg, Trename) else 18))]
        return None

    async def body() -> None:
        async with serving(handler) as (fake, client):
            with pytest.raises(OSError) as info:
                await client.read_bytes("dir/file")
            assert (info.value.errno, info.value.filename) == (errno.EIO, "dir/file")
            fid, _ = await client.walk(client.root, ["dir"])
            sub, _ = await client.walk(fid, ["deeper", "x"])
            with pytest.raises(OSError) as info:
                await client.getattr(sub)
            assert info.value.filename == "dir/deeper/x" and "Tgetattr" in str(info.value)
            with pytest.raises(OSError) as info:
                await client.remove(sub)
            assert info.value.filename == "dir/deeper/x"
            with pytest.raises(OSError) as info:
                await client.rename_fid(fid, client.root, "moved")
            assert (info.value.errno, info.value.filename, info.value.filename2) == (errno.EXDEV, "dir", "moved")
            await client.clunk(fid)
            await fake.until(lambda: only_root(client) and not client.session.pending)

    run(body)


def test_a_refused_attach_names_the_aname_and_the_uname() -> None:
    def handler(fake: Fake, f: Tframe) -> list[Any] | None:
        return [reply(f, Rlerror(ecode=1))] if isinstance(f.msg, Tattach) else None

    async def body() -> None:
        fake = Fake(handler)
        await fake.start()
        with pytest.raises(PermissionError) as info:
            await Client.connect("127.0.0.1", fake.port, aname="/srv/x", uname="nobody", n_uname=65534, timeout=2)
        assert info.value.filename == "/srv/x"
        assert "uname 'nobody'" in str(info.value) and "n_uname 65534" in str(info.value)
        await fake.stop()

    run(body)


def test_connect_failures_name_the_address() -> None:
    async def body() -> None:
        with pytest.raises(OSError) as info:  # socket.gaierror names nothing by itself
            await Client.connect("no-such-host.invalid", 564, timeout=5)
        assert info.value.filename == "no-such-host.invalid:564" and info.value.strerror
        with socket.socket() as unused:
            unused.bind(("127.0.0.1", 0))
            port = unused.getsockname()[1]
            with pytest.raises(ConnectionRefusedError) as refused:
                await Client.connect("127.0.0.1", port, timeout=2)
        assert refused.value.filename == f"127.0.0.1:{port}"

    run(body)


def test_every_timeout_says_what_it_waited_for() -> None:
    """TimeoutError() has an empty str(): each one the client raises names its request or address."""
    async def body() -> None:
        fake = Fake(lambda fake, f: [])
        await fake.start()
        with pytest.raises(TimeoutError) as info:
            await Client.connect("127.0.0.1", fake.port, timeout=0)
        assert str(info.value) and info.value.filename == f"127.0.0.1:{fake.port}"
        await fake.stop()

        def silent_read(fake: Fake, f: Tframe) -> list[Any] | None:
            return [] if isinstance(f.msg, Tread) else None

        async with serving(silent_read, timeout=0.3) as (fake, client):
            with pytest.raises(TimeoutError) as info:
                await client.read_bytes("dir/file")
            assert "Tread" in str(info.value) and info.value.filename == "dir/file"

    run(body)


@pytest.mark.parametrize(("argv", "expected"), [
    (["--timeout", "0"], "no connection within 0.0 s: '127.0.0.1:{port}'"),
    (["--timeout", "0.2"], "no reply to Tversion (tag 65535) within 0.2 s: '127.0.0.1:{port}'"),
])
def test_the_cli_says_why_it_failed(argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A silent server (a socket that listens and never reads): the CLI names what timed out."""
    from jetwire.p9.__main__ import main

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        assert main(["cat", f"127.0.0.1:{port}/srv", "some/file", *argv]) == 1
    assert capsys.readouterr().err.strip().endswith(expected.format(port=port))


def test_the_cli_names_an_unknown_host(capsys: pytest.CaptureFixture[str]) -> None:
    from jetwire.p9.__main__ import main

    assert main(["ls", "no-such-host.invalid:564/srv", "--timeout", "5"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("jetwire.p9: [Errno") and "'no-such-host.invalid:564'" in err


def test_cli_errors_are_never_empty() -> None:
    from jetwire.p9.__main__ import describe_error

    assert describe_error(TimeoutError()) == "TimeoutError (no details given)"
    assert describe_error(ConnectionResetError(), "a/b") == "a/b: ConnectionResetError (no details given)"
    assert describe_error(ProtocolError("bad")) == "ProtocolError: bad"
    assert describe_error(FileNotFoundError(2, "No such file", "x"), "y") == "[Errno 2] No such file: 'x'"


# -- 10. whole-file reads and writes: sized, pipelined from the first request ----------------------------


class FileServer:
    """A handler serving one file's ``content`` whose Tgetattr reports ``reported`` bytes; Twrites
    land in ``written`` (at most ``short`` bytes of the write at offset ``short_at`` are taken)."""

    def __init__(self, content: bytes, reported: int, hold_reads: int = 0,
                 short_at: int | None = None, short: int = 0) -> None:
        self.content, self.reported, self.hold_reads = content, reported, hold_reads
        self.held: list[Tframe] = []
        self.written = bytearray()
        self.short_at, self.short = short_at, short

    def __call__(self, fake: Fake, f: Tframe) -> list[Any] | None:
        m = f.msg
        if isinstance(m, Tgetattr):
            return [reply(f, rgetattr(self.reported))]
        if isinstance(m, Tlcreate):
            return [reply(f, Rlcreate(qid=qid(8), iounit=0))]
        if isinstance(m, Tsetattr):  # the truncation of an existing file
            return [reply(f, Rsetattr())]
        if isinstance(m, Tread):
            answer = reply(f, Rread(data=self.content[m.offset:m.offset + m.count]))
            if len(self.held) < self.hold_reads:  # answer nothing until hold_reads Treads are out at once
                self.held.append(answer)  # type: ignore[arg-type]
                return [] if len(self.held) < self.hold_reads else list(self.held)
            return [answer]
        if isinstance(m, Twrite):
            data = bytes(m.data)
            if m.offset == self.short_at:
                data, self.short_at = data[:self.short], None
            end = m.offset + len(data)
            self.written.extend(bytes(max(0, end - len(self.written))))
            self.written[m.offset:end] = data
            return [reply(f, Rwrite(count=len(data)))]
        return None


BIG = bytes(range(256)) * 200  # 51,200 bytes: 7 Treads of 8,168 at msize 8,192


@pytest.mark.parametrize(("reported", "reads"), [
    (len(BIG), 7),  # as the size says: the 7th Tread asks one byte past it and its short answer ends the read
    (len(BIG) - 1, 7 + 1),  # one byte more than reported: one more Tread finds the end
    (1000, None),  # it grew after Tgetattr: read on to its end
    (len(BIG) * 2, 13),  # it shrank: what is there
])
def test_read_bytes_sizes_its_read_from_getattr(reported: int, reads: int | None) -> None:
    server = FileServer(BIG, reported)

    async def body() -> None:
        async with serving(server, msize=8192) as (fake, client):
            assert await client.read_bytes("dir/file") == BIG
            assert reads is None or len(fake.of(Tread)) == reads
            await fake.until(lambda: only_root(client) and not client.session.pending)

    run(body)


def test_a_small_file_costs_one_tread() -> None:
    async def body() -> None:
        async with serving(FileServer(CONTENT, len(CONTENT))) as (fake, client):
            assert await client.read_bytes("f") == CONTENT
            (read,) = fake.of(Tread)
            assert read.msg.count == len(CONTENT) + 1

    run(body)


@pytest.mark.parametrize("how", ["read_bytes", "file read()", "file read(size)"])
def test_whole_file_reads_keep_their_treads_in_flight_from_the_start(how: str) -> None:
    """The fake answers no Tread until all 7 are out: a client that waits for a first reply hangs (and fails)."""
    server = FileServer(BIG, len(BIG), hold_reads=7)

    async def body() -> None:
        async with serving(server, msize=8192) as (fake, client):
            if how == "read_bytes":
                assert await client.read_bytes("f") == BIG
            else:
                async with await client.open("f") as f:
                    assert await (f.read() if how == "file read()" else f.read(len(BIG) - 5)) == BIG[:len(
                        BIG) if how == "file read()" else len(BIG) - 5]
            await fake.until(lambda: only_root(client) and not client.session.pending)

    run(body)


def test_a_cancelled_whole_file_read_flushes_every_tread_in_flight() -> None:
    server = FileServer(BIG, len(BIG), hold_reads=100)  # never answers a Tread

    async def body() -> None:  # r[9p2000l.flush]
        async with serving(server, msize=8192) as (fake, client):
            task = asyncio.ensure_future(client.read_bytes("f"))
            await fake.until(lambda: len(fake.of(Tread)) == 7)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await fake.until(lambda: len(fake.of(Tflush)) == 7)
            assert {f.msg.oldtag for f in fake.of(Tflush)} == {f.tag for f in fake.of(Tread)}
            await fake.until(lambda: only_root(client) and not client.session.pending)

    run(body)


@pytest.mark.parametrize("short_at", [None, 0, 8168 * 3])
def test_write_bytes_pipelines_and_recovers_from_a_short_write(short_at: int | None) -> None:
    server = FileServer(b"", 0, short_at=short_at, short=100)

    async def body() -> None:  # r[9p2000l.write]: a short write goes on from where the server stopped
        async with serving(server, msize=8192) as (fake, client):
            assert await client.write_bytes("out", memoryview(BIG)) == len(BIG)
            assert bytes(server.written) == BIG
            await fake.until(lambda: only_root(client) and not client.session.pending)
        writes = fake.of(Twrite)
        assert len(writes) == 7 + (0 if short_at is None else 7 - short_at // 8168)

    run(body)


def test_a_cancelled_write_flushes_every_twrite_in_flight() -> None:
    def handler(fake: Fake, f: Tframe) -> list[Any] | None:
        if isinstance(f.msg, Tsetattr):
            return [reply(f, Rsetattr())]
        return [] if isinstance(f.msg, Twrite) else None  # never answers a Twrite

    async def body() -> None:  # r[9p2000l.flush]
        async with serving(handler, msize=8192) as (fake, client):
            task = asyncio.ensure_future(client.write_bytes("out", BIG))
            await fake.until(lambda: len(fake.of(Twrite)) == 7)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await fake.until(lambda: len(fake.of(Tflush)) == 7)
            assert {f.msg.oldtag for f in fake.of(Tflush)} == {f.tag for f in fake.of(Twrite)}
            await fake.until(lambda: only_root(client) and not client.session.pending)

    run(body)


@pytest.mark.parametrize("root", ["", ".", "/", "./"])
def test_every_spelling_of_the_root_stats_it(root: str) -> None:
    async def body() -> None:
        async with serving() as (fake, client):
            assert (await client.stat(root)).st_size > 0
            await fake.until(lambda: only_root(client) and not client.session.pending)

    run(body)

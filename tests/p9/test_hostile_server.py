"""The asyncio ``Client`` against in-process servers that misbehave on purpose: silent, deaf,
out of step, lying about sizes, counts and msize. Whatever the server does, every call ends
(a reply, an error, ``TimeoutError`` within its timeout, or ``ConnectionError``), no callback
dies, and no tag is held for good.

``Hostile`` answers Tversion and Tattach itself and hands every later frame to the test's
``answer(server, frame)``, which writes what it likes with ``server.send`` (or nothing). Every
test runs under ``asyncio.wait_for(GUARD)``: a client that hangs fails the test instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from test_client_faults import qid, rgetattr

from jetwire import DecodeError, FrameReader
from jetwire.p9 import (
    Client,
    ProtocolError,
    Rattach,
    Rclunk,
    Rflush,
    Rframe,
    Rgetattr,
    Rlopen,
    Rreaddir,
    Rversion,
    Rwalk,
    Tattach,
    Tclunk,
    Tflush,
    Tframe,
    Tgetattr,
    Tlopen,
    Treaddir,
    Tversion,
    Twalk,
)
from jetwire.p9 import connection as connection_module
from jetwire.p9 import constants as c

GUARD = 10.0
TIMEOUT = 0.2  # the client's timeout in these tests: small, so a test that waits for it is quick

Answer = Callable[["Hostile", Tframe], None]


def answer_all(server: Hostile, frame: Tframe) -> None:
    """A well-behaved server, for the requests these tests send."""
    m = frame.msg
    if isinstance(m, Tgetattr):
        server.reply(frame, rgetattr(m.fid * 10))
    elif isinstance(m, Twalk):
        server.reply(frame, Rwalk(wqids=[qid(100 + i, c.P9_QTDIR) for i in range(len(m.wnames))]))
    elif isinstance(m, Tclunk):
        server.reply(frame, Rclunk())
    elif isinstance(m, Tflush):
        server.reply(frame, Rflush())
    elif isinstance(m, Tlopen):
        server.reply(frame, Rlopen(qid=qid(7, c.P9_QTDIR), iounit=0))


def silent(server: Hostile, frame: Tframe) -> None:
    """Answers nothing after Tattach: not even Tflush."""


class Hostile:
    def __init__(self, answer: Answer, msize: int | None = None) -> None:
        self.answer = answer
        self.msize = msize  # the Rversion's msize; None echoes the proposal
        self.requests: list[Tframe] = []
        self.writer: asyncio.StreamWriter | None = None
        self.eof = asyncio.Event()  # the client's end of the connection is gone
        self.deaf = False  # stop reading after Tattach: the client's writes pile up
        self.server: asyncio.AbstractServer | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        if self.writer is not None:
            self.writer.transport.abort()
            with contextlib.suppress(asyncio.TimeoutError):  # let _serve end before the loop does
                await asyncio.wait_for(self.eof.wait(), 2)

    def send(self, data: bytes) -> None:
        assert self.writer is not None
        if not self.writer.is_closing():
            self.writer.write(data)

    def reply(self, frame: Tframe, msg: Any) -> None:
        self.send(Rframe(tag=frame.tag, msg=msg).encode())

    def of(self, kind: type) -> list[Tframe]:
        return [f for f in self.requests if isinstance(f.msg, kind)]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        frames = FrameReader(Tframe)
        try:
            while data := await reader.read(1 << 16):
                frames.feed(data)
                for frame in frames:
                    self.requests.append(frame)
                    if isinstance(frame.msg, Tversion):
                        msize = frame.msg.msize if self.msize is None else self.msize
                        self.reply(frame, Rversion(msize=msize, version=c.VERSION_9P2000L))
                    elif isinstance(frame.msg, Tattach):
                        self.reply(frame, Rattach(qid=qid(1, c.P9_QTDIR)))
                        if self.deaf:
                            writer.transport.pause_reading()
                    else:
                        self.answer(self, frame)
        except (ConnectionError, DecodeError):
            pass
        finally:
            self.eof.set()


def run(body: Callable[[], Awaitable[None]], guard: float = GUARD) -> None:
    asyncio.run(asyncio.wait_for(body(), guard))


@contextlib.asynccontextmanager
async def serving(answer: Answer, *, msize: int | None = None, deaf: bool = False,
                  **connect: Any) -> AsyncIterator[tuple[Hostile, Client]]:
    server = Hostile(answer, msize)
    server.deaf = deaf
    await server.start()
    connect.setdefault("timeout", TIMEOUT)
    client = await Client.connect("127.0.0.1", server.port, **connect)
    try:
        yield server, client
    finally:
        await client.close()
        await server.stop()


def given_up(client: Client) -> bool:
    """The connection is over and holds nothing: no tag, no waiter, no timer."""
    return (client._closed is not None and not client.session.pending and not client._waiters
            and client._sweeper is None)


# -- 1. silence: timeouts that always fire, tags that always come back ---------------------------------


def test_33000_calls_to_a_silent_server_all_time_out_and_the_connection_is_given_up() -> None:
    """33,000 calls and their Tflushes need more tags than there are: the sweep used to raise
    ``RuntimeError`` (no tag for a Tflush) inside its timer callback, was never rescheduled,
    and left hundreds of calls waiting forever despite the timeout."""
    calls = 33_000

    async def body() -> None:
        async with serving(silent) as (_, client):
            results = await asyncio.gather(*(client.getattr(i % 50) for i in range(calls)), return_exceptions=True)
            assert all(isinstance(r, TimeoutError) for r in results), {type(r) for r in results}
            # flushes unanswered: the connection is given up rather than holding 65535 tags for good
            while not given_up(client):
                await asyncio.sleep(TIMEOUT / 4)
            with pytest.raises(ConnectionError, match=r"neither the request with tag \d+ nor its Tflush"):
                await client.getattr(1)

    run(body, guard=3 * GUARD)  # 33,000 calls take a few seconds of CPU: more on a busy machine


def test_a_flush_that_is_never_answered_gives_the_connection_up() -> None:
    def answer(server: Hostile, frame: Tframe) -> None:
        if not ((isinstance(frame.msg, Tgetattr) and frame.msg.fid == 5) or isinstance(frame.msg, Tflush)):
            answer_all(server, frame)

    async def body() -> None:
        async with serving(answer) as (server, client):
            assert (await client.getattr(1)).size == 10
            with pytest.raises(TimeoutError, match="Tgetattr"):
                await client.getattr(5)
            with pytest.raises(ConnectionError, match="nor its Tflush"):
                while True:  # calls answered until the flush is overdue; then the connection is gone
                    await client.getattr(2)
                    await asyncio.sleep(TIMEOUT / 8)
            assert given_up(client)
            assert len(server.of(Tflush)) == 1
            await asyncio.wait_for(server.eof.wait(), 2)  # the socket is closed, not just abandoned

    run(body)


def test_a_tag_freed_and_reused_is_not_taken_for_the_overdue_one() -> None:
    """A flushed tag owes its Rflush within the timeout. Once freed and reused by a new call
    (before the sweep noticed), the new call must not inherit the old deadline and get the
    connection given up under it."""
    timeout = 1.0

    async def body() -> None:
        async with serving(silent, timeout=timeout) as (server, client):
            with pytest.raises(TimeoutError):
                await client.getattr(5)  # abandoned: Tflush sent, the tag owes an answer by now + timeout
            (old,) = server.of(Tgetattr)
            await asyncio.sleep(timeout / 2)
            (flush,) = server.of(Tflush)
            # the late reply and the Rflush arrive, and the same tag goes to a new call at once
            late = Rframe(tag=old.tag, msg=rgetattr(50)).encode() + Rframe(tag=flush.tag, msg=Rflush()).encode()
            client._received(late)
            client.session._next_tag = old.tag
            tag, future = client._start(Tgetattr(fid=6, request_mask=c.P9_GETATTR_BASIC))
            assert tag == old.tag
            await asyncio.sleep(timeout * 0.75)  # past the old deadline, not yet the new call's
            client._received(Rframe(tag=tag, msg=rgetattr(60)).encode())
            assert (await future).size == 60
            assert client._closed is None

    run(body)


@pytest.fixture
def few_tags(monkeypatch: pytest.MonkeyPatch) -> int:
    """Makes the client believe only 8 requests may be outstanding, so running out of tags
    takes 8 calls rather than 65535."""
    monkeypatch.setattr(connection_module, "_TAGS", 8)
    return 8


def test_a_call_waiting_for_a_free_tag_times_out(few_tags: int) -> None:
    async def body() -> None:
        async with serving(silent) as (server, client):
            held = [asyncio.ensure_future(client.getattr(i)) for i in range(few_tags)]
            await asyncio.sleep(0)
            with pytest.raises(TimeoutError, match="no tag came free for Tgetattr"):
                await client.getattr(99)
            assert all(isinstance(r, TimeoutError) for r in await asyncio.gather(*held, return_exceptions=True))
            assert not any(f.msg.fid == 99 for f in server.of(Tgetattr))  # never sent: no tag to flush

    run(body)


def test_a_call_waiting_for_a_free_tag_goes_out_when_a_reply_frees_one(few_tags: int) -> None:
    held: list[Tframe] = []

    def answer(server: Hostile, frame: Tframe) -> None:
        if isinstance(frame.msg, Tgetattr) and frame.msg.fid < few_tags:
            held.append(frame)  # answered by the test
        else:
            answer_all(server, frame)

    async def body() -> None:
        async with serving(answer, timeout=5.0) as (server, client):
            first = [asyncio.ensure_future(client.getattr(i)) for i in range(few_tags)]
            waiting = asyncio.ensure_future(client.getattr(42))  # no tag free: it waits
            while len(held) < few_tags:
                await asyncio.sleep(0.001)
            assert not waiting.done() and not any(f.msg.fid == 42 for f in server.of(Tgetattr))
            server.reply(held[0], rgetattr(0))
            assert (await waiting).size == 420
            for frame in held[1:]:
                server.reply(frame, rgetattr(frame.msg.fid))
            assert [r.size for r in await asyncio.gather(*first)] == list(range(few_tags))

    run(body)


def test_a_timer_callback_that_fails_ends_the_connection_instead_of_dying(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever goes wrong in the sweep, calls must not be left waiting on a timer that is gone."""
    async def body() -> None:
        async with serving(silent) as (_, client):
            def broken(what: Any) -> Any:
                raise RuntimeError("a bug in the sweep")

            monkeypatch.setattr(client, "_paths_of", broken)
            with pytest.raises(ConnectionError, match="a bug in the sweep"):
                await client.getattr(1)
            assert given_up(client)

    run(body)


def test_a_failing_reply_handler_ends_the_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    async def body() -> None:
        async with serving(answer_all) as (_, client):
            def broken(event: Any) -> None:
                raise RuntimeError("a bug in dispatch")

            monkeypatch.setattr(client, "_dispatch", broken)
            with pytest.raises(ConnectionError, match="a bug in dispatch"):
                await client.getattr(1)
            assert given_up(client)

    run(body)


def test_a_write_that_fails_ends_the_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    async def body() -> None:
        async with serving(answer_all, timeout=3 * GUARD) as (_, client):  # a timeout fails the test
            def broken(data: bytes) -> None:
                raise RuntimeError("the transport refused")

            assert client._transport is not None
            monkeypatch.setattr(client._transport, "write", broken)
            with pytest.raises(ConnectionError, match="the transport refused"):
                await client.getattr(1)
            assert given_up(client)

    run(body)


# -- 2. a server that stopped reading -------------------------------------------------------------------


def test_calls_to_a_server_that_stopped_reading_time_out() -> None:
    """20 MB of writes pile up at a server that reads nothing: calls used to wait for the
    buffer to drain, forever; each times out now, and the connection is given up when the
    Tflushes cannot get through either (the buffered bytes are dropped with it)."""
    chunk = bytes(60_000)

    async def body() -> None:
        async with serving(silent, deaf=True) as (_, client):
            results = await asyncio.gather(*(client.write(0, 0, chunk) for _ in range(350)), return_exceptions=True)
            assert all(isinstance(r, TimeoutError) for r in results), {type(r) for r in results}
            while not given_up(client):
                await asyncio.sleep(TIMEOUT / 4)
            assert client._transport is not None and client._transport.get_write_buffer_size() == 0

    run(body)


def test_close_aborts_a_server_that_stopped_reading() -> None:
    """close() used to wait 5 s for the buffer to drain and return with the socket open and
    the bytes still buffered; now it aborts after min(timeout, 5 s)."""
    chunk = bytes(60_000)

    async def body() -> None:
        async with serving(silent, deaf=True, timeout=1.0) as (_, client):
            calls = [asyncio.ensure_future(client.write(0, 0, chunk)) for _ in range(350)]
            while client._writable.is_set():  # the transport's buffer is full
                await asyncio.sleep(0.005)
            transport = client._transport
            assert transport is not None and transport.get_write_buffer_size() > 0
            await client.close()
            assert client._gone.is_set()  # connection_lost: the socket is closed, not just closing
            assert transport.get_write_buffer_size() == 0
            results = await asyncio.gather(*calls, return_exceptions=True)
            assert all(isinstance(r, ConnectionError) for r in results), {type(r) for r in results}

    run(body)


# -- 3. a stream out of step ------------------------------------------------------------------------------


def lying_size(frame: Tframe) -> bytes:
    """An Rgetattr whose size field claims 50 MB."""
    data = bytearray(Rframe(tag=frame.tag, msg=rgetattr(1)).encode())
    data[:4] = struct.pack("<I", 50_000_000)
    return bytes(data)


OUT_OF_STEP = {
    "size lies": (lying_size, "over the limit"),
    "stray bytes after a reply": (lambda f: Rframe(tag=f.tag, msg=rgetattr(1)).encode() + b"\0\0\0", "over the limit"),
    "tag not in flight": (lambda f: Rframe(tag=f.tag ^ 0x4000, msg=rgetattr(1)).encode(), "not outstanding"),
    "size below 7": (lambda f: struct.pack("<I", 5) + Rframe(tag=f.tag, msg=rgetattr(1)).encode(), "below the 7"),
}


@pytest.mark.parametrize("how", list(OUT_OF_STEP))
def test_a_stream_out_of_step_fails_every_call_at_once(how: str) -> None:
    broken, words = OUT_OF_STEP[how]

    def answer(server: Hostile, frame: Tframe) -> None:
        if isinstance(frame.msg, Tgetattr) and frame.msg.fid == 1:
            server.send(broken(frame))
        elif isinstance(frame.msg, Tgetattr) and frame.msg.fid == 2:
            # answered a little later, after the bad bytes: by then nothing can be trusted
            asyncio.get_running_loop().call_later(0.05, server.reply, frame, rgetattr(20))

    async def body() -> None:
        async with serving(answer, timeout=3 * GUARD) as (server, client):  # a call that timed out fails the test
            results = await asyncio.gather(client.getattr(3), client.getattr(1), client.getattr(2),
                                           return_exceptions=True)
            errors = [r for r in results if not isinstance(r, Rgetattr)]
            assert errors and all(isinstance(e, ConnectionError) and "out of step" in str(e) for e in errors), results
            assert words in str(errors[0])
            assert given_up(client)
            await asyncio.wait_for(server.eof.wait(), 2)
            with pytest.raises(ConnectionError):
                await client.getattr(1)

    run(body)


@pytest.mark.parametrize("split", [4, 5, 7, None], ids=["after size", "after type", "after tag", "whole"])
def test_an_oversized_reply_fails_at_once_however_it_is_split(split: int | None) -> None:
    """The oversized frame's error is the same whether the first write held 4 bytes or all of it."""
    def answer(server: Hostile, frame: Tframe) -> None:
        if isinstance(frame.msg, Tgetattr):
            data = struct.pack("<IBH", 100_000, 25, frame.tag) + bytes(100)
            if split is None:
                server.send(data)
            else:
                server.send(data[:split])
                asyncio.get_running_loop().call_later(0.02, server.send, data[split:])

    async def body() -> None:
        async with serving(answer, msize=8192, timeout=3 * GUARD) as (_, client):  # a timeout fails the test
            with pytest.raises(ConnectionError, match="size 100000 is over the limit of 8192"):
                await client.getattr(1)
            assert given_up(client)

    run(body)


# -- 4. replies that break the rules of their request ------------------------------------------------------


def test_an_rwalk_with_more_qids_than_names_is_a_protocol_error() -> None:
    def answer(server: Hostile, frame: Tframe) -> None:
        if isinstance(frame.msg, Twalk) and frame.msg.wnames == ["a"]:
            server.reply(frame, Rwalk(wqids=[qid(1), qid(2), qid(3)]))
        else:
            answer_all(server, frame)

    async def body() -> None:
        async with serving(answer) as (server, client):
            with pytest.raises(ProtocolError, match="3 qids for a Twalk of 1 names"):
                await client.walk(client._root(), ["a"])
            newfid = server.of(Twalk)[0].msg.newfid
            while client.session.pending:  # the newfid, whatever the server made of it, is clunked
                await asyncio.sleep(0.001)
            assert [f.msg.fid for f in server.of(Tclunk)] == [newfid]
            assert client.session.fids_in_use == {client.root}

    run(body)


@pytest.mark.parametrize(("data", "words"), [
    (lambda count: bytes(count + 1), "bytes for a Treaddir of"),
    (lambda count: b"", None),
], ids=["longer than count", "the same offset forever"])
def test_a_readdir_that_breaks_the_rules_is_a_protocol_error(data: Callable[[int], bytes], words: str | None) -> None:
    dirent = struct.pack("<B I Q Q B H", c.P9_QTFILE, 0, 9, 0, c.DT_REG, 1) + b"x"  # its offset points back at 0

    def answer(server: Hostile, frame: Tframe) -> None:
        if isinstance(frame.msg, Treaddir):
            body = data(frame.msg.count) or dirent
            server.reply(frame, Rreaddir(data=body))
        else:
            answer_all(server, frame)

    async def body() -> None:
        async with serving(answer) as (server, client):
            with pytest.raises(ProtocolError, match=words or "points back at offset 0"):
                await client.listdir("d")
            assert len(server.of(Treaddir)) == 1

    run(body)


@pytest.mark.parametrize("cycle", [[9, 0], [5, 7, 5], [3, 4, 5, 6, 3]], ids=["a-b-a", "a-b-c-b", "longer"])
def test_a_readdir_whose_offsets_lead_back_is_a_protocol_error(cycle: list[int]) -> None:
    """r[9p2000l.readdir]: each Treaddir asks from the last entry's offset; a server whose
    offsets lead back to one already asked for would be listed forever."""
    following = dict(zip([0, *cycle], cycle))  # offset asked for -> the offset its entry gives

    def answer(server: Hostile, frame: Tframe) -> None:
        if isinstance(frame.msg, Treaddir):
            after = following[frame.msg.offset]
            dirent = struct.pack("<B I Q Q B H", c.P9_QTFILE, 0, 9, after, c.DT_REG, 1) + b"x"
            server.reply(frame, Rreaddir(data=dirent))
        else:
            answer_all(server, frame)

    async def body() -> None:
        async with serving(answer) as (server, client):
            with pytest.raises(ProtocolError, match=f"points back at offset {cycle[-1]}, already read"):
                await client.listdir("d")
            assert len(server.of(Treaddir)) == len(cycle)

    run(body)


@pytest.mark.parametrize("msize", [32, 4095])
def test_an_msize_below_4096_fails_connect(msize: int) -> None:
    async def body() -> None:
        server = Hostile(answer_all, msize=msize)
        await server.start()
        try:
            with pytest.raises(ProtocolError, match=f"msize {msize} is below 4096"):
                await Client.connect("127.0.0.1", server.port, timeout=TIMEOUT)
        finally:
            await server.stop()

    run(body)


def test_proposing_an_msize_below_4096_is_refused() -> None:
    with pytest.raises(ValueError, match="msize 1000 is below 4096"):
        asyncio.run(Client.connect("127.0.0.1", 1, msize=1000))


def test_a_dropped_connection_leaves_nothing_pending() -> None:
    async def body() -> None:
        async with serving(silent, timeout=5.0) as (server, client):
            calls = [asyncio.ensure_future(client.getattr(i)) for i in range(5)]
            while len(server.of(Tgetattr)) < 5:
                await asyncio.sleep(0.001)
            assert server.writer is not None
            server.writer.transport.abort()
            results = await asyncio.gather(*calls, return_exceptions=True)
            assert all(isinstance(r, ConnectionError) for r in results)
            assert given_up(client)

    run(body)

"""Faults, limits and shutdown of the asyncio shell, over real sockets.

Peers that misbehave are written here with asyncio streams or raw sockets and send exact
bytes. Nothing is proved by sleeping: every wait is for a condition (``until``), bounded by a
timeout only so that a bug fails the test instead of hanging it; leaks are counted (tasks,
calls in flight, connections, tags, buffered bytes).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import tempfile
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from services import Echo, EchoServer, Toolbox, ToolboxServer
from waiting import until

import jetwire
from jetwire import rpc, u32
from jetwire.rpc.aio import DEADLINE_CODE, SHUTDOWN_CODE
from jetwire.runtime.frames import FrameReader

pytestmark = [pytest.mark.filterwarnings("error"), pytest.mark.usefixtures("no_asyncio_complaints")]


def run(main: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(main(), 30))


def tasks() -> int:
    return len(asyncio.all_tasks())


@pytest.fixture(params=["tcp", "unix"])
def url(request: pytest.FixtureRequest) -> str:
    if request.param == "tcp":
        return "tcp://127.0.0.1:0"
    return "unix://" + os.path.join(tempfile.mkdtemp(), "svc.sock")


def channel_of(client: object) -> rpc.ClientChannel:
    channel = client._jetwire_channel  # type: ignore[attr-defined]
    assert isinstance(channel, rpc.ClientChannel)
    return channel


def served(server: rpc.Server) -> list[rpc.ServerChannel]:
    return list(server._channels)


@rpc.service(version="1.0.0")
class Gate(rpc.Service):
    """Calls that wait until the test lets them finish."""

    async def hold(self, n: u32) -> u32: ...


class GateServer(Gate):
    def __init__(self) -> None:
        self.waiting: deque[asyncio.Future[None]] = deque()
        self.permits = 0
        self.started = 0
        self.running = 0
        self.most_running = 0
        self.cancelled = 0

    def open(self, calls: int) -> None:
        """Lets ``calls`` calls finish, the first waiting first (asyncio.Semaphore is quadratic here)."""
        self.permits += calls
        while self.permits and self.waiting:
            waiter = self.waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                self.permits -= 1

    async def hold(self, n: u32) -> u32:
        self.started += 1
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            if self.permits:
                self.permits -= 1
            else:
                waiter = asyncio.get_running_loop().create_future()
                self.waiting.append(waiter)
                await waiter
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.running -= 1
        return u32(n * 2)


# =============================================================================================
# A server that misbehaves: a fake one, answering the handshake, then doing what the test says

class Peer:
    """One connection accepted by ``FakeServer``, handshake done: read calls, send bytes."""

    def __init__(self, spec: rpc.ServiceSpec, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 frames: FrameReader[Any]) -> None:
        self.spec = spec
        self.reader = reader
        self.writer = writer
        self.frames = frames

    async def read_call(self) -> tuple[int, Any]:
        frame = await read_frame(self.reader, self.frames)
        assert frame is not None, "the client closed instead of calling"
        return frame.tag, frame.msg

    def answer(self, tag: int, method: str, value: Any) -> None:
        response = self.spec.by_name[method].response
        msg = response() if value is None else response(value)
        self.writer.write(self.spec.Rframe(tag, msg).encode())

    def close(self) -> None:
        self.writer.close()


async def read_frame(reader: asyncio.StreamReader, frames: FrameReader[Any]) -> Any:
    while True:
        frame = frames.next_frame()
        if frame is not None:
            return frame
        data = await reader.read(65536)
        if not data:
            return None
        frames.feed(data)


class FakeServer:
    def __init__(self, service: type) -> None:
        self.spec = rpc.spec_of(service)
        self.peers: asyncio.Queue[Peer] = asyncio.Queue()
        self._writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> FakeServer:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.url = f"tcp://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.server.close()
        for writer in self._writers:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        await self.server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        frames = FrameReader(self.spec.Tframe)
        hello = await read_frame(reader, frames)
        assert isinstance(hello.msg, rpc.Tversion)
        writer.write(self.spec.Rframe(hello.tag, rpc.Rversion(hello.msg.msize, hello.msg.version)).encode())
        await self.peers.put(Peer(self.spec, reader, writer, frames))


@contextlib.asynccontextmanager
async def faked(service: type[Any], **options: Any) -> AsyncIterator[tuple[Any, Peer]]:
    """A client of ``service`` connected to a fake server, and the fake's end of the stream."""
    async with FakeServer(service) as fake:
        client = await rpc.connect(service, fake.url, **options)
        peer = await fake.peers.get()
        try:
            yield client, peer
        finally:
            await client.close()


def test_a_server_that_closes_mid_call() -> None:
    """r[jetstream.rpc.mux.fail-on-close]: the calls in flight fail with ConnectionClosed, and
    every later call fails at once with the same."""

    async def main() -> None:
        async with faked(Echo) as (client, peer):
            calls = [asyncio.ensure_future(client.ping(str(i))) for i in range(3)]
            for _ in calls:
                await peer.read_call()
            peer.close()
            for call in calls:
                with pytest.raises(rpc.ConnectionClosed):
                    await call
            with pytest.raises(rpc.ConnectionClosed):
                await client.ping("later")
            assert channel_of(client).in_flight == 0

    run(main)


def test_a_server_that_sends_garbage() -> None:
    """r[jetstream.rpc.reject.close-stream] r[jetstream.rpc.reject.unknown-type]: a frame of a
    type the client does not know fails the calls in flight with a RemoteProtocolError and
    closes the stream."""

    async def main() -> None:
        async with faked(Echo) as (client, peer):
            calls = [asyncio.ensure_future(client.ping(str(i))) for i in range(2)]
            tags = [(await peer.read_call())[0] for _ in calls]
            peer.writer.write(bytes.fromhex("0b000000 ee") + tags[0].to_bytes(2, "little") + b"junk")
            for call in calls:
                with pytest.raises(rpc.RemoteProtocolError, match="does not decode"):
                    await call
            assert await peer.reader.read() == b""  # the client closed the stream
            with pytest.raises(rpc.ConnectionClosed):
                await client.ping("later")

    run(main)


def test_an_answer_over_the_clients_max_frame_size_closes_the_stream() -> None:
    """r[jetstream.rpc.limits.max-frame], on the client: the header of a 1 GiB answer fails the
    calls in flight at once, without waiting for the body."""

    async def main() -> None:
        async with faked(Echo, max_frame_size=64 * 1024) as (client, peer):
            calls = [asyncio.ensure_future(client.ping(str(i))) for i in range(2)]
            tag, _ = await peer.read_call()
            await peer.read_call()
            peer.writer.write((1 << 30).to_bytes(4, "little") + b"\x67" + tag.to_bytes(2, "little"))
            for call in calls:
                with pytest.raises(rpc.RemoteProtocolError, match="over the limit"):
                    await call
            assert await peer.reader.read() == b""
            with pytest.raises(rpc.ConnectionClosed):
                await client.ping("later")

    run(main)


def test_a_reply_with_an_unknown_tag_is_ignored_and_counted() -> None:
    """r[jetstream.rpc.mux.unknown-tag]: the stray answer is dropped, the call still completes."""

    async def main() -> None:
        async with faked(Echo) as (client, peer):
            call = asyncio.ensure_future(client.ping("x"))
            tag, msg = await peer.read_call()
            peer.answer(tag + 100, "ping", "stray")
            peer.answer(tag, "ping", msg.message)
            assert await call == "x"
            channel = channel_of(client)
            assert client.strays == 1 and channel.session.in_flight == 0
            assert client.with_timeout(1.0).strays == 1  # a view of the same connection

    run(main)


def test_answers_out_of_order_reach_their_calls() -> None:
    """r[jetstream.rpc.mux.out-of-order]: matched by tag only."""

    async def main() -> None:
        async with faked(Echo) as (client, peer):
            calls = [asyncio.ensure_future(client.ping(f"call {i}")) for i in range(5)]
            received = [await peer.read_call() for _ in calls]
            for tag, msg in reversed(received):
                peer.answer(tag, "ping", msg.message.upper())
            assert await asyncio.gather(*calls) == [f"CALL {i}" for i in range(5)]

    run(main)


def test_a_server_that_never_answers() -> None:
    """r[jetstream.rpc.cancel.local]: the call's timeout fires; its tag stays held, and nothing
    is sent for it: the next frame the server reads is the next call."""

    async def main() -> None:
        async with faked(Echo) as (client, peer):
            with pytest.raises(rpc.CallTimeout, match=r"no answer within 0\.05 s"):
                await client.with_timeout(0.05).ping("lost")
            silent_tag, _ = await peer.read_call()
            session = channel_of(client).session
            assert session.in_flight == 1
            call = asyncio.ensure_future(client.ping("next"))
            tag, msg = await peer.read_call()
            assert tag != silent_tag and msg.message == "next"
            peer.answer(tag, "ping", "next")
            assert await call == "next"
            assert session.in_flight == 1  # still held
            peer.answer(silent_tag, "ping", "late")
            await until(lambda: session.in_flight == 0, "the tag freed by the late answer")
            assert session.strays == 0  # the late answer was expected, not a stray

    run(main)


def test_a_late_answer_frees_the_tag_a_waiting_call_needs() -> None:
    """r[jetstream.rpc.cancel.local] r[jetstream.rpc.tag.client-pool]: with one tag, held by a
    call that timed out, the next call waits; the late answer frees the tag and lets it go."""

    async def main() -> None:
        async with faked(Echo, max_tags=1) as (client, peer):
            with pytest.raises(rpc.CallTimeout):
                await client.with_timeout(0.05).ping("slow")
            silent_tag, _ = await peer.read_call()
            waiting = asyncio.ensure_future(client.ping("waits"))
            await until(lambda: len(channel_of(client)._waiters) == 1, "waiting for the tag")
            peer.answer(silent_tag, "ping", "late")
            tag, msg = await peer.read_call()
            assert tag == silent_tag and msg.message == "waits"
            peer.answer(tag, "ping", "done")
            assert await waiting == "done"

    run(main)


def test_the_timeout_covers_the_wait_for_a_tag() -> None:
    """Every tag held by calls the server never answers: a call with a timeout gets its
    CallTimeout instead of waiting for a tag for ever."""

    async def main() -> None:
        async with faked(Echo, max_tags=1) as (client, peer):
            with pytest.raises(rpc.CallTimeout):
                await client.with_timeout(0.05).ping("never answered")
            await peer.read_call()
            with pytest.raises(rpc.CallTimeout, match="no free tag"):
                await client.with_timeout(0.05).ping("waits for a tag")
            assert not channel_of(client)._waiters

    run(main)


def test_calls_waiting_for_a_tag_do_not_spin() -> None:
    """Calls waiting for a tag are woken when one is free, not over and over while none is."""

    async def main() -> None:
        async with faked(Echo, max_tags=1) as (client, peer):
            channel = channel_of(client)
            wakes = 0
            wake = channel._wake

            def counted() -> None:
                nonlocal wakes
                wakes += 1
                wake()

            channel._wake = counted  # type: ignore[method-assign]
            calls = [asyncio.ensure_future(client.ping(str(i))) for i in range(4)]
            first_tag, _ = await peer.read_call()
            await until(lambda: len(channel._waiters) == 3, "three calls waiting")
            peer.answer(first_tag, "ping", "0")
            tag, msg = await peer.read_call()  # the second call got the tag
            assert msg.message == "1"
            for _ in range(200):  # turns of the event loop while no tag is free
                await asyncio.sleep(0)
            assert wakes <= 2, f"{wakes} wake-ups for one freed tag"
            peer.answer(tag, "ping", "1")
            for i in (2, 3):
                tag, msg = await peer.read_call()
                peer.answer(tag, "ping", msg.message)
            assert await asyncio.gather(*calls) == ["0", "1", "2", "3"]

    run(main)


def test_a_cancelled_call_sends_nothing_and_keeps_its_tag() -> None:
    """r[jetstream.rpc.cancel.local]: task.cancel() on an awaiting call writes nothing (no flush
    exists); its tag stays reserved until the late answer arrives, which is dropped."""

    async def main() -> None:
        async with faked(Echo) as (client, peer):
            task = asyncio.ensure_future(client.ping("cancel me"))
            cancelled_tag, _ = await peer.read_call()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            session = channel_of(client).session
            assert session.in_flight == 1 and channel_of(client).in_flight == 0
            call = asyncio.ensure_future(client.ping("after"))
            tag, msg = await peer.read_call()  # nothing came between: no flush, no other frame
            assert msg.message == "after" and tag != cancelled_tag
            peer.answer(cancelled_tag, "ping", "late")
            peer.answer(tag, "ping", "after")
            assert await call == "after"
            assert session.in_flight == 0 and session.strays == 0

    run(main)


# =============================================================================================
# The client's own limits and timeouts, against a real server

def test_per_call_and_default_timeouts() -> None:
    async def main() -> None:
        impl = ToolboxServer()
        async with await rpc.serve(impl, "tcp://127.0.0.1:0") as server:
            async with await Toolbox.connect(server.urls[0], timeout=0.05) as client:
                with pytest.raises(rpc.CallTimeout, match=r"within 0\.05 s"):
                    await client.sleep(5)  # the default, from connect
                with pytest.raises(rpc.CallTimeout, match=r"within 0\.02 s"):
                    await client.with_timeout(0.02).sleep(5)
                assert await client.with_timeout(None).sleep(0.1) == "slept 0.1"  # longer than the default
            async with await Toolbox.connect(server.urls[0]) as client:
                with pytest.raises(rpc.CallTimeout):
                    await client.with_timeout(0.05).sleep(5)
                assert await client.sleep(0.1) == "slept 0.1"  # no default: waits as long as it takes

    run(main)


def test_calls_waiting_for_a_free_tag_all_complete() -> None:
    """r[jetstream.rpc.tag.client-pool]: max_tags=2 and 10 concurrent calls: two tags are ever
    used, no call fails."""

    async def main() -> None:
        async with await rpc.serve(ToolboxServer(), "tcp://127.0.0.1:0") as server, \
                await Toolbox.connect(server.urls[0], max_tags=2) as client:
            answers = await asyncio.gather(*(client.whoami() for _ in range(10)))
            assert {answer.split()[2] for answer in answers} <= {"tag=1", "tag=2"}
            assert len(answers) == 10 and channel_of(client).session.in_flight == 0

    run(main)


def test_a_closed_client_fails_fast_even_while_waiting_for_a_tag() -> None:
    async def main() -> None:
        impl = GateServer()
        async with await rpc.serve(impl, "tcp://127.0.0.1:0") as server:
            client = await Gate.connect(server.urls[0], max_tags=1)
            running = asyncio.ensure_future(client.hold(1))
            waiting = asyncio.ensure_future(client.hold(2))
            await until(lambda: impl.started == 1 and len(channel_of(client)._waiters) == 1, "one call waiting")
            await client.close()
            for call in (running, waiting):
                with pytest.raises(rpc.ConnectionClosed):
                    await call
            with pytest.raises(rpc.ConnectionClosed):
                await client.hold(3)
            await until(lambda: server.connections == 0 and impl.cancelled == 1, "the server's side gone")

    run(main)


# =============================================================================================
# Clients that misbehave, against a real server

def test_a_client_that_disconnects_with_calls_in_flight(url: str) -> None:
    """The handlers are cancelled; no task, call or connection is left behind. (A client that
    only half-closes is still answered: test_client_fin_with_calls_in_flight_gets_every_answer.)"""

    async def main() -> None:
        impl = GateServer()
        before = tasks()
        async with await rpc.serve(impl, url) as server:
            client = await Gate.connect(server.urls[0])
            calls = [asyncio.ensure_future(client.hold(i)) for i in range(5)]
            await until(lambda: impl.started == 5, "five handlers running")
            assert server.in_flight == 5 and sum(len(c.tasks) for c in served(server)) == 5
            await client.close()
            for call in calls:
                with pytest.raises(rpc.ConnectionClosed):
                    await call
            await until(lambda: server.connections == 0, "the connection gone")
            await until(lambda: impl.cancelled == 5 and tasks() == before, "the handlers cancelled")
            assert server.in_flight == 0 and impl.running == 0

    run(main)


def test_after_close_no_handler_of_a_lost_connection_still_runs() -> None:
    """Handlers cancelled because their client went away have ended when close() returns."""

    async def main() -> None:
        impl = GateServer()
        before = tasks()
        server = await rpc.serve(impl, "tcp://127.0.0.1:0")
        client = await Gate.connect(server.urls[0])
        calls = [asyncio.ensure_future(client.hold(i)) for i in range(5)]
        await until(lambda: impl.started == 5, "five handlers running")
        await client.close()
        await asyncio.gather(*calls, return_exceptions=True)
        await until(lambda: server.connections == 0, "the connection gone")
        await server.close()
        assert impl.cancelled == 5 and tasks() == before

    run(main)


def test_100_connections_with_10000_calls_in_flight() -> None:
    async def main() -> None:
        impl = GateServer()
        before = tasks()
        async with await rpc.serve(impl, "tcp://127.0.0.1:0") as server:
            clients = await asyncio.gather(*(Gate.connect(server.urls[0]) for _ in range(100)))
            calls = [asyncio.ensure_future(client.hold(i * 100 + j))
                     for i, client in enumerate(clients) for j in range(100)]
            await until(lambda: impl.started == 10_000, "10,000 calls started")
            assert server.in_flight == 10_000 and server.connections == 100
            assert sum(len(c.tasks) for c in served(server)) == 10_000
            impl.open(10_000)
            assert await asyncio.gather(*calls) == [2 * n for n in range(10_000)]
            assert server.in_flight == 0 and all(channel_of(c).session.in_flight == 0 for c in clients)
            for client in clients:
                await client.close()
            await until(lambda: server.connections == 0, "every connection closed")
            await until(lambda: tasks() == before, "no task left")

    run(main)


def test_a_frame_over_max_frame_size_closes_the_stream_from_its_size_field() -> None:
    """r[jetstream.rpc.limits.max-frame]: only the header of a 1 GiB frame is sent; the server
    closes the stream without waiting for, or buffering, the body."""

    async def main() -> None:
        async with await rpc.serve(ToolboxServer(), "tcp://127.0.0.1:0") as server:
            port = int(server.urls[0].rsplit(":", 1)[1])
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            spec = rpc.spec_of(Toolbox)
            add = spec.by_name["add"]
            writer.write(spec.Tframe(1, add.request(2, 3)).encode())
            answer = await read_frame(reader, FrameReader(spec.Rframe))
            assert answer.tag == 1 and answer.msg.value == 5
            writer.write((1 << 30).to_bytes(4, "little") + bytes([add.request_type]) + (2).to_bytes(2, "little"))
            assert await reader.read() == b""  # closed, the body never sent
            await until(lambda: server.connections == 0, "the connection gone")
            writer.close()
            await writer.wait_closed()

    run(main)


def test_a_client_that_stops_reading_is_not_read_either() -> None:
    """The server stops reading a connection whose answers are not read (pause_reading):
    its write buffer and its session's buffered bytes stay bounded while the client keeps
    writing; once the client reads again, every call is answered."""

    async def main() -> None:
        async with await rpc.serve(EchoServer(), "tcp://127.0.0.1:0", max_calls=4) as server:
            loop = asyncio.get_running_loop()
            port = int(server.urls[0].rsplit(":", 1)[1])
            spec = rpc.spec_of(Echo)
            call = spec.Tframe(1, spec.by_name["ping"].request("x" * 60_000)).encode()
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.setblocking(False)
            await loop.sock_connect(sock, ("127.0.0.1", port))
            await until(lambda: server.connections == 1, "connected")
            channel = served(server)[0]
            transport = channel.transport
            assert transport is not None
            stream = memoryview(call * 16)  # a window sent over and over: the same call again and again
            sent = 0
            most_buffered = most_unsent = 0
            refused = 0  # writes the kernel refused since the server stopped reading
            limit = 256 * 1024 * 1024
            while refused < 200:
                try:
                    sent += sock.send(stream[sent % len(call):])
                except BlockingIOError:
                    if not transport.is_reading():
                        refused += 1
                await asyncio.sleep(0)
                most_buffered = max(most_buffered, channel.session.buffered)
                most_unsent = max(most_unsent, transport.get_write_buffer_size())
                assert sent < limit, "the server kept reading a client that reads nothing"
            # bounded by the limits (a read's worth; max_calls answers past the high-water mark), not the peer
            assert most_buffered <= 512 * 1024 and most_unsent <= 64 * 1024 + 5 * len(call), (most_buffered, most_unsent)
            assert sent > 4 * (most_buffered + most_unsent)  # the client wrote far more than the server holds

            calls = -(-sent // len(call))  # the last one finished below
            rest = (len(call) - sent % len(call)) % len(call)
            sock.setblocking(True)
            sending = loop.sock_sendall(sock, bytes(stream[sent % len(call):][:rest]))
            received = bytearray()
            answer_size = len(spec.Rframe(1, spec.by_name["ping"].response("x" * 60_000)).encode())

            async def read_all() -> None:
                while len(received) < calls * answer_size:
                    data = await loop.sock_recv(sock, 1 << 20)
                    assert data, "the server closed"
                    received.extend(data)

            sock.setblocking(False)
            await asyncio.gather(sending, read_all())
            assert len(received) == calls * answer_size
            await until(lambda: server.in_flight == 0 and channel.session.buffered == 0, "everything answered")
            sock.close()
            await until(lambda: server.connections == 0, "the connection gone")

    run(main)


def test_max_calls_bounds_the_calls_running_per_connection() -> None:
    """With max_calls=4 a fifth call is not started until one finishes: the server stops
    reading the stream meanwhile."""

    async def main() -> None:
        impl = GateServer()
        async with await rpc.serve(impl, "tcp://127.0.0.1:0", max_calls=4) as server, \
                await Gate.connect(server.urls[0]) as client:
            calls = [asyncio.ensure_future(client.hold(n)) for n in range(10)]
            await until(lambda: impl.started == 4, "four calls started")
            transport = served(server)[0].transport
            assert transport is not None
            await until(lambda: not transport.is_reading(), "the stream paused")
            for _ in range(100):
                await asyncio.sleep(0)
            assert impl.started == 4 and server.in_flight == 4
            for finished in range(1, 7):
                impl.open(1)
                await until(lambda: impl.started == 4 + finished, "the next call started")
                assert impl.running == 4
            impl.open(4)
            assert await asyncio.gather(*calls) == [2 * n for n in range(10)]
            assert impl.most_running == 4

    run(main)


def test_call_timeout_cancels_a_slow_handler() -> None:
    async def main() -> None:
        impl = ToolboxServer()
        async with await rpc.serve(impl, "tcp://127.0.0.1:0", call_timeout=0.05) as server, \
                await Toolbox.connect(server.urls[0]) as client:
            with pytest.raises(jetwire.Error) as caught:
                await client.sleep(30)
            assert caught.value.code == DEADLINE_CODE and "within 0.05 s" in caught.value.message
            assert impl.cancelled == 1 and server.in_flight == 0
            assert await client.add(1, 2) == 3  # the stream carries on

    run(main)


# =============================================================================================
# Graceful shutdown

def test_close_lets_running_calls_finish_and_accepts_no_one(url: str) -> None:
    async def main() -> None:
        impl = GateServer()
        server = await rpc.serve(impl, url)
        client = await Gate.connect(server.urls[0])
        calls = [asyncio.ensure_future(client.hold(n)) for n in range(3)]
        await until(lambda: impl.started == 3, "three calls running")
        closing = asyncio.ensure_future(server.close(timeout=30))
        await until(lambda: all(not listener.server.is_serving() for listener in server.listeners),  # type: ignore[attr-defined]
                    "the listener closed")
        with pytest.raises(OSError):
            await Gate.connect(server.urls[0])
        impl.open(3)
        assert await asyncio.gather(*calls) == [0, 2, 4]
        await closing
        assert server.connections == 0
        with pytest.raises(rpc.ConnectionClosed):
            await client.hold(4)
        await client.close()

    run(main)


def test_two_closes_at_once_both_return_when_the_calls_end() -> None:
    async def main() -> None:
        impl = GateServer()
        server = await rpc.serve(impl, "tcp://127.0.0.1:0")
        async with await Gate.connect(server.urls[0]) as client:
            call = asyncio.ensure_future(client.hold(1))
            await until(lambda: impl.started == 1, "the call running")
            closes = [asyncio.ensure_future(server.close(timeout=60)) for _ in range(2)]
            await until(lambda: not served(server)[0]._reading, "the server draining")
            impl.open(1)
            assert await call == 2
            await asyncio.gather(*closes)  # neither waits for its timeout
            assert server.connections == 0

    run(main)


def test_close_cancels_calls_running_past_its_timeout() -> None:
    async def main() -> None:
        impl = GateServer()
        before = tasks()
        server = await rpc.serve(impl, "tcp://127.0.0.1:0")
        async with await Gate.connect(server.urls[0]) as client:
            calls = [asyncio.ensure_future(client.hold(n)) for n in range(3)]
            await until(lambda: impl.started == 3, "three calls running")
            await server.close(timeout=0.05)
            for call in calls:
                with pytest.raises(jetwire.Error) as caught:
                    await call
                assert caught.value.code == SHUTDOWN_CODE
            assert impl.cancelled == 3 and server.connections == 0
        await until(lambda: tasks() == before, "no task left")

    run(main)


def test_client_fin_with_calls_in_flight_gets_every_answer(url: str) -> None:
    """r[jetstream.rpc.transport.quic-shutdown], for TCP and unix streams too: after the
    client's FIN, every call it sent is answered (those past max_calls included), then the
    server closes."""

    async def main() -> None:
        impl = GateServer()
        async with await rpc.serve(impl, url, max_calls=2) as server:
            address = rpc.parse_url(server.urls[0])
            if address.scheme == "tcp":
                reader, writer = await asyncio.open_connection(address.host, address.port)
            else:
                reader, writer = await asyncio.open_unix_connection(address.path)
            spec = rpc.spec_of(Gate)
            hold = spec.by_name["hold"]
            writer.write(b"".join(spec.Tframe(tag, hold.request(tag)).encode() for tag in range(1, 6)))
            writer.write_eof()
            await until(lambda: impl.started == 2, "two calls running")
            impl.open(5)
            frames = FrameReader(spec.Rframe)
            answers = {}
            while (frame := await read_frame(reader, frames)) is not None:
                answers[frame.tag] = frame.msg.value
            assert answers == {tag: 2 * tag for tag in range(1, 6)}
            await until(lambda: server.connections == 0, "the connection closed")
            writer.close()
            await writer.wait_closed()

    run(main)


# =============================================================================================
# The handshake's faults, and the client's own backpressure

class Silent:
    """A server that accepts and then does what ``behave`` says with the client's Tversion."""

    def __init__(self, behave: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]) -> None:
        self.behave = behave
        self.writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> str:
        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.writers.append(writer)
            await self.behave(reader, writer)

        self.server = await asyncio.start_server(accept, "127.0.0.1", 0)
        return f"tcp://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def __aexit__(self, *exc_info: object) -> None:
        self.server.close()
        for writer in self.writers:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        await self.server.wait_closed()


def test_a_server_that_never_answers_the_handshake() -> None:
    """connect_timeout bounds the handshake: a ConnectTimeout (a CallTimeout, a TimeoutError, not
    a ConnectionError), the stream closed."""

    async def main() -> None:
        async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read()

        before = tasks()
        async with Silent(mute) as url:
            with pytest.raises(rpc.ConnectTimeout, match="version handshake") as raised:
                await Echo.connect(url, connect_timeout=0.05)
        assert isinstance(raised.value, rpc.CallTimeout) and isinstance(raised.value, TimeoutError)
        assert not isinstance(raised.value, ConnectionError)
        await until(lambda: tasks() == before, "no task left")

    run(main)


def test_a_connection_that_is_never_made(monkeypatch: pytest.MonkeyPatch) -> None:
    """connect_timeout bounds the connecting itself (a SYN to a host that drops it: here a
    transport whose open never returns)."""
    opening = 0

    class Unreachable:
        async def listen(self, *args: object) -> Any:
            raise AssertionError("not used")

        async def open(self, *args: object) -> Any:
            nonlocal opening
            opening += 1
            await asyncio.Future()

    monkeypatch.setitem(rpc.transports.TRANSPORTS, "tcp", Unreachable())

    async def main() -> None:
        with pytest.raises(rpc.ConnectTimeout, match="no connection"):
            await Echo.connect("tcp://192.0.2.1:4000", connect_timeout=0.01)
        assert opening == 1

    run(main)


@pytest.mark.parametrize(("answer", "error", "message"), [
    (b"", rpc.ConnectionClosed, "closed"),
    (bytes.fromhex("0b000000 ee ffff 00000000"), rpc.RemoteProtocolError, "does not decode"),
])
def test_a_server_that_breaks_the_handshake(answer: bytes, error: type[Exception], message: str) -> None:
    """r[jetstream.rpc.version.client-reject]: closing, or answering what does not decode,
    fails connect with a clear error."""

    async def main() -> None:
        async def behave(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readexactly(7)
            writer.write(answer)
            writer.close()

        async with Silent(behave) as url:
            with pytest.raises(error, match=message):
                await Echo.connect(url)

    run(main)


def test_a_client_whose_server_stops_reading_waits_instead_of_buffering() -> None:
    """The client's own backpressure: while the server reads nothing, calls wait for the
    transport (pause_writing) instead of piling up in its write buffer."""

    async def main() -> None:
        async with faked(Echo) as (client, peer):
            channel = channel_of(client)
            transport = channel.transport
            assert transport is not None
            big = "x" * 60_000
            calls = [asyncio.ensure_future(client.ping(big)) for _ in range(400)]  # 24 MB
            await until(lambda: len(channel._waiters) > 0, "calls waiting for the transport")
            for _ in range(100):
                await asyncio.sleep(0)
            assert transport.get_write_buffer_size() <= 64 * 1024 + 2 * 60_010
            assert channel.session.in_flight < 400
            for _ in calls:
                tag, msg = await peer.read_call()
                peer.answer(tag, "ping", msg.message[:1])
            assert await asyncio.gather(*calls) == ["x"] * 400

    run(main)


def test_garbage_from_a_client_still_answers_the_calls_before_it() -> None:
    """r[jetstream.rpc.reject.close-stream] r[jetstream.rpc.transport.quic-shutdown]: the
    server reads no further, answers the calls it had read, then closes."""

    async def main() -> None:
        impl = GateServer()
        async with await rpc.serve(impl, "tcp://127.0.0.1:0") as server:
            port = int(server.urls[0].rsplit(":", 1)[1])
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            spec = rpc.spec_of(Gate)
            hold = spec.by_name["hold"]
            writer.write(b"".join(spec.Tframe(tag, hold.request(tag)).encode() for tag in (1, 2)))
            writer.write(bytes.fromhex("0b000000 ee 0300 00000000"))  # type 238: no such request
            await until(lambda: impl.started == 2, "two calls running")
            impl.open(2)
            frames = FrameReader(spec.Rframe)
            answers = {}
            while (frame := await read_frame(reader, frames)) is not None:
                answers[frame.tag] = frame.msg.value
            assert answers == {1: 2, 2: 4}
            await until(lambda: server.connections == 0, "the connection closed")
            writer.close()
            await writer.wait_closed()

    run(main)


def test_close_returns_even_if_a_client_never_reads() -> None:
    """Answers a client does not read cannot be flushed: close(timeout) still ends, the stream
    aborted."""

    async def main() -> None:
        server = await rpc.serve(EchoServer(), "tcp://127.0.0.1:0")
        port = int(server.urls[0].rsplit(":", 1)[1])
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        await loop.sock_connect(sock, ("127.0.0.1", port))
        spec = rpc.spec_of(Echo)
        call = spec.Tframe(1, spec.by_name["ping"].request("x" * 60_000)).encode()
        await until(lambda: server.connections == 1, "connected")
        transport = served(server)[0].transport
        assert transport is not None
        stream = memoryview(call * 16)
        sent = 0
        while transport.get_write_buffer_size() == 0:  # until answers are stuck in the server
            with contextlib.suppress(BlockingIOError):
                sent += sock.send(stream[sent % len(call):])
            await asyncio.sleep(0)
        await server.close(timeout=0.05)
        assert server.connections == 0
        sock.close()

    run(main)


def test_a_waiting_call_that_cannot_be_sent_passes_its_turn_on() -> None:
    """max_tags=1: the call woken for the freed tag fails to encode; the next waiting call must
    still get the tag instead of waiting for an answer that will never come."""

    async def main() -> None:
        async with faked(Echo, max_tags=1) as (client, peer):
            channel = channel_of(client)
            first = asyncio.ensure_future(client.ping("first"))
            first_tag, _ = await peer.read_call()
            unsendable = asyncio.ensure_future(client.ping("x" * 70_000))  # over a string's u16 length
            last = asyncio.ensure_future(client.ping("last"))
            await until(lambda: len(channel._waiters) == 2, "two calls waiting")
            peer.answer(first_tag, "ping", "first")
            assert await first == "first"
            with pytest.raises(jetwire.EncodeError):
                await unsendable
            tag, msg = await peer.read_call()
            assert msg.message == "last"
            peer.answer(tag, "ping", "last")
            assert await last == "last"

    run(main)


def test_a_waiting_call_woken_then_cancelled_passes_its_turn_on() -> None:
    async def main() -> None:
        async with faked(Echo, max_tags=1) as (client, peer):
            channel = channel_of(client)
            spec = rpc.spec_of(Echo)
            first = asyncio.ensure_future(client.ping("first"))
            first_tag, _ = await peer.read_call()
            cancelled = asyncio.ensure_future(client.ping("cancelled"))
            last = asyncio.ensure_future(client.ping("last"))
            await until(lambda: len(channel._waiters) == 2, "two calls waiting")
            # the answer and the cancellation in the same turn of the loop: woken, then cancelled
            channel.data_received(spec.Rframe(first_tag, spec.by_name["ping"].response("first")).encode())
            cancelled.cancel()
            assert await first == "first"
            with pytest.raises(asyncio.CancelledError):
                await cancelled
            tag, msg = await peer.read_call()
            assert msg.message == "last"
            peer.answer(tag, "ping", "last")
            assert await last == "last"
            assert not channel._waiters

    run(main)


def test_close_answers_calls_read_but_not_started() -> None:
    """Calls that max_calls kept waiting in the server's buffer when close() began are not
    started: each is answered with the shutting-down error (the client knows they did not
    run), the running one is answered with its value."""

    async def main() -> None:
        impl = GateServer()
        server = await rpc.serve(impl, "tcp://127.0.0.1:0", max_calls=1)
        port = int(server.urls[0].rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        spec = rpc.spec_of(Gate)
        hold = spec.by_name["hold"]
        calls = [spec.Tframe(tag, hold.request(tag)).encode() for tag in (1, 2, 3)]
        writer.write(b"".join(calls))  # one write: read at once, then two wait for the first
        await until(lambda: impl.started == 1 and served(server)[0].session.buffered == len(calls[1]) * 2,
                    "one call running, two buffered")
        closing = asyncio.ensure_future(server.close(timeout=30))
        frames = FrameReader(spec.Rframe)
        refused = [await read_frame(reader, frames) for _ in range(2)]
        assert {frame.tag for frame in refused} == {2, 3}
        for frame in refused:
            assert isinstance(frame.msg, jetwire.Error) and frame.msg.code == SHUTDOWN_CODE
            assert "not started" in frame.msg.message
        impl.open(1)
        answer = await read_frame(reader, frames)
        assert answer.tag == 1 and answer.msg.value == 2
        assert await read_frame(reader, frames) is None  # then the server closed
        await closing
        assert impl.started == 1
        writer.close()
        await writer.wait_closed()

    run(main)

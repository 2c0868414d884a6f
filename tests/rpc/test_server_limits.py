"""A server's bounds on what its clients may hold: connections (max_connections), time without
calls or bytes (idle_timeout), time to finish a frame begun (frame_timeout), and close() itself,
bounded even by a handler that will not be cancelled. Checked by counts and by the events that
the bounds cause, never by how long anything took."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from services import Echo, EchoServer
from waiting import until

from jetwire import rpc, u32

pytestmark = [pytest.mark.filterwarnings("error"), pytest.mark.usefixtures("no_asyncio_complaints")]


def run(main: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(main(), 30))


@rpc.service(version="1.0.0")
class Stubborn(rpc.Service):
    async def stay(self, n: u32) -> u32: ...


class StubbornServer(Stubborn):
    """A handler that catches CancelledError and keeps going, until the test releases it."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started = 0
        self.swallowed = 0
        self.finished = 0

    async def stay(self, n: u32) -> u32:
        self.started += 1
        while not self.release.is_set():
            try:
                await self.release.wait()
            except asyncio.CancelledError:
                self.swallowed += 1
        self.finished += 1
        return n


def test_close_returns_though_a_handler_swallows_its_cancellation(caplog: pytest.LogCaptureFixture) -> None:
    """close(timeout): cancelled past the timeout, a handler that will not end is abandoned after
    a short grace (logged, counted); close() returns and the connection is closed regardless."""

    async def main() -> None:
        impl = StubbornServer()
        server = await rpc.serve(impl, "tcp://127.0.0.1:0")
        try:
            client = await Stubborn.connect(server.urls[0])
            call = asyncio.ensure_future(client.stay(1))
            await until(lambda: impl.started == 1, "the call started")
            await server.close(timeout=0.01, grace=0.01)
            assert impl.swallowed >= 1 and impl.finished == 0
            assert server.abandoned == 1 and server.connections == 0
            assert any("abandoned: StubbornServer.stay" in r.getMessage() for r in caplog.records)
            with pytest.raises(rpc.ConnectionClosed):
                await call
        finally:
            impl.release.set()  # else asyncio.run would wait for ever on the task at its end
        await until(lambda: impl.finished == 1, "the abandoned handler ended")
        await client.close()

    run(main)


# =============================================================================================
# max_connections

def test_past_max_connections_a_new_connection_is_closed_at_once_and_counted() -> None:
    async def main() -> None:
        server = await rpc.serve(EchoServer(), "tcp://127.0.0.1:0", max_connections=2)
        url = server.urls[0]
        first = await Echo.connect(url)
        second = await Echo.connect(url)
        with pytest.raises(rpc.ConnectionClosed):
            await Echo.connect(url)
        assert server.refused == 1 and server.connections == 2
        assert await first.ping("a") == "a" and await second.ping("b") == "b"  # the others go on
        await first.close()
        await until(lambda: server.connections == 1, "the first connection gone")
        third = await Echo.connect(url)
        assert await third.ping("c") == "c" and server.refused == 1
        for client in (second, third):
            await client.close()
        await server.close()

    run(main)


@pytest.mark.parametrize("options", [{"max_connections": 0}, {"idle_timeout": 0}, {"frame_timeout": -1.0},
                                     {"idle_timeout": float("nan")}])
def test_limits_that_allow_nothing_are_refused(options: dict[str, float]) -> None:
    async def main() -> None:
        with pytest.raises(ValueError, match=next(iter(options))):
            await rpc.serve(EchoServer(), "tcp://127.0.0.1:0", **options)  # type: ignore[arg-type]

    run(main)


# =============================================================================================
# idle_timeout and frame_timeout, over a socket

def test_an_idle_connection_is_closed() -> None:
    async def main() -> None:
        server = await rpc.serve(EchoServer(), "tcp://127.0.0.1:0", idle_timeout=0.05)
        client = await Echo.connect(server.urls[0])
        assert await client.ping("a") == "a"
        await until(lambda: server.connections == 0, "the idle connection closed")
        assert server.idle_closed == 1 and server.slow_frames == 0
        with pytest.raises(rpc.ConnectionClosed):
            await client.ping("b")
        await client.close()
        await server.close()

    run(main)


def test_a_frame_begun_and_never_finished_closes_the_connection() -> None:
    """Half a frame held a connection for ever; with frame_timeout it closes (no answer: there
    was no call)."""

    async def main() -> None:
        server = await rpc.serve(EchoServer(), "tcp://127.0.0.1:0", frame_timeout=0.05)
        host, port = server.urls[0].removeprefix("tcp://").rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(bytes.fromhex("0c000000 66"))  # the size and type of a ping, then nothing
        assert await reader.read() == b""  # closed by the server
        assert server.slow_frames == 1 and server.idle_closed == 0
        writer.close()
        await server.close()

    run(main)


# =============================================================================================
# The same checks on a clock the test turns

@rpc.service(version="1.0.0")
class Held(rpc.Service):
    async def hold(self) -> None: ...
    async def ping(self, message: str) -> str: ...


class HeldServer(Held):
    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def hold(self) -> None:
        await self.release.wait()

    async def ping(self, message: str) -> str:
        return message


SPEC = rpc.spec_of(Held)


def hold(tag: int) -> bytes:
    return bytes(SPEC.Tframe(tag, SPEC.by_name["hold"].request()).encode())


def ping(tag: int, text: str) -> bytes:
    return bytes(SPEC.Tframe(tag, SPEC.by_name["ping"].request(text)).encode())


class Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = self.aborted = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = self.aborted = True

    def get_extra_info(self, name: str, default: object = None) -> object:
        return default

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def timed_channel(impl: HeldServer, clock: Clock, **options: float) -> tuple[rpc.Server, Transport, Any]:
    from jetwire.rpc.aio import TimedServerChannel

    server = rpc.Server(impl, SPEC, max_frame_size=1 << 16, max_calls=int(options.pop("max_calls", 8)),
                        call_timeout=None, debug=False, require_version=False, **options)  # type: ignore[arg-type]
    channel = server.channel_class(server, "tcp")
    assert isinstance(channel, TimedServerChannel)
    channel.clock = clock
    transport = Transport()
    channel.connection_made(transport)
    return server, transport, channel


async def turns(n: int = 10) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


def test_idle_counts_from_the_last_call_running_not_from_the_last_read() -> None:
    """A call that runs longer than idle_timeout does not get its connection closed the moment
    it ends: the idle time starts when the last check saw a call running."""

    async def main() -> None:
        impl, clock = HeldServer(), Clock()
        server, transport, channel = timed_channel(impl, clock, idle_timeout=10.0)
        channel.data_received(hold(1))
        await turns()
        clock.now += 100
        channel.check(clock.now)
        assert not transport.closed and channel.session.in_flight == 1
        impl.release.set()
        await turns()
        assert channel.session.in_flight == 0 and transport.writes
        clock.now += 9.9
        channel.check(clock.now)
        assert not transport.closed
        clock.now += 0.1
        channel.check(clock.now)
        assert transport.closed and not transport.aborted and server.idle_closed == 1
        channel.connection_lost(None)

    run(main)


def test_a_stream_of_frames_is_not_one_slow_frame() -> None:
    """Each frame's clock starts when it begins: a client always midway through some frame, but
    finishing each in time, is not closed; one that stalls in a frame is."""

    async def main() -> None:
        clock = Clock()
        server, transport, channel = timed_channel(HeldServer(), clock, frame_timeout=10.0)
        frames = b"".join(ping(tag, "x" * 20) for tag in range(1, 5))
        size = len(ping(1, "x" * 20))
        for n in range(1, 4):  # each read ends midway through frame n + 1, which began in it
            channel.data_received(frames[(n - 1) * size + size // 2 if n > 1 else 0: n * size + size // 2])
            await turns()
            clock.now += 7.5
            channel.check(clock.now)
            assert not transport.closed, n
        clock.now += 2.5
        channel.check(clock.now)
        assert transport.closed and server.slow_frames == 1 and server.idle_closed == 0
        assert len(transport.writes) >= 1  # the whole frames were answered
        channel.connection_lost(None)

    run(main)


def test_frames_waiting_for_the_server_are_not_slow() -> None:
    """Whole frames held back by max_calls are the server's wait, not the client's: no
    frame_timeout while reading is paused, and the clock starts again when it resumes."""

    async def main() -> None:
        impl, clock = HeldServer(), Clock()
        server, transport, channel = timed_channel(impl, clock, frame_timeout=10.0, idle_timeout=10.0,
                                                   max_calls=1)
        channel.data_received(hold(1) + ping(2, "a") + ping(3, "b")[:5])
        await turns()
        assert channel.session.in_flight == 1 and channel.session.buffered > 0
        clock.now += 100
        channel.check(clock.now)
        assert not transport.closed
        impl.release.set()
        await turns()
        clock.now += 9
        channel.check(clock.now)
        assert not transport.closed
        clock.now += 1
        channel.check(clock.now)
        assert transport.closed and server.slow_frames == 1
        channel.connection_lost(None)

    run(main)


def test_a_timed_out_connection_whose_peer_does_not_read_is_aborted_at_the_next_check() -> None:
    async def main() -> None:
        clock = Clock()
        server, transport, channel = timed_channel(HeldServer(), clock, idle_timeout=1.0)

        def stuck_close() -> None:  # a close that waits for a write buffer the peer never drains
            pass

        transport.close = stuck_close  # type: ignore[method-assign]
        clock.now += 1
        channel.check(clock.now)
        assert server.idle_closed == 1 and not transport.aborted
        clock.now += 0.25
        channel.check(clock.now)
        assert transport.aborted and server.idle_closed == 1
        channel.connection_lost(None)

    run(main)


def test_a_server_without_timeouts_reads_through_the_untimed_channel() -> None:
    """The timers' bookkeeping is paid only by servers that ask for it."""

    async def main() -> None:
        server = rpc.Server(HeldServer(), SPEC, max_frame_size=1 << 16, max_calls=8, call_timeout=None, debug=False,
                            require_version=False)
        assert server.channel_class is rpc.ServerChannel

    run(main)


def test_a_frame_is_not_timed_while_its_client_is_not_reading_answers() -> None:
    """Reading paused because the client does not read its answers: a half frame then waits for
    this side; its clock starts again when reading resumes."""

    async def main() -> None:
        clock = Clock()
        server, transport, channel = timed_channel(HeldServer(), clock, frame_timeout=10.0)
        channel.data_received(ping(1, "a")[:5])
        channel.pause_writing()
        clock.now += 100
        channel.check(clock.now)
        assert not transport.closed
        channel.resume_writing()
        clock.now += 9
        channel.check(clock.now)
        assert not transport.closed
        clock.now += 1
        channel.check(clock.now)
        assert transport.closed and server.slow_frames == 1
        channel.connection_lost(None)

    run(main)


class HeldThenQuick(EchoServer):
    """ping("hold") waits for the test's release; any other ping answers without awaiting."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def ping(self, message: str) -> str:
        if message == "hold":
            await self.release.wait()
        return message


@pytest.mark.parametrize("steps_inline", [False, True], ids=["task-per-call", "steps-inline"])
def test_calls_queued_behind_max_calls_all_run_when_room_comes(steps_inline: bool) -> None:
    """Backpressure's catch-up: max_calls calls wait, and thousands of calls that never await
    arrive behind them in one read (a pipelining client). When a waiting call ends, the queued
    calls are taken one after another, not one inside the other: each answered call used to
    take the next from within its own answer, a stack frame deeper each time, until Python's
    recursion limit stopped the stream with most calls never answered."""
    from test_write_batching import ping, pong, served_channel, settle

    async def main() -> None:
        impl = HeldThenQuick()
        channel, transport = served_channel(max_calls=2, impl=impl, steps_inline=steps_inline)
        quick = 3 * sys.getrecursionlimit()
        channel.data_received(ping(1, "hold") + ping(2, "hold")
                              + b"".join(ping(tag, f"q{tag}") for tag in range(3, 3 + quick)))
        await asyncio.sleep(0)
        assert channel.session.in_flight == 2  # the two held calls fill max_calls: nothing else started
        impl.release.set()
        expected = [pong(1, "hold"), pong(2, "hold"), *(pong(tag, f"q{tag}") for tag in range(3, 3 + quick))]
        await settle(lambda: sum(map(len, transport.writes)) >= sum(map(len, expected)), "every call answered")
        assert sorted(frames(b"".join(transport.writes))) == sorted(expected)
        assert channel.session.in_flight == 0 and not channel.tasks

    run(main)


def frames(data: bytes) -> list[bytes]:
    """``data`` cut at its frames' size fields."""
    out = []
    while data:
        size = int.from_bytes(data[:4], "little")
        out.append(data[:size])
        data = data[size:]
    return out

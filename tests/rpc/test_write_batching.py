"""What one turn of the event loop writes leaves in one write: a server's answers and a client's
calls (r[jetstream.rpc.mux.pipelining]: whole frames, never interleaved); a server's answers are
not lost when the stream closes right after. Driven through a transport that records writes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from services import Echo, EchoServer

from jetwire.rpc import aio
from jetwire.rpc.protocol import ConnectionClosed, Rversion
from jetwire.rpc.service import spec_of
from jetwire.rpc.session import ClientSession

SPEC = spec_of(Echo)


def run(main: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(main(), 20))  # type: ignore[arg-type]


class RecordingTransport(asyncio.Transport):
    """Keeps every write; a write after close is recorded apart (it would be lost)."""

    def __init__(self, protocol: asyncio.Protocol) -> None:
        super().__init__()
        self.protocol = protocol
        self.writes: list[bytes] = []
        self.after_close: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        (self.after_close if self.closed else self.writes).append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            asyncio.get_running_loop().call_soon(self.protocol.connection_lost, None)

    def abort(self) -> None:
        self.aborted = True
        self.close()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def ping(tag: int, text: str) -> bytes:
    return bytes(SPEC.Tframe(tag, SPEC.by_name["ping"].request(text)).encode())


def pong(tag: int, text: str) -> bytes:
    return bytes(SPEC.Rframe(tag, SPEC.by_name["ping"].response(text)).encode())


async def settle(done: Callable[[], bool], what: str) -> None:
    """Turns the loop until ``done()`` (a call's answer is written from its task's done
    callback, one turn after it ends): bounded in turns, not in time."""
    for _ in range(1000):
        if done():
            return
        await asyncio.sleep(0)
    raise AssertionError(f"not after 1000 turns of the loop: {what}")


def written(transport: RecordingTransport) -> int:
    return sum(len(data) for data in transport.writes)


def served_channel(max_calls: int = 64, impl: Echo | None = None,
                   steps_inline: bool = False) -> tuple[aio.ServerChannel, RecordingTransport]:
    """A server channel of ``impl`` (an ``EchoServer`` unless told) connected to a recording transport."""
    server = aio.Server(impl or EchoServer(), SPEC, max_frame_size=1 << 20, max_calls=max_calls, call_timeout=None,
                        debug=False, require_version=False, steps_inline=steps_inline)
    channel = aio.ServerChannel(server, "tcp")
    transport = RecordingTransport(channel)
    channel.connection_made(transport)
    return channel, transport


def test_a_server_writes_the_answers_of_one_read_at_once() -> None:
    async def main() -> None:
        channel, transport = served_channel()
        channel.data_received(b"".join(ping(tag, f"m{tag}") for tag in range(1, 6)))
        answers = b"".join(pong(tag, f"m{tag}") for tag in range(1, 6))
        await settle(lambda: written(transport) >= len(answers), "every answer written")
        assert transport.writes == [answers]

    run(main)


def test_a_server_closing_after_its_last_answer_sends_it_first() -> None:
    """The client sends its calls and finishes (EOF): the answers of that turn are written
    before the stream closes (r[jetstream.rpc.transport.quic-shutdown])."""

    async def main() -> None:
        channel, transport = served_channel()
        channel.data_received(ping(1, "a") + ping(2, "b"))
        channel.eof_received()
        await settle(lambda: transport.closed and channel.server.connections == 0, "the stream closed")
        assert transport.closed
        assert b"".join(transport.writes) == pong(1, "a") + pong(2, "b")
        assert transport.after_close == []

    run(main)


def test_a_server_reading_freely_does_not_look_for_calls_after_each_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    """One read of five calls asks the session three times (``take_calls``, which gives all
    five, once more, then ``next_event`` once, which finds none); their answers ask nothing more
    while the stream is read freely."""

    async def main() -> None:
        channel, transport = served_channel()
        asked: list[str] = []

        def counted(name: str) -> None:
            asked_for = getattr(channel.session, name)

            def ask(*args: Any) -> Any:
                asked.append(name)
                return asked_for(*args)

            monkeypatch.setattr(channel.session, name, ask)

        counted("take_calls")
        counted("next_event")
        channel.data_received(b"".join(ping(tag, "m") for tag in range(1, 6)))
        answers = b"".join(pong(tag, "m") for tag in range(1, 6))
        await settle(lambda: written(transport) >= len(answers), "every answer written")
        assert b"".join(transport.writes) == answers
        assert asked == ["take_calls"] * 2 + ["next_event"]

    run(main)


def test_a_server_at_its_limit_of_calls_goes_on_as_answers_leave() -> None:
    """max_calls=2 and five calls in one read: two run, reading stops, and each answer lets
    the next call in until all five are answered."""

    async def main() -> None:
        channel, transport = served_channel(max_calls=2)
        channel.data_received(b"".join(ping(tag, f"m{tag}") for tag in range(1, 6)))
        assert channel.session.in_flight <= 2  # 0 where tasks start eagerly (3.12+): each call ran to its end
        answers = b"".join(pong(tag, f"m{tag}") for tag in range(1, 6))
        await settle(lambda: written(transport) >= len(answers), "every answer written")
        # in any order (r[jetstream.rpc.mux.out-of-order]): a call let in by an answer starts
        # eagerly, and may end before one read earlier whose task has not run yet
        sent = b"".join(transport.writes)
        frames = sorted(sent[at:at + 11] for at in range(0, len(sent), 11))
        assert frames == [pong(tag, f"m{tag}") for tag in range(1, 6)]
        assert channel.session.in_flight == 0

    run(main)


async def client_channel() -> tuple[Any, aio.ClientChannel, RecordingTransport]:
    """A client channel whose handshake is done: its Tversion answered in kind."""
    channel = aio.ClientChannel(ClientSession(SPEC), "tcp://test")
    transport = RecordingTransport(channel)
    channel.connection_made(transport)
    asked = SPEC.Tframe.decode(transport.writes.pop()).msg
    channel.data_received(bytes(SPEC.Rframe(0xFFFF, Rversion(asked.msize, asked.version)).encode()))
    await channel.ready
    return SPEC.client_class(channel, None), channel, transport


def test_a_client_writes_the_calls_of_one_turn_at_once() -> None:
    async def main() -> None:
        client, channel, transport = await client_channel()
        calls = [asyncio.ensure_future(client.ping(f"m{n}")) for n in range(5)]
        await settle(lambda: bool(transport.writes), "the calls written")
        assert transport.writes == [b"".join(ping(tag, f"m{tag - 1}") for tag in range(1, 6))]
        channel.data_received(b"".join(pong(tag, f"m{tag - 1}") for tag in range(1, 6)))
        assert await asyncio.gather(*calls) == [f"m{n}" for n in range(5)]

    run(main)


def test_a_client_writes_at_once_past_64_kib_unsent() -> None:
    """Batching must not hide the transport's backpressure: past asyncio's high-water mark the
    calls are written (and pause_writing can stop the next ones) within the same turn."""

    async def main() -> None:
        client, _, transport = await client_channel()
        big = "x" * 30_000
        calls = [asyncio.ensure_future(client.ping(big)) for _ in range(5)]
        await asyncio.sleep(0)  # every call has run up to its await; the end-of-turn flush has not
        assert [len(w) for w in transport.writes] == [3 * len(ping(1, big))]
        await settle(lambda: written(transport) >= 5 * len(ping(1, big)), "every call written")
        assert sum(len(w) for w in transport.writes) == 5 * len(ping(1, big))
        for call in calls:
            call.cancel()

    run(main)


def test_a_client_closing_drops_the_calls_it_made_in_the_same_turn() -> None:
    """close() with a call in flight is abortive (unsent bytes dropped, so the server runs
    nothing for nobody): a call made in the same turn is never written, and fails."""

    async def main() -> None:
        client, channel, transport = await client_channel()
        call = asyncio.ensure_future(client.ping("last"))
        await asyncio.sleep(0)
        await channel.close()
        assert transport.aborted
        assert transport.writes == [] and transport.after_close == []
        with pytest.raises(ConnectionClosed):
            await call

    run(main)


def test_a_call_cancelled_before_its_task_ran_is_still_answered() -> None:
    """r[jetstream.rpc.mux.one-response]: a shutdown that cancels a call whose task has not run
    yet (3.10, 3.11) or is waiting (3.12+, where it started eagerly) still answers it."""

    class Waiting(Echo):
        async def ping(self, message: str) -> str:
            await asyncio.sleep(10)
            return message

    async def main() -> None:
        channel, transport = served_channel(max_calls=8, impl=Waiting())
        channel.data_received(ping(1, "m"))
        [task] = channel.tasks
        task.cancel()
        await settle(lambda: bool(transport.writes), "the cancelled call answered")
        [answer] = transport.writes
        error = SPEC.Rframe.decode(answer).msg
        assert error.code == aio.SHUTDOWN_CODE and channel.session.in_flight == 0

    run(main)


def test_a_client_makes_its_futures_as_its_loop_does() -> None:
    """asyncio's own loops: an ``asyncio.Future`` of that loop, made without the loop's method;
    a loop with a create_future of its own (uvloop's) keeps it."""
    from jetwire.rpc.aio import _future_maker

    class OwnFutures(asyncio.SelectorEventLoop):
        made = 0

        def create_future(self) -> asyncio.Future[Any]:
            OwnFutures.made += 1
            return super().create_future()

    for loop_class in (asyncio.SelectorEventLoop, OwnFutures):
        loop = loop_class()
        try:
            future = _future_maker(loop)()
            assert isinstance(future, asyncio.Future) and future.get_loop() is loop
        finally:
            loop.close()
    assert OwnFutures.made == 1


class Draining(EchoServer):
    """ping("drain") drains the stream it came on, in its first step (as a method that shuts its
    server down does); any other ping answers."""

    def __init__(self) -> None:
        self.channel: aio.ServerChannel | None = None

    async def ping(self, message: str) -> str:
        if message == "drain":
            assert self.channel is not None
            self.channel.drain()
        return message


@pytest.mark.parametrize("steps_inline", [False, True], ids=["task-per-call", "steps-inline"])
def test_calls_read_together_are_answered_though_one_drains_the_stream_first(steps_inline: bool) -> None:
    """The calls of one read are taken together: a call among them that drains the stream does
    not strand the calls after it (taken, counted in flight, never answered, the stream never
    closing); each runs and is answered, then the stream closes."""

    async def main() -> None:
        impl = Draining()
        channel, transport = served_channel(impl=impl, steps_inline=steps_inline)
        impl.channel = channel
        # from a loop callback, as a socket's bytes come: on 3.10 and 3.11 a task's first step
        # is taken at once only outside any other task
        asyncio.get_running_loop().call_soon(channel.data_received, ping(1, "a") + ping(2, "drain") + ping(3, "b"))
        await settle(lambda: transport.closed, "the stream closed")
        assert b"".join(transport.writes) == pong(1, "a") + pong(2, "drain") + pong(3, "b")
        assert transport.after_close == []
        assert channel.session.in_flight == 0

    run(main)

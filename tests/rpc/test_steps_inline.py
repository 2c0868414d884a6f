"""``serve(..., steps_inline=True)``: a handler runs up to its first wait with no task of its
own (a call that never waits is answered without one), and goes on in a task if it waits.
What a client sees is the same as without it (r[jetstream.rpc.transport.stream-concurrent],
r[jetstream.rpc.mux.one-response]); what the handler gives up is its own task before its
first ``await``. The mechanism is the 9P server's (jetwire/runtime/steps.py)."""

from __future__ import annotations

import asyncio
import contextvars

import pytest
from services import Echo, Toolbox, ToolboxServer
from test_write_batching import RecordingTransport, ping, pong, run, served_channel

import jetwire
from jetwire import rpc
from jetwire.p9 import serving
from jetwire.rpc import aio
from jetwire.runtime import steps

SEEN: contextvars.ContextVar[str] = contextvars.ContextVar("SEEN", default="")


class Observing(Echo):
    """ping answers, without awaiting, the context variable's value before it set it, and
    notes the task it ran in; fail awaits once and says which task it went on in."""

    def __init__(self) -> None:
        self.tasks: list[asyncio.Task[object] | None] = []
        self.after_wait: list[asyncio.Task[object] | None] = []

    async def ping(self, message: str) -> str:
        self.tasks.append(asyncio.current_task())
        before = SEEN.get()
        SEEN.set(message)
        return f"{before}|{message}"

    async def fail(self) -> None:
        before = SEEN.get()
        SEEN.set("fail")
        self.tasks.append(asyncio.current_task())
        await asyncio.sleep(0)
        self.after_wait.append(asyncio.current_task())
        raise jetwire.Error(f"{before}|{SEEN.get()}", code="E1")


def _channel(impl: Echo) -> tuple[aio.ServerChannel, RecordingTransport]:
    return served_channel(max_calls=8, impl=impl, steps_inline=True)


def test_a_call_that_never_waits_runs_with_no_task_and_is_answered_within_the_read() -> None:
    """Read from a loop callback, as a socket's bytes are: no task is made (the handler sees
    none), the calls are answered before data_received returns, and a context variable one
    call sets is not seen by the next of the same read."""

    async def main() -> None:
        impl = Observing()
        channel, transport = _channel(impl)
        after_read: list[int] = []
        made: list[int] = []

        def read() -> None:
            before = len(asyncio.all_tasks())
            channel.data_received(ping(1, "a") + ping(2, "b"))
            made.append(len(asyncio.all_tasks()) - before)
            after_read.extend((channel.session.in_flight, len(channel.tasks)))

        asyncio.get_running_loop().call_soon(read)
        for _ in range(3):
            await asyncio.sleep(0)
        assert impl.tasks == [None, None]
        assert made == [0]
        assert after_read == [0, 0]
        assert transport.writes == [pong(1, "|a") + pong(2, "|b")]
        assert SEEN.get() == ""

    run(main)


def test_a_call_that_waits_goes_on_in_a_task_with_its_own_context() -> None:
    """Before its first wait the handler has no task; after it, a task of its own (a different
    one per call), with the context variables it set before: none of them leak to the next call."""

    async def main() -> None:
        impl = Observing()
        async with await aio.serve(impl, "tcp://127.0.0.1:0", steps_inline=True) as server, \
                await Echo.connect(server.urls[0]) as client:
            answers = await asyncio.gather(*(client.fail() for _ in range(3)), return_exceptions=True)
            assert answers == [jetwire.Error("|fail", code="E1")] * 3
            assert await client.ping("p") == "|p"
            assert server.in_flight == 0
        assert impl.tasks == [None] * 4
        assert all(isinstance(task, asyncio.Task) for task in impl.after_wait)
        assert len({id(task) for task in impl.after_wait}) == 3

    run(main)


@pytest.mark.parametrize("inline", [False, True])
def test_what_a_client_sees_is_the_same_with_and_without_steps_inline(inline: bool) -> None:
    """Answers, errors raised before and after a wait, values with no encoding, a Context."""

    async def main() -> None:
        impl = ToolboxServer()
        async with await aio.serve(impl, "tcp://127.0.0.1:0", steps_inline=inline) as server, \
                await Toolbox.connect(server.urls[0]) as client:
            assert await asyncio.gather(*(client.add(n, n) for n in range(5))) == [0, 2, 4, 6, 8]
            assert await client.sleep(0.001) == "slept 0.001"
            with pytest.raises(jetwire.Error, match="internal error"):
                await client.crash("x")
            with pytest.raises(jetwire.Error, match="internal error"):
                await client.bad_return()
            assert await client.give_error("m") == jetwire.Error("m", code="returned")
            assert (await client.whoami()).startswith("tcp whoami tag=")
            assert server.in_flight == 0

    run(main)


def test_a_waiting_call_is_still_cut_by_call_timeout() -> None:
    async def main() -> None:
        impl = ToolboxServer()
        async with await aio.serve(impl, "tcp://127.0.0.1:0", steps_inline=True, call_timeout=0.05) as server, \
                await Toolbox.connect(server.urls[0]) as client:
            with pytest.raises(jetwire.Error) as caught:
                await client.sleep(30)
            assert caught.value.code == aio.DEADLINE_CODE
            assert (impl.started, impl.cancelled) == (1, 1)
            assert await client.add(1, 2) == 3
            assert server.in_flight == 0

    run(main)


def test_a_waiting_call_is_cancelled_when_its_client_goes() -> None:
    """The task that took the call over from its first step passes the cancellation on to the
    handler's coroutine: it ends, nothing stays in flight."""

    async def main() -> None:
        impl = ToolboxServer()
        async with await aio.serve(impl, "tcp://127.0.0.1:0", steps_inline=True) as server:
            client = await Toolbox.connect(server.urls[0])
            waiting = asyncio.ensure_future(client.sleep(30))
            for _ in range(1000):
                if impl.started:
                    break
                await asyncio.sleep(0.001)
            await client.close()
            with pytest.raises(rpc.ConnectionClosed):
                await waiting
            for _ in range(1000):
                if impl.cancelled and not server.in_flight:
                    break
                await asyncio.sleep(0.001)
            assert (impl.started, impl.cancelled, impl.finished) == (1, 1, 0)
            assert server.in_flight == 0

    run(main)


def test_the_9p_server_and_the_rpc_server_share_one_mechanism() -> None:
    assert serving._Resume is steps.Resume

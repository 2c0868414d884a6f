"""A call whose handler never awaits is answered within the read that brought it, on every
Python (3.12's eager tasks, an equivalent on 3.10 and 3.11), and still runs as a task of its
own: current_task() is the call's, its contextvars are its own, and a handler that does await
is still cancelled by call_timeout."""

from __future__ import annotations

import asyncio
import contextvars

from services import Echo
from test_write_batching import ping, pong, run, served_channel

import jetwire
from jetwire import rpc
from jetwire.rpc import aio

SEEN: contextvars.ContextVar[str] = contextvars.ContextVar("SEEN", default="")


class Observing(Echo):
    """ping answers, without awaiting, what its call saw: whether it ran in a task of its own
    that is not the caller's, and the context variable's value before it set it."""

    def __init__(self) -> None:
        self.tasks: list[asyncio.Task[object] | None] = []

    async def ping(self, message: str) -> str:
        task = asyncio.current_task()
        self.tasks.append(task)
        before = SEEN.get()
        SEEN.set(message)
        return f"{before}|{message}"

    async def fail(self) -> None:
        """Fails if the task seen before its first await is not the one that goes on after it."""
        first = asyncio.current_task()
        await asyncio.sleep(0)
        if asyncio.current_task() is not first:
            raise jetwire.Error("another task after the first await", code="E2")
        raise jetwire.Error("same task", code="E1")


class Sleeping(Echo):
    async def ping(self, message: str) -> str:
        await asyncio.sleep(10)
        return message


def test_a_call_that_never_awaits_ends_within_the_read_that_brought_it() -> None:
    """Read from a loop callback as a socket's bytes are: the call has been answered (it is
    no longer in flight) before data_received returns, with no task left to schedule."""

    async def main() -> None:
        channel, transport = served_channel(max_calls=8, impl=Observing())
        after_read: list[int] = []

        def read() -> None:
            channel.data_received(ping(1, "a") + ping(2, "b"))
            after_read.append(channel.session.in_flight)
            after_read.append(len(channel.tasks))

        asyncio.get_running_loop().call_soon(read)
        for _ in range(3):
            await asyncio.sleep(0)
        assert after_read == [0, 0]
        assert transport.writes == [pong(1, "|a") + pong(2, "|b")]

    run(main)


def test_a_call_that_never_awaits_runs_in_a_task_of_its_own() -> None:
    """current_task() inside the handler is a task, a different one per call and never the
    connection's or the caller's; a context variable set by one call is not seen by the next,
    even when both arrive in one read."""

    async def main() -> None:
        impl = Observing()
        async with await rpc.serve(impl, "tcp://127.0.0.1:0") as server, \
                await Echo.connect(server.urls[0]) as client:
            answers = await asyncio.gather(*(client.ping(f"m{n}") for n in range(4)))
            assert answers == [f"|m{n}" for n in range(4)]
            assert await client.ping("last") == "|last"
        tasks = impl.tasks
        assert all(isinstance(task, asyncio.Task) for task in tasks)
        assert len({id(task) for task in tasks}) == len(tasks) == 5
        assert asyncio.current_task() not in tasks
        assert all(task is not None and task.done() for task in tasks)

    run(main)


def test_a_handler_that_awaits_goes_on_in_the_task_it_started_in() -> None:
    async def main() -> None:
        async with await rpc.serve(Observing(), "tcp://127.0.0.1:0") as server, \
                await Echo.connect(server.urls[0]) as client:
            for _ in range(3):
                try:
                    await client.fail()
                except jetwire.Error as error:
                    assert error == jetwire.Error("same task", code="E1")

    run(main)


def test_a_handler_that_awaits_past_its_first_step_is_still_cancelled_by_call_timeout() -> None:
    async def main() -> None:
        async with await rpc.serve(Sleeping(), "tcp://127.0.0.1:0", call_timeout=0.1) as server, \
                await Echo.connect(server.urls[0]) as client:
            try:
                await client.ping("late")
            except jetwire.Error as error:
                assert error.code == aio.DEADLINE_CODE
            else:
                raise AssertionError("the call was not cut at its deadline")
            assert server.in_flight == 0

    run(main)

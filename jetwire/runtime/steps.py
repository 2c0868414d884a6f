"""Running a handler's coroutine up to its first wait without a task, and handing the rest to
a task only when it does wait: what the 9P server (``Handler.steps_inline``) and the RPC server
(``serve(..., steps_inline=True)``) share.

Most calls of a server never wait (an answer computed, a read from the page cache): a task for
each, with its handle in the loop's queue and its entry in asyncio's set of tasks, would cost
more than the call (an RPC call to a raw client, 70,600 instructions with a task, 57,700
without, in ``benchmarks/rpc_instructions.py``). The price is the handler's: before its first ``await``
it runs in whatever runs the server (no ``asyncio.current_task()`` of its own, so no
``asyncio.timeout`` or ``TaskGroup`` there); from its first ``await`` on it is in a task.
"""

from __future__ import annotations

import contextvars
from collections.abc import Generator
from typing import Any

__all__ = ["Resume", "finish", "first_step"]


def first_step(coroutine: Any) -> tuple[Any, contextvars.Context]:
    """Runs ``coroutine`` up to its first wait in a copy of the current context, so that what
    one call sets in its context variables is never seen by the next call or by the server:
    (what it yielded, that context). Make the task that goes on from there inside that context
    (``context.run(loop.create_task, ...)``), as a task made for the whole call would have had
    a context of its own. A coroutine that ends without waiting raises ``StopIteration`` with
    its value, as ``send`` does."""
    context = contextvars.copy_context()
    return context.run(coroutine.send, None), context


class Resume:
    """Awaiting it goes on with a coroutine already run up to its first wait, on ``waiting_on``
    (what it yielded then): the task awaiting this takes over where the first step stopped."""

    __slots__ = ("coroutine", "waiting_on")

    def __init__(self, coroutine: Any, waiting_on: Any) -> None:
        self.coroutine = coroutine
        self.waiting_on = waiting_on

    def __await__(self) -> Generator[Any, Any, Any]:
        coroutine, value = self.coroutine, self.waiting_on
        while True:
            try:
                sent = yield value
            except GeneratorExit:
                coroutine.close()
                raise
            except BaseException as exc:  # the task's cancellation, passed on to the coroutine
                try:
                    value = coroutine.throw(exc)
                except StopIteration as done:
                    return done.value
            else:
                try:
                    value = coroutine.send(sent)
                except StopIteration as done:
                    return done.value


async def finish(coroutine: Any, waiting_on: Any) -> Any:
    """The rest of a coroutine whose first step ran (see ``Resume``), as a coroutine a task can
    run: the task's result is the coroutine's."""
    return await Resume(coroutine, waiting_on)

"""A server's bounds on what its clients may hold: connections (max_connections), time without
calls or bytes (idle_timeout), time to finish a frame begun (frame_timeout), and close() itself,
bounded even by a handler that will not be cancelled. Checked by counts and by the events that
the bounds cause, never by how long anything took."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Awaitable, Callable, Iterator

import pytest
from services import Echo, EchoServer

from jetwire import rpc, u32

pytestmark = pytest.mark.filterwarnings("error")


def run(main: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(main(), 30))  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def no_asyncio_complaints(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    with caplog.at_level(logging.WARNING, logger="asyncio"):
        yield
        gc.collect()
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []


async def until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Waits for ``condition``; the timeout only turns a hang into a failure."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not condition():
        if loop.time() > end:
            raise AssertionError(f"still not {what} after {timeout} s")
        await asyncio.sleep(0.001)


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

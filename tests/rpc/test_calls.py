"""Calls end to end over TCP and unix sockets: values, errors, context, timeouts, limits."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Awaitable, Callable

import pytest
from services import Echo, EchoServer, Toolbox, ToolboxServer

import jetwire
from jetwire import rpc


def run(main: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(main(), 20))  # type: ignore[arg-type]


@pytest.fixture(params=["tcp", "unix"])
def url(request: pytest.FixtureRequest) -> str:
    if request.param == "tcp":
        return "tcp://127.0.0.1:0"
    return "unix://" + os.path.join(tempfile.mkdtemp(), "svc.sock")


def test_values_and_errors_round_trip(url: str) -> None:
    """r[jetstream.rpc.error.frame] r[jetstream.rpc.error.client-surface]: a handler's Error
    reaches the caller whole; the other calls carry on."""

    async def main() -> None:
        async with await rpc.serve(EchoServer(), url) as server, await Echo.connect(server.urls[0]) as client:
            assert await client.ping("héllo") == "héllo"
            with pytest.raises(jetwire.Error) as caught:
                await client.fail()
            assert caught.value == jetwire.Error("boom", code="E1")
            assert await client.ping("after") == "after"

    run(main)


def test_context_and_generic_errors(url: str) -> None:
    async def main() -> None:
        impl = ToolboxServer()
        async with await rpc.serve(impl, url) as server, await Toolbox.connect(server.urls[0]) as client:
            assert await client.add(2, 3) == 5
            who = await client.whoami()
            assert who.startswith(f"{url.split(':')[0]} whoami tag=")
            with pytest.raises(jetwire.Error) as caught:
                await client.crash("secret")
            assert caught.value.code == "jetwire::rpc::internal" and "secret" not in str(caught.value)
            with pytest.raises(jetwire.Error, match="no encoding"):
                await client.bad_return()
            # a method whose return type is an error: a value, not a failure
            returned = await client.give_error("fine")
            assert returned == jetwire.Error("fine", code="returned")

    run(main)


def test_debug_mode_says_what_failed() -> None:
    async def main() -> None:
        async with await rpc.serve(ToolboxServer(), "tcp://127.0.0.1:0", debug=True) as server, \
                await Toolbox.connect(server.urls[0]) as client:
            with pytest.raises(jetwire.Error) as caught:
                await client.crash("secret")
            assert "KeyError: 'secret'" in caught.value.message and "Traceback" in (caught.value.help or "")

    run(main)


def test_calls_run_concurrently_and_answer_out_of_order() -> None:
    """r[jetstream.rpc.mux.pipelining] r[jetstream.rpc.mux.out-of-order]
    r[jetstream.rpc.transport.stream-concurrent]"""

    async def main() -> None:
        async with await rpc.serve(ToolboxServer(), "tcp://127.0.0.1:0") as server, \
                await Toolbox.connect(server.urls[0]) as client:
            order: list[str] = []

            async def call(seconds: float) -> None:
                order.append(await client.sleep(seconds))

            await asyncio.gather(call(0.3), call(0.0), call(0.1))
            assert order == ["slept 0.0", "slept 0.1", "slept 0.3"]

    run(main)


def test_a_call_timeout_keeps_the_tag_until_the_late_answer() -> None:
    """r[jetstream.rpc.cancel.local]: nothing is sent; the tag is held, the late answer dropped."""

    async def main() -> None:
        async with await rpc.serve(ToolboxServer(), "tcp://127.0.0.1:0") as server, \
                await Toolbox.connect(server.urls[0]) as client:
            with pytest.raises(rpc.CallTimeout):
                await client.with_timeout(0.05).sleep(0.3)
            channel = client._jetwire_channel  # type: ignore[attr-defined]
            assert channel.session.in_flight == 1 and channel.in_flight == 0
            assert await client.sleep(0.4) == "slept 0.4"  # the late answer came meanwhile
            assert channel.session.in_flight == 0

    run(main)


def test_unimplemented_methods_answer_an_error() -> None:
    async def main() -> None:
        class Partial(Toolbox):
            async def add(self, a: int, b: int) -> int:  # type: ignore[override]
                return a + b

        async with await rpc.serve(Partial(), "tcp://127.0.0.1:0") as server, \
                await Toolbox.connect(server.urls[0]) as client:
            assert await client.add(1, 1) == 2
            with pytest.raises(jetwire.Error, match="not implemented"):
                await client.sleep(1)

    run(main)


def test_a_closed_client_fails_fast() -> None:
    async def main() -> None:
        async with await rpc.serve(EchoServer(), "tcp://127.0.0.1:0") as server:
            client = await Echo.connect(server.urls[0])
            await client.close()
            with pytest.raises(rpc.ConnectionClosed):
                await client.ping("x")

    run(main)


def test_the_server_refuses_another_service() -> None:
    """r[jetstream.rpc.version.reject-unknown] r[jetstream.rpc.version.client-reject]"""

    async def main() -> None:
        async with await rpc.serve(ToolboxServer(), "tcp://127.0.0.1:0") as server:
            with pytest.raises(rpc.VersionError, match="refused"):
                await Echo.connect(server.urls[0])

    run(main)




def test_an_implementation_that_is_not_async_fails_only_its_calls() -> None:
    """A method that returns a plain value (not a coroutine) or takes other arguments is
    answered with an internal error; the connection and the other methods go on."""

    class Odd:
        def add(self, a: int, b: int) -> int:  # not async
            return a + b

        async def whoami(self) -> str:  # no context parameter: called with one anyway
            return "?"

        async def sleep(self, seconds: float) -> str:
            return "fine"

    async def main() -> None:
        async with await rpc.serve(Odd(), "tcp://127.0.0.1:0", service=Toolbox) as server, \
                await Toolbox.connect(server.urls[0]) as client:
            with pytest.raises(jetwire.Error, match="internal error"):
                await client.add(1, 2)
            with pytest.raises(jetwire.Error, match="internal error"):
                await client.whoami()
            assert await client.sleep(0) == "fine"

    run(main)

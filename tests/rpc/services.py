"""Services the RPC tests share."""

from __future__ import annotations

import asyncio

import jetwire
from jetwire import i32, rpc


@rpc.service(version="1.0.0")
class Echo(rpc.Service):
    """The spec's worked example (§12): ping is index 0, fail index 1."""

    async def ping(self, message: str) -> str: ...

    async def fail(self) -> None: ...


@rpc.service(version="15.0.0", name="echohttp")
class EchoHttp(rpc.Service):
    """Upstream's EchoHttp service."""

    async def ping(self, message: str) -> str: ...

    async def add(self, a: i32, b: i32) -> i32: ...


class EchoServer(Echo):
    async def ping(self, message: str) -> str:
        return message

    async def fail(self) -> None:
        raise jetwire.Error("boom", code="E1")


@rpc.service(version="2.0.0")
class Toolbox(rpc.Service):
    """Methods that exercise the server shell: context, slowness, failures of every kind."""

    async def add(self, a: i32, b: i32) -> i32: ...

    async def whoami(self, ctx: rpc.Context = rpc.NO_CONTEXT) -> str: ...

    async def sleep(self, seconds: float) -> str: ...

    async def crash(self, text: str) -> None: ...

    async def bad_return(self) -> i32: ...

    async def give_error(self, message: str) -> jetwire.Error: ...


class ToolboxServer(Toolbox):
    def __init__(self) -> None:
        self.started = 0
        self.finished = 0
        self.cancelled = 0

    async def add(self, a: i32, b: i32) -> i32:
        return a + b

    async def whoami(self, ctx: rpc.Context = rpc.NO_CONTEXT) -> str:
        return f"{ctx.transport} {ctx.method} tag={ctx.tag} peer={ctx.peer!r}"

    async def sleep(self, seconds: float) -> str:
        self.started += 1
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        self.finished += 1
        return f"slept {seconds}"

    async def crash(self, text: str) -> None:
        raise KeyError(text)

    async def bad_return(self) -> i32:
        return "not an int"  # type: ignore[return-value]

    async def give_error(self, message: str) -> jetwire.Error:
        return jetwire.Error(message, code="returned")

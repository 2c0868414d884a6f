"""A typed JetStream RPC client as a user's code meets it (checked by ``mypy --strict``, not run)."""

from __future__ import annotations

from typing import Optional

from typing_extensions import assert_type

import jetwire
from jetwire import i32, rpc, wireformat


@wireformat
class Point:
    x: i32
    y: i32


@rpc.service(version="1.0.0")
class Echo(rpc.Service):
    async def ping(self, message: str) -> str: ...

    async def add(self, a: i32, b: i32) -> i32: ...

    async def nothing(self) -> None: ...

    async def find(self, name: str, *, exact: bool = False) -> Optional[Point]: ...

    async def whoami(self, ctx: rpc.Context = rpc.NO_CONTEXT) -> str: ...


@rpc.service
class Bare(rpc.Service):
    async def get(self) -> list[str]: ...


class EchoServer(Echo):
    async def ping(self, message: str) -> str:
        return message

    async def add(self, a: i32, b: i32) -> i32:
        return a + b


async def call(url: str) -> None:
    client = await Echo.connect(url)
    assert_type(client, Echo)
    assert_type(await client.ping("hi"), str)
    assert_type(await client.add(1, 2), int)
    assert_type(await client.nothing(), None)
    assert_type(await client.find("x", exact=True), Optional[Point])
    assert_type(await client.whoami(), str)
    await client.add("1", 2)  # type: ignore[arg-type]
    await client.add(1)  # type: ignore[call-arg]
    await client.ping("a", "b")  # type: ignore[call-arg]
    await client.find("x", True)  # type: ignore[call-arg]
    await client.nope()  # type: ignore[attr-defined]
    quick = client.with_timeout(0.5)
    assert_type(quick, Echo)
    assert_type(client.with_timeout(None), Echo)
    assert_type(client.strays, int)
    await client.close()

    async with await Echo.connect(url, timeout=5.0) as scoped:
        assert_type(scoped, Echo)
        assert_type(await scoped.ping("hi"), str)

    async with await Bare.connect(url) as bare:
        assert_type(await bare.get(), list[str])
    assert_type(Echo.NAME, str)
    assert_type(Echo.VERSION, str)

    other = await rpc.connect(Echo, url)
    assert_type(other, Echo)

    server = await rpc.serve(EchoServer(), "tcp://127.0.0.1:0")
    assert_type(server, rpc.Server)
    assert_type(server.urls, list[str])
    async with await rpc.serve(object(), ["tcp://127.0.0.1:0"], service=Echo) as served:
        assert_type(served, rpc.Server)
    await server.close()
    await Echo.connect(4000)  # type: ignore[arg-type]
    try:
        await client.ping("x")
    except jetwire.Error as error:
        assert_type(error.code, Optional[str])

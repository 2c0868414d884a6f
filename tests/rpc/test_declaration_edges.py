"""Service declarations as users write them: postponed annotations, local classes, every kind of
parameter, a Context anywhere, rich return types, services extending services, any object as
the implementation, and names that collide with the client's own. Each is served and called;
what jetwire refuses, it refuses with a SchemaError that names the method and says why.

This module has ``from __future__ import annotations``: every annotation here is a string
that ``rpc.service`` resolves."""

from __future__ import annotations

import asyncio
import types
from collections.abc import Awaitable, Callable
from typing import Any, Optional

import pytest

import jetwire
from jetwire import SchemaError, i32, rpc, u8, u16, wireenum, wireformat


def run(main: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(main(), 20))  # type: ignore[arg-type]


async def serve_and_call(impl: object, service: type, calls: Callable[[Any], Awaitable[None]]) -> None:
    async with await rpc.serve(impl, "tcp://127.0.0.1:0", service=service) as server, \
            await rpc.connect(service, server.urls[0]) as client:  # type: ignore[attr-defined]
        await calls(client)


@wireformat(frozen=True)
class Point:
    x: i32
    y: i32


@wireformat
class Polygon:
    name: str
    corners: list[Point]
    fill: Optional[Colour] = None


@wireenum
class Colour:
    class Rgb:
        r: u8
        g: u8
        b: u8

    class Named:
        name: str


@rpc.service(version="1.0.0")
class Shapes(rpc.Service):
    """Return types a user reaches for, all named by postponed annotations (Colour is defined
    after Polygon, which names it)."""

    async def find(self, name: str) -> Optional[Polygon]: ...

    async def bounds(self, polygon: Polygon) -> tuple[Point, Point]: ...

    async def colour(self, index: u16) -> Colour: ...

    async def nothing(self) -> None: ...


class ShapesServer(Shapes):
    async def find(self, name: str) -> Optional[Polygon]:
        if name == "square":
            return Polygon("square", [Point(0, 0), Point(0, 1), Point(1, 1), Point(1, 0)], Colour.Named("red"))
        return None

    async def bounds(self, polygon: Polygon) -> tuple[Point, Point]:
        xs = [p.x for p in polygon.corners]
        ys = [p.y for p in polygon.corners]
        return Point(min(xs), min(ys)), Point(max(xs), max(ys))

    async def colour(self, index: u16) -> Colour:
        return Colour.Rgb(index % 256, 0, 255) if index else Colour.Named("black")

    async def nothing(self) -> None:
        return None


def test_optional_tuple_enum_and_nested_class_returns() -> None:
    """r[jetstream.rpc.body.response]: the value as its type encodes it, whatever the type."""

    async def calls(client: Shapes) -> None:
        square = await client.find("square")
        assert square is not None and square.fill == Colour.Named("red") and len(square.corners) == 4
        assert await client.find("circle") is None
        assert await client.bounds(square) == (Point(0, 0), Point(1, 1))
        assert await client.colour(300) == Colour.Rgb(44, 0, 255)
        assert await client.colour(0) == Colour.Named("black")
        assert await client.nothing() is None

    run(lambda: serve_and_call(ShapesServer(), Shapes, calls))


def test_a_service_declared_in_a_function_may_name_its_local_classes() -> None:
    """With postponed annotations, a method's annotation "Local" names a class of the declaring
    function, which typing.get_type_hints cannot see from the method alone."""

    @wireformat
    class Local:
        value: u16
        tags: list[str]

    @rpc.service(version="1.0.0")
    class Keeper(rpc.Service):
        async def keep(self, item: Local) -> list[Local]: ...

    @rpc.service
    class Bare(rpc.Service):
        async def one(self) -> Local: ...

    class KeeperServer(Keeper):
        async def keep(self, item: Local) -> list[Local]:
            return [item, item]

    async def calls(client: Keeper) -> None:
        assert await client.keep(Local(7, ["a"])) == [Local(7, ["a"]), Local(7, ["a"])]

    run(lambda: serve_and_call(KeeperServer(), Keeper, calls))
    assert rpc.spec_of(Bare).by_name["one"].response.__annotations__["value"] is Local


def test_an_annotation_that_names_nothing_is_refused_with_its_method() -> None:
    with pytest.raises(SchemaError, match=r"Broken\.get: cannot resolve its annotations: name 'Missing'"):
        @rpc.service
        class Broken:
            async def get(self) -> Missing: ...  # type: ignore[name-defined]  # noqa: F821


@rpc.service(version="1.0.0")
class Kinds(rpc.Service):
    """Positional-only, positional, keyword-only parameters, and defaults of each: the client
    fills the defaults in, so the wire always carries every parameter."""

    async def mix(self, a: i32, b: i32 = 2, /, c: str = "c", *, d: bool, e: list[u8] = [1, 2]) -> str: ...

    async def only_keywords(self, *, x: i32, y: i32 = -1) -> i32: ...


class KindsServer(Kinds):
    async def mix(self, a: i32, b: i32 = 99, /, c: str = "server", *, d: bool, e: list[u8] = []) -> str:
        return f"{a} {b} {c} {d} {e}"

    async def only_keywords(self, *, x: i32, y: i32 = 99) -> i32:
        return x * y


def test_positional_only_keyword_only_and_defaults() -> None:
    """r[jetstream.rpc.body.request]: the wire parameters in declaration order, whatever their kind."""
    spec = rpc.spec_of(Kinds)
    assert spec.by_name["mix"].params == ("a", "b", "c", "d", "e")

    async def calls(client: Kinds) -> None:
        assert await client.mix(1, d=True) == "1 2 c True [1, 2]"  # the declaration's defaults, not the server's
        assert await client.mix(1, 5, "x", d=False, e=[]) == "1 5 x False []"
        assert await client.mix(1, c="kw", d=True) == "1 2 kw True [1, 2]"
        assert await client.only_keywords(x=3) == -3
        assert await client.only_keywords(y=2, x=3) == 6
        with pytest.raises(TypeError):
            await client.mix(a=1, d=True)  # positional-only, as declared
        with pytest.raises(TypeError):
            await client.only_keywords(3)  # keyword-only, as declared
        with pytest.raises(TypeError):
            await client.mix(1)  # d has no default

    run(lambda: serve_and_call(KindsServer(), Kinds, calls))


@rpc.service(version="1.0.0")
class Contexts(rpc.Service):
    """A Context wherever a parameter may be, with a default or without."""

    async def first(self, ctx: rpc.Context, a: i32) -> str: ...

    async def only(self, ctx: rpc.Context, /) -> str: ...

    async def middle(self, a: i32, ctx: rpc.Context = rpc.NO_CONTEXT, b: i32 = 0) -> str: ...

    async def keyword(self, a: i32, *, ctx: rpc.Context, b: i32) -> str: ...

    async def two(self, one: rpc.Context, a: i32, two: rpc.Context = rpc.NO_CONTEXT) -> str: ...


class ContextsServer(Contexts):
    async def first(self, ctx: rpc.Context, a: i32) -> str:
        return f"{ctx.method} {ctx.transport} {a}"

    async def only(self, ctx: rpc.Context, /) -> str:
        return f"{ctx.method} {ctx.transport}"

    async def middle(self, a: i32, ctx: rpc.Context = rpc.NO_CONTEXT, b: i32 = 0) -> str:
        return f"{ctx.method} {a} {b}"

    async def keyword(self, a: i32, *, ctx: rpc.Context, b: i32) -> str:
        return f"{ctx.method} {a} {b}"

    async def two(self, one: rpc.Context, a: i32, two: rpc.Context = rpc.NO_CONTEXT) -> str:
        assert one is two
        return f"{one.method} {a}"


def test_a_context_parameter_in_any_position() -> None:
    """r[jetstream.rpc.context.not-on-wire]: never on the wire; the server passes the call's own.
    A client passes nothing for it, except where Python needs an argument there (a positional
    Context before a required parameter): then whatever it passes stays on its side."""
    spec = rpc.spec_of(Contexts)
    assert [(m.name, m.params, m.context_params) for m in spec.methods] == [
        ("first", ("a",), ("ctx",)), ("only", (), ("ctx",)), ("middle", ("a", "b"), ("ctx",)),
        ("keyword", ("a", "b"), ("ctx",)), ("two", ("a",), ("one", "two")),
    ]
    assert spec.Tframe(1, spec.by_name["first"].request(5)).encode() == bytes.fromhex("0b000000 66 0100 05000000")

    async def calls(client: Contexts) -> None:
        assert await client.first(rpc.NO_CONTEXT, 5) == "first tcp 5"
        assert await client.only() == "only tcp"
        assert await client.middle(1) == "middle 1 0"
        assert await client.middle(1, rpc.NO_CONTEXT, 2) == "middle 1 2"
        assert await client.middle(1, b=3) == "middle 1 3"
        assert await client.keyword(1, b=2) == "keyword 1 2"
        assert await client.two(rpc.NO_CONTEXT, 4) == "two 4"

    run(lambda: serve_and_call(ContextsServer(), Contexts, calls))


@rpc.service(version="1.0.0")
class Names(rpc.Service):
    """Parameters named like what the generated client uses itself."""

    async def shadow(self, _method_0: i32, _request_0: i32, _default_0_x: i32 = 1) -> i32: ...

    async def request(self, request: str, impl: str, context: str, value: str) -> str: ...

    async def made(self, _new: str, _request: str) -> str: ...


@rpc.service(version="1.0.0")
class Selfish(rpc.Service):
    async def get(this, self: str) -> str: ...


def test_parameters_named_like_generated_code() -> None:
    class Impl:
        async def shadow(self, _method_0: int, _request_0: int, _default_0_x: int = 1) -> int:
            return _method_0 * 100 + _request_0 * 10 + _default_0_x

        async def request(self, request: str, impl: str, context: str, value: str) -> str:
            return request + impl + context + value

        async def made(self, _new: str, _request: str) -> str:
            return _new + _request

    async def calls(client: Names) -> None:
        assert await client.shadow(1, 2) == 121
        assert await client.shadow(3, 4, 5) == 345
        assert await client.request("r", "i", "c", "v") == "ricv"
        assert await client.made("n", "r") == "nr"

    run(lambda: serve_and_call(Impl(), Names, calls))

    class SelfishImpl:
        async def get(this, self: str) -> str:
            return self * 2

    async def selfish(client: Selfish) -> None:
        assert await client.get("ab") == "abab"

    run(lambda: serve_and_call(SelfishImpl(), Selfish, selfish))


@pytest.mark.parametrize("name", ["connect", "close", "with_timeout", "strays", "NAME", "VERSION"])
def test_methods_named_like_the_client_s_own_are_refused(name: str) -> None:
    """NAME and VERSION too: @rpc.service sets them on the class, which would replace the method."""
    namespace: dict[str, Any] = {}
    exec(f"class Svc:\n    async def {name}(self) -> None: ...", namespace)
    with pytest.raises(SchemaError, match=rf"Svc\.{name}: '{name}' is a client's own"):
        rpc.service(namespace["Svc"])


def test_other_client_like_names_are_methods_like_any() -> None:
    @rpc.service
    class Odd(rpc.Service):
        async def call(self) -> str: ...

        async def spec(self) -> str: ...

        async def mro(self) -> str: ...

    class OddServer(Odd):
        async def call(self) -> str:
            return "call"

        async def spec(self) -> str:
            return "spec"

        async def mro(self) -> str:  # type: ignore[override]
            return "mro"

    async def calls(client: Odd) -> None:
        assert [await client.call(), await client.spec(), await client.mro()] == ["call", "spec", "mro"]

    run(lambda: serve_and_call(OddServer(), Odd, calls))


@rpc.service(version="1.0.0")
class Base(rpc.Service):
    async def ping(self, text: str) -> str: ...

    @rpc.method(index=3)
    async def far(self) -> u8: ...


@rpc.service(version="2.0.0")
class Extended(Base):
    async def extra(self, n: u8) -> u16: ...

    async def ping(self, text: str) -> str:  # declared again: it keeps its index
        ...


@rpc.service(version="1.0.0")
class Further(Extended):
    async def last(self) -> None: ...


def test_a_service_extends_the_service_it_derives_from() -> None:
    """The base's methods keep their indexes (r[jetstream.rpc.numbering.order]) and the new
    ones follow the last, so the base's messages keep their numbers in the extension."""
    assert [(m.name, m.index) for m in rpc.spec_of(Extended).methods] == [("ping", 0), ("far", 3), ("extra", 4)]
    assert [(m.name, m.index) for m in rpc.spec_of(Further).methods] == [
        ("ping", 0), ("far", 3), ("extra", 4), ("last", 5)]
    assert Base.NAME == "base" and Extended.NAME == "extended"

    class ExtendedServer(Extended):
        async def ping(self, text: str) -> str:
            return text.upper()

        async def extra(self, n: u8) -> u16:
            return n * 100

    async def calls(client: Extended) -> None:
        assert await client.ping("hi") == "HI"
        assert await client.extra(7) == 700
        with pytest.raises(jetwire.Error, match="not implemented"):
            await client.far()

    run(lambda: serve_and_call(ExtendedServer(), Extended, calls))


def test_two_services_whose_indexes_collide_are_refused_together() -> None:
    @rpc.service
    class Left:
        async def left(self) -> None: ...

    @rpc.service
    class Right:
        async def right(self) -> None: ...

    with pytest.raises(SchemaError, match=r"Both\.left: index 0 is also right's"):
        @rpc.service
        class Both(Left, Right):
            pass


@rpc.service(version="1.0.0")
class Plain:
    """Not derived from rpc.Service: rpc.connect and serve(..., service=Plain) still work."""

    async def add(self, a: i32, b: i32) -> i32: ...

    async def name(self) -> str: ...


def test_any_object_implements_a_service() -> None:
    """No subclassing: an instance of an unrelated class, a namespace of functions, a module."""

    class Adder:
        async def add(self, a: int, b: int) -> int:
            return a + b

    async def add(a: int, b: int) -> int:
        return a - b

    async def name() -> str:
        return "functions"

    module = types.ModuleType("plain_impl")
    module.add = add  # type: ignore[attr-defined]

    async def calls_adder(client: Plain) -> None:
        assert await client.add(2, 3) == 5
        with pytest.raises(jetwire.Error, match="not implemented") as caught:
            await client.name()
        assert caught.value.code == "jetwire::rpc::unimplemented"

    async def calls_namespace(client: Plain) -> None:
        assert await client.add(2, 3) == -1
        assert await client.name() == "functions"

    async def calls_module(client: Plain) -> None:
        assert await client.add(5, 3) == 2
        with pytest.raises(jetwire.Error, match="not implemented"):
            await client.name()

    run(lambda: serve_and_call(Adder(), Plain, calls_adder))
    run(lambda: serve_and_call(types.SimpleNamespace(add=add, name=name), Plain, calls_namespace))
    run(lambda: serve_and_call(module, Plain, calls_module))
    with pytest.raises(SchemaError, match=r"Adder implements no @rpc.service class: .* or pass service=Svc"):
        run(lambda: rpc.serve(Adder(), "tcp://127.0.0.1:0"))  # type: ignore[arg-type, return-value]

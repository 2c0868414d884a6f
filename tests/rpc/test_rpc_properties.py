"""Random services, served and called: every value a handler returns arrives equal, every
``jetwire.Error`` it raises arrives equal, and every argument reaches the handler equal to what
the client passed.

Each example declares a service at test time with ``rpc.service``: 1 to 6 methods of 0 to 4
parameters (positional-only, positional or keyword-only, some with defaults, and sometimes a
``Context`` among them) of random wire types, and a random return type, ``None`` included.
Values come from ``jetwire.testing.strategy``, which walks each type's plan. The service is
called (a) in memory, through a ``ClientSession`` and a ``ServerSession`` whose bytes are handed
over in random pieces, and (b) over TCP, one server per drawn service and several calls in
flight at once.

r[jetstream.rpc.body.request] r[jetstream.rpc.body.response] r[jetstream.rpc.error.frame]
r[jetstream.rpc.error.client-surface] r[jetstream.rpc.context.not-on-wire]
r[jetstream.rpc.mux.pipelining]
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import enum
import inspect
import ipaddress
import keyword
from collections.abc import Awaitable, Callable
from typing import Any, Optional

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jetwire as jw
from jetwire import rpc
from jetwire.rpc.session import Call, Failed, Negotiated, Reply, Send
from jetwire.testing import strategy

# ---------------------------------------------------------------------------------------------
# Wire types to draw from


class Colour(enum.Enum):
    RED = 1
    GREEN = 2


@jw.wireformat(frozen=True)
class Point:
    x: jw.i32
    y: jw.i32


@jw.wireenum(frozen=True)
class Shape:
    class Circle:
        radius: jw.f64

    class Square:
        side: jw.u16
        corner: Point

    class Nothing:
        pass


@jw.wireformat
class Node:
    label: str
    children: list[Node]


@jw.wireformat
class Record:
    at: datetime.datetime
    where: jw.SocketAddr
    link: jw.Url
    shape: Shape
    note: Optional[str] = None


KEYS: list[Any] = [jw.u8, jw.u16, jw.u32, jw.i64, jw.u128, bool, str, bytes, Colour, Point]
"""Types whose values are hashable: set elements and map keys."""
LEAVES: list[Any] = [
    *KEYS, jw.i16, jw.i32, jw.u64, jw.i128, jw.f32, jw.f64, type(None), datetime.datetime, jw.Url,
    ipaddress.IPv4Address, jw.IpAddr, jw.SocketAddr, jw.Error, Shape, Node, Record,
]


def wire_types() -> st.SearchStrategy[Any]:
    """Leaves, and collections, options and tuples of them, nested up to a few levels."""

    def extend(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        keys = st.sampled_from(KEYS)
        return st.one_of(
            inner.map(lambda t: list[t]),  # type: ignore[valid-type]
            inner.map(lambda t: tuple[t, ...]),  # type: ignore[valid-type]
            inner.map(lambda t: Optional[t]),
            inner.map(lambda t: jw.Option[t]),  # type: ignore[valid-type]
            st.lists(inner, min_size=1, max_size=3).map(lambda ts: tuple[tuple(ts)]),  # type: ignore[misc]
            st.tuples(keys, inner).map(lambda kv: dict[kv[0], kv[1]]),  # type: ignore[misc]
            keys.map(lambda k: frozenset[k]),  # type: ignore[valid-type]
        )

    return st.recursive(st.sampled_from(LEAVES), extend, max_leaves=4)


WIRE_TYPES = wire_types()


def values(tp: Any) -> st.SearchStrategy[Any]:
    return strategy(tp, max_size=3, max_text=12, max_bytes=12, max_depth=2)


ERRORS = values(jw.Error)
"""Errors with any code, help, url and backtrace."""

# ---------------------------------------------------------------------------------------------
# Drawing a service

KINDS = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD,
         inspect.Parameter.KEYWORD_ONLY)


@dataclasses.dataclass
class Param:
    name: str
    type: Any
    kind: inspect._ParameterKind
    default: Any
    context: bool = False


@dataclasses.dataclass
class MethodCase:
    name: str
    params: list[Param]
    returns: Any


@dataclasses.dataclass
class Outcome:
    """One call: the arguments as the client passes them, what the handler must see, and what
    it answers with (a value, or an error to raise)."""

    method: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    expected: tuple[Any, ...]
    """The wire arguments in declaration order, defaults filled in."""
    value: Any = None
    error: jw.Error | None = None


names = st.builds(
    str.__add__, st.sampled_from("abcdefghijklmnopqrstuvwxyz"),
    st.text("abcdefghijklmnopqrstuvwxyz0123456789_", max_size=8),
).filter(lambda n: not keyword.iskeyword(n))
RETURNS = st.none() | WIRE_TYPES


EMPTY = inspect.Parameter.empty


@st.composite
def methods(draw: st.DrawFn, name: str) -> MethodCase:
    taken = {"self"}
    params = []
    for _ in range(draw(st.integers(0, 4))):
        param_name = draw(names.filter(lambda n: n not in taken))
        taken.add(param_name)
        tp = draw(WIRE_TYPES)
        default = draw(values(tp)) if draw(st.integers(0, 2)) == 0 else EMPTY
        params.append(Param(param_name, tp, draw(st.sampled_from(KINDS)), default))
    if draw(st.booleans()):
        # A context, anywhere, with or without a default: the client never sends it.
        context_name = draw(names.filter(lambda n: n not in taken))
        default = draw(st.sampled_from([rpc.NO_CONTEXT, EMPTY]))
        params.insert(draw(st.integers(0, len(params))),
                      Param(context_name, rpc.Context, draw(st.sampled_from(KINDS)), default, context=True))
    params.sort(key=lambda p: KINDS.index(p.kind))  # the order Python requires of the kinds
    # Python refuses a positional parameter without a default after one with: drop such defaults.
    required_after = False
    for p in reversed([p for p in params if p.kind is not inspect.Parameter.KEYWORD_ONLY]):
        if p.default is EMPTY:
            required_after = True
        elif required_after:
            p.default = EMPTY
    returns = draw(RETURNS)
    return MethodCase(name, params, returns)


@dataclasses.dataclass
class ServiceCase:
    service: type
    methods: list[MethodCase]
    future_annotations: bool
    subclass: bool


@st.composite
def services(draw: st.DrawFn) -> ServiceCase:
    method_names = draw(st.lists(names, min_size=1, max_size=6, unique=True)
                        .filter(lambda ns: not {"connect", "close", "with_timeout"} & set(ns)))
    cases = [draw(methods(name)) for name in method_names]
    future = draw(st.booleans())
    return ServiceCase(declare(cases, future), cases, future, draw(st.booleans()))


def _signature(m: MethodCase, namespace: dict[str, Any], annotate: bool) -> str:
    out = ["self"]
    star = False
    for i, p in enumerate(m.params):
        if p.kind is inspect.Parameter.KEYWORD_ONLY and not star:
            out.append("*")
            star = True
        text = p.name
        if annotate:
            namespace[f"T_{m.name}_{i}"] = p.type
            text += f": T_{m.name}_{i}"
        if p.default is not inspect.Parameter.empty:
            namespace[f"D_{m.name}_{i}"] = p.default
            text += f" = D_{m.name}_{i}"
        out.append(text)
        if p.kind is inspect.Parameter.POSITIONAL_ONLY and (
                i + 1 == len(m.params) or m.params[i + 1].kind is not inspect.Parameter.POSITIONAL_ONLY):
            out.append("/")
    return ", ".join(out)


def declare(cases: list[MethodCase], future_annotations: bool) -> type:
    """The service class, written as a user writes it (optionally with postponed annotations,
    which ``rpc.service`` then resolves in this namespace)."""
    namespace: dict[str, Any] = {"rpc": rpc}
    lines = ["from __future__ import annotations"] if future_annotations else []
    lines.append("class Random(rpc.Service):")
    for m in cases:
        namespace[f"R_{m.name}"] = m.returns
        lines.append(f"    async def {m.name}({_signature(m, namespace, True)}) -> R_{m.name}: ...")
    exec("\n".join(lines), namespace)
    declared: type = rpc.service(version="1.0.0")(namespace["Random"])
    return declared


# ---------------------------------------------------------------------------------------------
# The implementation


class Checker:
    """What every handler shares: the answers to give, per method in call order, and what the
    handlers were called with."""

    def __init__(self) -> None:
        self.answers: dict[str, list[Outcome]] = {}
        self.received: list[tuple[str, tuple[Any, ...]]] = []
        self.contexts: list[tuple[str, Any]] = []

    def handle(self, name: str, wire: tuple[Any, ...], contexts: tuple[Any, ...]) -> Any:
        self.received.append((name, wire))
        self.contexts.extend((name, c) for c in contexts)
        outcome = self.answers[name].pop(0)
        if outcome.error is not None:
            raise outcome.error
        return outcome.value


def implement(case: ServiceCase, checker: Checker) -> object:
    """An implementation with the declaration's own signatures: a subclass of the service, or
    any object (served with ``service=``)."""
    namespace: dict[str, Any] = {"checker": checker}
    lines = ["class Impl(Base):"]
    for m in case.methods:
        wire = ", ".join(p.name for p in m.params if not p.context)
        contexts = ", ".join(p.name for p in m.params if p.context)
        lines += [f"    async def {m.name}({_signature(m, namespace, False)}):",
                  f"        return checker.handle({m.name!r}, ({wire}{',' if wire else ''}), "
                  f"({contexts}{',' if contexts else ''}))"]
    namespace["Base"] = case.service if case.subclass else object
    exec("\n".join(lines), namespace)
    return namespace["Impl"]()


@st.composite
def arguments(draw: st.DrawFn, m: MethodCase) -> tuple[list[Any], dict[str, Any], tuple[Any, ...]]:
    """How a caller may pass ``m``'s arguments: positionally while it can, by keyword, or not
    at all where there is a default; and the wire arguments the handler must then see."""
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    expected = []
    positional_open = True
    for p in m.params:
        ways = []
        if p.kind is not inspect.Parameter.KEYWORD_ONLY and positional_open:
            ways.append("positional")
        if p.kind is not inspect.Parameter.POSITIONAL_ONLY:
            ways.append("keyword")
        if p.default is not EMPTY:
            ways.append("omit")
        way = draw(st.sampled_from(ways))
        if way != "positional":
            positional_open = False
        value = rpc.NO_CONTEXT if p.context else p.default if way == "omit" else draw(values(p.type))
        if not p.context:
            expected.append(value)
        if way == "positional":
            args.append(value)
        elif way == "keyword":
            kwargs[p.name] = value
    return args, kwargs, tuple(expected)


@st.composite
def outcomes(draw: st.DrawFn, case: ServiceCase, count: int) -> list[Outcome]:
    calls = []
    for _ in range(count):
        m = draw(st.sampled_from(case.methods))
        args, kwargs, expected = draw(arguments(m))
        outcome = Outcome(m.name, tuple(args), kwargs, expected)
        if draw(st.integers(0, 3)) == 0:
            outcome.error = draw(ERRORS)
        elif m.returns is not None:
            outcome.value = draw(values(m.returns))
        calls.append(outcome)
    return calls


def check_results(calls: list[Outcome], results: list[Any], checker: Checker) -> None:
    assert checker.received == [(c.method, c.expected) for c in calls]
    for call, result in zip(calls, results):
        if call.error is not None:
            assert result == ("raised", call.error), (call, result)
        else:  # a method may return an Error too: a value, not a failure
            assert result == ("returned", call.value), (call, result)
    for _, context in checker.contexts:
        assert isinstance(context, rpc.Context)


async def gather_calls(client: Any, calls: list[Outcome]) -> list[Any]:
    async def one(call: Outcome) -> tuple[str, Any]:
        try:
            return "returned", await getattr(client, call.method)(*call.args, **call.kwargs)
        except jw.Error as error:
            return "raised", error

    return await asyncio.gather(*(one(c) for c in calls))


# ---------------------------------------------------------------------------------------------
# (a) In memory: the two sessions, bytes handed over in pieces


class MemoryChannel:
    """Stands where the asyncio channel stands behind a generated client: each call goes
    through the client session, bytes in random pieces into the server session, the handler,
    and back."""

    def __init__(self, spec: rpc.ServiceSpec, impl: object, cut: Callable[[bytes], list[bytes]]) -> None:
        self.client = rpc.ClientSession(spec)
        self.server = rpc.ServerSession(spec)
        self.impl = impl
        self.spec = spec
        self.cut = cut
        self.to_server(self.client.start())
        event = self.server.next_event()
        assert isinstance(event, Send)
        self.to_client(event.data)
        assert isinstance(self.client.next_event(), Negotiated)

    def to_server(self, data: bytes) -> None:
        for piece in self.cut(data):
            self.server.receive_data(piece)

    def to_client(self, data: bytes) -> None:
        for piece in self.cut(data):
            self.client.receive_data(piece)

    def call(self, method: rpc.Method, request: Any, timeout: float | None) -> Awaitable[Any]:
        return self._call(method, request)

    async def _call(self, method: rpc.Method, request: Any) -> Any:
        tag, data = self.client.call(method, request)
        self.to_server(data)
        event = self.server.next_event()
        assert isinstance(event, Call) and event.tag == tag and event.method is method
        context = rpc.Context(tag=tag, method=method.name, transport="memory") if method.context_params else None
        try:
            value = await self.spec.handlers[method.request](self.impl, event.request, context)
        except jw.Error as error:
            answer = self.server.fail(event, error)
        else:
            answer = self.server.respond(event, value)
        assert self.server.next_event() is None and self.server.in_flight == 0
        self.to_client(answer)
        reply = self.client.next_event()
        assert self.client.next_event() is None
        if isinstance(reply, Failed):
            raise reply.error
        assert isinstance(reply, Reply) and reply.tag == tag, reply
        return reply.value


@st.composite
def cutters(draw: st.DrawFn) -> Callable[[bytes], list[bytes]]:
    sizes = draw(st.lists(st.integers(1, 9), min_size=1, max_size=5))

    def cut(data: bytes) -> list[bytes]:
        pieces, at, i = [], 0, 0
        while at < len(data):
            pieces.append(data[at:at + sizes[i % len(sizes)]])
            at += sizes[i % len(sizes)]
            i += 1
        return pieces

    return cut


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_random_services_in_memory(data: st.DataObject) -> None:
    case = data.draw(services(), label="service")
    checker = Checker()
    impl = implement(case, checker)
    calls = data.draw(outcomes(case, data.draw(st.integers(1, 8))), label="calls")
    for call in calls:
        checker.answers.setdefault(call.method, []).append(call)
    spec = rpc.spec_of(case.service)
    client = spec.client_class(MemoryChannel(spec, impl, data.draw(cutters())), None)
    assert isinstance(client, case.service)
    results = asyncio.run(gather_calls(client, calls))
    check_results(calls, results, checker)


# ---------------------------------------------------------------------------------------------
# (b) Over TCP: one server per service, its calls in flight together


def run(main: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(main(), 30))  # type: ignore[arg-type]


@settings(max_examples=15, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_random_services_over_tcp(data: st.DataObject) -> None:
    case = data.draw(services(), label="service")
    checker = Checker()
    impl = implement(case, checker)
    calls = data.draw(outcomes(case, data.draw(st.integers(1, 12))), label="calls")
    for call in calls:
        checker.answers.setdefault(call.method, []).append(call)

    async def main() -> None:
        async with await rpc.serve(impl, "tcp://127.0.0.1:0", service=case.service) as server, \
                await case.service.connect(server.urls[0]) as client:  # type: ignore[attr-defined]
            results = await gather_calls(client, calls)
            check_results(calls, results, checker)
            for _, context in checker.contexts:
                assert context.transport == "tcp" and context.peer is not None

    run(main)

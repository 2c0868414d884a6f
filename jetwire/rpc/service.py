"""``@service``: a class of ``async def`` methods becomes a JetStream service.

From one declaration come, per method, the request message (its wire parameters in order,
r[jetstream.rpc.body.request]) and the response message (the return value,
r[jetstream.rpc.body.response]), numbered 102 + 2i and 103 + 2i
(r[jetstream.rpc.numbering.method-ids]); the frame classes of both directions; ``NAME`` and
``VERSION`` with the schema digest; a client class whose methods send calls, and the functions a
server dispatches to. Client methods and server dispatchers are generated Python, as the
codecs are: nothing walks the declaration per call.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import linecache
import types
import typing
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar, Union, overload

from ..compiler.planner import plan
from ..compiler.schema import wire_schema
from ..errors import SchemaError
from ..markers import Tagged
from ..runtime.decorators import caller_names as _caller_locals
from ..runtime.decorators import wireformat
from ..runtime.frames import Frame
from ..stdtypes import Error
from .protocol import (
    MAX_METHODS,
    MESSAGE_ID_START,
    RERROR,
    RVERSION,
    TVERSION,
    Rversion,
    Tversion,
    check_semver,
    format_version,
)

__all__ = ["Context", "NO_CONTEXT", "Method", "ServiceSpec", "method", "service", "service_of", "spec_of"]

S = TypeVar("S")
C = TypeVar("C", bound=type)


class Context:
    """What a handler may know of the call it serves, from the transport (never from the wire:
    r[jetstream.rpc.context.not-on-wire]). Declare a parameter of this type to receive it:
    ``async def whoami(self, ctx: rpc.Context = rpc.NO_CONTEXT) -> str``; clients pass nothing
    for it (the default), and the server passes the call's own."""

    __slots__ = ("credentials", "local", "method", "peer", "peer_certificate", "peer_certificate_der", "service",
                 "tag", "transport")

    def __init__(self, *, peer: Any = None, local: Any = None, transport: str = "", tag: int | None = None,
                 method: str = "", service: str = "", credentials: tuple[int, int, int] | None = None,
                 peer_certificate: dict[str, Any] | None = None, peer_certificate_der: bytes | None = None) -> None:
        self.peer = peer
        """The peer's address as the transport gives it: ``(host, port)`` for TCP and QUIC."""
        self.local = local
        """This side's address."""
        self.transport = transport
        """``"tcp"``, ``"unix"``, ``"quic"``..."""
        self.tag = tag
        """The call's tag."""
        self.method = method
        self.service = service
        self.credentials = credentials
        """On a unix socket, the peer's ``(pid, uid, gid)`` where the system tells them."""
        self.peer_certificate = peer_certificate
        """The client certificate a mutual-TLS server verified (``TLS(client_cafile=...)``, over
        TCP or QUIC) as ``ssl.SSLSocket.getpeercert()`` decodes it: ``subject``, ``issuer``,
        ``notAfter``, ``subjectAltName``...; None without TLS or without ``client_cafile``."""
        self.peer_certificate_der = peer_certificate_der
        """The same certificate's DER bytes, or None."""

    def __repr__(self) -> str:
        return (f"Context(peer={self.peer!r}, transport={self.transport!r}, tag={self.tag!r}, "
                f"method={self.method!r})")


NO_CONTEXT = Context()
"""The default a declaration gives its ``Context`` parameter, so that clients need not pass one."""


_METHOD_INDEX = "__jetwire_method_index__"
_SPEC = "__jetwire_service__"


def method(*, index: int) -> Callable[[C], C]:
    """Gives a method an explicit index instead of its position (r[jetstream.rpc.numbering.order]):
    ``@rpc.method(index=3)``. Its types become 102 + 2 * index and 103 + 2 * index."""
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < MAX_METHODS:
        raise SchemaError(
            f"rpc.method(index={index!r}): an index is 0 to {MAX_METHODS - 1}, so that the response "
            f"type 103 + 2 * index fits in a byte (r[jetstream.rpc.numbering.max-methods])"
        )

    def mark(fn: C) -> C:
        setattr(fn, _METHOD_INDEX, index)
        return fn

    return mark


@dataclasses.dataclass(frozen=True, eq=False)
class Method:
    """One method of a service, as the wire sees it."""

    name: str
    index: int
    request_type: int
    """102 + 2 * index."""
    response_type: int
    """103 + 2 * index."""
    request: type
    """The request message: the wire parameters, in order."""
    response: type
    """The response message: one field, ``value``, or none for ``-> None``."""
    params: tuple[str, ...]
    """The wire parameters' names."""
    context_params: tuple[str, ...]
    returns_none: bool
    declared: Callable[..., Any]
    """The declaration's own function."""

    def __repr__(self) -> str:
        return f"<Method {self.name} {self.request_type}/{self.response_type}>"


class ServiceSpec:
    """Everything derived from a service declaration; ``spec_of(Svc)`` returns it."""

    name: str
    semver: str
    digest: str
    version: str
    methods: tuple[Method, ...]
    by_name: dict[str, Method]
    by_request: dict[type, Method]
    """Request message class to its method: how a server finds what a frame asks for."""
    by_response: dict[type, Method]
    Tframe: type[Frame[Any]]
    """Frames the client sends: ``Tversion`` or a request."""
    Rframe: type[Frame[Any]]
    """Frames the server sends: ``Rversion``, an ``Error`` or a response."""
    type_numbers: dict[type, int]
    """Each message class's type number, both directions."""
    client_class: type
    handlers: dict[type, Callable[[Any, Any, Any], Awaitable[Any]]]
    """Request message class to ``handler(impl, request, context)``, which awaits the method and
    returns the response message (generated)."""

    def __init__(self, service_class: type, name: str, semver: str) -> None:
        self.service_class = service_class
        self.name = name
        self.semver = semver

    def __repr__(self) -> str:
        return f"<ServiceSpec {self.version}: {len(self.methods)} methods>"


_RESERVED = frozenset({"connect", "close", "with_timeout", "strays", "NAME", "VERSION"})
"""What a client or the service class has besides the service's methods (``aio.Service``, and
what ``@service`` sets): no method may take these names."""


@overload
def service(cls: C, /) -> C: ...


@overload
def service(cls: None = None, /, *, version: str = "0.1.0", name: str | None = None) -> Callable[[C], C]: ...


def service(cls: Any = None, /, *, version: str = "0.1.0", name: str | None = None) -> Any:
    """Makes a class of ``async def`` methods a JetStream service: ``@rpc.service(version="1.0.0")``.

    ``version`` is the service's SemVer; ``name`` defaults to the class name lowercased (the key
    a Rust router finds the service by). Everything is checked here, at the declaration: a
    parameter jetwire cannot encode, a method that is not ``async def``, more than 77 methods
    or an index twice all raise ``SchemaError``.
    """

    def decorate(cls: type, localns: dict[str, Any]) -> type:
        if not isinstance(cls, type):
            raise SchemaError(f"@rpc.service decorates a class, not {cls!r}")
        service_name = cls.__name__.lower() if name is None else name
        if not isinstance(service_name, str) or not service_name or "/" in service_name:
            raise SchemaError(f"{cls.__qualname__}: a service name is non-empty text without '/', not {service_name!r}")
        spec = ServiceSpec(cls, service_name, check_semver(version, cls.__qualname__))
        _build(spec, localns)
        setattr(cls, _SPEC, spec)
        type.__setattr__(cls, "NAME", spec.name)
        type.__setattr__(cls, "VERSION", spec.version)
        return cls

    if cls is None:
        # The declaring function's names: with postponed annotations, a method may name a class
        # local to that function, which get_type_hints alone cannot see.
        return lambda later: decorate(later, _caller_locals(2))
    return decorate(cls, _caller_locals(2))


def service_of(impl: object) -> type:
    """The service class ``impl`` implements: the first ``@rpc.service`` class in its type's MRO."""
    for klass in type(impl).__mro__:
        if _SPEC in klass.__dict__:
            return klass
    raise SchemaError(
        f"{type(impl).__qualname__} implements no @rpc.service class: derive it from the service "
        "declaration, or pass service=Svc"
    )


def spec_of(service_class: type) -> ServiceSpec:
    """The derived parts of a ``@rpc.service`` class."""
    spec = service_class.__dict__.get(_SPEC) if isinstance(service_class, type) else None
    if not isinstance(spec, ServiceSpec):
        raise SchemaError(f"{service_class!r} is not an @rpc.service class")
    return spec


# ---------------------------------------------------------------------------------------------
# Building a service

def _inherited_methods(cls: type) -> dict[str, Method]:
    """The methods of the ``@service`` classes ``cls`` derives from, by name: a service that
    extends another has its methods, at their indexes, before its own."""
    inherited: dict[str, Method] = {}
    for base in reversed(cls.__mro__[1:]):
        spec = base.__dict__.get(_SPEC)
        if isinstance(spec, ServiceSpec):
            for m in spec.methods:
                inherited.pop(m.name, None)
                inherited[m.name] = m
    return inherited


def _declared_methods(cls: type) -> list[tuple[str, Callable[..., Any]]]:
    found = []
    for attr, value in cls.__dict__.items():
        if attr.startswith("_") or not callable(value) or isinstance(value, (staticmethod, classmethod, type)):
            continue
        if not inspect.iscoroutinefunction(value):
            raise SchemaError(
                f"{cls.__qualname__}.{attr}: a service method is 'async def' (name helpers with a leading '_')"
            )
        if attr in _RESERVED:
            raise SchemaError(
                f"{cls.__qualname__}.{attr}: '{attr}' is a client's own method or attribute; give the RPC "
                "another Python name (names are not on the wire: only the index is)"
            )
        found.append((attr, value))
    return found


def _build(spec: ServiceSpec, localns: dict[str, Any]) -> None:
    cls = spec.service_class
    inherited = _inherited_methods(cls)
    own = _declared_methods(cls)
    # An inherited method keeps its index, even where this class declares it again; the others
    # follow the base's last, in order.
    indexes = {name: m.index for name, m in inherited.items()}
    first_new = max(indexes.values(), default=-1) + 1
    for position, (attr, _) in enumerate([(a, f) for a, f in own if a not in indexes]):
        indexes[attr] = first_new + position
    declared = [(name, m.declared) for name, m in inherited.items() if name not in dict(own)] + own
    if not declared:
        raise SchemaError(f"{cls.__qualname__}: a service needs at least one 'async def' method")
    if len(declared) > MAX_METHODS:
        raise SchemaError(
            f"{cls.__qualname__} has {len(declared)} methods: a service has at most {MAX_METHODS}, as method "
            f"ids are a byte (r[jetstream.rpc.numbering.max-methods])"
        )
    taken: dict[int, str] = {}
    methods = []
    for attr, fn in declared:
        index = getattr(fn, _METHOD_INDEX, indexes[attr])
        if index in taken:
            raise SchemaError(
                f"{cls.__qualname__}.{attr}: index {index} is also {taken[index]}'s; give one of them "
                "@rpc.method(index=...)"
            )
        taken[index] = attr
        kept = inherited.get(attr)
        if kept is not None and kept.declared is fn:  # as the base built it: its annotations may name its locals
            methods.append(kept)
        else:
            methods.append(_method(cls, attr, fn, index, localns))
    methods.sort(key=lambda m: m.index)
    spec.methods = tuple(methods)
    spec.by_name = {m.name: m for m in methods}
    spec.by_request = {m.request: m for m in methods}
    spec.by_response = {m.response: m for m in methods}
    where = f"{cls.__module__}.{cls.__qualname__}"
    t_tags: dict[int, type] = {TVERSION: Tversion, **{m.request_type: m.request for m in methods}}
    r_tags: dict[int, type] = {RVERSION: Rversion, RERROR: Error, **{m.response_type: m.response for m in methods}}
    spec.type_numbers = {klass: number for tags in (t_tags, r_tags) for number, klass in tags.items()}
    spec.Tframe = _frame_class(cls, "Tframe", t_tags, "The frames a client of this service sends.")
    spec.Rframe = _frame_class(cls, "Rframe", r_tags, "The frames a server of this service sends.")
    spec.digest = _digest(methods)
    spec.version = format_version(spec.name, spec.semver, spec.digest)
    spec.client_class = _client_class(cls, methods, where)
    spec.handlers = _handlers(cls, methods, where)


def _hints(cls: type, attr: str, fn: Callable[..., Any], localns: dict[str, Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn, localns=localns, include_extras=True)
    except Exception as exc:  # a NameError, or whatever evaluating the annotation raised
        raise SchemaError(f"{cls.__qualname__}.{attr}: cannot resolve its annotations: {exc}") from exc


def _is_context(hint: Any) -> bool:
    return hint is Context or (typing.get_origin(hint) is Annotated and typing.get_args(hint)[0] is Context)


def _method(cls: type, attr: str, fn: Callable[..., Any], index: int, localns: dict[str, Any]) -> Method:
    where = f"{cls.__qualname__}.{attr}"
    signature = inspect.signature(fn)
    hints = _hints(cls, attr, fn, localns)
    params = list(signature.parameters.values())[1:]  # the first is self, never on the wire
    wire: list[tuple[str, Any]] = []
    context: list[str] = []
    for p in params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise SchemaError(f"{where}: *{p.name} has no wire layout: list every parameter")
        if p.name not in hints:
            raise SchemaError(f"{where}: parameter {p.name!r} has no annotation: its type is its wire layout")
        if _is_context(hints[p.name]):
            context.append(p.name)
        else:
            wire.append((p.name, hints[p.name]))
    if "return" not in hints:
        raise SchemaError(f"{where}: no return annotation: write '-> None' for an empty response")
    returned = hints["return"]
    returns_none = returned is None or returned is type(None)
    qual = f"{cls.__qualname__}.{attr}"
    request = _message(cls, f"T{attr}", f"{qual}: request", wire)
    response = _message(cls, f"R{attr}", f"{qual}: response", [] if returns_none else [("value", returned)])
    return Method(
        name=attr, index=index, request_type=MESSAGE_ID_START + 2 * index,
        response_type=MESSAGE_ID_START + 2 * index + 1, request=request, response=response,
        params=tuple(n for n, _ in wire), context_params=tuple(context), returns_none=returns_none, declared=fn,
    )


def _message(cls: type, name: str, what: str, fields: list[tuple[str, Any]]) -> type:
    def body(ns: dict[str, Any]) -> None:
        ns.update({"__annotations__": dict(fields), "__doc__": what, "__module__": cls.__module__,
                   "__qualname__": f"{cls.__qualname__}.{name}"})

    try:
        message: type = wireformat(slots=True)(types.new_class(name, (), {}, body))
        plan(message)
    except SchemaError as exc:
        raise SchemaError(f"{what}: {exc}") from None
    return message


def _frame_class(cls: type, name: str, tags: dict[int, type], doc: str) -> type[Frame[Any]]:
    members = tuple(tags.values())
    union: Any = Annotated[Union[members], Tagged(tags, f"{cls.__qualname__}.{name[0]}message")]
    frame = types.new_class(name, (Frame[union],), {}, lambda ns: ns.update({"__slots__": (), "__doc__": doc}))
    frame.__module__ = cls.__module__
    frame.__qualname__ = f"{cls.__qualname__}.{name}"
    return frame


def _digest(methods: list[Method]) -> str:
    """8 hex digits of the SHA-256 of the service's wire schema: each method's index, request
    layout and response layout (``compiler.schema``), so it changes exactly when some message's
    bytes or number would, and never for a rename."""
    text = ";".join(f"{m.index}:{wire_schema(plan(m.request))}>{wire_schema(plan(m.response))}" for m in methods)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


# ---------------------------------------------------------------------------------------------
# Generated code: client methods and server handlers

def _load(source: str, filename: str, namespace: dict[str, Any]) -> dict[str, Any]:
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102
    return namespace


def _unshadowed(name: str, taken: set[str]) -> str:
    """``name``, or it with leading underscores added until no parameter is called that: the
    generated code's own names must not be shadowed by a parameter of the same name."""
    while name in taken:
        name = "_" + name
    return name


def _signature(m: Method, namespace: dict[str, Any], self_name: str, taken: set[str]) -> str:
    """The client method's parameter list as the declaration wrote it (defaults kept). A Context
    parameter defaults to None, as the client ignores it, unless a positional parameter without
    a default follows it: then Python needs it passed, as the declaration says it is."""
    out: list[str] = [self_name]
    star = False
    params = list(inspect.signature(m.declared).parameters.values())[1:]
    optional_from = len(params)  # the positional parameters from here on may all get defaults
    for i in range(len(params) - 1, -1, -1):
        p = params[i]
        if p.kind is p.KEYWORD_ONLY:
            continue
        if p.default is p.empty and p.name not in m.context_params:
            break
        optional_from = i
    for i, p in enumerate(params):
        if p.kind is p.KEYWORD_ONLY and not star:
            out.append("*")
            star = True
        text = p.name
        if p.default is not p.empty:
            key = _unshadowed(f"_default_{m.index}_{p.name}", taken)
            namespace[key] = p.default
            text += f"={key}"
        elif p.name in m.context_params and (p.kind is p.KEYWORD_ONLY or i >= optional_from):
            text += "=None"
        out.append(text)
        if p.kind is p.POSITIONAL_ONLY and (i == len(params) - 1 or params[i + 1].kind is not p.POSITIONAL_ONLY):
            out.append("/")
    return ", ".join(out)


_STRAYS_DOC = ("Answers that arrived for no call in flight on this connection, ignored "
               "(r[jetstream.rpc.mux.unknown-tag]); shared by every with_timeout() view of it.")


def _client_class(cls: type, methods: list[Method], where: str) -> type:
    namespace: dict[str, Any] = {}
    taken = {name for m in methods for name in list(inspect.signature(m.declared).parameters)[1:]}
    self_name = _unshadowed("self", taken)
    new_name = _unshadowed("_new", taken)
    made = _unshadowed("_request", taken)
    namespace[new_name] = object.__new__
    lines = []
    for m in methods:
        params = _signature(m, namespace, self_name, taken)
        method_name = _unshadowed(f"_method_{m.index}", taken)
        request_name = _unshadowed(f"_request_{m.index}", taken)
        namespace[method_name] = m
        namespace[request_name] = m.request
        # The request is a @wireformat dataclass (_message) whose __init__ only stores its
        # fields: made here as its decoder makes it, without that frame per call.
        lines += [
            f"def {m.name}({params}):",
            f"    {_docline(m, 'sends')}",
            f"    {made} = {new_name}({request_name})",
            *(f"    {made}.{p} = {p}" for p in m.params),
            f"    return {self_name}._jetwire_channel.call({method_name}, {made}, {self_name}._jetwire_timeout)",
            "",
        ]
    generated = _load("\n".join(lines), f"<jetwire service {where} client>", namespace)

    def init(self: Any, channel: Any, timeout: float | None) -> None:
        self._jetwire_channel = channel
        self._jetwire_timeout = timeout

    def with_timeout(self: Any, seconds: float | None) -> Any:
        return type(self)(self._jetwire_channel, seconds)

    async def close(self: Any) -> None:
        await self._jetwire_channel.close()

    async def enter(self: Any) -> Any:
        return self

    async def leave(self: Any, *exc_info: object) -> None:
        await self._jetwire_channel.close()

    def describe(self: Any) -> str:
        return f"<{cls.__qualname__} client of {self._jetwire_channel!r}>"

    def strays(self: Any) -> int:
        return int(self._jetwire_channel.session.strays)

    body: dict[str, Any] = {
        "__slots__": ("_jetwire_channel", "_jetwire_timeout"), "__init__": init, "with_timeout": with_timeout,
        "close": close, "strays": property(strays, doc=_STRAYS_DOC), "__repr__": describe,
        "__module__": cls.__module__,
        "__doc__": f"A client of {cls.__qualname__}: each method sends a call and awaits its answer.",
        "__qualname__": f"{cls.__qualname__}.Client",
        "__aenter__": enter, "__aexit__": leave,
    }
    for m in methods:
        function = generated[m.name]
        function.__qualname__ = f"{cls.__qualname__}.Client.{m.name}"
        function.__module__ = cls.__module__
        body[m.name] = function
    try:
        return type("Client", (cls,), body)
    except TypeError as exc:  # a base with __slots__ of its own that clash, or a metaclass that objects
        raise SchemaError(f"{cls.__qualname__}: cannot derive its client class: {exc}") from exc


def _docline(m: Method, verb: str) -> str:
    return (f'"""{verb.capitalize()} {m.name} (type {m.request_type}); its answer is type {m.response_type} '
            'or an Error."""')


def _handlers(cls: type, methods: list[Method], where: str) -> dict[type, Callable[[Any, Any, Any], Awaitable[Any]]]:
    """Per request class, ``handler(impl, request, context)``: calls the method with the
    request's fields (and the context where declared) and returns its awaitable, whose value
    the session wraps in the response message."""
    lines = []
    for m in methods:
        params = list(inspect.signature(m.declared).parameters.values())[1:]
        args = []
        for p in params:
            value = "context" if p.name in m.context_params else f"request.{p.name}"
            args.append(value if p.kind is not p.KEYWORD_ONLY else f"{p.name}={value}")
        lines += [f"def serve_{m.name}(impl, request, context):",
                  f"    {_docline(m, 'answers')}",
                  f"    return impl.{m.name}({', '.join(args)})", ""]
    generated = _load("\n".join(lines), f"<jetwire service {where} server>", {})
    handlers = {}
    for m in methods:
        function = generated[f"serve_{m.name}"]
        function.__qualname__ = f"{cls.__qualname__}.serve_{m.name}"
        function.__module__ = cls.__module__
        handlers[m.request] = function
    return handlers

"""Hypothesis strategies for any type jetwire can encode, derived from the codec's own plan.

``strategy(tp)`` walks the same plan nodes the generated code and the reference interpreter
use, so the bounds are exact: a ``u16`` field gets integers in ``0..65535``, a ``datetime`` gets
whole milliseconds between 1970 and 9999, a string never exceeds 65,535 UTF-8 bytes.

Fields written by user code (``With(codec)``, ``EncodeWith``/``DecodeWith``, ``As(...)`` with
conversions) have no values jetwire can invent: give them one with ``register_strategy``,
keyed by the codec object, the Python type, or the exact annotation.
"""

from __future__ import annotations

import datetime
import operator
import types
from collections.abc import Callable
from typing import Annotated, Any, Union, get_args, get_origin

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from ..compiler.plan import (
    MAX_STRING_BYTES,
    BoolNode,
    BytesNode,
    ConvertNode,
    CustomNode,
    EnumNode,
    FloatNode,
    FrameNode,
    IntNode,
    IPNode,
    MapNode,
    Node,
    OptionNode,
    SeqNode,
    SetNode,
    StrNode,
    StructNode,
    TimeNode,
    TupleNode,
    UnionNode,
    UnitNode,
    UrlNode,
    unknown_node,
)
from ..compiler.planner import plan
from ..compiler.support import EPOCH, ms_to_datetime
from ..compiler.values import construct
from ..errors import SchemaError
from ..markers import Some, With
from ..stdtypes import Level, LevelCodec
from ..wiretypes import Url

__all__ = ["register_strategy", "strategy"]

Strategy = SearchStrategy[Any]

# The last millisecond datetime can hold: 9999-12-31T23:59:59.999Z.
MAX_TIME_MS = (
    datetime.datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=datetime.timezone.utc) - EPOCH
) // datetime.timedelta(milliseconds=1)

_registry: dict[Any, Strategy] = {}
_registry_by_id: dict[int, tuple[Any, Strategy]] = {}  # unhashable keys, by identity
_cache: dict[tuple[Any, ...], Strategy] = {}  # strategy() results; cleared by register_strategy


def register_strategy(key: Any, strategy: Strategy) -> None:
    """Tells ``strategy()`` how to generate the values of ``key``.

    ``key`` is a codec object (what ``With(codec)`` holds; the ``With`` marker itself also
    works), a Python type (the field's declared type, e.g. ``uuid.UUID``), or an exact
    annotation (``Annotated[UUID, As(str, str, UUID)]``). A registered annotation or class
    replaces jetwire's own strategy wherever it appears; a registered Python type is used for
    fields written by user code (``With``, ``EncodeWith``/``DecodeWith``, ``As``) of that type.
    """
    if not isinstance(strategy, SearchStrategy):
        raise TypeError(f"register_strategy({key!r}, ...) needs a hypothesis strategy, got {strategy!r}")
    if isinstance(key, With):
        key = key.codec
    try:
        hash(key)
    except TypeError:
        _registry_by_id[id(key)] = (key, strategy)
    else:
        _registry[key] = strategy
    _cache.clear()


def _registered(key: Any) -> Strategy | None:
    if key is None:
        return None
    try:
        found = _registry.get(key)
    except TypeError:
        entry = _registry_by_id.get(id(key))
        return entry[1] if entry is not None and entry[0] is key else None
    return found


def strategy(
    tp: Any,
    *,
    allow_nan: bool = False,
    max_size: int = 8,
    max_text: int = 40,
    max_bytes: int = 32,
    max_depth: int = 3,
) -> SearchStrategy[Any]:
    """A strategy for the values of ``tp``, any annotation jetwire accepts.

    Every value it generates encodes: integers stay in their width, strings within 65,535
    UTF-8 bytes (and ``max_text`` characters), collections within ``max_size`` elements (half
    as many for a collection inside another, and so on), ``bytes`` within ``max_bytes``.
    Floats are never NaN unless ``allow_nan`` (NaN is not equal to itself, so it breaks
    round-trip equality). Recursive types are unrolled ``max_depth`` times; past that, only
    their non-recursive cases (empty lists, ``None``, leaf variants) are generated.

    Raises ``SchemaError`` for what jetwire cannot encode, and for fields written by user code
    that have no registered strategy (see ``register_strategy``).
    """
    if max_size < 0 or max_text < 0 or max_bytes < 0 or max_depth < 1:
        raise ValueError("strategy(): sizes must be >= 0 and max_depth >= 1")
    key = (tp, allow_nan, max_size, max_text, max_bytes, max_depth)
    cacheable = _hashable(tp)
    if cacheable:
        cached = _cache.get(key)
        if cached is not None:
            return cached
    node = plan(tp)
    walker = _Walker(allow_nan, max_size, max_text, max_bytes, max_depth)
    found = walker.build(node, tp, ())
    if found is None:
        raise SchemaError(f"{node.label} has no finite values: every case of it contains itself")
    if cacheable:
        _cache[key] = found
    return found


# Ids of the class nodes around the one being built, and _NESTED for each collection.
_Stack = tuple[int, ...]
_NESTED = -1


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _strip_annotated(hint: Any) -> Any:
    while get_origin(hint) is Annotated:
        hint = hint.__origin__
    return hint


def _args(hint: Any, n: int) -> tuple[Any, ...]:
    """The ``n`` type arguments of ``hint`` (``None``s when it has not got them)."""
    args = get_args(_strip_annotated(hint)) if hint is not None else ()
    if len(args) == 2 and args[1] is Ellipsis:
        args = args[:1]
    return args if len(args) == n else (None,) * n


def _option_inner(hint: Any, wrapped: bool) -> Any:
    """``T`` of ``Optional[T]`` or of ``Option[T]`` (``Some[T] | None``)."""
    hint = _strip_annotated(hint)
    if get_origin(hint) not in (Union, types.UnionType):
        return None
    rest = [a for a in get_args(hint) if a is not type(None)]
    if len(rest) != 1:
        return Union[tuple(rest)] if rest and not wrapped else None
    only = rest[0]
    if wrapped:
        return get_args(only)[0] if get_origin(only) is Some else None
    return only


class _Walker:
    def __init__(self, allow_nan: bool, max_size: int, max_text: int, max_bytes: int, max_depth: int) -> None:
        self.allow_nan = allow_nan
        self.max_size = max_size
        self.max_text = max_text
        self.max_bytes = max_bytes
        self.max_depth = max_depth
        # Strategies of class nodes, by node and the class nodes being unrolled around it.
        self.memo: dict[tuple[int, _Stack], Strategy | None] = {}

    def build(self, node: Node, hint: Any, stack: _Stack) -> Strategy | None:
        """The strategy of ``node``, or None when it has no value within the unrolling depth.

        ``hint`` is the annotation the node was planned from, when known (for the registry).
        """
        if hint is not None and _hashable(hint):
            found = _registered(hint)
            if found is not None:
                return found
        make = STRATEGIES.get(node.__class__)
        if make is None:
            raise unknown_node("strategies.STRATEGIES", node)
        return make(self, node, hint, stack)

    def int_values(self, node: IntNode, hint: Any, stack: _Stack) -> Strategy | None:
        return st.integers(node.kind.min, node.kind.max)

    def float_values(self, node: FloatNode, hint: Any, stack: _Stack) -> Strategy | None:
        if node.kind.size == 4:
            return st.floats(width=32, allow_nan=self.allow_nan)
        return st.floats(allow_nan=self.allow_nan)

    def bool_values(self, node: BoolNode, hint: Any, stack: _Stack) -> Strategy | None:
        return st.booleans()

    def unit_values(self, node: UnitNode, hint: Any, stack: _Stack) -> Strategy | None:
        return st.none()

    def str_values(self, node: StrNode, hint: Any, stack: _Stack) -> Strategy | None:
        if node.errors == "surrogateescape":  # any bytes, as os.fsdecode reads them
            raw = st.binary(max_size=self.max_text)
            return raw.map(lambda b: b.decode("utf-8", "surrogateescape")) | self.text()
        return self.text()

    def bytes_values(self, node: BytesNode, hint: Any, stack: _Stack) -> Strategy | None:
        return st.binary(max_size=self.max_bytes)

    def url_values(self, node: UrlNode, hint: Any, stack: _Stack) -> Strategy | None:
        return urls()

    def time_values(self, node: TimeNode, hint: Any, stack: _Stack) -> Strategy | None:
        return st.integers(0, MAX_TIME_MS).map(ms_to_datetime)

    def ip_values(self, node: IPNode, hint: Any, stack: _Stack) -> Strategy | None:
        return st.ip_addresses(v=4 if node.version == 4 else 6)

    def seq_values(self, node: SeqNode, hint: Any, stack: _Stack) -> Strategy | None:
        (elem_hint,) = _args(hint, 1)
        size, nested = self.collection(stack)
        elem = self.build(node.elem, elem_hint, nested)
        if elem is None:
            return st.just(node.container())
        items = st.lists(elem, max_size=size)
        return items if node.container is list else items.map(node.container)

    def set_values(self, node: SetNode, hint: Any, stack: _Stack) -> Strategy | None:
        (elem_hint,) = _args(hint, 1)
        size, nested = self.collection(stack)
        elem = self.build(node.elem, elem_hint, nested)
        if elem is None:
            return st.just(node.container())
        if node.container is frozenset:
            return st.frozensets(elem, max_size=size)
        return st.sets(elem, max_size=size)

    def map_values(self, node: MapNode, hint: Any, stack: _Stack) -> Strategy | None:
        key_hint, value_hint = _args(hint, 2)
        size, nested = self.collection(stack)
        key = self.build(node.key, key_hint, nested)
        value = self.build(node.value, value_hint, nested)
        if key is None or value is None:
            return st.just({})
        return st.dictionaries(key, value, max_size=size)

    def option_values(self, node: OptionNode, hint: Any, stack: _Stack) -> Strategy | None:
        inner = self.build(node.inner, _option_inner(hint, node.wrapped), stack)
        if inner is None:
            return st.none()
        return st.none() | (inner.map(Some) if node.wrapped else inner)

    def tuple_values(self, node: TupleNode, hint: Any, stack: _Stack) -> Strategy | None:
        item_hints = _args(hint, len(node.items)) if node.items else ()
        parts = [self.build(i, h, stack) for i, h in zip(node.items, item_hints)]
        present = [p for p in parts if p is not None]
        return st.tuples(*present) if len(present) == len(parts) else None

    def class_values(self, node: StructNode | UnionNode, hint: Any, stack: _Stack) -> Strategy | None:
        return self.class_strategy(node, stack)

    def frame_values(self, node: FrameNode, hint: Any, stack: _Stack) -> Strategy | None:
        msg = self.class_strategy(node.union, stack)
        return None if msg is None else st.builds(node.cls, st.integers(0, 0xFFFF), msg)

    def enum_values(self, node: EnumNode, hint: Any, stack: _Stack) -> Strategy | None:
        found = _registered(node.py_type)
        return found if found is not None else st.sampled_from(node.members)

    def custom_values(self, node: CustomNode, hint: Any, stack: _Stack) -> Strategy | None:
        return self.custom(node, hint)

    def convert_values(self, node: ConvertNode, hint: Any, stack: _Stack) -> Strategy | None:
        return self.convert(node, hint, stack)

    def collection(self, stack: _Stack) -> tuple[int, _Stack]:
        """The size limit of a collection, and the stack its elements are built in: each
        collection inside another may hold half as many elements, so values stay small."""
        size = self.max_size >> stack.count(_NESTED)
        return (max(size, 1) if self.max_size else 0), stack + (_NESTED,)

    def text(self) -> Strategy:
        chars = st.characters(exclude_categories=["Cs"])
        text = st.text(chars, max_size=self.max_text)
        if self.max_text * 4 > MAX_STRING_BYTES:
            return text.filter(lambda s: len(s.encode("utf-8")) <= MAX_STRING_BYTES)
        return text

    def class_strategy(self, node: StructNode | UnionNode, stack: _Stack) -> Strategy | None:
        found = _registered(node.py_type)
        if found is not None:
            return found
        if stack.count(id(node)) >= self.max_depth:
            return None
        key = (id(node), stack)
        if key in self.memo:
            return self.memo[key]
        inner = stack + (id(node),)
        result: Strategy | None
        if isinstance(node, StructNode):
            result = self.struct(node, inner)
        else:
            variants = [self.build(v.node, v.py_type, inner) for v in node.variants]
            present = [v for v in variants if v is not None]
            result = st.one_of(present) if present else None
        self.memo[key] = result
        return result

    def struct(self, node: StructNode, stack: _Stack) -> Strategy | None:
        wire = node.wire_fields
        fields: list[Strategy] = []
        for f in wire:
            assert f.node is not None
            found = self.build(f.node, f.hint, stack)
            if found is None:
                return None
            fields.append(found)
        if all(f.init for f in wire):
            return st.builds(node.cls, **{f.name: s for f, s in zip(wire, fields)})
        # Fields outside __init__ are set after construction, as the decoder does.
        return st.tuples(*fields).map(lambda values: construct(node, list(values)))

    def custom(self, node: CustomNode, hint: Any) -> Strategy:
        for key in (node.codec, _strip_annotated(hint), node.decode, node.encode):
            found = _registered(key)
            if found is not None:
                return found
        codec = node.codec
        if codec is LevelCodec or isinstance(codec, LevelCodec):
            return st.sampled_from(Level)
        raise _unknown(node, hint, "a custom codec")

    def convert(self, node: ConvertNode, hint: Any, stack: _Stack) -> Strategy:
        found = _registered(_strip_annotated(hint))
        if found is not None:
            return found
        if node.to_wire is None and node.from_wire is None:
            inner = self.build(node.inner, None, stack)
            if inner is not None:
                return inner
        raise _unknown(node, hint, f"As({node.inner.label}, ...) conversions")


# The strategy of each node type, looked up by the node's exact class: a node type missing here
# is an internal error (UnknownNodeError), never a default.
STRATEGIES: dict[type[Node], Callable[[_Walker, Any, Any, _Stack], Strategy | None]] = {
    IntNode: _Walker.int_values,
    FloatNode: _Walker.float_values,
    BoolNode: _Walker.bool_values,
    UnitNode: _Walker.unit_values,
    StrNode: _Walker.str_values,
    BytesNode: _Walker.bytes_values,
    UrlNode: _Walker.url_values,
    TimeNode: _Walker.time_values,
    IPNode: _Walker.ip_values,
    SeqNode: _Walker.seq_values,
    SetNode: _Walker.set_values,
    MapNode: _Walker.map_values,
    OptionNode: _Walker.option_values,
    TupleNode: _Walker.tuple_values,
    StructNode: _Walker.class_values,
    UnionNode: _Walker.class_values,
    FrameNode: _Walker.frame_values,
    EnumNode: _Walker.enum_values,
    CustomNode: _Walker.custom_values,
    ConvertNode: _Walker.convert_values,
}


def _unknown(node: Node, hint: Any, what: str) -> SchemaError:
    shown = hint if hint is not None else node.label
    base = _strip_annotated(hint)
    example = getattr(base, "__name__", None) or "YourType"
    return SchemaError(
        f"jetwire.testing cannot invent values of {shown!r}, written by {what}: call "
        f"jetwire.testing.register_strategy({example}, <a hypothesis strategy>) first "
        "(keyed by the codec object, the Python type or the exact annotation)"
    )


# ---------------------------------------------------------------------------------------------
# URLs: simple, valid, and already in the form a WHATWG parser would print them.

_SPECIAL = ("http", "https", "ws", "wss", "ftp")
_LOWER = "abcdefghijklmnopqrstuvwxyz"
_DIGITS = "0123456789"


def _word(first: str, rest: str, max_size: int) -> Strategy:
    return st.builds(operator.add, st.sampled_from(first), st.text(rest, max_size=max_size))


def _ipv6_host(pieces: list[int]) -> str:
    """The WHATWG serialisation: lowercase hex, the first longest run of two or more zero
    pieces written as ``::``."""
    best_start, best_len, start = -1, 1, -1
    for i, piece in enumerate([*pieces, 1]):
        if piece == 0 and start < 0:
            start = i
        elif piece != 0 and start >= 0:
            if i - start > best_len:
                best_start, best_len = start, i - start
            start = -1
    texts = [f"{piece:x}" for piece in pieces]
    if best_start < 0:
        return "[" + ":".join(texts) + "]"
    head, tail = texts[:best_start], texts[best_start + best_len:]
    return "[" + ":".join(head) + "::" + ":".join(tail) + "]"


def urls() -> SearchStrategy[Url]:
    """Absolute URLs: ``http(s)/ws(s)/ftp://host[:port]/path[?query]`` (hosts: domains, dotted
    IPv4, bracketed IPv6), ``file:///path``, ``mailto:user@host``, ``urn:name:thing``."""
    label = _word(_LOWER, _LOWER + _DIGITS, 9)
    ipv4 = st.lists(st.integers(0, 255), min_size=4, max_size=4).map(lambda parts: ".".join(map(str, parts)))
    ipv6 = st.lists(st.integers(0, 0xFFFF), min_size=8, max_size=8).map(_ipv6_host)
    host = st.lists(label, min_size=1, max_size=3).map(".".join) | ipv4 | ipv6
    port = st.none() | st.integers(1024, 65535)
    segment = st.text(_LOWER + _DIGITS + "-_~", max_size=8)
    path = st.lists(segment, max_size=3).map(lambda parts: "/" + "/".join(parts))
    query = st.none() | st.text(_LOWER + _DIGITS + "=&", max_size=10)

    def special(scheme: str, host: str, port: int | None, path: str, query: str | None) -> str:
        where = host if port is None else f"{host}:{port}"
        return f"{scheme}://{where}{path}" + ("" if query is None else f"?{query}")

    def mailto(user: str, host: str) -> str:
        return f"mailto:{user}@{host}"

    def urn(nid: str, nss: str) -> str:
        return f"urn:{nid}:{nss}"

    texts: SearchStrategy[str] = st.one_of(
        st.builds(special, st.sampled_from(_SPECIAL), host, port, path, query),
        path.map(lambda p: f"file://{p}"),
        st.builds(mailto, label, host),
        st.builds(urn, label, label),
    )
    return texts.map(Url)


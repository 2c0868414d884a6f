"""Wire values as plain Python data (dicts, lists, str, int, float, bool, None) and back.

``to_builtins(value, type)`` gives data ``json.dumps`` accepts, even with ``allow_nan=False``;
``convert(obj, type)`` checks such data against the type and builds the typed value, so
``convert(to_builtins(v, T), T) == v`` for every value the wire carries exactly (NaN aside: it
is not equal to itself). Both deal in what the wire carries: an f32 is rounded to single
precision, a datetime cut to milliseconds, as encoding then decoding would. Both walk the
type's plan, as the codec does; the spelling of each wire type is in ``docs/convert.md``.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime
import ipaddress
import math
import operator
import re
from collections.abc import Callable, Generator, Mapping, Sequence, Set
from types import GeneratorType
from typing import Any, TypeVar, overload

from .compiler.plan import (
    MAX_DATA_BYTES,
    MAX_DEPTH,
    MAX_ELEMENTS,
    MAX_SHARED_HASH,
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
    hashes_may_crowd,
    unknown_node,
)
from .compiler.support import (
    HashCount,
    NeedMore,
    ReplayReader,
    as_bytes_like,
    bool_arg,
    datetime_to_ms,
    f32_from_bits,
    f32_to_bits,
    ms_to_datetime,
)
from .compiler.values import construct, sort_key_of, variant_of
from .errors import DecodeError, EncodeError, SchemaError, WireError
from .markers import U16, Some
from .runtime.codec import codec_for, type_of
from .wiretypes import Url, url_problem

__all__ = ["ConvertError", "convert", "to_builtins"]

T = TypeVar("T")


class ConvertError(WireError):
    """Plain data that is not a value of the type, or a value ``to_builtins`` cannot spell.

    ``path`` names the place (``Order.items[2].sku``), ``reason`` what is wrong. There are no
    bytes here, so ``offset`` is always 0 and the message does not show it.
    """

    def __init__(self, reason: str, path: str = "") -> None:
        super().__init__(reason, path, 0)

    def _render(self) -> str:
        return f"{self.path}: {self.reason}" if self.path else self.reason

    def __reduce__(self) -> tuple[type, tuple[str, str]]:  # type: ignore[override]
        return (type(self), (self.reason, self.path))


def to_builtins(value: Any, type: Any = None) -> Any:  # noqa: A002 - the name the API promises
    """``value`` as JSON-ready data: dicts with str keys, lists, str, int, float, bool, None.

    ``type`` is the wire type (inferred from a decorated class when omitted, as ``encode`` does).
    Floats are finite numbers or the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``; bytes
    are base64; a ``datetime`` is an RFC 3339 UTC string in milliseconds. The data is that of
    the value the wire carries: ``to_builtins(decode(encode(v)))`` gives the same.
    Raises ``ConvertError``, naming the field, for a value ``encode`` would refuse.
    """
    tp = type
    if tp is None:
        try:
            tp = type_of(value)
        except EncodeError as exc:
            raise ConvertError(exc.reason) from None
    node = codec_for(tp).node
    try:
        return _dump(node, value, 0)
    except _Problem as problem:
        raise problem.error(node.label) from None


@overload
def convert(obj: Any, type: type[T]) -> T: ...
@overload
def convert(obj: Any, type: Any) -> Any: ...
def convert(obj: Any, type: Any) -> Any:  # noqa: A002
    """The value of ``type`` that ``obj``, plain data as ``to_builtins`` writes it, spells.

    Checks everything ``encode`` would (widths, lengths, limits) and more: no bool for an int,
    no unknown fields. A struct field with a default may be left out. The value is the one
    decoding its own encoding gives (f32 rounded, datetime in whole milliseconds, UTC).
    Raises ``ConvertError`` naming the path:
    ``Order.items[2].sku: expected an integer 0..4294967295 (u32), got -1``.
    """
    node = codec_for(type).node
    try:
        return _load(node, obj, 0)
    except _Problem as problem:
        raise problem.error(node.label) from None


# ---------------------------------------------------------------------------------------------
# Errors: raised where the problem is, the path gathered on the way out (nothing to pay when
# all is well).


class _Problem(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.steps: list[str] = []  # innermost first

    def error(self, root: str) -> ConvertError:
        return ConvertError(self.reason, root + "".join(reversed(self.steps)))


def _at(problem: _Problem, step: str) -> _Problem:
    problem.steps.append(step)
    return problem


def _show(obj: Any) -> str:
    """A short description of what was found instead."""
    if isinstance(obj, int) and not isinstance(obj, bool) and obj.bit_length() > 256:
        return f"an integer of {obj.bit_length()} bits"  # its digits could be thousands long
    if obj is None or isinstance(obj, (bool, int, float)):
        text = repr(obj)
    elif isinstance(obj, str):
        text = repr(obj) if len(obj) <= 40 else repr(obj[:40]) + "..."
        return f"the string {text}"
    elif isinstance(obj, Mapping):
        return "an object" if isinstance(obj, dict) else f"a {type(obj).__name__}"
    elif isinstance(obj, (list, tuple)):
        return f"a {'list' if isinstance(obj, list) else 'tuple'} of {len(obj)}"
    else:
        return f"a {type(obj).__name__}"
    return text if len(text) <= 60 else text[:60] + "..."


def _variant_depth(variant: Node, depth: int) -> int:
    """An enum and its variant's struct are one level, as encoding and decoding count them."""
    return depth - 1 if isinstance(variant, StructNode) else depth


def _deeper(depth: int) -> int:
    if depth >= MAX_DEPTH:
        raise _too_deep()
    return depth + 1


def _too_deep() -> _Problem:
    return _Problem(f"nesting too deep: more than {MAX_DEPTH} structs and enums inside each other")


# ---------------------------------------------------------------------------------------------
# The walk. Values nest up to MAX_DEPTH structs, each holding up to MAX_TYPE_NESTING containers,
# thousands of levels: more than Python's recursion limit, and on 3.10 than a thread's C stack.
# So a handler of a node that holds others returns a generator: it yields (node, value, depth)
# for each part and is sent back what the part gave; _walk runs them from a list. A _Problem
# raised in a part is thrown into its parent, whose ``except`` adds its step to the path, as a
# call would. Parts that are leaves, or hold only a few levels of leaves (``_in_place``: an
# Item of ints and a list[str]), are called in place and give their value at once: a generator
# per part costs a little more than a call, which plain data made of many small structs felt.
# A struct's fields are one loop either way: it calls the fields in place until one that is
# not, and hands the rest to a generator that yields that one and then runs the loop again
# from the next field; when that returns another such generator, the walk goes on with it.

_Dump = Callable[[Any, Any, int], Any]
_Step = tuple[Node, Any, int]
_Nested = Generator[_Step, Any, Any]


class _GoOn:
    """What a part's generator returns to have the walk go on with another generator in its
    place (a struct's fields after the one it yielded), rather than a value."""

    __slots__ = ("part",)

    def __init__(self, part: _Nested) -> None:
        self.part = part


def _walk(handlers: dict[type[Node], _Dump], node: Node, value: Any, depth: int) -> Any:
    result = handlers[type(node)](node, value, depth)
    if type(result) is not GeneratorType:
        return result
    stack: list[_Nested] = [result]
    result = None
    problem: _Problem | None = None
    while stack:
        try:
            if problem is None:
                child, part, part_depth = stack[-1].send(result)
            else:
                thrown, problem = problem, None
                child, part, part_depth = stack[-1].throw(thrown)
        except StopIteration as done:
            stack.pop()
            result = done.value
            if type(result) is _GoOn:
                stack.append(result.part)
                result = None
            continue
        except _Problem as raised:
            stack.pop()
            if not stack:
                raise
            problem = raised
            continue
        try:
            result = handlers[type(child)](child, part, part_depth)
        except _Problem as raised:
            problem = raised
            continue
        if type(result) is GeneratorType:
            stack.append(result)
            result = None
    return result


# Parts called in place hold at most this many structs inside each other (each a few frames of
# the Python stack, with their containers).
_IN_PLACE_STRUCTS = 4
_LEAVES = (IntNode, FloatNode, BoolNode, UnitNode, StrNode, UrlNode, BytesNode, TimeNode, IPNode, EnumNode)
_in_place_nodes: dict[Node, bool] = {}  # keyed by the node itself, as _fields below


def _in_place(node: Node) -> bool:
    """Whether the handlers of ``node`` give its value without yielding: a leaf, or a list,
    Optional or struct of such parts, a few structs deep at most."""
    found = _in_place_nodes.get(node)
    if found is None:
        found = _levels(node, _IN_PLACE_STRUCTS) is not None
        if not isinstance(node, StructNode) or node.complete:
            _in_place_nodes[node] = found
    return found


def _levels(node: Node, budget: int) -> int | None:
    """How many structs ``node`` holds inside each other if it may be walked in place within
    ``budget`` of them, else None (a recursive type runs out of budget)."""
    if isinstance(node, _LEAVES):
        return 0
    if isinstance(node, SeqNode):
        return _levels(node.elem, budget)
    if isinstance(node, OptionNode):
        return _levels(node.inner, budget)
    if isinstance(node, StructNode) and node.complete and budget > 0:
        deepest = 0
        for f in node.wire_fields:
            if f.node is not None:
                levels = _levels(f.node, budget - 1)
                if levels is None:
                    return None
                deepest = max(deepest, levels)
        return deepest + 1
    return None


def _dump(node: Node, value: Any, depth: int) -> Any:
    _dumper(node)
    return _walk(DUMPERS, node, value, depth)


def _dumper(node: Node) -> _Dump:
    found = DUMPERS.get(type(node))
    if found is None:
        raise unknown_node("builtins.DUMPERS", node)
    return found


def _leaf(handlers: dict[type[Node], _Dump], node: Node) -> _Dump | None:
    """The handler of ``node`` if its parent may call it in place, else None (yield the part)."""
    leaves = _dump_leaves if handlers is DUMPERS else _load_leaves
    known = leaves.get(node, _UNKNOWN)
    if known is not _UNKNOWN:
        return known  # type: ignore[no-any-return]
    found = handlers.get(type(node))
    if found is None:
        raise unknown_node("builtins.DUMPERS" if handlers is DUMPERS else "builtins.LOADERS", node)
    leaf = found if _in_place(node) else None
    if not isinstance(node, StructNode) or node.complete:
        leaves[node] = leaf
    return leaf


_UNKNOWN: Any = object()
_dump_leaves: dict[Node, _Dump | None] = {}
_load_leaves: dict[Node, _Dump | None] = {}


_bounds: dict[IntNode, tuple[int, int]] = {}  # min and max, which IntKind computes on each use


def _bounds_of(node: IntNode) -> tuple[int, int]:
    found = _bounds.get(node)
    if found is None:
        found = _bounds[node] = (node.kind.min, node.kind.max)
    return found


def _dump_int(node: IntNode, value: Any, depth: int) -> int:
    low, high = _bounds_of(node)
    if type(value) is int and low <= value <= high:
        return value
    k = node.kind
    if isinstance(value, float) or not hasattr(value, "__index__"):
        raise _Problem(f"expected an int for {k.name}, got {type(value).__name__}")
    n: int = value.__index__()
    if not low <= n <= high:
        raise _Problem(f"{_show(n)} is out of range for {k.name} ({low}..{high})")
    return n


_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _dump_float(node: FloatNode, value: Any, depth: int) -> float | str:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise _Problem(f"expected a float for {node.kind.name}, got {type(value).__name__}")
    try:
        number = float(value)
    except OverflowError:
        raise _Problem(f"{_show(value)} is too large for {node.kind.name}") from None
    if node.kind.size == 4:
        number = _as_f32(number)
    if math.isfinite(number):
        return number
    if number != number:
        return "NaN"
    return "Infinity" if number > 0 else "-Infinity"


def _as_f32(number: float) -> float:
    """``number`` as the wire carries it in an f32: rounded to single precision."""
    try:
        return f32_from_bits(f32_to_bits(number))
    except OverflowError:
        raise _Problem(f"{number!r} is too large for f32") from None


def _dump_bool(node: BoolNode, value: Any, depth: int) -> bool:
    try:
        return bool(bool_arg(value))
    except TypeError:
        raise _Problem(f"expected a bool, got {_show(value)}") from None


def _dump_unit(node: UnitNode, value: Any, depth: int) -> None:
    if value is not None:
        raise _Problem(f"expected None, got {_show(value)}")


def _checked_text(value: Any, errors: str) -> str:
    """``value`` as an exact ``str`` that fits a wire string."""
    if not isinstance(value, str):
        raise _Problem(f"expected a string, got {_show(value)}")
    try:
        size = len(value.encode("utf-8", errors))
    except UnicodeEncodeError as exc:
        raise _Problem(f"not encodable as UTF-8 at character {exc.start} ({exc.reason})") from None
    if size > MAX_STRING_BYTES:
        raise _Problem(f"string of {size} UTF-8 bytes is over the 65,535 limit")
    return str.__str__(value)  # an exact str, whatever subclass came in


def _dump_str(node: StrNode, value: Any, depth: int) -> str:
    return _checked_text(value, node.errors)


def _dump_url(node: UrlNode, value: Any, depth: int) -> str:
    text = _checked_text(value, "strict")
    problem = url_problem(text)
    if problem:
        raise _Problem(f"not an absolute URL ({problem}): {text!r}")
    return text


def _dump_bytes(node: BytesNode, value: Any, depth: int) -> str:
    try:
        data = as_bytes_like(value)
    except TypeError as exc:
        raise _Problem(str(exc)) from None
    if len(data) > MAX_DATA_BYTES:
        raise _Problem(f"Data of {len(data)} bytes is over the 32 MiB limit")
    return base64.b64encode(data).decode("ascii")


def _dump_time(node: TimeNode, value: Any, depth: int) -> str:
    try:
        ms = datetime_to_ms(value)
        at = ms_to_datetime(ms)
    except (TypeError, ValueError, OverflowError) as exc:
        raise _Problem(str(exc)) from None
    return (
        f"{at.year:04d}-{at.month:02d}-{at.day:02d}T{at.hour:02d}:{at.minute:02d}:{at.second:02d}"
        f".{ms % 1000:03d}Z"
    )


def _dump_ip(node: IPNode, value: Any, depth: int) -> str:
    want = ipaddress.IPv4Address if node.version == 4 else ipaddress.IPv6Address
    if not isinstance(value, want):
        raise _Problem(f"expected {want.__name__}, got {type(value).__name__}")
    return str(want(value.packed))  # without an IPv6 scope id, which the wire does not carry


def _count(n: int) -> None:
    if n > MAX_ELEMENTS:
        raise _Problem(f"{n} elements are over the 65,535 limit")


def _dump_seq(node: SeqNode, value: Any, depth: int) -> list[Any] | _Nested:
    if isinstance(value, (str, bytes, bytearray, memoryview)) or not isinstance(value, Sequence):
        raise _Problem(f"expected a list or tuple, got {type(value).__name__}")
    _count(len(value))
    elem = node.elem
    dump = _leaf(DUMPERS, elem)
    if dump is None:
        return _each_part(elem, value, depth)
    out = []
    for i, item in enumerate(value):
        try:
            out.append(dump(elem, item, depth))
        except _Problem as problem:
            raise _at(problem, f"[{i}]") from None
    return out


def _each_part(elem: Node, items: Sequence[Any], depth: int) -> _Nested:
    """The parts of a list whose elements are not walked in place, in a list."""
    out = []
    for i, item in enumerate(items):
        try:
            out.append((yield elem, item, depth))
        except _Problem as problem:
            raise _at(problem, f"[{i}]") from None
    return out


_first = operator.itemgetter(0)


def _ordered(items: Any, key: Callable[[Any], Any] | None) -> list[Any]:
    """In wire order, so the same value always gives the same data."""
    try:
        return sorted(items, key=key)
    except Exception as exc:  # incomparable members, or members the sort key does not know
        raise _Problem(f"members cannot be put in order: {exc!r}") from None


def _dump_set(node: SetNode, value: Any, depth: int) -> _Nested:
    if not isinstance(value, Set):
        raise _Problem(f"expected a set or frozenset, got {type(value).__name__}")
    _count(len(value))
    out = []
    for i, item in enumerate(_ordered(value, sort_key_of(node.elem))):
        try:
            out.append((yield node.elem, item, depth))
        except _Problem as problem:
            raise _at(problem, f"[{i}]") from None
    return out


def _dump_map(node: MapNode, value: Any, depth: int) -> _Nested:
    if not isinstance(value, Mapping):
        raise _Problem(f"expected a dict, got {type(value).__name__}")
    _count(len(value))
    by_key = sort_key_of(node.key)
    # by items, not by looking each key up: keys that share a hash make lookups linear
    entries = _ordered(value.items(), _first if by_key is None else lambda entry: by_key(entry[0]))
    pairs = []
    for i, (key, item) in enumerate(entries):
        try:
            spelled = yield node.key, key, depth
        except _Problem as problem:
            raise _at(problem, f"[{i}].key") from None
        try:
            pairs.append([spelled, (yield node.value, item, depth)])
        except _Problem as problem:
            raise _at(problem, f"[{key!r}]") from None
    if not _spelled_as_string(node.key):
        return pairs
    spelled_map = dict(pairs)
    if len(spelled_map) < len(pairs):  # e.g. datetimes within one millisecond
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Problem(f"two keys are one on the wire: {key!r}")
            seen.add(key)
    return spelled_map


def _spelled_as_string(node: Node) -> bool:
    """Whether every value of ``node`` is spelled as a string, so a map keyed by it is a JSON
    object (distinct keys have distinct spellings)."""
    if isinstance(node, (StrNode, UrlNode, BytesNode, TimeNode, IPNode, EnumNode)):
        return True
    if isinstance(node, CustomNode):
        return _custom_form(node)[0] != "inner" or _spelled_as_string(node.inner)  # type: ignore[arg-type]
    return _is_ip_union(node)


def _is_ip_union(node: Node) -> bool:
    """``IpAddr``: IPv4 or IPv6, told apart by their text, so spelled as a plain string."""
    return isinstance(node, UnionNode) and bool(node.variants) and all(
        isinstance(v.node, IPNode) for v in node.variants
    )


def _dump_option(node: OptionNode, value: Any, depth: int) -> Any:
    if value is None:
        return None
    if node.wrapped:
        if not isinstance(value, Some):
            raise _Problem(f"expected None or Some(...), got {_show(value)}")
        dump = _leaf(DUMPERS, node.inner)
        if dump is None:
            return _some_part(node.inner, value.value, depth)
        return {"Some": dump(node.inner, value.value, depth)}
    return _dumper(node.inner)(node.inner, value, depth)  # a generator for the walk, if one


def _some_part(inner: Node, value: Any, depth: int) -> _Nested:
    return {"Some": (yield inner, value, depth)}


def _dump_tuple(node: TupleNode, value: Any, depth: int) -> _Nested:
    if not isinstance(value, (tuple, list)) or len(value) != len(node.items):
        raise _Problem(f"expected a tuple of {len(node.items)}, got {_show(value)}")
    out = []
    for i, (item_node, item) in enumerate(zip(node.items, value)):
        try:
            out.append((yield item_node, item, depth))
        except _Problem as problem:
            raise _at(problem, f"[{i}]") from None
    return out


# A struct's fields as its loop takes them: the fields called in place up to the first that is
# not, then that one (yielded to the walk) with the segment after it (None if nothing follows),
# and so on; the last segment ends with None. A struct of fields called in place only is one
# segment.
_Segment = tuple[list[tuple[str, Node, _Dump]], "tuple[str, Node, _Segment | None] | None"]


class _Fields:
    """What both directions need of a struct, worked out once: its wire fields with their
    handlers (as _Segment), their names, and whether ``cls(*values)`` builds it."""

    __slots__ = ("by_position", "dump", "dump_then", "load", "load_then", "names", "ordered_names")

    def __init__(self, node: StructNode) -> None:
        wire = [(f.name, f.node) for f in node.wire_fields if f.node is not None]
        self.dump, self.dump_then = _segments([(name, n, _leaf(DUMPERS, n)) for name, n in wire])
        self.load, self.load_then = _segments([(name, n, _leaf(LOADERS, n)) for name, n in wire])
        self.ordered_names = [name for name, _ in wire]
        self.names = frozenset(self.ordered_names)
        self.by_position = node.positional() and all(f.init for f in node.wire_fields)


def _segments(fields: list[tuple[str, Node, _Dump | None]]) -> _Segment:
    in_place: list[tuple[str, Node, _Dump]] = []
    then: tuple[str, Node, _Segment | None] | None = None
    for name, node, handler in reversed(fields):
        if handler is None:
            in_place.reverse()
            then = (name, node, (in_place, then) if in_place or then else None)
            in_place = []
        else:
            in_place.append((name, node, handler))
    in_place.reverse()
    return in_place, then


# Keyed by the node itself, which keeps it alive: an id could be reused by a later node.
_fields: dict[StructNode, _Fields] = {}


def _fields_of(node: StructNode) -> _Fields:
    found = _fields.get(node)
    if found is None:
        found = _Fields(node)
        if node.complete:
            _fields[node] = found
    return found


def _dump_struct(node: StructNode, value: Any, depth: int, in_place: Any = None, then: Any = None,
                 out: Any = None) -> Any:
    """The struct's fields, each called in place up to the first that is not: from there on, a
    generator that yields that one to the walk, then calls this again for the next segment
    (``in_place`` and ``then``, into ``out``)."""
    if in_place is None:
        if depth >= MAX_DEPTH:  # as _deeper, without a call per struct
            raise _too_deep()
        depth += 1
        if not isinstance(value, node.cls):
            raise _Problem(f"expected {node.label}, got {type(value).__name__}")
        fields = _fields_of(node)
        in_place, then, out = fields.dump, fields.dump_then, {}
    for name, field_node, dump in in_place:
        try:
            field_value = getattr(value, name)
        except AttributeError:
            raise _Problem(f"{node.label} has no attribute {name!r}") from None
        try:
            out[name] = dump(field_node, field_value, depth)
        except _Problem as problem:
            raise _at(problem, f".{name}") from None
    if then is None:
        return out
    name, field_node, rest = then  # unpacked here: a call with *then costs more
    return _dump_part(node, value, depth, out, name, field_node, rest)


def _dump_part(node: StructNode, value: Any, depth: int, out: dict[str, Any], name: str, field_node: Node,
               rest: _Segment | None) -> _Nested:
    try:
        field_value = getattr(value, name)
    except AttributeError:
        raise _Problem(f"{node.label} has no attribute {name!r}") from None
    try:
        out[name] = yield field_node, field_value, depth
    except _Problem as problem:
        raise _at(problem, f".{name}") from None
    if rest is None:
        return out
    in_place, then = rest
    following = _dump_struct(node, value, depth, in_place, then, out)
    return _GoOn(following) if type(following) is GeneratorType else following


_names_checked: set[UnionNode] = set()  # unions seen to have distinct variant names


def _check_names(node: UnionNode) -> None:
    """Variants are spelled by class name: two classes of one name could not be told apart."""
    if node in _names_checked:
        return
    seen: dict[str, type] = {}
    for v in node.variants:
        other = seen.setdefault(v.name, v.py_type)
        if other is not v.py_type:
            raise SchemaError(
                f"{node.label}: two variants are named {v.name} ({other.__module__}.{other.__qualname__}, "
                f"{v.py_type.__module__}.{v.py_type.__qualname__}), so plain data cannot tell them apart"
            )
    _names_checked.add(node)


def _dump_union(node: UnionNode, value: Any, depth: int) -> _Nested:
    depth = _deeper(depth)
    _check_names(node)
    variant = variant_of(node, value)
    if variant is None:
        choices = ", ".join(v.name for v in node.variants)
        raise _Problem(f"expected {node.label} ({choices}), got {type(value).__name__}")
    try:
        inner = yield variant.node, value, _variant_depth(variant.node, depth)
    except _Problem as problem:
        raise _at(problem, f"<{variant.name}>") from None
    return inner if _is_ip_union(node) else {variant.name: inner}


def _dump_frame(node: FrameNode, value: Any, depth: int) -> _Nested:
    if not isinstance(value, node.cls):
        raise _Problem(f"expected {node.label}, got {type(value).__name__}")
    tag: Any = getattr(value, "tag", None)
    try:
        number = _dump_int(_TAG, tag, depth)
    except _Problem as problem:
        raise _at(problem, ".tag") from None
    try:
        msg = yield node.union, getattr(value, "msg", None), depth
    except _Problem as problem:
        raise _at(problem, ".msg") from None
    return {"tag": number, "msg": msg}


def _dump_enum(node: EnumNode, value: Any, depth: int) -> str:
    index = node.index.get(value) if _hashable(value) else None
    if index is None:
        raise _Problem(f"expected a member of {node.label}, got {_show(value)}")
    name: str = node.members[index].name
    return name


def _dump_custom(node: CustomNode, value: Any, depth: int) -> _Nested:
    form, inner = _custom_form(node)
    if form == "inner":
        return (yield inner, value, depth)
    if form == "enum":
        return _dump_enum(inner, value, depth)  # type: ignore[arg-type]
    assert node.encode is not None and node.size is not None
    pieces: list[bytes] = []
    try:
        node.size(value)
        node.encode(value, _Collect(pieces))
    except EncodeError as exc:
        raise _Problem(exc.reason) from None
    except Exception as exc:
        raise _Problem(f"custom codec failed: {exc!r}") from exc
    return base64.b64encode(b"".join(pieces)).decode("ascii")


class _Collect:
    __slots__ = ("write",)

    def __init__(self, pieces: list[bytes]) -> None:
        self.write = lambda data: pieces.append(bytes(data))


def _dump_convert(node: ConvertNode, value: Any, depth: int) -> _Nested:
    if node.to_wire is not None:
        try:
            value = node.to_wire(value)
        except Exception as exc:
            raise _Problem(f"conversion to {node.inner.label} failed: {exc!r}") from exc
    return (yield node.inner, value, depth)


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True



_TAG = IntNode(U16)  # a frame's tag


def _custom_form(node: CustomNode) -> tuple[str, Node]:
    """How a field written by user code is spelled: as its own wire type when a direction has
    no hook (``"inner"``), by member name for ``Level`` (``"enum"``), else as the base64 of
    the bytes the codec writes (``"bytes"``), which only the codec itself can read back."""
    if node.encode is None or node.decode is None:
        assert node.inner is not None
        return "inner", node.inner
    from .stdtypes import Level, LevelCodec  # declared with jetwire: loaded on first need

    if node.codec is LevelCodec or isinstance(node.codec, LevelCodec):
        return "enum", codec_for(Level).node
    return "bytes", node


DUMPERS: dict[type[Node], _Dump] = {
    IntNode: _dump_int,
    FloatNode: _dump_float,
    BoolNode: _dump_bool,
    UnitNode: _dump_unit,
    StrNode: _dump_str,
    UrlNode: _dump_url,
    BytesNode: _dump_bytes,
    TimeNode: _dump_time,
    IPNode: _dump_ip,
    SeqNode: _dump_seq,
    SetNode: _dump_set,
    MapNode: _dump_map,
    OptionNode: _dump_option,
    TupleNode: _dump_tuple,
    StructNode: _dump_struct,
    UnionNode: _dump_union,
    FrameNode: _dump_frame,
    EnumNode: _dump_enum,
    CustomNode: _dump_custom,
    ConvertNode: _dump_convert,
}


# ---------------------------------------------------------------------------------------------
# convert: one handler per node type. Each takes exactly what to_builtins writes.


def _load(node: Node, obj: Any, depth: int) -> Any:
    _loader(node)
    return _walk(LOADERS, node, obj, depth)


def _loader(node: Node) -> _Dump:
    found = LOADERS.get(type(node))
    if found is None:
        raise unknown_node("builtins.LOADERS", node)
    return found


def _load_int(node: IntNode, obj: Any, depth: int) -> int:
    low, high = _bounds_of(node)
    if type(obj) is int and low <= obj <= high:
        return obj
    if not isinstance(obj, int) or isinstance(obj, bool) or not low <= obj <= high:
        raise _Problem(f"expected an integer {low}..{high} ({node.kind.name}), got {_show(obj)}")
    return int(obj)


def _load_float(node: FloatNode, obj: Any, depth: int) -> float:
    if isinstance(obj, str):
        found = _NON_FINITE.get(obj)
        if found is None:
            raise _Problem(
            f'expected a number or "NaN", "Infinity", "-Infinity" for {node.kind.name}, got {_show(obj)}'
            )
        return found
    if not isinstance(obj, (int, float)) or isinstance(obj, bool):
        raise _Problem(f"expected a number for {node.kind.name}, got {_show(obj)}")
    try:
        number = float(obj)
    except OverflowError:
        raise _Problem(f"{_show(obj)} is too large for {node.kind.name}") from None
    if node.kind.size == 4:
        number = _as_f32(number)
    return number


def _load_bool(node: BoolNode, obj: Any, depth: int) -> bool:
    if not isinstance(obj, bool):
        raise _Problem(f"expected true or false, got {_show(obj)}")
    return obj


def _load_unit(node: UnitNode, obj: Any, depth: int) -> None:
    if obj is not None:
        raise _Problem(f"expected null, got {_show(obj)}")


def _load_str(node: StrNode, obj: Any, depth: int) -> str:
    return _checked_text(obj, node.errors)


def _load_url(node: UrlNode, obj: Any, depth: int) -> Url:
    return Url(_dump_url(node, obj, depth))


# The longest base64 text of Data within the wire's limit: anything longer is refused unread.
_MAX_BASE64 = (MAX_DATA_BYTES + 2) // 3 * 4


def _base64_bytes(obj: Any) -> bytes:
    if not isinstance(obj, str):
        raise _Problem(f"expected a base64 string, got {_show(obj)}")
    if len(obj) > _MAX_BASE64:
        raise _Problem(f"base64 text of {len(obj)} characters is over the 32 MiB limit of Data")
    try:
        return base64.b64decode(obj, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _Problem(f"not base64 ({exc}): {_show(obj)}") from None


def _load_bytes(node: BytesNode, obj: Any, depth: int) -> bytes:
    data = _base64_bytes(obj)
    if len(data) > MAX_DATA_BYTES:
        raise _Problem(f"Data of {len(data)} bytes is over the 32 MiB limit")
    return data


_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))"
)


def _load_time(node: TimeNode, obj: Any, depth: int) -> datetime.datetime:
    if not isinstance(obj, str):
        raise _Problem(f"expected an RFC 3339 date and time, got {_show(obj)}")
    match = _RFC3339.fullmatch(obj)
    if match is None:
        raise _Problem(f"expected an RFC 3339 date and time such as 2024-05-06T07:08:09.123Z, got {_show(obj)}")
    year, month, day, hour, minute, second, fraction, sign, off_h, off_m = match.groups()
    micro = int((fraction or "")[:3].ljust(3, "0")) * 1000  # the wire keeps milliseconds: cut the rest
    try:
        offset = datetime.timedelta(hours=int(off_h or 0), minutes=int(off_m or 0))
        zone = datetime.timezone(-offset if sign == "-" else offset)
        at = datetime.datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo=zone
        ).astimezone(datetime.timezone.utc)
        datetime_to_ms(at)
    except (ValueError, OverflowError) as exc:
        raise _Problem(f"not a time the wire can hold ({exc}): {_show(obj)}") from None
    return at


def _load_ip(node: IPNode, obj: Any, depth: int) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    kind = ipaddress.IPv4Address if node.version == 4 else ipaddress.IPv6Address
    if not isinstance(obj, str):
        raise _Problem(f"expected an {kind.__name__} as a string, got {_show(obj)}")
    if "%" in obj:
        raise _Problem(f"the wire does not carry an IPv6 scope id: {_show(obj)}")
    try:
        return kind(obj)
    except ValueError as exc:
        raise _Problem(f"not an {kind.__name__} ({exc})") from None


def _sized(obj: Any, what: str) -> Sequence[Any]:
    if not isinstance(obj, (list, tuple)):
        raise _Problem(f"expected {what}, got {_show(obj)}")
    _count(len(obj))
    return obj


def _load_seq(node: SeqNode, obj: Any, depth: int) -> Any:
    items = _sized(obj, "a list")
    elem = node.elem
    load = _leaf(LOADERS, elem)
    if load is None:
        return _load_parts(node, items, depth)
    out = []
    for i, item in enumerate(items):
        try:
            out.append(load(elem, item, depth))
        except _Problem as problem:
            raise _at(problem, f"[{i}]") from None
    return out if node.container is list else node.container(out)


def _load_parts(node: SeqNode, items: Sequence[Any], depth: int) -> _Nested:
    out = yield from _each_part(node.elem, items, depth)
    return out if node.container is list else node.container(out)


def _load_set(node: SetNode, obj: Any, depth: int) -> _Nested:
    items = _sized(obj, "a list")
    found: set[Any] = set()
    hashes = _hash_count(node.elem, len(items))
    for i, item in enumerate(items):
        try:
            value = yield node.elem, item, depth
            if hashes is not None and not hashes.add(value):
                raise _Problem(_CROWDED)
            if value in found:
                raise _Problem(f"duplicate element {value!r} in a set")
            found.add(value)
        except _Problem as problem:
            raise _at(problem, f"[{i}]") from None
    return found if node.container is set else frozenset(found)


_CROWDED = f"more than {MAX_SHARED_HASH} keys share one hash value: refused, since inserting them takes quadratic time"


def _hash_count(key: Node, count: int) -> HashCount | None:
    return HashCount() if count > MAX_SHARED_HASH and hashes_may_crowd(key) else None


def _load_map(node: MapNode, obj: Any, depth: int) -> _Nested:
    as_object = _spelled_as_string(node.key)
    pairs: Sequence[Any]
    if as_object:
        if not isinstance(obj, dict):
            raise _Problem(f"expected an object, got {_show(obj)}")
        _count(len(obj))
        pairs = list(obj.items())
    else:
        pairs = _sized(obj, "a list of [key, value] pairs")
    out: dict[Any, Any] = {}
    hashes = _hash_count(node.key, len(pairs))
    for i, pair in enumerate(pairs):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise _at(_Problem(f"expected a [key, value] pair, got {_show(pair)}"), f"[{i}]")
        raw_key, raw_value = pair
        try:
            key = yield node.key, raw_key, depth
            if hashes is not None and not hashes.add(key):
                raise _Problem(_CROWDED)
            if key in out:
                raise _Problem(f"duplicate key {key!r} in a map")
        except _Problem as problem:
            raise _at(problem, f"[{raw_key!r}]" if as_object else f"[{i}].key") from None
        try:
            out[key] = yield node.value, raw_value, depth
        except _Problem as problem:
            raise _at(problem, f"[{key!r}]") from None
    return out


def _load_option(node: OptionNode, obj: Any, depth: int) -> Any:
    if obj is None:
        return None
    if node.wrapped:
        if not isinstance(obj, dict) or list(obj) != ["Some"]:
            raise _Problem(f'expected null or {{"Some": ...}} for {node.label}, got {_show(obj)}')
        load = _leaf(LOADERS, node.inner)
        if load is None:
            return _load_some(node.inner, obj["Some"], depth)
        return Some(load(node.inner, obj["Some"], depth))
    return _loader(node.inner)(node.inner, obj, depth)  # a generator for the walk, if one


def _load_some(inner: Node, obj: Any, depth: int) -> _Nested:
    return Some((yield inner, obj, depth))


def _load_tuple(node: TupleNode, obj: Any, depth: int) -> _Nested:
    if not isinstance(obj, (list, tuple)) or len(obj) != len(node.items):
        raise _Problem(f"expected a list of {len(node.items)}, got {_show(obj)}")
    out = []
    for i, (item_node, item) in enumerate(zip(node.items, obj)):
        try:
            out.append((yield item_node, item, depth))
        except _Problem as problem:
            raise _at(problem, f"[{i}]") from None
    return tuple(out)


_NO_DEFAULT: Any = object()


def _default(cls: type, name: str) -> Any:
    for f in dataclasses.fields(cls):
        if f.name == name:
            if f.default is not dataclasses.MISSING:
                return f.default
            if f.default_factory is not dataclasses.MISSING:
                return f.default_factory()
    return _NO_DEFAULT


def _load_struct(node: StructNode, obj: Any, depth: int, in_place: Any = None, then: Any = None,
                 values: Any = None) -> Any:
    """The struct, its fields each read in place up to the first that is not: from there on, a
    generator that yields that one to the walk, then calls this again for the next segment
    (``in_place`` and ``then``, into ``values``)."""
    fields = _fields_of(node)
    if in_place is None:
        if depth >= MAX_DEPTH:  # as _deeper, without a call per struct
            raise _too_deep()
        depth += 1
        if not isinstance(obj, dict):
            raise _Problem(f"expected an object with the fields of {node.label}, got {_show(obj)}")
        if not fields.names.issuperset(obj):
            unknown = next(key for key in obj if key not in fields.names)
            names = ", ".join(fields.ordered_names) or "none"
            raise _Problem(f"unknown field {unknown!r} (the fields of {node.label}: {names})")
        in_place, then, values = fields.load, fields.load_then, []
    for name, field_node, load in in_place:
        if name in obj:
            try:
                values.append(load(field_node, obj[name], depth))
            except _Problem as problem:
                raise _at(problem, f".{name}") from None
        else:
            values.append(_field_default(node, name))
    if then is not None:
        name, field_node, rest = then
        return _load_part(node, obj, depth, fields, values, name, field_node, rest)
    try:
        return node.cls(*values) if fields.by_position else construct(node, values)
    except Exception as exc:  # a user's __post_init__ may refuse the values
        raise _Problem(f"{node.label} refused the fields: {exc!r}") from exc


def _load_part(node: StructNode, obj: Any, depth: int, fields: _Fields, values: list[Any], name: str,
               field_node: Node, rest: _Segment | None) -> _Nested:
    if name in obj:
        try:
            values.append((yield field_node, obj[name], depth))
        except _Problem as problem:
            raise _at(problem, f".{name}") from None
    else:
        values.append(_field_default(node, name))
    if rest is None:  # as _load_struct ends
        return _built(node, fields, values)
    in_place, then = rest
    following = _load_struct(node, obj, depth, in_place, then, values)
    return _GoOn(following) if type(following) is GeneratorType else following


def _built(node: StructNode, fields: _Fields, values: list[Any]) -> Any:
    try:
        return node.cls(*values) if fields.by_position else construct(node, values)
    except Exception as exc:  # a user's __post_init__ may refuse the values
        raise _Problem(f"{node.label} refused the fields: {exc!r}") from exc


def _field_default(node: StructNode, name: str) -> Any:
    value = _default(node.cls, name)
    if value is _NO_DEFAULT:
        raise _Problem(f"missing field {name!r} (it has no default)")
    return value


def _load_union(node: UnionNode, obj: Any, depth: int) -> _Nested:
    depth = _deeper(depth)
    if _is_ip_union(node):
        if not isinstance(obj, str):
            raise _Problem(f"expected an IPv4 or IPv6 address as a string, got {_show(obj)}")
        version = 6 if ":" in obj else 4
        for v in node.variants:
            if isinstance(v.node, IPNode) and v.node.version == version:
                return _load_ip(v.node, obj, depth)
        raise _Problem(f"{node.label} has no IPv{version} variant: {_show(obj)}")
    _check_names(node)
    choices = ", ".join(v.name for v in node.variants)
    if not isinstance(obj, dict) or len(obj) != 1:
        raise _Problem(f"expected an object with one key, the variant of {node.label} ({choices}), got {_show(obj)}")
    ((name, inner),) = obj.items()
    for variant in node.variants:
        if variant.name == name:
            try:
                return (yield variant.node, inner, _variant_depth(variant.node, depth))
            except _Problem as problem:
                raise _at(problem, f"<{name}>") from None
    raise _Problem(f"unknown variant {name!r} of {node.label} (expected one of {choices})")


def _load_frame(node: FrameNode, obj: Any, depth: int) -> _Nested:
    if not isinstance(obj, dict) or set(obj) != {"tag", "msg"}:
        raise _Problem(f'expected an object {{"tag": ..., "msg": ...}} for {node.label}, got {_show(obj)}')
    try:
        tag = _load_int(_TAG, obj["tag"], depth)
    except _Problem as problem:
        raise _at(problem, ".tag") from None
    try:
        msg = yield node.union, obj["msg"], depth
    except _Problem as problem:
        raise _at(problem, ".msg") from None
    if node.direct:
        frame: Any = object.__new__(node.cls)
        frame.tag = tag
        frame.msg = msg
        return frame
    try:
        return node.cls(tag, msg)
    except Exception as exc:
        raise _Problem(f"{node.label} refused its tag and message: {exc!r}") from exc


def _load_enum(node: EnumNode, obj: Any, depth: int) -> Any:
    member = node.py_type.__members__.get(obj) if isinstance(obj, str) else None
    if member is None:
        names = ", ".join(repr(m.name) for m in node.members[:12])
        more = ", ..." if len(node.members) > 12 else ""
        raise _Problem(f"expected a member name of {node.label} ({names}{more}), got {_show(obj)}")
    return member


def _load_custom(node: CustomNode, obj: Any, depth: int) -> _Nested:
    form, inner = _custom_form(node)
    if form == "inner":
        return (yield inner, obj, depth)
    if form == "enum":
        return _load_enum(inner, obj, depth)  # type: ignore[arg-type]
    assert node.decode is not None
    data = _base64_bytes(obj)
    reader = ReplayReader(data)
    try:
        value = node.decode(reader)
    except NeedMore as more:
        raise _Problem(f"the custom codec needs {more.missing} more bytes than the data holds") from None
    except DecodeError as exc:
        raise _Problem(exc.reason) from None
    except Exception as exc:
        raise _Problem(f"custom codec failed: {exc!r}") from exc
    if reader.pos != len(data):
        raise _Problem(f"{len(data) - reader.pos} bytes left over after the custom codec's value")
    return value


def _load_convert(node: ConvertNode, obj: Any, depth: int) -> _Nested:
    wire_value = yield node.inner, obj, depth
    if node.from_wire is None:
        return wire_value
    try:
        return node.from_wire(wire_value)
    except Exception as exc:
        raise _Problem(f"conversion from {node.inner.label} failed: {exc!r}") from exc


LOADERS: dict[type[Node], _Dump] = {
    IntNode: _load_int,
    FloatNode: _load_float,
    BoolNode: _load_bool,
    UnitNode: _load_unit,
    StrNode: _load_str,
    UrlNode: _load_url,
    BytesNode: _load_bytes,
    TimeNode: _load_time,
    IPNode: _load_ip,
    SeqNode: _load_seq,
    SetNode: _load_set,
    MapNode: _load_map,
    OptionNode: _load_option,
    TupleNode: _load_tuple,
    StructNode: _load_struct,
    UnionNode: _load_union,
    FrameNode: _load_frame,
    EnumNode: _load_enum,
    CustomNode: _load_custom,
    ConvertNode: _load_convert,
}


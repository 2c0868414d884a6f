"""Property tests over many wire types, with values from ``jetwire.testing.strategy``.

For every type in ``TYPES``:

* values round-trip, ``byte_size`` is the encoded length, and ``decode_prefix`` finds the value
  between arbitrary prefix and suffix bytes;
* the generated fast path and the reference interpreter agree, encoding values and decoding
  any bytes (random, or valid encodings with bytes flipped, inserted, deleted, cut off);
* decoding any bytes returns a value or raises ``DecodeError``, nothing else; what it returns
  encodes again and decodes to the same value;
* the strategies keep to the bounds of the wire (every generated value conforms to the plan).
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import enum
import io
import ipaddress
import math
import struct
import sys
import uuid
from decimal import Decimal
from fractions import Fraction
from typing import Annotated, Any, Generic, Optional, TypeVar

import pytest
from hypothesis import HealthCheck, example, find, given, settings
from hypothesis import strategies as st

import jetwire as jw
from jetwire import p9
from jetwire.compiler import interpret
from jetwire.compiler.plan import (
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
)
from jetwire.compiler.planner import plan
from jetwire.compiler.values import variant_of
from jetwire.testing import register_strategy, strategy

T = TypeVar("T")

# ---------------------------------------------------------------------------------------------
# The types


class Color(enum.Enum):
    RED = "r"
    GREEN = "g"
    BLUE = "b"


@jw.wireformat(frozen=True, order=True)
class Point:
    x: jw.i32
    y: jw.i32


@jw.wireformat
class Line:
    start: Point
    end: Point
    label: str
    color: Color


@jw.wireformat
class Scalars:
    a: jw.u8
    b: jw.u16
    c: jw.u32
    d: jw.u64
    e: jw.i16
    f: jw.i32
    g: jw.i64
    h: jw.f32
    i: jw.f64
    j: bool
    k: float


@jw.wireformat
class Wide:
    signed: jw.i128
    unsigned: jw.u128
    pair: tuple[jw.i128, jw.u128]


@jw.wireformat
class Optionals:
    name: str | None
    count: jw.u32 | None
    nested: jw.Option[jw.u8 | None]
    point: Point | None
    some_unit: jw.Option[None]


@jw.wireformat
class Collections:
    points: list[Point]
    scores: dict[str, jw.u32]
    tags: set[jw.u16]
    names: frozenset[str]
    fixed: tuple[jw.u8, str, jw.f64]
    many: tuple[jw.u32, ...]
    by_color: dict[Color, list[jw.i16]]
    maybe_set: frozenset[jw.Option[jw.u8]]
    pairs: set[tuple[jw.u8, str]]
    nested: list[dict[jw.u8, str | None]]


@jw.wireenum(frozen=True, order=True)
class Shape:
    class Circle:
        radius: jw.f64

    class Rect:
        width: jw.u32
        height: jw.u32

    class Polygon:
        corners: tuple[Point, ...]

    class Empty:
        pass


@jw.wireformat
class Drawing:
    shapes: list[Shape]
    unique: set[Shape]
    background: Shape | None


@jw.wireformat
class Tree:
    value: jw.u16
    children: list[Tree]


@jw.wireenum
class Expr:
    class Lit:
        value: jw.i64

    class Neg:
        inner: Expr

    class Add:
        left: Expr
        right: Expr

    class Var:
        name: str


@jw.wireformat
class Chain:
    label: str
    next: Chain | None = None


@jw.wireformat
class Page(Generic[T]):
    items: list[T]
    cursor: str | None = None
    total: jw.u64 = 0


@jw.wireformat
class Network:
    ip: jw.IpAddr
    v4: ipaddress.IPv4Address
    v6: ipaddress.IPv6Address
    peer: jw.SocketAddr
    peers: list[jw.SocketAddr]
    v4_socket: jw.SocketAddrV4


@jw.wireformat
class Event:
    at: datetime.datetime
    link: jw.Url
    payload: bytes
    error: jw.Error | None
    level: Annotated[jw.Level, jw.With(jw.LevelCodec)]


@jw.wireformat
class WithSkip:
    name: str
    cache: Annotated[list[str], jw.Skip] = dataclasses.field(default_factory=list)
    count: jw.u32 = 7


@jw.wireformat
class Late:
    a: jw.u8
    b: jw.u16 = dataclasses.field(init=False, default=0)


@jw.wireformat(frozen=True, slots=True, kw_only=True)
class KwFrozen:
    key: str
    value: jw.i64


class U24:
    """A 3-byte unsigned integer: a custom codec, with a strategy registered for it."""

    __name__ = "U24"

    @staticmethod
    def byte_size(value: int) -> int:
        return 3

    @staticmethod
    def encode(value: int, writer: jw.Writer) -> None:
        writer.write(value.to_bytes(3, "little"))

    @staticmethod
    def decode(reader: jw.Reader) -> int:
        return int.from_bytes(reader.read(3), "little")


def _uuid_from_wire(raw: bytes) -> uuid.UUID:
    return uuid.UUID(bytes=raw)


register_strategy(U24, st.integers(0, 2**24 - 1))
register_strategy(uuid.UUID, st.uuids())


@jw.wireformat
class Custom:
    small: Annotated[int, jw.With(U24)]
    ident: Annotated[uuid.UUID, jw.As(bytes, lambda u: u.bytes, _uuid_from_wire)]
    passthrough: Annotated[int, jw.As(jw.u16)]


@jw.wireformat
class D8:
    a: jw.u8
    text: str


@jw.wireformat
class D7:
    inner: D8
    b: jw.u16


@jw.wireformat
class D6:
    c: jw.i32
    inner: D7 | None


@jw.wireformat
class D5:
    inner: D6
    d: bool


@jw.wireformat
class D4:
    inner: list[D5]


@jw.wireformat
class D3:
    e: jw.u64
    inner: D4
    f: jw.f32


@jw.wireformat
class D2:
    inner: tuple[D3, jw.u8]


@jw.wireformat
class Deep:
    """Nested deeper than the code generator inlines (6 levels)."""

    inner: D2
    tail: D8


@jw.wireformat
class Everything:
    """Structs, enums, generics and custom codecs side by side, inlined into one codec."""

    line: Line
    scalars: Scalars
    optionals: Optionals
    shape: Shape
    page: Page[Point]
    custom: Custom


@jw.wireformat(frozen=True)
class Nothing:
    """No wire fields: a collection of these takes no bytes per element."""


@jw.wireenum
class Mark:
    class Blank:
        pass

    class Nones:
        nones: list[None]


@jw.wireformat
class ZeroWidth:
    """Collections whose elements take no bytes, inlined and in other units (r[jetstream.wireformat.unit],
    r[jetstream.wireformat.vec], set, map): decoding counts them across the whole value."""

    nones: list[None]
    empties: list[Nothing]
    nested: list[list[Nothing]]
    units: tuple[tuple[None, tuple[()]], ...]
    one: frozenset[Nothing]
    keyed: dict[None, Nothing]
    marks: list[Mark]
    kids: list[ZeroWidth]


class ZeroWidthFrame(jw.Frame[Annotated[ZeroWidth | Point, jw.Tagged({1: ZeroWidth, 2: Point})]]):
    __slots__ = ()


class ShapeFrame(jw.Frame[Annotated[Point | Line | Shape, jw.Tagged({3: Point, 200: Line, 7: Shape})]]):
    """A frame over structs and a whole enum, with sparse message numbers."""

    __slots__ = ()


TYPES: list[Any] = [
    # scalars
    jw.u8, jw.u16, jw.u32, jw.u64, jw.u128, jw.i16, jw.i32, jw.i64, jw.i128, jw.f32, jw.f64,
    bool, str, bytes, type(None),
    # standard types
    datetime.datetime, jw.Url, ipaddress.IPv6Address, jw.IpAddr, jw.SocketAddr, jw.Error, Color,
    # generic containers
    list[jw.u16], tuple[jw.u32, ...], dict[str, jw.u32], set[jw.i16], frozenset[str],
    tuple[jw.u8, str, jw.f64], tuple[()], Optional[str], jw.Option[Optional[jw.u8]],
    jw.Option[jw.Option[bool]], list[Point], dict[Color, Point], list[Shape | None],
    # classes
    Point, Line, Scalars, Wide, Optionals, Collections, Shape, Drawing, Tree, Expr, Chain,
    Page[jw.u32], Page[Shape], Network, Event, WithSkip, Late, KwFrozen, Custom, Deep,
    Everything,
    # names that are any bytes, and frames (size[4] type[1] tag[2] body)
    jw.fsstr, list[jw.fsstr], ShapeFrame, p9.Tframe, p9.Rframe,
    # zero-width elements: bounded by a budget per decode, not refused
    list[None], list[list[None]], tuple[tuple[()], ...], set[None], frozenset[Nothing],
    dict[None, tuple[()]], list[Nothing], Mark, ZeroWidth, ZeroWidthFrame,
]


def _id(tp: Any) -> str:
    return plan(tp).label


PLANS = {id(tp): plan(tp) for tp in TYPES}
types_param = pytest.mark.parametrize("tp", TYPES, ids=[_id(t) for t in TYPES])


# ---------------------------------------------------------------------------------------------
# Helpers


def same(a: Any, b: Any) -> bool:
    """Equality that holds for NaNs with the same bits (decoded from the same bytes)."""
    if a == b:
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return struct.pack("<d", a) == struct.pack("<d", b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a.items(), b.items()))
    if isinstance(a, (set, frozenset)):
        return len(a) == len(b) and repr(sorted(map(repr, a))) == repr(sorted(map(repr, b)))
    if isinstance(a, jw.Some):
        return same(a.value, b.value)
    if dataclasses.is_dataclass(a):
        return all(
            same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a) if f.compare
        )
    return False


def show(value: Any) -> str:
    try:
        text = repr(value)
    except RecursionError:
        return f"<a {type(value).__name__} too deep to show>"
    return text if len(text) <= 400 else text[:400] + "..."


def decode_both(tp: Any, data: bytes) -> tuple[Any, Any]:
    """Decodes ``data`` with the fast path and with the interpreter; they must agree.

    Returns the value, or ``FAILED`` when both refuse the bytes. Anything but a value or a
    DecodeError from ``jw.decode`` fails the test.
    """
    node = PLANS[id(tp)]
    try:
        fast: Any = jw.decode(tp, data)
    except jw.DecodeError:
        fast = FAILED
    try:
        slow, end = interpret.decode_buffer(node, data, 0, node.label)
        if end != len(data):
            slow = FAILED
    except jw.DecodeError:
        slow = FAILED
    if fast is FAILED or slow is FAILED:
        assert fast is slow, f"fast path: {show(fast)}, interpreter: {show(slow)}"
    else:
        assert same(fast, slow), f"fast path: {show(fast)}, interpreter: {show(slow)}"
    return fast, slow


def decode_prefix_both(tp: Any, data: bytes, offset: int) -> None:
    node = PLANS[id(tp)]
    try:
        fast: Any = jw.decode_prefix(tp, data, offset)
    except jw.DecodeError:
        fast = FAILED
    try:
        slow: Any = interpret.decode_buffer(node, data, offset, node.label)
    except jw.DecodeError:
        slow = FAILED
    if fast is FAILED or slow is FAILED:
        assert fast is slow, f"fast path: {show(fast)}, interpreter: {show(slow)}"
    else:
        assert same(fast, slow), f"fast path: {show(fast)}, interpreter: {show(slow)}"


def refused_by_both(tp: Any, value: Any) -> None:
    """The fast path and the interpreter both refuse to encode ``value`` as ``tp``."""
    node = plan(tp)
    with pytest.raises(jw.EncodeError):
        jw.encode(value, tp)
    with pytest.raises(jw.EncodeError):
        interpret.encode_checked(node, value, node.label)


FAILED: Any = type("Failed", (), {"__repr__": lambda self: "<refused>"})()


def check_any_bytes(tp: Any, data: bytes) -> None:
    """What must hold for any input bytes."""
    value, _ = decode_both(tp, data)
    decode_prefix_both(tp, data, 0)
    if value is FAILED:
        return
    # Whatever decodes must encode again (possibly to other bytes, e.g. a set out of order)
    # and decode to the same value.
    again = jw.encode(value, tp)
    assert len(again) == jw.byte_size(value, tp)
    assert same(jw.decode(tp, again), value)


OPS = ("set", "flip", "insert", "delete", "truncate", "append")
# (operation, where modulo the length, a byte): few, cheap draws
MUTATIONS = st.lists(
    st.tuples(st.integers(0, len(OPS) - 1), st.integers(0, 0xFFFF), st.integers(0, 255)),
    min_size=1,
    max_size=4,
)


def small_strategy(tp: Any) -> st.SearchStrategy[Any]:
    # small values: cheaper to make, and a mutation is more likely to hit a length or tag
    return strategy(tp, max_size=4, max_text=12, max_bytes=12)


@st.composite
def mutated(draw: st.DrawFn, tp: Any) -> bytes:
    data = bytearray(jw.encode(draw(small_strategy(tp)), tp))
    for op, where, byte in draw(MUTATIONS):
        at = where % (len(data) + 1)
        if OPS[op] == "set" and at < len(data):
            data[at] = byte
        elif OPS[op] == "flip" and at < len(data):
            data[at] ^= 1 << (byte % 8)
        elif OPS[op] == "insert":
            data[at:at] = bytes([byte])
        elif OPS[op] == "delete":
            del data[at:at + 1 + byte % 3]
        elif OPS[op] == "truncate":
            del data[at:]
        elif OPS[op] == "append":
            data.append(byte)
    return bytes(data)


# Values that are not what the type says, put in place of a part of a valid value.
ODD_VALUES = st.sampled_from([
    True, False, 0, 1, -1, 2**64, -(2**127) - 1, 2**128, 1.5, -0.0, math.inf, math.nan,
    "", "x", "http://x/", "\ud800", b"", b"x", bytearray(b"xy"), memoryview(b"x"), None,
    [], (), {}, set(), frozenset({1}), [1], [None], (1, 2), {1: 2}, {"a": None}, {1},
    jw.Some(1), jw.Some(None), Decimal("1.5"), Fraction(1, 3), 1j, object(), Color.RED,
    jw.Level.INFO, Point(1, 2), Shape.Empty(), Tree(1, []), ipaddress.IPv4Address(1),
    ipaddress.IPv6Address(1), datetime.datetime(2000, 1, 1),
    datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc),
    datetime.datetime(1969, 12, 31, tzinfo=datetime.timezone.utc),
]) | st.integers() | st.text(max_size=3)


@st.composite
def corrupted(draw: st.DrawFn, tp: Any) -> Any:
    return corrupt(draw, PLANS[id(tp)], draw(small_strategy(tp)))


def corrupt(draw: st.DrawFn, node: Node, value: Any) -> Any:
    """``value`` with itself or one of its parts replaced by an odd value."""
    if draw(st.integers(0, 2)) == 0:
        odd = draw(ODD_VALUES)
        return odd
    if isinstance(node, StructNode) and node.wire_fields:
        f = draw(st.sampled_from(node.wire_fields))
        assert f.node is not None
        changed = copy.copy(value)
        object.__setattr__(changed, f.name, corrupt(draw, f.node, getattr(value, f.name)))
        return changed
    if isinstance(node, UnionNode):
        variant = variant_of(node, value)
        assert variant is not None
        return corrupt(draw, variant.node, value)
    if isinstance(node, (SeqNode, TupleNode)) and value:
        at = draw(st.integers(0, len(value) - 1))
        elem = node.elem if isinstance(node, SeqNode) else node.items[at]
        items = list(value)
        items[at] = corrupt(draw, elem, items[at])
        return type(value)(items)
    if isinstance(node, MapNode) and value:
        key = draw(st.sampled_from(sorted(value, key=repr)))
        return {**value, key: corrupt(draw, node.value, value[key])}
    if isinstance(node, OptionNode) and value is not None:
        if node.wrapped:
            return jw.Some(corrupt(draw, node.inner, value.value))
        return corrupt(draw, node.inner, value)
    odd = draw(ODD_VALUES)
    return odd


def check_any_value(tp: Any, value: Any) -> None:
    """Encoding any value: the same bytes from both paths, or EncodeError from both."""
    node = PLANS[id(tp)]
    try:
        fast: Any = jw.encode(value, tp)
    except jw.EncodeError:
        fast = FAILED
    try:
        slow: Any = interpret.encode_checked(node, value, node.label)
    except jw.EncodeError:
        slow = FAILED
    assert fast == slow, f"fast path: {show(fast)}, interpreter: {show(slow)}"
    if fast is not FAILED:
        assert jw.byte_size(value, tp) == len(fast)


def conforms(node: Node, value: Any) -> None:
    """Asserts that ``value`` is within the wire limits of ``node``."""
    if isinstance(node, IntNode):
        assert type(value) is int and node.kind.min <= value <= node.kind.max, (node, value)
    elif isinstance(node, FloatNode):
        assert type(value) is float and not math.isnan(value)
        if node.kind.size == 4:
            assert struct.unpack("<f", struct.pack("<f", value))[0] == value
    elif isinstance(node, BoolNode):
        assert type(value) is bool
    elif isinstance(node, UnitNode):
        assert value is None
    elif isinstance(node, (StrNode, UrlNode)):
        errors = node.errors if isinstance(node, StrNode) else "strict"
        assert isinstance(value, str) and len(value.encode("utf-8", errors)) <= jw.MAX_STRING_BYTES
        if isinstance(node, UrlNode):
            assert type(value) is jw.Url
    elif isinstance(node, BytesNode):
        assert type(value) is bytes and len(value) <= jw.MAX_DATA_BYTES
    elif isinstance(node, TimeNode):
        assert value.utcoffset() == datetime.timedelta(0)
        assert value.microsecond % 1000 == 0
        assert 1970 <= value.year <= 9999
    elif isinstance(node, IPNode):
        assert type(value) is (ipaddress.IPv4Address if node.version == 4 else ipaddress.IPv6Address)
    elif isinstance(node, SeqNode):
        assert type(value) is node.container and len(value) <= jw.MAX_ELEMENTS
        for item in value:
            conforms(node.elem, item)
    elif isinstance(node, SetNode):
        assert type(value) is node.container and len(value) <= jw.MAX_ELEMENTS
        for item in value:
            conforms(node.elem, item)
    elif isinstance(node, MapNode):
        assert type(value) is dict and len(value) <= jw.MAX_ELEMENTS
        for k, v in value.items():
            conforms(node.key, k)
            conforms(node.value, v)
    elif isinstance(node, OptionNode):
        if value is not None:
            if node.wrapped:
                assert type(value) is jw.Some
                value = value.value
            conforms(node.inner, value)
    elif isinstance(node, TupleNode):
        assert type(value) is tuple and len(value) == len(node.items)
        for item_node, item in zip(node.items, value):
            conforms(item_node, item)
    elif isinstance(node, StructNode):
        assert type(value) is node.cls
        for f in node.wire_fields:
            assert f.node is not None
            conforms(f.node, getattr(value, f.name))
    elif isinstance(node, FrameNode):
        assert type(value) is node.cls and 0 <= value.tag <= 0xFFFF
        conforms(node.union, value.msg)
    elif isinstance(node, UnionNode):
        variant = variant_of(node, value)
        assert variant is not None
        conforms(variant.node, value)
    elif isinstance(node, EnumNode):
        assert value in node.members
    elif isinstance(node, (CustomNode, ConvertNode)):
        pass  # user-defined: the registered strategy is the user's
    else:
        raise AssertionError(f"unknown node {node!r}")


# ---------------------------------------------------------------------------------------------
# Properties over every type


FRAME_BYTES = st.tuples(st.binary(max_size=8), st.binary(max_size=8))


@types_param
@given(data=st.data())
def test_round_trip(tp: Any, data: st.DataObject) -> None:
    node = PLANS[id(tp)]
    value = data.draw(strategy(tp), label="value")
    conforms(node, value)  # the strategy keeps to the limits of the wire
    encoded = jw.encode(value, tp)
    assert jw.decode(tp, encoded) == value
    assert len(encoded) == jw.byte_size(value, tp)
    if node.fixed is not None:
        assert len(encoded) == node.fixed
    # the reference interpreter writes and reads the same bytes
    assert interpret.encode_checked(node, value, node.label) == encoded
    assert interpret.decode_buffer(node, encoded, 0, node.label) == (value, len(encoded))
    # a value between other bytes
    prefix, suffix = data.draw(FRAME_BYTES, label="prefix, suffix")
    framed = prefix + encoded + suffix
    assert jw.decode_prefix(tp, framed, len(prefix)) == (value, len(prefix) + len(encoded))
    assert jw.decode_prefix(tp, bytearray(framed), len(prefix)) == (value, len(prefix) + len(encoded))
    assert jw.decode(tp, memoryview(framed)[len(prefix):len(framed) - len(suffix)]) == value


TAKE_BYTES = [tp for tp in TYPES if PLANS[id(tp)].min_size > 0]  # the rest may have no prefix to cut


@pytest.mark.parametrize("tp", TAKE_BYTES, ids=[_id(t) for t in TAKE_BYTES])
@settings(max_examples=25)  # one property of the decoders' end-of-data checks, not of the values
@given(data=st.data())
def test_every_cut_of_a_value_is_truncated(tp: Any, data: st.DataObject) -> None:
    """A strict prefix of a valid encoding can only run out: ``TruncatedError`` (the kind a
    reader waits on), never another refusal, on the fast path and in the interpreter."""
    node = PLANS[id(tp)]
    encoded = jw.encode(data.draw(strategy(tp), label="value"), tp)
    cut = data.draw(st.integers(0, len(encoded) - 1), label="cut")
    with pytest.raises(jw.TruncatedError):
        jw.decode(tp, encoded[:cut])
    with pytest.raises(jw.TruncatedError):
        interpret.decode_buffer(node, encoded[:cut], 0, node.label)


RANDOM_BYTES = st.binary(max_size=64)


@types_param
@given(data=st.data())
def test_garbage_in(tp: Any, data: st.DataObject) -> None:
    """Anything in (random bytes, valid encodings with bytes changed, inserted, deleted or cut
    off, values with a part replaced by something else): the fast path and the interpreter
    agree, and nothing but a value, DecodeError or EncodeError comes out."""
    kind = data.draw(st.sampled_from(["random bytes", "mutated encoding", "corrupted value"]))
    if kind == "random bytes":
        check_any_bytes(tp, data.draw(RANDOM_BYTES, label="bytes"))
    elif kind == "mutated encoding":
        check_any_bytes(tp, data.draw(mutated(tp), label="bytes"))
    else:
        check_any_value(tp, data.draw(corrupted(tp), label="value"))


# ---------------------------------------------------------------------------------------------
# The strategies' bounds


INT_WIDTHS = [jw.u8, jw.u16, jw.u32, jw.u64, jw.u128, jw.i16, jw.i32, jw.i64, jw.i128]


@pytest.mark.parametrize("tp", INT_WIDTHS, ids=[_id(t) for t in INT_WIDTHS])
def test_integer_bounds_are_exact(tp: Any) -> None:
    kind = plan(tp).kind
    seen_min = find(strategy(tp), lambda v: v <= kind.min)
    seen_max = find(strategy(tp), lambda v: v >= kind.max)
    assert (seen_min, seen_max) == (kind.min, kind.max)


@given(st.lists(strategy(jw.u16), max_size=50))
def test_u16_values_in_range(values: list[int]) -> None:
    assert all(0 <= v <= 0xFFFF for v in values)


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], max_examples=20)
@given(strategy(str, max_text=30_000))
def test_long_strings_fit_the_wire(text: str) -> None:
    assert len(text.encode("utf-8")) <= jw.MAX_STRING_BYTES
    assert jw.decode(str, jw.encode(text, str)) == text


@given(strategy(str))
def test_strings_are_valid_utf8(text: str) -> None:
    text.encode("utf-8")  # no lone surrogates
    assert len(text) <= 40


@given(strategy(datetime.datetime))
def test_datetimes_are_utc_milliseconds(value: datetime.datetime) -> None:
    assert value.tzinfo == datetime.timezone.utc
    assert value.microsecond % 1000 == 0


@given(strategy(jw.f64, allow_nan=True))
@example(float("nan"))
def test_allow_nan_encodes(value: float) -> None:
    again = jw.decode(jw.f64, jw.encode(value, jw.f64))
    assert struct.pack("<d", again) == struct.pack("<d", value)


def test_recursive_types_terminate() -> None:
    # max_depth unrolls recursion: the deepest Tree has max_depth levels
    def depth(t: Tree) -> int:
        return 1 + max((depth(c) for c in t.children), default=0)

    @settings(max_examples=50)
    @given(strategy(Tree, max_depth=2))
    def check(tree: Tree) -> None:
        assert depth(tree) <= 2

    check()


def test_custom_codec_needs_a_registered_strategy() -> None:
    class Opaque:
        __name__ = "Opaque"

        @staticmethod
        def byte_size(value: Any) -> int:
            return 0

        @staticmethod
        def encode(value: Any, writer: jw.Writer) -> None:
            pass

        @staticmethod
        def decode(reader: jw.Reader) -> Any:
            return None

    tp = Annotated[int, jw.With(Opaque)]
    with pytest.raises(jw.SchemaError, match="register_strategy"):
        strategy(tp)
    register_strategy(tp, st.just(5))

    @given(strategy(tp))
    def check(value: int) -> None:
        assert value == 5

    check()


def test_level_codec_has_a_default_strategy() -> None:
    tp = Annotated[jw.Level, jw.With(jw.LevelCodec)]

    @given(strategy(tp))
    def check(level: jw.Level) -> None:
        assert jw.decode(tp, jw.encode(level, tp)) is level

    check()


def test_unconvertible_as_needs_a_registered_strategy() -> None:
    tp = Annotated[complex, jw.As(str, str, complex)]
    with pytest.raises(jw.SchemaError, match="register_strategy"):
        strategy(tp)


# ---------------------------------------------------------------------------------------------
# Encoding invalid values: EncodeError from both paths, and nothing else


@st.composite
def out_of_range(draw: st.DrawFn) -> tuple[Any, int]:
    tp = draw(st.sampled_from(INT_WIDTHS))
    kind = plan(tp).kind
    return tp, draw(st.integers(max_value=kind.min - 1) | st.integers(min_value=kind.max + 1))


@given(out_of_range())
def test_out_of_range_ints_are_refused(case: tuple[Any, int]) -> None:
    tp, value = case
    refused_by_both(tp, value)


@given(st.floats(allow_nan=False).filter(lambda f: abs(f) > 3.5e38 and not math.isinf(f)))
def test_f32_overflow_is_refused(value: float) -> None:
    with pytest.raises(jw.EncodeError):
        jw.encode(value, jw.f32)


# ---------------------------------------------------------------------------------------------
# Deep nesting: DecodeError / EncodeError, not RecursionError


@pytest.mark.parametrize("depth", [50, 5_000, sys.getrecursionlimit() * 2])
def test_deeply_nested_input(depth: int) -> None:
    # Expr.Neg is tag 1: Neg(Neg(...(Lit(0))))
    data = b"\x01" * depth + b"\x00" + bytes(8)
    try:
        value = jw.decode(Expr, data)
    except jw.DecodeError:
        return
    assert jw.decode(Expr, jw.encode(value, Expr)) == value


@pytest.mark.parametrize("depth", [50, 5_000, sys.getrecursionlimit() * 2])
def test_deeply_nested_value(depth: int) -> None:
    value: Any = Expr.Lit(0)
    for _ in range(depth):
        value = Expr.Neg(value)
    try:
        data = jw.encode(value, Expr)
    except jw.EncodeError:
        return
    assert len(data) == depth + 9


# ---------------------------------------------------------------------------------------------
# Regressions: jetwire bugs these properties found, fixed since


@pytest.mark.parametrize("tp,value", [
    (jw.f64, True), (jw.f32, False), (jw.f64, Decimal("1.5")), (jw.f64, Fraction(1, 2)),
    (list[jw.f64], [True]),
])
def test_fast_path_encodes_non_floats(tp: Any, value: Any) -> None:
    refused_by_both(tp, value)


@pytest.mark.parametrize("tp,value", [
    (tuple[str, str], "ab"), (tuple[jw.u8, jw.u8], b"ab"), (tuple[jw.u8], {1: 2}),
    (tuple[jw.u8], {1}), (tuple[()], {}),
])
def test_fast_path_encodes_any_iterable_as_a_tuple(tp: Any, value: Any) -> None:
    refused_by_both(tp, value)


@pytest.mark.parametrize("tp,value", [
    (str, Point(1, 2)), (tuple[jw.u8, str, jw.f64], (0, Point(1, 2), 0.0)), (list[str], [Tree(1, [])]),
])
def test_fast_path_encodes_whatever_has_encode_as_str(tp: Any, value: Any) -> None:
    refused_by_both(tp, value)


@jw.wireformat
class Unhashable:  # eq=True without frozen=True: instances cannot be set elements or dict keys
    x: jw.u8


@pytest.mark.parametrize("tp,data", [
    (set[Unhashable], b"\x01\x00\x05"),
    (frozenset[list[jw.u8]], b"\x01\x00\x00\x00"),
    (dict[list[jw.u8], jw.u8], b"\x01\x00\x00\x00\x07"),
])
def test_unhashable_set_elements(tp: Any, data: bytes) -> None:
    try:
        codec = jw.Codec(tp)
    except jw.SchemaError:
        return  # refusing the type where it is declared is a fine answer too
    with pytest.raises(jw.DecodeError):
        codec.decode(data)


def _deep_tree(depth: int) -> bytes:
    """A Tree nested ``depth`` levels: each node has value 0 and one child, the last none."""
    return b"\x00\x00\x01\x00" * depth + b"\x00\x00\x00\x00"


@pytest.mark.parametrize("depth", [150, 199, 200, 600])
def test_deep_nesting_same_limit_everywhere(depth: int) -> None:
    """r[jetstream.wireformat.box]: one nesting limit (jetwire.MAX_DEPTH) for every reader."""
    data = _deep_tree(depth)
    decode_both(Tree, data)
    if depth + 1 <= jw.MAX_DEPTH:
        assert jw.read_value(Tree, io.BytesIO(data)) == jw.decode(Tree, data)
        assert "decoded:" in jw.explain(Tree, data)
    else:
        for read in (lambda: jw.decode(Tree, data), lambda: jw.read_value(Tree, io.BytesIO(data))):
            with pytest.raises(jw.DecodeError, match="nesting too deep"):
                read()


@pytest.mark.parametrize("tp,value", [
    (dict[Color, Point], {1: Point(1, 2)}), (set[Color], {1}),
    (frozenset[Color | None], frozenset({"red"})), (dict[tuple[Color, jw.u8], str], {(1, 2): ""}),
])
def test_enum_keys_that_are_not_members(tp: Any, value: Any) -> None:
    with pytest.raises(jw.EncodeError):
        jw.encode(value, tp)

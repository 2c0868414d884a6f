"""The wire types the fuzzer decodes: every kind of plan node, alone and nested.

Add a type by declaring it here and listing it in ``CATALOGUE`` under a short unique name
(the name is what ``--type`` selects and what a finding reports). A field written by user code
(``With``, ``As``) needs a value generator: register it in ``CUSTOM_VALUES`` keyed by its codec.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import enum
import ipaddress
import random
from typing import Annotated, Any, Generic, Optional, TypeVar

import jetwire as jw
from jetwire import p9

T = TypeVar("T")


class Color(enum.Enum):
    RED = "r"
    GREEN = "g"
    BLUE = "b"


@jw.wireformat(frozen=True, order=True)
class Point:
    x: jw.i32
    y: jw.i32


@jw.wireformat
class Scalars:
    a: jw.u8
    b: jw.u16
    c: jw.u32
    d: jw.u64
    e: jw.u128
    f: jw.i16
    g: jw.i32
    h: jw.i64
    i: jw.i128
    j: jw.usize
    k: jw.isize
    m: jw.f32
    n: jw.f64
    o: bool
    p: float


@jw.wireformat
class Texts:
    strict: str
    name: jw.fsstr
    data: bytes
    link: jw.Url
    at: datetime.datetime
    v4: ipaddress.IPv4Address
    v6: ipaddress.IPv6Address
    nothing: None


@jw.wireformat
class Optionals:
    name: Optional[str]
    count: Optional[jw.u32]
    nested: jw.Option[Optional[jw.u8]]
    point: Optional[Point]
    unit: jw.Option[None]


@jw.wireformat
class Collections:
    points: list[Point]
    scores: dict[str, jw.u32]
    tags: set[jw.u16]
    names: frozenset[str]
    fixed: tuple[jw.u8, str, jw.f64]
    many: tuple[jw.u32, ...]
    queue: collections.deque[jw.i16]
    by_color: dict[Color, list[jw.i16]]
    pairs: set[tuple[jw.u8, str]]
    nested: list[dict[jw.u8, Optional[str]]]


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


@jw.wireformat(frozen=True)
class FrozenKey:
    """Hashable but not ordered by Python: as a key, ordered as Rust's derived Ord would."""

    name: str
    n: jw.u8


@jw.wireenum(frozen=True)
class KeyShape:
    class Dot:
        pass

    class Sized:
        size: jw.u16


@jw.wireformat
class Drawing:
    shapes: list[Shape]
    unique: set[Shape]
    background: Optional[Shape]


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
class Ping:
    """Mutual recursion: Ping names Pong before Pong exists (planning deferred to first use)."""

    n: jw.u8
    pong: Optional[Pong]


@jw.wireformat
class Pong:
    label: str
    pings: list[Ping]


@jw.wireformat
class Page(Generic[T]):
    items: list[T]
    cursor: Optional[str] = None
    total: jw.u64 = 0


@jw.wireformat
class Network:
    ip: jw.IpAddr
    peer: jw.SocketAddr
    v4_socket: jw.SocketAddrV4
    v6_socket: jw.SocketAddrV6


@jw.wireformat
class Logged:
    error: Optional[jw.Error]
    level: Annotated[jw.Level, jw.With(jw.LevelCodec)]


@jw.wireformat
class Markers:
    name: str
    cache: Annotated[list[str], jw.Skip] = dataclasses.field(default_factory=list)
    count: jw.u32 = 7
    late: jw.u16 = dataclasses.field(init=False, default=0)


class U24:
    """A 3-byte unsigned integer: a user's codec."""

    @staticmethod
    def byte_size(value: int) -> int:
        return 3

    @staticmethod
    def encode(value: int, writer: jw.Writer) -> None:
        writer.write(value.to_bytes(3, "little"))

    @staticmethod
    def decode(reader: jw.Reader) -> int:
        return int.from_bytes(reader.read(3), "little")


def _celsius_to_wire(value: float) -> int:
    return round(value * 100)


def _celsius_from_wire(value: int) -> float:
    return value / 100


@jw.wireformat
class Custom:
    small: Annotated[int, jw.With(U24)]
    celsius: Annotated[float, jw.As(jw.i32, _celsius_to_wire, _celsius_from_wire)]
    passthrough: Annotated[int, jw.As(jw.u16)]
    many: list[Annotated[int, jw.With(U24)]]


def _write_reversed(value: str, writer: jw.Writer) -> None:
    raw = value[::-1].encode("utf-8")  # strict, as the decode hook reads it
    writer.write(len(raw).to_bytes(2, "little") + raw)


def _read_reversed(reader: jw.Reader) -> str:
    size = int.from_bytes(reader.read(2), "little")
    return reader.read(size).decode("utf-8")[::-1]


@jw.wireformat
class Hooked:
    """Fields written by hooks in one direction and by their wire type in the other."""

    backwards: Annotated[
        str, jw.EncodeWith(_write_reversed), jw.DecodeWith(_read_reversed),
        jw.SizeWith(lambda v: 2 + len(v.encode("utf-8"))),
    ]
    written: Annotated[jw.u16, jw.EncodeWith(lambda v, w: w.write(v.to_bytes(2, "little"))), jw.SizeWith(lambda v: 2)]
    counted: Annotated[list[jw.u8], jw.DecodeWith(lambda r: list(r.read(int.from_bytes(r.read(2), "little"))))]
    told: Annotated[int, jw.Into(jw.u32, int)]
    given: Annotated[str, jw.From(str, str.lower)]


@jw.wireformat(frozen=True, slots=True, kw_only=True)
class KwFrozen:
    key: str
    value: jw.i64


@jw.wireformat
class D4:
    a: jw.u8
    text: str


@jw.wireformat
class D3:
    inner: Optional[D4]
    b: jw.u16


@jw.wireformat
class D2:
    items: list[D3]
    c: bool


@jw.wireformat
class D1:
    inner: tuple[D2, jw.u8]
    d: jw.f32


@jw.wireformat
class Deep:
    """Nested deeper than the code generator inlines."""

    inner: D1
    tail: D4


@jw.wireformat(frozen=True)
class Blank:
    """No wire fields: a collection of these takes no bytes per element."""


@jw.wireenum
class Mark:
    class Empty:
        pass

    class Nones:
        nones: list[None]


@jw.wireformat
class ZeroWidth:
    nones: list[None]
    blanks: list[Blank]
    nested: list[list[Blank]]
    units: tuple[tuple[None, tuple[()]], ...]
    one: frozenset[Blank]
    keyed: dict[None, Blank]
    marks: list[Mark]
    kids: list[ZeroWidth]


Tagged = Annotated[Point | Shape | Tree, jw.Tagged({3: Point, 7: Shape, 200: Tree})]


@jw.wireformat
class Everything:
    """Structs, enums, generics and custom codecs inlined into one codec."""

    scalars: Scalars
    texts: Texts
    optionals: Optionals
    shape: Shape
    page: Page[Point]
    custom: Custom
    tagged: Tagged


AppMessage = Annotated[Point | Texts | Shape | ZeroWidth, jw.Tagged({3: Point, 200: Texts, 7: Shape, 9: ZeroWidth})]


class AppFrame(jw.Frame[AppMessage]):
    """A frame over structs, a whole enum and zero-width collections, with sparse numbers."""

    __slots__ = ()


# annotations that mypy, reading them as expressions, takes for type applications
Tuple0: Any = tuple[()]
OptionOptionalU8: Any = jw.Option[Optional[jw.u8]]  # type: ignore[misc]
CATALOGUE: dict[str, Any] = {
    "u8": jw.u8, "u16": jw.u16, "u32": jw.u32, "u64": jw.u64, "u128": jw.u128,
    "i16": jw.i16, "i32": jw.i32, "i64": jw.i64, "i128": jw.i128, "usize": jw.usize, "isize": jw.isize,
    "f32": jw.f32, "f64": jw.f64, "bool": bool, "str": str, "fsstr": jw.fsstr, "bytes": bytes,
    "None": type(None), "Url": jw.Url, "datetime": datetime.datetime, "IPv6Address": ipaddress.IPv6Address,
    "Color": Color,
    "list[u16]": list[jw.u16], "tuple[u32, ...]": tuple[jw.u32, ...], "deque[str]": collections.deque[str],
    "dict[str, u32]": dict[str, jw.u32], "set[i16]": set[jw.i16], "frozenset[str]": frozenset[str],
    "tuple[u8, str, f64]": tuple[jw.u8, str, jw.f64], "tuple[()]": Tuple0,
    "Optional[str]": Optional[str], "Option[Optional[u8]]": OptionOptionalU8,
    "dict[Color, Point]": dict[Color, Point], "list[Optional[Shape]]": list[Optional[Shape]],
    "dict[u8, list[str]]": dict[jw.u8, list[str]], "set[tuple[u8, str]]": set[tuple[jw.u8, str]],
    "Point": Point, "Scalars": Scalars, "Texts": Texts, "Optionals": Optionals, "Collections": Collections,
    "Shape": Shape, "Drawing": Drawing, "Tree": Tree, "Expr": Expr, "Ping": Ping,
    "Page[u32]": Page[jw.u32], "Page[Shape]": Page[Shape], "Network": Network, "Logged": Logged,
    "Markers": Markers, "Custom": Custom, "Hooked": Hooked, "KwFrozen": KwFrozen, "Deep": Deep,
    "Everything": Everything,
    "Tagged": Tagged, "set[FrozenKey]": set[FrozenKey], "dict[KeyShape, u8]": dict[KeyShape, jw.u8],
    "dict[tuple[Optional[u8], str], u8]": dict[tuple[Optional[jw.u8], str], jw.u8],
    "list[None]": list[None], "list[list[None]]": list[list[None]], "Mark": Mark,
    "ZeroWidth": ZeroWidth, "AppFrame": AppFrame, "Tframe": p9.Tframe, "Rframe": p9.Rframe,
}

FRAMES: dict[str, Any] = {"AppFrame": AppFrame, "Tframe": p9.Tframe, "Rframe": p9.Rframe}

# How to invent a value for a field written by user code, keyed by the codec object (With) or
# the encode hook (EncodeWith).
CUSTOM_VALUES: dict[Any, Any] = {
    U24: lambda rng: rng.choice([0, 1, 0xFFFFFF, rng.randrange(1 << 24)]),
    jw.LevelCodec: lambda rng: rng.choice(list(jw.Level)),
    _write_reversed: lambda rng: "".join(rng.choice("ab\u00e9\u20ac\U0001f600") for _ in range(rng.randint(0, 5))),
}


def custom_value(codec: Any, rng: random.Random) -> Any:
    make = CUSTOM_VALUES.get(codec)
    if make is None:
        raise LookupError(f"no value generator for the codec {codec!r}: add it to fuzz.catalogue.CUSTOM_VALUES")
    return make(rng)

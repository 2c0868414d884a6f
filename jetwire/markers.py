"""Markers: the vocabulary that goes inside ``Annotated`` to say how a field is laid out.

Scalar widths (``u16``, ``f32``, ...) are ``Annotated`` aliases, so ``x: u16`` reads as ``int``
to a type checker, and the same object also works as metadata: ``Annotated[int, u16]``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Annotated, Any, Generic, TypeVar

from typing_extensions import Protocol, TypeAlias

from .errors import MarkerArgumentError, SchemaError

T = TypeVar("T")

__all__ = [
    "IntKind", "FloatKind",
    "u8", "u16", "u32", "u64", "u128", "i16", "i32", "i64", "i128", "usize", "isize", "f32", "f64",
    "Skip", "With", "EncodeWith", "DecodeWith", "SizeWith", "As", "Into", "From",
    "Some", "Option", "Tagged", "WireCodec", "Reader", "Writer", "StrErrors", "SurrogateEscape", "fsstr",
]


class _Marker:
    """An immutable marker. Equal by fields when ``_by_value`` (widths, string handling), else
    by identity (markers that hold functions). Written out rather than ``@dataclass(frozen=True)``:
    these are made when jetwire is imported, and a dataclass costs a millisecond to create."""

    __slots__: tuple[str, ...] = ()
    _by_value = True

    def _set(self, **values: Any) -> None:
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def _fields(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        if not self._by_value or not isinstance(other, _Marker):
            return self is other
        return type(other) is type(self) and self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash((type(self), self._fields())) if self._by_value else id(self)

    def __repr__(self) -> str:
        values = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({values})"


class IntKind(_Marker):
    """A fixed-width integer of the spec (r[jetstream.wireformat.u8] ... i128)."""

    __slots__ = ("name", "signed", "size")
    name: str
    size: int
    signed: bool

    def __init__(self, name: str, size: int, signed: bool) -> None:
        self._set(name=name, size=size, signed=signed)

    @property
    def min(self) -> int:
        return -(1 << (self.size * 8 - 1)) if self.signed else 0

    @property
    def max(self) -> int:
        bits = self.size * 8 - (1 if self.signed else 0)
        return (1 << bits) - 1

    def __repr__(self) -> str:
        return f"jetwire.{self.name}"


class FloatKind(_Marker):
    """An IEEE 754 float of the spec (r[jetstream.wireformat.f32], f64)."""

    __slots__ = ("name", "size")
    name: str
    size: int

    def __init__(self, name: str, size: int) -> None:
        self._set(name=name, size=size)

    def __repr__(self) -> str:
        return f"jetwire.{self.name}"


U8 = IntKind("u8", 1, False)
U16 = IntKind("u16", 2, False)
U32 = IntKind("u32", 4, False)
U64 = IntKind("u64", 8, False)
U128 = IntKind("u128", 16, False)
I16 = IntKind("i16", 2, True)
I32 = IntKind("i32", 4, True)
I64 = IntKind("i64", 8, True)
I128 = IntKind("i128", 16, True)
# Upstream's usize/isize: 8 bytes on the 64-bit platforms it runs on, so u64/i64 on the wire;
# their own names keep error messages in the declaration's words.
USIZE = IntKind("usize", 8, False)
ISIZE = IntKind("isize", 8, True)
F32 = FloatKind("f32", 4)
F64 = FloatKind("f64", 8)

u8: TypeAlias = Annotated[int, U8]
u16: TypeAlias = Annotated[int, U16]
u32: TypeAlias = Annotated[int, U32]
u64: TypeAlias = Annotated[int, U64]
u128: TypeAlias = Annotated[int, U128]
i16: TypeAlias = Annotated[int, I16]
i32: TypeAlias = Annotated[int, I32]
i64: TypeAlias = Annotated[int, I64]
i128: TypeAlias = Annotated[int, I128]
usize: TypeAlias = Annotated[int, USIZE]
isize: TypeAlias = Annotated[int, ISIZE]
f32: TypeAlias = Annotated[float, F32]
f64: TypeAlias = Annotated[float, F64]


class StrErrors(_Marker):
    """``Annotated[str, StrErrors("surrogateescape")]``: how a ``str`` field meets its bytes.

    ``errors`` is the error handler of ``str.encode``/``bytes.decode``. The default, strict
    UTF-8, is JetStream's rule; ``"surrogateescape"`` is how ``os.fsdecode`` reads file names,
    which on Linux are any bytes: every byte string decodes, and encodes back to itself.
    """

    __slots__ = ("errors",)
    errors: str

    def __init__(self, errors: str) -> None:
        if errors not in ("strict", "surrogateescape"):
            raise MarkerArgumentError(f"StrErrors: {errors!r} does not round-trip; use 'strict' or 'surrogateescape'")
        self._set(errors=errors)


SurrogateEscape = StrErrors("surrogateescape")
fsstr: TypeAlias = Annotated[str, SurrogateEscape]
"""A string whose bytes need not be UTF-8 (9P2000.L names: r[9p2000l.encoding.string])."""


class _SkipMarker:
    """``Annotated[T, Skip]``: the field is not on the wire; decoding gives it its default."""

    _instance: _SkipMarker | None = None

    def __new__(cls) -> _SkipMarker:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "jetwire.Skip"


Skip = _SkipMarker()


class Reader(Protocol):
    """What a custom codec reads from: exactly ``n`` bytes per call, or a DecodeError."""

    def read(self, n: int) -> bytes: ...


class Writer(Protocol):
    """What a custom codec writes to."""

    def write(self, data: bytes | bytearray | memoryview) -> None: ...


class WireCodec(Protocol[T]):
    """The Python face of upstream's ``#[jetstream(with(Codec))]``: what ``With`` accepts.

    ``encode`` and ``decode`` may run more than once for one value: the generated code calls
    them, and when anything else in the value is off it gives up and the interpreter calls them
    again to name the field and offset (or to return the result); the interpreter's ``decode``
    replays the codec from the field's first byte each time the reader asks for more bytes than
    it had. So they must be deterministic (the same bytes for the same value, the same reads and
    value for the same bytes), and any side effect they have must be one that may repeat."""

    def byte_size(self, value: T) -> int: ...

    def encode(self, value: T, writer: Writer) -> None: ...

    def decode(self, reader: Reader) -> T: ...


class With(_Marker):
    """``Annotated[T, With(codec)]``: the field is written and read by ``codec`` alone."""

    __slots__ = ("codec",)
    _by_value = False
    codec: WireCodec[Any]

    def __init__(self, codec: WireCodec[Any]) -> None:
        self._set(codec=codec)


class EncodeWith(_Marker):
    """Upstream's ``with_encode``: ``fn(value, writer)``; needs ``SizeWith`` beside it."""

    __slots__ = ("fn",)
    _by_value = False
    fn: Callable[[Any, Writer], None]

    def __init__(self, fn: Callable[[Any, Writer], None]) -> None:
        self._set(fn=fn)


class DecodeWith(_Marker):
    """Upstream's ``with_decode``: ``fn(reader) -> value``."""

    __slots__ = ("fn",)
    _by_value = False
    fn: Callable[[Reader], Any]

    def __init__(self, fn: Callable[[Reader], Any]) -> None:
        self._set(fn=fn)


class SizeWith(_Marker):
    """Upstream's ``with_byte_size``: ``fn(value) -> int``."""

    __slots__ = ("fn",)
    _by_value = False
    fn: Callable[[Any], int]

    def __init__(self, fn: Callable[[Any], int]) -> None:
        self._set(fn=fn)


class As(_Marker):
    """Upstream's ``into``/``from``/``as``: the field travels as ``wire_type``.

    ``to_wire`` turns the field's value into a ``wire_type`` value before encoding;
    ``from_wire`` turns the decoded ``wire_type`` value back. Either may be omitted when
    the value needs no conversion in that direction.
    """

    __slots__ = ("from_wire", "to_wire", "wire_type")
    _by_value = False
    wire_type: Any
    to_wire: Callable[[Any], Any] | None
    from_wire: Callable[[Any], Any] | None

    def __init__(self, wire_type: Any, to_wire: Callable[[Any], Any] | None = None,
                 from_wire: Callable[[Any], Any] | None = None) -> None:
        self._set(wire_type=wire_type, to_wire=to_wire, from_wire=from_wire)


def Into(wire_type: Any, to_wire: Callable[[Any], Any]) -> As:  # noqa: N802 - mirrors upstream
    """Upstream's ``into``: convert on encode only."""
    return As(wire_type, to_wire=to_wire)


def From(wire_type: Any, from_wire: Callable[[Any], Any]) -> As:  # noqa: N802 - mirrors upstream
    """Upstream's ``from``: convert on decode only."""
    return As(wire_type, from_wire=from_wire)


@dataclasses.dataclass(frozen=True, slots=True)
class Some(Generic[T]):
    """The present case of ``Option[T]``, for options whose value may itself be ``None``.

    Python folds ``Optional[Optional[T]]`` into ``Optional[T]``, so Rust's
    ``Option<Option<T>>`` is spelled ``Option[Optional[T]]`` here, with values ``None``,
    ``Some(None)`` and ``Some(x)``.
    """

    value: T


Option: TypeAlias = Some[T] | None
"""``Option[T]``: ``None`` or ``Some(value)``; one tag byte then the value (r[jetstream.wireformat.option])."""



class Tagged(_Marker):
    """``Annotated[A | B, Tagged({4: A, 6: B})]``: a union written as a u8 tag then the variant.

    The tag is the number given for the value's class, not a declaration index: this is how
    ``IpAddr`` (4 and 6) is declared, and how protocols number their messages. A list,
    ``Tagged([A, B])``, numbers the classes 0, 1, ... as an enum does: the spelling of an enum
    whose variants are module-level classes, which type checkers follow all the way.
    """

    __slots__ = ("name", "tags")
    _by_value = False
    tags: dict[int, type]
    name: str | None

    def __init__(self, tags: dict[int, type] | list[type] | tuple[type, ...], name: str | None = None) -> None:
        if isinstance(tags, (list, tuple)):
            table = dict(enumerate(tags))
        elif isinstance(tags, dict):
            table = dict(tags)
        else:
            raise SchemaError(
                f"Tagged takes a dict of tags to classes or a list of classes, not {type(tags).__name__}"
            )
        for tag in table:
            if isinstance(tag, bool) or not (isinstance(tag, int) and 0 <= tag <= 255):
                raise MarkerArgumentError(f"Tagged: tag {tag!r} is not a u8 (0..255)")
        try:
            distinct = len(set(table.values()))
        except TypeError:  # an unhashable entry: not a class, which the planner names
            distinct = len(table)
        if distinct != len(table):
            raise SchemaError("Tagged: a class appears under two tags")
        if name is not None and not isinstance(name, str):
            raise SchemaError(f"Tagged: name is the union's label, a str, not {type(name).__name__}")
        self._set(tags=table, name=name)

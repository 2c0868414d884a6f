"""Declarations fuzzed as decoding is: random and malformed annotations are either accepted,
and then encode and decode as declared, or refused with a SchemaError jetwire wrote itself.

Never a raw IndexError, TypeError or AttributeError from the planner, and never a SchemaError
that only wraps one (planning's last-resort net gives such an error the original as its
``__cause__``: a declaration that reaches the net is a case the planner does not check)."""

from __future__ import annotations

import datetime
import enum
import ipaddress
import typing
from typing import Annotated, Any, Generic, Optional, TypeVar, Union

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jetwire as jw
from jetwire import u8, u16, u32, wireenum, wireformat
from jetwire.testing import strategy

T = TypeVar("T")
U = TypeVar("U")


@wireformat
class Point:
    x: u8
    y: u16


@wireformat
class Box(Generic[T]):
    item: T


@wireenum
class Shape:
    class Circle:
        radius: u8

    class Square:
        side: u32


class Colour(enum.Enum):
    RED = 1
    GREEN = 2


class U8Codec:
    """A well-behaved codec of one byte."""

    def byte_size(self, value: int) -> int:
        return 1

    def encode(self, value: int, writer: Any) -> None:
        writer.write(bytes([value]))

    def decode(self, reader: Any) -> int:
        return reader.read(1)[0]  # type: ignore[no-any-return]


class HalfCodec:
    """Has encode and decode, but no byte_size."""

    def encode(self, value: Any, writer: Any) -> None:
        writer.write(b"")

    def decode(self, reader: Any) -> Any:
        return None


class NotAClass:
    pass


def _int_kind(marker: Any) -> Any:
    return marker.__metadata__[0]


LEAVES: list[Any] = [
    u8, u16, u32, jw.i64, jw.u128, jw.f32, jw.f64, int, float, bool, str, bytes, None, type(None),
    object, NotAClass, 3, 2.5, "u8", "Point", "Nope", "list[", "1/0", "list[Nope]", Ellipsis, (),
    Point, Box, Shape, Shape.Circle, Colour, jw.Option, jw.Some, typing.Any, T, list, dict, tuple,
    set, frozenset, datetime.datetime, ipaddress.IPv4Address, ipaddress.IPv6Address, jw.Url,
    jw.IpAddr, jw.SocketAddr, typing.Sequence, typing.Mapping, typing.List, typing.Optional,
    typing.Union, jw.Skip, _int_kind(u8), _int_kind(jw.f32), typing.Literal[1], typing.ClassVar,
]

MARKERS: list[Any] = [
    jw.Skip, _int_kind(u8), _int_kind(u16), _int_kind(jw.f32), _int_kind(jw.f64), 3, "text", None,
    jw.With(U8Codec()), jw.With(HalfCodec()), jw.With(3),  # type: ignore[arg-type]
    jw.With(NotAClass),  # type: ignore[arg-type]
    jw.Tagged({}), jw.Tagged({0: Point}), jw.Tagged({0: Shape.Circle, 1: Shape.Square}),
    jw.Tagged({0: 3, 1: Point}),  # type: ignore[dict-item]
    jw.Tagged({4: ipaddress.IPv4Address, 6: ipaddress.IPv6Address}),
    jw.Tagged({0: int, 7: str}), jw.Tagged([Point, Colour]),
    jw.As(u16, int, int), jw.As(str), jw.As(3),
    jw.EncodeWith(lambda value, writer: None), jw.DecodeWith(lambda reader: 0),
    jw.SizeWith(lambda value: 0), jw.StrErrors("surrogateescape"), u8, Annotated[int, u16],
]


def _made(build: Any, *parts: Any) -> Any:
    """``build(*parts)``, or None where Python itself refuses to form the annotation (that is
    not a declaration jetwire sees)."""
    try:
        return build(*parts)
    except Exception:
        return None


def _generic(origin: Any, args: tuple[Any, ...]) -> Any:
    return origin[args if len(args) != 1 else args[0]]


def _annotated(base: Any, markers: list[Any]) -> Any:
    return Annotated[(base, *markers)]


def _union(args: tuple[Any, ...]) -> Any:
    return Union[args]


def _pep604(left: Any, right: Any) -> Any:
    return left | right


ORIGINS = [list, tuple, set, frozenset, dict, typing.Sequence, typing.Mapping, typing.AbstractSet,
           Box, jw.Option, jw.Some, typing.Literal, typing.ClassVar, Optional]


def annotations() -> st.SearchStrategy[Any]:
    leaves = st.sampled_from(LEAVES)

    def extend(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        args = st.lists(inner, min_size=0, max_size=3).map(tuple)
        return st.one_of(
            st.builds(_made, st.just(_generic), st.sampled_from(ORIGINS), args),
            st.builds(_made, st.just(_generic), st.just(tuple), st.tuples(inner, st.just(Ellipsis))),
            st.builds(_made, st.just(_annotated), inner,
                      st.lists(st.sampled_from(MARKERS), min_size=1, max_size=3)),
            st.builds(_made, st.just(_union), args),
            st.builds(_made, st.just(_pep604), inner, inner),
            inner.map(lambda a: a if not isinstance(a, type) else getattr(a, "__name__", a)),  # a string
        ).filter(lambda a: a is not None)

    return st.recursive(leaves, extend, max_leaves=6)


def _declare(annotation: Any, default: bool) -> type:
    namespace: dict[str, Any] = {"__annotations__": {"x": annotation}, "__module__": __name__}
    if default:
        namespace["x"] = 0
    return wireformat(type("Fuzzed", (), namespace))


def _assert_ours(error: jw.SchemaError) -> None:
    assert error.__cause__ is None, f"a crash wrapped by the planning net: {error!r} from {error.__cause__!r}"


def _runs_user_code(annotation: Any) -> bool:
    """Whether a field's bytes are written by the fuzz's own hooks, which need not round-trip."""
    return any(word in repr(annotation) for word in ("With(", "As(", "EncodeWith", "DecodeWith", "SizeWith"))


def _use(data: st.DataObject, cls: Any, annotation: Any) -> None:
    """First use: bytes through decode (and back, where jetwire writes every byte), and a
    generated value through encode and decode."""
    exact = not _runs_user_code(annotation)
    for raw in (b"", b"\x00" * 8, b"\x01" * 40):
        try:
            value, end = cls.decode_prefix(raw)
        except jw.DecodeError:
            continue
        again = value.encode()
        if exact:
            assert again == raw[:end]
    try:
        value = data.draw(strategy(cls, max_size=3, max_depth=3))
    except jw.SchemaError:
        return  # user code (With, As, hooks) has no values jetwire can invent
    encoded = value.encode()
    if exact:
        assert cls.byte_size(value) == len(encoded)
        assert cls.decode(encoded).encode() == encoded


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much], deadline=None)
@given(data=st.data(), annotation=annotations(), default=st.booleans())
def test_a_declaration_is_accepted_and_works_or_refused_with_a_schema_error(
    data: st.DataObject, annotation: Any, default: bool
) -> None:
    try:
        cls = _declare(annotation, default)
    except jw.SchemaError as error:
        _assert_ours(error)
        return
    try:
        _use(data, cls, annotation)
    except jw.SchemaError as error:  # a forward reference that names nothing, found on first use
        _assert_ours(error)
    except (jw.EncodeError, jw.DecodeError):
        pass  # user codecs in the fuzz (EncodeWith, As) may refuse a value: jetwire's error says so


def _declare_enum(fields: list[Any], on_enum: Any) -> type:
    namespace: dict[str, Any] = {"__module__": __name__, "__qualname__": "FuzzedEnum"}
    if on_enum is not None:
        namespace["__annotations__"] = {"stray": on_enum}
    for i, annotation in enumerate(fields):
        namespace[f"V{i}"] = type(f"V{i}", (), {"__annotations__": {"x": annotation}, "__module__": __name__,
                                               "__qualname__": f"FuzzedEnum.V{i}"})
    return wireenum(type("FuzzedEnum", (), namespace))


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much], deadline=None)
@given(data=st.data(), fields=st.lists(annotations(), min_size=1, max_size=3),
       on_enum=st.tuples(st.integers(0, 9), annotations()).map(lambda pick: pick[1] if pick[0] == 7 else None))
def test_an_enum_declaration_is_accepted_and_works_or_refused_with_a_schema_error(
    data: st.DataObject, fields: list[Any], on_enum: Any
) -> None:
    try:
        cls = _declare_enum(fields, on_enum)
    except jw.SchemaError as error:
        _assert_ours(error)
        return
    try:
        _use(data, cls, fields)
        for variant in cls.__jetwire__.variants:  # type: ignore[attr-defined]
            value = data.draw(strategy(cls, max_size=3, max_depth=3))
            if type(value) is variant:
                assert variant.decode(value.encode()) == value or _runs_user_code(fields)
            else:
                with pytest.raises(jw.DecodeError, match="expected FuzzedEnum"):
                    variant.decode(value.encode())
    except jw.SchemaError as error:
        _assert_ours(error)
    except (jw.EncodeError, jw.DecodeError):
        pass


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much], deadline=None)
@given(annotation=annotations())
def test_a_codec_of_any_annotation_is_made_or_refused_with_a_schema_error(annotation: Any) -> None:
    try:
        jw.Codec(annotation)
    except jw.SchemaError as error:
        _assert_ours(error)


@pytest.mark.parametrize(
    "annotation",
    [dict[u32], Annotated[int, jw.Tagged({0: 3})], tuple[u8, ..., u8], "1/0"],  # type: ignore[misc, dict-item]
)
def test_the_crashes_the_fuzz_found_are_schema_errors(annotation: Any) -> None:
    with pytest.raises(jw.SchemaError) as refused:
        jw.Codec(_declare(annotation, False))
    _assert_ours(refused.value)

"""Declarations jetwire used to crash on, accept silently, or build wrongly: each is refused
with a SchemaError that says what to write, or now works as written."""

from __future__ import annotations

import asyncio
import inspect
import io
import pydoc
import typing
from typing import Annotated, Any, ClassVar

import pytest

import jetwire as jw
from jetwire import WireFormat, u8, u32, wireenum, wireformat


def declare(annotation: Any) -> type:
    """A @wireformat class with one field ``x`` of ``annotation``."""
    return wireformat(type("Holder", (), {"__annotations__": {"x": annotation}}))


# -- hints that must themselves be valid ----------------------------------------------------


@pytest.mark.parametrize("bare", [list, set, frozenset, dict, tuple])
def test_the_hint_for_a_bare_container_is_itself_accepted(bare: type) -> None:
    with pytest.raises(jw.SchemaError) as refused:
        declare(bare)
    hint = str(refused.value).split("e.g. ")[-1].split(" (")[0].split(" or ")[0]
    hint = hint.replace("jetwire.", "")
    suggested = eval(hint, {"u32": u32, "list": list, "set": set, "frozenset": frozenset,
                            "dict": dict, "tuple": tuple, "str": str})
    sample = _sample(bare)
    assert jw.decode(suggested, jw.encode(sample, suggested)) == sample


def _sample(bare: type) -> Any:
    return {list: [1], set: {1}, frozenset: frozenset({1}), dict: {"a": 1}, tuple: (1,)}[bare]


def test_a_bare_tuple_is_told_both_forms_not_a_one_tuple() -> None:
    with pytest.raises(jw.SchemaError, match=r"tuple\[jetwire\.u32, \.\.\.\] \(any length\)"):
        declare(tuple)


@pytest.mark.parametrize(
    ("annotation", "message"),
    [
        (dict[u32], r"dict takes 2 type parameters, got 1"),  # type: ignore[misc]
        (list[u8, u8], r"list takes 1 type parameter, got 2"),  # type: ignore[misc]
        (set[u8, str], r"set takes 1 type parameter, got 2"),  # type: ignore[misc]
        (typing.List, r"list takes 1 type parameter, got 0"),
        (typing.Dict, r"dict takes 2 type parameters, got 0"),
        (typing.Sequence, r"Sequence takes 1 type parameter, got 0"),
        (typing.Tuple, r"tuple needs its item types"),
        (tuple[u8, ..., u8], r"\.\.\. stands only second"),
    ],
)
def test_a_container_with_the_wrong_number_of_parameters_is_a_schema_error(annotation: Any, message: str) -> None:
    with pytest.raises(jw.SchemaError, match=r"Holder\.x: " + message):
        declare(annotation)
    with pytest.raises(jw.SchemaError, match=message):
        jw.Codec(annotation)


def test_an_annotation_that_raises_when_evaluated_is_a_schema_error() -> None:
    with pytest.raises(jw.SchemaError, match=r"Holder\.x: the annotation '1/0' raised ZeroDivisionError"):
        jw.Codec(declare("1/0"))


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        (jw.Tagged({}), r"names no classes"),
        (jw.Tagged({0: 3}), r"tag 0 maps to 3, not a class"),  # type: ignore[dict-item]
    ],
)
def test_a_tagged_map_that_names_no_classes_is_refused(marker: Any, message: str) -> None:
    with pytest.raises(jw.SchemaError, match=message):
        declare(Annotated[object, marker])


def test_a_tagged_beside_a_width_is_refused_not_ignored() -> None:
    with pytest.raises(jw.SchemaError, match="a Tagged union takes no other layout marker"):
        declare(Annotated[int, jw.u8.__metadata__[0], jw.Tagged({0: str})])  # type: ignore[attr-defined]


def test_a_variant_may_name_a_base_the_enum_already_has() -> None:
    @wireenum
    class Deck(WireFormat):
        class Card(WireFormat):
            rank: u8

    card = Deck.Card(rank=3)
    assert isinstance(card, Deck)
    assert Deck.decode(card.encode()) == card


def test_a_variant_whose_bases_conflict_with_the_enum_is_a_schema_error() -> None:
    class EnumMeta(type):
        pass

    class VariantMeta(type):
        pass

    with pytest.raises(jw.SchemaError, match=r"the variant Card cannot also subclass the enum"):
        @wireenum
        class Deck(metaclass=EnumMeta):
            class Card(metaclass=VariantMeta):  # two unrelated metaclasses: no class has both
                rank: u8


def test_what_dataclasses_refuses_is_a_schema_error_naming_the_class() -> None:
    with pytest.raises(jw.SchemaError, match=r"Defaults: .*mutable default"):
        @wireformat
        class Defaults:
            items: list[u8] = []  # noqa: RUF012


# -- accepted silently before ---------------------------------------------------------------


def test_a_field_on_the_enum_itself_is_refused() -> None:
    with pytest.raises(jw.SchemaError, match=r"@wireenum .*Shape declares colour on the enum itself"):
        @wireenum
        class Shape:
            colour: u8

            class Circle:
                radius: u8


def test_a_class_variable_on_the_enum_is_not_a_field() -> None:
    @wireenum
    class Shape:
        sides: ClassVar[int] = 0

        class Circle:
            radius: u8

    assert Shape.Circle(radius=2).encode() == b"\x00\x02"


def test_a_struct_of_only_nested_classes_is_refused_with_the_wireenum_hint() -> None:
    with pytest.raises(jw.SchemaError, match=r"only nested classes \(Circle, Square\).*use @wireenum"):
        @wireformat
        class Shape:
            class Circle:
                radius: u8

            class Square:
                side: u8


def test_an_intentionally_empty_struct_stays_valid() -> None:
    @wireformat
    class Empty:
        pass

    assert Empty().encode() == b""
    assert Empty.decode(b"") == Empty()


@pytest.mark.parametrize("name", ["encode", "decode", "byte_size", "decode_prefix", "encode_to",
                                  "decode_from", "encode_async", "decode_async"])
def test_a_field_named_like_a_generated_method_is_refused(name: str) -> None:
    with pytest.raises(jw.SchemaError, match=rf"Holder\.{name}: a field cannot be named {name}"):
        wireformat(type("Holder", (), {"__annotations__": {name: u8}}))
    with pytest.raises(jw.SchemaError, match=rf"Shape\.Circle\.{name}: a field cannot be named {name}"):
        wireenum(type("Shape", (), {"Circle": type("Circle", (), {"__annotations__": {name: u8},
                                                                   "__qualname__": "Shape.Circle"})}))


# -- a variant's decoders -------------------------------------------------------------------


@wireenum
class Shape:
    class Circle:
        radius: u8

    class Square:
        side: u8


def test_a_variant_decodes_its_own_bytes() -> None:
    data = Shape.Circle(radius=5).encode()
    assert Shape.Circle.decode(data) == Shape.Circle(radius=5)
    assert Shape.Circle.decode_prefix(b"\xff" + data, 1) == (Shape.Circle(radius=5), 3)


def test_a_variant_refuses_the_bytes_of_another_variant() -> None:
    data = Shape.Square(side=3).encode()
    Shape.decode(data)  # the enum's generated decode, installed: the variant must not inherit it
    expected = r"Shape: expected Shape\.Circle, found Shape\.Square \(at byte 0\)"
    with pytest.raises(jw.DecodeError, match=expected):
        Shape.Circle.decode(data)
    with pytest.raises(jw.DecodeError, match=expected.replace("0", "2")):
        Shape.Circle.decode_prefix(b"\0\0" + data, 2)
    with pytest.raises(jw.DecodeError, match=expected):
        Shape.Circle.decode_from(io.BytesIO(data))

    async def read() -> Any:
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        return await Shape.Circle.decode_async(reader)

    with pytest.raises(jw.DecodeError, match=expected):
        asyncio.run(read())
    assert Shape.Square.decode_from(io.BytesIO(data)) == Shape.Square(side=3)


# -- super() in rebuilt classes -------------------------------------------------------------


def test_super_works_in_a_variant_method() -> None:
    @wireenum
    class Greeting:
        def describe(self) -> str:
            return "greeting"

        class Hello:
            name: str

            def describe(self) -> str:
                return f"hello {self.name}, a " + super().describe()

            @property
            def loud(self) -> str:
                return super().describe().upper()

    assert Greeting.Hello(name="x").describe() == "hello x, a greeting"
    assert Greeting.Hello(name="x").loud == "GREETING"


@pytest.mark.parametrize("options", [{"slots": True}, {"slots": True, "order": True}])
def test_super_works_in_a_slots_class(options: dict[str, bool]) -> None:
    class Base:
        def describe(self) -> str:
            return "base"

    @wireformat(**options)  # type: ignore[call-overload]
    class Point(Base):
        x: u8

        def describe(self) -> str:
            return "point of " + super().describe()

        @classmethod
        def origin(cls) -> Any:
            return super().__new__(cls)

    assert Point(x=1).describe() == "point of base"
    assert isinstance(Point.origin(), Point)


# -- generated methods look like methods ----------------------------------------------------


def test_a_generated_method_keeps_its_name_and_docstring_after_first_use() -> None:
    @wireformat
    class Order:
        qty: u32

    Order(qty=1).encode()
    Order.decode(Order(qty=1).encode())
    for name in ("encode", "decode"):
        method = getattr(Order, name)
        assert method.__qualname__.endswith("Order." + name), method.__qualname__
        assert method.__module__ == __name__
        assert method.__doc__ == getattr(WireFormat, name).__doc__
    assert "The value encoded by ``data``" in pydoc.render_doc(Order.decode)
    assert list(inspect.signature(Order.decode).parameters) == ["data"]
    assert list(inspect.signature(Order(qty=1).encode).parameters) == []


# -- bool is an int subclass: it encodes as 0 or 1, the same on every path ----------------------


@pytest.mark.parametrize("flag", [True, False])
@pytest.mark.parametrize("width", [u8, u32, jw.i64, jw.u128])
def test_a_bool_in_an_int_field_is_its_int_on_every_path(flag: bool, width: Any) -> None:
    """Documented as meant (docs/design.md): refusing it cost Rgetattr's encode 61% more
    instructions. What matters is that every path writes the same bytes as ``int(flag)``."""
    counted = wireformat(type("Counted", (), {"__annotations__": {"n": width, "name": str}}))
    expected = counted(int(flag), "x").encode()
    assert counted(flag, "x").encode() == expected  # the generated encoder
    out = io.BytesIO()
    counted(flag, "x").encode_to(out)  # the stream encoder
    assert out.getvalue() == expected
    assert jw.encode(flag, width) == jw.encode(int(flag), width)
    assert jw.encode([1, flag], list[width]) == jw.encode([1, int(flag)], list[width])  # packed by struct or bytes()
    assert jw.decode(counted, expected).n == int(flag)


def _int_kind(width: Any) -> Any:
    return width.__metadata__[0]


# -- every hint a refusal gives is itself a declaration that works ------------------------------


@wireformat
class Left:
    a: u8


@wireformat
class Right:
    b: str


def _suggestion(error: jw.SchemaError) -> Any:
    text = str(error).split("or write ")[-1].split("e.g. ")[-1].replace("jetwire.", "jw.")
    return eval(text, {"jw": jw, "Annotated": Annotated, "Left": Left, "Right": Right,
                       "Pair": Pair, "str": str})


@pytest.mark.parametrize(("union", "value"), [(Left | Right, Right("x")), (Left | str, "x")])
def test_the_tagged_hint_for_a_union_of_classes_is_valid(union: Any, value: Any) -> None:
    with pytest.raises(jw.SchemaError, match="a union needs a tag") as refused:
        jw.Codec(union)
    suggested = _suggestion(refused.value)
    assert jw.decode(suggested, jw.encode(value, suggested)) == value


def test_a_union_of_non_classes_is_not_told_to_use_tagged() -> None:
    with pytest.raises(jw.SchemaError, match=r"u8 \| str: .*@wireenum with one variant holding each") as refused:
        jw.Codec(u8 | str)
    assert "Tagged" not in str(refused.value)


T = typing.TypeVar("T")
V = typing.TypeVar("V")


@wireformat
class Pair(typing.Generic[T, V]):
    first: T
    second: V


def test_the_hint_for_a_bare_generic_names_every_parameter() -> None:
    with pytest.raises(jw.SchemaError, match="is generic in") as refused:
        jw.Codec(Pair)
    suggested = _suggestion(refused.value)
    assert jw.decode(suggested, jw.encode(Pair(1, 2), suggested)) == Pair(1, 2)


# -- siblings: what a decorator is given ---------------------------------------------------------


@pytest.mark.parametrize("decorator", [wireformat, wireenum])
def test_a_decorator_given_something_not_a_class_is_a_schema_error(decorator: Any) -> None:
    with pytest.raises(jw.SchemaError, match=r"decorates a class, not 3"):
        decorator(3)


@pytest.mark.parametrize("decorator", [wireformat, wireenum])
def test_an_enum_enum_is_used_as_it_is_not_decorated(decorator: Any) -> None:
    import enum

    class Colour(enum.Enum):
        RED = 1

    with pytest.raises(jw.SchemaError, match=r"an enum\.Enum is a wire type as it is"):
        decorator(Colour)


def test_decorating_twice_is_refused() -> None:
    with pytest.raises(jw.SchemaError, match=r"already a @wireformat class; decorate it once"):
        wireformat(Left)
    with pytest.raises(jw.SchemaError, match=r"already a @wireenum class; decorate it once"):
        wireenum(Shape)
    with pytest.raises(jw.SchemaError, match=r"already a variant of a @wireenum; decorate it once"):
        wireformat(Shape.Circle)


def test_a_variant_extending_an_earlier_variant_gets_its_fields() -> None:
    @wireenum
    class Event:
        class Base:
            at: u32

        class Named(Base):
            name: str

    named = Event.Named(7, "x")
    assert isinstance(named, Event.Base)
    assert named.encode() == b"\x01\x07\x00\x00\x00\x01\x00x"
    assert Event.decode(named.encode()) == named
    with pytest.raises(jw.DecodeError, match=r"expected Event\.Base, found Event\.Named"):
        Event.Base.decode(named.encode())


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        (jw.As(u8, 3, None), r"As\(\.\.\.\): its to_wire conversion 3 is not a function"),  # type: ignore[arg-type]
        (jw.As(u8, None, "x"), r"As\(\.\.\.\): its from_wire conversion 'x' is not a function"),  # type: ignore[arg-type]
        (jw.DecodeWith(3), r"DecodeWith\(3\): not a function"),  # type: ignore[arg-type]
    ],
)
def test_a_conversion_or_hook_that_cannot_be_called_is_refused_when_declared(marker: Any, message: str) -> None:
    with pytest.raises(jw.SchemaError, match=r"Holder\.x: " + message):
        declare(Annotated[int, marker])


# -- a variant is not a type of its own on the wire -------------------------------------------


@wireenum
class Pen:
    class Ink:
        colour: u8

    class Lead:
        hardness: u8


_VARIANT_AS_TYPE = r"Pen\.Ink is a variant of Pen, not a type of its own .*use Pen as the type"


@pytest.mark.parametrize(
    "use",
    [
        lambda: jw.decode(Pen.Ink, b"\x01\x05"),
        lambda: jw.decode_prefix(Pen.Ink, b"\x00\x05"),
        lambda: jw.encode(Pen.Ink(colour=5), Pen.Ink),
        lambda: jw.byte_size(Pen.Ink(colour=5), Pen.Ink),
        lambda: jw.read_value(Pen.Ink, io.BytesIO(b"\x00\x05")),
        lambda: jw.Codec(list[Pen.Ink]),
        lambda: declare(Pen.Ink),
        lambda: declare(typing.Optional[Pen.Ink]),
    ],
)
def test_a_variant_where_a_type_goes_is_refused_not_read_without_its_tag(use: Any) -> None:
    """The enum was planned first (encoding a Pen), which caches the variant's body: that cache
    used to answer, so decode(Pen.Ink, ...) read a Lead's bytes as an Ink and encode dropped
    the tag."""
    assert Pen.Lead(hardness=5).encode() == b"\x01\x05"
    with pytest.raises(jw.SchemaError, match=_VARIANT_AS_TYPE):
        use()


def test_the_variant_decoders_are_what_the_refusal_suggests() -> None:
    assert Pen.Ink.decode(b"\x00\x05") == Pen.Ink(colour=5)
    assert jw.decode(Pen, b"\x00\x05") == Pen.Ink(colour=5)
    with pytest.raises(jw.DecodeError, match=r"expected Pen\.Ink, found Pen\.Lead"):
        Pen.Ink.decode(b"\x01\x05")


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda: jw.Tagged(5), "Tagged takes a dict of tags to classes or a list of classes, not int"),
        (lambda: jw.Tagged({300: int}), r"tag 300 is not a u8"),
        (lambda: jw.Tagged({True: int}), r"tag True is not a u8"),
        (lambda: jw.Tagged({1: int, 2: int}), "a class appears under two tags"),
        (lambda: jw.Tagged({1: [int]}), None),  # unhashable: refused by the planner, by name
        (lambda: jw.Tagged([int, str], name=3), "name is the union's label, a str, not int"),
        (lambda: jw.StrErrors("ignore"), "does not round-trip"),
        (lambda: jw.StrErrors(3), "does not round-trip"),  # type: ignore[arg-type]
    ],
)
def test_a_bad_marker_is_a_schema_error_where_it_is_written(make: Any, says: str | None) -> None:
    """Markers are part of a declaration: what they refuse is a SchemaError, like the rest."""
    if says is None:
        marker = make()
        with pytest.raises(jw.SchemaError, match=r"tag 1 maps to \[<class 'int'>\], not a class"):
            jw.Codec(Annotated[Any, marker])
        return
    with pytest.raises(jw.SchemaError, match=says):
        make()


def test_a_default_is_checked_when_encoded_not_when_declared() -> None:
    """As docs/design.md decides: dataclasses, attrs and msgspec do not check defaults either."""

    @wireformat
    class Loud:
        volume: u8 = 300

    assert Loud().volume == 300
    with pytest.raises(jw.EncodeError, match=r"300 is out of range for u8") as info:
        Loud().encode()
    assert info.value.path == "Loud.volume"

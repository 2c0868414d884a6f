"""What @wireformat and @wireenum accept, what they refuse, and what they give a class."""

from __future__ import annotations

import dataclasses
import enum
import linecache
import traceback
from typing import Annotated, Generic, Optional, TypeVar

import pytest

import jetwire as jw
from jetwire import Skip, u8, u16, u32, wireenum, wireformat

T = TypeVar("T")


@wireformat
class Pair:
    a: u8
    b: Annotated[int, u16]


@wireformat
class Tree:
    value: u32
    children: list[Tree]


@wireformat
class Ping:
    pong: Optional[Pong]


@wireformat
class Pong:
    ping: Optional[Ping]


@wireformat
class Page(Generic[T]):
    items: list[T]
    cursor: Optional[T] = None


@wireformat
class Pages:
    numbers: Page[u16]
    names: Page[str]


@wireenum
class Expr:
    class Lit:
        value: u32

    class Add:
        left: Expr
        right: Expr

    class Neg:
        inner: Expr


class Color(enum.Enum):
    RED = 10
    GREEN = 20
    BLUE = 30


def test_both_spellings_of_a_width_give_the_same_bytes() -> None:
    assert Pair(1, 2).encode() == bytes.fromhex("01 0200")


def test_a_recursive_struct_round_trips() -> None:
    tree = Tree(1, [Tree(2, []), Tree(3, [Tree(4, [])])])
    data = tree.encode()
    assert data == bytes.fromhex("01000000 0200 02000000 0000 03000000 0100 04000000 0000")
    assert Tree.decode(data) == tree


def test_mutually_recursive_structs_planned_on_first_use() -> None:
    value = Ping(Pong(Ping(None)))
    assert value.encode() == bytes.fromhex("01 01 00")
    assert Ping.decode(b"\x01\x01\x00") == value


def test_generic_class_is_planned_per_parameter() -> None:
    pages = Pages(Page([1, 2], 3), Page(["x"]))
    data = pages.encode()
    assert data == bytes.fromhex("0200 0100 0200 01 0300" "0100 0100 78 00")
    assert Pages.decode(data) == pages
    assert jw.encode(Page([5]), Page[u32]) == bytes.fromhex("0100 05000000 00")


def test_generic_class_without_parameters_says_how_to_use_it() -> None:
    with pytest.raises(jw.SchemaError, match=r"Page\[jetwire.u32\]"):
        Page([1]).encode()


def test_recursive_enum_through_forward_references_inside_the_enum() -> None:
    expr = Expr.Add(Expr.Lit(1), Expr.Neg(Expr.Lit(2)))
    data = expr.encode()
    assert data == bytes.fromhex("01 00 01000000 02 00 02000000")
    assert Expr.decode(data) == expr
    assert isinstance(expr, Expr) and isinstance(expr.right, Expr.Neg)


def test_enum_variants_work_with_match() -> None:
    match Expr.decode(bytes.fromhex("00 07000000")):
        case Expr.Lit(value=v):
            assert v == 7
        case _:
            pytest.fail("not matched")


def test_python_enum_is_written_as_its_index_not_its_value() -> None:
    assert jw.encode(Color.BLUE) == b"\x02"
    assert jw.decode(Color, b"\x01") is Color.GREEN


def test_bare_int_is_refused_when_decorated_naming_class_field_and_choices() -> None:
    with pytest.raises(jw.SchemaError) as info:

        @wireformat
        class Bad:
            count: int

    message = str(info.value)
    assert "Bad.count" in message and "u32" in message and "i64" in message


@pytest.mark.parametrize(
    "annotation, words",
    [
        (list, "element types"),
        (complex, "cannot encode"),
        (int | str, "union needs a tag"),
        (Annotated[str, u16], "marks an int"),
        (tuple[(u8,) * 13], "1 to 12"),
    ],
)
def test_annotations_that_cannot_be_encoded_are_refused(annotation: object, words: str) -> None:
    with pytest.raises(jw.SchemaError, match=words):
        jw.Codec(annotation)


def test_skip_field_is_not_on_the_wire_and_takes_its_default() -> None:
    @wireformat
    class Cached:
        key: u8
        memo: Annotated[dict[str, object], Skip] = dataclasses.field(default_factory=dict)
        note: Annotated[str, Skip] = "fresh"

    value = Cached(5, {"x": object()}, "stale")
    assert value.encode() == b"\x05"
    assert Cached.decode(b"\x05") == Cached(5, {}, "fresh")


def test_skip_field_without_default_is_refused() -> None:
    with pytest.raises(jw.SchemaError, match="Skip: give it a default"):

        @wireformat
        class NoDefault:
            memo: Annotated[int, Skip]


def test_dataclass_options_pass_through() -> None:
    @wireformat(frozen=True, slots=True, order=True)
    class Point:
        x: u8
        y: u8

    p = Point(1, 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.x = 3  # type: ignore[misc]
    assert not hasattr(p, "__dict__")
    assert Point(1, 2) < Point(1, 3)
    assert Point.decode(p.encode()) == p


def test_existing_dataclass_is_kept() -> None:
    @wireformat
    @dataclasses.dataclass
    class Already:
        x: u8

    assert Already(3).encode() == b"\x03"


def test_user_methods_are_never_overwritten() -> None:
    @wireformat
    class Custom:
        x: u8

        def encode(self) -> bytes:  # type: ignore[override]
            return b"mine"

    assert Custom(1).encode() == b"mine"
    assert jw.encode(Custom(1)) == b"\x01"
    assert Custom.decode(b"\x01") == Custom(1)


def test_subclass_does_not_inherit_the_parents_codec() -> None:
    @wireformat
    class Base:
        a: u8

    @wireformat
    class Child(Base):
        b: u8

    assert Base(1).encode() == b"\x01"
    assert Child(1, 2).encode() == b"\x01\x02"
    assert Child.decode(b"\x01\x02") == Child(1, 2)


def test_with_codec_encodes_the_field() -> None:
    class Celsius:
        __name__ = "Celsius"

        @staticmethod
        def byte_size(value: float) -> int:
            return 2

        @staticmethod
        def encode(value: float, writer: jw.Writer) -> None:
            writer.write(round(value * 100).to_bytes(2, "little", signed=True))

        @staticmethod
        def decode(reader: jw.Reader) -> float:
            return int.from_bytes(reader.read(2), "little", signed=True) / 100

    @wireformat
    class Reading:
        sensor: u8
        temp: Annotated[float, jw.With(Celsius)]

    value = Reading(3, -1.5)
    assert value.encode() == bytes.fromhex("03 6aff")
    assert Reading.decode(bytes.fromhex("03 6aff")) == value
    with pytest.raises(jw.DecodeError) as info:
        Reading.decode(bytes.fromhex("03 6a"))
    assert info.value.path == "Reading.temp" and info.value.offset == 1


def test_separate_hooks_and_as_conversions() -> None:
    def write_upper(value: str, writer: jw.Writer) -> None:
        data = value.upper().encode()
        writer.write(bytes([len(data)]) + data)

    def read_lower(reader: jw.Reader) -> str:
        return reader.read(reader.read(1)[0]).decode().lower()

    @wireformat
    class Hooked:
        name: Annotated[str, jw.EncodeWith(write_upper), jw.SizeWith(lambda v: 1 + len(v.encode())), jw.DecodeWith(read_lower)]
        code: Annotated[str, jw.As(u16, to_wire=int, from_wire=str)]
        when: Annotated[float, jw.Into(u32, lambda v: int(v))]

    value = Hooked("ab", "513", 7.0)
    data = value.encode()
    assert data == bytes.fromhex("02 4142 0102 07000000")
    assert value.byte_size() == len(data)
    assert Hooked.decode(data) == Hooked("ab", "513", 7)


def test_encode_hook_without_size_is_refused() -> None:
    with pytest.raises(jw.SchemaError, match="SizeWith"):

        @wireformat
        class Half:
            x: Annotated[str, jw.EncodeWith(lambda v, w: None)]


def test_generated_source_is_visible_in_tracebacks() -> None:
    class Boom:
        __name__ = "Boom"

        @staticmethod
        def byte_size(value: object) -> int:
            return 1

        @staticmethod
        def encode(value: object, writer: jw.Writer) -> None:
            raise RuntimeError("boom")

        @staticmethod
        def decode(reader: jw.Reader) -> object:
            return None

    @wireformat
    class Exploding:
        x: Annotated[object, jw.With(Boom)]

    unit = jw.Codec(Exploding).unit
    assert "def encode(_v):" in unit.source
    assert linecache.getline(unit.filename, 1).startswith("# Exploding.enc: ")  # each function's heading
    assert linecache.getline(unit.filename, 3).startswith("def enc(")
    with pytest.raises(jw.EncodeError) as info:
        Exploding(1).encode()
    assert "boom" in str(info.value) and info.value.path == "Exploding.x"
    where = f"<jetwire generated {__name__}.{Exploding.__qualname__} encode>"
    assert unit.group_filename("encode") == where
    assert any(where in line for line in traceback.format_exception(info.value.__cause__))


def test_option_of_option_keeps_some_none_apart() -> None:
    codec = jw.Codec(jw.Option[Optional[u8]])
    assert codec.encode(None) == b"\x00"
    assert codec.encode(jw.Some(None)) == b"\x01\x00"
    assert codec.encode(jw.Some(7)) == b"\x01\x01\x07"
    assert codec.decode(b"\x01\x00") == jw.Some(None)


def test_from_future_annotations_and_names_defined_later() -> None:
    assert Ping.decode(b"\x00") == Ping(None)


def test_too_many_enum_variants_are_refused() -> None:
    namespace = {f"V{i}": type(f"V{i}", (), {"__qualname__": f"Big.V{i}"}) for i in range(257)}
    big = type("Big", (), namespace)
    with pytest.raises(jw.SchemaError, match="256"):
        wireenum(big)


@wireformat
class Hello:
    version: str


@wireformat
class Bye:
    code: u16


Greeting = Annotated[Hello | Bye, jw.Tagged({100: Hello, 107: Bye})]


def test_union_tagged_by_explicit_numbers() -> None:
    codec = jw.Codec(Greeting)
    assert codec.encode(Hello("9P")) == bytes.fromhex("64 0200 3950")
    assert codec.encode(Bye(2)) == bytes.fromhex("6b 0200")
    assert codec.decode(bytes.fromhex("6b 0200")) == Bye(2)
    with pytest.raises(jw.DecodeError, match="expected one of 100, 107") as info:
        codec.decode(b"\x65\x00\x00")
    assert info.value.offset == 0
    with pytest.raises(jw.EncodeError, match="Hello, Bye"):
        codec.encode(Pair(1, 2))
    with pytest.raises(jw.SchemaError, match="not a u8") as refused:
        jw.Tagged({256: Hello})
    assert isinstance(refused.value, ValueError)  # what these markers raised before


def test_generic_enum_is_planned_per_parameter() -> None:
    @wireenum
    class Result(Generic[T]):
        class Ok:
            value: T

        class Err:
            message: str

    codec = jw.Codec(Result[u16])
    assert codec.encode(Result.Ok(5)) == bytes.fromhex("00 0500")
    assert codec.decode(bytes.fromhex("01 0100 78")) == Result.Err("x")
    assert jw.Codec(Result[str]).decode(bytes.fromhex("00 0100 79")) == Result.Ok("y")


def test_keys_are_written_in_upstream_order_whatever_python_can_compare() -> None:
    assert jw.encode({Color.BLUE: 1, Color.RED: 2}, dict[Color, u8]) == bytes.fromhex("0200 00 02 02 01")
    assert jw.encode({None, 3, 1}, set[Optional[u8]]) == bytes.fromhex("0300 00 0101 0103")
    assert jw.encode(frozenset({"b", "a", "é"}), frozenset[str]) == bytes.fromhex("0300 0100 61 0100 62 0200 c3a9")


def test_tagged_list_numbers_module_level_variants_like_an_enum() -> None:
    Either = Annotated[Hello | Bye, jw.Tagged([Hello, Bye])]
    assert jw.encode(Bye(1), Either) == bytes.fromhex("01 0100")
    assert jw.decode(Either, bytes.fromhex("00 0000")) == Hello("")
    with pytest.raises(jw.SchemaError, match="not a u8"):
        jw.Tagged([Hello] * 300)


def test_a_method_bound_before_first_use_does_not_replan(monkeypatch: pytest.MonkeyPatch) -> None:
    """``enc = obj.encode`` taken before the codec exists keeps calling the stub; after the
    first call the stub must return the installed codec at once, not plan the class again."""
    import jetwire.runtime.decorators as decorators
    import jetwire.runtime.frames as frames
    from jetwire import p9

    @wireformat
    class Point:
        x: u16
        y: u16

    enc = Point(1, 2).encode
    frame_enc = p9.Tframe(tag=1, msg=p9.Tclunk(fid=7)).encode
    assert enc() == b"\x01\x00\x02\x00"
    first = frame_enc()

    def no_planning(*args: object) -> None:
        raise AssertionError("planned again")

    monkeypatch.setattr(decorators, "class_plan", no_planning)
    monkeypatch.setattr(frames, "plan", no_planning)
    assert enc() == b"\x01\x00\x02\x00"
    assert frame_enc() == first


def test_str_errors_marker_takes_only_round_trip_handlers() -> None:
    with pytest.raises(jw.SchemaError, match="does not round-trip"):
        jw.StrErrors("replace")
    with pytest.raises(jw.SchemaError, match="marks a str"):
        jw.Codec(Annotated[bytes, jw.SurrogateEscape])
    assert jw.StrErrors("surrogateescape") == jw.SurrogateEscape and hash(jw.StrErrors("strict"))


@pytest.mark.parametrize("postponed", [False, True])
def test_a_name_in_an_annotation_means_what_its_own_module_says(postponed: bool) -> None:
    """Plans of hints are shared between classes (planner.registry.plain_nodes), but not those that
    needed a name looked up: "Alias" is a u32 in one module and a str in the other."""
    import sys
    import types

    made = []
    for i, alias in enumerate(("u32", "str")):
        name = f"_jetwire_test_alias_{int(postponed)}_{i}"
        module = types.ModuleType(name)
        sys.modules[name] = module
        source = ("from __future__ import annotations\n" if postponed else "") + (
            f"from jetwire import u32, wireformat\nAlias = {alias}\n"
            "@wireformat\nclass Holder:\n    items: list['Alias']\n    one: 'Alias'\n"
        )
        try:
            exec(compile(source, name, "exec", dont_inherit=True), module.__dict__)
            made.append(module.Holder)
        finally:
            del sys.modules[name]
    numbers, texts = made
    assert numbers(items=[1], one=2).encode() == bytes([1, 0, 1, 0, 0, 0, 2, 0, 0, 0])
    assert texts(items=["a"], one="b").encode() == bytes([1, 0, 1, 0, ord("a"), 1, 0, ord("b")])


def test_a_codec_compiles_only_the_group_that_is_used() -> None:
    """Compiling is most of a codec's first-use cost: decoding must not compile the encoder, and
    each method must be replaced on the class by exactly its own generated function."""
    @wireformat
    class Reading:
        sensor: u16
        values: list[u32]
        note: Optional[str] = None

    value = Reading(3, [1, 2], "ok")
    data = bytes.fromhex("0300 0200 01000000 02000000 01 0200") + b"ok"
    assert Reading.decode(data) == value
    unit = Reading.__jetwire__.codec.made  # type: ignore[attr-defined]
    assert set(unit._pending) == {"dec_view", "decode_view", "enc", "encode", "size", "byte_size", "enc_into"}
    assert Reading.__dict__["decode"].__func__ is unit.decode
    assert Reading.__dict__["encode"] is decorators_stub("encode")  # untouched until used
    assert Reading.decode(bytearray(data)) == value  # a view: its own group, compiled now
    assert "dec_view" not in unit._pending and "enc" in unit._pending
    assert value.encode() == data and value.byte_size() == len(data)
    assert Reading.__dict__["encode"] is unit.encode and Reading.__dict__["byte_size"] is unit.byte_size
    assert "def enc_into(" in unit.source and not unit._pending  # source: every group


def decorators_stub(name: str) -> object:
    from jetwire.runtime.decorators import WireFormat

    return WireFormat.__dict__[name]


@pytest.mark.parametrize("annotation", ['"u32 +"', 'list["u32 +"]'])
def test_an_annotation_that_is_not_an_expression_is_named(annotation: str) -> None:
    namespace: dict[str, object] = {"u32": u32}
    exec(compile(f"class Broken:\n    x: {annotation}\n", "broken", "exec", dont_inherit=True), namespace)
    with pytest.raises(jw.SchemaError, match=r"Broken\.x: the annotation 'u32 \+' is not a type expression"):
        wireformat(namespace["Broken"])


def test_a_recursive_class_declared_again_in_a_loop_refers_to_itself() -> None:
    # The declaring function's names, taken when the class is decorated, still bind "Tree" to
    # the previous round's class: the class's own name must win.
    made = []
    for round_ in range(3):

        @wireformat
        class Tree:
            value: u8
            kids: list["Tree"]  # noqa: UP037 - a string inside the (postponed) annotation

        @wireformat
        class Bush:
            value: u8
            kids: list[Bush]  # only the postponed annotation is a string

        tree = Tree(round_, [Tree(9, [])])
        assert Tree.decode(tree.encode()) == tree
        bush = Bush(round_, [Bush(9, [])])
        assert Bush.decode(bush.encode()) == bush
        made.append(Tree)
    assert len(set(made)) == 3


def test_mutually_recursive_classes_declared_again_in_a_loop_refer_to_their_own_round() -> None:
    # When Ping is decorated, the function's "Pong" is still the previous round's class: Ping
    # must wait for this round's Pong rather than take it.
    for round_ in range(3):

        @wireformat
        class Ping:
            value: u8
            pong: Optional[Pong]

        @wireformat
        class Pong:
            value: u8
            ping: Optional[Ping]

        value = Ping(round_, Pong(round_, Ping(9, None)))
        decoded = Ping.decode(value.encode())
        assert decoded == value
        assert type(decoded.pong) is Pong
        assert type(decoded.pong.ping) is Ping


def test_a_cycle_of_three_local_classes_resolves_each_name() -> None:
    # First could see neither Second nor Third when decorated, Second not Third.
    for round_ in range(2):

        @wireformat
        class First:
            value: u8
            next: Optional[Second]

        @wireformat
        class Second:
            value: u8
            next: Optional[Third]

        @wireformat
        class Third:
            value: u8
            next: Optional[First]

        value = First(round_, Second(1, Third(2, First(3, None))))
        decoded = First.decode(value.encode())
        assert decoded == value
        assert type(decoded.next.next) is Third


def test_a_local_enum_and_struct_that_name_each_other_in_a_loop() -> None:
    for round_ in range(2):

        @wireenum
        class Expr:
            class Leaf:
                value: u8

            class Node:
                inner: Pair

        @wireformat
        class Pair:
            left: Expr
            right: Expr

        value = Expr.Node(Pair(Expr.Leaf(round_), Expr.Node(Pair(Expr.Leaf(1), Expr.Leaf(2)))))
        decoded = Expr.decode(value.encode())
        assert decoded == value
        assert type(decoded.inner) is Pair


def test_a_local_class_named_like_a_module_class_is_the_local_one() -> None:
    # The function assigns Pair below, so Pair is its local throughout (as Python scopes it):
    # the module's Pair, the only one bound when Holder is decorated, is not the one meant.
    @wireformat
    class Holder:
        pair: Pair

    @wireformat
    class Pair:
        text: str

    assert Holder.decode(Holder(Pair("x")).encode()) == Holder(Pair("x"))

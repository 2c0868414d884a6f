"""Plan nodes are descriptions: frozen once planned, with each field's source hint kept, so
whatever reads a plan (the strategies above all) needs nothing but the plan."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any, Generic, Optional, TypeVar

import hypothesis.strategies as st
import pytest
from hypothesis import given

import jetwire as jw
from jetwire.compiler import plan as plan_module
from jetwire.compiler.plan import FrozenNodeError, MapNode, StructNode, UnionNode
from jetwire.compiler.planner import plan
from jetwire.testing import register_strategy, strategy

T = TypeVar("T")


@jw.wireformat
class Point:
    x: jw.u16
    y: jw.u16


@jw.wireenum
class Shape:
    class Circle:
        r: jw.u32

    class Dot:
        pass


def test_a_planned_node_cannot_change() -> None:
    struct = plan(Point)
    assert isinstance(struct, StructNode)
    union = plan(Shape)
    assert isinstance(union, UnionNode)
    mapping = plan(dict[str, list[jw.u8]])
    assert isinstance(mapping, MapNode)
    for node, name, value in [
        (struct, "fields", ()),
        (struct, "fixed", 3),
        (struct, "direct", False),
        (union, "variants", ()),
        (union, "label", "Other"),
        (mapping, "key", mapping.value),
        (mapping.value, "nesting", 0),
        (plan(jw.u32), "kind", None),
        (plan(Optional[str]), "wrapped", True),
    ]:
        with pytest.raises(FrozenNodeError, match=f"cannot set {name}"):
            setattr(node, name, value)
    with pytest.raises(FrozenNodeError, match="cannot delete label"):
        del struct.label
    assert struct.fixed == 4 and mapping.key.label == "str"


def test_fields_and_variants_cannot_change() -> None:
    struct = plan(Point)
    assert isinstance(struct, StructNode)
    with pytest.raises(AttributeError):  # a named tuple
        struct.fields[0].name = "z"  # type: ignore[misc]
    union = plan(Shape)
    assert isinstance(union, UnionNode)
    with pytest.raises(FrozenNodeError):
        union.variants[0].tag = 7
    with pytest.raises(AttributeError):  # a struct's fields are a tuple: no list to append to
        struct.fields.append(struct.fields[0])  # type: ignore[attr-defined]


def test_a_struct_is_frozen_by_finish_not_before() -> None:
    """Recursive types refer to a struct before its fields are planned: it is built in two
    steps, and only the second freezes it."""
    node = StructNode(Point, "Point", ())
    node.label = "Point"  # still being built
    node.finish([], direct=False)
    with pytest.raises(FrozenNodeError):
        node.label = "Other"


def test_nodes_made_directly_are_frozen_when_made() -> None:
    node = plan_module.IPNode(4, ipaddress.IPv4Address)
    with pytest.raises(FrozenNodeError):
        node.version = 6


# ---------------------------------------------------------------------------------------------
# Field hints in the plan

TEXT_COMPLEX = Annotated[complex, jw.As(str, str, complex)]
register_strategy(TEXT_COMPLEX, st.just(1j))


def _declare_pair() -> type:
    """Head names Tail, declared after it in the same function: Head is planned on first use,
    when the function's names are gone, through Tail's own planning."""

    @jw.wireformat
    class Head:
        number: TEXT_COMPLEX
        tail: Optional[Tail]

    @jw.wireformat
    class Tail:
        head: Optional[Head]

    return Head


def test_strategies_read_hints_from_the_plan_not_the_annotations() -> None:
    """Re-reading Head's annotations here finds no Tail (the names of the function that
    declared it are gone): the hint of ``number``, which the registry knows, comes from the
    plan, so its strategy is found."""
    head = _declare_pair()

    @given(strategy(head))
    def check(value: Any) -> None:
        assert value.number == 1j

    check()


class Opaque:
    """A codec for a value jetwire cannot invent: a strategy must be registered for it."""

    __name__ = "Opaque"

    @staticmethod
    def byte_size(value: Any) -> int:
        return 2

    @staticmethod
    def encode(value: Any, writer: jw.Writer) -> None:
        writer.write(value.to_bytes(2, "little"))

    @staticmethod
    def decode(reader: jw.Reader) -> Any:
        return int.from_bytes(reader.read(2), "little")


OPAQUE = jw.With(Opaque)  # markers compare by identity: one object, for the registry's key
OPAQUE_U16 = Annotated[jw.u16, OPAQUE]


@jw.wireformat
class Boxed(Generic[T]):
    item: Annotated[T, OPAQUE]
    count: jw.u8


def test_a_field_hint_keeps_its_markers_with_parameters_bound() -> None:
    node = plan(Boxed[jw.u16])
    assert isinstance(node, StructNode)
    item, count = node.fields
    assert item.hint == OPAQUE_U16
    assert count.hint == jw.u8


def test_strategies_find_a_strategy_registered_for_a_field_with_markers() -> None:
    register_strategy(OPAQUE_U16, st.just(513))

    @given(strategy(Boxed[jw.u16]))
    def check(value: Any) -> None:
        assert value.item == 513
        assert jw.decode(Boxed[jw.u16], jw.encode(value, Boxed[jw.u16])) == value

    check()


# ---------------------------------------------------------------------------------------------
# The planner's registry


def _shape(node: plan_module.Node, seen: frozenset[int] = frozenset()) -> tuple[Any, ...]:
    """What a plan says, compared by value: kinds, labels, sizes and fields, down to the leaves."""
    if id(node) in seen:  # a recursive type: its shape is already being told
        return (type(node).__name__, node.label)
    seen = seen | {id(node)}
    fields = tuple((f.name, f.skip, f.init, f.hint) for f in node.fields) if isinstance(node, StructNode) else ()
    children = tuple(_shape(child, seen) for child in node.children())
    return type(node).__name__, node.label, node.fixed, node.min_size, node.nesting, fields, children


@jw.wireformat
class Everything:
    numbers: list[jw.u32]
    table: dict[str, Optional[jw.f32]]
    level: jw.Level
    where: jw.SocketAddr
    ip: jw.IpAddr
    text: tuple[str, jw.u8]


def test_clear_empties_the_caches_and_planning_again_gives_equal_plans() -> None:
    from jetwire import p9
    from jetwire.compiler import planner

    hints: list[Any] = [list[jw.u32], dict[str, Optional[jw.f32]], jw.Level, jw.SocketAddr, jw.IpAddr,
                        tuple[str, jw.u8], p9.Tframe, Everything]
    before = [_shape(plan(h)) for h in hints]
    registry = planner.registry
    caches = [registry.plain_nodes, registry.enum_nodes, registry.tagged_nodes, registry.frame_nodes,
              registry.annotation_code]
    assert all(caches)
    old_list = plan(list[jw.u32])

    registry.clear()
    assert not any(caches)
    assert registry.default_tags  # declarations, not caches: SocketAddr is still tagged by default

    assert [_shape(plan(h)) for h in hints] == before
    assert plan(list[jw.u32]) is not old_list  # planned anew
    assert plan(list[jw.u32]) is plan(list[jw.u32])  # and shared again


def test_register_default_tags_refuses_what_is_not_a_union_of_classes() -> None:
    from jetwire.compiler.planner import register_default_tags

    with pytest.raises(jw.SchemaError, match="a union of classes"):
        register_default_tags(jw.Tagged({1: "Point", 2: Point}))  # type: ignore[dict-item]

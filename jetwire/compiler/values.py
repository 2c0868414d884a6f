"""What the codecs do with the values a plan describes: build a struct from its fields, find the
variant of a union a value is, order the keys of a set or map.

Plan nodes only describe a wire type; the behaviour lives here, in functions of the node. What
they work out once per node (a sort key) is kept in a table beside the node, never on it, so a
planned node never changes.
"""

from __future__ import annotations

import struct
import weakref
from collections.abc import Callable
from typing import Any

from .plan import (
    ConvertNode,
    EnumNode,
    FloatNode,
    Node,
    OptionNode,
    SeqNode,
    SetNode,
    StrNode,
    StructNode,
    TupleNode,
    UnionNode,
    Variant,
)

SortKey = Callable[[Any], Any]


def construct(node: StructNode, values: list[Any]) -> Any:
    """An instance of ``node``'s class from its wire field values, as the generated decoder
    builds it: by ``__init__``, then the fields outside ``__init__`` stored as dataclasses would."""
    if node.positional():
        return node.cls(*values)
    wire = node.wire_fields
    obj = node.cls(**{f.name: v for f, v in zip(wire, values) if f.init})
    for f, value in zip(wire, values):
        if not f.init:
            object.__setattr__(obj, f.name, value)
    return obj


def variant_of(node: UnionNode, value: Any) -> Variant | None:
    """The variant ``value`` is an instance of: its exact class first, then a subclass."""
    found = node.by_type.get(type(value))
    if found is not None:
        return found
    for v in node.variants:
        if isinstance(value, v.py_type):
            return v
    return None


# Made once per node. Weak: a node dies with the classes it describes (classes declared in a
# loop), and a table of strong references would keep every one alive.
_sort_keys: weakref.WeakKeyDictionary[Node, SortKey | None] = weakref.WeakKeyDictionary()


def sort_key_of(node: Node) -> SortKey | None:
    """A key that orders values as upstream's derived ``Ord`` does (the order of a BTreeMap's
    keys, so part of the bytes), or None where Python's own order is the same: ints, bools,
    bytes, ``str`` (code point order is UTF-8 byte order), IP addresses, datetimes, URLs."""
    try:
        return _sort_keys[node]
    except KeyError:
        pass
    key = _make_sort_key(node)
    _sort_keys[node] = key  # threads that race here make equal keys: either one will do
    return key


def _make_sort_key(node: Node) -> SortKey | None:
    if isinstance(node, EnumNode):
        return node.index.__getitem__
    if isinstance(node, StrNode) and node.errors != "strict":
        errors = node.errors  # escaped bytes are ordered as the bytes they stand for
        return lambda value: value.encode("utf-8", errors)
    if isinstance(node, FloatNode):
        return float_order  # Rust's floats have no Ord; total_cmp's order keeps NaNs in one place
    if isinstance(node, OptionNode):
        return _option_key(node)
    if isinstance(node, UnionNode):
        return _union_key(node)
    if isinstance(node, StructNode):
        return _struct_key(node)
    if isinstance(node, TupleNode):
        keys = [sort_key_of(i) for i in node.items]
        if any(keys):
            return lambda value: tuple(k(v) if k else v for k, v in zip(keys, value))
        return None
    if isinstance(node, SeqNode):  # a Vec: element by element, a prefix first, as Python's tuples
        elem = sort_key_of(node.elem)
        return (lambda value: tuple(map(elem, value))) if elem else None
    if isinstance(node, SetNode):  # a BTreeSet: its members in order, compared as a sequence
        member = sort_key_of(node.elem)
        if member is None:
            return lambda value: tuple(sorted(value))
        return lambda value: tuple(sorted(map(member, value)))
    if isinstance(node, ConvertNode):  # the peer orders the wire values
        inner, to_wire = sort_key_of(node.inner), node.to_wire
        if to_wire is None:
            return inner
        return (lambda value: inner(to_wire(value))) if inner else to_wire
    return None


def float_order(value: float) -> int:
    """IEEE 754 totalOrder (Rust's ``total_cmp``): -NaN < -inf < ... < -0.0 < 0.0 < ... < NaN."""
    try:
        bits: int = _SIGNED_BITS.unpack(_DOUBLE.pack(value))[0]
    except (TypeError, OverflowError, struct.error):
        return 0  # no float the wire holds: encoding it says why, with its path
    return bits ^ ((bits >> 63) & 0x7FFF_FFFF_FFFF_FFFF)


_DOUBLE = struct.Struct("<d")
_SIGNED_BITS = struct.Struct("<q")


def _option_key(node: OptionNode) -> SortKey:
    inner = sort_key_of(node.inner)
    wrapped = node.wrapped

    def option_key(value: Any) -> Any:
        if value is None:
            return (0,)
        present = value.value if wrapped else value
        return (1, inner(present) if inner else present)

    return option_key


def _union_key(node: UnionNode) -> SortKey:
    """By variant (its tag: a ``@wireenum``'s declaration index), then the variant's fields.
    Each variant's key is made on first use: a recursive type's key needs its own."""
    keys: dict[int, SortKey | None] = {}

    def union_key(value: Any) -> Any:
        variant = variant_of(node, value)
        if variant is None:
            raise TypeError(f"{value!r} is not a {node.label}")
        if variant.tag not in keys:
            keys[variant.tag] = sort_key_of(variant.node)
        inner = keys[variant.tag]
        return (variant.tag, inner(value) if inner else value)

    return union_key


def _struct_key(node: StructNode) -> SortKey:
    """Field by field in declaration order, as ``#[derive(Ord)]``. The fields' keys are made on
    first use: a recursive type's key needs its own."""
    made: list[tuple[tuple[str, SortKey | None], ...]] = []  # one entry, once made

    def struct_key(value: Any) -> Any:
        if not made:  # threads that race here append equal entries: the first is used
            made.append(tuple((f.name, sort_key_of(f.node)) for f in node.wire_fields if f.node is not None))
        return tuple(k(getattr(value, name)) if k else getattr(value, name) for name, k in made[0])

    return struct_key

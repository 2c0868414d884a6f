"""Generated code names itself: constants for what they hold, temporaries for their field, one
comment line, a qualified name and a docstring per function; the same type gives the same
source whatever order its groups compile in; and no field name makes a local shadow a global."""

from __future__ import annotations

import re
from typing import Any, Optional

import jetwire as jw
from jetwire import u16, u32, u64


def _declare() -> tuple[type, type]:
    """A fresh ``Item`` and ``Order`` (a codec compiles once per class)."""

    @jw.wireformat
    class Item:
        a: u16
        b: u64
        label: str

    @jw.wireformat
    class Order:
        id: u32
        name: str
        note: Optional[str]
        items: list[Item]
        tags: dict[str, u32]

    return Item, Order


def _functions(source: str) -> list[str]:
    """The source cut at each function's heading comment, sorted (groups compile in any order)."""
    return sorted(re.split(r"\n(?=# )", source.strip()))


def test_constants_and_temporaries_are_named_for_what_they_hold() -> None:
    _, order = _declare()
    source = jw.Codec(order).unit.source
    for name in ("_cls_Order", "_cls_Item", "_name_utf8", "_items", "_item_label", "_items_count", "_note_tag"):
        assert re.search(rf"\b{name}\b", source), name
    assert not re.search(r"\b_(C|t|f|n|e|k|v|s|l|u)\d+\b", source)  # no numbered names


def test_each_function_has_a_heading_a_qualname_and_a_docstring() -> None:
    _, order = _declare()
    unit = jw.Codec(order).unit
    source = unit.source
    for name in ("enc", "encode", "dec", "decode", "decode_prefix", "dec_view", "decode_view", "size",
                 "byte_size", "enc_into"):
        fn = getattr(unit, name)
        assert fn.__qualname__ == f"Order.{name}"
        assert fn.__doc__
        assert f"\n# Order.{name}: " in "\n" + source
    assert source.count("\ndef ") + source.startswith("def ") == source.count("\n# Order.") + source.startswith("# ")


def test_the_source_does_not_depend_on_the_order_groups_compile_in() -> None:
    _, first = _declare()
    _, second = _declare()
    value: Any = first(1, "n", None, [], {})
    jw.Codec(first).unit.decode(jw.Codec(first).unit.encode(value))  # encoders, then decoders
    later: Any = second(1, "n", None, [], {})
    data = jw.Codec(second).unit.byte_size(later)  # sizes first
    assert data == len(jw.Codec(first).unit.encode(value))
    assert _functions(jw.Codec(first).unit.source) == _functions(jw.Codec(second).unit.source)


def test_fields_named_like_generated_names_shadow_nothing() -> None:
    item, _ = _declare()

    @jw.wireformat
    class Awkward:
        cls_Item: item  # type: ignore[valid-type]
        unit_Item: Optional[str]
        P_H: list[u16]
        new: u32
        data: bytes
        d: u16
        b: str
        v3enc: u16
        Bail: str
        ENC: list[str]

    value: Any = Awkward(item(1, 2, "x"), "u", [3, 4], 5, b"raw", 6, "bee", 7, "bail", ["e", "n"])
    unit = jw.Codec(Awkward).unit
    data = unit.enc(value)  # the raw fast path: a shadowed global would raise here
    assert data == jw.Codec(Awkward).encode(value)
    assert unit.dec(data, 0) == (value, len(data))
    assert unit.size(value) == len(data)

"""Checked by `mypy --strict` in CI (not run): what a type checker sees of jetwire's API."""

from __future__ import annotations

from typing import Annotated, Optional

from typing_extensions import assert_type

import jetwire
from jetwire import Tagged, WireFormat, u16, u32, wireformat


@wireformat(frozen=True)
class Item(WireFormat):
    sku: u32
    label: str
    note: Optional[str] = None


@wireformat
class Left(WireFormat):
    n: u16


@wireformat
class Right(WireFormat):
    text: str


Either = Annotated[Left | Right, Tagged([Left, Right])]


def check() -> None:
    item = Item(7, "tea")  # the generated __init__, seen through dataclass_transform
    data = item.encode()
    assert_type(data, bytes)
    assert_type(Item.decode(data), Item)
    assert_type(Item.decode_prefix(data, 0), tuple[Item, int])
    assert_type(item.byte_size(), int)
    assert_type(jetwire.decode(Item, data), Item)
    assert_type(jetwire.Codec(list[u16]).encode([1, 2]), bytes)
    value: Either = Left(1)
    jetwire.encode(value, Either)

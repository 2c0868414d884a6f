"""Checked by `mypy --strict` in CI (not run): what a type checker sees of jetwire's API."""

from __future__ import annotations

import asyncio
import collections
from typing import Annotated, BinaryIO, Optional

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


@wireformat
class Upstream(WireFormat):
    """usize/isize, VecDeque and PhantomData spelled in Python."""

    count: jetwire.usize
    delta: jetwire.isize
    queue: collections.deque[u16]
    marker: None = None


def check() -> None:
    item = Item(7, "tea")  # the generated __init__, seen through dataclass_transform
    data = item.encode()
    assert_type(data, bytes)
    assert_type(Item.decode(data), Item)
    assert_type(Item.decode_prefix(data, 0), tuple[Item, int])
    assert_type(item.byte_size(), int)
    assert_type(jetwire.decode(Item, data), Item)
    assert_type(jetwire.Codec(list[u16]).encode([1, 2]), bytes)
    assert_type(jetwire.Codec(Item, max_zero_width_elements=10).decode(data), Item)
    assert_type(jetwire.MAX_ZERO_WIDTH_ELEMENTS, int)
    value: Either = Left(1)
    upstream = Upstream(1, -1, collections.deque([2]))
    assert_type(upstream.count, int)
    assert_type(upstream.delta, int)
    assert_type(Upstream.decode(upstream.encode()).queue, collections.deque[int])
    jetwire.encode(value, Either)


class Frame2(jetwire.Frame[Either]):
    __slots__ = ()


def check_frames() -> None:
    frame = Frame2(tag=1, msg=Left(3))
    assert_type(frame.encode(), bytes)
    decoded = Frame2.decode(frame.encode())
    assert_type(decoded, Frame2)
    assert_type(decoded.tag, int)
    assert_type(decoded.msg, Left | Right)
    reader = jetwire.FrameReader(Frame2, max_size=8192)
    reader.feed(b"")
    assert_type(reader.next_frame(), Frame2 | None)
    name: jetwire.fsstr = "caf\udce9"
    assert_type(name, str)


async def check_p9() -> None:
    from jetwire import p9

    client = await p9.Client.connect("127.0.0.1", 564, aname="/srv")
    assert_type(await client.read_bytes("a"), bytes)
    assert_type(await client.listdir(""), list[str])
    assert_type(await client.getattr(0), p9.Rgetattr)
    reply = p9.Rframe.decode(p9.Rframe(tag=1, msg=p9.Rclunk()).encode())
    assert_type(reply, p9.Rframe)


async def check_streams(stream: asyncio.StreamReader, file: BinaryIO) -> None:
    assert_type(jetwire.read_value(Item, file), Item)
    assert_type(Item.decode_from(file), Item)
    reader = jetwire.ValueReader(stream)
    assert_type(await reader.read(Item), Item)
    assert_type(await Item.decode_async(reader), Item)
    async for value in reader.values(Item):
        assert_type(value, Item)
    assert_type(reader.take_buffered(), bytes)

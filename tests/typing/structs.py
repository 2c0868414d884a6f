"""``@wireformat`` classes, unions, options and codecs as a type checker sees them (checked by
``mypy --strict``, not run; each ``# type: ignore[code]`` is an error that must stay one).

Nothing here needs the jetwire.mypy plugin: these are the spellings pyright follows too
(docs/typing.md)."""

from __future__ import annotations

import asyncio
import io
from typing import Annotated, Generic, Optional, TypeVar

from typing_extensions import assert_never, assert_type

import jetwire
from jetwire import Codec, Option, Some, Tagged, WireFormat, u8, u16, u32, wireformat

T = TypeVar("T")


@wireformat
class Point(WireFormat):
    x: u16
    y: u16


@wireformat(frozen=True, order=True)
class Version(WireFormat):
    major: u8
    minor: u8 = 0


@wireformat
class Page(WireFormat, Generic[T]):
    items: list[T]
    cursor: Optional[T] = None


@wireformat
class Login(WireFormat):
    user: str


@wireformat
class Logout(WireFormat):
    code: u8


# The spelling every type checker follows: module-level classes, numbered 0, 1 by the list.
Session = Annotated[Login | Logout, Tagged([Login, Logout])]


@wireformat
class Envelope(WireFormat):
    body: Session
    reply_to: Option[Optional[u32]]


def structs() -> None:
    point = Point(1, y=2)
    data = point.encode()
    assert_type(data, bytes)
    assert_type(point.byte_size(), int)
    assert_type(Point.decode(data), Point)
    assert_type(Point.decode(bytearray(data)), Point)
    assert_type(Point.decode(memoryview(data)), Point)
    assert_type(Point.decode_prefix(data, 0), tuple[Point, int])
    assert_type(Version(1) < Version(1, 2), bool)
    Point(1)  # type: ignore[call-arg]
    Point(1, 2, 3)  # type: ignore[call-arg]
    Point(x="1", y=2)  # type: ignore[arg-type]
    Point.decode("text")  # type: ignore[arg-type]
    Version(1).major = 2  # type: ignore[misc]


def generics() -> None:
    page = Page[u16]([1, 2], cursor=3)
    assert_type(page, Page[int])
    assert_type(page.items, list[int])
    assert_type(Page[str].decode(b""), Page[str])
    assert_type(Codec(Page[u32]).decode(b""), Page[int])
    Page[str]([1])  # type: ignore[list-item]


def unions_and_options() -> None:
    envelope = Envelope(Login("ann"), Some(None))
    assert_type(envelope.body, Login | Logout)
    assert_type(envelope.reply_to, Optional[Some[Optional[int]]])
    reply_to = envelope.reply_to
    if reply_to is not None:
        assert_type(reply_to.value, Optional[int])
    match envelope.body:
        case Login(user):
            assert_type(user, str)
        case Logout(code=code):
            assert_type(code, int)
        case other:
            assert_never(other)  # a Tagged union is closed: the match is exhaustive
    Envelope(Point(1, 2), None)  # type: ignore[arg-type]
    Envelope(Logout(1), 5)  # type: ignore[arg-type]


def codecs_and_functions() -> None:
    codec = Codec(list[u16])
    assert_type(codec, Codec[list[int]])
    assert_type(codec.encode([1, 2]), bytes)
    assert_type(codec.decode(b""), list[int])
    assert_type(codec.decode_prefix(b"", 0), tuple[list[int], int])
    assert_type(codec.byte_size([1]), int)
    codec.encode(["a"])  # type: ignore[list-item]
    assert_type(jetwire.encode(Point(1, 2)), bytes)
    assert_type(jetwire.encode(7, u32), bytes)
    assert_type(jetwire.decode(Point, b""), Point)
    assert_type(jetwire.decode_prefix(Point, b"", 0), tuple[Point, int])
    assert_type(jetwire.byte_size(Point(1, 2)), int)
    assert_type(jetwire.explain(Point, b""), str)


def streams() -> None:
    buffer = io.BytesIO()
    assert_type(Point(1, 2).encode_to(buffer), int)
    assert_type(Point.decode_from(buffer), Point)
    assert_type(jetwire.write_value(Point(1, 2), buffer), int)
    Point(1, 2).encode_to("path")  # type: ignore[arg-type]


async def async_streams(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    assert_type(await Point(1, 2).encode_async(writer), int)
    assert_type(await Point.decode_async(reader), Point)
    assert_type(await jetwire.write_value_async(Point(1, 2), writer), int)
    await Point.decode_async(writer)  # type: ignore[arg-type]

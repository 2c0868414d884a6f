"""What the jetwire.mypy plugin gives a ``@wireformat`` class that does not inherit
``WireFormat`` (checked by ``mypy --strict``, not run; each ``# type: ignore[code]`` is an error
that must stay one). Without the plugin, inherit ``WireFormat`` to get these methods typed."""

from __future__ import annotations

import asyncio
import io
from typing import Annotated

from typing_extensions import assert_type

from jetwire import Skip, wireformat


@wireformat
class Bare:
    name: str
    cache: Annotated[int, Skip] = 0


def plugin_methods_without_inheriting() -> None:
    bare = Bare("x")
    assert_type(bare.encode(), bytes)
    assert_type(bare.byte_size(), int)
    assert_type(Bare.decode(b""), Bare)
    assert_type(Bare.decode_prefix(b"", 3), tuple[Bare, int])
    assert_type(bare.encode_to(io.BytesIO()), int)
    assert_type(Bare.decode_from(io.BytesIO()), Bare)
    Bare.decode(1)  # type: ignore[arg-type]
    bare.encode(b"")  # type: ignore[call-arg]
    bare.no_such_method()  # type: ignore[attr-defined]


async def plugin_methods_async(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    assert_type(await Bare("x").encode_async(writer), int)
    assert_type(await Bare.decode_async(reader), Bare)
    await Bare.decode_async(writer)  # type: ignore[arg-type]

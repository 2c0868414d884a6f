"""Reading values from binary files and asyncio streams (upstream's AsyncWireFormat).

A value of variable size is read by the interpreter, which asks for exactly the bytes it needs
next, so nothing past the value is consumed. A fixed-size value is read in one call.
A stream that ends before the first byte of a value raises ``EOFError``; one that ends inside
a value raises ``DecodeError`` naming the field.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, BinaryIO

from ..compiler.interpret import DecodeState, decode_steps
from ..errors import DecodeError
from .codec import codec_for

if TYPE_CHECKING:  # asyncio costs 40 ms to import: only the async readers need it
    import asyncio


def _read_exactly(file: BinaryIO, n: int) -> bytes:
    chunks = []
    left = n
    while left > 0:
        chunk = file.read(left)
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_value(tp: Any, file: BinaryIO) -> Any:
    """Reads one value of ``tp`` from a binary file object, consuming only its bytes."""
    codec = codec_for(tp)
    node = codec.node
    if node.fixed is not None:
        data = _read_exactly(file, node.fixed)
        if not data and node.fixed:
            raise EOFError(f"end of file before a {node.label}")
        return codec.decode(data)
    return _drive(node, lambda n: _read_exactly(file, n))


def _drive(node: Any, read: Callable[[int], bytes]) -> Any:
    st = DecodeState(0, None)
    steps = decode_steps(node, (node.label,), st)
    try:
        want = steps.send(None)  # type: ignore[arg-type]
        first = True
        while True:
            chunk = read(want)
            if first and not chunk and want:
                steps.close()
                raise EOFError(f"end of stream before a {node.label}")
            first = False
            want = steps.send(chunk)
    except StopIteration as done:
        return done.value
    except RecursionError:
        raise DecodeError("nesting too deep to decode", node.label, st.offset) from None


async def read_value_async(tp: Any, reader: asyncio.StreamReader) -> Any:
    """Reads one value of ``tp`` from an ``asyncio.StreamReader``, consuming only its bytes."""
    import asyncio

    codec = codec_for(tp)
    node = codec.node

    async def read(n: int) -> bytes:
        try:
            return await reader.readexactly(n)
        except asyncio.IncompleteReadError as exc:
            return exc.partial

    if node.fixed is not None:
        data = await read(node.fixed)
        if not data and node.fixed:
            raise EOFError(f"end of stream before a {node.label}")
        return codec.decode(data)
    st = DecodeState(0, None)
    steps = decode_steps(node, (node.label,), st)
    try:
        want = steps.send(None)  # type: ignore[arg-type]
        first = True
        while True:
            chunk = await read(want)
            if first and not chunk and want:
                steps.close()
                raise EOFError(f"end of stream before a {node.label}")
            first = False
            want = steps.send(chunk)
    except StopIteration as done:
        return done.value
    except RecursionError:
        raise DecodeError("nesting too deep to decode", node.label, st.offset) from None


def write_value(value: Any, file: BinaryIO, tp: Any = None) -> int:
    """Writes the encoding of ``value`` to a binary file object; returns the byte count."""
    from .codec import encode

    data = encode(value, tp)
    file.write(data)
    return len(data)


async def write_value_async(value: Any, writer: asyncio.StreamWriter, tp: Any = None) -> int:
    from .codec import encode

    data = encode(value, tp)
    writer.write(data)
    await writer.drain()
    return len(data)

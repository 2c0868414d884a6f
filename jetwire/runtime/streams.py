"""Reading values from binary files and asyncio streams (upstream's AsyncWireFormat).

A value of variable size is read by the interpreter, which asks for exactly the bytes it needs
next, so nothing past the value is consumed. A fixed-size value is read in one call.
A stream that ends before the first byte of a value raises ``EOFError``; one that ends inside
a value raises ``DecodeError`` naming the field.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, BinaryIO

from ..compiler.interpret import DecodeState, decode_steps
from ..compiler.plan import HEADER_SIZE, FrameNode, Node
from ..errors import DecodeError
from .codec import codec_for

if TYPE_CHECKING:  # asyncio costs 40 ms to import: only the async readers need it
    import asyncio

_CHUNK = 1 << 20


def _read_exactly(file: BinaryIO, n: int) -> bytes:
    chunks = []
    left = n
    while left > 0:
        chunk = file.read(min(left, _CHUNK))  # a length read off the wire must not size a buffer
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


class _Pull:
    """Feeds a stream's bytes to the interpreter's decoder, which asks for them as it goes.
    The sync and async readers differ only in how they fetch what ``want`` says."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.state = DecodeState(0, None)
        self.steps = decode_steps(node, (node.label,), self.state)
        self.started = False
        self.want: int = self._next(None)
        self.value: Any = None
        self.done = False

    def _next(self, chunk: bytes | None) -> int:
        try:
            return self.steps.send(chunk)  # type: ignore[arg-type]
        except StopIteration as finished:
            self.value, self.done = finished.value, True
            return 0
        except RecursionError:
            raise DecodeError("nesting too deep to decode", self.node.label, self.state.offset) from None

    def give(self, chunk: bytes) -> None:
        if not self.started and not chunk:
            self.steps.close()
            raise EOFError(f"end of stream before a {self.node.label}")
        self.started = True
        self.want = self._next(chunk)


def read_value(tp: Any, file: BinaryIO) -> Any:
    """Reads one value of ``tp`` from a binary file object, consuming only its bytes."""
    codec = codec_for(tp)
    if codec.node.fixed:
        return codec.decode(_first(_read_exactly(file, codec.node.fixed), codec.node))
    if isinstance(codec.node, FrameNode):  # the size says how much to read: then one fast decode
        head = _first(_read_exactly(file, 4), codec.node)
        return codec.decode(head + _read_exactly(file, _frame_rest(head)))
    pull = _Pull(codec.node)
    while not pull.done:
        pull.give(_read_exactly(file, pull.want))
    return pull.value


async def read_value_async(tp: Any, reader: asyncio.StreamReader) -> Any:
    """Reads one value of ``tp`` from an ``asyncio.StreamReader``, consuming only its bytes."""
    import asyncio

    async def read(n: int) -> bytes:
        try:
            return await reader.readexactly(n)
        except asyncio.IncompleteReadError as exc:
            return exc.partial

    codec = codec_for(tp)
    if codec.node.fixed:
        return codec.decode(_first(await read(codec.node.fixed), codec.node))
    if isinstance(codec.node, FrameNode):
        head = _first(await read(4), codec.node)
        return codec.decode(head + await read(_frame_rest(head)))
    pull = _Pull(codec.node)
    while not pull.done:
        pull.give(await read(pull.want))
    return pull.value


def _frame_rest(head: bytes) -> int:
    """How many bytes follow a frame's size field (none when it is cut or below 7: then the
    decoder names the problem)."""
    size = int.from_bytes(head, "little") if len(head) == 4 else 0
    return size - 4 if size >= HEADER_SIZE else 0


def _first(data: bytes, node: Node) -> bytes:
    if not data:
        raise EOFError(f"end of stream before a {node.label}")
    return data


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

"""Reading values from binary files and asyncio streams (upstream's AsyncWireFormat).

Every reader decodes with the generated code from bytes it holds ahead of the value, then
gives back what the value did not use, so the next read starts exactly after it:

* a file with ``peek`` (``io.BufferedReader``, ``open(path, "rb")``, ``sys.stdin.buffer``, a
  socket's ``makefile("rb")``): decode what ``peek`` shows, then ``read`` exactly the value;
* a seekable file without ``peek`` (``io.BytesIO``, an unbuffered regular file): read ahead,
  decode, seek back over what is left;
* a ``ValueReader`` around an asyncio stream: it keeps what it read ahead for the next value.

A value the held bytes do not cover (it is larger, or it straddles the end of a ``peek``), a
bad value, and every read from a source that can give nothing back (an unbuffered pipe or
socket, a bare ``asyncio.StreamReader``, whose public API has no peek) go through the
interpreter, which asks for exactly the bytes it needs next. Whichever way a value is read,
afterwards the source stands just past the bytes decoding took: the whole value, or up to
where a bad one was found (a frame: its ``size`` bytes, as ``FrameReader`` drops them). A
source that ends before the first byte of a value raises ``EOFError``; one that ends inside a
value raises the ``DecodeError`` decoding those bytes would, same path and offset.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol, TypeVar, overload

from ..compiler.interpret import DecodeState, decode_steps
from ..compiler.plan import HEADER_SIZE, FrameNode, Node
from ..errors import DecodeError
from .codec import Codec, codec_for

if TYPE_CHECKING:  # asyncio costs 40 ms to import: only the async readers need it
    import asyncio

T = TypeVar("T")

_CHUNK = 1 << 20  # the most one read asks for: a length off the wire must not size a buffer
_READ_AHEAD = 4096  # what a seekable file is read ahead by: most messages fit, and it is cheap
_STREAM_CHUNK = 1 << 16  # what a ValueReader asks its stream for (asyncio's default limit)


def _read_exactly(file: BinaryIO, n: int) -> bytes:
    """``n`` bytes, fewer only where the file ends, in reads of at most ``_CHUNK``."""
    chunks = []
    left = n
    while left > 0:
        chunk = file.read(min(left, _CHUNK))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class _Pull:
    """Feeds a source's bytes to the interpreter's decoder, which asks for them as it goes.
    The sync and async readers differ only in how they fetch what ``want`` says."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.state = DecodeState(0, None)
        self.steps = decode_steps(node, (node.label,), self.state)
        self.started = False
        self.value: Any = None
        self.done = False
        self.want: int = self._next(None)

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


def _frame_rest(head: bytes) -> int:
    """How many bytes follow a frame's size field (none when it is cut or below 7: then the
    decoder names the problem)."""
    size = int.from_bytes(head, "little") if len(head) == 4 else 0
    return size - 4 if size >= HEADER_SIZE else 0


def _first(data: bytes, node: Node) -> bytes:
    if not data:
        raise EOFError(f"end of stream before a {node.label}")
    return data


# ---------------------------------------------------------------------------------------------
# Files


class _Exact:
    """A file that can give nothing back: every read is exactly what decoding asked for."""

    def __init__(self, file: BinaryIO) -> None:
        self.file = file

    def take(self, n: int) -> bytes:
        return _read_exactly(self.file, n)

    def finish(self) -> None:
        pass


class _Held:
    """Bytes held ahead of the value (``window``, used up to ``pos``), then the file. ``take``
    leaves the window only when decoding asks past its end, which proves every byte of it
    belongs to the value. ``finish`` puts the file just past what was taken."""

    def __init__(self, file: Any, window: bytes) -> None:
        self.file = file
        self.window = window
        self.pos = 0

    def take(self, n: int) -> bytes:
        pos, window = self.pos, self.window
        if pos + n <= len(window):
            self.pos = pos + n
            return window[pos:pos + n]
        head = window[pos:]
        self._leave_window()
        self.window, self.pos = b"", 0
        return head + _read_exactly(self.file, n - len(head))

    def _leave_window(self) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        raise NotImplementedError


class _Peeked(_Held):
    """The window is what ``peek`` showed: still in the file until read."""

    def _leave_window(self) -> None:
        if self.window:
            self.file.read(len(self.window))

    def finish(self) -> None:
        if self.pos:
            self.file.read(self.pos)


class _ReadAhead(_Held):
    """The window was read from a seekable file: what is left of it is seeked back over."""

    def _leave_window(self) -> None:
        pass

    def finish(self) -> None:
        left = len(self.window) - self.pos
        if left:
            self.file.seek(-left, 1)


def _seekable(file: Any) -> bool:
    try:
        return bool(file.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def _read_through(codec: Codec[Any], source: _Exact | _Held) -> Any:
    """The value read by taking exactly what decoding needs from ``source``."""
    node = codec.node
    try:
        if node.fixed:
            return codec.decode(_first(source.take(node.fixed), node))
        if isinstance(node, FrameNode):  # the size says how much to take: then one fast decode
            head = _first(source.take(4), node)
            return codec.decode(head + source.take(_frame_rest(head)))
        pull = _Pull(node)
        while not pull.done:
            pull.give(source.take(pull.want))
        return pull.value
    finally:
        source.finish()


@overload
def read_value(tp: type[T], file: BinaryIO) -> T: ...
@overload
def read_value(tp: Any, file: BinaryIO) -> Any: ...
def read_value(tp: Any, file: BinaryIO) -> Any:
    """Reads one value of ``tp`` from a binary file object, consuming only its bytes.

    Raises ``EOFError`` when the file ends before the value's first byte, ``DecodeError``
    when it ends inside the value or the bytes are not a valid value. Fast on files with
    ``peek`` (what ``open(path, "rb")`` returns) and on seekable ones; an unbuffered pipe or
    socket is read a field at a time (wrap it in ``io.BufferedReader``)."""
    codec = codec_for(tp)
    if codec.node.fixed == 0:  # nothing to read, not even at the end of the file
        return codec.decode(b"")
    peek = getattr(file, "peek", None)
    if peek is not None:
        window = peek(1)
        if window.__class__ is not bytes:
            window = bytes(window)
        if not window:
            raise EOFError(f"end of stream before a {codec.node.label}")
        try:
            value, end = codec.unit.dec(window, 0)
        except Exception:  # short, bad or unusual: the slow path decides
            return _read_through(codec, _Peeked(file, window))
        file.read(end)
        return value
    if not _seekable(file):
        return _read_through(codec, _Exact(file))
    window = file.read(_READ_AHEAD)
    if not window:
        raise EOFError(f"end of stream before a {codec.node.label}")
    try:
        value, end = codec.unit.dec(window, 0)
    except Exception:
        return _read_through(codec, _ReadAhead(file, window))
    if end != len(window):
        file.seek(end - len(window), 1)
    return value


def write_value(value: Any, file: BinaryIO, tp: Any = None) -> int:
    """Writes the encoding of ``value`` to a binary file object; returns the byte count."""
    from .codec import encode

    data = encode(value, tp)
    file.write(data)
    return len(data)


# ---------------------------------------------------------------------------------------------
# asyncio


class AsyncByteStream(Protocol):
    """What ``ValueReader`` reads from: ``asyncio.StreamReader`` or anything with its ``read``
    (up to ``n`` bytes, at least one unless the stream has ended, then ``b""``)."""

    async def read(self, n: int = -1) -> bytes: ...


class ValueReader:
    """Reads wire values from an asyncio stream, many in a row, at the speed of decoding bytes.

    ``reader = ValueReader(stream)``, then ``await reader.read(Msg)`` or
    ``async for msg in reader.values(Msg)``. It reads the stream in chunks of up to
    ``chunk_size`` bytes and keeps what one value leaves over for the next, so once a stream
    is wrapped, read it only through the wrapper (``take_buffered()`` hands back the bytes read
    ahead, to pass the stream on). A value is never longer in memory than what arrived: a
    length field promising more waits for the bytes, and the stream's end inside a value is
    a ``DecodeError``. One read at a time: a second concurrent ``read`` raises RuntimeError.
    """

    def __init__(self, stream: AsyncByteStream, chunk_size: int = _STREAM_CHUNK) -> None:
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be at least 1, not {chunk_size}")
        self.stream = stream
        self.chunk_size = chunk_size
        self._buf = b""
        self._pos = 0
        self._busy = False

    @property
    def buffered(self) -> int:
        """Bytes read from the stream and not yet decoded."""
        return len(self._buf) - self._pos

    def take_buffered(self) -> bytes:
        """The bytes read ahead and not yet decoded, which the reader then forgets."""
        data = self._buf[self._pos:]
        self._buf, self._pos = b"", 0
        return data

    @overload
    async def read(self, tp: type[T]) -> T: ...
    @overload
    async def read(self, tp: Any) -> Any: ...
    async def read(self, tp: Any) -> Any:
        """The next value of ``tp``. ``EOFError`` when the stream ended before its first byte;
        ``DecodeError`` when it ended inside it or the bytes are not a valid value (the reader
        then stands past the bytes decoding took, as the file readers do)."""
        codec = codec_for(tp)
        if self._busy:
            raise RuntimeError("ValueReader.read called while another read is waiting")
        self._busy = True
        try:
            if self._pos == len(self._buf) and codec.node.fixed != 0:
                self._buf, self._pos = await self.stream.read(self.chunk_size), 0
                if not self._buf:
                    raise EOFError(f"end of stream before a {codec.node.label}")
            try:
                value, end = codec.unit.dec(self._buf, self._pos)
            except Exception:  # short, bad or unusual: the slow path decides
                return await _read_through_async(codec, self._take)
            self._pos = end
            return value
        finally:
            self._busy = False

    @overload
    def values(self, tp: type[T]) -> AsyncIterator[T]: ...
    @overload
    def values(self, tp: Any) -> AsyncIterator[Any]: ...
    async def values(self, tp: Any) -> AsyncIterator[Any]:
        """Every value of ``tp`` until the stream ends cleanly between two values."""
        while True:
            try:
                value = await self.read(tp)
            except EOFError:
                return
            yield value

    async def _take(self, n: int) -> bytes:
        """The next ``n`` bytes (fewer only where the stream ends), read as they arrive."""
        buf, pos = self._buf, self._pos
        if pos + n <= len(buf):
            self._pos = pos + n
            return buf[pos:pos + n]
        parts = [buf[pos:]]
        have = len(buf) - pos
        self._buf, self._pos = b"", 0
        while have < n:
            more = await self.stream.read(self.chunk_size)
            if not more:
                break
            parts.append(more)
            have += len(more)
        data = b"".join(parts)
        if have > n:
            self._buf = data
            self._pos = n
            return data[:n]
        return data


async def _read_through_async(codec: Codec[Any], take: Any) -> Any:
    """``_read_through`` for sources read with ``await take(n)``."""
    node = codec.node
    if node.fixed:
        return codec.decode(_first(await take(node.fixed), node))
    if isinstance(node, FrameNode):
        head = _first(await take(4), node)
        return codec.decode(head + await take(_frame_rest(head)))
    pull = _Pull(node)
    while not pull.done:
        pull.give(await take(pull.want))
    return pull.value


async def read_value_async(tp: Any, reader: asyncio.StreamReader | ValueReader) -> Any:
    """Reads one value of ``tp`` from an ``asyncio.StreamReader`` or a ``ValueReader``,
    consuming only its bytes. A bare ``StreamReader`` has no public way to give bytes back,
    so it is read a field at a time: wrap it in a ``ValueReader`` to read many values fast."""
    if isinstance(reader, ValueReader):
        return await reader.read(tp)
    import asyncio

    async def take(n: int) -> bytes:  # readexactly holds only what arrived while it waits
        try:
            return await reader.readexactly(n)
        except asyncio.IncompleteReadError as exc:
            return exc.partial

    return await _read_through_async(codec_for(tp), take)


async def write_value_async(value: Any, writer: asyncio.StreamWriter, tp: Any = None) -> int:
    from .codec import encode

    data = encode(value, tp)
    writer.write(data)
    await writer.drain()
    return len(data)

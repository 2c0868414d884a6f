"""Reading values from binary files and asyncio streams (upstream's AsyncWireFormat).

Every reader decodes with the generated code from bytes it holds ahead of the value, then
gives back what the value did not use, so the next read starts exactly after it:

* a seekable file (``open(path, "rb")``, ``io.BytesIO``, a raw regular file): read ahead by
  twice the last value of the type, decode, seek back over what is left;
* an unseekable file with ``peek`` (a socket's ``makefile("rb")``, ``sys.stdin.buffer`` on a
  pipe, any ``io.BufferedReader``): decode what ``peek`` shows, then ``read`` exactly the value;
* a ``ValueReader`` around an asyncio stream: it keeps what it read ahead for the next value.

When the held bytes do not decode (the value is longer, straddles their end, or is bad),
``_Ahead`` decides with the interpreter, waiting for more bytes only when they are proven to
be the value's. A source that can give nothing back (an unbuffered pipe or socket, a bare
``asyncio.StreamReader``, whose public API has no peek) is read by the interpreter alone,
which asks for exactly the bytes it needs next. A source that ends before the first byte of
a value raises ``EOFError``; one that ends inside a value raises the ``DecodeError`` that
decoding those bytes does, same path and offset. After a bad frame, the source stands just
past it (its ``size`` bytes, as ``FrameReader`` drops them); after any other bad value,
somewhere inside it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol, TypeVar, overload

from ..compiler.framing import HEADER_SIZE, SIZE_FIELD
from ..compiler.interpret import DecodeState, decode_steps
from ..compiler.plan import FrameNode, Node
from ..compiler.support import buffer_bytes
from ..errors import DecodeError
from .codec import Codec, codec_for

if TYPE_CHECKING:  # asyncio costs 40 ms to import: only the async readers need it
    import asyncio

T = TypeVar("T")

_CHUNK = 1 << 20  # the most one read asks for: a length off the wire must not size a buffer
_READ_AHEAD = 4096  # what a seekable file is read ahead by when a value needs more
_FIRST_AHEAD = 256  # the first read ahead for a type: then twice the size of the last value
_ahead: dict[Codec[Any], int] = {}
_ZEROS = bytes(4096)  # what _goes_on completes a value with
_STREAM_CHUNK = 1 << 16  # what a ValueReader asks its stream for (asyncio's default limit)


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


def _goes_on(codec: Codec[Any], held: bytes) -> bool:
    """Whether the value goes on past ``held`` (its first bytes, which the generated decoder
    could not decode alone), proven cheaply: zeros after them complete a value (zero lengths,
    counts, tags), so decoding needs bytes past ``held``, and a prefix decoder reads no byte
    the value does not have. False proves nothing: the interpreter decides then."""
    found = _fast(codec, held + _ZEROS)
    return found is not None and found[1] > len(held)


def _fast(codec: Codec[Any], data: bytes, offset: int = 0) -> tuple[Any, int] | None:
    """The value the generated decoder reads at ``offset`` and where it ends, or None when it
    cannot (the bytes are short or bad, or a value needs the interpreter): it raises then,
    and why does not matter here, as the slow path that follows finds out."""
    try:
        found: tuple[Any, int] = codec.unit.dec(data, offset)
    except Exception:
        return None
    return found


def _frame_rest(head: bytes) -> int:
    """How many bytes follow a frame's size field (none when it is cut or below 7: then the
    decoder names the problem)."""
    size = int.from_bytes(head, "little") if len(head) == SIZE_FIELD else 0
    return size - SIZE_FIELD if size >= HEADER_SIZE else 0


def _first(data: bytes, node: Node) -> bytes:
    if not data:
        raise EOFError(f"end of stream before a {node.label}")
    return data


# ---------------------------------------------------------------------------------------------
# Held bytes: decode fast, fall back to proving


class _Ahead:
    """Decodes a value from bytes held ahead of it (``cur``, from the value's first byte), for
    a source that can give back what it does not use. The generated decoder failed on ``cur``
    alone: it is short, bad, or needs the interpreter. The interpreter then walks it; only
    when it asks past the end of ``cur`` (which proves all of ``cur`` is the value's) does
    ``run`` yield ``cur`` to ask the source for what follows. Each time what is held has
    doubled, the generated decoder is tried again on all of it, so a value that only
    straddled the end of ``cur`` costs one more fast decode, and re-decoding stays linear.
    Waiting for more bytes only when they are proven needed means a bad value never waits
    on a stream for bytes that may never come. Afterwards ``cur[:pos]`` is what the value used
    of ``cur``: the source gives back ``cur[pos:]``."""

    __slots__ = ("codec", "cur", "passed", "pos")

    def __init__(self, codec: Codec[Any], cur: bytes) -> None:
        self.codec = codec
        self.cur = cur
        self.pos = 0
        self.passed: list[bytes] = []  # chunks the interpreter went past: the value's first bytes

    def run(self) -> Generator[bytes, bytes, Any]:
        pull = _Pull(self.codec.node)
        passed = self.passed
        passed_len = 0
        tried = len(self.cur)
        while not pull.done:
            want, cur, pos = pull.want, self.cur, self.pos
            if pos + want <= len(cur):
                self.pos = pos + want
                pull.give(cur[pos:pos + want])
                continue
            pieces = [cur[pos:]]
            have = len(cur) - pos
            while True:
                passed.append(cur)
                passed_len += len(cur)
                cur = yield cur
                self.cur, self.pos = cur, 0
                if not cur:  # the source ended inside the value: the interpreter names where
                    break
                if passed_len + len(cur) >= 2 * tried:
                    tried = passed_len + len(cur)
                    found = _fast(self.codec, b"".join(passed) + cur)
                    if found is not None and found[1] > passed_len:  # past them: both decoders agree
                        self.pos = found[1] - passed_len
                        pull.steps.close()
                        return found[0]
                if have + len(cur) >= want:
                    self.pos = want - have
                    pieces.append(cur[:self.pos])
                    break
                pieces.append(cur)
                have += len(cur)
            pull.give(b"".join(pieces))
        return pull.value


def _as_bytes(data: Any) -> bytes:
    return data if data.__class__ is bytes else buffer_bytes(data, "the stream's read or peek")


class _Peeked:
    """A file with ``peek``: what it shows stays in the file until read (but for the first
    ``held`` bytes of the first ``cur``, already read)."""

    __slots__ = ("file", "held")

    def __init__(self, file: Any, held: int = 0) -> None:
        self.file = file
        self.held = held

    def more(self, cur: bytes) -> bytes:
        if len(cur) > self.held:
            self.file.read(len(cur) - self.held)
        self.held = 0
        return _as_bytes(self.file.peek(1))

    def finish(self, cur: bytes, used: int) -> None:
        if used > self.held:
            self.file.read(used - self.held)


class _Seeked:
    """A seekable file: it is read ahead, and what a value leaves is seeked back over."""

    __slots__ = ("file",)

    def __init__(self, file: Any) -> None:
        self.file = file

    def more(self, cur: bytes) -> bytes:
        return _as_bytes(self.file.read(min(max(len(cur), _READ_AHEAD), _CHUNK)))

    def finish(self, cur: bytes, used: int) -> None:
        if used != len(cur):
            self.file.seek(used - len(cur), 1)


def _read_ahead(codec: Codec[Any], source: _Peeked | _Seeked, cur: bytes) -> Any:
    ahead = _Ahead(codec, cur)
    steps = ahead.run()
    try:
        request = next(steps)
        while True:
            request = steps.send(source.more(request))
    except StopIteration as done:
        return done.value
    finally:
        source.finish(ahead.cur, ahead.pos)


# ---------------------------------------------------------------------------------------------
# Files


def _read_exactly(file: BinaryIO, n: int) -> bytes:
    """``n`` bytes, fewer only where the file ends, in reads of at most ``_CHUNK``."""
    chunks = []
    left = n
    while left > 0:
        chunk = file.read(min(left, _CHUNK))
        if not chunk:
            break
        chunk = _as_bytes(chunk)
        chunks.append(chunk)
        left -= len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _read_exact(codec: Codec[Any], file: BinaryIO) -> Any:
    """The value read from a file that can give nothing back: every read is exactly what
    decoding asks for."""
    node = codec.node
    if node.fixed:
        return codec.decode(_first(_read_exactly(file, node.fixed), node))
    if isinstance(node, FrameNode):  # the size says how much to read: then one fast decode
        head = _first(_read_exactly(file, SIZE_FIELD), node)
        return codec.decode(head + _read_exactly(file, _frame_rest(head)))
    pull = _Pull(node)
    while not pull.done:
        pull.give(_read_exactly(file, pull.want))
    return pull.value


def _ahead_size(codec: Codec[Any], used: int) -> None:
    """Remembers how far to read ahead for the next value of ``codec``: twice this one, so a
    run of similar values is one read each, with little copied past them."""
    want = min(max(used * 2, _FIRST_AHEAD), _CHUNK)
    if len(_ahead) > 1024:  # codecs of unhashable annotations are made anew each time
        _ahead.clear()
    _ahead[codec] = want


@overload
def read_value(tp: type[T], file: BinaryIO) -> T: ...
@overload
def read_value(tp: Any, file: BinaryIO) -> Any: ...
def read_value(tp: Any, file: BinaryIO) -> Any:
    """Reads one value of ``tp`` from a binary file object, consuming only its bytes.

    Raises ``EOFError`` when the file ends before the value's first byte, ``DecodeError``
    when it ends inside the value or the bytes are not a valid value. Fast on seekable files
    and on files with ``peek`` (what ``open(path, "rb")`` and ``socket.makefile("rb")``
    return); an unbuffered pipe or socket is read a field at a time: wrap it in
    ``io.BufferedReader``."""
    codec = codec_for(tp)
    try:
        seekable = file.seekable()
    except (AttributeError, OSError, ValueError):
        seekable = False
    dec = codec.unit.dec
    found: tuple[Any, int] | None
    if seekable:
        ahead = _ahead.get(codec, _FIRST_AHEAD)
        cur = file.read(ahead)
        if cur.__class__ is not bytes:
            cur = _as_bytes(cur)
        try:  # _fast, inlined: this is the path of every small value
            found = dec(cur, 0)
        except Exception:
            found = None
        if found is None and cur:  # a file, not a pipe: reading further cannot wait forever
            while found is None and len(cur) < _CHUNK:
                more = file.read(len(cur))
                if not more:
                    break
                cur += _as_bytes(more)
                found = _fast(codec, cur)
        if found is not None:
            end = found[1]
            if end != len(cur):
                file.seek(end - len(cur), 1)
            if end * 2 > ahead or end * 16 < ahead:
                _ahead_size(codec, end)
            return found[0]
        source: _Peeked | _Seeked = _Seeked(file)
    else:
        peek = getattr(file, "peek", None)
        if peek is None:
            return _read_exact(codec, file)
        cur = _as_bytes(peek(1))
        try:
            found = dec(cur, 0)
        except Exception:
            found = None
        if found is not None:
            file.read(found[1])
            return found[0]
        source = _Peeked(file)
        if cur and _goes_on(codec, cur):  # it straddles the end of the buffer: one more peek
            file.read(len(cur))
            source.held = len(cur)
            cur += _as_bytes(peek(1))
            found = _fast(codec, cur)
            if found is not None:
                file.read(found[1] - source.held)
                return found[0]
    if not cur:
        if codec.node.fixed == 0:  # nothing to read, not even at the end of the file
            return codec.decode(b"")
        raise EOFError(f"end of stream before a {codec.node.label}")
    return _read_ahead(codec, source, cur)


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
        if self._busy:
            raise RuntimeError("ValueReader.read called while another read is waiting")
        codec = codec_for(tp)
        try:  # _fast, inlined: this is the path of every small value
            value, self._pos = codec.unit.dec(self._buf, self._pos)
            return value
        except Exception:  # noqa: S110 - short, bad or unusual: the slow path below decides
            pass
        self._busy = True
        try:
            if self._pos == len(self._buf):
                if codec.node.fixed == 0:
                    return codec.decode(b"")
                self._buf, self._pos = _as_bytes(await self.stream.read(self.chunk_size)), 0
                if not self._buf:
                    raise EOFError(f"end of stream before a {codec.node.label}")
                found = _fast(codec, self._buf)
                if found is not None:
                    self._pos = found[1]
                    return found[0]
            cur = self._buf[self._pos:]
            if _goes_on(codec, cur):  # it straddles the end of the chunk: one more read
                more = _as_bytes(await self.stream.read(self.chunk_size))
                cur += more
                found = _fast(codec, cur) if more else None
                if found is not None:
                    self._buf, self._pos = cur, found[1]
                    return found[0]
                self._buf, self._pos = cur, 0
            ahead = _Ahead(codec, cur)
            steps = ahead.run()
            try:
                next(steps)  # what it yields is already in the buffer: the stream gives the rest
                while True:
                    steps.send(_as_bytes(await self.stream.read(self.chunk_size)))
            except StopIteration as done:
                self._buf, self._pos = ahead.cur, ahead.pos
                return done.value
            except (DecodeError, EOFError):
                self._buf, self._pos = ahead.cur, ahead.pos
                raise
            except BaseException:  # cancelled, or the stream failed: keep the value's bytes for a retry
                self._buf, self._pos = b"".join(ahead.passed), 0
                raise
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


async def _read_through_async(codec: Codec[Any], take: Any) -> Any:
    """``_read_through`` for sources read with ``await take(n)``."""
    node = codec.node
    if node.fixed:
        return codec.decode(_first(await take(node.fixed), node))
    if isinstance(node, FrameNode):
        head = _first(await take(SIZE_FIELD), node)
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

"""Frames: ``size[4] type[1] tag[2] body``, the envelope of 9P and of JetStream RPC.

``class Tframe(Frame[Tmessage])`` declares the frames whose ``msg`` is one of the union
``Tmessage`` (``Annotated[A | B, Tagged({100: A, 110: B})]``): the union's numbers are the type
bytes. ``FrameReader`` cuts a byte stream into frames without doing any I/O itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar, get_args, get_origin

from ..compiler.framing import HEADER_SIZE, SIZE_FIELD, parse_header, size_below_minimum
from ..compiler.plan import MAX_FRAME_SIZE
from ..compiler.planner import plan
from ..compiler.state import ClassState, class_state, frame_message, set_state
from ..compiler.support import buffer_bytes
from ..compiler.unit import Unit, install, installed_method
from ..errors import DecodeError, SchemaError

__all__ = ["Frame", "FrameError", "FrameReader", "HEADER_SIZE", "frame_encoder"]

M = TypeVar("M")
F = TypeVar("F", bound="Frame[Any]")
Buffer = bytes | bytearray | memoryview


class Frame(Generic[M]):
    """One message with its tag: ``Tframe(tag=1, msg=Tclunk(fid=3))``.

    On the wire: ``size[4]`` (the whole frame, itself included), ``type[1]`` (the number the
    union gives ``msg``'s class), ``tag[2]``, then ``msg``'s fields (r[9p2000l.frame.header]).
    Subclass it with the union as parameter; the subclass is what you encode and decode.
    """

    __slots__ = ("msg", "tag")

    tag: int
    msg: M

    def __init__(self, tag: int, msg: M) -> None:
        self.tag = tag
        self.msg = msg

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        message = next((get_args(base)[0] for base in cls.__dict__.get("__orig_bases__", ())
                        if get_origin(base) is Frame), None)
        # a subclass of a frame class: the same message union, a codec of its own
        inherited = message is None
        if inherited:
            message = next((s.frame_message for s in map(class_state, cls.__mro__[1:])
                            if s is not None and s.frame_message is not None), None)
        # Frame subclassed without a message type stays a frame base: using it says what is missing
        state = ClassState("frame" if message is not None else "frame base", frame_message=message)
        for name in _GENERATED:  # the methods still Frame's own become generated functions
            owner = next(c for c in cls.__mro__ if name in c.__dict__)
            owner_state = class_state(owner)
            if owner is Frame or (owner_state is not None and name in owner_state.stubs):
                # a stub in this class's own dict: otherwise, once a parent frame class is used,
                # its generated method (its codec, its class) would be found here first
                state.stubs[name] = Frame.__dict__[name]
                type.__setattr__(cls, name, Frame.__dict__[name])
        set_state(cls, state)
        if message is not None and not inherited:
            try:
                plan(cls)  # a message type jetwire cannot encode fails here, at the class
            except SchemaError as exc:
                raise SchemaError(f"{cls.__qualname__}: {exc}") from None

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Frame)
        return bool(self.tag == other.tag and self.msg == other.msg)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{type(self).__qualname__}(tag={self.tag!r}, msg={self.msg!r})"

    # Stubs: the first call of each compiles the class's frame codec and puts the generated
    # function on the class in the stub's place (unit.installed_method).
    def encode(self) -> bytes:
        """The whole frame, header included."""
        return installed_method(type(self), "encode")(self)  # type: ignore[no-any-return]

    def byte_size(self) -> int:
        """The frame's ``size``: what ``encode()`` returns, counted without encoding."""
        return installed_method(type(self), "byte_size")(self)  # type: ignore[no-any-return]

    @classmethod
    def decode(cls: type[F], data: Buffer) -> F:
        """The frame that ``data`` is, every byte of it."""
        frame: F = installed_method(cls, "decode")(data)
        return frame

    @classmethod
    def decode_prefix(cls: type[F], data: Buffer, offset: int = 0) -> tuple[F, int]:
        """The frame at ``data[offset:]`` and the offset just past it."""
        return installed_method(cls, "decode_prefix")(data, offset)  # type: ignore[no-any-return]


_GENERATED = ("encode", "byte_size", "decode", "decode_prefix")
# decoding may set Frame's slots without calling __init__, which only stores its arguments
set_state(Frame, ClassState("frame base", plain_init=True))


def frame_encoder(frame_type: type[Frame[M]]) -> Callable[[int, M], bytes]:
    """``encode(tag, msg)``: the bytes of ``frame_type(tag, msg).encode()``, errors included,
    without making the frame object (a sender that makes a frame only to encode it pays for
    the object and a method call per message: an RPC client and server send one per call)."""
    if frame_message(frame_type) is None:
        raise SchemaError(f"{frame_type.__qualname__} is not a frame class")
    return install(frame_type).encode_frame


class FrameError(DecodeError):
    """A frame that could not be decoded. The reader has dropped exactly its bytes, so the next
    frame decodes normally; ``tag`` and ``type`` are the header's (None when it was unreadable),
    so a client can fail just the request that the broken reply answered."""

    def __init__(self, reason: str, path: str = "", offset: int = 0, tag: int | None = None,
                 type: int | None = None, size: int | None = None) -> None:  # noqa: A002
        super().__init__(reason, path, offset)
        self.tag = tag
        self.type = type
        self.size = size

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.reason, self.path, self.offset, self.tag, self.type, self.size))


class FrameReader(Generic[F]):
    """Bytes in, frames out: ``feed(data)``, then ``next_frame()`` until it returns None.

    Every frame is checked whole (r[9p2000l.frame.header]): ``size`` below 7 or above
    ``max_size`` (the negotiated msize), an unknown type, a body that is short or has bytes
    left over each raise ``FrameError`` once, after the reader has dropped that frame's bytes
    (an oversized one is dropped as it arrives, never buffered), so one bad frame never
    desynchronises the stream. A size below 7 cannot be trusted to skip by: the reader drops
    only the 4 size bytes (as ``read_value`` and ``ValueReader`` do). The error for an oversized
    frame is raised once its 7-byte header is in, so it carries the tag however the bytes were
    split.
    """

    def __init__(self, frame_type: type[F], max_size: int = MAX_FRAME_SIZE) -> None:
        if frame_message(frame_type) is None:
            raise SchemaError(f"{frame_type.__qualname__} is not a frame class")
        self.frame_type = frame_type
        self.max_size = max_size
        self._unit: Unit | None = None
        self._cur = b""  # the bytes being read, from _pos on
        self._pos = 0
        self._more: list[bytes] = []  # later chunks, joined only when a frame needs them
        self._have = 0  # bytes available: len(_cur) - _pos + sum of _more
        self._skip = 0  # bytes of an oversized frame still to drop

    @property
    def buffered(self) -> int:
        """Bytes received and not yet returned as frames."""
        return self._have

    def feed(self, data: Buffer) -> None:
        """Takes the next bytes received: bytes or any other buffer (bytearray, memoryview...)."""
        if data.__class__ is not bytes:  # counted and sliced as bytes, not as an array's items
            data = buffer_bytes(data, "feed()'s argument")
        if self._skip:
            dropped = min(self._skip, len(data))
            self._skip -= dropped
            data = data[dropped:]
        if data:
            chunk = data
            if self._have == 0:
                self._cur, self._pos = chunk, 0  # the common case: no copy at all
            else:
                self._more.append(chunk)
            self._have += len(chunk)

    def _gather(self, n: int) -> None:
        """Makes ``_cur[_pos:_pos + n]`` hold the next ``n`` bytes (``n <= _have``)."""
        if len(self._cur) - self._pos < n:
            self._cur = self._cur[self._pos:] + b"".join(self._more)
            self._pos = 0
            self._more = []

    def _drop(self, n: int) -> None:
        n = min(n, self._have)
        self._gather(n)
        self._pos += n
        self._have -= n

    def next_frame(self) -> F | None:
        """The next whole frame, or None until more bytes arrive."""
        if self._have < SIZE_FIELD:
            return None
        self._gather(SIZE_FIELD)
        cur, pos = self._cur, self._pos
        size = int.from_bytes(cur[pos:pos + SIZE_FIELD], "little")
        if size < HEADER_SIZE:
            # no tag of its own, and a size that cannot be skipped by: only the 4 size bytes go,
            # as read_value and ValueReader drop them (the bytes after are read as the next frame)
            self._drop(SIZE_FIELD)
            raise self._error(size_below_minimum(size), f"{self.frame_type.__name__}.size", 0, b"", size)
        if size > self.max_size:
            if self._have < HEADER_SIZE:
                return None  # the error carries the tag however the bytes were split: wait for it
            self._gather(HEADER_SIZE)
            header = self._cur[self._pos:self._pos + HEADER_SIZE]
            available = min(size, self._have)
            self._drop(available)
            self._skip = size - available
            reason = f"frame size {size} is over the limit of {self.max_size} bytes (msize)"
            raise self._error(reason, f"{self.frame_type.__name__}.size", 0, header, size)
        if self._have < size:
            return None
        self._gather(size)
        cur, pos = self._cur, self._pos
        unit = self._unit
        if unit is None:
            unit = self._unit = install(self.frame_type)
        try:
            if pos == 0 and size == len(cur):  # a chunk that is exactly one frame (one reply)
                frame, end = unit.decode(cur), size
            else:
                frame, end = unit.decode_prefix(cur, pos)
        except DecodeError as exc:
            self._drop(size)
            raise self._error(exc.reason, exc.path, exc.offset - pos, cur[pos:pos + HEADER_SIZE], size) from None
        self._pos = end
        self._have -= size
        if self._pos == len(self._cur) and not self._more:
            self._cur, self._pos = b"", 0
        result: F = frame
        return result

    def next_frames(self, sizes: list[int] | None = None) -> list[F]:
        """Every whole frame buffered, in order, up to the first that is not plain (a size out
        of bounds, a body the generated decoder refuses): ``next_frame()`` reads that one, and
        raises its error. One loop for all the frames of a read, without next_frame's per-frame
        bookkeeping. ``sizes``, when given, gets each frame's size."""
        frames: list[F] = self._batch(sizes, False)
        return frames

    def next_messages(self, sizes: list[int] | None = None) -> list[tuple[int, Any]]:
        """``next_frames()`` as ``(tag, message)`` pairs, without making the frame objects (a
        reader that only takes each frame apart, as an RPC session does, saves that)."""
        pairs: list[tuple[int, Any]] = self._batch(sizes, True)
        return pairs

    def _batch(self, sizes: list[int] | None, pairs: bool) -> Any:
        if self._have < HEADER_SIZE:
            return []
        if self._more:
            self._gather(self._have)
        cur, pos = self._cur, self._pos
        end = len(cur)
        unit = self._unit
        if unit is None:
            unit = self._unit = install(self.frame_type)
        start = pos
        frames: list[Any] = []
        pos = unit.decode_frames(cur, pos, end, self.max_size, frames, sizes, pairs)
        if pos != start:
            self._have -= pos - start
            if self._have:
                self._pos = pos
            else:
                self._cur, self._pos = b"", 0
        return frames

    def __iter__(self) -> FrameReader[F]:
        return self

    def __next__(self) -> F:
        frame = self.next_frame()
        if frame is None:
            raise StopIteration
        return frame

    @staticmethod
    def _error(reason: str, path: str, offset: int, header: bytes, size: int) -> FrameError:
        if len(header) < HEADER_SIZE:
            return FrameError(reason, path, offset, size=size)
        _, kind, tag = parse_header(header)
        return FrameError(reason, path, offset, tag=tag, type=kind, size=size)

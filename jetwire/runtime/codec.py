"""``Codec[T]``: one compiled codec for any type expression, and the module-level functions."""

from __future__ import annotations

import datetime
import enum
import ipaddress
import threading
from typing import Any, Generic, TypeVar, overload

from ..compiler.interpret import Trace, decode_buffer
from ..compiler.plan import MAX_ZERO_WIDTH_ELEMENTS, Node, reaches_zero_width
from ..compiler.planner import Unresolved, plan
from ..compiler.state import class_info, frame_message
from ..compiler.unit import Unit, compile_unit
from ..errors import DecodeError, EncodeError, SchemaError, byte_count
from ..wiretypes import Url

T = TypeVar("T")
Buffer = bytes | bytearray | memoryview

_lock = threading.Lock()
_cache: dict[Any, Codec[Any]] = {}


class Codec(Generic[T]):
    """The compiled codec of a type expression: ``Codec(list[u16])``, ``Codec(Page[u32])``.

    Building one plans the type (raising ``SchemaError`` for what cannot be encoded); the code
    is generated on first use and shared by every codec of the same type.

    ``max_zero_width_elements`` bounds the elements that take no bytes (``list[None]``, lists
    of empty structs, counted across the whole value) one decode may make: past it, decoding
    raises ``DecodeError``. The default is ``jetwire.MAX_ZERO_WIDTH_ELEMENTS``.

    A field's own codec (``With``, ``EncodeWith``/``DecodeWith``, ``As``) may be called more
    than once per value: by the generated code, then by the interpreter when the generated code
    gave up (bad input, or a value it leaves to the interpreter), whose decoder replays it each
    time it reads past the bytes it had. Such code must be deterministic and have no side
    effect that matters if repeated.
    """

    __slots__ = ("_unit", "max_zero_width_elements", "node", "type")

    @overload
    def __init__(self: Codec[T], tp: type[T], *, max_zero_width_elements: int = ...) -> None: ...
    @overload
    def __init__(self: Codec[Any], tp: Any, *, max_zero_width_elements: int = ...) -> None: ...
    def __init__(self, tp: Any, *, max_zero_width_elements: int = MAX_ZERO_WIDTH_ELEMENTS) -> None:
        if (
            not isinstance(max_zero_width_elements, int)
            or isinstance(max_zero_width_elements, bool)
            or max_zero_width_elements < 0
        ):
            raise ValueError(f"max_zero_width_elements is a count, 0 or more, not {max_zero_width_elements!r}")
        self.type = tp
        self.max_zero_width_elements = max_zero_width_elements
        try:
            self.node: Node = plan(tp)
        except Unresolved as exc:
            raise SchemaError(str(exc)) from None
        self._unit: Unit | None = None
        if max_zero_width_elements != MAX_ZERO_WIDTH_ELEMENTS and reaches_zero_width(self.node):
            # the shared generated code takes the default budget unless told otherwise: only
            # such codecs pay for passing their own, not every codec's decode
            self.__class__ = _OwnBudgetCodec

    @property
    def unit(self) -> Unit:
        unit = self._unit
        if unit is None:
            unit = self._unit = compile_unit(self.node)
        return unit

    def encode(self, value: T) -> bytes:
        return self.unit.encode(value)

    def decode(self, data: Buffer) -> T:
        value: T = self.unit.decode(data)
        return value

    def decode_prefix(self, data: Buffer, offset: int = 0) -> tuple[T, int]:
        return self.unit.decode_prefix(data, offset)

    def byte_size(self, value: T) -> int:
        return self.unit.byte_size(value)

    def explain(self, data: Buffer) -> str:
        return explain_node(self.node, bytes(data), self.max_zero_width_elements)

    @property
    def fixed_size(self) -> int | None:
        """The encoded size when every value has the same one, else None."""
        return self.node.fixed

    def __repr__(self) -> str:
        return f"Codec({self.node.label})"


class _OwnBudgetCodec(Codec[T]):
    """A codec of a type with zero-width collections and a budget of its own for them."""

    __slots__ = ()

    def decode(self, data: Buffer) -> T:
        value: T = self.unit.decode(data, self.max_zero_width_elements)  # type: ignore[call-arg]
        return value

    def decode_prefix(self, data: Buffer, offset: int = 0) -> tuple[T, int]:
        return self.unit.decode_prefix(data, offset, self.max_zero_width_elements)


def codec_for(tp: Any) -> Codec[Any]:
    try:
        found = _cache.get(tp)
    except TypeError:  # an unhashable annotation: no caching
        return Codec(tp)
    if found is None:
        with _lock:
            found = _cache.get(tp)
            if found is None:
                found = _cache[tp] = Codec(tp)
    return found


_INFERRED: dict[type, Any] = {
    bool: bool, str: str, bytes: bytes, bytearray: bytes, memoryview: bytes, float: float,
    type(None): None, ipaddress.IPv4Address: ipaddress.IPv4Address,
    ipaddress.IPv6Address: ipaddress.IPv6Address, datetime.datetime: datetime.datetime, Url: Url,
}


def type_of(value: Any) -> Any:
    """The wire type a value says by itself, for ``encode(value)`` without ``type=``."""
    cls = type(value)
    info = class_info(cls)
    if info is not None:
        return info.owner if info.kind == "variant" else cls
    if frame_message(cls) is not None:
        return cls
    if cls in _INFERRED:
        return _INFERRED[cls]
    if isinstance(value, enum.Enum):
        return cls
    if isinstance(value, int):
        raise EncodeError(f"an int has no wire width by itself: pass type=, e.g. encode({value!r}, jetwire.u32)")
    raise EncodeError(
        f"cannot tell the wire type of a {cls.__name__} by itself: pass type=, e.g. list[jetwire.u16]"
    )


def encode(value: Any, type: Any = None) -> bytes:  # noqa: A002 - the name the API promises
    """The wire bytes of ``value``, as ``type`` (inferred from a decorated class when omitted)."""
    return codec_for(type_of(value) if type is None else type).encode(value)


def byte_size(value: Any, type: Any = None) -> int:  # noqa: A002
    """The size ``encode(value, type)`` has, computed without encoding. It checks nothing:
    for a value ``encode`` would refuse, it may return a number rather than raise."""
    return codec_for(type_of(value) if type is None else type).byte_size(value)


@overload
def decode(type: type[T], data: Buffer) -> T: ...
@overload
def decode(type: Any, data: Buffer) -> Any: ...
def decode(type: Any, data: Buffer) -> Any:  # noqa: A002
    """The value of ``type`` that ``data`` encodes; every byte must be used."""
    _check_order("decode", type)
    return codec_for(type).decode(data)


@overload
def decode_prefix(type: type[T], data: Buffer, offset: int = 0) -> tuple[T, int]: ...
@overload
def decode_prefix(type: Any, data: Buffer, offset: int = 0) -> tuple[Any, int]: ...
def decode_prefix(type: Any, data: Buffer, offset: int = 0) -> tuple[Any, int]:  # noqa: A002
    """The value of ``type`` at ``data[offset:]`` and the offset just past it."""
    _check_order("decode_prefix", type)
    return codec_for(type).decode_prefix(data, offset)


def explain(type: Any, data: Buffer) -> str:  # noqa: A002
    """An annotated hex dump of ``data`` read as ``type``: one line per value with its offset,
    bytes, field path and value; on bad input, how far decoding got and why it stopped."""
    _check_order("explain", type)
    return codec_for(type).explain(data)


def _check_order(function: str, type: Any) -> None:  # noqa: A002
    """Bytes where the type goes: the arguments were given the other way round."""
    if isinstance(type, (bytes, bytearray, memoryview)):
        raise SchemaError(
            f"jetwire.{function}(type, data) takes the type first, but got {type.__class__.__name__} "
            f"data where the type goes: were the arguments swapped? e.g. jetwire.{function}(jetwire.u8, data)"
        )


def explain_node(node: Node, data: bytes, max_zero_width: int = MAX_ZERO_WIDTH_ELEMENTS) -> str:
    trace = Trace()
    error: DecodeError | None = None
    value: Any = None
    try:
        value, end = decode_buffer(node, data, 0, node.label, trace, max_zero_width)
        if end != len(data):
            left = byte_count(len(data) - end)
            error = DecodeError(f"{left} left over after a complete {node.label}", node.label, end)
    except DecodeError as exc:
        error = exc
    lines = [f"{node.label}: {byte_count(len(data))}"]

    def show(entries: Any) -> None:
        for offset, length, path, shown in entries:
            raw = data[offset:offset + length]
            hexed = raw[:12].hex(" ") + (" …" if length > 12 else "")
            lines.append(f"{offset:>6}  {hexed:<38}  {path} = {shown}")

    show(trace.entries)
    if trace.left_out:
        lines.append(f"        … {trace.left_out:,} values left out (the first and last {trace.keep:,} are shown)")
    show(trace.last)
    if error is not None:
        read = [*trace.entries, *trace.last]
        done = max((offset + length for offset, length, _, _ in read), default=0)
        lines.append(f"{done:>6}  {data[done:done + 12].hex(' '):<38}  error: {error}")
    else:
        try:
            shown = repr(value)
        except RecursionError:
            shown = f"<a {type(value).__name__} nested too deep to print>"
        lines.append(f"decoded: {shown}")
    return "\n".join(lines)

"""Helpers shared by generated code and the reference interpreter (conversions with edge cases)."""

from __future__ import annotations

import collections
import datetime
import struct
from typing import Any

from ..errors import DecodeError
from .plan import MAX_SHARED_HASH

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
_D = struct.Struct("<d")
_Q = struct.Struct("<Q")
_F = struct.Struct("<f")
_I = struct.Struct("<I")


def crowded(keys: Any) -> bool:
    """Whether more than MAX_SHARED_HASH of ``keys`` share a hash value (linear, unlike
    putting them in a set); a hash that fails counts too: the interpreter says why."""
    try:
        hashes = list(map(hash, keys))
    except Exception:
        return True
    if len(set(hashes)) == len(hashes):  # the common case, and a set of ints is cheaper than counts
        return False
    return max(collections.Counter(hashes).values()) > MAX_SHARED_HASH


class HashCount:
    """Counts keys by hash value as they arrive, to refuse the one that crowds a hash before
    it is inserted. The counts are keyed by hash values, ints that hash to themselves, so
    they cannot collide in turn."""

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}

    def add(self, key: Any) -> bool:
        """Counts ``key``; False once more than MAX_SHARED_HASH keys share its hash value."""
        h = hash(key)
        n = self.counts.get(h, 0) + 1
        self.counts[h] = n
        return n <= MAX_SHARED_HASH


class Bail(Exception):
    """Raised by generated code to hand a value to the reference interpreter, which says why."""


def datetime_to_ms(value: Any) -> int:
    """Milliseconds since the Unix epoch (r[jetstream.wireformat.systime]); truncates, as upstream."""
    if not isinstance(value, datetime.datetime):
        raise TypeError(f"expected datetime.datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("datetime without a timezone: a SystemTime needs an aware datetime")
    delta = value - EPOCH
    ms = delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000
    if ms < 0:
        raise ValueError(f"{value.isoformat()} is before the Unix epoch")
    return ms


def ms_to_datetime(ms: int) -> datetime.datetime:
    """Raises OverflowError past datetime's range (year 9999): the spec's timestamp overflow."""
    return EPOCH + datetime.timedelta(milliseconds=ms)


def f32_from_bits(bits: int) -> float:
    """An f32 as a Python float, keeping a NaN's payload and its signalling bit."""
    if (bits & 0x7F800000) == 0x7F800000 and bits & 0x7FFFFF:
        double = ((bits >> 31) << 63) | (0x7FF << 52) | ((bits & 0x7FFFFF) << 29)
        return float(_D.unpack(_Q.pack(double))[0])
    return float(_F.unpack(_I.pack(bits))[0])


def f32_to_bits(value: float) -> int:
    """The f32 bits of ``value``; raises OverflowError when it is finite but too large for f32."""
    if value != value:
        double: int = _Q.unpack(_D.pack(value))[0]
        mantissa = (double >> 29) & 0x7FFFFF or 0x400000
        return ((double >> 63) << 31) | 0x7F800000 | mantissa
    return int(_I.unpack(_F.pack(value))[0])


def float_arg(value: Any) -> float:
    """What an f32 or f64 field takes besides a float: an int, not a bool (nor a Decimal)."""
    if isinstance(value, float) or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise TypeError(f"expected a float, got {type(value).__name__}")


def bool_arg(value: Any) -> int:
    """What a bool field takes: True, False, or an int (``__index__``) that is 0 or 1; not a
    float, though ``1.0 == 1`` (nor a Decimal)."""
    if value is True or value is False:
        return int(value)
    if not isinstance(value, float) and hasattr(value, "__index__"):
        number = value.__index__()
        if number in (0, 1):
            return int(number)
    raise TypeError(f"expected a bool, got {value!r}")


def describe_number(value: int | float) -> str:
    """A number as an error message shows it: a huge int by its size, since printing one of
    over 4,300 digits raises ValueError (and a million-digit one would flood the message)."""
    if isinstance(value, int) and value.bit_length() > 256:
        return f"an int of {value.bit_length()} bits"
    return repr(value)


def buffer_bytes(data: Any, source: str) -> bytes:
    """The raw bytes of any buffer (bytes, bytearray, memoryview, ``array.array``...) that
    ``source`` gave; anything else, a str above all (a file opened in text mode), is a TypeError."""
    if data.__class__ is bytes:
        return bytes(data)  # a no-op for bytes, and typed
    try:
        return memoryview(data).tobytes()
    except TypeError:
        hint = " (a file opened in text mode? open it with 'rb')" if isinstance(data, str) else ""
        raise TypeError(f"{source} gave {type(data).__name__}, not bytes{hint}") from None


def as_bytes_like(value: Any) -> bytes | bytearray | memoryview:
    """Data accepts bytes, bytearray and memoryview; a memoryview is seen as its raw bytes."""
    if isinstance(value, (bytes, bytearray)):
        return value
    if isinstance(value, memoryview):
        return value.cast("B") if value.c_contiguous else value.tobytes()
    raise TypeError(f"expected bytes, bytearray or memoryview, got {type(value).__name__}")


class BufferReader:
    """The ``Reader`` a custom codec gets in the fast path: bytes from a buffer at a position."""

    __slots__ = ("buf", "pos")

    def __init__(self, buf: Any, pos: int) -> None:
        self.buf = buf
        self.pos = pos

    def read(self, n: int) -> bytes:
        end = self.pos + n
        if n < 0 or end > len(self.buf):
            raise Bail
        data = bytes(self.buf[self.pos:end])
        self.pos = end
        return data


class NeedMore(Exception):
    def __init__(self, missing: int) -> None:
        self.missing = missing


class ReplayReader:
    """The ``Reader`` of the interpreter: raises NeedMore past what it holds, so the caller
    can fetch more bytes (from a buffer, a file or a stream) and run the codec again."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def read(self, n: int) -> bytes:
        if not isinstance(n, int) or n < 0:
            raise DecodeError(f"custom codec asked for {n!r} bytes")
        end = self.pos + n
        if end > len(self.data):
            raise NeedMore(end - len(self.data))
        out = self.data[self.pos:end]
        self.pos = end
        return out


class ListWriter:
    """The ``Writer`` a custom codec gets: appends to the encoder's list of pieces."""

    __slots__ = ("write",)

    def __init__(self, append: Any) -> None:
        self.write = append

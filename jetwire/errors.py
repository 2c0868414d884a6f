"""The errors jetwire raises. Every message names a field path and, for wire errors, a byte offset."""

from __future__ import annotations

__all__ = [
    "JetwireError", "WireError", "EncodeError", "DecodeError", "TruncatedError", "SchemaError", "MarkerArgumentError",
]


def byte_count(n: int) -> str:
    """``1 byte``, ``2 bytes``: a count of bytes as a message says it."""
    return f"{n} byte" if n == 1 else f"{n} bytes"


class JetwireError(Exception):
    """The base of every exception jetwire defines, so that one ``except JetwireError`` catches
    them all. Each subclass also derives from the built-in exception it has always been (a
    ``SchemaError`` is a ``TypeError``, a ``WireError`` a ``ValueError``), so existing handlers
    keep working. OSErrors that 9P servers report stay plain OSErrors: they mean what they mean
    for local files."""


class SchemaError(JetwireError, TypeError):
    """A declaration jetwire cannot turn into a wire layout (raised when a class is decorated)."""


class MarkerArgumentError(SchemaError, ValueError):
    """A marker given an argument outside its range (a tag over 255, an error handler that loses data).

    A SchemaError, as every declaration error is; also a ValueError, as the standard library
    raises for a value out of range and as these markers raised before they became SchemaErrors.
    """


class WireError(JetwireError, ValueError):
    """A value that cannot be encoded, or bytes that cannot be decoded.

    ``path`` names the field (``Twalk.wnames[2]``), ``offset`` the byte where the problem is,
    ``reason`` what is wrong.
    """

    def __init__(self, reason: str, path: str = "", offset: int = 0) -> None:
        self.reason = reason
        self.path = path
        self.offset = offset
        super().__init__(self._render())

    def _render(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{where}{self.reason} (at byte {self.offset})"

    def __reduce__(self) -> tuple[type, tuple[str, str, int]]:
        return (type(self), (self.reason, self.path, self.offset))


class EncodeError(WireError):
    """A value that has no encoding: out of range, too long, of the wrong type."""


class DecodeError(WireError):
    """Bytes that are not a valid encoding of the requested type."""


class TruncatedError(DecodeError):
    """The bytes ended before the value did: every byte given was part of it, and more bytes
    could complete it. A reader holding a prefix of a stream waits on this one and fails on
    any other ``DecodeError``; test for the class, never for the message's words.

    A frame whose own ``size`` ends inside its message is not one: its bytes are all there, and
    no more bytes would change what they say.
    """

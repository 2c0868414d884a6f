"""Events of the sans-I/O sessions (9P's and RPC's): plain records, compared by type and fields.

Cheaper to make than dataclasses, and a connection makes one per message; a subclass lists its
fields in ``__slots__`` and sets them in ``__init__``.
"""

from __future__ import annotations

__all__ = ["Record"]


class Record:
    __slots__: tuple[str, ...] = ()

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and all(getattr(self, f) == getattr(other, f) for f in self.__slots__)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        fields = ", ".join(f"{f}={getattr(self, f)!r}" for f in self.__slots__)
        return f"{type(self).__name__}({fields})"

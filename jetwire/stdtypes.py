"""Wire types of the spec defined with jetwire itself: socket addresses and the error types."""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
from typing import Annotated, Union

from typing_extensions import TypeAlias

from .compiler.planner import register_default_tags
from .errors import DecodeError, EncodeError, JetwireError
from .markers import Reader, Tagged, With, Writer, u16
from .runtime.decorators import wireformat

__all__ = [
    "IpAddr", "SocketAddrV4", "SocketAddrV6", "SocketAddr",
    "Level", "LevelCodec", "FieldPair", "BacktraceFrame", "Backtrace", "Error",
]

IpAddr: TypeAlias = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
"""An IPv4 or IPv6 address: tag 4 or 6, then its octets (r[jetstream.wireformat.ipaddr])."""


@wireformat(frozen=True, order=True)
class SocketAddrV4:
    """IPv4 octets then the port (r[jetstream.wireformat.sockaddr-v4])."""

    ip: ipaddress.IPv4Address
    port: u16


@wireformat(frozen=True, order=True)
class SocketAddrV6:
    """IPv6 octets then the port; flow info and scope id are not sent
    (r[jetstream.wireformat.sockaddr-v6])."""

    ip: ipaddress.IPv6Address
    port: u16


SocketAddr: TypeAlias = Union[SocketAddrV4, SocketAddrV6]
"""Tag 4 or 6, then the socket address (r[jetstream.wireformat.sockaddr])."""

register_default_tags(Tagged({4: SocketAddrV4, 6: SocketAddrV6}, "SocketAddr"))


class Level(enum.Enum):
    """A tracing level, as upstream's ``tracing::Level``."""

    TRACE = 0
    DEBUG = 1
    INFO = 2
    WARN = 3
    ERROR = 4


class LevelCodec:
    """Writes a ``Level`` as one byte, 0 (TRACE) to 4 (ERROR) (r[jetstream.wireformat.level])."""

    __name__ = "LevelCodec"

    @staticmethod
    def byte_size(value: Level) -> int:
        return 1

    @staticmethod
    def encode(value: Level, writer: Writer) -> None:
        if not isinstance(value, Level):
            raise EncodeError(f"expected a jetwire.Level, got {value!r}")
        writer.write(bytes((value.value,)))

    @staticmethod
    def decode(reader: Reader) -> Level:
        byte = reader.read(1)[0]
        if byte > 4:
            raise DecodeError(f"invalid Level {byte} (0 TRACE .. 4 ERROR)")
        return Level(byte)


@wireformat(frozen=True)
class FieldPair:
    """A key and value of a span's fields, as intern-table indexes (r[jetstream.wireformat.fieldpair])."""

    key: u16
    value: u16


@wireformat(frozen=True)
class BacktraceFrame:
    """One span of a backtrace (r[jetstream.wireformat.frame]); names are intern-table indexes."""

    msg: str
    name: u16
    target: u16
    module: u16
    file: u16
    line: u16
    fields: tuple[FieldPair, ...]
    level: Annotated[Level, With(LevelCodec)]


@wireformat(frozen=True)
class Backtrace:
    """An intern table (index 0 is "") and the frames that index it (r[jetstream.wireformat.backtrace])."""

    intern_table: tuple[str, ...] = ("",)
    frames: tuple[BacktraceFrame, ...] = ()

    def lookup(self, index: int) -> str:
        """The interned string at ``index``."""
        return self.intern_table[index]


@wireformat(eq=True)
class Error(JetwireError):
    """A JetStream error, raisable and on the wire (r[jetstream.wireformat.error]):
    ErrorInner's message, code, help and url (r[jetstream.wireformat.error-inner]), then the
    backtrace. Decoded errors have no local span trace, as upstream."""

    message: str
    code: str | None = None
    help: str | None = None
    url: str | None = None
    backtrace: Backtrace = dataclasses.field(default_factory=Backtrace)

    __hash__ = Exception.__hash__

    def __post_init__(self) -> None:
        Exception.__init__(self, self.message)

    def __str__(self) -> str:
        return self.message if self.code is None else f"[{self.code}] {self.message}"

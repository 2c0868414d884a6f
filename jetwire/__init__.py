"""jetwire: the JetStream wire format for Python.

Decorate a dataclass with ``@wireformat`` and it encodes to exactly the bytes JetStream's Rust,
TypeScript and Swift implementations use. ``../docs`` has the guide; the spec rule each piece
implements is cited beside it.
"""

from typing import TYPE_CHECKING, Any

from .builtins import ConvertError, convert, to_builtins
from .compiler.plan import (
    MAX_DATA_BYTES,
    MAX_DEPTH,
    MAX_ELEMENTS,
    MAX_SHARED_HASH,
    MAX_STRING_BYTES,
    MAX_TYPE_NESTING,
    MAX_ZERO_WIDTH_ELEMENTS,
)
from .errors import DecodeError, EncodeError, JetwireError, SchemaError, TruncatedError, WireError
from .markers import (
    As,
    DecodeWith,
    EncodeWith,
    From,
    Into,
    Option,
    Reader,
    SizeWith,
    Skip,
    Some,
    StrErrors,
    SurrogateEscape,
    Tagged,
    WireCodec,
    With,
    Writer,
    f32,
    f64,
    fsstr,
    i16,
    i32,
    i64,
    i128,
    isize,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
)
from .runtime.codec import Codec, byte_size, decode, decode_prefix, encode, explain
from .runtime.decorators import WireFormat, wireenum, wireformat
from .runtime.frames import Frame, FrameError, FrameReader
from .runtime.streams import ValueReader, read_value, read_value_async, write_value, write_value_async
from .wiretypes import Url

if TYPE_CHECKING:
    from .stdtypes import (
        Backtrace,
        BacktraceFrame,
        Error,
        FieldPair,
        IpAddr,
        Level,
        LevelCodec,
        SocketAddr,
        SocketAddrV4,
        SocketAddrV6,
    )

__version__ = "0.1.0"

# Declared with jetwire itself, so planned at import: loaded on first use, which keeps
# ``import jetwire`` a few milliseconds shorter for programs that never touch them.
_STDTYPES = frozenset({
    "Backtrace", "BacktraceFrame", "Error", "FieldPair", "IpAddr", "Level", "LevelCodec",
    "SocketAddr", "SocketAddrV4", "SocketAddrV6",
})


def __getattr__(name: str) -> Any:
    if name in _STDTYPES:
        from . import stdtypes

        value = getattr(stdtypes, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'jetwire' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _STDTYPES)

__all__ = [
    "wireformat", "wireenum", "WireFormat", "Codec", "encode", "decode", "decode_prefix", "byte_size", "explain",
    "read_value", "read_value_async", "write_value", "write_value_async", "ValueReader",
    "JetwireError", "WireError", "EncodeError", "DecodeError", "TruncatedError", "SchemaError",
    "u8", "u16", "u32", "u64", "u128", "i16", "i32", "i64", "i128", "usize", "isize", "f32", "f64",
    "Skip", "With", "EncodeWith", "DecodeWith", "SizeWith", "As", "Into", "From", "Tagged",
    "Option", "Some", "WireCodec", "Reader", "Writer", "StrErrors", "SurrogateEscape", "fsstr",
    "Frame", "FrameReader", "FrameError",
    "IpAddr", "SocketAddr", "SocketAddrV4", "SocketAddrV6", "Url",
    "Error", "Backtrace", "BacktraceFrame", "FieldPair", "Level", "LevelCodec",
    "MAX_STRING_BYTES", "MAX_ELEMENTS", "MAX_DATA_BYTES", "MAX_DEPTH", "MAX_ZERO_WIDTH_ELEMENTS",
    "MAX_TYPE_NESTING", "MAX_SHARED_HASH",
    "to_builtins", "convert", "ConvertError",
]

"""What JetStream RPC puts on the wire besides a service's own messages: the reserved type
numbers, ``Tversion``/``Rversion``, version strings, and the errors of the RPC layer.

Every frame is ``size[4] type[1] tag[2] body`` (r[jetstream.rpc.frame.header]), the 9P header,
so frames are ``jetwire.Frame`` classes; what the numbers mean is here.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from ..errors import JetwireError, SchemaError
from ..markers import u32
from ..runtime.decorators import wireformat

__all__ = [
    "MESSAGE_ID_START", "RERROR", "TVERSION", "RVERSION", "NOTAG", "MAX_METHODS", "VERSION_PREFIX",
    "UNKNOWN_VERSION", "DEFAULT_MAX_FRAME_SIZE", "Tversion", "Rversion", "ParsedVersion", "parse_version",
    "format_version", "check_semver", "semver_key", "LEGACY_9P_VERSIONS",
    "RpcError", "ProtocolError", "LocalProtocolError", "RemoteProtocolError",
    "VersionError", "ConnectionClosed", "CallTimeout", "ConnectTimeout", "TagsExhausted", "MsizeError",
]

MESSAGE_ID_START = 102
"""The request type of a service's first method; method i uses 102 + 2i and 103 + 2i."""
RERROR = 5
"""A method's failure: the body is a ``jetwire.Error`` (r[jetstream.rpc.error.frame])."""
TVERSION = 100
RVERSION = 101
NOTAG = 0xFFFF
"""The tag of a client's ``Tversion`` (r[jetstream.rpc.version.client-tag]), never a call's."""
MAX_METHODS = 77
"""Method ids are a u8: 102 + 2 * 76 + 1 = 255 is the last response type."""
VERSION_PREFIX = "rs.jetstream.proto"
UNKNOWN_VERSION = "unknown"
"""The ``Rversion`` version of a server that refuses the client's (r[jetstream.rpc.version.reject-unknown])."""
DEFAULT_MAX_FRAME_SIZE = 4 * 1024 * 1024
"""The largest frame jetwire reads unless told otherwise (r[jetstream.rpc.limits.max-frame]):
upstream enforces none, so a peer could otherwise make us buffer 4 GiB."""


@wireformat(frozen=True, slots=True)
class Tversion:
    """100: the client's frame size limit and the version of the service it wants."""

    msize: u32
    version: str


@wireformat(frozen=True, slots=True)
class Rversion:
    """101: the server's answer; ``version == "unknown"`` (and msize 0) is a refusal."""

    msize: u32
    version: str


# SemVer 2.0: no leading zeros in numbers, dot-separated identifiers (r[jetstream.rpc.version.string])
_NUMBER = r"(?:0|[1-9][0-9]*)"
_PRE_ID = r"(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
_BUILD_ID = r"[0-9A-Za-z-]+"
_SEMVER = re.compile(
    rf"(?P<major>{_NUMBER})\.(?P<minor>{_NUMBER})\.(?P<patch>{_NUMBER})"
    rf"(?:-(?P<pre>{_PRE_ID}(?:\.{_PRE_ID})*))?(?:\+(?P<build>{_BUILD_ID}(?:\.{_BUILD_ID})*))?"
)


class ParsedVersion(NamedTuple):
    """A JetStream version string's parts: ``rs.jetstream.proto/<name>/<semver>``."""

    name: str
    semver: str


def parse_version(text: str) -> ParsedVersion | None:
    """The parts of a JetStream version string, or None if it is not one: as upstream's Rust
    parser, it starts with ``rs.jetstream.proto``, has exactly three ``/``-separated pieces,
    and the third is a SemVer 2.0 version (build metadata allowed)."""
    if not text.startswith(VERSION_PREFIX):
        return None
    pieces = text.split("/")
    if len(pieces) != 3 or _SEMVER.fullmatch(pieces[2]) is None:
        return None
    return ParsedVersion(pieces[1], pieces[2])


LEGACY_9P_VERSIONS = frozenset({"9P2000.L", "9P2000"})
"""Version strings upstream parses besides JetStream's: a JetStream server refuses them."""


def _identifier_key(identifier: str) -> tuple[int, int, str, int] | tuple[int, str]:
    # Numeric identifiers compare as numbers and before alphanumeric ones (SemVer 2.0 §11.4);
    # leading zeros (possible only in build metadata) count after the value, as in Rust's
    # semver crate, which upstream uses: 1 < 01 < 001 < 2.
    if identifier.isascii() and identifier.isdigit():
        value = identifier.lstrip("0")
        return (0, len(value), value, len(identifier))
    return (1, identifier)


def semver_key(semver: str) -> tuple[object, ...]:
    """A sort key of SemVer precedence for a version ``parse_version`` accepted: major, minor,
    patch, then a pre-release below its release, then (as upstream's Rust semver does, as a last
    tie-breaker) build metadata, none below any."""
    match = _SEMVER.fullmatch(semver)
    if match is None:
        raise ValueError(f"{semver!r} is not a SemVer version")
    pre, build = match.group("pre"), match.group("build")
    return (
        int(match.group("major")), int(match.group("minor")), int(match.group("patch")),
        (1,) if pre is None else (0, *[_identifier_key(i) for i in pre.split(".")]),
        () if build is None else (1, *[_identifier_key(i) for i in build.split(".")]),
    )


def check_semver(semver: str, what: str) -> str:
    """``semver`` if it is a SemVer 2.0 version without build metadata (the digest goes there)."""
    match = _SEMVER.fullmatch(semver) if isinstance(semver, str) else None
    if match is None or match.group("build") is not None:
        raise SchemaError(
            f"{what}: version {semver!r} is not a SemVer version such as '1.0.0' or '2.1.0-beta.1' "
            "(no '+build' part: jetwire puts the schema digest there)"
        )
    return semver


def format_version(name: str, semver: str, digest: str) -> str:
    """``rs.jetstream.proto/<name>/<semver>+<digest>`` (r[jetstream.rpc.version.string])."""
    return f"{VERSION_PREFIX}/{name}/{semver}+{digest}"


class RpcError(JetwireError):
    """A failure of the RPC layer itself, on this side: the connection, the protocol, a timeout.
    What a remote handler raised arrives as ``jetwire.Error`` instead."""


class ProtocolError(RpcError):
    """JetStream RPC was broken; the subclass says which side broke it."""


class LocalProtocolError(ProtocolError):
    """This side asked for something the protocol or the session's state does not allow; nothing
    was sent."""


class RemoteProtocolError(ProtocolError):
    """The peer broke the protocol: a frame that does not decode, a type it may not send."""


class VersionError(RemoteProtocolError):
    """The version handshake failed: the server refused the service or version, or answered
    with an error (r[jetstream.rpc.version.client-reject])."""


class ConnectionClosed(RpcError, ConnectionError):
    """The connection ended, or was closed, before the call was answered. Nothing more can be
    sent on it: connect again."""


class CallTimeout(RpcError, TimeoutError):
    """No answer within the call's timeout. The call's tag stays reserved until the late answer
    arrives, which is then dropped (r[jetstream.rpc.cancel.local])."""


class ConnectTimeout(CallTimeout):
    """No connection and version handshake within ``connect_timeout``. A ``CallTimeout`` (so one
    ``except CallTimeout`` covers every wait a client does) and a ``TimeoutError``, not a
    ``ConnectionError``: nothing was refused, the peer may simply be slow or unreachable."""


class TagsExhausted(LocalProtocolError):
    """Every tag of the session is held by a call in flight (r[jetstream.rpc.tag.client-pool])."""


class MsizeError(LocalProtocolError, ValueError):
    """A frame larger than the peer said it accepts (r[jetstream.rpc.limits.peer-msize])."""

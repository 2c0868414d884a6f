"""The benchmark payloads declared with ``construct`` (2.10), the classic declarative library.

Written as a construct user would: ``PascalString`` for 9P strings, ``PrefixedArray`` for
vectors, ``Prefixed(Int32ul, GreedyBytes)`` for ``data[count]``, and the frame as
``Prefixed(Int32ul, ..., includelength=True)`` so construct computes and checks ``size``. The
option is a ``FocusedSeq`` with a rebuilt tag, the map an ``Adapter`` over a list of pairs
(written in key order). Values are plain dicts and lists in, ``Container``s out. ``.compile()``
turns each into generated Python; the parts construct cannot compile (``Prefixed`` builds, the
map adapter, ``Terminated``) are linked into the compiled code as they are.
"""

from __future__ import annotations

from typing import Any

from construct import (
    Adapter,
    Const,
    FocusedSeq,
    GreedyBytes,
    If,
    Int8ul,
    Int16ul,
    Int32ul,
    Int64ul,
    PascalString,
    Prefixed,
    PrefixedArray,
    Rebuild,
    Struct,
    Terminated,
    this,
)

from .messages import RGETATTR, RREAD, TVERSION, TWALK, TWRITE

String = PascalString(Int16ul, "utf8")
Data = Prefixed(Int32ul, GreedyBytes)

OptionalString = FocusedSeq(
    "value",
    "present" / Rebuild(Int8ul, this.value != None),  # noqa: E711 (a construct expression, not a test)
    "value" / If(this.present == 1, String),
)


class SortedMap(Adapter):  # type: ignore[misc]
    """dict <-> a list of {k, v} pairs in key order."""

    def _decode(self, obj: Any, context: Any, path: Any) -> dict[Any, Any]:
        result = {pair.k: pair.v for pair in obj}
        if len(result) != len(obj):
            raise ValueError("duplicate key")
        return result

    def _encode(self, obj: Any, context: Any, path: Any) -> list[dict[str, Any]]:
        return [{"k": k, "v": obj[k]} for k in sorted(obj)]


def frame(type_number: int, *body: Any) -> Any:
    """A whole 9P frame: size[4] (counting itself) type[1] tag[2] body."""
    return Prefixed(
        Int32ul,
        Struct("type" / Const(type_number, Int8ul), "tag" / Int16ul, *body, Terminated),
        includelength=True,
    )


Qid = Struct("type" / Int8ul, "version" / Int32ul, "path" / Int64ul)

Tversion = frame(TVERSION, "msize" / Int32ul, "version" / String)
Twalk = frame(TWALK, "fid" / Int32ul, "newfid" / Int32ul, "wnames" / PrefixedArray(Int16ul, String))
Rgetattr = frame(
    RGETATTR,
    "valid" / Int64ul, "qid" / Qid, "mode" / Int32ul, "uid" / Int32ul, "gid" / Int32ul,
    "nlink" / Int64ul, "rdev" / Int64ul, "file_size" / Int64ul, "blksize" / Int64ul, "blocks" / Int64ul,
    "atime_sec" / Int64ul, "atime_nsec" / Int64ul, "mtime_sec" / Int64ul, "mtime_nsec" / Int64ul,
    "ctime_sec" / Int64ul, "ctime_nsec" / Int64ul, "btime_sec" / Int64ul, "btime_nsec" / Int64ul,
    "gen" / Int64ul, "data_version" / Int64ul,
)
Rread = frame(RREAD, "data" / Data)
Twrite = frame(TWRITE, "fid" / Int32ul, "offset" / Int64ul, "data" / Data)

Item = Struct("a" / Int16ul, "b" / Int64ul, "label" / String)
AppMsg = Struct(
    "id" / Int32ul,
    "name" / String,
    "note" / OptionalString,
    "items" / PrefixedArray(Int16ul, Item),
    "tags" / SortedMap(PrefixedArray(Int16ul, Struct("k" / String, "v" / Int32ul))),
    Terminated,
)

FORMATS = {
    "Tversion": Tversion,
    "Twalk": Twalk,
    "Rgetattr": Rgetattr,
    "Rread": Rread,
    "Twrite": Twrite,
    "AppMsg": AppMsg,
}


def native(value: Any) -> Any:
    """The construct input for a jetwire value: dicts for structs, without the frame's size
    (``Prefixed`` computes it)."""
    import dataclasses

    if dataclasses.is_dataclass(value):
        return {f.name: native(getattr(value, f.name)) for f in dataclasses.fields(value) if f.name != "size"}
    if isinstance(value, list):
        return [native(v) for v in value]
    return value


def plain(value: Any) -> Any:
    """A parsed construct value as plain dicts and lists (for comparisons)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items() if not k.startswith("_")}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value

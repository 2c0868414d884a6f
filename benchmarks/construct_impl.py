"""The benchmark payloads declared with ``construct`` (2.10), the classic declarative library.

Written as a construct user would: ``PascalString`` for AppMsg's strings, an ``Adapter`` over
``Prefixed(Int16ul, GreedyBytes)`` for 9P names (``utf-8``/``surrogateescape``, as
``jetwire.p9``'s ``fsstr``: any Linux name), ``PrefixedArray`` for vectors,
``Prefixed(Int32ul, GreedyBytes)`` for ``data[count]``. A 9P frame is
``Prefixed(Int32ul, ..., includelength=True)`` (construct computes and checks ``size``) around
``type``, ``tag`` and a ``Switch`` on the type over the messages (unknown types refused), the
counterpart of ``jetwire.p9``'s ``Tframe``/``Rframe``. The option is a ``FocusedSeq`` with a
rebuilt tag, the map an ``Adapter`` over a list of pairs (written in key order). Values are
plain dicts and lists in, ``Container``s out. ``.compile()`` turns each into generated Python;
the parts construct cannot compile (``Prefixed`` builds, the adapters, ``Terminated``) are
linked into the compiled code as they are.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from construct import (
    Adapter,
    Error,
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
    Switch,
    Terminated,
    this,
)

import jetwire.p9 as p9
from jetwire import Frame

String = PascalString(Int16ul, "utf8")
Data = Prefixed(Int32ul, GreedyBytes)


class FsStrAdapter(Adapter):  # type: ignore[misc]
    """str <-> bytes as ``os.fsdecode``/``os.fsencode`` do (9P names are bytes)."""

    def _decode(self, obj: bytes, context: Any, path: Any) -> str:
        return obj.decode("utf-8", "surrogateescape")

    def _encode(self, obj: str, context: Any, path: Any) -> bytes:
        return obj.encode("utf-8", "surrogateescape")


FsStr = FsStrAdapter(Prefixed(Int16ul, GreedyBytes))

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


def frame(messages: dict[int, Any]) -> Any:
    """A whole 9P frame: size[4] (counting itself) type[1] tag[2], then the message its type names."""
    return Prefixed(
        Int32ul,
        Struct("type" / Int8ul, "tag" / Int16ul, "msg" / Switch(this.type, messages, default=Error), Terminated),
        includelength=True,
    )


Qid = Struct("type" / Int8ul, "version" / Int32ul, "path" / Int64ul)

Tversion = Struct("msize" / Int32ul, "version" / FsStr)
Twalk = Struct("fid" / Int32ul, "newfid" / Int32ul, "wnames" / PrefixedArray(Int16ul, FsStr))
Twrite = Struct("fid" / Int32ul, "offset" / Int64ul, "data" / Data)
Rgetattr = Struct(
    "valid" / Int64ul, "qid" / Qid, "mode" / Int32ul, "uid" / Int32ul, "gid" / Int32ul,
    "nlink" / Int64ul, "rdev" / Int64ul, "size" / Int64ul, "blksize" / Int64ul, "blocks" / Int64ul,
    "atime_sec" / Int64ul, "atime_nsec" / Int64ul, "mtime_sec" / Int64ul, "mtime_nsec" / Int64ul,
    "ctime_sec" / Int64ul, "ctime_nsec" / Int64ul, "btime_sec" / Int64ul, "btime_nsec" / Int64ul,
    "gen" / Int64ul, "data_version" / Int64ul,
)
Rread = Struct("data" / Data)

Tframe = frame({100: Tversion, 110: Twalk, 118: Twrite})
Rframe = frame({25: Rgetattr, 117: Rread})
TYPE_NUMBERS = {p9.Tversion: 100, p9.Twalk: 110, p9.Twrite: 118, p9.Rgetattr: 25, p9.Rread: 117}

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
    "Tversion": Tframe,
    "Twalk": Tframe,
    "Rgetattr": Rframe,
    "Rread": Rframe,
    "Rread64K": Rframe,
    "Twrite": Tframe,
    "AppMsg": AppMsg,
}


@functools.cache
def compiled(payload: str) -> Any:
    """``FORMATS[payload].compile()``, once per format."""
    return _compile(FORMATS[payload])


@functools.cache
def _compile(fmt: Any) -> Any:
    return fmt.compile()


def native(value: Any) -> Any:
    """The construct input for a jetwire value: dicts for structs; a frame's type number from
    its message's class, its size left out (``Prefixed`` computes it)."""
    if isinstance(value, Frame):
        return {"type": TYPE_NUMBERS[type(value.msg)], "tag": value.tag, "msg": native(value.msg)}
    if dataclasses.is_dataclass(value):
        return {f.name: native(getattr(value, f.name)) for f in dataclasses.fields(value)}
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

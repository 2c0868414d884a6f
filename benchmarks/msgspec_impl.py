"""msgspec (a C extension with its own format, MessagePack here): the reference row.

The equivalent ``msgspec.Struct`` types, ``array_like`` so that field names are not on the wire
(as in the 9P encoding). msgspec validates types on decode but not the integer widths."""

from __future__ import annotations

import dataclasses
from typing import Any

import msgspec


class Qid(msgspec.Struct, array_like=True):
    type: int
    version: int
    path: int


class Tversion(msgspec.Struct, array_like=True):
    size: int
    type: int
    tag: int
    msize: int
    version: str


class Twalk(msgspec.Struct, array_like=True):
    size: int
    type: int
    tag: int
    fid: int
    newfid: int
    wnames: list[str]


class Rgetattr(msgspec.Struct, array_like=True):
    size: int
    type: int
    tag: int
    valid: int
    qid: Qid
    mode: int
    uid: int
    gid: int
    nlink: int
    rdev: int
    file_size: int
    blksize: int
    blocks: int
    atime_sec: int
    atime_nsec: int
    mtime_sec: int
    mtime_nsec: int
    ctime_sec: int
    ctime_nsec: int
    btime_sec: int
    btime_nsec: int
    gen: int
    data_version: int


class Rread(msgspec.Struct, array_like=True):
    size: int
    type: int
    tag: int
    data: bytes


class Twrite(msgspec.Struct, array_like=True):
    size: int
    type: int
    tag: int
    fid: int
    offset: int
    data: bytes


class Item(msgspec.Struct, array_like=True):
    a: int
    b: int
    label: str


class AppMsg(msgspec.Struct, array_like=True):
    id: int
    name: str
    note: str | None
    items: list[Item]
    tags: dict[str, int]


TYPES: dict[str, Any] = {
    "Tversion": Tversion,
    "Twalk": Twalk,
    "Rgetattr": Rgetattr,
    "Rread": Rread,
    "Twrite": Twrite,
    "AppMsg": AppMsg,
}
_BY_NAME = {"Qid": Qid, "Item": Item}


def convert(value: Any, cls: Any = None) -> Any:
    """The msgspec value for a jetwire value (same field names)."""
    if dataclasses.is_dataclass(value):
        target = cls or _BY_NAME[type(value).__name__]
        return target(**{f.name: convert(getattr(value, f.name)) for f in dataclasses.fields(value)})
    if isinstance(value, list):
        return [convert(v) for v in value]
    return value


def plain(value: Any) -> Any:
    """A msgspec value as plain dicts and lists (for comparisons)."""
    if isinstance(value, msgspec.Struct):
        return {name: plain(getattr(value, name)) for name in value.__struct_fields__}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value

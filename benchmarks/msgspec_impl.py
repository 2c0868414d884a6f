"""msgspec (a C extension with its own format, MessagePack here): the reference row.

The equivalent ``msgspec.Struct`` types, ``array_like`` so that field names are not on the wire
(as in the 9P encoding). A 9P frame is ``{tag, msg}`` with ``msg`` a union of structs tagged by
their message numbers (msgspec writes the number first and dispatches on it when decoding), the
counterpart of ``jetwire.p9``'s ``Tframe``/``Rframe``; MessagePack delimits itself, so there is
no size field. msgspec validates types on decode but not the integer widths, and its strings are
strict UTF-8 (a 9P name that is not UTF-8 cannot be sent)."""

from __future__ import annotations

import dataclasses
from typing import Any, Union

import msgspec

from jetwire import Frame


class Qid(msgspec.Struct, array_like=True):
    type: int
    version: int
    path: int


class Tversion(msgspec.Struct, array_like=True, tag=100):
    msize: int
    version: str


class Twalk(msgspec.Struct, array_like=True, tag=110):
    fid: int
    newfid: int
    wnames: list[str]


class Twrite(msgspec.Struct, array_like=True, tag=118):
    fid: int
    offset: int
    data: bytes


class Rgetattr(msgspec.Struct, array_like=True, tag=25):
    valid: int
    qid: Qid
    mode: int
    uid: int
    gid: int
    nlink: int
    rdev: int
    size: int
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


class Rread(msgspec.Struct, array_like=True, tag=117):
    data: bytes


class Tframe(msgspec.Struct, array_like=True):
    tag: int
    msg: Union[Tversion, Twalk, Twrite]


class Rframe(msgspec.Struct, array_like=True):
    tag: int
    msg: Union[Rgetattr, Rread]


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
    "Tversion": Tframe,
    "Twalk": Tframe,
    "Rgetattr": Rframe,
    "Rread": Rframe,
    "Rread64K": Rframe,
    "Twrite": Tframe,
    "AppMsg": AppMsg,
}
_BY_NAME = {cls.__name__: cls for cls in (Qid, Tversion, Twalk, Twrite, Rgetattr, Rread, Item)}


def convert(value: Any, cls: Any = None) -> Any:
    """The msgspec value for a jetwire value (same field names)."""
    if isinstance(value, Frame):
        return cls(tag=value.tag, msg=convert(value.msg))
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

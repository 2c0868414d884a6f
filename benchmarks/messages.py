"""The benchmark payloads declared with jetwire, as a user would, and one sample value of each.

``jetwire.p9`` does not exist yet, so the 9P2000.L frames are declared here: each one is a whole
frame as one struct (``size[4] type[1] tag[2]`` then the body, layouts from
``shared/spec/9p2000L.md``). ``size`` counts the whole frame, itself included; the user code in
``frame_encoder`` fills it in with ``byte_size()`` before encoding, and ``frame_decoder`` checks it
(and the type number) after decoding, which is what a correct 9P peer must do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Optional

from jetwire import u8, u16, u32, u64, wireformat

NOTAG = 0xFFFF

# 9P2000.L type numbers (r[9p2000l.types]).
TVERSION = 100
TWALK = 110
RGETATTR = 25
RREAD = 117
TWRITE = 118


@wireformat
class Qid:
    type: u8
    version: u32
    path: u64


@wireformat
class TversionFrame:
    size: u32
    type: u8
    tag: u16
    msize: u32
    version: str


@wireformat
class TwalkFrame:
    size: u32
    type: u8
    tag: u16
    fid: u32
    newfid: u32
    wnames: list[str]


@wireformat
class RgetattrFrame:
    size: u32
    type: u8
    tag: u16
    valid: u64
    qid: Qid
    mode: u32
    uid: u32
    gid: u32
    nlink: u64
    rdev: u64
    file_size: u64  # the body's "size[8]"; renamed so it does not clash with the frame's size
    blksize: u64
    blocks: u64
    atime_sec: u64
    atime_nsec: u64
    mtime_sec: u64
    mtime_nsec: u64
    ctime_sec: u64
    ctime_nsec: u64
    btime_sec: u64
    btime_nsec: u64
    gen: u64
    data_version: u64


@wireformat
class RreadFrame:
    size: u32
    type: u8
    tag: u16
    data: bytes


@wireformat
class TwriteFrame:
    size: u32
    type: u8
    tag: u16
    fid: u32
    offset: u64
    data: bytes


@wireformat
class Item:
    a: u16
    b: u64
    label: str


@wireformat
class AppMsg:
    id: u32
    name: str
    note: Optional[str]
    items: list[Item]
    tags: dict[str, u32]


# Messages for the scaling measurement (10, 1,000 and 60,000 elements).
@wireformat
class U32Batch:
    seq: u32
    values: list[u32]


@wireformat
class StrBatch:
    seq: u32
    names: list[str]


# --- the user code around jetwire ------------------------------------------------------------

def frame_encoder(cls: type) -> Callable[[Any], bytes]:
    """``msg -> bytes`` for a frame class: the most natural user code, which sets the size field
    from ``byte_size()`` and then encodes (two passes over the value; see README)."""

    def encode(msg: Any) -> bytes:
        msg.size = msg.byte_size()
        return msg.encode()  # type: ignore[no-any-return]

    encode.__qualname__ = f"encode_{cls.__name__}"
    return encode


def frame_decoder(cls: Any, type_number: int) -> Callable[[bytes], Any]:
    """``bytes -> msg`` for a frame class: decode, then check what jetwire cannot know about 9P
    framing (the size field names the whole buffer; the type number is the right one)."""
    decode = cls.decode

    def decode_frame(data: bytes) -> Any:
        msg = decode(data)
        if msg.size != len(data) or msg.type != type_number:
            raise ValueError(f"bad {cls.__name__} frame: size {msg.size}, type {msg.type}, {len(data)} bytes")
        return msg

    decode_frame.__qualname__ = f"decode_{cls.__name__}"
    return decode_frame


# --- sample values ---------------------------------------------------------------------------

def _sized(msg: Any) -> Any:
    msg.size = msg.byte_size()
    return msg


def sample_tversion() -> TversionFrame:
    return _sized(TversionFrame(0, TVERSION, NOTAG, 65536, "9P2000.L"))


def sample_twalk() -> TwalkFrame:
    return _sized(TwalkFrame(0, TWALK, 2, 1, 2, ["usr", "share", "doc"]))


def sample_rgetattr() -> RgetattrFrame:
    return _sized(RgetattrFrame(
        0, RGETATTR, 3,
        valid=0x3FFF, qid=Qid(0x80, 0x6553_F100, 0x0000_0001_2345_6789),
        mode=0o040755, uid=1000, gid=1000, nlink=7, rdev=0, file_size=4096, blksize=4096, blocks=8,
        atime_sec=1_795_000_000, atime_nsec=123_456_789, mtime_sec=1_794_999_000, mtime_nsec=987_654_321,
        ctime_sec=1_794_999_500, ctime_nsec=555_555_555, btime_sec=1_700_000_000, btime_nsec=1,
        gen=0xFFFF_FFFF_FFFF_FFFF, data_version=42,
    ))


def sample_rread() -> RreadFrame:
    return _sized(RreadFrame(0, RREAD, 4, bytes(range(256)) * 16))  # 4 KiB


def sample_twrite() -> TwriteFrame:
    return _sized(TwriteFrame(0, TWRITE, 5, 3, 1 << 33, bytes(range(256)) * 256))  # 64 KiB


def sample_app() -> AppMsg:
    items = [Item(i, (i * 1_000_000_007) % (1 << 64), f"item-{i:03d}") for i in range(100)]
    tags = {f"tag-{i}": i * 7919 for i in reversed(range(10))}  # inserted out of key order
    return AppMsg(42, "order-42", "Grüße aus Köln — 東京 ✓", items, tags)


def sample_u32_batch(n: int) -> U32Batch:
    return U32Batch(n, [(i * 2_654_435_761) % (1 << 32) for i in range(n)])


def sample_str_batch(n: int) -> StrBatch:
    return StrBatch(n, [f"name-{i}" for i in range(n)])

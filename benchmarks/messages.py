"""The benchmark payloads and one sample value of each.

The 9P2000.L payloads are ``jetwire.p9``'s own frames, as a 9P client or server uses them:
``Tframe(tag=2, msg=Twalk(...)).encode()`` and ``Rframe.decode(data)`` (the frame code is
generated in one pass: size counted, header packed with the body, size and type checked). The
application message (``AppMsg``) and the scaling messages are declared here, as a user would.
"""

from __future__ import annotations

from typing import Optional

from jetwire import u16, u32, u64, wireformat
from jetwire.p9 import Qid, Rframe, Rgetattr, Rread, Tframe, Tversion, Twalk, Twrite

NOTAG = 0xFFFF


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


# --- sample values ---------------------------------------------------------------------------

def sample_tversion() -> Tframe:
    return Tframe(tag=NOTAG, msg=Tversion(msize=65536, version="9P2000.L"))


def sample_twalk() -> Tframe:
    return Tframe(tag=2, msg=Twalk(fid=1, newfid=2, wnames=["usr", "share", "doc"]))


def sample_rgetattr() -> Rframe:
    return Rframe(tag=3, msg=Rgetattr(
        valid=0x3FFF, qid=Qid(type=0x80, version=0x6553_F100, path=0x0000_0001_2345_6789),
        mode=0o040755, uid=1000, gid=1000, nlink=7, rdev=0, size=4096, blksize=4096, blocks=8,
        atime_sec=1_795_000_000, atime_nsec=123_456_789, mtime_sec=1_794_999_000, mtime_nsec=987_654_321,
        ctime_sec=1_794_999_500, ctime_nsec=555_555_555, btime_sec=1_700_000_000, btime_nsec=1,
        gen=0xFFFF_FFFF_FFFF_FFFF, data_version=42,
    ))


def sample_rread() -> Rframe:
    return Rframe(tag=4, msg=Rread(data=bytes(range(256)) * 16))  # 4 KiB


def sample_rread64k() -> Rframe:
    return Rframe(tag=4, msg=Rread(data=bytes(range(256)) * 256))  # 64 KiB


def sample_twrite() -> Tframe:
    return Tframe(tag=5, msg=Twrite(fid=3, offset=1 << 33, data=bytes(range(256)) * 256))  # 64 KiB


def sample_app() -> AppMsg:
    items = [Item(i, (i * 1_000_000_007) % (1 << 64), f"item-{i:03d}") for i in range(100)]
    tags = {f"tag-{i}": i * 7919 for i in reversed(range(10))}  # inserted out of key order
    return AppMsg(42, "order-42", "Grüße aus Köln — 東京 ✓", items, tags)


def sample_u32_batch(n: int) -> U32Batch:
    return U32Batch(n, [(i * 2_654_435_761) % (1 << 32) for i in range(n)])


def sample_str_batch(n: int) -> StrBatch:
    return StrBatch(n, [f"name-{i}" for i in range(n)])

"""The 9P2000.L wire, offline: layouts, framing and the sans-I/O session (../shared/spec/9p2000L.md).

Every expected byte string here comes from the spec, never from jetwire: either written out by
hand from a reference encoding, or built by the small encoder below, which reads the spec's own
layout lines (copied into ``LAYOUTS``) and nothing of jetwire's tables. Each test names the rule
it proves as ``r[...]``.
"""

from __future__ import annotations

import errno
import itertools
import os
import random
import re
import typing
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import jetwire as jw
import jetwire.p9 as p9
from jetwire.p9 import constants as c
from jetwire.p9 import messages
from jetwire.p9.messages import (
    Dirent,
    Qid,
    Rattach,
    Rclunk,
    Rerror,
    Rflush,
    Rframe,
    Rlerror,
    Rread,
    Rreadlink,
    Rremove,
    Rversion,
    Rwalk,
    Tattach,
    Tclunk,
    Tframe,
    Tgetattr,
    Tlopen,
    Treadlink,
    Tremove,
    Tstatfs,
    Tversion,
    Twalk,
    Twrite,
)
from jetwire.p9.session import Failed, Flushed, Orphan, ProtocolError, Reply, Session, Stray
from jetwire.runtime.frames import FrameError, FrameReader
from jetwire.testing import strategy

H = bytes.fromhex  # ignores spaces, so expected bytes are grouped by field
# The spec sits beside the repository (``../shared``) where the project is developed and in CI.
SPEC = Path(__file__).resolve().parents[3] / "shared" / "spec" / "9p2000L.md"
NOTAG = 0xFFFF

# ================================================================================================
# The spec, copied: message numbers and layouts
# ================================================================================================

# r[9p2000l.types]: the type-number table, verbatim.
TYPES = """
| 6 | 7 | lerror (only Rlerror is ever sent) | yes |
| 8 | 9 | statfs | yes |
| 12 | 13 | lopen | yes |
| 14 | 15 | lcreate | yes |
| 16 | 17 | symlink | yes |
| 18 | 19 | mknod | yes |
| 20 | 21 | rename | yes |
| 22 | 23 | readlink | yes |
| 24 | 25 | getattr | yes |
| 26 | 27 | setattr | yes |
| 30 | 31 | xattrwalk | yes |
| 32 | 33 | xattrcreate | yes |
| 40 | 41 | readdir | yes |
| 50 | 51 | fsync | yes |
| 52 | 53 | lock | yes |
| 54 | 55 | getlock | yes |
| 70 | 71 | link | yes |
| 72 | 73 | mkdir | yes |
| 74 | 75 | renameat | yes |
| 76 | 77 | unlinkat | yes |
| 100 | 101 | version | yes |
| 102 | 103 | auth | yes |
| 104 | 105 | attach | yes |
| 106 | 107 | error (only Rerror; never sent in .L, see errors) | no |
| 108 | 109 | flush | yes |
| 110 | 111 | walk | yes |
| 112 | 113 | open | no (lopen) |
| 114 | 115 | create | no (lcreate) |
| 116 | 117 | read | yes |
| 118 | 119 | write | yes |
| 120 | 121 | clunk | yes |
| 122 | 123 | remove | yes |
| 124 | 125 | stat | no (getattr) |
| 126 | 127 | wstat | no (setattr) |
"""

# Every layout line of the spec, verbatim (indented lines continue the line above).
LAYOUTS = """
Tversion  msize[4] version[s]
Rversion  msize[4] version[s]
Tauth  afid[4] uname[s] aname[s] n_uname[4]
Rauth  aqid[13]
Tattach  fid[4] afid[4] uname[s] aname[s] n_uname[4]
Rattach  qid[13]
Tflush  oldtag[2]
Rflush  (empty)
Twalk  fid[4] newfid[4] nwname[2] nwname*(wname[s])
Rwalk  nwqid[2] nwqid*(qid[13])
Tclunk  fid[4]
Rclunk  (empty)
Tremove  fid[4]
Rremove  (empty)
Tlopen  fid[4] flags[4]
Rlopen  qid[13] iounit[4]
Tlcreate  fid[4] name[s] flags[4] mode[4] gid[4]
Rlcreate  qid[13] iounit[4]
Tread  fid[4] offset[8] count[4]
Rread  count[4] data[count]
Twrite  fid[4] offset[8] count[4] data[count]
Rwrite  count[4]
Treaddir  fid[4] offset[8] count[4]
Rreaddir  count[4] data[count]
Tfsync  fid[4] datasync[4]
Rfsync  (empty)
Tgetattr  fid[4] request_mask[8]
Rgetattr  valid[8] qid[13] mode[4] uid[4] gid[4] nlink[8] rdev[8] size[8] blksize[8] blocks[8]
          atime_sec[8] atime_nsec[8] mtime_sec[8] mtime_nsec[8] ctime_sec[8] ctime_nsec[8]
          btime_sec[8] btime_nsec[8] gen[8] data_version[8]
Tsetattr  fid[4] valid[4] mode[4] uid[4] gid[4] size[8]
          atime_sec[8] atime_nsec[8] mtime_sec[8] mtime_nsec[8]
Rsetattr  (empty)
Tstatfs  fid[4]
Rstatfs  type[4] bsize[4] blocks[8] bfree[8] bavail[8] files[8] ffree[8] fsid[8] namelen[4]
Txattrwalk  fid[4] newfid[4] name[s]
Rxattrwalk  size[8]
Txattrcreate  fid[4] name[s] attr_size[8] flags[4]
Rxattrcreate  (empty)
Tmkdir  dfid[4] name[s] mode[4] gid[4]
Rmkdir  qid[13]
Tsymlink  fid[4] name[s] symtgt[s] gid[4]
Rsymlink  qid[13]
Tmknod  dfid[4] name[s] mode[4] major[4] minor[4] gid[4]
Rmknod  qid[13]
Treadlink  fid[4]
Rreadlink  target[s]
Tlink  dfid[4] fid[4] name[s]
Rlink  (empty)
Trename  fid[4] dfid[4] name[s]
Rrename  (empty)
Trenameat  olddirfid[4] oldname[s] newdirfid[4] newname[s]
Rrenameat  (empty)
Tunlinkat  dirfd[4] name[s] flags[4]
Runlinkat  (empty)
Tlock  fid[4] type[1] flags[4] start[8] length[8] proc_id[4] client_id[s]
Rlock  status[1]
Tgetlock  fid[4] type[1] start[8] length[8] proc_id[4] client_id[s]
Rgetlock  type[1] start[8] length[8] proc_id[4] client_id[s]
Rlerror  ecode[4]
"""

# r[9p2000l.readdir.dirent]: one entry of Rreaddir's data (not a message: no frame header).
DIRENT_LAYOUT = "Dirent  qid[13] offset[8] type[1] name[s]"

# r[9p2000l.sizes]: whole-frame sizes of the fixed-layout messages, as listed.
SIZES = {
    **dict.fromkeys(
        ["Rclunk", "Rremove", "Rflush", "Rsetattr", "Rrename", "Rrenameat", "Runlinkat", "Rlink", "Rfsync",
         "Rxattrcreate"], 7),
    "Rlock": 8,
    "Tflush": 9,
    **dict.fromkeys(["Rlerror", "Tclunk", "Tremove", "Tstatfs", "Treadlink", "Rwrite"], 11),
    **dict.fromkeys(["Tlopen", "Tfsync", "Rxattrwalk"], 15),
    "Tgetattr": 19,
    **dict.fromkeys(["Rattach", "Rauth", "Rmkdir", "Rsymlink", "Rmknod"], 20),
    **dict.fromkeys(["Tread", "Treaddir"], 23),
    **dict.fromkeys(["Rlopen", "Rlcreate"], 24),
    **dict.fromkeys(["Rstatfs", "Tsetattr"], 67),
    "Rgetattr": 160,
}


def type_table() -> list[tuple[int, int, str, bool]]:
    """(T number, R number, name, kept in .L) for each row of ``TYPES``."""
    rows = []
    for line in TYPES.strip().splitlines():
        t, r, name, kept = (cell.strip() for cell in line.strip("| ").split("|"))
        rows.append((int(t), int(r), name.split()[0], kept == "yes"))
    return rows


def type_number(message: str) -> int:
    """The spec's number for ``Tname``/``Rname``."""
    for t, r, name, _ in type_table():
        if message[1:] == name:
            return t if message[0] == "T" else r
    raise KeyError(message)


def parse_layouts(text: str) -> dict[str, list[str]]:
    """``{"Tversion": ["msize[4]", "version[s]"], ...}``, continuation lines joined."""
    layouts: dict[str, list[str]] = {}
    name = ""
    for line in text.strip("\n").splitlines():
        if line[0].isspace():
            layouts[name] += line.split()
        else:
            name, *fields = line.split()
            layouts[name] = [] if fields == ["(empty)"] else fields
    return layouts


LAYOUT = parse_layouts(LAYOUTS)

# ================================================================================================
# An independent encoder for those layouts
# ================================================================================================

FIELD = re.compile(r"^(\w+)\[(\w+)\]$")  # name[4], name[s], qid[13], data[count]
ARRAY = re.compile(r"^(\w+)\*\((\w+)\[(\w+)\]\)$")  # nwname*(wname[s])
ARRAY_ATTR = {"wname": "wnames", "qid": "wqids"}  # jetwire's name for the counted arrays


class Sample:
    """Distinct sample values, and their bytes worked out from the notation alone:
    ``name[n]`` n bytes little-endian, ``[s]`` u16 length + bytes, ``qid[13]`` type[1] version[4] path[8]."""

    def __init__(self, seed: int) -> None:
        self.next = seed

    def int(self, n: int) -> tuple[int, bytes]:
        # every byte different from its neighbours, so a swapped or mis-sized field shows
        raw = bytes((self.next + 37 * k) % 251 + 1 for k in range(n))
        self.next += 1
        value = int.from_bytes(raw, "big")
        return value, value.to_bytes(n, "little")

    def str(self, label: str) -> tuple[str, bytes]:
        text = f"{label}-\u00e9{self.next}"
        self.next += 1
        raw = text.encode("utf-8")
        return text, len(raw).to_bytes(2, "little") + raw

    def qid(self) -> tuple[Qid, bytes]:
        (t, bt), (v, bv), (p, bp) = self.int(1), self.int(4), self.int(8)
        return Qid(type=t, version=v, path=p), bt + bv + bp

    def data(self) -> tuple[bytes, bytes]:
        raw = bytes([0, 0xFF, self.next % 256]) + b"data"
        self.next += 1
        return raw, len(raw).to_bytes(4, "little") + raw

    def field(self, name: str, width: str) -> tuple[object, bytes]:
        if width == "s":
            return self.str(name)
        if width == "13":
            return self.qid()
        return self.int(int(width))


def sample_body(fields: list[str], seed: int) -> tuple[dict[str, object], bytes]:
    """The attributes of a sample value with the given layout, and its body bytes."""
    sample = Sample(seed)
    attrs: dict[str, object] = {}
    body = b""
    i = 0
    while i < len(fields):
        m = FIELD.match(fields[i])
        following = fields[i + 1] if i + 1 < len(fields) else ""
        array = ARRAY.match(following)
        if m and array and array.group(1) == m.group(1):  # nwname[2] nwname*(wname[s])
            _, elem, width = array.groups()
            items = [sample.field(elem, width) for _ in range(3 if elem == "wname" else 2)]
            attrs[ARRAY_ATTR[elem]] = [value for value, _ in items]
            body += len(items).to_bytes(int(m.group(2)), "little") + b"".join(raw for _, raw in items)
            i += 2
        elif m and following == f"data[{m.group(1)}]":
            assert m.group(2) == "4"  # r[9p2000l.encoding.data]: count[4] then count bytes
            attrs["data"], raw = sample.data()
            body += raw
            i += 2
        else:
            assert m, fields[i]
            attrs[m.group(1)], raw = sample.field(*m.groups())
            body += raw
            i += 1
    return attrs, body


def frame_bytes(type_: int, tag: int, body: bytes) -> bytes:
    """r[9p2000l.frame.header]: size[4] (whole frame) type[1] tag[2] body."""
    return (7 + len(body)).to_bytes(4, "little") + bytes([type_]) + tag.to_bytes(2, "little") + body


def frame_class(message: str) -> type[Tframe] | type[Rframe]:
    return Tframe if message[0] == "T" else Rframe


def sample_frame(message: str, seed: int = 0x10) -> tuple[Tframe | Rframe, bytes]:
    """A frame of ``message`` with distinct field values, and its bytes from the spec alone."""
    attrs, body = sample_body(LAYOUT[message], seed)
    tag = 0x0100 + seed
    frame = frame_class(message)(tag=tag, msg=getattr(messages, message)(**attrs))
    return frame, frame_bytes(type_number(message), tag, body)


def check_frame(frame: Tframe | Rframe, data: bytes) -> None:
    """encode gives ``data``, byte_size its length, and decode gives the frame back."""
    assert frame.encode() == data
    assert frame.byte_size() == len(data)
    got = type(frame).decode(data)
    assert got == frame
    assert type(got.msg) is type(frame.msg)


def union_tags(union: object) -> dict[int, type]:
    (meta,) = (m for m in typing.get_args(union)[1:] if isinstance(m, jw.Tagged))
    return dict(meta.tags)


# ================================================================================================
# 1. Reference encodings (r[9p2000l.examples])
# ================================================================================================

EXAMPLES = [
    ("Tversion", Tframe(tag=NOTAG, msg=Tversion(msize=65536, version="9P2000.L")),
     "15000000 64 ffff 00000100 0800 39503230 30302e4c"),
    ("Rlerror", Rframe(tag=1, msg=Rlerror(ecode=2)), "0b000000 07 0100 02000000"),
    ("Tattach", Tframe(tag=1, msg=Tattach(fid=0, afid=0xFFFFFFFF, uname="root", aname="/srv", n_uname=0)),
     "1f000000 68 0100 00000000 ffffffff 0400 726f6f74 0400 2f737276 00000000"),
    ("Twalk", Tframe(tag=2, msg=Twalk(fid=0, newfid=1, wnames=["a", "b"])),
     "17000000 6e 0200 00000000 01000000 0200 0100 61 0100 62"),
    ("Rwalk", Rframe(tag=2, msg=Rwalk(wqids=[Qid(type=0x80, version=0, path=42)])),
     "16000000 6f 0200 0100 80 00000000 2a00000000000000"),
    ("Tlopen", Tframe(tag=3, msg=Tlopen(fid=1, flags=0)), "0f000000 0c 0300 01000000 00000000"),
    ("Rread", Rframe(tag=4, msg=Rread(data=b"hello")), "10000000 75 0400 05000000 68656c6c6f"),
    ("Rclunk", Rframe(tag=5, msg=Rclunk()), "07000000 79 0500"),
]


@pytest.mark.parametrize(("frame", "hexbytes"), [e[1:] for e in EXAMPLES], ids=[e[0] for e in EXAMPLES])
def test_reference_encodings(frame, hexbytes):
    # r[9p2000l.examples]
    check_frame(frame, H(hexbytes))


def test_reference_dirent():
    # r[9p2000l.examples] r[9p2000l.readdir.dirent]: qid(file, v0, path 7) offset=1 DT_REG "x"
    entry = Dirent(qid=Qid(type=0, version=0, path=7), offset=1, type=8, name="x")
    data = H("00 00000000 0700000000000000 0100000000000000 08 0100 78")
    assert entry.encode() == data
    assert entry.byte_size() == len(data) == 24 + 1
    assert Dirent.decode(data) == entry


# ================================================================================================
# 2. Layout of every message (r[9p2000l.types], r[9p2000l.encoding.*])
# ================================================================================================


@pytest.mark.parametrize("message", list(LAYOUT))
def test_layout(message):
    # r[9p2000l.types] r[9p2000l.encoding.little-endian] r[9p2000l.encoding.string]
    # r[9p2000l.encoding.qid] r[9p2000l.encoding.data] r[9p2000l.frame.header]
    # and per message, where the layout is the rule: r[9p2000l.getattr] r[9p2000l.statfs]
    # r[9p2000l.setattr] r[9p2000l.lock] r[9p2000l.getlock]
    frame, data = sample_frame(message)
    check_frame(frame, data)


def test_layout_text_is_the_spec():
    """Guards the copies above against typos: each copied line is in the spec."""
    if not SPEC.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{SPEC} is missing: CI lays shared/ beside the repository")
        pytest.skip(f"{SPEC} is not here (a clone without ../shared)")
    spec = SPEC.read_text()
    for line in (LAYOUTS + DIRENT_LAYOUT).strip().splitlines():
        if not line.startswith("Dirent"):
            assert line in spec, line
    for row in TYPES.strip().splitlines():
        assert row in spec, row


def test_every_message_has_a_layout():
    """jetwire declares exactly the messages the spec lays out (plus the Rerror compat form)."""
    declared = {cls.__name__ for union in (p9.Tmessage, p9.Rmessage) for cls in union_tags(union).values()}
    assert declared == set(LAYOUT) | {"Rerror"}


def test_getattr_body_is_153_bytes():
    # r[9p2000l.getattr]: the reply body is always 153 bytes (frame 160), 20 fields
    frame, data = sample_frame("Rgetattr")
    assert len(LAYOUT["Rgetattr"]) == 20
    assert len(data) - 7 == 153 == len(frame.encode()) - 7


def test_statfs_body_is_60_bytes():
    # r[9p2000l.statfs]: reply body 60 bytes (frame 67)
    frame, data = sample_frame("Rstatfs")
    assert len(frame.encode()) == len(data) == 67


def test_setattr_frame_is_67_bytes():
    # r[9p2000l.setattr]: Tsetattr frame size 67; valid bits from Linux chmod (0x41)
    frame = Tframe(tag=1, msg=p9.Tsetattr(fid=3, valid=0x41, mode=0o644, uid=0, gid=0, size=0, atime_sec=0,
                                          atime_nsec=0, mtime_sec=0, mtime_nsec=0))
    data = H("43000000 1a 0100 03000000 41000000 a4010000 00000000 00000000") + bytes(8 * 5)
    check_frame(frame, data)


def test_lock_type_is_one_byte():
    # r[9p2000l.lock] r[9p2000l.getlock]: type[1] (not 4 bytes), client_id a string at the end
    lock = Tframe(tag=2, msg=p9.Tlock(fid=1, type=1, flags=1, start=0, length=0, proc_id=7, client_id="h"))
    check_frame(lock, H("27000000 34 0200 01000000 01 01000000") + bytes(16) + H("07000000 0100 68"))
    got = Rframe(tag=2, msg=p9.Rgetlock(type=2, start=5, length=0, proc_id=9, client_id=""))
    check_frame(got, H("1e000000 37 0200 02 0500000000000000 0000000000000000 09000000 0000"))


def test_dirent_layout():
    # r[9p2000l.readdir.dirent]: qid[13] offset[8] type[1] name[s], 24 bytes plus the name
    attrs, body = sample_body(DIRENT_LAYOUT.split()[1:], 0x40)
    entry = Dirent(**attrs)
    assert entry.encode() == body
    assert len(body) == 24 + len(attrs["name"].encode())
    assert Dirent.decode(body) == entry


def test_type_numbers_are_the_union_tags():
    # r[9p2000l.types]: exactly the kept numbers (no Tlerror), R = T + 1, odd = reply;
    # r[9p2000l.error.rerror-compat]: 107 is accepted as a reply too
    rows = type_table()
    want_t = {t: "T" + name for t, _, name, kept in rows if kept and name != "lerror"}
    want_r = {r: "R" + name for _, r, name, kept in rows if kept} | {107: "Rerror"}
    assert {n: cls.__name__ for n, cls in union_tags(p9.Tmessage).items()} == want_t
    assert {n: cls.__name__ for n, cls in union_tags(p9.Rmessage).items()} == want_r
    assert all(r == t + 1 and t % 2 == 0 for t, r, _, _ in rows)


@pytest.mark.parametrize("number", [106, 112, 114, 124, 126])
def test_base_9p2000_requests_are_not_in_the_dialect(number):
    # r[9p2000l.types]: Terror/Topen/Tcreate/Tstat/Twstat are not .L messages
    with pytest.raises(jw.DecodeError, match=f"unknown message type {number}"):
        Tframe.decode(frame_bytes(number, 1, bytes(4)))
    if number != 106:  # 107 is the Rerror compat form (r[9p2000l.error.rerror-compat])
        with pytest.raises(jw.DecodeError, match=f"unknown message type {number + 1}"):
            Rframe.decode(frame_bytes(number + 1, 1, bytes(13) + bytes(4)))


def test_rerror_107_has_a_4_byte_errno_body():
    # r[9p2000l.error.rerror-compat]: type 107 with body ecode[4], as nfs-ganesha sends
    check_frame(Rframe(tag=1, msg=Rerror(ecode=2)), H("0b000000 6b 0100 02000000"))


@pytest.mark.parametrize("hexbytes", [
    "0d000000 6b 0100 0400 6f6f7073",  # 9P2000 ename[s]
    "0f000000 6b 0100 0200 6f6f 02000000",  # 9P2000.u ename[s] errno[4]
])
def test_rerror_other_forms_are_refused(hexbytes):
    # r[9p2000l.error.rerror-compat]: only ecode[4]; the longer bodies are not this dialect
    with pytest.raises(jw.DecodeError, match="left over"):
        Rframe.decode(H(hexbytes))


# ================================================================================================
# 3. Fixed sizes (r[9p2000l.sizes])
# ================================================================================================


@pytest.mark.parametrize(("message", "size"), SIZES.items())
def test_fixed_frame_sizes(message, size):
    # r[9p2000l.sizes]
    frame, data = sample_frame(message)
    assert len(data) == size
    assert len(frame.encode()) == frame.byte_size() == size


def test_clone_walk_sizes():
    # r[9p2000l.sizes] r[9p2000l.walk.clone]: nwname 0 → Twalk 17 bytes, Rwalk with no qids 9
    check_frame(Tframe(tag=6, msg=Twalk(fid=1, newfid=2, wnames=[])), H("11000000 6e 0600 01000000 02000000 0000"))
    check_frame(Rframe(tag=6, msg=Rwalk(wqids=[])), H("09000000 6f 0600 0000"))


# ================================================================================================
# 4. Strings are bytes (r[9p2000l.encoding.string])
# ================================================================================================


def test_non_utf8_name_round_trips():
    # r[9p2000l.encoding.string]: b"caf\xe9" is a Linux name; surrogateescape, as os.fsdecode
    data = H("0d000000 17 0100 0400") + b"caf\xe9"
    frame = Rframe.decode(data)
    assert frame.msg == Rreadlink(target="caf\udce9")
    assert frame.encode() == data
    walk = Tframe(tag=2, msg=Twalk(fid=0, newfid=1, wnames=["caf\udce9", "\udcff\udcfe"]))
    check_frame(walk, H("1b000000 6e 0200 00000000 01000000 0200 0400 636166e9 0200 fffe"))


def test_non_utf8_dirent_name():
    # r[9p2000l.encoding.string] r[9p2000l.readdir.dirent]
    data = H("80 01000000 0200000000000000 0300000000000000 04 0200 80ff")
    entry = Dirent.decode(data)
    assert entry.name == "\udc80\udcff"
    assert entry.encode() == data


def test_longest_string():
    # r[9p2000l.encoding.string]: 65535 bytes is the limit, 65536 cannot be encoded
    ok = Tframe(tag=1, msg=Twalk(fid=0, newfid=1, wnames=["a" * 65535]))
    assert ok.encode()[17:21] == H("ffff 6161")
    assert len(ok.encode()) == 17 + 2 + 65535
    with pytest.raises(jw.EncodeError, match="65536") as info:
        Tframe(tag=1, msg=Twalk(fid=0, newfid=1, wnames=["a" * 65536])).encode()
    assert info.value.path == "Tframe.msg<Twalk>.wnames[0]"
    with pytest.raises(jw.EncodeError):
        Tframe(tag=1, msg=Twalk(fid=0, newfid=1, wnames=["\udce9" * 65536])).encode()


def test_strict_str_still_refuses_invalid_utf8():
    # r[9p2000l.encoding.string] is the 9P rule only: a plain ``str`` stays strict UTF-8
    with pytest.raises(jw.DecodeError, match="UTF-8"):
        jw.Codec(str).decode(b"\x04\x00caf\xe9")
    assert jw.Codec(jw.fsstr).decode(b"\x04\x00caf\xe9") == "caf\udce9"


def test_string_length_past_the_body():
    # r[9p2000l.encoding.string]: all len bytes must be there (upstream does not check)
    with pytest.raises(jw.DecodeError, match="ends inside its body"):
        Rframe.decode(H("0c000000 17 0500 0a00 616263"))


# ================================================================================================
# 5. Framing (r[9p2000l.frame.header])
# ================================================================================================

GOOD = H("0b000000 07 0900 02000000")  # Rlerror tag 9 ENOENT
GOOD_FRAME = Rframe(tag=9, msg=Rlerror(ecode=2))
MAX = 64  # the reader's msize in these tests

# (id, bytes, words of the message, path, offset in the frame, tag, type)
BAD_FRAMES = [
    ("size-0", "00000000", "size 0 is below the 7-byte minimum", "Rframe.size", 0, None, None),
    # a size below 7 is not skipped by: only its 4 bytes go (test_frame_readers.py: what follows them)
    ("size-6", "06000000", "size 6 is below the 7-byte minimum", "Rframe.size", 0, None, None),
    ("over-msize", "47000000 75 0300 3c000000" + "aa" * 60, "size 71 is over the limit of 64", "Rframe.size", 0,
     3, 0x75),
    ("short-body", "0a000000 07 0400 020000", "ends inside its body", "Rframe.msg<Rlerror>.ecode", 7, 4, 7),
    ("string-past-frame", "0c000000 17 0500 0a00 616263", "ends inside its body", "Rframe.msg<Rreadlink>.target",
     9, 5, 0x17),
    ("data-past-frame", "10000000 75 0600 64000000 68656c6c6f", "ends inside its body", "Rframe.msg<Rread>.data",
     11, 6, 0x75),
    ("qids-past-frame", "16000000 6f 0700 0200 80 00000000 2a00000000000000", "ends inside its body",
     "Rframe.msg<Rwalk>.wqids[1]", 22, 7, 0x6F),
    ("left-over", "0c000000 07 0800 02000000 ff", "1 byte left over", "Rframe.msg<Rlerror>", 11, 8, 7),
    ("unknown-type", "0b000000 ff 0a00 02000000", "unknown message type 255", "Rframe.type", 4, 10, 0xFF),
    ("request-type", "0b000000 78 0b00 03000000", "unknown message type 120", "Rframe.type", 4, 11, 0x78),
    ("9p2000-ropen", "18000000 71 0c00 80 00000000 0100000000000000 00000000", "unknown message type 113",
     "Rframe.type", 4, 12, 0x71),
]
BAD_IDS = [b[0] for b in BAD_FRAMES]


def expect_frame_error(reader: FrameReader, words: str, path: str, offset: int) -> FrameError:
    with pytest.raises(FrameError) as info:
        reader.next_frame()
    exc = info.value
    assert words in exc.reason and words in str(exc)
    assert exc.path.startswith(path)
    assert exc.offset == offset
    return exc


@pytest.mark.parametrize(("hexbytes", "words", "path", "offset", "tag", "type_"), [b[1:] for b in BAD_FRAMES],
                         ids=BAD_IDS)
def test_bad_frame_then_good_frame(hexbytes, words, path, offset, tag, type_):
    # r[9p2000l.frame.header]: reject, consume exactly this frame, and the next one still decodes
    reader = FrameReader(Rframe, max_size=MAX)
    reader.feed(H(hexbytes))
    exc = expect_frame_error(reader, words, path, offset)
    if tag is not None:
        assert (exc.tag, exc.type, exc.size) == (tag, type_, int.from_bytes(H(hexbytes)[:4], "little"))
    assert reader.buffered == 0
    reader.feed(GOOD)
    assert reader.next_frame() == GOOD_FRAME
    assert reader.next_frame() is None


@pytest.mark.parametrize(("hexbytes", "words", "path", "offset"), [b[1:5] for b in BAD_FRAMES], ids=BAD_IDS)
def test_bad_frame_in_one_chunk_with_the_next(hexbytes, words, path, offset):
    # r[9p2000l.frame.header]: the decoder must not read into the next frame's bytes
    reader = FrameReader(Rframe, max_size=MAX)
    reader.feed(H(hexbytes) + GOOD + GOOD)
    expect_frame_error(reader, words, path, offset)
    assert list(reader) == [GOOD_FRAME, GOOD_FRAME]
    assert reader.buffered == 0


@pytest.mark.parametrize(("hexbytes", "words", "path", "offset"),
                         [b[1:5] for b in BAD_FRAMES if "size" not in b[0]], ids=[i for i in BAD_IDS if "size" not in i])
def test_bad_frame_decode(hexbytes, words, path, offset):
    # r[9p2000l.frame.header]: Rframe.decode reports the same, as DecodeError
    with pytest.raises(jw.DecodeError) as info:
        Rframe.decode(H(hexbytes))
    assert words in info.value.reason
    assert info.value.path.startswith(path)
    assert info.value.offset == offset


def test_undersized_frame_has_no_tag():
    # regression: the tag used to be read from the next frame's bytes
    # r[9p2000l.frame.header]: a frame of size < 7 has no tag; the next frame's bytes are not its header
    reader = FrameReader(Rframe, max_size=MAX)
    reader.feed(H("06000000 07 01") + GOOD)
    with pytest.raises(FrameError) as info:
        reader.next_frame()
    assert info.value.tag is None


def test_undersized_frame_does_not_fail_the_next_reply():
    # r[9p2000l.frame.header] r[9p2000l.frame.tag]: garbage must not steal another reply's tag; it
    # puts the stream out of step, so the session stops there
    session = negotiated()
    tag, _ = session.request(Tclunk(fid=0))
    (stray,) = session.receive(H("04000000") + rframe(tag, Rclunk()))
    assert isinstance(stray, Stray) and stray.error.tag is None
    assert session.broken is stray.error and not session.pending


def test_frame_exactly_msize_is_accepted():
    # r[9p2000l.frame.header] r[9p2000l.version.msize]: size == msize is legal, one more is not
    reader = FrameReader(Rframe, max_size=MAX)
    reader.feed(frame_bytes(0x75, 1, (MAX - 11).to_bytes(4, "little") + bytes(MAX - 11)))
    assert reader.next_frame() == Rframe(tag=1, msg=Rread(data=bytes(MAX - 11)))


def test_oversized_frame_is_not_buffered():
    # r[9p2000l.frame.header]: a header claiming 1 GiB is refused at once; its bytes are dropped as they come
    reader = FrameReader(Rframe, max_size=8192)
    reader.feed(H("00000040 75 0100") + bytes(4096))
    expect_frame_error(reader, "size 1073741824 is over the limit of 8192", "Rframe.size", 0)
    assert reader.buffered == 0
    for _ in range(64):
        reader.feed(bytes(4096))
        assert reader.next_frame() is None
        assert reader.buffered == 0


def test_oversized_frame_is_skipped_then_stream_resumes():
    # r[9p2000l.frame.header]: after the whole oversized frame went by, the next frame decodes
    reader = FrameReader(Rframe, max_size=8192)
    size = 100_000
    stream = size.to_bytes(4, "little") + H("75 0100") + bytes(size - 7) + GOOD
    reader.feed(stream[:5000])
    expect_frame_error(reader, "over the limit", "Rframe.size", 0)
    frames = []
    for i in range(5000, len(stream), 4096):
        reader.feed(stream[i:i + 4096])
        assert reader.buffered <= 4096
        frames += list(reader)
    assert frames == [GOOD_FRAME]


STREAM_FRAMES = [e[1] for e in EXAMPLES if isinstance(e[1], Rframe)] + [
    sample_frame(name, seed)[0] for seed, name in enumerate(["Rgetattr", "Rreaddir", "Rstatfs", "Rgetlock"], 3)
]
STREAM = b"".join(f.encode() for f in STREAM_FRAMES)


def read_chunks(chunks: list[bytes], max_size: int = 8192) -> tuple[list[Rframe], list[str]]:
    """Frames and error reasons, feeding ``chunks`` one after the other."""
    reader = FrameReader(Rframe, max_size=max_size)
    frames, errors = [], []
    for chunk in chunks:
        reader.feed(chunk)
        while True:
            try:
                frame = reader.next_frame()
            except FrameError as exc:
                errors.append(exc.reason)
                continue
            if frame is None:
                break
            frames.append(frame)
    assert reader.buffered == 0
    return frames, errors


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = [0, *sorted(cuts), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(points)]


def test_stream_byte_by_byte():
    # r[9p2000l.frame.header]
    frames, errors = read_chunks([STREAM[i:i + 1] for i in range(len(STREAM))])
    assert frames == STREAM_FRAMES
    assert errors == []


@given(st.lists(st.integers(0, len(STREAM)), max_size=40))
def test_stream_in_any_chunks(cuts):
    # r[9p2000l.frame.header]
    assert read_chunks(split(STREAM, cuts)) == (STREAM_FRAMES, [])


SMALL_FRAMES = [f for f in STREAM_FRAMES if f.byte_size() <= MAX] * 3
MIXED = b"".join(H(b[1]) + f.encode() for b, f in zip(BAD_FRAMES, SMALL_FRAMES))


@given(st.lists(st.integers(0, len(MIXED)), max_size=40))
def test_stream_with_bad_frames_in_any_chunks(cuts):
    # r[9p2000l.frame.header]: each bad frame is one error, and never costs a good frame
    frames, errors = read_chunks(split(MIXED, cuts), max_size=MAX)
    assert frames == SMALL_FRAMES[:len(BAD_FRAMES)]
    assert len(errors) == len(BAD_FRAMES)
    assert all(b[2] in reason for b, reason in zip(BAD_FRAMES, errors))


# ================================================================================================
# 6. The sans-I/O session
# ================================================================================================


def rframe(tag: int, msg: object) -> bytes:
    return Rframe(tag=tag, msg=msg).encode()


def qid(path: int, type_: int = 0) -> Qid:
    return Qid(type=type_, version=0, path=path)


def negotiated(msize: int = 8192) -> Session:
    session = Session(msize=msize)
    session.start()
    events = session.receive(rframe(NOTAG, Rversion(msize=msize, version="9P2000.L")))
    assert [type(e) for e in events] == [Reply]
    return session


def only(events: list, kind: type):
    (event,) = events
    assert isinstance(event, kind), event
    return event


def test_start_is_the_reference_tversion():
    # r[9p2000l.version.first]: Tversion with tag NOTAG (the r[9p2000l.examples] bytes)
    assert Session(msize=65536).start() == H("15000000 64 ffff 00000100 0800 39503230 30302e4c")


def test_no_request_before_negotiation():
    # r[9p2000l.version.first]: Tversion is the first message
    session = Session()
    with pytest.raises(ProtocolError):
        session.request(Tclunk(fid=0))
    session.start()
    with pytest.raises(ProtocolError):
        session.request(Tclunk(fid=0))
    with pytest.raises(ProtocolError):
        negotiated().request(Tversion(msize=8192, version="9P2000.L"))


@pytest.mark.parametrize("answer", ["unknown", "9P2000.u", "9P2000", ""])
def test_version_refused(answer):
    # r[9p2000l.version.string]: "unknown" (or another dialect) means stop
    session = Session(msize=8192)
    session.start()
    event = only(session.receive(rframe(NOTAG, Rversion(msize=8192, version=answer))), Failed)
    assert isinstance(event.error, ProtocolError)
    assert event.tag == NOTAG
    assert not session.negotiated
    with pytest.raises(ProtocolError):
        session.request(Tclunk(fid=0))


@pytest.mark.parametrize("answer", ["9P2000.L", "9P2000.L.x"])
def test_version_accepted(answer):
    # r[9p2000l.version.string]: 9P2000.L, or a dot extension of it
    session = Session(msize=8192)
    session.start()
    event = only(session.receive(rframe(NOTAG, Rversion(msize=8192, version=answer))), Reply)
    assert event.msg.version == answer
    assert session.negotiated
    assert session.request(Tclunk(fid=0))[0] != NOTAG


def test_version_extension_answered_with_its_base():
    # regression: Session used to accept only extensions of its proposal, not its base
    # r[9p2000l.version.string]: "a server may answer 9P2000.L to 9P2000.L.Foo"
    session = Session(msize=8192, version="9P2000.L.Foo")
    session.start()
    only(session.receive(rframe(NOTAG, Rversion(msize=8192, version="9P2000.L"))), Reply)
    assert session.negotiated


def test_version_rlerror():
    # r[9p2000l.version.first] r[9p2000l.error.rlerror]: an Rlerror to Tversion is a failure
    session = Session(msize=8192)
    session.start()
    event = only(session.receive(rframe(NOTAG, Rlerror(ecode=22))), Failed)
    assert event.error.errno == errno.EINVAL
    assert not session.negotiated


def test_msize_larger_answer_refused():
    # r[9p2000l.version.msize]: the answer may not exceed the proposal
    session = Session(msize=8192)
    session.start()
    event = only(session.receive(rframe(NOTAG, Rversion(msize=8193, version="9P2000.L"))), Failed)
    assert isinstance(event.error, ProtocolError)
    assert not session.negotiated


def test_msize_smaller_answer_adopted_both_ways():
    # r[9p2000l.version.msize]: both sides then use the answer, for frames sent and received
    session = Session(msize=65536)
    session.start()
    only(session.receive(rframe(NOTAG, Rversion(msize=4096, version="9P2000.L"))), Reply)
    assert session.msize == 4096
    fits = Twrite(fid=1, offset=0, data=bytes(4096 - 23))
    tag, data = session.request(fits)
    assert len(data) == 4096
    with pytest.raises(ValueError, match="msize"):
        session.request(Twrite(fid=1, offset=0, data=bytes(4096 - 22)))
    big = frame_bytes(0x75, tag, (4086).to_bytes(4, "little") + bytes(4086))  # an Rread one byte too big
    assert len(big) == 4097
    event = only(session.receive(big), Stray)  # a size out of bounds may lie: the stream is out of step
    assert isinstance(event.error, FrameError) and "over the limit of 4096" in event.error.reason
    assert event.error.tag == tag
    assert session.receive(GOOD) == [] and not session.pending


def test_tags_distinct_and_never_notag():
    # r[9p2000l.frame.tag]: outstanding tags are distinct; only Tversion uses NOTAG
    session = negotiated()
    tags = [session.request(Tclunk(fid=i))[0] for i in range(300)]
    assert len(set(tags)) == 300
    assert NOTAG not in tags


def test_tags_freed_and_reused_but_never_while_outstanding():
    # r[9p2000l.frame.tag]: a tag is free again after its reply; an outstanding one is never reused
    session = negotiated()
    held, _ = session.request(Tstatfs(fid=0))
    seen = set()
    for _ in range(NOTAG + 10):
        tag, _ = session.request(Tstatfs(fid=0))
        assert tag not in (held, NOTAG)
        seen.add(tag)
        only(session.receive(frame_bytes(7, tag, H("05000000"))), Reply)
    assert len(seen) == NOTAG - 1  # every tag but NOTAG and the held one, and then again
    assert only(session.receive(frame_bytes(7, held, H("05000000"))), Reply).tag == held


def test_replies_out_of_order():
    # r[9p2000l.frame.tag]: replies come in any order; the tag pairs them up
    session = negotiated()
    requests = [Tgetattr(fid=0, request_mask=0x7FF), Treadlink(fid=0), Tstatfs(fid=0)]
    tags = [session.request(r)[0] for r in requests]
    replies = [
        sample_frame("Rgetattr")[0].msg, Rreadlink(target="t"), sample_frame("Rstatfs")[0].msg,
    ]
    events = session.receive(b"".join(rframe(t, m) for t, m in reversed(list(zip(tags, replies)))))
    assert events == [Reply(t, q, m) for t, q, m in reversed(list(zip(tags, requests, replies)))]


def test_reply_with_unknown_tag_is_stray():
    # r[9p2000l.frame.tag]: a repeated reply is stray (the tag was freed)
    session = negotiated()
    tag, _ = session.request(Tclunk(fid=0))
    only(session.receive(rframe(tag, Rclunk())), Reply)
    only(session.receive(rframe(tag, Rclunk())), Stray)


def test_a_stray_reply_breaks_the_session():
    # r[9p2000l.frame.tag]: nobody asked: the stream is out of step, so nothing after it is read
    session = negotiated()
    tag, _ = session.request(Tclunk(fid=0))
    stray = only(session.receive(rframe(tag + 1, Rclunk()) + rframe(tag, Rclunk())), Stray)
    assert stray.frame == Rframe(tag=tag + 1, msg=Rclunk())
    assert isinstance(stray.error, ProtocolError) and session.broken is stray.error
    assert not session.pending
    assert session.receive(rframe(tag, Rclunk())) == []
    with pytest.raises(ProtocolError, match="out of step"):
        session.request(Tclunk(fid=0))


def test_reply_of_the_wrong_type():
    # r[9p2000l.frame.reply-type]: Rread is no answer to Tclunk; the tag is still freed
    session = negotiated()
    tag, _ = session.request(Tclunk(fid=0))
    event = only(session.receive(rframe(tag, Rread(data=b""))), Failed)
    assert isinstance(event.error, ProtocolError)
    assert event.request == Tclunk(fid=0)
    only(session.receive(rframe(tag, Rclunk())), Stray)


@pytest.mark.parametrize("error", [Rlerror(ecode=2), Rerror(ecode=2)], ids=["Rlerror", "Rerror"])
def test_error_reply_with_the_same_tag(error):
    # r[9p2000l.frame.reply-type] r[9p2000l.error.rerror-compat]: an error is a Reply carrying it
    session = negotiated()
    tag, _ = session.request(Tlopen(fid=0, flags=0))
    assert only(session.receive(rframe(tag, error)), Reply) == Reply(tag, Tlopen(fid=0, flags=0), error)


@pytest.mark.parametrize("request_type", [Tclunk, Tremove])
@pytest.mark.parametrize("reply", ["ok", "error"])
def test_clunk_and_remove_free_the_fid(request_type, reply):
    # r[9p2000l.clunk] r[9p2000l.remove]: the fid is free after the reply, even an error
    session = negotiated()
    fids = [session.alloc_fid() for _ in range(3)]
    tag, _ = session.request(request_type(fid=fids[1]))
    assert fids[1] in session.fids_in_use
    answer = Rlerror(ecode=13) if reply == "error" else (Rclunk() if request_type is Tclunk else Rremove())
    only(session.receive(rframe(tag, answer)), Reply)
    assert session.fids_in_use == {fids[0], fids[2]}
    assert session.alloc_fid() == fids[1]


def walk(session: Session, names: list[str], fid: int = 0, newfid: int | None = None) -> tuple[int, int]:
    if newfid is None:
        newfid = session.alloc_fid()
    tag, _ = session.request(Twalk(fid=fid, newfid=newfid, wnames=names))
    return tag, newfid


def test_full_walk_keeps_the_fid():
    # r[9p2000l.walk.partial]: nwname qids back → newfid exists
    session = negotiated()
    root = session.alloc_fid()
    tag, newfid = walk(session, ["a", "b"], root)
    only(session.receive(rframe(tag, Rwalk(wqids=[qid(1, 0x80), qid(2)]))), Reply)
    assert session.fids_in_use == {root, newfid}


def test_partial_walk_orphans_newfid():
    # r[9p2000l.walk.partial]: a short Rwalk did not create newfid; the client is told to clunk it
    session = negotiated()
    root = session.alloc_fid()
    tag, newfid = walk(session, ["a", "b", "c"], root)
    events = session.receive(rframe(tag, Rwalk(wqids=[qid(1, 0x80)])))
    assert events[0] == Orphan(newfid)
    assert isinstance(events[1], Reply)
    assert len(events) == 2


def test_partial_walk_of_fid_onto_itself():
    # r[9p2000l.walk.partial]: with newfid == fid, fid is unchanged and no orphan is made
    session = negotiated()
    root = session.alloc_fid()
    tag, _ = walk(session, ["a", "b"], root, root)
    only(session.receive(rframe(tag, Rwalk(wqids=[qid(1)]))), Reply)
    assert session.fids_in_use == {root}


def test_failed_walk_frees_newfid():
    # r[9p2000l.walk.partial]: the first name failed → Rlerror, newfid not created
    session = negotiated()
    root = session.alloc_fid()
    tag, _ = walk(session, ["nope"], root)
    only(session.receive(rframe(tag, Rlerror(ecode=2))), Reply)
    assert session.fids_in_use == {root}


def test_clone_walk():
    # r[9p2000l.walk.clone]: nwname 0 copies fid to newfid; Rwalk carries no qids
    session = negotiated()
    root = session.alloc_fid()
    newfid = session.alloc_fid()
    tag, data = session.request(Twalk(fid=root, newfid=newfid, wnames=[]))
    assert data == H("11000000 6e") + tag.to_bytes(2, "little") + H("00000000 01000000 0000")
    assert only(session.receive(H("09000000 6f") + tag.to_bytes(2, "little") + H("0000")), Reply).msg == Rwalk([])
    assert session.fids_in_use == {root, newfid}


def test_flush_then_rflush():
    # r[9p2000l.flush]: Rflush frees both tags; the flushed request is Flushed and its newfid not made
    session = negotiated()
    root = session.alloc_fid()
    old, newfid = walk(session, ["a"], root)
    flush = session.flush(old)
    assert flush is not None
    tag, data = flush
    assert tag not in (old, NOTAG)
    assert data == H("09000000 6c") + tag.to_bytes(2, "little") + old.to_bytes(2, "little")
    assert session.flush(old) is None  # one flush at a time
    events = session.receive(rframe(tag, Rflush()))
    assert events == [Flushed(old, Twalk(fid=root, newfid=newfid, wnames=["a"])),
                      Reply(tag, p9.Tflush(oldtag=old), Rflush())]
    assert session.fids_in_use == {root}
    only(session.receive(rframe(old, Rwalk(wqids=[qid(1)]))), Stray)  # too late: old is free


def test_reply_before_rflush_is_delivered_and_orphans_the_walk():
    # r[9p2000l.flush]: the old reply comes first; the caller gave up, so the made fid is an orphan
    session = negotiated()
    root = session.alloc_fid()
    old, newfid = walk(session, ["a"], root)
    tag, _ = session.flush(old)
    events = session.receive(rframe(old, Rwalk(wqids=[qid(1)])))
    assert events == [Orphan(newfid), Reply(old, Twalk(fid=root, newfid=newfid, wnames=["a"]), Rwalk([qid(1)]))]
    assert only(session.receive(rframe(tag, Rflush())), Reply).msg == Rflush()
    only(session.receive(rframe(old, Rwalk(wqids=[]))), Stray)  # both tags are free


def test_flush_of_a_failed_walk_before_rflush():
    # r[9p2000l.flush]: an Rlerror before Rflush → newfid never existed, nothing to clunk
    session = negotiated()
    root = session.alloc_fid()
    old, _ = walk(session, ["a"], root)
    tag, _ = session.flush(old)
    only(session.receive(rframe(old, Rlerror(ecode=2))), Reply)
    only(session.receive(rframe(tag, Rflush())), Reply)
    assert session.fids_in_use == {root}


def test_flushed_clunk_still_frees_the_fid():
    # r[9p2000l.flush] r[9p2000l.clunk]: a clunk abandoned by Rflush has freed its fid all the same
    session = negotiated()
    fid = session.alloc_fid()
    old, _ = session.request(Tclunk(fid=fid))
    tag, _ = session.flush(old)
    events = session.receive(rframe(tag, Rflush()))
    assert [type(e) for e in events] == [Flushed, Reply]
    assert session.fids_in_use == frozenset()


def test_flush_of_nothing():
    # r[9p2000l.flush]: no flush for a tag that is not outstanding (or for Tversion's NOTAG)
    session = negotiated()
    assert session.flush(5) is None
    fresh = Session()
    fresh.start()
    assert fresh.flush(NOTAG) is None


@pytest.mark.parametrize(("msize", "iounit", "want"), [
    (8192, 0, 8192 - 24), (8192, 4096, 4096), (8192, 8168, 8168), (8192, 9000, 8192 - 24), (65560, 0, 65536),
])
def test_io_size(msize, iounit, want):
    # r[9p2000l.version.iounit]: msize - 24, or the fid's iounit if non-zero and smaller
    session = negotiated(msize)
    assert session.io_size(iounit) == want
    _, data = session.request(Twrite(fid=0, offset=0, data=bytes(session.io_size())))
    assert len(data) <= msize


def test_nofid_and_nonuname():
    # r[9p2000l.frame.nofid]: NOFID = NONUNAME = 0xFFFFFFFF; NOTAG 0xFFFF (r[9p2000l.frame.tag])
    assert (c.NOFID, c.NONUNAME, c.NOTAG) == (0xFFFFFFFF, 0xFFFFFFFF, 0xFFFF)
    attach = Tframe(tag=1, msg=Tattach(fid=0, afid=c.NOFID, uname="", aname="", n_uname=c.NONUNAME))
    check_frame(attach, H("17000000 68 0100 00000000 ffffffff 0000 0000 ffffffff"))
    session = negotiated()
    assert session.alloc_fid() == 0
    tag, _ = session.request(attach.msg)
    only(session.receive(rframe(tag, Rattach(qid=qid(2, 0x80)))), Reply)
    assert session.fids_in_use == {0}


# ================================================================================================
# 7. Errors (r[9p2000l.error.rlerror])
# ================================================================================================

# The spec's errno table, verbatim values.
ERRNO_TABLE = {
    "EPERM": 1, "ENOENT": 2, "EIO": 5, "EBADF": 9, "EAGAIN": 11, "EACCES": 13, "EEXIST": 17, "EXDEV": 18,
    "ENOTDIR": 20, "EISDIR": 21, "EINVAL": 22, "ENOSPC": 28, "EROFS": 30, "ERANGE": 34, "ENAMETOOLONG": 36,
    "ENOLCK": 37, "ENOTEMPTY": 39, "ELOOP": 40, "ENODATA": 61, "EPROTO": 71, "EMSGSIZE": 90, "EOPNOTSUPP": 95,
}


@pytest.mark.parametrize(("number", "kind", "host"), [
    (2, FileNotFoundError, errno.ENOENT), (17, FileExistsError, errno.EEXIST), (13, PermissionError, errno.EACCES),
    (1, PermissionError, errno.EPERM), (20, NotADirectoryError, errno.ENOTDIR), (21, IsADirectoryError, errno.EISDIR),
    (11, BlockingIOError, errno.EAGAIN), (95, OSError, errno.EOPNOTSUPP), (22, OSError, errno.EINVAL),
])
def test_error_from_errno(number, kind, host):
    # r[9p2000l.error.rlerror]
    exc = p9.error_from_errno(number)
    assert isinstance(exc, kind)
    assert exc.errno == host


def test_error_from_unknown_errno():
    # r[9p2000l.error.rlerror]: a number with no name is a plain OSError carrying it
    exc = p9.error_from_errno(4000)
    assert type(exc) is OSError
    assert exc.errno == 4000


def test_errno_constants():
    # r[9p2000l.error.rlerror]: Linux x86-64 numbers, whatever the host's
    assert {name: getattr(c, name) for name in ERRNO_TABLE} == ERRNO_TABLE


def test_rlerror_frame_is_11_bytes():
    # r[9p2000l.error.rlerror]: the frame is always 11 bytes
    for code in (1, 95, 0xFFFFFFFF):
        assert len(Rframe(tag=3, msg=Rlerror(ecode=code)).encode()) == 11
    assert Rframe.decode(H("0b000000 07 0300 5f000000")).msg == Rlerror(ecode=95)


# ================================================================================================
# 8. Constants, copied from the spec's tables
# ================================================================================================

QID_TYPES = {"DIR": 0x80, "APPEND": 0x40, "EXCL": 0x20, "MOUNT": 0x10, "AUTH": 0x08, "TMP": 0x04, "SYMLINK": 0x02,
             "LINK": 0x01, "FILE": 0x00}
GETATTR_MASK = {"MODE": 0x00000001, "NLINK": 0x00000002, "UID": 0x00000004, "GID": 0x00000008, "RDEV": 0x00000010,
                "ATIME": 0x00000020, "MTIME": 0x00000040, "CTIME": 0x00000080, "INO": 0x00000100, "SIZE": 0x00000200,
                "BLOCKS": 0x00000400, "BTIME": 0x00000800, "GEN": 0x00001000, "DATA_VERSION": 0x00002000,
                "BASIC": 0x000007FF, "ALL": 0x00003FFF}
SETATTR_VALID = {"MODE": 0x001, "UID": 0x002, "GID": 0x004, "SIZE": 0x008, "ATIME": 0x010, "MTIME": 0x020,
                 "CTIME": 0x040, "ATIME_SET": 0x080, "MTIME_SET": 0x100}
# name: (octal column, hex column)
OPEN_FLAGS = {
    "RDONLY": (0, 0x0), "WRONLY": (0o1, 0x1), "RDWR": (0o2, 0x2), "NOACCESS": (0o3, 0x3), "CREATE": (0o100, 0x40),
    "EXCL": (0o200, 0x80), "NOCTTY": (0o400, 0x100), "TRUNC": (0o1000, 0x200), "APPEND": (0o2000, 0x400),
    "NONBLOCK": (0o4000, 0x800), "DSYNC": (0o10000, 0x1000), "FASYNC": (0o20000, 0x2000),
    "DIRECT": (0o40000, 0x4000), "LARGEFILE": (0o100000, 0x8000), "DIRECTORY": (0o200000, 0x10000),
    "NOFOLLOW": (0o400000, 0x20000), "NOATIME": (0o1000000, 0x40000), "CLOEXEC": (0o2000000, 0x80000),
    "SYNC": (0o4000000, 0x100000),
}
LOCK = {"P9_LOCK_TYPE_RDLCK": 0, "P9_LOCK_TYPE_WRLCK": 1, "P9_LOCK_TYPE_UNLCK": 2, "P9_LOCK_FLAGS_BLOCK": 1,
        "P9_LOCK_FLAGS_RECLAIM": 2, "P9_LOCK_SUCCESS": 0, "P9_LOCK_BLOCKED": 1, "P9_LOCK_ERROR": 2,
        "P9_LOCK_GRACE": 3}
DIRENT_TYPES = {"UNKNOWN": 0, "FIFO": 1, "CHR": 2, "DIR": 4, "BLK": 6, "REG": 8, "LNK": 10, "SOCK": 12}
MODE = {"S_IFMT": 0o170000, "S_IFSOCK": 0o140000, "S_IFLNK": 0o120000, "S_IFREG": 0o100000, "S_IFBLK": 0o060000,
        "S_IFDIR": 0o040000, "S_IFCHR": 0o020000, "S_IFIFO": 0o010000}


def constants(prefix: str, names) -> dict[str, int]:
    return {name: getattr(c, prefix + name) for name in names}


def test_qid_types():
    # r[9p2000l.const.qid-type]
    assert constants("P9_QT", QID_TYPES) == QID_TYPES


def test_getattr_mask():
    # r[9p2000l.const.getattr-mask]: BASIC is MODE..BLOCKS, ALL every field
    assert constants("P9_GETATTR_", GETATTR_MASK) == GETATTR_MASK
    bits = [v for k, v in GETATTR_MASK.items() if k not in ("BASIC", "ALL")]
    assert sum(bits[:11]) == c.P9_GETATTR_BASIC and sum(bits) == c.P9_GETATTR_ALL


def test_setattr_valid():
    # r[9p2000l.const.setattr-valid]: chmod 0x41 = MODE|CTIME, truncate 0x68 = SIZE|MTIME|CTIME
    assert constants("P9_SETATTR_", SETATTR_VALID) == SETATTR_VALID
    assert c.P9_SETATTR_MODE | c.P9_SETATTR_CTIME == 0x41
    assert c.P9_SETATTR_SIZE | c.P9_SETATTR_MTIME | c.P9_SETATTR_CTIME == 0x68


def test_open_flags():
    # r[9p2000l.const.open-flags]: both columns of the table, and the Linux examples
    assert all(octal == hexa for octal, hexa in OPEN_FLAGS.values())
    assert constants("P9_", OPEN_FLAGS) == {name: hexa for name, (_, hexa) in OPEN_FLAGS.items()}
    assert c.P9_ACCMODE == 3
    assert c.P9_CLOEXEC | c.P9_DIRECTORY | c.P9_LARGEFILE | c.P9_NONBLOCK == 0o2304000
    assert c.P9_LARGEFILE | c.P9_TRUNC | c.P9_CREATE | c.P9_WRONLY == 0x8241


def test_at_flags():
    # r[9p2000l.const.at-flags]
    assert c.AT_REMOVEDIR == 0x200


def test_lock_constants():
    # r[9p2000l.const.lock]
    assert constants("", LOCK) == LOCK


def test_xattr_flags():
    # r[9p2000l.const.xattr-flags]
    assert (c.XATTR_CREATE, c.XATTR_REPLACE) == (1, 2)


def test_dirent_types():
    # r[9p2000l.const.dirent-type]
    assert constants("DT_", DIRENT_TYPES) == DIRENT_TYPES


def test_mode_bits():
    # r[9p2000l.const.mode]
    assert constants("", MODE) == MODE


# ================================================================================================
# 9. Properties
# ================================================================================================


@given(strategy(Tframe))
def test_tframe_round_trip(frame):
    # r[9p2000l.frame.header]
    data = frame.encode()
    assert len(data) == frame.byte_size() == int.from_bytes(data[:4], "little")
    assert Tframe.decode(data) == frame


@given(strategy(Rframe))
def test_rframe_round_trip(frame):
    # r[9p2000l.frame.header]
    data = frame.encode()
    assert len(data) == frame.byte_size() == int.from_bytes(data[:4], "little")
    assert Rframe.decode(data) == frame


def decode_or_decode_error(cls: type[Tframe] | type[Rframe], data: bytes) -> None:
    """Only DecodeError may come out; what decodes encodes back to the very same bytes."""
    try:
        frame = cls.decode(data)
    except jw.DecodeError:
        return
    assert frame.encode() == data


@given(st.binary(max_size=80))
def test_arbitrary_bytes(data):
    # r[9p2000l.frame.header]
    decode_or_decode_error(Rframe, data)
    decode_or_decode_error(Tframe, data)


@given(st.sampled_from(sorted(union_tags(p9.Rmessage))), st.integers(0, 0xFFFF), st.binary(max_size=80))
def test_random_body_with_valid_header(type_, tag, body):
    # r[9p2000l.frame.header]: a right size and a known type, then any body
    decode_or_decode_error(Rframe, frame_bytes(type_, tag, body))


@given(strategy(Rframe), st.data())
def test_mutated_frames(frame, data):
    # r[9p2000l.frame.header]: flipped, cut and inserted bytes are a DecodeError or another frame
    raw = bytearray(frame.encode())
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw)))
        action = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip" and at < len(raw):
            raw[at] ^= data.draw(st.integers(1, 255))
        elif action == "cut":
            del raw[at:at + data.draw(st.integers(1, 8))]
        else:
            raw[at:at] = data.draw(st.binary(min_size=1, max_size=8))
    decode_or_decode_error(Rframe, bytes(raw))


def test_no_other_exception_on_truncation():
    # r[9p2000l.frame.header]: every prefix of every sample frame (a short read) fails cleanly
    for message in LAYOUT:
        frame, data = sample_frame(message)
        for end in range(len(data)):
            decode_or_decode_error(type(frame), data[:end])
            # and with the size patched to the cut length (the body itself is short)
            cut = bytearray(data[:end])
            if end >= 4:
                cut[:4] = end.to_bytes(4, "little")
            decode_or_decode_error(type(frame), bytes(cut))


def test_random_mutations_deterministic():
    # r[9p2000l.frame.header]: a fixed-seed sweep over every layout, beside the hypothesis ones
    rng = random.Random(9)
    for message in LAYOUT:
        frame, data = sample_frame(message)
        for _ in range(50):
            raw = bytearray(data)
            raw[rng.randrange(4, len(raw))] = rng.randrange(256)
            decode_or_decode_error(type(frame), bytes(raw))


@pytest.mark.parametrize(
    ("error", "ecode"),
    [
        (FileNotFoundError(errno.ENOENT, "gone"), 2),
        (PermissionError(errno.EACCES, "no"), 13),
        (OSError(errno.EOPNOTSUPP, "no"), 95),
        (OSError(errno.ENODATA, "no xattr"), 61),
        (OSError(errno.EMSGSIZE, "big"), 90),
        (ValueError("not an OSError"), 5),
        (OSError("no errno at all"), 5),
    ],
)
def test_error_to_rmessage(error: BaseException, ecode: int) -> None:
    """r[9p2000l.error.rlerror]: upstream's error_to_rmessage; the wire carries Linux numbers,
    and the round trip through error_from_errno gives the same kind of OSError back."""
    reply = p9.error_to_rmessage(error)
    assert reply == p9.Rlerror(ecode=ecode)
    assert Rframe(tag=1, msg=reply).encode() == bytes([11, 0, 0, 0, 7, 1, 0, ecode, 0, 0, 0])
    if isinstance(error, OSError) and error.errno is not None:
        assert type(p9.error_from_errno(ecode)) is type(error)


def test_version_names() -> None:
    """r[9p2000l.version.string]: upstream's Version; the dialect string is exactly 9P2000.L."""
    assert p9.Version.V9P2000_L.value == "9P2000.L" == p9.constants.VERSION_9P2000L


def test_running_out_of_tags_or_fids_is_a_jetwire_error() -> None:
    """65,535 requests outstanding, or every fid taken: a LocalProtocolError (still a
    RuntimeError), raised before anything is sent."""
    from jetwire.p9 import ExhaustedError, LocalProtocolError
    session = negotiated()
    for _ in range(0xFFFF):
        session.request(Tclunk(fid=1))
    with pytest.raises(ExhaustedError, match="no tag is free") as caught:
        session.request(Tclunk(fid=1))
    assert isinstance(caught.value, LocalProtocolError) and isinstance(caught.value, RuntimeError)
    session = negotiated()
    session._next_fid = 0xFFFFFFFE  # only NOFID - 1 is left below NOFID
    assert session.alloc_fid() == 0xFFFFFFFE
    with pytest.raises(ExhaustedError, match="every fid"):
        session.alloc_fid()

"""Every 9P2000.L message, declared with jetwire (layouts: r[9p2000l.types] and the sections
of ../shared/spec/9p2000L.md), named as upstream's ``jetstream_9p::messages``.

Every string is ``fsstr``: 9P names are bytes on the wire (r[9p2000l.encoding.string]), read
with ``surrogateescape`` as ``os.fsdecode`` does, so any Linux name survives a round trip.
``Tmessage``/``Rmessage`` are unions tagged by the message numbers; ``Tframe``/``Rframe`` are
whole frames, ``size[4] type[1] tag[2] body`` (r[9p2000l.frame.header]).
"""

from __future__ import annotations

from typing import Annotated, Union

from ..markers import Tagged, fsstr, u8, u16, u32, u64
from ..runtime.decorators import WireFormat, wireformat
from ..runtime.frames import Frame


@wireformat(slots=True)
class Qid(WireFormat):
    """The server's identity of a file: ``type[1] version[4] path[8]`` (r[9p2000l.encoding.qid])."""

    type: u8
    version: u32
    path: u64


@wireformat(slots=True)
class Dirent(WireFormat):
    """One directory entry in Rreaddir's data: ``qid[13] offset[8] type[1] name[s]``
    (r[9p2000l.readdir.dirent])."""

    qid: Qid
    offset: u64
    type: u8
    name: fsstr


@wireformat(slots=True)
class Rlerror(WireFormat):
    """7: ecode[u32]"""

    ecode: u32


@wireformat(slots=True)
class Tstatfs(WireFormat):
    """8: fid[u32]"""

    fid: u32


@wireformat(slots=True)
class Rstatfs(WireFormat):
    """9: type[u32] bsize[u32] blocks[u64] bfree[u64] bavail[u64] files[u64] ffree[u64] fsid[u64] namelen[u32]"""

    type: u32
    bsize: u32
    blocks: u64
    bfree: u64
    bavail: u64
    files: u64
    ffree: u64
    fsid: u64
    namelen: u32


@wireformat(slots=True)
class Tlopen(WireFormat):
    """12: fid[u32] flags[u32]"""

    fid: u32
    flags: u32


@wireformat(slots=True)
class Rlopen(WireFormat):
    """13: qid[Qid] iounit[u32]"""

    qid: Qid
    iounit: u32


@wireformat(slots=True)
class Tlcreate(WireFormat):
    """14: fid[u32] name[fsstr] flags[u32] mode[u32] gid[u32]"""

    fid: u32
    name: fsstr
    flags: u32
    mode: u32
    gid: u32


@wireformat(slots=True)
class Rlcreate(WireFormat):
    """15: qid[Qid] iounit[u32]"""

    qid: Qid
    iounit: u32


@wireformat(slots=True)
class Tsymlink(WireFormat):
    """16: fid[u32] name[fsstr] symtgt[fsstr] gid[u32]"""

    fid: u32
    name: fsstr
    symtgt: fsstr
    gid: u32


@wireformat(slots=True)
class Rsymlink(WireFormat):
    """17: qid[Qid]"""

    qid: Qid


@wireformat(slots=True)
class Tmknod(WireFormat):
    """18: dfid[u32] name[fsstr] mode[u32] major[u32] minor[u32] gid[u32]"""

    dfid: u32
    name: fsstr
    mode: u32
    major: u32
    minor: u32
    gid: u32


@wireformat(slots=True)
class Rmknod(WireFormat):
    """19: qid[Qid]"""

    qid: Qid


@wireformat(slots=True)
class Trename(WireFormat):
    """20: fid[u32] dfid[u32] name[fsstr]"""

    fid: u32
    dfid: u32
    name: fsstr


@wireformat(slots=True)
class Rrename(WireFormat):
    """21: (empty body)"""


@wireformat(slots=True)
class Treadlink(WireFormat):
    """22: fid[u32]"""

    fid: u32


@wireformat(slots=True)
class Rreadlink(WireFormat):
    """23: target[fsstr]"""

    target: fsstr


@wireformat(slots=True)
class Tgetattr(WireFormat):
    """24: fid[u32] request_mask[u64]"""

    fid: u32
    request_mask: u64


@wireformat(slots=True)
class Rgetattr(WireFormat):
    """25: valid[u64] qid[Qid] mode[u32] uid[u32] gid[u32] nlink[u64] ..."""

    valid: u64
    qid: Qid
    mode: u32
    uid: u32
    gid: u32
    nlink: u64
    rdev: u64
    size: u64
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


@wireformat(slots=True)
class Tsetattr(WireFormat):
    """26: fid[u32] valid[u32] mode[u32] uid[u32] gid[u32] size[u64] ..."""

    fid: u32
    valid: u32
    mode: u32
    uid: u32
    gid: u32
    size: u64
    atime_sec: u64
    atime_nsec: u64
    mtime_sec: u64
    mtime_nsec: u64


@wireformat(slots=True)
class Rsetattr(WireFormat):
    """27: (empty body)"""


@wireformat(slots=True)
class Txattrwalk(WireFormat):
    """30: fid[u32] newfid[u32] name[fsstr]"""

    fid: u32
    newfid: u32
    name: fsstr


@wireformat(slots=True)
class Rxattrwalk(WireFormat):
    """31: size[u64]"""

    size: u64


@wireformat(slots=True)
class Txattrcreate(WireFormat):
    """32: fid[u32] name[fsstr] attr_size[u64] flags[u32]"""

    fid: u32
    name: fsstr
    attr_size: u64
    flags: u32


@wireformat(slots=True)
class Rxattrcreate(WireFormat):
    """33: (empty body)"""


@wireformat(slots=True)
class Treaddir(WireFormat):
    """40: fid[u32] offset[u64] count[u32]"""

    fid: u32
    offset: u64
    count: u32


@wireformat(slots=True)
class Rreaddir(WireFormat):
    """41: data[bytes]"""

    data: bytes


@wireformat(slots=True)
class Tfsync(WireFormat):
    """50: fid[u32] datasync[u32]"""

    fid: u32
    datasync: u32


@wireformat(slots=True)
class Rfsync(WireFormat):
    """51: (empty body)"""


@wireformat(slots=True)
class Tlock(WireFormat):
    """52: fid[u32] type[u8] flags[u32] start[u64] length[u64] proc_id[u32] client_id[fsstr]"""

    fid: u32
    type: u8
    flags: u32
    start: u64
    length: u64
    proc_id: u32
    client_id: fsstr


@wireformat(slots=True)
class Rlock(WireFormat):
    """53: status[u8]"""

    status: u8


@wireformat(slots=True)
class Tgetlock(WireFormat):
    """54: fid[u32] type[u8] start[u64] length[u64] proc_id[u32] client_id[fsstr]"""

    fid: u32
    type: u8
    start: u64
    length: u64
    proc_id: u32
    client_id: fsstr


@wireformat(slots=True)
class Rgetlock(WireFormat):
    """55: type[u8] start[u64] length[u64] proc_id[u32] client_id[fsstr]"""

    type: u8
    start: u64
    length: u64
    proc_id: u32
    client_id: fsstr


@wireformat(slots=True)
class Tlink(WireFormat):
    """70: dfid[u32] fid[u32] name[fsstr]"""

    dfid: u32
    fid: u32
    name: fsstr


@wireformat(slots=True)
class Rlink(WireFormat):
    """71: (empty body)"""


@wireformat(slots=True)
class Tmkdir(WireFormat):
    """72: dfid[u32] name[fsstr] mode[u32] gid[u32]"""

    dfid: u32
    name: fsstr
    mode: u32
    gid: u32


@wireformat(slots=True)
class Rmkdir(WireFormat):
    """73: qid[Qid]"""

    qid: Qid


@wireformat(slots=True)
class Trenameat(WireFormat):
    """74: olddirfid[u32] oldname[fsstr] newdirfid[u32] newname[fsstr]"""

    olddirfid: u32
    oldname: fsstr
    newdirfid: u32
    newname: fsstr


@wireformat(slots=True)
class Rrenameat(WireFormat):
    """75: (empty body)"""


@wireformat(slots=True)
class Tunlinkat(WireFormat):
    """76: dirfd[u32] name[fsstr] flags[u32]"""

    dirfd: u32
    name: fsstr
    flags: u32


@wireformat(slots=True)
class Runlinkat(WireFormat):
    """77: (empty body)"""


@wireformat(slots=True)
class Tversion(WireFormat):
    """100: msize[u32] version[fsstr]"""

    msize: u32
    version: fsstr


@wireformat(slots=True)
class Rversion(WireFormat):
    """101: msize[u32] version[fsstr]"""

    msize: u32
    version: fsstr


@wireformat(slots=True)
class Tauth(WireFormat):
    """102: afid[u32] uname[fsstr] aname[fsstr] n_uname[u32]"""

    afid: u32
    uname: fsstr
    aname: fsstr
    n_uname: u32


@wireformat(slots=True)
class Rauth(WireFormat):
    """103: aqid[Qid]"""

    aqid: Qid


@wireformat(slots=True)
class Tattach(WireFormat):
    """104: fid[u32] afid[u32] uname[fsstr] aname[fsstr] n_uname[u32]"""

    fid: u32
    afid: u32
    uname: fsstr
    aname: fsstr
    n_uname: u32


@wireformat(slots=True)
class Rattach(WireFormat):
    """105: qid[Qid]"""

    qid: Qid


@wireformat(slots=True)
class Rerror(WireFormat):
    """107: ecode[u32]. Not part of 9P2000.L, but nfs-ganesha answers errors this way and Linux
    accepts it (r[9p2000l.error.rerror-compat]); the 9P2000 ``ename[s]`` form is not accepted."""

    ecode: u32


@wireformat(slots=True)
class Tflush(WireFormat):
    """108: oldtag[u16]"""

    oldtag: u16


@wireformat(slots=True)
class Rflush(WireFormat):
    """109: (empty body)"""


@wireformat(slots=True)
class Twalk(WireFormat):
    """110: fid[u32] newfid[u32] wnames[list[fsstr]]"""

    fid: u32
    newfid: u32
    wnames: list[fsstr]


@wireformat(slots=True)
class Rwalk(WireFormat):
    """111: wqids[list[Qid]]"""

    wqids: list[Qid]


@wireformat(slots=True)
class Tread(WireFormat):
    """116: fid[u32] offset[u64] count[u32]"""

    fid: u32
    offset: u64
    count: u32


@wireformat(slots=True)
class Rread(WireFormat):
    """117: data[bytes]"""

    data: bytes


@wireformat(slots=True)
class Twrite(WireFormat):
    """118: fid[u32] offset[u64] data[bytes]"""

    fid: u32
    offset: u64
    data: bytes


@wireformat(slots=True)
class Rwrite(WireFormat):
    """119: count[u32]"""

    count: u32


@wireformat(slots=True)
class Tclunk(WireFormat):
    """120: fid[u32]"""

    fid: u32


@wireformat(slots=True)
class Rclunk(WireFormat):
    """121: (empty body)"""


@wireformat(slots=True)
class Tremove(WireFormat):
    """122: fid[u32]"""

    fid: u32


@wireformat(slots=True)
class Rremove(WireFormat):
    """123: (empty body)"""


Tmessage = Annotated[
    Union[
        Tstatfs | Tlopen | Tlcreate | Tsymlink | Tmknod | Trename | Treadlink | Tgetattr | Tsetattr |
        Txattrwalk | Txattrcreate | Treaddir | Tfsync | Tlock | Tgetlock | Tlink | Tmkdir | Trenameat |
        Tunlinkat | Tversion | Tauth | Tattach | Tflush | Twalk | Tread | Twrite | Tclunk | Tremove
    ],
    Tagged(
        {
            8: Tstatfs, 12: Tlopen, 14: Tlcreate, 16: Tsymlink, 18: Tmknod, 20: Trename, 22: Treadlink,
            24: Tgetattr, 26: Tsetattr, 30: Txattrwalk, 32: Txattrcreate, 40: Treaddir, 50: Tfsync,
            52: Tlock, 54: Tgetlock, 70: Tlink, 72: Tmkdir, 74: Trenameat, 76: Tunlinkat, 100: Tversion,
            102: Tauth, 104: Tattach, 108: Tflush, 110: Twalk, 116: Tread, 118: Twrite, 120: Tclunk,
            122: Tremove,
        },
        "Tmessage",
    ),
]
"""A request: one of the T-messages, tagged by its message number (r[9p2000l.types])."""

Rmessage = Annotated[
    Union[
        Rlerror | Rstatfs | Rlopen | Rlcreate | Rsymlink | Rmknod | Rrename | Rreadlink | Rgetattr |
        Rsetattr | Rxattrwalk | Rxattrcreate | Rreaddir | Rfsync | Rlock | Rgetlock | Rlink | Rmkdir |
        Rrenameat | Runlinkat | Rversion | Rauth | Rattach | Rerror | Rflush | Rwalk | Rread | Rwrite |
        Rclunk | Rremove
    ],
    Tagged(
        {
            7: Rlerror, 9: Rstatfs, 13: Rlopen, 15: Rlcreate, 17: Rsymlink, 19: Rmknod, 21: Rrename,
            23: Rreadlink, 25: Rgetattr, 27: Rsetattr, 31: Rxattrwalk, 33: Rxattrcreate, 41: Rreaddir,
            51: Rfsync, 53: Rlock, 55: Rgetlock, 71: Rlink, 73: Rmkdir, 75: Rrenameat, 77: Runlinkat,
            101: Rversion, 103: Rauth, 105: Rattach, 107: Rerror, 109: Rflush, 111: Rwalk, 117: Rread,
            119: Rwrite, 121: Rclunk, 123: Rremove,
        },
        "Rmessage",
    ),
]
"""A reply: one of the R-messages, Rlerror and the compatible Rerror included."""


class Tframe(Frame[Tmessage]):
    """A whole request frame: ``Tframe(tag=1, msg=Tclunk(fid=3)).encode()``."""

    __slots__ = ()


class Rframe(Frame[Rmessage]):
    """A whole reply frame."""

    __slots__ = ()

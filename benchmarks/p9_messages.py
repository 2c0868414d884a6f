"""Every 9P2000.L message body (r[9p2000l.types], layouts from shared/spec/9p2000L.md), plus Qid
and Dirent, declared with jetwire: 59 classes. Used to time declaring a whole protocol
(``python -m benchmarks.decorate 9p``); the timed frames live in ``messages.py``.
"""

from jetwire import u8, u16, u32, u64, wireformat


@wireformat
class Qid:
    type: u8
    version: u32
    path: u64


@wireformat
class Dirent:
    qid: Qid
    offset: u64
    type: u8
    name: str


@wireformat
class Rlerror:
    ecode: u32


@wireformat
class Tstatfs:
    fid: u32


@wireformat
class Rstatfs:
    type: u32
    bsize: u32
    blocks: u64
    bfree: u64
    bavail: u64
    files: u64
    ffree: u64
    fsid: u64
    namelen: u32


@wireformat
class Tlopen:
    fid: u32
    flags: u32


@wireformat
class Rlopen:
    qid: Qid
    iounit: u32


@wireformat
class Tlcreate:
    fid: u32
    name: str
    flags: u32
    mode: u32
    gid: u32


@wireformat
class Rlcreate:
    qid: Qid
    iounit: u32


@wireformat
class Tsymlink:
    fid: u32
    name: str
    symtgt: str
    gid: u32


@wireformat
class Rsymlink:
    qid: Qid


@wireformat
class Tmknod:
    dfid: u32
    name: str
    mode: u32
    major: u32
    minor: u32
    gid: u32


@wireformat
class Rmknod:
    qid: Qid


@wireformat
class Trename:
    fid: u32
    dfid: u32
    name: str


@wireformat
class Rrename:
    pass


@wireformat
class Treadlink:
    fid: u32


@wireformat
class Rreadlink:
    target: str


@wireformat
class Tgetattr:
    fid: u32
    request_mask: u64


@wireformat
class Rgetattr:
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


@wireformat
class Tsetattr:
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


@wireformat
class Rsetattr:
    pass


@wireformat
class Txattrwalk:
    fid: u32
    newfid: u32
    name: str


@wireformat
class Rxattrwalk:
    size: u64


@wireformat
class Txattrcreate:
    fid: u32
    name: str
    attr_size: u64
    flags: u32


@wireformat
class Rxattrcreate:
    pass


@wireformat
class Treaddir:
    fid: u32
    offset: u64
    count: u32


@wireformat
class Rreaddir:
    data: bytes


@wireformat
class Tfsync:
    fid: u32
    datasync: u32


@wireformat
class Rfsync:
    pass


@wireformat
class Tlock:
    fid: u32
    type: u8
    flags: u32
    start: u64
    length: u64
    proc_id: u32
    client_id: str


@wireformat
class Rlock:
    status: u8


@wireformat
class Tgetlock:
    fid: u32
    type: u8
    start: u64
    length: u64
    proc_id: u32
    client_id: str


@wireformat
class Rgetlock:
    type: u8
    start: u64
    length: u64
    proc_id: u32
    client_id: str


@wireformat
class Tlink:
    dfid: u32
    fid: u32
    name: str


@wireformat
class Rlink:
    pass


@wireformat
class Tmkdir:
    dfid: u32
    name: str
    mode: u32
    gid: u32


@wireformat
class Rmkdir:
    qid: Qid


@wireformat
class Trenameat:
    olddirfid: u32
    oldname: str
    newdirfid: u32
    newname: str


@wireformat
class Rrenameat:
    pass


@wireformat
class Tunlinkat:
    dirfd: u32
    name: str
    flags: u32


@wireformat
class Runlinkat:
    pass


@wireformat
class Tversion:
    msize: u32
    version: str


@wireformat
class Rversion:
    msize: u32
    version: str


@wireformat
class Tauth:
    afid: u32
    uname: str
    aname: str
    n_uname: u32


@wireformat
class Rauth:
    aqid: Qid


@wireformat
class Tattach:
    fid: u32
    afid: u32
    uname: str
    aname: str
    n_uname: u32


@wireformat
class Rattach:
    qid: Qid


@wireformat
class Tflush:
    oldtag: u16


@wireformat
class Rflush:
    pass


@wireformat
class Twalk:
    fid: u32
    newfid: u32
    wnames: list[str]


@wireformat
class Rwalk:
    wqids: list[Qid]


@wireformat
class Tread:
    fid: u32
    offset: u64
    count: u32


@wireformat
class Rread:
    data: bytes


@wireformat
class Twrite:
    fid: u32
    offset: u64
    data: bytes


@wireformat
class Rwrite:
    count: u32


@wireformat
class Tclunk:
    fid: u32


@wireformat
class Rclunk:
    pass


@wireformat
class Tremove:
    fid: u32


@wireformat
class Rremove:
    pass

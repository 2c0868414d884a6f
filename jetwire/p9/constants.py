"""The numbers of 9P2000.L: upstream's ``jetstream_9p`` constants (their names, without the
leading ``_`` upstream puts on the ones Rust code does not use) and those it lacks: NOTAG,
NOFID, NONUNAME, MAXWELEM, P9_IOHDRSZ, AT_REMOVEDIR, the dirent types, the xattr flags and the
errno values 9P carries. Values: ../shared/spec/9p2000L.md, section Constants.
"""

from __future__ import annotations

import enum
import os

# size[4] type[1] tag[2]: a fact of every frame, not of 9P alone, so the frame code owns it
from ..runtime.frames import HEADER_SIZE as HEADER_SIZE


class Version(enum.Enum):
    """Upstream's ``Version``: the dialects a Tversion can name (r[9p2000l.version.string])."""

    V9P2000 = "9P2000"
    V9P2000_U = "9P2000.u"
    V9P2000_L = "9P2000.L"


# -- protocol (r[9p2000l.frame.tag], r[9p2000l.frame.nofid], r[9p2000l.walk.max]) --------------
VERSION_9P2000L = "9P2000.L"
NOTAG = 0xFFFF
NOFID = 0xFFFFFFFF
NONUNAME = 0xFFFFFFFF
MAXWELEM = 16
P9_IOHDRSZ = 24  # what Linux keeps free in msize around Tread/Twrite data (r[9p2000l.version.iounit])
P9_READDIRHDRSZ = 24
V9FS_MAGIC = 0x01021997

# Upstream's policy numbers (not protocol): the default msize it proposes, and its limits.
DEFAULT_MSIZE = 8192
MIN_MESSAGE_SIZE = 256
MAX_MESSAGE_SIZE = 65536 + 24
LINUX_MIN_MSIZE = 4096  # the Linux client refuses an msize below this (r[9p2000l.version.msize])

# -- Tlopen/Tlcreate flags (r[9p2000l.const.open-flags]) -----------------------------------------
P9_RDONLY = 0o0
P9_WRONLY = 0o1
P9_RDWR = 0o2
P9_NOACCESS = 0o3
P9_CREATE = 0o100
P9_EXCL = 0o200
P9_NOCTTY = 0o400
P9_TRUNC = 0o1000
P9_APPEND = 0o2000
P9_NONBLOCK = 0o4000
P9_DSYNC = 0o10000
P9_FASYNC = 0o20000
P9_DIRECT = 0o40000
P9_LARGEFILE = 0o100000
P9_DIRECTORY = 0o200000
P9_NOFOLLOW = 0o400000
P9_NOATIME = 0o1000000
P9_CLOEXEC = 0o2000000
P9_SYNC = 0o4000000
P9_ACCMODE = 0o3

# Upstream's MAPPED_FLAGS: the 9P flag for each host flag that has one (the access mode aside).
MAPPED_FLAGS: tuple[tuple[int, int], ...] = tuple(
    (p9, host)
    for p9, name in (
        (P9_CREATE, "O_CREAT"), (P9_EXCL, "O_EXCL"), (P9_NOCTTY, "O_NOCTTY"), (P9_TRUNC, "O_TRUNC"),
        (P9_APPEND, "O_APPEND"), (P9_NONBLOCK, "O_NONBLOCK"), (P9_DSYNC, "O_DSYNC"),
        (P9_FASYNC, "O_ASYNC"), (P9_DIRECT, "O_DIRECT"), (P9_LARGEFILE, "O_LARGEFILE"),
        (P9_DIRECTORY, "O_DIRECTORY"), (P9_NOFOLLOW, "O_NOFOLLOW"), (P9_NOATIME, "O_NOATIME"),
        (P9_CLOEXEC, "O_CLOEXEC"), (P9_SYNC, "O_SYNC"),
    )
    if (host := getattr(os, name, None)) is not None
)

# -- qid types (r[9p2000l.const.qid-type]) ---------------------------------------------------------
P9_QTDIR = 0x80
P9_QTAPPEND = 0x40
P9_QTEXCL = 0x20
P9_QTMOUNT = 0x10
P9_QTAUTH = 0x08
P9_QTTMP = 0x04
P9_QTSYMLINK = 0x02
P9_QTLINK = 0x01
P9_QTFILE = 0x00

# -- getattr masks (r[9p2000l.const.getattr-mask]) -------------------------------------------------
P9_GETATTR_MODE = 0x00000001
P9_GETATTR_NLINK = 0x00000002
P9_GETATTR_UID = 0x00000004
P9_GETATTR_GID = 0x00000008
P9_GETATTR_RDEV = 0x00000010
P9_GETATTR_ATIME = 0x00000020
P9_GETATTR_MTIME = 0x00000040
P9_GETATTR_CTIME = 0x00000080
P9_GETATTR_INO = 0x00000100
P9_GETATTR_SIZE = 0x00000200
P9_GETATTR_BLOCKS = 0x00000400
P9_GETATTR_BTIME = 0x00000800
P9_GETATTR_GEN = 0x00001000
P9_GETATTR_DATA_VERSION = 0x00002000
P9_GETATTR_BASIC = 0x000007FF
P9_GETATTR_ALL = 0x00003FFF

# -- setattr valid bits (r[9p2000l.const.setattr-valid]) -------------------------------------------
P9_SETATTR_MODE = 0x00000001
P9_SETATTR_UID = 0x00000002
P9_SETATTR_GID = 0x00000004
P9_SETATTR_SIZE = 0x00000008
P9_SETATTR_ATIME = 0x00000010
P9_SETATTR_MTIME = 0x00000020
P9_SETATTR_CTIME = 0x00000040
P9_SETATTR_ATIME_SET = 0x00000080
P9_SETATTR_MTIME_SET = 0x00000100

# -- locks (r[9p2000l.const.lock]) ------------------------------------------------------------------
P9_LOCK_TYPE_RDLCK = 0
P9_LOCK_TYPE_WRLCK = 1
P9_LOCK_TYPE_UNLCK = 2
P9_LOCK_FLAGS_BLOCK = 1
P9_LOCK_FLAGS_RECLAIM = 2
P9_LOCK_SUCCESS = 0
P9_LOCK_BLOCKED = 1
P9_LOCK_ERROR = 2
P9_LOCK_GRACE = 3

# -- unlinkat, xattr, dirent types (r[9p2000l.const.at-flags], xattr-flags, dirent-type) ------------
AT_REMOVEDIR = 0x200
XATTR_CREATE = 1
XATTR_REPLACE = 2
DT_UNKNOWN = 0
DT_FIFO = 1
DT_CHR = 2
DT_DIR = 4
DT_BLK = 6
DT_REG = 8
DT_LNK = 10
DT_SOCK = 12

# -- st_mode (r[9p2000l.const.mode]) --------------------------------------------------------------
S_IFMT = 0o170000
S_IFSOCK = 0o140000
S_IFLNK = 0o120000
S_IFREG = 0o100000
S_IFBLK = 0o060000
S_IFDIR = 0o040000
S_IFCHR = 0o020000
S_IFIFO = 0o010000

# -- errno values on the wire: Linux x86-64 numbers, whatever this host uses (r[9p2000l.error.rlerror])
EPERM = 1
ENOENT = 2
EIO = 5
E2BIG = 7
EBADF = 9
EAGAIN = 11
ENOMEM = 12
EACCES = 13
EBUSY = 16
EEXIST = 17
EXDEV = 18
ENOTDIR = 20
EISDIR = 21
EINVAL = 22
EMFILE = 24
ENOSPC = 28
EROFS = 30
ERANGE = 34
ENAMETOOLONG = 36
ENOLCK = 37
ENOSYS = 38
ENOTEMPTY = 39
ELOOP = 40
ENODATA = 61
EPROTO = 71
EMSGSIZE = 90
EOPNOTSUPP = 95

LINUX_ERRNO_NAMES: dict[int, str] = {
    value: name
    for name, value in dict(globals()).items()
    if name.startswith("E") and name.isupper() and isinstance(value, int)
}
LINUX_ERRNO_BY_NAME: dict[str, int] = {name: value for value, name in LINUX_ERRNO_NAMES.items()}

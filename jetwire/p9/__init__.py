"""9P2000.L defined with jetwire: every message (``messages``), its constants (``constants``),
a sans-I/O client core (``session``) and an asyncio client (``client``: the layers
``connection``, ``calls`` and ``paths``); a file server (``server``: the sans-I/O
``ServerSession`` and the ``Handler`` interface; ``localfs``: ``LocalFilesystem``; ``serving``:
the asyncio ``Server``).

    async with await jetwire.p9.Client.connect("127.0.0.1", 564, aname="/srv") as fs:
        print(await fs.listdir(""))
"""

from . import constants
from .client import Client, File, RemotePath, Stat, connect, parse_address, parse_dirents
from .constants import Version
from .localfs import LocalFilesystem
from .messages import (
    Dirent,
    Qid,
    Rattach,
    Rauth,
    Rclunk,
    Rerror,
    Rflush,
    Rframe,
    Rfsync,
    Rgetattr,
    Rgetlock,
    Rlcreate,
    Rlerror,
    Rlink,
    Rlock,
    Rlopen,
    Rmessage,
    Rmkdir,
    Rmknod,
    Rread,
    Rreaddir,
    Rreadlink,
    Rremove,
    Rrename,
    Rrenameat,
    Rsetattr,
    Rstatfs,
    Rsymlink,
    Runlinkat,
    Rversion,
    Rwalk,
    Rwrite,
    Rxattrcreate,
    Rxattrwalk,
    Tattach,
    Tauth,
    Tclunk,
    Tflush,
    Tframe,
    Tfsync,
    Tgetattr,
    Tgetlock,
    Tlcreate,
    Tlink,
    Tlock,
    Tlopen,
    Tmessage,
    Tmkdir,
    Tmknod,
    Tread,
    Treaddir,
    Treadlink,
    Tremove,
    Trename,
    Trenameat,
    Tsetattr,
    Tstatfs,
    Tsymlink,
    Tunlinkat,
    Tversion,
    Twalk,
    Twrite,
    Txattrcreate,
    Txattrwalk,
)
from .server import Handler, ServerSession
from .serving import Server, serve
from .session import (
    Event,
    ExhaustedError,
    Failed,
    Flushed,
    LocalProtocolError,
    Orphan,
    ProtocolError,
    RemoteProtocolError,
    Reply,
    Session,
    Stray,
    error_from_errno,
    error_to_rmessage,
)

__all__ = [
    "constants", "Client", "File", "RemotePath", "Stat", "connect", "parse_address", "parse_dirents",
    "Session", "Event", "Reply", "Failed", "Flushed", "Orphan", "Stray", "ProtocolError", "LocalProtocolError",
    "ExhaustedError",
    "Handler", "ServerSession", "LocalFilesystem", "Server", "serve",
    "RemoteProtocolError", "error_from_errno",
    "error_to_rmessage", "Version",
    "Tframe", "Rframe", "Tmessage", "Rmessage",
    "Qid", "Dirent", "Rlerror", "Tstatfs", "Rstatfs", "Tlopen", "Rlopen", "Tlcreate", "Rlcreate", "Tsymlink",
    "Rsymlink", "Tmknod", "Rmknod", "Trename", "Rrename", "Treadlink", "Rreadlink", "Tgetattr", "Rgetattr",
    "Tsetattr", "Rsetattr", "Txattrwalk", "Rxattrwalk", "Txattrcreate", "Rxattrcreate", "Treaddir",
    "Rreaddir", "Tfsync", "Rfsync", "Tlock", "Rlock", "Tgetlock", "Rgetlock", "Tlink", "Rlink", "Tmkdir",
    "Rmkdir", "Trenameat", "Rrenameat", "Tunlinkat", "Runlinkat", "Tversion", "Rversion", "Tauth", "Rauth",
    "Tattach", "Rattach", "Rerror", "Tflush", "Rflush", "Twalk", "Rwalk", "Tread", "Rread", "Twrite",
    "Rwrite", "Tclunk", "Rclunk", "Tremove", "Rremove",
]

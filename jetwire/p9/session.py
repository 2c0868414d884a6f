"""The client side of a 9P2000.L connection, without I/O: requests in, bytes out; bytes in,
replies out (the h11 shape). It owns tags, fids, the negotiated msize and the bookkeeping that
keeps both from leaking: whatever happens to a request, its tag comes back, and a fid it may
have created is either handed to the caller, freed, or reported as an orphan to clunk.

``asyncio`` lives in ``client.py``; this module is what tests drive byte by byte.
"""

from __future__ import annotations

import errno as host_errno
import os
import sys
from typing import Any, NamedTuple

from ..errors import JetwireError
from ..runtime.frames import HEADER_SIZE, FrameError, FrameReader
from ..runtime.records import Record as _Record
from . import constants as c
from . import messages as m

__all__ = [
    "Session", "Reply", "Failed", "Flushed", "Orphan", "Stray", "Event",
    "ProtocolError", "LocalProtocolError", "RemoteProtocolError", "MsizeError", "ExhaustedError", "ListingTooLongError",
    "FidRoles",
    "FID_ROLES",
    "error_from_errno", "error_to_rmessage",
]


class ProtocolError(JetwireError):
    """9P2000.L was broken; which side broke it says the subclass (as h11 splits the blame)."""


class LocalProtocolError(ProtocolError):
    """This side's request breaks the protocol or the session's state (a Tversion through
    ``request``, a flush of a tag not outstanding, a frame over msize, a call before the
    version is agreed): the caller's to fix, and nothing was sent."""


class MsizeError(LocalProtocolError, ValueError):
    """A request whose frame is over the negotiated msize (r[9p2000l.version.msize]); still a
    ``ValueError``, as it was before the blame was split."""


class ExhaustedError(LocalProtocolError, RuntimeError):
    """Every tag (65,535 requests outstanding) or every fid is in use: nothing was sent. Still a
    ``RuntimeError``, as it was before it became a jetwire error."""


class RemoteProtocolError(ProtocolError):
    """The peer broke the protocol: a reply of the wrong type or to a tag not in flight, a
    version or msize that cannot be, a reply that breaks its request's limits or does not decode."""


class ListingTooLongError(ProtocolError):
    """A directory listing past the bound the caller set (``readdir``'s ``max_entries``): a
    directory that large, or a server that never ends its listing; nothing more was asked."""


def error_from_errno(linux_errno: int, request: str = "", filename: str | None = None,
                     filename2: str | None = None) -> OSError:
    """The ``OSError`` a server's Linux errno means here: ``OSError(errno, strerror)`` picks the
    subclass (ENOENT → FileNotFoundError, EEXIST → FileExistsError, ...). The number is
    translated by name, so a non-Linux host still gets the right errno."""
    name = c.LINUX_ERRNO_NAMES.get(linux_errno)
    number = getattr(host_errno, name) if name and hasattr(host_errno, name) else linux_errno
    try:
        text = os.strerror(number)
    except (ValueError, OverflowError):  # no such error here; past a C int (an ecode is a u32)
        text = f"errno {linux_errno}"
    if request:
        text = f"{text} ({request})"
    if filename is None and filename2 is None:
        return OSError(number, text)
    if filename2 is None:
        return OSError(number, text, filename)
    return OSError(number, text, filename, None, filename2)  # the fourth is Windows' winerror


def error_to_rmessage(error: BaseException) -> m.Rlerror:
    """Upstream's ``error_to_rmessage``: the Rlerror a server answers for ``error``. An
    ``OSError`` keeps its errno, translated by name to the Linux number the wire carries
    (r[9p2000l.error.rlerror]); anything else is EIO."""
    number = getattr(error, "errno", None)
    if isinstance(error, OSError) and isinstance(number, int):
        name = host_errno.errorcode.get(number)
        linux = c.LINUX_ERRNO_BY_NAME.get(name or "")
        if linux is not None:
            return m.Rlerror(ecode=linux)
        if sys.platform.startswith("linux"):
            return m.Rlerror(ecode=number)  # this host's numbers are Linux's
    return m.Rlerror(ecode=c.EIO)


class Pending:
    """One outstanding request and what its reply will mean for fids and tags."""

    __slots__ = ("creates_fid", "flushed_by", "flushes", "frees_fid", "request", "special", "tag")

    def __init__(self, tag: int, request: Any) -> None:
        self.tag = tag
        self.request = request
        self.creates_fid: int | None = None  # the fid this request brings to life if it succeeds
        self.frees_fid: int | None = None  # the fid that is free once any reply arrives (clunk, remove)
        self.flushed_by: int | None = None  # the tag of the Tflush sent for this request
        self.flushes: int | None = None  # for a Tflush: the tag it flushes
        self.special = False  # any of the above, or a Tversion: the reply needs more than a lookup


class Reply(_Record):
    """The server's answer to ``request`` (an R-message; Rlerror/Rerror included)."""

    __slots__ = ("msg", "request", "tag")

    def __init__(self, tag: int, request: Any, msg: Any) -> None:
        self.tag = tag
        self.request = request
        self.msg = msg


class Failed(_Record):
    """A reply for ``tag`` that could not be decoded (the stream itself is still in step)."""

    __slots__ = ("error", "request", "tag")

    def __init__(self, tag: int, request: Any, error: Exception) -> None:
        self.tag = tag
        self.request = request
        self.error = error


class Flushed(_Record):
    """``request`` was abandoned by the server: its Rflush came and its reply never will."""

    __slots__ = ("request", "tag")

    def __init__(self, tag: int, request: Any) -> None:
        self.tag = tag
        self.request = request


class Orphan(_Record):
    """A fid exists on the server that nobody holds (a flushed walk that succeeded anyway, or
    a partial walk on a server that creates the newfid regardless): clunk it."""

    __slots__ = ("fid",)

    def __init__(self, fid: int) -> None:
        self.fid = fid


class Stray(_Record):
    """A frame nobody asked for (a tag not in flight), or one whose size is out of bounds
    (below 7, over msize): the byte stream has fallen out of step, so nothing after it can
    be trusted (Linux's client gives up on the connection too). It is the session's last
    event: ``session.broken`` holds the error, pending requests are dropped, and the shell
    must fail every call and close the connection."""

    __slots__ = ("error", "frame")

    def __init__(self, frame: Any, error: Exception) -> None:
        self.frame = frame
        self.error = error


Event = Reply | Failed | Flushed | Orphan | Stray


class Session:
    """Tags, fids and framing of one client connection (r[9p2000l.frame.tag]).

    ``msize`` is the proposal until ``Rversion`` answers; then the negotiated value, which
    both limits the frames this side sends and those it accepts (r[9p2000l.version.msize]).
    """

    def __init__(self, msize: int = 65536 + c.P9_IOHDRSZ, version: str = c.VERSION_9P2000L) -> None:
        if msize < c.LINUX_MIN_MSIZE:  # r[9p2000l.version.msize]
            raise ValueError(f"msize {msize} is below {c.LINUX_MIN_MSIZE}, the least a 9P2000.L peer must accept")
        self.msize = msize
        self.version = version
        self.negotiated = False
        self.reader: FrameReader[m.Rframe] = FrameReader(m.Rframe, max_size=msize)
        self.pending: dict[int, Pending] = {}
        self._next_tag = 0
        self._fids: set[int] = set()
        self._next_fid = 0
        self.broken: Exception | None = None  # why the stream is out of step (see Stray)

    # -- fids -----------------------------------------------------------------------------------

    def alloc_fid(self) -> int:
        """The lowest fid not in use (ganesha wants fids below 1024; low numbers keep them so)."""
        fid = self._next_fid
        while fid in self._fids:
            fid += 1
        if fid >= c.NOFID:
            raise ExhaustedError(f"every fid below NOFID ({c.NOFID:#x}) is in use")
        self._fids.add(fid)
        self._next_fid = fid + 1
        return fid

    def free_fid(self, fid: int) -> None:
        self._fids.discard(fid)
        self._next_fid = min(self._next_fid, fid)

    @property
    def fids_in_use(self) -> frozenset[int]:
        return frozenset(self._fids)

    # -- requests ---------------------------------------------------------------------------------

    def start(self) -> bytes:
        """The Tversion that opens (and resets) the session, with tag NOTAG (r[9p2000l.version.first])."""
        if self.pending:
            raise LocalProtocolError("Tversion resets the session: wait for outstanding requests first")
        self.negotiated = False
        self._fids.clear()
        self._next_fid = 0
        self.pending[c.NOTAG] = Pending(c.NOTAG, m.Tversion(msize=self.msize, version=self.version))
        self.pending[c.NOTAG].special = True
        return m.Tframe(tag=c.NOTAG, msg=self.pending[c.NOTAG].request).encode()

    def _alloc_tag(self) -> int:
        if len(self.pending) >= c.NOTAG:
            raise ExhaustedError("65535 requests are outstanding: no tag is free")
        tag = self._next_tag
        while tag in self.pending or tag == c.NOTAG:
            tag = (tag + 1) % c.NOTAG
        self._next_tag = (tag + 1) % c.NOTAG
        return tag

    def request(self, msg: Any) -> tuple[int, bytes]:
        """Registers ``msg`` under a free tag; returns the tag and the frame to send."""
        if not self.negotiated:
            if self.broken is not None:
                # the peer broke the stream, but this request is refused for the state that left
                raise LocalProtocolError(f"the connection is out of step: {self.broken}")
            raise LocalProtocolError("no version negotiated yet: send start() and feed its Rversion")
        kind = msg.__class__
        if kind is m.Tversion:
            raise LocalProtocolError("use start() for Tversion")
        tag = self._alloc_tag()
        data = m.Tframe(tag=tag, msg=msg).encode()
        if len(data) > self.msize:
            raise MsizeError(f"a {kind.__name__} of {len(data)} bytes is over the msize of {self.msize}")
        pending = Pending(tag, msg)
        if kind in _SPECIAL_REQUESTS:
            pending.special = True
            roles = FID_ROLES[kind]
            if roles.creates is not None:
                fid = getattr(msg, roles.creates)
                for used in roles.uses:  # a loop, not all(): no generator on every walk
                    if getattr(msg, used) == fid:
                        break  # a walk in place makes no fid
                else:
                    pending.creates_fid = fid
            if roles.frees is not None:
                pending.frees_fid = getattr(msg, roles.frees)
            if kind is m.Tflush:
                target = self.pending.get(msg.oldtag)
                if target is None:
                    raise LocalProtocolError(f"tag {msg.oldtag} is not outstanding: nothing to flush")
                target.flushed_by = tag
                target.special = True
                pending.flushes = msg.oldtag
        self.pending[tag] = pending
        return tag, data

    def flush(self, tag: int) -> tuple[int, bytes] | None:
        """A Tflush for ``tag`` (r[9p2000l.flush]), or None if its reply came or a flush is already out."""
        target = self.pending.get(tag)
        if target is None or target.flushed_by is not None or target.flushes is not None or tag == c.NOTAG:
            return None
        return self.request(m.Tflush(oldtag=tag))

    # -- replies ----------------------------------------------------------------------------------

    def receive(self, data: bytes | bytearray | memoryview) -> list[Event]:
        """Feeds bytes from the server; returns what they completed, in order. Once the stream
        is out of step (a ``Stray``), nothing more is read: the bytes are ignored."""
        if self.broken is not None:
            return []
        self.reader.feed(data)
        events: list[Event] = []
        while True:
            try:
                frame = self.reader.next_frame()
            except FrameError as exc:
                pending = self.pending.get(exc.tag) if exc.tag is not None else None
                size = exc.size
                if pending is None or size is None or size < HEADER_SIZE or size > self.reader.max_size:
                    # a size out of bounds may be a lie, and skipping by it would swallow the replies
                    # after it (r[9p2000l.frame.header]): only a bad body of a known tag is local
                    self._break(Stray(None, exc), events)
                    return events
                self._finish(pending, None, events, failure=exc)
                continue
            if frame is None:
                return events
            pending = self.pending.get(frame.tag)
            if pending is None:
                error = RemoteProtocolError(f"a reply with tag {frame.tag}, which is not outstanding")
                self._break(Stray(frame, error), events)
                return events
            self._finish(pending, frame.msg, events)

    def _break(self, stray: Stray, events: list[Event]) -> None:
        self.broken = stray.error
        self.connection_lost()
        events.append(stray)

    def connection_lost(self) -> None:
        """The connection is gone (or out of step): no reply will come, so no request is pending.
        The fids went with the connection too (r[9p2000l.version.first]: a new session starts empty)."""
        self.pending.clear()
        self.negotiated = False
        self._fids.clear()
        self._next_fid = 0

    def _finish(self, pending: Pending, msg: Any, events: list[Event], failure: Exception | None = None) -> None:
        request = pending.request
        if failure is None and _REPLY_OF[request.__class__] is not msg.__class__ and msg.__class__ not in _ERRORS:
            failure = RemoteProtocolError(f"{type(msg).__name__} is no answer to {type(request).__name__}")
        del self.pending[pending.tag]
        if not pending.special:  # most replies: nothing to do for fids or other tags
            if failure is None:
                events.append(Reply(pending.tag, request, msg))
            else:
                events.append(Failed(pending.tag, request, failure))
            return
        if pending.frees_fid is not None:
            self.free_fid(pending.frees_fid)  # r[9p2000l.clunk]: free even after an error
        if isinstance(request, m.Tversion):
            if failure is None:
                failure = self._negotiate(msg)
        if pending.flushes is not None:  # an Rflush: the flushed request is over if still waiting
            target = self.pending.pop(pending.flushes, None)
            if target is not None:
                if target.creates_fid is not None:
                    self.free_fid(target.creates_fid)  # its reply never came: the fid was not made
                if target.frees_fid is not None:
                    self.free_fid(target.frees_fid)
                events.append(Flushed(target.tag, target.request))
            if failure is None and not isinstance(msg, m.Rflush):
                failure = RemoteProtocolError(f"{type(msg).__name__} answered a Tflush")
        fid = pending.creates_fid
        if fid is not None:
            made = failure is None and not isinstance(msg, (m.Rlerror, m.Rerror))
            if made and isinstance(request, m.Twalk) and len(msg.wqids) != len(request.wnames):
                events.append(Orphan(fid))  # r[9p2000l.walk.partial]: not made; some servers do anyway
            elif made and pending.flushed_by is not None:
                events.append(Orphan(fid))  # the caller gave up on it: clunk it
            elif not made:
                self.free_fid(fid)
        if failure is None and msg.__class__ is m.Rwalk and len(msg.wqids) > len(request.wnames):
            # qids for names never sent: not ENOENT, a server that cannot count (the newfid, if
            # any, was made an Orphan above, so whatever the server did with it is clunked)
            text = f"Rwalk carried {len(msg.wqids)} qids for a Twalk of {len(request.wnames)} names"
            failure = RemoteProtocolError(text)
        if failure is not None:
            events.append(Failed(pending.tag, request, failure))
        else:
            events.append(Reply(pending.tag, request, msg))

    def _negotiate(self, msg: Any) -> Exception | None:
        if isinstance(msg, (m.Rlerror, m.Rerror)):
            return error_from_errno(msg.ecode, "Tversion")
        assert isinstance(msg, m.Rversion)
        # r[9p2000l.version.string]: "unknown" means no. What follows a further "." extends the
        # part before it, so the answer may be our proposal, its base, or an extension of it.
        answer, ours = msg.version, self.version
        if not (answer == ours or ours.startswith(answer + ".") or answer.startswith(ours + ".")):
            return RemoteProtocolError(f"the server does not speak {ours}: it answered {answer!r}")
        if not answer.startswith(c.VERSION_9P2000L):
            return RemoteProtocolError(f"{answer!r} is not a 9P2000.L dialect")
        self.version = answer
        if msg.msize > self.msize:
            return RemoteProtocolError(f"the server raised msize from {self.msize} to {msg.msize}")
        if msg.msize < c.LINUX_MIN_MSIZE:  # Linux refuses these too: every call would be cramped or fail
            text = f"the server's msize {msg.msize} is below {c.LINUX_MIN_MSIZE}, the least allowed"
            return RemoteProtocolError(text)
        self.msize = msg.msize
        self.reader.max_size = msg.msize
        self.negotiated = True
        return None

    # -- sizing (r[9p2000l.version.iounit]) ----------------------------------------------------------

    def io_size(self, iounit: int = 0) -> int:
        """The most data one Tread or Twrite may carry."""
        limit = self.msize - c.P9_IOHDRSZ
        return min(limit, iounit) if iounit else limit


def _replies() -> dict[type, type]:
    """Each request class and the class of its successful reply: type number + 1."""
    from typing import get_args

    requests, replies = (
        {n: cls for meta in get_args(union)[1:] for n, cls in meta.tags.items()} for union in (m.Tmessage, m.Rmessage)
    )
    return {cls: replies[number + 1] for number, cls in requests.items()}


_REPLY_OF = _replies()
_ERRORS = frozenset({m.Rlerror, m.Rerror})


class FidRoles(NamedTuple):
    """The fields of a request that name fids, by what the request does to each."""

    creates: str | None = None  # a fid the request brings to life if it succeeds (unless it is one it uses)
    frees: str | None = None  # a fid that is free once any reply arrives (r[9p2000l.clunk])
    uses: tuple[str, ...] = ()  # fids that must exist when the request is sent (NOFID where optional)


_ON_FID = FidRoles(uses=("fid",))
# Every request, so that a message added to messages.py without a row fails a test rather than
# having its fids silently ignored. Tversion's roles are none: it resets every fid (start()).
FID_ROLES: dict[type, FidRoles] = {
    m.Tversion: FidRoles(),
    m.Tflush: FidRoles(),  # it names a tag, not a fid
    m.Tauth: FidRoles(creates="afid"),
    m.Tattach: FidRoles(creates="fid", uses=("afid",)),
    m.Twalk: FidRoles(creates="newfid", uses=("fid",)),
    m.Txattrwalk: FidRoles(creates="newfid", uses=("fid",)),
    m.Tclunk: FidRoles(frees="fid", uses=("fid",)),
    m.Tremove: FidRoles(frees="fid", uses=("fid",)),
    m.Tstatfs: _ON_FID, m.Tlopen: _ON_FID, m.Tlcreate: _ON_FID, m.Tsymlink: _ON_FID, m.Treadlink: _ON_FID,
    m.Tgetattr: _ON_FID, m.Tsetattr: _ON_FID, m.Txattrcreate: _ON_FID, m.Treaddir: _ON_FID, m.Tfsync: _ON_FID,
    m.Tlock: _ON_FID, m.Tgetlock: _ON_FID, m.Tread: _ON_FID, m.Twrite: _ON_FID,
    m.Tmknod: FidRoles(uses=("dfid",)),
    m.Tmkdir: FidRoles(uses=("dfid",)),
    m.Trename: FidRoles(uses=("fid", "dfid")),
    m.Tlink: FidRoles(uses=("dfid", "fid")),
    m.Trenameat: FidRoles(uses=("olddirfid", "newdirfid")),
    m.Tunlinkat: FidRoles(uses=("dirfd",)),
}
# the requests whose reply needs more than a lookup: one set test keeps the common case fast
_SPECIAL_REQUESTS = frozenset(
    [kind for kind, roles in FID_ROLES.items() if roles.creates or roles.frees] + [m.Tflush]
)

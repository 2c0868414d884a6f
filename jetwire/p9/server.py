"""The server side of a 9P2000.L connection, without I/O: bytes in, calls and replies out (the
mirror of ``session.py``). ``ServerSession`` owns what the protocol decides whatever is being
served: version and msize negotiation, the fid table, tags in flight, Tflush, the checks a
request must pass before any handler sees it (r[9p2000l.server.*] in ../shared/spec/9p2000L.md).
``Handler`` is what is served: one async method per request message, as upstream's
``NineP2000L`` trait, with fids already looked up. ``serving.py`` is the asyncio shell.

A handler's fid objects are its own (``F``): the session stores them, passes them to each call
that names the fid, and hands them back in ``Release`` events when the fid is gone, so that the
handler can close what they hold. A fid object is never released while a call is using it.
"""

from __future__ import annotations

import errno as host_errno
import struct
from collections.abc import Sequence
from contextvars import ContextVar
from typing import Any, Generic, NamedTuple, TypeVar, cast

from ..runtime.frames import HEADER_SIZE, FrameError, FrameReader, frame_encoder
from . import constants as c
from . import messages as m
from .session import _REPLY_OF, FID_ROLES, error_to_rmessage

__all__ = [
    "Handler", "ServerSession", "Call", "Send", "Release", "Close", "ServerEvent", "Route", "ROUTES",
    "DEFAULT_MAX_MSIZE", "DEFAULT_MAX_FIDS", "linux_error", "current_connection", "ReadBuffer",
]

F = TypeVar("F")

#: Linux proposes 512 KiB at most by default for fd transports and 128 KiB for TCP; 1 MiB + the
#: I/O header covers both with room, and bounds what one frame may make the server buffer.
DEFAULT_MAX_MSIZE = 1024 * 1024 + c.P9_IOHDRSZ
DEFAULT_MAX_FIDS = 4096  # r[9p2000l.server.limits]
_MAX_OFFSET = 1 << 63  # offsets from here up are negative as a host off_t (r[9p2000l.server.io])
_READ_HEADER = HEADER_SIZE + 4  # Rread/Rreaddir: header and count[4] (r[9p2000l.version.iounit])
_RREAD_HEAD = struct.Struct("<IBHI")  # size[4] type[1] tag[2] count[4]
_RREAD_TYPE = 117


class ReadBuffer(bytearray):
    """Room for an Rread's data with its frame's header in front. A handler reads into
    ``data()`` and answers ``answer(count)``; the session writes the header into the front and
    sends the buffer itself: the data is not copied into a new frame (for 64 KiB Rreads that
    copy, and the bytes object it made, were a fifth of the server's time)."""

    def __init__(self, count: int) -> None:
        super().__init__(_READ_HEADER + count)
        self.answered = -1  # the data's length, once answered

    def data(self) -> memoryview:
        """Where the data goes: everything after the header's room."""
        return memoryview(self)[_READ_HEADER:]

    def answer(self, count: int) -> m.Rread:
        """The Rread of the first ``count`` bytes of ``data()``."""
        self.answered = count
        return m.Rread(data=cast(bytes, memoryview(self)[_READ_HEADER:_READ_HEADER + count]))

#: The connection a handler call serves (its ``ServerSession``), for what a handler keeps per
#: client across fids: POSIX lock owners are (connection, proc_id, client_id)
#: (r[9p2000l.server.lock]). The shell that runs a session sets it; None outside one.
current_connection: ContextVar[object | None] = ContextVar("jetwire.p9.current_connection", default=None)


def linux_error(name: str) -> OSError:
    """An ``OSError`` for the errno called ``name`` on this host; what the wire carries is the
    Linux number for that name (``error_to_rmessage`` translates)."""
    number = getattr(host_errno, name)
    return OSError(number, f"{name}")


class Handler(Generic[F]):
    """What a server serves: one method per request, named as the message without its ``T``.

    Each gets the request and the objects of the fids it names (in the message's field order;
    Tattach's ``afid`` is None for NOFID). A method that makes a fid (``auth``, ``attach``,
    ``xattrwalk``, and ``walk`` when the walk reaches every name) returns the reply and the new
    fid's object; ``walk`` returns None as the object for a short walk. Raising ``OSError``
    answers Rlerror with its errno; any other exception answers EIO. Every default answers
    EOPNOTSUPP, which makes the Linux client fall back where it can (Tunlinkat → Tremove,
    Trenameat → Trename) and fail cleanly elsewhere.

    ``read_only`` makes the session refuse every change with EROFS before the handler is called
    (r[9p2000l.server.read-only]).
    """

    read_only: bool = False

    steps_inline: bool = False
    """True when every method may take its first step, up to its first wait, on the connection's
    own task: the server then answers a call that never waits without making a task for it.
    Leave it False if a method relies on its task before its first ``await``
    (``asyncio.current_task()``, ``asyncio.timeout``, ``TaskGroup``): each call then runs whole
    in a task of its own."""

    def release(self, fid: F) -> None:
        """The fid is gone (clunked, removed, replaced by a walk in place, or its connection or
        session ended) and no call is using it: close what it holds. Must not raise."""

    async def auth(self, msg: m.Tauth) -> tuple[m.Rauth, F]:
        # r[9p2000l.server.auth] names EOPNOTSUPP, but diod's own tools (diodls, diodcat) take
        # only ENOENT, diod's answer, as "no authentication needed" and give up on any other
        raise linux_error("ENOENT")

    async def attach(self, msg: m.Tattach, afid: F | None) -> tuple[m.Rattach, F]:
        raise linux_error("EOPNOTSUPP")

    async def walk(self, msg: m.Twalk, fid: F) -> tuple[m.Rwalk, F | None]:
        raise linux_error("EOPNOTSUPP")

    async def clunk(self, msg: m.Tclunk, fid: F) -> m.Rclunk:
        return m.Rclunk()

    async def remove(self, msg: m.Tremove, fid: F) -> m.Rremove:
        raise linux_error("EOPNOTSUPP")

    async def statfs(self, msg: m.Tstatfs, fid: F) -> m.Rstatfs:
        raise linux_error("EOPNOTSUPP")

    async def lopen(self, msg: m.Tlopen, fid: F) -> m.Rlopen:
        raise linux_error("EOPNOTSUPP")

    async def lcreate(self, msg: m.Tlcreate, fid: F) -> m.Rlcreate:
        raise linux_error("EOPNOTSUPP")

    async def symlink(self, msg: m.Tsymlink, fid: F) -> m.Rsymlink:
        raise linux_error("EOPNOTSUPP")

    async def mknod(self, msg: m.Tmknod, dfid: F) -> m.Rmknod:
        raise linux_error("EOPNOTSUPP")

    async def rename(self, msg: m.Trename, fid: F, dfid: F) -> m.Rrename:
        raise linux_error("EOPNOTSUPP")

    async def readlink(self, msg: m.Treadlink, fid: F) -> m.Rreadlink:
        raise linux_error("EOPNOTSUPP")

    async def getattr(self, msg: m.Tgetattr, fid: F) -> m.Rgetattr:
        raise linux_error("EOPNOTSUPP")

    async def setattr(self, msg: m.Tsetattr, fid: F) -> m.Rsetattr:
        raise linux_error("EOPNOTSUPP")

    async def xattrwalk(self, msg: m.Txattrwalk, fid: F) -> tuple[m.Rxattrwalk, F]:
        raise linux_error("EOPNOTSUPP")

    async def xattrcreate(self, msg: m.Txattrcreate, fid: F) -> m.Rxattrcreate:
        raise linux_error("EOPNOTSUPP")

    async def readdir(self, msg: m.Treaddir, fid: F) -> m.Rreaddir:
        raise linux_error("EOPNOTSUPP")

    async def fsync(self, msg: m.Tfsync, fid: F) -> m.Rfsync:
        raise linux_error("EOPNOTSUPP")

    async def lock(self, msg: m.Tlock, fid: F) -> m.Rlock:
        raise linux_error("EOPNOTSUPP")

    async def getlock(self, msg: m.Tgetlock, fid: F) -> m.Rgetlock:
        raise linux_error("EOPNOTSUPP")

    async def link(self, msg: m.Tlink, dfid: F, fid: F) -> m.Rlink:
        raise linux_error("EOPNOTSUPP")

    async def mkdir(self, msg: m.Tmkdir, dfid: F) -> m.Rmkdir:
        raise linux_error("EOPNOTSUPP")

    async def renameat(self, msg: m.Trenameat, olddirfid: F, newdirfid: F) -> m.Rrenameat:
        raise linux_error("EOPNOTSUPP")

    async def unlinkat(self, msg: m.Tunlinkat, dirfd: F) -> m.Runlinkat:
        raise linux_error("EOPNOTSUPP")

    async def read(self, msg: m.Tread, fid: F) -> m.Rread:
        raise linux_error("EOPNOTSUPP")

    async def write(self, msg: m.Twrite, fid: F) -> m.Rwrite:
        raise linux_error("EOPNOTSUPP")


# -- the protocol's rules, as data ------------------------------------------------------------------

class Route(NamedTuple):
    """How the session treats one request type before and after its handler method runs."""

    method: str  # the Handler method
    uses: tuple[str, ...]  # fields naming fids that must exist, passed to the method in this order
    creates: str | None  # a field naming a fid the call makes (unless it is one it uses: a walk in place)
    frees: str | None  # a field naming a fid that is gone whatever the answer (clunk, remove)
    changes: bool  # refused with EROFS on a read-only export (r[9p2000l.server.read-only])
    names: tuple[str, ...]  # fields holding one name each, checked by r[9p2000l.server.walk.names]


_METHODS: dict[type, str] = {
    m.Tauth: "auth", m.Tattach: "attach", m.Twalk: "walk", m.Tclunk: "clunk", m.Tremove: "remove", m.Tstatfs: "statfs",
    m.Tlopen: "lopen", m.Tlcreate: "lcreate", m.Tsymlink: "symlink", m.Tmknod: "mknod", m.Trename: "rename",
    m.Treadlink: "readlink", m.Tgetattr: "getattr", m.Tsetattr: "setattr", m.Txattrwalk: "xattrwalk",
    m.Txattrcreate: "xattrcreate", m.Treaddir: "readdir", m.Tfsync: "fsync", m.Tlock: "lock", m.Tgetlock: "getlock",
    m.Tlink: "link", m.Tmkdir: "mkdir", m.Trenameat: "renameat", m.Tunlinkat: "unlinkat", m.Tread: "read",
    m.Twrite: "write",
}
# Tlopen changes nothing by itself: its flags decide (_opens_for_change)
_CHANGES = frozenset({
    m.Tlcreate, m.Tmkdir, m.Tsymlink, m.Tmknod, m.Tlink, m.Trename, m.Trenameat, m.Tunlinkat, m.Tremove, m.Tsetattr,
    m.Txattrcreate, m.Twrite,
})
_NAMES: dict[type, tuple[str, ...]] = {
    m.Tlcreate: ("name",), m.Tmkdir: ("name",), m.Tsymlink: ("name",), m.Tmknod: ("name",), m.Tlink: ("name",),
    m.Trename: ("name",), m.Trenameat: ("oldname", "newname"), m.Tunlinkat: ("name",),
}
ROUTES: dict[type, Route] = {
    kind: Route(
        method=method,
        uses=FID_ROLES[kind].uses,
        creates=FID_ROLES[kind].creates,
        frees=FID_ROLES[kind].frees,
        changes=kind in _CHANGES,
        names=_NAMES.get(kind, ()),
    )
    for kind, method in _METHODS.items()
}
_OPTIONAL_FIDS = frozenset({(m.Tattach, "afid")})  # NOFID here means "none" (r[9p2000l.server.auth])
_REQUEST_NUMBERS = frozenset(n for meta in m.Tmessage.__metadata__ for n in meta.tags)  # type: ignore[attr-defined]
_FORBIDDEN_NAMES = frozenset({"", ".", ".."})
# the requests _refusal may refuse on a writable export; every other one passes it untouched
_CHECKED = frozenset({m.Twalk, m.Tread, m.Twrite, *_NAMES})
# every reply is encoded straight from (tag, message): no Rframe object made only to be encoded
_encode_reply = frame_encoder(m.Rframe)


def _bad_name(name: str, walking: bool) -> bool:
    """r[9p2000l.server.walk.names]: `..` may be walked, never created or removed by name."""
    if name in _FORBIDDEN_NAMES:
        return not (walking and name == "..")
    return "/" in name or "\0" in name


def _opens_for_change(flags: int) -> bool:
    return (flags & c.P9_ACCMODE) != c.P9_RDONLY or bool(flags & (c.P9_TRUNC | c.P9_APPEND))


# -- events -----------------------------------------------------------------------------------------

class _Fid:
    """One entry of the fid table: the handler's object and who is using it."""

    __slots__ = ("busy", "gone", "number", "obj", "ready", "retired", "waiting")

    def __init__(self, number: int) -> None:
        self.number = number
        self.obj: Any = None
        self.ready = False  # False while the call that makes it is still running
        self.busy = 0  # calls using the object right now
        self.gone = False  # out of the table: release the object once nothing uses it
        self.waiting: list[Call] = []  # a Tclunk/Tremove held until the calls before it finish
        self.retired: list[Any] = []  # objects a walk in place replaced while other calls used them


class Call:
    """Work for the handler: ``await getattr(handler, call.method)(call.msg, *call.args)``,
    then ``session.complete(call, result_or_exception)``."""

    __slots__ = ("abandoned", "args", "entries", "flushes", "frees", "made", "method", "msg", "tag")

    def __init__(self, tag: int, msg: Any, method: str, entries: list[_Fid | None],
                 args: tuple[Any, ...] | None = None) -> None:
        self.tag = tag
        self.msg = msg
        self.method = method
        self.entries = entries
        # ``args``: the entries' objects, when the caller has them at hand already
        self.args = tuple(None if e is None else e.obj for e in entries) if args is None else args
        self.made: _Fid | None = None  # the reserved entry of a fid this call creates
        self.frees: _Fid | None = None  # the entry a clunk or remove takes out
        self.flushes: list[int] = []  # tags of Tflushes answered right after this call's reply
        self.abandoned = False  # a Tversion reset or the end of the connection: send nothing

    def __repr__(self) -> str:
        return f"Call(tag={self.tag}, {self.msg!r})"


class Send(NamedTuple):
    """Bytes to write to the client: whole frames, in order (a memoryview for an Rread sent
    from its ``ReadBuffer``)."""

    data: bytes | memoryview


class Release(NamedTuple):
    """A fid object no fid and no call holds any more: ``handler.release(obj)``."""

    obj: Any


class Close(NamedTuple):
    """The stream cannot go on (r[9p2000l.server.malformed]): close the connection, then
    ``session.close()`` releases what it held."""

    reason: str


ServerEvent = Call | Send | Release | Close


class _Flush:
    """A Tflush in flight: answered once the call it waits for has been answered."""

    __slots__ = ("flushes", "tag")

    def __init__(self, tag: int) -> None:
        self.tag = tag
        self.flushes: list[int] = []


class ServerSession:
    """One client connection's protocol state (r[9p2000l.server.version.negotiate] and onwards).

    ``receive(data)`` returns events: ``Call`` to run, ``Send`` to write, ``Release`` for the
    handler, ``Close`` to end the connection. ``complete(call, result)`` returns the events the
    finished call brings (its reply, Rflushes that waited for it, a Tclunk that waited for the
    fid, releases). Nothing here blocks or does I/O.
    """

    def __init__(self, max_msize: int = DEFAULT_MAX_MSIZE, max_fids: int = DEFAULT_MAX_FIDS,
                 read_only: bool = False, versions: Sequence[str] = (c.VERSION_9P2000L,)) -> None:
        if max_msize < c.LINUX_MIN_MSIZE:
            raise ValueError(f"max_msize {max_msize} is below {c.LINUX_MIN_MSIZE}, the least Linux accepts")
        self.max_msize = max_msize
        self.max_fids = max_fids
        self.read_only = read_only
        self.versions = tuple(versions)
        self.msize = max_msize  # the negotiated value once ``negotiated``
        self.negotiated = False
        self.closed = False
        self.reader: FrameReader[m.Tframe] = FrameReader(m.Tframe, max_size=max_msize)
        self.fids: dict[int, _Fid] = {}
        self.in_flight: dict[int, Call | _Flush] = {}
        self.requests = 0  # frames received whole, for the connection's log line
        self.more = False  # receive() stopped at max_frames with bytes still buffered

    # -- bytes in ---------------------------------------------------------------------------------

    def receive(self, data: bytes | bytearray | memoryview = b"", max_frames: int | None = None) -> list[ServerEvent]:
        """Feeds bytes from the client; returns what they start, in order. With ``max_frames``
        at most that many frames are taken; ``more`` then says whether whole frames are left
        for a later ``receive()`` (r[9p2000l.server.limits]: a shell bounds the calls it runs
        this way, however many small requests one read brought). After a ``Close`` nothing
        more is read."""
        self.more = False
        if self.closed:
            return []
        if data:
            self.reader.feed(data)
        events: list[ServerEvent] = []
        taken = 0
        while not self.closed:
            if max_frames is not None and taken >= max_frames:
                self.more = self.reader.buffered > 0
                break
            taken += 1
            try:
                frame = self.reader.next_frame()
            except FrameError as exc:
                self._bad_frame(exc, events)
                continue
            if frame is None:
                break
            self.requests += 1
            self._request(frame.tag, frame.msg, events)
        return events

    def _bad_frame(self, exc: FrameError, events: list[ServerEvent]) -> None:
        size, kind, tag = exc.size, exc.type, exc.tag
        unknown_type = (
            kind is not None and tag is not None and size is not None
            and HEADER_SIZE <= size <= self.reader.max_size and kind not in _REQUEST_NUMBERS
        )
        if unknown_type and tag not in self.in_flight:
            # r[9p2000l.server.unknown-type]: the reader has skipped the body by its size
            assert tag is not None
            self.requests += 1
            events.append(Send(self._frame(tag, m.Rlerror(ecode=c.EOPNOTSUPP))))
            return
        self._close(f"malformed frame: {exc}", events)

    def _close(self, reason: str, events: list[ServerEvent]) -> None:
        self.closed = True
        events.append(Close(reason))

    def _request(self, tag: int, msg: Any, events: list[ServerEvent]) -> None:
        if tag in self.in_flight:
            # r[9p2000l.server.malformed]: no reply could be matched to either request
            self._close(f"tag {tag} reused while its request is in flight", events)
            return
        kind = msg.__class__
        if kind is m.Tversion:
            self._version(tag, msg, events)
        elif not self.negotiated:
            events.append(self._error(tag, c.EPROTO))  # r[9p2000l.server.version.first]
        elif kind is m.Tflush:
            self._flush(tag, msg.oldtag, events)
        else:
            self._dispatch(tag, msg, ROUTES[kind], events)

    # -- version and flush ------------------------------------------------------------------------

    def _version(self, tag: int, msg: m.Tversion, events: list[ServerEvent]) -> None:
        self._reset(events)  # r[9p2000l.server.version.reset]: before the answer, whatever it is
        if msg.msize < c.LINUX_MIN_MSIZE:
            events.append(self._error(tag, c.EINVAL))  # r[9p2000l.server.version.min-msize]
            return
        version = next((v for v in self.versions if msg.version == v or msg.version.startswith(v + ".")), None)
        msize = min(msg.msize, self.max_msize)
        if version is None:
            events.append(Send(self._frame(tag, m.Rversion(msize=msize, version="unknown"))))
            return
        self.msize = msize
        self.reader.max_size = msize
        self.negotiated = True
        events.append(Send(self._frame(tag, m.Rversion(msize=msize, version=version))))

    def _reset(self, events: list[ServerEvent]) -> None:
        """Drops every fid and abandons every request in flight (a new session, or the end)."""
        self.negotiated = False
        for work in self.in_flight.values():
            if isinstance(work, Call):
                work.abandoned = True
        self.in_flight.clear()
        for entry in self.fids.values():
            entry.gone = True
            if entry.ready and entry.busy == 0:
                events.append(Release(entry.obj))
        self.fids.clear()

    def _flush(self, tag: int, oldtag: int, events: list[ServerEvent]) -> None:
        target = self.in_flight.get(oldtag)
        if target is None:
            events.append(Send(self._frame(tag, m.Rflush())))  # r[9p2000l.server.flush]: nothing to wait for
            return
        # r[9p2000l.server.flush]: work is never aborted; the Rflush follows the flushed reply
        target.flushes.append(tag)
        self.in_flight[tag] = _Flush(tag)

    # -- requests ---------------------------------------------------------------------------------

    def _dispatch(self, tag: int, msg: Any, route: Route, events: list[ServerEvent]) -> None:
        kind = msg.__class__
        frees = self.fids.get(getattr(msg, route.frees)) if route.frees is not None else None
        if frees is not None and frees.ready:
            # r[9p2000l.server.fid.clunk], r[9p2000l.server.fid.remove]: gone whatever the answer
            del self.fids[frees.number]
            frees.gone = True
        elif frees is not None:
            frees = None  # still being made: it is not a fid yet
        refusal = self._refusal(msg, route) if kind in _CHECKED or self.read_only else None
        if refusal is not None:
            events.append(self._error(tag, refusal))
            if frees is not None:  # gone all the same: released now, or by the last call still using it
                frees.busy += 1
                self._unuse(frees, events)
            return
        if kind is m.Tread or kind is m.Treaddir:
            limit = self.msize - _READ_HEADER  # r[9p2000l.server.io]: the reply's frame fits msize
            if msg.count > limit:
                msg = kind(fid=msg.fid, offset=msg.offset, count=limit)
        entries: list[_Fid | None] = []
        args: list[Any] = []
        for field in route.uses:
            number = getattr(msg, field)
            entry = frees if frees is not None and number == frees.number else self.fids.get(number)
            if entry is None and number == c.NOFID and (kind, field) in _OPTIONAL_FIDS:
                entries.append(None)
                args.append(None)
                continue
            if entry is None or not entry.ready:
                events.append(self._error(tag, c.EBADF))  # r[9p2000l.server.fid.unknown]
                return
            entries.append(entry)
            args.append(entry.obj)
        made = None
        if route.creates is not None:
            number = getattr(msg, route.creates)
            # only a walk may make its fid anew in place (r[9p2000l.server.walk.clone]); a Tattach
            # whose fid and afid are both NOFID, or a Txattrwalk onto its own fid, makes a fid in use
            if kind is not m.Twalk or number != msg.fid:
                if number in self.fids or number == c.NOFID:
                    events.append(self._error(tag, c.EEXIST))  # r[9p2000l.server.fid.in-use]
                    return
                if len(self.fids) >= self.max_fids:
                    events.append(self._error(tag, c.EMFILE))  # r[9p2000l.server.limits]
                    return
                made = self.fids[number] = _Fid(number)
        call = Call(tag, msg, route.method, entries, tuple(args))
        call.made = made
        call.frees = frees
        self.in_flight[tag] = call
        for entry in entries:
            if entry is not None and entry is not frees:
                entry.busy += 1
        if frees is not None and frees.busy:
            frees.waiting.append(call)  # r[9p2000l.server.fid.clunk]: after the calls before it
            return
        if frees is not None:
            frees.busy += 1
        events.append(call)

    def _refusal(self, msg: Any, route: Route) -> int | None:
        """The errno that refuses ``msg`` before any handler sees it, or None."""
        kind = msg.__class__
        if kind is m.Twalk:
            if len(msg.wnames) > c.MAXWELEM:
                return c.EINVAL  # r[9p2000l.server.walk.max]
            for name in msg.wnames:
                if _bad_name(name, walking=True):
                    return c.EINVAL  # r[9p2000l.server.walk.names]
        for field in route.names:
            if _bad_name(getattr(msg, field), walking=False):
                return c.EINVAL
        if self.read_only and (route.changes or (kind is m.Tlopen and _opens_for_change(msg.flags))):
            return c.EROFS
        if (kind is m.Tread or kind is m.Twrite) and msg.offset >= _MAX_OFFSET:
            return c.EINVAL
        return None

    # -- completions ------------------------------------------------------------------------------

    def complete(self, call: Call, result: Any) -> list[ServerEvent]:
        """The handler has finished ``call`` with ``result`` (its return value, or the exception
        it raised); returns the events that follow."""
        events: list[ServerEvent] = []
        if self.in_flight.get(call.tag) is call:
            del self.in_flight[call.tag]
        reply, obj, unused = self._reply_of(call, result)
        if unused is not None:
            events.append(Release(unused))
        made = call.made
        if made is not None:
            if obj is not None and not call.abandoned and not made.gone:
                made.obj, made.ready = obj, True
            else:
                if self.fids.get(made.number) is made:
                    del self.fids[made.number]  # r[9p2000l.server.fid.no-leak-on-error]
                if obj is not None:
                    events.append(Release(obj))
        elif obj is not None:  # a walk in place: the fid now names what the walk reached
            entry = call.entries[0]
            assert entry is not None
            if entry.gone or call.abandoned:
                events.append(Release(obj))
            else:
                old, entry.obj = entry.obj, obj
                self._release_later(old, entry, events)
        if not call.abandoned:
            events.append(Send(self._frame(call.tag, reply)))
            if call.flushes:
                self._answer_flushes(call.flushes, events)
        for entry in call.entries:
            if entry is not None and entry is not call.frees:
                self._unuse(entry, events)
        if call.frees is not None:
            self._unuse(call.frees, events)
        return events

    def _release_later(self, old: Any, entry: _Fid, events: list[ServerEvent]) -> None:
        if entry.busy <= 1:  # only the call completing now used it
            events.append(Release(old))
        else:
            entry.retired.append(old)  # other calls still hold it: released when they are done

    def _unuse(self, entry: _Fid, events: list[ServerEvent]) -> None:
        entry.busy -= 1
        if entry.busy > 0:
            return
        entry.busy = 0
        if entry.waiting:
            call = entry.waiting.pop(0)
            entry.busy = 1
            if call.abandoned:
                self._unuse(entry, events)
            else:
                events.append(call)
            return
        for old in entry.retired:
            events.append(Release(old))
        entry.retired.clear()
        if entry.gone and entry.ready:
            events.append(Release(entry.obj))
            entry.ready = False  # released once

    def _answer_flushes(self, tags: list[int], events: list[ServerEvent]) -> None:
        for tag in tags:
            flush = self.in_flight.pop(tag, None)
            if isinstance(flush, _Flush):
                events.append(Send(self._frame(tag, m.Rflush())))
                self._answer_flushes(flush.flushes, events)

    def _reply_of(self, call: Call, result: Any) -> tuple[Any, Any, Any]:
        """The reply to send, the fid object the call made (or None), and an object the handler
        made that no fid will hold (or None): it is released at once."""
        if isinstance(result, BaseException):
            return self._rlerror(result), None, None
        obj = None
        if isinstance(result, tuple):
            result, obj = result
        reply: Any = result
        expected = _REPLY_OF[call.msg.__class__]
        if reply.__class__ is not expected:
            return m.Rlerror(ecode=c.EIO), None, obj  # a handler bug: the client still gets an answer
        if isinstance(reply, m.Rwalk) and obj is not None and len(reply.wqids) != len(call.msg.wnames):
            return reply, None, obj  # r[9p2000l.server.walk.partial]: a short walk makes no fid
        if isinstance(reply, (m.Rread, m.Rreaddir)) and len(reply.data) > call.msg.count:
            return m.Rlerror(ecode=c.EIO), None, obj
        return reply, obj, None

    @staticmethod
    def _rlerror(error: BaseException) -> m.Rlerror:
        reply = error_to_rmessage(error)
        if reply.ecode == 0:
            return m.Rlerror(ecode=c.EIO)  # r[9p2000l.server.errors]: never 0
        return reply

    # -- the end ----------------------------------------------------------------------------------

    def close(self) -> list[ServerEvent]:
        """The connection is gone (r[9p2000l.server.disconnect]): every fid leaves the table and
        every call still running is abandoned. Returns the releases due now; the rest come from
        ``complete`` as the abandoned calls finish."""
        events: list[ServerEvent] = []
        self.closed = True
        self._reset(events)
        return events

    # -- frames -----------------------------------------------------------------------------------

    def _frame(self, tag: int, msg: Any) -> bytes | memoryview:
        if msg.__class__ is m.Rread:
            view: Any = msg.data
            if view.__class__ is memoryview and view.obj.__class__ is ReadBuffer and view.nbytes == view.obj.answered:
                return _rread_in_place(tag, view)
        data = _encode_reply(tag, msg)
        if len(data) > self.msize and msg.__class__ is not m.Rversion:
            data = _encode_reply(tag, m.Rlerror(ecode=c.EMSGSIZE))  # a handler's reply too big
        return data

    def _error(self, tag: int, ecode: int) -> Send:
        return Send(self._frame(tag, m.Rlerror(ecode=ecode)))


def _rread_in_place(tag: int, view: memoryview) -> memoryview:
    """The Rread frame of ``view`` (``ReadBuffer.answer``'s data): its header written into the
    room in front of the data, the buffer sent as it is. The count cannot pass msize: the session
    cut the Tread's count to fit, and a longer answer is refused before this (_reply_of)."""
    buffer = cast(ReadBuffer, view.obj)
    size = _READ_HEADER + buffer.answered
    _RREAD_HEAD.pack_into(buffer, 0, size, _RREAD_TYPE, tag, buffer.answered)
    return memoryview(buffer)[:size]

"""The sans-I/O ``ServerSession`` byte by byte: frames in, events out, with a toy handler whose
calls the test completes by hand, in any order. Each test cites the rule of
../shared/spec/9p2000L.md ("Server behaviour") that it proves.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import pytest

from jetwire.p9 import (
    Qid,
    Rattach,
    Rclunk,
    Rflush,
    Rframe,
    Rgetattr,
    Rlerror,
    Rread,
    Rremove,
    Rversion,
    Rwalk,
    Tattach,
    Tauth,
    Tclunk,
    Tflush,
    Tframe,
    Tgetattr,
    Tlopen,
    Tmkdir,
    Tread,
    Tremove,
    Tunlinkat,
    Tversion,
    Twalk,
    Twrite,
    Txattrwalk,
)
from jetwire.p9 import constants as c
from jetwire.p9.server import Call, Close, Handler, Release, Send, ServerSession

ROOT_QID = Qid(type=c.P9_QTDIR, version=0, path=1)


def frame(tag: int, msg: Any) -> bytes:
    data: bytes = Tframe(tag=tag, msg=msg).encode()
    return data


def replies(events: list[Any]) -> list[tuple[int, Any]]:
    """The frames among ``events``, decoded."""
    out = []
    for event in events:
        if isinstance(event, Send):
            decoded = Rframe.decode(event.data)
            out.append((decoded.tag, decoded.msg))
    return out


def calls(events: list[Any]) -> list[Call]:
    return [e for e in events if isinstance(e, Call)]


def released(events: list[Any]) -> list[Any]:
    return [e.obj for e in events if isinstance(e, Release)]


def run(call: Call, handler: Handler[Any]) -> Any:
    """Runs ``call`` on ``handler`` to its result (a reply, a (reply, obj) pair, or an exception)."""
    try:
        return asyncio.run(getattr(handler, call.method)(call.msg, *call.args))
    except OSError as exc:
        return exc


class Toy(Handler[str]):
    """Fids are strings naming a path; every name exists except those starting with "missing"."""

    async def attach(self, msg: Tattach, afid: str | None) -> tuple[Rattach, str]:
        return Rattach(qid=ROOT_QID), "/"

    async def walk(self, msg: Twalk, fid: str) -> tuple[Rwalk, str | None]:
        qids = []
        for name in msg.wnames:
            if name.startswith("missing"):
                if not qids:
                    raise OSError(2, "no such file")
                return Rwalk(wqids=qids), None
            qids.append(Qid(type=0, version=0, path=len(qids) + 2))
        return Rwalk(wqids=qids), fid.rstrip("/") + "/" + "/".join(msg.wnames) if msg.wnames else fid

    async def getattr(self, msg: Tgetattr, fid: str) -> Rgetattr:
        return Rgetattr(valid=0, qid=ROOT_QID, mode=0, uid=0, gid=0, nlink=0, rdev=0, size=len(fid), blksize=0,
                        blocks=0, atime_sec=0, atime_nsec=0, mtime_sec=0, mtime_nsec=0, ctime_sec=0, ctime_nsec=0,
                        btime_sec=0, btime_nsec=0, gen=0, data_version=0)

    async def read(self, msg: Tread, fid: str) -> Rread:
        return Rread(data=b"x" * msg.count)

    async def remove(self, msg: Tremove, fid: str) -> Rremove:
        raise OSError(39, "not empty")

    async def clunk(self, msg: Tclunk, fid: str) -> Rclunk:
        if fid.endswith("bad"):
            raise OSError(5, "close failed")
        return Rclunk()


class Driver:
    """A session and a handler; ``send`` feeds frames and runs the calls they start to the end
    unless told to hold them."""

    def __init__(self, msize: int = 8192, read_only: bool = False, max_fids: int = 4096) -> None:
        self.handler = Toy()
        self.session = ServerSession(max_msize=msize, read_only=read_only, max_fids=max_fids)
        self.released: list[Any] = []

    def send(self, *frames: bytes, hold: bool = False) -> list[Any]:
        events = self.session.receive(b"".join(frames))
        return self.settle(events, hold)

    def settle(self, events: list[Any], hold: bool = False) -> list[Any]:
        out: list[Any] = []
        queue = list(events)
        while queue:
            event = queue.pop(0)
            if isinstance(event, Call) and not hold:
                queue[:0] = self.session.complete(event, run(event, self.handler))
                continue
            if isinstance(event, Release):
                self.released.append(event.obj)
            out.append(event)
        return out

    def finish(self, call: Call) -> list[Any]:
        return self.settle(self.session.complete(call, run(call, self.handler)))

    def ready(self) -> Driver:
        assert replies(self.send(frame(c.NOTAG, Tversion(msize=8192, version="9P2000.L"))))[0][1].msize == 8192
        assert isinstance(replies(self.send(frame(1, Tattach(fid=0, afid=c.NOFID, uname="", aname="",
                                                             n_uname=c.NONUNAME))))[0][1], Rattach)
        return self


def error_of(events: list[Any]) -> int:
    (_, msg), = replies(events)
    assert isinstance(msg, Rlerror), msg
    return int(msg.ecode)


# -- version ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("proposed", "answer"), [
    ("9P2000.L", "9P2000.L"), ("9P2000.L.Foo", "9P2000.L"), ("9P2000", "unknown"), ("9P2000.u", "unknown"),
    ("9P2000.Lx", "unknown"), ("xyz", "unknown"),
])
def test_version_answers_the_dialect_or_unknown(proposed: str, answer: str) -> None:
    # r[9p2000l.server.version.negotiate]: Rversion "unknown", never Rlerror, for other dialects
    d = Driver(msize=65560)
    (tag, reply), = replies(d.send(frame(c.NOTAG, Tversion(msize=1 << 20, version=proposed))))
    assert (tag, reply) == (c.NOTAG, Rversion(msize=65560, version=answer))
    assert d.session.negotiated is (answer != "unknown")


def test_version_msize_is_the_smaller_and_any_tag_is_answered() -> None:
    # r[9p2000l.server.version.negotiate]: min(proposed, maximum), the request's own tag
    d = Driver(msize=65560)
    assert replies(d.send(frame(7, Tversion(msize=5000, version="9P2000.L")))) == [
        (7, Rversion(msize=5000, version="9P2000.L"))]
    assert d.session.reader.max_size == 5000


def test_version_below_4096_is_refused_and_the_connection_kept() -> None:
    # r[9p2000l.server.version.min-msize]
    d = Driver()
    assert error_of(d.send(frame(c.NOTAG, Tversion(msize=4095, version="9P2000.L")))) == c.EINVAL
    assert not d.session.negotiated
    d.ready()


def test_requests_before_version_get_eproto() -> None:
    # r[9p2000l.server.version.first]
    d = Driver()
    assert error_of(d.send(frame(1, Tattach(fid=0, afid=c.NOFID, uname="", aname="", n_uname=0)))) == c.EPROTO
    d.ready()


def test_version_resets_fids_and_abandons_requests_in_flight() -> None:
    # r[9p2000l.server.version.reset]
    d = Driver().ready()
    d.send(frame(2, Twalk(fid=0, newfid=1, wnames=["a"])))
    (slow,) = calls(d.send(frame(3, Tgetattr(fid=1, request_mask=0x7FF)), hold=True))
    (walking,) = calls(d.send(frame(4, Twalk(fid=0, newfid=2, wnames=["b"])), hold=True))
    events = d.send(frame(c.NOTAG, Tversion(msize=8192, version="9P2000.L")))
    assert replies(events) == [(c.NOTAG, Rversion(msize=8192, version="9P2000.L"))]
    assert d.released == []  # both fids are in use by calls still running
    assert d.finish(slow) == [Release("/a")]  # no reply for a request from before the reset
    # the fid the walk made belongs to no session; the root it walked from is free now too
    assert d.finish(walking) == [Release("/b"), Release("/")]
    assert d.session.fids == {}
    d.ready()  # every fid number is free again


# -- frames ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", [112, 114, 124, 126, 6, 106, 7, 101, 200, 255])
def test_unknown_types_get_eopnotsupp_and_the_connection_goes_on(kind: int) -> None:
    # r[9p2000l.server.unknown-type]: skipped by size, answered with its tag
    d = Driver().ready()
    body = b"\x01\x02\x03\x04\x05"
    raw = struct.pack("<IBH", 7 + len(body), kind, 9) + body
    events = d.send(raw, frame(10, Tgetattr(fid=0, request_mask=1)))
    got = replies(events)
    assert got[0] == (9, Rlerror(ecode=c.EOPNOTSUPP))
    assert got[1][0] == 10 and isinstance(got[1][1], Rgetattr)
    assert not d.session.closed


@pytest.mark.parametrize("raw", [
    struct.pack("<I", 6) + b"\x00" * 10,  # size below 7
    struct.pack("<IBHI", 12, 120, 1, 0) + b"\x00",  # a Tclunk with a byte left over
    struct.pack("<IBH", 9, 120, 1) + b"\x00\x00",  # a Tclunk two bytes short
    struct.pack("<IBH", 8193, 118, 1),  # over the negotiated msize
])
def test_malformed_frames_close_the_connection(raw: bytes) -> None:
    # r[9p2000l.server.malformed]
    d = Driver().ready()
    events = d.send(raw)
    assert any(isinstance(e, Close) for e in events)
    assert d.session.receive(frame(5, Tgetattr(fid=0, request_mask=1))) == []  # nothing more is read


def test_over_the_maximum_before_version_closes() -> None:
    # r[9p2000l.server.malformed]: before negotiation the limit is the server's maximum
    d = Driver(msize=8192)
    assert any(isinstance(e, Close) for e in d.send(struct.pack("<IBH", 9000, 100, 0xFFFF)))


def test_a_tag_reused_while_in_flight_closes() -> None:
    # r[9p2000l.server.malformed]: no reply could be matched
    d = Driver().ready()
    d.send(frame(3, Tgetattr(fid=0, request_mask=1)), hold=True)
    assert any(isinstance(e, Close) for e in d.send(frame(3, Tgetattr(fid=0, request_mask=1))))


# -- fids ------------------------------------------------------------------------------------------

def test_unknown_fid_is_ebadf() -> None:
    # r[9p2000l.server.fid.unknown]
    d = Driver().ready()
    assert error_of(d.send(frame(2, Tgetattr(fid=9, request_mask=1)))) == c.EBADF


def test_auth_is_refused_and_a_fid_afid_is_unknown() -> None:
    # r[9p2000l.server.auth]: no afid is made; Tattach with another afid names no fid
    d = Driver().ready()
    assert error_of(d.send(frame(2, Tauth(afid=5, uname="", aname="", n_uname=0)))) == c.ENOENT
    assert 5 not in d.session.fids
    assert error_of(d.send(frame(3, Tattach(fid=1, afid=5, uname="", aname="", n_uname=0)))) == c.EBADF


def test_attach_accepts_an_empty_uname_and_many_attaches() -> None:
    # r[9p2000l.server.attach]
    d = Driver().ready()
    for fid in (1, 2, 3):
        (_, reply), = replies(d.send(frame(2, Tattach(fid=fid, afid=c.NOFID, uname="", aname="",
                                                      n_uname=c.NONUNAME))))
        assert reply == Rattach(qid=ROOT_QID)


@pytest.mark.parametrize("msg", [
    Tattach(fid=0, afid=c.NOFID, uname="", aname="", n_uname=0),
    Twalk(fid=0, newfid=0 + 1, wnames=[]),
    Txattrwalk(fid=0, newfid=1, name=""),
])
def test_a_fid_in_use_is_refused_and_left_as_it_was(msg: Any) -> None:
    # r[9p2000l.server.fid.in-use]
    d = Driver().ready()
    d.send(frame(2, Twalk(fid=0, newfid=1, wnames=["keep"])))
    assert error_of(d.send(frame(3, msg))) == c.EEXIST
    (_, reply), = replies(d.send(frame(4, Tgetattr(fid=1, request_mask=1))))
    assert reply.size == len("/keep")


def test_a_failed_walk_leaves_no_fid() -> None:
    # r[9p2000l.server.fid.no-leak-on-error], r[9p2000l.server.walk.partial]
    d = Driver().ready()
    assert error_of(d.send(frame(2, Twalk(fid=0, newfid=1, wnames=["missing"])))) == c.ENOENT
    (_, reply), = replies(d.send(frame(3, Twalk(fid=0, newfid=2, wnames=["a", "missing", "c"]))))
    assert reply == Rwalk(wqids=[Qid(type=0, version=0, path=2)])
    assert set(d.session.fids) == {0}
    assert error_of(d.send(frame(4, Tclunk(fid=2)))) == c.EBADF


def test_an_object_a_handler_made_for_a_short_walk_is_released() -> None:
    # r[9p2000l.server.walk.partial]: no fid holds it, so nothing may keep it open
    class Sloppy(Toy):
        async def walk(self, msg: Twalk, fid: str) -> tuple[Rwalk, str | None]:
            return Rwalk(wqids=[Qid(type=0, version=0, path=9)]), "/half"

    d = Driver().ready()
    d.handler = Sloppy()
    (_, reply), = replies(d.send(frame(2, Twalk(fid=0, newfid=1, wnames=["a", "b"]))))
    assert len(reply.wqids) == 1 and 1 not in d.session.fids
    assert d.released == ["/half"]


def test_a_short_walk_in_place_leaves_the_fid_as_it_was() -> None:
    # r[9p2000l.server.walk.partial]
    d = Driver().ready()
    d.send(frame(2, Twalk(fid=0, newfid=1, wnames=["x"])))
    d.send(frame(3, Twalk(fid=1, newfid=1, wnames=["y", "missing"])))
    (_, reply), = replies(d.send(frame(4, Tgetattr(fid=1, request_mask=1))))
    assert reply.size == len("/x")


def test_a_walk_in_place_moves_the_fid_and_releases_what_it_named() -> None:
    # r[9p2000l.server.walk.clone]
    d = Driver().ready()
    d.send(frame(2, Twalk(fid=0, newfid=1, wnames=[])))
    assert replies(d.send(frame(3, Twalk(fid=1, newfid=1, wnames=["y"]))))[0][1] == Rwalk(
        wqids=[Qid(type=0, version=0, path=2)])
    assert d.released == ["/"]
    assert d.session.fids[1].obj == "/y"


def test_clunk_frees_the_fid_even_when_it_fails() -> None:
    # r[9p2000l.server.fid.clunk]
    d = Driver().ready()
    d.send(frame(2, Twalk(fid=0, newfid=1, wnames=["bad"])))
    assert error_of(d.send(frame(3, Tclunk(fid=1)))) == c.EIO
    assert d.released == ["/bad"]
    assert error_of(d.send(frame(4, Tgetattr(fid=1, request_mask=1)))) == c.EBADF
    d.send(frame(5, Twalk(fid=0, newfid=1, wnames=["again"])))  # the number is free for reuse
    assert d.session.fids[1].obj == "/again"


def test_remove_frees_the_fid_even_when_it_fails() -> None:
    # r[9p2000l.server.fid.remove]
    d = Driver().ready()
    d.send(frame(2, Twalk(fid=0, newfid=1, wnames=["full"])))
    assert error_of(d.send(frame(3, Tremove(fid=1)))) == 39
    assert 1 not in d.session.fids and d.released == ["/full"]


def test_clunk_waits_for_calls_on_the_fid() -> None:
    # r[9p2000l.server.fid.clunk]: requests in progress finish, and are answered, before Rclunk
    d = Driver().ready()
    d.send(frame(2, Twalk(fid=0, newfid=1, wnames=["f"])))
    (reading,) = calls(d.send(frame(3, Tread(fid=1, offset=0, count=4)), hold=True))
    assert d.send(frame(4, Tclunk(fid=1)), hold=True) == []  # held: the read still uses the fid
    assert error_of(d.send(frame(5, Tgetattr(fid=1, request_mask=1)))) == c.EBADF  # but it is gone
    events = d.finish(reading)
    assert [tag for tag, _ in replies(events)] == [3, 4]
    assert d.released == ["/f"]


def test_fids_are_limited() -> None:
    # r[9p2000l.server.limits]: EMFILE, and clunking makes room again
    d = Driver(max_fids=3).ready()
    d.send(frame(2, Twalk(fid=0, newfid=1, wnames=[])), frame(3, Twalk(fid=0, newfid=2, wnames=[])))
    assert error_of(d.send(frame(4, Twalk(fid=0, newfid=3, wnames=[])))) == c.EMFILE
    assert set(d.session.fids) == {0, 1, 2}
    d.send(frame(5, Tclunk(fid=2)))
    assert replies(d.send(frame(6, Twalk(fid=0, newfid=3, wnames=[]))))[0][1] == Rwalk(wqids=[])


# -- walk ------------------------------------------------------------------------------------------

def test_seventeen_names_are_einval_and_change_nothing() -> None:
    # r[9p2000l.server.walk.max]
    d = Driver().ready()
    assert error_of(d.send(frame(2, Twalk(fid=0, newfid=1, wnames=["a"] * 17)))) == c.EINVAL
    assert error_of(d.send(frame(3, Twalk(fid=0, newfid=0, wnames=["a"] * 17)))) == c.EINVAL
    assert set(d.session.fids) == {0} and d.session.fids[0].obj == "/"
    assert len(replies(d.send(frame(4, Twalk(fid=0, newfid=1, wnames=["a"] * 16))))[0][1].wqids) == 16


@pytest.mark.parametrize("name", ["", ".", "a/b", "a\0b", "/"])
def test_bad_names_are_einval_in_walks(name: str) -> None:
    # r[9p2000l.server.walk.names]
    d = Driver().ready()
    assert error_of(d.send(frame(2, Twalk(fid=0, newfid=1, wnames=["ok", name])))) == c.EINVAL


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "a\0b"])
def test_bad_names_are_einval_in_every_message_that_names(name: str) -> None:
    # r[9p2000l.server.walk.names]: `..` too, when it names something to make or remove
    d = Driver().ready()
    assert error_of(d.send(frame(2, Tmkdir(dfid=0, name=name, mode=0o755, gid=0)))) == c.EINVAL
    assert error_of(d.send(frame(3, Tunlinkat(dirfd=0, name=name, flags=0)))) == c.EINVAL


# -- flush -----------------------------------------------------------------------------------------

def test_flush_of_nothing_is_answered_at_once() -> None:
    # r[9p2000l.server.flush]
    d = Driver().ready()
    assert replies(d.send(frame(2, Tflush(oldtag=77)))) == [(2, Rflush())]


def test_flush_is_answered_right_after_the_flushed_reply() -> None:
    # r[9p2000l.server.flush]: work is never aborted; its reply goes first
    d = Driver().ready()
    (reading,) = calls(d.send(frame(3, Tread(fid=0, offset=0, count=4)), hold=True))
    assert d.send(frame(4, Tflush(oldtag=3)), frame(5, Tflush(oldtag=4))) == []
    got = replies(d.finish(reading))
    assert got == [(3, Rread(data=b"xxxx")), (4, Rflush()), (5, Rflush())]


# -- limits on what a reply may carry --------------------------------------------------------------

def test_reads_are_cut_to_fit_msize() -> None:
    # r[9p2000l.server.io]: at most min(count, msize - 11)
    d = Driver(msize=8192).ready()
    (_, reply), = replies(d.send(frame(2, Tread(fid=0, offset=0, count=100000))))
    assert len(reply.data) == 8192 - 11


def test_offsets_from_2_63_are_einval() -> None:
    # r[9p2000l.server.io]
    d = Driver().ready()
    assert error_of(d.send(frame(2, Tread(fid=0, offset=1 << 63, count=1)))) == c.EINVAL


# -- read-only -------------------------------------------------------------------------------------

@pytest.mark.parametrize("msg", [
    Tmkdir(dfid=0, name="d", mode=0o755, gid=0), Tunlinkat(dirfd=0, name="f", flags=0),
    Twrite(fid=0, offset=0, data=b"x"), Tlopen(fid=0, flags=c.P9_WRONLY), Tlopen(fid=0, flags=c.P9_TRUNC),
    Tlopen(fid=0, flags=c.P9_APPEND),
])
def test_read_only_refuses_changes_with_erofs(msg: Any) -> None:
    # r[9p2000l.server.read-only]
    d = Driver(read_only=True).ready()
    assert error_of(d.send(frame(2, msg))) == c.EROFS


def test_read_only_remove_still_removes_the_fid() -> None:
    # r[9p2000l.server.read-only], r[9p2000l.server.fid.remove]
    d = Driver(read_only=True).ready()
    d.send(frame(2, Twalk(fid=0, newfid=1, wnames=["f"])))
    assert error_of(d.send(frame(3, Tremove(fid=1)))) == c.EROFS
    assert 1 not in d.session.fids and d.released == ["/f"]


# -- the end ---------------------------------------------------------------------------------------

def test_close_releases_every_fid_once_no_call_uses_it() -> None:
    # r[9p2000l.server.disconnect]
    d = Driver().ready()
    d.send(frame(2, Twalk(fid=0, newfid=1, wnames=["a"])), frame(3, Twalk(fid=0, newfid=2, wnames=["b"])))
    (reading,) = calls(d.send(frame(4, Tread(fid=2, offset=0, count=1)), hold=True))
    assert sorted(released(d.session.close())) == ["/", "/a"]
    assert d.settle(d.session.complete(reading, run(reading, d.handler))) == [Release("/b")]


def test_errors_are_never_zero() -> None:
    # r[9p2000l.server.errors]: an internal failure with no errno is EIO
    class Broken(Toy):
        async def getattr(self, msg: Tgetattr, fid: str) -> Rgetattr:
            raise OSError(0, "no errno")

    d = Driver().ready()
    d.handler = Broken()
    assert error_of(d.send(frame(2, Tgetattr(fid=0, request_mask=1)))) == c.EIO

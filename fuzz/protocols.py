"""Targets for the protocol layers built on the core: the RPC sessions (``jetwire.rpc.session``)
and the 9P file server (``jetwire.p9.server`` serving a ``LocalFilesystem``).

Each is fed what a hostile or broken peer could send: valid conversations, the same mutated,
garbage, in random chunks. The oracles are the protocols' own rules (``/work/shared/spec``): only
the session's events come out, every call is answered once in the right shape, a broken stream
ends cleanly, buffers stay within the frame limit, and the file server keeps to its export.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import os
import random
import shutil
import stat as st
import tempfile
from collections.abc import Callable, Iterator
from typing import Any, Optional

import jetwire as jw
from jetwire import rpc
from jetwire.compiler.planner import plan
from jetwire.p9 import Client, ProtocolError
from jetwire.p9 import constants as c
from jetwire.p9 import messages as m
from jetwire.p9.localfs import LocalFilesystem
from jetwire.p9.server import Call, Close, Release, Send, ServerSession, current_connection
from jetwire.p9.serving import serve
from jetwire.p9.session import _REPLY_OF
from jetwire.rpc import session as sessions
from jetwire.runtime.frames import FrameError, FrameReader
from jetwire.stdtypes import Backtrace

from .mutators import chunk_sizes, mutate, pieces
from .oracle import Finding, show, unexpected
from .values import Values

Event = tuple[Any, ...]


# ---------------------------------------------------------------------------------------------
# RPC: one service whose methods cover the shapes of bodies (empty, fixed, variable, nested)


@rpc.service(version="1.2.3")
class Fuzzed(rpc.Service):
    async def echo(self, text: str) -> str: ...

    async def add(self, a: jw.i32, b: jw.i32) -> jw.i32: ...

    async def nothing(self) -> None: ...

    async def blob(self, data: list[jw.u8], flag: Optional[jw.u16]) -> list[str]: ...

    async def fail(self, text: str) -> jw.Error: ...


SPEC = rpc.spec_of(Fuzzed)
FRAME_LIMITS = [7, 8, 16, 64] + [4096, 1 << 20, rpc.DEFAULT_MAX_FRAME_SIZE] * 4  # the tiny ones refuse most frames
GOOD_MSIZES = [64, 4096, 4096, 1 << 20]
MSIZES = [0, 1, 6, 7, 8, 15, 16, 64, 4096, 1 << 20, 0xFFFFFFFF]
NO_TRACE = Backtrace(intern_table=(), frames=())


def _versions(rng: random.Random) -> str:
    """A version string: the service's own, another of the same service, another service's,
    9P's, 'unknown', or one that does not parse."""
    return rng.choice([
        SPEC.version, SPEC.version, f"rs.jetstream.proto/{SPEC.name}/0.9.0", f"rs.jetstream.proto/{SPEC.name}/9.9.9",
        "rs.jetstream.proto/other/1.2.3", "9P2000.L", "9P2000", "unknown", "", "rs.jetstream.proto//",
        f"rs.jetstream.proto/{SPEC.name}/01.2.3", "\x00" * 3,
    ])


def _request(rng: random.Random, method: rpc.Method) -> Any:
    return Values(rng, size=3).of(plan(method.request))


def _response_value(rng: random.Random, method: rpc.Method) -> Any:
    """A valid value of the method's return (None for ``-> None``)."""
    if method.returns_none:
        return None
    return Values(rng, size=3).of(plan(method.response)).value


def _response(rng: random.Random, method: rpc.Method) -> Any:
    """A valid response message of the method."""
    return method.response() if method.returns_none else method.response(_response_value(rng, method))


def _event_key(event: Any) -> Event:
    """An event as comparable data: its class and its fields (errors by class and text)."""
    fields = []
    for name in type(event).__slots__:
        value = getattr(event, name)
        if isinstance(value, BaseException):
            value = (type(value).__name__, str(value))
        elif isinstance(value, rpc.Method):
            value = value.name
        fields.append((name, repr(value)))
    return (type(event).__name__, tuple(fields))


def _one_frame(frame_type: Any, data: bytes, what: str) -> Any:
    """The one frame ``data`` holds, or a Finding: an answer a session made must be exactly one
    well-formed frame."""
    reader = FrameReader(frame_type, max_size=1 << 32)
    reader.feed(data)
    try:
        frame = reader.next_frame()
    except FrameError as exc:
        raise Finding(f"{what} is not a frame that decodes", f"{exc}: {data[:80].hex()}") from None
    if frame is None or reader.buffered:
        raise Finding(f"{what} is not exactly one frame", f"{len(data)} bytes: {data[:80].hex()}")
    return frame


# --- the server session ------------------------------------------------------------------------

@dataclasses.dataclass
class RpcServerCase:
    max_frame_size: int
    require_version: bool
    debug: bool
    data: bytes
    answers_seed: int


def _rpc_client_stream(rng: random.Random) -> bytes:
    """What a client might send: a Tversion (or not), calls with tags fresh, reused or 0xFFFF,
    another Tversion now and then; often mutated."""
    frames = []
    roll = rng.random()
    if roll < 0.5:  # the handshake a good client makes
        frames.append(SPEC.Tframe(rpc.NOTAG, rpc.Tversion(rng.choice(GOOD_MSIZES), SPEC.version)).encode())
    elif roll < 0.85:
        frames.append(SPEC.Tframe(rng.choice([rpc.NOTAG] * 4 + [0, 1, 7]),
                                  rpc.Tversion(rng.choice(MSIZES), _versions(rng))).encode())
    tags = [rng.randint(0, 0xFFFF) for _ in range(3)] + [1, 2, rpc.NOTAG]
    for _ in range(rng.randint(0, 8)):
        if rng.random() < 0.1:
            frames.append(SPEC.Tframe(rng.choice(tags), rpc.Tversion(rng.choice(MSIZES), _versions(rng))).encode())
            continue
        method = rng.choice(SPEC.methods)
        frames.append(SPEC.Tframe(rng.choice(tags), _request(rng, method)).encode())
    data = b"".join(frames)
    roll = rng.random()
    if roll < 0.35:
        data = mutate(data, rng, data, rounds=rng.randint(1, 6))
    elif roll < 0.4:
        data = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 64)))
    return data


def _flood(rng: random.Random) -> bytes:
    """A pipelining client's burst: hundreds of calls sent at once, behind whatever came before."""
    tags = [1, 2, 3, rng.randint(0, 0xFFFE)]
    frames = []
    for _ in range(rng.randint(300, 1200)):
        method = rng.choice(SPEC.methods)
        frames.append(SPEC.Tframe(rng.choice(tags), _request(rng, method)).encode())
    return b"".join(frames)


def _rpc_server_case(rng: random.Random) -> RpcServerCase:
    return RpcServerCase(
        max_frame_size=rng.choice(FRAME_LIMITS),
        require_version=rng.random() < 0.5,
        debug=rng.random() < 0.3,
        data=_rpc_client_stream(rng),
        answers_seed=rng.getrandbits(64),
    )


class _RaisingStr:
    """Not a ``str``: what a handler returns by mistake; its ``__str__`` raises too."""

    def __str__(self) -> str:
        raise RuntimeError("no text")


def _answer(case: RpcServerCase, session: rpc.ServerSession, call: sessions.Call, rng: random.Random,
            out: list[Event]) -> None:
    """Answers ``call`` as a handler might (a value, a wrong value, an Error, a bare exception,
    a huge Error) and checks the bytes: one frame, the call's tag, the method's response or an
    Error, within the client's msize."""
    method = call.method
    roll = rng.random()
    try:
        if roll < 0.45:
            data = session.respond(call, _response_value(rng, method))
        elif roll < 0.55:
            from .targets import ODD_VALUES  # the encode target's odd values: protocols.py loads after it

            data = session.respond(call, rng.choice(ODD_VALUES + [_RaisingStr(), [b"no"]]))
        elif roll < 0.75:
            data = session.fail(call, jw.Error(rng.choice(["boom", "é" * 3000, "x" * 70000, "\ud800"]),
                                               code=rng.choice([None, "E1", "c" * 70000])))
        else:
            data = session.fail(call, rng.choice([KeyError("k"), RuntimeError("r" * 9000), ValueError(_RaisingStr())]))
    except Exception as exc:
        raise unexpected("ServerSession answering a call", exc) from None
    frame = _one_frame(SPEC.Rframe, data, "an answer")
    if frame.tag != call.tag:
        raise Finding("an answer carries another tag", f"call tag {call.tag}, answer tag {frame.tag}")
    if frame.msg.__class__ not in (method.response, jw.Error):
        raise Finding("an answer is neither the method's response nor an Error", show(frame.msg))
    smallest = len(SPEC.Rframe(call.tag, jw.Error("", backtrace=NO_TRACE)).encode())
    if session.peer_msize is not None and len(data) > max(session.peer_msize, smallest):
        raise Finding("an answer is over the client's msize", f"{len(data)} bytes, msize {session.peer_msize}")
    if rng.random() < 0.05:  # a second answer: refused, never sent
        try:
            session.respond(call, _response_value(rng, method))
        except rpc.LocalProtocolError:
            pass
        except Exception as exc:
            raise unexpected("ServerSession answering a call twice", exc) from None
        else:
            raise Finding("a call was answered twice", repr(call))
    out.append(("answer", frame.tag, frame.msg.__class__.__name__))


def _run_rpc_server(case: RpcServerCase, sizes: list[int] | None) -> list[Event]:
    """Feeds the case's bytes (whole or in chunks) to a ServerSession, answering its calls now
    or at the end as the case decides; the events, answers included."""
    session = rpc.ServerSession(SPEC, max_frame_size=case.max_frame_size, require_version=case.require_version,
                                debug=case.debug)
    events: list[Event] = []
    held: list[sessions.Call] = []
    calls = 0
    violated = False
    for piece in pieces(case.data, sizes):
        session.receive_data(piece)
        while True:
            try:
                event = session.next_event()
            except Exception as exc:
                raise unexpected("ServerSession.next_event", exc) from None
            if event is None:
                break
            events.append(_event_key(event))
            if violated:
                raise Finding("ServerSession gave an event after a Violation", show(event))
            if isinstance(event, sessions.Call):
                if event.method is not SPEC.by_request.get(event.request.__class__):
                    raise Finding("a Call names another method than its request's", repr(event))
                rng = random.Random(f"{case.answers_seed}:{calls}")
                calls += 1
                if rng.random() < 0.7:
                    _answer(case, session, event, rng, events)
                else:
                    held.append(event)
            elif isinstance(event, sessions.Send):
                frame = _one_frame(SPEC.Rframe, event.data, "a Send")
                if not isinstance(frame.msg, rpc.Rversion):
                    raise Finding("the session itself sent something other than an Rversion", show(frame.msg))
            elif isinstance(event, sessions.Violation):
                violated = True
            elif not isinstance(event, sessions.Ignored):
                raise Finding("ServerSession gave something that is not an event", show(event))
            if session.in_flight != len(held):
                raise Finding("ServerSession.in_flight miscounts", f"{session.in_flight}, {len(held)} unanswered")
        if session.closed is None and session.buffered >= max(case.max_frame_size, 4):
            raise Finding("ServerSession holds more than a frame", f"{session.buffered} bytes buffered, "
                          f"limit {case.max_frame_size}")
    rng = random.Random(f"{case.answers_seed}:end")
    rng.shuffle(held)
    for call in held:
        _answer(case, session, call, rng, events)
    if session.in_flight != 0:
        raise Finding("ServerSession.in_flight miscounts", f"{session.in_flight} after every call was answered")
    return events


def target_rpc_server(rng: random.Random, types: dict[str, Any]) -> str:
    """An RPC server session fed a client's bytes (handshakes, calls, reused tags; mutated, in
    chunks): only its events come out, each call is answered once with one frame of its tag
    within the client's msize, nothing follows a Violation, the same whole or chunked."""
    case = _rpc_server_case(rng)
    sizes = chunk_sizes(rng)
    whole = _run_rpc_server(case, None)
    chunked = _run_rpc_server(case, sizes)
    if whole != chunked:
        raise Finding("ServerSession: the chunking changes the events",
                      f"{case.data[:80].hex()}; chunks {sizes}: {show(chunked)}; whole: {show(whole)}")
    return f"{case.data[:48].hex()}: {len(whole)} events"


# --- the client session ------------------------------------------------------------------------

@dataclasses.dataclass
class RpcClientCase:
    max_frame_size: int
    max_tags: int
    handshake: bytes
    seed: int
    lost: bool


def _rpc_handshake(rng: random.Random) -> bytes:
    """What a server might answer the Tversion with: an Rversion (of any version and msize, any
    tag), an Error, a call's answer out of turn, garbage; often mutated."""
    roll = rng.random()
    tag = rng.choice([rpc.NOTAG] * 6 + [0, 1])
    if roll < 0.5:  # the answer a good server gives
        return bytes(SPEC.Rframe(rpc.NOTAG, rpc.Rversion(rng.choice(GOOD_MSIZES), SPEC.version)).encode())
    if roll < 0.75:
        data = SPEC.Rframe(tag, rpc.Rversion(rng.choice(MSIZES[3:] * 2 + MSIZES), _versions(rng))).encode()
    elif roll < 0.85:
        data = SPEC.Rframe(tag, jw.Error("no")).encode()
    elif roll < 0.95:
        method = rng.choice(SPEC.methods)
        data = SPEC.Rframe(tag, _response(rng, method)).encode()
    else:
        data = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 32)))
    if rng.random() < 0.25:
        data = mutate(data, rng, data)
    return bytes(data)


def _rpc_client_case(rng: random.Random) -> RpcClientCase:
    return RpcClientCase(
        max_frame_size=rng.choice(FRAME_LIMITS[1:]),  # 7 bytes: no Rversion ever fits
        max_tags=rng.choice([1, 2, 3, 100, sessions.MAX_TAGS]),
        handshake=_rpc_handshake(rng),
        seed=rng.getrandbits(64),
        lost=rng.random() < 0.4,
    )


def _server_answers(rng: random.Random, pending: dict[int, rpc.Method]) -> bytes:
    """What a server might send back: each call's answer right, wrong, an Error, twice or to a
    tag never used; shuffled, often mutated, sometimes cut short."""
    frames = []
    for tag, method in pending.items():
        roll = rng.random()
        if roll < 0.5:
            msg: Any = _response(rng, method)
        elif roll < 0.7:
            msg = jw.Error(rng.choice(["bad", "é" * 100]), code=rng.choice([None, "E"]))
        elif roll < 0.8:
            msg = _response(rng, rng.choice(SPEC.methods))
        elif roll < 0.85:
            msg = rpc.Rversion(4096, SPEC.version)
        else:
            continue  # never answered
        frames.append(SPEC.Rframe(rng.choice([tag] * 6 + [rng.getrandbits(16), 0, rpc.NOTAG]), msg).encode())
        if rng.random() < 0.1:
            frames.append(frames[-1])
    rng.shuffle(frames)
    data = b"".join(frames)
    roll = rng.random()
    if roll < 0.4:
        data = mutate(data, rng, data, rounds=rng.randint(1, 5))
    elif roll < 0.5:
        data = data[:rng.randint(0, len(data))]
    return data


def _drain_client(session: rpc.ClientSession, events: list[Event], batched: bool) -> None:
    """Takes every event the bytes received so far make: with ``next_event`` alone, or (batched)
    ``next_replies`` first each time, which must show the same."""
    while True:
        try:
            if batched:
                for tag, value in session.next_replies():
                    events.append(_event_key(sessions.Reply(tag, value)))
            event = session.next_event()
        except Exception as exc:
            raise unexpected("ClientSession.next_event", exc) from None
        if event is None:
            return
        events.append(_event_key(event))


def _run_rpc_client(case: RpcClientCase, sizes: list[int] | None, batched: bool) -> tuple[list[Event], bytes]:
    session = rpc.ClientSession(SPEC, max_frame_size=case.max_frame_size, max_tags=case.max_tags)
    hello = _one_frame(SPEC.Tframe, session.start(), "the client's Tversion")
    if not isinstance(hello.msg, rpc.Tversion) or hello.tag != rpc.NOTAG:
        raise Finding("the client's first frame is not a Tversion with NOTAG", show(hello))
    events: list[Event] = []
    for piece in pieces(case.handshake, sizes):
        session.receive_data(piece)
        _drain_client(session, events, batched)
    rng = random.Random(case.seed)
    pending: dict[int, rpc.Method] = {}
    abandoned: set[int] = set()
    data = b""
    if session.negotiated and session.broken is None:
        for _ in range(rng.randint(0, 8)):
            method = rng.choice(SPEC.methods)
            try:
                tag, _ = session.call(method, _request(rng, method))
            except (rpc.TagsExhausted, rpc.MsizeError) as exc:
                events.append(("refused", type(exc).__name__))
                continue
            except Exception as exc:
                raise unexpected("ClientSession.call", exc) from None
            if tag in pending or not 1 <= tag <= case.max_tags:
                raise Finding("ClientSession.call gave a tag in use or out of range",
                              f"{tag}, in use {sorted(pending)}")
            pending[tag] = method
            if rng.random() < 0.15:
                session.abandon(tag)
                abandoned.add(tag)
        data = _server_answers(rng, pending)
        for piece in pieces(data, sizes):
            session.receive_data(piece)
            _drain_client(session, events, batched)
            if session.broken is None and session._reader.buffered >= case.max_frame_size:
                raise Finding("ClientSession holds more than a frame",
                              f"{session._reader.buffered} bytes, limit {case.max_frame_size}")
    if case.lost:
        session.connection_lost(ConnectionResetError("reset") if rng.random() < 0.5 else None)
        _drain_client(session, events, batched)
    _check_client_events(case, session, events, pending, abandoned)
    return events, data


def _check_client_events(case: RpcClientCase, session: rpc.ClientSession, events: list[Event],
                         pending: dict[int, rpc.Method], abandoned: set[int]) -> None:
    """Every call answered at most once (abandoned ones never), nothing after Broken, and once
    the stream is lost every call has had its answer."""
    answered: set[int] = set()
    broken = False
    for event in events:
        kind = event[0]
        if kind in ("refused",):
            continue
        if broken:
            raise Finding("ClientSession gave an event after Broken", show(event))
        if kind in ("Reply", "Failed"):
            tag = int(dict(event[1])["tag"])
            if tag in answered or tag in abandoned or tag not in pending:
                raise Finding("ClientSession answered a tag twice, abandoned or never used", show(event))
            answered.add(tag)
        elif kind == "Broken":
            broken = True
        elif kind not in ("Negotiated", "Stray"):
            raise Finding("ClientSession gave something that is not an event", show(event))
    if broken or case.lost:
        if not broken:
            raise Finding("ClientSession: the stream was lost and no Broken came", show(events[-3:]))
        unanswered = set(pending) - answered - abandoned
        if unanswered or session.in_flight:
            raise Finding("ClientSession broke with calls unanswered",
                          f"tags {sorted(unanswered)}, in_flight {session.in_flight}")


def target_rpc_client(rng: random.Random, types: dict[str, Any]) -> str:
    """An RPC client session fed a server's bytes (any handshake answer; right, wrong, doubled,
    stray and mutated answers; the stream lost): only its events come out, each call answered
    at most once, every call failed once the stream breaks, the same whole or chunked and with
    ``next_replies`` or ``next_event`` alone."""
    case = _rpc_client_case(rng)
    sizes = chunk_sizes(rng)
    whole, data = _run_rpc_client(case, None, batched=False)
    chunked, _ = _run_rpc_client(case, sizes, batched=True)
    if whole != chunked:
        raise Finding("ClientSession: the chunking or next_replies changes the events",
                      f"{case.handshake.hex()} then {data[:80].hex()}; chunks {sizes}: {show(chunked)}; "
                      f"whole: {show(whole)}")
    return f"{case.handshake[:24].hex()} {data[:24].hex()}: {len(whole)} events"


TARGETS = {"rpc_server": target_rpc_server, "rpc_client": target_rpc_client}


# ---------------------------------------------------------------------------------------------
# 9P: the file server's session and a LocalFilesystem export, fed a client's requests

MARKER = b"fz-outside-secret"
"""In every file and name outside the export: a reply that carries it has read outside."""
NAMES = ["fz-a", "fz-b", "fz-dir", "fz-file", "fz-fifo", "fz-up", "fz-abs", "fz-self", "..", "fz-new"]
BAD_NAMES = [".", "", "fz/x", "../fz-a", "fz\0x", "x" * 300, "\udcff"]
FID_FIELDS = ("fid", "dfid", "newfid", "afid", "olddirfid", "newdirfid", "dirfd")
NAME_FIELDS = ("name", "oldname", "newname", "symtgt")
COUNTS = [0, 1, 7, 11, 4096, 8192, 65536, 0x7FFFFFFF, 0xFFFFFFFF]
OFFSETS = [0, 1, 2, 4096, 1 << 31, (1 << 63) - 1, 1 << 63, (1 << 64) - 1]


def _export(base: str) -> str:
    """A directory to export inside ``base``, beside one it must never reach: a file and a
    directory with the marker in name and content, and links from the export pointing there."""
    outside = os.path.join(base, "outside")
    os.makedirs(os.path.join(outside, MARKER.decode() + "-dir"))
    with open(os.path.join(outside, MARKER.decode()), "wb") as file:
        file.write(MARKER * 4)
    export = os.path.join(base, "export")
    os.makedirs(os.path.join(export, "fz-dir", "fz-a"))
    with open(os.path.join(export, "fz-file"), "wb") as file:
        file.write(b"inside " * 100)
    with open(os.path.join(export, "fz-dir", "fz-b"), "wb") as file:
        file.write(b"deeper")
    os.mkfifo(os.path.join(export, "fz-fifo"))
    os.symlink("../outside", os.path.join(export, "fz-up"))
    os.symlink(outside, os.path.join(export, "fz-abs"))
    os.symlink(".", os.path.join(export, "fz-self"))
    return export


def _tree(base: str, skip: str) -> dict[str, tuple[Any, ...]]:
    """Everything about the files under ``base`` but ``skip`` (the export) that a client could
    change: type, mode, owner, size, times, links, contents, link targets."""
    seen: dict[str, tuple[Any, ...]] = {}
    for where, dirs, files in os.walk(base):
        if where == skip:
            dirs[:] = []
            continue
        for name in dirs + files:
            path = os.path.join(where, name)
            if path == skip:
                continue
            info = os.lstat(path)
            content: Any = None
            if st.S_ISREG(info.st_mode):
                with open(path, "rb") as file:
                    content = hashlib.sha256(file.read()).hexdigest()
            elif st.S_ISLNK(info.st_mode):
                content = os.readlink(path)
            seen[path] = (info.st_mode, info.st_uid, info.st_gid, info.st_size, info.st_mtime_ns, info.st_nlink,
                          content)
        info = os.lstat(where)
        seen[where] = (info.st_mode, info.st_uid, info.st_gid, info.st_mtime_ns)
    return seen


def _open_descriptors() -> dict[str, str]:
    """This process's open descriptors and what each names."""
    found = {}
    for number in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the listing's own descriptor is gone already
            found[number] = os.readlink(f"/proc/self/fd/{number}")
    return found


class P9Client:
    """Draws a 9P2000.L conversation one request at a time, looking at the server's fid table
    as a client knows its own fids: mostly what a client would send (fids that exist, names
    that exist, counts and offsets at their edges), with the fids, names and tags a hostile one
    would use mixed in."""

    def __init__(self, rng: random.Random, session: Any) -> None:
        self.rng = rng
        self.session = session
        self.next_fid = 1
        self.kinds = [m.Twalk] * 8 + [m.Tlopen] * 4 + [m.Tread, m.Treaddir, m.Tclunk, m.Tgetattr, m.Twrite] * 2 + [
            m.Tattach, m.Tauth, m.Tremove, m.Tstatfs, m.Tlcreate, m.Tsymlink, m.Tmknod, m.Trename, m.Treadlink,
            m.Tsetattr, m.Txattrwalk, m.Txattrcreate, m.Tfsync, m.Tlock, m.Tgetlock, m.Tlink, m.Tmkdir,
            m.Trenameat, m.Tunlinkat, m.Tflush]
        self.io_kinds = frozenset({m.Tread, m.Twrite, m.Treaddir, m.Tfsync, m.Tlock, m.Tgetlock})

    def fid(self, new: bool = False, opened: bool = False) -> int:
        """A fid number: a new one, one the table holds (``opened``: open for I/O, when any
        is), or one it does not."""
        rng = self.rng
        roll = rng.random()
        if new and roll < 0.85:
            self.next_fid += 1
            return self.next_fid
        live: list[int] = sorted(number for number, entry in self.session.fids.items() if entry.ready)
        if opened:
            live = [n for n in live if getattr(self.session.fids[n].obj, "io", None) is not None] or live
        if live and roll < 0.9:
            return rng.choice(live)
        return rng.choice([0, 1, 2, self.next_fid + 1, 0xFFFFFFFF, rng.getrandbits(32)])

    def name(self) -> str:
        return self.rng.choice(BAD_NAMES if self.rng.random() < 0.08 else NAMES)

    def version(self) -> Any:
        rng = self.rng
        msize = rng.choice([8192, 65536 + 24, 0, 4095, 4096, 0xFFFFFFFF, rng.getrandbits(32)])
        version = rng.choice(["9P2000.L"] * 6 + ["9P2000.L.x", "9P2000", "9P2000.u", "", "9P2000.Lx"])
        return m.Tversion(msize=msize, version=version)

    def tag(self) -> int:
        rng = self.rng
        busy = self.session.in_flight
        if busy and rng.random() < 0.03:
            reused: int = rng.choice(sorted(busy))  # reused while in flight: the connection closes
            return reused
        while True:
            tag = rng.choice([rng.randint(0, 0xFFFF), rng.randint(1, 64), 0xFFFF])
            if tag not in busy:
                return tag

    def message(self) -> Any:
        rng = self.rng
        if not self.session.negotiated or rng.random() < 0.01:
            return self.version()
        if not self.session.fids or rng.random() < 0.02:
            return m.Tattach(fid=self.fid(new=True), afid=rng.choice([c.NOFID] * 9 + [1]), uname="fz",
                             aname=rng.choice(["", "", "/", "/etc"]), n_uname=rng.choice([0, c.NOFID]))
        kind = rng.choice(self.kinds)
        if kind is m.Tflush:
            return m.Tflush(oldtag=rng.choice(sorted(self.session.in_flight) or [0]) if rng.random() < 0.7
                            else rng.getrandbits(16))
        msg = Values(rng, size=2).of(plan(kind))
        values: dict[str, Any] = {}
        for field in dataclasses.fields(msg):
            name = field.name
            if name in FID_FIELDS:
                values[name] = self.fid(new=name == "newfid", opened=kind in self.io_kinds)
            elif name in NAME_FIELDS:
                values[name] = self.name()
            elif name == "wnames":
                values[name] = [self.name() for _ in range(rng.choice([0, 1, 1, 1, 2, 3, 16, 17]))]
            elif name == "count":
                values[name] = rng.choice(COUNTS)
            elif name in ("offset", "start", "length", "size", "attr_size"):
                values[name] = rng.choice(OFFSETS + [5, 100] + [0] * 4)
            elif name == "flags" and kind in (m.Tlopen, m.Tlcreate):
                values[name] = rng.choice([0, 0, 1, 2, 2, 0o100, 0o1000, 0o2000, 0o200000, 0o4000, rng.getrandbits(32)])
            elif name == "mode" and kind is not m.Tsetattr:
                values[name] = rng.choice([0o644, 0o755, 0o10644, 0o140644, 0o20644, 0o60644, rng.getrandbits(32)])
            elif name == "request_mask":
                values[name] = rng.choice([c.P9_GETATTR_ALL, rng.getrandbits(64)])
            elif name == "data":
                values[name] = bytes(rng.getrandbits(8) for _ in range(rng.choice([0, 1, 100])))
        return dataclasses.replace(msg, **values)

    def frame(self) -> bytes:
        """The next request's bytes: often as they should be, now and then mutated or garbage."""
        rng = self.rng
        msg = self.message()
        data = bytes(m.Tframe(tag=0xFFFF if msg.__class__ is m.Tversion else self.tag(), msg=msg).encode())
        roll = rng.random()
        if roll < 0.03:
            data = mutate(data, rng, data, rounds=rng.randint(1, 3))
        elif roll < 0.035:
            data += bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 40)))
        return data


@contextlib.contextmanager
def _scratch() -> Iterator[str]:
    base = tempfile.mkdtemp(prefix="jetwire-fuzz-p9-")
    try:
        yield base
    finally:
        for where, dirs, _ in os.walk(base):  # a client may have taken every permission away
            for name in dirs:
                path = os.path.join(where, name)
                if not os.path.islink(path):
                    with contextlib.suppress(OSError):
                        os.chmod(path, 0o700)
        shutil.rmtree(base, ignore_errors=True)


class P9ServerRun:
    """One connection's worth of a ServerSession and LocalFilesystem, driven without sockets:
    calls run at once or later in a random order, as a shell's tasks would finish."""

    def __init__(self, rng: random.Random, export: str) -> None:
        self.rng = rng
        self.max_fids = rng.choice([4, 16, 4096])
        self.session = ServerSession(max_msize=rng.choice([8192, 65536 + 24, 1024 * 1024 + 24]),
                                     max_fids=self.max_fids, read_only=rng.random() < 0.2)
        self.fs = LocalFilesystem(export, read_only=self.session.read_only,
                                  readdir_budget=rng.choice([0, 200, 1 << 20]))
        self.held: list[Any] = []
        self.released: dict[int, Any] = {}  # by id, holding each object: no id is reused
        self.made: dict[int, tuple[Any, Any]] = {}  # the fid objects the handler made, and the call
        self.out: list[bytes] = []

    def apply(self, events: list[Any], pending: list[Any]) -> None:
        for event in events:
            kind = event.__class__
            if kind is Send:
                self.out.append(bytes(event.data))
            elif kind is Call:
                pending.append(event)
            elif kind is Release:
                self.release(event.obj)
            elif kind is not Close:
                raise Finding("the 9P ServerSession gave something that is not an event", show(event))

    def release(self, obj: Any) -> None:
        if id(obj) in self.released:
            raise Finding("a fid object was released twice", show(obj))
        for call in self.held:
            if any(arg is obj for arg in call.args):
                raise Finding("a fid object was released while a call still holds it", f"{obj!r} by {call!r}")
        self.released[id(obj)] = obj
        self.fs.release(obj)

    async def run_call(self, call: Any) -> None:
        try:
            result: Any = await asyncio.wait_for(getattr(self.fs, call.method)(call.msg, *call.args), 20)
        except asyncio.TimeoutError:
            raise Finding(f"the 9P server's {call.method} hangs", repr(call)) from None
        except OSError as exc:
            result = exc
        except Exception as exc:
            raise unexpected(f"LocalFilesystem.{call.method}", exc) from None
        self.held.remove(call)
        if isinstance(result, tuple) and result[1] is not None:
            self.made[id(result[1])] = (result[1], call)
        start = len(self.out)
        events = self.session.complete(call, result)
        self.apply(events, self.waiting)
        replies = [frame for frame in self.out[start:] if int.from_bytes(frame[5:7], "little") == call.tag]
        if not call.abandoned:
            if not replies:
                raise Finding("a call's completion sent no reply", repr(call))
            reply = _one_frame(m.Rframe, replies[0], "a 9P reply").msg
            if reply.__class__ not in (_REPLY_OF[call.msg.__class__], m.Rlerror):
                raise Finding("a 9P reply of the wrong type", f"{show(reply)} to {call!r}")

    async def converse(self, client: P9Client, requests: int, sizes: list[int]) -> bytes:
        """Sends ``requests`` frames of ``client``'s, each in pieces of ``sizes``; runs the calls
        they start now or later, in any order; ends the connection (now and then with calls
        still running); returns the bytes sent."""
        rng = self.rng
        self.waiting: list[Any] = []
        sent = []
        for _ in range(requests):
            if self.session.closed:
                break
            data = client.frame()
            sent.append(data)
            for piece in pieces(data, sizes):
                self.receive(piece)
            while self.waiting or (self.held and rng.random() < 0.2):
                started = self.waiting[:]
                self.held.extend(started)
                self.waiting.clear()
                # most calls finish before the next request comes, in any order; some stay in
                # flight for a while, and finish among later ones
                if rng.random() < 0.2:
                    started = rng.sample(self.held, rng.randint(0, len(self.held)))
                elif rng.random() < 0.1:
                    break
                rng.shuffle(started)
                for call in started:
                    await self.run_call(call)
        self.held.extend(self.waiting)
        self.waiting.clear()
        if rng.random() < 0.5:
            self.apply(self.session.close(), self.waiting)
        while self.held or self.waiting:
            self.held.extend(self.waiting)
            self.waiting.clear()
            await self.run_call(rng.choice(self.held))
        self.apply(self.session.close(), self.waiting)
        kept = [call for obj, call in self.made.values() if id(obj) not in self.released]
        if kept:
            raise Finding("a fid object is never released", f"made by {kept[0]!r} ({len(kept)} in all)")
        if self.fs.snapshot_bytes(self.session):
            raise Finding("the 9P server's readdir budget is not given back after the connection",
                          f"{self.fs.snapshot_bytes(self.session)} bytes still held")
        return b"".join(sent)

    def receive(self, piece: bytes) -> None:
        rng = self.rng
        try:
            events = self.session.receive(piece, max_frames=rng.choice([None, 1, 4]))
            while True:
                self.apply(events, self.waiting)
                if not self.session.more:
                    break
                events = self.session.receive(max_frames=rng.choice([None, 1]))
        except Finding:
            raise
        except Exception as exc:
            raise unexpected("the 9P ServerSession.receive", exc) from None
        self.check_bounds()

    def check_bounds(self) -> None:
        session = self.session
        if len(session.fids) > self.max_fids:
            raise Finding("the 9P server holds more fids than its limit", f"{len(session.fids)} > {self.max_fids}")
        if session.reader.buffered > session.reader.max_size:
            raise Finding("the 9P server buffers more than a frame", f"{session.reader.buffered} bytes")
        held = self.fs.snapshot_bytes(session)
        if held > self.fs.readdir_budget:
            raise Finding("the 9P server holds more listings than its readdir budget",
                          f"{held} bytes, budget {self.fs.readdir_budget}")


def _check_replies(out: list[bytes], msize_limit: int) -> int:
    """Every frame the server sent decodes as a reply, Rlerror never carries 0, nothing carries
    the marker of the files outside the export."""
    for data in out:
        if MARKER in data:
            raise Finding("the 9P server sent what is outside its export", data[:200].hex())
        frame = _one_frame(m.Rframe, data, "a 9P reply")
        if isinstance(frame.msg, m.Rlerror) and frame.msg.ecode == 0:
            raise Finding("the 9P server sent Rlerror 0", data.hex())
        if len(data) > msize_limit:
            raise Finding("a 9P reply is over the largest msize", f"{len(data)} bytes")
    return len(out)


def target_p9_server(rng: random.Random, types: dict[str, Any]) -> str:
    """The 9P file server (ServerSession and a LocalFilesystem export) fed a client's requests
    (fids reused, `..` walks, links out of the export, huge counts, msize extremes; mutated, in
    chunks, calls finishing in any order): only events come out, every reply decodes, no call
    hangs, no fid object is released twice or while in use, no descriptor leaks, and nothing
    outside the export is read or changed."""
    sizes = chunk_sizes(rng) + [8192]
    requests = rng.randint(1, 60)
    with _scratch() as base:
        export = _export(base)
        before = _tree(base, export)
        descriptors = _open_descriptors()
        run = P9ServerRun(rng, export)
        loop = asyncio.new_event_loop()
        try:
            current_connection.set(run.session)
            data = loop.run_until_complete(run.converse(P9Client(rng, run.session), requests, sizes))
        finally:
            run.fs.close()
            loop.close()
        leaked = sorted(set(_open_descriptors().items()) - set(descriptors.items()))
        if leaked:
            raise Finding("the 9P server leaks descriptors", f"open after the connection ended: {leaked}")
        after = _tree(base, export)
        if after != before:
            changed = sorted(set(before.items()) ^ set(after.items()))
            raise Finding("the 9P server changed what is outside its export", show(changed))
    sent = _check_replies(run.out, run.session.max_msize)
    return f"{data[:40].hex()}: {sent} replies"


TARGETS["p9_server"] = target_p9_server


# ---------------------------------------------------------------------------------------------
# 9P: the asyncio client's path calls against a hostile server

DIRENT_NAMES = ["fz-a", "fz-b", "fz-dir", "fz-a", "..", ".", "x" * 255, "\udcff"]
BAD_DIRENT_NAMES = ["", "fz/x", "../fz-up", "fz\0x", "/"]
CLIENT_LIMIT = 3000
"""Requests one case may make the client send, besides one per byte it was asked to write (a
server may give an iounit of 1, and a write then takes a Twrite per byte, as the kernel's
does): past it, the client goes on without end."""
CLIENT_TIMEOUT = 0.5
"""The client's timeout per call in these cases: a server that stays silent costs half a second."""
CLIENT_MAX_LISTING = 200
"""The client's ``max_listing`` in these cases: an endless listing must end within it (at one
entry per Rreaddir, 201 Treaddirs), well inside ``CLIENT_LIMIT``."""


async def _answer_each_frame(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, frames: FrameReader[Any],
                             answer: Callable[[Any], bytes | None]) -> None:
    """A hostile server's connection: each request frame gets ``answer(frame)``'s bytes (``b""``:
    none), until it gives None (the server hangs up) or the client goes."""
    try:
        while data := await reader.read(65536):
            frames.feed(data)
            while (frame := frames.next_frame()) is not None:
                answered = answer(frame)
                if answered is None:
                    return
                writer.write(answered)
            await writer.drain()
    except (ConnectionError, FrameError):
        return
    finally:
        writer.close()


class HostileServer:
    """Answers a 9P client over a unix socket as a broken or hostile server might: mostly the
    right reply type with odd content (dirents named ``..`` or ``a/b``, offsets that go on or
    come back, more data than asked, qids of the wrong kind), now and then an error of any
    number, another reply type, a stray tag, silence, or the end of the connection."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.requests = 0
        self.limit = CLIENT_LIMIT  # grows by the bytes each call is asked to write
        self.endless = rng.random() < 0.1  # listings that never end
        self.hostility = rng.choice([0.0, 0.02, 0.1, 0.3])  # how often an answer is wrong
        self.offsets = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _answer_each_frame(reader, writer, FrameReader(m.Tframe, max_size=1 << 24), self.answer_frame)

    def answer_frame(self, frame: Any) -> bytes | None:
        self.requests += 1
        if self.requests > self.limit:
            return None
        return self.answer(frame.tag, frame.msg)

    def answer(self, tag: int, msg: Any) -> bytes | None:
        rng = self.rng
        if isinstance(msg, m.Tversion):
            return bytes(m.Rframe(tag=tag, msg=m.Rversion(msize=min(msg.msize, rng.choice([8192, 65560, 1 << 20])),
                                                           version="9P2000.L")).encode())
        roll = rng.random() / self.hostility if self.hostility else 1.0
        if self.endless and isinstance(msg, m.Treaddir):
            roll = 1.0  # a listing that goes on: every answer a good one
        if roll < 0.05:
            return None  # hangs up
        if roll < 0.15:
            return b""  # never answered: the client's timeout
        if roll < 0.6:
            reply: Any = m.Rlerror(ecode=rng.choice([0, 1, 2, 5, 13, 17, 20, 21, 22, 95, 0xFFFFFFFF]))
        elif roll < 0.8:
            reply = Values(rng, size=2).of(plan(rng.choice([m.Rwalk, m.Rread, m.Rgetattr, m.Rclunk, m.Rlopen])))
        else:
            reply = self.reply(msg)
        if 0.8 <= roll < 1:
            tag = rng.getrandbits(16)
        return bytes(m.Rframe(tag=tag, msg=reply).encode())

    def qid(self) -> Any:
        rng = self.rng
        kind = rng.choice([0x80, 0x80, 0x80, 0, 0, 0x02]) if rng.random() >= self.hostility else rng.getrandbits(8)
        return m.Qid(type=kind, version=0, path=rng.getrandbits(64))

    def reply(self, msg: Any) -> Any:
        rng = self.rng
        kind = msg.__class__
        if kind is m.Twalk:
            count = len(msg.wnames) if rng.random() >= self.hostility else rng.randint(0, len(msg.wnames) + 2)
            return m.Rwalk(wqids=[self.qid() for _ in range(count)])
        if kind is m.Treaddir:
            return m.Rreaddir(data=self.dirents(msg.count))
        if kind is m.Tread:
            size = rng.choice([0, 1, 100, msg.count]) if rng.random() >= self.hostility else msg.count + 1
            return m.Rread(data=bytes(rng.getrandbits(8) for _ in range(min(size, 4096))))
        if kind is m.Treadlink:
            return m.Rreadlink(target=rng.choice(["fz-a", "../..", "/etc", "fz-dir/../..", "", "fz\0x"]))
        if kind is m.Txattrwalk:
            return m.Rxattrwalk(size=rng.choice([0, 3, 100, 1 << 40, (1 << 64) - 1]))
        if kind is m.Twrite:
            return m.Rwrite(count=len(msg.data) if rng.random() >= self.hostility
                            else rng.choice([0, len(msg.data) + 1, 0xFFFFFFFF]))
        reply = Values(rng, size=2).of(plan(_REPLY_OF[kind]))
        if hasattr(reply, "qid"):
            reply = dataclasses.replace(reply, qid=self.qid())
        return reply

    def dirents(self, count: int) -> bytes:
        rng = self.rng
        if not self.endless and rng.random() < 0.3:
            return b""
        out = b""
        for _ in range(rng.randint(1, 4)):
            self.offsets += 1
            offset = self.offsets if self.endless or rng.random() < 0.8 else rng.choice([0, 1, self.offsets - 1])
            entry = m.Dirent(qid=self.qid(), offset=offset, type=rng.choice([4, 4, 8, 10, 0]),
                             name=rng.choice(BAD_DIRENT_NAMES if rng.random() < self.hostility else DIRENT_NAMES)
                             ).encode()
            if len(out) + len(entry) > count:
                break
            out += entry
        return out


async def _client_operation(client: Any, rng: random.Random, server: HostileServer) -> Any:
    """One of the client's path calls, on names that make it walk, list, read, write, remove."""
    operation = rng.choice(["listdir", "walk_tree", "rmtree", "read_bytes", "write_bytes", "stat", "exists",
                            "readlink", "follow", "getxattr", "listxattr", "open", "remove_path", "rename"])
    path = rng.choice(["", "fz-dir", "fz-dir/fz-a", "fz-a", "fz-link"])
    if operation == "walk_tree":
        return [item async for item in client.walk_tree(path)]
    if operation == "write_bytes":
        data = b"data" * rng.randint(0, 3000)
        server.limit += len(data)
        return await client.write_bytes(path or "fz-a", data)
    if operation == "getxattr":
        return await client.getxattr(path, "user.fz")
    if operation == "rename":
        return await client.rename(path or "fz-a", "fz-b")
    if operation == "open":
        async with await client.open(path or "fz-a", rng.choice(["rb", "r+b", "wb"])) as file:
            return await file.read()
    if operation == "rmtree":
        return await client.rmtree(path or "fz-dir", ignore_errors=rng.random() < 0.5)
    return await getattr(client, operation)(path)


async def _against_hostile_server(rng: random.Random, socket_path: str) -> list[str]:
    server = HostileServer(rng)
    listener = await asyncio.start_unix_server(server.serve, path=socket_path)
    outcomes = []
    try:
        try:
            client = await asyncio.wait_for(Client.connect(path=socket_path, timeout=CLIENT_TIMEOUT), 20)
            client.max_listing = CLIENT_MAX_LISTING
        except (OSError, ProtocolError) as exc:
            return [type(exc).__name__]
        except asyncio.TimeoutError:
            raise Finding("the 9P client's connect hangs", "past 20 s") from None
        try:
            for _ in range(rng.randint(1, 5)):
                try:
                    await asyncio.wait_for(_client_operation(client, rng, server), 30)
                    outcomes.append("done")
                except (OSError, ProtocolError) as exc:
                    outcomes.append(type(exc).__name__)
                except asyncio.TimeoutError:
                    raise Finding("a 9P client call hangs", f"past 30 s; {server.requests} requests") from None
                except Finding:
                    raise
                except Exception as exc:
                    raise unexpected("a 9P client call", exc) from None
                if server.requests > server.limit:
                    raise Finding("the 9P client sends requests without end",
                                  f"{server.requests} requests for {len(outcomes)} calls")
        finally:
            await asyncio.wait_for(client.close(), 20)
        if client.session.pending:
            raise Finding("the 9P client holds tags after close", repr(sorted(client.session.pending)))
    finally:
        listener.close()
        await listener.wait_closed()
    return outcomes


def target_p9_client(rng: random.Random, types: dict[str, Any]) -> str:
    """The asyncio 9P client's path calls (listdir, walk_tree, rmtree, read_bytes, open...)
    against a hostile server (odd dirents, endless or looping listings, wrong counts and types,
    errors of any number, silence, hang-ups): each call ends with its value, an OSError or a
    ProtocolError, never another exception, never without end; close leaves no tag held."""
    with _scratch() as base:
        loop = asyncio.new_event_loop()
        try:
            outcomes = loop.run_until_complete(_against_hostile_server(rng, os.path.join(base, "hostile.sock")))
        finally:
            loop.close()
    return ", ".join(outcomes)


TARGETS["p9_client"] = target_p9_client


# ---------------------------------------------------------------------------------------------
# RPC: the asyncio server over a unix socket, its handlers misbehaving too


class _Misbehaving(Fuzzed):
    """Answers each call as a careless implementation might: the right value, an odd one, a
    jetwire.Error, an exception whose text cannot be made, CancelledError, after a wait or not.
    Some servers wait seldom: their calls that wait fill max_calls, and long runs of calls
    queued behind them end without a wait once room comes."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.waits = self.rng.choice([0.3, 0.3, 0.01])  # how often a call waits before it answers

    async def _behave(self, method: str) -> Any:
        from .targets import ODD_VALUES  # loaded after targets.py, as _answer's

        rng = self.rng
        if rng.random() < self.waits:
            await asyncio.sleep(rng.choice([0, 0, 0.001, 0.02]))
        roll = rng.random()
        if roll < 0.5:
            return _response_value(rng, SPEC.by_name[method])
        if roll < 0.65:
            return rng.choice(ODD_VALUES)
        if roll < 0.8:
            raise jw.Error(rng.choice(["no", "\ud800", "x" * 70000]), code=rng.choice([None, "E"]))
        if roll < 0.9:
            raise ValueError(_RaisingStr())
        if roll < 0.95:
            raise asyncio.CancelledError()
        raise KeyError(method)

    async def echo(self, text: str) -> str:
        return await self._behave("echo")  # type: ignore[no-any-return]

    async def add(self, a: jw.i32, b: jw.i32) -> jw.i32:
        return await self._behave("add")  # type: ignore[no-any-return]

    async def nothing(self) -> None:
        return await self._behave("nothing")  # type: ignore[no-any-return]

    async def blob(self, data: list[jw.u8], flag: Optional[jw.u16]) -> list[str]:
        return await self._behave("blob")  # type: ignore[no-any-return]

    async def fail(self, text: str) -> jw.Error:
        return await self._behave("fail")  # type: ignore[no-any-return]


def _expected_answers(data: bytes, max_frame_size: int) -> tuple[int, int]:
    """The calls and the handshake answers a server owes the client for ``data``: what a
    ServerSession makes of it, up to a Violation."""
    session = rpc.ServerSession(SPEC, max_frame_size=max_frame_size)
    session.receive_data(data)
    calls = sends = 0
    while (event := session.next_event()) is not None:
        if isinstance(event, sessions.Call):
            calls += 1
        elif isinstance(event, sessions.Send):
            sends += 1
    return calls, sends


async def _served(rng: random.Random, path: str) -> str:
    url = f"unix://{path}"
    max_frame_size = rng.choice(FRAME_LIMITS[3:])
    server = await rpc.serve(_Misbehaving(rng.getrandbits(64)), url, service=Fuzzed, debug=rng.random() < 0.5,
                             max_calls=rng.choice([1, 2, 64]), steps_inline=rng.random() < 0.5,
                             max_frame_size=max_frame_size)
    try:
        data = _rpc_client_stream(rng)
        if rng.random() < 0.05:
            data += _flood(rng)
        calls, sends = _expected_answers(data, max_frame_size)
        reader, writer = await asyncio.open_unix_connection(path)
        for piece in pieces(data, chunk_sizes(rng)):
            writer.write(piece)
        await writer.drain()
        frames = FrameReader(SPEC.Rframe, max_size=1 << 32)
        answers = versions = 0
        try:
            while answers < calls or versions < sends:
                received = await asyncio.wait_for(reader.read(65536), 10)
                if not received:
                    break
                frames.feed(received)
                while (frame := frames.next_frame()) is not None:
                    if isinstance(frame.msg, rpc.Rversion):
                        versions += 1
                    else:
                        answers += 1
        except asyncio.TimeoutError:
            raise Finding("the RPC server leaves calls unanswered",
                          f"{answers} answers of {calls}, {versions} of {sends} Rversions after 10 s; "
                          f"{data[:80].hex()}") from None
        except FrameError as exc:
            raise Finding("the RPC server sent a frame that does not decode", str(exc)) from None
        finally:
            writer.close()
        if answers != calls or versions != sends:
            raise Finding("the RPC server did not answer each call once",
                          f"{answers} answers to {calls} calls, {versions} Rversions to {sends}: {data[:80].hex()}")
        # the server still serves: a client of its own gets an answer (or the handler's failure)
        async with await Fuzzed.connect(url) as client:
            try:
                await asyncio.wait_for(client.nothing(), 10)
            except jw.Error:
                pass
    except (OSError, rpc.RpcError) as exc:
        raise unexpected("the RPC server's client", exc) from None
    finally:
        await asyncio.wait_for(server.close(1), 10)
    return f"{data[:32].hex()}: {calls} calls, {sends} handshakes"


def target_rpc_served(rng: random.Random, types: dict[str, Any]) -> str:
    """The asyncio RPC server on a unix socket (inline steps or tasks, few or many calls at
    once, debug or not) fed a client's bytes in chunks, its handlers misbehaving: it answers
    what a ServerSession says it owes, once each, in frames that decode, and goes on serving."""
    quiet = logging.getLogger("jetwire.rpc")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # the handlers' failures it logs, one traceback each
    with _scratch() as base:
        loop = asyncio.new_event_loop()
        failures: list[Any] = []
        loop.set_exception_handler(lambda loop, context: failures.append(context))
        try:
            summary = loop.run_until_complete(_served(rng, os.path.join(base, "rpc.sock")))
            leftover = [t for t in asyncio.all_tasks(loop) if not t.done()]
        finally:
            loop.close()
            quiet.setLevel(level)
    if failures:
        context = failures[0]
        raise Finding("the event loop was handed an exception the RPC server did not handle",
                      f"{context.get('message')}: {context.get('exception')!r}")
    if leftover:
        raise Finding("the RPC server left tasks running after close", repr(leftover[:3]))
    return summary


TARGETS["rpc_served"] = target_rpc_served


# ---------------------------------------------------------------------------------------------
# 9P: the file server's own shell (serving.py) on a unix socket


class _Errors(logging.Handler):
    """Keeps the error records of a logger: a handler's bug the server caught and logged."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def _p9_served(rng: random.Random, path: str, export: str) -> tuple[bytes, list[bytes]]:

    fs = LocalFilesystem(export, read_only=rng.random() < 0.2, readdir_budget=rng.choice([0, 200, 1 << 20]))
    server = await serve(fs, f"unix:{path}", max_msize=rng.choice([8192, 65536 + 24]),
                         max_fids=rng.choice([4, 4096]), max_in_flight=rng.choice([1, 4, 64]))
    sent: list[bytes] = []
    try:
        reader, writer = await asyncio.open_unix_connection(path)
        for _ in range(100):
            if server.connections:
                break
            await asyncio.sleep(0.001)
        session = server.connections[0].session
        client = P9Client(rng, session)
        replies = asyncio.ensure_future(reader.read())  # everything until the server closes
        sizes = chunk_sizes(rng) + [8192]
        for _ in range(rng.randint(1, 60)):
            if session.closed or writer.is_closing():
                break
            data = client.frame()
            sent.append(data)
            taken = session.requests
            for piece in pieces(data, sizes):
                writer.write(piece)
            with contextlib.suppress(ConnectionError):
                await writer.drain()
            for _ in range(200):  # until the server has read it (the client draws from its fid table)
                if session.requests > taken or session.closed:
                    break
                await asyncio.sleep(0)
            for _ in range(rng.choice([0, 1, 1, 3])):  # and its call has run, or not
                await asyncio.sleep(0)
        if rng.random() < 0.5:
            await asyncio.sleep(0.02)  # let calls finish, or not, before the client goes
        writer.close()
        try:
            received = await asyncio.wait_for(replies, 20)
        except asyncio.TimeoutError:
            raise Finding("the 9P server does not end a connection its client closed", f"{len(sent)} frames") from None
        except ConnectionError:
            received = b""
        for _ in range(2000):
            if not server.connections:
                break
            await asyncio.sleep(0.01)
        else:
            raise Finding("the 9P server's connection outlives its client", f"{len(sent)} frames")
        # the server goes on: a new client is answered
        reader, writer = await asyncio.open_unix_connection(path)
        writer.write(m.Tframe(tag=0xFFFF, msg=m.Tversion(msize=8192, version="9P2000.L")).encode())
        frames = FrameReader(m.Rframe, max_size=1 << 24)
        try:
            frames.feed(await asyncio.wait_for(reader.read(4096), 10))
        except asyncio.TimeoutError:
            raise Finding("the 9P server does not answer a new client in time", _stalled_server(server)) from None
        if not isinstance(frames.next_frame().msg, m.Rversion):  # type: ignore[union-attr]
            raise Finding("the 9P server does not answer a new client", "after a hostile one")
        writer.close()
    finally:
        try:
            await asyncio.wait_for(server.close(), 20)
        except asyncio.TimeoutError:
            raise Finding("the 9P server does not close within 20 s", _stalled_server(server)) from None
        finally:
            fs.close()
    frames_out = []
    at = 0
    while at < len(received):  # cut at each size field: _check_replies decodes each frame
        size = int.from_bytes(received[at:at + 4], "little")
        if size < 7 or at + size > len(received):
            raise Finding("the 9P server sent bytes that are not whole frames", received[at:at + 40].hex())
        frames_out.append(received[at:at + size])
        at += size
    return b"".join(sent), frames_out


def _stalled_server(server: Any) -> str:
    """What a finding about a server that does not move says: per connection, its requests and
    state, where its task waits and where each call still running is (the innermost frames of
    the coroutines each awaits through; ``server._connections`` is what maps a task to it)."""
    def where(task: asyncio.Task[Any]) -> str:  # the coroutines the task awaits through, innermost first
        frames: list[Any] = []
        coroutine: Any = task.get_coro()
        while (frame := getattr(coroutine, "cr_frame", None)) is not None:
            frames.append(frame)
            coroutine = getattr(coroutine, "cr_await", None)
        return " <- ".join(f"{frame.f_code.co_name} ({os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno})"
                           for frame in reversed(frames[-4:]))

    out = []
    for task, connection in server._connections.items():
        session = connection.session
        out.append(f"a connection of {session.requests} requests (open {connection.open}, paused "
                   f"{connection.paused}, {len(session.fids)} fids) at {where(task)}, calls running: "
                   f"{'; '.join(where(call) for call in connection.tasks) or 'none'}")
    return f"{len(out)} connections: {' | '.join(out)}"


def target_p9_served(rng: random.Random, types: dict[str, Any]) -> str:
    """The 9P file server's shell (``serving.Server`` on a unix socket, a LocalFilesystem
    export, 1, 4 or 64 calls in flight) fed p9_server's requests, the client closing now or
    later: every reply decodes, the connection ends when its client goes and the server serves
    the next one, the loop gets no exception and the log no error, no descriptor is left open,
    nothing outside the export is read or changed."""
    errors = _Errors()
    logger = logging.getLogger("jetwire.p9")
    logger.addHandler(errors)
    with _scratch() as base, _scratch() as sockets:  # the socket beside, not inside, what is watched
        export = _export(base)
        before = _tree(base, export)
        descriptors = _open_descriptors()
        loop = asyncio.new_event_loop()
        failures: list[Any] = []
        loop.set_exception_handler(lambda loop, context: failures.append(context))
        try:
            data, replies = loop.run_until_complete(_p9_served(rng, os.path.join(sockets, "9p.sock"), export))
        except Finding as finding:
            if not failures and not errors.records:
                raise
            also = [f"{context.get('message')}: {context.get('exception')!r}" for context in failures]
            also += [record.getMessage()[:200] for record in errors.records]
            raise Finding(finding.kind, f"{finding.detail}; before it: {'; '.join(also)[:600]}") from None
        finally:
            loop.close()
            logger.removeHandler(errors)
        if failures:
            context = failures[0]
            if type(context.get("exception")).__name__ == "Hang":  # the runner's alarm, inside the server
                raise Finding("the 9P server's connection held its loop past the case's time limit",
                              f"{context.get('message')}: {context.get('exception')}")
            raise Finding("the event loop was handed an exception the 9P server did not handle",
                          f"{context.get('message')}: {context.get('exception')!r}")
        if errors.records:
            record = errors.records[0]
            raise Finding(f"the 9P server logged an error: {record.msg}", record.getMessage()[:300])
        leaked = sorted(set(_open_descriptors().items()) - set(descriptors.items()))
        if leaked:
            raise Finding("the 9P server leaks descriptors", f"open after the connection ended: {leaked}")
        if _tree(base, export) != before:
            raise Finding("the 9P server changed what is outside its export", "see the tree")
    _check_replies(replies, 1024 * 1024 + 24)
    return f"{data[:40].hex()}: {len(replies)} replies"


TARGETS["p9_served"] = target_p9_served


# ---------------------------------------------------------------------------------------------
# RPC: the asyncio client against a hostile server


RETURNS: dict[str, type] = {"echo": str, "add": int, "nothing": type(None), "blob": list, "fail": jw.Error}
"""What each of Fuzzed's methods returns, as Python types."""


class HostileRpcServer:
    """Answers an RPC client over a unix socket as a broken or hostile server might: the
    handshake right or not, then each call's answer right, an Error, another method's, doubled,
    to another tag, mutated, never, or the end of the connection."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.hostility = rng.choice([0.0, 0.05, 0.2, 0.5])

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _answer_each_frame(reader, writer, FrameReader(SPEC.Tframe, max_size=1 << 24), self.answer_frame)

    def answer_frame(self, frame: Any) -> bytes | None:
        if isinstance(frame.msg, rpc.Tversion):
            rng = self.rng
            return _rpc_handshake(rng) if rng.random() < self.hostility else bytes(
                SPEC.Rframe(frame.tag, rpc.Rversion(frame.msg.msize, frame.msg.version)).encode())
        return self.answer(frame.tag, SPEC.by_request[frame.msg.__class__])

    def answer(self, tag: int, method: rpc.Method) -> bytes | None:
        rng = self.rng
        if rng.random() >= self.hostility:
            return bytes(SPEC.Rframe(tag, _response(rng, method)).encode())
        roll = rng.random()
        if roll < 0.05:
            return None
        if roll < 0.15:
            return b""  # never answered: the client's timeout
        answer = _server_answers(rng, {tag: method})
        return answer + answer if roll < 0.3 else answer


async def _rpc_against_hostile(rng: random.Random, path: str) -> list[str]:
    server = HostileRpcServer(rng)
    listener = await asyncio.start_unix_server(server.serve, path=path)
    outcomes = []
    try:
        try:
            client = await Fuzzed.connect(f"unix://{path}", timeout=0.5, connect_timeout=5,
                                          max_tags=rng.choice([1, 4, sessions.MAX_TAGS]))
        except (OSError, rpc.RpcError) as exc:
            return [type(exc).__name__]
        try:
            calls = []
            methods = [rng.choice(SPEC.methods) for _ in range(rng.randint(1, 12))]
            for method in methods:
                request = _request(rng, method)
                calls.append(getattr(client, method.name)(*(getattr(request, name) for name in method.params)))
            try:
                results = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 30)
            except asyncio.TimeoutError:
                raise Finding("an RPC client call hangs", "past 30 s") from None
            for method, result in zip(methods, results):
                if isinstance(result, BaseException) and not isinstance(result, (OSError, rpc.RpcError, jw.Error)):
                    raise unexpected("an RPC client call", result)
                if not isinstance(result, (BaseException, RETURNS[method.name])):
                    raise Finding("an RPC client call returned a value of another type", f"{method.name}: {result!r}")
                outcomes.append(type(result).__name__)
        finally:
            await asyncio.wait_for(client.close(), 10)
    finally:
        listener.close()
        await listener.wait_closed()
    return outcomes


def target_rpc_channel(rng: random.Random, types: dict[str, Any]) -> str:
    """The asyncio RPC client (a connected ``Fuzzed``, 1 to 65534 tags, a 0.5 s timeout) making
    calls at once against a hostile server (any handshake answer; answers wrong, doubled,
    stray, mutated, missing; hang-ups): every call ends with its value, a jetwire.Error, an
    RpcError or an OSError, never another exception and never without end."""
    with _scratch() as base:
        loop = asyncio.new_event_loop()
        failures: list[Any] = []
        loop.set_exception_handler(lambda loop, context: failures.append(context))
        try:
            outcomes = loop.run_until_complete(_rpc_against_hostile(rng, os.path.join(base, "rpc.sock")))
        finally:
            loop.close()
    if failures:
        context = failures[0]
        raise Finding("the event loop was handed an exception the RPC client did not handle",
                      f"{context.get('message')}: {context.get('exception')!r}")
    return ", ".join(outcomes)


TARGETS["rpc_channel"] = target_rpc_channel

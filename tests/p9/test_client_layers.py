"""The client's structure: its layers import only downwards, the session's fid roles and the
typed ``_call`` cover every request, errors say who broke the protocol, and every call that
makes a fid leaves none behind when it fails."""

from __future__ import annotations

import ast
import asyncio
import dataclasses
import pathlib
from typing import Any, get_args

import pytest
from test_client_faults import Fake, clunked, only_root, qid, reply, rgetattr, run, serving

import jetwire.p9
from jetwire import JetwireError
from jetwire.p9 import (
    Client,
    Failed,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
    Rlerror,
    Rread,
    Rversion,
    Rwalk,
    Rwrite,
    Session,
    Stray,
    Tflush,
    Tframe,
    Tgetattr,
    Tlcreate,
    Tlopen,
    Tmessage,
    Tread,
    Tsetattr,
    Tversion,
    Twalk,
    Txattrcreate,
    Txattrwalk,
)
from jetwire.p9 import connection as connection_module
from jetwire.p9 import constants as c
from jetwire.p9.session import _REPLY_OF, FID_ROLES, MsizeError, Reply

P9 = pathlib.Path(jetwire.p9.__file__).parent
# each module of the client and the modules it may import from jetwire.p9 (its layer and below)
CLIENT_LAYERS = {
    "connection": {"constants", "messages", "session"},
    "calls": {"constants", "messages", "session", "connection"},
    "paths": {"constants", "messages", "session", "connection", "calls"},
}


def requests() -> list[type]:
    return [cls for meta in get_args(Tmessage)[1:] for cls in meta.tags.values()]


def rframe(tag: int, msg: Any) -> bytes:
    return jetwire.p9.Rframe(tag=tag, msg=msg).encode()


def negotiated(msize: int = 8192) -> Session:
    session = Session(msize=msize)
    session.start()
    (event,) = session.receive(rframe(c.NOTAG, Rversion(msize=msize, version=c.VERSION_9P2000L)))
    assert isinstance(event, Reply)
    return session


# -- layers ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("module", sorted(CLIENT_LAYERS))
def test_each_client_layer_imports_only_the_layers_below(module: str) -> None:
    tree = ast.parse((P9 / f"{module}.py").read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            imported.update([node.module] if node.module else [a.name for a in node.names])
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("jetwire.p9"):
            imported.add((node.module or "").removeprefix("jetwire.p9").lstrip(".") or "__init__")
    assert imported, f"{module} imports nothing from jetwire.p9: the test reads it wrongly"
    assert imported <= CLIENT_LAYERS[module], f"{module} imports {imported - CLIENT_LAYERS[module]}"


def test_the_public_names_stay_where_they_were() -> None:
    from jetwire.p9 import client

    for name in ("Client", "File", "RemotePath", "Stat", "connect", "parse_address", "parse_dirents"):
        assert getattr(client, name) is getattr(jetwire.p9, name)


# -- tables that must cover every request ---------------------------------------------------------------------------


def test_every_request_has_a_row_of_fid_roles() -> None:
    assert set(FID_ROLES) == set(requests())


@pytest.mark.parametrize("request_type", requests(), ids=lambda t: t.__name__)
def test_a_row_of_fid_roles_names_every_fid_of_its_request(request_type: type) -> None:
    roles = FID_ROLES[request_type]
    named = {roles.creates, roles.frees, *roles.uses} - {None}
    fields = {f.name for f in dataclasses.fields(request_type)}
    assert named <= fields
    fid_fields = {f for f in fields if f.endswith("fid") or f == "dirfd"}
    assert fid_fields == named, f"{request_type.__name__}: fids {fid_fields}, in the table {named}"


def test_the_overloads_of_call_follow_the_reply_table() -> None:
    """mypy knows ``await self._call(Twalk(...))`` is an Rwalk only through these overloads;
    the session checks the same table at run time, so the two must agree."""
    tree = ast.parse((P9 / "connection.py").read_text())
    overloads = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.AsyncFunctionDef) and node.name == "_call" and node.decorator_list:
            msg = node.args.args[1].annotation
            assert isinstance(msg, ast.Attribute) and isinstance(node.returns, ast.Attribute)  # m.Twalk -> m.Rwalk
            overloads[msg.attr] = node.returns.attr
    expected = {t.__name__: r.__name__ for t, r in _REPLY_OF.items() if t is not Tversion}  # start() sends it
    assert overloads == expected


# -- blame ----------------------------------------------------------------------------------------------------------


def test_both_blames_are_protocol_errors() -> None:
    for kind in (LocalProtocolError, RemoteProtocolError):
        assert issubclass(kind, ProtocolError) and issubclass(kind, JetwireError)
    assert not issubclass(LocalProtocolError, RemoteProtocolError)
    assert issubclass(MsizeError, LocalProtocolError) and issubclass(MsizeError, ValueError)


def test_requests_the_caller_should_not_make_are_local_errors() -> None:
    with pytest.raises(LocalProtocolError, match="no version negotiated"):
        Session().request(Tread(fid=0, offset=0, count=1))
    session = negotiated()
    with pytest.raises(LocalProtocolError, match="use start"):
        session.request(Tversion(msize=8192, version=c.VERSION_9P2000L))
    with pytest.raises(LocalProtocolError, match="not outstanding"):
        session.request(Tflush(oldtag=5))
    with pytest.raises(MsizeError, match="over the msize"):
        session.request(Twalk(fid=0, newfid=1, wnames=["x" * 9000]))
    session.request(Tread(fid=0, offset=0, count=1))
    with pytest.raises(LocalProtocolError, match="wait for outstanding"):
        session.start()
    assert not session.pending.get(5)


def test_a_peer_that_breaks_the_protocol_gives_remote_errors() -> None:
    session = negotiated()
    tag, _ = session.request(Tread(fid=0, offset=0, count=1))
    (failed,) = session.receive(rframe(tag, Rwrite(count=1)))  # the wrong reply type
    assert isinstance(failed, Failed) and isinstance(failed.error, RemoteProtocolError)
    tag, _ = session.request(Twalk(fid=0, newfid=1, wnames=["a"]))
    events = session.receive(rframe(tag, Rwalk(wqids=[qid(1), qid(2)])))  # more qids than names
    assert isinstance(events[-1], Failed) and isinstance(events[-1].error, RemoteProtocolError)
    (stray,) = session.receive(rframe(77, Rread(data=b"")))  # a tag not in flight
    assert isinstance(stray, Stray) and isinstance(stray.error, RemoteProtocolError)
    with pytest.raises(LocalProtocolError, match="out of step"):  # refused for the state the peer left
        session.request(Tread(fid=0, offset=0, count=1))

    for answer in (Rversion(msize=8192, version="9P2000"), Rversion(msize=9000, version=c.VERSION_9P2000L)):
        session = Session(msize=8192)
        session.start()
        (failed,) = session.receive(rframe(c.NOTAG, answer))
        assert isinstance(failed, Failed) and isinstance(failed.error, RemoteProtocolError), answer


def test_the_client_blames_a_reply_over_its_limits_or_undecodable_on_the_peer() -> None:
    def handler(fake: Fake, f: Tframe) -> list[Any] | None:
        if isinstance(f.msg, Tread):
            return [reply(f, Rread(data=b"x" * (f.msg.count + 1)))]
        if isinstance(f.msg, Tgetattr):
            return [_short_rgetattr(f.tag)]
        return None

    async def body() -> None:
        async with serving(handler) as (_, client):
            with pytest.raises(RemoteProtocolError, match="bytes for a Tread of 4"):
                await client.read(client.root or 0, 0, 4)
            with pytest.raises(RemoteProtocolError, match="could not be decoded"):
                await client.getattr(client.root or 0)
            with pytest.raises(LocalProtocolError, match="not attached"):
                Client(Session(), None)._root()

    run(body)


def _short_rgetattr(tag: int) -> bytes:
    """An Rgetattr frame whose body stops 8 bytes short: the frame is whole, so only its call fails."""
    whole = rframe(tag, rgetattr(1))
    body = whole[7:-8]
    return (7 + len(body)).to_bytes(4, "little") + whole[4:7] + body


# -- no fid left behind ------------------------------------------------------------------------------------------


def refusing(kind: type, ecode: int = c.EACCES) -> Any:
    def handler(fake: Fake, f: Tframe) -> list[Any] | None:
        return [reply(f, Rlerror(ecode=ecode))] if isinstance(f.msg, kind) else None

    return handler


def creating_refused(fake: Fake, f: Tframe) -> list[Any] | None:
    """No file there, and Tlcreate is refused."""
    if isinstance(f.msg, Twalk) and f.msg.wnames == ["f"]:
        return [reply(f, Rlerror(ecode=c.ENOENT))]
    return refusing(Tlcreate)(fake, f)  # type: ignore[no-any-return]


def all_directories(fake: Fake, f: Tframe) -> list[Any] | None:
    m = f.msg
    if isinstance(m, Twalk) and m.wnames:
        return [reply(f, Rwalk(wqids=[qid(100 + i, c.P9_QTDIR) for i in range(len(m.wnames))]))]
    return None


FAILING_AFTER_A_FID = {
    "setxattr: Txattrcreate fails": (refusing(Txattrcreate), PermissionError),
    "open w, new name: Tlcreate fails": (creating_refused, PermissionError),
    "open w, existing: Tsetattr (truncate) fails": (refusing(Tsetattr), PermissionError),
    "open w, existing: Tlopen fails": (refusing(Tlopen), PermissionError),
    "open a: Tgetattr (its size) fails": (refusing(Tgetattr), PermissionError),
    "open w on a directory": (all_directories, IsADirectoryError),
}


@pytest.mark.parametrize("what", FAILING_AFTER_A_FID)
def test_a_call_that_fails_after_making_a_fid_clunks_it(what: str) -> None:
    handler, error = FAILING_AFTER_A_FID[what]

    async def body() -> None:
        async with serving(handler) as (fake, client):
            with pytest.raises(error):
                if what.startswith("setxattr"):
                    await client.setxattr("d/f", "user.x", b"v")
                else:
                    await client.open("d/f", "ab" if what.startswith("open a") else "wb")
            await fake.until(lambda: not client.session.pending)
            made = [w.msg.newfid for w in fake.requests if isinstance(w.msg, Twalk) and w.msg.newfid != w.msg.fid]
            assert made and all(clunked(fake, fid) for fid in made), fake.requests
            assert only_root(client)

    run(body)


@pytest.mark.parametrize("call", ["walk", "xattrwalk", "attach", "auth"])
def test_a_fid_reserved_for_a_request_never_sent_is_released(call: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every tag is outstanding (8 here), so the request that would make the fid never goes
    out: the number reserved for it must not stay taken."""
    monkeypatch.setattr(connection_module, "_TAGS", 8)

    def silent_getattr(fake: Fake, f: Tframe) -> list[Any] | None:
        return [] if isinstance(f.msg, Tgetattr) else None

    async def body() -> None:
        async with serving(silent_getattr, timeout=0.3) as (_, client):
            root = client.root or 0
            held = [asyncio.ensure_future(client.getattr(root)) for _ in range(8)]
            await asyncio.sleep(0)
            making = {
                "walk": lambda: client.walk(root, ["a"]),
                "xattrwalk": lambda: client.xattrwalk(root, "user.x"),
                "attach": lambda: client.attach("/other"),
                "auth": lambda: client.auth("/other"),
            }[call]
            try:
                with pytest.raises(TimeoutError, match="no tag came free"):
                    await making()
                assert only_root(client), client.session.fids_in_use
            finally:
                await asyncio.gather(*held, return_exceptions=True)

    run(body)


def test_xattrwalk_requests_are_what_the_table_says() -> None:
    session = negotiated()
    tag, _ = session.request(Txattrwalk(fid=0, newfid=3, name=""))
    assert session.pending[tag].creates_fid == 3
    tag, _ = session.request(Twalk(fid=4, newfid=4, wnames=["a"]))
    assert session.pending[tag].creates_fid is None  # a walk in place makes no fid

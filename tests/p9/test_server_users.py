"""The uname policy of ``LocalFilesystem``: by default every attach acts as the server
(r[9p2000l.server.identity]); with ``map_users`` (root only) each attach acts as its own user,
``n_uname`` or else ``uname`` looked up on the host (r[9p2000l.server.attach]): files it creates
are that user's, and the kernel checks that user's permissions. Uids like 4242 need no passwd
entry: the tests attach with them as ``n_uname``.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from attached import connect, serving

from jetwire.p9 import Client, localfs, users
from jetwire.p9 import constants as c
from jetwire.p9.__main__ import serve_main
from jetwire.p9.localfs import LocalFilesystem
from jetwire.p9.serving import Server

GUARD = 60.0
STRANGER = 4242  # no passwd entry on purpose

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mapping users needs root")


def run(body: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(body(), GUARD))


@asynccontextmanager
async def server_for(handler: LocalFilesystem) -> AsyncIterator[Server]:
    try:
        async with serving(handler) as server:
            yield server
    finally:
        handler.close()


async def attach(server: Server, uname: str = "", n_uname: int = c.NONUNAME) -> Client:
    return await connect(server, uname=uname, n_uname=n_uname)


@pytest.fixture
def export(tmp_path: Path) -> Path:
    root = tmp_path / "export"
    root.mkdir()
    root.chmod(0o777)  # anyone may create here; what they create is theirs
    return root


def owner(path: Path) -> tuple[int, int]:
    info = path.lstat()
    return info.st_uid, info.st_gid


def test_files_created_by_a_mapped_attach_belong_to_its_user(export: Path) -> None:
    # r[9p2000l.server.attach]: the user is n_uname; r[9p2000l.server.lcreate]
    async def body() -> None:
        async with server_for(LocalFilesystem(export, map_users=True)) as server:
            async with await attach(server, "whoever", STRANGER) as fs:
                await fs.write_bytes("file", b"x")
                await fs.mkdir("dir")
                await fs.symlink("file", "link")
                await fs.write_bytes("dir/inner", b"y")
    run(body)
    for name in ("file", "dir", "link", "dir/inner"):
        assert owner(export / name) == (STRANGER, users.NOBODY.gid), name


def test_a_mapped_user_gets_the_kernels_permission_checks(export: Path) -> None:
    # r[9p2000l.server.attach]: permissions are the host's for that uid, not the server's
    (export / "secret").write_bytes(b"root only")
    (export / "secret").chmod(0o600)
    (export / "closed").mkdir(mode=0o755)
    (export / "public").write_bytes(b"for all")
    (export / "public").chmod(0o644)

    async def body() -> None:
        async with server_for(LocalFilesystem(export, map_users=True)) as server:
            async with await attach(server, n_uname=STRANGER) as fs:
                with pytest.raises(PermissionError):
                    await fs.read_bytes("secret")
                with pytest.raises(PermissionError):
                    await fs.write_bytes("closed/new", b"x")
                with pytest.raises(PermissionError):
                    await fs.chmod("public", 0o666)  # not the owner
                with pytest.raises(PermissionError):
                    await fs.write_bytes("public", b"overwritten")
                assert await fs.read_bytes("public") == b"for all"
            async with await attach(server, n_uname=0) as fs:  # root stays root
                assert await fs.read_bytes("secret") == b"root only"
                await fs.write_bytes("closed/new", b"x")
    run(body)
    assert (export / "public").read_bytes() == b"for all"
    assert owner(export / "closed" / "new") == (0, 0)
    assert oct((export / "public").stat().st_mode & 0o777) == oct(0o644)


def test_uname_is_looked_up_when_n_uname_is_nonuname(export: Path) -> None:
    # r[9p2000l.server.attach]: the user is `uname` when n_uname is NONUNAME
    daemon = pwd.getpwnam("daemon")

    async def body() -> None:
        async with server_for(LocalFilesystem(export, map_users=True)) as server:
            async with await attach(server, "daemon") as fs:
                await fs.write_bytes("made", b"x")
            with pytest.raises(PermissionError):  # a name the host does not know: refused
                await attach(server, "no-such-user-here")
            async with await attach(server, "") as fs:  # nobody at all: the kernel's nobody
                await fs.write_bytes("anonymous", b"x")
    run(body)
    assert owner(export / "made") == (daemon.pw_uid, daemon.pw_gid)
    assert owner(export / "anonymous") == (users.NOBODY.uid, users.NOBODY.gid)


def test_users_working_at_once_never_borrow_each_others_identity(export: Path) -> None:
    # the identity is per worker thread (setfsuid): many calls of two users in flight together
    async def body() -> None:
        async with server_for(LocalFilesystem(export, map_users=True)) as server:
            async with await attach(server, n_uname=STRANGER) as stranger, await attach(server, n_uname=0) as root:
                await asyncio.gather(*(fs.write_bytes(f"{who}-{i}", b"x")
                                       for i in range(40) for who, fs in (("s", stranger), ("r", root))))
    run(body)
    for i in range(40):
        assert owner(export / f"s-{i}")[0] == STRANGER
        assert owner(export / f"r-{i}")[0] == 0
    # and the threads that served them are the server again: this one made by a plain to_thread
    assert os.stat(export).st_uid == 0

    async def after() -> None:
        await asyncio.to_thread((export / "after").write_bytes, b"x")
    run(after)
    assert owner(export / "after") == (os.geteuid(), os.getegid())


def test_a_group_is_taken_from_the_request_only_if_the_user_is_in_it(export: Path) -> None:
    daemon = pwd.getpwnam("daemon")
    groups = os.getgrouplist("daemon", daemon.pw_gid)
    foreign = next(g for g in (0, 4243, 50) if g not in groups)

    async def body() -> None:
        async with server_for(LocalFilesystem(export, map_users=True)) as server:
            async with await attach(server, "daemon") as fs:
                assert fs.root is not None
                dfid, _ = await fs.walk(fs.root, [])
                await fs.lcreate(dfid, "theirs", c.P9_RDWR, 0o644, gid=foreign)
    run(body)
    assert owner(export / "theirs") == (daemon.pw_uid, daemon.pw_gid)


def test_without_mapping_every_attach_is_the_server(export: Path) -> None:
    # r[9p2000l.server.identity]: the default; uname and n_uname grant nothing
    (export / "secret").write_bytes(b"root only")
    (export / "secret").chmod(0o600)

    async def body() -> None:
        async with server_for(LocalFilesystem(export)) as server:
            async with await attach(server, "daemon", STRANGER) as fs:
                await fs.write_bytes("made", b"x")
                assert await fs.read_bytes("secret") == b"root only"
    run(body)
    assert owner(export / "made") == (os.geteuid(), os.getegid())


def test_mapping_is_refused_at_start_when_not_root(export: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(PermissionError, match="root"):
        LocalFilesystem(export, map_users=True)
    assert serve_main([str(export), "--map-users", "--listen", "127.0.0.1:0"]) == 1
    assert "needs the server to run as root" in capsys.readouterr().err


def test_serve_map_users_on_the_command_line(export: Path, tmp_path: Path) -> None:
    # `serve --map-users`: the jetwire.p9 client's --n-uname is who the files belong to
    sock = tmp_path / "cli.sock"
    repo = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(repo))
    proc = subprocess.Popen([sys.executable, "-m", "jetwire.p9", "serve", str(export), "--listen", f"unix:{sock}",
                             "--map-users", "-q"], stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert line.startswith("serving /"), line
        made = subprocess.run([sys.executable, "-m", "jetwire.p9", "mkdir", f"unix:{sock}", "theirs",
                               "--n-uname", str(STRANGER)], env=env, capture_output=True, timeout=30)
        assert made.returncode == 0, made.stderr
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert owner(export / "theirs") == (STRANGER, users.NOBODY.gid)


def test_a_group_the_user_is_in_is_taken_from_the_request(export: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a user in groups 65534 and 4243: Tlcreate and Tmkdir asking for 4243 get it, the rest 65534
    member = users.User(STRANGER, users.NOBODY.gid, (users.NOBODY.gid, 4243))
    monkeypatch.setattr(localfs, "user_for", lambda uname, n_uname, nonuname: member)

    async def body() -> None:
        async with server_for(LocalFilesystem(export, map_users=True)) as server:
            async with await attach(server, n_uname=STRANGER) as fs:
                assert fs.root is not None
                dfid, _ = await fs.walk(fs.root, [])
                await fs.lcreate(dfid, "in-4243", c.P9_RDWR, 0o644, gid=4243)
                await fs.mkdir_at(fs.root, "dir-4243", gid=4243)
                await fs.mkdir_at(fs.root, "dir-other", gid=4244)
    run(body)
    assert owner(export / "in-4243") == (STRANGER, 4243)
    assert owner(export / "dir-4243") == (STRANGER, 4243)
    assert owner(export / "dir-other") == (STRANGER, users.NOBODY.gid)


class LeaveFails:
    """Once armed, the next switch back to the server fails, leaving that thread as the user it
    was: what a failed setfsuid would do (it reports failure only by not changing)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        users.check_can_map_users()
        credentials = users._credentials
        assert credentials is not None
        self.real_leave = credentials.leave
        self.armed = False
        self.failed_in: list[str] = []  # the names of the threads it failed in
        monkeypatch.setattr(credentials, "leave", self.leave)

    def leave(self) -> None:
        if self.armed:
            self.armed = False
            self.failed_in.append(threading.current_thread().name)
            raise PermissionError(1, "simulated: setfsuid did not change")
        self.real_leave()


def test_a_thread_that_cannot_switch_back_never_runs_another_call(monkeypatch: pytest.MonkeyPatch) -> None:
    # r[9p2000l.server.identity]: a thread left as a user is stranded: every later call in it is
    # refused, never run (it would act as that user)
    leave = LeaveFails(monkeypatch)
    stranger = users.User(STRANGER, users.NOBODY.gid, (users.NOBODY.gid,))
    outcomes: list[object] = []
    ran: list[int] = []

    def thread() -> None:
        leave.armed = True
        for who in (stranger, users.User(0, 0, (0,))):
            try:
                outcomes.append(users.run_as(who, lambda: ran.append(os.getpid())))
            except PermissionError as exc:
                outcomes.append(exc)

    worker = threading.Thread(target=thread)  # stranded, then gone
    worker.start()
    worker.join(GUARD)
    assert leave.failed_in and len(ran) == 1  # the second call never ran
    assert all(isinstance(outcome, users.StrandedIdentity) for outcome in outcomes), outcomes


def test_a_stranded_thread_is_retired_and_the_server_goes_on(export: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the call whose switch back failed is answered with an error (EPERM); its thread's pool
    # takes no more work, so every later call, of the server or of any user, runs as itself
    fs = LocalFilesystem(export, map_users=True)
    leave = LeaveFails(monkeypatch)

    async def body() -> None:
        async with server_for(fs) as server:
            async with await attach(server, n_uname=STRANGER) as stranger, await attach(server, n_uname=0) as root:
                await stranger.write_bytes("warm", b"x")  # a thread or more in the pool
                before = users.user_threads()
                leave.armed = True
                with pytest.raises(PermissionError):
                    await stranger.mkdir("stranded")
                assert leave.failed_in and leave.failed_in[0].startswith("jetwire-p9-user-")
                assert users.user_threads() is not before  # a new pool
                for i in range(30):  # one at a time: each would take the stranded thread if it were idle there
                    await root.write_bytes(f"root-{i}", b"x")
                    await stranger.write_bytes(f"stranger-{i}", b"x")
                    await asyncio.to_thread((export / f"server-{i}").write_bytes, b"x")
    run(body)
    for i in range(30):
        assert owner(export / f"root-{i}")[0] == 0
        assert owner(export / f"stranger-{i}")[0] == STRANGER
        assert owner(export / f"server-{i}") == (os.geteuid(), os.getegid())


def test_the_check_at_start_never_strands_the_callers_thread(export: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # check_can_map_users tries a switch and back: when the way back fails, the thread it tried
    # in is gone, not the caller's (which would go on as nobody)
    leave = LeaveFails(monkeypatch)
    leave.armed = True
    with pytest.raises(PermissionError, match="simulated"):
        users.check_can_map_users()
    assert leave.failed_in and leave.failed_in[0] != threading.current_thread().name
    (export / "after").write_bytes(b"x")
    assert owner(export / "after") == (os.geteuid(), os.getegid())


def test_a_slow_user_database_holds_up_no_other_request(export: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # r[9p2000l.server.concurrency]: an attach's lookup in the user database (NSS: LDAP, sssd,
    # winbind may ask the network) runs off the event loop; simulated by a lookup that waits
    gate, entered = threading.Event(), threading.Event()
    real_user_for = users.user_for

    def waiting_user_for(uname: str, n_uname: int, nonuname: int) -> users.User:
        if uname == "slow":
            entered.set()
            gate.wait(GUARD / 4)
        return real_user_for(uname, n_uname, nonuname)

    monkeypatch.setattr(localfs, "user_for", waiting_user_for)
    rescue = threading.Timer(GUARD / 6, gate.set)  # without the fix the loop waits in the lookup: fail, not hang
    rescue.start()

    async def body() -> None:
        async with server_for(LocalFilesystem(export, map_users=True)) as server:
            async with await attach(server, n_uname=0) as fs:
                slow = asyncio.ensure_future(attach(server, uname="slow", n_uname=0))
                while not entered.is_set():
                    await asyncio.sleep(0.01)
                await fs.write_bytes("meanwhile", b"x")
                answered_while_looking_up = not gate.is_set()
                gate.set()
                await (await slow).close()
                assert answered_while_looking_up

    try:
        run(body)
    finally:
        gate.set()
        rescue.cancel()

"""The server fixtures work: checked with the servers' own tools and hand-built frames only.

No jetwire here on purpose: these tests prove the test infrastructure, not the library.
"""

from __future__ import annotations

import os
import socket
import struct
import subprocess
from collections import Counter
from pathlib import Path
from typing import Callable

import pytest
from peers import MissingPeer, Peer, find_tool, start_diod, start_ganesha

HERE = Path(__file__).parent
FIXTURE = HERE / "fixtures" / "diod-session.bin"

NOTAG = 0xFFFF
NOFID = 0xFFFFFFFF


def populate(export: Path) -> None:
    (export / "hello.txt").write_bytes(b"hello, 9p\n")
    (export / "sub").mkdir(exist_ok=True)
    (export / "sub" / "nested.txt").write_bytes(b"nested\n")


def run_tool(name: str, *args: str) -> str:
    result = subprocess.run(
        [find_tool(name, "diod"), "-t", "10", *args], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, f"{name} {args} failed ({result.returncode}): {result.stderr}"
    return result.stdout


# --- raw 9P frames, written straight from the spec: size[4] type[1] tag[2] body, little-endian


def s9(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<H", len(raw)) + raw


def frame(msg_type: int, tag: int, body: bytes) -> bytes:
    return struct.pack("<IBH", 7 + len(body), msg_type, tag) + body


def recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError(f"connection closed after {len(data)} of {n} bytes")
        data += chunk
    return data


def read_frame(sock: socket.socket) -> tuple[int, int, bytes]:
    (size,) = struct.unpack("<I", recv_exact(sock, 4))
    assert 7 <= size <= 65536, size
    msg_type, tag = struct.unpack("<BH", recv_exact(sock, 3))
    return msg_type, tag, recv_exact(sock, size - 7)


def tversion() -> bytes:
    raw = struct.pack("<IBHIH", 21, 100, NOTAG, 65536, 8) + b"9P2000.L"
    assert len(raw) == 21
    return raw


def connect(peer: Peer) -> socket.socket:
    sock = socket.create_connection(peer.address, timeout=10)
    sock.settimeout(10)
    return sock


# --- both servers


@pytest.mark.parametrize("server", ["diod", "ganesha"])
def test_raw_tversion_gets_rversion(server: str, request: pytest.FixtureRequest) -> None:
    peer: Peer = request.getfixturevalue(server)
    with connect(peer) as sock:
        sock.sendall(tversion())
        msg_type, tag, body = read_frame(sock)
    assert (msg_type, tag) == (101, NOTAG)
    (msize,) = struct.unpack_from("<I", body)
    assert 4096 <= msize <= 65536
    assert body[4:] == s9("9P2000.L")


@pytest.mark.parametrize("server", ["diod", "ganesha"])
def test_raw_attach_and_walk(server: str, request: pytest.FixtureRequest) -> None:
    peer: Peer = request.getfixturevalue(server)
    populate(peer.export)
    with connect(peer) as sock:
        sock.sendall(tversion())
        assert read_frame(sock)[0] == 101
        attach = struct.pack("<II", 0, NOFID) + s9(peer.uname) + s9(peer.aname) + struct.pack("<I", peer.n_uname)
        sock.sendall(frame(104, 1, attach))
        msg_type, tag, body = read_frame(sock)
        assert (msg_type, tag, len(body)) == (105, 1, 13), body  # Rattach qid[13]
        assert body[0] & 0x80  # QTDIR: the export root
        sock.sendall(frame(110, 2, struct.pack("<IIH", 0, 1, 2) + s9("sub") + s9("nested.txt")))
        msg_type, tag, body = read_frame(sock)
        assert (msg_type, tag) == (111, 2), body
        assert struct.unpack_from("<H", body)[0] == 2 and len(body) == 2 + 2 * 13  # Rwalk nwqid[2] qid[13]*2
        for tag, fid in ((3, 1), (4, 0)):
            sock.sendall(frame(120, tag, struct.pack("<I", fid)))
            assert read_frame(sock)[:2] == (121, tag)
    assert peer.running()


# --- diod, through its own client tools


def test_diodls_lists_the_export(diod: Peer) -> None:
    populate(diod.export)
    out = run_tool("diodls", "-s", f"{diod.host}:{diod.port}", "-a", diod.aname, "/")
    assert {"hello.txt", "sub"} <= set(out.split())


def test_diodls_long_shows_sizes(diod: Peer) -> None:
    populate(diod.export)
    out = run_tool("diodls", "-l", "-s", f"{diod.host}:{diod.port}", "-a", diod.aname, "/")
    line = next(line for line in out.splitlines() if line.endswith(" hello.txt"))
    assert line.startswith("-rw") and " 10 " in line, line


def test_diodcat_reads_files(diod: Peer) -> None:
    populate(diod.export)
    out = run_tool("diodcat", "-s", f"{diod.host}:{diod.port}", "-a", diod.aname, "hello.txt", "sub/nested.txt")
    assert out == "hello, 9p\nnested\n"


def test_diod_unix_socket(tmp_path: Path) -> None:
    export = tmp_path / "export"
    export.mkdir()
    populate(export)
    peer = start_diod(export, tmp_path, unix_socket=True)
    try:
        assert peer.socket_path is not None and peer.socket_path.is_socket()
        out = run_tool("diodcat", "-s", str(peer.socket_path), "-a", peer.aname, "hello.txt")
        assert out == "hello, 9p\n"
    finally:
        peer.stop()
    assert not peer.socket_path.exists()


# --- start/stop hygiene


def assert_gone(peer: Peer) -> None:
    assert peer.process.returncode is not None
    with pytest.raises(ProcessLookupError):
        os.kill(peer.pid, 0)
    with pytest.raises(ProcessLookupError):
        os.killpg(peer.pid, 0)
    with pytest.raises(OSError), socket.create_connection(peer.address, timeout=2):
        pass


@pytest.mark.parametrize("start", [start_diod, start_ganesha], ids=["diod", "ganesha"])
def test_stop_leaves_no_process(start: Callable[[Path, Path], Peer], tmp_path: Path) -> None:
    export = tmp_path / "export"
    export.mkdir()
    peer = start(export, tmp_path)
    assert peer.running()
    with connect(peer) as sock:  # a connected client must not keep anything alive
        sock.sendall(tversion())
        assert read_frame(sock)[0] == 101
        peer.stop()
    assert_gone(peer)
    peer.stop()  # idempotent


def _pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting for its parent to reap it is not)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_boot_that_times_out_leaves_no_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``kernel_guest.boot`` kills the guest's shell and what it started (QEMU; here a stand-in
    ``run.sh`` whose child sleeps) when the guest does not power off in time, and reaps them,
    before the timeout goes on."""
    import asyncio

    import kernel_guest

    stand_in = tmp_path / "guest"
    stand_in.mkdir()
    (stand_in / "run.sh").write_text('echo $$ > "$4/shell.pid"\nsleep 300 &\necho $! > "$4/child.pid"\nwait\n')
    monkeypatch.setattr(kernel_guest, "GUEST", stand_in)
    monkeypatch.setattr(kernel_guest, "BOOT_TIMEOUT", 2.0)

    async def body() -> None:
        with pytest.raises(asyncio.TimeoutError):
            await kernel_guest.boot(tmp_path, tmp_path / "no.sock", tmp_path / "export")

    try:
        asyncio.run(body())
        shell, child = (int((tmp_path / name).read_text()) for name in ("shell.pid", "child.pid"))
        assert not _pid_alive(shell) and not _pid_alive(child)
        with pytest.raises(ChildProcessError):  # reaped: no child of this process is left to wait for
            os.waitpid(shell, os.WNOHANG)
    finally:
        for name in ("shell.pid", "child.pid"):  # without the fix: not left running after the test
            if (tmp_path / name).exists():
                try:
                    os.kill(int((tmp_path / name).read_text()), 9)
                except ProcessLookupError:
                    pass


def test_a_build_step_that_times_out_leaves_no_process(tmp_path: Path) -> None:
    """``run_in_group`` (the guest's build script, the static lock tester's compiler) kills what
    the command started too when it times out, not only the command itself."""
    from peers import run_in_group

    script = f'sleep 300 &\necho $! > {tmp_path}/child.pid\nwait\n'
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            run_in_group(["bash", "-c", script], timeout=2.0)
        assert not _pid_alive(int((tmp_path / "child.pid").read_text()))
        with pytest.raises(subprocess.CalledProcessError):
            run_in_group(["false"], timeout=10.0)
    finally:
        if (tmp_path / "child.pid").exists():  # without the fix: not left running after the test
            try:
                os.kill(int((tmp_path / "child.pid").read_text()), 9)
            except ProcessLookupError:
                pass


def test_missing_tool_names_the_package() -> None:
    with pytest.raises(MissingPeer, match="apt-get install -y some-package") as raised:
        find_tool("no-such-9p-server-binary", "some-package")
    assert raised.value.package == "some-package"


_MISSING_PEER_TEST = """
from peers import find_tool

def test_needs_a_peer():
    find_tool("no-such-9p-server-binary", "some-package")
"""


@pytest.mark.parametrize("ci", ["", "true"])
def test_missing_peer_skips_here_and_fails_in_ci(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                                 ci: str) -> None:
    """A developer without the Debian peers gets skips naming the package; CI gets failures."""
    here = Path(__file__).parent
    pytester.makeconftest((here / "conftest.py").read_text())
    pytester.makepyfile(peers=(here / "peers.py").read_text(), test_it=_MISSING_PEER_TEST)
    monkeypatch.setenv("CI", ci)
    result = pytester.runpytest_subprocess("-ra", "-p", "no:cacheprovider")
    if ci:
        result.assert_outcomes(failed=1)
    else:
        result.assert_outcomes(skipped=1)
        result.stdout.fnmatch_lines(["SKIPPED*apt-get install -y some-package*"])


# --- the recorded diod session


def test_recorded_session_fixture() -> None:
    from record import parse_records

    data = FIXTURE.read_bytes()
    records = parse_records(data)
    assert sum(1 + len(raw) for _, raw in records) == len(data)
    types = Counter(raw[4] for _, raw in records)
    for msg_type in (100, 101, 104, 105, 110, 111, 24, 25, 40, 41, 116, 117, 120, 121, 12, 13, 7):
        assert types[msg_type] > 0, msg_type
    for direction, raw in records:  # T messages are even and go client->server, R the other way
        assert direction == ("T" if raw[4] % 2 == 0 else "R"), (direction, raw[:7])
    assert records[0][1][4] == 100

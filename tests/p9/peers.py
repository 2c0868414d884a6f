"""Start and stop real third-party 9P2000.L servers (diod, nfs-ganesha) for the tests.

Plain helpers with no jetwire import: each ``start_*`` function runs the server in the foreground
in its own process group, waits until it accepts connections and returns a :class:`Peer`;
``Peer.stop()`` kills the whole group and waits for it. A missing server raises
:class:`MissingPeer` naming the Debian package to install; ``conftest.py`` turns that into a skip
on a developer's machine and a failure under ``CI=true`` (``tests/install-peers.sh`` installs them).

See ``../shared/tools/9p-peers.md`` (beside the repository) for how the servers behave.
"""

from __future__ import annotations

import asyncio
import glob
import os
import resource
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

__all__ = ["MissingPeer", "Peer", "communicate_within", "find_tool", "free_port", "run_in_group", "start_diod",
           "start_ganesha"]

#: Upper bound on the wait for a server to accept connections (diod takes milliseconds, ganesha
#: usually well under a second here; the docs quote ~3 s on slower machines).
START_TIMEOUT = 20.0
#: Attempts with a fresh port when the server exits during start-up (a port taken in between).
START_ATTEMPTS = 3
#: Extra directories searched for server binaries (non-root PATHs often lack the sbin ones).
_SBIN_DIRS = ("/usr/sbin", "/sbin", "/usr/local/sbin")
_MAX_UNIX_PATH = 107  # sun_path is 108 bytes including the NUL


class MissingPeer(RuntimeError):
    """A third-party program the test needs is not installed; ``package`` is the Debian package."""

    def __init__(self, what: str, package: str) -> None:
        super().__init__(
            f"{what} not found; install the Debian package {package!r}: apt-get install -y {package} "
            f"(bash tests/install-peers.sh installs every peer)"
        )
        self.package = package


def find_tool(name: str, package: str) -> str:
    """The full path of executable ``name``; :class:`MissingPeer` naming the Debian ``package`` if absent."""
    search = os.pathsep.join([os.environ.get("PATH", os.defpath), *_SBIN_DIRS])
    found = shutil.which(name, path=search)
    if found is None:
        raise MissingPeer(f"{name!r} (searched {search})", package)
    return found


def free_port() -> int:
    """A TCP port that is free on every local address right now (the kernel's pick).

    Bound on the wildcard address, IPv6 dual-stack when available, because nfs-ganesha listens on
    all addresses whatever its config says. Another process can still take the port before the
    server binds it; the ``start_*`` functions retry with a fresh port if the server then exits.
    """
    try:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        address: tuple[str, int] = ("::", 0)
    except OSError:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        address = ("0.0.0.0", 0)
    with sock:
        sock.bind(address)
        port: int = sock.getsockname()[1]
    return port


@dataclass
class Peer:
    """A running 9P2000.L server: where to connect and what to send in Tattach."""

    name: str  # "diod" or "ganesha"
    host: str
    port: int
    export: Path  # the exported directory (resolved)
    aname: str  # Tattach aname: the export path, for both servers
    log: Path  # the server's own log file
    process: subprocess.Popen[bytes] = field(repr=False)
    output: Path = field(repr=False)  # the server's stdout and stderr
    workdir: Path = field(repr=False)
    socket_path: Optional[Path] = None  # diod's unix socket, when asked for
    uname: str = "root"
    n_uname: int = 0
    stop_signal: int = signal.SIGTERM
    stopped: bool = field(default=False, repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    def running(self) -> bool:
        """True while the server process has not exited (ganesha can crash under a test)."""
        return self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        return _tail(self.log, lines) + _tail(self.output, lines)

    def stop(self, timeout: float = 10.0) -> None:
        """Signal the whole process group, wait for the server, SIGKILL after ``timeout`` s.

        Idempotent (a second call signals nothing: the group id may belong to someone else by then).
        Raises RuntimeError if anything of the group is still alive afterwards.
        """
        if self.stopped:
            return
        _kill_group(self.process, self.stop_signal, timeout)
        self.stopped = True
        if self.socket_path is not None:
            self.socket_path.unlink(missing_ok=True)  # diod leaves its socket file behind


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return f"--- last lines of {path} ---\n" + "\n".join(text.splitlines()[-lines:]) + "\n"


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a process of that id exists but is not ours
        return True
    return True


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _kill_group(process: subprocess.Popen[bytes], sig: int, timeout: float) -> None:
    pgid = process.pid  # started with start_new_session=True: it leads its own group
    if process.poll() is None or _group_alive(pgid):
        _signal_group(pgid, sig)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        pass
    if process.poll() is None or _group_alive(pgid):
        _signal_group(pgid, signal.SIGKILL)
        process.wait(5.0)
    _check_group_gone(pgid)


def _check_group_gone(pgid: int) -> None:
    deadline = time.monotonic() + 5.0
    while _group_alive(pgid) and time.monotonic() < deadline:  # children, if any, leaving
        time.sleep(0.01)
    if _group_alive(pgid):
        raise RuntimeError(f"process group {pgid} still has live processes after SIGKILL")


def run_in_group(argv: list[str], timeout: float) -> None:
    """Runs ``argv`` to completion in a process group of its own, raising CalledProcessError on
    a failure; on a timeout (or an interrupt) the whole group is killed and reaped first, not
    only the first process as ``subprocess.run`` does: a build script's or a compiler's
    children do not outlive it."""
    process = subprocess.Popen(argv, start_new_session=True)
    try:
        process.wait(timeout)
    except BaseException:
        _signal_group(process.pid, signal.SIGKILL)
        process.wait()
        _check_group_gone(process.pid)
        raise
    if process.returncode != 0:
        raise subprocess.CalledProcessError(process.returncode, argv)


async def communicate_within(process: asyncio.subprocess.Process, timeout: float) -> tuple[bytes, bytes]:
    """``process.communicate()`` within ``timeout`` seconds. On a timeout, or any other way out
    (a cancellation, an interrupt), the process's whole group is killed and reaped before the
    exception goes on, so that neither it nor what it started (QEMU under a shell script)
    outlives the test: start it with ``start_new_session=True``."""
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except BaseException:
        _signal_group(process.pid, signal.SIGKILL)
        try:
            await asyncio.wait_for(asyncio.shield(process.wait()), 5.0)
        finally:
            _check_group_gone(process.pid)
        raise
    return out or b"", err or b""


def _can_connect(family: int, address: str | tuple[str, int]) -> bool:
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        try:
            sock.connect(address)
        except OSError:
            return False
    return True


class _ExitedEarly(RuntimeError):
    pass


def _wait_ready(peer: Peer, ready: Callable[[], bool], timeout: float) -> float:
    """Poll ``ready()`` until true; returns the seconds it took. Stops the peer on failure."""
    start = time.monotonic()
    while not ready():
        if not peer.running():
            peer.stop()
            raise _ExitedEarly(
                f"{peer.name} exited with status {peer.process.returncode} before accepting connections "
                f"on {peer.host}:{peer.port}\n{peer.log_tail()}"
            )
        if time.monotonic() - start > timeout:
            peer.stop()
            raise RuntimeError(
                f"{peer.name} did not accept connections on {peer.host}:{peer.port} within {timeout:.0f} s\n"
                f"{peer.log_tail()}"
            )
        time.sleep(0.01)
    return time.monotonic() - start


def _existing_dir(export: Path) -> Path:
    """The resolved export; both servers start happily on a missing one and fail only at Tattach."""
    if not export.is_dir():
        raise RuntimeError(f"export directory does not exist: {export}")
    return export.resolve()


def _no_core_dumps() -> None:
    # diod sometimes crashes in a worker thread at shutdown; its 200 MB core file proves nothing
    # about jetwire. diod raises the soft limit itself if it wants to (it may not lower the hard
    # one), so the server also runs in its temporary directory, never in the clone.
    resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))


def _spawn(argv: list[str], output: Path) -> subprocess.Popen[bytes]:
    with output.open("ab") as out:
        return subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            cwd=output.parent, preexec_fn=_no_core_dumps,
        )


def start_diod(
    export: Path,
    workdir: Path,
    *,
    unix_socket: bool = False,
    ctl: bool = False,
    debug: bool = False,
    timeout: float = START_TIMEOUT,
) -> Peer:
    """Run ``diod -f -n -l 127.0.0.1:PORT -e EXPORT -L LOG`` and wait until it accepts connections.

    ``unix_socket``: also listen on ``workdir/diod.sock`` (``Peer.socket_path``; diod's tools take
    the path as ``-s``). ``ctl``: also export diod's synthetic ``ctl`` file system, which
    ``dioddate``, ``diodshowmount`` and ``diodload`` need. ``debug``: ``-d 1``, every decoded
    message in the log. ``-c /dev/null`` keeps ``/etc/diod.conf`` out of it.
    """
    binary = find_tool("diod", "diod")
    export = _existing_dir(export)
    workdir.mkdir(parents=True, exist_ok=True)
    log, output = workdir / "diod.log", workdir / "diod.out"
    sock_path = workdir / "diod.sock" if unix_socket else None
    if sock_path is not None and len(os.fsencode(sock_path)) > _MAX_UNIX_PATH:
        raise RuntimeError(f"unix socket path too long for sun_path ({_MAX_UNIX_PATH} bytes): {sock_path}")
    last_error: Exception | None = None
    for _ in range(START_ATTEMPTS):
        port = free_port()
        argv = [binary, "-f", "-n", "-c", "/dev/null", "-l", f"127.0.0.1:{port}", "-e", str(export)]
        if sock_path is not None:
            sock_path.unlink(missing_ok=True)
            argv += ["-l", str(sock_path)]
        if ctl:
            argv += ["-e", "ctl"]
        if debug:
            argv += ["-d", "1"]
        argv += ["-L", str(log)]
        peer = Peer(
            name="diod", host="127.0.0.1", port=port, export=export, aname=str(export), log=log,
            process=_spawn(argv, output), output=output, workdir=workdir, socket_path=sock_path,
        )

        def ready(peer: Peer = peer) -> bool:
            if not _can_connect(socket.AF_INET, peer.address):
                return False
            return peer.socket_path is None or _can_connect(socket.AF_UNIX, str(peer.socket_path))

        try:
            _wait_ready(peer, ready, timeout)
        except _ExitedEarly as exc:  # most likely the port was taken in between: try another
            last_error = exc
            continue
        except BaseException:  # an interrupt, a failing check: the server must not outlive it
            peer.stop()
            raise
        return peer
    raise RuntimeError(f"diod failed to start {START_ATTEMPTS} times; the last time: {last_error}") from last_error


_GANESHA_CONF = """\
# Written by tests/p9/peers.py: 9P only, one VFS export, nothing outside this directory.
NFS_CORE_PARAM {{ Protocols = 9P; Bind_Addr = 127.0.0.1; Enable_NLM = false; Enable_RQUOTA = false; }}
NFSV4 {{ Graceless = true; RecoveryRoot = "{recovery}"; }}
_9P {{ _9P_TCP_Port = {port}; _9P_TCP_Msize = 65536; Nb_Worker = 4; }}
EXPORT {{
    Export_Id = 1; Path = "{export}"; Pseudo = /export; Tag = export; Protocols = 9P;
    Transports = TCP; Access_Type = RW; Squash = No_Root_Squash; SecType = sys; FSAL {{ Name = VFS; }}
}}
LOG {{ Default_Log_Level = EVENT; }}
"""

#: ganesha logs both once it is serving: the first after start-up, the second once the 9P socket is
#: bound (on a taken port it logs "Cannot bind 9p tcp6 socket" instead and exits with status 2).
_GANESHA_READY = ("NFS SERVER INITIALIZED", "9P dispatcher started")


def _check_ganesha_vfs() -> None:
    patterns = ("/usr/lib/*/ganesha/libfsalvfs.so", "/usr/lib/ganesha/libfsalvfs.so", "/usr/lib64/ganesha/libfsalvfs.so")
    if not any(glob.glob(pattern) for pattern in patterns):
        raise MissingPeer("nfs-ganesha's VFS backend (libfsalvfs.so)", "nfs-ganesha-vfs")


def start_ganesha(export: Path, workdir: Path, *, timeout: float = START_TIMEOUT) -> Peer:
    """Run ``ganesha.nfsd -F -L LOG -f CONF -p PIDFILE`` (9P only) and wait until it is serving.

    The config goes to ``workdir/ganesha.conf``; NFSv4 recovery state goes under ``workdir`` instead
    of ``/var/lib/nfs/ganesha``. Quirks: it listens on all addresses whatever ``Bind_Addr`` says;
    it can crash after a failed Tattach (attach as ``root``, n_uname 0); a SIGTERM shutdown takes
    ~5 s, so :meth:`Peer.stop` sends SIGKILL (a 9P-only ganesha keeps no state worth flushing).
    """
    binary = find_tool("ganesha.nfsd", "nfs-ganesha")
    _check_ganesha_vfs()
    export = _existing_dir(export)
    workdir.mkdir(parents=True, exist_ok=True)
    log, output, conf = workdir / "ganesha.log", workdir / "ganesha.out", workdir / "ganesha.conf"
    recovery = workdir / "ganesha-recovery"
    recovery.mkdir(exist_ok=True)
    for path in (export, recovery):
        if '"' in str(path):
            raise RuntimeError(f"cannot quote this path in a ganesha config: {path}")
    last_error: Exception | None = None
    for _ in range(START_ATTEMPTS):
        port = free_port()
        conf.write_text(_GANESHA_CONF.format(port=port, export=export, recovery=recovery))
        log.unlink(missing_ok=True)  # readiness is read from this start's log
        argv = [binary, "-F", "-L", str(log), "-f", str(conf), "-p", str(workdir / "ganesha.pid")]
        peer = Peer(
            name="ganesha", host="127.0.0.1", port=port, export=export, aname=str(export), log=log,
            process=_spawn(argv, output), output=output, workdir=workdir, stop_signal=signal.SIGKILL,
        )

        def ready(peer: Peer = peer) -> bool:
            try:
                text = peer.log.read_text(errors="replace")
            except OSError:
                return False
            return all(marker in text for marker in _GANESHA_READY) and _can_connect(socket.AF_INET, peer.address)

        try:
            _wait_ready(peer, ready, timeout)
        except _ExitedEarly as exc:  # "Cannot bind 9p tcp6 socket ... Address already in use"
            last_error = exc
            continue
        except BaseException:  # an interrupt, a failing check: the server must not outlive it
            peer.stop()
            raise
        return peer
    raise RuntimeError(f"ganesha failed to start {START_ATTEMPTS} times; the last time: {last_error}") from last_error

"""Acting as an attached user: the file-system identity of one worker thread (Linux only).

``LocalFilesystem(map_users=True)`` runs each permission-checked file operation of an attach's
fid tree in a worker thread that has taken that user's file-system uid, gid and supplementary
groups for the length of the call, then given them back. Linux keeps all three per thread when
they are changed with the raw system calls: ``setfsuid``/``setfsgid`` (libc's wrappers are the
raw calls) and ``SYS_setgroups`` called directly, because libc's ``setgroups`` (and Python's
``os.setgroups``) changes every thread of the process, so one user's groups would leak into
another user's call running at the same time. While the fsuid is not 0 the kernel also drops
the file-system capabilities (CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_CHOWN ...) of that thread and
gives them back when it returns to 0, so permission checks and the owner of created files are
the kernel's own for that user.

Those threads are a pool of their own (``user_threads()``), never asyncio's default one, so no other
work ever runs in a thread that changes identity. A thread that cannot become the server again
after a call is retired: it refuses every later call (``StrandedIdentity``) instead of running it
as someone else, the pool it belongs to takes no more work, and the next call gets a new pool.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import errno
import logging
import os
import platform
import pwd
import threading
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

from ..errors import JetwireError
from .syscalls import libc_function, raise_errno, syscall

__all__ = ["User", "user_for", "run_as", "check_can_map_users", "user_threads", "StrandedIdentity", "NOBODY"]

log = logging.getLogger("jetwire.p9.server")

T = TypeVar("T")

# SYS_setgroups by machine: the one that takes 32-bit gids (setgroups32 on 32-bit x86 and ARM)
_SYS_SETGROUPS = {
    "x86_64": 116, "aarch64": 159, "arm64": 159, "riscv64": 159, "loongarch64": 159,
    "ppc64le": 81, "ppc64": 81, "s390x": 206, "i686": 206, "i386": 206, "armv7l": 206,
}


def _overflow_id(kind: str) -> int:
    """The kernel's "nobody" (65534 unless changed): the identity of an attach that names no user."""
    try:
        with open(f"/proc/sys/kernel/overflow{kind}") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 65534


class User(NamedTuple):
    """The identity one attach's file operations run with."""

    uid: int
    gid: int
    groups: tuple[int, ...]  # supplementary groups, the primary gid included


NOBODY = User(_overflow_id("uid"), _overflow_id("gid"), (_overflow_id("gid"),))


def user_for(uname: str, n_uname: int, nonuname: int) -> User:
    """r[9p2000l.server.attach]: the user is ``n_uname`` unless it is NONUNAME, then ``uname``
    looked up in the host's user database. A number the database does not know is still that
    uid, with nobody's group and no other (no group can be granted on its word); a name it
    does not know is refused (EPERM, as diod does); an empty name with NONUNAME is nobody."""
    if n_uname == nonuname:
        if not uname:
            return NOBODY
        try:
            entry = pwd.getpwnam(uname)
        except KeyError:
            raise PermissionError(1, f"no such user {uname!r} on the server") from None
    else:
        try:
            entry = pwd.getpwuid(n_uname)
        except KeyError:
            return User(n_uname, NOBODY.gid, (NOBODY.gid,))
    groups = os.getgrouplist(entry.pw_name, entry.pw_gid)
    return User(entry.pw_uid, entry.pw_gid, tuple(dict.fromkeys([entry.pw_gid, *groups])))


class _Credentials:
    """libc's per-thread identity calls, with their results checked (setfsuid reports failure
    only by leaving the value unchanged, so each change is read back)."""

    def __init__(self) -> None:
        number = _SYS_SETGROUPS.get(platform.machine())
        if os.uname().sysname != "Linux" or number is None:
            raise OSError(f"mapping users needs Linux on a known machine (this is {platform.machine()})")
        setfsuid, setfsgid = libc_function("setfsuid"), libc_function("setfsgid")
        if setfsuid is None or setfsgid is None or syscall is None:
            raise OSError("mapping users needs libc's setfsuid, setfsgid and syscall")
        self._setfsuid: Any = setfsuid
        self._setfsgid: Any = setfsgid
        self._syscall: Any = syscall
        self._setgroups = number
        self.home = User(os.geteuid(), os.getegid(), tuple(os.getgroups()))

    def _set_id(self, call: Any, value: int, what: str) -> None:
        call(value)
        if call(-1) != value:  # -1 changes nothing and answers the current value
            raise PermissionError(1, f"cannot switch to {what} {value}: the server needs CAP_SETUID and CAP_SETGID")

    def _set_groups(self, groups: tuple[int, ...]) -> None:
        array = (ctypes.c_uint32 * max(len(groups), 1))(*groups)
        if self._syscall(self._setgroups, len(groups), array) != 0:
            raise_errno("setgroups")

    def enter(self, user: User) -> None:
        self._set_groups(user.groups)  # while the fsuid is still 0: it needs CAP_SETGID
        self._set_id(self._setfsgid, user.gid, "gid")
        self._set_id(self._setfsuid, user.uid, "uid")

    def leave(self) -> None:
        home = self.home
        self._set_id(self._setfsuid, home.uid, "uid")  # first: the capabilities come back with uid 0
        self._set_id(self._setfsgid, home.gid, "gid")
        self._set_groups(home.groups)


_credentials: _Credentials | None = None


class StrandedIdentity(JetwireError, PermissionError):
    """A worker thread could not switch back to the server's identity: it runs nothing more."""


_stranded = threading.local()  # .identity: a User this thread may still have, once it is stranded
_pool: concurrent.futures.ThreadPoolExecutor | None = None
_pool_names = ""  # the prefix of its threads' names, which tells a thread of that pool
_pools_made = 0
_pool_lock = threading.Lock()


def user_threads() -> concurrent.futures.ThreadPoolExecutor:
    """The pool whose threads run ``run_as`` calls (only those): a new one once a thread of the
    last was stranded."""
    global _pool, _pool_names, _pools_made
    with _pool_lock:
        if _pool is None:
            _pools_made += 1
            _pool_names = f"jetwire-p9-user-{_pools_made}"
            _pool = concurrent.futures.ThreadPoolExecutor(thread_name_prefix=_pool_names)
        return _pool


def _retire_this_threads_pool() -> None:
    """No more work for the pool of this thread, if it is the current one (its threads end once
    idle; work already queued there that a stranded thread picks up is refused); the next call
    makes a new pool."""
    global _pool
    with _pool_lock:
        pool = _pool
        if pool is None or not threading.current_thread().name.startswith(_pool_names + "_"):
            return
        _pool = None
    pool.shutdown(wait=False)


def check_can_map_users() -> None:
    """Raises ``PermissionError`` unless this process can act as other users (root, on Linux):
    ``map_users`` is refused at start rather than at the first attach."""
    global _credentials
    if os.geteuid() != 0:
        raise PermissionError(1, "mapping users to their own uid needs the server to run as root")
    credentials = _credentials or _Credentials()
    failure: list[BaseException] = []

    def probe() -> None:
        try:
            credentials.enter(NOBODY)
        except BaseException as exc:
            failure.append(exc)
        finally:
            try:
                credentials.leave()
            except BaseException as exc:
                failure.append(exc)

    # in a thread of its own, which ends after: a switch back that fails strands no thread that lives on
    prober = threading.Thread(target=probe, name="jetwire-p9-user-check")
    prober.start()
    prober.join()
    if failure:
        raise failure[0]
    _credentials = credentials


def run_as(user: User, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``call(*args, **kwargs)`` in this thread as ``user``; this thread is itself again after,
    whatever happened. If it cannot be (the switch back fails) the thread is stranded: this
    raises ``StrandedIdentity``, and so does every later call in this thread, which never runs
    anything as anyone again; the pool from ``user_threads()`` is retired along with it."""
    credentials = _credentials
    assert credentials is not None, "check_can_map_users() first"
    stranded = getattr(_stranded, "identity", None)
    if stranded is not None:
        raise StrandedIdentity(errno.EPERM, f"this worker thread may still act as uid {stranded.uid}: it runs nothing")
    try:
        credentials.enter(user)
        return call(*args, **kwargs)
    finally:
        try:
            credentials.leave()
        except BaseException as exc:
            _stranded.identity = user
            log.critical("a worker thread could not switch back from uid %d to the server (%s): it is retired, "
                         "and so is its pool", user.uid, exc)
            _retire_this_threads_pool()
            raise StrandedIdentity(errno.EPERM, f"could not switch back from uid {user.uid}: {exc}") from exc

"""POSIX locks through the Linux kernel's own 9P client (v9fs under QEMU: tests/p9/guest/): two
processes in the guest, and a process on the host, each respecting the others' ``fcntl`` and
``flock`` locks on a ``LocalFilesystem`` export (r[9p2000l.server.lock]). busybox has no lock
tool, so ``guest/lk.c`` is built static on the host and put in the export. Missing tools skip
on a developer's machine and fail under ``CI=true``.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from kernel_guest import GUEST, boot, check_steps_passed, put_guest_test
from peers import find_tool, run_in_group

from jetwire.p9.localfs import LocalFilesystem
from jetwire.p9.serving import serve

GUEST_TEST = r"""#!/bin/sh
# runs in the guest, in the mount; "@@ ok NAME" or "@@ FAIL NAME" per step
check() { if eval "$2"; then echo "@@ ok $1"; else echo "@@ FAIL $1"; fi; }
until_exists() { i=0; while [ ! -e "$1" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done; }
# a host process holds a write lock on bytes 0..9 of host.lock
check host-blocks '[ "$(./lk host.lock set r 5 1)" = EAGAIN ]'
check host-getlk '[ "$(./lk host.lock get r 5 1)" = "w 0 10 -$(cat host.pid)" ]'
check host-flock '[ "$(./lk host.lock flock)" = EAGAIN ]'
check beside-host './lk host.lock set w 10 10'
# two processes in the guest
./lk both.lock set w 0 0 held-1 release-1 &
until_exists held-1
check guest-conflict '[ "$(./lk both.lock set r 100 1)" = EAGAIN ]'
: > release-1
wait
check guest-released './lk both.lock set w 0 0'
# the guest holds a lock while the host looks at it
./lk guest.lock set w 0 100 guest-holds host-saw &
until_exists guest-holds
until_exists host-saw
wait
# waiting for the host's lock: the server answers BLOCKED, the kernel asks again until granted
: > want-host-lock
check wait-for-host './lk host.lock wait w 0 10'
"""

STEPS = ["host-blocks", "host-getlk", "host-flock", "beside-host", "guest-conflict", "guest-released",
         "wait-for-host"]

HOLDER = textwrap.dedent("""
    import fcntl, os, sys
    fd = os.open(sys.argv[1], os.O_RDWR)
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 0)
    print("held", flush=True)
    sys.stdin.readline()
""")


def _host_can_lock(path: Path) -> bool:
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 50)
    except OSError:
        return False
    finally:
        os.close(fd)  # and with it any lock this process took
    return True


def test_guest_processes_and_host_processes_respect_each_others_locks(v9fs_guest: Path, tmp_path: Path) -> None:
    # r[9p2000l.server.lock]
    export = tmp_path / "export"
    export.mkdir()
    find_tool("gcc", "gcc")
    run_in_group(["gcc", "-static", "-O2", "-o", str(export / "lk"), str(GUEST / "lk.c")], timeout=120)
    put_guest_test(export, GUEST_TEST)
    for name in ("host.lock", "both.lock", "guest.lock"):
        (export / name).write_bytes(b"")
    sock = tmp_path / "ninep.sock"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(export / "host.lock")], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    seen: dict[str, bool] = {}

    async def host_side() -> None:
        while not (export / "guest-holds").exists():
            await asyncio.sleep(0.1)
        seen["guest-holds"] = not await asyncio.to_thread(_host_can_lock, export / "guest.lock")
        (export / "host-saw").write_bytes(b"")
        while not (export / "want-host-lock").exists():
            await asyncio.sleep(0.1)
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.flush()
        await asyncio.to_thread(holder.wait, 30)

    async def body() -> str:
        server = await serve(LocalFilesystem(export), f"unix:{sock}")
        watcher = asyncio.ensure_future(host_side())
        try:
            # locktimeout: how long the kernel waits before asking again after BLOCKED (default 30 s)
            return await boot(v9fs_guest, sock, export, "locktimeout=1")
        finally:
            watcher.cancel()
            await server.close()

    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        (export / "host.pid").write_text(str(holder.pid))
        console = asyncio.run(body())
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    check_steps_passed(console, STEPS)
    assert seen == {"guest-holds": True}  # the host saw the guest's lock while it was held
    # everything the guest held went with its files' closing and the unmount
    for name in ("host.lock", "both.lock", "guest.lock"):
        assert _host_can_lock(export / name), name

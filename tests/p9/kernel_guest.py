"""The Linux kernel's own 9P2000.L client for the tests: the QEMU guest of ``tests/p9/guest/``
(Debian's kernel, its v9fs module and busybox) booted against a server's socket. It mounts the
export, runs the export's ``guest-test.sh`` from the mount and powers off; its console lines
starting with ``@@`` are its reports. ``conftest.py`` builds the guest once a session (the
``v9fs_guest`` fixture); a missing tool is :class:`peers.MissingPeer`.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from peers import communicate_within, find_tool, run_in_group

GUEST = Path(__file__).parent / "guest"
BOOT_TIMEOUT = 600.0  # software emulation on a shared 2-core machine: generous, never hit when it works


def build_guest() -> Path:
    """The directory holding the guest's kernel and initrd, built there unless already up to date."""
    for tool, package in (("qemu-system-x86_64", "qemu-system-x86"), ("busybox", "busybox-static"),
                          ("cpio", "cpio")):
        find_tool(tool, package)
    directory = Path(os.environ.get("V9FS_GUEST", "/tmp/jetwire-v9fs-guest"))
    run_in_group(["bash", str(GUEST / "build.sh"), str(directory)], timeout=900)
    return directory


def put_guest_test(export: Path, script: str) -> None:
    """``script`` as the export's ``guest-test.sh``, which the guest runs from the mount."""
    (export / "guest-test.sh").write_text(script)
    (export / "guest-test.sh").chmod(0o755)


async def boot(guest: Path, server: Path, export: Path, mount_options: str = "") -> str:
    """Boots the guest against the server at unix socket ``server``, attaching with aname
    ``export``; its console once it has powered off."""
    process = await asyncio.create_subprocess_exec(
        "bash", str(GUEST / "run.sh"), str(server), str(export), mount_options, str(guest),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True)
    out, _ = await communicate_within(process, BOOT_TIMEOUT)  # QEMU killed with its shell on a timeout
    return out.decode(errors="replace")


def reports(console: str) -> list[str]:
    """The guest's ``@@`` lines: the firmware's terminal escapes may share a line with the first."""
    return [line[line.index("@@"):].strip() for line in console.splitlines() if "@@" in line]


def check_steps_passed(console: str, steps: list[str]) -> None:
    """The guest mounted, ran ``guest-test.sh`` with every one of ``steps`` ok in that order and
    none failed, and unmounted."""
    said = reports(console)
    assert "@@ MOUNT OK" in said, console
    assert [r for r in said if r.startswith("@@ FAIL")] == [], console
    assert [r.split()[-1] for r in said if r.startswith("@@ ok")] == steps, console
    assert "@@ guest-test.sh rc=0" in said and "@@ UMOUNT OK" in said

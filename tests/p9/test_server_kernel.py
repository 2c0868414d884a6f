"""The Linux kernel's own 9P2000.L client (v9fs, in Debian's kernel under QEMU: tests/p9/guest/)
mounts ``LocalFilesystem`` and works on it with busybox tools; every result is checked from the
host too. Missing tools skip on a developer's machine and fail under ``CI=true``
(``tests/install-peers.sh`` installs them).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import stat
from pathlib import Path

from kernel_guest import boot, check_steps_passed, put_guest_test

from jetwire.p9.localfs import LocalFilesystem
from jetwire.p9.serving import serve

GUEST_TEST = r"""#!/bin/sh
# runs in the guest, in the mount; "@@ ok NAME" or "@@ FAIL NAME" per step
check() { if eval "$2"; then echo "@@ ok $1"; else echo "@@ FAIL $1"; fi; }
echo hello > created.txt
check read-back '[ "$(cat created.txt)" = hello ]'
echo more >> created.txt
check append '[ "$(tail -n 1 created.txt)" = more ] && [ "$(wc -l < created.txt)" -eq 2 ]'
mkdir -p deep/er/est
check mkdir-p '[ -d deep/er/est ]'
echo moved > deep/file
mv deep/file deep/er/est/moved
check mv '[ -f deep/er/est/moved ] && [ ! -e deep/file ]'
ln -s created.txt sym
check symlink '[ "$(readlink sym)" = created.txt ] && [ "$(head -n 1 sym)" = hello ]'
ln created.txt hard
check link '[ "$(stat -c %h created.txt)" = 2 ]'
chmod 640 created.txt
check chmod '[ "$(stat -c %a created.txt)" = 640 ]'
printf 0123456789 > trunc
truncate -s 4 trunc
check truncate '[ "$(cat trunc)" = 0123 ]'
touch -d "2001-02-03 04:05:06" dated
check touch-d '[ "$(stat -c %Y dated)" = 981173106 ]'
mkfifo fifo
check mkfifo '[ -p fifo ]'
mkdir many
i=0
while [ $i -lt 1000 ]; do : > many/f$i; i=$((i + 1)); done
check ls-1000 '[ "$(ls many | wc -l)" -eq 1000 ]'
mkdir -p gone/a/b
echo x > gone/a/b/f
rm -r gone
check rm-r '[ ! -e gone ]'
dd if=/dev/urandom of=big bs=1048576 count=64 2>/dev/null
md5sum big > big.md5
check dd '[ "$(stat -c %s big)" = 67108864 ]'
sync
echo 3 > /proc/sys/vm/drop_caches
check dd-read-back '[ "$(md5sum < big | cut -d " " -f 1)" = "$(cut -d " " -f 1 big.md5)" ]'
df -k . | tail -n 1 > df.out
check df '[ -s df.out ]'
check ls-dir '[ "$(ls deep/er/est)" = moved ]'
"""

STEPS = ["read-back", "append", "mkdir-p", "mv", "symlink", "link", "chmod", "truncate", "touch-d", "mkfifo",
         "ls-1000", "rm-r", "dd", "dd-read-back", "df", "ls-dir"]


def test_the_kernel_client_works_on_the_export(v9fs_guest: Path, tmp_path: Path) -> None:
    # r[9p2000l.server.lcreate], r[9p2000l.server.setattr], r[9p2000l.server.readdir], r[9p2000l.server.io]
    export = tmp_path / "export"
    export.mkdir()
    put_guest_test(export, GUEST_TEST)
    sock = tmp_path / "ninep.sock"

    async def body() -> str:
        server = await serve(LocalFilesystem(export), f"unix:{sock}")
        try:
            return await boot(v9fs_guest, sock, export)
        finally:
            await server.close()

    check_steps_passed(asyncio.run(body()), STEPS)

    # the same results, seen from the host
    assert (export / "created.txt").read_text() == "hello\nmore\n"
    assert stat.S_IMODE((export / "created.txt").stat().st_mode) == 0o640
    assert (export / "hard").stat().st_ino == (export / "created.txt").stat().st_ino
    assert os.readlink(export / "sym") == "created.txt"
    assert (export / "deep/er/est/moved").read_text() == "moved\n" and not (export / "deep/file").exists()
    assert (export / "trunc").read_bytes() == b"0123"
    assert int((export / "dated").stat().st_mtime) == 981173106
    assert stat.S_ISFIFO((export / "fifo").lstat().st_mode)
    assert sorted(os.listdir(export / "many")) == sorted(f"f{i}" for i in range(1000))
    assert (export / "deep/er/est").is_dir()
    assert not (export / "gone").exists()
    guest_md5 = (export / "big.md5").read_text().split()[0]
    assert (export / "big").stat().st_size == 64 << 20
    assert hashlib.md5((export / "big").read_bytes()).hexdigest() == guest_md5
    # df in the guest: the export's file system as the host sees it (Rstatfs, r[9p2000l.server.statfs])
    total_kib = int((export / "df.out").read_text().split()[1])
    host = os.statvfs(export)
    assert total_kib == host.f_blocks * host.f_frsize // 1024

"""p9fs from PyPI (an fsspec file system over its own 9P2000.L client, the ``py9p`` package:
code nobody here wrote) against ``LocalFilesystem``: ls, cat, pipe_file, mkdir, rm, each result
checked on the host. p9fs lives in a virtual environment of its own, made by the fixture when
missing (it installs a top-level package named ``py9p`` that must not meet jetwire's
environment). No network to PyPI skips on a developer's machine and fails under ``CI=true``.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from peers import MissingPeer, communicate_within

from jetwire.p9.localfs import LocalFilesystem
from jetwire.p9.serving import serve

GUARD = 120.0

# Runs in p9fs's environment: HOST PORT ANAME, then one JSON object of results on stdout. p9fs
# uses tag 1 for everything, msize 8192 and fids from 1024 up, and never sends Tauth.
CLIENT = r"""
import json, sys, traceback
import p9fs
host, port, aname = sys.argv[1], int(sys.argv[2]), sys.argv[3]
fs = p9fs.P9FileSystem(host=host, port=port, username="root", version="9P2000.L", aname=aname)
out = {}
def step(name, call):
    try:
        out[name] = call()
    except Exception as exc:
        out[name] = "ERROR " + "".join(traceback.format_exception_only(type(exc), exc)).strip()
big = bytes(range(256)) * 400  # 100 KiB: many Treads and Twrites at msize 8192
step("ls", lambda: sorted(fs.ls("", detail=False)))
step("ls-detail", lambda: {i["name"]: [i["type"], i["size"]] for i in fs.ls("sub", detail=True)})
step("cat", lambda: fs.cat_file("hello.txt").decode())
step("pipe_file", lambda: fs.pipe_file("new.txt", b"written by p9fs"))
step("pipe_file-big", lambda: fs.pipe_file("sub/big.bin", big))
step("cat-big", lambda: fs.cat_file("sub/big.bin") == big)
step("mkdir", lambda: fs.mkdir("made/deeper"))
step("rm", lambda: fs.rm("old.txt"))
step("rmdir", lambda: fs.rmdir("empty"))
step("ls-after", lambda: sorted(fs.ls("", detail=False)))
print(json.dumps(out))
"""


class P9fsUnavailable(MissingPeer):
    def __init__(self, reason: str) -> None:
        RuntimeError.__init__(self, f"p9fs from PyPI could not be installed in its own venv ({reason}); "
                                    "it needs network access to PyPI once")
        self.package = "p9fs"


@pytest.fixture(scope="module")
def p9fs_python() -> str:
    """The interpreter of a venv holding p9fs, made once per Python version."""
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    venv = Path(os.environ.get("JETWIRE_P9FS_VENV", f"/tmp/jetwire-p9fs-venv-{version}"))
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import p9fs, py9p"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return str(python)
    try:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, capture_output=True,
                       timeout=300)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "p9fs"], check=True, capture_output=True,
                       timeout=600)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        raise P9fsUnavailable(f"{exc}: {detail.decode(errors='replace')[-500:]}") from exc
    return str(python)


@pytest.fixture
def export(tmp_path: Path) -> Path:
    root = tmp_path / "export"
    (root / "sub").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "hello.txt").write_text("hello from the host\n")
    (root / "old.txt").write_text("to be removed\n")
    (root / "sub" / "small").write_bytes(b"12345")
    return root


def run_client(python: str, export: Path) -> dict[str, Any]:
    async def body() -> dict[str, Any]:
        server = await serve(LocalFilesystem(export), "127.0.0.1:0")
        try:
            host, port = server.addresses[0].rsplit(":", 1)
            proc = await asyncio.create_subprocess_exec(python, "-c", CLIENT, host, port, str(export),
                                                        stdout=asyncio.subprocess.PIPE,
                                                        stderr=asyncio.subprocess.PIPE, start_new_session=True)
            out, err = await communicate_within(proc, GUARD)
            assert proc.returncode == 0, err.decode(errors="replace")
            result: dict[str, Any] = json.loads(out)
            return result
        finally:
            await server.close()

    return asyncio.run(body())


def test_p9fs_lists_reads_writes_makes_and_removes(p9fs_python: str, export: Path) -> None:
    # r[9p2000l.server.attach] (the aname is the export's path), r[9p2000l.server.readdir],
    # r[9p2000l.server.getattr], r[9p2000l.server.io], r[9p2000l.server.lcreate],
    # r[9p2000l.server.walk.partial] (p9fs counts the qids of a walk to tell a missing path)
    results = run_client(p9fs_python, export)
    errors = {step: value for step, value in results.items() if isinstance(value, str) and value.startswith("ERROR")}
    assert errors == {}, results
    assert results["ls"] == ["empty/", "hello.txt", "old.txt", "sub/"]
    assert results["ls-detail"] == {"sub/small": ["file", 5]}
    assert results["cat"] == "hello from the host\n"
    assert results["cat-big"] is True
    assert results["ls-after"] == ["hello.txt", "made/", "new.txt", "sub/"]
    # the same, seen from the host
    assert (export / "new.txt").read_bytes() == b"written by p9fs"
    assert (export / "sub" / "big.bin").read_bytes() == bytes(range(256)) * 400
    assert (export / "made" / "deeper").is_dir()
    assert not (export / "old.txt").exists() and not (export / "empty").exists()
    assert sorted(os.listdir(export)) == ["hello.txt", "made", "new.txt", "sub"]

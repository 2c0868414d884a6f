"""diod's own client tools (``diodls``, ``diodcat``: code nobody here wrote) against
``LocalFilesystem``. Missing tools skip on a developer's machine and fail under ``CI=true``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from peers import communicate_within, find_tool

from jetwire.p9.localfs import LocalFilesystem
from jetwire.p9.serving import serve


def run_tool(export: Path, *argv: str) -> tuple[int, str, str]:
    """Runs ``argv`` against a server for ``export``; ``{addr}`` in an argument becomes HOST:PORT."""
    async def body() -> tuple[int, str, str]:
        server = await serve(LocalFilesystem(export), "127.0.0.1:0")
        try:
            args = [a.replace("{addr}", server.addresses[0]) for a in argv]
            proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE,
                                                        stderr=asyncio.subprocess.PIPE, start_new_session=True)
            out, err = await communicate_within(proc, 60)
            assert proc.returncode is not None
            return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")
        finally:
            await server.close()

    return asyncio.run(body())


@pytest.fixture
def export(tmp_path: Path) -> Path:
    root = tmp_path / "export"
    (root / "sub").mkdir(parents=True)
    (root / "hello.txt").write_text("hello from the host\n")
    (root / "sub" / "big.bin").write_bytes(bytes(range(256)) * 4096)  # 1 MiB: many Treads
    return root


def test_diodls_lists_the_export(export: Path) -> None:
    # r[9p2000l.server.attach]: the aname is the export's path; r[9p2000l.server.auth]: no auth
    diodls = find_tool("diodls", "diod")
    code, out, err = run_tool(export, diodls, "-s", "{addr}", "-a", str(export), "/")
    assert code == 0, err
    assert sorted(out.split()) == ["hello.txt", "sub"]
    code, out, err = run_tool(export, diodls, "-s", "{addr}", "-a", str(export), "/sub")
    assert (code, out.split()) == (0, ["big.bin"]), err


def test_diodcat_reads_files(export: Path) -> None:
    # r[9p2000l.server.io], r[9p2000l.server.lopen]
    diodcat = find_tool("diodcat", "diod")
    code, out, err = run_tool(export, diodcat, "-s", "{addr}", "-a", str(export), "hello.txt")
    assert (code, out) == (0, "hello from the host\n"), err

    async def binary() -> bytes:
        server = await serve(LocalFilesystem(export), "127.0.0.1:0")
        try:
            proc = await asyncio.create_subprocess_exec(diodcat, "-s", server.addresses[0], "-a", str(export),
                                                        "sub/big.bin", stdout=asyncio.subprocess.PIPE,
                                                        start_new_session=True)
            data, _ = await communicate_within(proc, 60)
            return data
        finally:
            await server.close()

    assert asyncio.run(binary()) == (export / "sub" / "big.bin").read_bytes()


def test_diodls_long_lists_every_entry_but_dot(export: Path) -> None:
    """``diodls -l`` walks to every name Treaddir gave, `.` included, then Tgetattr. A walk of
    `.` is EINVAL (r[9p2000l.server.walk.names]; `.` names no entry of its own, Plan 9's walk(5)
    keeps it out of the protocol), so diodls reports that one name and lists the others with
    what the host says of them (r[9p2000l.server.getattr]); r[9p2000l.server.auth]: diodls
    takes only ENOENT to Tauth as "no authentication", the reason Tauth answers ENOENT."""
    diodls = find_tool("diodls", "diod")
    code, out, err = run_tool(export, diodls, "-l", "-s", "{addr}", "-a", str(export), "/")
    assert code == 0, err
    listed = {line.split()[-1]: line.split() for line in out.splitlines()}
    assert sorted(listed) == ["..", "hello.txt", "sub"]
    assert int(listed["hello.txt"][4]) == (export / "hello.txt").stat().st_size
    assert listed["sub"][0].startswith("d") and listed["hello.txt"][0].startswith("-rw")
    assert int(listed["sub"][1]) == (export / "sub").stat().st_nlink
    assert "npc_walk ." in err and "Invalid argument" in err

"""``benchmarks/p9_server.py`` keeps working: its quick mode runs every case against diod and
jetwire's server (each checked first: the file's bytes, the listing, the written and created
files) and reports a ratio for each. Nothing here is timed."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from benchmarks import p9_server as bench

SMALL_QUICK = ["--quick", "--no-save", "--rounds", "1", "--size-mib", "2", "--entries", "300", "--files", "20",
               "--getattr-seconds", "0.1", "--repeats", "1"]


def test_the_quick_mode_runs_every_case_against_both_servers(capsys: pytest.CaptureFixture[str]) -> None:
    bench.main(SMALL_QUICK)
    report = capsys.readouterr().out
    for case, (_, _, with_diod) in bench.CASES.items():
        row = next(line for line in report.splitlines() if line.startswith(f"| {case} |"))
        cells = [cell.strip() for cell in row.split("|")[1:-1]]
        assert cells[2] != "—" if with_diod else cells[2] == "—"  # diod's rate
        assert cells[3] != "—"  # jetwire's rate
        assert cells[4].startswith("**") if with_diod else cells[4] == "—"  # the ratio
    assert "jetwire: read 2,097,152 bytes (SHA-256 matches), listed 302 entries" in report


def test_a_server_that_returns_other_bytes_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check before timing compares something: a file whose digest is not the expected one."""
    real = bench.prepare

    def wrong(*args: Any) -> dict[str, str]:
        return dict(real(*args), file="0" * 64)

    monkeypatch.setattr(bench, "prepare", wrong)
    with pytest.raises(AssertionError, match="diod read 2097152 bytes"):
        bench.main(SMALL_QUICK)


def test_a_server_that_never_says_it_listens_is_killed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A jetwire server that does not start fails the benchmark in a bounded time, and is not
    left running (nor one whose first line is not its address)."""
    spawned: list[subprocess.Popen[str]] = []
    real_popen = subprocess.Popen

    def recorded(*args: Any, **kwargs: Any) -> subprocess.Popen[str]:
        spawned.append(real_popen(*args, **kwargs))
        return spawned[-1]

    monkeypatch.setattr(bench.subprocess, "Popen", recorded)
    monkeypatch.setattr(bench, "START_TIMEOUT", 1.0)
    monkeypatch.setattr(bench, "SERVER", "import time; time.sleep(300)")
    with pytest.raises(RuntimeError, match="said nothing"):
        bench.JetwireServer(tmp_path)
    monkeypatch.setattr(bench, "SERVER", "print('not an address', flush=True); import time; time.sleep(300)")
    with pytest.raises(ValueError):
        bench.JetwireServer(tmp_path)
    assert [process.returncode for process in spawned] == [-9, -9]  # killed, and reaped

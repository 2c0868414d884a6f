"""Without Go or Serf's source the Serf tests skip on a developer's machine, naming the package,
and fail under CI=true, never passing silently."""

from __future__ import annotations

from pathlib import Path

import pytest
from serf import MissingGo, build_driver

HERE = Path(__file__).parent
ROOT = HERE.parents[1]

_NEEDS_SERF = """
def test_needs_serf(serf):
    assert serf.ask("get nobody")
"""


def test_a_missing_toolchain_names_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no go on it
    with pytest.raises(MissingGo, match="apt-get install golang-go"):
        build_driver(tmp_path)


@pytest.mark.parametrize("ci", ["", "true"])
def test_missing_go_skips_here_and_fails_in_ci(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path, ci: str) -> None:
    pytester.makeconftest((HERE / "conftest.py").read_text())
    pytester.makepyfile(serf=(HERE / "serf.py").read_text(), test_it=_NEEDS_SERF)
    (pytester.path / "serf_driver.go").write_text((HERE / "serf_driver.go").read_text())
    empty = tmp_path / "no-go"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # this checkout's jetwire, from the test's own directory
    monkeypatch.setenv("CI", ci)
    result = pytester.runpytest_subprocess("-ra", "-p", "no:cacheprovider")
    if ci:
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(["*MissingGo: no Go toolchain*"])
    else:
        result.assert_outcomes(skipped=1)
        result.stdout.fnmatch_lines(["SKIPPED*apt-get install golang-go*"])

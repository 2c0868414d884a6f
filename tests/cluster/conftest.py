"""The Serf driver for the cluster tests. Without Go or Serf's source the tests that need them skip,
naming the Debian package, except under ``CI=true``, where they fail: CI must have installed both
(``tests/install-peers.sh``)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_HERE = str(Path(__file__).parent)
if _HERE not in sys.path:  # for `import serf` under any pytest import mode
    sys.path.insert(0, _HERE)

from serf import MissingGo, Serf, build_driver  # noqa: E402


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    if os.environ.get("CI") or call.excinfo is None or not call.excinfo.errisinstance(MissingGo):
        return
    report = outcome.get_result()  # type: ignore[attr-defined]
    report.outcome = "skipped"
    report.longrepr = (str(item.path), item.location[1] or 0, f"Skipped: {call.excinfo.value}")


@pytest.fixture(scope="session")
def serf_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_driver(tmp_path_factory.mktemp("serf"))


@pytest.fixture(scope="session")
def serf(serf_binary: Path) -> Iterator[Serf]:
    driver = Serf(serf_binary)
    yield driver
    driver.close()

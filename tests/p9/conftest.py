"""Fixtures that run real third-party 9P2000.L servers: ``diod`` and ``ganesha`` (one per module),
and the QEMU guest whose Linux kernel is a 9P2000.L client: ``v9fs_guest`` (built once a session).

Each gets a fresh, empty export directory; tests put their own files in ``peer.export``. A missing
peer (``peers.MissingPeer``) skips the test with the Debian package to install, which the summary
lists, except under ``CI=true``, where it fails: CI must have installed every peer
(``tests/install-peers.sh``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

_HERE = str(Path(__file__).parent)
if _HERE not in sys.path:  # for `import peers` under any pytest import mode
    sys.path.insert(0, _HERE)

from peers import MissingPeer, Peer, start_diod, start_ganesha  # noqa: E402


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    if os.environ.get("CI") or call.excinfo is None or not call.excinfo.errisinstance(MissingPeer):
        return
    report = outcome.get_result()  # type: ignore[attr-defined]
    report.outcome = "skipped"
    report.longrepr = (str(item.path), item.location[1] or 0, f"Skipped: {call.excinfo.value}")


def _running(tmp_path_factory: pytest.TempPathFactory, name: str, start: Callable[[Path, Path], Peer]) -> Iterator[Peer]:
    base = tmp_path_factory.mktemp(name)
    export = base / "export"
    export.mkdir()
    peer = start(export, base)
    try:
        yield peer
    finally:
        peer.stop()


@pytest.fixture(scope="module")
def diod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peer]:
    yield from _running(tmp_path_factory, "diod", start_diod)


@pytest.fixture(scope="module")
def ganesha(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peer]:
    yield from _running(tmp_path_factory, "ganesha", start_ganesha)


@pytest.fixture(scope="session")
def v9fs_guest() -> Path:
    from kernel_guest import build_guest  # here, so that this file runs alone (tests copy it with peers.py only)

    return build_guest()

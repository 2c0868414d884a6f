"""Fixtures that run real third-party 9P2000.L servers: ``diod`` and ``ganesha`` (one per module).

Each gets a fresh, empty export directory; tests put their own files in ``peer.export``. A missing
server binary fails the test with the Debian package to install (CI installs them in ``.ci/run``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_HERE = str(Path(__file__).parent)
if _HERE not in sys.path:  # for `import peers` under any pytest import mode
    sys.path.insert(0, _HERE)

from peers import Peer, start_diod, start_ganesha  # noqa: E402


@pytest.fixture(scope="module")
def diod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peer]:
    base = tmp_path_factory.mktemp("diod")
    export = base / "export"
    export.mkdir()
    peer = start_diod(export, base)
    yield peer
    peer.stop()


@pytest.fixture(scope="module")
def ganesha(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peer]:
    base = tmp_path_factory.mktemp("ganesha")
    export = base / "export"
    export.mkdir()
    peer = start_ganesha(export, base)
    yield peer
    peer.stop()

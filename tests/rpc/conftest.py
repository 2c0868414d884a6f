from __future__ import annotations

import gc
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_HERE = str(Path(__file__).parent)
if _HERE not in sys.path:  # for `import services` under any pytest import mode
    sys.path.insert(0, _HERE)


@pytest.fixture
def no_asyncio_complaints(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """No "Task was destroyed but it is pending", no "exception was never retrieved": asyncio
    reports both through its logger, when the objects are collected. A module asks for it with
    ``pytest.mark.usefixtures``."""
    with caplog.at_level(logging.WARNING, logger="asyncio"):
        yield
        gc.collect()
    complaints = [r.getMessage() for r in caplog.records if r.name == "asyncio"]
    assert complaints == []

"""docs/cluster.md's example runs, so the page cannot drift from the library."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

PAGE = Path(__file__).resolve().parents[2] / "docs" / "cluster.md"


def test_the_page_example_runs() -> None:
    blocks = re.findall(r"^```python\n(.*?)^```", PAGE.read_text(), re.S | re.M)
    assert blocks
    for index, source in enumerate(blocks):
        name = f"cluster_doc_{index}"
        module = sys.modules[name] = types.ModuleType(name)
        try:
            exec(compile(source, name, "exec"), module.__dict__)
        finally:
            del sys.modules[name]

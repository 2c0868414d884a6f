"""The documentation's examples run: every ``python`` block of docs/wire-format.md, and the
README's first example, each in a fresh namespace, so a page cannot drift from the library."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks(path: Path) -> list[str]:
    return _BLOCK.findall(path.read_text())


WIRE_FORMAT_BLOCKS = python_blocks(ROOT / "docs" / "wire-format.md")


def test_the_pages_have_examples() -> None:
    assert len(WIRE_FORMAT_BLOCKS) >= 6
    assert python_blocks(ROOT / "README.md")


def run_as_module(source: str, name: str) -> None:
    """Runs ``source`` as the module ``name`` (dataclasses look a class's module up)."""
    module = types.ModuleType(name)
    sys.modules[name] = module
    try:
        exec(compile(source, name, "exec"), module.__dict__)
    finally:
        del sys.modules[name]


@pytest.mark.parametrize("index", range(len(WIRE_FORMAT_BLOCKS)))
def test_wire_format_page_example(index: int) -> None:
    run_as_module(WIRE_FORMAT_BLOCKS[index], f"docs_wire_format_{index}")


def test_readme_first_example() -> None:
    run_as_module(python_blocks(ROOT / "README.md")[0], "docs_readme")

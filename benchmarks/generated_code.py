"""Regenerates the code excerpts of ``benchmarks/generated-code.md`` from the code jetwire
generates now, so the page shows what runs.

Each excerpt in the page is a fenced ``python`` block after a marker line naming the class
and the generated functions to show::

    <!-- generated: jetwire.p9.messages:Rframe encode _f25enc -->

Run ``python -m benchmarks.generated_code`` to rewrite the page, ``--check`` to exit 1 when it
is stale (``tests/test_generated_code.py`` does). Names in generated code come from one
compile of each class in a fresh process, groups in their declared order, so they repeat."""

from __future__ import annotations

import importlib
import pathlib
import re
import sys
from typing import Any

import jetwire

PAGE = pathlib.Path(__file__).with_name("generated-code.md")
MARKER = re.compile(r"^<!-- generated: (\S+):(\S+) ((?:\S+ ?)+) -->\n```python\n.*?^```\n", re.M | re.S)


def unit_of(where: str, qualname: str) -> Any:
    obj: Any = importlib.import_module(where)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    unit = jetwire.Codec(obj).unit
    unit.compile_all()
    return unit


def function_source(source: str, name: str) -> str:
    """The text of top-level ``def name(...)`` in ``source``, up to the next top-level line."""
    lines = source.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"def {name}("))
    end = next((i for i in range(start + 1, len(lines)) if lines[i] and not lines[i][0].isspace()), len(lines))
    return "\n".join(lines[start:end]).rstrip()


def excerpt(where: str, qualname: str, names: list[str]) -> str:
    source = unit_of(where, qualname).source
    body = "\n\n\n".join(function_source(source, name) for name in names)
    return f"<!-- generated: {where}:{qualname} {' '.join(names)} -->\n```python\n{body}\n```\n"


def regenerate(page: str) -> str:
    return MARKER.sub(lambda m: excerpt(m[1], m[2], m[3].split()), page)


def main(argv: list[str]) -> int:
    page = PAGE.read_text()
    fresh = regenerate(page)
    if "--check" in argv:
        if fresh != page:
            print(f"{PAGE} is stale: run python -m benchmarks.generated_code", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(fresh)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Instructions per ``to_builtins`` and per ``convert``, counted by valgrind's callgrind (as
``benchmarks.instructions`` counts the codec): deterministic, so a change to jetwire/builtins.py
shows up whatever else the machine runs.

    python -m benchmarks.convert [--ops 2000] [--baseline-tree /tmp/base]

Cases: ``AppMsg`` (100 small structs walked in place), ``Rgetattr`` and ``Twalk`` frames (a
frame and its union walk through generators, the message in place), ``Tree`` (a recursive type,
every level through a generator) and ``Doc`` (a struct with a recursive field between plain
ones). ``--baseline-tree`` counts the same cases with another checkout's jetwire too.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from jetwire import u32, wireformat

ROOT = Path(__file__).parent.parent


@wireformat
@dataclasses.dataclass
class Tree:
    value: u32
    children: list[Tree]


@wireformat
@dataclasses.dataclass
class Doc:
    title: str
    tree: Tree | None
    count: u32
    tags: list[str]


def _tree(depth: int) -> Tree:
    return Tree(depth, [_tree(depth - 1) for _ in range(2)] if depth else [])


def sample(case: str) -> tuple[Any, Any]:
    """The value of ``case`` and its wire type."""
    from . import messages

    if case == "AppMsg":
        return messages.sample_app(), messages.AppMsg
    if case == "Rgetattr":
        from jetwire.p9 import Rframe
        return messages.sample_rgetattr(), Rframe
    if case == "Twalk":
        from jetwire.p9 import Tframe
        return messages.sample_twalk(), Tframe
    if case == "Tree":
        return _tree(4), Tree
    if case == "Doc":
        return Doc("a title", _tree(1), 7, ["x", "y"]), Doc
    raise ValueError(case)


CASES = ("AppMsg", "Rgetattr", "Twalk", "Tree", "Doc")

_CHILD = """
import sys
sys.path.insert(0, {jetwire_root!r})
import jetwire
assert jetwire.__file__.startswith({jetwire_root!r}), jetwire.__file__
sys.path.insert(0, {bench_root!r})  # these cases, whichever jetwire was imported above
from benchmarks.convert import sample
value, tp = sample({case!r})
data = jetwire.to_builtins(value, tp)
fn, arg = (jetwire.to_builtins, value) if {op!r} == "to_builtins" else (jetwire.convert, data)
assert jetwire.convert(data, tp) == value
fn(arg, tp)
for _ in range({n}):
    fn(arg, tp)
"""


def count(jetwire_root: str, case: str, op: str, n: int) -> int:
    code = _CHILD.format(jetwire_root=jetwire_root, bench_root=str(ROOT), case=case, op=op, n=n)
    result = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, "-c", code],
        capture_output=True, text=True, check=True, env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    found = re.search(r"Collected : (\d+)", result.stderr)
    if found is None:
        raise RuntimeError(f"callgrind printed no count:\n{result.stderr[-2000:]}")
    return int(found.group(1))


def per_op(jetwire_root: str, case: str, op: str, n: int) -> float:
    return (count(jetwire_root, case, op, n) - count(jetwire_root, case, op, 0)) / n


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.convert")
    parser.add_argument("--ops", type=int, default=2000, help="operations counted per figure")
    parser.add_argument("--only", default="", help="cases, comma-separated")
    parser.add_argument("--baseline-tree", default="", help="another checkout whose jetwire to count too")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is missing (Debian package valgrind)")
    trees = [("this tree", str(ROOT))] + ([("baseline", args.baseline_tree)] if args.baseline_tree else [])
    header = "| case | op | " + " | ".join(label for label, _ in trees) + (" | ratio |" if len(trees) > 1 else "")
    print(header)
    print("|---|---|" + "---:|" * (len(trees) + (len(trees) > 1)))
    for case in CASES:
        if args.only and case not in args.only.split(","):
            continue
        ops = max(args.ops // 20, 50) if case == "AppMsg" else args.ops
        for op in ("to_builtins", "convert"):
            figures = [per_op(root, case, op, ops) for _, root in trees]
            cells = " | ".join(f"{f:,.0f}" for f in figures)
            ratio = f" | {figures[0] / figures[1]:.3f} |" if len(figures) > 1 else ""
            print(f"| {case} | {op} | {cells}{ratio}", flush=True)


if __name__ == "__main__":
    main()

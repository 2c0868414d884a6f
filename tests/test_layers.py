"""Each module imports only from the layers below it, and within its layer only from the modules
listed before it, as docs/design.md's "Layers" section lists them.

The lists are read from design.md itself, so the document and this test cannot drift apart;
every module of the package must be placed by them, so a new module cannot slip past unplaced.
Every import counts: at module level, inside functions (a deferred import is still a
dependency, only a later one) and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
import pathlib
import re

import pytest

import jetwire

ROOT = pathlib.Path(jetwire.__file__).parent
DESIGN = ROOT.parent / "docs" / "design.md"

# Imports the layer lists forbid that are still in the code, each with the reason it is still
# there. Each names a file its owner is changing; remove the entry with the import.
ALLOWED: dict[tuple[str, str], str] = {
    # Type names only (under TYPE_CHECKING): a class's state holds its units, which unit.py
    # makes from the plans the planner, which reads the state, gives it.
    ("jetwire.compiler.state", "jetwire.compiler.unit"): "the type of ClassState.units",
}


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts).removesuffix(".__init__")


MODULES = sorted(module_name(p) for p in ROOT.rglob("*.py"))
PACKAGES = {module_name(p) for p in ROOT.rglob("__init__.py")}


# -- the lists in docs/design.md --------------------------------------------------------------

def _layers_section() -> str:
    text = DESIGN.read_text()
    start = text.index("\n## Layers\n")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def _listed(head: str) -> list[str]:
    """The modules a layer's list names, in order: ``compiler/`` (``a.py``, ``b.py``) lists the
    package's modules, then its ``__init__.py``."""
    order = []
    for name, inner in re.findall(r"`([\w./]+)`(?:\s*\(([^)]*)\))?", head):
        if name.endswith("/"):
            package = "jetwire." + name.rstrip("/").replace("/", ".")
            order += [f"{package}.{m.removesuffix('.py')}" for m in re.findall(r"`([\w.]+)`", inner)]
            order.append(package)  # its __init__: after the modules whose API it gathers
        elif name == "__init__.py":
            order.append("jetwire")
        else:
            order.append("jetwire." + name.removesuffix(".py").replace("/", "."))
    return order


def design_layers() -> tuple[dict[str, tuple[int, int]], set[str]]:
    """Each placed module's (layer, position within the layer), and the modules outside the layers."""
    section = _layers_section()
    place: dict[str, tuple[int, int]] = {}
    items = re.findall(r"^(\d+)\. (.*?)(?=^\d+\. |^\S|\Z)", section, re.MULTILINE | re.DOTALL)
    assert [int(n) for n, _ in items] == list(range(1, len(items) + 1)), "layers numbered 1, 2, 3..."
    for number, item in items:
        head = item.split(":", 1)[0]
        for position, module in enumerate(_listed(head)):
            assert module not in place, f"design.md places {module} twice"
            place[module] = (int(number), position)
    outside = re.search(r"^Outside the layers: (.*?)(?:\n\n|\Z)", section, re.MULTILINE | re.DOTALL)
    assert outside is not None, "design.md names the modules outside the layers"
    free = {"jetwire." + m.removesuffix(".py") for m in re.findall(r"`(\w+\.py)`", outside.group(1))}
    return place, free


PLACE, OUTSIDE = design_layers()


# -- the imports in the code ------------------------------------------------------------------

def imports(path: pathlib.Path, module: str) -> set[str]:
    """The jetwire modules ``module`` imports: ``from X import name`` is the module ``X.name``
    when there is one (``from . import support``), else ``X``."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target == "jetwire" or target.startswith("jetwire."):
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    found.add(sub if sub in MODULES else target)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name == "jetwire" or a.name.startswith("jetwire."))
    return found


def path_of(module: str) -> pathlib.Path:
    path = ROOT.parent.joinpath(*module.split("."))
    return path / "__init__.py" if module in PACKAGES else path.with_suffix(".py")


def forbidden(module: str, targets: set[str]) -> list[str]:
    """The ``targets`` that ``module``'s place does not let it import."""
    if module in OUTSIDE:
        return []
    mine = PLACE[module]
    bad = []
    for target in sorted(targets - {module}):
        if target in OUTSIDE:
            bad.append(target)
            continue
        theirs = PLACE[target]
        if theirs[0] > mine[0] or (theirs[0] == mine[0] and theirs[1] >= mine[1]):
            bad.append(target)
    return bad


def problems(module: str) -> list[tuple[str, str]]:
    """Each import of ``module`` that its place does not allow, as (module, imported)."""
    return [(module, target) for target in forbidden(module, imports(path_of(module), module))]


@pytest.mark.parametrize("module", MODULES)
def test_every_module_has_a_place(module: str) -> None:
    assert module in PLACE or module in OUTSIDE, f"{module} is in no layer of docs/design.md's list"


def test_every_listed_module_exists() -> None:
    assert sorted(set(PLACE) | OUTSIDE) == MODULES


@pytest.mark.parametrize("module", MODULES)
def test_module_imports_only_what_comes_before_it(module: str) -> None:
    if module not in PLACE and module not in OUTSIDE:
        pytest.fail(f"{module} is in no layer of docs/design.md's list")
    for importer, target in problems(module):
        if (importer, target) in ALLOWED:
            continue
        if target in OUTSIDE:
            pytest.fail(f"{importer} imports {target}, which is outside the layers: nothing may import it")
        pytest.fail(f"{importer} (layer {PLACE[importer][0]}) imports {target} (layer {PLACE[target][0]}), "
                    "which comes after it in docs/design.md's list")


def test_every_allowance_is_still_needed() -> None:
    """An allowance outlives its import only by mistake: remove it when the import goes."""
    found = {bad for module in MODULES if module in PLACE or module in OUTSIDE for bad in problems(module)}
    assert set(ALLOWED) <= found, f"no longer imported, remove from ALLOWED: {set(ALLOWED) - found}"


# -- the checker itself -----------------------------------------------------------------------

def test_the_lists_are_read_in_order_with_packages_after_their_modules() -> None:
    assert _listed("`errors.py`, `markers.py`") == ["jetwire.errors", "jetwire.markers"]
    assert _listed("`compiler/` (`plan.py`, `unit.py`)") == [
        "jetwire.compiler.plan", "jetwire.compiler.unit", "jetwire.compiler"]
    assert PLACE["jetwire"][0] > PLACE["jetwire.p9"][0] == PLACE["jetwire.stdtypes"][0] > PLACE["jetwire.runtime"][0]
    assert PLACE["jetwire.compiler.framing"] < PLACE["jetwire.compiler.plan"]
    assert OUTSIDE == {"jetwire.mypy"}


def test_the_checker_finds_imports_of_every_form(tmp_path: pathlib.Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "from . import support\n"
        "from .plan import Node\n"
        "from ..runtime.codec import Codec\n"
        "import jetwire.p9\n"
        "if TYPE_CHECKING:\n    from ..stdtypes import Level\n"
        "def later():\n    from .unit import compile_unit\n"
    )
    assert imports(source, "jetwire.compiler.interpret") == {
        "jetwire.compiler.support", "jetwire.compiler.plan", "jetwire.runtime.codec", "jetwire.p9",
        "jetwire.stdtypes", "jetwire.compiler.unit",
    }
    package_init = tmp_path / "__init__.py"
    package_init.write_text("from .client import Client\nfrom . import constants\n")
    assert imports(package_init, "jetwire.p9") == {"jetwire.p9.client", "jetwire.p9.constants"}


def test_the_checker_refuses_upward_later_and_outside_imports() -> None:
    assert forbidden("jetwire.markers", {"jetwire.errors", "jetwire.markers"}) == []  # listed before it
    assert forbidden("jetwire.errors", {"jetwire.markers"}) == ["jetwire.markers"]  # listed after it
    assert forbidden("jetwire.compiler.plan", {"jetwire.runtime.codec", "jetwire.errors"}) == ["jetwire.runtime.codec"]
    assert forbidden("jetwire.p9.session", {"jetwire", "jetwire.p9.client", "jetwire.p9.messages"}) == [
        "jetwire", "jetwire.p9.client"]
    assert forbidden("jetwire.p9", {"jetwire.p9.client"}) == []  # a package gathers its modules
    assert forbidden("jetwire.errors", {"jetwire.mypy"}) == ["jetwire.mypy"]
    assert forbidden("jetwire.mypy", {"jetwire"}) == []

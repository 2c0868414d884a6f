"""Each layer imports only from the layers below it (docs/design.md)."""

from __future__ import annotations

import ast
import pathlib

import pytest

import jetwire

ROOT = pathlib.Path(jetwire.__file__).parent
LAYER = {
    "jetwire.markers": 1, "jetwire.errors": 1, "jetwire.wiretypes": 1,
    "jetwire.compiler": 2, "jetwire.runtime": 3, "jetwire.stdtypes": 4, "jetwire.testing": 4,
    "jetwire.builtins": 4,
    "jetwire": 5,
    "jetwire.mypy": 6,  # the mypy plugin: above everything, so no jetwire module may import it
}


def layer_of(module: str) -> int:
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        found = LAYER.get(".".join(parts[:n]))
        if found is not None:
            return found
    raise KeyError(module)


def imports(path: pathlib.Path, module: str) -> set[str]:
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
            if target.startswith("jetwire"):
                names = [f"{target}.{a.name}" for a in node.names]
                found.update(n if n.rsplit(".", 1)[0] in LAYER or "." not in n else target for n in names)
                found.add(target)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("jetwire"))
    return found


MODULES = sorted(
    ("jetwire." + ".".join(p.relative_to(ROOT).with_suffix("").parts)).removesuffix(".__init__")
    for p in ROOT.rglob("*.py")
)


@pytest.mark.parametrize("module", MODULES)
def test_module_imports_only_lower_layers(module: str) -> None:
    path = ROOT.joinpath(*module.split(".")[1:])
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    mine = layer_of(module)
    for target in imports(path, module):
        if target == "jetwire" and mine == 5:
            continue
        assert layer_of(target) <= mine, f"{module} (layer {mine}) imports {target} (layer {layer_of(target)})"

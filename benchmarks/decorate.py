"""Times declaring classes, in a fresh process: ``python -m benchmarks.decorate KIND [dataclass]``.

KIND is ``app`` (200 generated application classes), ``9p`` (every 9P2000.L message,
``p9_messages.py``), or either with ``-postponed`` (the same source under
``from __future__ import annotations``). The source is compiled first (not timed), then executed
as a registered module, as an import from a ``.pyc`` would: that is the decoration time. Then
each class's codec is generated (first use: one ``decode`` each) and timed separately. With
``dataclass`` the same source runs with ``@dataclasses.dataclass`` in place of ``@wireformat``:
the part of the cost that is Python's own.

Prints one JSON object: ``{"classes": N, "decorate_ms": ..., "first_use_ms": ...}``.
"""

from __future__ import annotations

import json
import re
import sys
import time
import types
from pathlib import Path

APP_CLASSES = 200

# Field types of the generated app, cycled so that every class has a different mix.
_APP_TYPES = (
    "u8", "u16", "u32", "u64", "i32", "i64", "bool", "str", "bytes", "Optional[str]", "list[u32]",
    "list[str]", "dict[str, u32]", "Optional[u64]", "f64", "tuple[u16, str]", "set[u32]",
)


def app_source(count: int = APP_CLASSES) -> str:
    """``count`` @wireformat classes of 3 to 12 fields (7.5 on average); about one in three
    also holds an earlier class (directly, in a list, or optionally)."""
    lines = [
        '"""A generated application: the classes of a service\'s messages."""',
        "from typing import Optional",
        "",
        "from jetwire import f64, i32, i64, u8, u16, u32, u64, wireformat",
        "",
    ]
    for i in range(count):
        lines += ["", "@wireformat", f"class App{i}:"]
        n_fields = 3 + (i * 7) % 10
        for j in range(n_fields):
            lines.append(f"    f{j}: {_APP_TYPES[(i * 5 + j * 3) % len(_APP_TYPES)]}")
        if i and i % 3 == 0:
            ref = f"App{max(0, i - 1 - i % 7)}"
            lines.append(f"    nested: {(ref, f'list[{ref}]', f'Optional[{ref}]')[i % 9 // 3]}")
    return "\n".join(lines) + "\n"


def p9_source() -> str:
    return Path(__file__).with_name("p9_messages.py").read_text(encoding="utf-8")


def source(kind: str, *, dataclass: bool = False) -> str:
    base, _, variant = kind.partition("-")
    text = {"app": app_source, "9p": p9_source}[base]()
    if dataclass:
        text, n = re.subn(r"^(from jetwire import .*), wireformat$",
                          r"\1\nfrom dataclasses import dataclass as wireformat", text, flags=re.M)
        assert n == 1, "the source imports wireformat from jetwire on one line, last"
    if variant == "postponed":
        text = "from __future__ import annotations\n" + text
    elif variant:
        raise SystemExit(f"unknown kind {kind!r}")
    return text


def measure(kind: str, *, dataclass: bool = False) -> dict[str, float]:
    import jetwire  # imported before the clock starts: its import is measured on its own

    code = compile(source(kind, dataclass=dataclass), f"<benchmarks.decorate {kind}>", "exec")
    name = f"_jetwire_bench_{kind.replace('-', '_')}"
    module = types.ModuleType(name)
    sys.modules[name] = module
    start = time.perf_counter()
    exec(code, module.__dict__)
    decorated = time.perf_counter()
    classes = [v for v in vars(module).values() if isinstance(v, type) and v.__module__ == name]
    first_use = 0.0
    if not dataclass:
        start_use = time.perf_counter()
        for cls in classes:
            try:
                cls.decode(b"")  # type: ignore[attr-defined]  # generates the codec, then fails or not
            except jetwire.DecodeError:
                pass
        first_use = time.perf_counter() - start_use
    return {"classes": len(classes), "decorate_ms": (decorated - start) * 1e3, "first_use_ms": first_use * 1e3}


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in ("app", "app-postponed", "9p", "9p-postponed") or argv[1:] not in ([], ["dataclass"]):
        raise SystemExit("usage: python -m benchmarks.decorate {app,9p}[-postponed] [dataclass]")
    print(json.dumps(measure(argv[0], dataclass=argv[1:] == ["dataclass"])))


if __name__ == "__main__":
    main(sys.argv[1:])

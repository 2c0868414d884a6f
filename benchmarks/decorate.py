"""Times declaring classes, in a fresh process: ``python -m benchmarks.decorate KIND [dataclass]``.

KIND is ``app`` (200 generated application classes), ``app-postponed`` (the same source under
``from __future__ import annotations``) or ``9p``: the source of ``jetwire.p9.messages`` itself
(every 9P2000.L message, Qid, Dirent, the ``Tmessage``/``Rmessage`` unions and the
``Tframe``/``Rframe`` classes, as written: postponed annotations), its relative imports made
absolute. The source is compiled first (not timed), then executed as a registered module, as an
import from a ``.pyc`` would: that is the decoration time (``jetwire`` is imported before the
clock starts). Then the codecs are generated (first use: one ``decode`` each) and timed
separately; for ``9p``, ``Tframe`` and ``Rframe`` first (the codecs a 9P client or server
compiles), then every other class's own. With ``dataclass`` the same source runs with
``@dataclasses.dataclass`` in place of ``@wireformat`` (and, for ``9p``, a bare ``Generic``
class in place of ``Frame``): the part of the cost that is Python's own.

Prints one JSON object: ``{"classes": N, "decorate_ms": ..., "first_use_ms": ...,
"first_use_frames_ms": ...}``.
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


P9_MESSAGES = Path(__file__).resolve().parents[1] / "jetwire" / "p9" / "messages.py"

# For ``9p dataclass``: what stands in for jetwire's Frame (Python's share of declaring Tframe/Rframe).
_FRAME_STUB = """from typing import Generic, TypeVar
_M = TypeVar("_M")
class Frame(Generic[_M]):
    __slots__ = ("msg", "tag")
"""


def _replace_once(text: str, old: str, new: str) -> str:
    if text.count(old) != 1:
        raise SystemExit(f"jetwire/p9/messages.py no longer has {old!r} once: update benchmarks/decorate.py")
    return text.replace(old, new)


def p9_source(*, dataclass: bool = False) -> str:
    """jetwire/p9/messages.py with absolute imports (it runs as a module outside the package)."""
    text = P9_MESSAGES.read_text(encoding="utf-8")
    if dataclass:
        text = _replace_once(text, "from ..runtime.decorators import WireFormat, wireformat\n",
                             "from dataclasses import dataclass as wireformat\nWireFormat = object\n")
        text = _replace_once(text, "from ..runtime.frames import Frame\n", _FRAME_STUB)
    text, n = re.subn(r"^from \.\.", "from jetwire.", text, flags=re.M)
    if n == 0 or re.search(r"^from \.", text, flags=re.M):
        raise SystemExit("unexpected imports in jetwire/p9/messages.py: update benchmarks/decorate.py")
    return text


def source(kind: str, *, dataclass: bool = False) -> str:
    if kind == "9p":
        return p9_source(dataclass=dataclass)
    base, _, variant = kind.partition("-")
    if base != "app":
        raise SystemExit(f"unknown kind {kind!r}")
    text = app_source()
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

    # dont_inherit: this file's own `from __future__ import annotations` must not leak into "app"
    code = compile(source(kind, dataclass=dataclass), f"<benchmarks.decorate {kind}>", "exec", dont_inherit=True)
    name = f"_jetwire_bench_{kind.replace('-', '_')}"
    module = types.ModuleType(name)
    sys.modules[name] = module
    start = time.perf_counter()
    exec(code, module.__dict__)
    decorated = time.perf_counter()
    classes = [v for v in vars(module).values() if isinstance(v, type) and v.__module__ == name]
    first_use = first_use_frames = 0.0
    if not dataclass:
        frames = [cls for cls in classes if issubclass(cls, jetwire.Frame)]
        others = [cls for cls in classes if cls not in frames]
        start_use = time.perf_counter()
        for group in (frames, others):
            for cls in group:
                try:
                    cls.decode(b"")  # type: ignore[attr-defined]  # generates the codec, then fails or not
                except jetwire.DecodeError:
                    pass
            if group is frames:
                first_use_frames = time.perf_counter() - start_use
        first_use = time.perf_counter() - start_use
    return {"classes": len(classes), "decorate_ms": (decorated - start) * 1e3, "first_use_ms": first_use * 1e3,
            "first_use_frames_ms": first_use_frames * 1e3}


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in ("app", "app-postponed", "9p") or argv[1:] not in ([], ["dataclass"]):
        raise SystemExit("usage: python -m benchmarks.decorate {app,app-postponed,9p} [dataclass]")
    print(json.dumps(measure(argv[0], dataclass=argv[1:] == ["dataclass"])))


if __name__ == "__main__":
    main(sys.argv[1:])

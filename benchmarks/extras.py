"""The measurements beside the main table: copies made by a 64 KiB Twrite decode, scaling with
the number of elements, the cost of declaring classes, and ``import jetwire``."""

from __future__ import annotations

import gc
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jetwire.p9 import Tframe

from . import handwritten as hand
from . import messages as msg
from .timing import measure_ns

ROOT = Path(__file__).resolve().parents[1]


# --- copies ----------------------------------------------------------------------------------

def _peak_during(fn: Callable[[Any], Any], arg: Any) -> tuple[int, Any]:
    """Bytes allocated at the peak of ``fn(arg)``, above what was allocated before it."""
    fn(arg)
    gc.collect()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        result = fn(arg)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - before, result


def copy_check() -> list[dict[str, Any]]:
    """Decodes a Twrite of 64 KiB from bytes, bytearray and memoryview input under tracemalloc.
    The decoded ``data`` is ``bytes``, so one copy is the floor; the peak of the allocations
    during the call says how many copies of the data existed at once. ``ok`` means at most one."""
    value = msg.sample_twrite()
    frame = value.encode()
    size = len(value.msg.data)
    Tframe.decode(frame)  # first use: Tframe.decode is the generated function from here on
    decoders = {"jetwire": Tframe.decode, "hand-written struct": hand.decode_tframe}
    rows = []
    for impl, decode in decoders.items():
        for kind, buffer in (("bytes", frame), ("bytearray", bytearray(frame)), ("memoryview", memoryview(frame))):
            peak, result = _peak_during(decode, buffer)
            if result.msg.data != value.msg.data or type(result.msg.data) is not bytes:
                raise AssertionError(f"{impl} decoded the wrong data from {kind}")
            copies = peak / size
            rows.append({"impl": impl, "input": kind, "peak_bytes": peak, "copies": copies, "ok": copies < 1.5})
    return rows


# --- scaling ---------------------------------------------------------------------------------

SCALING_SIZES = (10, 1_000, 60_000)


def scaling(repeats: int, target: float) -> list[dict[str, Any]]:
    """ns per element for encode and decode of U32Batch and StrBatch at 10, 1,000 and 60,000
    elements, jetwire and the hand-written codec. Linear code keeps ns/element flat from 1,000
    to 60,000 (the 10-element row is dominated by the per-message cost)."""
    kinds = {
        "list[u32]": (msg.sample_u32_batch, msg.U32Batch, hand.encode_u32_batch, hand.decode_u32_batch),
        "list[str]": (msg.sample_str_batch, msg.StrBatch, hand.encode_str_batch, hand.decode_str_batch),
    }
    rows = []
    for kind, (sample, cls, h_encode, h_decode) in kinds.items():
        for n in SCALING_SIZES:
            value = sample(n)
            data = value.encode()
            if h_encode(value) != data or h_decode(data) != value or cls.decode(data) != value:  # type: ignore[attr-defined]
                raise AssertionError(f"{kind} x {n}: jetwire and the hand-written codec disagree")
            row: dict[str, Any] = {"kind": kind, "n": n, "bytes": len(data)}
            for impl, encode, decode in (("jetwire", cls.encode, cls.decode), ("hand", h_encode, h_decode)):  # type: ignore[attr-defined]
                row[f"{impl}_encode"] = measure_ns(encode, value, repeats=repeats, target=target)
                row[f"{impl}_decode"] = measure_ns(decode, data, repeats=repeats, target=target)
            rows.append(row)
    return rows


# --- fresh processes -------------------------------------------------------------------------

PYCACHE = Path(tempfile.gettempdir()) / "jetwire-bench-pycache"


def subprocess_env() -> dict[str, str]:
    """The environment of the fresh processes: bytecode cached, as users have it, but in a
    directory outside the project (``PYTHONPYCACHEPREFIX``), even where
    ``PYTHONDONTWRITEBYTECODE`` is set (it is on the project's machines: without a cache every
    import compiles jetwire from source, about twice the import time)."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.setdefault("PYTHONPYCACHEPREFIX", str(PYCACHE))
    return env


def _run(args: list[str]) -> str:
    out = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, check=True,
                         env=subprocess_env())
    return out.stdout + out.stderr


def decoration(runs: int, kinds: tuple[str, ...]) -> list[dict[str, Any]]:
    """Median over ``runs`` fresh processes of declaring each set of classes, with jetwire and
    with plain ``@dataclass`` (alternating, so load changes hit both)."""
    _run(["-c", "import benchmarks.decorate, jetwire"])  # bytecode cache written
    rows = []
    for kind in kinds:
        jw: list[dict[str, float]] = []
        dc: list[dict[str, float]] = []
        for _ in range(runs):
            jw.append(json.loads(_run(["-m", "benchmarks.decorate", kind])))
            dc.append(json.loads(_run(["-m", "benchmarks.decorate", kind, "dataclass"])))
        rows.append({
            "kind": kind,
            "runs": runs,
            "classes": jw[0]["classes"],
            "decorate_ms": statistics.median(r["decorate_ms"] for r in jw),
            "dataclass_ms": statistics.median(r["decorate_ms"] for r in dc),
            "first_use_ms": statistics.median(r["first_use_ms"] for r in jw),
            "first_use_frames_ms": statistics.median(r["first_use_frames_ms"] for r in jw),
        })
    return rows


def import_time(runs: int) -> dict[str, Any]:
    """``import jetwire`` and ``import jetwire.p9`` in a fresh process: ``-X importtime``'s
    cumulative figure for each (median), and the wall clock of ``python -c "import ..."`` minus
    ``python -c pass`` (medians, runs alternated)."""
    modules = ("jetwire", "jetwire.p9")
    for module in modules:
        _run(["-c", f"import {module}"])  # bytecode cache written, file cache warm
    out: dict[str, Any] = {"runs": runs}
    for module in modules:
        cumulative = []
        for _ in range(runs):
            err = _run(["-X", "importtime", "-c", f"import {module}"])
            match = re.search(rf"^import time:\s+\d+\s+\|\s+(\d+)\s+\|\s*{re.escape(module)}$", err, re.M)
            if match is None:
                raise AssertionError(f"no {module} line in -X importtime output:\n{err[-2000:]}")
            cumulative.append(int(match.group(1)) / 1e3)
        out[module] = {"importtime_ms": statistics.median(cumulative)}
    walls: dict[str, list[float]] = {m: [] for m in ("pass", *modules)}
    for _ in range(runs):
        for module in walls:
            start = time.perf_counter()
            _run(["-c", "pass" if module == "pass" else f"import {module}"])
            walls[module].append(time.perf_counter() - start)
    bare = statistics.median(walls["pass"])
    out["wall_pass_ms"] = bare * 1e3
    for module in modules:
        out[module]["wall_import_ms"] = statistics.median(walls[module]) * 1e3
        out[module]["wall_delta_ms"] = (statistics.median(walls[module]) - bare) * 1e3
    return out

"""The Markdown report: ratio table, ns/op table, and the extra measurements."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from .cases import (
    CONSTRUCT,
    CONSTRUCT_COMPILED,
    HAND,
    IMPLS,
    JETWIRE,
    MSGSPEC,
    OPS,
    SPECS,
)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
TARGET = 1.1  # issue 3: jetwire within 1.1x of the hand-written codec

Results = dict[tuple[str, str, str], float]  # (payload, impl, op) -> median ns per op


def _ns(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def _ratio(value: float | None, base: float | None, mark: bool = False) -> str:
    if value is None or not base:
        return "—"
    ratio = value / base
    text = f"{ratio:.2f}"
    return f"**{text}**" if mark and ratio > TARGET else text


def _git_revision() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "jetwire"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown revision"
    return f"{rev} + uncommitted changes in jetwire/" if dirty else rev


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def environment(mode: str, settings: str) -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"Python {platform.python_version()} ({platform.python_implementation()}) on {platform.platform()}, "
        f"{os.cpu_count()} CPUs, load average {load} at the end.  \n"
        f"jetwire {_version('jetwire')} at {_git_revision()}; construct {_version('construct')}, "
        f"msgspec {_version('msgspec')}, pyperf {_version('pyperf')}.  \n"
        f"Mode: {mode}: {settings}"
    )


def ratio_table(results: Results, payloads: tuple[str, ...]) -> list[str]:
    columns = [(JETWIRE, "jetwire"), (CONSTRUCT, "construct"), (CONSTRUCT_COMPILED, "construct compiled"),
               (MSGSPEC, "msgspec")]
    head = "| payload | " + " | ".join(f"{label} enc | {label} dec" for _, label in columns) + " |"
    lines = [head, "|---|" + "---:|" * (2 * len(columns))]
    for payload in payloads:
        cells = []
        for impl, _ in columns:
            for op in OPS:
                cells.append(_ratio(results.get((payload, impl, op)), results.get((payload, HAND, op)), impl == JETWIRE))
        lines.append(f"| {payload} | " + " | ".join(cells) + " |")
    return lines


def ns_table(results: Results, payloads: tuple[str, ...]) -> list[str]:
    lines = ["| payload | implementation | encode ns | x hand | decode ns | x hand |", "|---|---|---:|---:|---:|---:|"]
    for payload in payloads:
        for impl in IMPLS:
            enc = results.get((payload, impl, "encode"))
            dec = results.get((payload, impl, "decode"))
            if enc is None and dec is None:
                continue
            lines.append(
                f"| {payload} | {impl} | {_ns(enc)} | {_ratio(enc, results.get((payload, HAND, 'encode')), impl == JETWIRE)} "
                f"| {_ns(dec)} | {_ratio(dec, results.get((payload, HAND, 'decode')), impl == JETWIRE)} |"
            )
    return lines


def targets_line(results: Results, payloads: tuple[str, ...]) -> str:
    pairs = [(p, op) for p in payloads for op in OPS if (p, JETWIRE, op) in results and (p, HAND, op) in results]
    met = [(p, op) for p, op in pairs if results[(p, JETWIRE, op)] <= TARGET * results[(p, HAND, op)]]
    missed = ", ".join(f"{p} {op} {results[(p, JETWIRE, op)] / results[(p, HAND, op)]:.2f}x"
                       for p, op in pairs if (p, op) not in met)
    return f"jetwire within {TARGET}x of the hand-written codec: {len(met)} of {len(pairs)}" + (
        f" (missed: {missed})." if missed else ".")


FRAME_RATE_PAYLOADS = ("Twalk", "Rgetattr", "Rread64K")  # issue 4's frame-rate rows


def frame_rate_table(results: Results, payloads: tuple[str, ...]) -> list[str]:
    """Frames per second (1e9 / median ns) of jetwire and the hand-written codec, one thread."""
    rows = [p for p in FRAME_RATE_PAYLOADS if p in payloads]
    if not rows:
        return []
    lines = ["| frame | jetwire encode /s | hand-written encode /s | jetwire decode /s | hand-written decode /s |",
             "|---|---:|---:|---:|---:|"]

    def rate(key: tuple[str, str, str]) -> str:
        ns = results.get(key)
        return f"{1e9 / ns:,.0f}" if ns else "—"

    for p in rows:
        lines.append(f"| {p}: {SPECS[p].description} | {rate((p, JETWIRE, 'encode'))} | {rate((p, HAND, 'encode'))} "
                     f"| {rate((p, JETWIRE, 'decode'))} | {rate((p, HAND, 'decode'))} |")
    return lines


def render(results: Results, payloads: tuple[str, ...], extras: dict[str, Any], *, mode: str, settings: str,
           date: datetime.date) -> str:
    out = [f"# jetwire benchmarks, {date.isoformat()} ({mode} mode)", "", environment(mode, settings), ""]
    out += ["## Ratio to the hand-written struct codec", "",
            "Median time of each implementation divided by the hand-written codec's median for the same "
            "payload and operation, in the same run: below 1.00 is faster than the hand-written code. "
            f"jetwire ratios above the issue's target of {TARGET} are in bold.", ""]
    out += ratio_table(results, payloads)
    out += ["", targets_line(results, payloads), ""]
    rates = frame_rate_table(results, payloads)
    if rates:
        out += ["## Frame rates", "",
                "Frames per second of one thread (1e9 / the median ns below): encoding a value to a whole frame "
                "and decoding a whole frame back to a value.", ""] + rates + [""]
    out += ["## Median ns per operation", "",
            "Payloads: " + "; ".join(f"{p} {SPECS[p].description}" for p in payloads) + ". "
            f"\"{JETWIRE}\" is `jetwire.p9`'s frames as a 9P peer uses them, `frame.encode()` and "
            "`Tframe.decode(data)`/`Rframe.decode(data)` (size, type and every byte checked), and "
            "`msg.encode()`/`AppMsg.decode(data)` for AppMsg.", ""]
    out += ns_table(results, payloads)
    if "copies" in extras:
        out += ["", "## Decoding a 64 KiB Twrite: copies of the data", "",
                "Peak of the allocations during one decode (tracemalloc), in units of the 64 KiB payload. "
                "The decoded `data` is a new `bytes`, so 1.0 is the floor; 2.0 would be a second copy.", "",
                "| decoder | input | peak allocated | copies | at most one copy |", "|---|---|---:|---:|---|"]
        for row in extras["copies"]:
            out.append(f"| {row['impl']} | {row['input']} | {row['peak_bytes']:,} B | {row['copies']:.2f} | "
                       f"{'yes' if row['ok'] else '**no**'} |")
    if "scaling" in extras:
        out += ["", "## Long vectors: ns per element", "",
                "`U32Batch {seq u32, values list[u32]}` and `StrBatch {seq u32, names list[str]}` (names "
                "`name-0`, `name-1`, ...). Linear code keeps ns/element flat from 1,000 to 60,000 elements.", "",
                "| message | elements | bytes | jetwire encode | hand encode | x hand | jetwire decode | hand decode | x hand |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for row in extras["scaling"]:
            n = row["n"]
            out.append(
                f"| {row['kind']} | {n:,} | {row['bytes']:,} | {row['jetwire_encode'] / n:.1f} | {row['hand_encode'] / n:.1f} "
                f"| {row['jetwire_encode'] / row['hand_encode']:.2f} | {row['jetwire_decode'] / n:.1f} "
                f"| {row['hand_decode'] / n:.1f} | {row['jetwire_decode'] / row['hand_decode']:.2f} |")
        growth = []
        for kind in dict.fromkeys(r["kind"] for r in extras["scaling"]):
            rows = {r["n"]: r for r in extras["scaling"] if r["kind"] == kind}
            if 1_000 in rows and 60_000 in rows:
                for op in OPS:
                    g = (rows[60_000][f"jetwire_{op}"] / 60_000) / (rows[1_000][f"jetwire_{op}"] / 1_000)
                    growth.append(f"{kind} {op} {g:.2f}")
        out += ["", "jetwire ns/element at 60,000 ÷ at 1,000 (1.0 is linear; quadratic code would give ~60): "
                + ", ".join(growth) + "."]
    if "decoration" in extras:
        out += ["", "## Declaring classes", "",
                "Fresh process each, medians. \"decorate\" executes the module source (compiled beforehand, as "
                "from a `.pyc`) with `@wireformat`; \"@dataclass alone\" is the same source with "
                "`@dataclasses.dataclass`, for scale (`@wireformat` writes `__init__`, `__repr__`, `__eq__` and "
                "the docstring on first use, which `@dataclass` compiles at once); \"first use\" then generates "
                "and compiles every class's decoder (one `decode` each: the encoder and the other groups wait "
                "for their own first use). `app`: 200 generated classes; `-postponed`: the same source under "
                "`from __future__ import annotations`; `9p`: the source of `jetwire.p9.messages` (every "
                "9P2000.L message, Qid, Dirent, Tframe and Rframe; postponed annotations, as written), where "
                "first use is Tframe and Rframe (what a 9P client or server compiles) then every other class. "
                f"Runs per figure: {extras['decoration'][0].get('runs', '?')}.", "",
                "| classes | count | decorate ms | @dataclass alone ms | decorate ÷ @dataclass | first use ms |",
                "|---|---:|---:|---:|---:|---:|"]
        for row in extras["decoration"]:
            first = f"{row['first_use_ms']:.1f}"
            if row["kind"] == "9p":
                first += f" (Tframe + Rframe: {row['first_use_frames_ms']:.1f})"
            out.append(f"| {row['kind']} | {row['classes']} | {row['decorate_ms']:.1f} | {row['dataclass_ms']:.1f} "
                       f"| {row['decorate_ms'] / row['dataclass_ms']:.2f} | {first} |")
    if "import" in extras:
        imp = extras["import"]
        out += ["", "## import jetwire", "",
                f"Fresh process with bytecode cached, medians of {imp['runs']} runs: `-X importtime` cumulative for the "
                f"package, and the wall clock of `python -c \"import ...\"` minus `python -c pass` "
                f"({imp['wall_pass_ms']:.1f} ms). `jetwire.p9` includes jetwire, its 9P messages, the session "
                "and the asyncio client (and asyncio itself).", "",
                "| import | -X importtime ms | wall ms | wall - pass ms |", "|---|---:|---:|---:|"]
        for module in ("jetwire", "jetwire.p9"):
            row = imp[module]
            out.append(f"| `{module}` | **{row['importtime_ms']:.1f}** | {row['wall_import_ms']:.1f} "
                       f"| **{row['wall_delta_ms']:.1f}** |")
    if "verification" in extras:
        out += ["", "## Checked before timing", ""] + [f"- {line.strip()}" for line in extras["verification"]]
    return "\n".join(out) + "\n"


def save(text: str, *, mode: str, date: datetime.date, label: str | None = None) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{date.isoformat()}{f'-{label}' if label else ''}-{mode}.md"
    path.write_text(text, encoding="utf-8")
    return path


def profile_areas(path: Path, top: int, area: Callable[[str, str], str]) -> tuple[str, float, dict[str, float]]:
    """A cProfile output file read back: the ``top`` functions by own time (as pstats prints
    them, with this checkout's and the standard library's paths cut short), the total time
    profiled, and own time summed by ``area(filename, function)``."""
    import io
    import pstats

    text = io.StringIO()
    stats = pstats.Stats(str(path), stream=text)
    stats.sort_stats("tottime").print_stats(top)
    body = text.getvalue()
    body = body[body.index("   ncalls"):] if "   ncalls" in body else body
    body = body.replace(str(ROOT) + "/", "").replace(os.path.dirname(os.__file__) + "/", "")
    areas: dict[str, float] = {}
    for (filename, _, function), (_, _, own, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        name = area(filename, function)
        areas[name] = areas.get(name, 0.0) + own
    return body.rstrip(), stats.total_tt, areas  # type: ignore[attr-defined]

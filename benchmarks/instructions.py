"""Instructions per operation, counted by valgrind's callgrind: jetwire against the hand-written
codec for every payload of the main harness.

Timings on a small shared machine swing by 10-50%; an instruction count does not depend on
what else runs, so it settles the ratios the timings leave open (it does not weigh cache
misses or memory bandwidth: the 64 KiB payloads are better judged by time).

    python -m benchmarks.instructions [--ops 5000] [--only Rread,Twalk] [--no-save] [--as-called]

``--as-called`` counts jetwire as an application calls it (``frame.encode()``,
``Rframe.decode(data)``: the method looked up on every call), the hand-written codec as before.

Each figure is (instructions of a process that runs the operation N+1 times - one that runs
it once) / N, so start-up, imports and code generation cancel out.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

from .cases import SPECS

RESULTS = Path(__file__).parent / "results"

_CHILD = """
import sys
sys.path.insert(0, {root!r})
from benchmarks.cases import SPECS, jetwire_functions
spec = SPECS[{payload!r}]
value = spec.sample()
if {impl!r} == "jetwire":
    encode, decode = jetwire_functions(spec)
else:
    encode, decode = spec.hand_encode, spec.hand_decode
data = encode(value)
fn, arg = (encode, value) if {op!r} == "encode" else (decode, data)
cls = spec.cls
fn(arg)
for _ in range({n}):
    {call}
"""

# --as-called: jetwire as an application calls it, method lookup included
_AS_CALLED = {"encode": "arg.encode()", "decode": "cls.decode(arg)"}


def count(payload: str, impl: str, op: str, n: int, as_called: bool = False) -> int:
    """Instructions callgrind counts for the whole child process."""
    call = _AS_CALLED[op] if as_called and impl == "jetwire" else "fn(arg)"
    code = _CHILD.format(root=str(Path(__file__).parent.parent), payload=payload, impl=impl, op=op, n=n, call=call)
    result = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, "-c", code],
        capture_output=True, text=True, check=True,
        # one string hash seed for every process: a random one changes dict probing, and with it
        # the count, by a few percent from run to run
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    found = re.search(r"Collected : (\d+)", result.stderr)
    if found is None:
        raise RuntimeError(f"callgrind printed no count:\n{result.stderr[-2000:]}")
    return int(found.group(1))


def per_op(payload: str, impl: str, op: str, n: int, as_called: bool = False) -> float:
    return (count(payload, impl, op, n, as_called) - count(payload, impl, op, 0, as_called)) / n


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.instructions")
    parser.add_argument("--ops", type=int, default=5000, help="operations counted per figure")
    parser.add_argument("--only", default="", help="payloads, comma-separated")
    parser.add_argument("--no-save", action="store_true")
    parser.add_argument("--as-called", action="store_true",
                        help="jetwire as frame.encode() / Rframe.decode(data), not the function looked up once")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is missing (Debian package valgrind)")
    payloads = [p for p in SPECS if not args.only or p in args.only.split(",")]
    rows = []
    for payload in payloads:
        cells = []
        for op in ("encode", "decode"):
            jw = per_op(payload, "jetwire", op, args.ops, args.as_called)
            hand = per_op(payload, "hand", op, args.ops)
            cells.append((jw, hand))
            print(f"{payload} {op}: jetwire {jw:,.0f}, hand-written {hand:,.0f}, ratio {jw / hand:.2f}", flush=True)
        rows.append((payload, cells))
    within = sum(1 for _, cells in rows for jw, hand in cells if jw / hand <= 1.1)
    total = sum(len(cells) for _, cells in rows)
    lines = [
        f"# Instructions per operation, {datetime.date.today().isoformat()}",
        "",
        f"Python {platform.python_version()}, valgrind callgrind; `python -m benchmarks.instructions "
        f"--ops {args.ops}{' --as-called' if args.as_called else ''}`. Each figure: (instructions of a process "
        f"running the operation "
        f"{args.ops + 1} times - one running it once) / {args.ops}.",
        "",
        "| payload | jetwire encode | hand encode | ratio | jetwire decode | hand decode | ratio |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for payload, ((je, he), (jd, hd)) in rows:
        lines.append(f"| {payload} | {je:,.0f} | {he:,.0f} | {je / he:.2f} | {jd:,.0f} | {hd:,.0f} | {jd / hd:.2f} |")
    lines += ["", f"jetwire within 1.1x of the hand-written codec: {within} of {total}."]
    report = "\n".join(lines) + "\n"
    print(report)
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        kind = "instructions-as-called" if args.as_called else "instructions"
        path = RESULTS / f"{datetime.date.today().isoformat()}-{kind}.md"
        path.write_text(report)
        print(f"saved {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")


if __name__ == "__main__":
    main()

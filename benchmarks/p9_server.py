"""jetwire's 9P file server against diod: ``python -m benchmarks.p9_server`` from the project root.

Both servers export the same temporary directory; the same client (jetwire's own, in a fresh
process per measurement, ``python -c CHILD``) runs every case against each, and only the work
after connecting is timed, so that the client's start-up does not hide the server's speed:

* ``read``: a sequential read of a ``--size-mib`` file (256 MiB) at msize 64 KiB (diod's cap),
  8 Treads in flight (``Client.read_chunks``); ``read 1M``: the same at 1 MiB, jetwire alone;
* ``write``: writing a file of that size (``Client.write_range``, 8 Twrites in flight), at
  64 KiB, and at 1 MiB for jetwire alone;
* ``getattr x32``: one connection, 32 Tgetattr always in flight over 4 fids, calls per second;
* ``readdir``: listing a directory of ``--entries`` (10,000) files (``Client.readdir``: Tlopen,
  then Treaddir after Treaddir), the median of ``--repeats`` listings in one process;
* ``create``: ``--files`` (1,000) small files made one after the other in a fresh directory,
  as the kernel makes them: Twalk (clone), Tlcreate, Twrite of 100 bytes, Tclunk.

Rounds run every case against every server, in an order that alternates, so that a change in
the machine's load touches both; the report gives medians, and each case's ratio as the median
of the per-round ratios (jetwire's rate over diod's: above 1.00 jetwire is faster; issue 13
asks for 0.7 or more). The CPU time of each server process (``/proc/PID/stat``) per case says
which side is the bottleneck. ``--baseline-tree DIR`` adds a third server: jetwire from another
checkout (``git archive`` of an earlier commit), for before/after figures from one run.
``--profile`` runs one more jetwire server per case under cProfile and reports where its time
goes. Before timing, what each server returns is checked (the file's SHA-256, the listing's
names, the written and created files on disk).

``--quick`` (for development, and what ``tests/test_bench_p9_server.py`` runs): a 32 MiB file,
2,000 entries, 200 files, 0.5 s of getattr, 3 rounds. Reports go to
``benchmarks/results/<date>-p9-server[-quick].md``.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .extras import subprocess_env
from .p9_throughput import CLIENT_TIMEOUT, GETATTR_LOOP, _cpu_ticks, _diod_version, _peers, write_file
from .report import RESULTS, ROOT, _git_revision, _version, profile_areas

MIB = 1 << 20
MB = 1e6
MSIZE_64K = 65536  # diod answers this whatever is proposed; both servers are asked for it
MSIZE_1M = MIB + 24
START_TIMEOUT = 60.0  # seconds for a jetwire server to say it listens
FILE_NAME = "big.bin"
OUT_NAME = "written.bin"
LISTED = "listed"
CREATED = "created"
SMALL = bytes(range(100))  # each created file's content

# The client, run as ``python -c CHILD MODE HOST PORT ANAME MSIZE ARG``: connect, then the work of
# one case, timed; prints one JSON line.
CHILD = r'''
import asyncio, hashlib, json, os, sys, time
import jetwire.p9
from jetwire.p9 import constants as c

mode, host, port, aname, msize, arg = sys.argv[1:7]
port, msize = int(port), int(msize)
path = "big.bin"  # what getattr_loop asks about


async def read(client):
    total, digest = 0, hashlib.sha256() if arg == "hash" else None
    started = time.perf_counter()
    async with client.fid_of("big.bin") as fid:
        _, iounit = await client.lopen(fid, c.P9_RDONLY)
        async for chunk in client.read_chunks(fid, 0, None, iounit):
            total += len(chunk)
            if digest:
                digest.update(chunk)
    out = {"bytes": total, "work_s": time.perf_counter() - started}
    if digest:
        out["sha256"] = digest.hexdigest()
    return out


async def write(client):
    data = os.urandom(1 << 20) * int(arg)
    started = time.perf_counter()
    async with client.fid_of("") as dfid:
        fid, _ = await client.walk(dfid, [])
        _, iounit = await client.lcreate(fid, "written.bin", c.P9_WRONLY | c.P9_CREATE | c.P9_TRUNC, 0o644)
        written = await client.write_range(fid, data, 0, iounit)
        await client.clunk(fid)
    return {"bytes": written, "work_s": time.perf_counter() - started,
            "sha256": hashlib.sha256(data).hexdigest()}


''' + GETATTR_LOOP + r'''

async def readdir(client):
    times, names = [], None
    for _ in range(int(arg)):
        started = time.perf_counter()
        fid, _ = await client.walk(client.root, ["listed"])
        await client.lopen(fid, c.P9_RDONLY | c.P9_DIRECTORY)
        entries = await client.readdir(fid)
        await client.clunk(fid)
        times.append(time.perf_counter() - started)
        names = sorted(e.name for e in entries)
    return {"entries": len(names), "work_s": sorted(times)[len(times) // 2],
            "names_sha256": hashlib.sha256("/".join(names).encode()).hexdigest()}


async def create(client):
    count, where = arg.split(",")
    content = bytes(range(100))
    started = time.perf_counter()
    dfid, _ = await client.walk(client.root, ["created", where])
    for i in range(int(count)):
        fid, _ = await client.walk(dfid, [])
        await client.lcreate(fid, f"f{i:05d}", c.P9_WRONLY | c.P9_CREATE, 0o644)
        await client.write(fid, 0, content)
        await client.clunk(fid)
    await client.clunk(dfid)
    return {"files": int(count), "work_s": time.perf_counter() - started}


async def main():
    client = await jetwire.p9.Client.connect(host, port, aname=aname, n_uname=0, msize=msize)
    result = await globals()[mode](client)
    result["msize"] = client.msize
    await client.close()
    return result


print(json.dumps(asyncio.run(main())))
'''

# The jetwire server, run as ``python -c SERVER EXPORT [PROFILE_OUT]``: prints {"port", "pid"}
# once listening, serves until its standard input closes.
SERVER = r'''
import asyncio, json, os, sys
from jetwire.p9.localfs import LocalFilesystem
from jetwire.p9.serving import serve

export = sys.argv[1]
profile_out = sys.argv[2] if len(sys.argv) > 2 else None


async def main():
    handler = LocalFilesystem(export)
    server = await serve(handler, "127.0.0.1:0")
    print(json.dumps({"port": int(server.addresses[0].rsplit(":", 1)[1]), "pid": os.getpid()}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await server.close()
    handler.close()


if profile_out:
    import cProfile
    profiler = cProfile.Profile()
    profiler.enable()
asyncio.run(main())
if profile_out:
    profiler.disable()
    profiler.dump_stats(profile_out)
'''


class JetwireServer:
    """A jetwire ``LocalFilesystem`` server in a process of its own (from ``tree``: another
    checkout's jetwire, for a baseline)."""

    name = "jetwire"

    def __init__(self, export: Path, tree: Path | None = None, profile_out: Path | None = None) -> None:
        env = subprocess_env()
        if tree is not None:
            env["PYTHONPATH"] = str(tree)
        argv = [sys.executable, "-c", SERVER, str(export)] + ([str(profile_out)] if profile_out else [])
        self.proc = subprocess.Popen(argv, cwd=tree or ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        assert self.proc.stdout is not None
        try:
            if not select.select([self.proc.stdout], [], [], START_TIMEOUT)[0]:
                raise RuntimeError(f"the jetwire server said nothing in {START_TIMEOUT:.0f} s")
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"the jetwire server ended ({self.proc.wait()})")
            hello = json.loads(line)
        except BaseException:  # it must not outlive a start that failed
            self.proc.kill()
            self.proc.wait()
            raise
        self.host, self.port, self.pid, self.aname = "127.0.0.1", hello["port"], hello["pid"], str(export)

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


class DiodServer:
    name = "diod"

    def __init__(self, peer: Any) -> None:
        self.peer = peer
        self.host, self.port, self.pid, self.aname = peer.host, peer.port, peer.pid, str(peer.export)

    def stop(self) -> None:
        self.peer.stop()


#: case name -> (child mode, msize, whether diod runs it too)
CASES: dict[str, tuple[str, int, bool]] = {
    "read": ("read", MSIZE_64K, True),
    "read 1M": ("read", MSIZE_1M, False),
    "write": ("write", MSIZE_64K, True),
    "write 1M": ("write", MSIZE_1M, False),
    "getattr x32": ("getattr_loop", MSIZE_64K, True),
    "readdir": ("readdir", MSIZE_64K, True),
    "create": ("create", MSIZE_64K, True),
}


class Bench:
    def __init__(self, args: argparse.Namespace, export: Path) -> None:
        self.args = args
        self.export = export
        self.env = subprocess_env()
        self.runs = 0

    def arg(self, mode: str, hashing: bool, created: str) -> str:
        args = self.args
        if mode == "read":
            return "hash" if hashing else "0"
        if mode == "write":
            return str(args.size_mib)
        if mode == "getattr_loop":
            return str(args.getattr_seconds)
        if mode == "readdir":
            return str(args.repeats)
        return f"{args.files},{created}"

    def run(self, server: Any, case: str, *, hashing: bool = False, keep_created: bool = False) -> dict[str, Any]:
        mode, msize, _ = CASES[case]
        self.runs += 1
        created = self.export / CREATED / f"run{self.runs}"
        if mode == "create":
            created.mkdir()
        elif mode == "write":
            (self.export / OUT_NAME).unlink(missing_ok=True)
        argv = [sys.executable, "-c", CHILD, mode, server.host, str(server.port), server.aname, str(msize),
                self.arg(mode, hashing, created.name)]
        cpu_before = _cpu_ticks(server.pid)
        # a server that stops answering fails the run (the client killed) rather than hang it
        proc = subprocess.run(argv, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=CLIENT_TIMEOUT)
        if proc.returncode != 0:
            raise RuntimeError(f"{case} against {server.name} failed ({proc.returncode}): {proc.stderr}")
        out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
        out["server_cpu_s"] = _cpu_ticks(server.pid) - cpu_before
        out["rate"] = self.rate(mode, out)
        out["cpu_us_per_unit"] = out["server_cpu_s"] * 1e6 / self.units(mode, out)
        if mode == "create":
            out["created"] = created
            if not keep_created:
                shutil.rmtree(created)
        return out

    def units(self, mode: str, out: dict[str, Any]) -> float:
        """What one run did, in the unit of its rate (MB, calls, entries, files)."""
        if mode in ("read", "write"):
            return float(out["bytes"] / MB)
        if mode == "getattr_loop":
            return float(out["calls"])
        if mode == "readdir":
            return float(out["entries"] * self.args.repeats)
        return float(out["files"])

    def rate(self, mode: str, out: dict[str, Any]) -> float:
        """MB/s, calls/s, entries/s or files/s."""
        work = out["work_s"]
        if mode in ("read", "write"):
            return float(out["bytes"] / work / MB)
        if mode == "getattr_loop":
            return float(out["calls"] / work)
        if mode == "readdir":
            return float(out["entries"] / work)
        return float(out["files"] / work)


def prepare(export: Path, args: argparse.Namespace) -> dict[str, str]:
    digest = write_file(export / FILE_NAME, args.size_mib * MIB)
    listed = export / LISTED
    listed.mkdir()
    names = [f"entry-{i:06d}" for i in range(args.entries)]
    for name in names:
        (listed / name).touch()
    (export / CREATED).mkdir()
    expected = sorted([".", "..", *names])
    return {"file": digest, "names": hashlib.sha256("/".join(expected).encode()).hexdigest()}


def verify(bench: Bench, servers: list[Any], expected: dict[str, str]) -> list[str]:
    """What each server gives back is right before anything is timed."""
    lines = []
    for server in servers:
        read = bench.run(server, "read", hashing=True)
        if read["sha256"] != expected["file"]:
            raise AssertionError(f"{server.name} read {read['bytes']} bytes, SHA-256 {read['sha256']}")
        got = bench.run(server, "readdir")
        if got["names_sha256"] != expected["names"]:
            raise AssertionError(f"{server.name} listed {got['entries']} entries, not the directory's")
        got = bench.run(server, "write")
        on_disk = hashlib.sha256((bench.export / OUT_NAME).read_bytes()).hexdigest()
        if got["sha256"] != on_disk:
            raise AssertionError(f"{server.name} wrote a file whose bytes differ from what was sent")
        where = bench.run(server, "create", keep_created=True)["created"]
        made = sorted(where.iterdir())
        if len(made) != bench.args.files or any(p.read_bytes() != SMALL for p in made):
            raise AssertionError(f"{server.name} created {len(made)} files, or their content differs")
        shutil.rmtree(where)
        lines.append(f"{server.name}: read {read['bytes']:,} bytes (SHA-256 matches), listed "
                     f"{bench.args.entries + 2:,} entries (names match), wrote a file of the same size "
                     f"(SHA-256 matches on disk), created {bench.args.files} files (content matches)")
    return lines


def profile(bench: Bench, export: Path, tmp: Path, case: str, top: int = 12) -> str:
    """One jetwire server under cProfile for one run of ``case``: its own time by function."""
    out = tmp / f"server-{case.replace(' ', '-')}.prof"
    server = JetwireServer(export, profile_out=out)
    try:
        result = bench.run(server, case)
    finally:
        server.stop()
    body, total, areas = profile_areas(out, top, _area)
    shares = ", ".join(f"{name} {own / total:.0%}" for name, own in sorted(areas.items(), key=lambda kv: -kv[1]))
    return (f"{result['rate']:,.0f} {_UNITS[CASES[case][0]]} under the profiler; {total:.2f} s profiled (the "
            f"server's whole life). Own time by area: {shares}.\n\n```\n{body}\n```")


def _area(filename: str, function: str) -> str:
    if filename.startswith("<jetwire generated "):
        return "generated codecs"
    for path, name in (("jetwire/p9/serving.py", "asyncio shell"), ("jetwire/p9/server.py", "server session"),
                       ("jetwire/p9/localfs.py", "LocalFilesystem"), ("jetwire/runtime/frames.py", "FrameReader"),
                       ("/asyncio/", "asyncio (Python)"), ("/concurrent/", "worker threads (Python)"),
                       ("threading.py", "worker threads (Python)")):
        if path in filename:
            return name
    if filename == "~":
        if any(f"'{word}'" in function for word in ("recv", "send", "sendall", "pread", "pwrite", "stat", "scandir")):
            return "system calls (C)"
        return "other built-ins (C)"
    return "other Python"


_UNITS = {"read": "MB/s", "write": "MB/s", "getattr_loop": "calls/s", "readdir": "entries/s", "create": "files/s"}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.p9_server")
    parser.add_argument("--quick", action="store_true", help="small sizes, 3 rounds (development, CI smoke test)")
    parser.add_argument("--size-mib", type=int, help="file size for read and write (default 256; quick 32)")
    parser.add_argument("--entries", type=int, help="directory size for readdir (default 10,000; quick 2,000)")
    parser.add_argument("--files", type=int, help="files made by create (default 1,000; quick 200)")
    parser.add_argument("--getattr-seconds", type=float, help="length of a getattr run (default 2; quick 0.5)")
    parser.add_argument("--repeats", type=int, default=5, help="listings per readdir run (default 5)")
    parser.add_argument("--rounds", type=int, help="timed rounds (default 5; quick 3)")
    parser.add_argument("--only", help="comma-separated cases (read,read 1M,write,write 1M,getattr x32,readdir,create)")
    parser.add_argument("--baseline-tree", type=Path, help="also time jetwire's server from this checkout")
    parser.add_argument("--profile", action="store_true", help="profile the jetwire server for each case")
    parser.add_argument("--no-save", action="store_true", help="print the report but do not save it")
    args = parser.parse_args(argv)
    defaults = (32, 2000, 200, 0.5, 3) if args.quick else (256, 10000, 1000, 2.0, 5)
    for name, value in zip(("size_mib", "entries", "files", "getattr_seconds", "rounds"), defaults):
        if getattr(args, name) is None:
            setattr(args, name, value)
    cases = list(CASES) if not args.only else [c.strip() for c in args.only.split(",")]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        parser.error(f"unknown cases {unknown}; known: {list(CASES)}")
    peers = _peers()
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="jetwire-p9-server-"))
    servers: list[Any] = []
    try:
        export = tmp / "export"
        export.mkdir()
        print(f"preparing {export}: {args.size_mib} MiB file, {args.entries:,} entries", flush=True)
        expected = prepare(export, args)
        subprocess.run([sys.executable, "-c", "import jetwire.p9"], cwd=ROOT, env=subprocess_env(), check=True)
        servers.append(DiodServer(peers.start_diod(export, tmp / "diod")))
        servers.append(JetwireServer(export))
        if args.baseline_tree:
            baseline = JetwireServer(export, tree=args.baseline_tree.resolve())
            baseline.name = "jetwire baseline"
            servers.append(baseline)
        bench = Bench(args, export)
        print("verifying what each server returns", flush=True)
        checks = verify(bench, servers, expected)
        samples: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for case in cases:  # warm-up: page cache, bytecode cache, diod's threads
            for server in servers:
                if CASES[case][2] or server.name != "diod":
                    bench.run(server, case)
        for i in range(args.rounds):
            order = servers if i % 2 == 0 else servers[::-1]
            for case in cases:
                for server in order:
                    if not CASES[case][2] and server.name == "diod":
                        continue
                    sample = bench.run(server, case)
                    samples.setdefault((case, server.name), []).append(sample)
                    print(f"  round {i + 1}/{args.rounds} {case} {server.name}: {sample['rate']:,.0f} "
                          f"{_UNITS[CASES[case][0]]}", flush=True)
        profiles = {}
        if args.profile:
            print("profiling the jetwire server (cProfile)", flush=True)
            for case in cases:
                profiles[case] = profile(bench, export, tmp, case)
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    text = render(args, cases, [s.name for s in servers], checks, samples, profiles, time.perf_counter() - started)
    print()
    print(text)
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        suffix = "-quick" if args.quick else ""
        path = RESULTS / f"{datetime.date.today().isoformat()}-p9-server{suffix}.md"
        path.write_text(text, encoding="utf-8")
        print(f"saved {path.relative_to(ROOT)}")


def ratio(samples: dict[tuple[str, str], list[dict[str, Any]]], case: str, name: str, base: str) -> float | None:
    """The median over rounds of ``name``'s rate over ``base``'s in the same round."""
    if (case, base) not in samples or (case, name) not in samples:
        return None
    pairs = zip(samples[(case, name)], samples[(case, base)])
    return float(statistics.median(a["rate"] / b["rate"] for a, b in pairs))


def render(args: argparse.Namespace, cases: list[str], names: list[str], checks: list[str],
           samples: dict[tuple[str, str], list[dict[str, Any]]], profiles: dict[str, str], elapsed: float) -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    out = [f"# jetwire's 9P server against diod, {datetime.date.today().isoformat()}", "",
           f"Python {platform.python_version()} on {platform.platform()}, {os.cpu_count()} CPUs, load average {load} "
           f"at the end.  \njetwire {_version('jetwire')} at {_git_revision()}; diod {_diod_version()}.  \n"
           f"`python -m benchmarks.p9_server{' --quick' if args.quick else ''}`: a {args.size_mib} MiB file, "
           f"a directory of {args.entries:,} entries (listed {args.repeats} times a run, median), "
           f"{args.files:,} files created a run, getattr for {args.getattr_seconds:g} s a run; {args.rounds} rounds "
           f"after a warm-up round, servers in alternating order; {elapsed:.0f} s in all. The same client "
           "(jetwire's, a fresh process per run) against every server; only the work after connecting is "
           "timed. Rates are medians; \"x diod\" is the median of the per-round ratios (above 1.00: faster "
           "than diod).", ""]
    header = "| case | unit |" + "".join(f" {n} |" for n in names) + "".join(
        f" {n} x diod |" for n in names if n != "diod") + "".join(f" {n} CPU µs/unit |" for n in names)
    out += [header, "|---|---|" + "---:|" * (len(names) * 2 + len(names) - 1)]
    for case in cases:
        unit = _UNITS[CASES[case][0]]
        row = f"| {case} | {unit} |"
        for name in names:
            rows = samples.get((case, name))
            row += f" {statistics.median(r['rate'] for r in rows):,.0f} |" if rows else " — |"
        for name in names:
            if name == "diod":
                continue
            value = ratio(samples, case, name, "diod")
            row += f" **{value:.2f}** |" if value is not None else " — |"
        for name in names:
            rows = samples.get((case, name))
            row += f" {statistics.median(r['cpu_us_per_unit'] for r in rows):,.1f} |" if rows else " — |"
        out.append(row)
    if "jetwire baseline" in names:
        out += ["", "jetwire over its baseline (median of per-round ratios): " + ", ".join(
            f"{case} {ratio(samples, case, 'jetwire', 'jetwire baseline'):.2f}x" for case in cases) + "."]
    out += ["", "CPU µs/unit: the server process's user + system CPU time over one run (connecting included) "
            "per unit of the rate (per MB, call, entry listed or file created), median: what the server "
            "itself spends, which the machine's load moves less than the rates.", ""]
    if profiles:
        out += ["## Where the jetwire server's time goes", "",
                "One more run of each case against a jetwire server under cProfile (which slows Python "
                "code down: shares matter, not totals), top functions by own time."]
        for case, text in profiles.items():
            out += ["", f"### {case}", "", text]
        out.append("")
    out += ["## Checked before timing", ""] + [f"- {line}" for line in checks]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()

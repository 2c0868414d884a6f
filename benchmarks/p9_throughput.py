"""9P throughput against a real server: ``python -m benchmarks.p9_throughput`` from the project root.

Starts diod (``tests/p9/peers.py``'s ``start_diod``) on a temporary export holding one file of
256 MiB, then times, each as a whole process on the same machine (wall clock, median of
``--runs`` rounds, every variant once per round so that a change in load touches all alike):

* ``diodcat -s 127.0.0.1:PORT -a EXPORT -m MSIZE big.bin > /dev/null``: diod's own C client;
* a jetwire client, ``python -c`` in a fresh process (``import jetwire.p9``, connect, read,
  exit), reading the same file three ways: ``Client.read_bytes`` (the whole file in memory, up
  to 8 Treads in flight), ``async for chunk in Client.read_chunks(...)`` (a stream, 8 Treads in
  flight, nothing kept; and once more keeping the chunks, joined at the end, as a caller that
  wants the whole file would), and ``Client.read`` one request at a time, as diodcat does;
* ``File.read()`` of the whole file, and writing a file of the same size with
  ``Client.write_bytes`` and with ``File.write`` of 1 MiB slices;
* pipelined Tgetattr: one connection, 32 requests always in flight over 4 fids for
  ``--getattr-seconds``, reported as calls per second.

Both clients propose msize 1 MiB + 24 (``--msize``); diod answers 65,536 whatever is proposed,
and the report gives the msize each side actually negotiated (diodcat's read from the log of a
separate diod run with ``-d 1``, which also shows how many requests diodcat keeps in flight).
CPU time of the client process (``RUSAGE_CHILDREN``) and of diod (``/proc/PID/stat``) per run
says which side is the bottleneck; ``--profile`` (on by default) then runs the jetwire client
once more under cProfile for the streaming read and the getattr loop and reports the top costs.

Before timing, the bytes read by diodcat and by jetwire are checked against the file (SHA-256).
The report is printed and saved as ``benchmarks/results/<date>-p9-throughput.md``.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .extras import subprocess_env
from .report import RESULTS, ROOT, _git_revision, _version, profile_areas

FILE_NAME = "big.bin"
PROBE_NAME = "probe.bin"
OUT_NAME = "written.bin"
MIB = 1 << 20
MB = 1e6
CLIENT_TIMEOUT = 900.0  # seconds for one client run: minutes more than the slowest case takes

# The pipelined Tgetattr case of this harness's CHILD and of p9_server's (which sets ``path``):
# one connection, 32 Tgetattr always in flight over 4 fids of ``path``, for ``arg`` seconds
GETATTR_LOOP = r'''
async def getattr_loop(client):
    seconds, inflight, nfids = float(arg), 32, 4
    fids = [(await client.walk(client.root, [path]))[0] for _ in range(nfids)]
    count = 0
    deadline = time.perf_counter() + seconds

    async def worker(fid):
        nonlocal count
        while time.perf_counter() < deadline:
            await client.getattr(fid, c.P9_GETATTR_BASIC)
            count += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(fids[i % nfids]) for i in range(inflight)))
    elapsed = time.perf_counter() - started
    for fid in fids:
        await client.clunk(fid)
    return {"calls": count, "work_s": elapsed, "inflight": inflight, "fids": nfids}
'''

# The jetwire client, run as ``python -c CHILD MODE HOST PORT ANAME PATH MSIZE ARG``: what a user
# script would be (import, connect, work, exit). It prints one JSON line. With
# JETWIRE_BENCH_PROFILE=FILE set, the work after connecting runs under cProfile, dumped to FILE.
CHILD = r'''
import asyncio, hashlib, json, os, sys, time
import jetwire.p9
from jetwire.p9 import constants as c

mode, host, port, aname, path, msize, arg = sys.argv[1:8]
port, msize = int(port), int(msize)


async def read_bytes(client):
    data = await client.read_bytes(path)
    return {"bytes": len(data)}


async def file_read(client):
    async with await client.open(path) as f:
        data = await f.read()
    return {"bytes": len(data)}


def payload():
    """What the write modes write: ``arg`` MiB (a 1 MiB random block repeated), made before connecting."""
    return os.urandom(1 << 20) * int(arg)


async def write_bytes(client):
    data = payload()
    started = time.perf_counter()
    written = await client.write_bytes(path, data)
    return {"bytes": written, "work_s": time.perf_counter() - started}


async def write_stream(client):
    data = memoryview(payload())
    started = time.perf_counter()
    async with await client.open(path, "wb") as f:
        for start in range(0, len(data), 1 << 20):
            await f.write(data[start:start + (1 << 20)])
    return {"bytes": len(data), "work_s": time.perf_counter() - started}


async def verify(client):
    data = await client.read_bytes(path)
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


async def stream_kept(client):
    chunks = []
    async with client.fid_of(path) as fid:
        _, iounit = await client.lopen(fid, c.P9_RDONLY)
        async for chunk in client.read_chunks(fid, 0, None, iounit):
            chunks.append(chunk)
    return {"bytes": len(b"".join(chunks))}


def result(total, digest):
    return {"bytes": total, "sha256": digest.hexdigest()} if digest else {"bytes": total}


async def stream(client):
    total, digest = 0, hashlib.sha256() if arg == "hash" else None
    async with client.fid_of(path) as fid:
        _, iounit = await client.lopen(fid, c.P9_RDONLY)
        async for chunk in client.read_chunks(fid, 0, None, iounit):
            total += len(chunk)
            if digest:
                digest.update(chunk)
    return result(total, digest)


async def sequential(client):
    total, digest = 0, hashlib.sha256() if arg == "hash" else None
    async with client.fid_of(path) as fid:
        _, iounit = await client.lopen(fid, c.P9_RDONLY)
        step = client.session.io_size(iounit)
        while True:
            chunk = await client.read(fid, total, step, iounit)
            if not chunk:
                return result(total, digest)
            total += len(chunk)
            if digest:
                digest.update(chunk)


''' + GETATTR_LOOP + r'''

async def main():
    started = time.perf_counter()
    client = await jetwire.p9.Client.connect(host, port, aname=aname, n_uname=0, msize=msize)
    connected = time.perf_counter()
    work = globals()[mode]
    profile_to = os.environ.get("JETWIRE_BENCH_PROFILE")
    if profile_to:
        import cProfile
        profiler = cProfile.Profile()
        profiler.enable()
    result = await work(client)
    done = time.perf_counter()
    if profile_to:
        profiler.disable()
        profiler.dump_stats(profile_to)
    await client.close()
    result.setdefault("work_s", done - connected)
    result.update(msize=client.msize, connect_s=connected - started)
    return result


print(json.dumps(asyncio.run(main())))
'''


def _peers() -> Any:
    """tests/p9/peers.py (plain helpers, no jetwire import), imported from its directory."""
    sys.path.insert(0, str(ROOT / "tests" / "p9"))
    try:
        import peers
    finally:
        sys.path.pop(0)
    return peers


def write_file(path: Path, size: int) -> str:
    """``size`` bytes (a 4 MiB random block repeated, written in 4 MiB chunks); returns the SHA-256."""
    block = os.urandom(4 * MIB)
    digest = hashlib.sha256()
    with path.open("wb") as out:
        left = size
        while left:
            chunk = block[:min(left, len(block))]
            out.write(chunk)
            digest.update(chunk)
            left -= len(chunk)
    return digest.hexdigest()


def _cpu_ticks(pid: int) -> float:
    """User + system CPU seconds of a running process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Bench:
    def __init__(self, peer: Any, diodcat: str, msize: int, env: dict[str, str]) -> None:
        self.peer = peer
        self.diodcat = diodcat
        self.msize = msize
        self.env = env

    def diodcat_argv(self, name: str) -> list[str]:
        return [self.diodcat, "-s", f"{self.peer.host}:{self.peer.port}", "-a", str(self.peer.export),
                "-m", str(self.msize), name]

    def jetwire_argv(self, mode: str, name: str, arg: object = 0) -> list[str]:
        return [sys.executable, "-c", CHILD, mode, self.peer.host, str(self.peer.port), str(self.peer.export),
                name, str(self.msize), str(arg)]

    def run(self, argv: list[str], *, json_out: bool, env: dict[str, str] | None = None) -> dict[str, Any]:
        """Runs ``argv`` to completion; wall clock, client CPU, diod CPU, and its JSON line if any."""
        cpu_before, diod_before = _children_cpu(), _cpu_ticks(self.peer.pid)
        start = time.perf_counter()
        # a server that stops answering fails the run (the client killed) rather than hang it
        if json_out:
            proc = subprocess.run(argv, cwd=ROOT, env=env or self.env, capture_output=True, text=True,
                                  timeout=CLIENT_TIMEOUT)
        else:
            with open(os.devnull, "wb") as devnull:
                proc = subprocess.run(argv, cwd=ROOT, env=env or self.env, stdout=devnull, stderr=subprocess.PIPE,
                                      timeout=CLIENT_TIMEOUT)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"{argv[0]} {argv[-1]} failed ({proc.returncode}): {proc.stderr!r}\n"
                               f"{self.peer.log_tail()}")
        out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1]) if json_out else {}
        out.update(wall_s=wall, client_cpu_s=_children_cpu() - cpu_before,
                   server_cpu_s=_cpu_ticks(self.peer.pid) - diod_before)
        return out


def probe(peers: Any, export: Path, workdir: Path, msize: int, env: dict[str, str]) -> dict[str, Any]:
    """A separate diod with ``-d 1`` (every message logged): the msize it answers to each
    client, and how many Treads diodcat keeps in flight (distinct tags)."""
    peer = peers.start_diod(export, workdir, debug=True)
    try:
        bench = Bench(peer, peers.find_tool("diodcat", "diod"), msize, env)
        bench.run(bench.diodcat_argv(PROBE_NAME), json_out=False)
        time.sleep(0.2)
        diod_log = peer.log.read_text(errors="replace")
        jw = bench.run(bench.jetwire_argv("sequential", PROBE_NAME), json_out=True)
        time.sleep(0.2)
    finally:
        peer.stop()
    full_log = peer.log.read_text(errors="replace")
    jw_log = full_log[len(diod_log):]

    def versions(text: str) -> tuple[int | None, int | None]:
        proposed = answered = None
        for line in text.splitlines():
            words = line.split()
            if "P9_TVERSION" in words:
                proposed = int(words[words.index("msize") + 1])
            elif "P9_RVERSION" in words:
                answered = int(words[words.index("msize") + 1])
        return proposed, answered

    read_tags = {line.split()[3] for line in diod_log.splitlines() if "P9_TREAD" in line.split()}
    read_counts = {int(line.split()[-1]) for line in diod_log.splitlines() if "P9_TREAD" in line.split()}
    d_proposed, d_answered = versions(diod_log)
    j_proposed, j_answered = versions(jw_log)
    return {"diodcat_proposed": d_proposed, "diodcat_answered": d_answered, "diodcat_read_tags": len(read_tags),
            "diodcat_read_count": max(read_counts) if read_counts else None,
            "jetwire_proposed": j_proposed, "jetwire_answered": j_answered, "jetwire_msize": jw["msize"]}


def verify(bench: Bench, digest: str, size: int) -> list[str]:
    lines = []
    hasher = hashlib.sha256()
    total = 0
    with subprocess.Popen(bench.diodcat_argv(FILE_NAME), stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        while chunk := proc.stdout.read(MIB):
            hasher.update(chunk)
            total += len(chunk)
    if proc.returncode != 0 or total != size or hasher.hexdigest() != digest:
        raise AssertionError(f"diodcat read {total} bytes, sha256 {hasher.hexdigest()}, status {proc.returncode}")
    lines.append(f"diodcat: {total:,} bytes, SHA-256 matches the file")
    result = bench.run(bench.jetwire_argv("verify", FILE_NAME), json_out=True)
    if result["bytes"] != size or result["sha256"] != digest:
        raise AssertionError(f"jetwire read_bytes: {result}")
    lines.append(f"jetwire read_bytes: {result['bytes']:,} bytes, SHA-256 matches the file")
    for mode, label in (("stream", "read_chunks"), ("sequential", "read, 1 in flight")):
        result = bench.run(bench.jetwire_argv(mode, FILE_NAME, "hash"), json_out=True)
        if result["bytes"] != size or result["sha256"] != digest:
            raise AssertionError(f"jetwire {label}: {result}")
        lines.append(f"jetwire {label}: {result['bytes']:,} bytes, SHA-256 matches the file")
    return lines


def profile(bench: Bench, tmp: Path, mode: str, arg: object, top: int = 14) -> str:
    """The child's work under cProfile: the top functions by own time."""
    out = tmp / f"{mode}.prof"
    env = dict(bench.env, JETWIRE_BENCH_PROFILE=str(out))
    result = bench.run(bench.jetwire_argv(mode, FILE_NAME, arg), json_out=True, env=env)

    body, total, areas = profile_areas(out, top, _area)
    work = result["work_s"]
    summary = f"under cProfile: {work:.2f} s of work"
    if "calls" in result:
        summary += f", {result['calls']:,} getattr calls ({result['calls'] / work:,.0f}/s with the profiler's overhead)"
    else:
        summary += f", {result['bytes'] / work / MB:,.0f} MB/s with the profiler's overhead"
    shares = ", ".join(f"{name} {own / total:.0%}" for name, own in sorted(areas.items(), key=lambda kv: -kv[1]))
    return (f"{summary}; total {total:.2f} s profiled. Own time by area: {shares}.\n\n"
            f"```\n{body}\n```")


def _area(filename: str, function: str) -> str:
    """Which part of the client a profiled function belongs to."""
    if filename.startswith("<jetwire generated "):
        return "generated codecs"
    for path, name in (("jetwire/p9/connection.py", "jetwire.p9 client"), ("jetwire/p9/calls.py", "jetwire.p9 client"),
                       ("jetwire/p9/paths.py", "jetwire.p9 client"), ("jetwire/p9/session.py", "jetwire.p9 session"),
                       ("jetwire/runtime/frames.py", "FrameReader"), ("/asyncio/", "asyncio (Python)")):
        if path in filename:
            return name
    if filename == "~":
        if any(f"'{word}'" in function for word in ("join", "extend", "recv", "send", "sendall")):
            return "copying and socket calls (C)"
        return "other built-ins (C)"
    return "other Python"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.p9_throughput")
    parser.add_argument("--size-mib", type=int, default=256, help="file size in MiB (default 256)")
    parser.add_argument("--runs", type=int, default=5, help="timed rounds (default 5)")
    parser.add_argument("--msize", type=int, default=MIB + 24, help="msize both clients propose (default 1 MiB + 24)")
    parser.add_argument("--getattr-seconds", type=float, default=2.0, help="length of one getattr run (default 2)")
    parser.add_argument("--no-profile", action="store_true", help="skip the cProfile runs")
    parser.add_argument("--no-save", action="store_true", help="print the report but do not save it")
    args = parser.parse_args(argv)
    peers = _peers()
    env = subprocess_env()
    size = args.size_mib * MIB
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="jetwire-p9-throughput-"))
    try:
        export = tmp / "export"
        export.mkdir()
        print(f"writing {args.size_mib} MiB to {export / FILE_NAME}", flush=True)
        digest = write_file(export / FILE_NAME, size)
        write_file(export / PROBE_NAME, MIB + 12345)
        subprocess.run([sys.executable, "-c", "import jetwire.p9"], cwd=ROOT, env=env, check=True)  # bytecode cache
        print("probing the negotiated msize (diod -d 1)", flush=True)
        negotiated = probe(peers, export, tmp / "diod-debug", args.msize, env)
        peer = peers.start_diod(export, tmp / "diod")
        try:
            bench = Bench(peer, peers.find_tool("diodcat", "diod"), args.msize, env)
            print("verifying the bytes each client reads (SHA-256)", flush=True)
            checks = verify(bench, digest, size)
            variants: dict[str, Callable[[], dict[str, Any]]] = {
                "diodcat": lambda: bench.run(bench.diodcat_argv(FILE_NAME), json_out=False),
                "jetwire read_bytes": lambda: bench.run(bench.jetwire_argv("read_bytes", FILE_NAME), json_out=True),
                "jetwire read_chunks stream": lambda: bench.run(bench.jetwire_argv("stream", FILE_NAME),
                                                                json_out=True),
                "jetwire read_chunks kept, joined": lambda: bench.run(bench.jetwire_argv("stream_kept", FILE_NAME),
                                                                      json_out=True),
                "jetwire File.read()": lambda: bench.run(bench.jetwire_argv("file_read", FILE_NAME), json_out=True),
                "jetwire read, 1 in flight": lambda: bench.run(bench.jetwire_argv("sequential", FILE_NAME),
                                                               json_out=True),
                "jetwire write_bytes": lambda: bench.run(bench.jetwire_argv("write_bytes", OUT_NAME, args.size_mib),
                                                         json_out=True),
                "jetwire File.write, 1 MiB each": lambda: bench.run(
                    bench.jetwire_argv("write_stream", OUT_NAME, args.size_mib), json_out=True),
                "jetwire getattr x32": lambda: bench.run(bench.jetwire_argv("getattr_loop", FILE_NAME,
                                                                            args.getattr_seconds), json_out=True),
            }
            samples: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
            for fn in variants.values():
                fn()  # warm-up: page cache, bytecode cache, diod's threads
            for i in range(args.runs):
                for name, fn in variants.items():
                    sample = fn()
                    samples[name].append(sample)
                    print(f"  round {i + 1}/{args.runs} {name}: {sample['wall_s']:.2f} s", flush=True)
            profiles = {}
            if not args.no_profile:
                print("profiling the jetwire client (cProfile)", flush=True)
                profiles["streaming read (read_chunks)"] = profile(bench, tmp, "stream", 0)
                profiles[f"getattr, 32 in flight, {args.getattr_seconds:g} s"] = profile(
                    bench, tmp, "getattr_loop", args.getattr_seconds)
        finally:
            peer.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    text = render(args, size, negotiated, checks, samples, profiles, time.perf_counter() - started)
    print()
    print(text)
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"{datetime.date.today().isoformat()}-p9-throughput.md"
        path.write_text(text, encoding="utf-8")
        print(f"saved {path.relative_to(ROOT)}")


def _median(rows: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def render(args: argparse.Namespace, size: int, negotiated: dict[str, Any], checks: list[str],
           samples: dict[str, list[dict[str, Any]]], profiles: dict[str, str], elapsed: float) -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    out = [f"# 9P throughput against diod, {datetime.date.today().isoformat()}", "",
           f"Python {platform.python_version()} on {platform.platform()}, {os.cpu_count()} CPUs, load average {load} "
           f"at the end.  \njetwire {_version('jetwire')} at {_git_revision()}; diod {_diod_version()}.  \n"
           f"`python -m benchmarks.p9_throughput`: a {size // MIB} MiB file on a temporary export (page cache "
           f"warm), {args.runs} rounds after a warm-up round, every variant once per round; medians. "
           f"{elapsed:.0f} s in all.", "",
           "## msize", "",
           f"Both clients proposed {args.msize:,} (1 MiB + 24). diod answered {negotiated['diodcat_answered']:,} to "
           f"diodcat (which proposed {negotiated['diodcat_proposed']:,}) and {negotiated['jetwire_answered']:,} to "
           f"jetwire (which proposed {negotiated['jetwire_proposed']:,}; its session's msize afterwards: "
           f"{negotiated['jetwire_msize']:,}): diod caps msize at 65,536, so every Tread below carries at most "
           f"{negotiated['jetwire_msize'] - 24:,} bytes. In diod's debug log diodcat keeps "
           f"{negotiated['diodcat_read_tags']} Tread in flight (of {negotiated['diodcat_read_count']:,} bytes).", ""]
    out += ["## Reading and writing the file", "",
            "The write rows write a file of the same size (1 MiB of random bytes repeated, made before "
            "connecting; \"transfer MB/s\" times the write alone): `Client.write_bytes` in one call, and "
            "`File.write` of 1 MiB slices in turn.", "",
            "Whole process, wall clock: `diodcat ... big.bin > /dev/null`, and `python -c` importing jetwire.p9, "
            "connecting, reading and exiting. MB/s is 10^6 bytes per second of that wall clock; \"transfer MB/s\" "
            "leaves out the jetwire process's start-up (interpreter, imports, connect: "
            f"{_median(samples['jetwire read_bytes'], 'connect_s') * 1e3:.0f} ms to connect after "
            "the imports). CPU: user + system seconds of the client process and of diod during the run, as a "
            "share of the wall clock (1.00 = one core busy the whole time).", "",
            "| client | wall s | MB/s | x diodcat | transfer MB/s | client CPU / wall | diod CPU / wall |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    base = _median(samples["diodcat"], "wall_s")
    for name, rows in samples.items():
        if "getattr" in name:
            continue
        wall = _median(rows, "wall_s")
        transfer = f"{size / _median(rows, 'work_s') / MB:,.0f}" if "work_s" in rows[0] else "—"
        out.append(f"| {name} | {wall:.2f} | **{size / wall / MB:,.0f}** | {base / wall:.2f} | {transfer} "
                   f"| {_median(rows, 'client_cpu_s') / wall:.2f} | {_median(rows, 'server_cpu_s') / wall:.2f} |")
    out += ["", "\"x diodcat\" is diodcat's wall time divided by this row's: the share of diodcat's throughput this "
            "client reaches (below 1.00 is slower). The streaming read that keeps nothing writes no memory "
            "it has not just freed; every row that ends holding the file (read_bytes, File.read(), the "
            "chunks kept) also fills that much fresh memory, a page fault and a zeroed page each 4 KiB, "
            "which no client holding the file avoids.", ""]
    rows = samples["jetwire getattr x32"]
    rates = sorted(r["calls"] / r["work_s"] for r in rows)
    out += ["## Pipelined Tgetattr", "",
            f"One connection, {rows[0]['inflight']} Tgetattr (P9_GETATTR_BASIC) always in flight over "
            f"{rows[0]['fids']} fids (32 coroutines each awaiting `client.getattr` in a loop), "
            f"{args.getattr_seconds:g} s per run, {len(rows)} runs.", "",
            "| getattr calls/s (median) | min | max | client CPU / wall | diod CPU / wall |",
            "|---:|---:|---:|---:|---:|",
            f"| **{statistics.median(rates):,.0f}** | {rates[0]:,.0f} | {rates[-1]:,.0f} "
            f"| {_median(rows, 'client_cpu_s') / _median(rows, 'wall_s'):.2f} "
            f"| {_median(rows, 'server_cpu_s') / _median(rows, 'wall_s'):.2f} |", ""]
    if profiles:
        out += ["## Where the jetwire client's time goes", "",
                "One more run of each under cProfile (which slows Python code down, so shares matter, not "
                "totals), top functions by own time."]
        for title, text in profiles.items():
            out += ["", f"### {title}", "", text]
        out.append("")
    out += ["## Checked before timing", ""] + [f"- {line}" for line in checks]
    return "\n".join(out) + "\n"


def _diod_version() -> str:
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "diod"], capture_output=True, text=True)
    except OSError:
        return "version unknown"
    return out.stdout.strip() or "version unknown"


if __name__ == "__main__":
    main()

"""Record a real diod session into a fixture file: ``python tests/p9/record.py OUT.bin``.

Starts diod (tests/p9/peers.py) with a fixed export, puts a TCP proxy in front of it that records
every byte both ways, splits each stream into whole 9P frames by their ``size[4]`` prefix, and drives
traffic through the proxy with diod's own client tools, one connection at a time.

Output format: a sequence of records ``direction[1] frame``, where direction is ``T`` (0x54,
client->server) or ``R`` (0x52, server->client) and ``frame`` is the raw 9P message exactly as it
crossed the wire (``size[4] type[1] tag[2] body``; the size makes records self-delimiting).
Connections follow each other without interleaving; each one starts with a Tversion.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

if str(Path(__file__).parent) not in sys.path:  # run as a script or imported by the tests
    sys.path.insert(0, str(Path(__file__).parent))

from peers import find_tool, start_diod

CLIENT_TO_SERVER = b"T"
SERVER_TO_CLIENT = b"R"
DEFAULT_WORKDIR = Path("/tmp/jetwire-p9-record")  # fixed, so the aname in the fixture is too
_MARKER = ".jetwire-p9-record"
FIXED_MTIME = 1_700_000_000  # 2023-11-14T22:13:20Z

NAMES = {  # 9P2000.L message types, for the histogram
    6: "Tlerror", 7: "Rlerror", 8: "Tstatfs", 9: "Rstatfs", 12: "Tlopen", 13: "Rlopen", 14: "Tlcreate",
    15: "Rlcreate", 16: "Tsymlink", 17: "Rsymlink", 18: "Tmknod", 19: "Rmknod", 20: "Trename", 21: "Rrename",
    22: "Treadlink", 23: "Rreadlink", 24: "Tgetattr", 25: "Rgetattr", 26: "Tsetattr", 27: "Rsetattr",
    30: "Txattrwalk", 31: "Rxattrwalk", 32: "Txattrcreate", 33: "Rxattrcreate", 40: "Treaddir", 41: "Rreaddir",
    50: "Tfsync", 51: "Rfsync", 52: "Tlock", 53: "Rlock", 54: "Tgetlock", 55: "Rgetlock", 70: "Tlink",
    71: "Rlink", 72: "Tmkdir", 73: "Rmkdir", 74: "Trenameat", 75: "Rrenameat", 76: "Tunlinkat", 77: "Runlinkat",
    100: "Tversion", 101: "Rversion", 102: "Tauth", 103: "Rauth", 104: "Tattach", 105: "Rattach",
    107: "Rerror", 108: "Tflush", 109: "Rflush", 110: "Twalk", 111: "Rwalk", 116: "Tread", 117: "Rread",
    118: "Twrite", 119: "Rwrite", 120: "Tclunk", 121: "Rclunk", 122: "Tremove", 123: "Rremove",
}


def parse_records(data: bytes) -> list[tuple[str, bytes]]:
    """Split a fixture into ``(direction, frame)`` pairs; ValueError unless it parses exactly."""
    records: list[tuple[str, bytes]] = []
    offset = 0
    while offset < len(data):
        direction = data[offset : offset + 1]
        if direction not in (CLIENT_TO_SERVER, SERVER_TO_CLIENT):
            raise ValueError(f"bad direction byte {direction!r} at offset {offset}")
        if offset + 5 > len(data):
            raise ValueError(f"truncated frame header at offset {offset + 1}")
        (size,) = struct.unpack_from("<I", data, offset + 1)
        if size < 7 or offset + 1 + size > len(data):
            raise ValueError(f"bad frame size {size} at offset {offset + 1}")
        records.append((direction.decode(), data[offset + 1 : offset + 1 + size]))
        offset += 1 + size
    return records


class FrameSplitter:
    """Accumulates a byte stream and hands out the whole 9P frames in it."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self.buffer += data
        frames: list[bytes] = []
        while len(self.buffer) >= 4:
            (size,) = struct.unpack_from("<I", self.buffer)
            if size < 7:
                raise ValueError(f"frame size {size} < 7 in the stream")
            if len(self.buffer) < size:
                break
            frames.append(bytes(self.buffer[:size]))
            del self.buffer[:size]
        return frames


class RecordingProxy:
    """Listens on 127.0.0.1, forwards each connection to ``upstream`` and records its frames."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.records: list[tuple[bytes, bytes]] = []
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.active = 0  # connections with a direction still open
        self.idle = threading.Condition(self.lock)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.thread.start()

    def _accept_loop(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            server = socket.create_connection(self.upstream)
            with self.lock:
                self.active += 1
            pumps_left = [2]
            for src, dst, direction in ((client, server, CLIENT_TO_SERVER), (server, client, SERVER_TO_CLIENT)):
                threading.Thread(target=self._pump, args=(src, dst, direction, pumps_left), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, direction: bytes, pumps_left: list[int]) -> None:
        splitter = FrameSplitter()
        try:
            while chunk := src.recv(65536):
                frames = splitter.feed(chunk)
                with self.lock:  # recorded before forwarding: a request always precedes its reply
                    self.records.extend((direction, frame) for frame in frames)
                dst.sendall(chunk)
        except OSError as exc:
            with self.lock:
                self.errors.append(f"{direction.decode()}: {exc}")
        finally:
            if splitter.buffer:
                with self.lock:
                    self.errors.append(f"{direction.decode()}: {len(splitter.buffer)} bytes of a partial frame at EOF")
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            with self.lock:
                pumps_left[0] -= 1
                if pumps_left[0] == 0:  # both directions of this connection are done
                    src.close()
                    dst.close()
                    self.active -= 1
                    self.idle.notify_all()

    def wait_idle(self, timeout: float = 10.0) -> None:
        with self.idle:
            if not self.idle.wait_for(lambda: self.active == 0, timeout):
                raise RuntimeError("proxy connections still open")

    def close(self) -> None:
        self.listener.close()


def populate(export: Path) -> None:
    """Fixed names and contents (qids and times differ between recordings)."""
    (export / "sub").mkdir()
    (export / "hello.txt").write_bytes(b"hello, 9p\n")
    (export / "sub" / "nested.txt").write_bytes(b"nested\n")
    (export / "empty").write_bytes(b"")
    (export / "big.bin").write_bytes(bytes(range(256)) * 78 + bytes(range(32)))  # 20000 bytes
    (export / "link").symlink_to("hello.txt")
    for path in [*sorted(export.rglob("*"), reverse=True), export]:
        os.utime(path, (FIXED_MTIME, FIXED_MTIME), follow_symlinks=False)


def drive(port: int, aname: str, proxy: RecordingProxy) -> list[str]:
    """Run diod's client tools through the proxy, one connection at a time; returns a transcript."""
    server = f"127.0.0.1:{port}"
    sessions: list[tuple[list[str], int]] = [  # (argv, expected exit status)
        (["diodls", "-s", server, "-a", aname, "/"], 0),
        (["diodls", "-l", "-s", server, "-a", aname, "/"], 0),
        (["diodls", "-l", "-s", server, "-a", aname, "sub"], 0),
        (["diodcat", "-s", server, "-a", aname, "hello.txt", "sub/nested.txt", "empty"], 0),
        (["diodcat", "-m", "8192", "-s", server, "-a", aname, "big.bin"], 0),  # several Treads
        (["diodcat", "-s", server, "-a", aname, "no-such-file"], 1),  # Rlerror ENOENT
        (["dioddate", "-s", server], 0),  # the synthetic "ctl" export
        (["diodshowmount", "-s", server], 0),
    ]
    transcript: list[str] = []
    for argv, expected in sessions:
        result = subprocess.run(
            [find_tool(argv[0], "diod"), "-t", "10", *argv[1:]], capture_output=True, timeout=30, check=False
        )
        if result.returncode != expected:
            raise RuntimeError(f"{argv}: exit {result.returncode}, expected {expected}: {result.stderr!r}")
        proxy.wait_idle()
        transcript.append(f"$ {' '.join(argv)}  -> exit {result.returncode}, {len(result.stdout)} bytes out")
    return transcript


def histogram(records: list[tuple[str, bytes]]) -> str:
    counts = Counter(frame[4] for _, frame in records)
    return "\n".join(f"{t:4d} {NAMES.get(t, '?'):<12} {n}" for t, n in sorted(counts.items()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="fixture file to write")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help="scratch directory (recreated)")
    args = parser.parse_args()
    workdir: Path = args.workdir
    if workdir.exists():
        if not (workdir / _MARKER).exists():
            parser.error(f"{workdir} exists and was not made by this script; pick another --workdir")
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    (workdir / _MARKER).touch()
    export = workdir / "export"
    export.mkdir()
    populate(export)

    started = time.monotonic()
    peer = start_diod(export, workdir, ctl=True, debug=True)
    print(f"diod up in {time.monotonic() - started:.3f} s on port {peer.port}, log {peer.log}")
    proxy = None
    try:
        proxy = RecordingProxy(peer.address)
        for line in drive(proxy.port, peer.aname, proxy):
            print(line)
    finally:
        if proxy is not None:
            proxy.close()
        peer.stop()  # diod must not outlive a proxy that failed to start either
    if proxy.errors:
        raise RuntimeError(f"proxy errors: {proxy.errors}")

    data = b"".join(direction + frame for direction, frame in proxy.records)
    records = parse_records(data)  # the check the tests make
    assert sum(1 + len(frame) for _, frame in records) == len(data)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(data)
    print(f"wrote {args.out}: {len(records)} frames, {len(data)} bytes")
    print(histogram(records))
    return 0


if __name__ == "__main__":
    sys.exit(main())

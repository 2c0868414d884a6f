"""Serf's coordinate package, driven from the tests: ``serf_driver.go`` built against Debian's copy
of Serf (GOPATH mode, no network) and spoken to line by line."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from jetwire.cluster import Config, Coordinate

GOPATH = Path("/usr/share/gocode")
SERF = GOPATH / "src/github.com/hashicorp/serf/coordinate"
DRIVER = Path(__file__).with_name("serf_driver.go")


class MissingGo(Exception):
    """The Go toolchain or Serf's source is not installed (tests/install-peers.sh installs both)."""


def build_driver(directory: Path) -> Path:
    go = shutil.which("go")
    if go is None:
        raise MissingGo("no Go toolchain: apt-get install golang-go (tests/install-peers.sh)")
    if not (SERF / "client.go").exists():
        raise MissingGo(f"no Serf source in {SERF}: apt-get install golang-github-hashicorp-serf-dev")
    binary = directory / "serf_driver"
    env = dict(os.environ, GO111MODULE="off", GOPATH=str(GOPATH), GOFLAGS="", GOPROXY="off")
    if not any(env.get(name) for name in ("GOCACHE", "XDG_CACHE_HOME", "HOME")):
        env["GOCACHE"] = str(directory / "gocache")
    subprocess.run([go, "build", "-o", str(binary), str(DRIVER)], cwd=DRIVER.parent, env=env, check=True,
                   capture_output=True, timeout=600)
    return binary


def number(value: float) -> str:
    return repr(float(value))  # shortest exact: Go's ParseFloat reads it back bit for bit


def coordinate_text(c: Coordinate) -> str:
    return " ".join([str(len(c.vec)), *map(number, c.vec), number(c.error), number(c.adjustment), number(c.height)])


def parse_coordinate(text: str) -> Coordinate:
    fields = text.split()
    dim = int(fields[0])
    values = [float(f) for f in fields[1:]]
    assert len(values) == dim + 3, text
    return Coordinate(values[:dim], values[dim], values[dim + 1], values[dim + 2])


def config_text(c: Config) -> str:
    return " ".join(["config", str(c.dimensionality), number(c.vivaldi_error_max), number(c.vivaldi_ce),
                     number(c.vivaldi_cc), str(c.adjustment_window_size), number(c.height_min),
                     str(c.latency_filter_size), number(c.gravity_rho)])


class Serf:
    """One running driver; ``ask`` sends a command and returns its answer line."""

    def __init__(self, binary: Path) -> None:
        self.binary = binary
        self._process = subprocess.Popen([str(binary)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.DEVNULL, text=True)

    def ask(self, command: str) -> str:
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(command + "\n")
        self._process.stdin.flush()
        answer = self._process.stdout.readline()
        if not answer:
            raise RuntimeError(f"the Serf driver died on {command[:80]!r}")
        return answer.rstrip("\n")

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        self._process.wait(timeout=30)


class GoSource:
    """Go's ``math/rand`` as Serf's simulation uses it (``Intn``, ``Float64``, reseeded at each
    run), computed from the generator's raw ``Int63`` stream, which the driver prints."""

    def __init__(self, serf: Serf, count: int = 100_000, seed: int = 1) -> None:
        self._seed = seed
        self._stream = [int(v) for v in serf.ask(f"int63 {seed} {count}").split()]
        self._position = 0

    def seed(self, seed: int) -> None:
        assert seed == self._seed, f"the stream was printed for seed {self._seed}"
        self._position = 0

    def _int63(self) -> int:
        value = self._stream[self._position]
        self._position += 1
        return value

    def intn(self, n: int) -> int:  # Go's Intn for n < 2**31, through Int31n
        if n & (n - 1) == 0:
            return (self._int63() >> 32) & (n - 1)
        limit = (1 << 31) - 1 - (1 << 31) % n
        value = self._int63() >> 32
        while value > limit:
            value = self._int63() >> 32
        return value % n

    def random(self) -> float:  # Go's Float64
        while True:
            value = float(self._int63()) / (1 << 63)
            if value != 1.0:
                return value

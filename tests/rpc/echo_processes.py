"""Running ``examples/echo_server.py`` and ``examples/echo_client.py`` as processes, for the
tests that check them (``test_examples.py``, ``test_recorded_ts.py``)."""

from __future__ import annotations

import asyncio
import os
import signal
import struct
import sys
from pathlib import Path

import pytest

from jetwire import rpc

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
GUARD = 60.0
"""Seconds after which a stuck process fails the test instead of hanging it; never a measure."""

EXPECTED_CLIENT_OUTPUT = [
    "ping('hello') = 'hello'",
    "ping('héllo') = 'héllo'",
    "ping('') = ''",
    "add(2, 3) = 5",
    "add(-7, 3) = -4",
    "add(2147483646, 1) = 2147483647",
    f"20 pipelined add(i, 1000) = {[i + 1000 for i in range(20)]!r}",
    "ok: 7 checks answered as expected",
]

sys.path.insert(0, str(EXAMPLES))
from echohttp import EchoHttp  # noqa: E402

SPEC = rpc.spec_of(EchoHttp)
Tframe, Rframe = SPEC.Tframe, SPEC.Rframe
Tping, Rping = SPEC.by_name["ping"].request, SPEC.by_name["ping"].response
Tadd, Radd = SPEC.by_name["add"].request, SPEC.by_name["add"].response


def environment() -> dict[str, str]:
    """This checkout's jetwire, whatever is installed, and UTF-8 output for 'héllo'."""
    return {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONIOENCODING": "utf-8"}


def run(body) -> None:
    asyncio.run(asyncio.wait_for(body(), GUARD))


async def start_server(listen: str = "127.0.0.1:0", *extra: str) -> tuple[asyncio.subprocess.Process, str]:
    """The example server as a process (``extra``: more arguments, e.g. ``--quic``), and the HOST:PORT it printed."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(EXAMPLES / "echo_server.py"), "--listen", listen, *extra,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=environment())
    assert process.stdout is not None
    line = (await process.stdout.readline()).decode()
    if not line.startswith(("listening tcp://", "listening quic://")):
        process.kill()
        _, err = await process.communicate()
        pytest.fail(f"echo_server.py did not start: {line!r} {err.decode()}")
    return process, line.split("://", 1)[1].strip()


async def stop_server(process: asyncio.subprocess.Process) -> tuple[int, str, str]:
    process.send_signal(signal.SIGTERM)
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def run_client(address: str, *extra: str) -> tuple[int, list[str], str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(EXAMPLES / "echo_client.py"), "--connect", address, *extra,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=environment())
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode().splitlines(), err.decode()


async def read_frame(reader: asyncio.StreamReader) -> bytes:
    """One whole frame, by its size prefix."""
    head = await reader.readexactly(4)
    (size,) = struct.unpack("<I", head)
    return head + await reader.readexactly(size - 4)

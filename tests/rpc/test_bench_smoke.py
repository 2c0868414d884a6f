"""``benchmarks/rpc.py`` keeps working: its jetwire server and client (in processes, as the
benchmark runs them, and in this one) answer right, its raw client and server write the very
frames jetwire writes (each talks to the other side's jetwire), and the memory run's holding
and releasing of calls completes. Nothing here is timed."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest

from benchmarks import rpc as bench
from benchmarks import rpc_instructions

VALUES = (0, 1, 7, 2**32 - 1, 2**32, 2**64 - 1)


def _run(coro: object) -> None:
    asyncio.run(asyncio.wait_for(coro, 60))  # type: ignore[arg-type]


def test_the_benchmark_service_is_square_u64_to_str() -> None:
    service = bench.benchmark_service()
    assert service.NAME == "benchmark"
    assert service.VERSION.startswith("rs.jetstream.proto/benchmark/1.0.0+")
    assert bench.answer(12) == "144"


@pytest.mark.parametrize("server_kind,client_kind", [
    ("jetwire", "jetwire"), ("raw", "jetwire"), ("raw-tasks", "jetwire"), ("jetwire", "raw"), ("raw", "raw"),
    ("jetwire-inline", "jetwire"), ("jetwire-inline", "raw")])
def test_each_client_gets_right_answers_from_each_server(server_kind: str, client_kind: str) -> None:
    """The raw side talking to jetwire's proves on the wire what verify() checks in memory: the
    raw frames (Tversion, requests, responses) are the ones jetwire writes and reads."""

    async def main() -> None:
        served = await bench.serve(server_kind, "tcp://127.0.0.1:0")
        try:
            client = await bench.connect(client_kind, served.url)
            try:
                answers = await asyncio.gather(*(client.square(i) for i in VALUES))
                assert answers == [str(i * i) for i in VALUES]
                assert await client.square(3) == "9"
            finally:
                await client.close()
        finally:
            await served.stop()

    _run(main())


@pytest.mark.parametrize("server_kind,client_kind", [
    ("jetwire-quic", "jetwire-quic"), ("raw-quic", "jetwire-quic"), (bench.QUIC_BASELINE_KIND, bench.QUIC_BASELINE_KIND)])
def test_each_quic_client_gets_right_answers_from_each_quic_server(
        server_kind: str, client_kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same over QUIC (ALPN jetstream, one stream, a certificate made for the test)."""
    bench.make_certificate(tmp_path)
    monkeypatch.setenv("JETWIRE_BENCH_CERT_DIR", str(tmp_path))
    test_each_client_gets_right_answers_from_each_server(server_kind, client_kind)


def test_the_raw_frames_are_byte_for_byte_jetwires() -> None:
    lines = bench._verify_bytes(bench.benchmark_service())
    assert any("Tversion" in line for line in lines)
    assert any(f"for {len(bench.VERIFY_VALUES)} values" in line for line in lines)


def test_a_raw_frame_that_differs_from_jetwires_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check compares something: a raw side drifted from jetwire's bytes fails it."""
    service = bench.benchmark_service()
    monkeypatch.setattr(bench, "REQUEST", bench.struct.Struct(">IBHQ"))
    with pytest.raises(AssertionError, match="request differs"):
        bench._verify_bytes(service)
    monkeypatch.undo()
    monkeypatch.setattr(bench, "_raw_response", lambda tag, i: bytes(7))
    with pytest.raises(AssertionError, match="response differs"):
        bench._verify_bytes(service)
    monkeypatch.undo()
    monkeypatch.setattr(bench, "jetwire_version", lambda: (service.VERSION, 65536))
    with pytest.raises(AssertionError, match="Tversion differs"):
        bench._verify_bytes(service)


def test_the_jetwire_server_and_client_processes_answer_right() -> None:
    """As the benchmark runs them: the server in a process of its own, the client in another,
    whose warm-up checks every answer (a wrong one fails the client process)."""
    server = bench.ServerProcess("jetwire")
    try:
        result = bench.run_client("jetwire", server, (1, 4), 0.01, 16)
    finally:
        server.stop()
    assert result["kind"] == "jetwire"
    assert [w["inflight"] for w in result["windows"]] == [1, 4]
    assert all(w["calls"] >= 1 for w in result["windows"])


@pytest.mark.parametrize("trace", [False, True])
def test_the_memory_run_holds_and_releases_jetwire_calls(trace: bool) -> None:
    """The server holds every call until told, the client checks every late answer."""
    result = bench.measure_memory("jetwire", connections=3, calls_each=2, trace=trace)
    assert result["connections"] == 3 and result["calls"] == 6
    assert result["reached"] == 6 and result["unanswered"] == 0
    assert (result["bare_task"] is not None) == trace


@pytest.mark.parametrize("client_kind,server_kind", rpc_instructions.PAIRS)
def test_each_pair_the_instruction_counter_runs_makes_its_calls(client_kind: str, server_kind: str) -> None:
    """``benchmarks/rpc_instructions.py``'s child process (run here without valgrind, a few
    calls): it checks every answer and exits 0, or says which was wrong."""
    result = subprocess.run(rpc_instructions.child(client_kind, server_kind, 4, 8, 16), capture_output=True,
                            text=True, timeout=120, cwd=rpc_instructions.ROOT)
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.parametrize("client_kind,server_kind", [*rpc_instructions.QUIC_PAIRS, (rpc_instructions.CORE,) * 2])
def test_each_quic_pair_the_instruction_counter_runs_makes_its_calls(
        client_kind: str, server_kind: str, tmp_path: Path) -> None:
    """The same for ``--quic``'s pairs, and for aioquic alone (``benchmarks/quic_core.py``, which
    stops if a message takes more than one datagram)."""
    bench.make_certificate(tmp_path)
    result = subprocess.run(rpc_instructions.child(client_kind, server_kind, 4, 8, 16), capture_output=True,
                            text=True, timeout=120, cwd=rpc_instructions.ROOT,
                            env={**os.environ, "JETWIRE_BENCH_CERT_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_quic_baseline_runs_from_the_baseline_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--baseline-tree`` with jetwire-quic: the baseline's QUIC processes import jetwire from that tree."""
    monkeypatch.setenv("JETWIRE_BENCH_BASELINE_TREE", str(tmp_path))
    cwd, env = bench._placement(bench.QUIC_BASELINE_KIND)
    assert cwd == tmp_path and env["PYTHONPATH"].split(os.pathsep)[0] == str(tmp_path)
    assert bench._placement("jetwire-quic")[0] == bench.ROOT

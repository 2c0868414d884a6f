"""A short fuzz run with a fixed seed (``fuzz/``, ``docs/fuzzing.md``), and the harness's own checks.

Each target runs a fixed number of cases, the same ones on every run, so a failure names a
case that ``python -m fuzz --replay TARGET --case N --seed SEED`` reproduces. The long, random
run is for developers: ``python -m fuzz --seconds 600``.
"""

from __future__ import annotations

import asyncio
import errno
import io
import time
from pathlib import Path
from typing import Any

import pytest

import jetwire as jw
from fuzz import protocols as fuzz_protocols
from fuzz import targets as fuzz_targets
from fuzz.__main__ import main as fuzz_main
from fuzz.catalogue import CATALOGUE
from fuzz.mutators import MUTATORS, mutate
from fuzz.oracle import Finding, check_bytes, check_value
from fuzz.protocols import MARKER, HostileServer
from fuzz.runner import case_rng, replay_command, run_case
from fuzz.targets import TARGETS
from jetwire.compiler import interpret
from jetwire.p9 import Rreadlink
from jetwire.p9 import connection as p9_connection
from jetwire.p9 import session as p9_session
from jetwire.p9.localfs import LocalFid, LocalFilesystem
from jetwire.p9.serving import serve as p9_serve
from jetwire.rpc import ClientSession, ServerSession

SEED = 20261203
# Cases per target: about 15 s in all on the project's machines (the protocol targets' share 6 s).
CASES = {
    "bytes": 800, "values": 500, "chunks": 100, "amplify": 6, "frames": 300, "threads": 30, "p9": 300,
    "encode": 1500, "types": 150, "deep": 30, "collide": 0, "builtins": 400,
    "rpc_server": 1500, "rpc_client": 1500, "p9_server": 50, "p9_client": 20, "rpc_served": 60, "p9_served": 25,
    "rpc_channel": 12,
}

# Targets left out of CI, each with why; a target that finds a bug not fixed yet goes here with
# the bug named, and comes out with its fix.
KNOWN_BUGS = {
    # Not a bug: this target compares times (colliding against distinct hashes), which a test must
    # not. Run it by hand: python -m fuzz --target collide (hash flooding).
    "collide": "timing ratio: developers' runs only",
}
KNOWN_BUG_TYPES: set[str] = set()
# Kinds of finding a target may report without failing the run, each with why; the target's
# other oracles still hold in CI.
KNOWN_BUG_KINDS: dict[str, set[str]] = {}
RUNNING = [target for target in CASES if target not in KNOWN_BUGS]


@pytest.mark.parametrize("target", RUNNING)
def test_fuzz_target_holds(target: str) -> None:
    types = {name: tp for name, tp in CATALOGUE.items() if name not in KNOWN_BUG_TYPES}
    findings = []
    for case in range(CASES[target]):
        result = run_case(target, case, SEED, types)
        if result.finding is not None and result.finding.kind not in KNOWN_BUG_KINDS.get(target, ()):
            findings.append(f"{result.finding}\n  replay: {replay_command(result, None, sorted(KNOWN_BUG_TYPES))}")
            if len(findings) == 3:
                break
    assert not findings, "\n".join(findings)


def test_every_target_is_run_or_named_as_a_known_bug() -> None:
    assert set(CASES) == set(TARGETS)
    assert set(KNOWN_BUGS) <= set(TARGETS)
    assert set(KNOWN_BUG_KINDS) <= set(TARGETS)


# ---------------------------------------------------------------------------------------------
# The harness: replays are exact, and the oracle catches what it must


def test_a_case_replays_the_same_inputs() -> None:
    first = run_case("bytes", 17, SEED)
    again = run_case("bytes", 17, SEED)
    other = run_case("bytes", 18, SEED)
    assert first.finding is None and first.summary == again.summary
    assert other.summary != first.summary
    assert case_rng(SEED, "chunks", 3).random() == case_rng(SEED, "chunks", 3).random()


def test_every_mutator_changes_some_input() -> None:
    data = bytes(range(40))
    other = bytes(range(100, 140))
    for mutator in MUTATORS:
        rng = case_rng(SEED, mutator.__name__, 0)
        changed = []
        for _ in range(20):
            out = bytearray(data)
            mutator(out, rng, other)
            changed.append(bytes(out))
        assert any(out != data for out in changed), mutator.__name__
    assert mutate(data, case_rng(SEED, "m", 1), other) == mutate(data, case_rng(SEED, "m", 1), other)


def _wrong_decoder(codec: jw.Codec[Any], monkeypatch: pytest.MonkeyPatch, result: Any) -> None:
    unit = codec.unit
    monkeypatch.setattr(unit, "decode", lambda data: result)


def test_oracle_catches_a_fast_path_that_disagrees(monkeypatch: pytest.MonkeyPatch) -> None:
    codec = jw.Codec(list[jw.u16])
    data = codec.encode([1, 2])
    _wrong_decoder(codec, monkeypatch, [1, 3])
    with pytest.raises(Finding, match="fast path and interpreter disagree"):
        check_bytes(codec, data)


def test_oracle_catches_an_exception_that_is_not_a_decode_error(monkeypatch: pytest.MonkeyPatch) -> None:
    codec = jw.Codec(list[jw.u32])

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise IndexError("index out of range")

    monkeypatch.setattr(interpret, "decode_buffer", broken)
    with pytest.raises(Finding, match="raised IndexError"):
        check_bytes(codec, b"\x01\x00\x01")


def test_oracle_catches_a_wrong_byte_size(monkeypatch: pytest.MonkeyPatch) -> None:
    codec = jw.Codec(str)
    monkeypatch.setattr(codec.unit, "byte_size", lambda value: 1)
    with pytest.raises(Finding, match="byte_size"):
        check_value(codec, "abc")


def test_chunks_target_catches_a_reader_that_loses_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    real = jw.read_value

    def lossy(tp: Any, file: Any) -> Any:
        value = real(tp, file)
        if isinstance(file, io.BytesIO):
            file.read(1)
        return value

    monkeypatch.setattr(jw, "read_value", lossy)
    found = [run_case("chunks", case, SEED, {"list[u16]": CATALOGUE["list[u16]"]}).finding for case in range(20)]
    assert any(f is not None and "differs from decode_prefix" in f.kind for f in found)


def test_a_case_that_never_ends_is_a_hang(monkeypatch: pytest.MonkeyPatch) -> None:
    def forever(rng: Any, types: Any) -> str:
        while True:
            time.sleep(0.01)

    monkeypatch.setitem(TARGETS, "bytes", forever)
    result = run_case("bytes", 0, SEED, limit=0.2)
    assert result.finding is not None and result.finding.kind == "hang"
    assert "in forever" in result.finding.detail  # where the alarm stopped it


def test_a_harness_error_names_the_harness_line_not_asyncio(monkeypatch: pytest.MonkeyPatch) -> None:
    async def serve_times_out(*args: Any, **kwargs: Any) -> Any:
        await asyncio.wait_for(asyncio.sleep(10), 0.01)  # TimeoutError from asyncio's own code

    monkeypatch.setattr(fuzz_protocols, "serve", serve_times_out)
    result = run_case("p9_served", 0, SEED)
    assert result.finding is not None
    assert result.finding.kind.startswith("the fuzz harness raised TimeoutError at fuzz/protocols.py:"), \
        result.finding.kind


def test_a_stalled_server_says_where_its_connections_wait(tmp_path: Path) -> None:
    async def body() -> str:
        fs = LocalFilesystem(tmp_path)
        server = await p9_serve(fs, f"unix:{tmp_path}/9p.sock")
        try:
            _, writer = await asyncio.open_unix_connection(f"{tmp_path}/9p.sock")
            while not server.connections:
                await asyncio.sleep(0.001)
            said = fuzz_protocols._stalled_server(server)
            writer.close()
            return said
        finally:
            await server.close()
            fs.close()

    said = asyncio.run(body())
    assert said.startswith("1 connections: a connection of 0 requests (open True"), said
    assert "_read_loop (serving.py:" in said and said.endswith("calls running: none"), said


def test_amplify_reports_memory_out_of_proportion(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fuzz_targets, "PER_BYTE", 0)
    monkeypatch.setattr(fuzz_targets, "SLACK", 0)
    monkeypatch.setattr(fuzz_targets, "DEEP_PATHS", 0)
    result = run_case("amplify", 0, SEED, {"list[u16]": CATALOGUE["list[u16]"]})
    assert result.finding is not None and "takes memory out of proportion" in result.finding.kind


def test_command_line_prints_findings_with_their_replay_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(rng: Any, types: Any) -> str:
        raise Finding("always broken", f"drew {rng.randrange(100)}")

    monkeypatch.setitem(TARGETS, "values", broken)
    assert fuzz_main(["--target", "values", "--cases", "2", "--seed", "5", "--type", "u8"]) == 1
    out = capsys.readouterr().out
    assert "[values] always broken (2 cases)" in out
    assert "replay: python -m fuzz --replay values --case 0 --seed 5 --type 'u8'" in out
    assert fuzz_main(["--replay", "values", "--case", "0", "--seed", "5", "--type", "u8"]) == 1
    assert "always broken" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------
# The protocol targets' oracles catch what they must


def test_rpc_server_target_catches_an_answer_with_another_tag(monkeypatch: pytest.MonkeyPatch) -> None:
    real = ServerSession.respond

    def mislabelled(self: ServerSession, call: Any, value: Any) -> bytes:
        data = bytearray(real(self, call, value))
        data[5:7] = ((call.tag + 1) & 0xFFFF).to_bytes(2, "little")
        return bytes(data)

    monkeypatch.setattr(ServerSession, "respond", mislabelled)
    found = [run_case("rpc_server", case, SEED).finding for case in range(60)]
    assert any(f is not None and f.kind == "an answer carries another tag" for f in found)


def test_rpc_client_target_catches_an_answer_to_an_abandoned_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ClientSession, "abandon", lambda self, tag: None)
    found = [run_case("rpc_client", case, SEED).finding for case in range(300)]
    assert any(f is not None and "answered a tag twice, abandoned or never used" in f.kind for f in found)


def test_p9_server_target_catches_a_leaked_descriptor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(LocalFid, "close", lambda self, close=None: None)
    found = [run_case("p9_server", case, SEED).finding for case in range(10)]
    assert any(f is not None and f.kind == "the 9P server leaks descriptors" for f in found)


def test_p9_server_target_catches_a_readdir_budget_never_given_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(LocalFilesystem, "_give_budget", lambda self, connection, size: None)
    found = [run_case("p9_server", case, SEED).finding for case in range(30)]
    assert any(f is not None and "readdir budget is not given back" in f.kind for f in found)


def test_p9_server_target_catches_a_handler_that_reaches_outside(monkeypatch: pytest.MonkeyPatch) -> None:
    async def planting(self: LocalFilesystem, msg: Any, fid: Any) -> Any:
        (Path(self.root).parent / "outside" / "planted").write_bytes(b"")
        raise OSError(errno.EIO, "planted")

    monkeypatch.setattr(LocalFilesystem, "lopen", planting)
    found = [run_case("p9_server", case, SEED).finding for case in range(20)]
    assert any(f is not None and f.kind == "the 9P server changed what is outside its export" for f in found)
    monkeypatch.undo()

    async def reading(self: LocalFilesystem, msg: Any, fid: Any) -> Any:
        return Rreadlink(target=(Path(self.root).parent / "outside" / MARKER.decode()).read_text())

    monkeypatch.setattr(LocalFilesystem, "readlink", reading)
    found = [run_case("p9_server", case, SEED).finding for case in range(40)]
    assert any(f is not None and f.kind == "the 9P server sent what is outside its export" for f in found)


def test_p9_client_target_catches_a_call_that_raises_what_it_must_not(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> OSError:
        raise KeyError("no such errno")

    monkeypatch.setattr(p9_session, "error_from_errno", broken)
    monkeypatch.setattr(p9_connection, "error_from_errno", broken)
    found = [run_case("p9_client", case, SEED).finding for case in range(12)]
    assert any(f is not None and f.kind.startswith("a 9P client call raised KeyError") for f in found)


def test_p9_client_target_catches_a_listing_without_end(monkeypatch: pytest.MonkeyPatch) -> None:
    real = HostileServer.__init__

    def endless(self: HostileServer, rng: Any) -> None:
        real(self, rng)
        self.endless, self.hostility = True, 0.0

    async def listing(client: Any, rng: Any, server: Any) -> Any:
        return await client.listdir("")

    monkeypatch.setattr(HostileServer, "__init__", endless)
    monkeypatch.setattr(fuzz_protocols, "_client_operation", listing)
    monkeypatch.setattr(fuzz_protocols, "CLIENT_TIMEOUT", 30.0)  # a loaded machine's slow answers are no finding here
    bounded = run_case("p9_client", 0, SEED)  # the client's max_listing ends it
    assert bounded.finding is None and bounded.summary == "ListingTooLongError", bounded
    monkeypatch.setattr(fuzz_protocols, "CLIENT_MAX_LISTING", 10**9)  # a client with no such bound
    result = run_case("p9_client", 0, SEED)
    assert result.finding is not None and result.finding.kind == "the 9P client sends requests without end"

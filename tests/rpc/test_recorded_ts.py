"""Frames recorded between upstream's own TypeScript RPC runtime and the echo examples
(``fixtures/ts-echohttp.txt``, which says how they were captured): bytes that nobody here
wrote, each decoded by jetwire and re-encoded to the identical bytes, then replayed, the TS
client's side to ``echo_server.py`` and the TS server's side to ``echo_client.py``, which must
answer and behave as they did against the real thing.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest
from echo_processes import (
    EXPECTED_CLIENT_OUTPUT,
    EchoHttp,
    Rframe,
    Tframe,
    read_frame,
    run,
    run_client,
    start_server,
    stop_server,
)

import jetwire
from jetwire import rpc
from jetwire.rpc import session
from jetwire.rpc.protocol import NOTAG, Rversion, Tversion
from jetwire.stdtypes import Backtrace

FIXTURE = Path(__file__).parent / "fixtures" / "ts-echohttp.txt"
SPEC = rpc.spec_of(EchoHttp)


def sessions() -> dict[str, list[tuple[str, bytes]]]:
    """Each recorded connection: its frames as (``"C"`` or ``"S"``, bytes), in capture order."""
    out: dict[str, list[tuple[str, bytes]]] = {}
    current: list[tuple[str, bytes]] = []
    for line in FIXTURE.read_text().splitlines():
        if line.startswith("@ "):
            current = out.setdefault(line[2:].split(":")[0], [])
        elif line and not line.startswith("#"):
            direction, data = line.split()
            current.append((direction, bytes.fromhex(data)))
    return out


SESSIONS = sessions()


def test_the_fixture_holds_the_four_sessions():
    assert {name: len(frames) for name, frames in SESSIONS.items()} == {
        "ts-client": 52, "ts-client-refused": 2, "ts-server": 54, "ts-server-error": 8}


@pytest.mark.parametrize("name", sorted(SESSIONS))
def test_every_recorded_frame_round_trips(name):
    """r[jetstream.rpc.frame.header] r[jetstream.rpc.numbering.method-ids] r[jetstream.rpc.body.request]
    r[jetstream.rpc.body.response]: every frame either side sent decodes as EchoHttp's frames,
    with nothing left over, and re-encodes to the same bytes."""
    seen: Counter[str] = Counter()
    for direction, raw in SESSIONS[name]:
        frame = (Tframe if direction == "C" else Rframe).decode(raw)
        assert frame.encode() == raw, f"{frame!r} re-encodes differently"
        seen[type(frame.msg).__name__] += 1
    assert seen["Tversion"] == seen["Rversion"] == 1
    if name != "ts-client-refused":
        assert seen["Tping"] + seen["Tadd"] == seen["Rping"] + seen["Radd"] + seen["Error"]


def test_the_typescript_handshakes_are_the_spec_s():
    """r[jetstream.rpc.version.client-tag] r[jetstream.rpc.version.reply-tag]
    r[jetstream.rpc.version.reject-unknown]: upstream's TS client sends its Tversion with tag
    0xFFFF and msize 65536; the TS server answers with tag 0xFFFF, msize min(65536, the
    client's) and the client's own string; jetwire's server answers the TS client with its tag,
    its msize and its string, or msize 0 and "unknown" for a service it does not serve."""
    handshakes = {name: (Tframe.decode(frames[0][1]), Rframe.decode(frames[1][1])) for name, frames in SESSIONS.items()}
    asked, answered = handshakes["ts-client"]
    assert (asked.tag, asked.msg) == (NOTAG, Tversion(65536, "rs.jetstream.proto/echohttp/15.0.0+bfd7d20e"))
    assert (answered.tag, answered.msg) == (NOTAG, Rversion(65536, asked.msg.version))
    asked, answered = handshakes["ts-client-refused"]
    assert (asked.tag, asked.msg) == (NOTAG, Tversion(65536, "rs.jetstream.proto/other/1.0.0"))
    assert (answered.tag, answered.msg) == (NOTAG, Rversion(0, "unknown"))
    for name in ("ts-server", "ts-server-error"):
        asked, answered = handshakes[name]
        assert asked.tag == NOTAG and asked.msg.version.startswith("rs.jetstream.proto/echohttp/15.0.0+")
        assert (answered.tag, answered.msg) == (NOTAG, Rversion(min(65536, asked.msg.msize), asked.msg.version))


def test_a_typescript_handler_s_error_reaches_a_jetwire_client_whole():
    """r[jetstream.rpc.error.frame] r[jetstream.rpc.error.client-surface]: what upstream's
    dispatcher sends for a handler that threw ``new Error("boom")`` (message "Error: boom", the
    backtrace ``[""]``, ``[]``) is the spec's TS-style error frame, and a client session fails
    just that call with it."""
    frames = SESSIONS["ts-server-error"]
    errors = [(i, raw) for i, (direction, raw) in enumerate(frames) if raw[4] == 5]
    assert len(errors) == 1
    at, raw = errors[0]
    expected = jetwire.Error("Error: boom", backtrace=Backtrace(intern_table=("",), frames=()))
    assert Rframe.decode(raw).msg == expected
    assert raw[7:] == bytes.fromhex("0b00") + b"Error: boom" + bytes.fromhex("000000 0100 0000 0000")

    client = session.ClientSession(SPEC, version=Tframe.decode(frames[0][1]).msg.version)
    client.start()
    client.receive_data(frames[1][1])
    assert isinstance(client.next_event(), session.Negotiated)
    ping = SPEC.by_name["ping"]
    tag, data = client.call(ping, ping.request(message="throw"))
    assert data == frames[at - 1][1]  # the call it answers, as the jetwire client sent it then
    client.receive_data(raw)
    assert client.next_event() == session.Failed(tag, expected)
    assert client.in_flight == 0


@pytest.mark.parametrize("name", ["ts-client", "ts-client-refused"])
def test_the_server_answers_the_recorded_typescript_client_as_it_did(name):
    """r[jetstream.rpc.tag.echo-any] r[jetstream.rpc.mux.one-response]: the TS client's frames,
    replayed to ``echo_server.py``: the handshake is answered with the recorded bytes, every
    call (all of them written at once this time) with one of the recorded answers, exactly
    one each; a refused client gets the recorded "unknown" and the stream ends."""
    frames = SESSIONS[name]
    sent = [raw for direction, raw in frames if direction == "C"]
    answers = [raw for direction, raw in frames if direction == "S"]

    async def body() -> None:
        server, address = await start_server()
        try:
            host, port = address.rsplit(":", 1)
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(sent[0])
            assert await read_frame(reader) == answers[0]
            writer.write(b"".join(sent[1:]))
            got = [await read_frame(reader) for _ in answers[1:]]
            writer.write_eof()
            assert await reader.read() == b""  # nothing more: one answer per call, then the end
            writer.close()
        finally:
            code, _, err = await stop_server(server)
        assert sorted(got) == sorted(answers[1:])
        assert code == 0, err

    run(body)


def test_the_client_talks_to_the_recorded_typescript_server_as_it_did():
    """The TS server's side, replayed to ``echo_client.py``: each request it sends is one the
    recording has (type and body byte for byte; its tags are its own business), answered with
    the TS server's recorded answer under that request's tag; the client prints every result
    and exits 0, as it did against the real server."""
    frames = SESSIONS["ts-server"]

    def without_tag(raw: bytes) -> bytes:
        return raw[:5] + raw[7:]

    recorded_answer: dict[bytes, bytes] = {}
    waiting: dict[bytes, bytes] = {}
    for direction, raw in frames[2:]:
        tag = raw[5:7]
        if direction == "C":
            waiting[tag] = without_tag(raw)
        else:
            recorded_answer[waiting.pop(tag)] = without_tag(raw)
    assert not waiting
    unexpected: list[bytes] = []

    async def replay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hello = Tframe.decode(await read_frame(reader))
        assert hello.tag == NOTAG and hello.msg.version == EchoHttp.VERSION
        writer.write(frames[1][1])  # the TS server's Rversion, as recorded
        while True:
            try:
                raw = await read_frame(reader)
            except asyncio.IncompleteReadError:
                break
            answer = recorded_answer.get(without_tag(raw))
            if answer is None:
                unexpected.append(raw)
                break
            writer.write(answer[:5] + raw[5:7] + answer[5:])
        writer.close()

    async def body() -> None:
        server = await asyncio.start_server(replay, "127.0.0.1", 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            code, lines, err = await run_client(f"127.0.0.1:{port}")
        assert unexpected == []
        assert code == 0, (lines, err)
        assert lines[1:] == EXPECTED_CLIENT_OUTPUT

    run(body)

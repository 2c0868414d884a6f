"""The tracing proxy (``jetwire.p9.proxy``, issue 13): the sans-I/O ``Tracer`` on the spec's
reference frames, then the proxy between jetwire's client and two servers (jetwire's own and
diod), with a recording relay on each side of it proving that every byte passes unchanged; a
malformed frame and a lying size through it; the command line under SIGTERM.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from attached import connect, tcp_address
from hypothesis import given
from hypothesis import strategies as st
from kernel_guest import boot, put_guest_test, reports
from peers import Peer

from jetwire.p9 import Client
from jetwire.p9 import constants as c
from jetwire.p9.localfs import LocalFilesystem
from jetwire.p9.messages import (
    Dirent,
    Qid,
    Rflush,
    Rframe,
    Rlerror,
    Rread,
    Rreaddir,
    Rversion,
    Rwalk,
    Tclunk,
    Tflush,
    Tframe,
    Tread,
    Tversion,
    Twalk,
)
from jetwire.p9.proxy import (
    REPLY,
    REQUEST,
    Proxy,
    Stopped,
    Traced,
    Tracer,
    explain_event,
    format_event,
    proxy,
)
from jetwire.p9.serving import serve

GUARD = 60.0
REPO = Path(__file__).resolve().parents[2]


def run(body: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(body(), GUARD))


class Clock:
    """A clock that moves only when told, so latencies in lines are exact."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


# r[9p2000l.examples]: the spec's reference frames, as the bytes a client and a server send
GOLDEN_REQUESTS = [
    ("15000000 64 ffff 00000100 0800 39503230 30302e4c", "-> Tversion tag=NOTAG msize=65536 version='9P2000.L'"),
    ("1f000000 68 0100 00000000 ffffffff 0400 726f6f74 0400 2f737276 00000000",
     "-> Tattach tag=1 fid=0 afid=NOFID uname='root' aname='/srv' n_uname=0"),
    ("17000000 6e 0200 00000000 01000000 0200 0100 61 0100 62", "-> Twalk tag=2 fid=0 newfid=1 wnames=['a', 'b']"),
    ("0f000000 0c 0300 01000000 00000000", "-> Tlopen tag=3 fid=1 flags=0x0"),
]
GOLDEN_REPLIES = [
    ("16000000 6f 0200 0100 80 00000000 2a00000000000000", "<- Rwalk tag=2 (2.5 ms) wqids=[Qid(dir path=0x2a v=0)]"),
    ("0b000000 07 0100 02000000", "<- Rlerror tag=1 (Tattach, 3.0 ms) ecode=2 (ENOENT)"),
]


def collect(lines: list[str]) -> Callable[[str], None]:
    """The proxy's output: each call is the lines one read brought, joined."""
    return lambda text: lines.extend(text.split("\n"))


def golden(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


def test_the_spec_reference_frames_one_line_each_paired_by_tag() -> None:
    # r[9p2000l.examples], r[9p2000l.frame.tag]: replies paired with their requests by tag
    clock = Clock()
    tracer = Tracer(clock=clock)
    stream = b"".join(golden(hexed) for hexed, _ in GOLDEN_REQUESTS)
    events = [event for byte in range(len(stream)) for event in tracer.feed(REQUEST, stream[byte:byte + 1])]
    assert [format_event(e) for e in events] == [line for _, line in GOLDEN_REQUESTS]
    assert [e.frame for e in events if isinstance(e, Traced)] == [golden(h) for h, _ in GOLDEN_REQUESTS]  # exact bytes
    assert tracer.msize == 65536 and tracer.version == "9P2000.L" and not tracer.negotiated
    clock.now = 0.0025
    replies = tracer.feed(REPLY, golden(GOLDEN_REPLIES[0][0]))
    clock.now = 0.003
    replies += tracer.feed(REPLY, golden(GOLDEN_REPLIES[1][0]))
    assert [format_event(e) for e in replies] == [line for _, line in GOLDEN_REPLIES]
    assert all(isinstance(e, Traced) and e.error is None for e in replies)
    assert isinstance(replies[0], Traced) and replies[0].request == Twalk(fid=0, newfid=1, wnames=["a", "b"])
    assert tracer.buffered == 0


def test_rread_and_rclunk_reference_frames() -> None:
    # r[9p2000l.examples]: Rread tag=4 "hello", Rclunk tag=5
    tracer = Tracer(clock=Clock())
    tracer.feed(REQUEST, Tframe(tag=4, msg=Tread(fid=1, offset=0, count=5)).encode())
    tracer.feed(REQUEST, Tframe(tag=5, msg=Tclunk(fid=1)).encode())
    events = tracer.feed(REPLY, golden("10000000 75 0400 05000000 68656c6c6f") + golden("07000000 79 0500"))
    assert [format_event(e) for e in events] == [
        "<- Rread tag=4 (0.0 ms) data=<5 bytes: 68 65 6c 6c 6f>",
        "<- Rclunk tag=5 (0.0 ms)",
    ]


def test_version_and_msize_are_remembered_and_a_frame_over_msize_is_flagged() -> None:
    # r[9p2000l.version.msize]: once negotiated, a frame over msize breaks the rules: said, and traced on
    tracer = Tracer(clock=Clock())
    tracer.feed(REQUEST, Tframe(tag=c.NOTAG, msg=Tversion(msize=65536, version="9P2000.L")).encode())
    tracer.feed(REPLY, Rframe(tag=c.NOTAG, msg=Rversion(msize=8192, version="9P2000.L")).encode())
    assert (tracer.msize, tracer.version, tracer.negotiated) == (8192, "9P2000.L", True)
    tracer.feed(REQUEST, Tframe(tag=1, msg=Tread(fid=1, offset=0, count=10000)).encode())
    big = Rframe(tag=1, msg=Rread(data=b"x" * 9000)).encode()
    (event,) = tracer.feed(REPLY, big)
    assert isinstance(event, Traced) and event.msg is None and event.error is not None
    assert "over the negotiated msize of 8192" in format_event(event)
    assert event.frame == big
    (after,) = tracer.feed(REPLY, Rframe(tag=7, msg=Rflush()).encode())
    assert format_event(after) == "<- Rflush tag=7 (no request has this tag)"
    # r[9p2000l.version.string]: a server answering "unknown" agrees to nothing
    tracer.feed(REQUEST, Tframe(tag=c.NOTAG, msg=Tversion(msize=65536, version="9P2000.u")).encode())
    tracer.feed(REPLY, Rframe(tag=c.NOTAG, msg=Rversion(msize=65536, version="unknown")).encode())
    assert (tracer.version, tracer.negotiated) == ("unknown", False)


def test_a_frame_that_does_not_decode_is_reported_with_offset_and_bytes_and_tracing_goes_on() -> None:
    # r[9p2000l.frame.unknown-type], r[9p2000l.frame.header]: the size is in bounds, so the frame
    # is skipped by it and the next decodes
    tracer = Tracer(clock=Clock())
    unknown = bytes.fromhex("0b000000 ff 0400 61626364".replace(" ", ""))
    left_over = Tframe(tag=5, msg=Tclunk(fid=9)).encode()[:-4] + b"\x00" * 6  # a Tclunk 2 bytes long
    left_over = (len(left_over)).to_bytes(4, "little") + left_over[4:]
    good = Tframe(tag=6, msg=Tclunk(fid=1)).encode()
    first, second, third = tracer.feed(REQUEST, unknown + left_over + good)
    assert isinstance(first, Traced) and first.error is not None and first.frame == unknown
    line = format_event(first)
    assert line.startswith("-> type 255 tag=4 UNDECODABLE (11 bytes): unknown message type 255")
    assert "at byte 4 [Tframe.type]; bytes there: ff 04 00 61 62 63 64" in line
    assert isinstance(second, Traced) and second.error is not None and second.error.offset == 11
    assert "left over" in format_event(second) and format_event(second).startswith("-> Tclunk tag=5 UNDECODABLE")
    assert format_event(third) == "-> Tclunk tag=6 fid=1"
    clock_reply = tracer.feed(REPLY, Rframe(tag=4, msg=Rlerror(ecode=c.EOPNOTSUPP)).encode())
    assert format_event(clock_reply[0]) == "<- Rlerror tag=4 (type 255, 0.0 ms) ecode=95 (EOPNOTSUPP)"


@pytest.mark.parametrize("size", [0, 6, 0xFFFFFFFF, 4096 + 1])
def test_a_size_out_of_bounds_stops_tracing_and_holds_nothing(size: int) -> None:
    # r[9p2000l.frame.header]: a size below 7 or over what the tracer holds cannot be skipped by
    tracer = Tracer(max_frame=4096, clock=Clock())
    tracer.feed(REQUEST, Tframe(tag=1, msg=Tclunk(fid=1)).encode()[:5])  # half a request, held
    events = tracer.feed(REPLY, size.to_bytes(4, "little") + b"\x6f\x01\x00" + b"z" * 20)
    assert len(events) == 1 and isinstance(events[0], Stopped)
    line = format_event(events[0])
    assert line.startswith("<- tracing stopped: Rframe.size: frame size")
    assert line.endswith(f"bytes at that frame: {size.to_bytes(4, 'little').hex(' ')} 6f 01 00 7a 7a 7a 7a 7a 7a 7a 7a 7a")
    assert tracer.stopped is not None and tracer.buffered == 0
    for _ in range(64):  # whatever comes after is not held: memory stays flat
        assert tracer.feed(REQUEST, b"\x00" * 65536) == [] and tracer.feed(REPLY, b"\xff" * 65536) == []
    assert tracer.buffered == 0


def test_a_partial_frame_is_held_only_up_to_its_size() -> None:
    tracer = Tracer(max_frame=4096, clock=Clock())
    frame = Rframe(tag=1, msg=Rread(data=b"d" * 4000)).encode()
    assert tracer.feed(REPLY, frame[:3000]) == [] and tracer.buffered == 3000
    (event,) = tracer.feed(REPLY, frame[3000:])
    assert isinstance(event, Traced) and event.frame == frame and tracer.buffered == 0


def test_flush_ends_the_flushed_request_and_tversion_ends_everything() -> None:
    # r[9p2000l.flush]: after its Rflush, the flushed tag's reply is not expected any more
    tracer = Tracer(clock=Clock())
    tracer.feed(REQUEST, Tframe(tag=1, msg=Tread(fid=1, offset=0, count=1)).encode())
    tracer.feed(REQUEST, Tframe(tag=2, msg=Tflush(oldtag=1)).encode())
    (flushed,) = tracer.feed(REPLY, Rframe(tag=2, msg=Rflush()).encode())
    assert format_event(flushed) == "<- Rflush tag=2 (0.0 ms)"
    (late,) = tracer.feed(REPLY, Rframe(tag=1, msg=Rread(data=b"")).encode())
    assert format_event(late) == "<- Rread tag=1 (no request has this tag) data=<0 bytes>"
    # r[9p2000l.version.first]: a Tversion resets the session, requests in flight included
    tracer.feed(REQUEST, Tframe(tag=3, msg=Tclunk(fid=1)).encode())
    tracer.feed(REQUEST, Tframe(tag=c.NOTAG, msg=Tversion(msize=8192, version="9P2000.L")).encode())
    (stale,) = tracer.feed(REPLY, Rframe(tag=3, msg=Rlerror(ecode=c.EBADF)).encode())
    assert "(no request has this tag)" in format_event(stale)


def test_long_values_are_cut_short_in_a_line() -> None:
    tracer = Tracer(clock=Clock())
    (event,) = tracer.feed(REPLY, Rframe(tag=9, msg=Rwalk(wqids=[Qid(type=0, version=1, path=n) for n in range(12)])).encode())
    line = format_event(event)
    assert line.count("Qid(file") == 8 and line.endswith(", … 4 more]")
    (data,) = tracer.feed(REPLY, Rframe(tag=9, msg=Rread(data=bytes(range(200)))).encode())
    assert format_event(data).endswith("data=<200 bytes: 00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f …>")


def test_rreaddir_shows_the_names_it_lists_with_their_offsets() -> None:
    # r[9p2000l.examples], r[9p2000l.readdir.dirent]: the spec's dirent, qid(file, v0, path 7) offset=1 DT_REG "x"
    dirent = golden("00 00000000 0700000000000000 0100000000000000 08 0100 78")
    tracer = Tracer(clock=Clock())
    (one,) = tracer.feed(REPLY, Rframe(tag=1, msg=Rreaddir(data=dirent)).encode())
    assert format_event(one) == "<- Rreaddir tag=1 (no request has this tag) data=<25 bytes, 1 entries: 'x'@1>"
    many = b"".join(Dirent(qid=Qid(0, 0, n), offset=n + 1, type=8, name=f"f{n}").encode() for n in range(12))
    (twelve,) = tracer.feed(REPLY, Rframe(tag=1, msg=Rreaddir(data=many)).encode())
    assert format_event(twelve).endswith("'f6'@7, 'f7'@8, … 4 more, the last 'f11'@12>")
    (empty,) = tracer.feed(REPLY, Rframe(tag=1, msg=Rreaddir(data=b"")).encode())
    assert format_event(empty).endswith("data=<0 bytes, 0 entries>")
    (cut,) = tracer.feed(REPLY, Rframe(tag=1, msg=Rreaddir(data=dirent + dirent[:10])).encode())
    assert format_event(cut).endswith("data=<35 bytes: 00 00 00 00 00 07 00 00 00 00 00 00 00 01 00 00 …> "
                                      "(no entry at byte 25: unexpected end of data: u64 needs 8 bytes, 5 left)")


def test_explain_gives_each_field_with_its_offset() -> None:
    tracer = Tracer(clock=Clock())
    (event,) = tracer.feed(REQUEST, golden(GOLDEN_REQUESTS[2][0]))
    assert isinstance(event, Traced)
    text = explain_event(event)
    assert text.split("\n")[0] == "Tframe: 23 bytes"
    assert "    17  01 00 61" in text and "Tframe.msg<Twalk>.wnames[0] = 'a'" in text
    assert "decoded:" not in text  # the line above it says that, without a megabyte of repr
    (bad,) = tracer.feed(REQUEST, bytes.fromhex("0b000000ff0400") + b"abcd")
    assert isinstance(bad, Traced) and "error: Tframe.type: unknown message type 255" in explain_event(bad)


@given(st.lists(st.integers(min_value=1, max_value=60), max_size=20))
def test_how_the_bytes_are_split_does_not_change_what_is_traced(cuts: list[int]) -> None:
    stream = b"".join(golden(hexed) for hexed, _ in GOLDEN_REQUESTS) + bytes.fromhex("0b000000ff0400") + b"abcd"
    whole = Tracer(clock=Clock()).feed(REQUEST, stream)
    tracer = Tracer(clock=Clock())
    pieces, start = [], 0
    for cut in cuts:
        pieces.append(stream[start:start + cut])
        start += cut
    pieces.append(stream[start:])
    split = [event for piece in pieces for event in tracer.feed(REQUEST, piece)]
    assert [format_event(e) for e in split] == [format_event(e) for e in whole]
    assert [e.frame for e in split if isinstance(e, Traced)] == [golden(h) for h, _ in GOLDEN_REQUESTS] + [
        stream[-11:]]


def test_max_frame_below_a_header_is_refused() -> None:
    with pytest.raises(ValueError, match="below the 7-byte header"):
        Tracer(max_frame=6)
    with pytest.raises(ValueError, match="names no host"):
        Proxy(":564")
    with pytest.raises(ValueError, match="below the 7-byte header"):
        Proxy("unix:/run/9p.sock", max_frame=0)


@pytest.mark.parametrize("argv", [["--to", "unix:/x.sock"], ["--listen", "unix:/x.sock", "--to", "nowhere"],
                                  ["--listen", "unix:/x.sock", "--to", "unix:/y.sock", "--max-frame", "3"]])
def test_a_bad_command_line_exits_with_status_2(argv: list[str]) -> None:
    from jetwire.p9.__main__ import main

    with pytest.raises(SystemExit) as exited:
        main(["proxy", *argv])
    assert exited.value.code == 2


# -- the proxy between real clients and servers ---------------------------------------------------

class Recorder:
    """A plain relay that keeps every byte each way, per connection: put on either side of the
    proxy, it shows what the client sent and what the server got."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.streams: list[dict[str, bytearray]] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> Recorder:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        record = {"up": bytearray(), "down": bytearray()}
        self.streams.append(record)
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)

        async def copy(source: asyncio.StreamReader, sink: asyncio.StreamWriter, into: bytearray) -> None:
            while data := await source.read(65536):
                into += data
                sink.write(data)
                await sink.drain()
            sink.close()

        await asyncio.gather(copy(reader, up_writer, record["up"]), copy(up_reader, writer, record["down"]),
                             return_exceptions=True)

    async def close(self) -> None:
        assert self.server is not None
        self.server.close()


@asynccontextmanager
async def chain(server_address: tuple[str, int], lines: list[str]) -> AsyncIterator[tuple[Recorder, Proxy, Recorder]]:
    """client → recorder → proxy → recorder → server."""
    behind = await Recorder(server_address).start()
    tracing = await proxy(f"127.0.0.1:{behind.port}", "127.0.0.1:0", output=collect(lines))
    before = await Recorder(tcp_address(tracing)).start()
    try:
        yield before, tracing, behind
    finally:
        await tracing.close()
        await before.close()
        await behind.close()


async def real_work(client: Client) -> None:
    """What a user does: files written and read back, a directory made and listed, a stat, a
    name that does not exist, a removal."""
    await client.mkdir("dir")
    await client.write_bytes("dir/hello.txt", b"hello through the proxy\n" * 5000)  # several Twrites
    assert await client.read_bytes("dir/hello.txt") == b"hello through the proxy\n" * 5000
    assert await client.listdir("dir") == ["hello.txt"]
    assert (await client.stat("dir/hello.txt")).st_size == 24 * 5000
    with pytest.raises(FileNotFoundError):
        await client.stat("dir/missing")
    await client.write_bytes("dir/gone.txt", b"x")
    await client.remove_path("dir/gone.txt")


async def settle(condition: Callable[[], bool]) -> None:
    """The proxy's own side closes after the client's: wait (bounded by GUARD) until it has."""
    while not condition():
        await asyncio.sleep(0.01)


def check_unchanged_and_traced(before: Recorder, behind: Recorder, lines: list[str]) -> None:
    assert len(before.streams) == len(behind.streams) == 1
    sent, got = before.streams[0], behind.streams[0]
    assert len(sent["up"]) > 120_000 and sent["up"] == got["up"]  # what the client sent is what the server got
    assert len(got["down"]) > 120_000 and got["down"] == sent["down"]  # and back
    frames = Tracer(clock=Clock())
    expected = [format_event(e) for e in frames.feed(REQUEST, bytes(sent["up"]))]
    replies = [format_event(e) for e in frames.feed(REPLY, bytes(sent["down"]))]
    assert all(line.startswith("[1] ") for line in lines)
    printed = [line[4:] for line in lines]
    assert sorted(p for p in printed if p.startswith("->")) == sorted(expected)  # one line per message
    assert len([p for p in printed if p.startswith("<-")]) == len(replies)
    assert not any("UNDECODABLE" in p or "no request" in p for p in printed)
    assert any(p.startswith("-> Tversion tag=NOTAG msize=") for p in printed)
    assert any(p.startswith("<- Rversion tag=NOTAG (") for p in printed)
    assert any(p.startswith("-> Twalk ") and "wnames=['dir', 'missing']" in p for p in printed)
    assert any(p.startswith("<- Rlerror ") and "(Twalk, " in p and "ecode=2 (ENOENT)" in p for p in printed)
    assert any(p.startswith("-> Twrite ") and "data=<" in p for p in printed)
    assert any(p.startswith("<- Rread ") and " ms) data=<" in p for p in printed)


def test_jetwire_client_through_the_proxy_to_jetwire_server(tmp_path: Path) -> None:
    export = tmp_path / "export"
    export.mkdir()
    lines: list[str] = []

    async def body() -> None:
        server = await serve(LocalFilesystem(str(export)), "127.0.0.1:0")
        try:
            async with chain(tcp_address(server), lines) as (before, tracing, behind):
                client = await Client.connect("127.0.0.1", before.port, timeout=10)
                try:
                    await real_work(client)
                finally:
                    await client.close()
                await settle(lambda: not tracing.connections)
                check_unchanged_and_traced(before, behind, lines)
        finally:
            await server.close()

    run(body)
    assert (export / "dir" / "hello.txt").read_bytes() == b"hello through the proxy\n" * 5000
    assert not (export / "dir" / "gone.txt").exists()


def test_jetwire_client_through_the_proxy_to_diod(diod: Peer) -> None:
    lines: list[str] = []

    async def body() -> None:
        async with chain(diod.address, lines) as (before, tracing, behind):
            client = await Client.connect("127.0.0.1", before.port, aname=diod.aname, uname=diod.uname,
                                          n_uname=diod.n_uname, timeout=10)
            try:
                await real_work(client)
            finally:
                await client.close()
            await settle(lambda: not tracing.connections)
            check_unchanged_and_traced(before, behind, lines)

    run(body)
    assert (diod.export / "dir" / "hello.txt").read_bytes() == b"hello through the proxy\n" * 5000
    assert any(line.startswith("[1] -> Tattach tag=0 fid=0 afid=NOFID uname='root' ")
               and line.endswith(f"aname='{diod.aname}' n_uname=0") for line in lines)


def test_connections_at_once_each_with_its_own_upstream_and_number(tmp_path: Path) -> None:
    export = tmp_path / "export"
    export.mkdir()
    lines: list[str] = []

    async def body() -> None:
        server = await serve(LocalFilesystem(str(export)), "127.0.0.1:0")
        try:
            tracing = await proxy(server.addresses[0], "127.0.0.1:0", output=collect(lines))
            clients = [await connect(tracing) for _ in range(3)]
            assert len(tracing.connections) == 3 and len(server.connections) == 3
            await asyncio.gather(*(client.write_bytes(f"f{n}", b"%d" % n) for n, client in enumerate(clients)))
            for client in clients:
                await client.close()
            await settle(lambda: not tracing.connections and not server.connections)
            await tracing.close()
        finally:
            await server.close()

    run(body)
    assert sorted((export / f"f{n}").read_text() for n in range(3)) == ["0", "1", "2"]
    for number in (1, 2, 3):
        mine = [line for line in lines if line.startswith(f"[{number}] ")]
        assert mine[0].startswith(f"[{number}] -> Tversion") and any("-> Tlcreate" in line for line in mine)


def test_malformed_frames_through_the_proxy(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # r[9p2000l.frame.unknown-type]: jetwire's server answers Rlerror and keeps the connection;
    # then a size over msize: the tracer stops, the bytes still go, and the server's close
    # closes the client's side
    export = tmp_path / "export"
    export.mkdir()
    lines: list[str] = []
    unknown = bytes.fromhex("0b000000 ff 0400 61626364".replace(" ", ""))
    lying = (0x7FFFFFFF).to_bytes(4, "little") + b"\x78\x05\x00" + b"junk" * 4

    async def body() -> None:
        server = await serve(LocalFilesystem(str(export)), "127.0.0.1:0", max_msize=8192)
        try:
            async with chain(tcp_address(server), lines) as (before, tracing, behind):
                reader, writer = await asyncio.open_connection("127.0.0.1", before.port)
                writer.write(golden(GOLDEN_REQUESTS[0][0]))
                rversion = await reader.readexactly(21)
                assert Rframe.decode(rversion).msg == Rversion(msize=8192, version="9P2000.L")
                writer.write(unknown)
                assert Rframe.decode(await reader.readexactly(11)).msg == Rlerror(ecode=c.EOPNOTSUPP)
                writer.write(lying)
                await writer.drain()
                assert await reader.read() == b""  # the server closed, and so did the proxy
                writer.close()
                await settle(lambda: not tracing.connections)
                sent, got = before.streams[0], behind.streams[0]
                assert bytes(got["up"]) == golden(GOLDEN_REQUESTS[0][0]) + unknown + lying == bytes(sent["up"])
                assert got["down"] == sent["down"] == rversion + Rframe(tag=4, msg=Rlerror(ecode=95)).encode()
        finally:
            await server.close()

    with caplog.at_level(logging.INFO, logger="jetwire.p9.proxy"):
        run(body)
    assert lines[0] == "[1] -> Tversion tag=NOTAG msize=65536 version='9P2000.L'"
    assert lines[1] == "[1] <- Rversion tag=NOTAG (" + lines[1].split("(", 1)[1]
    assert lines[1].endswith(" ms) msize=8192 version='9P2000.L'")
    assert lines[2].startswith("[1] -> type 255 tag=4 UNDECODABLE (11 bytes): unknown message type 255")
    assert lines[3].startswith("[1] <- Rlerror tag=4 (type 255, ") and lines[3].endswith("ecode=95 (EOPNOTSUPP)")
    assert lines[4] == ("[1] -> tracing stopped: Tframe.size: frame size 2147483647 is over the 4194328 bytes the "
                        "tracer holds: tracing stops here, forwarding goes on (at byte 0); bytes at that frame: "
                        "ff ff ff 7f 78 05 00 6a 75 6e 6b 6a 75 6e 6b 6a")
    assert len(lines) == 5
    logged = [r.getMessage() for r in caplog.records if r.name == "jetwire.p9.proxy"]
    assert any(m.startswith("proxy connection 1 from 127.0.0.1:") and ": open, to 127.0.0.1:" in m for m in logged)
    assert any(m.startswith("proxy connection 1 from ") and m.endswith(", 9P2000.L msize 8192, ended: server closed")
               for m in logged)


def test_a_failure_in_tracing_stops_tracing_but_not_forwarding(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    export = tmp_path / "export"
    export.mkdir()
    lines: list[str] = []

    def failing_output(text: str) -> None:
        lines.append(text)
        raise RuntimeError("the output broke")

    async def body() -> None:
        server = await serve(LocalFilesystem(str(export)), "127.0.0.1:0")
        try:
            async with await proxy(server.addresses[0], "127.0.0.1:0", output=failing_output) as tracing:
                client = await connect(tracing)
                await client.write_bytes("kept", b"forwarded all the same")
                assert await client.read_bytes("kept") == b"forwarded all the same"
                await client.close()
        finally:
            await server.close()

    with caplog.at_level(logging.INFO, logger="jetwire.p9.proxy"):
        run(body)
    assert lines == ["[1] -> Tversion tag=NOTAG msize=65560 version='9P2000.L'"]  # tried once, then no more
    assert any("tracing failed; it stops, forwarding goes on" in r.getMessage() for r in caplog.records)
    assert (export / "kept").read_bytes() == b"forwarded all the same"


def test_an_upstream_that_cannot_be_reached_closes_the_client(tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    sock = tmp_path / "nobody.sock"

    async def body() -> None:
        async with await proxy(f"unix:{sock}", f"unix:{tmp_path / 'proxy.sock'}", output=print) as tracing:
            reader, writer = await asyncio.open_unix_connection(str(tmp_path / "proxy.sock"))
            assert await reader.read() == b""  # (bytes sent before and never read would make it a reset)
            writer.close()
            await settle(lambda: not tracing.connections)

    with caplog.at_level(logging.INFO, logger="jetwire.p9.proxy"):
        run(body)
    assert any("0 bytes up, 0 down, no version agreed, ended: FileNotFoundError" in r.getMessage()
               for r in caplog.records)


def test_a_server_that_never_completes_the_handshake_closes_the_client(caplog: pytest.LogCaptureFixture) -> None:
    # a listener whose queue is full: Linux drops the next SYN, so that connect never completes
    async def body() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as full:
            full.bind(("127.0.0.1", 0))
            full.listen(0)
            port = full.getsockname()[1]
            _, queued = await asyncio.open_connection("127.0.0.1", port)  # the one the queue holds
            try:
                async with await proxy(f"127.0.0.1:{port}", "127.0.0.1:0", connect_timeout=0.2) as tracing:
                    host, proxy_port = tracing.addresses[0].rsplit(":", 1)
                    reader, writer = await asyncio.open_connection(host, int(proxy_port))
                    assert await reader.read() == b""  # closed, not left waiting for minutes
                    writer.close()
                    await settle(lambda: not tracing.connections)
            finally:
                queued.close()

    with caplog.at_level(logging.INFO, logger="jetwire.p9.proxy"):
        run(body)
    assert any("ended: no connection to the server within 0.2 s" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("transport", ["tcp", "unix"])
def test_a_client_that_shuts_down_its_writing_still_gets_its_replies(tmp_path: Path, transport: str,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    """A half-close: the client sends its requests, shuts down its writing and waits for the
    replies. The proxy passes the end of stream on to the server as a half-close of its own and
    forwards what the server answers after it; it closes the client's side once the server has
    ended too. The server here answers only once it has seen the client's end."""
    request = golden(GOLDEN_REQUESTS[0][0])
    reply = golden(GOLDEN_REPLIES[0][0])
    got_upstream = bytearray()

    async def answer_at_the_end(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        got_upstream.extend(await reader.read())  # to the end of the client's stream
        writer.write(reply)
        await writer.drain()
        writer.close()

    async def body() -> None:
        if transport == "tcp":
            upstream = await asyncio.start_server(answer_at_the_end, "127.0.0.1", 0)
            to = f"127.0.0.1:{upstream.sockets[0].getsockname()[1]}"
            listen = "127.0.0.1:0"
        else:
            upstream = await asyncio.start_unix_server(answer_at_the_end, str(tmp_path / "server.sock"))
            to, listen = f"unix:{tmp_path / 'server.sock'}", f"unix:{tmp_path / 'proxy.sock'}"
        try:
            async with await proxy(to, listen, output=lambda text: None) as tracing:
                if transport == "tcp":
                    host, port = tracing.addresses[0].rsplit(":", 1)
                    reader, writer = await asyncio.open_connection(host, int(port))
                else:
                    reader, writer = await asyncio.open_unix_connection(str(tmp_path / "proxy.sock"))
                writer.write(request)
                writer.write_eof()
                assert await reader.read() == reply  # then the end of the stream
                assert bytes(got_upstream) == request
                writer.close()
                await settle(lambda: not tracing.connections)
        finally:
            upstream.close()

    with caplog.at_level(logging.INFO, logger="jetwire.p9.proxy"):
        run(body)
    assert any(", ended: client closed" in r.getMessage() and " bytes up, " in r.getMessage() for r in caplog.records)


def test_proxy_command_line_traces_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    export = tmp_path / "export"
    export.mkdir()
    (export / "hello.txt").write_text("hi")
    served, proxied = tmp_path / "serve.sock", tmp_path / "proxy.sock"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    server = subprocess.Popen([sys.executable, "-m", "jetwire.p9", "serve", str(export), "--listen", f"unix:{served}"],
                              stderr=subprocess.PIPE, text=True, env=env)
    tracing = None
    try:
        assert server.stderr is not None
        while not server.stderr.readline().startswith("serving /"):
            assert server.poll() is None, "the server did not start"
        tracing = subprocess.Popen([sys.executable, "-m", "jetwire.p9", "proxy", "--listen", f"unix:{proxied}",
                                    "--listen", "127.0.0.1:0", "--to", f"unix:{served}", "-v"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        assert tracing.stderr is not None
        line = tracing.stderr.readline()
        while not line.startswith("proxying "):
            assert line, "the proxy said nothing"
            line = tracing.stderr.readline()
        assert f"unix:{proxied}" in line and f"to unix:{served}" in line
        out = subprocess.run([sys.executable, "-m", "jetwire.p9", "cat", f"unix:{proxied}", "hello.txt"], env=env,
                             capture_output=True, timeout=30)
        assert out.stdout == b"hi"
        tracing.send_signal(signal.SIGTERM)
        stdout, stderr = tracing.communicate(timeout=30)
        assert tracing.returncode == 0
    finally:
        for process in (tracing, server):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
    lines = stdout.splitlines()
    messages = [line for line in lines if not line.startswith("[1]     ")]
    assert messages[0].startswith("[1] -> Tversion tag=NOTAG msize=65560 version='9P2000.L'")
    assert any(m.startswith("[1] <- Rread tag=") and m.endswith("data=<2 bytes: 68 69>") for m in messages)
    assert any(m.startswith("[1] -> Tclunk ") for m in messages)
    assert "[1]     Tframe: 21 bytes" in lines  # -v: explain under each line
    assert "[1]          7  18 00 01 00                             Tframe.msg<Tversion>.msize = 65560" in lines
    assert stderr.count("proxy connection 1 from ") == 2  # opened, closed


def test_the_proxy_listens_where_asked_and_refuses_what_is_not_a_socket(tmp_path: Path) -> None:
    regular = tmp_path / "file"
    regular.write_text("")

    async def body() -> None:
        with pytest.raises(FileExistsError):
            await proxy("127.0.0.1:1", f"unix:{regular}")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            with pytest.raises(OSError):
                await proxy("127.0.0.1:1", f"127.0.0.1:{taken.getsockname()[1]}")

    run(body)
    assert regular.read_text() == ""


# -- the Linux kernel's client through the proxy ---------------------------------------------------

KERNEL_TEST = r"""#!/bin/sh
check() { if eval "$2"; then echo "@@ ok $1"; else echo "@@ FAIL $1"; fi; }
echo traced > traced.txt
check read-back '[ "$(cat traced.txt)" = traced ]'
mkdir made
echo x > made/f
check ls '[ "$(ls made)" = f ]'
"""


def test_the_kernel_mounts_through_the_proxy(v9fs_guest: Path, tmp_path: Path) -> None:
    # the guest of tests/p9/test_server_kernel.py (QEMU boots Debian's kernel; about 5 s a boot)
    export = tmp_path / "export"
    export.mkdir()
    put_guest_test(export, KERNEL_TEST)
    served, proxied = tmp_path / "served.sock", tmp_path / "proxied.sock"
    lines: list[str] = []

    async def body() -> str:
        server = await serve(LocalFilesystem(export), f"unix:{served}")
        try:
            async with await proxy(f"unix:{served}", f"unix:{proxied}", output=collect(lines)):
                return await boot(v9fs_guest, proxied, export)
        finally:
            await server.close()

    console = asyncio.run(body())
    said = reports(console)
    assert "@@ MOUNT OK" in said and "@@ UMOUNT OK" in said, console
    assert [r for r in said if r.startswith("@@ ok") or r.startswith("@@ FAIL")] == ["@@ ok read-back", "@@ ok ls"]
    assert (export / "traced.txt").read_text() == "traced\n" and (export / "made" / "f").read_text() == "x\n"
    assert lines[0] == "[1] -> Tversion tag=NOTAG msize=65536 version='9P2000.L'"  # the kernel's own proposal
    assert lines[1].startswith("[1] <- Rversion tag=NOTAG (") and lines[1].endswith("msize=65536 version='9P2000.L'")
    assert any(line.startswith("[1] -> Tattach ") and f"aname='{export}'" in line for line in lines)
    assert any(line.startswith("[1] -> Tlcreate ") and "name='traced.txt'" in line for line in lines)
    assert any(line.startswith("[1] -> Twrite ") and "data=<7 bytes: 74 72 61 63 65 64 0a>" in line for line in lines)
    assert any(line.startswith("[1] -> Tmkdir ") and "name='made'" in line and "mode=0o" in line for line in lines)
    assert any(line.startswith("[1] <- Rreaddir ") and "'f'@" in line for line in lines)
    assert all(line.startswith("[1] ") for line in lines)
    assert not [line for line in lines if "UNDECODABLE" in line or "no request" in line or "stopped" in line]

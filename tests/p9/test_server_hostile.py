"""Hostile clients against a real ``Server`` over TCP, with raw frames: each gets the spec's answer
or a clean close of its own connection, and the server keeps serving everyone else.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from attached import connect

from jetwire import FrameReader
from jetwire.p9 import (
    Rflush,
    Rframe,
    Rlerror,
    Rversion,
    Rwalk,
    Tattach,
    Tflush,
    Tframe,
    Tlopen,
    Tread,
    Tversion,
    Twalk,
)
from jetwire.p9 import constants as c
from jetwire.p9.localfs import LocalFilesystem
from jetwire.p9.serving import Server, serve

GUARD = 120.0


def run(body: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(body(), GUARD))


class Raw:
    """A client that writes whatever frames it likes and reads replies in order of arrival."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.frames: FrameReader[Rframe] = FrameReader(Rframe, max_size=1 << 21)

    @classmethod
    async def connect(cls, server: Server, receive_buffer: int | None = None) -> Raw:
        """``receive_buffer`` shrinks the socket's receive buffer (SO_RCVBUF), so that replies a
        client does not read fill it after a few frames whatever the host's TCP tuning."""
        host, port = server.addresses[0].rsplit(":", 1)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
        return cls(*await asyncio.open_connection(sock=sock))

    def send(self, *msgs: tuple[int, Any]) -> None:
        self.writer.write(b"".join(Tframe(tag=tag, msg=msg).encode() for tag, msg in msgs))

    async def replies(self, n: int) -> list[Any]:
        out: list[Any] = []
        while len(out) < n:
            frame = self.frames.next_frame()
            if frame is not None:
                out.append(frame)
                continue
            data = await self.reader.read(1 << 16)
            assert data, f"connection closed after {len(out)} of {n} replies"
            self.frames.feed(data)
        return out

    async def closed(self) -> bool:
        """True once the server has closed this connection (reads until the end)."""
        while await self.reader.read(1 << 16):
            pass
        return True

    async def start(self, msize: int = 65560) -> None:
        self.send((c.NOTAG, Tversion(msize=msize, version="9P2000.L")),
                  (1, Tattach(fid=0, afid=c.NOFID, uname="", aname="", n_uname=c.NONUNAME)))
        version, _ = await self.replies(2)
        assert isinstance(version.msg, Rversion)


async def still_serving(server: Server) -> None:
    async with await connect(server, timeout=30) as fs:
        assert "f" in await fs.listdir("")


def test_100000_fids_get_emfile_past_the_limit(tmp_path: Path) -> None:
    # r[9p2000l.server.limits]: EMFILE, every existing fid kept; r[9p2000l.server.fid.in-use]
    (tmp_path / "f").write_text("x")

    async def body() -> None:
        server = await serve(LocalFilesystem(tmp_path), "127.0.0.1:0", max_fids=256)
        try:
            raw = await Raw.connect(server)
            await raw.start()
            made = refused = 0
            for first in range(1, 100_001, 2000):
                batch = range(first, min(first + 2000, 100_001))
                raw.send(*((n % 60000 + 2, Twalk(fid=0, newfid=n, wnames=[])) for n in batch))
                for reply in await raw.replies(len(batch)):
                    if isinstance(reply.msg, Rwalk):
                        made += 1
                    else:
                        assert reply.msg == Rlerror(ecode=c.EMFILE)
                        refused += 1
            assert (made, refused) == (255, 100_000 - 255)  # fid 0 is the root
            raw.send((5, Twalk(fid=255, newfid=255, wnames=["f"])))  # an existing fid still works
            (reply,) = await raw.replies(1)
            assert isinstance(reply.msg, Rwalk) and len(reply.msg.wqids) == 1
            await still_serving(server)
        finally:
            await server.close()

    run(body)


def test_a_flood_of_tflush_is_answered(tmp_path: Path) -> None:
    # r[9p2000l.server.flush]: every Tflush gets Rflush, never Rlerror
    (tmp_path / "f").write_text("x")

    async def body() -> None:
        server = await serve(LocalFilesystem(tmp_path), "127.0.0.1:0")
        try:
            raw = await Raw.connect(server)
            await raw.start()
            raw.send(*((tag, Tflush(oldtag=(tag * 7) % 65535)) for tag in range(2, 20_002)))
            replies = await raw.replies(20_000)
            assert {type(r.msg) for r in replies} == {Rflush}
            assert sorted(r.tag for r in replies) == list(range(2, 20_002))
        finally:
            await server.close()

    run(body)


def test_a_malformed_frame_closes_only_that_connection(tmp_path: Path) -> None:
    # r[9p2000l.server.malformed], r[9p2000l.server.concurrency]
    (tmp_path / "f").write_text("x")

    async def body() -> None:
        server = await serve(LocalFilesystem(tmp_path), "127.0.0.1:0")
        try:
            for bad in (struct.pack("<I", 3), struct.pack("<IBH", 1 << 30, 118, 1),
                        struct.pack("<IBHI", 12, 120, 2, 0) + b"\x00"):
                raw = await Raw.connect(server)
                await raw.start(msize=8192)
                raw.writer.write(bad)
                assert await asyncio.wait_for(raw.closed(), 30)
            await still_serving(server)
        finally:
            await server.close()

    run(body)


def test_unknown_types_keep_the_connection(tmp_path: Path) -> None:
    # r[9p2000l.server.unknown-type]
    async def body() -> None:
        server = await serve(LocalFilesystem(tmp_path), "127.0.0.1:0")
        try:
            raw = await Raw.connect(server)
            await raw.start()
            raw.writer.write(struct.pack("<IBH", 11, 124, 5) + b"\x00" * 4)  # Tstat: 9P2000's
            raw.send((6, Twalk(fid=0, newfid=1, wnames=[])))
            first, second = await raw.replies(2)
            assert (first.tag, first.msg) == (5, Rlerror(ecode=c.EOPNOTSUPP))
            assert (second.tag, second.msg) == (6, Rwalk(wqids=[]))
        finally:
            await server.close()

    run(body)


def test_a_client_that_stops_reading_does_not_hold_up_the_others(tmp_path: Path) -> None:
    # r[9p2000l.server.limits]: its connection stops being read; r[9p2000l.server.concurrency]
    (tmp_path / "f").write_bytes(b"\xab" * (1 << 20))

    async def body() -> None:
        server = await serve(LocalFilesystem(tmp_path), "127.0.0.1:0", max_in_flight=8)
        try:
            raw = await Raw.connect(server, receive_buffer=4096)
            await raw.start()
            raw.send((2, Twalk(fid=0, newfid=1, wnames=["f"])))
            await raw.replies(1)
            raw.send((3, Tlopen(fid=1, flags=c.P9_RDONLY)))
            await raw.replies(1)
            # 64 MiB of replies asked for and never read
            for tag in range(4, 1028):
                raw.send((tag, Tread(fid=1, offset=0, count=65536)))
            await raw.writer.drain()
            (deaf,) = server.connections
            transport = deaf.writer.transport
            # until its replies have filled the socket and the write buffer, and it is not read
            while not (deaf.paused and transport.get_write_buffer_size() > transport.get_write_buffer_limits()[1]):
                await asyncio.sleep(0.01)
            assert len(deaf.tasks) <= 8 and deaf.session.requests < 1024 + 3  # it stopped before the end
            await still_serving(server)
        finally:
            await server.close()  # with the deaf client still connected: never held up by it
        raw.writer.close()

    run(body)

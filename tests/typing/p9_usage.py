"""The 9P2000.L client and messages as a user's code meets them (checked by ``mypy --strict``, not run)."""

from __future__ import annotations

from typing_extensions import assert_type

from jetwire import p9


async def read_a_file(address: str) -> bytes:
    async with await p9.connect(address, n_uname=0) as fs:
        assert_type(fs, p9.Client)
        assert_type(fs.msize, int)
        assert_type(await fs.listdir(""), list[str])
        stat = await fs.stat("hello.txt")
        assert_type(stat, p9.Stat)
        assert_type(stat.st_size, int)
        assert_type(stat.st_mtime, float)
        async with await fs.open("hello.txt") as file:
            assert_type(file, p9.File)
            assert_type(await file.read(10), bytes)
        await fs.read_bytes(7)  # type: ignore[arg-type]
        return await fs.read_bytes("hello.txt")


def messages() -> None:
    frame = p9.Tframe(tag=1, msg=p9.Tversion(msize=8192, version="9P2000.L"))
    data = frame.encode()
    assert_type(p9.Tframe.decode(data), p9.Tframe)
    reply = p9.Rframe.decode(data)
    if isinstance(reply.msg, p9.Rread):
        assert_type(reply.msg.data, bytes)
    assert_type(p9.Tread(fid=1, offset=0, count=4096).encode(), bytes)
    assert_type(p9.Rread.decode(b""), p9.Rread)
    p9.Tread(fid=1, offset=0)  # type: ignore[call-arg]
    p9.Tframe(tag=1, msg=p9.Rread(b""))  # type: ignore[arg-type]

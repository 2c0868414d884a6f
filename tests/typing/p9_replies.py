"""The reply type of each 9P call follows from its request's type (checked by ``mypy --strict``,
not run): ``_call`` is typed through the reply table, so a method reading a field its reply
lacks, or returning the wrong reply, fails the type check rather than a test."""

from __future__ import annotations

from typing_extensions import assert_type

from jetwire import p9


async def replies(client: p9.Client) -> None:
    assert_type(await client._call(p9.Twalk(fid=0, newfid=1, wnames=["a"])), p9.Rwalk)
    assert_type(await client._call(p9.Tread(fid=1, offset=0, count=4)), p9.Rread)
    assert_type(await client._call(p9.Tclunk(fid=1)), p9.Rclunk)
    assert_type((await client._call(p9.Tlopen(fid=1, flags=0))).iounit, int)
    await client._call(p9.Rwalk(wqids=[]))  # type: ignore[call-overload]
    (await client._call(p9.Tclunk(fid=1))).qid  # type: ignore[attr-defined]
    assert_type(await client.getattr(1), p9.Rgetattr)
    assert_type(await client.walk(0, ["a"]), tuple[int, list[p9.Qid]])

"""What fuzzing the 9P client against a hostile server found (``python -m fuzz --target
p9_client``), each the smallest input that showed it."""

from __future__ import annotations

import pytest
from test_hostile_server import Hostile, answer_all, run, serving

from jetwire.p9 import MAX_LISTING, Dirent, ListingTooLongError, ProtocolError, Qid, Rreaddir, Tframe, Treaddir
from jetwire.p9 import constants as c
from jetwire.p9.session import error_from_errno


@pytest.mark.parametrize("ecode", [0x80000000, 0xFFFFFFFF])
def test_an_rlerror_number_past_a_c_int_is_an_oserror(ecode: int) -> None:
    # an ecode is a u32; os.strerror raised OverflowError past a C int, out of the call
    error = error_from_errno(ecode, "Tgetattr", "a")
    assert type(error) is OSError and error.errno == ecode
    assert error.strerror == f"errno {ecode} (Tgetattr)" and error.filename == "a"


@pytest.mark.parametrize("name", ["../outside", "a/b", "", "a\0b"])
def test_a_listing_with_an_entry_that_is_no_name_is_a_protocol_error(name: str) -> None:
    # walk_tree and rmtree joined such names to the path: "a/b" reached another file than the
    # one listed, "../x" raised a bare ValueError (split_path refuses "..")
    dirent = Dirent(qid=Qid(type=c.P9_QTDIR, version=0, path=9), offset=1, type=c.DT_DIR, name=name).encode()

    def answer(server: Hostile, frame: Tframe) -> None:
        if isinstance(frame.msg, Treaddir):
            server.reply(frame, Rreaddir(data=dirent if frame.msg.offset == 0 else b""))
        else:
            answer_all(server, frame)

    async def body() -> None:
        async with serving(answer) as (_, client):
            with pytest.raises(ProtocolError, match="which is no file name"):
                await client.listdir("d")
            with pytest.raises(ProtocolError, match="which is no file name"):
                await client.rmtree("d")

    run(body)


def _endless_listing(server: Hostile, frame: Tframe) -> None:
    """A server whose listing never ends: each Rreaddir one new entry, at the next offset."""
    msg = frame.msg
    if isinstance(msg, Treaddir):
        entry = Dirent(qid=Qid(type=c.P9_QTFILE, version=0, path=msg.offset + 1), offset=msg.offset + 1,
                       type=c.DT_REG, name=f"f{msg.offset}")
        server.reply(frame, Rreaddir(data=entry.encode()))
    else:
        answer_all(server, frame)


def test_a_listing_without_end_stops_at_the_clients_bound() -> None:
    # r[9p2000l.readdir]: the client listed, and held the entries, for as long as a server gave
    # new offsets (python -m fuzz --target p9_client, its endless listings); it now stops past
    # max_listing with an error that says so, having asked for no more than that
    async def body() -> None:
        async with serving(_endless_listing) as (server, client):
            assert client.max_listing == MAX_LISTING
            client.max_listing = 50
            with pytest.raises(ListingTooLongError, match="more than 50 entries"):
                await client.listdir("d")
            assert sum(isinstance(frame.msg, Treaddir) for frame in server.requests) == 51
            with pytest.raises(ListingTooLongError):
                [item async for item in client.walk_tree("d")]
            assert not client.session.pending

    run(body)


def test_readdir_batches_lists_any_length_one_reply_at_a_time() -> None:
    # the way to list past max_listing: what is held is the caller's batch
    async def body() -> None:
        async with serving(_endless_listing) as (server, client):
            client.max_listing = 10
            fid, _ = await client.walk(client.root, ["d"])
            await client.lopen(fid, c.P9_RDONLY | c.P9_DIRECTORY)
            names = []
            async for batch in client.readdir_batches(fid):
                names.extend(entry.name for entry in batch)
                if len(names) == 100:
                    break
            assert names == [f"f{offset}" for offset in range(100)]
            assert sum(isinstance(frame.msg, Treaddir) for frame in server.requests) == 100

    run(body)

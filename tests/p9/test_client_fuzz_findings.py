"""What fuzzing the 9P client against a hostile server found (``python -m fuzz --target
p9_client``), each the smallest input that showed it."""

from __future__ import annotations

import pytest
from test_hostile_server import Hostile, answer_all, run, serving

from jetwire.p9 import Dirent, ProtocolError, Qid, Rreaddir, Tframe, Treaddir
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

"""What fuzzing the 9P file server found (``python -m fuzz --target p9_server``), each the
smallest input that showed it, against the sans-I/O session of ``test_server_session``."""

from __future__ import annotations

from test_server_session import Driver, error_of, frame, replies

from jetwire.p9 import Tattach, Tgetattr, Txattrwalk
from jetwire.p9 import constants as c


def test_an_attach_with_fid_and_afid_both_nofid_is_a_fid_in_use() -> None:
    # r[9p2000l.server.fid.in-use]: NOFID is never a fid; the session took the two equal
    # numbers for a walk in place and failed an assertion when the attach completed
    d = Driver().ready()
    events = d.send(frame(2, Tattach(fid=c.NOFID, afid=c.NOFID, uname="", aname="", n_uname=c.NONUNAME)))
    assert error_of(events) == c.EEXIST
    assert set(d.session.fids) == {0}


def test_an_attach_whose_afid_is_its_own_fid_is_a_fid_in_use() -> None:
    d = Driver().ready()
    assert error_of(d.send(frame(2, Tattach(fid=0, afid=0, uname="", aname="", n_uname=c.NONUNAME)))) == c.EEXIST
    (_, reply), = replies(d.send(frame(3, Tgetattr(fid=0, request_mask=1))))
    assert reply.size == len("/")


def test_an_xattrwalk_onto_its_own_fid_is_a_fid_in_use() -> None:
    # only Twalk moves a fid in place; Txattrwalk's newfid must be free like any made fid
    d = Driver().ready()
    assert error_of(d.send(frame(2, Txattrwalk(fid=0, newfid=0, name="")))) == c.EEXIST
    assert set(d.session.fids) == {0}

"""RemotePath's pure half (no request sent) against pathlib's: same answers, same errors."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

import pytest

from jetwire.p9 import RemotePath
from jetwire.p9.client import Stat

CLIENT: Any = object()  # pure methods never touch the client
PATHS = ["a", "a/b.txt", "a/b.tar.gz", "dir/.hidden", "x/y/z.", "noext"]


def remote(path: str) -> RemotePath:
    return RemotePath(CLIENT, path)


@pytest.mark.parametrize("path", PATHS)
def test_names_and_suffixes_are_pathlibs(path: str) -> None:
    p, q = remote(path), PurePosixPath(path)
    assert (p.name, p.suffix, p.suffixes, p.stem) == (q.name, q.suffix, q.suffixes, q.stem)
    assert str(p.with_name("n.md")) == str(q.with_name("n.md"))
    assert str(p.with_stem("s")) == str(q.with_stem("s"))
    assert str(p.with_suffix(".py")) == str(q.with_suffix(".py"))
    assert str(p.with_suffix("")) == str(q.with_suffix(""))
    assert [str(a) for a in p.parents] == [str(a) if str(a) != "." else "" for a in q.parents]
    assert p.match("*") == q.match("*") and p.match("a/*") == q.match("a/*")


@pytest.mark.parametrize(("call", "args"), [
    ("with_suffix", ("py",)), ("with_suffix", (".a/b",)), ("with_name", ("",)), ("with_name", ("a/b",)),
])
def test_bad_arguments_fail_as_pathlib(call: str, args: tuple[str, ...]) -> None:
    with pytest.raises(ValueError) as ours:
        getattr(remote("a/b.txt"), call)(*args)
    with pytest.raises(ValueError) as theirs:
        getattr(PurePosixPath("a/b.txt"), call)(*args)
    assert str(ours.value) == str(theirs.value)


def test_the_root_has_no_name() -> None:
    root = remote("")
    assert root.name == "" and root.parent == root and root.parents == ()
    with pytest.raises(ValueError, match="empty name"):
        root.with_suffix(".x")


def test_joining_and_relative_paths() -> None:
    base = remote("a")
    assert base / "b" / "c" == base.joinpath("b", "c") == base / remote("b/c") == remote("a/b/c")
    assert remote("a/b/c").relative_to("a") == PurePosixPath("b/c")
    assert remote("a/b/c").relative_to(remote("a/b")) == PurePosixPath("c")
    assert remote("a/b").is_relative_to("a") and not remote("ab").is_relative_to("a")
    with pytest.raises(ValueError):
        remote("a/b").relative_to("c")
    assert sorted([remote("b"), remote("a/z"), remote("a")]) == [remote("a"), remote("a/z"), remote("b")]
    with pytest.raises(ValueError, match=r"'\.\.' is not walked"):
        remote("a") / ".."


def test_stat_has_the_float_times_of_os_stat_result() -> None:
    fields = dict.fromkeys(Stat.__dataclass_fields__, 0)
    fields.update(st_atime_ns=1_500_000_000, st_mtime_ns=2_250_000_000, st_ctime_ns=3_000_000_001)
    st = Stat(**fields)
    assert (st.st_atime, st.st_mtime, st.st_ctime) == (1.5, 2.25, 3.000000001)

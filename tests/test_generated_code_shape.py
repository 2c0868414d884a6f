"""Tests that pin the shape of the generated code, because its shape is its speed.

The fast path is meant to sit next to hand-written ``struct`` code (docs/design.md, "The fast
path and the interpreter"): fixed-width fields fused into one ``Struct``, so a fixed-size
message is one ``pack`` and one ``unpack_from``, header included for frames; instances built
without ``__init__`` where that is exactly what ``__init__`` would do. No behaviour test sees
these: a codec that packed field by field would give the same bytes, only slower. They live in
this one file so that a change to code generation knows which tests describe its output, and
so that none of them is mistaken for a behaviour test and weakened.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import struct
import sys
import types
from collections.abc import Callable
from typing import Annotated, Any

import pytest

import jetwire as jw
from jetwire import Skip, p9, u8, u32, wireformat


def test_fixed_size_message_is_one_struct_call() -> None:
    @wireformat
    class Qid:
        type: u8
        version: u32
        path: jw.u64

    @wireformat
    class Rgetattr:
        valid: jw.u64
        qid: Qid
        mode: u32

    source = jw.Codec(Rgetattr).unit.source
    encode_body = source.split("def encode(_v):")[1].split("def ")[0]
    decode_body = source.split("def decode(_data):")[1].split("def ")[0]
    assert len(re.findall(r"_P_\w+\(", encode_body)) == 1  # a bound Struct.pack
    assert len(re.findall(r"_U_\w+\(", decode_body)) == 1  # a bound Struct.unpack_from
    assert jw.Codec(Rgetattr).fixed_size == 8 + 13 + 4


def test_decoding_skips_init_only_where_nothing_else_would_run() -> None:
    calls: list[str] = []

    @wireformat
    class Plain:
        a: u8
        seen: Annotated[list[int], Skip] = dataclasses.field(default_factory=list)
        later: Annotated[list[int], Skip] = dataclasses.field(default_factory=list, init=False)

    @wireformat
    class Checked:
        a: u8

        def __post_init__(self) -> None:
            calls.append("post_init")
            if self.a > 100:
                raise ValueError("a must be at most 100")

    @wireformat
    class OwnInit:
        a: u8

        def __init__(self, a: int) -> None:
            calls.append("init")
            self.a = a * 1

    first, second = Plain.decode(b"\x01"), Plain.decode(b"\x01")
    assert first == Plain(1) and first.seen is not second.seen and first.later == []
    assert "_new(" in jw.Codec(Plain).unit.source
    assert Checked.decode(b"\x05") == Checked(5) and calls == ["post_init", "post_init"]
    with pytest.raises(jw.DecodeError, match=r"refused the decoded fields.*at most 100") as info:
        Checked.decode(b"\xc8")
    assert info.value.path == "Checked"
    calls.clear()
    assert OwnInit.decode(b"\x07").a == 7 and calls == ["init"]
    assert "_new(" not in jw.Codec(Checked).unit.source + jw.Codec(OwnInit).unit.source


def struct_calls(run: Callable[[], Any]) -> list[str]:
    """The ``struct.Struct`` methods ``run`` calls (after a first call has compiled the codec)."""
    run()
    seen: list[str] = []

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "c_call" and isinstance(getattr(arg, "__self__", None), struct.Struct):
            seen.append(arg.__name__)

    sys.setprofile(profile)
    try:
        run()
    finally:
        sys.setprofile(None)
    return seen


FIXED_FRAMES = [
    p9.Tframe(tag=1, msg=p9.Tclunk(fid=7)),
    p9.Tframe(tag=2, msg=p9.Tread(fid=7, offset=4096, count=8192)),
    p9.Rframe(tag=3, msg=p9.Rgetattr(valid=0x7FF, qid=p9.Qid(0, 1, 2), mode=0o644, uid=0, gid=0, nlink=1, rdev=0,
                               size=5, blksize=4096, blocks=1, atime_sec=0, atime_nsec=0, mtime_sec=0,
                               mtime_nsec=0, ctime_sec=0, ctime_nsec=0, btime_sec=0, btime_nsec=0, gen=0,
                               data_version=0)),
]


@pytest.mark.parametrize("frame", FIXED_FRAMES, ids=lambda f: type(f.msg).__name__)
def test_a_fixed_size_frame_is_one_pack_and_one_unpack_header_included(frame: Any) -> None:
    data = frame.encode()
    assert struct_calls(frame.encode) == ["pack"]
    # a whole buffer: one exact unpack, which refuses any other length; at an offset, unpack_from
    assert struct_calls(lambda: type(frame).decode(data)) == ["unpack"]
    assert struct_calls(lambda: type(frame).decode_prefix(b"\0" + data, 1)) == ["unpack_from"]


def _statements(fn: Any) -> list[str]:
    """The statements of a generated function, after its decorator, def line and docstring."""
    lines = [line.strip() for line in inspect.getsource(fn).splitlines()]
    start = next(i for i, line in enumerate(lines) if line.startswith("def "))
    return lines[start + 2:]  # the docstring is one line


def test_a_frame_class_encode_is_one_dispatch_on_the_message_class() -> None:
    frame = p9.Tframe(tag=1, msg=p9.Tclunk(fid=7))
    frame.encode()  # first use puts the generated functions on the class
    # no check of the frame's class before the table: frame.encode() reaches this function
    # only from an instance of the frame class (or of a subclass)
    assert _statements(vars(p9.Tframe)["encode"])[:2] == [
        "try:", "return _FENC[(_m := _v.msg).__class__](_m, _v.tag)"]


def test_a_frame_class_decode_is_a_plain_function() -> None:
    p9.Tframe.decode(p9.Tframe(tag=1, msg=p9.Tclunk(fid=7)).encode())
    decode = vars(p9.Tframe)["decode"]
    # a staticmethod takes Python about twice as long to look up on the class
    assert isinstance(decode, types.FunctionType)
    assert _statements(decode)[0].startswith(
        "if _data.__class__ is not bytes or _data_on_instance is not _NOT_ON_INSTANCE:")


def test_a_whole_frame_decoder_keeps_no_offset() -> None:
    """A fixed-size frame decoded whole is one exact unpack: every byte is read, so no offset is
    stored after it (one store fewer per decode)."""
    unit = jw.Codec(p9.Rframe).unit
    unit.compile_all()
    wholes = re.findall(r"^def (_f\d+whole)\(.*?(?=^\S)", unit.source + "\n.", re.M | re.S)
    assert wholes, "no whole-frame decoder was generated"
    for match in re.finditer(r"^def _f\d+whole\(.*?(?=^\S)", unit.source + "\n.", re.M | re.S):
        if "= _X_" in match.group(0):  # the exact-unpack kind
            assert "_o =" not in match.group(0), match.group(0)

"""A frame class's own ``encode``/``decode`` methods behave, and fail, as the codec's entries do.
(Their shape, the few steps from ``frame.encode()`` to the packing code that makes them fast,
is pinned in tests/test_generated_code_shape.py.)"""

from __future__ import annotations

from typing import Annotated

import pytest

import jetwire as jw
from jetwire import Frame, Tagged, u16, u32, wireformat
from jetwire.runtime.frames import frame_encoder


@wireformat
class Ask:
    n: u32
    name: str


@wireformat
class Tell:
    code: u16


class Aframe(Frame[Annotated[Ask | Tell, Tagged({100: Ask, 101: Tell})]]):
    __slots__ = ()


class Bframe(Frame[Annotated[Ask | Tell, Tagged({100: Ask, 101: Tell})]]):
    __slots__ = ()


def _installed() -> None:
    """Puts the generated methods on Aframe (its first use), so the tests run them, not the stubs."""
    Aframe.decode(Aframe(1, Tell(2)).encode())


def test_frame_methods_encode_and_decode_as_the_codec_does() -> None:
    frame = Aframe(7, Ask(3, "x\u00e9"))
    data = frame.encode()
    assert data == jw.Codec(Aframe).encode(frame)
    assert Aframe.decode(data) == frame
    assert Aframe.decode(bytearray(data)) == frame
    assert Aframe.decode(memoryview(data)) == frame
    assert frame.decode(data) == frame  # the classmethod called on an instance, as Python allows


def test_frame_decode_refuses_a_second_argument() -> None:
    data = Aframe(7, Tell(1)).encode()
    with pytest.raises(TypeError, match="takes 1 positional argument but 2 were given"):
        Aframe.decode(data, 5)  # type: ignore[call-arg]


@pytest.mark.parametrize("second", [None, [10]], ids=["None", "a zero-width budget"])
def test_frame_decode_takes_no_hidden_second_argument(second: object) -> None:
    """Only an instance call passes a second argument: None (the old marker of "none given")
    and the codec's zero-width budget are refused like any other."""

    @wireformat
    class Empty:
        pass

    @wireformat
    class Many:
        items: list[Empty]

    class Zframe(Frame[Annotated[Many, Tagged({100: Many})]]):
        __slots__ = ()

    for cls, data in ((Aframe, Aframe(7, Tell(1)).encode()), (Zframe, Zframe(1, Many([Empty()])).encode())):
        cls.decode(data)  # the generated method in place of the stub
        with pytest.raises(TypeError, match="takes 1 positional argument but 2 were given"):
            cls.decode(data, second)  # type: ignore[call-arg]
        with pytest.raises(TypeError, match="takes 1 positional argument but 2 were given"):
            cls.decode(bytearray(data), second)  # type: ignore[call-arg]


def test_frame_methods_keep_every_error_of_the_interpreter() -> None:
    _installed()
    with pytest.raises(jw.EncodeError) as info:
        Aframe(70000, Tell(1)).encode()
    assert (info.value.path, info.value.offset) == ("Aframe.tag", 5)
    with pytest.raises(jw.EncodeError) as info:
        Aframe(1, Tell(-1)).encode()
    assert info.value.path == "Aframe.msg<Tell>.code"
    with pytest.raises(jw.EncodeError, match="expected Aframe, got Bframe"):
        jw.Codec(Aframe).encode(Bframe(1, Tell(1)))  # type: ignore[arg-type]  # the codec still checks the frame's class
    with pytest.raises(jw.DecodeError) as dinfo:
        Aframe.decode(Aframe(1, Tell(1)).encode() + b"\x00")
    assert dinfo.value.offset == 9
    with pytest.raises(jw.DecodeError):
        Aframe.decode(b"\x07\x00\x00\x00\x66\x01\x00")  # a type no message has


def test_a_subclass_of_a_frame_class_has_a_codec_of_its_own() -> None:
    """A subclass declared before or after its parent's first use encodes the same bytes and
    decodes to its own class, never to the parent's, and its errors name it."""

    class Early(Aframe):
        __slots__ = ()

    _installed()  # the parent's generated methods go on the parent

    class Late(Aframe):
        __slots__ = ()

    for sub in (Early, Late):
        frame = sub(4, Ask(1, "a"))
        data = frame.encode()
        assert data == Aframe(4, Ask(1, "a")).encode() == jw.Codec(sub).encode(frame)
        assert type(sub.decode(data)) is sub and sub.decode(data) == frame
        assert type(sub.decode_prefix(data)[0]) is sub
        with pytest.raises(jw.EncodeError) as info:
            sub(70000, Ask(1, "a")).encode()
        assert (info.value.path, info.value.offset) == (f"{sub.__name__}.tag", 5)
    assert type(Aframe.decode(Aframe(4, Ask(1, "a")).encode())) is Aframe


@wireformat
class Stamp:
    sec: jw.u64
    nsec: u32


class Sframe(Frame[Annotated[Stamp | Tell, Tagged({20: Stamp, 21: Tell})]]):
    __slots__ = ()


@pytest.mark.parametrize("cut", [1, 7, 18])
def test_a_fixed_size_frame_of_the_wrong_length_is_explained(cut: int) -> None:
    data = Sframe(3, Stamp(5, 6)).encode()
    with pytest.raises(jw.DecodeError) as short:
        Sframe.decode(data[:-cut])
    assert short.value.path.startswith("Sframe")
    with pytest.raises(jw.DecodeError, match=r"left over|size"):
        Sframe.decode(data + bytes(cut))
    wrong_size = (len(data) + cut).to_bytes(4, "little") + data[4:] + bytes(cut)
    with pytest.raises(jw.DecodeError):
        Sframe.decode(wrong_size[: len(data)])  # size field says more than the buffer holds


@wireformat
class Flagged:
    """Fixed-size (3 bytes whichever the option) yet encoded by branches: found by the random RPC services."""

    flag: jw.Option[None]
    n: u16


@wireformat
class OnlyFlag:
    flag: jw.Option[None]


class Fixedframe(Frame[Annotated[Flagged | OnlyFlag, Tagged({1: Flagged, 2: OnlyFlag})]]):
    __slots__ = ()


@pytest.mark.parametrize("frame", [
    Fixedframe(9, Flagged(None, 5)), Fixedframe(9, Flagged(jw.Some(None), 5)),
    Fixedframe(9, OnlyFlag(None)), Fixedframe(9, OnlyFlag(jw.Some(None))),
])
def test_a_fixed_size_message_encoded_by_branches_keeps_its_header(frame: Fixedframe) -> None:
    """The generated encoder held the header back to put it in front of the body once the size
    was counted, but a fixed size is never counted: the frame came out as its body alone."""
    data = frame.encode()
    assert data == jw.Codec(Fixedframe).encode(frame)
    assert len(data) == 7 + (3 if isinstance(frame.msg, Flagged) else 1)
    assert data[:7] == bytes([len(data), 0, 0, 0, 1 if isinstance(frame.msg, Flagged) else 2, 9, 0])
    assert Fixedframe.decode(data) == frame


@pytest.mark.parametrize("tag, msg", [
    (7, Ask(3, "x\u00e9")), (0, Tell(0)), (0xFFFF, Tell(0xFFFF)),  # the plain cases
    (70000, Tell(1)), (-1, Ask(1, "a")), (1, Tell(-1)), (1, Stamp(1, 2)), (1, "not a message"),  # the errors
])
def test_frame_encoder_gives_what_the_frame_encodes_errors_included(tag: int, msg: object) -> None:
    """``frame_encoder(Aframe)(tag, msg)`` skips the frame object the RPC sessions used to build
    per call: the same bytes, and the same errors with the same paths and offsets."""
    encode = frame_encoder(Aframe)
    try:
        expected: bytes | jw.EncodeError = Aframe(tag, msg).encode()  # type: ignore[arg-type]
    except jw.EncodeError as exc:
        expected = exc
    if isinstance(expected, bytes):
        assert encode(tag, msg) == expected  # type: ignore[arg-type]
        return
    with pytest.raises(jw.EncodeError) as info:
        encode(tag, msg)  # type: ignore[arg-type]
    assert (type(info.value), info.value.path, info.value.offset, info.value.reason) == (
        type(expected), expected.path, expected.offset, expected.reason)


def test_frame_encoder_refuses_what_is_not_a_frame_class() -> None:
    with pytest.raises(jw.SchemaError, match="not a frame class"):
        frame_encoder(Ask)  # type: ignore[arg-type]

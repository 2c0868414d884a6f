"""Values that are wrong, or that fail on their own: every one is an EncodeError naming the
field (never an OverflowError, a ValueError from the value's own methods, a TypeError about
'<='), on the fast path and in the interpreter alike; and what the decoders, the frame reader
and the stream readers take as bytes."""

from __future__ import annotations

import array
import datetime
import decimal
import enum
import io
from typing import Annotated, Any, Optional

import pytest

import jetwire
from jetwire import Codec, EncodeError, Frame, Tagged, f32, f64, u8, u16, u32, u64, wireformat
from jetwire.compiler.interpret import encode_checked

BIG = 10**400  # past float's range: float(BIG) raises OverflowError


def _both_refuse(value: Any, tp: Any, path: str, reason: str) -> EncodeError:
    """The fast path (which hands over to the interpreter) and the interpreter alone."""
    node = Codec(tp).node
    for interpreter_only in (False, True):
        with pytest.raises(EncodeError) as caught:
            if interpreter_only:
                encode_checked(node, value, node.label)
            else:
                jetwire.encode(value, tp)
        assert caught.value.path == path
        assert reason in caught.value.reason
    return caught.value


@wireformat
class Reading:
    when: datetime.datetime
    level: f64
    ratio: f32
    samples: list[f64]
    flag: bool


def _reading(**changes: Any) -> Reading:
    fields: dict[str, Any] = {
        "when": datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc),
        "level": 1.0, "ratio": 0.5, "samples": [], "flag": True,
    }
    fields.update(changes)
    return Reading(**fields)


# Numbers past a width: too large, never OverflowError


@pytest.mark.parametrize(
    ("value", "tp", "path"),
    [
        (BIG, f64, "f64"),
        (BIG, f32, "f32"),
        (1e300, f32, "f32"),
        ([1.0, BIG], list[f64], "list[f64][1]"),
        ((BIG,), tuple[f64], "tuple[f64][0]"),
        ({1.0, BIG}, set[f64], "set[f64][0]"),
        ({BIG: 1}, dict[f64, u8], "dict[f64, u8][0].key"),
        (BIG, Optional[f64], "Optional[f64]"),
    ],
)
def test_numbers_too_large_for_floats(value: Any, tp: Any, path: str) -> None:
    _both_refuse(value, tp, path, "too large for f")


def test_numbers_too_large_in_struct_fields() -> None:
    _both_refuse(_reading(level=BIG), Reading, "Reading.level", "too large for f64")
    _both_refuse(_reading(ratio=1e300), Reading, "Reading.ratio", "too large for f32")
    _both_refuse(_reading(samples=[BIG]), Reading, "Reading.samples[0]", "too large for f64")


def test_integer_siblings() -> None:
    _both_refuse(2**1000, u64, "u64", "an int of 1001 bits is out of range for u64")
    _both_refuse(1e300, u64, "u64", "expected an int")
    _both_refuse(float("inf"), u8, "u8", "expected an int")


def test_datetimes_outside_the_wire_range() -> None:
    before = datetime.datetime(1, 1, 1, tzinfo=datetime.timezone(datetime.timedelta(hours=-23)))
    _both_refuse(_reading(when=before), Reading, "Reading.when", "before the Unix epoch")
    naive = datetime.datetime(2020, 1, 1)
    _both_refuse(_reading(when=naive), Reading, "Reading.when", "without a timezone")


# bool: True, False, 0 and 1, not 1.0


@pytest.mark.parametrize("value", [1.0, 0.0, decimal.Decimal(1), 2, -1, "1", None])
def test_bool_refuses_what_only_equals_0_or_1(value: Any) -> None:
    _both_refuse(value, bool, "bool", "expected a bool")
    _both_refuse(_reading(flag=value), Reading, "Reading.flag", "expected a bool")
    with pytest.raises(jetwire.ConvertError, match="expected a bool"):
        jetwire.to_builtins(value, bool)


class _One:
    def __index__(self) -> int:
        return 1


@pytest.mark.parametrize(("value", "byte"), [(True, 1), (False, 0), (1, 1), (0, 0), (_One(), 1)])
def test_bool_takes_bools_and_ints_0_and_1(value: Any, byte: int) -> None:
    assert jetwire.encode(value, bool) == bytes([byte])
    assert encode_checked(Codec(bool).node, value, "bool") == bytes([byte])
    assert jetwire.encode([value, value], list[bool]) == b"\x02\x00" + bytes([byte]) * 2


# A value whose own method raises: an EncodeError at its path, the exception as its cause


class _BadIndex:
    def __index__(self) -> int:
        raise ValueError("no index today")


class _BadLen(list[int]):
    def __len__(self) -> int:
        raise ValueError("no len today")


class _BadIter(list[int]):
    def __iter__(self) -> Any:
        raise ValueError("no iter today")


class _BadHash:
    def __hash__(self) -> int:
        raise ValueError("no hash today")


class _BadOrder:
    def __init__(self, n: int) -> None:
        self.n = n

    def __index__(self) -> int:
        return self.n

    def __lt__(self, other: object) -> bool:
        raise ValueError("no order today")


class Color(enum.Enum):
    RED = 1


@wireformat
class Counts:
    first: u8
    rest: list[u16]


@pytest.mark.parametrize(
    ("value", "tp", "path", "message"),
    [
        (_BadIndex(), u8, "u8", "no index today"),
        (Counts(_BadIndex(), []), Counts,  # type: ignore[arg-type]
         "Counts.first", "no index today"),
        (Counts(1, [2, _BadIndex()]), Counts,  # type: ignore[list-item]
         "Counts.rest[1]", "no index today"),
        (Counts(1, _BadLen([1])), Counts, "Counts.rest", "no len today"),
        (Counts(1, _BadIter([1])), Counts, "Counts.rest", "no iter today"),
        (_BadHash(), Color, "Color", "no hash today"),
        ({_BadOrder(1), _BadOrder(2)}, set[u8], "set[u8]", "no order today"),
    ],
)
def test_a_value_whose_method_raises(value: Any, tp: Any, path: str, message: str) -> None:
    error = _both_refuse(value, tp, path, message)
    assert isinstance(error.__cause__, ValueError)
    assert str(error.__cause__) == message


# decode_prefix's offset


@pytest.mark.parametrize("offset", ["1", 1.0, True, None])
def test_decode_prefix_offset_of_the_wrong_type(offset: Any) -> None:
    for decode_prefix in (Codec(u8).decode_prefix, Counts.decode_prefix):
        with pytest.raises(TypeError, match=f"offset is an int, not {type(offset).__name__}"):
            decode_prefix(b"\x01\x00\x00", offset)


@pytest.mark.parametrize("offset", [-1, 4, 2**70])
def test_decode_prefix_offset_outside_the_data(offset: int) -> None:
    with pytest.raises(ValueError, match=f"offset {offset} is outside the 3 bytes given"):
        Codec(u8).decode_prefix(b"\x01\x00\x00", offset)


def test_decode_prefix_offset_by_index() -> None:
    class Two:
        def __index__(self) -> int:
            return 2

    assert Codec(u8).decode_prefix(b"\x01\x00\x07", Two()) == (7, 3)  # type: ignore[arg-type]


# Buffers: any object with the buffer protocol is its raw bytes


def test_decode_takes_any_buffer() -> None:
    assert jetwire.decode(list[u16], array.array("B", [1, 0, 5, 0])) == [5]  # type: ignore[call-overload]
    assert Codec(u16).decode(array.array("H", [0x0102]).tobytes()) == 0x0102
    native = array.array("H", [0x0102])
    assert Codec(u16).decode(native) == int.from_bytes(native.tobytes(), "little")  # type: ignore[arg-type]
    assert Counts.decode_prefix(array.array("B", [9, 0, 0, 1]), 0) == (Counts(9, []), 3)  # type: ignore[arg-type]


@pytest.mark.parametrize("data", ["\x01", None, [1], 1])
def test_decode_refuses_what_is_not_a_buffer(data: Any) -> None:
    with pytest.raises(TypeError, match=f"expected bytes or another buffer .*got {type(data).__name__}"):
        jetwire.decode(u8, data)
    with pytest.raises(TypeError, match="expected bytes or another buffer"):
        Counts.decode(data)


@wireformat
class Ping:
    n: u32


@wireformat
class Pong:
    text: str


class Pframe(Frame[Annotated[Ping | Pong, Tagged({100: Ping, 101: Pong})]]):
    pass


def test_frame_reader_counts_bytes_of_any_buffer() -> None:
    data = Pframe(1, Ping(0x01020304)).encode() + Pframe(2, Pong("hi")).encode()
    assert len(data) % 2 == 0
    reader = jetwire.FrameReader(Pframe)
    reader.feed(array.array("H", data))  # type: ignore[arg-type]  # 2-byte items: counted as bytes
    reader.feed(bytearray())
    assert reader.buffered == len(data)
    assert reader.next_frame() == Pframe(1, Ping(0x01020304))
    assert reader.next_frame() == Pframe(2, Pong("hi"))
    assert reader.next_frame() is None


@pytest.mark.parametrize("data", ["abc", 5, None])
def test_frame_reader_refuses_what_is_not_a_buffer(data: Any) -> None:
    reader = jetwire.FrameReader(Pframe)
    with pytest.raises(TypeError, match=f"feed\\(\\)'s argument gave {type(data).__name__}, not bytes"):
        reader.feed(data)
    assert reader.buffered == 0


def test_read_value_from_a_text_file_says_so() -> None:
    with pytest.raises(TypeError, match=r"gave str, not bytes .*text mode"):
        jetwire.read_value(u16, io.StringIO("ab"))  # type: ignore[call-overload]

    class TextPipe:
        def read(self, n: int) -> str:
            return "ab"

    with pytest.raises(TypeError, match="gave str, not bytes"):
        jetwire.read_value(u16, TextPipe())  # type: ignore[call-overload]


def test_read_value_takes_any_buffer_a_file_gives() -> None:
    class ArrayPipe:
        def __init__(self) -> None:
            self.left = [array.array("B", b"\x01"), array.array("B", b"\x02")]

        def read(self, n: int) -> Any:
            return self.left.pop(0) if self.left else b""

    assert jetwire.read_value(u16, ArrayPipe()) == 0x0201  # type: ignore[call-overload]

"""Known-answer and rejection tests for the JetStream wire format spec (../shared/spec/wireformat.md).

Every golden byte string below was worked out by hand from the spec text (little-endian integers,
u16 string/vec prefixes, u32 Data prefix, u8 option/enum tags, ...). None of them is computed
with jetwire or ``struct``. Each test names the spec rule(s) it proves as ``r[...]``.
"""

import datetime
import enum
import ipaddress
import math
from typing import Annotated, Optional

import pytest

import jetwire as jw

H = bytes.fromhex  # bytes.fromhex ignores spaces, so goldens can be grouped by field
UTC = datetime.timezone.utc


def roundtrip(value, tp, golden, decoded=None):
    """encode gives ``golden``; decode of ``golden`` gives the value; byte_size is its length;
    decode_prefix finds the value between foreign bytes and ends right after it."""
    expected = value if decoded is None else decoded
    assert jw.encode(value, tp) == golden
    assert jw.byte_size(value, tp) == len(golden)
    got = jw.decode(tp, golden)
    assert got == expected
    assert type(got) is type(expected)
    framed = b"\xaa\xbb" + golden + b"\xcc"
    assert jw.decode_prefix(tp, framed, 2) == (expected, 2 + len(golden))
    return got


def decode_error(tp, data):
    with pytest.raises(jw.DecodeError) as info:
        jw.decode(tp, data)
    return info.value


def encode_error(value, tp=None):
    with pytest.raises(jw.EncodeError) as info:
        jw.encode(value, tp)
    return info.value


# --------------------------------------------------------------------------------------------
# Declarations used by the tests
# --------------------------------------------------------------------------------------------


@jw.wireformat
class Point:
    x: jw.u16
    y: jw.i32
    label: str
    tags: list[jw.u8]


@jw.wireformat
class Reordered:
    """Same fields as a prefix of Point, declared in the other order."""

    y: jw.i32
    x: jw.u16


@jw.wireformat
class Twalk:
    fid: jw.u32
    wnames: list[str]


@jw.wireformat
class Flags:
    id: jw.u16
    on: bool


@jw.wireformat
class Opt:
    a: jw.u8
    b: Optional[jw.u16]


@jw.wireformat
class Packet:
    kind: jw.u8
    payload: bytes


@jw.wireformat
class Stamp:
    seq: jw.u8
    at: datetime.datetime


@jw.wireformat
class Link:
    id: jw.u8
    url: jw.Url


@jw.wireformat
class Peer:
    ip: jw.IpAddr
    sock: jw.SocketAddr


@jw.wireformat
class WithUnit:
    a: jw.u8
    nothing: None
    b: jw.u8


@jw.wireenum
class Shape:
    class Empty:
        pass

    class Circle:
        radius: jw.u32

    class Rect:
        w: jw.u16
        h: jw.u16

    class Toggle:
        on: bool


class Color(enum.Enum):
    RED = 10
    GREEN = "g"
    BLUE = 0


@jw.wireformat
class Drawing:
    id: jw.u16
    shape: Shape
    color: Color


@jw.wireformat
class Tree:
    """Recursive: upstream's ``Vec<Box<Tree>>``-style self reference."""

    value: jw.u8
    children: "list[Tree]"


@jw.wireenum
class Expr:
    """Recursive enum: upstream's ``Add(Box<Expr>, Box<Expr>)``."""

    class Lit:
        value: jw.u8

    class Add:
        left: "Expr"
        right: "Expr"


class Doubler:
    """A custom codec (upstream ``with(Codec)``): one byte holding twice the value."""

    @staticmethod
    def byte_size(value):
        return 1

    @staticmethod
    def encode(value, writer):
        writer.write(bytes([value * 2]))

    @staticmethod
    def decode(reader):
        return reader.read(1)[0] // 2


@jw.wireformat
class WithAttrs:
    a: jw.u8
    b: Annotated[int, jw.With(Doubler)]
    cache: Annotated[str, jw.Skip] = "default"


@jw.wireformat
class LevelHolder:
    level: Annotated[jw.Level, jw.With(jw.LevelCodec)]


# 9P2000.L messages, declared with jetwire (size[4] type[1] tag[2] ...).
@jw.wireformat
class Tversion:
    size: jw.u32
    type: jw.u8
    tag: jw.u16
    msize: jw.u32
    version: str


@jw.wireformat
class Twalk9p:
    size: jw.u32
    type: jw.u8
    tag: jw.u16
    fid: jw.u32
    newfid: jw.u32
    wnames: list[str]


@jw.wireformat
class Rread9p:
    size: jw.u32
    type: jw.u8
    tag: jw.u16
    data: bytes


# --------------------------------------------------------------------------------------------
# General rules
# --------------------------------------------------------------------------------------------


def test_9p_compat_tversion_twalk_rread():
    """r[jetstream.wireformat.9p-compat]: 9P2000.L messages are LE integers, u16-prefixed
    strings, u16-counted repeats and u32-counted data; these are the well-known 9P bytes."""
    # Tversion tag=NOTAG msize=8192 version="9P2000.L": size 21, type 100.
    tv = Tversion(size=21, type=100, tag=0xFFFF, msize=8192, version="9P2000.L")
    golden = H("15000000 64 ffff 00200000 0800 3950323030302e4c")
    assert tv.encode() == golden
    assert len(golden) == 21
    assert Tversion.decode(golden) == tv
    # Twalk tag=1 fid=1 newfid=2 wnames=["usr", "bin"]: 4+1+2+4+4+2+5+5 = 27 bytes, type 110.
    tw = Twalk9p(size=27, type=110, tag=1, fid=1, newfid=2, wnames=["usr", "bin"])
    golden = H("1b000000 6e 0100 01000000 02000000 0200 0300 757372 0300 62696e")
    assert tw.encode() == golden
    assert tw.byte_size() == 27
    assert Twalk9p.decode(golden) == tw
    # Rread tag=1 data[count]="hi": count is a u32.
    rr = Rread9p(size=13, type=117, tag=1, data=b"hi")
    golden = H("0d000000 75 0100 02000000 6869")
    assert rr.encode() == golden
    assert Rread9p.decode(golden) == rr


def test_trait_encode_decode_byte_size():
    """r[jetstream.wireformat.trait]: every wire type offers byte_size, encode and decode;
    @wireformat classes get them as methods that agree with the module functions."""
    p = Point(x=1, y=-2, label="p", tags=[9])
    golden = H("0100 feffffff 0100 70 0100 09")
    assert p.encode() == golden == jw.encode(p) == jw.encode(p, Point)
    assert p.byte_size() == len(golden) == jw.byte_size(p)
    assert Point.decode(golden) == p == jw.decode(Point, golden)
    assert Point.decode_prefix(golden + b"\x99") == (p, len(golden))
    assert Point.decode_prefix(b"\x99" + golden, 1) == (p, 1 + len(golden))
    assert Point.decode(bytearray(golden)) == p
    assert Point.decode(memoryview(golden)) == p
    for value, tp in [(7, jw.u8), ("x", str), (b"x", bytes), (None, None), ([1], list[jw.u16])]:
        data = jw.encode(value, tp)
        assert jw.byte_size(value, tp) == len(data)
        assert jw.decode(tp, data) == value


def test_byte_order_little_endian_everywhere():
    """r[jetstream.wireformat.byte-order]: integers, floats and every length prefix are LE."""
    assert jw.encode(0x0102, jw.u16) == H("0201")
    assert jw.encode(0x01020304, jw.u32) == H("04030201")
    assert jw.encode(0x0102030405060708, jw.i64) == H("0807060504030201")
    assert jw.encode(1.0, jw.f32) == H("0000803f")
    # A 258-byte string: u16 prefix 0x0102 written 02 01.
    s = "a" * 258
    assert jw.encode(s, str)[:2] == H("0201")
    # 258 elements: count 0x0102 written 02 01.
    assert jw.encode([0] * 258, list[jw.u8])[:2] == H("0201")
    # Data of 0x010203 bytes: u32 length written 03 02 01 00.
    data = bytes(0x010203)
    assert jw.encode(data, bytes)[:4] == H("03020100")
    assert jw.decode(bytes, H("03020100") + data) == data


# --------------------------------------------------------------------------------------------
# Primitive types
# --------------------------------------------------------------------------------------------

U8_CASES = [(0, "00"), (1, "01"), (0x7F, "7f"), (0x80, "80"), (255, "ff")]
U16_CASES = [(0, "0000"), (1, "0100"), (0x1234, "3412"), (0x8000, "0080"), (65535, "ffff")]
U32_CASES = [(0, "00000000"), (0x12345678, "78563412"), (0x80000000, "00000080"), (4294967295, "ffffffff")]
U64_CASES = [
    (0, "0000000000000000"),
    (0x0102030405060708, "0807060504030201"),
    (2**63, "0000000000000080"),
    (2**64 - 1, "ffffffffffffffff"),
]
U128_CASES = [
    (0, "00000000000000000000000000000000"),
    (1, "01000000000000000000000000000000"),
    (0x0102030405060708090A0B0C0D0E0F10, "100f0e0d0c0b0a090807060504030201"),
    (2**127, "00000000000000000000000000000080"),
    (2**128 - 1, "ffffffffffffffffffffffffffffffff"),
]
I16_CASES = [(0, "0000"), (258, "0201"), (-1, "ffff"), (-2, "feff"), (-32768, "0080"), (32767, "ff7f")]
I32_CASES = [(0, "00000000"), (-1, "ffffffff"), (-100, "9cffffff"), (-(2**31), "00000080"), (2**31 - 1, "ffffff7f")]
I64_CASES = [
    (0, "0000000000000000"),
    (-1, "ffffffffffffffff"),
    (-2, "feffffffffffffff"),
    (-(2**63), "0000000000000080"),
    (2**63 - 1, "ffffffffffffff7f"),
]
I128_CASES = [
    (0, "00000000000000000000000000000000"),
    (-1, "ffffffffffffffffffffffffffffffff"),
    (-256, "00ffffffffffffffffffffffffffffff"),
    (-(2**127), "00000000000000000000000000000080"),
    (2**127 - 1, "ffffffffffffffffffffffffffffff7f"),
]


def _int_params(tp, cases):
    return [pytest.param(tp, v, h, id=f"{h}") for v, h in cases]


# r[jetstream.wireformat.u8]
@pytest.mark.parametrize("tp, value, golden", _int_params(jw.u8, U8_CASES))
def test_u8(tp, value, golden):
    """r[jetstream.wireformat.u8]: one byte, byte_size 1."""
    roundtrip(value, tp, H(golden))
    assert jw.byte_size(value, tp) == 1


# r[jetstream.wireformat.u16]
@pytest.mark.parametrize("tp, value, golden", _int_params(jw.u16, U16_CASES))
def test_u16(tp, value, golden):
    """r[jetstream.wireformat.u16]: 2 bytes LE."""
    roundtrip(value, tp, H(golden))
    assert jw.byte_size(value, tp) == 2


# r[jetstream.wireformat.u32]
@pytest.mark.parametrize("tp, value, golden", _int_params(jw.u32, U32_CASES))
def test_u32(tp, value, golden):
    """r[jetstream.wireformat.u32]: 4 bytes LE."""
    roundtrip(value, tp, H(golden))
    assert jw.byte_size(value, tp) == 4


# r[jetstream.wireformat.u64]
@pytest.mark.parametrize("tp, value, golden", _int_params(jw.u64, U64_CASES))
def test_u64(tp, value, golden):
    """r[jetstream.wireformat.u64]: 8 bytes LE."""
    roundtrip(value, tp, H(golden))
    assert jw.byte_size(value, tp) == 8


# r[jetstream.wireformat.u128]
@pytest.mark.parametrize("tp, value, golden", _int_params(jw.u128, U128_CASES))
def test_u128(tp, value, golden):
    """r[jetstream.wireformat.u128]: 16 bytes LE."""
    roundtrip(value, tp, H(golden))
    assert jw.byte_size(value, tp) == 16


# r[jetstream.wireformat.i16]
@pytest.mark.parametrize("tp, value, golden", _int_params(jw.i16, I16_CASES))
def test_i16(tp, value, golden):
    """r[jetstream.wireformat.i16]: 2 bytes LE two's complement."""
    roundtrip(value, tp, H(golden))
    assert jw.byte_size(value, tp) == 2


# r[jetstream.wireformat.i32]
@pytest.mark.parametrize("tp, value, golden", _int_params(jw.i32, I32_CASES))
def test_i32(tp, value, golden):
    """r[jetstream.wireformat.i32]: 4 bytes LE two's complement."""
    roundtrip(value, tp, H(golden))
    assert jw.byte_size(value, tp) == 4


# r[jetstream.wireformat.i64]
@pytest.mark.parametrize("tp, value, golden", _int_params(jw.i64, I64_CASES))
def test_i64(tp, value, golden):
    """r[jetstream.wireformat.i64]: 8 bytes LE two's complement."""
    roundtrip(value, tp, H(golden))
    assert jw.byte_size(value, tp) == 8


# r[jetstream.wireformat.i128]
@pytest.mark.parametrize("tp, value, golden", _int_params(jw.i128, I128_CASES))
def test_i128(tp, value, golden):
    """r[jetstream.wireformat.i128]: 16 bytes LE two's complement."""
    roundtrip(value, tp, H(golden))
    assert jw.byte_size(value, tp) == 16


def test_int_width_markers_also_work_as_annotated_metadata():
    """r[jetstream.wireformat.u16] r[jetstream.wireformat.i32]: ``Annotated[int, jw.u16]``
    is the same wire type as ``jw.u16``."""
    assert jw.encode(0x1234, Annotated[int, jw.u16]) == H("3412")
    assert jw.encode(-100, Annotated[int, jw.i32]) == H("9cffffff")
    assert jw.decode(Annotated[int, jw.u16], H("3412")) == 0x1234


INT_OUT_OF_RANGE = [
    ("u8", jw.u8, 256),
    ("u8", jw.u8, -1),
    ("u16", jw.u16, 65536),
    ("u16", jw.u16, -1),
    ("u32", jw.u32, 2**32),
    ("u32", jw.u32, -1),
    ("u64", jw.u64, 2**64),
    ("u64", jw.u64, -1),
    ("u128", jw.u128, 2**128),
    ("u128", jw.u128, -1),
    ("i16", jw.i16, 32768),
    ("i16", jw.i16, -32769),
    ("i32", jw.i32, 2**31),
    ("i32", jw.i32, -(2**31) - 1),
    ("i64", jw.i64, 2**63),
    ("i64", jw.i64, -(2**63) - 1),
    ("i128", jw.i128, 2**127),
    ("i128", jw.i128, -(2**127) - 1),
]


# r[jetstream.wireformat.u8] r[jetstream.wireformat.u16] r[jetstream.wireformat.u32]
# r[jetstream.wireformat.u64] r[jetstream.wireformat.u128] r[jetstream.wireformat.i16]
# r[jetstream.wireformat.i32] r[jetstream.wireformat.i64] r[jetstream.wireformat.i128]
@pytest.mark.parametrize("label, tp, value", INT_OUT_OF_RANGE, ids=[f"{name}:{v}" for name, _, v in INT_OUT_OF_RANGE])
def test_int_out_of_range_is_encode_error(label, tp, value):
    """A value that does not fit the width has no encoding (never silently truncated)."""
    err = encode_error(value, tp)
    assert err.path == label
    assert err.offset == 0
    err = encode_error([0, value], list[tp])
    assert err.path == f"list[{label}][1]"


def test_int_out_of_range_in_struct_names_field():
    """r[jetstream.wireformat.u16] r[jetstream.wireformat.i32] r[jetstream.wireformat.struct]"""
    err = encode_error(Point(x=65536, y=0, label="", tags=[]))
    assert (err.path, err.offset) == ("Point.x", 0)
    err = encode_error(Point(x=1, y=2**31, label="", tags=[]))
    assert (err.path, err.offset) == ("Point.y", 2)
    err = encode_error(Point(x=1, y=2, label="ab", tags=[1, 256]))
    # x 2 + y 4 + label 4 + count 2 + tags[0] 1 = offset 13
    assert (err.path, err.offset) == ("Point.tags[1]", 13)


F32_CASES = [
    (1.0, "0000803f"),
    (-2.5, "000020c0"),
    (0.0, "00000000"),
    (-0.0, "00000080"),
    (math.inf, "0000807f"),
    (-math.inf, "000080ff"),
    (3.4028234663852886e38, "ffff7f7f"),  # f32::MAX
    (1.401298464324817e-45, "01000000"),  # smallest f32 subnormal
    (0.10000000149011612, "cdcccc3d"),  # 0.1f32
]
F64_CASES = [
    (1.0, "000000000000f03f"),
    (-2.5, "00000000000004c0"),
    (0.1, "9a9999999999b93f"),
    (0.0, "0000000000000000"),
    (-0.0, "0000000000000080"),
    (math.inf, "000000000000f07f"),
    (-math.inf, "000000000000f0ff"),
    (5e-324, "0100000000000000"),
]


def _same_float(a, b):
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


# r[jetstream.wireformat.f32]
@pytest.mark.parametrize("value, golden", F32_CASES, ids=[h for _, h in F32_CASES])
def test_f32(value, golden):
    """r[jetstream.wireformat.f32]: IEEE 754 binary32, LE; -0.0 keeps its sign."""
    assert jw.encode(value, jw.f32) == H(golden)
    assert jw.byte_size(value, jw.f32) == 4
    assert _same_float(jw.decode(jw.f32, H(golden)), value)


def test_f32_rounds_like_a_cast():
    """r[jetstream.wireformat.f32]: 0.1 (an f64) is sent as the nearest f32, 0x3dcccccd."""
    assert jw.encode(0.1, jw.f32) == H("cdcccc3d")


# r[jetstream.wireformat.f64]
@pytest.mark.parametrize("value, golden", F64_CASES, ids=[h for _, h in F64_CASES])
def test_f64(value, golden):
    """r[jetstream.wireformat.f64]: IEEE 754 binary64, LE; bare ``float`` is f64."""
    for tp in (jw.f64, float):
        assert jw.encode(value, tp) == H(golden)
        assert jw.byte_size(value, tp) == 8
        assert _same_float(jw.decode(tp, H(golden)), value)
    assert jw.encode(value) == H(golden)  # a float says its type by itself


# r[jetstream.wireformat.f32]
@pytest.mark.parametrize(
    "golden",
    [
        "0100807f",  # 0x7f800001: signalling NaN, payload 1
        "2301c07f",  # 0x7fc00123: quiet NaN, payload 0x123
        "0100c0ff",  # 0xffc00001: negative quiet NaN
        "ffffff7f",  # 0x7fffffff
    ],
)
def test_f32_nan_payload_survives(golden):
    """r[jetstream.wireformat.f32]: a NaN decodes and re-encodes to the identical 4 bytes."""
    value = jw.decode(jw.f32, H(golden))
    assert math.isnan(value)
    assert jw.encode(value, jw.f32) == H(golden)
    assert jw.byte_size(value, jw.f32) == 4


# r[jetstream.wireformat.f64]
@pytest.mark.parametrize(
    "golden",
    [
        "010000000000f07f",  # 0x7ff0000000000001: signalling NaN
        "230100000000f87f",  # 0x7ff8000000000123: quiet NaN with payload
        "010000000000f8ff",  # negative quiet NaN
    ],
)
def test_f64_nan_payload_survives(golden):
    """r[jetstream.wireformat.f64]: a NaN decodes and re-encodes to the identical 8 bytes."""
    value = jw.decode(jw.f64, H(golden))
    assert math.isnan(value)
    assert jw.encode(value, jw.f64) == H(golden)
    assert jw.encode(value, float) == H(golden)


def test_bool():
    """r[jetstream.wireformat.bool]: false = 00, true = 01, one byte."""
    roundtrip(False, bool, H("00"))
    roundtrip(True, bool, H("01"))
    assert jw.encode(True) == H("01")


# r[jetstream.wireformat.bool]
@pytest.mark.parametrize("bad", [0x02, 0x03, 0x80, 0xFF])
def test_bool_rejects_other_bytes(bad):
    """r[jetstream.wireformat.bool]: any byte but 00/01 MUST be rejected."""
    err = decode_error(bool, bytes([bad]))
    assert (err.path, err.offset) == ("bool", 0)
    err = decode_error(Flags, H("0100") + bytes([bad]))
    assert (err.path, err.offset) == ("Flags.on", 2)


def test_unit():
    """r[jetstream.wireformat.unit]: None encodes as no bytes and reads none."""
    assert jw.encode(None) == b""
    assert jw.encode(None, None) == b""
    assert jw.byte_size(None, None) == 0
    assert jw.decode(None, b"") is None
    assert jw.decode_prefix(None, H("ff"), 0) == (None, 0)
    value = WithUnit(a=1, nothing=None, b=2)
    assert value.encode() == H("01 02")
    assert value.byte_size() == 2
    assert WithUnit.decode(H("0102")) == value


def test_unit_rejects_trailing_bytes():
    """r[jetstream.wireformat.unit]: nothing is read, so any byte is left over."""
    err = decode_error(None, H("00"))
    assert err.offset == 0


@jw.wireformat(frozen=True)
class Blank:
    pass


@jw.wireformat
class Marks:
    a: jw.u8
    marks: list[None]
    rows: list[list[Blank]]


def test_collections_of_zero_width_elements():
    """r[jetstream.wireformat.unit] with r[jetstream.wireformat.vec], r[jetstream.wireformat.set],
    r[jetstream.wireformat.map], r[jetstream.wireformat.struct]: the count, then elements that
    take no bytes. Valid JetStream: declared and decoded like any other collection."""
    roundtrip([None, None, None], list[None], H("0300"))
    roundtrip([Blank(), Blank()], list[Blank], H("0200"))
    roundtrip([[None], [], [None, None]], list[list[None]], H("0300 0100 0000 0200"))
    roundtrip(((), ()), tuple[tuple[()], ...], H("0200"))
    roundtrip([(None, ())], list[tuple[None, tuple[()]]], H("0100"))
    roundtrip({None}, set[None], H("0100"))
    roundtrip(frozenset({Blank()}), frozenset[Blank], H("0100"))
    roundtrip({None: ()}, dict[None, tuple[()]], H("0100"))
    roundtrip({None: 7}, dict[None, jw.u8], H("0100 07"))
    roundtrip(Marks(5, [None] * 4, [[Blank()], []]), Marks, H("05 0400 0200 0100 0000"))
    assert jw.decode(list[None], H("ffff")) == [None] * 0xFFFF


def test_sets_and_maps_of_zero_width_keys_hold_one_entry():
    """r[jetstream.wireformat.set], r[jetstream.wireformat.map]: every zero-width value is the
    same value, so a second one is a duplicate, refused like any other."""
    err = decode_error(set[None], H("0200"))
    assert (err.path, err.offset) == ("set[None][1]", 2)
    assert "duplicate" in err.reason
    err = decode_error(dict[None, tuple[()]], H("ffff"))
    assert (err.path, err.offset) == ("dict[None, tuple[()]][1].key", 2)


def zero_width_error(codec, data):
    """The error of ``codec`` decoding ``data``, the same from the generated code (bytes), the
    interpreter (explain, streams) and decode_prefix."""
    with pytest.raises(jw.DecodeError) as info:
        codec.decode(data)
    with pytest.raises(jw.DecodeError) as prefixed:
        codec.decode_prefix(b"\xaa" + data, 1)
    assert (prefixed.value.path, prefixed.value.offset) == (info.value.path, info.value.offset + 1)
    assert str(info.value) in codec.explain(data)
    return info.value


def test_zero_width_elements_are_bounded_per_decode():
    """r[jetstream.wireformat.vec]: 2 bytes of count make up to 65,535 elements that take no
    bytes; one decode may make at most max_zero_width_elements of them, counted across the
    whole value, so a few bytes cannot make billions (list[list[None]])."""
    codec = jw.Codec(list[list[None]], max_zero_width_elements=5)
    assert codec.decode(H("0200 0300 0200")) == [[None] * 3, [None] * 2]  # exactly 5
    err = zero_width_error(codec, H("0200 0300 0300"))
    assert (err.path, err.offset) == ("list[list[None]][1]", 4)
    assert "zero-width" in err.reason and "max_zero_width_elements" in err.reason
    codec = jw.Codec(Marks, max_zero_width_elements=4)
    assert codec.decode(H("05 0200 0100 0200")) == Marks(5, [None] * 2, [[Blank()] * 2])
    err = zero_width_error(codec, H("05 0200 0200 0100 0200"))
    assert (err.path, err.offset) == ("Marks.rows[1]", 7)
    err = zero_width_error(jw.Codec(Marks, max_zero_width_elements=0), H("05 0100 0000"))
    assert (err.path, err.offset) == ("Marks.marks", 1)


def test_zero_width_default_budget():
    """r[jetstream.wireformat.vec]: the default budget, jetwire.MAX_ZERO_WIDTH_ELEMENTS, is the
    same on the generated path, the interpreter and streams."""
    import io

    limit = jw.MAX_ZERO_WIDTH_ELEMENTS
    full, rest = divmod(limit, 0xFFFF)
    fits = (full + 1).to_bytes(2, "little") + H("ffff") * full + rest.to_bytes(2, "little")
    assert sum(map(len, jw.decode(list[list[None]], fits))) == limit
    assert sum(map(len, jw.read_value(list[list[None]], io.BytesIO(fits)))) == limit
    over = fits[:-2] + (rest + 1).to_bytes(2, "little")
    err = zero_width_error(jw.Codec(list[list[None]]), over)
    assert (err.path, err.offset) == (f"list[list[None]][{full}]", len(over) - 2)
    with pytest.raises(jw.DecodeError) as streamed:
        jw.read_value(list[list[None]], io.BytesIO(over))
    assert (streamed.value.path, streamed.value.offset) == (err.path, err.offset)


@pytest.mark.parametrize("bad", [-1, 1.5, True, "10"])
def test_zero_width_budget_is_a_count(bad):
    with pytest.raises(ValueError, match="max_zero_width_elements"):
        jw.Codec(list[None], max_zero_width_elements=bad)


# --------------------------------------------------------------------------------------------
# Strings
# --------------------------------------------------------------------------------------------

STRING_CASES = [
    pytest.param("", "0000", id="empty"),
    pytest.param("hi", "0200 6869", id="ascii"),
    pytest.param("Hello, 9P!", "0a00 48656c6c6f2c20395021", id="ascii-10"),
    # é = c3 a9, € = e2 82 ac, 😀 = f0 9f 98 80: 9 bytes, 3 characters.
    pytest.param("é€😀", "0900 c3a9 e282ac f09f9880", id="multibyte"),
    pytest.param("\ufeffa", "0400 efbbbf 61", id="leading-bom-kept"),
    pytest.param("a\x00b", "0300 610062", id="nul"),
]


@pytest.mark.parametrize("value, golden", STRING_CASES)
def test_string(value, golden):
    """r[jetstream.wireformat.string]: u16 byte count (not characters), then UTF-8."""
    got = roundtrip(value, str, H(golden))
    assert got == value  # U+FEFF is not stripped as a BOM
    assert jw.encode(value) == H(golden)
    assert jw.byte_size(value, str) == 2 + len(value.encode("utf-8"))


def test_string_max_length():
    """r[jetstream.wireformat.string]: 65,535 bytes is the largest string."""
    s = "a" * 65535
    data = jw.encode(s, str)
    assert data[:2] == H("ffff")
    assert len(data) == 65537
    assert jw.byte_size(s, str) == 65537
    assert jw.decode(str, data) == s


@pytest.mark.parametrize(
    "value", [pytest.param("a" * 65536, id="65536-ascii"), pytest.param("é" * 32768, id="32768-chars-65536-bytes")]
)
def test_string_over_65535_bytes_is_encode_error(value):
    """r[jetstream.wireformat.string]: encoding MUST fail past 65,535 UTF-8 bytes; counted in bytes."""
    err = encode_error(value, str)
    assert (err.path, err.offset) == ("str", 0)
    err = encode_error(Twalk(fid=1, wnames=["a", value]))
    assert (err.path, err.offset) == ("Twalk.wnames[1]", 9)


@pytest.mark.parametrize("value", ["\ud800", "a\udfffb", "ok\ud83d"])
def test_string_lone_surrogate_is_encode_error(value):
    """r[jetstream.wireformat.string]: strings MUST be valid UTF-8; a lone surrogate has no UTF-8."""
    err = encode_error(value, str)
    assert err.path == "str"
    err = encode_error(Twalk(fid=1, wnames=["a", value]))
    assert (err.path, err.offset) == ("Twalk.wnames[1]", 9)


@pytest.mark.parametrize(
    "body, bad_at",
    [
        pytest.param("ff", 0, id="ff"),
        pytest.param("61ff62", 1, id="ff-middle"),
        pytest.param("6162c3", 2, id="truncated-sequence"),
        pytest.param("c0af", 0, id="overlong"),
        pytest.param("eda080", 0, id="encoded-surrogate"),
        pytest.param("f4908080", 0, id="above-10ffff"),
    ],
)
def test_string_invalid_utf8_rejected(body, bad_at):
    """r[jetstream.wireformat.string]: decoding validates UTF-8; the offset is the bad byte."""
    raw = H(body)
    data = bytes([len(raw), 0]) + raw
    err = decode_error(str, data)
    assert (err.path, err.offset) == ("str", 2 + bad_at)
    # In a struct: fid 4 + count 2 + "a" 3 = wnames[1] at 9, its bytes at 11.
    data = H("01000000 0200 0100 61") + bytes([len(raw), 0]) + raw
    err = decode_error(Twalk, data)
    assert (err.path, err.offset) == ("Twalk.wnames[1]", 11 + bad_at)


def test_string_length_past_end_rejected():
    """r[jetstream.wireformat.string]: N bytes must be read; a short input is an error."""
    err = decode_error(str, H("0300 6162"))
    assert (err.path, err.offset) == ("str", 2)
    err = decode_error(Twalk, H("01000000 0200 0100 61 0500 6263"))
    assert (err.path, err.offset) == ("Twalk.wnames[1]", 11)
    err = decode_error(str, H("05"))  # not even the length prefix
    assert err.offset == 0


# --------------------------------------------------------------------------------------------
# Collections
# --------------------------------------------------------------------------------------------


def test_vec_list_u16():
    """r[jetstream.wireformat.vec]: u16 count then each element."""
    roundtrip([1, 2, 0x0304], list[jw.u16], H("0300 0100 0200 0403"))
    roundtrip([], list[jw.u16], H("0000"))
    assert jw.byte_size([1, 2, 3], list[jw.u16]) == 2 + 3 * 2


def test_vec_tuple_of_str():
    """r[jetstream.wireformat.vec]: ``tuple[str, ...]`` is a vec too, decoded as a tuple."""
    roundtrip(("a", "bc"), tuple[str, ...], H("0200 0100 61 0200 6263"))
    roundtrip((), tuple[str, ...], H("0000"))


def test_vec_nested_and_of_structs():
    """r[jetstream.wireformat.vec] r[jetstream.wireformat.struct]"""
    roundtrip([[1], [], [2, 3]], list[list[jw.u8]], H("0300 0100 01 0000 0200 0203"))
    pts = [Point(x=1, y=-1, label="", tags=[]), Point(x=2, y=0, label="z", tags=[7])]
    golden = H("0200" "0100 ffffffff 0000 0000" "0200 00000000 0100 7a 0100 07")
    roundtrip(pts, list[Point], golden)


def test_vec_u8_is_not_data():
    """r[jetstream.wireformat.vec] r[jetstream.wireformat.data]: Vec<u8> has a u16 count, Data a u32."""
    assert jw.encode([1, 2], list[jw.u8]) == H("0200 0102")
    assert jw.encode(b"\x01\x02", bytes) == H("02000000 0102")


def test_vec_max_elements():
    """r[jetstream.wireformat.vec]: 65,535 elements is the largest vec."""
    data = jw.encode([7] * 65535, list[jw.u8])
    assert data[:2] == H("ffff")
    assert len(data) == 2 + 65535
    assert jw.decode(list[jw.u8], data) == [7] * 65535


@pytest.mark.parametrize("tp, label", [(list[jw.u8], "list[u8]"), (tuple[jw.u8, ...], "tuple[u8, ...]")])
def test_vec_over_65535_elements_is_encode_error(tp, label):
    """r[jetstream.wireformat.vec]: encoding MUST fail past 65,535 elements."""
    value = tp.__origin__([0] * 65536)
    err = encode_error(value, tp)
    assert (err.path, err.offset) == (label, 0)
    err = encode_error(Point(x=0, y=0, label="", tags=[0] * 65536))
    assert (err.path, err.offset) == ("Point.tags", 8)


def test_vec_truncated_rejected():
    """r[jetstream.wireformat.vec]: a count larger than the elements present is an error."""
    err = decode_error(list[jw.u16], H("0300 0100 0200"))
    assert err.path == "list[u16][2]"
    assert err.offset == 6


def test_data_golden():
    """r[jetstream.wireformat.data]: u32 length then raw bytes."""
    roundtrip(b"\x00\xff\x10", bytes, H("03000000 00ff10"))
    roundtrip(b"", bytes, H("00000000"))
    assert jw.encode(b"hi") == H("02000000 6869")


def test_data_accepts_bytearray_and_memoryview():
    """r[jetstream.wireformat.data]: any bytes-like value is a byte buffer."""
    golden = H("03000000 616263")
    assert jw.encode(bytearray(b"abc"), bytes) == golden
    assert jw.encode(memoryview(b"abc"), bytes) == golden
    assert jw.encode(memoryview(b"xabcx")[1:4], bytes) == golden
    assert jw.byte_size(bytearray(b"abc"), bytes) == 7
    assert jw.byte_size(memoryview(b"abc"), bytes) == 7
    assert jw.encode(bytearray(b"abc")) == golden
    assert jw.encode(memoryview(b"abc")) == golden
    assert Packet(kind=1, payload=bytearray(b"abc")).encode() == H("01") + golden
    assert Packet(kind=1, payload=memoryview(b"abc")).encode() == H("01") + golden
    assert jw.decode(bytes, golden) == b"abc"
    assert type(jw.decode(bytes, golden)) is bytes


def test_data_over_32_mib_rejected_without_the_bytes():
    """r[jetstream.wireformat.data]: N > 33,554,432 MUST fail, before reading N bytes."""
    # 0x02000001 = 33,554,433: only the 4 length bytes are given.
    err = decode_error(bytes, H("01000002"))
    assert (err.path, err.offset) == ("bytes", 0)
    err = decode_error(bytes, H("ffffffff"))
    assert (err.path, err.offset) == ("bytes", 0)
    err = decode_error(Packet, H("07 01000002"))
    assert (err.path, err.offset) == ("Packet.payload", 1)
    with pytest.raises(jw.DecodeError) as info:
        Packet.decode_prefix(H("07 01000002 00"))
    assert (info.value.path, info.value.offset) == ("Packet.payload", 1)


def test_data_exactly_32_mib_allowed():
    """r[jetstream.wireformat.data]: 33,554,432 bytes is within the limit."""
    payload = bytes(33_554_432)
    data = H("00000002") + payload
    assert jw.decode(bytes, data) == payload
    assert jw.encode(payload, bytes)[:4] == H("00000002")
    # Within the limit but absent: an end-of-data error, after the prefix, not the limit error.
    err = decode_error(bytes, H("00000002"))
    assert (err.path, err.offset) == ("bytes", 4)


def test_data_shorter_than_length_rejected():
    """r[jetstream.wireformat.data]: fewer than N bytes MUST fail (unexpected EOF)."""
    err = decode_error(bytes, H("03000000 6162"))
    assert (err.path, err.offset) == ("bytes", 4)
    err = decode_error(Packet, H("07 05000000 6162"))
    assert (err.path, err.offset) == ("Packet.payload", 5)
    err = decode_error(Packet, H("07 0500"))  # the length itself is cut short
    assert (err.path, err.offset) == ("Packet.payload", 1)


def test_map_written_in_key_order():
    """r[jetstream.wireformat.map]: u16 count, then key, value pairs in key order,
    whatever the dict's insertion order."""
    golden = H("0200 01 0100 61 03 0100 63")
    for value in ({3: "c", 1: "a"}, {1: "a", 3: "c"}):
        got = roundtrip(value, dict[jw.u8, str], golden)
        assert list(got) == [1, 3]
    golden = H("0200 0100 61 0100 0100 62 0200")
    roundtrip({"b": 2, "a": 1}, dict[str, jw.u16], golden)
    roundtrip({}, dict[str, jw.u16], H("0000"))
    # Enum keys order by definition index (upstream's derived Ord), not by value.
    roundtrip({Color.BLUE: 1, Color.RED: 2}, dict[Color, jw.u8], H("0200 00 02 02 01"))


def test_set_written_sorted():
    """r[jetstream.wireformat.set]: u16 count then the elements in order."""
    # 300 = 0x012c
    roundtrip({300, 1, 2}, set[jw.u16], H("0300 0100 0200 2c01"))
    # Strings order bytewise: "a" < "ab" < "b".
    roundtrip(frozenset({"b", "ab", "a"}), frozenset[str], H("0300 0100 61 0200 6162 0100 62"))
    roundtrip(set(), set[jw.u16], H("0000"))
    # Signed: -1 sorts before 1.
    roundtrip({1, -1}, set[jw.i16], H("0200 ffff 0100"))
    # Enum members order by definition index: RED(0) before BLUE(2).
    roundtrip({Color.BLUE, Color.RED}, set[Color], H("0200 00 02"))


@pytest.mark.parametrize(
    "value, tp, label",
    [
        (set(range(65536)), set[jw.u32], "set[u32]"),
        (frozenset(range(65536)), frozenset[jw.u32], "frozenset[u32]"),
        ({i: 0 for i in range(65536)}, dict[jw.u32, jw.u8], "dict[u32, u8]"),
    ],
    ids=["set", "frozenset", "dict"],
)
def test_set_and_map_over_65535_entries_is_encode_error(value, tp, label):
    """r[jetstream.wireformat.set] r[jetstream.wireformat.map]: at most 65,535 entries."""
    err = encode_error(value, tp)
    assert (err.path, err.offset) == (label, 0)


# --------------------------------------------------------------------------------------------
# Option
# --------------------------------------------------------------------------------------------


def test_option():
    """r[jetstream.wireformat.option]: 00 = None; 01 then the value = Some."""
    roundtrip(None, Optional[jw.u16], H("00"))
    roundtrip(5, Optional[jw.u16], H("01 0500"))
    roundtrip("x", str | None, H("01 0100 78"))
    roundtrip(None, str | None, H("00"))
    roundtrip(0, jw.u8 | None, H("01 00"))  # a present zero is not None
    roundtrip("", str | None, H("01 0000"))
    roundtrip(Opt(a=1, b=None), Opt, H("01 00"))
    roundtrip(Opt(a=1, b=0x0203), Opt, H("01 01 0302"))


def test_option_nested():
    """r[jetstream.wireformat.option]: Option<Option<u8>> as ``jw.Option[Optional[u8]]``."""
    tp = jw.Option[Optional[jw.u8]]
    roundtrip(None, tp, H("00"))
    roundtrip(jw.Some(None), tp, H("01 00"))
    roundtrip(jw.Some(7), tp, H("01 01 07"))
    roundtrip(jw.Some(5), jw.Option[jw.u16], H("01 0500"))


# r[jetstream.wireformat.option]
@pytest.mark.parametrize("tag", [0x02, 0x03, 0xFF])
def test_option_bad_tag_rejected(tag):
    """r[jetstream.wireformat.option]: any tag but 00/01 MUST be rejected."""
    err = decode_error(jw.u8 | None, bytes([tag, 0]))
    assert (err.path, err.offset) == ("Optional[u8]", 0)
    err = decode_error(Opt, bytes([1, tag, 0, 0]))
    assert (err.path, err.offset) == ("Opt.b", 1)
    err = decode_error(jw.Option[jw.u8 | None], bytes([1, tag, 0]))
    assert err.offset == 1


# --------------------------------------------------------------------------------------------
# Composite types
# --------------------------------------------------------------------------------------------


def test_struct_fields_in_declaration_order():
    """r[jetstream.wireformat.struct]: fields in declaration order, no prefix, no names."""
    p = Point(x=1, y=-2, label="p", tags=[9])
    roundtrip(p, Point, H("0100 feffffff 0100 70 0100 09"))
    roundtrip(Reordered(y=-2, x=1), Reordered, H("feffffff 0100"))
    assert Point.decode_prefix(H("0100 feffffff 0100 70 0100 09 ee")) == (p, 12)


def test_struct_fixed_tuple():
    """r[jetstream.wireformat.struct]: a fixed tuple is its items in order (like a tuple struct)."""
    roundtrip((1, "a"), tuple[jw.u8, str], H("01 0100 61"))
    roundtrip((-1, True, None), tuple[jw.i16, bool, jw.u8 | None], H("ffff 01 00"))


def test_struct_skip_and_with_codec():
    """r[jetstream.wireformat.struct]: a ``skip`` field is not on the wire and decodes to its
    default; a ``with(Codec)`` field is written by the codec alone."""
    v = WithAttrs(a=1, b=5, cache="local")
    assert v.encode() == H("01 0a")
    assert v.byte_size() == 2
    assert WithAttrs.decode(H("01 0a")) == WithAttrs(a=1, b=5, cache="default")


def test_enum_wireenum():
    """r[jetstream.wireformat.enum]: u8 index in definition order, then the variant's fields;
    a unit variant is the index byte alone."""
    roundtrip(Shape.Empty(), Shape, H("00"))
    roundtrip(Shape.Circle(radius=5), Shape, H("01 05000000"))
    roundtrip(Shape.Rect(w=3, h=4), Shape, H("02 0300 0400"))
    roundtrip(Shape.Toggle(on=True), Shape, H("03 01"))
    assert Shape.Circle(radius=5).encode() == H("0105000000")
    assert Shape.Empty().byte_size() == 1
    assert Shape.decode(H("02 0300 0400")) == Shape.Rect(w=3, h=4)
    assert isinstance(Shape.decode(H("00")), Shape.Empty)
    roundtrip(Drawing(id=1, shape=Shape.Rect(w=1, h=2), color=Color.GREEN), Drawing, H("0100 02 0100 0200 01"))


def test_enum_python_enum_uses_definition_index_not_value():
    """r[jetstream.wireformat.enum]: an enum.Enum member is its definition index (RED=10 -> 00)."""
    roundtrip(Color.RED, Color, H("00"))
    roundtrip(Color.GREEN, Color, H("01"))
    roundtrip(Color.BLUE, Color, H("02"))
    assert jw.encode(Color.BLUE) == H("02")


def test_enum_256_variants():
    """r[jetstream.wireformat.enum]: up to 256 variants, index 255 = ff."""
    Big = enum.Enum("Big", [f"M{i}" for i in range(256)])
    roundtrip(Big.M255, Big, H("ff"))
    roundtrip(Big.M0, Big, H("00"))
    TooBig = enum.Enum("TooBig", [f"M{i}" for i in range(257)])
    with pytest.raises(jw.SchemaError):
        jw.encode(TooBig.M0, TooBig)


# r[jetstream.wireformat.enum]
@pytest.mark.parametrize("index", [4, 5, 0x80, 0xFF])
def test_enum_invalid_variant_index_rejected(index):
    """r[jetstream.wireformat.enum]: an index matching no variant MUST be rejected."""
    err = decode_error(Shape, bytes([index]))
    assert (err.path, err.offset) == ("Shape", 0)
    assert "invalid variant index" in err.reason
    err = decode_error(Drawing, H("0100") + bytes([index]))
    assert (err.path, err.offset) == ("Drawing.shape", 2)
    err = decode_error(Drawing, H("0100 00") + bytes([index]))  # Color has 3 members
    assert (err.path, err.offset) == ("Drawing.color", 3)
    err = decode_error(Color, bytes([index]))
    assert (err.path, err.offset) == ("Color", 0)


def test_enum_variant_field_errors_name_the_variant():
    """r[jetstream.wireformat.enum] r[jetstream.wireformat.bool]: errors inside a variant's fields."""
    err = decode_error(Shape, H("03 02"))
    assert (err.path, err.offset) == ("Shape<Toggle>.on", 1)
    err = decode_error(Drawing, H("0100 03 07 00"))
    assert (err.path, err.offset) == ("Drawing.shape<Toggle>.on", 3)
    err = encode_error(Shape.Circle(radius=-1))
    assert (err.path, err.offset) == ("Shape<Circle>.radius", 1)


# --------------------------------------------------------------------------------------------
# Network types
# --------------------------------------------------------------------------------------------

V4 = ipaddress.IPv4Address("192.168.1.1")
V6 = ipaddress.IPv6Address("2001:db8::1")
V4_HEX = "c0a80101"
V6_HEX = "20010db8 00000000 00000000 00000001"


def test_ipv4():
    """r[jetstream.wireformat.ipv4]: the 4 octets in network order."""
    roundtrip(V4, ipaddress.IPv4Address, H(V4_HEX))
    roundtrip(ipaddress.IPv4Address("0.0.0.0"), ipaddress.IPv4Address, H("00000000"))
    assert jw.encode(V4) == H(V4_HEX)


def test_ipv6():
    """r[jetstream.wireformat.ipv6]: the 16 octets in network order."""
    roundtrip(V6, ipaddress.IPv6Address, H(V6_HEX))
    roundtrip(ipaddress.IPv6Address("::1"), ipaddress.IPv6Address, H("00000000 00000000 00000000 00000001"))
    assert jw.encode(V6) == H(V6_HEX)


def test_ipaddr():
    """r[jetstream.wireformat.ipaddr]: tag 4 then 4 octets, tag 6 then 16."""
    roundtrip(V4, jw.IpAddr, H("04" + V4_HEX))
    roundtrip(V6, jw.IpAddr, H("06" + V6_HEX))
    assert jw.byte_size(V4, jw.IpAddr) == 5
    assert jw.byte_size(V6, jw.IpAddr) == 17


def test_sockaddr_v4():
    """r[jetstream.wireformat.sockaddr-v4]: IPv4 octets then the port u16 LE (8080 = 0x1f90)."""
    sa = jw.SocketAddrV4(ipaddress.IPv4Address("10.0.0.1"), 8080)
    roundtrip(sa, jw.SocketAddrV4, H("0a000001 901f"))
    assert sa.encode() == H("0a000001 901f")
    assert sa.byte_size() == 6


def test_sockaddr_v6():
    """r[jetstream.wireformat.sockaddr-v6]: IPv6 octets then the port u16 LE (443 = 0x01bb)."""
    sa = jw.SocketAddrV6(ipaddress.IPv6Address("::1"), 443)
    golden = H("00000000 00000000 00000000 00000001 bb01")
    roundtrip(sa, jw.SocketAddrV6, golden)
    assert sa.byte_size() == 18


def test_sockaddr():
    """r[jetstream.wireformat.sockaddr]: tag 4 or 6, then the socket address."""
    sa4 = jw.SocketAddrV4(ipaddress.IPv4Address("127.0.0.1"), 0xFFFF)
    roundtrip(sa4, jw.SocketAddr, H("04 7f000001 ffff"))
    sa6 = jw.SocketAddrV6(V6, 1)
    roundtrip(sa6, jw.SocketAddr, H("06" + V6_HEX + "0100"))
    assert jw.byte_size(sa4, jw.SocketAddr) == 7
    assert jw.byte_size(sa6, jw.SocketAddr) == 19
    roundtrip(Peer(ip=V6, sock=sa4), Peer, H("06" + V6_HEX + "04 7f000001 ffff"))


# r[jetstream.wireformat.ipaddr] r[jetstream.wireformat.sockaddr]
@pytest.mark.parametrize("tag", [0, 1, 5, 7, 0x46, 0xFF])
def test_ipaddr_and_sockaddr_bad_tag_rejected(tag):
    """r[jetstream.wireformat.ipaddr] r[jetstream.wireformat.sockaddr]: tags other than 4/6 MUST be rejected."""
    body = H("7f000001 0000 0000 0000 0000 0000 0000")
    err = decode_error(jw.IpAddr, bytes([tag]) + body)
    assert (err.path, err.offset) == ("IpAddr", 0)
    err = decode_error(jw.SocketAddr, bytes([tag]) + body)
    assert (err.path, err.offset) == ("SocketAddr", 0)
    err = decode_error(Peer, bytes([tag]) + body)
    assert (err.path, err.offset) == ("Peer.ip", 0)
    err = decode_error(Peer, H("04 7f000001") + bytes([tag]) + body)
    assert (err.path, err.offset) == ("Peer.sock", 5)


# --------------------------------------------------------------------------------------------
# Time
# --------------------------------------------------------------------------------------------

SYSTIME_CASES = [
    pytest.param(datetime.datetime(1970, 1, 1, tzinfo=UTC), "0000000000000000", None, id="epoch"),
    # 2024-01-01T00:00:00Z = 1,704,067,200,000 ms = 0x018cc251f400
    pytest.param(datetime.datetime(2024, 1, 1, tzinfo=UTC), "00f451c28c010000", None, id="2024"),
    # + 123.999 ms: the sub-millisecond part is truncated -> 1,704,067,200,123 = 0x018cc251f47b
    pytest.param(
        datetime.datetime(2024, 1, 1, 0, 0, 0, 123999, tzinfo=UTC),
        "7bf451c28c010000",
        datetime.datetime(2024, 1, 1, 0, 0, 0, 123000, tzinfo=UTC),
        id="truncated",
    ),
    # The same instant written in UTC+1.
    pytest.param(
        datetime.datetime(2024, 1, 1, 1, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=1))),
        "00f451c28c010000",
        datetime.datetime(2024, 1, 1, tzinfo=UTC),
        id="utc+1",
    ),
    pytest.param(
        datetime.datetime(1970, 1, 1, 0, 0, 0, 999, tzinfo=UTC),
        "0000000000000000",
        datetime.datetime(1970, 1, 1, tzinfo=UTC),
        id="sub-ms-after-epoch",
    ),
    # 9999-12-31T23:59:59.999Z = 253,402,300,799,999 ms = 0xe677d21fdbff: the last one datetime holds
    pytest.param(
        datetime.datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC), "ffdb1fd277e60000", None, id="max"
    ),
]


@pytest.mark.parametrize("value, golden, decoded", SYSTIME_CASES)
def test_systime(value, golden, decoded):
    """r[jetstream.wireformat.systime]: u64 LE milliseconds since the Unix epoch."""
    expected = value if decoded is None else decoded
    assert jw.encode(value, datetime.datetime) == H(golden)
    assert jw.encode(value) == H(golden)
    assert jw.byte_size(value, datetime.datetime) == 8
    got = jw.decode(datetime.datetime, H(golden))
    assert got == expected
    assert got.utcoffset() is not None  # decoded times are aware
    assert Stamp(seq=1, at=value).encode() == H("01" + golden)


@pytest.mark.parametrize(
    "golden",
    [
        "00dc1fd277e60000",  # 253,402,300,800,000 ms: year 10000
        "0000000000000080",  # 2**63
        "ffffffffffffffff",  # u64::MAX
    ],
)
def test_systime_overflow_rejected(golden):
    """r[jetstream.wireformat.systime]: a time past what the platform holds MUST fail with
    a timestamp overflow error."""
    err = decode_error(datetime.datetime, H(golden))
    assert (err.path, err.offset) == ("datetime", 0)
    assert "overflow" in err.reason
    err = decode_error(Stamp, H("01" + golden))
    assert (err.path, err.offset) == ("Stamp.at", 1)
    assert "overflow" in err.reason


def test_systime_naive_datetime_is_encode_error():
    """r[jetstream.wireformat.systime]: a naive datetime is no instant since the epoch."""
    err = encode_error(datetime.datetime(2024, 1, 1), datetime.datetime)
    assert err.path == "datetime"
    err = encode_error(Stamp(seq=1, at=datetime.datetime(2024, 1, 1)))
    assert (err.path, err.offset) == ("Stamp.at", 1)


@pytest.mark.parametrize(
    "value",
    [
        datetime.datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime.datetime(1900, 1, 1, tzinfo=UTC),
        datetime.datetime(1970, 1, 1, 0, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=1))),
    ],
    ids=["1us-before", "1900", "before-in-utc+1"],
)
def test_systime_before_epoch_is_encode_error(value):
    """r[jetstream.wireformat.systime]: the u64 cannot hold a time before 1970."""
    err = encode_error(value, datetime.datetime)
    assert err.path == "datetime"
    err = encode_error(Stamp(seq=1, at=value))
    assert (err.path, err.offset) == ("Stamp.at", 1)


# --------------------------------------------------------------------------------------------
# Error types
# --------------------------------------------------------------------------------------------

EMPTY_BACKTRACE = "0100 0000 0000"  # intern_table [""], frames []


def test_error_inner_fields():
    """r[jetstream.wireformat.error-inner]: message, then code, help, url as Option<String>."""
    err = jw.Error("m", code="c", help="h", url="u")
    golden = H("0100 6d" "01 0100 63" "01 0100 68" "01 0100 75" + EMPTY_BACKTRACE)
    roundtrip(err, jw.Error, golden)
    err = jw.Error("boom", code="E1")
    golden = H("0400 626f6f6d" "01 0200 4531" "00" "00" + EMPTY_BACKTRACE)
    roundtrip(err, jw.Error, golden)
    assert err.encode() == golden
    assert jw.Error.decode(golden) == err


def test_error_with_backtrace():
    """r[jetstream.wireformat.error] r[jetstream.wireformat.backtrace] r[jetstream.wireformat.frame]
    r[jetstream.wireformat.fieldpair] r[jetstream.wireformat.level]: ErrorInner then Backtrace."""
    bt = jw.Backtrace(
        intern_table=("", "main", "app", "app::run", "src/main.rs", "user", "42"),
        frames=(jw.BacktraceFrame("handle", 1, 2, 3, 4, 17, (jw.FieldPair(5, 6),), jw.Level.WARN),),
    )
    err = jw.Error("oops", help="try again", url="https://x.io", backtrace=bt)
    golden = H(
        # ErrorInner
        "0400 6f6f7073"  # message "oops"
        "00"  # code None
        "01 0900 74727920616761696e"  # help "try again"
        "01 0c00 68747470733a2f2f782e696f"  # url "https://x.io"
        # Backtrace.intern_table: 7 strings
        "0700 0000 0400 6d61696e 0300 617070 0800 6170703a3a72756e 0b00 7372632f6d61696e2e7273"
        "0400 75736572 0200 3432"
        # Backtrace.frames: 1 frame
        "0100"
        "0600 68616e646c65"  # msg "handle"
        "0100 0200 0300 0400 1100"  # name target module file line=17
        "0100 0500 0600"  # fields [(5, 6)]
        "03"  # level WARN
    )
    got = roundtrip(err, jw.Error, golden)
    assert got.backtrace.lookup(got.backtrace.frames[0].name) == "main"
    assert isinstance(got, Exception)


def test_error_default_backtrace():
    """r[jetstream.wireformat.error]: an error with an empty backtrace."""
    roundtrip(jw.Error(""), jw.Error, H("0000 00 00 00" + EMPTY_BACKTRACE))


def test_backtrace():
    """r[jetstream.wireformat.backtrace]: intern_table (vec of string), then frames (vec of frame);
    index 0 is the empty string."""
    roundtrip(jw.Backtrace(), jw.Backtrace, H(EMPTY_BACKTRACE))
    assert jw.Backtrace().intern_table == ("",)
    bt = jw.Backtrace(intern_table=("", "x"), frames=())
    roundtrip(bt, jw.Backtrace, H("0200 0000 0100 78 0000"))


def test_frame():
    """r[jetstream.wireformat.frame]: msg, name, target, module, file, line, fields, level."""
    frame = jw.BacktraceFrame(
        msg="f",
        name=0x0102,
        target=3,
        module=4,
        file=5,
        line=0xFFFF,
        fields=(jw.FieldPair(1, 2), jw.FieldPair(3, 4)),
        level=jw.Level.ERROR,
    )
    golden = H("0100 66" "0201 0300 0400 0500 ffff" "0200 0100 0200 0300 0400" "04")
    roundtrip(frame, jw.BacktraceFrame, golden)


def test_fieldpair():
    """r[jetstream.wireformat.fieldpair]: key u16 then value u16, byte_size 4."""
    roundtrip(jw.FieldPair(0x0102, 0x0304), jw.FieldPair, H("0201 0403"))
    assert jw.FieldPair(1, 2).byte_size() == 4


LEVELS = [(jw.Level.TRACE, "00"), (jw.Level.DEBUG, "01"), (jw.Level.INFO, "02"), (jw.Level.WARN, "03"), (jw.Level.ERROR, "04")]


# r[jetstream.wireformat.level]
@pytest.mark.parametrize("level, golden", LEVELS, ids=[lv.name for lv, _ in LEVELS])
def test_level(level, golden):
    """r[jetstream.wireformat.level]: TRACE 0, DEBUG 1, INFO 2, WARN 3, ERROR 4, one byte."""
    roundtrip(level, jw.Level, H(golden))
    roundtrip(LevelHolder(level), LevelHolder, H(golden))
    assert jw.LevelCodec.byte_size(level) == 1


# r[jetstream.wireformat.level]
@pytest.mark.parametrize("bad", [5, 6, 0x80, 0xFF])
def test_level_invalid_rejected(bad):
    """r[jetstream.wireformat.level]: any value but 0..4 MUST be rejected."""
    err = decode_error(jw.Level, bytes([bad]))
    assert (err.path, err.offset) == ("Level", 0)
    err = decode_error(LevelHolder, bytes([bad]))
    assert err.path == "LevelHolder.level"
    with pytest.raises(jw.DecodeError):
        jw.decode(jw.BacktraceFrame, H("0000 0000 0000 0000 0000 0000 0000") + bytes([bad]))


# r[jetstream.wireformat.level] r[jetstream.wireformat.frame]
@pytest.mark.parametrize("bad", [5, 0xFF])
def test_level_invalid_offset_is_the_level_byte(bad):
    """r[jetstream.wireformat.level]: the error points at the level byte."""
    err = decode_error(LevelHolder, bytes([bad]))
    assert (err.path, err.offset) == ("LevelHolder.level", 0)
    # Error: message 0..1, code 2, help 3, url 4, intern_table 5..8, frame count 9..10,
    # msg 11..12, five u16 13..22, fields count 23..24, level at 25.
    data = H("0000 00 00 00 0100 0000 0100 0000 0000 0000 0000 0000 0000 0000") + bytes([bad])
    err = decode_error(jw.Error, data)
    assert (err.path, err.offset) == ("Error.backtrace.frames[0].level", 25)


# --------------------------------------------------------------------------------------------
# Box and URL
# --------------------------------------------------------------------------------------------


def test_box_recursive_struct_is_transparent():
    """r[jetstream.wireformat.box]: a boxed (recursive) value is written exactly as its content."""
    tree = Tree(1, [Tree(2, []), Tree(3, [Tree(4, [])])])
    golden = H("01 0200" "02 0000" "03 0100" "04 0000")
    roundtrip(tree, Tree, golden)
    assert tree.byte_size() == len(golden)


def test_box_recursive_enum_is_transparent():
    """r[jetstream.wireformat.box]: ``Add(Box<Expr>, Box<Expr>)`` is tag 01 then two Exprs, no framing."""
    expr = Expr.Add(Expr.Lit(1), Expr.Add(Expr.Lit(2), Expr.Lit(3)))
    golden = H("01" "00 01" "01" "00 02" "00 03")
    roundtrip(expr, Expr, golden)
    assert jw.encode(Expr.Lit(9)) == H("00 09")


def test_url():
    """r[jetstream.wireformat.url]: the URL's string, per the string encoding."""
    u = jw.Url("https://example.com/a?b=1")
    golden = H("1900 68747470733a2f2f6578616d706c652e636f6d2f613f623d31")
    got = roundtrip(u, jw.Url, golden)
    assert isinstance(got, jw.Url)
    assert jw.encode(u) == golden
    assert jw.byte_size(u, jw.Url) == 2 + 25
    roundtrip(Link(id=7, url=u), Link, H("07") + golden)


@pytest.mark.parametrize(
    "text",
    ["not a url", "", "example.com/path", "http://", "https://exa mple.com/"],
    ids=["words", "empty", "no-scheme", "no-host", "space"],
)
def test_url_unparsable_rejected(text):
    """r[jetstream.wireformat.url]: decoding MUST fail when the string is not a URL."""
    raw = text.encode()
    err = decode_error(jw.Url, bytes([len(raw), 0]) + raw)
    assert (err.path, err.offset) == ("Url", 0)
    err = decode_error(Link, H("01") + bytes([len(raw), 0]) + raw)
    assert (err.path, err.offset) == ("Link.url", 1)


def test_url_not_a_url_golden():
    """r[jetstream.wireformat.url]: the brief's exact case, "not a url" = 09 00 6e6f7420612075726c."""
    err = decode_error(jw.Url, H("0900 6e6f7420612075726c"))
    assert (err.path, err.offset) == ("Url", 0)


# --------------------------------------------------------------------------------------------
# Whole input
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tp, data, label, end",
    [
        (jw.u16, "0100 00", "u16", 2),
        (bool, "01 01", "bool", 1),
        (str, "0100 61 ff", "str", 3),
        (list[str], "0100 0000 00", "list[str]", 4),
        (Flags, "0100 01 00", "Flags", 3),
        (Shape, "00 00", "Shape", 1),
        (jw.IpAddr, "04 7f000001 00", "IpAddr", 5),
        (jw.u8 | None, "00 00", "Optional[u8]", 1),
    ],
)
def test_trailing_bytes_rejected(tp, data, label, end):
    """r[jetstream.wireformat.trait]: decode reads one complete value and must use the whole
    input; bytes after it are an error at the offset where the value ended."""
    err = decode_error(tp, H(data))
    assert (err.path, err.offset) == (label, end)
    _value, got_end = jw.decode_prefix(tp, H(data))
    assert got_end == end


def test_trailing_bytes_rejected_by_class_decode():
    """r[jetstream.wireformat.struct]: ``Cls.decode`` uses the whole input too."""
    with pytest.raises(jw.DecodeError) as info:
        Point.decode(H("0100 feffffff 0100 70 0100 09 00"))
    assert (info.value.path, info.value.offset) == ("Point", 12)


def test_errors_are_value_errors():
    """r[jetstream.wireformat.trait]: decode/encode failures are WireErrors (ValueError)."""
    assert issubclass(jw.DecodeError, jw.WireError)
    assert issubclass(jw.EncodeError, jw.WireError)
    assert issubclass(jw.WireError, ValueError)
    assert issubclass(jw.SchemaError, TypeError)

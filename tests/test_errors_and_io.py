"""Errors that say what and where; files, streams and explain."""

from __future__ import annotations

import asyncio
import io
from typing import Annotated, Any, Optional

import pytest

import jetwire as jw
from jetwire import u8, u16, u32, wireenum, wireformat


@wireformat
class Twalk:
    fid: u32
    newfid: u32
    wnames: list[str]


@wireenum
class Chain:
    class End:
        value: u32

    class Link:
        next: Chain


@wireformat
class Node:
    children: list[Node]


def test_decode_error_names_path_and_offset_of_a_bad_string() -> None:
    data = bytes.fromhex("01000000 02000000 0300 0100 61 0200 6262 0200 c328")
    with pytest.raises(jw.DecodeError) as info:
        Twalk.decode(data)
    assert (info.value.path, info.value.offset) == ("Twalk.wnames[2]", 19)
    assert "UTF-8" in info.value.reason
    assert str(info.value) == f"Twalk.wnames[2]: {info.value.reason} (at byte 19)"


def test_encode_error_names_path_and_offset() -> None:
    with pytest.raises(jw.EncodeError) as info:
        Twalk(1, 2, ["a", "b" * 70000]).encode()
    assert info.value.path == "Twalk.wnames[1]" and info.value.offset == 13
    assert "65,535" in info.value.reason


def test_wrong_types_are_encode_errors_not_attribute_errors() -> None:
    with pytest.raises(jw.EncodeError, match="expected str, got int"):
        Twalk(1, 2, [5]).encode()  # type: ignore[list-item]
    with pytest.raises(jw.EncodeError, match="expected a list"):
        Twalk(1, 2, "abc").encode()  # type: ignore[arg-type]
    with pytest.raises(jw.EncodeError, match="expected Twalk"):
        jw.encode(object(), Twalk)


def test_wire_errors_are_value_errors_and_pickle() -> None:
    import pickle

    err = jw.DecodeError("bad", "X.y", 3)
    assert isinstance(err, ValueError)
    again = pickle.loads(pickle.dumps(err))
    assert (again.reason, again.path, again.offset) == ("bad", "X.y", 3)


def test_leftover_bytes_are_refused_by_decode_but_not_decode_prefix() -> None:
    data = jw.encode(7, u16) + b"\xff"
    with pytest.raises(jw.DecodeError, match="1 byte left over after a complete u16") as info:
        jw.decode(u16, data)
    assert info.value.offset == 2
    assert jw.decode_prefix(u16, data) == (7, 2)
    assert jw.decode_prefix(u16, b"\x00" + data, 1) == (7, 3)


def test_deep_nesting_is_a_decode_error_not_a_recursion_error() -> None:
    data = b"\x01" * 100_000 + bytes.fromhex("00 07000000")
    with pytest.raises(jw.DecodeError, match="nesting too deep"):
        Chain.decode(data)
    shallow = b"\x01" * 50 + bytes.fromhex("00 07000000")
    value = Chain.decode(shallow)
    for _ in range(50):
        assert isinstance(value, Chain.Link)
        value = value.next
    assert value == Chain.End(7)


def test_a_cycle_is_an_encode_error() -> None:
    loop = Node([])
    loop.children.append(loop)
    with pytest.raises(jw.EncodeError, match="nesting too deep"):
        loop.encode()


def test_huge_declared_lengths_fail_without_allocating() -> None:
    with pytest.raises(jw.DecodeError, match="32 MiB"):
        jw.decode(bytes, b"\xff\xff\xff\xff")
    with pytest.raises(jw.DecodeError, match="unexpected end"):
        jw.decode(list[u32], b"\xff\xff")


def test_duplicate_map_keys_would_lose_data_and_are_refused() -> None:
    data = bytes.fromhex("0200 0100 61 01 0100 61 02")
    with pytest.raises(jw.DecodeError, match="duplicate key") as info:
        jw.decode(dict[str, u8], data)
    assert info.value.offset == 6 and info.value.path == "dict[str, u8][1].key"


def test_decode_accepts_bytearray_and_memoryview() -> None:
    data = Twalk(1, 2, ["x"]).encode()
    assert Twalk.decode(bytearray(data)) == Twalk(1, 2, ["x"])
    assert Twalk.decode(memoryview(b"\x00" + data)[1:]) == Twalk(1, 2, ["x"])


def test_explain_shows_each_value_and_where_it_stopped() -> None:
    good = Twalk(1, 2, ["ab"]).encode()
    text = jw.explain(Twalk, good)
    assert "    10  02 00 61 62" in text and "Twalk.wnames[0] = 'ab'" in text
    assert text.splitlines()[-1].startswith("decoded: Twalk(")
    bad = good[:-1]
    text = jw.explain(Twalk, bad)
    assert "Twalk.wnames.len = 1" in text
    assert text.splitlines()[-1].strip().startswith("10  02 00 61")
    assert "error: Twalk.wnames[0]: unexpected end of data" in text


def test_reading_values_one_by_one_from_a_file() -> None:
    values = [Twalk(1, 2, ["a"]), Twalk(3, 4, []), Twalk(5, 6, ["b", "cd"])]
    buffer = io.BytesIO()
    for v in values:
        v.encode_to(buffer)
    buffer.write(b"\x01\x00")
    buffer.seek(0)
    assert [Twalk.decode_from(buffer) for _ in values] == values
    with pytest.raises(jw.DecodeError, match="unexpected end") as info:
        Twalk.decode_from(buffer)
    assert info.value.path == "Twalk.fid"
    with pytest.raises(EOFError):
        Twalk.decode_from(buffer)
    assert jw.read_value(u16, io.BytesIO(b"\x05\x00")) == 5


def test_reading_from_an_asyncio_stream_consumes_only_the_value() -> None:
    async def scenario() -> None:
        reader = asyncio.StreamReader()
        reader.feed_data(Twalk(1, 2, ["abc"]).encode() + b"\x09\x00rest")
        reader.feed_eof()
        assert await Twalk.decode_async(reader) == Twalk(1, 2, ["abc"])
        assert await jw.read_value_async(u16, reader) == 9
        assert await reader.read() == b"rest"

        cut = asyncio.StreamReader()
        cut.feed_data(Twalk(1, 2, ["abc"]).encode()[:-1])
        cut.feed_eof()
        with pytest.raises(jw.DecodeError, match="unexpected end"):
            await Twalk.decode_async(cut)

    asyncio.run(scenario())


def test_custom_codec_reads_from_streams_too() -> None:
    @wireformat
    class WithLevel:
        frame: jw.BacktraceFrame
        note: Optional[str]

    value = WithLevel(jw.BacktraceFrame("m", 0, 0, 0, 0, 1, (), jw.Level.WARN), "n")
    assert WithLevel.decode_from(io.BytesIO(value.encode())) == value


def test_encode_needs_a_type_for_values_that_do_not_say_it() -> None:
    with pytest.raises(jw.EncodeError, match="pass type="):
        jw.encode(5)
    with pytest.raises(jw.EncodeError, match="pass type="):
        jw.encode([1])
    assert jw.encode(True) == b"\x01" and jw.encode("a") == b"\x01\x00a"


def test_decode_prefix_refuses_offsets_outside_the_data() -> None:
    data = Twalk(1, 2, []).encode()
    for offset in (-len(data), -1, len(data) + 1):
        with pytest.raises(ValueError, match="outside"):
            Twalk.decode_prefix(data, offset)
        with pytest.raises(ValueError, match="outside"):
            jw.decode_prefix(Twalk, data, offset)
    with pytest.raises(jw.DecodeError, match="unexpected end"):
        Twalk.decode_prefix(data, len(data))


def test_encode_async_writes_what_decode_async_reads() -> None:
    import socket

    async def scenario() -> None:
        left, right = socket.socketpair()
        reader, writer = await asyncio.open_connection(sock=left)
        _, peer_writer = await asyncio.open_connection(sock=right)
        sent = Twalk(1, 2, ["a", "bc"])
        assert await sent.encode_async(peer_writer) == len(sent.encode())
        assert await jw.write_value_async(7, peer_writer, u16) == 2
        assert await Twalk.decode_async(reader) == sent
        assert await jw.read_value_async(u16, reader) == 7
        for w in (writer, peer_writer):
            w.close()
            await w.wait_closed()

    asyncio.run(scenario())


def test_user_code_never_sees_a_value_read_past_the_end() -> None:
    """decode() checks the end of the buffer once, at the end, only where no user code runs
    before it returns (fastpath._no_user_code): a __post_init__ must never get a cut string."""
    seen: list[str] = []

    @jw.wireformat
    class Named:
        name: str

        def __post_init__(self) -> None:
            seen.append(self.name)

    @jw.wireformat
    class Pair:
        first: Named
        second: Named

    data = Pair(Named("ab"), Named("cd")).encode()
    for cut in range(len(data)):
        with pytest.raises(jw.DecodeError):
            Pair.decode(data[:cut])
    assert seen and set(seen) <= {"ab", "cd"}


def test_a_hash_of_the_users_never_sees_a_value_read_past_the_end() -> None:
    seen: list[str] = []

    @jw.wireformat(order=True)
    class Key:
        name: str

        def __hash__(self) -> int:
            seen.append(self.name)
            return hash(self.name)

    @jw.wireformat
    class Bag:
        keys: frozenset[Key]

    data = Bag(frozenset({Key("ab"), Key("cd")})).encode()
    seen.clear()
    for cut in range(len(data)):
        with pytest.raises(jw.DecodeError):
            Bag.decode(data[:cut])
    assert seen and set(seen) <= {"ab", "cd"}


# -- messages that say it plainly --------------------------------------------------------------


def test_an_untagged_union_is_named_by_its_wire_types() -> None:
    with pytest.raises(jw.SchemaError, match=r"^u8 \| str: a union needs a tag") as info:
        jw.Codec(u8 | str)
    assert "Annotated |" not in str(info.value)


@pytest.mark.parametrize("function", ["decode", "decode_prefix", "explain"])
@pytest.mark.parametrize("data", [b"\x01", bytearray(b"\x01"), memoryview(b"\x01")])
def test_swapped_arguments_are_named_as_swapped(function: str, data: bytes) -> None:
    with pytest.raises(jw.SchemaError, match=rf"jetwire\.{function}\(type, data\) takes the type first.*swapped"):
        getattr(jw, function)(data, u8)


@pytest.mark.parametrize(
    ("call", "value_class"),
    [
        (lambda: jw.read_value(io.BytesIO(b"\x01"), u8), "BytesIO"),
        (lambda: jw.encode(u8, 3), "int"),
        (lambda: jw.byte_size(u8, 3), "int"),
        (lambda: jw.Codec(b"\x01"), "bytes"),
        (lambda: jw.decode(7, b"\x01"), "int"),
    ],
)
def test_a_value_where_a_type_goes_is_named_as_a_value(call: Any, value_class: str) -> None:
    """Every entry point, not only decode: read_value(file, type) or encode(type, value)
    must not answer "cannot encode <_io.BytesIO object>"."""
    with pytest.raises(jw.SchemaError, match=rf"got the value .* \(of class {value_class}\) where a type goes.*swapped"):
        call()


def test_a_variant_of_another_enum_is_named_with_its_enum() -> None:
    @wireenum
    class Other:
        class End:
            value: u32

    with pytest.raises(jw.EncodeError, match=r"expected Chain \(End, Link\), got Other\.End \(at byte 0\)"):
        jw.encode(Other.End(value=1), Chain)


@pytest.mark.parametrize("extra", [1, 2])
def test_left_over_bytes_are_counted_in_words_that_agree(extra: int) -> None:
    noun = "byte" if extra == 1 else "bytes"
    data = jw.encode(7, u16) + b"\xff" * extra
    for decode in (lambda: jw.decode(u16, data), lambda: Twalk.decode(Twalk(1, 2, []).encode() + b"\xff" * extra)):
        with pytest.raises(jw.DecodeError, match=rf"\b{extra} {noun} left over"):
            decode()
    assert f"error: u16: {extra} {noun} left over" in jw.explain(u16, data)
    with pytest.raises(jw.DecodeError, match=r"u32 needs 4 bytes, 1 left"):
        jw.decode(u32, b"\x00")
    with pytest.raises(jw.DecodeError, match=r"u8 needs 1 byte, 0 left"):
        jw.decode(tuple[u8, u8], b"\x00")


def test_a_map_entry_is_labelled_by_its_index_for_key_and_value_alike() -> None:
    data = jw.encode({"a": 1, "b": 2}, dict[str, u8])
    lines = jw.explain(dict[str, u8], data).splitlines()
    labels = [line.split("  ")[-1].split(" = ")[0].strip() for line in lines[2:-1]]
    assert [label for label in labels if not label.endswith(".len")] == [
        "dict[str, u8][0].key", "dict[str, u8][0].value", "dict[str, u8][1].key", "dict[str, u8][1].value",
    ]
    with pytest.raises(jw.EncodeError) as info:
        jw.encode({"a": 1, "b": 300}, dict[str, u8])
    assert info.value.path == "dict[str, u8][1].value"


@pytest.mark.parametrize("width", [jw.u8, jw.u128, jw.i64, jw.f32, jw.f64])
@pytest.mark.parametrize("huge", [10**400, -(10**5000)], ids=["1e400", "-1e5000"])
def test_a_huge_int_is_an_encode_error_that_names_its_size(width: object, huge: int) -> None:
    """Printing an int of over 4,300 digits raises ValueError, and float() of one over 1e308
    raises OverflowError: neither may escape, on any path."""
    bits = rf"an int of {huge.bit_length()} bits"
    with pytest.raises(jw.EncodeError, match=bits):
        jw.encode(huge, width)
    with pytest.raises(jw.EncodeError, match=rf"\[1\]: {bits}"):
        jw.encode([0, huge], list[width])  # type: ignore[valid-type]
    with pytest.raises(jw.EncodeError, match=bits):
        jw.write_value([0, huge], io.BytesIO(), list[width])  # type: ignore[valid-type]


class CountingByteCodec:
    """One byte, counting every call: the codec protocol says encode and decode may run again."""

    def __init__(self) -> None:
        self.encodes = 0
        self.decodes = 0

    def byte_size(self, value: int) -> int:
        return 1

    def encode(self, value: int, writer: Any) -> None:
        self.encodes += 1
        writer.write(bytes([value]))

    def decode(self, reader: Any) -> int:
        self.decodes += 1
        return reader.read(1)[0]  # type: ignore[no-any-return]


def test_a_user_codec_runs_again_when_the_fast_path_gives_up() -> None:
    """The generated code calls the codec, meets the bad field after it, and hands the value to
    the interpreter, which calls the codec again (decoding: once with no bytes, which asks for
    one, then replayed with it), as the codec protocol (markers.WireCodec) says."""
    counting = CountingByteCodec()

    @wireformat
    class Counted:
        first: Annotated[int, jw.With(counting)]
        then: u8

    assert Counted.decode(b"\x05\x06") == Counted(5, 6)
    assert counting.decodes == 1  # good input: once
    with pytest.raises(jw.DecodeError, match=r"Counted\.then"):
        Counted.decode(b"\x05")  # the byte for `then` is missing
    assert counting.decodes == 1 + 3  # generated code, then the interpreter's two tries
    assert Counted(5, 6).encode() == b"\x05\x06"
    assert counting.encodes == 1
    with pytest.raises(jw.EncodeError, match=r"Counted\.then"):
        Counted(5, 300).encode()  # 300 is no u8
    assert counting.encodes == 1 + 2  # generated code, then the interpreter

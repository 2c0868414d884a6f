"""Upstream's other Rust types and their Python spellings, with golden bytes worked out by hand.

Upstream (Rust) also encodes ``usize``/``isize`` (8 bytes on its 64-bit platforms, so u64/i64
on the wire: r[jetstream.wireformat.u64], r[jetstream.wireformat.i64]), ``HashMap``/``HashSet``
(a map or set: r[jetstream.wireformat.map], r[jetstream.wireformat.set], in whatever order the
hash table holds them), ``VecDeque``/``BinaryHeap`` (a Vec: r[jetstream.wireformat.vec]) and
``PhantomData`` (nothing: r[jetstream.wireformat.unit]).
"""

import collections
import io
import typing
from typing import Generic, TypeVar

import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st

import jetwire as jw
from jetwire.compiler import interpret
from jetwire.compiler.planner import plan
from jetwire.testing import strategy

H = bytes.fromhex
T = TypeVar("T")


def roundtrip(value, tp, golden):
    assert jw.encode(value, tp) == golden
    assert jw.byte_size(value, tp) == len(golden)
    got = jw.decode(tp, golden)
    assert got == value and type(got) is type(value)
    assert jw.decode_prefix(tp, b"\xaa" + golden + b"\xbb", 1) == (value, 1 + len(golden))
    return got


# --------------------------------------------------------------------------------------------
# usize / isize: u64 / i64 on the wire, named usize / isize in messages


@pytest.mark.parametrize(
    "tp, value, golden",
    [
        (jw.usize, 0, "00 00 00 00 00 00 00 00"),
        (jw.usize, 0x0102030405060708, "08 07 06 05 04 03 02 01"),  # little-endian
        (jw.usize, 2**64 - 1, "ff ff ff ff ff ff ff ff"),
        (jw.isize, -2, "fe ff ff ff ff ff ff ff"),  # two's complement
        (jw.isize, -(2**63), "00 00 00 00 00 00 00 80"),
        (jw.isize, 2**63 - 1, "ff ff ff ff ff ff ff 7f"),
    ],
)
def test_usize_isize_are_eight_bytes_little_endian(tp, value, golden):
    roundtrip(value, tp, H(golden))


@jw.wireformat
class Sizes:
    len: jw.usize
    delta: jw.isize


def test_usize_isize_fields_golden():
    roundtrip(Sizes(len=3, delta=-1), Sizes, H("03 00 00 00 00 00 00 00" "ff ff ff ff ff ff ff ff"))


@pytest.mark.parametrize(
    "value, says",
    [
        (Sizes(len=-1, delta=0), "-1 is out of range for usize (0..18446744073709551615)"),
        (Sizes(len=2**64, delta=0), "18446744073709551616 is out of range for usize"),
        (Sizes(len=0, delta=2**63), "9223372036854775808 is out of range for isize"),
    ],
)
def test_out_of_range_is_refused_in_the_declarations_words(value, says):
    with pytest.raises(jw.EncodeError) as info:
        jw.encode(value)
    assert says in str(info.value)
    assert info.value.path in ("Sizes.len", "Sizes.delta")


def test_short_usize_names_usize():
    with pytest.raises(jw.DecodeError) as info:
        jw.decode(Sizes, H("03 00 00 00"))
    assert info.value.path == "Sizes.len" and "usize" in str(info.value)


def test_usize_and_u64_are_distinct_markers_with_the_same_bytes():
    assert plan(jw.usize).label == "usize" and plan(jw.u64).label == "u64"
    assert jw.encode(5, jw.usize) == jw.encode(5, jw.u64)
    assert jw.encode(-5, jw.isize) == jw.encode(-5, jw.i64)


def test_usize_marker_goes_in_annotated():
    @jw.wireformat
    class Marked:
        n: typing.Annotated[int, jw.usize]

    roundtrip(Marked(9), Marked, H("09 00 00 00 00 00 00 00"))


# --------------------------------------------------------------------------------------------
# HashMap / HashSet: dict / set (written in key order, read in any order)


def test_hashmap_is_dict_written_in_key_order():
    roundtrip({"b": 2, "a": 1}, dict[str, jw.u8], H("0200" "0100 61 01" "0100 62 02"))


def test_hashmap_from_rust_in_hash_order_decodes():
    """A Rust HashMap iterates in hash order: any order must decode, and keeps it."""
    got = jw.decode(dict[str, jw.u8], H("0200" "0100 62 02" "0100 61 01"))
    assert got == {"b": 2, "a": 1} and list(got) == ["b", "a"]


def test_hashset_is_set_any_order_on_decode():
    roundtrip({3, 1}, set[jw.u16], H("0200 0100 0300"))
    assert jw.decode(set[jw.u16], H("0200 0300 0100")) == {1, 3}


# --------------------------------------------------------------------------------------------
# VecDeque: collections.deque[T]; BinaryHeap: list[T]


@jw.wireformat
class Point:
    x: jw.u8
    y: jw.u8


@pytest.mark.parametrize(
    "tp, value, golden",
    [
        (collections.deque[jw.u16], collections.deque([1, 0x0203]), "0200 0100 0302"),
        (collections.deque[jw.u8], collections.deque([7, 8, 9]), "0300 07 08 09"),
        (collections.deque[str], collections.deque(["a", "bc"]), "0200 0100 61 0200 6263"),
        (collections.deque[Point], collections.deque([Point(1, 2)]), "0100 01 02"),
        (typing.Deque[jw.i16], collections.deque([-1]), "0100 ffff"),
        (collections.deque[jw.u32], collections.deque(), "0000"),
    ],
    ids=["u16", "u8", "str", "struct", "typing.Deque", "empty"],
)
def test_vecdeque_is_a_vec_and_decodes_to_a_deque(tp, value, golden):
    got = roundtrip(value, tp, H(golden))
    assert type(got) is collections.deque
    # the generated fast path makes the deque itself (the interpreter is not needed)
    unit = jw.Codec(tp).unit
    fast, end = unit.dec(H(golden), 0)
    assert type(fast) is collections.deque and fast == value and end == len(H(golden))
    view, end = unit.dec_view(memoryview(H(golden)), 0)
    assert type(view) is collections.deque and view == value and end == len(H(golden))
    out = io.BytesIO()
    assert jw.write_value(value, out, tp) == len(H(golden)) and out.getvalue() == H(golden)
    assert jw.read_value(tp, io.BytesIO(H(golden))) == value
    assert unit.enc(value) == H(golden)
    node = plan(tp)
    slow, end = interpret.decode_buffer(node, H(golden), 0, node.label)
    assert type(slow) is collections.deque and slow == value


@jw.wireformat
class Queue:
    name: str
    items: collections.deque[jw.u16]


def test_vecdeque_field_golden_and_errors():
    roundtrip(Queue("q", collections.deque([5])), Queue, H("0100 71" "0100 0500"))
    with pytest.raises(jw.DecodeError) as info:
        jw.decode(Queue, H("0100 71" "0200 0500"))
    assert info.value.path == "Queue.items[1]"
    with pytest.raises(jw.EncodeError) as enc:
        jw.encode(Queue("q", collections.deque([70000])))
    assert enc.value.path == "Queue.items[0]"
    assert plan(Queue).fields[1].node.label == "deque[u16]"


def test_a_deque_is_not_a_key():
    with pytest.raises(jw.SchemaError, match="not hashable"):
        plan(set[collections.deque[jw.u8]])


def test_deque_of_nothing_is_accepted_and_budgeted_like_list_of_nothing():
    codec = jw.Codec(collections.deque[None], max_zero_width_elements=3)
    assert codec.decode(H("0300")) == collections.deque([None, None, None])
    with pytest.raises(jw.DecodeError, match="zero-width"):
        codec.decode(H("0400"))


def test_binaryheap_is_a_list_in_the_senders_order():
    """Rust's BinaryHeap is a Vec of its internal array: the order is the sender's heap order,
    which list[T] keeps (heapq can take it from there)."""
    golden = H("0300 05000000 03000000 04000000")
    got = jw.decode(list[jw.u32], golden)
    assert got == [5, 3, 4]
    assert jw.encode(got, list[jw.u32]) == golden


# --------------------------------------------------------------------------------------------
# PhantomData: a None field, no bytes


@jw.wireformat
class Typed(Generic[T]):
    id: jw.u8
    marker: None = None  # PhantomData<T>
    tail: jw.u16 = 0


def test_phantomdata_is_none_and_zero_bytes():
    roundtrip(Typed[str](1, None, 0x0302), Typed[str], H("01 0203"))
    assert jw.encode(None) == b"" and jw.byte_size(None, type(None)) == 0
    with pytest.raises(jw.EncodeError) as info:
        jw.encode(Typed[str](1, 5, 0), Typed[str])
    assert info.value.path == "Typed[str].marker"


# --------------------------------------------------------------------------------------------
# jetwire.testing.strategy for the new spellings


NEW_SPELLINGS = [jw.usize, jw.isize, collections.deque[jw.u16], collections.deque[Point], Queue, Sizes]


def test_strategy_bounds_of_usize_isize():
    for tp, low, high in ((jw.usize, 0, 2**64 - 1), (jw.isize, -(2**63), 2**63 - 1)):
        assert find(strategy(tp), lambda v, low=low: v <= low) == low
        assert find(strategy(tp), lambda v, high=high: v >= high) == high


def test_strategy_draws_deques():
    value = find(strategy(collections.deque[jw.u16]), lambda v: len(v) >= 2)
    assert type(value) is collections.deque
    queue = find(strategy(Queue), lambda q: len(q.items) >= 1)
    assert type(queue.items) is collections.deque


@pytest.mark.parametrize("tp", NEW_SPELLINGS, ids=lambda tp: plan(tp).label)
@settings(max_examples=60, database=None)
@given(data=st.data())
def test_round_trip_and_both_paths_agree(tp, data):
    node = plan(tp)
    value = data.draw(strategy(tp))
    encoded = jw.encode(value, tp)
    assert interpret.encode_checked(node, value, node.label) == encoded
    assert jw.decode(tp, encoded) == value
    assert interpret.decode_buffer(node, encoded, 0, node.label) == (value, len(encoded))
    assert jw.read_value(tp, io.BytesIO(encoded)) == value
    # any bytes: a value or a DecodeError, the same from both paths
    junk = data.draw(st.binary(max_size=24))
    try:
        fast = jw.decode(tp, junk)
    except jw.DecodeError:
        fast = None
    try:
        slow, end = interpret.decode_buffer(node, junk, 0, node.label)
        if end != len(junk):
            slow = None
    except jw.DecodeError:
        slow = None
    assert fast == slow

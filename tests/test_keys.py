"""Set members and map keys: the order they are written in, and keys crafted to share a hash.

Upstream writes a BTreeMap or BTreeSet in the order of its keys' derived ``Ord`` (fields in
declaration order; an enum by variant index, then fields; ``None`` before ``Some``; strings
and bytes bytewise), so that order is part of the bytes. The golden bytes below are worked
out by hand from those rules, not taken from jetwire."""

from __future__ import annotations

import enum
import io
import ipaddress
from typing import Any, Optional

import pytest

import jetwire
from jetwire import Codec, DecodeError, f64, fsstr, u8, u16, u128, wireenum, wireformat

P61 = 2**61 - 1  # ints this far apart share a hash value


@wireformat(frozen=True)
class Pair:
    a: u8
    b: str


@wireenum
class Key:
    @wireformat(frozen=True)
    class Num:
        x: u16

    @wireformat(frozen=True)
    class Empty:
        pass


class Color(enum.Enum):  # defined in the opposite order of its values
    RED = "r"
    GREEN = "g"


@wireformat(frozen=True)
class Tagged:
    color: Color
    extra: Optional[u8]


@wireformat(frozen=True)
class Wide:
    n: u128


def _hex(value: Any, tp: Any) -> str:
    fast = jetwire.encode(value, tp).hex()
    assert fast == _slow_hex(value, tp)  # the fast path and the interpreter write the same order
    return fast


def _slow_hex(value: Any, tp: Any) -> str:
    from jetwire.compiler.interpret import encode_checked

    node = Codec(tp).node
    return encode_checked(node, value, node.label).hex()


def test_frozen_struct_keys_by_fields_in_declaration_order() -> None:
    value = {Pair(2, "a"), Pair(1, "z"), Pair(1, "b")}
    assert _hex(value, set[Pair]) == "0300" "01010062" "0101007a" "02010061"


def test_enum_keys_by_variant_index_then_fields() -> None:
    value = frozenset({Key.Empty(), Key.Num(5), Key.Num(1)})
    assert _hex(value, frozenset[Key]) == "0300" "000100" "000500" "01"


def test_map_with_struct_keys_writes_each_value_after_its_key() -> None:
    value = {Pair(9, "x"): 1, Pair(3, "y"): 2}
    assert _hex(value, dict[Pair, u8]) == "0200" "03010079" "02" "09010078" "01"


def test_option_keys_none_first() -> None:
    assert _hex({5: 1, None: 2, 0: 3}, dict[Optional[u8], u8]) == "0300" "0002" "010003" "010501"


def test_plain_enum_members_by_definition_order_inside_a_struct() -> None:
    value = {Tagged(Color.GREEN, 5), Tagged(Color.RED, None), Tagged(Color.GREEN, None)}
    assert _hex(value, set[Tagged]) == "0300" "0000" "0100" "010105"


def test_tuple_keys_item_by_item() -> None:
    value = {(1, "b"), (0, "z"), (1, "a")}
    assert _hex(value, set[tuple[u8, str]]) == "0300" "000100" "7a" "010100" "61" "010100" "62"


def test_tuples_of_enums_as_vec_keys() -> None:
    value = {(Key.Empty(),), (Key.Num(2), Key.Num(1)), ()}
    # a Vec: element by element, a prefix before what extends it
    assert _hex(value, set[tuple[Key, ...]]) == "0300" "0000" "0200" "000200" "000100" "0100" "01"


def test_strings_bytewise() -> None:
    value = {"\U0001f600", "z", "é", "\uffff"}
    assert _hex(value, set[str]) == "0400" "01007a" "0200c3a9" "0300efbfbf" "0400f09f9880"


def test_escaped_bytes_ordered_as_the_bytes_they_stand_for() -> None:
    # code point order would put é (U+00E9) before U+DC80, which stands for the byte 0x80
    assert _hex({"é", "\udc80"}, set[fsstr]) == "0200" "010080" "0200c3a9"


def test_frozenset_keys_as_sorted_sequences() -> None:
    # a BTreeSet compares its members in order: {} < {1, 3} < {2}; Python's < on frozensets
    # means "subset of" and would leave these unordered
    value = {frozenset({2}), frozenset({1, 3}), frozenset()}
    assert _hex(value, set[frozenset[u8]]) == "0300" "0000" "02000103" "010002"


def test_float_keys_in_total_order() -> None:
    # Rust's floats have no Ord (no BTreeSet<f64>); jetwire writes IEEE 754 totalOrder
    # (total_cmp), so a NaN has one place and equal sets give equal bytes
    nan = float("nan")
    assert _hex({nan, 1.0, -0.0, float("-inf")}, set[f64]) == (
        "0400" "000000000000f0ff" "0000000000000080" "000000000000f03f" "000000000000f87f"
    )


def test_recursive_frozen_struct_keys() -> None:
    leaf_a, leaf_b = Node(1, ()), Node(0, (Node(7, ()),))
    value = {Node(1, (leaf_a,)), leaf_b, leaf_a}
    assert _hex(value, set[Node]) == (
        "0300" "00" "0100" "07" "0000" "01" "0000" "01" "0100" "01" "0000"
    )


@wireformat(frozen=True)
class Node:
    value: u8
    children: tuple[Node, ...]


def test_unsorted_input_decodes_in_the_order_received() -> None:
    data = bytes.fromhex("0200" "0101007a" "01010062")
    decoded = jetwire.decode(dict[Pair, None], data)
    assert list(decoded) == [Pair(1, "z"), Pair(1, "b")]


# Keys crafted to share one hash value: decoding must refuse them, not take quadratic time.


def _colliding_u128(n: int) -> list[int]:
    return [P61 * i for i in range(1, n + 1)]


def _count(n: int) -> bytes:
    return n.to_bytes(2, "little")


def _u128s(keys: list[int]) -> bytes:
    return _count(len(keys)) + b"".join(k.to_bytes(16, "little") for k in keys)


def _refused(tp: Any, data: bytes, path: str, offset: int) -> None:
    with pytest.raises(DecodeError) as caught:
        jetwire.decode(tp, data)
    assert "share one hash value" in caught.value.reason
    assert (caught.value.path, caught.value.offset) == (path, offset)
    assert f"{path}: more than 64 keys share one hash value" in Codec(tp).explain(data)  # the interpreter


def test_set_of_u128_sharing_a_hash_refused() -> None:
    keys = _colliding_u128(200)
    assert len({hash(k) for k in keys}) == 1
    _refused(set[u128], _u128s(keys), "set[u128][64]", 2 + 64 * 16)
    _refused(frozenset[u128], _u128s(keys), "frozenset[u128][64]", 2 + 64 * 16)


def test_map_of_u128_keys_sharing_a_hash_refused() -> None:
    keys = _colliding_u128(100)
    data = _count(100) + b"".join(k.to_bytes(16, "little") + b"\x01" for k in keys)
    _refused(dict[u128, u8], data, "dict[u128, u8][64].key", 2 + 64 * 17)


def test_tuples_holding_colliding_keys_refused() -> None:
    keys = _colliding_u128(100)
    data = _count(100) + b"".join(k.to_bytes(16, "little") + b"\x00" for k in keys)
    _refused(set[tuple[u128, u8]], data, "set[tuple[u128, u8]][64]", 2 + 64 * 17)


def test_frozen_structs_holding_colliding_keys_refused() -> None:
    _refused(set[Wide], _u128s(_colliding_u128(100)), "set[Wide][64]", 2 + 64 * 16)


def test_ipv6_addresses_sharing_a_hash_refused() -> None:
    keys = _colliding_u128(100)
    data = _count(100) + b"".join(k.to_bytes(16, "big") for k in keys)
    _refused(set[ipaddress.IPv6Address], data, "set[IPv6Address][64]", 2 + 64 * 16)


def test_convert_refuses_colliding_keys() -> None:
    with pytest.raises(jetwire.ConvertError, match="share one hash value"):
        jetwire.convert(_colliding_u128(100), set[u128])
    with pytest.raises(jetwire.ConvertError, match="share one hash value"):
        jetwire.convert([[k, 1] for k in _colliding_u128(100)], dict[u128, u8])


def test_up_to_the_bound_colliding_keys_decode() -> None:
    keys = _colliding_u128(64)
    assert jetwire.decode(set[u128], _u128s(keys)) == set(keys)
    assert jetwire.convert(keys, set[u128]) == set(keys)


def test_many_keys_with_distinct_hashes_decode() -> None:
    keys = [i << 70 | i for i in range(5000)]
    assert jetwire.decode(set[u128], _u128s(keys)) == set(keys)
    data = _count(5000) + b"".join(k.to_bytes(16, "little") + b"\x02" for k in keys)
    assert jetwire.decode(dict[u128, u8], data) == dict.fromkeys(keys, 2)


def test_encoding_a_map_of_colliding_keys_gives_sorted_bytes() -> None:
    keys = _colliding_u128(300)
    value = {k: 1 for k in reversed(keys)}
    data = jetwire.encode(value, dict[u128, u8])
    assert data == _count(300) + b"".join(k.to_bytes(16, "little") + b"\x01" for k in keys)


def test_colliding_keys_refused_from_views_and_files() -> None:
    data = _u128s(_colliding_u128(100))
    for source in (memoryview(data), bytearray(data)):
        with pytest.raises(DecodeError, match="share one hash value") as caught:
            jetwire.decode(set[u128], source)
        assert caught.value.offset == 2 + 64 * 16
    with pytest.raises(DecodeError, match="share one hash value"):
        jetwire.read_value(set[u128], io.BytesIO(data))

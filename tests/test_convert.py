"""``jetwire.to_builtins`` and ``jetwire.convert``: wire values as JSON-ready data and back.

* For every type of the property tests, ``convert(to_builtins(v, T), T) == v``, the data goes
  through ``json.dumps(allow_nan=False)`` and back unchanged, and the value rebuilt encodes to
  the same bytes.
* Any data, valid data with a part changed, added or removed included, gives a value that
  encodes, or a ``ConvertError``; nothing else.
* Each spelling of ``docs/convert.md`` holds, and bad data is refused naming the path.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import ipaddress
import json
import math
import pickle
import struct
from typing import Annotated, Any, Optional

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_properties import (
    TYPES,
    U24,
    Chain,
    Collections,
    Color,
    Custom,
    Late,
    Point,
    Shape,
    ShapeFrame,
    Tree,
    WithSkip,
    _id,
    same,
)

import jetwire as jw
from jetwire import p9
from jetwire.testing import strategy

UTC = datetime.timezone.utc
types_param = pytest.mark.parametrize("tp", TYPES, ids=[_id(t) for t in TYPES])


def assert_plain(data: Any, where: str = "") -> None:
    """``data`` is made of JSON's own types only: no subclasses, no tuples, finite floats."""
    kind = type(data)
    if kind is dict:
        for key, value in data.items():
            assert type(key) is str, f"{where}: key {key!r}"
            assert_plain(value, f"{where}[{key!r}]")
    elif kind is list:
        for i, item in enumerate(data):
            assert_plain(item, f"{where}[{i}]")
    elif kind is float:
        assert math.isfinite(data), f"{where}: {data!r}"
    else:
        assert data is None or kind in (str, int, bool), f"{where}: {kind.__name__} {data!r}"


# ---------------------------------------------------------------------------------------------
# Round trips over every type


@types_param
@given(data=st.data())
def test_round_trip_through_json(tp: Any, data: st.DataObject) -> None:
    value = data.draw(strategy(tp), label="value")
    plain = jw.to_builtins(value, tp)
    assert_plain(plain)
    text = json.dumps(plain, allow_nan=False)
    back = jw.convert(json.loads(text), tp)
    assert back == value
    assert jw.encode(back, tp) == jw.encode(value, tp)
    assert jw.to_builtins(back, tp) == plain  # one spelling per value


@given(strategy(jw.f64, allow_nan=True), strategy(jw.f32, allow_nan=True))
def test_floats_of_any_kind_round_trip_as_json(f64: float, f32: float) -> None:
    plain = jw.to_builtins((f64, f32), tuple[jw.f64, jw.f32])
    back = jw.convert(json.loads(json.dumps(plain, allow_nan=False)), tuple[jw.f64, jw.f32])
    for before, after in zip((f64, f32), back):
        if math.isnan(before):
            assert math.isnan(after)  # a NaN's sign and payload are not kept
        else:
            assert struct.pack("<d", after) == struct.pack("<d", before)  # -0.0 included


# ---------------------------------------------------------------------------------------------
# Any data in: a value that encodes, or ConvertError

ODD_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=4),
    st.sampled_from([
        -1, 256, 65536, 2**32, 2**64, -(2**127) - 1, 2**128, 0.5, 1e39, "NaN", "Infinity", "nan",
        "RED", "Circle", "Some", "tag", "msg", "x", "1.2.3.4", "::1", "fe80::1%eth0",
        "2020-01-01T00:00:00Z", "1969-12-31T23:59:59Z", "9999-12-31T23:59:59-01:00", "AAAA", "AAA",
        "http://x/", "not a url", "\ud800",
    ]),
)
JSON = st.recursive(
    ODD_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4) | ODD_SCALARS.filter(
        lambda k: isinstance(k, str)), inner, max_size=3),
    max_leaves=8,
)


def changed(draw: st.DrawFn, data: Any) -> Any:
    """``data`` with one part replaced, removed or added."""
    go_in = draw(st.integers(0, 3)) > 0
    if isinstance(data, dict) and data and go_in:
        key = draw(st.sampled_from(sorted(data, key=repr)))
        how = draw(st.sampled_from(["change", "remove", "add"]))
        if how == "remove":
            return {k: v for k, v in data.items() if k != key}
        if how == "add":
            return {**data, draw(st.text(max_size=4)): draw(JSON)}
        return {**data, key: changed(draw, data[key])}
    if isinstance(data, list) and data and go_in:
        at = draw(st.integers(0, len(data) - 1))
        how = draw(st.sampled_from(["change", "remove", "add"]))
        if how == "remove":
            return data[:at] + data[at + 1:]
        if how == "add":
            return data[:at] + [draw(JSON)] + data[at:]
        return data[:at] + [changed(draw, data[at])] + data[at + 1:]
    return draw(JSON)


@types_param
@given(data=st.data())
def test_any_data_gives_a_value_that_encodes_or_convert_error(tp: Any, data: st.DataObject) -> None:
    if data.draw(st.booleans(), label="from a valid value"):
        value = data.draw(strategy(tp, max_size=3, max_text=8, max_bytes=8), label="value")
        obj = changed(data.draw, jw.to_builtins(value, tp))
    else:
        obj = data.draw(JSON, label="data")
    try:
        built = jw.convert(obj, tp)
    except jw.ConvertError:
        return
    encoded = jw.encode(built, tp)  # convert checked all that encoding checks
    assert same(jw.decode(tp, encoded), built)  # and built what decoding would
    assert_plain(jw.to_builtins(built, tp))


# ---------------------------------------------------------------------------------------------
# The spellings of docs/convert.md


@jw.wireformat
class Item:
    sku: jw.u32
    name: str = ""


@jw.wireformat
class Order:
    items: list[Item]
    note: Optional[str] = None
    tags: list[str] = dataclasses.field(default_factory=list)


SPELLINGS: list[tuple[Any, Any, Any]] = [
    (jw.u8, 255, 255),
    (jw.u128, 2**128 - 1, 340282366920938463463374607431768211455),
    (jw.i64, -(2**63), -9223372036854775808),
    (jw.f64, 1.5, 1.5),
    (jw.f64, -0.0, -0.0),
    (jw.f64, math.inf, "Infinity"),
    (jw.f64, -math.inf, "-Infinity"),
    (jw.f32, 0.25, 0.25),
    (bool, True, True),
    (type(None), None, None),
    (str, "héllo", "héllo"),
    (jw.fsstr, b"caf\xe9".decode("utf-8", "surrogateescape"), "caf\udce9"),
    (bytes, b"\x00\xffjet", "AP9qZXQ="),
    (bytes, b"", ""),
    (jw.Url, jw.Url("https://example.com/a?b=c"), "https://example.com/a?b=c"),
    (datetime.datetime, datetime.datetime(2024, 5, 6, 7, 8, 9, 123000, UTC), "2024-05-06T07:08:09.123Z"),
    (datetime.datetime, datetime.datetime(1970, 1, 1, tzinfo=UTC), "1970-01-01T00:00:00.000Z"),
    (ipaddress.IPv4Address, ipaddress.IPv4Address("192.0.2.1"), "192.0.2.1"),
    (ipaddress.IPv6Address, ipaddress.IPv6Address("2001:db8::1"), "2001:db8::1"),
    (jw.IpAddr, ipaddress.IPv6Address("::1"), "::1"),
    (jw.IpAddr, ipaddress.IPv4Address("10.0.0.1"), "10.0.0.1"),
    (jw.SocketAddr, jw.SocketAddrV4(ipaddress.IPv4Address("10.0.0.1"), 80),
     {"SocketAddrV4": {"ip": "10.0.0.1", "port": 80}}),
    (Optional[jw.u8], None, None),
    (Optional[jw.u8], 7, 7),
    (jw.Option[Optional[jw.u8]], None, None),
    (jw.Option[Optional[jw.u8]], jw.Some(None), {"Some": None}),
    (jw.Option[Optional[jw.u8]], jw.Some(7), {"Some": 7}),
    (list[jw.u16], [3, 1, 2], [3, 1, 2]),
    (tuple[jw.u8, str], (1, "a"), [1, "a"]),
    (tuple[jw.u16, ...], (1, 2), [1, 2]),
    (set[jw.u16], {30, 1, 200}, [1, 30, 200]),  # wire order
    (frozenset[Color], frozenset({Color.BLUE, Color.RED}), ["RED", "BLUE"]),  # definition order
    (dict[str, jw.u8], {"b": 1, "a": 2}, {"a": 2, "b": 1}),
    (dict[Color, jw.u8], {Color.GREEN: 1, Color.RED: 2}, {"RED": 2, "GREEN": 1}),
    (dict[jw.u8, str], {2: "b", 1: "a"}, [[1, "a"], [2, "b"]]),
    (dict[tuple[jw.u8, jw.u8], bool], {(1, 2): True}, [[[1, 2], True]]),
    (Color, Color.GREEN, "GREEN"),
    (Point, Point(1, -2), {"x": 1, "y": -2}),
    (Shape, Shape.Circle(1.5), {"Circle": {"radius": 1.5}}),
    (Shape, Shape.Empty(), {"Empty": {}}),
    (Tree, Tree(1, [Tree(2, [])]), {"value": 1, "children": [{"value": 2, "children": []}]}),
    (WithSkip, WithSkip("n", count=3), {"name": "n", "count": 3}),
    (ShapeFrame, ShapeFrame(9, Shape.Rect(2, 3)), {"tag": 9, "msg": {"Shape": {"Rect": {"width": 2, "height": 3}}}}),
    (p9.Tframe, p9.Tframe(1, p9.Tclunk(fid=3)), {"tag": 1, "msg": {"Tclunk": {"fid": 3}}}),
    (jw.Error, jw.Error("boom", code="E1"),
     {"message": "boom", "code": "E1", "help": None, "url": None, "backtrace": {"intern_table": [""], "frames": []}}),
    (jw.BacktraceFrame, jw.BacktraceFrame("m", 1, 2, 3, 4, 5, (jw.FieldPair(6, 7),), jw.Level.WARN),
     {"msg": "m", "name": 1, "target": 2, "module": 3, "file": 4, "line": 5, "fields": [{"key": 6, "value": 7}],
      "level": "WARN"}),
]


@pytest.mark.parametrize("tp, value, plain", SPELLINGS, ids=[f"{_id(r[0])}-{i}" for i, r in enumerate(SPELLINGS)])
def test_spelling(tp: Any, value: Any, plain: Any) -> None:
    got = jw.to_builtins(value, tp)
    assert got == plain and json.dumps(got) == json.dumps(plain)  # json.dumps: key order too
    assert jw.convert(plain, tp) == value


def test_nan_is_a_string_and_comes_back_as_nan() -> None:
    assert jw.to_builtins(math.nan, jw.f64) == "NaN"
    assert jw.to_builtins(-math.nan, jw.f32) == "NaN"
    assert math.isnan(jw.convert("NaN", jw.f64))


def test_custom_codec_fields_are_the_base64_of_their_bytes() -> None:
    import uuid

    ident = uuid.UUID(int=1)
    value = Custom(small=0x030201, ident=ident, passthrough=9)
    plain = jw.to_builtins(value)
    assert plain == {
        "small": base64.b64encode(b"\x01\x02\x03").decode(),  # U24 writes 3 bytes, little-endian
        "ident": base64.b64encode(ident.bytes).decode(),  # As(bytes, ...): the wire value, bytes
        "passthrough": 9,  # As(u16): a u16
    }
    assert jw.convert(plain, Custom) == value


def test_datetimes_are_utc_milliseconds_and_any_offset_is_read() -> None:
    berlin = datetime.timezone(datetime.timedelta(hours=2))
    value = datetime.datetime(2024, 5, 6, 9, 8, 9, 123456, berlin)
    assert jw.to_builtins(value, datetime.datetime) == "2024-05-06T07:08:09.123Z"  # the wire keeps ms
    back = jw.convert("2024-05-06T09:08:09.123456+02:00", datetime.datetime)
    assert back == value.replace(microsecond=123000) and back.tzinfo == UTC
    assert jw.convert("2024-05-06t07:08:09z", datetime.datetime) == datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    assert jw.convert("2024-05-06T07:08:09.1Z", datetime.datetime).microsecond == 100000


WIRE_NORMAL: list[tuple[Any, Any]] = [
    (jw.f32, 0.1),
    (jw.f32, 2**-149 / 3),  # below the smallest f32: 0.0
    (list[jw.f32], [1 / 3, -1e-46]),
    (datetime.datetime, datetime.datetime(2024, 5, 6, 7, 8, 9, 999999, datetime.timezone(datetime.timedelta(hours=-3)))),
    (ipaddress.IPv6Address, ipaddress.IPv6Address("fe80::1%eth0")),
    (jw.IpAddr, ipaddress.IPv6Address("fe80::1%2")),
]


@pytest.mark.parametrize("tp, value", WIRE_NORMAL, ids=[f"{_id(r[0])}-{i}" for i, r in enumerate(WIRE_NORMAL)])
def test_data_is_that_of_the_value_the_wire_carries(tp: Any, value: Any) -> None:
    on_the_wire = jw.decode(tp, jw.encode(value, tp))
    plain = jw.to_builtins(value, tp)
    assert plain == jw.to_builtins(on_the_wire, tp)
    assert same(jw.convert(plain, tp), on_the_wire)


@pytest.mark.parametrize("text", ["0.1", "3.4028235e38", "-1e-46", "16777217"])
def test_an_f32_is_built_as_the_wire_carries_it(text: str) -> None:
    obj = json.loads(text)
    assert jw.convert(obj, jw.f32) == jw.decode(jw.f32, jw.encode(obj, jw.f32))


def test_skipped_fields_are_not_data_and_come_back_as_their_default() -> None:
    plain = jw.to_builtins(WithSkip("n", ["cached"], 3))
    assert plain == {"name": "n", "count": 3}
    assert jw.convert(plain, WithSkip).cache == []  # as decoding gives it
    with pytest.raises(jw.ConvertError, match="unknown field 'cache'"):
        jw.convert({"name": "n", "cache": []}, WithSkip)


def test_fields_with_defaults_may_be_left_out() -> None:
    assert jw.convert({"items": [{"sku": 1}]}, Order) == Order([Item(1)])
    assert jw.convert({"a": 1}, Late) == Late(1)


def test_inferred_type_as_encode_does() -> None:
    assert jw.to_builtins(Shape.Rect(1, 2)) == {"Rect": {"width": 1, "height": 2}}
    assert jw.to_builtins(b"\x01") == "AQ=="
    with pytest.raises(jw.ConvertError, match="pass type="):
        jw.to_builtins(5)


# ---------------------------------------------------------------------------------------------
# Bad data: ConvertError naming the path


def test_the_issue_example() -> None:
    data = {"items": [{"sku": 1}, {"sku": 2}, {"sku": -1}]}
    with pytest.raises(jw.ConvertError) as info:
        jw.convert(data, Order)
    assert str(info.value) == "Order.items[2].sku: expected an integer 0..4294967295 (u32), got -1"
    assert (info.value.path, info.value.offset) == ("Order.items[2].sku", 0)
    assert info.value.reason == "expected an integer 0..4294967295 (u32), got -1"


BAD: list[tuple[Any, Any, str, str]] = [
    # type, data, path, a part of the reason
    (Order, [], "Order", "expected an object with the fields of Order"),
    (Order, {}, "Order", "missing field 'items'"),
    (Order, {"items": [], "colour": 1}, "Order", "unknown field 'colour'"),
    (Order, {"items": [], 1: 2}, "Order", "unknown field 1"),
    (Order, {"items": [{"sku": True}]}, "Order.items[0].sku", "got True"),
    (Order, {"items": [{"sku": 1.0}]}, "Order.items[0].sku", "got 1.0"),
    (Order, {"items": [{"sku": "1"}]}, "Order.items[0].sku", "got the string '1'"),
    (Order, {"items": [{"sku": 2**32}]}, "Order.items[0].sku", "0..4294967295"),
    (Order, {"items": [{"sku": 1, "name": None}]}, "Order.items[0].name", "expected a string, got None"),
    (Order, {"items": [{"sku": 1, "name": "x" * 65536}]}, "Order.items[0].name", "string of 65536 UTF-8 bytes is over the 65,535 limit"),
    (Order, {"items": [{"sku": 1, "name": "é" * 32768}]}, "Order.items[0].name", "string of 65536 UTF-8 bytes is over the 65,535 limit"),
    (Order, {"items": [], "note": "\ud800"}, "Order.note", "not encodable as UTF-8"),
    (Order, {"items": [], "tags": ["a"] * 65536}, "Order.tags", "65536 elements are over the 65,535 limit"),
    (Order, {"items": {"sku": 1}}, "Order.items", "expected a list, got an object"),
    (jw.f64, True, "f64", "expected a number for f64, got True"),
    (jw.f64, "nan", "f64", '"NaN", "Infinity", "-Infinity"'),
    (jw.f64, 10**400, "f64", "an integer of 1329 bits is too large for f64"),
    (jw.u128, 10**5000, "u128", "got an integer of 16610 bits"),  # past int's str digit limit
    (jw.f32, 1e39, "f32", "too large for f32"),
    (bool, 1, "bool", "expected true or false, got 1"),
    (type(None), 0, "None", "expected null"),
    (bytes, "AAA", "bytes", "not base64"),
    (bytes, "AA==\n", "bytes", "not base64"),
    (bytes, "é", "bytes", "not base64"),
    (bytes, b"AA==", "bytes", "expected a base64 string"),
    (bytes, "A" * (((32 << 20) + 2) // 3 * 4 + 4), "bytes", "over the 32 MiB limit"),
    (jw.Url, "not a url", "Url", "not an absolute URL (no scheme)"),
    (datetime.datetime, "2024-05-06", "datetime", "RFC 3339"),
    (datetime.datetime, "2024-05-06T07:08:09", "datetime", "RFC 3339"),  # no offset: which zone?
    (datetime.datetime, "2024-13-06T07:08:09Z", "datetime", "month must be in 1..12"),
    (datetime.datetime, "1969-12-31T23:59:59.999Z", "datetime", "before the Unix epoch"),
    (datetime.datetime, "9999-12-31T23:59:59-01:00", "datetime", "not a time the wire can hold"),
    (datetime.datetime, 0, "datetime", "expected an RFC 3339 date and time, got 0"),
    (ipaddress.IPv4Address, "1.2.3.256", "IPv4Address", "not an IPv4Address"),
    (ipaddress.IPv4Address, 16909060, "IPv4Address", "as a string"),
    (ipaddress.IPv6Address, "fe80::1%eth0", "IPv6Address", "scope id"),
    (jw.IpAddr, "::g", "IpAddr", "not an IPv6Address"),
    (Color, "red", "Color", "expected a member name of Color ('RED', 'GREEN', 'BLUE')"),
    (Color, 0, "Color", "got 0"),
    (Shape, "Empty", "Shape", "expected an object with one key, the variant of Shape"),
    (Shape, {"Empty": {}, "Rect": {}}, "Shape", "expected an object with one key"),
    (Shape, {"Oval": {}}, "Shape", "unknown variant 'Oval' of Shape (expected one of Circle, Rect, Polygon, Empty)"),
    (Shape, {"Rect": {"width": 1}}, "Shape<Rect>", "missing field 'height'"),
    (Shape, {"Polygon": {"corners": [{"x": 1, "y": "2"}]}}, "Shape<Polygon>.corners[0].y", "got the string '2'"),
    (jw.Option[jw.u8], 5, "Option[u8]", 'expected null or {"Some": ...}'),
    (jw.Option[jw.u8], {"Some": 5, "None": None}, "Option[u8]", 'expected null or {"Some": ...}'),
    (jw.Option[jw.u8], {"Some": 256}, "Option[u8]", "0..255"),
    (tuple[jw.u8, str], [1], "tuple[u8, str]", "expected a list of 2, got a list of 1"),
    (tuple[jw.u8, str], [1, 2], "tuple[u8, str][1]", "expected a string, got 2"),
    (set[jw.u8], [1, 1], "set[u8][1]", "duplicate element 1 in a set"),
    (set[jw.u8], {1}, "set[u8]", "expected a list, got a set"),
    (dict[str, jw.u8], [["a", 1]], "dict[str, u8]", "expected an object"),
    (dict[str, jw.u8], {"a": -1}, "dict[str, u8]['a']", "0..255"),
    (dict[jw.u8, str], {"1": "a"}, "dict[u8, str]", "expected a list of [key, value] pairs"),
    (dict[jw.u8, str], [[1, "a", 2]], "dict[u8, str][0]", "expected a [key, value] pair"),
    (dict[jw.u8, str], [[1, "a"], [1, "b"]], "dict[u8, str][1].key", "duplicate key 1 in a map"),
    (dict[jw.u8, str], [[1, 2]], "dict[u8, str][1]", "expected a string, got 2"),
    (dict[datetime.datetime, jw.u8], {"2024-01-01T00:00:00Z": 1, "2024-01-01T01:00:00+01:00": 2},
     "dict[datetime, u8]['2024-01-01T01:00:00+01:00']", "duplicate key"),
    (dict[jw.IpAddr, jw.u8], {"::1": 1, "0::1": 2}, "dict[IpAddr, u8]['0::1']", "duplicate key"),
    (ShapeFrame, {"tag": 1}, "ShapeFrame", 'expected an object {"tag": ..., "msg": ...}'),
    (ShapeFrame, {"tag": 65536, "msg": {}}, "ShapeFrame.tag", "0..65535"),
    (ShapeFrame, {"tag": 1, "msg": {"Rect": {}}}, "ShapeFrame.msg", "unknown variant 'Rect'"),
    (Custom, {"small": "AQI=", "ident": "", "passthrough": 1}, "Custom.small", "needs 1 more bytes"),
    (Custom, {"small": "AQIDBA==", "ident": "", "passthrough": 1}, "Custom.small", "1 bytes left over"),
    (Custom, {"small": "AQID", "ident": "AQ==", "passthrough": 1}, "Custom.ident", "conversion from bytes failed"),
    (Custom, {"small": "AQID", "ident": "A" * 22 + "==", "passthrough": 65536}, "Custom.passthrough", "0..65535"),
    (jw.BacktraceFrame, {"msg": "", "name": 0, "target": 0, "module": 0, "file": 0, "line": 0, "fields": [],
                         "level": "LOUD"}, "BacktraceFrame.level", "expected a member name of Level"),
]


@pytest.mark.parametrize("tp, obj, path, reason", BAD, ids=[f"{_id(r[0])}-{i}" for i, r in enumerate(BAD)])
def test_bad_data_names_the_path(tp: Any, obj: Any, path: str, reason: str) -> None:
    with pytest.raises(jw.ConvertError) as info:
        jw.convert(obj, tp)
    assert info.value.path == path, str(info.value)
    assert reason in info.value.reason, str(info.value)


@jw.wireformat
class Positive:
    n: jw.i32

    def __post_init__(self) -> None:
        if self.n <= 0:
            raise ValueError("n must be positive")


def test_a_refusing_post_init_is_a_convert_error() -> None:
    with pytest.raises(jw.ConvertError, match=r"Positive: Positive refused the fields: ValueError\('n must"):
        jw.convert({"n": 0}, Positive)


def test_nesting_past_the_limit_is_refused_not_a_crash() -> None:
    data: Any = {"label": "end", "next": None}
    for _ in range(jw.MAX_DEPTH + 50):
        data = {"label": "x", "next": data}
    with pytest.raises(jw.ConvertError, match="nesting too deep") as info:
        jw.convert(data, Chain)
    assert info.value.path.startswith("Chain.next.next.next")
    tree: Any = {"value": 1, "children": []}
    for _ in range(50_000):  # far past the interpreter's recursion limit
        tree = {"value": 1, "children": [tree]}
    with pytest.raises(jw.ConvertError, match="nesting too deep"):
        jw.convert(tree, Tree)


def test_a_cycle_is_refused_by_to_builtins() -> None:
    loop = Chain("a")
    loop.next = loop
    with pytest.raises(jw.ConvertError, match="nesting too deep"):
        jw.to_builtins(loop)


BAD_VALUES: list[tuple[Any, Any, str, str]] = [
    (Order, Order([Item(1), Item(-1)]), "Order.items[1].sku", "-1 is out of range for u32"),
    (Order, Order([], tags=[b"x"]), "Order.tags[0]", "expected a string, got a bytes"),
    (Order, Item(1), "Order", "expected Order, got Item"),
    (jw.i128, -(10**5000), "i128", "an integer of 16610 bits is out of range for i128"),
    (jw.f64, 10**5000, "f64", "an integer of 16610 bits is too large for f64"),
    (datetime.datetime, datetime.datetime(2000, 1, 1), "datetime", "without a timezone"),
    (jw.f32, 1e39, "f32", "too large for f32"),
    (jw.Option[jw.u8], 5, "Option[u8]", "expected None or Some(...)"),
    (Color, "RED", "Color", "expected a member of Color"),
    (Shape, Point(1, 2), "Shape", "expected Shape (Circle, Rect, Polygon, Empty), got Point"),
    (ShapeFrame, ShapeFrame(70000, Point(1, 2)), "ShapeFrame.tag", "out of range for u16"),
    (set[Color], {Color.RED, "x"}, "set[Color]", "members cannot be put in order"),
    (jw.Url, "nope", "Url", "not an absolute URL"),
    (dict[datetime.datetime, jw.u8],
     {datetime.datetime(2024, 1, 1, 0, 0, 0, 1, UTC): 1, datetime.datetime(2024, 1, 1, 0, 0, 0, 2, UTC): 2},
     "dict[datetime, u8]", "two keys are one on the wire: '2024-01-01T00:00:00.000Z'"),
    (Annotated[int, jw.With(U24)], 2**24, "U24", "custom codec failed"),
]


@pytest.mark.parametrize("tp, value, path, reason", BAD_VALUES, ids=[f"{_id(r[0])}-{i}" for i, r in enumerate(BAD_VALUES)])
def test_values_encode_refuses_are_refused_naming_the_path(tp: Any, value: Any, path: str, reason: str) -> None:
    with pytest.raises(jw.ConvertError) as info:
        jw.to_builtins(value, tp)
    assert info.value.path == path, str(info.value)
    assert reason in info.value.reason, str(info.value)


@jw.wireformat
class Mixed:
    """Fields walked in place (a, b, c) between fields walked through the walk's generators
    (the recursive Tree and Chain): one struct loop serves both, going on after each of them."""

    a: jw.u8
    left: Optional[Tree]
    b: str
    right: list[Chain]
    c: jw.u16 = 7


MIXED = Mixed(1, Tree(2, [Tree(3, [])]), "b", [Chain("x", Chain("y"))], 4)
MIXED_DATA = {"a": 1, "left": {"value": 2, "children": [{"value": 3, "children": []}]}, "b": "b",
              "right": [{"label": "x", "next": {"label": "y", "next": None}}], "c": 4}


def test_a_struct_with_fields_of_both_kinds_keeps_their_order_both_ways() -> None:
    data = jw.to_builtins(MIXED)
    assert data == MIXED_DATA
    assert list(data) == ["a", "left", "b", "right", "c"]
    assert jw.convert(MIXED_DATA, Mixed) == MIXED
    assert jw.convert({k: v for k, v in MIXED_DATA.items() if k != "c"}, Mixed) == dataclasses.replace(MIXED, c=7)
    assert jw.convert([MIXED_DATA] * 3, list[Mixed]) == [MIXED] * 3


@pytest.mark.parametrize("field, bad_value, bad_data, path", [
    ("a", 256, 256, "Mixed.a"),
    ("left", Tree(1, [Tree(70000, [])]), {"value": 1, "children": [{"value": 70000, "children": []}]},
     "Mixed.left.children[0].value"),
    ("b", 5, 5, "Mixed.b"),
    ("right", [Chain("x", Chain(5))], [{"label": "x", "next": {"label": 5, "next": None}}],  # type: ignore[arg-type]
     "Mixed.right[0].next.label"),
    ("c", -1, -1, "Mixed.c"),
])
def test_a_bad_field_of_either_kind_is_named_both_ways(field: str, bad_value: Any, bad_data: Any, path: str) -> None:
    with pytest.raises(jw.ConvertError) as dumped:
        jw.to_builtins(dataclasses.replace(MIXED, **{field: bad_value}))
    assert dumped.value.path == path
    with pytest.raises(jw.ConvertError) as loaded:
        jw.convert({**MIXED_DATA, field: bad_data}, Mixed)
    assert loaded.value.path == path


def test_the_first_bad_field_is_the_one_named_as_encode_names_it() -> None:
    """Two bad fields: the first in declaration order, even when a later one is walked in place
    and the earlier one through a generator."""
    value = dataclasses.replace(MIXED, left=Tree(70000, []), c=-1)
    with pytest.raises(jw.EncodeError) as encoded:
        jw.encode(value)
    with pytest.raises(jw.ConvertError) as dumped:
        jw.to_builtins(value)
    assert dumped.value.path == "Mixed.left.value"
    assert encoded.value.path == "Mixed.left.value"


def test_convert_error_is_a_wire_error_that_pickles() -> None:
    err = jw.ConvertError("expected null", "Point.x")
    assert isinstance(err, jw.WireError) and isinstance(err, ValueError)
    assert str(err) == "Point.x: expected null"  # no byte offset: there are no bytes
    again = pickle.loads(pickle.dumps(err))
    assert (type(again), again.reason, again.path, str(again)) == (jw.ConvertError, err.reason, err.path, str(err))


def test_collections_spelled_in_wire_order_whatever_the_insertion_order() -> None:
    a = Collections([], {"b": 1, "a": 2}, {3, 1}, frozenset(), (1, "", 0.0), (), {}, frozenset(), set(), [])
    b = Collections([], {"a": 2, "b": 1}, {1, 3}, frozenset(), (1, "", 0.0), (), {}, frozenset(), set(), [])
    assert json.dumps(jw.to_builtins(a)) == json.dumps(jw.to_builtins(b))


def test_variants_of_one_name_are_refused_rather_than_mixed_up() -> None:
    def make() -> type:
        @jw.wireformat(frozen=True)
        class Same:
            n: jw.u8

        return Same

    first, second = make(), make()
    union = Annotated[Any, jw.Tagged({1: first, 2: second})]
    assert jw.decode(union, jw.encode(second(5), union)) == second(5)  # fine on the wire
    with pytest.raises(jw.SchemaError, match="two variants are named Same"):
        jw.to_builtins(second(5), union)
    with pytest.raises(jw.SchemaError, match="two variants are named Same"):
        jw.convert({"Same": {"n": 5}}, union)


def test_the_example_of_docs_convert_md_runs() -> None:
    import pathlib
    import re

    text = (pathlib.Path(__file__).parent.parent / "docs" / "convert.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S)
    assert code is not None
    scope: dict[str, Any] = {}
    exec(compile(code.group(1), "docs/convert.md", "exec"), scope)
    assert scope["data"] == {"items": [{"sku": 7, "name": "tea"}], "placed": "2024-05-06T07:08:09.000Z"}


def test_upstream_spellings_convert_to_their_own_python_types() -> None:
    """A deque (upstream's VecDeque) comes back a deque, usize as the int it is."""
    import collections

    tp = collections.deque[jw.u8]
    value = jw.convert([1, 2], tp)
    assert isinstance(value, collections.deque) and value == collections.deque([1, 2])
    assert jw.to_builtins(value, tp) == [1, 2]
    assert jw.convert(jw.to_builtins(2**64 - 1, jw.usize), jw.usize) == 2**64 - 1
    with pytest.raises(jw.ConvertError, match="usize"):
        jw.convert(-1, jw.usize)

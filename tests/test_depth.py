"""Depth: types nested deeply and values nested deeply, whatever the stack.

Generated code must stay within Python's compiler limits (20 nested loops, 100 levels of
indentation), declarations refuse types past ``jetwire.MAX_TYPE_NESTING`` with a SchemaError,
and every walk over a value is independent of the C stack up to ``jetwire.MAX_DEPTH``.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any, Optional

import pytest

import jetwire as jw
from jetwire import Option, Some, u8
from jetwire.compiler import emit, fastpath, interpret
from jetwire.compiler.planner import plan


def _nest(depth: int, make: Callable[[Any], Any], leaf: Any = u8) -> Any:
    tp = leaf
    for _ in range(depth):
        tp = make(tp)
    return tp


def _value(depth: int, wrap: Callable[[Any], Any], leaf: Any = 5) -> Any:
    value = leaf
    for _ in range(depth):
        value = wrap(value)
    return value


_KINDS: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
    "list": (lambda t: list[t], lambda v: [v]),  # type: ignore[valid-type]
    "dict": (lambda t: dict[u8, t], lambda v: {1: v}),  # type: ignore[valid-type]
    "frozenset": (lambda t: frozenset[t], frozenset),  # type: ignore[valid-type]
    "tuple": (lambda t: tuple[u8, t], lambda v: (1, v)),  # type: ignore[valid-type]
    "Option": (lambda t: Option[t], Some),  # type: ignore[valid-type]
    "Optional of list": (lambda t: Optional[list[t]], lambda v: [v]),  # type: ignore[valid-type]
}


def _kind_value(kind: str, depth: int) -> Any:
    if kind == "frozenset":
        return _value(depth, lambda v: frozenset([v]))
    if kind == "Optional of list":
        return _value(depth // 2, lambda v: [v])
    return _value(depth, _KINDS[kind][1])


@pytest.mark.parametrize("kind", sorted(_KINDS))
@pytest.mark.parametrize("depth", [7, 8, 9, 20, 21, 32])
def test_deeply_nested_containers_compile_and_agree_with_the_interpreter(kind: str, depth: int) -> None:
    """21 nested lists were a SyntaxError (too many statically nested blocks) on first use."""
    make, _ = _KINDS[kind]
    tp = _nest(depth // 2 if kind == "Optional of list" else depth, make)
    codec = jw.Codec(tp)
    value = _kind_value(kind, depth)
    data = codec.encode(value)
    node = codec.node
    assert interpret.encode_checked(node, value, node.label) == data
    assert codec.decode(data) == value
    assert codec.decode(bytearray(data)) == value  # the view decoder
    assert codec.decode_prefix(data + b"\xff") == (value, len(data))
    assert codec.byte_size(value) == len(data)
    assert interpret.decode_buffer(node, data, 0, node.label) == (value, len(data))
    pieces: list[bytes] = []
    codec.unit.enc_into(value, pieces.append, 0)  # the encoder that appends, for callers in a loop
    assert b"".join(pieces) == data
    assert jw.read_value(tp, io.BytesIO(data)) == value
    with pytest.raises(jw.DecodeError):
        codec.decode(data[:-1])


def test_generated_code_nests_no_deeper_than_a_few_blocks() -> None:
    codec = jw.Codec(_nest(32, lambda t: list[t]))
    codec.encode(_value(32, lambda v: [v]))
    indents = [len(line) - len(line.lstrip(" ")) for line in codec.unit.source.splitlines()]
    assert max(indents) // 4 <= emit._MAX_BLOCK_INDENT + 2


@pytest.mark.parametrize("make", [
    lambda t: list[t], lambda t: dict[str, t], lambda t: tuple[t], lambda t: Option[t],  # type: ignore[valid-type]
    lambda t: frozenset[t], lambda t: Optional[tuple[t]],  # type: ignore[valid-type]
])
def test_types_nested_past_the_limit_are_refused_when_declared(make: Callable[[Any], Any]) -> None:
    limit = jw.MAX_TYPE_NESTING
    assert limit == 32
    deepest = 0
    for depth in range(1, limit + 2):
        try:
            jw.Codec(_nest(depth, make))
        except jw.SchemaError as exc:
            assert "MAX_TYPE_NESTING" in str(exc)
            break
        deepest = depth
    assert plan(_nest(deepest, make)).nesting in (limit - 1, limit)  # Optional[tuple] is two a step
    # far past the limit (typing itself cannot build an Option 300 deep on Python 3.12)
    with pytest.raises(jw.SchemaError, match="MAX_TYPE_NESTING"):
        jw.Codec(_nest(100, make))
    with pytest.raises(jw.SchemaError, match="MAX_TYPE_NESTING"):
        jw.Codec(_nest(5000, lambda t: list[t]))


def test_a_deep_part_planned_before_counts_in_full() -> None:
    inner = _nest(30, lambda t: list[t])
    jw.Codec(inner)  # planned, and kept for reuse
    jw.Codec(list[list[inner]])  # 32: still fine
    with pytest.raises(jw.SchemaError, match="MAX_TYPE_NESTING"):
        jw.Codec(tuple[u8, list[list[inner]]])


def test_the_limit_counts_within_one_field_and_names_it() -> None:
    deep = _nest(jw.MAX_TYPE_NESTING, lambda t: list[t])

    @jw.wireformat
    class Fine:
        x: deep  # type: ignore[valid-type]

    @jw.wireformat
    class Outer:  # a class inside containers starts again from 0
        y: list[list[Fine]]

    value = Outer([[Fine(_value(jw.MAX_TYPE_NESTING, lambda v: [v]))]])
    assert Outer.decode(value.encode()) == value
    with pytest.raises(jw.SchemaError, match=r"TooDeep\.x: .*MAX_TYPE_NESTING"):
        @jw.wireformat
        class TooDeep:
            x: list[deep]  # type: ignore[valid-type]


def test_nested_options_generate_code_in_linear_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each Option tried its inner code once to see whether it folds and then wrote it again:
    2**(depth/2) calls for alternating Option/Optional (3 s to compile at depth 32)."""
    calls = 0
    real = fastpath._Compiler.enc

    def counting(self: Any, *args: Any, **kwargs: Any) -> None:
        nonlocal calls
        calls += 1
        real(self, *args, **kwargs)

    monkeypatch.setattr(fastpath._Compiler, "enc", counting)
    counts = []
    for depth in (16, 32):
        tp = u8
        for i in range(depth):
            tp = Option[tp] if i % 2 == 0 else Optional[tp]
        calls = 0
        codec = jw.Codec(tp)
        assert codec.encode(None) == b"\x00"
        counts.append(calls)
    assert counts[1] <= 3 * counts[0]
    assert counts[1] < 300


def test_nested_plan_labels_and_nodes_stay_small() -> None:
    node = plan(_nest(jw.MAX_TYPE_NESTING, lambda t: list[t]))
    assert node.nesting == jw.MAX_TYPE_NESTING


# -- values nested to MAX_DEPTH, in a thread with a small stack ---------------------------------

_SMALL_STACK_SCRIPT = r'''
import io, json, sys, threading
from typing import Optional
import jetwire as jw
from jetwire import u8
from jetwire.compiler import interpret
from jetwire.runtime.classes import flat_hash, flat_repr

@jw.wireformat
class Link:
    value: u8
    next: Optional["Link"]

@jw.wireformat(frozen=True)
class Frozen:
    value: u8
    next: Optional["Frozen"]

def frozen_chain():
    value = None
    for i in range(depth):
        value = Frozen(i % 256, value)
    return value

@jw.wireenum
class Expr:
    @jw.wireformat
    class Lit:
        value: u8

    @jw.wireformat
    class Neg:
        inner: "Expr"

kind, depth, ops = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(",")

def make():
    if kind == "Link":  # each Link is one struct: depth structs inside each other
        value = None
        for _ in range(depth):
            value = Link(0, value)
        return value, b"\x00\x01" * (depth - 1) + b"\x00\x00"
    value = Expr.Lit(1)  # an enum and its variant are one level
    for _ in range(depth - 1):
        value = Expr.Neg(value)
    return value, b"\x01" * (depth - 1) + b"\x00\x01"

def run():
    tp = Link if kind == "Link" else Expr
    value, data = make()
    node = jw.Codec(tp).node
    same = lambda decoded: jw.encode(decoded, tp) == data  # == itself is tested on its own
    checks = {
        "decode": lambda: same(jw.decode(tp, data)),
        "read_value": lambda: same(jw.read_value(tp, io.BytesIO(data))),
        "interpreter decode": lambda: same(interpret.decode_buffer(node, data, 0, node.label)[0]),
        "encode": lambda: jw.encode(value, tp) == data,
        "interpreter encode": lambda: interpret.encode_checked(node, value, node.label) == data,
        "byte_size": lambda: jw.byte_size(value, tp) == len(data),
        "explain": lambda: jw.explain(tp, data).splitlines()[-1],
        "to_builtins": lambda: same(jw.convert(jw.to_builtins(value, tp), tp)),
        "repr": lambda: repr(value) == flat_repr(value) and repr(value).count("(") == depth,
        "eq": lambda: value == make()[0] and not value != make()[0],
        "hash": lambda: hash(frozen_chain()) == hash(frozen_chain()) == flat_hash(frozen_chain()),
    }
    results = {}
    for op in ops:
        try:
            results[op] = checks[op]()
        except jw.WireError as exc:
            results[op] = type(exc).__name__ + ": " + exc.reason
    print(json.dumps(results))

# Python 3.10's calls between Python functions each take C stack, its generated code's too:
# it needs 192 KiB (docs/design.md, "Depth and the stack"); 3.11 and later need 128 KiB
threading.stack_size((128 if sys.version_info >= (3, 11) else 192) * 1024)
thread = threading.Thread(target=run)
thread.start()
thread.join()
'''

_WIRE_OPS = ["decode", "read_value", "interpreter decode", "encode", "interpreter encode", "byte_size", "explain",
             "to_builtins"]


def _run_small_stack(tmp_path: Any, kind: str, depth: int, ops: list[str]) -> dict[str, Any]:
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "small_stack.py"
    script.write_text(_SMALL_STACK_SCRIPT)
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": root}
    done = subprocess.run(
        [sys.executable, str(script), kind, str(depth), ",".join(ops)], capture_output=True, text=True, env=env,
    )
    assert done.returncode == 0, f"the process died ({done.returncode}): {done.stderr[-2000:]}"
    results: dict[str, Any] = json.loads(done.stdout)
    return results


@pytest.mark.parametrize("kind", ["Link", "Expr"])
def test_max_depth_decodes_and_encodes_in_a_thread_with_a_128k_stack(tmp_path: Any, kind: str) -> None:
    """read_value and explain killed the process (SIGSEGV) at 150 nested structs: each nested
    decoder was a generator one C call deeper. An enum's variant counted as a second level."""
    results = _run_small_stack(tmp_path, kind, jw.MAX_DEPTH, [*_WIRE_OPS, "repr", "eq", "hash"])
    explained = results.pop("explain")
    assert explained.startswith("decoded: ")
    assert results == dict.fromkeys(results, True)


@pytest.mark.parametrize("kind", ["Link", "Expr"])
def test_one_past_max_depth_is_a_clean_error_in_a_thread_with_a_128k_stack(tmp_path: Any, kind: str) -> None:
    results = _run_small_stack(tmp_path, kind, jw.MAX_DEPTH + 1, _WIRE_OPS)
    too_deep = f"nesting too deep: more than {jw.MAX_DEPTH} structs and enums inside each other"
    for op in ("decode", "read_value", "interpreter decode"):
        assert results[op] == "DecodeError: " + too_deep
    for op in ("encode", "interpreter encode"):
        assert results[op] == "EncodeError: " + too_deep
    assert results["to_builtins"] == "ConvertError: " + too_deep
    assert too_deep in results["explain"]


def test_repr_and_eq_of_deep_values_switch_to_a_loop_with_the_same_answers() -> None:
    from jetwire.runtime.classes import NESTED_CALLS, flat_eq, flat_repr

    @jw.wireformat
    class Box:
        items: list[Box]
        named: dict[str, Optional[Box]]
        pair: tuple[u8, Option[u8]]

    def build(depth: int, last: int) -> Box:
        box = Box([], {}, (last, Some(None)))
        for i in range(depth):  # through a list, then a dict, in turn
            if i % 2:
                box = Box([box, Box([], {"x": None}, (i, None))], {}, (i, Some(i)))
            else:
                box = Box([], {"k": box, "j": None}, (i, Some(i)))
        return box

    shallow, deep = build(4, 0), build(NESTED_CALLS * 3, 0)
    assert flat_repr(shallow) == repr(shallow)
    text = repr(deep)
    assert text.count("Some(value=None)") == 1 and text.count("Box(") == NESTED_CALLS * 3 * 3 // 2 + 1
    assert deep == build(NESTED_CALLS * 3, 0) and not deep != build(NESTED_CALLS * 3, 0)
    assert deep != build(NESTED_CALLS * 3, 1)
    assert flat_eq(deep, build(NESTED_CALLS * 3, 0)) and not flat_eq(deep, build(NESTED_CALLS * 3, 1))
    loop = Box([], {}, (0, None))
    loop.items.append(loop)
    assert repr(loop) == flat_repr(loop) == "test_repr_and_eq_of_deep_values_switch_to_a_loop_with_the_same_answers.<locals>.Box(items=[...], named={}, pair=(0, None))"


def test_an_enum_and_its_variant_are_one_level_on_both_paths() -> None:
    """Expr.Neg(Expr.Neg(...)) stopped at 100: the enum and its variant counted as two."""

    @jw.wireenum
    class Expr:
        @jw.wireformat
        class Lit:
            value: u8

        @jw.wireformat
        class Neg:
            inner: Expr

    for depth, fine in ((jw.MAX_DEPTH, True), (jw.MAX_DEPTH + 1, False)):
        value: Any = Expr.Lit(1)
        for _ in range(depth - 1):
            value = Expr.Neg(value)
        data = b"\x01" * (depth - 1) + b"\x00\x01"
        node = plan(Expr)
        if fine:
            assert jw.encode(value, Expr) == interpret.encode_checked(node, value, node.label) == data
            assert jw.encode(jw.decode(Expr, data), Expr) == data
            assert jw.encode(interpret.decode_buffer(node, data, 0, node.label)[0], Expr) == data
        else:
            with pytest.raises(jw.EncodeError, match="nesting too deep"):
                jw.encode(value, Expr)
            with pytest.raises(jw.DecodeError, match="nesting too deep"):
                jw.decode(Expr, data)


def test_explain_shows_the_first_and_last_thousand_values_in_bounded_memory() -> None:
    """explain kept a line per value: 245 bytes of memory per input byte for a list[u16]
    (65 KB in, 32 MB at the peak), up to 1,500 for other shapes."""
    import tracemalloc

    data = jw.encode(list(range(65535)), list[jw.u16])
    jw.explain(list[jw.u16], data[:10])  # compiled and cached before measuring
    tracemalloc.start()
    try:
        text = jw.explain(list[jw.u16], data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    lines = text.splitlines()
    assert len(lines) == 1 + 1000 + 1 + 1000 + 1
    assert lines[1001] == "        … 63,536 values left out (the first and last 1,000 are shown)"
    assert lines[1000].endswith("list[u16][998] = 998") and lines[-2].endswith("list[u16][65534] = 65534")
    assert peak < 60 * len(data)  # the decoded list and its repr: 39 bytes per input byte
    bad = jw.explain(list[jw.u16], data[:-1]).splitlines()
    assert bad[-1].startswith("131070  fe") and "unexpected end of data" in bad[-1]


def test_to_builtins_and_convert_count_an_enum_and_its_variant_as_one_level() -> None:
    @jw.wireenum
    class Chain:
        @jw.wireformat
        class End:
            pass

        @jw.wireformat
        class Link:
            next: Chain

    def chain(depth: int) -> Any:
        value: Any = Chain.End()
        for _ in range(depth - 1):
            value = Chain.Link(value)
        return value

    deepest = chain(jw.MAX_DEPTH)
    data = jw.to_builtins(deepest)
    assert jw.convert(data, Chain) == deepest
    with pytest.raises(jw.ConvertError, match="nesting too deep"):
        jw.to_builtins(chain(jw.MAX_DEPTH + 1))
    with pytest.raises(jw.ConvertError, match="nesting too deep"):
        jw.convert({"Link": {"next": data}}, Chain)


def test_hash_of_deep_frozen_values_continues_in_a_loop_with_the_same_number() -> None:
    from jetwire.runtime.classes import NESTED_CALLS, flat_hash

    @jw.wireformat(frozen=True)
    class Node:
        label: str
        pair: tuple[u8, Optional[Node]]
        tags: frozenset[u8]
        extra: Option[Optional[u8]]
        weight: float

    value = None
    for i in range(NESTED_CALLS * 3):
        value = Node(str(i), (i, value), frozenset({i}), Some(None) if i % 3 else Some(i), i / 7)
    assert value is not None
    shallow = Node("x", (1, None), frozenset(), None, -0.0)
    assert flat_hash(shallow) == hash(("x", (1, None), frozenset(), None, -0.0))
    assert hash(value) == flat_hash(value)
    assert len({value, Node(value.label, value.pair, value.tags, value.extra, value.weight)}) == 1


@jw.wireformat(frozen=True)
class FlatPoint:
    x: u8
    labels: tuple[str, ...]
    extra: Optional[frozenset[u8]] = None


@jw.wireformat(frozen=True)
class HoldsPoint:
    point: FlatPoint


def test_only_classes_that_can_nest_count_their_depth() -> None:
    # Counting costs a thread-local read and write per call; a class whose fields hold no value
    # with generated methods never nests, so its ==, hash and repr are the plain ones.
    assert getattr(FlatPoint.__eq__, "__wrapped__", None) is None
    assert getattr(FlatPoint.__hash__, "__wrapped__", None) is None
    assert getattr(HoldsPoint.__eq__, "__wrapped__", None) is not None
    assert getattr(HoldsPoint.__hash__, "__wrapped__", None) is not None
    assert getattr(HoldsPoint.__repr__, "jetwire_fields", None) == ("point",)
    a, b = HoldsPoint(FlatPoint(1, ("a",))), HoldsPoint(FlatPoint(1, ("a",)))
    assert a == b and hash(a) == hash(b)
    assert repr(a) == "HoldsPoint(point=FlatPoint(x=1, labels=('a',), extra=None))"


@jw.wireformat
class Bushy:
    """Eight lists and an Optional between each struct and the next: nine containers a level."""

    value: u8
    kids: list[list[list[list[list[list[list[list[Optional[Bushy]]]]]]]]]


def _bushy(depth: int) -> Bushy:
    value = Bushy(0, [])
    for _ in range(depth - 1):
        value = Bushy(1, [[[[[[[[value]]]]]]]])
    return value


def test_to_builtins_and_convert_take_what_encode_takes_whatever_lies_between_the_structs() -> None:
    """Each container between two structs was a level of Python recursion: 150 structs of this
    type were "nesting too deep (a cycle?)" in to_builtins, though encode takes 200."""
    deepest = _bushy(jw.MAX_DEPTH)
    data = jw.to_builtins(deepest)
    assert jw.convert(data, Bushy) == deepest
    assert jw.encode(jw.convert(data, Bushy)) == jw.encode(deepest)


def test_to_builtins_and_convert_refuse_values_far_too_deep_with_the_path() -> None:
    """100,000 levels are refused at the same limit as encoding, naming where, not with a
    RecursionError (or a crash)."""
    level = ".kids[0][0][0][0][0][0][0][0]"
    too_deep = f"nesting too deep: more than {jw.MAX_DEPTH} structs and enums inside each other"
    with pytest.raises(jw.ConvertError) as info:
        jw.to_builtins(_bushy(100_000))
    assert info.value.reason == too_deep
    assert info.value.path == "Bushy" + level * jw.MAX_DEPTH
    data: Any = {"value": 0, "kids": []}
    for _ in range(100_000):
        data = {"value": 1, "kids": [[[[[[[[data]]]]]]]]}
    with pytest.raises(jw.ConvertError) as info:
        jw.convert(data, Bushy)
    assert info.value.reason == too_deep
    assert info.value.path == "Bushy" + level * jw.MAX_DEPTH


def test_the_interpreter_keeps_paths_in_memory_linear_in_depth() -> None:
    """Each level's path copied its parent's steps: decoding a value 200 structs deep with nine
    containers a level held 1,800 paths of up to 1,800 steps (14 MB for 3.5 KB of input). A
    level now adds one (parent, step) pair, and the text is made only for an error."""
    import tracemalloc

    from jetwire.compiler import interpret

    value = _bushy(jw.MAX_DEPTH)
    data = value.encode()
    node = jw.Codec(Bushy).node
    assert interpret.decode_buffer(node, data, 0, node.label)[0] == value
    tracemalloc.start()
    try:
        interpret.decode_buffer(node, data, 0, node.label)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1000 * len(data), f"{peak:,} bytes at the peak for {len(data):,} bytes of input"
    with pytest.raises(jw.DecodeError) as info:  # the innermost list's count says 512
        interpret.decode_buffer(node, data[:-1] + b"\x02", 0, node.label)
    level = ".kids[0][0][0][0][0][0][0][0]"
    assert info.value.path == "Bushy" + level * (jw.MAX_DEPTH - 1) + ".kids[0]"

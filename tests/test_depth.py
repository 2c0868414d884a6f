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
from jetwire.compiler import codegen, interpret
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
    assert max(indents) // 4 <= codegen._MAX_BLOCK_INDENT + 2


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
    # a RecursionError at 400 levels before (typing cannot make an Option 330 deep)
    with pytest.raises(jw.SchemaError, match="MAX_TYPE_NESTING"):
        jw.Codec(_nest(300, make))
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
    real = codegen._Compiler.enc

    def counting(self: Any, *args: Any, **kwargs: Any) -> None:
        nonlocal calls
        calls += 1
        real(self, *args, **kwargs)

    monkeypatch.setattr(codegen._Compiler, "enc", counting)
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

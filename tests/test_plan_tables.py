"""Every consumer of plans that dispatches on the node's type (the fast path's code generators,
the interpreter's encoders and decoders, the hypothesis strategies, to_builtins/convert) has a handler for every node type
the planner makes, and meets a node type it does not know with an internal error: never a
default, which would treat an unknown kind of node as some other kind."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from jetwire import builtins
from jetwire.compiler import fastpath, interpret, plan, schema
from jetwire.compiler.plan import Node, UnknownNodeError
from jetwire.markers import IntKind
from jetwire.testing import strategies

TABLES: dict[str, dict[type[Node], Any]] = {
    "fastpath.ENCODERS": fastpath.ENCODERS,
    "fastpath.DECODERS": fastpath.DECODERS,
    "fastpath.SIZERS": fastpath.SIZERS,
    "interpret.DECODERS": interpret.DECODERS,
    "interpret.ENCODERS": interpret.ENCODERS,
    "strategies.STRATEGIES": strategies.STRATEGIES,
    "builtins.DUMPERS": builtins.DUMPERS,
    "builtins.LOADERS": builtins.LOADERS,
    "schema.SCHEMAS": schema.SCHEMAS,
}

NODE_TYPES = sorted(
    (
        cls
        for _, cls in inspect.getmembers(plan, inspect.isclass)
        if issubclass(cls, Node) and cls is not Node and cls.__module__ == plan.__name__
    ),
    key=lambda cls: cls.__name__,
)


def test_the_plan_module_defines_the_node_types() -> None:
    assert len(NODE_TYPES) == 20  # a new one must be added to every table below


@pytest.mark.parametrize("table", TABLES, ids=str)
def test_every_node_type_has_a_handler(table: str) -> None:
    missing = [cls.__name__ for cls in NODE_TYPES if cls not in TABLES[table]]
    assert missing == [], f"{table} lacks {missing}"


@pytest.mark.parametrize("table", TABLES, ids=str)
def test_handlers_are_keyed_by_node_types_only(table: str) -> None:
    assert set(TABLES[table]) <= set(NODE_TYPES)


class Stranger(plan.IntNode):
    """A node type no table knows: a subclass of a known one, which an isinstance chain would
    have taken for its base."""

    __slots__ = ()


def _stranger() -> Stranger:
    return Stranger(IntKind("u8", 1, False))


def test_the_interpreter_refuses_an_unknown_node() -> None:
    node = _stranger()
    with pytest.raises(UnknownNodeError, match=r"interpret\.ENCODERS has no entry for Stranger"):
        interpret.encode_checked(node, 1, "x")
    with pytest.raises(UnknownNodeError, match=r"interpret\.DECODERS has no entry for Stranger"):
        interpret.decode_buffer(node, b"\x01", 0, "x")


def test_an_unknown_node_inside_a_known_one_is_refused() -> None:
    node = plan.SeqNode(_stranger(), list)
    with pytest.raises(UnknownNodeError, match="ENCODERS"):
        interpret.encode_checked(node, [1], "x")
    with pytest.raises(UnknownNodeError, match="DECODERS"):
        interpret.decode_buffer(node, b"\x01\x00\x01", 0, "x")


def test_the_strategies_refuse_an_unknown_node() -> None:
    walker = strategies._Walker(False, 8, 40, 32, 3)
    with pytest.raises(UnknownNodeError, match=r"strategies\.STRATEGIES has no entry for Stranger"):
        walker.build(_stranger(), None, ())


def test_to_builtins_and_convert_refuse_an_unknown_node() -> None:
    with pytest.raises(UnknownNodeError, match=r"builtins\.DUMPERS has no entry for Stranger"):
        builtins._dump(_stranger(), 1, 0)
    with pytest.raises(UnknownNodeError, match=r"builtins\.LOADERS has no entry for Stranger"):
        builtins._load(_stranger(), 1, 0)

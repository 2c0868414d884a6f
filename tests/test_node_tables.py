"""The fast path meets a node type it has no code for with an internal error naming it, and its
structural analyses give the safe answer for a type they do not know. (That every node type is
in every table, the fast path's included, is tests/test_plan_tables.py.)"""

from __future__ import annotations

import pytest

from jetwire.compiler import fastpath
from jetwire.compiler.emit import _Dec, _Enc, _Size, _Source
from jetwire.compiler.plan import IntNode, Node, SeqNode, SetNode
from jetwire.compiler.unit import compile_unit
from jetwire.markers import U16


class Stranger(Node):
    """A node type no table knows (as a new one would be before its code is written)."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__("Stranger", None, 0, object)


def test_an_unknown_node_type_is_an_internal_error() -> None:
    comp = fastpath._Compiler(_Source(compile_unit))
    emitters = (
        (comp.enc, _Enc(comp.src, 1, dynamic=False)),
        (comp.dec, _Dec(comp.src, 1, view=False)),
        (comp.size, _Size(comp.src, 1)),
    )
    for method, em in emitters:
        with pytest.raises(TypeError, match=r"internal error: fastpath\.\w+ has no entry for Stranger"):
            method(Stranger(), "_v", em, ())  # type: ignore[arg-type]


def test_an_unknown_node_type_may_run_user_code() -> None:
    # the safe answers: decoding it may run user code, hashing it may call a class's __hash__,
    # and its encoding is not tried as one expression
    assert not fastpath._no_user_code(Stranger())
    assert not fastpath._no_user_code(SeqNode(Stranger(), list))
    assert fastpath._may_hash_with_user_code(Stranger())
    assert not fastpath._no_user_code(SetNode(SeqNode(Stranger(), tuple), frozenset))
    assert not fastpath._may_fold(Stranger(), ())


def test_known_leaves_run_no_user_code() -> None:
    # the other side of the fold: a list of ints runs none, so its decoder checks the end once
    ints = SeqNode(IntNode(U16), list)
    assert fastpath._no_user_code(ints)
    assert not fastpath._may_hash_with_user_code(ints)

"""A wire type's layout as text: what its bytes are, and nothing a rename could change.

``wire_schema(node)`` spells a plan as the shape of its encoding (``(u32,[str],?str)``): no
class, field or method names, no Python container kinds that share an encoding. Two types
whose schemas are equal encode every value they share to the same bytes, and a change to
either that changes some value's bytes changes its schema. The RPC layer hashes it into a
service's version (its schema digest).

User codecs (``With``, ``EncodeWith``...) are opaque: they are named by their qualified name,
the only thing known of their bytes.
"""

from __future__ import annotations

from collections.abc import Callable

from . import plan as p
from .plan import Node, unknown_node

__all__ = ["SCHEMAS", "wire_schema"]


class _Spelling:
    """One schema being written. A struct or union is spelt as its contents, as a tuple is (the
    bytes are the same); one that contains itself refers back with ``@k``, k counting the
    structs and unions open around the reference (0: the innermost), so the spelling depends on
    the shape alone, not on the order types were met."""

    __slots__ = ("done", "open")

    def __init__(self) -> None:
        self.open: list[int] = []  # id() of the structs and unions being spelt, outermost first
        self.done: dict[int, str] = {}  # spellings with no reference out of themselves

    def of(self, node: Node) -> str:
        spell = SCHEMAS.get(type(node))
        if spell is None:
            raise unknown_node("schema.SCHEMAS", node)
        return spell(self, node)

    def nested(self, node: Node, body: Callable[[], str]) -> str:
        key = id(node)
        if key in self.open:
            return f"@{len(self.open) - 1 - self.open.index(key)}"
        found = self.done.get(key)
        if found is not None:
            return found
        self.open.append(key)
        try:
            text = body()
        finally:
            self.open.pop()
        if "@" not in text:  # self-contained: the same text wherever it appears
            self.done[key] = text
        return text


def _qualname(obj: object) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', type(obj).__qualname__)}"


def _int(s: _Spelling, node: Node) -> str:
    assert isinstance(node, p.IntNode)
    return f"{'i' if node.kind.signed else 'u'}{node.kind.size * 8}"  # usize and u64 are one layout


def _custom(s: _Spelling, node: Node) -> str:
    assert isinstance(node, p.CustomNode)
    hooks = [node.codec] if node.codec is not None else [node.encode, node.decode, node.size]
    names = ",".join("-" if hook is None else _qualname(hook) for hook in hooks)
    inner = "" if node.inner is None else s.of(node.inner)
    return f"custom<{names}>({inner})"


def _struct(s: _Spelling, node: Node) -> str:
    assert isinstance(node, p.StructNode)
    return s.nested(node, lambda: "(" + ",".join(s.of(child) for child in node.children()) + ")")


def _union(s: _Spelling, node: Node) -> str:
    assert isinstance(node, p.UnionNode)
    return s.nested(node, lambda: "<" + ",".join(f"{v.tag}:{s.of(v.node)}" for v in node.variants) + ">")


SCHEMAS: dict[type[Node], Callable[[_Spelling, Node], str]] = {
    p.IntNode: _int,
    p.FloatNode: lambda s, node: f"f{node.fixed * 8}" if node.fixed else "f",
    p.BoolNode: lambda s, node: "bool",
    p.UnitNode: lambda s, node: "()",
    p.StrNode: lambda s, node: "str",  # strict or surrogateescape: the same bytes for the same text
    p.BytesNode: lambda s, node: "data",
    p.UrlNode: lambda s, node: "url",
    p.TimeNode: lambda s, node: "time",
    p.IPNode: lambda s, node: f"ip{node.version}",  # type: ignore[attr-defined]
    # list, tuple[T, ...] and deque share an encoding; sets and maps are written in key order
    p.SeqNode: lambda s, node: "[" + s.of(node.elem) + "]",  # type: ignore[attr-defined]
    p.SetNode: lambda s, node: "{" + s.of(node.elem) + "}",  # type: ignore[attr-defined]
    p.MapNode: lambda s, node: "{" + s.of(node.key) + ":" + s.of(node.value) + "}",  # type: ignore[attr-defined]
    p.OptionNode: lambda s, node: "?" + s.of(node.inner),  # type: ignore[attr-defined]
    p.TupleNode: lambda s, node: "(" + ",".join(s.of(item) for item in node.children()) + ")",
    p.StructNode: _struct,
    p.UnionNode: _union,
    p.FrameNode: lambda s, node: "frame" + s.of(node.union),  # type: ignore[attr-defined]
    p.EnumNode: lambda s, node: f"enum{len(node.members)}",  # type: ignore[attr-defined]
    p.CustomNode: _custom,
    p.ConvertNode: lambda s, node: s.of(node.inner),  # type: ignore[attr-defined]
}


def wire_schema(node: Node) -> str:
    """The layout of ``node``'s encoding as text (see the module's docstring)."""
    return _Spelling().of(node)

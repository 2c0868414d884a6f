"""Random values of any plan, from a seeded ``random.Random``: the valid inputs mutations start from.

Unlike ``jetwire.testing.strategy`` (hypothesis), this needs no engine and no corpus: the same
seed gives the same value, which is what replaying a finding by its case number relies on.
"""

from __future__ import annotations

import collections
import ipaddress
import random
import struct
from collections.abc import Sequence
from typing import Any

import jetwire as jw
from jetwire.compiler.plan import (
    BoolNode,
    BytesNode,
    ConvertNode,
    CustomNode,
    EnumNode,
    FloatNode,
    FrameNode,
    IntNode,
    IPNode,
    MapNode,
    Node,
    OptionNode,
    SeqNode,
    SetNode,
    StrNode,
    StructNode,
    TimeNode,
    TupleNode,
    UnionNode,
    UnitNode,
    UrlNode,
    Variant,
)
from jetwire.compiler.support import ms_to_datetime
from jetwire.compiler.values import construct

from .catalogue import custom_value

MAX_TIME_MS = 253402300799999  # 9999-12-31T23:59:59.999Z, the last millisecond datetime holds
URLS = [
    "http://example.com/", "https://h/p?q=1#f", "http://127.1/", "http://[::1]:8080/x",
    "file:///etc/passwd", "mailto:a@b", "jetstream://node/a%20b", "https://xn--bcher-kva.example/",
]
# Characters that take 1 to 4 UTF-8 bytes, and ones that are often special-cased.
CHARS = "aZ09 \x00\x7f\u00e9\u00ff\u0100\u07ff\u0800\u20ac\uffff\U00010000\U0001f600\U0010ffff"


class Values:
    """``Values(rng).of(node)``: a value ``node`` encodes. ``size`` bounds every collection."""

    def __init__(self, rng: random.Random, size: int = 4, max_depth: int = 4) -> None:
        self.rng = rng
        self.size = size
        self.max_depth = max_depth
        self.depth = 0

    def count(self) -> int:
        limit = self.size if self.depth < self.max_depth else 0
        return self.rng.randint(0, limit)

    def of(self, node: Node) -> Any:  # noqa: C901 - one dispatch over the node kinds
        rng = self.rng
        if isinstance(node, IntNode):
            kind = node.kind
            return rng.choice([kind.min, kind.max, 0, 1, rng.randint(kind.min, kind.max)])
        if isinstance(node, FloatNode):
            if node.kind.size == 4:
                value = struct.unpack("<f", rng.getrandbits(32).to_bytes(4, "little"))[0]
            else:
                value = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
            return rng.choice([value, 0.0, -0.0, 1.5, float("inf")])
        if isinstance(node, BoolNode):
            return rng.random() < 0.5
        if isinstance(node, UnitNode):
            return None
        if isinstance(node, StrNode):
            if node.errors == "surrogateescape":
                raw = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 6)))
                return raw.decode("utf-8", "surrogateescape")
            return "".join(rng.choice(CHARS) for _ in range(rng.randint(0, 6)))
        if isinstance(node, BytesNode):
            return bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 8)))
        if isinstance(node, UrlNode):
            return jw.Url(rng.choice(URLS))
        if isinstance(node, TimeNode):
            return ms_to_datetime(rng.choice([0, MAX_TIME_MS, rng.randint(0, MAX_TIME_MS)]))
        if isinstance(node, IPNode):
            if node.version == 4:
                return ipaddress.IPv4Address(rng.getrandbits(32))
            return ipaddress.IPv6Address(rng.getrandbits(128))
        if isinstance(node, EnumNode):
            return rng.choice(node.members)
        if isinstance(node, OptionNode):
            if rng.random() < 0.3 or self.depth >= self.max_depth:
                return None
            inner = self.of(node.inner)
            return jw.Some(inner) if node.wrapped else inner
        if isinstance(node, TupleNode):
            return tuple(self.of(item) for item in node.items)
        if isinstance(node, SeqNode):
            self.depth += 1
            items = [self.of(node.elem) for _ in range(self.count())]
            self.depth -= 1
            if node.container is list:
                return items
            return collections.deque(items) if node.container is collections.deque else tuple(items)
        if isinstance(node, SetNode):
            self.depth += 1
            members = {self.of(node.elem) for _ in range(self.count())}
            self.depth -= 1
            return node.container(members)
        if isinstance(node, MapNode):
            self.depth += 1
            entries = {self.of(node.key): self.of(node.value) for _ in range(self.count())}
            self.depth -= 1
            return entries
        if isinstance(node, StructNode):
            self.depth += 1
            values = [self.of(f.node) for f in node.wire_fields if f.node is not None]
            self.depth -= 1
            return construct(node, values)
        if isinstance(node, UnionNode):
            variants: Sequence[Variant] = node.variants
            if self.depth >= self.max_depth:  # the variants that end the recursion
                variants = [v for v in variants if not _reaches(v.node, node)] or variants
            return self.of(rng.choice(variants).node)
        if isinstance(node, FrameNode):
            return node.cls(tag=rng.choice([0, 0xFFFF, rng.getrandbits(16)]), msg=self.of(node.union))
        if isinstance(node, ConvertNode):
            inner = self.of(node.inner)
            return node.from_wire(inner) if node.from_wire is not None else inner
        if isinstance(node, CustomNode):
            if node.inner is not None:
                return self.of(node.inner)
            return custom_value(node.codec if node.codec is not None else node.encode, rng)
        raise LookupError(f"no value generator for the plan node {node!r}")


_reach_cache: dict[tuple[int, int], bool] = {}


def _reaches(node: Node, target: Node) -> bool:
    """Whether ``node`` contains ``target`` (a recursive type's way back to itself)."""
    key = (id(node), id(target))
    found = _reach_cache.get(key)
    if found is None:
        found = _reach_cache[key] = _walk_reaches(node, target)
    return found


def _walk_reaches(node: Node, target: Node) -> bool:
    seen: set[int] = set()
    todo = [node]
    while todo:
        current = todo.pop()
        if current is target:
            return True
        if id(current) in seen:
            continue
        seen.add(id(current))
        todo.extend(current.children())
    return False

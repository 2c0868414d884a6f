"""Plan nodes: the wire layout of a type, with no behaviour of their own.

The planner builds them from type hints; code generation, the reference interpreter, ``explain``
and the hypothesis strategies all walk the same nodes, so they cannot disagree on a layout.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..markers import FloatKind, IntKind, WireCodec
from .framing import HEADER_SIZE

MAX_STRING_BYTES = 0xFFFF  # r[jetstream.wireformat.string]
MAX_ELEMENTS = 0xFFFF  # r[jetstream.wireformat.vec], map, set
MAX_DATA_BYTES = 32 * 1024 * 1024  # r[jetstream.wireformat.data]
MAX_VARIANTS = 256  # r[jetstream.wireformat.enum]
MAX_FRAME_SIZE = 0xFFFFFFFF
MAX_DEPTH = 200  # structs and enums inside each other: past this, "nesting too deep", never a crash
# Elements that take no bytes (``list[None]``, lists of empty structs), made by one decode: each
# costs memory but no input, so without a budget 2 bytes would make 65,535 objects.
MAX_ZERO_WIDTH_ELEMENTS = 1_000_000
# Distinct keys of one set or map that may share a hash value. Python's hash of ints, floats,
# tuples and the like is not randomised, so a sender can choose 65,535 keys that all collide
# (u128 multiples of 2**61 - 1), and inserting them costs quadratic time (30 s for 1 MiB).
MAX_SHARED_HASH = 64
# Containers (list, set, dict, tuple, Option) inside each other within one annotation; structs
# and enums start again from 0 (MAX_DEPTH bounds them at run time). Deeper types are refused
# when declared, so every walk over one annotation's nodes stays shallow.
MAX_TYPE_NESTING = 32


class Node:
    """One wire type. ``fixed`` is its encoded size when every value has the same size."""

    __slots__ = ("fixed", "label", "min_size", "nesting", "py_type")

    def __init__(self, label: str, fixed: int | None, min_size: int, py_type: Any) -> None:
        self.label = label
        self.fixed = fixed
        self.min_size = min_size
        self.py_type = py_type
        self.nesting = 0  # containers inside each other, this one included (MAX_TYPE_NESTING)

    def children(self) -> tuple[Node, ...]:
        """The nodes directly inside this one (a struct's wire fields, a union's variants...):
        what the structural analyses fold over. Leaves have none."""
        return ()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.label}>"


class IntNode(Node):
    __slots__ = ("kind",)

    def __init__(self, kind: IntKind) -> None:
        super().__init__(kind.name, kind.size, kind.size, int)
        self.kind = kind


class FloatNode(Node):
    __slots__ = ("kind",)

    def __init__(self, kind: FloatKind) -> None:
        super().__init__(kind.name, kind.size, kind.size, float)
        self.kind = kind


class BoolNode(Node):
    __slots__ = ()

    def __init__(self) -> None:
        super().__init__("bool", 1, 1, bool)


class UnitNode(Node):
    __slots__ = ()

    def __init__(self) -> None:
        super().__init__("None", 0, 0, type(None))


class StrNode(Node):
    """u16 length, then UTF-8 (r[jetstream.wireformat.string]). ``errors`` is the codec error
    handler: ``"strict"`` (JetStream's rule) or ``"surrogateescape"`` (9P names, any bytes)."""

    __slots__ = ("errors",)

    def __init__(self, errors: str = "strict") -> None:
        super().__init__("str" if errors == "strict" else "fsstr", None, 2, str)
        self.errors = errors


class BytesNode(Node):
    """Data: u32 length, then the bytes (r[jetstream.wireformat.data])."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__("bytes", None, 4, bytes)


class UrlNode(Node):
    __slots__ = ()

    def __init__(self, py_type: Any) -> None:
        super().__init__("Url", None, 2, py_type)


class TimeNode(Node):
    __slots__ = ()

    def __init__(self, py_type: Any) -> None:
        super().__init__("datetime", 8, 8, py_type)


class IPNode(Node):
    """IPv4 (4 octets) or IPv6 (16 octets), network order."""

    __slots__ = ("version",)

    def __init__(self, version: int, py_type: Any) -> None:
        size = 4 if version == 4 else 16
        super().__init__(f"IPv{version}Address", size, size, py_type)
        self.version = version


class SeqNode(Node):
    """u16 count, then the elements: ``list[T]``, ``tuple[T, ...]`` and ``deque[T]``."""

    __slots__ = ("container", "elem")

    def __init__(self, elem: Node, container: type) -> None:
        label = f"tuple[{elem.label}, ...]" if container is tuple else f"{container.__name__}[{elem.label}]"
        super().__init__(label, None, 2, container)
        self.elem = elem
        self.container = container
        self.nesting = elem.nesting + 1

    def children(self) -> tuple[Node, ...]:
        return (self.elem,)


class SetNode(Node):
    """u16 count, then the elements in order: ``set[T]``, ``frozenset[T]``."""

    __slots__ = ("container", "elem", "sort_key")

    def __init__(self, elem: Node, container: type, sort_key: Callable[[Any], Any] | None) -> None:
        super().__init__(f"{container.__name__}[{elem.label}]", None, 2, container)
        self.elem = elem
        self.container = container
        self.sort_key = sort_key
        self.nesting = elem.nesting + 1

    def children(self) -> tuple[Node, ...]:
        return (self.elem,)


class MapNode(Node):
    """u16 count, then key, value pairs in key order: ``dict[K, V]``."""

    __slots__ = ("key", "sort_key", "value")

    def __init__(self, key: Node, value: Node, sort_key: Callable[[Any], Any] | None) -> None:
        super().__init__(f"dict[{key.label}, {value.label}]", None, 2, dict)
        self.key = key
        self.value = value
        self.sort_key = sort_key
        self.nesting = max(key.nesting, value.nesting) + 1

    def children(self) -> tuple[Node, ...]:
        return (self.key, self.value)


class OptionNode(Node):
    """u8 tag 0 (None) or 1 (present) then the value. ``wrapped``: present values are ``Some(x)``."""

    __slots__ = ("inner", "wrapped")

    def __init__(self, inner: Node, wrapped: bool) -> None:
        label = f"Option[{inner.label}]" if wrapped else f"Optional[{inner.label}]"
        fixed = 1 if inner.fixed == 0 else None
        super().__init__(label, fixed, 1, object)
        self.inner = inner
        self.wrapped = wrapped
        self.nesting = inner.nesting + 1

    def children(self) -> tuple[Node, ...]:
        return (self.inner,)


class TupleNode(Node):
    __slots__ = ("items",)

    def __init__(self, items: list[Node]) -> None:
        label = "tuple[" + ", ".join(i.label for i in items) + "]" if items else "tuple[()]"
        sizes = [i.fixed for i in items]
        fixed = None if None in sizes else sum(s for s in sizes if s is not None)
        super().__init__(label, fixed, sum(i.min_size for i in items), tuple)
        self.items = items
        self.nesting = max((i.nesting for i in items), default=0) + 1

    def children(self) -> tuple[Node, ...]:
        return tuple(self.items)


class FieldPlan:
    __slots__ = ("init", "kw_only", "name", "node", "skip")

    def __init__(self, name: str, node: Node | None, skip: bool, init: bool, kw_only: bool = False) -> None:
        self.name = name
        self.node = node
        self.skip = skip
        self.init = init
        self.kw_only = kw_only


class StructNode(Node):
    """A ``@wireformat`` class: its wire fields in declaration order (r[jetstream.wireformat.struct]).

    Created empty and cached before its fields are planned, so recursive types refer to it.
    """

    __slots__ = ("args", "cls", "complete", "direct", "fields", "unit")

    def __init__(self, cls: type, label: str, args: tuple[Any, ...]) -> None:
        super().__init__(label, None, 0, cls)
        self.cls = cls
        self.args = args
        self.fields: list[FieldPlan] = []
        self.complete = False
        self.unit: Any = None
        self.direct = False  # decoding may store fields without calling __init__

    @property
    def wire_fields(self) -> list[FieldPlan]:
        return [f for f in self.fields if not f.skip]

    def finish(self, fields: list[FieldPlan]) -> None:
        self.fields = fields
        wire = [f.node for f in fields if f.node is not None and not f.skip]
        sizes = [n.fixed for n in wire]
        self.fixed = None if None in sizes else sum(s for s in sizes if s is not None)
        self.min_size = sum(n.min_size for n in wire)
        self.complete = True

    def positional(self) -> bool:
        """Whether the wire fields are exactly the leading ``__init__`` parameters, in order."""
        init_fields = [f for f in self.fields if f.init]
        wire = self.wire_fields
        return all(f.init and not f.kw_only for f in wire) and init_fields[: len(wire)] == wire

    def construct(self, values: list[Any]) -> Any:
        """Builds an instance from its wire field values, as the generated decoder does."""
        wire = self.wire_fields
        late = [(f.name, v) for f, v in zip(wire, values) if not f.init]
        if self.positional():
            obj = self.cls(*values)
        else:
            obj = self.cls(**{f.name: v for f, v in zip(wire, values) if f.init})
        for name, value in late:
            object.__setattr__(obj, name, value)
        return obj

    def children(self) -> tuple[Node, ...]:
        return tuple(f.node for f in self.fields if f.node is not None and not f.skip)


class Variant:
    __slots__ = ("name", "node", "py_type", "tag")

    def __init__(self, tag: int, py_type: type, node: Node, name: str) -> None:
        self.tag = tag
        self.py_type = py_type
        self.node = node
        self.name = name


class UnionNode(Node):
    """A u8 tag then the variant: ``@wireenum`` (tags 0, 1, ...), IpAddr and SocketAddr (4, 6).

    The variant is chosen by the value's class on encode and by the tag on decode.
    """

    __slots__ = ("args", "by_tag", "by_type", "complete", "unit", "variants")

    def __init__(self, label: str, py_type: Any, args: tuple[Any, ...] = ()) -> None:
        super().__init__(label, None, 1, py_type)
        self.variants: list[Variant] = []
        self.by_tag: dict[int, Variant] = {}
        self.by_type: dict[type, Variant] = {}
        self.args = args
        self.complete = False
        self.unit: Any = None

    def finish(self, variants: list[Variant]) -> None:
        self.variants = variants
        self.by_tag = {v.tag: v for v in variants}
        self.by_type = {v.py_type: v for v in variants}
        sizes = {v.node.fixed for v in variants}
        self.fixed = None if None in sizes or len(sizes) != 1 else 1 + sizes.pop()  # type: ignore[operator]
        self.complete = True

    def variant_of(self, value: Any) -> Variant | None:
        found = self.by_type.get(type(value))
        if found is not None:
            return found
        for v in self.variants:
            if isinstance(value, v.py_type):
                return v
        return None

    def children(self) -> tuple[Node, ...]:
        return tuple(v.node for v in self.variants)


class FrameNode(Node):
    """``size[4] type[1] tag[2] body``: one whole message of the 9P family (r[9p2000l.frame.header]).

    ``size`` counts the whole frame, itself included; ``type`` is the union's tag for the
    message's class (a message number such as 100, not a declaration index); ``tag`` pairs a
    reply with its request. A frame is always a whole message, never a field.
    """

    __slots__ = ("cls", "direct", "union", "unit")

    def __init__(self, cls: type, union: UnionNode, direct: bool) -> None:
        super().__init__(cls.__name__, None, HEADER_SIZE, cls)
        self.cls = cls
        self.union = union
        self.direct = direct  # decoding may store tag and msg without calling __init__
        self.unit: Any = None

    def children(self) -> tuple[Node, ...]:
        return (self.union,)


class EnumNode(Node):
    """An ``enum.Enum``: its members are unit variants, a u8 index in definition order."""

    __slots__ = ("index", "members")

    def __init__(self, cls: type) -> None:
        super().__init__(cls.__name__, 1, 1, cls)
        self.members: list[Any] = list(cls)  # type: ignore[call-overload]
        self.index = {m: i for i, m in enumerate(self.members)}


class CustomNode(Node):
    """A field written by user code: ``With(codec)``, or ``EncodeWith``/``DecodeWith``/``SizeWith``.

    Directions without a hook use ``inner``, the field's own wire type.
    """

    __slots__ = ("codec", "decode", "encode", "inner", "size")

    def __init__(
        self,
        label: str,
        inner: Node | None,
        encode: Callable[[Any, Any], None] | None,
        decode: Callable[[Any], Any] | None,
        size: Callable[[Any], int] | None,
        codec: WireCodec[Any] | None = None,
    ) -> None:
        super().__init__(label, None, 0, object)
        self.inner = inner
        self.encode = encode
        self.decode = decode
        self.size = size
        self.codec = codec
        self.nesting = inner.nesting if inner is not None else 0

    def children(self) -> tuple[Node, ...]:
        return () if self.inner is None else (self.inner,)


class ConvertNode(Node):
    """``As(wire_type, to_wire, from_wire)``: the value travels as ``inner``."""

    __slots__ = ("from_wire", "inner", "to_wire")

    def __init__(
        self,
        inner: Node,
        to_wire: Callable[[Any], Any] | None,
        from_wire: Callable[[Any], Any] | None,
    ) -> None:
        super().__init__(f"As[{inner.label}]", inner.fixed, inner.min_size, object)
        self.inner = inner
        self.to_wire = to_wire
        self.from_wire = from_wire
        self.nesting = inner.nesting


    def children(self) -> tuple[Node, ...]:
        return (self.inner,)


def zero_width_entries(node: Node) -> bool:
    """Whether the entries of a collection take no bytes, so only a budget bounds how many a
    few bytes of input make (r[jetstream.wireformat.vec], map, set say nothing of it)."""
    if isinstance(node, (SeqNode, SetNode)):
        return node.elem.fixed == 0
    if isinstance(node, MapNode):
        return node.key.fixed == 0 and node.value.fixed == 0
    return False


def entries_may_take_no_bytes(node: Node) -> bool:
    """Whether a collection's entries may take no bytes, which only decoding each tells: a
    user's codec (``With``) may read nothing. Such entries count against the same budget."""
    if isinstance(node, (SeqNode, SetNode)):
        return node.elem.min_size == 0 and node.elem.fixed != 0
    if isinstance(node, MapNode):
        return node.key.min_size + node.value.min_size == 0 and not zero_width_entries(node)
    return False


def reaches(node: Node, found: Callable[[Node], bool]) -> bool:
    """Whether ``found`` holds for ``node`` or any node inside it (recursive types included)."""
    seen: set[int] = set()
    todo = [node]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if found(current):
            return True
        todo.extend(current.children())
    return False


def reaches_zero_width(node: Node) -> bool:
    """Whether decoding ``node`` may make entries that take no bytes (zero-width collections,
    or entries that may take none): only such types spend anything on counting them."""
    return reaches(node, lambda current: zero_width_entries(current) or entries_may_take_no_bytes(current))


def hashes_may_crowd(node: Node) -> bool:
    """Whether a sender can choose more than MAX_SHARED_HASH distinct keys of this type that
    share one hash value, so decoding a set or map of them must count. Not so for hashes
    Python randomises (``str``, ``bytes``, ``Url``), for ints of up to 64 bits (distinct ints
    share a hash only 2**61 - 1 apart: 9 at most) and IPv4 addresses, nor for types of at
    most 256 values (a byte): their worst case is cheap."""
    if isinstance(node, (StrNode, BytesNode, UrlNode)):
        return False
    if isinstance(node, IntNode):
        return node.kind.size > 8
    if isinstance(node, IPNode):
        return node.version != 4
    if isinstance(node, OptionNode):
        return hashes_may_crowd(node.inner)
    return node.fixed is None or node.fixed > 1


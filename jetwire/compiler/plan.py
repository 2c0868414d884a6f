"""Plan nodes: the wire layout of a type, with no behaviour of their own.

The planner builds them from type hints; code generation, the reference interpreter, ``explain``
and the hypothesis strategies all walk the same nodes, so they cannot disagree on a layout.
A node is frozen once planned (setting an attribute raises ``FrozenNodeError``); what the codecs
do with values of a node (build a struct, pick a variant, order keys) is in ``values.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple

from ..errors import JetwireError
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


class FrozenNodeError(JetwireError, AttributeError):
    """A planned node (or a variant of one) was changed: plans are shared by every
    class and codec that uses them, so they never change once planned."""


class Frozen:
    """Read-only once built. While it is being built, an object's class is an "open" twin of its
    own (the same slots, Python's own ``__setattr__``), so building pays nothing for the check;
    ``_freeze()`` gives it back its class, whose ``__setattr__`` refuses. Reading a slot costs
    the same either way: only setting is checked."""

    __slots__ = ("__weakref__",)
    _open: ClassVar[type]  # the twin an instance has while being built
    _closed: ClassVar[type]  # the class itself, for the twin as for the class

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("_is_open_twin"):
            return
        cls._closed = cls
        cls._open = type(cls.__name__, (cls,), {
            "__slots__": (), "_is_open_twin": True, "__module__": cls.__module__,
            "__qualname__": cls.__qualname__, "__setattr__": object.__setattr__, "__delattr__": object.__delattr__,
        })

    def __init__(self) -> None:
        object.__setattr__(self, "__class__", self._open)

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenNodeError(f"{self!r} is planned, so it cannot change: cannot set {name}")

    def __delattr__(self, name: str) -> None:
        raise FrozenNodeError(f"{self!r} is planned, so it cannot change: cannot delete {name}")

    def _freeze(self) -> None:
        object.__setattr__(self, "__class__", self._closed)


class Node(Frozen):
    """One wire type. ``fixed`` is its encoded size when every value has the same size.

    Nodes without children, and containers, are frozen when constructed; struct and union
    nodes are created empty (recursive types refer to them) and frozen by ``finish()``."""

    __slots__ = ("fixed", "label", "min_size", "nesting", "py_type")

    def __init__(self, label: str, fixed: int | None, min_size: int, py_type: Any) -> None:
        object.__setattr__(self, "__class__", self._open)  # Frozen.__init__, without a call
        self.label = label
        self.fixed = fixed
        self.min_size = min_size
        self.py_type = py_type
        self.nesting = 0  # containers inside each other, this one included (MAX_TYPE_NESTING)

    def children(self) -> tuple[Node, ...]:
        """The nodes directly inside this one (a struct's wire fields, a union's variants...):
        what the structural analyses fold over. Leaves have none."""
        return ()

    def _planned(self) -> None:
        """Works out what depends on the children, then freezes."""
        self.nesting = type_nesting(self)
        self._freeze()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.label}>"


class IntNode(Node):
    __slots__ = ("kind",)

    def __init__(self, kind: IntKind) -> None:
        super().__init__(kind.name, kind.size, kind.size, int)
        self.kind = kind
        self._freeze()


class FloatNode(Node):
    __slots__ = ("kind",)

    def __init__(self, kind: FloatKind) -> None:
        super().__init__(kind.name, kind.size, kind.size, float)
        self.kind = kind
        self._freeze()


class BoolNode(Node):
    __slots__ = ()

    def __init__(self) -> None:
        super().__init__("bool", 1, 1, bool)
        self._freeze()


class UnitNode(Node):
    __slots__ = ()

    def __init__(self) -> None:
        super().__init__("None", 0, 0, type(None))
        self._freeze()


class StrNode(Node):
    """u16 length, then UTF-8 (r[jetstream.wireformat.string]). ``errors`` is the codec error
    handler: ``"strict"`` (JetStream's rule) or ``"surrogateescape"`` (9P names, any bytes)."""

    __slots__ = ("errors",)

    def __init__(self, errors: str = "strict") -> None:
        super().__init__("str" if errors == "strict" else "fsstr", None, 2, str)
        self.errors = errors
        self._freeze()


class BytesNode(Node):
    """Data: u32 length, then the bytes (r[jetstream.wireformat.data])."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__("bytes", None, 4, bytes)
        self._freeze()


class UrlNode(Node):
    __slots__ = ()

    def __init__(self, py_type: Any) -> None:
        super().__init__("Url", None, 2, py_type)
        self._freeze()


class TimeNode(Node):
    __slots__ = ()

    def __init__(self, py_type: Any) -> None:
        super().__init__("datetime", 8, 8, py_type)
        self._freeze()


class IPNode(Node):
    """IPv4 (4 octets) or IPv6 (16 octets), network order."""

    __slots__ = ("version",)

    def __init__(self, version: int, py_type: Any) -> None:
        size = 4 if version == 4 else 16
        super().__init__(f"IPv{version}Address", size, size, py_type)
        self.version = version
        self._freeze()


class SeqNode(Node):
    """u16 count, then the elements: ``list[T]``, ``tuple[T, ...]`` and ``deque[T]``."""

    __slots__ = ("container", "elem")

    def __init__(self, elem: Node, container: type) -> None:
        label = f"tuple[{elem.label}, ...]" if container is tuple else f"{container.__name__}[{elem.label}]"
        super().__init__(label, None, 2, container)
        self.elem = elem
        self.container = container
        self._planned()

    def children(self) -> tuple[Node, ...]:
        return (self.elem,)


class SetNode(Node):
    """u16 count, then the elements in order: ``set[T]``, ``frozenset[T]``."""

    __slots__ = ("container", "elem")

    def __init__(self, elem: Node, container: type) -> None:
        super().__init__(f"{container.__name__}[{elem.label}]", None, 2, container)
        self.elem = elem
        self.container = container
        self._planned()

    def children(self) -> tuple[Node, ...]:
        return (self.elem,)


class MapNode(Node):
    """u16 count, then key, value pairs in key order: ``dict[K, V]``."""

    __slots__ = ("key", "value")

    def __init__(self, key: Node, value: Node) -> None:
        super().__init__(f"dict[{key.label}, {value.label}]", None, 2, dict)
        self.key = key
        self.value = value
        self._planned()

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
        self._planned()

    def children(self) -> tuple[Node, ...]:
        return (self.inner,)


class TupleNode(Node):
    __slots__ = ("items",)

    def __init__(self, items: list[Node] | tuple[Node, ...]) -> None:
        label = "tuple[" + ", ".join(i.label for i in items) + "]" if items else "tuple[()]"
        super().__init__(label, fixed_size(items), min_size(items), tuple)
        self.items = tuple(items)
        self._planned()

    def children(self) -> tuple[Node, ...]:
        return self.items


class FieldPlan(NamedTuple):
    """One field of a struct: its node (None when skipped) and ``hint``, the annotation it was
    planned from as resolved (strings evaluated, type parameters bound, ``Annotated`` markers
    kept), for what reads the plan and needs the user's own words (the strategies' registry).
    A named tuple: immutable, and made at a tuple's cost (one per field of every class)."""

    name: str
    node: Node | None
    skip: bool
    init: bool
    kw_only: bool = False
    hint: Any = None


class StructNode(Node):
    """A ``@wireformat`` class: its wire fields in declaration order (r[jetstream.wireformat.struct]).

    Created empty and cached before its fields are planned, so recursive types refer to it;
    ``finish()`` gives it its fields and freezes it.
    """

    __slots__ = ("_positional", "args", "cls", "complete", "direct", "fields", "wire_fields")

    def __init__(self, cls: type, label: str, args: tuple[Any, ...]) -> None:
        super().__init__(label, None, 0, cls)
        self.cls = cls
        self.args = args
        self.fields: tuple[FieldPlan, ...] = ()
        self.wire_fields: tuple[FieldPlan, ...] = ()  # the fields on the wire: not skipped
        self.complete = False
        self.direct = False  # decoding may store fields without calling __init__
        self._positional = True

    def finish(self, fields: list[FieldPlan], direct: bool) -> None:
        # one pass over the fields: a class is planned once, but every class of a program is
        wire: list[FieldPlan] = []
        fixed: int | None = 0
        least = 0
        positional = True  # every wire field is one of the leading positional __init__ parameters
        skipped_before = False  # a skipped field __init__ takes came before this one
        for f in fields:
            if f.skip:
                skipped_before = skipped_before or f.init
                continue
            wire.append(f)
            positional = positional and f.init and not f.kw_only and not skipped_before
            if f.node is not None:
                least += f.node.min_size
                fixed = None if fixed is None or f.node.fixed is None else fixed + f.node.fixed
        self.fields = tuple(fields)
        self.wire_fields = tuple(wire)
        self.fixed = fixed
        self.min_size = least
        self.direct = direct
        self._positional = positional
        self.complete = True
        self._planned()

    def positional(self) -> bool:
        """Whether the wire fields are exactly the leading ``__init__`` parameters, in order."""
        return self._positional

    def children(self) -> tuple[Node, ...]:
        return tuple(f.node for f in self.wire_fields if f.node is not None)


class Variant(Frozen):
    __slots__ = ("name", "node", "py_type", "tag")

    def __init__(self, tag: int, py_type: type, node: Node, name: str) -> None:
        super().__init__()
        self.tag = tag
        self.py_type = py_type
        self.node = node
        self.name = name
        self._freeze()

    def __repr__(self) -> str:
        return f"<Variant {self.tag} {self.name}>"


class UnionNode(Node):
    """A u8 tag then the variant: ``@wireenum`` (tags 0, 1, ...), IpAddr and SocketAddr (4, 6).

    The variant is chosen by the value's class on encode (``values.variant_of``) and by the tag
    on decode. Created empty, so recursive types refer to it; ``finish()`` freezes it.
    """

    __slots__ = ("args", "by_tag", "by_type", "complete", "variants")

    def __init__(self, label: str, py_type: Any, args: tuple[Any, ...] = ()) -> None:
        super().__init__(label, None, 1, py_type)
        self.variants: tuple[Variant, ...] = ()
        self.by_tag: dict[int, Variant] = {}
        self.by_type: dict[type, Variant] = {}
        self.args = args
        self.complete = False

    def finish(self, variants: list[Variant]) -> None:
        self.variants = tuple(variants)
        self.by_tag = {v.tag: v for v in variants}
        self.by_type = {v.py_type: v for v in variants}
        sizes = {v.node.fixed for v in variants}
        self.fixed = None if None in sizes or len(sizes) != 1 else 1 + sizes.pop()  # type: ignore[operator]
        self.complete = True
        self._planned()

    def children(self) -> tuple[Node, ...]:
        return tuple(v.node for v in self.variants)


class FrameNode(Node):
    """``size[4] type[1] tag[2] body``: one whole message of the 9P family (r[9p2000l.frame.header]).

    ``size`` counts the whole frame, itself included; ``type`` is the union's tag for the
    message's class (a message number such as 100, not a declaration index); ``tag`` pairs a
    reply with its request. A frame is always a whole message, never a field.
    """

    __slots__ = ("cls", "direct", "union")

    def __init__(self, cls: type, union: UnionNode, direct: bool) -> None:
        super().__init__(cls.__name__, None, HEADER_SIZE, cls)
        self.cls = cls
        self.union = union
        self.direct = direct  # decoding may store tag and msg without calling __init__
        self._planned()

    def children(self) -> tuple[Node, ...]:
        return (self.union,)


class EnumNode(Node):
    """An ``enum.Enum``: its members are unit variants, a u8 index in definition order."""

    __slots__ = ("index", "members")

    def __init__(self, cls: type) -> None:
        super().__init__(cls.__name__, 1, 1, cls)
        self.members: tuple[Any, ...] = tuple(cls)  # type: ignore[arg-type]
        self.index = {m: i for i, m in enumerate(self.members)}
        self._freeze()


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
        self._planned()

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
        self._planned()

    def children(self) -> tuple[Node, ...]:
        return (self.inner,)


# ---------------------------------------------------------------------------------------------
# Structural analyses: folds over children()

# How much each kind adds to the nesting of what it holds: a container one level, a user's
# codec or conversion none (its value is its inner type's); a struct, union or frame starts
# again from 0 (MAX_DEPTH bounds them at run time), as do leaves.
_NESTING_STEP: dict[type[Node], int] = {
    SeqNode: 1, SetNode: 1, MapNode: 1, OptionNode: 1, TupleNode: 1, CustomNode: 0, ConvertNode: 0,
}


def type_nesting(node: Node) -> int:
    """Containers inside each other within one annotation, ``node`` included."""
    step = _NESTING_STEP.get(node._closed)  # its kind, while it is being built too
    if step is None:
        return 0
    return max((child.nesting for child in node.children()), default=0) + step


def fixed_size(parts: tuple[Node, ...] | list[Node]) -> int | None:
    """The size of ``parts`` one after another, when each has a fixed size."""
    total = 0
    for part in parts:
        if part.fixed is None:
            return None
        total += part.fixed
    return total


def min_size(parts: tuple[Node, ...] | list[Node]) -> int:
    return sum(part.min_size for part in parts)


def zero_width_entries(node: Node) -> bool:
    """Whether the entries of a collection take no bytes, so only a budget bounds how many a
    few bytes of input make (r[jetstream.wireformat.vec], map, set say nothing of it)."""
    if isinstance(node, (SeqNode, SetNode, MapNode)):
        return fixed_size(node.children()) == 0
    return False


def entries_may_take_no_bytes(node: Node) -> bool:
    """Whether a collection's entries may take no bytes, which only decoding each tells: a
    user's codec (``With``) may read nothing. Such entries count against the same budget."""
    if isinstance(node, (SeqNode, SetNode, MapNode)):
        return min_size(node.children()) == 0 and not zero_width_entries(node)
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
    most 256 values (a byte): their worst case is cheap. An Option crowds as its value does."""
    if isinstance(node, (StrNode, BytesNode, UrlNode)):
        return False
    if isinstance(node, IntNode):
        return node.kind.size > 8
    if isinstance(node, IPNode):
        return node.version != 4
    if isinstance(node, OptionNode):
        return any(map(hashes_may_crowd, node.children()))
    return node.fixed is None or node.fixed > 1


class UnknownNodeError(JetwireError, AssertionError):
    """A consumer of plans (the interpreter, the strategies...) met a node type its table from
    node type to handler lacks: a bug in jetwire, a kind of node added without its handlers,
    never a fault of the value or the bytes."""


def unknown_node(table: str, node: object) -> UnknownNodeError:
    return UnknownNodeError(f"internal error: {table} has no entry for {type(node).__name__} ({node!r})")

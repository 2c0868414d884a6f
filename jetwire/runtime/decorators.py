"""``@wireformat`` and ``@wireenum``: dataclasses that know their wire layout.

Decorating checks the declaration at once (a bare ``int`` is an error here, naming the class
and field); code is generated on first use, so importing many message classes stays cheap.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import sys
import threading
import types
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar, TypeVar, get_origin, overload

from typing_extensions import dataclass_transform

from ..compiler.plan import (
    MAX_VARIANTS,
    ConvertNode,
    CustomNode,
    FrameNode,
    Node,
    StructNode,
    UnionNode,
    reaches,
)
from ..compiler.planner import UNBOUND, Unresolved, class_plan
from ..compiler.state import ClassState, class_info, class_state, set_state
from ..compiler.unit import installed_method
from ..errors import DecodeError, SchemaError
from . import classes, streams

if TYPE_CHECKING:
    import asyncio

T = TypeVar("T", bound=type)

_METHODS = ("encode", "decode", "decode_prefix", "byte_size",
            "encode_to", "decode_from", "encode_async", "decode_async")
_GENERATED = frozenset({"encode", "decode", "decode_prefix", "byte_size"})  # the unit's functions


@overload
def wireformat(cls: T, /) -> T: ...


@overload
def wireformat(
    cls: None = None,
    /,
    *,
    init: bool = True,
    repr: bool = True,
    eq: bool = True,
    order: bool = False,
    unsafe_hash: bool = False,
    frozen: bool = False,
    match_args: bool = True,
    kw_only: bool = False,
    slots: bool = False,
) -> Callable[[T], T]: ...


@dataclass_transform(field_specifiers=(dataclasses.field, dataclasses.Field))
def wireformat(cls: Any = None, /, **options: Any) -> Any:
    """Makes ``cls`` a dataclass (unless it is one) whose fields are written in order
    (r[jetstream.wireformat.struct]), and gives it ``encode``, ``decode``, ``byte_size``...

    Dataclass options (``frozen``, ``slots``, ``order``, ...) pass through.
    """

    def wrap(c: Any) -> Any:
        return _make_struct(c, options, sys._getframe(1 if cls is None else 2))

    return wrap if cls is None else wrap(cls)


@overload
def wireenum(cls: T, /) -> T: ...


@overload
def wireenum(
    cls: None = None,
    /,
    *,
    init: bool = True,
    repr: bool = True,
    eq: bool = True,
    order: bool = False,
    unsafe_hash: bool = False,
    frozen: bool = False,
    match_args: bool = True,
    kw_only: bool = False,
    slots: bool = False,
) -> Callable[[T], T]: ...


@dataclass_transform(field_specifiers=(dataclasses.field, dataclasses.Field))
def wireenum(cls: Any = None, /, **options: Any) -> Any:
    """A tagged union (r[jetstream.wireformat.enum]): each nested class is a variant, numbered
    0, 1, ... in definition order, written as that u8 index then the variant's fields.

    Variants become dataclasses (with ``options``) and subclasses of the enum, so
    ``isinstance(Shape.Circle(radius=5), Shape)`` holds and ``match`` works.
    """

    def wrap(c: Any) -> Any:
        return _make_enum(c, options, sys._getframe(1 if cls is None else 2))

    return wrap if cls is None else wrap(cls)


def caller_names(depth: int) -> dict[str, Any]:
    """The names of the function ``depth`` frames up (1 is the caller of this function), as
    they are now: with postponed annotations, a field or parameter may name a class local to
    that function, which ``get_type_hints`` alone cannot see."""
    return _frame_names(sys._getframe(depth))


def _frame_names(frame: types.FrameType) -> dict[str, Any]:
    names: dict[str, Any] = {}
    if frame.f_globals.get("__name__") not in sys.modules:  # code run by exec() with its own globals
        names.update(frame.f_globals)
    if frame.f_locals is not frame.f_globals:
        names.update(frame.f_locals)
    return names


class _Scope:
    """The wire classes one call of a function has declared so far.

    A class's names are taken when it is decorated, so a class declared later in the same
    function (mutual recursion) is missing from them, and in a loop the name is still bound to
    the class of the round before. The scope puts each class declared later into the names of
    the classes still waiting for one, and knows where each was declared, so that a name bound
    to a class declared further down the function is known to be a round behind.
    """

    __slots__ = ("frame_id", "latest", "lines", "waiting")

    def __init__(self, frame_id: int) -> None:
        self.frame_id = frame_id
        self.latest: weakref.ref[type] | None = None
        self.lines: weakref.WeakKeyDictionary[type, int] = weakref.WeakKeyDictionary()
        # classes not planned yet (a name was missing) or generic (planned where used)
        self.waiting: weakref.WeakSet[type] = weakref.WeakSet()

    def same_call(self, frame: types.FrameType, names: dict[str, Any]) -> bool:
        # A frame's id is reused once it is freed: the call is the same only if the class it
        # declared last is still bound to its name.
        latest = self.latest() if self.latest is not None else None
        return self.frame_id == id(frame) and latest is not None and names.get(latest.__name__) is latest


_scopes: weakref.WeakKeyDictionary[types.CodeType, _Scope] = weakref.WeakKeyDictionary()
_scope_lock = threading.Lock()


def _declaring_names(cls: type, frame: types.FrameType) -> tuple[dict[str, Any], _Scope | None]:
    """The names ``cls``, decorated in ``frame``, may use, without those bound to a class of an
    earlier round of a loop; and the scope of the call, which ``_declared`` completes."""
    names = _frame_names(frame)
    if frame.f_locals is frame.f_globals:
        return names, None  # a module's names are read as they are when the class is planned
    with _scope_lock:
        scope = _scopes.get(frame.f_code)
        if scope is None or not scope.same_call(frame, names):
            scope = _scopes[frame.f_code] = _Scope(id(frame))
        line = frame.f_lineno
        for name, value in names.items():
            if isinstance(value, type) and scope.lines.get(value, -1) > line:
                names[name] = UNBOUND
        code = frame.f_code
        for name in code.co_varnames + code.co_cellvars:
            names.setdefault(name, UNBOUND)
        scope.lines[cls] = line
        scope.latest = weakref.ref(cls)
    return names, scope


def _give_to_waiting(cls: type, scope: _Scope | None) -> None:
    """Puts ``cls`` in the names of the classes of its scope still waiting for a name (before
    ``cls`` is planned, which may plan them)."""
    if scope is None:
        return
    with _scope_lock:
        for earlier in list(scope.waiting):
            state = class_state(earlier)
            if state is None:
                continue
            if state.plans and not earlier.__dict__.get("__parameters__"):
                scope.waiting.discard(earlier)  # planned since: its names are no longer read
            else:
                state.localns[cls.__name__] = cls


def _wait_if_unplanned(cls: type, scope: _Scope | None) -> None:
    info = class_state(cls)
    if scope is not None and info is not None and (not info.plans or cls.__dict__.get("__parameters__")):
        with _scope_lock:
            scope.waiting.add(cls)


def _check_decoratable(cls: Any, decorator: str) -> None:
    if not isinstance(cls, type):
        raise SchemaError(f"@{decorator} decorates a class, not {cls!r}")
    info = class_info(cls)
    if info is not None:
        was = {"struct": "@wireformat class", "enum": "@wireenum class"}.get(info.kind, "variant of a @wireenum")
        raise SchemaError(f"@{decorator} {cls.__qualname__}: it is already a {was}; decorate it once")
    if issubclass(cls, enum.Enum):
        raise SchemaError(
            f"@{decorator} {cls.__qualname__}: an enum.Enum is a wire type as it is (its members "
            f"are written as a u8 index): annotate fields with it, undecorated"
        )


def _make_struct(cls: Any, options: dict[str, Any], frame: types.FrameType) -> Any:
    _check_decoratable(cls, "wireformat")
    own = set(cls.__dict__)
    made_init = False
    if "__dataclass_fields__" in cls.__dict__:
        if options:
            raise SchemaError(f"{cls.__qualname__} is already a dataclass: give the options to @dataclass")
    else:
        cls = _dataclass(cls, options)
        made_init = "__init__" not in own and options.get("init", True)
    _check_field_names(cls)
    nested = _nested_classes(cls)
    if nested and not dataclasses.fields(cls):
        raise SchemaError(
            f"@wireformat {cls.__qualname__} has no fields, only nested classes "
            f"({', '.join(name for name, _ in nested)}), so it would encode to nothing: "
            f"for a tagged union of those classes, use @wireenum"
        )
    localns, scope = _declaring_names(cls, frame)
    set_state(cls, ClassState("struct", localns=localns, generated_init=made_init))
    _attach_methods(cls, own)
    _give_to_waiting(cls, scope)
    _plan_now(cls)
    _wait_if_unplanned(cls, scope)
    return cls


def _make_enum(cls: Any, options: dict[str, Any], frame: types.FrameType) -> Any:
    _check_decoratable(cls, "wireenum")
    if "__dataclass_fields__" in cls.__dict__:
        raise SchemaError(f"@wireenum {cls.__qualname__}: the enum itself is not a dataclass")
    nested = _nested_classes(cls)
    fields = [name for name, hint in inspect.get_annotations(cls).items() if not _is_class_var(hint)]
    if fields:
        raise SchemaError(
            f"@wireenum {cls.__qualname__} declares {', '.join(fields)} on the enum itself: the wire "
            f"holds only the variant's index and the variant's own fields; declare them in each variant"
        )
    if not nested:
        raise SchemaError(f"@wireenum {cls.__qualname__} has no variants (nested classes)")
    if len(nested) > MAX_VARIANTS:
        raise SchemaError(f"@wireenum {cls.__qualname__} has {len(nested)} variants; the wire allows 256")
    localns, scope = _declaring_names(cls, frame)
    info = ClassState("enum", localns=localns)
    set_state(cls, info)
    info.localns[cls.__name__] = cls
    made_from: dict[type, type] = {}  # each variant as written -> as rebuilt
    for name, variant in nested:
        body = {k: v for k, v in variant.__dict__.items() if k not in ("__dict__", "__weakref__")}
        # a base the enum already has (WireFormat, say) comes with it: naming it first again
        # would put it before the enum and give no consistent MRO; a variant that extends an
        # earlier one extends it as rebuilt, with its fields
        bases = tuple(made_from.get(b, b) for b in variant.__bases__
                      if b is not object and not issubclass(cls, b)) + (cls,)
        try:
            made = type(variant)(variant.__name__, bases, body)
        except TypeError as exc:
            raise SchemaError(
                f"@wireenum {cls.__qualname__}: the variant {name} cannot also subclass the enum "
                f"({exc})"
            ) from None
        made.__qualname__ = variant.__qualname__
        made.__module__ = variant.__module__
        classes.rebind_class_cell(made, variant)
        made = _dataclass(made, options)
        _check_field_names(made)
        made_init = "__init__" not in body and options.get("init", True)
        set_state(made, ClassState("variant", owner=cls, generated_init=made_init))
        _attach_variant_decoders(made, set(body))
        setattr(cls, name, made)
        made_from[variant] = made
        info.variants.append(made)
        info.localns[variant.__name__] = made
    _attach_methods(cls, set(cls.__dict__) - set(_METHODS))
    _give_to_waiting(cls, scope)
    _plan_now(cls)
    _wait_if_unplanned(cls, scope)
    return cls


def _dataclass(cls: Any, options: dict[str, Any]) -> Any:
    """``classes.dataclass``, with what ``dataclasses`` refuses (a mutable default, a field
    without a default after one with) refused as a SchemaError like the rest."""
    try:
        return classes.dataclass(cls, options, _fields_may_nest)
    except SchemaError:
        raise
    except (TypeError, ValueError) as exc:
        raise SchemaError(f"{cls.__qualname__}: {exc}") from None


def _fields_may_nest(cls: type) -> bool:
    """Whether a field of ``cls`` may hold a value with generated methods of its own: a struct,
    a variant, user-typed or skipped data. Only then do ``__eq__``, ``__hash__`` and
    ``__repr__`` of ``cls`` count how deep they are (a thread-local count per call: 2.7 times
    the cost of a flat class's ``==``)."""
    try:
        node = class_plan(cls)
    except SchemaError:  # a variant, or a forward reference not declared yet: count
        return True
    if not isinstance(node, StructNode):
        return True
    wire = {f.name for f in node.fields if not f.skip and f.node is not None}
    if any(f.name not in wire for f in dataclasses.fields(cls)):
        return True
    return any(reaches(f.node, _holds_methods) for f in node.fields if f.node is not None)


def _holds_methods(node: Node) -> bool:
    return isinstance(node, (StructNode, UnionNode, FrameNode, CustomNode, ConvertNode))


def _nested_classes(cls: Any) -> list[tuple[str, type]]:
    return [
        (name, value)
        for name, value in cls.__dict__.items()
        if isinstance(value, type) and value.__qualname__ == f"{cls.__qualname__}.{name}"
    ]


def _is_class_var(hint: Any) -> bool:
    if isinstance(hint, str):
        return hint.startswith(("ClassVar", "typing.ClassVar"))
    return hint is ClassVar or get_origin(hint) is ClassVar


def _check_field_names(cls: Any) -> None:
    """A field named like a generated method would hide it (``order.encode`` the field's value)."""
    for f in dataclasses.fields(cls):
        if f.name in _METHODS:
            raise SchemaError(
                f"{cls.__qualname__}.{f.name}: a field cannot be named {f.name}, the name of the "
                f"method jetwire gives the class; rename it ({f.name}_, say)"
            )


def _plan_now(cls: Any) -> None:
    if cls.__dict__.get("__parameters__"):
        return  # generic: planned per parametrisation, where it is used
    try:
        class_plan(cls)
    except Unresolved:
        pass  # a name defined later: planned on first use


Buffer = bytes | bytearray | memoryview
Self = TypeVar("Self", bound="WireFormat")


class WireFormat:
    """The methods every decorated class gets, spelled out for type checkers.

    Inheriting is optional: ``@wireformat`` puts these methods on any class. Inherit from it
    (``class Order(WireFormat)``) when a type checker should see ``Order.decode`` and
    ``order.encode()``. Each method compiles the class's codec on first use and then replaces
    itself on the class with the generated function.
    """

    __slots__ = ()

    def encode(self) -> bytes:
        """The wire bytes of this value."""
        return installed_method(type(self), "encode")(self)  # type: ignore[no-any-return]

    def byte_size(self) -> int:
        """How many bytes ``encode()`` returns (it checks nothing; ``encode`` does)."""
        return installed_method(type(self), "byte_size")(self)  # type: ignore[no-any-return]

    @classmethod
    def decode(cls: type[Self], data: Buffer) -> Self:
        """The value encoded by ``data``, which must be used whole."""
        value: Self = installed_method(cls, "decode")(data)
        return value

    @classmethod
    def decode_prefix(cls: type[Self], data: Buffer, offset: int = 0) -> tuple[Self, int]:
        """The value encoded at ``data[offset:]`` and the offset where it ends."""
        return installed_method(cls, "decode_prefix")(data, offset)  # type: ignore[no-any-return]

    def encode_to(self, file: BinaryIO) -> int:
        """Writes ``self.encode()`` to a binary file object; returns the byte count."""
        return streams.write_value(self, file)

    @classmethod
    def decode_from(cls: type[Self], file: BinaryIO) -> Self:
        """Reads one value from a binary file object, consuming only its bytes."""
        value: Self = streams.read_value(_owner(cls), file)
        return value

    async def encode_async(self, writer: asyncio.StreamWriter) -> int:
        """Writes ``self.encode()`` to an asyncio stream and drains it."""
        return await streams.write_value_async(self, writer)

    @classmethod
    async def decode_async(cls: type[Self], reader: asyncio.StreamReader | streams.ValueReader) -> Self:
        """Reads one value from an ``asyncio.StreamReader`` (a field at a time: it cannot give
        bytes back) or a ``jetwire.ValueReader`` (fast), consuming only its bytes."""
        value: Self = await streams.read_value_async(_owner(cls), reader)
        return value


class _VariantDecoders:
    """A variant's decoders: the enum's, refusing bytes that hold another variant (the result
    would not be what the variant's type promises)."""

    @classmethod
    def decode(cls, data: Buffer) -> Any:
        """The value encoded by ``data``, which must be used whole and hold this variant."""
        return _this_variant(cls, _variant_of(cls)[1].decode(data))

    @classmethod
    def decode_prefix(cls, data: Buffer, offset: int = 0) -> tuple[Any, int]:
        """The value encoded at ``data[offset:]``, which must be this variant, and its end."""
        value, end = _variant_of(cls)[1].decode_prefix(data, offset)
        return _this_variant(cls, value, offset), end

    @classmethod
    def decode_from(cls, file: BinaryIO) -> Any:
        """Reads one value of the enum from a binary file object; it must be this variant."""
        return _this_variant(cls, streams.read_value(_variant_of(cls)[1], file))

    @classmethod
    async def decode_async(cls, reader: asyncio.StreamReader) -> Any:
        """Reads one value of the enum from an ``asyncio.StreamReader``; it must be this variant."""
        return _this_variant(cls, await streams.read_value_async(_variant_of(cls)[1], reader))


def _this_variant(cls: Any, value: Any, offset: int = 0) -> Any:
    variant, owner = _variant_of(cls)
    if value.__class__ is not variant:
        enum = owner.__qualname__.rsplit("<locals>.", 1)[-1]  # as the enum's plan labels it
        raise DecodeError(
            f"expected {enum}.{variant.__name__}, found {enum}.{type(value).__name__}", enum, offset
        )
    return value


_VARIANT_DECODERS = ("decode", "decode_prefix", "decode_from", "decode_async")


def _attach_variant_decoders(variant: Any, user_defined: set[str]) -> None:
    for name in _VARIANT_DECODERS:
        if name not in user_defined:
            setattr(variant, name, _VariantDecoders.__dict__[name])


def _owner(cls: Any) -> Any:
    info = class_info(cls)
    return info.owner if info is not None and info.kind == "variant" else cls


def _variant_of(cls: Any) -> tuple[Any, Any]:
    """The variant ``cls`` is (or subclasses) and its enum."""
    for c in cls.__mro__:
        info = class_info(c)
        if info is not None and info.kind == "variant":
            return c, info.owner
    raise SchemaError(f"{cls.__qualname__} is not a variant of a @wireenum")


def _attach_methods(cls: Any, user_defined: set[str]) -> None:
    """Puts ``WireFormat``'s methods on ``cls`` as stubs: the first call of each compiles what
    it needs of the class's codec and puts the generated function in the stub's place."""
    state = class_state(cls)
    assert state is not None
    for name in _METHODS:
        if name not in user_defined:
            stub = WireFormat.__dict__[name]
            setattr(cls, name, stub)
            if name in _GENERATED:
                state.stubs[name] = stub

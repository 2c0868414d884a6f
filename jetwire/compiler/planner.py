"""Type hints to plans: the one place where a Python annotation becomes a wire layout."""

from __future__ import annotations

import collections.abc
import contextlib
import dataclasses
import datetime
import enum
import inspect
import ipaddress
import sys
import threading
import types
import typing
from collections.abc import Iterator
from typing import Annotated, Any, ForwardRef, TypeVar, Union, get_args, get_origin

from ..errors import SchemaError
from ..markers import (
    As,
    DecodeWith,
    EncodeWith,
    FloatKind,
    IntKind,
    SizeWith,
    Some,
    StrErrors,
    Tagged,
    With,
    _SkipMarker,
)
from ..wiretypes import Url
from .plan import (
    MAX_TYPE_NESTING,
    MAX_VARIANTS,
    BoolNode,
    BytesNode,
    ConvertNode,
    CustomNode,
    EnumNode,
    FieldPlan,
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
from .state import ClassState, class_state, frame_message
from .state import class_info as class_info  # the planner's readers import it from here

NoneType = type(None)
_lock = threading.RLock()


class Registry:
    """What the planner keeps between calls, in one place: the state of the planning under way,
    the plans it shares, and the unions tagged by default. A class's own plans are kept on the
    class (``ClassState.plans``)."""

    def __init__(self) -> None:
        # Unions whose members alone say how they are tagged (IpAddr, SocketAddr): declarations,
        # made by register_default_tags, so clear() keeps them.
        self.default_tags: dict[frozenset[type], Tagged] = {}
        self.planning: list[type] = []  # classes whose plans are being built: visible to forward references
        self.open_containers = 0  # containers open around the hint being planned, in the current class's field
        self.enum_nodes: dict[type, EnumNode] = {}
        self.tagged_nodes: dict[tuple[tuple[int, type], ...], UnionNode] = {}
        self.frame_nodes: dict[type, FrameNode] = {}
        self.annotation_code: dict[str, types.CodeType] = {}  # each annotation string compiled once
        # Plans of hints that name no class of the user's, by hint (``u32``, ``list[str]``, ...):
        # the same few recur in every class of an application, and planned nodes never change.
        self.plain_nodes: dict[Any, Node] = {}

    def clear(self) -> None:
        """Forgets every plan and compiled annotation shared between classes (planning anew gives
        equal plans); keeps the default tags, which are declarations."""
        with _lock:
            if self.planning:
                raise RuntimeError("the planner's registry cannot be cleared while planning")
            self.enum_nodes.clear()
            self.tagged_nodes.clear()
            self.frame_nodes.clear()
            self.annotation_code.clear()
            self.plain_nodes.clear()


registry = Registry()


def register_default_tags(tagged: Tagged) -> None:
    """Makes the union of ``tagged``'s classes tagged as it says wherever it is written without
    a ``Tagged`` marker (``SocketAddrV4 | SocketAddrV6`` is jetwire's ``SocketAddr``)."""
    members = list(tagged.tags.values())
    if not members or not all(isinstance(m, type) for m in members):
        raise SchemaError(f"register_default_tags({tagged!r}): a union of classes is needed")
    with _lock:
        registry.default_tags[frozenset(members)] = tagged


register_default_tags(Tagged({4: ipaddress.IPv4Address, 6: ipaddress.IPv6Address}, "IpAddr"))

_INT_CHOICES = "jetwire.u8, u16, u32, u64, u128, i16, i32, i64, i128, usize or isize (e.g. `x: u32`)"
_TYPING_MODULES = frozenset({"typing", "typing_extensions", "types"})


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


_CHOICES = (
    "bool, str, bytes, float, None, jetwire.u8 … i128, usize, isize, f32, f64, list[T], tuple[...], "
    "collections.deque[T], set[T], "
    "frozenset[T], dict[K, V], T | None, jetwire.Option[T], a @wireformat or @wireenum class, "
    "an enum.Enum, ipaddress.IPv4Address/IPv6Address, jetwire.IpAddr, jetwire.SocketAddr, "
    "datetime.datetime, jetwire.Url, or Annotated[..., With(codec)]"
)


class Unresolved(SchemaError):
    """A forward reference that names nothing yet: planning waits for first use."""


class _Unbound:
    def __repr__(self) -> str:
        return "<a local name not bound yet>"


UNBOUND: Any = _Unbound()
"""What a class's names hold for a local of its declaring function that was not bound (or
bound to a class of an earlier round of a loop) when the class was declared: inside a
function a name is local throughout, so the module's class of the same name is not meant."""


class _Names(dict[str, Any]):
    """Names to evaluate an annotation with, where ``UNBOUND`` is a name not defined yet."""

    def __getitem__(self, name: str) -> Any:
        value = dict.__getitem__(self, name)
        if value is UNBOUND:
            raise NameError(f"name {name!r} is not defined")
        return value


def plan(tp: Any) -> Node:
    """The plan of any annotation jetwire accepts."""
    with _lock, _only_schema_errors(tp):
        if isinstance(tp, type) and frame_message(tp) is not None:
            return _frame_plan(tp)
        return _build(tp, {})


@contextlib.contextmanager
def _only_schema_errors(what: Any) -> Iterator[None]:
    """Whatever goes wrong while planning reaches the user as a SchemaError: a declaration
    is either accepted or refused, never a crash (the original, if any, is its cause)."""
    try:
        yield
    except SchemaError:
        raise
    except RecursionError:
        raise SchemaError(f"{_name(what)} nests too deeply to plan") from None
    except Exception as exc:
        raise SchemaError(f"cannot plan {_name(what)}: {type(exc).__name__}: {exc}") from exc


def _name(what: Any) -> str:
    return getattr(what, "__qualname__", None) or repr(what)


def _frame_plan(cls: type) -> FrameNode:
    node = registry.frame_nodes.get(cls)
    if node is None:
        message = frame_message(cls)
        union = _build(message, {})
        if not isinstance(union, UnionNode):
            raise SchemaError(
                f"{cls.__qualname__}: a frame's message is a union tagged by message numbers, "
                f"e.g. Annotated[Tversion | Rversion, jetwire.Tagged({{100: Tversion, 101: Rversion}})], "
                f"not {union.label}"
            )
        bases = [c for c in cls.__mro__ if "__init__" in c.__dict__]
        base_state = class_state(bases[0])
        direct = base_state is not None and base_state.plain_init
        node = registry.frame_nodes[cls] = FrameNode(cls, union, direct)
    return node


def class_plan(cls: type, args: tuple[Any, ...] = ()) -> Node:
    with _lock, _only_schema_errors(cls):
        return _class_plan(cls, args)


def _class_plan(cls: type, args: tuple[Any, ...]) -> Node:
    info = class_info(cls)
    assert info is not None
    if info.kind == "variant":  # before the cache, which holds the variant's body for its enum
        assert info.owner is not None
        enum, variant = info.owner.__qualname__, cls.__qualname__
        raise SchemaError(
            f"{variant} is a variant of {enum}, not a type of its own on the wire (its bytes "
            f"are {enum}'s tag then its fields): use {enum} as the type, or "
            f"{variant}.decode(data) to read a {enum} that must be a {cls.__name__}"
        )
    cached = info.plans.get(args)
    if cached is not None:
        return cached
    params: tuple[Any, ...] = cls.__dict__.get("__parameters__", ())
    if len(params) != len(args):
        if not args:
            raise SchemaError(
                f"{cls.__qualname__} is generic in {', '.join(map(str, params))}: "
                f"name its parameters where it is used, e.g. "
                f"{cls.__qualname__}[{', '.join(['jetwire.u32'] * len(params))}]"
            )
        raise SchemaError(f"{cls.__qualname__} takes {len(params)} type parameters, got {len(args)}")
    typevars = dict(zip(params, args))
    name = cls.__qualname__.rsplit("<locals>.", 1)[-1]
    label = name if not args else f"{name}[{', '.join(map(_label, args))}]"
    node: Node
    try:
        if info.kind == "struct":
            node = StructNode(cls, label, args)
            info.plans[args] = node
            node.finish(_plan_fields(cls, typevars, info.localns), _direct_construction(cls, info))
        else:
            node = UnionNode(label, cls, args)
            info.plans[args] = node
            variants = []
            for index, vcls in enumerate(info.variants):
                vnode = StructNode(vcls, f"{label}.{vcls.__name__}", args)
                vinfo = class_info(vcls)
                assert vinfo is not None
                vinfo.plans[args] = vnode
                vnode.finish(_plan_fields(vcls, typevars, info.localns), _direct_construction(vcls, vinfo))
                variants.append(Variant(index, vcls, vnode, vcls.__name__))
            node.finish(variants)
    except BaseException:
        info.plans.pop(args, None)
        for vcls in info.variants:
            vinfo = class_info(vcls)
            if vinfo is not None:
                vinfo.plans.pop(args, None)
        raise
    return node


def _direct_construction(cls: type, info: ClassState) -> bool:
    """Whether decoding may skip ``__init__`` and store the fields itself, with the same result:
    only where ``__init__`` is dataclass's own and nothing else runs when fields are set."""
    params = getattr(cls, "__dataclass_params__", None)
    return bool(
        info.generated_init
        and params is not None
        and not params.frozen
        and not hasattr(cls, "__post_init__")
        and getattr(cls, "__setattr__", None) is object.__setattr__
        # InitVar and ClassVar pseudo-fields: an InitVar is an __init__ argument fields() omits
        and len(cls.__dataclass_fields__) == len(dataclasses.fields(cls))  # type: ignore[attr-defined]
    )


def _label(tp: Any) -> str:
    try:
        return _build(tp, {}).label
    except SchemaError:
        return getattr(tp, "__name__", repr(tp))


def resolve_hints(cls: type, localns: dict[str, Any]) -> dict[str, Any]:
    """The annotations of ``cls``'s fields as objects: ``typing.get_type_hints`` for the names
    dataclasses made fields, each string compiled once per program rather than once per field
    (postponed annotations repeat: ``"u32"``, ``"list[str]"``)."""
    ns: dict[str, Any] = _Names()
    for c in registry.planning:
        ns.setdefault(c.__name__, c)
    ns.update(localns)
    # A class's own name means the class, whatever the declaring function's names held when it
    # was decorated: declared again in a loop, the name was still bound to the last round's class.
    ns[cls.__name__] = cls
    wanted = set(getattr(cls, "__dataclass_fields__", ()))
    hints: dict[str, Any] = {}
    for base in cls.__mro__:
        annotations = inspect.get_annotations(base)
        if not annotations:
            continue
        module = sys.modules.get(base.__module__)
        module_ns = module.__dict__ if module is not None else {}
        for name, value in annotations.items():
            if name in hints or name not in wanted:
                continue
            if isinstance(value, str):
                value = _evaluate(cls, name, value, module_ns, ns)
            hints[name] = value
    return hints


def _evaluate(cls: type, name: str, text: str, module_ns: dict[str, Any], ns: dict[str, Any]) -> Any:
    try:
        code = _annotation(text)
    except SchemaError as exc:
        raise SchemaError(f"{cls.__qualname__}.{name}: {exc}") from None
    try:
        return eval(code, module_ns, ns)  # noqa: S307 - the user's own annotation
    except NameError as exc:
        raise Unresolved(f"{cls.__qualname__}: {exc}") from None
    except Exception as exc:
        raise SchemaError(f"{cls.__qualname__}.{name}: {_failed(text, exc)}") from None


def _failed(text: str, exc: Exception) -> str:
    return f"the annotation {text!r} raised {type(exc).__name__}: {exc}"


def _annotation(text: str) -> types.CodeType:
    """``text`` compiled once per program (the same strings recur in every class)."""
    code = registry.annotation_code.get(text)
    if code is None:
        try:
            code = compile(text, "<annotation>", "eval")
        except SyntaxError:
            raise SchemaError(f"the annotation {text!r} is not a type expression") from None
        registry.annotation_code[text] = code
    return code


def _plan_fields(cls: type, typevars: dict[Any, Any], localns: dict[str, Any]) -> list[FieldPlan]:
    registry.planning.append(cls)
    outer_containers, registry.open_containers = registry.open_containers, 0  # a class's fields nest from 0
    try:
        declared = dataclasses.fields(cls)
        # Annotations that are already objects need no get_type_hints (a third of planning);
        # strings nested in them (list["Node"]) are resolved by _build, as get_type_hints would.
        if any(isinstance(f.type, str) for f in declared):
            hints = resolve_hints(cls, localns)
        else:
            hints = {}
        fields = []
        for f in declared:
            hint = hints.get(f.name, f.type)
            known = None if typevars else _plain_node(hint)
            if known is not None:  # planned before (never a Skip field: Skip is not planned)
                fields.append(FieldPlan(f.name, known, False, f.init, f.kw_only is True, hint))
                continue
            where = f"{cls.__qualname__}.{f.name}"
            if _is_skipped(hint):
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    raise SchemaError(f"{where} is Skip: give it a default, decoding needs one")
                fields.append(FieldPlan(f.name, None, True, f.init, f.kw_only is True, hint))
                continue
            try:
                node = _build(hint, typevars)
                bound = substitute(hint, typevars) if typevars else hint
            except Unresolved:
                raise
            except SchemaError as exc:
                raise SchemaError(f"{where}: {exc}") from None
            fields.append(FieldPlan(f.name, node, False, f.init, f.kw_only is True, bound))
        return fields
    finally:
        registry.planning.pop()
        registry.open_containers = outer_containers


def _is_skipped(hint: Any) -> bool:
    return get_origin(hint) is Annotated and any(
        isinstance(m, _SkipMarker) for m in _flatten(hint.__metadata__)
    )


def _flatten(metadata: tuple[Any, ...]) -> list[Any]:
    """Metadata with ``u16`` (itself ``Annotated[int, U16]``) opened up."""
    out: list[Any] = []
    for m in metadata:
        if get_origin(m) is Annotated:
            out.extend(_flatten(m.__metadata__))
        else:
            out.append(m)
    return out


def substitute(tp: Any, typevars: dict[Any, Any]) -> Any:
    if isinstance(tp, TypeVar):
        if tp not in typevars:
            raise SchemaError(f"type parameter {tp} is not bound here")
        return typevars[tp]
    params = getattr(tp, "__parameters__", ())
    if params and typevars:
        return tp[tuple(substitute(p, typevars) for p in params)]
    return tp


# Kinds of node a plain hint plans to: values and containers, none that names a user's class.
_PLAIN_TYPES = frozenset({
    IntNode, FloatNode, BoolNode, UnitNode, StrNode, BytesNode, UrlNode, TimeNode, IPNode,
    SeqNode, SetNode, MapNode, OptionNode, TupleNode,
})


def _is_plain(node: Node) -> bool:
    return type(node) in _PLAIN_TYPES and all(map(_is_plain, node.children()))


def _names_by_text(tp: Any) -> bool:
    """Whether ``tp`` holds a name to resolve (``list["Node"]``): what it means depends on where
    it is written, so its plan is not shared by hint. A plain plan's hint is made of types and
    containers only, so looking through their arguments finds every such name."""
    if isinstance(tp, (str, ForwardRef)):
        return True
    if get_origin(tp) is Annotated:  # the markers of a plain plan are widths, never names
        return _names_by_text(tp.__origin__)
    return any(map(_names_by_text, get_args(tp)))


def _plain_node(tp: Any) -> Node | None:
    try:
        return registry.plain_nodes.get(tp)
    except TypeError:  # an unhashable hint (a marker holding a list, say): planned every time
        return None


def _build(tp: Any, typevars: dict[Any, Any]) -> Node:
    if typevars:
        return _build_new(tp, typevars)
    node = _plain_node(tp)
    if node is None:
        node = _build_new(tp, typevars)
        if _is_plain(node) and not _names_by_text(tp):
            try:
                registry.plain_nodes[tp] = node
            except TypeError:
                pass  # unhashable: nothing to key it by
    return node


def _build_new(tp: Any, typevars: dict[Any, Any]) -> Node:
    origin = get_origin(tp)
    if origin is Annotated:
        return _build_annotated(tp.__origin__, _flatten(tp.__metadata__), typevars)
    if isinstance(tp, TypeVar):
        return _build(substitute(tp, typevars), {})
    if isinstance(tp, (str, ForwardRef)):
        return _build(_resolve_forward(tp), typevars)
    if tp is None or tp is NoneType:
        return UnitNode()  # r[jetstream.wireformat.unit]
    if tp is bool:
        return BoolNode()
    if tp is int:
        raise SchemaError(f"a bare int has no wire width: use {_INT_CHOICES}")
    if tp is float:
        return FloatNode(FloatKind("f64", 8))
    if tp is str:
        return StrNode()
    if tp is bytes:
        return BytesNode()
    if origin is Union or origin is types.UnionType or origin is not None:
        return _build_container(tp, origin, typevars)
    if isinstance(tp, type):
        return _build_class(tp)
    if type(tp).__module__ not in _TYPING_MODULES:
        # a value where a type goes: most often encode/decode/read_value with swapped arguments
        raise SchemaError(
            f"got the value {_shorten(repr(tp))} (of class {type(tp).__name__}) where a type goes; "
            f"if it came from a call, were the arguments swapped? The type comes first in "
            f"decode(type, data) and read_value(type, file), second in encode(value, type). "
            f"The types are {_CHOICES}"
        )
    raise SchemaError(f"cannot encode {tp!r}: the choices are {_CHOICES}")


def _build_container(tp: Any, origin: Any, typevars: dict[Any, Any]) -> Node:
    """Counts the containers open around the one being planned, so that a type nested past
    MAX_TYPE_NESTING is refused before planning it recurses any deeper (never a RecursionError)."""
    if registry.open_containers >= MAX_TYPE_NESTING:
        raise SchemaError(_too_nested(tp))
    registry.open_containers += 1
    try:
        if origin is Union or origin is types.UnionType:
            node = _build_union(get_args(tp), typevars)
        else:
            node = _build_generic(tp, origin, get_args(tp), typevars)
    finally:
        registry.open_containers -= 1
    if registry.open_containers + node.nesting > MAX_TYPE_NESTING:  # a deep part planned before, reused
        raise SchemaError(_too_nested(tp))
    return node


def _too_nested(tp: Any) -> str:
    # names only the outer container: the type's repr is as deep as the type
    outer = getattr(get_origin(tp), "__name__", None) or "Optional"
    return (
        f"{outer}[...] nests more than jetwire.MAX_TYPE_NESTING ({MAX_TYPE_NESTING}) containers "
        f"(list, set, dict, tuple, Optional) inside each other: wrap a level in a @wireformat class"
    )


def _resolve_forward(ref: str | ForwardRef) -> Any:
    name = ref if isinstance(ref, str) else ref.__forward_arg__
    ns: dict[str, Any] = {}
    for c in registry.planning:
        module = sys.modules.get(c.__module__)
        if module is not None:
            ns.update(vars(module))
    for c in registry.planning:
        info = class_info(c)
        if info is not None:
            ns.update(info.localns)
    # The classes being planned are named last: a name taken from the declaring function when a
    # class was decorated may still be bound to the class of an earlier round of a loop.
    for c in registry.planning:
        ns[c.__name__] = c
    code = _annotation(name)
    try:
        return eval(code, {}, _Names(ns))  # noqa: S307 - a type expression from the user's own annotations
    except NameError as exc:
        raise Unresolved(f"cannot resolve {name!r}: {exc}") from None
    except Exception as exc:
        raise SchemaError(_failed(name, exc)) from None


def _check_callable(hooks: list[EncodeWith | DecodeWith | SizeWith], conversions: list[As]) -> None:
    """User functions are called only when a value goes through: refuse at declaration what
    could never be called."""
    for hook in hooks:
        if not callable(hook.fn):
            raise SchemaError(f"{type(hook).__name__}({hook.fn!r}): not a function")
    for conversion in conversions:
        for role, fn in (("to_wire", conversion.to_wire), ("from_wire", conversion.from_wire)):
            if fn is not None and not callable(fn):
                raise SchemaError(f"As(...): its {role} conversion {fn!r} is not a function")


def _build_annotated(base: Any, meta: list[Any], typevars: dict[Any, Any]) -> Node:
    widths = [m for m in meta if isinstance(m, (IntKind, FloatKind))]
    if len(widths) > 1:
        raise SchemaError(f"two wire widths given: {widths}")
    tagged = [m for m in meta if isinstance(m, Tagged)]
    convert = [m for m in meta if isinstance(m, As)]
    with_codec = [m for m in meta if isinstance(m, With)]
    enc = [m for m in meta if isinstance(m, EncodeWith)]
    dec = [m for m in meta if isinstance(m, DecodeWith)]
    size = [m for m in meta if isinstance(m, SizeWith)]
    text = [m for m in meta if isinstance(m, StrErrors)]
    if any(isinstance(m, _SkipMarker) for m in meta):
        raise SchemaError("Skip is for fields of a @wireformat class only")
    _check_callable([*enc, *dec, *size], convert)
    if len(tagged) > 1 or (tagged and (widths or text)):
        shown = ", ".join(map(repr, [*tagged, *widths, *text]))
        raise SchemaError(f"{shown}: a Tagged union takes no other layout marker beside it")

    if with_codec:
        if enc or dec or size or convert:
            raise SchemaError("With(codec) replaces every other codec marker; use one or the other")
        codec = with_codec[0].codec
        for method in ("byte_size", "encode", "decode"):
            if not callable(getattr(codec, method, None)):
                raise SchemaError(f"With({codec!r}): the codec has no {method}() method")
        label = getattr(codec, "__name__", type(codec).__name__)
        return CustomNode(label, None, codec.encode, codec.decode, codec.byte_size, codec)

    def natural() -> Node:
        if text:
            if base is not str or widths or tagged or len(text) > 1:
                raise SchemaError(f"{text[0]!r} marks a str, alone: not {base!r}")
            return StrNode(text[0].errors)
        if widths:
            kind = widths[0]
            if isinstance(kind, IntKind) and base is not int:
                raise SchemaError(f"{kind.name} marks an int, not {base!r}")
            if isinstance(kind, FloatKind) and base not in (float, int):
                raise SchemaError(f"{kind.name} marks a float, not {base!r}")
            return IntNode(kind) if isinstance(kind, IntKind) else FloatNode(kind)
        if tagged:
            return _build_tagged(tagged[0], typevars)
        return _build(base, typevars)

    node: Node
    if convert:
        if len(convert) > 1:
            raise SchemaError("one As/Into/From per field: give As both directions")
        c = convert[0]
        node = ConvertNode(_build(c.wire_type, typevars), c.to_wire, c.from_wire)
    elif enc or dec or size:
        node = None  # type: ignore[assignment]
    else:
        return natural()

    if enc or dec or size:
        if enc and not size:
            raise SchemaError("EncodeWith needs SizeWith beside it: byte_size must agree with encode")
        if size and not enc:
            raise SchemaError("SizeWith goes with EncodeWith")
        inner = node if node is not None else (natural() if not (enc and dec) else None)
        return CustomNode(
            "hooks",
            inner,
            enc[0].fn if enc else None,
            dec[0].fn if dec else None,
            size[0].fn if size else None,
        )
    return node


def _build_union(args: tuple[Any, ...], typevars: dict[Any, Any]) -> Node:
    rest = [a for a in args if a is not NoneType]
    if len(rest) < len(args):  # r[jetstream.wireformat.option]
        if len(rest) == 1:
            only = rest[0]
            if get_origin(only) is Some:
                return _option(_build(get_args(only)[0], typevars), wrapped=True)
            if only is Some:
                raise SchemaError("Option needs its parameter: Option[T]")
            return _option(_build(only, typevars), wrapped=False)
        return _option(_build(Union[tuple(rest)], typevars), wrapped=False)
    members = frozenset(rest)
    tags = registry.default_tags.get(members)
    if tags is not None:
        return _build_tagged(tags, typevars)
    owners = {getattr(class_info(m), "owner", None) for m in rest}
    owner = owners.pop() if len(owners) == 1 else None
    if owner is not None:
        raise SchemaError(f"a union of variants: annotate with the enum {owner.__qualname__}")
    names = " | ".join(map(_label, rest))
    if all(isinstance(m, type) for m in rest):  # Tagged tells values apart by their class
        classes = [m.__name__ for m in rest]
        numbered = ", ".join(f"{i}: {name}" for i, name in enumerate(classes))
        raise SchemaError(
            f"{names}: a union needs a tag on the wire: declare a @wireenum, or write "
            f"Annotated[{' | '.join(classes)}, jetwire.Tagged({{{numbered}}})]"
        )
    raise SchemaError(
        f"{names}: a union needs a tag on the wire: declare a @wireenum with one variant "
        f"holding each of {names}"
    )


def _option(inner: Node, wrapped: bool) -> OptionNode:
    if not wrapped and isinstance(inner, (UnitNode, OptionNode)) and not _is_wrapped(inner):
        raise SchemaError(
            f"Optional[{inner.label}] cannot tell None from a present None: "
            f"write jetwire.Option[{inner.label}] (values None, Some(...))"
        )
    return OptionNode(inner, wrapped)


def _is_wrapped(node: Node) -> bool:
    return isinstance(node, OptionNode) and node.wrapped


def _build_tagged(tagged: Tagged, typevars: dict[Any, Any]) -> UnionNode:
    if not tagged.tags:
        raise SchemaError("Tagged({}) names no classes: a union needs at least one")
    for tag, member in tagged.tags.items():
        if not isinstance(member, type):  # values are told apart by their class
            raise SchemaError(f"Tagged: tag {tag} maps to {member!r}, not a class")
    key = tuple(sorted(tagged.tags.items()))
    cached = registry.tagged_nodes.get(key)
    if cached is not None:
        return cached
    label = tagged.name or " | ".join(map(_label, tagged.tags.values()))
    node = UnionNode(label, Union[tuple(tagged.tags.values())])
    registry.tagged_nodes[key] = node
    try:
        node.finish([Variant(t, c, _build(c, typevars), _label(c)) for t, c in tagged.tags.items()])
    except BaseException:
        del registry.tagged_nodes[key]
        raise
    return node


# How many parameters each container takes, and how to write it: a wrong count is refused
# here, before an argument that is not there is read.
_GENERIC_FORMS: dict[Any, tuple[int, str]] = {
    list: (1, "list[jetwire.u32]"),
    collections.abc.Sequence: (1, "Sequence[jetwire.u32]"),
    set: (1, "set[jetwire.u32]"),
    frozenset: (1, "frozenset[jetwire.u32]"),
    collections.abc.Set: (1, "AbstractSet[jetwire.u32]"),
    dict: (2, "dict[str, jetwire.u32]"),
    collections.abc.Mapping: (2, "Mapping[str, jetwire.u32]"),
}
_TUPLE_FORMS = "tuple[jetwire.u32, ...] (any length) or tuple[jetwire.u32, str] (one item per type)"


def _check_arity(tp: Any, origin: Any, args: tuple[Any, ...]) -> None:
    form = _GENERIC_FORMS.get(origin)
    if form is not None and len(args) != form[0]:
        name = getattr(origin, "__name__", repr(origin))
        raise SchemaError(f"{name} takes {form[0]} type parameter{'s' if form[0] > 1 else ''}, "
                          f"got {len(args)}: e.g. {form[1]}")
    if origin is tuple:
        if tp is typing.Tuple:  # bare; tuple[()], the empty tuple, has no arguments either
            raise SchemaError(f"tuple needs its item types, e.g. {_TUPLE_FORMS}")
        if any(a is Ellipsis for a in args) and not (len(args) == 2 and args[1] is Ellipsis):
            raise SchemaError(f"... stands only second, after one type, e.g. {_TUPLE_FORMS}")


def _build_generic(tp: Any, origin: Any, args: tuple[Any, ...], typevars: dict[Any, Any]) -> Node:
    _check_arity(tp, origin, args)
    if origin is list or origin is collections.abc.Sequence:
        return _seq(SeqNode, _build(args[0], typevars), list)  # r[jetstream.wireformat.vec]
    if origin is collections.deque:  # upstream's VecDeque: a Vec on the wire
        return _seq(SeqNode, _build(args[0], typevars), collections.deque)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return _seq(SeqNode, _build(args[0], typevars), tuple)
        if args == ((),):
            args = ()
        if len(args) > 12:
            raise SchemaError(f"tuples have 1 to 12 elements on the wire, not {len(args)}")
        return TupleNode([_build(a, typevars) for a in args])
    if origin in (set, frozenset, collections.abc.Set):
        elem = _build(args[0], typevars)
        container = frozenset if origin is frozenset else set
        _check_hashable(elem, "a set element")
        return SetNode(elem, container)  # r[jetstream.wireformat.set]
    if origin is dict or origin is collections.abc.Mapping:
        key, value = _build(args[0], typevars), _build(args[1], typevars)
        _check_hashable(key, "a dict key")
        return MapNode(key, value)  # r[jetstream.wireformat.map]
    if origin is Some:
        raise SchemaError("Some[T] stands inside Option[T] (Optional[Some[T]]), not alone")
    if class_info(origin) is not None:
        resolved = tuple(substitute(a, typevars) for a in args)
        return _class_plan(origin, resolved)
    raise SchemaError(f"cannot encode {tp!r}: the choices are {_CHOICES}")


def _seq(kind: type[SeqNode], elem: Node, container: type) -> SeqNode:
    # elements that take no bytes are allowed: decoding counts them against a budget
    # (MAX_ZERO_WIDTH_ELEMENTS), not the declaration
    return kind(elem, container)


def _check_hashable(node: Node, role: str) -> None:
    """Sets and dicts need hashable members: refuse the declaration, not the bytes later."""
    if isinstance(node, (SeqNode, MapNode)) and node.py_type is not tuple:
        raise SchemaError(f"{node.label} is not hashable, so it cannot be {role}: use a tuple")
    if isinstance(node, SetNode) and node.container is set:
        raise SchemaError(f"{node.label} is not hashable, so it cannot be {role}: use frozenset")
    if isinstance(node, StructNode):  # its own __hash__ answers for its fields
        if getattr(node.cls, "__hash__", None) is None:
            raise SchemaError(
                f"{node.label} is not hashable, so it cannot be {role}: declare it with frozen=True"
            )
    elif isinstance(node, (SeqNode, OptionNode, TupleNode, UnionNode)):  # hashable as their parts
        for part in node.children():
            _check_hashable(part, role)


def _build_class(tp: type) -> Node:
    if class_info(tp) is not None:
        return _class_plan(tp, ())
    if frame_message(tp) is not None:
        raise SchemaError(f"{tp.__qualname__} is a frame, a whole message: it cannot be part of another value")
    if issubclass(tp, enum.Enum):
        node = registry.enum_nodes.get(tp)
        if node is None:
            if len(tp) > MAX_VARIANTS:
                raise SchemaError(f"{tp.__qualname__} has {len(tp)} members; the wire allows 256")
            node = registry.enum_nodes[tp] = EnumNode(tp)
        return node
    if tp is ipaddress.IPv4Address:
        return IPNode(4, tp)  # r[jetstream.wireformat.ipv4]
    if tp is ipaddress.IPv6Address:
        return IPNode(6, tp)  # r[jetstream.wireformat.ipv6]
    if tp is datetime.datetime:
        return TimeNode(tp)  # r[jetstream.wireformat.systime]
    if tp is Url:
        return UrlNode(tp)  # r[jetstream.wireformat.url]
    if tp is tuple:
        raise SchemaError(f"tuple needs its item types, e.g. {_TUPLE_FORMS}")
    if tp in _GENERIC_FORMS:
        raise SchemaError(f"{tp.__name__} needs its element types, e.g. {_GENERIC_FORMS[tp][1]}")
    if dataclasses.is_dataclass(tp):
        raise SchemaError(f"{tp.__qualname__} is a dataclass but not a @jetwire.wireformat class")
    raise SchemaError(f"cannot encode {tp.__qualname__}: the choices are {_CHOICES}")

"""The loaded unit: compiling a type's functions (a struct's in groups, on first use), running the
generated source, installing a class's codec, and the helpers its entry points call."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from ..errors import SchemaError
from .emit import _Dec, _Enc, _exec_source, _Source
from .fastpath import (
    _body_dec,
    _body_size,
    _Compiler,
    _dec_name,
    _decode_entry,
    _depth_check,
    _head,
    _prefix_entry,
    _size_entry,
    _view_entry,
)
from .lazy import OnFirstUse, _compile_lock
from .plan import (
    MAX_ZERO_WIDTH_ELEMENTS,
    FrameNode,
    Node,
    StructNode,
    UnionNode,
    reaches_zero_width,
)
from .state import class_state
from .unions import _compile_frame, _compile_union


class Unit:
    """The compiled functions of one type: raw ``enc``/``enc_into``/``dec``/``size`` (which
    raise on anything unusual) and the entry points that fall back to the interpreter.

    The functions come in groups, each generated and compiled on its own: a struct's encoding,
    decoding bytes, decoding views, sizes and writing into a stream, each when one of its
    functions is first looked up (compiling is most of a codec's first-use cost, and most
    programs only encode or only decode most of their types); a frame's decoder of each
    message type and its memoryview decoders, when first needed. ``groups`` names them all.

    Each group's source goes by a name of its own in tracebacks and ``linecache``: ``<jetwire
    generated module.Qualname group>``, and its functions' ``__module__`` is the type's."""

    __slots__ = (
        "_compiled",
        "_groups",
        "_pending",
        "byte_size",
        "dec",
        "dec_view",
        "decode",
        "decode_frames",
        "decode_prefix",
        "decode_view",
        "enc",
        "enc_into",
        "encode",
        "encode_frame",
        "method_decode",
        "method_encode",
        "module",
        "name",
        "node",
        "size",
    )

    enc: Callable[[Any], bytes]
    enc_into: Callable[..., None]
    dec: Callable[[Any, int], tuple[Any, int]]
    dec_view: Callable[[Any, int], tuple[Any, int]]
    size: Callable[[Any], int]
    encode: Callable[[Any], bytes]
    decode: Callable[[Any], Any]
    decode_view: Callable[[Any], Any]
    decode_prefix: Callable[..., tuple[Any, int]]
    byte_size: Callable[[Any], int]
    # a frame unit's only: the frame class's own encode and decode methods (unions._frame_methods)
    method_encode: Callable[[Any], bytes]
    method_decode: Callable[..., Any]
    encode_frame: Callable[[int, Any], bytes]
    # a frame unit's only: the frames of a buffer in one loop (unions._decode_frames)
    decode_frames: Callable[[bytes, int, int, int, list[Any], list[int] | None, bool], int]

    def __init__(self, node: Node) -> None:
        self.node = node
        self.module, self.name = _unit_name(node)
        self._groups: dict[str, OnFirstUse[Any]] = {}  # every group, by label, in declaration order
        self._pending: dict[str, OnFirstUse[Any]] = {}  # the group of each function not compiled yet
        self._compiled: dict[str, tuple[str, str]] = {}  # (filename, source) of each compiled group

    def __getattr__(self, name: str) -> Any:  # a function of a group not compiled yet
        group = self._pending.get(name)
        if group is not None:
            group.get()
        # without a pending group, another thread may have compiled it since the lookup that
        # brought us here: look again rather than report it missing
        return object.__getattribute__(self, name)

    def compile_all(self) -> None:
        for group in list(self._groups.values()):
            group.get()

    @property
    def groups(self) -> tuple[str, ...]:
        """The label of every group, compiled or not, in the order they were declared."""
        return tuple(self._groups)

    def group_source(self, label: str) -> str:
        """The generated source of one group (compiling it if it is not yet)."""
        self._groups[label].get()
        return self._compiled[label][1]

    def group_filename(self, label: str) -> str:
        """The name one group's source goes by in tracebacks and ``linecache``."""
        self._groups[label].get()
        return self._compiled[label][0]

    @property
    def source(self) -> str:
        """The generated source of every group (compiling the groups not compiled yet)."""
        self.compile_all()
        return "".join(self._compiled[label][1] for label in self._groups)

    @property
    def filename(self) -> str:
        """The name the first group's source goes by in tracebacks and ``linecache``."""
        return self.group_filename(next(iter(self._groups)))

    def __repr__(self) -> str:
        return f"<jetwire unit {self.module}.{self.name}: {', '.join(self._groups)}>"


_names_given: dict[str, int] = {}  # units named so far, by name: the second Item is "Item (2)"


def _unit_name(node: Node) -> tuple[str, str]:
    """The module and qualified name generated code goes by: its class's where it has one."""
    cls = node.py_type if isinstance(node, (StructNode, UnionNode, FrameNode)) else None
    if isinstance(cls, type):
        module = cls.__module__
        short = cls.__qualname__.rsplit("<locals>.", 1)[-1]  # the label's start: "Box" of "Box[u8]"
        name = cls.__qualname__ + node.label.removeprefix(short)
    else:
        module, name = "jetwire", node.label
    with _compile_lock:  # deterministic: the nth unit of one name, counted in this process
        seen = _names_given[f"{module}.{name}"] = _names_given.get(f"{module}.{name}", 0) + 1
    return module, name if seen == 1 else f"{name} ({seen})"


def compile_unit(node: Node) -> Unit:
    """The compiled functions for ``node``, made once for struct, union and frame nodes and kept
    in the code generator's cache (``_units_of``), not on the node."""
    units = _units_of(node)
    unit = units.get(id(node))
    if unit is not None:
        return unit
    with _compile_lock:
        # the cache is read without the lock, so a unit goes in only once complete; a unit being
        # built is found here by the thread building it (recursive types)
        unit = units.get(id(node)) or _building.get(id(node))
        if unit is not None:
            return unit
        unit = Unit(node)
        if not isinstance(node, (StructNode, UnionNode, FrameNode)):
            _compile(unit, node)  # a unit of its own for each caller, shared by none
            return unit
        _building[id(node)] = unit
        try:
            _compile(unit, node)
        finally:
            del _building[id(node)]
        units[id(node)] = unit
        return unit


_building: dict[int, Unit] = {}  # units being compiled, by id of their node; under _compile_lock
# Units of nodes no class owns (tagged unions), by id of the node: each unit holds its node, so
# an id is never reused while its entry lives. A class's own nodes' units live in its state,
# and go with the class.
_unowned_units: dict[int, Unit] = {}


def _units_of(node: Node) -> dict[int, Unit]:
    state = class_state(node.py_type) if isinstance(node, (StructNode, UnionNode, FrameNode)) else None
    return state.units if state is not None else _unowned_units


def _compile(unit: Unit, node: Node) -> None:
    from .interpret import decode_buffer, encode_checked

    src = _Source(compile_unit)
    comp = _Compiler(src)
    comp.zw = reaches_zero_width(node)
    out: list[str] = []
    root = node.label
    src.ns["__name__"] = unit.module  # the __module__ of every function the unit defines
    src.ns["_node"] = node
    src.ns["_root"] = root
    src.ns["_view"] = _view
    src.ns["_leftover"] = _leftover
    src.ns["_bad_offset"] = _bad_offset
    src.ns["_offset_arg"] = _offset_arg

    def slow_encode(value: Any) -> bytes:
        return encode_checked(node, value, root)

    def slow_decode(buf: Any, offset: int, whole: bool, max_zero_width: int = MAX_ZERO_WIDTH_ELEMENTS) -> Any:
        value, end = decode_buffer(node, buf, offset, root, max_zero_width=max_zero_width)
        if whole:
            if end != len(buf):
                _leftover(root, end, len(buf))
            return value
        return value, end

    src.ns["_slow_encode"] = slow_encode
    src.ns["_slow_decode"] = slow_decode

    if isinstance(node, UnionNode):
        _compile_union(comp, node, out)
    elif isinstance(node, FrameNode):
        def later(label: str, lines: list[str], result: str) -> Callable[[], Any]:
            group = _group(unit, src, label, lambda: lines, ())
            return lambda: (group.get(), src.ns[result])[1]

        batch: list[str] = []
        _compile_frame(comp, node, out, later, batch)
        _group(unit, src, "decode frames", lambda: batch, ("decode_frames",))
    else:
        _compile_struct_lazily(unit, comp, node)
        return
    names: tuple[str, ...] = ("enc", "enc_into", "dec", "dec_view", "size", "encode", "decode", "decode_view",
                              "decode_prefix", "byte_size")
    if isinstance(node, FrameNode):  # the frame class's own encode and decode (unions._frame_methods)
        names += ("method_encode", "method_decode", "encode_frame")
    _group(unit, src, "codec", lambda: out, names, first=True).get()


def _compile_struct_lazily(unit: Unit, comp: _Compiler, node: Node) -> None:
    """Registers the groups of ``unit``, each generated and compiled on first lookup."""
    src = comp.src
    src.ns["_unit"] = unit
    stack: tuple[Node, ...] = ()

    def encoders(out: list[str]) -> None:
        # enc: the raw encoder; encode: the same body behind the interpreter fallback
        for name, entry in (("enc", False), ("encode", True)):
            em = _Enc(src, 2 if entry else 1, dynamic=False)
            comp.reset(0)
            comp.enc(node, "_v", em, stack)
            body = em.finish_bytes()
            if entry:
                out.extend(_head(node.label, name, f"{name}(_v)"))
                out.append("    try:")
                if "_d" in em.used:  # only calls of other units pass it on
                    out.append("        _d = 0")
                out.extend(em.lines)
                out.append(f"        return {body}")
                out.append("    except Exception:")
                out.append("        return _slow_encode(_v)")
            else:
                out.extend(_head(node.label, name, f"{name}(_v, _d=0)"))
                out.append(_depth_check(comp, 1))
                out.extend(em.lines)
                out.append(f"    return {body}")

    def stream_encoder(out: list[str]) -> None:
        em = _Enc(src, 1, dynamic=True)
        comp.reset(0)
        comp.enc(node, "_v", em, stack)
        em.flush()
        out.extend(_head(node.label, "enc_into", "enc_into(_v, _ap, _d=0)"))
        out.append(_depth_check(comp, 1))
        out.extend(em.lines)

    def raw_decoder(out: list[str], view: bool) -> None:
        dm = _Dec(src, 1, view)
        comp.reset(0)
        comp.dec(node, "_r", dm, stack)
        dm.flush()
        out.extend(_head(node.label, _dec_name(dm), f"{_dec_name(dm)}(_b, _o, _d=0{', _z=None' if comp.zw else ''})"))
        out.append(_depth_check(comp, 1))
        out.append("    _L = len(_b)")
        out.extend(dm.lines)
        out.append("    return _r, _o")

    def decoders(out: list[str]) -> None:
        raw_decoder(out, False)
        # With zero-width collections, decode calls dec rather than inlining it: what it made
        # before giving up then dies with dec's frame, not living on while the interpreter
        # decodes again (twice the budget's memory at the peak).
        body = ["        _r, _o = dec(_b, 0, 0, _z)"] if comp.zw else _body_dec(comp, node)
        _decode_entry(out, body, "_unit.decode_view", comp.zw, node.label)
        _prefix_entry(out, "_unit.dec_view", comp.zw, node.label)

    def view_decoders(out: list[str]) -> None:
        raw_decoder(out, True)
        _view_entry(out, "decode_view", comp.zw, node.label)

    def sizes(out: list[str]) -> None:
        out.extend(_head(node.label, "size", "size(_v)"))
        out.extend(_body_size(comp, node, 1))
        _size_entry(out, _body_size(comp, node, 2), node.label)

    groups: list[tuple[str, tuple[str, ...], Callable[[list[str]], None]]] = [
        ("encode", ("enc", "encode"), encoders),
        ("decode", ("dec", "decode", "decode_prefix"), decoders),
        ("decode views", ("dec_view", "decode_view"), view_decoders),
        ("size", ("size", "byte_size"), sizes),
        ("encode into", ("enc_into",), stream_encoder),
    ]
    for label, names, build in groups:
        def lines(build: Callable[[list[str]], None] = build) -> list[str]:
            out: list[str] = []
            build(out)
            return out

        _group(unit, src, label, lines, names)


def _group(unit: Unit, src: _Source, label: str, lines: Callable[[], list[str]], names: tuple[str, ...],
           first: bool = False) -> OnFirstUse[None]:
    """Declares one group of ``unit``: ``lines()`` generated and compiled into ``src.ns`` on its
    first use, then ``names`` (the functions it defines) put on the unit."""

    def make() -> None:
        source = _exec_source(src, lines(), f"{unit.module}.{unit.name} {label}")
        unit._compiled[label] = source
        for name in names:
            setattr(unit, name, src.ns[name])
        for name in names:
            del unit._pending[name]

    group: OnFirstUse[None] = OnFirstUse(make)
    unit._groups = {label: group, **unit._groups} if first else {**unit._groups, label: group}
    for name in names:
        unit._pending[name] = group
    return group


def install(cls: Any) -> Unit:
    """The codec of a ``@wireformat``/``@wireenum`` class (a variant's is its enum's) or of a
    frame class, made on first use and kept in the class's state."""
    state = class_state(cls)
    if state is not None and state.kind == "variant":
        assert state.owner is not None
        return install(state.owner)
    if state is None or state.kind not in ("struct", "enum", "frame"):
        if state is not None and state.kind == "frame base":
            raise SchemaError(f"{cls.__qualname__} has no message type: declare class Tframe(Frame[Tmessage])")
        raise SchemaError(f"{cls.__qualname__} is not a @wireformat or @wireenum class")
    codec = state.codec
    if codec is None:  # two threads may each make one here: both give the one unit of the node
        codec = state.codec = OnFirstUse(lambda: compile_unit(_class_node(cls, state.kind)))
    return codec.get()


def _class_node(cls: Any, kind: str) -> Node:
    from .planner import Unresolved, class_plan, plan

    try:
        return plan(cls) if kind == "frame" else class_plan(cls)
    except Unresolved as exc:
        raise SchemaError(str(exc)) from None


_STATIC = frozenset({"decode", "decode_prefix"})
# A decorated class's methods are its unit's entries of the same name. A frame class's encode
# and decode cannot be: the unit's entries serve Codec and jetwire.encode/decode, where encode
# must check the value's class (any object may be passed) and decode takes the zero-width
# budget, while the methods skip the check (only an instance reaches frame.encode()) and take
# exactly what the public method does; decode is also a plain function on the class rather
# than a staticmethod. So the methods are entries of their own (unions._frame_methods), named
# here; giving decorated classes such entries too would only add a copy of each.
_FRAME_METHODS = {"encode": "method_encode", "decode": "method_decode"}


def installed_method(cls: Any, name: str) -> Any:
    """The generated function behind method ``name``, which from now on is on the class itself
    in place of the stub that called this. Cheap once done: a method bound before the first call
    keeps coming back here."""
    state = class_state(cls)
    if state is not None and state.kind == "variant" and state.owner is not None:
        cls, state = state.owner, class_state(state.owner)
    unit = install(cls)
    assert state is not None  # install refused a class without one
    frame_method = _FRAME_METHODS.get(name) if state.kind == "frame" else None
    fn = getattr(unit, frame_method or name)
    stub = state.stubs.get(name)
    if stub is not None:
        _describe(fn, cls, name, stub)
        static = name in _STATIC and frame_method is None
        type.__setattr__(cls, name, staticmethod(fn) if static else fn)
    return fn


def _describe(fn: Any, cls: Any, name: str, stub: Any) -> None:
    """Gives a generated function the names and docstring of the method it stands in for, so
    ``help(Order.decode)`` and tracebacks read as for a method written in the class."""
    fn.__doc__ = stub.__doc__
    fn.__qualname__ = f"{cls.__qualname__}.{name}"
    fn.__module__ = cls.__module__
    fn.__signature__ = inspect.signature(stub.__get__(None, cls))  # (data), not (_data)


def _view(data: Any) -> Any:
    """Any buffer (bytearray, memoryview, ``array.array``, mmap...) as its raw bytes."""
    try:
        view = memoryview(data)
    except TypeError:
        got = type(data).__name__
        raise TypeError(f"expected bytes or another buffer (bytearray, memoryview...), got {got}") from None
    if view.format == "B" and view.ndim == 1:
        return view
    return view.cast("B") if view.c_contiguous else view.tobytes()


def _offset_arg(offset: Any) -> int:
    """An offset given as an int subclass or an ``__index__``; a float, bool or str is refused."""
    if isinstance(offset, (float, bool)) or not hasattr(offset, "__index__"):
        raise TypeError(f"offset is an int, not {type(offset).__name__}")
    return int(offset.__index__())


def _bad_offset(offset: Any, buf: Any) -> None:
    raise ValueError(f"offset {offset!r} is outside the {len(buf)} bytes given")


def _leftover(root: str, end: int, total: int) -> None:
    from ..errors import DecodeError, byte_count

    raise DecodeError(f"{byte_count(total - end)} left over after a complete {root}", root, end)

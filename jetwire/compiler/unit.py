"""The loaded unit: compiling a type's functions (a struct's in groups, on first use), running the
generated source, and the helpers its entry points call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .emit import _compile_lock, _Dec, _Enc, _exec_source, _Source
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
from .plan import (
    MAX_ZERO_WIDTH_ELEMENTS,
    FrameNode,
    Node,
    StructNode,
    UnionNode,
    reaches_zero_width,
)
from .unions import _compile_frame, _compile_union


class Unit:
    """The compiled functions of one type: raw ``enc``/``enc_into``/``dec``/``size`` (which
    raise on anything unusual) and the entry points that fall back to the interpreter.

    A struct's functions come in groups (encoding, decoding bytes, decoding views, sizes,
    writing into a stream) generated and compiled when one of the group is first looked up:
    compiling is most of a codec's first-use cost, and most programs only encode or only
    decode most of their types."""

    __slots__ = (
        "_pending",
        "_sources",
        "byte_size",
        "dec",
        "dec_view",
        "decode",
        "decode_prefix",
        "decode_view",
        "enc",
        "enc_into",
        "encode",
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

    def __init__(self, node: Node) -> None:
        self.node = node
        self._pending: dict[str, Callable[[], None]] = {}
        self._sources: list[tuple[str, str]] = []  # (filename, source) of each compiled group

    def __getattr__(self, name: str) -> Any:  # a function of a group not compiled yet
        make = self._pending.get(name)
        if make is not None:
            make()
        # without a pending group, another thread may have compiled it since the lookup that
        # brought us here: look again rather than report it missing
        return object.__getattribute__(self, name)

    def compile_all(self) -> None:
        for make in list(self._pending.values()):
            make()

    @property
    def source(self) -> str:
        """The generated source of every group (compiling the groups not compiled yet)."""
        self.compile_all()
        return "".join(text for _, text in self._sources)

    @property
    def filename(self) -> str:
        """The name the first group's source goes by in tracebacks and ``linecache``."""
        self.compile_all()
        return self._sources[0][0]



def compile_unit(node: Node) -> Unit:
    """The compiled functions for ``node``, made once and kept on struct and union nodes."""
    unit = getattr(node, "unit", None)
    if unit is not None:
        return unit  # type: ignore[no-any-return]
    with _compile_lock:
        # node.unit is read without the lock, so it is set only once the unit is complete; a
        # unit being built is found here by the thread building it (recursive types)
        unit = getattr(node, "unit", None) or _building.get(id(node))
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
        node.unit = unit
        return unit


_building: dict[int, Unit] = {}  # units being compiled, by id of their node; under _compile_lock


def _compile(unit: Unit, node: Node) -> None:
    from .interpret import decode_buffer, encode_checked

    src = _Source()
    comp = _Compiler(src)
    comp.zw = reaches_zero_width(node)
    out: list[str] = []
    root = node.label
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
        _compile_frame(comp, node, out)
    else:
        _compile_struct_lazily(unit, comp, node)
        return
    _exec_group(unit, src, out, node.label, ("enc", "enc_into", "dec", "dec_view", "size", "encode", "decode",
                                              "decode_view", "decode_prefix", "byte_size"))


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

    groups: list[tuple[tuple[str, ...], Callable[[list[str]], None]]] = [
        (("enc", "encode"), encoders),
        (("dec", "decode", "decode_prefix"), decoders),
        (("dec_view", "decode_view"), view_decoders),
        (("size", "byte_size"), sizes),
        (("enc_into",), stream_encoder),
    ]
    for names, build in groups:
        def make(names: tuple[str, ...] = names, build: Callable[[list[str]], None] = build) -> None:
            with _compile_lock:
                if unit._pending.get(names[0]) is None:
                    return  # another thread compiled it meanwhile
                out: list[str] = []
                build(out)
                _exec_group(unit, src, out, f"{node.label} {names[-1]}", names)

        for name in names:
            unit._pending[name] = make




def _exec_group(unit: Unit, src: _Source, lines: list[str], label: str, names: tuple[str, ...]) -> None:
    """Compiles one group of ``unit`` and puts its functions on it."""
    source, filename = _exec_source(src, lines, label)
    unit._sources.append((filename, source))
    for name in names:
        setattr(unit, name, src.ns[name])
        unit._pending.pop(name, None)



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

"""Plans to Python source: straight-line encoders and decoders, compiled once per type.

Consecutive fixed-width values (including the length prefix of a following string, the count
of a following list, the tags of options and enums, and the fields of nested structs) fuse
into one precompiled ``struct.Struct``. The generated code checks what it can for free and
raises on anything else; the caller then runs the reference interpreter, which either
produces the result or the precise error. Nothing here builds error messages.
"""

from __future__ import annotations

import collections
import dataclasses
import ipaddress
import itertools
import linecache
import operator
import re
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ..markers import Some
from ..wiretypes import Url
from . import support
from .plan import (
    HEADER_SIZE,
    MAX_DATA_BYTES,
    MAX_DEPTH,
    MAX_SHARED_HASH,
    MAX_ZERO_WIDTH_ELEMENTS,
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
    entries_may_take_no_bytes,
    hashes_may_crowd,
    reaches_zero_width,
    zero_width_entries,
)

_INT_FMT = {(1, False): "B", (2, False): "H", (4, False): "I", (8, False): "Q",
            (2, True): "h", (4, True): "i", (8, True): "q"}
_MAX_INLINE_DEPTH = 3  # deeper inlining grows the source (compile time) more than it saves
# Indentation at which a loop or branch goes to a function of its own: Python refuses more
# than 20 nested loops (SyntaxError) and 100 levels of indentation (IndentationError).
_MAX_BLOCK_INDENT = 8
_BLOCK_NODES = (SeqNode, SetNode, MapNode, OptionNode)  # the nodes whose code opens a block
_serial = itertools.count()


def _bytes_len(data: Any) -> int:
    return data.nbytes if data.__class__ is memoryview else len(data)


def _url_text(value: Any) -> str:
    return value if value.__class__ is Url else Url(value)


_BASE_NS: dict[str, Any] = {
    "_Bail": support.Bail,
    "_BOOLB": {False: 0, True: 1},
    "_BOOLD": (False, True),
    "_as_bytes": support.as_bytes_like,
    "_to_ms": support.datetime_to_ms,
    "_from_ms": support.ms_to_datetime,
    "_IPv4": ipaddress.IPv4Address,
    "_IPv6": ipaddress.IPv6Address,
    "_Url": Url,
    "_url_text": _url_text,
    "_Some": Some,
    "_spack": struct.pack,
    "_sencode": str.encode,
    "_float_arg": support.float_arg,
    "_FLOATISH": frozenset({float, int}),
    "_sunpack_from": struct.unpack_from,
    "_bytes_len": _bytes_len,
    "_BufferReader": support.BufferReader,
    "_ListWriter": support.ListWriter,
    "_setattr": object.__setattr__,
    "_new": object.__new__,
    "_SEQ": frozenset({list, tuple}),
    "_SEQS": frozenset({list, tuple, collections.deque}),  # what a list/tuple/deque field takes at speed
    "_SETS": frozenset({set, frozenset}),
    "_ZL": MAX_ZERO_WIDTH_ELEMENTS,
}


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


class _Source:
    """Names for the objects generated code refers to, and fresh local names."""

    def __init__(self) -> None:
        self.ns: dict[str, Any] = dict(_BASE_NS)
        self._ids: dict[int, str] = {}
        self._n = itertools.count()
        self._units: dict[int, str] = {}  # nodes past _MAX_BLOCK_INDENT: their own unit's name

    def unit_of(self, node: Node) -> str:
        """The name of a unit of its own for ``node``, made once per source (the node lives
        as long as the plan that holds it, so its id stays its own)."""
        name = self._units.get(id(node))
        if name is None:
            name = self._units[id(node)] = self.const(compile_unit(node), "u")
        return name

    def const(self, obj: Any, hint: str = "k") -> str:
        name = self._ids.get(id(obj))
        if name is None:
            name = f"_{hint}{next(self._n)}"
            self._ids[id(obj)] = name
            self.ns[name] = obj
        return name

    def struct(self, fmt: str) -> str:
        key = "_S_" + fmt.replace("<", "")
        if key not in self.ns:
            compiled = struct.Struct(fmt)
            self.ns[key] = compiled
            # bound methods: a call to _P_IBH(...) skips the attribute lookup of _S_IBH.pack(...)
            self.ns["_P_" + key[3:]] = compiled.pack
            self.ns["_U_" + key[3:]] = compiled.unpack_from
        return key

    def packer(self, fmt: str) -> str:
        """The name of ``struct.Struct(fmt).pack``, bound."""
        return "_P_" + self.struct(fmt)[3:]

    def unpacker(self, fmt: str) -> str:
        """The name of ``struct.Struct(fmt).unpack_from``, bound."""
        return "_U_" + self.struct(fmt)[3:]

    def packed_size(self, call: str) -> int:
        """The size of what ``_P_<fmt>(...)`` returns."""
        size: int = self.ns["_S_" + call.partition("(")[0][3:]].size
        return size

    def tmp(self, hint: str = "t") -> str:
        return f"_{hint}{next(self._n)}"


class _Lines:
    def __init__(self, src: _Source, indent: int) -> None:
        self.src = src
        self.lines: list[str] = []
        self.indent = indent

    def bind(self, expr: str) -> str:
        """A name for the value of ``expr``, evaluated once."""
        if expr.isidentifier():
            return expr
        name = self.src.tmp()
        self.line(f"{name} = {expr}")
        return name

    def line(self, text: str) -> None:
        self.lines.append("    " * self.indent + text)

    def flush(self) -> None:
        """Writes out what waits to be fused; a block must not start or end with any."""

    def enter(self) -> None:
        self.flush()

    @contextmanager
    def block(self, header: str) -> Iterator[None]:
        self.enter()
        self.line(header)
        self.indent += 1
        mark = len(self.lines)
        yield
        self.flush()
        if len(self.lines) == mark:
            self.line("pass")
        self.indent -= 1


class _Enc(_Lines):
    """Encoder body. Static mode gathers piece expressions for one final join; the first loop
    or branch switches to appending to a list (``_ap``)."""

    def __init__(self, src: _Source, indent: int, dynamic: bool) -> None:
        super().__init__(src, indent)
        self.fmt: list[str] = []
        self.args: list[str] = []
        self.pieces: list[str] = []
        self.dynamic = dynamic
        # A frame's first piece holds its size, known only at the end: on going dynamic it
        # waits here, out of ``_out``, and goes in front of the joined rest.
        self.defer_first = False
        self.deferred: str | None = None
        self.lengths: dict[str, str] = {}  # a piece's name: the local that holds its len()

    def length_of(self, piece: str) -> str:
        """A local holding ``len(piece)``, computed once (the length prefix and, in a frame,
        the size both need it). Only for straight-line code: a loop reassigns its pieces."""
        if self.dynamic:
            return f"len({piece})"
        name = self.src.tmp("l")
        self.line(f"{name} = len({piece})")
        self.lengths[piece] = name
        return name

    def fixed(self, fmt: str, expr: str) -> None:
        self.fmt.append(fmt)
        self.args.append(expr)

    def flush(self) -> None:
        if not self.fmt:
            return
        fmt, args = "".join(self.fmt), self.args
        self.fmt, self.args = [], []
        if all(a.isdigit() for a in args):
            self._emit(self.src.const(struct.pack("<" + fmt, *map(int, args)), "b"))
        else:
            self._emit(f"{self.src.packer('<' + fmt)}({', '.join(args)})")

    def piece(self, expr: str) -> None:
        """A bytes-like expression that follows what is pending."""
        self.flush()
        self._emit(expr)

    def _emit(self, expr: str) -> None:
        if self.dynamic:
            self.line(f"_ap({expr})")
        else:
            self.pieces.append(expr)

    def enter(self) -> None:
        self.go_dynamic()

    def go_dynamic(self) -> None:
        self.flush()
        if not self.dynamic:
            if self.defer_first and self.pieces:
                self.deferred = self.pieces.pop(0)
            self.line(f"_out = [{', '.join(self.pieces)}]")
            self.line("_ap = _out.append")
            self.pieces = []
            self.dynamic = True

    def finish_bytes(self) -> str:
        """The expression of the whole encoding (after flush)."""
        self.flush()
        if self.dynamic:
            return 'b"".join(_out)'
        if not self.pieces:
            return 'b""'
        first = self.pieces[0]
        known_bytes = first.startswith(("_P_", "_b"))  # a struct's pack() or a bytes constant
        if len(self.pieces) == 1:
            return first if known_bytes else f"bytes({first})"
        if len(self.pieces) <= 3 and known_bytes:  # bytes + any buffer is bytes, and + beats join
            return " + ".join(self.pieces)
        return f'b"".join(({", ".join(self.pieces)},))'


class _Dec(_Lines):
    """Decoder body: fixed-width reads wait in a run and are unpacked together; ``fixups``
    (building objects from the values) run right after the unpack."""

    def __init__(self, src: _Source, indent: int, view: bool) -> None:
        super().__init__(src, indent)
        self.view = view  # reading a memoryview (no .decode()) rather than bytes
        self.fmt: list[str] = []
        self.targets: list[str] = []
        self.size = 0
        self.fixups: list[str] = []
        self.end_checks: list[int] = []  # lines that only check a length against the buffer's end

    def end_check(self, condition: str) -> None:
        self.end_checks.append(len(self.lines))
        self.line(f"if {condition}: raise _Bail")

    def lines_checked_at_end(self) -> list[str]:
        """The body without its per-field end checks, for a decoder that compares the offset with
        the buffer's length before it returns: a read past the end then fails there (the offset
        only grows), or sooner. Only for plans where no user code sees a value first
        (:func:`_no_user_code`)."""
        skip = set(self.end_checks)
        return [line for i, line in enumerate(self.lines) if i not in skip]

    def fixed(self, fmt: str, size: int, target: str) -> None:
        self.fmt.append(fmt)
        self.targets.append(target)
        self.size += size

    def fixup(self, text: str) -> None:
        self.fixups.append(text)

    def flush(self) -> None:
        if self.fmt:
            if self.fmt == ["B"]:
                self.line(f"{self.targets[0]} = _b[_o]")
            elif self.fmt == ["H"]:  # a lone length: two indexings beat a struct call
                self.line(f"{self.targets[0]} = _b[_o] | _b[_o + 1] << 8")
            else:
                unpack = self.src.unpacker("<" + "".join(self.fmt))
                self.line(f"{', '.join(self.targets)}, = {unpack}(_b, _o)")
            self.line(f"_o += {self.size}")
        for text in self.fixups:
            self.line(text)
        self.fmt, self.targets, self.size, self.fixups = [], [], 0, []



class _Size(_Lines):
    def __init__(self, src: _Source, indent: int) -> None:
        super().__init__(src, indent)
        self.const = 0

    def add(self, expr: str) -> None:
        self.line(f"_n += {expr}")

    def add_utf8(self, expr: str, errors: str = "strict") -> None:
        t = self.bind(expr)
        how = "" if errors == "strict" else f"'utf-8', {errors!r}"
        self.add(f"(len({t}) if {t}.isascii() else len({t}.encode({how})))")



def _scalar_fmt(node: Node) -> str | None:
    """The struct code of a node that packs as one plain struct item, with no checks."""
    if isinstance(node, IntNode) and node.kind.size < 16:
        return _INT_FMT[(node.kind.size, node.kind.signed)]
    if isinstance(node, FloatNode) and node.kind.size == 8:
        return "d"
    return None


class _Compiler:
    def __init__(self, src: _Source) -> None:
        self.src = src
        # Nesting depth, counted as the interpreter counts it (structs and enums): ``_d`` in a
        # function is the depth above its root, ``base`` the levels its root itself adds
        # before the inlined ``stack``, ``deepest`` the deepest level the function inlines.
        self.base = 0
        self.deepest = 0
        # Whether the unit's decoders take ``_z``, a one-item list holding how many entries of
        # zero-width collections the decode may still make. Only types that have such
        # collections (reaches_zero_width) pay for it: all other code is as it was.
        self.zw = False

    def dec_args(self, callee: Node, stack: tuple[Node, ...]) -> str:
        """What follows ``_b, _o`` in a call of ``callee``'s unit decoder."""
        if reaches_zero_width(callee):
            assert self.zw  # the caller reaches whatever its callee reaches
            return f"{self.depth_at(stack)}, _z"
        return self.depth_at(stack)

    def depth_at(self, stack: tuple[Node, ...]) -> str:
        """The ``_d`` to pass to a unit called with ``stack`` open around it."""
        return f"_d + {self.base + len(stack)}"

    def reset(self, base: int) -> None:
        self.base = base
        self.deepest = base

    # -- encode ------------------------------------------------------------------------------

    def enc(self, node: Node, expr: str, em: _Enc, stack: tuple[Node, ...], checked: bool = False) -> None:  # noqa: C901
        src = self.src
        if em.indent >= _MAX_BLOCK_INDENT and isinstance(node, _BLOCK_NODES):
            self.enc_call(src.unit_of(node), expr, em, stack)
            return
        if isinstance(node, IntNode):
            # a bool packs as 0 or 1, as the interpreter takes it (docs/design.md says why)
            if node.kind.size == 16:
                t = em.bind(expr)
                em.fixed("Q", f"{t} & 0xFFFFFFFFFFFFFFFF")
                em.fixed("q" if node.kind.signed else "Q", f"{t} >> 64")
            else:
                em.fixed(_INT_FMT[(node.kind.size, node.kind.signed)], expr)
        elif isinstance(node, FloatNode):
            t = em.bind(expr)
            em.line(f"if {t}.__class__ is not float: {t} = _float_arg({t})")  # struct takes any __float__
            if node.kind.size == 4:
                em.line(f"if {t} != {t}: raise _Bail")  # NaN payloads: the interpreter keeps them
                em.fixed("f", t)
            else:
                em.fixed("d", t)
        elif isinstance(node, BoolNode):
            t = em.bind(expr)  # a dict lookup alone would take 1.0, equal to 1
            em.fixed("B", f"(_BOOLB[{t}] if {t}.__class__ is bool else {src.const(support.bool_arg, 'boolarg')}({t}))")
        elif isinstance(node, UnitNode):
            em.line(f"if {expr} is not None: raise _Bail")
        elif isinstance(node, (StrNode, UrlNode)):
            t = src.tmp()
            text = expr if isinstance(node, StrNode) else f"_url_text({expr})"
            # str.encode refuses what is not a str
            if isinstance(node, StrNode) and node.errors != "strict":
                # strict first (faster, and the same bytes when it succeeds), then the handler
                em.line(f"try: {t} = _sencode({text})")
                em.line(f"except UnicodeEncodeError: {t} = _sencode({text}, 'utf-8', {node.errors!r})")
            else:
                em.line(f"{t} = _sencode({text})")
            em.fixed("H", em.length_of(t))  # struct refuses a length over 65535
            em.piece(t)
        elif isinstance(node, BytesNode):
            t = em.bind(expr)
            em.line(f"if {t}.__class__ is not bytes: {t} = _as_bytes({t})")
            n = em.length_of(t)
            em.line(f"if {n} > {MAX_DATA_BYTES}: raise _Bail")
            em.fixed("I", n)
            em.piece(t)
        elif isinstance(node, TimeNode):
            em.fixed("Q", f"_to_ms({expr})")
        elif isinstance(node, IPNode):
            t = em.bind(expr)
            em.line(f"if {t}.__class__ is not {'_IPv4' if node.version == 4 else '_IPv6'}: raise _Bail")
            em.fixed(f"{node.fixed}s", f"{t}.packed")
        elif isinstance(node, EnumNode):
            em.fixed("B", f"{src.const(node.index, 'idx')}[{expr}]")
        elif isinstance(node, TupleNode):
            names = [src.tmp() for _ in node.items]
            t = em.bind(expr)
            em.line(f"if {t}.__class__ not in _SEQ: raise _Bail")
            if names:
                em.line(f"{', '.join(names)}, = {t}")
            else:
                em.line(f"if {t}: raise _Bail")
            for item, name in zip(node.items, names):
                self.enc(item, name, em, stack)
        elif isinstance(node, OptionNode):
            t = em.bind(expr)
            value = f"{t}.value" if node.wrapped else t
            check = f"{t}.__class__ is not _Some" if node.wrapped else None
            sub = _Enc(src, 0, dynamic=False)
            if check is None and _may_fold(node.inner, stack):  # a trial, so only where it is cheap
                self.enc(node.inner, value, sub, stack)
                sub.flush()
            if not sub.lines and len(sub.pieces) == 1 and check is None:
                present = sub.pieces[0]
                if present.startswith("_P_"):  # fold the tag into the struct
                    s, _, args = present.partition("(")
                    present = f"{src.packer('<B' + s[3:])}(1, {args}"
                else:
                    present = f"b'\\x01' + {present}"
                em.piece(f"(b'\\x00' if {t} is None else {present})")
                return
            with em.block(f"if {t} is None:"):
                em.piece("b'\\x00'")
            with em.block("else:"):
                if check:
                    em.line(f"if {check}: raise _Bail")
                em.fixed("B", "1")
                self.enc(node.inner, value, em, stack)
        elif isinstance(node, (SeqNode, SetNode)):
            t = em.bind(expr)
            kinds = "_SEQS" if isinstance(node, SeqNode) else "_SETS"
            em.line(f"if {t}.__class__ not in {kinds}: raise _Bail")
            if isinstance(node, SetNode):
                key = f", key={src.const(node.sort_key, 'key')}" if node.sort_key else ""
                items = src.tmp()
                em.line(f"{items} = sorted({t}{key})")
                t = items
            em.fixed("H", f"len({t})")
            fmt = _scalar_fmt(node.elem)
            if fmt == "B":
                em.piece(f"bytes({t})")
            elif fmt:
                if fmt == "d":
                    em.line(f"if not _FLOATISH.issuperset(map(type, {t})): raise _Bail")
                em.piece(f"_spack('<%d{fmt}' % len({t}), *{t})")
            else:
                e = src.tmp("e")
                with em.block(f"for {e} in {t}:"):
                    self.enc(node.elem, e, em, stack)
        elif isinstance(node, MapNode):
            t = em.bind(expr)
            em.line(f"if {t}.__class__ is not dict: raise _Bail")
            em.fixed("H", f"len({t})")
            by_key = node.sort_key
            k = src.tmp("k")
            if hashes_may_crowd(node.key):  # by items: lookups of keys that share a hash are linear
                entry_key = _first if by_key is None else lambda entry: by_key(entry[0])
                v = src.tmp("v")
                with em.block(f"for {k}, {v} in sorted({t}.items(), key={src.const(entry_key, 'key')}):"):
                    self.enc(node.key, k, em, stack)
                    self.enc(node.value, v, em, stack)
            else:  # sorting bare keys is cheaper, and looking them up costs no more than items
                key = f", key={src.const(by_key, 'key')}" if by_key else ""
                with em.block(f"for {k} in sorted({t}{key}):"):
                    self.enc(node.key, k, em, stack)
                    self.enc(node.value, f"{t}[{k}]", em, stack)
        elif isinstance(node, StructNode):
            if node in stack or len(stack) >= _MAX_INLINE_DEPTH or not node.complete:
                self.enc_call(src.const(compile_unit(node), "u"), expr, em, stack)
                return
            self.deepest = max(self.deepest, self.base + len(stack) + 1)
            t = em.bind(expr)
            if not checked:
                em.line(f"if {t}.__class__ is not {src.const(node.cls, 'C')}: raise _Bail")
            for f in node.wire_fields:
                assert f.node is not None
                self.enc(f.node, f"{t}.{f.name}", em, stack + (node,))
        elif isinstance(node, UnionNode):
            self.enc_call(src.const(compile_unit(node), "u"), expr, em, stack)
        elif isinstance(node, CustomNode):
            if node.encode is None:
                assert node.inner is not None
                self.enc(node.inner, expr, em, stack)
                return
            em.go_dynamic()
            em.line(f"{src.const(node.encode, 'fn')}({expr}, _ListWriter(_ap))")
        elif isinstance(node, ConvertNode):
            if node.to_wire is not None:
                t = src.tmp()
                em.line(f"{t} = {src.const(node.to_wire, 'fn')}({expr})")
                expr = t
            self.enc(node.inner, expr, em, stack)
        else:
            raise AssertionError(node)

    def enc_call(self, unit: str, expr: str, em: _Enc, stack: tuple[Node, ...]) -> None:
        if em.dynamic:
            em.flush()
            em.line(f"{unit}.enc_into({expr}, _ap, {self.depth_at(stack)})")
        else:
            em.piece(f"{unit}.enc({expr}, {self.depth_at(stack)})")

    # -- decode ------------------------------------------------------------------------------

    def dec(self, node: Node, target: str, em: _Dec, stack: tuple[Node, ...]) -> None:  # noqa: C901
        src = self.src
        if em.indent >= _MAX_BLOCK_INDENT and isinstance(node, _BLOCK_NODES):
            em.flush()
            em.line(f"{target}, _o = {src.unit_of(node)}.{_dec_name(em)}(_b, _o, {self.dec_args(node, stack)})")
            return
        if isinstance(node, IntNode):
            if node.kind.size == 16:
                lo, hi = src.tmp(), src.tmp()
                em.fixed("Q", 8, lo)
                em.fixed("q" if node.kind.signed else "Q", 8, hi)
                em.fixup(f"{target} = ({hi} << 64) | {lo}")
            else:
                em.fixed(_INT_FMT[(node.kind.size, node.kind.signed)], node.kind.size, target)
        elif isinstance(node, FloatNode):
            if node.kind.size == 4:
                em.fixed("f", 4, target)
                em.fixup(f"if {target} != {target}: raise _Bail")
            else:
                em.fixed("d", 8, target)
        elif isinstance(node, BoolNode):
            t = src.tmp()
            em.fixed("B", 1, t)
            em.fixup(f"{target} = _BOOLD[{t}]")
        elif isinstance(node, UnitNode):
            em.fixup(f"{target} = None")
        elif isinstance(node, (StrNode, UrlNode, BytesNode)):
            if not isinstance(node, BytesNode) and not em.fmt:
                # a length alone: read straight into the end offset (two statements, not four)
                em.flush()
                start, end = src.tmp("s"), "_o"
                em.line(f"{start} = _o + 2")
                em.line(f"_o = {start} + (_b[_o] | _b[_o + 1] << 8)")
                em.end_check("_o > _L")
            else:
                n, start, end = src.tmp("n"), "_o", src.tmp("e")
                if isinstance(node, BytesNode):
                    em.fixed("I", 4, n)
                    em.flush()
                    em.line(f"if {n} > {MAX_DATA_BYTES}: raise _Bail")
                else:
                    em.fixed("H", 2, n)
                    em.flush()
                em.line(f"{end} = _o + {n}")
                em.end_check(f"{end} > _L")
            if isinstance(node, BytesNode):
                # a slice of bytes is already a copy; a memoryview's slice must be copied out
                em.line(f"{target} = bytes(_b[{start}:{end}])" if em.view else f"{target} = _b[{start}:{end}]")
            elif isinstance(node, StrNode):
                if node.errors == "strict":
                    em.line(f"{target} = {_utf8(em, start, end)}")
                else:  # strict first (faster, and the same text when it succeeds), then the handler
                    em.line(f"try: {target} = {_utf8(em, start, end)}")
                    em.line(f"except UnicodeDecodeError: {target} = {_utf8(em, start, end, node.errors)}")
            else:
                em.line(f"{target} = _Url({_utf8(em, start, end)})")
            if end != "_o":
                em.line(f"_o = {end}")
        elif isinstance(node, TimeNode):
            t = src.tmp()
            em.fixed("Q", 8, t)
            em.fixup(f"{target} = _from_ms({t})")
        elif isinstance(node, IPNode):
            t = src.tmp()
            em.fixed(f"{node.fixed}s", node.fixed or 0, t)
            em.fixup(f"{target} = {'_IPv4' if node.version == 4 else '_IPv6'}({t})")
        elif isinstance(node, EnumNode):
            t = src.tmp()
            em.fixed("B", 1, t)
            em.fixup(f"{target} = {src.const(tuple(node.members), 'mem')}[{t}]")
        elif isinstance(node, TupleNode):
            names = [src.tmp() for _ in node.items]
            for item, name in zip(node.items, names):
                self.dec(item, name, em, stack)
            em.fixup(f"{target} = ({''.join(n + ', ' for n in names)})")
        elif isinstance(node, OptionNode):
            t = src.tmp()
            em.fixed("B", 1, t)
            em.flush()
            em.line(f"if {t} == 0: {target} = None")
            with em.block(f"elif {t} == 1:"):
                self.dec(node.inner, target, em, stack)
                if node.wrapped:
                    em.flush()
                    em.line(f"{target} = _Some({target})")
            em.line("else: raise _Bail")
        elif isinstance(node, (SeqNode, SetNode)):
            n = src.tmp("n")
            em.fixed("H", 2, n)
            em.flush()
            _spend_zero_width(node, n, em)
            fmt = _scalar_fmt(node.elem)
            into = target if isinstance(node, SeqNode) and node.container is list else src.tmp()
            if isinstance(node.elem, UnitNode):
                em.line(f"{into} = [None] * {n}")
            elif fmt == "B":
                em.end_check(f"_o + {n} > _L")
                em.line(f"{into} = list(_b[_o:_o + {n}])")
                em.line(f"_o += {n}")
            elif fmt:
                em.line(f"{into} = list(_sunpack_from('<%d{fmt}' % {n}, _b, _o))")
                em.line(f"_o += {node.elem.fixed} * {n}")
            else:
                ap, x = src.tmp("ap"), src.tmp("x")
                em.line(f"{into} = []")
                em.line(f"{ap} = {into}.append")
                with em.block(f"for _ in range({n}):"):
                    at = _entry_start(node, em)
                    self.dec(node.elem, x, em, stack)
                    em.flush()
                    _spend_if_nothing_read(at, em)
                    em.line(f"{ap}({x})")
            if isinstance(node, SetNode):
                _refuse_crowded(node.elem, n, into, em)
                em.line(f"{target} = {node.container.__name__}({into})")
                em.line(f"if len({target}) != {n}: raise _Bail")
            elif node.container is tuple:
                em.line(f"{target} = tuple({into})")
            elif node.container is not list:
                em.line(f"{target} = {src.const(node.container, 'seq')}({into})")
        elif isinstance(node, MapNode):
            n, k, v = src.tmp("n"), src.tmp("k"), src.tmp("v")
            em.fixed("H", 2, n)
            em.flush()
            _spend_zero_width(node, n, em)
            def each_entry(*keep: str) -> None:
                with em.block(f"for _ in range({n}):"):
                    at = _entry_start(node, em)
                    self.dec(node.key, k, em, stack)
                    self.dec(node.value, v, em, stack)
                    em.flush()
                    _spend_if_nothing_read(at, em)
                    for line in keep:
                        em.line(line)

            def insert_each() -> None:
                em.line(f"{target} = {{}}")
                each_entry(f"{target}[{k}] = {v}")

            if not hashes_may_crowd(node.key):
                insert_each()
            else:  # past MAX_SHARED_HASH entries, keys are counted by hash before any is inserted
                with em.block(f"if {n} <= {MAX_SHARED_HASH}:"):
                    insert_each()
                with em.block("else:"):
                    keys, values = src.tmp("ks"), src.tmp("vs")
                    em.line(f"{keys} = []")
                    em.line(f"{values} = []")
                    each_entry(f"{keys}.append({k})", f"{values}.append({v})")
                    em.line(f"if {src.const(support.crowded, 'crowded')}({keys}): raise _Bail")
                    em.line(f"{target} = dict(zip({keys}, {values}))")
            em.line(f"if len({target}) != {n}: raise _Bail")
        elif isinstance(node, StructNode):
            if node in stack or len(stack) >= _MAX_INLINE_DEPTH or not node.complete:
                em.flush()
                unit = src.const(compile_unit(node), "u")
                em.line(f"{target}, _o = {unit}.{_dec_name(em)}(_b, _o, {self.dec_args(node, stack)})")
                return
            self.dec_struct_fields(node, target, em, stack + (node,))
        elif isinstance(node, UnionNode):
            em.flush()
            unit = src.const(compile_unit(node), "u")
            em.line(f"{target}, _o = {unit}.{_dec_name(em)}(_b, _o, {self.dec_args(node, stack)})")
        elif isinstance(node, CustomNode):
            if node.decode is None:
                assert node.inner is not None
                self.dec(node.inner, target, em, stack)
                return
            em.flush()
            r = src.tmp("r")
            em.line(f"{r} = _BufferReader(_b, _o)")
            em.line(f"{target} = {src.const(node.decode, 'fn')}({r})")
            em.line(f"_o = {r}.pos")
        elif isinstance(node, ConvertNode):
            if node.from_wire is None:
                self.dec(node.inner, target, em, stack)
                return
            t = src.tmp()
            self.dec(node.inner, t, em, stack)
            em.fixup(f"{target} = {src.const(node.from_wire, 'fn')}({t})")
        else:
            raise AssertionError(node)

    def _size_each(self, em: _Size, emit: Any) -> None:
        """Sizes inside a loop or branch: their constant part is added there, not once."""
        inner = _Size(self.src, em.indent)
        emit(inner)
        em.lines.extend(inner.lines)
        if inner.const:
            em.add(str(inner.const))

    def dec_struct_fields(self, node: StructNode, target: str, em: _Dec, stack: tuple[Node, ...]) -> None:
        self.deepest = max(self.deepest, self.base + len(stack))
        names = []
        for f in node.wire_fields:
            assert f.node is not None
            name = self.src.tmp("f")
            self.dec(f.node, name, em, stack)
            names.append(name)
        cls = self.src.const(node.cls, "C")
        wire = node.wire_fields
        if node.direct:  # a Python-level __init__ call costs more than the stores it makes
            em.fixup(f"{target} = _new({cls})")
            values = dict(zip((f.name for f in wire), names))
            for field in dataclasses.fields(node.cls):
                if field.name in values:
                    value = values[field.name]
                elif field.default is not dataclasses.MISSING:
                    value = self.src.const(field.default, "d")
                elif field.default_factory is not dataclasses.MISSING:
                    value = f"{self.src.const(field.default_factory, 'fn')}()"
                else:
                    continue  # init=False with no default: __init__ leaves it unset too
                em.fixup(f"{target}.{field.name} = {value}")
            return
        if node.positional():
            em.fixup(f"{target} = {cls}({', '.join(names)})")
        else:
            kwargs = ", ".join(f"{f.name}={n}" for f, n in zip(wire, names) if f.init)
            em.fixup(f"{target} = {cls}({kwargs})")
        for f, n in zip(wire, names):
            if not f.init:
                em.fixup(f"_setattr({target}, {f.name!r}, {n})")

    # -- byte size ---------------------------------------------------------------------------

    def size(self, node: Node, expr: str, em: _Size, stack: tuple[Node, ...]) -> None:
        src = self.src
        if em.indent >= _MAX_BLOCK_INDENT and isinstance(node, _BLOCK_NODES) and node.fixed is None:
            em.add(f"{src.unit_of(node)}.size({expr})")
            return
        if node.fixed is not None and not isinstance(node, (CustomNode, ConvertNode)):
            em.const += node.fixed
        elif isinstance(node, StrNode):
            em.const += 2
            em.add_utf8(expr, node.errors)
        elif isinstance(node, UrlNode):
            em.const += 2
            em.add_utf8(f"_url_text({expr})")
        elif isinstance(node, BytesNode):
            em.const += 4
            em.add(f"_bytes_len({expr})")
        elif isinstance(node, (SeqNode, SetNode, MapNode)):
            em.const += 2
            t = em.bind(expr)
            if isinstance(node, MapNode):
                if node.key.fixed is not None and node.value.fixed is not None:
                    em.add(f"len({t}) * {node.key.fixed + node.value.fixed}")
                    return
                k = src.tmp("k")
                with em.block(f"for {k} in {t}:"):
                    def both(inner: _Size) -> None:
                        self.size(node.key, k, inner, stack)
                        self.size(node.value, f"{t}[{k}]", inner, stack)

                    self._size_each(em, both)
                return
            if node.elem.fixed is not None:
                em.add(f"len({t}) * {node.elem.fixed}")
                return
            e = src.tmp("e")
            with em.block(f"for {e} in {t}:"):
                self._size_each(em, lambda inner: self.size(node.elem, e, inner, stack))
        elif isinstance(node, OptionNode):
            em.const += 1
            t = em.bind(expr)
            value = f"{t}.value" if node.wrapped else t
            with em.block(f"if {t} is not None:"):
                self._size_each(em, lambda inner: self.size(node.inner, value, inner, stack))
        elif isinstance(node, TupleNode):
            for i, item in enumerate(node.items):
                self.size(item, f"{expr}[{i}]", em, stack)
        elif isinstance(node, StructNode):
            if node in stack or len(stack) >= _MAX_INLINE_DEPTH or not node.complete:
                em.add(f"{src.const(compile_unit(node), 'u')}.size({expr})")
                return
            t = em.bind(expr)
            for f in node.wire_fields:
                assert f.node is not None
                self.size(f.node, f"{t}.{f.name}", em, stack + (node,))
        elif isinstance(node, UnionNode):
            em.add(f"{src.const(compile_unit(node), 'u')}.size({expr})")
        elif isinstance(node, CustomNode):
            if node.size is None:
                assert node.inner is not None
                self.size(node.inner, expr, em, stack)
            else:
                em.add(f"{src.const(node.size, 'fn')}({expr})")
        elif isinstance(node, ConvertNode):
            if node.to_wire is not None:
                expr = f"{src.const(node.to_wire, 'fn')}({expr})"
            self.size(node.inner, expr, em, stack)
        else:
            raise AssertionError(node)


def _may_fold(node: Node, stack: tuple[Node, ...]) -> bool:
    """Whether the present value of an Option of ``node`` may encode as one expression with no
    statements, which is then folded into the Option's. Containers, tuples, Options and inlined
    structs always write statements; trying them would generate their code twice per level,
    so nested Options would take time exponential in their depth."""
    while isinstance(node, (CustomNode, ConvertNode)):
        if isinstance(node, CustomNode) and node.encode is None and node.inner is not None:
            node = node.inner
        elif isinstance(node, ConvertNode) and node.to_wire is None:
            node = node.inner
        else:
            return False  # a user's function: a statement
    if isinstance(node, (SeqNode, SetNode, MapNode, TupleNode, OptionNode, UnitNode)):
        return False
    if isinstance(node, StructNode):  # only a call of its own unit is one expression
        return node in stack or len(stack) >= _MAX_INLINE_DEPTH or not node.complete
    return True


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
                out.append(f"def {name}(_v):")
                out.append("    try:")
                out.append("        _d = 0")
                out.extend(em.lines)
                out.append(f"        return {body}")
                out.append("    except Exception:")
                out.append("        return _slow_encode(_v)")
            else:
                out.append(f"def {name}(_v, _d=0):")
                out.append(_depth_check(comp, 1))
                out.extend(em.lines)
                out.append(f"    return {body}")

    def stream_encoder(out: list[str]) -> None:
        em = _Enc(src, 1, dynamic=True)
        comp.reset(0)
        comp.enc(node, "_v", em, stack)
        em.flush()
        out.append("def enc_into(_v, _ap, _d=0):")
        out.append(_depth_check(comp, 1))
        out.extend(em.lines)

    def raw_decoder(out: list[str], view: bool) -> None:
        dm = _Dec(src, 1, view)
        comp.reset(0)
        comp.dec(node, "_r", dm, stack)
        dm.flush()
        out.append(f"def {_dec_name(dm)}(_b, _o, _d=0{', _z=None' if comp.zw else ''}):")
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
        _decode_entry(out, body, "_unit.decode_view", comp.zw)
        _prefix_entry(out, "_unit.dec_view", comp.zw)

    def view_decoders(out: list[str]) -> None:
        raw_decoder(out, True)
        _view_entry(out, "decode_view", comp.zw)

    def sizes(out: list[str]) -> None:
        out.append("def size(_v):")
        out.extend(_body_size(comp, node, 1))
        _size_entry(out, _body_size(comp, node, 2))

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


_compile_lock = threading.RLock()  # a group that compiles another (recursive types) holds it twice


def _exec_group(unit: Unit, src: _Source, lines: list[str], label: str, names: tuple[str, ...]) -> None:
    """Compiles one group of ``unit`` and puts its functions on it."""
    source, filename = _exec_source(src, lines, label)
    unit._sources.append((filename, source))
    for name in names:
        setattr(unit, name, src.ns[name])
        unit._pending.pop(name, None)


def _exec_source(src: _Source, lines: list[str], label: str) -> tuple[str, str]:
    """Compiles ``lines`` into ``src.ns`` and registers the source for tracebacks."""
    filename = f"<jetwire codec {label} #{next(_serial)}>"
    source = "\n".join(lines) + "\n"
    code = compile(source, filename, "exec")
    exec(code, src.ns)  # noqa: S102 - our own generated source
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    return source, filename


def _depth_check(comp: _Compiler, indent: int) -> str:
    """Past this depth the function hands over to the interpreter, which says "too deep":
    generated code must never accept what the interpreter refuses."""
    return f"{'    ' * indent}if _d > {MAX_DEPTH - comp.deepest}: raise _Bail"


def _utf8(em: _Dec, start: str, end: str, errors: str = "strict") -> str:
    # bytes.decode is the fastest way to text; a memoryview has none
    if errors != "strict":
        if em.view:
            return f"str(_b[{start}:{end}], 'utf-8', {errors!r})"
        return f"_b[{start}:{end}].decode('utf-8', {errors!r})"
    return f"str(_b[{start}:{end}], 'utf-8')" if em.view else f"_b[{start}:{end}].decode()"


def _spend_zero_width(node: Node, count: str, em: _Dec) -> None:
    """Takes a zero-width collection's ``count`` from the decode's budget; past it, the
    interpreter says so. Nothing is emitted for collections whose entries take bytes."""
    if zero_width_entries(node):
        em.line(f"_z[0] -= {count}")
        em.line("if _z[0] < 0: raise _Bail")


def _refuse_crowded(key: Node, count: str, keys: str, em: _Dec) -> None:
    """Hands over to the interpreter (which names the key) when more than MAX_SHARED_HASH
    ``keys`` share a hash value; nothing is emitted for types where no input can."""
    if hashes_may_crowd(key):
        em.line(f"if {count} > {MAX_SHARED_HASH} and {em.src.const(support.crowded, 'crowded')}({keys}): raise _Bail")


_first = operator.itemgetter(0)


def _entry_start(node: Node, em: _Dec) -> str | None:
    """For entries that may read no bytes (a user's codec), a local holding where one starts."""
    if not entries_may_take_no_bytes(node):
        return None
    at = em.src.tmp("at")
    em.line(f"{at} = _o")
    return at


def _spend_if_nothing_read(at: str | None, em: _Dec) -> None:
    if at is not None:
        em.line(f"if _o == {at}:")
        em.line("    _z[0] -= 1")
        em.line("    if _z[0] < 0: raise _Bail")


def _dec_name(em: _Dec) -> str:
    return "dec_view" if em.view else "dec"


def _body_size(comp: _Compiler, node: Node, indent: int) -> list[str]:
    sm = _Size(comp.src, indent)
    comp.size(node, "_v", sm, ())
    pad = "    " * indent
    if not sm.lines:
        return [f"{pad}return {sm.const}"]
    return [f"{pad}_n = {sm.const}", *sm.lines, f"{pad}return _n"]


def _body_dec(comp: _Compiler, node: Node) -> list[str]:
    """The inlined body of ``decode``, which returns only if the offset is the buffer's end."""
    dm = _Dec(comp.src, 2, view=False)
    comp.dec(node, "_r", dm, ())
    dm.flush()
    return dm.lines_checked_at_end() if _no_user_code(node) else dm.lines


def _no_user_code(node: Node, seen: frozenset[int] = frozenset()) -> bool:
    """Whether decoding ``node`` runs none of the user's code (an ``__init__`` or
    ``__post_init__``, a ``With`` codec, an ``As`` converter, a ``__hash__``) before the decoder
    returns: then values made from bytes past the end are thrown away unseen."""
    if isinstance(node, StructNode):
        if id(node) in seen:
            return True
        return node.direct and all(f.node is None or _no_user_code(f.node, seen | {id(node)})
                                   for f in node.fields)
    if isinstance(node, (SeqNode, OptionNode)):
        return _no_user_code(node.elem if isinstance(node, SeqNode) else node.inner, seen)
    if isinstance(node, SetNode):
        return not _may_hash_with_user_code(node.elem) and _no_user_code(node.elem, seen)
    if isinstance(node, MapNode):
        return (not _may_hash_with_user_code(node.key) and _no_user_code(node.key, seen)
                and _no_user_code(node.value, seen))
    if isinstance(node, TupleNode):
        return all(_no_user_code(item, seen) for item in node.items)
    if isinstance(node, UnionNode):
        return True  # decoded by its own unit, which checks as it reads
    return not isinstance(node, (CustomNode, ConvertNode))


def _may_hash_with_user_code(node: Node) -> bool:
    """Whether hashing a value of ``node`` (a set member, a dict key) may call a class's own
    ``__hash__``: any struct, union or enum inside it."""
    if isinstance(node, (StructNode, UnionNode, EnumNode)):
        return True
    if isinstance(node, TupleNode):
        return any(map(_may_hash_with_user_code, node.items))
    if isinstance(node, (SeqNode, SetNode)):
        return _may_hash_with_user_code(node.elem)
    if isinstance(node, OptionNode):
        return _may_hash_with_user_code(node.inner)
    return isinstance(node, (CustomNode, ConvertNode))


def _entries(out: list[str], dm_factory: Any, size_factory: Any, zw: bool) -> None:
    """``decode``, ``decode_view``, ``decode_prefix`` and ``byte_size``, compiled together (for
    unions and frames; a struct compiles them in groups). With no ``dm_factory`` the caller
    writes ``decode`` itself."""
    if dm_factory is not None:
        _decode_entry(out, dm_factory(), "decode_view", zw)
    _view_entry(out, "decode_view", zw)
    _prefix_entry(out, "dec_view", zw)
    _size_entry(out, size_factory())


def _limit_param(zw: bool) -> str:
    """The decode entries of a type with zero-width collections take the budget for them last
    (``Codec(..., max_zero_width_elements=n)`` passes it); other entries are unchanged."""
    return ", _zl=_ZL" if zw else ""


def _decode_entry(out: list[str], body: list[str], view_entry: str, zw: bool) -> None:
    """``decode``: the fast body, then the interpreter. Bytes are read as they are; a bytearray
    or memoryview through a byte view, not copied. Only this hottest entry inlines its body:
    the others call ``dec``, which keeps the source (and the time to compile it) small."""
    limit = ", _zl" if zw else ""
    out.append(f"def decode(_data{_limit_param(zw)}):")
    out.append(f"    if _data.__class__ is not bytes: return {view_entry}(_view(_data){limit})")
    out.append("    _b = _data")
    out.append("    try:")
    out.append("        _o = 0")
    out.append("        _d = 0")
    if zw:
        out.append("        _z = [_zl]")
    out.append("        _L = len(_b)")
    out.extend(body)
    out.append("        if _o == _L: return _r")
    out.append("        _r = None")  # bytes left over: the value must not outlive the interpreter's decode
    out.append("    except Exception:")
    out.append("        pass")
    out.append(f"    return _slow_decode(_b, 0, True{limit})")


def _view_entry(out: list[str], name: str, zw: bool) -> None:
    out.append(f"def {name}(_b{_limit_param(zw)}):")
    out.append("    try:")
    out.append(f"        _r, _o = dec_view(_b, 0{', 0, [_zl]' if zw else ''})")
    out.append("        if _o == len(_b): return _r")
    out.append("        _r = None")  # as in decode: not held while the interpreter decodes again
    out.append("    except Exception:")
    out.append("        pass")
    out.append(f"    return _slow_decode(_b, 0, True{', _zl' if zw else ''})")


def _prefix_entry(out: list[str], view_dec: str, zw: bool) -> None:
    out.append(f"def decode_prefix(_data, _o=0{_limit_param(zw)}):")
    out.append("    _b = _data if _data.__class__ is bytes else _view(_data)")
    out.append("    if _o.__class__ is not int: _o = _offset_arg(_o)")  # a clear TypeError, not '<=' unsupported
    out.append("    if not 0 <= _o <= len(_b): _bad_offset(_o, _b)")  # struct counts negatives from the end
    out.append("    try:")
    out.append(f"        return (dec if _b.__class__ is bytes else {view_dec})(_b, _o{', 0, [_zl]' if zw else ''})")
    out.append("    except Exception:")
    out.append("        pass")
    out.append(f"    return _slow_decode(_b, _o, False{', _zl' if zw else ''})")


def _size_entry(out: list[str], body: list[str]) -> None:
    out.append("def byte_size(_v):")
    out.append("    try:")
    out.extend(body)
    out.append("    except Exception:")
    out.append("        return len(_slow_encode(_v))")


def _compile_union(comp: _Compiler, node: UnionNode, out: list[str]) -> None:
    src = comp.src
    enc_map, into_map, size_map, dec_map, view_map = {}, {}, {}, {}, {}
    for variant in node.variants:
        key = variant.py_type
        vnode = variant.node
        name = f"_v{variant.tag}"
        em = _Enc(src, 1, dynamic=False)
        em.fixed("B", str(variant.tag))
        _enc_variant(comp, vnode, em)
        body = em.finish_bytes()
        out.append(f"def {name}enc(_v, _d):")
        out.append(_depth_check(comp, 1))
        out.extend(em.lines)
        out.append(f"    return {body}")
        em = _Enc(src, 1, dynamic=True)
        em.fixed("B", str(variant.tag))
        _enc_variant(comp, vnode, em)
        em.flush()
        out.append(f"def {name}into(_v, _ap, _d):")
        out.append(_depth_check(comp, 1))
        out.extend(em.lines)
        for view in (False, True):
            dm = _Dec(src, 1, view)
            _dec_variant(comp, vnode, dm, "_r")
            out.append(f"def {name}{_dec_name(dm)}(_b, _o, _d{', _z' if comp.zw else ''}):")
            out.append(_depth_check(comp, 1))
            out.append("    _L = len(_b)")
            out.extend(dm.lines)
            out.append("    return _r, _o")
        sm = _Size(src, 1)
        if isinstance(vnode, StructNode):
            for f in vnode.wire_fields:
                assert f.node is not None
                comp.size(f.node, f"_v.{f.name}", sm, (vnode,))
        else:
            comp.size(vnode, "_v", sm, ())
        out.append(f"def {name}size(_v):")
        out.append("    _n = 0")
        out.extend(sm.lines)
        out.append(f"    return _n + {sm.const + 1}")
        enc_map[key], into_map[key] = f"{name}enc", f"{name}into"
        size_map[key], dec_map[variant.tag] = f"{name}size", f"{name}dec"
        view_map[variant.tag] = f"{name}dec_view"

    tags = sorted(dec_map)
    dense = tags == list(range(len(tags)))
    out.append(f"_ENC = {_table(src, enc_map)}")
    out.append(f"_INTO = {_table(src, into_map)}")
    out.append(f"_SIZE = {_table(src, size_map)}")
    for table_name, names in (("_DEC", dec_map), ("_DECV", view_map)):
        if dense:  # a tuple: an index is cheaper than a hash
            out.append(f"{table_name} = ({''.join(names[t] + ', ' for t in tags)})")
        else:
            out.append(f"{table_name} = {_table(src, names)}")
    out.append("def enc(_v, _d=0):")
    out.append("    return _ENC[_v.__class__](_v, _d)")
    out.append("def enc_into(_v, _ap, _d=0):")
    out.append("    _INTO[_v.__class__](_v, _ap, _d)")
    out.append("def size(_v):")
    out.append("    return _SIZE[_v.__class__](_v)")
    z_param, z_arg = (", _z=None", ", _z") if comp.zw else ("", "")
    out.append(f"def dec(_b, _o, _d=0{z_param}):")
    out.append(f"    return _DEC[_b[_o]](_b, _o + 1, _d{z_arg})")
    out.append(f"def dec_view(_b, _o, _d=0{z_param}):")
    out.append(f"    return _DECV[_b[_o]](_b, _o + 1, _d{z_arg})")
    out.append("def encode(_v):")
    out.append("    try:")
    out.append("        return _ENC[_v.__class__](_v, 0)")
    out.append("    except Exception:")
    out.append("        return _slow_encode(_v)")

    def dec_body() -> list[str]:
        return [f"        _r, _o = _DEC[_b[_o]](_b, _o + 1, 0{z_arg})"]

    _entries(out, dec_body, lambda: ["        return _SIZE[_v.__class__](_v)"], comp.zw)


def _compile_frame(comp: _Compiler, node: FrameNode, out: list[str]) -> None:
    """One encoder and three decoders per message type (at an offset, a whole buffer, a
    memoryview; the last two compiled on first use). A fixed-size message is one ``pack`` and
    one ``unpack_from``, header included; any other writes its body, then the header in front.
    Decoders dispatch on the type byte and check that the body ends exactly where ``size``
    says; anything else (short, left over, unknown type) goes to the interpreter to explain."""
    src = comp.src
    frame_cls = src.const(node.cls, "F")
    z_param, z_arg = (", _z=None", ", _z") if comp.zw else ("", "")
    enc_map, dec_map, view_map = {}, {}, {}
    views: list[str] = []  # decoders of memoryviews: compiled the first time one is decoded
    wholes: dict[int, list[str]] = {}  # decode() of each type: compiled when first decoded
    for variant in node.union.variants:
        vnode = variant.node
        name = f"_f{variant.tag}"
        em = _Enc(src, 1, dynamic=False)
        em.defer_first = True
        em.fixed("I", str(HEADER_SIZE + vnode.fixed) if vnode.fixed is not None else "_n")
        em.fixed("B", str(variant.tag))
        em.fixed("H", "_g")
        _enc_variant(comp, vnode, em)
        em.flush()
        if vnode.fixed is None:
            _frame_size(src, em)
        body = em.finish_bytes()
        out.append(f"def {name}enc(_v, _g):")
        if _uses(em.lines + [body], "_d"):
            out.append("    _d = 0")
        out.extend(em.lines)
        out.append(f"    return {body}")
        for view in (False, True):
            dm = _Dec(src, 1, view)
            dm.fixed("I", 4, "_sz")
            dm.fixed("B", 1, "_ty")
            dm.fixed("H", 2, "_tg")
            _dec_variant(comp, vnode, dm, "_m")
            target = views if view else out
            if node.direct:
                made = [f"    _r = _new({frame_cls})", "    _r.tag = _tg", "    _r.msg = _m"]
            else:
                made = [f"    _r = {frame_cls}(_tg, _m)"]
            # at an offset (decode_prefix, streams): where the frame ends must be where size says
            target.append(f"def {name}{_dec_name(dm)}(_b, _o, _d=0{z_param}):")
            target.append("    _s = _o")
            if _uses(dm.lines, "_L"):
                target.append("    _L = len(_b)")
            target.extend(dm.lines)
            target.append("    if _o - _s != _sz: raise _Bail")
            target.extend(made)
            target.append("    return _r, _o")
            if not view:  # the whole buffer (decode): the same body, no offset to keep or return
                whole = wholes[variant.tag] = [f"def {name}whole(_b{z_arg}):", "    _o = 0"]
                checked = dm.lines_checked_at_end() if _no_user_code(vnode) else dm.lines
                if _uses(checked, "_d"):
                    whole.append("    _d = 0")
                length = "len(_b)"
                if _uses(checked, "_L"):
                    whole.append("    _L = len(_b)")
                    length = "_L"
                whole.extend(checked)
                whole.append(f"    if _o != _sz or _o != {length}: raise _Bail")
                whole.extend(made)
                whole.append("    return _r")
                whole.append(f"_FWHOLE[{variant.tag}] = {name}whole")
        enc_map[variant.py_type] = f"{name}enc"
        dec_map[variant.tag] = f"{name}dec"
        view_map[variant.tag] = f"{name}dec_view"

    views.append(f"_FDECV = {_table(src, view_map)}")

    def load_views() -> Any:
        with _compile_lock:  # one compile, even when threads ask at once
            if src.ns["_FDECV"] is None:
                _exec_source(src, views, f"{node.label} (memoryviews)")
        return src.ns["_FDECV"]

    def union_size(msg: Any) -> int:  # byte_size is rarely asked of a frame: its codec waits
        size: int = compile_unit(node.union).size(msg)
        return size

    def whole_loader(kind: int) -> Callable[[Any], Any]:
        """Stands in ``_FWHOLE`` for the decoder of one message type until its first frame."""
        def load_whole(data: Any, *budget: Any) -> Any:
            with _compile_lock:
                if src.ns["_FWHOLE"][kind] is load_whole:
                    _exec_source(src, wholes[kind], f"{node.label} ({node.union.by_tag[kind].name})")
            return src.ns["_FWHOLE"][kind](data, *budget)
        return load_whole

    src.ns["_load_views"] = load_views
    src.ns["_WHOLE_LOADERS"] = {kind: whole_loader(kind) for kind in wholes}
    src.ns["_union_size"] = union_size
    union = "_union_size"
    out.append(f"_FENC = {_table(src, enc_map)}")
    out.append(f"_FDEC = {_table(src, dec_map)}")
    out.append("_FWHOLE = dict(_WHOLE_LOADERS)")  # an unknown type: KeyError, and decode explains it
    out.append("_FDECV = None")
    out.append("def enc(_v, _d=0):")
    out.append(f"    if _v.__class__ is not {frame_cls}: raise _Bail")
    out.append("    return _FENC[_v.msg.__class__](_v.msg, _v.tag)")
    out.append("def enc_into(_v, _ap, _d=0):")
    out.append("    _ap(enc(_v))")
    out.append("def size(_v):")
    out.append(f"    return {HEADER_SIZE - 1} + {union}(_v.msg)")
    budget = ", 0, _z" if comp.zw else ""
    out.append(f"def dec(_b, _o, _d=0{z_param}):")
    out.append(f"    return _FDEC[_b[_o + 4]](_b, _o{budget})")
    out.append(f"def dec_view(_b, _o, _d=0{z_param}):")
    out.append(f"    return (_FDECV or _load_views())[_b[_o + 4]](_b, _o{budget})")
    out.append("def encode(_v):")
    out.append("    try:")
    out.append(f"        if _v.__class__ is {frame_cls}: return _FENC[(_m := _v.msg).__class__](_m, _v.tag)")
    out.append("    except Exception:")
    out.append("        pass")
    out.append("    return _slow_encode(_v)")
    _entries(out, None, lambda: [f"        return {HEADER_SIZE - 1} + {union}(_v.msg)"], comp.zw)
    limit = ", _zl" if comp.zw else ""
    out.append(f"def decode(_data{_limit_param(comp.zw)}):")  # a whole frame: its own decoder per type
    out.append(f"    if _data.__class__ is not bytes: return decode_view(_view(_data){limit})")
    out.append("    try:")
    out.append(f"        return _FWHOLE[_data[4]](_data{', [_zl]' if comp.zw else ''})")
    out.append("    except Exception:")
    out.append("        pass")
    out.append(f"    return _slow_decode(_data, 0, True{limit})")


def _frame_size(src: _Source, em: _Enc) -> None:
    """Emits ``_n = ...``, the whole frame's size, where the encoder's pieces are known: the
    first piece (header and leading fixed fields) is evaluated after it, in the return."""
    if em.dynamic:  # join the rest (small: walk names, qids), then put the first piece before it
        assert em.deferred is not None and em.deferred.startswith("_P_")
        first = src.packed_size(em.deferred)
        em.line('_p = b"".join(_out)')
        em.line(f"_n = {first} + len(_p)")
        em.dynamic = False
        em.pieces = [em.deferred, "_p"]
        return
    known = 0
    lengths = []
    for i, piece in enumerate(em.pieces):
        if piece.startswith("_P_"):  # a struct's pack(): its size is the struct's
            known += src.packed_size(piece)
        elif piece.startswith("_b"):  # a bytes constant
            known += len(src.ns[piece])
        else:
            name = piece if piece.isidentifier() else em.bind(piece)
            em.pieces[i] = name
            lengths.append(em.lengths.get(name, f"len({name})"))
    em.line(f"_n = {' + '.join([str(known), *lengths])}")


def _uses(lines: list[str], name: str) -> bool:
    """Whether generated ``lines`` read the local ``name`` (so it must be set up front)."""
    return re.search(rf"\b{name}\b", "\n".join(lines)) is not None


def _table(src: _Source, mapping: dict[Any, str]) -> str:
    """Source of a dict from classes (or tags) to the generated functions that handle them."""
    names = {k: src.const(k, "C") if isinstance(k, type) else k for k in mapping}
    return "{" + ", ".join(f"{names[k]}: {v}" for k, v in mapping.items()) + "}"


def _dec_variant(comp: _Compiler, vnode: Node, dm: _Dec, target: str) -> None:
    # the union's own level, which a variant's struct shares (it counts it, as the interpreter does)
    comp.reset(0 if isinstance(vnode, StructNode) else 1)
    if isinstance(vnode, StructNode):
        comp.dec_struct_fields(vnode, target, dm, (vnode,))
    else:
        comp.dec(vnode, target, dm, ())
    dm.flush()


def _enc_variant(comp: _Compiler, vnode: Node, em: _Enc) -> None:
    # the union's own level, which a variant's struct shares (it counts it, as the interpreter does)
    comp.reset(0 if isinstance(vnode, StructNode) else 1)
    if isinstance(vnode, StructNode):
        comp.deepest = 1
        for f in vnode.wire_fields:
            assert f.node is not None
            comp.enc(f.node, f"_v.{f.name}", em, (vnode,))
    else:
        comp.enc(vnode, "_v", em, ())


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

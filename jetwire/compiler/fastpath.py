"""Node compilation: the fast path's encoder, decoder and sizer for each kind of plan node, and
the entry points (``decode``, ``decode_prefix``, ``byte_size``...) that fall back to the interpreter."""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable
from typing import Any, TypeVar

from .emit import (
    _BLOCK_NODES,
    _INT_FMT,
    _MAX_BLOCK_INDENT,
    _MAX_INLINE_DEPTH,
    ROLES,
    Const,
    Expr,
    Pack,
    _Dec,
    _Enc,
    _Lines,
    _scalar_fmt,
    _Size,
    _Source,
    function_head,
    name_of,
    singular,
)
from .plan import (
    MAX_DATA_BYTES,
    MAX_DEPTH,
    MAX_SHARED_HASH,
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
from .values import sort_key_of


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

    def dec_args(self, callee: Node, stack: tuple[Node, ...], em: _Dec) -> str:
        """What follows ``_b, _o`` in a call of ``callee``'s unit decoder."""
        if reaches_zero_width(callee):
            assert self.zw  # the caller reaches whatever its callee reaches
            return f"{self.depth_at(stack, em)}, _z"
        return self.depth_at(stack, em)

    def depth_at(self, stack: tuple[Node, ...], em: _Lines) -> str:
        """The ``_d`` to pass to a unit called with ``stack`` open around it."""
        em.used.add("_d")
        return f"_d + {self.base + len(stack)}"

    def reset(self, base: int) -> None:
        self.base = base
        self.deepest = base

    # -- encode ------------------------------------------------------------------------------

    def enc(self, node: Node, expr: str, em: _Enc, stack: tuple[Node, ...]) -> None:
        if em.indent >= _MAX_BLOCK_INDENT and isinstance(node, _BLOCK_NODES):
            self.enc_call(self.src.unit_of(node), expr, em, stack)
            return
        _handler(ENCODERS, "ENCODERS", node)(self, node, expr, em, stack)

    def _enc_int(self, node: IntNode, expr: str, em: _Enc, stack: tuple[Node, ...]) -> None:
        # a bool packs as 0 or 1, as the interpreter takes it (docs/design.md says why)
        if node.kind.size == 16:
            t = em.bind(expr)
            em.fixed("Q", f"{t} & 0xFFFFFFFFFFFFFFFF")  # masked: always in range
            # struct range-checks the high half, so the whole value: no check of our own
            em.fixed("q" if node.kind.signed else "Q", f"{t} >> 64")
        else:
            # struct range-checks each format (B, H, I, Q; h, i, q) and refuses what is not an
            # int or __index__ (a float, a str): no check of our own
            em.fixed(_INT_FMT[(node.kind.size, node.kind.signed)], expr)

    def _enc_float(self, node: FloatNode, expr: str, em: _Enc, stack: tuple[Node, ...]) -> None:
        t = em.bind(expr)
        em.line(f"if {t}.__class__ is not float: {t} = _float_arg({t})")  # struct takes any __float__
        if node.kind.size == 4:
            em.line(f"if {t} != {t}: raise _Bail")  # NaN payloads: the interpreter keeps them
            em.fixed("f", t)  # struct refuses a finite value too large for f32 (OverflowError)
        else:
            em.fixed("d", t)  # struct takes any float here: the class check above is the check

    def _enc_bool(self, node: BoolNode, expr: str, em: _Enc, stack: tuple[Node, ...]) -> None:
        t = em.bind(expr)  # a dict lookup alone would take 1.0, equal to 1
        em.fixed("B", f"(_BOOLB[{t}] if {t}.__class__ is bool else _bool_arg({t}))")  # 0 or 1: in range

    def _enc_none(self, node: UnitNode, expr: str, em: _Enc, stack: tuple[Node, ...]) -> None:
        em.line(f"if {expr} is not None: raise _Bail")

    def _enc_text(self, node: StrNode | UrlNode, expr: str, em: _Enc, stack: tuple[Node, ...]) -> None:
        t = em.tmp(name_of(expr), "utf8")
        text = expr if isinstance(node, StrNode) else f"_url_text({expr})"
        # str.encode refuses what is not a str
        if isinstance(node, StrNode) and node.errors != "strict":
            # strict first (faster, and the same bytes when it succeeds), then the handler
            em.line(f"try: {t} = _sencode({text})")
            em.line(f"except UnicodeEncodeError: {t} = _sencode({text}, 'utf-8', {node.errors!r})")
        else:
            em.line(f"{t} = _sencode({text})")
        n = em.length_of(t)
        em.fixed("H", n)  # struct refuses a length over 65535: MAX_STRING_BYTES needs no check of ours
        em.bytes_of(t, n)

    def _enc_bytes(self, node: BytesNode, expr: str, em: _Enc, stack: tuple[Node, ...]) -> None:
        t = em.bind(expr)
        em.line(f"if {t}.__class__ is not bytes: {t} = _as_bytes({t})")
        n = em.length_of(t)
        em.line(f"if {n} > {MAX_DATA_BYTES}: raise _Bail")  # struct's I would allow up to 4 GiB
        em.fixed("I", n)
        em.bytes_of(t, n)

    def _enc_time(self, node: TimeNode, expr: str, em: _Enc, stack: tuple[Node, ...]) -> None:
        em.fixed("Q", f"_to_ms({expr})")  # struct refuses a negative count (before 1970)

    def _enc_ip(self, node: IPNode, expr: str, em: _Enc, stack: tuple[Node, ...]) -> None:
        t = em.bind(expr)
        em.line(f"if {t}.__class__ is not {'_IPv4' if node.version == 4 else '_IPv6'}: raise _Bail")
        # struct pads or cuts an "s" item to its size without a word: the class check is the check
        em.fixed(f"{node.fixed}s", f"{t}.packed")

    def _enc_enum(self, node: EnumNode, expr: str, em: _Enc, stack: tuple[Node, ...]) -> None:
        src = self.src
        # at most MAX_VARIANTS (256) members, so an index fits B; a non-member is a KeyError
        em.fixed("B", f"{src.const(node.index, 'index', node.label)}[{expr}]")

    def _enc_tuple(self, node: TupleNode, expr: str, em: _Enc, stack: tuple[Node, ...]) -> None:
        t = em.bind(expr)
        names = [em.tmp(name_of(t) or "item", str(i)) for i in range(len(node.items))]
        em.line(f"if {t}.__class__ not in _SEQ: raise _Bail")
        if names:
            em.line(f"{', '.join(names)}, = {t}")
        else:
            em.line(f"if {t}: raise _Bail")
        for item, name in zip(node.items, names):
            self.enc(item, name, em, stack)

    def _enc_option(self, node: OptionNode, expr: str, em: _Enc, stack: tuple[Node, ...]) -> None:
        src = self.src
        t = em.bind(expr)
        value = f"{t}.value" if node.wrapped else t
        check = f"{t}.__class__ is not _Some" if node.wrapped else None
        sub = _Enc(src, 0, dynamic=False, names=set(em.names))  # a trial: its names are taken only if kept
        if check is None and _may_fold(node.inner, stack):  # a trial, so only where it is cheap
            self.enc(node.inner, value, sub, stack)
            sub.flush()
        if not sub.lines and len(sub.pieces) == 1 and check is None:
            present = sub.pieces[0]
            if isinstance(present, Pack):  # the tag goes first in the same struct
                text = em.render(Pack("B" + present.fmt, ("1", *present.args)))
            elif isinstance(present, Const):
                text = repr(b"\x01" + present.data)
            else:
                text = f"b'\\x01' + {em.render(present)}"
            em.used |= sub.used
            em.names |= sub.names
            em.piece(Expr(f"(b'\\x00' if {t} is None else {text})"))
            return
        with em.block(f"if {t} is None:"):
            em.piece(Const(b"\x00"))
        with em.block("else:"):
            if check:
                em.line(f"if {check}: raise _Bail")
            em.fixed("B", 1)  # the present tag, fused with the fields after it
            self.enc(node.inner, value, em, stack)

    def _enc_collection(self, node: SeqNode | SetNode, expr: str, em: _Enc, stack: tuple[Node, ...]) -> None:
        src = self.src
        t = em.bind(expr)
        kinds = "_SEQS" if isinstance(node, SeqNode) else "_SETS"
        em.line(f"if {t}.__class__ not in {kinds}: raise _Bail")
        if isinstance(node, SetNode):
            by_key = sort_key_of(node.elem)
            key = f", key={src.const(by_key, 'key', node.elem.label)}" if by_key else ""
            items = em.tmp(name_of(t), "sorted")
            em.line(f"{items} = sorted({t}{key})")
            t = items
        em.fixed("H", f"len({t})")  # struct refuses a count over 65535 (MAX_ELEMENTS)
        fmt = _scalar_fmt(node.elem)
        if fmt == "B":
            em.piece(Expr(f"bytes({t})"))  # bytes() refuses an item outside 0..255, or not an int
        elif fmt:
            if fmt == "d":  # struct would take any __float__ (a Decimal): the check is ours
                em.line(f"if not _FLOATISH.issuperset(map(type, {t})): raise _Bail")
            em.piece(Expr(f"_spack('<%d{fmt}' % len({t}), *{t})"))  # struct range-checks each item
        else:
            e = em.tmp(singular(name_of(t)))
            with em.block(f"for {e} in {t}:"):
                self.enc(node.elem, e, em, stack)

    def _enc_map(self, node: MapNode, expr: str, em: _Enc, stack: tuple[Node, ...]) -> None:
        src = self.src
        t = em.bind(expr)
        em.line(f"if {t}.__class__ is not dict: raise _Bail")
        em.fixed("H", f"len({t})")  # struct refuses a count over 65535 (MAX_ELEMENTS)
        by_key = sort_key_of(node.key)
        k = em.tmp(singular(name_of(t)), "key")
        if hashes_may_crowd(node.key):  # by items: lookups of keys that share a hash are linear
            entry_key = _first if by_key is None else lambda entry: by_key(entry[0])
            v = em.tmp(singular(name_of(t)), "value")
            order = src.const(entry_key, "key", f"{node.key.label}_entry")
            with em.block(f"for {k}, {v} in sorted({t}.items(), key={order}):"):
                self.enc(node.key, k, em, stack)
                self.enc(node.value, v, em, stack)
        else:  # sorting bare keys is cheaper, and looking them up costs no more than items
            key = f", key={src.const(by_key, 'key', node.key.label)}" if by_key else ""
            with em.block(f"for {k} in sorted({t}{key}):"):
                self.enc(node.key, k, em, stack)
                self.enc(node.value, f"{t}[{k}]", em, stack)

    def _enc_struct(self, node: StructNode, expr: str, em: _Enc, stack: tuple[Node, ...]) -> None:
        src = self.src
        if node in stack or len(stack) >= _MAX_INLINE_DEPTH or not node.complete:
            self.enc_call(src.unit(node), expr, em, stack)
            return
        self.deepest = max(self.deepest, self.base + len(stack) + 1)
        t = em.bind(expr)
        em.line(f"if {t}.__class__ is not {src.cls(node.cls)}: raise _Bail")
        for f in node.wire_fields:
            assert f.node is not None
            self.enc(f.node, f"{t}.{f.name}", em, stack + (node,))

    def _enc_own_unit(self, node: UnionNode, expr: str, em: _Enc, stack: tuple[Node, ...]) -> None:
        src = self.src
        self.enc_call(src.unit(node), expr, em, stack)

    def _enc_custom(self, node: CustomNode, expr: str, em: _Enc, stack: tuple[Node, ...]) -> None:
        src = self.src
        if node.encode is None:
            assert node.inner is not None
            self.enc(node.inner, expr, em, stack)
            return
        em.go_dynamic()
        em.line(f"{src.const(node.encode, 'fn', _role(expr, node, 'encode'))}({expr}, _ListWriter(_ap))")

    def _enc_convert(self, node: ConvertNode, expr: str, em: _Enc, stack: tuple[Node, ...]) -> None:
        src = self.src
        if node.to_wire is not None:
            t = em.tmp(name_of(expr), "wire")
            em.line(f"{t} = {src.const(node.to_wire, 'fn', _role(expr, node, 'to_wire'))}({expr})")
            expr = t
        self.enc(node.inner, expr, em, stack)


    def enc_call(self, unit: str, expr: str, em: _Enc, stack: tuple[Node, ...]) -> None:
        if em.dynamic:
            em.flush()
            em.line(f"{unit}.enc_into({expr}, _ap, {self.depth_at(stack, em)})")
        else:
            em.piece(Expr(f"{unit}.enc({expr}, {self.depth_at(stack, em)})"))

    # -- decode ------------------------------------------------------------------------------

    def dec(self, node: Node, target: str, em: _Dec, stack: tuple[Node, ...]) -> None:
        if em.indent >= _MAX_BLOCK_INDENT and isinstance(node, _BLOCK_NODES):
            em.flush()
            unit = self.src.unit_of(node)
            em.line(f"{target}, _o = {unit}.{_dec_name(em)}(_b, _o, {self.dec_args(node, stack, em)})")
            return
        _handler(DECODERS, "DECODERS", node)(self, node, target, em, stack)

    def _dec_int(self, node: IntNode, target: str, em: _Dec, stack: tuple[Node, ...]) -> None:
        if node.kind.size == 16:
            lo, hi = em.tmp(name_of(target), "lo"), em.tmp(name_of(target), "hi")
            em.fixed("Q", 8, lo)
            em.fixed("q" if node.kind.signed else "Q", 8, hi)
            em.fixup(f"{target} = ({hi} << 64) | {lo}")
        else:
            em.fixed(_INT_FMT[(node.kind.size, node.kind.signed)], node.kind.size, target)

    def _dec_float(self, node: FloatNode, target: str, em: _Dec, stack: tuple[Node, ...]) -> None:
        if node.kind.size == 4:
            em.fixed("f", 4, target)
            em.fixup(f"if {target} != {target}: raise _Bail")
        else:
            em.fixed("d", 8, target)

    def _dec_bool(self, node: BoolNode, target: str, em: _Dec, stack: tuple[Node, ...]) -> None:
        t = em.tmp(name_of(target), "byte")
        em.fixed("B", 1, t)
        em.fixup(f"{target} = _BOOLD[{t}]")

    def _dec_none(self, node: UnitNode, target: str, em: _Dec, stack: tuple[Node, ...]) -> None:
        em.fixup(f"{target} = None")

    def _dec_text(self, node: StrNode | UrlNode | BytesNode, target: str, em: _Dec, stack: tuple[Node, ...]) -> None:
        if not isinstance(node, BytesNode) and not em.fmt:
            # a length alone: read straight into the end offset (two statements, not four)
            em.flush()
            start, end = em.tmp(name_of(target), "start"), "_o"
            em.line(f"{start} = _o + 2")
            em.line(f"_o = {start} + (_b[_o] | _b[_o + 1] << 8)")
            em.end_check("_o > _L")
        else:
            n, start, end = em.tmp(name_of(target), "len"), "_o", em.tmp(name_of(target), "end")
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

    def _dec_time(self, node: TimeNode, target: str, em: _Dec, stack: tuple[Node, ...]) -> None:
        t = em.tmp(name_of(target), "ms")
        em.fixed("Q", 8, t)
        em.fixup(f"{target} = _from_ms({t})")

    def _dec_ip(self, node: IPNode, target: str, em: _Dec, stack: tuple[Node, ...]) -> None:
        t = em.tmp(name_of(target), "packed")
        em.fixed(f"{node.fixed}s", node.fixed or 0, t)
        em.fixup(f"{target} = {'_IPv4' if node.version == 4 else '_IPv6'}({t})")

    def _dec_enum(self, node: EnumNode, target: str, em: _Dec, stack: tuple[Node, ...]) -> None:
        src = self.src
        t = em.tmp(name_of(target), "index")
        em.fixed("B", 1, t)
        members = src.const(tuple(node.members), "members", node.label, key=("members", id(node)))
        em.fixup(f"{target} = {members}[{t}]")

    def _dec_tuple(self, node: TupleNode, target: str, em: _Dec, stack: tuple[Node, ...]) -> None:
        names = [em.tmp(name_of(target) or "item", str(i)) for i in range(len(node.items))]
        for item, name in zip(node.items, names):
            self.dec(item, name, em, stack)
        em.fixup(f"{target} = ({''.join(n + ', ' for n in names)})")

    def _dec_option(self, node: OptionNode, target: str, em: _Dec, stack: tuple[Node, ...]) -> None:
        t = em.tmp(name_of(target), "tag")
        em.fixed("B", 1, t)
        em.flush()
        em.line(f"if {t} == 0: {target} = None")
        with em.block(f"elif {t} == 1:"):
            self.dec(node.inner, target, em, stack)
            if node.wrapped:
                em.flush()
                em.line(f"{target} = _Some({target})")
        em.line("else: raise _Bail")

    def _dec_collection(self, node: SeqNode | SetNode, target: str, em: _Dec, stack: tuple[Node, ...]) -> None:
        src = self.src
        n = em.tmp(name_of(target), "count")
        em.fixed("H", 2, n)
        em.flush()
        _spend_zero_width(node, n, em)
        fmt = _scalar_fmt(node.elem)
        into = target if isinstance(node, SeqNode) and node.container is list else em.tmp(name_of(target), "list")
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
            ap, x = em.tmp(name_of(into), "append"), em.tmp(singular(name_of(target)))
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
            em.line(f"{target} = {src.cls(node.container)}({into})")

    def _dec_map(self, node: MapNode, target: str, em: _Dec, stack: tuple[Node, ...]) -> None:
        each = singular(name_of(target))
        n, k, v = em.tmp(name_of(target), "count"), em.tmp(each, "key"), em.tmp(each, "value")
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
                keys, values = em.tmp(name_of(target), "keys"), em.tmp(name_of(target), "values")
                em.line(f"{keys} = []")
                em.line(f"{values} = []")
                each_entry(f"{keys}.append({k})", f"{values}.append({v})")
                em.line(f"if _crowded({keys}): raise _Bail")
                em.line(f"{target} = dict(zip({keys}, {values}))")
        em.line(f"if len({target}) != {n}: raise _Bail")

    def _dec_struct(self, node: StructNode, target: str, em: _Dec, stack: tuple[Node, ...]) -> None:
        src = self.src
        if node in stack or len(stack) >= _MAX_INLINE_DEPTH or not node.complete:
            em.flush()
            unit = src.unit(node)
            em.line(f"{target}, _o = {unit}.{_dec_name(em)}(_b, _o, {self.dec_args(node, stack, em)})")
            return
        self.dec_struct_fields(node, target, em, stack + (node,))

    def _dec_own_unit(self, node: UnionNode, target: str, em: _Dec, stack: tuple[Node, ...]) -> None:
        src = self.src
        em.flush()
        unit = src.unit(node)
        em.line(f"{target}, _o = {unit}.{_dec_name(em)}(_b, _o, {self.dec_args(node, stack, em)})")

    def _dec_custom(self, node: CustomNode, target: str, em: _Dec, stack: tuple[Node, ...]) -> None:
        src = self.src
        if node.decode is None:
            assert node.inner is not None
            self.dec(node.inner, target, em, stack)
            return
        em.flush()
        r = em.tmp(name_of(target), "reader")
        em.line(f"{r} = _BufferReader(_b, _o)")
        em.line(f"{target} = {src.const(node.decode, 'fn', _role(target, node, 'decode'))}({r})")
        em.line(f"_o = {r}.pos")

    def _dec_convert(self, node: ConvertNode, target: str, em: _Dec, stack: tuple[Node, ...]) -> None:
        src = self.src
        if node.from_wire is None:
            self.dec(node.inner, target, em, stack)
            return
        t = em.tmp(name_of(target), "wire")
        self.dec(node.inner, t, em, stack)
        em.fixup(f"{target} = {src.const(node.from_wire, 'fn', _role(target, node, 'from_wire'))}({t})")


    def _size_each(self, em: _Size, emit: Any) -> None:
        """Sizes inside a loop or branch: their constant part is added there, not once."""
        inner = _Size(self.src, em.indent, names=em.names)
        emit(inner)
        em.lines.extend(inner.lines)
        em.used |= inner.used
        if inner.const:
            em.add(str(inner.const))

    def dec_struct_fields(self, node: StructNode, target: str, em: _Dec, stack: tuple[Node, ...]) -> None:
        self.deepest = max(self.deepest, self.base + len(stack))
        names = []
        for f in node.wire_fields:
            assert f.node is not None
            name = em.tmp(name_of(target), f.name)
            self.dec(f.node, name, em, stack)
            names.append(name)
        cls = self.src.cls(node.cls)
        wire = node.wire_fields
        if node.direct:  # a Python-level __init__ call costs more than the stores it makes
            em.fixup(f"{target} = _new({cls})")
            values = dict(zip((f.name for f in wire), names))
            for field in dataclasses.fields(node.cls):
                if field.name in values:
                    value = values[field.name]
                elif field.default is not dataclasses.MISSING:
                    # one per field, even where values are one object (a small int): named for it
                    value = self.src.const(field.default, "default", field.name, key=(id(node), field.name))
                elif field.default_factory is not dataclasses.MISSING:
                    value = f"{self.src.const(field.default_factory, 'fn', f'{field.name}_default')}()"
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
        if em.indent >= _MAX_BLOCK_INDENT and isinstance(node, _BLOCK_NODES) and node.fixed is None:
            em.add(f"{self.src.unit_of(node)}.size({expr})")
            return
        sizer = _handler(SIZERS, "SIZERS", node)
        if node.fixed is not None and type(node) not in _SIZED_BY_CALLING:
            em.const += node.fixed  # the same for every value, whatever the type
        else:
            sizer(self, node, expr, em, stack)

    def _size_fixed(self, node: Node, expr: str, em: _Size, stack: tuple[Node, ...]) -> None:
        assert node.fixed is not None  # size() adds it before asking a sizer
        em.const += node.fixed

    def _size_str(self, node: StrNode, expr: str, em: _Size, stack: tuple[Node, ...]) -> None:
        em.const += 2
        em.add_utf8(expr, node.errors)

    def _size_url(self, node: UrlNode, expr: str, em: _Size, stack: tuple[Node, ...]) -> None:
        em.const += 2
        em.add_utf8(f"_url_text({expr})", "strict", name_of(expr) or "url", "str")

    def _size_bytes(self, node: BytesNode, expr: str, em: _Size, stack: tuple[Node, ...]) -> None:
        em.const += 4
        em.add(f"_bytes_len({expr})")

    def _size_collection(
        self, node: SeqNode | SetNode | MapNode, expr: str, em: _Size, stack: tuple[Node, ...]
    ) -> None:
        em.const += 2
        t = em.bind(expr)
        if isinstance(node, MapNode):
            if node.key.fixed is not None and node.value.fixed is not None:
                em.add(f"len({t}) * {node.key.fixed + node.value.fixed}")
                return
            k = em.tmp(singular(name_of(t)), "key")
            with em.block(f"for {k} in {t}:"):
                def both(inner: _Size) -> None:
                    self.size(node.key, k, inner, stack)
                    self.size(node.value, f"{t}[{k}]", inner, stack)

                self._size_each(em, both)
            return
        if node.elem.fixed is not None:
            em.add(f"len({t}) * {node.elem.fixed}")
            return
        e = em.tmp(singular(name_of(t)))
        with em.block(f"for {e} in {t}:"):
            self._size_each(em, lambda inner: self.size(node.elem, e, inner, stack))

    def _size_option(self, node: OptionNode, expr: str, em: _Size, stack: tuple[Node, ...]) -> None:
        em.const += 1
        t = em.bind(expr)
        value = f"{t}.value" if node.wrapped else t
        with em.block(f"if {t} is not None:"):
            self._size_each(em, lambda inner: self.size(node.inner, value, inner, stack))

    def _size_tuple(self, node: TupleNode, expr: str, em: _Size, stack: tuple[Node, ...]) -> None:
        for i, item in enumerate(node.items):
            self.size(item, f"{expr}[{i}]", em, stack)

    def _size_struct(self, node: StructNode, expr: str, em: _Size, stack: tuple[Node, ...]) -> None:
        src = self.src
        if node in stack or len(stack) >= _MAX_INLINE_DEPTH or not node.complete:
            em.add(f"{src.unit(node)}.size({expr})")
            return
        t = em.bind(expr)
        for f in node.wire_fields:
            assert f.node is not None
            self.size(f.node, f"{t}.{f.name}", em, stack + (node,))

    def _size_own_unit(self, node: UnionNode, expr: str, em: _Size, stack: tuple[Node, ...]) -> None:
        src = self.src
        em.add(f"{src.unit(node)}.size({expr})")

    def _size_custom(self, node: CustomNode, expr: str, em: _Size, stack: tuple[Node, ...]) -> None:
        src = self.src
        if node.size is None:
            assert node.inner is not None
            self.size(node.inner, expr, em, stack)
        else:
            em.add(f"{src.const(node.size, 'fn', _role(expr, node, 'size'))}({expr})")

    def _size_convert(self, node: ConvertNode, expr: str, em: _Size, stack: tuple[Node, ...]) -> None:
        src = self.src
        if node.to_wire is not None:
            expr = f"{src.const(node.to_wire, 'fn', _role(expr, node, 'to_wire'))}({expr})"
        self.size(node.inner, expr, em, stack)



_H = TypeVar("_H")


def _handler(table: dict[type[Node], _H], table_name: str, node: Node) -> _H:
    """``node``'s handler, by its exact type: a node type with none is a bug to report, never
    a case to fall through to some default."""
    try:
        return table[type(node)]
    except KeyError:
        raise TypeError(
            f"internal error: fastpath.{table_name} has no entry for {type(node).__name__} ({node.label})"
        ) from None


# Nodes whose byte size a user's function gives (or checks, converting), even where it is fixed.
_SIZED_BY_CALLING = frozenset({CustomNode, ConvertNode})

# The code each node type emits, looked up by exact type (tests/test_node_tables.py checks that
# every node type of plan.py has an entry in each). A frame is a whole message, never a field,
# but if one were inside a value it would be a call of its own unit, as a union is.
ENCODERS: dict[type[Node], Callable[[_Compiler, Any, str, _Enc, tuple[Node, ...]], None]] = {
    IntNode: _Compiler._enc_int,
    FloatNode: _Compiler._enc_float,
    BoolNode: _Compiler._enc_bool,
    UnitNode: _Compiler._enc_none,
    StrNode: _Compiler._enc_text,
    UrlNode: _Compiler._enc_text,
    BytesNode: _Compiler._enc_bytes,
    TimeNode: _Compiler._enc_time,
    IPNode: _Compiler._enc_ip,
    EnumNode: _Compiler._enc_enum,
    TupleNode: _Compiler._enc_tuple,
    OptionNode: _Compiler._enc_option,
    SeqNode: _Compiler._enc_collection,
    SetNode: _Compiler._enc_collection,
    MapNode: _Compiler._enc_map,
    StructNode: _Compiler._enc_struct,
    UnionNode: _Compiler._enc_own_unit,
    CustomNode: _Compiler._enc_custom,
    ConvertNode: _Compiler._enc_convert,
    FrameNode: _Compiler._enc_own_unit,
}
DECODERS: dict[type[Node], Callable[[_Compiler, Any, str, _Dec, tuple[Node, ...]], None]] = {
    IntNode: _Compiler._dec_int,
    FloatNode: _Compiler._dec_float,
    BoolNode: _Compiler._dec_bool,
    UnitNode: _Compiler._dec_none,
    StrNode: _Compiler._dec_text,
    UrlNode: _Compiler._dec_text,
    BytesNode: _Compiler._dec_text,
    TimeNode: _Compiler._dec_time,
    IPNode: _Compiler._dec_ip,
    EnumNode: _Compiler._dec_enum,
    TupleNode: _Compiler._dec_tuple,
    OptionNode: _Compiler._dec_option,
    SeqNode: _Compiler._dec_collection,
    SetNode: _Compiler._dec_collection,
    MapNode: _Compiler._dec_map,
    StructNode: _Compiler._dec_struct,
    UnionNode: _Compiler._dec_own_unit,
    CustomNode: _Compiler._dec_custom,
    ConvertNode: _Compiler._dec_convert,
    FrameNode: _Compiler._dec_own_unit,
}
SIZERS: dict[type[Node], Callable[[_Compiler, Any, str, _Size, tuple[Node, ...]], None]] = {
    IntNode: _Compiler._size_fixed,
    FloatNode: _Compiler._size_fixed,
    BoolNode: _Compiler._size_fixed,
    UnitNode: _Compiler._size_fixed,
    TimeNode: _Compiler._size_fixed,
    IPNode: _Compiler._size_fixed,
    EnumNode: _Compiler._size_fixed,
    StrNode: _Compiler._size_str,
    UrlNode: _Compiler._size_url,
    BytesNode: _Compiler._size_bytes,
    SeqNode: _Compiler._size_collection,
    SetNode: _Compiler._size_collection,
    MapNode: _Compiler._size_collection,
    OptionNode: _Compiler._size_option,
    TupleNode: _Compiler._size_tuple,
    StructNode: _Compiler._size_struct,
    UnionNode: _Compiler._size_own_unit,
    CustomNode: _Compiler._size_custom,
    ConvertNode: _Compiler._size_convert,
    FrameNode: _Compiler._size_own_unit,
}


def _may_fold(node: Node, stack: tuple[Node, ...]) -> bool:
    """Whether the present value of an Option of ``node`` may encode as one expression with no
    statements, which is then folded into the Option's. Containers, tuples, Options and inlined
    structs always write statements; trying them would generate their code twice per level,
    so nested Options would take time exponential in their depth. Unknown types are not tried."""
    if type(node) is CustomNode:  # foldable only as its wire type, with no user function
        return node.encode is None and any(_may_fold(inner, stack) for inner in node.children())
    if type(node) is ConvertNode:
        return node.to_wire is None and _may_fold(node.inner, stack)
    if type(node) is StructNode:  # only a call of its own unit is one expression
        return node in stack or len(stack) >= _MAX_INLINE_DEPTH or not node.complete
    return type(node) in _ONE_EXPRESSION


# Node types whose encoding may be one expression (a pack, a unit's call); a float's class
# check is a statement, which the trial finds.
_ONE_EXPRESSION = frozenset({IntNode, FloatNode, BoolNode, StrNode, UrlNode, BytesNode, TimeNode, IPNode,
                             EnumNode, UnionNode, FrameNode})


def _role(expr: str, node: Node, role: str) -> str:
    """What a user's function is called: by the field it serves and what it does there
    (``when_encode``), or by its type where the value is no field (a list's element)."""
    return f"{name_of(expr) or node.label}_{role}"


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
        em.line(f"if {count} > {MAX_SHARED_HASH} and _crowded({keys}): raise _Bail")


_first = operator.itemgetter(0)


def _entry_start(node: Node, em: _Dec) -> str | None:
    """For entries that may read no bytes (a user's codec), a local holding where one starts."""
    if not entries_may_take_no_bytes(node):
        return None
    at = em.tmp("entry", "start")
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
    depth = ["        _d = 0"] if dm.uses("_d") else []  # only calls of other units pass it on
    return depth + (dm.lines_checked_at_end() if _no_user_code(node) else dm.lines)


def _no_user_code(node: Node, seen: frozenset[int] = frozenset()) -> bool:
    """Whether decoding ``node`` runs none of the user's code (an ``__init__`` or
    ``__post_init__``, a ``With`` codec, an ``As`` converter, a ``__hash__``) before the decoder
    returns: then values made from bytes past the end are thrown away unseen. A fold over the
    node's children; a node type this does not know may run user code."""
    kind = type(node)
    if kind in _NO_USER_CODE:
        return True
    if type(node) is StructNode:
        if id(node) in seen:
            return True
        if not node.direct:
            return False  # its __init__ runs
        seen |= {id(node)}
    elif kind is SetNode or kind is MapNode:
        hashed = node.children()[0]  # a member, a key
        if _may_hash_with_user_code(hashed):
            return False
    elif kind not in _USER_CODE_ONLY_INSIDE:
        return False  # a user's codec or converter, or a node type this does not know
    return all(_no_user_code(child, seen) for child in node.children())


# Leaves, and unions and frames, decoded by their own unit, which checks the end as it reads.
_NO_USER_CODE = frozenset({IntNode, FloatNode, BoolNode, UnitNode, StrNode, UrlNode, BytesNode, TimeNode,
                           IPNode, EnumNode, UnionNode, FrameNode})
# Nodes that run user code only where their children do (sets and maps also hash, above).
_USER_CODE_ONLY_INSIDE = frozenset({SeqNode, OptionNode, TupleNode})


def _may_hash_with_user_code(node: Node) -> bool:
    """Whether hashing a value of ``node`` (a set member, a dict key) may call a class's own
    ``__hash__``: any struct, union or enum inside it, a user's value, or a node type this does
    not know."""
    kind = type(node)
    if kind in _HASHED_BY_PYTHON:
        return False
    if kind in _HASHED_BY_PARTS:
        return any(map(_may_hash_with_user_code, node.children()))
    return True


_HASHED_BY_PYTHON = frozenset({IntNode, FloatNode, BoolNode, UnitNode, StrNode, UrlNode, BytesNode, TimeNode,
                               IPNode})
_HASHED_BY_PARTS = frozenset({TupleNode, SeqNode, SetNode, MapNode, OptionNode})


def _entries(out: list[str], dm_factory: Any, size_factory: Any, zw: bool, owner: str) -> None:
    """``decode``, ``decode_view``, ``decode_prefix`` and ``byte_size``, compiled together (for
    unions and frames; a struct compiles them in groups). With no ``dm_factory`` the caller
    writes ``decode`` itself."""
    if dm_factory is not None:
        _decode_entry(out, dm_factory(), "decode_view", zw, owner)
    _view_entry(out, "decode_view", zw, owner)
    _prefix_entry(out, "dec_view", zw, owner)
    _size_entry(out, size_factory(), owner)


def _head(owner: str, name: str, signature: str, role: str | None = None) -> list[str]:
    """The opening lines of ``owner``'s generated function ``name`` (see :func:`function_head`)."""
    return function_head(f"{owner}.{name}", signature, ROLES[name] if role is None else role)


def _limit_param(zw: bool) -> str:
    """The decode entries of a type with zero-width collections take the budget for them last
    (``Codec(..., max_zero_width_elements=n)`` passes it); other entries are unchanged."""
    return ", _zl=_ZL" if zw else ""


def _decode_entry(out: list[str], body: list[str], view_entry: str, zw: bool, owner: str = "") -> None:
    """``decode``: the fast body, then the interpreter. Bytes are read as they are; a bytearray
    or memoryview through a byte view, not copied. Only this hottest entry inlines its body:
    the others call ``dec``, which keeps the source (and the time to compile it) small."""
    limit = ", _zl" if zw else ""
    out.extend(_head(owner, "decode", f"decode(_data{_limit_param(zw)})"))
    out.append(f"    if _data.__class__ is not bytes: return {view_entry}(_view(_data){limit})")
    out.append("    _b = _data")
    out.append("    try:")
    out.append("        _o = 0")
    if zw:
        out.append("        _z = [_zl]")
    out.append("        _L = len(_b)")
    out.extend(body)
    out.append("    except Exception:")
    out.append("        pass")  # the interpreter runs after the handler, once what failed is freed
    out.append("    else:")
    out.append("        if _o == _L: return _r")
    # A whole value with bytes after it: the interpreter would decode it again (a million
    # zero-width elements built twice) only to say where it ends, which _o already says. Past
    # _L, a read ran off the end (slices do not check: this test does), which it explains.
    out.append("        if _o < _L: _leftover(_root, _o, _L)")
    out.append(f"    return _slow_decode(_b, 0, True{limit})")


def _view_entry(out: list[str], name: str, zw: bool, owner: str = "") -> None:
    out.extend(_head(owner, name, f"{name}(_b{_limit_param(zw)})"))
    out.append("    try:")
    out.append(f"        _r, _o = dec_view(_b, 0{', 0, [_zl]' if zw else ''})")
    out.append("    except Exception:")
    out.append("        pass")
    out.append("    else:")
    out.append("        if _o == len(_b): return _r")
    out.append("        if _o < len(_b): _leftover(_root, _o, len(_b))")  # as in decode
    out.append(f"    return _slow_decode(_b, 0, True{', _zl' if zw else ''})")


def _prefix_entry(out: list[str], view_dec: str, zw: bool, owner: str = "") -> None:
    out.extend(_head(owner, "decode_prefix", f"decode_prefix(_data, _o=0{_limit_param(zw)})"))
    out.append("    _b = _data if _data.__class__ is bytes else _view(_data)")
    out.append("    if _o.__class__ is not int: _o = _offset_arg(_o)")  # a clear TypeError, not '<=' unsupported
    out.append("    if not 0 <= _o <= len(_b): _bad_offset(_o, _b)")  # struct counts negatives from the end
    out.append("    try:")
    out.append(f"        return (dec if _b.__class__ is bytes else {view_dec})(_b, _o{', 0, [_zl]' if zw else ''})")
    out.append("    except Exception:")
    out.append("        pass")
    out.append(f"    return _slow_decode(_b, _o, False{', _zl' if zw else ''})")


def _size_entry(out: list[str], body: list[str], owner: str = "") -> None:
    out.extend(_head(owner, "byte_size", "byte_size(_v)"))
    out.append("    try:")
    out.extend(body)
    out.append("    except Exception:")
    out.append("        return len(_slow_encode(_v))")


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

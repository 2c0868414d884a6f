"""Emission: the namespace generated code runs in, and the line builders that gather fixed-width
values into fused ``struct`` calls (encode), unpacks (decode) and sums (byte size)."""

from __future__ import annotations

import collections
import dataclasses
import ipaddress
import linecache
import re
import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ..markers import Some
from ..wiretypes import Url
from . import support
from .plan import (
    MAX_ZERO_WIDTH_ELEMENTS,
    FloatNode,
    IntNode,
    MapNode,
    Node,
    OptionNode,
    SeqNode,
    SetNode,
)

_INT_FMT = {(1, False): "B", (2, False): "H", (4, False): "I", (8, False): "Q",
            (2, True): "h", (4, True): "i", (8, True): "q"}
_MAX_INLINE_DEPTH = 3  # deeper inlining grows the source (compile time) more than it saves
# Indentation at which a loop or branch goes to a function of its own: Python refuses more
# than 20 nested loops (SyntaxError) and 100 levels of indentation (IndentationError).
_MAX_BLOCK_INDENT = 8
_BLOCK_NODES = (SeqNode, SetNode, MapNode, OptionNode)  # the nodes whose code opens a block


def _bytes_len(data: Any) -> int:
    return data.nbytes if data.__class__ is memoryview else len(data)


def _url_text(value: Any) -> str:
    return value if value.__class__ is Url else Url(value)


def _qualname(name: str) -> Callable[[Any], Any]:
    """Names a generated function as its comment does (``AppMsg.encode``), once, when defined."""
    def name_it(fn: Any) -> Any:
        fn.__qualname__ = name
        return fn
    return name_it


_BASE_NS: dict[str, Any] = {
    "_qualname": _qualname,
    "_Bail": support.Bail,
    "_BOOLB": {False: 0, True: 1},
    "_BOOLD": (False, True),
    "_bool_arg": support.bool_arg,
    "_crowded": support.crowded,
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


# Each generated global's name says what it holds: ``_cls_Item`` (a class), ``_unit_Shape`` (a
# compiled unit), ``_members_Color``, ``_index_Color``, ``_key_...`` (a sort key),
# ``_fn_<field>_<role>`` (a user's function), ``_default_<field>``, ``_P_``/``_U_``/``_S_`` (a
# struct's pack, unpack_from and Struct); a local, what it holds too (``_name``, ``_qid_path``).
# Neither takes a name the other has (a suffix tells them apart), so no local shadows a global.
# Locals and parameters used by fixed names, and the globals defined by the generated source
# itself (tables, loaders), which are not in the namespace while bodies are generated:
_FIXED_NAMES = frozenset({
    "_", "_v", "_d", "_b", "_o", "_L", "_z", "_zl", "_r", "_n", "_ap", "_out", "_data", "_s", "_sz", "_ty",
    "_tg", "_m", "_p", "_g", "_node", "_root", "_unit", "_view", "_leftover", "_bad_offset", "_offset_arg",
    "_slow_encode", "_slow_decode", "_load_views", "_union_size", "_WHOLE_LOADERS", "_ENC", "_INTO", "_SIZE",
    "_DEC", "_DECV", "_FENC", "_FDEC", "_FDECV", "_FWHOLE", "_decode_other", "method_encode", "method_decode",
    "_end", "_max", "_frames", "_sizes", "_pairs", "decode_frames",
})
_VARIANT_FUNCTION = re.compile(r"_[vf]\d+(enc|into|dec|dec_view|size|whole)")  # _v3enc, _f25whole
_STRUCT_NAME = re.compile(r"_[PUSX]_[^_]+")  # _P_IH: made when a pack is rendered, after the locals


def _identifier_part(text: str) -> str:
    """``text`` (a label such as ``dict[str, u32]``, a qualified name) as part of a name."""
    return "_".join(re.findall(r"\w+", text))[:48]


def name_of(expr: str) -> str:
    """What a local holding ``expr`` is called, when ``expr`` reads a field: ``_v.name`` is
    ``name``, ``_qid.path`` is ``qid_path``; the function's own value and anything else (a
    lookup, a call), nothing, for the caller's word or ``_t``."""
    looked_up = re.fullmatch(r"([\w.]+)\[(\w+)\]", expr)  # a map's value, a tuple's item
    if looked_up:
        within, at = name_of(looked_up[1]), looked_up[2]
        return f"{within or 'item'}_{at}" if at.isdigit() else f"{singular(within)}_value"
    parts = expr.split(".")
    if not all(part.isidentifier() for part in parts):
        return ""
    if parts[0] in _FIXED_NAMES:
        parts = parts[1:]
    return "_".join(part.strip("_") for part in parts)


def singular(name: str) -> str:
    """An element of ``name``: ``items``' is ``item``, another's ``name_item``."""
    if len(name) > 1 and name.endswith("s") and not name.endswith("ss"):
        return name[:-1]
    return f"{name}_item" if name else "item"


# What each generated function does, for its heading comment and docstring.
ROLES = {
    "enc": "encodes to bytes; raises on anything unusual, and the caller falls back",
    "enc_into": "appends the encoding's pieces with _ap (streams); raises on anything unusual",
    "dec": "decodes bytes from offset _o, giving (value, end); raises on anything unusual",
    "dec_view": "decodes a memoryview from offset _o, giving (value, end); raises on anything unusual",
    "size": "the encoded size; raises on anything unusual",
    "encode": "the fast path; anything unusual falls back to the interpreter",
    "decode": "decodes a whole buffer; anything unusual or left over goes to the interpreter",
    "decode_view": "decodes a whole buffer other than bytes; anything unusual goes to the interpreter",
    "decode_prefix": "decodes at an offset, giving (value, end); anything unusual goes to the interpreter",
    "byte_size": "the encoded size; anything unusual goes to the interpreter",
}


def function_head(qualname: str, signature: str, role: str) -> list[str]:
    """The lines that open a generated function: one comment line saying what it is, its
    ``__qualname__`` (set once, when defined) and its docstring (neither costs a call anything)."""
    doc = role[:1].upper() + role[1:] + "."
    return [f"# {qualname}: {role}", f"@_qualname({qualname!r})", f"def {signature}:", f'    """{doc}"""']


class _Source:
    """Names for the objects generated code refers to. A name says what it holds, made unique
    with a suffix only on a clash: the same type gives the same source in every process."""

    def __init__(self, compile_unit: Callable[[Node], Any]) -> None:
        self.compile_unit = compile_unit  # unit.py's, which imports this module: given, not imported
        self.ns: dict[str, Any] = dict(_BASE_NS)
        self._ids: dict[object, str] = {}
        self._units: dict[int, str] = {}  # nodes past _MAX_BLOCK_INDENT: their own unit's name
        self.locals: set[str] = set()  # every local any function of this source has taken

    def unit_of(self, node: Node) -> str:
        """The name of a unit of its own for ``node``, made once per source (the node lives
        as long as the plan that holds it, so its id stays its own)."""
        name = self._units.get(id(node))
        if name is None:
            name = self._units[id(node)] = self.unit(node)
        return name

    def const(self, obj: Any, kind: str, what: str, key: object = None) -> str:
        """The global holding ``obj``: ``_<kind>_<what>`` (``_cls_Item``), made once per object
        (or per ``key``, for an object made anew each time it is asked for)."""
        if key is None:
            key = id(obj)
        name = self._ids.get(key)
        if name is None:
            base = f"_{kind}_{_identifier_part(what) or kind}"
            name = base
            suffix = 1
            while name in self.ns or name in self.locals or name in _FIXED_NAMES:
                suffix += 1
                name = f"{base}_{suffix}"
            self._ids[key] = name
            self.ns[name] = obj
        return name

    def unit(self, node: Node) -> str:
        """The global holding the compiled unit of ``node`` (a struct or union called, not inlined)."""
        return self.const(self.compile_unit(node), "unit", node.label)

    def cls(self, cls: type) -> str:
        return self.const(cls, "cls", cls.__qualname__.rpartition("<locals>.")[2])

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

    def exact_unpacker(self, fmt: str) -> str:
        """The name of ``struct.Struct(fmt).unpack``, bound: it takes no offset (parsing one
        costs more than the rest of a small call) and refuses a buffer of any other length."""
        name = "_X_" + self.struct(fmt)[3:]
        if name not in self.ns:
            self.ns[name] = self.ns["_S_" + name[3:]].unpack
        return name


class _Lines:
    """The body of one generated function. ``names`` are the locals it has taken: a part of
    the same function (an Option's trial, a loop's sizes) shares its function's set."""

    def __init__(self, src: _Source, indent: int, names: set[str] | None = None) -> None:
        self.src = src
        self.lines: list[str] = []
        self.indent = indent
        self.names: set[str] = set() if names is None else names
        # locals set up front only when used (``_d``, ``_L``): recorded by whoever emits a
        # reference to one, rather than searched for in the text afterwards
        self.used: set[str] = set()

    def tmp(self, *parts: str) -> str:
        """A new local named for what it holds: ``_`` and the non-empty ``parts`` joined
        (``tmp("qid", "path")`` is ``_qid_path``), with a suffix only when taken or reserved."""
        base = "_" + ("_".join(p for p in parts if p) or "t")
        name, suffix = base, 1
        while (name in self.names or name in self.src.ns or name in _FIXED_NAMES
               or _VARIANT_FUNCTION.fullmatch(name) or _STRUCT_NAME.fullmatch(name)):
            suffix += 1
            name = f"{base}_{suffix}"
        self.names.add(name)
        self.src.locals.add(name)
        return name

    def bind(self, expr: str, *what: str) -> str:
        """A name for the value of ``expr``, evaluated once (``what``: as :meth:`tmp`, by
        default what ``expr`` reads, see :func:`name_of`)."""
        if expr.isidentifier():
            return expr
        name = self.tmp(*(what or (name_of(expr),)))
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


@dataclasses.dataclass(frozen=True, slots=True)
class Pack:
    """``struct.pack`` of ``fmt`` (little-endian, no ``<``) with argument expressions: its size
    is the format's, whatever the arguments."""

    fmt: str
    args: tuple[str, ...]

    @property
    def size(self) -> int:
        return struct.calcsize("<" + self.fmt)


@dataclasses.dataclass(frozen=True, slots=True)
class Const:
    """Bytes known while generating (a pack of constants only), written as a literal."""

    data: bytes


@dataclasses.dataclass(frozen=True, slots=True)
class Sized:
    """A local holding bytes whose length another local already holds (a string's encoding,
    a data field): a frame's size adds that local rather than calling ``len`` again."""

    name: str
    length: str


@dataclasses.dataclass(frozen=True, slots=True)
class Expr:
    """Any other bytes-like expression (a unit's ``enc``, an Option's choice, ``bytes(...)``)."""

    text: str


Piece = Pack | Const | Sized | Expr


class _Enc(_Lines):
    """Encoder body. Static mode gathers pieces for one final join; the first loop or branch
    switches to appending to a list (``_ap``). Pieces stay records until rendered, so what a
    piece is (a pack, its size) is read from the record, never from generated text."""

    def __init__(self, src: _Source, indent: int, dynamic: bool, names: set[str] | None = None) -> None:
        super().__init__(src, indent, names)
        self.fmt: list[str] = []
        self.args: list[str | int] = []  # an int is a constant: a run of only those is packed now
        self.pieces: list[Piece] = []
        self.dynamic = dynamic
        # A frame's first piece holds its size, known only at the end: on going dynamic it
        # waits here, out of ``_out``, and goes in front of the joined rest.
        self.defer_first = False
        self.deferred: Piece | None = None

    def render(self, piece: Piece) -> str:
        if isinstance(piece, Pack):
            return f"{self.src.packer('<' + piece.fmt)}({', '.join(piece.args)})"
        if isinstance(piece, Const):
            return repr(piece.data)  # a literal: LOAD_CONST, cheaper than a global
        if isinstance(piece, Sized):
            return piece.name
        return piece.text

    def length_of(self, name: str) -> str:
        """A local holding ``len(name)``, computed once (the length prefix and, in a frame,
        the size both need it). Only for straight-line code: a loop reassigns its pieces."""
        if self.dynamic:
            return f"len({name})"
        length = self.tmp(name_of(name), "len")
        self.line(f"{length} = len({name})")
        return length

    def fixed(self, fmt: str, expr: str | int) -> None:
        self.fmt.append(fmt)
        self.args.append(expr)

    def flush(self) -> None:
        if not self.fmt:
            return
        fmt, args = "".join(self.fmt), self.args
        self.fmt, self.args = [], []
        if all(isinstance(a, int) for a in args):
            self._emit(Const(struct.pack("<" + fmt, *args)))
        else:
            self._emit(Pack(fmt, tuple(map(str, args))))

    def piece(self, piece: Piece) -> None:
        """A piece that follows what is pending."""
        self.flush()
        self._emit(piece)

    def bytes_of(self, name: str, length: str) -> None:
        """The bytes in local ``name``, whose length ``length`` holds (from :meth:`length_of`)."""
        self.piece(Expr(name) if self.dynamic else Sized(name, length))

    def _emit(self, piece: Piece) -> None:
        if self.dynamic:
            self.line(f"_ap({self.render(piece)})")
        else:
            self.pieces.append(piece)

    def enter(self) -> None:
        self.go_dynamic()

    def go_dynamic(self) -> None:
        self.flush()
        if not self.dynamic:
            if self.defer_first and self.pieces:
                self.deferred = self.pieces.pop(0)
            self.line(f"_out = [{', '.join(map(self.render, self.pieces))}]")
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
        texts = [self.render(piece) for piece in self.pieces]
        known_bytes = isinstance(self.pieces[0], (Pack, Const))  # bytes, not another buffer
        if len(texts) == 1:
            return texts[0] if known_bytes else f"bytes({texts[0]})"
        if len(texts) <= 3 and known_bytes:  # bytes + any buffer is bytes, and + beats join
            return " + ".join(texts)
        return f'b"".join(({", ".join(texts)},))'


class _Dec(_Lines):
    """Decoder body: fixed-width reads wait in a run and are unpacked together; ``fixups``
    (building objects from the values) run right after the unpack."""

    def __init__(self, src: _Source, indent: int, view: bool, names: set[str] | None = None) -> None:
        super().__init__(src, indent, names)
        self.view = view  # reading a memoryview (no .decode()) rather than bytes
        self.fmt: list[str] = []
        self.targets: list[str] = []
        self.size = 0
        self.fixups: list[str] = []
        self.end_checks: list[int] = []  # lines that only check a length against the buffer's end
        # a buffer of exactly this many bytes, all read by the first run: one Struct.unpack of it
        self.whole_size: int | None = None
        self.read_whole = False  # set once that unpack is emitted (it checked the buffer's length)

    def end_check(self, condition: str) -> None:
        """``condition`` compares with the buffer's length, ``_L``: it is dropped, with its
        use of ``_L``, by :meth:`lines_checked_at_end`."""
        self.end_checks.append(len(self.lines))
        self.line(f"if {condition}: raise _Bail")

    def uses(self, name: str, checked_at_end: bool = False) -> bool:
        """Whether the body (or :meth:`lines_checked_at_end`) reads the local ``name``."""
        if name == "_L" and self.end_checks and not checked_at_end:
            return True
        return name in self.used

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
            whole = self.size == self.whole_size and not self.lines
            if whole:
                unpack = self.src.exact_unpacker("<" + "".join(self.fmt))
                self.line(f"{', '.join(self.targets)}, = {unpack}(_b)")  # every byte: no offset to keep
                self.read_whole = True
            elif self.fmt == ["B"]:
                self.line(f"{self.targets[0]} = _b[_o]")
            elif self.fmt == ["H"]:  # a lone length: two indexings beat a struct call
                self.line(f"{self.targets[0]} = _b[_o] | _b[_o + 1] << 8")
            else:
                unpack = self.src.unpacker("<" + "".join(self.fmt))
                self.line(f"{', '.join(self.targets)}, = {unpack}(_b, _o)")
            if not whole:
                self.line(f"_o += {self.size}")
        for text in self.fixups:
            self.line(text)
        self.fmt, self.targets, self.size, self.fixups = [], [], 0, []



class _Size(_Lines):
    def __init__(self, src: _Source, indent: int, names: set[str] | None = None) -> None:
        super().__init__(src, indent, names)
        self.const = 0

    def add(self, expr: str) -> None:
        self.line(f"_n += {expr}")

    def add_utf8(self, expr: str, errors: str = "strict", *what: str) -> None:
        t = self.bind(expr, *what)
        how = "" if errors == "strict" else f"'utf-8', {errors!r}"
        self.add(f"(len({t}) if {t}.isascii() else len({t}.encode({how})))")



def _scalar_fmt(node: Node) -> str | None:
    """The struct code of a node that packs as one plain struct item, with no checks."""
    if isinstance(node, IntNode) and node.kind.size < 16:
        return _INT_FMT[(node.kind.size, node.kind.signed)]
    if isinstance(node, FloatNode) and node.kind.size == 8:
        return "d"
    return None

def _exec_source(src: _Source, lines: list[str], name: str) -> tuple[str, str]:
    """Compiles ``lines`` into ``src.ns`` and registers the source for tracebacks under a name
    made of ``name`` (module, qualified name, group: unique in the process), the same in every
    run: ``(filename, source)``."""
    filename = f"<jetwire generated {name}>"
    source = "\n".join(lines) + "\n"
    code = compile(source, filename, "exec")
    exec(code, src.ns)  # noqa: S102 - our own generated source
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    return filename, source


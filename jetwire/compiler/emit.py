"""Emission: the namespace generated code runs in, and the line builders that gather fixed-width
values into fused ``struct`` calls (encode), unpacks (decode) and sums (byte size)."""

from __future__ import annotations

import collections
import ipaddress
import itertools
import linecache
import struct
import threading
from collections.abc import Iterator
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
_serial = itertools.count()
_compile_lock = threading.RLock()  # a group that compiles another (recursive types) holds it twice


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

    def exact_unpacker(self, fmt: str) -> str:
        """The name of ``struct.Struct(fmt).unpack``, bound: it takes no offset (parsing one
        costs more than the rest of a small call) and refuses a buffer of any other length."""
        name = "_X_" + self.struct(fmt)[3:]
        if name not in self.ns:
            self.ns[name] = self.ns["_S_" + name[3:]].unpack
        return name

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
        # a buffer of exactly this many bytes, all read by the first run: one Struct.unpack of it
        self.whole_size: int | None = None
        self.read_whole = False  # set once that unpack is emitted (it checked the buffer's length)

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
            whole = self.size == self.whole_size and not self.lines
            if whole:
                unpack = self.src.exact_unpacker("<" + "".join(self.fmt))
                self.line(f"{', '.join(self.targets)}, = {unpack}(_b)")
                self.line(f"_o = {self.size}")
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

def _exec_source(src: _Source, lines: list[str], label: str) -> tuple[str, str]:
    """Compiles ``lines`` into ``src.ns`` and registers the source for tracebacks."""
    filename = f"<jetwire codec {label} #{next(_serial)}>"
    source = "\n".join(lines) + "\n"
    code = compile(source, filename, "exec")
    exec(code, src.ns)  # noqa: S102 - our own generated source
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    return source, filename


def compile_unit(node: Node) -> Any:
    """The unit of ``node`` (the unit module imports this one, so it is looked up on call)."""
    from .unit import compile_unit as compile_now

    return compile_now(node)

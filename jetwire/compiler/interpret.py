"""The reference interpreter: encodes and decodes by walking a plan, checking everything.

Generated code is the fast path; when it fails for any reason, the same input goes through
here, which either produces the value (the generated code only bailed out) or raises an error
naming the field path and byte offset. It also drives ``explain`` and reading from files and
streams: decoding is a generator that asks for exactly the bytes it needs next.
"""

from __future__ import annotations

import collections
import collections.abc
import ipaddress
import operator
import struct
from collections.abc import Callable, Generator
from typing import Any

from ..errors import DecodeError, EncodeError, TruncatedError, byte_count
from ..markers import Some
from ..wiretypes import Url, url_problem
from .framing import HEADER_SIZE, SIZE_FIELD, parse_header, size_below_minimum
from .plan import (
    MAX_DATA_BYTES,
    MAX_DEPTH,
    MAX_ELEMENTS,
    MAX_FRAME_SIZE,
    MAX_SHARED_HASH,
    MAX_STRING_BYTES,
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
    UnknownNodeError,
    UrlNode,
    entries_may_take_no_bytes,
    hashes_may_crowd,
    unknown_node,
    zero_width_entries,
)
from .support import (
    HashCount,
    NeedMore,
    ReplayReader,
    as_bytes_like,
    bool_arg,
    datetime_to_ms,
    describe_number,
    f32_from_bits,
    f32_to_bits,
    ms_to_datetime,
)
from .values import construct, sort_key_of, variant_of

_D = struct.Struct("<d")

Path = tuple[Any, ...]  # (root,) or (parent path, step): see render_path
Steps = Generator[int, bytes, Any]
# A value's decoder: yields byte counts (answered with the bytes) and nested values' decoders
# (answered with their values), for decode_steps to run.
Decoder = Generator[Any, Any, Any]


def render_path(path: Path) -> str:
    """A path's text. A path is ``(root,)`` or ``(parent, step)``: each level adds a pair rather
    than copying its parent's steps (which made decoding a value n levels deep cost n² steps
    copied), so the text is only put together when an error or ``explain`` needs it."""
    steps = []
    while len(path) == 2:
        path, step = path
        steps.append(step)
    steps.append(path[0])
    return "".join(reversed(steps))


class Trace:
    """What ``explain`` shows: one entry per value read, with its bytes; past ``keep`` entries,
    only the first and the last ``keep``, so that its memory does not grow with the input."""

    def __init__(self, keep: int = 1000) -> None:
        self.entries: list[tuple[int, int, str, str]] = []  # offset, length, path, shown value
        self.last: collections.deque[tuple[int, int, str, str]] = collections.deque(maxlen=keep)
        self.keep = keep
        self.left_out = 0  # entries between ``entries`` and ``last``

    def add(self, entry: tuple[int, int, str, str]) -> None:
        if len(self.entries) < self.keep:
            self.entries.append(entry)
            return
        if len(self.last) == self.keep:
            self.left_out += 1
        self.last.append(entry)


class DecodeState:
    __slots__ = ("depth", "offset", "trace", "zero_width_left", "zero_width_limit")

    def __init__(self, offset: int, trace: Trace | None, max_zero_width: int = MAX_ZERO_WIDTH_ELEMENTS) -> None:
        self.offset = offset
        self.trace = trace
        self.depth = 0  # structs and enums open around the current value
        self.zero_width_limit = max_zero_width
        self.zero_width_left = max_zero_width  # entries of zero-width collections still allowed


def _fail(reason: str, path: Path, offset: int) -> DecodeError:
    return DecodeError(reason, render_path(path), offset)


def _ran_out(reason: str, path: Path, offset: int) -> TruncatedError:
    """The input ended before the value: the one kind a reader of a growing buffer may wait on."""
    return TruncatedError(f"unexpected end of data: {reason}", render_path(path), offset)


def _read_int(node: IntNode, raw: bytes, path: Path, st: DecodeState) -> int:
    """The int in ``raw``, the bytes asked for ``node``, as ``_take`` would check them."""
    k = node.kind
    if len(raw) < k.size:
        raise _ran_out(f"{k.name} needs {byte_count(k.size)}, {len(raw)} left", path, st.offset)
    start = st.offset
    st.offset += k.size
    value = int.from_bytes(raw, "little", signed=k.signed)
    if st.trace is not None:
        _note(st, start, path, repr(value))
    return value


def _take(n: int, path: Path, st: DecodeState, what: str) -> Steps:
    data = yield n
    if len(data) < n:
        left = len(data)
        raise _ran_out(f"{what} needs {byte_count(n)}, {left} left", path, st.offset)
    return data


def _note(st: DecodeState, start: int, path: Path, shown: Any) -> None:
    if st.trace is not None:
        st.trace.add((start, st.offset - start, render_path(path), shown))


def decode_steps(node: Node, path: Path, st: DecodeState) -> Steps:
    """Decodes ``node``, yielding how many bytes it needs next and receiving them.

    Each value's decoder is a generator that yields either a byte count or the decoder of a
    nested value, whose result it is sent back. This loop runs them from a list rather than
    nesting them (``yield from``, where each level is a C call): decoding as deep as MAX_DEPTH
    then needs no more of the C stack than a flat value, so a thread's small stack holds."""
    open_decoders: list[Decoder] = []
    current = _steps(node, path, st)
    reply: Any = None
    while True:
        try:
            asked = current.send(reply)
        except StopIteration as done:
            if not open_decoders:
                return done.value
            current = open_decoders.pop()
            reply = done.value
            continue
        # no decoder catches what a nested one raises: an error goes straight to the caller
        if asked.__class__ is int:
            reply = yield asked
        else:
            open_decoders.append(current)
            current = asked
            reply = None


def _steps(node: Node, path: Path, st: DecodeState) -> Decoder:
    """The decoder of ``node``'s value: a generator for ``decode_steps`` to run."""
    decoder = DECODERS.get(node.__class__)
    if decoder is None:
        raise unknown_node("interpret.DECODERS", node)
    return decoder(node, path, st)


def _decode_int(node: IntNode, path: Path, st: DecodeState) -> Decoder:
    return _read_int(node, (yield node.kind.size), path, st)


def _decode_float(node: FloatNode, path: Path, st: DecodeState) -> Decoder:
    start = st.offset
    raw = yield from _take(node.kind.size, path, st, node.kind.name)
    st.offset += node.kind.size
    value: float
    if node.kind.size == 4:
        value = f32_from_bits(int.from_bytes(raw, "little"))
    else:
        value = _D.unpack(raw)[0]
    _note(st, start, path, repr(value))
    return value


def _decode_bool(node: BoolNode, path: Path, st: DecodeState) -> Decoder:  # r[jetstream.wireformat.bool]
    start = st.offset
    raw = yield from _take(1, path, st, "bool")
    if raw[0] > 1:
        raise _fail(f"invalid bool byte 0x{raw[0]:02x} (only 0x00 and 0x01)", path, st.offset)
    st.offset += 1
    _note(st, start, path, repr(raw[0] == 1))
    return raw[0] == 1


def _decode_unit(node: UnitNode, path: Path, st: DecodeState) -> Decoder:
    return None
    yield  # a generator, as every decoder is, that asks for nothing


def _decode_str(node: StrNode, path: Path, st: DecodeState) -> Decoder:
    start = st.offset
    text = yield from _string(path, st, node.errors)
    _note(st, start, path, repr(text))
    return text


def _decode_url(node: UrlNode, path: Path, st: DecodeState) -> Decoder:
    start = st.offset
    text = yield from _string(path, st, "strict")
    problem = url_problem(text)
    if problem:
        raise _fail(f"not an absolute URL ({problem}): {text!r}", path, start)
    url = Url(text)
    _note(st, start, path, repr(url))
    return url


def _decode_bytes(node: BytesNode, path: Path, st: DecodeState) -> Decoder:  # r[jetstream.wireformat.data]
    start = st.offset
    raw = yield from _take(4, path, st, "Data length")
    n = int.from_bytes(raw, "little")
    if n > MAX_DATA_BYTES:
        raise _fail(f"Data of {n} bytes is over the 32 MiB limit", path, st.offset)
    st.offset += 4
    data = yield from _take(n, path, st, f"Data of {n} bytes")
    st.offset += n
    _note(st, start, path, f"<{n} bytes>")
    return bytes(data)


def _decode_time(node: TimeNode, path: Path, st: DecodeState) -> Decoder:
    start = st.offset
    raw = yield from _take(8, path, st, "SystemTime")
    ms = int.from_bytes(raw, "little")
    try:
        value = ms_to_datetime(ms)
    except OverflowError:
        raise _fail(f"timestamp overflow: {ms} ms is past datetime's range", path, st.offset) from None
    st.offset += 8
    _note(st, start, path, value.isoformat())
    return value


def _decode_ip(node: IPNode, path: Path, st: DecodeState) -> Decoder:
    start = st.offset
    raw = yield from _take(node.fixed or 0, path, st, node.label)
    st.offset += len(raw)
    value = ipaddress.IPv4Address(raw) if node.version == 4 else ipaddress.IPv6Address(raw)
    _note(st, start, path, str(value))
    return value


def _entry_count(node: SeqNode | SetNode | MapNode, path: Path, st: DecodeState) -> Steps:
    """A collection's count, spent from the zero-width budget when its entries take no bytes."""
    start = st.offset
    raw = yield from _take(2, path, st, "count")
    count = int.from_bytes(raw, "little")
    st.offset += 2
    _note(st, start, (path, ".len"), str(count))
    if zero_width_entries(node):
        _spend_zero_width(count, f"this {node.label} of {count:,}", path, st, start)
    return count


def _decode_seq(node: SeqNode, path: Path, st: DecodeState) -> Decoder:
    count = yield from _entry_count(node, path, st)
    each = entries_may_take_no_bytes(node)  # then an entry that read nothing counts as one
    items = []
    elem: Any = node.elem
    for i in range(count):
        at = st.offset
        if elem.__class__ is IntNode:  # read here: a decoder of its own costs more than the int
            items.append(_read_int(elem, (yield elem.kind.size), (path, f"[{i}]"), st))
        else:
            items.append((yield _steps(elem, (path, f"[{i}]"), st)))
        if each and st.offset == at:
            _spend_zero_width(1, "this element, which read no bytes,", (path, f"[{i}]"), st, at)
    return items if node.container is list else node.container(items)


def _decode_set(node: SetNode, path: Path, st: DecodeState) -> Decoder:
    count = yield from _entry_count(node, path, st)
    each = entries_may_take_no_bytes(node)
    found: set[Any] = set()
    hashes = _hash_count(node.elem, count)
    for i in range(count):
        at = st.offset
        item = yield _steps(node.elem, (path, f"[{i}]"), st)
        if each and st.offset == at:
            _spend_zero_width(1, "this element, which read no bytes,", (path, f"[{i}]"), st, at)
        if hashes is not None and not hashes.add(item):
            raise _fail(_CROWDED, (path, f"[{i}]"), at)
        if item in found:
            raise _fail(f"duplicate element {item!r} in a set", (path, f"[{i}]"), at)
        found.add(item)
    return found if node.container is set else frozenset(found)


def _decode_map(node: MapNode, path: Path, st: DecodeState) -> Decoder:
    count = yield from _entry_count(node, path, st)
    each = entries_may_take_no_bytes(node)
    mapping: dict[Any, Any] = {}
    hashes = _hash_count(node.key, count)
    for i in range(count):
        at = st.offset
        key = yield _steps(node.key, (path, f"[{i}].key"), st)
        if hashes is not None and not hashes.add(key):
            raise _fail(_CROWDED, (path, f"[{i}].key"), at)
        if key in mapping:
            raise _fail(f"duplicate key {key!r} in a map", (path, f"[{i}].key"), at)
        mapping[key] = yield _steps(node.value, (path, f"[{i}].value"), st)
        if each and st.offset == at:
            _spend_zero_width(1, "this entry, which read no bytes,", (path, f"[{i}]"), st, at)
    return mapping


def _decode_option(node: OptionNode, path: Path, st: DecodeState) -> Decoder:  # r[jetstream.wireformat.option]
    start = st.offset
    raw = yield from _take(1, path, st, "Option tag")
    if raw[0] > 1:
        raise _fail(f"invalid Option tag 0x{raw[0]:02x} (only 0x00 and 0x01)", path, st.offset)
    st.offset += 1
    if raw[0] == 0:
        _note(st, start, path, "None")
        return None
    _note(st, start, (path, ".some"), "present")
    value = yield _steps(node.inner, path, st)
    if node.wrapped:
        return Some(value)
    return value


def _decode_tuple(node: TupleNode, path: Path, st: DecodeState) -> Decoder:
    values = []
    for i, item in enumerate(node.items):
        values.append((yield _steps(item, (path, f"[{i}]"), st)))
    return tuple(values)


def _decode_struct(node: StructNode, path: Path, st: DecodeState) -> Decoder:
    start = st.offset
    _deeper(st, path)
    values = []
    for f in node.wire_fields:
        field: Any = f.node
        if field.__class__ is IntNode:  # read here: a decoder of its own costs more than the int
            values.append(_read_int(field, (yield field.kind.size), (path, f".{f.name}"), st))
        else:
            values.append((yield _steps(field, (path, f".{f.name}"), st)))
    st.depth -= 1
    try:
        return construct(node, values)
    except Exception as exc:  # a user's __post_init__ may refuse the values
        raise _fail(f"{node.label} refused the decoded fields: {exc!r}", path, start) from exc


def _decode_union(node: UnionNode, path: Path, st: DecodeState) -> Decoder:  # r[jetstream.wireformat.enum]
    start = st.offset
    _deeper(st, path)
    raw = yield from _take(1, path, st, f"{node.label} tag")
    variant = node.by_tag.get(raw[0])
    if variant is None:
        tags = ", ".join(str(t) for t in sorted(node.by_tag))
        raise _fail(
            f"invalid variant index {raw[0]} for {node.label} (expected one of {tags})",
            path,
            st.offset,
        )
    st.offset += 1
    _note(st, start, (path, f"<{variant.name}>"), f"tag {raw[0]}")
    shared = isinstance(variant.node, StructNode)  # the variant's struct and its enum are one level
    if shared:
        st.depth -= 1  # counted again, at the same depth, by the struct
    value = yield _steps(variant.node, (path, f"<{variant.name}>"), st)
    if not shared:
        st.depth -= 1
    return value


def _decode_enum(node: EnumNode, path: Path, st: DecodeState) -> Decoder:
    start = st.offset
    raw = yield from _take(1, path, st, node.label)
    if raw[0] >= len(node.members):
        raise _fail(
            f"invalid variant index {raw[0]} for {node.label} (0..{len(node.members) - 1})",
            path,
            st.offset,
        )
    st.offset += 1
    member = node.members[raw[0]]
    _note(st, start, path, repr(member))
    return member


def _decode_custom(node: CustomNode, path: Path, st: DecodeState) -> Decoder:
    if node.decode is None:
        assert node.inner is not None
        return (yield _steps(node.inner, path, st))
    return (yield from _custom(node.decode, path, st))


def _decode_convert(node: ConvertNode, path: Path, st: DecodeState) -> Decoder:
    start = st.offset
    wire_value = yield _steps(node.inner, path, st)
    if node.from_wire is None:
        return wire_value
    try:
        return node.from_wire(wire_value)
    except Exception as exc:
        raise _fail(f"conversion from {node.inner.label} failed: {exc!r}", path, start) from exc


def _decode_frame(node: FrameNode, path: Path, st: DecodeState) -> Decoder:  # r[9p2000l.frame.header]
    start = st.offset
    raw = yield from _take(SIZE_FIELD, (path, ".size"), st, "frame size")
    size = int.from_bytes(raw, "little")
    if size < HEADER_SIZE:
        raise _fail(size_below_minimum(size), (path, ".size"), start)
    st.offset += SIZE_FIELD
    _note(st, start, (path, ".size"), repr(size))
    rest = yield from _take(size - SIZE_FIELD, path, st, f"a frame of {size} bytes")
    _, kind, tag = parse_header(raw + rest[:HEADER_SIZE - SIZE_FIELD])
    variant = node.union.by_tag.get(kind)
    if variant is None:
        types = ", ".join(str(t) for t in sorted(node.union.by_tag))
        reason = f"unknown message type {kind} for {node.label} (expected one of {types})"
        raise _fail(reason, (path, ".type"), st.offset)
    st.offset += 1
    _note(st, st.offset - 1, (path, ".type"), f"{kind} ({variant.name})")
    st.offset += 2
    _note(st, st.offset - 2, (path, ".tag"), repr(tag))
    inner = (path, f".msg<{variant.name}>")
    _deeper(st, path)  # the union's level, as when the message is decoded on its own
    shared = isinstance(variant.node, StructNode)  # one level with the union, counted by the struct
    if shared:
        st.depth -= 1
    steps = decode_steps(variant.node, inner, st)
    pos = HEADER_SIZE - SIZE_FIELD
    try:
        want = steps.send(None)  # type: ignore[arg-type]
        while True:
            chunk = rest[pos:pos + want]
            pos += len(chunk)
            want = steps.send(chunk)
    except StopIteration as done:
        msg = done.value
    except TruncatedError as exc:
        if pos >= len(rest):  # the frame's own size cut the message: more input would not help
            reason = f"the frame ends inside its body (size {size}): {exc.reason}"
            raise DecodeError(reason, exc.path, exc.offset) from None
        raise
    if not shared:
        st.depth -= 1
    if pos != len(rest):
        raise _fail(
            f"{byte_count(len(rest) - pos)} left over inside the frame after a complete {variant.name} (size {size})",
            inner,
            st.offset,
        )
    if node.direct:
        frame: Any = object.__new__(node.cls)
        frame.tag = tag
        frame.msg = msg
        return frame
    return node.cls(tag, msg)


def _spend_zero_width(count: int, what: str, path: Path, st: DecodeState, start: int) -> None:
    st.zero_width_left -= count
    if st.zero_width_left < 0:
        raise _fail(
            f"too many zero-width elements: {what} takes one decode past "
            f"{st.zero_width_limit:,} (max_zero_width_elements); they cost memory but no input bytes",
            path,
            start,
        )


def _deeper(st: DecodeState, path: Path) -> None:
    st.depth += 1
    if st.depth > MAX_DEPTH:
        raise _fail(f"nesting too deep: more than {MAX_DEPTH} structs and enums inside each other", path, st.offset)


def _string(path: Path, st: DecodeState, errors: str) -> Steps:  # r[jetstream.wireformat.string]
    raw = yield from _take(2, path, st, "string length")
    n = int.from_bytes(raw, "little")
    st.offset += 2
    data = yield from _take(n, path, st, f"string of {n} bytes")
    try:
        text = data.decode("utf-8", errors)
    except UnicodeDecodeError as exc:
        raise _fail(f"invalid UTF-8 ({exc.reason})", path, st.offset + exc.start) from None
    st.offset += n
    return text


def _custom(decode: Callable[[Any], Any], path: Path, st: DecodeState) -> Steps:
    got = b""
    while True:
        reader = ReplayReader(got)
        try:
            value = decode(reader)
        except NeedMore as more:
            chunk = yield more.missing
            if len(chunk) < more.missing:
                raise _ran_out(
                    f"the custom codec needs {byte_count(more.missing)} more, {len(chunk)} left",
                    path,
                    st.offset + len(got),
                ) from None
            got += chunk
            continue
        except DecodeError as exc:  # its offset counts from the start of this field
            raise _fail(exc.reason, path, st.offset + exc.offset) from None
        except Exception as exc:
            raise _fail(f"custom codec failed: {exc!r}", path, st.offset + reader.pos) from exc
        if reader.pos != len(got):
            raise _fail("custom codec is not deterministic: it read different bytes on a retry", path, st.offset)
        start = st.offset
        st.offset += len(got)
        _note(st, start, path, repr(value))
        return value


# ---------------------------------------------------------------------------------------------
# Encoding


def encode_value(node: Node, value: Any, path: Path, out: bytearray, depth: int = 0) -> None:
    """Writes ``value``; ``depth`` counts the structs and enums around it, as decoding does.

    Nested values wait on a list of tasks, last pushed first written, rather than on the C
    stack: encoding as deep as MAX_DEPTH needs no more stack than a flat value."""
    tasks: list[_Task] = [(node, value, path, depth)]
    pop = tasks.pop
    push = tasks.append
    task = tasks[0]
    encoders = _TASK_ENCODERS
    try:
        while tasks:
            task = pop()
            encoder = encoders.get(task[0].__class__)
            if encoder is None:
                raise unknown_node("interpret.ENCODERS", task[0])
            encoder(*task, out, push)
    except (EncodeError, RecursionError, UnknownNodeError):
        raise
    except Exception as exc:  # the value's own __index__, __len__, __iter__, __hash__, __eq__...
        _, bad, at, _ = task
        reason = f"{type(bad).__name__} failed while being encoded: {type(exc).__name__}: {exc}"
        raise EncodeError(reason, render_path(at), len(out)) from exc


class _Resume:
    """A task's node: the fields of ``struct`` from ``index`` on (a marker, not a wire type)."""

    __slots__ = ("index", "struct")

    def __init__(self, struct: StructNode, index: int) -> None:
        self.struct = struct
        self.index = index


_Task = tuple["Node | _Resume", Any, Path, int]
_Push = Callable[[_Task], None]


def _encode_fail(reason: str, path: Path, out: bytearray) -> EncodeError:
    return EncodeError(reason, render_path(path), len(out))


def _encode_int(node: IntNode, value: Any, path: Path, depth: int, out: bytearray, push: _Push) -> None:
    k = node.kind
    if isinstance(value, float) or not hasattr(value, "__index__"):
        raise _encode_fail(f"expected an int for {k.name}, got {type(value).__name__}", path, out)
    n = value.__index__()
    if not k.min <= n <= k.max:
        raise _encode_fail(f"{describe_number(n)} is out of range for {k.name} ({k.min}..{k.max})", path, out)
    out += n.to_bytes(k.size, "little", signed=k.signed)


def _encode_float(node: FloatNode, value: Any, path: Path, depth: int, out: bytearray, push: _Push) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise _encode_fail(f"expected a float for {node.kind.name}, got {type(value).__name__}", path, out)
    if node.kind.size == 4:
        try:
            out += f32_to_bits(float(value)).to_bytes(4, "little")
        except OverflowError:
            raise _encode_fail(f"{describe_number(value)} is too large for f32", path, out) from None
    else:
        try:
            out += _D.pack(float(value))
        except OverflowError:  # an int past float's range
            raise _encode_fail(f"{describe_number(value)} is too large for f64", path, out) from None


def _encode_bool(node: BoolNode, value: Any, path: Path, depth: int, out: bytearray, push: _Push) -> None:
    try:
        out.append(bool_arg(value))
    except TypeError as exc:
        raise _encode_fail(str(exc), path, out) from None


def _encode_unit(node: UnitNode, value: Any, path: Path, depth: int, out: bytearray, push: _Push) -> None:
    if value is not None:
        raise _encode_fail(f"expected None, got {value!r}", path, out)


def _encode_text(value: Any, errors: str, path: Path, out: bytearray) -> None:
    try:
        raw = value.encode("utf-8", errors)
    except UnicodeEncodeError as exc:
        raise _encode_fail(f"not encodable as UTF-8 at character {exc.start} ({exc.reason})", path, out) from None
    if len(raw) > MAX_STRING_BYTES:
        raise _encode_fail(f"string of {len(raw)} UTF-8 bytes is over the 65,535 limit", path, out)
    out += len(raw).to_bytes(2, "little")
    out += raw


def _encode_str(node: StrNode, value: Any, path: Path, depth: int, out: bytearray, push: _Push) -> None:
    if not isinstance(value, str):
        raise _encode_fail(f"expected str, got {type(value).__name__}", path, out)
    _encode_text(value, node.errors, path, out)


def _encode_url(node: UrlNode, value: Any, path: Path, depth: int, out: bytearray, push: _Push) -> None:
    if not isinstance(value, str):
        raise _encode_fail(f"expected str, got {type(value).__name__}", path, out)
    problem = url_problem(value)
    if problem:
        raise _encode_fail(f"not an absolute URL ({problem}): {value!r}", path, out)
    _encode_text(value, "strict", path, out)


def _encode_bytes(node: BytesNode, value: Any, path: Path, depth: int, out: bytearray, push: _Push) -> None:
    try:
        data = as_bytes_like(value)
    except TypeError as exc:
        raise _encode_fail(str(exc), path, out) from None
    if len(data) > MAX_DATA_BYTES:
        raise _encode_fail(f"Data of {len(data)} bytes is over the 32 MiB limit", path, out)
    out += len(data).to_bytes(4, "little")
    out += data


def _encode_time(node: TimeNode, value: Any, path: Path, depth: int, out: bytearray, push: _Push) -> None:
    try:
        ms = datetime_to_ms(value)
    except (TypeError, ValueError) as exc:
        raise _encode_fail(str(exc), path, out) from None
    out += ms.to_bytes(8, "little")


def _encode_ip(node: IPNode, value: Any, path: Path, depth: int, out: bytearray, push: _Push) -> None:
    want = ipaddress.IPv4Address if node.version == 4 else ipaddress.IPv6Address
    if not isinstance(value, want):
        raise _encode_fail(f"expected {want.__name__}, got {type(value).__name__}", path, out)
    out += value.packed


def _encode_seq(node: SeqNode, value: Any, path: Path, depth: int, out: bytearray, push: _Push) -> None:
    if isinstance(value, (str, bytes, bytearray, memoryview)) or not isinstance(value, collections.abc.Sequence):
        raise _encode_fail(f"expected a list or tuple, got {type(value).__name__}", path, out)
    _count(len(value), path, out)
    elem = node.elem
    items = value if value.__class__ is list or value.__class__ is tuple else list(value)  # a deque indexes slowly
    ints_done = _write_ints(elem, items, out) if elem.__class__ is IntNode else 0
    for i in range(len(items) - 1, ints_done - 1, -1):
        push((elem, items[i], (path, f"[{i}]"), depth))


def _encode_set(node: SetNode, value: Any, path: Path, depth: int, out: bytearray, push: _Push) -> None:
    if not isinstance(value, collections.abc.Set):
        raise _encode_fail(f"expected a set or frozenset, got {type(value).__name__}", path, out)
    _count(len(value), path, out)
    items = _ordered(value, sort_key_of(node.elem), path, out)
    elem = node.elem
    for i in range(len(items) - 1, -1, -1):
        push((elem, items[i], (path, f"[{i}]"), depth))


def _encode_map(node: MapNode, value: Any, path: Path, depth: int, out: bytearray, push: _Push) -> None:
    if not isinstance(value, collections.abc.Mapping):
        raise _encode_fail(f"expected a dict, got {type(value).__name__}", path, out)
    _count(len(value), path, out)
    by_key = sort_key_of(node.key)
    entry_key = _first if by_key is None else lambda entry: by_key(entry[0])
    # by items, not by looking each key up: keys that share a hash make lookups linear
    entries = _ordered(value.items(), entry_key, path, out)
    for i in range(len(entries) - 1, -1, -1):
        key, item = entries[i]
        push((node.value, item, (path, f"[{i}].value"), depth))
        push((node.key, key, (path, f"[{i}].key"), depth))


def _encode_option(node: OptionNode, value: Any, path: Path, depth: int, out: bytearray, push: _Push) -> None:
    if value is None:
        out.append(0)
        return
    if node.wrapped:
        if not isinstance(value, Some):
            raise _encode_fail(f"expected None or Some(...), got {value!r}", path, out)
        value = value.value
    out.append(1)
    push((node.inner, value, path, depth))


def _encode_tuple(node: TupleNode, value: Any, path: Path, depth: int, out: bytearray, push: _Push) -> None:
    if not isinstance(value, (tuple, list)) or len(value) != len(node.items):
        raise _encode_fail(f"expected a tuple of {len(node.items)}, got {value!r}", path, out)
    for i in range(len(value) - 1, -1, -1):
        push((node.items[i], value[i], (path, f"[{i}]"), depth))


def _deeper_encoding(depth: int, path: Path, out: bytearray) -> int:
    depth += 1
    if depth > MAX_DEPTH:
        raise _encode_fail(f"nesting too deep: more than {MAX_DEPTH} structs and enums inside each other", path, out)
    return depth


def _encode_struct(node: StructNode, value: Any, path: Path, depth: int, out: bytearray, push: _Push) -> None:
    depth = _deeper_encoding(depth, path, out)
    if not isinstance(value, node.cls):
        raise _encode_fail(f"expected {node.label}, got {type(value).__name__}", path, out)
    _encode_fields(node, value, 0, path, depth, out, push)


def _encode_resume(node: _Resume, value: Any, path: Path, depth: int, out: bytearray, push: _Push) -> None:
    _encode_fields(node.struct, value, node.index, path, depth, out, push)


def _encode_union(node: UnionNode, value: Any, path: Path, depth: int, out: bytearray, push: _Push) -> None:
    depth = _deeper_encoding(depth, path, out)
    variant = variant_of(node, value)
    if variant is None:
        choices = ", ".join(v.name for v in node.variants)
        got = type(value).__qualname__.rsplit("<locals>.", 1)[-1]  # Other.Circle, not Circle
        raise _encode_fail(f"expected {node.label} ({choices}), got {got}", path, out)
    out.append(variant.tag)
    if isinstance(variant.node, StructNode):
        depth -= 1  # the variant's struct and its enum are one level, counted by the struct
    push((variant.node, value, (path, f"<{variant.name}>"), depth))


def _encode_frame_task(node: FrameNode, value: Any, path: Path, depth: int, out: bytearray, push: _Push) -> None:
    _encode_frame(node, value, path, out, depth)


def _encode_enum(node: EnumNode, value: Any, path: Path, depth: int, out: bytearray, push: _Push) -> None:
    index = node.index.get(value) if _hashable(value) else None
    if index is None:
        raise _encode_fail(f"expected a member of {node.label}, got {value!r}", path, out)
    out.append(index)


def _encode_custom(node: CustomNode, value: Any, path: Path, depth: int, out: bytearray, push: _Push) -> None:
    if node.encode is None:
        assert node.inner is not None
        push((node.inner, value, path, depth))
        return
    assert node.size is not None
    pieces: list[bytes] = []
    try:
        size = node.size(value)
        node.encode(value, _Collect(pieces))
    except EncodeError as exc:
        raise _encode_fail(exc.reason, path, out) from None
    except Exception as exc:
        raise _encode_fail(f"custom codec failed: {exc!r}", path, out) from exc
    written = b"".join(pieces)
    if len(written) != size:
        raise _encode_fail(f"custom codec wrote {byte_count(len(written))} but its byte_size said {size}", path, out)
    out += written


def _encode_convert(node: ConvertNode, value: Any, path: Path, depth: int, out: bytearray, push: _Push) -> None:
    if node.to_wire is not None:
        try:
            value = node.to_wire(value)
        except Exception as exc:
            raise _encode_fail(f"conversion to {node.inner.label} failed: {exc!r}", path, out) from exc
    push((node.inner, value, path, depth))


def _write_ints(node: IntNode, items: Any, out: bytearray) -> int:
    """Writes the leading ``items`` that are plain ints in range; returns how many. The rest
    (bools, ``__index__`` objects, errors) take the general way."""
    k = node.kind
    low, high, size, signed = k.min, k.max, k.size, k.signed
    for i, item in enumerate(items):
        if item.__class__ is not int or not low <= item <= high:
            return i
        out += item.to_bytes(size, "little", signed=signed)
    return len(items)


def _encode_fields(
    node: StructNode, value: Any, start: int, path: Path, depth: int, out: bytearray, push: Callable[[_Task], None]
) -> None:
    """Writes the fields of ``value`` from ``start`` on: plain ints at once; at the first other
    field, pushes the rest of the struct as a task, then that field (written first)."""
    fields = node.wire_fields
    for index in range(start, len(fields)):
        f = fields[index]
        try:
            field_value = getattr(value, f.name)
        except AttributeError:
            raise EncodeError(f"{node.label} has no attribute {f.name!r}", render_path(path), len(out)) from None
        field = f.node
        assert field is not None
        if field.__class__ is IntNode and _write_ints(field, (field_value,), out):
            continue
        if index + 1 < len(fields):
            push((_Resume(node, index + 1), value, path, depth))  # the value stays the struct's
        push((field, field_value, (path, f".{f.name}"), depth))
        return


def _encode_frame(node: FrameNode, value: Any, path: Path, out: bytearray, depth: int) -> None:
    start = len(out)
    if not isinstance(value, node.cls):
        raise EncodeError(f"expected {node.label}, got {type(value).__name__}", render_path(path), start)
    tag: Any = getattr(value, "tag", None)
    if isinstance(tag, float) or not hasattr(tag, "__index__") or not 0 <= tag.__index__() <= 0xFFFF:
        raise EncodeError(f"a tag is a u16 (0..65535), not {tag!r}", render_path((path, ".tag")), start + 5)
    tag = tag.__index__()  # as any u16 field takes it
    msg = getattr(value, "msg", None)
    variant = variant_of(node.union, msg)
    if variant is None:
        choices = ", ".join(v.name for v in node.union.variants)
        reason = f"{type(msg).__name__} is not a message of {node.label} ({choices})"
        raise EncodeError(reason, render_path((path, ".msg")), start + 4)
    out += bytes(4)
    out.append(variant.tag)
    out += tag.to_bytes(2, "little")
    # a frame is never a field, so this second task list is never more than one deep
    shared = isinstance(variant.node, StructNode)  # the message's struct is its union's level
    encode_value(variant.node, msg, (path, f".msg<{variant.name}>"), out, depth if shared else depth + 1)
    size = len(out) - start
    if size > MAX_FRAME_SIZE:
        raise EncodeError(f"a frame of {size} bytes does not fit its u32 size", render_path(path), start)
    out[start:start + 4] = size.to_bytes(4, "little")


class _Collect:
    __slots__ = ("write",)

    def __init__(self, pieces: list[bytes]) -> None:
        self.write = lambda data: pieces.append(bytes(data))


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _count(n: int, path: Path, out: bytearray) -> None:
    if n > MAX_ELEMENTS:
        raise _encode_fail(f"{n} elements are over the 65,535 limit", path, out)
    out += n.to_bytes(2, "little")


_first = operator.itemgetter(0)


def _ordered(items: Any, key: Callable[[Any], Any] | None, path: Path, out: bytearray) -> list[Any]:
    try:
        return sorted(items, key=key)
    except Exception as exc:  # incomparable keys, or keys the sort key does not know
        raise _encode_fail(f"keys cannot be put in order: {exc!r}", path, out) from exc


_CROWDED = (
    f"more than {MAX_SHARED_HASH} keys share one hash value: refused, since inserting them "
    "takes quadratic time (crafted input)"
)


def _hash_count(key: Node, count: int) -> HashCount | None:
    """A counter of key hashes where a crafted input could crowd one (a collection of at most
    MAX_SHARED_HASH keys cannot)."""
    return HashCount() if count > MAX_SHARED_HASH and hashes_may_crowd(key) else None


# ---------------------------------------------------------------------------------------------
# Drivers


def decode_buffer(
    node: Node,
    buf: Any,
    offset: int,
    root: str,
    trace: Trace | None = None,
    max_zero_width: int = MAX_ZERO_WIDTH_ELEMENTS,
) -> tuple[Any, int]:
    """Decodes one value from ``buf`` at ``offset``; returns it and where it ends."""
    st = DecodeState(offset, trace, max_zero_width)
    steps = decode_steps(node, (root,), st)
    pos = offset
    try:
        want = steps.send(None)  # type: ignore[arg-type]
        while True:
            chunk = bytes(buf[pos:pos + want])
            pos += len(chunk)
            want = steps.send(chunk)
    except StopIteration as done:
        return done.value, st.offset
    except RecursionError:
        raise DecodeError("nesting too deep to decode", root, st.offset) from None


def encode_checked(node: Node, value: Any, root: str) -> bytes:
    out = bytearray()
    try:
        encode_value(node, value, (root,), out)
    except RecursionError:
        raise EncodeError("nesting too deep to encode (a cycle?)", root, len(out)) from None
    return bytes(out)


# ---------------------------------------------------------------------------------------------
# The handler of each node type, looked up by the node's exact class: a node type missing here
# is an internal error (UnknownNodeError), never a default.

DECODERS: dict[type[Node], Callable[[Any, Path, DecodeState], Decoder]] = {
    IntNode: _decode_int,
    FloatNode: _decode_float,
    BoolNode: _decode_bool,
    UnitNode: _decode_unit,
    StrNode: _decode_str,
    UrlNode: _decode_url,
    BytesNode: _decode_bytes,
    TimeNode: _decode_time,
    IPNode: _decode_ip,
    SeqNode: _decode_seq,
    SetNode: _decode_set,
    MapNode: _decode_map,
    OptionNode: _decode_option,
    TupleNode: _decode_tuple,
    StructNode: _decode_struct,
    UnionNode: _decode_union,
    FrameNode: _decode_frame,
    EnumNode: _decode_enum,
    CustomNode: _decode_custom,
    ConvertNode: _decode_convert,
}

_Encoder = Callable[[Any, Any, Path, int, bytearray, _Push], None]

ENCODERS: dict[type[Node], _Encoder] = {
    IntNode: _encode_int,
    FloatNode: _encode_float,
    BoolNode: _encode_bool,
    UnitNode: _encode_unit,
    StrNode: _encode_str,
    UrlNode: _encode_url,
    BytesNode: _encode_bytes,
    TimeNode: _encode_time,
    IPNode: _encode_ip,
    SeqNode: _encode_seq,
    SetNode: _encode_set,
    MapNode: _encode_map,
    OptionNode: _encode_option,
    TupleNode: _encode_tuple,
    StructNode: _encode_struct,
    UnionNode: _encode_union,
    FrameNode: _encode_frame_task,
    EnumNode: _encode_enum,
    CustomNode: _encode_custom,
    ConvertNode: _encode_convert,
}

# What encode_value's tasks hold: a node, or a struct's fields left to write.
_TASK_ENCODERS: dict[type[Any], _Encoder] = {**ENCODERS, _Resume: _encode_resume}

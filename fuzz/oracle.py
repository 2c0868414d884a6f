"""What must hold for any input: the oracle each target asks.

Decoding any bytes gives a value or ``DecodeError``: nothing else, whatever the bytes. The
generated fast path (``jetwire.decode``) and the reference interpreter agree on the value, or
on the error's reason, path and offset. A value that decodes encodes again, ``byte_size`` says
how long, and decoding that gives the value back. Breaking any of these raises ``Finding``.
"""

from __future__ import annotations

import dataclasses
import math
import struct
import traceback
from typing import Any

import jetwire as jw
from jetwire.compiler import interpret
from jetwire.compiler.plan import Node
from jetwire.errors import byte_count


class Finding(Exception):
    """A broken rule. ``kind`` is stable across cases of the same bug (what findings are
    grouped by); ``detail`` says what happened in this case."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


def where(exc: BaseException) -> str:
    """The innermost frame of jetwire (or generated code) an exception came from: what tells
    one bug from another when the message differs between cases."""
    frames = traceback.extract_tb(exc.__traceback__)
    for frame in reversed(frames):
        name = frame.filename.replace("\\", "/")
        if "/jetwire/" in name or name.startswith("<jetwire"):
            return f"{name.rsplit('/jetwire/', 1)[-1]}:{frame.lineno}"
    for frame in reversed(frames):  # none: the harness's own line (a wait_for that timed out, say), not asyncio's
        name = frame.filename.replace("\\", "/")
        if "/fuzz/" in name:
            return f"fuzz/{name.rsplit('/fuzz/', 1)[-1]}:{frame.lineno}"
    return frames[-1].filename.rsplit("/", 1)[-1] if frames else "?"


def unexpected(what: str, exc: BaseException) -> Finding:
    return Finding(f"{what} raised {type(exc).__name__} at {where(exc)}", f"{type(exc).__name__}: {exc}"[:500])


def same(a: Any, b: Any, nan_bits: bool = True) -> bool:
    """Equality that holds for NaNs of the same bits (of any bits unless ``nan_bits``), compared
    field by field. It walks an explicit stack: decoded values may be nested deeper than
    Python's recursion limit."""
    todo = [(a, b)]
    while todo:
        x, y = todo.pop()
        if type(x) is not type(y):
            return False
        if isinstance(x, float):
            if math.isnan(x) and math.isnan(y) and not nan_bits:
                continue
            if not (struct.pack("<d", x) == struct.pack("<d", y) or (x == y and not math.isnan(x))):
                return False
        elif isinstance(x, (list, tuple)) or x.__class__.__name__ == "deque":
            if len(x) != len(y):
                return False
            todo.extend(zip(x, y))
        elif isinstance(x, dict):  # written in key order, read in received order: compare by key
            if len(x) != len(y) or any(k not in y for k in x):
                return False
            todo.extend((v, y[k]) for k, v in x.items())
        elif isinstance(x, (set, frozenset)):  # members with NaNs are equal only to themselves
            if len(x) != len(y) or not all(any(same(m, n, nan_bits) for n in y) for m in x):
                return False
        elif isinstance(x, jw.Some):
            todo.append((x.value, y.value))
        elif isinstance(x, jw.Frame):
            todo.extend([(x.tag, y.tag), (x.msg, y.msg)])
        elif dataclasses.is_dataclass(x):
            todo.extend((getattr(x, f.name), getattr(y, f.name)) for f in dataclasses.fields(x) if f.compare)
        elif not x == y:
            return False
    return True


def show(value: Any) -> str:
    try:
        text = repr(value)
    except RecursionError:
        return f"<a {type(value).__name__} too deep to show>"
    return text if len(text) <= 300 else text[:300] + "..."


Outcome = tuple[Any, ...]  # ("value", v) or ("error", reason, path, offset)


def error_outcome(exc: jw.WireError) -> Outcome:
    return ("error", exc.reason, exc.path, exc.offset)


def same_outcome(a: Outcome, b: Outcome) -> bool:
    if a[0] != b[0]:
        return False
    return same(a[1], b[1]) if a[0] == "value" else a == b


def show_outcome(outcome: Outcome) -> str:
    if outcome[0] == "value":
        return f"value {show(outcome[1])}"
    return f"DecodeError {outcome[2]}: {outcome[1]} (at byte {outcome[3]})"


def fast_decode(codec: jw.Codec[Any], data: bytes) -> Outcome:
    try:
        return ("value", codec.decode(data))
    except jw.DecodeError as exc:
        return error_outcome(exc)
    except Exception as exc:
        raise unexpected("decode", exc) from None


def fast_decode_prefix(codec: jw.Codec[Any], data: bytes, offset: int) -> Outcome:
    try:
        return ("value", codec.decode_prefix(data, offset))
    except jw.DecodeError as exc:
        return error_outcome(exc)
    except Exception as exc:
        raise unexpected("decode_prefix", exc) from None


def slow_decode(codec: jw.Codec[Any], data: bytes, offset: int = 0, whole: bool = True) -> Outcome:
    node = codec.node
    try:
        value, end = interpret.decode_buffer(node, data, offset, node.label, None, codec.max_zero_width_elements)
    except jw.DecodeError as exc:
        return error_outcome(exc)
    except Exception as exc:
        raise unexpected("the interpreter's decode", exc) from None
    if not whole:
        return ("value", (value, end))
    if end != len(data):
        left = len(data) - end
        return ("error", f"{byte_count(left)} left over after a complete {node.label}", node.label, end)
    return ("value", value)


def check_bytes(codec: jw.Codec[Any], data: bytes) -> Outcome:
    """Everything that must hold for ``data`` read as ``codec``'s type; returns the outcome."""
    fast = fast_decode(codec, data)
    slow = slow_decode(codec, data)
    if not same_outcome(fast, slow):
        raise Finding(
            f"decode: fast path and interpreter disagree ({fast[0]} vs {slow[0]})",
            f"fast path: {show_outcome(fast)}; interpreter: {show_outcome(slow)}",
        )
    fast_prefix = fast_decode_prefix(codec, data, 0)
    slow_prefix = slow_decode(codec, data, 0, whole=False)
    if not same_outcome(fast_prefix, slow_prefix):
        raise Finding(
            f"decode_prefix: fast path and interpreter disagree ({fast_prefix[0]} vs {slow_prefix[0]})",
            f"fast path: {show_outcome(fast_prefix)}; interpreter: {show_outcome(slow_prefix)}",
        )
    try:
        codec.explain(data)
    except Exception as exc:
        raise unexpected("explain", exc) from None
    if fast[0] == "value":
        check_value(codec, fast[1], decoded=True)
    return fast


def check_value(codec: jw.Codec[Any], value: Any, decoded: bool = False) -> bytes:
    """A valid value (made, or decoded from some bytes): both encoders give the same bytes,
    ``byte_size`` their length, and decoding them gives the value back."""
    node: Node = codec.node
    try:
        encoded = codec.encode(value)
    except Exception as exc:
        what = "encoding a decoded value" if decoded else "encoding a valid value"
        raise unexpected(what, exc) from None
    try:
        reference = interpret.encode_checked(node, value, node.label)
    except Exception as exc:
        raise unexpected("the interpreter's encode", exc) from None
    if encoded != reference:
        raise Finding("encode: fast path and interpreter disagree",
                      f"{show(value)}: fast {encoded.hex()}, interpreter {reference.hex()}")
    try:
        size = codec.byte_size(value)
    except Exception as exc:
        raise unexpected("byte_size", exc) from None
    if size != len(encoded):
        raise Finding("byte_size is not the encoded length", f"{show(value)}: byte_size {size}, encoded {len(encoded)}")
    again = fast_decode(codec, encoded)
    if again[0] != "value" or not same(again[1], value):
        raise Finding("decode(encode(v)) is not v", f"{show(value)} -> {encoded.hex()} -> {show_outcome(again)}")
    return encoded

"""What a frame's header is (r[9p2000l.frame.header]): ``size[4] type[1] tag[2]``, little-endian.

The frame reader, the interpreter, the stream readers and the 9P session each need these
facts; they live here once, in the lowest layer that uses them, so that a reader and a decoder
can never disagree on where a header ends or on what a short size is called.
"""

from __future__ import annotations

import struct

HEADER = struct.Struct("<IBH")  # size (the whole frame, itself included), type, tag
HEADER_SIZE = HEADER.size  # 7: the smallest frame, a message with no fields
SIZE_FIELD = 4  # the bytes of ``size``, which a reader needs before it knows anything else


def parse_header(header: bytes | bytearray | memoryview, offset: int = 0) -> tuple[int, int, int]:
    """``(size, type, tag)`` from the ``HEADER_SIZE`` bytes at ``offset``."""
    size, kind, tag = HEADER.unpack_from(header, offset)
    return size, kind, tag


def size_below_minimum(size: int) -> str:
    """Why a frame whose ``size`` field says ``size`` (below ``HEADER_SIZE``) is refused."""
    return f"frame size {size} is below the {HEADER_SIZE}-byte minimum (size[4] type[1] tag[2])"

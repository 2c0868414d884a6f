"""Corpus-free mutators: every input starts from a valid encoding made on the spot.

Each mutator changes a ``bytearray`` in place, drawing only from the case's ``random.Random``,
so a case number replays the same bytes.
"""

from __future__ import annotations

import random
from collections.abc import Callable

# Values that sit on the edges length and count fields are checked against.
LENGTHS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFE, 0xFFFF,
           0x10000, 0x1FFFFFF, 0x2000000, 0x2000001, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF]
BYTES = [0x00, 0x01, 0x02, 0x7F, 0x80, 0xFE, 0xFF]


def flip_bit(data: bytearray, rng: random.Random, other: bytes) -> None:
    if data:
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)


def set_byte(data: bytearray, rng: random.Random, other: bytes) -> None:
    if data:
        data[rng.randrange(len(data))] = rng.choice(BYTES) if rng.random() < 0.5 else rng.getrandbits(8)


def insert_bytes(data: bytearray, rng: random.Random, other: bytes) -> None:
    at = rng.randint(0, len(data))
    data[at:at] = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 4)))


def delete_bytes(data: bytearray, rng: random.Random, other: bytes) -> None:
    if data:
        at = rng.randrange(len(data))
        del data[at:at + rng.randint(1, 4)]


def truncate(data: bytearray, rng: random.Random, other: bytes) -> None:
    del data[rng.randint(0, len(data)):]


def inflate_length(data: bytearray, rng: random.Random, other: bytes) -> None:
    """Overwrites 1, 2 or 4 bytes with an edge length: a count, a string length or a frame size."""
    width = rng.choice([1, 2, 2, 4, 4])
    if len(data) < width:
        return
    at = rng.randint(0, len(data) - width)
    value = rng.choice(LENGTHS) & ((1 << (8 * width)) - 1)
    if rng.random() < 0.3:  # near the truth: one more or one fewer than what is there
        value = (int.from_bytes(data[at:at + width], "little") + rng.choice([-1, 1])) % (1 << (8 * width))
    data[at:at + width] = value.to_bytes(width, "little")


def duplicate_range(data: bytearray, rng: random.Random, other: bytes) -> None:
    if data:
        start = rng.randrange(len(data))
        end = rng.randint(start + 1, min(len(data), start + 16))
        at = rng.randint(0, len(data))
        data[at:at] = data[start:end]


def splice(data: bytearray, rng: random.Random, other: bytes) -> None:
    """Puts a piece of another valid encoding of the same type in place of a piece of this one."""
    if not other:
        return
    start = rng.randrange(len(other))
    piece = other[start:rng.randint(start + 1, len(other))]
    at = rng.randint(0, len(data))
    data[at:rng.randint(at, len(data))] = piece


def append_bytes(data: bytearray, rng: random.Random, other: bytes) -> None:
    data.extend(bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 3))))


MUTATORS: list[Callable[[bytearray, random.Random, bytes], None]] = [
    flip_bit, set_byte, insert_bytes, delete_bytes, truncate, inflate_length, inflate_length,
    duplicate_range, splice, append_bytes,
]


def mutate(data: bytes, rng: random.Random, other: bytes = b"", rounds: int = 0) -> bytes:
    """``data`` changed by 1 to 4 mutations (or ``rounds``), ``other`` a valid encoding to splice from."""
    out = bytearray(data)
    for _ in range(rounds or rng.randint(1, 4)):
        rng.choice(MUTATORS)(out, rng, other)
    return bytes(out)


def chunk_sizes(rng: random.Random) -> list[int]:
    """The sizes of the pieces a stream is cut into, used in turn: reads that split headers,
    fields and frames anywhere."""
    return [rng.choice([1, 1, 2, 3, 5, 7, 16, 64, 4096]) for _ in range(rng.randint(1, 8))]


def pieces(data: bytes, sizes: list[int] | None) -> list[bytes]:
    """``data`` whole (``sizes`` None) or cut into pieces of ``sizes``, taken in turn."""
    if sizes is None:
        return [data]
    out = []
    pos = turn = 0
    while pos < len(data):
        size = sizes[turn % len(sizes)]
        out.append(data[pos:pos + size])
        pos += size
        turn += 1
    return out

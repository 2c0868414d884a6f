"""Hand-written codecs for the benchmark payloads: the ceiling jetwire is measured against.

Written from ``shared/spec/wireformat.md`` and ``shared/spec/9p2000L.md`` alone, as fast as plain
Python gets: precompiled ``struct.Struct`` objects (bound ``pack``/``unpack_from`` methods),
``unpack_from`` at offsets, ``b"".join`` (or ``+`` for two parts), one ``pack`` for every run of
fixed-width fields. Decoders return the same dataclass instances jetwire returns; they build
them with ``object.__new__`` and attribute stores, which is what the dataclass ``__init__`` does
minus one Python call (the benchmark classes have no ``__post_init__``).

No corners cut that a correct codec could not cut:

* encoders: every integer goes through ``pack``, which range-checks it (a string or list over
  65,535 fails in the ``H`` of its length); strings are strict UTF-8; data over 32 MiB is refused;
  map keys are written in key order (str order is UTF-8 byte order).
* decoders: the frame's size must equal the buffer and its type must match; option tags must be
  0 or 1; data over 32 MiB is refused; strings are strict UTF-8; duplicate map keys are refused;
  every byte must be used. Bounds: ``unpack_from`` and indexing raise past the end; a string
  slice running past the end is cut short by Python, but then the offset is beyond the buffer
  and the next read or the final ``off == len`` check fails, so no short input is accepted.
  ``tests`` in ``run.py`` (the verification step) feed every decoder truncated, extended and
  corrupted input before anything is timed.

Input buffers: ``bytes`` is the fast path; anything else (``bytearray``, ``memoryview``) is
copied to ``bytes`` once, except for the data of Rread/Twrite, which is copied exactly once
from any buffer.
"""

from __future__ import annotations

import struct
import sys
from array import array
from typing import Any

from .messages import (
    RGETATTR,
    RREAD,
    TVERSION,
    TWALK,
    TWRITE,
    AppMsg,
    Item,
    Qid,
    RgetattrFrame,
    RreadFrame,
    StrBatch,
    TversionFrame,
    TwalkFrame,
    TwriteFrame,
    U32Batch,
)

MAX_DATA = 32 * 1024 * 1024

_new = object.__new__
_StructError = struct.error


class HandDecodeError(ValueError):
    """The input is not a valid encoding of the expected message."""


class HandEncodeError(ValueError):
    """The value cannot be encoded."""


_H = struct.Struct("<H")
_I = struct.Struct("<I")
_pack_H = _H.pack
_pack_I = _I.pack
_unpack_H = _H.unpack_from
_unpack_I = _I.unpack_from


def _as_bytes(data: Any) -> bytes:
    return data if data.__class__ is bytes else bytes(data)


# --- Tversion: size[4] type[1] tag[2] msize[4] version[s] -------------------------------------

_TVERSION = struct.Struct("<IBHIH")  # 13 bytes: header, msize, the version's length
_pack_tversion = _TVERSION.pack
_unpack_tversion = _TVERSION.unpack_from


def encode_tversion(msg: TversionFrame) -> bytes:
    try:
        version = msg.version.encode()
        n = len(version)
        return _pack_tversion(13 + n, TVERSION, msg.tag, msg.msize, n) + version
    except _StructError as exc:
        raise HandEncodeError(f"Tversion: {exc}") from None


def decode_tversion(data: bytes) -> TversionFrame:
    if data.__class__ is not bytes:
        data = bytes(data)
    try:
        size, typ, tag, msize, n = _unpack_tversion(data, 0)
    except _StructError as exc:
        raise HandDecodeError(f"Tversion: {exc}") from None
    if size != len(data) or typ != TVERSION or 13 + n != size:
        raise HandDecodeError(f"Tversion: size {size}, type {typ}, string {n}, {len(data)} bytes")
    msg = _new(TversionFrame)
    msg.size = size
    msg.type = typ
    msg.tag = tag
    msg.msize = msize
    msg.version = data[13:].decode()
    return msg


# --- Twalk: size[4] type[1] tag[2] fid[4] newfid[4] nwname[2] nwname*(wname[s]) ----------------

_TWALK = struct.Struct("<IBHIIH")  # 17 bytes
_pack_twalk = _TWALK.pack
_unpack_twalk = _TWALK.unpack_from


def encode_twalk(msg: TwalkFrame) -> bytes:
    try:
        names = msg.wnames
        parts = [b""]
        append = parts.append
        size = 17
        for name in names:
            raw = name.encode()
            part = _pack_H(len(raw)) + raw  # faster than two parts for short names
            append(part)
            size += len(part)
        parts[0] = _pack_twalk(size, TWALK, msg.tag, msg.fid, msg.newfid, len(names))
        return b"".join(parts)
    except _StructError as exc:
        raise HandEncodeError(f"Twalk: {exc}") from None


def decode_twalk(data: bytes) -> TwalkFrame:
    if data.__class__ is not bytes:
        data = bytes(data)
    try:
        size, typ, tag, fid, newfid, count = _unpack_twalk(data, 0)
        if size != len(data) or typ != TWALK:
            raise HandDecodeError(f"Twalk: size {size}, type {typ}, {len(data)} bytes")
        names = []
        append = names.append
        off = 17
        for _ in range(count):
            start = off + 2
            off = start + (data[off] | data[off + 1] << 8)
            append(data[start:off].decode())
        if off != size:
            raise HandDecodeError(f"Twalk: names end at {off}, frame at {size}")
    except (_StructError, IndexError) as exc:
        raise HandDecodeError(f"Twalk: {exc}") from None
    msg = _new(TwalkFrame)
    msg.size = size
    msg.type = typ
    msg.tag = tag
    msg.fid = fid
    msg.newfid = newfid
    msg.wnames = names
    return msg


# --- Rgetattr: fixed 160-byte frame, one pack / one unpack ------------------------------------

_RGETATTR = struct.Struct("<IBHQ" "BIQ" "III" "QQQQQ" "QQQQQQQQ" "QQ")
assert _RGETATTR.size == 160
_pack_rgetattr = _RGETATTR.pack
_unpack_rgetattr = _RGETATTR.unpack


def encode_rgetattr(m: RgetattrFrame) -> bytes:
    q = m.qid
    try:
        return _pack_rgetattr(
            160, RGETATTR, m.tag, m.valid, q.type, q.version, q.path, m.mode, m.uid, m.gid,
            m.nlink, m.rdev, m.file_size, m.blksize, m.blocks,
            m.atime_sec, m.atime_nsec, m.mtime_sec, m.mtime_nsec,
            m.ctime_sec, m.ctime_nsec, m.btime_sec, m.btime_nsec,
            m.gen, m.data_version,
        )
    except _StructError as exc:
        raise HandEncodeError(f"Rgetattr: {exc}") from None


def decode_rgetattr(data: bytes) -> RgetattrFrame:
    try:
        (size, typ, tag, valid, qtype, qversion, qpath, mode, uid, gid,
         nlink, rdev, file_size, blksize, blocks,
         atime_sec, atime_nsec, mtime_sec, mtime_nsec,
         ctime_sec, ctime_nsec, btime_sec, btime_nsec,
         gen, data_version) = _unpack_rgetattr(data)  # unpack: the buffer must be exactly 160 bytes
    except _StructError as exc:
        raise HandDecodeError(f"Rgetattr: {exc}") from None
    if size != 160 or typ != RGETATTR:
        raise HandDecodeError(f"Rgetattr: size {size}, type {typ}")
    qid = _new(Qid)
    qid.type = qtype
    qid.version = qversion
    qid.path = qpath
    m = _new(RgetattrFrame)
    m.size = size
    m.type = typ
    m.tag = tag
    m.valid = valid
    m.qid = qid
    m.mode = mode
    m.uid = uid
    m.gid = gid
    m.nlink = nlink
    m.rdev = rdev
    m.file_size = file_size
    m.blksize = blksize
    m.blocks = blocks
    m.atime_sec = atime_sec
    m.atime_nsec = atime_nsec
    m.mtime_sec = mtime_sec
    m.mtime_nsec = mtime_nsec
    m.ctime_sec = ctime_sec
    m.ctime_nsec = ctime_nsec
    m.btime_sec = btime_sec
    m.btime_nsec = btime_nsec
    m.gen = gen
    m.data_version = data_version
    return m


# --- Rread: size[4] type[1] tag[2] count[4] data[count] ---------------------------------------

_RREAD = struct.Struct("<IBHI")  # 11 bytes
_pack_rread = _RREAD.pack
_unpack_rread = _RREAD.unpack_from


def _data_view(data: Any) -> Any:
    """A value for a ``data[count]`` field whose ``len`` is its byte count."""
    return memoryview(data).cast("B")


def encode_rread(msg: RreadFrame) -> bytes:
    payload = msg.data
    if payload.__class__ is not bytes:
        payload = _data_view(payload)
    n = len(payload)
    if n > MAX_DATA:
        raise HandEncodeError(f"Rread: {n} bytes of data, at most {MAX_DATA}")
    try:
        return _pack_rread(11 + n, RREAD, msg.tag, n) + payload
    except _StructError as exc:
        raise HandEncodeError(f"Rread: {exc}") from None


def decode_rread(data: bytes) -> RreadFrame:
    try:
        size, typ, tag, n = _unpack_rread(data, 0)
    except _StructError as exc:
        raise HandDecodeError(f"Rread: {exc}") from None
    if size != len(data) or typ != RREAD or n > MAX_DATA or 11 + n != size:
        raise HandDecodeError(f"Rread: size {size}, type {typ}, count {n}, {len(data)} bytes")
    msg = _new(RreadFrame)
    msg.size = size
    msg.type = typ
    msg.tag = tag
    msg.data = data[11:] if data.__class__ is bytes else bytes(memoryview(data)[11:])  # the one copy
    return msg


# --- Twrite: size[4] type[1] tag[2] fid[4] offset[8] count[4] data[count] ---------------------

_TWRITE = struct.Struct("<IBHIQI")  # 23 bytes
_pack_twrite = _TWRITE.pack
_unpack_twrite = _TWRITE.unpack_from


def encode_twrite(msg: TwriteFrame) -> bytes:
    payload = msg.data
    if payload.__class__ is not bytes:
        payload = _data_view(payload)
    n = len(payload)
    if n > MAX_DATA:
        raise HandEncodeError(f"Twrite: {n} bytes of data, at most {MAX_DATA}")
    try:
        return _pack_twrite(23 + n, TWRITE, msg.tag, msg.fid, msg.offset, n) + payload
    except _StructError as exc:
        raise HandEncodeError(f"Twrite: {exc}") from None


def decode_twrite(data: bytes) -> TwriteFrame:
    try:
        size, typ, tag, fid, offset, n = _unpack_twrite(data, 0)
    except _StructError as exc:
        raise HandDecodeError(f"Twrite: {exc}") from None
    if size != len(data) or typ != TWRITE or n > MAX_DATA or 23 + n != size:
        raise HandDecodeError(f"Twrite: size {size}, type {typ}, count {n}, {len(data)} bytes")
    msg = _new(TwriteFrame)
    msg.size = size
    msg.type = typ
    msg.tag = tag
    msg.fid = fid
    msg.offset = offset
    msg.data = data[23:] if data.__class__ is bytes else bytes(memoryview(data)[23:])  # the one copy
    return msg


# --- AppMsg: id u32, name str, note Optional[str], items list[Item], tags dict[str, u32] -------

_IH = struct.Struct("<IH")  # id, name's length; also a tag's value and the next key's length
_BH = struct.Struct("<BH")  # option tag 0 + item count, or option tag 1 + the note's length
_HQH = struct.Struct("<HQH")  # Item: a, b, label's length
_HH = struct.Struct("<HH")  # tag count + first key's length
_pack_IH = _IH.pack
_pack_BH = _BH.pack
_pack_HQH = _HQH.pack
_pack_HH = _HH.pack
_unpack_IH = _IH.unpack_from
_unpack_HQH = _HQH.unpack_from


def encode_app(m: AppMsg) -> bytes:
    try:
        name = m.name.encode()
        parts = [_pack_IH(m.id, len(name)), name]
        append = parts.append
        items = m.items
        note = m.note
        if note is None:
            append(_pack_BH(0, len(items)))
        else:
            raw = note.encode()
            append(_pack_BH(1, len(raw)))
            append(raw)
            append(_pack_H(len(items)))
        for item in items:
            label = item.label.encode()
            append(_pack_HQH(item.a, item.b, len(label)))
            append(label)
        tags = m.tags
        if tags:
            # count + first key length, then key, value + next key length, ..., last value
            keys = sorted(tags)
            raw = keys[0].encode()
            append(_pack_HH(len(tags), len(raw)))
            append(raw)
            value = tags[keys[0]]
            for key in keys[1:]:
                raw = key.encode()
                append(_pack_IH(value, len(raw)))
                append(raw)
                value = tags[key]
            append(_pack_I(value))
        else:
            append(b"\x00\x00")
        return b"".join(parts)
    except _StructError as exc:
        raise HandEncodeError(f"AppMsg: {exc}") from None


def decode_app(data: bytes) -> AppMsg:
    if data.__class__ is not bytes:
        data = bytes(data)
    try:
        ident, n = _unpack_IH(data, 0)
        off = 6 + n
        name = data[6:off].decode()
        present = data[off]
        if present == 0:
            note = None
            off += 1
        elif present == 1:
            start = off + 3
            off = start + (data[off + 1] | data[off + 2] << 8)
            note = data[start:off].decode()
        else:
            raise HandDecodeError(f"AppMsg.note: option tag {present}")
        count = data[off] | data[off + 1] << 8
        off += 2
        items = []
        append = items.append
        for _ in range(count):
            a, b, n = _unpack_HQH(data, off)
            start = off + 12
            off = start + n
            item = _new(Item)
            item.a = a
            item.b = b
            item.label = data[start:off].decode()
            append(item)
        count = data[off] | data[off + 1] << 8
        off += 2
        tags = {}
        for _ in range(count):
            start = off + 2
            off = start + (data[off] | data[off + 1] << 8)
            key = data[start:off].decode()
            (tags[key],) = _unpack_I(data, off)
            off += 4
        if len(tags) != count:
            raise HandDecodeError("AppMsg.tags: duplicate key")
        if off != len(data):
            raise HandDecodeError(f"AppMsg: ends at {off} of {len(data)} bytes")
    except (_StructError, IndexError) as exc:
        raise HandDecodeError(f"AppMsg: {exc}") from None
    m = _new(AppMsg)
    m.id = ident
    m.name = name
    m.note = note
    m.items = items
    m.tags = tags
    return m


# --- scaling messages: U32Batch {seq u32, values list[u32]}, StrBatch {seq u32, names list[str]} -

_NATIVE_U32 = sys.byteorder == "little" and array("I").itemsize == 4


def encode_u32_batch(m: U32Batch) -> bytes:
    values = m.values
    n = len(values)
    try:
        if _NATIVE_U32:
            return _pack_IH(m.seq, n) + array("I", values).tobytes()  # array range-checks each value
        return _pack_IH(m.seq, n) + struct.pack(f"<{n}I", *values)
    except (_StructError, OverflowError) as exc:
        raise HandEncodeError(f"U32Batch: {exc}") from None


def decode_u32_batch(data: bytes) -> U32Batch:
    try:
        seq, n = _unpack_IH(data, 0)
    except _StructError as exc:
        raise HandDecodeError(f"U32Batch: {exc}") from None
    end = 6 + 4 * n
    if end != len(data):
        raise HandDecodeError(f"U32Batch: {n} values need {end} bytes, got {len(data)}")
    if _NATIVE_U32:
        values = memoryview(data)[6:].cast("I").tolist()
    else:
        values = list(struct.unpack_from(f"<{n}I", data, 6))
    m = _new(U32Batch)
    m.seq = seq
    m.values = values
    return m


def encode_str_batch(m: StrBatch) -> bytes:
    try:
        names = m.names
        parts = [_pack_IH(m.seq, len(names))]
        append = parts.append
        for name in names:
            raw = name.encode()
            append(_pack_H(len(raw)) + raw)
        return b"".join(parts)
    except _StructError as exc:
        raise HandEncodeError(f"StrBatch: {exc}") from None


def decode_str_batch(data: bytes) -> StrBatch:
    if data.__class__ is not bytes:
        data = bytes(data)
    try:
        seq, count = _unpack_IH(data, 0)
        names = []
        append = names.append
        off = 6
        for _ in range(count):
            start = off + 2
            off = start + (data[off] | data[off + 1] << 8)
            append(data[start:off].decode())
        if off != len(data):
            raise HandDecodeError(f"StrBatch: ends at {off} of {len(data)} bytes")
    except (_StructError, IndexError) as exc:
        raise HandDecodeError(f"StrBatch: {exc}") from None
    m = _new(StrBatch)
    m.seq = seq
    m.names = names
    return m

"""Hand-written codecs for the benchmark payloads: the ceiling jetwire is measured against.

Written from ``shared/spec/wireformat.md`` and ``shared/spec/9p2000L.md`` alone (not from
jetwire's generated code), as fast as plain Python gets: precompiled ``struct.Struct`` objects
(bound ``pack``/``unpack_from`` methods), ``unpack_from`` at offsets, ``b"".join`` (or ``+`` for
two parts), one ``pack`` for every run of fixed-width fields, the frame header included
(Rgetattr is one ``pack``/one ``unpack``). It takes and returns the same value objects as
jetwire: ``Tframe``/``Rframe`` (``.tag``, ``.msg``) holding ``jetwire.p9`` messages, and the
``AppMsg`` dataclasses; it builds them with ``object.__new__`` and attribute stores, which is
what ``__init__`` does minus one Python call (the classes have no ``__post_init__``).

A 9P peer receives any reply (or request), so decoding a frame dispatches on its type byte
(``decode_rframe``: one dict lookup and one call), and encoding one on its message's class, as
jetwire's ``Rframe.decode``/``frame.encode()`` do; the tables hold the five message types the
benchmark uses (any other type is refused).

No corners cut that a correct codec could not cut:

* encoders: every integer goes through ``pack``, which range-checks it (a string or list over
  65,535 fails in the ``H`` of its length); 9P names are ``utf-8``/``surrogateescape`` (any
  Linux name, as ``os.fsencode``; a lone surrogate outside the escape range is refused), tried
  as strict UTF-8 first (faster, and the same bytes whenever it succeeds; likewise when
  decoding), AppMsg strings strict UTF-8; data over 32 MiB is refused; map keys are written in
  key order (str order is UTF-8 byte order); the frame's size is computed as it goes.
* decoders: the frame's size must equal the buffer and its type must be a known message of that
  direction; data over 32 MiB is refused; names are decoded (``surrogateescape``, so every byte
  string is a name), AppMsg strings strict UTF-8; option tags must be 0 or 1; duplicate map keys
  are refused; every byte must be used. Bounds: ``unpack_from`` and indexing raise past the end;
  a string slice running past the end is cut short by Python, but then the offset is beyond the
  buffer and the next read or the final ``off == size`` check fails, so no short input is
  accepted. The verification step (``cases.verify``) feeds every decoder truncated, extended and
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

from jetwire.p9 import Qid, Rframe, Rgetattr, Rread, Tframe, Tversion, Twalk, Twrite

from .messages import AppMsg, Item, StrBatch, U32Batch

MAX_DATA = 32 * 1024 * 1024

# 9P2000.L type numbers (r[9p2000l.types]).
TVERSION = 100
TWALK = 110
TWRITE = 118
RGETATTR = 25
RREAD = 117

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


def _data_view(data: Any) -> Any:
    """A value for a ``data[count]`` field whose ``len`` is its byte count."""
    return memoryview(data).cast("B")


# --- frames: dispatch on the message's class (encode) or the type byte (decode) ---------------

def encode_tframe(frame: Tframe) -> bytes:
    msg = frame.msg
    try:
        return _TENC[msg.__class__](msg, frame.tag)
    except KeyError:
        raise HandEncodeError(f"Tframe: {type(msg).__name__} is not a request this codec knows") from None
    except _StructError as exc:
        raise HandEncodeError(f"{type(msg).__name__}: {exc}") from None


def encode_rframe(frame: Rframe) -> bytes:
    msg = frame.msg
    try:
        return _RENC[msg.__class__](msg, frame.tag)
    except KeyError:
        raise HandEncodeError(f"Rframe: {type(msg).__name__} is not a reply this codec knows") from None
    except _StructError as exc:
        raise HandEncodeError(f"{type(msg).__name__}: {exc}") from None


def decode_tframe(data: bytes) -> Tframe:
    try:
        return _TDEC[data[4]](data)  # type: ignore[no-any-return]
    except (KeyError, IndexError, _StructError) as exc:
        raise HandDecodeError(f"Tframe: {exc!r}") from None


def decode_rframe(data: bytes) -> Rframe:
    try:
        return _RDEC[data[4]](data)  # type: ignore[no-any-return]
    except (KeyError, IndexError, _StructError) as exc:
        raise HandDecodeError(f"Rframe: {exc!r}") from None


# --- Tversion: size[4] type[1] tag[2] msize[4] version[s] -------------------------------------

_TVERSION = struct.Struct("<IBHIH")  # 13 bytes: header, msize, the version's length
_pack_tversion = _TVERSION.pack
_unpack_tversion = _TVERSION.unpack_from


def _enc_tversion(msg: Tversion, tag: int) -> bytes:
    version = msg.version
    try:
        version = version.encode()  # strict UTF-8 first: faster, and the same bytes when it succeeds
    except UnicodeEncodeError:
        version = version.encode("utf-8", "surrogateescape")
    n = len(version)
    return _pack_tversion(13 + n, TVERSION, tag, msg.msize, n) + version


def _dec_tversion(data: bytes) -> Tframe:
    if data.__class__ is not bytes:
        data = bytes(data)
    size, _, tag, msize, n = _unpack_tversion(data, 0)
    if size != len(data) or 13 + n != size:
        raise HandDecodeError(f"Tversion: size {size}, string {n}, {len(data)} bytes")
    raw = data[13:]
    msg = _new(Tversion)
    msg.msize = msize
    try:
        msg.version = raw.decode()  # strict first: faster, and the same str when it succeeds
    except UnicodeDecodeError:
        msg.version = raw.decode("utf-8", "surrogateescape")
    frame = _new(Tframe)
    frame.tag = tag
    frame.msg = msg
    return frame


# --- Twalk: size[4] type[1] tag[2] fid[4] newfid[4] nwname[2] nwname*(wname[s]) ----------------

_TWALK = struct.Struct("<IBHIIH")  # 17 bytes
_pack_twalk = _TWALK.pack
_unpack_twalk = _TWALK.unpack_from


def _enc_twalk(msg: Twalk, tag: int) -> bytes:
    names = msg.wnames
    parts = [b""]
    append = parts.append
    size = 17
    for name in names:
        try:
            raw = name.encode()  # strict UTF-8 first: faster, and the same bytes when it succeeds
        except UnicodeEncodeError:
            raw = name.encode("utf-8", "surrogateescape")
        n = len(raw)
        append(_pack_H(n))
        append(raw)
        size += 2 + n
    parts[0] = _pack_twalk(size, TWALK, tag, msg.fid, msg.newfid, len(names))
    return b"".join(parts)


def _dec_twalk(data: bytes) -> Tframe:
    if data.__class__ is not bytes:
        data = bytes(data)
    size, _, tag, fid, newfid, count = _unpack_twalk(data, 0)
    if size != len(data):
        raise HandDecodeError(f"Twalk: size {size}, {len(data)} bytes")
    names = []
    append = names.append
    off = 17
    for _ in range(count):
        start = off + 2
        off = start + (data[off] | data[off + 1] << 8)
        raw = data[start:off]
        try:
            append(raw.decode())  # strict first: faster, and the same str when it succeeds
        except UnicodeDecodeError:
            append(raw.decode("utf-8", "surrogateescape"))
    if off != size:
        raise HandDecodeError(f"Twalk: names end at {off}, frame at {size}")
    msg = _new(Twalk)
    msg.fid = fid
    msg.newfid = newfid
    msg.wnames = names
    frame = _new(Tframe)
    frame.tag = tag
    frame.msg = msg
    return frame


# --- Rgetattr: fixed 160-byte frame, one pack / one unpack ------------------------------------

_RGETATTR = struct.Struct("<IBHQ" "BIQ" "III" "QQQQQ" "QQQQQQQQ" "QQ")
assert _RGETATTR.size == 160
_pack_rgetattr = _RGETATTR.pack
_unpack_rgetattr = _RGETATTR.unpack


def _enc_rgetattr(m: Rgetattr, tag: int) -> bytes:
    q = m.qid
    return _pack_rgetattr(
        160, RGETATTR, tag, m.valid, q.type, q.version, q.path, m.mode, m.uid, m.gid,
        m.nlink, m.rdev, m.size, m.blksize, m.blocks,
        m.atime_sec, m.atime_nsec, m.mtime_sec, m.mtime_nsec,
        m.ctime_sec, m.ctime_nsec, m.btime_sec, m.btime_nsec,
        m.gen, m.data_version,
    )


def _dec_rgetattr(data: bytes) -> Rframe:
    (size, _, tag, valid, qtype, qversion, qpath, mode, uid, gid,
     nlink, rdev, file_size, blksize, blocks,
     atime_sec, atime_nsec, mtime_sec, mtime_nsec,
     ctime_sec, ctime_nsec, btime_sec, btime_nsec,
     gen, data_version) = _unpack_rgetattr(data)  # unpack: the buffer must be exactly 160 bytes
    if size != 160:
        raise HandDecodeError(f"Rgetattr: size {size}")
    qid = _new(Qid)
    qid.type = qtype
    qid.version = qversion
    qid.path = qpath
    m = _new(Rgetattr)
    m.valid = valid
    m.qid = qid
    m.mode = mode
    m.uid = uid
    m.gid = gid
    m.nlink = nlink
    m.rdev = rdev
    m.size = file_size
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
    frame = _new(Rframe)
    frame.tag = tag
    frame.msg = m
    return frame


# --- Rread: size[4] type[1] tag[2] count[4] data[count] ---------------------------------------

_RREAD = struct.Struct("<IBHI")  # 11 bytes
_pack_rread = _RREAD.pack
_unpack_rread = _RREAD.unpack_from


def _enc_rread(msg: Rread, tag: int) -> bytes:
    payload = msg.data
    if payload.__class__ is not bytes:
        payload = _data_view(payload)
    n = len(payload)
    if n > MAX_DATA:
        raise HandEncodeError(f"Rread: {n} bytes of data, at most {MAX_DATA}")
    return _pack_rread(11 + n, RREAD, tag, n) + payload


def _dec_rread(data: bytes) -> Rframe:
    size, _, tag, n = _unpack_rread(data, 0)
    if size != len(data) or n > MAX_DATA or 11 + n != size:
        raise HandDecodeError(f"Rread: size {size}, count {n}, {len(data)} bytes")
    msg = _new(Rread)
    msg.data = data[11:] if data.__class__ is bytes else bytes(memoryview(data)[11:])  # the one copy
    frame = _new(Rframe)
    frame.tag = tag
    frame.msg = msg
    return frame


# --- Twrite: size[4] type[1] tag[2] fid[4] offset[8] count[4] data[count] ---------------------

_TWRITE = struct.Struct("<IBHIQI")  # 23 bytes
_pack_twrite = _TWRITE.pack
_unpack_twrite = _TWRITE.unpack_from


def _enc_twrite(msg: Twrite, tag: int) -> bytes:
    payload = msg.data
    if payload.__class__ is not bytes:
        payload = _data_view(payload)
    n = len(payload)
    if n > MAX_DATA:
        raise HandEncodeError(f"Twrite: {n} bytes of data, at most {MAX_DATA}")
    return _pack_twrite(23 + n, TWRITE, tag, msg.fid, msg.offset, n) + payload


def _dec_twrite(data: bytes) -> Tframe:
    size, _, tag, fid, offset, n = _unpack_twrite(data, 0)
    if size != len(data) or n > MAX_DATA or 23 + n != size:
        raise HandDecodeError(f"Twrite: size {size}, count {n}, {len(data)} bytes")
    msg = _new(Twrite)
    msg.fid = fid
    msg.offset = offset
    msg.data = data[23:] if data.__class__ is bytes else bytes(memoryview(data)[23:])  # the one copy
    frame = _new(Tframe)
    frame.tag = tag
    frame.msg = msg
    return frame


_TENC = {Tversion: _enc_tversion, Twalk: _enc_twalk, Twrite: _enc_twrite}
_RENC = {Rgetattr: _enc_rgetattr, Rread: _enc_rread}
_TDEC = {TVERSION: _dec_tversion, TWALK: _dec_twalk, TWRITE: _dec_twrite}
_RDEC = {RGETATTR: _dec_rgetattr, RREAD: _dec_rread}


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

"""Every payload with every implementation: what is timed, and the checks run before timing."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

from jetwire import Frame
from jetwire.p9 import Qid, Rframe, Rgetattr, Rread, Tframe, Tversion, Twalk, Twrite

from . import handwritten as hand
from . import messages as msg

PAYLOADS = ("Tversion", "Twalk", "Rgetattr", "Rread", "Rread64K", "Twrite", "AppMsg")

HAND = "hand-written struct"
JETWIRE = "jetwire"
CONSTRUCT = "construct"
CONSTRUCT_COMPILED = "construct compiled"
MSGSPEC = "msgspec msgpack"
IMPLS = (HAND, JETWIRE, CONSTRUCT, CONSTRUCT_COMPILED, MSGSPEC)
OPS = ("encode", "decode")


@dataclasses.dataclass(frozen=True)
class Payload:
    name: str
    sample: Callable[[], Any]
    cls: Any  # what jetwire encodes and decodes: Tframe, Rframe or AppMsg
    hand_encode: Callable[[Any], bytes]
    hand_decode: Callable[[bytes], Any]
    description: str

    @property
    def frame(self) -> bool:
        return issubclass(self.cls, Frame)


SPECS = {
    "Tversion": Payload("Tversion", msg.sample_tversion, Tframe, hand.encode_tframe, hand.decode_tframe,
                        '"9P2000.L", msize 65536 (21 bytes)'),
    "Twalk": Payload("Twalk", msg.sample_twalk, Tframe, hand.encode_tframe, hand.decode_tframe,
                     "3 names (34 bytes)"),
    "Rgetattr": Payload("Rgetattr", msg.sample_rgetattr, Rframe, hand.encode_rframe, hand.decode_rframe,
                        "every field (160 bytes)"),
    "Rread": Payload("Rread", msg.sample_rread, Rframe, hand.encode_rframe, hand.decode_rframe,
                     "4 KiB of data (4,107 bytes)"),
    "Rread64K": Payload("Rread64K", msg.sample_rread64k, Rframe, hand.encode_rframe, hand.decode_rframe,
                        "64 KiB of data (65,547 bytes)"),
    "Twrite": Payload("Twrite", msg.sample_twrite, Tframe, hand.encode_tframe, hand.decode_tframe,
                      "64 KiB of data (65,559 bytes)"),
    "AppMsg": Payload("AppMsg", msg.sample_app, msg.AppMsg, hand.encode_app, hand.decode_app,
                      "100 Items, 10 tags, non-ASCII note (2,163 bytes)"),
}


@dataclasses.dataclass
class Bench:
    """One timed operation: ``fn(arg)``."""

    payload: str
    impl: str
    op: str
    fn: Callable[[Any], Any]
    arg: Any

    @property
    def name(self) -> str:
        return f"{self.payload} {self.op} {self.impl}"


def jetwire_functions(spec: Payload) -> tuple[Callable[[Any], bytes], Callable[[bytes], Any]]:
    """jetwire's own methods, as the user calls them (``frame.encode()``, ``Rframe.decode(data)``),
    looked up after first use so that they are the generated functions themselves."""
    spec.cls.decode(spec.sample().encode())  # compile on first use
    return spec.cls.encode, spec.cls.decode  # type: ignore[no-any-return]


@functools.cache
def benches(payload: str, impls: tuple[str, ...] = IMPLS) -> tuple[Bench, ...]:
    """The timed operations of one payload (built lazily: a pyperf worker builds only its own)."""
    spec = SPECS[payload]
    value = spec.sample()
    data = value.encode()
    out: list[Bench] = []
    for impl in impls:
        if impl == HAND:
            out += [Bench(payload, impl, "encode", spec.hand_encode, value),
                    Bench(payload, impl, "decode", spec.hand_decode, data)]
        elif impl == JETWIRE:
            encode, decode = jetwire_functions(spec)
            out += [Bench(payload, impl, "encode", encode, value), Bench(payload, impl, "decode", decode, data)]
        elif impl in (CONSTRUCT, CONSTRUCT_COMPILED):
            from . import construct_impl

            fmt = construct_impl.FORMATS[payload] if impl == CONSTRUCT else construct_impl.compiled(payload)
            out += [Bench(payload, impl, "encode", fmt.build, construct_impl.native(value)),
                    Bench(payload, impl, "decode", fmt.parse, data)]
        elif impl == MSGSPEC:
            import msgspec

            from . import msgspec_impl

            ms_value = msgspec_impl.convert(value, msgspec_impl.TYPES[payload])
            encoder = msgspec.msgpack.Encoder()
            decoder = msgspec.msgpack.Decoder(msgspec_impl.TYPES[payload])
            out += [Bench(payload, impl, "encode", encoder.encode, ms_value),
                    Bench(payload, impl, "decode", decoder.decode, encoder.encode(ms_value))]
        else:
            raise ValueError(f"unknown implementation {impl!r}")
    for bench in out:
        bench.fn(bench.arg)  # warm: first-use compilation is not timed
    return tuple(out)


# --- verification ----------------------------------------------------------------------------

class VerificationError(AssertionError):
    pass


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise VerificationError(what)


def _raises(fn: Callable[[Any], Any], arg: Any) -> bool:
    try:
        fn(arg)
    except ValueError:
        return True
    return False


def _rgetattr(u64: int, u32: int, u16: int, u8: int) -> Rframe:
    """An Rgetattr frame with every field at the given value for its width."""
    fields = {f.name: u64 for f in dataclasses.fields(Rgetattr)}
    fields.update(qid=Qid(type=u8, version=u32, path=u64), mode=u32, uid=u32, gid=u32)
    return Rframe(tag=u16, msg=Rgetattr(**fields))


def _edge_values(payload: str) -> list[Any]:
    """More values than the timed one: empty collections, absent options, empty strings, 9P
    names that are not UTF-8 (``fsstr``: bytes read with ``surrogateescape``)."""
    if payload == "Tversion":
        return [Tframe(tag=1, msg=Tversion(msize=8192, version="")),
                Tframe(tag=0, msg=Tversion(msize=2**32 - 1, version="9P2000.L\udcff"))]
    if payload == "Twalk":
        return [Tframe(tag=7, msg=Twalk(fid=0, newfid=0, wnames=[])),
                Tframe(tag=0, msg=Twalk(fid=4, newfid=5, wnames=["", "é" * 300, "\U0001f600"])),
                Tframe(tag=65535, msg=Twalk(fid=2**32 - 1, newfid=1, wnames=["caf\udce9", "\udcff\udcfe", "ok"]))]
    if payload == "Rgetattr":
        return [_rgetattr(0, 0, 0, 0), _rgetattr(2**64 - 1, 2**32 - 1, 2**16 - 1, 2**8 - 1)]
    if payload in ("Rread", "Rread64K"):
        return [Rframe(tag=1, msg=Rread(data=b"")), Rframe(tag=1, msg=Rread(data=b"hello"))]
    if payload == "Twrite":
        return [Tframe(tag=1, msg=Twrite(fid=2, offset=0, data=b"")),
                Tframe(tag=1, msg=Twrite(fid=2, offset=2**64 - 1, data=b"\x00"))]
    return [msg.AppMsg(0, "", None, [], {}),
            msg.AppMsg(2**32 - 1, "x" * 1000, "", [msg.Item(65535, 2**64 - 1, "")], {"": 0, "\U0001f600": 2**32 - 1})]


def plain(value: Any) -> Any:
    """A jetwire value as plain dicts and lists (for comparisons with msgspec's)."""
    if isinstance(value, Frame):
        return {"tag": value.tag, "msg": plain(value.msg)}
    if dataclasses.is_dataclass(value):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def _utf8(value: Any) -> bool:
    """Whether every string in ``value`` is valid UTF-8 (msgspec's strings must be)."""
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, dict):
        return all(_utf8(k) and _utf8(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_utf8(v) for v in value)
    return True


# Reference encodings from shared/spec/9p2000L.md (r[9p2000l.examples]).
KNOWN_ANSWERS = [
    (Tframe(tag=msg.NOTAG, msg=Tversion(msize=65536, version="9P2000.L")),
     "15000000 64 ffff 00000100 0800 39503230 30302e4c", hand.encode_tframe, hand.decode_tframe),
    (Tframe(tag=2, msg=Twalk(fid=0, newfid=1, wnames=["a", "b"])),
     "17000000 6e 0200 00000000 01000000 0200 0100 61 0100 62", hand.encode_tframe, hand.decode_tframe),
    (Rframe(tag=4, msg=Rread(data=b"hello")),
     "10000000 75 0400 05000000 68656c6c6f", hand.encode_rframe, hand.decode_rframe),
]


def _malformed(payload: str, data: bytes) -> list[tuple[str, bytes]]:
    """Inputs every decoder must refuse."""
    cuts = sorted({*range(min(len(data), 48)), *range(0, len(data), 97), *range(max(0, len(data) - 48), len(data))})
    bad = [(f"cut at {k}", data[:k]) for k in cuts]
    bad.append(("one byte extra", data + b"\x00"))
    if SPECS[payload].frame:
        size = int.from_bytes(data[:4], "little")
        bad.append(("type of the other direction", data[:4] + bytes([data[4] ^ 1]) + data[5:]))
        bad.append(("unknown type", data[:4] + b"\x00" + data[5:]))
        bad.append(("size + 1", (size + 1).to_bytes(4, "little") + data[4:]))
        bad.append(("size - 1", (size - 1).to_bytes(4, "little") + data[4:]))
        bad.append(("size - 1, shorter", (size - 1).to_bytes(4, "little") + data[4:-1]))
        bad.append(("size 0", b"\x00\x00\x00\x00" + data[4:]))
    if payload == "Tversion":
        bad.append(("string length + 1", data[:11] + b"\x09" + data[12:]))
    if payload == "Twalk":
        bad.append(("count + 1", data[:15] + b"\x04" + data[16:]))
        bad.append(("count - 1", data[:15] + b"\x02" + data[16:]))
        bad.append(("name length + 1", data[:17] + b"\x04" + data[18:]))
    if payload in ("Rread", "Rread64K", "Twrite"):
        at = 7 if payload != "Twrite" else 19
        count = int.from_bytes(data[at:at + 4], "little")
        bad.append(("count + 1", data[:at] + (count + 1).to_bytes(4, "little") + data[at + 4:]))
        bad.append(("count - 1", data[:at] + (count - 1).to_bytes(4, "little") + data[at + 4:]))
    if payload == "AppMsg":
        name_end = 6 + int.from_bytes(data[4:6], "little")
        bad.append(("option tag 2", data[:name_end] + b"\x02" + data[name_end + 1:]))
        bad.append(("bad UTF-8 in the note", data[:name_end + 3] + b"\xc3\x28" + data[name_end + 5:]))
        # the first two tag keys ("tag-0", "tag-1") made the same
        first = data.index(b"tag-0")
        second = data.index(b"tag-1")
        bad.append(("duplicate key", data[:second] + b"tag-0" + data[second + 5:]))
        _check(first < second, "sample tags in key order")
    return bad


def verify(payloads: tuple[str, ...] = PAYLOADS, log: Callable[[str], None] = print) -> None:
    """Asserts, before anything is timed: jetwire, the hand-written codec and construct (both
    modes) produce identical bytes; every implementation round-trips; the hand-written and
    jetwire decoders refuse the same malformed input; the spec's known answers."""
    import msgspec

    from . import construct_impl, msgspec_impl

    for value, hexbytes, encode, decode in KNOWN_ANSWERS:
        expected = bytes.fromhex(hexbytes.replace(" ", ""))
        what = type(value.msg).__name__
        _check(value.encode() == expected, f"jetwire: known answer {what}")
        _check(encode(value) == expected, f"hand-written: known answer {what}")
        _check(type(value).decode(expected) == value and decode(expected) == value, f"known answer decode {value}")

    for payload in payloads:
        spec = SPECS[payload]
        jw_encode, jw_decode = jetwire_functions(spec)
        formats = construct_impl.FORMATS[payload]
        compiled = construct_impl.compiled(payload)
        ms_type = msgspec_impl.TYPES[payload]
        skipped_msgspec = 0
        for value in [spec.sample(), *_edge_values(payload)]:
            what = f"{payload} {str(value)[:60]}"
            data = jw_encode(value)
            _check(value.encode() == data, f"{what}: value.encode() differs")
            if spec.frame:
                _check(int.from_bytes(data[:4], "little") == len(data) == value.byte_size(), f"{what}: size field")
            _check(spec.hand_encode(value) == data, f"{what}: hand-written bytes differ from jetwire's")
            native = construct_impl.native(value)
            _check(formats.build(native) == data, f"{what}: construct bytes differ from jetwire's")
            _check(compiled.build(native) == data, f"{what}: construct compiled bytes differ from jetwire's")
            _check(jw_decode(data) == value, f"{what}: jetwire does not round-trip")
            back = spec.hand_decode(data)
            _check(back == value, f"{what}: hand-written does not round-trip")
            _check(type(back) is type(value), f"{what}: hand-written decodes another class")
            if spec.frame:
                _check(type(back.msg) is type(value.msg), f"{what}: hand-written decodes another message")
            _check(spec.hand_decode(bytearray(data)) == value, f"{what}: hand-written bytearray")
            _check(spec.hand_decode(memoryview(data)) == value, f"{what}: hand-written memoryview")
            _check(jw_decode(memoryview(data)) == value, f"{what}: jetwire memoryview")
            _check(construct_impl.plain(formats.parse(data)) == native, f"{what}: construct does not round-trip")
            _check(construct_impl.plain(compiled.parse(data)) == native, f"{what}: construct compiled does not round-trip")
            if not _utf8(plain(value)):
                skipped_msgspec += 1  # msgspec's strings are strict UTF-8
                continue
            ms_value = msgspec_impl.convert(value, ms_type)
            ms_back = msgspec.msgpack.decode(msgspec.msgpack.encode(ms_value), type=ms_type)
            _check(ms_back == ms_value, f"{what}: msgspec does not round-trip")
            _check(msgspec_impl.plain(ms_back) == plain(value), f"{what}: msgspec value differs")
        data = jw_encode(spec.sample())
        malformed = _malformed(payload, data)
        for label, bad in malformed:
            _check(_raises(spec.hand_decode, bad), f"{payload}: hand-written accepts malformed input ({label})")
            _check(_raises(jw_decode, bad), f"{payload}: jetwire accepts malformed input ({label})")
        note = f" (msgspec: {skipped_msgspec} non-UTF-8 value(s) left out)" if skipped_msgspec else ""
        log(f"  {payload}: identical bytes (jetwire, hand-written, construct x2) for {1 + len(_edge_values(payload))} "
            f"values, round trips (all 5){note}, {len(malformed)} malformed inputs refused")
    _verify_encode_errors(log)


def _verify_encode_errors(log: Callable[[str], None]) -> None:
    """Values no encoder may accept: out-of-range integers, over-long strings and collections."""
    bad: list[tuple[str, Any, Callable[[Any], bytes]]] = []
    app = msg.sample_app()
    app.items[5].a = 65536
    bad.append(("u16 out of range", app, hand.encode_app))
    app = msg.sample_app()
    app.tags["neg"] = -1
    bad.append(("negative u32", app, hand.encode_app))
    app = msg.sample_app()
    app.name = "é" * 40000
    bad.append(("string over 65,535 bytes", app, hand.encode_app))
    app = msg.sample_app()
    app.note = "\udc80"
    bad.append(("lone surrogate", app, hand.encode_app))
    walk = msg.sample_twalk()
    walk.msg.wnames = ["a"] * 65536
    bad.append(("list over 65,535 elements", walk, hand.encode_tframe))
    walk = msg.sample_twalk()
    walk.msg.wnames = ["a", "\ud800"]
    bad.append(("9P name with a surrogate outside the escape range", walk, hand.encode_tframe))
    walk = msg.sample_twalk()
    walk.msg.wnames = ["é" * 40000]
    bad.append(("9P name over 65,535 bytes", walk, hand.encode_tframe))
    walk = msg.sample_twalk()
    walk.tag = 1 << 16
    bad.append(("tag out of range", walk, hand.encode_tframe))
    version = msg.sample_tversion()
    version.msg.msize = -1
    bad.append(("negative msize", version, hand.encode_tframe))
    attr = msg.sample_rgetattr()
    attr.msg.gen = 1 << 64
    bad.append(("u64 out of range", attr, hand.encode_rframe))
    attr = msg.sample_rgetattr()
    attr.msg.qid.type = 256
    bad.append(("qid type out of range", attr, hand.encode_rframe))
    write = msg.sample_twrite()
    write.msg.offset = 1 << 64
    bad.append(("offset out of range", write, hand.encode_tframe))
    wrong = Tframe(tag=1, msg=msg.sample_rread().msg)
    bad.append(("a reply in a request frame", wrong, hand.encode_tframe))
    for label, value, encode in bad:
        _check(_raises(encode, value), f"hand-written encodes a bad value ({label})")
        _check(_raises(lambda v: v.encode(), value), f"jetwire encodes a bad value ({label})")
    log(f"  encoders: {len(bad)} bad values refused by jetwire and the hand-written codec")

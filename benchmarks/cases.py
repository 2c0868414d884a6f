"""Every payload with every implementation: what is timed, and the checks run before timing."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

from . import handwritten as hand
from . import messages as msg

PAYLOADS = ("Tversion", "Twalk", "Rgetattr", "Rread", "Twrite", "AppMsg")

HAND = "hand-written struct"
JETWIRE = "jetwire"
JETWIRE_ENCODE_ONLY = "jetwire, encode() alone"
CONSTRUCT = "construct"
CONSTRUCT_COMPILED = "construct compiled"
MSGSPEC = "msgspec msgpack"
IMPLS = (HAND, JETWIRE, JETWIRE_ENCODE_ONLY, CONSTRUCT, CONSTRUCT_COMPILED, MSGSPEC)
OPS = ("encode", "decode")


@dataclasses.dataclass(frozen=True)
class Payload:
    name: str
    sample: Callable[[], Any]
    cls: type
    type_number: int | None  # None: not a 9P frame
    hand_encode: Callable[[Any], bytes]
    hand_decode: Callable[[bytes], Any]
    description: str


SPECS = {
    "Tversion": Payload("Tversion", msg.sample_tversion, msg.TversionFrame, msg.TVERSION,
                        hand.encode_tversion, hand.decode_tversion, '"9P2000.L", msize 65536 (21 bytes)'),
    "Twalk": Payload("Twalk", msg.sample_twalk, msg.TwalkFrame, msg.TWALK,
                     hand.encode_twalk, hand.decode_twalk, "3 names (34 bytes)"),
    "Rgetattr": Payload("Rgetattr", msg.sample_rgetattr, msg.RgetattrFrame, msg.RGETATTR,
                        hand.encode_rgetattr, hand.decode_rgetattr, "every field (160 bytes)"),
    "Rread": Payload("Rread", msg.sample_rread, msg.RreadFrame, msg.RREAD,
                     hand.encode_rread, hand.decode_rread, "4 KiB of data"),
    "Twrite": Payload("Twrite", msg.sample_twrite, msg.TwriteFrame, msg.TWRITE,
                      hand.encode_twrite, hand.decode_twrite, "64 KiB of data"),
    "AppMsg": Payload("AppMsg", msg.sample_app, msg.AppMsg, None, hand.encode_app, hand.decode_app,
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
    """The user code for jetwire: for frames, size from ``byte_size()`` then ``encode()``, and
    ``decode()`` then the size/type check; for AppMsg the methods themselves."""
    if spec.type_number is None:
        value = spec.sample()
        spec.cls.decode(value.encode())  # compile on first use, so the methods below are the generated ones
        return spec.cls.encode, spec.cls.decode  # type: ignore[attr-defined]
    return msg.frame_encoder(spec.cls), msg.frame_decoder(spec.cls, spec.type_number)


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
        elif impl == JETWIRE_ENCODE_ONLY:
            if spec.type_number is not None:
                spec.cls.decode(data)  # type: ignore[attr-defined]  # compile on first use
                out.append(Bench(payload, impl, "encode", spec.cls.encode, value))  # type: ignore[attr-defined]
        elif impl in (CONSTRUCT, CONSTRUCT_COMPILED):
            from . import construct_impl

            fmt = construct_impl.FORMATS[payload]
            if impl == CONSTRUCT_COMPILED:
                fmt = fmt.compile()
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


def _edge_values(payload: str) -> list[Any]:
    """More values than the timed one: empty collections, absent options, empty strings."""
    if payload == "Tversion":
        return [msg.TversionFrame(0, msg.TVERSION, 1, 8192, "")]
    if payload == "Twalk":
        return [msg.TwalkFrame(0, msg.TWALK, 7, 0, 0, []), msg.TwalkFrame(0, msg.TWALK, 0, 4, 5, ["", "é" * 300])]
    if payload == "Rgetattr":
        zero = dict.fromkeys((f.name for f in dataclasses.fields(msg.RgetattrFrame)), 0)
        zero.update(type=msg.RGETATTR, qid=msg.Qid(0, 0, 0))
        return [msg.RgetattrFrame(**zero)]
    if payload == "Rread":
        return [msg.RreadFrame(0, msg.RREAD, 1, b""), msg.RreadFrame(0, msg.RREAD, 1, b"hello")]
    if payload == "Twrite":
        return [msg.TwriteFrame(0, msg.TWRITE, 1, 2, 0, b"")]
    return [msg.AppMsg(0, "", None, [], {}),
            msg.AppMsg(2**32 - 1, "x" * 1000, "", [msg.Item(65535, 2**64 - 1, "")], {"": 0, "\U0001f600": 2**32 - 1})]


def _sized(value: Any) -> Any:
    if hasattr(value, "size"):
        value.size = value.byte_size()
    return value


# Reference encodings from shared/spec/9p2000L.md (r[9p2000l.examples]).
KNOWN_ANSWERS = [
    (msg.TversionFrame(21, msg.TVERSION, msg.NOTAG, 65536, "9P2000.L"),
     "15000000 64 ffff 00000100 0800 39503230 30302e4c", hand.encode_tversion, hand.decode_tversion),
    (msg.TwalkFrame(23, msg.TWALK, 2, 0, 1, ["a", "b"]),
     "17000000 6e 0200 00000000 01000000 0200 0100 61 0100 62", hand.encode_twalk, hand.decode_twalk),
    (msg.RreadFrame(16, msg.RREAD, 4, b"hello"),
     "10000000 75 0400 05000000 68656c6c6f", hand.encode_rread, hand.decode_rread),
]


def _malformed(payload: str, data: bytes) -> list[tuple[str, bytes]]:
    """Inputs every decoder must refuse."""
    cuts = sorted({*range(min(len(data), 48)), *range(0, len(data), 97), *range(max(0, len(data) - 48), len(data))})
    bad = [(f"cut at {k}", data[:k]) for k in cuts]
    bad.append(("one byte extra", data + b"\x00"))
    if SPECS[payload].type_number is not None:
        size = int.from_bytes(data[:4], "little")
        bad.append(("wrong type", data[:4] + bytes([data[4] ^ 1]) + data[5:]))
        bad.append(("size + 1", (size + 1).to_bytes(4, "little") + data[4:]))
        bad.append(("size - 1", (size - 1).to_bytes(4, "little") + data[4:]))
        bad.append(("size - 1, shorter", (size - 1).to_bytes(4, "little") + data[4:-1]))
    if payload == "Twalk":
        bad.append(("bad UTF-8", data[:19] + b"\xff" + data[20:]))  # first byte of "usr"
        bad.append(("count + 1", data[:15] + b"\x04" + data[16:]))
    if payload == "Rread":
        bad.append(("count + 1", data[:7] + (int.from_bytes(data[7:11], "little") + 1).to_bytes(4, "little") + data[11:]))
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
        jw_encode = msg.frame_encoder(type(value))
        jw_decode = msg.frame_decoder(type(value), value.type)
        _check(jw_encode(value) == expected, f"jetwire: known answer {type(value).__name__}")
        _check(encode(value) == expected, f"hand-written: known answer {type(value).__name__}")
        _check(jw_decode(expected) == value and decode(expected) == value, f"known answer decode {value}")

    for payload in payloads:
        spec = SPECS[payload]
        jw_encode, jw_decode = jetwire_functions(spec)
        formats = construct_impl.FORMATS[payload]
        compiled = formats.compile()
        ms_type = msgspec_impl.TYPES[payload]
        for value in [spec.sample(), *(_sized(v) for v in _edge_values(payload))]:
            what = f"{payload} {str(value)[:60]}"
            data = jw_encode(value)
            _check(value.size == len(data) if spec.type_number else True, f"{what}: size field")
            _check(spec.hand_encode(value) == data, f"{what}: hand-written bytes differ from jetwire's")
            native = construct_impl.native(value)
            _check(formats.build(native) == data, f"{what}: construct bytes differ from jetwire's")
            _check(compiled.build(native) == data, f"{what}: construct compiled bytes differ from jetwire's")
            _check(jw_decode(data) == value, f"{what}: jetwire does not round-trip")
            _check(spec.hand_decode(data) == value, f"{what}: hand-written does not round-trip")
            _check(type(spec.hand_decode(data)) is type(value), f"{what}: hand-written decodes another class")
            _check(spec.hand_decode(bytearray(data)) == value, f"{what}: hand-written bytearray")
            _check(spec.hand_decode(memoryview(data)) == value, f"{what}: hand-written memoryview")
            _check(jw_decode(memoryview(data)) == value, f"{what}: jetwire memoryview")
            _check(construct_impl.plain(formats.parse(data)) == native, f"{what}: construct does not round-trip")
            _check(construct_impl.plain(compiled.parse(data)) == native, f"{what}: construct compiled does not round-trip")
            ms_value = msgspec_impl.convert(value, ms_type)
            ms_back = msgspec.msgpack.decode(msgspec.msgpack.encode(ms_value), type=ms_type)
            _check(ms_back == ms_value, f"{what}: msgspec does not round-trip")
            _check(msgspec_impl.plain(ms_back) == dataclasses.asdict(value), f"{what}: msgspec value differs")
        data = jw_encode(spec.sample())
        for label, bad in _malformed(payload, data):
            _check(_raises(spec.hand_decode, bad), f"{payload}: hand-written accepts malformed input ({label})")
            _check(_raises(jw_decode, bad), f"{payload}: jetwire accepts malformed input ({label})")
        log(f"  {payload}: identical bytes (jetwire, hand-written, construct x2), round trips (all 5), "
            f"{len(_malformed(payload, data))} malformed inputs refused")
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
    walk.wnames = ["a"] * 65536
    bad.append(("list over 65,535 elements", walk, hand.encode_twalk))
    walk = msg.sample_twalk()
    walk.tag = 1 << 16
    bad.append(("tag out of range", walk, hand.encode_twalk))
    attr = msg.sample_rgetattr()
    attr.gen = 1 << 64
    bad.append(("u64 out of range", attr, hand.encode_rgetattr))
    for label, value, encode in bad:
        _check(_raises(encode, value), f"hand-written encodes a bad value ({label})")
        _check(_raises(lambda v: v.encode(), value), f"jetwire encodes a bad value ({label})")
    log(f"  encoders: {len(bad)} bad values refused by jetwire and the hand-written codec")

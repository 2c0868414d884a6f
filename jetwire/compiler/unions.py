"""Unions and frames: a function per variant (per message type), tables from class or tag to them,
and the frame decoders compiled on first use."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .emit import Const, Expr, Pack, Sized, _Dec, _Enc, _Size, _Source
from .fastpath import (
    _Compiler,
    _dec_name,
    _dec_variant,
    _depth_check,
    _enc_variant,
    _entries,
    _head,
    _limit_param,
    _no_user_code,
)
from .framing import HEADER_SIZE
from .lazy import OnFirstUse
from .plan import (
    FrameNode,
    StructNode,
    UnionNode,
)


def _compile_union(comp: _Compiler, node: UnionNode, out: list[str]) -> None:
    src = comp.src
    enc_map, into_map, size_map, dec_map, view_map = {}, {}, {}, {}, {}
    owner = node.label
    for variant in node.variants:
        key = variant.py_type
        vnode = variant.node
        name = f"_v{variant.tag}"
        which = f"{owner}.{variant.name}"
        em = _Enc(src, 1, dynamic=False)
        em.fixed("B", variant.tag)
        _enc_variant(comp, vnode, em)
        body = em.finish_bytes()
        out.extend(_head(which, "enc", f"{name}enc(_v, _d)"))
        out.append(_depth_check(comp, 1))
        out.extend(em.lines)
        out.append(f"    return {body}")
        em = _Enc(src, 1, dynamic=True)
        em.fixed("B", variant.tag)
        _enc_variant(comp, vnode, em)
        em.flush()
        out.extend(_head(which, "enc_into", f"{name}into(_v, _ap, _d)"))
        out.append(_depth_check(comp, 1))
        out.extend(em.lines)
        for view in (False, True):
            dm = _Dec(src, 1, view)
            _dec_variant(comp, vnode, dm, "_r")
            out.extend(_head(which, _dec_name(dm), f"{name}{_dec_name(dm)}(_b, _o, _d{', _z' if comp.zw else ''})"))
            out.append(_depth_check(comp, 1))
            out.append("    _L = len(_b)")
            out.extend(dm.lines)
            out.append("    return _r, _o")
        sm = _Size(src, 1)
        if isinstance(vnode, StructNode):
            for f in vnode.wire_fields:
                assert f.node is not None
                comp.size(f.node, f"_v.{f.name}", sm, (vnode,))
        else:
            comp.size(vnode, "_v", sm, ())
        out.extend(_head(which, "size", f"{name}size(_v)"))
        out.append("    _n = 0")
        out.extend(sm.lines)
        out.append(f"    return _n + {sm.const + 1}")
        enc_map[key], into_map[key] = f"{name}enc", f"{name}into"
        size_map[key], dec_map[variant.tag] = f"{name}size", f"{name}dec"
        view_map[variant.tag] = f"{name}dec_view"

    tags = sorted(dec_map)
    dense = tags == list(range(len(tags)))
    out.append(f"_ENC = {_table(src, enc_map)}")
    out.append(f"_INTO = {_table(src, into_map)}")
    out.append(f"_SIZE = {_table(src, size_map)}")
    for table_name, names in (("_DEC", dec_map), ("_DECV", view_map)):
        if dense:  # a tuple: an index is cheaper than a hash
            out.append(f"{table_name} = ({''.join(names[t] + ', ' for t in tags)})")
        else:
            out.append(f"{table_name} = {_table(src, names)}")
    out.extend(_head(owner, "enc", "enc(_v, _d=0)"))
    out.append("    return _ENC[_v.__class__](_v, _d)")
    out.extend(_head(owner, "enc_into", "enc_into(_v, _ap, _d=0)"))
    out.append("    _INTO[_v.__class__](_v, _ap, _d)")
    out.extend(_head(owner, "size", "size(_v)"))
    out.append("    return _SIZE[_v.__class__](_v)")
    z_param, z_arg = (", _z=None", ", _z") if comp.zw else ("", "")
    out.extend(_head(owner, "dec", f"dec(_b, _o, _d=0{z_param})"))
    out.append(f"    return _DEC[_b[_o]](_b, _o + 1, _d{z_arg})")
    out.extend(_head(owner, "dec_view", f"dec_view(_b, _o, _d=0{z_param})"))
    out.append(f"    return _DECV[_b[_o]](_b, _o + 1, _d{z_arg})")
    out.extend(_head(owner, "encode", "encode(_v)"))
    out.append("    try:")
    out.append("        return _ENC[_v.__class__](_v, 0)")
    out.append("    except Exception:")
    out.append("        return _slow_encode(_v)")

    def dec_body() -> list[str]:
        return [f"        _r, _o = _DEC[_b[_o]](_b, _o + 1, 0{z_arg})"]

    _entries(out, dec_body, lambda: ["        return _SIZE[_v.__class__](_v)"], comp.zw, owner)


INLINE_FRAME_TYPES = 8
"""Up to this many message types, ``decode_frames`` has each type's decoding in its own loop
(one branch per type, tested in turn); a frame class with more (9P's) looks each frame's
decoder up by type, as ``dec`` does, and calls it."""


def _compile_frame(comp: _Compiler, node: FrameNode, out: list[str],
                   later: Callable[[str, list[str], str], Callable[[], Any]], batch: list[str]) -> None:
    """One encoder and three decoders per message type (at an offset, a whole buffer, a
    memoryview; the last two compiled on first use: ``later(label, lines, name)`` declares a
    group of the unit and gives the getter of ``name`` once it is compiled). A fixed-size message is one ``pack`` and
    one ``unpack_from``, header included; any other writes its body, then the header in front.
    Decoders dispatch on the type byte and check that the body ends exactly where ``size``
    says; anything else (short, left over, unknown type) goes to the interpreter to explain."""
    src = comp.src
    frame_cls = src.cls(node.cls)
    z_param, z_arg = (", _z=None", ", _z") if comp.zw else ("", "")
    enc_map, dec_map, view_map = {}, {}, {}
    views: list[str] = []  # decoders of memoryviews: compiled the first time one is decoded
    wholes: dict[int, list[str]] = {}  # decode() of each type: compiled when first decoded
    owner = node.label
    inline = not comp.zw and len(node.union.variants) <= INLINE_FRAME_TYPES
    branches: list[str] = []  # decode_frames's branch of each type, when inline
    for variant in node.union.variants:
        vnode = variant.node
        name = f"_f{variant.tag}"
        which = f"{owner}.{variant.name}"
        em = _Enc(src, 1, dynamic=False)
        # Only a size still to be counted holds the header back: a fixed size is in it already,
        # and a held-back header that nothing puts in front again would be lost.
        em.defer_first = vnode.fixed is None
        # struct refuses a size over 4 GiB and a tag outside 0..65535: the interpreter then says which
        em.fixed("I", HEADER_SIZE + vnode.fixed if vnode.fixed is not None else "_n")
        em.fixed("B", variant.tag)
        em.fixed("H", "_g")
        _enc_variant(comp, vnode, em)
        em.flush()
        if vnode.fixed is None:
            _frame_size(em)
        body = em.finish_bytes()
        out.extend(_head(which, "enc", f"{name}enc(_v, _g)", f"encodes a whole frame of {variant.name} with tag _g; "
                         "raises on anything unusual, and the caller falls back"))
        if "_d" in em.used:
            out.append("    _d = 0")
        out.extend(em.lines)
        out.append(f"    return {body}")
        for view in (False, True):
            dm = _Dec(src, 1, view)
            dm.fixed("I", 4, "_sz")
            dm.fixed("B", 1, "_ty")
            dm.fixed("H", 2, "_tg")
            _dec_variant(comp, vnode, dm, "_m")
            target = views if view else out
            if node.direct:
                made = [f"    _r = _new({frame_cls})", "    _r.tag = _tg", "    _r.msg = _m"]
            else:
                made = [f"    _r = {frame_cls}(_tg, _m)"]
            # at an offset (decode_prefix, streams): where the frame ends must be where size says
            target.extend(_head(which, _dec_name(dm), f"{name}{_dec_name(dm)}(_b, _o, _d=0{z_param})",
                                f"decodes a frame of {variant.name} from offset _o, giving (frame, end); "
                                "raises on anything unusual"))
            target.append("    _s = _o")
            if dm.uses("_L"):
                target.append("    _L = len(_b)")
            target.extend(dm.lines)
            target.append("    if _o - _s != _sz: raise _Bail")
            target.extend(made)
            target.append("    return _r, _o")
            if inline and not view:  # the same body at decode_frames's depth, in its branch of the type
                bm = _Dec(src, 4, view)
                bm.fixed("I", 4, "_sz")
                bm.fixed("B", 1, "_ty")
                bm.fixed("H", 2, "_tg")
                _dec_variant(comp, vnode, bm, "_m")
                branches.append(f"            {'elif' if branches else 'if'} _ty == {variant.tag}:")
                branches.extend(bm.lines)
            if not view:  # the whole buffer (decode): the same body, no offset to keep or return
                if vnode.fixed is not None:  # one Struct.unpack of the whole frame, as by hand
                    dm = _Dec(src, 1, view)
                    dm.whole_size = HEADER_SIZE + vnode.fixed
                    dm.fixed("I", 4, "_sz")
                    dm.fixed("B", 1, "_ty")
                    dm.fixed("H", 2, "_tg")
                    _dec_variant(comp, vnode, dm, "_m")
                whole = wholes[variant.tag] = _head(which, "decode", f"{name}whole(_b{z_arg})",
                                                    f"decodes a buffer that is one whole frame of {variant.name}; "
                                                    "raises on anything unusual")
                if not dm.read_whole:
                    whole.append("    _o = 0")
                at_end = _no_user_code(vnode)
                checked = dm.lines_checked_at_end() if at_end else dm.lines
                if dm.uses("_d"):
                    whole.append("    _d = 0")
                length = "len(_b)"
                if dm.uses("_L", checked_at_end=at_end):
                    whole.append("    _L = len(_b)")
                    length = "_L"
                whole.extend(checked)
                if dm.read_whole:  # unpack refused any other length: the size field is what is left
                    whole.append(f"    if _sz != {dm.whole_size}: raise _Bail")
                else:
                    whole.append(f"    if _o != _sz or _o != {length}: raise _Bail")
                whole.extend(made)
                whole.append("    return _r")
                whole.append(f"_FWHOLE[{variant.tag}] = {name}whole")
        enc_map[variant.py_type] = f"{name}enc"
        dec_map[variant.tag] = f"{name}dec"
        view_map[variant.tag] = f"{name}dec_view"

    views.append(f"_FDECV = {_table(src, view_map)}")

    # byte_size is rarely asked of a frame: the union's codec waits for it
    union_unit = OnFirstUse(lambda: src.compile_unit(node.union))

    def union_size(msg: Any) -> int:
        size: int = union_unit.get().size(msg)
        return size

    def whole_loader(kind: int) -> Callable[[Any], Any]:
        """Stands in ``_FWHOLE`` for the decoder of one message type until its first frame,
        which compiles it (and puts it in ``_FWHOLE`` in place of this)."""
        load = later(f"decode {node.union.by_tag[kind].name}", wholes[kind], f"_f{kind}whole")

        def load_whole(data: Any, *budget: Any) -> Any:
            return load()(data, *budget)
        return load_whole

    src.ns["_load_views"] = later("decode views", views, "_FDECV")
    src.ns["_WHOLE_LOADERS"] = {kind: whole_loader(kind) for kind in wholes}
    src.ns["_union_size"] = union_size
    union = "_union_size"
    out.append(f"_FENC = {_table(src, enc_map)}")
    out.append(f"_FDEC = {_table(src, dec_map)}")
    out.append("_FWHOLE = dict(_WHOLE_LOADERS)")  # an unknown type: KeyError, and decode explains it
    out.append("_FDECV = None")
    out.extend(_head(owner, "enc", "enc(_v, _d=0)"))
    out.append(f"    if _v.__class__ is not {frame_cls}: raise _Bail")
    out.append("    return _FENC[_v.msg.__class__](_v.msg, _v.tag)")
    out.extend(_head(owner, "enc_into", "enc_into(_v, _ap, _d=0)"))
    out.append("    _ap(enc(_v))")
    out.extend(_head(owner, "size", "size(_v)"))
    out.append(f"    return {HEADER_SIZE - 1} + {union}(_v.msg)")
    budget = ", 0, _z" if comp.zw else ""
    out.extend(_head(owner, "dec", f"dec(_b, _o, _d=0{z_param})"))
    out.append(f"    return _FDEC[_b[_o + 4]](_b, _o{budget})")
    out.extend(_head(owner, "dec_view", f"dec_view(_b, _o, _d=0{z_param})"))
    out.append(f"    return (_FDECV or _load_views())[_b[_o + 4]](_b, _o{budget})")
    out.extend(_head(owner, "encode", "encode(_v)"))
    out.append("    try:")
    out.append(f"        if _v.__class__ is {frame_cls}: return _FENC[(_m := _v.msg).__class__](_m, _v.tag)")
    out.append("    except Exception:")
    out.append("        pass")
    out.append("    return _slow_encode(_v)")
    _entries(out, None, lambda: [f"        return {HEADER_SIZE - 1} + {union}(_v.msg)"], comp.zw, owner)
    limit = ", _zl" if comp.zw else ""
    # a whole frame: its own decoder per type
    out.extend(_head(owner, "decode", f"decode(_data{_limit_param(comp.zw)})"))
    out.append(f"    if _data.__class__ is not bytes: return decode_view(_view(_data){limit})")
    out.append("    try:")
    out.append(f"        return _FWHOLE[_data[4]](_data{', [_zl]' if comp.zw else ''})")
    out.append("    except Exception:")
    out.append("        pass")
    out.append(f"    return _slow_decode(_data, 0, True{limit})")
    out.extend(_head(owner, "encode", "encode_frame(_g, _m)",
                     "the frame of message _m with tag _g, encoded without making the frame object first"))
    out.append("    try:")
    out.append("        return _FENC[_m.__class__](_m, _g)")
    out.append("    except Exception:")
    out.append("        pass")
    out.append(f"    return _slow_encode({frame_cls}(_g, _m))")
    _frame_methods(src, node, out, comp.zw, owner)
    made = ([f"                _r = _new({frame_cls})", "                _r.tag = _tg", "                _r.msg = _m"]
            if node.direct else [f"                _r = {frame_cls}(_tg, _m)"])
    _decode_frames(src, node, branches if inline else None, made, batch)


def _decode_frames(src: _Source, node: FrameNode, branches: list[str] | None, made: list[str],
                   out: list[str]) -> None:
    """``decode_frames``: every whole frame from offset ``_o`` to ``_end`` in one loop, as
    ``FrameReader.next_frames`` takes them (the frames appended to ``_frames``, or with
    ``_pairs`` their ``(tag, message)`` pairs, the frame objects never made; their sizes to
    ``_sizes`` unless it is None), up to the first that is not plain (a size below the header's
    or over ``_max``, a frame not all there, one its decoder refuses); the offset where it
    stopped. Each frame's decoding is in the loop itself (``branches``, one per type, ``made``
    the frame object's making), or a call of its type's decoder for a frame class of many
    types: either way no ``dec`` between."""
    size = src.unpacker("<I")
    out.extend(_head(node.label, "decode_frames", "decode_frames(_b, _o, _end, _max, _frames, _sizes, _pairs=False)",
                     "decodes the whole frames from _o to _end, appending them (or their (tag, message) pairs) "
                     "to _frames and their sizes to _sizes; gives the offset after the last"))
    out.append("    _d = 0")
    out.append("    _L = _end")
    out.append("    _s = _o")
    out.append("    try:")
    out.append(f"        while _L - _o >= {HEADER_SIZE}:")
    out.append("            _s = _o")
    out.append(f"            _sz, = {size}(_b, _o)")
    out.append(f"            if _sz < {HEADER_SIZE} or _sz > _max or _L - _o < _sz: break")
    if branches is None:
        out.append("            _r, _o = _FDEC[_b[_o + 4]](_b, _o)")
        out.append("            if _o - _s != _sz: raise _Bail")
        out.append("            _frames.append((_r.tag, _r.msg) if _pairs else _r)")
    else:
        out.append("            _ty = _b[_o + 4]")
        out.extend(branches)
        out.append("            else:")
        out.append("                break")
        out.append("            if _o - _s != _sz: raise _Bail")
        out.append("            if _pairs:")
        out.append("                _frames.append((_tg, _m))")
        out.append("            else:")
        out.extend(made)
        out.append("                _frames.append(_r)")
    out.append("            if _sizes is not None: _sizes.append(_sz)")
    out.append("    except Exception:  # anything unusual: the frame is left for next_frame to decode, or explain")
    out.append("        _o = _s")
    out.append("    return _o")


def _frame_methods(src: _Source, node: FrameNode, out: list[str], zw: bool, owner: str) -> None:
    """``encode`` and ``decode`` as the frame class's own methods: as few steps from
    ``frame.encode()`` / ``Tframe.decode(data)`` to the message's packing code as a hand-written
    ``FENC[msg.__class__](msg, tag)``. The encoder does not check the frame's class, as
    ``frame.encode()`` reaches it only from an instance of the class or of a subclass (which
    gets the bytes the interpreter would give it); only ``Tframe.encode(x)``, called on the
    class with some other ``x`` that has a ``msg`` and a ``tag``, is encoded rather than
    refused (the codec's ``encode``, behind ``Codec`` and ``jetwire.encode``, still refuses it).
    ``decode`` is a plain function on the class, not a staticmethod (Python looks those up in
    about twice the time); called on an instance, Python passes the instance first and the
    data second, which is what the second parameter is for. Its default is a marker of its own,
    not None, so that nothing else is taken for a second argument: ``Tframe.decode(data, None)``
    is refused as a call with two arguments would be."""
    budget = ", [_ZL]" if zw else ""
    src.ns["_decode_other"] = _decode_other(src, node.cls)
    src.ns["_NOT_ON_INSTANCE"] = _NOT_ON_INSTANCE
    out.extend(_head(owner, "encode", "method_encode(_v)",
                     "the frame class's encode method: the message's encoder, else the interpreter"))
    out.append("    try:")
    out.append("        return _FENC[(_m := _v.msg).__class__](_m, _v.tag)")
    out.append("    except Exception:")
    out.append("        pass")
    out.append("    return _slow_encode(_v)")
    out.extend(_head(owner, "decode", "method_decode(_data, _data_on_instance=_NOT_ON_INSTANCE)",
                     "the frame class's decode method: the type's whole-frame decoder, else the interpreter"))
    out.append("    if _data.__class__ is not bytes or _data_on_instance is not _NOT_ON_INSTANCE:")
    out.append("        return _decode_other(_data, _data_on_instance)")
    out.append("    try:")
    out.append(f"        return _FWHOLE[_data[4]](_data{budget})")
    out.append("    except Exception:")
    out.append("        pass")
    out.append("    return _slow_decode(_data, 0, True)")


class _NotOnInstance:
    def __repr__(self) -> str:
        return "<called on the class>"


_NOT_ON_INSTANCE = _NotOnInstance()


def _decode_other(src: _Source, frame_cls: type) -> Callable[[Any, Any], Any]:
    """What a frame's ``decode`` method does with anything but ``Tframe.decode(some_bytes)``:
    another buffer, or ``frame.decode(data)`` (on an instance)."""
    def decode_other(data: Any, data_on_instance: Any) -> Any:
        decode = src.ns["decode"]
        if data_on_instance is _NOT_ON_INSTANCE:
            return decode(data)
        if isinstance(data, frame_cls):  # the method called on an instance: Python passed it first
            return decode(data_on_instance)
        raise TypeError(f"{frame_cls.__qualname__}.decode() takes 1 positional argument but 2 were given")
    return decode_other


def _frame_size(em: _Enc) -> None:
    """Emits ``_n = ...``, the whole frame's size, where the encoder's pieces are known: the
    first piece (header and leading fixed fields) is evaluated after it, in the return."""
    if em.dynamic:  # join the rest (small: walk names, qids), then put the first piece before it
        first = em.deferred
        assert isinstance(first, Pack)  # the header, packed with what fixed fields follow it
        em.line('_p = b"".join(_out)')
        em.line(f"_n = {first.size} + len(_p)")
        em.dynamic = False
        em.pieces = [first, Expr("_p")]
        return
    known = 0
    lengths = []
    for i, piece in enumerate(em.pieces):
        if isinstance(piece, Pack):
            known += piece.size
        elif isinstance(piece, Const):
            known += len(piece.data)
        elif isinstance(piece, Sized):
            lengths.append(piece.length)
        else:
            name = em.bind(piece.text, "part")
            em.pieces[i] = Expr(name)
            lengths.append(f"len({name})")
    em.line(f"_n = {' + '.join([str(known), *lengths])}")


def _table(src: _Source, mapping: dict[Any, str]) -> str:
    """Source of a dict from classes (or tags) to the generated functions that handle them."""
    names = {k: src.cls(k) if isinstance(k, type) else k for k in mapping}
    return "{" + ", ".join(f"{names[k]}: {v}" for k, v in mapping.items()) + "}"

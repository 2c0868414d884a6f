"""Generated code names itself: a linecache name per class and group, the class's module, every
group listed; and ``benchmarks/generated-code.md`` shows what the code generates now."""

from __future__ import annotations

import linecache
import os
import pathlib
import subprocess
import sys
from typing import Annotated, Any

import jetwire as jw
from jetwire import Frame, Tagged, u8, u16, wireformat
from jetwire.compiler.plan import FrameNode, StructNode, UnionNode
from jetwire.compiler.state import ClassState

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_the_generated_code_page_shows_what_the_code_generates_now() -> None:
    """The page's excerpts, regenerated in a fresh process (so names do not depend on what this
    one compiled before), are the page's own."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "0"}
    done = subprocess.run([sys.executable, "-m", "benchmarks.generated_code", "--check"],
                          cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


@wireformat
class Item:
    id: u16
    name: str


def test_each_group_goes_by_its_class_and_group_name() -> None:
    unit = jw.Codec(Item).unit
    assert unit.groups == ("encode", "decode", "decode views", "size", "encode into")
    for group in unit.groups:
        filename = unit.group_filename(group)
        assert filename == f"<jetwire generated {__name__}.Item {group}>"
        assert "".join(linecache.getlines(filename)) == unit.group_source(group)
    assert unit.source == "".join(unit.group_source(group) for group in unit.groups)
    for name in ("enc", "encode", "dec", "decode", "decode_prefix", "dec_view", "size", "byte_size", "enc_into"):
        assert getattr(unit, name).__module__ == __name__, name


def test_a_frames_lazy_groups_are_listed_and_named() -> None:
    """A frame's per-type decoders, memoryview decoders and batch decoder (``decode_frames``) are
    compiled on first use, and listed (and compiled) by ``source`` like the rest."""

    @wireformat
    class Ping:
        n: u8

    @wireformat
    class Pong:
        text: str

    class Tframe(Frame[Annotated[Ping | Pong, Tagged({100: Ping, 101: Pong})]]):
        pass

    unit = jw.Codec(Tframe).unit
    assert unit.groups == ("codec", "decode views", "decode Ping", "decode Pong", "decode frames")
    qualname = Tframe.__qualname__
    assert unit.filename == f"<jetwire generated {__name__}.{qualname} codec>"
    assert unit.group_filename("decode Ping") == f"<jetwire generated {__name__}.{qualname} decode Ping>"
    source = unit.source
    assert "def _f100whole(" in source and "def _f101whole(" in source and "_FDECV = {" in source
    assert "def decode_frames(" in source
    assert Tframe.decode(Tframe(3, Ping(4)).encode()) == Tframe(3, Ping(4))
    assert unit.decode.__module__ == __name__


def _local_item(width: Any) -> Any:
    @wireformat
    class Local:
        x: width

    return Local


def test_two_classes_of_one_name_get_names_of_their_own() -> None:
    """Local classes may share a module and qualified name: the second unit of a name is
    numbered, counted in this process, so no two groups share a linecache entry."""
    first, second = _local_item(u8), _local_item(u16)
    a, b = jw.Codec(first).unit, jw.Codec(second).unit
    assert a.name == first.__qualname__ and b.name.startswith(first.__qualname__ + " (")
    assert a.group_filename("encode") != b.group_filename("encode")
    assert linecache.getlines(b.group_filename("encode"))[0].startswith("# Local.enc")


def test_a_class_keeps_one_state_object_and_plan_nodes_no_units() -> None:
    """What jetwire keeps on a class is one ``__jetwire__``; compiled units are the code
    generator's, not attributes of the (immutable) plan nodes."""

    @wireformat
    class Solo:
        a: u8

    class Sframe(Frame[Annotated[Solo, Tagged({7: Solo})]]):
        pass

    assert Solo(1).encode() == b"\x01" and Sframe(1, Solo(2)).encode() == bytes.fromhex("08000000 07 0100 02")
    for cls in (Solo, Sframe):
        own = {name for name in vars(cls) if name.startswith(("__jetwire", "__frame"))}
        assert own == {"__jetwire__"}, own
        assert isinstance(vars(cls)["__jetwire__"], ClassState)
    for slots in (StructNode.__slots__, UnionNode.__slots__, FrameNode.__slots__):
        assert "unit" not in slots
    unit = jw.Codec(Solo).unit
    assert vars(Solo)["__jetwire__"].units == {id(jw.Codec(Solo).node): unit}


def test_frame_methods_become_the_generated_functions() -> None:
    """Frame's methods are stubs like a decorated class's: the first call puts the generated
    function on the class, named and documented as the method."""

    @wireformat
    class Ask:
        n: u8

    class Aframe(Frame[Annotated[Ask, Tagged({9: Ask})]]):
        pass

    frame = Aframe(5, Ask(6))
    data = frame.encode()
    assert Aframe.decode(data) == frame
    unit = jw.Codec(Aframe).unit
    # the frame class's own entries, generated beside the codec's (decode a plain function)
    encode, decode = vars(Aframe)["encode"], vars(Aframe)["decode"]
    assert encode is unit.method_encode and decode is unit.method_decode
    assert encode.__qualname__ == f"{Aframe.__qualname__}.encode"
    assert decode.__doc__ == Frame.__dict__["decode"].__doc__
    assert vars(Aframe)["byte_size"] is Frame.__dict__["byte_size"]  # the stub, until used

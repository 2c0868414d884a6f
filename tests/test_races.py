"""First use from many threads at once: every lazily built shared object (a class's codec, an
enum's, a union's, a frame's, a ``Codec``'s, the groups compiled on first lookup) must be
published only once it is complete, so no thread ever sees a half-built one.

Each round declares fresh classes, so every round is a first use; a tiny switch interval makes
the threads interleave inside the compiler, where a half-published object would be seen."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from typing import Annotated, Any

import pytest

import jetwire
from jetwire import Frame, Tagged, u8, u16, u32, wireenum, wireformat

THREADS = 8
ROUNDS = 40


@pytest.fixture(autouse=True)
def _switch_often() -> Iterator[None]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def _all_at_once(work: Callable[[], Any]) -> list[Any]:
    """Runs ``work`` on THREADS threads released together; returns results, raising the first error."""
    barrier = threading.Barrier(THREADS)
    results: list[Any] = [None] * THREADS
    errors: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work()
        except BaseException as exc:  # handed to the test thread below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


def _make_struct() -> Any:
    @wireformat
    class Point:
        x: u16
        y: u32
        name: str

    return Point


def _make_enum() -> Any:
    @wireenum
    class Shape:
        @wireformat
        class Circle:
            r: u32

        @wireformat
        class Square:
            side: u16
            label: str

    return Shape


def test_struct_first_use_encode_and_decode() -> None:
    for _ in range(ROUNDS):
        Point = _make_struct()
        value = Point(1, 2, "p")
        assert _all_at_once(lambda: Point.decode(value.encode())) == [value] * THREADS


def test_struct_first_use_each_group_at_once() -> None:
    for _ in range(ROUNDS):
        Point = _make_struct()
        value = Point(1, 2, "p")
        data = b"\x01\x00\x02\x00\x00\x00\x01\x00p"

        def mixed(value: Any = value, data: bytes = data, Point: Any = Point) -> Any:
            return (value.encode(), Point.decode(data), Point.decode(memoryview(data)),
                    value.byte_size(), Point.decode_prefix(data, 0))

        assert _all_at_once(mixed) == [(data, value, value, 9, (value, 9))] * THREADS


def test_enum_first_use() -> None:
    for _ in range(ROUNDS):
        Shape = _make_enum()
        value = Shape.Square(3, "s")
        assert _all_at_once(lambda: Shape.decode(value.encode())) == [value] * THREADS


def test_enum_variant_first_use() -> None:
    for _ in range(ROUNDS):
        Shape = _make_enum()
        value = Shape.Circle(7)
        assert _all_at_once(lambda: Shape.Circle.decode(value.encode())) == [value] * THREADS


def test_union_first_use_through_module_functions() -> None:
    for _ in range(ROUNDS):
        @wireformat
        class A:
            a: u8

        @wireformat
        class B:
            b: str

        union = Annotated[A | B, Tagged([A, B])]
        value = B("x")
        assert _all_at_once(lambda: jetwire.decode(union, jetwire.encode(value, union))) == [value] * THREADS


def test_codec_first_use() -> None:
    for _ in range(ROUNDS):
        Point = _make_struct()
        codec = jetwire.Codec(dict[str, list[Point]])  # type: ignore[valid-type]
        value = {"a": [Point(1, 2, "p")]}
        assert _all_at_once(lambda: codec.decode(codec.encode(value))) == [value] * THREADS


def test_frame_first_use() -> None:
    for _ in range(ROUNDS):
        @wireformat
        class Ping:
            n: u32

        @wireformat
        class Pong:
            text: str

        Message = Annotated[Ping | Pong, Tagged({100: Ping, 101: Pong})]

        class Tframe(Frame[Message]):
            pass

        frames = [Tframe(1, Ping(5)), Tframe(2, Pong("x"))]

        def round_trip(Tframe: Any = Tframe, frames: list[Any] = frames) -> Any:
            views = [Tframe.decode_prefix(memoryview(f.encode()), 0)[0] for f in frames]
            return [Tframe.decode(f.encode()) for f in frames] + views

        assert _all_at_once(round_trip) == [frames + frames] * THREADS


def test_recursive_struct_first_use() -> None:
    def make_tree() -> Any:  # a function of its own: the name Tree is bound only to this round's class
        @wireformat
        class Tree:
            value: u8
            children: list[Tree]

        return Tree

    for _ in range(ROUNDS):
        Tree = make_tree()
        value = Tree(1, [Tree(2, []), Tree(3, [Tree(4, [])])])
        assert _all_at_once(lambda: Tree.decode(value.encode())) == [value] * THREADS

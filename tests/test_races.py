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


def _count_calls(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> dict[Any, int]:
    """Counts calls of ``owner.name`` by their first argument."""
    calls: dict[Any, int] = {}
    real = getattr(owner, name)

    def counted(first: Any, *args: Any, **kwargs: Any) -> Any:
        calls[first] = calls.get(first, 0) + 1
        return real(first, *args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return calls


def test_every_group_compiles_exactly_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Threads racing to first use wait for the one compile of each group (struct groups, a
    frame's per-type and memoryview decoders) rather than each compiling its own copy."""
    from jetwire.compiler import unit

    compiled: list[str] = []
    real = unit._exec_source

    def counted(src: Any, lines: list[str], name: str) -> tuple[str, str]:
        compiled.append(name)
        return real(src, lines, name)

    monkeypatch.setattr(unit, "_exec_source", counted)
    for _ in range(ROUNDS // 4):
        Point = _make_struct()
        value = Point(1, 2, "p")
        data = value.encode()

        class Tframe(Frame[Annotated[Point, Tagged({100: Point})]]):
            pass

        frame = Tframe(1, value).encode()

        def everything(Point: Any = Point, Tframe: Any = Tframe, frame: bytes = frame, data: bytes = data) -> Any:
            return (Point.decode(data), Point.decode(bytearray(data)), Point(3, 4, "q").byte_size(),
                    Tframe.decode(frame).msg, Tframe.decode(memoryview(frame)).msg)

        compiled.clear()
        assert _all_at_once(everything) == [(value, value, 9, value, value)] * THREADS
        assert compiled and len(compiled) == len(set(compiled)), compiled


def test_a_lazy_dataclass_method_is_written_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from jetwire.runtime import classes

    made = _count_calls(monkeypatch, classes, "_init_fn")
    for _ in range(ROUNDS):
        Point = _make_struct()
        made.clear()
        assert _all_at_once(lambda: Point(1, 2, "p")) == [Point(1, 2, "p")] * THREADS
        assert made == {Point: 1}


def test_on_first_use_makes_once_retries_after_a_failure_and_refuses_needing_itself() -> None:
    from jetwire.compiler.lazy import OnFirstUse

    attempts: list[int] = []

    def flaky() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise ValueError("not yet")
        return "made"

    lazy = OnFirstUse(flaky)
    with pytest.raises(ValueError, match="not yet"):
        lazy.get()
    assert _all_at_once(lazy.get) == ["made"] * THREADS
    assert len(attempts) == 2
    selfish: OnFirstUse[Any] = OnFirstUse(lambda: selfish.get())
    with pytest.raises(RuntimeError, match="needs itself"):
        selfish.get()

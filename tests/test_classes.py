"""@wireformat classes behave as @dataclass classes do, though their methods are written on
first use (jetwire/runtime/classes.py): each declaration here is made twice, once with
``dataclasses.dataclass`` and once with ``jetwire.wireformat``, and every observable is compared."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import itertools
import pickle
import re
import typing
import weakref
from collections.abc import Callable
from dataclasses import KW_ONLY, InitVar, field
from typing import Any, ClassVar, Optional

import pytest

from jetwire import SchemaError, u8, u16, u32, wireenum, wireformat
from jetwire.runtime import classes

Decorator = Callable[..., Any]


def plain(**options: Any) -> Decorator:
    return lambda cls: dataclasses.dataclass(cls, **options)


def wire(**options: Any) -> Decorator:
    return wireformat(**options) if options else wireformat


def declare_basic(deco: Decorator) -> tuple[type, list[tuple[tuple[Any, ...], dict[str, Any]]]]:
    @deco
    class Point:
        x: u32
        y: u16 = 7
        label: str = field(default="", repr=False)
        tags: list[u8] = field(default_factory=list, compare=False)

    return Point, [((1,), {}), ((1, 2), {}), ((1,), {"label": "a", "tags": [1]}), ((), {"x": 3, "y": 4})]


def declare_kw_only(deco: Decorator) -> tuple[type, list[tuple[tuple[Any, ...], dict[str, Any]]]]:
    @deco
    class Order:
        id: u32
        _: KW_ONLY
        qty: u16 = 1
        note: str

    return Order, [((5,), {"note": "n"}), ((5,), {"note": "n", "qty": 9})]


def declare_initvar(deco: Decorator) -> tuple[type, list[tuple[tuple[Any, ...], dict[str, Any]]]]:
    @deco
    class Scaled:
        value: u32
        factor: InitVar[int] = 2
        seen: ClassVar[int] = 0
        derived: u32 = field(default=0, init=False)

        def __post_init__(self, factor: int) -> None:
            self.derived = self.value * factor

    return Scaled, [((3,), {}), ((3, 5), {}), ((), {"value": 1, "factor": 0})]


def declare_self_field(deco: Decorator) -> tuple[type, list[tuple[tuple[Any, ...], dict[str, Any]]]]:
    @deco
    class Odd:
        self: u8
        other: u8 = 0

    return Odd, [((1,), {}), ((1, 2), {})]


def declare_empty(deco: Decorator) -> tuple[type, list[tuple[tuple[Any, ...], dict[str, Any]]]]:
    @deco
    class Nothing:
        pass

    return Nothing, [((), {})]


def declare_init_false_factory(deco: Decorator) -> tuple[type, list[tuple[tuple[Any, ...], dict[str, Any]]]]:
    @deco
    class Counter:
        name: str
        hits: list[u32] = field(default_factory=lambda: [1, 2], init=False)
        limit: u32 = field(default=10, init=False)

    return Counter, [(("a",), {})]


def declare_hash_choices(deco: Decorator) -> tuple[type, list[tuple[tuple[Any, ...], dict[str, Any]]]]:
    @deco
    class Keyed:
        key: u32
        cache: u32 = field(default=0, hash=False)
        shard: u8 = field(default=0, compare=False, hash=True)

    return Keyed, [((1,), {}), ((1, 2, 3), {})]


def declare_documented(deco: Decorator) -> tuple[type, list[tuple[tuple[Any, ...], dict[str, Any]]]]:
    @deco
    class Documented:
        """A docstring of the user's own: kept as written."""

        a: u8

    return Documented, [((1,), {})]


DECLARATIONS = [declare_documented, declare_hash_choices, declare_basic, declare_kw_only, declare_initvar, declare_self_field, declare_empty,
                declare_init_false_factory]
OPTIONS: list[dict[str, Any]] = [
    {}, {"frozen": True}, {"slots": True}, {"frozen": True, "slots": True}, {"eq": False},
    {"repr": False}, {"init": False}, {"kw_only": True}, {"match_args": False}, {"order": True},
    {"unsafe_hash": True}, {"eq": False, "frozen": True},
    # new in 3.11: on 3.10 both refuse it, and with the same TypeError
    {"slots": True, "weakref_slot": True}, {"weakref_slot": True},
]
_serial = itertools.count()


def _outcome(fn: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return "ok", fn()
    except Exception as exc:  # the same exception, type and message, is the expected outcome
        return type(exc).__name__, str(exc)


def _pickled(obj: Any) -> Any:
    """The fields of ``obj`` sent through pickle. Pickle finds a class by module and qualified
    name, so the local class is put under a name of its own for the round trip."""
    cls = type(obj)
    name, old = f"_Pickled{next(_serial)}", cls.__qualname__
    globals()[name] = cls
    cls.__qualname__ = name
    try:
        back = pickle.loads(pickle.dumps(obj))
    finally:
        cls.__qualname__ = old
        del globals()[name]
    return type(back) is cls, {f.name: getattr(back, f.name, "<unset>") for f in dataclasses.fields(cls)}


def _observe(cls: type, calls: list[tuple[tuple[Any, ...], dict[str, Any]]]) -> dict[str, Any]:
    seen: dict[str, Any] = {
        "signature": _outcome(lambda: str(inspect.signature(cls))),
        "doc": cls.__doc__,
        "init annotations": _outcome(lambda: dict(cls.__init__.__annotations__)),
        "hash is None": cls.__hash__ is None,  # type: ignore[comparison-overlap]
        "match_args": getattr(cls, "__match_args__", None),
        "fields": [(f.name, f.default, f.init, f.repr, f.compare, f.kw_only) for f in dataclasses.fields(cls)],
        "slots": getattr(cls, "__slots__", None),
        "params": repr(cls.__dataclass_params__),  # type: ignore[attr-defined]
    }
    made = []
    for i, (args, kwargs) in enumerate(calls):
        outcome = _outcome(lambda: cls(*args, **kwargs))
        if outcome[0] != "ok":
            seen[f"call {i}"] = outcome
            continue
        obj = outcome[1]
        made.append(obj)
        names = [f.name for f in dataclasses.fields(cls)]
        seen[f"call {i}"] = {
            "values": {n: getattr(obj, n, "<unset>") for n in names},
            "repr": re.sub(r"0x[0-9a-f]+", "0x...", repr(obj)),
            "eq self": obj == obj,
            "eq copy": obj == dataclasses.replace(obj) if all(f.init for f in dataclasses.fields(cls)) else None,
            "ne other type": obj != object(),
            "hash": _outcome(lambda: "identity" if cls.__hash__ is object.__hash__ else hash(obj)),
            "setattr": _outcome(lambda: setattr(obj, names[0], getattr(obj, names[0])) if names else None),
            "has dict": hasattr(obj, "__dict__"),
            "weakref": _outcome(lambda: weakref.ref(obj)() is obj),
            "lt": _outcome(lambda: obj < obj),
            "asdict": _outcome(lambda: dataclasses.asdict(obj)),
            "astuple": _outcome(lambda: dataclasses.astuple(obj)),
            "deepcopy": _outcome(lambda: {n: getattr(copy.deepcopy(obj), n, "<unset>") for n in names}),
            "pickle": _outcome(lambda: _pickled(obj)),
        }
    seen["pairwise eq"] = [[a == b for b in made] for a in made]
    return seen


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "defaults")
@pytest.mark.parametrize("declare", DECLARATIONS, ids=lambda d: d.__name__.removeprefix("declare_"))
def test_wireformat_class_behaves_as_the_dataclass(declare: Callable[..., Any], options: dict[str, Any]) -> None:
    try:
        reference, calls = declare(plain(**options))
    except Exception as exc:
        with pytest.raises(type(exc), match=re.escape(str(exc))):
            declare(wire(**options))
        return
    made, _ = declare(wire(**options))
    assert _observe(made, calls) == _observe(reference, calls)


def declare_msg(deco: Decorator) -> Any:
    @deco
    class Msg:
        a: u32
        b: str = ""

    return Msg


def test_methods_are_written_on_first_use_and_then_are_plain_functions() -> None:
    Msg, reference = declare_msg(wireformat), declare_msg(dataclasses.dataclass)
    for name in ("__init__", "__repr__", "__eq__", "__doc__"):
        assert isinstance(Msg.__dict__[name], classes._Later), name
    m = Msg(1)  # the call itself writes __init__
    assert inspect.isfunction(Msg.__dict__["__init__"])
    assert isinstance(Msg.__dict__["__repr__"], classes._Later)  # untouched until used
    assert repr(m) == repr(reference(1))
    assert Msg.__dict__["__repr__"].__qualname__.endswith("Msg.__repr__")
    assert Msg.__init__.__qualname__.endswith("Msg.__init__")
    assert Msg.__doc__ == reference.__doc__
    assert isinstance(Msg.__dict__["__doc__"], str)


def test_a_subclass_finds_the_method_of_the_class_that_declared_it() -> None:
    @wireformat
    class Base:
        a: u32

    class Plain(Base):  # not decorated: inherits Base's __init__, written for Base
        def describe(self) -> str:
            return f"a={self.a}"

    class Calls(Base):
        def __init__(self) -> None:
            super().__init__(41)
            self.a += 1

    assert Plain(3).describe() == "a=3"
    assert Calls().a == 42
    assert "__init__" not in Plain.__dict__
    assert inspect.isfunction(Base.__dict__["__init__"])


def test_user_methods_are_kept() -> None:
    @wireformat
    class Own:
        a: u32

        def __init__(self, a: int) -> None:
            self.a = a * 2

        def __repr__(self) -> str:
            return "own"

        def __eq__(self, other: object) -> bool:
            return True

        __hash__ = object.__hash__

    assert Own(2).a == 4 and repr(Own(1)) == "own" and Own(1) == Own(2)
    assert Own.__hash__ is object.__hash__
    assert Own.decode(Own(5).encode()).a == 20  # decoding calls the user's __init__


def declare_box(deco: Decorator) -> Any:
    @deco
    class Box:
        items: list[u8]

    return Box


def test_repr_of_a_value_that_holds_itself() -> None:
    texts = []
    for deco in (wireformat, dataclasses.dataclass):
        box = declare_box(deco)([])
        box.items.append(box)
        texts.append(repr(box))
    assert texts[0] == texts[1] and texts[0].endswith("Box(items=[...])")


def declare_bad_order(deco: Decorator) -> None:
    @deco
    class Bad:
        a: u8 = 0
        b: u8


def test_default_order_is_checked_when_declared() -> None:
    with pytest.raises(TypeError, match="non-default argument 'b' follows default argument") as reference:
        declare_bad_order(dataclasses.dataclass)
    # the same words as dataclasses on this Python, after the class they are about
    with pytest.raises(TypeError, match=f"^declare_bad_order.<locals>.Bad: {re.escape(str(reference.value))}$"):
        declare_bad_order(wireformat)


def test_postponed_annotations_resolve_on_the_generated_init() -> None:
    hints = typing.get_type_hints(Module.__init__, include_extras=True)
    assert hints == typing.get_type_hints(PlainModule.__init__, include_extras=True)
    assert hints == {"a": u32, "b": Optional[str], "return": type(None)}
    assert Module(1) == Module.decode(Module(1).encode())


def test_enum_variants_are_lazy_dataclasses_too() -> None:
    @wireenum
    class Shape:
        class Circle:
            r: u16

        class Square:
            side: u16 = 1

    assert isinstance(Shape.Circle.__dict__["__init__"], classes._Later)  # type: ignore[attr-defined]
    c = Shape.Circle(5)  # type: ignore[attr-defined]
    assert repr(c).endswith("Circle(r=5)") and c == Shape.Circle(5)  # type: ignore[attr-defined]
    assert Shape.decode(Shape.Square().encode()) == Shape.Square(1)  # type: ignore[attr-defined]


def test_unknown_options_still_reach_dataclasses() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'") as reference:
        dataclasses.dataclass(colour=True)(type("X", (), {"__annotations__": {"a": u8}}))  # type: ignore[call-overload]
    with pytest.raises(TypeError, match=f"^X: {re.escape(str(reference.value))}$"):
        wireformat(colour=True)(type("X", (), {"__annotations__": {"a": u8}}))  # type: ignore[call-overload]


def test_forward_reference_errors_still_name_the_class() -> None:
    @wireformat
    class Later:
        other: Missing  # type: ignore[name-defined]  # noqa: F821

    with pytest.raises(SchemaError, match=r"Later.*Missing"):
        Later.decode(b"")


@wireformat
class Module:
    a: u32
    b: Optional[str] = None


@dataclasses.dataclass
class PlainModule:
    a: u32
    b: Optional[str] = None


def test_first_use_from_many_threads_at_once() -> None:
    """Methods and codec groups are written on first use: threads that race to it all get
    the same, correct results."""
    import threading

    @wireformat
    class Sample:
        id: u32
        tags: list[str]
        note: Optional[str] = None

    value_args = (7, ["a", "b"], "n")
    expected = bytes.fromhex("07000000 0200 0100") + b"a" + bytes.fromhex("0100") + b"b" + bytes.fromhex("01 0100") + b"n"
    barrier = threading.Barrier(8)
    results: list[object] = []

    def work() -> None:
        barrier.wait()
        value = Sample(*value_args)
        data = value.encode()
        results.append((data, Sample.decode(data) == value, Sample.decode(bytearray(data)) == value,
                        value.byte_size(), repr(value), hash(Sample.__doc__)))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8 and len(set(results)) == 1
    data, same, same_view, size, text, _ = results[0]  # type: ignore[misc]
    assert (data, same, same_view, size) == (expected, True, True, len(expected))
    assert text == repr(dataclasses.dataclass(type("Sample", (), {
        "__annotations__": {"id": u32, "tags": list[str], "note": Optional[str]}, "note": None,
        "__qualname__": Sample.__qualname__}))(*value_args))
    assert text.endswith("Sample(id=7, tags=['a', 'b'], note='n')")

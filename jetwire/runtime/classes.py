"""Dataclasses whose generated methods are written on first use.

``@dataclass`` compiles ``__init__``, ``__repr__`` and ``__eq__`` with ``exec`` and asks
``inspect.signature`` for the class docstring while the class is declared: nine tenths of what
declaring a message class costs. An application declares hundreds and uses a few per process,
so :func:`dataclass` lets ``dataclasses`` do everything else (fields, defaults, checks,
``__match_args__``, ``frozen``'s ``__setattr__``, ``slots``) and puts a stand-in where each of
those methods goes. The first lookup of the method, by any route (a call, ``inspect``, ``help``,
a subclass), writes the same method ``dataclasses`` would have written, puts it on the class in
place of the stand-in and returns it. The docstring is made the same way.

The generated methods follow CPython 3.11's ``dataclasses`` line for line in behaviour:
parameter order and defaults, ``default_factory``, ``kw_only``, ``InitVar`` and
``__post_init__``, fields with ``init=False``, ``frozen`` assignment through
``object.__setattr__``, ``__repr__``'s recursion guard, ``__eq__`` on tuples of the compared
fields, and ``__hash__``'s rules. Options this module does not handle (``order``,
``unsafe_hash``, any other) leave the whole class to ``dataclasses``.
"""

from __future__ import annotations

import dataclasses
import inspect
import reprlib
import sys
import threading
from collections.abc import Callable
from typing import Any

from ..compiler.lazy import OnFirstUse

_OPTIONS = frozenset({"init", "repr", "eq", "order", "unsafe_hash", "frozen", "match_args", "kw_only", "slots"})

# dataclasses' markers for pseudo-fields and for "call the factory": private, unchanged since 3.7.
_INITVAR: Any = vars(dataclasses)["_FIELD_INITVAR"]
_FIELD: Any = vars(dataclasses)["_FIELD"]
_HAS_DEFAULT_FACTORY: Any = vars(dataclasses)["_HAS_DEFAULT_FACTORY"]
_MISSING = dataclasses.MISSING
_PLACEHOLDER_DOC = "(written on first read)"


def _may_nest(cls: type) -> bool:
    return True


def dataclass(cls: type, options: dict[str, Any], may_nest: Callable[[type], bool] = _may_nest) -> type:
    """``dataclasses.dataclass(cls, **options)``, with ``__init__``, ``__repr__``, ``__eq__``,
    a frozen class's ``__hash__`` and the docstring written on first use.

    ``may_nest(cls)``, asked on first use, says whether a field may hold a value whose own
    generated methods these would call: only then do they count how deep they are."""
    if not _OPTIONS.issuperset(options) or options.get("order") or options.get("unsafe_hash"):
        made: type = dataclasses.dataclass(cls, **options)
        rebind_class_cell(made, cls)
        return made
    init = options.get("init", True)
    repr_ = options.get("repr", True)
    eq = options.get("eq", True)
    frozen = options.get("frozen", False)
    own = cls.__dict__
    class_hash = own.get("__hash__", _MISSING)
    has_explicit_hash = not (class_hash is _MISSING or (class_hash is None and "__eq__" in own))
    needs_doc = not cls.__doc__
    if needs_doc:
        cls.__doc__ = _PLACEHOLDER_DOC  # keeps dataclasses from calling inspect.signature now
    rest = {k: v for k, v in options.items() if k not in ("init", "repr", "eq")}
    original = cls
    build: Any = dataclasses.dataclass  # its overloads differ between typeshed versions
    cls = build(cls, init=False, repr=False, eq=False, **rest)
    rebind_class_cell(cls, original)
    params = cls.__dataclass_params__  # type: ignore[attr-defined]
    params.init, params.repr, params.eq = init, repr_, eq  # what was asked, not how it was built
    own = cls.__dict__
    if init and "__init__" not in own:
        _check_default_order(cls)
        _later(cls, "__init__", _init_fn)
    if repr_ and "__repr__" not in own:
        _later(cls, "__repr__", lambda c: _repr_fn(c, may_nest(c)))
    if eq:
        if "__eq__" not in own:
            _later(cls, "__eq__", lambda c: _eq_fn(c, may_nest(c)))
        if not has_explicit_hash:
            if frozen:
                _later(cls, "__hash__", lambda c: _hash_fn(c, may_nest(c)))
            else:
                cls.__hash__ = None  # type: ignore[assignment]
    if needs_doc:
        cls.__doc__ = _Later(cls, "__doc__", _doc)  # type: ignore[assignment]  # type.__doc__ calls __get__
    return cls


def rebind_class_cell(new: type, old: type) -> None:
    """Points the ``__class__`` cell of ``new``'s methods (what zero-argument ``super()`` reads)
    at ``new`` where it names ``old``, the class they were written in: ``slots=True`` and
    ``@wireenum``'s variants rebuild the class from its body, and ``super()`` in the rebuilt
    class's methods would otherwise name a class its instances are not instances of."""
    if new is old:
        return
    for value in new.__dict__.values():
        for fn in _functions_in(value):
            code = getattr(fn, "__code__", None)
            if code is None or "__class__" not in code.co_freevars:
                continue
            cell = fn.__closure__[code.co_freevars.index("__class__")]
            if cell.cell_contents is old:
                cell.cell_contents = new


def _functions_in(value: Any, depth: int = 0) -> list[Any]:
    """The functions a class attribute holds: itself, or what a classmethod, staticmethod,
    property or ``functools.wraps`` decorator wraps."""
    if depth > 8:
        return []
    found = []
    if isinstance(value, (classmethod, staticmethod)):
        found += _functions_in(value.__func__, depth + 1)
    elif isinstance(value, property):
        for part in (value.fget, value.fset, value.fdel):
            found += _functions_in(part, depth + 1)
    elif inspect.isfunction(value):
        found.append(value)
        wrapped = value.__dict__.get("__wrapped__")
        if wrapped is not None:
            found += _functions_in(wrapped, depth + 1)
    return found


class _Later(OnFirstUse[Any]):
    """Where a generated method goes, until the first lookup writes it (once, whichever thread
    looks first) and puts it on the class in its place."""

    __slots__ = ("name", "owner")

    def __init__(self, owner: type, name: str, make: Callable[[type], Any]) -> None:
        # OnFirstUse's state set here, not through super(): a class makes five of these
        self._make = make
        self._maker = None
        self.owner = owner
        self.name = name

    def _run(self, make: Callable[[type], Any]) -> Any:
        made = make(self.owner)
        if self.owner.__dict__.get(self.name) is self:
            setattr(self.owner, self.name, made)
        return made

    def __get__(self, obj: object, objtype: type | None = None) -> Any:
        made = self.get()
        if obj is None or not hasattr(made, "__get__"):
            return made
        return made.__get__(obj, objtype)

    def __repr__(self) -> str:
        return f"<{self.owner.__qualname__}.{self.name}, written on first use>"


def _later(cls: type, name: str, make: Callable[[type], Any]) -> None:
    setattr(cls, name, _Later(cls, name, make))


def _all_fields(cls: type) -> list[dataclasses.Field[Any]]:
    return list(cls.__dataclass_fields__.values())  # type: ignore[attr-defined]


def _init_fields(cls: type) -> tuple[list[dataclasses.Field[Any]], list[dataclasses.Field[Any]],
                                     list[dataclasses.Field[Any]]]:
    """Fields and InitVars in ``__init__``'s order: all of them, the positional, the keyword-only."""
    every = [f for f in _all_fields(cls) if f._field_type in (_FIELD, _INITVAR)]  # type: ignore[attr-defined]
    positional = [f for f in every if f.init and not f.kw_only]
    keyword = [f for f in every if f.init and f.kw_only]
    return every, positional, keyword


def _check_default_order(cls: type) -> None:
    """dataclasses' own check, made at declaration as it would be."""
    seen_default: dataclasses.Field[Any] | None = None
    for f in _init_fields(cls)[1]:
        if f.default is not _MISSING or f.default_factory is not _MISSING:
            seen_default = f
        elif seen_default is not None:
            # in dataclasses' words on this Python: 3.13 added the default argument's name
            after = f" {seen_default.name!r}" if sys.version_info >= (3, 13) else ""
            raise TypeError(f"non-default argument {f.name!r} follows default argument{after}")


def _module_globals(cls: type) -> dict[str, Any]:
    module = sys.modules.get(cls.__module__)
    return module.__dict__ if module is not None else {}


def _compile(cls: type, name: str, params: str, body: list[str], names: dict[str, Any]) -> Any:
    """A function of ``cls``'s module (so ``get_type_hints`` on it resolves as on the class)
    that sees ``names``; the same construction as dataclasses'."""
    lines = "\n".join(f"  {line}" for line in body)
    text = f"def __make__({', '.join(names)}):\n def {name}({params}):\n{lines}\n return {name}"
    scope: dict[str, Any] = {}
    exec(text, _module_globals(cls), scope)  # noqa: S102 - source built here from field names
    fn = scope["__make__"](**names)
    fn.__qualname__ = f"{cls.__qualname__}.{name}"
    return fn


def _init_fn(cls: type) -> Any:
    every, positional, keyword = _init_fields(cls)
    params = cls.__dataclass_params__  # type: ignore[attr-defined]
    names: dict[str, Any] = {
        "_HAS_DEFAULT_FACTORY": _HAS_DEFAULT_FACTORY,
        "__dataclass_builtins_object__": object,
    }
    self_name = "__dataclass_self__" if "self" in cls.__dataclass_fields__ else "self"  # type: ignore[attr-defined]
    slots = "__slots__" in cls.__dict__
    body = []
    for f in every:
        default = f"_dflt_{f.name}"
        if f.default_factory is not _MISSING:
            names[default] = f.default_factory
            value = f"{default}() if {f.name} is _HAS_DEFAULT_FACTORY else {f.name}" if f.init else f"{default}()"
        elif f.init:
            if f.default is not _MISSING:
                names[default] = f.default
            value = f.name
        elif slots and f.default is not _MISSING:
            names[default] = f.default
            value = default
        else:
            continue  # the class attribute holds the default
        if f._field_type is _INITVAR:  # type: ignore[attr-defined]
            continue
        if params.frozen:
            body.append(f"__dataclass_builtins_object__.__setattr__({self_name},{f.name!r},{value})")
        else:
            body.append(f"{self_name}.{f.name}={value}")
    if hasattr(cls, "__post_init__"):
        initvars = ",".join(f.name for f in every if f._field_type is _INITVAR)  # type: ignore[attr-defined]
        body.append(f"{self_name}.__post_init__({initvars})")

    def param(f: dataclasses.Field[Any]) -> str:
        if f.default is not _MISSING:
            return f"{f.name}=_dflt_{f.name}"
        if f.default_factory is not _MISSING:
            return f"{f.name}=_HAS_DEFAULT_FACTORY"
        return f.name

    signature = [self_name] + [param(f) for f in positional]
    if keyword:
        signature += ["*"] + [param(f) for f in keyword]
    fn = _compile(cls, "__init__", ",".join(signature), body or ["pass"], names)
    fn.__annotations__ = {f.name: f.type for f in positional + keyword} | {"return": None}
    return fn


def _names_where(cls: type, flag: str) -> list[str]:
    """The fields whose ``flag`` (repr, compare) is set, in order."""
    return [f.name for f in dataclasses.fields(cls) if getattr(f, flag)]


def _tuple(obj: str, names: list[str]) -> str:
    return f"({','.join(f'{obj}.{name}' for name in names)},)" if names else "()"


# __repr__ and __eq__ of values nested deeper than this (counted per thread) go on in a loop
# over a list of what is left, not through more nested calls: each level of ``repr`` or
# ``==`` through a tuple or an f-string is several C calls, and MAX_DEPTH (200) levels of them
# overflow a thread's 128 KiB stack.
NESTED_CALLS = 16
_nesting = threading.local()


def _repr_fn(cls: type, may_nest: bool = True) -> Any:
    names = _names_where(cls, "repr")
    parts = ", ".join(f"{name}={{self.{name}!r}}" for name in names)
    fn = _compile(cls, "__repr__", "self", [f'return self.__class__.__qualname__ + f"({parts})"'], {})
    nested = reprlib.recursive_repr("...")(fn)
    if not may_nest:
        nested.jetwire_fields = tuple(names)  # type: ignore[attr-defined]
        return nested

    def repr_(self: Any) -> str:
        depth = getattr(_nesting, "repr", 0)
        if depth >= NESTED_CALLS:
            return flat_repr(self)
        _nesting.repr = depth + 1
        try:
            return nested(self)
        finally:
            _nesting.repr = depth

    repr_.__name__, repr_.__qualname__ = "__repr__", fn.__qualname__
    repr_.__wrapped__ = nested  # type: ignore[attr-defined]
    repr_.jetwire_fields = tuple(names)  # type: ignore[attr-defined]
    return repr_


def _eq_fn(cls: type, may_nest: bool = True) -> Any:
    names = _names_where(cls, "compare")
    body = ["if other.__class__ is self.__class__:",
            f" return {_tuple('self', names)}=={_tuple('other', names)}",
            "return NotImplemented"]
    nested = _compile(cls, "__eq__", "self,other", body, {})
    if not may_nest:
        nested.jetwire_fields = tuple(names)
        return nested

    def eq(self: Any, other: Any) -> Any:
        depth = getattr(_nesting, "eq", 0)
        if depth >= NESTED_CALLS:
            return flat_eq(self, other) if other.__class__ is self.__class__ else NotImplemented
        _nesting.eq = depth + 1
        try:
            return nested(self, other)
        finally:
            _nesting.eq = depth

    eq.__name__, eq.__qualname__ = "__eq__", nested.__qualname__
    eq.__wrapped__ = nested  # type: ignore[attr-defined]
    eq.jetwire_fields = tuple(names)  # type: ignore[attr-defined]
    return eq


def _fields_of(cls: type, method: str) -> tuple[str, ...] | None:
    """The fields the generated ``__repr__`` or ``__eq__`` of ``cls`` shows or compares."""
    if cls is _Some:
        return ("value",)
    fields: tuple[str, ...] | None = getattr(getattr(cls, method, None), "jetwire_fields", None)
    return fields


def flat_repr(root: Any) -> str:
    """``repr(root)`` for classes with a generated ``__repr__`` and the lists, tuples, dicts,
    sets and ``Some`` between them, in a loop: the same text, whatever the depth."""
    pieces: list[str] = []
    todo: list[tuple[int, Any]] = [(_VALUE, root)]  # last first
    showing: set[int] = set()  # the values around the current one: met again, a cycle
    while todo:
        what, item = todo.pop()
        if what == _TEXT:
            pieces.append(item)
            continue
        if what == _DONE:
            showing.discard(item)
            continue
        cls = item.__class__
        fields = _fields_of(cls, "__repr__")
        steps: list[tuple[int, Any]] = []
        if fields is not None:
            opening, closing, cycle = cls.__qualname__ + "(", ")", "..."  # recursive_repr's
            for i, name in enumerate(fields):
                steps += [(_TEXT, ", " + name + "=" if i else name + "="), (_VALUE, getattr(item, name))]
        elif cls is list or cls is tuple or ((cls is set or cls is frozenset) and item):
            if cls is list:
                opening, closing, cycle = "[", "]", "[...]"
            elif cls is tuple:
                opening, closing, cycle = "(", ",)" if len(item) == 1 else ")", "(...)"
            else:
                opening = "{" if cls is set else "frozenset({"
                closing, cycle = ("}" if cls is set else "})"), f"{cls.__name__}(...)"
            for i, element in enumerate(item):
                if i:
                    steps.append((_TEXT, ", "))
                steps.append((_VALUE, element))
        elif cls is dict:
            opening, closing, cycle = "{", "}", "{...}"
            for i, (key, value) in enumerate(item.items()):
                if i:
                    steps.append((_TEXT, ", "))
                steps += [(_VALUE, key), (_TEXT, ": "), (_VALUE, value)]
        else:
            pieces.append(repr(item))  # holds none of ours, or is shown its own way
            continue
        if id(item) in showing:
            pieces.append(cycle)
            continue
        showing.add(id(item))
        todo.append((_DONE, id(item)))
        todo.append((_TEXT, closing))
        todo.extend(reversed(steps))
        todo.append((_TEXT, opening))
    return "".join(pieces)


_VALUE, _TEXT, _DONE = 0, 1, 2


def flat_eq(left: Any, right: Any) -> bool:
    """``left == right`` for two instances of one class with a generated ``__eq__``, in a
    loop over the pairs still to compare: the answer ``==`` gives, whatever the depth."""
    todo = [(left, right)]
    while todo:
        a, b = todo.pop()
        if a is b:  # as tuple comparison does: the same object is equal to itself
            continue
        cls = a.__class__
        fields = _fields_of(cls, "__eq__") if b.__class__ is cls else None
        if fields is not None:
            todo.extend((getattr(a, f), getattr(b, f)) for f in reversed(fields))
        elif (cls is list or cls is tuple) and b.__class__ is cls:
            if len(a) != len(b):
                return False
            todo.extend(zip(reversed(a), reversed(b)))
        elif cls is dict and b.__class__ is dict:
            if len(a) != len(b):
                return False
            for key in a:
                if key not in b:
                    return False
            todo.extend((a[key], b[key]) for key in a)
        elif not a == b:
            return False
    return True


from ..markers import Some as _Some  # noqa: E402 - after the helpers that name it


def _hash_fn(cls: type, may_nest: bool = True) -> Any:
    names = [f.name for f in dataclasses.fields(cls) if (f.compare if f.hash is None else f.hash)]
    nested = _compile(cls, "__hash__", "self", [f"return hash({_tuple('self', names)})"], {})
    if not may_nest or sys.hash_info.width != 64:  # flat_hash follows the 64-bit tuple hash
        nested.jetwire_fields = tuple(names)
        return nested

    def hash_(self: Any) -> int:
        depth = getattr(_nesting, "hash", 0)
        if depth >= NESTED_CALLS:
            return flat_hash(self)
        _nesting.hash = depth + 1
        try:
            return nested(self)  # type: ignore[no-any-return]
        finally:
            _nesting.hash = depth

    hash_.__name__, hash_.__qualname__ = "__hash__", nested.__qualname__
    hash_.__wrapped__ = nested  # type: ignore[attr-defined]
    hash_.jetwire_fields = tuple(names)  # type: ignore[attr-defined]
    return hash_


# CPython's tuple hash (xxHash's mixing, Objects/tupleobject.c), which a frozen class's
# ``hash((self.a, self.b))`` computes: flat_hash must give the very same number, or one value
# would hash differently depending on how deep the call that hashes it is.
_PRIME_1, _PRIME_2, _PRIME_5 = 11400714785074694791, 14029467366897019727, 2870177450012600261
_MASK = (1 << 64) - 1


def _hashed_parts(value: Any) -> tuple[Any, ...] | None:
    cls = value.__class__
    if cls is tuple:
        return value  # type: ignore[no-any-return]
    fields = _fields_of(cls, "__hash__")
    if fields is None:
        return None
    return tuple(getattr(value, name) for name in fields)


def flat_hash(root: Any) -> int:
    """``hash(root)`` for a frozen class with a generated ``__hash__``, through the frozen
    classes, tuples and ``Some`` inside it, in a loop: the same number, whatever the depth."""
    parts = _hashed_parts(root)
    assert parts is not None
    open_tuples: list[list[Any]] = [[parts, 0, _PRIME_5]]  # the parts, the next one, the hash so far
    while True:
        top = open_tuples[-1]
        parts, index, acc = top
        if index < len(parts):
            inner = _hashed_parts(parts[index])
            if inner is not None:
                open_tuples.append([inner, 0, _PRIME_5])
                continue
            lane = hash(parts[index]) & _MASK
        else:
            acc = (acc + (len(parts) ^ (_PRIME_5 ^ 3527539))) & _MASK
            done = 1546275796 if acc == _MASK else acc
            open_tuples.pop()
            if not open_tuples:
                return done - (1 << 64) if done >= 1 << 63 else done
            top = open_tuples[-1]
            parts, index, acc = top
            lane = done
        acc = (acc + lane * _PRIME_2) & _MASK
        acc = ((acc << 31) | (acc >> 33)) & _MASK
        top[1], top[2] = index + 1, (acc * _PRIME_1) & _MASK


def _doc(cls: type) -> str:
    try:
        text = str(inspect.signature(cls)).replace(" -> None", "")
    except (TypeError, ValueError):
        text = ""
    return cls.__name__ + text

"""Every exception jetwire defines shares one base, so one ``except`` catches them all."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import jetwire
from jetwire import JetwireError
from jetwire.p9 import ProtocolError


def _jetwire_exception_classes() -> list[type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(jetwire.__path__, "jetwire."):
        if info.name == "jetwire.mypy":
            continue  # the mypy plugin imports mypy, an optional tool
        module = importlib.import_module(info.name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__.startswith("jetwire"):
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return [found[name] for name in sorted(found)]


# Control flow inside jetwire, raised and caught within one call: never seen by a user.
INTERNAL_SIGNALS = {"jetwire.compiler.support.Bail", "jetwire.compiler.support.NeedMore", "jetwire.builtins._Problem",
                    "jetwire.p9.localfs._CrossesMount"}


def test_every_jetwire_exception_derives_from_one_base() -> None:
    classes = _jetwire_exception_classes()
    assert len(classes) >= 8  # the walk found the package's exceptions, not nothing
    outside = [f"{c.__module__}.{c.__qualname__}" for c in classes if not issubclass(c, JetwireError)]
    assert sorted(outside) == sorted(INTERNAL_SIGNALS)


@pytest.mark.parametrize("raise_one", [
    lambda: jetwire.decode(jetwire.u32, b"\x01"),
    lambda: jetwire.encode(jetwire.u8, 256),
    lambda: jetwire.wireformat(type("Bad", (), {"__annotations__": {"x": object}})),
    lambda: jetwire.Frame.decode(b"\x01\x00"),
])
def test_one_except_catches_what_jetwire_raises(raise_one: object) -> None:
    with pytest.raises(JetwireError):
        raise_one()  # type: ignore[operator]


def test_the_base_keeps_the_builtin_bases() -> None:
    assert issubclass(jetwire.SchemaError, TypeError)
    assert issubclass(jetwire.DecodeError, ValueError)
    assert issubclass(ProtocolError, JetwireError)
    assert issubclass(jetwire.Error, JetwireError) and issubclass(jetwire.Error, Exception)

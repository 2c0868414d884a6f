"""Made on first use: the one way jetwire defers work until something asks for it.

Declaring hundreds of classes must stay cheap, and most programs use a few codecs one way, so
a great deal waits for first use: a struct's groups of generated functions, a frame's decoder
of each message type and its memoryview decoders, a class's codec, the methods and docstring
``runtime/classes.py`` writes. Each is an :class:`OnFirstUse`: made once, under the compile
lock, even when threads ask at the same moment, and published whole (no thread sees a half
made one). Its users keep their fast paths: they ask ``get`` only while the thing is missing,
then hold what it made."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

# Held while code is generated and loaded; reentrant, as a group that compiles another (a
# recursive type's) holds it twice.
_compile_lock = threading.RLock()


class OnFirstUse(Generic[T]):
    """``make()``, called once on the first ``get()``; later calls return what it made.

    ``make`` runs under the compile lock, which is reentrant: making one thing may make others
    (a recursive type's groups). A ``make`` that raises leaves nothing made, and the next
    ``get()`` tries again (a name declared later may resolve by then). Subclasses that make
    from state of their own override ``_run``."""

    __slots__ = ("_make", "_maker", "made")

    made: T

    def __init__(self, make: Callable[..., T]) -> None:
        self._make: Callable[..., T] | None = make
        self._maker: int | None = None  # the thread making it, to refuse a make that needs itself

    def get(self) -> T:
        if self._make is not None:
            with _compile_lock:
                make = self._make
                if make is not None:
                    if self._maker == threading.get_ident():
                        raise RuntimeError(f"making {self!r} needs itself")
                    self._maker = threading.get_ident()
                    try:
                        self.made = self._run(make)
                    finally:
                        self._maker = None
                    self._make = None  # after `made`: a thread that sees None finds it set
        return self.made

    def _run(self, make: Callable[..., T]) -> T:
        return make()

    def __repr__(self) -> str:
        what = getattr(self._make, "__qualname__", "a value")
        return f"<{what}, {'made' if self._make is None else 'made on first use'}>"


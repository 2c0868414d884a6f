"""The file server's one way to libc and to system calls Python's ``os`` has no function for
(openat2, cachestat, statfs's f_type, the per-thread identity calls): libc loaded once here,
for Linux only (the system call numbers the server passes are Linux's)."""

from __future__ import annotations

import ctypes
import os
from typing import Any, NoReturn

__all__ = ["libc_function", "syscall", "raise_errno"]


def _load_libc() -> ctypes.CDLL | None:
    if os.uname().sysname != "Linux":
        return None
    try:
        return ctypes.CDLL(None, use_errno=True)  # errno kept for ctypes.get_errno after each call
    except OSError:
        return None


_LIBC = _load_libc()


def libc_function(name: str) -> Any | None:
    """libc's function ``name`` (None off Linux, or when this libc has none of that name)."""
    return getattr(_LIBC, name, None) if _LIBC is not None else None


#: libc's ``syscall(number, ...)``, or None
syscall = libc_function("syscall")


def raise_errno(filename: str | None = None) -> NoReturn:
    """Raises the ``OSError`` of the errno the last libc call through this module left."""
    number = ctypes.get_errno()
    raise OSError(number, os.strerror(number), filename)

"""Waiting for a condition in the RPC tests, never for a length of time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Waits for ``condition``; the timeout only turns a hang into a failure."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not condition():
        if loop.time() > end:
            raise AssertionError(f"still not {what} after {timeout} s")
        await asyncio.sleep(0.001)

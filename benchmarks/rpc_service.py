"""The service ``benchmarks/rpc.py`` measures: upstream's benchmark method, ``square``, whose
answer is the decimal text of ``i * i``. A module of its own so that ``benchmarks.rpc`` still
runs its raw and grpc rows in a tree without ``jetwire.rpc``."""

from __future__ import annotations

from typing import Protocol

from jetwire import rpc, u64


@rpc.service(version="1.0.0")
class Benchmark(rpc.Service):
    async def square(self, i: u64) -> str: ...


class Holding(Protocol):
    """The memory run's gate: while it is not open, calls wait at it (and are counted)."""

    open: bool

    async def wait(self) -> None: ...


class Squares(Benchmark):
    def __init__(self, gate: Holding | None = None) -> None:
        self.gate = gate

    async def square(self, i: u64) -> str:
        gate = self.gate
        if gate is not None and not gate.open:
            await gate.wait()
        return str(i * i)

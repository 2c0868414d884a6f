"""Upstream JetStream's ``EchoHttp`` service, declared once for ``echo_server.py`` and
``echo_client.py``.

Upstream declares it in Rust (``ping(message: String) -> Result<String>``, then
``add(a: i32, b: i32) -> Result<i32>``); what a peer sees of it is the name ``echohttp`` (the
class name lowercased), ``ping`` as types 102/103 and ``add`` as 104/105, in that order. Its
TypeScript client and server find the service by the name in the version string alone, so the
semver and digest here need not match theirs.
"""

from __future__ import annotations

from jetwire import rpc
from jetwire.markers import i32

I32_MIN, I32_MAX = -(2**31), 2**31 - 1


@rpc.service(version="15.0.0")
class EchoHttp(rpc.Service):
    async def ping(self, message: str) -> str:
        """Answers with ``message``."""
        raise NotImplementedError

    async def add(self, a: i32, b: i32) -> i32:
        """Answers with ``a + b``."""
        raise NotImplementedError

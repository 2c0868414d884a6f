"""Upstream JetStream's ``EchoHttp`` service, declared once for ``echo_server.py`` and
``echo_client.py``.

Upstream declares it in Rust (``ping(message: String) -> Result<String>``, then
``add(a: i32, b: i32) -> Result<i32>``); what a peer sees of it is the name ``echohttp`` (the
class name lowercased), ``ping`` as types 102/103 and ``add`` as 104/105, in that order. Its
TypeScript client and server find the service by the name in the version string alone, so the
semver and digest here need not match theirs.
"""

from __future__ import annotations

import argparse

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


def host_port(text: str) -> str:
    """``--listen``/``--connect``'s HOST:PORT (``[::1]:4000`` for IPv6), refused by argparse
    with the reason when it is not one."""
    try:
        rpc.parse_url(f"tcp://{text}")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT ({exc})") from None
    return text

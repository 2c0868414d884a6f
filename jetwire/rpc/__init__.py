"""JetStream RPC: ``@rpc.service`` declarations, served and called over TCP, unix sockets and
QUIC, wire-compatible with upstream JetStream's Rust, TypeScript and Swift peers.

```python
@rpc.service(version="1.0.0")
class Echo(rpc.Service):
    async def ping(self, message: str) -> str: ...

server = await rpc.serve(EchoImpl(), "tcp://127.0.0.1:4000")
async with await Echo.connect("tcp://127.0.0.1:4000") as client:
    await client.ping("hi")
```
"""

from .aio import DEFAULT_MAX_CALLS, ClientChannel, Server, ServerChannel, Service, connect, serve
from .protocol import (
    DEFAULT_MAX_FRAME_SIZE,
    MAX_METHODS,
    MESSAGE_ID_START,
    NOTAG,
    RERROR,
    RVERSION,
    TVERSION,
    CallTimeout,
    ConnectionClosed,
    ConnectTimeout,
    LocalProtocolError,
    MsizeError,
    ProtocolError,
    RemoteProtocolError,
    RpcError,
    Rversion,
    TagsExhausted,
    Tversion,
    VersionError,
    parse_version,
)
from .service import NO_CONTEXT, Context, Method, ServiceSpec, method, service, service_of, spec_of
from .session import ClientSession, ServerSession
from .transports import TLS, UnsupportedURL, parse_url

__all__ = [
    "service", "method", "Service", "Context", "NO_CONTEXT", "serve", "connect", "Server", "TLS",
    "ServiceSpec", "Method", "spec_of", "service_of", "ClientSession", "ServerSession", "ClientChannel",
    "ServerChannel", "RpcError", "ProtocolError", "LocalProtocolError", "RemoteProtocolError", "VersionError",
    "ConnectionClosed", "CallTimeout", "ConnectTimeout", "TagsExhausted", "MsizeError", "UnsupportedURL", "Tversion",
    "Rversion",
    "parse_version", "parse_url", "MESSAGE_ID_START", "RERROR", "TVERSION", "RVERSION", "NOTAG", "MAX_METHODS",
    "DEFAULT_MAX_FRAME_SIZE", "DEFAULT_MAX_CALLS",
]

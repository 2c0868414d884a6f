"""An asyncio 9P2000.L client, in three layers, each built on the one below:

- ``connection.py``: the transport around ``Session`` (which does all the protocol), a future
  per tag, timeouts, Tflush when a caller stops waiting, and ``_call`` (one request, its reply);
- ``calls.py``: one method per request, on fids (``walk``, ``lopen``, ``read``...);
- ``paths.py``: ``Client``'s methods on paths (``read_bytes``, ``listdir``, ``open``...), which
  manage fids themselves, and ``RemotePath`` and ``File``.

``await Client.connect("127.0.0.1", 564, aname="/srv")`` negotiates the version and attaches.
Many requests may be in flight at once; cancelling one sends Tflush; server errors raise
``OSError`` subclasses with the errno (``FileNotFoundError`` for ENOENT, ...).
This module gathers the public names.
"""

from .calls import MAX_LISTING, parse_dirents
from .paths import Client, File, RemotePath, Stat, connect, parse_address, split_path

__all__ = ["MAX_LISTING", "Client", "File", "RemotePath", "Stat", "parse_dirents", "connect", "parse_address",
           "split_path"]

"""Value types of the spec that Python lacks: ``Url`` (r[jetstream.wireformat.url])."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

__all__ = ["Url"]

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_FORBIDDEN = re.compile(r"[\x00-\x20\x7f]")
_SPECIAL = {"http", "https", "ws", "wss", "ftp"}


class Url(str):
    """An absolute URL: a ``str`` that was checked to parse when it was made.

    Checks what a WHATWG parser (Rust's ``url`` crate) rejects outright: a missing or malformed
    scheme, spaces and control characters, a special scheme (http, https, ws, wss, ftp) with no
    host, a port that is not a number up to 65535.
    """

    __slots__ = ()

    def __new__(cls, text: str) -> Url:
        if not isinstance(text, str):
            raise TypeError(f"Url needs a str, not {type(text).__name__}")
        problem = url_problem(text)
        if problem:
            raise ValueError(f"not an absolute URL ({problem}): {text!r}")
        return super().__new__(cls, text)

    @property
    def scheme(self) -> str:
        return self.split(":", 1)[0].lower()

    def __repr__(self) -> str:
        return f"Url({str.__repr__(self)})"


def url_problem(text: str) -> str | None:
    """Why ``text`` is not an absolute URL, or None when it is one."""
    match = _SCHEME.match(text)
    if not match:
        return "no scheme"
    if _FORBIDDEN.search(text):
        return "space or control character"
    scheme = match.group()[:-1].lower()
    rest = text[match.end():]
    if scheme in _SPECIAL or scheme == "file":
        if not rest.startswith("//") and scheme != "file":
            return f"{scheme} needs //host"
        try:
            parts = urlsplit(text)
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError as exc:
            return str(exc)
        if scheme in _SPECIAL and not parts.hostname:
            return "empty host"
    return None

"""Value types of the spec that Python lacks: ``Url`` (r[jetstream.wireformat.url])."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import unquote_to_bytes

__all__ = ["Url"]

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_DOTTED_QUAD = rf"(?:{_OCTET}\.){{3}}{_OCTET}"
# The usual URL, valid at a glance: a special scheme; a host that is a dotted quad, or plain
# labels the last of which starts with no digit (so it cannot end in a number); a port under
# 10000; no space or control character. Decoding checks every Url and most are this: the
# rest take the whole way.
_PLAIN = re.compile(
    rf"(?:https?|wss?|ftp)://(?:{_DOTTED_QUAD}|(?:[A-Za-z0-9_\-]+\.)*[A-Za-z_\-][A-Za-z0-9_\-]*\.?)"
    r"(?::[0-9]{0,4})?(?:[/?#][^\x00-\x20\x7f]*)?"
)
_FORBIDDEN = re.compile(r"[\x00-\x20\x7f]")
_SPECIAL = {"http", "https", "ws", "wss", "ftp"}  # "file" is special too, with its own host rules
# The WHATWG URL standard's forbidden host code points (an opaque host refuses them) and
# forbidden domain code points (a special scheme's host, after percent-decoding, refuses them).
_FORBIDDEN_HOST = re.compile(r"[\x00\t\n\r #/:<>?@\[\\\]^|]")
_FORBIDDEN_DOMAIN = re.compile(r"[\x00-\x1f #%/:<>?@\[\\\]^|\x7f]")
_SPECIAL_AUTHORITY_END = re.compile(r"[/\\?#]")  # a special URL's authority ends at \ too
_AUTHORITY_END = re.compile(r"[/?#]")
_PORT = re.compile(r"[0-9]*")
_DIGITS = re.compile(r"[0-9]+")
_HEX_DIGITS = re.compile(r"[0-9A-Fa-f]*")
_OCTAL_DIGITS = re.compile(r"[0-7]*")
_DRIVE_LETTER = re.compile(r"[A-Za-z][:|]")
# Full stops other than "." that IDNA mapping turns into "." (so they separate labels too).
_IDEOGRAPHIC_STOPS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})


class Url(str):
    """An absolute URL: a ``str`` that was checked to parse when it was made.

    Checks what a WHATWG parser (Rust's ``url`` crate) rejects outright: a missing or malformed
    scheme, spaces and control characters, a special scheme (http, https, ws, wss, ftp) with no
    host, a port that is not a number up to 65535, and a host that the standard's host parser
    refuses: a host ending in a number that is not an IPv4 address (``http://1.2.3.256/``), a
    bracketed IPv6 address that does not parse, forbidden code points. It does not normalise:
    the text is kept, and sent, exactly as given.
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
    return None if _PLAIN.fullmatch(text) else whole_url_problem(text)


def whole_url_problem(text: str) -> str | None:
    """``url_problem`` without the shortcut for the usual URL."""
    match = _SCHEME.match(text)
    if not match:
        return "no scheme"
    if _FORBIDDEN.search(text):
        return "space or control character"
    scheme = match.group()[:-1].lower()
    rest = text[match.end():]
    if scheme == "file":
        return _file_host_problem(rest)
    if scheme in _SPECIAL:
        # any run of / and \ leads to the authority, even none: "http:host" is http://host/
        rest = rest.lstrip("/\\")
        return _authority_problem(_SPECIAL_AUTHORITY_END.split(rest, 1)[0], special=True)
    if rest.startswith("//"):
        return _authority_problem(_AUTHORITY_END.split(rest[2:], 1)[0], special=False)
    return None  # no authority (mailto:, urn:): nothing a parser refuses is left to check


def _file_host_problem(rest: str) -> str | None:
    if rest[:1] not in ("/", "\\") or rest[1:2] not in ("/", "\\"):
        return None  # file:/path and file:path have no host
    host = _SPECIAL_AUTHORITY_END.split(rest[2:], 1)[0]
    if not host or _DRIVE_LETTER.fullmatch(host):
        return None  # file:///path, and file://C:/path where C: starts the path
    return _host_problem(host, special=True)


def _authority_problem(authority: str, special: bool) -> str | None:
    _credentials, at, host_port = authority.rpartition("@")  # the host follows the last @
    if at and not host_port:
        return "no host after the credentials"
    if "[" in host_port:
        host, colon, port = _split_port(host_port)
    else:
        host, colon, port = host_port.partition(":")
    if not host:
        if special or colon:  # a port with no host before it
            return "empty host"
        return None
    if port:
        if not _PORT.fullmatch(port):
            return f"port {port!r} is not a number"
        if int(port) > 0xFFFF:
            return f"port {int(port)} is over 65535"
    return _host_problem(host, special)


def _split_port(host_port: str) -> tuple[str, str, str]:
    """``host, ":", port`` at the first colon outside brackets (an IPv6 address has colons)."""
    closed = True
    for i, c in enumerate(host_port):
        if c == "[":
            closed = False
        elif c == "]":
            closed = True
        elif c == ":" and closed:
            return host_port[:i], ":", host_port[i + 1:]
    return host_port, "", ""


def _host_problem(host: str, special: bool) -> str | None:
    """The WHATWG host parser's refusals: ``special`` for a domain, else an opaque host."""
    if host.startswith("["):
        if not host.endswith("]"):
            return f"host {host!r} opens with '[' but does not end with ']'"
        problem = _ipv6_problem(host[1:-1])
        return f"host {host!r} is not an IPv6 address: {problem}" if problem else None
    if not special:
        bad = _FORBIDDEN_HOST.search(host)
        return f"host {host!r} holds {bad.group()!r}" if bad else None
    domain = host
    if "%" in host:
        try:
            domain = unquote_to_bytes(host).decode("utf-8")
        except UnicodeDecodeError:
            return f"host {host!r} is not UTF-8 once percent-decoded"
    if not domain.isascii():
        # IDNA maps compatibility forms first (fullwidth digits and stops among them); only
        # that mapping is followed here: the rest of IDNA's refusals are not checked.
        domain = unicodedata.normalize("NFKC", domain).translate(_IDEOGRAPHIC_STOPS)
    bad = _FORBIDDEN_DOMAIN.search(domain)
    if bad:
        return f"host {host!r} holds {bad.group()!r}"
    if _ends_in_a_number(domain):
        problem = _ipv4_problem(domain)
        if problem:
            return f"host {host!r} ends in a number but is not an IPv4 address: {problem}"
    return None


def _ends_in_a_number(domain: str) -> bool:
    last = domain[:-1] if domain.endswith(".") else domain
    last = last.rpartition(".")[2]
    if not last[:1].isdigit():  # both a decimal and a 0x number start with a digit
        return False
    return bool(_DIGITS.fullmatch(last)) or _ipv4_number(last) is not None


def _ipv4_number(part: str) -> int | None:
    """One dotted part: decimal, 0x hex or 0-led octal ("0x" alone is 0); None if it is none."""
    if not part:
        return None
    digits, radix = part, 10
    if len(part) >= 2 and part[:2] in ("0x", "0X"):
        digits, radix = part[2:], 16
    elif len(part) >= 2 and part[0] == "0":
        digits, radix = part[1:], 8
    if not digits:
        return 0
    pattern = _DIGITS if radix == 10 else _HEX_DIGITS if radix == 16 else _OCTAL_DIGITS
    return int(digits, radix) if pattern.fullmatch(digits) else None


def _ipv4_problem(domain: str) -> str | None:
    parts = domain.split(".")
    if parts[-1] == "" and len(parts) > 1:
        parts.pop()  # one trailing dot is allowed
    if len(parts) > 4:
        return f"{len(parts)} parts, at most 4"
    numbers = []
    for part in parts:
        number = _ipv4_number(part)
        if number is None:
            return f"part {part!r} is not a decimal, 0x hex or 0-led octal number"
        numbers.append(number)
    for number in numbers[:-1]:
        if number > 255:
            return f"part {number} is over 255"
    room = 5 - len(numbers)  # the last part fills the bytes the others leave
    if numbers[-1] >= 256 ** room:
        return f"last part {numbers[-1]} does not fit in {room} byte{'s' if room > 1 else ''}"
    return None


def _ipv6_problem(text: str) -> str | None:
    """Why ``text`` (between the brackets) is not an IPv6 address per the WHATWG IPv6 parser."""
    pieces = 0  # pieces written so far, including the ones an embedded IPv4 address fills
    compressed = False
    i, n = 0, len(text)
    if text.startswith(":"):
        if not text.startswith("::"):
            return "a lone leading ':'"
        i, pieces, compressed = 2, 1, True
    while i < n:
        if pieces == 8:
            return "more than 8 pieces"
        if text[i] == ":":
            if compressed:
                return "'::' twice"
            i += 1
            pieces += 1
            compressed = True
            continue
        start = i
        while i < n and i - start < 4 and text[i] in "0123456789abcdefABCDEF":
            i += 1
        if i < n and text[i] == ".":
            if i == start:
                return "an IPv4 part with no digits"
            if pieces > 6:
                return "an IPv4 address past the sixth piece"
            i = start
            seen = 0
            while i < n:
                if seen:
                    if text[i] != "." or seen >= 4:
                        return "a malformed embedded IPv4 address"
                    i += 1
                if i >= n or text[i] not in "0123456789":
                    return "an embedded IPv4 part that is not a decimal number"
                value = None
                while i < n and text[i] in "0123456789":
                    if value == 0:
                        return "an embedded IPv4 part with a leading zero"
                    value = int(text[i]) if value is None else value * 10 + int(text[i])
                    if value > 255:
                        return "an embedded IPv4 part over 255"
                    i += 1
                seen += 1
                if seen in (2, 4):
                    pieces += 1
            if seen != 4:
                return "an embedded IPv4 address with fewer than 4 parts"
            break
        if i < n and text[i] == ":":
            i += 1
            if i >= n:
                return "a trailing ':'"
        elif i < n:
            return f"{text[i]!r} where a hex digit or ':' belongs"
        pieces += 1
    if not compressed and pieces != 8:
        return f"{pieces} pieces and no '::'"
    return None

"""The certificate a mutual-TLS server verified, as ``rpc.Context`` gives it: the DER bytes, and
the dict ``ssl.SSLSocket.getpeercert()`` gives, over TCP (from ``ssl`` itself) and over QUIC
(where aioquic hands over a ``cryptography`` certificate, written here in ``ssl``'s terms, so a
handler reads the same dict whichever transport the call came by)."""

from __future__ import annotations

import ipaddress
import ssl
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # cryptography comes with aioquic; TCP alone does not need it
    from cryptography import x509

PeerCertificate = tuple["dict[str, Any] | None", "bytes | None"]
NO_CERTIFICATE: PeerCertificate = (None, None)


def verified_peer_certificate(transport: Any) -> PeerCertificate:
    """The peer's certificate as a transport verified it: ``(decoded, der)``, or both None
    when it asked for none (a server without ``client_cafile``) or the connection is plain."""
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None:  # QUIC works it out once per connection, not once per stream
        found: PeerCertificate | None = transport.get_extra_info("verified_peer_certificate")
        return found or NO_CERTIFICATE
    der = ssl_object.getpeercert(binary_form=True)
    decoded = ssl_object.getpeercert()  # empty when the certificate was not verified
    return (decoded, der) if der and decoded else NO_CERTIFICATE


def from_x509(certificate: x509.Certificate) -> PeerCertificate:
    """``(decoded, der)`` of a certificate aioquic received, decoded as ``ssl`` decodes one."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509.oid import AuthorityInformationAccessOID

    decoded: dict[str, Any] = {
        "subject": _name(certificate.subject),
        "issuer": _name(certificate.issuer),
        "version": certificate.version.value + 1,
        "serialNumber": _serial(certificate.serial_number),
        "notBefore": _time(certificate.not_valid_before_utc),
        "notAfter": _time(certificate.not_valid_after_utc),
    }
    der = certificate.public_bytes(Encoding.DER)
    try:
        extensions = certificate.extensions
    except ValueError:  # one cryptography cannot parse: the rest, as far as it goes
        return decoded, der
    try:
        alt_names = extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        pass
    else:
        decoded["subjectAltName"] = tuple(_general_name(name) for name in alt_names)
    try:
        access = extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        pass
    else:
        for key, method in (("OCSP", AuthorityInformationAccessOID.OCSP),
                            ("caIssuers", AuthorityInformationAccessOID.CA_ISSUERS)):
            uris = tuple(d.access_location.value for d in access if d.access_method == method
                         and isinstance(d.access_location, x509.UniformResourceIdentifier))
            if uris:
                decoded[key] = uris
    try:
        points = extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        pass
    else:
        uris = tuple(n.value for p in points for n in p.full_name or ()
                     if isinstance(n, x509.UniformResourceIdentifier))
        if uris:
            decoded["crlDistributionPoints"] = uris
    return decoded, der


def _object_name(dotted: str) -> str:
    """OpenSSL's long name of an OID (``commonName``, ``userId``), as ``ssl`` writes it, or
    the OID itself when OpenSSL has no name for it."""
    try:
        return ssl._ASN1Object(dotted).longname or dotted
    except (ValueError, AttributeError):  # AttributeError: a Python without ssl's private table
        return dotted


def _name(name: x509.Name) -> tuple[tuple[tuple[str, str], ...], ...]:
    return tuple(tuple((_object_name(a.oid.dotted_string), _text(a.value)) for a in rdn) for rdn in name.rdns)


def _text(value: str | bytes) -> str:
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def _serial(number: int) -> str:
    """As OpenSSL prints an ASN.1 integer: upper-case hex, whole bytes, a sign if negative."""
    digits = f"{abs(number):X}"
    return ("-" if number < 0 else "") + digits.rjust(len(digits) + len(digits) % 2, "0")


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _time(at: Any) -> str:
    """As OpenSSL prints an ASN.1 time (``Dec  3 17:50:04 2026 GMT``), month names in English
    whatever the locale."""
    return f"{_MONTHS[at.month - 1]} {at.day:2d} {at.hour:02d}:{at.minute:02d}:{at.second:02d} {at.year} GMT"


def _general_name(name: Any) -> tuple[str, Any]:
    from cryptography import x509

    if isinstance(name, x509.DNSName):
        return "DNS", name.value
    if isinstance(name, x509.IPAddress):
        address = name.value
        if isinstance(address, ipaddress.IPv6Address):  # every group, no ::, as ssl writes them
            return "IP Address", ":".join(f"{int.from_bytes(address.packed[i:i + 2], 'big'):X}"
                                          for i in range(0, 16, 2))
        return "IP Address", str(address)
    if isinstance(name, x509.RFC822Name):
        return "email", name.value
    if isinstance(name, x509.UniformResourceIdentifier):
        return "URI", name.value
    if isinstance(name, x509.DirectoryName):
        return "DirName", _name(name.value)
    if isinstance(name, x509.RegisteredID):
        return "Registered ID", _object_name(name.value.dotted_string)
    return "othername", "<unsupported>"

"""Mutual TLS: a server given ``TLS(client_cafile=...)`` serves only clients presenting a
certificate its CA signed; a client presents ``TLS(certfile=..., keyfile=...)``; a handler
finds the certificate in its ``rpc.Context``. Over TCP and over QUIC, with certificates made
here."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import ipaddress
import pathlib
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

pytest.importorskip("cryptography")

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID
from services import Echo, EchoServer

from jetwire import rpc
from jetwire.rpc import TLS
from jetwire.rpc.certificates import from_x509


def run(main: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(main(), 30))


@dataclasses.dataclass(frozen=True)
class Pair:
    certfile: str
    keyfile: str


@dataclasses.dataclass(frozen=True)
class PKI:
    server_ca: str
    client_ca: str
    server: Pair
    client: Pair  # signed by client_ca
    stranger: Pair  # signed by a CA the server does not trust


def _issue(directory: pathlib.Path, name: str, issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
           *, ca: bool) -> tuple[x509.Name, ec.EllipticCurvePrivateKey, Pair]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_name, issuer_key = issuer if issuer is not None else (subject, key)
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               # key identifiers, and a CA's key usage: Python 3.13's default contexts verify strictly
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                              critical=False))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False),
            critical=True)
    else:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    certificate = builder.sign(issuer_key, hashes.SHA256())
    certfile, keyfile = directory / f"{name}.pem", directory / f"{name}.key"
    certfile.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return subject, key, Pair(str(certfile), str(keyfile))


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    directory = tmp_path_factory.mktemp("mtls")
    server_ca_name, server_ca_key, server_ca = _issue(directory, "server-ca", None, ca=True)
    client_ca_name, client_ca_key, client_ca = _issue(directory, "client-ca", None, ca=True)
    other_ca_name, other_ca_key, _ = _issue(directory, "other-ca", None, ca=True)
    _, _, server = _issue(directory, "server", (server_ca_name, server_ca_key), ca=False)
    _, _, client = _issue(directory, "client", (client_ca_name, client_ca_key), ca=False)
    _, _, stranger = _issue(directory, "stranger", (other_ca_name, other_ca_key), ca=False)
    return PKI(server_ca.certfile, client_ca.certfile, server, client, stranger)


def served_tls(pki: PKI) -> TLS:
    return TLS(certfile=pki.server.certfile, keyfile=pki.server.keyfile, client_cafile=pki.client_ca)


def client_tls(pki: PKI, who: Pair | None) -> TLS:
    if who is None:
        return TLS(cafile=pki.server_ca, server_name="localhost")
    return TLS(cafile=pki.server_ca, server_name="localhost", certfile=who.certfile, keyfile=who.keyfile)


@pytest.fixture(params=["tcp", "quic"])
def scheme(request: pytest.FixtureRequest) -> str:
    if request.param == "quic":
        pytest.importorskip("aioquic")
    return str(request.param)


def test_a_client_with_a_certificate_the_server_trusts_is_served(pki: PKI, scheme: str) -> None:
    async def main() -> None:
        async with await rpc.serve(EchoServer(), f"{scheme}://127.0.0.1:0", tls=served_tls(pki)) as server:
            async with await Echo.connect(server.urls[0], tls=client_tls(pki, pki.client)) as client:
                assert await client.ping("mutual") == "mutual"
            assert server.calls == 1

    run(main)


@pytest.mark.parametrize("who", ["no certificate", "a stranger's"])
def test_a_client_without_a_trusted_certificate_is_refused(pki: PKI, scheme: str, who: str) -> None:
    """The handshake fails (an OSError: ConnectionClosed or ssl's error, as TLS 1.3 reports a
    refused client certificate after the client's side of the handshake); no call runs."""

    async def main() -> None:
        async with await rpc.serve(EchoServer(), f"{scheme}://127.0.0.1:0", tls=served_tls(pki)) as server:
            presented = None if who == "no certificate" else pki.stranger
            with pytest.raises(OSError) as refused:
                client = await Echo.connect(server.urls[0], tls=client_tls(pki, presented), connect_timeout=10)
                try:
                    await client.with_timeout(10).ping("let me in")
                finally:
                    await client.close()
            assert server.calls == 0
            if scheme == "quic":  # the server's reason reaches the client in QUIC's CONNECTION_CLOSE
                assert "certificate" in str(refused.value)

    run(main)


def test_a_server_without_a_client_ca_asks_for_no_certificate(pki: PKI, scheme: str) -> None:
    """A client certificate presented to a server that does not ask for one changes nothing."""

    async def main() -> None:
        tls = TLS(certfile=pki.server.certfile, keyfile=pki.server.keyfile)
        async with await rpc.serve(EchoServer(), f"{scheme}://127.0.0.1:0", tls=tls) as server:
            async with await Echo.connect(server.urls[0], tls=client_tls(pki, pki.stranger)) as client:
                assert await client.ping("x") == "x"

    run(main)


@rpc.service(version="1.0.0")
class Who(rpc.Service):
    async def whoami(self, ctx: rpc.Context = rpc.NO_CONTEXT) -> str: ...


class WhoServer(Who):
    def __init__(self) -> None:
        self.seen: list[rpc.Context] = []

    async def whoami(self, ctx: rpc.Context = rpc.NO_CONTEXT) -> str:
        self.seen.append(ctx)
        return ctx.transport


def _der(certfile: str) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pathlib.Path(certfile).read_text())


async def _contexts(tls: TLS | None, urls: list[str], client: TLS | None, calls: int = 1) -> list[rpc.Context]:
    """The Context of each call: ``calls`` on one connection to each URL."""
    impl = WhoServer()
    async with await rpc.serve(impl, urls, tls=tls) as server:
        for url in server.urls:
            async with await Who.connect(url, tls=client) as who:
                for _ in range(calls):
                    await who.whoami()
    return impl.seen


def test_a_handler_sees_the_client_certificate_the_server_verified(pki: PKI, scheme: str) -> None:
    """r[jetstream.rpc.context.not-on-wire]: the certificate comes from the TLS handshake."""
    seen: list[rpc.Context] = []

    async def main() -> None:
        seen.extend(await _contexts(served_tls(pki), [f"{scheme}://127.0.0.1:0"], client_tls(pki, pki.client)))

    run(main)
    (ctx,) = seen
    assert ctx.transport == scheme
    assert ctx.peer_certificate_der == _der(pki.client.certfile)
    decoded = ctx.peer_certificate
    assert decoded is not None
    assert decoded["subject"] == ((("commonName", "client"),),)
    assert decoded["issuer"] == ((("commonName", "client-ca"),),)
    assert decoded["subjectAltName"] == (("DNS", "localhost"), ("IP Address", "127.0.0.1"))


def test_tcp_and_quic_give_a_handler_the_same_certificate(pki: PKI) -> None:
    """ssl decodes it over TCP, jetwire over QUIC: a handler cannot tell which."""
    pytest.importorskip("aioquic")
    seen: list[rpc.Context] = []

    async def main() -> None:
        seen.extend(await _contexts(served_tls(pki), ["tcp://127.0.0.1:0", "quic://127.0.0.1:0"],
                                    client_tls(pki, pki.client)))

    run(main)
    tcp, quic = seen
    assert (tcp.transport, quic.transport) == ("tcp", "quic")
    assert tcp.peer_certificate == quic.peer_certificate
    assert tcp.peer_certificate_der == quic.peer_certificate_der


def test_the_certificate_is_worked_out_once_per_connection(pki: PKI, scheme: str) -> None:
    seen: list[rpc.Context] = []

    async def main() -> None:
        seen.extend(await _contexts(served_tls(pki), [f"{scheme}://127.0.0.1:0"], client_tls(pki, pki.client),
                                    calls=3))

    run(main)
    assert len(seen) == 3
    assert seen[0].peer_certificate is not None
    assert all(ctx.peer_certificate is seen[0].peer_certificate for ctx in seen)


@pytest.mark.parametrize(("scheme_", "server"), [("tcp", "no TLS"), ("tcp", "no client_cafile"),
                                                ("quic", "no client_cafile")])
def test_without_mutual_tls_a_handler_sees_no_certificate(pki: PKI, scheme_: str, server: str) -> None:
    """Even when the client has one to present: nobody asked for it, nobody verified it."""
    if scheme_ == "quic":
        pytest.importorskip("aioquic")
    seen: list[rpc.Context] = []

    async def main() -> None:
        if server == "no TLS":
            seen.extend(await _contexts(None, [f"{scheme_}://127.0.0.1:0"], None))
        else:
            tls = TLS(certfile=pki.server.certfile, keyfile=pki.server.keyfile)
            seen.extend(await _contexts(tls, [f"{scheme_}://127.0.0.1:0"], client_tls(pki, pki.client)))

    run(main)
    (ctx,) = seen
    assert (ctx.peer_certificate, ctx.peer_certificate_der) == (None, None)


def test_a_quic_certificate_is_decoded_as_ssl_decodes_it(tmp_path: pathlib.Path) -> None:
    """Every part of the dict ssl writes, on a certificate that has them all: names of several
    attributes (one OpenSSL calls by another name than cryptography: userId), IPv6 and email
    and URI alternative names, a serial number with a leading zero, a day of one digit, OCSP,
    CA issuers and CRL distribution points. ssl's own decoder is the reference."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([
        x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COUNTRY_NAME, "NL")]),
        x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Jetwire Tést"),
                                        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "wire")]),
        x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.USER_ID, "u42")]),
        x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COMMON_NAME, "rich")]),
    ])
    uri = x509.UniformResourceIdentifier
    certificate = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(0xABCDE)  # ssl writes whole bytes: 0ABCDE
        .not_valid_before(datetime.datetime(2026, 3, 4, 5, 6, 7, tzinfo=datetime.timezone.utc))
        .not_valid_after(datetime.datetime(2036, 11, 22, 23, 0, 9, tzinfo=datetime.timezone.utc))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("example.org"), x509.IPAddress(ipaddress.ip_address("2001:db8::1")),
            x509.IPAddress(ipaddress.ip_address("10.0.0.7")), x509.RFC822Name("ops@example.org"),
            uri("https://example.org/who"), x509.DirectoryName(subject),
        ]), critical=False)
        .add_extension(x509.AuthorityInformationAccess([
            x509.AccessDescription(AuthorityInformationAccessOID.OCSP, uri("http://ocsp.example.org")),
            x509.AccessDescription(AuthorityInformationAccessOID.CA_ISSUERS, uri("http://ca.example.org/ca.crt")),
        ]), critical=False)
        .add_extension(x509.CRLDistributionPoints([
            x509.DistributionPoint([uri("http://crl.example.org/1.crl")], None, None, None),
        ]), critical=False)
        .sign(key, hashes.SHA256())
    )
    pem = tmp_path / "rich.pem"
    pem.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    reference: dict[str, Any] = ssl._ssl._test_decode_cert(str(pem))  # type: ignore[attr-defined]
    decoded, der = from_x509(certificate)
    assert decoded == reference
    assert der == _der(str(pem))

"""Mutual TLS: a server given ``TLS(client_cafile=...)`` serves only clients presenting a
certificate its CA signed; a client presents ``TLS(certfile=..., keyfile=...)``. Over TCP and
over QUIC, with certificates made here."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import ipaddress
import pathlib
from collections.abc import Awaitable, Callable

import pytest

pytest.importorskip("cryptography")

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from services import Echo, EchoServer

from jetwire import rpc
from jetwire.rpc import TLS


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

"""HTTPS for the appliance: a self-signed certificate made on first start, and the server context.

An appliance has no public name to get a CA-signed certificate for, so it makes its own (ECDSA
P-256: fast to handshake on a small ARM core) valid for ~10 years, with the names it is reached by
as SANs. Users pin or accept it once; ``ssl_context`` refuses anything older than TLS 1.2.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import secrets
import socket
import ssl
from pathlib import Path

from appliance.auth import write_private

VALIDITY_DAYS = 3650


def _san_entries(hostnames: list[str]) -> tuple[list[str], list[str]]:
    """Split names into DNS names and IP literals; always add localhost, 127.0.0.1 and ::1."""
    dns: list[str] = []
    ips: list[str] = []
    for name in [*hostnames, "localhost", "127.0.0.1", "::1"]:
        name = name.strip().strip("[]")
        if not name:
            continue
        try:
            ip = str(ipaddress.ip_address(name))
        except ValueError:
            if name.lower() not in dns:
                dns.append(name.lower())
            continue
        if ip not in ips:
            ips.append(ip)
    return dns, ips


def default_hostnames(listen_host: str = "") -> list[str]:
    """Names a browser will likely use: the host name, its mDNS ``.local`` form, the listen IP."""
    names = [socket.gethostname()]
    if names[0] and "." not in names[0]:
        names.append(f"{names[0]}.local")
    if listen_host not in ("", "0.0.0.0", "::"):
        names.append(listen_host)
    return [n for n in names if n]


def ensure_certificate(cert: Path, key: Path, hostnames: list[str]) -> None:
    """Create a self-signed cert + key unless both exist (an existing pair is never replaced).

    The key is written 0600 atomically; the certificate 0644. CPU cost ~10 ms: call it at start-up
    (or in a thread) before the event loop serves requests.
    """
    if cert.is_file() and key.is_file():
        return
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    dns, ips = _san_entries(hostnames)
    private_key = ec.generate_private_key(ec.SECP256R1())
    common_name = next((n for n in dns if n != "localhost"), None) or (dns or ["ipkvm"])[0]
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64]),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ipkvm appliance"),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    public_key = private_key.public_key()
    san: list[x509.GeneralName] = [x509.DNSName(n) for n in dns]
    san += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public_key)
        .serial_number(int.from_bytes(secrets.token_bytes(16), "big") >> 1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=VALIDITY_DAYS))
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), critical=False
        )
        .sign(private_key, hashes.SHA256())
    )
    for path in (cert, key):
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_private(
        key,
        private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    write_private(cert, certificate.public_bytes(serialization.Encoding.PEM))
    os.chmod(cert, 0o644)


def ssl_context(cert: Path, key: Path) -> ssl.SSLContext:
    """Server-side context: TLS 1.2+ with Python's secure defaults (no compression, PFS)."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(certfile=str(cert), keyfile=str(key))
    return ctx

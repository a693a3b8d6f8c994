"""A throw-away self-signed certificate for the emulator's ``https://`` mode.

Clients that parse registry entries insist on ``https://`` URLs (PyUNICORE's ``Registry``),
so the emulator must be able to speak TLS; PyUNICORE does not verify certificates by
default, and tests that do can point ``verify=`` at :attr:`SelfSignedCertificate.cert_file`.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
import logging
import os
import ssl
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SelfSignedCertificate:
    """PEM files of a key and a certificate for ``localhost``/``127.0.0.1``."""

    cert_file: str
    key_file: str
    subject_dn: str
    not_after: _dt.datetime

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert_file, self.key_file)
        return ctx

    def pem(self) -> str:
        with open(self.cert_file, encoding="ascii") as f:
            return f.read()


def generate(directory: str, common_name: str = "localhost",
             days: int = 30) -> SelfSignedCertificate:
    """Create a fresh EC P-256 key and certificate in ``directory`` (mode 0600 for the key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "UNICORE"),
        x509.NameAttribute(NameOID.COUNTRY_NAME, "EU"),
    ])
    now = _dt.datetime.now(_dt.timezone.utc)
    not_after = now + _dt.timedelta(days=days)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _dt.timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1")),
        ]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    os.makedirs(directory, exist_ok=True)
    cert_file = os.path.join(directory, "server-cert.pem")
    key_file = os.path.join(directory, "server-key.pem")
    with open(cert_file, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    dn = f"CN={common_name},O=UNICORE,C=EU"
    log.debug("generated self-signed certificate %s", dn)
    return SelfSignedCertificate(cert_file, key_file, dn, not_after)

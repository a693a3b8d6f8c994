"""TLS material for the demo Auth endpoint (``AuthServer(tls=True)``).

The standard library cannot create certificates, so a throw-away self-signed one
(``CN``/``subjectAltName`` = the listen host, valid two days) is generated with the
``openssl`` command-line tool.  Callers can instead pass their own ``ssl.SSLContext`` or
``(certfile, keyfile)``.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import ssl
import subprocess
import tempfile

TLSSetting = bool | ssl.SSLContext | tuple[str, str] | None


def _alt_name(host: str) -> str:
    try:
        ipaddress.ip_address(host)
        return f"IP:{host},DNS:localhost"
    except ValueError:
        return f"DNS:{host},IP:127.0.0.1"


def self_signed_files(host: str, directory: str) -> tuple[str, str]:
    """Create ``cert.pem``/``key.pem`` in ``directory``; returns their paths."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("tls=True needs the 'openssl' tool; pass an ssl.SSLContext or (cert, key) instead")
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", key, "-out", cert, "-days", "2", "-subj", f"/CN={host}", "-addext",
         f"subjectAltName={_alt_name(host)}"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    return cert, key


def server_context(tls: TLSSetting, host: str) -> tuple[ssl.SSLContext, str | None]:
    """An SSL server context for ``tls``; also the certificate path when one was generated
    or given (clients can use it as ``verify=<path>``)."""
    if isinstance(tls, ssl.SSLContext):
        return tls, None
    if isinstance(tls, tuple):
        cert, key = tls
    else:
        cert, key = self_signed_files(host, tempfile.mkdtemp(prefix="uftpd-auth-tls-"))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context, cert

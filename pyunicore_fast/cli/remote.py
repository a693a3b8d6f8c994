"""UFTP sessions for command line locations: an ``uftpcore.Endpoint`` per location.

Auth-server URLs become endpoints that authenticate (and re-authenticate) themselves;
storage URLs (``.../rest/core/storages/NAME:path``) ask UNICORE/X for a persistent UFTP
export of the whole storage, with a client-chosen secret, as the Java client does.
"""

from __future__ import annotations

import logging
import os
import secrets
import string
from typing import Any

from pyunicore_fast.cli import auth
from pyunicore_fast.cli.base import tls_verify
from pyunicore_fast.cli.locations import UFTPPath

log = logging.getLogger(__name__)

DEFAULT_ALGORITHM = "AES"


def encryption_algorithm(enabled: bool) -> str | None:
    """``-E``: the algorithm from ``UFTP_ENCRYPTION_ALGORITHM`` (AES unless set), else None."""
    if not enabled:
        return None
    algo = (os.environ.get("UFTP_ENCRYPTION_ALGORITHM") or DEFAULT_ALGORITHM).strip().upper()
    if algo not in ("AES", "BLOWFISH"):
        from pyunicore_fast.cli.errors import UsageError

        raise UsageError(f"UFTP_ENCRYPTION_ALGORITHM={algo}: use AES or BLOWFISH")
    return algo


def make_endpoint(loc: UFTPPath, credential: Any, *, streams: int = 1, encryption: str | None = None,
                  compress: bool = False, timeout: float = 30.0) -> Any:
    """An ``uftpcore.Endpoint`` serving sessions rooted at ``loc.base_dir``."""
    import uftpcore

    if loc.kind == "storage":
        return _storage_endpoint(loc, credential, streams=streams, encryption=encryption, compress=compress,
                                 timeout=timeout)
    return uftpcore.Endpoint(auth_url=loc.service_url, base_dir=loc.base_dir, streams=streams, encryption=encryption,
                             compress=compress, timeout=timeout, verify=tls_verify(),
                             **auth.endpoint_auth_kwargs(credential))


def _storage_endpoint(loc: UFTPPath, credential: Any, *, streams: int, encryption: str | None, compress: bool,
                      timeout: float) -> Any:
    """POST ``<storage>/exports`` (protocol UFTP, spec §1.7) for a persistent session at the
    storage root; UNICORE/X generates the key for encrypted sessions (Blowfish)."""
    import base64

    import uftpcore
    from pyunicore_fast.client import Transport, _client_address

    secret = "".join(secrets.choice(string.ascii_lowercase) for _ in range(20))
    extra = {"uftp.secret": secret, "uftp.client.host": _client_address(loc.service_url),
             "uftp.persistent": "true", "uftp.streams": str(streams),
             "uftp.compression": "true" if compress else "false"}
    if encryption:
        extra["uftp.encryption"] = "true"
    body = {"file": "__uftp_session__", "protocol": "UFTP", "extraParameters": extra}
    transport = Transport(credential, verify=tls_verify(), timeout=timeout)
    with transport.post(url=loc.service_url + "/exports", json=body) as resp:
        reply = resp.json()
    try:
        host = str(reply["uftp.server.host"]).replace(",", " ").split()[0]
        port = int(reply["uftp.server.port"])
    except (KeyError, ValueError, IndexError):
        raise OSError(f"{loc.service_url}/exports did not return UFTP server data") from None
    key = None
    if encryption:
        if not reply.get("uftp.encryption_key"):
            raise OSError(f"{loc.service_url} does not support encrypted UFTP exports")
        key = base64.b64decode(str(reply["uftp.encryption_key"]))
    ticket = uftpcore.Ticket(host=host, port=port, secret=secret, key=key,
                             algo=("AES" if key is not None and len(key) in (32, 40, 48) else "BLOWFISH") if key else None,
                             streams=int(reply.get("uftp.streams") or streams),
                             compress=str(reply.get("uftp.compression", "false")).lower() == "true",
                             persistent=True, base_dir="")
    return uftpcore.Endpoint(ticket=ticket, streams=streams, timeout=timeout)

"""Helpers shared by the tests of ``uftpcore.transfer`` (the bulk API)."""

from __future__ import annotations

import contextlib
import os

import uftpcore

from .conftest import new_secret

#: tiny backoff so retry tests stay fast
FAST = {"backoff": (0.01, 0.05)}


@contextlib.contextmanager
def job_endpoint(uftpd, root, impl, *, keep: bool = True, user: str = "tester", **kw):
    """An Endpoint on a persistent job rooted at ``root``.

    uftpd forgets a persistent job when its last session closes, so ``keep`` holds one session
    open for the whole test: several transfer calls can then share the secret.
    """
    secret = new_secret()
    uftpd.add_job(secret=secret, user=user, file=str(root) + "/", client_ip="127.0.0.1", persistent=True)
    ep = uftpcore.Endpoint.from_secret("127.0.0.1", uftpd.port, secret, implementation=impl, timeout=10, **kw)
    keeper = ep.session() if keep else None
    try:
        yield ep
    finally:
        if keeper is not None:
            keeper.close()


def leftovers(directory) -> list[str]:
    """Temporary or resume files left in ``directory`` (recursively)."""
    out = []
    for dirpath, _, names in os.walk(directory):
        out += [os.path.join(dirpath, n) for n in names if ".uftp-" in n]
    return out


def write_random(path, size: int, seed: int = 0) -> bytes:
    import numpy as np

    data = np.random.default_rng(seed).integers(0, 256, size=size, dtype=np.uint8).tobytes()
    with open(path, "wb") as f:
        f.write(data)
    return data

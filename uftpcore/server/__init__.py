"""UFTPD-compatible test/demo server and a minimal Auth server in front of it.

``UFTPD`` reproduces uftpd 3.5.3 as specified in ``docs/uftp-protocol.md`` §13 (command
port, login, every FTP command, listing formats, range state machine, data connections)
so that clients can be tested against the real server's behaviour, quirks included.
It serves files as the OS user running it — it is a test and demo tool, not a
production file server.  ``AuthServer`` is the ``/rest/auth`` endpoint of §1.3/§15.4.

>>> with UFTPD() as srv, AuthServer(srv, users={"demouser": "test123"}) as auth:
...     print(auth.url)  # doctest: +SKIP
"""

from .authserver import AuthServer
from .errors import JobError
from .uftpd import UFTPD

__all__ = ["UFTPD", "AuthServer", "JobError"]

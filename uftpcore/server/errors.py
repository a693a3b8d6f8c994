"""Exceptions used inside the test/demo UFTPD server.

They are distinct from :mod:`uftpcore.errors` (the client's exceptions): a server-side
error is not a failure of this process, it is a *reply* that has to be rendered to the
client in uftpd's exact wording.
"""

from __future__ import annotations


class CommandError(Exception):
    """A command failed with a specific FTP reply code.

    The session loop renders it as ``<code> Error processing command '<VERB>': <message>``
    (spec §3.1).  ``close_data`` mirrors uftpd's ``ACTION_CLOSE_DATA``: a few failures
    (LIST/MLSD on a missing directory, MLST on a missing path) also drop the open data
    connections.
    """

    def __init__(self, message: str, code: int = 500, close_data: bool = False):
        super().__init__(message)
        self.message = message
        self.code = code
        self.close_data = close_data


class JobError(ValueError):
    """A transfer request was refused (duplicate secret, per-user limit, ...).

    The message is exactly the text uftpd puts after ``ERROR::`` on the command port.
    """


class SessionEnd(Exception):
    """Ends an FTP session silently (passive accept timeout, wrong data peer, QUIT)."""

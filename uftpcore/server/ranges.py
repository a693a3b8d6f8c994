"""The RANG / REST / ALLO state machine of a session (spec §3.7).

State: ``offset`` (0), ``length`` (-1 = unset) and ``have_range``.  RANG uses UFTP's
legacy *exclusive* end; ALLO without a preceding RANG resets the offset to 0; a completed
transfer resets everything, a failed command resets nothing.  Uploads truncate the target
unless ``have_range`` is set — that single flag produces the whole truncation table.
"""

from __future__ import annotations

from .errors import CommandError


class RangeState:
    """Offset/length bookkeeping shared by RETR, STOR, APPE and HASH."""

    __slots__ = ("have_range", "length", "offset")

    def __init__(self) -> None:
        self.offset = 0
        self.length = -1
        self.have_range = False

    def reset(self) -> None:
        """Back to defaults (after every completed transfer, and ``RANG 1 0``)."""
        self.offset = 0
        self.length = -1
        self.have_range = False

    def rang(self, params: str | None) -> str:
        """``RANG a b``: offset a, length b-a (end exclusive); returns the 350 reply."""
        tokens = params.split(" ")  # type: ignore[union-attr]  # bare RANG -> AttributeError, as uftpd
        try:
            first = int(tokens[0])
            end = int(tokens[1])
        except (ValueError, IndexError):
            raise CommandError("Argument syntax error", 501) from None
        if first == 1 and end == 0:
            self.reset()
            return "350 Resetting range"
        self.offset = first
        self.length = end - first
        self.have_range = True
        return f"350 Restarting at {first}. End byte range at {end}"

    def rest(self, params: str | None) -> str:
        """``REST a``: offset a, range flag cleared, length kept."""
        try:
            offset = int(params)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise CommandError("Argument syntax error", 501) from None
        self.have_range = False
        self.offset = offset
        return f"350 Restarting at {offset}."

    def allo(self, params: str | None) -> str:
        """``ALLO n``: with a range only the length changes, otherwise offset 0 + length n."""
        count = int(params)  # type: ignore[arg-type]  # errors become 500 with Python's text
        if self.have_range:
            self.length = count
        else:
            self.offset = 0
            self.length = count
        return f"200 OK Will read up to {self.length} bytes from data connection."

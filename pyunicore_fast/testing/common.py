"""Small helpers every emulator module needs: UNICORE time format, links, paging, fields.

They live in one place so that all resources render times, ``_links`` and collection pages
exactly the same way, as the real server's shared renderer (``RESTRendererBase``,
``PagingHelper``) does.
"""

from __future__ import annotations

import datetime as _dt
import fnmatch
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeVar
from urllib.parse import urlencode

from pyunicore_fast.testing.routing import HTTPError, Request

#: UNICORE's ``yyyy-MM-dd'T'HH:mm:ssZ`` (numeric zone offset without a colon).
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S%z"


def iso_time(t: float | _dt.datetime | None = None) -> str:
    """Format a POSIX time (default: now) the way the server does, in local time."""
    if t is None:
        dt = _dt.datetime.now().astimezone()
    elif isinstance(t, _dt.datetime):
        dt = t.astimezone()
    else:
        dt = _dt.datetime.fromtimestamp(t).astimezone()
    return dt.strftime(TIME_FORMAT)


def parse_time(text: str) -> float:
    """Parse the UNICORE time format (also accepting ``+02:00`` and a missing zone)."""
    text = text.strip()
    for fmt in (TIME_FORMAT, "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S%z", "%Y-%m-%d %H:%M:%S",
                "%Y-%m-%dT%H:%M:%S.%f%z"):
        try:
            dt = _dt.datetime.strptime(text, fmt)
        except ValueError:
            continue
        if dt.tzinfo is None:
            dt = dt.astimezone()
        return dt.timestamp()
    try:
        return _dt.datetime.fromisoformat(text).timestamp()
    except ValueError as exc:
        raise ValueError(f"Cannot parse date '{text}', expected format yyyy-MM-dd'T'HH:mm:ssZ") from exc


def link(href: str, description: str | None = None) -> dict[str, str]:
    """One ``_links`` entry."""
    entry = {"href": href}
    if description:
        entry["description"] = description
    return entry


def as_bool(value: Any, default: bool = False) -> bool:
    """The server accepts JSON booleans and the strings "true"/"false" alike."""
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("true", "yes", "1")


def parse_tags(value: Any) -> list[str]:
    """Tags come as a JSON list or a comma/space separated string."""
    if value is None:
        return []
    if isinstance(value, str):
        return [t for t in re.split(r"[,\s+]+", value) if t]
    return [str(t) for t in value]


def paging_params(req: Request, default_num: int = 200) -> tuple[int, int]:
    """``offset``/``num`` of a collection request; negative values are an error (as upstream)."""
    try:
        offset = int(req.query_value("offset", "0"))
        num = int(req.query_value("num", str(default_num)))
    except ValueError as exc:
        raise HTTPError(500, f"Invalid paging parameter: {exc}") from exc
    if offset < 0 or num < 0:
        raise HTTPError(500, "Paging parameters 'offset' and 'num' must not be negative")
    return offset, num


def page(items: Sequence[Any], base_url: str, req: Request, default_num: int = 200,
         extra_query: dict[str, str] | None = None) -> tuple[list[Any], dict[str, dict[str, str]]]:
    """Cut one page out of ``items`` and build the ``self``/``next``/``previous`` links."""
    offset, num = paging_params(req, default_num)
    chosen = list(items[offset:offset + num])
    query = dict(extra_query or {})

    def url(o: int, n: int) -> str:
        return base_url + "?" + urlencode({**query, "offset": o, "num": n})

    links = {"self": link(url(offset, num))}
    if offset + num < len(items):
        links["next"] = link(url(offset + num, num))
    if offset > 0:
        links["previous"] = link(url(max(0, offset - num), num))
    return chosen, links


def filter_fields(props: dict[str, Any], req: Request) -> dict[str, Any]:
    """Apply the ``fields=a,b`` / ``fields=!a`` query parameter (``_links`` counts as a field)."""
    spec = req.query_value("fields")
    if not spec:
        return props
    names = [f for f in re.split(r"[,+\s]+", spec) if f]
    excluded = {n[1:] for n in names if n.startswith("!")}
    included = {n for n in names if not n.startswith("!")}
    out = {}
    for key, value in props.items():
        if key in excluded:
            continue
        if included and key not in included:
            continue
        out[key] = value
    return out


def has_tags(resource_tags: Iterable[str], wanted: Iterable[str]) -> bool:
    """A resource matches a ``tags=`` query if it carries every requested tag."""
    have = set(resource_tags)
    return all(t in have for t in wanted)


class _Owned(Protocol):
    owner: str


_T = TypeVar("_T", bound=_Owned)


def owned_entry(lock: threading.Lock | threading.RLock, table: Mapping[str, _T], key: str,
                identity: Any) -> _T:
    """``table[key]`` if ``identity`` owns it: 404 when unknown, 403 when someone else's.

    Transfers and workflows carry no ACL, so ownership is their whole access rule; the site
    lock is taken because background threads add and remove entries.
    """
    with lock:
        entry = table.get(key)
    if entry is None:
        raise HTTPError(404)
    if identity is None or entry.owner != identity.user:
        raise HTTPError(403)
    return entry


def owned_entries(lock: threading.Lock | threading.RLock, table: Mapping[str, _T],
                  identity: Any) -> list[_T]:
    """The entries of ``table`` that ``identity`` owns: what its collection listing shows."""
    with lock:
        entries = list(table.values())
    return [e for e in entries if e.owner == identity.user]


def wildcard_match(name: str, pattern: str) -> bool:
    """Shell-style wildcard match (``*``, ``?``) as the file-transfer code uses it."""
    return fnmatch.fnmatchcase(name, pattern)


def has_wildcard(text: str) -> bool:
    return any(c in text for c in "*?[")

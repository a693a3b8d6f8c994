"""Storage commands ``ls``, ``cp``, ``cat`` (PyUNICORE's ``pyunicore.cli.io``), on two kinds of URL.

* ``https://.../rest/core/storages/<id>/files/<path>`` — PyUNICORE's REST file URLs, with
  PyUNICORE's behaviour (and local → remote uploads, which 1.3.4+ silently skip);
* ``https://.../rest/auth/<NAME>:<path>`` and ``.../rest/core/storages/<id>:<path>`` — UFTP,
  with the Java ``uftp`` client's options (``cp`` lives in :mod:`.copy`).
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import pathlib
import stat as _stat
import sys
import time
from collections.abc import Iterator
from os.path import basename
from typing import Any
from urllib.parse import urlparse

from pyunicore_fast.cli import common, locations
from pyunicore_fast.cli.base import Base
from pyunicore_fast.cli.errors import UsageError
from pyunicore_fast.cli.locations import LocalPath, RestPath, UFTPPath


class IOBase(Base):
    """Base class for storage related commands."""

    def get_group(self) -> str:
        return "Data management"

    def parse_location(self, location: str) -> tuple[str | None, str]:
        """PyUNICORE's ``(storage_url or None, path)`` split of a REST file URL."""
        loc = locations.parse(location)
        if isinstance(loc, RestPath):
            return loc.storage_url, loc.path
        return None, location

    def storage(self, url: str) -> Any:
        from pyunicore_fast.client import Storage

        return Storage(self.transport(), storage_url=url)


class LS(IOBase):
    """List remote directories."""

    name = "ls"

    def add_command_args(self) -> None:
        self.parser.add_argument("remote_dirs", help="Remote directories to list (REST or UFTP URLs)", nargs="*")
        self.parser.add_argument("-l", "--long", required=False, action="store_true", help="detailed listing")
        common.add_output_args(self.parser)

    def get_synopsis(self) -> str:
        return ("List directories on UNICORE storage(s): REST file URLs (.../rest/core/storages/ID/files/PATH)\n"
                "or UFTP URLs (https://HOST:PORT/rest/auth/NAME:/PATH).")

    def get_description(self) -> str:
        return "list directories"

    def run(self, args: list[str]) -> int:
        self.setup(args)
        listings: list[dict[str, Any]] = []
        for text in self.args.remote_dirs:
            loc = locations.parse(text)
            if isinstance(loc, UFTPPath):
                listings.extend(self._ls_uftp(loc))
            elif isinstance(loc, RestPath):
                listings.append(self._ls_rest(loc))
            else:
                raise UsageError(f"not a remote location: {text}")
        if self.args.json:
            common.print_json({"schema": common.SCHEMA_VERSION, "command": "ls", "listings": listings})
        return 0

    # -- UFTP -------------------------------------------------------------------------------------
    def _ls_uftp(self, loc: UFTPPath) -> list[dict[str, Any]]:
        out = []
        with common.session_for(loc, self.credential, self.args.timeout) as session:
            for path in common.expand(session, loc):
                self.verbose(f"Listing: {loc.url_of(path)}")
                info = session.stat(path)
                if info.is_dir:
                    entries = sorted(session.listdir(path), key=lambda i: i.name)
                else:  # MLST names the file by its full server path: show the name given
                    entries = [_renamed(info, os.path.basename(path.rstrip("/")) or path)]
                out.append({"url": loc.url_of(path), "is_dir": info.is_dir,
                            "entries": [common.info_dict(e, common.join(path, e.name) if info.is_dir else path)
                                        for e in entries]})
                if not self.args.json:
                    for e in entries:
                        print(self._format_uftp(e) if self.args.long else e.name + ("/" if e.is_dir else ""))
        return out

    @staticmethod
    def _format_uftp(info: Any) -> str:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(info.mtime)) if info.mtime else "-"
        return f"{_stat.filemode(info.mode)} {info.size:>14} {when} {info.name}"

    # -- REST (PyUNICORE) -------------------------------------------------------------------------
    def _ls_rest(self, loc: RestPath) -> dict[str, Any]:
        self.verbose(f"Listing: {loc.path} on {loc.storage_url}")
        storage = self.storage(loc.storage_url)
        p = storage.stat(loc.path)
        entries: list[dict[str, Any]] = []
        if p.isdir():
            content = storage.contents(path=p.name)["content"]
            for name, props in content.items():
                entries.append(_rest_entry(name, props))
                if not self.args.json:
                    print(self._detailed(name, props) if self.args.long else name)
        else:
            entries.append(_rest_entry(p.name, p.properties))
            if not self.args.json:
                print(self._detailed(p.name, p.properties) if self.args.long else p.name)
        return {"url": str(loc), "is_dir": p.isdir(), "entries": entries}

    def _detailed(self, name: str, p: dict[str, Any]) -> str:
        d = "d" if p.get("isDirectory") is True else "-"
        return f"{d}{p.get('permissions', '')} {p.get('size', 0)} {p.get('lastAccessed', '')} {name}"

    def print_single(self, p: Any) -> None:
        print(self._detailed(p.name, p.properties) if self.args.long else p.name)


def _renamed(info: Any, name: str) -> Any:
    import dataclasses

    return dataclasses.replace(info, name=name)


def _rest_entry(name: str, props: dict[str, Any]) -> dict[str, Any]:
    return {"name": name.rstrip("/").rsplit("/", 1)[-1] or name, "path": name, "size": int(props.get("size", 0) or 0),
            "mtime": props.get("lastAccessed"), "is_dir": bool(props.get("isDirectory")),
            "perm": props.get("permissions", "")}


class CP(IOBase):
    """Copy file(s): REST storages as PyUNICORE does, UFTP as the Java ``uftp`` client does."""

    name = "cp"

    def add_command_args(self) -> None:
        from pyunicore_fast.cli import copy

        copy.add_arguments(self.parser)

    def get_synopsis(self) -> str:
        from pyunicore_fast.cli import copy

        return copy.SYNOPSIS

    def get_description(self) -> str:
        return "copy files"

    def run(self, args: list[str]) -> int:
        from pyunicore_fast.cli import copy

        self.setup(copy.preprocess(args))
        sources = [locations.parse(s) for s in self.args.source]
        target = locations.parse(self.args.target)
        if isinstance(target, UFTPPath) and any(isinstance(s, LocalPath) for s in sources):
            target = locations.as_upload_target(target)
        if any(isinstance(x, UFTPPath) for x in [*sources, target]):
            return copy.UFTPCopy(self, sources, target).run()
        copy.reject_uftp_only_options(self.args)
        return self._run_rest(sources, target)

    # -- REST (PyUNICORE semantics) ---------------------------------------------------------------------
    def _run_rest(self, sources: list[locations.Location], target: locations.Location) -> int:
        params = self._parse_extra_params(self.args.extra_parameters)
        controller = None
        for src_text, src in zip(self.args.source, sources):
            if isinstance(src, RestPath):
                if locations.is_remote_url(self.args.target) and not isinstance(target, LocalPath):
                    controller = self._stage_out(src.storage_url, src.path, self.args.target, params)
                elif isinstance(target, RestPath):
                    controller = self._stage_out(src.storage_url, src.path, str(target), params)
                else:
                    self._download(src.storage_url, src.path, str(target))
            elif isinstance(target, RestPath):
                if locations.is_remote_url(src_text):
                    controller = self._stage_in(src_text, target.storage_url, target.path, params)
                else:
                    self._upload(src_text, target.storage_url, target.path)
            else:
                raise UsageError(f"Cannot process: {src_text} -> {self.args.target} (no remote location)")
        if controller is not None:
            if self.args.asynchronous:
                print(controller.resource_url)
            else:
                self.verbose(f"Waiting for transfer {controller.resource_url} to finish...")
                status = controller.poll()
                if str(getattr(status, "value", status)).upper() == "FAILED":
                    raise OSError(f"transfer {controller.resource_url} failed: "
                                  f"{controller.properties.get('statusMessage', '')}")
        return 0

    def _download(self, source_endpoint: str, source_path: str, target_path: str) -> None:
        storage = self.storage(source_endpoint)
        base_dir, file_pattern = split_path(source_path)
        found = False
        for fname in crawl_remote(storage, base_dir, file_pattern):
            found = True
            p = storage.stat(fname)
            if target_path == "-":
                target: Any = os.fdopen(sys.stdout.fileno(), "wb", closefd=False)
            elif os.path.isdir(target_path):
                target = normalized(target_path + "/" + basename(fname))
            else:
                target = target_path
            self.verbose(f"... {source_endpoint}/files{fname} -> {target_path}")
            p.download(target)
            if target_path == "-":
                target.close()
        if not found:
            raise FileNotFoundError(f"no such file: {source_endpoint}/files{source_path}")

    def _upload(self, source_path: str, target_endpoint: str, target_path: str) -> None:
        if not os.path.isfile(source_path):
            raise FileNotFoundError(f"{source_path}: No such file")
        storage = self.storage(target_endpoint)
        if target_path.endswith("/"):
            target = normalized(target_path + os.path.basename(source_path))
        else:
            target = normalized(target_path)
        self.verbose(f"... {source_path} -> {target_endpoint}/files{target}")
        storage.upload(source_path, destination=target)

    def _stage_in(self, source_url: str, target_endpoint: str, target_path: str,
                  params: dict[str, str] | None = None) -> Any:
        storage = self.storage(target_endpoint)
        if target_path.endswith("/"):
            target = normalized(target_path + os.path.basename(urlparse(source_url).path))
        else:
            target = normalized(target_path)
        self.verbose(f"... {source_url} -> {target_endpoint}: {target}")
        return storage.receive_file(remote_url=source_url, file_name=target, additional_parameters=params or {})

    def _stage_out(self, source_endpoint: str, source_path: str, target_url: str,
                   params: dict[str, str] | None = None) -> Any:
        storage = self.storage(source_endpoint)
        self.verbose(f"... {source_endpoint}: {source_path} -> {target_url}")
        return storage.send_file(remote_url=target_url, file_name=source_path, additional_parameters=params or {})

    def _is_remote(self, location: str) -> bool:
        return locations.is_remote_url(location)

    def _parse_extra_params(self, param_spec: str | None) -> dict[str, str]:
        res: dict[str, str] = {}
        if param_spec:
            for kv in param_spec.split(","):
                if "=" not in kv:
                    raise UsageError(f"-E/--extra-parameters: expected key=value, got '{kv}'")
                k, v = kv.split("=", 1)
                res[k] = v
        return res


class Cat(IOBase):
    """Print remote file(s) to standard output."""

    name = "cat"

    def add_command_args(self) -> None:
        self.parser.add_argument("source", nargs="+", help="Source(s): REST or UFTP URLs")
        self.parser.add_argument("--timeout", type=float, default=30.0, help=argparse.SUPPRESS)

    def get_synopsis(self) -> str:
        return "Prints remote file(s) to standard output"

    def get_description(self) -> str:
        return "cat remote files"

    def run(self, args: list[str]) -> int:
        self.setup(args)
        out = os.fdopen(sys.stdout.fileno(), "wb", closefd=False)
        try:
            for s in self.args.source:
                loc = locations.parse(s)
                if isinstance(loc, RestPath):
                    self._cat(loc.storage_url, loc.path, out)
                elif isinstance(loc, UFTPPath):
                    with common.session_for(loc, self.credential, self.args.timeout) as session:
                        for path in common.expand(session, loc):
                            session.download_fileobj(path, out)
                else:
                    raise UsageError(f"Not a remote UNICORE file: {s}")
                out.flush()
        finally:
            out.close()
        return 0

    def _cat(self, source_endpoint: str, source_path: str, out: Any) -> None:
        storage = self.storage(source_endpoint)
        base_dir, file_pattern = split_path(source_path)
        for fname in crawl_remote(storage, base_dir, file_pattern):
            self.verbose(f"... {source_endpoint}/files{fname}")
            storage.stat(fname).download(out)


def normalized(path: str) -> str:
    return pathlib.Path(path).as_posix()


def split_path(path: str) -> tuple[str, str]:
    pattern = os.path.basename(path)
    base = os.path.dirname(path)
    if len(base) == 0:
        base = "/"
    return base, pattern


def crawl_remote(storage: Any, base_dir: str, file_pattern: str = "*", recurse: bool = False, all: bool = False,
                 files_only: bool = True, _level: int = 0) -> Iterator[str]:
    """Matching paths below ``base_dir`` (PyUNICORE's generator, with its recursion fixed)."""
    if not files_only and _level == 0:
        bd = storage.stat(base_dir)
        if bd.isdir():
            yield normalized(base_dir)
    file_list = storage.contents(base_dir)["content"]
    for fname in file_list:
        x = file_list[fname]
        if x["isDirectory"] is False or not files_only:
            if not fnmatch.fnmatchcase(os.path.basename(fname.rstrip("/")), file_pattern):
                continue
            yield fname
        if x["isDirectory"] and (all or (recurse and fnmatch.fnmatch(fname, file_pattern))):
            yield from crawl_remote(storage, base_dir + "/" + fname, file_pattern, recurse=recurse, all=all,
                                    files_only=files_only, _level=_level + 1)


__all__ = ["CP", "LS", "Cat", "IOBase", "crawl_remote", "normalized", "split_path"]

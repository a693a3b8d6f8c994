"""``mkdir``, ``rm`` and ``checksum`` on UFTP locations (and REST storages for mkdir/rm).

``checksum`` asks the server (uftpd's ``HASH``) so that nothing has to be downloaded to
check a file; a local path is hashed locally with the same algorithm, so the two outputs
can be compared with ``diff``.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from pyunicore_fast.cli import common, locations
from pyunicore_fast.cli.base import Base
from pyunicore_fast.cli.errors import UsageError
from pyunicore_fast.cli.locations import LocalPath, RestPath, UFTPPath

ALGORITHMS = ("MD5", "SHA-1", "SHA-256", "SHA-512")


class Mkdir(Base):
    """Create remote directories."""

    name = "mkdir"

    def add_command_args(self) -> None:
        self.parser.add_argument("dirs", nargs="+", metavar="URL", help="Directories to create (UFTP or REST URLs)")
        self.parser.add_argument("-p", "--parents", action="store_true",
                                 help="Create missing parent directories; no error if it exists")
        common.add_output_args(self.parser)

    def get_synopsis(self) -> str:
        return "Creates remote directories, e.g. https://HOST:PORT/rest/auth/NAME:/data/newdir"

    def get_description(self) -> str:
        return "create remote directories"

    def get_group(self) -> str:
        return "Data management"

    def run(self, args: list[str]) -> int:
        self.setup(args)
        done = []
        for text in self.args.dirs:
            loc = common.parse_item(text)
            if isinstance(loc, UFTPPath):
                if not loc.rel:
                    raise UsageError(f"give the directory to create below the session base: {text}")
                with common.session_for(loc, self.credential, self.args.timeout) as session:
                    if self.args.parents:
                        session.makedirs(loc.rel)
                    else:
                        session.mkdir(loc.rel)
            elif isinstance(loc, RestPath):
                storage = _storage(self, loc)
                storage.makedirs(loc.path) if self.args.parents else storage.mkdir(loc.path)
            else:
                raise UsageError(f"not a remote location: {text}")
            self.verbose(f"created {text}")
            done.append(text)
        if self.args.json:
            common.print_json({"schema": common.SCHEMA_VERSION, "command": "mkdir", "created": done})
        return 0


class Rm(Base):
    """Remove remote files and directories."""

    name = "rm"

    def add_command_args(self) -> None:
        self.parser.add_argument("paths", nargs="+", metavar="URL", help="Files (or directories with -r) to remove")
        self.parser.add_argument("-r", "--recursive", action="store_true", help="Remove directories and their contents")
        self.parser.add_argument("-f", "--force", action="store_true", help="Ignore files that do not exist")
        common.add_output_args(self.parser)

    def get_synopsis(self) -> str:
        return "Removes remote files, or directories with -r"

    def get_description(self) -> str:
        return "remove remote files or directories"

    def get_group(self) -> str:
        return "Data management"

    def run(self, args: list[str]) -> int:
        self.setup(args)
        removed: list[str] = []
        for text in self.args.paths:
            loc = common.parse_item(text)
            if isinstance(loc, UFTPPath):
                if not loc.rel:
                    raise UsageError(f"refusing to remove the session base directory: {text}")
                with common.session_for(loc, self.credential, self.args.timeout) as session:
                    try:
                        paths = common.expand(session, loc)
                    except FileNotFoundError:
                        if self.args.force:
                            continue
                        raise
                    for path in paths:
                        removed.extend(loc.url_of(p) for p in self._rm_uftp(session, path))
            elif isinstance(loc, RestPath):
                self._rm_rest(loc)
                removed.append(text)
            else:
                raise UsageError(f"not a remote location: {text}")
        for url in removed:
            self.verbose(f"removed {url}")
        if self.args.json:
            common.print_json({"schema": common.SCHEMA_VERSION, "command": "rm", "removed": removed})
        return 0

    def _rm_uftp(self, session: Any, path: str) -> list[str]:
        import uftpcore

        try:
            info = session.stat(path)
        except uftpcore.NotFoundError:
            if self.args.force:
                return []
            raise FileNotFoundError(f"no such file or directory: {path}") from None
        if not info.is_dir:
            session.remove(path)
            return [path]
        if not self.args.recursive:
            raise UsageError(f"{path} is a directory (use -r)")
        gone: list[str] = []
        tree = list(common.walk(session, path))
        for dirpath, _dirs, files in tree:
            for f in files:
                session.remove(common.join(dirpath, f.name))
                gone.append(common.join(dirpath, f.name))
        for dirpath, _dirs, _files in reversed(tree):
            session.rmdir(dirpath)
            gone.append(dirpath)
        return gone

    def _rm_rest(self, loc: RestPath) -> None:
        storage = _storage(self, loc)
        p = storage.stat(loc.path)
        if p.isdir():
            if not self.args.recursive:
                raise UsageError(f"{loc} is a directory (use -r)")
            storage.rmdir(loc.path)
        else:
            storage.rm(loc.path)


class Checksum(Base):
    """Server-side checksums of remote files (``HASH``), local files hashed locally."""

    name = "checksum"

    def add_command_args(self) -> None:
        self.parser.add_argument("paths", nargs="+", metavar="URL|PATH", help="Remote (UFTP) or local files")
        self.parser.add_argument("-a", "--algorithm", default="SHA-256", type=str.upper, choices=ALGORITHMS,
                                 help="Hash algorithm (default SHA-256)")
        self.parser.add_argument("-r", "--recursive", action="store_true", help="Checksum every file below directories")
        common.add_output_args(self.parser)

    def get_synopsis(self) -> str:
        return ("Prints checksums like sha256sum: computed by the server for UFTP URLs (nothing is\n"
                "downloaded), locally for local paths.")

    def get_description(self) -> str:
        return "checksum remote files"

    def get_group(self) -> str:
        return "Data management"

    def run(self, args: list[str]) -> int:
        self.setup(args)
        algo = self.args.algorithm
        results: list[dict[str, Any]] = []
        for text in self.args.paths:
            loc = locations.parse(text)
            if isinstance(loc, UFTPPath):
                with common.session_for(loc, self.credential, self.args.timeout) as session:
                    for path in common.expand(session, loc):
                        for p, size in self._remote_files(session, path):
                            digest = session.checksum(p, algo)
                            results.append({"url": loc.url_of(p), "size": size, "algorithm": algo, "checksum": digest})
                            self._emit(results[-1])
            elif isinstance(loc, LocalPath):
                for p in self._local_files(loc.path):
                    results.append({"url": p, "size": os.path.getsize(p), "algorithm": algo,
                                    "checksum": local_checksum(p, algo)})
                    self._emit(results[-1])
            else:
                raise UsageError(f"use a UFTP URL or a local path, not {text}")
        if self.args.json:
            common.print_json({"schema": common.SCHEMA_VERSION, "command": "checksum", "algorithm": algo,
                               "files": results})
        return 0

    def _emit(self, entry: dict[str, Any]) -> None:
        if not self.args.json:
            print(f"{entry['checksum']}  {entry['url']}", flush=True)

    def _remote_files(self, session: Any, path: str) -> list[tuple[str, int]]:
        info = session.stat(path)
        if not info.is_dir:
            return [(path, info.size)]
        if not self.args.recursive:
            raise UsageError(f"{path} is a directory (use -r)")
        return [(common.join(d, f.name), f.size) for d, _dirs, files in common.walk(session, path) for f in files]

    def _local_files(self, path: str) -> list[str]:
        if os.path.isdir(path):
            if not self.args.recursive:
                raise UsageError(f"{path} is a directory (use -r)")
            return sorted(os.path.join(d, f) for d, _dirs, files in os.walk(path) for f in files)
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path}: No such file or directory")
        return [path]


def local_checksum(path: str, algo: str = "SHA-256", offset: int = 0, length: int | None = None) -> str:
    """Hex digest of a local file (or a range), read in 8 MiB blocks."""
    h = hashlib.new(algo.replace("-", "").lower())
    buf = bytearray(8 << 20)
    view = memoryview(buf)
    left = length
    with open(path, "rb", buffering=0) as f:
        if offset:
            f.seek(offset)
        while left is None or left > 0:
            want = len(buf) if left is None else min(len(buf), left)
            n = f.readinto(view[:want])
            if not n:
                break
            h.update(view[:n])
            if left is not None:
                left -= n
    return h.hexdigest()


def _storage(cmd: Base, loc: RestPath) -> Any:
    from pyunicore_fast.client import Storage

    return Storage(cmd.transport(), storage_url=loc.storage_url)

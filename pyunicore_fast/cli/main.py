"""``pyunicore-fast``: the dispatcher (PyUNICORE's ``unicore`` command plus UFTP and tools).

``pyunicore-fast <command> [options] <args>``.  As in PyUNICORE a command may be abbreviated:
the first command in ``_commands`` order that starts with the given word wins (``c`` →
``cancel-job``, ``l`` → ``list-jobs``, ``r`` → ``rest``); PyUNICORE's commands come first
so that abbreviations keep their meaning.

Every failure ends in one line on stderr and a non-zero exit code (see :mod:`.errors`).
"""

from __future__ import annotations

import logging
import os
import platform
import sys
from typing import Any

from pyunicore_fast.cli.errors import EXIT_INTERRUPTED, EXIT_USAGE, UsageError, describe

PROG = "pyunicore-fast"
log = logging.getLogger(__name__)

#: command name -> "module:Class"; imported on demand so ``pyunicore-fast ls`` starts fast.
_COMMAND_CLASSES: dict[str, str] = {
    # PyUNICORE's ``unicore`` commands, in its order
    "cancel-job": "exec:CancelJob",
    "cat": "io:Cat",
    "cp": "io:CP",
    "exec": "exec:Exec",
    "info": "info:Info",
    "issue-token": "rest:IssueToken",
    "job-status": "exec:GetJobStatus",
    "list-jobs": "exec:ListJobs",
    "ls": "io:LS",
    "rest": "rest:REST",
    "run": "exec:Run",
    # UFTP file commands (Java uftp style) and tools
    "mkdir": "files:Mkdir",
    "rm": "files:Rm",
    "checksum": "files:Checksum",
    "mount": "mount:Mount",
    "serve": "serve:Serve",
    "bench": "bench:Bench",
    "demo": "demo:Demo",
}


class _Commands(dict):
    """PyUNICORE exposes ``_commands`` (name -> class); classes are resolved lazily here."""

    def __getitem__(self, name: str) -> Any:
        return _load_class(dict.__getitem__(self, name))

    def get(self, name: str, default: Any = None) -> Any:
        return self[name] if name in self else default  # noqa: SIM401 - __getitem__ loads the class

    def values(self) -> Any:  # type: ignore[override]
        return [self[k] for k in self]

    def items(self) -> Any:  # type: ignore[override]
        return [(k, self[k]) for k in self]


_commands = _Commands(_COMMAND_CLASSES)


def _load_class(spec: str) -> Any:
    import importlib

    module, cls = spec.split(":")
    return getattr(importlib.import_module(f"pyunicore_fast.cli.{module}"), cls)


def get_command(name: str) -> Any:
    """A new instance of the command class ``name`` (exact name)."""
    return _commands[name]()


def resolve(word: str) -> str:
    """The command a (possibly abbreviated) word means, PyUNICORE's rule."""
    if word in _commands:
        return word
    for name in _commands:
        if name.startswith(word):
            return name
    raise UsageError(f"No such command: {word} (see '{PROG} help')")


def version_string() -> str:
    from pyunicore_fast.cli import _version

    return f"UNICORE Commandline Client ({PROG}) {_version()}, https://www.unicore.eu"


def show_version() -> None:
    try:
        import uftpcore

        impl = f", uftpcore {uftpcore.__version__} ({uftpcore.IMPLEMENTATION})"
    except ImportError:  # pragma: no cover
        impl = ""
    print(version_string() + impl)
    print(f"Python {sys.version}")
    print(f"OS: {platform.platform()}")


_GROUPS = ("Data management", "Job execution", "Utilities", "Other")


def help() -> None:
    print(_header)
    print(version_string())
    print(f"Usage: {PROG} <command> [OPTIONS] <args>")
    print("The following commands are available:")
    instances = {name: get_command(name) for name in _commands}
    for group in _GROUPS:
        names = sorted(n for n, c in instances.items() if c.get_group() == group)
        if not names:
            continue
        print(f"{group}:")
        for name in names:
            print(f"  {name:20} - {instances[name].get_description()}")
    print(f"Enter '{PROG} <command> -h' for help on a particular command.")
    print("Remote locations: https://HOST:PORT/rest/auth/NAME:/path (UFTP), "
          ".../rest/core/storages/ID:/path (UFTP via UNICORE/X),")
    print("                  .../rest/core/storages/ID/files/path (REST). "
          "Exit codes: 0 ok, 1 failed, 2 usage, 3 verification failed.")


def _setup_logging(args: list[str]) -> bool:
    debug = "--debug" in args or os.environ.get("PYUNICORE_FAST_DEBUG", "").strip() not in ("", "0")
    level = logging.DEBUG if debug else logging.WARNING
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"{PROG}: %(levelname)s: %(name)s: %(message)s" if debug
                                           else f"{PROG}: %(levelname)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    if not debug:
        import warnings

        logging.getLogger("urllib3").setLevel(logging.ERROR)  # retries end in one error message anyway

        warnings.filterwarnings("ignore", message="Unverified HTTPS request")
    return debug


def run(args: list[str]) -> int:
    """Dispatch; exceptions propagate (``main`` turns them into messages and exit codes)."""
    if len(args) < 1 or args[0] in ("help", "-h", "--help"):
        help()
        return 0
    if args[0] in ("version", "-V", "--version"):
        show_version()
        return 0
    command = get_command(resolve(args[0]))
    rc = command.run(args[1:])
    return int(rc or 0)


def main(argv: list[str] | None = None) -> int:
    """Console entry point: one-line errors, documented exit codes, no tracebacks."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = _setup_logging(args)
    try:
        return run(args)
    except SystemExit as exc:  # argparse -h / --version
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else EXIT_USAGE)
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `pyunicore-fast cat ... | head`
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the interpreter's flush at exit
        except OSError:
            pass
        return 0
    except Exception as exc:  # noqa: BLE001 - every error becomes one line
        if debug:
            import traceback

            traceback.print_exc()
        message, code = describe(exc)
        command = args[0] if args and not args[0].startswith("-") else ""
        try:
            name = resolve(command) if command else ""
        except UsageError:
            name = ""
        prefix = f"{PROG} {name}: " if name and not message.startswith(f"{PROG} {name}") else f"{PROG}: "
        if message.startswith(PROG):
            prefix = ""
        print(f"{prefix}{message}", file=sys.stderr)
        return code


_header = r""" _    _ _   _ _____ _____ ____  _____  ______
| |  | | \ | |_   _/ ____/ __ \|  __ \|  ____|
| |  | |  \| | | || |   | |  | | |__) | |__
| |  | | . ` | | || |   | |  | |  _  /|  __|
| |__| | |\  |_| |_ |____ |__| | | \ \| |____
 \____/|_| \_|_____\_____\____/|_|  \_\______|  fast
"""


if __name__ == "__main__":
    sys.exit(main())

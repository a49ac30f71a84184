"""Command line: ``animecolor <command> ...``, a thin layer over the library API.

Each command lives in ``animecolor/commands/<name>.py`` with ``register(subparsers)``
(adds its parser and sets ``func``) so the library never sees argparse objects.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import signal
import sys
import threading

from . import __version__

COMMANDS = ["episode", "preview", "shots", "dataset", "train", "evaluate", "finetune", "batch", "select"]


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="animecolor", description="Colorize black-and-white video (anime and cartoons first)."
    )
    parser.add_argument("--version", action="version", version=f"animecolor {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            mod = importlib.import_module(f"animecolor.commands.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"animecolor.commands.{name}":
                continue  # command not built yet
            raise
        mod.register(sub)
    return parser


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM, raised in the main thread so every ``finally`` and cleanup runs."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def _signals_raise():
    """While a command runs, SIGINT and SIGTERM raise :class:`Interrupted` (the first one; repeats
    are ignored so that they cannot cut the cleanup short).  Only from the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    seen: list[int] = []

    def handler(signum, frame):
        if not seen:
            seen.append(signum)
            raise Interrupted(signum)

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from av import FFmpegError

    try:
        with _signals_raise():
            return int(args.func(args) or 0)
    except KeyboardInterrupt as e:
        print("animecolor: interrupted", file=sys.stderr)
        return 128 + (e.signum if isinstance(e, Interrupted) else signal.SIGINT)
    except FFmpegError as e:  # one that no command turned into a message of its own
        what = (e.strerror or str(e)).strip().splitlines()
        print(f"animecolor: error: FFmpeg failed ({what[0] if what else type(e).__name__}); "
              "the input may be damaged or unsupported", file=sys.stderr)
        return 1
    except (CLIError, FileNotFoundError, FileExistsError, PermissionError, ValueError, RuntimeError, OSError) as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"animecolor: error: {msg}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""The ``jaxrank`` command line: ``jaxrank {eval, compare, demo, ...}``.

Each sub-command lives in its own ``_<name>.py`` module exposing
``register(subparsers)``; user mistakes exit with status 2 and a one-line error
(no traceback), failures of the work itself with status 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from jaxrank import __version__

_COMMANDS: tuple[str, ...] = ("_eval", "_compare", "_demo", "_index", "_search")


class UserError(Exception):
    """A mistake in the command's input: printed as one line, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jaxrank",
        description="Ranking toolkit for JAX: evaluate, compare, fuse, index and search.",
    )
    parser.add_argument("--version", action="version", version=f"jaxrank {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    import importlib

    for name in _COMMANDS:
        importlib.import_module(f"jaxrank.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (UserError, ValueError, FileNotFoundError, IsADirectoryError) as err:
        print(f"jaxrank {args.command}: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0

"""The ``jaxrank`` command line: ``jaxrank {eval, compare, fuse, index, search, rerank, demo}``.

Each sub-command lives in its own ``_<name>.py`` module exposing ``register(subparsers)``.
Conventions shared by every command:

* ``--format``: ``json`` everywhere, plus the command's natural text format (TREC run
  or trec_eval output, a Markdown table, ...).
* ``-o/--output FILE`` (``-`` is stdout) for commands that write a run; ``-k/--depth``
  for documents per query; ``--run-name`` (alias ``--tag``) for the run tag;
  ``--qrels-format`` wherever qrels are read.
* Results go to stdout, progress bars and notes to stderr.
* Exit status: 0 success; 2 a user mistake (bad file, bad option, missing optional
  dependency), printed as one line without a traceback; 1 an internal error (a bug),
  printed with its traceback; 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence

from jaxrank import __version__

_COMMANDS: tuple[str, ...] = (
    "_eval",
    "_compare",
    "_fuse",
    "_index",
    "_search",
    "_rerank",
    "_demo",
)

EPILOG = """\
examples:
  jaxrank demo                                   # the whole pipeline on built-in data
  jaxrank eval qrels.txt run.trec -m map -m ndcg_cut.10
  jaxrank compare qrels.txt bm25.trec dense.trec --format json
  jaxrank index beir/scifact idx/ && jaxrank search idx/ beir/scifact/queries.jsonl -o bm25.trec
  jaxrank fuse bm25.trec dense.trec --method rrf -o fused.trec
  jaxrank rerank fused.trec --data beir/scifact --method maxsim -o reranked.trec

`jaxrank COMMAND --help` describes each command. Exit status: 0 ok, 2 user error, 1 bug.
"""


class UserError(Exception):
    """A mistake in the command's input: printed as one line, exit status 2."""


class HelpFormatter(argparse.HelpFormatter):
    """Wraps one-paragraph descriptions; keeps texts with line breaks (examples) as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text.strip():
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jaxrank",
        description=(
            "Ranking toolkit for JAX: evaluate runs exactly as trec_eval, compare them with "
            "significance tests, fuse them, index and search a corpus with BM25, rerank "
            "with late interaction, and run the whole pipeline as a demo."
        ),
        epilog=EPILOG,
        formatter_class=HelpFormatter,
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
        parser.print_help(sys.stderr)
        return 2
    from jaxrank.cli._common import show_warnings_briefly

    show_warnings_briefly()
    try:
        return int(args.func(args) or 0)
    except (UserError, ValueError, FileNotFoundError, IsADirectoryError, NotADirectoryError) as e:
        print(f"jaxrank {args.command}: error: {e}", file=sys.stderr)
        return 2
    except ImportError as err:  # an optional dependency the chosen options need
        print(f"jaxrank {args.command}: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        print(f"jaxrank {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # a bug: keep the traceback for the report
        traceback.print_exc()
        print(
            f"jaxrank {args.command}: internal error ({type(err).__name__}: {err}); "
            "please report it with the traceback above",
            file=sys.stderr,
        )
        return 1

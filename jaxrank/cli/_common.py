"""Helpers shared by the sub-commands."""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

from jaxrank.io import Qrels, read_beir_qrels, read_qrels

FORMATS = ("trec", "json", "csv", "table")


def load_qrels(path: str, fmt: str = "auto") -> Qrels:
    """Read TREC qrels, or BEIR ``.tsv`` qrels (``fmt="auto"`` decides by extension)."""
    if fmt == "beir" or (fmt == "auto" and Path(path).suffix == ".tsv"):
        return read_beir_qrels(path)
    return read_qrels(path)


def add_qrels_format(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--qrels-format",
        choices=("auto", "trec", "beir"),
        default="auto",
        help="qrels file format (auto: BEIR for .tsv files, TREC otherwise)",
    )


def show_warnings_briefly() -> None:
    """Print library warnings as one 'warning:' line, without source locations."""

    def _show(message, category, filename, lineno, file=None, line=None):
        import sys

        print(f"warning: {message}", file=sys.stderr)

    warnings.showwarning = _show


def add_run_output(p: argparse.ArgumentParser, *, default_name: str | None) -> None:
    """``-o/--output``, ``--format {trec,json}`` and ``--run-name`` of run-writing commands."""
    p.add_argument(
        "-o", "--output", default="-", metavar="FILE", help="output run file (default: stdout)"
    )
    p.add_argument(
        "--format",
        choices=("trec", "json"),
        default="trec",
        help="run format: TREC lines (default) or JSON {qid: {docid: score}}",
    )
    p.add_argument(
        "--run-name",
        "--tag",
        dest="run_name",
        default=default_name,
        metavar="NAME",
        help="run tag written in the last TREC column "
        f"(default {default_name or 'jaxrank-METHOD'})",
    )


def write_run_output(run, output: str, fmt: str, name: str) -> None:
    """Write ``run`` (a :class:`jaxrank.io.Run`) as TREC or JSON to a file or stdout."""
    import json
    import sys
    import tempfile

    from jaxrank.io import write_run

    if fmt == "json":
        text = json.dumps(run.to_dict(), indent=1) + "\n"
    else:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "run.trec"
            write_run(run, path, name=name)
            text = path.read_text()
    if output == "-":
        sys.stdout.write(text)
    else:
        Path(output).write_text(text)

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

"""``jaxrank eval QRELS RUN``: trec_eval-compatible evaluation."""

from __future__ import annotations

import argparse
import sys

from jaxrank.cli import HelpFormatter
from jaxrank.cli._common import FORMATS, add_qrels_format, load_qrels
from jaxrank.eval import evaluate
from jaxrank.io import read_run

EPILOG = """\
examples:
  jaxrank eval qrels.txt run.trec                      # trec_eval's official measures
  jaxrank eval qrels.txt run.trec -m map -m ndcg_cut.10,20 -q
  jaxrank eval beir/scifact/qrels/test.tsv run.trec -m ndcg_cut.10 --format json
"""


def register(sub) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate a run against qrels (trec_eval 10.0 output)",
        description=(
            "Evaluate RUN against QRELS exactly as trec_eval 10.0 does, printing its output "
            "format (so scripts can swap it in). Measures use trec_eval's -m syntax: "
            "'official' (default), 'all_trec', 'map', 'P.5,10', 'ndcg_cut.10', "
            "'ndcg.1=3,2=9', ..."
        ),
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    p.add_argument("qrels", help="TREC qrels file (or BEIR .tsv), gzip accepted")
    p.add_argument("run", help="TREC run file, gzip accepted")
    p.add_argument(
        "-m",
        "--measure",
        action="append",
        dest="measures",
        metavar="MEASURE",
        help="measure to compute (repeatable; default: official)",
    )
    p.add_argument("-q", action="store_true", dest="per_query", help="also print per query")
    p.add_argument(
        "-c",
        action="store_true",
        dest="complete",
        help="average over all qrels queries (missing ones score as empty rankings)",
    )
    p.add_argument(
        "-l",
        type=int,
        default=1,
        dest="level",
        metavar="N",
        help="relevance level: judgments >= N are relevant (default 1)",
    )
    p.add_argument(
        "-M",
        type=int,
        default=None,
        dest="max_docs",
        metavar="N",
        help="evaluate at most N documents per query",
    )
    p.add_argument(
        "-N",
        type=int,
        default=0,
        dest="num_docs",
        metavar="N",
        help="number of documents in the collection (for utility)",
    )
    p.add_argument(
        "--format",
        choices=FORMATS,
        default="trec",
        help="trec_eval text (default), json, csv or a Markdown table",
    )
    add_qrels_format(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    result = evaluate(
        load_qrels(args.qrels, args.qrels_format),
        read_run(args.run),
        args.measures or ["official"],
        relevance_level=args.level,
        average_complete=args.complete,
        max_docs=args.max_docs,
        num_docs_in_coll=args.num_docs,
    )
    if args.format == "json":
        sys.stdout.write(result.format_json(args.per_query))
    elif args.format == "csv":
        sys.stdout.write(result.format_csv(args.per_query))
    elif args.format == "table":
        sys.stdout.write(result.format_table())
    else:
        sys.stdout.write(result.format_trec(args.per_query))
    return 0

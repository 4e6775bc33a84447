"""``jaxrank compare QRELS RUN1 RUN2 ...``: significance of differences to RUN1."""

from __future__ import annotations

import argparse
import sys

from jaxrank.cli import HelpFormatter, UserError
from jaxrank.cli._common import add_qrels_format, load_qrels
from jaxrank.eval import compare
from jaxrank.io import read_run

EPILOG = """\
examples:
  jaxrank compare qrels.txt bm25.trec dense.trec fused.trec       # baseline: bm25.trec
  jaxrank compare qrels.txt a.trec b.trec -m map -m P.10 --correction bonferroni
  jaxrank compare qrels.txt a.trec b.trec --trials 2000 --format json
"""


def register(sub) -> None:
    p = sub.add_parser(
        "compare",
        help="compare runs with paired significance tests",
        description=(
            "Compare RUN2... against the baseline RUN1 per query: paired t-test, Fisher "
            "randomization test, bootstrap confidence interval of the mean difference, and "
            "Holm or Bonferroni correction across all comparisons."
        ),
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    p.add_argument("qrels", help="TREC qrels file (or BEIR .tsv), gzip accepted")
    p.add_argument("runs", nargs="+", metavar="RUN", help="TREC run files, the baseline first")
    p.add_argument(
        "-m",
        "--measure",
        action="append",
        dest="measures",
        metavar="MEASURE",
        help="trec_eval measure (repeatable; default: map and ndcg_cut.10)",
    )
    p.add_argument(
        "--trials", type=int, default=10_000, help="randomization/bootstrap trials (10000)"
    )
    p.add_argument(
        "--correction",
        choices=("holm", "bonferroni", "none"),
        default="holm",
        help="multiple-comparison correction of the p-values (holm)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (0)")
    p.add_argument(
        "--format",
        choices=("table", "json", "csv"),
        default="table",
        help="Markdown table (default), json or csv",
    )
    p.add_argument("-l", type=int, default=1, dest="level", metavar="N", help="relevance level")
    add_qrels_format(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if len(args.runs) < 2:
        raise UserError("give at least two runs (the first is the baseline)")
    result = compare(
        load_qrels(args.qrels, args.qrels_format),
        [read_run(r) for r in args.runs],
        args.measures or ["map", "ndcg_cut.10"],
        trials=args.trials,
        correction=args.correction,
        seed=args.seed,
        relevance_level=args.level,
    )
    out = {"table": result.format_table, "json": result.format_json, "csv": result.format_csv}
    sys.stdout.write(out[args.format]())
    return 0

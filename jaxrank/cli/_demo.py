"""``jaxrank demo``: the main job on built-in data."""

from __future__ import annotations

import argparse
from importlib import resources

from jaxrank.eval import compare, evaluate
from jaxrank.io import read_qrels, read_run


def register(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="run the demo on the built-in collection",
        description="Evaluate and compare two built-in runs on built-in graded judgments.",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    data = resources.files("jaxrank") / "data"
    qrels = read_qrels(data / "demo.qrels")
    runs = [read_run(data / "demo-bm25.run"), read_run(data / "demo-hybrid.run")]
    measures = ["map", "ndcg_cut.10", "P.5", "recall.20", "recip_rank"]
    print(f"jaxrank demo: {qrels.num_queries} queries, {len(qrels)} graded judgments\n")
    for r in runs:
        print(f"== jaxrank eval demo.qrels {r.name} (trec_eval format)")
        print(evaluate(qrels, r, measures).format_trec())
    print("== jaxrank compare (baseline: bm25)")
    print(compare(qrels, runs, ["map", "ndcg_cut.10"], trials=2000).format_table())
    return 0

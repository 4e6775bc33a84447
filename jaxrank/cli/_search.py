"""``jaxrank search INDEX_DIR QUERIES -k 1000 -o run.trec``: batch retrieval to a TREC run."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from jaxrank.cli import HelpFormatter, UserError
from jaxrank.cli._common import add_qrels_format, add_run_output, load_qrels, write_run_output
from jaxrank.cli._index import add_method_args, method_params

EPILOG = """\
examples:
  jaxrank search idx/ beir/scifact/queries.jsonl -o bm25.trec
  jaxrank search idx/ queries.tsv -k 100 --method bm25l --rm3 > bm25l-rm3.trec
  jaxrank search idx/ queries.jsonl --qrels beir/scifact/qrels/test.tsv --format json -o run.json
"""


def register(sub) -> None:
    p = sub.add_parser(
        "search",
        help="retrieve the top k documents for each query into a TREC run",
        description=(
            "Search INDEX_DIR (from `jaxrank index`) with QUERIES (BEIR queries.jsonl, or a "
            "TSV file 'qid<TAB>text') and write a TREC run. Scoring defaults to the options "
            "saved with the index; flags override them."
        ),
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    p.add_argument("index_dir", help="index directory")
    p.add_argument("queries", help="queries.jsonl or qid<TAB>text .tsv")
    p.add_argument(
        "-k", "--depth", dest="k", type=int, default=1000, help="results per query (1000)"
    )
    p.add_argument("--qrels", help="only search the queries judged in this qrels file")
    add_qrels_format(p)
    p.add_argument("--rm3", action="store_true", help="RM3 pseudo-relevance feedback")
    p.add_argument("--fb-docs", type=int, default=10, help="RM3 feedback documents (10)")
    p.add_argument("--fb-terms", type=int, default=10, help="RM3 expansion terms (10)")
    p.add_argument("--orig-weight", type=float, default=0.5, help="RM3 query weight (0.5)")
    add_run_output(p, default_name="jaxrank")
    add_method_args(p, defaults=False)
    p.set_defaults(func=run)


def _read_queries(path: str) -> tuple[list[str], list[str]]:
    from jaxrank.io import read_beir_jsonl

    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p}: no such queries file")
    if p.suffix in (".jsonl", ".json"):
        ids, texts = read_beir_jsonl(p, ("text",))
        return [str(i) for i in ids], [str(t) for t in texts]
    ids, texts = [], []
    for lineno, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("\t", 1)
        if len(parts) != 2:
            raise UserError(f"{p}:{lineno}: expected 'qid<TAB>text'")
        ids.append(parts[0].strip())
        texts.append(parts[1])
    return ids, texts


def run(args: argparse.Namespace) -> int:
    from jaxrank.retrieve import load_index, rm3, searcher

    if args.k < 1:
        raise UserError(f"-k must be >= 1, got {args.k}")
    index = load_index(args.index_dir)
    qids, texts = _read_queries(args.queries)
    if args.qrels:
        judged = set(load_qrels(args.qrels, args.qrels_format).query_ids.tolist())
        keep = [i for i, q in enumerate(qids) if q in judged]
        qids, texts = [qids[i] for i in keep], [texts[i] for i in keep]
    if not qids:
        raise UserError("no queries to search")
    method = args.method or index.defaults.get("method", "lucene")
    saved = index.defaults if index.defaults.get("method") == method else {}
    values = {**saved, **{k: v for k, v in vars(args).items() if v is not None}}
    t0 = time.perf_counter()
    s = searcher(index, method, **method_params(method, values))
    k = min(args.k, index.n_docs)
    if args.rm3:
        res = rm3(
            s,
            texts,
            k,
            fb_docs=args.fb_docs,
            fb_terms=args.fb_terms,
            orig_weight=args.orig_weight,
        )
    else:
        res = s.search(texts, k)
    run_ = res.to_run(qids, name=args.run_name)
    write_run_output(run_, args.output, args.format, args.run_name)
    dt = time.perf_counter() - t0
    print(
        f"searched {len(qids)} queries ({method}, k={k}) in {dt:.2f}s; "
        f"{int(np.sum(~res.valid.any(1)))} without in-vocabulary terms",
        file=sys.stderr,
    )
    return 0

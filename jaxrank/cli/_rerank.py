"""``jaxrank rerank RUN --data BEIR_DIR``: rerank a run's top documents, no model needed.

Token and document vectors come from an LSA (truncated SVD of the collection's TF-IDF
matrix, computed in JAX, see :mod:`jaxrank.cli._pipeline`):

* ``--method maxsim``: idf-weighted MaxSim (:func:`jaxrank.rerank.maxsim`) of the query's
  term vectors against each candidate's term vectors;
* ``--method mmr``: Maximal Marginal Relevance (:func:`jaxrank.rerank.mmr`) of the run's
  own scores (min-max normalized) and the candidates' LSA document vectors, for a
  diverse top ``k``.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from jaxrank.cli import HelpFormatter, UserError
from jaxrank.cli._common import add_run_output, write_run_output

EPILOG = """\
examples:
  jaxrank rerank fused.trec --data beir/scifact -k 100 -o maxsim.trec
  jaxrank rerank bm25.trec --data beir/scifact --method mmr --lambda 0.7 -k 20 -o mmr.trec
  jaxrank rerank bm25.trec --data beir/scifact --format json -o reranked.json
"""


def register(sub) -> None:
    p = sub.add_parser(
        "rerank",
        help="rerank a run's top documents with MaxSim or MMR over LSA vectors",
        description=(
            "Rerank the top -k documents of each query of RUN (a TREC run over the corpus "
            "of --data). Term and document vectors come from an LSA of the corpus (a "
            "truncated SVD of its TF-IDF matrix, computed in JAX; no pretrained model). "
            "maxsim: idf-weighted late interaction of query and document term vectors. "
            "mmr: Maximal Marginal Relevance of the run's scores and LSA document vectors "
            "(the output scores are k, k-1, ..., 1 in selection order)."
        ),
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    p.add_argument("run", help="TREC run file to rerank (gzip accepted)")
    p.add_argument(
        "--data",
        required=True,
        metavar="DIR",
        help="BEIR folder with the run's corpus.jsonl and queries.jsonl",
    )
    p.add_argument(
        "--method", choices=("maxsim", "mmr"), default="maxsim", help="reranker (maxsim)"
    )
    p.add_argument(
        "-k", "--depth", type=int, default=100, help="top documents reranked per query (100)"
    )
    p.add_argument("--dim", type=int, help="LSA dimensions (default: 32, or 128 above 2000 docs)")
    p.add_argument(
        "--lambda",
        dest="lambda_",
        metavar="L",
        type=float,
        default=0.5,
        help="MMR weight of relevance against novelty, in [0, 1] (0.5)",
    )
    p.add_argument("--stemmer", default="auto", help="Snowball language, 'none' or 'auto'")
    p.add_argument("--seed", type=int, default=0, help="random seed of the SVD (0)")
    add_run_output(p, default_name="jaxrank-rerank")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from jaxrank.cli import _pipeline as P
    from jaxrank.io import read_run
    from jaxrank.retrieve import build_index

    if args.depth < 1:
        raise UserError(f"-k must be >= 1, got {args.depth}")
    if not 0.0 <= args.lambda_ <= 1.0:
        raise UserError(f"--lambda must be in [0, 1], got {args.lambda_}")
    run_in = read_run(args.run)
    col = P.load_collection(args.data)
    texts = dict(zip(col.query_ids, col.queries, strict=True))
    if col.qrels is not None:  # load_collection kept only the judged queries: take all
        from jaxrank.io import read_beir_jsonl

        ids, qs = read_beir_jsonl(f"{args.data}/queries.jsonl", ("text",))
        texts = {str(i): str(t) for i, t in zip(ids, qs, strict=True)}
    qids = [str(q) for q in run_in.query_ids.tolist()]
    missing = [q for q in qids if q not in texts]
    if missing:
        raise UserError(
            f"{args.run}: query {missing[0]!r} is not in {args.data}/queries.jsonl "
            f"({len(missing)} missing)"
        )
    stemmer = P.default_stemmer() if args.stemmer == "auto" else args.stemmer
    index = build_index(col.docs, col.doc_ids, stemmer=None if stemmer == "none" else stemmer)
    cand, scores = P.run_candidates(run_in, index, args.depth, qids)
    lsa = P.fit_lsa(index, args.dim or (128 if index.n_docs > 2000 else 32), seed=args.seed)
    if args.method == "maxsim":
        terms = P.query_terms(index, [texts[q] for q in qids])
        new = P.maxsim_scores(lsa, index, terms, cand)
    else:
        new = _mmr(lsa, cand, scores, args.lambda_)
    out = P.scored_run(qids, cand, new, index.doc_ids, args.run_name)
    write_run_output(out, args.output, args.format, args.run_name)
    print(
        f"reranked the top {args.depth} of {len(qids)} queries with {args.method} "
        f"(LSA {lsa.doc_vectors.shape[1]} dims)",
        file=sys.stderr,
    )
    return 0


def _mmr(lsa, cand, scores, lambda_: float) -> list[np.ndarray]:
    import jax.numpy as jnp

    from jaxrank.rerank import mmr

    depth = max(1, max((len(c) for c in cand), default=1))
    n = len(cand)
    rel = np.zeros((n, depth), np.float32)
    idx = np.zeros((n, depth), np.int64)
    where = np.zeros((n, depth), bool)
    for i, (c, s) in enumerate(zip(cand, scores, strict=True)):
        if len(c) == 0:
            continue
        lo, hi = float(s.min()), float(s.max())
        rel[i, : len(c)] = (s - lo) / (hi - lo) if hi > lo else 1.0
        idx[i, : len(c)] = c
        where[i, : len(c)] = True
    emb = lsa.doc_vectors[jnp.asarray(idx)]  # [Q, depth, r]
    order, valid = mmr(jnp.asarray(rel), emb, k=depth, lambda_=lambda_, where=jnp.asarray(where))
    order, valid = np.asarray(order), np.asarray(valid)
    out = []
    for i, c in enumerate(cand):
        s = np.zeros(len(c), np.float64)
        picked = order[i][valid[i]]
        s[picked] = depth - np.arange(len(picked))
        out.append(s)
    return out

"""Example: usearch (HNSW) as the first stage, jaxrank reranks its candidates.

SciFact, all-MiniLM-L6-v2 embeddings (shared data ``embeddings/``), the 300 test queries:

1. **first stage** -- a usearch HNSW index over int8-quantized vectors (``dtype="i8"``,
   cosine), 100 candidates per query;
2. **exact rescoring** -- :func:`jaxrank.retrieve.rescore` scores the candidate ids with
   the float32 vectors (cosine) and reorders them; usearch's ``-1`` ("no result") ids
   count as padding;
3. **score blending** -- the rescored list fused with BM25's run
   (``runs_generated/scifact``) by :func:`jaxrank.fusion.fuse` (CombSUM of min-max
   normalized scores);
4. **diversification** -- :func:`jaxrank.rerank.mmr` (lambda 0.7) picks 10 of the 100
   rescored candidates.

Each row is evaluated with :func:`jaxrank.eval.evaluate` (trec_eval-exact nDCG@10,
Recall@100) and its top-10 overlap with exact float32 search; timings are per batch of
300 queries after compilation.

Run: ``python bench/example_usearch_rerank.py [--data DIR]`` (about half a minute; the
HNSW build dominates). Needs ``pip install usearch``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import data_dir, fmt_s, machine, table

from jaxrank.eval import evaluate
from jaxrank.fusion import fuse
from jaxrank.io import Run, read_beir_qrels, read_run
from jaxrank.rerank import mmr
from jaxrank.retrieve import exact_search, rescore

C, K = 100, 10


def to_run(qids, doc_ids, rows, scores, name):
    out = {}
    for qid, r, s in zip(qids, np.asarray(rows), np.asarray(scores), strict=True):
        out[qid] = {doc_ids[i]: float(v) for i, v in zip(r, s, strict=True) if i >= 0}
    run = Run.from_dict(out)
    return run


def overlap(a, b) -> float:
    a, b = np.asarray(a)[:, :K], np.asarray(b)[:, :K]
    return float(np.mean([len(set(x) & set(y)) / K for x, y in zip(a, b, strict=True)]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=data_dir())
    args = ap.parse_args()
    try:
        from usearch.index import Index
    except ImportError:
        sys.exit("usearch is required: pip install usearch")
    print(f"Machine: {machine()}; load average {os.getloadavg()[0]:.1f}\n")
    emb = args.data / "embeddings"
    x = np.load(emb / "scifact_corpus_minilm.npy").astype(np.float32)
    doc_ids = (emb / "scifact_corpus_ids.txt").read_text().split("\n")[: len(x)]
    q_all = np.load(emb / "scifact_queries_minilm.npy").astype(np.float32)
    q_ids = (emb / "scifact_query_ids.txt").read_text().split("\n")[: len(q_all)]
    qrels = read_beir_qrels(args.data / "beir_scifact/qrels/test.tsv")
    test = set(qrels.query_ids.tolist())
    keep = [i for i, qid in enumerate(q_ids) if qid in test]
    q, qids = q_all[keep], [q_ids[i] for i in keep]
    xj, qj = jnp.asarray(x), jnp.asarray(q)

    t0 = time.perf_counter()
    index = Index(ndim=x.shape[1], metric="cos", dtype="i8", expansion_search=C)
    index.add(np.arange(len(x)), x)
    t_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    found = index.search(q, C)
    t_first = time.perf_counter() - t0
    cand = np.asarray(found.keys, np.int64).reshape(len(q), C)
    cand = np.where(np.asarray(found.distances).reshape(len(q), C) < np.inf, cand, -1)
    first_scores = 1.0 - np.asarray(found.distances, np.float32).reshape(len(q), C)

    exact = jax.jit(partial(exact_search, k=C, metric="cosine"))
    ref = exact(qj, xj)
    resc = jax.jit(partial(rescore, k=C, metric="cosine"))
    hits, _, _ = resc(qj, xj, jnp.asarray(cand))
    jax.block_until_ready(hits.indices)
    t0 = time.perf_counter()
    hits, _, _ = resc(qj, xj, jnp.asarray(cand))
    jax.block_until_ready(hits.indices)
    t_resc = time.perf_counter() - t0

    div = jax.jit(partial(mmr, k=K, lambda_=0.7))
    cand_vecs = xj[jnp.maximum(hits.indices, 0)]
    picks, ok = div(jnp.where(hits.valid, hits.scores, -1.0), cand_vecs, where=hits.valid)
    jax.block_until_ready(picks)
    t0 = time.perf_counter()
    picks, ok = div(jnp.where(hits.valid, hits.scores, -1.0), cand_vecs, where=hits.valid)
    jax.block_until_ready(picks)
    t_mmr = time.perf_counter() - t0
    mmr_rows = np.where(ok, np.take_along_axis(np.asarray(hits.indices), np.asarray(picks), 1), -1)
    mmr_scores = np.tile(np.arange(K, 0, -1, dtype=np.float64), (len(q), 1))  # rank order

    runs = {
        "exact float32 search (jaxrank exact_search)": (to_run(qids, doc_ids, ref.indices,
                                                               ref.scores, "exact"), ref.indices),
        "usearch HNSW i8, top-100 (first stage)": (to_run(qids, doc_ids, cand, first_scores,
                                                          "usearch"), cand),
        "+ jaxrank rescore (float32 cosine)": (to_run(qids, doc_ids, hits.indices, hits.scores,
                                                      "rescored"), hits.indices),
    }  # fmt: skip
    bm25 = read_run(
        args.data / "runs_generated/scifact/scifact-test.bm25s-lucene-k10.9-b0.4.top100.trec.gz"
    )
    blended = fuse([runs["+ jaxrank rescore (float32 cosine)"][0], bm25], method="sum")
    runs["+ blend with BM25 (CombSUM, min-max)"] = (blended, None)
    runs["+ MMR (lambda 0.7) of the rescored 100"] = (
        to_run(qids, doc_ids, mmr_rows, mmr_scores, "mmr"),
        mmr_rows,
    )
    rows = []
    for name, (run, ids) in runs.items():
        ev = evaluate(qrels, run, ["ndcg_cut.10", "recall.100"])
        ov = "" if ids is None else f"{overlap(ids, ref.indices):.3f}"
        rec = f"{ev.summary['recall_100']:.4f}" if "MMR" not in name else "(10 docs)"
        rows.append([name, f"{ev.summary['ndcg_cut_10']:.4f}", rec, ov])
    print(f"### usearch first stage + jaxrank rerank, SciFact test ({len(q)} queries)\n")
    print(table(["system", "nDCG@10", "Recall@100", "top-10 overlap with exact"], rows))
    print(
        f"\nusearch build {fmt_s(t_build)}, search {fmt_s(t_first)} for {len(q)} queries; "
        f"jaxrank rescore {fmt_s(t_resc)}, MMR {fmt_s(t_mmr)} (per batch of {len(q)}; "
        "blending excluded: host-side fusion of TREC runs)."
    )


if __name__ == "__main__":
    main()

"""Grid search vs gradient-learned fusion on SciFact (BM25 + LSI), seeded 150/150 split.

The 300 SciFact test queries are split 150/150 with ``numpy.random.default_rng(0)``;
parameters are chosen on the first half and evaluated (trec_eval nDCG@10, via
:mod:`jaxrank.eval`) on the second. Methods: CombSUM-style weighted sum of min-max
normalized scores (``wsum``) and weighted RRF (weights and k).

    PYTHONPATH=. python bench/bench_fusion_learning.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from jaxrank.eval import evaluate
from jaxrank.fusion import fuse_input, grid_search, learn_weights, runs_to_arrays, to_run
from jaxrank.fusion._optimize import _subset
from jaxrank.io import read_beir_qrels, read_run

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import data_dir

DATA = data_dir()


def main() -> None:
    folder = DATA / "runs_generated" / "scifact"
    runs = [
        read_run(folder / "scifact-test.bm25s-lucene-k11.2-b0.75.top100.trec.gz"),
        read_run(folder / "scifact-test.lsi256-tfidf.top100.trec.gz"),
    ]
    qrels = read_beir_qrels(DATA / "beir_scifact" / "qrels" / "test.tsv")
    x = runs_to_arrays(runs)
    perm = np.random.default_rng(0).permutation(len(x.query_ids))
    train_q = x.query_ids[perm[:150]].tolist()
    test_q = x.query_ids[perm[150:]].tolist()
    test = _subset(x, test_q)

    def test_ndcg(method, **kw) -> float:
        out = fuse_input(test, method=method, norm="min-max", k=100, **kw)
        return float(evaluate(qrels, to_run(test, *out), ["ndcg_cut.10"]).summary["ndcg_cut_10"])

    rows = []
    for method in ("wsum", "rrf"):
        base_kw = {"weights": [1.0, 1.0]}
        rows.append((method, "default (equal weights, k=60)", "—", test_ndcg(method, **base_kw)))
        t = time.perf_counter()
        g = grid_search(x, qrels, method=method, queries=train_q)
        tg = time.perf_counter() - t
        kw = {"weights": g["weights"]}
        if method == "rrf":
            kw["rrf_k"] = g["rrf_k"]
        desc = f"grid: w={[round(v, 2) for v in g['weights']]}" + (
            f", k={g['rrf_k']}" if method == "rrf" else ""
        )
        rows.append(
            (method, desc, f"{tg:.1f}s (train {g['ndcg_cut_10']:.4f})", test_ndcg(method, **kw))
        )
        t = time.perf_counter()
        lw = learn_weights(x, qrels, method=method, queries=train_q, steps=150)
        tl = time.perf_counter() - t
        kw = {"weights": lw["weights"]}
        if method == "rrf":
            kw["rrf_k"] = lw["rrf_k"]
        desc = f"gradient: w={[round(v, 2) for v in lw['weights']]}" + (
            f", k={lw['rrf_k']:.1f}" if method == "rrf" else ""
        )
        rows.append(
            (method, desc, f"{tl:.1f}s (approx {lw['objective'][-1]:.4f})", test_ndcg(method, **kw))
        )
    print("| method | parameters (chosen on 150 train queries) | time | test nDCG@10 (150) |")
    print("|---|---|---:|---:|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]:.4f} |")


if __name__ == "__main__":
    main()

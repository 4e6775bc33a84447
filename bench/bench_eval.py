"""Benchmark: evaluating runs (nDCG@10 + MAP + recall@100 + P@10 + MRR).

Side by side in one process:

* jaxrank, arrays already built (``evaluate_arrays`` on ``EvalArrays``, compiled),
* jaxrank, in memory (``evaluate`` on prebuilt ``Qrels``/``Run``, the trec_eval-exact path),
* jaxrank, end to end from files (``read_qrels``/``read_run`` + ``evaluate``),
* ranx 0.3.21 (``Qrels``/``Run`` prebuilt, after its numba warm-up),
* pytrec_eval, end to end (files read into its dicts with a plain Python loop, then
  evaluated) and evaluation alone.

Datasets: SciFact test (BM25 run, 300 queries x 100 docs) and a synthetic run of
100,000 queries x 100 documents (``--queries`` to change) written by :func:`write_synthetic`
with a fixed seed. Also reports jaxrank's run-file parsing rate (lines/s).

Run: ``python bench/bench_eval.py`` (add ``--one-core`` to pin to one CPU core).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import data_dir, fmt_s, machine, table, timeit

MEASURES = ["ndcg_cut.10", "map", "recall.100", "P.10", "recip_rank"]
LABELS = ["ndcg_cut_10", "map", "recall_100", "P_10", "recip_rank"]
RANX = ["ndcg@10", "map", "recall@100", "precision@10", "mrr"]
PYTREC = {"ndcg_cut.10", "map", "recall.100", "P.10", "recip_rank"}


def write_synthetic(folder: Path, queries: int, docs: int = 100, seed: int = 0):
    """A run of ``queries`` x ``docs`` and qrels with 3 graded relevant retrieved documents
    plus one relevant unretrieved document per query (seeded)."""
    run_path = folder / f"synthetic-{queries}x{docs}.run"
    qrels_path = folder / f"synthetic-{queries}x{docs}.qrels"
    if run_path.exists() and qrels_path.exists():
        return qrels_path, run_path
    rng = np.random.default_rng(seed)
    with open(run_path, "w") as run, open(qrels_path, "w") as qrels:
        for start in range(0, queries, 1000):
            block = min(1000, queries - start)
            scores = -np.sort(-rng.random((block, docs)), axis=1)
            ids = rng.integers(0, 10_000_000, size=(block, docs))
            rel = np.argsort(rng.random((block, docs)), axis=1)[:, :3]
            grades = rng.integers(1, 3, size=(block, 3))
            lines, qlines = [], []
            for b in range(block):
                q = start + b
                lines.extend(
                    f"{q} Q0 D{ids[b, r]}-{r} {r + 1} {scores[b, r]:.6f} synthetic\n"
                    for r in range(docs)
                )
                pairs = zip(rel[b], grades[b], strict=True)
                qlines.extend(f"{q} 0 D{ids[b, r]}-{r} {g}\n" for r, g in pairs)
                qlines.append(f"{q} 0 unretrieved-{q} 1\n")
            run.writelines(lines)
            qrels.writelines(qlines)
    return qrels_path, run_path


def pytrec_end_to_end(qrels_path: Path, run_path: Path, reader_qrels_beir: bool):
    import pytrec_eval

    qrels: dict = {}
    with open(qrels_path) as fh:
        if reader_qrels_beir:
            next(fh)
            for line in fh:
                q, d, r = line.split("\t")
                qrels.setdefault(q, {})[d] = int(r)
        else:
            for line in fh:
                q, _, d, r = line.split()
                qrels.setdefault(q, {})[d] = int(r)
    run: dict = {}
    import gzip

    opener = gzip.open if str(run_path).endswith(".gz") else open
    with opener(run_path, "rt") as fh:
        for line in fh:
            q, _, d, _, s, _ = line.split()
            run.setdefault(q, {})[d] = float(s)
    return pytrec_eval.RelevanceEvaluator(qrels, PYTREC).evaluate(run)


def bench(name, qrels_path, run_path, beir: bool, repeat: int):
    import jax
    import pytrec_eval
    import ranx

    from jaxrank.eval import build_arrays, evaluate, evaluate_arrays
    from jaxrank.io import read_beir_qrels, read_qrels, read_run

    read_q = read_beir_qrels if beir else read_qrels
    qrels, run = read_q(qrels_path), read_run(run_path)
    lines = len(run)
    parse = timeit(lambda: read_run(run_path), repeat=repeat)
    arrays = build_arrays(qrels, run, ndcg_cutoffs=(10,))
    kw = {"ndcg_cutoffs": (10,), "p_cutoffs": (10,), "recall_cutoffs": (100,)}
    fast = evaluate_arrays(arrays, **kw)
    t_arrays = timeit(lambda: evaluate_arrays(arrays, **kw), repeat=max(repeat, 5))
    t_build = timeit(lambda: build_arrays(qrels, run, ndcg_cutoffs=(10,)), repeat=1, warmup=0)
    exact = evaluate(qrels, run, MEASURES)
    t_exact = timeit(lambda: evaluate(qrels, run, MEASURES), repeat=repeat)
    t_e2e = timeit(lambda: evaluate(read_q(qrels_path), read_run(run_path), MEASURES),
                   repeat=repeat)  # fmt: skip

    qd, rd = qrels.to_dict(), run.to_dict()
    rq, rr = ranx.Qrels(qd), ranx.Run(rd)
    ranx.evaluate(rq, rr, RANX)  # numba warm-up
    t_ranx = timeit(lambda: ranx.evaluate(rq, rr, RANX), repeat=repeat)

    pt = pytrec_eval.RelevanceEvaluator(qd, PYTREC)
    t_pt_eval = timeit(lambda: pt.evaluate(rd), repeat=repeat)
    ref = pt.evaluate(rd)
    t_pt_e2e = timeit(lambda: pytrec_end_to_end(qrels_path, run_path, beir), repeat=repeat,
                      warmup=0)  # fmt: skip

    qids = exact.query_ids
    diffs = {}
    for lab in LABELS:
        want = np.array([ref[q][lab] for q in qids])
        diffs[lab] = (
            float(np.abs(exact.per_query[lab] - want).max()),
            float(np.abs(np.asarray(fast[lab]) - want).max()),
        )
    ranx_means = ranx.evaluate(rq, rr, RANX)
    rows = [
        ["jaxrank arrays (jit, built)", fmt_s(t_arrays), f"{t_ranx / t_arrays:.1f}×",
         f"{t_pt_e2e / t_arrays:.0f}×"],
        ["jaxrank in memory (exact, host)", fmt_s(t_exact), f"{t_ranx / t_exact:.2f}×",
         f"{t_pt_e2e / t_exact:.1f}×"],
        ["jaxrank end to end (files)", fmt_s(t_e2e), f"{t_ranx / t_e2e:.2f}×",
         f"{t_pt_e2e / t_e2e:.2f}×"],
        ["ranx (prebuilt, warm)", fmt_s(t_ranx), "1.00×", f"{t_pt_e2e / t_ranx:.1f}×"],
        ["pytrec_eval (evaluate only)", fmt_s(t_pt_eval), f"{t_ranx / t_pt_eval:.2f}×",
         f"{t_pt_e2e / t_pt_eval:.1f}×"],
        ["pytrec_eval end to end (loop + evaluate)", fmt_s(t_pt_e2e),
         f"{t_ranx / t_pt_e2e:.2f}×", "1.00×"],
    ]  # fmt: skip
    print(f"\n### {name}: {len(qids):,} queries, {lines:,} run lines\n")
    print(table(["system", "median time", "speed vs ranx", "speed vs pytrec_eval e2e"], rows))
    print(
        f"\njaxrank parsing: {lines / parse / 1e6:.2f} M lines/s (read_run median {fmt_s(parse)});"
        f" build_arrays {fmt_s(t_build)}; arrays on {jax.devices()[0].platform}"
    )
    print("\nmax |jaxrank - pytrec_eval| per query (exact path / arrays path):")
    print(table(["measure", "exact", "arrays", "ranx mean", "jaxrank mean"], [
        [lab, f"{a:.1e}", f"{b:.1e}", f"{ranx_means[r]:.4f}", f"{exact.summary[lab]:.4f}"]
        for (lab, (a, b)), r in zip(diffs.items(), RANX, strict=True)
    ]))  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(data_dir()))
    ap.add_argument("--queries", type=int, default=100_000, help="synthetic queries")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cache", default="/tmp/jaxrank-bench", help="synthetic files folder")
    ap.add_argument("--one-core", action="store_true", help="pin the process to CPU 0")
    args = ap.parse_args()
    if args.one_core:
        os.sched_setaffinity(0, {0})
    warnings.filterwarnings("ignore", message=".*run queries have no qrels")
    print(f"Machine: {machine()}")
    data = Path(args.data)
    bench(
        "SciFact test, BM25 (bm25s lucene k1=1.2 b=0.75) top-100",
        data / "beir_scifact" / "qrels" / "test.tsv",
        data
        / "runs_generated"
        / "scifact"
        / "scifact-test.bm25s-lucene-k11.2-b0.75.top100.trec.gz",
        beir=True,
        repeat=args.repeat,
    )
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    qrels_path, run_path = write_synthetic(cache, args.queries)
    print(f"\n(synthetic files ready in {time.perf_counter() - t0:.1f} s)")
    bench(f"Synthetic {args.queries:,} queries x 100 docs", qrels_path, run_path, beir=False,
          repeat=args.repeat)  # fmt: skip


if __name__ == "__main__":
    main()

"""Benchmark: jaxrank.fusion against ranx 0.3.21 ``fuse``, side by side in one run.

Workloads: the two SciFact runs (BM25 + LSI, 300 queries × top-100) and a synthetic
Q queries × 5 runs × 1,000 docs (default Q = 500 to stay near 5 minutes on a small
machine -- building ranx's Runs alone takes a minute; ``--queries 10000`` for the
issue's full size). Methods: RRF,
CombSUM + min-max, CombMNZ + min-max, BordaFuse.

* ranx: ``ranx.fuse`` on prebuilt ``ranx.Run`` objects, after one warm-up call (numba
  JIT compiled).
* jaxrank arrays: :func:`jaxrank.fusion.fuse_arrays` on ``[Q, M, K]`` arrays already
  on the device, after compilation (``presorted=True``: runs are in rank order, as
  retrieval output is).
* jaxrank end to end: :func:`jaxrank.fusion.fuse` from the TREC files (read, map ids,
  fuse, build the fused ``Run``), compiled functions cached (SciFact only; the
  synthetic workload has no files).

Prints the machine, then a Markdown table of medians and ratios.

    PYTHONPATH=. python bench/bench_fusion.py [--queries 10000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import gzip
import os
import platform
import statistics
import time
from collections import defaultdict
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxrank.fusion import fuse, fuse_arrays, runs_to_arrays

METHODS = [("rrf", "min-max"), ("sum", "min-max"), ("mnz", "min-max"), ("bordafuse", "min-max")]
LABEL = {"rrf": "RRF", "sum": "CombSUM+min-max", "mnz": "CombMNZ+min-max", "bordafuse": "Borda"}
DATA = Path(
    os.environ.get("JAXRANK_TEST_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{model}, {os.cpu_count()} cores, load average {load:.1f}; "
        f"Python {platform.python_version()}, jax {jax.__version__} ({jax.default_backend()})"
    )


def timeit(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def load_gz(path) -> dict[str, dict[str, float]]:
    d: dict[str, dict[str, float]] = defaultdict(dict)
    with gzip.open(path, "rt") as fh:
        for line in fh:
            q, _, doc, _, s, _ = line.split()
            d[q][doc] = float(s)
    return dict(d)


def bench_workload(
    name, ranx_runs, arrays, files, repeats, rows, ranx_repeats=None, borda_subset=None
):
    import ranx

    d, s, w = (jnp.asarray(a) for a in arrays)
    K = d.shape[-1] * d.shape[-2]
    for method, norm in METHODS:
        runs, scale = ranx_runs, 1.0
        if method == "bordafuse" and borda_subset is not None:
            # ranx's Borda tests list membership for every candidate (quadratic per
            # query): time it on a few queries and scale linearly by the query count.
            runs = [ranx.Run({q: r[q] for q in list(r.keys())[:borda_subset]}) for r in ranx_runs]
            scale = len(ranx_runs[0]) / borda_subset
        ranx.fuse(runs, norm=norm, method=method)  # numba warm-up
        t_ranx = scale * timeit(
            lambda m=method, n=norm, r=runs: ranx.fuse(r, norm=n, method=m),
            ranx_repeats or repeats,
        )

        def run_arrays(m=method, n=norm):
            jax.block_until_ready(fuse_arrays(d, s, w, method=m, norm=n, k=K, presorted=True))

        run_arrays()  # compile
        t_arr = timeit(run_arrays, repeats)
        t_e2e = float("nan")
        if files is not None:
            fuse(files, method=method, norm=norm)  # compile
            t_e2e = timeit(lambda m=method, n=norm: fuse(files, method=m, norm=n), repeats)
        rows.append((name, LABEL[method], t_ranx, t_arr, t_e2e))
        print(
            f"  {name:10s} {LABEL[method]:16s} ranx {t_ranx:8.3f}s  arrays {t_arr:8.4f}s  "
            f"files {t_e2e:8.3f}s",
            flush=True,
        )


def synthetic(Q: int, M: int = 5, K: int = 1000, pool: int = 3000, seed: int = 0):
    """Q queries; each run retrieves K of `pool` docs per query, scores sorted descending."""
    rng = np.random.default_rng(seed)
    docs = np.argsort(rng.random((Q, M, pool)), axis=-1)[..., :K].astype(np.int32)
    scores = -np.sort(-rng.random((Q, M, K)), axis=-1)
    # global doc index = query * pool + local doc, so queries share no documents
    gdocs = (docs + (np.arange(Q) * pool)[:, None, None]).astype(np.int32)
    where = np.ones((Q, M, K), bool)
    return gdocs, scores, where


def ranx_runs_from_arrays(docs, scores):
    import ranx

    Q, M, _ = docs.shape
    runs = []
    for m in range(M):
        d = {
            f"q{q}": dict(zip(map(str, docs[q, m].tolist()), scores[q, m].tolist(), strict=True))
            for q in range(Q)
        }
        runs.append(ranx.Run(d, name=f"r{m}"))
    return runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--queries", type=int, default=500, help="synthetic queries (500)")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    import ranx

    print(f"machine: {machine()}")
    print(f"ranx {ranx.__version__ if hasattr(ranx, '__version__') else '0.3.21'}")
    rows: list[tuple] = []

    folder = DATA / "runs_generated" / "scifact"
    files = [
        folder / "scifact-test.bm25s-lucene-k11.2-b0.75.top100.trec.gz",
        folder / "scifact-test.lsi256-tfidf.top100.trec.gz",
    ]
    ranx_runs = [ranx.Run.from_file(str(f), kind="gz") for f in files]
    x = runs_to_arrays([load_gz(f) for f in files])
    from jaxrank.fusion._host import _presort

    dd, ss = _presort(x.doc_ids, x.scores, x.where)
    arrays = (dd, ss.astype(np.float32), x.where)
    bench_workload("SciFact", ranx_runs, arrays, files, args.repeats, rows)

    t = time.perf_counter()
    docs, scores, where = synthetic(args.queries)
    ranx_syn = ranx_runs_from_arrays(docs, scores)
    print(f"  synthetic {args.queries}×5×1000 built in {time.perf_counter() - t:.1f}s", flush=True)
    bench_workload(
        f"synthetic {args.queries}×5×1000",
        ranx_syn,
        (docs, scores.astype(np.float32), where),
        None,
        3,
        rows,
        ranx_repeats=1,  # one timed ranx call after its warm-up: it takes seconds
        borda_subset=20,
    )

    print()
    print("Synthetic Borda: ranx timed on 20 queries, scaled linearly to all queries.")
    print(
        "| workload | method | ranx `fuse` (prebuilt Runs) | jaxrank arrays | speed-up "
        "| jaxrank from TREC files | ratio vs ranx |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, label, t_ranx, t_arr, t_e2e in rows:
        e2e = "—" if np.isnan(t_e2e) else f"{t_e2e * 1e3:.0f} ms"
        ratio = "—" if np.isnan(t_e2e) else f"{t_ranx / t_e2e:.1f}×"
        print(
            f"| {name} | {label} | {t_ranx * 1e3:.0f} ms | {t_arr * 1e3:.1f} ms "
            f"| {t_ranx / t_arr:.0f}× | {e2e} | {ratio} |"
        )


if __name__ == "__main__":
    main()

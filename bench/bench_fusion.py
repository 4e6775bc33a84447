"""Benchmark: jaxrank.fusion against ranx 0.3.21 ``fuse``, side by side in one run.

Workloads: the two SciFact runs (BM25 + LSI, 300 queries × top-100) and a synthetic
Q queries × 5 runs × 1,000 docs (default Q = 10,000, the issue's size). Methods: RRF,
CombSUM + min-max, CombMNZ + min-max, BordaFuse.

* ranx: ``ranx.fuse`` on prebuilt ``ranx.Run`` objects, after one warm-up call (numba
  JIT compiled). On the synthetic workload ranx is timed on the first ``--ranx-queries``
  queries (default 200; Borda 20, as its per-query cost is quadratic) and scaled
  linearly to Q: its per-query work does not depend on Q, and building ranx Runs of
  50 M entries needs more memory and minutes than a small machine has.
* jaxrank arrays: :func:`jaxrank.fusion.fuse_arrays` on ``[Q, M, K]`` arrays already
  on the device, after compilation (``presorted=True``: runs are in rank order, as
  retrieval output is), all fused candidates returned (as ranx does).
* jaxrank end to end: :func:`jaxrank.fusion.fuse` from TREC files (read, map ids,
  fuse, build the fused ``Run``), compiled functions cached: the SciFact ``.trec.gz``
  files, and for the synthetic workload TREC files of the ``--ranx-queries`` queries
  written to a temporary folder (compared with ranx on the same queries).

Prints the machine, the load average before and after, then a Markdown table of
medians and ratios. Pin one core for comparable numbers:

    PYTHONPATH=. taskset -c 0 python bench/bench_fusion.py [--queries 10000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxrank.fusion import fuse, fuse_arrays, runs_to_arrays
from jaxrank.io import read_run

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cpu_model, data_dir

METHODS = [("rrf", "min-max"), ("sum", "min-max"), ("mnz", "min-max"), ("bordafuse", "min-max")]
LABEL = {"rrf": "RRF", "sum": "CombSUM+min-max", "mnz": "CombMNZ+min-max", "bordafuse": "Borda"}
DATA = data_dir()


def load() -> str:
    la = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return f"{la[0]:.2f} / {la[1]:.2f} / {la[2]:.2f}"


def machine() -> str:
    model = cpu_model()
    pinned = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    import jaxrank

    info = jaxrank.native_info()
    native = info.get("isa", "?") if info.get("available") else "unavailable (pure JAX)"
    return (
        f"{model}, {os.cpu_count()} cores ({pinned} usable by this process); "
        f"Python {platform.python_version()}, jax {jax.__version__} ({jax.default_backend()}), "
        f"jaxrank native core: {native}"
    )


def timeit(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def load_gz(path) -> dict[str, dict[str, float]]:
    return read_run(path).to_dict()


def bench_workload(name, ranx_runs, arrays, files, repeats, rows, ranx_runs_borda=None,
                   scale=1.0, scale_borda=1.0, e2e_ranx_scale=None):  # fmt: skip
    """ranx (scaled by `scale` when timed on a subset), jaxrank arrays, jaxrank files.

    `files` are TREC files of the queries ranx was timed on; the end-to-end ratio is
    against ranx on exactly those queries (`e2e_ranx_scale` undoes the scaling)."""
    import ranx

    d, s, w = (jnp.asarray(a) for a in arrays)
    K = d.shape[-1] * d.shape[-2]
    for method, norm in METHODS:
        runs, sc = ranx_runs, scale
        if method == "bordafuse" and ranx_runs_borda is not None:
            runs, sc = ranx_runs_borda, scale_borda
        ranx.fuse(runs, norm=norm, method=method)  # numba warm-up
        t_sub = timeit(lambda m=method, n=norm, r=runs: ranx.fuse(r, norm=n, method=m), repeats)
        t_ranx = sc * t_sub

        def run_arrays(m=method, n=norm):
            jax.block_until_ready(fuse_arrays(d, s, w, method=m, norm=n, k=K, presorted=True))

        run_arrays()  # compile
        t_arr = timeit(run_arrays, repeats)
        t_e2e, t_ranx_files = float("nan"), float("nan")
        if files is not None:
            fuse(files, method=method, norm=norm)  # compile
            t_e2e = timeit(lambda m=method, n=norm: fuse(files, method=m, norm=n), repeats)
            # ranx's time (scaled to all queries) back to the files' queries
            t_ranx_files = t_ranx if e2e_ranx_scale is None else t_ranx / e2e_ranx_scale
        rows.append((name, LABEL[method], t_ranx, t_arr, t_e2e, t_ranx_files))
        print(
            f"  {name:10s} {LABEL[method]:16s} ranx {t_ranx:8.3f}s  arrays {t_arr:8.4f}s  "
            f"files {t_e2e:8.4f}s (ranx on the files' queries {t_ranx_files:8.4f}s)",
            flush=True,
        )


def synthetic(Q: int, M: int = 5, K: int = 1000, pool: int = 3000, seed: int = 0):
    """Q queries; each run retrieves K of `pool` docs per query, scores sorted descending."""
    rng = np.random.default_rng(seed)
    docs = np.concatenate(
        [
            np.argsort(rng.random((min(500, Q - i), M, pool)), axis=-1)[..., :K].astype(np.int32)
            for i in range(0, Q, 500)
        ]
    )
    scores = -np.sort(-rng.random((Q, M, K), dtype=np.float32), axis=-1)
    # global doc index = query * pool + local doc, so queries share no documents
    gdocs = (docs + (np.arange(Q) * pool)[:, None, None]).astype(np.int32)
    where = np.ones((Q, M, K), bool)
    return gdocs, scores, where


def ranx_runs_from_arrays(docs, scores, queries):
    import ranx

    _, M, _ = docs.shape
    runs = []
    for m in range(M):
        d = {
            f"q{q}": dict(zip(map(str, docs[q, m].tolist()), scores[q, m].tolist(), strict=True))
            for q in range(queries)
        }
        runs.append(ranx.Run(d, name=f"r{m}"))
    return runs


def write_trec(folder: Path, docs, scores, queries) -> list[Path]:
    """One TREC file per run for the first `queries` queries (rank order, as written)."""
    paths = []
    for m in range(docs.shape[1]):
        path = folder / f"run{m}.trec"
        with open(path, "w") as fh:
            for q in range(queries):
                fh.writelines(
                    f"q{q} Q0 {d} {r} {s!r} r{m}\n"
                    for r, (d, s) in enumerate(
                        zip(docs[q, m].tolist(), scores[q, m].tolist(), strict=True), 1
                    )
                )
        paths.append(path)
    return paths


def main() -> None:
    import tempfile

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--queries", type=int, default=10_000, help="synthetic queries (10,000)")
    ap.add_argument(
        "--ranx-queries", type=int, default=200, help="synthetic queries ranx is timed on (200)"
    )
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    import ranx

    print(f"machine: {machine()}")
    print(f"load average before: {load()}")
    print(f"ranx {getattr(ranx, '__version__', '0.3.21')}")
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
    Q, R, RB = args.queries, min(args.ranx_queries, args.queries), min(20, args.queries)
    docs, scores, where = synthetic(Q)
    ranx_syn = ranx_runs_from_arrays(docs, scores, R)
    ranx_borda = ranx_runs_from_arrays(docs, scores, RB)
    print(f"  synthetic {Q}×5×1000 built in {time.perf_counter() - t:.1f}s", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_trec(Path(tmp), docs, scores, R)
        bench_workload(
            f"synthetic {Q:,}×5×1000",
            ranx_syn,
            (docs, scores.astype(np.float32), where),
            paths,
            3,
            rows,
            ranx_runs_borda=ranx_borda,
            scale=Q / R,
            scale_borda=Q / RB,
            e2e_ranx_scale=Q / R,
        )

    print(f"load average after: {load()}")
    print()
    print(
        f"Synthetic: ranx timed on {R} queries (Borda: {RB}) and scaled linearly to {Q:,}; "
        f"end to end = jaxrank from TREC files of the same {R} queries vs ranx on them "
        "(Borda: ranx's time on 20 queries scaled to them: ×R/20)."
    )
    print(
        "| workload | method | ranx `fuse` (prebuilt Runs) | jaxrank arrays | speed-up "
        "| jaxrank from TREC files | ranx ÷ files |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, label, t_ranx, t_arr, t_e2e, t_ranx_files in rows:
        e2e = "—" if np.isnan(t_e2e) else f"{t_e2e * 1e3:.0f} ms"
        ratio = "—" if np.isnan(t_e2e) else f"{t_ranx_files / t_e2e:.1f}×"
        print(
            f"| {name} | {label} | {t_ranx * 1e3:,.0f} ms | {t_arr * 1e3:,.1f} ms "
            f"| {t_ranx / t_arr:,.0f}× | {e2e} | {ratio} |"
        )


if __name__ == "__main__":
    main()

"""Benchmark of jaxrank.metrics: rank computation by counting vs sorting, and nDCG@10
against rax 0.4.0 (the peer), on padded random batches.

Run: ``PYTHONPATH=. python bench/bench_metrics.py [--quick]``. Prints the machine and a
Markdown table (median of repeated jitted calls, results blocked on).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxrank import metrics

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cpu_model


def machine() -> str:
    cpu = cpu_model()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{cpu}, {os.cpu_count()} cores, {platform.python_version()}, jax {jax.__version__}, "
        f"{jax.devices()[0].platform}, load average {load:.2f}"
    )


def median_time(fn, *args, repeats: int) -> float:
    jax.block_until_ready(fn(*args))  # compile + warm up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer sizes and repeats")
    args = parser.parse_args()
    sizes = [10, 100, 1000] if args.quick else [10, 30, 100, 300, 1000]
    repeats = 5 if args.quick else 15
    batch = 300
    print(f"Machine: {machine()}")
    print(f"Batch {batch} lists; median of {repeats} jitted calls (ms).\n")
    try:
        import rax
    except ImportError:  # the peer is a bench dependency; say so instead of failing silently
        rax = None
        print("rax not installed: its column is empty")

    rng = np.random.default_rng(0)
    rows = []
    for n in sizes:
        scores = jnp.asarray(rng.normal(size=(batch, n)).astype(np.float32))
        labels = jnp.asarray(rng.integers(0, 5, size=(batch, n)).astype(np.float32))
        row = {"n": n}
        for method in ("count", "sort"):
            f = jax.jit(lambda s, m=method: metrics.ranks(s, method=m))
            row[f"ranks_{method}"] = median_time(f, scores, repeats=repeats)
            g = jax.jit(lambda s, y, m=method: metrics.ndcg(s, y, k=10, gain="exp2", method=m))
            row[f"ndcg_{method}"] = median_time(g, scores, labels, repeats=repeats)
        np_scores = np.asarray(scores)
        row["numpy_argsort"] = median_time(
            lambda s: np.argsort(-s, axis=-1, kind="stable"), np_scores, repeats=repeats
        )
        if rax is not None:
            r = jax.jit(lambda s, y: rax.ndcg_metric(s, y, topn=10, reduce_fn=None))
            row["rax_ndcg"] = median_time(r, scores, labels, repeats=repeats)
        rows.append(row)

    print(
        "| n | ranks count | ranks sort | numpy argsort | nDCG@10 count | nDCG@10 sort "
        "| rax nDCG@10 | rax / jaxrank auto |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        auto = row["ndcg_count"] if row["n"] <= 128 else row["ndcg_sort"]
        rax_ms = row.get("rax_ndcg", float("nan"))
        print(
            f"| {row['n']} | {row['ranks_count'] * 1e3:.2f} | {row['ranks_sort'] * 1e3:.2f} "
            f"| {row['numpy_argsort'] * 1e3:.2f} | {row['ndcg_count'] * 1e3:.2f} "
            f"| {row['ndcg_sort'] * 1e3:.2f} | {rax_ms * 1e3:.2f} | {rax_ms / auto:.2f}× |"
        )


if __name__ == "__main__":
    main()

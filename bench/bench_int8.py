"""Single-vector int8 scoring benchmark: 1 query x N=1,000,000 x D=384 with top-10.

jaxrank ``int8_scores`` (native VNNI kernel) vs XLA f32 matvec, numpy f32, simsimd and
numkong int8 dot products, FAISS ``IndexScalarQuantizer(QT_8bit)`` and ``IndexFlatIP``;
one core pinned with taskset (headline) and two threads. Reports median wall ms, CPU ms,
GB/s of corpus bytes read against the measured triad bandwidth, and recall@10 against the
exact float32 top-10.

    python bench/bench_int8.py [--n 1000000] [--threads 1 2] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _machine

D, K = 384, 10


def _topk_np(scores, k):
    import numpy as np

    idx = np.argpartition(-scores, k)[:k]
    return idx[np.argsort(-scores[idx], kind="stable")]


def child(args) -> None:
    import jax
    import jax.numpy as jnp
    import numpy as np

    from jaxrank.quant import int8_dot, int8_scores, quantize_int8

    threads, n = args.threads, args.n
    bw = _machine.triad_bandwidth()
    bw_c = _machine.triad_bandwidth_cpu()
    print(json.dumps({"kind": "machine", "threads": threads, "triad": bw, "triad_cpu": bw_c}))
    rng = np.random.default_rng(0)
    docs = rng.standard_normal((n, D), dtype=np.float32)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    q = docs[123] + 0.5 * rng.standard_normal(D).astype(np.float32)
    q /= np.linalg.norm(q)
    exact = set(_topk_np(docs @ q, K).tolist())
    codes, scales = quantize_int8(jnp.asarray(docs))
    codes_np, scales_np = np.asarray(codes), np.asarray(scales)
    qc, _ = quantize_int8(jnp.asarray(q))
    jdocs, jq = jnp.asarray(docs), jnp.asarray(q)
    rows = []

    def add(name, prec, nbytes, fn, repeats=args.repeats):
        ids = fn()
        recall = len(exact & {int(i) for i in np.asarray(ids).ravel()[:K]}) / K
        fn()
        walls, cpus = [], []
        for _ in range(repeats):
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
        t = float(np.median(walls))
        rows.append(
            {
                "impl": name,
                "prec": prec,
                "ms": t * 1e3,
                "cpu_ms": np.median(cpus) * 1e3,
                "gbs": nbytes / t / 1e9,
                "gbs_cpu": nbytes / float(np.median(cpus)) / 1e9,
                "recall": recall,
            }
        )

    f_i8 = jax.jit(lambda q, c, s: jax.lax.top_k(int8_scores(q, c, s, num_threads=threads), K)[1])
    add(
        "jaxrank int8_scores + lax.top_k",
        "int8",
        n * D,
        lambda: f_i8(jq, codes, scales).block_until_ready(),
    )
    f_dot = jax.jit(lambda q, c: int8_dot(q, c, num_threads=threads))
    qc_np = np.asarray(qc)

    def i8_np_topk():
        dots = np.asarray(f_dot(qc_np, codes))
        return _topk_np(dots.astype(np.float32) * scales_np, K)

    add("jaxrank int8_dot + numpy top-k", "int8", n * D, i8_np_topk)
    f_f32 = jax.jit(lambda d, q: jax.lax.top_k(d @ q, K)[1])
    add(
        "XLA f32 matvec + lax.top_k", "f32", 4 * n * D, lambda: f_f32(jdocs, jq).block_until_ready()
    )
    add("numpy f32 matvec + argpartition", "f32", 4 * n * D, lambda: _topk_np(docs @ q, K))
    qc2 = qc_np[None, :]
    try:
        import simsimd

        add(
            "simsimd int8 dot",
            "int8",
            n * D,
            lambda: _topk_np(
                np.asarray(simsimd.cdist(qc2, codes_np, metric="dot", threads=threads))[0]
                * scales_np,
                K,
            ),
        )
    except ImportError as exc:
        rows.append({"impl": "simsimd", "prec": "int8", "missing": str(exc)})
    try:
        import numkong as nk

        packed = nk.dots_pack(codes_np)  # index time

        add(
            "numkong int8 dots_packed",
            "int8",
            n * D,
            lambda: _topk_np(np.asarray(nk.dots_packed(qc2, packed))[0] * scales_np, K),
        )
    except ImportError as exc:
        rows.append({"impl": "numkong", "prec": "int8", "missing": str(exc)})
    try:
        import faiss

        faiss.omp_set_num_threads(threads)
        sq = faiss.IndexScalarQuantizer(
            D, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
        )
        sq.train(docs[:100000])
        sq.add(docs)
        add(
            "FAISS IndexScalarQuantizer(QT_8bit)",
            "int8",
            n * D,
            lambda: sq.search(q[None, :], K)[1],
        )
        flat = faiss.IndexFlatIP(D)
        flat.add(docs)
        add("FAISS IndexFlatIP", "f32", 4 * n * D, lambda: flat.search(q[None, :], K)[1])
    except ImportError as exc:
        rows.append({"impl": "faiss", "prec": "int8", "missing": str(exc)})
    print(json.dumps({"kind": "config", "threads": threads, "n": n, "rows": rows}))


def report(results: list[dict]) -> None:
    machines = {r["threads"]: r for r in results if r["kind"] == "machine"}
    for r in results:
        if r["kind"] != "config":
            continue
        bw = machines[r["threads"]]["triad"]
        bw_c = machines[r["threads"]]["triad_cpu"]
        print(
            f"### int8 single-vector scoring, 1 query x N={r['n']:,} x D={D}, top-{K}, "
            f"{r['threads']} thread(s){' (taskset -c 0)' if r['threads'] == 1 else ''}"
        )
        print(
            f"STREAM triad: {bw:.1f} GB/s wall, {bw_c:.1f} GB/s per CPU second; the int8 "
            "roofline (codes read once, wall) is "
            f"{r['n'] * D / bw / 1e6:.1f} ms, f32 {4 * r['n'] * D / bw / 1e6:.1f} ms\n"
        )
        print(
            "| implementation | precision | median ms | CPU ms | GB/s | % of triad "
            "| GB/s per CPU s | % of triad (CPU) | recall@10 |"
        )
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
        for x in r["rows"]:
            if "missing" in x:
                print(f"| {x['impl']} | {x['prec']} | MISSING: {x['missing']} | | | | | | |")
                continue
            print(
                f"| {x['impl']} | {x['prec']} | {x['ms']:.1f} | {x['cpu_ms']:.1f} | "
                f"{x['gbs']:.1f} | {100 * x['gbs'] / bw:.0f}% | {x['gbs_cpu']:.1f} | "
                f"{100 * x['gbs_cpu'] / bw_c:.0f}% | {x['recall']:.1f} |"
            )
        print()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--threads", type=int, nargs="*", default=[1, 2])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        args.threads = args.threads[0]
        child(args)
        return
    print(_machine.describe())
    results = []
    for t in args.threads:
        results += _machine.run_child(
            __file__, t, ["--n", str(args.n), "--repeats", str(args.repeats)]
        )
    report(results)


if __name__ == "__main__":
    main()

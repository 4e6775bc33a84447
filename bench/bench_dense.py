"""Benchmark: jaxrank dense search vs FAISS and usearch, side by side in one run.

Corpora: SciFact all-MiniLM-L6-v2 embeddings (5,183 x 384, the 300 test queries) and a
synthetic mixture of 1,000 Gaussian clusters (``bench/_dense_data.py``; 100,000 x 384
by default, ``--synthetic 1000000`` for the issue's 1M x 384, which takes several
minutes and ~3 GB; ``--synthetic 0`` skips it). usearch HNSW is built on the synthetic
corpus only with ``--hnsw`` (its build took 318 s for 100k vectors on the 2-core machine).

Systems (inner product on unit vectors = cosine; top-10):

* exact: jaxrank ``exact_search`` float32 and int8 (int8 x int8 codes, native VNNI
  kernel when the native core is loaded), FAISS ``IndexFlatIP``, FAISS
  ``IndexScalarQuantizer`` (QT_8bit, IP), usearch exact brute force (``search(...,
  exact=True)``) and usearch HNSW (f32, default connectivity, ``expansion_search=64``);
* PQ: jaxrank ``train_pq``/``pq_search`` (ADC tables, optional float32 rescoring) vs
  FAISS ``IndexPQ`` with the same subspaces and 8 bits;
* IVF recall/speed curve: jaxrank ``build_ivf``/``ivf_search`` (float32 lists, native
  scan; padded and split storage) vs FAISS ``IndexIVFFlat`` with the same number of
  lists, k-means on the same number of rows, for nprobe = 1..256 (until all reach
  0.99); "equal recall" rows compare the fastest setting of each reaching recall@10
  >= 0.9 / 0.95.

recall@10 = |top-10 ∩ exact float top-10| / 10, averaged over queries. QPS at batch 1
= 1 / median single-query latency (one query per call, results fetched to the host;
up to 128 queries x repeats, at most ~2 s per system); at batch 256 = 256 / median time
of one 256-query call. Build/train time is excluded
from QPS. Every system uses all cores of the machine (``os.cpu_count()``).

Scale check (the issue's 1M x 384 target, IVF at recall@10 >= 0.95 at least 5x faster
than exact search): ``--scale-check 1000000`` runs only that (jaxrank exact vs jaxrank
IVF with the native scan, FAISS IVFFlat alongside unless ``--no-faiss``).

Usage: ``python bench/bench_dense.py [--data DIR] [--synthetic N] [--repeats 3] [--hnsw]
[--scale-check N [--no-faiss]]``.
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
from _dense_data import corpus_and_queries

from jaxrank.quant import binary_quantize, quantize_int8
from jaxrank.retrieve import (
    build_ivf,
    exact_search,
    ivf_search,
    pq_encode,
    pq_search,
    train_pq,
    two_stage_search,
)

K = 10


def recall(got, ref) -> float:
    got, ref = np.asarray(got)[:, :K], np.asarray(ref)[:, :K]
    return float(np.mean([len(set(a) & set(b)) / K for a, b in zip(got, ref, strict=True)]))


def per_query_seconds(fn, queries, repeats, budget=2.0) -> float:
    """Median latency of ``fn(q[None])`` over up to 128 queries x ``repeats`` (after one
    warm-up call), stopping after ``budget`` seconds (at least 3 calls)."""
    fn(queries[:1])
    times = []
    start = time.perf_counter()
    for _ in range(repeats):
        for i in range(min(len(queries), 128)):
            t0 = time.perf_counter()
            fn(queries[i : i + 1])
            times.append(time.perf_counter() - t0)
            if len(times) >= 3 and time.perf_counter() - start > budget:
                return float(np.median(times))
    return float(np.median(times))


def batch_seconds(fn, queries, repeats, budget=4.0) -> float:
    fn(queries)
    times = []
    start = time.perf_counter()
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(queries)
        times.append(time.perf_counter() - t0)
        if time.perf_counter() - start > budget:
            break
    return float(np.median(times))


def _np(hits):
    return np.asarray(hits.indices)


def exact_systems(x, faiss, hnsw_too):
    """name -> search(queries [B, D]) returning ids [B, K] as numpy."""
    d = x.shape[1]
    xj = jnp.asarray(x)
    codes, scales = quantize_int8(xj)
    f32 = jax.jit(partial(exact_search, k=K, chunk_size=16384))
    i8 = jax.jit(partial(exact_search, k=K, chunk_size=16384))
    systems = {
        "jaxrank exact f32": lambda q: _np(f32(q, xj)),
        "jaxrank exact int8": lambda q: _np(i8(q, codes, scales=scales)),
    }
    flat = faiss.IndexFlatIP(d)
    flat.add(x)
    systems["FAISS IndexFlatIP"] = lambda q: flat.search(q, K)[1]
    sq = faiss.IndexScalarQuantizer(d, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
    sq.train(x)
    sq.add(x)
    systems["FAISS IndexScalarQuantizer (8 bit)"] = lambda q: sq.search(q, K)[1]
    from usearch.index import Index, MetricKind, search

    systems["usearch exact"] = lambda q: search(x, q, K, MetricKind.IP, exact=True).keys.reshape(
        len(q), K
    )
    build = None
    if hnsw_too:
        t0 = time.perf_counter()
        hnsw = Index(ndim=d, metric="ip", dtype="f32", expansion_search=64)
        hnsw.add(np.arange(len(x)), x)
        build = time.perf_counter() - t0
        systems["usearch HNSW (ef=64)"] = lambda q: hnsw.search(q, K).keys.reshape(len(q), K)
    return systems, build


def run_exact(name, x, q, faiss, repeats, hnsw=True):
    systems, hnsw_build = exact_systems(x, faiss, hnsw)
    ref = systems["jaxrank exact f32"](q)
    rows = []
    base = {}
    for sys_name, fn in systems.items():
        r = recall(fn(q), ref)
        t1 = per_query_seconds(fn, q, repeats)
        tb = batch_seconds(fn, q[:256], repeats)
        base.setdefault("b1", t1)
        base.setdefault("bb", tb)
        rows.append(
            [sys_name, f"{r:.3f}", f"{1 / t1:,.0f}", f"{min(256, len(q)) / tb:,.0f}", t1, tb]
        )
    flat1 = next(r for r in rows if r[0] == "FAISS IndexFlatIP")
    out = []
    for r in rows:
        out.append([*r[:4], f"{flat1[4] / r[4]:.2f}x", f"{flat1[5] / r[5]:.2f}x"])
    print(f"\n### Exact search, {name}: N={len(x):,}, D={x.shape[1]}, top-{K}\n")
    print(
        table(
            [
                "system",
                "recall@10",
                "QPS batch 1",
                "QPS batch 256",
                "batch 1 vs FAISS flat",
                "batch 256 vs FAISS flat",
            ],
            out,
        )
    )
    built = f"usearch HNSW build: {fmt_s(hnsw_build)}; " if hnsw_build is not None else ""
    print(f"\n({built}ratios > 1: faster than FAISS flat.)")
    return ref


def run_ivf(name, x, q, ref, faiss, n_lists, repeats):
    """IVF recall/speed curve. Both sides: inner product on unit vectors, k-means with
    random init and 10 iterations on min(N, 256 x lists) rows (FAISS's default cap).
    jaxrank variants: "padded" (capacity = the largest list; only up to 200k rows, the
    padding grows with the corpus) and "split" (capacity 1.2 x the mean list, larger
    lists stored as several partitions, probed together)."""
    d, n = x.shape[1], len(x)
    train = min(n, 256 * n_lists)
    cap = -(-int(1.2 * n / n_lists) // 8) * 8
    settings = {"jaxrank split": dict(capacity=cap, overflow="split")}
    if n <= 200_000:
        settings = {"jaxrank padded": {}, **settings}
    indexes, builds = {}, {}
    for label, extra in settings.items():
        t0 = time.perf_counter()
        indexes[label] = build_ivf(
            x, n_lists, key=jax.random.key(0), metric="cosine", iters=10, init="random",
            train_size=train, **extra,
        )  # fmt: skip
        jax.block_until_ready(indexes[label].vectors)
        builds[label] = time.perf_counter() - t0
    t0 = time.perf_counter()
    fivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, n_lists, faiss.METRIC_INNER_PRODUCT)
    fivf.train(x[np.random.default_rng(0).permutation(n)[:train]])
    fivf.add(x)
    builds["FAISS"] = time.perf_counter() - t0
    curve = {label: [] for label in [*indexes, "FAISS"]}
    rows = []
    for p in [p for p in (1, 2, 4, 8, 16, 32, 64, 128, 256) if p <= n_lists]:
        jf = jax.jit(partial(ivf_search, k=K, nprobe=p))
        fivf.nprobe = p
        fns = {label: (lambda qq, jf=jf, ix=ix: _np(jf(ix, qq))) for label, ix in indexes.items()}
        fns["FAISS"] = lambda qq: fivf.search(qq, K)[1]
        row = [str(p)]
        for label, fn in fns.items():
            r = recall(fn(q), ref)
            t1 = per_query_seconds(fn, q, repeats)
            tb = batch_seconds(fn, q[:256], repeats)
            curve[label].append((p, r, t1, tb))
            row += [f"{r:.3f}", f"{1 / t1:,.0f}", f"{len(q[:256]) / tb:,.0f}"]
        rows.append(row)
        if all(pts[-1][1] >= 0.99 for pts in curve.values()):
            break
    shapes = "; ".join(
        f"{label}: {ix.n_partitions} partitions of capacity {ix.capacity}, fill {ix.fill:.2f}"
        for label, ix in indexes.items()
    )
    built = ", ".join(f"{label} {fmt_s(t)}" for label, t in builds.items())
    print(
        f"\n### IVF, {name}: {n_lists} lists, k-means on {train:,} rows ({shapes}); "
        f"build: {built}\n"
    )
    head = ["nprobe"]
    for label in curve:
        head += [f"{label} recall@10", "QPS b=1", "QPS b=256"]
    print(table(head, rows))
    eq = []
    for target in (0.9, 0.95):
        pick = {}
        for label, pts in curve.items():
            ok = [pt for pt in pts if pt[1] >= target]
            pick[label] = ok[0] if ok else None
        f = pick["FAISS"]
        for label in indexes:
            j = pick[label]
            if j is None or f is None:
                eq.append([f"{target}", label, "not reached", "", ""])
                continue
            eq.append(
                [
                    f"{target}",
                    label,
                    f"nprobe={j[0]} ({j[1]:.3f}) / FAISS nprobe={f[0]} ({f[1]:.3f})",
                    f"{f[2] / j[2]:.2f}x",
                    f"{f[3] / j[3]:.2f}x",
                ]
            )
    print(f"\nIVF at equal recall, {name} (speed ratio jaxrank / FAISS, > 1 = jaxrank faster):\n")
    print(table(["recall@10 >=", "jaxrank", "settings (recall)", "batch 1", "batch 256"], eq))
    return curve


def run_two_stage(name, x, q, ref, repeats):
    """Binary / int8 / Matryoshka-prefix candidates + float32 rescoring: recall vs C."""
    xj, qj = jnp.asarray(x), jnp.asarray(q)
    bits = binary_quantize(xj)
    codes, scales = quantize_int8(xj)
    rows = []
    stages = [("binary (48 B/vector)", bits, {})]
    stages += [("int8", codes, {"stage1_scales": scales})]
    stages += [
        (f"float32 prefix d={d} (cosine)", xj[:, :d], {"stage1_metric": "cosine"})
        for d in (64, 128)
    ]
    for label, s1, kw in stages:
        for c in (10, 100, 150, 200, 400):
            f = jax.jit(partial(two_stage_search, k=K, candidates=c, **kw))
            r = recall(_np(f(qj, xj, s1)), ref)
            tb = batch_seconds(lambda qq, f=f, s1=s1: _np(f(qq, xj, s1)), qj[:256], repeats)
            rows.append([label, str(c), f"{r:.3f}", f"{min(256, len(q)) / tb:,.0f}"])
    print(f"\n### Two-stage search, {name}: stage-1 candidates C, float32 rescoring, top-{K}\n")
    print(table(["stage 1", "C", "recall@10", "QPS batch 256"], rows))


def run_pq(name, x, q, ref, faiss, repeats, m=48, candidates=100):
    """PQ (m subspaces x 8 bits = m bytes per vector) with ADC tables: jaxrank
    ``train_pq``/``pq_search`` vs FAISS ``IndexPQ`` (same m, 8 bits, inner product),
    both trained on the whole corpus; jaxrank also with exact float32 rescoring of the
    best ``candidates``."""
    d = x.shape[1]
    xj = jnp.asarray(x)
    t0 = time.perf_counter()
    pq = train_pq(xj, m, key=jax.random.key(0), iters=10, train_size=min(len(x), 256 * 256))
    codes = jax.block_until_ready(pq_encode(pq, xj))
    t_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    fpq = faiss.IndexPQ(d, m, 8, faiss.METRIC_INNER_PRODUCT)
    fpq.train(x)
    fpq.add(x)
    f_build = time.perf_counter() - t0
    adc = jax.jit(partial(pq_search, k=K))
    rer = jax.jit(partial(pq_search, k=K, candidates=candidates))
    systems = {
        "jaxrank pq_search (ADC)": lambda qq: _np(adc(qq, pq, codes)),
        f"jaxrank pq_search + float32 rescoring of {candidates}": lambda qq: _np(
            rer(qq, pq, codes, rescore_corpus=xj)
        ),
        "FAISS IndexPQ (ADC)": lambda qq: fpq.search(qq, K)[1],
    }
    rows = []
    for sys_name, fn in systems.items():
        r = recall(fn(q), ref)
        t1 = per_query_seconds(fn, q, repeats)
        tb = batch_seconds(fn, q[:256], repeats)
        rows.append([sys_name, f"{r:.3f}", f"{1 / t1:,.0f}", f"{min(256, len(q)) / tb:,.0f}"])
    print(
        f"\n### PQ, {name}: {m} subspaces x 8 bits ({m} B/vector vs {4 * d} B float32); "
        f"build: jaxrank {fmt_s(t_build)}, FAISS {fmt_s(f_build)}\n"
    )
    print(table(["system", "recall@10", "QPS batch 1", "QPS batch 256"], rows))


def run_scale_check(n, repeats, faiss, with_faiss):
    """The issue's check on the synthetic mixture: IVF at the first nprobe reaching
    recall@10 >= 0.95 vs exact float32 search, at batch 1 (and 256), both jaxrank."""
    t0 = time.perf_counter()
    xs, qs = corpus_and_queries(n, 256)
    print(f"\n(synthetic {n:,} x 384 generated in {fmt_s(time.perf_counter() - t0)})")
    xj = jnp.asarray(xs)
    f32 = jax.jit(partial(exact_search, k=K, chunk_size=16384))
    t0 = time.perf_counter()
    ref = _np(f32(jnp.asarray(qs), xj))
    t_ref = time.perf_counter() - t0
    e1 = per_query_seconds(lambda qq, xj=xj: _np(f32(qq, xj)), qs, repeats, budget=5.0)
    eb = batch_seconds(lambda qq, xj=xj: _np(f32(qq, xj)), qs, 1, budget=1.0)
    del xj  # memory: the IVF build holds a few copies of the corpus
    lists = 1024 if n >= 500_000 else 256
    cap = -(-int(1.2 * n / lists) // 8) * 8  # 1.2 x the mean list; overfull lists split
    t0 = time.perf_counter()
    index = build_ivf(
        xs, lists, key=jax.random.key(0), metric="cosine", iters=10, init="random",
        train_size=min(n, 256 * lists), capacity=cap, overflow="split",
    )  # fmt: skip
    jax.block_until_ready(index.vectors)
    t_build = time.perf_counter() - t0
    fivf = None
    if with_faiss:
        t0 = time.perf_counter()
        fivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(384), 384, lists, faiss.METRIC_INNER_PRODUCT)
        fivf.train(xs[np.random.default_rng(0).permutation(n)[: 256 * lists]])
        fivf.add(xs)
        f_build = time.perf_counter() - t0
    rows, hit, fhit = [], None, None
    for p in (1, 2, 4, 8, 16, 32, 64):
        jf = jax.jit(partial(ivf_search, k=K, nprobe=p))
        fn = lambda qq, jf=jf: _np(jf(index, qq))  # noqa: E731
        r = recall(fn(qs), ref)
        t1 = per_query_seconds(fn, qs, repeats)
        tb = batch_seconds(fn, qs, repeats)
        row = [str(p), f"{r:.3f}", f"{1 / t1:,.0f}", f"{256 / tb:,.0f}", f"{e1 / t1:.1f}x"]
        if fivf is not None:
            fivf.nprobe = p
            ffn = lambda qq: fivf.search(qq, K)[1]  # noqa: E731
            rf = recall(ffn(qs), ref)
            f1 = per_query_seconds(ffn, qs, repeats)
            fb = batch_seconds(ffn, qs, repeats)
            row += [f"{rf:.3f}", f"{1 / f1:,.0f}", f"{256 / fb:,.0f}"]
            if fhit is None and rf >= 0.95:
                fhit = (p, rf, f1, fb)
        rows.append(row)
        if hit is None and r >= 0.95:
            hit = (p, r, t1, tb)
        if r >= 0.99 and (fivf is None or rf >= 0.99):
            break
    print(
        f"\n### Scale check, synthetic {n:,} x 384 (1,000 Gaussian clusters): IVF vs exact\n\n"
        f"jaxrank exact f32: {1 / e1:,.1f} QPS at batch 1, {256 / eb:,.1f} QPS at batch 256 "
        f"(reference top-10 of 256 queries in {fmt_s(t_ref)}); IVF {lists} lists (k-means: "
        f"random init, 10 iterations, {min(n, 256 * lists):,} training rows for both: FAISS's "
        f"default cap of 256 per list) stored in "
        f"{index.n_partitions} partitions of capacity {index.capacity} (fill "
        f"{index.fill:.2f}; the largest list in {index.max_pieces}), build {fmt_s(t_build)}"
        + (f"; FAISS IndexIVFFlat build {fmt_s(f_build)}" if fivf is not None else "")
        + "\n"
    )
    head = ["nprobe", "jaxrank IVF recall@10", "QPS b=1", "QPS b=256", "b=1 vs jaxrank exact"]
    if fivf is not None:
        head += ["FAISS IVF recall@10", "FAISS QPS b=1", "FAISS QPS b=256"]
    print(table(head, rows))
    if hit:
        print(
            f"\nIVF nprobe={hit[0]} (recall@10 {hit[1]:.3f} >= 0.95) at batch 1: "
            f"{e1 / hit[2]:.1f}x faster than exact float32 search (target >= 5x)"
        )
    else:
        print("\nrecall@10 >= 0.95 not reached up to nprobe 64")
    if hit and fhit:
        print(
            f"\nAt recall@10 >= 0.95: jaxrank nprobe={hit[0]} ({hit[1]:.3f}) vs FAISS "
            f"IndexIVFFlat nprobe={fhit[0]} ({fhit[1]:.3f}): jaxrank / FAISS speed "
            f"{fhit[2] / hit[2]:.2f}x at batch 1, {fhit[3] / hit[3]:.2f}x at batch 256 "
            "(target >= 0.5x: within 2x)"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=data_dir())
    ap.add_argument("--synthetic", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--hnsw", action="store_true", help="also usearch HNSW on the synthetic corpus (slow build)"
    )
    ap.add_argument(
        "--scale-check",
        type=int,
        default=0,
        metavar="N",
        help="only the IVF-vs-exact check on an N x 384 synthetic corpus (the issue's "
        "1,000,000: ~3-4 GB of memory, 10+ minutes on 2 loaded cores)",
    )
    ap.add_argument("--no-faiss", action="store_true", help="scale check without FAISS IVF")
    args = ap.parse_args()
    try:
        import faiss
    except ImportError:
        sys.exit("faiss-cpu is required: pip install 'jaxrank[bench]'")
    print(f"Machine: {machine()}; load average {os.getloadavg()[0]:.1f}")
    import jaxrank

    info = jaxrank.native_info()
    print(f"jaxrank native core: {info.get('isa') if info.get('available') else 'unavailable'}")
    print(f"FAISS {faiss.__version__} ({faiss.omp_get_max_threads()} threads)")

    if args.scale_check:
        run_scale_check(args.scale_check, args.repeats, faiss, not args.no_faiss)
        return
    emb = args.data / "embeddings"
    x = np.load(emb / "scifact_corpus_minilm.npy").astype(np.float32)
    q_all = np.load(emb / "scifact_queries_minilm.npy").astype(np.float32)
    q_ids = (emb / "scifact_query_ids.txt").read_text().split("\n")[:-1]
    test = {
        ln.split("\t")[0]
        for ln in (args.data / "beir_scifact/qrels/test.tsv").read_text().split("\n")[1:]
        if ln
    }
    q = q_all[[i for i, qid in enumerate(q_ids) if qid in test]]
    ref = run_exact("SciFact MiniLM", x, q, faiss, args.repeats)
    run_two_stage("SciFact MiniLM", x, q, ref, args.repeats)
    run_ivf("SciFact MiniLM", x, q, ref, faiss, 64, args.repeats)
    run_pq("SciFact MiniLM", x, q, ref, faiss, args.repeats)
    if args.synthetic:
        n = args.synthetic
        t0 = time.perf_counter()
        xs, qs = corpus_and_queries(n, 256)
        print(f"\n(synthetic {n:,} x 384 generated in {fmt_s(time.perf_counter() - t0)})")
        name = f"synthetic {n:,} x 384, 1,000 clusters"
        ref = run_exact(name, xs, qs, faiss, args.repeats, hnsw=args.hnsw)
        curve = run_ivf(name, xs, qs, ref, faiss, 1024 if n >= 500_000 else 256, args.repeats)
        f32 = jax.jit(partial(exact_search, k=K, chunk_size=16384))
        xj = jnp.asarray(xs)
        t_exact = per_query_seconds(lambda qq: _np(f32(qq, xj)), qs, args.repeats)
        ok = [pt for pt in curve["jaxrank split"] if pt[1] >= 0.95]
        if ok:
            p, r, t1, _ = ok[0]
            print(
                f"\njaxrank IVF nprobe={p} (recall@10 {r:.3f}) vs jaxrank exact f32 at batch 1: "
                f"{t_exact / t1:.1f}x faster"
            )


if __name__ == "__main__":
    main()

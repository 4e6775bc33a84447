"""Loss + gradient throughput of jaxrank.losses against rax 0.4.0 (one run, ratios).

Run: ``PYTHONPATH=. python bench/bench_losses.py [--quick] [--only neural,soft]``.
Shapes: batch 1024 × list 100 and 64 × 1000 (``--quick``: 256 × 100 only). Median of
jitted ``value_and_grad`` calls. rax 0.4.0's transformations (``approx_t12n``,
``bound_t12n``, ``gumbel_t12n``) raise on current JAX (``jax.util`` is gone): the table
says "fails" and the error is printed.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxrank import losses as L
from jaxrank import metrics

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cpu_model


def machine() -> str:
    cpu = cpu_model()
    load = os.getloadavg()[0]
    return f"{cpu}, {os.cpu_count()} cores, jax {jax.__version__}, load average {load:.2f}"


def median_ms(fn, *args, repeats):
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def pairs(rax):
    """(name, jaxrank fn, rax fn) with the same (scores, labels, where) signature."""
    out = [
        ("softmax", L.softmax_loss, lambda s, y, w: rax.softmax_loss(s, y, where=w)),
        ("listmle", L.listmle_loss, lambda s, y, w: rax.listmle_loss(s, y, where=w)),
        (
            "pairwise logistic",
            L.pairwise_logistic_loss,
            lambda s, y, w: rax.pairwise_logistic_loss(s, y, where=w),
        ),
        (
            "logistic + dcg2@10",
            functools.partial(
                L.pairwise_logistic_loss,
                lambdaweight_fn=functools.partial(L.dcg2_lambdaweight, topn=10),
            ),
            lambda s, y, w: rax.pairwise_logistic_loss(
                s, y, where=w, lambdaweight_fn=functools.partial(rax.dcg2_lambdaweight, topn=10)
            ),
        ),
        (
            "unique softmax",
            L.unique_softmax_loss,
            lambda s, y, w: rax.unique_softmax_loss(s, y, where=w),
        ),
        ("approx ndcg", L.approx_ndcg_loss, _rax_t12n(rax, "approx_t12n")),
        (
            "approx_t12n(ndcg)",
            functools.partial(L.approx_t12n(metrics.ndcg), gain="exp2"),
            _rax_t12n(rax, "approx_t12n"),
        ),
        (
            "bound_t12n(ndcg)",
            functools.partial(L.bound_t12n(metrics.ndcg), gain="exp2"),
            _rax_t12n(rax, "bound_t12n"),
        ),
        (
            "gumbel(approx ndcg), 8 samples",
            functools.partial(L.gumbel_t12n(L.approx_ndcg_loss), key=jax.random.key(0)),
            _rax_t12n(rax, "gumbel_t12n"),
        ),
        (
            "neural ndcg (10 Sinkhorn)",
            functools.partial(L.neural_ndcg_loss, sinkhorn_iters=10),
            None,
        ),
        ("soft-rank ndcg", L.soft_rank_ndcg_loss, None),
        ("soft spearman", L.soft_spearman_loss, None),
        ("plackett-luce exp2", L.plackett_luce_loss, None),
    ]
    return out


def _rax_t12n(rax, name):
    """rax's transformation of ndcg_metric, or the error it raises on this JAX."""
    if rax is None:
        return None
    try:
        fn = getattr(rax, name)(rax.ndcg_metric)
    except Exception as err:  # rax 0.4.0 uses jax.util.wraps, gone from current JAX
        return f"fails: {type(err).__name__}: {err}"
    return lambda s, y, w: fn(s, y, where=w)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default="", help="comma list of substrings of loss names")
    parser.add_argument("--shapes", default="", help="e.g. 1024x100,64x1000")
    parser.add_argument("--repeats", type=int, default=0, help="timed calls (default 10)")
    args = parser.parse_args()
    shapes = [(256, 100)] if args.quick else [(1024, 100), (64, 1000)]
    if args.shapes:
        shapes = [tuple(int(v) for v in s.split("x")) for s in args.shapes.split(",")]
    repeats = args.repeats or (5 if args.quick else 10)
    try:
        import rax
    except ImportError:
        rax = None
        print("rax not installed (pip install rax==0.4.0): its column is empty")
    print(f"Machine: {machine()}")
    print(f"Median ms of jitted value_and_grad, {repeats} calls.\n")
    print("| loss | batch × list | jaxrank ms | rax ms | rax / jaxrank |")
    print("|---|---|---:|---:|---:|")
    rng = np.random.default_rng(0)
    failures = {}
    only = [x.strip() for x in args.only.split(",")] if args.only else None
    for b, n in shapes:
        s = jnp.asarray(rng.normal(size=(b, n)).astype(np.float32))
        y = jnp.asarray(rng.integers(0, 5, (b, n)).astype(np.float32))
        w = jnp.asarray(np.arange(n)[None, :] < rng.integers(n // 2, n + 1, (b, 1)))
        for name, ours, theirs in pairs(rax):
            if only is not None and not any(o in name for o in only):
                continue
            vg = jax.jit(jax.value_and_grad(lambda s, y, w, f=ours: f(s, y, w)))
            t_ours = median_ms(vg, s, y, w, repeats=repeats)
            if isinstance(theirs, str):
                failures[name] = theirs
                print(f"| {name} | {b} × {n} | {t_ours:.2f} | fails | – |")
                continue
            if rax is None or theirs is None:
                print(f"| {name} | {b} × {n} | {t_ours:.2f} | – | – |")
                continue
            vg = jax.jit(jax.value_and_grad(lambda s, y, w, f=theirs: f(s, y, w)))
            t_rax = median_ms(vg, s, y, w, repeats=repeats)
            print(f"| {name} | {b} × {n} | {t_ours:.2f} | {t_rax:.2f} | {t_rax / t_ours:.2f}× |")
    for name, why in failures.items():
        print(f"\nrax for {name!r} {why}")


if __name__ == "__main__":
    main()

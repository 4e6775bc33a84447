"""Loss + gradient throughput of jaxrank.losses against rax 0.4.0 (one run, ratios).

Run: ``PYTHONPATH=. python bench/bench_losses.py [--quick]``. Shapes: batch 1024 × list
100 and 64 × 1000 (``--quick``: 256 × 100 only). Median of jitted ``value_and_grad`` calls.
"""

from __future__ import annotations

import argparse
import functools
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxrank import losses as L


def machine() -> str:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
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
        ("approx ndcg", L.approx_ndcg_loss, None),  # rax's approx_t12n fails on current JAX
    ]
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    shapes = [(256, 100)] if args.quick else [(1024, 100), (64, 1000)]
    repeats = 5 if args.quick else 10
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
    for b, n in shapes:
        s = jnp.asarray(rng.normal(size=(b, n)).astype(np.float32))
        y = jnp.asarray(rng.integers(0, 5, (b, n)).astype(np.float32))
        w = jnp.asarray(np.arange(n)[None, :] < rng.integers(n // 2, n + 1, (b, 1)))
        for name, ours, theirs in pairs(rax):
            vg = jax.jit(jax.value_and_grad(lambda s, y, w, f=ours: f(s, y, w)))
            t_ours = median_ms(vg, s, y, w, repeats=repeats)
            t_rax = float("nan")
            if rax is not None and theirs is not None:
                vg = jax.jit(jax.value_and_grad(lambda s, y, w, f=theirs: f(s, y, w)))
                t_rax = median_ms(vg, s, y, w, repeats=repeats)
            print(f"| {name} | {b} × {n} | {t_ours:.2f} | {t_rax:.2f} | {t_rax / t_ours:.2f}× |")


if __name__ == "__main__":
    main()

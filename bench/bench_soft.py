"""Benchmark jaxrank.soft.soft_rank against torchsort and a dense O(n^2) soft rank.

Forward and forward+backward (gradient of a weighted sum of the ranks) for
batch x n in {128x100, 128x1000, 16x10000}, l2 and kl, on CPU, pinned to one core
by default (``--threads N`` to change). Both jaxrank CPU paths are timed side by
side with torchsort in one run: the native XLA FFI kernels (``ffi/soft.cc``: radix
argsort + PAV, the default on CPU) and the pure-JAX path (what GPU/TPU run;
forced with ``jaxrank.config.native_mode("jax")``). Prints the machine and a
Markdown table (median milliseconds over repeats; ratio = jaxrank time /
torchsort time, < 1 is faster). torchsort is optional (the ``bench`` extra);
without it its columns say why. The dense baseline is rank-rank's pairwise-sigmoid soft rank
``r_i = 1/2 + sum_j sigmoid((x_i - x_j) / tau)``, computed row by row so that
memory stays O(n^2) per row.

Usage: python bench/bench_soft.py [--threads 1] [--quick]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

_ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
_ap.add_argument("--threads", type=int, default=1, help="CPU threads/cores to use (default 1)")
_ap.add_argument("--quick", action="store_true", help="only 128x100 and 128x1000")
ARGS = _ap.parse_args()

if ARGS.threads == 1:
    # One core for every library: pin the process and disable XLA's thread pool.
    try:
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    except (AttributeError, OSError):
        pass
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
    ).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax import lax  # noqa: E402

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(_HERE, ".."))
sys.path.insert(0, _HERE)
from _common import cpu_model  # noqa: E402

from jaxrank import _native, config  # noqa: E402
from jaxrank.soft import soft_rank  # noqa: E402

CASES = [(128, 100), (128, 1000), (16, 10000)]
if ARGS.quick:
    CASES = CASES[:2]


def machine() -> str:
    model = cpu_model()
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    return (
        f"{model}; {os.cpu_count()} logical cores; using {ARGS.threads} thread(s); "
        f"load average {load[0]:.2f}; Python {platform.python_version()}; "
        f"jax {jax.__version__}; GPU: not measured"
    )


def timeit(fn, *, budget=1.5, min_reps=3, max_reps=50) -> float:
    fn()  # compile / warm up
    times = []
    start = time.perf_counter()
    while len(times) < min_reps or (time.perf_counter() - start < budget and len(times) < max_reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1e3 * float(np.median(times))


def dense_soft_rank(x, tau=1.0):
    """rank-rank style O(n^2) pairwise-sigmoid soft rank, one row at a time."""

    def row(r):
        return 0.5 + jnp.sum(jax.nn.sigmoid((r[:, None] - r[None, :]) / tau), axis=-1)

    return lax.map(row, x)


def jax_timers(f, x, w):
    fwd = jax.jit(f)
    grad = jax.jit(jax.grad(lambda z: jnp.sum(f(z) * w)))
    return (
        lambda: fwd(x).block_until_ready(),
        lambda: grad(x).block_until_ready(),
    )


def torch_timers(xn, wn, reg):
    import torch
    import torchsort

    x = torch.from_numpy(xn)
    w = torch.from_numpy(wn)

    def fwd():
        with torch.no_grad():
            torchsort.soft_rank(x, regularization=reg, regularization_strength=1.0)

    def fwdbwd():
        xr = x.clone().requires_grad_(True)
        (
            torchsort.soft_rank(xr, regularization=reg, regularization_strength=1.0) * w
        ).sum().backward()

    return fwd, fwdbwd


def jaxrank_times(reg, x, w, mode):
    """(fwd ms, fwd+bwd ms) of soft_rank traced under ``native_mode(mode)``."""
    with config.native_mode(mode):
        # New functions per mode: the switch is read when a function is traced.
        jf, jg = jax_timers(lambda z: soft_rank(z, regularization=reg), x, w)
        return timeit(jf), timeit(jg)


def main() -> None:
    print(f"Machine: {machine()}\n")
    info = _native.native_info()
    have_native = bool(info["available"])
    print(f"jaxrank native core: {'ISA path ' + info['isa'] if have_native else info['reason']}")
    torch_error = None
    try:
        import torch
        import torchsort  # noqa: F401

        torch.set_num_threads(ARGS.threads)
        from importlib.metadata import version

        torch_version = f"torch {torch.__version__}, torchsort {version('torchsort')}"
    except Exception as e:
        torch_error = f"{type(e).__name__}: {e}"
        torch_version = "unavailable"
        print(f"torchsort skipped: {torch_error} (pip install 'jaxrank[bench]')\n")
    print(f"Peer: {torch_version}\n")
    nan = float("nan")
    rows = []
    for b, n in CASES:
        rng = np.random.default_rng(0)
        xn = rng.normal(size=(b, n)).astype(np.float32)
        wn = rng.normal(size=(b, n)).astype(np.float32)
        x, w = jnp.asarray(xn), jnp.asarray(wn)
        for reg in ["l2", "kl"]:
            nat = jaxrank_times(reg, x, w, "native") if have_native else (nan, nan)
            pure = jaxrank_times(reg, x, w, "jax")
            if torch_error is None:
                tf, tg = torch_timers(xn, wn, reg)
                tor = (timeit(tf), timeit(tg))
            else:
                tor = (nan, nan)
            rows.append((f"{b}x{n}", f"soft_rank {reg}", *nat, *pure, *tor))
            if reg == "l2":
                t_l2 = tor
            print(f"  {b}x{n} {reg}: native {nat[0]:.2f}/{nat[1]:.2f} ms, pure JAX "
                  f"{pure[0]:.2f}/{pure[1]:.2f} ms, torchsort {tor[0]:.2f}/{tor[1]:.2f} ms",
                  flush=True)  # fmt: skip
        df, dg = jax_timers(dense_soft_rank, x, w)
        budget = 0.5 if n >= 10000 else 1.5
        d_fwd = timeit(df, budget=budget, min_reps=2)
        # Backward of the dense method at n=1e4 (1.6e9 pairs) takes ~1 min: not run.
        d_bwd = nan if n >= 10000 else timeit(dg, budget=budget, min_reps=2)
        # Plain JAX on every platform; compared with torchsort l2 of the same case.
        rows.append((f"{b}x{n}", "dense O(n²) sigmoid", nan, nan, d_fwd, d_bwd, *t_l2))
        print(f"  {b}x{n} dense: {d_fwd:.2f}/{d_bwd:.2f} ms", flush=True)

    def fmt(v):
        return "—" if v != v else f"{v:.2f}"

    def ratio(a, b):
        return "—" if a != a or b != b else f"{a / b:.2f}×"

    print()
    print("| batch×n | method | native fwd | native fwd+bwd | pure-JAX fwd | pure-JAX fwd+bwd "
          "| torchsort fwd | torchsort fwd+bwd | native/ts fwd | native/ts fwd+bwd "
          "| JAX/ts fwd | JAX/ts fwd+bwd |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for case, method, nf, nb, jf, jb, tf, tb in rows:
        print(
            f"| {case} | {method} | {fmt(nf)} | {fmt(nb)} | {fmt(jf)} | {fmt(jb)} "
            f"| {fmt(tf)} | {fmt(tb)} | {ratio(nf, tf)} | {ratio(nb, tb)} "
            f"| {ratio(jf, tf)} | {ratio(jb, tb)} |"
        )
    if torch_error is not None:
        print(f"\ntorchsort columns empty: {torch_error}")
    if not have_native:
        print(f"\nnative columns empty: {info['reason']}")
    print(
        "\nms = median per call; ratio = jaxrank / torchsort (< 1 means jaxrank is faster); "
        "the dense row's ratios compare it with torchsort l2; GPU: not measured."
    )


if __name__ == "__main__":
    main()

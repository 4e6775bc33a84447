"""Shared benchmark helpers: machine description, roofline probes, timing, child runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cpu_model


def describe() -> str:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    import jaxrank

    info = jaxrank.native_info()
    isa = info.get("isa", "unavailable") if info.get("available") else "unavailable"
    cpu = info.get("cpu", {})
    flags = ", ".join(k for k, v in cpu.items() if v) or "n/a"
    return (
        f"Machine: {cpu_model()}, {os.cpu_count()} cores; jaxrank native ISA path: {isa} "
        f"(CPU features: {flags}; AMX kernels: no); load average at start: "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}"
    )


def timeit(fn, repeats: int, warmup: int = 1) -> float:
    """Median wall time in seconds of ``fn()`` (which must block until done)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def timeit_cpu(fn, repeats: int) -> tuple[float, float]:
    """Median wall and median process CPU seconds of ``fn()`` (no warm-up)."""
    walls, cpus = [], []
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return float(np.median(walls)), float(np.median(cpus))


def sgemm_peak(repeats: int = 5) -> float:
    """f32 GFLOP/s of a large single-call sgemm (best of XLA and numpy/OpenBLAS)."""
    import jax
    import jax.numpy as jnp

    n = 2048
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    ja = jnp.asarray(a)
    f = jax.jit(lambda x: x @ x)
    t_xla = timeit(lambda: f(ja).block_until_ready(), repeats)
    t_np = timeit(lambda: a @ a, repeats)
    return 2 * n**3 / min(t_xla, t_np) / 1e9


def sgemm_peak_cpu(repeats: int = 5) -> float:
    """As :func:`sgemm_peak`, per second of process CPU time (meaningful on a loaded machine)."""
    import jax
    import jax.numpy as jnp

    n = 2048
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    ja = jnp.asarray(a)
    f = jax.jit(lambda x: x @ x)
    f(ja).block_until_ready()
    _ = a @ a
    c_xla = timeit_cpu(lambda: f(ja).block_until_ready(), repeats)[1]
    c_np = timeit_cpu(lambda: a @ a, repeats)[1]
    return 2 * n**3 / min(c_xla, c_np) / 1e9


def triad_bandwidth_cpu(repeats: int = 5, n: int = 1 << 25) -> float:
    """As :func:`triad_bandwidth`, per second of process CPU time."""
    b = np.ones(n, np.float32)
    c = np.ones(n, np.float32)
    a = np.zeros(n, np.float32)
    tmp = np.empty(1 << 15, np.float32)
    step = tmp.size

    def run():
        for i in range(0, n, step):
            np.multiply(c[i : i + step], 3.0, out=tmp)
            np.add(b[i : i + step], tmp, out=a[i : i + step])

    run()
    return 3 * 4 * n / timeit_cpu(run, repeats)[1] / 1e9


def triad_bandwidth(repeats: int = 5, n: int = 1 << 25) -> float:
    """STREAM-style triad a = b + s*c on float32 arrays (3 x 128 MiB), GB/s counted as
    3 arrays per pass (STREAM convention; write-allocate traffic not counted)."""
    b = np.ones(n, np.float32)
    c = np.ones(n, np.float32)
    a = np.zeros(n, np.float32)
    tmp = np.empty(1 << 15, np.float32)  # 128 KiB, stays in L2
    step = tmp.size

    def run():
        for i in range(0, n, step):
            np.multiply(c[i : i + step], 3.0, out=tmp)
            np.add(b[i : i + step], tmp, out=a[i : i + step])

    t = timeit(run, repeats)
    return 3 * 4 * n / t / 1e9


def run_child(script: str, threads: int, extra: list[str]) -> list[dict]:
    """Run ``script --child`` pinned to one core (threads=1, taskset) or free (threads>1)."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS"):
        env[var] = str(threads)
    env["JAXRANK_NUM_THREADS"] = str(threads)
    if threads == 1:
        flags = env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
        env["XLA_FLAGS"] = flags.strip()
    cmd = [sys.executable, script, "--child", "--threads", str(threads), *extra]
    if threads == 1 and shutil.which("taskset"):
        cmd = ["taskset", "-c", "0", *cmd]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.stderr.write(out.stderr[-4000:])
        raise SystemExit(f"benchmark child failed ({' '.join(cmd)})")
    rows = []
    raw = Path(__file__).resolve().parent / "results" / f"{Path(script).stem}-{threads}t.jsonl"
    raw.parent.mkdir(exist_ok=True)
    raw.write_text(out.stdout)  # raw results, kept even if the report fails
    for line in out.stdout.splitlines():
        if line.startswith("{"):
            rows.append(json.loads(line))
        else:
            print(line)
    return rows

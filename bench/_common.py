"""Shared benchmark helpers: machine description, timing, Markdown tables."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path


def data_dir() -> Path:
    """The shared data folder: ``$JAXRANK_TEST_DATA``, else ``../shared/data`` beside the repo."""
    repo = Path(__file__).resolve().parents[1]
    return Path(os.environ.get("JAXRANK_TEST_DATA", repo.parent / "shared" / "data"))


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (``platform.processor()`` elsewhere)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine() -> str:
    """CPU model, cores usable by this process, and the Python/JAX versions."""
    model = cpu_model()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    import jax

    return (
        f"{model}, {cores} core(s) usable, Python {platform.python_version()}, "
        f"jax {jax.__version__}"
    )


def timeit(fn: Callable[[], object], *, repeat: int = 5, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` over ``repeat`` runs after ``warmup`` runs (seconds)."""
    for _ in range(warmup):
        _block(fn())
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        _block(fn())
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _block(out):
    try:
        import jax

        jax.block_until_ready(out)
    except Exception:
        pass
    return out


def table(headers: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def fmt_s(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"

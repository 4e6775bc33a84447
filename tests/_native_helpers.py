"""Helpers shared by the native-core tests (not a test module)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from jaxrank import _native

FFI = Path(__file__).resolve().parent.parent / "ffi"


def run_sanitized(tmp_path, name, sources, flags=(), envs=({},)) -> list[str]:
    """Build ``ffi/<sources>`` with AddressSanitizer + UndefinedBehaviorSanitizer into
    ``tmp_path/name`` and run it once per extra environment in ``envs``; each run must
    exit 0 and print ``failures: 0``. Fails (never skips) without a C++ compiler.
    Returns the stdout of each run."""
    require_native()
    cxx = os.environ.get("CXX", "g++")
    if shutil.which(cxx) is None:
        pytest.fail(f"C++ compiler {cxx!r} not found (needed for the sanitizer harness)")
    exe = tmp_path / name
    build = subprocess.run(
        [cxx, "-std=c++17", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
         "-fno-omit-frame-pointer", *flags, *(str(FFI / s) for s in sources), "-o", str(exe)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr[-3000:]
    outs = []
    for extra in envs:
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1", UBSAN_OPTIONS="print_stacktrace=1")
        env.update(extra)
        run = subprocess.run([str(exe)], capture_output=True, text=True, env=env, timeout=300)
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
        assert "failures: 0" in run.stdout
        outs.append(run.stdout)
    return outs


def require_native() -> None:
    """Fail (not skip) when the native core is missing, unless it was disabled on purpose."""
    if os.environ.get("JAXRANK_NATIVE") == "0":
        pytest.skip("JAXRANK_NATIVE=0: native core disabled on purpose")
    if not _native.available():
        pytest.fail(f"native core unavailable: {_native.native_info()}")


def maxsim_reference(q, docs, lengths=None, doc_mask=None, query_mask=None):
    """float64 numpy MaxSim (the formula of jaxrank.rerank.maxsim), [B, Lq, D] x [N, Ld, D]."""
    q = np.asarray(q, np.float64)
    docs = np.asarray(docs, np.float64)
    b, lq, _ = q.shape
    n, ld, _ = docs.shape
    valid = np.ones((n, ld), bool)
    if lengths is not None:
        valid &= np.arange(ld)[None, :] < np.asarray(lengths)[:, None]
    if doc_mask is not None:
        valid &= np.asarray(doc_mask)
    qm = np.ones((b, lq), bool) if query_mask is None else np.asarray(query_mask)
    sim = np.einsum("bid,njd->bnij", q, docs)
    sim = np.where(valid[None, :, None, :], sim, -np.inf)
    m = sim.max(axis=-1, initial=-np.inf)
    return np.where(qm[:, None, :], m, 0.0).sum(-1)


def assert_scores_close(got, want, rtol):
    got = np.asarray(got, np.float64)
    want = np.asarray(want, np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    fin = np.isfinite(want)
    np.testing.assert_array_equal(np.isfinite(got), fin)
    np.testing.assert_array_equal(got[~fin], want[~fin])
    scale = np.abs(want[fin]).max(initial=1.0)  # relative to the largest score of the batch
    np.testing.assert_allclose(got[fin], want[fin], rtol=rtol, atol=rtol * scale)

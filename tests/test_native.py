"""Tests of the native core itself: loader, ISA dispatch, sanitizers, export."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _native_helpers import (
    assert_scores_close,
    maxsim_reference,
    require_native,
    run_sanitized,
)

import jaxrank
from jaxrank import _native
from jaxrank.quant import int8_dot, maxsim_int8, quantize_int8
from jaxrank.rerank import maxsim

REPO = Path(__file__).resolve().parent.parent
FFI = REPO / "ffi"


def _cpu_flags() -> set[str]:
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def test_native_info_reports_the_isa_the_cpu_has():
    require_native()
    info = jaxrank.native_info()
    assert info["available"] and Path(info["library"]).exists()
    flags = _cpu_flags()
    avx512 = {"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni"} <= flags
    expected = "avx512_vnni" if avx512 else ("avx2" if {"avx2", "fma"} <= flags else "portable")
    assert info["isa"] == expected, (info, sorted(flags))
    assert info["cpu"]["avx512_vpopcntdq"] == ("avx512_vpopcntdq" in flags)
    assert info["cpu"]["amx_int8"] == ("amx_int8" in flags)


def test_sanitizer_harness_over_all_isa_paths(tmp_path):
    """ASan + UBSan build of ffi/test_kernels.cc over every kernel table this CPU runs;
    f32 MaxSim on AVX-512 with int8 screening + exact rescoring forced on, then off."""
    srcs = ["test_kernels.cc", "dispatch.cc", "kernels_generic.cc", "kernels_avx2.cc"]
    srcs += ["kernels_avx512.cc"]
    screens = ({"JAXRANK_F32_SCREEN": "1"}, {"JAXRANK_F32_SCREEN": "0"})
    for out in run_sanitized(tmp_path, "test_kernels", srcs, ["-O1"], screens):
        assert "kernels: portable" in out


_PARITY_SCRIPT = """
import numpy as np, jax, jaxrank
from jaxrank.rerank import maxsim
from jaxrank.quant import int8_dot, hamming_distance, maxsim_int8, quantize_int8
rng = np.random.default_rng(0)
q = rng.standard_normal((3, 33, 67)).astype(np.float32)
d = rng.standard_normal((40, 21, 67)).astype(np.float32)
ln = rng.integers(0, 22, 40).astype(np.int32)
a = np.asarray(maxsim(q, d, doc_lengths=ln, impl="native"))
b = np.asarray(maxsim(q, d, doc_lengths=ln, impl="jax"))
f = np.isfinite(b)
assert (np.isfinite(a) == f).all()
assert np.allclose(a[f], b[f], rtol=1e-5, atol=1e-4), np.abs(a - b)[f].max()
qc = rng.integers(-128, 128, (2, 97), dtype=np.int8)
c = rng.integers(-128, 128, (50, 97), dtype=np.int8)
assert (np.asarray(int8_dot(qc, c, impl="native"))
        == np.asarray(int8_dot(qc, c, impl="jax"))).all()
qb = qc.view(np.uint8); cb = c.view(np.uint8)
assert (np.asarray(hamming_distance(qb, cb, impl="native"))
        == np.asarray(hamming_distance(qb, cb, impl="jax"))).all()
dc, ds = quantize_int8(d)
x = np.asarray(maxsim_int8(q, dc, ds, doc_lengths=ln, impl="native"))
y = np.asarray(maxsim_int8(q, dc, ds, doc_lengths=ln, impl="jax"))
assert np.allclose(x[f], y[f], rtol=1e-5), np.abs(x - y)[f].max()
print("ISA", jaxrank.native_info()["isa"])
"""


@pytest.mark.parametrize("isa", ["generic", "avx2"])
def test_lower_isa_paths_through_xla(isa):
    """JAXRANK_ISA caps the dispatcher: the portable and AVX2 kernels run end to end."""
    require_native()
    env = dict(os.environ, JAXRANK_ISA=isa, PYTHONPATH=str(REPO))
    run = subprocess.run(
        [sys.executable, "-c", _PARITY_SCRIPT], capture_output=True, text=True, env=env
    )
    assert run.returncode == 0, run.stderr[-3000:]
    want = "portable" if isa == "generic" else "avx2"
    if isa == "avx2" and "avx2" not in _cpu_flags():
        want = "portable"
    assert f"ISA {want}" in run.stdout


def test_missing_library_warns_once_and_falls_back_to_jax():
    script = (
        "import warnings, numpy as np\n"
        "from jaxrank.rerank import maxsim\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    a = maxsim(np.ones((2, 3, 4), np.float32), np.ones((5, 6, 4), np.float32))\n"
        "    b = maxsim(np.ones((2, 3, 4), np.float32), np.ones((5, 6, 4), np.float32))\n"
        "msgs = [str(x.message) for x in w]\n"
        "assert len(msgs) == 1 and 'native core unavailable' in msgs[0], msgs\n"
        "assert '\\n' not in msgs[0]\n"
        "assert np.allclose(np.asarray(a), 12.0), a\n"
        "print('ok')\n"
    )
    env = dict(os.environ, JAXRANK_NATIVE_LIB="/nonexistent/lib.so", PYTHONPATH=str(REPO))
    env.pop("JAXRANK_NATIVE", None)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert run.returncode == 0 and "ok" in run.stdout, run.stderr[-3000:]


def test_forcing_native_without_library_is_an_error():
    script = (
        "import numpy as np\nfrom jaxrank.rerank import maxsim\n"
        "try:\n    maxsim(np.ones((1, 2, 3), np.float32), np.ones((1, 2, 3), np.float32))\n"
        "except RuntimeError as e:\n    print('raised', 'native core is unavailable' in str(e))\n"
    )
    env = dict(os.environ, JAXRANK_NATIVE_LIB="/nonexistent/lib.so", JAXRANK_NATIVE="1")
    env["PYTHONPATH"] = str(REPO)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert "raised True" in run.stdout, run.stdout + run.stderr[-2000:]


def test_export_for_cpu_cuda_tpu_with_disabled_custom_call_check():
    require_native()
    rng = np.random.default_rng(0)
    q = rng.standard_normal((2, 8, 16)).astype(np.float32)
    docs = rng.standard_normal((10, 7, 16)).astype(np.float32)
    codes, scales = quantize_int8(docs)

    def f(q, docs, codes, scales):
        return (
            maxsim(q, docs),
            maxsim_int8(q, codes, scales),
            int8_dot(codes[:, 0], codes[:, 1]),
        )

    args = (q, docs, codes, scales)
    platforms = ("cpu", "cuda", "tpu")
    # Without the documented disabled check, export refuses the custom calls.
    with pytest.raises(ValueError, match="custom call"):
        jax.export.export(jax.jit(f), platforms=platforms)(*args)
    exp = jax.export.export(
        jax.jit(f), platforms=platforms, disabled_checks=_native.export_disabled_checks()
    )(*args)
    assert exp.platforms == platforms
    text = exp.mlir_module()
    assert "jaxrank_maxsim" in text and "jaxrank_int8_dot" in text
    restored = jax.export.deserialize(exp.serialize())
    got = restored.call(*args)
    want = f(*args)
    for a, b in zip(got, want, strict=True):
        assert_scores_close(a, b, rtol=1e-6)


def test_num_threads_attribute_gives_identical_results():
    require_native()
    rng = np.random.default_rng(0)
    q = rng.standard_normal((3, 32, 64)).astype(np.float32)
    docs = rng.standard_normal((1000, 20, 64)).astype(np.float32)
    one = maxsim(q, docs, num_threads=1)
    two = maxsim(q, docs, num_threads=2)
    np.testing.assert_array_equal(np.asarray(one), np.asarray(two))
    with pytest.raises(ValueError, match="num_threads"):
        maxsim(q, docs, num_threads=-1)
    assert jnp.asarray(one).shape == (3, 1000)


def test_f32_screened_path_is_exact_on_near_duplicate_tokens():
    """B*Lq >= 32 query tokens take the AVX-512 int8-screened f32 kernel (exact rescoring):
    near-duplicate document tokens (gaps ~1e-3, below int8 resolution, far above f32
    rounding), exact duplicates, a zero query token, and a token scaled by 2^60 (plain-kernel
    fallback) give the float64 scores and the same gradients (arg-max tokens) as pure JAX."""
    require_native()
    rng = np.random.default_rng(3)
    b, lq, d, n, ld = 2, 20, 48, 6, 30
    q = rng.standard_normal((b, lq, d)).astype(np.float32)
    q[0, 4] = 0.0
    base = rng.standard_normal((n, 1, d)).astype(np.float32)
    scale = 1.0 + 1e-3 * (np.arange(ld) % 7)[None, :, None]
    docs = (base * scale + 1e-3 * rng.standard_normal((n, ld, d))).astype(np.float32)
    docs[:, 20] = docs[:, 3]
    docs[2, 5] *= np.float32(2.0**60)
    lengths = np.array([30, 1, 30, 17, 0, 29], np.int32)
    dm = rng.random((n, ld)) < 0.9
    qm = rng.random((b, lq)) < 0.9
    want = maxsim_reference(q, docs, lengths, dm, qm)  # source: float64 numpy formula
    got = maxsim(q, docs, doc_lengths=lengths, doc_mask=dm, query_mask=qm, impl="native")
    assert_scores_close(got, want, rtol=1e-6)

    def grads(impl):
        def loss(q, docs):
            s = maxsim(q, docs, doc_lengths=lengths, doc_mask=dm, query_mask=qm, impl=impl)
            return jnp.sum(jnp.where(jnp.isfinite(s), s, 0.0) * jnp.array([1.0, -0.5])[:, None])

        return jax.grad(loss, argnums=(0, 1))(q, docs)

    for a, c in zip(grads("native"), grads("jax"), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(c), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "kind,lq", [("f32", 4), ("f32", 32), ("bf16", 4), ("bf16", 256), ("i8", 8)]
)
def test_nan_tokens_count_as_minus_inf_on_both_paths(kind, lq):
    """A NaN similarity counts as -inf on the native and the pure-JAX path: a document
    token with a NaN component scores as if it were masked, a query token with one
    makes every score -inf (lq = 32 / 256: the f32 / bf16 int8-screened kernels).
    int8: a NaN document scale never matches; a NaN query has a NaN scale: NaN scores."""
    require_native()
    rng = np.random.default_rng(1)
    q = rng.standard_normal((2, lq, 48)).astype(np.float32)
    d = rng.standard_normal((40, 7, 48)).astype(np.float32)
    d[3, 2, 5] = np.nan  # document 3, token 2
    q[1, 0, 7] = np.nan  # query 1, token 0
    mask = np.ones((40, 7), bool)
    mask[3, 2] = False
    clean = d.copy()
    clean[3, 2] = 0.0
    if kind == "i8":
        codes, scales = quantize_int8(np.nan_to_num(d))
        scales = scales.at[3, 2].set(jnp.nan)  # a NaN scale instead of a NaN code

        def run(impl, m=None, dd=None):
            sc = scales if dd is None else scales.at[3, 2].set(1.0)
            return maxsim_int8(q, codes, sc, doc_mask=m, impl=impl)
    else:
        dt = jnp.float32 if kind == "f32" else jnp.bfloat16

        def run(impl, m=None, dd=None):
            docs = d if dd is None else dd
            return maxsim(jnp.asarray(q, dt), jnp.asarray(docs, dt), doc_mask=m, impl=impl)

    native, pure = np.asarray(run("native")), np.asarray(run("jax"))
    np.testing.assert_allclose(native, pure, rtol=2e-5, atol=1e-4)
    bad_query = np.isnan(native[1]) if kind == "i8" else np.isneginf(native[1])
    assert bad_query.all() and np.isfinite(native[0]).all()
    # document 3 scores as with token 2 masked out (closed form of "never matches")
    masked = np.asarray(run("native", m=mask, dd=clean))
    np.testing.assert_allclose(native[0, 3], masked[0, 3], rtol=1e-6)

"""Tests of jaxrank.quant: int8 codes (bit-exact int32 dots), maxsim_int8, binary Hamming."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _native_helpers import require_native
from hypothesis import given
from hypothesis import strategies as st

from jaxrank.quant import (
    MAX_INT8_DIM,
    binary_quantize,
    dequantize_int8,
    hamming_distance,
    int8_dot,
    int8_scores,
    maxsim_int8,
    quantize_int8,
)
from jaxrank.quant._int8 import _maxsim_int8_argmax

DIMS = [1, 3, 7, 16, 63, 64, 65, 127, 384]


def test_quantize_hand_example_and_roundtrip():
    codes, scale = quantize_int8(jnp.array([0.5, -1.0, 0.25]))
    # hand calculation: scale = 1/127; 0.5*127 = 63.5 -> 64 (round half to even), 0.25*127 -> 32
    np.testing.assert_array_equal(np.asarray(codes), [64, -127, 32])
    np.testing.assert_allclose(float(scale), 1 / 127, rtol=1e-7)
    x = jax.random.normal(jax.random.key(0), (50, 20, 33))
    c, s = quantize_int8(x)
    assert c.dtype == jnp.int8 and s.shape == (50, 20) and int(jnp.min(c)) >= -127
    err = jnp.abs(dequantize_int8(c, s) - x)
    assert bool(jnp.all(err <= s[..., None] / 2 + 1e-6))  # rounding error at most half a step
    zc, zs = quantize_int8(jnp.zeros((2, 4)))
    np.testing.assert_array_equal(np.asarray(zc), 0)
    np.testing.assert_array_equal(np.asarray(zs), 0)
    # the documented float32 operations, in numpy: s = max|x| * f32(1/127),
    # c = clip(rint(x * (1 / s)), -127, 127) -- bit for bit, with and without jit
    x = np.asarray(jax.random.normal(jax.random.key(1), (300, 384)))
    s = np.abs(x).max(-1) * np.float32(1 / 127)
    c = np.clip(np.rint(x * (np.float32(1) / s)[:, None]), -127, 127).astype(np.int8)
    for fn in (quantize_int8, jax.jit(quantize_int8)):
        got_c, got_s = fn(x)
        np.testing.assert_array_equal(np.asarray(got_s), s)
        np.testing.assert_array_equal(np.asarray(got_c), c)


@pytest.mark.parametrize("jit", [False, True])
@given(d=st.sampled_from(DIMS), seed=st.integers(0, 2**16))
def test_int8_dot_bit_exact(jit, d, seed):
    require_native()
    rng = np.random.default_rng(seed)
    q = rng.integers(-128, 128, size=(3, d), dtype=np.int8)
    codes = rng.integers(-128, 128, size=(37, d), dtype=np.int8)
    codes[0] = -128  # extreme codes on both sides
    q[0] = -128
    want = jnp.dot(q, codes.T, preferred_element_type=jnp.int32)  # source: XLA int32 dot
    for impl in ("native", "jax"):
        f = lambda q, c, impl=impl: int8_dot(q, c, impl=impl)  # noqa: E731
        got = (jax.jit(f) if jit else f)(q, codes)
        assert got.dtype == jnp.int32
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


def test_int8_dot_large_n_and_batch_axes():
    require_native()
    rng = np.random.default_rng(1)
    q = rng.integers(-128, 128, size=(2, 2, 96), dtype=np.int8)
    codes = rng.integers(-128, 128, size=(20001, 96), dtype=np.int8)
    got = int8_dot(q, codes, impl="native")
    want = np.einsum("abk,nk->abn", q.astype(np.int64), codes.astype(np.int64))
    np.testing.assert_array_equal(np.asarray(got), want)


@pytest.mark.parametrize("impl", ["native", "jax"])
def test_int8_scores_match_float64_formula(impl):
    require_native()
    rng = np.random.default_rng(2)
    docs = rng.standard_normal((500, 384)).astype(np.float32)
    q = rng.standard_normal((4, 384)).astype(np.float32)
    codes, scales = quantize_int8(docs)
    qc, qs = quantize_int8(q)
    got = int8_scores(q, codes, scales, impl=impl)
    dots = np.asarray(qc, np.float64) @ np.asarray(codes, np.float64).T
    want = dots * np.asarray(qs, np.float64)[:, None] * np.asarray(scales, np.float64)[None]
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-6)
    got2 = int8_scores(qc, codes, scales, q_scales=qs, impl=impl)
    np.testing.assert_array_equal(np.asarray(got2), np.asarray(got))
    # quantization keeps the top document: each doc is its own nearest neighbour
    top = jnp.argmax(int8_scores(docs[:20], codes, scales, impl=impl), axis=-1)
    np.testing.assert_array_equal(np.asarray(top), np.arange(20))


def _maxsim_i8_reference(qc, qs, dc, ds, lengths, qm=None):
    """float64 formula with the kernel's documented roundings: exact int32 dots, float32
    dot*scale, float32 max; the sum over query tokens in float64."""
    b, lq, _ = qc.shape
    ld = dc.shape[1]
    dots = np.einsum("bik,njk->bnij", qc.astype(np.int64), dc.astype(np.int64))
    vals = dots.astype(np.float32) * ds.astype(np.float32)[None, :, None, :]
    valid = np.arange(ld)[None, :] < lengths[:, None]
    vals = np.where(valid[None, :, None, :], vals, -np.inf)
    m = vals.max(-1, initial=-np.inf)
    qm = np.ones((b, lq), bool) if qm is None else qm
    return np.where(qm[:, None, :], qs[:, None, :].astype(np.float64) * m, 0.0).sum(-1), dots


SHAPES = [(1, 1, 7, 5, 4), (2, 32, 128, 9, 13), (1, 33, 67, 0, 5), (2, 17, 130, 12, 30)]


@pytest.mark.parametrize("jit", [False, True])
@given(shape=st.sampled_from(SHAPES), seed=st.integers(0, 2**16))
def test_maxsim_int8_native_and_jax_vs_formula(jit, shape, seed):
    require_native()
    b, lq, d, n, ld = shape
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((b, lq, d)).astype(np.float32)
    docs = rng.standard_normal((n, ld, d)).astype(np.float32)
    lengths = rng.integers(0, ld + 1, size=n).astype(np.int32)
    qm = rng.random((b, lq)) < 0.8
    qc, qs = (np.asarray(a) for a in quantize_int8(q))
    dc, ds = (np.asarray(a) for a in quantize_int8(docs))
    want, _ = _maxsim_i8_reference(qc, qs, dc, ds, lengths, qm)
    for impl in ("native", "jax"):

        def f(q, dc, ds, lengths, qm, impl=impl):
            return maxsim_int8(q, dc, ds, doc_lengths=lengths, query_mask=qm, impl=impl)

        got = np.asarray((jax.jit(f) if jit else f)(q, dc, ds, lengths, qm), np.float64)
        fin = np.isfinite(want)
        np.testing.assert_array_equal(np.isfinite(got), fin)
        np.testing.assert_array_equal(got[~fin], want[~fin])
        np.testing.assert_allclose(
            got[fin], want[fin], rtol=1e-6, atol=1e-6 * np.abs(want[fin]).max(initial=1)
        )


@given(shape=st.sampled_from(SHAPES), seed=st.integers(0, 2**16))
def test_maxsim_int8_argmax_bit_equal_to_int32_reference(shape, seed):
    require_native()
    b, lq, d, n, ld = shape
    rng = np.random.default_rng(seed)
    qc = rng.integers(-128, 128, size=(b, lq, d), dtype=np.int8)
    dc = rng.integers(-128, 128, size=(n, ld, d), dtype=np.int8)
    ds = rng.uniform(0.001, 0.01, size=(n, ld)).astype(np.float32)
    lengths = rng.integers(0, ld + 1, size=n).astype(np.int32)
    am = np.asarray(_maxsim_int8_argmax(qc, dc, ds, doc_lengths=lengths))
    # reference: jnp.dot int32 per token pair, then the same float32 dequantization
    dots = (
        np.asarray(jnp.einsum("bik,njk->bnij", qc, dc, preferred_element_type=jnp.int32)).astype(
            np.float32
        )
        * ds[None, :, None, :]
    )
    valid = np.arange(ld)[None, :] < lengths[:, None]
    dots = np.where(valid[None, :, None, :], dots, -np.inf)
    want = np.argmax(dots, axis=-1) if n else np.zeros((b, 0, lq), np.int64)
    np.testing.assert_array_equal(am, want)


def test_maxsim_int8_per_document_scales_and_errors():
    rng = np.random.default_rng(3)
    qc = rng.integers(-127, 128, size=(2, 4, 16), dtype=np.int8)
    dc = rng.integers(-127, 128, size=(3, 5, 16), dtype=np.int8)
    qs = np.full((2, 4), 0.5, np.float32)
    ds = np.array([0.25, 0.5, 1.0], np.float32)
    got = maxsim_int8(qc, dc, ds, q_scales=qs)
    want, _ = _maxsim_i8_reference(qc, qs, dc, np.repeat(ds[:, None], 5, 1), np.full(3, 5))
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-6)
    with pytest.raises(ValueError, match="int8 q needs q_scales"):
        maxsim_int8(qc, dc, ds)
    with pytest.raises(TypeError, match="doc_codes must be int8"):
        maxsim_int8(qc, dc.astype(np.int16), ds, q_scales=qs)
    with pytest.raises(ValueError, match="D mismatch"):
        maxsim_int8(qc, dc[..., :8], ds, q_scales=qs)
    with pytest.raises(ValueError, match="doc_scales must have shape"):
        maxsim_int8(qc, dc, ds[:2], q_scales=qs)
    with pytest.raises(ValueError, match="doc_lengths must lie"):
        maxsim_int8(qc, dc, ds, q_scales=qs, doc_lengths=np.array([1, 2, 7]))
    with pytest.raises(ValueError, match="overflow"):
        int8_dot(np.zeros((MAX_INT8_DIM + 1,), np.int8), np.zeros((1, MAX_INT8_DIM + 1), np.int8))
    with pytest.raises(TypeError, match="must be int8"):
        int8_dot(np.zeros((4,), np.float32), np.zeros((1, 4), np.int8))


def test_binary_quantize_matches_numpy_packbits():
    x = np.random.default_rng(4).standard_normal((6, 77)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(binary_quantize(x)), np.packbits(x > 0, axis=-1))


@pytest.mark.parametrize("jit", [False, True])
@given(nbytes=st.sampled_from([1, 3, 8, 48, 63, 64, 65, 96, 130]), seed=st.integers(0, 2**16))
def test_hamming_matches_numpy_popcount(jit, nbytes, seed):
    require_native()
    rng = np.random.default_rng(seed)
    q = rng.integers(0, 256, size=(3, nbytes), dtype=np.uint8)
    codes = rng.integers(0, 256, size=(41, nbytes), dtype=np.uint8)
    # source: numpy unpackbits popcount
    want = np.unpackbits(q[:, None, :] ^ codes[None, :, :], axis=-1).sum(-1)
    for impl in ("native", "jax"):
        f = lambda q, c, impl=impl: hamming_distance(q, c, impl=impl)  # noqa: E731
        got = (jax.jit(f) if jit else f)(q, codes)
        np.testing.assert_array_equal(np.asarray(got), want)


def test_hamming_ranks_by_angle():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((200, 256)).astype(np.float32)
    bits = binary_quantize(x)
    dist = hamming_distance(bits[:10], bits)
    np.testing.assert_array_equal(np.asarray(jnp.argmin(dist, axis=-1)), np.arange(10))
    with pytest.raises(TypeError, match="uint8"):
        hamming_distance(bits.astype(jnp.int8), bits)

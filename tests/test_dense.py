"""Tests of dense retrieval: exact_search, rescore, two_stage_search, sharded_search,
kmeans, build_ivf / ivf_search, and the SciFact MiniLM real-data checks.

Expected values come from numpy brute force on the same float32 inputs (argsort with
a stable sort gives the documented tie order), from closed forms stated inline, and
from /work/shared/data/embeddings/README.md for the real-data numbers.
"""

from __future__ import annotations

import gzip
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _native_helpers import require_native
from hypothesis import given
from hypothesis import strategies as st

from jaxrank import _native
from jaxrank.quant import binary_quantize, quantize_int8
from jaxrank.retrieve import (
    build_ivf,
    exact_search,
    ivf_search,
    kmeans,
    kmeans_plusplus,
    rescore,
    two_stage_search,
)

REPO = Path(__file__).resolve().parent.parent
RNG = np.random.default_rng(0)
X = RNG.standard_normal((1003, 24)).astype(np.float32)  # N not a multiple of any chunk
Q = RNG.standard_normal((6, 24)).astype(np.float32)


def _ref_scores(q, x, metric):
    q, x = q.astype(np.float64), x.astype(np.float64)
    if metric == "dot":
        return q @ x.T
    if metric == "cosine":
        qn = np.linalg.norm(q, axis=-1, keepdims=True)
        xn = np.linalg.norm(x, axis=-1, keepdims=True)
        return (q / np.where(qn > 0, qn, 1)) @ (x / np.where(xn > 0, xn, 1)).T
    return -((q[:, None, :] - x[None]) ** 2).sum(-1)


def _ref_topk(s, k, where=None):
    if where is not None:
        s = np.where(where, s, -np.inf)
    idx = np.argsort(-s, axis=-1, kind="stable")[..., :k]
    return np.take_along_axis(s, idx, -1), idx


def _search(jit, *args, **kw):
    if jit:
        static = ("k", "metric", "chunk_size")
        return jax.jit(exact_search, static_argnames=static)(*args, **kw)
    return exact_search(*args, **kw)


# ----------------------------------------------------------------------------- exact


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("metric", ["dot", "cosine", "l2"])
@pytest.mark.parametrize("chunk", [100, 5000])
def test_exact_float_matches_bruteforce(jit, metric, chunk):
    hits = _search(jit, Q, X, 9, metric=metric, chunk_size=chunk)
    ref_v, ref_i = _ref_topk(_ref_scores(Q, X, metric), 9)
    np.testing.assert_array_equal(np.asarray(hits.indices), ref_i)
    np.testing.assert_allclose(np.asarray(hits.scores), ref_v, rtol=1e-5, atol=1e-4)
    assert bool(hits.valid.all())


def test_exact_batch_axes_and_low_precision():
    q = Q.reshape(2, 3, 24)
    hits = exact_search(q, X, 4, chunk_size=128)
    assert hits.indices.shape == (2, 3, 4)
    np.testing.assert_array_equal(
        np.asarray(hits.indices).reshape(6, 4), _ref_topk(_ref_scores(Q, X, "dot"), 4)[1]
    )
    for dt in (jnp.bfloat16, jnp.float16):
        xl = jnp.asarray(X, dt)
        ref = _ref_topk(_ref_scores(Q, np.asarray(xl.astype(jnp.float32)), "dot"), 5)[1]
        np.testing.assert_array_equal(exact_search(Q, xl, 5, chunk_size=300).indices, ref)


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("quantize_queries", [True, False])
def test_exact_int8(jit, quantize_queries):
    codes, scales = quantize_int8(X)
    c64 = np.asarray(codes, np.float64) * np.asarray(scales, np.float64)[:, None]

    def query_values(metric):  # what the search scores with: cosine normalizes first
        q = Q / np.linalg.norm(Q, axis=-1, keepdims=True) if metric == "cosine" else Q
        if not quantize_queries:
            return q.astype(np.float64)
        qc, qs = quantize_int8(q)
        return np.asarray(qc, np.float64) * np.asarray(qs, np.float64)[:, None]

    static = ("k", "metric", "quantize_queries", "chunk_size")
    f = jax.jit(exact_search, static_argnames=static) if jit else exact_search
    for metric in ("dot", "cosine", "l2"):
        hits = f(
            Q,
            codes,
            7,
            scales=scales,
            metric=metric,
            quantize_queries=quantize_queries,
            chunk_size=256,
        )
        # cosine: the normalized query is quantized as is (not renormalized)
        cn = c64 / np.linalg.norm(c64, axis=-1, keepdims=True)
        qv = query_values(metric)
        ref_s = qv @ cn.T if metric == "cosine" else _ref_scores(qv, c64, metric)
        ref_v, _ = _ref_topk(ref_s, 7)
        # float64 reference: near-ties (1e-7 relative) may swap, so compare the
        # reference scores of the returned documents with the reference top-7
        got = np.take_along_axis(ref_s, np.asarray(hits.indices), -1)
        np.testing.assert_allclose(got, ref_v, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(np.asarray(hits.scores), ref_v, rtol=2e-5, atol=2e-4)
    if quantize_queries:
        # dot: exactly int32 dot, then float32 (qs * ds) -- reproduced bit for bit
        qc, qs = quantize_int8(Q)
        dots = np.asarray(qc, np.int64) @ np.asarray(codes, np.int64).T
        s32 = dots.astype(np.float32) * (np.asarray(qs)[:, None] * np.asarray(scales)[None])
        hits = f(Q, codes, 7, scales=scales, chunk_size=256)
        np.testing.assert_array_equal(np.asarray(hits.indices), _ref_topk(s32, 7)[1])
        np.testing.assert_array_equal(np.asarray(hits.scores), _ref_topk(s32, 7)[0])


@given(
    n=st.sampled_from([5, 300, 3001]),
    b=st.sampled_from([1, 17, 40]),
    k=st.sampled_from([1, 5, 64]),
    seed=st.integers(0, 2**16),
)
def test_exact_int8_native_equals_jax_path(n, b, k, seed):
    """jaxrank_int8_topk (one native call: query quantization, VNNI scan, heap) vs the
    pure-JAX path (quantize_int8, int8_scores, streaming top-k): identical scores,
    ids and valid flags. Duplicated rows make exact ties (smaller row first); a NaN
    scale row and a NaN query are never returned; a zero query scores 0 everywhere;
    b x n x 64 >= 2^22 multiply-adds takes the threaded path (several row chunks)."""
    require_native()
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 64)).astype(np.float32)
    x[n // 2 :: 7] = x[0]  # exact ties with row 0
    codes, scales = quantize_int8(x)
    scales = scales.at[n - 1].set(jnp.nan)  # a NaN row
    q = rng.standard_normal((b, 64)).astype(np.float32)
    q[0] = x[0]
    if b > 2:
        q[1] = 0.0
        q[2, 3] = np.nan
    k = min(k, n)
    f = jax.jit(exact_search, static_argnames=("k", "impl"))
    a = f(q, codes, k, scales=scales, impl="native")
    r = f(q, codes, k, scales=scales, impl="jax")
    for name in ("scores", "indices", "valid"):
        np.testing.assert_array_equal(np.asarray(getattr(a, name)), np.asarray(getattr(r, name)))
    assert n - 1 not in np.asarray(a.indices)[np.asarray(a.valid)]
    if b > 2:
        assert not np.asarray(a.valid[2]).any()
        np.testing.assert_array_equal(np.asarray(a.scores[1])[np.asarray(a.valid[1])], 0.0)


def test_exact_binary_hamming():
    bits = binary_quantize(X)
    hits = exact_search(Q, bits, 10, metric="hamming", chunk_size=64)
    # reference: popcount of xor with numpy unpackbits; ties by smaller index
    qb = np.unpackbits(np.asarray(binary_quantize(Q)), axis=-1)
    xb = np.unpackbits(np.asarray(bits), axis=-1)
    ham = (qb[:, None, :] != xb[None]).sum(-1)
    ref_v, ref_i = _ref_topk(-ham.astype(np.float64), 10)
    np.testing.assert_array_equal(np.asarray(hits.indices), ref_i)
    np.testing.assert_array_equal(np.asarray(hits.scores), ref_v)
    packed = exact_search(binary_quantize(Q), bits, 10, metric="hamming")
    np.testing.assert_array_equal(packed.indices, hits.indices)


@pytest.mark.parametrize("jit", [False, True])
def test_filters(jit):
    keep = RNG.random(1003) < 0.3
    hits = _search(jit, Q, X, 8, where=jnp.asarray(keep), chunk_size=200)
    ref_i = _ref_topk(_ref_scores(Q, X, "dot"), 8, keep[None])[1]
    np.testing.assert_array_equal(np.asarray(hits.indices), ref_i)
    per_q = RNG.random((6, 1003)) < 0.5
    hits = _search(jit, Q, X, 8, where=jnp.asarray(per_q), chunk_size=200)
    np.testing.assert_array_equal(
        np.asarray(hits.indices), _ref_topk(_ref_scores(Q, X, "dot"), 8, per_q)[1]
    )
    # only 3 documents admissible: 3 valid hits, the rest valid=False with -inf
    few = np.zeros(1003, bool)
    few[[5, 500, 1002]] = True
    hits = exact_search(Q, X, 5, where=jnp.asarray(few), chunk_size=100)
    assert hits.valid.sum(-1).tolist() == [3] * 6
    assert set(np.asarray(hits.indices)[0, :3].tolist()) == {5, 500, 1002}
    assert np.isneginf(np.asarray(hits.scores)[:, 3:]).all()


@given(
    chunk=st.sampled_from([1, 17, 256, 2000]),
    n_pad=st.sampled_from([0, 5, 64]),
    metric=st.sampled_from(["dot", "l2"]),
)
def test_chunk_and_padding_invariance(chunk, n_pad, metric):
    """Chunking never changes the result; masked padding rows equal removing them."""
    base = exact_search(Q, X[:300], 6, metric=metric, chunk_size=300)
    pad = RNG.standard_normal((n_pad, 24)).astype(np.float32) * 100  # would win if unmasked
    xp = np.concatenate([X[:300], pad])
    where = np.arange(300 + n_pad) < 300
    got = exact_search(Q, xp, 6, metric=metric, where=jnp.asarray(where), chunk_size=chunk)
    np.testing.assert_array_equal(got.indices, base.indices)
    # XLA:CPU matmul kernels accumulate differently per chunk shape: last-bit differences
    np.testing.assert_allclose(got.scores, base.scores, rtol=1e-6)


def test_ties_by_smaller_index():
    x = np.tile(np.array([[1.0, 0.0]], np.float32), (10, 1))
    hits = exact_search(np.array([[1.0, 0.0]], np.float32), x, 4, chunk_size=3)
    assert hits.indices.tolist() == [[0, 1, 2, 3]]


def test_bad_input():
    with pytest.raises(ValueError, match="dimension mismatch"):
        exact_search(Q[:, :5], X, 3)
    with pytest.raises(ValueError, match="larger than the corpus"):
        exact_search(Q, X[:4], 5)
    with pytest.raises(ValueError, match="empty"):
        exact_search(Q, X[:0], 1)
    with pytest.raises(ValueError, match="metric"):
        exact_search(Q, X, 3, metric="manhattan")
    with pytest.raises(ValueError, match="hamming"):
        exact_search(Q, binary_quantize(X), 3, metric="dot")
    with pytest.raises(ValueError, match="scales"):
        exact_search(Q, quantize_int8(X)[0], 3)
    with pytest.raises(ValueError, match="where"):
        exact_search(Q, X, 3, where=jnp.ones(5, bool))
    with pytest.raises(TypeError, match="where"):
        exact_search(Q, X, 3, where=jnp.ones(1003))
    with pytest.raises(ValueError, match="dimension mismatch"):
        exact_search(Q[:, :16], binary_quantize(X), 3, metric="hamming")
    empty = exact_search(Q[:0], X, 3)
    assert empty.indices.shape == (0, 3) and empty.scores.shape == (0, 3)


def test_nan_and_zero_vectors():
    x = X[:50].copy()
    x[7, 3] = np.nan  # a NaN document is never returned
    hits = exact_search(Q, x, 50, chunk_size=16)
    assert 7 not in np.asarray(hits.indices)[hits.valid].tolist()
    assert hits.valid.sum(-1).tolist() == [49] * 6
    q = Q[:2].copy()
    q[1, 0] = np.nan  # a NaN query returns nothing valid
    hits = exact_search(q, X[:50], 5)
    assert bool(hits.valid[0].all()) and not bool(hits.valid[1].any())
    # cosine with a zero vector: score 0 (documented), so zero document ranks as 0.0
    z = X[:20].copy()
    z[4] = 0.0
    s = exact_search(Q[:1], z, 20, metric="cosine")
    pos = int(np.flatnonzero(np.asarray(s.indices[0]) == 4)[0])
    assert float(s.scores[0, pos]) == 0.0
    zq = exact_search(np.zeros((1, 24), np.float32), z, 3, metric="cosine")
    assert zq.scores.tolist() == [[0.0, 0.0, 0.0]] and zq.indices.tolist() == [[0, 1, 2]]


# ----------------------------------------------------------------------------- rescore


@pytest.mark.parametrize("jit", [False, True])
def test_rescore_candidates(jit):
    f = jax.jit(rescore, static_argnames=("k", "metric")) if jit else rescore
    cand = np.stack([RNG.permutation(1003)[:40] for _ in range(6)]).astype(np.int32)
    cand[:, -3:] = -1  # FAISS-style missing results
    first = RNG.standard_normal(cand.shape).astype(np.float32)
    for metric in ("dot", "cosine", "l2"):
        hits, pos, fs = f(Q, X, jnp.asarray(cand), 5, metric=metric, first_stage_scores=first)
        s = np.take_along_axis(_ref_scores(Q, X, metric), np.maximum(cand, 0), -1)
        ref_v, ref_pos = _ref_topk(s, 5, cand >= 0)
        np.testing.assert_array_equal(np.asarray(pos), ref_pos)
        np.testing.assert_array_equal(
            np.asarray(hits.indices), np.take_along_axis(cand, ref_pos, -1)
        )
        np.testing.assert_allclose(np.asarray(hits.scores), ref_v, rtol=1e-5, atol=1e-4)
        np.testing.assert_array_equal(np.asarray(fs), np.take_along_axis(first, ref_pos, -1))
    # all candidates = the whole corpus: rescoring equals exact search
    every = jnp.broadcast_to(jnp.arange(1003, dtype=jnp.int32), (6, 1003))
    np.testing.assert_array_equal(rescore(Q, X, every, 7)[0].indices, exact_search(Q, X, 7).indices)
    # fewer valid candidates than k
    hits, _, _ = rescore(Q, X, jnp.full((6, 4), -1).at[:, 0].set(3), 2)
    assert hits.valid.tolist() == [[True, False]] * 6
    with pytest.raises(ValueError, match="candidates"):
        rescore(Q, X, jnp.zeros((5, 4), jnp.int32), 2)
    with pytest.raises(ValueError, match="k"):
        rescore(Q, X, jnp.zeros((6, 4), jnp.int32), 5)


def test_two_stage():
    codes, scales = quantize_int8(X)
    exact = exact_search(Q, X, 5)
    # candidates = N: every stage-1 representation gives exact results
    for s1, kw in [
        (binary_quantize(X), {}),
        (codes, {"stage1_scales": scales}),
        (jnp.asarray(X[:, :8]), {}),
    ]:
        got = two_stage_search(Q, X, s1, 5, candidates=1003, **kw)
        np.testing.assert_array_equal(got.indices, exact.indices)
    # Matryoshka prefix: stage 1 uses the first 8 dimensions of the queries
    cand = exact_search(Q[:, :8], X[:, :8], 50).indices
    ref = rescore(Q, X, cand, 5)[0]
    got = two_stage_search(Q, X, X[:, :8], 5, candidates=50)
    np.testing.assert_array_equal(got.indices, ref.indices)
    with pytest.raises(ValueError, match="candidates"):
        two_stage_search(Q, X, X, 10, candidates=5)


# ----------------------------------------------------------------------------- kmeans


def _blobs(n_per=60, d=5, seed=1):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((4, d)).astype(np.float32) * 20
    x = np.repeat(centers, n_per, 0) + rng.standard_normal((4 * n_per, d)).astype(np.float32)
    return centers, x, np.repeat(np.arange(4), n_per)


@pytest.mark.parametrize("batch_size", [None, 64])
def test_kmeans_recovers_blobs(batch_size):
    _, x, labels = _blobs()
    iters = 20 if batch_size is None else 60
    c, a = kmeans(x, 4, key=jax.random.key(0), iters=iters, batch_size=batch_size)
    a = np.asarray(a)
    # same partition as the true labels (up to renaming)
    for lab in range(4):
        assert len(set(a[labels == lab].tolist())) == 1
    assert len(set(a.tolist())) == 4
    # centroids at the blob means (Lloyd exactly; mini-batch approximately)
    means = np.stack([x[a == j].mean(0) for j in range(4)])
    tol = 1e-4 if batch_size is None else 0.5
    np.testing.assert_allclose(np.asarray(c), means, atol=tol)


@pytest.mark.parametrize("batch_size", [None, 64])
def test_kmeans_spherical(batch_size):
    """spherical=True: unit centroids; Lloyd's centroid of a cluster is the normalized
    mean of its (unit) rows (closed form: argmax_c sum_i <x_i, c> over |c| = 1)."""
    _, x, labels = _blobs()
    x = x / np.linalg.norm(x, axis=-1, keepdims=True)
    iters = 20 if batch_size is None else 60
    c, a = kmeans(x, 4, key=jax.random.key(0), iters=iters, batch_size=batch_size,
                  spherical=True)  # fmt: skip
    a = np.asarray(a)
    for lab in range(4):
        assert len(set(a[labels == lab].tolist())) == 1
    np.testing.assert_allclose(np.linalg.norm(np.asarray(c), axis=-1), 1.0, rtol=1e-6)
    if batch_size is None:
        means = np.stack([x[a == j].mean(0) for j in range(4)])
        means /= np.linalg.norm(means, axis=-1, keepdims=True)
        np.testing.assert_allclose(np.asarray(c), means, atol=1e-5)


def test_kmeans_plusplus_and_errors():
    _, x, _ = _blobs()
    c = np.asarray(kmeans_plusplus(jnp.asarray(x), 4, jax.random.key(3)))
    rows = {tuple(r) for r in x.tolist()}
    assert all(tuple(r) in rows for r in c.tolist())  # seeds are data points
    # with well separated blobs D^2 sampling picks one seed per blob (w.p. ~1)
    assert len({int(np.argmin(((x - r) ** 2).sum(1))) // 60 for r in c}) == 4
    with pytest.raises(ValueError, match="n_clusters"):
        kmeans(x, 0, key=jax.random.key(0))
    with pytest.raises(ValueError, match="init"):
        kmeans(x, 2, key=jax.random.key(0), init="bogus")
    c, _ = kmeans(x, 4, key=jax.random.key(0), init=x[:4], iters=0)
    np.testing.assert_array_equal(np.asarray(c), x[:4])


# ----------------------------------------------------------------------------- IVF


@pytest.mark.parametrize("metric", ["dot", "cosine", "l2"])
def test_ivf_full_probe_is_exact(metric):
    index = build_ivf(X, 12, key=jax.random.key(0), metric=metric, iters=5)
    assert index.capacity % 8 == 0 and int(index.where.sum()) == 1003
    assert sorted(np.asarray(index.ids)[np.asarray(index.where)].tolist()) == list(range(1003))
    for jit in (False, True):
        f = jax.jit(ivf_search, static_argnames=("k", "nprobe")) if jit else ivf_search
        hits = f(index, jnp.asarray(Q), 10, nprobe=12)
        ref_v, ref_i = _ref_topk(_ref_scores(Q, X, metric), 10)
        np.testing.assert_array_equal(np.asarray(hits.indices), ref_i)
        np.testing.assert_allclose(np.asarray(hits.scores), ref_v, rtol=1e-5, atol=1e-4)
    # 5 partitions per scan step: 3 steps, the last padded with 3 masked partitions
    hits = ivf_search(index, Q, 10, nprobe=12, probe_rows=5 * index.capacity)
    np.testing.assert_array_equal(np.asarray(hits.indices), ref_i)
    one = ivf_search(index, Q, 10, nprobe=5, probe_rows=1)  # one partition per step
    np.testing.assert_array_equal(one.indices, ivf_search(index, Q, 10, nprobe=5).indices)


def test_ivf_int8_storage_rescore_and_recall():
    index = build_ivf(X, 16, key=jax.random.key(1), metric="cosine", storage="int8")
    exact = exact_search(Q, X, 10, metric="cosine")
    full = ivf_search(index, Q, 10, nprobe=16, rescore_corpus=X, candidates=40)
    np.testing.assert_array_equal(full.indices, exact.indices)
    recalls = []
    for nprobe in (1, 4, 16):
        h = ivf_search(index, Q, 10, nprobe=nprobe)
        recalls.append(
            np.mean(
                [
                    len(set(a) & set(b)) / 10
                    for a, b in zip(h.indices.tolist(), exact.indices.tolist(), strict=True)
                ]
            )
        )
    assert recalls[0] <= recalls[1] <= recalls[2] and recalls[2] >= 0.9
    bf = build_ivf(X, 16, key=jax.random.key(1), metric="cosine", storage="bfloat16")
    assert bf.vectors.dtype == jnp.bfloat16
    # bfloat16 storage: exact search over the stored (normalized, rounded) vectors
    xn = X / np.linalg.norm(X, axis=-1, keepdims=True)
    xb = np.asarray(jnp.asarray(xn, jnp.bfloat16).astype(jnp.float32))
    ref = exact_search(Q, xb, 10, metric="cosine")  # Q normalized; xb rows have norm ~1
    got = ivf_search(bf, Q, 10, nprobe=16)
    ref_s = _ref_scores(Q / np.linalg.norm(Q, axis=-1, keepdims=True), xb, "dot")
    np.testing.assert_allclose(
        np.take_along_axis(ref_s, np.asarray(got.indices), -1), _ref_topk(ref_s, 10)[0], rtol=1e-6
    )
    assert _overlap(got.indices, ref.indices) >= 0.95


def test_ivf_filter_and_errors():
    index = build_ivf(X, 8, key=jax.random.key(2), metric="l2", iters=3)
    keep = RNG.random(1003) < 0.2
    hits = ivf_search(index, Q, 5, nprobe=8, where=jnp.asarray(keep))
    np.testing.assert_array_equal(hits.indices, _ref_topk(_ref_scores(Q, X, "l2"), 5, keep)[1])
    with pytest.raises(ValueError, match="nprobe"):
        ivf_search(index, Q, 5, nprobe=9)
    with pytest.raises(ValueError, match="queries"):
        ivf_search(index, Q[:, :3], 5)
    with pytest.raises(ValueError, match="capacity"):
        build_ivf(X, 8, key=jax.random.key(2), capacity=125)  # 8 x 125 < 1003
    # a capacity below the largest partition spills rows; none is lost, full probe exact
    tight = build_ivf(X, 8, key=jax.random.key(2), metric="l2", iters=3, capacity=126)
    assert tight.capacity == 126 and int(tight.where.sum()) == 1003
    assert sorted(np.asarray(tight.ids)[np.asarray(tight.where)].tolist()) == list(range(1003))
    hits = ivf_search(tight, Q, 5, nprobe=8)
    np.testing.assert_array_equal(hits.indices, _ref_topk(_ref_scores(Q, X, "l2"), 5)[1])
    # overflow="split": an overfull list is stored as several partitions
    split = build_ivf(X, 8, key=jax.random.key(2), metric="l2", iters=3, capacity=60,
                      overflow="split")  # fmt: skip
    assert split.capacity == 60 and split.n_lists == 8 and split.n_partitions > 8
    assert int(split.where.sum()) == 1003 and split.max_pieces > 1
    assert sorted(np.asarray(split.ids)[np.asarray(split.where)].tolist()) == list(range(1003))
    hits = ivf_search(split, Q, 5, nprobe=8)
    np.testing.assert_array_equal(hits.indices, _ref_topk(_ref_scores(Q, X, "l2"), 5)[1])
    # nprobe=1 scans every partition of the best list: brute force over that list's rows
    pieces, ids, where = (np.asarray(a) for a in (split.pieces, split.ids, split.where))
    cent = np.asarray(split.centroids, np.float64)
    best = np.argmax(2 * Q.astype(np.float64) @ cent.T - (cent**2).sum(-1), axis=-1)
    for impl in ("native", "jax") if _native.available() else ("jax",):
        hits = ivf_search(split, Q, 5, nprobe=1, impl=impl)
        for qi, lst in enumerate(best):
            rows = ids[pieces[lst] : pieces[lst + 1]][where[pieces[lst] : pieces[lst + 1]]]
            s = _ref_scores(Q[qi : qi + 1], X[rows], "l2")[0]
            want = rows[np.argsort(-s, kind="stable")[:5]]
            np.testing.assert_array_equal(np.asarray(hits.indices[qi]), want)
    with pytest.raises(ValueError, match="overflow"):
        build_ivf(X, 8, key=jax.random.key(2), capacity=60, overflow="bogus")
    with pytest.raises(ValueError, match="n_partitions"):
        build_ivf(X, 2000, key=jax.random.key(2))
    assert ivf_search(index, Q[:0], 5).indices.shape == (0, 5)


def test_ivf_native_kernel_equals_jax_path():
    """jaxrank_ivf_flat (native CPU scan) vs the pure-JAX gather + streaming top-k:
    same ids, valid flags and (to float rounding) scores; 40 queries = a full block of
    32 plus a partial one; duplicated rows make exact score ties (order: partition,
    then row); a NaN row is never returned; a zero query under cosine scores 0."""
    require_native()
    x = np.concatenate([X, X[:40], np.full((1, 24), np.nan, np.float32)])
    q = np.concatenate([np.tile(Q, (6, 1)), X[:3], np.zeros((1, 24), np.float32)])
    assert q.shape[0] == 40
    plain = build_ivf(x, 12, key=jax.random.key(3), metric="dot", iters=3)
    spill = build_ivf(
        x, 12, key=jax.random.key(3), metric="cosine", iters=3, capacity=70, overflow="split"
    )
    for index, nprobe, jit in ((plain, 1, False), (plain, 12, False), (spill, 5, True)):
        f = jax.jit(ivf_search, static_argnames=("k", "nprobe", "impl")) if jit else ivf_search
        a = f(index, q, 7, nprobe=nprobe, impl="native")
        b = f(index, q, 7, nprobe=nprobe, impl="jax")
        np.testing.assert_array_equal(np.asarray(a.indices), np.asarray(b.indices))
        np.testing.assert_array_equal(np.asarray(a.valid), np.asarray(b.valid))
        np.testing.assert_allclose(np.asarray(a.scores), np.asarray(b.scores), atol=1e-5)
        assert 1043 not in np.asarray(a.indices)[np.asarray(a.valid)]  # the NaN row
    # k beyond the probed rows: unfilled slots are invalid (-inf, id 0) on both paths
    small = build_ivf(X[:64], 8, key=jax.random.key(0), metric="dot", iters=2)
    a = ivf_search(small, Q, small.capacity, nprobe=1, impl="native")
    b = ivf_search(small, Q, small.capacity, nprobe=1, impl="jax")
    np.testing.assert_array_equal(np.asarray(a.valid), np.asarray(b.valid))
    np.testing.assert_array_equal(np.asarray(a.indices), np.asarray(b.indices))
    assert not np.asarray(a.valid).all()
    zero = ivf_search(spill, np.zeros((1, 24), np.float32), 3, nprobe=12, impl="native")
    np.testing.assert_array_equal(np.asarray(zero.scores), 0.0)


# ----------------------------------------------------------------------------- sharded


def test_sharded_equals_single_device():
    """8 host devices via XLA_FLAGS in a subprocess (flags must precede jax's start)."""
    script = textwrap.dedent(
        """
        import os
        os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
        import jax, jax.numpy as jnp, numpy as np
        from jax.sharding import Mesh
        from jaxrank.quant import binary_quantize, quantize_int8
        from jaxrank.retrieve import exact_search, sharded_search
        assert len(jax.devices()) == 8
        rng = np.random.default_rng(0)
        x = rng.standard_normal((1000, 16)).astype(np.float32)  # 8 shards of 125
        x[120:130] = x[0]  # exact ties across a shard boundary
        q = np.concatenate([x[:1], rng.standard_normal((9, 16)).astype(np.float32)])
        mesh = Mesh(np.array(jax.devices()), ("docs",))
        codes, scales = quantize_int8(x)
        keep = jnp.asarray(rng.random((10, 1000)) < 0.5)
        # float scores are bit-identical when both runs multiply the same chunk
        # shapes (125 rows here); XLA:CPU's matmul rounds differently per shape
        cases = [
            dict(corpus=x, metric="dot", chunk_size=125),
            dict(corpus=x, metric="l2", chunk_size=25),
            dict(corpus=x, metric="cosine", where=keep[0], chunk_size=125),
            dict(corpus=x, metric="dot", where=keep, chunk_size=125),
            dict(corpus=codes, scales=scales), dict(corpus=binary_quantize(x), metric="hamming"),
        ]
        for kw in cases:
            corpus = kw.pop("corpus")
            for k in (5, 600):
                ref = exact_search(q, corpus, k, **kw)
                sh = sharded_search(q, corpus, k, mesh=mesh, **kw)
                for name, a, b in zip(ref._fields, ref, sh):
                    ok = np.array_equal(np.asarray(a), np.asarray(b))
                    assert ok, (name, corpus.dtype, sorted(kw), kw.get("metric"), k)
        # N = 1003 (padded to 8 x 126 with masked rows): same ids, scores to 1 ulp
        x3 = np.concatenate([x, x[:3] * 0.5])
        ref = exact_search(q, x3, 50)
        sh = sharded_search(q, x3, 50, mesh=mesh)
        assert np.array_equal(np.asarray(ref.indices), np.asarray(sh.indices))
        assert np.allclose(np.asarray(ref.scores), np.asarray(sh.scores), rtol=1e-6)
        print("OK")
        """
    )
    env = {**__import__("os").environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600
    )
    assert out.returncode == 0 and "OK" in out.stdout, out.stderr[-3000:]


# ----------------------------------------------------------------------------- SciFact


@pytest.fixture(scope="module")
def scifact(shared_data):
    emb = shared_data / "embeddings"
    corpus = np.load(emb / "scifact_corpus_minilm.npy").astype(np.float32)
    queries = np.load(emb / "scifact_queries_minilm.npy").astype(np.float32)
    doc_ids = np.array((emb / "scifact_corpus_ids.txt").read_text().split("\n")[:-1])
    q_ids = np.array((emb / "scifact_query_ids.txt").read_text().split("\n")[:-1])
    from jaxrank.io import read_beir_qrels

    qrels = read_beir_qrels(shared_data / "beir_scifact" / "qrels" / "test.tsv")
    test = np.isin(q_ids, np.asarray(qrels.query_ids))
    return {
        "corpus": corpus,
        "queries": queries[test],
        "q_ids": q_ids[test],
        "doc_ids": doc_ids,
        "qrels": qrels,
        "run_file": emb / "scifact-test.minilm-dense.top100.trec.gz",
    }


def _overlap(a, b, k=10):
    a, b = np.asarray(a)[:, :k], np.asarray(b)[:, :k]
    return float(np.mean([len(set(x) & set(y)) / k for x, y in zip(a, b, strict=True)]))


def test_scifact_exact_ndcg_and_reference_run(scifact):
    from jaxrank.eval import evaluate
    from jaxrank.io import Run

    assert scifact["queries"].shape == (300, 384) and scifact["corpus"].shape == (5183, 384)
    hits = exact_search(scifact["queries"], scifact["corpus"], 100, chunk_size=1024)
    ids, scores = np.asarray(hits.indices), np.asarray(hits.scores)
    run = Run.from_dict(
        {
            q: dict(zip(scifact["doc_ids"][ids[i]].tolist(), scores[i].tolist(), strict=True))
            for i, q in enumerate(scifact["q_ids"])
        }
    )
    ev = evaluate(scifact["qrels"], run, ["ndcg_cut.10", "recall.100"])
    # README: nDCG@10 0.64508, Recall@100 0.92500 (pytrec_eval, exact float search)
    assert round(ev.summary["ndcg_cut_10"], 5) == 0.64508
    assert round(ev.summary["recall_100"], 5) == 0.92500
    # the shared reference run (same top-100, 8-decimal scores) equals ours id by id
    ref: dict[str, list[str]] = {}
    with gzip.open(scifact["run_file"], "rt") as f:
        for line in f:
            qid, _, did, rank, score, _ = line.split()
            ref.setdefault(qid, []).append((int(rank), did, float(score)))
    for i, q in enumerate(scifact["q_ids"]):
        r = sorted(ref[q])
        assert [d for _, d, _ in r] == scifact["doc_ids"][ids[i]].tolist()
        np.testing.assert_allclose([s for _, _, s in r], scores[i], atol=1e-6)


def test_scifact_quantized_overlaps(scifact):
    x, q = scifact["corpus"], scifact["queries"]
    exact = exact_search(q, x, 10).indices
    codes, scales = quantize_int8(x)
    int8 = exact_search(q, codes, 10, scales=scales).indices
    # README: int8 x int8 top-10 overlap 0.992 (target >= 0.99); int8 docs, float q 0.994
    assert round(_overlap(int8, exact), 3) == 0.992
    asym = exact_search(q, codes, 10, scales=scales, quantize_queries=False).indices
    assert round(_overlap(asym, exact), 3) == 0.994
    # README: sign-binary Hamming top-100, then float rescoring: 0.945; top-10 only: 0.568
    bits = binary_quantize(x)
    assert round(_overlap(exact_search(q, bits, 10, metric="hamming").indices, exact), 3) == 0.568
    two = two_stage_search(q, x, bits, 10, candidates=100)
    assert round(_overlap(two.indices, exact), 3) == 0.945


def test_scifact_ivf_recall(scifact):
    x, q = scifact["corpus"], scifact["queries"]
    exact = exact_search(q, x, 10).indices
    index = build_ivf(x, 64, key=jax.random.key(0), iters=10)
    r = [_overlap(ivf_search(index, q, 10, nprobe=p).indices, exact) for p in (1, 8, 64)]
    # nprobe = P is exact; recall grows with nprobe (measured here: see README table)
    assert r[2] == 1.0 and r[0] < r[1] < r[2] and r[1] >= 0.8


def test_usearch_first_stage_rescored(scifact):
    """External engine as the first stage: usearch HNSW ids (``-1``-free here), exact rescoring.

    A missing usearch makes this test fail (it is in the ``test`` extra)."""
    from usearch.index import Index

    x, q = scifact["corpus"], scifact["queries"]
    index = Index(ndim=384, metric="ip", dtype="f32")
    index.add(np.arange(len(x)), x)
    found = index.search(q, 100)
    cand = np.asarray(found.keys, np.int64).reshape(len(q), 100)
    valid = np.arange(100)[None, :] < np.asarray(found.counts)[:, None]
    hits, _, first = rescore(
        q, x, jnp.asarray(np.where(valid, cand, -1)), 10, first_stage_scores=-found.distances
    )
    exact = exact_search(q, x, 10)
    # HNSW top-100 holds nearly all of the exact top-10 (measured 0.999 on this data)
    assert _overlap(hits.indices, exact.indices) >= 0.98
    # rescored scores are exact dot products: usearch reports 1 - ip as the distance
    np.testing.assert_allclose(np.asarray(first), np.asarray(hits.scores) - 1.0, atol=1e-5)

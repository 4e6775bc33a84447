"""Tests of product quantization: train_pq, pq_encode, pq_decode, pq_search.

Expected values come from hand calculations (stated inline) and from numpy float64
brute force on the decoded vectors (the ADC identity: a code's table score equals the
query's score against the decoded vector).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _native_helpers import require_native
from hypothesis import given
from hypothesis import strategies as st

from jaxrank.retrieve import PQCodebook, pq_decode, pq_encode, pq_search, train_pq

RNG = np.random.default_rng(0)
X = RNG.standard_normal((1003, 24)).astype(np.float32)  # N not a multiple of the chunks
Q = RNG.standard_normal((5, 24)).astype(np.float32)
PQ = train_pq(X, 4, key=jax.random.key(0), n_bits=5, iters=8)


def test_hand_example():
    # M=2 subspaces of 1 dim, K=2: subspace 0 centroids {0, 1}, subspace 1 {0, 5}
    pq = PQCodebook(jnp.array([[[0.0], [1.0]], [[0.0], [5.0]]]))
    codes = pq_encode(pq, jnp.array([[0.9, 0.2], [0.1, 4.0], [2.0, 3.0]]))
    # nearest: 0.9->1 (code 1), 0.2->0; 0.1->0, 4.0->5; 2.0->1, 3.0->5 (|3-5| < |3-0|)
    assert codes.dtype == jnp.uint8 and codes.tolist() == [[1, 0], [0, 1], [1, 1]]
    assert pq_decode(pq, codes).tolist() == [[1.0, 0.0], [0.0, 5.0], [1.0, 5.0]]
    # q = (1, 1): dot scores 1, 5, 6 -> order 2, 1, 0; l2: -(0+1), -(1+16), -(0+16)
    hits = pq_search(jnp.array([[1.0, 1.0]]), pq, codes, 3)
    assert hits.indices.tolist() == [[2, 1, 0]] and hits.scores.tolist() == [[6.0, 5.0, 1.0]]
    hits = pq_search(jnp.array([[1.0, 1.0]]), pq, codes, 3, metric="l2")
    assert hits.indices.tolist() == [[0, 2, 1]] and hits.scores.tolist() == [[-1.0, -16.0, -17.0]]


def test_encode_is_nearest_centroid_per_subspace():
    cent = np.asarray(PQ.centroids, np.float64)  # [4, 32, 6]
    sub = X.astype(np.float64).reshape(-1, 4, 6)
    d = ((sub[:, :, None, :] - cent[None]) ** 2).sum(-1)  # [N, M, K]
    np.testing.assert_array_equal(np.asarray(pq_encode(PQ, X)), d.argmin(-1))


def test_training_lowers_the_quantization_error():
    untrained = train_pq(X, 4, key=jax.random.key(0), n_bits=5, iters=0)  # random rows
    err = [float(jnp.mean((pq_decode(p, pq_encode(p, X)) - X) ** 2)) for p in (untrained, PQ)]
    assert err[1] < 0.8 * err[0]


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("metric", ["dot", "l2"])
def test_adc_equals_scoring_the_decoded_vectors(jit, metric):
    codes = pq_encode(PQ, X)
    dec = np.asarray(pq_decode(PQ, codes), np.float64)
    q = Q.astype(np.float64)
    ref = q @ dec.T if metric == "dot" else -((q[:, None] - dec[None]) ** 2).sum(-1)
    top = np.sort(ref, axis=-1)[:, ::-1][:, :7]
    f = jax.jit(pq_search, static_argnames=("k", "metric", "chunk_size")) if jit else pq_search
    hits = f(Q, PQ, codes, k=7, metric=metric, chunk_size=256)
    np.testing.assert_allclose(np.asarray(hits.scores), top, rtol=1e-5, atol=1e-4)
    got = np.take_along_axis(ref, np.asarray(hits.indices), -1)  # near ties may swap
    np.testing.assert_allclose(got, top, rtol=1e-5, atol=1e-4)
    # chunking does not change the result
    other = f(Q, PQ, codes, k=7, metric=metric, chunk_size=4096)
    np.testing.assert_array_equal(np.asarray(other.indices), np.asarray(hits.indices))


def test_filter_rescore_and_ties():
    codes = pq_encode(PQ, X)
    keep = np.arange(1003) % 3 != 0
    hits = pq_search(Q, PQ, codes, 10, where=jnp.asarray(keep))
    assert keep[np.asarray(hits.indices)].all() and bool(hits.valid.all())
    # rescoring 200 ADC candidates exactly: each document finds itself first
    hits = pq_search(X[:20], PQ, codes, 3, rescore_corpus=X, candidates=200, metric="l2")
    assert hits.indices[:, 0].tolist() == list(range(20))
    # duplicated codes tie exactly: the smaller row comes first
    dup = jnp.concatenate([codes[:1], codes[:1], codes[1:3]])
    hits = pq_search(Q[:1], PQ, dup, 4)
    pos = hits.indices[0].tolist()
    assert pos.index(0) < pos.index(1)
    assert pq_search(Q[:0], PQ, codes, 3).indices.shape == (0, 3)


def test_bad_input():
    codes = pq_encode(PQ, X)
    with pytest.raises(ValueError, match="n_subspaces"):
        train_pq(X, 5, key=jax.random.key(0))  # 5 does not divide 24
    with pytest.raises(ValueError, match="n_bits"):
        train_pq(X, 4, key=jax.random.key(0), n_bits=9)
    with pytest.raises(ValueError, match="training rows"):
        train_pq(X[:100], 4, key=jax.random.key(0), n_bits=8)  # 100 < 256 centroids
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        train_pq(bad, 4, key=jax.random.key(0), n_bits=4)
    with pytest.raises(ValueError, match="x"):
        pq_encode(PQ, X[:, :20])
    with pytest.raises(ValueError, match="codes"):
        pq_search(Q, PQ, codes.astype(jnp.int32), 3)
    with pytest.raises(ValueError, match="codes"):
        pq_decode(PQ, codes[:, :3])
    with pytest.raises(ValueError, match="32 centroids"):
        pq_search(Q, PQ, codes.at[4, 1].set(32), 3)  # n_bits=5: codes must be < 32
    with pytest.raises(ValueError, match="queries"):
        pq_search(Q[:, :8], PQ, codes, 3)
    with pytest.raises(ValueError, match="k"):
        pq_search(Q, PQ, codes[:5], 6)
    with pytest.raises(ValueError, match="where"):
        pq_search(Q, PQ, codes, 3, where=jnp.ones(7, bool))
    with pytest.raises(ValueError, match="metric"):
        pq_search(Q, PQ, codes, 3, metric="cosine")


@given(
    n=st.sampled_from([7, 300, 7001]),
    b=st.sampled_from([1, 17, 40]),
    k=st.sampled_from([1, 5, 64]),
    metric=st.sampled_from(["dot", "l2"]),
    seed=st.integers(0, 2**16),
)
def test_native_equals_jax_path(n, b, k, metric, seed):
    """jaxrank_pq_topk (native table sums + heap) vs the pure-JAX path (a take per
    subspace, streaming top-k): identical scores, ids and valid flags (same float32
    order of the sums). Duplicated codes tie exactly; a NaN query returns nothing;
    b x n x M >= 2^20 (40 x 7001 x 4) takes the threaded path (several row chunks)."""
    require_native()
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 32, (n, 4), dtype=np.uint8)
    codes[n // 2 :: 5] = codes[0]
    q = rng.standard_normal((b, 24)).astype(np.float32)
    if b > 1:
        q[1, 0] = np.nan
    k = min(k, n)
    f = jax.jit(pq_search, static_argnames=("k", "metric", "impl"))
    a = f(q, PQ, codes, k=k, metric=metric, impl="native")
    r = f(q, PQ, codes, k=k, metric=metric, impl="jax")
    for name in ("scores", "indices", "valid"):
        np.testing.assert_array_equal(np.asarray(getattr(a, name)), np.asarray(getattr(r, name)))
    if b > 1:
        assert not np.asarray(a.valid[1]).any()

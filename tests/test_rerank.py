"""Tests of jaxrank.rerank.maxsim: native kernel vs pure JAX vs a float64 formula."""

from __future__ import annotations

import threading

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _native_helpers import assert_scores_close, maxsim_reference, require_native
from hypothesis import given
from hypothesis import strategies as st
from jax.test_util import check_grads

import jaxrank.config as config
from jaxrank.rerank import maxsim

# (B, Lq, D, N, Ld): Lq = 1, odd D, D not a multiple of 16/64, N = 0, Lq > 64 (two chunks).
SHAPES = [
    (1, 1, 7, 5, 4),
    (2, 32, 128, 9, 13),
    (1, 33, 67, 0, 5),
    (3, 17, 130, 20, 30),
    (2, 1, 1, 3, 1),
    (1, 70, 16, 6, 9),
]


def _data(shape, seed, masks):
    b, lq, d, n, ld = shape
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((b, lq, d)).astype(np.float32)
    docs = rng.standard_normal((n, ld, d)).astype(np.float32)
    lengths = rng.integers(0, ld + 1, size=n).astype(np.int32)
    doc_mask = rng.random((n, ld)) < 0.8 if masks else None
    query_mask = rng.random((b, lq)) < 0.8 if masks else None
    return q, docs, lengths, doc_mask, query_mask


@pytest.mark.parametrize("jit", [False, True])
@given(shape=st.sampled_from(SHAPES), seed=st.integers(0, 2**16), masks=st.booleans())
def test_native_and_jax_match_float64_formula(jit, shape, seed, masks):
    require_native()
    q, docs, lengths, dm, qm = _data(shape, seed, masks)
    want = maxsim_reference(q, docs, lengths, dm, qm)  # source: float64 numpy formula
    for impl in ("native", "jax"):

        def f(q, docs, lengths, dm, qm, impl=impl):
            return maxsim(q, docs, doc_lengths=lengths, doc_mask=dm, query_mask=qm, impl=impl)

        got = (jax.jit(f) if jit else f)(q, docs, lengths, dm, qm)
        assert_scores_close(got, want, rtol=1e-5)


def test_native_equals_jax_path_large_n():
    require_native()
    q, docs, lengths, _, _ = _data((4, 32, 64, 3000, 24), 7, False)
    a = maxsim(q, docs, doc_lengths=lengths, impl="native")
    b = maxsim(q, docs, doc_lengths=lengths, impl="jax", chunk_size=256)
    assert_scores_close(a, b, rtol=1e-5)


def test_hand_example():
    q = jnp.array([[1.0, 0.0], [0.0, 1.0]])
    docs = jnp.array([[[1.0, 0.0], [0.5, 0.5]], [[0.0, 2.0], [0.0, 0.0]]])
    for impl in ("native", "jax"):
        got = maxsim(q, docs, doc_lengths=jnp.array([2, 1]), impl=impl)
        # hand calculation: doc0 = max(1, .5) + max(0, .5) = 1.5; doc1 = 0 + 2 = 2
        np.testing.assert_array_equal(np.asarray(got), [1.5, 2.0])


@pytest.mark.parametrize("impl", ["native", "jax"])
def test_bfloat16_inputs_accumulate_in_float32(impl):
    require_native()
    q, docs, lengths, _, _ = _data((2, 32, 128, 11, 17), 3, False)
    qb, db = jnp.asarray(q, jnp.bfloat16), jnp.asarray(docs, jnp.bfloat16)
    got = maxsim(qb, db, doc_lengths=lengths, impl=impl)
    # bf16 products are exact in float32; the reference uses the bf16-rounded inputs in float64.
    want = maxsim_reference(np.asarray(qb, np.float32), np.asarray(db, np.float32), lengths)
    assert got.dtype == jnp.float32
    assert_scores_close(got, want, rtol=1e-5)


@pytest.mark.parametrize("impl", ["native", "jax"])
def test_padding_documents_does_not_change_scores(impl):
    q, docs, lengths, _, _ = _data((2, 8, 16, 5, 6), 1, False)
    padded = np.concatenate([docs, 100 * np.ones((5, 10, 16), np.float32)], axis=1)
    a = maxsim(q, docs, doc_lengths=lengths, impl=impl)
    b = maxsim(q, padded, doc_lengths=lengths, impl=impl)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("impl", ["native", "jax"])
def test_empty_documents_score_minus_inf_with_zero_gradient(impl):
    q, docs, _, _, _ = _data((1, 4, 8, 3, 5), 2, False)
    lengths = np.array([0, 5, 2], np.int32)
    s = maxsim(q, docs, doc_lengths=lengths, impl=impl)
    assert np.asarray(s)[0, 0] == -np.inf and np.isfinite(np.asarray(s)[0, 1:]).all()
    # all query tokens masked: empty sum = 0 even for the empty document
    s0 = maxsim(q, docs, doc_lengths=lengths, query_mask=np.zeros((1, 4), bool), impl=impl)
    np.testing.assert_array_equal(np.asarray(s0), 0.0)
    g = jax.grad(lambda d: maxsim(q, d, doc_lengths=lengths, impl=impl)[0, 1:].sum())(docs)
    np.testing.assert_array_equal(np.asarray(g)[0], 0.0)


@pytest.mark.parametrize("impl", ["native", "jax"])
def test_no_documents(impl):
    out = maxsim(jnp.ones((3, 2, 4)), jnp.ones((0, 5, 4)), impl=impl)
    assert out.shape == (3, 0)


def _naive(q, docs, lengths):
    sim = jnp.einsum("bid,njd->bnij", q, docs)
    valid = jnp.arange(docs.shape[1])[None, :] < lengths[:, None]
    return jnp.max(jnp.where(valid[None, :, None, :], sim, -jnp.inf), -1).sum(-1)


@pytest.mark.parametrize("impl", ["native", "jax"])
def test_gradients(impl):
    require_native()
    q, docs, _, _, _ = _data((2, 5, 6, 4, 7), 11, False)
    lengths = np.array([7, 3, 1, 6], np.int32)

    def f(q, docs):
        return maxsim(q, docs, doc_lengths=lengths, impl=impl)

    # numerical differentiation (random data: no near-ties of the max)
    check_grads(f, (q, docs), order=1, modes=["rev"], atol=2e-2, rtol=2e-2, eps=1e-3)
    # against plain autodiff of the naive einsum formula
    w = jnp.asarray(np.random.default_rng(0).standard_normal((2, 4)), jnp.float32)
    g_ours = jax.grad(lambda q, d: jnp.sum(w * f(q, d)), argnums=(0, 1))(q, docs)
    g_ref = jax.grad(lambda q, d: jnp.sum(w * _naive(q, d, lengths)), argnums=(0, 1))(q, docs)
    for a, b in zip(g_ours, g_ref, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)


def test_native_and_jax_gradients_agree_with_masks():
    require_native()
    q, docs, lengths, dm, qm = _data((2, 9, 10, 6, 8), 5, True)
    lengths = np.maximum(lengths, 1)
    dm[:, 0] = True

    def loss(impl):
        return jax.grad(
            lambda q, d: maxsim(
                q, d, doc_lengths=lengths, doc_mask=dm, query_mask=qm, impl=impl
            ).sum(),
            argnums=(0, 1),
        )(q, docs)

    for a, b in zip(loss("native"), loss("jax"), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("impl", ["native", "jax"])
def test_vmap_over_queries_docs_and_masks(impl):
    q, docs, lengths, _, qm = _data((4, 6, 8, 7, 5), 9, True)
    direct = maxsim(q, docs, doc_lengths=lengths, query_mask=qm, impl=impl)
    f = lambda q, d, ln, m: maxsim(q, d, doc_lengths=ln, query_mask=m, impl=impl)  # noqa: E731
    # queries batched, documents shared (folded into one kernel call)
    v = jax.jit(jax.vmap(f, in_axes=(0, None, None, 0)))(q, docs, lengths, qm)
    assert_scores_close(v, direct, rtol=1e-6)
    # query mask batched only
    v2 = jax.vmap(f, in_axes=(None, None, None, 0))(q[0], docs, lengths, qm)
    want2 = np.stack([np.asarray(f(q[0], docs, lengths, m)) for m in qm])
    assert_scores_close(v2, want2, rtol=1e-6)
    # documents batched (a different corpus per example), nested vmap
    docs_b = np.stack([docs, docs[::-1], 2 * docs, docs])
    len_b = np.stack([lengths, lengths[::-1], lengths, lengths])
    v3 = jax.vmap(f, in_axes=(0, 0, 0, 0))(q, docs_b, len_b, qm)
    want3 = np.stack([np.asarray(f(q[i], docs_b[i], len_b[i], qm[i])) for i in range(4)])
    assert_scores_close(v3, want3, rtol=1e-6)
    v4 = jax.vmap(jax.vmap(f, in_axes=(0, None, None, None)), in_axes=(0, None, None, None))(
        q.reshape(2, 2, 6, 8), docs, lengths, qm[0]
    )
    want4 = np.asarray(f(q, docs, lengths, qm[0])).reshape(2, 2, 7)
    assert_scores_close(v4, want4, rtol=1e-6)


def test_batch_axes_and_broadcast_query_mask():
    q, docs, lengths, _, _ = _data((6, 4, 8, 3, 5), 4, False)
    qm = np.array([True, True, False, True])
    out = maxsim(q.reshape(2, 3, 4, 8), docs, doc_lengths=lengths, query_mask=qm)
    want = maxsim_reference(q, docs, lengths, None, np.broadcast_to(qm, (6, 4)))
    assert_scores_close(np.asarray(out).reshape(6, 3), want, rtol=1e-5)


def test_two_python_threads_call_the_same_op():
    require_native()
    q, docs, lengths, _, _ = _data((8, 32, 64, 400, 20), 12, False)
    f = jax.jit(lambda q: maxsim(q, docs, doc_lengths=lengths, impl="native"))
    want = np.asarray(f(q))
    results, errors = [], []

    def worker(i):
        try:
            for _ in range(5):
                results.append(np.asarray(f(q)))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 10
    for r in results:
        np.testing.assert_array_equal(r, want)


def test_impl_switch_selects_the_path():
    require_native()
    q, docs = jnp.ones((1, 2, 4)), jnp.ones((3, 2, 4))
    native_hlo = jax.jit(lambda q, d: maxsim(q, d)).lower(q, docs).as_text()
    assert "jaxrank_maxsim" in native_hlo
    with config.native_mode("jax"):
        hlo = jax.jit(lambda q, d: maxsim(q, d)).lower(q, docs).as_text()
    assert "jaxrank_maxsim" not in hlo
    hlo2 = jax.jit(lambda q, d: maxsim(q, d, impl="jax")).lower(q, docs).as_text()
    assert "jaxrank_maxsim" not in hlo2


def test_bad_inputs_raise_clear_errors():
    q, docs = jnp.ones((2, 3, 8)), jnp.ones((4, 5, 8))
    with pytest.raises(ValueError, match="D mismatch"):
        maxsim(q, jnp.ones((4, 5, 7)))
    with pytest.raises(TypeError, match="q must be floating"):
        maxsim(jnp.ones((2, 3, 8), jnp.int32), docs)
    with pytest.raises(ValueError, match="docs must have shape"):
        maxsim(q, jnp.ones((5, 8)))
    with pytest.raises(ValueError, match=r"doc_lengths must lie in \[0, Ld=5\]"):
        maxsim(q, docs, doc_lengths=np.array([1, -1, 2, 3]))
    with pytest.raises(ValueError, match=r"doc_lengths must lie in \[0, Ld=5\]"):
        maxsim(q, docs, doc_lengths=np.array([1, 6, 2, 3]))
    with pytest.raises(ValueError, match="doc_lengths must have shape"):
        maxsim(q, docs, doc_lengths=np.array([1, 2]))
    with pytest.raises(TypeError, match="doc_lengths must be integer"):
        maxsim(q, docs, doc_lengths=np.array([1.0, 2, 3, 4]))
    with pytest.raises(ValueError, match="doc_mask must have shape"):
        maxsim(q, docs, doc_mask=np.ones((4, 4), bool))
    with pytest.raises(TypeError, match="query_mask must be boolean"):
        maxsim(q, docs, query_mask=np.ones((2, 3)))
    with pytest.raises(ValueError, match="impl="):
        maxsim(q, docs, impl="fast")
    # errors are raised at trace time under jit
    with pytest.raises(ValueError, match="D mismatch"):
        jax.jit(lambda q: maxsim(q, jnp.ones((4, 5, 7)))).lower(q)


def test_out_of_range_traced_lengths_error_at_run_time_in_native():
    require_native()
    q, docs = jnp.ones((2, 3, 8)), jnp.ones((4, 5, 8))
    f = jax.jit(lambda ln: maxsim(q, docs, doc_lengths=ln, impl="native"))
    with pytest.raises(Exception, match=r"doc_lengths\[1\] = 9 outside \[0, Ld=5\]"):
        jax.block_until_ready(f(jnp.array([1, 9, 2, 3])))
    # the pure-JAX path clamps under jit (documented)
    g = jax.jit(lambda ln: maxsim(q, docs, doc_lengths=ln, impl="jax"))
    np.testing.assert_array_equal(np.asarray(g(jnp.array([1, 9, 2, 3]))), 3 * 8.0)

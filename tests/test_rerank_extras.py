"""MMR / DPP diversification, Ward token pooling and MaxSim explanations.

References: brute-force greedy definitions written here from the papers' formulas
(MMR: Carbonell & Goldstein 1998; DPP greedy MAP: argmax of log det L_S, Chen et al.
2018) and SciPy's Ward linkage + fcluster(maxclust) (the recipe of PyLate's
pool_embeddings_hierarchical).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _native_helpers import require_native
from hypothesis import given
from hypothesis import strategies as st
from scipy.cluster import hierarchy

from jaxrank.rerank import dpp, highlight, maxsim_alignment, mmr, pool_tokens, ward_clusters


def _unit(x):
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def mmr_reference(rel, emb, k, lam):
    s = _unit(emb) @ _unit(emb).T
    chosen = []
    for _ in range(k):
        best, best_score = None, -np.inf
        for i in range(len(rel)):
            if i in chosen:
                continue
            red = max(s[i, j] for j in chosen) if chosen else 0.0
            score = lam * rel[i] - (1 - lam) * red
            if score > best_score:
                best, best_score = i, score
        chosen.append(best)
    return chosen


def dpp_reference(rel, emb, k, theta):
    s = _unit(emb) @ _unit(emb).T
    q = np.exp(theta / (2 * (1 - theta)) * rel)
    big_l = q[:, None] * s * q[None, :]
    chosen = []
    for _ in range(k):
        best, best_val = None, -np.inf
        for i in range(len(rel)):
            if i in chosen:
                continue
            sub = [*chosen, i]
            sign, logdet = np.linalg.slogdet(big_l[np.ix_(sub, sub)])
            val = logdet if sign > 0 else -np.inf
            if val > best_val:
                best, best_val = i, val
        chosen.append(best)
    return chosen


@pytest.mark.parametrize(("seed", "jit"), [(0, False), (0, True), (1, True), (2, True)])
def test_mmr_and_dpp_equal_brute_force(seed, jit):
    rng = np.random.default_rng(seed)
    rel, emb = rng.random(25), rng.normal(size=(25, 6))
    ctx = jax.disable_jit() if not jit else _null()
    with ctx:
        got_mmr = mmr(rel, emb, k=5, lambda_=0.6)
        got_dpp = dpp(rel, emb, k=5, theta=0.7)
    assert got_mmr[0].tolist() == mmr_reference(rel, emb, 5, 0.6)
    assert got_dpp[0].tolist() == dpp_reference(rel, emb, 5, 0.7)
    assert bool(got_mmr[1].all()) and bool(got_dpp[1].all())


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def test_mmr_lambda_one_is_relevance_order():
    rng = np.random.default_rng(1)
    rel, emb = rng.random(30), rng.normal(size=(30, 4))
    idx, _ = mmr(rel, emb, k=10, lambda_=1.0)
    assert idx.tolist() == np.argsort(-rel)[:10].tolist()


@given(pad=st.sampled_from([1, 7]), seed=st.integers(0, 50))
def test_padding_never_changes_the_selection(pad, seed):
    rng = np.random.default_rng(seed)
    rel, emb = rng.random(12).astype(np.float32), rng.normal(size=(12, 5)).astype(np.float32)
    prel = np.concatenate([rel, np.full(pad, 100.0, np.float32)])  # masked, tempting
    pemb = np.concatenate([emb, rng.normal(size=(pad, 5)).astype(np.float32)])
    where = np.arange(12 + pad) < 12
    for fn, kw in ((mmr, {"lambda_": 0.5}), (dpp, {"theta": 0.6})):
        a = fn(rel, emb, k=6, **kw)
        b = fn(prel, pemb, k=6, where=where, **kw)
        # 5-dim embeddings: the DPP kernel has rank 5, so its 6th pick is invalid
        assert a[1].tolist() == b[1].tolist()
        assert (
            np.asarray(a[0])[np.asarray(a[1])].tolist()
            == np.asarray(b[0])[np.asarray(b[1])].tolist()
        )
        assert int(b[1].sum()) == (6 if fn is mmr else 5)


def test_batched_queries_and_too_few_candidates():
    rng = np.random.default_rng(2)
    rel, emb = rng.random((3, 8)), rng.normal(size=(3, 8, 4))
    where = np.ones((3, 8), bool)
    where[1, 2:] = False  # only 2 real candidates for query 1
    idx, valid = mmr(rel, emb, k=4, where=where)
    assert idx.shape == (3, 4) and valid[1].tolist() == [True, True, False, False]
    for b in (0, 2):
        assert idx[b].tolist() == mmr_reference(rel[b], emb[b], 4, 0.5)


def test_dpp_stops_when_the_kernel_becomes_singular():
    emb = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [0.0, 3.0]])  # rank 2
    idx, valid = dpp(np.zeros(4), emb, k=4, theta=0.0)
    assert valid.tolist() == [True, True, False, False]
    assert sorted(idx[:2].tolist()) in ([0, 2], [0, 3], [1, 2], [1, 3])


def test_diversity_errors():
    with pytest.raises(ValueError, match="k must be in"):
        mmr(np.zeros(3), np.zeros((3, 2)), k=4)
    with pytest.raises(ValueError, match="embeddings must be"):
        dpp(np.zeros(3), np.zeros((4, 2)), k=2)


def _partition(labels):
    labels = np.asarray(labels)
    return {frozenset(np.flatnonzero(labels == c).tolist()) for c in np.unique(labels) if c >= 0}


@pytest.mark.parametrize("seed", range(8))
def test_ward_partition_equals_scipy(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(4, 40))
    emb = _unit(rng.normal(size=(n, 16)))
    k = max(n // int(rng.integers(1, 4)), 1)
    feats = 1 - emb @ emb.T
    ref = hierarchy.fcluster(hierarchy.linkage(feats, method="ward"), t=k, criterion="maxclust")
    padded = np.zeros((40, 40), np.float32)  # one compiled shape; padding rows masked
    padded[:n, :n] = feats
    got = ward_clusters(jnp.asarray(padded), jnp.arange(40) < n, jnp.int32(k))
    assert _partition(got) == _partition(ref)


@pytest.mark.parametrize("seed", range(6))
def test_native_nnchain_ward_equals_scipy(seed):
    """The native NN-chain (ffi/dense.cc) against SciPy's linkage + fcluster, on the
    squared distances of the same features; n up to 300 tokens (the PyLate case);
    seed 5 duplicates tokens (exact ties in the chain); padded (masked) rows get -1."""
    require_native()
    from jaxrank.rerank._pooling import _ward_ffi

    rng = np.random.default_rng(seed)
    n = [7, 33, 120, 300, 64, 50][seed]
    emb = _unit(rng.normal(size=(n, 32))).astype(np.float32)
    if seed == 5:
        emb[25:] = emb[:25]
    k = max(n // [2, 3, 2, 2, 4, 2][seed], 1)
    feats = (1 - emb @ emb.T).astype(np.float32)
    ref = hierarchy.fcluster(hierarchy.linkage(feats, method="ward"), t=k, criterion="maxclust")
    f64 = feats.astype(np.float64)
    sq = (f64 * f64).sum(1)
    d2 = np.zeros((1, n + 3, n + 3), np.float32)
    d2[0, :n, :n] = sq[:, None] + sq[None, :] - 2 * f64 @ f64.T
    valid = np.arange(n + 3)[None] < n
    got = np.asarray(jax.jit(_ward_ffi)(d2, valid, np.array([k])))[0]
    assert (got[n:] == -1).all()
    assert _partition(got[:n]) == _partition(ref)
    assert all(got[i] == min(np.flatnonzero(got == got[i])) for i in range(n))


@pytest.mark.parametrize("impl", ["native", "jax"])
def test_pool_tokens_equals_pylate_recipe(impl):
    rng = np.random.default_rng(3)
    docs = _unit(rng.normal(size=(3, 20, 8))).astype(np.float32)
    lengths = np.array([20, 11, 2])
    if impl == "native":
        require_native()
    pooled, mask = pool_tokens(
        docs, doc_lengths=lengths, pool_factor=3, protected_tokens=1, impl=impl
    )
    for b, n in enumerate(lengths):
        body = docs[b, 1:n]
        k = max(len(body) // 3, 1)
        if len(body) > 1:
            lab = hierarchy.fcluster(hierarchy.linkage(1 - body @ body.T, method="ward"), t=k,
                                     criterion="maxclust")  # fmt: skip
            want = [body[lab == c].mean(0) for c in np.unique(lab)]
        else:
            want = [body[0]]
        want.append(docs[b, 0])
        got = np.asarray(pooled[b])[np.asarray(mask[b])]
        assert len(got) == len(want)
        np.testing.assert_allclose(
            np.array(sorted(map(tuple, got))), np.array(sorted(map(tuple, want))), atol=1e-5
        )


def test_pool_factor_one_keeps_every_token():
    docs = _unit(np.random.default_rng(4).normal(size=(1, 9, 4))).astype(np.float32)
    pooled, mask = pool_tokens(docs, pool_factor=1, protected_tokens=0)
    assert int(mask.sum()) == 9
    got = sorted(map(tuple, np.asarray(pooled[0])))
    np.testing.assert_allclose(np.array(got), np.array(sorted(map(tuple, docs[0]))), atol=1e-6)


def test_pool_tokens_errors():
    with pytest.raises(ValueError, match="docs must be"):
        pool_tokens(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="pool_factor"):
        pool_tokens(np.zeros((1, 4, 2)), pool_factor=0)


def test_alignment_and_highlight():
    q = jnp.array([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]])
    d = jnp.array([[0.0, 1.0], [1.0, 0.0], [0.0, 0.0]])
    a = maxsim_alignment(q, d, query_mask=jnp.array([True, True, False]),
                         doc_mask=jnp.array([True, True, False]))  # fmt: skip
    assert a.doc_token.tolist() == [1, 0, -1]
    assert a.similarity.tolist() == [1.0, 1.0, 0.0] and float(a.score) == 2.0
    text = highlight(["x", "y", "z"], a, query_tokens=["p", "q", "r"])
    assert text == "[x]^q [y]^p z"
    assert highlight(["x", "y", "z"], a, top=1) in ("x [y] z", "[x] y z")


def test_alignment_score_equals_maxsim():
    from jaxrank.rerank import maxsim

    rng = np.random.default_rng(5)
    q = rng.normal(size=(1, 6, 16)).astype(np.float32)
    docs = rng.normal(size=(4, 9, 16)).astype(np.float32)
    want = np.asarray(maxsim(q, docs))[0]
    got = [float(maxsim_alignment(q[0], docs[i]).score) for i in range(4)]
    np.testing.assert_allclose(got, want, rtol=1e-5)

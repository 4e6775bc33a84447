"""Diversification of a candidate list: MMR and DPP, jit-compiled.

Both pick ``k`` of ``n`` candidates greedily, trading relevance against redundancy,
and act on the last axes (``relevance [..., n]``, ``embeddings [..., n, d]``), so a
batch of queries is one call. Candidates with ``where=False`` are never picked.

* :func:`mmr` -- Maximal Marginal Relevance (Carbonell & Goldstein, 1998):

  .. math:: i_t = \\arg\\max_{i \\notin S} \\; \\lambda\\, r_i - (1 - \\lambda)
            \\max_{j \\in S} \\mathrm{sim}(i, j)

  with cosine similarity of the embeddings. ``O(k n d)``.

* :func:`dpp` -- greedy MAP inference of a determinantal point process with kernel
  ``L = diag(q) S diag(q)``, ``S`` the cosine-similarity kernel and quality
  ``q_i = exp(alpha * r_i)``, ``alpha = theta / (2 (1 - theta))`` (Chen, Zhang & Zhou,
  2018, "Fast greedy MAP inference for DPP"), by their incremental Cholesky update:
  each step adds the item with the largest gain in ``log det L_S``. ``O(k n (k + d))``,
  kernel rows computed on the fly (``L`` is never built). Selection stops early --
  the remaining outputs are marked invalid -- when no item adds a positive gain
  (``L_S`` would become singular).

Example:
    >>> import jax.numpy as jnp
    >>> from jaxrank.rerank import mmr, dpp
    >>> emb = jnp.array([[1.0, 0.0], [0.99, 0.14], [0.0, 1.0]])  # 0 and 1 near-duplicates
    >>> rel = jnp.array([0.9, 0.85, 0.5])
    >>> mmr(rel, emb, k=2, lambda_=0.5)[0].tolist()   # skips the near-duplicate
    [0, 2]
    >>> dpp(rel, emb, k=2, theta=0.5)[0].tolist()
    [0, 2]
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

__all__ = ["dpp", "mmr"]


def _check(relevance, embeddings, k, where):
    relevance = jnp.asarray(relevance)
    embeddings = jnp.asarray(embeddings)
    if embeddings.ndim != relevance.ndim + 1 or embeddings.shape[:-1] != relevance.shape:
        raise ValueError(
            f"embeddings must be [..., n, d] matching relevance [..., n]; got "
            f"embeddings {embeddings.shape} and relevance {relevance.shape}"
        )
    n = relevance.shape[-1]
    if not 0 < k <= n:
        raise ValueError(f"k must be in [1, {n}] (the number of candidates), got {k}")
    if where is None:
        where = jnp.ones(relevance.shape, bool)
    else:
        where = jnp.asarray(where)
        if where.dtype != jnp.bool_ or where.shape != relevance.shape:
            raise ValueError(f"where must be a bool array of shape {relevance.shape}")
    unit = embeddings.astype(jnp.float32)
    unit = unit / jnp.maximum(jnp.linalg.norm(unit, axis=-1, keepdims=True), 1e-12)
    return relevance.astype(jnp.float32), unit, where


@partial(jax.jit, static_argnames=("k",))
def mmr(relevance, embeddings, *, k: int, lambda_: float = 0.5, where=None):
    """Maximal Marginal Relevance selection.

    Args:
      relevance: ``[..., n]`` relevance of each candidate to the query.
      embeddings: ``[..., n, d]`` candidate embeddings (cosine similarity is used;
        zero vectors have similarity 0 to everything).
      k: number to select (static).
      lambda_: weight of relevance; ``1`` ranks by relevance, ``0`` by novelty only.
      where: optional ``[..., n]`` bool mask of real candidates.

    Returns:
      ``(indices [..., k] int32, valid [..., k] bool)`` in selection order; ``valid``
      is False once fewer than ``k`` real candidates remain.
    """
    rel, unit, where = _check(relevance, embeddings, k, where)
    return _batched(_mmr_one, rel, unit, where, k=k, param=lambda_)


def _mmr_one(rel, unit, where, k, param):
    n = rel.shape[0]
    neg = jnp.float32(-jnp.inf)

    def step(t, state):
        max_sim, taken, idx, valid = state
        score = param * rel - (1.0 - param) * jnp.where(t > 0, max_sim, 0.0)
        score = jnp.where(where & ~taken, score, neg)
        i = jnp.argmax(score)
        ok = score[i] > neg
        sims = unit @ unit[i]
        max_sim = jnp.where(ok, jnp.maximum(max_sim, sims), max_sim)
        taken = taken.at[i].set(taken[i] | ok)
        return max_sim, taken, idx.at[t].set(i), valid.at[t].set(ok)

    init = (
        jnp.full((n,), -jnp.inf, jnp.float32),
        jnp.zeros((n,), bool),
        jnp.zeros((k,), jnp.int32),
        jnp.zeros((k,), bool),
    )
    _, _, idx, valid = jax.lax.fori_loop(0, k, step, init)
    return idx, valid


@partial(jax.jit, static_argnames=("k",))
def dpp(relevance, embeddings, *, k: int, theta: float = 0.5, eps: float = 1e-5, where=None):
    """Greedy DPP MAP selection (fast incremental Cholesky, Chen et al. 2018).

    Args:
      relevance: ``[..., n]`` relevance scores ``r``.
      embeddings: ``[..., n, d]`` candidate embeddings; the similarity kernel is the
        cosine Gram matrix, positive semi-definite by construction.
      k: number to select (static).
      theta: relevance/diversity trade-off in ``[0, 1)``; quality is
        ``exp(theta / (2 (1 - theta)) * r)``, so ``theta = 0`` ignores relevance.
      eps: stop when the best marginal gain ``d_i^2`` falls below ``eps`` times the
        largest ``L_ii`` (relative, so float32 cancellation noise in an exhausted
        kernel is never mistaken for a gain).
      where: optional ``[..., n]`` bool mask of real candidates. Zero embedding
        vectors have ``L_ii = 0`` and are never selected.

    Returns:
      ``(indices [..., k] int32, valid [..., k] bool)`` in selection order.
    """
    rel, unit, where = _check(relevance, embeddings, k, where)
    return _batched(_dpp_one, rel, unit, where, k=k, param=(theta, eps))


def _dpp_one(rel, unit, where, k, param):
    theta, eps = param
    n = rel.shape[0]
    alpha = theta / (2.0 * (1.0 - theta))
    # quality relative to the best candidate: the selection is invariant to a common
    # scale of q, and this keeps exp() finite.
    q = jnp.exp(alpha * (rel - jnp.max(jnp.where(where, rel, -jnp.inf))))
    q = jnp.where(where, q, 0.0)
    d2 = q * q  # L_ii, the unit embeddings have S_ii = 1 (0 for zero vectors)
    d2 = d2 * (jnp.sum(unit * unit, axis=-1) > 0.5)

    tol = eps * jnp.max(d2)

    def step(t, state):
        c, d2, taken, idx, valid = state
        gain = jnp.where(where & ~taken, d2, -jnp.inf)
        j = jnp.argmax(gain)
        ok = gain[j] > tol
        dj = jnp.sqrt(jnp.maximum(gain[j], tol))
        l_j = q[j] * q * (unit @ unit[j])  # row j of L
        e = (l_j - c.T @ c[:, j]) / dj  # c is [k, n]; rows beyond t are zero
        c = c.at[t].set(jnp.where(ok, e, 0.0))
        d2 = jnp.where(ok, d2 - e * e, d2)
        taken = taken.at[j].set(taken[j] | ok)
        return c, d2, taken, idx.at[t].set(j), valid.at[t].set(ok)

    init = (
        jnp.zeros((k, n), jnp.float32),
        d2,
        jnp.zeros((n,), bool),
        jnp.zeros((k,), jnp.int32),
        jnp.zeros((k,), bool),
    )
    _, _, _, idx, valid = jax.lax.fori_loop(0, k, step, init)
    # once a step fails, every later one is invalid too (greedy MAP has stopped)
    valid = jnp.cumprod(valid.astype(jnp.int32)).astype(bool)
    return idx, valid


def _batched(fn, rel, unit, where, *, k, param):
    batch = rel.shape[:-1]
    flat = (
        rel.reshape(-1, rel.shape[-1]),
        unit.reshape(-1, *unit.shape[-2:]),
        where.reshape(-1, where.shape[-1]),
    )
    idx, valid = jax.vmap(lambda r, u, w: fn(r, u, w, k, param))(*flat)
    return idx.reshape(*batch, k), valid.reshape(*batch, k)

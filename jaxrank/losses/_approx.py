"""Approximate metric losses: ApproxNDCG and ApproxMRR (Qin et al., 2010).

Hard ranks are replaced by smooth ranks

.. math::
    \\hat r_i = 1 + \\sum_{j \\ne i,\\ \\text{valid}} \\sigma\\!\\left(\\frac{s_j - s_i}{T}\\right)

and the cutoff :math:`\\mathbb{1}[r_i \\le k]` by :math:`\\sigma((m - \\hat r_i)/T)` with
:math:`m` the midpoint of the k-th and (k+1)-th smallest smooth ranks (no gradient; 1
when the list has at most k valid items), as rax's ``approx_t12n``. The loss is the
negated metric; the ideal DCG uses hard ranks.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxrank.losses import _utils as u

Array = u.Array


def approx_ranks(scores, where=None, *, temperature: float = 1.0) -> Array:
    """Smooth 1-based ranks ``[..., n]`` (see the module docstring).

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxrank.losses import approx_ranks
      >>> approx_ranks(jnp.array([0.0, 0.0])).tolist()
      [1.5, 1.5]
    """
    scores, _, where, _ = u.check(scores, scores, where)
    return _approx_ranks(scores, where, temperature)


def _approx_ranks(s, w, temperature):
    n = s.shape[-1]
    pair = jax.nn.sigmoid((s[..., None, :] - s[..., :, None]) / temperature)
    keep = w[..., None, :] & ~jnp.eye(n, dtype=bool)
    return 1.0 + jnp.sum(jnp.where(keep, pair, 0.0), axis=-1)


def _approx_cutoff(ranks, w, k, temperature):
    if k is None:
        return jnp.ones_like(ranks)
    a = jnp.where(w, -ranks, -jnp.inf)
    order = u.hard_ranks(jnp.where(w, -ranks, 0.0), w)
    mid = jnp.sum(jnp.where(w & ((order == k) | (order == k + 1)), a, 0.0), -1, keepdims=True)
    mid = jax.lax.stop_gradient(mid / 2.0)
    n_valid = jnp.sum(w, axis=-1, keepdims=True)
    return jnp.where(n_valid <= k, 1.0, jax.nn.sigmoid((-ranks - mid) / temperature))


def approx_ndcg_loss(
    scores,
    labels,
    where=None,
    *,
    k: int | None = None,
    temperature: float = 1.0,
    weights=None,
    reduce_fn: u.ReduceFn = jnp.mean,
) -> Array:
    r"""ApproxNDCG loss: :math:`-\widehat{\operatorname{nDCG@k}}`, gains :math:`2^y - 1`.

    .. math::
        \ell = -\frac{1}{\operatorname{IDCG@k}} \sum_i
        \frac{w_i (2^{y_i} - 1)\, \hat c_i}{\log_2(1 + \hat r_i)}

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxrank.losses import approx_ndcg_loss
      >>> round(float(approx_ndcg_loss(jnp.array([-1.0, 1.0, 0.0]), jnp.array([0.0, 0.0, 1.0]))), 4)
      -0.6309
    """
    k = u.mu.check_k(k)
    scores, labels, where, weights = u.check(scores, labels, where, weights)
    from jaxrank.metrics import dcg

    ranks = _approx_ranks(scores, where, temperature)
    gains = jnp.where(where, u.exp2_gain(labels), 0.0)
    if weights is not None:
        gains = gains * weights
    cut = _approx_cutoff(ranks, where, k, temperature)
    value = jnp.sum(jnp.where(where, gains * cut * u.discount(ranks), 0.0), axis=-1)
    ideal = dcg(gains, labels, where, k=k, gain="exp2", weights=weights)
    ndcg = value / jnp.where(ideal > 0, ideal, 1.0)
    return u.reduce(-ndcg, jnp.any(where, axis=-1), reduce_fn)


def approx_mrr_loss(
    scores,
    labels,
    where=None,
    *,
    k: int | None = None,
    temperature: float = 1.0,
    reduce_fn: u.ReduceFn = jnp.mean,
) -> Array:
    r"""ApproxMRR loss: :math:`-\max_{i:\, y_i \ge 1} \hat c_i / \hat r_i`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxrank.losses import approx_mrr_loss
      >>> round(float(approx_mrr_loss(jnp.array([0.0, 0.0]), jnp.array([0.0, 1.0]))), 4)
      -0.6667
    """
    k = u.mu.check_k(k)
    scores, labels, where, _ = u.check(scores, labels, where)
    ranks = _approx_ranks(scores, where, temperature)
    cut = _approx_cutoff(ranks, where, k, temperature)
    rel = where & (labels >= 1)
    rr = jnp.max(jnp.where(rel, cut / ranks, 0.0), axis=-1)
    return u.reduce(-rr, jnp.any(where, axis=-1), reduce_fn)

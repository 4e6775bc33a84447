"""Lambda weights: per-pair weights ``[..., n, n]`` for the pairwise losses.

Pair ``(i, j)`` is weighted by how much swapping items ``i`` and ``j`` changes a
metric. Unlike rax, the weights never depend on padding: rax scales the DCG weights by
the padded list size and keeps label-difference weights on masked pairs; jaxrank scales
by the number of valid items (equal to rax on unpadded lists) and zeroes every pair with a
masked item. Ranks are the hard, stable ranks of the current scores (no gradient).

Every function has the signature ``fn(scores, labels, where=None, *, weights=None, ...)``;
bind options with :func:`functools.partial` and pass it as ``lambdaweight_fn``.
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxrank.losses import _utils as u

Array = u.Array


def _pairs_valid(where: Array) -> Array:
    return where[..., :, None] & where[..., None, :]


def labeldiff_lambdaweight(scores, labels, where=None, *, weights=None) -> Array:
    r"""Label difference :math:`|y_i - y_j|` (0 for pairs with a masked item).

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxrank.losses import labeldiff_lambdaweight
      >>> labeldiff_lambdaweight(jnp.zeros(2), jnp.array([2.0, 0.0])).tolist()
      [[0.0, 2.0], [2.0, 0.0]]
    """
    scores, labels, where, _ = u.check(scores, labels, where, weights)
    diff = jnp.abs(labels[..., :, None] - labels[..., None, :])
    return jnp.where(_pairs_valid(where), diff, 0.0)


def _gains(scores, labels, where, weights, topn, normalize):
    gains = jnp.where(where, u.exp2_gain(labels), 0.0)
    if weights is not None:
        gains = gains * weights
    if normalize:
        from jaxrank.metrics import dcg

        ideal = dcg(gains, labels, where, k=topn, gain="exp2", weights=weights)
        gains = gains / jnp.where(ideal > 0, ideal, 1.0)[..., None]
    return gains


def dcg_lambdaweight(
    scores,
    labels,
    where=None,
    *,
    weights=None,
    topn: int | None = None,
    normalize: bool = False,
) -> Array:
    r"""LambdaRank DCG weight: the DCG change of swapping items ``i`` and ``j``.

    .. math::
        \lambda_{ij} = n_\text{valid}\,|G_i - G_j|\,|D(r_i) - D(r_j)|,\qquad
        G = w\,(2^y - 1),\ D(r) = \frac{\mathbb{1}[r \le \text{topn}]}{\log_2(r + 1)}

    with ``normalize=True`` dividing the gains by the ideal DCG@topn (the NDCG weight,
    :func:`ndcg_lambdaweight`). :math:`n_\text{valid}` reproduces rax's scale on
    unpadded lists (rax multiplies by the padded size).

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxrank.losses import dcg_lambdaweight
      >>> w = dcg_lambdaweight(jnp.array([2.0, 1.0]), jnp.array([0.0, 1.0]))
      >>> round(float(w[0, 1]), 4)  # 2 * |0 - 1| * |1 - 1/log2(3)|
      0.7381
    """
    topn = u.mu.check_k(topn, "topn")
    scores, labels, where, weights = u.check(scores, labels, where, weights)
    ranks = u.hard_ranks(scores, where)
    gains = _gains(scores, labels, where, weights, topn, normalize)
    disc = u.discount(ranks)
    if topn is not None:
        disc = jnp.where(ranks <= topn, disc, 0.0)
    n_valid = jnp.sum(where, axis=-1).astype(scores.dtype)[..., None, None]
    out = (
        jnp.abs(gains[..., :, None] - gains[..., None, :])
        * jnp.abs(disc[..., :, None] - disc[..., None, :])
        * n_valid
    )
    return jnp.where(_pairs_valid(where), out, 0.0)


def ndcg_lambdaweight(
    scores, labels, where=None, *, weights=None, topn: int | None = None
) -> Array:
    """:func:`dcg_lambdaweight` with ``normalize=True`` (gains over the ideal DCG).

    Example (hand calculation: gains 0 and 2^2 - 1 = 3, ideal DCG 3; the DCG weight
    2 * 3 * (1 - 1/log2(3)) = 2.2144 divided by 3):
      >>> import jax.numpy as jnp
      >>> w = ndcg_lambdaweight(jnp.array([2.0, 1.0]), jnp.array([0.0, 2.0]))
      >>> round(float(w[0, 1]), 4)
      0.7381
    """
    return dcg_lambdaweight(scores, labels, where, weights=weights, topn=topn, normalize=True)


def dcg2_lambdaweight(
    scores,
    labels,
    where=None,
    *,
    weights=None,
    topn: int | None = None,
    normalize: bool = False,
) -> Array:
    r"""LambdaLoss NDCG-Loss2 weight (Wang et al., 2018), with the top-n variant of
    Jagerman et al. (2022).

    .. math::
        \lambda_{ij} = n_\text{valid}\,|G_i - G_j|\,\delta_{ij}\,\tau_{ij},\quad
        \delta_{ij} = \left|D(|r_i - r_j|) - D(|r_i - r_j| + 1)\right|,\quad
        \tau_{ij} = \begin{cases} \frac{1}{1 - D(\max(r_i, r_j))} & \max(r_i,r_j) > \text{topn}
        \\ 1 & \text{else} \end{cases}

    with :math:`D(r) = 1/\log_2(r+1)`, :math:`\delta_{ij} = 0` for :math:`r_i = r_j`, and
    gains as :func:`dcg_lambdaweight`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxrank.losses import dcg2_lambdaweight
      >>> w = dcg2_lambdaweight(jnp.array([2.0, 1.0]), jnp.array([0.0, 1.0]))
      >>> round(float(w[0, 1]), 4)  # 2 * 1 * |1 - 1/log2(3)|
      0.7381
    """
    topn = u.mu.check_k(topn, "topn")
    scores, labels, where, weights = u.check(scores, labels, where, weights)
    ranks = u.hard_ranks(scores, where)
    gains = _gains(scores, labels, where, weights, topn, normalize)
    gap = jnp.abs(ranks[..., :, None] - ranks[..., None, :])
    delta = jnp.abs(u.discount(gap) - u.discount(gap + 1.0))
    delta = jnp.where(gap != 0, delta, 0.0)
    if topn is not None:
        worst = jnp.maximum(ranks[..., :, None], ranks[..., None, :])
        delta = delta * jnp.where(worst > topn, 1.0 / (1.0 - u.discount(worst)), 1.0)
    n_valid = jnp.sum(where, axis=-1).astype(scores.dtype)[..., None, None]
    out = jnp.abs(gains[..., :, None] - gains[..., None, :]) * delta * n_valid
    return jnp.where(_pairs_valid(where), out, 0.0)


def precision_lambdaweight(scores, labels, where=None, *, weights=None, topn: int = 10) -> Array:
    r"""Precision@topn weight (TF-Ranking): pairs whose swap changes precision@topn.

    .. math::
        \lambda_{ij} = \left|\mathbb{1}[y_i \ge 1] - \mathbb{1}[y_j \ge 1]\right|
        \cdot \left|\mathbb{1}[r_i \le \text{topn}] - \mathbb{1}[r_j \le \text{topn}]\right|

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxrank.losses import precision_lambdaweight
      >>> w = precision_lambdaweight(jnp.array([2.0, 1.0]), jnp.array([0.0, 1.0]), topn=1)
      >>> w.tolist()
      [[0.0, 1.0], [1.0, 0.0]]
    """
    topn = u.mu.check_k(topn, "topn")
    scores, labels, where, _ = u.check(scores, labels, where, weights)
    ranks = u.hard_ranks(scores, where)
    rel = (labels >= 1).astype(scores.dtype)
    top = (ranks <= topn).astype(scores.dtype)
    out = jnp.abs(rel[..., :, None] - rel[..., None, :]) * jnp.abs(
        top[..., :, None] - top[..., None, :]
    )
    return jnp.where(_pairs_valid(where), out, 0.0)

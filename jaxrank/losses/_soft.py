r"""Losses built on :mod:`jaxrank.soft`: NeuralNDCG, soft-rank NDCG, soft Spearman.

* :func:`neural_ndcg_loss` (Pobrotyn & Białobrzeski, 2021): NDCG of the NeuralSort
  relaxed permutation matrix :math:`\hat P` (:func:`jaxrank.soft.neuralsort`, made
  doubly stochastic by Sinkhorn scaling), ``O(n^2)``;
* :func:`soft_rank_ndcg_loss`: NDCG with the permutahedron soft ranks of
  :func:`jaxrank.soft.soft_rank` in the discount, ``O(n log n)``;
* :func:`soft_spearman_loss`: :math:`1 - \rho` with the soft Spearman correlation of
  :func:`jaxrank.soft.soft_spearman` (Blondel et al., 2020).

All use gains :math:`2^y - 1` and an exact ideal DCG, act on the valid items only (so
padding changes neither the loss nor its gradient) and return ``-nDCG`` (or
:math:`1 - \rho`) per list, reduced with ``reduce_fn`` over lists with a valid item.

Example:
    >>> import jax.numpy as jnp
    >>> from jaxrank import losses
    >>> scores, labels = jnp.array([3.0, 1.0, 2.0]), jnp.array([2.0, 0.0, 1.0])
    >>> round(float(losses.soft_rank_ndcg_loss(scores, labels, regularization_strength=0.01)), 4)
    -1.0
    >>> round(float(losses.neural_ndcg_loss(scores, labels, temperature=0.01)), 4)
    -1.0
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxrank.losses import _utils as u
from jaxrank.soft import neuralsort, soft_rank, soft_spearman

Array = u.Array


def _ideal(labels, where, weights, k):
    from jaxrank.metrics import dcg

    gains = jnp.where(where, u.exp2_gain(labels), 0.0)
    if weights is not None:
        gains = gains * weights
    return gains, dcg(gains, labels, where, k=k, gain="exp2", weights=weights)


def _ndcg_loss(value, ideal, where, reduce_fn):
    ndcg = jnp.where(ideal > 0, value / jnp.where(ideal > 0, ideal, 1.0), 0.0)
    return u.reduce(-ndcg, jnp.any(where, axis=-1), reduce_fn)


def _sinkhorn_scale(p: Array, where: Array, iters: int) -> Array:
    """Alternately normalizes the rows (positions ``< m``) and the valid columns to 1."""
    m = jnp.sum(where, axis=-1, keepdims=True)
    rows = (jnp.arange(where.shape[-1]) < m)[..., :, None]
    block = rows & where[..., None, :]

    def norm(x, axis):
        total = jnp.sum(x, axis=axis, keepdims=True)
        return jnp.where(block, x / jnp.where(total > 0, total, 1.0), 0.0)

    def body(_, x):
        return norm(norm(x, -1), -2)

    return jax.lax.fori_loop(0, iters, body, p) if iters > 0 else p


def neural_ndcg_loss(
    scores,
    labels,
    where=None,
    *,
    k: int | None = None,
    temperature: float = 1.0,
    sinkhorn_iters: int = 50,
    weights=None,
    reduce_fn: u.ReduceFn = jnp.mean,
) -> Array:
    r"""NeuralNDCG loss (Pobrotyn & Białobrzeski, 2021): ``-nDCG@k`` of a relaxed sort.

    :math:`\hat P = \operatorname{Sinkhorn}(\operatorname{NeuralSort}_\tau(s))` is the
    ``[n, n]`` relaxed permutation matrix (row :math:`p` = sorted position :math:`p`,
    descending), doubly stochastic over the :math:`m` valid items. Then

    .. math::
        \ell = -\frac{1}{\operatorname{IDCG@k}} \sum_{p \le k}
        \frac{(\hat P g)_p}{\log_2(p + 1)}
        = -\frac{1}{\operatorname{IDCG@k}} \sum_i g_i \sum_{p \le k}
        \frac{\hat P_{p i}}{\log_2(p + 1)}

    with gains :math:`g_i = w_i (2^{y_i} - 1)`: the expected gain at each position, or
    equally (the form is bilinear) the expected discount of each item, the paper's
    NeuralNDCG\ :sup:`T`. As :math:`\tau \to 0` it tends to ``-nDCG@k``. Lists
    without a relevant item give 0. ``O(n^2)`` work and memory per list, plus
    ``sinkhorn_iters`` normalizations.

    Args:
      scores, labels, where: ``[..., n]`` scores, graded labels, optional bool mask.
      k: static cutoff (``None``: the whole list).
      temperature: NeuralSort temperature :math:`\tau > 0`.
      sinkhorn_iters: static number of Sinkhorn row/column normalizations (allRank uses
        up to 50; ``0`` keeps NeuralSort's row-stochastic matrix).
      weights: optional ``[..., n]`` per-item gain weights.
      reduce_fn: ``jnp.mean`` (default), ``jnp.sum`` or ``None`` (``[...]``).

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxrank.losses import neural_ndcg_loss
      >>> s, y = jnp.array([0.0, 1.0, 3.0, 2.0]), jnp.array([0.0, 0.0, 1.0, 2.0])
      >>> # -nDCG of the hard order: (1 + 3/log2 3) / (3 + 1/log2 3)
      >>> round(float(neural_ndcg_loss(s, y, temperature=1e-3)), 4)
      -0.7967
      >>> round(float(neural_ndcg_loss(s, y)), 4)
      -0.8193
    """
    k = u.mu.check_k(k)
    if not isinstance(sinkhorn_iters, int) or sinkhorn_iters < 0:
        raise ValueError(f"sinkhorn_iters must be an int >= 0, got {sinkhorn_iters!r}")
    scores, labels, where, weights = u.check(scores, labels, where, weights)
    gains, ideal = _ideal(labels, where, weights, k)
    n = scores.shape[-1]
    p = neuralsort(scores, temperature=temperature, where=where)
    p = _sinkhorn_scale(p, where, sinkhorn_iters)
    pos = jnp.arange(1, n + 1, dtype=scores.dtype)
    disc = u.discount(pos)
    if k is not None:
        disc = jnp.where(pos <= k, disc, 0.0)
    value = jnp.sum(jnp.einsum("...pi,...i->...p", p, gains) * disc, axis=-1)
    return _ndcg_loss(value, ideal, where, reduce_fn)


def soft_rank_ndcg_loss(
    scores,
    labels,
    where=None,
    *,
    k: int | None = None,
    regularization_strength: float = 1.0,
    regularization: str = "l2",
    relative_strength: bool = False,
    weights=None,
    reduce_fn: u.ReduceFn = jnp.mean,
) -> Array:
    r"""Soft-rank NDCG loss: ``-nDCG@k`` with permutahedron soft ranks.

    .. math::
        \ell = -\frac{1}{\operatorname{IDCG@k}} \sum_i
        \frac{g_i\, \operatorname{clip}(k + 1 - \tilde r_i, 0, 1)}{\log_2(1 + \tilde r_i)},
        \qquad \tilde r = \operatorname{soft\_rank}_\varepsilon(s) \ \text{(descending, 1 = best)}

    with gains :math:`g_i = w_i (2^{y_i} - 1)`. The piecewise-linear cutoff equals
    :math:`\mathbb 1[r_i \le k]` on hard ranks, so the loss tends to ``-nDCG@k`` as
    :math:`\varepsilon \to 0` (at :math:`\varepsilon = 0` it is exact, with zero
    gradient). Forward ``O(n log n)``, backward ``O(n)`` (:func:`jaxrank.soft.soft_rank`).

    Args:
      scores, labels, where: ``[..., n]`` scores, graded labels, optional bool mask.
      k: static cutoff (``None``: the whole list).
      regularization_strength, regularization, relative_strength: passed to
        :func:`jaxrank.soft.soft_rank` (``relative_strength=True`` scales
        :math:`\varepsilon` by the spread of each list's scores).
      weights: optional ``[..., n]`` per-item gain weights.
      reduce_fn: ``jnp.mean`` (default), ``jnp.sum`` or ``None`` (``[...]``).

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxrank.losses import soft_rank_ndcg_loss
      >>> s, y = jnp.array([0.0, 1.0, 3.0, 2.0]), jnp.array([0.0, 0.0, 1.0, 2.0])
      >>> # hard ranks: (1 + 3/log2 3) / (3 + 1/log2 3)
      >>> round(float(soft_rank_ndcg_loss(s, y, regularization_strength=0.01)), 4)
      -0.7967
      >>> round(float(soft_rank_ndcg_loss(s, y, regularization_strength=10.0)), 4)
      -0.6204
    """
    k = u.mu.check_k(k)
    scores, labels, where, weights = u.check(scores, labels, where, weights)
    gains, ideal = _ideal(labels, where, weights, k)
    r = soft_rank(
        scores,
        regularization=regularization,
        regularization_strength=regularization_strength,
        direction="descending",
        where=where,
        relative_strength=relative_strength,
    )
    r = jnp.where(where, r, 1.0)
    term = u.discount(r)
    if k is not None:
        term = term * jnp.clip(k + 1.0 - r, 0.0, 1.0)
    value = jnp.sum(jnp.where(where, gains * term, 0.0), axis=-1)
    return _ndcg_loss(value, ideal, where, reduce_fn)


def soft_spearman_loss(
    scores,
    labels,
    where=None,
    *,
    regularization_strength: float = 1.0,
    regularization: str = "l2",
    reduce_fn: u.ReduceFn = jnp.mean,
) -> Array:
    r"""Soft Spearman loss: :math:`1 - \rho(\tilde r(s), r(y))` (Blondel et al., 2020).

    .. math::
        \ell = 1 - \frac{\sum_i (\tilde r_i - \bar{\tilde r})(r^y_i - \bar r^y)}
        {\|\tilde r - \bar{\tilde r}\|\, \|r^y - \bar r^y\|}

    with :math:`\tilde r` the soft ranks of the scores (:func:`jaxrank.soft.soft_rank`)
    and :math:`r^y` the tie-averaged ranks of the labels, over the valid items. Lists
    where :math:`\rho` is undefined (fewer than two valid items, or all labels equal)
    give 0 and do not count in the mean; all-equal scores give :math:`\rho = 0` and a
    zero gradient.

    Args:
      scores, labels, where: ``[..., n]`` scores, labels, optional bool mask.
      regularization_strength, regularization: passed to :func:`jaxrank.soft.soft_rank`.
      reduce_fn: ``jnp.mean`` (default), ``jnp.sum`` or ``None`` (``[...]``).

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxrank.losses import soft_spearman_loss
      >>> s, y = jnp.array([0.1, 0.4, 0.3]), jnp.array([1.0, 3.0, 2.0])
      >>> round(float(soft_spearman_loss(s, y, regularization_strength=1e-3)), 4)
      0.0
      >>> round(float(soft_spearman_loss(-s, y, regularization_strength=1e-3)), 4)
      2.0
    """
    scores, labels, where, _ = u.check(scores, labels, where)
    rho = soft_spearman(
        scores,
        labels,
        regularization=regularization,
        regularization_strength=regularization_strength,
        where=where,
    )
    lo = jnp.min(jnp.where(where, labels, jnp.inf), axis=-1)
    hi = jnp.max(jnp.where(where, labels, -jnp.inf), axis=-1)
    defined = (jnp.sum(where, axis=-1) >= 2) & (hi > lo)
    return u.reduce(1.0 - rho, defined, reduce_fn)

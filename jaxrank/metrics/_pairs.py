"""Pairwise metrics: ordered-pair accuracy."""

from __future__ import annotations

import jax.numpy as jnp

from jaxrank.metrics import _utils as u

Array = u.Array


def ordered_pair_accuracy(
    scores,
    labels,
    where=None,
    *,
    retrieved=None,
    ties: u.Ties = "first",
    empty: u.Empty = "zero",
) -> Array:
    r"""Ordered-pair accuracy: the fraction of pairs with different labels ranked right.

    .. math::
        \operatorname{OPA} = \frac{\sum_{i,j} \mathbb{1}[y_i > y_j]\,
        \mathbb{1}[\operatorname{rank}_i < \operatorname{rank}_j]}
        {\sum_{i,j} \mathbb{1}[y_i > y_j]}

    over pairs of valid items. With ``ties="first"`` a pair with equal scores is ordered
    by index (as every other metric); with ``ties="average"`` it counts 1/2 (the
    expectation over random tie-breaking). rax counts tied pairs as wrong (0). Lists
    without a pair of different labels follow ``empty``. Work and memory are
    ``O(n^2)`` per list.

    Args:
      scores, labels, where: ``[..., n]`` scores, labels, optional bool validity mask.
      retrieved: optional ``[..., n]`` bool mask; only pairs of retrieved valid items count.
      ties: ``"first"`` or ``"average"``.
      empty: ``"zero"`` or ``"nan"`` for lists without a valid pair.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxrank.metrics import ordered_pair_accuracy
      >>> float(ordered_pair_accuracy(jnp.array([3.0, 1.0, 2.0]), jnp.array([2, 1, 0])))
      0.6666666865348816
    """
    scores, labels, where, (retrieved,) = u.check_metric_args(
        "ordered_pair_accuracy",
        scores,
        labels,
        where,
        ties=ties,
        empty=empty,
        masks={"retrieved": retrieved},
    )
    where = where & retrieved

    def one(s, y, w):
        n = s.shape[-1]
        pairs = (y[:, None] > y[None, :]) & w[:, None] & w[None, :]
        higher = s[:, None] > s[None, :]
        tied = s[:, None] == s[None, :]
        if ties == "first":
            idx = jnp.arange(n)
            right = (higher | (tied & (idx[:, None] < idx[None, :]))).astype(s.dtype)
        else:
            right = higher.astype(s.dtype) + 0.5 * tied.astype(s.dtype)
        total = jnp.sum(pairs.astype(s.dtype))
        return jnp.stack([jnp.sum(jnp.where(pairs, right, 0.0)), total])

    parts = u.per_list(one, scores, labels, where)
    total = parts[..., 1]
    return u.finish(parts[..., 0] / jnp.maximum(total, 1.0), total > 0, empty)

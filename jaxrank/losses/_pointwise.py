"""Pointwise losses: each item's score is fitted to its own label."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxrank.losses import _utils as u

Array = u.Array


def sigmoid_cross_entropy_loss(
    scores, labels, where=None, *, weights=None, reduce_fn: u.ReduceFn = jnp.mean
) -> Array:
    r"""Pointwise sigmoid cross-entropy with labels clipped to ``[0, 1]``.

    .. math::
        \ell_i = \max(s_i, 0) - s_i \min(\max(y_i, 0), 1) + \log(1 + e^{-|s_i|})

    Args:
      scores, labels: ``[..., n]``; where: optional ``[..., n]`` bool mask.
      weights: optional ``[..., n]`` per-item weights.
      reduce_fn: ``jnp.mean`` (over valid items), ``jnp.sum`` or ``None`` (``[..., n]``,
        0 at masked items).

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxrank.losses import sigmoid_cross_entropy_loss
      >>> round(float(sigmoid_cross_entropy_loss(jnp.array([0.0]), jnp.array([1.0]))), 4)
      0.6931
    """
    scores, labels, where, weights = u.check(scores, labels, where, weights)
    y = jnp.clip(labels, 0.0, 1.0)
    loss = jax.nn.relu(scores) - scores * y + jnp.log1p(jnp.exp(-jnp.abs(scores)))
    if weights is not None:
        loss = loss * weights
    return u.reduce(loss, where, reduce_fn)


def mse_loss(
    scores, labels, where=None, *, weights=None, reduce_fn: u.ReduceFn = jnp.mean
) -> Array:
    r"""Pointwise squared error :math:`\ell_i = (s_i - y_i)^2`. Arguments as
    :func:`sigmoid_cross_entropy_loss`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxrank.losses import mse_loss
      >>> float(mse_loss(jnp.array([1.0, 2.0]), jnp.array([0.0, 2.0])))
      0.5
    """
    scores, labels, where, weights = u.check(scores, labels, where, weights)
    loss = jnp.square(scores - labels)
    if weights is not None:
        loss = loss * weights
    return u.reduce(loss, where, reduce_fn)

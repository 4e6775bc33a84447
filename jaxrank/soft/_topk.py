"""Differentiable top-k membership by projection onto a permutahedron.

The indicator of the ``k`` largest items is the vertex of the permutahedron of
``w = (1, ..., 1, 0, ..., 0)`` (``k`` ones) that maximizes ``<x, .>``. Its l2
regularization

.. math::
    \\operatorname{topk}_\\varepsilon(x) = \\arg\\min_{\\mu \\in \\mathcal P(w)}
    \\tfrac12 \\|\\mu - x / \\varepsilon\\|^2

lies in ``[0, 1]^n``, sums to ``k`` and tends to the hard indicator as
``eps -> 0``; it costs one sort and one PAV pass (O(n log n)), with an O(n)
backward pass.

Example:
    >>> import jax.numpy as jnp
    >>> from jaxrank.soft import soft_topk
    >>> soft_topk(jnp.array([0.1, 3.0, 2.0, 0.5]), 2, regularization_strength=0.1)
    Array([0., 1., 1., 0.], dtype=float32)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from jaxrank.soft._common import (
    argsort_desc,
    check_positive_int,
    check_strength,
    check_x,
    invert_permutation,
    take,
)
from jaxrank.soft._isotonic import l2_block_means


def _topk_weights(valid, k, dtype):
    pos = jnp.arange(valid.shape[-1])
    return jnp.broadcast_to((pos < k).astype(dtype), valid.shape)


def _soft(x, valid, k, eps):
    m = jnp.sum(valid, axis=-1, dtype=jnp.int32)
    vpos = jnp.arange(x.shape[-1]) < m[..., None]
    theta = jnp.where(valid, x / eps, 0)
    perm = argsort_desc(theta, valid)
    s = take(theta, perm)
    w = _topk_weights(valid, k, x.dtype)
    ms, mw = l2_block_means(s, w, m)
    out = jnp.where(vpos, (s - ms) + mw, 0)
    return take(out, invert_permutation(perm))


def _hard(x, valid, k):
    perm = argsort_desc(x, valid)
    inv = invert_permutation(perm)
    return (valid & (inv < k)).astype(x.dtype)


def soft_topk(
    x: jax.Array,
    k: int,
    *,
    regularization_strength: float | jax.Array = 1.0,
    where: jax.Array | None = None,
) -> jax.Array:
    """Soft membership ``[..., n]`` of each item in the top ``k`` of its row.

    Args:
      x: scores ``[..., n]``.
      k: number of items selected (static, ``>= 1``); a row with ``m <= k`` valid
        items selects all of them.
      regularization_strength: ``eps >= 0`` (absolute, on the scale of ``x``);
        ``0`` returns the hard indicator with zero gradient.
      where: optional boolean mask; masked items get 0 and never change the others.

    Returns:
      Values in ``[0, 1]`` summing to ``min(k, m)`` per row.

    Example:
        >>> import jax.numpy as jnp
        >>> soft_topk(jnp.array([0.1, 0.3, 0.2]), 1, regularization_strength=1.0).tolist()
        [0.233, 0.433, 0.333]
    """
    fn = "soft_topk"
    x, valid = check_x(x, where, fn)
    k = check_positive_int(k, fn, "k")
    eps = check_strength(regularization_strength, fn, "regularization_strength")
    if isinstance(eps, float):
        if eps == 0:
            return lax.stop_gradient(_hard(x, valid, k))
        return _soft(x, valid, k, eps)
    eps = jnp.asarray(eps, x.dtype)
    eps = eps[..., None] if eps.ndim else eps
    safe = jnp.where(eps > 0, eps, 1.0)
    return jnp.where(eps > 0, _soft(x, valid, k, safe), lax.stop_gradient(_hard(x, valid, k)))


def hard_topk(x: jax.Array, k: int, *, where: jax.Array | None = None) -> jax.Array:
    """Hard top-``k`` indicator ``[..., n]`` (ties broken by index; masked items 0).

    Example:
        >>> import jax.numpy as jnp
        >>> hard_topk(jnp.array([0.1, 0.3, 0.2]), 2)
        Array([0., 1., 1.], dtype=float32)
    """
    fn = "hard_topk"
    x, valid = check_x(x, where, fn)
    k = check_positive_int(k, fn, "k")
    return lax.stop_gradient(_hard(x, valid, k))

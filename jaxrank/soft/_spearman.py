"""Soft Spearman rank correlation (Blondel et al. 2020, Sec. 6).

``soft_spearman(x, y)`` is the Pearson correlation between the soft ranks of the
predictions ``x`` (:func:`jaxrank.soft.soft_rank`) and the exact tie-averaged ranks
of the targets ``y``, over the valid items of each row. ``1 - soft_spearman`` is a
differentiable loss; with ``regularization_strength -> 0`` it equals Spearman's
rho (``scipy.stats.spearmanr``) for untied ``x``.

Example:
    >>> import jax.numpy as jnp
    >>> from jaxrank.soft import soft_spearman
    >>> soft_spearman(jnp.array([0.1, 0.4, 0.3]), jnp.array([1.0, 3.0, 2.0]),
    ...               regularization_strength=1e-3)
    Array(1., dtype=float32)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from jaxrank.soft._common import argsort_desc, check_x, invert_permutation, take
from jaxrank.soft._permutahedron import soft_rank


def tie_averaged_rank(y, valid):
    """Ascending ranks ``[..., n]`` of ``y [..., n]`` over the ``valid`` items: 1..m,
    ties sharing their average rank (SciPy's ``rankdata(method="average")``), 0 on
    masked items.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxrank.soft import tie_averaged_rank
      >>> y = jnp.array([2.0, 1.0, 2.0, 9.0])
      >>> tie_averaged_rank(y, jnp.array([True, True, True, False])).tolist()
      [2.5, 1.0, 2.5, 0.0]
    """
    perm = argsort_desc(-y, valid)
    s = take(jnp.where(valid, y, 0), perm)
    n = y.shape[-1]
    new_group = jnp.concatenate(
        [jnp.ones((*s.shape[:-1], 1), bool), s[..., 1:] != s[..., :-1]], axis=-1
    )
    gid = jnp.cumsum(new_group, axis=-1) - 1
    pos = jnp.broadcast_to(jnp.arange(1, n + 1, dtype=y.dtype), s.shape)
    flat_g = (gid + n * jnp.arange(gid.size // n).reshape((*gid.shape[:-1], 1))).reshape(-1)
    tot = jax.ops.segment_sum(pos.reshape(-1), flat_g, gid.size)
    cnt = jax.ops.segment_sum(jnp.ones(gid.size, y.dtype), flat_g, gid.size)
    avg = (tot / jnp.maximum(cnt, 1))[flat_g].reshape(s.shape)
    return jnp.where(valid, take(avg, invert_permutation(perm)), 0)


def soft_spearman(
    x: jax.Array,
    y: jax.Array,
    *,
    regularization: str = "l2",
    regularization_strength: float | jax.Array = 1.0,
    where: jax.Array | None = None,
) -> jax.Array:
    """Soft Spearman correlation ``[...]`` between predictions and targets ``[..., n]``.

    Rows with fewer than two valid items (or constant ranks) give 0.

    Example:
        >>> import jax.numpy as jnp
        >>> soft_spearman(jnp.array([0.1, 0.4, 0.3]), jnp.array([3.0, 1.0, 2.0]),
        ...               regularization_strength=1e-3)
        Array(-1., dtype=float32)
    """
    fn = "soft_spearman"
    x, valid = check_x(x, where, fn)
    y, _ = check_x(y, None, fn, name="y")
    if y.shape != x.shape:
        raise ValueError(f"{fn}: `y` shape {y.shape} must equal `x` shape {x.shape}")
    rx = soft_rank(
        x,
        regularization=regularization,
        regularization_strength=regularization_strength,
        where=valid,
    )
    ry = lax.stop_gradient(tie_averaged_rank(y, valid))
    m = jnp.maximum(jnp.sum(valid, -1, keepdims=True), 1).astype(x.dtype)
    cx = jnp.where(valid, rx - jnp.sum(rx, -1, keepdims=True) / m, 0)
    cy = jnp.where(valid, ry - jnp.sum(ry, -1, keepdims=True) / m, 0)
    num = jnp.sum(cx * cy, -1)
    den2 = jnp.sum(cx * cx, -1) * jnp.sum(cy * cy, -1)
    ok = den2 > 0
    return jnp.where(ok, num / jnp.sqrt(jnp.where(ok, den2, 1.0)), 0.0)

"""Soft ranks and sorts by entropic optimal transport (Cuturi, Teboul & Vert 2019).

The ``m`` valid values of a row (squashed to ``(0, 1)`` by a sigmoid of their
standardized values, which keeps the cost scale-free) are transported onto ``m``
sorted targets ``y_j = j / (m - 1)`` with uniform weights and cost
``(h(x_i) - y_j)^2``. The log-domain Sinkhorn iterations

.. math::
    f_i = -\\varepsilon \\operatorname{LSE}_j\\big((g_j - C_{ij}) / \\varepsilon + \\log b_j\\big),
    g_j = -\\varepsilon \\operatorname{LSE}_i\\big((f_i - C_{ij}) / \\varepsilon + \\log a_i\\big)

give the plan ``P``; then ``rank_i = m \\sum_j P_{ij} (j + 1)`` and
``sort_j = m \\sum_i P_{ij} x_i``. As ``epsilon -> 0`` (with enough iterations) ``m P``
becomes the hard permutation. O(T n^2) time, O(n^2) memory per row; gradients by
unrolling the iterations.

Example:
    >>> import jax.numpy as jnp
    >>> from jaxrank.soft import sinkhorn_rank
    >>> sinkhorn_rank(jnp.array([0.3, 0.1, 0.2]), epsilon=1e-3, num_iters=200).round(2)
    Array([3., 1., 2.], dtype=float32)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from jaxrank.soft._common import check_choice, check_positive_int, check_x

_DIRS = ("ascending", "descending")
_NEG = -1e30


def _check_eps(epsilon, fn):
    if isinstance(epsilon, (int, float)) and not epsilon > 0:
        raise ValueError(f"{fn}: `epsilon` must be > 0, got {epsilon!r}")


def sinkhorn_plan(x, valid, epsilon, num_iters):
    """Transport plan ``[..., n, n]`` (items x sorted ascending targets), mass 1/m each."""
    n = x.shape[-1]
    m = jnp.sum(valid, axis=-1, keepdims=True)
    mf = jnp.maximum(m, 1).astype(x.dtype)
    mean = jnp.sum(jnp.where(valid, x, 0), -1, keepdims=True) / mf
    var = jnp.sum(jnp.where(valid, (x - mean) ** 2, 0), -1, keepdims=True) / mf
    h = jax.nn.sigmoid((x - mean) / jnp.sqrt(var + 1e-12))
    h = jnp.where(valid, h, 0)
    j = jnp.arange(n, dtype=x.dtype)
    tvalid = jnp.arange(n) < m
    y = j / jnp.maximum(mf - 1, 1)
    cost = (h[..., :, None] - y[..., None, :]) ** 2
    log_a = jnp.where(valid, -jnp.log(mf), _NEG)
    log_b = jnp.where(tvalid, -jnp.log(mf), _NEG)

    def step(_, fg):
        f, g = fg
        f = -epsilon * jax.nn.logsumexp(
            (g[..., None, :] - cost) / epsilon + log_b[..., None, :], -1
        )
        g = -epsilon * jax.nn.logsumexp(
            (f[..., :, None] - cost) / epsilon + log_a[..., :, None], -2
        )
        return f, g

    f0 = jnp.zeros_like(x)
    f, g = lax.fori_loop(0, num_iters, step, (f0, f0))
    logp = (f[..., :, None] + g[..., None, :] - cost) / epsilon
    logp = logp + log_a[..., :, None] + log_b[..., None, :]
    both = valid[..., :, None] & tvalid[..., None, :]
    return jnp.where(both, jnp.exp(jnp.where(both, logp, 0)), 0), m


def _prepare(x, where, fn, epsilon, num_iters, direction):
    x, valid = check_x(x, where, fn)
    _check_eps(epsilon, fn)
    check_positive_int(num_iters, fn, "num_iters")
    if check_choice(direction, _DIRS, fn, "direction") == "descending":
        return -x, valid, -1.0
    return x, valid, 1.0


def sinkhorn_rank(
    x: jax.Array,
    *,
    epsilon: float | jax.Array = 1e-2,
    num_iters: int = 100,
    direction: str = "ascending",
    where: jax.Array | None = None,
) -> jax.Array:
    """Optimal-transport soft ranks ``[..., n]`` (1..m; 0 on masked items).

    Args:
      x: scores ``[..., n]``.
      epsilon: entropic regularization (on the squashed, scale-free cost).
      num_iters: Sinkhorn iterations (static).
      direction: ``"ascending"`` (rank 1 = smallest) or ``"descending"``.
      where: optional boolean mask; masked items are neither sources nor targets.

    Example:
        >>> import jax.numpy as jnp
        >>> sinkhorn_rank(jnp.array([0.3, 0.1, 0.2]), epsilon=1.0).tolist()
        [2.18, 1.82, 2.0]
    """
    x, valid, _ = _prepare(x, where, "sinkhorn_rank", epsilon, num_iters, direction)
    p, m = sinkhorn_plan(x, valid, epsilon, num_iters)
    j = jnp.arange(1, x.shape[-1] + 1, dtype=x.dtype)
    return jnp.where(valid, m * jnp.sum(p * j, axis=-1), 0)


def sinkhorn_sort(
    x: jax.Array,
    *,
    epsilon: float | jax.Array = 1e-2,
    num_iters: int = 100,
    direction: str = "ascending",
    where: jax.Array | None = None,
) -> jax.Array:
    """Optimal-transport soft sort ``[..., n]`` (first m entries; padding 0).

    Example:
        >>> import jax.numpy as jnp
        >>> sinkhorn_sort(jnp.array([0.3, 0.1, 0.2]), epsilon=1e-3, num_iters=200).round(2)
        Array([0.1, 0.2, 0.3], dtype=float32)
    """
    x, valid, sign = _prepare(x, where, "sinkhorn_sort", epsilon, num_iters, direction)
    p, m = sinkhorn_plan(x, valid, epsilon, num_iters)
    xv = jnp.where(valid, x, 0)
    out = m * jnp.sum(p * xv[..., :, None], axis=-2)
    return jnp.where(jnp.arange(x.shape[-1]) < m, sign * out, 0)

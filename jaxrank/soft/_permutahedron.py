"""Soft ranks and sorts by projection onto the permutahedron (Blondel et al. 2020).

The permutahedron ``P(w)`` is the convex hull of all permutations of a vector
``w``. The hard rank of ``x`` is the vertex of ``P(rho)``, ``rho = (n, ..., 1)``,
that maximizes ``<x, .>``; regularizing that linear program with ``eps * R`` gives a
soft rank that is differentiable and tends to the hard rank as ``eps -> 0``:

* l2:  ``r_eps(x) = argmin_{mu in P(rho)} 1/2 || mu - x / eps ||^2``
* kl:  ``r_eps(x) = exp(argmin_{mu in P(log rho)} KL-type)``

Both projections reduce to sorting ``x`` (O(n log n)) and one decreasing isotonic
regression (PAV, O(n)); the Jacobian is block-diagonal in sorted order, so the
backward pass is O(n) (see :mod:`jaxrank.soft._isotonic`). The values equal
google-research/fast-soft-sort's ``soft_rank`` / ``soft_sort`` (to 1e-12 in
float64), with the correct gradient for kl ``soft_sort``.

Example:
    >>> import jax.numpy as jnp
    >>> from jaxrank.soft import soft_rank, soft_sort
    >>> x = jnp.array([[5.0, 1.0, 2.0], [2.0, 1.0, 5.0]])
    >>> soft_rank(x, regularization_strength=1.0)
    Array([[3., 1., 2.],
           [2., 1., 3.]], dtype=float32)
    >>> soft_sort(x, regularization_strength=0.1)
    Array([[1., 2., 5.],
           [1., 2., 5.]], dtype=float32)
"""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp
from jax import lax

from jaxrank.soft._common import (
    argsort_desc,
    check_choice,
    check_strength,
    check_x,
    invert_permutation,
    take,
)
from jaxrank.soft._isotonic import kl_block_lse, l2_block_means

Regularization = Literal["l2", "kl"]
Direction = Literal["ascending", "descending"]

_REGS = ("l2", "kl")
_DIRS = ("ascending", "descending")


def _sorted_positions(valid):
    n = valid.shape[-1]
    m = jnp.sum(valid, axis=-1, dtype=jnp.int32)
    pos = jnp.arange(n, dtype=jnp.int32)
    return m, pos < m[..., None], (m[..., None] - pos)


def _effective_strength(strength, relative, x, valid, fn):
    """``eps`` as ``[..., 1]`` (or a Python float), scaled by the spread if relative."""
    strength = check_strength(strength, fn, "regularization_strength")
    if not relative:
        if isinstance(strength, float):
            return strength
        eps = jnp.asarray(strength, x.dtype)
        return eps[..., None] if eps.ndim else eps
    # Scale-free: eps = strength * std of the valid items of each row.
    m = jnp.sum(valid, axis=-1, keepdims=True)
    mean = jnp.sum(jnp.where(valid, x, 0), -1, keepdims=True) / jnp.maximum(m, 1)
    var = jnp.sum(jnp.where(valid, (x - mean) ** 2, 0), -1, keepdims=True) / jnp.maximum(m, 1)
    spread = jnp.sqrt(jnp.where(var > 0, var, 1.0))
    s = jnp.asarray(strength, x.dtype)
    s = s[..., None] if s.ndim else s
    return jnp.where(var > 0, s * spread, 0.0)


def _hard_rank(x, valid, sign):
    """Ordinal ranks 1..m (ties by index), 0 on invalid items."""
    perm = argsort_desc(-sign * x, valid)
    inv = invert_permutation(perm)
    return jnp.where(valid, inv + 1, 0).astype(x.dtype)


def _soft_rank(x, valid, eps, sign, reg):
    m, vpos, rho = _sorted_positions(valid)
    theta = jnp.where(valid, sign * x / eps, 0)
    perm = argsort_desc(theta, valid)
    s = take(theta, perm)
    rho = jnp.where(vpos, rho, 1).astype(x.dtype)
    if reg == "l2":
        # s - isotonic_l2(s - rho), with the large terms cancelled exactly.
        ms, mr = l2_block_means(s, rho, m)
        out = (s - ms) + mr
    else:
        ls, lr = kl_block_lse(s, jnp.log(rho), m)
        out = jnp.exp((s - ls) + lr)
    out = jnp.where(vpos, out, 0)
    return take(out, invert_permutation(perm))


def _soft_sort(x, valid, eps, sign, reg):
    m, vpos, rho = _sorted_positions(valid)
    z = jnp.where(valid, sign * x, 0)
    s = take(z, argsort_desc(z, valid))
    r = jnp.where(vpos, rho, 1).astype(x.dtype) / eps
    if reg == "l2":
        # r - isotonic_l2(r - s) = (r - mean_B(r)) + mean_B(s): exact on singletons.
        mr, ms = l2_block_means(r, s, m)
    else:
        # r - isotonic_kl(r, s) = (r - lse_B(r)) + lse_B(s).
        mr, ms = kl_block_lse(r, s, m)
    out = (r - mr) + ms
    return jnp.where(vpos, sign * out, 0)


def _hard_sort(x, valid, sign):
    _, vpos, _ = _sorted_positions(valid)
    z = jnp.where(valid, sign * x, 0)
    return jnp.where(vpos, sign * take(z, argsort_desc(z, valid)), 0)


def _dispatch(soft, hard, eps):
    """Soft result, or the hard one where ``eps == 0`` (also for traced ``eps``)."""
    if isinstance(eps, float):
        return hard() if eps == 0 else soft(eps)
    safe = jnp.where(eps > 0, eps, 1.0)
    return jnp.where(eps > 0, soft(safe), hard())


def soft_rank(
    x: jax.Array,
    *,
    regularization: Regularization = "l2",
    regularization_strength: float | jax.Array = 1.0,
    direction: Direction = "ascending",
    where: jax.Array | None = None,
    relative_strength: bool = False,
) -> jax.Array:
    r"""Soft ranks of ``x [..., n]`` along the last axis (1 = smallest for ascending).

    .. math::
        r_\varepsilon(x) = \arg\min_{\mu \in \mathcal{P}(\rho)}
        \tfrac12 \|\mu - \sigma x / \varepsilon\|^2, \quad \rho = (m, \ldots, 1)

    (``l2``; ``kl`` replaces the Euclidean projection by a KL one in log space and
    returns ``exp`` of it), with ``sigma = +1`` for ``"ascending"`` and ``-1`` for
    ``"descending"``; ``m`` is the number of valid items of the row. Tied values
    always get equal soft ranks (their average). Ranks sum to ``m (m + 1) / 2``.

    Args:
      x: scores ``[..., n]``; bf16 / fp16 / integer inputs are computed in float32.
      regularization: ``"l2"`` (default) or ``"kl"``.
      regularization_strength: ``eps >= 0`` (Python float or array broadcastable to
        ``x.shape[:-1]``). ``eps`` is an **absolute** scale on ``x``: with
        ``|x| ~ 1`` and ``n = 1000``, ``eps = 0.01`` is still far from hard ranks.
        ``0`` returns the exact hard (ordinal, ties by index) rank with zero
        gradient.
      direction: ``"ascending"`` (rank 1 = smallest) or ``"descending"``.
      where: optional boolean mask ``[..., n]``; invalid items never change the
        result of valid ones (ranks 1..m among the valid items) and get rank 0 and
        zero gradient.
      relative_strength: if True, ``eps = regularization_strength * std(x)`` over
        the valid items of each row (scale-free: ``soft_rank(c * x)`` is the same
        for every ``c > 0``); rows with zero spread get hard ranks.

    Returns:
      Soft ranks ``[..., n]`` (float32, or float64 for float64 inputs).

    Example:
        >>> import jax.numpy as jnp
        >>> soft_rank(jnp.array([0.3, 0.1, 0.2]), regularization_strength=0.01)
        Array([3., 1., 2.], dtype=float32)
        >>> soft_rank(jnp.array([0.3, 0.1, 0.2]), regularization_strength=1.0)
        Array([2.1, 1.9, 2. ], dtype=float32)
        >>> soft_rank(jnp.array([30.0, 10, 20]), regularization_strength=0.1,
        ...           relative_strength=True)
        Array([3., 1., 2.], dtype=float32)
    """
    fn = "soft_rank"
    x, valid = check_x(x, where, fn)
    reg = check_choice(regularization, _REGS, fn, "regularization")
    sign = 1.0 if check_choice(direction, _DIRS, fn, "direction") == "ascending" else -1.0
    eps = _effective_strength(regularization_strength, relative_strength, x, valid, fn)
    return _dispatch(
        lambda e: _soft_rank(x, valid, e, sign, reg),
        lambda: lax.stop_gradient(_hard_rank(x, valid, sign)),
        eps,
    )


def soft_sort(
    x: jax.Array,
    *,
    regularization: Regularization = "l2",
    regularization_strength: float | jax.Array = 1.0,
    direction: Direction = "ascending",
    where: jax.Array | None = None,
    relative_strength: bool = False,
) -> jax.Array:
    r"""Soft sort of ``x [..., n]`` along the last axis.

    .. math::
        s_\varepsilon(x) = \sigma\,\arg\min_{\mu \in \mathcal{P}(\sigma x)}
        \tfrac12 \|\mu - \rho / \varepsilon\|^2

    with ``sigma = +1`` for ``"descending"``, ``-1`` for ``"ascending"``. Computed as
    ``sigma (rho/eps - PAV(rho/eps - s))`` with ``s`` the values sorted in
    direction order (kl: the block values are ``logsumexp(rho_B/eps) -
    logsumexp(s_B)``). The output is sorted in ``direction`` and its sum equals the
    sum of the valid ``x``.

    Args:
      x: as in :func:`soft_rank`, and so are ``regularization``, ``direction``,
        ``where`` and ``relative_strength``.
      regularization_strength: as in :func:`soft_rank`; ``0`` returns the exact
        hard sort with zero gradient, like :func:`soft_rank` (``eps = 0`` means
        "no relaxation, no gradient"; :func:`hard_sort` keeps the gradient of
        sorting, the permutation).

    Returns:
      ``[..., n]``: the first ``m`` entries of each row are the soft-sorted valid
      values, the remaining ``n - m`` (padding) are 0.

    Example:
        >>> import jax.numpy as jnp
        >>> soft_sort(jnp.array([0.3, 0.1, 0.2]), regularization_strength=0.01)
        Array([0.1, 0.2, 0.3], dtype=float32)
        >>> soft_sort(jnp.array([3.0, 1, 2]), direction="descending",
        ...           regularization_strength=2.0)
        Array([2.5, 2. , 1.5], dtype=float32)
    """
    fn = "soft_sort"
    x, valid = check_x(x, where, fn)
    reg = check_choice(regularization, _REGS, fn, "regularization")
    sign = 1.0 if check_choice(direction, _DIRS, fn, "direction") == "descending" else -1.0
    eps = _effective_strength(regularization_strength, relative_strength, x, valid, fn)
    return _dispatch(
        lambda e: _soft_sort(x, valid, e, sign, reg),
        lambda: lax.stop_gradient(_hard_sort(x, valid, sign)),
        eps,
    )


def hard_rank(
    x: jax.Array, *, direction: Direction = "ascending", where: jax.Array | None = None
) -> jax.Array:
    """Exact ordinal ranks ``[..., n]`` (1..m, ties by index; 0 on masked items).

    The limit of :func:`soft_rank` as ``regularization_strength -> 0`` for distinct
    values (tied values get their average rank in the soft limit).

    Example:
        >>> import jax.numpy as jnp
        >>> hard_rank(jnp.array([3.0, 1.0, 2.0, 1.0, -1.0]))
        Array([5., 2., 4., 3., 1.], dtype=float32)
    """
    fn = "hard_rank"
    x, valid = check_x(x, where, fn)
    sign = 1.0 if check_choice(direction, _DIRS, fn, "direction") == "ascending" else -1.0
    return lax.stop_gradient(_hard_rank(x, valid, sign))


def hard_sort(
    x: jax.Array, *, direction: Direction = "ascending", where: jax.Array | None = None
) -> jax.Array:
    """Exact sort ``[..., n]`` of the valid items (padding 0 at the end of each row).

    Example:
        >>> import jax.numpy as jnp
        >>> hard_sort(jnp.array([3.0, 1.0, 2.0]), direction="descending")
        Array([3., 2., 1.], dtype=float32)
    """
    fn = "hard_sort"
    x, valid = check_x(x, where, fn)
    sign = 1.0 if check_choice(direction, _DIRS, fn, "direction") == "descending" else -1.0
    return _hard_sort(x, valid, sign)


def permutahedron_projection(
    theta: jax.Array,
    w: jax.Array,
    *,
    where: jax.Array | None = None,
) -> jax.Array:
    r"""Euclidean projection of ``theta [..., n]`` onto the permutahedron of ``w``.

    ``argmin_{mu in P(w)} 1/2 ||mu - theta||^2`` where ``w [..., n]`` is sorted in
    decreasing order (only its first ``m`` entries are used for a row with ``m``
    valid items). Used by :func:`soft_rank` (``w = rho``) and :func:`soft_topk`
    (``w = (1, ..., 1, 0, ..., 0)``).

    Example:
        >>> import jax.numpy as jnp
        >>> permutahedron_projection(jnp.array([0.0, 5.0, 1.0]), jnp.array([1.0, 0, 0]))
        Array([0., 1., 0.], dtype=float32)
    """
    fn = "permutahedron_projection"
    theta, valid = check_x(theta, where, fn, name="theta")
    w = jnp.broadcast_to(jnp.asarray(w, theta.dtype), theta.shape)
    m, vpos, _ = _sorted_positions(valid)
    theta = jnp.where(valid, theta, 0)
    perm = argsort_desc(theta, valid)
    s = take(theta, perm)
    ms, mw = l2_block_means(s, w, m)
    out = jnp.where(vpos, (s - ms) + mw, 0)
    return take(out, invert_permutation(perm))

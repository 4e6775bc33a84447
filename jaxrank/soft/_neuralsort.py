"""NeuralSort (Grover et al. 2019): relaxed permutation matrices by a softmax.

Row ``i`` of the relaxed permutation matrix (for the descending order) is

.. math::
    \\hat P_{i,:} = \\operatorname{softmax}\\big(((m + 1 - 2i)\\, x - A_x \\mathbf 1) / \\tau\\big),
    \\qquad (A_x)_{jk} = |x_j - x_k|,

the continuous relaxation of ``argmax`` of the ``i``-th largest item. Each row is a
probability vector; ``P @ x`` is a soft sort and ``P`` tends to the hard permutation
matrix as ``temperature -> 0``. O(n^2) time and memory per row.

Example:
    >>> import jax.numpy as jnp
    >>> from jaxrank.soft import neuralsort
    >>> neuralsort(jnp.array([1.0, 3.0, 2.0]), temperature=0.01)
    Array([[0., 1., 0.],
           [0., 0., 1.],
           [1., 0., 0.]], dtype=float32)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxrank.soft._common import argsort_desc, check_choice, check_x

_DIRS = ("ascending", "descending")


def _check_temperature(temperature, fn):
    if isinstance(temperature, (int, float)) and not temperature > 0:
        raise ValueError(f"{fn}: `temperature` must be > 0, got {temperature!r}")
    return temperature


def _rows_mask(valid):
    m = jnp.sum(valid, axis=-1, dtype=jnp.int32)
    rows = jnp.arange(valid.shape[-1]) < m[..., None]
    return m, rows


def neuralsort(
    x: jax.Array,
    *,
    temperature: float | jax.Array = 1.0,
    direction: str = "descending",
    where: jax.Array | None = None,
) -> jax.Array:
    """NeuralSort relaxed permutation matrix ``P [..., n, n]`` of ``x [..., n]``.

    ``P[..., i, j]`` is the weight of item ``j`` at sorted position ``i`` (position 0
    holds the largest item for ``"descending"``, the smallest for ``"ascending"``).
    With ``where``, only the first ``m`` rows (the valid count) are non-zero and
    invalid columns get zero weight, so padding never changes the valid block.

    Example:
        >>> import jax.numpy as jnp
        >>> P = neuralsort(jnp.array([1.0, 3.0, 2.0]), temperature=1.0)
        >>> P.sum(-1).round(4)
        Array([1., 1., 1.], dtype=float32)
    """
    fn = "neuralsort"
    x, valid = check_x(x, where, fn)
    _check_temperature(temperature, fn)
    if check_choice(direction, _DIRS, fn, "direction") == "ascending":
        x = -x
    m, rows = _rows_mask(valid)
    xv = jnp.where(valid, x, 0)
    a = jnp.abs(xv[..., :, None] - xv[..., None, :])
    a_sum = jnp.sum(jnp.where(valid[..., None, :], a, 0), axis=-1)  # [..., n]
    scale = (m[..., None] + 1 - 2 * (jnp.arange(x.shape[-1]) + 1)).astype(x.dtype)
    logits = (scale[..., :, None] * xv[..., None, :] - a_sum[..., None, :]) / temperature
    logits = jnp.where(valid[..., None, :], logits, -jnp.inf)
    p = jax.nn.softmax(jnp.where(rows[..., :, None], logits, 0), axis=-1)
    return jnp.where(rows[..., :, None] & valid[..., None, :], p, 0)


def hard_permutation(
    x: jax.Array, *, direction: str = "descending", where: jax.Array | None = None
) -> jax.Array:
    """Hard permutation matrix ``[..., n, n]``: ``P[i, j] = 1`` if item ``j`` is at position ``i``.

    Ties are broken by index (stable). Rows past the number of valid items are 0.

    Example:
        >>> import jax.numpy as jnp
        >>> hard_permutation(jnp.array([1.0, 3.0, 2.0]))
        Array([[0., 1., 0.],
               [0., 0., 1.],
               [1., 0., 0.]], dtype=float32)
    """
    fn = "hard_permutation"
    x, valid = check_x(x, where, fn)
    sign = 1.0 if check_choice(direction, _DIRS, fn, "direction") == "descending" else -1.0
    perm = argsort_desc(sign * x, valid)
    _, rows = _rows_mask(valid)
    onehot = jax.nn.one_hot(perm, x.shape[-1], dtype=x.dtype)
    return jnp.where(rows[..., None], onehot, 0)

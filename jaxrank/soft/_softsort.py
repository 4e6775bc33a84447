"""SoftSort (Prillo & Eisenschlos 2020): a simpler relaxed permutation matrix.

.. math::
    \\hat P_{i,:} = \\operatorname{softmax}\\big(-|\\operatorname{sort}(x)_i - x|^p / \\tau\\big)

Row ``i`` puts its mass on the items closest to the ``i``-th sorted value; it tends
to the hard permutation matrix as ``temperature -> 0``. O(n^2) per row.

Example:
    >>> import jax.numpy as jnp
    >>> from jaxrank.soft import softsort
    >>> softsort(jnp.array([1.0, 3.0, 2.0]), temperature=0.01)
    Array([[0., 1., 0.],
           [0., 0., 1.],
           [1., 0., 0.]], dtype=float32)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxrank.soft._common import argsort_desc, check_choice, check_x, take
from jaxrank.soft._neuralsort import _check_temperature, _rows_mask

_DIRS = ("ascending", "descending")


def softsort(
    x: jax.Array,
    *,
    temperature: float | jax.Array = 1.0,
    power: float = 1.0,
    direction: str = "descending",
    where: jax.Array | None = None,
) -> jax.Array:
    """SoftSort relaxed permutation matrix ``P [..., n, n]`` of ``x [..., n]``.

    Same layout and ``where`` semantics as :func:`neuralsort`; ``power`` is the
    exponent ``p`` of the distance (1 in the paper).

    Example:
        >>> import jax.numpy as jnp
        >>> P = softsort(jnp.array([1.0, 3.0, 2.0]), temperature=1.0)
        >>> (P @ jnp.array([1.0, 3.0, 2.0])).round(2)
        Array([2.58, 2.  , 1.42], dtype=float32)
    """
    fn = "softsort"
    x, valid = check_x(x, where, fn)
    _check_temperature(temperature, fn)
    sign = 1.0 if check_choice(direction, _DIRS, fn, "direction") == "descending" else -1.0
    _, rows = _rows_mask(valid)
    xv = jnp.where(valid, x, 0)
    s = take(xv, argsort_desc(sign * xv, valid))
    logits = -(jnp.abs(s[..., :, None] - xv[..., None, :]) ** power) / temperature
    logits = jnp.where(valid[..., None, :], logits, -jnp.inf)
    p = jax.nn.softmax(jnp.where(rows[..., :, None], logits, 0), axis=-1)
    return jnp.where(rows[..., :, None] & valid[..., None, :], p, 0)

"""Pairwise losses on score differences of item pairs with different labels.

Pair ``(i, j)`` is valid when both items are valid and :math:`y_i > y_j` (every valid
ordered pair, ``i = j`` included, for :func:`pairwise_mse_loss`, as rax); its loss is a
function of :math:`s_i - s_j`, multiplied by ``weights[i]`` and by an optional lambda
weight (:mod:`jaxrank.losses` ``*_lambdaweight``). ``reduce_fn=jnp.mean`` averages over
all valid pairs of the batch, ``None`` returns ``[..., n, n]``.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from jaxrank.losses import _utils as u

Array = u.Array


def pairwise_loss(
    scores,
    labels,
    where=None,
    *,
    pair_loss_fn: Callable[[Array, Array], Array],
    weights=None,
    lambdaweight_fn: Callable[..., Array] | None = None,
    all_pairs: bool = False,
    reduce_fn: u.ReduceFn = jnp.mean,
) -> Array:
    r"""Generic pairwise loss :math:`\sum_{y_i > y_j} w_i\,\lambda_{ij}\,
    f(s_i - s_j, y_i - y_j)` with ``pair_loss_fn = f``.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxrank.losses import pairwise_loss
      >>> f = lambda ds, dy: jnp.maximum(0.0, 1.0 - ds)
      >>> float(pairwise_loss(jnp.array([0.0, 0.5]), jnp.array([1.0, 0.0]), pair_loss_fn=f))
      1.5
    """
    scores, labels, where, weights = u.check(scores, labels, where, weights)
    ds = scores[..., :, None] - scores[..., None, :]
    dy = labels[..., :, None] - labels[..., None, :]
    valid = where[..., :, None] & where[..., None, :]
    if not all_pairs:
        valid = valid & (dy > 0)
    loss = pair_loss_fn(ds, dy)
    if weights is not None:
        loss = loss * weights[..., :, None]
    if lambdaweight_fn is not None:
        loss = loss * lambdaweight_fn(scores, labels, where, weights=weights)
    return u.reduce(loss, valid, reduce_fn)


def _doc(name: str, formula: str, example: str, value: str) -> str:
    return f"""Pairwise {name} loss.

    .. math::
        \\ell_{{ij}} = {formula}

    Args:
      scores, labels: ``[..., n]``; where: optional ``[..., n]`` bool mask.
      weights: optional ``[..., n]`` item weights (pair weight = ``weights[i]``).
      lambdaweight_fn: optional lambda weight function, e.g.
        ``functools.partial(dcg2_lambdaweight, topn=5)``.
      reduce_fn: ``jnp.mean`` over valid pairs, ``jnp.sum``, or ``None`` (``[..., n, n]``).

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxrank.losses import {example}
      >>> round(float({example}(jnp.array([0.0, 0.5]), jnp.array([1.0, 0.0]))), 4)
      {value}
    """


def pairwise_logistic_loss(
    scores, labels, where=None, *, weights=None, lambdaweight_fn=None, reduce_fn=jnp.mean
) -> Array:
    return pairwise_loss(
        scores, labels, where, weights=weights, lambdaweight_fn=lambdaweight_fn,
        reduce_fn=reduce_fn,
        pair_loss_fn=lambda ds, dy: jax.nn.relu(-ds) + jnp.log1p(jnp.exp(-jnp.abs(ds))),
    )  # fmt: skip


def pairwise_hinge_loss(
    scores, labels, where=None, *, weights=None, lambdaweight_fn=None, reduce_fn=jnp.mean
) -> Array:
    return pairwise_loss(
        scores, labels, where, weights=weights, lambdaweight_fn=lambdaweight_fn,
        reduce_fn=reduce_fn, pair_loss_fn=lambda ds, dy: jax.nn.relu(1.0 - ds),
    )  # fmt: skip


def pairwise_soft_zero_one_loss(
    scores, labels, where=None, *, weights=None, lambdaweight_fn=None, reduce_fn=jnp.mean
) -> Array:
    return pairwise_loss(
        scores, labels, where, weights=weights, lambdaweight_fn=lambdaweight_fn,
        reduce_fn=reduce_fn, pair_loss_fn=lambda ds, dy: jax.nn.sigmoid(-ds),
    )  # fmt: skip


def pairwise_mse_loss(
    scores, labels, where=None, *, weights=None, lambdaweight_fn=None, reduce_fn=jnp.mean
) -> Array:
    return pairwise_loss(
        scores, labels, where, weights=weights, lambdaweight_fn=lambdaweight_fn,
        reduce_fn=reduce_fn, all_pairs=True,
        pair_loss_fn=lambda ds, dy: jnp.square(ds - dy),
    )  # fmt: skip


def pairwise_qr_loss(
    scores,
    labels,
    where=None,
    *,
    weights=None,
    tau: float = 0.5,
    squared: bool = False,
    lambdaweight_fn=None,
    reduce_fn=jnp.mean,
) -> Array:
    if not 0.0 < tau <= 1.0:
        raise ValueError(f"tau must be in (0, 1], got {tau}")

    def f(ds, dy):
        under, over = jax.nn.relu(dy - ds), jax.nn.relu(ds - dy)
        if squared:
            under, over = jnp.square(under), jnp.square(over)
        return tau * under + (1.0 - tau) * over

    return pairwise_loss(
        scores, labels, where, weights=weights, lambdaweight_fn=lambdaweight_fn,
        reduce_fn=reduce_fn, pair_loss_fn=f,
    )  # fmt: skip


pairwise_logistic_loss.__doc__ = _doc(
    "logistic (RankNet)", r"\log(1 + e^{-(s_i - s_j)})", "pairwise_logistic_loss", "0.9741"
)
pairwise_hinge_loss.__doc__ = _doc(
    "hinge", r"\max(0, 1 - (s_i - s_j))", "pairwise_hinge_loss", "1.5"
)
pairwise_soft_zero_one_loss.__doc__ = _doc(
    "soft zero-one", r"\sigma(-(s_i - s_j))", "pairwise_soft_zero_one_loss", "0.6225"
)
pairwise_mse_loss.__doc__ = _doc(
    "squared error",
    r"((s_i - s_j) - (y_i - y_j))^2 \text{ over all valid ordered pairs}",
    "pairwise_mse_loss",
    "1.125",
)
pairwise_qr_loss.__doc__ = _doc(
    "quantile regression (``tau``, ``squared``)",
    r"\tau\,[y_i - y_j - (s_i - s_j)]_+ + (1 - \tau)\,[(s_i - s_j) - (y_i - y_j)]_+",
    "pairwise_qr_loss",
    "0.75",
)

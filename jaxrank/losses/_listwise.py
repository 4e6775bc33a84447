"""Listwise losses: softmax (ListNet), poly-1 softmax, unique softmax, ListMLE and
position-weighted Plackett-Luce.

One value per list; ``reduce_fn=jnp.mean`` averages over lists with at least one valid
item, ``None`` returns ``[...]``. Masked items take no part and get zero gradient; fully
masked lists give loss 0 and finite (zero) gradients.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from jaxrank.losses import _utils as u

Array = u.Array


def softmax_loss(
    scores,
    labels,
    where=None,
    *,
    weights=None,
    normalize_labels: bool = False,
    reduce_fn: u.ReduceFn = jnp.mean,
) -> Array:
    r"""Softmax cross-entropy (ListNet top-1).

    .. math::
        \ell = -\sum_i p_i \log \frac{e^{s_i}}{\sum_j e^{s_j}}, \qquad
        p_i = w_i y_i \ \text{(or normalized to sum 1 with ``normalize_labels``)}

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxrank.losses import softmax_loss
      >>> round(float(softmax_loss(jnp.array([0.0, 0.0]), jnp.array([1.0, 0.0]))), 4)  # log 2
      0.6931
    """
    scores, labels, where, weights = u.check(scores, labels, where, weights)
    p = jnp.where(where, labels, 0.0)
    if weights is not None:
        p = p * weights
    if normalize_labels:
        p = u.normalize(p, where)
    # -sum_i p_i (z_i - lse) = -sum_i p_i z_i + lse * sum_i p_i (p is 0 on masked items):
    # one pass fewer than materializing the log-softmax, and masked items enter the sum
    # as exp(-inf) = 0 with zero gradient
    m = jnp.max(jnp.where(where, scores, -jnp.inf), axis=-1, keepdims=True)
    m = jax.lax.stop_gradient(jnp.where(jnp.isfinite(m), m, 0.0))
    z = jnp.where(where, scores - m, -jnp.inf)
    total = jnp.sum(jnp.exp(z), axis=-1)
    lse = jnp.log(jnp.where(total > 0, total, 1.0))
    loss = -jnp.sum(p * jnp.where(where, z, 0.0), axis=-1) + lse * jnp.sum(p, axis=-1)
    return u.reduce(loss, jnp.any(where, axis=-1), reduce_fn)


def poly1_softmax_loss(
    scores,
    labels,
    where=None,
    *,
    epsilon: float = 1.0,
    weights=None,
    reduce_fn: u.ReduceFn = jnp.mean,
) -> Array:
    r"""Poly-1 softmax loss (Leng et al., 2022): softmax cross-entropy plus
    :math:`\epsilon (1 - p_t)`.

    .. math::
        \ell = \operatorname{CE}(s, y) + \epsilon\,\Bigl(1 - \sum_i \hat y_i\,
        \operatorname{softmax}(s)_i\Bigr)

    with :math:`\hat y` the labels (times weights) normalized over valid items (uniform
    when all are 0).

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxrank.losses import poly1_softmax_loss
      >>> round(float(poly1_softmax_loss(jnp.array([0.0, 0.0]), jnp.array([1.0, 0.0]))), 4)
      1.1931
    """
    scores, labels, where, weights = u.check(scores, labels, where, weights)
    ce = softmax_loss(scores, labels, where, weights=weights, reduce_fn=None)
    y = jnp.where(where, labels, 0.0)
    if weights is not None:
        y = y * weights
    pt = jnp.sum(u.normalize(y, where) * jnp.exp(u.masked_log_softmax(scores, where)), axis=-1)
    pt = jnp.where(jnp.any(where, axis=-1), pt, 1.0)
    loss = ce + epsilon * (1.0 - pt)
    return u.reduce(loss, jnp.any(where, axis=-1), reduce_fn)


def unique_softmax_loss(
    scores,
    labels,
    where=None,
    *,
    weights=None,
    reduce_fn: u.ReduceFn = jnp.mean,
) -> Array:
    r"""Unique softmax loss (Zhu & Klabjan, 2020): each item against the items with
    lower labels only.

    .. math::
        \ell = -\sum_i (2^{y_i} - 1)\, w_i \log
        \frac{e^{s_i}}{e^{s_i} + \sum_{j:\, y_j < y_i} e^{s_j}}

    ``O(n^2)`` work per list.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxrank.losses import unique_softmax_loss
      >>> round(float(unique_softmax_loss(jnp.array([0.0, 0.0]), jnp.array([1.0, 0.0]))), 4)
      0.6931
    """
    scores, labels, where, weights = u.check(scores, labels, where, weights)
    n = scores.shape[-1]
    lower = (labels[..., None, :] < labels[..., :, None]) & where[..., None, :]
    member = lower | jnp.eye(n, dtype=bool)
    member = member & where[..., :, None]
    # only the diagonal of each row's log-softmax is needed: s_i - m_i - log sum_j e^(s_j - m_i)
    # over row i's members j (m_i: the row's max, no gradient), never the full [n, n] matrix
    cols = scores[..., None, :]
    m = jnp.max(jnp.where(member, cols, -jnp.inf), axis=-1)
    m = jax.lax.stop_gradient(jnp.where(jnp.isfinite(m), m, 0.0))
    total = jnp.sum(jnp.exp(jnp.where(member, cols - m[..., None], -jnp.inf)), axis=-1)
    own = scores - m - jnp.log(jnp.where(total > 0, total, 1.0))
    own = own * jnp.where(where, u.exp2_gain(labels), 0.0)
    if weights is not None:
        own = own * weights
    loss = -jnp.sum(jnp.where(where, own, 0.0), axis=-1)
    return u.reduce(loss, jnp.any(where, axis=-1), reduce_fn)


def listmle_loss(scores, labels, where=None, *, reduce_fn: u.ReduceFn = jnp.mean) -> Array:
    r"""ListMLE (Xia et al., 2008): negative Plackett-Luce log-likelihood of the ranking
    by label (ties by index, as :func:`jaxrank.metrics.ranks`).

    .. math::
        \ell = -\sum_{r=1}^{n} \Bigl(s_{\pi(r)} - \log \sum_{q \ge r} e^{s_{\pi(q)}}\Bigr)

    with :math:`\pi` the valid items sorted by label descending.
    :func:`plackett_luce_loss` weights the positions.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxrank.losses import listmle_loss
      >>> round(float(listmle_loss(jnp.array([0.0, 0.0]), jnp.array([1.0, 0.0]))), 4)  # log 2
      0.6931
    """
    return plackett_luce_loss(scores, labels, where, position_weights=None, reduce_fn=reduce_fn)


def _position_weights(kind, positions, m):
    if kind is None:
        return jnp.ones_like(positions)
    if callable(kind):
        return kind(positions, m)
    if kind == "exp2":
        # (2^(m-r) - 1) / (2^(m-1) - 1) = (2^(1-r) - 2^(1-m)) / (1 - 2^(1-m)), 1 for m = 1.
        tail = jnp.exp2(1.0 - m)
        den = 1.0 - tail
        return jnp.where(
            m > 1, (jnp.exp2(1.0 - positions) - tail) / jnp.where(m > 1, den, 1.0), 1.0
        )
    if kind == "dcg":
        return u.discount(positions)
    raise ValueError(f"position_weights must be None, 'exp2', 'dcg' or a callable, got {kind!r}")


def plackett_luce_loss(
    scores,
    labels,
    where=None,
    *,
    position_weights="exp2",
    reduce_fn: u.ReduceFn = jnp.mean,
) -> Array:
    r"""Position-weighted Plackett-Luce loss (position-aware ListMLE, Lan et al., 2014).

    .. math::
        \ell = -\sum_{r=1}^{m} \alpha_r \Bigl(s_{\pi(r)} - \log \sum_{q \ge r}
        e^{s_{\pi(q)}}\Bigr)

    with :math:`\pi` the :math:`m` valid items sorted by label descending (ties by index)
    and position weights :math:`\alpha_r`:

    * ``"exp2"`` (default): :math:`\alpha_r = (2^{m-r} - 1) / (2^{m-1} - 1)`, p-ListMLE
      (TF-Ranking's ``create_p_list_mle_lambda_weight``, which uses the padded size for
      :math:`m` and no scaling; here :math:`m` counts the valid items, so padding changes
      nothing, and the top position weighs 1);
    * ``"dcg"``: :math:`\alpha_r = 1 / \log_2(1 + r)`;
    * ``None``: :math:`\alpha_r = 1` (:func:`listmle_loss`);
    * a callable ``fn(positions [..., n], m [..., 1]) -> [..., n]`` (1-based float
      positions, valid-item counts).

    Args:
      scores, labels, where: ``[..., n]`` scores, labels, optional bool mask.
      position_weights: see above (static).
      reduce_fn: ``jnp.mean`` (default), ``jnp.sum`` or ``None`` (``[...]``).

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxrank.losses import plackett_luce_loss
      >>> s, y = jnp.array([0.0, 0.0, 0.0]), jnp.array([2.0, 1.0, 0.0])
      >>> round(float(plackett_luce_loss(s, y, position_weights=None)), 4)  # log 3 + log 2
      1.7918
      >>> round(float(plackett_luce_loss(s, y)), 4)  # log 3 + (1/3) log 2
      1.3297
    """
    scores, labels, where, _ = u.check(scores, labels, where)
    n = scores.shape[-1]
    idx = jnp.broadcast_to(jnp.arange(n), scores.shape)
    _, _, order = lax.sort(
        ((~where).astype(jnp.int32), -labels, idx), dimension=-1, num_keys=2, is_stable=True
    )
    s = jnp.take_along_axis(scores, order, axis=-1)
    w = jnp.take_along_axis(where, order, axis=-1)
    # Reverse cumulative logsumexp over valid items (masked ones sit at the end and get a
    # finite score far below every valid one, so they add exactly 0 and no NaN gradient).
    low = jax.lax.stop_gradient(jnp.min(jnp.where(w, s, jnp.inf), axis=-1, keepdims=True))
    low = jnp.where(jnp.isfinite(low), low, 0.0) - 1e4
    lse = lax.cumlogsumexp(jnp.where(w, s, low), axis=s.ndim - 1, reverse=True)
    m = jnp.sum(w, axis=-1, keepdims=True).astype(scores.dtype)
    alpha = _position_weights(position_weights, jnp.arange(1, n + 1, dtype=scores.dtype), m)
    loss = -jnp.sum(jnp.where(w, alpha * (s - lse), 0.0), axis=-1)
    return u.reduce(loss, jnp.any(where, axis=-1), reduce_fn)

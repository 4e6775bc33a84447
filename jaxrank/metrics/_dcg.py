"""Discounted cumulative gain: DCG and nDCG with linear or exponential gains."""

from __future__ import annotations

from typing import Literal

import jax.numpy as jnp

from jaxrank.metrics import _utils as u

Array = u.Array
Gain = Literal["linear", "exp2"]


def _gains(labels: Array, gain: Gain) -> Array:
    u.check_choice(gain, "gain", ("linear", "exp2"))
    pos = jnp.maximum(labels, 0.0)
    return pos if gain == "linear" else jnp.exp2(pos) - 1.0


def _discount(position: Array) -> Array:
    return 1.0 / jnp.log2(position + 1.0)


def _ideal_dcg(g: Array, w: Array, k: int | None, method: u.Method) -> Array:
    """DCG of the valid items ordered by gain (one plain sort: no indices needed)."""
    n = g.shape[-1]
    method = u.hard_method(method)  # the ideal ranking is exact, also under a relaxation
    if u.resolve_method(method, n) == "count":
        lay = u.layout(g, w, "first", method)
        return jnp.sum(jnp.where(w, g, 0.0) * u.expected_discount(lay, _discount, k))
    best = -jnp.sort(-jnp.where(w, g, -jnp.inf))
    best = best if k is None else best[: min(k, n)]
    disc = _discount(jnp.arange(1, best.shape[-1] + 1, dtype=g.dtype))
    return jnp.sum(jnp.where(jnp.isfinite(best), best * disc, 0.0))


def _dcg_parts(scores, labels, where, retrieved, weights, k, gain, ties, method):
    """Per list: (expected DCG, ideal DCG)."""
    gains = _gains(labels, gain)
    if weights is not None:
        gains = gains * weights

    def one(s, g, w, r):
        ranked = w & r
        lay = u.layout(s, ranked, ties, method)
        value = jnp.sum(jnp.where(ranked, g, 0.0) * u.expected_discount(lay, _discount, k))
        ideal = _ideal_dcg(g, w, k, method)
        return jnp.stack([value, ideal])

    parts = u.per_list(one, scores, gains, where, retrieved)
    return parts[..., 0], parts[..., 1]


def _prepare(scores, labels, where, retrieved, weights, k, gain, ties, empty):
    k = u.check_k(k)
    u.check_choice(gain, "gain", ("linear", "exp2"))
    u.check_ties(ties, "dcg")
    u.check_choice(empty, "empty", ("zero", "nan"))
    scores, labels, where, extra = u.check_inputs(
        scores, labels, where, extra={"weights": weights, "retrieved": retrieved}
    )
    retrieved = u.bool_arg(extra, "retrieved", where)
    weights = extra.get("weights")
    if weights is not None:
        weights = weights.astype(scores.dtype)
    return scores, labels, where, retrieved, weights, k


def dcg(
    scores,
    labels,
    where=None,
    *,
    k: int | None = None,
    gain: Gain = "linear",
    retrieved=None,
    weights=None,
    ties: u.Ties = "first",
    empty: u.Empty = "zero",
    method: u.Method = "auto",
) -> Array:
    r"""Discounted cumulative gain of each list.

    .. math::
        \operatorname{DCG@k} = \sum_{i:\, \operatorname{rank}_i \le k}
        \frac{w_i \, \operatorname{gain}(y_i)}{\log_2(\operatorname{rank}_i + 1)},
        \qquad \operatorname{gain}(y) = \begin{cases}
        \max(y, 0) & \texttt{gain="linear"} \text{ (trec\_eval: the judgment value)} \\
        2^{\max(y,0)} - 1 & \texttt{gain="exp2"} \text{ (Burges et al., LightGBM, rax)}
        \end{cases}

    Ranks follow :func:`jaxrank.metrics.ranks` (score descending, ties by index). With
    ``ties="average"`` the result is the exact expectation over uniformly random
    tie-breaking: an item of a tie group occupying positions :math:`a+1..a+g` gets the
    mean discount over those positions (cut at ``k``).

    Args:
      scores: ``[..., n]`` item scores (higher ranks first).
      labels: ``[..., n]`` graded relevance labels; labels ≤ 0 give no gain.
      where: optional ``[..., n]`` bool mask of valid items (padding is ``False``).
      k: static cutoff (``None``: the whole list).
      gain: ``"linear"`` or ``"exp2"``.
      weights: optional ``[..., n]`` per-item gain weights (as rax).
      retrieved: optional ``[..., n]`` bool mask of the valid items that are ranked
        (default: all). Valid items not retrieved still count as relevant items (in
        :math:`R` and the ideal ranking) but hold no rank: trec_eval's judged documents
        missing from the run.
      ties: ``"first"`` (stable order) or ``"average"`` (expected value).
      empty: value for lists without a positive gain: ``"zero"`` or ``"nan"`` (then
        :func:`jaxrank.metrics.mean` leaves them out).
      method: how ranks are computed, see :func:`jaxrank.metrics.ranks`.

    Returns:
      ``[...]`` float32 DCG values (float64 for float64 inputs under x64).

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxrank.metrics import dcg
      >>> scores, labels = jnp.array([3.0, 2.0, 1.0]), jnp.array([0.0, 2.0, 1.0])
      >>> round(float(dcg(scores, labels)), 4)  # 2/log2(3) + 1/log2(4)
      1.7619
      >>> round(float(dcg(scores, labels, gain="exp2", k=2)), 4)  # 3/log2(3)
      1.8928
    """
    scores, labels, where, retrieved, weights, k = _prepare(
        scores, labels, where, retrieved, weights, k, gain, ties, empty
    )
    value, ideal = _dcg_parts(scores, labels, where, retrieved, weights, k, gain, ties, method)
    return u.finish(value, ideal > 0, empty)


def ndcg(
    scores,
    labels,
    where=None,
    *,
    k: int | None = None,
    gain: Gain = "linear",
    retrieved=None,
    weights=None,
    ties: u.Ties = "first",
    empty: u.Empty = "zero",
    method: u.Method = "auto",
) -> Array:
    r"""Normalized discounted cumulative gain of each list.

    .. math::
        \operatorname{nDCG@k} = \frac{\operatorname{DCG@k}(s, y)}{\operatorname{DCG@k}(y^*, y)}

    where the ideal ranking :math:`y^*` orders the valid items by weighted gain
    :math:`w_i \operatorname{gain}(y_i)` (as rax and trec_eval). See :func:`dcg` for
    the gains, discount, ``ties`` and the other arguments. Lists whose ideal DCG is 0
    (no valid item with positive gain) follow ``empty``.

    Returns:
      ``[...]`` float32 values in ``[0, 1]`` (for non-negative weights).

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxrank.metrics import ndcg
      >>> scores, labels = jnp.array([3.0, 2.0, 1.0]), jnp.array([0.0, 2.0, 1.0])
      >>> round(float(ndcg(scores, labels)), 4)  # (2/log2 3 + 1/2) / (2 + 1/log2 3)
      0.6697
      >>> v = ndcg(jnp.array([1.0, 1.0]), jnp.array([0.0, 1.0]), ties="average")
      >>> round(float(v), 4)  # (1 + 1/log2 3) / 2: relevant item first or second
      0.8155
    """
    scores, labels, where, retrieved, weights, k = _prepare(
        scores, labels, where, retrieved, weights, k, gain, ties, empty
    )
    value, ideal = _dcg_parts(scores, labels, where, retrieved, weights, k, gain, ties, method)
    return u.finish(value / jnp.where(ideal > 0, ideal, 1.0), ideal > 0, empty)

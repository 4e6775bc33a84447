"""Precision-over-ranks metrics: average precision, bpref, interpolated precision.

Relevance is binary (``label >= relevance_level``). Average precision supports
``ties="average"`` in closed form (McSherry & Najork, 2008): inside a tie group the
number of relevant items placed before a relevant item is hypergeometric, and its
expectation enters linearly, leaving harmonic-number sums over the group's positions.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp

from jaxrank.metrics import _utils as u

Array = u.Array

ELEVEN_POINTS = tuple(i / 10 for i in range(11))


def average_precision(
    scores,
    labels,
    where=None,
    *,
    retrieved=None,
    k: int | None = None,
    relevance_level: float = 1,
    ties: u.Ties = "first",
    empty: u.Empty = "zero",
    method: u.Method = "auto",
) -> Array:
    r"""Average precision (its mean over lists is MAP), optionally cut at ``k``.

    .. math::
        \operatorname{AP@k} = \frac{1}{R} \sum_{i:\, y_i \ge \ell,\ \operatorname{rank}_i \le k}
        \operatorname{P@rank}_i, \qquad R = \sum_i \mathbb{1}[y_i \ge \ell]

    The denominator is all relevant valid items :math:`R`, not :math:`\min(k, R)` (as
    trec_eval's ``map_cut_k`` and rax). With ``ties="average"``, a relevant item in a
    tie group of size :math:`g` (with :math:`r` relevant members) after :math:`a` items
    (:math:`A` of them relevant) contributes

    .. math::
        \frac{1}{g} \sum_{x=0}^{m-1} \frac{A + 1 + x\,\frac{r-1}{g-1}}{a + 1 + x},
        \qquad m = \min(g, \max(0, k - a)),

    the exact expectation over random tie-breaking (the harmonic sums come from a float32
    table of :math:`H_m`, so very large tie groups deep in long lists lose a few digits).

    Args:
      scores, labels, where: ``[..., n]`` scores, labels, optional bool validity mask.
      k: static cutoff (``None``: the whole list).
      retrieved: optional ``[..., n]`` bool mask of the valid items that are ranked
        (default: all); valid items not retrieved still count in :math:`R`.
      relevance_level: labels ``>= relevance_level`` are relevant.
      ties: ``"first"`` (stable order) or ``"average"``.
      empty: value for lists without relevant items: ``"zero"`` or ``"nan"``.
      method: how ranks are computed, see :func:`jaxrank.metrics.ranks`.

    Returns:
      ``[...]`` float32 AP values.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxrank.metrics import average_precision
      >>> s, y = jnp.array([4.0, 3.0, 2.0, 1.0]), jnp.array([0, 1, 2, 0])
      >>> round(float(average_precision(s, y)), 4)  # (1/2 + 2/3) / 2
      0.5833
      >>> round(float(average_precision(s, y, k=2)), 4)  # (1/2) / 2
      0.25
    """
    k = u.check_k(k)
    scores, labels, where, (retrieved,) = u.check_metric_args(
        "average_precision",
        scores,
        labels,
        where,
        ties=ties,
        empty=empty,
        masks={"retrieved": retrieved},
    )

    def one(s, y, w, ret):
        all_rel = ((y >= relevance_level) & w).astype(s.dtype)
        rel = jnp.where(ret, all_rel, 0.0)
        n = s.shape[-1]
        lay = u.layout(s, w & ret, ties, method)
        big_a, r = lay.sums(rel)
        a, g = lay.start, jnp.maximum(lay.size, 1.0)
        m = g if k is None else jnp.clip(k - a, 0.0, g)
        c = jnp.where(g > 1, (r - 1.0) / jnp.maximum(g - 1.0, 1.0), 0.0)
        harmonic = jnp.concatenate(
            [jnp.zeros(1, s.dtype), jnp.cumsum(1.0 / jnp.arange(1, n + 1, dtype=s.dtype))]
        )
        hsum = harmonic[(a + m).astype(jnp.int32)] - harmonic[a.astype(jnp.int32)]
        grouped = (m * c + (big_a + 1.0 - c * (a + 1.0)) * hsum) / g
        # For singleton groups (integer a) expected_in_cutoff is [a < k] = [m > 0]; under a
        # rank relaxation it is the smooth cutoff.
        single = (big_a + 1.0) / (a + 1.0) * u.expected_in_cutoff(lay, k)
        contrib = jnp.where(lay.size <= 1, single, grouped)
        return jnp.stack([jnp.sum(rel * contrib), jnp.sum(all_rel)])

    parts = u.per_list(one, scores, labels, where, retrieved)
    big_r = parts[..., 1]
    return u.finish(parts[..., 0] / jnp.maximum(big_r, 1.0), big_r > 0, empty)


def bpref(
    scores,
    labels,
    where=None,
    *,
    retrieved=None,
    judged=None,
    relevance_level: float = 1,
    ties: u.Ties = "first",
    empty: u.Empty = "zero",
    method: u.Method = "auto",
) -> Array:
    r"""Binary preference (Buckley & Voorhees 2004), as trec_eval's ``bpref``.

    .. math::
        \operatorname{bpref} = \frac{1}{R} \sum_{i:\, y_i \ge \ell}
        \left(1 - \frac{\min(N_{>i}, R)}{\min(R, N)}\right)

    where :math:`N` is the number of judged non-relevant valid items and
    :math:`N_{>i}` the number of them ranked above :math:`i` (a term is 1 when
    :math:`N_{>i} = 0`). Unjudged items (``judged=False``) are ignored, as documents
    missing from the qrels are in trec_eval.

    Args:
      scores, labels, where: ``[..., n]`` scores, labels, optional bool validity mask.
      judged: optional ``[..., n]`` bool mask of judged items (default: all valid items).
      retrieved: optional ``[..., n]`` bool mask of the valid items that are ranked
        (default: all); valid items not retrieved still count in :math:`R` and :math:`N`.
      relevance_level, empty, method: as :func:`average_precision`.

    Only ``ties="first"`` is supported (bpref's ``min`` makes the tie expectation
    non-linear); ``ties="average"`` raises ``ValueError``.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxrank.metrics import bpref
      >>> s, y = jnp.array([4.0, 3.0, 2.0, 1.0]), jnp.array([0, 1, 2, 0])
      >>> float(bpref(s, y))  # R=2, N=2: each relevant item has 1 judged non-relevant above
      0.5
    """
    scores, labels, where, (judged, retrieved) = u.check_metric_args(
        "bpref",
        scores,
        labels,
        where,
        ties=ties,
        ties_supported=False,
        empty=empty,
        masks={"judged": judged, "retrieved": retrieved},
    )

    def one(s, y, w, j, ret):
        j = j & w
        all_rel = ((y >= relevance_level) & j).astype(s.dtype)
        all_nonrel = ((y < relevance_level) & j).astype(s.dtype)
        rel = jnp.where(ret, all_rel, 0.0)
        lay = u.layout(s, w & ret, "first", method)
        above, _ = lay.sums(all_nonrel)
        big_r, big_n = jnp.sum(all_rel), jnp.sum(all_nonrel)
        term = jnp.where(
            above > 0,
            1.0 - jnp.minimum(above, big_r) / jnp.maximum(jnp.minimum(big_r, big_n), 1.0),
            1.0,
        )
        return jnp.stack([jnp.sum(rel * term), big_r])

    parts = u.per_list(one, scores, labels, where, judged, retrieved)
    big_r = parts[..., 1]
    return u.finish(parts[..., 0] / jnp.maximum(big_r, 1.0), big_r > 0, empty)


def _check_levels(recall_levels) -> tuple[float, ...]:
    try:
        levels = tuple(float(x) for x in recall_levels)
    except TypeError as err:
        raise TypeError("recall_levels must be a sequence of floats in [0, 1]") from err
    if not levels or any(not 0.0 <= x <= 1.0 for x in levels):
        raise ValueError(f"recall_levels must be a non-empty sequence in [0, 1], got {levels}")
    return levels


def interpolated_precision(
    scores,
    labels,
    where=None,
    *,
    retrieved=None,
    recall_levels: Sequence[float] = ELEVEN_POINTS,
    relevance_level: float = 1,
    ties: u.Ties = "first",
    empty: u.Empty = "zero",
    method: u.Method = "auto",
) -> Array:
    r"""Interpolated precision at the given recall levels (trec_eval ``iprec_at_recall``).

    .. math::
        \operatorname{iP}(\rho) = \max\{\operatorname{P@j} : \operatorname{Recall@j} \ge \rho\}

    (0 when no rank reaches recall :math:`\rho`). The maximum is attained at a relevant
    item, so it is taken over relevant valid items. Only ``ties="first"`` is supported
    (``"average"`` raises ``ValueError``).

    Args:
      scores, labels, where: ``[..., n]`` scores, labels, optional bool validity mask.
      recall_levels: static recall levels (default the 11 points 0.0, 0.1, ..., 1.0).
      retrieved: optional ``[..., n]`` bool mask of the valid items that are ranked
        (default: all); valid items not retrieved still count in :math:`R`.
      relevance_level, empty, method: as :func:`average_precision`.

    Returns:
      ``[..., L]`` float32 interpolated precisions, one per recall level.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxrank.metrics import interpolated_precision
      >>> s, y = jnp.array([4.0, 3.0, 2.0, 1.0]), jnp.array([0, 1, 2, 0])
      >>> [round(x, 4) for x in interpolated_precision(s, y, recall_levels=(0, 0.5, 1)).tolist()]
      [0.6667, 0.6667, 0.6667]
    """
    levels = _check_levels(recall_levels)
    scores, labels, where, (retrieved,) = u.check_metric_args(
        "interpolated_precision",
        scores,
        labels,
        where,
        ties=ties,
        ties_supported=False,
        empty=empty,
        masks={"retrieved": retrieved},
    )
    level_arr = jnp.asarray(levels, scores.dtype)

    def one(s, y, w, ret):
        all_rel = ((y >= relevance_level) & w).astype(s.dtype)
        rel = jnp.where(ret, all_rel, 0.0)
        lay = u.layout(s, w & ret, "first", method)
        above, _ = lay.sums(rel)
        big_r = jnp.sum(all_rel)
        prec = (above + 1.0) / (lay.start + 1.0)
        # recall >= level, compared on counts with a relative slack for rounding of level*R.
        reached = (above[None, :] + 1.0) >= level_arr[:, None] * big_r * (1.0 - 1e-6)
        ok = reached & (rel[None, :] > 0)
        best = jnp.max(jnp.where(ok, prec[None, :], 0.0), axis=-1)
        return jnp.concatenate([best, big_r[None]])

    parts = u.per_list(one, scores, labels, where, retrieved)
    big_r = parts[..., -1:]
    return u.finish(parts[..., :-1], big_r > 0, empty)


def eleven_point_precision(
    scores,
    labels,
    where=None,
    *,
    retrieved=None,
    relevance_level: float = 1,
    ties: u.Ties = "first",
    empty: u.Empty = "zero",
    method: u.Method = "auto",
) -> Array:
    r"""11-point interpolated average precision.

    .. math::
        \frac{1}{11} \sum_{\rho \in \{0, 0.1, \dots, 1\}} \operatorname{iP}(\rho)

    See :func:`interpolated_precision`. Example:

      >>> import jax.numpy as jnp
      >>> from jaxrank.metrics import eleven_point_precision
      >>> s, y = jnp.array([4.0, 3.0, 2.0, 1.0]), jnp.array([0, 1, 2, 0])
      >>> round(float(eleven_point_precision(s, y)), 4)
      0.6667
    """
    values = interpolated_precision(
        scores,
        labels,
        where,
        retrieved=retrieved,
        relevance_level=relevance_level,
        ties=ties,
        empty=empty,
        method=method,
    )
    return jnp.mean(values, axis=-1)

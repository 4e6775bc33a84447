"""User-model metrics: reciprocal rank, expected reciprocal rank, rank-biased precision."""

from __future__ import annotations

import jax.numpy as jnp

from jaxrank.metrics import _utils as u

Array = u.Array


def reciprocal_rank(
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
    r"""Reciprocal rank of the first relevant item (its mean over lists is MRR).

    .. math::
        \operatorname{RR@k} = \max_{i:\, y_i \ge \ell,\ \operatorname{rank}_i \le k}
        \frac{1}{\operatorname{rank}_i} \quad (0 \text{ if there is none})

    With ``ties="average"``: the first relevant item lies in the earliest tie group
    holding one (:math:`a` items before, :math:`g` members, :math:`r` relevant); the
    number :math:`Y` of non-relevant members placed before it has
    :math:`P(Y=y) = \frac{r}{g}\prod_{t<y}\frac{g-r-t}{g-1-t}`, and the result is
    :math:`\sum_y P(Y=y)\,\mathbb{1}[a+1+y \le k] / (a+1+y)`.

    Args:
      scores, labels, where: ``[..., n]`` scores, labels, optional bool validity mask.
      k: static cutoff (``None``: the whole list).
      retrieved: optional ``[..., n]`` bool mask of the valid items that are ranked
        (default: all); valid items not retrieved hold no rank.
      relevance_level, ties, empty, method: as :func:`jaxrank.metrics.precision`.

    Returns:
      ``[...]`` float32 reciprocal ranks.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxrank.metrics import reciprocal_rank
      >>> float(reciprocal_rank(jnp.array([3.0, 2.0, 1.0]), jnp.array([0, 1, 1])))
      0.5
      >>> float(reciprocal_rank(jnp.array([1.0, 1.0]), jnp.array([0, 1]), ties="average"))
      0.75
    """
    k = u.check_k(k)
    scores, labels, where, (retrieved,) = u.check_metric_args(
        "reciprocal_rank",
        scores,
        labels,
        where,
        ties=ties,
        empty=empty,
        masks={"retrieved": retrieved},
    )

    def one(s, y, w, ret):
        rel = ((y >= relevance_level) & w).astype(s.dtype)
        lay = u.layout(s, w & ret, ties, method)
        pos, probs = u.first_group_distribution(lay, rel)
        probs = u.first_within(lay, pos, probs, k)
        return jnp.stack([jnp.sum(probs / pos), jnp.sum(rel)])

    parts = u.per_list(one, scores, labels, where, retrieved)
    return u.finish(parts[..., 0], parts[..., 1] > 0, empty)


def err(
    scores,
    labels,
    where=None,
    *,
    retrieved=None,
    k: int | None = None,
    max_label: float | None = None,
    ties: u.Ties = "first",
    empty: u.Empty = "zero",
    method: u.Method = "auto",
) -> Array:
    r"""Expected reciprocal rank (Chapelle et al., 2009), a cascade user model.

    .. math::
        \operatorname{ERR@k} = \sum_{r=1}^{k} \frac{1}{r}\, R_{(r)} \prod_{q<r} (1 - R_{(q)}),
        \qquad R_i = \frac{2^{\max(y_i, 0)} - 1}{2^{y_\text{max}}}

    where :math:`(r)` is the item at rank :math:`r`.

    Args:
      scores, labels, where: ``[..., n]`` scores, graded labels, optional bool mask.
      k: static cutoff (``None``: the whole list).
      max_label: :math:`y_\text{max}`, the top grade of the scale (e.g. 4). ``None`` uses
        each list's largest valid label (pass the scale's top grade to compare lists).
      retrieved: optional ``[..., n]`` bool mask of the valid items that are ranked
        (default: all); valid items not retrieved hold no rank.
      empty: value for lists without a positive label: ``"zero"`` or ``"nan"``.
      method: how ranks are computed, see :func:`jaxrank.metrics.ranks`.

    Only ``ties="first"`` is supported (the cascade product is not linear in positions);
    ``ties="average"`` raises ``ValueError``.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxrank.metrics import err
      >>> float(err(jnp.array([2.0, 1.0]), jnp.array([1, 2]), max_label=2))  # 1/4 + 3/4*3/4/2
      0.53125
    """
    k = u.check_k(k)
    scores, labels, where, (retrieved,) = u.check_metric_args(
        "err",
        scores,
        labels,
        where,
        ties=ties,
        ties_supported=False,
        empty=empty,
        masks={"retrieved": retrieved},
    )

    def one(s, y, w, ret):
        y = jnp.where(w, jnp.maximum(y, 0.0), 0.0)
        top = jnp.max(y) if max_label is None else jnp.asarray(max_label, s.dtype)
        stop = jnp.where(w, (jnp.exp2(y) - 1.0) / jnp.exp2(top), 0.0)
        lay = u.layout(s, w & ret, "first", method)
        log_continue, _ = lay.sums(jnp.log1p(-jnp.minimum(stop, 1.0 - 1e-7)))
        inside = u.expected_in_cutoff(lay, k)
        value = jnp.sum(inside * stop * jnp.exp(log_continue) / (lay.start + 1.0))
        return jnp.stack([value, jnp.sum(stop)])

    parts = u.per_list(one, scores, labels, where, retrieved)
    return u.finish(parts[..., 0], parts[..., 1] > 0, empty)


def _check_p(p) -> None:
    if isinstance(p, int | float) and not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p}")


def rbp(
    scores,
    labels,
    where=None,
    *,
    retrieved=None,
    p: float = 0.8,
    k: int | None = None,
    judged=None,
    relevance_level: float = 1,
    ties: u.Ties = "first",
    empty: u.Empty = "zero",
    method: u.Method = "auto",
) -> Array:
    r"""Rank-biased precision (Moffat & Zobel, 2008) with persistence ``p``.

    .. math::
        \operatorname{RBP} = (1 - p) \sum_{i:\, y_i \ge \ell,\ \operatorname{rank}_i \le k}
        p^{\operatorname{rank}_i - 1}

    Only judged relevant items count (``judged`` defaults to every valid item); the
    uncertainty from unjudged items and from the list's end is :func:`rbp_residual`.
    Linear in per-item discounts, so ``ties="average"`` is exact.

    Args:
      scores, labels, where: ``[..., n]`` scores, labels, optional bool validity mask.
      p: persistence in (0, 1).
      k: static evaluation depth (``None``: the whole list).
      judged: optional ``[..., n]`` bool mask of judged items.
      retrieved: optional ``[..., n]`` bool mask of the valid items that are ranked
        (default: all); valid items not retrieved hold no rank.
      relevance_level, ties, empty, method: as :func:`jaxrank.metrics.precision`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxrank.metrics import rbp
      >>> round(float(rbp(jnp.array([3.0, 2.0, 1.0]), jnp.array([1, 0, 1]), p=0.5)), 4)
      0.625
    """
    _check_p(p)
    k = u.check_k(k)
    scores, labels, where, (judged, retrieved) = u.check_metric_args(
        "rbp",
        scores,
        labels,
        where,
        ties=ties,
        empty=empty,
        masks={"judged": judged, "retrieved": retrieved},
    )

    def one(s, y, w, j, ret):
        rel = ((y >= relevance_level) & w & j).astype(s.dtype)
        lay = u.layout(s, w & ret, ties, method)
        disc = u.expected_discount(lay, lambda r: (1.0 - p) * jnp.power(p, r - 1.0), k)
        return jnp.stack([jnp.sum(rel * disc), jnp.sum(rel)])

    parts = u.per_list(one, scores, labels, where, judged, retrieved)
    return u.finish(parts[..., 0], parts[..., 1] > 0, empty)


def rbp_residual(
    scores,
    labels,
    where=None,
    *,
    retrieved=None,
    p: float = 0.8,
    k: int | None = None,
    judged=None,
    ties: u.Ties = "first",
    method: u.Method = "auto",
) -> Array:
    r"""Residual of :func:`rbp`: the most RBP could still grow.

    .. math::
        \operatorname{res} = (1 - p) \sum_{i \text{ unjudged},\ \operatorname{rank}_i \le d}
        p^{\operatorname{rank}_i - 1} + p^{d}, \qquad d = \min(k, n_\text{valid})

    so the true RBP lies in ``[rbp, rbp + residual]``. ``labels`` only set the shape
    (kept for a uniform signature). No ``empty`` policy: the residual does not depend
    on relevance.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxrank.metrics import rbp_residual
      >>> s, y = jnp.array([3.0, 2.0, 1.0]), jnp.array([1, 0, 1])
      >>> judged = jnp.array([True, False, True])
      >>> float(rbp_residual(s, y, p=0.5, judged=judged))  # 0.5*0.5 + 0.5**3
      0.375
    """
    _check_p(p)
    k = u.check_k(k)
    scores, labels, where, (judged, retrieved) = u.check_metric_args(
        "rbp_residual",
        scores,
        labels,
        where,
        ties=ties,
        empty=None,
        masks={"judged": judged, "retrieved": retrieved},
    )

    def one(s, w, j, ret):
        w = w & ret
        unjudged = (w & ~j).astype(s.dtype)
        lay = u.layout(s, w, ties, method)
        disc = u.expected_discount(lay, lambda r: (1.0 - p) * jnp.power(p, r - 1.0), k)
        depth = jnp.sum(w.astype(s.dtype))
        if k is not None:
            depth = jnp.minimum(depth, k)
        return jnp.sum(unjudged * disc) + jnp.power(p, depth)

    return u.per_list(one, scores, where, judged, retrieved)

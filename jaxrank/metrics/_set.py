"""Set-based metrics at a cutoff: precision, recall, R-precision, F-measure, success.

Relevance is binary: an item is relevant when ``label >= relevance_level`` (default 1,
as trec_eval's ``-l 1`` and rax). All of these are linear in the probabilities that
items land within the cutoff, so ``ties="average"`` gives their exact expectation over
uniformly random tie-breaking (success uses the distribution of the first relevant
position instead).
"""

from __future__ import annotations

from typing import Literal

import jax.numpy as jnp

from jaxrank.metrics import _utils as u

Array = u.Array


def _common(scores, labels, where, retrieved, k, ties, empty, name):
    scores, labels, where, (retrieved,) = u.check_metric_args(
        name, scores, labels, where, ties=ties, empty=empty, masks={"retrieved": retrieved}
    )
    return scores, labels, where, retrieved, u.check_k(k)


def _relevant_in_cutoff(
    scores, labels, where, retrieved, k, ties, relevance_level, method, dynamic_k
):
    """Per list: (expected relevant items within the cutoff, R, number of ranked items)."""

    def one(s, y, w, r):
        ranked = w & r
        rel = (y >= relevance_level) & w
        big_r = jnp.sum(rel.astype(s.dtype))
        lay = u.layout(s, ranked, ties, method)
        cut = big_r if dynamic_k else k
        inside = u.expected_in_cutoff(lay, cut)
        hits = jnp.sum(jnp.where(rel, inside, 0.0))
        return jnp.stack([hits, big_r, jnp.sum(ranked.astype(s.dtype))])

    parts = u.per_list(one, scores, labels, where, retrieved)
    return parts[..., 0], parts[..., 1], parts[..., 2]


def precision(
    scores,
    labels,
    where=None,
    *,
    retrieved=None,
    k: int | None = None,
    denominator: Literal["k", "retrieved"] = "k",
    relevance_level: float = 1,
    ties: u.Ties = "first",
    empty: u.Empty = "zero",
    method: u.Method = "auto",
) -> Array:
    r"""Precision at cutoff ``k``.

    .. math::
        \operatorname{P@k} = \frac{1}{D} \sum_i \mathbb{1}[y_i \ge \ell]\,
        \mathbb{1}[\operatorname{rank}_i \le k], \qquad
        D = \begin{cases} k & \texttt{denominator="k"} \text{ (trec\_eval P\_k)} \\
        \min(k, n_\text{valid}) & \texttt{denominator="retrieved"} \text{ (rax)}
        \end{cases}

    With ``k=None`` the cutoff is the list and ``D`` the number of valid items.

    Args:
      scores, labels, where: ``[..., n]`` scores, labels, optional bool validity mask.
      k: static cutoff.
      denominator: ``"k"`` or ``"retrieved"`` (they differ only for lists shorter than k).
      retrieved: optional ``[..., n]`` bool mask of the valid items that are ranked
        (default: all). Valid items not retrieved still count as relevant items (in
        :math:`R`) but hold no rank: trec_eval's judged documents missing from the run.
      relevance_level: labels ``>= relevance_level`` are relevant.
      ties: ``"first"`` (stable order) or ``"average"`` (exact expectation).
      empty: value for lists without relevant items: ``"zero"`` or ``"nan"``.
      method: how ranks are computed, see :func:`jaxrank.metrics.ranks`.

    Returns:
      ``[...]`` float32 precision.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxrank.metrics import precision
      >>> s, y = jnp.array([3.0, 2.0, 1.0]), jnp.array([1, 0, 1])
      >>> float(precision(s, y, k=2)), float(precision(s, y, k=4))
      (0.5, 0.5)
      >>> round(float(precision(s, y, k=4, denominator="retrieved")), 4)  # 2 / min(4, 3)
      0.6667
    """
    scores, labels, where, retrieved, k = _common(
        scores, labels, where, retrieved, k, ties, empty, "precision"
    )
    u.check_choice(denominator, "denominator", ("k", "retrieved"))
    hits, big_r, nvalid = _relevant_in_cutoff(
        scores, labels, where, retrieved, k, ties, relevance_level, method, False
    )
    if k is None:
        den = nvalid
    elif denominator == "k":
        den = jnp.full_like(nvalid, k)
    else:
        den = jnp.minimum(nvalid, k)
    return u.finish(hits / jnp.maximum(den, 1.0), big_r > 0, empty)


def recall(
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
    r"""Recall at cutoff ``k``: the fraction of the relevant valid items ranked ``<= k``.

    .. math::
        \operatorname{R@k} = \frac{1}{R} \sum_i \mathbb{1}[y_i \ge \ell]\,
        \mathbb{1}[\operatorname{rank}_i \le k], \qquad R = \sum_i \mathbb{1}[y_i \ge \ell]

    Arguments as :func:`precision`. Lists with ``R = 0`` follow ``empty``.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxrank.metrics import recall
      >>> float(recall(jnp.array([3.0, 2.0, 1.0]), jnp.array([1, 0, 1]), k=2))
      0.5
    """
    scores, labels, where, retrieved, k = _common(
        scores, labels, where, retrieved, k, ties, empty, "recall"
    )
    hits, big_r, _ = _relevant_in_cutoff(
        scores, labels, where, retrieved, k, ties, relevance_level, method, False
    )
    return u.finish(hits / jnp.maximum(big_r, 1.0), big_r > 0, empty)


def r_precision(
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
    r"""R-precision: precision at cutoff :math:`R`, the number of relevant valid items.

    .. math::
        \operatorname{R\text{-}prec} = \frac{1}{R} \sum_i \mathbb{1}[y_i \ge \ell]\,
        \mathbb{1}[\operatorname{rank}_i \le R]

    (trec_eval's ``Rprec``.) Arguments as :func:`precision`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxrank.metrics import r_precision
      >>> float(r_precision(jnp.array([3.0, 2.0, 1.0]), jnp.array([1, 0, 1])))
      0.5
    """
    scores, labels, where, retrieved, _ = _common(
        scores, labels, where, retrieved, None, ties, empty, "r_precision"
    )
    hits, big_r, _ = _relevant_in_cutoff(
        scores, labels, where, retrieved, None, ties, relevance_level, method, True
    )
    return u.finish(hits / jnp.maximum(big_r, 1.0), big_r > 0, empty)


def f_measure(
    scores,
    labels,
    where=None,
    *,
    retrieved=None,
    k: int | None = None,
    beta: float = 1.0,
    relevance_level: float = 1,
    ties: u.Ties = "first",
    empty: u.Empty = "zero",
    method: u.Method = "auto",
) -> Array:
    r"""F-measure of the top ``k`` (the whole list for ``k=None``, as trec_eval's ``set_F``).

    .. math::
        F_\beta = \frac{(1+\beta^2)\, P\, R_c}{\beta^2 P + R_c}
        = \frac{(1+\beta^2)\, x}{\beta^2 R + K}

    with :math:`x` the relevant items in the top ``k``, :math:`K = \min(k, n_\text{valid})`
    the retrieved items, :math:`P = x/K` and :math:`R_c = x/R`; 0 when :math:`x = 0`.
    Being linear in :math:`x`, it supports ``ties="average"`` exactly. Other arguments
    as :func:`precision`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxrank.metrics import f_measure
      >>> float(f_measure(jnp.array([3.0, 2.0, 1.0]), jnp.array([1, 0, 1]), k=2))  # P=R=1/2
      0.5
    """
    scores, labels, where, retrieved, k = _common(
        scores, labels, where, retrieved, k, ties, empty, "f_measure"
    )
    hits, big_r, nvalid = _relevant_in_cutoff(
        scores, labels, where, retrieved, k, ties, relevance_level, method, False
    )
    n_ret = nvalid if k is None else jnp.minimum(nvalid, k)
    b2 = beta * beta
    value = (1.0 + b2) * hits / jnp.maximum(b2 * big_r + n_ret, 1e-30)
    return u.finish(value, big_r > 0, empty)


def success(
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
    r"""Success at ``k``: 1 if a relevant item is ranked within the top ``k``, else 0.

    .. math::
        \operatorname{S@k} = \mathbb{1}\left[\min_{i:\, y_i \ge \ell} \operatorname{rank}_i
        \le k\right]

    (trec_eval's ``success_k``.) With ``ties="average"`` it is the probability of that
    event under random tie-breaking. Other arguments as :func:`precision`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxrank.metrics import success
      >>> success(jnp.array([[3.0, 2.0, 1.0]]), jnp.array([[0, 0, 1]]), k=2).tolist()
      [0.0]
      >>> float(success(jnp.array([1.0, 1.0, 1.0]), jnp.array([0, 0, 1]), k=2, ties="average"))
      0.6666666865348816
    """
    scores, labels, where, retrieved, k = _common(
        scores, labels, where, retrieved, k, ties, empty, "success"
    )

    def one(s, y, w, r):
        rel = (y >= relevance_level) & w
        lay = u.layout(s, w & r, ties, method)
        pos, probs = u.first_group_distribution(lay, rel.astype(s.dtype))
        inside = u.first_within(lay, pos, probs, k)
        return jnp.stack([jnp.sum(inside), jnp.sum(rel.astype(s.dtype))])

    parts = u.per_list(one, scores, labels, where, retrieved)
    return u.finish(parts[..., 0], parts[..., 1] > 0, empty)

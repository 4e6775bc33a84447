"""Score normalizations applied to each run of each query before fusion.

Every function acts on one run's list on the last axis: ``scores [..., K]`` with a
boolean ``where [..., K]`` marking real entries and 1-based ``ranks [..., K]`` (from
scores or from the file). Padded entries never change a result and come back as 0.

The formulas follow ranx 0.3.21 exactly, including its ``1e-9`` floors on
denominators, so fusing normalized runs gives ranx's numbers:

============================  ==========================================================
``min-max``                   :math:`(s - \\min) / \\max(\\max - \\min, 10^{-9})`
``min-max-inverted``          :math:`(\\max - s) / \\max(\\max - \\min, 10^{-9})`
``max``                       :math:`s / \\max(\\max, 10^{-9})`
``sum``                       :math:`(s - \\min) / \\max(\\sum s - n\\min, 10^{-9})`
``zmuv`` (``z-score``)        :math:`(s - \\mu) / \\max(\\sigma, 10^{-9})` (population σ)
``rank``                      :math:`1 - (r - 1) / n`
``borda``                     :math:`1 - (r - 1) / N`; unretrieved candidates get
                              :math:`0.5 - (n - 1) / (2N)` (N: candidates of the query)
``quantile``                  mid-rank empirical CDF :math:`(n_< + n_=/2) / n`
``sigmoid``                   :math:`1 / (1 + e^{-s})`
``dbsf``                      :math:`\\mathrm{clip}((s - \\mu + 3\\sigma) / 6\\sigma, 0, 1)`
``none``                      the scores unchanged
============================  ==========================================================

``borda`` needs the union of candidates, so :func:`jaxrank.fusion.fuse_arrays`
applies it after gathering them; the others are pure functions of one list.

Example:
    >>> import jax.numpy as jnp
    >>> from jaxrank.fusion import normalize
    >>> s = jnp.array([3.0, 2.0, 1.0, 0.0])
    >>> w = jnp.array([True, True, True, False])
    >>> normalize(s, w, method="min-max").tolist()
    [1.0, 0.5, 0.0, 0.0]
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

NORMALIZATIONS: tuple[str, ...] = (
    "none",
    "min-max",
    "min-max-inverted",
    "max",
    "sum",
    "zmuv",
    "rank",
    "borda",
    "quantile",
    "sigmoid",
    "dbsf",
)
_ALIASES = {
    None: "none",
    "min_max": "min-max",
    "minmax": "min-max",
    "min_max_inverted": "min-max-inverted",
    "z-score": "zmuv",
    "zscore": "zmuv",
    "z_score": "zmuv",
}
_EPS = 1e-9


def canonical_norm(method: str | None) -> str:
    """Return the canonical name of normalization ``method`` or raise ``ValueError``."""
    name = _ALIASES.get(method, method)
    if name not in NORMALIZATIONS:
        raise ValueError(f"norm={method!r} is not one of {', '.join(NORMALIZATIONS)}")
    return name


def _masked_stats(scores, where):
    n = jnp.sum(where, axis=-1, keepdims=True)
    big = jnp.finfo(scores.dtype).max
    lo = jnp.min(jnp.where(where, scores, big), axis=-1, keepdims=True)
    hi = jnp.max(jnp.where(where, scores, -big), axis=-1, keepdims=True)
    lo = jnp.where(n > 0, lo, 0.0)
    hi = jnp.where(n > 0, hi, 0.0)
    total = jnp.sum(jnp.where(where, scores, 0.0), axis=-1, keepdims=True)
    nf = jnp.maximum(n, 1).astype(scores.dtype)
    mean = total / nf
    var = jnp.sum(jnp.where(where, (scores - mean) ** 2, 0.0), axis=-1, keepdims=True) / nf
    return n.astype(scores.dtype), lo, hi, total, mean, jnp.sqrt(var)


def normalize(
    scores: jax.Array,
    where: jax.Array | None = None,
    *,
    method: str | None = "min-max",
    ranks: jax.Array | None = None,
    degenerate: float | None = None,
) -> jax.Array:
    """Normalize one list of scores per query (ranx 0.3.21's formulas).

    Args:
      scores: ``[..., K]`` scores of one run for one query (leading axes are batch).
      where: ``[..., K]`` boolean mask of real entries (default: all).
      method: one of :data:`NORMALIZATIONS` (``None`` means ``"none"``); ``"borda"``
        here treats the list's own entries as the candidates.
      ranks: ``[..., K]`` 1-based ranks, needed by ``rank`` and ``borda``; default:
        rank by score descending, ties by position (lower index first).
      degenerate: for ``min-max`` only, the value given to every entry of a list
        whose scores are all equal (ranx: 0 through its ``1e-9`` floor; Pyserini: 1).

    Returns:
      ``[..., K]`` normalized scores, 0 on padded entries.

    Example:
      >>> import jax.numpy as jnp
      >>> normalize(jnp.array([2.0, 4.0]), method="zmuv").tolist()
      [-1.0, 1.0]
    """
    name = canonical_norm(method)
    scores = jnp.asarray(scores)
    if not jnp.issubdtype(scores.dtype, jnp.floating):
        scores = scores.astype(jnp.float32)
    if where is None:
        where = jnp.ones(scores.shape, bool)
    where = jnp.asarray(where, bool)
    if where.shape != scores.shape:
        raise ValueError(f"where shape {where.shape} != scores shape {scores.shape}")
    if ranks is None and name in ("rank", "borda"):
        ranks = _ranks_by_score(scores, where)
    n, lo, hi, total, mean, std = _masked_stats(scores, where)
    if name == "none":
        out = scores
    elif name in ("min-max", "min-max-inverted"):
        den = jnp.maximum(hi - lo, _EPS)
        out = (scores - lo) / den if name == "min-max" else (hi - scores) / den
        if degenerate is not None:
            out = jnp.where(hi == lo, jnp.asarray(degenerate, scores.dtype), out)
    elif name == "max":
        out = scores / jnp.maximum(hi, _EPS)
    elif name == "sum":
        out = (scores - lo) / jnp.maximum(total - lo * n, _EPS)
    elif name == "zmuv":
        out = (scores - mean) / jnp.maximum(std, _EPS)
    elif name in ("rank", "borda"):
        out = 1.0 - (jnp.asarray(ranks, scores.dtype) - 1.0) / jnp.maximum(n, 1.0)
    elif name == "quantile":
        big = jnp.finfo(scores.dtype).max
        ordered = jnp.sort(jnp.where(where, scores, big), axis=-1)
        flat_o = ordered.reshape(-1, ordered.shape[-1])
        flat_s = scores.reshape(-1, scores.shape[-1])
        less = jax.vmap(lambda a, v: jnp.searchsorted(a, v, side="left"))(flat_o, flat_s)
        leq = jax.vmap(lambda a, v: jnp.searchsorted(a, v, side="right"))(flat_o, flat_s)
        mid = (less + 0.5 * (leq - less)).reshape(scores.shape).astype(scores.dtype)
        out = mid / jnp.maximum(n, 1.0)
    elif name == "sigmoid":
        out = jax.nn.sigmoid(scores)
    else:  # dbsf
        den = jnp.maximum(6.0 * std, _EPS)
        out = jnp.clip((scores - (mean - 3.0 * std)) / den, 0.0, 1.0)
    return jnp.where(where, out, 0.0)


def _ranks_by_score(scores, where, doc_ids=None):
    """1-based ranks by score descending; ties by doc id descending (trec_eval order)
    when ``doc_ids`` is given, else by position. Padded entries rank last."""
    k = scores.shape[-1]
    pos = jnp.broadcast_to(jnp.arange(k, dtype=jnp.int32), scores.shape)
    key1 = jnp.where(where, -scores, jnp.inf)
    tie = pos if doc_ids is None else -jnp.asarray(doc_ids, jnp.int32)
    tie = jnp.where(where, tie, jnp.iinfo(jnp.int32).max)
    _, _, perm = jax.lax.sort((key1, tie, pos), dimension=-1, num_keys=2)
    inv = jnp.zeros_like(perm)
    inv = jnp.put_along_axis(inv, perm, pos, axis=-1, inplace=False)
    return inv + 1

"""Shared machinery of the in-graph metrics: argument checks, ranks, tie groups.

Every metric works on one list (the last axis) at a time and is ``vmap``-ed over the
flattened leading axes. Internally a list is described by a *layout*: for every valid
item, the number of valid items placed strictly before its tie group (``start``) and
the size of its tie group (``size``). With ``ties="first"`` every item is its own
group (``size == 1``, ``start == rank - 1``, ties broken by index); with
``ties="average"`` items with equal scores form one group, and metrics that are
linear in per-item position functions get their exact expectation over uniformly
random tie-breaking from (``start``, ``size``) alone.

Two interchangeable ways compute the layout (``method``):

* ``"count"``: compare every pair of items, ``O(n^2)`` work but no sort. XLA's CPU
  sort is slow, so this wins for short lists.
* ``"sort"``: one stable multi-key ``lax.sort`` per list, ``O(n log n)``.

``"auto"`` picks ``"count"`` for ``n <= _COUNT_MAX_N`` (chosen from
``bench/bench_metrics.py``; see the README).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

Array = jax.Array
Ties = Literal["first", "average"]
Empty = Literal["zero", "nan"]
Method = Literal["auto", "count", "sort"]

# Lists up to this size use pairwise counting instead of a sort (see bench_metrics.py).
_COUNT_MAX_N = 128


# ----------------------------------------------------------------------------- checks


def _as_array(x, name: str) -> Array:
    try:
        arr = jnp.asarray(x)
    except TypeError as err:
        raise TypeError(f"{name} must be an array, got {type(x).__name__}") from err
    if not (jnp.issubdtype(arr.dtype, jnp.number) or arr.dtype == jnp.bool_):
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
    return arr


def check_k(k: int | None, name: str = "k") -> int | None:
    """Validates a static cutoff: ``None`` or a positive Python int."""
    if k is None:
        return None
    if isinstance(k, bool) or not isinstance(k, int | np.integer):
        raise TypeError(f"{name} must be a positive int or None, got {k!r}")
    if k < 1:
        raise ValueError(f"{name} must be >= 1, got {k}")
    return int(k)


def check_choice(value, name: str, choices: tuple) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


def check_inputs(
    scores, labels, where, *, extra: dict[str, object] | None = None
) -> tuple[Array, Array, Array, dict[str, Array]]:
    """Converts and checks ``scores``, ``labels``, ``where`` (and same-shaped extras).

    Returns float arrays of the accumulation dtype (float32, or float64 for float64
    inputs under ``jax_enable_x64``) and a bool ``where`` (all True when ``None``).
    """
    scores = _as_array(scores, "scores")
    labels = _as_array(labels, "labels")
    if scores.ndim < 1:
        raise ValueError(f"scores must have at least one axis [..., n], got shape {scores.shape}")
    if labels.shape != scores.shape:
        raise ValueError(f"labels must have the shape of scores {scores.shape}, got {labels.shape}")
    if where is None:
        where = jnp.ones(scores.shape, dtype=bool)
    else:
        where = _as_array(where, "where")
        if where.dtype != jnp.bool_:
            raise TypeError(f"where must be a bool array, got dtype {where.dtype}")
        if where.shape != scores.shape:
            raise ValueError(
                f"where must have the shape of scores {scores.shape}, got {where.shape}"
            )
    dtype = acc_dtype(scores, labels)
    out = {}
    for name, value in (extra or {}).items():
        if value is None:
            continue
        arr = _as_array(value, name)
        if arr.shape != scores.shape:
            raise ValueError(
                f"{name} must have the shape of scores {scores.shape}, got {arr.shape}"
            )
        out[name] = arr
    return scores.astype(dtype), labels.astype(dtype), where, out


def bool_arg(extra: dict[str, Array], name: str, default: Array) -> Array:
    """The bool array ``extra[name]`` (checked), or ``default`` when it was not given."""
    value = extra.get(name)
    if value is None:
        return default
    if value.dtype != jnp.bool_:
        raise TypeError(f"{name} must be a bool array, got dtype {value.dtype}")
    return value


def check_metric_args(
    fn_name: str,
    scores,
    labels,
    where,
    *,
    ties: str = "first",
    ties_supported: bool = True,
    empty: str | None = "zero",
    masks: dict[str, object] | None = None,
) -> tuple[Array, Array, Array, list[Array]]:
    """The argument checks every metric shares, in one place.

    Checks ``ties`` (for ``fn_name``), ``empty`` (unless None), the shapes and dtypes
    of ``scores``/``labels``/``where`` and of each optional bool mask in ``masks``
    (name -> array or None). Returns the converted ``scores``, ``labels``, ``where``
    and the masks in the order given, each defaulting to ``where`` when None.
    """
    check_ties(ties, fn_name, supported=ties_supported)
    if empty is not None:
        check_choice(empty, "empty", ("zero", "nan"))
    masks = masks or {}
    scores, labels, where, extra = check_inputs(scores, labels, where, extra=masks)
    return scores, labels, where, [bool_arg(extra, name, where) for name in masks]


def acc_dtype(*arrays: Array):
    """float32, unless an input is float64 (then float64, under jax_enable_x64)."""
    if any(a.dtype == jnp.float64 for a in arrays):
        return jnp.promote_types(jnp.float64, jnp.float32)
    return jnp.dtype(jnp.float32)


def per_list(fn: Callable, *arrays: Array) -> Array:
    """Applies ``fn`` (on 1-D lists) over all leading axes of ``arrays``."""
    shape = arrays[0].shape
    flat = [a.reshape((-1, shape[-1])) for a in arrays]
    out = jax.vmap(fn)(*flat)
    return out.reshape(shape[:-1] + out.shape[1:])


def finish(values: Array, nonempty: Array, empty: Empty) -> Array:
    """Applies the policy for lists without relevant items."""
    if empty == "nan":
        return jnp.where(nonempty, values, jnp.nan)
    return jnp.where(nonempty, values, 0.0)


def check_ties(ties: str, fn_name: str, supported: bool = True) -> None:
    check_choice(ties, "ties", ("first", "average"))
    if ties == "average" and not supported:
        raise ValueError(
            f"{fn_name} does not support ties='average' (the expectation over random "
            "tie-breaking has no closed form here); supported by dcg, ndcg, precision, "
            "recall, r_precision, f_measure, success, average_precision, reciprocal_rank, "
            "rbp, rbp_residual, ordered_pair_accuracy"
        )


# ----------------------------------------------------------------------------- layout


class Layout(NamedTuple):
    """Positions of the items of one list (1-D arrays of length n, float dtype).

    ``start``: valid items placed strictly before the item's tie group;
    ``size``: size of the tie group (1 for ``ties="first"``, 0 for invalid items);
    ``sums(x)``: for a per-item array ``x``, the sums of ``x`` over valid items
    strictly before the group and over the group itself.
    """

    start: Array
    size: Array
    valid: Array
    sums: Callable[[Array], tuple[Array, Array]]
    # Set by a relaxed layout (``method=`` a relaxation object, see :mod:`jaxrank.losses`'s
    # metric transformations): smooth starts, cutoffs and first-relevant distribution.
    relax: object | None = None


def _count_layout(scores: Array, valid: Array, ties: Ties, dtype) -> Layout:
    n = scores.shape[-1]
    si, sj = scores[:, None], scores[None, :]
    vj = valid[None, :]
    if ties == "first":
        idx = jnp.arange(n)
        before = ((sj > si) | ((sj == si) & (idx[None, :] < idx[:, None]))) & vj

        def sums(x):
            return jnp.sum(jnp.where(before, x[None, :], 0.0), axis=-1), jnp.where(valid, x, 0.0)

        start = jnp.sum(before, axis=-1).astype(dtype)
        return Layout(start, valid.astype(dtype), valid, sums)

    before = (sj > si) & vj
    group = (sj == si) & vj

    def sums(x):
        xj = x[None, :]
        return jnp.sum(jnp.where(before, xj, 0.0), -1), jnp.sum(jnp.where(group, xj, 0.0), -1)

    start = jnp.sum(before, axis=-1).astype(dtype)
    size = jnp.sum(group, axis=-1).astype(dtype)
    return Layout(start, jnp.where(valid, size, 0.0), valid, sums)


def _sort_layout(scores: Array, valid: Array, ties: Ties, dtype) -> Layout:
    n = scores.shape[-1]
    idx = jnp.arange(n)
    # Valid items first, then score descending, then index ascending (stable sort).
    _, neg_sorted, order = lax.sort(
        ((~valid).astype(jnp.int32), -scores, idx), num_keys=2, is_stable=True
    )
    pos = jnp.zeros(n, jnp.int32).at[order].set(idx.astype(jnp.int32))
    valid_sorted = valid[order]
    if ties == "first":
        gstart = idx
        gend = idx + 1
    else:
        new = jnp.concatenate([jnp.ones(1, bool), neg_sorted[1:] != neg_sorted[:-1]])
        new = new | (valid_sorted != jnp.concatenate([valid_sorted[:1], valid_sorted[:-1]]))
        gstart = lax.cummax(jnp.where(new, idx, 0))
        last = jnp.concatenate([new[1:], jnp.ones(1, bool)])
        gend = lax.cummin(jnp.where(last, idx + 1, n), reverse=True)

    def sums(x):
        xs = jnp.where(valid_sorted, x[order], 0.0)
        cum = jnp.concatenate([jnp.zeros(1, xs.dtype), jnp.cumsum(xs)])
        above = cum[gstart]
        group = cum[gend] - above
        return above[pos], group[pos]

    start, size = sums(valid.astype(dtype))
    return Layout(start, jnp.where(valid, size, 0.0), valid, sums)


def hard_method(method) -> Method:
    """``method`` itself, or ``"auto"`` when it is a relaxation (for exact sub-results
    such as the ideal DCG)."""
    return method if isinstance(method, str) else "auto"


def resolve_method(method: Method, n: int) -> str:
    check_choice(method, "method", ("auto", "count", "sort"))
    if method == "auto":
        return "count" if n <= _COUNT_MAX_N else "sort"
    return method


def layout(scores: Array, valid: Array, ties: Ties, method: Method) -> Layout:
    if not isinstance(method, str) and hasattr(method, "layout"):
        # A rank relaxation (jaxrank.losses.approx_t12n / bound_t12n): smooth positions.
        return method.layout(scores, valid)
    fn = _count_layout if resolve_method(method, scores.shape[-1]) == "count" else _sort_layout
    return fn(scores, valid, ties, scores.dtype)


def expected_in_cutoff(lay: Layout, k: int | Array | None) -> Array:
    """Probability that each item lands at a position ``<= k`` (1 for ``k=None``)."""
    if lay.relax is not None:
        return lay.relax.in_cutoff(k)
    if k is None:
        return lay.valid.astype(lay.start.dtype)
    m = jnp.clip(k - lay.start, 0.0, lay.size)
    return jnp.where(lay.valid, m / jnp.maximum(lay.size, 1.0), 0.0)


def expected_discount(
    lay: Layout, discount: Callable[[Array], Array], k: int | Array | None
) -> Array:
    """Expected ``discount(position) * [position <= k]`` of every item.

    The position of an item in a tie group of size ``g`` starting after ``a`` items is
    uniform on ``a+1 .. a+g``, so the expectation is a difference of cumulative
    discounts divided by ``g``; singleton groups use the discount directly.
    """
    if lay.relax is not None:
        inside = lay.relax.in_cutoff(k)
        return jnp.where(lay.valid, discount(lay.start + 1.0) * inside, 0.0)
    n = lay.start.shape[-1]
    dtype = lay.start.dtype
    hi = lay.start + lay.size if k is None else jnp.minimum(lay.start + lay.size, k)
    hi = jnp.maximum(hi, lay.start)
    direct = discount(lay.start + 1.0) * (hi > lay.start)
    table = jnp.concatenate(
        [jnp.zeros(1, dtype), jnp.cumsum(discount(jnp.arange(1, n + 1, dtype=dtype)))]
    )
    avg = (table[hi.astype(jnp.int32)] - table[lay.start.astype(jnp.int32)]) / jnp.maximum(
        lay.size, 1.0
    )
    out = jnp.where(lay.size <= 1, direct, avg)
    return jnp.where(lay.valid, out, 0.0)


def first_group_distribution(lay: Layout, rel: Array) -> tuple[Array, Array]:
    """Distribution of the position of the first relevant item.

    Returns ``(positions, probs)`` of shape ``[n]``: ``probs[y]`` is the probability that
    the first relevant item sits at 1-based position ``positions[y]``. The first relevant
    item lies in the earliest tie group holding a relevant item (``a`` items before it,
    ``g`` items, ``r`` of them relevant); ``y`` non-relevant group members precede it with
    probability ``r/g * prod_{t<y} (g-r-t)/(g-1-t)``. All zeros if nothing is relevant.
    """
    if lay.relax is not None:
        return lay.relax.first_relevant(rel)
    n = lay.start.shape[-1]
    dtype = lay.start.dtype
    is_rel = lay.valid & (rel > 0)
    big = jnp.asarray(n + 1, dtype)
    a = jnp.min(jnp.where(is_rel, lay.start, big))
    any_rel = jnp.any(is_rel)
    in_group = is_rel & (lay.start == a)
    r = jnp.sum(in_group.astype(dtype))
    g = jnp.max(jnp.where(in_group, lay.size, 0.0))
    t = jnp.arange(n, dtype=dtype)
    num = g - r - t
    den = g - 1.0 - t
    ratio = jnp.where(num > 0, num / jnp.where(den > 0, den, 1.0), 0.0)
    ratio = jnp.concatenate([jnp.ones(1, dtype), ratio[:-1]])
    probs = jnp.where(any_rel, r / jnp.maximum(g, 1.0), 0.0) * jnp.cumprod(ratio)
    return a + 1.0 + t, probs


def first_within(lay: Layout, pos: Array, probs: Array, k: int | Array | None) -> Array:
    """``probs`` of :func:`first_group_distribution` restricted to positions ``<= k``
    (under a rank relaxation: times the smooth cutoff of each item)."""
    if k is None:
        return probs
    if lay.relax is not None:
        return probs * lay.relax.in_cutoff(k)
    return jnp.where(pos <= k, probs, 0.0)


# ----------------------------------------------------------------------------- public


def ranks(scores, where=None, *, method: Method = "auto") -> Array:
    r"""1-based ranks of the items of each list, in jaxrank's stable order.

    The order is score descending, ties broken by index ascending (the first of equal
    scores ranks higher); items masked out by ``where`` are placed after all valid items,
    in the same order among themselves. This is rax's order, and trec_eval's with
    documents numbered by decreasing doc id.

    .. math::
        \operatorname{rank}_i = 1 + \#\{j \text{ valid}: s_j > s_i
        \text{ or } (s_j = s_i \text{ and } j < i)\}

    Args:
      scores: ``[..., n]`` item scores.
      where: optional ``[..., n]`` bool mask of valid items.
      method: ``"count"`` (pairwise comparisons, O(n²), no sort), ``"sort"``
        (one stable ``lax.sort``) or ``"auto"`` (``"count"`` for n ≤ 128: XLA's CPU sort
        is slow, so counting wins for short lists; see ``bench/bench_metrics.py``).

    Returns:
      ``[..., n]`` int32 ranks.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxrank.metrics import ranks
      >>> ranks(jnp.array([0.5, 2.0, 0.5, 1.0])).tolist()
      [3, 1, 4, 2]
      >>> ranks(jnp.array([0.5, 2.0, 0.5]), where=jnp.array([False, True, True])).tolist()
      [3, 1, 2]
    """
    scores, _, where, _ = check_inputs(scores, scores, where)
    check_choice(method, "method", ("auto", "count", "sort"))

    def one(s, w):
        # Sort key (not valid, -score, index): masked items follow the valid ones, in the
        # same order among themselves (as rax).
        n = s.shape[-1]
        idx = jnp.arange(n)
        if resolve_method(method, n) == "count":
            si, sj, wi, wj = s[:, None], s[None, :], w[:, None], w[None, :]
            same = wi == wj
            ahead = (wj & ~wi) | (same & ((sj > si) | ((sj == si) & (idx[None, :] < idx[:, None]))))
            return (jnp.sum(ahead, axis=-1) + 1).astype(jnp.int32)
        _, _, order = lax.sort(((~w).astype(jnp.int32), -s, idx), num_keys=2, is_stable=True)
        return jnp.zeros(n, jnp.int32).at[order].set(idx.astype(jnp.int32) + 1)

    return per_list(one, scores, where)


def has_relevant(labels, where=None, *, relevance_level: float = 1) -> Array:
    """``[...]`` bool: whether each list holds a valid item with ``label >= relevance_level``.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxrank.metrics import has_relevant
      >>> has_relevant(jnp.array([[0, 2], [0, 0]])).tolist()
      [True, False]
    """
    labels, _, where, _ = check_inputs(labels, labels, where)
    return jnp.any((labels >= relevance_level) & where, axis=-1)


def mean(values, where=None) -> Array:
    """Mean of per-list metric values over lists that count.

    A list counts when ``where`` (``[...]`` bool, optional) is True and its value is not
    NaN, so metrics computed with ``empty="nan"`` drop lists without relevant items.
    Returns NaN when no list counts.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxrank.metrics import mean
      >>> float(mean(jnp.array([1.0, jnp.nan, 0.5])))
      0.75
    """
    values = jnp.asarray(values)
    keep = ~jnp.isnan(values)
    if where is not None:
        where = jnp.asarray(where)
        if where.dtype != jnp.bool_:
            raise TypeError(f"where must be a bool array, got dtype {where.dtype}")
        if where.shape != values.shape:
            raise ValueError(
                f"where must have the shape of values {values.shape}, got {where.shape}"
            )
        keep = keep & where
    total = jnp.sum(jnp.where(keep, values, 0.0))
    count = jnp.sum(keep)
    return jnp.where(count > 0, total / jnp.maximum(count, 1), jnp.nan)

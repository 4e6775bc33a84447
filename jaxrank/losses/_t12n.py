r"""Transformations: any in-graph metric into a loss, and Gumbel-perturbed losses.

As rax's ``approx_t12n`` / ``bound_t12n`` / ``gumbel_t12n``, but for
:mod:`jaxrank.metrics` and padding-invariant:

* :func:`approx_t12n` replaces the hard ranks and cutoffs of a metric by sigmoid
  approximations (Qin et al., 2010) and negates it;
* :func:`bound_t12n` replaces them by hinge bounds (ranks from :math:`\max(0, x + 1)`,
  cutoffs from :math:`1 - \max(0, 1 - x)`), a lower bound of the metric;
* :func:`gumbel_t12n` evaluates a loss (or metric) on ``samples`` Gumbel-perturbed copies
  of the scores (Bruch et al., 2020).

A metric qualifies when it takes ``method=`` (every :mod:`jaxrank.metrics` metric computed
from ranks: :func:`~jaxrank.metrics.dcg`, :func:`~jaxrank.metrics.ndcg`,
:func:`~jaxrank.metrics.precision`, :func:`~jaxrank.metrics.recall`,
:func:`~jaxrank.metrics.r_precision`, :func:`~jaxrank.metrics.f_measure`,
:func:`~jaxrank.metrics.success`, :func:`~jaxrank.metrics.reciprocal_rank`,
:func:`~jaxrank.metrics.average_precision`, :func:`~jaxrank.metrics.err`,
:func:`~jaxrank.metrics.rbp`, :func:`~jaxrank.metrics.bpref`, ...): the transformation
passes a rank relaxation as ``method``, under which the metric sees smooth positions.
With ranks :math:`\hat r_i = 1 + \sum_{j \ne i \text{ valid}} f(s_j - s_i)` (``f`` the
rank step) an item's position-based terms become:

* discount (DCG, RBP): :math:`d(\hat r_i)\, \hat c_i`, the ideal DCG stays exact;
* "in the top k" (precision, recall, F): the smooth cutoff
  :math:`\hat c_i = g(m - \hat r_i)` with :math:`m` the midpoint of the k-th and
  (k+1)-th smallest :math:`\hat r` (no gradient; 1 when the list has at most k valid
  items), ``g`` the cutoff step;
* counts of items above (AP, bpref, ERR): :math:`\sum_j f(s_j - s_i)\, x_j`;
* the first relevant item (reciprocal rank, success): the relevant item with the
  smallest :math:`\hat r_i`, with its :math:`\hat c_i / \hat r_i` (rax's
  :math:`\max_i \hat c_i / \hat r_i`).

Only valid items enter the sums and the cutoff, so padding changes neither the loss nor
its gradient (rax's cutoff sees the padded list). Work and memory are ``O(n^2)`` per list.

Example:
    >>> import jax, jax.numpy as jnp
    >>> from jaxrank import losses, metrics
    >>> loss_fn = losses.approx_t12n(metrics.ndcg)
    >>> scores, labels = jnp.array([0.0, 1.0, 3.0, 2.0]), jnp.array([0.0, 0.0, 1.0, 2.0])
    >>> round(float(loss_fn(scores, labels, gain="exp2")), 4)  # rax: -0.71789175
    -0.7179
    >>> gumbel = losses.gumbel_t12n(losses.approx_t12n(metrics.reciprocal_rank))
    >>> float(gumbel(scores, labels, key=jax.random.key(0))) < 0
    True
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxrank.losses import _utils as u
from jaxrank.metrics import _utils as mu

Array = u.Array
_RESERVED = ("method", "ties")


class _Relaxed:
    """State of one relaxed list (1-D): smooth ranks and the cutoff step."""

    def __init__(self, ranks, valid, cutoff_step):
        self.ranks, self.valid, self.cutoff_step = ranks, valid, cutoff_step

    def in_cutoff(self, k):
        r, w = self.ranks, self.valid
        if k is None:
            return w.astype(r.dtype)
        n = r.shape[-1]
        a = jnp.where(w, -r, 0.0)
        idx = jnp.arange(n)
        # Stable 1-based order of -r among valid items (as rax's approx_cutoff).
        ahead = (a[None, :] > a[:, None]) | (
            (a[None, :] == a[:, None]) & (idx[None, :] < idx[:, None])
        )
        order = 1 + jnp.sum(ahead & w[None, :], axis=-1)
        pick = w & ((order == k) | (order == k + 1))
        mid = jax.lax.stop_gradient(jnp.sum(jnp.where(pick, a, 0.0)) / 2.0)
        inside = jnp.where(jnp.sum(w) <= k, 1.0, self.cutoff_step(a - mid))
        return jnp.where(w, inside, 0.0)

    def first_relevant(self, rel):
        r, w = self.ranks, self.valid
        is_rel = w & (rel > 0)
        best = jnp.argmin(jnp.where(is_rel, r, jnp.inf))
        probs = jnp.where(jnp.any(is_rel), jax.nn.one_hot(best, r.shape[-1], dtype=r.dtype), 0.0)
        return jnp.where(w, r, 1.0), probs


class _RankRelaxation:
    """A ``method=`` for jaxrank.metrics: smooth ranks from a rank step function."""

    def __init__(self, rank_step: Callable, cutoff_step: Callable, name: str):
        self.rank_step, self.cutoff_step, self.name = rank_step, cutoff_step, name

    def __repr__(self):
        return f"<rank relaxation {self.name}>"

    def layout(self, scores, valid):
        n = scores.shape[-1]
        keep = valid[None, :] & ~jnp.eye(n, dtype=bool)
        # pair[i, j]: (smooth) indicator that item j is placed before item i.
        pair = jnp.where(keep, self.rank_step(scores[None, :] - scores[:, None]), 0.0)
        ranks = 1.0 + jnp.sum(pair, axis=-1)

        def sums(x):
            x = jnp.where(valid, x, 0.0)
            return jnp.sum(pair * x[None, :], axis=-1), x

        start = jnp.where(valid, ranks - 1.0, 0.0)
        relax = _Relaxed(ranks, valid, self.cutoff_step)
        return mu.Layout(start, valid.astype(scores.dtype), valid, sums, relax)


def _metric_loss(metric_fn, relaxation: _RankRelaxation, prefix: str):
    if not callable(metric_fn):
        raise TypeError(f"metric_fn must be callable, got {type(metric_fn).__name__}")
    try:
        params = inspect.signature(metric_fn).parameters
    except (TypeError, ValueError):
        params = {}
    if "method" not in params:
        name = getattr(metric_fn, "__name__", repr(metric_fn))
        raise TypeError(
            f"metric_fn {name} takes no `method` argument: only rank-based jaxrank.metrics "
            "metrics (dcg, ndcg, precision, recall, reciprocal_rank, average_precision, err, "
            "rbp, ...) can be transformed"
        )

    def loss(scores, labels, where=None, *, reduce_fn: u.ReduceFn = jnp.mean, **kwargs):
        for name in _RESERVED:
            if name in kwargs:
                raise TypeError(f"{prefix}: `{name}` is set by the transformation")
        values = metric_fn(scores, labels, where, method=relaxation, **kwargs)
        _, _, w, _ = u.check(scores, labels, where)
        valid = jnp.any(w, axis=-1)
        valid = jnp.broadcast_to(
            valid.reshape(valid.shape + (1,) * (values.ndim - valid.ndim)), values.shape
        )
        return u.reduce(-values, valid, reduce_fn)

    loss.__name__ = f"{prefix}_{getattr(metric_fn, '__name__', 'metric')}"
    loss.__qualname__ = loss.__name__
    loss.__doc__ = (
        f"{prefix}({getattr(metric_fn, '__name__', 'metric')}): the negated metric under "
        f"{relaxation.name} (see jaxrank.losses.{prefix}).\n\n"
        "Call as ``loss(scores, labels, where=None, *, reduce_fn=jnp.mean, **metric_kwargs)``."
    )
    return loss


def approx_t12n(metric_fn: Callable, temperature: float = 1.0) -> Callable[..., Array]:
    r"""Turns a rank-based :mod:`jaxrank.metrics` metric into a smooth loss (rax
    ``approx_t12n``).

    Ranks and cutoffs use the sigmoid step :math:`\sigma(x / T)`:

    .. math::
        \hat r_i = 1 + \sum_{j \ne i,\ \text{valid}} \sigma\!\left(\frac{s_j - s_i}{T}\right),
        \qquad \hat c_i = \sigma\!\left(\frac{m - \hat r_i}{T}\right)

    (see the module docstring for how each metric uses them). The loss is
    :math:`-\text{metric}`, reduced over lists with at least one valid item.

    Args:
      metric_fn: a metric taking ``method=`` (e.g. :func:`jaxrank.metrics.ndcg`).
      temperature: :math:`T > 0`; smaller is closer to the hard metric, with steeper
        gradients.

    Returns:
      ``loss(scores [..., n], labels [..., n], where=None, *, reduce_fn=jnp.mean,
      **metric_kwargs)``: ``[...]`` for ``reduce_fn=None``, else a scalar. Metric options
      (``k``, ``gain``, ``weights``, ``relevance_level``, ...) pass through; ``method``
      and ``ties`` are set by the transformation.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxrank import losses, metrics
      >>> approx_mrr = losses.approx_t12n(metrics.reciprocal_rank)
      >>> scores, labels = jnp.array([0.0, 1.0, 3.0, 2.0]), jnp.array([0.0, 0.0, 1.0, 2.0])
      >>> round(float(approx_mrr(scores, labels)), 4)  # rax: -0.6965873
      -0.6966
    """
    if isinstance(temperature, int | float) and not temperature > 0:
        raise ValueError(f"approx_t12n: temperature must be > 0, got {temperature}")

    def step(x):
        return jax.nn.sigmoid(x / temperature)

    return _metric_loss(
        metric_fn, _RankRelaxation(step, step, f"sigmoid T={temperature}"), "approx"
    )


def bound_t12n(metric_fn: Callable) -> Callable[..., Array]:
    r"""Turns a rank-based :mod:`jaxrank.metrics` metric into a hinge-bound loss (rax
    ``bound_t12n``).

    .. math::
        \hat r_i = 1 + \sum_{j \ne i,\ \text{valid}} \max(0, s_j - s_i + 1) \ \ge
        \operatorname{rank}_i, \qquad \hat c_i = 1 - \max(0, 1 - (m - \hat r_i))

    Upper-bounding ranks lower-bounds DCG-type metrics; the loss is
    :math:`-\text{metric}`. Arguments and the returned function as :func:`approx_t12n`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxrank import losses, metrics
      >>> bound_mrr = losses.bound_t12n(metrics.reciprocal_rank)
      >>> scores, labels = jnp.array([0.0, 1.0, 3.0, 2.0]), jnp.array([0.0, 1.0, 0.0, 1.0])
      >>> round(float(bound_mrr(scores, labels)), 4)  # rax: -0.33333334
      -0.3333
    """

    def rank_step(x):
        return jax.nn.relu(x + 1.0)

    def cutoff_step(x):
        return 1.0 - jax.nn.relu(1.0 - x)

    return _metric_loss(metric_fn, _RankRelaxation(rank_step, cutoff_step, "hinge bound"), "bound")


# ----------------------------------------------------------------------------- Gumbel


def _accepts(fn, name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params


def _gumbel_noise(key, valid: Array, samples: int, dtype) -> Array:
    """``[samples, ..., n]`` standard Gumbel noise, the same for a valid item wherever
    padding puts it: item ``j`` of list ``b`` draws from ``fold_in(fold_in(key, b), p)``
    with ``p`` its position among the valid items of the list."""
    batch = valid.shape[:-1]
    pos = jnp.cumsum(valid, axis=-1, dtype=jnp.int32) - 1
    lists = jnp.broadcast_to(
        jnp.arange(math.prod(batch), dtype=jnp.int32).reshape((*batch, 1)), valid.shape
    )

    def one(b, p):
        k = jax.random.fold_in(jax.random.fold_in(key, b), p)
        return jax.random.gumbel(k, (samples,), dtype)

    noise = jax.vmap(one)(lists.reshape(-1), pos.reshape(-1))
    return jnp.moveaxis(noise.reshape((*valid.shape, samples)), -1, 0)


def gumbel_t12n(
    loss_or_metric_fn: Callable,
    *,
    samples: int = 8,
    beta: float = 1.0,
    smoothing_factor: float | None = None,
) -> Callable[..., Array]:
    r"""Evaluates a loss or metric on Gumbel-perturbed scores (rax ``gumbel_t12n``).

    Each of ``samples`` copies of the inputs gets scores
    :math:`\tilde s_i = s_i + \beta\, G_i`, :math:`G_i \sim \operatorname{Gumbel}(0, 1)`
    i.i.d. (Bruch et al., 2020: the stochastic treatment of the scores as a
    Plackett-Luce distribution); with ``smoothing_factor`` :math:`\epsilon`,
    :math:`\tilde s \leftarrow \log(\operatorname{softmax}(\tilde s) + \epsilon)` over the
    valid items (``1e-20`` gives TF-Ranking's Gumbel losses). Inputs and every array
    keyword argument (``where``, ``weights``) are repeated along a new leading axis of
    size ``samples``, so a reduced loss averages over samples and lists and
    ``reduce_fn=None`` returns ``[samples, ...]``.

    Masked items stay masked, and the noise of a valid item depends only on ``key``, its
    list's index and its position among the valid items of its list, so padding changes
    neither the loss nor its gradient (rax draws noise for the padded shape). Works for
    any metric-approximation loss (:func:`approx_ndcg_loss`, :func:`neural_ndcg_loss`,
    :func:`soft_rank_ndcg_loss`, :func:`approx_t12n` losses, ...) or metric.

    Args:
      loss_or_metric_fn: ``fn(scores, labels, where=None, **kwargs)``.
      samples: static number of Gumbel samples.
      beta: scale of the noise.
      smoothing_factor: optional :math:`\epsilon > 0` (see above).

    Returns:
      ``fn(scores, labels, where=None, *, key, **kwargs)``; ``key`` is a
      ``jax.random`` key (split once more when ``fn`` itself takes a ``key``).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jaxrank import losses
      >>> loss_fn = losses.gumbel_t12n(losses.approx_ndcg_loss, samples=4)
      >>> scores, labels = jnp.array([0.0, 1.0, 3.0, 2.0]), jnp.array([0.0, 0.0, 1.0, 2.0])
      >>> loss_fn(scores, labels, key=jax.random.key(0), reduce_fn=None).shape
      (4,)
    """
    if not isinstance(samples, int | np.integer) or isinstance(samples, bool) or samples < 1:
        raise ValueError(f"gumbel_t12n: samples must be a positive int, got {samples!r}")
    if smoothing_factor is not None and not smoothing_factor > 0:
        raise ValueError(f"gumbel_t12n: smoothing_factor must be > 0, got {smoothing_factor}")
    inner_key = _accepts(loss_or_metric_fn, "key")

    def repeat(a):
        return jnp.broadcast_to(a, (samples, *jnp.shape(a)))

    def perturbed(scores, labels, where=None, *, key, **kwargs):
        scores, _, w, _ = u.check(scores, labels, where)
        if inner_key:
            key, kwargs["key"] = jax.random.split(key)
        noise = _gumbel_noise(key, w, samples, scores.dtype)
        s = scores[None] + beta * noise
        if smoothing_factor is not None:
            wr = repeat(w)
            s = jnp.where(wr, jnp.log(jnp.exp(u.masked_log_softmax(s, wr)) + smoothing_factor), 0.0)
        kwargs = {
            name: repeat(v) if isinstance(v, jax.Array | np.ndarray) else v
            for name, v in kwargs.items()
        }
        if where is not None:
            kwargs["where"] = repeat(w)
        return loss_or_metric_fn(s, repeat(jnp.asarray(labels)), **kwargs)

    perturbed.__name__ = f"gumbel_{getattr(loss_or_metric_fn, '__name__', 'fn')}"
    perturbed.__qualname__ = perturbed.__name__
    perturbed.__doc__ = (
        f"gumbel_t12n({getattr(loss_or_metric_fn, '__name__', 'fn')}, samples={samples}): "
        "call as ``fn(scores, labels, where=None, *, key, **kwargs)``."
    )
    return perturbed

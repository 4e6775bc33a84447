"""In-graph ranking metrics on padded arrays.

Every metric takes ``scores [..., n]``, ``labels [..., n]`` and an optional boolean
``where [..., n]`` (``False`` marks padding), acts on the last axis, and returns one
float32 value per list (``[...]``; float32 also for bf16/fp16 inputs). Cutoffs ``k`` and
all option strings are static, so every metric works under ``jax.jit`` and
``jax.vmap``. Padding never changes a result.

Conventions:

* **Order**: score descending, ties broken by index ascending (:func:`ranks`);
  ``ties="average"`` gives instead the exact expected metric over uniformly random
  tie-breaking, in closed form over tie groups. Supported by :func:`dcg`, :func:`ndcg`,
  :func:`precision`, :func:`recall`, :func:`r_precision`, :func:`f_measure`,
  :func:`success`, :func:`average_precision`, :func:`reciprocal_rank`, :func:`rbp`,
  :func:`rbp_residual` and :func:`ordered_pair_accuracy`; the others (:func:`err`,
  :func:`bpref`, :func:`interpolated_precision`, :func:`eleven_point_precision`) raise
  ``ValueError`` for ``ties="average"``.
* **Relevance**: binary metrics count ``label >= relevance_level`` (default 1) as
  relevant; :func:`dcg`/:func:`ndcg` use graded gains (``gain="linear"``, the label as
  trec_eval, or ``gain="exp2"``, :math:`2^y - 1` as LightGBM and rax).
* **Differentiable versions**: :func:`jaxrank.losses.approx_t12n` and
  :func:`jaxrank.losses.bound_t12n` turn every metric that takes ``method=`` into a loss
  by passing a rank relaxation as ``method`` (smooth ranks and cutoffs; the ideal DCG
  stays exact).
* **Lists without relevant items** (or without any valid item): ``empty="zero"``
  (default, as rax and trec_eval) scores them 0; ``empty="nan"`` returns NaN, and
  :func:`mean` leaves NaN lists out of the average. :func:`has_relevant` gives the mask
  of lists that have a relevant item.

Example:
    >>> import jax, jax.numpy as jnp
    >>> from jaxrank import metrics
    >>> scores = jnp.array([[0.9, 0.3, 0.5], [0.1, 0.2, 0.3]])
    >>> labels = jnp.array([[2, 0, 1], [0, 0, 0]])
    >>> metrics.ndcg(scores, labels, k=2).tolist()
    [1.0, 0.0]
    >>> ap = jax.jit(metrics.average_precision, static_argnames="empty")
    >>> values = ap(scores, labels, empty="nan")
    >>> float(metrics.mean(values))  # the second list has no relevant item: left out
    1.0
"""

from jaxrank.metrics._ap import (
    average_precision,
    bpref,
    eleven_point_precision,
    interpolated_precision,
)
from jaxrank.metrics._cascade import err, rbp, rbp_residual, reciprocal_rank
from jaxrank.metrics._dcg import dcg, ndcg
from jaxrank.metrics._pairs import ordered_pair_accuracy
from jaxrank.metrics._set import f_measure, precision, r_precision, recall, success
from jaxrank.metrics._utils import has_relevant, mean, ranks

__all__ = [
    "average_precision",
    "bpref",
    "dcg",
    "eleven_point_precision",
    "err",
    "f_measure",
    "has_relevant",
    "interpolated_precision",
    "mean",
    "ndcg",
    "ordered_pair_accuracy",
    "precision",
    "r_precision",
    "ranks",
    "rbp",
    "rbp_residual",
    "recall",
    "reciprocal_rank",
    "success",
]

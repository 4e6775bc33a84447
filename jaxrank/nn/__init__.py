"""Flax NNX ranking heads, optax training and portable export.

* Heads (:mod:`jaxrank.nn._heads`): :class:`MLPScorer`, :class:`CrossEncoderHead`,
  :class:`LateInteractionHead` (+ :func:`maxsim`), :class:`DualEncoderHead`
  (+ :func:`pool_tokens`). Inputs are ``[batch, list, ...]`` with boolean ``where``
  masks; padded items never change the scores of real ones.
* Training (:mod:`jaxrank.nn._train`): :func:`train_step`, :func:`predict`,
  :func:`evaluate`, :func:`fit` (early stopping, progress bar, data parallelism over a
  ``jax.sharding.Mesh``). Losses and metrics are arguments.
* Portability (:mod:`jaxrank.nn._export`): :func:`export_model` / :func:`load_exported`
  (``jax.export``), :func:`save_checkpoint` / :func:`load_checkpoint` (msgpack).

Example:
    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> from jaxrank.nn import MLPScorer
    >>> scorer = MLPScorer(136, hidden=(64, 32), log1p=True, standardize=True,
    ...                    rngs=nnx.Rngs(0))
    >>> scorer(jnp.zeros((4, 10, 136)), where=jnp.ones((4, 10), bool)).shape
    (4, 10)
"""

try:
    import flax  # noqa: F401
    import optax  # noqa: F401
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError(
        f"jaxrank.nn needs flax and optax ({err.name} is missing): pip install 'jaxrank[nn]'"
    ) from err

from jaxrank.nn._export import export_model, load_checkpoint, load_exported, save_checkpoint
from jaxrank.nn._heads import (
    CrossEncoderHead,
    DualEncoderHead,
    FeatureStat,
    LateInteractionHead,
    MLPScorer,
    maxsim,
    pool_tokens,
    signed_log1p,
)
from jaxrank.nn._train import FitResult, LossFn, MetricFn, evaluate, fit, predict, train_step

__all__ = [
    "CrossEncoderHead",
    "DualEncoderHead",
    "FeatureStat",
    "FitResult",
    "LateInteractionHead",
    "LossFn",
    "MLPScorer",
    "MetricFn",
    "evaluate",
    "export_model",
    "fit",
    "load_checkpoint",
    "load_exported",
    "maxsim",
    "pool_tokens",
    "predict",
    "save_checkpoint",
    "signed_log1p",
    "train_step",
]

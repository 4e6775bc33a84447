"""jaxrank: pure, jit-compiled ranking functions for JAX.

Subpackages (each re-exports its public API):

* :mod:`jaxrank.io`       -- TREC runs and qrels, BEIR folders, SVMlight <-> arrays.
* :mod:`jaxrank.eval`     -- trec_eval-exact evaluation of runs, significance tests.
* :mod:`jaxrank.metrics`  -- in-graph ranking metrics on padded arrays.
* :mod:`jaxrank.retrieve` -- BM25 family, TF-IDF, QL, RM3; exact, IVF, PQ and sharded dense search.
* :mod:`jaxrank.topk`     -- streaming and cross-shard top-k merges.
* :mod:`jaxrank.fusion`   -- rank/score fusion, normalizations, learned fusion weights.
* :mod:`jaxrank.soft`     -- differentiable rank, sort and top-k.
* :mod:`jaxrank.losses`   -- learning-to-rank, contrastive and distillation losses.
* :mod:`jaxrank.nn`       -- Flax NNX scoring heads and optax training.
* :mod:`jaxrank.rerank`   -- MaxSim (native CPU kernel + pure JAX), MMR/DPP, token pooling.
* :mod:`jaxrank.quant`    -- int8 / binary codes and quantized scoring.
* :mod:`jaxrank.plot`     -- per-query differences, precision-recall, soft rank plots
  (matplotlib, optional).

Example:
    >>> import jaxrank
    >>> jaxrank.__version__
    '0.1.0'
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("jaxrank")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.1.0"


def native_info() -> dict:
    """Native core status and ISA path; see :func:`jaxrank._native.native_info`."""
    from jaxrank._native import native_info as _info

    return _info()


def export_disabled_checks() -> list:
    """Checks to disable in :func:`jax.export.export` of graphs with jaxrank's native
    kernels; see :func:`jaxrank._native.export_disabled_checks`.

    Example:
        >>> import jax, jax.numpy as jnp, jaxrank
        >>> from jaxrank.quant import int8_scores, quantize_int8
        >>> codes, scales = quantize_int8(jnp.ones((4, 8)))
        >>> exp = jax.export.export(
        ...     jax.jit(lambda q: int8_scores(q, codes, scales)),
        ...     disabled_checks=jaxrank.export_disabled_checks(),
        ... )(jnp.ones((1, 8)))
        >>> exp.call(jnp.ones((1, 8))).shape
        (1, 4)
    """
    from jaxrank._native import export_disabled_checks as _checks

    return _checks()


__all__ = ["__version__", "export_disabled_checks", "native_info"]

"""jaxrank: pure, jit-compiled ranking functions for JAX.

Subpackages (each re-exports its public API):

* :mod:`jaxrank.io`       -- TREC runs and qrels, BEIR folders, SVMlight <-> arrays.
* :mod:`jaxrank.eval`     -- trec_eval-exact evaluation of runs, significance tests.
* :mod:`jaxrank.metrics`  -- in-graph ranking metrics on padded arrays.
* :mod:`jaxrank.retrieve` -- BM25 family, TF-IDF, QL, RM3; exact, IVF and sharded dense search.
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


__all__ = ["__version__", "native_info"]

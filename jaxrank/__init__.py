"""jaxrank: pure, jit-compiled ranking functions for JAX.

Subpackages (each re-exports its public API):

* :mod:`jaxrank.io`      -- TREC runs and qrels, BEIR folders <-> padded arrays.
* :mod:`jaxrank.eval`    -- trec_eval-exact evaluation of runs, significance tests.
* :mod:`jaxrank.rerank`  -- MaxSim late interaction (native CPU kernel + pure JAX).
* :mod:`jaxrank.quant`   -- int8 / binary codes and quantized scoring.

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

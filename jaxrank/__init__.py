"""jaxrank: pure, jit-compiled ranking functions for JAX.

Subpackages (each re-exports its public API):

* :mod:`jaxrank.io`      -- TREC runs and qrels, BEIR folders <-> padded arrays.
* :mod:`jaxrank.eval`    -- trec_eval-exact evaluation of runs, significance tests.

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

__all__ = ["__version__"]

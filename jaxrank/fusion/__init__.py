"""Rank fusion: normalizations, every established fusion method, learned fusion.

* :func:`fuse_arrays` -- arrays in, arrays out: ``[..., M, K]`` doc indices, scores and
  ``where`` per query; union of candidates, normalization, fusion and fused top-K,
  jit-compiled and vmapped over queries (:mod:`jaxrank.fusion._core`).
* :func:`fuse` -- runs in, runs out: ``{qid: {docid: score}}`` dicts,
  :class:`jaxrank.io.Run` objects or TREC files; ``explain=True`` gives each run's
  contribution to each fused document.
* :data:`METHODS` (30, with references in :mod:`jaxrank.fusion._methods`) and
  :data:`NORMALIZATIONS` (11, :mod:`jaxrank.fusion._normalize`), equal to ranx 0.3.21
  and Pyserini where those define them.
* :func:`train` -- the probabilistic methods' parameters from judgments;
  :func:`grid_search` and :func:`learn_weights` -- weights and RRF k chosen on training
  queries, by grid or by gradient on :func:`approx_ndcg` with optax.

Example:
    >>> from jaxrank.fusion import fuse
    >>> bm25 = {"q1": {"d1": 12.0, "d2": 9.5, "d3": 3.0}}
    >>> dense = {"q1": {"d2": 0.91, "d4": 0.85}}
    >>> fused = fuse([bm25, dense], method="rrf")
    >>> list(fused["q1"])
    ['d2', 'd1', 'd4', 'd3']
"""

from jaxrank.fusion._core import fuse_arrays
from jaxrank.fusion._host import FusionInput, fuse, fuse_input, runs_to_arrays, to_dict, to_run
from jaxrank.fusion._methods import METHODS, canonical_method
from jaxrank.fusion._normalize import NORMALIZATIONS, canonical_norm, normalize
from jaxrank.fusion._optimize import approx_ndcg, grid_search, learn_weights
from jaxrank.fusion._train import TRAINED, qrels_to_dict, train

__all__ = [
    "METHODS",
    "NORMALIZATIONS",
    "TRAINED",
    "FusionInput",
    "approx_ndcg",
    "canonical_method",
    "canonical_norm",
    "fuse",
    "fuse_arrays",
    "fuse_input",
    "grid_search",
    "learn_weights",
    "normalize",
    "qrels_to_dict",
    "runs_to_arrays",
    "to_dict",
    "to_run",
    "train",
]

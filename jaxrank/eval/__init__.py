"""Evaluation of runs against qrels, exactly as trec_eval 10.0 computes it.

* :func:`evaluate` -- every trec_eval measure (``all_trec``), its parameters and
  options (``-l``, ``-c``, ``-M``); :class:`Evaluation` prints trec_eval's output format
  and JSON/CSV/Markdown.
* :mod:`jaxrank.eval` significance tests compare systems per query.
"""

from jaxrank.eval._measures import ALL_TREC, MEASURES, OFFICIAL
from jaxrank.eval._trec_eval import Evaluation, MeasureSpec, evaluate, parse_measures

__all__ = [
    "ALL_TREC",
    "MEASURES",
    "OFFICIAL",
    "Evaluation",
    "MeasureSpec",
    "evaluate",
    "parse_measures",
]

"""Evaluation of runs against qrels, exactly as trec_eval 10.0 computes it.

* :func:`evaluate` -- every trec_eval measure (``all_trec``), its parameters and
  options (``-l``, ``-c``, ``-M``); :class:`Evaluation` prints trec_eval's output format
  and JSON/CSV/Markdown.
* :func:`build_arrays` / :func:`evaluate_arrays` -- the common measures (map, nDCG@k,
  P@k, recall@k, RR) jit-compiled on padded arrays, ranking by counting, not sorting.
* :func:`compare` -- paired t-test, Fisher randomization test, bootstrap CIs and
  Holm/Bonferroni correction across systems.
"""

from jaxrank.eval._arrays import EvalArrays, build_arrays, evaluate_arrays
from jaxrank.eval._compare import Comparison, compare
from jaxrank.eval._measures import ALL_TREC, MEASURES, OFFICIAL
from jaxrank.eval._significance import (
    bonferroni,
    bootstrap_ci,
    holm,
    paired_t_test,
    randomization_test,
    student_t_sf,
)
from jaxrank.eval._trec_eval import Evaluation, MeasureSpec, evaluate, parse_measures

__all__ = [
    "ALL_TREC",
    "MEASURES",
    "OFFICIAL",
    "Comparison",
    "EvalArrays",
    "Evaluation",
    "MeasureSpec",
    "bonferroni",
    "bootstrap_ci",
    "build_arrays",
    "compare",
    "evaluate",
    "evaluate_arrays",
    "holm",
    "paired_t_test",
    "parse_measures",
    "randomization_test",
    "student_t_sf",
]

"""Compare several runs against a baseline with significance tests.

Example:
    >>> from jaxrank.io import Qrels, Run
    >>> from jaxrank.eval import compare
    >>> qrels = Qrels.from_dict({f"q{i}": {"a": 1} for i in range(6)})
    >>> base = Run.from_dict({f"q{i}": {"a": 0.1, "b": 0.9} for i in range(6)}, name="base")
    >>> better = Run.from_dict({f"q{i}": {"a": 0.9, "b": 0.1} for i in range(6)}, name="new")
    >>> rows = compare(qrels, [base, better], ["recip_rank"], trials=999).rows
    >>> rows[1]["run"], rows[1]["mean"], rows[1]["diff"]
    ('new', 1.0, 0.5)
    >>> round(rows[1]["p_randomization"], 2)  # exact: 2 of 2^6 sign patterns = 0.031
    0.03
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from jaxrank.eval._significance import (
    bonferroni,
    bootstrap_ci,
    holm,
    paired_t_test,
    randomization_test,
)
from jaxrank.eval._trec_eval import evaluate
from jaxrank.io import Qrels, Run

__all__ = ["Comparison", "compare"]


@dataclass
class Comparison:
    """One row per (measure, run): mean, difference to the baseline and p-values."""

    rows: list[dict]
    num_queries: int
    correction: str

    def format_table(self) -> str:
        head = (
            "| measure | run | mean | diff | t-test p | randomization p | "
            f"95% CI of diff | adjusted p ({self.correction}) |"
        )
        out = [head, "|---|---|---:|---:|---:|---:|---:|---:|"]
        for r in self.rows:
            if r["diff"] is None:
                out.append(
                    f"| {r['measure']} | {r['run']} (baseline) | {r['mean']:.4f} | | | | | |"
                )
                continue
            ci = f"[{r['ci_low']:+.4f}, {r['ci_high']:+.4f}]"
            out.append(
                f"| {r['measure']} | {r['run']} | {r['mean']:.4f} | {r['diff']:+.4f} | "
                f"{_p(r['p_ttest'])} | {_p(r['p_randomization'])} | {ci} | {_p(r['p_adjusted'])} |"
            )
        return "\n".join(out) + "\n"

    def format_json(self) -> str:
        return json.dumps({"num_q": self.num_queries, "rows": self.rows}, indent=2) + "\n"

    def format_csv(self) -> str:
        import csv

        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(self.rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(self.rows)
        return buf.getvalue()


def _p(p) -> str:
    return "" if p is None else ("nan" if p != p else f"{p:.4f}")


def compare(
    qrels: Qrels,
    runs: Sequence[Run],
    measures: Sequence[str] = ("map", "ndcg_cut.10"),
    *,
    trials: int = 10_000,
    confidence: float = 0.95,
    correction: str = "holm",
    seed: int = 0,
    **eval_options,
) -> Comparison:
    """Compare ``runs[1:]`` with the baseline ``runs[0]`` on every measure.

    Per-query values come from :func:`evaluate` on the queries all runs share (the
    paired tests need aligned queries); each non-baseline run gets the paired t-test,
    Fisher's randomization test, a bootstrap CI of the mean difference, and a p-value
    adjusted across all (measure, run) comparisons with ``correction``
    (``"holm"``, ``"bonferroni"`` or ``"none"``).
    """
    if len(runs) < 2:
        raise ValueError(f"compare needs a baseline and at least one other run, got {len(runs)}")
    if correction not in ("holm", "bonferroni", "none"):
        raise ValueError(f"correction must be holm, bonferroni or none, got {correction!r}")
    results = [evaluate(qrels, r, measures, **eval_options) for r in runs]
    common = set(results[0].query_ids)
    for res in results[1:]:
        common &= set(res.query_ids)
    qids = sorted(common, key=lambda s: s.encode())
    if len(qids) < 2:
        raise ValueError("the runs share fewer than 2 evaluated queries")

    def aligned(res, label):
        pos = {q: i for i, q in enumerate(res.query_ids)}
        return res.per_query[label][[pos[q] for q in qids]].astype(np.float64)

    rows: list[dict] = []
    labels = [lab for lab in results[0].per_query if lab in results[0].summary]
    for label in labels:
        base = aligned(results[0], label)
        rows.append(_row(label, runs[0].name, base, None))
        for run, res in zip(runs[1:], results[1:], strict=True):
            vals = aligned(res, label)
            t, p_t = paired_t_test(vals, base)
            lo, hi = bootstrap_ci(vals, base, confidence=confidence, trials=trials, seed=seed)
            row = _row(label, run.name, vals, base)
            row.update(
                t=t,
                p_ttest=p_t,
                p_randomization=randomization_test(vals, base, trials=trials, seed=seed),
                ci_low=lo,
                ci_high=hi,
            )
            rows.append(row)
    tested = [r for r in rows if r["diff"] is not None]
    pvals = np.array([r["p_ttest"] for r in tested])
    pvals = np.where(np.isnan(pvals), 1.0, pvals)
    adjusted = {"holm": holm, "bonferroni": bonferroni, "none": lambda p: p}[correction](pvals)
    for r, p in zip(tested, adjusted.tolist(), strict=True):
        r["p_adjusted"] = p
    return Comparison(rows, len(qids), correction)


def _row(label, name, vals, base):
    return {
        "measure": label,
        "run": name,
        "mean": float(vals.mean()),
        "diff": None if base is None else float((vals - base).mean()),
        "t": None,
        "p_ttest": None,
        "p_randomization": None,
        "ci_low": None,
        "ci_high": None,
        "p_adjusted": None,
    }

"""trec_eval-exact evaluation of a run against qrels.

:func:`evaluate` reproduces trec_eval 10.0: the same queries evaluated, the same ranking
(score as C ``float`` descending, then document id descending), the same measure
definitions and parameters (``-m P.5,10``, ``-m ndcg.1=3,2=9``), relevance level
(``-l``), ``-c`` and ``-M``, and :meth:`Evaluation.format_trec` prints its output byte
for byte. Work is chunked over queries so memory stays bounded for large runs.

Example:
    >>> from jaxrank.io import Qrels, Run
    >>> from jaxrank.eval import evaluate
    >>> qrels = Qrels.from_dict({"q1": {"d1": 1, "d3": 2}})
    >>> run = Run.from_dict({"q1": {"d1": 0.9, "d2": 0.8, "d3": 0.1}}, name="demo")
    >>> result = evaluate(qrels, run, ["map", "P.1,2", "ndcg_cut.3"])
    >>> result.summary["map"]  # (1/1 + 2/3) / 2
    0.8333333333333333
    >>> result.summary["ndcg_cut_3"]  # DCG 1 + 2/log2(4) = 2; ideal 2 + 1/log2(3)
    0.7601875...
    >>> print(result.format_trec(), end="")  # doctest: +NORMALIZE_WHITESPACE
    map                     all     0.8333
    P_1                     all     1.0000
    P_2                     all     0.5000
    ndcg_cut_3              all     0.7602
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from jaxrank._progress import progress
from jaxrank.eval._measures import ALL_TREC, MEASURES, OFFICIAL, Measure, _Ctx
from jaxrank.eval._ranking import rank_queries
from jaxrank.io import Qrels, Run
from jaxrank.io._trec import no_gc

__all__ = ["Evaluation", "MeasureSpec", "evaluate", "parse_measures"]


@dataclass(frozen=True)
class MeasureSpec:
    """A measure with its parameters and the labels it prints under."""

    measure: Measure
    params: tuple | dict
    suffix: str  # "" for default parameters, else "_" + parameter text (non-cut measures)

    @property
    def labels(self) -> list[str]:
        m = self.measure
        if m.params == "cut_long":
            return [f"{m.name}_{k}" for k in self.params]
        if m.params == "cut_double":
            return [f"{m.name}_{v:3.2f}" for v in self.params]
        return [m.name + self.suffix]


def parse_measures(specs: Sequence[str] | str) -> list[MeasureSpec]:
    """Parse trec_eval ``-m`` arguments into :class:`MeasureSpec` objects.

    Accepts ``all_trec``, ``official``, a measure name (``map``), or a name with
    parameters after a dot: cutoffs (``P.5,10``, ``iprec_at_recall..25,.5``), numbers
    (``utility.2,-1,0,0``) or ``level=gain`` pairs (``ndcg.1=3,2=9``, ``rbp.p=0.8``).
    Specs are returned in trec_eval's measure order; a later spec of the same measure
    replaces an earlier one.
    """
    if isinstance(specs, str):
        specs = [specs]
    chosen: dict[str, MeasureSpec] = {}
    for spec in specs:
        if spec in ("all_trec", "all"):
            for name in ALL_TREC:
                chosen.setdefault(name, _default_spec(MEASURES[name]))
            continue
        if spec == "official":
            for name in OFFICIAL:
                chosen.setdefault(name, _default_spec(MEASURES[name]))
            continue
        name, _, text = spec.partition(".")
        if name not in MEASURES:
            known = ", ".join(sorted(MEASURES))
            raise ValueError(f"unknown measure {name!r} (known: all_trec, official, {known})")
        m = MEASURES[name]
        chosen[name] = _parse_params(m, text) if text else _default_spec(m)
    return [chosen[n] for n in MEASURES if n in chosen]


def _default_spec(m: Measure) -> MeasureSpec:
    if m.params == "pairs":
        return MeasureSpec(m, {}, "")
    return MeasureSpec(m, tuple(m.default), "")


def _parse_params(m: Measure, text: str) -> MeasureSpec:
    if m.params is None:
        raise ValueError(f"measure {m.name!r} takes no parameters, got {text!r}")
    items = [t for t in text.split(",") if t != ""]
    try:
        if m.params == "cut_long":
            cuts = sorted({int(float(t)) for t in items})
            if not cuts or cuts[0] <= 0:
                raise ValueError
            return MeasureSpec(m, tuple(cuts), "")
        if m.params == "cut_double":
            return MeasureSpec(m, tuple(sorted({float(t) for t in items})), "")
        if m.params == "doubles":
            values = tuple(float(t) for t in items)
            if m.name == "utility" and len(values) != 4:
                raise ValueError
            return MeasureSpec(m, values, "_" + text)
        pairs = {}
        for t in items:
            key, eq, value = t.partition("=")
            if not eq:
                raise ValueError
            pairs[key] = float(value)
        return MeasureSpec(m, pairs, "_" + text)
    except ValueError:
        raise ValueError(f"bad parameters {text!r} for measure {m.name!r}") from None


@dataclass
class Evaluation:
    """Result of :func:`evaluate`.

    Attributes:
        query_ids: evaluated queries, in trec_eval's (``strcmp``) order.
        per_query: ``{label: [Q] array}`` per-query values (not for ``gm_*`` measures,
            which trec_eval reports only as summaries).
        summary: ``{label: value}`` over all evaluated queries ("all" in trec_eval).
        run_name: the run's tag.
    """

    query_ids: list[str]
    per_query: dict[str, np.ndarray]
    summary: dict[str, float | int]
    run_name: str
    _int_labels: set = field(default_factory=set, repr=False)
    _show_runid: bool = field(default=True, repr=False)
    _show_num_q: bool = field(default=True, repr=False)

    @property
    def num_queries(self) -> int:
        return len(self.query_ids)

    def format_trec(self, per_query: bool = False) -> str:
        """trec_eval's text output (``-q`` adds the per-query lines)."""
        out = []
        if per_query:
            for i, q in enumerate(self.query_ids):
                out.extend(self._line(lab, q, vals[i]) for lab, vals in self.per_query.items())
        if self._show_runid:
            out.append(f"{'runid':<22}\tall\t{self.run_name}\n")
        if self._show_num_q:
            out.append(f"{'num_q':<22}\tall\t{self.num_queries}\n")
        out.extend(self._line(lab, "all", v) for lab, v in self.summary.items())
        return "".join(out)

    def _line(self, label: str, qid: str, value) -> str:
        if label in self._int_labels:
            return f"{label:<22}\t{qid}\t{int(value)}\n"
        return f"{label:<22}\t{qid}\t{float(value):6.4f}\n"

    def to_dict(self) -> dict:
        """``{"run": name, "num_q": Q, "all": {...}, "per_query": {qid: {...}}}``."""
        per = {
            q: {lab: _py(vals[i]) for lab, vals in self.per_query.items()}
            for i, q in enumerate(self.query_ids)
        }
        summary = {lab: _py(v) for lab, v in self.summary.items()}
        return {"run": self.run_name, "num_q": self.num_queries, "all": summary, "per_query": per}

    def format_json(self, per_query: bool = False) -> str:
        d = self.to_dict()
        if not per_query:
            d.pop("per_query")
        return json.dumps(d, indent=2) + "\n"

    def format_csv(self, per_query: bool = False) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["run", "query", "measure", "value"])
        if per_query:
            for i, q in enumerate(self.query_ids):
                for lab, vals in self.per_query.items():
                    w.writerow([self.run_name, q, lab, _py(vals[i])])
        for lab, v in self.summary.items():
            w.writerow([self.run_name, "all", lab, _py(v)])
        return buf.getvalue()

    def format_table(self) -> str:
        """A two-column Markdown table of the summary values."""
        rows = [f"| measure | {self.run_name} |", "|---|---:|"]
        for lab, v in self.summary.items():
            text = str(int(v)) if lab in self._int_labels else f"{float(v):.4f}"
            rows.append(f"| {lab} | {text} |")
        return "\n".join(rows) + "\n"


def _py(v):
    v = v.item() if isinstance(v, np.generic) else v
    return None if isinstance(v, float) and math.isnan(v) else v


def evaluate(
    qrels: Qrels,
    run: Run,
    measures: Sequence[str] | str = ("official",),
    *,
    relevance_level: int = 1,
    average_complete: bool = False,
    max_docs: int | None = None,
    num_docs_in_coll: int = 0,
) -> Evaluation:
    """Evaluate ``run`` against ``qrels`` exactly as trec_eval 10.0 does.

    Args:
        qrels: judgments (:func:`jaxrank.io.read_qrels`).
        run: ranked results (:func:`jaxrank.io.read_run`).
        measures: trec_eval ``-m`` specs (see :func:`parse_measures`).
        relevance_level: judgments ``>=`` this are relevant (``-l``).
        average_complete: average over every qrels query, evaluating queries missing
            from the run as empty rankings (``-c``).
        max_docs: evaluate at most this many documents per query (``-M``).
        num_docs_in_coll: collection size for ``utility``'s fourth coefficient (``-N``).

    Returns:
        An :class:`Evaluation`; ``summary`` holds the "all" values.
    """
    specs = parse_measures(measures)
    labels: list[str] = []
    int_labels: set[str] = set()
    show_runid = any(s.measure.kind == "runid" for s in specs)
    show_num_q = any(s.measure.kind == "num_q" for s in specs)
    specs = [s for s in specs if s.measure.kind not in ("runid", "num_q")]
    for s in specs:
        labels.extend(s.labels)
        if s.measure.kind == "count":
            int_labels.update(s.labels)
    chunks_q: list[np.ndarray] = []
    chunk_vals: dict[str, list[np.ndarray]] = {lab: [] for lab in labels}
    chunks = rank_queries(
        qrels,
        run,
        relevance_level=relevance_level,
        average_complete=average_complete,
        max_docs=max_docs,
    )
    with no_gc():
        _evaluate_chunks(chunks, specs, chunks_q, chunk_vals, num_docs_in_coll)
    query_ids = [q for c in chunks_q for q in c.tolist()]
    per_query = {lab: np.concatenate(v) for lab, v in chunk_vals.items()}
    summary: dict[str, float | int] = {}
    gm_labels = set()
    for s in specs:
        for lab in s.labels:
            vals = per_query[lab]
            if s.measure.kind == "count":
                summary[lab] = int(vals.sum())
            elif s.measure.kind == "gm":
                summary[lab] = float(np.exp(vals.sum() / len(vals)))
                gm_labels.add(lab)
            else:
                summary[lab] = float(vals.sum() / len(vals))
    for lab in gm_labels:
        del per_query[lab]
    return Evaluation(query_ids, per_query, summary, run.name, int_labels, show_runid, show_num_q)


def _evaluate_chunks(chunks, specs, chunks_q, chunk_vals, num_docs_in_coll) -> None:
    for rr in progress(chunks, desc="evaluating"):
        ctx = _Ctx(rr)
        chunks_q.append(rr.query_ids)
        for s in specs:
            if s.measure.name == "utility":
                vals = s.measure.fn(ctx, s.params, num_docs_in_coll)
            else:
                vals = s.measure.fn(ctx, s.params)
            vals = np.asarray(vals)
            if vals.ndim == 1:
                chunk_vals[s.labels[0]].append(vals)
            else:
                for j, lab in enumerate(s.labels):
                    chunk_vals[lab].append(vals[:, j])

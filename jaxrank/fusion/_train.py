"""Training the probabilistic fusion methods from relevance judgments (ranx's estimators).

Each estimator looks at each run's *hit list* per judged query -- ``hit[i] = 1`` when
the document at rank ``i`` (0-based) is relevant (judgment ≥ 1) -- and returns the
parameters :func:`jaxrank.fusion.fuse` takes:

* ``posfuse`` / ``slidefuse``: ``probs[m, i]`` = mean of ``hit[i]`` over the queries
  whose list is longer than ``i`` (Lillis et al. 2010, 2008);
* ``probfuse``: per query the list is cut into ``n_segments`` segments of
  ``ceil(n / n_segments)`` documents; ``probs[m, s]`` = mean over queries of the
  segment's precision (Lillis et al. 2006);
* ``segfuse``: segments ``[0, 5), [5, 15), [15, 35), ...`` (sizes ``10·2^(k-1) - 5``
  boundaries); ``probs[m, s]`` = mean over queries of hits / segment size (Shokouhi 2007);
* ``mapfuse``: ``map_scores[m]`` = the run's mean average precision;
* ``bayesfuse``: ``log_odds[m, i]`` = log-odds of the mean precision of the segment of
  cut-offs ``0, 5, 10, 15, 20, 30, 100, 200, 500, 1000`` holding rank ``i``, with
  0 and 1 moved by 0.001 (Aslam & Montague 2001).

Queries judged but absent from a run are skipped for that run (ranx requires equal
query sets); ranks follow :func:`jaxrank.fusion.fuse`'s ``rank_from``.

Example:
    >>> from jaxrank.fusion import train
    >>> runs = [{"q": {"a": 2.0, "b": 1.0}}, {"q": {"b": 3.0, "c": 1.0}}]
    >>> train("posfuse", runs, {"q": {"b": 1}})["probs"].tolist()
    [[0.0, 1.0], [1.0, 0.0]]
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from jaxrank.fusion._host import FusionInput, runs_to_arrays

TRAINED = ("posfuse", "probfuse", "segfuse", "slidefuse", "mapfuse", "bayesfuse")
_BAYES_CUTOFFS = (0, 5, 10, 15, 20, 30, 100, 200, 500, 1000)


def qrels_to_dict(qrels: Any) -> dict[str, dict[str, int]]:
    """``{qid: {docid: relevance}}`` from a dict or a :class:`jaxrank.io.Qrels`."""
    if isinstance(qrels, Mapping):
        return {str(q): {str(d): int(r) for d, r in v.items()} for q, v in qrels.items()}
    if hasattr(qrels, "offsets") and hasattr(qrels, "relevance"):
        out: dict[str, dict[str, int]] = {}
        for i, q in enumerate(np.asarray(qrels.query_ids).astype(str)):
            a, b = int(qrels.offsets[i]), int(qrels.offsets[i + 1])
            docs = np.asarray(qrels.doc_ids[a:b]).astype(str)
            rels = np.asarray(qrels.relevance[a:b]).tolist()
            out[str(q)] = dict(zip(docs.tolist(), rels, strict=True))
        return out
    raise TypeError(f"qrels must be a dict or a jaxrank.io.Qrels, got {type(qrels).__name__}")


def _order(x: FusionInput, rank_from: str) -> np.ndarray:
    """[Q, M, K] positions of entries sorted by rank (padding last)."""
    if rank_from == "file":
        key = np.where(x.where, x.ranks, np.iinfo(np.int64).max)
        return np.argsort(key, axis=-1, kind="stable")
    # score descending, then doc index (= doc id) descending
    big = np.where(x.where, -x.scores, np.inf)
    return np.lexsort((-x.doc_ids.astype(np.int64), big), axis=-1)


def hit_lists(x: FusionInput, qrels: Any, rank_from: str = "score"):
    """Per run: ``(hits [Q, K] in rank order, lengths [Q], judged [Q] bool)``."""
    qd = qrels_to_dict(qrels)
    order = _order(x, rank_from)
    docs = np.take_along_axis(x.doc_ids, order, axis=-1)
    ok = np.take_along_axis(x.where, order, axis=-1)
    vocab_pos = {d: i for i, d in enumerate(x.vocab.tolist())}
    rel = np.zeros(x.doc_ids.shape, bool)
    judged = np.zeros(len(x.query_ids), bool)
    for qi, q in enumerate(x.query_ids.tolist()):
        if q not in qd:
            continue
        judged[qi] = True
        good = [vocab_pos[d] for d, r in qd[q].items() if r >= 1 and d in vocab_pos]
        if good:
            rel[qi] = np.isin(docs[qi], good) & ok[qi]
    lengths = x.where.sum(-1)  # [Q, M]
    return [(rel[:, m], lengths[:, m], judged & (lengths[:, m] > 0)) for m in range(rel.shape[1])]


def _posprobs(hits, lengths, judged):
    h, n = hits[judged], lengths[judged]
    K = h.shape[1]
    den = (n[:, None] > np.arange(K)).sum(0)
    num = h.sum(0)
    L = int(n.max()) if n.size else 0
    return (num[:L] / np.maximum(den[:L], 1)).astype(np.float64)


def _probfuse(hits, lengths, judged, n_segments):
    h, n = hits[judged], lengths[judged]
    out = np.zeros(n_segments)
    for row, length in zip(h, n, strict=True):
        size = math.ceil(length / n_segments)
        for s in range(n_segments):
            seg = row[s * size : min((s + 1) * size, length)]
            if seg.size:
                out[s] += seg.sum() / seg.size
    return out / max(len(h), 1)


def _segfuse(hits, lengths, judged):
    bounds = [0] + [10 * 2 ** (k - 1) - 5 for k in range(1, 11)]
    h, n = hits[judged], lengths[judged]
    out = np.zeros(len(bounds) - 1)
    for row, length in zip(h, n, strict=True):
        for s in range(len(bounds) - 1):
            a, b = bounds[s], bounds[s + 1]
            out[s] += row[a : min(b, length)].sum() / (b - a)
    return out / max(len(h), 1)


def _bayes(hits, lengths, judged):
    h, n = hits[judged], lengths[judged]
    odds = np.zeros(_BAYES_CUTOFFS[-1])
    for a, b in itertools.pairwise(_BAYES_CUTOFFS):
        p = 0.0
        for row, length in zip(h, n, strict=True):
            p += row[a : min(b, length)].sum() / (b - a) / len(h)
        p = p + 0.001 if p == 0 else p
        q = 1 - p
        q = q + 0.001 if q == 0 else q
        odds[a:b] = np.log(p / q)
    return odds


def _map(hits, lengths, judged, n_rel):
    aps = []
    for row, nr in zip(hits[judged], n_rel[judged], strict=True):
        if nr == 0:
            aps.append(0.0)
            continue
        pos = np.flatnonzero(row)
        aps.append(float(np.sum((np.arange(pos.size) + 1) / (pos + 1)) / nr))
    return float(np.mean(aps)) if aps else 0.0


def train(
    method: str,
    runs: Sequence[Any] | FusionInput,
    qrels: Any,
    *,
    rank_from: str = "score",
    n_segments: int = 10,
) -> dict[str, Any]:
    """Estimate a probabilistic method's parameters from judged queries.

    Args:
      method: one of ``posfuse, probfuse, segfuse, slidefuse, mapfuse, bayesfuse``.
      runs: the runs to fuse later (dicts, :class:`jaxrank.io.Run`, paths) or a
        :class:`FusionInput`.
      qrels: ``{qid: {docid: relevance}}`` or a :class:`jaxrank.io.Qrels`.
      rank_from: as in :func:`jaxrank.fusion.fuse`.
      n_segments: ``probfuse``'s number of segments.

    Returns:
      keyword arguments for :func:`jaxrank.fusion.fuse` (``probs``, ``map_scores`` or
      ``log_odds``; ``probs`` padded with zeros to a common length).
    """
    if method not in TRAINED:
        raise ValueError(f"method={method!r} is not a trained method ({', '.join(TRAINED)})")
    x = runs if isinstance(runs, FusionInput) else runs_to_arrays(runs)
    lists = hit_lists(x, qrels, rank_from)
    if method in ("posfuse", "slidefuse"):
        per = [_posprobs(*hl) for hl in lists]
    elif method == "probfuse":
        if n_segments < 1:
            raise ValueError(f"n_segments must be >= 1, got {n_segments}")
        per = [_probfuse(*hl, n_segments) for hl in lists]
    elif method == "segfuse":
        per = [_segfuse(*hl) for hl in lists]
    elif method == "bayesfuse":
        return {"log_odds": np.stack([_bayes(*hl) for hl in lists])}
    else:
        qd = qrels_to_dict(qrels)
        n_rel = np.array(
            [sum(r >= 1 for r in qd.get(q, {}).values()) for q in x.query_ids.tolist()]
        )
        return {"map_scores": np.array([_map(*hl, n_rel) for hl in lists])}
    L = max(p.size for p in per)
    return {"probs": np.stack([np.pad(p, (0, L - p.size)) for p in per])}

"""Turn a run and qrels into trec_eval's per-query ranked relevance lists.

trec_eval orders each query's documents by score descending, then by document id
descending (``strcmp``), with scores held as C ``float``; it ignores the rank column.
It then looks every retrieved document up in the qrels:

* judged (relevance >= 0)           -> the judgment value,
* in the qrels with relevance < 0   -> ``UNJUDGED`` (-2): in the pool but not judged,
* absent from the qrels             -> ``NONPOOL`` (-1).

:class:`RankedRels` holds a chunk of queries as a dense ``[B, N]`` matrix of those
values (``PAD`` past each query's ``num_ret``), plus per-query judgment counts, which is
all any trec_eval measure needs. Everything is vectorized with numpy; the only Python
loop over entries re-orders groups of tied scores by document id.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from jaxrank.io import Qrels, Run

NONPOOL = -1
UNJUDGED = -2
PAD = -(1 << 30)

__all__ = ["NONPOOL", "PAD", "UNJUDGED", "RankedRels", "rank_queries"]


@dataclass(frozen=True)
class RankedRels:
    """A chunk of evaluated queries.

    Attributes:
        query_ids: ``[B]`` query ids.
        rel: ``[B, N]`` int64 relevance of the document at each rank (``NONPOOL``,
            ``UNJUDGED`` or the judgment), ``PAD`` past ``num_ret``.
        num_ret: ``[B]`` documents retrieved (after ``max_docs``).
        rel_levels: ``[B, L]`` number of judged documents at each level ``0..L-1``.
        relevance_level: judgments ``>=`` this count as relevant (trec_eval ``-l``).
        scores: ``[B, N]`` float32 scores at each rank (0 past ``num_ret``).
    """

    query_ids: np.ndarray
    rel: np.ndarray
    num_ret: np.ndarray
    rel_levels: np.ndarray
    relevance_level: int
    scores: np.ndarray | None = None

    @property
    def num_rel(self) -> np.ndarray:
        return self.rel_levels[:, self.relevance_level :].sum(axis=1)

    @property
    def isrel(self) -> np.ndarray:
        return self.rel >= self.relevance_level

    @property
    def num_rel_ret(self) -> np.ndarray:
        return self.isrel.sum(axis=1)


def _orderable_f32(scores: np.ndarray) -> np.ndarray:
    """int64 keys ordered like the float32 values of ``scores`` (as trec_eval's C float)."""
    bits = scores.astype(np.float32).view(np.int32).astype(np.int64)
    return np.where(bits < 0, -(bits & 0x7FFFFFFF), bits)


def _sorted_order(run: Run, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Entry order for the queries ``rows`` of ``run``: (entry indices, query-local row).

    Within each query: score (float32) descending, then doc id descending.
    """
    starts, ends = run.offsets[rows], run.offsets[rows + 1]
    lengths = ends - starts
    local = np.repeat(np.arange(len(rows), dtype=np.int64), lengths)
    entries = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(
        lengths.sum(), dtype=np.int64
    )
    key = (local << 33) + ((1 << 32) - _orderable_f32(run.scores[entries]))
    order = np.argsort(key, kind="stable")
    entries, key = entries[order], key[order]
    # Tied (query, score) groups: re-order by doc id descending, as trec_eval's qsort.
    tied = np.flatnonzero(key[1:] == key[:-1])
    if len(tied):
        first = tied[np.r_[True, tied[1:] != tied[:-1] + 1]]
        last = tied[np.r_[tied[1:] != tied[:-1] + 1, True]] + 1
        docs = run.doc_ids
        for a, b in zip(first.tolist(), last.tolist(), strict=True):
            group = entries[a : b + 1]
            entries[a : b + 1] = sorted(group.tolist(), key=docs.__getitem__, reverse=True)
    return entries, local[order]


_ABSENT = PAD - 1


def _lookup(run: Run, entries, local, B, qids, judged_dicts, qrow) -> np.ndarray:
    """trec_eval relevance value of each (sorted) run entry; refuses duplicate documents."""
    out = np.full(len(entries), NONPOOL, dtype=np.int64)
    bounds = np.searchsorted(local, np.arange(B + 1))
    for b in range(B):
        lo, hi = int(bounds[b]), int(bounds[b + 1])
        if lo == hi:
            continue
        docs = run.doc_ids[entries[lo:hi]].tolist()
        if len(set(docs)) != len(docs):
            raise ValueError(
                f"run: document {_first_duplicate(docs)!r} appears more than once for query "
                f"{qids[b]!r} (trec_eval refuses such runs)"
            )
        get = judged_dicts[qrow[b]].get
        out[lo:hi] = [get(d, _ABSENT) for d in docs]
    absent = out == _ABSENT
    out[(out < 0) & ~absent] = UNJUDGED  # in the qrels with a negative judgment
    out[absent] = NONPOOL
    return out


def rank_queries(
    qrels: Qrels,
    run: Run,
    *,
    relevance_level: int = 1,
    average_complete: bool = False,
    max_docs: int | None = None,
    chunk_cells: int = 1 << 22,
) -> Iterator[RankedRels]:
    """Yield :class:`RankedRels` chunks for the queries trec_eval evaluates.

    Evaluated queries are the run's queries that have qrels (others are ignored, with a
    warning that counts them), plus -- with ``average_complete`` (trec_eval ``-c``) --
    qrels queries absent from the run, evaluated as empty rankings. Queries come in
    ``strcmp`` order of their ids, as trec_eval prints them. Duplicate documents in a
    query of the run or of the qrels raise ``ValueError`` (trec_eval refuses them too).
    Chunks hold at most about ``chunk_cells`` matrix cells, bounding memory.
    """
    if relevance_level < 0:
        raise ValueError(f"relevance_level must be >= 0, got {relevance_level}")
    if max_docs is not None and max_docs < 0:
        raise ValueError(f"max_docs must be >= 0, got {max_docs}")
    qrels_index = {q: i for i, q in enumerate(qrels.query_ids.tolist())}
    run_index = {q: i for i, q in enumerate(run.query_ids.tolist())}
    if len(qrels_index) != len(qrels.query_ids):
        raise ValueError("qrels query ids are not grouped uniquely")
    missing = [q for q in run_index if q not in qrels_index]
    if missing:
        warnings.warn(
            f"{len(missing)} run queries have no qrels and are ignored (as trec_eval does), "
            f"e.g. {missing[:3]}",
            stacklevel=3,
        )
    qids = [q for q in run_index if q in qrels_index]
    if average_complete:
        qids += [q for q in qrels_index if q not in run_index]
    qids.sort(key=lambda s: s.encode("utf-8"))
    if not qids:
        raise ValueError("no query has both results and relevance judgments")

    judged_dicts = _qrels_dicts(qrels)
    lengths = np.array(
        [
            run.offsets[run_index[q] + 1] - run.offsets[run_index[q]] if q in run_index else 0
            for q in qids
        ],
        dtype=np.int64,
    )
    if max_docs is not None:
        lengths = np.minimum(lengths, max_docs)
    start = 0
    while start < len(qids):
        width = max(int(lengths[start]), 1)
        stop = start + 1
        while (
            stop < len(qids)
            and (stop - start + 1) * max(width, int(lengths[stop]), 1) <= chunk_cells
        ):
            width = max(width, int(lengths[stop]))
            stop += 1
        yield _chunk(
            qids[start:stop], run, run_index, qrels_index, judged_dicts, relevance_level, max_docs
        )
        start = stop


def _qrels_dicts(qrels: Qrels) -> list[dict[str, int]]:
    out = []
    docs, rels = qrels.doc_ids.tolist(), qrels.relevance.tolist()
    for i, q in enumerate(qrels.query_ids.tolist()):
        a, b = int(qrels.offsets[i]), int(qrels.offsets[i + 1])
        d = dict(zip(docs[a:b], rels[a:b], strict=True))
        if len(d) != b - a:
            dup = _first_duplicate(docs[a:b])
            raise ValueError(f"qrels: duplicate judgment of document {dup!r} for query {q!r}")
        out.append(d)
    return out


def _first_duplicate(items: list[str]) -> str:
    seen = set()
    for x in items:
        if x in seen:
            return x
        seen.add(x)
    return ""


def _chunk(qids, run, run_index, qrels_index, judged_dicts, level, max_docs):
    B = len(qids)
    run_rows = np.array([run_index.get(q, -1) for q in qids], dtype=np.int64)
    present = np.flatnonzero(run_rows >= 0)
    entries, local = _sorted_order(run, run_rows[present])
    local = present[local]  # row among the B queries of the chunk
    counts = np.bincount(local, minlength=B)
    first = np.zeros(B + 1, np.int64)
    np.cumsum(counts, out=first[1:])
    pos = np.arange(len(entries), dtype=np.int64) - first[local]
    qrow = np.array([qrels_index[q] for q in qids], dtype=np.int64)
    rels = _lookup(run, entries, local, B, qids, judged_dicts, qrow)
    num_ret = counts if max_docs is None else np.minimum(counts, max_docs)
    keep = pos < num_ret[local]
    N = int(num_ret.max()) if B else 0
    rel = np.full((B, max(N, 1)), PAD, dtype=np.int64)
    rel[local[keep], pos[keep]] = rels[keep]
    scores = np.zeros((B, max(N, 1)), np.float32)
    scores[local[keep], pos[keep]] = run.scores[entries[keep]]
    levels = _rel_levels(judged_dicts, qrow)
    return RankedRels(np.array(qids, dtype=object), rel, num_ret, levels, level, scores)


def _rel_levels(judged_dicts, qrow) -> np.ndarray:
    """``[B, L]`` counts of judged documents per relevance level (negative ones excluded)."""
    counts = [
        np.bincount([r for r in judged_dicts[i].values() if r >= 0], minlength=1) for i in qrow
    ]
    out = np.zeros((len(counts), max(len(c) for c in counts)), np.int64)
    for i, c in enumerate(counts):
        out[i, : len(c)] = c
    return out

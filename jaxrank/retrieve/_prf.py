"""Pseudo-relevance feedback: RM3 and Robertson (offer weight) term selection.

Both run a first retrieval, read the top ``fb_docs`` documents through the index's
doc-major view (host numpy), build a weighted expanded query and score it with the
same jit-compiled searcher.

RM3 (Lavrenko & Croft's relevance model RM1, interpolated with the query, as in
Anserini/Pyserini): with feedback documents :math:`F` and document weights
:math:`\\pi_d` (the first-pass scores normalized to sum 1; ``doc_weight="softmax"``
uses :math:`\\pi_d \\propto e^{s_d}`, right for log-likelihood scores),

.. math::

    P(w|R) = \\sum_{d \\in F} \\pi_d \\frac{tf_{w,d}}{|d|}, \\qquad
    q'_w = \\alpha \\frac{qtf_w}{|q|} + (1-\\alpha) \\hat P(w|R)

where :math:`\\hat P(\\cdot|R)` keeps the ``fb_terms`` most probable terms (ties:
smaller term id) renormalized to sum 1, and :math:`\\alpha` = ``orig_weight``.

Robertson selection (Robertson 1990; Okapi at TREC): each term of the feedback
documents gets the offer weight :math:`OW = r \\cdot RW` with :math:`r` the number of
feedback documents containing it, :math:`R = |F|` and the Robertson/Sparck Jones weight

.. math::

    RW = \\ln \\frac{(r+0.5)(N-n-R+r+0.5)}{(n-r+0.5)(R-r+0.5)}

(:math:`n` = df); the ``fb_terms`` new terms with the largest :math:`OW` are added to
the query with weight ``term_weight`` each (original terms keep their counts).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from jaxrank.retrieve._search import Searcher, SearchResult, _next_pow2


def _feedback(s: Searcher, queries: Sequence[str], fb_docs: int):
    ids, offsets = s.index.encode_queries(queries)
    terms, cnt, where = s._query_arrays(ids, offsets)
    first = s.search_terms(terms, s._query_weights(terms, cnt, where), where, k=fb_docs)
    return terms, cnt, where, first


def _pad(rows: list[tuple[np.ndarray, np.ndarray]]):
    t = _next_pow2(max((len(r[0]) for r in rows), default=1), floor=8)
    terms = np.zeros((len(rows), t), np.int32)
    weights = np.zeros((len(rows), t), np.float32)
    for i, (tt, ww) in enumerate(rows):
        terms[i, : len(tt)] = tt
        weights[i, : len(tt)] = ww
    return terms, weights, weights != 0


def _top_terms(term_ids: np.ndarray, score: np.ndarray, n: int) -> np.ndarray:
    order = np.lexsort((term_ids, -score))  # score descending, ties: smaller term id
    return order[:n]


def rm3_expand(
    s: Searcher,
    terms: np.ndarray,
    cnt: np.ndarray,
    where: np.ndarray,
    first: SearchResult,
    *,
    fb_terms: int = 10,
    orig_weight: float = 0.5,
    doc_weight: str = "score",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expanded queries ``(terms, weights, where) [Q, T']`` by RM3 (module docstring)."""
    if not 0 <= orig_weight <= 1:
        raise ValueError(f"orig_weight: must be in [0, 1], got {orig_weight}")
    if doc_weight not in ("score", "softmax", "uniform"):
        raise ValueError(f"doc_weight: {doc_weight!r} is not 'score', 'softmax' or 'uniform'")
    ptr, fwd_t, fwd_tf = s.index.forward()
    dl = s.index.doc_len
    rows = []
    for i in range(terms.shape[0]):
        q_t, q_c = terms[i][where[i]], cnt[i][where[i]].astype(np.float64)
        docs = first.indices[i][first.valid[i]]
        sc = first.scores[i][first.valid[i]].astype(np.float64)
        if len(q_t) == 0 or len(docs) == 0:
            rows.append((q_t, q_c / max(q_c.sum(), 1)))
            continue
        if doc_weight == "score":
            pi = np.maximum(sc, 0)
            pi = pi / pi.sum() if pi.sum() > 0 else np.full(len(sc), 1 / len(sc))
        elif doc_weight == "softmax":
            pi = np.exp(sc - sc.max())
            pi = pi / pi.sum()
        else:
            pi = np.full(len(sc), 1 / len(sc))
        seg = [np.arange(ptr[d], ptr[d + 1]) for d in docs]
        lens = np.array([len(x) for x in seg])
        pos = np.concatenate(seg) if seg else np.zeros(0, np.int64)
        w = np.repeat(pi / np.maximum(dl[docs], 1), lens) * fwd_tf[pos]
        cand, inv = np.unique(fwd_t[pos], return_inverse=True)
        p_r = np.bincount(inv, weights=w, minlength=len(cand))
        keep = _top_terms(cand, p_r, fb_terms)
        cand, p_r = cand[keep], p_r[keep]
        p_r = p_r / p_r.sum() if p_r.sum() > 0 else p_r
        merged: dict[int, float] = {}
        for t, c in zip(q_t.tolist(), (q_c / q_c.sum()).tolist(), strict=True):
            merged[t] = merged.get(t, 0.0) + orig_weight * c
        for t, p in zip(cand.tolist(), p_r.tolist(), strict=True):
            merged[t] = merged.get(t, 0.0) + (1 - orig_weight) * p
        rows.append((np.array(list(merged), np.int32), np.array(list(merged.values()))))
    return _pad(rows)


def rm3(
    s: Searcher,
    queries: Sequence[str],
    k: int = 1000,
    *,
    fb_docs: int = 10,
    fb_terms: int = 10,
    orig_weight: float = 0.5,
    doc_weight: str | None = None,
) -> SearchResult:
    """Retrieve with RM3-expanded queries (module docstring).

    ``doc_weight`` defaults to ``"softmax"`` for query-likelihood searchers (their
    scores are log-probabilities) and ``"score"`` otherwise.

    Example:
        >>> from jaxrank.retrieve import build_index, searcher, rm3
        >>> idx = build_index(["apple pie recipe", "apple tart", "car engine"], stemmer=None)
        >>> res = rm3(searcher(idx, "lucene"), ["pie"], k=3, fb_docs=1, fb_terms=2)
        >>> res.indices[0, :2].tolist()  # "apple" from doc 0 also pulls in doc 1
        [0, 1]
    """
    if doc_weight is None:
        doc_weight = "softmax" if s.method.startswith("ql") else "score"
    terms, cnt, where, first = _feedback(s, queries, fb_docs)
    e = rm3_expand(
        s,
        terms,
        cnt,
        where,
        first,
        fb_terms=fb_terms,
        orig_weight=orig_weight,
        doc_weight=doc_weight,
    )
    return s.search_terms(*e, k=k)


def robertson_expand(
    s: Searcher,
    terms: np.ndarray,
    cnt: np.ndarray,
    where: np.ndarray,
    first: SearchResult,
    *,
    fb_terms: int = 10,
    term_weight: float = 1.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expanded queries by Robertson offer-weight selection (module docstring)."""
    ptr, fwd_t, _ = s.index.forward()
    df, n = s.index.df.astype(np.float64), s.index.n_docs
    rows = []
    for i in range(terms.shape[0]):
        q_t, q_c = terms[i][where[i]], cnt[i][where[i]]
        docs = first.indices[i][first.valid[i]]
        if len(q_t) == 0 or len(docs) == 0:
            rows.append((q_t, q_c))
            continue
        pos = np.concatenate([np.arange(ptr[d], ptr[d + 1]) for d in docs])
        cand, r = np.unique(fwd_t[pos], return_counts=True)  # r: feedback docs with term
        big_r, nn = float(len(docs)), df[cand]
        rw = np.log(((r + 0.5) * (n - nn - big_r + r + 0.5)) / ((nn - r + 0.5) * (big_r - r + 0.5)))
        new = ~np.isin(cand, q_t)
        cand, ow = cand[new], (r * rw)[new]
        keep = _top_terms(cand, ow, fb_terms)
        t_all = np.concatenate([q_t, cand[keep]]).astype(np.int32)
        w_all = np.concatenate([q_c, np.full(len(keep), term_weight)])
        rows.append((t_all, w_all))
    return _pad(rows)


def robertson_expansion(
    s: Searcher,
    queries: Sequence[str],
    k: int = 1000,
    *,
    fb_docs: int = 10,
    fb_terms: int = 10,
    term_weight: float = 1.0,
) -> SearchResult:
    """Retrieve with queries expanded by Robertson's offer weight (module docstring)."""
    terms, cnt, where, first = _feedback(s, queries, fb_docs)
    e = robertson_expand(s, terms, cnt, where, first, fb_terms=fb_terms, term_weight=term_weight)
    return s.search_terms(*e, k=k)

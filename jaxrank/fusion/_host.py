"""Host-level fusion: runs in (dicts, :class:`jaxrank.io.Run` objects, TREC files), runs out.

Strings live here and only here: the query ids of all runs are united (sorted),
doc ids are mapped once to indices of one sorted vocabulary, each query's lists
become ``[Q, M, K]`` arrays, and :func:`jaxrank.fusion.fuse_arrays` does the
numeric work. Sorting the vocabulary makes "doc index descending" equal to
"doc id descending", i.e. trec_eval's tie order.

Differences from ranx, all deliberate and tested:

* runs with different query sets are fused per query over the runs that have the
  query (ranx refuses them);
* ties inside a run are ranked by doc id descending (ranx: numba quicksort order,
  which depends on the input order); ``rank_from="file"`` uses the file's rank
  column or, for dicts, the insertion order;
* empty runs, NaN/inf scores and a document listed twice for one query raise
  ``ValueError`` naming the run and query.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

from jaxrank.fusion._core import fuse_arrays
from jaxrank.fusion._methods import canonical_method
from jaxrank.fusion._normalize import canonical_norm


@dataclass(frozen=True)
class _Flat:
    """One run as flat arrays (the layout of :class:`jaxrank.io.Run`)."""

    name: str
    query_ids: np.ndarray  # [Q] str
    offsets: np.ndarray  # [Q+1] int64
    doc_ids: np.ndarray  # [E] str
    scores: np.ndarray  # [E] float64
    ranks: np.ndarray | None  # [E] int64


def _from_dict(d: Mapping[str, Mapping[str, float]], name: str) -> _Flat:
    qids, offsets, docs, scores = [], [0], [], []
    for q, res in d.items():
        qids.append(str(q))
        docs.extend(str(x) for x in res.keys())
        scores.extend(float(v) for v in res.values())
        offsets.append(len(docs))
    return _Flat(
        name,
        np.asarray(qids, dtype=object).astype(str) if qids else np.zeros(0, str),
        np.asarray(offsets, np.int64),
        _object_array(docs),
        np.asarray(scores, np.float64),
        None,
    )


def _object_array(items) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def _as_flat(run: Any, i: int, file_ranks: bool = True) -> _Flat:
    if isinstance(run, (str, os.PathLike)):
        from jaxrank.io import read_run

        run = read_run(run, ranks=file_ranks)  # rank_from="file" fuses by the file's ranks
    if isinstance(run, Mapping):
        return _from_dict(run, f"run{i}")
    if hasattr(run, "offsets") and hasattr(run, "doc_ids"):
        ranks = getattr(run, "ranks", None)
        return _Flat(
            getattr(run, "name", None) or f"run{i}",
            np.asarray(run.query_ids).astype(str),
            np.asarray(run.offsets, np.int64),
            np.asarray(run.doc_ids),  # str or object: only mapped through a dict
            np.asarray(run.scores, np.float64),
            None if ranks is None else np.asarray(ranks, np.int64),
        )
    raise TypeError(
        f"runs[{i}] must be a {{qid: {{docid: score}}}} dict, a jaxrank.io.Run or a path, "
        f"got {type(run).__name__}"
    )


def _validate(flat: _Flat, i: int) -> None:
    if flat.doc_ids.size == 0:
        raise ValueError(f"runs[{i}] ({flat.name}) is empty: it has no (query, doc) entries")
    bad = ~np.isfinite(flat.scores)
    if bad.any():
        e = int(np.flatnonzero(bad)[0])
        q = int(np.searchsorted(flat.offsets, e, side="right") - 1)
        raise ValueError(
            f"runs[{i}] ({flat.name}) has a non-finite score {flat.scores[e]} for query "
            f"{flat.query_ids[q]!r}, doc {flat.doc_ids[e]!r}"
        )


@dataclass(frozen=True)
class FusionInput:
    """Runs as padded arrays over a shared vocabulary (see :func:`runs_to_arrays`)."""

    query_ids: np.ndarray  # [Q] str, sorted
    vocab: np.ndarray  # [V] str, sorted
    doc_ids: np.ndarray  # [Q, M, K] int32
    scores: np.ndarray  # [Q, M, K] float64
    where: np.ndarray  # [Q, M, K] bool
    ranks: np.ndarray  # [Q, M, K] int64: file ranks, else input order (1-based)
    has_file_ranks: bool
    names: tuple[str, ...]


def _native_vocab():
    from jaxrank import _native

    lib = _native.library()
    fn = getattr(lib, "jaxrank_fusion_vocab", None) if lib is not None else None
    if fn is not None and fn.argtypes is None:
        fn.restype = ctypes.c_int64
        fn.argtypes = [ctypes.c_char_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p,
                       ctypes.c_void_p]  # fmt: skip
    return fn


def _vocabulary(arrays: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(np.concatenate(arrays), return_inverse=True)`` for strings.

    With the native core: one hash pass over the UTF-8 bytes and a sort of the distinct
    strings only (``ffi/fusion.cc``; np.unique sorts every fixed-width string, 10x
    slower for runs of 1,000 documents per query). Same result either way: byte order
    of UTF-8 = code-point order."""
    n = sum(len(a) for a in arrays)
    fn = _native_vocab()
    if fn is not None:
        data = "\0".join("\0".join(a.tolist()) for a in arrays if len(a)).encode("utf-8")
        inverse = np.empty(n, np.int32)
        first = np.empty(max(n, 1), np.int64)
        m = fn(data, len(data), n, inverse.ctypes.data, first.ctypes.data)
        if m >= 0:
            return np.concatenate([a.astype(object) for a in arrays])[first[:m]], inverse
    vocab, inverse = np.unique(np.concatenate(arrays).astype(str), return_inverse=True)
    return vocab.astype(object), inverse.reshape(-1)


def runs_to_arrays(runs: Sequence[Any], *, file_ranks: bool = True) -> FusionInput:
    """Map M runs to ``[Q, M, K]`` arrays over the union of their queries.

    Args:
      runs: dicts ``{qid: {docid: score}}``, :class:`jaxrank.io.Run` objects or TREC
        run paths.

      file_ranks: read the rank column of TREC files (``rank_from="file"`` needs it;
        otherwise ``ranks`` holds 1..n for them too).

    Returns:
      a :class:`FusionInput`; query ``q`` of run ``m`` occupies
      ``doc_ids[q, m, :n]`` with ``where`` marking the ``n`` real entries, in the
      run's own order (``ranks`` holds its rank column, or 1..n).

    Example:
      >>> x = runs_to_arrays([{"q": {"a": 1.0}}, {"q": {"b": 2.0, "a": 0.5}}])
      >>> x.doc_ids.tolist(), x.where.tolist()
      ([[[0, 0], [1, 0]]], [[[True, False], [True, True]]])
    """
    if isinstance(runs, (Mapping, str, os.PathLike)) or len(runs) == 0:
        raise ValueError("runs must be a non-empty sequence of runs")
    flats = [_as_flat(r, i, file_ranks) for i, r in enumerate(runs)]
    for i, f in enumerate(flats):
        _validate(f, i)
    query_ids = np.unique(np.concatenate([f.query_ids for f in flats]))
    vocab, inverse = _vocabulary([f.doc_ids for f in flats])
    Q, M = len(query_ids), len(flats)
    lens = [np.diff(f.offsets) for f in flats]
    K = max(int(x.max()) if x.size else 0 for x in lens)
    doc_ids = np.zeros((Q, M, K), np.int32)
    scores = np.zeros((Q, M, K), np.float64)
    where = np.zeros((Q, M, K), bool)
    ranks = np.zeros((Q, M, K), np.int64)
    start = 0
    for m, f in enumerate(flats):
        E = f.doc_ids.size
        d = inverse[start : start + E].astype(np.int32)
        start += E
        qpos = np.searchsorted(query_ids, f.query_ids)
        entry_q = np.repeat(qpos, lens[m])
        within = np.arange(E) - np.repeat(f.offsets[:-1], lens[m])
        if len(np.unique(f.query_ids)) != len(f.query_ids):
            raise ValueError(f"runs[{m}] ({f.name}) lists a query twice")
        key = entry_q.astype(np.int64) * len(vocab) + d
        srt = np.sort(key)
        dup = np.flatnonzero(srt[1:] == srt[:-1])
        if dup.size:
            k0 = srt[dup[0]]
            raise ValueError(
                f"runs[{m}] ({f.name}) lists doc {vocab[k0 % len(vocab)]!r} twice for query "
                f"{query_ids[k0 // len(vocab)]!r}"
            )
        doc_ids[entry_q, m, within] = d
        scores[entry_q, m, within] = f.scores
        where[entry_q, m, within] = True
        ranks[entry_q, m, within] = within + 1 if f.ranks is None else f.ranks
    return FusionInput(
        query_ids,
        vocab,
        doc_ids,
        scores,
        where,
        ranks,
        all(f.ranks is not None for f in flats),
        tuple(f.name for f in flats),
    )


def _precision(dtype: str):
    if dtype == "float64":
        return jax.enable_x64(True), np.float64
    if dtype == "float32":
        return contextlib.nullcontext(), np.float32
    raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")


def _presort(doc_ids, scores, where):
    """Entries of every row in rank order (score desc, doc id desc), padding last.

    Only rows not already in that order are sorted (retrieval output usually is), so
    the array core can take ranks as positions instead of sorting in-graph.
    """
    s = np.where(where, scores, -np.inf)
    a, b = s[..., :-1], s[..., 1:]
    da, db = doc_ids[..., :-1], doc_ids[..., 1:]
    fine = (a > b) | ((a == b) & (da > db)) | ~where[..., 1:]
    bad = ~fine.all(axis=-1)
    if not bad.any():
        return doc_ids, scores
    doc_ids, scores = doc_ids.copy(), scores.copy()
    rows_d, rows_s = doc_ids[bad], s[bad]
    order = np.lexsort((-rows_d.astype(np.int64), -rows_s), axis=-1)
    doc_ids[bad] = np.take_along_axis(rows_d, order, axis=-1)
    scores[bad] = np.take_along_axis(scores[bad], order, axis=-1)
    return doc_ids, scores


def fuse_input(
    x: FusionInput,
    *,
    method: str = "rrf",
    norm: str | None = "min-max",
    k: int | None = None,
    weights: Sequence[float] | None = None,
    rank_from: str = "score",
    zero_based: bool = False,
    degenerate: float | None = None,
    dtype: str = "float32",
    explain: bool = False,
    **params,
):
    """Fuse a :class:`FusionInput`; returns numpy ``(doc_idx, scores, where[, detail])``."""
    if rank_from not in ("score", "file"):
        raise ValueError(f"rank_from must be 'score' or 'file', got {rank_from!r}")
    ctx, np_dt = _precision(dtype)
    doc_ids, scores, where = x.doc_ids, x.scores, x.where
    if rank_from == "score":
        doc_ids, scores = _presort(doc_ids, scores, where)
    with ctx:
        out = fuse_arrays(
            doc_ids,
            scores.astype(np_dt),
            where,
            method=method,
            norm=norm,
            k=k,
            ranks=x.ranks.astype(np_dt) if rank_from == "file" else None,
            weights=None if weights is None else np.asarray(weights, np_dt),
            zero_based=zero_based,
            degenerate=degenerate,
            explain=explain,
            presorted=rank_from == "score",
            **{
                n: (np.asarray(v, np_dt) if isinstance(v, (list, tuple, np.ndarray)) else v)
                for n, v in params.items()
            },
        )
        return jax.tree.map(np.asarray, out)


def fuse(
    runs: Sequence[Any],
    *,
    method: str = "rrf",
    norm: str | None = "min-max",
    k: int | None = None,
    weights: Sequence[float] | None = None,
    rank_from: str = "score",
    zero_based: bool = False,
    degenerate: float | None = None,
    dtype: str = "float32",
    explain: bool = False,
    **params,
):
    """Fuse runs given as dicts, :class:`jaxrank.io.Run` objects or TREC paths.

    Args:
      runs: M ≥ 1 runs. Each query is fused over the runs that have it.
      method: a name of :data:`jaxrank.fusion.METHODS` (default RRF).
      norm: a name of :data:`jaxrank.fusion.NORMALIZATIONS` (default ``"min-max"``,
        as ranx).
      k: fused documents kept per query (default: all candidates).
      weights: run weights for the weighted methods (and RRF).
      rank_from: ``"score"`` (default) ranks each run by its scores (ties: doc id
        descending); ``"file"`` uses the file's rank column (Pyserini), or the input
        order for dicts.
      zero_based: RRF's 0-based variant ``1/(k + r - 1)`` (rank-rank).
      degenerate: min-max value for a list with a single distinct score (ranx: 0,
        Pyserini: 1).
      dtype: ``"float32"`` (default) or ``"float64"`` (runs under ``jax.enable_x64``).
      explain: also return ``{qid: {docid: {run_name: {"score", "norm", "rank",
        "contribution"}}}}`` for the runs that retrieved each fused document.
      **params: method parameters (``rrf_k`` or ``k_rrf`` for RRF's constant, ``gamma``,
        ``phi``, ``sigma``, ``alpha``, ``probs``, ``w``, ``map_scores``, ``log_odds``).

    Returns:
      ``{qid: {docid: score}}`` in fused order when every input is a dict, else a
      :class:`jaxrank.io.Run` (ranks 1..n in fused order); plus the explanation when
      asked.

    Example:
      >>> runs = [{"q": {"a": 3.0, "b": 1.0}}, {"q": {"b": 0.9, "c": 0.2}}]
      >>> fuse(runs, method="rrf")  # doctest: +ELLIPSIS
      {'q': {'b': 0.03252247..., 'a': 0.01639344..., 'c': 0.01612903...}}
    """
    canonical_method(method)
    canonical_norm(norm)
    if "k_rrf" in params:
        params["rrf_k"] = params.pop("k_rrf")
    x = runs_to_arrays(runs, file_ranks=rank_from == "file")
    out = fuse_input(
        x,
        method=method,
        norm=norm,
        k=k,
        weights=weights,
        rank_from=rank_from,
        zero_based=zero_based,
        degenerate=degenerate,
        dtype=dtype,
        explain=explain,
        **params,
    )
    (d, s, w), detail = (out, None) if not explain else out
    as_dict = all(isinstance(r, Mapping) for r in runs)
    fused = to_dict(x, d, s, w) if as_dict else to_run(x, d, s, w, name=f"fused-{method}")
    if not explain:
        return fused
    expl: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    for qi, q in enumerate(x.query_ids):
        per_q = {}
        for j in np.flatnonzero(w[qi]):
            per_run = {}
            for m, name in enumerate(x.names):
                if detail["present"][qi, m, j]:
                    per_run[name] = {
                        "score": float(detail["raw"][qi, m, j]),
                        "norm": float(detail["norm"][qi, m, j]),
                        "rank": float(detail["rank"][qi, m, j]),
                        "contribution": float(detail["contribution"][qi, m, j]),
                    }
            per_q[str(x.vocab[d[qi, j]])] = per_run
        expl[str(q)] = per_q
    return fused, expl


def to_dict(x: FusionInput, doc_idx, scores, where) -> dict[str, dict[str, float]]:
    """Fused arrays back to ``{qid: {docid: score}}`` (fused order, padding dropped)."""
    out: dict[str, dict[str, float]] = {}
    names = x.vocab[np.where(where, doc_idx, 0)]
    for qi, q in enumerate(x.query_ids):
        n = int(where[qi].sum())
        out[str(q)] = dict(zip(names[qi, :n].tolist(), scores[qi, :n].tolist(), strict=True))
    return out


def to_run(x: FusionInput, doc_idx, scores, where, name: str = "fused"):
    """Fused arrays to a :class:`jaxrank.io.Run` (fused order, ranks 1..n)."""
    from jaxrank.io import Run

    counts = where.sum(axis=1).astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    docs = x.vocab[doc_idx[where]].astype(object)
    ranks = np.broadcast_to(np.arange(1, where.shape[1] + 1), where.shape)[where].astype(np.int64)
    qids = x.query_ids.astype(object)
    return Run(qids, offsets, docs, scores[where].astype(np.float64), ranks, name)

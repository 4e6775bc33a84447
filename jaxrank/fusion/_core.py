"""The array core: union of M runs' candidates per query, normalization, fusion, top-K.

Runs are given per query as ``doc_ids [..., M, K]`` (int32 indices into a doc-id
vocabulary shared by the runs), ``scores [..., M, K]`` and a boolean
``where [..., M, K]`` marking real entries; leading axes are batch axes (queries).
Each query's union of at most M·K candidates is gathered in-graph (one sort of the
doc indices), every method is computed on the ``[M, N]`` candidate matrix
(:mod:`jaxrank.fusion._methods`), and the fused top-K comes back as
``(doc_ids [..., K_out], scores [..., K_out], where [..., K_out])``.

Ties are deterministic: within a run, ranks follow score descending then doc
index descending; the fused list is ordered by fused score descending then doc
index descending. With the host API's sorted doc-id vocabulary this is trec_eval's
order (score descending, doc id descending), so the written run is evaluated in
exactly the order it was fused.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from jaxrank.fusion._methods import (
    REQUIRED_PARAMS,
    Candidates,
    canonical_method,
    combine,
)
from jaxrank.fusion._normalize import _ranks_by_score, canonical_norm, normalize

_MONOTONE = frozenset(
    {"none", "min-max", "max", "sum", "zmuv", "rank", "borda", "quantile", "sigmoid"}
)


def _gather_candidates(
    doc_ids, scores, where, ranks, *, norm, degenerate, rank_source, presorted=False
):
    """One query: [M, K] inputs -> (Candidates, slot doc ids [N])."""
    M, K = doc_ids.shape
    N = M * K
    dt = scores.dtype
    if ranks is None and presorted:
        ranks = jnp.broadcast_to(jnp.arange(1, K + 1), (M, K))
    elif ranks is None:
        ranks = _ranks_by_score(scores, where, doc_ids)
    ranks = ranks.astype(dt)
    n_run = jnp.sum(where, axis=-1).astype(dt)
    pre = "none" if norm == "borda" else norm
    normed = normalize(scores, where, method=pre, ranks=ranks, degenerate=degenerate)
    if rank_source == "score" and norm not in _MONOTONE:
        ranks = _ranks_by_score(normed, where, doc_ids).astype(dt)
    # Union without a permutation: sort the doc keys alone (one int32 sort), then find
    # each entry's slot (its key's first position in the sorted keys) by binary search.
    # Slots are in doc index descending order; a slot is a candidate where a run of
    # equal keys starts.
    flat_doc = doc_ids.reshape(N)
    flat_ok = where.reshape(N)
    pad_key = jnp.iinfo(jnp.int32).max
    key = jnp.where(flat_ok, -flat_doc, pad_key)
    skey = jnp.sort(key)
    valid = (skey != pad_key) & jnp.concatenate([jnp.ones(1, bool), skey[1:] != skey[:-1]])
    slot = jnp.searchsorted(skey, key, side="left", method="scan")
    slot = jnp.where(flat_ok, slot, N)
    n_cand = jnp.sum(valid)
    slot_doc = jnp.where(valid, -skey, -1)
    run_idx = jnp.repeat(jnp.arange(M), K)
    S = jnp.zeros((M, N), dt).at[run_idx, slot].set(normed.reshape(N), mode="drop")
    raw = jnp.zeros((M, N), dt).at[run_idx, slot].set(scores.reshape(N), mode="drop")
    P = jnp.zeros((M, N), bool).at[run_idx, slot].set(True, mode="drop")
    R = jnp.full((M, N), jnp.inf, dt).at[run_idx, slot].set(ranks.reshape(N), mode="drop")
    run_has = n_run > 0
    n_cand_f = n_cand.astype(dt)
    if norm == "borda":
        inside = 1.0 - (R - 1.0) / jnp.maximum(n_cand_f, 1.0)
        outside = 0.5 - (n_run - 1.0) / (2.0 * jnp.maximum(n_cand_f, 1.0))
        S = jnp.where(P, inside, outside[:, None])
        P = run_has[:, None] & valid[None, :]
        S = jnp.where(P, S, 0.0)
        # ranx's borda-normalized runs hold every candidate: the unretrieved ones follow
        # the retrieved ones (here in slot order, i.e. doc index descending).
        missing = P & ~jnp.isfinite(R)
        after = jnp.cumsum(missing, axis=1).astype(dt)
        R = jnp.where(missing, n_run[:, None] + after, R)
        R = jnp.where(P, R, jnp.inf)
        n_run = jnp.where(run_has, n_cand_f, 0.0)
    cand = Candidates(S, raw, P, R, valid, run_has, n_run, n_cand_f)
    return cand, slot_doc


def _fuse_query(
    doc_ids,
    scores,
    where,
    ranks,
    params,
    *,
    method,
    norm,
    k_out,
    degenerate,
    rank_source,
    explain,
    presorted,
):
    cand, slot_doc = _gather_candidates(
        doc_ids,
        scores,
        where,
        ranks,
        norm=norm,
        degenerate=degenerate,
        rank_source=rank_source,
        presorted=presorted,
    )
    fused, contrib = combine(method, cand, params)
    N = fused.shape[0]
    k = min(k_out, N)
    neg = jnp.where(cand.valid, fused, -jnp.inf)
    top_val, top_idx = jax.lax.top_k(neg, k)
    ok = cand.valid[top_idx]
    out = (
        jnp.where(ok, slot_doc[top_idx], -1),
        jnp.where(ok, top_val, 0.0),
        ok,
    )
    if k < k_out:
        pad = k_out - k
        out = (
            jnp.pad(out[0], (0, pad), constant_values=-1),
            jnp.pad(out[1], (0, pad)),
            jnp.pad(out[2], (0, pad)),
        )
        top_idx = jnp.pad(top_idx, (0, pad))
    if not explain:
        return out
    sel = (slice(None), top_idx)
    detail = {
        "raw": jnp.where(out[2], cand.raw[sel], 0.0),
        "norm": jnp.where(out[2], cand.norm[sel], 0.0),
        "rank": jnp.where(out[2], cand.rank[sel], jnp.inf),
        "present": out[2] & cand.present[sel],
        "contribution": jnp.where(out[2], contrib[sel], 0.0),
    }
    return out, detail


def _check_params(method, params):
    for name in REQUIRED_PARAMS.get(method, ()):
        if name not in params:
            raise ValueError(f"method={method!r} needs the parameter {name!r}")
    if method == "rrf" and "k" in params:
        try:
            k = float(params["k"])
        except (TypeError, jax.errors.ConcretizationTypeError):
            k = None
        if k is not None and k < 0:
            raise ValueError(f"rrf k must be >= 0, got {k}")


@partial(
    jax.jit,
    static_argnames=(
        "method",
        "norm",
        "k",
        "degenerate",
        "rank_from",
        "explain",
        "zero_based",
        "presorted",
    ),
)
def _fuse_jit(
    doc_ids,
    scores,
    where,
    ranks,
    params,
    *,
    method,
    norm,
    k,
    degenerate,
    rank_from,
    explain,
    zero_based,
    presorted,
):
    params = dict(params)
    params["zero_based"] = zero_based
    batch = doc_ids.shape[:-2]
    M, K = doc_ids.shape[-2:]
    flat = (-1, M, K)
    f = partial(
        _fuse_query,
        method=method,
        norm=norm,
        k_out=k,
        degenerate=degenerate,
        rank_source=rank_from,
        explain=explain,
        presorted=presorted,
    )
    r = None if ranks is None else ranks.reshape(flat)
    in_axes = (0, 0, 0, None if r is None else 0, None)
    res = jax.vmap(f, in_axes=in_axes)(
        doc_ids.reshape(flat), scores.reshape(flat), where.reshape(flat), r, params
    )
    return jax.tree.map(lambda x: x.reshape(batch + x.shape[1:]), res)


def fuse_arrays(
    doc_ids: jax.Array,
    scores: jax.Array,
    where: jax.Array | None = None,
    *,
    method: str = "rrf",
    norm: str | None = "min-max",
    k: int | None = None,
    ranks: jax.Array | None = None,
    weights: jax.Array | None = None,
    zero_based: bool = False,
    degenerate: float | None = None,
    explain: bool = False,
    presorted: bool = False,
    **params,
):
    """Fuse M runs per query and return the fused top-``k``.

    Args:
      doc_ids: ``[..., M, K]`` int32 doc indices (a vocabulary shared by the runs);
        a document appears at most once per run and query.
      scores: ``[..., M, K]`` scores (higher is better), float32 or float64.
      where: ``[..., M, K]`` boolean mask of real entries (default: all).
      method: a name of :data:`jaxrank.fusion.METHODS` (static).
      norm: a name of :data:`jaxrank.fusion.NORMALIZATIONS` applied to each run
        before fusing (static; ranx's default ``"min-max"``). Ignored by ``dbsf``,
        which normalizes by its own definition.
      k: number of fused documents returned per query (default ``M·K``).
      ranks: ``[..., M, K]`` 1-based ranks to use instead of ranks recomputed from
        the scores (Pyserini's RRF uses the file's rank column).
      weights: ``[M]`` run weights for the weighted methods (and RRF).
      zero_based: RRF with the top document at rank 0, i.e. ``1/(k + r - 1)``
        (rank-rank's convention); the default is the canonical ``1/(k + r)``.
      degenerate: min-max value for a list whose scores are all equal (ranx: 0;
        Pyserini: 1).
      presorted: promise that each run's real entries come first and in rank order
        (score descending, ties by doc index descending), as retrieval output and
        sorted TREC files are; ranks are then positions and no sort is needed.
      explain: also return each returned document's per-run ``raw`` score,
        ``norm`` score, ``rank``, ``present`` flag and ``contribution``
        (each ``[..., M, k]``).
      **params: the method's parameters: ``k`` is taken by the output size, so RRF's
        constant is ``rrf_k`` (default 60); ``gamma``, ``phi``, ``sigma``, ``alpha``,
        ``probs``, ``w``, ``map_scores``, ``log_odds``.

    Returns:
      ``(doc_ids [..., k], scores [..., k], where [..., k])`` sorted by fused score
      descending then doc index descending, plus a dict of ``[..., M, k]`` arrays
      when ``explain``.

    Example:
      >>> import jax.numpy as jnp
      >>> docs = jnp.array([[[0, 1], [1, 2]]], jnp.int32)   # 1 query, 2 runs, 2 docs
      >>> scores = jnp.array([[[2.0, 1.0], [5.0, 4.0]]])
      >>> d, s, w = fuse_arrays(docs, scores, method="rrf", k=3)
      >>> d.tolist(), [round(x, 5) for x in s[0].tolist()]
      ([[1, 0, 2]], [0.03252, 0.01639, 0.01613])
    """
    method = canonical_method(method)
    norm = canonical_norm(norm)
    if method == "dbsf":
        norm = "dbsf"
    doc_ids = jnp.asarray(doc_ids)
    if doc_ids.ndim < 2:
        raise ValueError(f"doc_ids must have shape [..., M, K], got {doc_ids.shape}")
    if not jnp.issubdtype(doc_ids.dtype, jnp.integer):
        raise TypeError(f"doc_ids must be integer indices, got {doc_ids.dtype}")
    doc_ids = doc_ids.astype(jnp.int32)
    scores = jnp.asarray(scores)
    if not jnp.issubdtype(scores.dtype, jnp.floating):
        scores = scores.astype(jnp.float32)
    if scores.dtype in (jnp.float16, jnp.bfloat16):
        scores = scores.astype(jnp.float32)
    if scores.shape != doc_ids.shape:
        raise ValueError(f"scores shape {scores.shape} != doc_ids shape {doc_ids.shape}")
    if where is None:
        where = jnp.ones(doc_ids.shape, bool)
    where = jnp.asarray(where, bool)
    if where.shape != doc_ids.shape:
        raise ValueError(f"where shape {where.shape} != doc_ids shape {doc_ids.shape}")
    if ranks is not None:
        ranks = jnp.asarray(ranks)
        if ranks.shape != doc_ids.shape:
            raise ValueError(f"ranks shape {ranks.shape} != doc_ids shape {doc_ids.shape}")
    M, K = doc_ids.shape[-2:]
    if "rrf_k" in params:
        params["k"] = params.pop("rrf_k")
    if weights is not None:
        weights = jnp.asarray(weights, scores.dtype)
        if weights.shape != (M,):
            raise ValueError(f"weights must have shape ({M},), got {weights.shape}")
        params["weights"] = weights
    if method == "interpolation" and M != 2:
        raise ValueError(f"method='interpolation' fuses exactly 2 runs, got M={M}")
    _check_params(method, params)
    if method == "slidefuse":
        params["w"] = jnp.asarray(params["w"], scores.dtype)
    k_out = M * K if k is None else int(k)
    if k_out <= 0:
        raise ValueError(f"k must be positive, got {k}")
    rank_from = "file" if ranks is not None else "score"
    return _fuse_jit(
        doc_ids,
        scores,
        where,
        ranks,
        params,
        method=method,
        norm=norm,
        k=k_out,
        degenerate=None if degenerate is None else float(degenerate),
        rank_from=rank_from,
        explain=explain,
        zero_based=bool(zero_based),
        presorted=bool(presorted) and ranks is None,
    )

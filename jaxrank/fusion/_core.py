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
import numpy as np

from jaxrank import _native
from jaxrank.fusion._methods import (
    REQUIRED_PARAMS,
    Candidates,
    canonical_method,
    combine,
    count_factor,
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


# Methods whose fused score is a function of (sum of per-entry terms, number of runs
# retrieving the document, number of candidates): on CPU they skip the [M, N] candidate
# matrix and run as per-entry terms -> native union (hash, no sort) -> native top-k.
_ADDITIVE = frozenset(
    {
        "sum",
        "average",
        "wsum",
        "interpolation",
        "mnz",
        "anz",
        "gmnz",
        "mixed",
        "rrf",
        "isr",
        "log_isr",
        "logn_isr",
        "rbc",
        "bordafuse",
        "dbsf",
    }
)


def _entry_terms(method, doc_ids, scores, where, ranks, params, *, norm, degenerate,
                 rank_source, presorted):  # fmt: skip
    """Per-entry terms ``[B, M, K]`` (0 on padding) whose per-document sum, times
    :func:`count_factor` (plus Borda's candidate-count terms), is the fused score; the
    same arithmetic as :func:`_gather_candidates` + :func:`combine`."""
    dt = scores.dtype
    M, K = doc_ids.shape[-2:]
    if ranks is None and presorted:
        ranks = jnp.broadcast_to(jnp.arange(1, K + 1), doc_ids.shape)
    elif ranks is None:
        ranks = _ranks_by_score(scores, where, doc_ids)
    ranks = ranks.astype(dt)
    normed = normalize(scores, where, method=norm, ranks=ranks, degenerate=degenerate)
    if rank_source == "score" and norm not in _MONOTONE:
        ranks = _ranks_by_score(normed, where, doc_ids).astype(dt)
    weights = jnp.asarray(params.get("weights", jnp.ones(M)), dt)
    safe_r = jnp.where(where, ranks, 1.0)
    if method in ("wsum", "mixed"):
        terms = normed * weights[:, None]
    elif method == "interpolation":
        alpha = jnp.asarray(params["alpha"], dt)
        terms = normed * jnp.stack([alpha, 1.0 - alpha])[:, None]
    elif method == "rrf":
        k = jnp.asarray(params.get("k", 60.0), dt)
        offset = 1.0 if params.get("zero_based", False) else 0.0
        terms = (1.0 / (k + safe_r - offset)) * weights[:, None]
    elif method in ("isr", "log_isr", "logn_isr"):
        terms = 1.0 / (safe_r * safe_r)
    elif method == "rbc":
        phi = jnp.asarray(params["phi"], dt)
        terms = (1.0 - phi) * phi ** (safe_r - 1.0)
    elif method == "bordafuse":
        n_run = jnp.sum(where, axis=-1, keepdims=True).astype(dt)
        terms = (n_run + 1.0) / 2.0 - safe_r
    else:  # sum, average, mnz, anz, gmnz, dbsf: the normalized scores
        terms = normed
    return jnp.where(where, terms, 0.0)


def _finish(method, sums, counts, where, params):
    """Fused scores ``[B, N]`` from the union's per-candidate sums and counts."""
    dt = sums.dtype
    M = where.shape[-2]
    cnt = counts.astype(dt)
    if method == "average":
        return sums / M
    if method == "bordafuse":
        # Σ_m (N - r_m + 1) over retrieving runs + Σ (N - n_m + 1)/2 over the other runs
        # that have the query = C + c·N/2 + Σ ((n_m + 1)/2 - r_m); half-integers, exact.
        n_cand = jnp.sum(counts > 0, axis=-1, keepdims=True).astype(dt)
        n_run = jnp.sum(where, axis=-1).astype(dt)  # [B, M]
        const = jnp.sum(jnp.where(n_run > 0, (n_cand - n_run + 1.0) / 2.0, 0.0), -1)
        return const[:, None] + cnt * (n_cand / 2.0) + sums
    factor = count_factor(method, cnt, params)
    return sums if factor is None else sums * factor


def _fuse_native(doc_ids, scores, where, ranks, params, *, method, k_out, **kw):
    """CPU path of the additive methods: [B, M, K] -> fused top-k, no sort in XLA."""
    B, M, K = doc_ids.shape
    E = M * K
    terms = _entry_terms(method, doc_ids, scores, where, ranks, params, **kw)
    dt = terms.dtype
    union = jax.ffi.ffi_call(
        "jaxrank_fusion_union",
        (
            jax.ShapeDtypeStruct((B, E), jnp.int32),
            jax.ShapeDtypeStruct((B, E), dt),
            jax.ShapeDtypeStruct((B, E), jnp.int32),
        ),
        vmap_method="broadcast_all",
    )
    cdoc, csum, ccount = union(doc_ids.reshape(B, E), terms.reshape(B, E), where.reshape(B, E))
    fused = _finish(method, csum, ccount, where, params)
    topk = jax.ffi.ffi_call(
        "jaxrank_fusion_topk",
        (
            jax.ShapeDtypeStruct((B, k_out), jnp.int32),
            jax.ShapeDtypeStruct((B, k_out), dt),
            jax.ShapeDtypeStruct((B, k_out), jnp.bool_),
        ),
        vmap_method="broadcast_all",
    )
    return topk(fused, cdoc, ccount > 0, k=np.int64(k_out))


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
        "impl",
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
    impl,
):
    params = dict(params)
    params["zero_based"] = zero_based
    batch = doc_ids.shape[:-2]
    M, K = doc_ids.shape[-2:]
    flat = (-1, M, K)
    if (
        impl == "native"
        and method in _ADDITIVE
        and norm != "borda"
        and not explain
        and doc_ids.size > 0
    ):
        r = None if ranks is None else ranks.reshape(flat)
        opts = dict(
            method=method,
            k_out=k,
            norm=norm,
            degenerate=degenerate,
            rank_source=rank_from,
            presorted=presorted,
        )

        def native(d, s, w, *r):
            return _fuse_native(d, s, w, r[0] if r else None, params, **opts)

        def pure(d, s, w, *r):
            return _fuse_jit(d, s, w, r[0] if r else None, params, method=method, norm=norm,
                             k=k, degenerate=degenerate, rank_from=rank_from, explain=False,
                             zero_based=zero_based, presorted=presorted, impl="jax")  # fmt: skip

        args = (doc_ids.reshape(flat), scores.reshape(flat), where.reshape(flat))
        args += () if r is None else (r,)
        res = _native.select(native, pure, *args, impl="native")
        return jax.tree.map(lambda x: x.reshape(batch + x.shape[1:]), res)
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
    impl: str = "auto",
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
      impl: ``"auto"`` (default: :mod:`jaxrank.config`'s native mode), ``"native"`` or
        ``"jax"``. On CPU with the native core, the additive methods (sums, CombMNZ-like,
        RRF, ISR, RBC, Borda, DBSF; not with ``norm="borda"`` or ``explain``) run as
        per-entry terms + a native hash union + a native top-k
        (``ffi/fusion.cc``); elsewhere, and for the other methods, the pure-JAX
        candidate matrix. Both give the same fused documents and scores (to float
        rounding of the summation order) and the same tie order.
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
        impl=_native.resolve(impl),
    )

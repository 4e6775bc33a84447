"""Exact dense search with a streaming top-k; exact rescoring of candidate sets.

The corpus is scored one chunk of rows at a time inside ``lax.scan`` and a running
top-k is merged with :func:`jaxrank.topk.scan_top_k`, so peak memory is the corpus
plus ``O(queries x chunk_size)``; chunks are ``dynamic_slice`` views of the corpus
(no padded copy). The same scoring serves float32/bfloat16/float16 corpora,
int8 codes with per-row scales (:mod:`jaxrank.quant`, native VNNI kernel on CPU)
and packed sign bits (Hamming distance).

Scores (higher is better for every metric):

* ``"dot"``: :math:`\\langle q, d\\rangle`;
* ``"cosine"``: :math:`\\langle q, d\\rangle / (\\|q\\|\\,\\|d\\|)`; a zero vector has
  cosine 0 with everything (its norm is replaced by 1);
* ``"l2"``: :math:`-\\|q - d\\|^2` (negated squared distance);
* ``"hamming"``: :math:`-\\mathrm{popcount}(q \\oplus d)` on packed bits (uint8 corpus).

NaN components make a score NaN; NaN scores are treated as ``-inf``: such a document
is never returned (a query with NaN gets ``valid=False`` everywhere). Ties are broken
by the smaller corpus index.

Example:
    >>> import jax, jax.numpy as jnp
    >>> from jaxrank.retrieve import exact_search
    >>> docs = jax.random.normal(jax.random.key(0), (1000, 32))
    >>> res = exact_search(docs[:3], docs, k=2, metric="cosine", chunk_size=256)
    >>> res.indices[:, 0].tolist()
    [0, 1, 2]
    >>> res = exact_search(docs[:1], docs, k=1, where=jnp.arange(1000) > 0)
    >>> int(res.indices[0, 0]) != 0
    True
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxrank import _native, _serialize
from jaxrank import topk as _topk
from jaxrank.quant import binary_quantize, hamming_distance, int8_scores, quantize_int8

Array = jax.Array

METRICS = ("dot", "cosine", "l2", "hamming")
DEFAULT_CHUNK = 8192


@_serialize.namedtuple
class SearchHits(NamedTuple):
    """Top-k hits: ``scores [..., k]`` float32 (descending), ``indices [..., k]`` int32
    corpus rows, ``valid [..., k]`` bool (False where fewer than ``k`` documents could
    be returned, e.g. under a filter; such entries have score ``-inf`` and index 0)."""

    scores: Array
    indices: Array
    valid: Array


def _kind(corpus: Array, scales: Array | None) -> str:
    if corpus.dtype == jnp.uint8:
        return "binary"
    if corpus.dtype == jnp.int8:
        if scales is None:
            raise ValueError("corpus: int8 codes need `scales` [N] (see jaxrank.quant)")
        return "int8"
    if jnp.issubdtype(corpus.dtype, jnp.floating):
        return "float"
    raise TypeError(f"corpus: expected float, int8 or uint8 (packed bits), got {corpus.dtype}")


def _prepare_queries(queries: Array, kind: str, metric: str, d: int, quantize: bool):
    """Queries in the form the chunk scorer takes (done once, outside the scan)."""
    if kind == "binary":
        if queries.dtype == jnp.uint8:
            if queries.shape[-1] != d:
                raise ValueError(
                    f"queries: {queries.shape[-1]} packed bytes, corpus has {d} "
                    "(dimension mismatch)"
                )
            return {"bits": queries}
        if not jnp.issubdtype(queries.dtype, jnp.floating):
            raise TypeError(f"queries: expected float or packed uint8, got {queries.dtype}")
        if -(-queries.shape[-1] // 8) != d:
            raise ValueError(
                f"queries: D={queries.shape[-1]} packs to {-(-queries.shape[-1] // 8)} bytes, "
                f"corpus has {d} bytes per row (dimension mismatch)"
            )
        return {"bits": binary_quantize(queries)}
    if not jnp.issubdtype(queries.dtype, jnp.floating):
        raise TypeError(f"queries: expected a float array, got {queries.dtype}")
    if queries.shape[-1] != d:
        raise ValueError(
            f"queries: D={queries.shape[-1]} but corpus has D={d} (dimension mismatch)"
        )
    q = queries.astype(jnp.float32)
    if metric == "cosine":
        n = jnp.linalg.norm(q, axis=-1, keepdims=True)
        q = q / jnp.where(n > 0, n, 1.0)
    out = {"q": q, "qsq": jnp.sum(q * q, axis=-1, keepdims=True)}
    if kind == "int8" and quantize:
        out["qc"], out["qs"] = qc, qs = quantize_int8(q)
        deq = qc.astype(jnp.float32) * qs[..., None]  # l2 of the quantized query
        out["qsq"] = jnp.sum(deq * deq, axis=-1, keepdims=True)
    return out


def _score_rows(prep, rows, row_scales, kind, metric, impl):
    """Scores ``[B, m]`` of the prepared queries against corpus rows ``[m, D]``."""
    if kind == "binary":
        return -hamming_distance(prep["bits"], rows, impl=impl).astype(jnp.float32)
    if kind == "int8":
        if "qc" in prep:
            dots = int8_scores(prep["qc"], rows, row_scales, q_scales=prep["qs"], impl=impl)
        else:
            dots = jnp.dot(prep["q"], rows.astype(jnp.float32).T) * row_scales
        if metric == "dot":
            return dots
        sq = jnp.sum(jnp.square(rows.astype(jnp.float32)), axis=-1) * jnp.square(row_scales)
    else:
        r = rows.astype(jnp.float32)
        dots = jnp.dot(prep["q"], r.T, precision=lax.Precision.HIGHEST)
        if metric == "dot":
            return dots
        sq = jnp.sum(r * r, axis=-1)
    if metric == "cosine":
        n = jnp.sqrt(sq)
        return dots / jnp.where(n > 0, n, 1.0)
    return -(prep["qsq"] - 2.0 * dots + sq)  # l2


def _topk_ffi(target: str, b: int, k: int):
    """A native top-k kernel returning ``(scores [b, k] f32, ids [b, k] s32, valid)``."""
    shapes = [jax.ShapeDtypeStruct((b, k), dt) for dt in (jnp.float32, jnp.int32, jnp.bool_)]
    return jax.ffi.ffi_call(target, tuple(shapes), vmap_method="sequential")


def _clean(scores: Array) -> Array:
    return jnp.where(jnp.isnan(scores), -jnp.inf, scores)


@partial(jax.jit, static_argnames=("k", "kind", "metric", "chunk_size", "quantize_queries", "impl"))
def _exact(
    queries, corpus, scales, where, offset, *, k, kind, metric, chunk_size, quantize_queries, impl
):
    batch = queries.shape[:-1]
    q2 = queries.reshape(-1, queries.shape[-1])
    b = q2.shape[0]
    n, d = corpus.shape
    prep = _prepare_queries(q2, kind, metric, d, quantize_queries)
    if where is not None and where.ndim > 1:
        where = where.reshape(b, n)

    def slice_rows(start, size):
        rows = lax.dynamic_slice_in_dim(corpus, start, size, 0)
        sc = None if scales is None else lax.dynamic_slice_in_dim(scales, start, size, 0)
        w = None if where is None else lax.dynamic_slice_in_dim(where, start, size, where.ndim - 1)
        return rows, sc, w

    def score(start, size):
        rows, sc, w = slice_rows(start, size)
        s = _clean(_score_rows(prep, rows, sc, kind, metric, impl))
        w = jnp.ones((b, size), bool) if w is None else jnp.broadcast_to(w, (b, size))
        return s, w

    kk = min(k, n)
    if kind == "int8" and "qc" in prep and metric == "dot" and where is None:
        # CPU: one native call quantizes the queries, scans and keeps the top-k (scores
        # bit-identical to the JAX path; no [B, N] matrix, no small XLA fusions for the
        # query quantization, which cost ~20 us at batch 1)
        def native(q, corpus, scales):
            v, i, ok = _topk_ffi("jaxrank_int8_topk", b, kk)(
                q, corpus, scales, num_threads=np.int64(_native.num_threads(None))
            )
            return v, i + offset, ok

        def jax_path(q, corpus, scales):
            return _streamed(score, n, kk, b, chunk_size, offset)

        v, i, ok = _native.select(native, jax_path, prep["q"], corpus, scales, impl=impl)
    else:
        v, i, ok = _streamed(score, n, kk, b, chunk_size, offset)
    v, i = jnp.where(ok, v, -jnp.inf), jnp.where(ok, i, 0)
    return SearchHits(*(x.reshape(*batch, kk) for x in (v, i, ok)))


def _streamed(score, n, kk, b, chunk_size, offset):
    """Top-``kk`` of ``score(start, size) -> (scores [b, size], where)`` over ``n`` rows."""
    c = min(chunk_size, n)
    n_full, tail = divmod(n, c)
    out = None
    if n_full:
        starts = jnp.arange(n_full, dtype=jnp.int32) * c
        out = _topk.scan_top_k(
            lambda ch: score(ch["offset"], c),
            {"offset": starts},
            kk,
            (b,),
        )
        out = (out[0], out[1] + offset, out[2])
    if tail:
        s, w = score(n_full * c, tail)
        local = _topk.top_k(s, min(kk, tail), where=w, offset=offset + n_full * c)
        out = local if out is None else _topk.merge(*out, *local, k=kk)
    return out


def _check(queries, corpus, k, metric, where, chunk_size, scales):
    if metric not in METRICS:
        raise ValueError(f"metric: {metric!r} is not one of {METRICS}")
    if corpus.ndim != 2:
        raise ValueError(f"corpus: expected [N, D], got shape {corpus.shape}")
    n = corpus.shape[0]
    if n == 0:
        raise ValueError("corpus: empty (N=0); there is nothing to search")
    if queries.ndim < 1:
        raise ValueError(f"queries: expected [..., D], got shape {queries.shape}")
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k: must be a positive int, got {k!r}")
    if k > n:
        raise ValueError(f"k: {k} is larger than the corpus (N={n})")
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size: must be a positive int, got {chunk_size!r}")
    kind = _kind(corpus, scales)
    if (kind == "binary") != (metric == "hamming"):
        raise ValueError(
            f"metric: {metric!r} with a {corpus.dtype} corpus; 'hamming' is for packed uint8 "
            "bits and only for them"
        )
    if scales is not None and (kind != "int8" or scales.shape != (n,)):
        raise ValueError(f"scales: expected [{n}] with an int8 corpus, got {scales.shape}")
    if where is not None:
        if where.dtype != jnp.bool_:
            raise TypeError(f"where: must be boolean, got {where.dtype}")
        if where.shape[-1] != n or (where.ndim > 1 and where.shape[:-1] != queries.shape[:-1]):
            raise ValueError(
                f"where: expected [N] or [..., N] matching queries {queries.shape[:-1]} "
                f"with N={n}, got {where.shape}"
            )
    return kind


def exact_search(
    queries: Array,
    corpus: Array,
    k: int,
    *,
    metric: str = "dot",
    where: Array | None = None,
    scales: Array | None = None,
    quantize_queries: bool = True,
    chunk_size: int = DEFAULT_CHUNK,
    impl: str = "auto",
) -> SearchHits:
    r"""Exact top-``k`` documents of ``corpus`` for each query, streamed over chunks.

    Args:
      queries: ``[..., D]`` float (any float dtype, computed in float32); for a
        binary corpus also packed uint8 ``[..., W]``.
      corpus: ``[N, D]`` float32/bfloat16/float16; or int8 codes with ``scales``
        ``[N]`` (:func:`jaxrank.quant.quantize_int8`); or packed sign bits uint8
        ``[N, W]`` (:func:`jaxrank.quant.binary_quantize`, ``metric="hamming"``).
      k: static, ``1 <= k <= N`` (a larger ``k`` raises ``ValueError``).
      metric: ``"dot"``, ``"cosine"``, ``"l2"`` (score :math:`-\|q-d\|^2`) or
        ``"hamming"`` (score :math:`-` Hamming distance), see the module docstring.
      where: optional boolean document filter ``[N]`` or per query ``[..., N]``;
        filtered documents are never returned.
      scales: ``[N]`` float32 scales of an int8 corpus.
      quantize_queries: int8 corpus only: quantize queries per vector and score in
        exact int32 (native kernel on CPU); ``False`` scores float queries against
        the dequantized rows.
      chunk_size: static corpus rows per scan step (memory is
        ``O(queries x chunk_size)`` beyond the corpus).
      impl: ``"auto"``/``"native"``/``"jax"`` for the int8 and Hamming kernels.

    Returns:
      :class:`SearchHits` ``(scores, indices, valid)``, each ``[..., k]``. An empty
      query batch gives empty ``[0, k]`` results.

    Raises:
      ValueError: dimension mismatch, empty corpus, ``k > N``, unknown metric,
        a metric that does not fit the corpus dtype, a filter of the wrong shape.

    Example:
      >>> import jax.numpy as jnp
      >>> corpus = jnp.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
      >>> exact_search(jnp.array([[1.0, 1.0]]), corpus, k=2).indices.tolist()
      [[1, 2]]
      >>> exact_search(jnp.array([[1.0, 1.0]]), corpus, k=2, metric="l2").indices.tolist()
      [[2, 0]]
    """
    queries, corpus = jnp.asarray(queries), jnp.asarray(corpus)
    scales = None if scales is None else jnp.asarray(scales, jnp.float32)
    where = None if where is None else jnp.asarray(where)
    kind = _check(queries, corpus, k, metric, where, chunk_size, scales)
    return _exact(
        queries,
        corpus,
        scales,
        where,
        jnp.int32(0),
        k=k,
        kind=kind,
        metric=metric,
        chunk_size=chunk_size,
        quantize_queries=quantize_queries,
        impl=impl,
    )


@partial(jax.jit, static_argnames=("k", "metric", "query_chunk"))
def _rescore(queries, corpus, ids, where, first, *, k, metric, query_chunk):
    n, d = corpus.shape
    ok = where & (ids >= 0) & (ids < n)
    safe = jnp.where(ok, ids, 0)
    prep_q = _prepare_queries(queries, "float", metric, d, False)

    def one(args):
        p, idx, m = args  # per query: prep dict of [D], [C], [C]
        rows = jnp.take(corpus, idx, axis=0).astype(jnp.float32)  # [C, D]
        dots = rows @ p["q"]
        if metric == "dot":
            s = dots
        else:
            sq = jnp.sum(rows * rows, axis=-1)
            if metric == "cosine":
                s = dots / jnp.where(sq > 0, jnp.sqrt(sq), 1.0)
            else:
                s = -(p["qsq"][0] - 2.0 * dots + sq)
        v, pos, valid = _topk.top_k(_clean(s), k, where=m)
        return jnp.where(valid, v, -jnp.inf), pos, valid

    v, pos, valid = lax.map(one, (prep_q, safe, ok), batch_size=query_chunk)
    return v, pos, valid, jnp.where(valid, jnp.take_along_axis(safe, pos, -1), 0)


def rescore(
    queries: Array,
    corpus: Array,
    candidates: Array,
    k: int,
    *,
    metric: str = "dot",
    where: Array | None = None,
    first_stage_scores: Array | None = None,
    query_chunk: int = 64,
) -> tuple[SearchHits, Array, Array | None]:
    r"""Exact rescoring of candidate ids (from any first stage) and their top ``k``.

    Works for candidates from :func:`exact_search` over quantized codes, IVF, a
    truncated (Matryoshka) prefix of the vectors, or an external engine (FAISS,
    usearch, Qdrant...). Only the ``[C, D]`` candidate rows of one query group are
    gathered at a time (``query_chunk`` queries).

    Args:
      queries: ``[Q, D]`` float.
      corpus: ``[N, D]`` float corpus (full dimension) to rescore with.
      candidates: ``[Q, C]`` integer corpus rows. Ids ``< 0`` or ``>= N`` (FAISS
        and usearch report missing results as ``-1``) count as padding.
      k: static, ``1 <= k <= C``.
      metric: ``"dot"``, ``"cosine"`` or ``"l2"``.
      where: optional ``[Q, C]`` bool mask of real candidates.
      first_stage_scores: optional ``[Q, C]``; returned reordered to the new
        ranking so that the caller can blend (e.g. with :mod:`jaxrank.fusion`).

    Returns:
      ``(hits, positions, first_stage)``: :class:`SearchHits` with corpus rows in
      ``hits.indices`` ``[Q, k]``; ``positions`` ``[Q, k]`` into the candidate list;
      ``first_stage`` ``[Q, k]`` (or ``None``). Ties: earlier candidate position
      first. Duplicated ids are scored (and may be returned) twice.

    Example:
      >>> import jax.numpy as jnp
      >>> corpus = jnp.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
      >>> hits, pos, _ = rescore(jnp.array([[0.0, 1.0]]), corpus, jnp.array([[0, 2, -1]]), 2)
      >>> hits.indices.tolist(), pos.tolist(), hits.valid.tolist()
      ([[2, 0]], [[1, 0]], [[True, True]])
    """
    queries, corpus, candidates = map(jnp.asarray, (queries, corpus, candidates))
    if metric not in ("dot", "cosine", "l2"):
        raise ValueError(f"metric: {metric!r} is not 'dot', 'cosine' or 'l2' for rescoring")
    if corpus.ndim != 2 or not jnp.issubdtype(corpus.dtype, jnp.floating):
        raise ValueError(f"corpus: expected a float [N, D] array, got {corpus.dtype}{corpus.shape}")
    if queries.ndim != 2 or queries.shape[-1] != corpus.shape[-1]:
        raise ValueError(
            f"queries: expected [Q, {corpus.shape[-1]}] (corpus D), got {queries.shape}"
        )
    if candidates.ndim != 2 or candidates.shape[0] != queries.shape[0]:
        raise ValueError(f"candidates: expected [Q={queries.shape[0]}, C], got {candidates.shape}")
    if not jnp.issubdtype(candidates.dtype, jnp.integer):
        raise TypeError(f"candidates: expected integer ids, got {candidates.dtype}")
    c = candidates.shape[1]
    if not isinstance(k, int) or not 1 <= k <= c:
        raise ValueError(f"k: must be in [1, {c}] for {c} candidates, got {k!r}")
    if where is None:
        where = jnp.ones(candidates.shape, bool)
    where = jnp.asarray(where)
    if where.shape != candidates.shape or where.dtype != jnp.bool_:
        raise ValueError(f"where: expected bool {candidates.shape}, got {where.dtype}{where.shape}")
    if queries.shape[0] == 0:
        z = jnp.zeros((0, k))
        hits = SearchHits(z, z.astype(jnp.int32), z.astype(bool))
        return hits, z.astype(jnp.int32), None if first_stage_scores is None else z
    ids = candidates.astype(jnp.int32) if candidates.dtype != jnp.int32 else candidates
    v, pos, valid, rows = _rescore(
        queries, corpus, ids, where, None, k=k, metric=metric, query_chunk=query_chunk
    )
    first = None
    if first_stage_scores is not None:
        fs = jnp.asarray(first_stage_scores)
        if fs.shape != candidates.shape:
            raise ValueError(f"first_stage_scores: expected {candidates.shape}, got {fs.shape}")
        first = jnp.take_along_axis(fs, pos, -1)
    return SearchHits(v, rows, valid), pos, first


def two_stage_search(
    queries: Array,
    corpus: Array,
    stage1_corpus: Array,
    k: int,
    *,
    candidates: int = 100,
    metric: str = "dot",
    stage1_metric: str | None = None,
    stage1_scales: Array | None = None,
    where: Array | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    impl: str = "auto",
) -> SearchHits:
    r"""Candidates from a cheap corpus representation, exact rescoring with ``corpus``.

    ``stage1_corpus`` is one of: packed sign bits (``stage1_metric="hamming"``),
    int8 codes with ``stage1_scales``, or a Matryoshka prefix ``corpus[:, :d]``
    (the queries are truncated to ``d`` dimensions for stage 1; use
    ``stage1_metric="cosine"`` to renormalize the prefixes).

    .. math::
        \mathrm{top}_k\ s(q, d)\ \text{over}\ d \in \mathrm{top}_{C}\ s_1(q_1, d_1)

    Args:
      queries: ``[Q, D]`` float; corpus: ``[N, D]`` float.
      stage1_corpus: ``[N, D1]`` (see above).
      k: static, ``k <= candidates <= N``.
      candidates: number of stage-1 candidates ``C``.
      metric: rescoring metric; ``stage1_metric`` defaults to it (``"hamming"``
        for a uint8 stage-1 corpus).

    Example:
      >>> import jax
      >>> from jaxrank.quant import binary_quantize
      >>> docs = jax.random.normal(jax.random.key(0), (500, 64))
      >>> hits = two_stage_search(docs[:2], docs, binary_quantize(docs), 3, candidates=20)
      >>> hits.indices[:, 0].tolist()
      [0, 1]
    """
    queries = jnp.asarray(queries)
    s1 = jnp.asarray(stage1_corpus)
    if stage1_metric is None:
        stage1_metric = "hamming" if s1.dtype == jnp.uint8 else metric
    if not k <= candidates:
        raise ValueError(f"candidates: {candidates} must be >= k={k}")
    q1 = queries
    if jnp.issubdtype(s1.dtype, jnp.floating) and s1.ndim == 2 and s1.shape[1] < queries.shape[-1]:
        q1 = queries[..., : s1.shape[1]]  # Matryoshka prefix
    first = exact_search(
        q1,
        s1,
        candidates,
        metric=stage1_metric,
        where=where,
        scales=stage1_scales,
        chunk_size=chunk_size,
        impl=impl,
    )
    hits, _, _ = rescore(queries, corpus, first.indices, k, metric=metric, where=first.valid)
    return hits


def sharded_search(
    queries: Array,
    corpus: Array,
    k: int,
    *,
    mesh: jax.sharding.Mesh,
    axis: str | None = None,
    metric: str = "dot",
    where: Array | None = None,
    scales: Array | None = None,
    quantize_queries: bool = True,
    chunk_size: int = DEFAULT_CHUNK,
    impl: str = "auto",
) -> SearchHits:
    r""":func:`exact_search` with the corpus rows sharded over mesh axis ``axis``.

    Each device streams its shard (``shard_map``) and keeps a local top-``k``; one
    :func:`jaxrank.topk.merge_across` (an ``all_gather`` of ``k`` entries per device)
    gives the global top-``k``, replicated on every device. Results (ids, ties,
    ``valid``) equal :func:`exact_search` on one device. When ``N`` is not a
    multiple of the axis size the corpus is padded once with masked rows.

    Args:
      mesh: a :class:`jax.sharding.Mesh`; ``axis`` defaults to its first axis name.
      others: as :func:`exact_search` (``where`` ``[N]`` or ``[Q, N]``).

    Example:
      >>> import jax, numpy as np
      >>> from jax.sharding import Mesh
      >>> docs = jax.random.normal(jax.random.key(0), (101, 8))
      >>> mesh = Mesh(np.array(jax.devices()), ("d",))
      >>> a = sharded_search(docs[:3], docs, 4, mesh=mesh)
      >>> bool((a.indices == exact_search(docs[:3], docs, 4).indices).all())
      True
    """
    from jax.sharding import PartitionSpec as P

    queries, corpus = jnp.asarray(queries), jnp.asarray(corpus)
    scales = None if scales is None else jnp.asarray(scales, jnp.float32)
    where = None if where is None else jnp.asarray(where)
    kind = _check(queries, corpus, k, metric, where, chunk_size, scales)
    axis = mesh.axis_names[0] if axis is None else axis
    n_dev = mesh.shape[axis]
    n = corpus.shape[0]
    pad = -n % n_dev
    if where is None:
        where = jnp.ones((n,), bool)
    if pad:
        corpus = jnp.pad(corpus, ((0, pad), (0, 0)))
        scales = None if scales is None else jnp.pad(scales, (0, pad))
        where = jnp.pad(where, [(0, 0)] * (where.ndim - 1) + [(0, pad)])
    local_n = (n + pad) // n_dev
    kw = dict(metric=metric, chunk_size=chunk_size, quantize_queries=quantize_queries, impl=impl)

    def local(q, c, s, w):
        off = lax.axis_index(axis).astype(jnp.int32) * local_n
        hits = _exact(q, c, s, w, off, k=min(k, local_n), kind=kind, **kw)
        return SearchHits(*_topk.merge_across(*hits, k=k, axis_name=axis))

    w_spec = P(*([None] * (where.ndim - 1)), axis)
    fn = jax.shard_map(
        local,
        mesh=mesh,
        in_specs=(P(), P(axis), None if scales is None else P(axis), w_spec),
        out_specs=P(),
        check_vma=False,
    )
    hits = jax.jit(fn)(queries, corpus, scales, where)
    ok = hits.valid
    return SearchHits(jnp.where(ok, hits.scores, -jnp.inf), jnp.where(ok, hits.indices, 0), ok)


__all__ = [
    "METRICS",
    "SearchHits",
    "exact_search",
    "rescore",
    "sharded_search",
    "two_stage_search",
]

"""IVF (inverted file) dense search: k-means partitions padded to a fixed capacity.

:func:`build_ivf` clusters the corpus with :func:`jaxrank.retrieve.kmeans` and stores
each partition's vectors (float32, bfloat16 or int8 codes with scales) in a
``[P, capacity, D]`` array with a boolean ``where [P, capacity]`` marking real rows
(fixed shapes: one compiled search for every query); a k-means list larger than
the capacity can be stored as several partitions (``overflow="split"``).
:func:`ivf_search` scores the ``L`` list centroids, probes the partitions of the
best ``nprobe`` lists with the streaming top-k of
:func:`jaxrank.topk.scan_top_k` (a group of partitions of about ``probe_rows`` rows
per scan step), and can rescore the
best ``candidates`` exactly with the float corpus (:func:`jaxrank.retrieve.rescore`).

``nprobe = L`` visits every document: the result equals :func:`exact_search`
(up to score ties). Ties within a query are broken by partition, then by row in
the partition.

Example:
    >>> import jax
    >>> from jaxrank.retrieve import build_ivf, exact_search, ivf_search
    >>> docs = jax.random.normal(jax.random.key(0), (2000, 16))
    >>> index = build_ivf(docs, 16, key=jax.random.key(1))
    >>> hits = ivf_search(index, docs[:4], k=5, nprobe=16)
    >>> bool((hits.indices == exact_search(docs[:4], docs, 5).indices).all())
    True
"""

from __future__ import annotations

import dataclasses
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxrank import _native, _serialize
from jaxrank import topk as _topk
from jaxrank.quant import quantize_int8
from jaxrank.retrieve._dense import (
    SearchHits,
    _clean,
    _prepare_queries,
    _score_rows,
    _topk_ffi,
    rescore,
)
from jaxrank.retrieve._kmeans import kmeans

Array = jax.Array


@_serialize.dataclass
@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class IVFIndex:
    """Partitioned corpus (a pytree; ``metric`` is static).

    Attributes:
      centroids: ``[L, D]`` float32, one per k-means list.
      pieces: ``[L + 1]`` int32 offsets: list ``l`` is stored in partitions
        ``pieces[l] .. pieces[l + 1] - 1`` (one each unless a list was split).
      vectors: ``[P, capacity, D]`` float32/bfloat16, or int8 codes (``P >= L``).
      scales: ``[P, capacity]`` float32 scales of int8 codes (``None`` otherwise).
      ids: ``[P, capacity]`` int32 corpus row of each slot (0 in padding).
      where: ``[P, capacity]`` bool, real rows.
      metric: ``"dot"``, ``"cosine"`` or ``"l2"``.
      max_pieces: largest number of partitions of one list (static).
    """

    centroids: Array
    pieces: Array
    vectors: Array
    scales: Array | None
    ids: Array
    where: Array
    metric: str = dataclasses.field(metadata={"static": True}, default="dot")
    max_pieces: int = dataclasses.field(metadata={"static": True}, default=1)

    @property
    def n_lists(self) -> int:
        """``L``, the k-means lists (what ``nprobe`` counts)."""
        return self.centroids.shape[0]

    @property
    def n_partitions(self) -> int:
        """``P``, the stored partitions (``L`` unless lists were split)."""
        return self.vectors.shape[0]

    @property
    def capacity(self) -> int:
        return self.vectors.shape[1]

    @property
    def fill(self) -> float:
        """Share of real rows among the ``P x capacity`` slots (1.0: no padding)."""
        return float(jnp.mean(self.where))


def _coarse(q, centroids, metric):
    s = jnp.dot(q, centroids.T, precision=lax.Precision.HIGHEST)
    if metric == "l2":
        s = 2.0 * s - jnp.sum(centroids * centroids, axis=-1)
    return s


def _spill(choices: np.ndarray, capacity: int, n_partitions: int) -> np.ndarray:
    """Host: assign each row to its first choice with room (rounds over choice ranks)."""
    n = choices.shape[0]
    assign = np.full(n, -1, np.int64)
    room = np.full(n_partitions, capacity, np.int64)
    for r in range(choices.shape[1]):
        rows = np.flatnonzero(assign < 0)
        if rows.size == 0:
            break
        want = choices[rows, r]
        order = np.argsort(want, kind="stable")  # by partition, then corpus order
        rows, want = rows[order], want[order]
        first = np.searchsorted(want, want, side="left")
        take = (np.arange(rows.size) - first) < room[want]
        assign[rows[take]] = want[take]
        room -= np.bincount(want[take], minlength=n_partitions)
    rest = np.flatnonzero(assign < 0)
    if rest.size:  # fill any free slots in partition order
        free = np.repeat(np.arange(n_partitions), room)
        assign[rest] = free[: rest.size]
    return assign


def build_ivf(
    corpus: Array,
    n_partitions: int,
    *,
    key: Array,
    metric: str = "dot",
    storage: str = "float32",
    iters: int = 10,
    train_size: int | None = None,
    batch_size: int | None = None,
    capacity: int | None = None,
    overflow: str = "spill",
    init: str = "k-means++",
) -> IVFIndex:
    """Build an :class:`IVFIndex` of ``corpus [N, D]`` with ``n_partitions`` partitions.

    k-means (``init`` seeding, ``"k-means++"`` or ``"random"``; mini-batch updates
    with ``batch_size``; spherical for ``"cosine"``) is trained on ``train_size``
    random rows (all by default); then every row goes to the
    partition :func:`ivf_search` would probe first for it (largest dot product for
    ``"dot"``/``"cosine"``, nearest centroid for ``"l2"``). For ``"cosine"`` the
    corpus is L2-normalized once here (zero rows stay zero) and so are the centroids
    (spherical k-means assignment; with ``"dot"`` on unit vectors, centroids of larger
    norm attract more rows and partitions grow unbalanced -- use ``"cosine"`` for them).

    Args:
      storage: ``"float32"``, ``"bfloat16"`` or ``"int8"`` (per-row scales).
      capacity: slots per partition; default: the largest partition rounded up to a
        multiple of 8. A smaller ``capacity`` (less padding, faster search) spills
        the rows of overfull partitions to their next-best partitions with room
        (up to the 8th best, then any), in corpus order; ``capacity x P < N`` raises
        ``ValueError`` (rows are never dropped).
      overflow: what a ``capacity`` below the largest partition does with the extra
        rows: ``"spill"`` (above) or ``"split"``: an overfull list is stored as
        ``ceil(rows / capacity)`` partitions of consecutive rows (corpus order), so
        the index has ``P >= n_partitions`` partitions for ``L = n_partitions``
        lists; a query probing the list scans all its partitions (``nprobe`` counts
        lists, as in FAISS). Splitting keeps a cluster's rows together; spilling
        scatters them to next-best partitions, which on well-separated clusters
        are unrelated (measured on the 1M synthetic mixture: spilled recall stalls
        at ~0.93).
      init: k-means seeding. ``"random"`` (as FAISS) costs one pass; k-means++ one
        pass over the training rows per list (measured: 44 s for 1,024 lists from
        65,536 rows x 384, vs 4.4 s for 10 Lloyd iterations; on the synthetic mixture
        of ``bench/bench_dense.py`` it gave no better lists: recall@10 at nprobe 1
        0.966 vs 0.975 with random seeding).

    Rows with NaN/inf are left out of the k-means training; they are stored (in the
    partition their NaN scores pick) but never returned by :func:`ivf_search`.

    Host-side (numpy) grouping; not jit-able. Memory: ``P x capacity x D``.

    Example (4 lists of 1,000 rows cannot fit in 4 partitions of 200 slots, so some
    lists are split; every row is stored exactly once):
      >>> import jax
      >>> docs = jax.random.normal(jax.random.key(0), (1000, 8))
      >>> index = build_ivf(docs, 4, key=jax.random.key(1), capacity=200, overflow="split")
      >>> index.n_lists, index.capacity, int(index.where.sum()), index.n_partitions >= 5
      (4, 200, 1000, True)
      >>> index.pieces.shape  # list l: partitions pieces[l] .. pieces[l + 1] - 1
      (5,)
    """
    x = jnp.asarray(corpus)
    if x.ndim != 2 or not jnp.issubdtype(x.dtype, jnp.floating):
        raise ValueError(f"corpus: expected a float [N, D] array, got {x.dtype}{x.shape}")
    n = x.shape[0]
    if metric not in ("dot", "cosine", "l2"):
        raise ValueError(f"metric: {metric!r} is not 'dot', 'cosine' or 'l2'")
    if storage not in ("float32", "bfloat16", "int8"):
        raise ValueError(f"storage: {storage!r} is not 'float32', 'bfloat16' or 'int8'")
    if not isinstance(n_partitions, int) or not 1 <= n_partitions <= n:
        raise ValueError(f"n_partitions: must be in [1, N={n}], got {n_partitions!r}")
    x = x.astype(jnp.float32)
    if metric == "cosine":
        nrm = jnp.linalg.norm(x, axis=-1, keepdims=True)
        x = x / jnp.where(nrm > 0, nrm, 1.0)
    k_sample, k_means = jax.random.split(key)
    train = x
    finite = np.asarray(jnp.all(jnp.isfinite(x), axis=-1))
    if not finite.all():  # NaN/inf rows would poison the centroids: train without them
        if not finite.any():
            raise ValueError("corpus: no row is finite (NaN/inf in every row)")
        train = x[jnp.asarray(np.flatnonzero(finite))]
    if train_size is not None and train_size < train.shape[0]:
        train = train[jax.random.choice(k_sample, train.shape[0], (train_size,), replace=False)]
    cent, _ = kmeans(
        train,
        n_partitions,
        key=k_means,
        iters=iters,
        batch_size=batch_size,
        init=init,
        spherical=metric == "cosine",  # unit centroids: the dot-product assignment balances
    )
    if overflow not in ("spill", "split"):
        raise ValueError(f"overflow: {overflow!r} is not 'spill' or 'split'")
    choices = 8 if capacity is not None and overflow == "spill" else 1
    top = jax.jit(
        lambda x, c: lax.map(
            lambda r: lax.top_k(_coarse(r, c, metric), min(choices, n_partitions))[1],
            x,
            batch_size=4096,
        )
    )(x, cent)
    counts = np.bincount(np.asarray(top[:, 0]), minlength=n_partitions)
    largest = int(counts.max())
    pieces = np.arange(n_partitions + 1)  # list -> partitions (CSR offsets)
    max_pieces = 1
    if capacity is None:
        capacity = -(-largest // 8) * 8
        assign = np.asarray(top[:, 0])
    elif overflow == "split":
        if capacity < 1:
            raise ValueError(f"capacity: must be >= 1, got {capacity}")
        first = np.asarray(top[:, 0])
        pieces = np.maximum(-(-counts // capacity), 1)  # empty partitions keep one piece
        base = np.concatenate([[0], np.cumsum(pieces)[:-1]])
        order0 = np.argsort(first, kind="stable")  # by partition, then corpus order
        starts0 = np.concatenate([[0], np.cumsum(counts)[:-1]])
        rank = np.empty(n, np.int64)
        rank[order0] = np.arange(n) - np.repeat(starts0, counts)
        assign = base[first] + rank // capacity
        max_pieces = int(pieces.max())
        pieces = np.concatenate([[0], np.cumsum(pieces)])
        n_partitions = int(pieces[-1])
        counts = np.bincount(assign, minlength=n_partitions)
    else:
        if capacity * n_partitions < n:
            raise ValueError(
                f"capacity: {capacity} x {n_partitions} partitions < N={n} rows "
                "(rows are never dropped)"
            )
        assign = _spill(np.asarray(top), capacity, n_partitions)
        counts = np.bincount(assign, minlength=n_partitions)
    order = np.argsort(assign, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    slot = np.arange(n) - np.repeat(starts, counts)
    part = assign[order]
    flat = part * capacity + slot  # slot of each sorted row
    ids = np.zeros(n_partitions * capacity, np.int32)
    ids[flat] = order
    where = np.zeros(n_partitions * capacity, bool)
    where[flat] = True
    flat_j = jnp.asarray(flat)
    src = x[jnp.asarray(order)]
    d = x.shape[1]
    scales = None
    if storage == "int8":
        codes, sc = quantize_int8(src)
        vectors = jnp.zeros((n_partitions * capacity, d), jnp.int8).at[flat_j].set(codes)
        scales = jnp.zeros((n_partitions * capacity,), jnp.float32).at[flat_j].set(sc)
        scales = scales.reshape(n_partitions, capacity)
    else:
        dt = jnp.float32 if storage == "float32" else jnp.bfloat16
        vectors = jnp.zeros((n_partitions * capacity, d), dt).at[flat_j].set(src.astype(dt))
    return IVFIndex(
        centroids=cent,
        pieces=jnp.asarray(pieces, jnp.int32),
        vectors=vectors.reshape(n_partitions, capacity, d),
        scales=scales,
        ids=jnp.asarray(ids.reshape(n_partitions, capacity)),
        where=jnp.asarray(where.reshape(n_partitions, capacity)),
        metric=metric,
        max_pieces=max_pieces,
    )


@partial(
    jax.jit,
    static_argnames=("k", "nprobe", "probe_chunk", "query_chunk", "quantize_queries", "impl"),
)
def _ivf(index, queries, doc_where, *, k, nprobe, probe_chunk, query_chunk, quantize_queries, impl):
    metric = index.metric
    kind = "int8" if index.vectors.dtype == jnp.int8 else "float"
    cap, d = index.capacity, index.vectors.shape[-1]
    # cosine: vectors are normalized at build time, queries here; then it is a dot product
    row_metric = "dot" if metric == "cosine" else metric
    prep = _prepare_queries(queries, kind, metric, d, quantize_queries)
    n_part, mp = index.n_partitions, index.max_pieces
    slots = nprobe * mp  # partitions a query may visit (static)
    pc = min(probe_chunk, slots)  # partitions scored per scan step
    groups = -(-slots // pc)

    def one(p):  # one query
        coarse = _coarse(p["q"], index.centroids, metric)
        _, lists = lax.top_k(coarse, nprobe)
        first = index.pieces[lists]
        cand = first[:, None] + jnp.arange(mp, dtype=jnp.int32)
        cand = jnp.where(cand < index.pieces[lists + 1][:, None], cand, n_part)
        # increasing partitions (index-order ties); absent pieces (n_part) sort last
        cand = jnp.pad(jnp.sort(cand.reshape(-1)), (0, groups * pc - slots), constant_values=n_part)
        real = (cand < n_part).reshape(groups, pc)
        probes = jnp.minimum(cand, n_part - 1).astype(jnp.int32)  # masked by `real`

        def score(chunk):
            parts = chunk["part"]  # [pc]
            rows = index.vectors[parts].reshape(pc * cap, d)
            sc = None if index.scales is None else index.scales[parts].reshape(-1)
            s = _clean(_score_rows(p, rows, sc, kind, row_metric, "jax"))
            w = index.where[parts] & chunk["real"][:, None]
            if doc_where is not None:
                w = w & doc_where[index.ids[parts]]
            return s, w.reshape(-1)

        # positions in the concatenation of the probed partitions (in increasing order)
        chunks = {
            "offset": jnp.arange(groups, dtype=jnp.int32) * (pc * cap),
            "part": probes.reshape(groups, pc),
            "real": real,
        }
        v, pos, ok = _topk.scan_top_k(score, chunks, k, ())
        return v, probes[pos // cap] * cap + pos % cap, ok

    def pure(prep):
        v, slot, ok = lax.map(one, prep, batch_size=query_chunk)
        ids = index.ids.reshape(-1)[slot]
        return SearchHits(jnp.where(ok, v, -jnp.inf), jnp.where(ok, ids, 0), ok)

    if kind != "float" or index.vectors.dtype != jnp.float32 or row_metric != "dot":
        return pure(prep)
    if doc_where is not None:
        return pure(prep)
    # raw queries: the kernel normalizes them for cosine (tiny XLA:CPU fusions for the
    # norm cost ~17 us per call at batch 1, as much as the whole scan at nprobe=1)
    q = queries.astype(jnp.float32)

    def native(q, centroids, pieces, vectors, where, ids):
        call = _topk_ffi("jaxrank_ivf_flat", q.shape[0], k)
        return SearchHits(
            *call(
                q,
                centroids,
                pieces,
                vectors,
                where,
                ids,
                nprobe=np.int64(nprobe),
                normalize=np.int64(metric == "cosine"),
                num_threads=np.int64(_native.num_threads(None)),
            )
        )

    def jax_path(q, centroids, pieces, vectors, where, ids):
        return pure(prep)

    args = (q, index.centroids, index.pieces, index.vectors, index.where, index.ids)
    return _native.select(native, jax_path, *args, impl=impl)


def ivf_search(
    index: IVFIndex,
    queries: Array,
    k: int,
    *,
    nprobe: int = 8,
    where: Array | None = None,
    rescore_corpus: Array | None = None,
    candidates: int | None = None,
    quantize_queries: bool = True,
    probe_rows: int = 4096,
    query_chunk: int = 1,
    impl: str = "auto",
) -> SearchHits:
    r"""Approximate top-``k`` by probing the ``nprobe`` best partitions of ``index``.

    Args:
      index: from :func:`build_ivf`.
      queries: ``[Q, D]`` float.
      k: static; ``k <= nprobe x capacity``.
      nprobe: static, k-means lists visited per query (all the partitions of
        each), ``1 <= nprobe <= L`` (``index.n_lists``; a larger value raises
        ``ValueError``).
      where: optional ``[N]`` bool document filter.
      rescore_corpus: optional float ``[N, D]`` corpus: the best ``candidates``
        (default ``4 k``) of the partition scan are rescored exactly with it.
      quantize_queries: int8 storage only: int8 x int8 scoring (else float queries
        against dequantized rows).
      probe_rows: partitions are gathered and scored together, about ``probe_rows``
        rows per scan step (at least one partition); fewer, larger steps are faster.
      query_chunk: queries scored together (memory ``query_chunk x probe_rows x D``);
        the default 1 (queries in sequence) was 10x faster on XLA:CPU than vmapped
        groups of 4-64 queries (measured on SciFact, nprobe=16).
      impl: ``"auto"``/``"native"``/``"jax"``. On CPU with the native core, float32
        lists under ``"dot"``/``"cosine"`` without a ``where`` filter are scanned by the
        native kernel ``jaxrank_ivf_flat`` (centroid scoring, probe choice and a top-k
        heap over the probed lists in place, one query per thread; ``probe_rows`` and
        ``query_chunk`` do not apply); other cases and other platforms take the
        pure-JAX path (a gather of the probed lists and a streaming top-k).

    Returns:
      :class:`SearchHits` ``[Q, k]`` with corpus row ids (``valid=False`` when the
      probed partitions hold fewer than ``k`` admissible documents).

    Example:
      >>> import jax
      >>> docs = jax.random.normal(jax.random.key(0), (1000, 8))
      >>> index = build_ivf(docs, 8, key=jax.random.key(1), metric="cosine", storage="int8")
      >>> hits = ivf_search(index, docs[:2], 3, nprobe=8, rescore_corpus=docs)
      >>> hits.indices[:, 0].tolist()
      [0, 1]
    """
    queries = jnp.asarray(queries)
    p, cap = index.n_lists, index.capacity
    if queries.ndim != 2 or queries.shape[-1] != index.vectors.shape[-1]:
        raise ValueError(
            f"queries: expected [Q, {index.vectors.shape[-1]}] (index D), got {queries.shape}"
        )
    if not isinstance(nprobe, int) or not 1 <= nprobe <= p:
        raise ValueError(f"nprobe: must be in [1, {p}] (lists of the index), got {nprobe!r}")
    n_cand = k if rescore_corpus is None else (candidates or 4 * k)
    if not isinstance(k, int) or not 1 <= k <= n_cand <= nprobe * cap:
        raise ValueError(
            f"k={k!r}/candidates={candidates!r}: need 1 <= k <= candidates <= nprobe x capacity "
            f"= {nprobe * cap}"
        )
    if where is not None:
        where = jnp.asarray(where)
        if where.dtype != jnp.bool_ or where.ndim != 1:
            raise ValueError(f"where: expected a bool [N] filter, got {where.dtype}{where.shape}")
    if queries.shape[0] == 0:
        z = jnp.zeros((0, k))
        return SearchHits(z, z.astype(jnp.int32), z.astype(bool))
    hits = _ivf(
        index,
        queries,
        where,
        k=n_cand,
        nprobe=nprobe,
        probe_chunk=max(1, probe_rows // cap),
        query_chunk=query_chunk,
        quantize_queries=quantize_queries,
        impl=impl,
    )
    if rescore_corpus is None:
        return hits
    out, _, _ = rescore(
        queries, rescore_corpus, hits.indices, k, metric=index.metric, where=hits.valid
    )
    return out


__all__ = ["IVFIndex", "build_ivf", "ivf_search"]

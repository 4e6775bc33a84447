"""Jit-compiled query-batch scoring over a blocked, partitioned, optionally sharded index.

Layout (built once on the host by :func:`searcher`): the corpus is cut into ``P``
contiguous document partitions of ``part_size`` documents. In each partition the
postings of every term are stored in fixed blocks of ``BLOCK = 32`` entries
(``post_doc [P, NB, 32]`` local doc index, ``post_w [P, NB, 32]`` weight; padding
points at a dump slot with weight 0), with ``blk_start / blk_count [P, V]``.

Scoring a query batch ``[Q, T]`` in one partition: the host lists the batch's
blocks flat (``blk / row / bw [B]``: block id, query row, query term weight, ordered
by row and term; ``B`` rounded up by at most 1/8, so no per-query padding and no
``cumsum`` over postings on device); the device gathers the ``[B, 32]`` postings,
multiplies by the query term weights and scatter-adds them into ``[Q, part_size]``
scores, followed by a local top-k. Partitions are streamed with ``lax.scan`` and a
running top-k merge (:mod:`jaxrank.topk`), so memory is bounded by ``Q * part_size``, never
``Q * n_docs``; query batches are additionally cut into chunks by a memory budget.

With a ``mesh``, partitions are sharded over the mesh axis with ``shard_map``: each
device scans its partitions, and :func:`jaxrank.topk.merge_across` gathers the local
top-k lists into the global top-k, identical to the single-device result. The same
code runs multi-host after ``jax.distributed.initialize()`` with a mesh over
``jax.devices()`` (all hosts then call :meth:`Searcher.search` with the same queries).

On CPU without a mesh, the native kernel of :mod:`jaxrank.retrieve._native_search`
(``ffi/lexical.cc``) replaces this path (``impl="auto"``): postings accumulate into
a dense buffer and the top-k is selected in one host call, with identical results
(same float32 operations in the same order; ties by the smaller document index).
The blocked device arrays are then not built at all.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxrank import _native
from jaxrank import topk as _topk
from jaxrank.retrieve import _native_search
from jaxrank.retrieve._index import InvertedIndex
from jaxrank.retrieve._weights import TermWeights, method_weights

BLOCK = 32
_CACHE_BYTES = 1 << 21
_DEFAULT_PART = 1 << 18
_PART_KEYS = ("post_doc", "post_w", "doc_prior", "doc_valid", "offset")  # on device


def _next_pow2(x: int, floor: int = 1) -> int:
    return max(floor, 1 << max(0, int(x) - 1).bit_length())


def _bucket(n: int) -> int:
    """Round ``n`` up to a size with at most 1/8 padding (few distinct jit shapes)."""
    n = max(n, 64)
    step = _next_pow2(n) // 8
    return -(-n // step) * step


def _blocked_partitions(index: InvertedIndex, w: TermWeights, n_parts: int, part_size: int):
    """Host: the blocked per-partition postings (see module docstring)."""
    v, n = index.n_terms, index.n_docs
    doc = index.post_doc.astype(np.int64)
    term = index.post_term.astype(np.int64)
    part = doc // part_size
    group = part * v + term  # postings are (term, doc)-sorted; sort by (part, term, doc)
    order = np.argsort(group, kind="stable") if n_parts > 1 else np.arange(len(doc))
    group = group[order]
    cnt = np.bincount(group, minlength=n_parts * v).reshape(n_parts, v)
    nblk = (cnt + BLOCK - 1) // BLOCK
    blk_start = np.cumsum(nblk, axis=1) - nblk
    n_blocks = int(nblk.sum(axis=1).max()) + 1  # + one all-padding block, last
    gstart = np.cumsum(cnt.reshape(-1)) - cnt.reshape(-1)
    rank = np.arange(len(group)) - gstart[group]
    p_of, t_of = group // v, group % v
    slot = (blk_start[p_of, t_of] * BLOCK + rank).astype(np.int64)
    post_doc = np.full((n_parts, n_blocks * BLOCK), part_size, np.int32)
    post_w = np.zeros((n_parts, n_blocks * BLOCK), np.float32)
    post_doc[p_of, slot] = (doc[order] - p_of * part_size).astype(np.int32)
    post_w[p_of, slot] = w.post_w[order]
    pad = n_parts * part_size - n
    prior = np.concatenate([w.doc_prior, np.zeros(pad, np.float32)]).reshape(n_parts, -1)
    valid = np.arange(n_parts * part_size).reshape(n_parts, -1) < n
    return {
        "post_doc": post_doc.reshape(n_parts, n_blocks, BLOCK),
        "post_w": post_w.reshape(n_parts, n_blocks, BLOCK),
        "blk_start": blk_start.astype(np.int32),
        "blk_count": nblk.astype(np.int32),
        "doc_prior": prior,
        "doc_valid": valid,
        "offset": (np.arange(n_parts) * part_size).astype(np.int32),
    }


def _score_partition(part, q_const, q_len, *, part_size):
    """Scores ``[Q, part_size]`` of one partition (the jit-compiled inner kernel).

    ``part`` holds the partition's postings and the query batch's flat block list
    ``blk / row / bw [B]`` (block id, query row, query term weight).
    """
    n_q = q_const.shape[0]
    docs = part["post_doc"][part["blk"]]  # [B, 32]
    w = part["post_w"][part["blk"]] * part["bw"][:, None]
    flat_idx = part["row"][:, None] * (part_size + 1) + docs
    flat = jnp.zeros(n_q * (part_size + 1), jnp.float32)
    flat = flat.at[flat_idx.reshape(-1)].add(w.reshape(-1))
    scores = flat.reshape(n_q, part_size + 1)[:, :part_size]
    scores = scores + q_const[:, None] + q_len[:, None] * part["doc_prior"][None, :]
    return scores, part["doc_valid"][None, :]


def _search_parts(parts, q_const, q_len, *, k, part_size, algorithm="auto"):
    """Top-k over the partitions in ``parts`` (leading axis), streamed with a scan."""
    n_local = parts["post_doc"].shape[0]
    if n_local == 1:
        one = jax.tree.map(lambda a: a.reshape(a.shape[1:]), parts)  # a bitcast, no copy
        s, ok = _score_partition(one, q_const, q_len, part_size=part_size)
        return _topk.top_k(
            s, min(k, part_size), where=ok, offset=one["offset"], algorithm=algorithm
        )
    # Scan over partitions. The postings stay whole (flattened to [P * NB, 32], block
    # ids offset per partition): slicing them per scan step would copy them each time.
    n_blocks = parts["post_doc"].shape[1]
    post = {
        "post_doc": parts["post_doc"].reshape(-1, parts["post_doc"].shape[-1]),
        "post_w": parts["post_w"].reshape(-1, parts["post_w"].shape[-1]),
    }
    first = (jnp.arange(n_local, dtype=jnp.int32) * n_blocks)[:, None]
    xs = {key: parts[key] for key in ("row", "bw", "doc_prior", "doc_valid", "offset")}
    xs["blk"] = parts["blk"] + first
    return _topk.scan_top_k(
        lambda p: _score_partition({**post, **p}, q_const, q_len, part_size=part_size),
        xs,
        k,
        (q_const.shape[0],),
        algorithm,
    )


@partial(jax.jit, static_argnames=("k", "part_size", "algorithm"))
def _search_jit(parts, q_const, q_len, *, k, part_size, algorithm):
    return _search_parts(parts, q_const, q_len, k=k, part_size=part_size, algorithm=algorithm)


def _sharded_search_fn(mesh: Mesh, axis: str, k: int, part_size: int, algorithm: str):
    def local(parts, q_const, q_len):
        out = _search_parts(parts, q_const, q_len, k=k, part_size=part_size, algorithm=algorithm)
        return _topk.merge_across(*out, k=k, axis_name=axis)

    keys = (*_PART_KEYS, "blk", "row", "bw")
    fn = jax.shard_map(
        local,
        mesh=mesh,
        in_specs=({key: P(axis) for key in keys}, P(), P()),
        out_specs=P(),
        check_vma=False,
    )
    return jax.jit(fn)


def _block_lists(blk_start, blk_count, terms, weights, where, pad_block):
    """Host: the flat block list ``(blk, row, bw) [P, B]`` of a query batch.

    Blocks are ordered by (query row, term slot, block), so each document's score
    accumulates its terms in query order, as bm25s does.
    """
    n_t = terms.shape[1]
    qt = np.flatnonzero(where.reshape(-1))
    t_flat = terms.reshape(-1)[qt]
    w_flat = weights.reshape(-1)[qt]
    rows = (qt // n_t).astype(np.int32)
    nb = blk_count[:, t_flat]  # [P, QT]
    totals = nb.sum(1)
    size = _bucket(int(totals.max(initial=1)))
    n_parts = blk_start.shape[0]
    blk = np.full((n_parts, size), pad_block, np.int32)
    row = np.zeros((n_parts, size), np.int32)
    bw = np.zeros((n_parts, size), np.float32)
    for p in range(n_parts):
        rep = np.repeat(np.arange(len(qt)), nb[p])
        first = np.cumsum(nb[p]) - nb[p]
        m = len(rep)
        blk[p, :m] = blk_start[p, t_flat][rep] + (np.arange(m) - first[rep])
        row[p, :m] = rows[rep]
        bw[p, :m] = w_flat[rep]
    return blk, row, bw


@dataclass(frozen=True)
class SearchResult:
    """Top-k of a query batch.

    ``scores [Q, k]`` float32 descending, ``indices [Q, k]`` int32 document index
    (row of ``doc_ids``), ``valid [Q, k]`` bool (False for queries without any
    in-vocabulary term, which get an empty result), ``doc_ids [N]`` the index's ids.
    """

    scores: np.ndarray
    indices: np.ndarray
    valid: np.ndarray
    doc_ids: np.ndarray
    n_empty: int = 0

    def to_run(self, query_ids: Sequence[str], name: str = "jaxrank"):
        """A :class:`jaxrank.io.Run` of the valid entries (write it with ``write_run``)."""
        from jaxrank.io import Run

        if len(query_ids) != len(self.scores):
            raise ValueError(f"query_ids: {len(query_ids)} ids for {len(self.scores)} queries")
        counts = self.valid.sum(1)
        offsets = np.zeros(len(counts) + 1, np.int64)
        np.cumsum(counts, out=offsets[1:])
        return Run(
            query_ids=np.asarray([str(q) for q in query_ids], dtype=object),
            offsets=offsets,
            doc_ids=np.asarray(self.doc_ids, dtype=object)[self.indices[self.valid]],
            scores=self.scores[self.valid].astype(np.float64),
            ranks=None,
            name=name,
        )

    def to_dict(self, query_ids: Sequence[str]) -> dict[str, dict[str, float]]:
        """``{query_id: {doc_id: score}}`` of the valid entries."""
        out = {}
        for qi, qid in enumerate(query_ids):
            ok = self.valid[qi]
            docs = self.doc_ids[self.indices[qi][ok]].tolist()
            out[str(qid)] = dict(zip(docs, self.scores[qi][ok].astype(float).tolist(), strict=True))
        return out


@dataclass(frozen=True, eq=False)
class Searcher:
    """An index prepared for one scoring method: its arrays on device (``impl="jax"``) or
    host CSR arrays for the native CPU kernel (``impl="native"``).

    Build with :func:`searcher`; call :meth:`search` with query strings or
    :meth:`search_terms` with term ids and weights.
    """

    index: InvertedIndex
    method: str
    params: dict
    weights: TermWeights
    parts: dict
    part_size: int
    n_parts: int
    mesh: Mesh | None
    axis: str
    memory_budget: int
    top_k_algorithm: str = "auto"
    impl: str = "jax"
    num_threads: int = 1
    _host: dict = field(default_factory=dict, repr=False)

    def _query_arrays(self, ids: np.ndarray, offsets: np.ndarray, *, dedup: bool = True):
        """Flat term ids -> padded terms [Q, T] with counts, in first-seen order.

        With ``dedup=False`` every token occurrence keeps its own slot (count 1), so
        scores accumulate term by term in query order exactly as bm25s does (same
        float32 rounding).
        """
        n_q = len(offsets) - 1
        lens = np.diff(offsets)
        qid = np.repeat(np.arange(n_q), lens)
        if dedup:
            v = max(self.index.n_terms, 1)
            key = qid.astype(np.int64) * v + ids
            uniq, first, counts = np.unique(key, return_index=True, return_counts=True)
            order = np.argsort(first, kind="stable")  # first-occurrence order
            uq, ut, counts = uniq[order] // v, uniq[order] % v, counts[order]
            order = np.argsort(uq, kind="stable")
            uq, ut, counts = uq[order], ut[order], counts[order]
        else:
            uq, ut, counts = qid, ids.astype(np.int64), np.ones(len(ids), np.int64)
        n_terms = np.bincount(uq, minlength=n_q)
        t_pad = _next_pow2(n_terms.max(initial=1), floor=8)
        col = np.arange(len(uq)) - (np.cumsum(n_terms) - n_terms)[uq]
        terms = np.zeros((n_q, t_pad), np.int32)
        cnt = np.zeros((n_q, t_pad), np.float32)
        terms[uq, col] = ut
        cnt[uq, col] = counts
        return terms, cnt, cnt > 0

    def _query_weights(self, terms, cnt, where):
        w = self.weights
        f = cnt
        if w.query_tf == "log":
            f = np.where(where, 1 + np.log(np.maximum(cnt, 1)), 0).astype(np.float32)
        elif w.query_tf == "binary":
            f = where.astype(np.float32)
        if w.query_idf is not None:
            f = f * w.query_idf[terms]
        if w.query_l2:
            f = f / np.maximum(np.sqrt((f * f).sum(-1, keepdims=True)), 1e-30)
        return np.where(where, f, 0).astype(np.float32)

    def search(self, queries: Sequence[str], k: int = 10) -> SearchResult:
        """Tokenize ``queries`` with the index's tokenizer and return their top ``k``.

        ``k`` larger than the corpus is clamped to ``n_docs``. Queries without any
        in-vocabulary term get an all-invalid row and are counted in a warning.
        """
        ids, offsets = self.index.encode_queries(queries)
        w = self.weights
        raw = w.query_tf == "raw" and w.query_idf is None  # repeated terms simply add up
        terms, cnt, where = self._query_arrays(ids, offsets, dedup=not raw)
        return self.search_terms(terms, self._query_weights(terms, cnt, where), where, k=k)

    def search_terms(
        self, terms: np.ndarray, weights: np.ndarray, where: np.ndarray, k: int = 10
    ) -> SearchResult:
        """Top ``k`` for weighted term-id queries ``terms/weights/where [Q, T]``.

        Score: :math:`\\sum_t w_t (W_{t,d} + C_t) + (\\sum_t w_t) D_d` (see
        :mod:`jaxrank.retrieve._weights`). A term repeated within a row adds up.
        """
        terms = np.asarray(terms, np.int32)
        weights = np.asarray(weights, np.float32)
        where = np.asarray(where, bool)
        if terms.ndim != 2 or weights.shape != terms.shape or where.shape != terms.shape:
            raise ValueError(
                f"terms/weights/where: need equal [Q, T] shapes, got {terms.shape}, "
                f"{weights.shape}, {where.shape}"
            )
        if where.any() and (terms[where].min() < 0 or terms[where].max() >= self.index.n_terms):
            raise ValueError(f"terms: ids must be in [0, {self.index.n_terms})")
        if not isinstance(k, int | np.integer) or k < 1:
            raise ValueError(f"k: must be a positive integer, got {k!r}")
        n_q = terms.shape[0]
        k = min(int(k), self.index.n_docs)
        terms = np.where(where, terms, 0)
        weights = np.where(where, weights, 0).astype(np.float32)
        empty = ~where.any(-1)
        if empty.any():
            warnings.warn(
                f"{int(empty.sum())} of {n_q} queries have no in-vocabulary terms; "
                "they get an empty result",
                stacklevel=2,
            )
        const = (weights * self.weights.term_const[terms]).astype(np.float32)
        if self.weights.term_const.any():  # summed per row as numpy does (bm25s parity)
            q_const = np.array([c[m].sum() for c, m in zip(const, where, strict=True)], np.float32)
        else:
            q_const = np.zeros(n_q, np.float32)
        q_len = weights.sum(-1, dtype=np.float32)
        if self.impl == "native":
            out_s, out_i, out_v = _native_search.search(
                self._host["native"], self.index.n_docs, terms, weights, where,
                q_const, q_len, k, self.num_threads,
            )  # fmt: skip
            out_v[empty] = False
            return SearchResult(out_s, out_i, out_v, self.index.doc_ids, int(empty.sum()))
        # blocks per query (max over partitions) and the memory budget set the chunking
        host_cnt = self._host["blk_count"]  # [P, V]
        per_q = (host_cnt[:, terms] * where[None]).sum(-1).max(0)  # [Q]
        out_s = np.empty((n_q, k), np.float32)
        out_i = np.empty((n_q, k), np.int32)
        out_v = np.empty((n_q, k), bool)
        score_bytes = 4 * (self.part_size + 1) * 3
        post_bytes = 16 * BLOCK * max(float(per_q.mean()) if n_q else 1.0, 1.0)
        chunk = self.memory_budget // (score_bytes + post_bytes)
        # keep the scatter target cache-sized (measured: 32-128 SciFact queries per
        # call beat 300, whose 6 MB score buffer thrashes the cache)
        chunk = min(chunk, max(8, _CACHE_BYTES // (4 * (self.part_size + 1))))
        chunk = int(max(1, min(n_q, chunk)))
        pad_block = self._host["n_blocks"] - 1
        for start in range(0, n_q, chunk):
            sl = slice(start, min(n_q, start + chunk))
            m = sl.stop - sl.start
            pad = chunk - m if n_q > chunk else 0
            blk, row, bw = _block_lists(
                self._host["blk_start"], host_cnt, terms[sl], weights[sl], where[sl], pad_block
            )
            lists = {"blk": blk, "row": row, "bw": bw}
            q_c = np.pad(q_const[sl], (0, pad))
            q_l = np.pad(q_len[sl], (0, pad))
            v, i, ok = self._run(lists, q_c, q_l, k)
            out_s[sl], out_i[sl], out_v[sl] = v[:m], i[:m], ok[:m]
        out_v[empty] = False
        return SearchResult(out_s, out_i, out_v, self.index.doc_ids, int(empty.sum()))

    def _run(self, lists, q_const, q_len, k):
        if self.mesh is None:
            parts = {**self.parts, **lists}
            out = _search_jit(
                parts,
                q_const,
                q_len,
                k=k,
                part_size=self.part_size,
                algorithm=self.top_k_algorithm,
            )
        else:
            sh = NamedSharding(self.mesh, P(self.axis, None))
            parts = {**self.parts, **{key: jax.device_put(a, sh) for key, a in lists.items()}}
            fns = self._host.setdefault("sharded", {})
            if k not in fns:
                fns[k] = _sharded_search_fn(
                    self.mesh, self.axis, k, self.part_size, self.top_k_algorithm
                )
            out = fns[k](parts, q_const, q_len)
        return tuple(np.asarray(a) for a in out)


def searcher(
    index: InvertedIndex,
    method: str = "lucene",
    *,
    part_size: int | None = None,
    mesh: Mesh | None = None,
    axis: str | None = None,
    memory_budget: int = 1 << 29,
    top_k_algorithm: str = "auto",
    impl: str = "auto",
    num_threads: int | None = None,
    **params,
) -> Searcher:
    """Prepare ``index`` for ``method`` and put its arrays on device(s).

    Args:
      index: an :class:`~jaxrank.retrieve.InvertedIndex`.
      method: ``"robertson" | "lucene" | "atire" | "bm25l" | "bm25+"`` (params ``k1``
        (default 1.5), ``b`` (0.75), ``delta`` (0.5)), ``"tfidf"`` (``tf``, ``idf``,
        ``norm``), ``"ql_dirichlet"`` (``mu``), ``"ql_jm"`` (``lam``).
      part_size: documents per partition (default: ``n_docs / mesh size``, at most
        ``2**18``); memory is bounded by ``queries * part_size`` scores.
      mesh: optional :class:`jax.sharding.Mesh`; partitions are sharded over its
        axis ``axis`` (default: its first axis).
      memory_budget: bytes of scores/gathered postings per jit call; larger query
        batches are cut into chunks.
      top_k_algorithm: :func:`jaxrank.topk.top_k`'s ``algorithm`` (``"auto"``;
        ``"approx"`` = ``lax.approx_max_k``, the TPU option, approximate).
      impl: ``"auto"`` (the native CPU kernel when the default backend is CPU, there
        is no ``mesh``, ``top_k_algorithm`` is exact and the native library is
        loaded; else pure JAX), ``"jax"`` (always pure JAX) or ``"native"`` (error
        when the native kernel cannot be used). The :mod:`jaxrank.config` switch
        applies to ``"auto"``. Both give identical results.
      num_threads: threads of the native kernel (query rows are split among them;
        default ``JAXRANK_NUM_THREADS``, else every core this process may use).

    Example:
        >>> from jaxrank.retrieve import build_index, searcher
        >>> idx = build_index(["cats sit", "dogs run", "cats and dogs"], stemmer=None)
        >>> res = searcher(idx, "lucene", k1=1.2, b=0.75).search(["cats"], k=2)
        >>> res.indices.tolist(), res.valid.tolist()
        ([[0, 2]], [[True, True]])
    """
    w = method_weights(index, method, **params)
    n = index.n_docs
    use_native = _use_native(impl, mesh, top_k_algorithm)
    n_dev = 1
    if mesh is not None:
        axis = axis or mesh.axis_names[0]
        n_dev = mesh.shape[axis]
    if part_size is None:  # partitions of <= 2**18 docs: measured 4x faster at 1M docs, k=10
        part_size = min(math.ceil(n / n_dev), _DEFAULT_PART)
    if part_size < 1:
        raise ValueError(f"part_size: must be >= 1, got {part_size}")
    n_parts = math.ceil(n / part_size)
    n_parts = math.ceil(n_parts / n_dev) * n_dev
    if use_native:
        return Searcher(
            index=index,
            method=method,
            params=dict(params),
            weights=w,
            parts={},
            part_size=part_size,
            n_parts=n_parts,
            mesh=None,
            axis="",
            memory_budget=memory_budget,
            top_k_algorithm=top_k_algorithm,
            impl="native",
            num_threads=_native_search.default_threads(num_threads),
            _host={"native": _native_search.host_arrays(index, w)},
        )
    host = _blocked_partitions(index, w, n_parts, part_size)
    on_device = {key: host[key] for key in _PART_KEYS}  # block tables stay on the host
    if mesh is None:
        parts = jax.device_put(on_device)
    else:
        parts = {
            key: jax.device_put(a, NamedSharding(mesh, P(axis, *([None] * (a.ndim - 1)))))
            for key, a in on_device.items()
        }
    return Searcher(
        index=index,
        method=method,
        params=dict(params),
        weights=w,
        parts=parts,
        part_size=part_size,
        n_parts=n_parts,
        mesh=mesh,
        axis=axis or "",
        memory_budget=memory_budget,
        top_k_algorithm=top_k_algorithm,
        impl="jax",
        _host={
            "blk_count": host["blk_count"],
            "blk_start": host["blk_start"],
            "n_blocks": host["post_doc"].shape[1],
        },
    )


def _use_native(impl: str, mesh: Mesh | None, top_k_algorithm: str) -> bool:
    """Whether a searcher runs its queries on the native CPU kernel (see :func:`searcher`)."""
    mode = _native.resolve(impl)  # raises for impl="native" without the library
    if mode == "jax":
        return False
    why = None
    if mesh is not None:
        why = "a mesh is given (sharded search runs on the pure-JAX path)"
    elif top_k_algorithm == "approx":
        why = 'top_k_algorithm="approx" is a pure-JAX option'
    elif jax.default_backend() != "cpu":
        why = f"the default backend is {jax.default_backend()!r}, not CPU"
    elif not _native_search.available():
        why = "the native library has no jaxrank_lexical_search (rebuild it)"
    if why is not None and impl == "native":
        raise ValueError(f"impl='native': the native lexical kernel cannot be used: {why}")
    return why is None

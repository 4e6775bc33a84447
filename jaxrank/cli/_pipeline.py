"""The retrieval pipeline behind ``jaxrank demo`` and ``jaxrank rerank``.

Every stage uses the library; nothing needs a pretrained model:

* **BM25** with :func:`jaxrank.retrieve.build_index` / :func:`jaxrank.retrieve.searcher`.
* **LSA** (latent semantic analysis): a rank-``r`` truncated SVD
  :math:`A \\approx U_r \\Sigma_r V_r^\\top` of the ``[N, V]`` TF-IDF matrix (log tf,
  smooth idf, L2-normalized rows), computed in JAX by randomized subspace iteration
  (Halko, Martinsson & Tropp 2011) on the sparse postings, so ``A`` is never dense.
  Documents are ``A V_r`` (= ``U_r Σ_r`` up to the SVD's error), a query with TF-IDF vector ``q`` is
  ``q V_r``; both are searched by cosine with :func:`jaxrank.retrieve.exact_search`.
* **Fusion**: RRF of BM25 and LSA with :func:`jaxrank.fusion.fuse`.
* **MaxSim**: the fused top candidates rescored by :func:`jaxrank.rerank.maxsim` with one
  token vector per distinct term, taken from the LSA term space (rows of
  ``V_r Σ_r``, unit length); query tokens are weighted by their idf, so the score is
  :math:`\\sum_{t \\in q} \\mathrm{idf}_t \\max_{u \\in d} \\cos(t, u)` -- a soft-matching
  lexical score.
* **Learned head**: :class:`jaxrank.nn.MLPScorer` on per-candidate features, trained
  with a soft-rank NDCG loss built on :func:`jaxrank.soft.soft_rank`.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxrank._progress import progress
from jaxrank.cli import UserError
from jaxrank.io import Qrels, Run

BUILTIN = "hobbies"


def builtin_path() -> Path:
    """The folder of the built-in collection (``jaxrank/data/hobbies``)."""
    from importlib import resources

    return Path(str(resources.files("jaxrank") / "data" / BUILTIN))


@dataclass
class Collection:
    name: str
    doc_ids: np.ndarray
    docs: list[str]
    query_ids: list[str]
    queries: list[str]
    qrels: Qrels | None


def load_collection(folder: str | Path | None, split: str = "test") -> Collection:
    """A BEIR folder (default: the built-in collection); only judged queries when judged."""
    from jaxrank.io import read_beir

    path = builtin_path() if folder is None else Path(folder)
    if not path.is_dir():
        raise UserError(f"{path}: not a directory (expected a BEIR folder)")
    if not (path / "corpus.jsonl").is_file() or not (path / "queries.jsonl").is_file():
        raise UserError(f"{path}: a BEIR folder needs corpus.jsonl and queries.jsonl")
    data = read_beir(path, split)
    if data.qrels is not None:
        qids, texts = data.split_queries()
    else:
        qids, texts = data.query_ids, data.queries
    name = BUILTIN if folder is None else path.name
    return Collection(
        name,
        data.doc_ids,
        data.documents(),
        [str(q) for q in qids],
        [str(t) for t in texts],
        data.qrels,
    )


def default_stemmer() -> str | None:
    """Snowball English when PyStemmer is installed, else no stemming."""
    try:
        import Stemmer  # noqa: F401
    except ImportError:
        return None
    return "english"


# ----------------------------------------------------------------------------- LSA


@dataclass
class LSA:
    """A truncated SVD of the TF-IDF matrix.

    ``doc_vectors [N, r]`` (``A V``), ``basis [V, r]`` (``V``), ``sigma [r]``,
    ``idf [V]``.
    """

    doc_vectors: jax.Array
    basis: jax.Array
    sigma: jax.Array
    idf: np.ndarray

    @property
    def term_vectors(self) -> jax.Array:
        """``[V, r]`` unit term vectors (rows of ``V Σ`` normalized)."""
        t = self.basis * self.sigma
        return t / jnp.maximum(jnp.linalg.norm(t, axis=1, keepdims=True), 1e-12)


def _tfidf(index):
    """Sparse TF-IDF rows: (row, col, value) of each posting, and idf (as scikit-learn)."""
    from jaxrank.retrieve import tfidf_weights

    w = tfidf_weights(index, tf="log", idf="smooth", norm="l2")
    return index.post_doc, index.post_term, w.post_w, np.asarray(w.query_idf)


def _orth(z):
    """Orthonormal basis of the columns of a tall ``z [m, l]`` through the ``l x l`` Gram
    matrix (XLA's CPU QR of tall matrices is slow): ``z E diag(w)^-1/2`` with
    ``z^T z = E diag(w) E^T``; directions with ``w`` below ``1e-6 max(w)`` are zeroed."""
    w, e = jnp.linalg.eigh(z.T @ z)
    keep = w > 1e-6 * jnp.max(w)
    return (z @ e) * jnp.where(keep, jax.lax.rsqrt(jnp.where(keep, w, 1.0)), 0.0)


@partial(jax.jit, static_argnames=("n_docs", "n_terms", "rank", "n_iter"))
def _randomized_svd(rows, cols, vals, perm, key, *, n_docs, n_terms, rank, n_iter):
    # postings come term-major (cols sorted); perm orders them doc-major (rows sorted)
    rows_d, cols_d, vals_d = rows[perm], cols[perm], vals[perm]

    def a_mul(x):  # A @ x, x [V, l] -> [N, l]
        return jax.ops.segment_sum(
            vals_d[:, None] * x[cols_d], rows_d, num_segments=n_docs, indices_are_sorted=True
        )

    def at_mul(y):  # A^T @ y, y [N, l] -> [V, l]
        return jax.ops.segment_sum(
            vals[:, None] * y[rows], cols, num_segments=n_terms, indices_are_sorted=True
        )

    omega = jax.random.normal(key, (n_terms, rank), jnp.float32)
    q = _orth(_orth(a_mul(omega)))  # twice: CholeskyQR2-style accuracy

    def power(_, q):  # subspace (power) iteration, re-orthonormalized
        return _orth(_orth(a_mul(_orth(at_mul(q)))))

    q = jax.lax.fori_loop(0, n_iter, power, q)
    b_t = at_mul(q)  # B^T = A^T Q  [V, l]
    # SVD of the small B = Q^T A through B B^T = Ub S^2 Ub^T: V = B^T Ub S^-1
    w, ub = jnp.linalg.eigh(b_t.T @ b_t)
    w, ub = w[::-1], ub[:, ::-1]  # descending
    s = jnp.sqrt(jnp.maximum(w, 0.0))
    v = (b_t @ ub) * jnp.where(s > 0, 1.0 / jnp.where(s > 0, s, 1.0), 0.0)
    return a_mul(v), s, v  # documents A V (~ U S): the same projection as queries q V


def fit_lsa(index, dim: int, *, n_iter: int = 4, oversample: int = 10, seed: int = 0) -> LSA:
    """Rank-``dim`` LSA of ``index``'s TF-IDF matrix (randomized SVD in JAX)."""
    rows, cols, vals, idf = _tfidf(index)
    n, v = index.n_docs, index.n_terms
    dim = max(1, min(dim, n - 1, v - 1))
    l = min(dim + oversample, n, v)
    docs, s, basis = _randomized_svd(
        jnp.asarray(rows),
        jnp.asarray(cols),
        jnp.asarray(vals, jnp.float32),
        jnp.asarray(np.argsort(rows, kind="stable")),
        jax.random.key(seed),
        n_docs=n,
        n_terms=v,
        rank=l,
        n_iter=n_iter,
    )
    return LSA(docs[:, :dim], basis[:, :dim], s[:dim], idf)


def query_terms(index, texts: list[str]) -> list[np.ndarray]:
    """In-vocabulary term ids of each query (with repeats)."""
    ids, offsets = index.encode_queries(texts)
    return [ids[offsets[i] : offsets[i + 1]] for i in range(len(texts))]


def lsa_queries(lsa: LSA, index, terms: list[np.ndarray]) -> jax.Array:
    """``[Q, r]`` query vectors ``q V`` of the TF-IDF query vectors."""
    q = np.zeros((len(terms), index.n_terms), np.float32)
    for i, t in enumerate(terms):
        u, c = np.unique(t, return_counts=True)
        q[i, u] = (1 + np.log(c)) * lsa.idf[u]
    norm = np.linalg.norm(q, axis=1, keepdims=True)
    q = q / np.maximum(norm, 1e-12)
    return jnp.asarray(q) @ lsa.basis


def lsa_search(lsa: LSA, index, terms, query_ids, k: int) -> Run:
    from jaxrank.retrieve import exact_search

    qv = lsa_queries(lsa, index, terms)
    k = min(k, index.n_docs)
    hits = exact_search(qv, lsa.doc_vectors, k, metric="cosine")
    return _hits_to_run(
        np.asarray(hits.scores), np.asarray(hits.indices), index.doc_ids, query_ids, "lsa"
    )


def _hits_to_run(scores, indices, doc_ids, query_ids, name) -> Run:
    ok = np.isfinite(scores) & (indices >= 0)
    counts = ok.sum(1)
    offsets = np.zeros(len(counts) + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    return Run(
        query_ids=np.asarray(query_ids, dtype=object),
        offsets=offsets,
        doc_ids=np.asarray(doc_ids, dtype=object)[indices[ok]],
        scores=scores[ok].astype(np.float64),
        ranks=None,
        name=name,
    )


# -------------------------------------------------------------------------- MaxSim


def doc_tokens(index, max_tokens: int) -> tuple[np.ndarray, np.ndarray]:
    """``[N, L]`` distinct term ids of each document (its ``max_tokens`` highest TF-IDF
    terms when longer; padded with 0) and ``[N]`` lengths."""
    rows, cols, vals, _ = _tfidf(index)
    order = np.lexsort((-vals, rows))  # by doc, then weight descending
    rows, cols = rows[order], cols[order]
    counts = np.bincount(rows, minlength=index.n_docs)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pos = np.arange(len(rows)) - starts[rows]
    keep = pos < max_tokens
    lengths = np.minimum(counts, max_tokens).astype(np.int32)
    width = max(1, int(lengths.max()))
    toks = np.zeros((index.n_docs, width), np.int32)
    toks[rows[keep], pos[keep]] = cols[keep]
    return toks, lengths


@partial(jax.jit, static_argnames=("impl",))
def _maxsim_batch(tv, qtok, qw, dtok, dlen, *, impl):
    """``[B, C]`` MaxSim of B queries, each against its own C candidates."""
    from jaxrank.rerank import maxsim

    def one(qt, w, dt, dl):
        return maxsim(tv[qt] * w[:, None], tv[dt], doc_lengths=dl, impl=impl)

    return jax.vmap(one)(qtok, qw, dtok, dlen)


def maxsim_scores(
    lsa: LSA,
    index,
    terms: list[np.ndarray],
    cand: list[np.ndarray],
    *,
    max_doc_tokens: int = 64,
    batch: int = 8,
) -> list[np.ndarray]:
    """idf-weighted MaxSim of each query against its candidate document indices.

    Queries go in batches of ``batch`` (padded, so one compiled shape serves all); each
    query's candidates ``[C, Ld, r]`` are gathered from the term vectors on device.
    """
    tv = lsa.term_vectors
    toks, lengths = doc_tokens(index, max_doc_tokens)
    uniq = [np.unique(t) for t in terms]
    lq = max(1, max((len(u) for u in uniq), default=1))
    lq = 1 << (lq - 1).bit_length()  # bucket query lengths: few compilations
    depth = max(1, max((len(c) for c in cand), default=1))
    n = len(cand)
    nb = -(-n // batch) * batch
    qtok = np.zeros((nb, lq), np.int32)
    qw = np.zeros((nb, lq), np.float32)
    dtok = np.zeros((nb, depth), np.int64)
    for i, (u, c) in enumerate(zip(uniq, cand, strict=True)):
        qtok[i, : len(u)] = u
        qw[i, : len(u)] = lsa.idf[u]
        dtok[i, : len(c)] = c
    out = np.zeros((nb, depth), np.float32)
    for s in progress(range(0, nb, batch), desc="maxsim rerank", delay=0.5):
        d = dtok[s : s + batch]
        out[s : s + batch] = np.asarray(
            _maxsim_batch(
                tv,
                jnp.asarray(qtok[s : s + batch]),
                jnp.asarray(qw[s : s + batch]),
                jnp.asarray(toks[d]),
                jnp.asarray(lengths[d]),
                impl="jax",
            )
        )
    return [out[i, : len(c)] for i, c in enumerate(cand)]


def run_candidates(
    run: Run, index, depth: int, query_ids: list[str]
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per query of ``query_ids``: the document indices of its top ``depth`` entries in
    ``run`` (score descending, ties in file order) and their scores; a query that the
    run lacks gets none."""
    pos = {d: i for i, d in enumerate(index.doc_ids.tolist())}
    row = {q: i for i, q in enumerate(run.query_ids.tolist())}
    docs_out, scores_out = [], []
    for q in query_ids:
        i = row.get(q)
        if i is None:
            docs_out.append(np.zeros(0, np.int64))
            scores_out.append(np.zeros(0, np.float64))
            continue
        lo, hi = run.offsets[i], run.offsets[i + 1]
        order = np.argsort(-run.scores[lo:hi], kind="stable")[:depth]
        docs = run.doc_ids[lo:hi][order].tolist()
        missing = [d for d in docs if d not in pos]
        if missing:
            raise UserError(f"run: document {missing[0]!r} of query {q!r} is not in the corpus")
        docs_out.append(np.asarray([pos[d] for d in docs], np.int64))
        scores_out.append(run.scores[lo:hi][order])
    return docs_out, scores_out


def scored_run(query_ids, cand, scores, doc_ids, name) -> Run:
    """A run from per-query candidate indices and scores."""
    return Run.from_dict(
        {
            q: dict(zip(doc_ids[c].tolist(), np.asarray(s, float).tolist(), strict=True))
            for q, c, s in zip(query_ids, cand, scores, strict=True)
        },
        name=name,
    )


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class Timer:
    def __init__(self):
        self.t0 = time.perf_counter()

    def lap(self) -> float:
        t, self.t0 = self.t0, time.perf_counter()
        return self.t0 - t

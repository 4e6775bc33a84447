"""Scoring functions as precomputed per-posting weights (host side, numpy).

Every lexical scorer here has the form

.. math::

    s(q, d) = \\sum_{t \\in q} w_q(t) \\, \\big( W_{t,d} + C_t \\big) + |q|_w \\, D_d

where :math:`W_{t,d}` is stored per posting (non-zero only where :math:`t \\in d`),
:math:`C_t` is a per-term constant, :math:`D_d` a per-document prior and
:math:`|q|_w = \\sum_t w_q(t)`. So a query is a sparse gather-and-sum, as in bm25s's
eager index. Query term weights :math:`w_q(t)` are the query term counts, except for
TF-IDF (see :func:`tfidf_weights`).

BM25 variants follow bm25s 0.3.16 (Kamphuis et al., ECIR 2020), including its
float32 rounding points, so that scores agree to float32 precision:

- robertson: idf :math:`\\ln\\max(1, \\frac{N-df+0.5}{df+0.5})`,
  tfc :math:`\\frac{tf}{k_1(1-b+bL)+tf}` with :math:`L = dl/avgdl`;
- lucene: idf :math:`\\ln(1+\\frac{N-df+0.5}{df+0.5})`, tfc as robertson;
- atire: idf :math:`\\ln(N/df)`, tfc :math:`\\frac{tf(k_1+1)}{tf+k_1(1-b+bL)}`;
- bm25l: idf :math:`\\ln\\frac{N+1}{df+0.5}`,
  tfc :math:`\\frac{(k_1+1)(c+\\delta)}{k_1+c+\\delta}` with :math:`c=\\frac{tf}{1-b+bL}`;
- bm25+: idf :math:`\\ln\\frac{N+1}{df}`, tfc :math:`\\frac{(k_1+1)tf}{k_1(1-b+bL)+tf}+\\delta`.

For bm25l and bm25+ the component is non-zero at :math:`tf=0`; its value
(``idf * tfc(0)`` at average length, as bm25s computes it) is :math:`C_t` and is
subtracted from :math:`W_{t,d}`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jaxrank.retrieve._index import InvertedIndex

BM25_METHODS = ("robertson", "lucene", "atire", "bm25l", "bm25+")
METHODS = (*BM25_METHODS, "tfidf", "ql_dirichlet", "ql_jm")


@dataclass(frozen=True)
class TermWeights:
    """Host arrays of one scoring method (see the module docstring).

    ``post_w [nnz]`` float32 per posting, ``term_const [V]``, ``doc_prior [N]``
    (float32), ``query_idf [V]`` float32 or ``None`` (TF-IDF query weighting), and
    ``query_tf`` (how query term counts become weights: "raw", "log", "binary").
    """

    post_w: np.ndarray
    term_const: np.ndarray
    doc_prior: np.ndarray
    query_idf: np.ndarray | None = None
    query_tf: str = "raw"
    query_l2: bool = False


def _bm25_idf(method: str, df: np.ndarray, n: int) -> np.ndarray:
    df = df.astype(np.float64)
    if method == "robertson":
        return np.log(np.maximum((n - df + 0.5) / (df + 0.5), 1.0))
    if method == "lucene":
        return np.log(1 + (n - df + 0.5) / (df + 0.5))
    if method == "atire":
        return np.log(n / df)
    if method == "bm25l":
        return np.log((n + 1) / (df + 0.5))
    return np.log((n + 1) / df)  # bm25+


def _bm25_tfc(method, tf, dl, avgdl, k1, b, delta):
    """Term-frequency component with bm25s's dtypes: ``tf`` is float32 there and
    ``avgdl`` a numpy float64, so products of ``tf`` with Python floats round to
    float32 (atire, bm25+ numerators) while sums with ``avgdl`` terms are float64."""
    tf32 = np.asarray(tf, np.float32)
    tf = tf32.astype(np.float64)
    if method in ("robertson", "lucene"):
        return tf / (k1 * ((1 - b) + b * dl / avgdl) + tf)
    if method == "atire":
        num = (tf32 * np.float32(k1 + 1)).astype(np.float64)
        return num / (tf + k1 * (1 - b + b * dl / avgdl))
    if method == "bm25l":
        c = tf / (1 - b + b * dl / avgdl)
        return ((k1 + 1) * (c + delta)) / (k1 + c + delta)
    num = (np.float32(k1 + 1) * tf32).astype(np.float64)  # bm25+
    return num / (k1 * (1 - b + b * dl / avgdl) + tf) + delta


def bm25_weights(
    index: InvertedIndex,
    method: str = "lucene",
    *,
    k1: float = 1.5,
    b: float = 0.75,
    delta: float = 0.5,
) -> TermWeights:
    """Per-posting BM25 weights (bm25s's eager scoring), see the module table.

    Returns:
      :class:`TermWeights` with ``post_w`` aligned with the index's postings
      (term-major: ``index.post_term``, ``index.post_doc``).

    Example (hand calculation, Lucene: :math:`idf = \\ln(1 + \\frac{N - df + 0.5}{df + 0.5})`,
    weight :math:`idf \\cdot tf / (tf + k_1 (1 - b + b\\, dl / avgdl))`, N = 2,
    avgdl = 1.5): "cat" (df 2, idf ln 1.2) in d1 (dl 2): 0.18232 / 2.875 = 0.063416;
    in d2 (dl 1): 0.18232 / 2.125 = 0.085798; "dog" (df 1, idf ln 2) in d1: 0.24109.

      >>> from jaxrank.retrieve import build_index
      >>> idx = build_index(["cat dog", "cat"], ["d1", "d2"])
      >>> idx.vocab.tolist(), idx.post_term.tolist(), idx.post_doc.tolist()
      (['cat', 'dog'], [0, 0, 1], [0, 1, 0])
      >>> bm25_weights(idx, "lucene", k1=1.5, b=0.75).post_w.round(6).tolist()
      [0.063416, 0.085798, 0.241095]
    """
    if method not in BM25_METHODS:
        raise ValueError(f"method: {method!r} is not one of {BM25_METHODS}")
    n = index.n_docs
    df = index.df
    avgdl = np.float64(index.doc_len.mean())
    idf64 = np.where(df > 0, _bm25_idf(method, np.maximum(df, 1), n), 0.0)
    idf32 = idf64.astype(np.float32)
    term = index.post_term
    tf = index.post_tf
    dl = index.doc_len[index.post_doc].astype(np.float64)
    w = idf32[term].astype(np.float64) * _bm25_tfc(method, tf, dl, avgdl, k1, b, delta)
    const = np.zeros(index.n_terms, np.float32)
    if method in ("bm25l", "bm25+"):
        tfc0 = _bm25_tfc(method, 0.0, avgdl, avgdl, k1, b, delta)
        const = np.where(df > 0, idf64 * tfc0, 0.0).astype(np.float32)
        w = w - const[term].astype(np.float64)
    return TermWeights(w.astype(np.float32), const, np.zeros(n, np.float32))


_TF = {
    "raw": lambda tf: tf,
    "log": lambda tf: np.where(tf > 0, 1 + np.log(np.maximum(tf, 1)), 0.0),
    "binary": lambda tf: (tf > 0).astype(np.float64),
}


def tfidf_weights(
    index: InvertedIndex, *, tf: str = "log", idf: str = "smooth", norm: str | None = "l2"
) -> TermWeights:
    """TF-IDF vectors of documents and queries, scored by their dot product.

    Document vector :math:`d_t = f(tf_{t,d}) \\, idf_t` and query vector
    :math:`q_t = f(qtf_t) \\, idf_t`, each divided by its L2 norm when ``norm="l2"``
    (then the score is their cosine similarity, as scikit-learn's
    ``TfidfVectorizer(sublinear_tf=tf == "log", smooth_idf=idf == "smooth")``).

    - ``tf``: ``"raw"`` :math:`tf`, ``"log"`` :math:`1+\\ln tf`, ``"binary"`` :math:`1`.
    - ``idf``: ``"smooth"`` :math:`\\ln\\frac{1+N}{1+df}+1`, ``"plain"``
      :math:`\\ln\\frac{N}{df}+1`, ``"none"`` :math:`1`.

    Example (hand calculation: idf("cat") = ln(3/3) + 1 = 1, idf("dog") = ln(3/2) + 1
    = 1.405465; d1 = (1, 1.405465) / 1.724893 = (0.579739, 0.814802), d2 = (1)):

      >>> from jaxrank.retrieve import build_index
      >>> idx = build_index(["cat dog", "cat"], ["d1", "d2"])
      >>> w = tfidf_weights(idx)  # postings: (cat, d1), (cat, d2), (dog, d1)
      >>> w.post_w.round(6).tolist(), w.query_idf.round(6).tolist()
      ([0.579739, 1.0, 0.814802], [1.0, 1.405465])
    """
    if tf not in _TF:
        raise ValueError(f"tf: {tf!r} is not one of {tuple(_TF)}")
    n, df = index.n_docs, index.df.astype(np.float64)
    if idf == "smooth":
        idf_v = np.log((1 + n) / (1 + df)) + 1
    elif idf == "plain":
        idf_v = np.log(n / np.maximum(df, 1)) + 1
    elif idf == "none":
        idf_v = np.ones_like(df)
    else:
        raise ValueError(f"idf: {idf!r} is not one of ('smooth', 'plain', 'none')")
    if norm not in (None, "l2"):
        raise ValueError(f"norm: {norm!r} is not one of (None, 'l2')")
    w = _TF[tf](index.post_tf.astype(np.float64)) * idf_v[index.post_term]
    if norm == "l2":
        sq = np.bincount(index.post_doc, weights=w * w, minlength=n)
        w = w / np.sqrt(np.maximum(sq, 1e-300))[index.post_doc]
    return TermWeights(
        w.astype(np.float32),
        np.zeros(index.n_terms, np.float32),
        np.zeros(n, np.float32),
        query_idf=idf_v.astype(np.float32),
        query_tf=tf,
        query_l2=norm == "l2",
    )


def ql_weights(
    index: InvertedIndex, smoothing: str = "dirichlet", *, mu: float = 1000.0, lam: float = 0.1
) -> TermWeights:
    """Query likelihood :math:`\\log P(q \\mid d) = \\sum_t qtf_t \\log P(t \\mid d)`.

    With :math:`p_t = cf_t / |C|`:

    - Dirichlet: :math:`P(t|d) = \\frac{tf + \\mu p_t}{dl + \\mu}`, so
      :math:`W = \\ln(1 + \\frac{tf}{\\mu p_t})`, :math:`C = \\ln(\\mu p_t)`,
      :math:`D = -\\ln(dl + \\mu)`.
    - Jelinek-Mercer: :math:`P(t|d) = (1-\\lambda)\\frac{tf}{dl} + \\lambda p_t`, so
      :math:`W = \\ln(1 + \\frac{(1-\\lambda) tf}{\\lambda\\, dl\\, p_t})`,
      :math:`C = \\ln(\\lambda p_t)`, :math:`D = 0`.

    The score is the exact log-likelihood of the in-vocabulary query terms
    (terms absent from the collection have :math:`p_t = 0` and are dropped, as in
    every scorer here).

    Example (hand calculation, Dirichlet with :math:`\\mu = 1000`: :math:`p` = 2/3
    for "cat", 1/3 for "dog"; :math:`W` = ln(1 + 1 / (1000 p)): 0.0014989 for cat,
    0.0029955 for dog; :math:`C = \\ln(\\mu p)` = 6.502290, 5.809143):

      >>> from jaxrank.retrieve import build_index
      >>> idx = build_index(["cat dog", "cat"], ["d1", "d2"])
      >>> w = ql_weights(idx, "dirichlet", mu=1000.0)  # postings (cat,d1) (cat,d2) (dog,d1)
      >>> w.post_w.round(7).tolist(), w.term_const.round(6).tolist()
      ([0.0014989, 0.0014989, 0.0029955], [6.50229, 5.809143])
    """
    if smoothing not in ("dirichlet", "jm"):
        raise ValueError(f"smoothing: {smoothing!r} is not 'dirichlet' or 'jm'")
    if smoothing == "dirichlet" and not mu > 0:
        raise ValueError(f"mu: must be > 0, got {mu}")
    if smoothing == "jm" and not 0 < lam < 1:
        raise ValueError(f"lam: must be in (0, 1), got {lam}")
    total = float(index.doc_len.sum())
    p = index.cf / max(total, 1.0)
    p_safe = np.maximum(p, 1e-300)
    tf = index.post_tf.astype(np.float64)
    pt = p_safe[index.post_term]
    if smoothing == "dirichlet":
        w = np.log1p(tf / (mu * pt))
        const = np.log(mu * p_safe)
        prior = -np.log(index.doc_len.astype(np.float64) + mu)
    else:
        dl = index.doc_len[index.post_doc].astype(np.float64)
        w = np.log1p((1 - lam) * tf / (lam * dl * pt))
        const = np.log(lam * p_safe)
        prior = np.zeros(index.n_docs)
    return TermWeights(w.astype(np.float32), const.astype(np.float32), prior.astype(np.float32))


def method_weights(index: InvertedIndex, method: str, **params) -> TermWeights:
    """Dispatch: a BM25 method name, ``"tfidf"``, ``"ql_dirichlet"`` or ``"ql_jm"``."""
    if method in BM25_METHODS:
        return bm25_weights(index, method, **params)
    if method == "tfidf":
        return tfidf_weights(index, **params)
    if method == "ql_dirichlet":
        return ql_weights(index, "dirichlet", **params)
    if method == "ql_jm":
        return ql_weights(index, "jm", **params)
    raise ValueError(f"method: {method!r} is not one of {METHODS}")

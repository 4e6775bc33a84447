"""Lexical retrieval: tokenizer, inverted index, BM25 family, TF-IDF, query likelihood, PRF.

The host side (strings, files) tokenizes and builds document-term statistics with
numpy; scoring runs as one jit-compiled function of device arrays per query batch,
streamed over corpus partitions with a running top-k and optionally sharded over a
device mesh.

Example:
    >>> from jaxrank.retrieve import build_index, searcher
    >>> idx = build_index(
    ...     ["Cats chase mice.", "Dogs chase cats.", "Birds sing."], ["c", "d", "b"]
    ... )
    >>> s = searcher(idx, "lucene", k1=1.2, b=0.75)
    >>> res = s.search(["who chases cats?", "the"], k=2)  # doctest: +SKIP
    >>> res.to_dict(["q1", "q2"])["q1"]  # doctest: +SKIP
    {'d': ..., 'c': ...}
"""

from jaxrank.retrieve._index import InvertedIndex, build_index, load_index, save_index
from jaxrank.retrieve._prf import rm3, robertson_expansion
from jaxrank.retrieve._search import Searcher, SearchResult, searcher
from jaxrank.retrieve._tokenize import STOPWORDS, Tokenizer
from jaxrank.retrieve._weights import (
    BM25_METHODS,
    METHODS,
    TermWeights,
    bm25_weights,
    method_weights,
    ql_weights,
    tfidf_weights,
)

__all__ = [
    "BM25_METHODS",
    "METHODS",
    "STOPWORDS",
    "InvertedIndex",
    "SearchResult",
    "Searcher",
    "TermWeights",
    "Tokenizer",
    "bm25_weights",
    "build_index",
    "load_index",
    "method_weights",
    "ql_weights",
    "rm3",
    "robertson_expansion",
    "save_index",
    "searcher",
    "tfidf_weights",
]
from jaxrank.retrieve._dense import (
    METRICS as DENSE_METRICS,
)
from jaxrank.retrieve._dense import (
    SearchHits,
    exact_search,
    rescore,
    sharded_search,
    two_stage_search,
)
from jaxrank.retrieve._ivf import IVFIndex, build_ivf, ivf_search
from jaxrank.retrieve._kmeans import kmeans, kmeans_plusplus
from jaxrank.retrieve._pq import PQCodebook, pq_decode, pq_encode, pq_search, train_pq

__all__ += [
    "DENSE_METRICS",
    "IVFIndex",
    "PQCodebook",
    "SearchHits",
    "build_ivf",
    "exact_search",
    "ivf_search",
    "kmeans",
    "kmeans_plusplus",
    "pq_decode",
    "pq_encode",
    "pq_search",
    "rescore",
    "sharded_search",
    "train_pq",
    "two_stage_search",
]

"""The inverted index: document-term statistics built on the host, saved as a directory.

:func:`build_index` tokenizes a corpus and stores, per term, the documents that
contain it with their term frequencies (a CSC matrix: ``term_ptr`` / ``post_doc`` /
``post_tf``), plus document lengths. Everything a scoring function needs (df, cf,
average length) derives from these; weights for a scoring method are computed from
them by :mod:`jaxrank.retrieve._weights` and held on device by
:class:`jaxrank.retrieve.Searcher`.

On disk an index is a directory of ``.npy`` files (memory-mappable with
``load_index(path, mmap=True)``) and a ``meta.json`` naming the format, its version,
the tokenizer settings, and the shape and byte size of every array file, so that a
truncated, foreign or newer-version directory gives a clear error on load.

Example:
    >>> from jaxrank.retrieve import build_index
    >>> idx = build_index(["a cat sat", "the cat ate the rat"], ["d1", "d2"], stemmer=None)
    >>> idx.n_docs, idx.vocab.tolist(), idx.doc_len.tolist()
    (2, ['cat', 'sat', 'ate', 'rat'], [2, 3])
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from jaxrank.retrieve._tokenize import Tokenizer

FORMAT = "jaxrank.lexical_index"
VERSION = 1
_ARRAYS = ("doc_ids", "vocab", "term_ptr", "post_doc", "post_tf", "doc_len")


@dataclass(frozen=True, eq=False)
class InvertedIndex:
    """Term -> (doc, tf) postings of a tokenized corpus (host numpy arrays).

    Attributes:
      doc_ids: ``[N]`` str, the external document ids (row ``i`` is document ``i``).
      vocab: ``[V]`` str, the term of each term id.
      term_ptr: ``[V+1]`` int64; the postings of term ``t`` are
        ``post_doc[term_ptr[t]:term_ptr[t+1]]`` (ascending doc index).
      post_doc: ``[nnz]`` int32 document index of each posting.
      post_tf: ``[nnz]`` int32 term frequency of each posting.
      doc_len: ``[N]`` int32 document length in tokens (after stopwords).
      tokenizer: the :class:`Tokenizer` used for documents; queries must use it too.
      defaults: JSON-serializable search defaults saved with the index (e.g.
        ``{"method": "lucene", "k1": 1.2}``, used by ``jaxrank search``).
    """

    doc_ids: np.ndarray
    vocab: np.ndarray
    term_ptr: np.ndarray
    post_doc: np.ndarray
    post_tf: np.ndarray
    doc_len: np.ndarray
    tokenizer: Tokenizer
    defaults: dict = field(default_factory=dict)
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def n_docs(self) -> int:
        return len(self.doc_len)

    @property
    def n_terms(self) -> int:
        return len(self.term_ptr) - 1

    @property
    def df(self) -> np.ndarray:
        """``[V]`` document frequency of each term."""
        return np.diff(self.term_ptr)

    @property
    def post_term(self) -> np.ndarray:
        """``[nnz]`` term id of each posting."""
        if "post_term" not in self._cache:
            self._cache["post_term"] = np.repeat(np.arange(self.n_terms, dtype=np.int32), self.df)
        return self._cache["post_term"]

    @property
    def cf(self) -> np.ndarray:
        """``[V]`` collection frequency (total occurrences) of each term."""
        return np.bincount(self.post_term, weights=self.post_tf, minlength=self.n_terms)

    @property
    def term_id(self) -> dict[str, int]:
        """term -> term id."""
        if "term_id" not in self._cache:
            self._cache["term_id"] = {t: i for i, t in enumerate(self.vocab.tolist())}
        return self._cache["term_id"]

    def forward(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Doc-major view ``(doc_ptr [N+1], terms [nnz], tf [nnz])`` (for feedback)."""
        if "forward" not in self._cache:
            order = np.argsort(self.post_doc, kind="stable")
            ptr = np.zeros(self.n_docs + 1, np.int64)
            np.cumsum(np.bincount(self.post_doc, minlength=self.n_docs), out=ptr[1:])
            self._cache["forward"] = (ptr, self.post_term[order], self.post_tf[order])
        return self._cache["forward"]

    def encode_queries(self, queries: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Queries -> flat in-vocabulary term ids and offsets (unknown terms dropped)."""
        ids, offsets, _ = self.tokenizer.encode(
            list(queries), self.term_id, grow=False, desc="tokenize queries"
        )
        return ids, offsets


def build_index(
    texts: Sequence[str],
    doc_ids: Sequence[str] | None = None,
    *,
    tokenizer: Tokenizer | None = None,
    stopwords="en",
    stemmer="english",
) -> InvertedIndex:
    """Tokenize ``texts`` and build the inverted index on the host.

    Args:
      texts: ``N`` document texts (``str``; ``bytes`` must be UTF-8).
      doc_ids: ``N`` unique document ids (default ``"0" .. "N-1"``).
      tokenizer: a :class:`Tokenizer`; when omitted one is made from ``stopwords``
        and ``stemmer`` (defaults: Lucene's 33 English stopwords, Snowball English).

    Empty documents are kept (length 0; they match no query term). Duplicate
    document ids raise ``ValueError``.

    Example:
        >>> idx = build_index(["running dogs", ""], ["a", "b"])
        >>> idx.vocab.tolist(), idx.doc_len.tolist()
        (['run', 'dog'], [2, 0])
    """
    texts = list(texts)
    n = len(texts)
    if doc_ids is None:
        doc_ids = [str(i) for i in range(n)]
    doc_ids = np.asarray([str(d) for d in doc_ids])
    if len(doc_ids) != n:
        raise ValueError(f"doc_ids: {len(doc_ids)} ids for {n} texts")
    if n == 0:
        raise ValueError("texts: the corpus is empty")
    uniq, counts = np.unique(doc_ids, return_counts=True)
    if len(uniq) != n:
        dups = uniq[counts > 1][:5].tolist()
        raise ValueError(f"doc_ids: {n - len(uniq)} duplicate document ids, e.g. {dups}")
    for i, text in enumerate(texts):
        if isinstance(text, bytes):
            try:
                texts[i] = text.decode("utf-8")
            except UnicodeDecodeError as err:
                raise ValueError(
                    f"document {str(doc_ids[i])!r} is not valid UTF-8 "
                    f"(byte {err.start}: {text[err.start : err.start + 1]!r})"
                ) from None
        elif not isinstance(text, str):
            raise TypeError(f"texts: document {str(doc_ids[i])!r} is {type(text).__name__}")
    tok = tokenizer or Tokenizer(stopwords=stopwords, stemmer=stemmer)
    ids, offsets, vocab = tok.encode(texts, desc="tokenize corpus")
    return _from_token_ids(ids, offsets, vocab, doc_ids, tok)


def _from_token_ids(ids, offsets, vocab, doc_ids, tok) -> InvertedIndex:
    n, v = len(offsets) - 1, len(vocab)
    doc_len = np.diff(offsets).astype(np.int32)
    doc_of = np.repeat(np.arange(n, dtype=np.int64), doc_len)
    # one packed int64 key per token, term-major: unique() gives CSC order and tf
    keys, tf = np.unique(ids.astype(np.int64) * n + doc_of, return_counts=True)
    term = keys // n
    term_ptr = np.zeros(v + 1, np.int64)
    np.cumsum(np.bincount(term, minlength=v), out=term_ptr[1:])
    vocab_arr = np.empty(v, dtype=object)
    for t, i in vocab.items():
        vocab_arr[i] = t
    return InvertedIndex(
        doc_ids=doc_ids,
        vocab=vocab_arr.astype(str) if v else np.zeros(0, "<U1"),
        term_ptr=term_ptr,
        post_doc=(keys - term * n).astype(np.int32),
        post_tf=tf.astype(np.int32),
        doc_len=doc_len,
        tokenizer=tok,
    )


def save_index(index: InvertedIndex, path: str | os.PathLike) -> Path:
    """Write ``index`` to directory ``path`` (created; existing index files replaced)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    files = {}
    for name in _ARRAYS:
        arr = np.ascontiguousarray(getattr(index, name))
        np.save(path / f"{name}.npy", arr, allow_pickle=False)
        files[name] = {
            "shape": list(arr.shape),
            "dtype": arr.dtype.str,
            "bytes": (path / f"{name}.npy").stat().st_size,
        }
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "n_docs": index.n_docs,
        "n_terms": index.n_terms,
        "n_postings": len(index.post_doc),
        "tokenizer": index.tokenizer.config(),
        "defaults": index.defaults,
        "files": files,
    }
    (path / "meta.json").write_text(json.dumps(meta, indent=1))
    return path


def load_index(path: str | os.PathLike, *, mmap: bool = True) -> InvertedIndex:
    """Read an index written by :func:`save_index` (arrays memory-mapped when ``mmap``).

    Raises ``FileNotFoundError`` when ``path`` is not an index directory and
    ``ValueError`` naming the file when it is foreign, of another version, truncated
    or inconsistent.
    """
    path = Path(path)
    meta_path = path / "meta.json"
    if not path.is_dir():
        raise FileNotFoundError(f"index directory {path} does not exist")
    if not meta_path.is_file():
        raise FileNotFoundError(f"{path} is not a jaxrank index: {meta_path.name} is missing")
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{meta_path}: not valid JSON ({err})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{meta_path}: not a jaxrank lexical index (format field)")
    if meta.get("version") != VERSION:
        raise ValueError(
            f"{meta_path}: index format version {meta.get('version')!r}; this jaxrank reads "
            f"version {VERSION} (rebuild the index)"
        )
    arrays = {}
    for name in _ARRAYS:
        f = path / f"{name}.npy"
        info = meta["files"].get(name, {})
        if not f.is_file():
            raise ValueError(f"{f}: missing array file of the index")
        if f.stat().st_size != info.get("bytes"):
            raise ValueError(
                f"{f}: {f.stat().st_size} bytes, meta.json says {info.get('bytes')} "
                "(truncated or overwritten)"
            )
        try:
            arr = np.load(f, mmap_mode="r" if mmap else None, allow_pickle=False)
        except (ValueError, OSError) as err:
            raise ValueError(f"{f}: unreadable array ({err})") from None
        if list(arr.shape) != info["shape"] or arr.dtype.str != info["dtype"]:
            raise ValueError(f"{f}: shape/dtype {arr.shape}/{arr.dtype} differ from meta.json")
        arrays[name] = arr
    tp = arrays["term_ptr"]
    n, nnz = meta["n_docs"], meta["n_postings"]
    if (
        len(arrays["doc_len"]) != n
        or len(arrays["doc_ids"]) != n
        or len(tp) != len(arrays["vocab"]) + 1
        or tp[0] != 0
        or tp[-1] != nnz
        or len(arrays["post_doc"]) != nnz
    ):
        raise ValueError(f"{path}: index arrays are inconsistent with each other")
    tok = Tokenizer(**meta["tokenizer"])
    return InvertedIndex(**arrays, tokenizer=tok, defaults=dict(meta.get("defaults", {})))

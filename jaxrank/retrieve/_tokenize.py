"""Tokenization for lexical retrieval (host side: Python, numpy and a native ASCII scanner).

A :class:`Tokenizer` lowercases, splits with a regular expression (scikit-learn's
``(?u)\\b\\w\\w+\\b`` by default), drops stopwords and optionally stems with
PyStemmer's Snowball stemmers. It is the same pipeline as bm25s / Lucene's English
analyzer, so an index built with ``Tokenizer(stopwords="en", stemmer="english")``
matches bm25s's token statistics exactly.

Example:
    >>> from jaxrank.retrieve import Tokenizer
    >>> Tokenizer(stemmer=None)(["The cats sat on a mat.", "Dogs!"])
    [['cats', 'sat', 'mat'], ['dogs']]
"""

from __future__ import annotations

import ctypes
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import chain

import numpy as np

from jaxrank._progress import progress

# The 33-word English stopword list of Lucene's StandardAnalyzer (also bm25s's "en").
_EN_LUCENE = frozenset(
    """
    a an and are as at be but by for if in into is it no not of on or such that the their then
    there these they this to was will with
    """.split()
)

# NLTK's 179-word English stopword list (bm25s's "en_plus").
_EN_NLTK = frozenset(
    """
    a about above after again against ain all am an and any are aren aren't as at be because
    been before being below between both but by can couldn couldn't d did didn didn't do does
    doesn doesn't doing don don't down during each few for from further had hadn hadn't has
    hasn hasn't have haven haven't having he her here hers herself him himself his how i if in
    into is isn isn't it it's its itself just ll m ma me mightn mightn't more most mustn
    mustn't my myself needn needn't no nor not now o of off on once only or other our ours
    ourselves out over own re s same shan shan't she she's should should've shouldn shouldn't
    so some such t than that that'll the their theirs them themselves then there these they
    this those through to too under until up ve very was wasn wasn't we were weren weren't
    what when where which while who whom why will with won won't wouldn wouldn't y you you'd
    you'll you're you've your yours yourself yourselves
    """.split()
)


STOPWORDS: dict[str, frozenset[str]] = {"en": _EN_LUCENE, "en_plus": _EN_NLTK}


def _resolve_stopwords(stopwords: str | Iterable[str] | None) -> frozenset[str]:
    if stopwords is None or stopwords is False:
        return frozenset()
    if isinstance(stopwords, str):
        key = {"english": "en", "lucene": "en", "nltk": "en_plus"}.get(stopwords, stopwords)
        if key not in STOPWORDS:
            raise ValueError(
                f"stopwords: unknown list {stopwords!r}; choose one of {sorted(STOPWORDS)}, "
                "None, or pass an iterable of words"
            )
        return STOPWORDS[key]
    return frozenset(stopwords)


def _make_stemmer(stemmer: str | Callable | None) -> Callable[[list[str]], list[str]] | None:
    """A function mapping a list of words to their stems (PyStemmer when given a language)."""
    if stemmer is None:
        return None
    if isinstance(stemmer, str):
        try:
            import Stemmer  # PyStemmer
        except ImportError as err:
            raise ImportError(
                f"stemmer={stemmer!r} needs PyStemmer (Snowball stemmers): "
                "`pip install PyStemmer`, or pass stemmer=None to index without stemming"
            ) from err
        try:
            return Stemmer.Stemmer(stemmer).stemWords
        except KeyError as err:
            raise ValueError(
                f"stemmer: PyStemmer has no {stemmer!r} stemmer; available: {Stemmer.algorithms()}"
            ) from err
    if hasattr(stemmer, "stemWords"):
        return stemmer.stemWords
    if callable(stemmer):
        return lambda words: [stemmer(w) for w in words]
    raise TypeError("stemmer must be a language name, a PyStemmer object, a callable or None")


@dataclass(frozen=True)
class Tokenizer:
    """Lowercase, split, remove stopwords, stem.

    Args:
      lower: lowercase before splitting.
      pattern: regular expression whose ``findall`` matches are the tokens.
      stopwords: ``"en"`` (the 33-word Lucene/bm25s list, default), ``"en_plus"``
        (NLTK's 179 words), ``None``, or an iterable of words. Stopwords are removed
        before stemming (as Lucene and bm25s do).
      stemmer: a PyStemmer language (``"english"``), a PyStemmer ``Stemmer`` object,
        a ``word -> stem`` callable, or ``None``.

    Calling it on a list of texts returns one token list per text; :meth:`encode`
    returns the same tokens as integer ids in flat numpy arrays (the fast path used
    for indexing).
    """

    lower: bool = True
    pattern: str = r"(?u)\b\w\w+\b"
    stopwords: str | tuple[str, ...] | None = "en"
    stemmer: str | Callable | None = "english"
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.stopwords, str | None):
            object.__setattr__(self, "stopwords", tuple(sorted(self.stopwords)))
        # findall of maximal runs already sits on word boundaries: for the default
        # pattern, `\w\w+` gives the same tokens as `\b\w\w+\b`, about 20% faster
        fast = {r"(?u)\b\w\w+\b": r"(?u)\w\w+"}.get(self.pattern, self.pattern)
        self._cache["split"] = re.compile(fast).findall
        self._cache["stop"] = _resolve_stopwords(self.stopwords)
        self._cache["stem"] = _make_stemmer(self.stemmer)
        self._cache["word_to_term"] = {}  # word -> stem (or None for a stopword)

    def config(self) -> dict:
        """JSON-serializable settings (saved with an index); raises for callable stemmers."""
        if not isinstance(self.stemmer, str | None):
            raise ValueError("an index built with a custom stemmer object cannot be saved")
        return {
            "lower": self.lower,
            "pattern": self.pattern,
            "stopwords": self.stopwords
            if isinstance(self.stopwords, str | None)
            else list(self.stopwords),
            "stemmer": self.stemmer,
        }

    def _split(self, texts: Sequence[str], desc: str) -> list[list[str]]:
        split = self._cache["split"]
        out = []
        for i, text in enumerate(progress(texts, desc=desc)):
            if not isinstance(text, str):
                if isinstance(text, bytes):
                    try:
                        text = text.decode("utf-8")
                    except UnicodeDecodeError as err:
                        raise ValueError(f"text {i} is not valid UTF-8: {err}") from None
                else:
                    raise TypeError(f"texts[{i}] must be str, got {type(text).__name__}")
            out.append(split(text.lower() if self.lower else text))
        return out

    def _split_indexed(self, texts: Sequence[str], desc: str):
        """``(words [W] distinct str, word_idx [T] int64, lengths [n] int64)``: the tokens
        of all texts in order as indices into ``words``.

        ASCII texts go through the native scanner (``ffi/tokenize_ascii.cc``) when the
        pattern is the default one (for ASCII, ``(?u)\\b\\w\\w+\\b`` after ``lower()`` is
        exactly the maximal runs of ``[A-Za-z0-9_]`` of length >= 2, lowered); the others
        through the regular expression.
        """
        n = len(texts)
        fn = _ascii_kernel() if self.pattern == r"(?u)\b\w\w+\b" else None
        is_str = fn is not None and all(isinstance(t, str) for t in texts)
        asc = np.fromiter((t.isascii() for t in texts), bool, n) if is_str else np.zeros(n, bool)
        lengths = np.zeros(n, np.int64)
        pos: dict[str, int] = {}
        parts, docs = [], []
        idx_a = np.flatnonzero(asc)
        if len(idx_a):
            words, wi, counts = _tokenize_ascii(fn, [texts[i] for i in idx_a], self.lower)
            pos = dict(zip(words, range(len(words)), strict=True))
            lengths[idx_a] = counts
            parts.append(wi)
            docs.append(np.repeat(idx_a, counts))
        idx_u = np.flatnonzero(~asc)
        if len(idx_u):
            rest = [texts[i] for i in idx_u]
            split = self._split(rest, desc) if len(idx_u) < n else self._split(texts, desc)
            counts = np.fromiter(map(len, split), np.int64, len(split))
            lengths[idx_u] = counts
            get = pos.setdefault
            parts.append(
                np.fromiter(
                    (get(w, len(pos)) for w in chain.from_iterable(split)), np.int64, counts.sum()
                )
            )
            docs.append(np.repeat(idx_u, counts))
        if len(parts) == 2:  # interleave the two groups back into text order
            order = np.argsort(np.concatenate(docs), kind="stable")
            word_idx = np.concatenate(parts)[order]
        else:
            word_idx = parts[0] if parts else np.zeros(0, np.int64)
        return list(pos), word_idx.astype(np.int64), lengths

    def _terms_of(self, words: Iterable[str]) -> dict[str, str | None]:
        """Update and return the word -> term (stem, or None for stopwords) cache."""
        table = self._cache["word_to_term"]
        new = [w for w in words if w not in table]  # words: distinct
        if new:
            stop = self._cache["stop"]
            kept = [w for w in new if w not in stop]
            stem = self._cache["stem"]
            stems = stem(kept) if stem is not None else kept
            table.update(zip(kept, stems, strict=True))
            table.update((w, None) for w in new if w in stop)
        return table

    def __call__(self, texts: Sequence[str] | str) -> list[list[str]]:
        if isinstance(texts, str):
            texts = [texts]
        split = self._split(texts, "tokenize")
        table = self._terms_of(set(chain.from_iterable(split)))
        return [[t for t in map(table.__getitem__, words) if t is not None] for words in split]

    def encode(
        self,
        texts: Sequence[str] | str,
        vocab: dict[str, int] | None = None,
        *,
        grow: bool = True,
        desc: str = "tokenize",
    ) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
        """Tokenize into flat term ids.

        Returns ``(ids [T] int32, offsets [n+1] int64, vocab)``: the terms of text ``i``
        are ``ids[offsets[i]:offsets[i+1]]`` in text order. With ``grow=True`` new terms
        are appended to ``vocab`` (a new dict when ``None``) in sorted order of their
        words; with ``grow=False`` terms outside ``vocab`` are dropped (query side).
        """
        if isinstance(texts, str):
            texts = [texts]
        vocab = {} if vocab is None else vocab
        if grow:
            words, word_idx, lengths = self._split_indexed(texts, desc)
            table = self._terms_of(sorted(words))  # sorted: deterministic term ids
            tid = {}
            for word in sorted(words):
                term = table[word]
                tid[word] = -1 if term is None else vocab.setdefault(term, len(vocab))
            ids = np.fromiter(map(tid.__getitem__, words), np.int64, len(words))[word_idx]
            return _flat_ids(ids, lengths, vocab)
        split = self._split(texts, desc)
        flat = list(chain.from_iterable(split))
        if grow:
            word_id: dict[str, int] = {}
            distinct = sorted(set(flat))  # sorted: deterministic term ids
        else:
            # query side: word -> term id of this vocab, kept between calls (invalid
            # once the vocab changes size)
            cached = self._cache.get("query_word_id")
            if cached is None or cached[0] is not vocab or cached[1] != len(vocab):
                cached = (vocab, len(vocab), {})
                self._cache["query_word_id"] = cached
            word_id = cached[2]
            distinct = sorted(set(flat).difference(word_id))
        table = self._terms_of(distinct)
        # map each distinct word once to a term id (-1: stopword or unknown term)
        for word in distinct:
            term = table[word]
            if term is None:
                word_id[word] = -1
            elif grow:
                word_id[word] = vocab.setdefault(term, len(vocab))
            else:
                word_id[word] = vocab.get(term, -1)
        ids = np.fromiter(map(word_id.__getitem__, flat), dtype=np.int64, count=len(flat))
        lengths = np.fromiter(map(len, split), dtype=np.int64, count=len(split))
        return _flat_ids(ids, lengths, vocab)


def _flat_ids(ids: np.ndarray, lengths: np.ndarray, vocab: dict[str, int]):
    """Drop the -1 ids (stopwords, unknown terms): ``(ids int32, offsets, vocab)``."""
    keep = ids >= 0
    doc_of = np.repeat(np.arange(len(lengths)), lengths)
    counts = np.bincount(doc_of[keep], minlength=len(lengths))
    offsets = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    return ids[keep].astype(np.int32), offsets, vocab


_ASCII: list = []  # [ctypes function or None], resolved once


def _ascii_kernel():
    """The native ASCII scanner, or None (library missing or without the symbol)."""
    if not _ASCII:
        fn = None
        try:
            from jaxrank import _native

            lib = _native.library()
            if lib is not None and hasattr(lib, "jaxrank_tokenize_ascii"):
                fn = lib.jaxrank_tokenize_ascii
                p = ctypes.c_void_p
                fn.restype = ctypes.c_int64
                fn.argtypes = [p, p, ctypes.c_int64, ctypes.c_int32, p, p, p, p, p]
        except Exception:  # no native core: the regular expression path
            fn = None
        _ASCII.append(fn)
    return _ASCII[0]


def _tokenize_ascii(fn, texts: list[str], lower: bool):
    """Native scan of ASCII ``texts``: ``(words, word_idx [T], counts [n])``."""
    n = len(texts)
    buf = "".join(texts).encode("ascii")
    starts = np.zeros(n + 1, np.int64)
    np.cumsum(np.fromiter(map(len, texts), np.int64, n), out=starts[1:])
    cap = len(buf) // 3 + n + 1
    tok = np.empty(cap, np.int32)
    counts = np.empty(n, np.int64)
    words = np.empty(len(buf) + cap + 1, np.uint8)
    word_start = np.empty(cap + 1, np.int64)
    n_words = np.zeros(1, np.int64)
    nt = fn(
        buf, starts.ctypes.data, n, int(lower), tok.ctypes.data, counts.ctypes.data,
        words.ctypes.data, word_start.ctypes.data, n_words.ctypes.data,
    )  # fmt: skip
    if nt < 0:
        raise RuntimeError("jaxrank_tokenize_ascii failed")
    end = int(word_start[int(n_words[0])])
    names = words[:end].tobytes().decode("ascii").split("\0")[:-1] if end else []
    return names, tok[:nt].astype(np.int64), counts

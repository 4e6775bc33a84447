"""TREC run and qrels files, BEIR qrels, and the ``{qid: {docid: value}}`` dict layout.

A :class:`Run` or :class:`Qrels` is columnar: entries are grouped by query (queries in
order of first appearance, entries of a query in file order) and ``offsets`` delimits
the groups, so converting to padded arrays or per-query views costs no Python loop over
entries.

Reading is done on whole files at the bytes level (``bytes.split`` plus numpy), which
parses well over a million lines per second on one core; gzip is detected from the
magic bytes. Malformed lines raise :class:`TrecFormatError` naming the file and the
1-based line number.

Example:
    >>> import tempfile, os
    >>> from jaxrank.io import read_run, read_qrels
    >>> d = tempfile.mkdtemp()
    >>> _ = open(os.path.join(d, "run"), "w").write("q1 Q0 d1 1 2.5 sys\\nq1 Q0 d2 2 1.0 sys\\n")
    >>> _ = open(os.path.join(d, "qrels"), "w").write("# comment\\nq1 0 d2 1\\n")
    >>> run = read_run(os.path.join(d, "run"))
    >>> run.name, run.num_queries, len(run)
    ('sys', 1, 2)
    >>> read_qrels(os.path.join(d, "qrels")).to_dict()
    {'q1': {'d2': 1}}
"""

from __future__ import annotations

import contextlib
import gc
import gzip
import math
import operator
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "Qrels",
    "Run",
    "TrecFormatError",
    "read_beir_qrels",
    "read_qrels",
    "read_run",
    "write_run",
]

PathLike = str | os.PathLike


@contextlib.contextmanager
def no_gc():
    """Pause Python's cyclic garbage collector around allocation-heavy host loops.

    Parsing creates millions of small objects and no reference cycles; every
    generation-2 collection walks the whole heap, which in a process already holding
    large dicts (a typical evaluation script) slowed parsing 3x when measured.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class TrecFormatError(ValueError):
    """A run or qrels file is malformed; the message names the file and line."""


# --------------------------------------------------------------------------- helpers


def _read_bytes(path: PathLike) -> bytes:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a directory, expected a file")
    with open(path, "rb") as fh:
        data = fh.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data


_COMMENT_LINE = re.compile(rb"(?m)^[ \t]*#[^\n]*")


def _strip_comments(data: bytes) -> bytes:
    """Blank out lines whose first non-blank character is ``#`` (as trec_eval 10 does).

    Lines are emptied, not removed, so that line numbers in errors stay right; a ``#``
    inside a field (document ids such as ``doc#12``) is kept.
    """
    return _COMMENT_LINE.sub(b"", data) if b"#" in data else data


def _columns(
    data: bytes, ncols: int, path: PathLike, what: str, extra_ok: bool = False
) -> list[list[str]]:
    """Split a whitespace-separated file into ``ncols`` columns of ``str`` tokens.

    Every non-blank line must hold exactly ``ncols`` fields (at least ``ncols`` with
    ``extra_ok``; trec_eval ignores anything after a run line's tag). The file is
    decoded once and a line-end marker token is spliced in, so that the check runs at
    C speed (``list.count`` on strided slices); files with blank lines or a bad line
    take a per-line path, which names the line.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        lineno = data[: err.start].count(b"\n") + 1
        raise TrecFormatError(f"{path}:{lineno}: not valid UTF-8 ({err.reason})") from None
    if not text.strip():
        raise TrecFormatError(f"{path}: empty {what} file")
    if not text.endswith("\n"):
        text += "\n"
    toks = text.replace("\n", " \x00 ").split()
    width = ncols + 1
    n_lines = len(toks) // width
    # Every newline became one marker, so the markers number text.count("\n"); all of
    # them sit at the strided positions iff every line has exactly ncols fields.
    if (
        len(toks) % width == 0
        and text.count("\n") == n_lines
        and toks[ncols::width].count("\x00") == n_lines
    ):
        return [toks[c::width] for c in range(ncols)]
    del toks
    rows = []
    for lineno, line in enumerate(text.split("\n"), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) < ncols or (len(fields) > ncols and not extra_ok):
            raise TrecFormatError(
                f"{path}:{lineno}: malformed {what} line, expected {ncols} columns, "
                f"found {len(fields)}: {line.strip()[:120]!r}"
            )
        rows.append(fields[:ncols])
    return [list(col) for col in zip(*rows, strict=True)]


def _as_obj(values: list[str]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _group(qids: list[str]) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Group entries by query: (query ids in first-seen order, order or None, offsets).

    Files almost always list each query's lines contiguously: then the groups are the
    runs of equal ids and ``order`` is ``None`` (identity). Otherwise entries are
    stable-sorted by query code.
    """
    n = len(qids)
    changes = np.flatnonzero(np.fromiter(map(operator.ne, qids[1:], qids[:-1]), bool, n - 1))
    starts = np.concatenate([[0], changes + 1]).astype(np.int64) if n else np.zeros(0, np.int64)
    keys = [qids[i] for i in starts.tolist()]
    if len(set(keys)) == len(keys):
        return _as_obj(keys), None, np.append(starts, n)
    codes: dict[str, int] = {}
    q_index = np.fromiter((codes.setdefault(q, len(codes)) for q in qids), np.int64, n)
    counts = np.bincount(q_index, minlength=len(codes))
    offsets = np.zeros(len(codes) + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    return _as_obj(list(codes)), np.argsort(q_index, kind="stable"), offsets


def _parse_numbers(values: list[str], dtype, path: PathLike, what: str, data: bytes):
    try:
        return np.array(values, dtype=dtype)
    except (ValueError, OverflowError):
        convert = int if dtype is np.int64 else float
        for i, v in enumerate(values):
            try:
                convert(v)
            except (ValueError, OverflowError):
                lineno = _line_of_record(data, i)
                raise TrecFormatError(
                    f"{path}:{lineno}: {what} column is not a number: {v!r}"
                ) from None
        raise


def _line_of_record(data: bytes, record: int) -> int:
    """1-based line number of the ``record``-th non-blank line."""
    seen = -1
    for lineno, line in enumerate(data.split(b"\n"), 1):
        if line.strip():
            seen += 1
            if seen == record:
                return lineno
    return -1


# --------------------------------------------------------------------------- classes


@dataclass(frozen=True, eq=False)
class Run:
    """Ranked results: for each query, documents with scores.

    Attributes:
        query_ids: ``[Q]`` query ids (``str``), in order of first appearance.
        offsets: ``[Q + 1]`` int64; entries of query ``i`` are ``offsets[i]:offsets[i+1]``.
        doc_ids: ``[E]`` document ids (``str``).
        scores: ``[E]`` float64 scores (higher ranks first).
        ranks: ``[E]`` int64 rank column of the file, or ``None`` when built from scores.
        name: run tag (the last line's tag, as trec_eval keeps it).
    """

    query_ids: np.ndarray
    offsets: np.ndarray
    doc_ids: np.ndarray
    scores: np.ndarray
    ranks: np.ndarray | None = None
    name: str = "run"
    _index: dict = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.doc_ids)

    @property
    def num_queries(self) -> int:
        return len(self.query_ids)

    def query(self, qid: str) -> tuple[np.ndarray, np.ndarray]:
        """``(doc_ids, scores)`` of one query (empty arrays when absent)."""
        i = self._query_index().get(qid)
        if i is None:
            return np.empty(0, object), np.empty(0, np.float64)
        s = slice(self.offsets[i], self.offsets[i + 1])
        return self.doc_ids[s], self.scores[s]

    def _query_index(self) -> dict[str, int]:
        if not self._index:
            self._index.update({q: i for i, q in enumerate(self.query_ids)})
        return self._index

    def to_dict(self) -> dict[str, dict[str, float]]:
        """``{qid: {docid: score}}`` (the layout of ranx and pytrec_eval)."""
        out = {}
        for i, q in enumerate(self.query_ids):
            s = slice(self.offsets[i], self.offsets[i + 1])
            out[q] = dict(zip(self.doc_ids[s].tolist(), self.scores[s].tolist(), strict=True))
        return out

    @classmethod
    def from_dict(cls, run: dict[str, dict[str, float]], name: str = "run") -> Run:
        """Build from ``{qid: {docid: score}}``; scores must be finite numbers."""
        if not isinstance(run, dict):
            raise TypeError(f"run must be a dict of dicts, got {type(run).__name__}")
        qids, docs, scores, offsets = [], [], [], [0]
        for q, docs_q in run.items():
            if not isinstance(docs_q, dict):
                raise TypeError(f"run[{q!r}] must be a dict {{docid: score}}")
            qids.append(str(q))
            docs.extend(str(d) for d in docs_q)
            scores.extend(docs_q.values())
            offsets.append(len(docs))
        arr = np.asarray(scores, dtype=np.float64) if scores else np.empty(0, np.float64)
        _check_finite(arr, qids, docs, np.asarray(offsets), "run")
        return cls(_as_obj(qids), np.asarray(offsets, np.int64), _as_obj(docs), arr, None, name)


@dataclass(frozen=True, eq=False)
class Qrels:
    """Relevance judgments: for each query, judged documents with integer relevance.

    Attributes:
        query_ids: ``[Q]`` query ids in order of first appearance.
        offsets: ``[Q + 1]`` int64 group boundaries, as in :class:`Run`.
        doc_ids: ``[E]`` judged document ids.
        relevance: ``[E]`` int64 judgments (negative: in the pool but unjudged, as
            trec_eval reads ``-1``).
    """

    query_ids: np.ndarray
    offsets: np.ndarray
    doc_ids: np.ndarray
    relevance: np.ndarray

    def __len__(self) -> int:
        return len(self.doc_ids)

    @property
    def num_queries(self) -> int:
        return len(self.query_ids)

    def to_dict(self) -> dict[str, dict[str, int]]:
        """``{qid: {docid: relevance}}``."""
        out = {}
        for i, q in enumerate(self.query_ids):
            s = slice(self.offsets[i], self.offsets[i + 1])
            out[q] = dict(zip(self.doc_ids[s].tolist(), self.relevance[s].tolist(), strict=True))
        return out

    @classmethod
    def from_dict(cls, qrels: dict[str, dict[str, int]]) -> Qrels:
        """Build from ``{qid: {docid: relevance}}`` (relevance must be integers)."""
        if not isinstance(qrels, dict):
            raise TypeError(f"qrels must be a dict of dicts, got {type(qrels).__name__}")
        qids, docs, rels, offsets = [], [], [], [0]
        for q, docs_q in qrels.items():
            if not isinstance(docs_q, dict):
                raise TypeError(f"qrels[{q!r}] must be a dict {{docid: relevance}}")
            qids.append(str(q))
            for d, r in docs_q.items():
                if isinstance(r, float) and not float(r).is_integer():
                    raise ValueError(f"qrels[{q!r}][{d!r}] = {r!r} is not an integer")
                docs.append(str(d))
                rels.append(int(r))
            offsets.append(len(docs))
        return cls(
            _as_obj(qids),
            np.asarray(offsets, np.int64),
            _as_obj(docs),
            np.asarray(rels, np.int64) if rels else np.empty(0, np.int64),
        )


def _check_finite(scores, qids, docs, offsets, source: str) -> None:
    bad = ~np.isfinite(scores)
    if bad.any():
        e = int(np.flatnonzero(bad)[0])
        q = int(np.searchsorted(offsets, e, side="right") - 1)
        raise ValueError(
            f"{source}: score {scores[e]!r} of query {qids[q]!r}, "
            f"document {docs[e]!r} is not finite"
        )


# --------------------------------------------------------------------------- readers


def read_run(path: PathLike, *, ranks: bool = False) -> Run:
    """Read a TREC run file (``qid Q0 docid rank score tag``), gzipped or not.

    Fields after the tag are ignored and lines starting with ``#`` and blank lines are
    skipped, as trec_eval does. The run name is the tag of the last line. Scores are
    read as float64; NaN or infinite scores raise an error naming query and document.
    The rank column (which trec_eval ignores) is parsed into ``Run.ranks`` only with
    ``ranks=True`` (needed e.g. for fusion that uses the file's ranks).
    """
    with no_gc():
        return _read_run(path, ranks)


def _read_run(path: PathLike, with_ranks: bool) -> Run:
    raw = _read_bytes(path)
    native = _native_run(raw, path, with_ranks)
    if native is not None:
        return native
    data = _strip_comments(raw)
    cols = _columns(data, 6, path, "run", extra_ok=True)
    qids, order, offsets = _group(cols[0])
    docs = _as_obj(cols[2])
    scores = _parse_numbers(cols[4], np.float64, path, "score", data)
    ranks = _parse_numbers(cols[3], np.int64, path, "rank", data) if with_ranks else None
    name = cols[5][-1]
    if order is not None:
        docs, scores = docs[order], scores[order]
        ranks = ranks[order] if ranks is not None else None
    _check_finite(scores, qids, docs, offsets, str(path))
    return Run(qids, offsets, docs, scores, ranks, name)


def read_qrels(path: PathLike) -> Qrels:
    """Read a TREC qrels file (``qid iter docid relevance``), gzipped or not.

    ``#`` comment lines and blank lines are skipped (as trec_eval 10 accepts).
    """
    with no_gc():
        return _read_qrels(path)


def _read_qrels(path: PathLike) -> Qrels:
    raw = _read_bytes(path)
    native = _native_qrels(raw, path)
    if native is not None:
        return native
    data = _strip_comments(raw)
    cols = _columns(data, 4, path, "qrels")
    qids, order, offsets = _group(cols[0])
    docs = _as_obj(cols[2])
    rels = _parse_numbers(cols[3], np.int64, path, "relevance", data)
    if order is not None:
        docs, rels = docs[order], rels[order]
    return Qrels(qids, offsets, docs, rels)


def _native_columns(raw: bytes, ncols: int, path: PathLike, what: str, extra_ok: bool = False):
    """Native field spans, or None (no native library, or a problem for which the
    Python reader produces the precise error message)."""
    from jaxrank.io._native_parse import parse_columns

    cols = parse_columns(raw, ncols, extra_ok)
    if cols is None or isinstance(cols, tuple) or cols.nrec == 0:
        return None
    return cols


def _native_groups(cols) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    starts = cols.run_starts(0)
    keys = cols.strings(0, starts)
    if len(set(keys)) == len(keys):
        return _as_obj(keys), None, np.append(starts, cols.nrec)
    return _group(cols.strings(0))


def _native_run(raw: bytes, path: PathLike, with_ranks: bool) -> Run | None:
    cols = _native_columns(raw, 6, path, "run", extra_ok=True)
    if cols is None:
        return None
    try:
        qids, order, offsets = _native_groups(cols)
        docs = _as_obj(cols.strings(2))
        name = cols.strings(5, np.array([cols.nrec - 1]))[0]
    except UnicodeDecodeError:
        return None
    scores, bad = cols.numbers(4, np.float64)
    ranks, bad_rank = cols.numbers(3, np.int64) if with_ranks else (None, -1)
    if bad >= 0 or bad_rank >= 0:
        return None
    if order is not None:
        docs, scores = docs[order], scores[order]
        ranks = ranks[order] if ranks is not None else None
    _check_finite(scores, qids, docs, offsets, str(path))
    return Run(qids, offsets, docs, scores, ranks, name)


def _native_qrels(raw: bytes, path: PathLike) -> Qrels | None:
    cols = _native_columns(raw, 4, path, "qrels")
    if cols is None:
        return None
    try:
        qids, order, offsets = _native_groups(cols)
        docs = _as_obj(cols.strings(2))
    except UnicodeDecodeError:
        return None
    rels, bad = cols.numbers(3, np.int64)
    if bad >= 0:
        return None
    if order is not None:
        docs, rels = docs[order], rels[order]
    return Qrels(qids, offsets, docs, rels)


def read_beir_qrels(path: PathLike) -> Qrels:
    """Read a BEIR qrels ``.tsv`` (``query-id<TAB>corpus-id<TAB>score`` with a header)."""
    data = _read_bytes(path)
    lines = data.split(b"\n")
    if not lines or not data.strip():
        raise TrecFormatError(f"{path}: empty qrels file")
    header = lines[0].split(b"\t")
    start = 1 if header and not header[-1].strip().lstrip(b"-").isdigit() else 0
    qids, docs, rels = [], [], []
    for lineno, line in enumerate(lines[start:], start + 1):
        if not line.strip():
            continue
        cols = line.rstrip(b"\r").split(b"\t")
        if len(cols) != 3:
            raise TrecFormatError(
                f"{path}:{lineno}: expected 3 tab-separated columns, found {len(cols)}"
            )
        try:
            rels.append(int(float(cols[2])))
        except ValueError:
            text = cols[2].decode(errors="replace")
            raise TrecFormatError(
                f"{path}:{lineno}: score column is not a number: {text!r}"
            ) from None
        qids.append(cols[0].strip())
        docs.append(cols[1].strip())
    qid_arr, order, offsets = _group([q.decode("utf-8") for q in qids])
    docs_arr = _as_obj([d.decode("utf-8") for d in docs])
    rels_arr = np.asarray(rels, np.int64)
    if order is not None:
        docs_arr, rels_arr = docs_arr[order], rels_arr[order]
    return Qrels(qid_arr, offsets, docs_arr, rels_arr)


def write_run(run: Run, path: PathLike, *, name: str | None = None) -> None:
    """Write ``run`` as a TREC run file, each query sorted by score (ties: doc id desc).

    Ranks are written 1-based in that order, so trec_eval and jaxrank read the same
    ranking back.
    """
    tag = name or run.name
    with open(path, "w", encoding="utf-8") as fh:
        for i, q in enumerate(run.query_ids):
            s = slice(run.offsets[i], run.offsets[i + 1])
            docs, scores = run.doc_ids[s], run.scores[s]
            order = sorted(range(len(docs)), key=lambda j: (-scores[j], _Desc(docs[j])))
            fh.writelines(
                f"{q} Q0 {docs[j]} {r} {_fmt_score(scores[j])} {tag}\n"
                for r, j in enumerate(order, 1)
            )


class _Desc:
    """Sort key wrapper that reverses string order (doc id descending)."""

    __slots__ = ("s",)

    def __init__(self, s: str):
        self.s = s

    def __lt__(self, other: _Desc) -> bool:
        return self.s > other.s


def _fmt_score(x: float) -> str:
    return repr(float(x)) if math.isfinite(x) else str(x)

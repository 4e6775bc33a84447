"""BEIR folders: ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv``.

Lines are JSON objects (``{"_id", "title", "text"}`` for documents, ``{"_id",
"text"}`` for queries). Malformed lines, invalid UTF-8, missing fields and duplicate
ids raise :class:`BeirFormatError` naming the file, the line and the id.

Example:
    >>> import pathlib, tempfile
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "corpus.jsonl").write_text('{"_id": "d1", "title": "T", "text": "x y"}\\n')
    >>> _ = (d / "queries.jsonl").write_text('{"_id": "q1", "text": "x"}\\n')
    >>> data = read_beir(d)
    >>> data.doc_ids.tolist(), data.documents(), data.qrels is None
    (['d1'], ['T x y'], True)
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jaxrank.io._trec import Qrels, read_beir_qrels

PathLike = str | os.PathLike


class BeirFormatError(ValueError):
    """A malformed BEIR file; the message names the file and line."""


@dataclass(frozen=True, eq=False)
class BeirData:
    """A BEIR data set on the host.

    Attributes:
      doc_ids, titles, texts: ``[N]`` corpus columns (str arrays).
      query_ids, queries: ``[Q]`` all queries of ``queries.jsonl``.
      qrels: judgments of the requested split, or ``None`` when that file is absent.
    """

    doc_ids: np.ndarray
    titles: np.ndarray
    texts: np.ndarray
    query_ids: np.ndarray
    queries: np.ndarray
    qrels: Qrels | None

    def documents(self, sep: str = " ") -> list[str]:
        """``title + sep + text`` per document (BEIR's usual input to BM25)."""
        return [f"{t}{sep}{x}" if t else x for t, x in zip(self.titles, self.texts, strict=True)]

    def split_queries(self) -> tuple[np.ndarray, np.ndarray]:
        """``(query_ids, texts)`` of the queries judged in ``qrels`` (in qrels order)."""
        if self.qrels is None:
            raise ValueError("this BeirData has no qrels split")
        pos = {q: i for i, q in enumerate(self.query_ids.tolist())}
        missing = [q for q in self.qrels.query_ids.tolist() if q not in pos]
        if missing:
            raise BeirFormatError(
                f"{len(missing)} qrels queries are not in queries.jsonl, e.g. {missing[:3]}"
            )
        idx = np.array([pos[q] for q in self.qrels.query_ids.tolist()], np.int64)
        return self.query_ids[idx], self.queries[idx]


_ID = re.compile(rb'"_id"\s*:\s*"((?:[^"\\]|\\.)*)"')


def read_beir_jsonl(path: PathLike, fields: tuple[str, ...]) -> tuple[np.ndarray, ...]:
    """Read a BEIR ``.jsonl``: ``(ids, *fields)`` as str arrays (missing fields -> "").

    ``text`` is required; ``_id`` must be unique.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    ids: list[str] = []
    cols: list[list[str]] = [[] for _ in fields]
    seen: set[str] = set()
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                m = _ID.search(raw)
                who = f" (document {m.group(1).decode('utf-8', 'replace')!r})" if m else ""
                raise BeirFormatError(
                    f"{path}:{lineno}{who}: invalid UTF-8 at byte {err.start}"
                ) from None
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise BeirFormatError(f"{path}:{lineno}: invalid JSON ({err.msg})") from None
            if not isinstance(obj, dict) or "_id" not in obj:
                raise BeirFormatError(f"{path}:{lineno}: expected an object with an '_id'")
            doc_id = str(obj["_id"])
            if doc_id in seen:
                raise BeirFormatError(f"{path}:{lineno}: duplicate _id {doc_id!r}")
            seen.add(doc_id)
            if "text" in fields and not isinstance(obj.get("text"), str):
                raise BeirFormatError(f"{path}:{lineno}: _id {doc_id!r} has no string 'text'")
            ids.append(doc_id)
            for col, f in zip(cols, fields, strict=True):
                v = obj.get(f)
                col.append(v if isinstance(v, str) else "")
    return (np.asarray(ids, dtype=object), *(np.asarray(c, dtype=object) for c in cols))


def read_beir(folder: PathLike, split: str = "test") -> BeirData:
    """Read a BEIR folder (``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``).

    The qrels file is optional (``qrels=None`` when absent); it is read with
    :func:`jaxrank.io.read_beir_qrels`.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a directory")
    doc_ids, titles, texts = read_beir_jsonl(folder / "corpus.jsonl", ("title", "text"))
    query_ids, queries = read_beir_jsonl(folder / "queries.jsonl", ("text",))
    qrels_path = folder / "qrels" / f"{split}.tsv"
    qrels = read_beir_qrels(qrels_path) if qrels_path.is_file() else None
    return BeirData(doc_ids, titles, texts, query_ids, queries, qrels)

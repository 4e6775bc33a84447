"""Interoperability: ranx ``Run``/``Qrels``, pytrec_eval dicts and ir_datasets.

jaxrank's :class:`~jaxrank.io.Run` and :class:`~jaxrank.io.Qrels` are columnar; the
peers use nested dicts ``{qid: {docid: value}}``. These converters move data both
ways without touching files. ranx and ir_datasets are optional: they are imported
only when a function needs them, with an error that says how to install them.

Example:
    >>> from jaxrank.io import Run, from_pytrec_eval, to_pytrec_eval
    >>> run = from_pytrec_eval({"q1": {"d1": 2.0, "d2": 1.0}}, kind="run")
    >>> run.doc_ids.tolist(), run.scores.tolist()
    (['d1', 'd2'], [2.0, 1.0])
    >>> to_pytrec_eval(run)
    {'q1': {'d1': 2.0, 'd2': 1.0}}
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import numpy as np

from jaxrank.io._beir import BeirData
from jaxrank.io._trec import Qrels, Run


def _optional(module: str, extra: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as e:  # pragma: no cover - exercised by monkeypatching in tests
        raise ImportError(
            f"this function needs the optional package {extra!r}: pip install {extra}"
        ) from e


# --------------------------------------------------------------------------- pytrec_eval


def to_pytrec_eval(data: Run | Qrels) -> dict[str, dict[str, float]] | dict[str, dict[str, int]]:
    """``{qid: {docid: value}}`` as ``pytrec_eval.RelevanceEvaluator`` takes it.

    Run scores become Python ``float``, qrels relevance Python ``int`` (pytrec_eval
    refuses numpy scalars). Entry order within a query is the order of ``data``.

    Args:
      data: a :class:`Run` or :class:`Qrels`.

    Returns:
      A new nested dict.

    Example:
        >>> from jaxrank.io import Qrels, to_pytrec_eval
        >>> to_pytrec_eval(Qrels.from_dict({"q1": {"d1": 1, "d2": 0}}))
        {'q1': {'d1': 1, 'd2': 0}}
    """
    if isinstance(data, Run | Qrels):
        return data.to_dict()
    raise TypeError(f"data must be a jaxrank.io.Run or Qrels, got {type(data).__name__}")


def from_pytrec_eval(
    data: Mapping[str, Mapping[str, float]],
    kind: Literal["run", "qrels"],
    *,
    name: str = "run",
) -> Run | Qrels:
    """Build a :class:`Run` (``kind="run"``) or :class:`Qrels` from a pytrec_eval dict.

    Args:
      data: ``{qid: {docid: score}}`` for a run, ``{qid: {docid: relevance}}`` (integers)
        for qrels.
      kind: ``"run"`` or ``"qrels"``.
      name: run tag (runs only).

    Example:
        >>> from jaxrank.io import from_pytrec_eval
        >>> from_pytrec_eval({"q1": {"d1": 1}}, kind="qrels").relevance.tolist()
        [1]
    """
    plain = {str(q): dict(docs) for q, docs in data.items()}
    if kind == "run":
        return Run.from_dict(plain, name=name)
    if kind == "qrels":
        return Qrels.from_dict(plain)
    raise ValueError(f"kind={kind!r}: expected 'run' or 'qrels'")


# --------------------------------------------------------------------------- ranx


def to_ranx(data: Run | Qrels) -> Any:
    """A ``ranx.Run`` (named like the run) or ``ranx.Qrels`` holding the same entries.

    Needs the optional package ``ranx``. (The examples of this function and of
    :func:`from_ranx` are skipped as doctests because ranx's numba compilation takes
    seconds; ``tests/test_interop.py`` runs the same conversions.)

    Example:
        >>> from jaxrank.io import Run, to_ranx
        >>> r = to_ranx(Run.from_dict({"q1": {"d1": 0.5}}, name="bm25"))  # doctest: +SKIP
        >>> r.name, r.to_dict()["q1"]  # doctest: +SKIP
        ('bm25', {'d1': 0.5})
    """
    ranx = _optional("ranx", "ranx")
    if isinstance(data, Run):
        return ranx.Run(data.to_dict(), name=data.name)
    if isinstance(data, Qrels):
        return ranx.Qrels(data.to_dict())
    raise TypeError(f"data must be a jaxrank.io.Run or Qrels, got {type(data).__name__}")


def from_ranx(data: Any) -> Run | Qrels:
    """Convert a ``ranx.Run`` to a :class:`Run` or a ``ranx.Qrels`` to :class:`Qrels`.

    Duck-typed: anything with ``to_dict()`` and a ``run`` attribute is read as a run,
    with a ``qrels`` attribute as qrels. ranx keeps each query's documents sorted by
    score, so the entry order follows ranx. A run without a name is called ``"run"``.

    Example:
        >>> import ranx  # doctest: +SKIP
        >>> from jaxrank.io import from_ranx
        >>> from_ranx(ranx.Qrels({"q1": {"d1": 2}})).relevance.tolist()  # doctest: +SKIP
        [2]
    """
    if hasattr(data, "to_dict") and hasattr(data, "run"):
        return Run.from_dict(_plain(data.to_dict()), name=getattr(data, "name", None) or "run")
    if hasattr(data, "to_dict") and hasattr(data, "qrels"):
        return Qrels.from_dict(_plain(data.to_dict()))
    raise TypeError(f"data must be a ranx.Run or ranx.Qrels, got {type(data).__name__}")


def _plain(d: Mapping) -> dict:
    return {str(q): {str(k): v for k, v in docs.items()} for q, docs in d.items()}


# --------------------------------------------------------------------------- ir_datasets


def _text(record: Any) -> str:
    text = getattr(record, "text", None)
    if text is None and hasattr(record, "default_text"):
        text = record.default_text()
    if text is None:
        raise ValueError(
            f"record {record!r} has neither a 'text' field nor default_text(): "
            "pass a dataset whose docs and queries carry text"
        )
    return str(text)


def load_ir_datasets(
    dataset: str | Any,
    *,
    max_docs: int | None = None,
) -> BeirData:
    """Load an ir_datasets data set into a :class:`~jaxrank.io.BeirData`.

    ``dataset`` is a name given to ``ir_datasets.load`` (the package is imported only
    then, and it may download the data) or an object with the ir_datasets protocol:
    ``docs_iter()`` yielding records with ``doc_id``, ``text`` (or ``default_text()``)
    and optionally ``title``; ``queries_iter()`` with ``query_id`` and ``text``;
    ``qrels_iter()`` with ``query_id``, ``doc_id``, ``relevance``. Any of the three
    may be missing (``has_docs()`` etc. returning ``False``): the result then holds
    empty arrays, or ``qrels=None``.

    Args:
      dataset: ir_datasets name or dataset object.
      max_docs: read at most this many documents (``None``: all).

    Returns:
      ``BeirData`` with the corpus, all queries and the qrels (judgments of one query
      and document given twice: the last wins, as ir_datasets iterates them).

    Example:
        >>> from collections import namedtuple
        >>> from jaxrank.io import load_ir_datasets
        >>> Doc, Query = namedtuple("Doc", "doc_id text"), namedtuple("Query", "query_id text")
        >>> Qrel = namedtuple("Qrel", "query_id doc_id relevance iteration")
        >>> class Tiny:
        ...     def docs_iter(self): return iter([Doc("d1", "cats"), Doc("d2", "dogs")])
        ...     def queries_iter(self): return iter([Query("q1", "cat")])
        ...     def qrels_iter(self): return iter([Qrel("q1", "d1", 1, "0")])
        >>> data = load_ir_datasets(Tiny())
        >>> data.doc_ids.tolist(), data.queries.tolist(), data.qrels.to_dict()
        (['d1', 'd2'], ['cat'], {'q1': {'d1': 1}})
    """
    if isinstance(dataset, str):
        dataset = _optional("ir_datasets", "ir_datasets").load(dataset)
    if max_docs is not None and max_docs < 0:
        raise ValueError(f"max_docs={max_docs}: must be >= 0 or None")

    def has(part: str) -> bool:
        if not hasattr(dataset, f"{part}_iter"):
            return False
        check = getattr(dataset, f"has_{part}", None)
        return bool(check()) if callable(check) else True

    doc_ids, titles, texts = [], [], []
    if has("docs"):
        for i, doc in enumerate(dataset.docs_iter()):
            if max_docs is not None and i >= max_docs:
                break
            doc_ids.append(str(doc.doc_id))
            titles.append(str(getattr(doc, "title", "") or ""))
            texts.append(_text(doc))
    query_ids, queries = [], []
    if has("queries"):
        for q in dataset.queries_iter():
            query_ids.append(str(q.query_id))
            queries.append(_text(q))
    qrels = None
    if has("qrels"):
        judged: dict[str, dict[str, int]] = {}
        for j in dataset.qrels_iter():
            judged.setdefault(str(j.query_id), {})[str(j.doc_id)] = int(j.relevance)
        qrels = Qrels.from_dict(judged)
    return BeirData(_obj(doc_ids), _obj(titles), _obj(texts), _obj(query_ids), _obj(queries), qrels)


def _obj(values: Iterable[str]) -> np.ndarray:
    values = list(values)
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out

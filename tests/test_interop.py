"""jaxrank.io interop: ranx, pytrec_eval dicts, ir_datasets (local fake, nothing downloaded)."""

from __future__ import annotations

import sys
from collections import namedtuple
from importlib import resources

import numpy as np
import pytest
import pytrec_eval
import ranx

from jaxrank.eval import evaluate
from jaxrank.io import (
    Qrels,
    Run,
    from_pytrec_eval,
    from_ranx,
    load_ir_datasets,
    read_qrels,
    read_run,
    to_pytrec_eval,
    to_ranx,
)

DATA = resources.files("jaxrank.data")


@pytest.fixture(scope="module")
def demo():
    with (
        resources.as_file(DATA / "demo.qrels") as q,
        resources.as_file(DATA / "demo-bm25.run") as r,
    ):
        return read_qrels(q), read_run(r)


def _same_run(a: Run, b: Run) -> None:
    assert a.to_dict() == b.to_dict()


def test_pytrec_eval_round_trip_and_scores(demo):
    qrels, run = demo
    q_dict, r_dict = to_pytrec_eval(qrels), to_pytrec_eval(run)
    assert all(type(v) is int for d in q_dict.values() for v in d.values())
    assert all(type(v) is float for d in r_dict.values() for v in d.values())
    _same_run(from_pytrec_eval(r_dict, kind="run"), run)
    assert from_pytrec_eval(q_dict, kind="qrels").to_dict() == qrels.to_dict()
    # The converted dicts are accepted by pytrec_eval itself, and its MAP / nDCG@10
    # equal jaxrank's trec_eval-exact evaluation (peer run side by side).
    ev = pytrec_eval.RelevanceEvaluator(q_dict, {"map", "ndcg_cut"})
    peer = ev.evaluate(r_dict)
    ours = evaluate(qrels, run, ["map", "ndcg_cut.10"])
    assert sorted(peer) == sorted(ours.query_ids)
    for i, qid in enumerate(ours.query_ids):
        assert peer[qid]["map"] == pytest.approx(ours.per_query["map"][i], abs=1e-12)
        assert peer[qid]["ndcg_cut_10"] == pytest.approx(
            ours.per_query["ndcg_cut_10"][i], abs=1e-12
        )


def test_pytrec_eval_errors():
    with pytest.raises(ValueError, match="kind"):
        from_pytrec_eval({"q": {"d": 1}}, kind="runs")
    with pytest.raises(TypeError, match="Run or Qrels"):
        to_pytrec_eval({"q": {"d": 1.0}})
    with pytest.raises(ValueError, match="not an integer"):
        from_pytrec_eval({"q": {"d": 0.5}}, kind="qrels")


def test_ranx_round_trip(demo):
    qrels, run = demo
    r = to_ranx(run)
    assert isinstance(r, ranx.Run) and r.name == "bm25"
    back = from_ranx(r)
    assert isinstance(back, Run) and back.name == "bm25"
    _same_run(back, run)
    q = to_ranx(qrels)
    assert isinstance(q, ranx.Qrels)
    assert from_ranx(q).to_dict() == qrels.to_dict()
    # (ranx.evaluate on the converted objects is not run: its numba compilation takes
    # ~30 s; the entries are compared exactly instead.)


def test_ranx_errors_and_unnamed_run():
    assert from_ranx(ranx.Run({"q": {"d": 1.0}})).name == "run"
    with pytest.raises(TypeError, match=r"ranx\.Run or ranx\.Qrels"):
        from_ranx({"q": {"d": 1.0}})
    with pytest.raises(TypeError, match="Run or Qrels"):
        to_ranx([1, 2])


def test_missing_optional_dependency_message(monkeypatch):
    monkeypatch.setitem(sys.modules, "ranx", None)  # import ranx -> ImportError
    with pytest.raises(ImportError, match="pip install ranx"):
        to_ranx(Run.from_dict({"q": {"d": 1.0}}))
    monkeypatch.setitem(sys.modules, "ir_datasets", None)
    with pytest.raises(ImportError, match="pip install ir_datasets"):
        load_ir_datasets("beir/scifact/test")


# ---------------------------------------------------------------- ir_datasets (local fake)

# Field names and order as ir_datasets' record types (GenericDoc / GenericQuery / TrecQrel
# are NamedTuples with these fields); the package itself is not a test dependency.
Doc = namedtuple("Doc", "doc_id title text")
PlainDoc = namedtuple("PlainDoc", "doc_id body")
Query = namedtuple("Query", "query_id text")
Qrel = namedtuple("Qrel", "query_id doc_id relevance iteration")


class _WithDefaultText(PlainDoc):
    def default_text(self):  # ir_datasets records without a `text` field provide this
        return f"body: {self.body}"


class FakeDataset:
    """The ir_datasets dataset protocol (docs_iter / queries_iter / qrels_iter / has_*)."""

    def __init__(self, docs, queries, qrels):
        self._docs, self._queries, self._qrels = docs, queries, qrels

    def docs_iter(self):
        return iter(self._docs)

    def queries_iter(self):
        return iter(self._queries)

    def qrels_iter(self):
        return iter(self._qrels)

    def has_docs(self):
        return self._docs is not None

    def has_queries(self):
        return self._queries is not None

    def has_qrels(self):
        return self._qrels is not None


def test_ir_datasets_fake_dataset():
    ds = FakeDataset(
        [Doc("d1", "Cats", "cats chase mice"), Doc("d2", "", "dogs bark"), Doc(3, None, "x")],
        [Query("q1", "cats"), Query("q2", "dogs")],
        [Qrel("q1", "d1", 2, "0"), Qrel("q2", "d2", 1, "0"), Qrel("q1", "d2", 0, "0")],
    )
    data = load_ir_datasets(ds)
    assert data.doc_ids.tolist() == ["d1", "d2", "3"]
    assert data.documents() == ["Cats cats chase mice", "dogs bark", "x"]
    assert data.query_ids.tolist() == ["q1", "q2"] and data.queries.tolist() == ["cats", "dogs"]
    assert data.qrels.to_dict() == {"q1": {"d1": 2, "d2": 0}, "q2": {"d2": 1}}
    assert isinstance(data.qrels, Qrels) and data.qrels.relevance.dtype == np.int64
    assert data.split_queries()[0].tolist() == ["q1", "q2"]
    assert load_ir_datasets(ds, max_docs=1).doc_ids.tolist() == ["d1"]


def test_ir_datasets_default_text_and_missing_parts():
    ds = FakeDataset([_WithDefaultText("a", "hello")], None, None)
    data = load_ir_datasets(ds)
    assert data.texts.tolist() == ["body: hello"] and data.qrels is None
    assert data.query_ids.shape == (0,)
    with pytest.raises(ValueError, match="neither a 'text' field"):
        load_ir_datasets(FakeDataset([PlainDoc("a", "hello")], None, None))
    with pytest.raises(ValueError, match="max_docs"):
        load_ir_datasets(ds, max_docs=-1)

"""``jaxrank demo``: the built-in collection and the whole pipeline as a smoke test.

The bounds below were measured on the built-in collection (seed 0, PyStemmer's English
stemmer, 2 shared CPU cores): bm25 nDCG@10 0.5354, lsa 0.5639, rrf 0.5006, maxsim
0.7210, R@100 of rrf 0.9525; the head's held-out nDCG@10 0.4367 -> 0.6775. They leave
margin for floating-point differences between machines, not for regressions.
"""

from __future__ import annotations

import json
import time
from collections import Counter

import numpy as np
import pytest

from jaxrank.cli import main
from jaxrank.cli._pipeline import builtin_path, load_collection
from jaxrank.io import read_beir


@pytest.fixture(scope="module")
def demo_json():
    """One run of the demo with 30 training steps (output as JSON), and its wall time."""
    import contextlib
    import io

    out = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(out):
        code = main(["demo", "--format", "json", "--steps", "30"])
    return code, json.loads(out.getvalue()), time.perf_counter() - t0


def test_builtin_collection_follows_its_stated_rule():
    data = read_beir(builtin_path())
    assert len(data.doc_ids) == 200 and len(data.query_ids) == 40  # README: 200 docs, 40 q
    topic_of = {d: d.split("-")[0] for d in data.doc_ids.tolist()}
    qrels = data.qrels.to_dict()
    assert set(qrels) == set(data.query_ids.tolist())
    for q, judged in qrels.items():
        grades = Counter(judged.values())
        assert grades == {2: 2, 1: 8}, q  # README: 2 docs of grade 2, 8 of grade 1
        best = [d for d, g in judged.items() if g == 2]
        facets = {d.split("-")[1] for d in best}
        assert len(facets) == 1 and len({topic_of[d] for d in judged}) == 1


def test_builtin_collection_needs_more_than_word_overlap():
    # at least a quarter of the grade-2 documents share no stemmed term with their query
    from jaxrank.retrieve import build_index

    col = load_collection(None)
    idx = build_index(col.docs, col.doc_ids)
    terms = dict(zip(col.query_ids, idx.tokenizer(col.queries), strict=True))
    doc_terms = dict(zip(col.doc_ids.tolist(), idx.tokenizer(col.docs), strict=True))
    rel = col.qrels.to_dict()
    pairs = [(q, d) for q in rel for d, g in rel[q].items() if g == 2]
    no_overlap = sum(not set(terms[q]) & set(doc_terms[d]) for q, d in pairs)
    assert no_overlap >= len(pairs) // 4


def test_generator_reproduces_the_shipped_files():
    import importlib.util

    path = builtin_path() / "make_collection.py"
    spec = importlib.util.spec_from_file_location("make_collection", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    corpus, queries, qrels = mod.generate()
    shipped = [json.loads(x) for x in (builtin_path() / "corpus.jsonl").read_text().splitlines()]
    assert corpus == shipped
    assert len(queries) == 40 and len(qrels) == 400


def test_demo_stages_and_metrics(demo_json):
    code, r, seconds = demo_json
    assert code == 0
    assert seconds < 120  # measured ~25 s under load with 100 steps; generous for CI
    stages = {s["stage"]: s for s in r["stages"]}
    assert list(stages) == ["bm25", "lsa", "rrf", "maxsim"]
    for s in stages.values():
        for m in ("nDCG@10", "MAP", "R@100", "MRR"):
            assert 0.0 <= s[m] <= 1.0
    # measured: 0.5354 0.5639 0.5006 0.7210 (module docstring)
    assert stages["bm25"]["nDCG@10"] > 0.45
    assert stages["lsa"]["nDCG@10"] > 0.45
    assert stages["rrf"]["R@100"] >= stages["bm25"]["R@100"]  # 0.9525 vs 0.7950
    assert stages["maxsim"]["nDCG@10"] > stages["rrf"]["nDCG@10"] + 0.1
    assert stages["maxsim"]["R@100"] == stages["rrf"]["R@100"]  # a rerank keeps the set


def test_demo_head_learns(demo_json):
    _, r, _ = demo_json
    h = r["head"]
    assert h["steps"] == 30 and h["train_queries"] == 20 and h["held_out_queries"] == 20
    assert h["loss_after"] < h["loss_before"]
    assert h["ndcg10_after"]["train"] > h["ndcg10_before"]["train"]
    assert h["ndcg10_after"]["held_out"] > h["ndcg10_before"]["held_out"]


def test_demo_table_output(capsys):
    # the table formatter on the JSON of a run (no second pipeline run)
    from jaxrank.cli._demo import format_result

    stage = {"nDCG@10": 0.5, "MAP": 0.4, "R@100": 0.9, "MRR": 0.7, "seconds": 1.0, "note": "x"}
    head = {
        "model": "m",
        "loss": "l",
        "steps": 3,
        "train_queries": 2,
        "held_out_queries": 2,
        "loss_before": 0.5,
        "loss_after": 0.25,
        "ndcg10_before": {"train": 0.1, "held_out": 0.2},
        "ndcg10_after": {"train": 0.3, "held_out": 0.4},
        "held_out_baselines": {"bm25": 0.2, "rrf": 0.3, "maxsim": 0.5},
    }
    text = format_result(
        {
            "collection": {"name": "c", "documents": 1, "queries": 2, "judgments": 3},
            "stages": [{"stage": "bm25", **stage}],
            "head": head,
            "seconds": {"total": 2.0},
        }
    )
    assert "| bm25 | 0.5000 | 0.4000 | 0.9000 | 0.7000 | 1.00 | x |" in text
    assert "| after | 0.2500 | 0.3000 | 0.4000 |" in text


def test_demo_user_errors(tmp_path, capsys):
    assert main(["demo", "--data", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert "not a directory" in err and "Traceback" not in err
    (tmp_path / "corpus.jsonl").write_text('{"_id": "d1", "text": "a b"}\n')
    (tmp_path / "queries.jsonl").write_text('{"_id": "q1", "text": "a"}\n')
    assert main(["demo", "--data", str(tmp_path)]) == 2
    assert "no qrels/test.tsv" in capsys.readouterr().err
    assert main(["demo", "--depth", "3"]) == 2


def test_lsa_matches_numpy_svd():
    # the randomized SVD in JAX against numpy's exact SVD of the dense TF-IDF matrix
    from jaxrank.cli._pipeline import _tfidf, fit_lsa
    from jaxrank.retrieve import build_index

    col = load_collection(None)
    idx = build_index(col.docs, col.doc_ids)
    rows, cols, vals, _ = _tfidf(idx)
    a = np.zeros((idx.n_docs, idx.n_terms))
    a[rows, cols] = vals
    s_exact = np.linalg.svd(a, compute_uv=False)[:16]
    lsa = fit_lsa(idx, 16, n_iter=6)
    # randomized subspace iteration: the leading values converge first; measured
    # relative errors 2e-6 (top 4) and 3.6e-3 (worst of 16, a flat tail of the spectrum)
    np.testing.assert_allclose(np.asarray(lsa.sigma)[:4], s_exact[:4], rtol=1e-4)
    np.testing.assert_allclose(np.asarray(lsa.sigma), s_exact, rtol=1e-2)
    # doc vectors are A V: projections of the TF-IDF rows on the basis
    np.testing.assert_allclose(
        np.asarray(lsa.doc_vectors), a @ np.asarray(lsa.basis), rtol=1e-3, atol=1e-4
    )

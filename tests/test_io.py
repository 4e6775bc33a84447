"""Readers for runs and qrels, and the bad-input behaviour of evaluation."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from jaxrank.eval import evaluate
from jaxrank.io import (
    Qrels,
    Run,
    TrecFormatError,
    read_beir_qrels,
    read_qrels,
    read_run,
    write_run,
)

RUN = "q1 Q0 d1 1 3.0 tag\nq1 Q0 d2 2 2.0 tag\nq2 Q0 d3 1 1.5 tag\n"
QRELS = "q1 0 d1 1\nq1 0 d2 0\nq2 0 d3 2\n"


def _write(tmp_path, name, text, gz=False):
    path = tmp_path / name
    if gz:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def test_read_run_columns_and_groups(tmp_path):
    run = read_run(_write(tmp_path, "run", "q2 Q0 x 1 5 t\n" + RUN), ranks=True)
    assert run.query_ids.tolist() == ["q2", "q1"]  # first appearance
    assert run.offsets.tolist() == [0, 2, 4]
    assert run.doc_ids.tolist() == ["x", "d3", "d1", "d2"]
    assert run.scores.tolist() == [5.0, 1.5, 3.0, 2.0]
    assert run.ranks.tolist() == [1, 1, 1, 2]
    assert run.name == "tag"
    assert read_run(tmp_path / "run").ranks is None  # parsed only on request


def test_interleaved_queries_are_grouped(tmp_path):
    text = "a Q0 d1 1 1 t\nb Q0 d2 1 1 t\na Q0 d3 2 0 t\n"
    run = read_run(_write(tmp_path, "run", text), ranks=True)
    assert run.query_ids.tolist() == ["a", "b"]
    assert run.doc_ids.tolist() == ["d1", "d3", "d2"]
    assert run.ranks.tolist() == [1, 2, 1]


def test_gzip_is_transparent(tmp_path):
    a = read_run(_write(tmp_path, "run", RUN))
    b = read_run(_write(tmp_path, "run.gz", RUN, gz=True))
    assert a.to_dict() == b.to_dict()


def test_dict_round_trip():
    d = {"q1": {"d1": 1.0, "d2": 0.5}, "q2": {"d9": -1.0}}
    assert Run.from_dict(d).to_dict() == d
    qd = {"q1": {"d1": 2, "d2": 0}}
    assert Qrels.from_dict(qd).to_dict() == qd


def test_write_run_reads_back(tmp_path):
    run = Run.from_dict({"q": {"a": 1.0, "b": 1.0, "c": 2.0}}, name="sys")
    write_run(run, tmp_path / "out")
    lines = (tmp_path / "out").read_text().splitlines()
    # score descending, ties by doc id descending (trec_eval's order), ranks 1-based
    assert [ln.split()[2:4] for ln in lines] == [["c", "1"], ["b", "2"], ["a", "3"]]
    assert read_run(tmp_path / "out").to_dict() == run.to_dict()


def test_malformed_line_names_file_and_line(tmp_path):
    path = _write(tmp_path, "run", RUN + "q3 Q0 d4 1 tag\n")
    with pytest.raises(TrecFormatError, match=r"run:4: malformed run line"):
        read_run(path)
    path = _write(tmp_path, "qrels", QRELS.replace("q2 0 d3 2", "q2 0 d3 2 9"))
    with pytest.raises(TrecFormatError, match=r"qrels:3: malformed qrels line"):
        read_qrels(path)


def test_short_and_long_lines_that_balance_are_caught(tmp_path):
    # 5 + 7 fields = 2 * 6 tokens: a token count alone would not notice
    text = "q1 Q0 d1 1 tag\nq1 Q0 d2 2 2.0 tag extra\n"
    with pytest.raises(TrecFormatError, match=r":1: malformed run line.*found 5"):
        read_run(_write(tmp_path, "run", text))


def test_non_numeric_score_names_line(tmp_path):
    with pytest.raises(TrecFormatError, match=r"run:2: score column is not a number: 'abc'"):
        read_run(_write(tmp_path, "run", "q Q0 a 1 1.0 t\nq Q0 b 2 abc t\n"))


def test_nan_and_inf_scores_name_query_and_doc(tmp_path):
    with pytest.raises(ValueError, match=r"query 'q1', document 'd2' is not finite"):
        read_run(_write(tmp_path, "run", "q1 Q0 d1 1 1 t\nq1 Q0 d2 2 nan t\n"))
    with pytest.raises(ValueError, match=r"query 'q', document 'x' is not finite"):
        Run.from_dict({"q": {"x": float("inf")}})


def test_empty_files_are_errors(tmp_path):
    with pytest.raises(TrecFormatError, match="empty run file"):
        read_run(_write(tmp_path, "run", "\n\n"))
    with pytest.raises(TrecFormatError, match="empty qrels file"):
        read_qrels(_write(tmp_path, "qrels", "# only a comment\n"))
    with pytest.raises(FileNotFoundError):
        read_run(tmp_path / "missing")


def test_duplicate_document_in_run_is_refused(tmp_path):
    run = read_run(_write(tmp_path, "run", RUN + "q1 Q0 d1 3 0.5 tag\n"))
    qrels = read_qrels(_write(tmp_path, "qrels", QRELS))
    with pytest.raises(ValueError, match=r"document 'd1' appears more than once for query 'q1'"):
        evaluate(qrels, run, ["map"])


def test_duplicate_judgment_is_refused(tmp_path):
    qrels = read_qrels(_write(tmp_path, "qrels", QRELS + "q1 0 d1 0\n"))
    with pytest.raises(ValueError, match=r"duplicate judgment of document 'd1' for query 'q1'"):
        evaluate(qrels, read_run(_write(tmp_path, "run", RUN)), ["map"])


def test_run_queries_without_qrels_are_ignored_with_a_count(tmp_path):
    run = read_run(_write(tmp_path, "run", RUN + "q7 Q0 z 1 1 tag\nq8 Q0 z 1 1 tag\n"))
    qrels = read_qrels(_write(tmp_path, "qrels", QRELS))
    with pytest.warns(UserWarning, match=r"2 run queries have no qrels"):
        result = evaluate(qrels, run, ["map"])
    assert result.query_ids == ["q1", "q2"]


def test_no_overlap_is_an_error(tmp_path):
    run = Run.from_dict({"x": {"a": 1.0}})
    with pytest.raises(ValueError, match="no query has both"), pytest.warns(UserWarning):
        evaluate(Qrels.from_dict({"q": {"a": 1}}), run)


def test_beir_qrels_header_and_columns(tmp_path):
    path = _write(tmp_path, "test.tsv", "query-id\tcorpus-id\tscore\n1\t31715818\t1\n1\tx\t0\n")
    assert read_beir_qrels(path).to_dict() == {"1": {"31715818": 1, "x": 0}}
    bad = _write(tmp_path, "bad.tsv", "query-id\tcorpus-id\tscore\n1\t2\n")
    with pytest.raises(TrecFormatError, match=r"bad.tsv:2: expected 3 tab-separated"):
        read_beir_qrels(bad)


def test_scifact_beir_qrels(shared_data):
    qrels = read_beir_qrels(shared_data / "beir_scifact" / "qrels" / "test.tsv")
    # SciFact test split: 300 queries, 339 judgments (one line each in test.tsv)
    assert qrels.num_queries == 300 and len(qrels) == 339
    assert np.all(qrels.relevance == 1)


def test_scores_tie_on_float32_values():
    # 1.0 and 1.0 + 1e-9 are equal as C floats: trec_eval breaks the tie by doc id desc,
    # so "b" (relevant) ranks first and P@1 = 1 even though its double score is lower.
    run = Run.from_dict({"q": {"a": 1.0 + 1e-9, "b": 1.0}})
    qrels = Qrels.from_dict({"q": {"b": 1}})
    assert evaluate(qrels, run, ["P.1"]).summary["P_1"] == 1.0


def test_native_and_python_parsers_agree(tmp_path, monkeypatch):
    # comment and blank lines leave unfilled rows in the native span buffers
    text = "# header\n\n" + RUN.replace("q1 Q0 d2", "\nq1 Q0 d2") + "  # trailing comment\n"
    path = _write(tmp_path, "run", text)
    native = read_run(path, ranks=True)
    import jaxrank.io._native_parse as native_parse

    monkeypatch.setattr(native_parse, "parse_columns", lambda *a: None)
    python = read_run(path, ranks=True)
    assert (
        native.to_dict()
        == python.to_dict()
        == Run.from_dict({"q1": {"d1": 3.0, "d2": 2.0}, "q2": {"d3": 1.5}}).to_dict()
    )
    assert native.ranks.tolist() == python.ranks.tolist() and native.name == python.name

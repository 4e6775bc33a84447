"""The command line: trec_eval-identical output, formats, exit codes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from jaxrank.cli import main


def test_eval_prints_trec_eval_output(shared_data, capsys):
    folder = shared_data / "trec_eval_tests" / "v10.0"
    code = main(["eval", str(folder / "qrels.test"), str(folder / "results.test")])
    assert code == 0
    assert capsys.readouterr().out == (folder / "out.test").read_text()


def test_eval_options_match_trec_eval(shared_data, capsys):
    folder = shared_data / "trec_eval_tests" / "v10.0"
    args = ["eval", "-m", "all_trec", "-q", "-c", "-M", "100"]
    code = main([*args, str(folder / "qrels.test"), str(folder / "results.trunc")])
    assert code == 0
    expected = [
        ln for ln in (folder / "out.test.aqcM").read_text().splitlines() if "relstring" not in ln
    ]
    assert capsys.readouterr().out.splitlines() == expected


def test_eval_json_format(shared_data, capsys):
    folder = shared_data / "trec_eval_tests" / "v10.0"
    main(["eval", "-m", "map", "-m", "P.5", "--format", "json", "-q",
          str(folder / "qrels.test"), str(folder / "results.test")])  # fmt: skip
    data = json.loads(capsys.readouterr().out)
    # out.test.a: map all 0.1785, P_5 all 0.2667; out.test.aq: map 301 0.0324
    assert round(data["all"]["map"], 4) == 0.1785
    assert round(data["all"]["P_5"], 4) == 0.2667
    assert round(data["per_query"]["301"]["map"], 4) == 0.0324


def test_user_errors_exit_2_without_traceback(tmp_path, capsys):
    bad = tmp_path / "run"
    bad.write_text("q Q0 d 1 oops\n")
    qrels = tmp_path / "qrels"
    qrels.write_text("q 0 d 1\n")
    assert main(["eval", str(qrels), str(bad)]) == 2
    err = capsys.readouterr().err
    assert "run:1: malformed run line" in err and "Traceback" not in err
    assert main(["eval", str(qrels), str(tmp_path / "missing")]) == 2
    good = tmp_path / "good"
    good.write_text("q Q0 d 1 1.0 t\n")
    assert main(["eval", "-m", "nosuch", str(qrels), str(good)]) == 2
    assert "unknown measure 'nosuch'" in capsys.readouterr().err


def test_compare_table(shared_data, capsys):
    runs = sorted((shared_data / "runs_generated" / "scifact").glob("*.trec.gz"))[:2]
    qrels = shared_data / "beir_scifact" / "qrels" / "test.tsv"
    code = main(["compare", str(qrels), *map(str, runs), "--trials", "500"])
    assert code == 0
    out = capsys.readouterr().out
    assert "| map |" in out and "(baseline)" in out and "ndcg_cut_10" in out


def test_help_reads(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["eval", "--help"])
    assert exc.value.code == 0
    assert "trec_eval" in capsys.readouterr().out


# --- one coherent CLI: JSON output and exit codes of every command -----------------
# Small inputs: the built-in collection (jaxrank/data/hobbies, 200 docs, 40 queries).

COMMANDS = ("eval", "compare", "fuse", "index", "search", "rerank", "demo")


@pytest.fixture(scope="module")
def hobbies():
    from jaxrank.cli._pipeline import builtin_path

    return builtin_path()


@pytest.fixture(scope="module")
def bm25_run(hobbies, tmp_path_factory):
    """A BM25 run of the built-in queries (index + search through the CLI)."""
    tmp = tmp_path_factory.mktemp("cli")
    assert main(["index", str(hobbies), str(tmp / "idx")]) == 0
    run = tmp / "bm25.trec"
    assert main(["search", str(tmp / "idx"), str(hobbies / "queries.jsonl"), "-k", "20",
                 "-o", str(run)]) == 0  # fmt: skip
    return run


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_has_description_and_examples(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"] if command else ["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert ("examples:" in out and "--format" in out) or command is None
    if command is None:
        for c in COMMANDS:
            assert c in out


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "usage: jaxrank" in capsys.readouterr().err


def test_index_json(hobbies, tmp_path, capsys):
    assert main(["index", str(hobbies), str(tmp_path / "idx"), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    # 200 documents (the collection's README); defaults saved for `search`
    assert data["documents"] == 200 and data["terms"] > 100
    assert data["defaults"]["method"] == "lucene"


def test_search_json(hobbies, bm25_run, tmp_path, capsys):
    idx = bm25_run.parent / "idx"
    out = tmp_path / "run.json"
    args = ["search", str(idx), str(hobbies / "queries.jsonl"), "-k", "5"]
    assert main([*args, "--format", "json", "-o", str(out)]) == 0
    run = json.loads(out.read_text())
    assert len(run) == 40 and all(len(docs) <= 5 for docs in run.values())
    # the same top scores as the TREC output of the same search (ties may swap docs)
    from jaxrank.io import read_run

    trec = read_run(bm25_run).to_dict()
    for q, docs in run.items():
        top = sorted(trec[q].values(), reverse=True)[:5]
        np.testing.assert_allclose(sorted(docs.values(), reverse=True), top, rtol=1e-5)


def test_fuse_json_and_tag(bm25_run, tmp_path, capsys):
    assert main(["fuse", str(bm25_run), str(bm25_run), "--format", "json"]) == 0
    fused = json.loads(capsys.readouterr().out)
    assert len(fused) == 40
    assert main(["fuse", str(bm25_run), str(bm25_run), "--tag", "mine", "-k", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines and all(ln.split()[-1] == "mine" for ln in lines)
    assert max(int(ln.split()[3]) for ln in lines) == 3


def test_compare_json(hobbies, bm25_run, tmp_path, capsys):
    qrels = hobbies / "qrels" / "test.tsv"
    code = main(["compare", str(qrels), str(bm25_run), str(bm25_run), "--trials", "200",
                 "--format", "json", "-m", "map"])  # fmt: skip
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["num_q"] == 40
    diffs = [r["diff"] for r in data["rows"] if r["diff"] is not None]
    assert diffs == [0.0]  # a run against itself


@pytest.mark.parametrize("method", ["maxsim", "mmr"])
def test_rerank_json(method, hobbies, bm25_run, capsys):
    args = ["rerank", str(bm25_run), "--data", str(hobbies), "-k", "10", "--method", method]
    assert main([*args, "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    from jaxrank.io import read_run

    trec = read_run(bm25_run).to_dict()
    assert set(out) == set(trec)
    for q, docs in out.items():  # the same top 10, reordered
        assert set(docs) == set(sorted(trec[q], key=lambda d: -trec[q][d])[:10])
    if method == "mmr":  # scores k, k-1, ..., 1 in selection order
        assert sorted(next(iter(out.values())).values()) == list(range(1, 11))


def test_rerank_maxsim_improves_bm25(hobbies, bm25_run, tmp_path, capsys):
    out = tmp_path / "maxsim.trec"
    assert main(["rerank", str(bm25_run), "--data", str(hobbies), "-o", str(out)]) == 0
    qrels = str(hobbies / "qrels" / "test.tsv")
    capsys.readouterr()
    for run in (bm25_run, out):
        main(["eval", qrels, str(run), "-m", "ndcg_cut.10", "--format", "json"])
    before, after = (json.loads(x)["all"]["ndcg_cut_10"] for x in _json_docs(capsys))
    # measured on the built-in data: 0.5354 -> 0.6078 (top 20 of BM25 reranked)
    assert after > before + 0.03


def _json_docs(capsys):
    text = capsys.readouterr().out
    dec, pos, docs = json.JSONDecoder(), 0, []
    while pos < len(text):
        obj, end = dec.raw_decode(text, pos)
        docs.append(json.dumps(obj))
        pos = end
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return docs


@pytest.mark.parametrize(
    "args, message",
    [
        (["eval", "QRELS", "missing.trec"], "missing.trec"),
        (["compare", "QRELS", "RUN"], "at least two runs"),
        (["fuse", "RUN"], "at least two runs"),
        (["fuse", "RUN", "RUN", "--method", "probfuse"], "give --qrels"),
        (["index", "missing-folder", "IDX"], "no such corpus file"),
        (["search", "missing-index", "QUERIES", "-o", "x"], "does not exist"),
        (["search", "IDX", "QUERIES", "-k", "0"], "-k must be >= 1"),
        (["rerank", "RUN", "--data", "missing-folder"], "not a directory"),
        (["rerank", "RUN", "--data", "DATA", "--lambda", "2"], "--lambda must be in [0, 1]"),
        (["demo", "--data", "missing-folder"], "not a directory"),
        (["demo", "--steps", "-1"], "--steps must be >= 0"),
    ],
)
def test_user_errors_exit_2(args, message, hobbies, bm25_run, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    subst = {
        "QRELS": str(hobbies / "qrels" / "test.tsv"),
        "RUN": str(bm25_run),
        "IDX": str(bm25_run.parent / "idx"),
        "QUERIES": str(hobbies / "queries.jsonl"),
        "DATA": str(hobbies),
    }
    assert main([subst.get(a, a) for a in args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert err.startswith(f"jaxrank {args[0]}: error:")


@pytest.mark.parametrize(
    "args, message",
    [
        (["fuse", "a", "b", "--method", "nosuch"], "invalid choice: 'nosuch'"),
        (["fuse", "a", "b", "--weights", "x,y"], "must be numbers separated by commas"),
        (["eval", "qrels"], "the following arguments are required: run"),
        (["rerank", "run.trec"], "the following arguments are required: --data"),
    ],
)
def test_bad_options_exit_2(args, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2  # argparse's usage error
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_internal_error_exits_1(monkeypatch, capsys):
    import jaxrank.cli._demo as demo

    def boom(*args, **kwargs):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(demo, "run_demo", boom)
    assert main(["demo"]) == 1
    err = capsys.readouterr().err
    assert "internal error (RuntimeError: kaboom)" in err and "Traceback" in err


def test_missing_optional_dependency_exits_2(hobbies, tmp_path, monkeypatch, capsys):
    import builtins

    real_import = builtins.__import__

    def no_stemmer(name, *args, **kwargs):
        if name == "Stemmer":
            raise ImportError("No module named 'Stemmer'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_stemmer)
    from jaxrank.retrieve import _tokenize

    monkeypatch.setattr(_tokenize, "_make_stemmer", _tokenize._make_stemmer)
    assert main(["index", str(hobbies), str(tmp_path / "i"), "--stemmer", "porter"]) == 2
    assert "PyStemmer" in capsys.readouterr().err

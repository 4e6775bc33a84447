"""The command line: trec_eval-identical output, formats, exit codes."""

from __future__ import annotations

import json

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


def test_demo_runs(capsys):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "ndcg_cut_10" in out and "| map | hybrid |" in out


def test_help_reads(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["eval", "--help"])
    assert exc.value.code == 0
    assert "trec_eval" in capsys.readouterr().out

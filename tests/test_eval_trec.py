"""trec_eval parity: every line of trec_eval 10.0's own expected outputs.

Expected values come from ``trec_eval_tests/v10.0/out.*`` (trec_eval's test folder,
see its SOURCE.md for the command producing each file). ``relstring`` lines are
excluded (not implemented); every other line must be byte-identical.
"""

from __future__ import annotations

import pytest

from jaxrank.eval import evaluate
from jaxrank.io import read_qrels, read_run

MEAS_PARAMS = [
    "iprec_at_recall..10,.20,.25,.75,.50",
    "P.5,7,3",
    "recall.20,2000",
    "Rprec_mult.5.0,0.2,0.35",
    "utility.2,-1,0,0",
    "11pt_avg..25,.5,.75",
    "ndcg.1=3,2=9,4=4.5",
    "ndcg_cut.10,20,23.4",
    "success.2,5,20",
]

CASES = {
    # expected file: (qrels, run, measures, options, per-query)
    "out.test": ("qrels.test", "results.test", ["official"], {}, False),
    "out.comment.test": ("qrels.comment.test", "results.comment.test", ["official"], {}, False),
    "out.test.a": ("qrels.test", "results.test", ["all_trec"], {}, False),
    "out.test.aq": ("qrels.test", "results.test", ["all_trec"], {}, True),
    "out.test.aqc": (
        "qrels.test",
        "results.trunc",
        ["all_trec"],
        {"average_complete": True},
        True,
    ),
    "out.test.aqcM": (
        "qrels.test",
        "results.trunc",
        ["all_trec"],
        {"average_complete": True, "max_docs": 100},
        True,
    ),
    "out.test.aql": ("qrels.rel_level", "results.test", ["all_trec"], {"relevance_level": 2}, True),
    "out.test.meas_params": ("qrels.test", "results.test", MEAS_PARAMS, {}, True),
}


@pytest.mark.filterwarnings("ignore:.*run queries have no qrels")
@pytest.mark.parametrize("expected_file", sorted(CASES))
def test_trec_eval_10_expected_output(shared_data, expected_file):
    folder = shared_data / "trec_eval_tests" / "v10.0"
    qrels_name, run_name, measures, options, per_query = CASES[expected_file]
    result = evaluate(
        read_qrels(folder / qrels_name), read_run(folder / run_name), measures, **options
    )
    got = result.format_trec(per_query).splitlines()
    expected = [
        line
        for line in (folder / expected_file).read_text().splitlines()
        if not line.startswith("relstring")
    ]
    assert len(got) == len(expected)
    for i, (g, e) in enumerate(zip(got, expected, strict=True)):
        assert g == e, f"{expected_file} line {i + 1}: got {g!r}, trec_eval printed {e!r}"


def test_qrels_with_comment_lines_reproduce_out_test(shared_data):
    # trec_eval's Makefile checks qrels.test.with-comments against out.test too; the file
    # has '#' comment lines and a doc id containing '#' (kept: only leading '#' comments).
    folder = shared_data / "trec_eval_tests" / "v10.0"
    qrels = read_qrels(folder / "qrels.test.with-comments")
    assert "CR#93E-1860" in qrels.to_dict()["301"]
    got = evaluate(qrels, read_run(folder / "results.test")).format_trec()
    assert got == (folder / "out.test").read_text()

"""Tests of jaxrank.fusion: ranx 0.3.21 and Pyserini side by side, hand cases, bad input.

Sources of expected numbers:
* ranx 0.3.21 (``ranx.fuse`` and its trainers) run side by side on the SciFact runs of
  ``runs_generated/scifact`` -- a missing ranx fails these tests;
* Pyserini's own expected files in ``pyserini_fusion_fixtures`` (compared line by line);
* hand calculations from the papers' definitions (Copeland, median rank, DBSF,
  Condorcet, 0-based RRF), written out next to each expected value.
"""

from __future__ import annotations

import gzip
import math
from collections import defaultdict

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _native_helpers import require_native
from hypothesis import given
from hypothesis import strategies as st

from jaxrank.eval import evaluate
from jaxrank.fusion import (
    METHODS,
    NORMALIZATIONS,
    TRAINED,
    approx_ndcg,
    fuse,
    fuse_arrays,
    grid_search,
    learn_weights,
    normalize,
    runs_to_arrays,
    train,
)
from jaxrank.io import Qrels, Run, read_run

BM25 = "scifact-test.bm25s-lucene-k11.2-b0.75.top100.trec.gz"
LSI = "scifact-test.lsi256-tfidf.top100.trec.gz"


# --------------------------------------------------------------------------- fixtures


def _load_gz(path) -> dict[str, dict[str, float]]:
    d: dict[str, dict[str, float]] = defaultdict(dict)
    with gzip.open(path, "rt") as fh:
        for line in fh:
            q, _, doc, _, s, _ = line.split()
            d[q][doc] = float(s)
    return dict(d)


@pytest.fixture(scope="module")
def scifact(shared_data):
    import ranx  # a missing peer fails these tests (ImportError); they never skip

    folder = shared_data / "runs_generated" / "scifact"
    a, b = _load_gz(folder / BM25), _load_gz(folder / LSI)
    ra, rb = ranx.Run(a, name="bm25"), ranx.Run(b, name="lsi")
    qd: dict[str, dict[str, int]] = defaultdict(dict)
    with open(shared_data / "beir_scifact" / "qrels" / "test.tsv") as fh:
        next(fh)
        for line in fh:
            q, d, s = line.split()
            qd[q][d] = int(s)
    # ranx's own rank order (numba quicksort: ties in arbitrary order), as dicts
    a_ranx = {q: ra[q] for q in ra.keys()}
    b_ranx = {q: rb[q] for q in rb.keys()}
    return {
        "a": a,
        "b": b,
        "ra": ra,
        "rb": rb,
        "a_ranx": a_ranx,
        "b_ranx": b_ranx,
        "qrels": dict(qd),
        "ranx_qrels": ranx.Qrels(dict(qd)),
        "qrels_obj": Qrels.from_dict(dict(qd)),
    }


def _ndcg10(qrels_obj, run_dict) -> float:
    """trec_eval ndcg_cut.10 (jaxrank.eval; ties: score desc, doc id desc)."""
    return evaluate(qrels_obj, Run.from_dict(run_dict), ["ndcg_cut.10"]).summary["ndcg_cut_10"]


def _max_rel(ranx_run, ours) -> float:
    worst = 0.0
    for q in ranx_run.keys():
        x, y = ranx_run[q], ours[q]
        assert set(x) == set(y), f"query {q}: different fused document sets"
        for d, v in x.items():
            worst = max(worst, abs(v - y[d]) / max(abs(v), 1e-300))
    return worst


# Every ranx method and normalization at ranx's default parameters (weights, gamma, phi
# chosen where ranx has no default).
RANX_CASES = [
    ("sum", "min-max", {}),
    ("mnz", "min-max", {}),
    ("max", "min-max", {}),
    ("min", "min-max", {}),
    ("med", "min-max", {}),
    ("anz", "min-max", {}),
    ("gmnz", "min-max", {"gamma": 0.5}),
    ("wsum", "min-max", {"weights": [0.3, 0.7]}),
    ("wmnz", "min-max", {"weights": [0.3, 0.7]}),
    ("mixed", "min-max", {"weights": [0.3, 0.7]}),
    ("rrf", "min-max", {}),
    ("isr", "min-max", {}),
    ("log_isr", "min-max", {}),
    ("logn_isr", "min-max", {}),
    ("rbc", "min-max", {"phi": 0.8}),
    ("bordafuse", "min-max", {}),
    ("w_bordafuse", "min-max", {"weights": [0.3, 0.7]}),
    ("sum", "min-max-inverted", {}),
    ("sum", "max", {}),
    ("sum", "sum", {}),
    ("sum", "zmuv", {}),
    ("sum", "rank", {}),
    ("sum", "borda", {}),
    ("mnz", "borda", {}),
    ("sum", None, {}),
]


@pytest.mark.parametrize(("method", "norm", "params"), RANX_CASES)
def test_ranx_parity_scifact(scifact, method, norm, params):
    import ranx

    expected = ranx.fuse([scifact["ra"], scifact["rb"]], norm=norm, method=method, params=params)
    # ranx ranks ties in its own (quicksort) order; feeding that order as the "file"
    # order makes every rank-based method comparable entry by entry.
    runs = [scifact["a_ranx"], scifact["b_ranx"]]
    ours = fuse(runs, method=method, norm=norm, rank_from="file", dtype="float64", **params)
    assert _max_rel(expected, ours) <= 1e-6
    # Same nDCG@10 under one evaluator (trec_eval order breaks the fused ties).
    want = _ndcg10(scifact["qrels_obj"], {q: expected[q] for q in expected.keys()})
    got = _ndcg10(scifact["qrels_obj"], ours)
    assert abs(got - want) <= 1e-12


@pytest.mark.parametrize(("method", "norm"), [("rrf", "min-max"), ("sum", "zmuv")])
def test_ranx_parity_float32(scifact, method, norm):
    """float32 (the default): within 1e-6 relative plus 5e-6 absolute (zmuv's values
    near 0 carry float32's cancellation error; dtype="float64" gives 1e-12)."""
    import ranx

    expected = ranx.fuse([scifact["ra"], scifact["rb"]], norm=norm, method=method)
    ours = fuse([scifact["a_ranx"], scifact["b_ranx"]], method=method, norm=norm, rank_from="file")
    for q in expected.keys():
        for d, v in expected[q].items():
            assert abs(ours[q][d] - v) <= 1e-6 * abs(v) + 5e-6


@pytest.mark.parametrize("method", ["rrf", "isr", "bordafuse", "sum", "mnz"])
def test_ranx_parity_rank_from_score_on_tie_free_queries(scifact, method):
    """Ranks recomputed from scores equal ranx's wherever a query has no tied scores."""
    import ranx

    a, b = scifact["a"], scifact["b"]
    free = [
        q
        for q in a
        if len(set(a[q].values())) == len(a[q]) and len(set(b[q].values())) == len(b[q])
    ]
    assert len(free) >= 200  # 224 of the 300 queries have no tied scores in either run
    ra = ranx.Run({q: a[q] for q in free})
    rb = ranx.Run({q: b[q] for q in free})
    expected = ranx.fuse([ra, rb], method=method)
    ours = fuse([{q: a[q] for q in free}, {q: b[q] for q in free}], method=method, dtype="float64")
    assert _max_rel(expected, ours) <= 1e-6


def test_ranx_anchor_numbers(scifact):
    """SOURCE.md's ranx nDCG@10 anchors, by ranx's own evaluator on ranx's fused runs
    (ranx orders tied fused scores its own way; jaxrank's numbers use trec_eval order)."""
    import ranx

    anchors = {
        ("rrf", "min-max"): 0.6076,
        ("sum", "min-max"): 0.6543,
        ("mnz", "min-max"): 0.6469,
        ("sum", "zmuv"): 0.6763,
        ("max", "min-max"): 0.6601,
        ("bordafuse", "min-max"): 0.6045,
        ("isr", "min-max"): 0.6438,
    }
    for (method, norm), value in anchors.items():
        run = ranx.fuse([scifact["ra"], scifact["rb"]], norm=norm, method=method)
        got = ranx.evaluate(scifact["ranx_qrels"], run, "ndcg@10")
        if method == "bordafuse":  # ranx's Borda ties vary with its set order
            assert abs(got - value) < 2e-3
        else:
            assert round(got, 4) == value


@pytest.mark.parametrize("method", TRAINED)
def test_trained_methods_match_ranx(scifact, method):
    import ranx
    from ranx import fusion as rf

    runs_r = [scifact["ra"], scifact["rb"]]
    trainer = {
        "posfuse": rf.posfuse_train,
        "probfuse": lambda q, r: rf.probfuse_train(q, r, 10),
        "segfuse": rf.segfuse_train,
        "slidefuse": rf.slidefuse_train,
        "mapfuse": rf.mapfuse_train,
        "bayesfuse": rf.bayesfuse_train,
    }[method]
    want = trainer(scifact["ranx_qrels"], runs_r)
    runs = [scifact["a_ranx"], scifact["b_ranx"]]
    params = train(method, runs, scifact["qrels"], rank_from="file")
    (key,) = params
    for w, g in zip(want, params[key], strict=True):
        w = np.atleast_1d(np.asarray(w, np.float64))
        g = np.atleast_1d(g)
        np.testing.assert_allclose(g[: w.size], w[: g.size], rtol=1e-12, atol=1e-15)
    extra = {"w": 2} if method == "slidefuse" else {}
    expected = ranx.fuse(runs_r, method=method, params={key: want, **extra})
    ours = fuse(runs, method=method, rank_from="file", dtype="float64", **params, **extra)
    assert _max_rel(expected, ours) <= 1e-6


_TRANSITIVE = (  # majorities a>b (r1, r3), a>c (all), b>c (r1, r2), all > d: a, b, c, d
    {"q": {"a": 3.0, "b": 2.0, "c": 1.0, "d": 0.5}},
    {"q": {"b": 3.0, "a": 2.0, "c": 1.0, "d": 0.5}},
    {"q": {"a": 3.0, "c": 2.0, "b": 1.0, "d": 0.5}},
)


def test_weighted_condorcet_follows_the_weighted_majority():
    # run 2 (b, a, c, d) alone outweighs the other two (3 > 1 + 1) -> its order
    got_w = fuse(list(_TRANSITIVE), method="w_condorcet", weights=[1.0, 3.0, 1.0])
    assert list(got_w["q"]) == ["b", "a", "c", "d"]


_CYCLE = (  # majorities a>b (r1, r3), b>c (r1, r2), c>a (r2, r3): a cycle; all beat d, e; d>e
    {"q": {"a": 5.0, "b": 4.0, "c": 3.0, "d": 2.0, "e": 1.0}},
    {"q": {"b": 5.0, "c": 4.0, "a": 3.0, "e": 2.0, "d": 1.0}},
    {"q": {"c": 5.0, "a": 4.0, "b": 3.0, "d": 2.0, "e": 1.0}},
)
_RANX_CONDORCET = """
import json, ranx
out = []
for runs in json.loads({cases!r}):
    fused = ranx.fuse([ranx.Run(r) for r in runs], method="condorcet")
    out.append(dict(fused["q"]))
print(json.dumps(out))
"""


def test_condorcet_equals_ranx_when_transitive_and_is_deterministic_on_a_cycle():
    """ranx 0.3.21 sorts the candidates of a Python set with a majority comparator: when
    the majority is transitive that order is unique and jaxrank equals it (scores
    N - position too), under any PYTHONHASHSEED; on a cycle ranx's answer depends on
    string hashing (PYTHONHASHSEED), jaxrank's rule does not.

    jaxrank's rule (hand-applied): take the candidates in doc id descending order
    (e, d, c, b, a) and insert each right after the last already-placed candidate it
    does not strictly beat: [e] -> d beats e: [d, e] -> c beats d, e: [c, d, e] ->
    b beats c, d, e: [b, c, d, e] -> a beats b but not c: [b, c, a, d, e]."""
    import json
    import os
    import subprocess
    import sys

    got = fuse(list(_CYCLE), method="condorcet", dtype="float64")
    assert list(got["q"]) == ["b", "c", "a", "d", "e"]
    assert list(got["q"].values()) == [5.0, 4.0, 3.0, 2.0, 1.0]  # N - position
    # the same whatever the runs' order and the dicts' insertion order
    shuffled = [{"q": dict(reversed(r["q"].items()))} for r in reversed(_CYCLE)]
    assert list(fuse(shuffled, method="condorcet")["q"]) == ["b", "c", "a", "d", "e"]
    # ranx in two interpreters that differ only in PYTHONHASHSEED (run side by side)
    code = _RANX_CONDORCET.format(cases=json.dumps([list(_TRANSITIVE), list(_CYCLE)]))
    procs = {
        seed: subprocess.Popen(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in (0, 1)
    }
    out = {}
    for seed, p in procs.items():
        stdout, stderr = p.communicate(timeout=600)
        assert p.returncode == 0, stderr  # ranx missing or broken fails the test
        out[seed] = json.loads(stdout.strip().splitlines()[-1])
    # transitive: one answer, a, b, c, d with scores 4, 3, 2, 1, from ranx and jaxrank
    want = fuse(list(_TRANSITIVE), method="condorcet", dtype="float64")["q"]
    assert list(want) == ["a", "b", "c", "d"]
    for seed in (0, 1):
        assert list(out[seed][0]) == list(want) and out[seed][0] == want, seed
    # cycle, observed with ranx 0.3.21: seed 0 -> b, c, a, d, e; seed 1 -> a, b, c, d, e
    cycle = {seed: list(out[seed][1]) for seed in (0, 1)}
    assert cycle[0] != cycle[1], cycle
    for order in cycle.values():  # both end with the transitive part d > e
        assert order[3:] == ["d", "e"] and set(order[:3]) == {"a", "b", "c"}


# --------------------------------------------------------------------------- Pyserini


class _FileRun:
    """A Run-like object with the file's rank column (Pyserini's runs skip ranks)."""

    def __init__(self, path):
        rows = [line.split() for line in open(path) if line.strip()]
        qids, offsets = [], [0]
        for q, *_ in rows:
            if not qids or qids[-1] != q:
                qids.append(q)
                offsets.append(offsets[-1])
            offsets[-1] += 1
        self.name = str(path)
        self.query_ids = np.array(qids)
        self.offsets = np.array(offsets)
        self.doc_ids = np.array([r[2] for r in rows])
        self.ranks = np.array([int(r[3]) for r in rows])
        self.scores = np.array([float(r[4]) for r in rows])


@pytest.mark.parametrize(
    ("expected_file", "kwargs"),
    [
        ("simple_trec_run_rrf_verify.txt", {"method": "rrf", "rank_from": "file"}),
        (
            "simple_trec_run_interpolation_verify.txt",
            {"method": "interpolation", "alpha": 0.4, "norm": None},
        ),
        ("simple_trec_run_average_verify.txt", {"method": "average", "norm": None}),
        (
            "simple_fusion_normalize_verify.txt",
            {"method": "sum", "norm": "min-max", "degenerate": 1.0},
        ),
    ],
)
def test_pyserini_fixtures_exactly(shared_data, expected_file, kwargs):
    folder = shared_data / "pyserini_fusion_fixtures"
    runs = [_FileRun(folder / f"simple_trec_run_fusion_{i}.txt") for i in (1, 2)]
    fused = fuse(runs, dtype="float64", **kwargs)
    got = []
    for i, q in enumerate(fused.query_ids):
        s = slice(fused.offsets[i], fused.offsets[i + 1])
        for r, (d, v) in enumerate(zip(fused.doc_ids[s], fused.scores[s], strict=True), 1):
            got.append([q, "Q0", d, str(r), repr(float(v)), "test"])
    want = [line.split() for line in open(folder / expected_file) if line.strip()]
    assert got == want


def test_pyserini_rrf_needs_the_file_rank_column(shared_data):
    """Run 2 lists 2054tkb7 second but with rank 3: 1/62 + 1/63 only from the file."""
    folder = shared_data / "pyserini_fusion_fixtures"
    runs = [_FileRun(folder / f"simple_trec_run_fusion_{i}.txt") for i in (1, 2)]
    from_file = fuse(runs, method="rrf", rank_from="file", dtype="float64")
    from_score = fuse(runs, method="rrf", dtype="float64")
    i = list(from_file.doc_ids).index("2054tkb7")
    assert from_file.scores[i] == 1 / 62 + 1 / 63
    assert from_score.scores[i] == 1 / 62 + 1 / 62


def test_pyserini_min_max_normalization(shared_data):
    folder = shared_data / "pyserini_fusion_fixtures"
    run = _FileRun(folder / "simple_trec_run_fusion_1.txt")
    fused = fuse([run], method="sum", norm="min-max", degenerate=1.0, dtype="float64")
    want = [line.split() for line in open(folder / "simple_trec_run_normalize_verify.txt")]
    assert [float(w[4]) for w in want] == fused.scores.tolist()
    assert [w[2] for w in want] == fused.doc_ids.tolist()


# --------------------------------------------------------------------------- hand cases

# Two runs over docs a..e (doc ids sort a < b < ... so ties go to the later letter).
R1 = {"q": {"a": 5.0, "b": 4.0, "c": 3.0}}
R2 = {"q": {"c": 0.9, "d": 0.8, "a": 0.7, "e": 0.1}}


def test_rrf_one_based_and_zero_based():
    one = fuse([R1, R2], method="rrf", dtype="float64", rrf_k=60)
    zero = fuse([R1, R2], method="rrf", dtype="float64", rrf_k=60, zero_based=True)
    # a: rank 1 in R1, 3 in R2 -> 1/61 + 1/63 (canonical); 1/60 + 1/62 (rank-rank)
    assert one["q"]["a"] == 1 / 61 + 1 / 63
    assert zero["q"]["a"] == 1 / 60 + 1 / 62
    assert one["q"]["e"] == 1 / 64 and zero["q"]["e"] == 1 / 63
    with pytest.raises(ValueError, match="k must be >= 0"):
        fuse([R1, R2], method="rrf", rrf_k=-1)


def test_copeland_hand_computed():
    # Copeland: +1 per pairwise majority win, -1 per loss, 0 for a 1-1 split; a run
    # ranks its retrieved documents above the ones it misses. By hand:
    # a: beats b (2-0), e (2-0); ties c, d (1-1)              -> +2
    # b: loses to a; ties c, d, e (1-1 each)                  -> -1
    # c: beats d, e; ties a, b                                -> +2
    # d: beats e (R2 only; R1 has neither); loses c; ties a, b ->  0
    # e: loses a, c, d; ties b                                 -> -3
    ranks = {"a": (1, 3), "b": (2, None), "c": (3, 1), "d": (None, 2), "e": (None, 4)}

    def better(x, y, m):
        rx, ry = ranks[x][m], ranks[y][m]
        rx = math.inf if rx is None else rx
        ry = math.inf if ry is None else ry
        return rx < ry

    want = {}
    for x in ranks:
        score = 0
        for y in ranks:
            if x != y:
                wx = sum(better(x, y, m) for m in (0, 1))
                wy = sum(better(y, x, m) for m in (0, 1))
                score += (wx > wy) - (wx < wy)
        want[x] = float(score)
    assert want == {"a": 2.0, "b": -1.0, "c": 2.0, "d": 0.0, "e": -3.0}
    got = fuse([R1, R2], method="copeland")
    assert got["q"] == want
    assert list(got["q"]) == ["c", "a", "d", "b", "e"]  # a/c tie -> doc id descending


def test_median_rank_hand_computed():
    # ranks (missing = list length + 1: 4 in R1, 5 in R2): a (1,3) -> 2; b (2,5) -> 3.5;
    # c (3,1) -> 2; d (4,2) -> 3; e (4,4) -> 4. Fused score = -median.
    got = fuse([R1, R2], method="median_rank")
    assert got["q"] == {"c": -2.0, "a": -2.0, "d": -3.0, "b": -3.5, "e": -4.0}


def test_dbsf_hand_computed():
    # R1: mean 4, population std sqrt(2/3); lower = 4 - 3σ, range 6σ.
    s1 = math.sqrt(2 / 3)
    n1 = {d: min(max((v - (4 - 3 * s1)) / (6 * s1), 0), 1) for d, v in R1["q"].items()}
    v2 = R2["q"]
    m2 = sum(v2.values()) / 4
    s2 = math.sqrt(sum((x - m2) ** 2 for x in v2.values()) / 4)
    n2 = {d: min(max((v - (m2 - 3 * s2)) / (6 * s2), 0), 1) for d, v in v2.items()}
    want = {d: n1.get(d, 0) + n2.get(d, 0) for d in "abcde"}
    got = fuse([R1, R2], method="dbsf", dtype="float64")
    for d in "abcde":
        assert got["q"][d] == pytest.approx(want[d], rel=1e-12)


def test_ties_are_broken_by_doc_id_descending():
    r1 = {"q": {"x": 1.0, "y": 1.0, "z": 1.0}}
    r2 = {"q": {"w": 2.0}}
    got = fuse([r1, r2], method="sum", norm=None)
    assert list(got["q"]) == ["w", "z", "y", "x"]
    # within a tied run, rank by doc id descending: z=1, y=2, x=3
    rrf = fuse([r1, r2], method="rrf", dtype="float64")
    assert rrf["q"]["z"] == 1 / 61 and rrf["q"]["x"] == 1 / 63
    # rank_from="file" keeps the dict's order instead: x=1, y=2, z=3
    rrf_file = fuse([r1, r2], method="rrf", rank_from="file", dtype="float64")
    assert rrf_file["q"]["x"] == 1 / 61 and rrf_file["q"]["z"] == 1 / 63


def test_different_query_sets_fuse_per_query():
    r1 = {"q1": {"a": 1.0}, "q2": {"b": 1.0}}
    r2 = {"q2": {"c": 3.0, "b": 1.0}, "q3": {"d": 2.0}}
    got = fuse([r1, r2], method="bordafuse")
    assert set(got) == {"q1", "q2", "q3"}
    # q1 only in r1 -> r2 gives no Borda points at all (it does not have the query)
    assert got["q1"] == {"a": 1.0}
    # q2: candidates {b, c}: r1 b=2, c=(2-1+1)/2=1; r2 c=2, b=1 -> b 3, c 3
    assert got["q2"] == {"c": 3.0, "b": 3.0}


# --------------------------------------------------------------------------- bad input


def test_bad_input_errors():
    with pytest.raises(ValueError, match="empty"):
        fuse([R1, {}], method="rrf")
    with pytest.raises(ValueError, match="non-finite"):
        fuse([R1, {"q": {"a": float("nan")}}], method="rrf")
    with pytest.raises(ValueError, match="non-finite"):
        fuse([R1, {"q": {"a": float("inf")}}], method="sum")
    with pytest.raises(ValueError, match="method="):
        fuse([R1, R2], method="nope")
    with pytest.raises(ValueError, match="norm="):
        fuse([R1, R2], norm="nope")
    with pytest.raises(ValueError, match="weights"):
        fuse([R1, R2], method="wsum")
    with pytest.raises(ValueError, match="shape"):
        fuse([R1, R2], method="wsum", weights=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="rank_from"):
        fuse([R1, R2], rank_from="nope")
    with pytest.raises(TypeError, match="runs\\[1\\]"):
        fuse([R1, 3])
    with pytest.raises(ValueError, match="twice"):
        runs_to_arrays([R1, _dup_run()])
    with pytest.raises(ValueError, match="shape"):
        fuse_arrays(jnp.zeros((2, 3), jnp.int32), jnp.zeros((2, 4)))
    with pytest.raises(TypeError, match="integer"):
        fuse_arrays(jnp.zeros((2, 3)), jnp.zeros((2, 3)))


def test_bad_input_in_trec_files_and_arrays(tmp_path):
    """The issue's bad-input list through the file path and the array API."""
    good = tmp_path / "good.trec"
    good.write_text("q1 Q0 a 1 2.0 r\nq1 Q0 b 2 1.0 r\n")
    empty = tmp_path / "empty.trec"
    empty.write_text("")
    with pytest.raises(ValueError, match="empty"):
        fuse([good, empty])
    dup = tmp_path / "dup.trec"
    dup.write_text("q1 Q0 a 1 2.0 r\nq1 Q0 a 2 1.0 r\n")
    with pytest.raises(ValueError, match="twice"):
        fuse([good, dup])
    nan = tmp_path / "nan.trec"
    nan.write_text("q1 Q0 a 1 nan r\n")
    with pytest.raises(ValueError, match=r"(?i)nan|finite"):
        fuse([good, nan])
    inf = tmp_path / "inf.trec"
    inf.write_text("q1 Q0 a 1 -inf r\n")
    with pytest.raises(ValueError, match=r"(?i)inf|finite"):
        fuse([good, inf])
    with pytest.raises(ValueError, match="k must be >= 0"):
        fuse_arrays(jnp.zeros((1, 2, 2), jnp.int32), jnp.ones((1, 2, 2)), rrf_k=-0.5)
    with pytest.raises(ValueError, match="k must be >= 0"):
        fuse([good, good], method="rrf", k_rrf=-60)
    # rrf k = 0 is allowed: 1/r
    got = fuse([{"q": {"a": 1.0}}, {"q": {"a": 2.0}}], method="rrf", rrf_k=0, dtype="float64")
    assert got == {"q": {"a": 2.0}}  # 1/1 + 1/1
    # different query sets: the union of queries, each fused over the runs that have it
    other = tmp_path / "other.trec"
    other.write_text("q2 Q0 c 1 3.0 r\n")
    fused = fuse([good, other], method="sum", norm=None, dtype="float64").to_dict()
    assert fused == {"q1": {"a": 2.0, "b": 1.0}, "q2": {"c": 3.0}}


def _dup_run():
    class Dup:
        name = "dup"
        query_ids = np.array(["q"])
        offsets = np.array([0, 2])
        doc_ids = np.array(["a", "a"])
        scores = np.array([1.0, 2.0])
        ranks = None

    return Dup()


# --------------------------------------------------------------------------- arrays


def _toy_arrays(seed=0, Q=3, M=3, K=6, V=12):
    rng = np.random.default_rng(seed)
    docs = np.stack(
        [np.stack([rng.permutation(V)[:K] for _ in range(M)]) for _ in range(Q)]
    ).astype(np.int32)
    scores = rng.normal(size=(Q, M, K)).astype(np.float32)
    where = rng.random((Q, M, K)) < 0.8
    where[:, :, 0] = True
    return docs, scores, where


ARRAY_METHODS = [m for m in METHODS if m not in ("interpolation",)]
# Without jit (op by op) is slow; one method per code path: sums, order statistics,
# ranks, Borda, Condorcet/Copeland, median rank, tables, sliding windows.
EAGER_CHECKED = {
    "mnz",
    "med",
    "rrf",
    "bordafuse",
    "condorcet",
    "copeland",
    "median_rank",
    "probfuse",
    "slidefuse",
    "segfuse",
    "bayesfuse",
}
_TRAINED_PARAMS = {
    "posfuse": {"probs": np.linspace(0.5, 0.1, 6)[None].repeat(3, 0)},
    "probfuse": {"probs": np.array([[0.4, 0.2], [0.3, 0.1], [0.5, 0.2]])},
    "segfuse": {"probs": np.full((3, 10), 0.1)},
    "slidefuse": {"probs": np.linspace(0.5, 0.1, 6)[None].repeat(3, 0), "w": 1},
    "mapfuse": {"map_scores": np.array([0.3, 0.2, 0.1])},
    "bayesfuse": {"log_odds": np.linspace(1.0, -1.0, 6)[None].repeat(3, 0)},
    "gmnz": {"gamma": 0.5},
    "rbc": {"phi": 0.8},
    "wsum": {"weights": np.array([0.5, 0.3, 0.2])},
    "wmnz": {"weights": np.array([0.5, 0.3, 0.2])},
    "mixed": {"weights": np.array([0.5, 0.3, 0.2])},
    "w_bordafuse": {"weights": np.array([0.5, 0.3, 0.2])},
    "w_condorcet": {"weights": np.array([0.5, 0.3, 0.2])},
}


@pytest.mark.parametrize("method", ARRAY_METHODS)
def test_every_method_jit_equals_eager_and_is_padding_invariant(method):
    docs, scores, where = _toy_arrays()
    params = dict(_TRAINED_PARAMS.get(method, {}))
    out = fuse_arrays(docs, scores, where, method=method, k=8, **params)
    if method in EAGER_CHECKED:
        with jax.disable_jit():
            eager = fuse_arrays(docs[:1], scores[:1], where[:1], method=method, k=8, **params)
        np.testing.assert_array_equal(out[0][:1], eager[0])
        np.testing.assert_allclose(out[1][:1], eager[1], rtol=1e-5, atol=1e-6)
    # padding K from 6 to 9 with masked garbage changes nothing
    pad = ((0, 0), (0, 0), (0, 3))
    docs_p = np.pad(docs, pad, constant_values=11)
    scores_p = np.pad(scores, pad, constant_values=99.0)
    where_p = np.pad(where, pad, constant_values=False)
    padded = fuse_arrays(docs_p, scores_p, where_p, method=method, k=8, **params)
    np.testing.assert_array_equal(out[0], padded[0])
    np.testing.assert_allclose(out[1], padded[1], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out[2], padded[2])


NATIVE_CASES = [
    ("sum", "min-max", {}),
    ("average", "zmuv", {}),
    ("wsum", "min-max-inverted", {"weights": np.array([0.5, 0.3, 0.2])}),
    ("mnz", "min-max", {}),
    ("anz", "max", {}),
    ("gmnz", "sum", {"gamma": 0.5}),
    ("mixed", "sigmoid", {"weights": np.array([0.5, 0.3, 0.2])}),
    ("rrf", "min-max", {"weights": np.array([1.0, 2.0, 0.5])}),
    ("isr", "quantile", {}),
    ("log_isr", "min-max", {}),
    ("logn_isr", "min-max", {}),
    ("rbc", "rank", {"phi": 0.8}),
    ("bordafuse", "min-max", {}),
    ("dbsf", "none", {}),
]


@pytest.mark.parametrize("presorted", [False, True])
def test_native_and_pure_jax_paths_agree(presorted):
    """On CPU the additive methods run as per-entry terms + native union + native top-k
    (ffi/fusion.cc); the pure-JAX candidate matrix is the reference (GPU/TPU path)."""
    require_native()
    docs, scores, where = _toy_arrays(seed=3, Q=4)
    where[1, 2, :] = False  # a run without this query
    if presorted:
        order = np.argsort(-np.where(where, scores, -np.inf), axis=-1, kind="stable")
        docs, scores = (np.take_along_axis(a, order, -1) for a in (docs, scores))
        where = np.take_along_axis(where, order, -1)
    for i, (method, norm, params) in enumerate(NATIVE_CASES):
        if i % 2 != presorted:  # each case once: half presorted, half ranked in-graph
            continue
        # k = 4 < candidates (partial selection), k = 20 >= candidates (full sort)
        kw = dict(method=method, norm=norm, k=(4, 20)[i // 2 % 2], presorted=presorted)
        kw.update(params)
        a = fuse_arrays(docs, scores, where, impl="jax", **kw)
        if i < 2:  # once per parametrization under an outer jit
            b = jax.jit(lambda d, s, w, kw=kw: fuse_arrays(d, s, w, impl="native", **kw))(
                docs, scores, where
            )
        else:
            b = fuse_arrays(docs, scores, where, impl="native", **kw)
        np.testing.assert_array_equal(a[2], b[2], err_msg=f"{method} {norm}")
        np.testing.assert_allclose(a[1], b[1], rtol=1e-6, atol=1e-7, err_msg=method)
        # same documents in the same order (no near-ties in these random scores)
        np.testing.assert_array_equal(a[0], b[0], err_msg=f"{method} {norm}")


def test_native_top_k_breaks_ties_by_doc_descending_in_float64():
    require_native()
    docs = np.array([[[3, 7, 5], [9, 7, 1]]], np.int32)
    scores = np.array([[[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]])
    with jax.enable_x64(True):
        for impl in ("native", "jax"):
            d, s, w = fuse_arrays(docs, scores, method="sum", norm=None, k=6, impl=impl)
            # sums: 7 -> 2.0, others 1.0; ties by doc index descending; one empty place
            assert d.tolist() == [[7, 9, 5, 3, 1, -1]], impl
            assert s.dtype == jnp.float64 and s.tolist() == [[2.0, 1, 1, 1, 1, 0]]
            assert w.tolist() == [[True] * 5 + [False]]


def test_vocabulary_equals_numpy_unique():
    """The native hash-and-sort vocabulary of runs_to_arrays is np.unique's (UTF-8 byte
    order = code-point order), also for non-ASCII ids and prefixes longer than 8 bytes."""
    from jaxrank.fusion._host import _native_vocab, _vocabulary

    require_native()
    assert _native_vocab() is not None
    rng = np.random.default_rng(0)
    words = ["a", "b", "ab", "", "é", "z", "Z", "doc10", "doc9", "日本", "clueweb09-en0001"]
    words += ["clueweb09-en0000", "clueweb09-en00001", "a\x01"]
    arrays = [np.array(rng.choice(words, 40).tolist(), dtype=object) for _ in range(3)]
    vocab, inverse = _vocabulary(arrays)
    want_v, want_i = np.unique(np.concatenate(arrays).astype(str), return_inverse=True)
    assert vocab.tolist() == want_v.tolist()
    np.testing.assert_array_equal(inverse, want_i)


@pytest.mark.parametrize("norm", [n for n in NORMALIZATIONS])
def test_every_normalization_runs_and_masks(norm):
    docs, scores, where = _toy_arrays(1)
    out = fuse_arrays(docs, scores, where, method="sum", norm=norm, k=5)
    assert np.isfinite(np.asarray(out[1])).all()
    s = jnp.array([4.0, 2.0, 2.0, 0.0, 7.0])
    w = jnp.array([True, True, True, True, False])
    n = normalize(s, w, method=norm)
    assert float(n[-1]) == 0.0


def test_normalization_formulas_by_hand():
    s = jnp.array([4.0, 2.0, 2.0, 0.0])
    # quantile: mid-rank CDF; 0 -> 0.5/4, 2 -> (1 + 1)/4, 4 -> (3 + 0.5)/4
    assert normalize(s, method="quantile").tolist() == [0.875, 0.5, 0.5, 0.125]
    # sum: (s - min) / (sum - n·min) = s / 8
    assert normalize(s, method="sum").tolist() == [0.5, 0.25, 0.25, 0.0]
    # rank: 1 - (r-1)/n with ranks 1,2,3,4 (ties by position)
    assert normalize(s, method="rank").tolist() == [1.0, 0.75, 0.5, 0.25]
    assert normalize(jnp.array([0.0]), method="sigmoid").tolist() == [0.5]
    assert normalize(jnp.array([3.0, 3.0]), method="min-max").tolist() == [0.0, 0.0]
    assert normalize(jnp.array([3.0, 3.0]), method="min-max", degenerate=1.0).tolist() == [
        1.0,
        1.0,
    ]


@given(st.integers(0, 10_000))
def test_run_order_permutation_invariance_for_symmetric_methods(seed):
    docs, scores, where = _toy_arrays(seed)
    perm = np.random.default_rng(seed).permutation(3)
    for method in ("sum", "mnz", "rrf", "bordafuse", "copeland"):
        a = fuse_arrays(docs, scores, where, method=method, k=10)
        b = fuse_arrays(docs[:, perm], scores[:, perm], where[:, perm], method=method, k=10)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_allclose(a[1], b[1], rtol=1e-6)


@given(st.integers(0, 10_000))
def test_entry_order_within_a_run_does_not_matter(seed):
    docs, scores, where = _toy_arrays(seed)
    perm = np.random.default_rng(seed + 1).permutation(docs.shape[-1])
    for method in ("rrf", "isr", "median_rank", "condorcet"):
        a = fuse_arrays(docs, scores, where, method=method, k=10)
        b = fuse_arrays(docs[..., perm], scores[..., perm], where[..., perm], method=method, k=10)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_allclose(a[1], b[1], rtol=1e-6)


def test_explanations_add_up_to_fused_scores():
    fused, expl = fuse([R1, R2], method="rrf", dtype="float64", explain=True)
    for d, score in fused["q"].items():
        total = sum(c["contribution"] for c in expl["q"][d].values())
        assert total == pytest.approx(score, rel=1e-12)
    assert expl["q"]["e"] == {
        "run1": {"score": 0.1, "norm": 0.0, "rank": 4.0, "contribution": 1 / 64}
    }
    fused, expl = fuse([R1, R2], method="mnz", dtype="float64", explain=True)
    for d, score in fused["q"].items():
        assert sum(c["contribution"] for c in expl["q"][d].values()) == pytest.approx(score)


def test_fuse_reads_trec_files_and_returns_a_run(shared_data, tmp_path):
    folder = shared_data / "runs_generated" / "scifact"
    fused = fuse([folder / BM25, folder / LSI], method="rrf", k=100)
    assert isinstance(fused, Run)
    assert fused.num_queries == 300
    via_dicts = fuse(
        [read_run(folder / BM25).to_dict(), read_run(folder / LSI).to_dict()], method="rrf", k=100
    )
    first = fused.query_ids[0]
    s = slice(fused.offsets[0], fused.offsets[1])
    assert fused.doc_ids[s].tolist() == list(via_dicts[first])


# --------------------------------------------------------------------------- optimization


def _toy_learning_problem():
    """Run "good" ranks the relevant doc of every query first, run "bad" last."""
    rng = np.random.default_rng(0)
    good, bad, qrels = {}, {}, {}
    for q in range(8):
        docs = [f"q{q}d{i}" for i in range(6)]
        rel = docs[rng.integers(6)]
        others = [d for d in docs if d != rel]
        good[f"q{q}"] = {d: float(6 - i) for i, d in enumerate([rel, *others])}
        bad[f"q{q}"] = {d: float(6 - i) for i, d in enumerate([*others, rel])}
        qrels[f"q{q}"] = {rel: 1}
    return [bad, good], qrels


def test_grid_search_finds_the_good_run():
    runs, qrels = _toy_learning_problem()
    best = grid_search(runs, qrels, method="wsum")
    assert best["ndcg_cut_10"] == 1.0
    assert best["weights"][1] > best["weights"][0]
    best = grid_search(runs, qrels, method="rrf", rrf_k_grid=(10, 60))
    assert best["ndcg_cut_10"] == 1.0 and best["rrf_k"] in (10, 60)
    assert best["weights"][1] > best["weights"][0]


@pytest.mark.parametrize("method", ["wsum", "rrf"])
def test_learn_weights_moves_weight_to_the_good_run(method):
    runs, qrels = _toy_learning_problem()
    out = learn_weights(runs, qrels, method=method, steps=30, learning_rate=0.1)
    assert out["objective"][-1] > out["objective"][0]
    assert out["weights"][1] > out["weights"][0]
    assert sum(out["weights"]) == pytest.approx(2.0, rel=1e-5)
    if method == "rrf":
        assert out["rrf_k"] > 0


def test_approx_ndcg_approaches_exact_ndcg_at_low_temperature():
    # one query, scores 3 > 2 > 1, gains 0, 1, 0: exact NDCG = (1/log2 3) / 1
    fused = jnp.array([[3.0, 2.0, 1.0]])
    labels = jnp.array([[0.0, 1.0, 0.0]])
    valid = jnp.ones((1, 3), bool)
    got = approx_ndcg(fused, labels, valid, jnp.array([1.0]), temperature=1e-3)
    assert float(got) == pytest.approx(1 / math.log2(3), rel=1e-4)
    grad = jax.grad(lambda f: approx_ndcg(f, labels, valid, jnp.array([1.0])))(fused)
    assert float(grad[0, 1]) > 0  # raising the relevant doc's score helps


# --------------------------------------------------------------------------- CLI


def test_cli_fuse_writes_a_trec_run(shared_data, tmp_path, capsys):
    from jaxrank.cli import main

    folder = shared_data / "pyserini_fusion_fixtures"
    out = tmp_path / "fused.trec"
    runs = [str(folder / f"simple_trec_run_fusion_{i}.txt") for i in (1, 2)]
    rc = main(
        [
            "fuse",
            *runs,
            "--method",
            "rrf",
            "--rank-from",
            "file",
            "--float64",
            "--tag",
            "test",
            "-o",
            str(out),
        ]
    )
    assert rc == 0
    want = (folder / "simple_trec_run_rrf_verify.txt").read_text().split()
    assert out.read_text().split() == want  # Pyserini's expected RRF file, token by token
    rc = main(["fuse", runs[0], "--method", "rrf"])
    assert rc == 2 and "at least two runs" in capsys.readouterr().err
    rc = main(["fuse", *runs, "--method", "posfuse"])
    assert rc == 2 and "--qrels" in capsys.readouterr().err

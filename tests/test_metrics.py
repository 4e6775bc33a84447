"""Tests of jaxrank.metrics.

Sources of expected numbers: hand calculations (stated in comments), the rax 0.4.0
reference file ``reference/rax_metrics.npz`` (see its README), pytrec_eval (trec_eval
9.0.8) run side by side, and brute-force enumeration of all tie-breaking orders.
"""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from jaxrank import metrics as M


def run(fn, *args, **kwargs):
    """Runs ``fn`` eagerly and under ``jax.jit`` (kwargs static); checks they agree."""
    eager = np.asarray(fn(*args, **kwargs))
    jitted = np.asarray(jax.jit(lambda *a: fn(*a, **kwargs))(*args))
    np.testing.assert_allclose(eager, jitted, rtol=1e-6, atol=1e-6, equal_nan=True)
    return eager


# ------------------------------------------------------------------ hand calculations

# One list in stable order (ranks 1..5): relevant items (label >= 1) at ranks 2 and 4.
S5 = np.array([5.0, 4.0, 3.0, 2.0, 1.0], np.float32)
Y5 = np.array([0.0, 2.0, 0.0, 1.0, 0.0], np.float32)
L3, L5 = math.log2(3), math.log2(5)

HAND = [
    # (function, kwargs, expected, hand calculation)
    (M.precision, {"k": 2}, 0.5, "1 relevant in top 2"),
    (M.precision, {"k": 10}, 0.2, "trec_eval P_10 divides by 10: 2/10"),
    (M.precision, {"k": 10, "denominator": "retrieved"}, 0.4, "rax: 2/min(10, 5)"),
    (M.recall, {"k": 2}, 0.5, "1 of R=2"),
    (M.r_precision, {}, 0.5, "P@R = P@2"),
    (M.success, {"k": 1}, 0.0, "rank 1 is not relevant"),
    (M.success, {"k": 2}, 1.0, "rank 2 is relevant"),
    (M.f_measure, {}, 2 * 0.4 * 1.0 / 1.4, "P=2/5, R=1"),
    (M.average_precision, {}, (1 / 2 + 2 / 4) / 2, "precisions 1/2 and 2/4 over R=2"),
    (M.average_precision, {"k": 3}, (1 / 2) / 2, "only rank 2 within k, divided by R"),
    (M.reciprocal_rank, {}, 0.5, "first relevant at rank 2"),
    (M.reciprocal_rank, {"k": 1}, 0.0, "none within k=1"),
    (M.dcg, {}, 2 / L3 + 1 / L5, "gains 2, 1 at ranks 2, 4"),
    (M.ndcg, {}, (2 / L3 + 1 / L5) / (2 + 1 / L3), "ideal: 2 at rank 1, 1 at rank 2"),
    (M.ndcg, {"gain": "exp2"}, (3 / L3 + 1 / L5) / (3 + 1 / L3), "gains 2^2-1=3, 2^1-1=1"),
    (M.ndcg, {"k": 2}, (2 / L3) / (2 + 1 / L3), "cut at 2"),
    (M.bpref, {}, ((1 - 1 / 2) + (1 - 2 / 2)) / 2, "N=3, min(R,N)=2; 1 and 2 nonrel above"),
    (M.rbp, {"p": 0.5}, 0.5 * (0.5 + 0.5**3), "(1-p)(p^1 + p^3)"),
    (M.err, {"max_label": 2}, (3 / 4) / 2 + (1 / 4) * (1 / 4) / 4, "R=(3/4 at 2, 1/4 at 4)"),
    (M.ordered_pair_accuracy, {}, 4 / 7, "7 pairs with y_i > y_j, 4 ranked right"),
    (M.eleven_point_precision, {}, 0.5, "precision 1/2 at recall 1/2 and 1"),
]


@pytest.mark.parametrize(("fn", "kwargs", "expected", "why"), HAND)
def test_hand_values(fn, kwargs, expected, why):
    got = run(fn, S5, Y5, **kwargs)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-6, err_msg=why)


def test_hand_ties_average():
    # Three tied items, the relevant one uniformly at rank 1, 2 or 3.
    s, y = np.ones(3, np.float32), np.array([1.0, 0.0, 0.0], np.float32)
    rr = (1 + 1 / 2 + 1 / 3) / 3
    np.testing.assert_allclose(run(M.reciprocal_rank, s, y, ties="average"), rr, rtol=1e-6)
    np.testing.assert_allclose(run(M.average_precision, s, y, ties="average"), rr, rtol=1e-6)
    np.testing.assert_allclose(run(M.precision, s, y, k=1, ties="average"), 1 / 3, rtol=1e-6)
    ndcg = (1 + 1 / L3 + 1 / 2) / 3
    np.testing.assert_allclose(run(M.ndcg, s, y, ties="average"), ndcg, rtol=1e-6)
    # ties="first": index order puts the relevant item first.
    np.testing.assert_allclose(run(M.reciprocal_rank, s, y), 1.0)


def test_ranks_stable_order_and_masks():
    s = np.array([0.5, 2.0, 0.5, 1.0, 3.0], np.float32)
    w = np.array([True, True, True, True, False])
    # hand: valid order 2.0 (i1), 1.0 (i3), 0.5 (i0), 0.5 (i2); masked i4 last.
    for method in ("count", "sort"):
        np.testing.assert_array_equal(run(M.ranks, s, w, method=method), [3, 1, 4, 2, 5])


# ------------------------------------------------------------------ rax parity

RAX_FNS = {
    "mrr": lambda s, y, w, wt, k: M.reciprocal_rank(s, y, w, k=k),
    "recall": lambda s, y, w, wt, k: M.recall(s, y, w, k=k),
    # rax divides by the retrieved count min(k, #valid).
    "precision": lambda s, y, w, wt, k: M.precision(s, y, w, k=k, denominator="retrieved"),
    "ap": lambda s, y, w, wt, k: M.average_precision(s, y, w, k=k),
    "dcg": lambda s, y, w, wt, k: M.dcg(s, y, w, k=k, gain="exp2", weights=wt),
    "ndcg": lambda s, y, w, wt, k: M.ndcg(s, y, w, k=k, gain="exp2", weights=wt),
    "opa": lambda s, y, w, wt, k: M.ordered_pair_accuracy(s, y, w),
}
RAX_CASES = [
    (name, top, variant)
    for name in RAX_FNS
    for top in (["all"] if name == "opa" else ["all", "1", "5", "10"])
    for variant in (
        ["plain", "mask", "weights", "mask_weights"] if "dcg" in name else ["plain", "mask"]
    )
]


@pytest.fixture(scope="module")
def rax_ref(shared_data):
    with np.load(shared_data / "reference" / "rax_metrics.npz") as data:
        return dict(data)


@pytest.mark.parametrize(("name", "top", "variant"), RAX_CASES)
def test_rax_parity(rax_ref, name, top, variant):
    d = rax_ref
    k = None if top == "all" else int(top)
    where = d["where"] if "mask" in variant else None
    weights = d["weights"] if "weights" in variant else None
    fn = RAX_FNS[name]
    got = run(lambda s, y, w, wt: fn(s, y, w, wt, k), d["scores"], d["labels"], where, weights)
    key = f"{name}__top{top}__{variant}"
    np.testing.assert_allclose(got, d[key + "__none"], atol=1e-5, rtol=1e-5)
    # rax averages over lists with at least one valid item.
    lists = np.any(d["where"], -1) if where is not None else np.ones(8, bool)
    np.testing.assert_allclose(M.mean(got, lists), d[key + "__mean"], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("variant", ["plain", "mask"])
def test_rax_ranks(rax_ref, variant):
    where = rax_ref["where"] if variant == "mask" else None
    for method in ("count", "sort"):
        got = run(M.ranks, rax_ref["scores"], where, method=method)
        np.testing.assert_array_equal(got, rax_ref[f"ranks__{variant}"])


def test_rax_conventions(rax_ref):
    d = rax_ref
    # gain 2^3 - 1 at rank 1 (rax conv_gain_dcg_label3_rank1 = 7).
    assert run(M.dcg, [1.0], [3.0], gain="exp2") == d["conv_gain_dcg_label3_rank1"]
    # label 0.5 is not relevant: first relevant at rank 2 (conv_binarize_mrr_label0p5).
    got = run(M.reciprocal_rank, [2.0, 1.0], [0.5, 1.0])
    assert got == d["conv_binarize_mrr_label0p5"]
    # No relevant item scores 0 under empty="zero" (conv_norelevant_*).
    assert run(M.ndcg, [2.0, 1.0], [0.0, 0.0]) == d["conv_norelevant_ndcg"]
    assert run(M.reciprocal_rank, [2.0, 1.0], [0.0, 0.0]) == d["conv_norelevant_mrr"]
    # Ties by index: three tied scores, relevant item last / first give 1/log2(4) and 1
    # (the file records only the values 0.5 / 1.0; three items reproduce both).
    assert run(M.ndcg, [1.0, 1.0, 1.0], [0.0, 0.0, 1.0]) == d["conv_ties_ndcg_relevant_last"]
    assert run(M.ndcg, [1.0, 1.0, 1.0], [1.0, 0.0, 0.0]) == d["conv_ties_ndcg_relevant_first"]


def test_rax_differences_documented(rax_ref):
    d = rax_ref
    # 1. rax treats score -inf as "not retrieved" (conv_neginf_not_retrieved_recall = 0.5);
    #    jaxrank uses masks, never sentinels: -inf is ranked last, and the `retrieved`
    #    mask marks a relevant item that is not retrieved.
    s, y = np.array([1.0, -np.inf], np.float32), np.array([1.0, 1.0], np.float32)
    assert run(M.recall, s, y) == 1.0
    got = run(M.recall, s, y, retrieved=np.isfinite(s))
    assert got == d["conv_neginf_not_retrieved_recall"]
    # (masking it with `where` instead drops it from the list: recall 1/1)
    assert run(M.recall, s, y, np.isfinite(s)) == 1.0
    # 2. rax counts tied pairs as wrongly ordered (conv_opa_tied_scores = 0); jaxrank
    #    orders them by index (ties="first") or counts them 1/2 (ties="average").
    s, y = np.array([1.0, 1.0], np.float32), np.array([1.0, 0.0], np.float32)
    assert d["conv_opa_tied_scores"] == 0.0
    assert run(M.ordered_pair_accuracy, s, y) == 1.0
    assert run(M.ordered_pair_accuracy, s, y, ties="average") == 0.5
    # 3. precision@k: trec_eval (jaxrank default) divides by k, rax by min(k, #valid).
    #    They differ exactly on lists with fewer than k valid items (rows 2,3,4,6,7 @10).
    got = run(M.precision, d["scores"], d["labels"], d["where"], k=10)
    ref = d["precision__top10__mask__none"]
    nvalid = d["where"].sum(-1)
    np.testing.assert_allclose(got, ref * np.minimum(nvalid, 10) / 10, atol=1e-6)
    assert np.any(np.abs(got - ref) > 1e-3)


# ------------------------------------------------------------------ trec_eval parity


def _trec_case(seed: int, queries: int = 12, n: int = 14):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 6, size=(queries, n)).astype(np.float32)  # many ties
    labels = rng.integers(0, 4, size=(queries, n)).astype(np.float32) * (
        rng.random((queries, n)) < 0.5
    )
    where = rng.random((queries, n)) < 0.8
    where[:, 0] = True
    judged = rng.random((queries, n)) < 0.8
    judged[labels > 0] = True
    # Some judged items are missing from the run (they count in R, N and the ideal DCG).
    retrieved = (rng.random((queries, n)) < 0.85) | ~judged
    retrieved[:, 0] = True
    return scores, labels, where, judged, retrieved


def _pytrec(scores, labels, where, judged, retrieved, measures):
    import pytrec_eval  # a missing peer fails the test (ImportError), it never skips

    qrels, runs = {}, {}
    n = scores.shape[1]
    for q in range(scores.shape[0]):
        # Doc ids decrease with the index, so trec_eval's tie order (doc id descending)
        # equals jaxrank's (index ascending).
        ids = [f"d{n - i:03d}" for i in range(n)]
        runs[f"q{q}"] = {
            ids[i]: float(scores[q, i]) for i in range(n) if where[q, i] and retrieved[q, i]
        }
        qrels[f"q{q}"] = {
            ids[i]: int(labels[q, i]) for i in range(n) if where[q, i] and judged[q, i]
        }
    out = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(runs)
    return out


TREC_MEASURES = [
    ("ndcg", lambda s, y, w, j, r: M.ndcg(s, y, w, retrieved=r)),
    ("ndcg_cut_5", lambda s, y, w, j, r: M.ndcg(s, y, w, retrieved=r, k=5)),
    ("ndcg_cut_10", lambda s, y, w, j, r: M.ndcg(s, y, w, retrieved=r, k=10)),
    ("map", lambda s, y, w, j, r: M.average_precision(s, y, w, retrieved=r)),
    ("map_cut_5", lambda s, y, w, j, r: M.average_precision(s, y, w, retrieved=r, k=5)),
    ("P_5", lambda s, y, w, j, r: M.precision(s, y, w, retrieved=r, k=5)),
    (
        "P_20",
        lambda s, y, w, j, r: M.precision(s, y, w, retrieved=r, k=20),
    ),  # longer than the lists
    ("recall_5", lambda s, y, w, j, r: M.recall(s, y, w, retrieved=r, k=5)),
    ("Rprec", lambda s, y, w, j, r: M.r_precision(s, y, w, retrieved=r)),
    ("recip_rank", lambda s, y, w, j, r: M.reciprocal_rank(s, y, w, retrieved=r)),
    ("bpref", lambda s, y, w, j, r: M.bpref(s, y, w, retrieved=r, judged=j)),
    ("success_1", lambda s, y, w, j, r: M.success(s, y, w, retrieved=r, k=1)),
    ("success_5", lambda s, y, w, j, r: M.success(s, y, w, retrieved=r, k=5)),
    ("set_F", lambda s, y, w, j, r: M.f_measure(s, y, w, retrieved=r)),
]


def test_trec_eval_parity():
    s, y, w, j, r = _trec_case(0)
    names = {"ndcg", "ndcg_cut", "map", "map_cut", "P", "recall", "Rprec", "recip_rank"}
    names |= {"bpref", "success", "set_F", "iprec_at_recall"}
    ref = _pytrec(s, y, w, j, r, names)
    for measure, fn in TREC_MEASURES:
        got = run(fn, s, y, w, j, r)
        want = [ref[f"q{q}"][measure] for q in range(s.shape[0])]
        np.testing.assert_allclose(got, want, atol=1e-5, err_msg=measure)
    got = run(M.interpolated_precision, s, y, w, retrieved=r)
    for i in range(11):
        want = [ref[f"q{q}"][f"iprec_at_recall_{i / 10:.2f}"] for q in range(s.shape[0])]
        np.testing.assert_allclose(got[:, i], want, atol=1e-5, err_msg=f"iprec {i}")


# ------------------------------------------------------------------ ties="average"

AVERAGE_FNS = [
    ("dcg", lambda s, y, w, t: M.dcg(s, y, w, ties=t)),
    ("dcg@3 exp2", lambda s, y, w, t: M.dcg(s, y, w, k=3, gain="exp2", ties=t)),
    ("ndcg", lambda s, y, w, t: M.ndcg(s, y, w, ties=t)),
    ("ndcg@2", lambda s, y, w, t: M.ndcg(s, y, w, k=2, ties=t)),
    ("precision@3", lambda s, y, w, t: M.precision(s, y, w, k=3, ties=t)),
    ("recall@2", lambda s, y, w, t: M.recall(s, y, w, k=2, ties=t)),
    ("r_precision", lambda s, y, w, t: M.r_precision(s, y, w, ties=t)),
    ("f_measure@3", lambda s, y, w, t: M.f_measure(s, y, w, k=3, ties=t)),
    ("success@2", lambda s, y, w, t: M.success(s, y, w, k=2, ties=t)),
    ("ap", lambda s, y, w, t: M.average_precision(s, y, w, ties=t)),
    ("ap@3", lambda s, y, w, t: M.average_precision(s, y, w, k=3, ties=t)),
    ("rr", lambda s, y, w, t: M.reciprocal_rank(s, y, w, ties=t)),
    ("rr@2", lambda s, y, w, t: M.reciprocal_rank(s, y, w, k=2, ties=t)),
    ("rbp@4", lambda s, y, w, t: M.rbp(s, y, w, p=0.7, k=4, ties=t)),
    ("opa", lambda s, y, w, t: M.ordered_pair_accuracy(s, y, w, ties=t)),
]
N_TIES = 6
PERMS = np.array(list(itertools.permutations(range(N_TIES))))  # [720, 6]


def brute_force_tie_average(fn, s, y, w):
    """Mean of the ties="first" metric over all 720 tie-breaking orders.

    Each permutation ``p`` breaks ties by ``p[i]``; every order consistent with the
    scores arises from the same number of permutations, so the mean is the exact
    expectation under uniformly random tie-breaking.
    """
    keys = np.stack([np.lexsort((perm, -s)) for perm in PERMS])  # positions in order
    strict = np.empty((len(PERMS), N_TIES), np.float32)
    rows = np.arange(len(PERMS))[:, None]
    strict[rows, keys] = np.arange(N_TIES, 0, -1, dtype=np.float32)  # distinct scores
    batch = [np.broadcast_to(a, strict.shape) for a in (y, w)]
    return float(np.mean(np.asarray(fn(strict, *batch, "first"))))


tie_lists = st.tuples(
    st.lists(st.integers(0, 2), min_size=N_TIES, max_size=N_TIES),
    st.lists(st.integers(0, 2), min_size=N_TIES, max_size=N_TIES),
    st.lists(st.booleans(), min_size=N_TIES, max_size=N_TIES),
)


@pytest.mark.parametrize(("name", "fn"), AVERAGE_FNS, ids=[n for n, _ in AVERAGE_FNS])
@given(case=tie_lists)
def test_ties_average_equals_enumeration(name, fn, case):
    s, y, w = (
        np.asarray(c, dt) for c, dt in zip(case, (np.float32, np.float32, bool), strict=True)
    )
    expected = brute_force_tie_average(fn, s, y, w)
    got = float(fn(s, y, w, "average"))
    assert got == pytest.approx(expected, abs=2e-6), name


def test_ties_average_fixed_cases():
    # One big tie group and mixed groups, checked for both rank methods.
    cases = [
        ([1, 1, 1, 1, 1, 1], [1, 0, 2, 0, 0, 1], [True] * 6),
        ([2, 1, 1, 0, 1, 2], [0, 1, 0, 2, 1, 1], [True, True, False, True, True, True]),
    ]
    for s, y, w in cases:
        s, y, w = np.float32(s), np.float32(y), np.array(w)
        for name, fn in AVERAGE_FNS:
            expected = brute_force_tie_average(fn, s, y, w)
            assert float(fn(s, y, w, "average")) == pytest.approx(expected, abs=2e-6), name


def test_ties_average_unsupported_metrics_raise():
    s, y = S5, Y5
    for fn in (M.err, M.bpref, M.interpolated_precision, M.eleven_point_precision):
        with pytest.raises(ValueError, match="ties='average'"):
            fn(s, y, ties="average")


# ------------------------------------------------------------------ padding invariance

ALL_FNS = [
    ("dcg", lambda s, y, w, j, t, m, r=None: M.dcg(s, y, w, retrieved=r, ties=t, method=m)),
    (
        "dcg@3",
        lambda s, y, w, j, t, m, r=None: M.dcg(
            s, y, w, retrieved=r, k=3, gain="exp2", ties=t, method=m
        ),
    ),
    (
        "ndcg@3",
        lambda s, y, w, j, t, m, r=None: M.ndcg(s, y, w, retrieved=r, k=3, ties=t, method=m),
    ),
    (
        "precision@3",
        lambda s, y, w, j, t, m, r=None: M.precision(s, y, w, retrieved=r, k=3, ties=t, method=m),
    ),
    (
        "precision@8 retrieved",
        lambda s, y, w, j, t, m, r=None: M.precision(
            s, y, w, k=8, denominator="retrieved", ties=t, method=m
        ),
    ),
    (
        "recall@2",
        lambda s, y, w, j, t, m, r=None: M.recall(s, y, w, retrieved=r, k=2, ties=t, method=m),
    ),
    (
        "r_precision",
        lambda s, y, w, j, t, m, r=None: M.r_precision(s, y, w, retrieved=r, ties=t, method=m),
    ),
    (
        "f_measure",
        lambda s, y, w, j, t, m, r=None: M.f_measure(s, y, w, retrieved=r, ties=t, method=m),
    ),
    (
        "success@1",
        lambda s, y, w, j, t, m, r=None: M.success(s, y, w, retrieved=r, k=1, ties=t, method=m),
    ),
    (
        "ap",
        lambda s, y, w, j, t, m, r=None: M.average_precision(
            s, y, w, retrieved=r, ties=t, method=m
        ),
    ),
    (
        "ap@2",
        lambda s, y, w, j, t, m, r=None: M.average_precision(
            s, y, w, retrieved=r, k=2, ties=t, method=m
        ),
    ),
    (
        "rr",
        lambda s, y, w, j, t, m, r=None: M.reciprocal_rank(s, y, w, retrieved=r, ties=t, method=m),
    ),
    (
        "rbp",
        lambda s, y, w, j, t, m, r=None: M.rbp(s, y, w, retrieved=r, judged=j, ties=t, method=m),
    ),
    (
        "rbp_res",
        lambda s, y, w, j, t, m, r=None: M.rbp_residual(
            s, y, w, retrieved=r, judged=j, ties=t, method=m
        ),
    ),
    ("opa", lambda s, y, w, j, t, m, r=None: M.ordered_pair_accuracy(s, y, w, retrieved=r, ties=t)),
    ("err", lambda s, y, w, j, t, m, r=None: M.err(s, y, w, retrieved=r, k=4, method=m)),
    ("bpref", lambda s, y, w, j, t, m, r=None: M.bpref(s, y, w, retrieved=r, judged=j, method=m)),
    (
        "iprec",
        lambda s, y, w, j, t, m, r=None: M.interpolated_precision(s, y, w, retrieved=r, method=m),
    ),
    (
        "11pt",
        lambda s, y, w, j, t, m, r=None: M.eleven_point_precision(s, y, w, retrieved=r, method=m),
    ),
]
FIRST_ONLY = {"err", "bpref", "iprec", "11pt"}
BASE, PADDED = 5, 9


@st.composite
def padded_lists(draw):
    score = st.sampled_from([-1.0, 0.0, 0.5, 1.0, 2.0, -np.inf])
    s = draw(st.lists(score, min_size=BASE, max_size=BASE))
    y = draw(st.lists(st.sampled_from([0.0, 1.0, 2.0, 3.0]), min_size=BASE, max_size=BASE))
    w = draw(st.lists(st.booleans(), min_size=BASE, max_size=BASE))
    j = draw(st.lists(st.booleans(), min_size=BASE, max_size=BASE))
    r = draw(st.lists(st.booleans(), min_size=BASE, max_size=BASE))
    extra = PADDED - BASE
    ps = draw(st.lists(score, min_size=extra, max_size=extra))
    py = draw(st.lists(st.sampled_from([0.0, 4.0]), min_size=extra, max_size=extra))
    # Positions of the original items in the padded list (their relative order is kept,
    # since ties are broken by index).
    slots = sorted(draw(st.permutations(range(PADDED)))[:BASE])
    return s, y, w, j, r, ps, py, slots


_JIT_CACHE: dict = {}


def _jitted(name, fn, ties, method):
    key = (name, ties, method)
    if key not in _JIT_CACHE:
        _JIT_CACHE[key] = jax.jit(lambda s, y, w, j, r: fn(s, y, w, j, ties, method, r))
    return _JIT_CACHE[key]


@given(case=padded_lists())
def test_padding_never_changes_a_metric(case):
    s, y, w, j, r, ps, py, slots = case
    base = [np.float32(s), np.float32(y), np.array(w), np.array(j), np.array(r)]
    extra = len(ps)
    pad = [np.float32(ps), np.float32(py), np.zeros(extra, bool), np.ones(extra, bool)]
    pad.append(np.ones(extra, bool))
    rest = [i for i in range(PADDED) if i not in slots]
    padded = []
    for b, p in zip(base, pad, strict=True):
        out = np.empty(PADDED, b.dtype)
        out[slots], out[rest] = b, p  # masked items with arbitrary scores and labels
        padded.append(out)
    for name, fn in ALL_FNS:
        for ties in ("first",) if name in FIRST_ONLY else ("first", "average"):
            for method in ("count", "sort"):
                f = _jitted(name, fn, ties, method)
                want, got = np.asarray(f(*base)), np.asarray(f(*padded))
                np.testing.assert_allclose(got, want, atol=1e-6, err_msg=f"{name} {ties} {method}")


def test_count_and_sort_methods_agree():
    rng = np.random.default_rng(3)
    s = rng.integers(0, 5, (20, 40)).astype(np.float32)
    y = rng.integers(0, 3, (20, 40)).astype(np.float32)
    w = rng.random((20, 40)) < 0.8
    j = rng.random((20, 40)) < 0.9
    for name, fn in ALL_FNS:
        for ties in ("first",) if name in FIRST_ONLY else ("first", "average"):
            a = jax.jit(lambda *x, fn=fn, t=ties: fn(*x, t, "count"))(s, y, w, j)
            b = jax.jit(lambda *x, fn=fn, t=ties: fn(*x, t, "sort"))(s, y, w, j)
            np.testing.assert_allclose(a, b, atol=1e-5, err_msg=name)


# ------------------------------------------------------------------ shapes and dtypes


def test_batch_dims_vmap_and_bf16():
    rng = np.random.default_rng(1)
    s = rng.normal(size=(2, 3, 7)).astype(np.float32)
    y = rng.integers(0, 3, (2, 3, 7)).astype(np.float32)
    w = rng.random((2, 3, 7)) < 0.8
    j = np.ones_like(w)
    for name, fn in ALL_FNS:
        f = jax.jit(lambda *x, fn=fn: fn(*x, "first", "auto"))
        batched = np.asarray(f(s, y, w, j))
        rows = np.stack(
            [np.asarray(f(s[a, b], y[a, b], w[a, b], j[a, b])) for a in range(2) for b in range(3)]
        )
        np.testing.assert_allclose(batched.reshape(rows.shape), rows, atol=1e-6, err_msg=name)
        mapped = jax.vmap(lambda *a, fn=fn: fn(*a, "first", "auto"))(s, y, w, j)
        np.testing.assert_allclose(mapped, batched, atol=1e-6, err_msg=name)
        low = fn(jnp.asarray(s, jnp.bfloat16), jnp.asarray(y, jnp.bfloat16), w, j, "first", "auto")
        assert low.dtype == jnp.float32, name


# ------------------------------------------------------------------ empty lists


def test_empty_policy_and_mean():
    s = np.array([[3.0, 2.0, 1.0], [3.0, 2.0, 1.0], [1.0, 2.0, 3.0]], np.float32)
    y = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0], [1.0, 1.0, 0.0]], np.float32)
    w = np.array([[True] * 3, [True] * 3, [False] * 3])
    zero = run(M.average_precision, s, y, w)
    np.testing.assert_allclose(zero, [0.5, 0.0, 0.0])  # hand: relevant item at rank 2
    nan = run(M.average_precision, s, y, w, empty="nan")
    assert nan[0] == 0.5 and np.isnan(nan[1]) and np.isnan(nan[2])
    assert float(M.mean(nan)) == 0.5  # empty lists left out
    assert float(M.mean(zero)) == pytest.approx(0.5 / 3)  # counted as 0
    np.testing.assert_array_equal(M.has_relevant(y, w), [True, False, False])
    assert np.isnan(float(M.mean(jnp.array([jnp.nan]))))
    for fn in (M.ndcg, M.reciprocal_rank, M.recall, M.precision, M.err, M.bpref):
        assert np.isnan(run(fn, s, y, w, empty="nan")[1]), fn.__name__


# ------------------------------------------------------------------ errors


def test_errors_name_the_argument():
    s, y = jnp.ones((2, 4)), jnp.ones((2, 4))
    with pytest.raises(ValueError, match="labels"):
        M.ndcg(s, jnp.ones((2, 3)))
    with pytest.raises(TypeError, match="where"):
        M.ndcg(s, y, jnp.ones((2, 4)))
    with pytest.raises(ValueError, match="where"):
        M.ndcg(s, y, jnp.ones((2, 3), bool))
    with pytest.raises(ValueError, match="weights"):
        M.dcg(s, y, weights=jnp.ones(4))
    with pytest.raises(TypeError, match="judged"):
        M.bpref(s, y, judged=jnp.ones((2, 4)))
    with pytest.raises(ValueError, match="k"):
        M.precision(s, y, k=0)
    with pytest.raises(TypeError, match="k"):
        M.precision(s, y, k=2.0)
    with pytest.raises(TypeError, match="k"):
        M.recall(s, y, k=True)
    with pytest.raises(ValueError, match="ties"):
        M.ndcg(s, y, ties="random")
    with pytest.raises(ValueError, match="gain"):
        M.dcg(s, y, gain="log")
    with pytest.raises(ValueError, match="empty"):
        M.recall(s, y, empty="skip")
    with pytest.raises(ValueError, match="method"):
        M.ranks(s, method="fast")
    with pytest.raises(ValueError, match="p"):
        M.rbp(s, y, p=1.5)
    with pytest.raises(ValueError, match="recall_levels"):
        M.interpolated_precision(s, y, recall_levels=(0.5, 2.0))
    with pytest.raises(ValueError, match="scores"):
        M.ndcg(jnp.float32(1.0), jnp.float32(1.0))
    with pytest.raises(TypeError, match="scores"):
        M.ndcg(np.array(["a", "b"]), y[0, :2])
    # Raised at trace time under jit too.
    with pytest.raises(ValueError, match="labels"):
        jax.jit(M.ndcg)(s, jnp.ones((2, 3)))

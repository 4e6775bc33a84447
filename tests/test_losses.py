"""Tests of jaxrank.losses.

Expected numbers come from the rax 0.4.0 reference files ``reference/rax_losses.npz`` and
``reference/rax_metrics.npz`` (see their README) and from hand calculations (doctests).
Where rax depends on padding (DCG lambda weights scaled by the padded size, the
label-difference mask anomaly, the approx cutoff that ignores ``where``), jaxrank matches
the unpadded (``__plain``) values and is shown to be padding-invariant instead.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from jaxrank import losses as L
from jaxrank import metrics as M
from jaxrank.metrics import ndcg

RED = {"none": None, "mean": jnp.mean, "sum": jnp.sum}


@pytest.fixture(scope="module")
def ref(shared_data):
    with np.load(shared_data / "reference" / "rax_losses.npz") as data:
        return dict(data)


@pytest.fixture(scope="module")
def mref(shared_data):
    with np.load(shared_data / "reference" / "rax_metrics.npz") as data:
        return dict(data)


def run(fn, *args, **kwargs):
    """Runs eagerly and under jit (kwargs closed over); checks both agree."""
    eager = np.asarray(fn(*args, **kwargs))
    jitted = np.asarray(jax.jit(lambda *a: fn(*a, **kwargs))(*args))
    np.testing.assert_allclose(eager, jitted, rtol=2e-5, atol=2e-6)
    return eager


LOSSES = {
    "softmax_loss": L.softmax_loss,
    "softmax_loss_normlabels": functools.partial(L.softmax_loss, normalize_labels=True),
    "poly1_softmax_loss": L.poly1_softmax_loss,
    "poly1_softmax_loss_eps0p5": functools.partial(L.poly1_softmax_loss, epsilon=0.5),
    "unique_softmax_loss": L.unique_softmax_loss,
    "listmle_loss": L.listmle_loss,
    "pairwise_hinge_loss": L.pairwise_hinge_loss,
    "pairwise_logistic_loss": L.pairwise_logistic_loss,
    "pairwise_soft_zero_one_loss": L.pairwise_soft_zero_one_loss,
    "pairwise_mse_loss": L.pairwise_mse_loss,
    "pairwise_qr_loss": L.pairwise_qr_loss,
    "pairwise_qr_loss_tau0p25_squared": functools.partial(
        L.pairwise_qr_loss, tau=0.25, squared=True
    ),
    "pointwise_sigmoid_loss": L.sigmoid_cross_entropy_loss,
    "pointwise_mse_loss": L.mse_loss,
}
CASES = [
    (name, variant, red)
    for name in LOSSES
    for variant in ("plain", "mask")
    + (() if name == "listmle_loss" else ("weights", "mask_weights"))
    for red in RED
]


@pytest.mark.parametrize(("name", "variant", "red"), CASES)
def test_rax_loss_parity(ref, name, variant, red):
    kwargs = {"reduce_fn": RED[red]}
    if "mask" in variant:
        kwargs["where"] = ref["where"]
    if "weights" in variant:
        kwargs["weights"] = ref["weights"]
    got = run(LOSSES[name], ref["scores"], ref["labels"], **kwargs)
    want = ref[f"{name}__{variant}__{red}"]
    # float32 against the float64 reference: README gives <= 6e-5 relative (poly1 worst).
    np.testing.assert_allclose(got.reshape(want.shape), want, rtol=6e-5, atol=1e-5)


@pytest.mark.parametrize("variant", ["plain", "mask"])
@pytest.mark.parametrize("red", ["mean", "sum"])
def test_rax_softmax_gradient(ref, variant, red):
    where = ref["where"] if variant == "mask" else None

    def loss(s):
        return L.softmax_loss(s, ref["labels"], where, reduce_fn=RED[red])

    got = np.asarray(jax.jit(jax.grad(loss))(jnp.asarray(ref["scores"])))
    np.testing.assert_allclose(got, ref[f"grad_softmax_loss__{variant}__{red}"], atol=1e-5)


LAMBDAWEIGHTS = {"labeldiff": L.labeldiff_lambdaweight}
for _norm in (0, 1):
    for _top in ("all", "5"):
        _topn = None if _top == "all" else 5
        LAMBDAWEIGHTS[f"dcg_norm{_norm}_top{_top}"] = functools.partial(
            L.dcg_lambdaweight, topn=_topn, normalize=bool(_norm)
        )
        LAMBDAWEIGHTS[f"dcg2_norm{_norm}_top{_top}"] = functools.partial(
            L.dcg2_lambdaweight, topn=_topn, normalize=bool(_norm)
        )


@pytest.mark.parametrize("lw", list(LAMBDAWEIGHTS))
def test_rax_lambdaweight_parity_unpadded(ref, lw):
    fn = LAMBDAWEIGHTS[lw]
    got = run(fn, ref["scores"], ref["labels"])
    np.testing.assert_allclose(got.reshape(8, 144), ref[f"lambdaweight_{lw}__plain"], atol=2e-5)
    for red in RED:
        got = run(
            L.pairwise_logistic_loss, ref["scores"], ref["labels"],
            lambdaweight_fn=fn, reduce_fn=RED[red],
        )  # fmt: skip
        want = ref[f"pairwise_logistic_loss_lw_{lw}__plain__{red}"]
        np.testing.assert_allclose(got.reshape(want.shape), want, rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("lw", list(LAMBDAWEIGHTS))
def test_lambdaweights_padding_invariant_where_rax_is_not(ref, lw):
    # rax's __mask keys depend on padding (anomalies 3 and 4 of the README); jaxrank's
    # masked weights equal the weights of each list cut to its valid prefix.
    fn = LAMBDAWEIGHTS[lw]
    s, y, w = ref["scores"], ref["labels"], ref["where"]
    masked = np.asarray(fn(s, y, w))
    for row, n in enumerate(ref["valid_lengths"]):
        expected = np.zeros((12, 12), np.float32)
        if n:
            expected[:n, :n] = np.asarray(fn(s[row, :n], y[row, :n]))
        np.testing.assert_allclose(masked[row], expected, atol=1e-5, err_msg=f"row {row}")
    assert not np.allclose(masked.reshape(8, 144), ref[f"lambdaweight_{lw}__mask"], atol=1e-3)


def test_padding_lambdaweight_sum_loss_is_constant(ref):
    # conv_padding_lambdaweight_sum_loss: rax gives e.g. 12.06 / 20.09 / 48.23 for the DCG
    # weight on the same 3-item list unpadded / padded to 5 / to 12. jaxrank: column 0.
    want = ref["conv_padding_lambdaweight_sum_loss"]
    fns = [
        L.labeldiff_lambdaweight,
        L.dcg_lambdaweight,
        L.dcg2_lambdaweight,
        L.ndcg_lambdaweight,
        functools.partial(L.dcg2_lambdaweight, normalize=True),
    ]
    s, y = np.float32([1, 2, 0]), np.float32([1, 0, 2])
    for row, fn in enumerate(fns):
        for size in (3, 5, 12):
            sp = np.zeros(size, np.float32)
            yp = np.zeros(size, np.float32)
            sp[:3], yp[:3] = s, y
            wp = np.arange(size) < 3
            got = L.pairwise_logistic_loss(sp, yp, wp, lambdaweight_fn=fn, reduce_fn=jnp.sum)
            assert float(got) == pytest.approx(want[row, 0], rel=1e-5), (row, size)


APPROX = {
    "approx_t12n_ndcg": L.approx_ndcg_loss,
    "approx_t12n_ndcg_temp0p1": functools.partial(L.approx_ndcg_loss, temperature=0.1),
    "approx_t12n_mrr": L.approx_mrr_loss,
}


@pytest.mark.parametrize("name", list(APPROX))
@pytest.mark.parametrize("top", ["all", "5"])
def test_rax_approx_parity(mref, name, top):
    k = None if top == "all" else 5
    fn = APPROX[name]
    for red in ("none", "mean"):
        got = run(fn, mref["scores"], mref["labels"], k=k, reduce_fn=RED[red])
        np.testing.assert_allclose(got, mref[f"{name}__top{top}__plain__{red}"], atol=1e-5)
    got = run(fn, mref["scores"], mref["labels"], mref["where"], k=k, reduce_fn=None)
    want = mref[f"{name}__top{top}__mask__none"]
    full = mref["valid_lengths"] == 12
    if k is None:
        np.testing.assert_allclose(got, want, atol=1e-5)
    else:
        # rax's approx cutoff ignores `where` (the midpoint and the "<= k items" rule see
        # the padded list): it agrees only on unpadded rows; jaxrank equals the value of
        # the list cut to its valid items.
        np.testing.assert_allclose(got[full], want[full], atol=1e-5)
        assert np.any(np.abs(got - want) > 1e-2)
        for row, n in enumerate(mref["valid_lengths"]):
            if n:
                alone = fn(mref["scores"][row, :n], mref["labels"][row, :n], k=k, reduce_fn=None)
                assert float(alone) == pytest.approx(got[row], abs=1e-6)


@pytest.mark.parametrize("top", ["all", "5"])
@pytest.mark.parametrize("red", ["mean", "sum"])
def test_rax_approx_ndcg_gradient(mref, top, red):
    k = None if top == "all" else 5

    def loss(s):
        return L.approx_ndcg_loss(s, mref["labels"], k=k, reduce_fn=RED[red])

    got = np.asarray(jax.jit(jax.grad(loss))(jnp.asarray(mref["scores"])))
    want = mref[f"grad_approx_t12n_ndcg__top{top}__plain__{red}"]
    np.testing.assert_allclose(got, want, atol=1e-5)
    np.testing.assert_allclose(
        L.approx_ranks(mref["scores"]), mref["approx_ranks__plain"], atol=1e-5
    )


# ------------------------------------------------------------------ padding / NaN properties

ALL = [
    ("softmax", L.softmax_loss),
    ("softmax_norm", functools.partial(L.softmax_loss, normalize_labels=True)),
    ("poly1", L.poly1_softmax_loss),
    ("unique_softmax", L.unique_softmax_loss),
    ("listmle", L.listmle_loss),
    ("logistic", L.pairwise_logistic_loss),
    ("hinge", L.pairwise_hinge_loss),
    ("soft01", L.pairwise_soft_zero_one_loss),
    ("pairwise_mse", L.pairwise_mse_loss),
    ("qr", L.pairwise_qr_loss),
    ("sigmoid", L.sigmoid_cross_entropy_loss),
    ("mse", L.mse_loss),
    ("approx_ndcg@2", functools.partial(L.approx_ndcg_loss, k=2)),
    ("approx_mrr", L.approx_mrr_loss),
    ("margin_mse", L.margin_mse_loss),  # labels play the teacher's scores
    ("kl_distillation", functools.partial(L.kl_distillation_loss, temperature=2.0)),
] + [
    (f"logistic+{lw}", functools.partial(L.pairwise_logistic_loss, lambdaweight_fn=fn))
    for lw, fn in [
        ("labeldiff", L.labeldiff_lambdaweight),
        ("ndcg@2", functools.partial(L.ndcg_lambdaweight, topn=2)),
        ("dcg2@2", functools.partial(L.dcg2_lambdaweight, topn=2)),
        ("precision@2", functools.partial(L.precision_lambdaweight, topn=2)),
    ]
]
_KEY = jax.random.key(7)
NEW = [
    ("plackett_luce_exp2", L.plackett_luce_loss),
    ("neural_ndcg@2", functools.partial(L.neural_ndcg_loss, k=2, sinkhorn_iters=5)),
    ("soft_rank_ndcg@2", functools.partial(L.soft_rank_ndcg_loss, k=2)),
    ("soft_spearman", L.soft_spearman_loss),
    ("approx_t12n_ndcg@2", functools.partial(L.approx_t12n(ndcg), k=2, gain="exp2")),
    ("bound_t12n_ndcg@2", functools.partial(L.bound_t12n(ndcg), k=2)),
    ("approx_t12n_rr@2", functools.partial(L.approx_t12n(M.reciprocal_rank), k=2)),
    ("approx_t12n_ap", L.approx_t12n(M.average_precision)),
]
# Gumbel versions draw noise per list index, so they are checked for padding invariance
# and degenerate lists, not against vmap over lists.
GUMBEL = [
    (
        "gumbel_approx_ndcg",
        functools.partial(L.gumbel_t12n(L.approx_ndcg_loss, samples=3), key=_KEY),
    ),
    (
        "gumbel_softmax_smoothed",
        functools.partial(
            L.gumbel_t12n(L.softmax_loss, samples=2, smoothing_factor=1e-20), key=_KEY
        ),
    ),
]
BASE, PADDED = 4, 7
_JIT: dict = {}


def _value_and_grad(name, fn, reduce_fn):
    key = (name, reduce_fn)
    if key not in _JIT:
        _JIT[key] = jax.jit(jax.value_and_grad(lambda s, y, w: fn(s, y, w, reduce_fn=reduce_fn)))
    return _JIT[key]


@st.composite
def padded_lists(draw):
    score = st.sampled_from([-2.0, -0.5, 0.0, 0.5, 1.0, 3.0])
    s = draw(st.lists(score, min_size=BASE, max_size=BASE))
    y = draw(st.lists(st.sampled_from([0.0, 1.0, 2.0]), min_size=BASE, max_size=BASE))
    w = draw(st.lists(st.booleans(), min_size=BASE, max_size=BASE))
    extra = PADDED - BASE
    ps = draw(st.lists(st.sampled_from([-50.0, 0.0, 50.0]), min_size=extra, max_size=extra))
    py = draw(st.lists(st.sampled_from([0.0, 5.0]), min_size=extra, max_size=extra))
    slots = sorted(draw(st.permutations(range(PADDED)))[:BASE])
    return s, y, w, ps, py, slots


@given(case=padded_lists())
def test_padding_changes_neither_loss_nor_gradient(case):
    s, y, w, ps, py, slots = case
    base = [np.float32(s), np.float32(y), np.array(w)]
    rest = [i for i in range(PADDED) if i not in slots]
    padded = []
    for b, p in zip(base, [np.float32(ps), np.float32(py), np.zeros(len(ps), bool)], strict=True):
        out = np.empty(PADDED, b.dtype)
        out[slots], out[rest] = b, p
        padded.append(out)
    # New losses with jnp.mean only (fewer compilations; reductions are shared code).
    checks = [(n, f, r) for n, f in ALL for r in (jnp.mean, jnp.sum)]
    checks += [(n, f, jnp.mean) for n, f in NEW + GUMBEL]
    for name, fn, reduce_fn in checks:
        f = _value_and_grad(name, fn, reduce_fn)
        v0, g0 = f(*base)
        v1, g1 = f(*padded)
        assert np.isfinite(v0) and np.all(np.isfinite(g1)), name
        np.testing.assert_allclose(v1, v0, rtol=1e-5, atol=1e-6, err_msg=name)
        np.testing.assert_allclose(np.asarray(g1)[slots], g0, rtol=1e-5, atol=1e-6, err_msg=name)
        np.testing.assert_array_equal(np.asarray(g1)[rest], 0.0, err_msg=name)


def test_no_nan_gradients_in_degenerate_lists():
    # Lists of BASE items: the jitted functions of the padding test are reused.
    cases = {
        "all masked": ([1.0, 2.0, 3.0, 0.0], [1.0, 0.0, 2.0, 1.0], [False] * 4),
        "single item": ([1.0, 0.0, 0.0, 2.0], [2.0, 0.0, 0.0, 1.0], [True, False, False, False]),
        "no relevant": ([1.0, 2.0, 3.0, 2.0], [0.0, 0.0, 0.0, 0.0], [True] * 4),
        "equal scores": ([0.5, 0.5, 0.5, 0.5], [1.0, 0.0, 2.0, 1.0], [True] * 4),
    }
    for case, (s, y, w) in cases.items():
        s, y, w = np.float32(s), np.float32(y), np.array(w)
        for name, fn in ALL + NEW + GUMBEL:
            value, grad = _value_and_grad(name, fn, jnp.mean)(s, y, w)
            assert np.isfinite(value) and np.all(np.isfinite(grad)), (case, name)
            if case == "all masked":
                assert value == 0.0 and np.all(np.asarray(grad) == 0.0), (case, name)


def test_batch_vmap_and_errors():
    rng = np.random.default_rng(0)
    s = rng.normal(size=(2, 3, 5)).astype(np.float32)
    y = rng.integers(0, 3, (2, 3, 5)).astype(np.float32)
    for name, fn in ALL + NEW:
        # The new losses run jitted here (one compilation beats many eager ops).
        wrap = jax.jit if (name, fn) in NEW else (lambda f: f)
        per_list = np.asarray(wrap(lambda a, b, fn=fn: fn(a, b, reduce_fn=None))(s, y))
        mapped = jax.vmap(lambda a, b, fn=fn: fn(a, b, reduce_fn=None))
        np.testing.assert_allclose(wrap(mapped)(s, y), per_list, rtol=1e-5, atol=1e-6, err_msg=name)
        low = wrap(fn)(jnp.asarray(s, jnp.bfloat16), jnp.asarray(y, jnp.bfloat16))
        assert low.dtype == jnp.float32, name
    with pytest.raises(ValueError, match="labels"):
        L.softmax_loss(s, y[..., :3])
    with pytest.raises(TypeError, match="where"):
        L.pairwise_hinge_loss(s, y, np.ones_like(s))
    with pytest.raises(ValueError, match="weights"):
        L.mse_loss(s, y, weights=np.ones(3))
    with pytest.raises(ValueError, match="tau"):
        L.pairwise_qr_loss(s, y, tau=0.0)
    with pytest.raises(ValueError, match="topn"):
        L.dcg_lambdaweight(s, y, topn=0)
    with pytest.raises(ValueError, match="k"):
        L.approx_ndcg_loss(s, y, k=0)


# ------------------------------------------------------------------ contrastive / distillation


def _log_softmax_np(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def test_infonce_matches_numpy():
    rng = np.random.default_rng(0)
    q = rng.normal(size=(3, 4)).astype(np.float32)
    d = rng.normal(size=(5, 4)).astype(np.float32)  # 3 positives + 2 hard negatives
    valid = np.array([True, True, True, False, True])
    pos = np.array([2, 0, 1])
    got = run(L.infonce_loss, q, d, pos, temperature=0.5, where=valid, reduce_fn=None)
    # numpy: log-softmax over the valid documents of q @ d.T / T, at the positive.
    logits = (q @ d.T / 0.5)[:, valid]
    want = -_log_softmax_np(logits)[np.arange(3), [2, 0, 1]]
    np.testing.assert_allclose(got, want, rtol=1e-5)
    qn = q / np.linalg.norm(q, axis=-1, keepdims=True)
    dn = d / np.linalg.norm(d, axis=-1, keepdims=True)
    want = -np.diag(_log_softmax_np(qn @ dn[:3].T / 0.05))
    np.testing.assert_allclose(
        run(L.infonce_loss, q, d[:3], normalize=True, reduce_fn=None), want, rtol=1e-4
    )
    grad = jax.grad(lambda d: L.infonce_loss(q, d, pos, where=valid))(jnp.asarray(d))
    assert np.all(np.asarray(grad)[3] == 0.0) and np.all(np.isfinite(grad))
    with pytest.raises(ValueError, match="documents"):
        L.infonce_loss(q, d[:, :2])


def test_margin_mse_and_kl_distillation_hand_values():
    # Margin-MSE on (pos, neg): ((3 - 1) - (5 - 4))^2 = 1 (Hofstätter et al.).
    assert float(L.margin_mse_loss(np.float32([3, 1]), np.float32([5, 4]))) == pytest.approx(1.0)
    s, t = np.float32([0.5, -1.0, 2.0]), np.float32([1.0, 0.0, 3.0])
    pt, ps = _log_softmax_np(t / 2.0), _log_softmax_np(s / 2.0)
    want = 4.0 * np.sum(np.exp(pt) * (pt - ps))  # T^2 KL(teacher || student)
    assert float(run(L.kl_distillation_loss, s, t, temperature=2.0)) == pytest.approx(
        want, rel=1e-5
    )


# ------------------------------------------------------------------ metric transformations

T12N = {
    "approx_t12n_ndcg": lambda: functools.partial(L.approx_t12n(ndcg), gain="exp2"),
    "approx_t12n_ndcg_temp0p1": lambda: functools.partial(L.approx_t12n(ndcg, 0.1), gain="exp2"),
    "bound_t12n_ndcg": lambda: functools.partial(L.bound_t12n(ndcg), gain="exp2"),
    "approx_t12n_mrr": lambda: L.approx_t12n(M.reciprocal_rank),
}


@pytest.mark.parametrize("name", list(T12N))
@pytest.mark.parametrize("top", ["all", "5"])
def test_rax_t12n_parity(mref, name, top):
    # rax_metrics.npz keys <name>__top<top>__{plain,mask}__{none,mean} hold -metric.
    k = None if top == "all" else 5
    fn = T12N[name]()
    for red in ("none", "mean"):
        got = run(fn, mref["scores"], mref["labels"], k=k, reduce_fn=RED[red])
        np.testing.assert_allclose(got, mref[f"{name}__top{top}__plain__{red}"], atol=2e-5)
    got = run(fn, mref["scores"], mref["labels"], mref["where"], k=k, reduce_fn=None)
    want = mref[f"{name}__top{top}__mask__none"]
    if k is None:
        np.testing.assert_allclose(got, want, atol=2e-5)
        return
    # rax's cutoff ignores `where` (README): equal on unpadded rows; elsewhere jaxrank gives
    # the value of the list cut to its valid items.
    # (the property test below shows padding invariance for every transformation).
    full = mref["valid_lengths"] == 12
    np.testing.assert_allclose(got[full], want[full], atol=2e-5)
    assert np.any(np.abs(got - want) > 1e-2)


@pytest.mark.parametrize("top", ["all", "5"])
def test_rax_t12n_gradient_and_approx_ndcg_equivalence(mref, top):
    k = None if top == "all" else 5
    fn = L.approx_t12n(ndcg)

    def loss(s):
        return fn(s, mref["labels"], k=k, gain="exp2", reduce_fn=jnp.sum)

    got = np.asarray(jax.jit(jax.grad(loss))(jnp.asarray(mref["scores"])))
    np.testing.assert_allclose(got, mref[f"grad_approx_t12n_ndcg__top{top}__plain__sum"], atol=2e-5)
    # The transformation of jaxrank.metrics.ndcg is the dedicated approx_ndcg_loss.
    args = (mref["scores"], mref["labels"], mref["where"])
    np.testing.assert_allclose(
        fn(*args, k=k, gain="exp2", reduce_fn=None),
        L.approx_ndcg_loss(*args, k=k, reduce_fn=None),
        atol=1e-6,
    )


def test_t12n_hard_limit_equals_metric():
    # With a tiny temperature the sigmoid steps are exact on untied scores: the approx
    # loss is -metric for every rank-based metric (source: jaxrank.metrics itself).
    rng = np.random.default_rng(3)
    s = rng.permutation(12).astype(np.float32).reshape(2, 6)
    y = rng.integers(0, 3, (2, 6)).astype(np.float32)
    w = np.array([[True] * 6, [True, True, False, True, True, False]])
    metrics = [
        (M.ndcg, {"k": 3}),
        (M.precision, {"k": 2}),
        (M.recall, {"k": 3}),
        (M.r_precision, {}),
        (M.f_measure, {"k": 3}),
        (M.success, {"k": 2}),
        (M.reciprocal_rank, {"k": 3}),
        (M.average_precision, {"k": 4}),
        (M.err, {"k": 4}),
        (M.rbp, {"p": 0.5}),
        (M.bpref, {}),
    ]
    for metric, kw in metrics:
        want = np.asarray(metric(s, y, w, **kw))
        got = np.asarray(L.approx_t12n(metric, temperature=1e-3)(s, y, w, reduce_fn=None, **kw))
        np.testing.assert_allclose(got, -want, atol=1e-5, err_msg=metric.__name__)
    with pytest.raises(TypeError, match="method"):
        L.approx_t12n(M.ordered_pair_accuracy)
    with pytest.raises(TypeError, match="ties"):
        L.approx_t12n(M.ndcg)(s, y, ties="average")
    with pytest.raises(ValueError, match="temperature"):
        L.approx_t12n(M.ndcg, temperature=0.0)


def test_gumbel_t12n_semantics():
    s, y = np.float32([[0.0, 1.0, 3.0, 2.0]]), np.float32([[0.0, 0.0, 1.0, 2.0]])
    key = jax.random.key(0)
    fn = L.gumbel_t12n(L.approx_ndcg_loss, samples=5)
    per = run(fn, s, y, key=key, reduce_fn=None)  # eager and jitted agree
    assert per.shape == (5, 1)
    # The mean reduction averages the samples (one list each); another key, other noise.
    mean = jax.jit(lambda s, y, k: fn(s, y, key=k))
    assert float(mean(s, y, key)) == pytest.approx(per.mean(), rel=1e-6)
    assert float(mean(s, y, jax.random.key(1))) != pytest.approx(per.mean(), rel=1e-4)
    # beta = 0: the unperturbed loss.
    zero = L.gumbel_t12n(L.approx_ndcg_loss, samples=2, beta=0.0)
    assert float(zero(s, y, key=key)) == pytest.approx(float(L.approx_ndcg_loss(s, y)), rel=1e-6)

    # The noise is standard Gumbel: mean = Euler-Mascheroni 0.5772, variance pi^2/6.
    def ident(scores, labels, where=None):
        return scores

    noise = np.asarray(
        L.gumbel_t12n(ident, samples=2000)(np.zeros((4, 5)), np.zeros((4, 5)), key=key)
    )
    assert noise.shape == (2000, 4, 5)
    assert abs(noise.mean() - 0.5772) < 0.02 and abs(noise.var() - np.pi**2 / 6) < 0.05
    # Masked items keep their mask: `where` is repeated per sample.
    w = np.array([[True, True, False, True]])
    per_list = jax.jit(lambda s, y, w: fn(s, y, w, key=key, reduce_fn=None))
    got = per_list(s, y, w)
    cut = per_list(s[:, [0, 1, 3]], y[:, [0, 1, 3]], None)
    np.testing.assert_allclose(got, cut, atol=1e-6)
    with pytest.raises(ValueError, match="samples"):
        L.gumbel_t12n(L.softmax_loss, samples=0)


# ------------------------------------------------------------------ soft-sort / soft-rank losses


def _untied(seed, shape):
    rng = np.random.default_rng(seed)
    s = rng.normal(size=shape).astype(np.float32)
    y = rng.integers(0, 4, shape).astype(np.float32)
    return s, y


@pytest.mark.parametrize("k", [None, 3])
def test_neural_and_soft_rank_ndcg_tend_to_ndcg(k):
    s, y = _untied(0, (3, 6))
    w = np.ones_like(s, bool)
    w[1, 4:] = False
    want = -np.asarray(ndcg(s, y, w, k=k, gain="exp2"))  # the hard metric (jaxrank.metrics)
    got = run(L.neural_ndcg_loss, s, y, w, k=k, temperature=1e-4, reduce_fn=None)
    np.testing.assert_allclose(got, want, atol=1e-4)
    got = run(L.soft_rank_ndcg_loss, s, y, w, k=k, regularization_strength=1e-4, reduce_fn=None)
    np.testing.assert_allclose(got, want, atol=1e-4)
    exact = L.soft_rank_ndcg_loss(s, y, w, k=k, regularization_strength=0.0, reduce_fn=None)
    np.testing.assert_allclose(exact, want, atol=1e-6)
    # A smoother relaxation is further from the hard value but has a useful gradient.
    g = jax.grad(lambda x: L.neural_ndcg_loss(x, y, w, k=k))(jnp.asarray(s))
    assert np.all(np.isfinite(g)) and np.any(np.asarray(g) != 0)
    assert np.all(np.asarray(g)[1, 4:] == 0)


def test_neural_ndcg_sinkhorn_is_doubly_stochastic():
    from jaxrank.losses._soft import _sinkhorn_scale
    from jaxrank.soft import neuralsort

    s, _ = _untied(1, (2, 5))
    w = np.array([[True] * 5, [True, False, True, True, False]])
    p = np.asarray(_sinkhorn_scale(neuralsort(s, temperature=2.0, where=w), w, 200))
    for row, m in enumerate(w.sum(-1)):
        block = p[row][:m][:, w[row]]
        np.testing.assert_allclose(block.sum(0), 1.0, atol=1e-5)
        np.testing.assert_allclose(block.sum(1), 1.0, atol=1e-5)
        assert p[row].sum() == pytest.approx(m, abs=1e-4)


def test_soft_spearman_loss_matches_scipy():
    from scipy.stats import spearmanr

    s, y = _untied(2, (3, 8))
    got = run(L.soft_spearman_loss, s, y, regularization_strength=1e-4, reduce_fn=None)
    want = [1.0 - spearmanr(s[i], y[i]).statistic for i in range(3)]  # scipy, tie-averaged
    np.testing.assert_allclose(got, want, atol=1e-4)
    # Lists with all-equal labels have no correlation: 0 and left out of the mean.
    y2 = y.copy()
    y2[0] = 1.0
    per = np.asarray(L.soft_spearman_loss(s, y2, regularization_strength=1e-4, reduce_fn=None))
    assert per[0] == 0.0
    mean = float(L.soft_spearman_loss(s, y2, regularization_strength=1e-4))
    assert mean == pytest.approx(per[1:].mean(), rel=1e-6)


def _plackett_luce_numpy(s, y, alpha):
    # -sum_r alpha_r (s_pi(r) - log sum_{q >= r} exp s_pi(q)), pi = stable sort by -label.
    order = np.argsort(-y, kind="stable")
    z = s[order].astype(np.float64)
    lse = np.log(np.cumsum(np.exp(z[::-1]))[::-1])
    return -np.sum(alpha * (z - lse))


def test_plackett_luce_matches_numpy():
    s, y = _untied(4, (3, 7))
    r = np.arange(1, 8, dtype=np.float64)
    exp2 = (2.0 ** (7 - r) - 1.0) / (2.0**6 - 1.0)  # TF-Ranking p-ListMLE, top weight 1
    for kind, alpha in [(None, np.ones(7)), ("exp2", exp2), ("dcg", 1.0 / np.log2(1.0 + r))]:
        got = run(L.plackett_luce_loss, s, y, position_weights=kind, reduce_fn=None)
        want = [_plackett_luce_numpy(s[i], y[i], alpha) for i in range(3)]
        np.testing.assert_allclose(got, want, rtol=1e-5, err_msg=str(kind))
    np.testing.assert_allclose(
        L.plackett_luce_loss(s, y, position_weights=None), L.listmle_loss(s, y), rtol=1e-6
    )
    custom = L.plackett_luce_loss(s, y, position_weights=lambda pos, m: (pos <= 2) * 1.0)
    top2 = [_plackett_luce_numpy(s[i], y[i], (r <= 2) * 1.0) for i in range(3)]
    assert float(custom) == pytest.approx(np.mean(top2), rel=1e-5)
    with pytest.raises(ValueError, match="position_weights"):
        L.plackett_luce_loss(s, y, position_weights="linear")

"""Tests of jaxrank.nn: heads, training utilities, export and checkpoints."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from hypothesis import given
from hypothesis import strategies as st

from jaxrank.nn import (
    CrossEncoderHead,
    DualEncoderHead,
    FeatureStat,
    LateInteractionHead,
    MLPScorer,
    evaluate,
    export_model,
    fit,
    load_checkpoint,
    load_exported,
    maxsim,
    pool_tokens,
    predict,
    save_checkpoint,
    train_step,
)

REPO = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------- local loss and metric
# jaxrank.losses / jaxrank.metrics are built in parallel; these small local versions
# stand in (training code takes both as arguments).


def softmax_loss(scores, labels, *, where):
    """ListNet softmax cross-entropy, mean over lists that have a relevant item."""
    logp = jax.nn.log_softmax(jnp.where(where, scores, -jnp.inf), axis=-1)
    y = jnp.where(where, labels, 0.0)
    total = y.sum(-1, keepdims=True)
    per_list = -jnp.where(where, y / jnp.maximum(total, 1e-9) * logp, 0.0).sum(-1)
    has = total[..., 0] > 0
    return jnp.where(has, per_list, 0.0).sum() / jnp.maximum(has.sum(), 1)


def ndcg_at(k):
    """Masked nDCG@k per list, gain 2^rel - 1, discount 1/log2(1 + rank); ties by index."""

    def metric(scores, labels, *, where):
        n = scores.shape[-1]
        s = jnp.where(where, scores, -jnp.inf)
        y = jnp.where(where, labels, 0.0)
        order = jnp.argsort(-s, axis=-1, stable=True)
        ideal = jnp.argsort(-y, axis=-1, stable=True)
        disc = jnp.where(jnp.arange(n) < k, 1.0 / jnp.log2(jnp.arange(n) + 2.0), 0.0)
        gain = 2.0**y - 1.0
        dcg = (jnp.take_along_axis(gain, order, -1) * disc).sum(-1)
        idcg = (jnp.take_along_axis(gain, ideal, -1) * disc).sum(-1)
        return jnp.where(idcg > 0, dcg / jnp.where(idcg > 0, idcg, 1.0), 0.0)

    return metric


def test_local_ndcg_by_hand():
    # Hand calculation: ranking by score puts labels [0, 2, 1];
    # DCG@3 = 0 + 3/log2(3) + 1/log2(4) = 1.8928 + 0.5 = 2.3928;
    # IDCG@3 = 3 + 1/log2(3) = 3.6309; nDCG = 0.65901.
    s = jnp.array([[3.0, 2.0, 1.0, 9.0]])
    y = jnp.array([[0.0, 2.0, 1.0, 4.0]])
    w = jnp.array([[True, True, True, False]])
    assert float(ndcg_at(3)(s, y, where=w)[0]) == pytest.approx(0.65901, abs=1e-5)
    # @1: top document has gain 0.
    assert float(ndcg_at(1)(s, y, where=w)[0]) == 0.0


def _data(seed=0, q=24, n=6, f=4):
    """Synthetic lists whose relevance is a function of the features."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(q, n, f)).astype(np.float32)
    # A product of two features: a random-init network ranks these near chance.
    y = np.clip(np.round(1.5 * x[..., 0] * x[..., 1] + 1), 0, 3).astype(np.float32)
    w = np.ones((q, n), bool)
    w[::3, n - 2 :] = False  # some short lists
    return x, np.where(w, y, 0).astype(np.float32), w


# ---------------------------------------------------------------- MLPScorer


def _call(model, *args, jit, **kwargs):
    if jit:
        return nnx.jit(lambda m, *a: m(*a, **kwargs))(model, *args)
    return model(*args, **kwargs)


@pytest.mark.parametrize("jit", [False, True])
def test_mlp_matches_manual_forward(jit):
    m = MLPScorer(3, hidden=(5, 4), rngs=nnx.Rngs(0))
    x = np.random.default_rng(1).normal(size=(2, 4, 3)).astype(np.float32)
    # Closed form: relu layers then a linear output, weights read from the module.
    h = x
    for layer in m.layers:
        h = np.maximum(h @ np.asarray(layer.kernel[...]) + np.asarray(layer.bias[...]), 0)
    expect = (h @ np.asarray(m.out.kernel[...]) + np.asarray(m.out.bias[...]))[..., 0]
    np.testing.assert_allclose(_call(m, x, jit=jit), expect, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("jit", [False, True])
def test_mlp_where_zeroes_padded_scores(jit):
    m = MLPScorer(3, hidden=(4,), rngs=nnx.Rngs(0))
    x = jnp.ones((2, 3, 3))
    w = jnp.array([[True, False, True], [False, False, False]])
    s = _call(m, x, w, jit=jit)
    assert s.shape == (2, 3)
    assert float(jnp.abs(s[~w]).max()) == 0.0
    assert float(jnp.abs(s[w]).min()) > 0.0


@given(seed=st.integers(0, 2**16), pad=st.sampled_from([1, 4]))
def test_padding_invariance_of_scores_and_gradients(seed, pad):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2, 3, 4)).astype(np.float32)
    y = rng.integers(0, 3, size=(2, 3)).astype(np.float32)
    w = np.ones((2, 3), bool)
    garbage = rng.normal(scale=100, size=(2, pad, 4)).astype(np.float32)
    xp = np.concatenate([x, garbage], 1)
    yp = np.concatenate([y, rng.integers(0, 5, size=(2, pad)).astype(np.float32)], 1)
    wp = np.concatenate([w, np.zeros((2, pad), bool)], 1)
    m = MLPScorer(4, hidden=(8,), log1p=True, standardize=True, rngs=nnx.Rngs(3))
    m.fit_normalizer(x)

    @nnx.jit
    def loss_and_grad(model, x, y, w):
        return nnx.value_and_grad(lambda mm: softmax_loss(mm(x, where=w), y, where=w))(model)

    s, sp = m(x, where=w), m(xp, where=wp)
    # Equal up to float rounding (XLA blocks matmuls of different shapes differently).
    np.testing.assert_allclose(sp[:, :3], s, rtol=1e-5, atol=1e-6)
    assert not np.asarray(sp[:, 3:]).any()
    (l0, g0), (l1, g1) = loss_and_grad(m, x, y, w), loss_and_grad(m, xp, yp, wp)
    np.testing.assert_allclose(l0, l1, rtol=1e-5)
    for a, b in zip(jax.tree.leaves(g0), jax.tree.leaves(g1), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_fit_normalizer_statistics_and_mask():
    rng = np.random.default_rng(0)
    x = rng.lognormal(size=(5, 4, 3)).astype(np.float32)
    x[..., 2] = 7.0  # constant feature: zero spread -> scale 1
    w = np.ones((5, 4), bool)
    w[:, 3] = False
    x_garbage = x.copy()
    x_garbage[~w] = 1e6  # padded rows must not move the statistics
    m = MLPScorer(3, log1p=True, standardize=True, rngs=nnx.Rngs(0))
    m.fit_normalizer(x_garbage, w)
    # Closed form: numpy mean/std of log1p over real items.
    t = np.log1p(x[w].astype(np.float64))
    np.testing.assert_allclose(m.mean[...][:2], t.mean(0)[:2], rtol=1e-6)
    np.testing.assert_allclose(m.scale[...][:2], t.std(0)[:2], rtol=1e-6)
    assert float(m.scale[...][2]) == 1.0
    np.testing.assert_allclose(m.transform(jnp.asarray(x))[..., 2], 0.0, atol=1e-6)
    # signed log1p keeps the order of negative features (closed form -log(1+3)).
    m2 = MLPScorer(1, log1p=True, rngs=nnx.Rngs(0))
    assert float(m2.transform(jnp.array([[-3.0]]))[0, 0]) == pytest.approx(-np.log(4.0))


def test_statistics_are_not_trained():
    x, y, w = _data()
    m = MLPScorer(4, hidden=(8,), standardize=True, rngs=nnx.Rngs(0))
    m.fit_normalizer(x, w)
    mean = np.asarray(m.mean[...]).copy()
    opt = nnx.Optimizer(m, optax.adam(0.1), wrt=nnx.Param)
    for _ in range(3):
        train_step(m, opt, x, y, w, loss_fn=softmax_loss)
    np.testing.assert_array_equal(m.mean[...], mean)
    assert isinstance(m.mean, FeatureStat)


def test_mlp_input_errors():
    m = MLPScorer(3, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"features has shape .*in_features=3"):
        m(jnp.ones((2, 4, 5)))
    with pytest.raises(TypeError, match="where must be a boolean mask"):
        m(jnp.ones((2, 4, 3)), where=jnp.ones((2, 4)))
    with pytest.raises(ValueError, match=r"where has shape \(2, 5\), expected \(2, 4\)"):
        m(jnp.ones((2, 4, 3)), where=jnp.ones((2, 5), bool))
    with pytest.raises(ValueError, match="where is all False"):
        m.fit_normalizer(np.ones((2, 3)), np.zeros(2, bool))
    with pytest.raises(ValueError, match="in_features must be positive"):
        MLPScorer(0, rngs=nnx.Rngs(0))


def test_dropout_train_and_eval_modes():
    m = MLPScorer(3, hidden=(64,), dropout=0.5, rngs=nnx.Rngs(0))
    x = jnp.ones((1, 4, 3))
    m.train()
    assert not np.allclose(m(x), m(x))
    m.eval()
    np.testing.assert_array_equal(m(x), m(x))


# ---------------------------------------------------------------- other heads


@pytest.mark.parametrize("jit", [False, True])
def test_cross_encoder_head(jit):
    head = CrossEncoderHead(6, intermediate=4, rngs=nnx.Rngs(0))
    h = np.random.default_rng(0).normal(size=(2, 3, 6)).astype(np.float32)
    w = jnp.array([[True, True, False], [True, False, False]])
    # Closed form: w^T tanh(W h + c) + b.
    inner = np.tanh(h @ np.asarray(head.dense.kernel[...]) + np.asarray(head.dense.bias[...]))
    expect = (inner @ np.asarray(head.out.kernel[...]) + np.asarray(head.out.bias[...]))[..., 0]
    s = _call(head, h, w, jit=jit)
    np.testing.assert_allclose(s, np.where(w, expect, 0), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="pooled has shape"):
        head(jnp.ones((2, 3, 5)))


def _maxsim_loop(q, qm, d, dm):
    """Brute-force MaxSim with Python loops (reference)."""
    out = np.zeros(d.shape[0])
    for lst in range(d.shape[0]):
        total = 0.0
        for i in range(q.shape[0]):
            if not qm[i]:
                continue
            sims = [q[i] @ d[lst, j] for j in range(d.shape[1]) if dm[lst, j]]
            total += max(sims) if sims else 0.0
        out[lst] = total
    return out


@pytest.mark.parametrize("jit", [False, True])
def test_late_interaction_head(jit):
    rng = np.random.default_rng(0)
    head = LateInteractionHead(8, dim=4, rngs=nnx.Rngs(0))
    q_tok = rng.normal(size=(2, 3, 8)).astype(np.float32)
    d_tok = rng.normal(size=(2, 4, 5, 8)).astype(np.float32)
    q_mask = np.array([[1, 1, 0], [1, 1, 1]], bool)
    d_mask = rng.random((2, 4, 5)) > 0.3
    d_mask[0, 2] = False  # a document without tokens scores 0
    q = _call(head, q_tok, q_mask, jit=jit)
    d = _call(head, d_tok, d_mask, jit=jit)
    assert q.shape == (2, 3, 4) and d.shape == (2, 4, 5, 4)
    np.testing.assert_allclose(np.linalg.norm(q, axis=-1), q_mask.astype(float), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(d, axis=-1), d_mask.astype(float), atol=1e-6)
    where = np.array([[1, 1, 1, 0], [1, 1, 1, 1]], bool)
    score = head.score if not jit else jax.jit(maxsim)
    s = score(q, d, query_mask=q_mask, doc_mask=d_mask, where=where)
    for b in range(2):
        ref = _maxsim_loop(np.asarray(q[b]), q_mask[b], np.asarray(d[b]), d_mask[b])
        np.testing.assert_allclose(s[b], np.where(where[b], ref, 0), rtol=1e-5, atol=1e-6)
    assert float(s[0, 2]) == 0.0
    # Padding invariance: extra masked doc tokens with garbage change nothing.
    d_pad = jnp.concatenate([d, 50 * jnp.ones((2, 4, 2, 4))], axis=2)
    m_pad = np.concatenate([d_mask, np.zeros((2, 4, 2), bool)], axis=2)
    s_pad = maxsim(q, d_pad, query_mask=q_mask, doc_mask=m_pad, where=where)
    np.testing.assert_allclose(s_pad, s, rtol=1e-6)


@pytest.mark.parametrize("pooling", ["mean", "cls", "max"])
@pytest.mark.parametrize("jit", [False, True])
def test_dual_encoder_head(pooling, jit):
    rng = np.random.default_rng(0)
    tok = rng.normal(size=(2, 3, 5, 6)).astype(np.float32)
    mask = np.ones((2, 3, 5), bool)
    mask[:, :, 3:] = False
    head = DualEncoderHead(6, dim=4, pooling=pooling, rngs=nnx.Rngs(0))
    e = _call(head, tok, mask, jit=jit)
    # Reference pooling in numpy over the first 3 (real) tokens.
    real = tok[:, :, :3]
    pooled = {"mean": real.mean(2), "cls": tok[:, :, 0], "max": real.max(2)}[pooling]
    proj = pooled @ np.asarray(head.proj.kernel[...]) + np.asarray(head.proj.bias[...])
    expect = proj / np.linalg.norm(proj, axis=-1, keepdims=True)
    np.testing.assert_allclose(e, expect, rtol=1e-5, atol=1e-6)
    q = e[:, 0]
    s = head.score(q, e, where=jnp.array([[1, 1, 0], [1, 1, 1]], bool))
    np.testing.assert_allclose(s[:, 0], 1.0, rtol=1e-5)  # cosine with itself
    assert float(s[0, 2]) == 0.0
    # Masked tokens with garbage do not move mean/max pooling.
    garbage = tok.copy()
    garbage[:, :, 3:] = 1e3
    np.testing.assert_allclose(head(garbage, mask), e, rtol=1e-6)


def test_pool_tokens_by_hand_and_errors():
    h = jnp.array([[1.0, -1.0], [3.0, -5.0], [100.0, 100.0]])
    m = jnp.array([True, True, False])
    # Hand: mean of rows 0,1 = [2, -3]; max = [3, -1]; cls = row 0.
    assert pool_tokens(h, m).tolist() == [2.0, -3.0]
    assert pool_tokens(h, m, pooling="max").tolist() == [3.0, -1.0]
    assert pool_tokens(h, jnp.zeros(3, bool), pooling="max").tolist() == [0.0, 0.0]
    assert pool_tokens(h, jnp.zeros(3, bool)).tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="pooling must be"):
        pool_tokens(h, pooling="sum")
    with pytest.raises(ValueError, match="pooling must be"):
        DualEncoderHead(2, pooling="sum", rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="mask has shape"):
        pool_tokens(h, jnp.ones(2, bool))


# ---------------------------------------------------------------- training


def test_train_step_equals_manual_optax_update():
    x, y, w = _data(q=4)
    m = MLPScorer(4, hidden=(5,), rngs=nnx.Rngs(0))
    graphdef, params, rest = nnx.split(m, nnx.Param, ...)
    tx = optax.adam(0.01)

    def pure_loss(p):
        return softmax_loss(nnx.merge(graphdef, p, rest)(x, where=w), y, where=w)

    loss_ref, grads = jax.value_and_grad(pure_loss)(params)
    updates, _ = tx.update(grads, tx.init(params), params)
    expect = optax.apply_updates(params, updates)

    opt = nnx.Optimizer(m, tx, wrt=nnx.Param)
    loss = train_step(m, opt, x, y, w, loss_fn=softmax_loss)
    np.testing.assert_allclose(loss, loss_ref, rtol=1e-6)
    got = nnx.state(m, nnx.Param)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(expect), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_predict_and_evaluate_chunking():
    x, y, w = _data(q=10)
    m = MLPScorer(4, hidden=(5,), rngs=nnx.Rngs(0))
    full = m(x, where=w)
    np.testing.assert_allclose(predict(m, x, w, batch_size=3), full, rtol=1e-6)
    metric = ndcg_at(3)
    expect = float(np.mean(metric(full, jnp.asarray(y), where=jnp.asarray(w))))
    assert evaluate(m, (x, y, w), metric_fn=metric, batch_size=4) == pytest.approx(expect)
    with pytest.raises(ValueError, match="one value per list"):
        evaluate(m, (x, y, w), metric_fn=lambda s, y, *, where: s.mean())
    with pytest.raises(TypeError, match="RankingData or a"):
        evaluate(m, x, metric_fn=metric)


def test_fit_learns_and_restores_best():
    x, y, w = _data(seed=0, q=48)
    xv, yv, wv = _data(seed=1, q=24)
    m = MLPScorer(4, hidden=(16,), standardize=True, rngs=nnx.Rngs(0))
    m.fit_normalizer(x, w)
    metric = ndcg_at(3)
    before = evaluate(m, (xv, yv, wv), metric_fn=metric)
    seen = []
    result = fit(m, optax.adam(0.02), (x, y, w), loss_fn=softmax_loss,
                 valid=(xv, yv, wv), metric_fn=metric, epochs=40, batch_size=16,
                 patience=10, progress=False, callback=lambda e, r: seen.append(e))  # fmt: skip
    after = evaluate(m, (xv, yv, wv), metric_fn=metric)
    assert seen == [r["epoch"] for r in result.history]
    # The model holds the best validation epoch's parameters.
    assert after == pytest.approx(result.best_metric, abs=1e-6)
    assert result.best_metric == max(r["valid_metric"] for r in result.history)
    # Relevance is a function of two features: training must beat the random init.
    assert after > before + 0.1, (before, after)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


def test_fit_stops_early_with_patience():
    x, y, w = _data(q=8)
    m = MLPScorer(4, hidden=(4,), rngs=nnx.Rngs(0))
    constant = lambda s, y, *, where: jnp.zeros(s.shape[0])  # noqa: E731
    result = fit(m, optax.sgd(0.01), (x, y, w), loss_fn=softmax_loss, valid=(x, y, w),
                 metric_fn=constant, epochs=50, batch_size=4, patience=3,
                 progress=False)  # fmt: skip
    # Epoch 0 is the best (no later improvement); 3 more epochs without one -> stop.
    assert len(result.history) == 4 and result.stopped_early and result.best_epoch == 0


def test_fit_argument_errors():
    x, y, w = _data(q=8)
    m = MLPScorer(4, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="valid was given without metric_fn"):
        fit(m, optax.sgd(0.1), (x, y, w), loss_fn=softmax_loss, valid=(x, y, w))
    with pytest.raises(ValueError, match=r"expected features \[Q, L, F\]"):
        fit(m, optax.sgd(0.1), (x, y[:, :2], w), loss_fn=softmax_loss)
    mesh = jax.sharding.Mesh(np.array(jax.devices()[:1]), ("batch",))
    with pytest.raises(ValueError, match="needs a 'data' axis"):
        fit(m, optax.sgd(0.1), (x, y, w), loss_fn=softmax_loss, mesh=mesh)


_MESH_SCRIPT = textwrap.dedent(
    """
    import jax, numpy as np, optax
    from flax import nnx
    from jaxrank.nn import MLPScorer, fit
    from tests.test_nn import _data, ndcg_at, softmax_loss

    assert jax.device_count() == 8, jax.devices()
    x, y, w = _data(seed=0, q=48)
    xv, yv, wv = _data(seed=1, q=16)

    def train(mesh):
        m = MLPScorer(4, hidden=(16,), standardize=True, rngs=nnx.Rngs(0))
        m.fit_normalizer(x, w)
        # SGD, not Adam: the softmax loss is shift-invariant, so the output bias gets a
        # gradient of pure rounding noise, which Adam would scale up to full steps.
        r = fit(m, optax.sgd(0.1, momentum=0.9), (x, y, w), loss_fn=softmax_loss,
                valid=(xv, yv, wv),
                metric_fn=ndcg_at(3), epochs=6, batch_size=16, patience=None,
                mesh=mesh, progress=False)
        return m, r

    mesh = jax.sharding.Mesh(np.array(jax.devices()), ("data",))
    one, r1 = train(None)
    dp, r8 = train(mesh)
    # The scores inside the compiled step are split over the 8 devices (batch axis);
    # learning rate 0, so the parameters stay as trained for the comparison below.
    seen = []

    def inspecting_loss(scores, labels, *, where):
        jax.debug.inspect_array_sharding(scores, callback=seen.append)
        return softmax_loss(scores, labels, where=where)

    fit(dp, optax.sgd(0.0), (x, y, w), loss_fn=inspecting_loss, epochs=1, batch_size=16,
        mesh=mesh, progress=False)
    assert seen and not seen[0].is_fully_replicated, seen
    assert seen[0].shard_shape((16, 6)) == (2, 6), seen[0]
    kernel = dp.out.kernel[...]
    assert len(kernel.sharding.device_set) == 8, kernel.sharding
    for a, b in zip(jax.tree.leaves(nnx.state(one, nnx.Param)),
                    jax.tree.leaves(nnx.state(dp, nnx.Param)), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-5, atol=2e-6)
    l1 = [h["train_loss"] for h in r1.history]
    l8 = [h["train_loss"] for h in r8.history]
    np.testing.assert_allclose(l1, l8, rtol=2e-5)
    try:
        fit(dp, optax.sgd(0.1), (x, y, w), loss_fn=softmax_loss, batch_size=12, mesh=mesh)
        raise SystemExit("batch_size=12 on 8 devices should fail")
    except ValueError as err:
        assert "multiple of 8 devices" in str(err)
    print("MESH-OK", l8[-1])
    """
)


def test_data_parallel_mesh_matches_one_device():
    env = dict(os.environ)
    env["XLA_FLAGS"] = env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, "-c", _MESH_SCRIPT],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "MESH-OK" in proc.stdout


# ---------------------------------------------------------------- portability


def _trained_scorer():
    x, y, w = _data(q=16)
    m = MLPScorer(4, hidden=(8,), log1p=True, standardize=True, rngs=nnx.Rngs(0))
    m.fit_normalizer(x, w)
    fit(m, optax.adam(0.05), (x, y, w), loss_fn=softmax_loss, epochs=3, batch_size=8,
        progress=False)  # fmt: skip
    return m, x, w


def test_export_roundtrip_symbolic_shapes(tmp_path):
    m, x, w = _trained_scorer()
    b, n = jax.export.symbolic_shape("b, n")
    blob = export_model(
        m, jax.ShapeDtypeStruct((b, n, 4), jnp.float32), jax.ShapeDtypeStruct((b, n), jnp.bool_)
    )
    path = tmp_path / "scorer.jaxexport"
    path.write_bytes(blob)
    scorer = load_exported(path)
    np.testing.assert_allclose(scorer(x, w), m(x, where=w), rtol=1e-6)
    # Another batch/list size through the same artifact, also under jit.
    x2, _, w2 = _data(seed=5, q=3, n=9)
    np.testing.assert_allclose(jax.jit(scorer)(x2, w2), m(x2, where=w2), rtol=1e-6)
    # Export in eval mode from a copy: a dropout model stays in train mode.
    d = MLPScorer(4, hidden=(8,), dropout=0.5, rngs=nnx.Rngs(0))
    d.train()
    blob = export_model(d, x, w)
    d.eval()
    np.testing.assert_allclose(load_exported(blob)(x, w), d(x, where=w), rtol=1e-6)
    assert d.dropout.deterministic is True


def test_export_for_several_platforms():
    m, x, w = _trained_scorer()
    blob = export_model(m, x, w, platforms=("cpu", "cuda", "tpu"))
    assert jax.export.deserialize(bytearray(blob)).platforms == ("cpu", "cuda", "tpu")
    np.testing.assert_allclose(load_exported(blob)(x, w), m(x, where=w), rtol=1e-6)


def test_export_late_interaction_head():
    head = LateInteractionHead(8, dim=4, rngs=nnx.Rngs(0))
    tok = jnp.asarray(np.random.default_rng(0).normal(size=(2, 5, 8)), jnp.float32)
    mask = jnp.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    f = load_exported(export_model(head, tok, mask))
    np.testing.assert_allclose(f(tok, mask), head(tok, mask), rtol=1e-6)


def test_msgpack_checkpoint_roundtrip(tmp_path):
    m, x, w = _trained_scorer()
    path = tmp_path / "scorer.msgpack"
    save_checkpoint(m, path)
    fresh = MLPScorer(4, hidden=(8,), log1p=True, standardize=True, rngs=nnx.Rngs(42))
    assert not np.allclose(fresh(x, where=w), m(x, where=w))
    load_checkpoint(fresh, path)
    np.testing.assert_array_equal(fresh(x, where=w), m(x, where=w))
    np.testing.assert_array_equal(fresh.mean[...], m.mean[...])  # statistics travel too
    with pytest.raises(ValueError, match="has shape"):
        load_checkpoint(MLPScorer(4, hidden=(9,), log1p=True, rngs=nnx.Rngs(0)), path)
    with pytest.raises(ValueError, match="does not match the model"):
        load_checkpoint(MLPScorer(4, hidden=(8, 2), rngs=nnx.Rngs(0)), path)


def test_fit_on_svmlight_files_with_progress(shared_data, monkeypatch):
    from jaxrank.io import read_svmlight
    from jaxrank.nn import _train

    folder = shared_data / "tfranking_libsvm_sample"
    train = read_svmlight(folder / "train.txt", num_features=136)
    valid = read_svmlight(folder / "vali.txt", num_features=136)
    calls = []

    def recording_progress(iterable, **kwargs):
        calls.append(kwargs)
        yield from iterable

    monkeypatch.setattr(_train, "progress", recording_progress)
    m = MLPScorer(136, hidden=(16,), standardize=True, rngs=nnx.Rngs(0))
    m.fit_normalizer(train.features, train.where)
    result = fit(m, optax.adam(1e-3), train, loss_fn=softmax_loss, valid=valid,
                 metric_fn=ndcg_at(5), epochs=3, batch_size=8)  # fmt: skip
    assert calls == [{"desc": "fit"}]  # progress bar drawn by jaxrank._progress
    assert len(result.history) == 3
    assert 0.0 < result.best_metric <= 1.0
    assert evaluate(m, valid, metric_fn=ndcg_at(5)) == pytest.approx(result.best_metric)

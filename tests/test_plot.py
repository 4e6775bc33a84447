"""jaxrank.plot on the Agg backend: the drawn data equal the numbers they plot."""

from __future__ import annotations

import sys
from importlib import resources

import matplotlib

matplotlib.use("Agg")

import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import pytest

from jaxrank import plot
from jaxrank.eval import evaluate
from jaxrank.io import Qrels, Run, read_qrels, read_run
from jaxrank.soft import soft_rank

DATA = resources.files("jaxrank.data")


@pytest.fixture(scope="module")
def demo():
    with (
        resources.as_file(DATA / "demo.qrels") as q,
        resources.as_file(DATA / "demo-bm25.run") as a,
        resources.as_file(DATA / "demo-hybrid.run") as b,
    ):
        return read_qrels(q), read_run(a), read_run(b)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_per_query_differences_matches_evaluate(demo):
    qrels, a, b = demo
    ax = plot.per_query_differences(a, b, qrels, measure="ndcg_cut.10")
    ea, eb = (evaluate(qrels, r, ["ndcg_cut.10"]) for r in (a, b))
    assert ea.query_ids == eb.query_ids
    expected = np.sort(eb.per_query["ndcg_cut_10"] - ea.per_query["ndcg_cut_10"])
    heights = np.array([p.get_height() for p in ax.patches])
    np.testing.assert_allclose(heights, expected, atol=1e-12)
    assert isinstance(ax, matplotlib.axes.Axes) and isinstance(ax.figure, matplotlib.figure.Figure)
    assert "hybrid vs bm25" in ax.get_title()
    assert f"{expected.mean():+.4f}" in ax.get_title()
    # Evaluation objects are accepted as they are (no qrels needed), into a given axes.
    _, ax2 = plt.subplots()
    out = plot.per_query_differences(ea, eb, measure="ndcg_cut.10", ax=ax2, names=("x", "y"))
    assert out is ax2
    np.testing.assert_allclose([p.get_height() for p in ax2.patches], expected, atol=1e-12)


def test_per_query_differences_errors(demo):
    qrels, a, b = demo
    with pytest.raises(ValueError, match="pass qrels"):
        plot.per_query_differences(a, b)
    with pytest.raises(TypeError, match="system_b must be"):
        plot.per_query_differences(a, {"q": 1.0}, qrels)
    ea = evaluate(qrels, a, ["map", "P.5"])
    with pytest.raises(ValueError, match="no per-query values"):
        plot.per_query_differences(ea, ea, measure="ndcg")
    other = Run.from_dict({"zz": {"d": 1.0}})
    with pytest.raises(ValueError, match="share no evaluated query"):
        plot.per_query_differences(a, other, Qrels.from_dict({**qrels.to_dict(), "zz": {"d": 1}}))


def test_precision_recall_curves(demo):
    qrels, a, b = demo
    ax = plot.precision_recall(qrels, [a, b])
    assert [line.get_label() for line in ax.lines] == ["bm25", "hybrid"]
    for line, run in zip(ax.lines, (a, b), strict=True):
        res = evaluate(qrels, run, ["iprec_at_recall"])
        np.testing.assert_allclose(line.get_xdata(), np.linspace(0, 1, 11))
        np.testing.assert_allclose(line.get_ydata(), list(res.summary.values()), atol=1e-12)
        assert np.all(np.diff(line.get_ydata()) <= 1e-12)  # interpolated: non-increasing
    assert len(plot.precision_recall(qrels, a).lines) == 1
    with pytest.raises(TypeError, match="runs must be"):
        plot.precision_recall(qrels, [])


def test_soft_rank_vs_temperature():
    x = jnp.array([0.3, 0.1, 0.2, 0.25])
    eps = np.array([1e-4, 1e-2, 1.0, 100.0])
    ax = plot.soft_rank_vs_temperature(x, strengths=eps)
    assert len(ax.lines) == 4 and ax.get_xscale() == "log"
    curves = np.stack([line.get_ydata() for line in ax.lines], axis=1)  # [T, n]
    for t, e in enumerate(eps):
        expected = soft_rank(x, regularization_strength=float(e), direction="descending")
        np.testing.assert_allclose(curves[t], expected, rtol=1e-6)
    # limits: hard descending ranks at small eps, mean rank (n+1)/2 = 2.5 at large eps
    np.testing.assert_allclose(curves[0], [1, 4, 3, 2], atol=1e-4)
    np.testing.assert_allclose(curves[-1], 2.5, atol=1e-2)
    # default strengths; kl regularization; ascending
    ax = plot.soft_rank_vs_temperature(x, num=6, regularization="kl", direction="ascending")
    assert len(ax.lines[0].get_xdata()) == 6
    with pytest.raises(ValueError, match="strengths"):
        plot.soft_rank_vs_temperature(x, strengths=[0.0, 1.0])
    with pytest.raises(ValueError, match="x must be"):
        plot.soft_rank_vs_temperature(jnp.ones((2, 2)))


def test_missing_matplotlib_message(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        plot.soft_rank_vs_temperature(jnp.array([1.0, 2.0]), num=3)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        plot.precision_recall(Qrels.from_dict({"q": {"d": 1}}), Run.from_dict({"q": {"d": 1.0}}))

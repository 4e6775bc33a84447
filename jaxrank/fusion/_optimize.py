"""Choosing fusion parameters on training queries: grid search and gradient ascent.

* :func:`grid_search` -- try every configuration of a grid (RRF ``k``, run weights on
  a simplex of step 0.1, as ranx's optimizers do), score each by trec_eval nDCG@10
  (:mod:`jaxrank.eval`) on the training queries, return the best. Weights and ``k``
  are traced arrays, so the whole grid runs on one compiled function.
* :func:`learn_weights` -- maximize a differentiable NDCG of the fused scores by
  gradient ascent with optax: run weights (softmax-parametrized, summing to M) and,
  for RRF, ``k`` (softplus-parametrized). The approximate NDCG replaces each
  candidate's rank by the sigmoid approximation of Qin, Liu & Li (2010),
  :math:`\\hat r_i = 1 + \\sum_{j \\ne i} \\sigma((f_j - f_i)/\\tau)`, on the fused
  scores standardized per query, and divides by the ideal DCG of the judgments.

Example:
    >>> from jaxrank.fusion import grid_search
    >>> runs = [{"q": {"a": 3.0, "b": 2.0}}, {"q": {"b": 0.9, "c": 0.5}}]
    >>> best = grid_search(runs, {"q": {"b": 1}}, method="wsum")
    >>> best["ndcg_cut_10"]
    1.0
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxrank.fusion._core import _gather_candidates
from jaxrank.fusion._host import FusionInput, _presort, fuse_input, runs_to_arrays, to_run
from jaxrank.fusion._methods import canonical_method, combine
from jaxrank.fusion._normalize import canonical_norm
from jaxrank.fusion._train import qrels_to_dict

RRF_K_GRID = (1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100)


def _subset(x: FusionInput, queries: Sequence[str] | None) -> FusionInput:
    if queries is None:
        return x
    keep = np.isin(x.query_ids, np.asarray(list(queries), dtype=str))
    return FusionInput(
        x.query_ids[keep],
        x.vocab,
        x.doc_ids[keep],
        x.scores[keep],
        x.where[keep],
        x.ranks[keep],
        x.has_file_ranks,
        x.names,
    )


def _weight_grid(M: int, step: float = 0.1):
    n = round(1 / step)
    for combo in itertools.product(range(n + 1), repeat=M):
        if sum(combo) == n and any(combo):
            yield tuple(c / n for c in combo)


def _ndcg10(x: FusionInput, out, qrels_obj) -> float:
    from jaxrank.eval import evaluate

    run = to_run(x, *out[:3])
    return float(evaluate(qrels_obj, run, ["ndcg_cut.10"]).summary["ndcg_cut_10"])


def grid_search(
    runs: Sequence[Any] | FusionInput,
    qrels: Any,
    *,
    method: str = "wsum",
    norm: str | None = "min-max",
    queries: Sequence[str] | None = None,
    rrf_k_grid: Sequence[float] = RRF_K_GRID,
    weight_step: float = 0.1,
    return_all: bool = False,
) -> dict[str, Any]:
    """Best parameters on ``queries`` by trec_eval nDCG@10.

    Args:
      runs: runs (dicts, :class:`jaxrank.io.Run`, paths) or a :class:`FusionInput`.
      qrels: ``{qid: {docid: rel}}`` or :class:`jaxrank.io.Qrels`.
      method: ``wsum``, ``rrf`` (weights and k), ``wmnz``, ``mixed``, ``w_bordafuse``.
      norm: normalization, as in :func:`jaxrank.fusion.fuse`.
      queries: training query ids (default: all).
      rrf_k_grid: RRF constants tried (RRF only).
      weight_step: step of the weight simplex.
      return_all: also return every configuration's score under ``"all"``.

    Returns:
      ``{"weights": [...], "rrf_k": k (RRF), "ndcg_cut_10": best score}``.
    """
    from jaxrank.io import Qrels

    method = canonical_method(method)
    x = runs if isinstance(runs, FusionInput) else runs_to_arrays(runs)
    x = _subset(x, queries)
    qrels_obj = Qrels.from_dict(qrels_to_dict(qrels))
    M = x.doc_ids.shape[1]
    ks = rrf_k_grid if method == "rrf" else (None,)
    results = []
    for k in ks:
        for w in _weight_grid(M, weight_step):
            extra = {} if k is None else {"rrf_k": float(k)}
            out = fuse_input(x, method=method, norm=norm, k=10, weights=w, **extra)
            results.append(((w, k), _ndcg10(x, out, qrels_obj)))
    (w, k), score = max(results, key=lambda r: r[1])
    best: dict[str, Any] = {"weights": list(w), "ndcg_cut_10": score}
    if k is not None:
        best["rrf_k"] = k
    if return_all:
        best["all"] = results
    return best


@partial(jax.jit, static_argnames=("method", "norm"))
def _fused_candidates(doc_ids, scores, where, params, *, method, norm):
    """[Q, M, K] -> fused scores, validity and doc index of every candidate slot."""

    def one(d, s, w):
        cand, slot_doc = _gather_candidates(
            d, s, w, None, norm=norm, degenerate=None, rank_source="score", presorted=True
        )
        fused, _ = combine(method, cand, params)
        return fused, cand.valid, slot_doc

    return jax.vmap(one)(doc_ids, scores, where)


def approx_ndcg(fused, labels, valid, ideal_dcg, temperature: float = 0.1):
    r"""Mean approximate NDCG over queries (Qin et al. 2010), differentiable in ``fused``.

    Args:
      fused: ``[Q, N]`` scores; labels: ``[Q, N]`` gains; valid: ``[Q, N]`` mask;
      ideal_dcg: ``[Q]`` ideal DCG of each query's judgments (0: query skipped).
      temperature: sigmoid temperature on scores standardized per query.

    The rank of item ``i`` is approximated by :math:`\hat r_i = 1/2 + \sum_j
    \sigma((z_j - z_i) / T)` (the ``j = i`` term gives the other 1/2), and
    :math:`DCG = \sum_i g_i / \log_2(1 + \hat r_i)`.

    Example (hand calculation: far-apart scores, so :math:`\hat r` are the hard ranks
    1, 2, 3; the relevant item first gives DCG 1 = ideal; last, 1 / log2(4) = 0.5):
      >>> import jax.numpy as jnp
      >>> fused, ok = jnp.array([[3.0, 2.0, 1.0]]), jnp.ones((1, 3), bool)
      >>> round(float(approx_ndcg(fused, jnp.array([[1.0, 0, 0]]), ok, jnp.ones(1), 0.01)), 4)
      1.0
      >>> round(float(approx_ndcg(fused, jnp.array([[0, 0, 1.0]]), ok, jnp.ones(1), 0.01)), 4)
      0.5
    """
    n = jnp.maximum(jnp.sum(valid, -1, keepdims=True), 1)
    mean = jnp.sum(jnp.where(valid, fused, 0.0), -1, keepdims=True) / n
    var = jnp.sum(jnp.where(valid, (fused - mean) ** 2, 0.0), -1, keepdims=True) / n
    z = (fused - mean) / jnp.sqrt(var + 1e-12)
    diff = (z[:, None, :] - z[:, :, None]) / temperature  # [Q, i, j]: f_j - f_i
    pair = valid[:, None, :] & valid[:, :, None]
    rank = 0.5 + jnp.sum(jnp.where(pair, jax.nn.sigmoid(diff), 0.0), -1)
    dcg = jnp.sum(jnp.where(valid, labels / jnp.log2(1.0 + rank), 0.0), -1)
    ok = ideal_dcg > 0
    return jnp.sum(jnp.where(ok, dcg / jnp.where(ok, ideal_dcg, 1.0), 0.0)) / jnp.maximum(
        jnp.sum(ok), 1
    )


def learn_weights(
    runs: Sequence[Any] | FusionInput,
    qrels: Any,
    *,
    method: str = "wsum",
    norm: str | None = "min-max",
    queries: Sequence[str] | None = None,
    steps: int = 200,
    learning_rate: float = 0.05,
    temperature: float = 0.1,
    learn_k: bool = True,
    init_k: float = 60.0,
) -> dict[str, Any]:
    """Learn run weights (and RRF's k) by gradient ascent on approximate NDCG.

    Args:
      runs, qrels, method, norm, queries: as in :func:`grid_search` (``method`` is
        ``wsum`` or ``rrf``, or another weighted method: ``wmnz``, ``mixed``,
        ``w_bordafuse``).
      steps: optax Adam steps; learning_rate: Adam's step size.
      temperature: approximate-rank temperature.
      learn_k: also learn RRF's k (RRF only); init_k: its starting value.

    Returns:
      ``{"weights": [...], "rrf_k": k (RRF), "objective": [per-step approx NDCG]}``.
    """
    try:
        import optax
    except ImportError as err:  # optax is in jaxrank's allowed runtime set, not required
        raise ImportError("learn_weights needs optax: pip install optax") from err

    method = canonical_method(method)
    norm = canonical_norm(norm)
    x = runs if isinstance(runs, FusionInput) else runs_to_arrays(runs)
    x = _subset(x, queries)
    qd = qrels_to_dict(qrels)
    d, s = _presort(x.doc_ids, x.scores, x.where)
    d, s, w = jnp.asarray(d), jnp.asarray(s, jnp.float32), jnp.asarray(x.where)
    M = d.shape[1]
    _, valid, slot_doc = _fused_candidates(
        d, s, w, {"weights": jnp.ones(M), "k": 60.0}, method=method, norm=norm
    )
    slot_doc, valid = np.asarray(slot_doc), np.asarray(valid)
    labels = np.zeros(slot_doc.shape, np.float32)
    ideal = np.zeros(len(x.query_ids), np.float32)
    names = x.vocab[np.where(valid, slot_doc, 0)]
    for qi, q in enumerate(x.query_ids.tolist()):
        rel = qd.get(q, {})
        gains = sorted((r for r in rel.values() if r > 0), reverse=True)
        ideal[qi] = sum(g / np.log2(i + 2) for i, g in enumerate(gains))
        labels[qi] = [
            max(rel.get(n, 0), 0) if v else 0 for n, v in zip(names[qi], valid[qi], strict=True)
        ]
    labels_j, valid_j, ideal_j = jnp.asarray(labels), jnp.asarray(valid), jnp.asarray(ideal)

    theta = {"w": jnp.zeros(M), "k": jnp.asarray(np.log(np.expm1(init_k)), jnp.float32)}

    def objective(th, data):
        d, s, w, labels, valid, ideal = data
        weights = jax.nn.softmax(th["w"]) * M
        k = jax.nn.softplus(th["k"]) if (learn_k and method == "rrf") else init_k
        params = {"weights": weights, "k": k}
        fused, _, _ = _fused_candidates(d, s, w, params, method=method, norm=norm)
        return approx_ndcg(fused, labels, valid, ideal, temperature)

    opt = optax.adam(learning_rate)
    state = opt.init(theta)

    @jax.jit  # the data are arguments, not constants: nothing to constant-fold
    def step(th, st, data):
        val, grad = jax.value_and_grad(objective)(th, data)
        grad = jax.tree.map(lambda g: -g, grad)
        upd, st = opt.update(grad, st, th)
        return optax.apply_updates(th, upd), st, val

    data = (d, s, w, labels_j, valid_j, ideal_j)
    history = []
    for _ in range(steps):
        theta, state, val = step(theta, state, data)
        history.append(float(val))
    out: dict[str, Any] = {
        "weights": (jax.nn.softmax(theta["w"]) * M).tolist(),
        "objective": history,
    }
    if method == "rrf":
        out["rrf_k"] = float(jax.nn.softplus(theta["k"])) if learn_k else init_k
    return out

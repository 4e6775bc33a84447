"""Learning-to-rank experiment: jaxrank.nn.MLPScorer vs LightGBM lambdarank.

Data: LightGBM's ``examples/lambdarank`` files (``../shared/data/lightgbm_lambdarank``):
``rank.train`` (3,005 rows / 201 queries) and ``rank.test`` (768 / 50), 300 sparse
features in [0, 1], labels 0-4. Metric: NDCG@1/3/5/10 on ``rank.test`` with gain
``2^rel - 1`` and discount ``1/log2(1 + rank)`` (LightGBM's definition; the script
cross-checks its own NDCG against ranx ``ndcg_burges`` on the final scores).

jaxrank: for each seed, 20% of the training queries are held out for early stopping
(on validation NDCG@10), an ``MLPScorer`` with standardised features is trained with
Adam through :func:`jaxrank.nn.fit`, and the best epoch is scored on ``rank.test``.
Losses are looked up in ``LOSSES``: add ``jaxrank.losses`` entries there (any
``loss_fn(scores, labels, where=...) -> scalar``) and select them with ``--losses``.

LightGBM (if installed, ``pip install lightgbm``) runs side by side with the
``train.conf`` parameters listed in SOURCE.md (published: 0.6038 / 0.6299 / 0.6696 /
0.7423), on the same arrays (zero-based columns, as LightGBM's own reader).

Usage::

    PYTHONPATH=. python bench/ltr_experiment.py                 # 5 seeds, softmax
    PYTHONPATH=. python bench/ltr_experiment.py --seeds 2 --losses softmax,softmax_gain
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jaxrank import losses as L
from jaxrank.io import read_svmlight
from jaxrank.nn import MLPScorer, fit, predict

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cpu_model, data_dir

KS = (1, 3, 5, 10)
PUBLISHED_LIGHTGBM = {1: 0.6038, 3: 0.6299, 5: 0.6696, 10: 0.7423}  # SOURCE.md


# ---------------------------------------------------------------- losses


def _softmax_xent(scores, targets, where):
    """Mean over lists with positive target mass of -sum_i p_i log softmax(s)_i."""
    logp = jax.nn.log_softmax(jnp.where(where, scores, -jnp.inf), axis=-1)
    t = jnp.where(where, targets, 0.0)
    total = t.sum(-1, keepdims=True)
    per_list = -jnp.where(where, t / jnp.maximum(total, 1e-9) * logp, 0.0).sum(-1)
    has = total[..., 0] > 0
    return jnp.where(has, per_list, 0.0).sum() / jnp.maximum(has.sum(), 1)


def softmax_loss(scores, labels, *, where):
    """ListNet softmax cross-entropy with targets proportional to the labels."""
    return _softmax_xent(scores, labels, where)


def softmax_gain_loss(scores, labels, *, where):
    """Softmax cross-entropy with targets proportional to the gains 2^rel - 1."""
    return _softmax_xent(scores, 2.0**labels - 1.0, where)


def _jaxrank(fn, **options):
    def loss(scores, labels, *, where):
        return fn(scores, labels, where, **options)

    return loss


# name -> loss_fn(scores, labels, *, where): jaxrank.losses with the options used here.
LOSSES: dict[str, Callable] = {
    "softmax": softmax_loss,
    "softmax_gain": softmax_gain_loss,
    "approx_ndcg": _jaxrank(L.approx_ndcg_loss),
    "approx_ndcg@10": _jaxrank(L.approx_ndcg_loss, k=10),
    # LambdaRank: RankNet (pairwise logistic) weighted by |delta NDCG| of each swap.
    "lambdarank_ndcg": _jaxrank(L.pairwise_logistic_loss, lambdaweight_fn=L.ndcg_lambdaweight),
    # LambdaLoss NDCG-Loss2 (Wang et al. 2018): logistic with normalized dcg2 weights.
    "lambdaloss_ndcg2": _jaxrank(
        L.pairwise_logistic_loss,
        lambdaweight_fn=functools.partial(L.dcg2_lambdaweight, normalize=True),
    ),
    "soft_rank_ndcg": _jaxrank(L.soft_rank_ndcg_loss),
    "soft_rank_ndcg_rel": _jaxrank(
        L.soft_rank_ndcg_loss, regularization_strength=0.1, relative_strength=True
    ),
    "neural_ndcg": _jaxrank(L.neural_ndcg_loss),
    "listmle_exp2": _jaxrank(L.plackett_luce_loss),
}


# ---------------------------------------------------------------- metric


def ndcg(scores, labels, where, k: int):
    """Per-list NDCG@k (gain 2^rel - 1); lists without a relevant item score 1, as in
    LightGBM. Ties keep the input order (stable sort)."""
    n = scores.shape[-1]
    s = jnp.where(where, scores, -jnp.inf)
    y = jnp.where(where, labels, 0.0)
    ranks = jnp.arange(n)
    disc = jnp.where(ranks < k, 1.0 / jnp.log2(ranks + 2.0), 0.0)
    gain = 2.0**y - 1.0
    dcg = (jnp.take_along_axis(gain, jnp.argsort(-s, axis=-1, stable=True), -1) * disc).sum(-1)
    idcg = (jnp.take_along_axis(gain, jnp.argsort(-y, axis=-1, stable=True), -1) * disc).sum(-1)
    return jnp.where(idcg > 0, dcg / jnp.where(idcg > 0, idcg, 1.0), 1.0)


def ndcg_metric(k: int):
    def metric(scores, labels, *, where):
        return ndcg(scores, labels, where, k)

    return metric


def test_ndcg(scores, test) -> dict[int, float]:
    s, y, w = jnp.asarray(scores), jnp.asarray(test.labels), jnp.asarray(test.where)
    return {k: float(np.mean(ndcg(s, y, w, k))) for k in KS}


# ---------------------------------------------------------------- runners


def run_jaxrank(loss_name: str, seed: int, train, test, args) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)
    q = train.num_queries
    perm = rng.permutation(q)
    n_valid = round(args.valid_fraction * q)
    vi, ti = np.sort(perm[:n_valid]), np.sort(perm[n_valid:])
    tr = (train.features[ti], train.labels[ti], train.where[ti])
    va = (train.features[vi], train.labels[vi], train.where[vi])

    def new_model(data):
        model = MLPScorer(
            train.num_features,
            hidden=args.hidden,
            dropout=args.dropout,
            log1p=args.log1p,
            standardize=True,
            rngs=nnx.Rngs(params=seed, dropout=seed + 1),
        )
        model.fit_normalizer(data[0], data[2])
        return model

    def tx():
        return optax.adamw(args.lr, weight_decay=args.weight_decay)

    model = new_model(tr)
    common = dict(loss_fn=LOSSES[loss_name], batch_size=args.batch_size, seed=seed)
    result = fit(
        model,
        tx(),
        tr,
        valid=va,
        metric_fn=ndcg_metric(10),
        epochs=args.epochs,
        patience=args.patience,
        progress=not args.quiet,
        **common,
    )
    if args.refit:
        # Retrain on all training queries for the number of epochs validation chose.
        full = (train.features, train.labels, train.where)
        model = new_model(full)
        fit(model, tx(), full, epochs=result.best_epoch + 1, progress=False, **common)
    scores = predict(model, test.features, test.where)
    info = {"best_epoch": result.best_epoch, "epochs": len(result.history)}
    return test_ndcg(scores, test), info | {"scores": scores}


def run_lightgbm(train_lgb, test_lgb, test) -> dict | None:
    try:
        import lightgbm as lgb
    except ImportError:
        return None
    params = {  # examples/lambdarank/train.conf, as listed in SOURCE.md
        "objective": "lambdarank",
        "metric": "ndcg",
        "num_iterations": 100,
        "learning_rate": 0.1,
        "num_leaves": 31,
        "max_bin": 255,
        "feature_fraction": 1.0,
        "bagging_freq": 1,
        "bagging_fraction": 0.9,
        "min_data_in_leaf": 50,
        "min_sum_hessian_in_leaf": 5.0,
        "seed": 0,
        "deterministic": True,
        "num_threads": 1,
        "verbose": -1,
    }
    x = train_lgb.features[train_lgb.where]
    y = train_lgb.labels[train_lgb.where]
    booster = lgb.train(params, lgb.Dataset(x, y, group=train_lgb.sizes))
    flat = booster.predict(test_lgb.features[test_lgb.where])
    scores = np.zeros(test.where.shape, np.float32)
    scores[test.where] = flat
    return test_ndcg(scores, test) | {"version": lgb.__version__}


def _ensemble(scores: list[np.ndarray], where: np.ndarray) -> np.ndarray:
    """Mean over models of the scores standardised per list (valid items)."""
    out = np.zeros(where.shape, np.float64)
    for s in scores:
        s = np.where(where, s, 0.0).astype(np.float64)
        count = np.maximum(where.sum(-1, keepdims=True), 1)
        mean = s.sum(-1, keepdims=True) / count
        std = np.sqrt((np.where(where, s - mean, 0.0) ** 2).sum(-1, keepdims=True) / count)
        out += np.where(where, (s - mean) / np.where(std > 0, std, 1.0), 0.0)
    return (out / len(scores)).astype(np.float32)


def ranx_check(scores, test) -> float | None:
    """Largest |ours - ranx ndcg_burges@k| over KS, or None without ranx."""
    try:
        from ranx import Qrels, Run, evaluate
    except ImportError:
        return None
    qrels, run = {}, {}
    for q in range(test.num_queries):
        n = int(test.sizes[q])
        qrels[str(q)] = {f"d{i}": int(test.labels[q, i]) for i in range(n)}
        run[str(q)] = {f"d{i}": float(scores[q, i]) for i in range(n)}
    got = evaluate(Qrels(qrels), Run(run), [f"ndcg_burges@{k}" for k in KS])
    ours = test_ndcg(scores, test)
    return max(abs(ours[k] - got[f"ndcg_burges@{k}"]) for k in KS)


# ---------------------------------------------------------------- main


def _machine() -> str:
    cpu = cpu_model()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{cpu}, {os.cpu_count()} cores, load {load:.1f}, {platform.python_version()}, "
        f"jax {jax.__version__} ({jax.default_backend()})"
    )


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=None, help="lightgbm_lambdarank folder")
    p.add_argument("--losses", default="softmax", help=f"comma list of {sorted(LOSSES)}")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--patience", type=int, default=25)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=1e-2)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--hidden", default="128,64", help="hidden widths, e.g. 128,64")
    p.add_argument("--log1p", action="store_true", help="signed log1p before standardising")
    p.add_argument("--valid-fraction", type=float, default=0.2)
    p.add_argument(
        "--refit",
        action="store_true",
        help="after early stopping, retrain on all training queries for the chosen epochs",
    )
    p.add_argument("--no-lightgbm", action="store_true")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    args.hidden = tuple(int(h) for h in args.hidden.split(",") if h)
    losses = [name.strip() for name in args.losses.split(",") if name.strip()]
    unknown = [name for name in losses if name not in LOSSES]
    if unknown:
        p.error(f"unknown losses {unknown}; known: {sorted(LOSSES)}")

    data = args.data or data_dir() / "lightgbm_lambdarank"
    train = read_svmlight(data / "rank.train", num_features=300)
    test = read_svmlight(data / "rank.test", num_features=300)
    print(f"machine: {_machine()}")
    print(
        f"data: train {int(train.where.sum())} rows / {train.num_queries} queries, "
        f"test {int(test.where.sum())} / {test.num_queries}, {train.num_features} features"
    )

    rows = []
    lgb_result = None
    if not args.no_lightgbm:
        start = time.perf_counter()
        lgb_result = run_lightgbm(
            read_svmlight(data / "rank.train", num_features=301, zero_based=True),
            read_svmlight(data / "rank.test", num_features=301, zero_based=True),
            test,
        )
        if lgb_result is not None:
            print(f"lightgbm {lgb_result['version']}: {time.perf_counter() - start:.1f} s")
    for loss_name in losses:
        per_seed, infos = [], []
        start = time.perf_counter()
        for seed in range(args.seeds):
            res, info = run_jaxrank(loss_name, seed, train, test, args)
            per_seed.append([res[k] for k in KS])
            infos.append(info)
            print(
                f"{loss_name} seed {seed}: "
                + " ".join(f"@{k}={res[k]:.4f}" for k in KS)
                + f"  (best epoch {info['best_epoch']} of {info['epochs']})"
            )
        elapsed = time.perf_counter() - start
        gap = ranx_check(infos[0]["scores"], test)
        if gap is not None:
            print(f"{loss_name}: |NDCG - ranx ndcg_burges| max {gap:.1e} (seed 0)")
        arr = np.asarray(per_seed)
        ens = test_ndcg(_ensemble([info["scores"] for info in infos], test.where), test)
        epochs = [info["best_epoch"] for info in infos]
        rows.append((loss_name, arr.mean(0), arr.std(0), elapsed, ens, epochs))

    hidden = ",".join(map(str, args.hidden))
    print()
    print(
        f"MLPScorer(300 -> {hidden} -> 1, standardised, dropout {args.dropout}), AdamW "
        f"lr {args.lr} wd {args.weight_decay}, batch {args.batch_size} queries, early "
        f"stopping on NDCG@10 of {args.valid_fraction:.0%} of the training queries "
        f"(patience {args.patience}); mean ± std over {args.seeds} seeds; test NDCG "
        "(gain 2^rel-1)."
    )
    print()
    print("| model | loss | NDCG@1 | NDCG@3 | NDCG@5 | NDCG@10 | time |")
    print("|---|---|---|---|---|---|---|")
    pub = " | ".join(f"{PUBLISHED_LIGHTGBM[k]:.4f}" for k in KS)
    print(f"| LightGBM lambdarank (published, SOURCE.md) | lambdarank | {pub} | |")
    if lgb_result is not None:
        ours = " | ".join(f"{lgb_result[k]:.4f}" for k in KS)
        print(f"| LightGBM {lgb_result['version']} (this run) | lambdarank | {ours} | |")
    for name, mean, std, elapsed, _, _ in rows:
        cells = " | ".join(f"{m:.4f} ± {s:.4f}" for m, s in zip(mean, std, strict=True))
        print(f"| jaxrank MLPScorer | {name} | {cells} | {elapsed:.0f} s |")
    if args.seeds > 1:
        for name, _, _, _, ens, _ in rows:
            cells = " | ".join(f"{ens[k]:.4f}" for k in KS)
            print(f"| jaxrank, ensemble of the {args.seeds} seeds | {name} | {cells} | |")
    print()
    for name, *_, epochs in rows:
        print(f"{name}: best epochs {epochs}")


if __name__ == "__main__":
    main()

"""Training ranking models with optax: a jit-compiled step, evaluation, early stopping.

The pieces compose; nothing here knows which loss or metric it runs:

* ``loss_fn(scores, labels, *, where) -> scalar`` -- any ranking loss with the
  optax/rax calling convention (``jaxrank.losses``, ``rax.softmax_loss``, ...).
* ``metric_fn(scores, labels, *, where) -> [batch]`` -- a per-list metric (for rax:
  ``functools.partial(rax.ndcg_metric, topn=10, reduce_fn=None)``). Evaluation averages
  it over the lists that hold at least one real item.

:func:`train_step` is one ``nnx.jit``-compiled optimizer update; :func:`fit` loops over
epochs of shuffled batches, evaluates on a validation split, stops early and restores
the best parameters; with ``mesh=`` every batch is sharded over the mesh's ``"data"``
axis (data parallelism; the parameters are replicated and XLA all-reduces the
gradients), which gives the same parameters as one device up to float rounding.

Example:
    >>> import jax, jax.numpy as jnp, numpy as np, optax
    >>> from flax import nnx
    >>> from jaxrank.nn import MLPScorer, fit
    >>> def softmax_loss(scores, labels, *, where):
    ...     logp = jax.nn.log_softmax(jnp.where(where, scores, -jnp.inf), axis=-1)
    ...     p = jnp.where(where, labels, 0) / jnp.maximum(
    ...         jnp.where(where, labels, 0).sum(-1, keepdims=True), 1e-9)
    ...     return -jnp.where(where, p * logp, 0).sum(-1).mean()
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(32, 6, 3)).astype("float32")
    >>> y = (x[..., 0] > 0.5).astype("float32")                 # feature 0 is relevance
    >>> where = np.ones((32, 6), bool)
    >>> model = MLPScorer(3, hidden=(8,), rngs=nnx.Rngs(0))
    >>> result = fit(model, optax.adam(0.05), (x, y, where), loss_fn=softmax_loss,
    ...              epochs=20, batch_size=8, progress=False)
    >>> bool(result.history[-1]["train_loss"] < result.history[0]["train_loss"])
    True
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxrank._progress import progress

__all__ = [
    "FitResult",
    "LossFn",
    "MetricFn",
    "evaluate",
    "fit",
    "predict",
    "train_step",
]


class LossFn(Protocol):
    def __call__(self, scores: jax.Array, labels: jax.Array, *, where: jax.Array) -> jax.Array:
        """Scalar loss of ``scores [B, L]`` against ``labels [B, L]``."""
        ...


class MetricFn(Protocol):
    def __call__(self, scores: jax.Array, labels: jax.Array, *, where: jax.Array) -> jax.Array:
        """Per-list metric ``[B]`` (higher is better)."""
        ...


def _as_arrays(data, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Accept a :class:`jaxrank.io.RankingData`-like object or ``(features, labels, where)``."""
    if hasattr(data, "features"):
        x, y, w = data.features, data.labels, data.where
    else:
        try:
            x, y, w = data
        except (TypeError, ValueError):
            raise TypeError(
                f"{name} must be a RankingData or a (features, labels, where) tuple"
            ) from None
    x, y, w = np.asarray(x, np.float32), np.asarray(y, np.float32), np.asarray(w, bool)
    if x.ndim != 3 or y.shape != x.shape[:2] or w.shape != x.shape[:2]:
        raise ValueError(
            f"{name}: expected features [Q, L, F], labels [Q, L], where [Q, L]; got "
            f"{x.shape}, {y.shape}, {w.shape}"
        )
    return x, y, w


@nnx.jit(static_argnames=("loss_fn",))
def train_step(
    model: nnx.Module,
    optimizer: nnx.Optimizer,
    features: jax.Array,
    labels: jax.Array,
    where: jax.Array,
    *,
    loss_fn: LossFn,
) -> jax.Array:
    """One optimizer update on a batch; returns the loss before the update.

    .. math:: \\theta \\leftarrow \\theta + \\operatorname{tx}(\\nabla_\\theta
        \\operatorname{loss}(f_\\theta(x), y; \\text{where}))

    Args:
        model: an NNX module called as ``model(features, where=where) -> [B, L]``.
        optimizer: ``nnx.Optimizer(model, tx, wrt=nnx.Param)``.
        features: ``[B, L, F]``; labels, where: ``[B, L]``.
        loss_fn: static; ``loss_fn(scores, labels, where=where) -> scalar``.

    Example:
        >>> import optax, jax.numpy as jnp
        >>> from flax import nnx
        >>> from jaxrank.nn import MLPScorer, train_step
        >>> m = MLPScorer(2, hidden=(), rngs=nnx.Rngs(0))
        >>> opt = nnx.Optimizer(m, optax.sgd(0.1), wrt=nnx.Param)
        >>> mse = lambda s, y, *, where: jnp.mean(jnp.where(where, (s - y) ** 2, 0))
        >>> x, y, w = jnp.ones((1, 2, 2)), jnp.ones((1, 2)), jnp.ones((1, 2), bool)
        >>> l0 = train_step(m, opt, x, y, w, loss_fn=mse)
        >>> bool(train_step(m, opt, x, y, w, loss_fn=mse) < l0)
        True
    """

    def objective(m):
        return loss_fn(m(features, where=where), labels, where=where)

    loss, grads = nnx.value_and_grad(objective)(model)
    optimizer.update(model, grads)
    return loss


@nnx.jit
def _scores(model, features, where):
    return model(features, where=where)


def predict(model: nnx.Module, features, where, *, batch_size: int = 256) -> np.ndarray:
    """Scores ``[Q, L]`` of ``features [Q, L, F]`` computed in fixed-size chunks.

    The last chunk is padded with masked lists so that one compiled shape serves all.

    Example:
        >>> import numpy as np
        >>> from flax import nnx
        >>> from jaxrank.nn import MLPScorer, predict
        >>> m = MLPScorer(2, hidden=(), rngs=nnx.Rngs(0))
        >>> x, w = np.ones((5, 3, 2), "float32"), np.ones((5, 3), bool)
        >>> bool(np.allclose(predict(m, x, w, batch_size=2), m(x, where=w)))
        True
    """
    x, w = np.asarray(features, np.float32), np.asarray(where, bool)
    n = x.shape[0]
    out = np.zeros(w.shape, np.float32)
    bs = min(batch_size, n) if n else 1
    for start in range(0, n, bs):
        xb, wb = _pad_rows(x[start : start + bs], bs), _pad_rows(w[start : start + bs], bs)
        out[start : start + bs] = np.asarray(_scores(model, xb, wb))[: min(bs, n - start)]
    return out


def evaluate(
    model: nnx.Module,
    data,
    *,
    metric_fn: MetricFn,
    batch_size: int = 256,
) -> float:
    """Mean of ``metric_fn`` over the lists of ``data`` that hold a real item.

    Args:
        model: scorer ``model(features, where=where) -> [B, L]``.
        data: :class:`jaxrank.io.RankingData` or ``(features, labels, where)``.
        metric_fn: ``metric_fn(scores, labels, where=where) -> [B]`` per-list values.
        batch_size: lists scored per compiled call.

    Example:
        >>> import jax.numpy as jnp, numpy as np
        >>> from flax import nnx
        >>> from jaxrank.nn import MLPScorer, evaluate
        >>> m = MLPScorer(1, hidden=(), rngs=nnx.Rngs(0))
        >>> top_is_relevant = lambda s, y, *, where: (
        ...     y[jnp.arange(len(s)), jnp.argmax(jnp.where(where, s, -jnp.inf), -1)] > 0)
        >>> x = np.array([[[1.0], [2.0]], [[3.0], [0.0]]], "float32")
        >>> y = np.array([[1.0, 0.0], [1.0, 0.0]], "float32")
        >>> evaluate(m, (x, y, np.ones((2, 2), bool)), metric_fn=top_is_relevant)
        0.5
    """
    x, y, w = _as_arrays(data, "data")
    scores = predict(model, x, w, batch_size=batch_size)
    values = np.asarray(metric_fn(jnp.asarray(scores), jnp.asarray(y), where=jnp.asarray(w)))
    if values.shape != (x.shape[0],):
        raise ValueError(
            f"metric_fn must return one value per list, shape ({x.shape[0]},); got "
            f"{values.shape} (for rax metrics pass reduce_fn=None)"
        )
    keep = w.any(axis=1)
    return float(values[keep].mean()) if keep.any() else float("nan")


@dataclass
class FitResult:
    """What :func:`fit` did.

    Attributes:
        history: one dict per epoch with ``epoch``, ``train_loss`` (mean over the
            epoch's batches) and, with a validation split, ``valid_metric``.
        best_epoch: the epoch whose parameters the model holds at the end (the best
            validation epoch; the last epoch without validation).
        best_metric: its validation metric (None without validation).
        stopped_early: True when ``patience`` ran out before ``epochs``.
    """

    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    best_metric: float | None = None
    stopped_early: bool = False


def _pad_rows(a: np.ndarray, n: int) -> np.ndarray:
    if a.shape[0] == n:
        return a
    pad = np.zeros((n - a.shape[0], *a.shape[1:]), a.dtype)
    return np.concatenate([a, pad])


def _batches(n: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffled index batches of exactly ``batch_size``; the last one is completed with
    queries from the start of the permutation (each query is seen at least once an
    epoch, and no batch holds padding whose weight a loss might count)."""
    perm = rng.permutation(n)
    n_batches = max(1, math.ceil(n / batch_size))
    reps = math.ceil(n_batches * batch_size / n)
    perm = np.tile(perm, reps)[: n_batches * batch_size]
    return list(perm.reshape(n_batches, batch_size))


def _snapshot(model: nnx.Module) -> dict:
    return jax.tree.map(np.asarray, nnx.to_pure_dict(nnx.state(model, nnx.Not(nnx.RngState))))


def _restore(model: nnx.Module, snapshot: dict) -> None:
    state = nnx.state(model, nnx.Not(nnx.RngState))
    current = nnx.to_pure_dict(state)
    # Put each array back where the current one lives (replicated over a mesh).
    values = jax.tree.map(lambda new, old: jax.device_put(new, old.sharding), snapshot, current)
    nnx.replace_by_pure_dict(state, values)
    nnx.update(model, state)


def fit(
    model: nnx.Module,
    tx: optax.GradientTransformation | nnx.Optimizer,
    train,
    *,
    loss_fn: LossFn,
    valid=None,
    metric_fn: MetricFn | None = None,
    epochs: int = 100,
    batch_size: int = 32,
    patience: int | None = 10,
    min_delta: float = 0.0,
    seed: int = 0,
    mesh: Mesh | None = None,
    eval_batch_size: int = 256,
    progress: bool = True,
    callback: Callable[[int, dict[str, Any]], None] | None = None,
) -> FitResult:
    """Train ``model`` in place with early stopping on a validation split.

    Each epoch visits the training lists in a fresh shuffled order (seeded by
    ``seed`` and the epoch) in batches of exactly ``batch_size`` lists (the last batch
    is completed with lists from the start of the epoch, so shapes never change and
    the step compiles once). After each epoch, with ``valid`` and ``metric_fn``, the
    validation metric is computed in eval mode; the best parameters are kept and
    restored at the end; training stops after ``patience`` epochs without an
    improvement larger than ``min_delta``.

    Args:
        model: NNX scorer ``model(features, where=where) -> [B, L]``; dropout is
            active during training (``model.train()``) and off for evaluation.
        tx: an optax transformation (an ``nnx.Optimizer`` over ``nnx.Param`` is built)
            or a ready ``nnx.Optimizer``.
        train, valid: :class:`jaxrank.io.RankingData` or ``(features, labels, where)``
            with ``[Q, L, F]``, ``[Q, L]``, ``[Q, L]``.
        loss_fn: ``loss_fn(scores, labels, where=where) -> scalar``.
        metric_fn: ``metric_fn(scores, labels, where=where) -> [B]`` (higher is better).
        epochs, batch_size, patience, min_delta, seed: the loop (``patience=None``
            never stops early).
        mesh: a ``jax.sharding.Mesh`` with a ``"data"`` axis: batches are sharded over
            it, model and optimizer state replicated. ``batch_size`` must be a
            multiple of the axis size.
        eval_batch_size: lists per compiled evaluation call.
        progress: draw a progress bar (``jaxrank._progress``) for long runs.
        callback: called as ``callback(epoch, record)`` after each epoch.

    Returns:
        :class:`FitResult`; the model holds the best (or last) parameters.
    """
    x, y, w = _as_arrays(train, "train")
    if valid is not None and metric_fn is None:
        raise ValueError("valid was given without metric_fn")
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be positive, got {epochs}, {batch_size}")
    optimizer = tx if isinstance(tx, nnx.Optimizer) else nnx.Optimizer(model, tx, wrt=nnx.Param)

    put = np.asarray
    if mesh is not None:
        if "data" not in mesh.axis_names:
            raise ValueError(f"mesh needs a 'data' axis, has {mesh.axis_names}")
        n_dev = mesh.shape["data"]
        if batch_size % n_dev:
            raise ValueError(f"batch_size={batch_size} must be a multiple of {n_dev} devices")
        data_sharding = NamedSharding(mesh, P("data"))
        replicated = NamedSharding(mesh, P())
        state = nnx.state((model, optimizer))
        nnx.update((model, optimizer), jax.device_put(state, replicated))

        def put(a):
            return jax.device_put(a, data_sharding)

    result = FitResult()
    best = None
    since_best = 0
    rng = np.random.default_rng(seed)
    for epoch in _epochs(epochs, progress):
        model.train()
        losses = []
        for idx in _batches(x.shape[0], batch_size, rng):
            loss = train_step(model, optimizer, put(x[idx]), put(y[idx]), put(w[idx]),
                              loss_fn=loss_fn)  # fmt: skip
            losses.append(loss)
        record: dict[str, Any] = {"epoch": epoch, "train_loss": float(np.mean(losses))}
        model.eval()
        if valid is not None:
            metric = evaluate(model, valid, metric_fn=metric_fn, batch_size=eval_batch_size)
            record["valid_metric"] = metric
            if best is None or metric > result.best_metric + min_delta:
                best, result.best_metric, result.best_epoch = _snapshot(model), metric, epoch
                since_best = 0
            else:
                since_best += 1
        else:
            result.best_epoch = epoch
        result.history.append(record)
        if callback is not None:
            callback(epoch, record)
        if patience is not None and valid is not None and since_best >= patience:
            result.stopped_early = epoch < epochs - 1
            break
    if best is not None:
        _restore(model, best)
    model.eval()
    return result


def _epochs(epochs: int, show: bool):
    return progress(range(epochs), desc="fit") if show else iter(range(epochs))

"""Plots for ranking experiments (matplotlib, an optional dependency).

Three figures that come up in every ranking paper:

* :func:`per_query_differences` -- per-query metric differences between two systems,
  as a sorted bar plot (wins above zero, losses below);
* :func:`precision_recall` -- trec_eval's 11-point interpolated precision-recall
  curves of one or more runs;
* :func:`soft_rank_vs_temperature` -- how the soft ranks of a few scores move from
  the uniform average rank to the hard ranks as the regularization strength falls.

matplotlib is imported only when a function runs; without it the functions raise an
``ImportError`` saying how to install it. Each function draws into ``ax`` when given,
else into a new figure, and returns the ``matplotlib.axes.Axes``
(``ax.figure`` is the figure).

Example:
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import jax.numpy as jnp
    >>> from jaxrank import plot
    >>> ax = plot.soft_rank_vs_temperature(jnp.array([0.1, 0.5, 0.4]), num=5)
    >>> len(ax.lines)  # one curve per item
    3
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from jaxrank.eval import Evaluation
    from jaxrank.io import Qrels, Run

__all__ = ["per_query_differences", "precision_recall", "soft_rank_vs_temperature"]


def _pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError(
            "jaxrank.plot needs matplotlib, an optional dependency: pip install matplotlib"
        ) from e
    return plt


def _axes(ax: Any, figsize: tuple[float, float]) -> Any:
    if ax is not None:
        return ax
    _fig, ax = _pyplot().subplots(figsize=figsize)
    return ax


def _per_query(
    system: Run | Evaluation, qrels: Qrels | None, measure: str, arg: str
) -> tuple[dict[str, float], str]:
    from jaxrank.eval import Evaluation, evaluate
    from jaxrank.io import Run

    if isinstance(system, Run):
        if qrels is None:
            raise ValueError(f"{arg} is a Run: pass qrels to evaluate it")
        system = evaluate(qrels, system, [measure])
    if not isinstance(system, Evaluation):
        raise TypeError(
            f"{arg} must be a jaxrank.io.Run or a jaxrank.eval.Evaluation, "
            f"got {type(system).__name__}"
        )
    label = measure.replace(".", "_")
    if label not in system.per_query:
        if len(system.per_query) != 1:
            raise ValueError(
                f"{arg} has no per-query values for measure={measure!r} "
                f"(it has {sorted(system.per_query)})"
            )
        label = next(iter(system.per_query))
    values = system.per_query[label]
    return dict(zip(system.query_ids, np.asarray(values, np.float64).tolist(), strict=True)), label


def _name(system: Any, default: str) -> str:
    return getattr(system, "name", None) or getattr(system, "run_name", None) or default


def per_query_differences(
    system_a: Run | Evaluation,
    system_b: Run | Evaluation,
    qrels: Qrels | None = None,
    *,
    measure: str = "ndcg_cut.10",
    ax: Any = None,
    names: tuple[str, str] | None = None,
) -> Any:
    """Sorted bar plot of ``measure(b) - measure(a)`` per query.

    Each bar is one query (queries evaluated in both systems), sorted from the
    largest loss to the largest gain of ``b`` over ``a``; the title gives the mean
    difference and the win/tie/loss counts.

    Args:
      system_a, system_b: :class:`~jaxrank.io.Run` (evaluated against ``qrels`` with
        :func:`jaxrank.eval.evaluate`) or an :class:`~jaxrank.eval.Evaluation` holding
        ``measure`` per query.
      qrels: judgments, needed when a system is a ``Run``.
      measure: a trec_eval measure with per-query values, e.g. ``"map"``, ``"ndcg_cut.10"``.
      ax: matplotlib axes to draw into (``None``: a new figure).
      names: legend names of the two systems (default: run names, else ``"A"``/``"B"``).

    Returns:
      The ``Axes``; its bars are in ``ax.patches`` in plotted (sorted) order.

    Example:
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> from jaxrank.io import Qrels, Run
        >>> from jaxrank.plot import per_query_differences
        >>> qrels = Qrels.from_dict({"q1": {"a": 1}, "q2": {"b": 1}})
        >>> a = Run.from_dict({"q1": {"a": 1.0, "x": 2.0}, "q2": {"b": 1.0}}, name="a")
        >>> b = Run.from_dict({"q1": {"a": 3.0, "x": 2.0}, "q2": {"b": 1.0}}, name="b")
        >>> ax = per_query_differences(a, b, qrels, measure="recip_rank")
        >>> [round(float(p.get_height()), 2) for p in ax.patches]  # q2 tie, q1 gains 1 - 1/2
        [0.0, 0.5]
    """
    _pyplot()
    va, label = _per_query(system_a, qrels, measure, "system_a")
    vb, _ = _per_query(system_b, qrels, measure, "system_b")
    common = [q for q in va if q in vb]
    if not common:
        raise ValueError("system_a and system_b share no evaluated query")
    diff = np.array([vb[q] - va[q] for q in common])
    order = np.argsort(diff, kind="stable")
    diff, qids = diff[order], [common[i] for i in order]
    if names is None:
        names = (_name(system_a, "A"), _name(system_b, "B"))
    ax = _axes(ax, (max(4.0, 0.12 * len(diff) + 2), 3.2))
    colors = np.where(diff > 0, "tab:green", np.where(diff < 0, "tab:red", "tab:gray"))
    ax.bar(np.arange(len(diff)), diff, color=colors.tolist(), width=0.8)
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_xlabel("query (sorted by difference)")
    ax.set_ylabel(f"Δ {label} ({names[1]} − {names[0]})")
    if len(qids) <= 40:
        ax.set_xticks(np.arange(len(qids)), qids, rotation=90, fontsize=7)
    else:
        ax.set_xticks([])
    wins, losses = int((diff > 0).sum()), int((diff < 0).sum())
    ax.set_title(
        f"{names[1]} vs {names[0]}: mean Δ = {diff.mean():+.4f} "
        f"({wins} better, {len(diff) - wins - losses} equal, {losses} worse)"
    )
    return ax


def precision_recall(
    qrels: Qrels,
    runs: Run | Sequence[Run],
    *,
    ax: Any = None,
    relevance_level: int = 1,
) -> Any:
    """11-point interpolated precision-recall curves (trec_eval's ``iprec_at_recall``).

    The interpolated precision at recall level ``r`` is the highest precision at any
    rank whose recall is ``>= r``, averaged over queries, for ``r = 0, 0.1, ..., 1``
    (trec_eval 10.0's definition, computed by :func:`jaxrank.eval.evaluate`).

    Args:
      qrels: judgments.
      runs: one run or several (one curve each, labelled by the run name).
      ax: matplotlib axes (``None``: a new figure).
      relevance_level: judgments ``>=`` this are relevant.

    Returns:
      The ``Axes``; ``ax.lines[i].get_ydata()`` is the curve of ``runs[i]``.

    Example:
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> from jaxrank.io import Qrels, Run
        >>> from jaxrank.plot import precision_recall
        >>> qrels = Qrels.from_dict({"q1": {"a": 1, "b": 1}})
        >>> run = Run.from_dict({"q1": {"a": 3.0, "x": 2.0, "b": 1.0}}, name="r")
        >>> ax = precision_recall(qrels, run)
        >>> # trec_eval 10.0 rounds r * R (R = 2 relevant) to a count of relevant documents:
        >>> # r <= 0.7 needs 1 (precision 1 at rank 1), r >= 0.8 needs 2 (2/3 at rank 3)
        >>> ax.lines[0].get_ydata().round(3).tolist()
        [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.667, 0.667, 0.667]
    """
    from jaxrank.eval import evaluate
    from jaxrank.io import Run

    _pyplot()
    if isinstance(runs, Run):
        runs = [runs]
    if not runs or not all(isinstance(r, Run) for r in runs):
        raise TypeError("runs must be a jaxrank.io.Run or a non-empty sequence of them")
    ax = _axes(ax, (4.5, 3.5))
    levels = np.linspace(0.0, 1.0, 11)
    for run in runs:
        res = evaluate(qrels, run, ["iprec_at_recall"], relevance_level=relevance_level)
        prec = [res.summary[f"iprec_at_recall_{r:.2f}"] for r in levels]
        ax.plot(levels, prec, marker="o", markersize=3, label=run.name)
    ax.set_xlabel("recall")
    ax.set_ylabel("interpolated precision")
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.05)
    ax.grid(alpha=0.3)
    ax.legend()
    return ax


def soft_rank_vs_temperature(
    x: Any,
    *,
    strengths: Any = None,
    num: int = 40,
    regularization: str = "l2",
    direction: str = "descending",
    ax: Any = None,
    labels: Sequence[str] | None = None,
) -> Any:
    """Soft rank of each item of ``x [n]`` against the regularization strength.

    Evaluates :func:`jaxrank.soft.soft_rank` (one vmapped, jit-compiled call over all
    strengths) and draws one curve per item on a log-scaled strength axis. As the
    strength goes to 0 the curves reach the hard ranks (triangles at the left); for large strengths
    every item tends to the mean rank ``(n + 1) / 2``.

    Args:
      x: ``[n]`` scores.
      strengths: ``[T]`` regularization strengths (default: ``num`` values
        log-spaced over ``[1e-3, 1e2] · (max(x) - min(x))``).
      num: number of default strengths.
      regularization: ``"l2"`` or ``"kl"`` (as in :func:`~jaxrank.soft.soft_rank`).
      direction: ``"descending"`` (rank 1 = largest score, default) or ``"ascending"``.
      ax: matplotlib axes (``None``: a new figure).
      labels: legend labels of the items (default ``x[i]=value``).

    Returns:
      The ``Axes``; ``ax.lines[i]`` is item ``i``'s curve.
    """
    import jax
    import jax.numpy as jnp

    from jaxrank.soft import hard_rank, soft_rank

    _pyplot()  # fail early, before any computation, when matplotlib is missing

    x = jnp.asarray(x, jnp.float32)
    if x.ndim != 1 or x.shape[0] < 1:
        raise ValueError(f"x must be a non-empty [n] vector, got shape {x.shape}")
    if strengths is None:
        spread = float(jnp.max(x) - jnp.min(x)) or 1.0
        strengths = np.logspace(-3, 2, num) * spread
    strengths = np.asarray(strengths, np.float64)
    if strengths.ndim != 1 or (strengths <= 0).any():
        raise ValueError("strengths must be a [T] vector of positive values")

    @jax.jit
    def curves(s):
        def one(eps):
            return soft_rank(
                x, regularization=regularization, regularization_strength=eps, direction=direction
            )

        return jax.vmap(one)(s)

    ranks = np.asarray(curves(jnp.asarray(strengths, jnp.float32)))  # [T, n]
    hard = np.asarray(hard_rank(x, direction=direction))
    ax = _axes(ax, (5.0, 3.5))
    values = np.asarray(x).tolist()
    labels = (
        list(labels) if labels is not None else [f"x[{i}]={v:.3g}" for i, v in enumerate(values)]
    )
    for i in range(ranks.shape[1]):
        (line,) = ax.plot(strengths, ranks[:, i], label=labels[i])
        # the hard rank, as a marker left of the smallest strength (not a Line2D, so
        # ax.lines holds exactly the n curves)
        ax.scatter([strengths[0] * 0.6], [hard[i]], color=line.get_color(), marker="<", s=18)
    ax.set_xscale("log")
    ax.set_xlabel(f"regularization strength ε ({regularization})")
    ax.set_ylabel(f"soft rank ({direction})")
    ax.set_title("soft rank → hard rank as ε → 0")
    ax.legend(fontsize=7)
    return ax

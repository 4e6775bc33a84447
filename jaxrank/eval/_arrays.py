"""jit-compiled evaluation of padded run arrays, without sorting.

Most trec_eval measures only need the ranks of the relevant retrieved documents. On
XLA:CPU a sort per list is slow (a jitted argsort of 300 x 1000 scores takes ~10x
numpy's time), so :func:`evaluate_arrays` counts comparisons instead: the rank of a
relevant document ``i`` is one plus the number of retrieved documents ``j`` that beat it,

.. math:: \\mathrm{rank}_i = 1 + \\sum_j [s_j > s_i \\lor (s_j = s_i \\land j < i)],

an ``O(R \\cdot n)`` count per query for ``R`` relevant documents instead of an
``O(n \\log n)`` sort. :func:`build_arrays` lays a run out so that index order breaks
score ties exactly as trec_eval does (scores compared as float32, then document id
descending; any layout with that tie order gives the same values), so the results equal
:func:`jaxrank.eval.evaluate` (and pytrec_eval) up to float32 rounding.

Example:
    >>> from jaxrank.io import Qrels, Run
    >>> from jaxrank.eval import build_arrays, evaluate_arrays
    >>> qrels = Qrels.from_dict({"q1": {"d1": 1, "d3": 2, "d9": 1}})
    >>> run = Run.from_dict({"q1": {"d1": 0.9, "d2": 0.8, "d3": 0.1}})
    >>> arrays = build_arrays(qrels, run, ndcg_cutoffs=(3,))
    >>> out = evaluate_arrays(arrays, ndcg_cutoffs=(3,), p_cutoffs=(2,), recall_cutoffs=(3,))
    >>> # map = (1/1 + 2/3) / 3; ndcg_cut_3 = (1 + 2/log2(4)) / (2 + 1/log2(3) + 1/log2(4))
    >>> {k: round(float(v[0]), 4) for k, v in sorted(out.items())}
    {'P_2': 0.5, 'map': 0.5556, 'ndcg_cut_3': 0.6388, 'recall_3': 0.6667, 'recip_rank': 1.0}
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from jaxrank import _serialize
from jaxrank.io import Qrels, Run

__all__ = ["EvalArrays", "build_arrays", "evaluate_arrays"]


@_serialize.dataclass
@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class EvalArrays:
    """A run and its qrels as padded device arrays (a pytree).

    Attributes:
        scores: ``[Q, n]`` float32 scores; within a query, index order breaks ties.
        where: ``[Q, n]`` bool, True for retrieved documents (False is padding).
        rel_pos: ``[Q, R]`` int32 positions of the relevant retrieved documents.
        rel_gain: ``[Q, R]`` float32 their judgments (the nDCG gains, as trec_eval).
        rel_where: ``[Q, R]`` bool validity of ``rel_pos``.
        num_rel: ``[Q]`` float32 relevant documents in the qrels (retrieved or not).
        ideal_dcg: ``[Q, C]`` float32 ideal DCG at each nDCG cutoff, from the qrels.
    """

    scores: jax.Array
    where: jax.Array
    rel_pos: jax.Array
    rel_gain: jax.Array
    rel_where: jax.Array
    num_rel: jax.Array
    ideal_dcg: jax.Array


def build_arrays(
    qrels: Qrels,
    run: Run,
    *,
    ndcg_cutoffs: Sequence[int] = (10,),
    relevance_level: int = 1,
) -> EvalArrays:
    """Lay out ``run`` (queries that have qrels, in ``strcmp`` order) as :class:`EvalArrays`."""
    from jaxrank.eval._measures import _Ctx
    from jaxrank.eval._ranking import rank_queries

    cuts = tuple(int(k) for k in ndcg_cutoffs)
    parts = []
    for rr in rank_queries(qrels, run, relevance_level=relevance_level):
        # Documents laid out in trec_eval order, so that index order breaks float32 ties
        # by document id descending; the scores are the run's own (as float32).
        N = rr.rel.shape[1]
        valid = np.arange(N)[None, :] < rr.num_ret[:, None]
        scores = rr.scores
        isrel = rr.rel >= relevance_level
        R = max(int(isrel.sum(axis=1).max()), 1)
        order = np.argsort(~isrel, axis=1, kind="stable")[:, :R]
        rel_where = np.take_along_axis(isrel, order, axis=1)
        rel_gain = np.where(rel_where, np.take_along_axis(rr.rel, order, axis=1), 0)
        # ideal DCG at each cutoff from the qrels' levels >= 1 (shared with ndcg_cut)
        ideal_seq = _Ctx(rr).ideal_levels  # [B, M] levels sorted descending, 0-padded
        csum = np.cumsum(ideal_seq / np.log2(np.arange(2, ideal_seq.shape[1] + 2)), axis=1)
        ideal = np.stack([csum[:, min(k, csum.shape[1]) - 1] for k in cuts], axis=1)
        parts.append((scores, valid, order, rel_gain, rel_where, rr.num_rel, ideal))
    n = max(p[0].shape[1] for p in parts)
    R = max(p[2].shape[1] for p in parts)

    def cat(i, width, fill):
        return np.concatenate(
            [np.pad(p[i], ((0, 0), (0, width - p[i].shape[1])), constant_values=fill)
             for p in parts]
        )  # fmt: skip

    return EvalArrays(
        scores=jnp.asarray(cat(0, n, 0.0), jnp.float32),
        where=jnp.asarray(cat(1, n, False)),
        rel_pos=jnp.asarray(cat(2, R, 0), jnp.int32),
        rel_gain=jnp.asarray(cat(3, R, 0), jnp.float32),
        rel_where=jnp.asarray(cat(4, R, False)),
        num_rel=jnp.asarray(np.concatenate([p[5] for p in parts]), jnp.float32),
        ideal_dcg=jnp.asarray(np.concatenate([p[6] for p in parts]), jnp.float32),
    )


def _relevant_ranks(a: EvalArrays) -> jax.Array:
    """``[Q, R]`` 1-based ranks of the relevant documents, by counting comparisons."""
    n = a.scores.shape[-1]
    s_rel = jnp.take_along_axis(a.scores, a.rel_pos, axis=-1)[..., None]  # [Q, R, 1]
    s = a.scores[:, None, :]  # [Q, 1, n]
    earlier = jnp.arange(n)[None, None, :] < a.rel_pos[..., None]
    beats = ((s > s_rel) | ((s == s_rel) & earlier)) & a.where[:, None, :]
    return 1 + beats.sum(-1, dtype=jnp.int32)


@partial(jax.jit, static_argnames=("ndcg_cutoffs", "p_cutoffs", "recall_cutoffs"))
def evaluate_arrays(
    arrays: EvalArrays,
    *,
    ndcg_cutoffs: tuple[int, ...] = (10,),
    p_cutoffs: tuple[int, ...] = (10,),
    recall_cutoffs: tuple[int, ...] = (100,),
) -> dict[str, jax.Array]:
    """Per-query ``map``, ``recip_rank``, ``ndcg_cut_k``, ``P_k``, ``recall_k`` (``[Q]`` each).

    ``ndcg_cutoffs`` must be those given to :func:`build_arrays` (the ideal DCGs are
    precomputed there from the qrels).
    """
    if len(ndcg_cutoffs) != arrays.ideal_dcg.shape[-1]:
        raise ValueError(
            f"ndcg_cutoffs {ndcg_cutoffs} do not match the {arrays.ideal_dcg.shape[-1]} "
            "cutoffs the arrays were built with"
        )
    rank = _relevant_ranks(arrays)
    valid = arrays.rel_where
    rankf = rank.astype(jnp.float32)
    num_rel = arrays.num_rel
    safe = jnp.where(num_rel > 0, num_rel, 1.0)
    out = {}
    # AP: precision at each relevant rank = (# relevant ranked at or above) / rank
    above = (rank[:, None, :] <= rank[:, :, None]) & valid[:, None, :]
    prec = above.sum(-1).astype(jnp.float32) / rankf
    out["map"] = jnp.where(valid, prec, 0.0).sum(-1) / safe
    out["recip_rank"] = jnp.where(valid, 1.0 / rankf, 0.0).max(-1, initial=0.0)
    for c, k in enumerate(ndcg_cutoffs):
        dcg = jnp.where(valid & (rank <= k), arrays.rel_gain / jnp.log2(rankf + 1.0), 0.0)
        ideal = arrays.ideal_dcg[:, c]
        out[f"ndcg_cut_{k}"] = jnp.where(ideal > 0, dcg.sum(-1) / jnp.where(ideal > 0, ideal, 1), 0)
    for k in p_cutoffs:
        out[f"P_{k}"] = (valid & (rank <= k)).sum(-1) / jnp.float32(k)
    for k in recall_cutoffs:
        out[f"recall_{k}"] = (valid & (rank <= k)).sum(-1) / safe
    return out

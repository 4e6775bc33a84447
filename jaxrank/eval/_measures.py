"""trec_eval 10.0 measures, vectorized over a chunk of queries.

Each measure maps a :class:`~jaxrank.eval._ranking.RankedRels` chunk to per-query
float64 values: ``[B]`` for single measures, ``[B, C]`` for measures with cutoffs. The
definitions follow trec_eval's (10.0) source measure by measure; comments note its
conventions where they are not the textbook ones (for example the ``+ 0.9`` in
``Rprec_mult`` cutoffs and the rounding of ``iprec_at_recall`` cutoffs, which 10.0
changed from 9.0.8's truncation).

Averaging over queries ("all"): the arithmetic mean, except ``num_*`` (summed) and
``gm_*`` (geometric mean, with values floored at 1e-5).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from jaxrank.eval._ranking import NONPOOL, PAD, UNJUDGED, RankedRels

MIN_GEO_MEAN = 1e-5
INFAP_EPSILON = 1e-5
_STD_CUTS = (5, 10, 15, 20, 30, 100, 200, 500, 1000)
_RECALL_POINTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


class _Ctx:
    """Quantities shared by several measures, computed once per chunk."""

    def __init__(self, rr: RankedRels):
        self.rr = rr
        self.rel = rr.rel
        self.B, self.N = rr.rel.shape
        self.level = rr.relevance_level
        self.num_ret = rr.num_ret
        self.num_rel = rr.num_rel
        self.ranks = np.arange(1, self.N + 1, dtype=np.float64)

    @cached_property
    def isrel(self) -> np.ndarray:
        return self.rel >= self.level

    @cached_property
    def cum_rel(self) -> np.ndarray:
        return np.cumsum(self.isrel, axis=1)

    @cached_property
    def num_rel_ret(self) -> np.ndarray:
        return self.cum_rel[:, -1]

    @cached_property
    def prec_at_rank(self) -> np.ndarray:
        return self.cum_rel / self.ranks

    def rel_at(self, k: np.ndarray | int) -> np.ndarray:
        """Relevant documents in the top ``k`` (``k`` scalar or ``[B]``; 0 -> 0)."""
        k = np.broadcast_to(np.asarray(k, dtype=np.int64), (self.B,))
        idx = np.clip(k, 1, self.N) - 1
        got = self.cum_rel[np.arange(self.B), idx]
        return np.where(k > 0, got, 0)

    @cached_property
    def ideal_levels(self) -> np.ndarray:
        """Judged relevance levels >= 1 sorted descending, ``[B, M]`` (0-padded)."""
        lv = self.rr.rel_levels
        L = lv.shape[1]
        m = int(lv[:, 1:].sum(axis=1).max()) if L > 1 else 0
        out = np.zeros((self.B, max(m, 1)), np.float64)
        for b in range(self.B):
            seq = np.repeat(np.arange(L - 1, 0, -1), lv[b, :0:-1])
            out[b, : len(seq)] = seq
        return out


def _safe_div(num, den):
    num = np.asarray(num, np.float64)
    den = np.asarray(den, np.float64)
    return np.divide(num, den, out=np.zeros(np.broadcast(num, den).shape), where=den != 0)


def _log2_discount(n: int) -> np.ndarray:
    return np.log2(np.arange(2, n + 2, dtype=np.float64))


# ------------------------------------------------------------------ gains (ndcg, G, rbp)


@dataclass(frozen=True)
class _Gains:
    """Per-query gain of each relevance level, sorted as trec_eval's setup_gains."""

    table: dict  # level -> gain (levels present in the qrels or given as parameters)
    levels: list  # [(gain, count)] sorted by gain ascending (trec_eval's order)


def _setup_gains(rel_levels_row: np.ndarray, pairs: dict[str, float]) -> _Gains:
    given = {}
    for name, value in pairs.items():
        try:
            given[int(name)] = float(value)
        except ValueError:
            continue  # non-integer names (e.g. rbp's "p") are not gain levels
    table = dict(given)
    counts = {lvl: 0 for lvl in given}
    nonzero = np.flatnonzero(rel_levels_row)
    num_rel_levels = int(nonzero[-1]) + 1 if len(nonzero) else 0  # trec_eval's num_rel_levels
    for lvl in range(num_rel_levels):
        if lvl not in table:
            table[lvl] = float(lvl)
        counts[lvl] = int(rel_levels_row[lvl])
    # trec_eval sorts with a comparator returning (int)(g1 - g2): gains closer than 1
    # compare equal. Python's sort is stable like glibc's merge sort.
    order = sorted(table, key=functools.cmp_to_key(lambda a, b: int(table[a] - table[b])))
    return _Gains(table, [(table[lvl], counts[lvl]) for lvl in order])


def _gain_matrix(rel: np.ndarray, gains: list[_Gains]) -> np.ndarray:
    out = np.zeros(rel.shape, np.float64)
    for b, g in enumerate(gains):
        row = rel[b]
        for lvl, gain in g.table.items():
            if gain != 0:
                out[b, row == lvl] = gain
    return out


def _ideal_gains(g: _Gains) -> np.ndarray:
    """Ideal gain sequence: levels by decreasing gain, stopping at the first gain <= 0."""
    seq = []
    for gain, count in reversed(g.levels):
        if count == 0:
            continue
        if gain <= 0:
            break
        seq.extend([gain] * count)
    return np.asarray(seq, np.float64)


def _gains_for(ctx: _Ctx, pairs: dict[str, float]) -> list[_Gains]:
    return [_setup_gains(ctx.rr.rel_levels[b], pairs) for b in range(ctx.B)]


# ------------------------------------------------------------------ measure functions


def _map(ctx: _Ctx, _p=None) -> np.ndarray:
    s = np.where(ctx.isrel, ctx.prec_at_rank, 0.0).sum(axis=1)
    return _safe_div(s, ctx.num_rel)


def _gm_map(ctx: _Ctx, _p=None) -> np.ndarray:
    return np.log(np.maximum(_map(ctx), MIN_GEO_MEAN))


def _rprec(ctx: _Ctx, _p=None) -> np.ndarray:
    look = np.minimum(ctx.num_ret, ctx.num_rel)
    return _safe_div(ctx.rel_at(look), ctx.num_rel)


def _bpref_raw(ctx: _Ctx) -> np.ndarray:
    num_nonrel = ctx.rr.rel_levels[:, : ctx.level].sum(axis=1)
    nonrel = (ctx.rel >= 0) & (ctx.rel < ctx.level)
    nonrel_before = np.cumsum(nonrel, axis=1)  # rel docs are not nonrel: inclusive == exclusive
    R = ctx.num_rel[:, None]
    denom = np.minimum(num_nonrel[:, None], R)
    frac = _safe_div(np.minimum(nonrel_before, R), denom)
    contrib = np.where(nonrel_before > 0, 1.0 - frac, 1.0)
    s = np.where(ctx.isrel, contrib, 0.0).sum(axis=1)
    return _safe_div(s, ctx.num_rel)


def _bpref(ctx, _p=None):
    return _bpref_raw(ctx)


def _gm_bpref(ctx, _p=None):
    return np.log(np.maximum(_bpref_raw(ctx), MIN_GEO_MEAN))


def _recip_rank(ctx: _Ctx, _p=None) -> np.ndarray:
    has = ctx.isrel.any(axis=1)
    first = np.argmax(ctx.isrel, axis=1) + 1
    return np.where(has, 1.0 / first, 0.0)


def _interpolated_precision(ctx: _Ctx, cutoffs: np.ndarray) -> np.ndarray:
    """Interpolated precision at ``cutoffs`` counted in relevant documents, ``[B, C]``.

    Int_Prec(c) = max precision at the ranks of the c-th and later relevant documents;
    cutoffs above the number retrieved get 0, cutoff 0 gets the value of cutoff 1.
    """
    prec = np.where(ctx.isrel, ctx.prec_at_rank, 0.0)
    suffix_max = np.maximum.accumulate(prec[:, ::-1], axis=1)[:, ::-1]
    out = np.zeros(cutoffs.shape, np.float64)
    rel_ret = ctx.num_rel_ret
    rows = np.arange(ctx.B)
    for j in range(cutoffs.shape[1]):
        c = np.maximum(cutoffs[:, j], 1)
        pos = np.argmax(ctx.cum_rel >= c[:, None], axis=1)  # rank index of c-th rel doc
        ok = (cutoffs[:, j] <= rel_ret) & (rel_ret > 0) & (ctx.num_ret > 0)
        out[:, j] = np.where(ok, suffix_max[rows, pos], 0.0)
    return out


def _recall_cutoffs(ctx: _Ctx, points) -> np.ndarray:
    # trec_eval 10.0 rounds p * R to the nearest integer (9.0.8 truncated p * R + 0.9).
    p = np.asarray(points, np.float64)
    return np.floor(p[None, :] * ctx.num_rel[:, None] + 0.5).astype(np.int64)


def _iprec_at_recall(ctx, points):
    return _interpolated_precision(ctx, _recall_cutoffs(ctx, points))


def _11pt_avg(ctx, points):
    return _interpolated_precision(ctx, _recall_cutoffs(ctx, points)).mean(axis=1)


def _P(ctx, cuts):
    return np.stack([ctx.rel_at(k) / k for k in cuts], axis=1)


def _recall(ctx, cuts):
    return np.stack([_safe_div(ctx.rel_at(k), ctx.num_rel) for k in cuts], axis=1)


def _infap(ctx: _Ctx, _p=None) -> np.ndarray:
    rel = ctx.rel
    unjudged = rel == UNJUDGED
    nonrel = (rel >= 0) & (rel < ctx.level)
    isrel = ctx.isrel
    pool_unj = np.cumsum(unjudged, axis=1)
    nonrel_so_far = np.cumsum(nonrel, axis=1)
    rel_before = np.cumsum(isrel, axis=1) - isrel  # rel_so_far - 1 at a relevant doc
    j = np.arange(ctx.N, dtype=np.float64)[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        term = 1.0 / (j + 1.0) + (j / (j + 1.0)) * ((rel_before + nonrel_so_far + pool_unj) / j) * (
            (rel_before + INFAP_EPSILON) / (rel_before + nonrel_so_far + 2 * INFAP_EPSILON)
        )
    term = np.where(j == 0, 1.0, term)
    s = np.where(isrel, term, 0.0).sum(axis=1)
    return _safe_div(s, ctx.num_rel)


def _rprec_mult(ctx, mults):
    m = np.asarray(mults, np.float64)
    # trec_eval: cutoff = (long)(mult * R + 0.9) (unchanged in 10.0)
    cuts = (m[None, :] * ctx.num_rel[:, None] + 0.9).astype(np.int64)
    out = np.zeros(cuts.shape)
    for j in range(cuts.shape[1]):
        c = cuts[:, j]
        beyond = c > ctx.num_ret
        val = np.where(beyond, ctx.num_rel_ret, ctx.rel_at(c)) / np.maximum(c, 1)
        out[:, j] = np.where(c > 0, val, 0.0)
    return out


def _utility(ctx, coeffs, num_docs_in_coll=0):
    a, b, c, d = coeffs
    rr, nr, R = ctx.num_rel_ret, ctx.num_ret, ctx.num_rel
    return a * rr + b * (nr - rr) + c * (R - rr) + d * (num_docs_in_coll + rr - nr - R)


def _binG(ctx, _p=None):
    i = np.arange(ctx.N)[None, :]
    with np.errstate(divide="ignore"):
        term = 1.0 / np.log2(3 + i - ctx.cum_rel)
    s = np.where(ctx.isrel, term, 0.0).sum(axis=1)
    return _safe_div(s, ctx.num_rel)


def _G(ctx: _Ctx, pairs) -> np.ndarray:
    out = np.zeros(ctx.B)
    for b, g in enumerate(_gains_for(ctx, pairs)):
        ideal = _ideal_gains(g)
        row = ctx.rel[b, : ctx.num_ret[b]]
        results = np.array([g.table.get(int(r), 0.0) for r in row])
        n_id = len(ideal)
        # ideal gain at each rank while the ideal list lasts, min cost 1.0 afterwards
        k = len(row)
        step_cost = np.ones(k)
        m = min(k, n_id)
        step_cost[:m] = np.maximum(ideal[:m], 1.0)
        sum_cost = np.cumsum(step_cost)
        sum_results = np.cumsum(results)
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = results / np.log2(2 + sum_cost - sum_results)
        rg = np.where(results != 0, terms, 0.0).sum()
        sum_ideal = ideal.sum()
        out[b] = rg / sum_ideal if sum_ideal > 0 else 0.0
    return out


def _dcg_parts(ctx: _Ctx, pairs):
    gains = _gains_for(ctx, pairs)
    gm = _gain_matrix(ctx.rel, gains)
    disc = _log2_discount(ctx.N)
    return gains, gm, disc


def _ndcg(ctx: _Ctx, pairs) -> np.ndarray:
    gains, gm, disc = _dcg_parts(ctx, pairs)
    dcg = (gm / disc).sum(axis=1)
    out = np.zeros(ctx.B)
    for b, g in enumerate(gains):
        ideal = _ideal_gains(g)
        idcg = (ideal / _log2_discount(len(ideal))).sum()
        out[b] = dcg[b] / idcg if idcg > 0 else 0.0
    return out


def _ndcg_rel(ctx: _Ctx, pairs) -> np.ndarray:
    gains, gm, disc = _dcg_parts(ctx, pairs)
    cum_dcg = np.cumsum(gm / disc, axis=1)
    out = np.zeros(ctx.B)
    for b, g in enumerate(gains):
        ideal = _ideal_gains(g)
        n = int(ctx.num_ret[b])
        cum_ideal = np.cumsum(ideal / _log2_discount(len(ideal)))
        if len(cum_ideal) == 0:
            continue
        idx = np.minimum(np.arange(n), len(cum_ideal) - 1)
        ideal_at = cum_ideal[idx]
        pos = gm[b, :n] > 0
        s = (cum_dcg[b, :n][pos] / ideal_at[pos]).sum()
        num_rel = len(ideal)
        final_dcg = cum_dcg[b, n - 1] if n else 0.0
        s += (num_rel - pos.sum()) * final_dcg / cum_ideal[-1]
        out[b] = s / num_rel if s > 0 else 0.0
    return out


def _rndcg(ctx: _Ctx, pairs) -> np.ndarray:
    out = np.zeros(ctx.B)
    for b, g in enumerate(_gains_for(ctx, pairs)):
        if ctx.num_rel[b] == 0:
            continue
        out[b] = _rndcg_one(ctx.rel[b, : ctx.num_ret[b]], g)
    return out


def _rndcg_one(row: np.ndarray, g: _Gains) -> float:
    """ndcg averaged at the ranks where the ideal gain changes (trec_eval's Rndcg)."""
    levels = list(reversed(g.levels))  # by decreasing gain
    cur, num_at = 0, 0
    ideal_gain = levels[0][0] if levels else 0.0
    old = ideal_gain
    results_dcg = ideal_dcg = total = 0.0
    changes = 0
    i = 0
    n = len(row)

    def advance():
        nonlocal cur, num_at, ideal_gain
        num_at += 1
        while cur < len(levels) and num_at > levels[cur][1]:
            num_at = 1
            cur += 1
            ideal_gain = levels[cur][0] if cur < len(levels) else 0.0

    while i < n and ideal_gain > 0.0:
        rg = g.table.get(int(row[i]), 0.0)
        advance()
        if old != ideal_gain:
            if ideal_dcg > 0.0:
                total += results_dcg / ideal_dcg
                changes += 1
            old = ideal_gain
        if rg != 0:
            results_dcg += rg / np.log2(i + 2)
        if ideal_gain > 0.0:
            ideal_dcg += ideal_gain / np.log2(i + 2)
        i += 1
    if i < n:
        while i < n:
            rg = g.table.get(int(row[i]), 0.0)
            if rg != 0:
                results_dcg += rg / np.log2(i + 2)
            i += 1
        if ideal_dcg > 0.0:
            total += results_dcg / ideal_dcg
            changes += 1
    while ideal_gain > 0.0:
        advance()
        if old != ideal_gain:
            if ideal_dcg > 0.0:
                total += results_dcg / ideal_dcg
                changes += 1
            old = ideal_gain
        if ideal_gain > 0.0:
            ideal_dcg += ideal_gain / np.log2(i + 2)
        i += 1
    return total / changes if changes else 0.0


def _ndcg_cut(ctx: _Ctx, cuts) -> np.ndarray:
    # ndcg_cut uses the judgment values themselves as gains (no gain map).
    disc = _log2_discount(ctx.N)
    cum_dcg = np.cumsum(np.where(ctx.rel > 0, ctx.rel, 0) / disc, axis=1)
    ideal = ctx.ideal_levels
    cum_ideal = np.cumsum(ideal / _log2_discount(ideal.shape[1]), axis=1)
    out = np.zeros((ctx.B, len(cuts)))
    for j, k in enumerate(cuts):
        dcg = cum_dcg[:, min(k, ctx.N) - 1]
        idcg = cum_ideal[:, min(k, ideal.shape[1]) - 1]
        out[:, j] = np.where(idcg > 0, _safe_div(dcg, idcg), dcg)
    return out


def _map_cut(ctx: _Ctx, cuts) -> np.ndarray:
    contrib = np.cumsum(np.where(ctx.isrel, ctx.prec_at_rank, 0.0), axis=1)
    return np.stack([_safe_div(contrib[:, min(k, ctx.N) - 1], ctx.num_rel) for k in cuts], axis=1)


def _relative_P(ctx: _Ctx, cuts) -> np.ndarray:
    return np.stack([_safe_div(ctx.rel_at(k), np.minimum(k, ctx.num_rel)) for k in cuts], axis=1)


def _success(ctx, cuts):
    return np.stack([(ctx.rel_at(k) > 0).astype(np.float64) for k in cuts], axis=1)


def _set_P(ctx, _p=None):
    return _safe_div(ctx.num_rel_ret, ctx.num_ret)


def _set_relative_P(ctx, _p=None):
    return _safe_div(ctx.num_rel_ret, np.minimum(ctx.num_ret, ctx.num_rel))


def _set_recall(ctx, _p=None):
    return _safe_div(ctx.num_rel_ret, ctx.num_rel)


def _set_map(ctx, _p=None):
    return _set_P(ctx) * _set_recall(ctx)


def _set_F(ctx, params):
    x = params[0]
    P, R = _set_P(ctx), _set_recall(ctx)
    return np.where(ctx.num_rel_ret > 0, _safe_div((x + 1.0) * P * R, x * P + R), 0.0)


def _num_nonrel_judged_ret(ctx, _p=None):
    return ((ctx.rel >= 0) & (ctx.rel < ctx.level)).sum(axis=1)


def _rbp(ctx: _Ctx, pairs) -> np.ndarray:
    p = float(pairs.get("p", 0.9))
    out = np.zeros(ctx.B)
    powers = p ** np.arange(ctx.N, dtype=np.float64)
    for b, g in enumerate(_gains_for(ctx, pairs)):
        table = dict(g.table)
        lo, hi = min(table.values()), max(table.values())
        if lo < 0 or hi > 1:
            table = {k: (v - lo) / (hi - lo) for k, v in table.items()}
        row = ctx.rel[b, : ctx.num_ret[b]]
        gains = np.array([table.get(int(r), 0.0) for r in row])
        out[b] = (1.0 - p) * (gains * powers[: len(row)]).sum()
    return out


def _rbp_resid(ctx: _Ctx, pairs) -> np.ndarray:
    p = float(pairs.get("p", 0.9))
    powers = p ** np.arange(ctx.N, dtype=np.float64)
    unj = (ctx.rel < 0) & (ctx.rel != PAD)
    s = np.where(unj, powers, 0.0).sum(axis=1)
    tail = p ** ctx.num_ret.astype(np.float64)
    return np.where(unj.any(axis=1), tail + (1.0 - p) * s, 0.0)


def _unj(ctx: _Ctx, cuts) -> np.ndarray:
    unj = np.cumsum((ctx.rel == NONPOOL) | (ctx.rel == UNJUDGED), axis=1)
    return np.stack([unj[:, min(k, ctx.N) - 1] / k for k in cuts], axis=1)


# ------------------------------------------------------------------ registry


@dataclass(frozen=True)
class Measure:
    """A trec_eval measure.

    ``kind``: ``"single"`` (one value), ``"cut"`` (one value per cutoff, printed as
    ``name_cutoff``), ``"count"`` (an integer, summed over queries), ``"gm"``
    (geometric mean over queries, printed only in the summary), or the summary-only
    ``"runid"`` and ``"num_q"``.
    ``params``: ``None``, ``"cut_long"``, ``"cut_double"``, ``"doubles"`` or ``"pairs"``.
    """

    name: str
    fn: Callable
    kind: str = "single"
    params: str | None = None
    default: tuple = ()


MEASURES: dict[str, Measure] = {
    m.name: m
    for m in [
        Measure("runid", lambda c, p: None, "runid"),
        Measure("num_q", lambda c, p: None, "num_q"),
        Measure("num_ret", lambda c, p: c.num_ret, "count"),
        Measure("num_rel", lambda c, p: c.num_rel, "count"),
        Measure("num_rel_ret", lambda c, p: c.num_rel_ret, "count"),
        Measure("map", _map),
        Measure("gm_map", _gm_map, "gm"),
        Measure("Rprec", _rprec),
        Measure("bpref", _bpref),
        Measure("recip_rank", _recip_rank),
        Measure("iprec_at_recall", _iprec_at_recall, "cut", "cut_double", _RECALL_POINTS),
        Measure("P", _P, "cut", "cut_long", _STD_CUTS),
        Measure("recall", _recall, "cut", "cut_long", _STD_CUTS),
        Measure("infAP", _infap),
        Measure("gm_bpref", _gm_bpref, "gm"),
        Measure(
            "Rprec_mult",
            _rprec_mult,
            "cut",
            "cut_double",
            (0.2, 0.4, 0.6, 0.8, 1.0, 1.2, 1.4, 1.6, 1.8, 2.0),
        ),
        Measure("utility", _utility, "single", "doubles", (1.0, -1.0, 0.0, 0.0)),
        Measure("11pt_avg", _11pt_avg, "single", "doubles", _RECALL_POINTS),
        Measure("binG", _binG),
        Measure("G", _G, "single", "pairs"),
        Measure("ndcg", _ndcg, "single", "pairs"),
        Measure("ndcg_rel", _ndcg_rel, "single", "pairs"),
        Measure("Rndcg", _rndcg, "single", "pairs"),
        Measure("ndcg_cut", _ndcg_cut, "cut", "cut_long", _STD_CUTS),
        Measure("map_cut", _map_cut, "cut", "cut_long", _STD_CUTS),
        Measure("relative_P", _relative_P, "cut", "cut_long", _STD_CUTS),
        Measure("success", _success, "cut", "cut_long", (1, 5, 10)),
        Measure("set_P", _set_P),
        Measure("set_relative_P", _set_relative_P),
        Measure("set_recall", _set_recall),
        Measure("set_map", _set_map),
        Measure("set_F", _set_F, "single", "doubles", (1.0,)),
        Measure("num_nonrel_judged_ret", _num_nonrel_judged_ret, "count"),
        Measure("rbp", _rbp, "single", "pairs"),
        Measure("rbp_resid", _rbp_resid, "single", "pairs"),
        Measure("unj", _unj, "cut", "cut_long", (5, 10, 20)),
    ]
}

#: trec_eval's default ("official") measures, printed when no ``-m`` is given.
OFFICIAL = (
    "runid",
    "num_q",
    "num_ret",
    "num_rel",
    "num_rel_ret",
    "map",
    "gm_map",
    "Rprec",
    "bpref",
    "recip_rank",
    "iprec_at_recall",
    "P",
)
ALL_TREC = tuple(MEASURES)

"""Fusion methods on the candidate matrix of one query.

After :func:`jaxrank.fusion.fuse_arrays` has gathered the union of the M runs'
candidates into N slots, every method is a function of

* ``norm [M, N]``    -- each run's normalized score for each candidate (0 if missing),
* ``present [M, N]`` -- whether the run retrieved the candidate,
* ``rank [M, N]``    -- the candidate's 1-based rank in the run (``+inf`` if missing),
* ``valid [N]``      -- real candidate slots; ``run_has [M]`` -- runs that have the query,
* ``n_run [M]``      -- list lengths, ``n_cand`` -- number of candidates,

and returns ``(fused [N], contribution [M, N])``. ``contribution[m, n]`` is run m's
share of candidate n's fused score: for every method that is a sum over runs
(CombSUM, weighted sums, RRF, ISR, RBC, Borda, the probabilistic methods,
CombMNZ-style products whose multiplier is spread over the runs), ``fused`` equals
``contribution.sum(0)``; for the order statistics (CombMAX/MIN/MED, median rank,
Condorcet, Copeland) it is the run's normalized score or rank-derived vote, and the
method's docstring says how it combines.

References (c = number of runs retrieving the document, s_m its normalized score
in run m, r_m its 1-based rank, w_m run weights):

======================  ==============================================  ===========================
method                  fused score                                     reference
======================  ==============================================  ===========================
``sum``                 Σ s_m                                           Fox & Shaw, TREC-2 1993
``mnz``                 c·Σ s_m                                         Fox & Shaw 1993
``max`` / ``min``       max / min over retrieving runs                  Fox & Shaw 1993
``med``                 median over retrieving runs                     Fox & Shaw 1993
``anz``                 Σ s_m / c                                       Fox & Shaw 1993
``gmnz``                c^γ·Σ s_m                                       Lee, SIGIR 1997
``average``             Σ s_m / M (Pyserini ``average``)                Pyserini
``wsum``                Σ w_m s_m (``interpolation``: w = α, 1-α)       Wu & Crestani 2002
``wmnz``                Σ s_m · Σ_{retrieving} w_m                      Wu & Crestani 2002
``mixed``               √c·Σ w_m s_m                                    Wu & Crestani 2002
``rrf``                 Σ w_m / (k + r_m); 0-based: 1/(k + r_m - 1)      Cormack et al., SIGIR 2009
``isr``                 c·Σ 1/r_m²                                      Mourão et al., CMIG 2015
``log_isr``             log(c)·Σ 1/r_m²                                 Mourão et al. 2015
``logn_isr``            log(c + σ)·Σ 1/r_m²                             Mourão et al. 2015
``rbc``                 Σ (1-φ) φ^(r_m - 1)                             Bailey et al., SIGIR 2017
``bordafuse``           Σ (N - r_m + 1); missing: (N - n_m + 1)/2       Aslam & Montague, SIGIR 2001
``w_bordafuse``         Σ w_m · Borda points                            Aslam & Montague 2001
``condorcet``           N - position in the majority order (see below)  Montague & Aslam, CIKM 2002
``w_condorcet``         ditto with run weights                          Montague & Aslam 2002
``copeland``            #pairwise wins − #pairwise losses               Copeland 1951
``median_rank``         −median_m r_m (missing: n_m + 1)                Fagin et al., SIGMOD 2003
``dbsf``                Σ clip((x - μ + 3σ)/6σ, 0, 1) on raw scores     Qdrant DBSF (2024)
``posfuse``             Σ P_m(r_m)                                      Lillis et al., SIGIR 2010
``probfuse``            Σ P_m(segment(r_m)) / (segment + 1)             Lillis et al., SIGIR 2006
``segfuse``             Σ P_m(segment(r_m))·(s_m + 1)                   Shokouhi, ECIR 2007
``slidefuse``           Σ mean of P_m over positions r_m ± w            Lillis et al., ECIR 2008
``mapfuse``             Σ MAP_m / r_m                                   Lillis et al. 2010
``bayesfuse``           Σ log-odds_m(r_m); missing: log(0.001/0.999)    Aslam & Montague 2001
======================  ==============================================  ===========================

Condorcet's order is deterministic: candidates in doc id descending order, each
inserted right after the last placed candidate it does not beat by a strict
(weighted) majority. On a transitive majority that is the majority order (ranx's too);
on cycles ranx's result depends on ``PYTHONHASHSEED``, jaxrank's only on the doc ids.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class Candidates(NamedTuple):
    """One query's candidate matrix (see the module docstring)."""

    norm: jax.Array  # [M, N]
    raw: jax.Array  # [M, N]
    present: jax.Array  # [M, N] bool
    rank: jax.Array  # [M, N] float, +inf where missing
    valid: jax.Array  # [N] bool
    run_has: jax.Array  # [M] bool
    n_run: jax.Array  # [M] float
    n_cand: jax.Array  # [] float


METHODS: tuple[str, ...] = (
    "sum",
    "mnz",
    "max",
    "min",
    "med",
    "anz",
    "gmnz",
    "average",
    "wsum",
    "interpolation",
    "wmnz",
    "mixed",
    "rrf",
    "isr",
    "log_isr",
    "logn_isr",
    "rbc",
    "bordafuse",
    "w_bordafuse",
    "condorcet",
    "w_condorcet",
    "copeland",
    "median_rank",
    "dbsf",
    "posfuse",
    "probfuse",
    "segfuse",
    "slidefuse",
    "mapfuse",
    "bayesfuse",
)
RANK_METHODS = frozenset(
    {
        "rrf",
        "isr",
        "log_isr",
        "logn_isr",
        "rbc",
        "bordafuse",
        "w_bordafuse",
        "condorcet",
        "w_condorcet",
        "copeland",
        "median_rank",
        "posfuse",
        "probfuse",
        "segfuse",
        "slidefuse",
        "mapfuse",
        "bayesfuse",
    }
)
# Methods with a required parameter, and the name of that parameter.
REQUIRED_PARAMS = {
    "gmnz": ("gamma",),
    "wsum": ("weights",),
    "wmnz": ("weights",),
    "mixed": ("weights",),
    "interpolation": ("alpha",),
    "rbc": ("phi",),
    "w_bordafuse": ("weights",),
    "w_condorcet": ("weights",),
    "posfuse": ("probs",),
    "probfuse": ("probs",),
    "segfuse": ("probs",),
    "slidefuse": ("probs", "w"),
    "mapfuse": ("map_scores",),
    "bayesfuse": ("log_odds",),
}
_ALIASES = {
    "comb_sum": "sum",
    "combsum": "sum",
    "comb_mnz": "mnz",
    "combmnz": "mnz",
    "comb_max": "max",
    "comb_min": "min",
    "comb_med": "med",
    "comb_anz": "anz",
    "comb_gmnz": "gmnz",
    "borda": "bordafuse",
    "weighted_bordafuse": "w_bordafuse",
    "weighted_condorcet": "w_condorcet",
    "weighted_sum": "wsum",
    "medrank": "median_rank",
}
MIN_ODD = float(jnp.log(0.001 / 0.999))


def canonical_method(method: str) -> str:
    """Return the canonical name of fusion ``method`` or raise ``ValueError``."""
    name = _ALIASES.get(method, method)
    if name not in METHODS:
        raise ValueError(f"method={method!r} is not one of {', '.join(METHODS)}")
    return name


def _count(c: Candidates):
    return jnp.sum(c.present, axis=0).astype(c.norm.dtype)


def _masked(c: Candidates, x):
    return jnp.where(c.present, x, 0.0)


def _spread(c: Candidates, terms, factor):
    """Terms [M, N] times a per-candidate factor: fused (the factor times the sum of the
    terms, as ranx and the native path compute it) and contributions."""
    contrib = terms * factor[None, :]
    return jnp.sum(terms, axis=0) * factor, contrib


def count_factor(name: str, cnt, p: dict):
    """The per-candidate multiplier of the sum of terms for the CombMNZ-like methods
    (``cnt``: number of runs retrieving the candidate), or None for plain sums."""
    dt = cnt.dtype
    if name in ("mnz", "isr"):
        return cnt
    if name == "anz":
        return 1.0 / jnp.maximum(cnt, 1.0)
    if name == "gmnz":
        return cnt ** jnp.asarray(p["gamma"], dt)
    if name == "mixed":
        return jnp.sqrt(cnt)
    if name == "log_isr":
        return jnp.log(jnp.maximum(cnt, 1.0))
    if name == "logn_isr":
        return jnp.log(cnt + jnp.asarray(p.get("sigma", 0.01), dt))
    return None


def _order_stat(c: Candidates, x, which):
    big = jnp.finfo(x.dtype).max
    cnt = jnp.sum(c.present, axis=0)
    if which == "max":
        return jnp.max(jnp.where(c.present, x, -big), axis=0)
    if which == "min":
        return jnp.min(jnp.where(c.present, x, big), axis=0)
    srt = jnp.sort(jnp.where(c.present, x, big), axis=0)
    lo = jnp.take_along_axis(srt, jnp.maximum((cnt - 1) // 2, 0)[None], axis=0)[0]
    hi = jnp.take_along_axis(srt, (cnt // 2)[None], axis=0)[0]
    return (lo + hi) / 2


def _rank_terms(c: Candidates, f):
    """f(rank) on present entries, 0 elsewhere."""
    safe = jnp.where(c.present, c.rank, 1.0)
    return jnp.where(c.present, f(safe), 0.0)


def _table_lookup(table, idx, present):
    """table [M, L] indexed by idx [M, N] (0-based); 0 out of range."""
    L = table.shape[-1]
    ok = present & (idx >= 0) & (idx < L)
    vals = jnp.take_along_axis(table, jnp.clip(idx, 0, L - 1).astype(jnp.int32), axis=1)
    return jnp.where(ok, vals, 0.0)


def _borda_points(c: Candidates):
    points = c.n_cand - c.rank + 1.0
    unranked = (c.n_cand - c.n_run + 1.0) / 2.0
    out = jnp.where(c.present, points, unranked[:, None])
    return jnp.where(c.run_has[:, None] & c.valid[None, :], out, 0.0)


def _pairwise_wins(c: Candidates, weights):
    """W[a, b] = total weight of runs ranking a strictly above b (missing = last)."""
    r = jnp.where(c.present, c.rank, jnp.inf)
    w = jnp.where(c.run_has, weights, 0.0)
    better = (r[:, :, None] < r[:, None, :]).astype(c.norm.dtype)
    return jnp.einsum("m,mab->ab", w, better)


def _condorcet_order(c: Candidates, weights):
    """Insertion sort of the candidates by pairwise majority (jaxrank's Condorcet rule).

    ``a`` beats ``b`` when the runs (that have the query) ranking ``a`` strictly above
    ``b`` weigh strictly more than those ranking ``b`` above ``a``; a run that misses a
    document ranks it below all its retrieved ones. The candidates are taken in slot
    order, i.e. doc id descending (with the host API's sorted vocabulary), and each is
    inserted right after the last already-placed candidate it does not beat (at the
    front if it beats them all). Consecutive documents of the result therefore always
    respect the majority (a Hamiltonian path of the Condorcet graph, Montague & Aslam's
    Condorcet-fuse). When the majority is a strict total order the result is that order,
    which is also ranx's; on ties and cycles the result depends only on the doc ids (ranx's
    depends on Python's string hashing, i.e. ``PYTHONHASHSEED``). Fused score:
    N - position.
    """
    W = _pairwise_wins(c, weights)
    n = W.shape[0]
    ar = jnp.arange(n)

    def body(i, carry):
        order, filled_count = carry
        beats = W[i, order] > W[order, i]
        filled = ar < filled_count
        pos = jnp.max(jnp.where(filled & ~beats, ar + 1, 0))
        shifted = jnp.roll(order, 1)
        tail = jnp.where(ar <= filled_count, shifted, order)
        new = jnp.where(ar < pos, order, jnp.where(ar == pos, i, tail))
        ok = c.valid[i]
        return jnp.where(ok, new, order), filled_count + ok.astype(filled_count.dtype)

    init = (jnp.zeros(n, jnp.int32), jnp.zeros((), jnp.int32))
    order, count = jax.lax.fori_loop(0, n, body, init)
    target = jnp.where(ar < count, order, n)  # only the placed candidates
    position = jnp.zeros(n, jnp.int32).at[target].set(ar.astype(jnp.int32), mode="drop")
    return position, W


def combine(name: str, c: Candidates, p: dict):
    """Fused scores ``[N]`` and per-run contributions ``[M, N]`` of method ``name``."""
    dt = c.norm.dtype
    M = c.norm.shape[0]
    weights = jnp.asarray(p.get("weights", jnp.ones(M)), dt)
    cnt = _count(c)
    s = _masked(c, c.norm)
    if name in ("sum", "average", "wsum", "interpolation"):
        if name == "interpolation":
            alpha = jnp.asarray(p["alpha"], dt)
            weights = jnp.stack([alpha, 1.0 - alpha])
        w = weights if name in ("wsum", "interpolation") else jnp.ones(M, dt)
        terms = s * w[:, None]
        if name == "average":
            return jnp.sum(terms, axis=0) / M, terms / M
        return jnp.sum(terms, axis=0), terms
    if name in ("mnz", "anz", "gmnz"):
        return _spread(c, s, count_factor(name, cnt, p))
    if name == "wmnz":
        return _spread(c, s, jnp.sum(jnp.where(c.present, weights[:, None], 0.0), axis=0))
    if name == "mixed":
        return _spread(c, s * weights[:, None], count_factor(name, cnt, p))
    if name in ("max", "min", "med"):
        return _order_stat(c, c.norm, name), s
    if name == "rrf":
        k = jnp.asarray(p.get("k", 60.0), dt)
        offset = 1.0 if p.get("zero_based", False) else 0.0
        terms = _rank_terms(c, lambda r: 1.0 / (k + r - offset)) * weights[:, None]
        return jnp.sum(terms, axis=0), terms
    if name in ("isr", "log_isr", "logn_isr"):
        terms = _rank_terms(c, lambda r: 1.0 / (r * r))
        return _spread(c, terms, count_factor(name, cnt, p))
    if name == "rbc":
        phi = jnp.asarray(p["phi"], dt)
        terms = _rank_terms(c, lambda r: (1.0 - phi) * phi ** (r - 1.0))
        return jnp.sum(terms, axis=0), terms
    if name in ("bordafuse", "w_bordafuse"):
        terms = _borda_points(c)
        if name == "w_bordafuse":
            terms = terms * weights[:, None]
        return jnp.sum(terms, axis=0), terms
    if name in ("condorcet", "w_condorcet"):
        position, W = _condorcet_order(c, weights)
        fused = (c.n_cand - position).astype(dt)
        votes = jnp.where(c.present, c.n_run[:, None] - c.rank + 1.0, 0.0)
        return fused, votes
    if name == "copeland":
        W = _pairwise_wins(c, weights)
        pair = c.valid[:, None] & c.valid[None, :]
        fused = jnp.sum(jnp.where(pair, jnp.sign(W - W.T), 0.0), axis=1)
        r = jnp.where(c.present, c.rank, jnp.inf)
        wins_m = jnp.sum(jnp.where(pair[None], (r[:, :, None] < r[:, None, :]), False), axis=2)
        return fused.astype(dt), wins_m.astype(dt)
    if name == "median_rank":
        r = jnp.where(c.present, c.rank, (c.n_run + 1.0)[:, None])
        has = jnp.broadcast_to(c.run_has[:, None], r.shape)
        med = _order_stat(c._replace(present=has), r, "med")
        return -med, jnp.where(has, r, 0.0)
    if name == "dbsf":
        # Normalization happened per run (norm="dbsf" is forced by the caller).
        return jnp.sum(s, axis=0), s
    if name == "posfuse":
        terms = _table_lookup(jnp.asarray(p["probs"], dt), c.rank - 1.0, c.present)
        return jnp.sum(terms, axis=0), terms
    if name == "probfuse":
        probs = jnp.asarray(p["probs"], dt)
        n_seg = probs.shape[-1]
        seg_size = jnp.ceil(c.n_run / n_seg)[:, None]
        seg = jnp.floor((c.rank - 1.0) / jnp.maximum(seg_size, 1.0))
        per_seg = probs / (jnp.arange(n_seg, dtype=dt) + 1.0)
        terms = _table_lookup(per_seg, seg, c.present)
        return jnp.sum(terms, axis=0), terms
    if name == "segfuse":
        probs = jnp.asarray(p["probs"], dt)
        bounds = jnp.asarray([10 * 2 ** (k - 1) - 5 for k in range(1, probs.shape[-1] + 1)], dt)
        seg = jnp.sum((c.rank - 1.0)[..., None] >= bounds, axis=-1)
        terms = _table_lookup(probs, seg, c.present) * (s + 1.0)
        return jnp.sum(terms, axis=0), terms
    if name == "slidefuse":
        probs = jnp.asarray(p["probs"], dt)
        w = p["w"]
        cums = jnp.concatenate([jnp.zeros((M, 1), dt), jnp.cumsum(probs, axis=1)], axis=1)
        L = probs.shape[-1]
        pos = c.rank - 1.0
        a = jnp.maximum(pos - w, 0.0)
        b = jnp.minimum(pos + w, c.n_run[:, None] - 1.0)
        hi = jnp.clip(b + 1.0, 0, L).astype(jnp.int32)
        lo = jnp.clip(a, 0, L).astype(jnp.int32)
        total = jnp.take_along_axis(cums, hi, axis=1) - jnp.take_along_axis(cums, lo, axis=1)
        terms = jnp.where(c.present, total / (b - a + 1.0), 0.0)
        return jnp.sum(terms, axis=0), terms
    if name == "mapfuse":
        maps = jnp.asarray(p["map_scores"], dt)
        terms = _rank_terms(c, lambda r: 1.0 / r) * maps[:, None]
        return jnp.sum(terms, axis=0), terms
    if name == "bayesfuse":
        odds = jnp.asarray(p["log_odds"], dt)
        hit = _table_lookup(odds, c.rank - 1.0, c.present)
        terms = jnp.where(c.present, hit, MIN_ODD)
        terms = jnp.where(c.run_has[:, None] & c.valid[None, :], terms, 0.0)
        return jnp.sum(terms, axis=0), terms
    raise ValueError(f"method={name!r} is not one of {', '.join(METHODS)}")

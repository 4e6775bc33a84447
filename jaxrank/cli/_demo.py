"""``jaxrank demo [--data BEIR_DIR]``: a whole retrieval pipeline, end to end.

BM25 -> LSA dense retrieval -> RRF fusion -> MaxSim reranking -> a learned ranking head
trained with a soft-rank NDCG loss; a metrics table per stage. The stages are described
in :mod:`jaxrank.cli._pipeline`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

import numpy as np

from jaxrank.cli import HelpFormatter, UserError

MEASURES = ("ndcg_cut.10", "map", "recall.100", "recip_rank")
COLUMNS = {"ndcg_cut_10": "nDCG@10", "map": "MAP", "recall_100": "R@100", "recip_rank": "MRR"}

EPILOG = """\
examples:
  jaxrank demo                                # the built-in collection (200 docs, 40 queries)
  jaxrank demo --data ~/beir/scifact          # any BEIR folder (corpus/queries/qrels)
  jaxrank demo --format json > demo.json      # metrics as JSON (progress stays on stderr)
"""


def register(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="run the whole pipeline (BM25, LSA, fusion, MaxSim, learned head) on a collection",
        description=(
            "Index a BEIR collection (default: the built-in one, written for jaxrank), "
            "retrieve with BM25 and with LSA (a truncated SVD of the TF-IDF matrix, computed "
            "in JAX; no pretrained model), fuse both with RRF, rerank the fused candidates "
            "with MaxSim over LSA term vectors, print a metrics table per stage, then train "
            "a small ranking head with a soft-rank NDCG loss on half of the queries and "
            "report nDCG@10 before and after on the other half."
        ),
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    p.add_argument(
        "--data", metavar="DIR", help="BEIR folder (corpus.jsonl, queries.jsonl, qrels/)"
    )
    p.add_argument("--split", default="test", help="qrels split of --data (default test)")
    p.add_argument(
        "-k", "--depth", type=int, default=100, help="documents per query and stage (100)"
    )
    p.add_argument("--dim", type=int, help="LSA dimensions (default: 32, or 128 above 2000 docs)")
    p.add_argument("--steps", type=int, default=100, help="training steps of the head (100)")
    p.add_argument(
        "--stemmer",
        default="auto",
        help="Snowball language, 'none', or 'auto' (english when PyStemmer is installed)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (0)")
    p.add_argument(
        "--format", choices=("table", "json"), default="table", help="Markdown tables or JSON"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    result = run_demo(
        args.data,
        split=args.split,
        depth=args.depth,
        dim=args.dim,
        steps=args.steps,
        seed=args.seed,
        stemmer=args.stemmer,
        verbose=True,
    )
    if args.format == "json":
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
    else:
        sys.stdout.write(format_result(result))
    return 0


def run_demo(
    data: str | None = None,
    *,
    split: str = "test",
    depth: int = 100,
    dim: int | None = None,
    steps: int = 100,
    seed: int = 0,
    stemmer: str | None = "auto",
    verbose: bool = False,
) -> dict:
    """Run every stage; returns ``{"collection", "stages": [...], "head": {...}}``."""
    from jaxrank.cli import _pipeline as P
    from jaxrank.eval import evaluate
    from jaxrank.fusion import fuse
    from jaxrank.retrieve import build_index, searcher

    if depth < 10:
        raise UserError(f"--depth must be >= 10, got {depth}")
    if steps < 0:
        raise UserError(f"--steps must be >= 0, got {steps}")
    say = P.log if verbose else (lambda msg: None)
    clock, total = P.Timer(), P.Timer()
    col = P.load_collection(data, split)
    if col.qrels is None:
        raise UserError(f"{data}: no qrels/{split}.tsv, so nothing to evaluate")
    if not col.query_ids:
        raise UserError(f"{data}: no judged query is in queries.jsonl")
    if stemmer == "auto":
        stemmer = P.default_stemmer()
    elif stemmer == "none":
        stemmer = None
    say(
        f"jaxrank demo: {col.name}: {len(col.doc_ids)} documents, {len(col.query_ids)} "
        f"judged queries, {len(col.qrels)} judgments (stemmer: {stemmer or 'none'})"
    )
    stages, timings = [], {}

    def record(name: str, run, note: str) -> None:
        ev = evaluate(col.qrels, run, list(MEASURES))
        t = clock.lap()
        timings[name] = t
        row = {"stage": name, "note": note, "seconds": round(t, 3)}
        row.update({COLUMNS[k]: float(v) for k, v in ev.summary.items() if k in COLUMNS})
        stages.append(row)
        say(f"  {name:<8} {t:6.2f}s  nDCG@10 {row['nDCG@10']:.4f}  ({note})")

    index = build_index(col.docs, col.doc_ids, stemmer=stemmer)
    timings["index"] = clock.lap()
    say(
        f"  index    {timings['index']:6.2f}s  {index.n_terms} terms, "
        f"{len(index.post_doc)} postings"
    )
    k = min(depth, index.n_docs)
    terms = P.query_terms(index, col.queries)
    s = searcher(index, "lucene", k1=1.2, b=0.75)
    bm25 = s.search(col.queries, k).to_run(col.query_ids, name="bm25")
    record("bm25", bm25, "Lucene BM25, k1=1.2 b=0.75")

    dim = dim or (128 if index.n_docs > 2000 else 32)
    lsa = P.fit_lsa(index, dim, seed=seed)
    lsa_run = P.lsa_search(lsa, index, terms, col.query_ids, k)
    record("lsa", lsa_run, f"truncated SVD of TF-IDF, {lsa.doc_vectors.shape[1]} dims, cosine")

    fused = dataclasses.replace(
        fuse([bm25, lsa_run], method="rrf", norm=None, k=k, rrf_k=60), name="rrf"
    )
    record("rrf", fused, "reciprocal rank fusion of bm25 + lsa, k=60")

    cand, fused_scores = P.run_candidates(fused, index, k, col.query_ids)
    ms = P.maxsim_scores(lsa, index, terms, cand)
    maxsim_run = P.scored_run(col.query_ids, cand, ms, index.doc_ids, "maxsim")
    record("maxsim", maxsim_run, f"MaxSim rerank of the rrf top {k}, LSA term vectors")

    head = _train_head(col, index, lsa, terms, cand, bm25, fused_scores, ms, steps, seed, say)
    timings["head"] = clock.lap()
    return {
        "collection": {
            "name": col.name,
            "documents": len(col.doc_ids),
            "queries": len(col.query_ids),
            "judgments": len(col.qrels),
            "stemmer": stemmer,
        },
        "stages": stages,
        "head": head,
        "seconds": {k: round(v, 3) for k, v in timings.items()} | {"total": total.lap()},
    }


def _scores_of(run, i: int) -> np.ndarray:
    return run.scores[run.offsets[i] : run.offsets[i + 1]]


def _features(col, index, lsa, terms, cand, bm25, fused_scores, ms) -> np.ndarray:
    """``[Q, C, 5]``: bm25 score, retrieved by bm25, LSA cosine, MaxSim, RRF score."""
    import jax.numpy as jnp

    from jaxrank.cli import _pipeline as P

    qv = P.lsa_queries(lsa, index, terms)
    qv = qv / jnp.maximum(jnp.linalg.norm(qv, axis=1, keepdims=True), 1e-12)
    dv = lsa.doc_vectors / jnp.maximum(
        jnp.linalg.norm(lsa.doc_vectors, axis=1, keepdims=True), 1e-12
    )
    c = max(len(x) for x in cand)
    x = np.zeros((len(cand), c, 5), np.float32)
    bm_docs, bm_scores = P.run_candidates(bm25, index, len(index.doc_ids), col.query_ids)
    for i, docs in enumerate(cand):
        n = len(docs)
        b = dict(zip(bm_docs[i].tolist(), bm_scores[i].tolist(), strict=True))
        x[i, :n, 0] = [b.get(int(d), 0.0) for d in docs]
        x[i, :n, 1] = [float(int(d) in b) for d in docs]
        x[i, :n, 2] = np.asarray(dv[docs] @ qv[i])
        x[i, :n, 3] = ms[i]
        x[i, :n, 4] = fused_scores[i]
    return x


def soft_ndcg_loss(scores, labels, *, where, strength: float = 0.02):
    """``-nDCG`` with soft ranks (:func:`jaxrank.losses.soft_rank_ndcg_loss`), the
    regularization strength relative to the spread of each list's scores."""
    from jaxrank.losses import soft_rank_ndcg_loss

    return soft_rank_ndcg_loss(
        scores, labels, where, regularization_strength=strength, relative_strength=True
    )


def _train_head(col, index, lsa, terms, cand, bm25, fused_scores, ms, steps, seed, say) -> dict:
    import optax
    from flax import nnx

    from jaxrank._progress import progress
    from jaxrank.cli import _pipeline as P
    from jaxrank.eval import evaluate
    from jaxrank.nn import MLPScorer, predict, train_step

    x = _features(col, index, lsa, terms, cand, bm25, fused_scores, ms)
    where = np.zeros(x.shape[:2], bool)
    for i, c in enumerate(cand):
        where[i, : len(c)] = True
    rel = col.qrels.to_dict()
    y = np.zeros(x.shape[:2], np.float32)
    for i, (q, c) in enumerate(zip(col.query_ids, cand, strict=True)):
        jq = rel.get(q, {})
        y[i, : len(c)] = [max(jq.get(d, 0), 0) for d in index.doc_ids[c].tolist()]
    train = np.arange(len(cand)) % 2 == 0  # even queries train, odd ones are held out
    test = ~train
    model = MLPScorer(x.shape[-1], hidden=(16,), log1p=False, standardize=True, rngs=nnx.Rngs(seed))
    model.fit_normalizer(x[train], where[train])
    opt = nnx.Optimizer(model, optax.adam(0.05), wrt=nnx.Param)

    def ndcg10(part, docs, scores, name: str) -> float:
        """trec_eval nDCG@10 over the queries in ``part``: ``docs[i]`` scored by ``scores[i]``."""
        idx = np.flatnonzero(part)
        run = P.scored_run(
            [col.query_ids[i] for i in idx],
            [docs[i] for i in idx],
            [scores[i] for i in idx],
            index.doc_ids,
            name,
        )
        return float(evaluate(col.qrels, run, ["ndcg_cut.10"]).summary["ndcg_cut_10"])

    def ndcg_of(part) -> float:
        s = predict(model, x, where)
        return ndcg10(part, cand, [s[i, : len(c)] for i, c in enumerate(cand)], "head")

    xt, yt, wt = x[train], y[train], where[train]
    before = {"train": ndcg_of(train), "held_out": ndcg_of(test)}
    losses = []
    for _ in progress(range(steps), desc="train head", delay=0.5):
        losses.append(float(train_step(model, opt, xt, yt, wt, loss_fn=soft_ndcg_loss)))
    final = float(soft_ndcg_loss(model(xt, where=wt), yt, where=wt))
    after = {"train": ndcg_of(train), "held_out": ndcg_of(test)}
    bm_docs, bm_scores = P.run_candidates(bm25, index, len(index.doc_ids), col.query_ids)
    baseline = {
        "bm25": ndcg10(test, bm_docs, bm_scores, "bm25"),
        "rrf": ndcg10(test, cand, fused_scores, "rrf"),
        "maxsim": ndcg10(test, cand, ms, "maxsim"),
    }
    say(
        f"  head     {steps} steps: soft-nDCG loss {losses[0] if losses else final:.4f} -> "
        f"{final:.4f}; held-out nDCG@10 {before['held_out']:.4f} -> {after['held_out']:.4f}"
    )
    return {
        "model": "MLPScorer(5 features: bm25, bm25 retrieved, lsa cosine, maxsim, rrf; hidden 16)",
        "loss": "-soft nDCG (jaxrank.losses.soft_rank_ndcg_loss, eps = 0.02 std; adam 0.05)",
        "steps": steps,
        "train_queries": int(train.sum()),
        "held_out_queries": int(test.sum()),
        "loss_before": losses[0] if losses else final,
        "loss_after": final,
        "ndcg10_before": before,
        "ndcg10_after": after,
        "held_out_baselines": baseline,
    }


def format_result(r: dict) -> str:
    c = r["collection"]
    out = [
        f"jaxrank demo on {c['name']}: {c['documents']} documents, {c['queries']} queries, "
        f"{c['judgments']} judgments\n",
        "| stage | nDCG@10 | MAP | R@100 | MRR | seconds | what |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for s in r["stages"]:
        out.append(
            f"| {s['stage']} | {s['nDCG@10']:.4f} | {s['MAP']:.4f} | {s['R@100']:.4f} | "
            f"{s['MRR']:.4f} | {s['seconds']:.2f} | {s['note']} |"
        )
    h = r["head"]
    out += [
        "",
        f"Learned head: {h['model']}",
        f"trained {h['steps']} steps on {h['train_queries']} queries with {h['loss']}",
        "",
        "| | loss (train) | nDCG@10 train | nDCG@10 held out |",
        "|---|---:|---:|---:|",
        f"| before | {h['loss_before']:.4f} | {h['ndcg10_before']['train']:.4f} | "
        f"{h['ndcg10_before']['held_out']:.4f} |",
        f"| after | {h['loss_after']:.4f} | {h['ndcg10_after']['train']:.4f} | "
        f"{h['ndcg10_after']['held_out']:.4f} |",
        f"held-out nDCG@10 of bm25 {h['held_out_baselines']['bm25']:.4f}, "
        f"rrf {h['held_out_baselines']['rrf']:.4f}, "
        f"maxsim {h['held_out_baselines']['maxsim']:.4f} "
        f"({h['held_out_queries']} queries)",
        f"total {r['seconds']['total']:.1f}s",
    ]
    return "\n".join(out) + "\n"

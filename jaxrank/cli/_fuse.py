"""``jaxrank fuse RUN1 RUN2 ... --method rrf --norm min-max -o fused.trec``: rank fusion."""

from __future__ import annotations

import argparse

from jaxrank.cli import HelpFormatter, UserError
from jaxrank.cli._common import add_qrels_format, add_run_output, load_qrels, write_run_output

EPILOG = """\
examples:
  jaxrank fuse bm25.trec dense.trec -o fused.trec             # RRF (k=60)
  jaxrank fuse a.trec b.trec --method wsum --weights 0.3,0.7 --norm min-max
  jaxrank fuse a.trec b.trec --method probfuse --qrels train.qrels --format json
"""


def _floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.replace(",", " ").split()]
    except ValueError as err:
        raise argparse.ArgumentTypeError(
            f"must be numbers separated by commas, got {text!r}"
        ) from err


def register(sub) -> None:
    from jaxrank.fusion import METHODS, NORMALIZATIONS, TRAINED

    p = sub.add_parser(
        "fuse",
        help="fuse TREC runs (RRF, CombSUM, CombMNZ, Borda, ... 30 methods)",
        description=(
            "Fuse two or more TREC runs into one. Each query is fused over the runs that "
            "have it; ties are broken by doc id descending (trec_eval order). Trained "
            f"methods ({', '.join(TRAINED)}) need --qrels."
        ),
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    p.add_argument("runs", nargs="+", help="TREC run files (gzip accepted)")
    p.add_argument("--method", default="rrf", choices=METHODS, help="fusion method (rrf)")
    p.add_argument(
        "--norm",
        default="min-max",
        choices=[*NORMALIZATIONS, "zscore"],
        help="score normalization applied to each run first (min-max, as ranx)",
    )
    p.add_argument("--weights", type=_floats, help="run weights, e.g. 0.3,0.7")
    p.add_argument("--rrf-k", type=float, default=60.0, help="RRF constant k (60)")
    p.add_argument("--zero-based", action="store_true", help="RRF with the top document at rank 0")
    p.add_argument("--alpha", type=float, help="interpolation weight of the first run")
    p.add_argument("--gamma", type=float, help="CombGMNZ exponent")
    p.add_argument("--phi", type=float, help="RBC persistence")
    p.add_argument("--window", type=int, default=2, help="SlideFuse window (2)")
    p.add_argument("--segments", type=int, default=10, help="ProbFuse segments (10)")
    p.add_argument("--qrels", help="qrels to train the probabilistic methods on")
    add_qrels_format(p)
    p.add_argument(
        "--rank-from",
        choices=("score", "file"),
        default="score",
        help="ranks from scores (ranx, default) or the file's rank column (Pyserini)",
    )
    p.add_argument("-k", "--depth", type=int, default=1000, help="documents kept per query")
    p.add_argument("--float64", action="store_true", help="compute in float64")
    add_run_output(p, default_name=None)
    p.set_defaults(func=run)


def run(args) -> int:
    from jaxrank.fusion import TRAINED, fuse, train
    from jaxrank.fusion._host import runs_to_arrays

    if len(args.runs) < 2:
        raise UserError("fuse needs at least two runs")
    params: dict = {}
    if args.method == "rrf":
        params["rrf_k"] = args.rrf_k
    for name in ("alpha", "gamma", "phi"):
        if getattr(args, name) is not None:
            params[name] = getattr(args, name)
    if args.method == "slidefuse":
        params["w"] = args.window
    if args.method in TRAINED:
        if not args.qrels:
            raise UserError(f"--method {args.method} is trained from judgments: give --qrels")
        x = runs_to_arrays(args.runs)
        params.update(
            train(
                args.method,
                x,
                load_qrels(args.qrels, args.qrels_format),
                rank_from=args.rank_from,
                n_segments=args.segments,
            )
        )
    fused = fuse(
        args.runs,
        method=args.method,
        norm=args.norm,
        k=args.depth,
        weights=args.weights,
        rank_from=args.rank_from,
        zero_based=args.zero_based,
        dtype="float64" if args.float64 else "float32",
        **params,
    )
    write_run_output(fused, args.output, args.format, args.run_name or f"jaxrank-{args.method}")
    return 0

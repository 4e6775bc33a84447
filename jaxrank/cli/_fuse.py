"""``jaxrank fuse RUN1 RUN2 ... --method rrf --norm min-max -o fused.trec``: rank fusion."""

from __future__ import annotations

import sys

from jaxrank.cli import UserError


def _floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.replace(",", " ").split()]
    except ValueError as err:
        raise UserError(f"--weights must be numbers separated by commas: {text!r}") from err


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
    p.add_argument(
        "--rank-from",
        choices=("score", "file"),
        default="score",
        help="ranks from scores (ranx, default) or the file's rank column (Pyserini)",
    )
    p.add_argument("-k", "--depth", type=int, default=1000, help="documents kept per query")
    p.add_argument("--float64", action="store_true", help="compute in float64")
    p.add_argument("--tag", help="run tag written in the last column")
    p.add_argument("-o", "--output", default="-", help="output file (default: stdout)")
    p.set_defaults(func=run)


def run(args) -> int:
    from jaxrank.fusion import TRAINED, fuse, train
    from jaxrank.fusion._host import runs_to_arrays
    from jaxrank.io import write_run

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
        from jaxrank.cli._common import load_qrels

        x = runs_to_arrays(args.runs)
        params.update(
            train(
                args.method,
                x,
                load_qrels(args.qrels),
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
    tag = args.tag or f"jaxrank-{args.method}"
    if args.output == "-":
        import tempfile

        with tempfile.NamedTemporaryFile("r", suffix=".trec") as tmp:
            write_run(fused, tmp.name, name=tag)
            sys.stdout.write(open(tmp.name).read())
    else:
        write_run(fused, args.output, name=tag)
    return 0

"""``jaxrank index CORPUS INDEX_DIR``: tokenize a corpus and save an inverted index."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

from jaxrank.cli import HelpFormatter, UserError

METHODS = ("robertson", "lucene", "atire", "bm25l", "bm25+", "tfidf", "ql_dirichlet", "ql_jm")


def add_method_args(p: argparse.ArgumentParser, *, defaults: bool) -> None:
    """Scoring options shared by ``index`` (saved as defaults) and ``search``."""
    d = (lambda v: v) if defaults else (lambda v: None)
    p.add_argument("--method", choices=METHODS, default=d("lucene"), help="scoring method")
    p.add_argument("--k1", type=float, default=d(1.2), help="BM25 k1 (default 1.2)")
    p.add_argument("--b", type=float, default=d(0.75), help="BM25 b (default 0.75)")
    p.add_argument("--delta", type=float, default=d(0.5), help="BM25L/BM25+ delta (0.5)")
    p.add_argument("--mu", type=float, default=d(1000.0), help="QL Dirichlet mu (1000)")
    p.add_argument("--lam", type=float, default=d(0.1), help="QL Jelinek-Mercer lambda (0.1)")


def method_params(method: str, values: dict) -> dict:
    """The keyword arguments of ``searcher`` that ``method`` uses."""
    keys = {"tfidf": (), "ql_dirichlet": ("mu",), "ql_jm": ("lam",)}.get(
        method, ("k1", "b", "delta")
    )
    return {k: values[k] for k in keys if values.get(k) is not None}


EPILOG = """\
examples:
  jaxrank index beir/scifact idx/                     # Lucene BM25 defaults, Snowball stems
  jaxrank index corpus.jsonl idx/ --method bm25+ --k1 0.9 --b 0.4 --stemmer none
  jaxrank index beir/scifact idx/ --format json       # statistics as JSON on stdout
"""


def register(sub) -> None:
    p = sub.add_parser(
        "index",
        help="build a lexical (BM25) index from a BEIR corpus.jsonl",
        description=(
            "Tokenize CORPUS (a BEIR corpus.jsonl, or a BEIR folder containing one; "
            "title + ' ' + text per document) and write a memory-mappable index to "
            "INDEX_DIR. The scoring options are saved as defaults for `jaxrank search`."
        ),
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    p.add_argument("corpus", help="corpus.jsonl (or a BEIR folder)")
    p.add_argument("index_dir", help="output directory")
    add_method_args(p, defaults=True)
    p.add_argument(
        "--stopwords",
        default="en",
        help="'en' (33-word Lucene list, default), 'en_plus' (NLTK, 179 words) or 'none'",
    )
    p.add_argument("--stemmer", default="english", help="Snowball language (PyStemmer) or 'none'")
    p.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="report as a line on stderr (text, default) or as JSON on stdout",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from jaxrank.io import read_beir_jsonl
    from jaxrank.retrieve import build_index, save_index

    corpus = Path(args.corpus)
    if corpus.is_dir():
        corpus = corpus / "corpus.jsonl"
    if not corpus.is_file():
        raise UserError(f"{corpus}: no such corpus file")
    t0 = time.perf_counter()
    ids, titles, texts = read_beir_jsonl(corpus, ("title", "text"))
    docs = [f"{t} {x}" if t else x for t, x in zip(titles, texts, strict=True)]
    stop = None if args.stopwords == "none" else args.stopwords
    stem = None if args.stemmer == "none" else args.stemmer
    index = build_index(docs, ids, stopwords=stop, stemmer=stem)
    defaults = {"method": args.method, **method_params(args.method, vars(args))}
    index = dataclasses.replace(index, defaults=defaults)
    save_index(index, args.index_dir)
    dt = time.perf_counter() - t0
    if args.format == "json":
        report = {
            "index_dir": str(args.index_dir),
            "documents": index.n_docs,
            "terms": index.n_terms,
            "postings": len(index.post_doc),
            "seconds": round(dt, 3),
            "defaults": defaults,
        }
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
        return 0
    print(
        f"indexed {index.n_docs} documents, {index.n_terms} terms, "
        f"{len(index.post_doc)} postings in {dt:.1f}s -> {args.index_dir}",
        file=sys.stderr,
    )
    return 0

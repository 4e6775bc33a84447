"""Example: BM25 + dense fusion on SciFact (300 test queries), nDCG@10 per system and fused.

Inputs (shared data, read-only):

* BM25: ``runs_generated/scifact/scifact-test.bm25s-lucene-k10.9-b0.4.top100.trec.gz``
  (bm25s, Lucene BM25 with Pyserini's defaults k1 = 0.9, b = 0.4; top-100);
* dense: ``embeddings/scifact-test.minilm-dense.top100.trec.gz`` (all-MiniLM-L6-v2,
  exact cosine top-100);
* qrels: ``beir_scifact/qrels/test.tsv``.

Fusions (``jaxrank.fusion.fuse``): RRF (k = 60), CombSUM after min-max and after z-score
(``zmuv``) normalization, CombMNZ (min-max) and a weighted sum with fixed 0.5 / 0.5
weights (nothing is tuned on the test queries). Evaluation: ``jaxrank.eval``
(trec_eval-exact), nDCG@10 and Recall@100.

Run: ``python bench/example_fusion_scifact.py [--data DIR]`` (a few seconds).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import data_dir, table

from jaxrank.eval import evaluate
from jaxrank.fusion import fuse
from jaxrank.io import read_beir_qrels, read_run

BM25 = "runs_generated/scifact/scifact-test.bm25s-lucene-k10.9-b0.4.top100.trec.gz"
DENSE = "embeddings/scifact-test.minilm-dense.top100.trec.gz"
QRELS = "beir_scifact/qrels/test.tsv"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=data_dir())
    args = ap.parse_args()
    qrels = read_beir_qrels(args.data / QRELS)
    bm25, dense = read_run(args.data / BM25), read_run(args.data / DENSE)
    systems = {"BM25 (bm25s Lucene, k1 0.9, b 0.4)": bm25, "dense (MiniLM, exact cosine)": dense}
    for label, kw in (
        ("RRF (k = 60)", {"method": "rrf", "rrf_k": 60}),
        ("CombSUM, min-max", {"method": "sum", "norm": "min-max"}),
        ("CombSUM, z-score", {"method": "sum", "norm": "zmuv"}),
        ("CombMNZ, min-max", {"method": "mnz", "norm": "min-max"}),
        ("wsum 0.5 / 0.5, min-max", {"method": "wsum", "norm": "min-max", "weights": [0.5, 0.5]}),
    ):
        systems[f"fused: {label}"] = fuse([bm25, dense], **kw)
    rows = []
    for name, run in systems.items():
        ev = evaluate(qrels, run, ["ndcg_cut.10", "recall.100"])
        rows.append([name, f"{ev.summary['ndcg_cut_10']:.4f}", f"{ev.summary['recall_100']:.4f}"])
    print("### SciFact test (300 queries): BM25 + dense fusion\n")
    print(table(["system", "nDCG@10", "Recall@100"], rows))


if __name__ == "__main__":
    main()

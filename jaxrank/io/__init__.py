"""Data formats: TREC runs and qrels, BEIR qrels, dict layouts <-> columnar arrays.

Strings, files and parsing live on the host (numpy); everything downstream works on
the dense integer indices these readers produce. :mod:`jaxrank.io._interop` converts
to and from ranx, pytrec_eval dicts and ir_datasets.
"""

from jaxrank.io._beir import BeirData, BeirFormatError, read_beir, read_beir_jsonl
from jaxrank.io._interop import (
    from_pytrec_eval,
    from_ranx,
    load_ir_datasets,
    to_pytrec_eval,
    to_ranx,
)
from jaxrank.io._svmlight import RankingData, SvmlightFormatError, read_svmlight
from jaxrank.io._trec import (
    Qrels,
    Run,
    TrecFormatError,
    read_beir_qrels,
    read_qrels,
    read_run,
    write_run,
)

__all__ = [
    "BeirData",
    "BeirFormatError",
    "Qrels",
    "RankingData",
    "Run",
    "SvmlightFormatError",
    "TrecFormatError",
    "from_pytrec_eval",
    "from_ranx",
    "load_ir_datasets",
    "read_beir",
    "read_beir_jsonl",
    "read_beir_qrels",
    "read_qrels",
    "read_run",
    "read_svmlight",
    "to_pytrec_eval",
    "to_ranx",
    "write_run",
]

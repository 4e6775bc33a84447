"""Data formats: TREC runs and qrels, BEIR qrels, dict layouts <-> columnar arrays.

Strings, files and parsing live on the host (numpy); everything downstream works on
the dense integer indices these readers produce.
"""

from jaxrank.io._beir import BeirData, BeirFormatError, read_beir, read_beir_jsonl
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
    "Run",
    "TrecFormatError",
    "read_beir",
    "read_beir_jsonl",
    "read_beir_qrels",
    "read_qrels",
    "read_run",
    "write_run",
]

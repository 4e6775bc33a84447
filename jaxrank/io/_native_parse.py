"""Native parsing of TREC run/qrels bytes (``ffi/trec_parse.cc``) via ctypes.

:func:`parse_columns` returns ``None`` when the native library is unavailable, and the
pure-Python reader in :mod:`jaxrank.io._trec` takes over; both produce the same result
and the same errors (file and line).
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

_I64P = ctypes.POINTER(ctypes.c_int64)
_I32P = ctypes.POINTER(ctypes.c_int32)
_F64P = ctypes.POINTER(ctypes.c_double)
_lib: Any = None
_tried = False


def _library():
    global _lib, _tried
    if _tried:
        return _lib
    _tried = True
    try:
        from jaxrank import _native

        lib = _native.library()
    except Exception:
        lib = None
    if lib is None or not hasattr(lib, "jaxrank_trec_fields"):
        return None
    lib.jaxrank_trec_count_lines.restype = ctypes.c_int64
    lib.jaxrank_trec_count_lines.argtypes = [ctypes.c_char_p, ctypes.c_int64]
    lib.jaxrank_trec_fields.restype = ctypes.c_int64
    lib.jaxrank_trec_fields.argtypes = [
        ctypes.c_char_p, ctypes.c_int64, ctypes.c_int32, ctypes.c_int32,
        _I64P, _I32P, _I64P, _I64P, _I32P,
    ]  # fmt: skip
    for name, out in (("jaxrank_trec_doubles", _F64P), ("jaxrank_trec_ints", _I64P)):
        fn = getattr(lib, name)
        fn.restype = ctypes.c_int64
        fn.argtypes = [ctypes.c_char_p, _I64P, _I32P, ctypes.c_int64, ctypes.c_int32,
                       ctypes.c_int32, out]  # fmt: skip
    lib.jaxrank_trec_runs.restype = ctypes.c_int64
    lib.jaxrank_trec_runs.argtypes = [ctypes.c_char_p, _I64P, _I32P, ctypes.c_int64,
                                      ctypes.c_int32, ctypes.c_int32, _I64P]  # fmt: skip
    lib.jaxrank_trec_join.restype = ctypes.c_int64
    lib.jaxrank_trec_join.argtypes = [
        ctypes.c_char_p, _I64P, _I32P, ctypes.c_int32, ctypes.c_int32, _I64P, ctypes.c_int64,
        ctypes.c_char_p,
    ]  # fmt: skip
    _lib = lib
    return lib


def _ptr(a: np.ndarray, kind):
    return a.ctypes.data_as(kind)


class NativeColumns:
    """Field spans of a parsed file; columns are materialized on demand."""

    def __init__(self, lib, data: bytes, ncols: int, starts, lens, line_no, nrec: int):
        self.lib, self.data, self.ncols = lib, data, ncols
        self.starts, self.lens, self.line_no, self.nrec = starts, lens, line_no, nrec

    def strings(self, col: int, rows: np.ndarray | None = None) -> list[str]:
        count = self.nrec if rows is None else len(rows)
        if count == 0:
            return []
        lens = self.lens.reshape(-1, self.ncols)[:, col]
        size = int(lens.sum() if rows is None else lens[rows].sum()) + count
        out = ctypes.create_string_buffer(size)
        rows_p = None if rows is None else _ptr(np.ascontiguousarray(rows, np.int64), _I64P)
        written = self.lib.jaxrank_trec_join(
            self.data, _ptr(self.starts, _I64P), _ptr(self.lens, _I32P), self.ncols, col,
            rows_p, count, out,
        )  # fmt: skip
        return out.raw[:written].decode("utf-8").split("\0")

    def numbers(self, col: int, dtype) -> tuple[np.ndarray, int]:
        """(values, index of the first bad record or -1)."""
        out = np.empty(self.nrec, np.float64 if dtype is np.float64 else np.int64)
        fn = self.lib.jaxrank_trec_doubles if dtype is np.float64 else self.lib.jaxrank_trec_ints
        bad = fn(self.data, _ptr(self.starts, _I64P), _ptr(self.lens, _I32P), self.nrec,
                 self.ncols, col, _ptr(out, _F64P if dtype is np.float64 else _I64P))  # fmt: skip
        return out, int(bad)

    def run_starts(self, col: int) -> np.ndarray:
        out = np.empty(max(self.nrec, 1), np.int64)
        k = self.lib.jaxrank_trec_runs(self.data, _ptr(self.starts, _I64P),
                                       _ptr(self.lens, _I32P), self.nrec, self.ncols, col,
                                       _ptr(out, _I64P))  # fmt: skip
        return out[:k]


def parse_columns(data: bytes, ncols: int, extra_ok: bool):
    """Spans of every record, ``("error", line, fields)`` for a malformed line, or
    ``None`` when the native library is unavailable."""
    lib = _library()
    if lib is None:
        return None
    lines = lib.jaxrank_trec_count_lines(data, len(data))
    starts = np.empty(max(lines, 1) * ncols, np.int64)
    lens = np.empty(max(lines, 1) * ncols, np.int32)
    line_no = np.empty(max(lines, 1), np.int64)
    err_line = ctypes.c_int64(0)
    err_fields = ctypes.c_int32(0)
    nrec = lib.jaxrank_trec_fields(
        data, len(data), ncols, int(extra_ok), _ptr(starts, _I64P), _ptr(lens, _I32P),
        _ptr(line_no, _I64P), ctypes.byref(err_line), ctypes.byref(err_fields),
    )  # fmt: skip
    if nrec < 0:
        return ("error", err_line.value, err_fields.value)
    return NativeColumns(lib, data, ncols, starts, lens, line_no, int(nrec))

"""Native CPU query path of :class:`jaxrank.retrieve.Searcher` (``ffi/lexical.cc``, ctypes).

The query path of a searcher is host-side (query arrays in, numpy top-k out), so on
CPU the native library's ``jaxrank_lexical_search`` is called directly: it
accumulates each query's postings (CSR term -> (doc, weight)) into a dense float32
buffer, tracking the touched documents, and selects the top-k (a heap for small
``k``, a partial selection otherwise), over query rows in parallel threads. It
rounds exactly as the pure-JAX path (same products and sums in the same order), so
both return identical scores and indices (tested).
"""

from __future__ import annotations

import ctypes
import os
from typing import Any

import numpy as np

_fn: Any = None
_MODE = 0  # tests: 1 forces the kernel's dense mode, 2 its sparse mode (0: per query)
_tried = False


def _kernel():
    """The ctypes function, or None when the native library (or the symbol) is missing."""
    global _fn, _tried
    if _tried:
        return _fn
    _tried = True
    try:
        from jaxrank import _native

        lib = _native.library()
    except Exception:
        lib = None
    if lib is None or not hasattr(lib, "jaxrank_lexical_search"):
        return None
    fn = lib.jaxrank_lexical_search
    p = ctypes.c_void_p
    i64 = ctypes.c_int64
    fn.restype = ctypes.c_int32
    i32 = ctypes.c_int32
    fn.argtypes = [i64, p, p, p, p, i64, i64, p, p, p, p, p, i64, i32, i32, p, p, p]
    _fn = fn
    return fn


def available() -> bool:
    return _kernel() is not None


def default_threads(value: int | None) -> int:
    """Threads for the kernel: ``value`` or ``JAXRANK_NUM_THREADS``; 0 = the usable cores."""
    from jaxrank import _native

    n = _native.num_threads(value)
    if n == 0:
        try:
            n = len(os.sched_getaffinity(0))
        except AttributeError:  # not Linux
            n = os.cpu_count() or 1
    return max(1, n)


def host_arrays(index, weights) -> dict[str, Any]:
    """The contiguous CSR arrays the kernel reads (views of the index where possible)."""
    prior = np.ascontiguousarray(weights.doc_prior, np.float32)
    return {
        "term_ptr": np.ascontiguousarray(index.term_ptr, np.int64),
        "post_doc": np.ascontiguousarray(index.post_doc, np.int32),
        "post_w": np.ascontiguousarray(weights.post_w, np.float32),
        "prior": prior if prior.any() else None,
    }


def search(host, n_docs, terms, weights, where, q_const, q_len, k, n_threads):
    """``(scores [Q, k], indices [Q, k], valid [Q, k])``; inputs as validated by search_terms."""
    fn = _kernel()
    n_q, n_t = terms.shape
    terms = np.ascontiguousarray(terms, np.int32)
    weights = np.ascontiguousarray(weights, np.float32)
    where = np.ascontiguousarray(where, np.uint8)
    q_const = np.ascontiguousarray(q_const, np.float32)
    q_len = np.ascontiguousarray(q_len, np.float32)
    out_s = np.empty((n_q, k), np.float32)
    out_i = np.empty((n_q, k), np.int32)
    out_v = np.empty((n_q, k), np.bool_)
    if n_q == 0:
        return out_s, out_i, out_v
    prior = host["prior"]
    # threads: at least 8 queries each (thread start-up costs tens of microseconds)
    threads = max(1, min(n_threads, n_q // 8))
    rc = fn(
        n_docs,
        host["term_ptr"].__array_interface__["data"][0],
        host["post_doc"].__array_interface__["data"][0],
        host["post_w"].__array_interface__["data"][0],
        None if prior is None else prior.__array_interface__["data"][0],
        n_q,
        n_t,
        terms.__array_interface__["data"][0],
        weights.__array_interface__["data"][0],
        where.__array_interface__["data"][0],
        q_const.__array_interface__["data"][0],
        q_len.__array_interface__["data"][0],
        k,
        threads,
        _MODE,
        out_s.__array_interface__["data"][0],
        out_i.__array_interface__["data"][0],
        out_v.__array_interface__["data"][0],
    )
    if rc != 0:
        raise RuntimeError(f"jaxrank_lexical_search failed (code {rc})")
    return out_s, out_i, out_v

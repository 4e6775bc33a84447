"""Helpers shared by the native-core tests (not a test module)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from jaxrank import _native


def require_native() -> None:
    """Fail (not skip) when the native core is missing, unless it was disabled on purpose."""
    if os.environ.get("JAXRANK_NATIVE") == "0":
        pytest.skip("JAXRANK_NATIVE=0: native core disabled on purpose")
    if not _native.available():
        pytest.fail(f"native core unavailable: {_native.native_info()}")


def maxsim_reference(q, docs, lengths=None, doc_mask=None, query_mask=None):
    """float64 numpy MaxSim (the formula of jaxrank.rerank.maxsim), [B, Lq, D] x [N, Ld, D]."""
    q = np.asarray(q, np.float64)
    docs = np.asarray(docs, np.float64)
    b, lq, _ = q.shape
    n, ld, _ = docs.shape
    valid = np.ones((n, ld), bool)
    if lengths is not None:
        valid &= np.arange(ld)[None, :] < np.asarray(lengths)[:, None]
    if doc_mask is not None:
        valid &= np.asarray(doc_mask)
    qm = np.ones((b, lq), bool) if query_mask is None else np.asarray(query_mask)
    sim = np.einsum("bid,njd->bnij", q, docs)
    sim = np.where(valid[None, :, None, :], sim, -np.inf)
    m = sim.max(axis=-1, initial=-np.inf)
    return np.where(qm[:, None, :], m, 0.0).sum(-1)


def assert_scores_close(got, want, rtol):
    got = np.asarray(got, np.float64)
    want = np.asarray(want, np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    fin = np.isfinite(want)
    np.testing.assert_array_equal(np.isfinite(got), fin)
    np.testing.assert_array_equal(got[~fin], want[~fin])
    scale = np.abs(want[fin]).max(initial=1.0)  # relative to the largest score of the batch
    np.testing.assert_allclose(got[fin], want[fin], rtol=rtol, atol=rtol * scale)

"""int8 codes with float32 scales; exact int32 scoring; MaxSim over int8 codes."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxrank import _native
from jaxrank.rerank._maxsim import _chunked, _doc_chunk, _lengths

Array = jax.Array
# Largest D for which an int32 dot product of int8 codes cannot overflow, for
# every code in [-128, 127] and for the VNNI u8 x s8 form with the +128 offset:
# |(q + 128) * d| <= 255 * 128 = 32640 and 2**31 // 32640 = 65793.
MAX_INT8_DIM = 65793


def quantize_int8(x: Array, *, axis: int = -1) -> tuple[Array, Array]:
    r"""Symmetric int8 quantization, one scale per vector along ``axis``.

    .. math::
        s = \max_k |x_k| / 127,\qquad c_k = \mathrm{round}(x_k / s) \in [-127, 127]

    so :math:`x_k \approx s\,c_k`. Codes never take the value -128 (the kernels
    accept it anyway). In float32 exactly: ``s = max|x| * f32(1/127)`` and
    ``c = clip(round_half_even(x * (1 / s)), -127, 127)`` (the reciprocal forms are
    spelled out, so XLA's division rewrites cannot change a code and the native
    search kernels, which quantize queries themselves, agree bit for bit). An all-zero
    vector gets scale 0 and zero codes. For multi-vector documents ``[N, Ld, D]``
    this gives one scale per token ``[N, Ld]``.

    Args:
      x: ``[..., D]`` floating array (any float dtype; computed in float32).
      axis: the vector axis.

    Returns:
      ``(codes, scales)``: int8 of ``x.shape`` and float32 of ``x.shape`` without
      ``axis``.

    Example:
      >>> import jax.numpy as jnp
      >>> codes, scale = quantize_int8(jnp.array([0.5, -1.0, 0.25]))
      >>> codes, scale * 127
      (Array([  64, -127,   32], dtype=int8), Array(1., dtype=float32))
    """
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"quantize_int8: x must be floating, got {x.dtype}")
    x = x.astype(jnp.float32)
    amax = jnp.max(jnp.abs(x), axis=axis, keepdims=True)
    scale = amax * np.float32(1 / 127)
    inv = 1.0 / jnp.where(scale > 0, scale, 1.0)
    codes = jnp.clip(jnp.round(x * inv), -127, 127).astype(jnp.int8)
    return codes, jnp.squeeze(scale, axis=axis)


def dequantize_int8(codes: Array, scales: Array, *, axis: int = -1) -> Array:
    """``codes * scales`` (scales broadcast along ``axis``) as float32.

    Example:
      >>> import jax.numpy as jnp
      >>> dequantize_int8(jnp.array([64, -127], jnp.int8), jnp.float32(1 / 127))
      Array([ 0.503937, -1.      ], dtype=float32)
    """
    codes = jnp.asarray(codes)
    scales = jnp.expand_dims(jnp.asarray(scales, jnp.float32), axis)
    return codes.astype(jnp.float32) * scales


def _check_codes(name: str, x: Array) -> Array:
    x = jnp.asarray(x)
    if x.dtype != jnp.int8:
        raise TypeError(f"{name} must be int8 codes, got {x.dtype}")
    return x


def int8_dot(
    q_codes: Array, codes: Array, *, impl: str = "auto", num_threads: int | None = None
) -> Array:
    r"""Exact int32 dot products of int8 codes: ``[..., D] x [N, D] -> [..., N]``.

    Bit-equal to ``jnp.dot(q, codes.T, preferred_element_type=jnp.int32)``; exact
    (no overflow) for ``D <= 65793`` (checked).

    Example:
      >>> import jax.numpy as jnp
      >>> q = jnp.array([1, -2, 3], jnp.int8)
      >>> codes = jnp.array([[1, 1, 1], [-128, 127, 0]], jnp.int8)
      >>> int8_dot(q, codes)
      Array([   2, -382], dtype=int32)
    """
    q = _check_codes("q_codes", q_codes)
    c = _check_codes("codes", codes)
    if q.ndim < 1 or c.ndim != 2:
        raise ValueError(
            f"int8_dot: expected q [..., D] and codes [N, D], got {q.shape}, {c.shape}"
        )
    if q.shape[-1] != c.shape[-1]:
        raise ValueError(f"int8_dot: D mismatch: q has {q.shape[-1]}, codes has {c.shape[-1]}")
    if q.shape[-1] > MAX_INT8_DIM:
        raise ValueError(f"int8_dot: D={q.shape[-1]} > {MAX_INT8_DIM} could overflow int32")
    batch, d, n = q.shape[:-1], q.shape[-1], c.shape[0]
    q2 = q.reshape(-1, d)
    threads = _native.num_threads(num_threads)

    def native(q2, c):
        call = jax.ffi.ffi_call(
            "jaxrank_int8_dot",
            jax.ShapeDtypeStruct((q2.shape[0], n), jnp.int32),
            vmap_method="expand_dims",
        )
        return call(q2, c, num_threads=np.int64(threads))

    def pure(q2, c):
        return jnp.dot(q2, c.T, preferred_element_type=jnp.int32)

    return _native.select(native, pure, q2, c, impl=impl).reshape((*batch, n))


def int8_scores(
    q: Array,
    codes: Array,
    scales: Array,
    *,
    q_scales: Array | None = None,
    impl: str = "auto",
    num_threads: int | None = None,
) -> Array:
    r"""Single-vector scores against int8-coded documents.

    .. math::
        s_{bn} = \sigma^q_b\, \sigma_n \sum_k c^q_{bk} c_{nk}

    with the integer sum exact in int32 (:func:`int8_dot`) and the two scales
    applied in float32 afterwards.

    Args:
      q: ``[..., D]`` float queries (quantized per vector with
        :func:`quantize_int8`), or int8 codes with ``q_scales`` ``[...]``.
      codes: ``[N, D]`` int8 document codes; ``scales``: ``[N]`` float32.

    Returns:
      ``[..., N]`` float32. Combine with :func:`jax.lax.top_k` for search.

    Example:
      >>> import jax.numpy as jnp
      >>> docs = jnp.array([[1.0, 0.0], [0.6, 0.8]])
      >>> codes, scales = quantize_int8(docs)
      >>> int8_scores(jnp.array([1.0, 0.0]), codes, scales)
      Array([1.        , 0.59842515], dtype=float32)
    """
    q = jnp.asarray(q)
    if q.dtype == jnp.int8:
        if q_scales is None:
            raise ValueError("int8_scores: int8 q needs q_scales")
        qc, qs = q, jnp.asarray(q_scales, jnp.float32)
        if qs.shape != q.shape[:-1]:
            raise ValueError(
                f"int8_scores: q_scales must have shape {q.shape[:-1]}, got {qs.shape}"
            )
    else:
        qc, qs = quantize_int8(q)
    scales = jnp.asarray(scales, jnp.float32)
    codes = jnp.asarray(codes)
    if codes.ndim != 2 or scales.shape != codes.shape[:1]:
        raise ValueError(
            f"int8_scores: codes must be [N, D] with scales [N], got {codes.shape}, {scales.shape}"
        )
    dots = int8_dot(qc, codes, impl=impl, num_threads=num_threads)
    return dots.astype(jnp.float32) * (qs[..., None] * scales)


def _maxsim_i8_jax(qc, qs, qw, dc, ds, lengths, mask, has_mask, chunk):
    b, lq, _ = qc.shape
    n, ld, _ = dc.shape
    c = _doc_chunk(b, lq, ld, n, chunk)

    def block(dcc, dsc, lc, mc):
        dots = jnp.einsum("bid,njd->bnij", qc, dcc, preferred_element_type=jnp.int32)
        vals = dots.astype(jnp.float32) * dsc[None, :, None, :]
        valid = jnp.arange(ld)[None, :] < lc[:, None]
        if mc is not None:
            valid = valid & (mc != 0)
        valid = valid & ~jnp.isnan(dsc)  # a NaN-scale token never matches (as native)
        vals = jnp.where(valid[None, :, None, :], vals, -jnp.inf)
        m = jnp.max(vals, axis=-1, initial=-jnp.inf)
        w = qw * qs
        contrib = jnp.where(qw[:, None, :] != 0, w[:, None, :] * m, 0.0)
        return (jnp.sum(contrib, axis=-1),)

    if n == 0:
        return jnp.zeros((b, 0), jnp.float32)
    if has_mask:
        main, tail = _chunked(block, n, c, dc, ds, lengths, mask)
    else:
        main, tail = _chunked(lambda a, s, ln: block(a, s, ln, None), n, c, dc, ds, lengths)
    parts = []
    if main is not None:
        parts.append(jnp.moveaxis(main[0], 0, 1).reshape(b, -1))
    if tail is not None:
        parts.append(tail[0])
    return jnp.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]


def maxsim_int8(
    q: Array,
    doc_codes: Array,
    doc_scales: Array,
    *,
    q_scales: Array | None = None,
    doc_lengths: Array | None = None,
    doc_mask: Array | None = None,
    query_mask: Array | None = None,
    impl: str = "auto",
    num_threads: int | None = None,
    chunk_size: int | None = None,
) -> Array:
    r"""MaxSim over int8 codes (per-token or per-document scales).

    .. math::
        s(q, d) = \sum_{i:\ \mathrm{qm}_i} \sigma^q_i \max_{j\ \mathrm{valid}}
                  \big(\sigma_j \cdot \mathrm{float32}(\textstyle\sum_k c^q_{ik} c_{jk})\big)

    Accumulation rules: each token-pair dot product is an exact int32 sum
    (``D <= 65793``; the VNNI kernel's +128 offset on the query side is removed
    exactly); it is then dequantized per query token (one float32 rounding of
    the int32→float conversion when ``|dot| > 2**24``, one of the multiply by
    the document token scale), the max is taken in float32 and the sum over
    query tokens is carried in float64 by the native kernel. Summing raw int32
    maxima over query tokens is *not* done: 32 tokens × D = 4096 × 127² is
    already within 2% of 2³¹. With per-document scales (``doc_scales`` of
    shape ``[N]``) the arg-max is the same as the integer one.

    Args:
      q: ``[..., Lq, D]`` float queries (quantized per token) or int8 codes
        with ``q_scales`` ``[..., Lq]``.
      doc_codes: ``[N, Ld, D]`` int8; ``doc_scales``: ``[N, Ld]`` or ``[N]``.
      doc_lengths, doc_mask, query_mask: as in :func:`jaxrank.rerank.maxsim`.

    Returns:
      ``[..., N]`` float32 scores (``-inf`` for a document with no valid token). A
      document token with a NaN scale never matches (as NaN tokens in
      :func:`maxsim`); a query with a NaN component has a NaN scale and NaN scores.
      Both paths agree (tested).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jaxrank.rerank import maxsim
      >>> q = jax.random.normal(jax.random.key(0), (8, 64))
      >>> docs = jax.random.normal(jax.random.key(1), (5, 20, 64))
      >>> codes, scales = quantize_int8(docs)
      >>> approx = maxsim_int8(q, codes, scales)
      >>> bool(jnp.allclose(approx, maxsim(q, docs), rtol=0.02))
      True
    """
    q = jnp.asarray(q)
    if q.dtype == jnp.int8:
        if q_scales is None:
            raise ValueError("maxsim_int8: int8 q needs q_scales")
        qc, qs = q, jnp.asarray(q_scales, jnp.float32)
        if qs.shape != q.shape[:-1]:
            raise ValueError(
                f"maxsim_int8: q_scales must have shape {q.shape[:-1]}, got {qs.shape}"
            )
    else:
        qc, qs = quantize_int8(q)
    dc = _check_codes("doc_codes", doc_codes)
    if qc.ndim < 2 or dc.ndim != 3:
        raise ValueError(
            f"maxsim_int8: expected q [..., Lq, D] and doc_codes [N, Ld, D], got {q.shape}, "
            f"{dc.shape}"
        )
    n, ld, d = dc.shape
    if qc.shape[-1] != d:
        raise ValueError(f"maxsim_int8: D mismatch: q has D={qc.shape[-1]}, doc_codes has D={d}")
    if d > MAX_INT8_DIM:
        raise ValueError(f"maxsim_int8: D={d} > {MAX_INT8_DIM} could overflow int32")
    ds = jnp.asarray(doc_scales, jnp.float32)
    if ds.shape == (n,):
        ds = jnp.broadcast_to(ds[:, None], (n, ld))
    if ds.shape != (n, ld):
        raise ValueError(f"maxsim_int8: doc_scales must have shape ({n}, {ld}) or ({n},)")
    lengths = _lengths(doc_lengths, n, ld, "maxsim_int8")
    has_mask = doc_mask is not None
    if has_mask:
        mask = jnp.asarray(doc_mask)
        if mask.shape != (n, ld) or mask.dtype != jnp.bool_:
            raise ValueError(f"maxsim_int8: doc_mask must be bool [{n}, {ld}]")
    else:
        mask = jnp.zeros((0, 0), jnp.bool_)
    batch, lq = qc.shape[:-2], qc.shape[-2]
    qw = jnp.ones((*batch, lq), jnp.float32)
    if query_mask is not None:
        qm = jnp.asarray(query_mask)
        if qm.dtype != jnp.bool_:
            raise TypeError(f"maxsim_int8: query_mask must be boolean, got {qm.dtype}")
        qw = jnp.broadcast_to(qm, (*batch, lq)).astype(jnp.float32)
    b = math.prod(batch)
    threads = _native.num_threads(num_threads)

    def native(qc, qs, qw, dc, ds, lengths, mask):
        call = jax.ffi.ffi_call(
            "jaxrank_maxsim_int8",
            (jax.ShapeDtypeStruct((b, n), jnp.float32), jax.ShapeDtypeStruct((0,), jnp.int32)),
            vmap_method="expand_dims",
        )
        m = mask.astype(jnp.uint8) if has_mask else jnp.zeros((0, 0), jnp.uint8)
        return call(qc, qs, qw, dc, ds, lengths, m, num_threads=np.int64(threads))[0]

    def pure(qc, qs, qw, dc, ds, lengths, mask):
        return _maxsim_i8_jax(qc, qs, qw, dc, ds, lengths, mask, has_mask, chunk_size)

    out = _native.select(
        native,
        pure,
        qc.reshape(b, lq, d),
        qs.reshape(b, lq),
        qw.reshape(b, lq),
        dc,
        ds,
        lengths,
        mask,
        impl=impl,
    )
    return out.reshape((*batch, n))


def _maxsim_int8_argmax(
    q_codes: Array, doc_codes: Array, doc_scales: Array, *, doc_lengths: Array | None = None
) -> Array:
    """Native arg-max document token per query token, ``[B, N, Lq]`` int32 (for tests/debugging).

    Ties take the first token; a document without valid tokens gives 0.
    """
    qc = _check_codes("q_codes", q_codes)
    dc = _check_codes("doc_codes", doc_codes)
    b, lq, _ = qc.shape
    n, ld, _ = dc.shape
    ds = jnp.asarray(doc_scales, jnp.float32)
    lengths = _lengths(doc_lengths, n, ld, "maxsim_int8_argmax")
    call = jax.ffi.ffi_call(
        "jaxrank_maxsim_int8",
        (jax.ShapeDtypeStruct((b, n), jnp.float32), jax.ShapeDtypeStruct((b, n, lq), jnp.int32)),
        vmap_method="expand_dims",
    )
    if _native.resolve("native") != "native":
        raise RuntimeError("native core unavailable")
    ones = jnp.ones((b, lq), jnp.float32)
    return call(
        qc, ones, ones, dc, ds, lengths, jnp.zeros((0, 0), jnp.uint8), num_threads=np.int64(0)
    )[1]


__all__ = [
    "MAX_INT8_DIM",
    "dequantize_int8",
    "int8_dot",
    "int8_scores",
    "maxsim_int8",
    "quantize_int8",
]

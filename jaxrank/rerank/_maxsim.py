"""MaxSim (ColBERT late interaction): native CPU kernel, chunked pure-JAX path, custom VJP."""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxrank import _native

Array = jax.Array
# Elements of one [B, C, Lq, Ld] similarity block in the pure-JAX path (bounded memory).
_BLOCK_ELEMENTS = 1 << 23


class _Opts(NamedTuple):
    impl: str
    num_threads: int
    chunk: int | None
    has_mask: bool


def _check_float(name: str, x: Array) -> None:
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"{name} must be floating (float32/bfloat16/float16), got {x.dtype}")


def _doc_chunk(b: int, lq: int, ld: int, n: int, chunk: int | None) -> int:
    if chunk is not None:
        return max(1, min(int(chunk), max(n, 1)))
    return max(1, min(max(n, 1), _BLOCK_ELEMENTS // max(1, b * lq * ld)))


def _chunked(fn, n: int, c: int, *doc_args):
    """Apply ``fn(*chunk_args) -> tuple`` over documents in chunks of c, concatenating on axis 1
    of [B, N, ...] results (or axis 0 when ``fn`` returns doc-major arrays)."""
    full = n // c
    parts = []
    if full:

        def body(i):
            return fn(*(jax.lax.dynamic_slice_in_dim(a, i * c, c, axis=0) for a in doc_args))

        outs = jax.lax.map(body, jnp.arange(full))
        parts.append(outs)
    rest = n - full * c
    tail = fn(*(a[full * c :] for a in doc_args)) if rest else None
    return parts[0] if parts else None, tail


def _valid(lengths: Array, mask: Array, ld: int, has_mask: bool) -> Array:
    valid = jnp.arange(ld)[None, :] < lengths[:, None]
    return valid & (mask != 0) if has_mask else valid


def _jax_forward(q, qw, docs, lengths, mask, *, chunk, want_argmax, has_mask):
    """Pure-JAX MaxSim over doc chunks: q [B,Lq,D], docs [N,Ld,D] -> scores [B,N], argmax."""
    b, lq, _ = q.shape
    n, ld, _ = docs.shape
    c = _doc_chunk(b, lq, ld, n, chunk)

    # NaN tokens never match, as in the native kernels: a document token with a NaN
    # component is masked; a query token with one has max -inf (arg-max 0). Checked
    # per token (a pass over the inputs), not per similarity: a where(isnan(s)) on the
    # [B, c, Lq, Ld] block made this path 1.7x slower on XLA:CPU.
    q_nan = jnp.any(jnp.isnan(q), axis=-1)[:, None, :]  # [B, 1, Lq]

    def block(dc, lc, mc):
        s = jnp.einsum("bid,njd->bnij", q, dc, preferred_element_type=jnp.float32)
        valid = _valid(lc, mc, ld, has_mask) & ~jnp.any(jnp.isnan(dc), axis=-1)
        s = jnp.where(valid[None, :, None, :], s, -jnp.inf)
        m = jnp.where(q_nan, -jnp.inf, jnp.max(s, axis=-1, initial=-jnp.inf))
        contrib = jnp.where(qw[:, None, :] != 0, qw[:, None, :] * m, 0.0)
        score = jnp.sum(contrib, axis=-1)
        am = None
        if want_argmax:
            am = jnp.where(q_nan, 0, jnp.argmax(s, axis=-1)).astype(jnp.int32)
        return score, am

    if n == 0:
        empty = jnp.zeros((b, 0), jnp.float32)
        return empty, (jnp.zeros((b, 0, lq), jnp.int32) if want_argmax else None)
    if has_mask:
        main, tail = _chunked(block, n, c, docs, lengths, mask)
    else:
        main, tail = _chunked(lambda dc, lc: block(dc, lc, None), n, c, docs, lengths)
    scores, ams = [], []
    if main is not None:
        s, a = main  # [nc, B, c], [nc, B, c, Lq]
        scores.append(jnp.moveaxis(s, 0, 1).reshape(b, -1))
        if want_argmax:
            ams.append(jnp.moveaxis(a, 0, 1).reshape(b, -1, lq))
    if tail is not None:
        scores.append(tail[0])
        if want_argmax:
            ams.append(tail[1])
    score = jnp.concatenate(scores, axis=1) if len(scores) > 1 else scores[0]
    am = None
    if want_argmax:
        am = jnp.concatenate(ams, axis=1) if len(ams) > 1 else ams[0]
    return score, am


def _native_forward(q, qw, docs, lengths, mask, *, num_threads, want_argmax):
    b, lq, _ = q.shape
    n = docs.shape[0]
    am_shape = (b, n, lq) if want_argmax else (0,)
    call = jax.ffi.ffi_call(
        "jaxrank_maxsim",
        (jax.ShapeDtypeStruct((b, n), jnp.float32), jax.ShapeDtypeStruct(am_shape, jnp.int32)),
        vmap_method="expand_dims",
    )
    score, am = call(q, qw, docs, lengths, mask, num_threads=np.int64(num_threads))
    return score, (am if want_argmax else None)


def _forward(q, qw, docs, lengths, mask, opts: _Opts, want_argmax: bool):
    def native(q, qw, docs, lengths, mask):
        mask_arg = mask.astype(jnp.uint8) if opts.has_mask else jnp.zeros((0, 0), jnp.uint8)
        return _native_forward(
            q, qw, docs, lengths, mask_arg, num_threads=opts.num_threads, want_argmax=want_argmax
        )

    def pure(q, qw, docs, lengths, mask):
        return _jax_forward(
            q,
            qw,
            docs,
            lengths,
            mask,
            chunk=opts.chunk,
            want_argmax=want_argmax,
            has_mask=opts.has_mask,
        )

    return _native.select(native, pure, q, qw, docs, lengths, mask, impl=opts.impl)


@functools.partial(jax.custom_vjp, nondiff_argnums=(5,))
def _maxsim_core(q, qw, docs, lengths, mask, opts: _Opts):
    return _forward(q, qw, docs, lengths, mask, opts, want_argmax=False)[0]


def _core_fwd(q, qw, docs, lengths, mask, opts):
    score, am = _forward(q, qw, docs, lengths, mask, opts, want_argmax=True)
    return score, (q, qw, docs, lengths, mask, am)


def _core_bwd(opts, res, g):
    """Gradient through the argmax doc token of each query token (plain JAX, chunked)."""
    q, qw, docs, lengths, mask, am = res
    b, lq, _ = q.shape
    n, ld, _ = docs.shape
    c = _doc_chunk(b, lq, ld, n, opts.chunk)
    nonempty = jnp.any(_valid(lengths, mask, ld, opts.has_mask), axis=-1)  # [N]
    # coefficient of <q_i, d_{n, am}> in score[b, n]
    coef = jnp.where(nonempty[None, :, None], g[:, :, None] * qw[:, None, :], 0.0)

    def block(dc, ac, cc):  # dc [C,Ld,D], ac [B,C,Lq], cc [B,C,Lq] (doc-major slices below)
        w = jax.nn.one_hot(ac, ld, dtype=jnp.float32) * cc[..., None]  # [B,C,Lq,Ld]
        dq = jnp.einsum("bnij,njd->bid", w, dc.astype(jnp.float32))
        dd = jnp.einsum("bnij,bid->njd", w, q.astype(jnp.float32))
        return dq, dd

    if n == 0:
        dq = jnp.zeros(q.shape, jnp.float32)
        dd = jnp.zeros(docs.shape, jnp.float32)
    else:
        am_t = jnp.moveaxis(am, 1, 0)  # doc-major for chunking
        coef_t = jnp.moveaxis(coef, 1, 0)

        def block_t(dc, ac, cc):
            return block(dc, jnp.moveaxis(ac, 0, 1), jnp.moveaxis(cc, 0, 1))

        main, tail = _chunked(block_t, n, c, docs, am_t, coef_t)
        dq = jnp.zeros(q.shape, jnp.float32)
        dds = []
        if main is not None:
            dq = dq + jnp.sum(main[0], axis=0)
            dds.append(main[1].reshape(-1, ld, docs.shape[2]))
        if tail is not None:
            dq = dq + tail[0]
            dds.append(tail[1])
        dd = jnp.concatenate(dds, axis=0) if len(dds) > 1 else dds[0]
    # Token weights (query_mask) get their exact gradient: d score / d w_i = max_j <q_i, d_j>.
    return (dq.astype(q.dtype), None, dd.astype(docs.dtype), None, None)


_maxsim_core.defvjp(_core_fwd, _core_bwd)


def _prepare(q, docs, doc_lengths, doc_mask, query_mask, name="maxsim"):
    q = jnp.asarray(q)
    docs = jnp.asarray(docs)
    _check_float("q", q)
    _check_float("docs", docs)
    if q.ndim < 2:
        raise ValueError(f"{name}: q must have shape [..., Lq, D], got {q.shape}")
    if docs.ndim != 3:
        raise ValueError(f"{name}: docs must have shape [N, Ld, D], got {docs.shape}")
    if q.shape[-1] != docs.shape[-1]:
        raise ValueError(
            f"{name}: D mismatch: q has D={q.shape[-1]} but docs has D={docs.shape[-1]}"
        )
    n, ld, _ = docs.shape
    lengths = _lengths(doc_lengths, n, ld, name)
    if doc_mask is None:
        mask = jnp.zeros((0, 0), jnp.bool_)
    else:
        mask = jnp.asarray(doc_mask)
        if mask.shape != (n, ld):
            raise ValueError(f"{name}: doc_mask must have shape {(n, ld)}, got {mask.shape}")
        if mask.dtype != jnp.bool_:
            raise TypeError(f"{name}: doc_mask must be boolean, got {mask.dtype}")
    batch = q.shape[:-2]
    lq = q.shape[-2]
    if query_mask is None:
        qw = jnp.ones((*batch, lq), jnp.float32)
    else:
        qm = jnp.asarray(query_mask)
        if qm.dtype != jnp.bool_:
            raise TypeError(f"{name}: query_mask must be boolean, got {qm.dtype}")
        try:
            qm = jnp.broadcast_to(qm, (*batch, lq))
        except ValueError:
            raise ValueError(
                f"{name}: query_mask of shape {qm.shape} does not broadcast to {(*batch, lq)}"
            ) from None
        qw = qm.astype(jnp.float32)
    return q, docs, lengths, mask, qw, batch


def _lengths(doc_lengths, n: int, ld: int, name: str) -> Array:
    if doc_lengths is None:
        return jnp.full((n,), ld, jnp.int32)
    lengths = doc_lengths
    if not isinstance(lengths, jax.core.Tracer):
        arr = np.asarray(lengths)
        if arr.shape != (n,):
            raise ValueError(f"{name}: doc_lengths must have shape ({n},), got {arr.shape}")
        if not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"{name}: doc_lengths must be integer, got {arr.dtype}")
        if arr.size and (arr.min() < 0 or arr.max() > ld):
            raise ValueError(
                f"{name}: doc_lengths must lie in [0, Ld={ld}], got range "
                f"[{arr.min()}, {arr.max()}]"
            )
    else:
        if lengths.shape != (n,):
            raise ValueError(f"{name}: doc_lengths must have shape ({n},), got {lengths.shape}")
        if not jnp.issubdtype(lengths.dtype, jnp.integer):
            raise TypeError(f"{name}: doc_lengths must be integer, got {lengths.dtype}")
    return jnp.asarray(lengths).astype(jnp.int32)


def maxsim(
    q: Array,
    docs: Array,
    *,
    doc_lengths: Array | None = None,
    doc_mask: Array | None = None,
    query_mask: Array | None = None,
    impl: str = "auto",
    num_threads: int | None = None,
    chunk_size: int | None = None,
) -> Array:
    r"""MaxSim late-interaction scores of queries against multi-vector documents.

    .. math::
        s(q, d) = \sum_{i:\ \mathrm{qm}_i} \max_{j:\ \mathrm{valid}_j} \langle q_i, d_j \rangle

    Args:
      q: ``[..., Lq, D]`` query token embeddings (float32, bfloat16 or float16;
        float32 accumulation). Leading axes are batch axes.
      docs: ``[N, Ld, D]`` document token embeddings, padded to ``Ld``; same
        float dtype family as ``q`` (mixed dtypes are computed in float32).
      doc_lengths: ``[N]`` int, valid tokens of each document (a prefix of
        ``Ld``), in ``[0, Ld]``; default all ``Ld``. Concrete values outside
        that range raise ``ValueError``; under ``jit`` the native kernel raises a
        runtime error and the pure-JAX path clamps.
      doc_mask: ``[N, Ld]`` bool, valid document tokens (any pattern); combined
        with ``doc_lengths`` when both are given.
      query_mask: bool broadcastable to ``[..., Lq]``; masked query tokens add
        nothing.
      impl: ``"auto"`` (native on CPU, pure JAX elsewhere; see
        :mod:`jaxrank.config`), ``"native"`` or ``"jax"``.
      num_threads: threads of the native kernel (default ``JAXRANK_NUM_THREADS``
        or all of XLA's CPU pool).
      chunk_size: documents per block of the pure-JAX path (default: blocks of
        about 8M similarity entries, so ``[B, N, Lq, Ld]`` is never built).

    Returns:
      ``[..., N]`` float32 scores. A document with no valid token scores
      ``-inf`` (it ranks last) unless every query token is masked (then 0);
      its gradient is zero. A NaN similarity counts as ``-inf`` on both paths
      (native and pure JAX, tested equal): a document token with a NaN component
      never matches, and a query token with one gives every document ``-inf``.

    Gradients flow to ``q`` and ``docs`` through the arg-max document token of
    each query token (``jax.custom_vjp``; ties take the first token). Works
    under ``jit`` and ``vmap`` (batched queries against shared documents are
    folded into one kernel call).

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxrank.rerank import maxsim
      >>> q = jnp.array([[1.0, 0.0], [0.0, 1.0]])          # Lq=2, D=2
      >>> docs = jnp.array([[[1.0, 0.0], [0.5, 0.5]],     # doc 0
      ...                   [[0.0, 2.0], [0.0, 0.0]]])    # doc 1 (1 valid token)
      >>> maxsim(q, docs, doc_lengths=jnp.array([2, 1]))
      Array([1.5, 2. ], dtype=float32)
    """
    q, docs, lengths, mask, qw, batch = _prepare(q, docs, doc_lengths, doc_mask, query_mask)
    if q.dtype != docs.dtype or q.dtype not in (jnp.float32, jnp.bfloat16):
        q, docs = q.astype(jnp.float32), docs.astype(jnp.float32)
    lq, d = q.shape[-2:]
    n = docs.shape[0]
    b = math.prod(batch)
    opts = _Opts(impl, _native.num_threads(num_threads), chunk_size, doc_mask is not None)
    scores = _maxsim_core(q.reshape(b, lq, d), qw.reshape(b, lq), docs, lengths, mask, opts)
    return scores.reshape((*batch, n))

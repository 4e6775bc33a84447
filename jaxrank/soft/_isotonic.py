"""Decreasing isotonic regression by pool-adjacent-violators (PAV), pure JAX.

Two regularizations, both solved on the last axis of ``[..., n]`` arrays, each
row restricted to its valid prefix of ``length`` items:

* ``isotonic_l2(y)``    = argmin_{v_1 >= ... >= v_m} 1/2 ||v - y||^2
  (block value: mean of ``y`` over the block);
* ``isotonic_kl(y, w)`` = argmin_{v_1 >= ... >= v_m} <exp(y - v), 1> + <exp(w), v>
  (block value: ``logsumexp(y_B) - logsumexp(w_B)``).

Both solutions are constant on blocks of consecutive items, so the Jacobian is
block-diagonal: block averages (l2) or block softmax weights (kl). The custom JVP
uses exactly that, which makes forward- and reverse-mode O(n) after one PAV pass.

How the block structure is found, per platform (``jax.lax.platform_dependent``):

* **CPU**: one scalar PAV loop per row (``lax.while_loop`` with the stack top in
  scalar registers and one read and one write of the stack arrays per step; at
  most ``2 m`` steps), rows one after another with ``lax.map``. XLA:CPU compiles
  such a loop to a tight kernel (~10-40 ns per step); vmapping it instead turns
  every scalar access into a batched gather and is 10-300x slower.
* **GPU / TPU**: the same loop vmapped over rows, so all rows advance in lock
  step (``2 n`` sequential steps, each a vector operation over the rows).
  Latency grows linearly with ``n``; throughput with the batch is free.
  (Not measured on an accelerator.)
* **CPU with the native core** (float32, the default there): the FFI kernel
  ``jaxrank_soft_pav`` (``ffi/soft.cc``) returns the block values and block ids
  directly (sums in double; kl keeps each ``logsumexp`` as a max and a scaled
  sum), 3-5x faster than the loop above. ``jaxrank.config.native_mode("jax")``
  forces the loop.

The custom JVP is the same for every path: plain JAX on the block ids (a
scatter-add and a gather), so JAX transposes it for reverse mode.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.custom_batching import custom_vmap
from jax.custom_derivatives import SymbolicZero

from jaxrank import _native


def _block_value(a, b, kl: bool):
    return a - b if kl else a / b


def _combine(a1, b1, a2, b2, kl: bool):
    if kl:
        return _lse2(a1, a2), _lse2(b1, b2)
    return a1 + a2, b1 + b2


def _lse2(a, b):
    hi = jnp.maximum(a, b)
    lo = jnp.minimum(a, b)
    return hi + jnp.log1p(jnp.exp(lo - hi))


def _pav_row(y, w, m, kl: bool):
    """Block ids ``[n]`` (0, 0, 1, 2, 2, ...) of the decreasing PAV solution of one row.

    The stack of finished blocks lives in three arrays (start, a, b); the two topmost
    blocks live in scalar registers. Each step either merges the top into the block
    below it (when they violate ``v_prev > v_top``; equal values merge, so ties
    always share a block) or pushes the next item. Positions ``>= m`` get ids of
    their own (never mixed with valid items).
    """
    n = y.shape[0]
    dt = y.dtype
    one = jnp.ones((), dt)

    def read(arr, k):
        return lax.dynamic_index_in_dim(arr, k, keepdims=False)

    def write(arr, v, k):
        return lax.dynamic_update_index_in_dim(arr, v, k, 0)

    def violated(t, pa, pb, ta, tb):
        return (t > 0) & (_block_value(pa, pb, kl) <= _block_value(ta, tb, kl))

    def body(st):
        # t: number of blocks below the top; prev = block t-1 (registers);
        # the arrays hold blocks 0..t-2.
        i, t, pa, pb, ps, ta, tb, ts, sa, sb, ss = st
        merge = violated(t, pa, pb, ta, tb)
        ma, mb = _combine(pa, pb, ta, tb, kl)
        # Write first and read after: XLA then updates the arrays in place (a read
        # of the old array after an in-place write would force a copy per step).
        k_w = jnp.maximum(t - 1, 0)
        sa, sb, ss = write(sa, pa, k_w), write(sb, pb, k_w), write(ss, ps, k_w)
        k_r = jnp.maximum(t - 2, 0)
        qa, qb, qs = read(sa, k_r), read(sb, k_r), read(ss, k_r)
        ic = jnp.minimum(i, n - 1)
        ya = read(y, ic)
        yb = read(w, ic) if kl else one
        return (
            jnp.where(merge, i, i + 1),
            jnp.where(merge, t - 1, t + 1),
            jnp.where(merge, qa, ta),
            jnp.where(merge, qb, tb),
            jnp.where(merge, qs, ts),
            jnp.where(merge, ma, ya),
            jnp.where(merge, mb, yb),
            jnp.where(merge, ps, i),
            sa,
            sb,
            ss,
        )

    def cond(st):
        i, t, pa, pb, _, ta, tb = st[:7]
        return (i < m) | violated(t, pa, pb, ta, tb)

    zeros = jnp.zeros((n,), dt)
    b0 = w[0] if kl else one
    init = (
        jnp.int32(1),
        jnp.int32(0),
        y[0],
        b0,
        jnp.int32(0),
        y[0],
        b0,
        jnp.int32(0),
        zeros,
        zeros,
        jnp.zeros((n,), jnp.int32),
    )
    _, t, _, _, ps, _, _, ts, _, _, ss = lax.while_loop(cond, body, init)
    ss = write(ss, ps, jnp.maximum(t - 1, 0))
    ss = write(ss, ts, t)
    pos = jnp.arange(n, dtype=jnp.int32)
    starts = jnp.where(pos <= t, ss, n)
    mark = jnp.zeros((n,), jnp.int32).at[starts].add(1, mode="drop")
    bid = jnp.cumsum(mark) - 1
    return jnp.where(pos < m, bid, pos)


def _block_ids_cpu(y, w, m, kl):
    return lax.map(lambda r: _pav_row(r[0], r[1], r[2], kl), (y, w, m))


def _block_ids_vmap(y, w, m, kl):
    return jax.vmap(functools.partial(_pav_row, kl=kl))(y, w, m)


def _block_ids_rows(y, w, m, kl):
    return lax.platform_dependent(
        y,
        w,
        m,
        cpu=functools.partial(_block_ids_cpu, kl=kl),
        default=functools.partial(_block_ids_vmap, kl=kl),
    )


@functools.cache
def _block_ids_fn(kl: bool):
    """``[R, n]`` block ids; under ``vmap`` the batch folds into the rows.

    Without the custom rule, a user's ``vmap`` would batch the scalar loop itself
    (every scalar access a gather), which is 10-300x slower on CPU.
    """

    @custom_vmap
    def fn(y, w, m):
        return _block_ids_rows(y, w, m, kl)

    @fn.def_vmap
    def _rule(axis_size, in_batched, y, w, m):
        def full(a, batched):
            return a if batched else jnp.broadcast_to(a, (axis_size, *a.shape))

        y, w, m = (full(a, bt) for a, bt in zip((y, w, m), in_batched, strict=True))
        out = fn(y.reshape(-1, y.shape[-1]), w.reshape(-1, w.shape[-1]), m.reshape(-1))
        return out.reshape(y.shape), True

    return fn


def block_ids(y, w, length, *, kl: bool):
    """Block ids of the PAV solution, ``[R, n]`` int32, for rows ``y, w: [R, n]``."""
    y = lax.stop_gradient(y)
    w = lax.stop_gradient(w)
    if y.shape[0] == 0:
        return jnp.zeros(y.shape, jnp.int32)
    return _block_ids_fn(kl)(y, w, length)


def _flat_ids(bid):
    rows, n = bid.shape
    return (bid + n * jnp.arange(rows, dtype=jnp.int32)[:, None]).reshape(-1), rows * n


def _seg_sum(data, gid, num):
    return jax.ops.segment_sum(data.reshape(-1), gid, num, indices_are_sorted=True)


def _seg_lse(data, gid, num):
    mx = jax.ops.segment_max(data.reshape(-1), gid, num, indices_are_sorted=True)
    mx = lax.stop_gradient(jnp.where(jnp.isfinite(mx), mx, 0.0))
    s = jax.ops.segment_sum(jnp.exp(data.reshape(-1) - mx[gid]), gid, num, indices_are_sorted=True)
    return jnp.log(s) + mx


def _as_rows(y, length):
    n = y.shape[-1]
    lead = y.shape[:-1]
    rows = y.reshape(-1, n)
    if length is None:
        m = jnp.full(rows.shape[0], n, jnp.int32)
    else:
        m = jnp.broadcast_to(jnp.asarray(length, jnp.int32), lead).reshape(-1)
    return rows, m


def _pav_rows_jax(a, b, m, kl: bool):
    """Pure JAX: block values ``(f_B(a), f_B(b))`` per item and block ids, rows ``[R, n]``.

    ``f`` is the mean (l2, blocks of ``a - b``) or ``logsumexp`` (kl).
    """
    if kl:
        bid = block_ids(a, b, m, kl=True)
        gid, num = _flat_ids(bid)
        ma, mb = _seg_lse(a, gid, num)[gid], _seg_lse(b, gid, num)[gid]
    else:
        d = a - b
        bid = block_ids(d, d, m, kl=False)
        gid, num = _flat_ids(bid)
        count = jnp.maximum(_seg_sum(jnp.ones_like(a), gid, num), 1)
        ma, mb = (_seg_sum(a, gid, num) / count)[gid], (_seg_sum(b, gid, num) / count)[gid]
    return ma.reshape(a.shape), mb.reshape(a.shape), bid


def _pav_rows_native(a, b, m, kl: bool):
    """The same from the native CPU kernel ``jaxrank_soft_pav`` (float32, sums in double)."""
    out = jax.ShapeDtypeStruct(a.shape, jnp.float32)
    call = jax.ffi.ffi_call(
        "jaxrank_soft_pav",
        (out, out, jax.ShapeDtypeStruct(a.shape, jnp.int32)),
        vmap_method="broadcast_all",
    )
    return call(a, b, m, kl=np.int64(kl))


def _pav_rows(a, b, m, kl: bool):
    a, b = lax.stop_gradient(a), lax.stop_gradient(b)
    if a.dtype == jnp.float32 and a.shape[0] > 0:
        return _native.select(
            functools.partial(_pav_rows_native, kl=kl),
            functools.partial(_pav_rows_jax, kl=kl),
            a,
            b,
            m,
        )
    return _pav_rows_jax(a, b, m, kl)


@functools.partial(jax.custom_jvp, nondiff_argnums=(3,))
def _pav(a, b, m, kl: bool):
    """``(f_B(a), f_B(b), block ids)`` for rows ``a, b: [R, n]``, valid prefixes ``m: [R]``.

    The Jacobian of ``f_B(a)`` is block-diagonal: the block average (l2) or the block
    softmax weights ``exp(a - lse_B(a))`` (kl). The tangent map is plain JAX on the
    block ids (a scatter-add and a gather per operand), so JAX transposes it for
    reverse mode; the forward may be the native kernel. The rule calls ``_pav``
    itself for the primal, so higher derivatives (kl) go through this rule again.
    """
    return _pav_rows(a, b, m, kl)


def _pav_jvp(kl, primals, tangents):
    a, b, m = primals
    da, db, _ = tangents
    ma, mb, bid = _pav(a, b, m, kl)
    gid, num = _flat_ids(bid)
    count = None if kl else jnp.maximum(_seg_sum(jnp.ones_like(a), gid, num), 1)

    def tangent(x, mx, dx):
        # One side is usually constant (rho in soft_rank, rho / eps in soft_sort):
        # its symbolic-zero tangent costs nothing.
        if isinstance(dx, SymbolicZero):
            return jnp.zeros_like(x)
        if kl:
            return _seg_sum(jnp.exp(x - mx) * dx, gid, num)[gid].reshape(x.shape)
        return (_seg_sum(dx, gid, num) / count)[gid].reshape(x.shape)

    zero_ids = np.zeros(bid.shape, jax.dtypes.float0)
    return (ma, mb, bid), (tangent(a, ma, da), tangent(b, mb, db), zero_ids)


_pav.defjvp(_pav_jvp, symbolic_zeros=True)


def l2_block_means(a, b, length):
    """Block means of ``a`` and of ``b`` over the PAV blocks of ``y = a - b``.

    ``isotonic_l2(a - b) = mean_B(a) - mean_B(b)``; returning the two parts lets
    callers cancel large terms exactly (``a - mean_B(a)`` is 0 on singleton blocks).
    """
    rows, m = _as_rows(a, length)
    ma, mb, _ = _pav(rows, jnp.broadcast_to(b, a.shape).reshape(rows.shape), m, False)
    return ma.reshape(a.shape), mb.reshape(a.shape)


def kl_block_lse(y, w, length):
    """``logsumexp`` of ``y`` and of ``w`` over the KL-PAV blocks (broadcast to items).

    ``isotonic_kl(y, w) = lse_B(y) - lse_B(w)``.
    """
    rows, m = _as_rows(y, length)
    ly, lw, _ = _pav(rows, jnp.broadcast_to(w, y.shape).reshape(rows.shape), m, True)
    return ly.reshape(y.shape), lw.reshape(y.shape)


def isotonic_l2(y: jax.Array, *, length: jax.Array | None = None) -> jax.Array:
    """Decreasing isotonic regression in the l2 sense on the last axis.

    ``v = argmin_{v_1 >= v_2 >= ... >= v_m} 1/2 ||v - y||^2`` for each row, over its
    first ``length`` items (all ``n`` by default; items past ``length`` are returned
    unchanged and never pooled with valid ones).

    Example:
        >>> import jax.numpy as jnp
        >>> isotonic_l2(jnp.array([1.0, 3.0, 2.0, 0.0]))
        Array([2., 2., 2., 0.], dtype=float32)
    """
    ma, mb = l2_block_means(y, jnp.zeros_like(y), length)
    return ma - mb


def isotonic_kl(y: jax.Array, w: jax.Array, *, length: jax.Array | None = None) -> jax.Array:
    """Decreasing isotonic regression in the KL sense on the last axis.

    ``v = argmin_{v_1 >= ... >= v_m} <exp(y - v), 1> + <exp(w), v>``; on each block
    ``B`` of the solution ``v_B = logsumexp(y_B) - logsumexp(w_B)``.

    Example:
        >>> import jax.numpy as jnp
        >>> isotonic_kl(jnp.array([0.0, 1.0]), jnp.array([0.0, 0.0]))
        Array([0.6201..., 0.6201...], dtype=float32)
    """
    ly, lw = kl_block_lse(y, w, length)
    return ly - lw

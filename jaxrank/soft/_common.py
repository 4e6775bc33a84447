"""Shared checks and sorting helpers for :mod:`jaxrank.soft` (private)."""

from __future__ import annotations

import numbers

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxrank import _native

_INT32_MAX = np.int32(np.iinfo(np.int32).max)


def check_x(x, where, fn: str, *, name: str = "x"):
    """Validate ``x [..., n]`` and ``where``; return float32+ ``x``, bool ``valid``, dtype."""
    x = jnp.asarray(x)
    if x.ndim < 1:
        raise ValueError(f"{fn}: `{name}` must have at least one axis [..., n], got a scalar")
    if jnp.issubdtype(x.dtype, jnp.complexfloating):
        raise TypeError(f"{fn}: `{name}` must be real, got dtype {x.dtype}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.float32)
    # bf16 / fp16 are computed in float32 (and returned as float32).
    x = x.astype(jnp.promote_types(x.dtype, jnp.float32))
    if where is None:
        valid = jnp.ones(x.shape, bool)
    else:
        where = jnp.asarray(where)
        if where.dtype != jnp.bool_:
            raise TypeError(f"{fn}: `where` must be a boolean mask, got dtype {where.dtype}")
        try:
            valid = jnp.broadcast_to(where, x.shape)
        except ValueError:
            raise ValueError(
                f"{fn}: `where` of shape {where.shape} does not broadcast to "
                f"`{name}` of shape {x.shape}"
            ) from None
    return x, valid


def check_choice(value, options, fn: str, name: str) -> str:
    v = value.lower() if isinstance(value, str) else value
    if v not in options:
        raise ValueError(f"{fn}: `{name}` must be one of {sorted(options)}, got {value!r}")
    return v


def check_positive_int(value, fn: str, name: str, *, minimum: int = 1) -> int:
    if not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{fn}: `{name}` must be a Python int >= {minimum}, got {value!r}")
    return int(value)


def check_strength(value, fn: str, name: str):
    """Static non-negative check when ``value`` is a Python number."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"{fn}: `{name}` must be finite and >= 0, got {value!r}")
        return float(value)
    return value


def _float_key32(x):
    """int32 key with the order of float32 ``x`` (negative floats flipped)."""
    i = lax.bitcast_convert_type(x.astype(jnp.float32), jnp.int32)
    return i ^ ((i >> 31) & jnp.int32(0x7FFFFFFF))


def _argsort_desc_packed(theta, valid):
    # One int64 key: order-preserving int32 key of -theta in the high half, the
    # index in the low half. A single-operand sort is ~7x faster on XLA:CPU than
    # sorting (key, index) pairs.
    k = jnp.where(valid, ~_float_key32(theta), _INT32_MAX)
    idx = lax.broadcasted_iota(jnp.int32, theta.shape, theta.ndim - 1)
    with jax.enable_x64(True):
        packed = (k.astype(jnp.int64) << 32) | idx.astype(jnp.uint32).astype(jnp.int64)
        packed = lax.sort(packed, dimension=theta.ndim - 1)
        return (packed & 0xFFFFFFFF).astype(jnp.int32)


def _argsort_desc_pairs(theta, valid):
    idx = lax.broadcasted_iota(jnp.int32, theta.shape, theta.ndim - 1)
    out = lax.sort(
        ((~valid).astype(jnp.int32), -theta, idx),
        dimension=theta.ndim - 1,
        num_keys=2,
        is_stable=True,
    )
    return out[2]


def _argsort_desc_native(theta, valid):
    call = jax.ffi.ffi_call(
        "jaxrank_soft_argsort",
        jax.ShapeDtypeStruct(theta.shape, jnp.int32),
        vmap_method="broadcast_all",
    )
    return call(theta, valid)


def _argsort_desc_jax(theta, valid):
    return lax.platform_dependent(
        theta, valid, cpu=_argsort_desc_packed, default=_argsort_desc_pairs
    )


def argsort_desc(theta, valid):
    """Stable descending argsort of ``theta`` on the last axis, invalid items last.

    float32 on CPU: the native radix sort (``jaxrank_soft_argsort``) when the native
    core is loaded, else one packed int64 key; other platforms and dtypes: a stable
    multi-operand ``lax.sort``.
    """
    if theta.shape[-1] == 0:
        return jnp.zeros(theta.shape, jnp.int32)
    theta = lax.stop_gradient(theta)  # integer output; the kernel has no JVP rule
    if theta.dtype == jnp.float32:
        return _native.select(_argsort_desc_native, _argsort_desc_jax, theta, valid)
    return _argsort_desc_pairs(theta, valid)


def invert_permutation(perm):
    """Inverse of permutations ``perm [..., n]`` along the last axis."""
    n = perm.shape[-1]
    rows = perm.reshape(-1, n)
    r = jnp.arange(rows.shape[0], dtype=jnp.int32)[:, None]
    iota = jnp.broadcast_to(jnp.arange(n, dtype=jnp.int32), rows.shape)
    inv = jnp.zeros_like(rows).at[r, rows].set(iota, unique_indices=True)
    return inv.reshape(perm.shape)


def take(x, idx):
    return jnp.take_along_axis(x, idx, axis=-1, mode="promise_in_bounds")


def masked_softmax_mask_value(dtype):
    return jnp.finfo(dtype).min

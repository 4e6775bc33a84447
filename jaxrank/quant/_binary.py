"""Binary (sign) codes and Hamming distances via popcount."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxrank import _native

Array = jax.Array


def binary_quantize(x: Array) -> Array:
    r"""Sign codes packed 8 per byte: bit ``k`` is ``x_k > 0``.

    ``[..., D] -> [..., ceil(D / 8)]`` uint8, big-endian bit order within a byte
    (as :func:`numpy.packbits`); the last byte is zero-padded. For unit vectors
    the Hamming distance ``h`` estimates the angle: :math:`\theta \approx \pi h / D`.

    Example:
      >>> import jax.numpy as jnp
      >>> binary_quantize(jnp.array([0.3, -1.0, 2.0, 0.0, 1.0, 1.0, -1.0, 1.0, 5.0]))
      Array([173, 128], dtype=uint8)
    """
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"binary_quantize: x must be floating, got {x.dtype}")
    return jnp.packbits(x > 0, axis=-1)


def hamming_distance(
    q_bits: Array, codes: Array, *, impl: str = "auto", num_threads: int | None = None
) -> Array:
    """Hamming distances between packed bit codes: ``[..., W] x [N, W] -> [..., N]`` int32.

    Popcount of ``q xor code`` over ``W`` bytes (AVX-512 VPOPCNTDQ in the native
    kernel, :func:`jax.lax.population_count` in pure JAX). Smaller is closer;
    use ``jax.lax.top_k(-dist, k)`` for first-stage candidates.

    Example:
      >>> import jax.numpy as jnp
      >>> hamming_distance(jnp.array([0b1111_0000], jnp.uint8),
      ...                  jnp.array([[0b1111_0000], [0b0000_1111]], jnp.uint8))
      Array([0, 8], dtype=int32)
    """
    q = jnp.asarray(q_bits)
    c = jnp.asarray(codes)
    if q.dtype != jnp.uint8 or c.dtype != jnp.uint8:
        raise TypeError(f"hamming_distance: codes must be uint8, got {q.dtype} and {c.dtype}")
    if q.ndim < 1 or c.ndim != 2 or q.shape[-1] != c.shape[-1]:
        raise ValueError(
            f"hamming_distance: expected q [..., W] and codes [N, W], got {q.shape}, {c.shape}"
        )
    batch, w, n = q.shape[:-1], q.shape[-1], c.shape[0]
    q2 = q.reshape(-1, w)
    threads = _native.num_threads(num_threads)

    def native(q2, c):
        call = jax.ffi.ffi_call(
            "jaxrank_hamming",
            jax.ShapeDtypeStruct((q2.shape[0], n), jnp.int32),
            vmap_method="expand_dims",
        )
        return call(q2, c, num_threads=np.int64(threads))

    def pure(q2, c):
        # bytes -> uint32 words would be faster but needs W % 4 == 0; bytes are general.
        x = jnp.bitwise_xor(q2[:, None, :], c[None, :, :])
        return jnp.sum(jax.lax.population_count(x).astype(jnp.int32), axis=-1)

    return _native.select(native, pure, q2, c, impl=impl).reshape((*batch, n))

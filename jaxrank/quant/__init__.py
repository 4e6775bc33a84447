"""Quantization: int8 codes with float32 scales, binary sign codes; quantized scoring.

* :func:`quantize_int8` / :func:`dequantize_int8`: symmetric per-vector (per-token
  for multi-vector documents) int8 codes.
* :func:`int8_dot` (exact int32), :func:`int8_scores` (single-vector scoring) and
  :func:`maxsim_int8` (late interaction over codes), native on CPU (AVX-512 VNNI).
* :func:`binary_quantize` and :func:`hamming_distance` (popcount) for first-stage
  candidate generation.

Example:
    >>> import jax, jax.numpy as jnp
    >>> from jaxrank.quant import quantize_int8, int8_scores
    >>> docs = jax.random.normal(jax.random.key(0), (1000, 64))
    >>> codes, scales = quantize_int8(docs)
    >>> q = docs[3]
    >>> int(jnp.argmax(int8_scores(q, codes, scales)))
    3
"""

from jaxrank.quant._binary import binary_quantize, hamming_distance
from jaxrank.quant._int8 import (
    MAX_INT8_DIM,
    dequantize_int8,
    int8_dot,
    int8_scores,
    maxsim_int8,
    quantize_int8,
)

__all__ = [
    "MAX_INT8_DIM",
    "binary_quantize",
    "dequantize_int8",
    "hamming_distance",
    "int8_dot",
    "int8_scores",
    "maxsim_int8",
    "quantize_int8",
]

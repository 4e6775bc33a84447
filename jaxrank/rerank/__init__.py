"""Reranking: MaxSim late interaction (ColBERT), with a native CPU kernel.

:func:`maxsim` scores queries ``[..., Lq, D]`` against multi-vector documents
``[N, Ld, D]``. On CPU it runs the XLA FFI kernel of :mod:`jaxrank._native`
(AVX-512 / AVX2 / portable, chosen at run time); elsewhere, or with
``impl="jax"``, a pure-JAX path that walks the documents in chunks so
``[B, N, Lq, Ld]`` is never materialized. Both paths agree to float32
rounding and share one ``jax.custom_vjp``.

Example:
    >>> import jax, jax.numpy as jnp
    >>> from jaxrank.rerank import maxsim
    >>> q = jax.random.normal(jax.random.key(0), (4, 32, 128))       # 4 queries
    >>> docs = jax.random.normal(jax.random.key(1), (100, 180, 128))
    >>> maxsim(q, docs, doc_lengths=jnp.full((100,), 150)).shape
    (4, 100)
"""

from jaxrank.rerank._maxsim import maxsim

__all__ = ["maxsim"]

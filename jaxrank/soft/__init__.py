"""Differentiable ranking, sorting and top-k that jit, vmap, grad and export to TPU.

One API, several relaxations of the hard sort / rank (each with a hard counterpart
it converges to as its temperature goes to 0):

* **Permutahedron projection** (Blondel et al. 2020): :func:`soft_rank`,
  :func:`soft_sort`, :func:`soft_topk`, :func:`soft_spearman`. O(n log n)
  forward (one sort + one PAV pass), O(n) backward (custom JVP, so forward and
  reverse mode both work). Values equal google-research/fast-soft-sort.
* **Relaxed permutation matrices** ``[..., n, n]``: :func:`neuralsort` (Grover
  et al. 2019), :func:`softsort` (Prillo & Eisenschlos 2020),
  :func:`sorting_network_permutation` (Petersen et al. 2021/2022); O(n^2).
* **Optimal transport** (Cuturi, Teboul & Vert 2019): :func:`sinkhorn_rank`,
  :func:`sinkhorn_sort`, log-domain Sinkhorn, O(T n^2).

All act on the last axis of ``[..., n]`` arrays, take a boolean ``where`` mask
(padded items never change valid results), and compute bf16 / fp16 inputs in
float32.

How the permutahedron path scales per platform (selected with
``jax.lax.platform_dependent``; both paths lower in every export):

* CPU, native core loaded (default; float32): two XLA FFI kernels
  (``ffi/soft.cc``): a stable LSD radix argsort (4 byte passes, insertion sort
  for <= 48 items) and a scalar PAV pass with the block sums in double, rows
  split over XLA's intra-op thread pool. O(n) per row for both (sort and PAV),
  ~10-20 ns per item. The backward is plain JAX on the block ids the PAV kernel
  returns (one scatter-add and one gather, O(n)), so ``grad``, ``jacfwd``,
  ``vmap`` and higher derivatives work unchanged. Exporting a graph that
  contains it needs ``disabled_checks=jaxrank.export_disabled_checks()``.
* CPU, pure JAX (``jaxrank.config.native_mode("jax")``, float64 inputs, or no
  native core): sort by one packed int64 key (order-preserving int32 key of the
  value and the index), then one scalar PAV loop per row, rows in sequence with
  ``lax.map`` -- O(n log n) + O(n) per row, ~2n loop steps of ~10-40 ns each
  (3-5x slower than the kernels at n = 1000).
* GPU / TPU: multi-operand ``lax.sort`` (stable), then the same PAV loop vmapped
  over rows (all rows in lock step): O(n) sequential steps per call regardless of
  the batch size (not measured on an accelerator).

Example:
    >>> import jax, jax.numpy as jnp
    >>> from jaxrank import soft
    >>> x = jnp.array([[0.3, 0.1, 0.2]])
    >>> soft.soft_rank(x, regularization_strength=0.1)
    Array([[3., 1., 2.]], dtype=float32)
    >>> jax.grad(lambda z: soft.soft_rank(z, regularization_strength=1.0)[0, 0])(x).round(4)
    Array([[ 0.6667, -0.3333, -0.3333]], dtype=float32)
    >>> soft.soft_rank(x, regularization_strength=0.0)  # exact, zero gradient
    Array([[3., 1., 2.]], dtype=float32)
"""

from jaxrank.soft._isotonic import isotonic_kl, isotonic_l2
from jaxrank.soft._neuralsort import hard_permutation, neuralsort
from jaxrank.soft._permutahedron import (
    hard_rank,
    hard_sort,
    permutahedron_projection,
    soft_rank,
    soft_sort,
)
from jaxrank.soft._sinkhorn import sinkhorn_rank, sinkhorn_sort
from jaxrank.soft._softsort import softsort
from jaxrank.soft._sorting_networks import sorting_network_permutation, sorting_network_sort
from jaxrank.soft._spearman import soft_spearman, tie_averaged_rank
from jaxrank.soft._topk import hard_topk, soft_topk

__all__ = [
    "hard_permutation",
    "hard_rank",
    "hard_sort",
    "hard_topk",
    "isotonic_kl",
    "isotonic_l2",
    "neuralsort",
    "permutahedron_projection",
    "sinkhorn_rank",
    "sinkhorn_sort",
    "soft_rank",
    "soft_sort",
    "soft_spearman",
    "soft_topk",
    "softsort",
    "sorting_network_permutation",
    "sorting_network_sort",
    "tie_averaged_rank",
]

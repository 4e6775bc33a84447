"""Differentiable sorting networks (Petersen et al. 2021, 2022).

A sorting network is a fixed sequence of layers of disjoint compare-and-swap
operations. Relaxing each swap decision with a sigmoid ``p = sigma((b - a) / tau)``
(probability that the pair is already in order) gives soft min/max

.. math::
    \\min{}' = p\\, a + (1 - p)\\, b, \\qquad \\max{}' = p\\, b + (1 - p)\\, a,

and, applied to the rows of an identity matrix, a doubly-stochastic relaxed
permutation matrix. ``relaxation="cauchy"`` uses
``sigma(z) = 1/2 + arctan(z) / pi``, the monotonic relaxation of Petersen et al.
(2022) whose heavy tails keep the relaxed network monotonic; ``"logistic"`` is
the original sigmoid. Networks:

* ``"odd_even"`` -- odd-even transposition: ``n`` layers, O(n^2) comparators.
* ``"bitonic"``  -- Batcher's bitonic sorter on ``n`` padded to a power of two
  ``N``: ``log2(N)(log2(N) + 1)/2`` layers, O(N log^2 N) comparators.

Padding (``where``) never mixes with valid items: valid items are moved to the
first ``m`` slots (stable), and a comparator that involves a padded slot is a hard
swap that moves the padded slot up. Each row then runs only the network of its
``m`` valid items: the first ``m`` layers of odd-even transposition, and for the
bitonic network only the merges of size ``<= M`` (``M`` the next power of two of
``m``; on slots ``[0, M)`` they are exactly the bitonic network of ``M`` slots, and
the larger merges would only re-compare sorted valid items). So padding -- also
padding that changes the padded power of two ``N`` -- never changes the valid
outputs.

Example:
    >>> import jax.numpy as jnp
    >>> from jaxrank.soft import sorting_network_sort
    >>> sorting_network_sort(jnp.array([3.0, 1.0, 2.0]), temperature=1e-6)
    Array([1., 2., 3.], dtype=float32)
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxrank.soft._common import argsort_desc, check_choice, check_x, take
from jaxrank.soft._neuralsort import _check_temperature

_DIRS = ("ascending", "descending")
_NETWORKS = ("odd_even", "bitonic")
_RELAX = ("cauchy", "logistic")


@functools.lru_cache(maxsize=64)
def _network(kind: str, n: int):
    """(N, partner [L, N], is_low [L, N], stage [L]) for a network sorting N >= n slots.

    ``stage`` is the size of the bitonic merge a layer belongs to (0 for odd-even).
    """
    layers = []
    if kind == "odd_even":
        size = n
        for t in range(n):
            partner = np.arange(n)
            low = np.zeros(n, bool)
            for i in range(t % 2, n - 1, 2):
                partner[i], partner[i + 1] = i + 1, i
                low[i] = True
            layers.append((partner, low, 0))
    else:
        size = 1 << max(0, (n - 1).bit_length())
        k = 2
        while k <= size:
            j = k // 2
            while j >= 1:
                partner = np.arange(size) ^ j
                i = np.arange(size)
                up = (i & k) == 0
                # i is the low (min) end of its pair iff (i < partner) == up.
                low = (i < partner) == up
                layers.append((partner, low, k))
                j //= 2
            k *= 2
        if not layers:
            layers.append((np.arange(size), np.zeros(size, bool), 0))
    partner = np.stack([p for p, _, _ in layers]).astype(np.int32)
    low = np.stack([lo for _, lo, _ in layers])
    stage = np.asarray([k for _, _, k in layers], np.int32)
    return size, partner, low, stage


def _sigma(z, relaxation):
    if relaxation == "cauchy":
        return 0.5 + jnp.arctan(z) / jnp.pi
    return jax.nn.sigmoid(z)


def _run(x, valid, temperature, network, relaxation, with_matrix):
    n = x.shape[-1]
    size, partner, low, stage = _network(network, n)
    # Valid items first (stable), padded slots (mask or power-of-two fill) after.
    perm = argsort_desc(jnp.zeros_like(x), valid)
    v = take(jnp.where(valid, x, 0), perm)
    pad = ~take(valid, perm)
    extra = size - n
    if extra:
        v = jnp.pad(v, [(0, 0)] * (v.ndim - 1) + [(0, extra)])
        pad = jnp.pad(pad, [(0, 0)] * (pad.ndim - 1) + [(0, extra)], constant_values=True)
    mat = jax.nn.one_hot(perm, n, dtype=x.dtype) if with_matrix else None
    if with_matrix and extra:
        mat = jnp.pad(mat, [(0, 0)] * (mat.ndim - 2) + [(0, extra), (0, 0)])

    m = jnp.sum(valid, axis=-1, keepdims=True)

    def layer(carry, net):
        v, pad, mat = carry
        part, lo, t, k = net
        vp = jnp.take(v, part, axis=-1)
        padp = jnp.take(pad, part, axis=-1)
        diff = jnp.where(lo, vp - v, v - vp)
        p = _sigma(diff / temperature, relaxation)
        # Hard decisions where a padded slot is involved: padding moves to the high end.
        hard = jnp.where(lo, ~pad, pad)  # keep own value?
        p = jnp.where(pad | padp, jnp.where(pad & padp, 1.0, hard.astype(v.dtype)), p)
        if network == "odd_even":
            # The network for m items is the first m layers: padding changes nothing.
            p = jnp.where(t < m, p, 1.0)
        else:
            # Valid items fill slots [0, m) ⊂ [0, M), M = next power of two >= m. The
            # merges of size k <= M restricted to [0, M) are exactly the bitonic network
            # of M slots; later merges (k/2 >= m, i.e. k > M) would only re-compare
            # already sorted valid items, so they are skipped: the result is the same
            # for every padded length n (and N).
            p = jnp.where(k // 2 < m, p, 1.0)
        new_v = p * v + (1 - p) * vp
        new_pad = jnp.where(p > 0.5, pad, padp)
        if mat is not None:
            matp = jnp.take(mat, part, axis=-2)
            mat = p[..., None] * mat + (1 - p[..., None]) * matp
        return (new_v, new_pad, mat), None

    (v, _, mat), _ = lax.scan(
        layer,
        (v, pad, mat),
        (jnp.asarray(partner), jnp.asarray(low), jnp.arange(len(partner)), jnp.asarray(stage)),
    )
    return v[..., :n], (mat[..., :n, :] if with_matrix else None)


def _prepare(x, where, fn, temperature, network, relaxation, direction):
    x, valid = check_x(x, where, fn)
    _check_temperature(temperature, fn)
    network = check_choice(network, _NETWORKS, fn, "network")
    relaxation = check_choice(relaxation, _RELAX, fn, "relaxation")
    sign = 1.0 if check_choice(direction, _DIRS, fn, "direction") == "ascending" else -1.0
    return sign * x, valid, sign, network, relaxation


def sorting_network_sort(
    x: jax.Array,
    *,
    temperature: float | jax.Array = 1.0,
    network: str = "odd_even",
    relaxation: str = "cauchy",
    direction: str = "ascending",
    where: jax.Array | None = None,
) -> jax.Array:
    """Soft sort ``[..., n]`` of ``x`` by a relaxed sorting network (padding 0 at the end).

    ``temperature`` is ``1 / beta`` (the steepness of the relaxation) on the scale of
    ``x``; ``-> 0`` gives the exact sort.

    Example:
        >>> import jax.numpy as jnp
        >>> sorting_network_sort(jnp.array([3.0, 1.0, 2.0, 0.0]), network="bitonic",
        ...                      temperature=1e-6, direction="descending")
        Array([3., 2., 1., 0.], dtype=float32)
    """
    x, valid, sign, network, relaxation = _prepare(
        x, where, "sorting_network_sort", temperature, network, relaxation, direction
    )
    v, _ = _run(x, valid, temperature, network, relaxation, with_matrix=False)
    m = jnp.sum(valid, axis=-1, keepdims=True)
    return jnp.where(jnp.arange(x.shape[-1]) < m, sign * v, 0)


def sorting_network_permutation(
    x: jax.Array,
    *,
    temperature: float | jax.Array = 1.0,
    network: str = "odd_even",
    relaxation: str = "cauchy",
    direction: str = "ascending",
    where: jax.Array | None = None,
) -> jax.Array:
    """Relaxed permutation matrix ``P [..., n, n]`` of a relaxed sorting network.

    ``P @ x`` equals :func:`sorting_network_sort` (same direction); rows are sorted
    positions, columns the original items; ``P`` is doubly stochastic on the valid
    block and zero elsewhere. O(L n^2) time for ``L`` layers.

    Example:
        >>> import jax.numpy as jnp
        >>> sorting_network_permutation(jnp.array([3.0, 1.0, 2.0]), temperature=1e-6)
        Array([[0., 1., 0.],
               [0., 0., 1.],
               [1., 0., 0.]], dtype=float32)
    """
    x, valid, _, network, relaxation = _prepare(
        x, where, "sorting_network_permutation", temperature, network, relaxation, direction
    )
    _, mat = _run(x, valid, temperature, network, relaxation, with_matrix=True)
    m = jnp.sum(valid, axis=-1, keepdims=True)
    rows = jnp.arange(x.shape[-1]) < m
    return jnp.where(rows[..., :, None] & valid[..., None, :], mat, 0)

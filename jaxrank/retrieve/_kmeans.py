"""k-means in JAX: k-means++ seeding, Lloyd iterations or mini-batch updates.

Used to partition a dense corpus for IVF search (:func:`jaxrank.retrieve.build_ivf`).
Distances are squared Euclidean computed as ``|x|^2 - 2 x.c + |c|^2`` in float32,
points are assigned in chunks (memory ``O(chunk x n_clusters)``). An empty cluster
keeps its previous centroid.

Example:
    >>> import jax, jax.numpy as jnp
    >>> from jaxrank.retrieve import kmeans
    >>> centers = jnp.array([[0.0, 0.0], [10.0, 10.0], [-10.0, 10.0]])
    >>> x = jnp.repeat(centers, 50, axis=0) + jax.random.normal(jax.random.key(0), (150, 2))
    >>> c, assign = kmeans(x, 3, key=jax.random.key(1))
    >>> sorted(jnp.round(c).astype(int).tolist())
    [[-10, 10], [0, 0], [10, 10]]
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax import lax

Array = jax.Array


def _sq_dist(x: Array, c: Array) -> Array:
    xx = jnp.sum(x * x, axis=-1, keepdims=True)
    cc = jnp.sum(c * c, axis=-1)
    return jnp.maximum(xx - 2.0 * jnp.dot(x, c.T, precision=lax.Precision.HIGHEST) + cc, 0.0)


def _assign(x: Array, c: Array, chunk: int) -> tuple[Array, Array]:
    """Nearest centroid and its squared distance, ``x`` processed ``chunk`` rows at a time."""

    def one(rows):
        d = _sq_dist(rows, c)
        a = jnp.argmin(d, axis=-1).astype(jnp.int32)
        return a, jnp.take_along_axis(d, a[..., None], -1)[..., 0]

    if x.shape[0] <= chunk:
        return one(x)
    return lax.map(one, x, batch_size=chunk)  # one row per call, vmapped over the chunk


@partial(jax.jit, static_argnames=("n_clusters",))
def kmeans_plusplus(x: Array, n_clusters: int, key: Array) -> Array:
    r"""k-means++ seeding (Arthur & Vassilvitskii, 2007): ``[N, D] -> [n_clusters, D]``.

    The first centroid is uniform; each next one is drawn with probability
    proportional to :math:`D(x)^2`, the squared distance to the nearest centroid so far.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> x = jnp.array([[0.0], [0.1], [100.0]])
      >>> c = kmeans_plusplus(x, 2, jax.random.key(0))
      >>> bool(jnp.any(c[:, 0] == 100.0))
      True
    """
    x = x.astype(jnp.float32)
    n = x.shape[0]
    k0, key = jax.random.split(key)
    first = jax.random.randint(k0, (), 0, n)
    cent = jnp.zeros((n_clusters, x.shape[1]), jnp.float32).at[0].set(x[first])
    dmin = jnp.sum(jnp.square(x - x[first]), axis=-1)

    def step(i, carry):
        cent, dmin, key = carry
        key, sub = jax.random.split(key)
        total = jnp.sum(dmin)
        logits = jnp.where(total > 0, jnp.log(jnp.maximum(dmin, 0.0)), 0.0)
        j = jax.random.categorical(sub, logits)
        cent = cent.at[i].set(x[j])
        dmin = jnp.minimum(dmin, jnp.sum(jnp.square(x - x[j]), axis=-1))
        return cent, dmin, key

    cent, _, _ = lax.fori_loop(1, n_clusters, step, (cent, dmin, key))
    return cent


def _unit(c: Array) -> Array:
    n = jnp.linalg.norm(c, axis=-1, keepdims=True)
    return c / jnp.where(n > 0, n, 1.0)


@partial(jax.jit, static_argnames=("iters", "chunk", "spherical"))
def _lloyd(x, cent, *, iters, chunk, spherical=False):
    def step(cent, _):
        a, d = _assign(x, cent, chunk)
        sums = jax.ops.segment_sum(x, a, num_segments=cent.shape[0])
        cnt = jax.ops.segment_sum(jnp.ones_like(d), a, num_segments=cent.shape[0])
        new = jnp.where(cnt[:, None] > 0, sums / jnp.maximum(cnt, 1.0)[:, None], cent)
        return (_unit(new) if spherical else new), jnp.sum(d)

    return lax.scan(step, cent, None, length=iters)


@partial(jax.jit, static_argnames=("iters", "batch_size", "spherical"))
def _minibatch(x, cent, key, *, iters, batch_size, spherical=False):
    """Sculley (2010): per-centroid learning rate 1/count."""

    def step(carry, key):
        cent, counts = carry
        idx = jax.random.randint(key, (batch_size,), 0, x.shape[0])
        xb = x[idx]
        a, d = _assign(xb, cent, batch_size)
        sums = jax.ops.segment_sum(xb, a, num_segments=cent.shape[0])
        cnt = jax.ops.segment_sum(jnp.ones_like(d), a, num_segments=cent.shape[0])
        counts = counts + cnt
        lr = jnp.where(counts > 0, cnt / jnp.maximum(counts, 1.0), 0.0)[:, None]
        mean = sums / jnp.maximum(cnt, 1.0)[:, None]
        cent = jnp.where(cnt[:, None] > 0, cent + lr * (mean - cent), cent)
        return (_unit(cent) if spherical else cent, counts), jnp.sum(d)

    counts = jnp.zeros((cent.shape[0],), jnp.float32)
    (cent, _), inertia = lax.scan(step, (cent, counts), jax.random.split(key, iters))
    return cent, inertia


def kmeans(
    x: Array,
    n_clusters: int,
    *,
    key: Array,
    iters: int = 20,
    init: str | Array = "k-means++",
    batch_size: int | None = None,
    chunk_size: int = 4096,
    spherical: bool = False,
) -> tuple[Array, Array]:
    r"""k-means clustering of ``x [N, D]`` into ``n_clusters`` centroids.

    Minimizes :math:`\sum_i \min_j \|x_i - c_j\|^2`. ``init`` is ``"k-means++"``
    (:func:`kmeans_plusplus`), ``"random"`` (distinct random points) or an array
    ``[n_clusters, D]``. With ``batch_size`` each of the ``iters`` steps is a
    mini-batch update (Sculley, 2010) on ``batch_size`` random points instead of a
    full Lloyd iteration. ``spherical=True`` keeps the centroids on the unit sphere
    (renormalized after every update; a zero centroid stays zero): for unit-norm
    data the nearest centroid is then the one of largest dot product, the
    assignment of inner-product IVF (spherical k-means, Dhillon & Modha, 2001).

    Returns:
      ``(centroids [n_clusters, D] float32, assignment [N] int32)``.

    Raises:
      ValueError: ``n_clusters`` not in ``[1, N]``, bad ``init``/``iters``/``batch_size``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> x = jnp.array([[0.0], [1.0], [10.0], [11.0]])
      >>> c, a = kmeans(x, 2, key=jax.random.key(0))
      >>> sorted(c[:, 0].tolist()), int(a[0] == a[1]), int(a[1] == a[2])
      ([0.5, 10.5], 1, 0)
    """
    x = jnp.asarray(x)
    if x.ndim != 2 or not jnp.issubdtype(x.dtype, jnp.floating):
        raise ValueError(f"x: expected a float [N, D] array, got {x.dtype}{x.shape}")
    n = x.shape[0]
    if not isinstance(n_clusters, int) or not 1 <= n_clusters <= n:
        raise ValueError(f"n_clusters: must be in [1, N={n}], got {n_clusters!r}")
    if iters < 0 or (batch_size is not None and batch_size < 1):
        raise ValueError(f"iters={iters} / batch_size={batch_size}: must be positive")
    x = x.astype(jnp.float32)
    k_init, k_mb = jax.random.split(key)
    if isinstance(init, str):
        if init == "k-means++":
            cent = kmeans_plusplus(x, n_clusters, k_init)
        elif init == "random":
            cent = x[jax.random.choice(k_init, n, (n_clusters,), replace=False)]
        else:
            raise ValueError(f"init: {init!r} is not 'k-means++', 'random' or an array")
    else:
        cent = jnp.asarray(init, jnp.float32)
        if cent.shape != (n_clusters, x.shape[1]):
            raise ValueError(f"init: expected [{n_clusters}, {x.shape[1]}], got {cent.shape}")
    if spherical:
        cent = _unit(cent)
    if iters:
        if batch_size is None:
            cent, _ = _lloyd(x, cent, iters=iters, chunk=chunk_size, spherical=spherical)
        else:
            bs = min(batch_size, n)
            cent, _ = _minibatch(x, cent, k_mb, iters=iters, batch_size=bs, spherical=spherical)
    assign, _ = jax.jit(_assign, static_argnums=2)(x, cent, chunk_size)
    return cent, assign


__all__ = ["kmeans", "kmeans_plusplus"]

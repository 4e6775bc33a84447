"""Flax NNX scoring heads for learning to rank and neural retrieval.

Every head maps per-item inputs to per-item outputs independently, so a padded item
never changes the output of a real one; ``where`` masks (``[..., list]``) set padded
outputs to 0 (a defined value, not a sentinel: losses and metrics take the same
``where``).

* :class:`MLPScorer` -- feature vectors ``[..., list, features]`` -> scores ``[..., list]``,
  with optional signed ``log1p`` and standardisation fit on training data.
* :class:`CrossEncoderHead` -- pooled encoder state ``[..., list, hidden]`` -> scores.
* :class:`LateInteractionHead` -- token states -> L2-normalised ColBERT vectors, MaxSim.
* :class:`DualEncoderHead` -- token states -> one (normalised) vector (mean/CLS/max pooling).

Example:
    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> from jaxrank.nn import MLPScorer
    >>> model = MLPScorer(4, hidden=(8,), rngs=nnx.Rngs(0))
    >>> x = jnp.ones((2, 3, 4))                   # [batch, list, features]
    >>> where = jnp.array([[1, 1, 0], [1, 1, 1]], bool)
    >>> nnx.jit(lambda m, x, w: m(x, where=w))(model, x, where).shape
    (2, 3)
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

__all__ = [
    "CrossEncoderHead",
    "DualEncoderHead",
    "FeatureStat",
    "LateInteractionHead",
    "MLPScorer",
    "maxsim",
    "pool_tokens",
    "signed_log1p",
]


class FeatureStat(nnx.Variable):
    """Non-trainable statistics (feature means and scales) stored in a module.

    Optimizers built with ``wrt=nnx.Param`` leave them alone; checkpoints and
    ``jax.export`` carry them with the parameters.
    """


def signed_log1p(x: jax.Array) -> jax.Array:
    r"""Sign-preserving log transform :math:`\operatorname{sign}(x)\log(1 + |x|)`.

    Equal to ``log1p`` for non-negative features (counts, BM25 scores) and odd, so
    negative features keep their order.

    Example:
        >>> import jax.numpy as jnp
        >>> [round(v, 4) for v in signed_log1p(jnp.array([-3.0, 0.0, 3.0])).tolist()]
        [-1.3863, 0.0, 1.3863]
    """
    return jnp.sign(x) * jnp.log1p(jnp.abs(x))


def _check_where(where, shape: tuple[int, ...], name: str = "where"):
    if where is None:
        return None
    where = jnp.asarray(where)
    if where.dtype != jnp.bool_:
        raise TypeError(f"{name} must be a boolean mask, got dtype {where.dtype}")
    if where.shape != shape:
        raise ValueError(f"{name} has shape {where.shape}, expected {shape}")
    return where


def _check_last(x, size: int, name: str, what: str) -> jax.Array:
    x = jnp.asarray(x)
    if x.ndim < 1 or x.shape[-1] != size:
        raise ValueError(f"{name} has shape {x.shape}; its last axis must be {what}={size}")
    return x


def _masked_zero(y: jax.Array, where) -> jax.Array:
    return y if where is None else jnp.where(where, y, jnp.zeros((), y.dtype))


class MLPScorer(nnx.Module):
    r"""Feed-forward scorer: one score per item from its feature vector.

    .. math::
        z = \frac{t(x) - \mu}{\sigma},\qquad
        s = w_K^\top\,\phi(W_{K-1}\cdots\phi(W_1 z + b_1)\cdots) + b_K

    where :math:`t` is :func:`signed_log1p` when ``log1p=True`` (else the identity) and
    :math:`\mu,\sigma` are the per-feature mean and standard deviation of :math:`t(x)`
    over the real (``where``) items of the training data, stored in the module by
    :meth:`fit_normalizer` (identity until then; features with zero spread get
    :math:`\sigma = 1`).

    Args:
        in_features: number of features ``F``.
        hidden: widths of the hidden layers (``()`` gives a linear scorer).
        activation: nonlinearity :math:`\phi`.
        dropout: dropout rate after each hidden layer (active in ``model.train()``
            mode, off after ``model.eval()``).
        log1p: apply :func:`signed_log1p` to the features first.
        standardize: subtract :math:`\mu` and divide by :math:`\sigma`.
        rngs: ``nnx.Rngs`` for initialisation (and a ``dropout`` stream).

    Call: ``model(features [..., list, F], where=None [..., list]) -> scores [..., list]``.

    Example:
        >>> import numpy as np, jax.numpy as jnp
        >>> from flax import nnx
        >>> x = np.random.default_rng(0).lognormal(size=(8, 5, 3)).astype("float32")
        >>> m = MLPScorer(3, hidden=(4,), log1p=True, standardize=True, rngs=nnx.Rngs(0))
        >>> m.fit_normalizer(x)
        >>> z = m.transform(jnp.asarray(x))
        >>> bool(abs(z.mean()) < 1e-5), bool(abs(z.std() - 1) < 1e-4)
        (True, True)
        >>> m(x).shape
        (8, 5)
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int] = (64, 32),
        *,
        activation: Callable[[jax.Array], jax.Array] = nnx.relu,
        dropout: float = 0.0,
        log1p: bool = False,
        standardize: bool = False,
        rngs: nnx.Rngs,
    ):
        if in_features < 1:
            raise ValueError(f"in_features must be positive, got {in_features}")
        self.in_features = in_features
        self.log1p = log1p
        self.standardize = standardize
        self.activation = activation
        self.mean = FeatureStat(jnp.zeros((in_features,), jnp.float32))
        self.scale = FeatureStat(jnp.ones((in_features,), jnp.float32))
        widths = [in_features, *hidden]
        self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in itertools.pairwise(widths)])
        self.dropout = nnx.Dropout(dropout, rngs=rngs) if dropout > 0 else None
        self.out = nnx.Linear(widths[-1], 1, rngs=rngs)

    def fit_normalizer(self, features, where=None) -> None:
        """Fit :math:`\\mu, \\sigma` on training ``features [..., F]`` (host-side, float64).

        ``where [...]`` (without the feature axis) selects the real items.
        """
        x = np.asarray(features, np.float64)
        if x.shape[-1] != self.in_features:
            raise ValueError(
                f"features has shape {x.shape}; its last axis must be "
                f"in_features={self.in_features}"
            )
        x = x.reshape(-1, self.in_features)
        if where is not None:
            w = np.asarray(where, bool)
            if w.shape != np.shape(features)[:-1]:
                raise ValueError(f"where has shape {w.shape}, expected {np.shape(features)[:-1]}")
            x = x[w.reshape(-1)]
        if x.shape[0] == 0:
            raise ValueError("fit_normalizer needs at least one item (where is all False)")
        if self.log1p:
            x = np.sign(x) * np.log1p(np.abs(x))
        if self.standardize:
            mean = x.mean(axis=0)
            std = x.std(axis=0)
            self.mean[...] = jnp.asarray(mean, jnp.float32)
            self.scale[...] = jnp.asarray(np.where(std > 1e-12, std, 1.0), jnp.float32)

    def transform(self, features: jax.Array) -> jax.Array:
        """The feature transform ``(t(x) - mu) / sigma`` applied before the first layer."""
        x = jnp.asarray(features, jnp.float32)
        if self.log1p:
            x = signed_log1p(x)
        if self.standardize:
            x = (x - self.mean[...]) / self.scale[...]
        return x

    def __call__(self, features: jax.Array, where: jax.Array | None = None) -> jax.Array:
        x = _check_last(features, self.in_features, "features", "in_features")
        where = _check_where(where, x.shape[:-1])
        h = self.transform(x)
        for layer in self.layers:
            h = self.activation(layer(h))
            if self.dropout is not None:
                h = self.dropout(h)
        return _masked_zero(self.out(h)[..., 0], where)


class CrossEncoderHead(nnx.Module):
    r"""Score head on a cross-encoder's pooled ``(query, document)`` state.

    .. math::
        s = w^\top \operatorname{dropout}(g(h)) + b,\qquad
        g(h) = \tanh(W h + c)\ \text{(if ``intermediate``) else } h

    (the BERT sequence-classification head with one output).

    Args:
        hidden_size: size ``H`` of the pooled state.
        intermediate: width of an optional ``tanh`` layer before the score.
        dropout: dropout rate on the pooled state (train mode only).
        rngs: ``nnx.Rngs``.

    Call: ``head(pooled [..., list, H], where=None [..., list]) -> scores [..., list]``.

    Example:
        >>> import jax.numpy as jnp
        >>> from flax import nnx
        >>> head = CrossEncoderHead(16, intermediate=8, rngs=nnx.Rngs(0))
        >>> head(jnp.ones((2, 5, 16))).shape
        (2, 5)
    """

    def __init__(
        self,
        hidden_size: int,
        *,
        intermediate: int | None = None,
        dropout: float = 0.0,
        rngs: nnx.Rngs,
    ):
        self.hidden_size = hidden_size
        self.dense = nnx.Linear(hidden_size, intermediate, rngs=rngs) if intermediate else None
        self.dropout = nnx.Dropout(dropout, rngs=rngs) if dropout > 0 else None
        self.out = nnx.Linear(intermediate or hidden_size, 1, rngs=rngs)

    def __call__(self, pooled: jax.Array, where: jax.Array | None = None) -> jax.Array:
        h = _check_last(pooled, self.hidden_size, "pooled", "hidden_size")
        where = _check_where(where, h.shape[:-1])
        if self.dense is not None:
            h = jnp.tanh(self.dense(h))
        if self.dropout is not None:
            h = self.dropout(h)
        return _masked_zero(self.out(h)[..., 0], where)


def maxsim(
    query: jax.Array,
    docs: jax.Array,
    *,
    query_mask: jax.Array | None = None,
    doc_mask: jax.Array | None = None,
    where: jax.Array | None = None,
) -> jax.Array:
    r"""ColBERT late-interaction score of one query against a list of documents.

    .. math::
        s_{l} = \sum_{i:\,m^q_i} \max_{j:\,m^d_{lj}} \langle q_i, d_{lj} \rangle

    A document without real tokens scores 0. This materialises
    ``[..., list, Tq, Td]`` similarities: meant for training heads on small lists;
    use the streaming kernels of :mod:`jaxrank.rerank` to score large candidate sets.

    Args:
        query: ``[..., Tq, D]`` query token vectors.
        docs: ``[..., list, Td, D]`` document token vectors.
        query_mask: ``bool [..., Tq]``; doc_mask: ``bool [..., list, Td]``.
        where: ``bool [..., list]`` real documents (padded ones score 0).

    Returns:
        ``[..., list]`` scores.

    Example:
        >>> import jax.numpy as jnp
        >>> q = jnp.array([[1.0, 0.0], [0.0, 1.0]])                  # Tq=2
        >>> d = jnp.array([[[1.0, 0.0], [0.6, 0.8]]])               # list=1, Td=2
        >>> [round(v, 4) for v in maxsim(q, d).tolist()]                # 1 + 0.8
        [1.8]
    """
    query = jnp.asarray(query)
    docs = jnp.asarray(docs)
    if query.ndim < 2 or docs.ndim < 3 or query.shape[-1] != docs.shape[-1]:
        raise ValueError(
            f"query [..., Tq, D] and docs [..., list, Td, D] must share D; got "
            f"query {query.shape}, docs {docs.shape}"
        )
    sim = jnp.einsum("...qd,...ltd->...lqt", query, docs, preferred_element_type=jnp.float32)
    if doc_mask is not None:
        doc_mask = _check_where(doc_mask, docs.shape[:-1], "doc_mask")
        sim = jnp.where(doc_mask[..., None, :], sim, -jnp.inf)
    best = jnp.max(sim, axis=-1)
    best = jnp.where(jnp.isfinite(best), best, 0.0)
    if query_mask is not None:
        query_mask = _check_where(query_mask, query.shape[:-1], "query_mask")
        best = jnp.where(query_mask[..., None, :], best, 0.0)
    scores = best.sum(axis=-1)
    where = _check_where(where, scores.shape)
    return _masked_zero(scores, where)


class LateInteractionHead(nnx.Module):
    r"""ColBERT projection: token states -> L2-normalised low-dimensional vectors.

    .. math::
        v_t = \frac{W h_t}{\max(\lVert W h_t \rVert_2, \epsilon)}, \qquad v_t = 0
        \text{ for masked tokens}

    Args:
        hidden_size: encoder width ``H``.
        dim: output dimension ``D`` (ColBERT uses 128).
        rngs: ``nnx.Rngs``.

    Call: ``head(tokens [..., T, H], mask=None [..., T]) -> [..., T, D]``;
    :meth:`score` applies :func:`maxsim` to the projected query and documents.

    Example:
        >>> import jax.numpy as jnp
        >>> from flax import nnx
        >>> head = LateInteractionHead(16, dim=4, rngs=nnx.Rngs(0))
        >>> q = head(jnp.ones((2, 3, 16)))                          # [batch, Tq, D]
        >>> d = head(jnp.ones((2, 5, 7, 16)))                       # [batch, list, Td, D]
        >>> head.score(q, d).shape
        (2, 5)
    """

    def __init__(self, hidden_size: int, dim: int = 128, *, eps: float = 1e-6, rngs: nnx.Rngs):
        self.hidden_size = hidden_size
        self.eps = eps
        self.proj = nnx.Linear(hidden_size, dim, use_bias=False, rngs=rngs)

    def __call__(self, tokens: jax.Array, mask: jax.Array | None = None) -> jax.Array:
        h = _check_last(tokens, self.hidden_size, "tokens", "hidden_size")
        mask = _check_where(mask, h.shape[:-1], "mask")
        v = self.proj(h).astype(jnp.float32)
        v = v / jnp.maximum(jnp.linalg.norm(v, axis=-1, keepdims=True), self.eps)
        return v if mask is None else jnp.where(mask[..., None], v, 0.0)

    def score(self, query, docs, *, query_mask=None, doc_mask=None, where=None) -> jax.Array:
        """:func:`maxsim` of projected ``query [..., Tq, D]`` and ``docs [..., list, Td, D]``."""
        return maxsim(query, docs, query_mask=query_mask, doc_mask=doc_mask, where=where)


def pool_tokens(tokens: jax.Array, mask: jax.Array | None = None, *, pooling: str = "mean"):
    r"""Pool token states ``[..., T, H]`` into ``[..., H]``.

    * ``"mean"``: :math:`\sum_t m_t h_t / \max(1, \sum_t m_t)`;
    * ``"cls"``: the first token :math:`h_0`;
    * ``"max"``: elementwise max over real tokens (0 when there are none).

    Example:
        >>> import jax.numpy as jnp
        >>> h = jnp.array([[1.0], [3.0], [100.0]]); m = jnp.array([True, True, False])
        >>> [pool_tokens(h, m, pooling=p).tolist() for p in ("mean", "cls", "max")]
        [[2.0], [1.0], [3.0]]
    """
    tokens = jnp.asarray(tokens)
    if tokens.ndim < 2:
        raise ValueError(f"tokens must be [..., T, H], got shape {tokens.shape}")
    mask = _check_where(mask, tokens.shape[:-1], "mask")
    if pooling == "cls":
        return tokens[..., 0, :]
    if pooling == "mean":
        if mask is None:
            return tokens.mean(axis=-2, dtype=jnp.float32)
        m = mask[..., None].astype(jnp.float32)
        return (tokens * m).sum(axis=-2) / jnp.maximum(m.sum(axis=-2), 1.0)
    if pooling == "max":
        if mask is None:
            return tokens.max(axis=-2)
        neg = jnp.asarray(-jnp.inf, tokens.dtype)
        best = jnp.where(mask[..., None], tokens, neg).max(axis=-2)
        return jnp.where(jnp.isfinite(best), best, 0)
    raise ValueError(f"pooling must be 'mean', 'cls' or 'max', got {pooling!r}")


class DualEncoderHead(nnx.Module):
    r"""Bi-encoder head: token states -> one embedding per text; dot-product scores.

    .. math::
        e = \frac{W\,\operatorname{pool}(h, m)}{\lVert W\,\operatorname{pool}(h, m)\rVert_2}
        \qquad s_l = \langle e_q, e_{d_l} \rangle

    (no projection when ``dim`` is None; no normalisation when ``normalize=False``).

    Args:
        hidden_size: encoder width ``H``.
        dim: projection size ``D`` (None keeps ``H``).
        pooling: ``"mean"``, ``"cls"`` or ``"max"`` (see :func:`pool_tokens`).
        normalize: L2-normalise the embedding (cosine scores).
        rngs: ``nnx.Rngs``.

    Call: ``head(tokens [..., T, H], mask=None [..., T]) -> [..., D]``;
    ``head.score(query [..., D], docs [..., list, D], where=None) -> [..., list]``.

    Example:
        >>> import jax.numpy as jnp
        >>> from flax import nnx
        >>> head = DualEncoderHead(16, dim=8, pooling="max", rngs=nnx.Rngs(0))
        >>> q = head(jnp.ones((2, 3, 16)))                  # [batch, D]
        >>> d = head(jnp.ones((2, 5, 7, 16)))               # [batch, list, D]
        >>> head.score(q, d).shape
        (2, 5)
    """

    def __init__(
        self,
        hidden_size: int,
        dim: int | None = None,
        *,
        pooling: str = "mean",
        normalize: bool = True,
        eps: float = 1e-6,
        rngs: nnx.Rngs,
    ):
        if pooling not in ("mean", "cls", "max"):
            raise ValueError(f"pooling must be 'mean', 'cls' or 'max', got {pooling!r}")
        self.hidden_size = hidden_size
        self.pooling = pooling
        self.normalize = normalize
        self.eps = eps
        self.proj = nnx.Linear(hidden_size, dim, rngs=rngs) if dim else None

    def __call__(self, tokens: jax.Array, mask: jax.Array | None = None) -> jax.Array:
        h = _check_last(tokens, self.hidden_size, "tokens", "hidden_size")
        e = pool_tokens(h, mask, pooling=self.pooling).astype(jnp.float32)
        if self.proj is not None:
            e = self.proj(e)
        if self.normalize:
            e = e / jnp.maximum(jnp.linalg.norm(e, axis=-1, keepdims=True), self.eps)
        return e

    def score(self, query: jax.Array, docs: jax.Array, where: jax.Array | None = None):
        """Dot products ``[..., list]`` of ``query [..., D]`` with ``docs [..., list, D]``."""
        query, docs = jnp.asarray(query), jnp.asarray(docs)
        if docs.ndim < 2 or query.shape[-1] != docs.shape[-1]:
            raise ValueError(
                f"query [..., D] and docs [..., list, D] must share D; got {query.shape}, "
                f"{docs.shape}"
            )
        s = jnp.einsum("...d,...ld->...l", query, docs, preferred_element_type=jnp.float32)
        return _masked_zero(s, _check_where(where, s.shape))

"""Contrastive and distillation losses for training retrievers and rerankers."""

from __future__ import annotations

import jax.numpy as jnp

from jaxrank.losses import _utils as u

Array = u.Array


def infonce_loss(
    queries,
    documents,
    positives=None,
    *,
    temperature: float = 0.05,
    where=None,
    normalize: bool = False,
    reduce_fn: u.ReduceFn = jnp.mean,
) -> Array:
    r"""InfoNCE with in-batch negatives (Oord et al., 2018; DPR, Karpukhin et al., 2020).

    .. math::
        \ell_b = -\log \frac{e^{q_b \cdot d_{p_b} / T}}
        {\sum_{j\ \text{valid}} e^{q_b \cdot d_j / T}}

    Every document of the batch (e.g. the other queries' positives and any hard
    negatives appended after them) is a negative for every query but its own positive.

    Args:
      queries: ``[B, d]`` query embeddings.
      documents: ``[N, d]`` document embeddings (N ≥ B).
      positives: ``[B]`` int index of each query's positive document (default
        ``arange(B)``: document b is the positive of query b).
      temperature: softmax temperature T.
      where: optional ``[N]`` bool mask of valid documents.
      normalize: L2-normalize both sides first (cosine similarity).
      reduce_fn: ``jnp.mean``, ``jnp.sum`` or ``None`` (``[B]``).

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxrank.losses import infonce_loss
      >>> q = d = jnp.eye(2)
      >>> round(float(infonce_loss(q, d, temperature=1.0)), 4)  # -log(e / (e + 1))
      0.3133
    """
    q = jnp.asarray(queries)
    d = jnp.asarray(documents)
    if q.ndim != 2 or d.ndim != 2 or q.shape[1] != d.shape[1]:
        raise ValueError(
            f"queries [B, d] and documents [N, d] must share d, got {q.shape} and {d.shape}"
        )
    dtype = u.mu.acc_dtype(q, d)
    q, d = q.astype(dtype), d.astype(dtype)
    if normalize:
        q = q / jnp.maximum(jnp.linalg.norm(q, axis=-1, keepdims=True), 1e-12)
        d = d / jnp.maximum(jnp.linalg.norm(d, axis=-1, keepdims=True), 1e-12)
    if positives is None:
        if d.shape[0] < q.shape[0]:
            raise ValueError("positives defaults to arange(B), which needs N >= B documents")
        positives = jnp.arange(q.shape[0])
    positives = jnp.asarray(positives)
    if positives.shape != (q.shape[0],) or not jnp.issubdtype(positives.dtype, jnp.integer):
        raise ValueError(f"positives must be int [B={q.shape[0]}], got {positives.shape}")
    valid = jnp.ones(d.shape[0], bool) if where is None else jnp.asarray(where)
    if valid.dtype != jnp.bool_ or valid.shape != (d.shape[0],):
        raise TypeError(f"where must be a bool [N={d.shape[0]}] array")
    logits = (q @ d.T) / temperature
    mask = jnp.broadcast_to(valid, logits.shape)
    log_p = u.masked_log_softmax(logits, mask)
    loss = -jnp.take_along_axis(log_p, positives[:, None], axis=-1)[:, 0]
    return u.reduce(loss, valid[positives], reduce_fn)


def margin_mse_loss(
    scores, teacher_scores, where=None, *, reduce_fn: u.ReduceFn = jnp.mean
) -> Array:
    r"""Margin-MSE distillation (Hofstätter et al., 2020), generalized to lists.

    .. math::
        \ell = \operatorname{mean}_{i \ne j\ \text{valid}}
        \bigl((s_i - s_j) - (t_i - t_j)\bigr)^2

    For a (positive, negative) pair ``[..., 2]`` this is the original
    :math:`((s_+ - s_-) - (t_+ - t_-))^2`. (Unlike :func:`pairwise_mse_loss`, the
    ``i = j`` pairs are left out of the mean.) ``reduce_fn=None`` gives ``[..., n, n]``.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxrank.losses import margin_mse_loss
      >>> float(margin_mse_loss(jnp.array([2.0, 1.0]), jnp.array([5.0, 1.0])))  # (1 - 4)^2
      9.0
    """
    scores, teacher, where, _ = u.check(scores, teacher_scores, where)
    n = scores.shape[-1]
    ds = scores[..., :, None] - scores[..., None, :]
    dt = teacher[..., :, None] - teacher[..., None, :]
    valid = where[..., :, None] & where[..., None, :] & ~jnp.eye(n, dtype=bool)
    return u.reduce(jnp.square(ds - dt), valid, reduce_fn)


def kl_distillation_loss(
    scores,
    teacher_scores,
    where=None,
    *,
    temperature: float = 1.0,
    reduce_fn: u.ReduceFn = jnp.mean,
) -> Array:
    r"""Listwise KL distillation: KL(teacher ‖ student) of the softmax distributions.

    .. math::
        \ell = T^2 \sum_i p^t_i \left(\log p^t_i - \log p^s_i\right),\qquad
        p^t = \operatorname{softmax}(t / T),\ p^s = \operatorname{softmax}(s / T)

    over valid items (the :math:`T^2` factor keeps gradient scales comparable across
    temperatures, Hinton et al., 2015).

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxrank.losses import kl_distillation_loss
      >>> float(kl_distillation_loss(jnp.array([1.0, 2.0]), jnp.array([1.0, 2.0])))
      0.0
    """
    scores, teacher, where, _ = u.check(scores, teacher_scores, where)
    log_ps = u.masked_log_softmax(scores / temperature, where)
    log_pt = u.masked_log_softmax(teacher / temperature, where)
    kl = jnp.sum(jnp.where(where, jnp.exp(log_pt) * (log_pt - log_ps), 0.0), axis=-1)
    return u.reduce(temperature**2 * kl, jnp.any(where, axis=-1), reduce_fn)

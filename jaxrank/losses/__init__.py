"""Learning-to-rank losses on padded arrays.

Every loss takes ``scores [..., n]``, ``labels [..., n]``, an optional boolean
``where [..., n]`` (``False`` marks padding), optional ``weights`` and ``reduce_fn``
(``jnp.mean`` default, ``jnp.sum``, or ``None`` for unreduced values), following optax
and rax. Padding never changes a loss or its gradient, masked items get zero gradient,
and fully masked lists give 0 with finite gradients.

Families: pointwise (:func:`sigmoid_cross_entropy_loss`, :func:`mse_loss`), pairwise
(:func:`pairwise_logistic_loss`, :func:`pairwise_hinge_loss`,
:func:`pairwise_soft_zero_one_loss`, :func:`pairwise_mse_loss`, :func:`pairwise_qr_loss`,
each with an optional ``lambdaweight_fn``: :func:`labeldiff_lambdaweight`,
:func:`dcg_lambdaweight`, :func:`ndcg_lambdaweight`, :func:`dcg2_lambdaweight`,
:func:`precision_lambdaweight`), listwise (:func:`softmax_loss`,
:func:`poly1_softmax_loss`, :func:`unique_softmax_loss`, :func:`listmle_loss`,
:func:`plackett_luce_loss`), approximate metrics (:func:`approx_ndcg_loss`,
:func:`approx_mrr_loss`), relaxed sorting and ranking on :mod:`jaxrank.soft`
(:func:`neural_ndcg_loss`, :func:`soft_rank_ndcg_loss`, :func:`soft_spearman_loss`),
contrastive and distillation (:func:`infonce_loss`, :func:`margin_mse_loss`,
:func:`kl_distillation_loss`), and transformations (:func:`approx_t12n` and
:func:`bound_t12n` turn any rank-based :mod:`jaxrank.metrics` metric into a loss;
:func:`gumbel_t12n` perturbs the scores of any loss or metric with Gumbel noise).

Example:
    >>> import functools, jax, jax.numpy as jnp
    >>> from jaxrank import losses
    >>> scores = jnp.array([[2.0, 1.0, 0.0, 5.0]])
    >>> labels = jnp.array([[0.0, 1.0, 2.0, 9.0]])
    >>> where = jnp.array([[True, True, True, False]])
    >>> lw = functools.partial(losses.dcg2_lambdaweight, topn=2)
    >>> loss = lambda s: losses.pairwise_logistic_loss(s, labels, where, lambdaweight_fn=lw)
    >>> jax.grad(loss)(scores)[0, 3].item()  # the padded item gets no gradient
    0.0
"""

from jaxrank.losses._approx import approx_mrr_loss, approx_ndcg_loss, approx_ranks
from jaxrank.losses._contrastive import infonce_loss, kl_distillation_loss, margin_mse_loss
from jaxrank.losses._lambdaweights import (
    dcg2_lambdaweight,
    dcg_lambdaweight,
    labeldiff_lambdaweight,
    ndcg_lambdaweight,
    precision_lambdaweight,
)
from jaxrank.losses._listwise import (
    listmle_loss,
    plackett_luce_loss,
    poly1_softmax_loss,
    softmax_loss,
    unique_softmax_loss,
)
from jaxrank.losses._pairwise import (
    pairwise_hinge_loss,
    pairwise_logistic_loss,
    pairwise_loss,
    pairwise_mse_loss,
    pairwise_qr_loss,
    pairwise_soft_zero_one_loss,
)
from jaxrank.losses._pointwise import mse_loss, sigmoid_cross_entropy_loss
from jaxrank.losses._soft import neural_ndcg_loss, soft_rank_ndcg_loss, soft_spearman_loss
from jaxrank.losses._t12n import approx_t12n, bound_t12n, gumbel_t12n

__all__ = [
    "approx_mrr_loss",
    "approx_ndcg_loss",
    "approx_ranks",
    "approx_t12n",
    "bound_t12n",
    "dcg2_lambdaweight",
    "dcg_lambdaweight",
    "gumbel_t12n",
    "infonce_loss",
    "kl_distillation_loss",
    "labeldiff_lambdaweight",
    "listmle_loss",
    "margin_mse_loss",
    "mse_loss",
    "ndcg_lambdaweight",
    "neural_ndcg_loss",
    "pairwise_hinge_loss",
    "pairwise_logistic_loss",
    "pairwise_loss",
    "pairwise_mse_loss",
    "pairwise_qr_loss",
    "pairwise_soft_zero_one_loss",
    "plackett_luce_loss",
    "poly1_softmax_loss",
    "precision_lambdaweight",
    "sigmoid_cross_entropy_loss",
    "soft_rank_ndcg_loss",
    "soft_spearman_loss",
    "softmax_loss",
    "unique_softmax_loss",
]

"""Shared helpers of the losses: argument checks, reductions, masked softmax."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from jaxrank.metrics import _utils as mu

Array = jax.Array
ReduceFn = Callable[..., Array] | None


def check(scores, labels, where, weights=None):
    """Checks shapes and dtypes; returns float scores/labels, bool where, float weights."""
    scores, labels, where, extra = mu.check_inputs(
        scores, labels, where, extra={"weights": weights}
    )
    w = extra.get("weights")
    return scores, labels, where, None if w is None else w.astype(scores.dtype)


def reduce(values: Array, valid: Array, reduce_fn: ReduceFn) -> Array:
    """rax-compatible reduction: ``reduce_fn(values, where=valid)``; 0 if nothing is valid.

    ``reduce_fn=None`` returns ``values`` with invalid entries set to 0.
    """
    values = jnp.where(valid, values, 0.0)
    if reduce_fn is None:
        return values
    if reduce_fn is jnp.mean:
        count = jnp.sum(valid)
        return jnp.sum(values) / jnp.maximum(count, 1)
    return reduce_fn(values, where=valid)


def masked_log_softmax(s: Array, w: Array) -> Array:
    """log softmax over the valid items of the last axis (0 for invalid items).

    Masked items never enter the sum nor receive a gradient; fully masked lists give 0.
    """
    m = jnp.max(jnp.where(w, s, -jnp.inf), axis=-1, keepdims=True)
    m = jax.lax.stop_gradient(jnp.where(jnp.isfinite(m), m, 0.0))
    z = jnp.where(w, s - m, 0.0)
    total = jnp.sum(jnp.where(w, jnp.exp(z), 0.0), axis=-1, keepdims=True)
    lse = jnp.log(jnp.where(total > 0, total, 1.0))
    return jnp.where(w, z - lse, 0.0)


def normalize(x: Array, w: Array) -> Array:
    """``x / sum(x)`` over valid items; uniform over valid items when the sum is 0 (rax)."""
    x = jnp.where(w, x, 0.0)
    total = jnp.sum(x, axis=-1, keepdims=True)
    count = jnp.maximum(jnp.sum(w, axis=-1, keepdims=True), 1)
    uniform = jnp.where(w, 1.0 / count, 0.0)
    return jnp.where(total != 0, x / jnp.where(total != 0, total, 1.0), uniform)


def exp2_gain(labels: Array) -> Array:
    return jnp.exp2(labels) - 1.0


def discount(ranks: Array) -> Array:
    return 1.0 / jnp.log2(ranks + 1.0)


def hard_ranks(scores: Array, where: Array) -> Array:
    """Stable 1-based ranks (float) with masked items after the valid ones."""
    return jax.lax.stop_gradient(mu.ranks(scores, where).astype(scores.dtype))

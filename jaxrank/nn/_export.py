"""Portability: ship a trained head as a serialized StableHLO program or a checkpoint.

* :func:`export_model` / :func:`load_exported` -- ``jax.export`` (the JAX counterpart
  of exporting to ONNX): the parameters are baked into a serialized StableHLO module
  that runs without the model's Python code or Flax, with symbolic batch and list
  sizes if wanted.
* :func:`save_checkpoint` / :func:`load_checkpoint` -- msgpack (``flax.serialization``)
  of the module's state (parameters and :class:`~jaxrank.nn.FeatureStat` statistics;
  RNG state is left out), restored into a module built with the same configuration.

Example:
    >>> import jax, jax.numpy as jnp
    >>> from flax import nnx
    >>> from jaxrank.nn import MLPScorer, export_model, load_exported
    >>> model = MLPScorer(3, hidden=(4,), rngs=nnx.Rngs(0))
    >>> b, l = jax.export.symbolic_shape("b, l")
    >>> blob = export_model(model, jax.ShapeDtypeStruct((b, l, 3), jnp.float32),
    ...                     jax.ShapeDtypeStruct((b, l), jnp.bool_))
    >>> scorer = load_exported(blob)
    >>> x, w = jnp.ones((2, 5, 3)), jnp.ones((2, 5), bool)
    >>> bool(jnp.allclose(scorer(x, w), model(x, where=w)))
    True
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
from flax import nnx, serialization

__all__ = ["export_model", "load_checkpoint", "load_exported", "save_checkpoint"]

PathLike = str | os.PathLike


def export_model(
    model: nnx.Module,
    *args: jax.ShapeDtypeStruct | jax.Array,
    method: str = "__call__",
    platforms: Sequence[str] | None = None,
) -> bytes:
    """Serialize ``model.<method>(*args)`` with its parameters as a StableHLO artifact.

    The model is exported in eval mode (dropout off) from a copy, so ``model`` itself is
    untouched. Positional ``args`` give the input shapes and dtypes; use
    ``jax.export.symbolic_shape`` for sizes that may vary (batch, list). For the heads
    of this package the second positional argument is the ``where``/``mask`` array.

    Args:
        model: an NNX module.
        *args: ``jax.ShapeDtypeStruct`` (or example arrays) for each positional input.
        method: the method to export.
        platforms: lowering platforms, e.g. ``("cpu", "cuda", "tpu")``; default the
            current backend.

    Returns:
        ``bytes`` to store anywhere; :func:`load_exported` turns them back into a
        callable.
    """
    copy = nnx.clone(model)
    copy.eval()
    graphdef, state = nnx.split(copy)

    def run(*inputs):
        return getattr(nnx.merge(graphdef, state), method)(*inputs)

    specs = [
        a if isinstance(a, jax.ShapeDtypeStruct) else jax.ShapeDtypeStruct(a.shape, a.dtype)
        for a in (jnp.asarray(a) if not isinstance(a, jax.ShapeDtypeStruct) else a for a in args)
    ]
    exported = jax.export.export(jax.jit(run), platforms=platforms)(*specs)
    return bytes(exported.serialize())


def load_exported(blob: bytes | bytearray | PathLike) -> Callable[..., jax.Array]:
    """Deserialize :func:`export_model` output (bytes or a file path) into a callable.

    The callable is jit-compatible (``jax.jit(load_exported(b))``) and differentiable
    with respect to its inputs where the exported function was.
    """
    if isinstance(blob, str | os.PathLike):
        blob = Path(blob).read_bytes()
    exported = jax.export.deserialize(bytearray(blob))
    return exported.call


def _checkpoint_state(model: nnx.Module):
    return nnx.state(model, nnx.Not(nnx.RngState))


def save_checkpoint(model: nnx.Module, path: PathLike) -> None:
    """Write the module's parameters and statistics to ``path`` (msgpack).

    Example:
        >>> import os, tempfile, jax.numpy as jnp
        >>> from flax import nnx
        >>> from jaxrank.nn import MLPScorer, save_checkpoint, load_checkpoint
        >>> path = os.path.join(tempfile.mkdtemp(), "scorer.msgpack")
        >>> save_checkpoint(MLPScorer(3, rngs=nnx.Rngs(0)), path)
        >>> restored = load_checkpoint(MLPScorer(3, rngs=nnx.Rngs(1)), path)
        >>> x = jnp.ones((1, 2, 3))
        >>> bool(jnp.allclose(restored(x), MLPScorer(3, rngs=nnx.Rngs(0))(x)))
        True
    """
    pure = jax.tree.map(jax.device_get, nnx.to_pure_dict(_checkpoint_state(model)))
    Path(path).write_bytes(serialization.msgpack_serialize(pure))


def load_checkpoint(model: nnx.Module, path: PathLike) -> nnx.Module:
    """Load :func:`save_checkpoint` output into ``model`` (same configuration); returns it.

    Raises:
        ValueError: the checkpoint's structure or shapes do not match ``model``.
    """
    restored = serialization.msgpack_restore(Path(path).read_bytes())
    state = _checkpoint_state(model)
    target = nnx.to_pure_dict(state)
    t_leaves = jax.tree_util.tree_leaves_with_path(target)
    try:
        r_leaves = jax.tree_util.tree_leaves_with_path(
            restored, is_leaf=lambda x: not isinstance(x, dict)
        )
    except Exception as err:  # pragma: no cover - msgpack always gives dicts
        raise ValueError(f"{path}: not a jaxrank checkpoint ({err})") from None
    t_map = {jax.tree_util.keystr(k): v for k, v in t_leaves}
    r_map = {jax.tree_util.keystr(k): v for k, v in r_leaves}
    if t_map.keys() != r_map.keys():
        missing = sorted(t_map.keys() - r_map.keys())
        extra = sorted(r_map.keys() - t_map.keys())
        raise ValueError(
            f"{path}: checkpoint does not match the model (missing {missing[:5]}, "
            f"unexpected {extra[:5]})"
        )
    for k, v in t_map.items():
        if tuple(jnp.shape(v)) != tuple(jnp.shape(r_map[k])):
            raise ValueError(
                f"{path}: {k} has shape {jnp.shape(r_map[k])} in the checkpoint, "
                f"{jnp.shape(v)} in the model"
            )
    nnx.replace_by_pure_dict(state, jax.tree.map(jnp.asarray, restored))
    nnx.update(model, state)
    return model

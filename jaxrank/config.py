"""Library-wide switches.

Only one switch exists so far: which implementation the operations with a native
CPU kernel use (:func:`jaxrank.rerank.maxsim`, :mod:`jaxrank.quant` scoring).

* ``"auto"`` (default): the native XLA FFI kernel on CPU, pure JAX on GPU/TPU,
  selected inside the compiled graph with :func:`jax.lax.platform_dependent`;
  pure JAX everywhere when the native library is missing.
* ``"jax"``: always the pure-JAX path.
* ``"native"``: like ``"auto"`` but an error when the native library is missing.

The default comes from the environment variable ``JAXRANK_NATIVE`` (``0`` → ``"jax"``,
``1`` → ``"native"``, unset or ``auto`` → ``"auto"``; the same variable set to ``0``
at install time skips building the native core). The switch is read when a
function is traced, so set it before the first call of a jitted function (or
pass ``impl=`` to the function, which wins over the switch).

Example:
    >>> import jaxrank.config as config
    >>> with config.native_mode("jax"):
    ...     config.get_native_mode()
    'jax'
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

_MODES = ("auto", "jax", "native")
_ENV_MAP = {"0": "jax", "off": "jax", "false": "jax", "jax": "jax", "1": "native",
            "on": "native", "native": "native", "auto": "auto", "": "auto"}  # fmt: skip
_override: str | None = None


def get_native_mode() -> str:
    """The current implementation switch: ``"auto"``, ``"jax"`` or ``"native"``."""
    if _override is not None:
        return _override
    env = os.environ.get("JAXRANK_NATIVE", "auto").strip().lower()
    if env not in _ENV_MAP:
        raise ValueError(f"JAXRANK_NATIVE={env!r}: expected 0, 1 or auto")
    return _ENV_MAP[env]


def set_native_mode(mode: str | None) -> None:
    """Set the switch process-wide (``None`` returns to the ``JAXRANK_NATIVE`` default)."""
    global _override
    if mode is not None and mode not in _MODES:
        raise ValueError(f"mode={mode!r}: expected one of {_MODES}")
    _override = mode


@contextlib.contextmanager
def native_mode(mode: str) -> Iterator[None]:
    """Context manager form of :func:`set_native_mode` (affects functions traced inside)."""
    global _override
    previous = _override
    set_native_mode(mode)
    try:
        yield
    finally:
        _override = previous

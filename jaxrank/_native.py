"""Loader of the native core (``ffi/``): a shared library with XLA FFI handlers.

The library ``jaxrank/_jaxrank_ffi<EXT_SUFFIX>`` is built by CMake at install
time and loaded here with :mod:`ctypes` (it is not a Python module); its handlers
are registered with :func:`jax.ffi.register_ffi_target` for the CPU platform the
first time an operation asks for them. When it is missing (``JAXRANK_NATIVE=0``
at install, no compiler, a non-x86 wheel) every operation runs its pure-JAX path
and one warning line says so.

:func:`native_info` reports what was loaded and which ISA path the kernels use.
``JAXRANK_NATIVE_LIB=/path/to/lib.so`` loads a library from elsewhere (development
builds); ``JAXRANK_ISA=generic|avx2`` caps the ISA path (read once at load).
"""

from __future__ import annotations

import ctypes
import glob
import importlib.util
import os
import threading
import warnings
from collections.abc import Callable
from typing import Any

import jax

from jaxrank import config

TARGETS = (
    "jaxrank_maxsim",
    "jaxrank_maxsim_int8",
    "jaxrank_int8_dot",
    "jaxrank_hamming",
    "jaxrank_fusion_union",
    "jaxrank_fusion_topk",
    "jaxrank_soft_argsort",
    "jaxrank_soft_pav",
    "jaxrank_ivf_flat",
    "jaxrank_int8_topk",
    "jaxrank_pq_topk",
    "jaxrank_ward_pool",
)
_ABI = 1
_lock = threading.Lock()
_state: dict[str, Any] | None = None


def _find_library() -> str | None:
    env = os.environ.get("JAXRANK_NATIVE_LIB")
    if env:
        return env
    try:
        spec = importlib.util.find_spec("jaxrank._jaxrank_ffi")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.origin and os.path.exists(spec.origin):
        return spec.origin
    here = os.path.dirname(os.path.abspath(__file__))
    found = sorted(glob.glob(os.path.join(here, "_jaxrank_ffi*.so")))
    return found[0] if found else None


def _load() -> dict[str, Any]:
    path = _find_library()
    if path is None:
        return {"available": False, "reason": "native library not built or not installed"}
    try:
        lib = ctypes.CDLL(path)
        abi = int(lib.jaxrank_native_abi())
        if abi != _ABI:
            return {"available": False, "reason": f"{path}: ABI {abi}, expected {_ABI}"}
        lib.jaxrank_native_isa.restype = ctypes.c_char_p
        for name in TARGETS:
            jax.ffi.register_ffi_target(name, jax.ffi.pycapsule(getattr(lib, name)), platform="cpu")
    except (OSError, AttributeError) as exc:
        return {"available": False, "reason": f"{path}: {exc}"}
    feats = int(lib.jaxrank_native_cpu_features())
    return {
        "available": True,
        "library": path,
        "isa": lib.jaxrank_native_isa().decode(),
        "cpu": {
            "avx2": bool(feats & 1),
            "avx512_vnni": bool(feats & 2),
            "avx512_vpopcntdq": bool(feats & 4),
            "avx512_bf16": bool(feats & 8),
            "amx_int8": bool(feats & 16),
        },
        "amx_kernels": False,
        "_lib": lib,
    }


def _get() -> dict[str, Any]:
    global _state
    with _lock:
        if _state is None:
            _state = _load()
            if not _state["available"] and config.get_native_mode() != "jax":
                warnings.warn(
                    f"jaxrank: native core unavailable ({_state['reason']}); "
                    "using the pure-JAX paths",
                    RuntimeWarning,
                    stacklevel=3,
                )
        return _state


def available() -> bool:
    """Whether the native library is loaded and its FFI targets are registered."""
    return bool(_get()["available"])


def library() -> ctypes.CDLL | None:
    """The loaded native library (for host-side helpers such as the TREC parser), or None."""
    return _get().get("_lib")


def native_info() -> dict[str, Any]:
    """What the native core is doing on this machine.

    Returns a dict with ``available`` (bool), ``isa`` (the kernel path the
    dispatcher chose: ``"avx512_vnni"``, ``"avx2"`` or ``"portable"``),
    ``library`` (path), ``cpu`` (feature flags the CPU reports: AVX2,
    AVX-512 VNNI, VPOPCNTDQ, AVX-512 BF16, AMX-INT8), ``amx_kernels`` (False:
    this build has no AMX kernels) and ``mode`` (the :mod:`jaxrank.config`
    switch); or ``available=False`` with a ``reason``.

    Example:
        >>> import jaxrank
        >>> info = jaxrank.native_info()
        >>> info["mode"], isinstance(info["available"], bool)
        ('auto', True)
    """
    info = {k: v for k, v in _get().items() if not k.startswith("_")}
    info["mode"] = config.get_native_mode()
    return info


def resolve(impl: str) -> str:
    """``"native"`` or ``"jax"``: what a call with ``impl=...`` will use (on CPU)."""
    if impl not in ("auto", "jax", "native"):
        raise ValueError(f"impl={impl!r}: expected 'auto', 'jax' or 'native'")
    mode = config.get_native_mode() if impl == "auto" else impl
    if mode == "jax":
        return "jax"
    if available():
        return "native"
    if mode == "native":
        raise RuntimeError(f"impl='native' but the native core is unavailable: {native_info()}")
    return "jax"


def select(native_fn: Callable, jax_fn: Callable, *args: Any, impl: str = "auto") -> Any:
    """Run ``native_fn`` on CPU and ``jax_fn`` on other platforms (or always ``jax_fn``)."""
    if resolve(impl) == "jax":
        return jax_fn(*args)
    return jax.lax.platform_dependent(*args, cpu=native_fn, default=jax_fn)


def num_threads(value: int | None) -> int:
    """Thread count attribute for the kernels: ``value``, else ``JAXRANK_NUM_THREADS``, else 0
    (0 = every thread of XLA's CPU intra-op pool)."""
    if value is None:
        value = int(os.environ.get("JAXRANK_NUM_THREADS", "0") or 0)
    if value < 0:
        raise ValueError(f"num_threads={value}: expected >= 0")
    return int(value)


def export_disabled_checks() -> list:
    """Safety checks to disable for :func:`jax.export.export` of graphs using native kernels.

    ``jax.export`` refuses custom calls that are not known to be stable; the jaxrank
    targets are stable only for the same jaxrank build, so exporting needs
    ``disabled_checks=jaxrank.export_disabled_checks()``. The exported artifact
    then calls the ``jaxrank_*`` targets on CPU (the loading process must have
    the same jaxrank native core registered) and the pure-JAX path on GPU/TPU.
    """
    return [jax.export.DisabledSafetyCheck.custom_call(name) for name in TARGETS]

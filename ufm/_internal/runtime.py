"""The process that runs ufm: JAX's persistent compilation cache (opt-in) and the guard that keeps
XLA:CPU below the kernel's memory-map limit by freeing the executables of ufm's own jitted functions."""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Callable
from typing import Any, TypeVar

import jax
import numpy as np


def package_version() -> str:
    """ufm's version as installed (``importlib.metadata``; the one source is ``pyproject.toml``),
    or ``"0+unknown"`` when the package is imported from a tree that was never installed."""
    try:
        return importlib.metadata.version("ufm")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


def enable_compilation_cache(path: str | os.PathLike, *, min_compile_time_secs: float = 0.0) -> str:
    r"""Opt in to JAX's persistent compilation cache in the directory ``path``.

    Every compiled executable that took at least ``min_compile_time_secs`` to compile is written
    to ``path``; a later process that compiles the same program (same function, shapes, static
    arguments, JAX/XLA version and machine) loads it from disk instead of compiling. For
    :func:`ufm.minimize`, whose compilation dominates a first call (seconds against tens of
    milliseconds of solving), this makes the first call of a new process on a known shape about
    as fast as a warm call plus tracing. Importing ufm never does this: it changes global JAX
    settings (``jax_compilation_cache_dir``, ``jax_persistent_cache_min_compile_time_secs``,
    ``jax_persistent_cache_min_entry_size_bytes``), for this process only.

    The cache is trusted code: do not point it at a directory others can write to.

    Args:
        path: a directory (created when missing), ``str`` or ``os.PathLike``.
        min_compile_time_secs: compile-time threshold for writing an entry (``>= 0``, default 0:
            everything, since ufm's small helper executables also add up on a cold start).

    Returns:
        The absolute path of the cache directory.
    """
    if isinstance(path, bool) or not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise ValueError(f"path must be a non-empty str or os.PathLike directory, got path={path!r}")
    try:
        t = float(min_compile_time_secs)
    except (TypeError, ValueError):
        t = float("nan")
    if isinstance(min_compile_time_secs, bool) or not np.isfinite(t) or t < 0:
        raise ValueError(f"min_compile_time_secs must be a finite number >= 0, got {min_compile_time_secs!r}")
    path = os.path.abspath(os.fspath(path))
    os.makedirs(path, exist_ok=True)
    from jax.experimental.compilation_cache import compilation_cache as cc

    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", t)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    cc.reset_cache()  # the cache is checked once per process: a compile before this call disabled it
    return path


# ---- the kernel's memory-map limit ---------------------------------------------------------------
# XLA:CPU loads every compiled kernel into memory mappings of its own: a compiled ``minimize``
# of one problem shape holds ~700 of them (~450 with the fast compile profile), measured with
# /proc/self/maps. Linux caps a process at vm.max_map_count mappings (65,530 by default), and XLA
# does not survive hitting the cap: the next compile dies with a segmentation fault inside
# backend_compile_and_load. A process that solves about a hundred distinct shapes (a thorough
# hypothesis run, a size sweep, ``ufm verify --random``) reached it. Freeing the executables of
# ufm's own jitted functions returns their mappings; shapes still in use compile again. The
# caller's own jitted functions, and JAX's other caches, are left alone: ufm frees only what it
# compiled (functions recorded with :func:`register_compiled`).
MAP_LIMIT_FRACTION = 0.6

_COMPILED: list = []  # ufm's jitted functions whose executables release_compiled() may free
_F = TypeVar("_F", bound=Callable[..., Any])


def register_compiled(fn: _F) -> _F:
    """Record ``fn``, one of ufm's own ``jax.jit`` functions, as a cache :func:`release_compiled`
    may empty; returns ``fn`` unchanged, so it stacks as a decorator above ``@jax.jit``.

    Raises:
        TypeError: ``fn`` has no ``clear_cache`` (it is not a ``jax.jit`` function).
    """
    if not callable(getattr(fn, "clear_cache", None)):
        raise TypeError(f"register_compiled needs a jax.jit function (with clear_cache), got {fn!r}")
    if all(f is not fn for f in _COMPILED):
        _COMPILED.append(fn)
    return fn


def release_compiled() -> int:
    """Empty the compilation cache of every function recorded with :func:`register_compiled`
    (``fn.clear_cache()``, JAX's public per-function eviction); returns how many were emptied.
    Nothing else is touched: the caller's jitted functions keep their executables."""
    for fn in _COMPILED:
        fn.clear_cache()
    return len(_COMPILED)


def _map_limit() -> int | None:
    """``vm.max_map_count`` (None where /proc does not say: not Linux)."""
    try:
        with open("/proc/sys/vm/max_map_count") as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


def _mapped_regions() -> int | None:
    """The number of memory mappings of this process (None where /proc does not say)."""
    try:
        with open("/proc/self/maps") as f:
            return sum(1 for _ in f)
    except OSError:
        return None


def release_compiled_near_map_limit(fraction: float = MAP_LIMIT_FRACTION) -> bool:
    """Free the executables of ufm's own jitted functions (:func:`release_compiled`) when this
    process holds more than ``fraction`` of the kernel's memory-map limit; returns whether it did.

    Called by ``minimize`` and ``gradient_flow`` after they compiled a new shape (a read of
    /proc/self/maps, ~1 ms against the seconds of a compile), never on a warm call. Without it
    XLA:CPU crashes with a segmentation fault once a process has compiled ~100 distinct problem
    shapes (see the note above). Changes no JAX setting and never calls ``jax.clear_caches``: the
    caller's compiled functions keep their caches.
    """
    limit, used = _map_limit(), _mapped_regions()
    if limit is None or used is None or used <= fraction * limit:
        return False
    release_compiled()
    return True

"""Pieces shared by the solvers: the projected gradient field, the KKT residual, metric lookup."""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from ufm import _tree as tr


def flow_rhs(prob, params):
    """``(f, v)`` with ``v = -grad f`` projected onto the tangent cone of the feasible box.

    A component sitting at its lower bound whose velocity points outward (``v < 0``) is held
    still; elsewhere ``v = -grad f``.
    """
    value, g = jax.value_and_grad(prob.objective)(params)
    v = tr.tree_scale(-1.0, g)
    if prob.constrained:
        lo = prob.lower_bound(params)
        v = jax.tree_util.tree_map(lambda vi, xi, li: jnp.where((xi <= li) & (vi < 0), 0.0, vi), v, params, lo)
    return value, v


def kkt_residual(prob, params, grad) -> jax.Array:
    r"""First-order stationarity measure ``|| theta - P(theta - grad f) ||_2``.

    Equal to ``||grad f||`` without constraints; for the box ``theta >= lo`` it vanishes exactly
    at KKT points (``grad f = 0`` on free components, ``grad f >= 0`` at the bound).
    """
    if not prob.constrained:
        return tr.tree_norm(grad)
    return tr.tree_norm(tr.tree_sub(params, prob.project(tr.tree_sub(params, grad))))


def grad_norm(prob, params) -> jax.Array:
    """KKT residual at ``params`` (the certificate of :func:`ufm.minimize`)."""
    return kkt_residual(prob, params, jax.grad(prob.objective)(params))


def cast_tree(tree, dtype):
    """Cast every floating leaf of a pytree (a Problem or its parameters) to ``dtype``."""
    def cast(x):
        x = jnp.asarray(x)
        return x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x

    return jax.tree_util.tree_map(cast, tree)


def _nc1(prob, p):
    from ufm import metrics

    return metrics.nc1(prob.classifier(p)[1], prob.labels, K=prob.K)


def _nc2_W(prob, p):
    from ufm import metrics

    return metrics.nc2_W(prob.classifier(p)[0])


def _nc2_H(prob, p):
    from ufm import metrics

    return metrics.nc2_H(prob.classifier(p)[1], prob.labels, K=prob.K)


def _nc3(prob, p):
    from ufm import metrics

    W, H = prob.classifier(p)
    return metrics.nc3(W, H, prob.labels, K=prob.K)


BUILTIN_METRICS = {"nc1": _nc1, "nc2_W": _nc2_W, "nc2_H": _nc2_H, "nc3": _nc3, "grad_norm": grad_norm}


def resolve_metrics(metrics) -> tuple:
    """Names or a ``name -> fn(prob, params)`` mapping -> a hashable tuple of (name, fn)."""
    if isinstance(metrics, str):
        metrics = (metrics,)
    if isinstance(metrics, Mapping):
        items = list(metrics.items())
    else:
        items = []
        for name in metrics:
            if name not in BUILTIN_METRICS:
                raise ValueError(f"metrics: unknown metric {name!r}; built-ins are {sorted(BUILTIN_METRICS)} "
                                 "(or pass a mapping name -> fn(prob, params))")
            items.append((name, BUILTIN_METRICS[name]))
    for name, fn in items:
        if not callable(fn):
            raise ValueError(f"metrics: {name!r} must map to a callable fn(prob, params), got {fn!r}")
    return tuple(items)


@jax.jit
def _random_start(prob, seed, scale):
    return prob.init(jax.random.PRNGKey(seed), scale)


def random_start(prob, seed, scale=None):
    """``prob.init(PRNGKey(seed), scale)`` as one compiled call.

    Eager random draws compile one small executable per primitive and shape (key, split, each
    normal, each product: about 1 s on two CPU cores for a new problem size); this compiles the
    whole start once per problem shape (no recompilation for a new seed, scale or lam). The draws
    are the same; a fused product may round the last bit differently from the eager one.
    """
    return _random_start(prob, seed, scale)


def check_params(prob, params, name: str = "params0"):
    """``params`` as the problem's parameter pytree of float arrays, or a ValueError naming ``name``.

    Accepts the problem's own parameter type or any nested list/tuple with the same leaves (Python
    lists, NumPy or JAX arrays); shapes must match ``prob.init``'s.
    """
    if _is_traced_tree(params):
        return params
    ref = jax.eval_shape(lambda k: prob.init(k), jax.random.PRNGKey(0))
    ref_leaves, treedef = jax.tree_util.tree_flatten(ref)
    if (isinstance(params, (list, tuple)) and not hasattr(params, "_fields") and hasattr(ref, "_fields")
            and len(params) == len(ref._fields)):  # a plain tuple/list in the field order
        def conv(p, r):
            if p is None or r is None:
                return p
            if isinstance(r, tuple):
                return tuple(np.asarray(q, dtype=float) for q in p)
            return np.asarray(p, dtype=float)

        try:
            params = type(ref)(*[conv(p, r) for p, r in zip(params, ref)])
        except (TypeError, ValueError):
            raise ValueError(f"{name} must hold numeric arrays in the order {ref._fields}") from None
    try:
        leaves = jax.tree_util.tree_leaves(params)
        leaves = [np.asarray(x, dtype=float) for x in leaves]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pytree of numeric arrays like prob.init(key), got {type(params).__name__}") from None
    want = [tuple(r.shape) for r in ref_leaves]
    got = [tuple(x.shape) for x in leaves]
    if got != want:
        raise ValueError(f"{name} must have leaves of shapes {want} (as prob.init(key)), got {got}")
    return jax.tree_util.tree_unflatten(treedef, [jnp.asarray(x, dtype=r.dtype) for x, r in zip(leaves, ref_leaves)])


def _is_traced_tree(tree) -> bool:
    return any(isinstance(x, jax.core.Tracer) for x in jax.tree_util.tree_leaves(tree))


def enable_compilation_cache(path, *, min_compile_time_secs: float = 0.0) -> str:
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
    import os

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
# hypothesis run, a size sweep, ``ufm verify --random``) reached it. Freeing JAX's compiled
# executables (``jax.clear_caches``) returns the mappings; shapes still in use compile again.
MAP_LIMIT_FRACTION = 0.6


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
    """Free JAX's compiled executables (``jax.clear_caches()``) when this process holds more than
    ``fraction`` of the kernel's memory-map limit; returns whether it did.

    Called by ``minimize`` and ``gradient_flow`` after they compiled a new shape (a read of
    /proc/self/maps, ~1 ms against the seconds of a compile), never on a warm call. Without it
    XLA:CPU crashes with a segmentation fault once a process has compiled ~100 distinct problem
    shapes (see the note above). Changes no JAX setting; only the compilation caches are emptied.
    """
    limit, used = _map_limit(), _mapped_regions()
    if limit is None or used is None or used <= fraction * limit:
        return False
    jax.clear_caches()
    return True

"""Pieces shared by the solvers: the projected gradient field, the KKT residual, metric lookup."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ufm import metrics
from ufm._internal import tree as tr
from ufm._internal.runtime import register_compiled
from ufm.problems import Problem


def flow_rhs(prob: Problem, params: Any) -> tuple[jax.Array, Any]:
    """``(f, v)`` with ``v = -grad f`` projected onto the tangent cone of the feasible box.

    A component sitting at its lower bound whose velocity points outward (``v < 0``) is held
    still; elsewhere ``v = -grad f``.
    """
    value, g = jax.value_and_grad(prob.objective)(params)
    v = tr.tree_scale(-1.0, g)
    if prob.constrained:
        lo = prob.box_lower(params)
        v = jax.tree_util.tree_map(lambda vi, xi, li: jnp.where((xi <= li) & (vi < 0), 0.0, vi),
                                   v, params, lo)
    return value, v


def kkt_residual(prob: Problem, params: Any, grad: Any) -> jax.Array:
    r"""First-order stationarity measure ``|| theta - P(theta - grad f) ||_2``.

    Equal to ``||grad f||`` without constraints; for the box ``theta >= lo`` it vanishes exactly
    at KKT points (``grad f = 0`` on free components, ``grad f >= 0`` at the bound).
    """
    if not prob.constrained:
        return tr.tree_norm(grad)
    return tr.tree_norm(tr.tree_sub(params, prob.project(tr.tree_sub(params, grad))))


def grad_norm(prob: Problem, params: Any) -> jax.Array:
    """KKT residual at ``params`` (the certificate of :func:`ufm.minimize`)."""
    return kkt_residual(prob, params, jax.grad(prob.objective)(params))


def cast_tree(tree: Any, dtype: Any) -> Any:
    """Cast every floating leaf of a pytree (a Problem or its parameters) to ``dtype``."""
    def cast(x):
        x = jnp.asarray(x)
        return x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x

    return jax.tree_util.tree_map(cast, tree)


def _nc1(prob, p):
    return metrics.nc1(prob.classifier(p)[1], prob.labels, K=prob.K)


def _nc2_W(prob, p):
    return metrics.nc2_W(prob.classifier(p)[0])


def _nc2_H(prob, p):
    return metrics.nc2_H(prob.classifier(p)[1], prob.labels, K=prob.K)


def _nc3(prob, p):
    W, H = prob.classifier(p)
    return metrics.nc3(W, H, prob.labels, K=prob.K)


BUILTIN_METRICS = {"nc1": _nc1, "nc2_W": _nc2_W, "nc2_H": _nc2_H, "nc3": _nc3, "grad_norm": grad_norm}


def resolve_metrics(metrics: Any) -> tuple:
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


@register_compiled
@jax.jit
def _random_start(prob, seed, scale):
    return prob.init(jax.random.PRNGKey(seed), scale)


def random_start(prob: Problem, seed: Any, scale: Any = None) -> Any:
    """``prob.init(PRNGKey(seed), scale)`` as one compiled call.

    Eager random draws compile one small executable per primitive and shape (key, split, each
    normal, each product: about 1 s on two CPU cores for a new problem size); this compiles the
    whole start once per problem shape (no recompilation for a new seed, scale or lam). The draws
    are the same; a fused product may round the last bit differently from the eager one.
    """
    return _random_start(prob, seed, scale)


def check_params(prob: Problem, params: Any, name: str = "params0") -> Any:
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
        raise ValueError(f"{name} must be a pytree of numeric arrays like prob.init(key), "
                         f"got {type(params).__name__}") from None
    want = [tuple(r.shape) for r in ref_leaves]
    got = [tuple(x.shape) for x in leaves]
    if got != want:
        raise ValueError(f"{name} must have leaves of shapes {want} (as prob.init(key)), got {got}")
    return jax.tree_util.tree_unflatten(treedef, [jnp.asarray(x, dtype=r.dtype)
                                                  for x, r in zip(leaves, ref_leaves)])


def _is_traced_tree(tree) -> bool:
    return any(isinstance(x, jax.core.Tracer) for x in jax.tree_util.tree_leaves(tree))

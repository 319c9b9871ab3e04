"""Pytree arithmetic for the solvers, from ``optax.tree_utils`` (a dependency already).

The names are ufm's (``tree_axpy``, ``tree_dot``, ...), the arithmetic is optax's; only
``tree_all_finite`` has no counterpart there. :func:`replace_path` rebuilds a problem with one
(dotted) field replaced, for the sweep kernel and for derivatives of minimizers.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax.tree_utils as otu

PyTree = Any

tree_dot = otu.tree_vdot  # sum over leaves of <a_leaf, b_leaf>
tree_sub = otu.tree_sub  # x - y, leaf by leaf
tree_mul = otu.tree_mul  # x * y, leaf by leaf
tree_scale = otu.tree_scale  # alpha * x
tree_zeros_like = otu.tree_zeros_like
tree_where = otu.tree_where  # jnp.where(pred, x, y), leaf by leaf


def tree_norm(a: PyTree) -> jax.Array:
    """Euclidean norm of all leaves stacked into one vector (``optax.tree_utils.tree_norm``)."""
    return otu.tree_norm(a)


def tree_axpy(alpha: Any, x: PyTree, y: PyTree) -> PyTree:
    """``alpha * x + y``, leaf by leaf (``optax.tree_utils.tree_add_scale(y, alpha, x)``)."""
    return otu.tree_add_scale(y, alpha, x)


def tree_all_finite(x: PyTree) -> jax.Array:
    """Whether every entry of every leaf is finite (``True`` for an empty tree)."""
    leaves = jax.tree_util.tree_leaves(jax.tree_util.tree_map(lambda u: jnp.all(jnp.isfinite(u)), x))
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


def tree_size(x: PyTree) -> int:
    """Number of entries over all leaves, as a Python int (static)."""
    return int(otu.tree_size(x))


def replace_path(obj: Any, path: str, value: Any) -> Any:
    """``dataclasses.replace`` along a dotted path (``"loss.alpha"``); runs the constructors' checks
    on concrete values, lets tracers through (a compiled function can build a problem so)."""
    head, _, rest = path.partition(".")
    new = value if not rest else replace_path(getattr(obj, head), rest, value)
    return dataclasses.replace(obj, **{head: new})

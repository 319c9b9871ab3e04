"""Small pytree helpers used by the solvers (sums over every leaf, in float64)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def tree_dot(a, b) -> jax.Array:
    """Sum over leaves of <a_leaf, b_leaf>."""
    leaves = jax.tree_util.tree_leaves(jax.tree_util.tree_map(lambda x, y: jnp.vdot(x, y), a, b))
    return sum(leaves, jnp.asarray(0.0))


def tree_norm(a) -> jax.Array:
    """Euclidean norm of all leaves stacked into one vector."""
    return jnp.sqrt(tree_dot(a, a))


def tree_axpy(alpha, x, y):
    """alpha * x + y, leaf by leaf."""
    return jax.tree_util.tree_map(lambda u, v: alpha * u + v, x, y)


def tree_scale(alpha, x):
    return jax.tree_util.tree_map(lambda u: alpha * u, x)


def tree_sub(x, y):
    return jax.tree_util.tree_map(lambda u, v: u - v, x, y)


def tree_mul(x, y):
    return jax.tree_util.tree_map(lambda u, v: u * v, x, y)


def tree_zeros_like(x):
    return jax.tree_util.tree_map(jnp.zeros_like, x)


def tree_all_finite(x) -> jax.Array:
    leaves = jax.tree_util.tree_leaves(jax.tree_util.tree_map(lambda u: jnp.all(jnp.isfinite(u)), x))
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


def tree_where(pred, x, y):
    return jax.tree_util.tree_map(lambda u, v: jnp.where(pred, u, v), x, y)


def tree_size(x) -> int:
    return sum(int(u.size) for u in jax.tree_util.tree_leaves(x))

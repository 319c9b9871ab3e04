"""What every ufm Problem provides, and the box-constraint machinery the solvers use.

A Problem is a frozen dataclass registered as a pytree: sizes are static fields, hyper-parameters
are float64 array leaves (so ``jax.vmap`` runs over them and a jitted solver is not recompiled
when they change). It offers pure methods only:

- ``init(key, scale)``: a random starting point (a pytree of parameters);
- ``objective(params)``: the scalar to minimize;
- ``lower_bound(params)``: a pytree of lower bounds (``-inf`` where unconstrained); the feasible
  set is the box ``params >= lower_bound``, and ``project`` clips onto it.

Solvers use nothing else, so any model family that provides these works with
:func:`ufm.minimize` and :func:`ufm.gradient_flow`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


class Problem:
    """Base class of the ufm model families (see the module docstring for the contract)."""

    def init(self, key: jax.Array, scale: float | None = None):  # pragma: no cover
        raise NotImplementedError

    def objective(self, params) -> jax.Array:  # pragma: no cover
        raise NotImplementedError

    def lower_bound(self, params):
        """Pytree of lower bounds matching ``params``; ``-inf`` everywhere by default."""
        return jax.tree_util.tree_map(lambda x: jnp.full_like(x, -jnp.inf), params)

    @property
    def constrained(self) -> bool:
        """Whether ``lower_bound`` is finite anywhere (decided statically)."""
        return False

    def project(self, params):
        """Euclidean projection onto the feasible box ``params >= lower_bound(params)``."""
        if not self.constrained:
            return params
        return jax.tree_util.tree_map(jnp.maximum, params, self.lower_bound(params))

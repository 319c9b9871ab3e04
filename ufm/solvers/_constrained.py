r"""Inequality constraints ``c(theta) <= 0``: an augmented-Lagrangian method around :func:`minimize`.

Any Problem whose ``constraints(params)`` returns a non-empty ``(M,)`` array (each entry must be
``<= 0``) is solved here; the box ``params >= box_lower`` stays with the inner solver.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ufm.problems import Problem

__all__ = ["AugmentedLagrangian", "num_constraints", "minimize_constrained"]


def num_constraints(prob, params) -> int:
    """Number ``M`` of inequality constraints ``prob.constraints(params)`` (0 when it has none)."""
    fn = getattr(prob, "constraints", None)
    if fn is None:
        return 0
    shape = jax.eval_shape(fn, params)
    return int(np.prod(shape.shape))


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class AugmentedLagrangian(Problem):
    r"""The augmented Lagrangian of a constrained problem, itself a box-constrained Problem.

    .. math:: L_\rho(\theta, y) = f(\theta) + \frac\rho2 \sum_i \Big[\max\big(0, c_i(\theta)
        + y_i/\rho\big)^2 - (y_i/\rho)^2\Big]

    (Hestenes-Powell-Rockafellar for inequalities; Nocedal & Wright, eq. 17.65). It delegates
    ``init``, the box and the symmetries to ``base``.

    Args:
        base: the constrained Problem.
        y: ``(M,)`` multiplier estimates ``>= 0``.
        rho: penalty ``> 0``.
    """

    base: Any
    y: jax.Array
    rho: jax.Array

    def init(self, key, scale=None):
        """``base.init``."""
        return self.base.init(key, scale)

    def objective(self, params):
        """``L_rho(params, y)``."""
        c, y, rho = self.base.constraints(params), self.y, self.rho
        return self.base.objective(params) + 0.5 * rho * jnp.sum(jnp.maximum(0.0, c + y / rho) ** 2 - (y / rho) ** 2)

    @property
    def constrained(self) -> bool:
        return self.base.constrained

    def box_lower(self, params):
        """``base.box_lower``."""
        return self.base.box_lower(params)

    def project(self, params):
        """``base.project``."""
        return self.base.project(params)

    def symmetry_tangents(self, params):
        """``base.symmetry_tangents`` (the constraints of the built-in models are invariant too)."""
        return self.base.symmetry_tangents(params)

    def classifier(self, params):
        """``base.classifier``."""
        return self.base.classifier(params)


def minimize_constrained(prob, *, seed: int = 0, params0=None, gtol: float = 1e-10, ctol: float = 1e-10,
                         restarts: int = 1, rho: float = 100.0, max_outer: int = 60, throw: bool = True,
                         init_scale=None, **inner_kwargs):
    r"""Certified KKT point of ``min f(theta)`` s.t. ``c(theta) <= 0`` and the box of ``prob``.

    Augmented-Lagrangian method (Nocedal & Wright, Alg. 17.4 for inequalities): minimize
    :class:`AugmentedLagrangian` with :func:`ufm.minimize` (warm-started; ``y`` and ``rho`` are array
    leaves, so the compiled solver is reused), update ``y <- max(0, y + rho c(theta))``, multiply
    ``rho`` by 10 whenever the violation/complementarity fell by less than a factor 4, stop when

    .. math:: \max_i c_i \le \mathrm{ctol},\quad \max_i |y_i c_i| \le \mathrm{ctol},\quad
        \lVert \theta - P(\theta - \nabla_\theta L(\theta, y))\rVert \le \mathrm{gtol}\max(1, |f|)

    (``y >= 0`` holds by construction). Host loop (not traceable).

    Returns:
        A :class:`ufm.Solution` with ``value = f`` (no penalty term), ``multipliers = y``,
        ``residuals`` = ``{"primal": max_i c_i, "dual": min_i y_i, "complementarity":
        max_i |y_i c_i|, "stationarity": KKT residual of the Lagrangian}`` (signed: feasible
        when ``primal <= 0`` and ``dual >= 0``), ``stats["outer_steps"]``, ``stats["rho"]``, and
        the certificate of the last inner solve.

    Raises:
        SolveError: not converged within ``max_outer`` (with ``throw=True``).
    """
    from ufm.solvers._minimize import minimize
    from ufm.solvers._results import RESULTS, SolveError

    x = params0
    x_ref = prob.init(jax.random.PRNGKey(0)) if params0 is None else params0
    M = num_constraints(prob, x_ref)
    y = np.zeros(M)
    rho, progress, done = float(rho), np.inf, False
    for it in range(1, max_outer + 1):
        aug = AugmentedLagrangian(prob, jnp.asarray(y), jnp.asarray(rho))
        kw = dict(gtol=gtol, throw=False, **inner_kwargs)
        sol = (minimize(aug, seed=seed, restarts=restarts, init_scale=init_scale, **kw) if x is None
               else minimize(aug, params0=x, **kw))
        x = sol.params
        c = np.asarray(prob.constraints(x))
        y = np.maximum(0.0, y + rho * c)
        res = {"primal": float(c.max()), "dual": float(y.min()), "complementarity": float(np.abs(y * c).max()),
               "stationarity": float(sol.grad_norm)}
        done = sol.converged and res["primal"] <= ctol and res["complementarity"] <= ctol
        if done:
            break
        measure = max(max(0.0, res["primal"]), res["complementarity"])
        if measure > max(ctol, 0.25 * progress):
            rho = min(10.0 * rho, 1e8)
        progress = measure
    result = RESULTS.successful if done else (sol.result if sol.result != RESULTS.successful
                                              else RESULTS.max_steps_reached)
    stats = dict(sol.stats, outer_steps=it, rho=rho)
    out = dataclasses.replace(sol, value=float(prob.objective(x)), result=result, multipliers=y,
                              residuals=res, stats=stats)
    if throw and not done:
        raise SolveError(f"minimize (augmented Lagrangian): not converged after {it} outer steps (residuals {res}, "
                         f"inner: {sol.result.message}); try a larger rho, max_outer, or restarts")
    return out

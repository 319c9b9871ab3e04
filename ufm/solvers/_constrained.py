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

from ufm._internal.deprecation import renamed_keywords
from ufm._internal.precision import require_x64
from ufm.problems import Problem
from ufm.solvers._core import check_order, checked_options, for_problem
from ufm.solvers._local import check_starts, minimize_local, starting_points
from ufm.solvers._results import RESULTS, Solution, SolveError

__all__ = ["AugmentedLagrangian", "num_constraints", "minimize_constrained"]


def num_constraints(prob: Problem, params: Any) -> int:
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

    def init(self, key: jax.Array, scale: Any = None) -> Any:
        """``base.init``."""
        return self.base.init(key, scale)

    def objective(self, params: Any) -> jax.Array:
        """``L_rho(params, y)``."""
        c, y, rho = self.base.constraints(params), self.y, self.rho
        f = self.base.objective(params)
        return f + 0.5 * rho * jnp.sum(jnp.maximum(0.0, c + y / rho) ** 2 - (y / rho) ** 2)

    @property
    def constrained(self) -> bool:
        """``base.constrained``."""
        return self.base.constrained

    def box_lower(self, params: Any) -> Any:
        """``base.box_lower``."""
        return self.base.box_lower(params)

    def project(self, params: Any) -> Any:
        """``base.project``."""
        return self.base.project(params)

    def symmetry_tangents(self, params: Any) -> Any:
        """``base.symmetry_tangents`` (the constraints of the built-in models are invariant too)."""
        return self.base.symmetry_tangents(params)

    def classifier(self, params: Any) -> tuple[jax.Array, jax.Array]:
        """``base.classifier``."""
        return self.base.classifier(params)


def _inner_solver(prob, *, seed, starts: int, init_scale, gtol: float, max_steps: int = 10_000,
                  max_newton: int = 100, order: str = "auto", eig_tol: float = 1e-8, max_escapes: int = 10,
                  num_iters: int = 100, hessian: bool = False):
    """The checked options of the inner solves, as ``solve(aug, x0) -> Solution`` (the local solve
    of :func:`ufm.minimize`, from ``starts`` random starts when ``x0`` is None)."""
    opts = checked_options(gtol=gtol, eig_tol=eig_tol, max_steps=max_steps, max_newton=max_newton,
                           max_escapes=max_escapes, num_iters=num_iters)
    seed, starts, init_scale = check_starts(seed=seed, starts=starts, init_scale=init_scale)
    check_order(order)

    def solve(aug, x0) -> Solution:
        if x0 is None:  # the first solve: random starts
            first_seed = seed
            x0s = starting_points(aug, seed=seed, starts=starts, init_scale=init_scale, params0=None)
        else:  # warm start (reported as seed 0)
            first_seed = 0
            x0s = starting_points(aug, seed=0, starts=1, init_scale=None, params0=x0)
        return minimize_local(aug, x0s, for_problem(opts, aug, x0s[0], order), seed=first_seed,
                              hessian=hessian, throw=False)

    return solve


@renamed_keywords(restarts="starts")
def minimize_constrained(prob: Problem, *, seed: int = 0, params0: Any = None, gtol: float = 1e-10,
                         ctol: float = 1e-10, starts: int = 1, rho: float = 100.0, max_outer: int = 60,
                         throw: bool = True, init_scale: float | None = None,
                         **inner_kwargs: Any) -> Solution:
    r"""Certified KKT point of ``min f(theta)`` s.t. ``c(theta) <= 0`` and the box of ``prob``.

    Augmented-Lagrangian method (Nocedal & Wright, Alg. 17.4 for inequalities): minimize
    :class:`AugmentedLagrangian` with the local solve of :func:`ufm.minimize` (warm-started; ``y``
    and ``rho`` are array leaves, so the compiled solver is reused), update
    ``y <- max(0, y + rho c(theta))``, multiply ``rho`` by 10 whenever the
    violation/complementarity fell by less than a factor 4, stop when

    .. math:: \max_i c_i \le \mathrm{ctol},\quad \max_i |y_i c_i| \le \mathrm{ctol},\quad
        \lVert \theta - P(\theta - \nabla_\theta L(\theta, y))\rVert \le \mathrm{gtol}\max(1, |f|)

    (``y >= 0`` holds by construction). Host loop (not traceable). ``starts`` random starts (the
    first inner solve; ``restarts=`` is its former name) or ``params0``; the other options
    (``max_steps``, ``max_newton``, ``order``, ``eig_tol``, ``max_escapes``, ``num_iters``,
    ``hessian``) are those of :func:`ufm.minimize`, with its defaults.

    Returns:
        A :class:`ufm.Solution` with ``value = f`` (no penalty term), ``multipliers = y``,
        ``residuals`` = ``{"primal": max_i c_i, "dual": min_i y_i, "complementarity":
        max_i |y_i c_i|, "stationarity": KKT residual of the Lagrangian}`` (signed: feasible
        when ``primal <= 0`` and ``dual >= 0``), ``stats["outer_steps"]``, ``stats["rho"]``, and
        the certificate of the last inner solve.

    Raises:
        ValueError: bad arguments (before compiling).
        SolveError: not converged within ``max_outer`` (with ``throw=True``).
    """
    require_x64("ufm.minimize")
    solve = _inner_solver(prob, seed=seed, starts=starts, init_scale=init_scale, gtol=gtol, **inner_kwargs)
    x = params0
    x_ref = prob.init(jax.random.PRNGKey(0)) if params0 is None else params0
    y = np.zeros(num_constraints(prob, x_ref))
    rho, progress, done = float(rho), np.inf, False
    for it in range(1, max_outer + 1):
        sol = solve(AugmentedLagrangian(prob, jnp.asarray(y), jnp.asarray(rho)), x)
        x = sol.params
        c = np.asarray(prob.constraints(x))
        y = np.maximum(0.0, y + rho * c)
        res = {"primal": float(c.max()), "dual": float(y.min()),
               "complementarity": float(np.abs(y * c).max()), "stationarity": float(sol.grad_norm)}
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
        raise SolveError(f"minimize (augmented Lagrangian): not converged after {it} outer steps "
                         f"(residuals {res}, inner: {sol.result.message}); try a larger rho, max_outer, "
                         f"or starts")
    return out

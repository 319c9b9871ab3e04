r"""The certified minimizer's front door: :func:`minimize` checks its arguments and dispatches.

What runs (float64; one pure JAX function, ``jit``-compiled, :func:`ufm.solvers._core.solve`):

1. a first-order method to a relative KKT residual of ``1e-6``: L-BFGS (optax, zoom line search)
   without constraints; spectral projected gradient with a nonmonotone Armijo search (Birgin,
   Martinez & Raydan 2000) for box constraints such as ``H >= 0``;
2. a damped projected Newton-CG polish on Hessian-vector products (Bertsekas' free/active split)
   until the first-order certificate

   .. math:: \lVert \theta - P(\theta - \nabla f(\theta)) \rVert_2 \le
       \mathrm{gtol}\cdot\max(1, |f(\theta)|)

   holds (the gradient norm without constraints, the KKT residual with them);
3. the second-order check: the smallest eigenvalue ``lambda_min`` of the Hessian on the free
   components with the symmetry directions removed (:func:`ufm.solvers.hessian_spectrum`, dense
   up to 2000 parameters, Lanczos above). If ``lambda_min < -eig_tol`` the point is a strict
   saddle: a step along the eigenvector leaves it and stages 1-3 run again, up to
   ``max_escapes`` times.

The certificate (``sol.certificate``) says what holds: ``order == "second"`` (first and second
order: a local minimizer up to the degenerate directions), ``"first"`` (a critical point; the
curvature was not checked), ``"none"``; ``scope == "global"`` only with ``certify="global"``.

Where the work goes: the local solve (:func:`ufm.solvers._local.minimize_local`), inequality
constraints (:func:`ufm.solvers.minimize_constrained`), the global gap
(:func:`ufm.solvers._global.minimize_global`), and, for deep ReLU models on the host, the polish
of :func:`ufm.solvers._relu.polish_piece`: a point at kinks of the ReLU is polished on its
activation piece (pattern frozen, consistency checked); when no adjacent piece certifies it (the
low-rank points, on hundreds of kinks), a sharp softplus continuation, a Newton solve of the kink
manifold's Lagrange system and the Clarke certificate

.. math:: \mathrm{kkt} = \min_{s \in [0,1]^S} \lVert g(s) \rVert_2 \le \mathrm{gtol}\cdot\max(1, |f|),

``g(s)`` the back-propagated gradient with ``relu'(0) = s_k`` at the kink entries ``S``. Such a
solution has ``order == "first"`` (first order in the Clarke sense), ``min_eig`` the smallest
Hessian eigenvalue on the kink manifold ``{Z_S = 0}`` (``>= -eig_tol`` for
``RESULTS.successful``), and ``stats["piece"]["clarke"]`` with the kinks and slopes. A point
certified on one activation piece that has kink entries is checked the same way (the piece's
certificate says nothing about the neighbouring pieces): order ``"first"``, ``successful`` only when
no neighbouring piece descends (``stats["piece"]["clarke"]["descent"]`` empty); a descending piece
is entered and the solve runs again.
"""

from __future__ import annotations

import warnings
from typing import Any

from ufm._internal.deprecation import renamed_keywords
from ufm._internal.precision import require_x64
from ufm._internal.validation import check_finite_positive, check_int
from ufm.problems import Problem
from ufm.solvers._constrained import minimize_constrained, num_constraints
from ufm.solvers._core import check_order, checked_options, for_problem
from ufm.solvers._global import minimize_global
from ufm.solvers._local import check_starts, minimize_local, starting_points
from ufm.solvers._relu import polish_piece
from ufm.solvers._results import Solution

__all__ = ["minimize", "minimize_md"]


@renamed_keywords(restarts="starts")
def minimize(prob: Problem, *, seed: int = 0, params0: Any = None, gtol: float = 1e-10,
             max_steps: int = 10_000, max_newton: int = 100, starts: int = 1, init_scale: float | None = None,
             order: str = "auto", eig_tol: float = 1e-8, max_escapes: int = 10, num_iters: int = 100,
             hessian: bool = False, ctol: float = 1e-10, max_outer: int = 60, certify: str | None = None,
             throw: bool = True) -> Solution:
    r"""Find a certified local minimizer (a second-order point where affordable) of a Problem.

    L-BFGS (or spectral projected gradient under a box), a Newton-CG polish to
    ``||theta - P(theta - grad f)|| <= gtol max(1, |f|)``, the second-order check with saddle
    escapes: the stages and the certificate are described in :mod:`ufm.solvers._minimize`. With
    ``throw=False`` the solve is pure JAX (``jax.jit``/``jax.vmap`` over problems or seeds).

    Main arguments:
        prob: a Problem (for example :class:`ufm.UFM`).
        seed: random start ``prob.init(PRNGKey(seed), init_scale)``.
        gtol: relative first-order tolerance (default ``1e-10``).
        order: what to certify: ``"auto"`` (second order when affordable: up to 200,000
            parameters, else first order), ``"second"`` (always), ``"first"``.
            ``sol.converged`` is true only when that is certified.
        starts: solve from seeds ``seed, seed+1, ...`` (a ``vmap`` over starting points inside a
            trace, a loop of the compiled solve on the host) and keep the lowest objective among
            the certified runs (``restarts=`` is its deprecated name).

    Other arguments:
        params0: a starting point instead of a random one (``starts`` must then be 1).
        max_steps: first-stage iteration cap. max_newton: Newton iteration cap.
        init_scale: entry scale of the random start (default ``1/sqrt(d)``).
        eig_tol: second-order tolerance, ``lambda_min >= -eig_tol`` (default ``1e-8``).
        max_escapes: saddle escapes before giving up (``RESULTS.saddle``).
        num_iters: Lanczos steps of the curvature check above 2000 parameters.
        ctol: for problems with inequality constraints ``prob.constraints(params) <= 0``
            (the M-D radius model): :func:`ufm.solvers.minimize_constrained` runs instead, to
            primal and complementarity residuals ``<= ctol`` within ``max_outer`` multiplier
            updates; the Solution then carries ``multipliers`` and ``residuals``.
        max_outer: for problems with inequality constraints ``prob.constraints(params) <= 0``
            (the M-D radius model): :func:`ufm.solvers.minimize_constrained` runs instead, to
            primal and complementarity residuals ``<= ctol`` within ``max_outer`` multiplier
            updates; the Solution then carries ``multipliers`` and ``residuals``.
        hessian: also report ``(lambda_min, lambda_max)`` of the Hessian on the free components
            with the symmetry directions included (:func:`ufm.hessian_extreme_eigs`); host only.
        certify: ``"global"`` holds :func:`ufm.global_certificate` in the certificate and makes
            ``sol.converged`` (and ``certificate.scope == "global"``) require
            ``gap <= gtol * max(1, |f|)`` as well; on the host it tries new seeds, then the
            default init scale, until that holds, else returns ``RESULTS.not_global``.
        throw: raise :class:`ufm.SolveError` unless converged. ``False`` returns the Solution with
            its ``result``; on traced values the Solution holds arrays. A ReLU DeepUFM's slow
            convergence never raises (its result code and ``stats["piece"]`` say what was reached).

    Returns:
        A :class:`Solution`; ``sol.value`` is the objective value.

    Raises:
        ValueError: bad arguments (before compiling), or float64 off (:func:`ufm.enable_x64`).
        SolveError: no run converged (non-finite values, step caps, a failed line search, a
            saddle that the escapes did not leave).

    References:
        Liu & Nocedal 1989 (L-BFGS); Nocedal & Wright, Numerical Optimization, ch. 7 (Newton-CG)
        and Thm. 12.6 (second-order conditions); Bertsekas 1982 (projected Newton); Ge et al. 2015
        and Lee et al. 2016 (escaping strict saddles); Zhu et al., NeurIPS 2021 (arXiv 2105.02375).
    """
    require_x64("ufm.minimize")
    if certify is not None:
        return minimize_global(minimize, prob, certify, dict(
            seed=seed, params0=params0, gtol=gtol, max_steps=max_steps, max_newton=max_newton, starts=starts,
            init_scale=init_scale, order=order, eig_tol=eig_tol, max_escapes=max_escapes, num_iters=num_iters,
            hessian=hessian, ctol=ctol, max_outer=max_outer), throw)
    opts = checked_options(gtol=gtol, eig_tol=eig_tol, max_steps=max_steps, max_newton=max_newton,
                           max_escapes=max_escapes, num_iters=num_iters)
    seed, starts, init_scale = check_starts(seed=seed, starts=starts, init_scale=init_scale)
    check_order(order)
    x0s = starting_points(prob, seed=seed, starts=starts, init_scale=init_scale, params0=params0)
    if num_constraints(prob, x0s[0]) > 0:
        return minimize_constrained(
            prob, seed=seed, params0=params0, gtol=opts.gtol, ctol=check_finite_positive("ctol", ctol),
            starts=starts, max_outer=check_int("max_outer", max_outer, 1), throw=throw,
            max_steps=opts.max_steps, max_newton=opts.max_newton, init_scale=init_scale, order=order,
            eig_tol=opts.eig_tol, max_escapes=opts.max_escapes, num_iters=opts.num_iters, hessian=hessian)
    return minimize_local(prob, x0s, for_problem(opts, prob, x0s[0], order), seed=seed, hessian=hessian,
                          throw=throw, polish=polish_piece)


def minimize_md(prob: Problem, **kwargs: Any) -> Solution:
    """Deprecated alias of :func:`ufm.minimize` for the M-D model (kept for one release): the
    model's radius constraints are solved by the augmented Lagrangian inside ``minimize``."""
    warnings.warn("minimize_md is deprecated; use ufm.minimize (it solves the M-D model's radius "
                  "constraints itself)", DeprecationWarning, stacklevel=2)
    return minimize(prob, **kwargs)

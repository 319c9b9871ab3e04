r"""A certified minimizer: L-BFGS (or spectral projected gradient) then a Newton-CG polish."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ufm import _tree as tr
from ufm._precision import require_x64
from ufm._validate import check_finite_positive, check_int
from ufm.solvers._certify import free_mask, hessian_extreme_eigs
from ufm.solvers._common import kkt_residual
from ufm.solvers._results import RESULTS, SolveError

__all__ = ["Solution", "minimize"]

_SWITCH_RTOL = 1e-6  # first stage hands over to Newton below this relative KKT residual


@dataclass(frozen=True)
class Solution:
    """The outcome of :func:`ufm.minimize`: a point and its certificate.

    Attributes:
        params: the minimizer found (for :class:`ufm.UFM`, ``Params(W, H, b)``).
        value: the *objective* ``f(params)`` (unlike optimistix, where ``value`` is the argmin).
        grad_norm: the certificate ``||theta - P(theta - grad f)||_2``: the gradient norm without
            constraints, the KKT residual with them.
        result: a :class:`ufm.RESULTS` member; ``converged`` is ``result == successful``, which
            means ``grad_norm <= gtol * max(1, |value|)``.
        hessian_eigs: ``(lambda_min, lambda_max)`` of the Hessian (on the free components), when
            requested with ``hessian=True``; else ``None``.
        stats: ``num_steps`` (all iterations), ``first_order_steps``, ``newton_steps``,
            ``max_steps``, ``seed``, and with restarts ``restart_values`` and ``restart_results``.
    """

    params: Any
    value: float
    grad_norm: float
    result: RESULTS
    hessian_eigs: tuple[float, float] | None = None
    stats: dict = field(default_factory=dict)

    @property
    def converged(self) -> bool:
        return self.result == RESULTS.successful

    @property
    def iterations(self) -> int:
        """First-order plus Newton iterations of the returned run (``stats["num_steps"]``)."""
        return self.stats["num_steps"]


def _lbfgs(prob, x0, rtol, max_steps):
    """optax L-BFGS with zoom line search until KKT <= rtol * max(1, |f|)."""
    f = prob.objective
    opt = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(f)

    def cond(carry):
        x, state, k, done = carry
        return (~done) & (k < max_steps)

    def body(carry):
        x, state, k, _ = carry
        value, grad = value_and_grad(x, state=state)
        updates, state = opt.update(grad, state, x, value=value, grad=grad, value_fn=f)
        x_new = optax.apply_updates(x, updates)
        bad = ~jnp.isfinite(value)
        small = tr.tree_norm(grad) <= rtol * jnp.maximum(1.0, jnp.abs(value))
        return tr.tree_where(bad | small, x, x_new), state, k + 1, bad | small

    x, _, k, _ = jax.lax.while_loop(cond, body, (x0, opt.init(x0), jnp.int32(0), jnp.asarray(False)))
    return x, k


def _spg(prob, x0, rtol, max_steps, memory=10):
    """Spectral projected gradient (Birgin, Martinez & Raydan 2000), nonmonotone Armijo."""
    f = prob.objective
    vg = jax.value_and_grad(f)
    f0, g0 = vg(x0)

    def cond(c):
        x, fx, g, alpha, hist, k, done = c
        return (~done) & (k < max_steps)

    def body(c):
        x, fx, g, alpha, hist, k, _ = c
        d = tr.tree_sub(prob.project(tr.tree_axpy(-alpha, g, x)), x)
        gd = tr.tree_dot(g, d)
        f_ref = jnp.max(hist)

        def ls_cond(s):
            t, ft, it = s
            return (ft > f_ref + 1e-4 * t * gd) & (it < 60)

        def ls_body(s):
            t, _, it = s
            t = 0.5 * t
            return t, f(tr.tree_axpy(t, d, x)), it + 1

        t, _, _ = jax.lax.while_loop(ls_cond, ls_body, (1.0, f(tr.tree_axpy(1.0, d, x)), 0))
        x_new = prob.project(tr.tree_axpy(t, d, x))
        f_new, g_new = vg(x_new)
        s, y = tr.tree_sub(x_new, x), tr.tree_sub(g_new, g)
        sy = tr.tree_dot(s, y)
        alpha_new = jnp.where(sy > 0, tr.tree_dot(s, s) / jnp.where(sy > 0, sy, 1.0), 1e4)
        alpha_new = jnp.clip(alpha_new, 1e-10, 1e10)
        hist = jnp.roll(hist, 1).at[0].set(f_new)
        bad = ~jnp.isfinite(f_new)
        small = kkt_residual(prob, x_new, g_new) <= rtol * jnp.maximum(1.0, jnp.abs(f_new))
        x_keep = tr.tree_where(bad, x, x_new)
        return x_keep, jnp.where(bad, fx, f_new), tr.tree_where(bad, g, g_new), alpha_new, hist, k + 1, bad | small

    alpha0 = 1.0 / jnp.maximum(tr.tree_norm(g0), 1e-12)
    hist0 = jnp.full((memory,), f0)
    c = (x0, f0, g0, alpha0, hist0, jnp.int32(0), jnp.asarray(False))
    x, *_, k, _ = jax.lax.while_loop(cond, body, c)
    return x, k


def _cg(op, rhs, rtol, max_iters):
    """Conjugate gradients for op(p) = rhs, stopping at ||r|| <= rtol ||rhs|| or negative curvature.

    On negative curvature at the first iteration it returns ``rhs`` (a gradient direction).
    """
    rnorm0 = tr.tree_norm(rhs)

    def cond(c):
        p, r, s, rr, k, stop = c
        return (~stop) & (k < max_iters) & (jnp.sqrt(rr) > rtol * rnorm0)

    def body(c):
        p, r, s, rr, k, _ = c
        As = op(s)
        sAs = tr.tree_dot(s, As)
        neg = sAs <= 0
        a = rr / jnp.where(neg, 1.0, sAs)
        p_new = tr.tree_where(neg & (k == 0), rhs, tr.tree_where(neg, p, tr.tree_axpy(a, s, p)))
        r_new = tr.tree_axpy(-a, As, r)
        rr_new = tr.tree_dot(r_new, r_new)
        s_new = tr.tree_axpy(rr_new / rr, s, r_new)
        return p_new, r_new, s_new, rr_new, k + 1, neg

    zero = tr.tree_zeros_like(rhs)
    c = (zero, rhs, rhs, tr.tree_dot(rhs, rhs), jnp.int32(0), jnp.asarray(False))
    p, *_, k, _ = jax.lax.while_loop(cond, body, c)
    return p, k


def _newton(prob, x0, rtol, max_iters, cg_max):
    r"""Damped (Levenberg-Marquardt) projected Newton-CG with a KKT-aware line search.

    Direction on free components: (H_ff + mu I) p = -g_f with mu = min(1e-3, KKT), solved by CG to
    a forcing tolerance min(0.5, sqrt(KKT)); on active components a projected gradient step.
    A step is accepted on projected Armijo decrease, or, once objective differences are at
    round-off level, when it lowers the KKT residual.
    """
    f = prob.objective
    vg = jax.value_and_grad(f)
    f0, g0 = vg(x0)

    def cond(c):
        x, fx, g, kkt, k, cgk, result = c
        tol = rtol * jnp.maximum(1.0, jnp.abs(fx))
        return (kkt > tol) & (k < max_iters) & (result == RESULTS.successful)

    def body(c):
        x, fx, g, kkt, k, cgk, result = c
        free = free_mask(prob, x, g)
        mu = jnp.minimum(1e-3, kkt)
        gf = tr.tree_mul(free, g)

        def op(v):
            hv = jax.jvp(jax.grad(f), (x,), (tr.tree_mul(free, v),))[1]
            return tr.tree_axpy(mu, v, tr.tree_mul(free, hv))

        p, its = _cg(op, tr.tree_scale(-1.0, gf), jnp.minimum(0.5, jnp.sqrt(kkt)), cg_max)
        p = tr.tree_axpy(-1.0, tr.tree_mul(tr.tree_sub(jax.tree_util.tree_map(jnp.ones_like, free), free), g), p)
        roundoff = 1e-12 * (1.0 + jnp.abs(fx))

        def trial(t):
            xt = prob.project(tr.tree_axpy(t, p, x))
            ft, gt = vg(xt)
            kt = kkt_residual(prob, xt, gt)
            armijo = ft <= fx + 1e-4 * tr.tree_dot(g, tr.tree_sub(xt, x))
            ok = jnp.isfinite(ft) & (armijo | ((ft <= fx + roundoff) & (kt < kkt)))
            return xt, ft, gt, kt, ok

        def ls_cond(s):
            it, ok = s[1], s[-1]
            return (~ok) & (it < 40)

        def ls_body(s):
            t, it = 0.5 * s[0], s[1] + 1
            return (t, it) + trial(t)

        s = jax.lax.while_loop(ls_cond, ls_body, (1.0, 0) + trial(1.0))
        _, _, xt, ft, gt, kt, ok = s
        result = jnp.where(ok, result, RESULTS.linesearch_failed).astype(jnp.int32)
        return (tr.tree_where(ok, xt, x), jnp.where(ok, ft, fx), tr.tree_where(ok, gt, g),
                jnp.where(ok, kt, kkt), k + 1, cgk + its, result)

    c = (x0, f0, g0, kkt_residual(prob, x0, g0), jnp.int32(0), jnp.int32(0), jnp.int32(RESULTS.successful))
    x, fx, g, kkt, k, cgk, result = jax.lax.while_loop(cond, body, c)
    return x, fx, kkt, k, cgk, result


@functools.partial(jax.jit, static_argnames=("max_steps", "max_newton", "cg_max"))
def _solve(prob, x0, gtol, max_steps, max_newton, cg_max):
    x0 = prob.project(x0)
    switch = jnp.maximum(gtol, _SWITCH_RTOL)
    if prob.constrained:
        x1, k1 = _spg(prob, x0, switch, max_steps)
    else:
        x1, k1 = _lbfgs(prob, x0, switch, max_steps)
    x, fx, kkt, k2, cgk, result = _newton(prob, x1, gtol, max_newton, cg_max)
    finite = jnp.isfinite(fx) & tr.tree_all_finite(x)
    result = jnp.where(finite, result, RESULTS.nonfinite)
    converged = kkt <= gtol * jnp.maximum(1.0, jnp.abs(fx))
    result = jnp.where(converged & finite, RESULTS.successful,
                       jnp.where(result == RESULTS.successful, RESULTS.max_steps_reached, result))
    return x, fx, kkt, k1, k2, cgk, result.astype(jnp.int32)


def minimize(
    prob,
    *,
    seed: int = 0,
    params0=None,
    gtol: float = 1e-10,
    max_steps: int = 10_000,
    max_newton: int = 100,
    restarts: int = 1,
    init_scale: float | None = None,
    hessian: bool = False,
    throw: bool = True,
) -> Solution:
    r"""Find a certified critical point (in practice a local, usually global, minimizer) of a Problem.

    Two stages inside one ``jax.jit``, in float64:

    1. a first-order method to a relative KKT residual of ``1e-6``: L-BFGS (optax, zoom line
       search) without constraints; spectral projected gradient with a nonmonotone Armijo search
       (Birgin, Martinez & Raydan 2000) for box constraints such as ``H >= 0``;
    2. a damped projected Newton-CG polish on Hessian-vector products (Bertsekas' free/active
       split) until the certificate

       .. math:: \lVert \theta - P(\theta - \nabla f(\theta)) \rVert_2 \le
           \mathrm{gtol}\cdot\max(1, |f(\theta)|)

       holds (the gradient norm without constraints, the KKT residual with them).

    Main arguments:
        prob: a Problem (for example :class:`ufm.UFM`).
        seed: random start ``prob.init(PRNGKey(seed), init_scale)``.
        gtol: relative certificate tolerance (default ``1e-10``).
        restarts: solve from seeds ``seed, seed+1, ...`` and keep the lowest objective among the
            converged runs (the compiled solver is reused, no recompilation).
        hessian: also compute the extreme Hessian eigenvalues (:func:`ufm.hessian_extreme_eigs`)
            at the returned point.

    Other arguments:
        params0: a starting point instead of a random one (``restarts`` must then be 1).
        max_steps: first-stage iteration cap. max_newton: Newton iteration cap.
        init_scale: entry scale of the random start (default ``1/sqrt(d)``).
        throw: raise :class:`ufm.SolveError` unless converged; ``False`` returns the Solution
            with its ``result``.

    Returns:
        A :class:`Solution`; ``sol.value`` is the objective value.

    Raises:
        ValueError: bad arguments (before compiling).
        SolveError: no run converged (non-finite values, step caps, a failed line search).

    References:
        Liu & Nocedal 1989 (L-BFGS); Nocedal & Wright, Numerical Optimization, ch. 7 (Newton-CG);
        Bertsekas 1982 (projected Newton); Zhu et al., NeurIPS 2021 (the CE UFM landscape).
    """
    require_x64("ufm.minimize")
    gtol = check_finite_positive("gtol", gtol)
    max_steps = check_int("max_steps", max_steps, 1)
    max_newton = check_int("max_newton", max_newton, 0)
    restarts = check_int("restarts", restarts, 1)
    if params0 is not None and restarts != 1:
        raise ValueError(f"restarts must be 1 when params0 is given, got restarts={restarts}")
    runs = []
    for r in range(restarts):
        x0 = params0 if params0 is not None else prob.init(jax.random.PRNGKey(seed + r), init_scale)
        out = _solve(prob, x0, gtol, max_steps, max_newton, 500)
        runs.append((seed + r, out))
    values = [float(out[1]) for _, out in runs]
    results = [RESULTS(int(out[6])) for _, out in runs]
    ok = [i for i, res in enumerate(results) if res == RESULTS.successful]
    pool = ok if ok else [i for i, v in enumerate(values) if np.isfinite(v)] or [0]
    best = min(pool, key=lambda i: values[i])
    run_seed, (x, fx, kkt, k1, k2, cgk, _) = runs[best]
    result = results[best]
    stats = dict(num_steps=int(k1) + int(k2), first_order_steps=int(k1), newton_steps=int(k2),
                 cg_steps=int(cgk), max_steps=max_steps, seed=run_seed)
    if restarts > 1:
        stats.update(restart_values=values, restart_results=results)
    if throw and result != RESULTS.successful:
        raise SolveError(
            f"minimize: {result.message}; from seed {run_seed} after {int(k1)} first-order and "
            f"{int(k2)} Newton steps the KKT residual is {float(kkt):.3g} (gtol={gtol}, objective "
            f"{float(fx):.6g}); try restarts>1, a larger max_steps, or a looser gtol"
        )
    eigs = hessian_extreme_eigs(prob, x) if hessian else None
    return Solution(params=x, value=float(fx), grad_norm=float(kkt), result=result,
                    hessian_eigs=eigs, stats=stats)

r"""The descent kernels of :func:`ufm.minimize`: pure JAX loops, each a ``lax.while_loop``.

- :func:`lbfgs`: optax L-BFGS with a zoom line search (no constraints);
- :func:`spg`: spectral projected gradient with a nonmonotone Armijo search (box constraints);
- :func:`cg`: conjugate gradients that stop on negative curvature;
- :func:`newton_cg`: damped projected Newton-CG with a KKT-aware line search (the polish).

References:
    Liu & Nocedal 1989 (L-BFGS); Birgin, Martinez & Raydan 2000 (SPG); Nocedal & Wright,
    Numerical Optimization, ch. 5 and 7 (CG, Newton-CG); Bertsekas 1982 (projected Newton).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from ufm._internal import tree as tr
from ufm.problems import Problem
from ufm.solvers._certify import free_mask
from ufm.solvers._common import kkt_residual
from ufm.solvers._results import RESULTS

__all__ = ["lbfgs", "spg", "cg", "newton_cg"]


def lbfgs(prob: Problem, x0: Any, rtol: Any, max_steps: int) -> tuple[Any, jax.Array]:
    """optax L-BFGS with zoom line search until KKT <= rtol * max(1, |f|); returns ``(x, steps)``."""
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


def spg(prob: Problem, x0: Any, rtol: Any, max_steps: int, memory: int = 10) -> tuple[Any, jax.Array]:
    """Spectral projected gradient (Birgin, Martinez & Raydan 2000), nonmonotone Armijo over the
    last ``memory`` values; returns ``(x, steps)``."""
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
            return (it < 0) | ((ft > f_ref + 1e-4 * t * gd) & (it < 60))

        def ls_body(s):
            t, _, it = s
            t = 0.5 * t
            return t, f(tr.tree_axpy(t, d, x)), it + 1

        # one traced copy of f: the first pass of the body evaluates the full step t = 1
        t, _, _ = jax.lax.while_loop(ls_cond, ls_body, (2.0, jnp.asarray(jnp.inf, f0.dtype), -1))
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
        return (x_keep, jnp.where(bad, fx, f_new), tr.tree_where(bad, g, g_new), alpha_new, hist, k + 1,
                bad | small)

    alpha0 = 1.0 / jnp.maximum(tr.tree_norm(g0), 1e-12)
    hist0 = jnp.full((memory,), f0)
    c = (x0, f0, g0, alpha0, hist0, jnp.int32(0), jnp.asarray(False))
    x, *_, k, _ = jax.lax.while_loop(cond, body, c)
    return x, k


def cg(op: Callable[[Any], Any], rhs: Any, rtol: Any, max_iters: int) -> tuple[Any, jax.Array]:
    """Conjugate gradients for op(p) = rhs, stopping at ||r|| <= rtol ||rhs|| or negative curvature.

    On negative curvature at the first iteration it returns ``rhs`` (a gradient direction).
    Returns ``(p, iterations)``.
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


class NewtonState(NamedTuple):
    """The carry of :func:`newton_cg`."""

    x: Any  # the iterate, a parameter pytree (float64 leaves)
    value: jax.Array  # shape=(), float64: f(x)
    grad: Any  # like x: grad f(x)
    kkt: jax.Array  # shape=(), float64: ||x - P(x - grad f)||
    steps: jax.Array  # shape=(), int32: Newton iterations
    cg_steps: jax.Array  # shape=(), int32: CG iterations, all Newton steps together
    result: jax.Array  # shape=(), int32: a RESULTS code


class _Trial(NamedTuple):
    """The carry of the Newton line search: the step tried last and the point it reached."""

    t: Any  # step length (halved each pass; starts at 2 so the first pass tries 1)
    it: Any  # pass counter, -1 before the first pass
    x: Any
    value: jax.Array
    grad: Any
    kkt: jax.Array
    ok: jax.Array  # shape=(), bool: the step is accepted


def _newton_direction(prob, s: NewtonState, cg_max: int):
    r"""``p`` with ``(H_ff + mu I) p_f = -g_f`` (CG, forcing ``min(0.5, sqrt(KKT))``), ``mu =
    min(1e-3, KKT)``, and ``p = -g`` on the active components; returns ``(p, CG iterations)``."""
    f = prob.objective
    x, g, kkt = s.x, s.grad, s.kkt
    free = free_mask(prob, x, g)
    mu = jnp.minimum(1e-3, kkt)
    gf = tr.tree_mul(free, g)

    def op(v):
        hv = jax.jvp(jax.grad(f), (x,), (tr.tree_mul(free, v),))[1]
        return tr.tree_axpy(mu, v, tr.tree_mul(free, hv))

    p, its = cg(op, tr.tree_scale(-1.0, gf), jnp.minimum(0.5, jnp.sqrt(kkt)), cg_max)
    p = tr.tree_axpy(-1.0, tr.tree_mul(tr.tree_sub(jax.tree_util.tree_map(jnp.ones_like, free), free), g), p)
    return p, its


def _newton_step(prob, vg, s: NewtonState, cg_max: int) -> NewtonState:
    """One damped Newton step: the direction, then halvings from ``t = 1`` until accepted."""
    x, fx, g, kkt = s.x, s.value, s.grad, s.kkt
    p, its = _newton_direction(prob, s, cg_max)
    roundoff = 1e-12 * (1.0 + jnp.abs(fx))

    def trial(t):
        xt = prob.project(tr.tree_axpy(t, p, x))
        ft, gt = vg(xt)
        kt = kkt_residual(prob, xt, gt)
        armijo = ft <= fx + 1e-4 * tr.tree_dot(g, tr.tree_sub(xt, x))
        ok = jnp.isfinite(ft) & (armijo | ((ft <= fx + roundoff) & (kt < kkt)))
        return xt, ft, gt, kt, ok

    def ls_cond(tr_: _Trial):
        return (tr_.it < 0) | ((~tr_.ok) & (tr_.it < 40))

    def ls_body(tr_: _Trial):
        t = 0.5 * tr_.t
        return _Trial(t, tr_.it + 1, *trial(t))

    # one traced copy of the trial (a gradient evaluation): the first pass of the body tries t = 1
    last = jax.lax.while_loop(ls_cond, ls_body, _Trial(2.0, -1, x, fx, g, kkt, jnp.asarray(False)))
    ok = last.ok
    result = jnp.where(ok, s.result, RESULTS.linesearch_failed).astype(jnp.int32)
    return NewtonState(tr.tree_where(ok, last.x, x), jnp.where(ok, last.value, fx),
                       tr.tree_where(ok, last.grad, g), jnp.where(ok, last.kkt, kkt), s.steps + 1,
                       s.cg_steps + its, result)


def newton_cg(prob: Problem, x0: Any, rtol: Any, max_iters: int, cg_max: int) -> NewtonState:
    r"""Damped (Levenberg-Marquardt) projected Newton-CG with a KKT-aware line search.

    Direction on free components: (H_ff + mu I) p = -g_f with mu = min(1e-3, KKT), solved by CG to
    a forcing tolerance min(0.5, sqrt(KKT)); on active components a projected gradient step.
    A step is accepted on projected Armijo decrease, or, once objective differences are at
    round-off level, when it lowers the KKT residual. Runs while ``KKT > rtol max(1, |f|)``, at
    most ``max_iters`` steps, until a line search fails.
    """
    vg = jax.value_and_grad(prob.objective)
    f0, g0 = vg(x0)

    def cond(s: NewtonState):
        tol = rtol * jnp.maximum(1.0, jnp.abs(s.value))
        return (s.kkt > tol) & (s.steps < max_iters) & (s.result == RESULTS.successful)

    s0 = NewtonState(x0, f0, g0, kkt_residual(prob, x0, g0), jnp.int32(0), jnp.int32(0),
                     jnp.int32(RESULTS.successful))
    return jax.lax.while_loop(cond, lambda s: _newton_step(prob, vg, s, cg_max), s0)

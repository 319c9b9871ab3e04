r"""A certified minimizer: L-BFGS (or spectral projected gradient) then a Newton-CG polish."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from ufm._internal import tree as tr
from ufm._internal.precision import require_x64
from ufm._internal.validation import check_finite_positive, check_int
from ufm.solvers._certify import spectrum, free_mask, hessian_extreme_eigs, resolve_method
from ufm._internal.runtime import release_compiled_near_map_limit
from ufm.solvers._common import check_params, random_start
from ufm.solvers._constrained import minimize_constrained, num_constraints
from ufm.solvers._common import kkt_residual
from ufm.solvers._results import RESULTS, SolveError

__all__ = ["Solution", "Certificate", "minimize"]

_SWITCH_RTOL = 1e-6  # first stage hands over to Newton below this relative KKT residual


ORDER_NAMES = ("none", "first", "second")


class Certificate(NamedTuple):
    r"""What a :class:`Solution` certifies (a pytree; its leaves are arrays inside ``jit``).

    Attributes:
        kkt: the first-order residual ``||theta - P(theta - grad f)||_2`` (the gradient norm
            without constraints).
        min_eig: the smallest eigenvalue of the Hessian on the free components with the
            directions of the model's continuous symmetries removed
            (:func:`ufm.solvers.hessian_spectrum`); ``nan`` when second order was not checked,
            ``+inf`` when no direction is left.
        order_code: ``0`` (nothing certified), ``1`` (first order: ``kkt <= gtol max(1, |f|)``),
            ``2`` (second order as well: ``min_eig >= -eig_tol``). See :attr:`order`.
        global_gap: ``f - (a proven lower bound on the global minimum)`` where the family has
            one; ``None`` here (a local certificate only).
    """

    kkt: Any
    min_eig: Any
    order_code: Any
    global_gap: Any = None

    @property
    def order(self):
        """``"none"``, ``"first"`` or ``"second"`` (an array of names under ``vmap``)."""
        code = np.asarray(self.order_code)
        if code.ndim == 0:
            return ORDER_NAMES[int(code)]
        return np.asarray(ORDER_NAMES, dtype=object)[code]

    @property
    def scope(self) -> str:
        """``"global"`` when ``global_gap`` proves global optimality (``<= 0`` up to round-off),
        else ``"local"``: a second-order point is a local minimizer candidate, not the global one."""
        if self.global_gap is not None and float(np.max(np.asarray(self.global_gap))) <= 1e-9:
            return "global"
        return "local"


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class Solution:
    """The outcome of :func:`ufm.minimize`: a point and its certificate (a pytree).

    On the host path the scalar fields are Python numbers and ``result`` a :class:`ufm.RESULTS`
    member; inside ``jax.jit``/``jax.vmap`` (``throw=False``) they are arrays.

    Attributes:
        params: the point found (for :class:`ufm.UFM`, ``Params(W, H, b)``).
        value: the *objective* ``f(params)`` (unlike optimistix, where ``value`` is the argmin).
        grad_norm: ``||theta - P(theta - grad f)||_2`` (= ``certificate.kkt``).
        result: a :class:`ufm.RESULTS` member (an int32 code inside ``jit``). ``successful``
            means what was asked is certified (see ``converged``); ``saddle`` means a point with
            negative curvature that the escapes did not leave.
        certificate: a :class:`Certificate` (``kkt``, ``min_eig``, ``order``, ``global_gap``).
        hessian_eigs: ``(lambda_min, lambda_max)`` of the Hessian on the free components (symmetry
            directions *included*), when requested with ``hessian=True``; else ``None``.
        stats: ``num_steps`` (all iterations), ``first_order_steps``, ``newton_steps``,
            ``cg_steps``, ``escapes`` (saddle escapes), ``max_steps``, ``seed``, and with restarts
            ``restart_values`` and ``restart_results``.
        multipliers: for a constrained solve, the multipliers of ``prob.constraints`` (else None).
        residuals: for a constrained solve, ``primal`` (``max(0, max_i c_i)``), ``dual``
            (``max(0, -min_i y_i)``) and ``complementarity`` (``max_i |y_i c_i|``); else None.
    """

    params: Any
    value: Any
    grad_norm: Any
    result: Any
    certificate: Any = None
    hessian_eigs: Any = None
    stats: dict = field(default_factory=dict)
    multipliers: Any = None
    residuals: Any = None

    @property
    def converged(self):
        """Whether what was asked is certified (``result == successful``)."""
        r = self.result
        if isinstance(r, RESULTS) or isinstance(r, (int, np.integer)):
            return int(r) == RESULTS.successful
        return jnp.asarray(r) == RESULTS.successful

    @property
    def kkt(self) -> dict:
        """``stationarity``, ``violation`` (``max(0, max_i c_i)``), ``complementarity`` and
        ``dual`` (``min_i y_i``) from ``residuals``; without inequality constraints the last three
        are 0 and ``stationarity`` is ``grad_norm``."""
        if self.residuals is None:
            return {"stationarity": self.grad_norm, "violation": 0.0, "complementarity": 0.0, "dual": 0.0}
        r = self.residuals
        return {"stationarity": r["stationarity"], "violation": max(0.0, r["primal"]),
                "complementarity": r["complementarity"], "dual": r["dual"]}

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
            return (it < 0) | ((~ok) & (it < 40))

        def ls_body(s):
            t, it = 0.5 * s[0], s[1] + 1
            return (t, it) + trial(t)

        # one traced copy of the trial (a gradient evaluation): the first pass of the body tries t = 1
        s = jax.lax.while_loop(ls_cond, ls_body, (2.0, -1, x, fx, g, kkt, jnp.asarray(False)))
        _, _, xt, ft, gt, kt, ok = s
        result = jnp.where(ok, result, RESULTS.linesearch_failed).astype(jnp.int32)
        return (tr.tree_where(ok, xt, x), jnp.where(ok, ft, fx), tr.tree_where(ok, gt, g),
                jnp.where(ok, kt, kkt), k + 1, cgk + its, result)

    c = (x0, f0, g0, kkt_residual(prob, x0, g0), jnp.int32(0), jnp.int32(0), jnp.int32(RESULTS.successful))
    x, fx, g, kkt, k, cgk, result = jax.lax.while_loop(cond, body, c)
    return x, fx, kkt, k, cgk, result


_LANCZOS_MAX = 200_000  # parameters; above this "auto" certifies first order only
_TANGENT_BUDGET = 2e7  # entries of the (n, m) symmetry-tangent matrix "auto" will orthonormalize


def _descend(prob, x0, gtol, max_steps, max_newton, cg_max):
    """First-order stage (L-BFGS or SPG) to a relative KKT residual 1e-6, then Newton-CG."""
    switch = jnp.maximum(gtol, _SWITCH_RTOL)
    if prob.constrained:
        x1, k1 = _spg(prob, x0, switch, max_steps)
    else:
        x1, k1 = _lbfgs(prob, x0, switch, max_steps)
    x, fx, kkt, k2, cgk, result = _newton(prob, x1, gtol, max_newton, cg_max)
    return x, fx, kkt, k1, k2, cgk, result


def _curvature(prob, x, key, second, num_iters):
    """Smallest eigenvalue and eigenvector of the projected Hessian (``nan`` when not checked)."""
    flat = ravel_pytree(x)[0]
    if second is None:
        return jnp.asarray(jnp.nan, flat.dtype), jnp.zeros_like(flat)
    w, V = spectrum(prob, x, key, second, True, num_iters)
    return w[0], V[:, 0]


def _escape(prob, x, v_flat, lam):
    r"""Leave a strict saddle along the negative-curvature direction ``v`` (``v^T H v = lam < 0``).

    The sign makes ``grad f . v <= 0``; the step ``t`` starts at ``max(1, ||theta||)`` and is
    halved until ``f(theta + t v) <= f(theta) - |lam| t^2 / 8`` (a quarter of the decrease the
    quadratic model predicts); the point is projected onto the feasible box.
    """
    flat, unravel = ravel_pytree(x)
    fx, g = jax.value_and_grad(prob.objective)(x)
    gv = jnp.dot(ravel_pytree(g)[0], v_flat)
    v = jnp.where(gv > 0, -1.0, 1.0) * v_flat
    t0 = jnp.maximum(1.0, jnp.linalg.norm(flat))

    def trial(t):
        xt = prob.project(unravel(flat + t * v))
        return xt, prob.objective(xt)

    def cond(c):
        t, it, xt, ft = c
        return (it < 0) | ((~(ft <= fx - 0.125 * jnp.abs(lam) * t**2)) & (it < 60))

    def body(c):
        t, it, _, _ = c
        t = 0.5 * t
        return (t, it + 1) + trial(t)

    # one traced copy of the trial: the first pass of the body tries t = t0
    _, _, xt, _ = jax.lax.while_loop(cond, body, (2.0 * t0, -1, x, fx))
    return xt


@functools.partial(jax.jit, static_argnames=("max_steps", "max_newton", "cg_max", "second", "num_iters",
                                             "max_escapes"))
def _solve(prob, x0, key, gtol, eig_tol, max_steps, max_newton, cg_max, second, num_iters, max_escapes):
    """The whole solve as one pure function: descend, check curvature, escape saddles, repeat."""
    x0 = prob.project(x0)
    flat0 = ravel_pytree(x0)[0]
    zero = jnp.int32(0)
    # rounds: descend, check curvature; later rounds first step off the saddle (esc counts them)
    carry = (x0, jnp.asarray(jnp.inf, flat0.dtype), jnp.asarray(jnp.inf, flat0.dtype), zero, zero, zero,
             jnp.int32(RESULTS.successful), jnp.asarray(jnp.nan, flat0.dtype), jnp.zeros_like(flat0), jnp.int32(-1))

    def cond(c):
        _, fx, kkt, _, _, _, result, lam, _, esc = c
        first = kkt <= gtol * jnp.maximum(1.0, jnp.abs(fx))
        saddle = first & (result == RESULTS.successful) & (lam < -eig_tol) & (esc < max_escapes)
        return (esc < 0) | saddle

    def body(c):
        x, _, _, k1, k2, cgk, _, lam, v, esc = c
        if second is not None:
            x = jax.lax.cond(esc >= 0, lambda: _escape(prob, x, v, lam), lambda: x)
        x, fx, kkt, d1, d2, dcg, result = _descend(prob, x, gtol, max_steps, max_newton, cg_max)
        lam, v = _curvature(prob, x, key, second, num_iters)
        return (x, fx, kkt, k1 + d1, k2 + d2, cgk + dcg, result, lam, v, esc + 1)

    carry = jax.lax.while_loop(cond, body, carry) if second is not None else body(carry)
    x, fx, kkt, k1, k2, cgk, result, lam, _, esc = carry
    finite = jnp.isfinite(fx) & tr.tree_all_finite(x)
    result = jnp.where(finite, result, RESULTS.nonfinite)
    first = (kkt <= gtol * jnp.maximum(1.0, jnp.abs(fx))) & finite
    second_ok = first & (lam >= -eig_tol) if second is not None else jnp.asarray(False)
    order = jnp.where(second_ok, 2, jnp.where(first, 1, 0)).astype(jnp.int32)
    wanted = second_ok if second is not None else first
    result = jnp.where(wanted, RESULTS.successful,
                       jnp.where(first & (result == RESULTS.successful), RESULTS.saddle,
                                 jnp.where(result == RESULTS.successful, RESULTS.max_steps_reached, result)))
    cert = Certificate(kkt=kkt, min_eig=lam, order_code=order, global_gap=None)
    return x, fx, result.astype(jnp.int32), cert, dict(first_order_steps=k1, newton_steps=k2, cg_steps=cgk,
                                                       escapes=esc)


def _polish_piece(prob, out, key, args, x0=None, rounds: int = 2):
    r"""Certify a piecewise-smooth (ReLU) model on its activation piece (host side).

    Deep-neural-collapse points of ReLU models sit on kinks (exact zeros of the pre-activations),
    where a gradient method stalls with a residual that does not vanish. Up to ``rounds`` times:
    freeze the activation pattern of the current point (``prob.smooth_piece``, entries below
    ``1e-3`` of the layer's largest pre-activation count as off), run the whole solve on that
    smooth piece from the point, and check with ``prob.piece_report`` that the result lies on the
    same piece (so that the ReLU objective equals the piece's). The polished point is kept when it
    is consistent, certified on the piece, and not above the unpolished value; otherwise the next
    round freezes the pattern of the new point. If no round succeeds for an uncertified point of a
    ReLU model without ``relu_features``, a sharp continuation runs from the point reached
    (``prob.smoothed(beta)``, ``beta = 1e3 .. 1e8``, first order, at most 3000 steps each), then
    :func:`_kink_rounds`: the Newton polish onto the kink manifold and the Clarke certificate of a
    point at kinks that no single adjacent piece certifies (the low-rank points below the DNC
    value). If that fails too and ``x0`` is given, a continuation runs from ``x0``:
    ``prob.smoothed(beta)`` (softplus of sharpness ``beta``) solved
    for ``beta = 10, 100, ..., 1e6`` (warm starts; ``beta`` is an array leaf, no recompilation),
    then the piece polish of its end point. Returns ``(out, info)`` with ``info`` the piece
    report (``consistent``, ``kinks``: ``(layer, unit, sample)`` exactly at a kink, ``gap``,
    ``rounds``), or ``None`` for smooth problems.
    """
    x, fx, result, cert, cnt = out
    piece = prob.smooth_piece(x)
    if piece is None:
        return out, None
    if int(result) == RESULTS.successful:
        rep = prob.piece_report(piece, x)
        if not rep["kinks"]:  # a smooth point of the ReLU model: nothing to polish
            return out, dict(rep, rounds=0)
    polished, info = _piece_rounds(prob, piece, out, key, args, rounds)
    if polished is None and int(result) != RESULTS.successful and not prob.relu_features:
        # the low-rank (kink) points: a sharp continuation from the point reached, then the kink polish
        sharp_args = args[:2] + (min(args[2], 3000),) + args[3:5] + (None,) + args[6:]
        near = _continuation(prob, x, cert, cnt, key, sharp_args, (1e3, 1e4, 1e5, 1e6, 1e7, 1e8))
        polished, info_k = _kink_rounds(prob, near, args, info)
        if polished is not None:
            return polished, dict(info_k, continuation="sharp")
        if "clarke" in info_k:  # what the kink polish reached, kept in the report of what follows
            c = info_k["clarke"]
            info = dict(info, kink_attempt=dict(value=c["value"], kkt=c["kkt"], kinks=len(c["kinks"]),
                                                polish_residual=c["polish_residual"]))
    if polished is not None or x0 is None or prob.smoothed(1.0) is None or int(result) == RESULTS.successful:
        return (polished if polished is not None else out), info
    cont = _continuation(prob, x0, cert, cnt, key, args, (1e1, 1e2, 1e3, 1e4, 1e5, 1e6))
    polished, info2 = _piece_rounds(prob, prob.smooth_piece(cont[0]), cont, key, args, rounds)
    if polished is not None:
        return polished, dict(info2, continuation=True, **({"kink_attempt": info["kink_attempt"]}
                                                          if "kink_attempt" in info else {}))
    return out, info


def _continuation(prob, y, cert, cnt, key, args, betas):
    """Solve ``prob.smoothed(beta)`` for each ``beta`` in turn (warm starts; ``beta`` is an array
    leaf, so one compiled solve serves them all); returns an ``out`` tuple at the last point, its
    ReLU value, ``max_steps_reached`` (nothing certified yet) and the step counts added up."""
    total = cnt
    for beta in betas:
        y, _, _, _, n_b = _solve(prob.smoothed(jnp.asarray(beta)), y, key, *args)
        total = jax.tree_util.tree_map(lambda a, b: a + b, total, n_b)
    return (y, prob.objective(y), jnp.int32(RESULTS.max_steps_reached), cert, total)


def _piece_rounds(prob, piece, out, key, args, rounds):
    """The piece rounds of :func:`_polish_piece`: ``(polished out or None, report)``."""
    x, fx, result, cert, cnt = out
    ref = float(fx) if np.isfinite(float(fx)) else np.inf
    # never above the point polished: 1e-12 relative for a certified point; for an uncertified one
    # 1e-4 relative (the piece drops entries below 1e-3 of a layer's largest, and a smoothed
    # start differs from its ReLU value by O(1/beta)); a jump onto a worse piece (for example the
    # dead-ReLU plateau, value about 1/2) is refused
    rel = 1e-12 if int(result) == RESULTS.successful else 1e-4
    tol = rel * max(1.0, abs(ref)) if np.isfinite(ref) else 0.0
    info = {"consistent": False, "kinks": [], "gap": np.nan, "rounds": 0}
    y = x
    for r in range(1, rounds + 1):
        py, fy, ry, cy, ny = _solve(piece, y, key, *args)
        rep = prob.piece_report(piece, py)
        value = float(prob.objective(py))
        total = jax.tree_util.tree_map(lambda a, b: a + b, cnt, ny)
        if rep["consistent"] and int(ry) == RESULTS.successful and value <= ref + tol \
                and rep["gap"] <= 1e-10 * max(1.0, abs(value)):
            info = dict(rep, rounds=r)
            return (py, jnp.asarray(value), ry, cy, total), info
        info = dict(rep, rounds=r)
        if not np.isfinite(value):
            break
        y = py
        piece = prob.smooth_piece(y)
    return None, info


def _kink_rounds(prob, out, args, info, tol: float = 1e-5):
    r"""Certify a ReLU point that sits at kinks without being stationary on any adjacent piece.

    :func:`ufm.solvers._relu.polish_kink` (Newton on the Lagrange system of the kink manifold,
    kink entries ``|Z| <= tol max|Z_l|``, dead units zeroed), then
    :func:`ufm.solvers._relu.clarke_certificate` (kink set recomputed at ``1e-8``, slopes fitted in
    ``[0, 1]``). Kept when its ``kkt <= gtol max(1, |f|)``: the Certificate then says
    ``order == "first"`` (first order in the Clarke sense) with ``min_eig`` the smallest
    eigenvalue of the Hessian on the kink manifold; ``result`` is ``successful`` when that second
    order holds too (or only first order was asked), else ``saddle``. The report
    (``info["clarke"]``) names the kinks, the slopes and what is certified.
    Returns ``(out or None, info)``.
    """
    from ufm.solvers._relu import clarke_certificate, polish_kink

    gtol, eig_tol, second = args[0], args[1], args[5]
    x, fx, result, cert, cnt = out
    scale = max(1.0, abs(float(fx))) if np.isfinite(float(fx)) else 1.0
    y, _, res, it = polish_kink(prob, x, tol=tol, gtol=1e-2 * gtol * scale)
    value = float(prob.objective(y))
    if not np.isfinite(value):
        return None, info
    c = clarke_certificate(prob, y, eig_tol=eig_tol, second=second is not None)
    rep = dict(info, clarke=dict(c, kink_tol=tol, polish_residual=res, polish_steps=it))
    if c["kkt"] > gtol * max(1.0, abs(value)):
        return None, rep
    ok = second is None or c["min_eig"] >= -eig_tol
    new_cert = Certificate(kkt=jnp.asarray(c["kkt"]), min_eig=jnp.asarray(c["min_eig"]),
                           order_code=jnp.int32(1), global_gap=None)
    total = dict(cnt, newton_steps=cnt["newton_steps"] + it)
    rep.update(consistent=True, gap=0.0, kinks=c["kinks"])
    return (y, jnp.asarray(value), jnp.int32(RESULTS.successful if ok else RESULTS.saddle), new_cert, total), rep


def _num_tangents(prob, x0) -> int:
    """Number of symmetry tangents at a point shaped like ``x0`` (traced once per problem shape)."""
    leaves, treedef = jax.tree_util.tree_flatten(x0)
    key = (jax.tree_util.tree_structure(prob), treedef,
           tuple((np.shape(v), str(getattr(v, "dtype", type(v).__name__))) for v in leaves))
    try:
        hash(key)
    except TypeError:  # a problem with unhashable static data: no caching
        return _count_tangents(prob, x0)
    if key not in _TANGENT_COUNTS:
        _TANGENT_COUNTS[key] = _count_tangents(prob, x0)
    return _TANGENT_COUNTS[key]


_TANGENT_COUNTS: dict = {}


def _count_tangents(prob, x0) -> int:
    shape = jax.eval_shape(prob.symmetry_tangents, x0)
    leaves = jax.tree_util.tree_leaves(shape)
    return int(leaves[0].shape[0]) if leaves else 0


def _second_order_method(prob, x0, order: str):
    """``None`` (first order only), ``"dense"`` or ``"lanczos"`` for the curvature check."""
    if order == "first":
        return None
    n = tr.tree_size(x0)
    m = _num_tangents(prob, x0)
    if order == "auto" and (n > _LANCZOS_MAX or n * m > _TANGENT_BUDGET):
        return None
    return resolve_method("auto", n)


def _is_traced(tree) -> bool:
    return any(isinstance(x, jax.core.Tracer) for x in jax.tree_util.tree_leaves(tree))


def _select(values, results, orders):
    """Index of the best run: lowest value among the certified, else among the finite."""
    ok = results == RESULTS.successful
    finite = jnp.isfinite(values)
    pool = jnp.where(jnp.any(ok), ok, finite)
    return jnp.argmin(jnp.where(pool, values, jnp.inf))


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
    order: str = "auto",
    eig_tol: float = 1e-8,
    max_escapes: int = 10,
    num_iters: int = 100,
    hessian: bool = False,
    ctol: float = 1e-10,
    max_outer: int = 60,
    certify: str | None = None,
    throw: bool = True,
) -> Solution:
    r"""Find a certified local minimizer (a second-order point where affordable) of a Problem.

    One pure JAX function (``jit``-compiled; with ``throw=False`` it can itself be traced by
    ``jax.jit``/``jax.vmap``), in float64:

    1. a first-order method to a relative KKT residual of ``1e-6``: L-BFGS (optax, zoom line
       search) without constraints; spectral projected gradient with a nonmonotone Armijo search
       (Birgin, Martinez & Raydan 2000) for box constraints such as ``H >= 0``;
    2. a damped projected Newton-CG polish on Hessian-vector products (Bertsekas' free/active
       split) until the first-order certificate

       .. math:: \lVert \theta - P(\theta - \nabla f(\theta)) \rVert_2 \le
           \mathrm{gtol}\cdot\max(1, |f(\theta)|)

       holds (the gradient norm without constraints, the KKT residual with them);
    3. the second-order check: the smallest eigenvalue ``lambda_min`` of the Hessian on the free
       components with the symmetry directions removed (:func:`ufm.solvers.hessian_spectrum`,
       dense up to 2000 parameters, Lanczos above). If ``lambda_min < -eig_tol`` the point is a
       strict saddle: a step along the eigenvector (:func:`_escape`) leaves it and stages 1-3
       run again, up to ``max_escapes`` times.

    The certificate (``sol.certificate``) says what holds: ``order == "second"`` (first and second
    order: a local minimizer up to the degenerate directions), ``"first"`` (a critical point; the
    curvature was not checked), ``"none"``. ``global_gap`` is ``None``: nothing here tells a
    local minimizer from the global one.

    Deep ReLU models (host only): a point at kinks of the ReLU is polished on its activation piece
    (pattern frozen, consistency checked, :func:`_polish_piece`); when no adjacent piece certifies
    it (the low-rank points, on hundreds of kinks), a sharp softplus continuation from the point
    reached, a Newton solve of the kink manifold's Lagrange system
    (:func:`ufm.solvers._relu.polish_kink`) and the Clarke certificate
    (:func:`ufm.solvers._relu.clarke_certificate`):

    .. math:: \mathrm{kkt} = \min_{s \in [0,1]^S} \lVert g(s) \rVert_2 \le
        \mathrm{gtol}\cdot\max(1, |f|),

    ``g(s)`` the back-propagated gradient with ``relu'(0) = s_k`` at the kink entries ``S``. Such a
    solution has ``order == "first"`` (first order in the Clarke sense), ``min_eig`` the smallest
    Hessian eigenvalue on the kink manifold ``{Z_S = 0}`` (``>= -eig_tol`` for
    ``RESULTS.successful``), and ``stats["piece"]["clarke"]`` with the kinks and slopes.

    Main arguments:
        prob: a Problem (for example :class:`ufm.UFM`).
        seed: random start ``prob.init(PRNGKey(seed), init_scale)``.
        gtol: relative first-order tolerance (default ``1e-10``).
        order: what to certify: ``"auto"`` (second order when affordable: up to 200,000
            parameters, else first order), ``"second"`` (always), ``"first"``.
            ``sol.converged`` is true only when that is certified.
        restarts: solve from seeds ``seed, seed+1, ...`` (a ``vmap`` over starting points inside
            a trace, a loop of the compiled solve on the host) and keep the lowest objective among
            the certified runs.

    Other arguments:
        params0: a starting point instead of a random one (``restarts`` must then be 1).
        max_steps: first-stage iteration cap. max_newton: Newton iteration cap.
        init_scale: entry scale of the random start (default ``1/sqrt(d)``).
        eig_tol: second-order tolerance, ``lambda_min >= -eig_tol`` (default ``1e-8``).
        max_escapes: saddle escapes before giving up (``RESULTS.saddle``).
        num_iters: Lanczos steps of the curvature check above 2000 parameters.
        ctol, max_outer: for problems with inequality constraints ``prob.constraints(params) <= 0``
            (the M-D radius model): the augmented-Lagrangian method of
            :func:`ufm.solvers.minimize_constrained` runs instead, to primal and complementarity
            residuals ``<= ctol`` within ``max_outer`` multiplier updates; the Solution then
            carries ``multipliers`` and ``residuals``.
        hessian: also report ``(lambda_min, lambda_max)`` of the Hessian on the free components
            with the symmetry directions included (:func:`ufm.hessian_extreme_eigs`); host only.
        certify: ``"global"`` fills ``certificate.global_gap`` (:func:`ufm.global_certificate`)
            and makes ``sol.converged`` require ``gap <= gtol * max(1, |f|)`` as well; on the host
            it restarts (new seeds, then the default init scale) until that holds, else returns
            ``RESULTS.not_global`` with the measured gap (:func:`ufm.solvers._global.minimize_global`).
        throw: raise :class:`ufm.SolveError` unless converged. ``False`` returns the Solution
            with its ``result``; called on traced values (inside ``jax.jit``/``jax.vmap``) the
            Solution holds arrays.

    Returns:
        A :class:`Solution`; ``sol.value`` is the objective value.

    Raises:
        ValueError: bad arguments (before compiling), or float64 off (:func:`ufm.enable_x64`).
        SolveError: no run converged (non-finite values, step caps, a failed line search, a
            saddle that the escapes did not leave).

    References:
        Liu & Nocedal 1989 (L-BFGS); Nocedal & Wright, Numerical Optimization, ch. 7 (Newton-CG)
        and Thm. 12.6 (second-order conditions); Bertsekas 1982 (projected Newton); Ge et al. 2015
        and Lee et al. 2016 (escaping strict saddles); Zhu et al., NeurIPS 2021 (arXiv 2105.02375,
        the strict-saddle CE UFM landscape).
    """
    require_x64("ufm.minimize")
    if certify is not None:
        from ufm.solvers._global import minimize_global

        return minimize_global(minimize, prob, certify, dict(
            seed=seed, params0=params0, gtol=gtol, max_steps=max_steps, max_newton=max_newton,
            restarts=restarts, init_scale=init_scale, order=order, eig_tol=eig_tol,
            max_escapes=max_escapes, num_iters=num_iters, hessian=hessian, ctol=ctol, max_outer=max_outer),
            throw)
    gtol = check_finite_positive("gtol", gtol)
    eig_tol = check_finite_positive("eig_tol", eig_tol)
    max_steps = check_int("max_steps", max_steps, 1)
    max_newton = check_int("max_newton", max_newton, 0)
    max_escapes = check_int("max_escapes", max_escapes, 0)
    num_iters = check_int("num_iters", num_iters, 1)
    restarts = check_int("restarts", restarts, 1)
    if not isinstance(seed, jax.core.Tracer):
        seed = check_int("seed", seed, 0)
    if init_scale is not None and not isinstance(init_scale, jax.core.Tracer):
        init_scale = check_finite_positive("init_scale", init_scale)
    if not isinstance(order, str) or order not in ("auto", "first", "second"):
        raise ValueError(f"order must be 'auto', 'first' or 'second', got order={order!r}")
    if params0 is not None and restarts != 1:
        raise ValueError(f"restarts must be 1 when params0 is given, got restarts={restarts}")
    if params0 is None:
        starts = [random_start(prob, seed + r, init_scale) for r in range(restarts)]
    else:
        starts = [check_params(prob, params0)]
    if num_constraints(prob, starts[0]) > 0:
        ctol = check_finite_positive("ctol", ctol)
        max_outer = check_int("max_outer", max_outer, 1)
        return minimize_constrained(prob, seed=seed, params0=params0, gtol=gtol, ctol=ctol, restarts=restarts,
                                    max_outer=max_outer, throw=throw, max_steps=max_steps, max_newton=max_newton,
                                    init_scale=init_scale, order=order, eig_tol=eig_tol, max_escapes=max_escapes,
                                    num_iters=num_iters, hessian=hessian)
    second = _second_order_method(prob, starts[0], order)
    iters = int(min(num_iters, tr.tree_size(starts[0])))
    key = jax.random.PRNGKey(0)
    args = (gtol, eig_tol, max_steps, max_newton, 500, second, iters, max_escapes)
    traced = _is_traced((prob, starts))
    pieces = [(None, None)] * restarts
    if traced and restarts > 1:  # restarts as a vmap over starting points
        x0s = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *starts)
        stacked = jax.vmap(lambda x0: _solve(prob, x0, key, *args))(x0s)
    else:  # the compiled solve in a loop on the host (XLA:CPU runs batched small matmuls slowly)
        compiled = _solve._cache_size()
        outs = [_solve(prob, x0, key, *args) for x0 in starts]
        if not traced:
            if _solve._cache_size() > compiled:  # a new shape: mind the memory-map limit
                release_compiled_near_map_limit()
            pieces = [_polish_piece(prob, out, key, args, x0) for out, x0 in zip(outs, starts)]
            outs = [o for o, _ in pieces]
        stacked = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *outs) if restarts > 1 else None
    if stacked is None:  # one run: no stacking and picking (each an eager op to compile)
        x, fx, result, cert, cnt = outs[0]
        best = 0
    else:
        xs, fxs, results, certs, counts = stacked
        best = _select(fxs, results, certs.order_code)
        pick = lambda u: u[best]  # noqa: E731
        x, fx, result, cert, cnt = jax.tree_util.tree_map(pick, (xs, fxs, results, certs, counts))
    if traced:
        stats = dict(cnt, num_steps=cnt["first_order_steps"] + cnt["newton_steps"],
                     seed=jnp.asarray(seed) + best, max_steps=max_steps)
        if restarts > 1:
            stats.update(restart_values=fxs, restart_results=results)
        return Solution(params=x, value=fx, grad_norm=cert.kkt, result=result, certificate=cert, stats=stats)

    best = int(best)
    piece_info = pieces[best][1]
    result = RESULTS(int(result))
    cert = Certificate(kkt=float(cert.kkt), min_eig=float(cert.min_eig), order_code=int(cert.order_code),
                       global_gap=None)
    k1, k2 = int(cnt["first_order_steps"]), int(cnt["newton_steps"])
    stats = dict(num_steps=k1 + k2, first_order_steps=k1, newton_steps=k2, cg_steps=int(cnt["cg_steps"]),
                 escapes=int(cnt["escapes"]), max_steps=max_steps, seed=seed + best)
    if piece_info is not None:
        stats["piece"] = piece_info
    if restarts > 1:
        stats.update(restart_values=[float(v) for v in fxs], restart_results=[RESULTS(int(r)) for r in results])
    if throw and result != RESULTS.successful:
        curv = "" if np.isnan(cert.min_eig) else f", smallest free Hessian eigenvalue {cert.min_eig:.3g}"
        raise SolveError(
            f"minimize: {result.message}; from seed {seed + best} after {k1} first-order and "
            f"{k2} Newton steps and {stats['escapes']} saddle escapes the KKT residual is {cert.kkt:.3g} "
            f"(gtol={gtol}, objective {float(fx):.6g}{curv}); try restarts>1, a larger max_steps, "
            f"or a looser gtol"
        )
    eigs = hessian_extreme_eigs(prob, x) if hessian else None
    return Solution(params=x, value=float(fx), grad_norm=cert.kkt, result=result, certificate=cert,
                    hessian_eigs=eigs, stats=stats)

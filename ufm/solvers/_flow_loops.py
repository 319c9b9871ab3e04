r"""The compiled loops of :func:`ufm.gradient_flow`: fixed explicit steps (Euler, heavy ball) and
adaptive Bogacki-Shampine 3(2) steps, with the checks that turn a failure into a RESULTS code.

Every function here is pure JAX (no host conversion), so a flow can sit inside ``jax.jit``,
``jax.vmap`` or ``jax.lax.map``; :mod:`ufm.solvers._flow` is the front door.

The stability rule of the fixed steps (``unstable_step``):

- plain Euler (``momentum = 0``): a gradient step that increases the objective,
  ``f_{k+1} - f_k > RISE_ULPS * eps * (|f_k| + |f_{k+1}| + |f_0|)`` (``eps`` the dtype's machine
  epsilon; the ``|f_0|`` term covers the absolute rounding of a residual that has cancelled). By
  the descent lemma ``f(x - dt g) <= f(x) - dt (1 - L dt / 2) |g|^2``, no step with ``dt < 2/L``
  (``L`` the largest Hessian eigenvalue along the step) increases ``f``: a rise means the step is
  above its stability limit.
- heavy ball (``momentum = mu > 0``): a bound on the growth, ``f_k - f_0 > HEAVY_BALL_GROWTH
  (1 + |f_0|)``. The energy ``E_k = f(x_k) + (mu dt / 2) |v_k|^2`` is non-increasing only for
  ``dt < 2 (1 - mu) / L`` (a sufficient condition), while heavy ball converges on a quadratic for
  every ``dt < 2 (1 + mu) / L``; between the two the objective and the energy may rise for a while
  (by a factor of a few hundred near the limit), so monotonicity would flag convergent runs.
  Above the limit the growth is geometric and crosses the bound within a few steps.

A rise is recorded (the first step where it happens and the values around it); the loop goes on,
so the trajectory of an unstable run is complete, and only non-finite values or divergence (growth
by ``DIVERGENCE_FACTOR``) stop it.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from ufm._internal import tree as tr
from ufm._internal.runtime import register_compiled
from ufm.problems import UFM, Params, affine_logits, weight_decay
from ufm.solvers._common import flow_rhs
from ufm.solvers._results import RESULTS

__all__ = ["FlowState", "fixed_loop", "fixed_loop_other_backends", "adaptive_loop", "value_and_grad",
           "fixed_loop_impl", "adaptive_loop_impl", "DIVERGENCE_FACTOR", "RISE_ULPS", "HEAVY_BALL_GROWTH",
           "LOOP_COMPILER_OPTIONS"]

DIVERGENCE_FACTOR = 1e12
RISE_ULPS = 1024.0  # Euler: a rise above 1024 eps (|f_k| + |f_{k+1}| + |f_0|) is not rounding
HEAVY_BALL_GROWTH = 1e3  # heavy ball: f_k - f_0 > 1e3 (1 + |f_0|) is not a transient of a stable run


class FlowState(NamedTuple):
    t: jax.Array  # shape=(), float64: current time
    params: Any  # pytree of the problem's parameters
    velocity: Any  # pytree like params: heavy-ball buffer (fixed step) or FSAL slope (adaptive)
    value: jax.Array  # shape=(), objective at the previous point (fixed step) or at params (adaptive)
    h: jax.Array  # shape=(), float64: step size to try next (adaptive)
    num_steps: jax.Array  # shape=(), int32: accepted steps
    num_rejected: jax.Array  # shape=(), int32: rejected steps (adaptive)
    result: jax.Array  # shape=(), int32: a RESULTS code (only failures that stop the loop)
    rise_step: jax.Array  # shape=(), int32: first step whose point broke the stability rule, -1 if none
    rise_from: jax.Array  # shape=(), params' dtype: the objective it is compared with (f_k or f_0)
    rise_to: jax.Array  # shape=(), params' dtype: the objective that broke the rule


def _start_state(t0, params0, velocity, value, h, result) -> FlowState:
    nan = jnp.full((), jnp.nan, jnp.asarray(value).dtype)
    return FlowState(t=jnp.asarray(t0, float), params=params0, velocity=velocity, value=value,
                     h=jnp.asarray(h, float), num_steps=jnp.int32(0), num_rejected=jnp.int32(0),
                     result=jnp.asarray(result, jnp.int32), rise_step=jnp.int32(-1), rise_from=nan, rise_to=nan)


def record(prob, state, metric_fns, save_params):
    rec = {"t": state.t, "value": prob.objective(state.params)}
    rec["metrics"] = {name: fn(prob, state.params) for name, fn in metric_fns}
    if save_params:
        rec["params"] = state.params
    return rec


def check(state, value, f0):
    """Update the result code after a step: NaN/inf, or growth beyond all bounds."""
    bad = ~jnp.isfinite(value)
    big = jnp.abs(value) > DIVERGENCE_FACTOR * (1.0 + jnp.abs(f0))
    code = jnp.where(bad, RESULTS.nonfinite, jnp.where(big, RESULTS.diverged, state.result))
    return code.astype(jnp.int32)


def _eps(params) -> float:
    """Machine epsilon of the parameters' least precise floating dtype (the objective may come out
    in a wider dtype than the parameters, through a float64 constant inside a loss)."""
    dts = [leaf.dtype for leaf in jax.tree_util.tree_leaves(params) if jnp.issubdtype(leaf.dtype, jnp.floating)]
    return max((float(jnp.finfo(d).eps) for d in dts), default=float(jnp.finfo(float).eps))


def note_rise(state: FlowState, value, f0, momentum) -> FlowState:
    """Record the first point ``x_k`` (``k = state.num_steps``, objective ``value``) that breaks the
    stability rule of the module docstring; ``state.value`` holds ``f_{k-1}`` (``f_0`` at ``k = 0``)."""
    before = state.value
    eps = _eps(state.params)
    euler = value - before > RISE_ULPS * eps * (jnp.abs(value) + jnp.abs(before) + jnp.abs(f0))
    heavy = value - f0 > HEAVY_BALL_GROWTH * (1.0 + jnp.abs(f0))
    hb = momentum > 0
    first = jnp.where(hb, heavy, euler) & (state.rise_step < 0)
    return state._replace(
        rise_step=jnp.where(first, state.num_steps, state.rise_step),
        rise_from=jnp.where(first, jnp.where(hb, f0, before), state.rise_from).astype(state.rise_from.dtype),
        rise_to=jnp.where(first, value, state.rise_to).astype(state.rise_to.dtype),
    )


def _transposed(A):
    """``A^T`` as a row-major array of its own (``optimization_barrier`` stops XLA from folding the
    transpose back into the product that reads it)."""
    return jax.lax.optimization_barrier(A.T)


def _ufm_value_and_grad(prob: UFM, params: Params):
    r"""``f`` and ``grad f`` of a :class:`ufm.UFM`, the chain rule through the logits written out.

    .. math::
        Z = W H + b 1^T,\quad G = \partial_Z \tfrac1N \textstyle\sum_i \ell(z_i, y_i),\quad
        \nabla_W f = G H^T + \lambda_W W,\quad \nabla_H f = W^T G + \lambda_H H,\quad
        \nabla_b f = G 1 + \lambda_b b

    ``G`` comes from :meth:`ufm.losses.Loss.mean_and_grad` (written out for cross-entropy,
    autodiff for the others) and the penalty's gradient from autodiff, so this is the mathematics
    of ``jax.value_and_grad(prob.objective)``; what differs is how the three products
    run: ``W^T`` is materialized (``D x d``, cheap) before ``W^T G``, because XLA:CPU computes a
    product whose left operand is read transposed 2-2.5x slower than the same product from a
    row-major copy (measured for ``K = 10..100``, ``d = 64..512``; see benchmarks/README.md).
    """
    W, H, b = params
    data, G = prob.loss.mean_and_grad(affine_logits(W, H, b), jnp.asarray(prob.labels))
    pen, g_pen = jax.value_and_grad(functools.partial(weight_decay, prob))(params)
    g_data = Params(G @ H.T, _transposed(W) @ G, None if b is None else jnp.sum(G, axis=1))
    return data + pen, tr.tree_axpy(1.0, g_data, g_pen)


def value_and_grad(prob, params):
    """``(f, grad f)``: written out for the UFM (:func:`_ufm_value_and_grad`), autodiff otherwise."""
    if type(prob) is UFM:
        return _ufm_value_and_grad(prob, params)
    return jax.value_and_grad(prob.objective)(params)


def _fixed_step(prob, state, dt, momentum, f0):
    """One explicit (projected) Euler step, or heavy ball: v <- mu v + g, x <- P(x - dt v).

    The objective at the current point is checked (non-finite or diverged) before stepping; a
    failed check keeps the point and stops the loop. A rise (the stability rule) is recorded.
    """
    value, g = value_and_grad(prob, state.params)
    v = tr.tree_axpy(momentum, state.velocity, g)
    x = prob.project(tr.tree_axpy(-dt, v, state.params))
    result = check(state, value, f0)
    ok = result == RESULTS.successful
    state = note_rise(state, value, f0, momentum)
    return state._replace(
        params=tr.tree_where(ok, x, state.params),
        velocity=v,
        value=value,
        num_steps=state.num_steps + ok.astype(jnp.int32),
        result=result,
    )


def fixed_loop_impl(prob, params0, t0, dt, momentum, save_steps, metric_fns, save_params):
    """``lax.scan`` over the recording step counts ``save_steps``, fixed steps in between."""
    f0 = prob.objective(params0)
    state = _start_state(t0, params0, tr.tree_zeros_like(params0), f0, dt, RESULTS.successful)

    def advance(state, m):
        def cond(s):
            return (s.num_steps < m) & (s.result == RESULTS.successful)

        state = jax.lax.while_loop(cond, lambda s: _fixed_step(prob, s, dt, momentum, f0), state)
        state = state._replace(t=t0 + state.num_steps * dt)
        rec = record(prob, state, metric_fns, save_params)
        # the value reached by the last step is checked too (a blow-up on the final step counts)
        state = note_rise(state, rec["value"], f0, momentum)
        return state._replace(result=check(state, rec["value"], f0)), rec

    return jax.lax.scan(advance, state, save_steps)


# XLA's copy insertion with region analysis proves that the loop may update H in place; without
# it XLA:CPU copies every loop-carried array once per step (a full extra pass over H). A per-jit
# compiler option, used on CPU only: no global JAX or XLA setting changes.
LOOP_COMPILER_OPTIONS = {"xla_cpu_copy_insertion_use_region_analysis": True}
fixed_loop = register_compiled(jax.jit(
    fixed_loop_impl, static_argnames=("metric_fns", "save_params"), compiler_options=LOOP_COMPILER_OPTIONS
))
fixed_loop_other_backends = register_compiled(
    jax.jit(fixed_loop_impl, static_argnames=("metric_fns", "save_params")))


# Bogacki-Shampine 3(2): c = (0, 1/2, 3/4, 1); b = (2/9, 1/3, 4/9, 0); b - b* below.
_BS3_ERR = (-5.0 / 72.0, 1.0 / 12.0, 1.0 / 9.0, -1.0 / 8.0)


def _rk_step(prob, state, h, rtol, atol):
    """One Bogacki-Shampine 3(2) attempt on dx/dt = rhs(x), with projection after each stage."""
    x, k1 = state.params, state.velocity
    k2 = flow_rhs(prob, prob.project(tr.tree_axpy(0.5 * h, k1, x)))[1]
    k3 = flow_rhs(prob, prob.project(tr.tree_axpy(0.75 * h, k2, x)))[1]
    incr = jax.tree_util.tree_map(lambda a, b, c: h * (2 * a + 3 * b + 4 * c) / 9.0, k1, k2, k3)
    x_new = prob.project(tr.tree_axpy(1.0, incr, x))
    value_new, k4 = flow_rhs(prob, x_new)
    e1, e2, e3, e4 = _BS3_ERR
    err = jax.tree_util.tree_map(lambda a, b, c, d: h * (e1 * a + e2 * b + e3 * c + e4 * d), k1, k2, k3, k4)
    scale = jax.tree_util.tree_map(lambda u, w: atol + rtol * jnp.maximum(jnp.abs(u), jnp.abs(w)), x, x_new)
    ratio = jax.tree_util.tree_map(lambda e, s: e / s, err, scale)
    err_rms = tr.tree_norm(ratio) / jnp.sqrt(float(tr.tree_size(x)))
    return x_new, value_new, k4, err_rms


def _adaptive_advance(prob, state, t_save, rtol, atol, h_min, max_steps, f0):
    def cond(s):
        return (s.t < t_save) & (s.result == RESULTS.successful) & (s.num_steps + s.num_rejected < max_steps)

    def body(s):
        clipped = s.h >= t_save - s.t
        h = jnp.where(clipped, t_save - s.t, s.h)
        x_new, value_new, k_new, err = _rk_step(prob, s, h, rtol, atol)
        finite = jnp.isfinite(value_new) & jnp.isfinite(err)
        accept = finite & (err <= 1.0)
        grow = jnp.clip(0.9 * jnp.where(err > 0, err, 1e-10) ** (-1.0 / 3.0), 0.2, 5.0)
        factor = jnp.where(finite, grow, 0.2)
        h_next = jnp.where(accept & clipped, jnp.maximum(s.h, h * factor), h * factor)
        big = jnp.abs(value_new) > DIVERGENCE_FACTOR * (1.0 + jnp.abs(f0))
        result = jnp.where(accept & big, RESULTS.diverged, s.result)
        result = jnp.where(h_next < h_min, RESULTS.step_size_too_small, result).astype(jnp.int32)
        return s._replace(
            t=jnp.where(accept, jnp.where(clipped, t_save, s.t + h), s.t),
            params=tr.tree_where(accept, x_new, s.params),
            velocity=tr.tree_where(accept, k_new, s.velocity),
            value=jnp.where(accept, value_new, s.value),
            h=h_next,
            num_steps=s.num_steps + accept.astype(jnp.int32),
            num_rejected=s.num_rejected + (~accept).astype(jnp.int32),
            result=result,
        )

    return jax.lax.while_loop(cond, body, state)


def adaptive_loop_impl(prob, params0, t0, t1, ts, rtol, atol, max_steps, metric_fns, save_params):
    """``lax.scan`` over the recording times ``ts``, adaptive steps landing on each."""
    f0, k0 = flow_rhs(prob, params0)
    g0 = tr.tree_norm(k0)
    x0n = tr.tree_norm(params0)
    h0 = jnp.minimum(t1 - t0, 0.01 * (1.0 + x0n) / jnp.maximum(g0, 1e-12))
    h0 = jnp.where(t1 > t0, h0, 1.0)
    h_min = 1e-14 * jnp.maximum(t1 - t0, 1.0)
    state = _start_state(t0, params0, k0, f0, h0,
                         jnp.where(jnp.isfinite(f0), RESULTS.successful, RESULTS.nonfinite))

    def advance(state, t_save):
        state = _adaptive_advance(prob, state, t_save, rtol, atol, h_min, max_steps, f0)
        return state, record(prob, state, metric_fns, save_params)

    return jax.lax.scan(advance, state, ts)


adaptive_loop = register_compiled(jax.jit(
    adaptive_loop_impl, static_argnames=("metric_fns", "save_params", "max_steps")))

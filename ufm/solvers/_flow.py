r"""Gradient flow of a Problem, integrated inside one compiled loop."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ufm._internal import tree as tr
from ufm._internal.precision import require_x64
from ufm._internal.runtime import release_compiled_near_map_limit, register_compiled
from ufm._internal.validation import check_finite, check_finite_positive, check_range
from ufm.problems import UFM, Params, Problem, affine_logits, weight_decay
from ufm.solvers._common import cast_tree, check_params, flow_rhs, resolve_metrics
from ufm.solvers._results import RESULTS, SolveError

__all__ = ["SaveAt", "Trajectory", "gradient_flow"]

_DIVERGENCE_FACTOR = 1e12


@dataclass(frozen=True)
class SaveAt:
    """Which times of a flow to record (the objective and metrics are recorded at each).

    Args:
        ts: increasing times in ``[t0, t1]``.
        t0: also record the start.
        t1: also record the end.
        params: keep the parameters at every recorded time (``traj.params``, stacked along a
            leading axis); otherwise only ``traj.final`` holds parameters.

    ``SaveAt()`` records nothing and raises; ``gradient_flow(saveat=None)`` records 101 evenly
    spaced times from ``t0`` to ``t1``.
    """

    ts: Sequence[float] | None = None
    t0: bool = False
    t1: bool = False
    params: bool = True

    def __post_init__(self):
        if self.ts is None and not self.t0 and not self.t1:
            raise ValueError("SaveAt: nothing would be saved; pass ts=..., t0=True or t1=True")

    def times(self, t0: float, t1: float) -> np.ndarray:
        """The sorted recording times, validated against ``[t0, t1]``."""
        parts = []
        if self.t0:
            parts.append([t0])
        if self.ts is not None:
            ts = np.asarray(self.ts, dtype=float).reshape(-1)
            if ts.size == 0:
                raise ValueError("SaveAt: ts is empty; nothing would be saved")
            if np.any(~np.isfinite(ts)) or np.any(np.diff(ts) < 0):
                raise ValueError(f"SaveAt: ts must be finite and non-decreasing, got {ts}")
            if ts[0] < t0 or ts[-1] > t1:
                raise ValueError(f"SaveAt: ts must lie in [t0, t1] = [{t0}, {t1}], got [{ts[0]}, {ts[-1]}]")
            parts.append(ts)
        if self.t1:
            parts.append([t1])
        return np.sort(np.concatenate([np.asarray(p, dtype=float) for p in parts]))


class Trajectory(NamedTuple):
    """A recorded gradient flow.

    Attributes:
        times: ``(S,)`` recording times (with fixed ``dt``, the grid times ``t0 + m dt``).
        values: ``(S,)`` objective at those times.
        params: parameters at those times, stacked along a leading axis of length ``S``; ``None``
            when ``SaveAt(params=False)``.
        metrics: name -> ``(S, ...)`` array of each requested metric.
        final: parameters at the end of the flow.
        result: a :class:`ufm.RESULTS` member.
        stats: ``num_steps``, ``num_rejected`` (adaptive only), ``max_steps``, ``dt``.
    """

    times: np.ndarray
    values: np.ndarray
    params: Any
    metrics: dict
    final: Any
    result: RESULTS
    stats: dict


class _FlowState(NamedTuple):
    t: jax.Array  # shape=(), float64: current time
    params: Any  # pytree of the problem's parameters
    velocity: Any  # pytree like params: heavy-ball buffer (fixed step) or FSAL slope (adaptive)
    value: jax.Array  # shape=(), objective at params
    h: jax.Array  # shape=(), float64: step size to try next (adaptive)
    num_steps: jax.Array  # shape=(), int32: accepted steps
    num_rejected: jax.Array  # shape=(), int32: rejected steps (adaptive)
    result: jax.Array  # shape=(), int32: a RESULTS code


def _record(prob, state, metric_fns, save_params):
    rec = {"t": state.t, "value": prob.objective(state.params)}
    rec["metrics"] = {name: fn(prob, state.params) for name, fn in metric_fns}
    if save_params:
        rec["params"] = state.params
    return rec


def _check(state, value, f0):
    """Update the result code after a step: NaN/inf, or growth beyond all bounds."""
    bad = ~jnp.isfinite(value)
    big = jnp.abs(value) > _DIVERGENCE_FACTOR * (1.0 + jnp.abs(f0))
    code = jnp.where(bad, RESULTS.nonfinite, jnp.where(big, RESULTS.diverged, state.result))
    return code.astype(jnp.int32)


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


def _value_and_grad(prob, params):
    """``(f, grad f)``: written out for the UFM (:func:`_ufm_value_and_grad`), autodiff otherwise."""
    if type(prob) is UFM:
        return _ufm_value_and_grad(prob, params)
    return jax.value_and_grad(prob.objective)(params)


def _fixed_step(prob, state, dt, momentum, f0):
    """One explicit (projected) Euler step, or heavy ball: v <- mu v + g, x <- P(x - dt v).

    The objective at the current point is checked (non-finite or diverged) before stepping; a
    failed check keeps the point and stops the loop.
    """
    value, g = _value_and_grad(prob, state.params)
    v = tr.tree_axpy(momentum, state.velocity, g)
    x = prob.project(tr.tree_axpy(-dt, v, state.params))
    result = _check(state, value, f0)
    ok = result == RESULTS.successful
    return state._replace(
        params=tr.tree_where(ok, x, state.params),
        velocity=v,
        value=value,
        num_steps=state.num_steps + ok.astype(jnp.int32),
        result=result,
    )


def _fixed_loop_impl(prob, params0, t0, dt, momentum, save_steps, metric_fns, save_params):
    f0 = prob.objective(params0)
    state = _FlowState(
        t=jnp.asarray(t0, float), params=params0, velocity=tr.tree_zeros_like(params0),
        value=f0, h=jnp.asarray(dt, float), num_steps=jnp.int32(0),
        num_rejected=jnp.int32(0), result=jnp.int32(RESULTS.successful),
    )

    def advance(state, m):
        def cond(s):
            return (s.num_steps < m) & (s.result == RESULTS.successful)

        state = jax.lax.while_loop(cond, lambda s: _fixed_step(prob, s, dt, momentum, f0), state)
        state = state._replace(t=t0 + state.num_steps * dt)
        rec = _record(prob, state, metric_fns, save_params)
        # the value reached by the last step is checked too (a blow-up on the final step counts)
        return state._replace(result=_check(state, rec["value"], f0)), rec

    return jax.lax.scan(advance, state, save_steps)


# XLA's copy insertion with region analysis proves that the loop may update H in place; without
# it XLA:CPU copies every loop-carried array once per step (a full extra pass over H). A per-jit
# compiler option, used on CPU only: no global JAX or XLA setting changes.
_LOOP_COMPILER_OPTIONS = {"xla_cpu_copy_insertion_use_region_analysis": True}
_fixed_loop = register_compiled(jax.jit(
    _fixed_loop_impl, static_argnames=("metric_fns", "save_params"), compiler_options=_LOOP_COMPILER_OPTIONS
))
_fixed_loop_other_backends = register_compiled(
    jax.jit(_fixed_loop_impl, static_argnames=("metric_fns", "save_params")))


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
        big = jnp.abs(value_new) > _DIVERGENCE_FACTOR * (1.0 + jnp.abs(f0))
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


@register_compiled
@functools.partial(jax.jit, static_argnames=("metric_fns", "save_params", "max_steps"))
def _adaptive_loop(prob, params0, t0, t1, ts, rtol, atol, max_steps, metric_fns, save_params):
    f0, k0 = flow_rhs(prob, params0)
    g0 = tr.tree_norm(k0)
    x0n = tr.tree_norm(params0)
    h0 = jnp.minimum(t1 - t0, 0.01 * (1.0 + x0n) / jnp.maximum(g0, 1e-12))
    h0 = jnp.where(t1 > t0, h0, 1.0)
    h_min = 1e-14 * jnp.maximum(t1 - t0, 1.0)
    state = _FlowState(
        t=jnp.asarray(t0, float), params=params0, velocity=k0, value=f0, h=h0,
        num_steps=jnp.int32(0), num_rejected=jnp.int32(0),
        result=jnp.where(jnp.isfinite(f0), RESULTS.successful, RESULTS.nonfinite).astype(jnp.int32),
    )

    def advance(state, t_save):
        state = _adaptive_advance(prob, state, t_save, rtol, atol, h_min, max_steps, f0)
        return state, _record(prob, state, metric_fns, save_params)

    return jax.lax.scan(advance, state, ts)


class _FlowArgs(NamedTuple):
    """The validated options of one :func:`gradient_flow` call (host values)."""

    t0: float
    t1: float
    dt: float | None
    momentum: float
    rtol: float
    atol: float
    ts: np.ndarray  # shape=(S,), float64: the recording times
    save_params: bool
    metric_fns: tuple
    dtype: np.dtype


def _flow_args(t0, t1, dt, momentum, saveat, metrics, rtol, atol, dtype) -> _FlowArgs:
    """Check every option before anything is compiled; raise ``ValueError`` naming the argument."""
    t0 = check_finite("t0", t0)
    t1 = check_finite("t1", t1)
    t1 = check_finite_positive("t1 - t0", t1 - t0) + t0
    if dt is not None:
        dt = check_finite_positive("dt", dt)
    check_range("momentum", momentum, 0.0, 1.0)
    if momentum > 0 and dt is None:
        raise ValueError("momentum > 0 needs a fixed step: pass dt (the learning rate)")
    rtol = check_finite_positive("rtol", rtol)
    atol = check_finite_positive("atol", atol)
    saveat = SaveAt(ts=np.linspace(t0, t1, 101)) if saveat is None else saveat
    if not isinstance(saveat, SaveAt):
        raise ValueError(f"saveat must be a ufm.SaveAt, got {saveat!r}")
    ts = saveat.times(t0, t1)
    metric_fns = resolve_metrics(metrics)
    dtype = jnp.dtype(jnp.float64 if dtype is None else dtype)
    if dtype == jnp.float64:
        require_x64("gradient_flow (dtype=float64, the default; pass dtype='float32' for a float32 flow)")
    return _FlowArgs(t0, t1, dt, momentum, rtol, atol, ts, saveat.params, metric_fns, dtype)


def _integrate(prob, params0, args: _FlowArgs, max_steps: int | None):
    """Run the compiled loop (fixed or adaptive) once: ``(final state, records, step cap)``."""
    if args.dt is not None:
        save_steps = np.ceil((args.ts - args.t0) / args.dt - 1e-9).astype(np.int32)
        loop = _fixed_loop if jax.default_backend() == "cpu" else _fixed_loop_other_backends
        compiled = loop._cache_size()
        state, rec = loop(prob, params0, args.t0, args.dt, args.momentum, jnp.asarray(save_steps),
                          args.metric_fns, args.save_params)
        max_steps_used = int(save_steps[-1])
    else:
        loop = _adaptive_loop
        compiled = loop._cache_size()
        max_steps_used = 100_000 if max_steps is None else int(max_steps)
        state, rec = loop(prob, params0, args.t0, args.t1, jnp.asarray(args.ts), args.rtol, args.atol,
                          max_steps_used, args.metric_fns, args.save_params)
    if loop._cache_size() > compiled:  # a new shape: mind the memory-map limit
        release_compiled_near_map_limit()
    return state, rec, max_steps_used


def _trajectory(state, rec, args: _FlowArgs, max_steps_used: int, throw: bool) -> Trajectory:
    """The host shell after the loop: the final ``RESULTS`` member, the stats, the error if asked."""
    dt, ts = args.dt, args.ts
    result = RESULTS(int(state.result))
    values = np.asarray(rec["value"])
    if result == RESULTS.successful and not np.all(np.isfinite(values)):
        result = RESULTS.nonfinite
    if result == RESULTS.successful and float(state.t) < ts[-1] - 1e-12 * max(1.0, abs(ts[-1])):
        result = RESULTS.max_steps_reached
    stats = dict(num_steps=int(state.num_steps), num_rejected=int(state.num_rejected),
                 max_steps=max_steps_used, dt=dt)
    if throw and result != RESULTS.successful:
        how = (f"dt={dt}" if dt is not None else
               f"adaptive steps (rtol={args.rtol}, atol={args.atol}, last h={float(state.h):.3g})")
        fix = "use a smaller dt or dt=None" if dt is not None else "loosen rtol/atol or raise max_steps"
        raise SolveError(
            f"gradient_flow: {result.message} at t={float(state.t):.6g} after {stats['num_steps']} "
            f"steps with {how}; {fix}"
        )
    return Trajectory(
        times=np.asarray(rec["t"]), values=values, params=rec.get("params"),
        metrics={k: np.asarray(v) for k, v in rec["metrics"].items()}, final=state.params,
        result=result, stats=stats,
    )


def gradient_flow(
    prob: Problem,
    *,
    t1: float,
    t0: float = 0.0,
    dt: float | None = None,
    momentum: float = 0.0,
    saveat: SaveAt | None = None,
    metrics: Sequence[str] | Mapping[str, Callable] = (),
    seed: int = 0,
    params0: Any = None,
    init_scale: float | None = None,
    rtol: float = 1e-6,
    atol: float = 1e-9,
    max_steps: int | None = None,
    dtype: Any = None,
    throw: bool = True,
) -> Trajectory:
    r"""Integrate the gradient flow of a Problem and record it at chosen times.

    .. math:: \frac{d\theta}{dt} = -\nabla f(\theta)

    projected onto the feasible set (``H >= 0`` for ``nonneg`` problems: components at the bound
    whose velocity points outward are held at zero, and every stage is clipped onto the box).

    Two integrators, both inside one ``jax.jit`` (``lax.scan`` over recording times, a
    ``lax.while_loop`` of steps between them), recording without leaving the compiled loop:

    - ``dt`` given: fixed explicit (projected) Euler steps, ``theta <- P(theta - dt grad f)``, which
      is full-batch gradient descent with learning rate ``dt``; ``ceil((t1 - t0)/dt)`` steps, and
      a time ``ts_i`` is recorded at the first grid time ``t0 + m dt >= ts_i``. With
      ``momentum = mu > 0`` the step is heavy ball in PyTorch's SGD form,
      ``v <- mu v + grad f``, ``theta <- P(theta - dt v)`` (the loop papers use); its "time" is
      ``steps * dt`` and it is not a discretization of the gradient flow.
    - ``dt=None``: adaptive, error-controlled Bogacki-Shampine 3(2) steps (FSAL), accepted when
      the RMS of ``err / (atol + rtol |theta|)`` is ``<= 1``, landing exactly on each ``ts_i``.

    Main arguments:
        prob: a Problem (for example :class:`ufm.UFM`).
        t1: final time (``> t0``).
        dt: fixed step, or ``None`` for adaptive steps.
        saveat: a :class:`SaveAt`; default 101 evenly spaced times from ``t0`` to ``t1``.
        metrics: names of built-in metrics (``"nc1"``, ``"nc2_W"``, ``"nc2_H"``, ``"nc3"``,
            ``"grad_norm"``) or a mapping ``name -> fn(prob, params) -> array`` (traceable).

    Other arguments:
        t0: start time.
        seed: the random start ``prob.init(PRNGKey(seed), init_scale)`` when ``params0`` is not
            given.
        init_scale: the entry scale of that random start (default ``1/sqrt(d)``).
        momentum: heavy-ball coefficient in ``[0, 1)`` (fixed ``dt`` only).
        rtol: relative error tolerance of the adaptive steps.
        atol: absolute error tolerance of the adaptive steps.
        max_steps: cap on adaptive attempts (default 100,000).
        dtype: cast the problem and the start to this floating dtype (default float64).
        throw: raise :class:`ufm.SolveError` on failure; ``False`` returns the trajectory with
            ``result`` set.

    Returns:
        A :class:`Trajectory`.

    Raises:
        ValueError: bad arguments (before compiling).
        SolveError: non-finite values, divergence, a vanishing adaptive step, or ``max_steps``.

    References:
        The dynamics of Mixon, Parshall & Pi 2020 (arXiv 2011.11619) and Han, Papyan & Donoho,
        ICLR 2022 (central path); the Bogacki-Shampine pair (Appl. Math. Lett. 1989).
    """
    args = _flow_args(t0, t1, dt, momentum, saveat, metrics, rtol, atol, dtype)
    if params0 is None:
        params0 = prob.init(jax.random.PRNGKey(seed), init_scale)
    else:
        params0 = check_params(prob, params0)
    prob, params0 = cast_tree(prob, args.dtype), cast_tree(prob.project(params0), args.dtype)
    state, rec, max_steps_used = _integrate(prob, params0, args, max_steps)
    return _trajectory(state, rec, args, max_steps_used, throw)

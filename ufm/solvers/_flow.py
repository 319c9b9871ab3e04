r"""Gradient flow of a Problem, integrated inside one compiled loop.

Stability of the fixed steps (``RESULTS.unstable_step``; the rules are
:mod:`ufm.solvers._flow_loops`'s): plain Euler never increases ``f`` when ``dt < 2/L`` (the
descent lemma), so a step with ``f_{k+1} - f_k > 1024 eps (|f_k| + |f_{k+1}| + |f_0|)`` is
reported; heavy ball may raise ``f`` for a while and still converge (its energy
``f + (mu dt/2)|v|^2`` is monotone only below ``dt = 2(1 - mu)/L``, its quadratic limit is
``2(1 + mu)/L``), so it is judged by a bound on the growth, ``f_k - f_0 > 1e3 (1 + |f_0|)``.

Tracing: with ``throw=False`` :func:`gradient_flow` has no host step, so ``jax.jit``,
``jax.vmap`` and ``jax.lax.map`` go through it (``t0``, ``t1``, ``dt``, ``saveat`` and the
options stay concrete), and a new value of a traced argument reuses the compiled program.

diffrax: ``diffrax.diffeqsolve`` (Dormand-Prince or Kvaerno with a PID controller, dense output)
would integrate the adaptive case better when the flow is stiff (small ``lam`` next to large
logits: an implicit Kvaerno solver) or when a dense interpolant is wanted. The own
Bogacki-Shampine stepper stays because it projects onto ``H >= 0`` after every stage and needs no
extra dependency; the fixed-step loops are the ones papers run (gradient descent, heavy ball).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ufm._internal.precision import require_x64
from ufm._internal.runtime import release_compiled_near_map_limit
from ufm._internal.validation import check_finite, check_finite_positive, check_range
from ufm.problems import Problem
from ufm.solvers._common import cast_tree, check_params, resolve_metrics
from ufm.solvers._flow_loops import adaptive_loop, fixed_loop, fixed_loop_other_backends
from ufm.solvers._results import RESULTS, SolveError

__all__ = ["SaveAt", "Trajectory", "gradient_flow"]


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
        result: a :class:`ufm.RESULTS` member (an int32 code when the flow ran inside
            ``jax.jit``/``jax.vmap``/``jax.lax.map``, where every field is a JAX array).
        stats: ``num_steps``, ``num_rejected`` (adaptive only), ``max_steps``, ``dt``, and for
            the stability rule of fixed steps ``rise_step`` (the first step that broke it, ``-1``
            if none), ``rise_from`` and ``rise_to`` (the objective it was compared with and the
            objective reached).
    """

    times: Any
    values: Any
    params: Any
    metrics: dict
    final: Any
    result: Any
    stats: dict


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


def _integrate(prob, params0, args: _FlowArgs, max_steps: int | None, traced: bool = False):
    """Run the compiled loop (fixed or adaptive) once: ``(final state, records, step cap)``.

    Pure JAX: inside an outer ``jit``/``vmap`` the loop is traced into the caller's program (a
    nested jit takes no compiler options: the caller's own jit may pass them)."""
    if args.dt is not None:
        save_steps = np.ceil((args.ts - args.t0) / args.dt - 1e-9).astype(np.int32)
        cpu_top = jax.default_backend() == "cpu" and not traced
        loop = fixed_loop if cpu_top else fixed_loop_other_backends
        compiled = loop._cache_size()
        state, rec = loop(prob, params0, args.t0, args.dt, args.momentum, jnp.asarray(save_steps),
                          args.metric_fns, args.save_params)
        max_steps_used = int(save_steps[-1])
    else:
        loop = adaptive_loop
        compiled = loop._cache_size()
        max_steps_used = 100_000 if max_steps is None else int(max_steps)
        state, rec = loop(prob, params0, args.t0, args.t1, jnp.asarray(args.ts), args.rtol, args.atol,
                          max_steps_used, args.metric_fns, args.save_params)
    if loop._cache_size() > compiled:  # a new shape: mind the memory-map limit
        release_compiled_near_map_limit()
    return state, rec, max_steps_used


def _outcome(state, rec, args: _FlowArgs, max_steps_used: int) -> jax.Array:
    """The final RESULTS code as an int32 array (traceable), in order of precedence: a failure that
    stopped the loop (non-finite, diverged, vanishing step), a non-finite record, a broken
    stability rule (``unstable_step``), an unfinished run (``max_steps_reached``)."""
    code = state.result
    ok = lambda c: c == RESULTS.successful  # noqa: E731
    code = jnp.where(ok(code) & ~jnp.all(jnp.isfinite(rec["value"])), RESULTS.nonfinite, code)
    code = jnp.where(ok(code) & (state.rise_step >= 0), RESULTS.unstable_step, code)
    if args.dt is not None:
        short = state.num_steps < max_steps_used
    else:
        end = float(args.ts[-1])
        short = state.t < end - 1e-12 * max(1.0, abs(end))
    return jnp.where(ok(code) & short, RESULTS.max_steps_reached, code).astype(jnp.int32)


def _failure_line(result: RESULTS, state, args: _FlowArgs, num_steps: int) -> str:
    """The SolveError message: what happened, where, what was tried, what to change."""
    dt = args.dt
    how = (f"dt={dt:g}" + (f", momentum={args.momentum:g}" if args.momentum else "") if dt is not None else
           f"adaptive steps (rtol={args.rtol}, atol={args.atol}, last h={float(state.h):.3g})")
    fix = "use a smaller dt or dt=None" if dt is not None else "loosen rtol/atol or raise max_steps"
    if result == RESULTS.unstable_step:
        k, f_a, f_b = int(state.rise_step), float(state.rise_from), float(state.rise_to)
        rule = ("the objective grew past 1e3 (1 + |f(0)|)" if args.momentum else
                "the step increased the objective, which a gradient flow never does")
        return (f"gradient_flow: unstable step with {how}: at step {k} (t={args.t0 + k * dt:.6g}) the objective "
                f"went from {f_a:.6g} to {f_b:.6g} (growth {f_b - f_a:.3g}); {rule}: dt is above the "
                f"stability limit (2/L for gradient descent, L the largest Hessian eigenvalue); {fix}")
    return (f"gradient_flow: {result.message} at t={float(state.t):.6g} after {num_steps} steps with {how}; {fix}")


def _trajectory(state, rec, args: _FlowArgs, max_steps_used: int, throw: bool, traced: bool) -> Trajectory:
    """The outcome as a Trajectory: JAX arrays when traced; else host values, raising if asked."""
    code = _outcome(state, rec, args, max_steps_used)
    stats = dict(num_steps=state.num_steps, num_rejected=state.num_rejected, max_steps=max_steps_used,
                 dt=args.dt, rise_step=state.rise_step, rise_from=state.rise_from, rise_to=state.rise_to)
    if traced:
        return Trajectory(times=rec["t"], values=rec["value"], params=rec.get("params"),
                          metrics=dict(rec["metrics"]), final=state.params, result=code, stats=stats)
    result = RESULTS(int(code))
    stats.update(num_steps=int(state.num_steps), num_rejected=int(state.num_rejected),
                 rise_step=int(state.rise_step), rise_from=float(state.rise_from), rise_to=float(state.rise_to))
    if throw and result != RESULTS.successful:
        raise SolveError(_failure_line(result, state, args, stats["num_steps"]))
    return Trajectory(
        times=np.asarray(rec["t"]), values=np.asarray(rec["value"]), params=rec.get("params"),
        metrics={k: np.asarray(v) for k, v in rec["metrics"].items()}, final=state.params,
        result=result, stats=stats,
    )


def _is_traced(inputs, throw: bool) -> bool:
    """Whether any leaf of ``inputs`` is a tracer; ``throw=True`` there is a ValueError."""
    traced = any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(inputs))
    if traced and throw:
        raise ValueError("throw=True needs concrete values; inside jax.jit, jax.vmap or jax.lax.map pass "
                         "throw=False (the result is then an int32 RESULTS code)")
    return traced


def _start(prob, params0, seed, init_scale, dtype):
    """The problem and the (projected) start, cast to ``dtype``."""
    if params0 is None:
        params0 = prob.init(jax.random.PRNGKey(seed), init_scale)
    else:
        params0 = check_params(prob, params0)
    return cast_tree(prob, dtype), cast_tree(prob.project(params0), dtype)


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

    A fixed step above its stability limit ends ``RESULTS.unstable_step``: Euler when a step
    raises ``f`` beyond rounding, heavy ball when ``f_k - f_0 > 1e3 (1 + |f_0|)`` (module
    docstring). With ``throw=False`` the call is pure JAX (``jit``/``vmap``/``lax.map`` over the
    problem, ``seed``, ``init_scale``, ``params0``; ``result`` then an int32 code).

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
            ``result`` set (and is required when the call is traced).

    Returns:
        A :class:`Trajectory`.

    Raises:
        ValueError: bad arguments (before compiling), or ``throw=True`` in a traced call.
        SolveError: non-finite values, divergence, an unstable fixed step, a vanishing adaptive
            step, or ``max_steps``.

    References:
        The dynamics of Mixon, Parshall & Pi 2020 (arXiv 2011.11619) and Han, Papyan & Donoho,
        ICLR 2022 (central path); the Bogacki-Shampine pair (Appl. Math. Lett. 1989).
    """
    args = _flow_args(t0, t1, dt, momentum, saveat, metrics, rtol, atol, dtype)
    traced = _is_traced((prob, params0, seed, init_scale), throw)
    prob, params0 = _start(prob, params0, seed, init_scale, args.dtype)
    state, rec, max_steps_used = _integrate(prob, params0, args, max_steps, traced)
    return _trajectory(state, rec, args, max_steps_used, throw, traced)

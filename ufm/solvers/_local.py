"""The local solve around the compiled core: starting points, one :func:`~ufm.solvers._core.solve`
per start, an optional host polish of each run, the pick of the best start, the Solution.

On the host the starts run as a loop of the compiled solve (XLA:CPU runs batched small matmuls
slowly), each run may be polished (the ReLU activation pieces, passed in as ``polish``), and the
Solution holds Python numbers; a failed solve raises :class:`SolveError` with ``throw=True``.
Inside a trace (``jax.jit``/``jax.vmap`` around a ``throw=False`` call) several starts are one
``vmap`` and the Solution holds arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ufm._internal.runtime import release_compiled_near_map_limit
from ufm._internal.validation import check_finite_positive, check_int
from ufm.problems import Problem
from ufm.solvers._certify import hessian_extreme_eigs
from ufm.solvers._common import check_params, random_start
from ufm.solvers._core import Run, SolveOptions, is_traced, select, solve
from ufm.solvers._results import RESULTS, Certificate, Solution, SolveError

__all__ = ["check_starts", "starting_points", "minimize_local", "NONSMOOTH_OUTCOMES"]

_STARTS_HINT = " (the number of random starting points; restarts= is its former name)"
# On a piecewise-smooth model (a ReLU DeepUFM, polished on the host) these outcomes say what was
# reached, with the polish report in stats["piece"]: slow convergence on a nonsmooth problem is
# data, not an error, so throw=True does not raise for them there.
NONSMOOTH_OUTCOMES = (RESULTS.max_steps_reached, RESULTS.saddle, RESULTS.linesearch_failed)


def check_starts(*, seed: Any, starts: int, init_scale: Any) -> tuple:
    """``(seed, starts, init_scale)`` checked (tracers pass), or a ValueError naming the argument."""
    starts = check_int("starts", starts, 1, _STARTS_HINT)
    if not isinstance(seed, jax.core.Tracer):
        seed = check_int("seed", seed, 0)
    if init_scale is not None and not isinstance(init_scale, jax.core.Tracer):
        init_scale = check_finite_positive("init_scale", init_scale)
    return seed, starts, init_scale


def starting_points(prob: Problem, *, seed: Any, starts: int, init_scale: Any, params0: Any) -> list:
    """``params0`` (checked against ``prob.init``'s shapes), or ``starts`` random starts from seeds
    ``seed, seed+1, ...`` (:func:`ufm.solvers._common.random_start`)."""
    if params0 is not None and starts != 1:
        raise ValueError(f"starts must be 1 when params0 is given, got starts={starts}")
    if params0 is None:
        return [random_start(prob, seed + r, init_scale) for r in range(starts)]
    return [check_params(prob, params0)]


def _stack(runs):
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *runs)


def _traced_solution(prob, x0s: list, key, opts: SolveOptions, seed) -> Solution:
    """Inside a trace: one solve, or a ``vmap`` over the starts; a Solution of arrays."""
    if len(x0s) > 1:
        runs = jax.vmap(lambda x0: solve(prob, x0, key, opts))(_stack(x0s))
        best = select(runs.value, runs.result)
        run = jax.tree_util.tree_map(lambda u: u[best], runs)
    else:
        run, best = solve(prob, x0s[0], key, opts), 0
    cnt = run.counts
    stats = dict(cnt, num_steps=cnt["first_order_steps"] + cnt["newton_steps"], seed=jnp.asarray(seed) + best,
                 max_steps=opts.max_steps)
    if len(x0s) > 1:
        stats.update(start_values=runs.value, start_results=runs.result)
        stats.update(restart_values=runs.value, restart_results=runs.result)  # former names, one release
    return Solution(params=run.params, value=run.value, result=run.result, certificate=run.certificate,
                    stats=stats)


def _host_runs(prob, x0s: list, key, opts: SolveOptions, polish: Callable | None) -> tuple:
    """The compiled solve from each start, then ``polish``; ``(runs, infos)`` (``infos[i]``: the
    polish report of run ``i``, or None)."""
    compiled = solve._cache_size()
    runs = [solve(prob, x0, key, opts) for x0 in x0s]
    if solve._cache_size() > compiled:  # a new shape: mind the memory-map limit
        release_compiled_near_map_limit()
    if polish is None:
        return runs, [None] * len(runs)
    polished = [polish(prob, run, key, opts, x0) for run, x0 in zip(runs, x0s)]
    return [r for r, _ in polished], [info for _, info in polished]


def _host_stats(run: Run, opts: SolveOptions, seed: int, info, runs: Run | None) -> dict:
    k1, k2 = int(run.counts["first_order_steps"]), int(run.counts["newton_steps"])
    stats = dict(num_steps=k1 + k2, first_order_steps=k1, newton_steps=k2,
                 cg_steps=int(run.counts["cg_steps"]), escapes=int(run.counts["escapes"]),
                 max_steps=opts.max_steps, seed=seed)
    if info is not None:
        stats["piece"] = info
    if runs is not None:
        values, results = [float(v) for v in runs.value], [RESULTS(int(r)) for r in runs.result]
        stats.update(start_values=values, start_results=results)
        stats.update(restart_values=list(values), restart_results=list(results))  # former names, one release
    return stats


def _raise_unless_converged(result: RESULTS, cert: Certificate, value: float, stats: dict,
                            opts: SolveOptions) -> None:
    if result == RESULTS.successful:
        return
    curv = "" if np.isnan(cert.min_eig) else f", smallest free Hessian eigenvalue {cert.min_eig:.3g}"
    raise SolveError(
        f"minimize: {result.message}; from seed {stats['seed']} after {stats['first_order_steps']} "
        f"first-order and {stats['newton_steps']} Newton steps and {stats['escapes']} saddle escapes the "
        f"KKT residual is {cert.kkt:.3g} (gtol={opts.gtol}, objective {value:.6g}{curv}); try starts>1, "
        f"a larger max_steps, or a looser gtol"
    )


def minimize_local(prob: Problem, x0s: list, opts: SolveOptions, *, seed: Any, hessian: bool = False,
                   throw: bool = True, polish: Callable | None = None) -> Solution:
    """The local solve from the starting points ``x0s`` (module docstring).

    Args:
        prob: a Problem without inequality constraints (a box is fine).
        x0s: starting points (:func:`starting_points`).
        opts: the compiled solve's options, ``second`` and ``num_iters`` set for ``prob``
            (:func:`ufm.solvers._core.for_problem`).
        seed: the seed of the first start (reported in ``stats["seed"]``, plus the best index).
        hessian: also ``(lambda_min, lambda_max)`` of the Hessian at the point (host only).
        throw: raise :class:`SolveError` unless the best run is certified (host only); for a
            piecewise-smooth model (``polish`` returned a report) only for outcomes other than
            :data:`NONSMOOTH_OUTCOMES` (non-finite values, divergence).
        polish: ``polish(prob, run, key, opts, x0) -> (run, info)``, applied to each host run.

    Returns:
        A :class:`Solution`; Python numbers on the host, arrays inside a trace.
    """
    key = jax.random.PRNGKey(0)
    if is_traced((prob, x0s)):
        return _traced_solution(prob, x0s, key, opts, seed)
    runs, infos = _host_runs(prob, x0s, key, opts, polish)
    stacked = _stack(runs) if len(runs) > 1 else None  # one run: no stacking (each an eager op to compile)
    best = 0 if stacked is None else int(select(stacked.value, stacked.result))
    run = runs[best] if stacked is None else jax.tree_util.tree_map(lambda u: u[best], stacked)
    result = RESULTS(int(run.result))
    c = run.certificate
    cert = Certificate(kkt=float(c.kkt), min_eig=float(c.min_eig), order_code=int(c.order_code))
    stats = _host_stats(run, opts, seed + best, infos[best], stacked)
    if throw and not (infos[best] is not None and result in NONSMOOTH_OUTCOMES):
        _raise_unless_converged(result, cert, float(run.value), stats, opts)
    eigs = hessian_extreme_eigs(prob, run.params) if hessian else None
    return Solution(params=run.params, value=float(run.value), result=result, certificate=cert,
                    hessian_eigs=eigs, stats=stats)

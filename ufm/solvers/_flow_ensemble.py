r"""Many gradient flows of one problem family in one compiled call (over lams, seeds, scales)."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ufm._internal.runtime import register_compiled
from ufm._internal.validation import is_concrete
from ufm.problems import Problem
from ufm.solvers._flow import SaveAt, Trajectory, gradient_flow
from ufm.solvers._flow_loops import LOOP_COMPILER_OPTIONS

__all__ = ["flow_ensemble", "BATCH_MODES"]

BATCH_MODES = ("auto", "vmap", "map")


def _one(prob, member, options: tuple, metric_items: tuple):
    """One flow of the ensemble: ``member = (lams, seed, scale or None)``, traced."""
    lams, seed, scale = member
    p = dataclasses.replace(prob, **lams) if lams else prob
    metrics = dict(metric_items) if metric_items and not isinstance(metric_items[0], str) else metric_items
    return gradient_flow(p, seed=seed, init_scale=scale, metrics=metrics, throw=False, **dict(options))


def _run_impl(prob, lams, seeds, scales, options, metric_items, batch):
    one = functools.partial(_one, prob, options=options, metric_items=metric_items)
    if batch == "vmap":
        return jax.vmap(lambda l, s, c: one((l, s, c)), in_axes=(0, 0, None if scales is None else 0))(
            lams, seeds, scales)
    if scales is None:
        return jax.lax.map(lambda ls: one((ls[0], ls[1], None)), (lams, seeds))
    return jax.lax.map(one, (lams, seeds, scales))


_STATIC = ("options", "metric_items", "batch")
_run_cpu = register_compiled(jax.jit(_run_impl, static_argnames=_STATIC, compiler_options=LOOP_COMPILER_OPTIONS))
_run_other = register_compiled(jax.jit(_run_impl, static_argnames=_STATIC))


def _members(prob, lams, seeds, scales) -> tuple[dict, jax.Array, Any, int]:
    """The per-member arrays, broadcast to one length ``E``; a ValueError names a bad argument."""
    lams = dict(lams or {})
    fields = dataclasses.fields(prob) if dataclasses.is_dataclass(prob) else ()
    names = {f.name for f in fields if not f.metadata.get("static")}  # the traced fields
    arrays: dict[str, np.ndarray] = {}
    for key, value in lams.items():
        current = getattr(prob, key, None)
        if (key not in names or not is_concrete(current) or np.ndim(current) != 0
                or not np.issubdtype(np.asarray(current).dtype, np.floating)):
            raise ValueError(f"lams: {key!r} is not a scalar hyper-parameter of {type(prob).__name__} "
                             f"(pass fields such as lam_W, lam_H)")
        arr = np.asarray(value, dtype=float).reshape(-1)
        if not np.all(np.isfinite(arr)) or np.any(arr < 0):
            raise ValueError(f"lams[{key!r}] must be finite and >= 0, got {arr}")
        arrays[key] = arr
    seed_arr = np.asarray(seeds).reshape(-1)
    if not np.issubdtype(seed_arr.dtype, np.integer):
        raise ValueError(f"seeds must be integers, got {seeds!r}")
    scale_arr = None if scales is None else np.asarray(scales, dtype=float).reshape(-1)
    if scale_arr is not None and not np.all(np.isfinite(scale_arr) & (scale_arr > 0)):
        raise ValueError(f"scales must be finite and > 0, got {scale_arr}")
    sizes = {a.size for a in [*arrays.values(), seed_arr] + ([] if scale_arr is None else [scale_arr])}
    size = max(sizes)
    if sizes - {1, size}:
        raise ValueError(f"lams, seeds and scales must have one length E (or length 1), got lengths {sorted(sizes)}")
    grow = lambda a: np.broadcast_to(a, (size,))  # noqa: E731
    return ({k: jnp.asarray(grow(a)) for k, a in arrays.items()}, jnp.asarray(grow(seed_arr)),
            None if scale_arr is None else jnp.asarray(grow(scale_arr)), size)


def flow_ensemble(
    prob: Problem,
    *,
    t1: float,
    lams: Mapping[str, Sequence[float] | np.ndarray] | None = None,
    seeds: int | Sequence[int] | np.ndarray = 0,
    scales: float | Sequence[float] | np.ndarray | None = None,
    t0: float = 0.0,
    dt: float | None = None,
    momentum: float = 0.0,
    saveat: SaveAt | None = None,
    metrics: Sequence[str] | Mapping[str, Callable] = (),
    rtol: float = 1e-6,
    atol: float = 1e-9,
    max_steps: int | None = None,
    dtype: Any = None,
    batch: str = "auto",
) -> Trajectory:
    r"""``E`` gradient flows of one problem family in one compiled call.

    Member ``e`` is ``gradient_flow(replace(prob, **{k: lams[k][e]}), seed=seeds[e],
    init_scale=scales[e], throw=False, ...)``, the flow

    .. math:: \frac{d\theta}{dt} = -\nabla f_{\lambda_e}(\theta),\qquad
        \theta(t_0) = s_e\,\xi_e,\ \xi_e \sim \mathrm{init}(\mathrm{PRNGKey}(\mathrm{seed}_e))

    integrated exactly as :func:`ufm.gradient_flow` does (same steps, same stability rule, same
    RESULTS codes), so every member equals the sequential call to rounding. The sizes and the
    options are static; lams, seeds and scales are traced: new values of the same length reuse the
    compiled program.

    Main arguments:
        prob: the problem (its sizes, loss and the hyper-parameters not in ``lams``).
        t1: final time.
        lams: ``field -> (E,)`` values of scalar hyper-parameters (``lam_W``, ``lam_H``, ...).
        seeds: ``(E,)`` integer seeds of the random starts (or one seed for all).
        scales: ``(E,)`` entry scales of the starts (default: the problem's, ``1/sqrt(d)``).
        dt: fixed step (Euler, heavy ball with ``momentum``) or ``None`` for adaptive steps.
        batch: ``"vmap"`` (members advance together: batched products), ``"map"`` (``lax.map``:
            one after the other in one program) or ``"auto"``: ``"map"`` on CPU, where XLA runs
            batched products slowly (``benchmarks/bench_flow_ensemble.py``), else ``"vmap"``.

    Other arguments:
        t0: as in :func:`ufm.gradient_flow`.
        momentum: as in :func:`ufm.gradient_flow`.
        saveat: as in :func:`ufm.gradient_flow` (the same times for every member).
        metrics: as in :func:`ufm.gradient_flow`.
        rtol: as in :func:`ufm.gradient_flow`.
        atol: as in :func:`ufm.gradient_flow`.
        max_steps: as in :func:`ufm.gradient_flow`.
        dtype: as in :func:`ufm.gradient_flow`.

    Returns:
        A :class:`ufm.Trajectory` whose arrays carry a leading axis of length ``E`` (JAX arrays;
        ``result`` an ``(E,)`` int32 array of :class:`ufm.RESULTS` codes).

    Raises:
        ValueError: a field in ``lams`` that is not a scalar hyper-parameter, negative or
            non-finite values, lengths that differ, an unknown ``batch``, or any option
            :func:`ufm.gradient_flow` rejects (all before compiling).

    References:
        The fixed-step loops of Mixon, Parshall & Pi 2020 (arXiv 2011.11619) and Han, Papyan &
        Donoho, ICLR 2022, run over seeds and regularization strengths.
    """
    if batch not in BATCH_MODES:
        raise ValueError(f"batch must be one of {BATCH_MODES}, got {batch!r}")
    lam_arrays, seed_array, scale_array, _ = _members(prob, lams, seeds, scales)
    if saveat is not None and saveat.ts is not None:
        saveat = dataclasses.replace(saveat, ts=tuple(float(t) for t in np.asarray(saveat.ts).reshape(-1)))
    metric_items = tuple(metrics.items()) if isinstance(metrics, Mapping) else tuple(
        (metrics,) if isinstance(metrics, str) else metrics)
    options = (("t1", float(t1)), ("t0", float(t0)), ("dt", None if dt is None else float(dt)),
               ("momentum", float(momentum)), ("saveat", saveat), ("rtol", float(rtol)),
               ("atol", float(atol)), ("max_steps", max_steps), ("dtype", None if dtype is None else str(jnp.dtype(dtype))))
    on_cpu = jax.default_backend() == "cpu"
    batch = ("map" if on_cpu else "vmap") if batch == "auto" else batch
    run = _run_cpu if on_cpu else _run_other
    return run(prob, lam_arrays, seed_array, scale_array, options=options, metric_items=metric_items, batch=batch)

"""The compiled part of a sweep: one call solves a chunk of grid points.

A chunk is a run of consecutive grid points in the reflected order of
:func:`ufm.sweeps.snake_order` (each point a grid neighbour of the previous one). One ``jax.jit``
call scans over its points (:func:`solve_chunk`; :func:`solve_chunks_spmd`: one chunk per device).
Two certification paths (``SolveOptions.certify``):

``"local"`` (every family): at each point it solves (a compiled loop on CPU, where batched small
matmuls are slow; one ``vmap`` on GPU/TPU) ``starts`` random starts (``prob.init(PRNGKey(s))``, the
start ``ufm.minimize(prob, seed=s)`` uses) and ``starts`` warm starts (the previous point's
certified solution for the same seed) with the second-order certificate of ``ufm.minimize``. It
keeps the better certified run per seed and records both values, so a branch followed past a
transition shows up as a disagreement instead of a wrong phase.

``"global"`` (families with a proven lower bound, :func:`ufm.global_certificate`): per seed, a
first-order solve (``order="first"``) from the warm start, then the gap to the proven lower bound
(one small SVD). A closed gap (``gap <= gtol max(1, |f|)``) proves the point a global minimizer,
which is stronger than a second-order certificate, so the Hessian spectrum is not computed and the
random start is skipped (nothing can be lower than a proven global minimum: ``value_random`` is
NaN and ``random_skipped`` says why). Otherwise the random start is solved as well, and the
globally certified run is kept. A point where neither run closes the gap is flagged
(``global_ok`` false); :func:`solve_fallback` then solves it with the local (second-order) path,
outside the chunk's compiled call, so that call stays small (:func:`with_fallback`, on the host).

:func:`solve_points` and :func:`solve_groups` are the whole solve of one chunk (or one chunk per
device): the compiled call, then the fallback; they return NumPy records.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh
from jax.sharding import PartitionSpec

from ufm import metrics
from ufm._internal import tree as tr
from ufm._internal.runtime import register_compiled
from ufm._internal.validation import check_finite_positive
from ufm.problems import PaddedUFM, Problem
from ufm.solvers import RESULTS, global_certificate, global_gap_ok, global_unsupported_reason, minimize
from ufm.sweeps._grid import replace_path
from ufm.sweeps._sizes import padded_summary

__all__ = ["SolveOptions", "PointRecord", "solve_options", "solve_points", "solve_groups", "solve_chunk",
           "solve_chunks_spmd", "solve_fallback", "with_fallback", "POLISH"]

POLISH = 1e-2  # the global path's solves run Newton to gtol * POLISH (see _global_seed)


class SolveOptions(NamedTuple):
    """Static solver options of a sweep (they select the compiled code)."""

    gtol: float = 1e-10
    max_steps: int = 10_000
    max_newton: int = 100
    order: str = "auto"  # what ufm.minimize certifies: "auto", "first", "second"
    agree_rtol: float = 1e-7  # random and warm runs "agree" when values match to this
    batch: str = "map"  # starts of one point: "map" (a compiled loop, CPU) or "vmap" (GPU/TPU)
    certify: str = "local"  # "global": first order + proven global gap; "local": second order


class PointRecord(NamedTuple):
    """What the chunk kernel returns per point and seed (leading axes ``(L, S)``)."""

    value: jax.Array  # (L, S) float64, objective of the kept run
    kkt: jax.Array  # (L, S) float64, KKT residual of the kept run
    min_eig: jax.Array  # (L, S) float64, smallest Hessian eigenvalue, symmetries removed
    order: jax.Array  # (L, S) int32, certified order: 0 none, 1 first, 2 second
    result: jax.Array  # (L, S) int32, RESULTS code of the kept run
    value_random: jax.Array  # (L, S) float64, objective from the random start
    value_warm: jax.Array  # (L, S) float64, from the neighbour's solution (NaN: no neighbour)
    warm_won: jax.Array  # (L, S) bool, the kept run is the warm one
    disagree: jax.Array  # (L, S) bool, both runs certified but their values differ
    steps: jax.Array  # (L, S) int32, first-order + Newton steps of the kept run
    W_norm2: jax.Array  # (L, S) float64, ||W||_F^2
    H_norm2: jax.Array  # (L, S) float64, ||H||_F^2
    b_norm2: jax.Array  # (L, S) float64, ||b||^2 (0 without bias)
    nc1: jax.Array  # (L, S) float64, ufm.metrics.nc1
    G_H: jax.Array  # (L, S, K, K) float64, uncentred class-mean Gram
    G_W: jax.Array  # (L, S, D, D) float64, classifier Gram W W^T
    global_gap: jax.Array  # (L, S) float64, f - proven lower bound (NaN: family has none)
    global_ok: jax.Array  # (L, S) bool, global_gap <= gtol max(1, |f|) for the kept run
    random_skipped: jax.Array  # (L, S) bool, no random start: the warm run is globally certified


def _point_problem(prob, paths, values):
    for i, path in enumerate(paths):
        prob = replace_path(prob, path, values[i])
    return prob


def _summary(prob, x):
    if isinstance(prob, PaddedUFM):
        return padded_summary(prob, x)
    labels = jnp.asarray(prob.labels)
    Hbar, _ = metrics.class_means(x.H, labels, prob.K)
    b2 = jnp.sum(x.b**2) if x.b is not None else jnp.zeros(())
    nc1 = metrics.nc1(x.H, labels, prob.K)
    return (jnp.sum(x.W**2), jnp.sum(x.H**2), b2, nc1, Hbar.T @ Hbar, x.W @ x.W.T)


def _solve_one(prob, x0, opts, order, gtol=None):
    """One traced certified solve (``ufm.minimize(throw=False)``) from ``x0``."""
    sol = minimize(prob, params0=x0, gtol=opts.gtol if gtol is None else gtol, max_steps=opts.max_steps,
                   max_newton=opts.max_newton, order=order, throw=False)
    c = sol.certificate
    return (sol.params, sol.value, c.kkt, c.min_eig, jnp.asarray(c.order_code, jnp.int32),
            jnp.asarray(sol.stats["num_steps"], jnp.int32), jnp.asarray(sol.result, jnp.int32))


def _solve_starts(prob, x0s, opts):
    """Certified solves (``ufm.minimize(throw=False)``, traced) from stacked starting points."""

    def one(x0):
        return _solve_one(prob, x0, opts, opts.order)

    if opts.batch == "vmap":
        return jax.vmap(one)(x0s)
    return jax.lax.map(one, x0s)


def _pick(value, result, has_warm, starts):
    """Index (per seed) of the kept run among [random_s, warm_s]: certified first, then lowest."""
    ok = result == RESULTS.successful
    ok = ok.at[starts:].set(ok[starts:] & has_warm)
    score = jnp.where(ok, value, jnp.inf)
    warm_better = has_warm & (score[starts:] < score[:starts])
    return jnp.where(warm_better, jnp.arange(starts) + starts, jnp.arange(starts)), ok


def _disagree(ok_r, ok_w, v_r, v_w, rtol):
    """Both runs certified (to the same standard) but their values differ."""
    scale = jnp.maximum(1.0, jnp.abs(v_r))
    return ok_r & ok_w & (jnp.abs(v_r - v_w) > rtol * scale)


def _gap(prob, x, fx):
    return global_certificate(prob, x).gap.astype(jnp.result_type(fx))


def _local_step(p, keys, warm, has_warm, starts, opts):
    """One point, the local path: random and warm starts, second-order certificates."""
    rand = jax.vmap(p.init)(keys)
    x0s = jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a, b]), rand, warm)
    x, fx, kkt, eig, order, steps, res = _solve_starts(p, x0s, opts)
    idx, ok = _pick(fx, res, has_warm, starts)
    take = lambda a: a[idx]  # noqa: E731
    best = jax.tree_util.tree_map(take, x)
    v_r, v_w = fx[:starts], jnp.where(has_warm, fx[starts:], jnp.nan)
    disagree = _disagree(ok[:starts], ok[starts:], v_r, v_w, opts.agree_rtol)
    if opts.certify == "global":  # a fallback point: the gap is measured, not required
        gap = jax.vmap(lambda xx, ff: _gap(p, xx, ff))(best, take(fx))
        gok = global_gap_ok(gap, take(fx), opts.gtol) & (take(res) == RESULTS.successful)
    else:
        gap, gok = jnp.full((starts,), jnp.nan, fx.dtype), jnp.zeros((starts,), bool)
    summ = jax.vmap(lambda xx: _summary(p, xx))(best)
    rec = PointRecord(take(fx), take(kkt), take(eig), take(order), take(res), v_r, v_w,
                      idx >= starts, disagree, take(steps), *summ, gap, gok,
                      jnp.zeros((starts,), bool))
    return best, rec


def _global_seed(p, key, warm, has_warm, opts):
    """One point and seed, the global path (module docstring): returns ``(kept x, fields)``.

    The two attempts (warm start, then the random one where needed) are one ``lax.scan`` over a
    ``lax.cond``, so the solver appears once in the compiled program."""
    rand = p.init(key)
    x0s = jax.tree_util.tree_map(lambda u, v: jnp.stack([u, v]), tr.tree_where(has_warm, warm, rand), rand)

    def run(x0):
        # Newton is run to gtol * POLISH: the gap of a first-order point is about 10x its KKT
        # residual (measured), so a point certified at gtol alone often misses the gap test by
        # a digit; the extra Newton step costs ~0.5 ms. First order is certified at gtol.
        x, fx, kkt, eig, _, steps, res = _solve_one(p, x0, opts, "first", opts.gtol * POLISH)
        first = jnp.isfinite(fx) & (kkt <= opts.gtol * jnp.maximum(1.0, jnp.abs(fx)))
        res = jnp.where(first, jnp.int32(RESULTS.successful),
                        jnp.where(res == RESULTS.successful, jnp.int32(RESULTS.max_steps_reached), res))
        order = first.astype(jnp.int32)
        gap = _gap(p, x, fx)
        good = (res == RESULTS.successful) & global_gap_ok(gap, fx, opts.gtol)
        return x, fx, kkt, eig, order, steps, res, gap, good

    def skipped(x0):
        nan = jnp.full((), jnp.nan, _leaf_dtype(x0))
        return (x0, nan, nan, nan, jnp.int32(0), jnp.int32(0), jnp.int32(RESULTS.max_steps_reached),
                nan, jnp.asarray(False))

    def attempt(stop, x0):
        out = jax.lax.cond(stop, skipped, run, x0)
        # after the first attempt: stop when it is globally certified, or when it was the random
        # start already (no neighbour)
        return stop | out[-1] | ~has_warm, out

    _, outs = jax.lax.scan(attempt, jnp.asarray(False), x0s)
    a = [jax.tree_util.tree_map(lambda u: u[0], o) for o in outs]
    b = [jax.tree_util.tree_map(lambda u: u[1], o) for o in outs]
    skip = has_warm & a[-1]  # the warm run is a proven global minimizer: no random start
    # the random run is `a` without a neighbour, `b` otherwise (skipped: NaN)
    first_ok = a[6] == RESULTS.successful
    second_ok = b[6] == RESULTS.successful
    # keep: a globally certified run over one that is not; then the certified lower value
    score_a = jnp.where(first_ok, a[1], jnp.inf)
    score_b = jnp.where(second_ok, b[1], jnp.inf)
    better = (b[-1] & ~a[-1]) | ((b[-1] == a[-1]) & (score_b < score_a))
    take_b = better & has_warm & ~skip
    kept = [tr.tree_where(take_b, u, v) for u, v in zip(b, a)]
    v_r = jnp.where(has_warm, b[1], a[1])
    v_w = jnp.where(has_warm, a[1], jnp.nan)
    disagree = has_warm & _disagree(first_ok, second_ok, b[1], a[1], opts.agree_rtol)
    x, fx, kkt, eig, order, steps, res, gap, good = kept
    return x, (fx, kkt, eig, order, res, v_r, v_w, has_warm & ~take_b, disagree, steps, gap,
               good, skip)


def _leaf_dtype(tree):
    """The dtype of a pytree's (first) leaf."""
    return jax.tree_util.tree_leaves(tree)[0].dtype


def _global_step(p, keys, warm, has_warm, starts, opts):
    def one(args):
        key, w = args
        return _global_seed(p, key, w, has_warm, opts)

    best, f = jax.lax.map(one, (keys, warm))
    fx, kkt, eig, order, res, v_r, v_w, warm_won, disagree, steps, gap, good, skip = f
    summ = jax.vmap(lambda xx: _summary(p, xx))(best)
    rec = PointRecord(fx, kkt, eig, order, res, v_r, v_w, warm_won, disagree, steps, *summ,
                      gap, good, skip)
    return best, rec


def _chunk(prob, paths, values, starts, opts):
    keys = jax.vmap(jax.random.PRNGKey)(jnp.arange(starts))
    warm0 = jax.vmap(prob.init)(keys)
    step_fn = _global_step if opts.certify == "global" else _local_step

    def step(carry, vals):
        warm, has_warm = carry
        p = _point_problem(prob, paths, vals)
        best, rec = step_fn(p, keys, warm, has_warm, starts, opts)
        return (best, jnp.asarray(True)), (rec, best)

    _, (recs, xs) = jax.lax.scan(step, (warm0, jnp.asarray(False)), values)
    return recs, xs


@register_compiled
@functools.partial(jax.jit, static_argnames=("paths", "starts", "opts"))
def solve_chunk(prob: Problem, paths: tuple[str, ...], values: jax.Array, starts: int,
                opts: SolveOptions) -> tuple[PointRecord, Any]:
    """Solve the points ``values`` (shape ``(L, len(paths))``) of a chunk.

    Returns ``(PointRecord, kept params)``, every leaf with leading axes ``(L, S)``.
    """
    return _chunk(prob, paths, values, starts, opts)


@register_compiled
@functools.partial(jax.jit, static_argnames=("paths", "starts", "opts", "mesh"))
def solve_chunks_spmd(prob: Problem, paths: tuple[str, ...], values: jax.Array, starts: int,
                      opts: SolveOptions, mesh: Mesh) -> tuple[PointRecord, Any]:
    """One chunk per device of ``mesh`` (a 1-D mesh, axis ``"d"``) in one SPMD program.

    ``values`` has shape ``(G, L, len(paths))``, ``G`` the mesh size; the result is that of
    :func:`solve_chunk` with a leading axis ``G``. Compiled once for all devices (a thread per
    device would compile the same program once per device).
    """

    def body(pr, vals):
        out = _chunk(pr, paths, vals[0], starts, opts)
        return jax.tree_util.tree_map(lambda a: a[None], out)

    return jax.shard_map(body, mesh=mesh, in_specs=(PartitionSpec(), PartitionSpec("d")),
                         out_specs=PartitionSpec("d"), check_vma=False)(prob, values)


@register_compiled
@functools.partial(jax.jit, static_argnames=("paths", "starts", "opts"))
def solve_fallback(prob: Problem, paths: tuple[str, ...], vals: jax.Array, warm: Any, has_warm: jax.Array,
                   starts: int, opts: SolveOptions) -> PointRecord:
    """One point (``vals``, shape ``(len(paths),)``) by the local path: random and warm starts
    with second-order certificates, the global gap measured; a :class:`PointRecord` without the
    leading point axis. For points where the global path did not close the gap."""
    keys = jax.vmap(jax.random.PRNGKey)(jnp.arange(starts))
    p = _point_problem(prob, paths, vals)
    return _local_step(p, keys, warm, has_warm, starts, opts)[1]


# ---------------------------------------------------------------- on the host


def _certify_mode(prob, certify) -> str:
    """``"global"`` or ``"local"`` from ``certify`` (``"auto"``: global where the family has a
    proven lower bound)."""
    if certify not in ("auto", "global", "local"):
        raise ValueError(f"certify must be 'auto', 'global' or 'local', got certify={certify!r}")
    why = global_unsupported_reason(prob)
    if certify == "global" and why is not None:
        raise ValueError(f"certify='global': {why}")
    if certify == "auto":
        return "global" if why is None else "local"
    return certify


def _batch_mode(devices) -> str:
    """Starts of a point: a compiled loop on CPU (measured faster there), ``vmap`` elsewhere."""
    return "map" if all(d.platform == "cpu" for d in devices) else "vmap"


def solve_options(prob: Problem, devices: Sequence[jax.Device], *, gtol: float = 1e-10,
                  max_steps: int = 10_000, max_newton: int = 100, order: str = "auto",
                  certify: str = "auto") -> SolveOptions:
    """The :class:`SolveOptions` of a sweep of ``prob`` on ``devices``, validated.

    ``certify="auto"`` becomes ``"global"`` where the family has a proven lower bound
    (:func:`ufm.solvers.global_unsupported_reason` is None), else ``"local"``; the starts of a
    point run as a compiled loop when every device is a CPU, as one ``vmap`` otherwise.

    Raises:
        ValueError: ``order`` not ``"auto"``, ``"first"`` or ``"second"``; ``certify`` not
            ``"auto"``, ``"global"`` or ``"local"``; ``gtol`` not a finite number > 0;
            ``max_steps`` not an integer >= 1 or ``max_newton`` not an integer >= 0;
            ``certify="global"`` for a family without a proven lower bound (the message says why).
    """
    if order not in ("auto", "first", "second"):
        raise ValueError(f"order must be 'auto', 'first' or 'second', got order={order!r}")
    gtol = check_finite_positive("gtol", gtol)
    for name, value, lo in (("max_steps", max_steps, 1), ("max_newton", max_newton, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
            raise ValueError(f"{name} must be an integer >= {lo}, got {name}={value!r}")
    return SolveOptions(gtol=float(gtol), max_steps=int(max_steps), max_newton=int(max_newton),
                        order=order, batch=_batch_mode(devices), certify=_certify_mode(prob, certify))


def with_fallback(prob: Problem, paths: tuple[str, ...], vals: np.ndarray, rec: PointRecord, xs: Any,
                  starts: int, opts: SolveOptions, n: int) -> PointRecord:
    """A chunk's record as NumPy arrays, its first ``n`` points whose global gap stayed open
    (``opts.certify == "global"``) re-solved by :func:`solve_fallback` (second order).

    Args:
        prob, paths, vals, starts, opts: as given to :func:`solve_chunk` (``vals``: ``(L, F)``).
        rec, xs: its record and kept parameters (leading axes ``(L, S)``).
        n: the chunk's real points (the rest pad a short last chunk).
    """
    rec = PointRecord(*(np.array(a) for a in rec))
    if opts.certify != "global":
        return rec
    for i in np.flatnonzero(~rec.global_ok[:n].all(axis=1)):
        # the warm start is the previous point's kept run; without one, the random start stands
        # in (has_warm is False, so it is not used)
        warm = jax.tree_util.tree_map(lambda a: a[max(i - 1, 0)], xs)
        fb = solve_fallback(prob, paths, vals[i], warm, jnp.asarray(i > 0), starts, opts)
        redo = ~rec.global_ok[i]
        for name, a in zip(PointRecord._fields, fb):
            getattr(rec, name)[i, redo] = np.asarray(a)[redo]
    return rec


def solve_points(prob: Problem, paths: tuple[str, ...], vals: np.ndarray, starts: int,
                 opts: SolveOptions, n: int | None = None) -> PointRecord:
    """Solve consecutive points (:func:`solve_chunk`), then the fallback for the first ``n``
    (default all) whose global gap stayed open; a :class:`PointRecord` of NumPy arrays."""
    rec, xs = solve_chunk(prob, paths, vals, starts, opts)
    return with_fallback(prob, paths, vals, rec, xs, starts, opts, len(vals) if n is None else n)


def solve_groups(prob: Problem, paths: tuple[str, ...], values: np.ndarray, starts: int,
                 opts: SolveOptions, mesh: Mesh, ns: Sequence[int]) -> Iterator[PointRecord]:
    """One chunk per device in one SPMD call (:func:`solve_chunks_spmd`), then each chunk's
    fallback: yields the records of the first ``len(ns)`` chunks, chunk ``j`` with ``ns[j]`` real
    points (``values``: ``(G, L, F)``; rows past ``len(ns)`` pad the group to the mesh size)."""
    recs, xs = solve_chunks_spmd(prob, paths, values, starts, opts, mesh)
    recs = jax.tree_util.tree_map(np.asarray, recs)
    xs = jax.tree_util.tree_map(np.asarray, xs)
    for j, n in enumerate(ns):
        pick = lambda a: a[j]  # noqa: E731
        yield with_fallback(prob, paths, values[j], jax.tree_util.tree_map(pick, recs),
                            jax.tree_util.tree_map(pick, xs), starts, opts, n)

"""The compiled part of a sweep: one call solves a chunk of grid points.

A chunk is a run of consecutive grid points (C order, so neighbours along the last axis). One
``jax.jit`` call scans over its points. Two certification paths (``SolveOptions.certify``):

``"local"`` (every family): at each point it solves (a compiled loop on CPU, where batched small
matmuls are slow; one ``vmap`` on GPU/TPU) ``seeds`` random starts (``prob.init(PRNGKey(s))``, the
start ``ufm.minimize(prob, seed=s)`` uses) and ``seeds`` warm starts (the previous point's
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
outside this kernel, so the compiled chunk stays small.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from ufm._internal import tree as tr
from ufm import metrics
from ufm.solvers import RESULTS, global_certificate, minimize
from ufm.solvers import global_gap_ok


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


def replace_path(obj, path: str, value):
    """``dataclasses.replace`` along a dotted path (``"loss.alpha"``); runs the constructors' checks
    on concrete values, lets tracers through."""
    head, _, rest = path.partition(".")
    new = value if not rest else replace_path(getattr(obj, head), rest, value)
    return dataclasses.replace(obj, **{head: new})


def _point_problem(prob, paths, values):
    for i, path in enumerate(paths):
        prob = replace_path(prob, path, values[i])
    return prob


def _summary(prob, x):
    labels = jnp.asarray(prob.labels)
    Hbar, _ = metrics._means(x.H, labels, prob.K, "weighted")
    b2 = jnp.sum(x.b**2) if x.b is not None else jnp.zeros(())
    nc1 = metrics.nc1.__wrapped__(x.H, labels, prob.K)
    return (jnp.sum(x.W**2), jnp.sum(x.H**2), b2, nc1, Hbar.T @ Hbar, x.W @ x.W.T)


def _solve_one(prob, x0, opts, order, gtol=None):
    """One traced certified solve (``ufm.minimize(throw=False)``) from ``x0``."""
    sol = minimize(prob, params0=x0, gtol=opts.gtol if gtol is None else gtol, max_steps=opts.max_steps,
                   max_newton=opts.max_newton, order=order, throw=False)
    c = sol.certificate
    return (sol.params, sol.value, c.kkt, c.min_eig, jnp.asarray(c.order_code, jnp.int32),
            jnp.asarray(sol.stats["num_steps"], jnp.int32), jnp.asarray(sol.result, jnp.int32))


def _solve_starts(prob, starts, opts):
    """Certified solves (``ufm.minimize(throw=False)``, traced) from stacked starting points."""

    def one(x0):
        return _solve_one(prob, x0, opts, opts.order)

    if opts.batch == "vmap":
        return jax.vmap(one)(starts)
    return jax.lax.map(one, starts)


def _pick(value, result, has_warm, seeds):
    """Index (per seed) of the kept run among [random_s, warm_s]: certified first, then lowest."""
    ok = result == RESULTS.successful
    ok = ok.at[seeds:].set(ok[seeds:] & has_warm)
    score = jnp.where(ok, value, jnp.inf)
    warm_better = has_warm & (score[seeds:] < score[:seeds])
    return jnp.where(warm_better, jnp.arange(seeds) + seeds, jnp.arange(seeds)), ok


def _disagree(ok_r, ok_w, v_r, v_w, rtol):
    """Both runs certified (to the same standard) but their values differ."""
    scale = jnp.maximum(1.0, jnp.abs(v_r))
    return ok_r & ok_w & (jnp.abs(v_r - v_w) > rtol * scale)


def _gap(prob, x, fx):
    return global_certificate(prob, x).gap.astype(jnp.result_type(fx))


def _local_step(p, keys, warm, has_warm, seeds, opts):
    """One point, the local path: random and warm starts, second-order certificates."""
    rand = jax.vmap(p.init)(keys)
    starts = jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a, b]), rand, warm)
    x, fx, kkt, eig, order, steps, res = _solve_starts(p, starts, opts)
    idx, ok = _pick(fx, res, has_warm, seeds)
    take = lambda a: a[idx]  # noqa: E731
    best = jax.tree_util.tree_map(take, x)
    v_r, v_w = fx[:seeds], jnp.where(has_warm, fx[seeds:], jnp.nan)
    disagree = _disagree(ok[:seeds], ok[seeds:], v_r, v_w, opts.agree_rtol)
    if opts.certify == "global":  # a fallback point: the gap is measured, not required
        gap = jax.vmap(lambda xx, ff: _gap(p, xx, ff))(best, take(fx))
        gok = global_gap_ok(gap, take(fx), opts.gtol) & (take(res) == RESULTS.successful)
    else:
        gap, gok = jnp.full((seeds,), jnp.nan, fx.dtype), jnp.zeros((seeds,), bool)
    summ = jax.vmap(lambda xx: _summary(p, xx))(best)
    rec = PointRecord(take(fx), take(kkt), take(eig), take(order), take(res), v_r, v_w,
                      idx >= seeds, disagree, take(steps), *summ, gap, gok,
                      jnp.zeros((seeds,), bool))
    return best, rec


def _global_seed(p, key, warm, has_warm, opts):
    """One point and seed, the global path (module docstring): returns ``(kept x, fields)``.

    The two attempts (warm start, then the random one where needed) are one ``lax.scan`` over a
    ``lax.cond``, so the solver appears once in the compiled program."""
    rand = p.init(key)
    starts = jax.tree_util.tree_map(lambda u, v: jnp.stack([u, v]), tr.tree_where(has_warm, warm, rand), rand)

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

    _, outs = jax.lax.scan(attempt, jnp.asarray(False), starts)
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


def _global_step(p, keys, warm, has_warm, seeds, opts):
    def one(args):
        key, w = args
        return _global_seed(p, key, w, has_warm, opts)

    best, f = jax.lax.map(one, (keys, warm))
    fx, kkt, eig, order, res, v_r, v_w, warm_won, disagree, steps, gap, good, skip = f
    summ = jax.vmap(lambda xx: _summary(p, xx))(best)
    rec = PointRecord(fx, kkt, eig, order, res, v_r, v_w, warm_won, disagree, steps, *summ,
                      gap, good, skip)
    return best, rec


def _chunk(prob, paths, values, seeds, opts):
    keys = jax.vmap(jax.random.PRNGKey)(jnp.arange(seeds))
    warm0 = jax.vmap(prob.init)(keys)
    step_fn = _global_step if opts.certify == "global" else _local_step

    def step(carry, vals):
        warm, has_warm = carry
        p = _point_problem(prob, paths, vals)
        best, rec = step_fn(p, keys, warm, has_warm, seeds, opts)
        return (best, jnp.asarray(True)), (rec, best)

    _, (recs, xs) = jax.lax.scan(step, (warm0, jnp.asarray(False)), values)
    return recs, xs


@functools.partial(jax.jit, static_argnames=("paths", "seeds", "opts"))
def solve_chunk(prob, paths, values, seeds, opts):
    """Solve the points ``values`` (shape ``(L, len(paths))``) of a chunk.

    Returns ``(PointRecord, kept params)``, every leaf with leading axes ``(L, S)``.
    """
    return _chunk(prob, paths, values, seeds, opts)


@functools.partial(jax.jit, static_argnames=("paths", "seeds", "opts", "mesh"))
def solve_chunks_spmd(prob, paths, values, seeds, opts, mesh):
    """One chunk per device of ``mesh`` (a 1-D mesh, axis ``"d"``) in one SPMD program.

    ``values`` has shape ``(G, L, len(paths))``, ``G`` the mesh size; the result is that of
    :func:`solve_chunk` with a leading axis ``G``. Compiled once for all devices (a thread per
    device would compile the same program once per device).
    """
    from jax.sharding import PartitionSpec as P

    def body(pr, vals):
        out = _chunk(pr, paths, vals[0], seeds, opts)
        return jax.tree_util.tree_map(lambda a: a[None], out)

    return jax.shard_map(body, mesh=mesh, in_specs=(P(), P("d")), out_specs=P("d"),
                         check_vma=False)(prob, values)


@functools.partial(jax.jit, static_argnames=("paths", "seeds", "opts"))
def solve_fallback(prob, paths, vals, warm, has_warm, seeds, opts):
    """One point (``vals``, shape ``(len(paths),)``) by the local path: random and warm starts
    with second-order certificates, the global gap measured; a :class:`PointRecord` without the
    leading point axis. For points where the global path did not close the gap."""
    keys = jax.vmap(jax.random.PRNGKey)(jnp.arange(seeds))
    p = _point_problem(prob, paths, vals)
    return _local_step(p, keys, warm, has_warm, seeds, opts)[1]

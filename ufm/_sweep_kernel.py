"""The compiled part of a sweep: one call solves a chunk of grid points.

A chunk is a run of consecutive grid points (C order, so neighbours along the last axis). One
``jax.jit`` call scans over its points; at each point it solves (a compiled loop on CPU, where
batched small matmuls are slow; one ``vmap`` on GPU/TPU) ``seeds`` random
starts (``prob.init(PRNGKey(s))``, the start ``ufm.minimize(prob, seed=s)`` uses) and ``seeds``
warm starts (the previous point's certified solution for the same seed). It keeps the better
certified run per seed and records both values, so a branch followed past a transition shows up
as a disagreement instead of a wrong phase.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from ufm import metrics
from ufm.solvers import RESULTS, minimize


class SolveOptions(NamedTuple):
    """Static solver options of a sweep (they select the compiled code)."""

    gtol: float = 1e-10
    max_steps: int = 10_000
    max_newton: int = 100
    order: str = "auto"  # what ufm.minimize certifies: "auto", "first", "second"
    agree_rtol: float = 1e-7  # random and warm runs "agree" when values match to this
    batch: str = "map"  # starts of one point: "map" (a compiled loop, CPU) or "vmap" (GPU/TPU)


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


def _solve_starts(prob, starts, opts):
    """Certified solves (``ufm.minimize(throw=False)``, traced) from stacked starting points."""

    def one(x0):
        sol = minimize(prob, params0=x0, gtol=opts.gtol, max_steps=opts.max_steps,
                       max_newton=opts.max_newton, order=opts.order, throw=False)
        c = sol.certificate
        return (sol.params, sol.value, c.kkt, c.min_eig, jnp.asarray(c.order_code, jnp.int32),
                jnp.asarray(sol.stats["num_steps"], jnp.int32), jnp.asarray(sol.result, jnp.int32))

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


@functools.partial(jax.jit, static_argnames=("paths", "seeds", "opts"))
def solve_chunk(prob, paths, values, seeds, opts):
    """Solve the points ``values`` (shape ``(L, len(paths))``) of a chunk; returns a PointRecord."""
    keys = jax.vmap(jax.random.PRNGKey)(jnp.arange(seeds))
    warm0 = jax.vmap(prob.init)(keys)

    def step(carry, vals):
        warm, has_warm = carry
        p = _point_problem(prob, paths, vals)
        rand = jax.vmap(p.init)(keys)
        starts = jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a, b]), rand, warm)
        x, fx, kkt, eig, order, steps, res = _solve_starts(p, starts, opts)
        idx, ok = _pick(fx, res, has_warm, seeds)
        take = lambda a: a[idx]  # noqa: E731
        best = jax.tree_util.tree_map(take, x)
        v_r, v_w = fx[:seeds], jnp.where(has_warm, fx[seeds:], jnp.nan)
        scale = jnp.maximum(1.0, jnp.abs(v_r))
        disagree = ok[:seeds] & ok[seeds:] & (jnp.abs(v_r - v_w) > opts.agree_rtol * scale)
        summ = jax.vmap(lambda xx: _summary(p, xx))(best)
        rec = PointRecord(take(fx), take(kkt), take(eig), take(order), take(res), v_r, v_w,
                          idx >= seeds, disagree, take(steps), *summ)
        return (best, jnp.asarray(True)), rec

    _, recs = jax.lax.scan(step, (warm0, jnp.asarray(False)), values)
    return recs

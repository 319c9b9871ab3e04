r"""The compiled local solve of :func:`ufm.minimize`: descend, check curvature, escape saddles.

:func:`solve` is one pure JAX function of ``(prob, x0, key, opts)``, ``jit``-compiled once per
problem shape and :class:`SolveOptions` (its static fields select the code; the tolerances and
the loop caps are traced, so a new tolerance or step cap reuses the executable):

1. :func:`descend`: a first-order method to a relative KKT residual of ``1e-6`` (L-BFGS without
   constraints, spectral projected gradient for a box), then the Newton-CG polish to ``gtol``;
2. :func:`curvature`: the smallest eigenvalue of the Hessian on the free, non-symmetry
   directions (``opts.second``: ``"dense"`` or ``"lanczos"``; ``None`` skips it);
3. :func:`escape`: from a strict saddle (``lambda_min < -eig_tol``) a step along the eigenvector,
   then 1-2 again, at most ``max_escapes`` times.

:func:`select` picks the best of several starts (lowest value among the certified runs).
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from ufm._internal import tree as tr
from ufm._internal.runtime import register_compiled
from ufm._internal.validation import check_finite_positive, check_int
from ufm.problems import PaddedUFM, Problem
from ufm.solvers._certify import resolve_method, smallest_eig
from ufm.solvers._descent import NewtonState, lbfgs, newton_cg, spg
from ufm.solvers._results import RESULTS, Certificate
from ufm.solvers._symmetry import rotation_pair

__all__ = ["SolveOptions", "Run", "checked_options", "second_order_method", "descend", "curvature",
           "escape", "solve", "select", "is_traced"]

SWITCH_RTOL = 1e-6  # the first stage hands over to Newton below this relative KKT residual
CG_MAX = 500  # CG iterations per Newton step
LANCZOS_MAX = 200_000  # parameters; above this order="auto" certifies first order only
PADDED_DENSE_MAX = 200  # parameters of a PaddedUFM's bucket above which its curvature check is Lanczos
TANGENT_BUDGET = 2e7  # entries of the (n, m) symmetry-tangent matrix order="auto" will orthonormalize
# (a family with the structured projection of ufm.solvers._symmetry never builds that matrix)
ORDERS = ("auto", "first", "second")


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class SolveOptions:
    """The options of the compiled solve, one pytree argument of :func:`solve`.

    ``gtol``, ``eig_tol`` and the loop caps ``max_steps``, ``max_newton``, ``cg_max`` and
    ``max_escapes`` are leaves (traced: a new tolerance or cap reuses the compiled code, since the
    caps only bound ``while_loop`` conditions); ``second`` and ``num_iters`` are static (they select
    the code and size the Lanczos basis). Change one with ``dataclasses.replace(opts,
    max_steps=3000)``.

    Attributes:
        gtol: relative first-order tolerance, ``kkt <= gtol max(1, |f|)``.
        eig_tol: second-order tolerance, ``lambda_min >= -eig_tol``.
        max_steps: first-stage (L-BFGS or SPG) iteration cap.
        max_newton: Newton iteration cap.
        cg_max: CG iterations per Newton step.
        second: the curvature check, ``"dense"``, ``"lanczos"`` or ``None`` (first order only).
        num_iters: Lanczos steps of the curvature check.
        max_escapes: saddle escapes before giving up (``RESULTS.saddle``).
    """

    gtol: float = 1e-10
    eig_tol: float = 1e-8
    max_steps: int = 10_000
    max_newton: int = 100
    cg_max: int = CG_MAX
    second: str | None = field(default=None, metadata=dict(static=True))
    num_iters: int = field(default=100, metadata=dict(static=True))
    max_escapes: int = 10


def checked_options(*, gtol: float, eig_tol: float, max_steps: int, max_newton: int, max_escapes: int,
                    num_iters: int) -> SolveOptions:
    """The options as :class:`SolveOptions`, or a ValueError naming the argument and its range
    (before anything compiles). ``second`` is set per problem by :func:`second_order_method`."""
    return SolveOptions(
        gtol=check_finite_positive("gtol", gtol), eig_tol=check_finite_positive("eig_tol", eig_tol),
        max_steps=check_int("max_steps", max_steps, 1), max_newton=check_int("max_newton", max_newton, 0),
        max_escapes=check_int("max_escapes", max_escapes, 0), num_iters=check_int("num_iters", num_iters, 1))


def check_order(order: str) -> str:
    """``order`` if it is ``"auto"``, ``"first"`` or ``"second"``, else a ValueError."""
    if not isinstance(order, str) or order not in ORDERS:
        raise ValueError(f"order must be 'auto', 'first' or 'second', got order={order!r}")
    return order


class Run(NamedTuple):
    """One compiled solve from one start (arrays; stacked along a leading axis over starts)."""

    params: Any  # the point reached, a parameter pytree
    value: jax.Array  # shape=(), float64: f(params)
    result: jax.Array  # shape=(), int32: a RESULTS code
    certificate: Certificate  # kkt, min_eig, order_code (no global part)
    counts: dict  # first_order_steps, newton_steps, cg_steps, escapes: int32 arrays


def descend(prob: Problem, x0: Any, opts: SolveOptions) -> tuple[jax.Array, NewtonState]:
    """First-order stage (L-BFGS or SPG) to a relative KKT residual 1e-6, then Newton-CG to
    ``gtol``; returns ``(first-order steps, NewtonState)``."""
    switch = jnp.maximum(opts.gtol, SWITCH_RTOL)
    if prob.constrained:
        x1, k1 = spg(prob, x0, switch, opts.max_steps)
    else:
        x1, k1 = lbfgs(prob, x0, switch, opts.max_steps)
    return k1, newton_cg(prob, x1, opts.gtol, opts.max_newton, opts.cg_max)


def curvature(prob: Problem, x: Any, key: jax.Array, opts: SolveOptions) -> tuple[jax.Array, jax.Array]:
    """Smallest eigenvalue and eigenvector of the projected Hessian (``nan`` when not checked):
    :func:`ufm.solvers._certify.smallest_eig` (what it bounds and how)."""
    flat = ravel_pytree(x)[0]
    if opts.second is None:
        return jnp.asarray(jnp.nan, flat.dtype), jnp.zeros_like(flat)
    return smallest_eig(prob, x, key, opts.second, opts.num_iters)


def escape(prob: Problem, x: Any, v_flat: jax.Array, lam: jax.Array) -> Any:
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


class _Round(NamedTuple):
    """The carry of :func:`solve`'s rounds (descend, check curvature; later rounds escape first)."""

    x: Any  # the iterate
    value: jax.Array  # shape=(), float64
    kkt: jax.Array  # shape=(), float64
    first_order_steps: jax.Array  # shape=(), int32
    newton_steps: jax.Array  # shape=(), int32
    cg_steps: jax.Array  # shape=(), int32
    result: jax.Array  # shape=(), int32: the RESULTS code of the last descent
    min_eig: jax.Array  # shape=(), float64: nan before the first check
    direction: jax.Array  # shape=(n,), float64: its eigenvector (ravel_pytree order)
    escapes: jax.Array  # shape=(), int32: -1 before the first round


def _first_order_ok(s: _Round, opts: SolveOptions):
    return s.kkt <= opts.gtol * jnp.maximum(1.0, jnp.abs(s.value))


def _another_round(opts: SolveOptions, s: _Round):
    saddle = _first_order_ok(s, opts) & (s.result == RESULTS.successful) & (s.min_eig < -opts.eig_tol) \
        & (s.escapes < opts.max_escapes)
    return (s.escapes < 0) | saddle


def _round(prob, key, opts: SolveOptions, s: _Round) -> _Round:
    x = s.x
    if opts.second is not None:
        x = jax.lax.cond(s.escapes >= 0, lambda: escape(prob, x, s.direction, s.min_eig), lambda: x)
    k1, nt = descend(prob, x, opts)
    lam, v = curvature(prob, nt.x, key, opts)
    return _Round(nt.x, nt.value, nt.kkt, s.first_order_steps + k1, s.newton_steps + nt.steps,
                  s.cg_steps + nt.cg_steps, nt.result, lam, v, s.escapes + 1)


def _verdict(s: _Round, opts: SolveOptions) -> Run:
    """The certificate and the RESULTS code of the last round."""
    finite = jnp.isfinite(s.value) & tr.tree_all_finite(s.x)
    result = jnp.where(finite, s.result, RESULTS.nonfinite)
    first = _first_order_ok(s, opts) & finite
    second_ok = first & (s.min_eig >= -opts.eig_tol) if opts.second is not None else jnp.asarray(False)
    order = jnp.where(second_ok, 2, jnp.where(first, 1, 0)).astype(jnp.int32)
    wanted = second_ok if opts.second is not None else first
    result = jnp.where(wanted, RESULTS.successful,
                       jnp.where(first & (result == RESULTS.successful), RESULTS.saddle,
                                 jnp.where(result == RESULTS.successful, RESULTS.max_steps_reached, result)))
    cert = Certificate(kkt=s.kkt, min_eig=s.min_eig, order_code=order)
    counts = dict(first_order_steps=s.first_order_steps, newton_steps=s.newton_steps, cg_steps=s.cg_steps,
                  escapes=s.escapes)
    return Run(s.x, s.value, result.astype(jnp.int32), cert, counts)


@register_compiled
@jax.jit
def solve(prob: Problem, x0: Any, key: jax.Array, opts: SolveOptions) -> Run:
    """The whole local solve as one pure function: descend, check curvature, escape saddles, repeat
    (module docstring). ``key`` seeds the Lanczos start vector."""
    x0 = prob.project(x0)
    flat0 = ravel_pytree(x0)[0]
    zero = jnp.int32(0)
    inf = jnp.asarray(jnp.inf, flat0.dtype)
    s = _Round(x0, inf, inf, zero, zero, zero, jnp.int32(RESULTS.successful),
               jnp.asarray(jnp.nan, flat0.dtype), jnp.zeros_like(flat0), jnp.int32(-1))
    step = functools.partial(_round, prob, key, opts)
    if opts.second is None:
        s = step(s)
    else:
        s = jax.lax.while_loop(functools.partial(_another_round, opts), step, s)
    return _verdict(s, opts)


def select(values: jax.Array, results: jax.Array) -> jax.Array:
    """Index of the best run: lowest value among the certified, else among the finite."""
    ok = results == RESULTS.successful
    finite = jnp.isfinite(values)
    pool = jnp.where(jnp.any(ok), ok, finite)
    return jnp.argmin(jnp.where(pool, values, jnp.inf))


def is_traced(tree: Any) -> bool:
    """Whether any leaf of ``tree`` is a JAX tracer (the solve runs inside a trace)."""
    return any(isinstance(x, jax.core.Tracer) for x in jax.tree_util.tree_leaves(tree))


_TANGENT_COUNTS: dict = {}


def _count_tangents(prob, x0) -> int:
    shape = jax.eval_shape(prob.symmetry_tangents, x0)
    leaves = jax.tree_util.tree_leaves(shape)
    return int(leaves[0].shape[0]) if leaves else 0


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


def second_order_method(prob: Problem, x0: Any, order: str) -> str | None:
    """The curvature check for ``order``: ``None`` (first order only), ``"dense"`` (up to 2000
    parameters) or ``"lanczos"``; ``"auto"`` skips it above 200,000 parameters or when the
    symmetry tangents would not fit the orthonormalization budget (a dense basis is built only
    for families without the structured projection of :mod:`ufm.solvers._symmetry`).

    A :class:`ufm.problems.PaddedUFM` above 200 parameters (its bucket's count, mostly
    padding) is checked by Lanczos: the dense Hessian would be of the bucket's size (5.9 s against
    0.12 s for the (12, 2, 24) bucket on two CPU cores), while a Lanczos step costs one
    Hessian-vector product, which the padding leaves at the active block's cost."""
    if order == "first":
        return None
    n = tr.tree_size(x0)
    m = 0 if rotation_pair(prob) is not None else _num_tangents(prob, x0)
    if order == "auto" and (n > LANCZOS_MAX or n * m > TANGENT_BUDGET):
        return None
    if isinstance(prob, PaddedUFM) and n > PADDED_DENSE_MAX:
        return "lanczos"
    return resolve_method("auto", n)


def for_problem(opts: SolveOptions, prob: Problem, x0: Any, order: str) -> SolveOptions:
    """``opts`` with the curvature check of ``order`` and ``num_iters`` at most the parameter count."""
    return dataclasses.replace(opts, second=second_order_method(prob, x0, order),
                               num_iters=int(min(opts.num_iters, tr.tree_size(x0))))

r"""Derivatives of certified minimizers by the implicit function theorem.

A certified minimizer :math:`\theta^*(p)` of :math:`f(\theta; p)` (``p``: the hyper-parameters of a
problem, its pytree leaves: ``lam_W``, ``lam_H``, ``lam_b``, loss parameters) solves
:math:`\nabla_\theta f(\theta^*(p); p) = 0`. Differentiating,

.. math:: H\,\dot\theta = -\partial_p \nabla_\theta f\,\dot p, \qquad
    H = \nabla^2_\theta f(\theta^*; p).

The UFM objectives are invariant under a group acting on :math:`\theta` (rotations
:math:`(W, H) \mapsto (W Q^\top, Q H)`, and shifts of a free bias), so :math:`H` is singular along
the orbit's tangents and :math:`\theta^*(p)` is a point of an orbit, not a function. Two facts make
the derivative of an *invariant* well defined:

1. the right-hand side is orthogonal to the tangents: :math:`\nabla f(g\theta) = g\nabla f(\theta)`
   gives :math:`\langle \nabla_\theta f(\theta; p), A\theta\rangle = 0` for every generator
   :math:`A` and every :math:`p`, and differentiating in :math:`p` gives
   :math:`\langle \partial_p\nabla_\theta f, A\theta\rangle = 0`;
2. an invariant :math:`\phi` (objective value, Gram matrices, norms) has
   :math:`\langle\nabla_\theta\phi, A\theta\rangle = 0`, so any two solutions :math:`\dot\theta` of
   the linear system, which differ by a tangent when the kernel of :math:`H` is exactly the tangent
   space (a minimizer that is nondegenerate up to the symmetry), give the same
   :math:`\dot\phi = \partial_\theta\phi\,\dot\theta + \partial_p\phi\,\dot p`.

The gauge is therefore the minimum-norm one: conjugate gradients from zero on Hessian-vector
products stay in the range of :math:`H` (orthogonal to the tangents). This is the standard
implicit-differentiation construction (e.g. Blondel et al., *Efficient and modular implicit
differentiation*, NeurIPS 2022), applied to ufm's certified solves.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from ufm._internal.tree import replace_path
from ufm._internal.validation import check_finite_positive, check_int
from ufm.problems import Problem
from ufm.solvers._minimize import minimize

__all__ = ["implicit_invariant"]


def _check(prob: Problem, theta: Any) -> None:
    """Raise unless ``prob`` is smooth and unconstrained at ``theta`` (no box, no ReLU kinks)."""
    if getattr(prob, "activation", None) == "relu":
        raise ValueError("implicit_invariant: a ReLU DeepUFM is not smooth at its kinks; use "
                         "activation='linear'")
    lower = jax.tree_util.tree_leaves(prob.box_lower(theta))
    if any(bool(jnp.any(jnp.isfinite(x))) for x in lower):
        raise ValueError(f"implicit_invariant: {type(prob).__name__} has inequality constraints "
                         f"(a box, e.g. nonneg=True); the implicit function theorem here needs an "
                         f"unconstrained, smooth objective")


def _get(obj: Any, path: str) -> Any:
    """The field at a dotted path, or a ValueError naming it."""
    for part in path.split("."):
        if not dataclasses.is_dataclass(obj) or part not in {f.name for f in dataclasses.fields(obj)}:
            raise ValueError(f"implicit_invariant: {path!r} is not a field of the problem (wrt names "
                             f"hyper-parameters such as 'lam_W', 'lam_H', 'lam_b', 'loss.alpha')")
        if {f.name: f for f in dataclasses.fields(obj)}[part].metadata.get("static"):
            raise ValueError(f"implicit_invariant: {path!r} is a size (static), not a hyper-parameter")
        obj = getattr(obj, part)
    if obj is None or dataclasses.is_dataclass(obj):
        raise ValueError(f"implicit_invariant: {path!r} is not a scalar hyper-parameter of the problem "
                         f"(it is {obj!r}; a bias needs lam_b set, e.g. lam_b=0.0)")
    return obj


def implicit_invariant(prob: Problem, fn: Callable[[Problem, Any], jax.Array], wrt: Sequence[str] = ("lam_W", "lam_H"),
                       *, seed: int = 0, cg_tol: float = 1e-13, cg_maxiter: int | None = None,
                       **minimize_kwargs: Any) -> Callable[[Mapping[str, ArrayLike]], jax.Array]:
    r"""``values -> fn(prob_v, theta*(prob_v))``, differentiable in the hyper-parameters ``wrt``.

    ``prob_v`` is ``prob`` with the fields named in ``wrt`` (dotted for nested ones:
    ``"loss.alpha"``) set to ``values[name]``. The returned function solves
    ``ufm.minimize(prob_v, seed=seed, **minimize_kwargs)`` (certified; an uncertified solve raises
    :class:`ufm.SolveError`) and returns ``fn(prob_v, sol.params)``. Under ``jax.jvp``,
    ``jax.jacfwd`` or ``jax.grad`` its derivative is, by the implicit function theorem (module
    docstring),

    .. math:: \dot\phi = \partial_\theta\phi\,\dot\theta + \partial_p\phi\,\dot p,\qquad
        \dot\theta = -H^{+}\,\partial_p\nabla_\theta f\,\dot p,

    with :math:`H^{+}` applied by conjugate gradients on Hessian-vector products started at zero
    (the minimum-norm gauge), one solve per scalar hyper-parameter. ``fn`` must be an invariant of
    the problem's symmetry (constant on the minimizer's orbit: the objective value, Gram matrices,
    norms, logits); then the derivative does not depend on which point of the orbit the solve
    returned. The minimizer must be nondegenerate up to the symmetry (``min_eig > 0`` in its
    certificate: pass ``order="second"`` to have it checked).

    The function runs ``minimize`` on concrete values: call it, ``jax.grad`` or ``jax.jacfwd`` of
    it, outside ``jax.jit`` (the solve itself is compiled).

    Args:
        prob: the base problem: smooth and unconstrained (no ``nonneg``, no ReLU).
        fn: ``fn(prob, params) -> array``, an invariant of the minimizer.
        wrt: the hyper-parameters the returned function takes (scalar fields of ``prob``).
        seed: the solve's seed.
        cg_tol: relative residual at which conjugate gradients stop, in (0, 1).
        cg_maxiter: conjugate-gradient steps (default: 10 times the number of parameters).
        **minimize_kwargs: passed to :func:`ufm.minimize` (``gtol``, ``order``, ``starts``, ...).

    Returns:
        A function of ``{name: value}`` for the names in ``wrt``.

    Raises:
        ValueError: an unknown field in ``wrt``, ``cg_tol`` not in (0, 1), ``cg_maxiter`` < 1, or
            a problem with inequality constraints or ReLU kinks.

    Example:
        >>> g = ufm.implicit_invariant(prob, lambda p, x: jnp.sum(x.W**2), order="second")
        >>> jax.grad(g)({"lam_W": 5e-3, "lam_H": 5e-3})["lam_W"]   # d||W*||_F^2 / d lam_W
    """
    wrt = tuple(wrt)
    if not wrt or len(set(wrt)) != len(wrt):
        raise ValueError(f"wrt must name distinct hyper-parameters, got wrt={wrt!r}")
    for name in wrt:
        _get(prob, name)  # an unknown field fails here, before any solve
    _check(prob, prob.init(jax.random.PRNGKey(0)))  # constraints and kinks: before any solve
    cg_tol = check_finite_positive("cg_tol", cg_tol)
    if cg_tol >= 1:
        raise ValueError(f"cg_tol must be in (0, 1), got cg_tol={cg_tol}")
    if cg_maxiter is not None:
        cg_maxiter = check_int("cg_maxiter", cg_maxiter, 1)

    def problem_at(vals: Sequence[Any]) -> Problem:
        out = prob
        for name, v in zip(wrt, vals):
            out = replace_path(out, name, v)
        return out

    def solve(p: Problem) -> Any:
        return minimize(p, seed=seed, **minimize_kwargs).params

    jacobian = jax.jit(functools.partial(_jacobian, problem_at, fn, cg_tol=cg_tol, cg_maxiter=cg_maxiter))
    phi = _with_implicit_jvp(problem_at, fn, solve, jacobian)

    def value(values: Mapping[str, ArrayLike]) -> jax.Array:
        missing = [k for k in wrt if k not in values]
        if missing or set(values) - set(wrt):
            raise ValueError(f"values must have exactly the keys {list(wrt)}, got {sorted(values)}")
        return phi(*(jnp.asarray(values[k], dtype=jnp.float64) for k in wrt))

    return value


def _jacobian(problem_at, fn, theta, vals, *, cg_tol, cg_maxiter) -> list[jax.Array]:
    """``d fn / d p_i`` for every scalar hyper-parameter ``p_i``: one conjugate-gradient solve
    ``H v = -d(grad f)/d p_i`` each, on concrete values, so that the JVP is a fixed linear map of
    the tangents (which ``jax.grad`` transposes)."""

    def grad_at(x, vs):
        return jax.grad(problem_at(vs).objective)(x)

    def hvp(v):
        return jax.jvp(lambda x: grad_at(x, vals), (theta,), (v,))[1]

    def phi_of(x, vs):
        return fn(problem_at(vs), x)

    size = sum(x.size for x in jax.tree_util.tree_leaves(theta))
    out = []
    for i in range(len(vals)):
        basis = [jnp.zeros_like(v) for v in vals]
        basis[i] = jnp.ones_like(vals[i])
        rhs = jax.jvp(lambda vs: grad_at(theta, vs), (list(vals),), (basis,))[1]
        rhs = jax.tree_util.tree_map(jnp.negative, rhs)
        dtheta, _ = jax.scipy.sparse.linalg.cg(hvp, rhs, tol=cg_tol, atol=0.0,
                                               maxiter=cg_maxiter or 10 * size)
        out.append(jax.jvp(phi_of, (theta, list(vals)), (dtheta, basis))[1])
    return out


def _with_implicit_jvp(problem_at, fn, solve, jacobian):
    """``(p_1, ..., p_m) -> fn(prob, theta*)`` with the implicit-function-theorem JVP."""

    @jax.custom_jvp
    def phi(*vals):
        p = problem_at(vals)
        return fn(p, solve(p))

    @phi.defjvp
    def phi_jvp(primals, tangents):
        p = problem_at(primals)
        theta = solve(p)
        out = fn(p, theta)
        jac = jacobian(theta, list(primals))
        dout = sum((t * J for t, J in zip(tangents, jac)), jnp.zeros_like(out))
        return out, dout

    return phi

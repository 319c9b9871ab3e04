r"""Second-order certificates: extreme eigenvalues of the Hessian from Hessian-vector products."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from ufm._internal.runtime import register_compiled
from ufm.problems import Problem
from ufm.solvers._common import kkt_residual
from ufm.solvers._lanczos import smallest_ritz
from ufm.solvers._symmetry import implicit_projector

__all__ = ["hessian_extreme_eigs", "hessian_spectrum", "symmetry_basis", "free_mask", "smallest_eig"]

_DENSE_MAX = 2000
_SYM_RTOL = 1e-6  # tangent directions below this fraction of the largest one are dropped (the basis
# comes from the tangents' Gram matrix, whose eigenvalues are the squares: 1e-12 relative, above round-off)


def free_mask(prob: Problem, params: Any, grad: Any, eps: Any = None) -> Any:
    r"""1.0 on free components, 0.0 on the (epsilon-)active bound constraints.

    A component is active when ``theta_i - lo_i <= eps`` and ``g_i > 0`` (Bertsekas' projected
    Newton rule), with ``eps = min(1e-8, KKT residual)`` by default. Without constraints every
    component is free. Entries the objective never reads (:meth:`Problem.active_mask`: the
    padding of a :class:`ufm.problems.PaddedUFM`) are held like an active bound: 0.0 there.
    """
    pad = prob.active_mask(params)
    if not prob.constrained:
        return pad if pad is not None else jax.tree_util.tree_map(jnp.ones_like, params)
    eps = jnp.minimum(1e-8, kkt_residual(prob, params, grad)) if eps is None else eps
    lo = prob.box_lower(params)
    free = jax.tree_util.tree_map(lambda x, l, g: jnp.where((x - l <= eps) & (g > 0), 0.0, 1.0),
                                  params, lo, grad)
    return free if pad is None else jax.tree_util.tree_map(jnp.multiply, free, pad)


def _hvp(prob, params, v):
    return jax.jvp(jax.grad(prob.objective), (params,), (v,))[1]


def _flat_tangents(prob, params):
    """``(n, m)`` matrix of the symmetry tangents (ravel_pytree order), or None."""
    tang = prob.symmetry_tangents(params)
    if tang is None:
        return None
    flat = jax.vmap(lambda t: ravel_pytree(t)[0])(tang)
    return flat.T


def symmetry_basis(prob: Problem, params: Any, mask: Any = None) -> tuple[jax.Array, jax.Array]:
    r"""Orthonormal basis of the tangent space of the symmetry orbit through ``params``.

    The problem's generators (:meth:`ufm.Problem.symmetry_tangents`; for :class:`ufm.UFM` the
    rotations ``dH = A H``, ``dW = -W A`` of the feature space) are flattened in
    ``jax.flatten_util.ravel_pytree`` order into the columns of ``T`` and orthonormalized through
    their Gram matrix ``T^T T = V S^2 V^T``: the columns of ``U = T V S^{-1}`` with
    ``s_i > 1e-6 s_max`` (re-orthonormalized once) span the orbit's tangent space
    ``{d/ds exp(sA) . theta}``. With a ``mask`` (1 on free components, 0 on components
    held at an active bound) only the combinations ``T c`` that vanish on every masked component
    are kept (``c`` in the null space of the masked rows): those move along the orbit without
    leaving the active face.

    Args:
        prob: a Problem.
        params: the point.
        mask: optional pytree like ``params`` (see :func:`free_mask`).

    Returns:
        ``(P, s)``: ``P`` of shape ``(n, r)`` whose nonzero columns (first) are orthonormal and
        span the tangent space (columns for dropped directions are exactly zero, last), and ``s``
        the ``r`` singular values of ``T`` in descending order (0 for dropped directions);
        ``r = 0`` when the problem has no continuous symmetry. Traceable (``jit``/``vmap``).

    References:
        Absil, Mahony & Sepulchre, Optimization Algorithms on Matrix Manifolds (2008), ch. 3
        (quotients by a group action); the rotation symmetry of the UFM: Zhu et al., NeurIPS 2021
        (arXiv 2105.02375).
    """
    flat = ravel_pytree(params)[0]
    T = _flat_tangents(prob, params)
    if T is None or T.shape[1] == 0:
        return jnp.zeros((flat.size, 0), flat.dtype), jnp.zeros((0,), flat.dtype)
    tiny = jnp.finfo(flat.dtype).tiny
    if mask is not None and prob.constrained:
        # combinations T c that vanish on the masked rows: the null space of the (m x m) Gram
        # matrix of the masked rows (never an (n x n) factorization)
        m = ravel_pytree(mask)[0]
        scale = jnp.maximum(jnp.max(jnp.linalg.norm(T, axis=0)), tiny)
        e, V = jnp.linalg.eigh(_sym(T.T @ ((1.0 - m)[:, None] * T)))
        null = jnp.sqrt(jnp.maximum(e, 0.0)) <= _SYM_RTOL * scale
        T = T @ (V * null[None, :])
    return _orthonormal_range(T)


def _sym(G):
    return 0.5 * (G + G.T)


def _orthonormal_range(T):
    """``(U, s)``: an orthonormal basis of ``range(T)`` and the singular values of ``T``.

    Through the small ``(m x m)`` Gram matrix ``T^T T = V S^2 V^T`` (``U = T V S^{-1}`` on the
    kept values, ``s_i > _SYM_RTOL s_max``), then one re-orthonormalization pass, since the Gram
    matrix squares the condition number. For ``T`` of shape ``(n, m)`` with ``n >> m`` (6,730 x 496
    for a K = 10, n = 20, d = 32 UFM) this costs two ``n m^2`` products instead of a thin SVD
    (measured 2.3 s -> well under 0.1 s on two CPU cores).
    """
    tiny = jnp.finfo(T.dtype).tiny
    e, V = jnp.linalg.eigh(_sym(T.T @ T))
    sv = jnp.sqrt(jnp.maximum(e, 0.0))
    keep = sv > _SYM_RTOL * jnp.maximum(jnp.max(sv), tiny)
    U = (T @ V) * jnp.where(keep, 1.0 / jnp.where(keep, sv, 1.0), 0.0)[None, :]
    e2, V2 = jnp.linalg.eigh(_sym(U.T @ U))  # kept columns: e2 ~ 1; dropped: exactly 0
    ok = e2 > 0.5
    U = (U @ V2) * jnp.where(ok, 1.0 / jnp.sqrt(jnp.where(ok, e2, 1.0)), 0.0)[None, :]
    order = jnp.argsort(-sv)
    return U[:, jnp.argsort(~ok)], jnp.where(keep, sv, 0.0)[order]


def _projector(prob, params, mask, exclude_symmetry, implicit=True):
    """``Pi``: projection onto the free components orthogonal to the symmetry tangents; through
    the structured ``p x p`` solves of :func:`ufm.solvers._symmetry.implicit_projector` where the
    family has them (``implicit``), else through the dense basis of :func:`symmetry_basis`."""
    m = ravel_pytree(mask)[0]
    sym = implicit_projector(prob, params) if exclude_symmetry and implicit else None
    if sym is not None:  # no box constraints here (implicit_projector declines them): mask == 1,
        # except on entries the objective never reads, which the symmetry tangents never touch
        return (lambda v: sym(m * v)) if prob.active_mask(params) is not None else sym
    P = symmetry_basis(prob, params, mask)[0] if exclude_symmetry else None
    Pt = None if P is None else P.T

    def proj(v):
        v = m * v
        if Pt is not None and Pt.shape[0]:
            # two fused products over Pt (r, n), not P @ (P.T @ v), which XLA:CPU runs through a
            # transposed-operand dot (measured 69 ms against ~5 ms a projection, 6,730 x 496)
            c = jnp.sum(Pt * v[None, :], axis=1)
            v = v - jnp.sum(Pt * c[:, None], axis=0)
        return v

    return proj


def _spectrum_dense(prob, params, mask, exclude_symmetry, implicit=True):
    flat, unravel = ravel_pytree(params)
    Hm = jax.hessian(lambda z: prob.objective(unravel(z)))(flat)
    Hm = 0.5 * (Hm + Hm.T)
    proj = _projector(prob, params, mask, exclude_symmetry, implicit)
    Pi = jax.vmap(proj, in_axes=1, out_axes=1)(jnp.eye(flat.size, dtype=flat.dtype))
    c = 1.0 + jnp.max(jnp.sum(jnp.abs(Hm), axis=1))  # Gershgorin: above every eigenvalue of Hm
    B = Pi @ Hm @ Pi + c * (jnp.eye(flat.size, dtype=flat.dtype) - Pi)
    w, V = jnp.linalg.eigh(0.5 * (B + B.T))
    inside = jnp.sum((Pi @ V) ** 2, axis=0) > 0.5
    w = jnp.where(inside, w, jnp.inf)
    order = jnp.argsort(w)
    return w[order], V[:, order]


def _back(V, c):
    """``V^T c`` as a fused product (see :func:`_projector`)."""
    return jnp.sum(V * c[:, None], axis=0)


def _spectrum_lanczos(prob, params, mask, exclude_symmetry, key, num_iters, implicit=True):
    """Lanczos with full reorthogonalization on ``Pi H Pi`` started inside the subspace."""
    flat, unravel = ravel_pytree(params)
    proj = _projector(prob, params, mask, exclude_symmetry, implicit)

    def hvp(v):  # v lies in the subspace (every Lanczos vector is projected), so Pi H Pi v = Pi H v
        return ravel_pytree(_hvp(prob, params, unravel(v)))[0]

    v0 = proj(jax.random.normal(key, flat.shape, dtype=flat.dtype))
    n0 = jnp.linalg.norm(v0)
    v0 = jnp.where(n0 > 0, v0 / jnp.where(n0 > 0, n0, 1.0), 0.0)
    V = jnp.zeros((num_iters + 1, flat.size), flat.dtype).at[0].set(v0)  # a spare last row

    def body(j, carry):
        V, alpha, beta, alive = carry
        w = hvp(V[j])
        a = jnp.dot(w, V[j])
        w = w - _back(V, V @ w)  # full reorthogonalization (rows beyond j are still zero)
        w = proj(w - _back(V, V @ w))  # one projection a step: Pi commutes with the V rows' span
        bnorm = jnp.linalg.norm(w)
        scale = jnp.maximum(1.0, jnp.abs(a))
        alive_next = alive & (bnorm > 1e-10 * scale)
        nxt = jnp.where(alive_next, w / jnp.where(bnorm > 0, bnorm, 1.0), 0.0)
        V = V.at[j + 1].set(nxt)  # row num_iters is the spare one, dropped below
        alpha = alpha.at[j].set(jnp.where(alive, a, 0.0))
        beta = beta.at[j].set(jnp.where(alive_next, bnorm, 0.0))
        return V, alpha, beta, alive_next

    alpha = jnp.zeros(num_iters, flat.dtype)
    beta = jnp.zeros(num_iters, flat.dtype)
    valid = jnp.zeros(num_iters, bool)

    def body2(j, carry):
        V, alpha, beta, alive, valid = carry
        valid = valid.at[j].set(alive)
        V, alpha, beta, alive = body(j, (V, alpha, beta, alive))
        return V, alpha, beta, alive, valid

    V, alpha, beta, _, valid = jax.lax.fori_loop(0, num_iters, body2, (V, alpha, beta, n0 > 0, valid))
    V = V[:num_iters]
    bound = jnp.max(jnp.where(valid, jnp.abs(alpha), 0.0)) + 2.0 * jnp.max(beta)
    big = 2.0 * bound + 1.0
    T = jnp.diag(jnp.where(valid, alpha, big)) + jnp.diag(beta[:-1], 1) + jnp.diag(beta[:-1], -1)
    w, Y = jnp.linalg.eigh(T)
    w = jnp.where(w < 0.5 * (bound + big), w, jnp.inf)
    return w, V.T @ Y


@register_compiled
@functools.partial(jax.jit, static_argnames=("method", "exclude_symmetry", "num_iters", "implicit"))
def spectrum(prob: Problem, params: Any, key: jax.Array, method: str, exclude_symmetry: bool,
             num_iters: int, implicit: bool = True) -> tuple[jax.Array, jax.Array]:
    """The compiled spectrum of :func:`hessian_spectrum` (``method`` ``"dense"`` or ``"lanczos"``,
    static), on the free components of ``params``: ``(ascending eigenvalues, eigenvectors)``.
    ``implicit=False`` removes the symmetry directions through the dense basis of
    :func:`symmetry_basis` even where the structured projection applies (the reference)."""
    grad = jax.grad(prob.objective)(params)
    mask = free_mask(prob, params, grad)
    if method == "dense":
        return _spectrum_dense(prob, params, mask, exclude_symmetry, implicit)
    return _spectrum_lanczos(prob, params, mask, exclude_symmetry, key, num_iters, implicit)


RITZ_TOL = 1e-11  # relative Ritz residual at which the certificate's Lanczos run stops


def smallest_eig(prob: Problem, params: Any, key: jax.Array, method: str,
                 num_iters: int) -> tuple[jax.Array, jax.Array]:
    r"""The curvature check of :func:`ufm.minimize`: ``(min_eig, unit eigenvector)`` of
    ``Pi nabla^2 f Pi`` on ``S``, the free components orthogonal to the symmetry orbit.

    What ``min_eig`` is, and what bounds it:

    - ``method="dense"``: the smallest eigenvalue of the projected Hessian (``eigh``; exact up to
      round-off);
    - ``method="lanczos"``: the smallest Ritz value ``theta_1`` of a Lanczos run with full
      reorthogonalization on ``Pi H Pi`` from a random start in ``S``
      (:func:`ufm.solvers._lanczos.smallest_ritz`). It is an upper bound on
      ``lambda_min(Pi H Pi |_S)`` (Cauchy interlacing), so ``min_eig < -eig_tol`` always proves
      a strict saddle (the Ritz vector has Rayleigh quotient ``theta_1``). The run stops when
      an eigenvalue of ``Pi H Pi`` lies within the Ritz residual norm
      ``r_1 <= 1e-11 max(1, ||T||)`` of ``theta_1`` (``T`` the Lanczos tridiagonal matrix, its
      norm bounded by Gershgorin), or after ``num_iters`` steps. That eigenvalue is ``lambda_min`` when the random start has a
      component along the bottom eigenspace (with probability one) and the Krylov space has
      separated it, which is what the residual test detects in practice; it is the same
      statement as a fixed number of Lanczos steps, stopped as soon as the value is resolved.

    The symmetry directions are removed by the structured projection of
    :mod:`ufm.solvers._symmetry` where the family has one (no dense tangent basis), else by the
    basis of :func:`symmetry_basis`.
    """
    grad = jax.grad(prob.objective)(params)
    mask = free_mask(prob, params, grad)
    if method == "dense":
        w, V = _spectrum_dense(prob, params, mask, True)
        return w[0], V[:, 0]
    flat, unravel = ravel_pytree(params)
    proj = _projector(prob, params, mask, True)

    def matvec(v):  # v lies in S (every Lanczos vector is projected), so Pi H Pi v = Pi H v
        return proj(ravel_pytree(_hvp(prob, params, unravel(v)))[0])

    v0 = proj(jax.random.normal(key, flat.shape, dtype=flat.dtype))
    ritz = smallest_ritz(matvec, v0, max_steps=num_iters, tol=jnp.asarray(RITZ_TOL, flat.dtype), proj=proj)
    return ritz.value, ritz.vector


def resolve_method(method: str, size: int) -> str:
    """``"auto"`` -> ``"dense"`` up to 2000 parameters, else ``"lanczos"``."""
    if method not in ("auto", "dense", "lanczos"):
        raise ValueError(f"method must be 'auto', 'dense' or 'lanczos', got method={method!r}")
    if method == "auto":
        return "dense" if size <= _DENSE_MAX else "lanczos"
    return method


def hessian_spectrum(prob: Problem, params: Any, k: int | None = None, *, exclude_symmetry: bool = True,
                     method: str = "auto", num_iters: int = 200,
                     seed: int = 0) -> tuple[jax.Array, jax.Array]:
    r"""Smallest eigenvalues (and eigenvectors) of the Hessian on the free, non-symmetry directions.

    The second-order condition at a critical point ``theta`` is ``v^T nabla^2 f(theta) v >= 0`` for
    every feasible direction ``v``. Two kinds of directions are removed first:

    - components held at an active bound (:func:`free_mask`): the Hessian is restricted to the
      free components (Bertsekas' projected Newton rule);
    - with ``exclude_symmetry``, the tangent space of the symmetry orbit
      (:func:`symmetry_basis`), along which ``f`` is constant, so the Hessian is exactly zero
      there at a critical point: those zeros say nothing about the minimizer. For the rotation
      orbit of :class:`ufm.UFM` and of a ReLU :class:`ufm.DeepUFM` the projection is applied
      with ``d x d`` solves (:mod:`ufm.solvers._symmetry`), never through the dense basis.

    With ``Pi`` the orthogonal projection onto what is left (``S``), the spectrum of
    ``Pi nabla^2 f Pi`` restricted to ``S`` is computed:

    - ``"dense"``: the full Hessian (forward-over-reverse differentiation) and ``eigh`` of
      ``Pi H Pi + c (I - Pi)`` with ``c`` above the Gershgorin bound; eigenvectors outside ``S``
      are reported as ``+inf``. Exact (round-off aside);
    - ``"lanczos"``: ``num_iters`` Lanczos steps with full reorthogonalization on the operator
      ``v -> Pi H Pi v`` started inside ``S``; its Ritz values approach the extreme eigenvalues
      from inside the spectrum (the smallest Ritz value is an upper bound on the smallest
      eigenvalue, converged when the gap is resolved);
    - ``"auto"``: dense up to 2000 parameters.

    Args:
        prob: a Problem.
        params: the point (usually ``sol.params``).
        k: how many of the smallest eigenvalues to return (default: all that were computed).
        exclude_symmetry: remove the symmetry directions (default ``True``).
        method: ``"auto"``, ``"dense"`` or ``"lanczos"``.
        num_iters: Lanczos steps (default 200, twice the 100 of :func:`ufm.minimize`'s curvature
            check: that check needs only the smallest eigenvalue, a spectrum needs ``k`` Ritz
            values resolved, and ``ufm.landscape`` reads its spectra with this default).
        seed: Lanczos start vector.

    Returns:
        ``(eigenvalues, eigenvectors)``: ascending eigenvalues, shape ``(k,)`` (``+inf`` entries
        are directions outside ``S``, or Lanczos steps past an invariant subspace), and the
        eigenvectors as columns ``(n, k)`` in ``jax.flatten_util.ravel_pytree(params)`` order.
        JAX arrays; traceable with ``method`` given.

    References:
        Nocedal & Wright, Numerical Optimization, Thm. 12.6 (second-order conditions); Golub &
        Van Loan, Matrix Computations, ch. 10 (Lanczos); Zhu et al., NeurIPS 2021
        (arXiv 2105.02375), the strict saddles of the UFM.
    """
    size = int(ravel_pytree(params)[0].size)
    method = resolve_method(method, size)
    num_iters = int(min(num_iters, size))
    w, V = spectrum(prob, params, jax.random.PRNGKey(seed), method, bool(exclude_symmetry), num_iters)
    if k is not None:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be an integer >= 1, got k={k!r}")
        w, V = w[:k], V[:, :k]
    return w, V


def hessian_extreme_eigs(prob: Problem, params: Any, *, method: str = "auto", num_iters: int = 200,
                         seed: int = 0) -> tuple[float, float]:
    r"""Smallest and largest eigenvalue of the Hessian of ``prob.objective`` at ``params``.

    For constrained problems the Hessian is restricted to the free components (those not held at
    an active bound, see :func:`free_mask`), which is the second-order condition at a KKT point.
    Symmetry directions are *not* removed here (see :func:`hessian_spectrum` for that).

    Args:
        prob: a Problem.
        params: the point (usually ``sol.params``).
        method: ``"dense"``, ``"lanczos"`` or ``"auto"`` (as in :func:`hessian_spectrum`).
        num_iters: the most Lanczos steps for each end (default 200). Above 2000 parameters
            (``"auto"``) each end is a restarted Lanczos run on ``H`` (and ``-H``) that stops when
            its Ritz residual is within ``1e-11 max(1, ||T||)`` (as the certificate's), storing 33
            vectors; its Ritz value is a Rayleigh quotient, so ``lambda_min`` is approached from
            above and ``lambda_max`` from below. ``minimize(hessian=True)`` reports these numbers.
        seed: Lanczos start vector.

    Returns:
        ``(lambda_min, lambda_max)`` as Python floats.

    References:
        Golub & Van Loan, Matrix Computations, ch. 10 (Lanczos); Bertsekas, SIAM J. Control
        Optim. 1982 (projected Newton, free and active sets); the strict-saddle analysis of
        Zhu et al., NeurIPS 2021 (arXiv 2105.02375).
    """
    size = int(ravel_pytree(params)[0].size)
    if resolve_method(method, size) == "dense":
        w, _ = hessian_spectrum(prob, params, exclude_symmetry=False, method="dense", seed=seed)
        w = np.asarray(w)
        w = w[np.isfinite(w)]
        return float(w[0]), float(w[-1])
    low, high = _extreme_ritz(prob, params, jax.random.PRNGKey(seed), int(min(num_iters, size)))
    return float(low), float(high)


@register_compiled
@functools.partial(jax.jit, static_argnames=("num_iters",))
def _extreme_ritz(prob, params, key, num_iters):
    """Both ends of the free-component Hessian's spectrum by two restarted Lanczos runs
    (:func:`ufm.solvers._lanczos.smallest_ritz` on ``H`` and on ``-H``), each stopped when its
    Ritz residual resolves the value (the certificate's tolerance) or after ``num_iters`` steps.
    Only 33 vectors are stored, not a basis of ``num_iters`` rows with eigenvectors."""
    grad = jax.grad(prob.objective)(params)
    flat, unravel = ravel_pytree(params)
    proj = _projector(prob, params, free_mask(prob, params, grad), False)

    def hv(v):
        return proj(ravel_pytree(_hvp(prob, params, unravel(v)))[0])

    v0 = proj(jax.random.normal(key, flat.shape, dtype=flat.dtype))
    tol = jnp.asarray(RITZ_TOL, flat.dtype)
    low = smallest_ritz(hv, v0, max_steps=num_iters, tol=tol, proj=proj)
    high = smallest_ritz(lambda v: -hv(v), v0, max_steps=num_iters, tol=tol, proj=proj)
    return low.value, -high.value

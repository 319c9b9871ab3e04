r"""Second-order certificates: extreme eigenvalues of the Hessian from Hessian-vector products."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from ufm.solvers._common import kkt_residual

__all__ = ["hessian_extreme_eigs", "free_mask"]

_DENSE_MAX = 2000


def free_mask(prob, params, grad, eps=None):
    r"""1.0 on free components, 0.0 on the (epsilon-)active bound constraints.

    A component is active when ``theta_i - lo_i <= eps`` and ``g_i > 0`` (Bertsekas' projected
    Newton rule), with ``eps = min(1e-8, KKT residual)`` by default. Without constraints every
    component is free.
    """
    if not prob.constrained:
        return jax.tree_util.tree_map(jnp.ones_like, params)
    eps = jnp.minimum(1e-8, kkt_residual(prob, params, grad)) if eps is None else eps
    lo = prob.lower_bound(params)
    return jax.tree_util.tree_map(lambda x, l, g: jnp.where((x - l <= eps) & (g > 0), 0.0, 1.0), params, lo, grad)


def _hvp(prob, params, v):
    return jax.jvp(jax.grad(prob.objective), (params,), (v,))[1]


@jax.jit
def _dense_hessian(prob, params):
    flat, unravel = ravel_pytree(params)
    f = lambda z: prob.objective(unravel(z))  # noqa: E731
    return jax.hessian(f)(flat)


@functools.partial(jax.jit, static_argnames=("num_iters",))
def _lanczos(prob, params, mask, key, num_iters):
    """Lanczos with full reorthogonalization on the masked Hessian; returns the Ritz values."""
    flat, unravel = ravel_pytree(params)
    mflat, _ = ravel_pytree(mask)

    def op(v):
        return mflat * ravel_pytree(_hvp(prob, params, unravel(mflat * v)))[0]

    v0 = mflat * jax.random.normal(key, flat.shape, dtype=flat.dtype)
    v0 = v0 / jnp.linalg.norm(v0)
    V = jnp.zeros((num_iters, flat.size), flat.dtype).at[0].set(v0)

    def body(j, carry):
        V, alpha, beta = carry
        w = op(V[j])
        a = jnp.dot(w, V[j])
        w = w - V.T @ (V @ w)  # full reorthogonalization (rows beyond j are still zero)
        w = w - V.T @ (V @ w)
        bnorm = jnp.linalg.norm(w)
        nxt = jnp.where(bnorm > 1e-300, w / jnp.where(bnorm > 0, bnorm, 1.0), 0.0)
        V = jnp.where(j + 1 < num_iters, V.at[jnp.minimum(j + 1, num_iters - 1)].set(nxt), V)
        return V, alpha.at[j].set(a), beta.at[j].set(bnorm)

    alpha = jnp.zeros(num_iters, flat.dtype)
    beta = jnp.zeros(num_iters, flat.dtype)
    V, alpha, beta = jax.lax.fori_loop(0, num_iters, body, (V, alpha, beta))
    return alpha, beta


def hessian_extreme_eigs(prob, params, *, method: str = "auto", num_iters: int = 200, seed: int = 0):
    r"""Smallest and largest eigenvalue of the Hessian of ``prob.objective`` at ``params``.

    For constrained problems the Hessian is restricted to the free components (those not held at
    an active bound, see :func:`free_mask`), which is the second-order condition at a KKT point.

    Args:
        prob: a Problem.
        params: the point (usually ``sol.params``).
        method: ``"dense"`` (the full Hessian by forward-over-reverse differentiation and
            ``eigvalsh``; exact, for up to a few thousand parameters), ``"lanczos"`` (``num_iters``
            Lanczos steps with full reorthogonalization on Hessian-vector products; the Ritz values
            converge to the extreme eigenvalues from inside the spectrum), or ``"auto"`` (dense
            when the parameter count is at most 2000).
        num_iters: Lanczos steps.
        seed: Lanczos start vector.

    Returns:
        ``(lambda_min, lambda_max)`` as Python floats.

    References:
        Golub & Van Loan, Matrix Computations, ch. 10 (Lanczos); Bertsekas, SIAM J. Control
        Optim. 1982 (projected Newton, free and active sets); the strict-saddle analysis of
        Zhu et al., NeurIPS 2021 (arXiv 2105.02375).
    """
    if method not in ("auto", "dense", "lanczos"):
        raise ValueError(f"method must be 'auto', 'dense' or 'lanczos', got method={method!r}")
    grad = jax.grad(prob.objective)(params)
    mask = free_mask(prob, params, grad)
    flat_mask = np.asarray(ravel_pytree(mask)[0]) > 0.5
    size = flat_mask.size
    if method == "dense" or (method == "auto" and size <= _DENSE_MAX):
        Hm = np.asarray(_dense_hessian(prob, params))
        Hm = 0.5 * (Hm + Hm.T)[np.ix_(flat_mask, flat_mask)]
        eig = np.linalg.eigvalsh(Hm)
        return float(eig[0]), float(eig[-1])
    m = int(min(num_iters, int(flat_mask.sum())))
    alpha, beta = _lanczos(prob, params, mask, jax.random.PRNGKey(seed), m)
    alpha, beta = np.asarray(alpha), np.asarray(beta)
    # stop at the first invariant subspace (beta ~ 0)
    k = m
    for j in range(m - 1):
        if beta[j] <= 1e-12 * max(1.0, np.abs(alpha[: j + 1]).max()):
            k = j + 1
            break
    T = np.diag(alpha[:k]) + np.diag(beta[: k - 1], 1) + np.diag(beta[: k - 1], -1)
    eig = np.linalg.eigvalsh(T)
    return float(eig[0]), float(eig[-1])

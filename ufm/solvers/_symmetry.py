r"""The symmetry directions of the certificate, projected implicitly (no dense tangent basis).

The rotation orbit of a one-layer classifier, ``(W, H) -> (W Q^T, Q H)`` with ``Q`` in ``O(p)``,
has the tangent map ``tau(A) = (-W A, A H)`` on skew-symmetric ``A`` (``p x p``). With the
Frobenius inner product on both sides its adjoint is

.. math:: \tau^*(V_W, V_H) = \mathrm{skew}(V_H H^\top - W^\top V_W),
    \qquad \mathrm{skew}(X) = (X - X^\top)/2,

and the Gram operator is a Lyapunov map, ``tau^* tau(A) = (A M + M A)/2`` with
``M = W^T W + H H^T``. In the eigenbasis ``M = U diag(mu) U^T`` it is diagonal: the basis
matrix ``U (E_ij - E_ji) U^T`` has the eigenvalue ``(mu_i + mu_j)/2``. The orthogonal projection
onto the orbit's tangent space is therefore

.. math:: P v = \tau(A^*), \qquad U^\top A^* U = \Big[\frac{2\,(U^\top \tau^* v\, U)_{ij}}
    {\mu_i + \mu_j}\Big]_{i \ne j},

one ``p x p`` eigendecomposition per point and two ``p x N`` products per projection, never the
``(parameters x p(p-1)/2)`` matrix of tangents. Pairs with ``sqrt(mu_i + mu_j)`` below ``1e-6``
of the largest are dropped: those are the tangent directions that :func:`ufm.symmetry_basis`
drops (its singular values are ``sqrt(mu_i + mu_j)`` up to a common factor), so both projectors
remove the same subspace.

The shift ``b -> b + s 1`` of a free bias under a shift-invariant loss lives on the bias alone,
orthogonal to the rotations: its projection subtracts the mean of ``v_b``.

:func:`implicit_projector` recognizes the families whose generators are these (the problems
that use :meth:`ufm.UFM.symmetry_tangents` unchanged, and :class:`ufm.DeepUFM` with a ReLU
activation, whose only rotation acts on ``(W_1, H)``), without box constraints. Any other
problem gets ``None`` and the certificate falls back to the dense basis of
:func:`ufm.symmetry_basis`.

References:
    Absil, Mahony & Sepulchre, Optimization Algorithms on Matrix Manifolds (2008), ch. 3
    (quotients by a group action); Zhu et al., NeurIPS 2021 (arXiv 2105.02375), the rotation
    invariance of the UFM.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from ufm.problems import UFM, DeepUFM, PaddedUFM, Problem

__all__ = ["implicit_projector", "rotation_pair", "rotation_projection", "SYM_RTOL"]

SYM_RTOL = 1e-6  # relative singular-value cut of the tangent directions (that of symmetry_basis)


def _ufm_pair(params: Any) -> tuple[Callable, Callable]:
    return (lambda p: (p.W, p.H)), (lambda p, W, H: p._replace(W=W, H=H))


def _deep_pair(params: Any) -> tuple[Callable, Callable]:
    return (lambda p: (p.Ws[0], p.H)), (lambda p, W, H: p._replace(Ws=(W,) + tuple(p.Ws[1:]), H=H))


def rotation_pair(prob: Problem) -> tuple[Callable, Callable] | None:
    """``(get, put)`` for the pair ``(W, H)`` that the feature rotation acts on, or ``None`` when
    ``prob``'s symmetry generators are not (only) that rotation and the bias shift."""
    if getattr(prob, "constrained", False):
        return None
    gen = getattr(type(prob), "symmetry_tangents", None)
    if gen is UFM.symmetry_tangents or gen is PaddedUFM.symmetry_tangents:
        return _ufm_pair(None)
    if gen is DeepUFM.symmetry_tangents and (prob.L == 1 or not (prob.activation == "linear"
                                                                   and prob.pattern is None)):
        return _deep_pair(None)
    return None


def _skew(X: jax.Array) -> jax.Array:
    return 0.5 * (X - X.T)


def rotation_projection(W: jax.Array, H: jax.Array, active: jax.Array | None = None) -> Callable:
    r"""``(V_W, V_H) -> tau(A*)``: the component of ``(V_W, V_H)`` along the tangent space of the
    orbit ``(W Q^T, Q H)`` (module docstring), with ``M = W^T W + H H^T`` decomposed once.

    ``active`` (``(p,)``, 0/1; a padded problem's feature mask, the padded rows of ``H`` and
    columns of ``W`` zero): only the rotations of the active coordinates, ``A_ij = 0`` unless
    ``i`` and ``j`` are active. ``M`` gets ``-1`` on the padded diagonal, so its padded
    eigenvectors (eigenvalue ``-1``, below every active one, ``M >= 0`` there) never mix with
    the active ones, and pairs that touch them are dropped."""
    p = H.shape[0]
    M = W.T @ W + H @ H.T
    if active is not None:
        M = M - jnp.diag(1.0 - active)
    mu, U = jnp.linalg.eigh(0.5 * (M + M.T))
    denom = mu[:, None] + mu[None, :]
    off = ~jnp.eye(p, dtype=bool)
    if active is not None:
        live = mu > -0.5
        off = off & live[:, None] & live[None, :]
    top = jnp.max(jnp.where(off, denom, 0.0))
    keep = off & (denom > SYM_RTOL**2 * jnp.maximum(top, jnp.finfo(W.dtype).tiny))
    inv = jnp.where(keep, 2.0 / jnp.where(keep, denom, 1.0), 0.0)

    def tangent_part(VW, VH):
        G = U.T @ _skew(VH @ H.T - W.T @ VW) @ U
        A = U @ (inv * G) @ U.T
        return -W @ A, A @ H

    return tangent_part


def implicit_projector(prob: Problem, params: Any) -> Callable | None:
    r"""``v -> v - P v`` on flat vectors (``ravel_pytree(params)`` order): the projection onto the
    orthogonal complement of the symmetry orbit's tangent space, applied with ``p x p`` solves
    (module docstring); ``None`` for a family without this structure (use the dense basis).

    Equal to ``v - B B^T v`` with ``B`` the orthonormal basis of :func:`ufm.symmetry_basis`
    (``tests/test_certificate_projected.py`` checks this to round-off by hypothesis).
    """
    pair = rotation_pair(prob)
    if pair is None:
        return None
    get, put = pair
    _, unravel = ravel_pytree(params)
    padded = isinstance(prob, PaddedUFM)
    W, H = prob.classifier(params) if padded else get(params)
    active = prob.feature_mask() if padded else None
    rotate = rotation_projection(W, H, active) if H.shape[0] > 1 else None
    shift = getattr(params, "b", None) is not None and getattr(prob.loss, "shift_invariant", False)
    free_b = jnp.where(prob.lam_b == 0, 1.0, 0.0) if shift else None
    cls = prob.class_mask() if padded else None  # the shift moves the active bias entries only

    def proj(v):
        vp = unravel(v)
        if rotate is not None:
            VW, VH = get(vp)
            TW, TH = rotate(VW, VH)
            vp = put(vp, VW - TW, VH - TH)
        if free_b is not None and cls is not None:
            vp = vp._replace(b=vp.b - free_b * cls * (jnp.sum(cls * vp.b) / jnp.sum(cls)))
        elif free_b is not None:
            vp = vp._replace(b=vp.b - free_b * jnp.mean(vp.b))
        return ravel_pytree(vp)[0]

    return proj

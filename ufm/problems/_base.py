"""What every ufm Problem provides, and the box-constraint machinery the solvers use.

A Problem is a frozen dataclass registered as a pytree: sizes are static fields, hyper-parameters
are float64 array leaves (so ``jax.vmap`` runs over them and a jitted solver is not recompiled
when they change). It offers pure methods only:

- ``init(key, scale)``: a random starting point (a pytree of parameters);
- ``objective(params)``: the scalar to minimize;
- ``box_lower(params)``: the lower corner of the feasible box, a pytree (``-inf`` where
  unconstrained); the feasible set is the box ``params >= box_lower``, and ``project`` clips onto it.

Solvers use nothing else, so any model family that provides these works with
:func:`ufm.minimize` and :func:`ufm.gradient_flow`.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from ufm._internal.validation import check_int

PyTree = Any
"""A pytree of arrays: the parameters of a Problem (a NamedTuple such as :class:`ufm.Params`)."""


class Problem:
    """Base class of the ufm model families (see the module docstring for the contract)."""

    def init(self, key: jax.Array, scale: float | None = None) -> PyTree:  # pragma: no cover
        """A random feasible starting point (a pytree of parameters), entries of size ``scale``."""
        raise NotImplementedError

    def objective(self, params: PyTree) -> jax.Array:  # pragma: no cover
        """The scalar the solvers minimize (a pure, differentiable function of ``params``)."""
        raise NotImplementedError

    def symmetry_tangents(self, params: PyTree) -> PyTree | None:
        r"""Tangent vectors of the continuous symmetries of ``objective`` at ``params``.

        A continuous symmetry is a Lie group ``G`` acting on the parameters with
        ``f(g . theta) = f(theta)`` for every ``g``; the tangent vectors ``d/ds (exp(s A) . theta)``
        at ``s = 0`` span the tangent space of the orbit, along which the Hessian at a critical
        point vanishes (differentiate ``f(exp(sA) theta) = f(theta)`` twice at ``s = 0``). The
        second-order certificate removes these directions.

        Returns:
            A pytree like ``params`` whose leaves carry a leading axis of length ``m`` (the
            ``m`` generators), or ``None`` when the model has no continuous symmetry (the default).
            The vectors need not be independent or normalized (:func:`ufm.solvers.symmetry_basis`
            orthonormalizes them); the feasible box is ignored here (the certificate keeps only
            the combinations that move no component held at its bound).
        """
        return None

    def smooth_piece(self, params: PyTree) -> Problem | None:
        """For a piecewise-smooth objective (ReLU models): the smooth problem that agrees with
        this one on the piece through ``params`` (host-side; concrete ``params``). ``None`` when
        the objective is smooth (the default); see :meth:`ufm.DeepUFM.smooth_piece`."""
        return None

    def smoothed(self, beta: ArrayLike) -> Problem | None:
        """A smooth surrogate of a piecewise-smooth objective with sharpness ``beta`` (``None`` for
        a smooth problem, the default); see :meth:`ufm.DeepUFM.smoothed`."""
        return None

    def piece_report(self, piece: Problem, params: PyTree) -> dict:
        """Whether ``params`` lies on ``piece`` (``consistent``), the units exactly at a kink
        (``kinks``) and ``gap = |f_piece - f|``; only for problems with :meth:`smooth_piece`."""
        raise NotImplementedError(f"{type(self).__name__} is smooth: it has no activation pieces")

    def constraints(self, params: PyTree) -> jax.Array:
        """``(M,)`` inequality constraints ``c(params) <= 0`` beyond the box (none by default);
        :func:`ufm.minimize` solves a problem with ``M > 0`` by an augmented Lagrangian."""
        return jnp.zeros((0,))

    def classifier(self, params: PyTree) -> tuple[jax.Array, jax.Array]:
        """``(W, H)``: the last linear classifier and the features it reads (shape ``(D, p)``,
        ``(p, N)``), so that metrics apply to any family. Subclasses override."""
        raise NotImplementedError(f"{type(self).__name__} does not expose its classifier and features")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Keep a subclass written for the old name working: one that defines ``lower_bound`` and
        not ``box_lower`` gets its ``lower_bound`` as ``box_lower``, with a DeprecationWarning."""
        super().__init_subclass__(**kwargs)
        if "lower_bound" in cls.__dict__ and "box_lower" not in cls.__dict__:
            warnings.warn(f"{cls.__name__} defines Problem.lower_bound, a deprecated name; define box_lower "
                          "(the feasible box) instead", DeprecationWarning, stacklevel=2)
            cls.box_lower = cls.__dict__["lower_bound"]

    def box_lower(self, params: PyTree) -> PyTree:
        """The lower corner of the feasible box ``params >= box_lower(params)``: a pytree matching
        ``params``, ``-inf`` everywhere by default (no constraint).

        Named for the box, not for a bound on the objective: a lower bound on the global minimum
        is :func:`ufm.global_certificate`'s ``lower_bound``.
        """
        return jax.tree_util.tree_map(lambda x: jnp.full_like(x, -jnp.inf), params)

    def lower_bound(self, params: PyTree) -> PyTree:
        """Deprecated name of :meth:`box_lower` (kept for one release)."""
        warnings.warn("Problem.lower_bound is deprecated; use Problem.box_lower (the feasible box)",
                      DeprecationWarning, stacklevel=2)
        return self.box_lower(params)

    @property
    def constrained(self) -> bool:
        """Whether ``box_lower`` is finite anywhere (decided statically)."""
        return False

    def active_mask(self, params: PyTree) -> PyTree | None:
        """1.0 on the entries of ``params`` the objective reads, 0.0 on those it never reads (a
        pytree like ``params``); ``None`` (the default): it reads every entry. The certificate
        holds unread entries like components at an active bound (a padded problem's padding)."""
        return None

    def project(self, params: PyTree) -> PyTree:
        """Euclidean projection onto the feasible box ``params >= box_lower(params)``."""
        if not self.constrained:
            return params
        return jax.tree_util.tree_map(jnp.maximum, params, self.box_lower(params))


def skew_basis(d: int) -> jax.Array:
    """``(d(d-1)/2, d, d)``: the generators ``E_ij - E_ji`` (``i < j``) of the Lie algebra of
    ``O(d)`` (skew-symmetric matrices)."""
    i, j = np.triu_indices(d, k=1)
    A = np.zeros((i.size, d, d))
    A[np.arange(i.size), i, j] = 1.0
    A[np.arange(i.size), j, i] = -1.0
    return jnp.asarray(A)


def stack_tangents(params: PyTree, **leaves: jax.Array) -> PyTree:
    """One stacked tangent pytree: the named leaves given (each with a leading axis ``m``), every
    other leaf zero (for example ``stack_tangents(params, W=dW, H=dH)``)."""
    m = jax.tree_util.tree_leaves(leaves)[0].shape[0]
    zeros = jax.tree_util.tree_map(lambda x: jnp.zeros((m,) + jnp.shape(x), jnp.result_type(x)), params)
    return zeros._replace(**leaves)


def concat_tangents(*stacks: PyTree | None) -> PyTree | None:
    """Concatenate stacked tangent pytrees along their leading axis (``None`` entries skipped)."""
    stacks = [s for s in stacks if s is not None]
    if not stacks:
        return None
    return jax.tree_util.tree_map(lambda *xs: jnp.concatenate(xs, axis=0), *stacks)


def rotation_tangents(params: PyTree, W: jax.Array, H: jax.Array) -> tuple[jax.Array, jax.Array]:
    r"""Tangents of the feature rotation ``H -> Q H``, ``W -> W Q^T`` (``Q`` in ``O(p)``):
    for each skew generator ``A``, ``dH = A H`` and ``dW = -W A`` (``W Q^T`` with
    ``Q = exp(sA)``, ``d/ds = W A^T = -W A``). Returns the pair ``(dW, dH)`` stacked."""
    A = skew_basis(H.shape[0])
    return -jnp.einsum("ip,mpq->miq", W, A), jnp.einsum("mpq,qn->mpn", A, H)


def bias_shift_tangent(prob: Problem, params: PyTree) -> PyTree | None:
    r"""``b -> b + s 1`` leaves a shift-invariant loss (``softmax(z + s 1) = softmax(z)``) unchanged;
    it is a symmetry of the objective only for a free bias (``lam_b = 0``). Returns the stacked
    tangent ``(1, ...)`` (zero when ``lam_b > 0``), or ``None`` without a bias or for a loss that
    is not shift invariant."""
    if params.b is None or not getattr(prob.loss, "shift_invariant", False):
        return None
    one = jnp.where(prob.lam_b == 0, 1.0, 0.0) * jnp.ones_like(params.b)
    return stack_tangents(params, b=one[None, :])


def features_lower(params: PyTree, nonneg: bool) -> PyTree:
    """The lower bound of a model whose only constraint is ``H >= 0`` (when ``nonneg``): 0 on
    ``params.H`` then, ``-inf`` on every other entry (``params``: a NamedTuple with a field ``H``)."""
    lo = jax.tree_util.tree_map(lambda x: jnp.full_like(x, -jnp.inf), params)
    return lo._replace(H=jnp.zeros_like(params.H)) if nonneg else lo


def normalize_counts(n: int | Sequence[int], K: int) -> tuple[int | tuple[int, ...], tuple[int, ...]]:
    """``n`` int (balanced) or a sequence of per-class counts -> (n as stored, counts tuple).

    A sequence of equal counts is stored as the int (balanced).
    """
    if isinstance(n, (numbers.Integral, np.integer)) and not isinstance(n, bool):
        n = check_int("n", n, 1)
        return n, (n,) * K
    try:
        counts = tuple(n)
    except TypeError:
        raise ValueError(f"n must be an int >= 1 or a sequence of K ints >= 1, got n={n!r}") from None
    if len(counts) != K:
        raise ValueError(f"n must have K={K} per-class counts, got {len(counts)}: n={n!r}")
    counts = tuple(check_int("n", c, 1, hint=f" (in n={n!r})") for c in counts)
    if len(set(counts)) == 1:
        return counts[0], counts
    return counts, counts


class ClassSizes:
    """Sizes shared by the classification models: needs attributes ``K``, ``n`` (int or per-class
    counts), ``loss`` and ``lam_b``."""

    @property
    def counts(self) -> tuple[int, ...]:
        """Per-class sample counts ``(n_1, ..., n_K)``."""
        return normalize_counts(self.n, self.K)[1]

    @property
    def N(self) -> int:
        """Total number of samples."""
        return sum(self.counts)

    @property
    def balanced(self) -> bool:
        """Whether every class has the same count (``n`` stored as an int)."""
        return isinstance(self.n, int)

    @property
    def D(self) -> int:
        """Output (logit) dimension: ``K``, or ``encoding.shape[0]`` for MSE encodings."""
        return self.loss.out_dim(self.K)

    @property
    def has_bias(self) -> bool:
        """Whether the model has a bias ``b`` (``lam_b`` is not ``None``)."""
        return self.lam_b is not None


def affine_logits(W: jax.Array, H: jax.Array, b: jax.Array | None) -> jax.Array:
    """``Z = W H + b 1^T``, shape ``(D, N)`` (``b`` may be ``None``)."""
    Z = W @ H
    return Z if b is None else Z + b[:, None]


def weight_decay(prob: Problem, params: PyTree) -> jax.Array:
    """``lam_W/2 ||W||^2 + lam_H/2 ||H||^2 + lam_b/2 ||b||^2`` for parameters with ``W, H, b``."""
    pen = 0.5 * prob.lam_W * jnp.sum(params.W**2) + 0.5 * prob.lam_H * jnp.sum(params.H**2)
    if params.b is not None:
        pen = pen + 0.5 * prob.lam_b * jnp.sum(params.b**2)
    return pen


class AffineClassifier:
    """The data and penalty terms of a one-layer model with parameters ``(W, H, b)``: needs
    ``loss``, ``labels`` (the labels the loss sees) and ``lam_W``, ``lam_H``, ``lam_b``."""

    def logits(self, params: PyTree) -> jax.Array:
        """``Z = W H + b 1^T``, shape ``(D, N)``."""
        return affine_logits(params.W, params.H, params.b)

    def data_term(self, params: PyTree) -> jax.Array:
        """``(1/N) sum_i loss(W h_i + b, y_i)`` with ``y = self.labels``."""
        return jnp.mean(self.loss(self.logits(params), jnp.asarray(self.labels)))

    def penalty(self, params: PyTree) -> jax.Array:
        """``lam_W/2 ||W||^2 + lam_H/2 ||H||^2 + lam_b/2 ||b||^2``."""
        return weight_decay(self, params)

    def classifier(self, params: PyTree) -> tuple[jax.Array, jax.Array]:
        """``(W, H)``: the classifier and the features it reads."""
        return params.W, params.H

    def symmetry_tangents(self, params: PyTree) -> PyTree | None:
        r"""Rotations of the feature space, ``H -> Q H``, ``W -> W Q^T`` (``Q`` in ``O(d)``): they
        keep ``W H``, ``||W||`` and ``||H||`` (and every distance between columns of ``H``), so
        ``f`` is invariant. Tangents ``dH = A H``, ``dW = -W A`` for skew ``A``
        (:func:`rotation_tangents`); plus ``b -> b + s 1`` for a free bias with a shift-invariant
        loss (:func:`bias_shift_tangent`)."""
        dW, dH = rotation_tangents(params, params.W, params.H)
        rot = stack_tangents(params, W=dW, H=dH) if params.H.shape[0] > 1 else None
        return concat_tangents(rot, bias_shift_tangent(self, params))

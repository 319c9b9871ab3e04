"""What every ufm Problem provides, and the box-constraint machinery the solvers use.

A Problem is a frozen dataclass registered as a pytree: sizes are static fields, hyper-parameters
are float64 array leaves (so ``jax.vmap`` runs over them and a jitted solver is not recompiled
when they change). It offers pure methods only:

- ``init(key, scale)``: a random starting point (a pytree of parameters);
- ``objective(params)``: the scalar to minimize;
- ``lower_bound(params)``: a pytree of lower bounds (``-inf`` where unconstrained); the feasible
  set is the box ``params >= lower_bound``, and ``project`` clips onto it.

Solvers use nothing else, so any model family that provides these works with
:func:`ufm.minimize` and :func:`ufm.gradient_flow`.
"""

from __future__ import annotations

import numbers

import jax
import jax.numpy as jnp
import numpy as np

from ufm._validate import check_int


class Problem:
    """Base class of the ufm model families (see the module docstring for the contract)."""

    def init(self, key: jax.Array, scale: float | None = None):  # pragma: no cover
        """A random feasible starting point (a pytree of parameters), entries of size ``scale``."""
        raise NotImplementedError

    def objective(self, params) -> jax.Array:  # pragma: no cover
        """The scalar the solvers minimize (a pure, differentiable function of ``params``)."""
        raise NotImplementedError

    def lower_bound(self, params):
        """Pytree of lower bounds matching ``params``; ``-inf`` everywhere by default."""
        return jax.tree_util.tree_map(lambda x: jnp.full_like(x, -jnp.inf), params)

    @property
    def constrained(self) -> bool:
        """Whether ``lower_bound`` is finite anywhere (decided statically)."""
        return False

    def project(self, params):
        """Euclidean projection onto the feasible box ``params >= lower_bound(params)``."""
        if not self.constrained:
            return params
        return jax.tree_util.tree_map(jnp.maximum, params, self.lower_bound(params))


def normalize_counts(n, K):
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
        return isinstance(self.n, int)

    @property
    def D(self) -> int:
        """Output (logit) dimension: ``K``, or ``encoding.shape[0]`` for MSE encodings."""
        return self.loss.out_dim(self.K)

    @property
    def has_bias(self) -> bool:
        return self.lam_b is not None


def affine_logits(W, H, b):
    """``Z = W H + b 1^T``, shape ``(D, N)`` (``b`` may be ``None``)."""
    Z = W @ H
    return Z if b is None else Z + b[:, None]


def weight_decay(prob, params):
    """``lam_W/2 ||W||^2 + lam_H/2 ||H||^2 + lam_b/2 ||b||^2`` for parameters with ``W, H, b``."""
    pen = 0.5 * prob.lam_W * jnp.sum(params.W**2) + 0.5 * prob.lam_H * jnp.sum(params.H**2)
    if params.b is not None:
        pen = pen + 0.5 * prob.lam_b * jnp.sum(params.b**2)
    return pen


class AffineClassifier:
    """The data and penalty terms of a one-layer model with parameters ``(W, H, b)``: needs
    ``loss``, ``labels`` (the labels the loss sees) and ``lam_W``, ``lam_H``, ``lam_b``."""

    def logits(self, params) -> jax.Array:
        """``Z = W H + b 1^T``, shape ``(D, N)``."""
        return affine_logits(params.W, params.H, params.b)

    def data_term(self, params) -> jax.Array:
        """``(1/N) sum_i loss(W h_i + b, y_i)`` with ``y = self.labels``."""
        return jnp.mean(self.loss(self.logits(params), jnp.asarray(self.labels)))

    def penalty(self, params) -> jax.Array:
        """``lam_W/2 ||W||^2 + lam_H/2 ||H||^2 + lam_b/2 ||b||^2``."""
        return weight_decay(self, params)

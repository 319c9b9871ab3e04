r"""The binary fixed-frame sub-problem of the memorization-dilation model.

Nguyen, Levie, Lienen, Kutyniok & Huellermeier (ICLR 2023, arXiv 2206.05530, section 4) study how
far a mislabelled feature moves from its clean class mean (dilation) when the classifier and the
clean means are frozen. :class:`FixedFrame` is that sub-problem for ``K = 2`` with nonnegative
features: the classifier ``W`` and the clean mean ``h_0`` are fixed by two scalars ``a``, ``rho``
(``w_k = a kp (e_k - 1/2 1)``, ``kp = sqrt 2``, ``h_0 = rho e_0``), and ``M`` noisy features of
class 0 labelled 1 are the variables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike
import numpy as np

from ufm._internal.validation import as_float_array
from ufm.losses import CrossEntropy, LabelSmoothing, Loss
from ufm.problems._base import Problem
from ufm.problems._md import smoothed_norm

__all__ = ["FixedFrame", "FFParams"]


class FFParams(NamedTuple):
    """Noisy features ``H: (d, M)`` (true class 0, label 1) and, for ``variant="radius"``, the
    shared radius ``r: (1,)``."""

    H: jax.Array  # shape=(d, M), float64
    r: jax.Array | None  # shape=(1,), float64, or None


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class FixedFrame(Problem):
    r"""Binary fixed-frame memorization-dilation sub-problem, nonnegative features.

    With ``W = a kp (e_k - 1/2 1)_k`` (``2 x d``, ``kp = sqrt 2``), ``h_0 = rho e_0`` and
    ``phi_eps(x) = sqrt(||x||^2 + eps^2) - eps``:

    .. math:: \min_{H \ge 0}\ \frac1M\sum_{i} \ell(W h_i, 1) + E, \quad
        E = \frac{\lambda}{M}\sum_i \varphi_\varepsilon(h_i - h_0)\ (\text{per\_sample}),\quad
        E = \frac{\lambda}{\eta} r\ \text{s.t.}\ \varphi_\varepsilon(h_i - h_0) \le r\ (\text{radius}),

    ``eta = M/n`` (the full model's terms divided by ``M/N``). The problem holds the model only: the
    radius constraints are exposed through :meth:`constraints`, and :func:`ufm.minimize` solves them
    with its augmented Lagrangian (multipliers and KKT residuals live in the Solution), as for
    :class:`ufm.MemorizationDilation`.

    Args:
        n: clean samples per class (sets ``eta = M/n``).
        d: feature dimension (``>= 2``).
        loss: :class:`ufm.CrossEntropy` or :class:`ufm.LabelSmoothing`.
        a: the frozen frame's scales (``> 0``).
        rho: the frozen frame's scales (``> 0``).
        lam: expressivity weight (``>= 0``).
        variant: ``"per_sample"`` (MD-P) or ``"radius"`` (MD-R).
        M: number of noisy features.
        eps: smoothing of the norm.

    References:
        Nguyen et al., ICLR 2023 (arXiv 2206.05530), section 4.
    """

    n: int = field(metadata={"static": True})
    d: int = field(metadata={"static": True})
    loss: Loss
    a: jax.Array
    rho: jax.Array
    lam: ArrayLike  # stored as a float64 array
    variant: str = field(default="per_sample", metadata={"static": True})
    M: int = field(default=1, metadata={"static": True})
    eps: jax.Array = 1e-6

    K = 2
    lam_b = None
    balanced = True
    nonneg = True
    has_bias = False

    def __post_init__(self):
        if not isinstance(self.loss, (CrossEntropy, LabelSmoothing)):
            raise ValueError(f"loss must be CrossEntropy or LabelSmoothing, got {type(self.loss).__name__}")
        if self.variant not in ("per_sample", "radius"):
            raise ValueError(f"variant must be 'per_sample' or 'radius', got {self.variant!r}")
        for name, lo in (("n", 1), ("d", 2), ("M", 1)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
                raise ValueError(f"{name} must be an int >= {lo}, got {name}={v!r}")
        for name in ("a", "rho", "lam", "eps"):
            object.__setattr__(self, name, as_float_array(getattr(self, name)))
            v = getattr(self, name)
            if isinstance(v, jax.core.Tracer):  # rebuilt inside a jitted solver: validated already
                continue
            v = np.asarray(v)
            if v.ndim == 0 and not (np.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be finite and >= 0, got {name}={float(v)}")

    @property
    def eta(self) -> float:
        """Noise level ``M / n``."""
        return self.M / self.n

    @property
    def alpha(self) -> jax.Array | float:
        """Label-smoothing parameter (0 for cross-entropy)."""
        return self.loss.alpha if isinstance(self.loss, LabelSmoothing) else 0.0

    @property
    def num_noisy(self) -> int:
        """Number of noisy features, ``M``."""
        return self.M

    def describe(self) -> str:
        """A one-line description of the instance (for reports)."""
        lname = type(self.loss).__name__ + (f"({float(self.alpha):.4g})" if self.alpha else "")
        return (f"FixedFrame {self.variant} M={self.M} n={self.n} d={self.d} {lname} a={float(self.a):.5g} "
                f"rho={float(self.rho):.5g} lam={float(self.lam):.5g}")

    def frame(self) -> tuple[jax.Array, jax.Array]:
        """``W (2, d)`` and ``h_0 (d,)``."""
        e = jnp.eye(self.d)[:2]
        W = self.a * np.sqrt(2.0) * (e - 0.5 * jnp.sum(e, axis=0, keepdims=True))
        return W, self.rho * e[0]

    def distances(self, params: FFParams) -> jax.Array:
        """``phi_eps(h_i - h_0)`` per noisy feature, ``(M,)``."""
        _, h0 = self.frame()
        return smoothed_norm(params.H - h0[:, None], self.eps)

    def constraints(self, params: FFParams) -> jax.Array:
        """``phi_eps(h_i - h_0) - r <= 0`` (radius variant; empty otherwise)."""
        return self.distances(params) - params.r[0] if self.variant == "radius" else jnp.zeros((0,))

    def objective(self, params: FFParams) -> jax.Array:
        """The data term plus the expressivity cost (the radius constraints are separate)."""
        W, _ = self.frame()
        data = jnp.mean(self.loss(W @ params.H, jnp.ones((self.M,), dtype=int)))
        if self.variant == "radius":
            return data + self.lam / self.eta * params.r[0]
        return data + self.lam * jnp.mean(self.distances(params))

    def init(self, key: jax.Array, scale: float | None = None) -> FFParams:
        """Noisy features near ``h_0`` (absolute value of a Gaussian perturbation), radius 1
        (``scale`` is not used: the perturbation has standard deviation 0.3)."""
        _, h0 = self.frame()
        H = jnp.abs(h0[:, None] + 0.3 * jax.random.normal(key, (self.d, self.M)))
        return FFParams(H, jnp.ones((1,)) if self.variant == "radius" else None)

    @property
    def constrained(self) -> bool:
        """Always: ``H >= 0`` (and ``r >= 0`` for the radius variant)."""
        return True

    def box_lower(self, params: FFParams) -> FFParams:
        """``H >= 0`` and ``r >= 0``."""
        return FFParams(jnp.zeros_like(params.H), None if params.r is None else jnp.zeros_like(params.r))

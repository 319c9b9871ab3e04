r"""The regularized unconstrained feature model (UFM)."""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike
import numpy as np

from ufm._internal.validation import check_int, scalar_param
from ufm.losses import Loss
from ufm.problems._base import AffineClassifier, ClassSizes, Problem, features_lower, normalize_counts

__all__ = ["UFM", "Params"]


class Params(NamedTuple):
    """Parameters of a UFM.

    Attributes:
        W: ``(D, d)`` classifier, row ``k`` is ``w_k`` (``D = K`` except for MSE encodings).
        H: ``(d, N)`` features, columns grouped by class (class 0 first).
        b: ``(D,)`` bias, or ``None`` for the bias-free model.
    """

    W: jax.Array  # shape=(D, d), float64
    H: jax.Array  # shape=(d, N), float64
    b: jax.Array | None  # shape=(D,), float64, or None


def check_penalties(prob: Any) -> None:
    """Validate and store the one-layer model's ``lam_W``, ``lam_H`` (numbers ``>= 0``) and
    ``lam_b`` (``None``: no bias term, or a number ``>= 0``), and ``nonneg`` as a bool, in place on
    a frozen dataclass (:class:`UFM` and the padded model share this contract)."""
    for name in ("lam_W", "lam_H", "lam_b"):
        value = getattr(prob, name)
        if value is None and name != "lam_b":
            raise ValueError(f"{name} must be a number >= 0, got None")
        if value is not None:
            object.__setattr__(prob, name, scalar_param(name, value))
    object.__setattr__(prob, "nonneg", bool(prob.nonneg))


class SignedOrNonnegative:
    """The feasible set of the one-layer model: ``H >= 0`` when ``nonneg``, else everything (shared
    by :class:`UFM` and the padded model)."""

    nonneg: bool

    @property
    def constrained(self) -> bool:
        """Whether the features are constrained (``nonneg``: ``H >= 0``)."""
        return self.nonneg

    def box_lower(self, params: Params) -> Params:
        """``H >= 0`` when ``nonneg``; everything else unbounded."""
        return features_lower(params, self.nonneg)


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class UFM(SignedOrNonnegative, ClassSizes, AffineClassifier, Problem):
    r"""Regularized unconstrained feature model (canonical objective of Zhu et al. 2021).

    .. math::
        f(W, H, b) = \frac1N \sum_{i=1}^N \ell(W h_i + b, y_i)
            + \frac{\lambda_W}2 \lVert W\rVert_F^2 + \frac{\lambda_H}2 \lVert H\rVert_F^2
            + \frac{\lambda_b}2 \lVert b\rVert_2^2

    Class ``k`` has ``n_k`` samples, ``N = sum_k n_k``; the columns of ``H`` are grouped by class
    (``labels`` gives the class of each column).

    Args:
        K: number of classes, ``K >= 2``.
        n: samples per class, an int (balanced) or a sequence of ``K`` ints (imbalanced).
        d: feature dimension, ``d >= 1``. ``d < K - 1`` is a valid model (generalized collapse);
            theorems that need ``d >= K - 1`` say so through their assumptions.
        loss: a :class:`ufm.losses.Loss` (``CrossEntropy()``, ``LabelSmoothing(alpha)``,
            ``Focal(gamma)``, ``MSE(encoding)``).
        lam_W: weight decay on ``W`` and ``H``, ``>= 0``.
        lam_H: weight decay on ``W`` and ``H``, ``>= 0``.
        lam_b: ``None`` for no bias, ``0.0`` for a free (unregularized) bias, ``> 0`` for a
            regularized bias.
        nonneg: constrain ``H >= 0`` (features after a ReLU; Nguyen et al. ICLR 2023).

    .. warning:: Papers scale the penalties differently (``lam/2`` versus ``lam``, a mean versus a
       sum over samples, Tirer & Bruna's ``1/(2K)`` and ``1/(2Kn)``); :mod:`ufm.conventions`
       converts their numbers to this objective.

    References:
        Mixon, Parshall & Pi 2020 (arXiv 2011.11619), the UFM; Zhu et al., NeurIPS 2021
        (arXiv 2105.02375), this regularized form.
    """

    K: int = field(metadata=dict(static=True))
    n: int | tuple[int, ...] = field(metadata=dict(static=True))
    d: int = field(metadata=dict(static=True))
    loss: Loss
    lam_W: ArrayLike = 5e-3  # stored as a float64 array
    lam_H: ArrayLike = 5e-3  # stored as a float64 array
    lam_b: ArrayLike | None = None  # stored as a float64 array
    nonneg: bool = field(default=False, metadata=dict(static=True))

    def __post_init__(self):
        if not isinstance(self.K, (numbers.Integral, np.integer)) or isinstance(self.K, bool) or self.K < 2:
            raise ValueError(f"K must be an integer >= 2 (number of classes), got K={self.K!r}")
        object.__setattr__(self, "K", int(self.K))
        n, _ = normalize_counts(self.n, self.K)
        object.__setattr__(self, "n", n)
        object.__setattr__(self, "d", check_int("d", self.d, 1))
        if not isinstance(self.loss, Loss):
            raise ValueError(
                f"loss must be one of ufm.CrossEntropy(), ufm.LabelSmoothing(alpha), "
                f"ufm.Focal(gamma), ufm.MSE(encoding); got loss={self.loss!r}"
            )
        self.loss.check(self.K)
        check_penalties(self)

    # ---- sizes (counts, N, balanced, D, has_bias: ClassSizes) --------------------------------
    @property
    def labels(self) -> np.ndarray:
        """Class of each column of ``H``: ``n_1`` zeros, then ``n_2`` ones, and so on."""
        return np.repeat(np.arange(self.K), self.counts)

    # ---- the Problem contract ----------------------------------------------------------------
    def init(self, key: jax.Array, scale: float | None = None) -> Params:
        """Gaussian start with entry standard deviation ``scale`` (default ``1/sqrt(d)``); bias 0.

        With ``nonneg=True`` the features start at ``|H|``.
        """
        scale = 1.0 / np.sqrt(self.d) if scale is None else scale
        kW, kH = jax.random.split(key)
        W = scale * jax.random.normal(kW, (self.D, self.d), dtype=float)
        H = scale * jax.random.normal(kH, (self.d, self.N), dtype=float)
        if self.nonneg:
            H = jnp.abs(H)
        b = jnp.zeros((self.D,), dtype=float) if self.has_bias else None
        return Params(W, H, b)

    def objective(self, params: Params) -> jax.Array:
        """The canonical objective (class docstring)."""
        return self.data_term(params) + self.penalty(params)


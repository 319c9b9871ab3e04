r"""The memorization-dilation (M-D) model: positive features under label noise.

Source: Nguyen, Levie, Lienen, Kutyniok & Huellermeier, "Memorization-Dilation: Modeling Neural
Collapse Under Label Noise", ICLR 2023 (arXiv 2206.05530), section 4. The paper's idea: a network of
limited expressivity cannot place the feature of a mislabelled sample anywhere; moving it away from
where its true class sits costs something, so memorizing a wrong label dilates the class cluster.

.. warning:: What we could read of the paper. The stored copies reachable from this project (the
   arXiv abstract and introduction on tomesphere.com/paper/2206.05530 and on the ICLR 2023 text dump
   at object.cloud.sdsc.edu, searched in 2024-2026 copies; the authors' experiment repository
   github.com/julilien/MemorizationDilation, which holds only the network-training code) do not
   contain section 4, so the paper's exact M-D objective is **not** implemented here. The two
   variants below are ufm's own explicit formalizations of the idea (docs/theory.md#memorization-dilation,
   "MD-R" and "MD-P"); ``variant="radius"`` is the default because it is the closer reading of the
   paper's summary (one dilation per class traded against expressivity).
"""

from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from ufm._internal.validation import check_int, check_range, scalar_param
from ufm.losses import Loss
from ufm.problems._base import AffineClassifier, ClassSizes, Problem

__all__ = ["MDParams", "MemorizationDilation", "smoothed_norm"]

VARIANTS = ("radius", "per_sample")


class MDParams(NamedTuple):
    """Parameters of a :class:`MemorizationDilation` problem.

    Attributes:
        W: ``(D, d)`` classifier (``D = K`` for CE/LS).
        H: ``(d, N)`` nonnegative features, columns grouped by *true* class.
        b: ``(D,)`` bias, or ``None`` for the bias-free model.
        r: ``(K,)`` dilation radii (``variant="radius"``), or ``None`` (``"per_sample"``).
    """

    W: jax.Array  # shape=(D, d), float64
    H: jax.Array  # shape=(d, N), float64
    b: jax.Array | None  # shape=(D,), float64, or None
    r: jax.Array | None  # shape=(K,), float64, or None


def smoothed_norm(x: jax.Array, eps: ArrayLike, axis: int = 0) -> jax.Array:
    r"""Smoothed Euclidean norm along ``axis``.

    .. math:: \varphi_\varepsilon(x) = \sqrt{\lVert x\rVert_2^2 + \varepsilon^2} - \varepsilon

    ``phi(0) = 0``, ``0 <= ||x|| - phi(x) <= eps``, and ``phi`` is smooth (curvature ``1/eps`` at 0),
    so L-BFGS/SPG and Newton-CG apply. Its gradient ``x / sqrt(||x||^2 + eps^2)`` differs from the
    unit vector by a relative ``eps^2 / (2 ||x||^2)``.

    Args:
        x: array; the norm is taken along ``axis``.
        eps: smoothing ``> 0``.
        axis: reduction axis (default 0: columns of a ``(d, M)`` matrix).
    """
    return jnp.sqrt(jnp.sum(x**2, axis=axis) + eps**2) - eps


def _noise_counts(K: int, n: int, eta, noise) -> np.ndarray:
    """``C[k, j]``: how many samples of true class ``k`` carry label ``j`` (diagonal: clean)."""
    if noise is None:
        m = int(np.floor(eta * n + 0.5))
        C = np.zeros((K, K), dtype=int)
        for k in range(K):
            for i in range(m):  # cyclic over the other classes: uniform and reproducible
                C[k, (k + 1 + i % (K - 1)) % K] += 1
    else:
        T = np.asarray(noise, dtype=float)
        C = np.floor(n * T + 0.5).astype(int)
        np.fill_diagonal(C, 0)
    np.fill_diagonal(C, n - C.sum(axis=1))
    return C


def _check_noise(K, n, eta, noise):
    if noise is not None:
        if eta is not None:
            raise ValueError("pass either eta (uniform noise rate) or noise (a K x K transition matrix), "
                             "not both")
        T = np.asarray(noise, dtype=float)
        bad = T.shape != (K, K) or np.any(~np.isfinite(T)) or np.any(T < 0)
        if bad or np.any(np.abs(T.sum(1) - 1) > 1e-9):
            raise ValueError(f"noise must be a row-stochastic K x K matrix (K={K}, entries >= 0, rows "
                             f"summing to 1; T[k, j] = P(label j | true class k)), got noise={noise!r}")
        return None, tuple(tuple(float(v) for v in row) for row in T)
    eta = 0.1 if eta is None else eta
    if isinstance(eta, bool) or not isinstance(eta, (numbers.Real, np.floating, np.integer)):
        raise ValueError(f"eta must be a number in [0, 1) (a static noise rate), got eta={eta!r}")
    check_range("eta", eta, 0.0, 1.0)
    return float(eta), None


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class MemorizationDilation(ClassSizes, AffineClassifier, Problem):
    r"""The memorization-dilation model (ufm's two explicit variants; see the module warning).

    True classes ``k = 0..K-1`` with ``n`` samples each, ``N = K n``; columns of ``H`` grouped by true
    class, clean samples first. A fraction ``eta`` of each class carries a wrong label ``ytilde_i``
    (or the counts ``round(n T[k, j])`` of a transition matrix ``T``); the loss sees only the noisy
    labels ``ytilde`` (:attr:`labels`). The *clean mean* of class ``k`` is the mean of the features of
    its clean samples, a function of ``H`` (not a separate variable):
    ``hbar_k = (1/|C_k|) sum_{i in C_k} h_i``. With ``phi = smoothed_norm(., eps)``,

    .. math::
        f = \frac1N \sum_i \ell(W h_i + b, \tilde y_i) + \frac{\lambda_W}2\lVert W\rVert_F^2
            + \frac{\lambda_H}2 \lVert H\rVert_F^2 + \frac{\lambda_b}2\lVert b\rVert^2 + E,
        \qquad H \ge 0,

    - ``variant="radius"`` (MD-R, default): ``E = (lam/K) sum_k r_k`` with ``r >= 0`` and, for every
      noisy sample ``i`` of true class ``k``, the constraint ``c_i = phi(h_i - hbar_k) - r_k <= 0``.
      (``lam/K = lam n / N``: the radius is paid once per sample of the class, so that one noisy
      sample's loss ``(1/N) l`` and the radius trade at ``q = lam/(eta g) + alpha/2`` in the binary
      fixed frame, docs/theory.md#memorization-dilation.) The constraints ``c(x) <= 0`` are exposed by
      :meth:`constraints`; :func:`ufm.minimize` solves them with its augmented-Lagrangian method
      (``ufm.solvers``), which reports the multipliers and the KKT residuals. The problem holds
      the model only.
    - ``variant="per_sample"`` (MD-P): ``E = (lam/N) sum_{noisy i} phi(h_i - hbar_{y_i})``, smooth;
      ``ufm.minimize`` and ``ufm.gradient_flow`` apply directly.

    Neither variant is claimed to be the paper's objective (it could not be read here).

    Args:
        K: classes, ``>= 2``. n: samples per class, ``>= 2`` (a class needs a clean sample).
        d: feature dimension, ``>= 1`` (the positive frame needs ``d >= K``).
        loss: ``ufm.CrossEntropy()``, ``ufm.LabelSmoothing(alpha)`` or ``ufm.MSE()``.
        lam_W: weight decay, ``>= 0``. lam: expressivity strength, ``>= 0``.
        lam_H: weight decay, ``>= 0``. lam: expressivity strength, ``>= 0``.
        eta: static noise rate in ``[0, 1)``: ``round(eta n)`` samples of each class get a wrong
            label, assigned cyclically to ``k+1, k+2, ...`` (mod ``K``), so the instance is
            reproducible; default 0.1. Static because it decides which columns are noisy.
        noise: instead of ``eta``, a row-stochastic ``(K, K)`` transition matrix (static).
        variant: ``"radius"`` or ``"per_sample"``.
        lam_b: ``None`` (no bias), ``0.0`` (free) or ``> 0``.
        eps: norm smoothing ``> 0`` (default ``1e-6``).

    Raises:
        ValueError: naming the argument and its range (before compiling).

    References:
        Nguyen et al., ICLR 2023 (arXiv 2206.05530), the memorization-dilation idea and the
        positive-feature layer-peeled model.
    """

    K: int = field(metadata={"static": True})
    n: int = field(metadata={"static": True})
    d: int = field(metadata={"static": True})
    loss: Loss
    lam_W: ArrayLike = 5e-3  # stored as a float64 array
    lam_H: ArrayLike = 5e-3  # stored as a float64 array
    lam: ArrayLike = 1e-2  # stored as a float64 array
    eta: float | None = field(default=None, metadata={"static": True})
    noise: Any = field(default=None, metadata={"static": True})
    variant: str = field(default="radius", metadata={"static": True})
    lam_b: ArrayLike | None = None  # stored as a float64 array
    eps: jax.Array = 1e-6

    def __post_init__(self):
        if not isinstance(self.K, (numbers.Integral, np.integer)) or isinstance(self.K, bool) or self.K < 2:
            raise ValueError(f"K must be an integer >= 2 (number of classes), got K={self.K!r}")
        object.__setattr__(self, "K", int(self.K))
        object.__setattr__(self, "n", check_int("n", self.n, 2, hint=" (each class needs a clean sample)"))
        object.__setattr__(self, "d", check_int("d", self.d, 1))
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got variant={self.variant!r}")
        if not isinstance(self.loss, Loss):
            raise ValueError(f"loss must be ufm.CrossEntropy(), ufm.LabelSmoothing(alpha) or ufm.MSE(); "
                             f"got loss={self.loss!r}")
        self.loss.check(self.K)
        eta, noise = _check_noise(self.K, self.n, self.eta, self.noise)
        object.__setattr__(self, "eta", eta)
        object.__setattr__(self, "noise", noise)
        worst = int((self.n - np.diag(self.counts_matrix)).max())
        if worst > self.n - 1:
            raise ValueError(f"eta={self.eta} with n={self.n} relabels {worst} of {self.n} samples of a "
                             "class; each class needs a clean sample (lower eta or raise n)")
        for name in ("lam_W", "lam_H", "lam", "lam_b"):
            value = getattr(self, name)
            if value is None and name != "lam_b":
                raise ValueError(f"{name} must be a number >= 0, got None")
            if value is not None:
                object.__setattr__(self, name, scalar_param(name, value))
        object.__setattr__(self, "eps", scalar_param("eps", self.eps, positive=True))

    # ---- sizes and labels --------------------------------------------------------------------
    @property
    def counts_matrix(self) -> np.ndarray:
        """``C[k, j]``: samples of true class ``k`` labelled ``j``; diagonal: clean counts."""
        return _noise_counts(self.K, self.n, self.eta, self.noise)

    @property
    def true_labels(self) -> np.ndarray:
        """True class of each column: ``n`` zeros, then ``n`` ones, ..."""
        return np.repeat(np.arange(self.K), self.n)

    @property
    def labels(self) -> np.ndarray:
        """Observed (noisy) label of each column, the one the loss sees: per class, clean samples
        first, then the noisy blocks labelled ``k+1, k+2, ...`` (mod ``K``)."""
        C = self.counts_matrix
        out = []
        for k in range(self.K):
            out += [k] * int(C[k, k])
            for s in range(1, self.K):
                j = (k + s) % self.K
                out += [j] * int(C[k, j])
        return np.asarray(out, dtype=int)

    @property
    def noisy_mask(self) -> np.ndarray:
        """``(N,)`` bool: the label differs from the true class."""
        return self.labels != self.true_labels

    @property
    def noisy_index(self) -> np.ndarray:
        """Columns of the noisy samples."""
        return np.flatnonzero(self.noisy_mask)

    @property
    def num_noisy(self) -> int:
        """Number of noisy (relabelled) samples."""
        return int(self.noisy_mask.sum())

    # ---- model terms --------------------------------------------------------------------------
    def clean_means(self, H: jax.Array) -> jax.Array:
        """``(d, K)``: column ``k`` is the mean of the clean features of true class ``k``."""
        clean = ~self.noisy_mask
        A = np.zeros((self.N, self.K))
        A[np.flatnonzero(clean), self.true_labels[clean]] = 1.0
        A /= A.sum(axis=0, keepdims=True)
        return H @ jnp.asarray(A)

    def distances(self, params: MDParams) -> jax.Array:
        """``(M,)``: ``phi(h_i - hbar_{y_i})`` for the noisy columns (smoothed norm)."""
        idx = self.noisy_index
        hbar = self.clean_means(params.H)[:, self.true_labels[idx]]
        return smoothed_norm(params.H[:, idx] - hbar, self.eps)

    def constraints(self, params: MDParams) -> jax.Array:
        """``(M,)``: ``c_i = phi(h_i - hbar_{y_i}) - r_{y_i} <= 0`` (radius variant; else empty)."""
        if self.variant != "radius":
            return jnp.zeros((0,))
        return self.distances(params) - params.r[self.true_labels[self.noisy_index]]

    def expressivity(self, params: MDParams) -> jax.Array:
        """``E``: ``(lam/K) sum_k r_k`` (radius) or ``(lam/N) sum_noisy phi`` (per_sample)."""
        if self.variant == "radius":
            return self.lam * jnp.sum(params.r) / self.K
        return self.lam * jnp.sum(self.distances(params)) / self.N

    def model_objective(self, params: MDParams) -> jax.Array:
        """The M-D objective ``f`` without the augmented-Lagrangian term (class docstring)."""
        return self.data_term(params) + self.penalty(params) + self.expressivity(params)

    def objective(self, params: MDParams) -> jax.Array:
        """The M-D objective ``f`` (class docstring); the radius constraints are separate
        (:meth:`constraints`), handled by the constrained solver of :func:`ufm.minimize`."""
        return self.model_objective(params)

    # ---- the Problem contract ----------------------------------------------------------------
    def init(self, key: jax.Array, scale: float | None = None) -> MDParams:
        """Gaussian ``W``, ``|Gaussian|`` ``H`` (entry scale ``1/sqrt(d)``), ``b = 0``, radii at the
        initial distances."""
        scale = 1.0 / np.sqrt(self.d) if scale is None else scale
        kW, kH = jax.random.split(key)
        W = scale * jax.random.normal(kW, (self.D, self.d), dtype=float)
        H = jnp.abs(scale * jax.random.normal(kH, (self.d, self.N), dtype=float))
        b = jnp.zeros((self.D,), dtype=float) if self.has_bias else None
        r = None
        if self.variant == "radius":
            r = jnp.full((self.K,), scale, dtype=float)
        return MDParams(W, H, b, r)

    @property
    def constrained(self) -> bool:
        """Always: ``H >= 0`` (and ``r >= 0`` for the radius variant)."""
        return True

    def box_lower(self, params: MDParams) -> MDParams:
        """``H >= 0`` and ``r >= 0``; ``W`` and ``b`` free."""
        inf = lambda x: jnp.full_like(x, -jnp.inf)  # noqa: E731
        b_lo = None if params.b is None else inf(params.b)
        r_lo = None if params.r is None else jnp.zeros_like(params.r)
        return MDParams(inf(params.W), jnp.zeros_like(params.H), b_lo, r_lo)

r"""Unconstrained feature models whose data are per-sample targets: multi-label sets, real vectors.

Two families share the solvers (:func:`ufm.minimize`, :func:`ufm.gradient_flow`) and the metrics
(:mod:`ufm.metrics` takes ``H`` and the integer ``labels``: here the index of each sample's
target group, so ``nc1`` measures collapse onto the groups):

- :class:`MultiLabelUFM`: multi-hot label sets and the pick-all-label cross-entropy (Li, Li, Wang
  & Qu, ICML 2024, arXiv 2310.15903);
- :class:`RegressionUFM`: real targets and the squared error (Andriopoulos, Dong, Guo, Zhao &
  Ross, NeurIPS 2024, arXiv 2409.04180).

Both use ufm's canonical scaling (``docs/theory.md#canonical-objective``: a mean over the ``N``
samples and ``lam/2`` penalties. Parameters are :class:`ufm.Params` ``(W, H, b)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import combinations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike
import numpy as np

from ufm._internal.validation import as_float_array, check_int, check_nonneg, is_concrete
from ufm.problems._base import Problem, affine_logits, weight_decay
from ufm.problems._ufm import Params

__all__ = ["MultiLabelUFM", "RegressionUFM", "label_set_targets"]


def _check_lams(prob) -> None:
    for name in ("lam_W", "lam_H", "lam_b"):
        value = getattr(prob, name)
        if value is None and name != "lam_b":
            raise ValueError(f"{name} must be a number >= 0, got None")
        if value is not None:
            check_nonneg(name, value)
            object.__setattr__(prob, name, as_float_array(value))


def _as_target_matrix(name: str, Y) -> np.ndarray:
    """A concrete 2-D finite float array (lists, tuples, NumPy and JAX values accepted)."""
    try:
        arr = np.asarray(Y, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a 2-D array of numbers, got {name}={Y!r}") from None
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"{name} must be a 2-D array of shape (rows >= 1, N >= 1), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return arr


def _group_labels(Y: np.ndarray) -> np.ndarray:
    """Index of each column's distinct target (groups numbered by first appearance)."""
    _, first, inverse = np.unique(Y.T, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))  # unique sorts rows; renumber by first appearance
    return order[np.asarray(inverse).reshape(-1)]


@dataclass(frozen=True)
class _TargetModel(Problem):
    """Shared parts: the fields, their validation, sizes, the parameters ``(W, H, b)``, penalties,
    grouping of targets. Subclasses add ``sample_losses`` and may check ``Y`` in ``_check_targets``."""

    Y: jax.Array
    d: int = field(metadata=dict(static=True))
    lam_W: ArrayLike = 5e-3  # stored as a float64 array
    lam_H: ArrayLike = 5e-3  # stored as a float64 array
    lam_b: ArrayLike | None = None  # stored as a float64 array

    def __post_init__(self):
        Y = None
        if is_concrete(self.Y) or isinstance(self.Y, (list, tuple, str)):
            Y = _as_target_matrix("Y", self.Y)
            self._check_targets(Y)
        object.__setattr__(self, "d", check_int("d", self.d, 1))
        _check_lams(self)
        if Y is not None:
            object.__setattr__(self, "Y", jnp.asarray(Y, dtype=jnp.float64))

    def _check_targets(self, Y: np.ndarray) -> None:
        """Family-specific checks of the concrete targets (raise ``ValueError``)."""

    @property
    def N(self) -> int:
        """Number of samples (columns of ``Y``)."""
        return int(np.shape(self.Y)[1])

    @property
    def D(self) -> int:
        """Output dimension (rows of ``W`` and of ``Y``)."""
        return int(np.shape(self.Y)[0])

    @property
    def has_bias(self) -> bool:
        """Whether the model has a bias ``b`` (``lam_b`` is not ``None``)."""
        return self.lam_b is not None

    @property
    def labels(self) -> np.ndarray:
        """Group of each sample: samples with identical targets share a label (0, 1, ... in order
        of first appearance); pass it to :mod:`ufm.metrics` (``K=self.num_groups``)."""
        return _group_labels(np.asarray(self.Y))

    @property
    def num_groups(self) -> int:
        """Number of distinct targets."""
        return int(self.labels.max()) + 1

    def describe(self) -> str:
        """A compact instance description (for reports)."""
        bias = "none" if self.lam_b is None else f"{float(self.lam_b):.4g}"
        return (f"{type(self).__name__} D={self.D} N={self.N} groups={self.num_groups} d={self.d} "
                f"lam_W={float(self.lam_W):.4g} lam_H={float(self.lam_H):.4g} lam_b={bias}")

    def init(self, key: jax.Array, scale: float | None = None) -> Params:
        """Gaussian start with entry standard deviation ``scale`` (default ``1/sqrt(d)``); bias 0."""
        scale = 1.0 / np.sqrt(self.d) if scale is None else scale
        kW, kH = jax.random.split(key)
        W = scale * jax.random.normal(kW, (self.D, self.d), dtype=jnp.float64)
        H = scale * jax.random.normal(kH, (self.d, self.N), dtype=jnp.float64)
        b = jnp.zeros((self.D,), dtype=jnp.float64) if self.has_bias else None
        return Params(W, H, b)

    def logits(self, params: Params) -> jax.Array:
        """``Z = W H + b 1^T``, shape ``(D, N)``."""
        return affine_logits(params.W, params.H, params.b)

    def penalty(self, params: Params) -> jax.Array:
        """``lam_W/2 ||W||^2 + lam_H/2 ||H||^2 + lam_b/2 ||b||^2``."""
        return weight_decay(self, params)

    def objective(self, params: Params) -> jax.Array:
        """The mean data term plus the penalties (class docstring)."""
        return jnp.mean(self.sample_losses(self.logits(params))) + self.penalty(params)


def label_set_targets(K: int, counts: Mapping[int, int]) -> np.ndarray:
    r"""Multi-hot targets of every label set of each multiplicity, ``counts[m]`` copies each.

    For ``counts = {1: n_1, 2: n_2}`` the columns are ``n_1`` copies of each ``e_k``, then ``n_2``
    copies of each ``e_k + e_l`` (``k < l``), so ``N = sum_m n_m C(K, m)``. This is the data set
    that is balanced within each multiplicity (Li et al., ICML 2024, arXiv 2310.15903).

    Args:
        K: number of classes, ``K >= 2``.
        counts: mapping multiplicity ``m`` (``1 <= m <= K``) -> copies ``n_m >= 1``.

    Returns:
        float64 array of shape ``(K, N)`` with 0/1 entries.
    """
    K = check_int("K", K, 2)
    if not hasattr(counts, "items") or not counts:
        raise ValueError(f"counts must be a non-empty mapping multiplicity -> copies, got counts={counts!r}")
    cols = []
    for m, c in sorted(counts.items()):
        m = check_int("counts (multiplicity)", m, 1)
        if m > K:
            raise ValueError(f"counts: multiplicity must lie in [1, K={K}], got {m}")
        c = check_int("counts (copies)", c, 1)
        for S in combinations(range(K), m):
            col = np.zeros(K)
            col[list(S)] = 1.0
            cols.extend([col] * c)
    return np.stack(cols, axis=1)


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class MultiLabelUFM(_TargetModel):
    r"""Multi-label UFM with the pick-all-label cross-entropy (PAL-CE).

    Sample ``i`` carries a nonempty label set ``S_i`` (column ``i`` of the multi-hot ``Y``); the
    pick-all-label loss sums a softmax cross-entropy over its labels:

    .. math::
        f(W, H, b) = \frac1N \sum_{i=1}^N \sum_{k \in S_i}
            \Big(\log \sum_{j=1}^K e^{z_{ji}} - z_{ki}\Big)
            + \frac{\lambda_W}2 \lVert W\rVert_F^2 + \frac{\lambda_H}2 \lVert H\rVert_F^2
            + \frac{\lambda_b}2 \lVert b\rVert_2^2,
        \qquad z_i = W h_i + b.

    A single-label ``Y`` (one 1 per column) is the CE :class:`ufm.UFM` with the same objective.

    Args:
        Y: multi-hot targets, shape ``(K, N)``, entries 0 or 1, every column nonempty, ``K >= 2``
            (:func:`label_set_targets` builds the data set balanced within multiplicities).
        d: feature dimension, ``d >= 1``.
        lam_W: weight decay, ``>= 0``.
        lam_H: weight decay, ``>= 0``.
        lam_b: ``None`` (no bias), ``0.0`` (free bias) or ``> 0``.

    References:
        Li, Li, Wang & Qu, "Neural Collapse in Multi-label Learning with Pick-all-label Loss",
        ICML 2024, arXiv 2310.15903.
    """

    def _check_targets(self, Y: np.ndarray) -> None:
        """Multi-hot, ``K >= 2`` rows, every column nonempty."""
        if Y.shape[0] < 2:
            raise ValueError(f"Y must have K >= 2 rows (classes), got shape {Y.shape}")
        if not np.all((Y == 0) | (Y == 1)):
            raise ValueError("Y must be multi-hot: every entry 0 or 1")
        empty = np.flatnonzero(Y.sum(axis=0) == 0)
        if empty.size:
            raise ValueError(f"Y: every sample needs at least one label; columns {empty[:5].tolist()} "
                             "are empty")

    @property
    def K(self) -> int:
        """Number of classes (rows of ``Y``)."""
        return self.D

    def sample_losses(self, Z: jax.Array) -> jax.Array:
        r"""``sum_{k in S_i} (logsumexp(z_i) - z_{ki}) = |S_i| logsumexp(z_i) - <y_i, z_i>``,
        shape ``(N,)``."""
        Y = jnp.asarray(self.Y)
        return jnp.sum(Y, axis=0) * jax.nn.logsumexp(Z, axis=0) - jnp.sum(Y * Z, axis=0)


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class RegressionUFM(_TargetModel):
    r"""Regression UFM: free features fitted to real target vectors by squared error.

    .. math::
        f(W, H, b) = \frac1{2N} \lVert W H + b 1^\top - Y\rVert_F^2
            + \frac{\lambda_W}2 \lVert W\rVert_F^2 + \frac{\lambda_H}2 \lVert H\rVert_F^2
            + \frac{\lambda_b}2 \lVert b\rVert_2^2

    (the canonical scaling; one-hot ``Y`` gives the MSE :class:`ufm.UFM`).

    Args:
        Y: targets, shape ``(D, N)`` (``D`` target dimensions, ``N`` samples), finite.
        d: feature dimension, ``d >= 1``.
        lam_W: weight decay, ``>= 0``.
        lam_H: weight decay, ``>= 0``.
        lam_b: ``None`` (no bias), ``0.0`` (free bias) or ``> 0``.

    References:
        Andriopoulos, Dong, Guo, Zhao & Ross, "The Prevalence of Neural Collapse in Neural
        Multivariate Regression", NeurIPS 2024, arXiv 2409.04180.
    """

    def sample_losses(self, Z: jax.Array) -> jax.Array:
        r"""``(1/2) ||z_i - y_i||^2``, shape ``(N,)``."""
        return 0.5 * jnp.sum((Z - jnp.asarray(self.Y)) ** 2, axis=0)

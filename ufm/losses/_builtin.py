r"""Per-sample classification losses on logits, for the unconstrained feature models.

Convention: logits are a matrix ``Z`` of shape ``(D, N)`` whose column ``i`` is the output
``W h_i + b`` of sample ``i``; ``labels`` is an int array of length ``N`` with values in
``0..K-1``. Every loss returns the vector of ``N`` per-sample losses; the problems average it
(the canonical objective of ``docs/theory.md#canonical-objective`` uses the mean, not the sum).

For cross-entropy-type losses ``D = K``. For :class:`MSE` with an encoding matrix
``E`` of shape ``(D, K)`` the target of class ``k`` is column ``E[:, k]`` and ``D`` may differ
from ``K``.

All losses are frozen dataclasses registered as pytrees: their hyper-parameters (``alpha``,
``gamma``, ``encoding``) are float64 arrays, so a jitted solver is not recompiled when they change
and ``jax.vmap`` can run over them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike
import numpy as np

from ufm._internal.validation import is_concrete, scalar_param, to_numeric

__all__ = ["Loss", "CrossEntropy", "LabelSmoothing", "Focal", "MSE", "LOSS_NAMES"]


class Loss:
    """Base class. Subclasses implement :meth:`__call__` (per-sample loss) and may override
    :meth:`out_dim` (rows of ``W``) and :meth:`check` (validation against ``K``)."""

    name: str = "loss"
    #: ``loss(z + s 1, y) = loss(z, y)`` for every shift ``s`` (softmax losses): a free bias then
    #: has the continuous symmetry ``b -> b + s 1`` (used by the second-order certificate).
    shift_invariant: bool = False

    def __call__(self, logits: jax.Array, labels: jax.Array) -> jax.Array:  # pragma: no cover
        raise NotImplementedError

    def out_dim(self, K: int) -> int:
        """Number of rows of the classifier ``W`` (the logit dimension ``D``)."""
        return K

    def mean_and_grad(self, logits: jax.Array, labels: jax.Array) -> tuple[jax.Array, jax.Array]:
        r"""The mean loss and its gradient in the logits:

        .. math:: L(Z) = \frac1N \sum_{i=1}^N \ell(z_i, y_i), \qquad G = \partial L / \partial Z
            \quad (D \times N)

        By autodiff here; a loss may write ``G`` out (:class:`CrossEntropy` does).
        """
        return jax.value_and_grad(lambda Z: jnp.mean(self(Z, labels)))(logits)

    def check(self, K: int) -> None:
        """Raise ``ValueError`` if the loss cannot be used with ``K`` classes."""


def _log_softmax_true(logits, labels):
    """Stable log p_y (log-sum-exp), with the log-softmax matrix."""
    logp = jax.nn.log_softmax(logits, axis=0)
    logp_y = jnp.take_along_axis(logp, labels[None, :], axis=0)[0]
    return logp, logp_y


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class CrossEntropy(Loss):
    r"""Softmax cross-entropy.

    .. math:: \ell(z, y) = -\log \frac{e^{z_y}}{\sum_j e^{z_j}}

    Computed through ``log_softmax`` (log-sum-exp), stable for any logit scale.

    References:
        Papyan, Han & Donoho, PNAS 2020; Zhu et al., NeurIPS 2021 (arXiv 2105.02375), the
        cross-entropy UFM whose global minimizers are simplex ETFs.
    """

    name = "ce"
    shift_invariant = True

    def __call__(self, logits, labels):
        _, logp_y = _log_softmax_true(logits, labels)
        return -logp_y

    def mean_and_grad(self, logits, labels):
        r"""The mean loss and its gradient, written out (one ``exp`` of the logits for both):

        .. math:: L = \frac1N \sum_i \Big(\log \sum_j e^{z_{ji}} - z_{y_i i}\Big), \qquad
            G = \frac1N \big(\mathrm{softmax}(Z) - Y\big), \quad Y_{ki} = [k = y_i]

        (log-sum-exp shifted by the column maximum), the value and gradient autodiff gives.
        """
        m = jnp.max(logits, axis=0, keepdims=True)
        E = jnp.exp(logits - m)
        s = jnp.sum(E, axis=0, keepdims=True)
        Y = jnp.arange(logits.shape[0])[:, None] == labels[None, :]
        z_y = jnp.sum(jnp.where(Y, logits, 0.0), axis=0, keepdims=True)
        N = logits.shape[1]
        return jnp.mean(m + jnp.log(s) - z_y), (E / s - Y.astype(E.dtype)) / N


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class LabelSmoothing(Loss):
    r"""Cross-entropy against the smoothed target ``t = (1 - alpha) e_y + (alpha / K) 1``.

    .. math:: \ell(z, y) = -(1-\alpha)\log p_y - \frac{\alpha}{K}\sum_{j=1}^K \log p_j,
        \qquad p = \mathrm{softmax}(z)

    ``alpha = 0`` recovers :class:`CrossEntropy`. Valid range: ``0 <= alpha < 1``.

    References:
        Szegedy et al., CVPR 2016 (label smoothing); Zhou et al., NeurIPS 2022
        (arXiv 2210.02192), which shows CE, LS and focal share the neural-collapse minimizers.
    """

    alpha: ArrayLike = 0.1  # stored as a float64 array
    name = "ls"
    shift_invariant = True

    def __post_init__(self):
        object.__setattr__(self, "alpha", scalar_param("alpha", self.alpha, lo=0.0, hi=1.0))

    def __call__(self, logits, labels):
        logp, logp_y = _log_softmax_true(logits, labels)
        K = logits.shape[0]
        return -(1.0 - self.alpha) * logp_y - (self.alpha / K) * jnp.sum(logp, axis=0)


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class Focal(Loss):
    r"""Focal loss.

    .. math:: \ell(z, y) = -(1 - p_y)^{\gamma} \log p_y, \qquad p = \mathrm{softmax}(z)

    ``gamma = 0`` recovers :class:`CrossEntropy`. Valid range: ``gamma >= 0``. ``1 - p_y`` is
    computed as ``-expm1(log p_y)`` so it stays accurate when ``p_y`` is close to one.

    References:
        Lin et al., ICCV 2017 (focal loss); Zhou et al., NeurIPS 2022 (arXiv 2210.02192).

    .. warning:: Papers differ in the regularization scaling (``lam/2`` versus ``lam``, mean
       versus sum); see :mod:`ufm.conventions`.
    """

    gamma: ArrayLike = 2.0  # stored as a float64 array
    name = "focal"
    shift_invariant = True

    def __post_init__(self):
        object.__setattr__(self, "gamma", scalar_param("gamma", self.gamma))

    def __call__(self, logits, labels):
        _, logp_y = _log_softmax_true(logits, labels)
        one_minus_p = -jnp.expm1(logp_y)
        return -(one_minus_p**self.gamma) * logp_y


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class MSE(Loss):
    r"""Squared error against a label encoding.

    .. math:: \ell(z, y) = \tfrac12 \lVert z - E e_y \rVert_2^2

    so the data term of the UFM is ``(1/2N) ||W H + b 1^T - E Y||_F^2``. ``encoding=None`` is the
    one-hot code ``E = I_K``; otherwise ``E`` is a ``(D, K)`` matrix whose column ``k`` is the
    target of class ``k`` (for example the +-1 code ``2 I - J``), and ``W`` then has ``D`` rows.

    References:
        Han, Papyan & Donoho, ICLR 2022 (MSE neural collapse); Tirer & Bruna, ICML 2022
        (arXiv 2202.08087); Massion, Makhlouf & Massart 2026 (arXiv 2606.00344) for general
        encodings and the role of the bias.
    """

    encoding: ArrayLike | None = None  # stored as a float64 array
    name = "mse"

    def __post_init__(self):
        E = to_numeric("encoding", self.encoding) if self.encoding is not None else None
        if E is not None and is_concrete(E):
            arr = np.asarray(E, dtype=float)
            if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 2:
                raise ValueError(
                    f"encoding must be a (D, K) matrix with D >= 1 and K >= 2, got shape {arr.shape}"
                )
            if not np.all(np.isfinite(arr)):
                raise ValueError("encoding must be finite, got NaN or inf entries")
            object.__setattr__(self, "encoding", jnp.asarray(arr))

    def out_dim(self, K: int) -> int:
        """``D``: ``K`` for one-hot targets, else the number of rows of the encoding."""
        return K if self.encoding is None else int(self.encoding.shape[0])

    def check(self, K: int) -> None:
        """The encoding must have one column per class."""
        if self.encoding is not None and is_concrete(self.encoding) and self.encoding.shape[1] != K:
            raise ValueError(
                f"encoding must be a (D, K={K}) matrix (one target column per class), "
                f"got shape {tuple(self.encoding.shape)}"
            )

    def targets(self, labels: jax.Array, K: int) -> jax.Array:
        """The target matrix ``E Y`` of shape ``(D, N)``."""
        if self.encoding is None:
            return jax.nn.one_hot(labels, K, axis=0, dtype=float)
        return self.encoding[:, labels]

    def __call__(self, logits, labels):
        K = logits.shape[0] if self.encoding is None else self.encoding.shape[1]
        r = logits - self.targets(labels, K)
        return 0.5 * jnp.sum(r * r, axis=0)


LOSS_NAMES = {"ce": CrossEntropy, "ls": LabelSmoothing, "focal": Focal, "mse": MSE}


def replace(loss: Loss, **changes) -> Loss:
    """``dataclasses.replace`` for losses (kept here so callers need not import dataclasses)."""
    return dataclasses.replace(loss, **changes)

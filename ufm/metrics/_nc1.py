r"""NC1, within-class variability collapse: the canonical form and two named variants.

.. math::

    \Sigma_W = \frac{1}{N} \sum_i (h_i - h_{y_i})(h_i - h_{y_i})^T, \qquad
    \Sigma_B = \frac{1}{K} \sum_k (h_k - h_G)(h_k - h_G)^T.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from ufm.metrics._checks import PINV_RTOL, jit_with_labels
from ufm.metrics._class_means import within_class
from ufm._internal.runtime import register_compiled

__all__ = ["cdnv", "cdnv_from", "nc1", "nc1_trace_ratio"]


@jit_with_labels
def nc1(
    H: Any,
    labels: Any,
    K: int | None = None,
    *,
    global_mean: str = "weighted",
    rtol: float = PINV_RTOL,
    layout: str = "dN",
) -> jax.Array:
    r"""Within-class variability collapse NC1, canonical form.

    .. math::

        \mathrm{NC1} = \frac{1}{K} \operatorname{Tr}(\Sigma_W \Sigma_B^+), \qquad
        \Sigma_W = \frac{1}{N} \sum_i (h_i - h_{y_i})(h_i - h_{y_i})^T, \qquad
        \Sigma_B = \frac{1}{K} \sum_k (h_k - h_G)(h_k - h_G)^T.

    Computed without any d x d matrix: with ``Z = H - Hbar[:, labels]`` and
    :math:`\Sigma_B = \bar M \bar M^T / K`, so that :math:`\Sigma_B^+ = K (\bar M^+)^T \bar M^+`,

    .. math::

        \mathrm{NC1} = \frac{1}{N} \|\bar M^+ Z\|_F^2 \ \ge 0.

    Variant choices: the 1/K factor is included; Sigma_W averages over all N samples (not per
    class); ``h_G`` is the weighted global mean by default. The pseudo-inverse drops singular
    values of ``Mbar`` below ``rtol * sigma_max(Mbar)`` (``Mbar`` always has rank <= K-1).
    If all class means coincide (``Mbar = 0``) the pseudo-inverse is 0 and so is NC1.

    Args:
        H: features, ``(d, N)`` (one sample per column) or, with ``layout="Nd"``, ``(N, d)``.
        labels: (N,) integer labels in ``0..K-1``.
        K: number of classes; default ``max(labels) + 1``.
        global_mean: ``"weighted"`` (default) or ``"unweighted"``.
        rtol: relative tolerance of ``jnp.linalg.pinv(Mbar, rtol=rtol)``; default ``1e-10``.
        layout: ``"dN"`` (default) or ``"Nd"``.

    Returns:
        Scalar NC1.

    References:
        Papyan, Han & Donoho, "Prevalence of neural collapse during the terminal phase of deep
        learning training", PNAS 2020.
    """
    H, labels, K, Z, Mbar = within_class(H, labels, K, global_mean, layout)
    Mbar_pinv = jnp.linalg.pinv(Mbar, rtol=rtol)  # (K, d)
    return jnp.sum((Mbar_pinv @ Z) ** 2) / H.shape[1]


@jit_with_labels
def nc1_trace_ratio(
    H: Any,
    labels: Any,
    K: int | None = None,
    *,
    global_mean: str = "weighted",
    layout: str = "dN",
) -> jax.Array:
    r"""NC1 variant: ratio of traces of the within- and between-class covariances.

    .. math::

        \frac{\operatorname{Tr} \Sigma_W}{\operatorname{Tr} \Sigma_B}
        = \frac{\|Z\|_F^2 / N}{\|\bar M\|_F^2 / K}

    with ``Sigma_W``, ``Sigma_B`` as in :func:`nc1` (no 1/K in front, no pseudo-inverse).

    Args:
        H: features, ``(d, N)``, or ``(N, d)`` with ``layout="Nd"``.
        labels: (N,) integer labels in ``0..K-1``.
        K: number of classes; default ``max(labels) + 1``.
        global_mean: ``"weighted"`` (default) or ``"unweighted"``.
        layout: ``"dN"`` (default) or ``"Nd"``.

    Returns:
        Scalar ``Tr(Sigma_W) / Tr(Sigma_B)`` (inf or NaN if all class means coincide).

    References:
        Papyan, Han & Donoho, PNAS 2020 (the trace form is a common simplification).
    """
    H, labels, K, Z, Mbar = within_class(H, labels, K, global_mean, layout)
    tr_Sigma_W = jnp.sum(Z**2) / H.shape[1]
    tr_Sigma_B = jnp.sum(Mbar**2) / K
    return tr_Sigma_W / tr_Sigma_B


@jit_with_labels
def cdnv(H: Any, labels: Any, K: int | None = None, *, layout: str = "dN") -> jax.Array:
    r"""Class-distance normalized variance, averaged over ordered pairs of distinct classes.

    .. math::

        \mathrm{CDNV} = \frac{1}{K(K-1)} \sum_{k \ne l}
        \frac{V_k + V_l}{2 \|h_k - h_l\|^2}, \qquad
        V_k = \frac{1}{n_k} \sum_{i: y_i = k} \|h_i - h_k\|^2.

    The mean over ordered pairs equals the mean over unordered pairs (the summand is symmetric).
    Independent of the global mean. Infinite if two class means coincide.

    Args:
        H: features, ``(d, N)``, or ``(N, d)`` with ``layout="Nd"``.
        labels: (N,) integer labels in ``0..K-1``.
        K: number of classes; default ``max(labels) + 1``.
        layout: ``"dN"`` (default) or ``"Nd"``.

    Returns:
        Scalar CDNV.

    References:
        Galanti, Gyorgy & Hutter, "On the role of neural collapse in transfer learning",
        ICLR 2022.
    """
    H, labels, K, Z, Mbar = within_class(H, labels, K, "unweighted", layout)
    counts = jax.ops.segment_sum(jnp.ones(H.shape[1]), labels, num_segments=K)
    V = jax.ops.segment_sum(jnp.sum(Z**2, axis=0), labels, num_segments=K) / counts  # (K,)
    return cdnv_from(V, Mbar)


@register_compiled
@jax.jit
def cdnv_from(V: jax.Array, Mbar: jax.Array) -> jax.Array:
    r"""CDNV from per-class variances ``V: (K,)`` and centred means ``Mbar: (d, K)``.

    .. math::

        \frac{1}{K(K-1)} \sum_{k \ne l} \frac{V_k + V_l}{2 \|\bar m_k - \bar m_l\|^2}

    (see :func:`cdnv`; distances from the centred Gram, which cancels less than the raw means).
    """
    K = Mbar.shape[1]
    G = Mbar.T @ Mbar  # centred Gram: same distances, less cancellation
    sq = jnp.diag(G)
    dist2 = jnp.maximum(sq[:, None] + sq[None, :] - 2.0 * G, 0.0)
    off = ~jnp.eye(K, dtype=bool)
    ratio = (V[:, None] + V[None, :]) / (2.0 * jnp.where(off, dist2, 1.0))
    return jnp.sum(jnp.where(off, ratio, 0.0)) / (K * (K - 1))

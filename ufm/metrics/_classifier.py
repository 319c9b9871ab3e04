r"""NC3 and NC4: the classifier against the class means of the features.

Every function here takes ``(W, H, labels, b=None, K=None, ...)``: the classifier, then the
features, then the labels, the bias optional.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from ufm.metrics._checks import check_bias, check_labels, check_W, classifier_first, jit_with_labels
from ufm.metrics._class_means import centred_means, class_means_unchecked
from ufm.metrics._nc2 import nc2_etf, unit
from ufm._internal.runtime import register_compiled

__all__ = ["duality_from", "nc3", "nc3_duality", "nc4"]


@jit_with_labels
def nc3(
    W: Any,
    H: Any,
    labels: Any,
    K: int | None = None,
    *,
    global_mean: str = "weighted",
    layout: str = "dN",
) -> jax.Array:
    r"""NC3 (alignment of classifier and features) via the class logit matrix ``W Mbar``.

    .. math::

        \left\| \frac{W \bar M}{\|W \bar M\|_F} - \frac{P}{\sqrt{K-1}} \right\|_F

    Zero when ``w_k`` is a positive multiple of ``h_k - h_G`` and both form a simplex ETF.

    Args:
        W: (K, d) classifier.
        H: features, ``(d, N)`` (one sample per column) or, with ``layout="Nd"``, ``(N, d)``.
        labels: (N,) integer labels in ``0..K-1``.
        K: number of classes; default ``max(labels) + 1``.
        global_mean: ``"weighted"`` (default) or ``"unweighted"`` centring.
        layout: ``"dN"`` (default) or ``"Nd"``.

    Returns:
        Scalar distance.

    References:
        Papyan, Han & Donoho, PNAS 2020; Zhu et al., NeurIPS 2021 (arXiv 2105.02375).
    """
    Mbar = centred_means(H, labels, K, global_mean=global_mean, layout=layout)
    W = check_W(W, *Mbar.shape[::-1])
    return nc2_etf(W @ Mbar)


@jit_with_labels
def nc3_duality(
    W: Any,
    H: Any,
    labels: Any,
    K: int | None = None,
    *,
    global_mean: str = "weighted",
    layout: str = "dN",
) -> jax.Array:
    r"""NC3 as self-duality: distance between the normalized classifier and centred means.

    .. math::

        \left\| \frac{W^T}{\|W\|_F} - \frac{\bar M}{\|\bar M\|_F} \right\|_F

    Args:
        W: (K, d) classifier.
        H: features, ``(d, N)``, or ``(N, d)`` with ``layout="Nd"``.
        labels: (N,) integer labels in ``0..K-1``.
        K: number of classes; default ``max(labels) + 1``.
        global_mean: ``"weighted"`` (default) or ``"unweighted"`` centring.
        layout: ``"dN"`` (default) or ``"Nd"``.

    Returns:
        Scalar distance in ``[0, 2]``.

    References:
        Papyan, Han & Donoho, PNAS 2020 (Figure 5).
    """
    Mbar = centred_means(H, labels, K, global_mean=global_mean, layout=layout)
    W = check_W(W, *Mbar.shape[::-1])
    return duality_from(W, Mbar)


@register_compiled
@jax.jit
def duality_from(W: jax.Array, Mbar: jax.Array) -> jax.Array:
    r"""The self-duality distance of :func:`nc3_duality` from ``W: (K, d)`` and ``Mbar: (d, K)``.

    .. math::

        \left\| \frac{W^T}{\|W\|_F} - \frac{\bar M}{\|\bar M\|_F} \right\|_F
    """
    return jnp.linalg.norm(unit(W.T) - unit(Mbar))


@classifier_first(("W", "b", "H", "labels", "K"))
@jit_with_labels
def nc4(
    W: Any,
    H: Any,
    labels: Any,
    b: Any = None,
    K: int | None = None,
    *,
    layout: str = "dN",
) -> jax.Array:
    r"""NC4: disagreement between the classifier and the nearest-class-mean rule.

    .. math::

        \frac{1}{N} \sum_i \mathbf{1}\left[\arg\max_k (W h_i + b)_k \ne
        \arg\min_k \|h_i - h_k\|\right]

    The classifier includes the bias ``b`` (``b=None`` means no bias); the nearest mean uses the
    uncentred class means (the global mean plays no role). Ties go to the lowest index.

    .. warning::
        The order was ``nc4(W, b, H, labels)`` before; that call still works for one release,
        with a DeprecationWarning (recognised by its second argument, the bias: None or 1-D).

    Args:
        W: (K, d) classifier.
        H: features, ``(d, N)`` (one sample per column) or, with ``layout="Nd"``, ``(N, d)``.
        labels: (N,) integer labels in ``0..K-1`` (used only for the class means).
        b: (K,) bias or None.
        K: number of classes; default ``max(labels) + 1``.
        layout: ``"dN"`` (default) or ``"Nd"``.

    Returns:
        Scalar fraction in ``[0, 1]``.

    References:
        Papyan, Han & Donoho, PNAS 2020.
    """
    H, labels, K = check_labels(H, labels, K, layout)
    Hbar, _ = class_means_unchecked(H, labels, K)
    W = check_W(W, K, H.shape[0])
    b = check_bias(b, K)
    logits = W @ H if b is None else W @ H + b[:, None]  # (K, N)
    # ||h_i - h_k||^2 up to the term ||h_i||^2, which does not depend on k.
    dist2 = jnp.sum(Hbar**2, axis=0)[:, None] - 2.0 * Hbar.T @ H  # (K, N)
    disagree = jnp.argmax(logits, axis=0) != jnp.argmin(dist2, axis=0)
    return jnp.mean(disagree.astype(jnp.float64))

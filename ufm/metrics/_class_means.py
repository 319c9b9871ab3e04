r"""Class means, the global mean and the centred means of labelled features.

.. math::

    h_k = \frac{1}{n_k} \sum_{y_i = k} h_i, \qquad \bar H = [h_1, \dots, h_K], \qquad
    \bar M = \bar H - h_G 1^T.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from ufm.metrics._checks import check_global_mean, check_labels, jit_with_labels

__all__ = ["centred_means", "class_means", "class_means_unchecked", "within_class"]


def class_means_unchecked(
    H: jax.Array, labels: jax.Array, K: int, global_mean: str = "weighted"
) -> tuple[jax.Array, jax.Array]:
    """``(Hbar: (d, K), h_G: (d,))`` of :func:`class_means` without any check of the labels.

    For traced code (labels may be tracers): ``H: (d, N)`` float, ``labels: (N,)`` integers in
    ``0..K-1`` with every class present, ``K`` a static int. Nothing is validated except
    ``global_mean``.
    """
    check_global_mean(global_mean)
    sums = jax.ops.segment_sum(H.T, labels, num_segments=K)  # (K, d)
    counts = jax.ops.segment_sum(jnp.ones(H.shape[1]), labels, num_segments=K)  # (K,)
    Hbar = (sums / counts[:, None]).T
    h_G = jnp.mean(H, axis=1) if global_mean == "weighted" else jnp.mean(Hbar, axis=1)
    return Hbar, h_G


def within_class(
    H: Any, labels: Any, K: int | None, global_mean: str, layout: str = "dN"
) -> tuple[jax.Array, jax.Array, int, jax.Array, jax.Array]:
    """``(H, labels, K, Z, Mbar)``, validated, with ``H: (d, N)``.

    ``Z = H - Hbar[:, labels]`` holds the within-class deviations and ``Mbar: (d, K)`` the centred
    class means.
    """
    H, labels, K = check_labels(H, labels, K, layout)
    Hbar, h_G = class_means_unchecked(H, labels, K, global_mean)
    return H, labels, K, H - Hbar[:, labels], Hbar - h_G[:, None]


@jit_with_labels
def class_means(
    H: Any,
    labels: Any,
    K: int | None = None,
    *,
    global_mean: str = "weighted",
    layout: str = "dN",
) -> tuple[jax.Array, jax.Array]:
    r"""Class means and the global mean.

    .. math::

        h_k = \frac{1}{n_k} \sum_{i: y_i = k} h_i, \qquad
        h_G = \frac{1}{N} \sum_i h_i \ (\text{weighted}) \quad\text{or}\quad
        h_G = \frac{1}{K} \sum_k h_k \ (\text{unweighted}).

    Args:
        H: features, ``(d, N)`` (one sample per column) or, with ``layout="Nd"``, ``(N, d)``.
        labels: (N,) integer labels in ``0..K-1``; concrete (NumPy or JAX) unless ``K`` is given.
        K: number of classes; default ``max(labels) + 1``.
        global_mean: ``"weighted"`` (mean of all samples, default) or ``"unweighted"`` (mean of
            the class means).
        layout: ``"dN"`` (default) or ``"Nd"``: how ``H`` is laid out. The results do not depend
            on it.

    Returns:
        ``(Hbar, h_G)`` with ``Hbar: (d, K)`` (one class mean per column, whatever the layout)
        and ``h_G: (d,)``.

    Raises:
        ValueError: if ``H`` is not 2-D, ``labels`` does not have length ``N``, ``K < 2``, a label
            is outside ``0..K-1``, a class is empty, or ``global_mean`` or ``layout`` is unknown.

    References:
        Papyan, Han & Donoho, PNAS 2020.
    """
    H, labels, K = check_labels(H, labels, K, layout)
    return class_means_unchecked(H, labels, K, global_mean)


@jit_with_labels
def centred_means(
    H: Any,
    labels: Any,
    K: int | None = None,
    *,
    global_mean: str = "weighted",
    layout: str = "dN",
) -> jax.Array:
    r"""Centred class means.

    .. math::

        \bar M = \bar H - h_G 1^T.

    Args:
        H: features, ``(d, N)``, or ``(N, d)`` with ``layout="Nd"``.
        labels: (N,) integer labels in ``0..K-1``.
        K: number of classes; default ``max(labels) + 1``.
        global_mean: ``"weighted"`` (default) or ``"unweighted"``; see :func:`class_means`.
        layout: ``"dN"`` (default) or ``"Nd"``.

    Returns:
        ``Mbar: (d, K)`` whatever the layout.

    References:
        Papyan, Han & Donoho, PNAS 2020.
    """
    Hbar, h_G = class_means(H, labels, K, global_mean=global_mean, layout=layout)
    return Hbar - h_G[:, None]

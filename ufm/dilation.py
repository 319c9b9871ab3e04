r"""Dilation measures for features under label noise: pure functions of arrays.

Conventions: ``H: (d, N)`` features (one sample per column; with ``layout="Nd"`` every function
takes ``H: (N, d)``, one sample per row, as networks give them, and returns the same values),
``true_labels: (N,)`` true classes, ``labels: (N,)`` observed (possibly wrong) labels, ``K`` the
number of classes, ``W: (K, d)`` a classifier and ``b: (K,)`` an optional bias. A function that
takes the classifier takes ``(W, H, true_labels, labels, b=None, K=None)``, the order of
:mod:`ufm.metrics` (classifier, features, labels, bias optional); the old order
``(W, b, H, true_labels, labels)`` still works for one release, with a DeprecationWarning
(recognised exactly: its second argument, the bias, is None or 1-D where ``H`` is 2-D).

A sample is *noisy* when ``labels[i] != true_labels[i]``; the *clean mean* of class ``k`` is the
mean of the features of its clean samples,

.. math:: \bar h_k = \frac{1}{|C_k|}\sum_{i \in C_k} h_i, \qquad
    C_k = \{i : y_i = \tilde y_i = k\}.

They work on a :class:`ufm.MemorizationDilation` solution (``prob.true_labels``, ``prob.labels``)
and equally on features taken from a network. Every class needs a clean sample.

References:
    Nguyen, Levie, Lienen, Kutyniok & Huellermeier, "Memorization-Dilation: Modeling Neural Collapse
    Under Label Noise", ICLR 2023 (arXiv 2206.05530): dilation of the clusters by memorized noisy
    samples; NC1 measured with the noisy labels, as in the paper's experiments.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from ufm._internal.deprecation import classifier_first
from ufm.metrics import LAYOUTS, nc1

__all__ = [
    "centre_distance",
    "class_spread",
    "clean_mean_accuracy",
    "clean_means",
    "displacement",
    "nc1_noisy",
    "relative_displacement",
    "segment_crossing",
]

_OLD_ORDER = ("W", "b", "H", "true_labels", "labels", "K")


def _features(H: Any, layout: str) -> jnp.ndarray:
    """``H`` as a ``(d, N)`` JAX array, from the layout the caller named."""
    if layout not in LAYOUTS:
        raise ValueError(
            f"layout must be one of {LAYOUTS} ('dN': H of shape (d, N), one sample per column; "
            f"'Nd': shape (N, d), one sample per row), got layout={layout!r}"
        )
    H = jnp.asarray(H)
    if H.ndim != 2:
        what = "(d, N)" if layout == "dN" else "(N, d)"
        raise ValueError(f"H must have shape {what} for layout={layout!r}, got H.shape={H.shape}")
    return H if layout == "dN" else H.T


_classifier_first = classifier_first(_OLD_ORDER, "W, H, true_labels, labels, b=b")


def _masks(
    true_labels: Any, labels: Any, K: int | None
) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
    """``(true labels, observed labels, K, noisy mask)`` as NumPy arrays."""
    y, yt = np.asarray(true_labels), np.asarray(labels)
    K = int(y.max()) + 1 if K is None else K
    return y, yt, K, yt != y


def clean_means(
    H: Any, true_labels: Any, labels: Any, K: int | None = None, *, layout: str = "dN"
) -> jnp.ndarray:
    r"""``(d, K)`` clean class means ``hbar_k`` (module docstring).

    .. math:: \bar h_k = \frac{1}{|C_k|}\sum_{i \in C_k} h_i, \qquad C_k = \{i : y_i = \tilde y_i = k\}

    Args:
        H: features, ``(d, N)``, or ``(N, d)`` with ``layout="Nd"``.
        true_labels: (N,) true classes. labels: (N,) observed labels.
        K: classes; default ``max(true_labels) + 1``.
        layout: ``"dN"`` (default) or ``"Nd"``; the result is ``(d, K)`` either way.

    Raises:
        ValueError: if a class has no clean sample, or ``layout`` is unknown.

    References:
        Nguyen et al., ICLR 2023, arXiv 2206.05530.
    """
    H = _features(H, layout)
    y, _, K, noisy = _masks(true_labels, labels, K)
    A = np.zeros((y.size, K))
    A[np.flatnonzero(~noisy), y[~noisy]] = 1.0
    counts = A.sum(axis=0, keepdims=True)
    if np.any(counts == 0):
        raise ValueError("clean_means: every class needs at least one clean sample (labels == true_labels)")
    return H @ jnp.asarray(A / counts)


def displacement(
    H: Any, true_labels: Any, labels: Any, K: int | None = None, *, layout: str = "dN"
) -> jnp.ndarray:
    r"""Absolute displacement of each noisy feature from its true class's clean mean.

    .. math:: D_i = \lVert h_i - \bar h_{y_i}\rVert_2, \qquad i \text{ noisy}

    Args:
        H: as in :func:`clean_means`.
        true_labels: as in :func:`clean_means`.
        labels: as in :func:`clean_means`.
        K: as in :func:`clean_means`.
        layout: as in :func:`clean_means`.

    Returns:
        ``(M,)`` distances, in sample order of the noisy samples (empty without noise).

    References:
        Nguyen et al., ICLR 2023, arXiv 2206.05530.
    """
    H = _features(H, layout)
    y, _, K, noisy = _masks(true_labels, labels, K)
    idx = np.flatnonzero(noisy)
    Hb = clean_means(H, true_labels, labels, K)
    return jnp.linalg.norm(H[:, idx] - Hb[:, y[idx]], axis=0)


def centre_distance(
    H: Any, true_labels: Any, labels: Any, K: int | None = None, *, layout: str = "dN"
) -> jnp.ndarray:
    r"""Mean pairwise distance between clean class means.

    .. math:: \frac{2}{K(K-1)} \sum_{k<l} \lVert \bar h_k - \bar h_l \rVert

    For an orthogonal frame ``h_k = rho e_k`` this is ``sqrt(2) rho``.

    Args:
        H: as in :func:`clean_means`.
        true_labels: as in :func:`clean_means`.
        labels: as in :func:`clean_means`.
        K: as in :func:`clean_means`.
        layout: as in :func:`clean_means`.

    References:
        Nguyen et al., ICLR 2023, arXiv 2206.05530.
    """
    Hb = clean_means(H, true_labels, labels, K, layout=layout)
    K = Hb.shape[1]
    iu = np.triu_indices(K, 1)
    G = jnp.linalg.norm(Hb[:, :, None] - Hb[:, None, :], axis=0)
    return jnp.mean(G[iu])


def relative_displacement(
    H: Any, true_labels: Any, labels: Any, K: int | None = None, *, layout: str = "dN"
) -> jnp.ndarray:
    r"""Displacement relative to the distance between class centres.

    .. math:: D_i / \mathrm{centre\_distance}

    ``1`` means a noisy feature moved as far as one class centre is from another (for ``K = 2``
    positive features: onto the other class's clean mean).

    Args:
        H: as in :func:`clean_means`.
        true_labels: as in :func:`clean_means`.
        labels: as in :func:`clean_means`.
        K: as in :func:`clean_means`.
        layout: as in :func:`clean_means`.

    References:
        Nguyen et al., ICLR 2023, arXiv 2206.05530.
    """
    H = _features(H, layout)
    return displacement(H, true_labels, labels, K) / centre_distance(H, true_labels, labels, K)


def class_spread(
    H: Any, true_labels: Any, labels: Any, K: int | None = None, *, layout: str = "dN"
) -> jnp.ndarray:
    r"""Per-class root-mean-square distance of *all* samples of a true class from its clean mean.

    .. math:: s_k = \Big(\frac1{n_k}\sum_{y_i = k}\lVert h_i - \bar h_k\rVert^2\Big)^{1/2}

    Args:
        H: as in :func:`clean_means`.
        true_labels: as in :func:`clean_means`.
        labels: as in :func:`clean_means`.
        K: as in :func:`clean_means`.
        layout: as in :func:`clean_means`.

    Returns:
        ``(K,)`` spreads; 0 for a collapsed clean class without noise.

    References:
        Nguyen et al., ICLR 2023, arXiv 2206.05530.
    """
    H = _features(H, layout)
    y, _, K, _ = _masks(true_labels, labels, K)
    Hb = clean_means(H, true_labels, labels, K)
    sq = jnp.sum((H - Hb[:, y]) ** 2, axis=0)
    A = np.zeros((y.size, K))
    A[np.arange(y.size), y] = 1.0
    return jnp.sqrt(sq @ jnp.asarray(A / A.sum(axis=0, keepdims=True)))


def nc1_noisy(H: Any, labels: Any, K: int | None = None, *, layout: str = "dN") -> jnp.ndarray:
    r"""NC1 computed with the observed (noisy) labels, as the paper's experiments do.

    .. math:: \frac1K \operatorname{Tr}(\Sigma_W \Sigma_B^+)

    That is :func:`ufm.metrics.nc1` ``(H, labels)`` (weighted global mean).

    Args:
        H: features, ``(d, N)``, or ``(N, d)`` with ``layout="Nd"``.
        labels: (N,) observed labels. K: classes; default ``max(labels) + 1``.
        layout: ``"dN"`` (default) or ``"Nd"``.

    References:
        Nguyen et al., ICLR 2023, arXiv 2206.05530.
    """
    return nc1(H, np.asarray(labels), K=K, layout=layout)


@_classifier_first
def segment_crossing(
    W: Any,
    H: Any,
    true_labels: Any,
    labels: Any,
    b: Any = None,
    K: int | None = None,
    *,
    layout: str = "dN",
) -> jnp.ndarray:
    r"""Generalization proxy (**ufm's, not the paper's**): for each noisy sample, the fraction of the
    segment from its true class's clean mean to its feature that the classifier assigns to another class.

    The dilated region of class ``k`` is taken to be the union of the segments
    ``hbar_k + s (h_i - hbar_k)``, ``s in [0, 1]``, over its noisy samples: the inputs a network of
    limited expressivity maps between the class centre and a memorized outlier. A clean test point
    landing uniformly on a segment is misclassified with this probability. The logits are affine in
    ``s``, so class ``k`` wins on an interval of ``s`` computed exactly:

    .. math:: z_k(s) - z_j(s) = A_j + s B_j \ge 0 \quad \text{for all } j.

    Args:
        W: (K, d) classifier. H, true_labels, labels: as in :func:`clean_means`.
        b: (K,) bias or ``None``. K, layout: as in :func:`clean_means`.

    Returns:
        ``(M,)`` fractions in ``[0, 1]``.
    """
    H = _features(H, layout)
    y, _, K, noisy = _masks(true_labels, labels, K)
    idx = np.flatnonzero(noisy)
    Hb = clean_means(H, true_labels, labels, K)[:, y[idx]]
    W = jnp.asarray(W)
    z0 = W @ Hb + (0.0 if b is None else jnp.asarray(b)[:, None])  # (K, M) at s = 0
    dz = W @ (H[:, idx] - Hb)  # (K, M) slope in s
    k = jnp.asarray(y[idx])
    A = jnp.take_along_axis(z0, k[None, :], axis=0) - z0  # (K, M), >= 0 rows at s=0 when correct
    B = jnp.take_along_axis(dz, k[None, :], axis=0) - dz
    # A + s B >= 0: for B < 0, s <= -A/B; for B > 0, s >= -A/B; for B = 0 need A >= 0
    safe = jnp.where(B == 0, 1.0, B)
    s_hi = jnp.where(B < 0, -A / safe, jnp.where((B == 0) & (A < 0), -jnp.inf, jnp.inf))
    s_lo = jnp.where(B > 0, -A / safe, -jnp.inf)
    hi = jnp.clip(jnp.min(s_hi, axis=0), 0.0, 1.0)
    lo = jnp.clip(jnp.max(s_lo, axis=0), 0.0, 1.0)
    return 1.0 - jnp.maximum(hi - lo, 0.0)


@_classifier_first
def clean_mean_accuracy(
    W: Any,
    H: Any,
    true_labels: Any,
    labels: Any,
    b: Any = None,
    K: int | None = None,
    *,
    layout: str = "dN",
) -> jnp.ndarray:
    r"""Generalization proxy (**ufm's**): the fraction of classes whose clean mean (a clean test
    point at the class centre) the classifier assigns to its own class.

    .. math:: \frac1K \sum_k \mathbf 1\big[\arg\max_j (W \bar h_k + b)_j = k\big]

    Args:
        W: (K, d) classifier. H, true_labels, labels: as in :func:`clean_means`.
        b: (K,) bias or ``None``. K, layout: as in :func:`clean_means`.
    """
    Hb = clean_means(H, true_labels, labels, K, layout=layout)
    Z = jnp.asarray(W) @ Hb + (0.0 if b is None else jnp.asarray(b)[:, None])
    return jnp.mean(jnp.argmax(Z, axis=0) == jnp.arange(Hb.shape[1]))

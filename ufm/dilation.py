r"""Dilation measures for features under label noise: pure functions of arrays.

Conventions: ``H: (d, N)`` features (one sample per column), ``true_labels: (N,)`` true classes,
``labels: (N,)`` observed (possibly wrong) labels, ``K`` the number of classes. A sample is *noisy*
when ``labels[i] != true_labels[i]``; the *clean mean* of class ``k`` is the mean of the features of
its clean samples,

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

import jax.numpy as jnp
import numpy as np

from ufm import metrics

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


def _masks(true_labels, labels, K):
    y, yt = np.asarray(true_labels), np.asarray(labels)
    K = int(y.max()) + 1 if K is None else K
    return y, yt, K, yt != y


def clean_means(H, true_labels, labels, K: int | None = None) -> jnp.ndarray:
    r"""``(d, K)`` clean class means ``hbar_k`` (module docstring).

    Args:
        H: (d, N) features. true_labels: (N,) true classes. labels: (N,) observed labels.
        K: classes; default ``max(true_labels) + 1``.
    """
    y, _, K, noisy = _masks(true_labels, labels, K)
    A = np.zeros((y.size, K))
    A[np.flatnonzero(~noisy), y[~noisy]] = 1.0
    counts = A.sum(axis=0, keepdims=True)
    if np.any(counts == 0):
        raise ValueError("clean_means: every class needs at least one clean sample (labels == true_labels)")
    return jnp.asarray(H) @ jnp.asarray(A / counts)


def displacement(H, true_labels, labels, K: int | None = None) -> jnp.ndarray:
    r"""Absolute displacement of each noisy feature from its true class's clean mean.

    .. math:: D_i = \lVert h_i - \bar h_{y_i}\rVert_2, \qquad i \text{ noisy}

    Returns:
        ``(M,)`` distances, in column order of the noisy samples (empty without noise).
    """
    y, _, K, noisy = _masks(true_labels, labels, K)
    idx = np.flatnonzero(noisy)
    Hb = clean_means(H, true_labels, labels, K)
    return jnp.linalg.norm(jnp.asarray(H)[:, idx] - Hb[:, y[idx]], axis=0)


def centre_distance(H, true_labels, labels, K: int | None = None) -> jnp.ndarray:
    r"""Mean pairwise distance between clean class means, ``(2/(K(K-1))) sum_{k<l} ||hbar_k - hbar_l||``.

    For an orthogonal frame ``h_k = rho e_k`` this is ``sqrt(2) rho``.
    """
    Hb = clean_means(H, true_labels, labels, K)
    K = Hb.shape[1]
    iu = np.triu_indices(K, 1)
    G = jnp.linalg.norm(Hb[:, :, None] - Hb[:, None, :], axis=0)
    return jnp.mean(G[iu])


def relative_displacement(H, true_labels, labels, K: int | None = None) -> jnp.ndarray:
    r"""Displacement relative to the distance between class centres, ``D_i / centre_distance``.

    ``1`` means a noisy feature moved as far as one class centre is from another (for ``K = 2``
    positive features: onto the other class's clean mean).
    """
    return displacement(H, true_labels, labels, K) / centre_distance(H, true_labels, labels, K)


def class_spread(H, true_labels, labels, K: int | None = None) -> jnp.ndarray:
    r"""Per-class root-mean-square distance of *all* samples of a true class from its clean mean.

    .. math:: s_k = \Big(\frac1{n_k}\sum_{y_i = k}\lVert h_i - \bar h_k\rVert^2\Big)^{1/2}

    Returns:
        ``(K,)`` spreads; 0 for a collapsed clean class without noise.
    """
    y, _, K, _ = _masks(true_labels, labels, K)
    Hb = clean_means(H, true_labels, labels, K)
    sq = jnp.sum((jnp.asarray(H) - Hb[:, y]) ** 2, axis=0)
    A = np.zeros((y.size, K))
    A[np.arange(y.size), y] = 1.0
    return jnp.sqrt(sq @ jnp.asarray(A / A.sum(axis=0, keepdims=True)))


def nc1_noisy(H, labels, K: int | None = None) -> jnp.ndarray:
    r"""NC1 computed with the observed (noisy) labels, as the paper's experiments do:
    :func:`ufm.metrics.nc1` ``(H, labels)`` (``(1/K) Tr(Sigma_W Sigma_B^+)``, weighted global mean)."""
    return metrics.nc1(H, np.asarray(labels), K=K)


def segment_crossing(W, b, H, true_labels, labels, K: int | None = None) -> jnp.ndarray:
    r"""Generalization proxy (**ufm's, not the paper's**): for each noisy sample, the fraction of the
    segment from its true class's clean mean to its feature that the classifier assigns to another class.

    The dilated region of class ``k`` is taken to be the union of the segments
    ``hbar_k + s (h_i - hbar_k)``, ``s in [0, 1]``, over its noisy samples: the inputs a network of
    limited expressivity maps between the class centre and a memorized outlier. A clean test point
    landing uniformly on a segment is misclassified with this probability. The logits are affine in
    ``s``, so class ``k`` wins on an interval of ``s`` computed exactly:
    ``z_k(s) - z_j(s) = A_j + s B_j >= 0`` for all ``j``.

    Args:
        W: (K, d) classifier. b: (K,) bias or ``None``. H, true_labels, labels, K: as above.

    Returns:
        ``(M,)`` fractions in ``[0, 1]``.
    """
    y, _, K, noisy = _masks(true_labels, labels, K)
    idx = np.flatnonzero(noisy)
    Hb = clean_means(H, true_labels, labels, K)[:, y[idx]]
    W = jnp.asarray(W)
    z0 = W @ Hb + (0.0 if b is None else jnp.asarray(b)[:, None])  # (K, M) at s = 0
    dz = W @ (jnp.asarray(H)[:, idx] - Hb)  # (K, M) slope in s
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


def clean_mean_accuracy(W, b, H, true_labels, labels, K: int | None = None) -> jnp.ndarray:
    r"""Generalization proxy (**ufm's**): the fraction of classes whose clean mean (a clean test point
    at the class centre) the classifier ``argmax_j (W hbar_k + b)_j`` assigns to class ``k``."""
    Hb = clean_means(H, true_labels, labels, K)
    Z = jnp.asarray(W) @ Hb + (0.0 if b is None else jnp.asarray(b)[:, None])
    return jnp.mean(jnp.argmax(Z, axis=0) == jnp.arange(Hb.shape[1]))

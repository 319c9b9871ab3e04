r"""NC2 and its relatives: distances of Gram matrices to a simplex ETF or an orthogonal frame,
equinorm and equiangularity.

A Gram matrix ``G: (K, K)`` is taken of the classifier rows (``W W^T``), of the centred class means
(``Mbar^T Mbar``) or of the uncentred ones (``Hbar^T Hbar``); the targets are

.. math::

    \frac{P}{\sqrt{K-1}}, \quad P = I_K - \frac{1}{K} 11^T \quad \text{(simplex ETF)}, \qquad
    \frac{I_K}{\sqrt{K}} \quad \text{(orthogonal frame)}.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ufm.metrics._checks import check_gram, check_W, jit_with_labels
from ufm.metrics._class_means import centred_means, class_means
from ufm._internal.runtime import register_compiled

__all__ = [
    "cosines",
    "equiangularity",
    "equinorm",
    "equinorm_H",
    "equinorm_W",
    "max_angle_deviation",
    "nc2_H",
    "nc2_W",
    "nc2_etf",
    "nc2_orth_H",
    "nc2_orth_W",
    "orthogonal_frame_distance",
    "simplex_target",
    "unit",
]


def simplex_target(K: int) -> jax.Array:
    r"""The simplex-ETF Gram normalized to unit Frobenius norm.

    .. math::

        \frac{P}{\sqrt{K-1}}, \qquad P = I_K - \frac{1}{K} 11^T.
    """
    return (jnp.eye(K) - jnp.ones((K, K)) / K) / jnp.sqrt(K - 1.0)


def unit(X: jax.Array) -> jax.Array:
    """``X / ||X||_F`` (NaN when ``X = 0``)."""
    return X / jnp.linalg.norm(X)


@register_compiled
@jax.jit
def nc2_etf(G: Any) -> jax.Array:
    r"""Distance of a normalized Gram matrix to the simplex ETF.

    .. math::

        \left\| \frac{G}{\|G\|_F} - \frac{P}{\sqrt{K-1}} \right\|_F,
        \qquad P = I_K - \frac{1}{K} 11^T.

    Zero iff ``G`` is a positive multiple of ``P``: K equal-norm vectors with pairwise cosines
    ``-1/(K-1)``. NaN if ``G = 0``.

    Args:
        G: (K, K) Gram matrix, K >= 2.

    Returns:
        Scalar distance in ``[0, 2]``.

    References:
        Papyan, Han & Donoho, PNAS 2020.
    """
    G = check_gram(G)
    return jnp.linalg.norm(unit(G) - simplex_target(G.shape[0]))


@register_compiled
@jax.jit
def nc2_W(W: Any) -> jax.Array:
    r"""NC2 of the classifier: :func:`nc2_etf` of ``G = W W^T`` (uncentred rows).

    .. math::

        \left\| \frac{W W^T}{\|W W^T\|_F} - \frac{P}{\sqrt{D-1}} \right\|_F

    Args:
        W: (D, d) any matrix with D >= 2 rows (usually D = K classifier rows).

    Returns:
        Scalar distance.

    References:
        Papyan, Han & Donoho, PNAS 2020.
    """
    W = check_W(W)
    return nc2_etf(W @ W.T)


@jit_with_labels
def nc2_H(
    H: Any,
    labels: Any,
    K: int | None = None,
    *,
    global_mean: str = "weighted",
    layout: str = "dN",
) -> jax.Array:
    r"""NC2 of the features: :func:`nc2_etf` of the centred-means Gram ``G = Mbar^T Mbar``.

    .. math::

        \left\| \frac{\bar M^T \bar M}{\|\bar M^T \bar M\|_F}
        - \frac{P}{\sqrt{K-1}} \right\|_F

    Args:
        H: features, ``(d, N)``, or ``(N, d)`` with ``layout="Nd"``.
        labels: (N,) integer labels in ``0..K-1``.
        K: number of classes; default ``max(labels) + 1``.
        global_mean: ``"weighted"`` (default) or ``"unweighted"`` centring.
        layout: ``"dN"`` (default) or ``"Nd"``.

    Returns:
        Scalar distance.

    References:
        Papyan, Han & Donoho, PNAS 2020.
    """
    Mbar = centred_means(H, labels, K, global_mean=global_mean, layout=layout)
    return nc2_etf(Mbar.T @ Mbar)


@register_compiled
@jax.jit
def equinorm(X: Any) -> jax.Array:
    r"""Equinorm deviation of the columns of ``X``: coefficient of variation of their norms.

    .. math::

        \frac{\operatorname{std}_k \|x_k\|}{\operatorname{mean}_k \|x_k\|}

    (population standard deviation, ``ddof=0``).

    Args:
        X: (d, K) vectors as columns.

    Returns:
        Scalar, 0 iff all columns have equal norm.

    References:
        Papyan, Han & Donoho, PNAS 2020 (Figure 2).
    """
    X = jnp.asarray(X, dtype=jnp.float64)
    if X.ndim != 2:
        raise ValueError(f"X must have shape (d, K), got X.shape={X.shape}")
    norms = jnp.linalg.norm(X, axis=0)
    return jnp.std(norms) / jnp.mean(norms)


@register_compiled
@jax.jit
def equinorm_W(W: Any) -> jax.Array:
    r""":func:`equinorm` of the classifier rows ``w_k`` (``W: (K, d)``).

    .. math::

        \operatorname{std}_k \|w_k\| / \operatorname{mean}_k \|w_k\|

    Args:
        W: (K, d) classifier.

    Returns:
        Scalar.

    References:
        Papyan, Han & Donoho, PNAS 2020.
    """
    return equinorm(check_W(W).T)


@jit_with_labels
def equinorm_H(
    H: Any,
    labels: Any,
    K: int | None = None,
    *,
    global_mean: str = "weighted",
    layout: str = "dN",
) -> jax.Array:
    r""":func:`equinorm` of the centred class means ``h_k - h_G``.

    .. math::

        \operatorname{std}_k \|h_k - h_G\| / \operatorname{mean}_k \|h_k - h_G\|

    Args:
        H: features, ``(d, N)``, or ``(N, d)`` with ``layout="Nd"``.
        labels: (N,) integer labels in ``0..K-1``.
        K: number of classes; default ``max(labels) + 1``.
        global_mean: ``"weighted"`` (default) or ``"unweighted"`` centring.
        layout: ``"dN"`` (default) or ``"Nd"``.

    Returns:
        Scalar.

    References:
        Papyan, Han & Donoho, PNAS 2020.
    """
    return equinorm(centred_means(H, labels, K, global_mean=global_mean, layout=layout))


@register_compiled
@jax.jit
def cosines(G: Any) -> jax.Array:
    r"""Cosine matrix of a Gram matrix.

    .. math::

        \cos_{kl} = \frac{G_{kl}}{\sqrt{G_{kk} G_{ll}}}

    Args:
        G: (K, K) Gram matrix with positive diagonal.

    Returns:
        (K, K) cosines (ones on the diagonal).
    """
    G = check_gram(G)
    s = jnp.sqrt(jnp.diag(G))
    return G / (s[:, None] * s[None, :])


def _off_diagonal(A: jax.Array) -> jax.Array:
    """The K(K-1) off-diagonal entries of a (K, K) matrix."""
    K = A.shape[0]
    return A[~np.eye(K, dtype=bool)]


@register_compiled
@jax.jit
def equiangularity(G: Any) -> jax.Array:
    r"""Equiangularity: standard deviation of the off-diagonal cosines.

    .. math::

        \operatorname{std}_{k \ne l} \cos_{kl}, \qquad
        \cos_{kl} = \frac{G_{kl}}{\sqrt{G_{kk} G_{ll}}}

    (population standard deviation over the K(K-1) ordered pairs). Zero for any equiangular set,
    not only a simplex ETF; see :func:`max_angle_deviation` for the ETF angle.

    Args:
        G: (K, K) Gram matrix, e.g. ``W @ W.T`` or ``Mbar.T @ Mbar``.

    Returns:
        Scalar.

    References:
        Papyan, Han & Donoho, PNAS 2020 (Figure 3).
    """
    return jnp.std(_off_diagonal(cosines(G)))


@register_compiled
@jax.jit
def max_angle_deviation(G: Any) -> jax.Array:
    r"""Largest deviation of a pairwise cosine from the simplex-ETF value ``-1/(K-1)``.

    .. math::

        \max_{k \ne l} \left| \cos_{kl} + \frac{1}{K-1} \right|

    Args:
        G: (K, K) Gram matrix.

    Returns:
        Scalar, 0 iff all pairwise cosines equal ``-1/(K-1)``.

    References:
        Papyan, Han & Donoho, PNAS 2020 (Figure 4, "maximal-angle equiangularity").
    """
    G = check_gram(G)
    K = G.shape[0]
    return jnp.max(jnp.abs(_off_diagonal(cosines(G)) + 1.0 / (K - 1)))


@register_compiled
@jax.jit
def orthogonal_frame_distance(G: Any) -> jax.Array:
    r"""Distance of a normalized Gram matrix to an orthogonal frame.

    .. math::

        \left\| \frac{G}{\|G\|_F} - \frac{I_K}{\sqrt{K}} \right\|_F

    Zero iff ``G`` is a positive multiple of the identity (K orthogonal vectors of equal norm).
    Meant for uncentred Grams (e.g. ``Hbar^T Hbar`` of nonnegative features): centring an
    orthogonal frame turns it into a simplex ETF. NaN if ``G = 0``.

    Args:
        G: (K, K) Gram matrix.

    Returns:
        Scalar distance.

    References:
        Nguyen et al., "Memorization-dilation: modeling neural collapse under noise", ICLR 2023,
        arXiv 2206.05530 (orthogonal frames of nonnegative features).
    """
    G = check_gram(G)
    K = G.shape[0]
    return jnp.linalg.norm(unit(G) - jnp.eye(K) / jnp.sqrt(float(K)))


@jit_with_labels
def nc2_orth_H(H: Any, labels: Any, K: int | None = None, *, layout: str = "dN") -> jax.Array:
    r""":func:`orthogonal_frame_distance` of the uncentred class means, ``G = Hbar^T Hbar``.

    .. math::

        \left\| \frac{\bar H^T \bar H}{\|\bar H^T \bar H\|_F} - \frac{I_K}{\sqrt{K}}
        \right\|_F

    Independent of the global mean (no centring).

    Args:
        H: features (typically nonnegative, after a ReLU), ``(d, N)``, or ``(N, d)`` with
            ``layout="Nd"``.
        labels: (N,) integer labels in ``0..K-1``.
        K: number of classes; default ``max(labels) + 1``.
        layout: ``"dN"`` (default) or ``"Nd"``.

    Returns:
        Scalar distance.

    References:
        Nguyen et al., ICLR 2023, arXiv 2206.05530.
    """
    Hbar, _ = class_means(H, labels, K, layout=layout)
    return orthogonal_frame_distance(Hbar.T @ Hbar)


@register_compiled
@jax.jit
def nc2_orth_W(W: Any) -> jax.Array:
    r""":func:`orthogonal_frame_distance` of the classifier rows, ``G = W W^T``.

    .. math::

        \left\| \frac{W W^T}{\|W W^T\|_F} - \frac{I_K}{\sqrt{K}} \right\|_F

    Args:
        W: (K, d) classifier.

    Returns:
        Scalar distance.

    References:
        Nguyen et al., ICLR 2023, arXiv 2206.05530.
    """
    W = check_W(W)
    return orthogonal_frame_distance(W @ W.T)

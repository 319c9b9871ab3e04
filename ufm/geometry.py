r"""Reference configurations of K vectors and a classifier that names the structure of a given one.

Two structures appear at neural collapse:

- the **simplex ETF**: K vectors of equal norm with pairwise cosines ``-1/(K-1)``, Gram matrix
  proportional to :math:`P = I_K - 11^T/K` (Papyan, Han & Donoho, PNAS 2020);
- the **orthogonal frame**: K orthogonal vectors of equal norm, Gram matrix proportional to
  :math:`I_K` (class means of nonnegative features; Nguyen et al., ICLR 2023, arXiv 2206.05530).

Vectors are the rows of a (K, d) matrix, as for the classifier ``W``. Class means are columns of
``Hbar: (d, K)``; use :func:`structure_of_means` for them.
"""

from __future__ import annotations

import functools
import math
import numbers
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ufm._internal.deprecation import moved_attribute
from ufm._internal.validation import check_finite_positive
from ufm.metrics import class_means, nc2_etf, orthogonal_frame_distance
from ufm._internal.runtime import register_compiled

__all__ = [
    "Structure",
    "structure_from_grams",
    "structure_of_gram",
    "structure_of_means",
    "structure_of_rows",
    "orthogonal_frame",
    "random_rotation",
    "simplex_etf",
]


# ---------------------------------------------------------------- input checks


def _check_K(K: Any) -> int:
    if isinstance(K, bool) or not isinstance(K, (numbers.Integral, np.integer)) or K < 2:
        raise ValueError(f"K must be an integer >= 2, got K={K!r}")
    return int(K)


def _check_d(d: Any, minimum: int, what: str) -> int:
    if isinstance(d, bool) or not isinstance(d, (numbers.Integral, np.integer)):
        raise ValueError(f"d must be an integer >= {minimum}, got d={d!r}")  # noqa: TRY004
    if d < minimum:
        raise ValueError(f"d={d} < {minimum}: {what}; pass d >= {minimum}")
    return int(d)


def _check_tol(name: str, value: Any) -> float:
    v = float(value)
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {name}={value}")
    return v


# ---------------------------------------------------------------- constructors


def random_rotation(d: int, key_or_seed: Any) -> jax.Array:
    r"""A Haar-random orthogonal matrix.

    .. math::

        Q = Q_0 \operatorname{diag}(\operatorname{sign} \operatorname{diag} R), \qquad
        Q_0 R = A, \quad A_{ij} \sim \mathcal{N}(0, 1)

    (QR of a Gaussian matrix, signs fixed so that the law is Haar: ``jax.random.orthogonal``).

    Args:
        d: size of the matrix, >= 1.
        key_or_seed: a ``jax.random`` key or an integer seed.

    Returns:
        (d, d) orthogonal float64 matrix.

    References:
        Mezzadri, "How to generate random matrices from the classical compact groups",
        Notices of the AMS 2007.
    """
    d = _check_d(d, 1, "a rotation needs at least one dimension")
    if isinstance(key_or_seed, (numbers.Integral, np.integer)):
        key_or_seed = jax.random.PRNGKey(int(key_or_seed))
    return _haar(key_or_seed, d)


@register_compiled
@functools.partial(jax.jit, static_argnums=1)
def _haar(key: jax.Array, d: int) -> jax.Array:
    return jax.random.orthogonal(key, d, dtype=float)


def _embed(X: np.ndarray, d: int, key_or_seed: Any) -> jax.Array:
    """Pad the rows of X with zeros to width d, then rotate by a random Q if a seed is given."""
    X = np.pad(np.asarray(X, dtype=np.float64), ((0, 0), (0, d - X.shape[1])))
    if key_or_seed is None:
        return jnp.asarray(X)
    return jnp.asarray(X) @ random_rotation(d, key_or_seed)


def simplex_etf(
    K: int, d: int | None = None, scale: float = 1.0, key_or_seed: Any = None
) -> jax.Array:
    r"""The rows of a (K, d) simplex equiangular tight frame.

    .. math::

        X X^T = \mathrm{scale}^2 \, \frac{K}{K-1} \, P, \qquad P = I_K - \frac{1}{K} 11^T,

    so every row has norm ``scale``, pairwise cosines are ``-1/(K-1)`` and the rows sum to zero.
    Built as ``scale * sqrt(K/(K-1)) * U`` with ``U: (K, K-1)`` an orthonormal basis of the range
    of ``P`` (QR of its first K-1 columns), padded with zero columns to width ``d``; with a seed
    the result is then multiplied on the right by a Haar-random rotation of ``R^d``.

    Args:
        K: number of vectors, >= 2.
        d: ambient dimension, >= K-1; default K.
        scale: norm of each row, > 0.
        key_or_seed: None (deterministic frame) or a ``jax.random`` key / integer seed for a
            random rotation.

    Returns:
        (K, d) float64 matrix.

    Raises:
        ValueError: if ``K < 2``, ``d < K-1`` or ``scale <= 0``.

    References:
        Papyan, Han & Donoho, "Prevalence of neural collapse during the terminal phase of deep
        learning training", PNAS 2020.
    """
    K = _check_K(K)
    d = K if d is None else _check_d(d, K - 1, f"a simplex ETF of K={K} vectors needs d >= K-1")
    scale = check_finite_positive("scale", scale)
    P = np.eye(K) - np.ones((K, K)) / K
    U, _ = np.linalg.qr(P[:, : K - 1])  # (K, K-1), U U^T = P
    return _embed(scale * math.sqrt(K / (K - 1)) * U, d, key_or_seed)


def orthogonal_frame(
    K: int, d: int | None = None, scale: float = 1.0, key_or_seed: Any = None
) -> jax.Array:
    r"""The rows of a (K, d) orthogonal frame.

    .. math::

        X X^T = \mathrm{scale}^2 \, I_K.

    Without a seed, ``X = scale * [I_K, 0]`` (nonnegative, disjoint supports, as for class means
    of ReLU features); with a seed it is rotated by a Haar-random rotation (no longer
    nonnegative).

    Args:
        K: number of vectors, >= 2.
        d: ambient dimension, >= K; default K.
        scale: norm of each row, > 0.
        key_or_seed: None or a ``jax.random`` key / integer seed for a random rotation.

    Returns:
        (K, d) float64 matrix.

    Raises:
        ValueError: if ``K < 2``, ``d < K`` or ``scale <= 0``.

    References:
        Nguyen et al., "Memorization-dilation: modeling neural collapse under noise", ICLR 2023,
        arXiv 2206.05530.
    """
    K = _check_K(K)
    d = K if d is None else _check_d(d, K, f"an orthogonal frame of K={K} vectors needs d >= K")
    scale = check_finite_positive("scale", scale)
    return _embed(scale * np.eye(K), d, key_or_seed)


# ---------------------------------------------------------------- classification


class Structure(NamedTuple):
    """What :func:`structure_of_gram` found.

    Attributes:
        kind: ``"zero"``, ``"orthogonal_frame"``, ``"simplex_etf"`` or ``"other"``.
        etf_distance: :func:`ufm.metrics.nc2_etf` of the (centred) Gram.
        orth_distance: :func:`ufm.metrics.orthogonal_frame_distance` of the (uncentred) Gram.
        equinorm: std/mean of the vector norms (uncentred).
        rank: numerical rank of the uncentred Gram (eigenvalues above ``tol**2`` times the
            largest, and above ``atol**2``).
        max_norm: largest vector norm.
        tol: tolerance applied to the two distances.
        atol: absolute norm below which the configuration counts as zero.
    """

    kind: str
    etf_distance: float
    orth_distance: float
    equinorm: float
    rank: int
    max_norm: float
    tol: float
    atol: float


def structure_from_grams(
    G_orth: Any,
    G_etf: Any,
    tol: float,
    atol: float,
    etf: float | None = None,
    orth: float | None = None,
) -> Structure:
    r"""The :class:`Structure` of K vectors from two Gram matrices: the uncentred one for the
    orthogonal-frame test, norms and rank, and the one the ETF test reads (centred for class means).

    .. math::

        d_\mathrm{ETF} = \left\| \frac{G_\mathrm{etf}}{\|G_\mathrm{etf}\|_F}
        - \frac{P}{\sqrt{K-1}} \right\|_F, \qquad
        d_\mathrm{orth} = \left\| \frac{G_\mathrm{orth}}{\|G_\mathrm{orth}\|_F}
        - \frac{I_K}{\sqrt{K}} \right\|_F,

    with the decision rule of :func:`structure_of_gram` (which is this function with
    ``G_orth = G_etf = G``). A zero ``G_etf`` gives ``d_ETF = NaN`` (no ETF).

    Args:
        G_orth: (K, K) uncentred Gram matrix.
        G_etf: (K, K) Gram matrix for the ETF test.
        tol: tolerance on the normalized distances, >= 0.
        atol: norm below which the vectors count as zero, >= 0.
        etf: :math:`d_\mathrm{ETF}` when the caller computed it already (e.g. batched over many
            Grams); None computes it.
        orth: :math:`d_\mathrm{orth}` likewise.

    Returns:
        A :class:`Structure`.

    Raises:
        ValueError: if ``tol`` or ``atol`` is negative or not finite.

    References:
        Papyan, Han & Donoho, PNAS 2020 (simplex ETF); Nguyen et al., ICLR 2023,
        arXiv 2206.05530 (orthogonal frame).
    """
    tol, atol = _check_tol("tol", tol), _check_tol("atol", atol)
    G_orth = np.asarray(G_orth, dtype=np.float64)
    G_etf = np.asarray(G_etf, dtype=np.float64)
    norms = np.sqrt(np.clip(np.diag(G_orth), 0.0, None))
    max_norm = float(norms.max())
    eigs = np.linalg.eigvalsh(G_orth)
    rank = int(np.sum(eigs > max(tol**2 * eigs.max(), atol**2)))
    if max_norm <= atol:
        return Structure("zero", math.nan, math.nan, math.nan, 0, max_norm, tol, atol)
    if etf is None:
        etf = float(nc2_etf(G_etf)) if np.any(G_etf) else math.nan
    if orth is None:
        orth = float(orthogonal_frame_distance(G_orth))
    equinorm = float(norms.std() / norms.mean())
    if orth <= tol:
        kind = "orthogonal_frame"
    elif etf <= tol:
        kind = "simplex_etf"
    else:
        kind = "other"
    return Structure(kind, etf, orth, equinorm, rank, max_norm, tol, atol)


def structure_of_gram(G: Any, *, tol: float = 1e-6, atol: float = 1e-12) -> Structure:
    r"""Name the structure of K vectors from their Gram matrix.

    .. math::

        d_\mathrm{ETF} = \left\| \frac{G}{\|G\|_F} - \frac{P}{\sqrt{K-1}} \right\|_F, \qquad
        d_\mathrm{orth} = \left\| \frac{G}{\|G\|_F} - \frac{I_K}{\sqrt{K}} \right\|_F.

    The kind is ``"zero"`` if every norm ``sqrt(G_kk) <= atol``; else ``"orthogonal_frame"`` if
    ``d_orth <= tol``; else ``"simplex_etf"`` if ``d_ETF <= tol``; else ``"other"``. The two
    targets are ``sqrt(2 - 2 sqrt((K-1)/K))`` apart, so both tests cannot pass together for any
    sensible ``tol``. Runs on the host (not traceable: it returns a string).

    Args:
        G: (K, K) Gram matrix, K >= 2.
        tol: tolerance on the normalized distances; default 1e-6 (exact constructions). For
            trained networks pass something like 0.05.
        atol: norm below which the vectors count as zero.

    Returns:
        A :class:`Structure`.

    References:
        Papyan, Han & Donoho, PNAS 2020 (simplex ETF); Nguyen et al., ICLR 2023,
        arXiv 2206.05530 (orthogonal frame).
    """
    G = np.asarray(G, dtype=np.float64)
    if G.ndim != 2 or G.shape[0] != G.shape[1] or G.shape[0] < 2:
        raise ValueError(
            f"G must be a square (K, K) Gram matrix with K >= 2, got G.shape={G.shape}"
        )
    return structure_from_grams(G, G, tol, atol)


def structure_of_rows(X: Any, *, tol: float = 1e-6, atol: float = 1e-12) -> Structure:
    r""":func:`structure_of_gram` of the rows of ``X`` (e.g. the classifier ``W``), ``G = X X^T``.

    .. math::

        G = X X^T

    Rows are not centred: K rows that form a simplex ETF about a nonzero centre are ``"other"``.

    Args:
        X: (K, d) vectors as rows, K >= 2.
        tol: tolerance on the normalized distances.
        atol: norm below which the vectors count as zero.

    Returns:
        A :class:`Structure`.

    References:
        Papyan, Han & Donoho, PNAS 2020; Nguyen et al., ICLR 2023, arXiv 2206.05530.
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] < 2:
        raise ValueError(f"X must have shape (K, d) with K >= 2 rows, got X.shape={X.shape}")
    return structure_of_gram(X @ X.T, tol=tol, atol=atol)


def structure_of_means(
    H: Any,
    labels: Any,
    K: int | None = None,
    *,
    tol: float = 1e-6,
    atol: float = 1e-12,
    global_mean: str = "unweighted",
    layout: str = "dN",
) -> Structure:
    r"""Name the structure of the class means of features ``H``.

    .. math::

        d_\mathrm{orth} \text{ from } \bar H^T \bar H, \qquad
        d_\mathrm{ETF} \text{ from } \bar M^T \bar M, \quad \bar M = \bar H - h_G 1^T.

    The orthogonal-frame test uses the uncentred means (an orthogonal frame becomes a simplex
    ETF once centred); the ETF test uses the centred means, as NC2 does. Zero, rank and equinorm
    refer to the uncentred means. The default centre is the *unweighted* mean of the class means,
    the centre of the K points, so that the answer does not depend on class sizes; pass
    ``global_mean="weighted"`` to match :mod:`ufm.metrics`' default.

    Args:
        H: features, ``(d, N)`` (one sample per column) or, with ``layout="Nd"``, ``(N, d)`` (one
            sample per row, as networks give them).
        labels: (N,) integer labels in ``0..K-1``.
        K: number of classes; default ``max(labels) + 1``.
        tol: tolerance on the normalized distances.
        atol: norm below which the means count as zero.
        global_mean: ``"unweighted"`` (default) or ``"weighted"`` centring for the ETF test.
        layout: ``"dN"`` (default) or ``"Nd"``, as in :mod:`ufm.metrics`.

    Returns:
        A :class:`Structure`.

    References:
        Papyan, Han & Donoho, PNAS 2020; Nguyen et al., ICLR 2023, arXiv 2206.05530.
    """
    Hbar, h_G = class_means(H, labels, K, global_mean=global_mean, layout=layout)
    Mbar = Hbar - h_G[:, None]
    return structure_from_grams(Hbar.T @ Hbar, Mbar.T @ Mbar, tol, atol)


_RENAMED = {
    "classify_gram": "structure_of_gram",
    "classify_rows": "structure_of_rows",
    "classify_means": "structure_of_means",
}


def __getattr__(name: str) -> Any:
    """Old names (kept for one release) resolve to the new ones with a DeprecationWarning."""
    if name in _RENAMED:
        return moved_attribute("ufm.geometry", name, "ufm.geometry", _RENAMED[name])
    raise AttributeError(f"module 'ufm.geometry' has no attribute {name!r}")

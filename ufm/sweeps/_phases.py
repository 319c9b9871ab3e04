r"""The geometry atlas: name the phase of a solution from its Gram matrices.

A sweep keeps, for every solution, the uncentred Gram of the class means
``G_H = Hbar^T Hbar`` (K x K) and the Gram of the classifier rows ``G_W = W W^T``. The phase is read
from them with :func:`ufm.geometry.structure_of_gram` (the zero / orthogonal-frame / simplex-ETF tests
live there, in one place) plus the two tests that need the class counts:

- ``minority_collapse``: imbalanced counts and the minority classifier rows coincide
  (``||w_k - w_l|| <= tol ||W||`` for all minority ``k, l``; Fang et al. 2021) or some but not all
  class means vanish (Dang et al. 2023, the MSE form);
- ``seli_frame``: imbalanced counts, nonzero, no collapse, neither ETF nor orthogonal: the
  imbalanced frame that replaces the ETF (Thrampoulidis et al. 2022, "SELI");
- ``low_rank``: nonzero class means of rank below ``K - 1`` that are none of the above
  (``d < K - 1`` and deep low-rank solutions; Garrod & Keating 2024);
- ``other``: anything else, described by its Gram signature (:func:`gram_signature`).

Solutions that are not certified get ``uncertified``: a phase is only named for a certified point.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np
from numpy.typing import ArrayLike

from ufm import geometry, metrics
from ufm._internal.runtime import register_compiled

__all__ = ["PHASES", "CODE", "phase_of", "phase_codes", "gram_distances", "gram_signature",
           "order_parameter"]

PHASES = (
    "zero",
    "simplex_etf",
    "orthogonal_frame",
    "minority_collapse",
    "seli_frame",
    "low_rank",
    "other",
    "uncertified",
)
CODE = {name: i for i, name in enumerate(PHASES)}


def _minority_collapsed(G_W, G_H, counts, tol, atol) -> bool:
    counts = np.asarray(counts)
    if counts.min() == counts.max():
        return False
    h_norms = np.sqrt(np.clip(np.diag(G_H), 0.0, None))
    vanished = h_norms <= max(atol, tol * h_norms.max())
    if vanished.any() and not vanished.all():
        return True
    minority = np.flatnonzero(counts < counts.max())
    if minority.size < 2:
        return False
    d = np.diag(G_W)
    sub = G_W[np.ix_(minority, minority)]
    dist2 = d[minority][:, None] + d[minority][None, :] - 2.0 * sub
    return bool(np.sqrt(np.clip(dist2, 0.0, None)).max() <= tol * np.sqrt(d.max()))


# both distances of a stack of Grams in one compiled call (jit compiles on the first call)
_DISTANCES = register_compiled(jax.jit(jax.vmap(
    lambda g: (metrics.nc2_etf(g), metrics.orthogonal_frame_distance(g)))))


def gram_distances(G_H: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """:func:`ufm.metrics.nc2_etf` and :func:`ufm.metrics.orthogonal_frame_distance` of a stack
    of Grams ``(..., K, K)``, in one compiled call (NaN for a zero Gram); for :func:`phase_of`."""
    G = np.asarray(G_H, dtype=np.float64)
    flat = G.reshape((-1,) + G.shape[-2:])
    etf, orth = _DISTANCES(flat)
    etf = np.where(np.any(flat != 0, axis=(1, 2)), np.asarray(etf), np.nan)
    return etf.reshape(G.shape[:-2]), np.asarray(orth).reshape(G.shape[:-2])


def phase_of(G_H: ArrayLike, G_W: ArrayLike, counts: Sequence[int], d: int, *, tol: float = 1e-6,
             atol: float = 1e-6, distances: tuple[ArrayLike, ArrayLike] | None = None) -> str:
    r"""Phase name of one solution from its Gram matrices.

    .. math:: G_H = \bar H^T \bar H, \qquad G_W = W W^T

    Args:
        G_H: (K, K) uncentred Gram of the class means.
        G_W: (D, D) Gram of the classifier rows (``D = K`` for one-hot losses).
        counts: per-class sample counts ``(n_1, ..., n_K)``.
        d: feature dimension.
        tol: tolerance on the normalized distances of :func:`ufm.geometry.structure_of_gram`.
        distances: optional ``(etf, orth)`` of ``G_H`` from :func:`gram_distances` (batched).
        atol: norm below which class means count as zero. The default 1e-6 is what a certified
            solve (relative KKT residual 1e-10) reaches at a zero minimizer away from its
            threshold: the residual bounds the distance to the origin by ``KKT / lambda_min``.

    Returns:
        One of :data:`PHASES` (never ``"uncertified"``: the caller decides that).

    References:
        Papyan, Han & Donoho, PNAS 2020; Fang et al., PNAS 2021 (arXiv 2101.12699, minority
        collapse); Thrampoulidis et al., NeurIPS 2022 (arXiv 2208.05512, SELI); Dang et al.,
        ICML 2023 (arXiv 2301.00437).
    """
    if distances is None:
        s = geometry.structure_of_gram(G_H, tol=tol, atol=atol)
    else:  # the same rule, with the two distances computed for a whole chunk at once
        s = geometry.structure_from_grams(G_H, G_H, tol, atol, etf=distances[0], orth=distances[1])
    if s.kind == "zero":
        return "zero"
    K = G_H.shape[0]
    if G_W.shape == G_H.shape and _minority_collapsed(G_W, G_H, counts, tol, atol):
        return "minority_collapse"
    if s.kind != "other":
        return s.kind
    if len(set(counts)) > 1:
        return "seli_frame"
    if s.rank < K - 1:
        return "low_rank"
    return "other"


def phase_codes(G_H: ArrayLike, G_W: ArrayLike, certified: ArrayLike, counts: Sequence[int],
                d: int) -> np.ndarray:
    """Codes into :data:`PHASES` of a chunk's solutions, leading axes ``(L, S)`` (points, starts).

    :func:`phase_of` for every certified solution (the two Gram distances computed for the whole
    chunk in one call, :func:`gram_distances`); ``"uncertified"`` where ``certified`` is false.

    Args:
        G_H: ``(L, S, K, K)`` class-mean Grams.
        G_W: ``(L, S, D, D)`` classifier Grams.
        certified: ``(L, S)`` bool, the solve was certified.
        counts: per-class sample counts.
        d: feature dimension.

    Returns:
        ``(L, S)`` int8 codes.
    """
    G_H, G_W, ok = np.asarray(G_H), np.asarray(G_W), np.asarray(certified)
    L, S = ok.shape
    phase = np.empty((L, S), np.int8)
    etf, orth = gram_distances(G_H)
    for i in range(L):
        for s in range(S):
            name = (phase_of(G_H[i, s], G_W[i, s], counts, d, distances=(etf[i, s], orth[i, s]))
                    if ok[i, s] else "uncertified")
            phase[i, s] = CODE[name]
    return phase


def gram_signature(G_H: ArrayLike, digits: int = 3) -> str:
    r"""A short description of a Gram matrix: rank and trace-normalized eigenvalues.

    .. math:: \mathrm{eig}(G_H) / \mathrm{tr}(G_H), \text{ largest first}

    Two solutions with the same signature have the same class-mean geometry up to rotation and
    scale.
    """
    G = np.asarray(G_H, dtype=np.float64)
    eig = np.sort(np.linalg.eigvalsh(G))[::-1]
    tr = eig.sum()
    if tr <= 0:
        return "zero"
    e = eig / tr
    rank = int(np.sum(e > 1e-6))
    return f"rank {rank}; eig/tr " + ",".join(f"{v:.{digits}f}" for v in e[:rank])


def order_parameter(phase: str, G_H: ArrayLike) -> float:
    r"""A continuous quantity that is exactly 0 in ``phase`` and grows away from it.

    ``zero``: the largest squared class-mean norm ``max_k G_kk`` (it vanishes linearly in the
    distance to a continuous zero threshold, where norms vanish like its square root).
    ``simplex_etf`` / ``orthogonal_frame``: the normalized distance of :func:`ufm.geometry.structure_of_gram`.
    Used to place a boundary between bisection points by extrapolating to 0.
    """
    G = np.asarray(G_H, dtype=np.float64)
    if phase == "zero":
        return float(np.max(np.diag(G)))
    s = geometry.structure_of_gram(G, tol=1.0, atol=0.0)
    if phase == "simplex_etf":
        return s.etf_distance
    if phase == "orthogonal_frame":
        return s.orth_distance
    raise ValueError(
        f"phase must be 'zero', 'simplex_etf' or 'orthogonal_frame' to have an order parameter, "
        f"got phase={phase!r}"
    )

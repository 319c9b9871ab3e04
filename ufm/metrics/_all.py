"""Every jitted metric of :mod:`ufm.metrics` at once, by name."""

from __future__ import annotations

from typing import Any

import jax

from ufm.metrics._checks import check_W, jit_with_labels
from ufm.metrics._classifier import nc3, nc3_duality, nc4
from ufm.metrics._class_means import centred_means
from ufm.metrics._nc1 import cdnv, nc1, nc1_trace_ratio
from ufm.metrics._nc2 import (
    equiangularity,
    equinorm,
    equinorm_W,
    max_angle_deviation,
    nc2_etf,
    nc2_orth_H,
    orthogonal_frame_distance,
)

__all__ = ["all_metrics"]


@jit_with_labels
def all_metrics(
    W: Any,
    H: Any,
    labels: Any,
    b: Any = None,
    K: int | None = None,
    *,
    global_mean: str = "weighted",
    layout: str = "dN",
) -> dict[str, jax.Array]:
    """Every metric of this module, by name.

    Keys: ``nc1``, ``nc1_trace_ratio``, ``cdnv``, ``nc2_W``, ``nc2_H``, ``equinorm_W``,
    ``equinorm_H``, ``equiangularity_W``, ``equiangularity_H``, ``max_angle_deviation_W``,
    ``max_angle_deviation_H``, ``nc2_orth_W``, ``nc2_orth_H``, ``nc3``, ``nc3_duality``, ``nc4``.
    ``_W`` metrics use ``W W^T``; ``_H`` metrics use the centred means ``Mbar^T Mbar``, except
    ``nc2_orth_H`` which uses the uncentred ``Hbar^T Hbar``. Each value is the one of the function
    of the same name (:func:`nc1`, :func:`nc2_etf` of the Gram, ...).

    Args:
        W: (K, d) classifier.
        H: features, ``(d, N)`` (one sample per column) or, with ``layout="Nd"``, ``(N, d)``.
        labels: (N,) integer labels in ``0..K-1``.
        b: (K,) bias or None (used by ``nc4`` only).
        K: number of classes; default ``max(labels) + 1``.
        global_mean: ``"weighted"`` (default) or ``"unweighted"``, passed to every metric that
            centres.
        layout: ``"dN"`` (default) or ``"Nd"``.

    Returns:
        Dict of float64 JAX scalars (jit-compatible; ``{k: float(v) for k, v in d.items()}`` for
        Python floats).

    References:
        Papyan, Han & Donoho, PNAS 2020; Galanti et al., ICLR 2022; Nguyen et al., ICLR 2023.
    """
    gm = {"global_mean": global_mean}
    lay = {"layout": layout}
    Mbar = centred_means(H, labels, K, **gm, **lay)
    K = Mbar.shape[1]
    W = check_W(W, K, Mbar.shape[0])
    G_W, G_H = W @ W.T, Mbar.T @ Mbar
    return {
        "nc1": nc1(H, labels, K, **gm, **lay),
        "nc1_trace_ratio": nc1_trace_ratio(H, labels, K, **gm, **lay),
        "cdnv": cdnv(H, labels, K, **lay),
        "nc2_W": nc2_etf(G_W),
        "nc2_H": nc2_etf(G_H),
        "equinorm_W": equinorm_W(W),
        "equinorm_H": equinorm(Mbar),
        "equiangularity_W": equiangularity(G_W),
        "equiangularity_H": equiangularity(G_H),
        "max_angle_deviation_W": max_angle_deviation(G_W),
        "max_angle_deviation_H": max_angle_deviation(G_H),
        "nc2_orth_W": orthogonal_frame_distance(G_W),
        "nc2_orth_H": nc2_orth_H(H, labels, K, **lay),
        "nc3": nc3(W, H, labels, K, **gm, **lay),
        "nc3_duality": nc3_duality(W, H, labels, K, **gm, **lay),
        "nc4": nc4(W, H, labels, b, K, **lay),
    }

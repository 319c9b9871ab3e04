"""Host-side float64 statistics of labelled feature sets, shared by the report and the stream.

Everything here accumulates in NumPy float64 on the host, so it is exact to float64 whether or not
JAX's x64 mode is on (float32 features are accepted and promoted); the K x K Gram metrics are then
evaluated on the float64 statistics inside a local ``jax.enable_x64(True)`` context, which changes
no global setting.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ufm.metrics._checks import check_layout
from ufm.metrics._classifier import duality_from
from ufm.metrics._nc1 import cdnv_from
from ufm.metrics._nc2 import (
    equiangularity,
    equinorm,
    equinorm_W,
    max_angle_deviation,
    nc2_etf,
    orthogonal_frame_distance,
)

__all__ = [
    "TEST_NC1_CONVENTION",
    "host_classifier",
    "host_features",
    "host_labels",
    "mbar_pinv",
    "nearest_centre",
    "predict",
    "set_metrics",
]

TEST_NC1_CONVENTION = (
    "nc1_vs_train: (1/K) Tr(Sigma_W^test Sigma_B^{train,+}) with Sigma_W^test = (1/N_test) "
    "sum_i (h_i - mu^train_{y_i})(h_i - mu^train_{y_i})^T: test features centred at the TRAIN "
    "class means, between-class covariance of the TRAIN means (Hui, Belkin & Nakkiran, "
    "arXiv 2202.08384, 'test collapse'); pseudo-inverse cut at rtol * sigma_max(Mbar_train)"
)
"""The convention of the test-set NC1 in :func:`collapse_report` and :meth:`StreamingNC.result`."""


def host_features(name: str, H: Any, d: int | None = None, layout: str = "dN") -> np.ndarray:
    """Features as a finite float64 NumPy array of shape ``(d, N)`` (float32 accepted).

    ``H`` is ``(d, N)`` (one sample per column) for ``layout="dN"``, ``(N, d)`` (one sample per
    row) for ``layout="Nd"``; ``d``, when given, is the feature dimension it must have.
    """
    check_layout(layout)
    H = np.asarray(H)
    if H.ndim != 2:
        what = "(d, N) (one sample per column)" if layout == "dN" else "(N, d) (one sample per row)"
        raise ValueError(f"{name} must have shape {what}, got shape {H.shape}")
    if not (np.issubdtype(H.dtype, np.floating) or np.issubdtype(H.dtype, np.integer)):
        raise ValueError(f"{name} must be a real array, got dtype {H.dtype}")
    if d is not None and H.shape[0 if layout == "dN" else 1] != d:
        axis = "rows" if layout == "dN" else "columns"
        raise ValueError(f"{name} must have d={d} {axis}, got shape {H.shape}")
    if layout == "Nd":
        H = H.T
    H = H.astype(np.float64, copy=False)
    if not np.all(np.isfinite(H)):
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return H


def host_labels(name: str, labels: Any, N: int, K: int) -> np.ndarray:
    """``labels: (N,)`` as int64, every value in ``0..K-1`` (classes may be empty here)."""
    y = np.asarray(labels)
    if y.ndim != 1 or y.shape[0] != N:
        raise ValueError(f"{name} must have shape (N,) with N = {N}, got shape {y.shape}")
    if y.size and not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{name} must be integers in 0..K-1, got dtype {y.dtype}")
    if y.size and (y.min() < 0 or y.max() >= K):
        raise ValueError(f"{name} must lie in 0..K-1 = 0..{K - 1}, got {y.min()}..{y.max()}")
    return y.astype(np.int64)


def host_classifier(W: Any, b: Any, K: int, d: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``(W: (K, d), b: (K,) or None)`` as float64 NumPy arrays, or ``(None, None)`` without W."""
    if W is None:
        if b is not None:
            raise ValueError("b was given without W; pass W (K, d) as well")
        return None, None
    W = np.asarray(W, dtype=np.float64)
    if W.shape != (K, d):
        raise ValueError(f"W must have shape (K, d) = ({K}, {d}), got {W.shape}")
    if b is not None:
        b = np.asarray(b, dtype=np.float64)
        if b.shape != (K,):
            raise ValueError(f"b must have shape (K,) = ({K},) or be None, got {b.shape}")
    return W, b


def nearest_centre(H: np.ndarray, centres: np.ndarray) -> np.ndarray:
    r"""``argmin_k ||h_i - c_k||`` for ``H: (d, N)``, ``centres: (K, d)`` (ties: lowest index).

    .. math::

        \arg\min_k \big(\|c_k\|^2 - 2 c_k^T h_i\big)
    """
    return np.argmin(np.sum(centres**2, axis=1)[:, None] - 2.0 * centres @ H, axis=0)


def predict(W: np.ndarray, b: np.ndarray | None, H: np.ndarray) -> np.ndarray:
    """``argmax_k (W h_i + b)_k`` for ``H: (d, N)`` (``b=None``: no bias; ties: lowest index)."""
    logits = W @ H
    return np.argmax(logits if b is None else logits + b[:, None], axis=0)


def mbar_pinv(
    means: np.ndarray, counts: np.ndarray, global_mean: str, rtol: float
) -> tuple[np.ndarray, np.ndarray]:
    """``(Mbar (d, K), Mbar^+ (K, d))`` from class means ``(K, d)`` and counts ``(K,)``.

    The centre is the count-weighted mean of the class means (``"weighted"``: the mean of all
    samples) or their plain mean (``"unweighted"``); the pseudo-inverse cuts singular values below
    ``rtol * sigma_max``.
    """
    if global_mean == "weighted":
        h_G = counts @ means / counts.sum()
    else:
        h_G = means.mean(axis=0)
    Mbar = (means - h_G).T
    return Mbar, np.linalg.pinv(Mbar, rcond=rtol)


def _gram_metrics(
    counts: np.ndarray, means: np.ndarray, class_ss: np.ndarray, Mbar: np.ndarray,
    W: np.ndarray | None,
) -> dict[str, Any]:
    """The K x K metrics of :func:`set_metrics` (JAX scalars), in a local float64 context."""
    Mu = means - means.mean(axis=0)  # CDNV is independent of the centre; unweighted as in cdnv()
    with jax.enable_x64(True):
        G_H = jnp.asarray(Mbar.T @ Mbar)
        res = {
            "cdnv": cdnv_from(jnp.asarray(class_ss / counts), jnp.asarray(Mu.T)),
            "nc2_H": nc2_etf(G_H),
            "equinorm_H": equinorm(jnp.asarray(Mbar)),
            "equiangularity_H": equiangularity(G_H),
            "max_angle_deviation_H": max_angle_deviation(G_H),
            "nc2_orth_H": orthogonal_frame_distance(jnp.asarray(means @ means.T)),
        }
        if W is not None:
            G_W = jnp.asarray(W @ W.T)
            res |= {
                "nc2_W": nc2_etf(G_W),
                "equinorm_W": equinorm_W(jnp.asarray(W)),
                "equiangularity_W": equiangularity(G_W),
                "max_angle_deviation_W": max_angle_deviation(G_W),
                "nc2_orth_W": orthogonal_frame_distance(G_W),
                "nc3": nc2_etf(jnp.asarray(W @ Mbar)),
                "nc3_duality": duality_from(jnp.asarray(W), jnp.asarray(Mbar)),
            }
        return {k: float(v) for k, v in res.items()}


def set_metrics(
    counts: np.ndarray,
    means: np.ndarray,
    class_ss: np.ndarray,
    quad: Callable[[np.ndarray], float],
    W: np.ndarray | None,
    global_mean: str,
    rtol: float,
) -> dict[str, float]:
    r"""Every label-based metric of one feature set from its sufficient statistics.

    ``counts: (K,)``, ``means: (K, d)``, ``class_ss: (K,)`` the per-class scatter traces, and
    ``quad(A)`` returns :math:`\sum_i \|A z_i\|^2` for the within-class deviations ``z_i``
    (through the deviations themselves in memory, through the d x d scatter when streaming), so
    that :math:`\mathrm{NC1} = \mathrm{quad}(\bar M^+) / N`. With the classifier ``W: (K, d)``
    also its Gram metrics, ``nc3`` and ``nc3_duality``.
    """
    K = counts.size
    if np.any(counts == 0):
        empty = np.flatnonzero(counts == 0).tolist()
        raise ValueError(f"every class needs a sample; classes {empty} are empty")
    N = counts.sum()
    Mbar, A = mbar_pinv(means, counts, global_mean, rtol)
    out = {
        "n": float(N),
        "nc1": quad(A) / N,
        "nc1_trace_ratio": (class_ss.sum() / N) / (np.sum(Mbar**2) / K),
        "pinv_rank": float(np.linalg.matrix_rank(Mbar, tol=rtol * np.linalg.norm(Mbar, 2))),
    }
    out |= _gram_metrics(counts, means, class_ss, Mbar, W)
    return {k: float(v) for k, v in out.items()}

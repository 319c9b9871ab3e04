r"""The numbers on both sides of a check: a problem's numbers, a solution's invariants, their error.

- :func:`problem_numbers`: the values of the symbols of :mod:`proofs_check.symbols` for a problem
  (what a theorem's SymPy expressions are evaluated at);
- :func:`measure_ufm`: the invariants of a shallow UFM solution (value, Gram matrices, norms,
  bias), the same quantities the closed forms predict; never raw ``W`` or ``H``, which are only
  defined up to a rotation;
- :func:`rel_error`: how far a measured invariant is from its prediction;
- :func:`describe`: the instance column of a report row.

Below :mod:`proofs_check.theorem` (the record type), which compares with :func:`rel_error`, and
below the catalog, whose theorems measure with :func:`measure_ufm`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

import ufm

__all__ = ["problem_numbers", "measure_ufm", "rel_error", "describe"]


def problem_numbers(prob: Any) -> dict[str, float]:
    """Numbers of a problem by symbol name: ``K``, ``N``, ``n`` (balanced), ``lambda_W``,
    ``lambda_H``, ``lambda_b`` (with a bias), ``alpha`` (label smoothing), ``gamma`` (focal)."""
    out = {}
    for name, attr in (("K", "K"), ("N", "N"), ("lambda_W", "lam_W"), ("lambda_H", "lam_H")):
        v = getattr(prob, attr, None)
        if v is not None and np.ndim(v) == 0:
            out[name] = float(v)
    if getattr(prob, "balanced", False) and np.ndim(getattr(prob, "n", None)) == 0:
        out["n"] = float(prob.n)
    if getattr(prob, "lam_b", None) is not None:
        out["lambda_b"] = float(prob.lam_b)
    loss = getattr(prob, "loss", None)
    if isinstance(loss, ufm.LabelSmoothing):
        out["alpha"] = float(loss.alpha)
    if isinstance(loss, ufm.Focal):
        out["gamma"] = float(loss.gamma)
    return out


def _class_means(H: np.ndarray, labels: np.ndarray, K: int) -> np.ndarray:
    return np.stack([H[:, labels == k].mean(axis=1) for k in range(K)], axis=1)


def measure_ufm(prob: ufm.UFM, params: Any, names: Iterable[str]) -> dict[str, Any]:
    r"""The invariants ``names`` of a UFM solution ``params`` (float64 NumPy).

    With ``Hbar`` the class means (columns): ``value`` (the objective), ``W_gram`` (:math:`WW^T`),
    ``Hbar_gram`` (:math:`\bar H^T\bar H`), ``w_norm2`` (squared row norms of ``W``), ``h_norm2``
    (squared norms of the class means), ``logit_means`` (:math:`W\bar H`),
    ``within_class_spread`` (:math:`\sqrt{\lVert H - \bar H_{y}\rVert_F^2/N}`),
    ``class_mean_cosine`` (between the first two class means), ``bias`` and ``bias_centred``
    (``b - mean(b)``). Raises ``KeyError`` on any other name.
    """
    W, H = np.asarray(params.W), np.asarray(params.H)
    labels = prob.labels
    Hbar = _class_means(H, labels, prob.K)
    out = {}
    for name in names:
        if name == "value":
            out[name] = float(prob.objective(params))
        elif name == "W_gram":
            out[name] = W @ W.T
        elif name == "Hbar_gram":
            out[name] = Hbar.T @ Hbar
        elif name == "w_norm2":
            out[name] = np.sum(W**2, axis=1)
        elif name == "h_norm2":
            out[name] = np.sum(Hbar**2, axis=0)
        elif name == "logit_means":
            out[name] = W @ Hbar
        elif name == "within_class_spread":
            out[name] = float(np.sqrt(np.sum((H - Hbar[:, labels]) ** 2) / H.shape[1]))
        elif name == "class_mean_cosine":  # cosine between the first two class means
            G = Hbar.T @ Hbar
            out[name] = float(G[0, 1] / np.sqrt(G[0, 0] * G[1, 1])) if G[0, 0] > 0 else 0.0
        elif name == "bias":
            out[name] = np.asarray(params.b)
        elif name == "bias_centred":
            b = np.asarray(params.b)
            out[name] = b - b.mean()
        else:
            raise KeyError(f"unknown invariant {name!r}")
    return out


def rel_error(measured: Any, predicted: Any) -> float:
    r"""``||m - p|| / ||p||`` (Frobenius), or the absolute ``||m - p||`` when ``p = 0``.

    .. math:: e = \frac{\lVert m - p\rVert_F}{\lVert p\rVert_F}\ (p \ne 0), \qquad
        e = \lVert m - p\rVert_F\ (p = 0).
    """
    m, p = np.asarray(measured, dtype=float), np.asarray(predicted, dtype=float)
    scale = np.linalg.norm(p)
    err = np.linalg.norm(m - p)
    return float(err / scale) if scale > 0 else float(err)


def describe(prob: Any) -> str:
    """A compact, human-readable instance description (UFM, DeepUFM and other problems)."""
    if hasattr(prob, "describe"):
        return prob.describe()
    if hasattr(prob, "widths"):
        lams = np.asarray(prob.lams)
        lam = f"{lams[0]:.4g}" if np.all(lams == lams[0]) else str(np.round(lams, 5).tolist())
        rf = ", relu_features" if prob.relu_features else ""
        return (f"K={prob.K} n={prob.n} widths={list(prob.widths)} {prob.activation}{rf} "
                f"{type(prob.loss).__name__} lam_W={lam} lam_H={float(prob.lam_H):.4g}")
    loss = prob.loss
    lname = type(loss).__name__
    if isinstance(loss, ufm.LabelSmoothing):
        lname += f"({float(loss.alpha):.4g})"
    elif isinstance(loss, ufm.Focal):
        lname += f"({float(loss.gamma):.4g})"
    elif isinstance(loss, ufm.MSE) and loss.encoding is not None:
        lname += f"(E {loss.encoding.shape[0]}x{loss.encoding.shape[1]})"
    if not isinstance(prob, ufm.UFM):
        fields = ", ".join(f"{k}={float(getattr(prob, k)):.4g}" for k in ("lam_W", "lam_H", "lam")
                           if hasattr(prob, k))
        return f"{type(prob).__name__}(K={prob.K} {lname} {fields})"
    bias = "none" if prob.lam_b is None else f"{float(prob.lam_b):.4g}"
    n = prob.n if prob.balanced else list(prob.counts)
    extra = ", H>=0" if prob.nonneg else ""
    return (f"K={prob.K} n={n} d={prob.d} {lname} lam_W={float(prob.lam_W):.4g} "
            f"lam_H={float(prob.lam_H):.4g} lam_b={bias}{extra}")

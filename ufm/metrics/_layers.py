"""Per-layer collapse of a deep unconstrained-features model (host-side, NumPy values)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ufm.metrics._nc1 import nc1
from ufm.metrics._nc2 import orthogonal_frame_distance

__all__ = ["layer_metrics"]


def layer_metrics(prob: Any, params: Any, *, rank_rtol: float = 1e-6) -> dict[str, Any]:
    r"""Per-layer neural-collapse measurements of a deep UFM (host-side, NumPy values).

    For the post-activation features ``X_1 = H_1, X_2, ..., X_L`` and the pre-activations
    ``Z_1, ..., Z_L`` (``Z_L`` the logits without bias), with uncentred class means
    ``Xbar_l = [x_{l,1}, ..., x_{l,K}]``:

    - ``nc1``, ``nc1_pre``: :func:`ufm.metrics.nc1` of ``X_l`` and ``Z_l`` (``(L,)`` each),
      ``(1/K) Tr(Sigma_W Sigma_B^+)``;
    - ``gram``, ``gram_pre``: ``Xbar_l^T Xbar_l`` and ``Zbar_l^T Zbar_l``, ``(L, K, K)``;
      an orthogonal frame is ``c I`` (:func:`ufm.metrics.orthogonal_frame_distance`, reported as
      ``orth`` and ``orth_pre``);
    - ``rank``, ``rank_pre``: the number of singular values of ``Xbar_l`` (``Zbar_l``) above
      ``rank_rtol * sigma_max``;
    - ``sigma_W``: the singular values of each ``W_l`` (a list of ``L`` arrays, descending).

    With ``activation="linear"`` pre- and post-activation features coincide (``Z_l = X_{l+1}``).
    Which of these are determined at a minimizer is stated in ``proofs_check.catalog.deep``.

    References:
        Papyan, Han & Donoho, PNAS 2020 (NC1); Súkeník, Mondelli & Lampert, NeurIPS 2023 (per-layer
        DNC1-DNC3) and 2024 (class-mean rank per layer).
    """
    pre, post = prob.layers(params)
    labels, K = prob.labels, prob.K

    def means(X: Any) -> np.ndarray:
        X = np.asarray(X)
        return np.stack([X[:, labels == k].mean(axis=1) for k in range(K)], axis=1)

    def rank(M: np.ndarray) -> int:
        s = np.linalg.svd(M, compute_uv=False)
        return int(np.sum(s > rank_rtol * s[0])) if s[0] > 0 else 0

    out = {}
    for tag, feats in (("", post), ("_pre", pre)):
        bars = [means(X) for X in feats]
        grams = np.stack([B.T @ B for B in bars])
        out["nc1" + tag] = np.array([float(nc1(X, labels, K=K)) for X in feats])
        out["gram" + tag] = grams
        out["orth" + tag] = np.array([float(orthogonal_frame_distance(G)) for G in grams])
        out["rank" + tag] = np.array([rank(B) for B in bars])
    out["sigma_W"] = [np.linalg.svd(np.asarray(W), compute_uv=False) for W in params.Ws]
    return out

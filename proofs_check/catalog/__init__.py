"""The theorem catalog: one module per paper or topic, each exposing ``THEOREMS``.

| module | topic |
|---|---|
| ``zhu2021`` | CE UFM: simplex ETF and its scale, zero-solution threshold, strict saddle at 0 |
| ``zhou2022`` | label smoothing and focal loss |
| ``mse`` | MSE: no bias (Tirer & Bruna), free bias, regularized bias, encodings, imbalance (Dang et al.) |
| ``nguyen2023`` | nonnegative features: orthogonal frame |
| ``imbalanced_ce`` | imbalanced CE against the class-level convex program; minority collapse |
| ``deep`` | deep UFM: h_m reduction, jump, origin local min, DNC (linear, K = 2, Tirer-Bruna L = 2), low-rank counterexample (Súkeník et al. 2024) |
| ``md`` | memorization-dilation: LS finite margin, binary fixed-frame dilation (three regimes) |
| ``duality`` | global certificates: the class-level dual (tight at minimizers, valid for d < K and H >= 0), the deep linear scalar reduction |
| ``landscape`` | measured landscapes: no spurious second-order points (CE, MSE, d > K), spurious minima with H >= 0 and in deep linear models |
| ``targets`` | per-sample targets: regression UFM (SVT of the targets), multi-label PAL-CE (tag-wise average), imbalanced MSE with free bias (SVT of Yhat) |
| ``dynamics`` | gradient flow: decay of W^T W - H H^T (and of deep linear W_{l+1}^T W_{l+1} - W_l W_l^T), explicit Euler's exact discrete law and order |
| ``custom_losses`` | losses written as SymPy expressions of p (proofs_check.custom): PolyLoss-1 |
"""

from __future__ import annotations

import importlib

MODULES = ("zhu2021", "zhou2022", "mse", "nguyen2023", "imbalanced_ce", "deep", "md", "duality", "landscape",
           "targets", "dynamics", "custom_losses")


def all_theorems() -> list:
    """Every Theorem of the catalog, in module order."""
    return [th for name in MODULES for th in importlib.import_module(f"proofs_check.catalog.{name}").THEOREMS]

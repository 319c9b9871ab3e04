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
| ``custom_losses`` | losses written as SymPy expressions of p (proofs_check.custom): PolyLoss-1 |
"""

from __future__ import annotations

import importlib

MODULES = ("zhu2021", "zhou2022", "mse", "nguyen2023", "imbalanced_ce", "deep", "md", "custom_losses")


def all_theorems() -> list:
    """Every Theorem of the catalog, in module order."""
    return [th for name in MODULES for th in importlib.import_module(f"proofs_check.catalog.{name}").THEOREMS]

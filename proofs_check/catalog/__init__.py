"""The theorem catalog: one module per paper or topic, each exposing ``THEOREMS``.

``dispatch`` (no entry) says which entry holds the closed form of a shallow UFM; ``_common`` holds
the helpers the modules share.

- ``zhu2021``: CE UFM: simplex ETF and its scale, zero-solution threshold, strict saddle at 0;
- ``zhou2022``: label smoothing and focal loss;
- ``mse``: MSE: no bias (Tirer & Bruna), free bias, regularized bias, encodings, imbalance (Dang et
  al.);
- ``nguyen2023``: nonnegative features: orthogonal frame;
- ``imbalanced_ce``: imbalanced CE against the class-level convex program (its lemma:
  ``nuclear_norm``); minority collapse;
- ``deep``: deep UFM, listing ``deep_linear`` (DNC, jump, origin local min) and ``deep_relu`` (DNC
  for K = 2 and Tirer-Bruna L = 2, low-rank counterexample of Súkeník et al. 2024); the h_m
  reduction they share: ``deep_reduction``;
- ``md``: memorization-dilation: LS finite margin, binary fixed-frame dilation (three regimes);
- ``duality``: global certificates: the class-level dual (tight at minimizers, valid for d < K and
  H >= 0), the deep linear scalar reduction;
- ``landscape``: measured landscapes: no spurious second-order points (CE, MSE, d > K), spurious
  minima with H >= 0 and in deep linear models;
- ``targets``: per-sample targets, listing ``regression`` (SVT of the targets), ``multilabel``
  (PAL-CE, tag-wise average), ``imbalanced_mse`` (free bias, SVT of Yhat); shared: ``svt``;
- ``dynamics``: gradient flow: decay of W^T W - H H^T (and of deep linear W_{l+1}^T W_{l+1} -
  W_l W_l^T), explicit Euler's exact discrete law and order;
- ``custom_losses``: losses written as SymPy expressions of p (proofs_check.custom): PolyLoss-1;
- ``deep_ce_landscape``: deep linear CE UFM (Garrod & Keating 2025): DNC is a critical point with a
  PSD Hessian, and not the global minimum at K = 4, L = 3 (a rank-2 point is lower);
- ``seli``: imbalanced CE without regularization (Thrampoulidis et al. 2022): the simplex-encoded
  labels are the max-margin logits (a dual certificate), approached along the regularization path;
- ``implicit_bias``: CE UFM without regularization (Ji et al. 2022): gradient flow approaches the
  max-margin simplex ETF in direction (the margin bound proved, the approach measured);
- ``ce_landscape_square``: the UFM landscape at d = K (Shen & Gu 2024): no spurious minima, strict
  saddles (a census of random starts);
- ``nonneg_imbalanced``: imbalanced CE with nonnegative features (Dang et al. 2024): collapse and
  orthogonal class means of unequal lengths (measured).
- ``nc1_path``: per-sample targets with a within-class part (after Tirer, Huang & Niles-Weed 2023): the
  trace ratio Tr Sigma_W / Tr Sigma_B falls strictly along the regularization path.
- ``central_path``: the MSE central path (after Han, Papyan & Donoho 2022): the least-squares classifier,
  the closed-form law of the class-mean singular values on it, ufm's time-scaled flow.
"""

from __future__ import annotations

from proofs_check.catalog import (
    custom_losses, deep, deep_ce_landscape, duality, dynamics, imbalanced_ce, landscape, md, mse, nguyen2023, seli,
    targets, zhou2022, zhu2021,
)
from proofs_check.catalog import ce_landscape_square, implicit_bias, nonneg_imbalanced
from proofs_check.catalog import central_path, nc1_path

__all__ = ["MODULES", "all_theorems"]

# the order of the report (``ufm verify``)
MODULES = (zhu2021, zhou2022, mse, nguyen2023, imbalanced_ce, deep, md, duality, landscape, targets, dynamics,
           custom_losses, deep_ce_landscape, seli)
MODULES += (implicit_bias, ce_landscape_square, nonneg_imbalanced)
MODULES += (nc1_path, central_path)


def all_theorems() -> list:
    """Every Theorem of the catalog, in module order."""
    return [th for module in MODULES for th in module.THEOREMS]

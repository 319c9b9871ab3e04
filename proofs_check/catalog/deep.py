"""Deep UFM (docs/theory.md#deep-reduction): the catalog's entries in order, and the deep closed forms by name.

| module | entries |
|---|---|
| ``deep_reduction`` | the m-factor reduction to ``h_m``, the DNC closed form, the deep solve (no entry) |
| ``deep_linear`` | DNC of the linear model, the jump transition, the origin as a local minimum |
| ``deep_relu`` | DNC for ReLU, K = 2 and the extended two-layer UFM; the low-rank counterexample |

``deep.dnc_prediction``, ``deep.gamma``, ``deep.DEEP_LINEAR``, ... name the same objects as their
defining modules.
"""

from __future__ import annotations

from proofs_check.catalog.deep_linear import DEEP_LINEAR, JUMP, ORIGIN
from proofs_check.catalog.deep_reduction import (
    DNC_EXPRESSIONS, REDUCTION, SUKENIK_2023, SUKENIK_2024, TIRER_BRUNA, Lam, check_dnc_instance,
    deep_numbers, dnc_assemble, dnc_params, dnc_prediction, dnc_value_by_search, factor_proofs, gam, gamma, h,
    h_sym, jump_gamma, layer_grams, measure, ms, mu, scalar_optimum, solve_deep, x, x_star,
)
from proofs_check.catalog.deep_relu import DNC_BINARY, LOW_RANK, TWO_LAYER, srg_candidate

__all__ = [
    "THEOREMS",
    "DEEP_LINEAR",
    "JUMP",
    "ORIGIN",
    "DNC_BINARY",
    "TWO_LAYER",
    "LOW_RANK",
    "dnc_params",
    "dnc_prediction",
    "dnc_value_by_search",
    "gamma",
    "h",
    "h_sym",
    "jump_gamma",
    "layer_grams",
    "measure",
    "scalar_optimum",
    "solve_deep",
    "srg_candidate",
    "deep_numbers",
    "x_star",
    "check_dnc_instance",
    "dnc_assemble",
    "factor_proofs",
    "DNC_EXPRESSIONS",
    "REDUCTION",
    "SUKENIK_2023",
    "SUKENIK_2024",
    "TIRER_BRUNA",
    "x",
    "gam",
    "Lam",
    "ms",
    "mu",
]

THEOREMS = [DEEP_LINEAR, JUMP, ORIGIN, DNC_BINARY, TWO_LAYER, LOW_RANK]

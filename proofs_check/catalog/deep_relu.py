r"""Deep ReLU UFM (docs/theory.md#deep-reduction): deep neural collapse where it is optimal (K = 2, any L:
Súkeník et al. 2023), the two-layer ReLU model at K = 3 (a numerical finding: no published
guarantee covers it), and the low-rank counterexample where DNC is not optimal (K = 10, L = 4: a
strongly-regular-graph construction of ufm's beats DNC; Súkeník et al., NeurIPS 2024, prove that
DNC stops being optimal beyond two layers or two classes).

With ReLUs after ``W_1 .. W_{L-1}`` the DNC closed form determines the value, the post-activation
Grams of layers ``2..L`` and ``sigma(W_l)`` for ``l >= 2``, not the pre-activations of layer 1
(:mod:`proofs_check.catalog.deep_reduction`); :mod:`proofs_check.catalog.deep` lists the entries.
"""

from __future__ import annotations

import itertools

import jax.numpy as jnp
import numpy as np
import sympy as sp

import ufm
from proofs_check.catalog.deep_reduction import (
    DNC_EXPRESSIONS, REDUCTION, check_dnc_instance, deep_numbers,
    dnc_assemble, dnc_value_by_search, factor_proofs, jump_distance, jump_gamma, measure, solve_deep,
    x_star,
)
from proofs_check.theorem import Citation, Proof, Theorem, Threshold
from ufm import DeepParams, DeepUFM

__all__ = ["THEOREMS", "DNC_BINARY", "TWO_LAYER", "LOW_RANK", "srg_candidate", "solve_seeds",
           "srg_start", "SOLVER_SEEDS", "SRG_OFFSET"]


TWO_LAYER_SOURCE = Citation(
    "Tirer & Bruna", 2022, "ICML", "2202.08087",
    what=("the extended UFM (two layers, ReLU) and its minimizers under the paper's extra assumption; at "
          "K = 3 no published guarantee covers this model: DNC optimality here is a numerical finding of "
          "ufm (several certified starts), not a theorem of the paper"))
LOW_RANK_SOURCE = Citation(
    "Súkeník, Mondelli & Lampert", 2024, "NeurIPS", "2405.14468",
    what=("DNC is not optimal for the deep ReLU UFM beyond two layers or two classes (low-rank solutions "
          "do better); the strongly-regular-graph candidate and the numbers (K = 10, L = 4, lam = 0.004, "
          "width 30) are ufm's"))


def _relu_assume(prob, *, K2=False, L2=False):
    ok, why = check_dnc_instance(prob)
    if not ok:
        return ok, why
    if prob.activation != "relu" or prob.relu_features:
        return False, "needs activation='relu' without relu_features"
    if K2 and prob.K != 2:
        return False, "needs K = 2"
    if L2 and prob.L != 2:
        return False, "needs L = 2"
    return True, ""


DNC_BINARY = Theorem(
    name="Deep ReLU UFM, K = 2: DNC is optimal (orthogonal post-ReLU means, equal singular values)",
    citation=Citation("Súkeník, Mondelli & Lampert", 2023, "NeurIPS", "2305.13165",
                      what="DNC is the global optimum of the deep ReLU UFM for binary classification, any depth"),
    tag="paper",
    statement=("Binary MSE deep UFM with ReLU, any L: the global minimizers are DNC points, f* = h_m(x*); "
               "post-ReLU class means of layers >= 2 form an orthogonal frame c_l I and W_l (l >= 2) has "
               "K equal singular values. Pre-activations of layer 1 are not unique (not compared)."),
    assumptions=lambda p: _relu_assume(p, K2=True),
    assemble=dnc_assemble,
    instances=lambda: [DeepUFM(K=2, n=2, widths=(4, 4, 4), loss=ufm.MSE(), lam_W=5e-3, lam_H=5e-3)],
    measure=measure,
    solve=solve_deep,
    expressions=DNC_EXPRESSIONS,
    variables=deep_numbers,
    proofs=factor_proofs(),
    assumed=("that the DNC points are the global minimizers of the binary ReLU model (Súkeník et al. 2023, "
             "Theorem for K = 2); the proofs are the linear model's (a DNC point is nonnegative, so the "
             "ReLUs act as the identity on it)", REDUCTION),
)

# every lam equal to this value puts gamma = K Lambda^(1/3) of the K = 3, n = 2 model at 1.3 gamma_c
# (jump_distance +0.3; tests/test_threshold_sides.py reads the distance)
_BEYOND_JUMP = 1.3 * jump_gamma(3) / (3 * 2 ** (1 / 3))

TWO_LAYER = Theorem(
    name="Extended UFM (L = 2, ReLU): DNC closed form with m = 3",
    citation=TWO_LAYER_SOURCE,
    tag="derived",
    statement=("Numerical finding (no published guarantee at K = 3): two weight layers with a ReLU "
               "between (Tirer & Bruna's extended UFM), MSE, K classes: "
               "f* = h_3(x*), post-ReLU class means c_2 I, W_2 with K equal singular values "
               "sigma_2 = Lambda^(1/6) x*^(1/3)/sqrt(lam_2); H_1 and W_1 are not unique. Beyond the jump "
               "(gamma > gamma_c) x* = 0: the zero solution, f* = 1/2."),
    assumptions=lambda p: _relu_assume(p, L2=True),
    assemble=dnc_assemble,
    # one compiled shape (K = 3, widths 5): the instances differ in their lams only, which minimize
    # traces (a ReLU model's compilation dominates this entry's cost); the third sits 30% beyond the
    # jump (gamma = 1.3 gamma_c at m = 3, every lam equal), where x* = 0 and the zero solution wins
    instances=lambda: [DeepUFM(K=3, n=2, widths=(5, 5), loss=ufm.MSE(), lam_W=5e-3, lam_H=5e-3),
                       DeepUFM(K=3, n=2, widths=(5, 5), loss=ufm.MSE(), lam_W=[1e-2, 4e-3], lam_H=8e-3),
                       DeepUFM(K=3, n=2, widths=(5, 5), loss=ufm.MSE(), lam_W=_BEYOND_JUMP,
                               lam_H=_BEYOND_JUMP)],
    thresholds=(Threshold(jump_distance, "gamma/gamma_c - 1 (positive: beyond the jump, x* = 0, the "
                          "zero solution)"),),
    measure=measure,
    solve=solve_deep,
    expressions=DNC_EXPRESSIONS,
    variables=deep_numbers,
    proofs=factor_proofs(),
    assumed=("that DNC points are the global minimizers of the two-layer ReLU model at K = 3 (a numerical "
             "finding: the solves reach the DNC value; Tirer & Bruna's result needs K = 2 or an extra "
             "assumption); the proofs are the linear model's", REDUCTION),
)


def _srg_proofs():
    def residual():
        r = 5
        edges = list(itertools.combinations(range(r), 2))
        X0 = sp.Matrix([[1 if a in e else 0 for e in edges] for a in range(r)])
        B = sp.Matrix([[sp.Integer(1 if a in e else 0) - sp.Rational(1, 2) for a in range(r)] for e in edges])
        Z = B * X0
        relu = Z.applyfunc(lambda v: sp.Max(v, 0))
        A = sp.Matrix(len(edges), len(edges), lambda i, j: 1 if i != j and set(edges[i]) & set(edges[j]) else 0)
        G = X0.T * X0
        return sp.And(relu == sp.eye(len(edges)), X0.rank() == r, G == 2 * sp.eye(10) + A,
                      sorted(A.eigenvals().items()) == [(-2, 5), (1, 4), (6, 1)])
    return (Proof("SRG construction, exact matrices at r = 5, K = 10 (the theorem's only size): class {a,b} -> "
                  "e_a + e_b (rank 5, Gram 2I + A of the triangular graph T(5), eigenvalues 6, 1 (x4), -2 (x5)); "
                  "rows e_c + e_d - 1/2 then ReLU give exactly I_10: rank 5 expands to rank 10 without a bias",
                  residual, kind="sample"),)


# ---- the low-rank counterexample ---------------------------------------------------------------
# The exact construction (a = 1, c = s = t = 0) sits on ReLU kinks: the zeros of X0 in the layers
# before the expansion, and the entries of relu(B X0) between classes that share one vertex. There
# the gradient depends on relu'(0) and on the sign of rounding errors, so rounding may choose the
# piece the search follows. The first start moves s and t by SRG_OFFSET: every hidden pre-activation
# is then off its kink by at least SRG_OFFSET / (1 + SRG_OFFSET) of its layer's largest entry
# (layers < e: X0 + s >= s; layer e, r = 5: the shared-vertex entries -(s/2 + 2t + 5st) ~ -0.026,
# the diagonal 1 - 0.026), with the same pattern as the construction (relu(B (X0 + s)) a multiple of
# I_K), so rounding (1e-16) cannot choose the piece. The other half of the search's former failure
# (0.46 under ufm's fast compile profile, 0.089 under XLA's defaults, K = 10): from the flow's end
# point (0.0891 from either start, both profiles) the minimizer's line search jumped onto the dead-ReLU
# plateau (value 1/2), and only its end point was kept; now the lower of the two is.
SRG_OFFSET = 1e-2


def srg_start(candidate: ufm.problems.GraphCandidate) -> np.ndarray:
    """The first start of :func:`srg_candidate`: the construction's scalars (``a = 1``, ``c = 0``) with
    ``s = t = SRG_OFFSET``, which moves every hidden pre-activation off its ReLU kink by at least
    ``SRG_OFFSET / (1 + SRG_OFFSET)`` of its layer's largest entry and keeps the construction's
    activation pattern (``relu`` of the expansion layer a multiple of ``I_K``; Súkeník, Mondelli &
    Lampert 2024 for the low-rank regime, the construction is ufm's)."""
    th0 = np.array(candidate.init(None), dtype=float)
    th0[2 * candidate.deep.L + 1:] = SRG_OFFSET
    return th0


def srg_candidate(prob: DeepUFM, r: int, *, e: int | None = None, starts: int = 6,
                  seed: int = 0) -> tuple[float, DeepParams | None, int | None]:
    """Optimize the free scalars of :func:`ufm.problems.graph_params` with the expansion at layer
    ``e`` (default ``L - 1``, the best: for K = 10, lam = 0.004 the values with ``e < L - 1`` were
    above the DNC value); returns ``(value, params, e)`` of the best point found.

    Start 0 is the construction moved off its kinks (``s = t = SRG_OFFSET``), the others random
    scalar vectors (``seed``). From each start a fixed-step gradient flow, then ``ufm.minimize``;
    both end points are explicit parameters of the family and the lower objective is kept (the
    minimizer's line search can leave the flow's basin for the dead-ReLU plateau, value 1/2, and
    the family's optimum may sit at a kink of its scalars, where the solve is not certified). The
    value is ``prob.objective`` at explicit parameters, so it is an upper bound on the deep UFM's
    optimum whether or not a solve converged."""
    if prob.K != r * (r - 1) // 2:
        raise ValueError(f"r must satisfy K = r(r-1)/2, got r={r}, K={prob.K}")
    rng = np.random.default_rng(seed)
    best = (np.inf, None, None)
    for ee in [prob.L - 1 if e is None else e]:
        sp_ = ufm.problems.GraphCandidate(prob, r, ee)
        for i in range(starts):
            th0 = srg_start(sp_) if i == 0 else np.concatenate(
                [np.exp(rng.normal(0, 0.3, prob.L + 1)), rng.normal(0, 0.3, prob.L),
                 [abs(rng.normal(0, 0.3)), rng.normal(0, 0.1)]])
            # a short fixed-step gradient flow first: L-BFGS's first steps from th0 can jump onto
            # the dead-ReLU plateau (value 1/2); then the polish
            flow = ufm.gradient_flow(sp_, t1=100.0, dt=0.02, params0=jnp.asarray(th0),
                                     saveat=ufm.SaveAt(t1=True, params=False), throw=False)
            sol = ufm.minimize(sp_, params0=flow.final, gtol=1e-10, throw=False)
            for th in (flow.final, sol.params):
                v = float(sp_.objective(th))
                if np.isfinite(v) and v < best[0]:
                    best = (v, sp_.build(th), ee)
    return best


SRG_BELOW = "SRG candidate value (< DNC value)"
SOLVER_BELOW = "solver value (< DNC value)"
# The claim is strict ("below"): a value that ties the DNC value fails. The margin, with its reason.
LOW_RANK_MARGIN = (1e-4, "1e-4 relative: the claim is that low rank is strictly better than DNC; the DNC value "
                         "is a closed form and the candidate and solver values are objectives at explicit "
                         "points (exact to rounding, ~1e-15), while a solve stalled at the DNC point would "
                         "land within its certificate (1e-10) of it, so a tie fails by orders of magnitude")


# The solver row: the claim is existential (a certified point below the DNC value), and which basin one
# seed's solve ends in depends on the machine's rounding: the first-order path crosses ReLU kinks, where
# the sign of an error of 1e-16 picks the piece. On one 2-core machine (2026-12-07), seeds 0 and 2
# ended certified at the DNC point under ufm's fast compile profile (the profile of `ufm verify` and
# of the tests) and seed 3 certified at 0.0841, while under XLA's defaults seeds 0, 1 and 3 were
# certified below the DNC value; elsewhere seed 1 stopped at its step cap. One seed would test the
# rounding, not the claim. The row takes the lowest value among the certified solves from the first
# four seeds, the fewest first seeds with a certified point below the DNC value under both profiles
# there; a solve that is not certified is never counted (when none is, the certificate row fails),
# and a tie with the DNC value fails the strict row. Each seed is one ufm.minimize of the K = 10
# model (0.5 to 7 minutes on 2 shared cores), so the seeds are few.
SOLVER_SEEDS = (0, 1, 2, 3)


def solve_seeds(prob: DeepUFM, seeds: tuple[int, ...] = SOLVER_SEEDS) -> tuple[DeepParams, dict]:
    """The lowest certified solve among several seeds: ``min {f(x_s) : s in seeds, x_s certified}``.

    Args:
        prob: the deep (ReLU) UFM.
        seeds: ``ufm.minimize(prob, seed=s, throw=False)`` (default options) runs for each.

    Returns:
        ``(params, info)``: the parameters of the lowest run with ``sol.converged`` and ``info`` with
        its certificate (``grad_norm``: its KKT or Clarke residual; ``converged``: whether any run
        was certified), ``value``, and per seed ``seed_values``, ``seed_orders``,
        ``seed_converged``. When no run is certified, the lowest run with ``converged`` false (the
        theorem's certificate row then fails).

    References:
        Súkeník, Mondelli & Lampert 2024 (arXiv 2405.14468): DNC is not optimal in this regime.
    """
    runs = [ufm.minimize(prob, seed=int(s), throw=False) for s in seeds]
    certified = [r for r in runs if bool(r.converged)]
    best = min(certified or runs, key=lambda r: r.value)
    return best.params, {"grad_norm": float(best.certificate.kkt), "converged": bool(certified),
                         "value": float(best.value), "seed_values": [float(r.value) for r in runs],
                         "seed_orders": [str(r.certificate.order) for r in runs],
                         "seed_converged": [bool(r.converged) for r in runs]}


def _lowrank_assemble(prob, ev):
    v = ev("h(x)", x=x_star(ev)[0])  # the DNC value only: no sigma(mu) in this theorem
    return {"DNC value h_m(x*) = best objective over the DNC family": v, SRG_BELOW: v, SOLVER_BELOW: v}


def _lowrank_measure(prob, params, names):
    return {"DNC value h_m(x*) = best objective over the DNC family": dnc_value_by_search(prob),
            SRG_BELOW: srg_candidate(prob, 5, starts=3)[0], SOLVER_BELOW: float(prob.objective(params))}


LOW_RANK = Theorem(
    name="Deep ReLU UFM, K = 10, L = 4: low-rank solutions beat DNC (never assert equality)",
    citation=LOW_RANK_SOURCE,
    tag="derived",
    statement=("K = 10, L = 4, all lam = 0.004, widths 30, n = 1: ufm's strongly-regular-graph candidate "
               "(rank 5 class means in the hidden layers, ReLU expansion to rank 10; its scalars optimized "
               "from the construction moved off its kinks and from random starts) and the lowest certified "
               "solve among the seeds SOLVER_SEEDS = (0, 1, 2, 3) both reach a value below the DNC value "
               "h_5(x*) ~ 0.0992 by the stated margin (strictly: a tie fails)."),
    assumptions=lambda p: _relu_assume(p) if p.K == 10 else (False, "needs K = 10"),
    assemble=_lowrank_assemble,
    # sigma(mu) builds the DNC point; here the DNC point is searched numerically (the measured side)
    expressions={k: v for k, v in DNC_EXPRESSIONS.items() if k != "sigma(mu)"},
    variables=deep_numbers,
    instances=lambda: [DeepUFM(K=10, n=1, widths=(30,) * 4, loss=ufm.MSE(), lam_W=0.004, lam_H=0.004)],
    measure=_lowrank_measure,
    proofs=_srg_proofs(),
    solve=solve_seeds,
    slow=True,
    strict_upper_bounds=(SRG_BELOW, SOLVER_BELOW),
    strict_margin=LOW_RANK_MARGIN,
)

THEOREMS = [DNC_BINARY, TWO_LAYER, LOW_RANK]

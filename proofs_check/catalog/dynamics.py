r"""Gradient-flow dynamics: the decay of the balancedness matrices, and what explicit Euler does to it.

Factors ``F_0 = H``, ``F_1 = W`` (UFM) or ``F_0 = H_1, F_j = W_j`` (deep linear UFM), all with the
same weight decay ``a`` (``lam_W = lam_H = a``, every layer), data term ``g`` any smooth function of
the logits ``W_L \cdots W_1 H + b 1^T`` (any loss, any bias mode). With ``G_j = \nabla_{F_j} g``:

- balancedness identity: ``F_{j+1}^T G_{j+1} = G_j F_j^T`` (both equal ``A^T (\partial g/\partial Z) B^T``
  for the products ``A`` above and ``B`` below the pair), so along ``dF_j/dt = -G_j - a F_j``,
  ``Delta_j = F_{j+1}^T F_{j+1} - F_j F_j^T`` obeys ``dDelta_j/dt = -2a Delta_j``:
  ``Delta_j(t) = e^{-2at} Delta_j(0)``, conserved at ``a = 0`` (docs/theory.md#dynamics, [derived];
  the conservation law at ``a = 0`` is the classical balancedness of deep linear networks, Arora,
  Cohen & Hazan, ICML 2018, arXiv 1802.06509; Du, Hu & Lee, NeurIPS 2018, arXiv 1806.00900).
- explicit Euler with step ``h`` (:func:`ufm.gradient_flow` with ``dt=h``) satisfies *exactly*
  ``Delta_j^{k+1} = (1 - a h)^2 Delta_j^k + h^2 E_j^k`` with ``E_j = G_{j+1}^T G_{j+1} - G_j G_j^T``;
  hence ``Delta_j^k = (1-ah)^{2k} Delta_j^0 + h^2 sum_i (1-ah)^{2(k-1-i)} E_j^i``, and at ``t = k h``
  both ``(1-ah)^{2t/h} - e^{-2at} = -a^2 t e^{-2at} h + O(h^2)`` and the sum (``t/h`` terms of size
  ``h^2``) are ``O(h)``: the integrator's error in the law is first order, ``err(h)/err(h/2) -> 2``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import numpy as np
import sympy as sp

import ufm
from proofs_check.theorem import Citation, Proof, Theorem, problem_numbers

SECTION8 = Citation("ufm docs/theory.md#dynamics; Arora, Cohen & Hazan (a = 0)", 2018, "ICML", "1802.06509")

a, t, h = sp.symbols("a t h", nonnegative=True)
DECAY = sp.exp(-2 * a * t)
EULER_FACTOR = (1 - a * h) ** 2  # per step, exact
EULER_E_COEFF = h**2  # coefficient of E_j per step, exact
# leading order of the Euler error in the law: (1 - a h)^(2t/h) - e^{-2at} = c h + O(h^2)
EULER_LEAD = sp.series((1 - a * h) ** (2 * t / h) - DECAY, h, 0, 2).removeO()
ORDER = sp.Integer(1)  # shown in the proofs: the leading term is h^1 (both parts)
RATIO = 2**ORDER  # err(h)/err(h/2) of a method of order ORDER

T1 = 2.0
DT = 2e-3
LAW_DT = 0.05
LAW_STEPS = 20
RTOL, ATOL = 1e-11, 1e-13

_d, _k, _n = sp.symbols("d K N", integer=True, positive=True)
_W = sp.MatrixSymbol("W", _k, _d)
_H = sp.MatrixSymbol("H", _d, _n)
_G = sp.MatrixSymbol("G", _k, _n)  # dg/dZ
_A = sp.MatrixSymbol("A", _k, _d)  # product of the layers above the pair (deep)
_B = sp.MatrixSymbol("B", _d, _n)  # product below the pair (deep)
_Wu = sp.MatrixSymbol("W_u", _d, _d)  # upper factor of the pair
_Wl = sp.MatrixSymbol("W_l", _d, _d)  # lower factor of the pair


def _flow_residual():
    Wd, Hd = -_G * _H.T - a * _W, -_W.T * _G - a * _H
    return sp.expand(Wd.T * _W + _W.T * Wd - Hd * _H.T - _H * Hd.T + 2 * a * (_W.T * _W - _H * _H.T))


def _deep_identity():
    Gu = (_A).T * _G * (_Wl * _B).T  # gradient of g(A W_u W_l B) in W_u
    Gl = (_A * _Wu).T * _G * _B.T  # ... in W_l
    return sp.expand(_Wu.T * Gu - Gl * _Wl.T)


def _euler_residual():
    hh = sp.Symbol("h")
    W1, H1 = (1 - a * hh) * _W - hh * _G * _H.T, (1 - a * hh) * _H - hh * _W.T * _G
    E = (_G * _H.T).T * (_G * _H.T) - (_W.T * _G) * (_W.T * _G).T
    return sp.expand(W1.T * W1 - H1 * H1.T - (1 - a * hh) ** 2 * (_W.T * _W - _H * _H.T) - hh**2 * E)


def _as_zero(expr):
    return sp.Integer(0) if expr == 0 or expr == sp.ZeroMatrix(*expr.shape) else sp.Symbol(str(expr))


PROOFS = (
    Proof("flow: with dW/dt = -G H^T - a W, dH/dt = -W^T G - a H (G = dg/dZ), "
          "d/dt(W^T W - H H^T) + 2a (W^T W - H H^T) = 0 (noncommutative matrix symbols)",
          lambda: _as_zero(_flow_residual())),
    Proof("deep linear: for g(A W_u W_l B), W_u^T grad_{W_u} g = grad_{W_l} g W_l^T, so each "
          "W_{l+1}^T W_{l+1} - W_l W_l^T obeys the same equation",
          lambda: _as_zero(_deep_identity())),
    Proof("the solution of dDelta/dt = -2a Delta is Delta(0) e^{-2at} (uniqueness: a linear ODE)",
          lambda: sp.diff(DECAY, t) + 2 * a * DECAY),
    Proof("explicit Euler, exactly: W'^T W' - H' H'^T = (1-ah)^2 (W^T W - H H^T) + h^2 (G_W^T G_W - G_H G_H^T) "
          "with G_W = G H^T, G_H = W^T G",
          lambda: _as_zero(_euler_residual())),
    Proof("Euler's decay factor: (1-ah)^(2t/h) - e^{-2at} = -a^2 t e^{-2at} h + O(h^2) (first order)",
          lambda: EULER_LEAD + a**2 * t * DECAY * h),
)

EXPRESSIONS = {"decay": DECAY, "Euler factor": EULER_FACTOR, "Euler E coefficient": EULER_E_COEFF,
               "Euler ratio": RATIO}


# ---- the problem side: factors, gradients, Deltas ------------------------------------------------
def _factors(prob, params):
    """``[F_0, F_1, ...]``: ``[H, W]`` (UFM) or ``[H_1, W_1, ..., W_L]`` (deep)."""
    Ws = list(params.Ws) if isinstance(prob, ufm.DeepUFM) else [params.W]
    return [np.asarray(params.H)] + [np.asarray(W) for W in Ws]


def _deltas(prob, params):
    F = _factors(prob, params)
    return [F[j + 1].T @ F[j + 1] - F[j] @ F[j].T for j in range(len(F) - 1)]


def _data_grads(prob, params, decay):
    """``G_j = grad_{F_j} g = grad_{F_j} f - a F_j`` (the weight-decay part removed)."""
    grads = jax.grad(prob.objective)(params)
    F, GF = _factors(prob, params), _factors(prob, grads)
    return [gf - decay * f for f, gf in zip(F, GF)]


def _rate(prob) -> float:
    return float(prob.lam_H)


def _assume(prob):
    if isinstance(prob, ufm.DeepUFM):
        if prob.activation != "linear" or prob.relu_features:
            return False, "deep model: linear activation, no ReLU on the features"
        lams = np.asarray(prob.lam_W)
        if not np.all(lams == float(prob.lam_H)):
            return False, "every lam_l equal to lam_H (one decay rate a)"
        return True, ""
    if not isinstance(prob, ufm.UFM):
        return False, "needs a ufm.UFM or a linear ufm.DeepUFM"
    if prob.nonneg:
        return False, "signed features (a projection onto H >= 0 breaks the identity)"
    if float(prob.lam_W) != float(prob.lam_H):
        return False, "lam_W == lam_H (one decay rate a)"
    return True, ""


def _start(prob):
    return prob.init(jax.random.PRNGKey(0))


def _variables(prob) -> dict:
    """``a`` (the common decay), ``t = T1``, ``h = LAW_DT`` (the Euler step of the law rows)."""
    return {**problem_numbers(prob), "a": _rate(prob), "t": T1, "h": LAW_DT}


def _assemble(prob, ev):
    """``Delta_j(T1) = decay * Delta_j(0)``; Euler's per-step coefficients (``Delta^{k+1} = c Delta^k
    + e E^k``, fitted on the measured steps); the Euler error ratio ``2^order``."""
    factor = ev("decay")
    q = {f"Delta_{j}(t1)": factor * D for j, D in enumerate(_deltas(prob, _start(prob)))}
    q["Euler step: coefficient of Delta^k"] = ev("Euler factor")
    q["Euler step: coefficient of E^k"] = ev("Euler E coefficient")
    q["Euler step law residual"] = 0.0
    q["Euler error ratio err(h)/err(h/2)"] = ev("Euler ratio")
    return q


class _Runs(NamedTuple):
    flow: object  # adaptive trajectory's final params
    euler: tuple  # final params at dt = DT and DT/2
    steps: object  # Euler trajectory at LAW_DT, params at every step
    failed: int


def _solve(prob):
    p0 = _start(prob)
    ok = ufm.RESULTS.successful
    fl = ufm.gradient_flow(prob, t1=T1, params0=p0, rtol=RTOL, atol=ATOL, saveat=ufm.SaveAt(t1=True, params=False),
                           throw=False)
    # every fixed-step run records LAW_STEPS + 1 points with parameters: one compiled loop for all three
    eu = [ufm.gradient_flow(prob, t1=T1, params0=p0, dt=h_, saveat=ufm.SaveAt(ts=np.linspace(0.0, T1, LAW_STEPS + 1)),
                            throw=False) for h_ in (DT, DT / 2)]
    st = ufm.gradient_flow(prob, t1=LAW_STEPS * LAW_DT, params0=p0, dt=LAW_DT,
                           saveat=ufm.SaveAt(ts=LAW_DT * np.arange(LAW_STEPS + 1)), throw=False)
    failed = sum(r.result != ok for r in [fl, *eu, st])
    # the certificate row of a flow: number of integrations that did not finish (0 = all did)
    return _Runs(fl.final, (eu[0].final, eu[1].final), st, failed), {"grad_norm": float(failed),
                                                                    "converged": failed == 0}


def _measure(prob, runs, names):
    out = {}
    for j, D in enumerate(_deltas(prob, runs.flow)):
        out[f"Delta_{j}(t1)"] = D
    rate = _rate(prob)
    tree = runs.steps.params
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    seq = [jax.tree_util.tree_unflatten(treedef, [np.asarray(x[i]) for x in leaves]) for i in range(len(runs.steps.times))]
    rows, rhs = [], []  # least squares over every step and pair: Delta^{k+1} = c Delta^k + e E^k
    for p, p_next in zip(seq[:-1], seq[1:]):
        G = _data_grads(prob, p, rate)
        for j, (D, Dn) in enumerate(zip(_deltas(prob, p), _deltas(prob, p_next))):
            E = G[j + 1].T @ G[j + 1] - G[j] @ G[j].T
            rows.append(np.stack([D.ravel(), E.ravel()], axis=1))
            rhs.append(Dn.ravel())
    A, y = np.concatenate(rows), np.concatenate(rhs)
    coef = np.linalg.lstsq(A, y, rcond=None)[0]
    out["Euler step: coefficient of Delta^k"] = float(coef[0])
    out["Euler step: coefficient of E^k"] = float(coef[1])
    out["Euler step law residual"] = float(np.linalg.norm(A @ coef - y) / np.linalg.norm(y))
    # the exact flow law at T1, from the start (the measurement's own reference, not the expression)
    reference = [np.asarray(D) for D in _deltas(prob, runs.flow)]
    errs = [np.sqrt(sum(np.sum((D - X) ** 2) for D, X in zip(_deltas(prob, pe), reference))) for pe in runs.euler]
    out["Euler error ratio err(h)/err(h/2)"] = float(errs[0] / errs[1])
    return {k: out[k] for k in names}


DECAY_LAW = Theorem(
    name="Gradient flow: W^T W - H H^T decays as e^{-2at} (deep linear: every W_{l+1}^T W_{l+1} - W_l W_l^T)",
    citation=SECTION8,
    tag="derived",
    statement=("With lam_W = lam_H = a (every layer of a linear deep UFM) and any loss and bias, along the "
               "gradient flow Delta_j(t) = e^{-2at} Delta_j(0) for Delta_0 = W^T W - H H^T (W_1^T W_1 - H_1 H_1^T) "
               "and Delta_l = W_{l+1}^T W_{l+1} - W_l W_l^T; conserved at a = 0. Explicit Euler with step h "
               "obeys Delta^{k+1} = (1-ah)^2 Delta^k + h^2 (G_{j+1}^T G_{j+1} - G_j G_j^T) exactly, so its error "
               "in the law is first order in h."),
    assumptions=_assume,
    assemble=_assemble,
    variables=_variables,
    instances=lambda: [
        ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy(), lam_W=0.2, lam_H=0.2, lam_b=0.01),
        ufm.DeepUFM(K=3, n=2, widths=(4, 3), loss=ufm.MSE(), lam_W=0.0, lam_H=0.0, activation="linear"),
    ],
    random_instance=lambda rng: ufm.UFM(K=int(rng.integers(2, 5)), n=int(rng.integers(1, 4)),
                                        d=int(rng.integers(2, 6)), loss=ufm.CrossEntropy(),
                                        lam_W=(lam := float(rng.uniform(0.0, 0.3))), lam_H=lam,
                                        lam_b=None if rng.random() < 0.5 else float(rng.uniform(0.0, 0.1))),
    measure=_measure,
    expressions=EXPRESSIONS,
    proofs=PROOFS,
    solve=_solve,
    # Delta(t1) keeps the default 1e-8: the adaptive flow runs at rtol 1e-11 (measured error <= 4e-12).
    tolerances={"Euler error ratio err(h)/err(h/2)": (
        1e-2, "the ratio is 2 + O(h) (the O(h^2) remainder of the first-order error); measured 2.0004-2.0031 at h = 2e-3")},
    assumed=("the Euler error's second part h^2 sum_i (1-ah)^{2(k-1-i)} E^i is O(h): t/h terms of size h^2 with "
             "E bounded along the trajectory (the measured ratio 2 checks the order)",),
)

THEOREMS = [DECAY_LAW]

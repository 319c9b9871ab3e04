r"""The imbalanced MSE UFM with a free bias (Liu et al., arXiv 2411.17278): one layer, and L >= 2 linear layers
through the deep UFM's ``h_m``.

Only the paper's abstract could be read here, so the statements are **derived** for ufm's
canonical objective (docs/theory.md#canonical-objective) and checked against :func:`ufm.minimize`. With
counts ``n_k``, ``D = diag(n_k)`` and the optimal bias ``b = (n - Z n)/N``, the class-level program
becomes the singular-value thresholding (:mod:`proofs_check.catalog.svt`) of
``Yhat = (I_K - n 1^T/N) D^{1/2}``, the matrix of the paper's abstract; with ``m = L + 1`` factors
each singular value of ``Yhat`` gives one copy of ``h_m``
(:mod:`proofs_check.catalog.deep_reduction`).
"""

from __future__ import annotations

import numpy as np
import sympy as sp

import ufm
from proofs_check.catalog._structured import reduce_words
from proofs_check.catalog.deep_reduction import DNC_EXPRESSIONS, gam, h_sym, ms, solve_deep, x, x_star
from proofs_check.catalog.mse import GRAM_EXPRESSIONS
from proofs_check.catalog.svt import (
    Nn, PROOFS_SVT, SVT_EXPRESSIONS, SVT_WHAT, away_from_threshold, s, sig, sv_distance, svt_prediction,
)
from proofs_check.measure import measure_ufm
from proofs_check.theorem import Citation, Evaluator, Proof, Theorem, Threshold

__all__ = ["THEOREMS", "IMBALANCED_FREE_BIAS", "IMBALANCED_EXTENDED", "IMB_EXT", "EXT_EXPRESSIONS"]

IMB_EXT = Citation("Liu et al.", 2024, "preprint", "2411.17278",
                   what=("the imbalanced L-extended UFM with a bias: collapse, and a geometry set by the "
                         "singular values of Yhat = (I_K - n 1^T/N) D^(1/2); the closed forms in ufm's "
                         "scaling are derived here (only the abstract was read)"))


# ---- imbalanced MSE UFM with a free bias (arXiv 2411.17278, L = 1) -------------------------------
def _imb_assume(prob):
    if not isinstance(prob, ufm.UFM) or not isinstance(prob.loss, ufm.MSE) or prob.loss.encoding is not None:
        return False, "needs a one-hot MSE ufm.UFM"
    if not (prob.has_bias and float(prob.lam_b) == 0.0):
        return False, "free bias (lam_b=0)"
    if prob.nonneg or float(prob.lam_W) <= 0 or float(prob.lam_H) <= 0:
        return False, "signed features and lam_W, lam_H > 0"
    if prob.d < prob.K:
        return False, f"d >= K (got d={prob.d})"
    return away_from_threshold(np.linalg.svd(_yhat(prob), compute_uv=False),
                                prob.N * np.sqrt(float(prob.lam_W) * float(prob.lam_H)), "Yhat")


def _imb_distance(prob):
    return sv_distance(_yhat(prob), prob.N * np.sqrt(float(prob.lam_W) * float(prob.lam_H)))


def _yhat(prob):
    """``Yhat = (I_K - n 1^T/N) diag(sqrt(n))`` of arXiv 2411.17278."""
    nvec = np.asarray(prob.counts, dtype=float)
    return (np.eye(prob.K) - np.outer(nvec, np.ones(prob.K)) / prob.N) @ np.diag(np.sqrt(nvec))


def _imb_assemble(prob, ev):
    nvec = np.asarray(prob.counts, dtype=float)
    p = svt_prediction(ev, _yhat(prob))
    Z = p["Z"] / np.sqrt(nvec)  # Z = W Hbar from Z' = Z D^{1/2}
    b = (nvec - Z @ nvec) / prob.N
    Dm = np.diag(1 / np.sqrt(nvec))
    return {"value": p["value"], "logit_means": Z, "bias": b,
            "W_gram": ev("rho_W") * p["ZZt_sqrt"], "Hbar_gram": ev("rho_H") * Dm @ p["ZtZ_sqrt"] @ Dm,
            "within_class_spread": 0.0}


# Every K: the class-level matrices as noncommutative symbols. Z (K x K), nv = n (counts), one = 1,
# Dh = D^{1/2}, r = sqrt(n); *t a transpose. Relations: D^{1/2} sqrt(n) = n, 1^T D^{1/2} = sqrt(n)^T,
# sqrt(n)^T sqrt(n) = N (and 1^T n = N, used in the gradient's sum over the classes).
_Z, _nv, _one, _onet, _Dh, _r, _rt = sp.symbols("Z n 1 1^T D^(1/2) r r^T", commutative=False)
_Ns, _b = sp.Symbol("N", positive=True), sp.Symbol("b", commutative=False)
_RELATIONS = {_Dh * _r: _nv, _onet * _Dh: _rt, _rt * _r: _Ns}


def _imb_residuals():
    """The optimal bias, the residual it leaves and the intertwining with Q (every K)."""
    b_star = (_nv - _Z * _nv) / _Ns
    # d/db (1/2N) sum_k n_k ||Z e_k + b - e_k||^2 = (1/N)(Z n + N b - n) (sum_k n_k e_k = n, sum_k n_k = N)
    stationary = ((_Z * _nv + _Ns * _b - _nv) / _Ns).subs(_b, b_star)
    resid = (_Z - 1) * (1 - _nv * _onet / _Ns) - (_Z + b_star * _onet - 1)
    proj = (1 - _nv * _onet / _Ns) * _Dh - _Dh * (1 - _r * _rt / _Ns)
    return tuple(reduce_words(e, _RELATIONS) for e in (stationary, resid, proj))


def _projector_residual():
    """``Q^2 - Q`` for ``Q = I - r r^T/N``, ``r^T r = N`` (every K)."""
    Q = 1 - _r * _rt / _Ns
    return reduce_words(Q * Q - Q, _RELATIONS)


PROOFS_IMB = (
    Proof("free bias, class level (every K; matrices as noncommutative symbols): b = (n - Z n)/N makes the "
          "gradient in b vanish and leaves residual (Z - I)(I - n 1^T/N), and (I - n 1^T/N) D^{1/2} = D^{1/2} Q "
          "with Q = I - sqrt(n) sqrt(n)^T/N the projector off sqrt(n): so Z' = Z D^{1/2} = SVT_tau(Yhat), "
          "Yhat = (I - n1^T/N) D^{1/2}",
          _imb_residuals),
    Proof("Q is an orthogonal projector (Q^2 = Q from ||sqrt(n)||^2 = N; every K), hence ||Z'Q||_* <= ||Z'||_* "
          "and the optimal Z' lies in the range of Q",
          _projector_residual),
)

IMBALANCED_FREE_BIAS = Theorem(
    name="Imbalanced MSE UFM, free bias: Z D^1/2 = SVT of Yhat = (I - n1^T/N) D^1/2 (L = 1)",
    citation=IMB_EXT,
    tag="derived",
    statement=("One-hot MSE, counts n_k, lam_b = 0, lam_W, lam_H > 0, d >= K: W Hbar D^{1/2} = "
               "SVT_tau(Yhat) with Yhat = (I_K - n 1^T/N) diag(sqrt n) (the matrix of arXiv 2411.17278's "
               "abstract) and tau = N sqrt(lam_W lam_H); b = (n - W Hbar n)/N; W W^T = "
               "sqrt(lam_H/lam_W)(Z'Z'^T)^{1/2}, Hbar^T Hbar = sqrt(lam_W/lam_H) D^{-1/2}(Z'^T Z')^{1/2} D^{-1/2}: "
               "directions whose singular value of Yhat is <= tau collapse to 0. This is the L = 1 case "
               "only; the paper's L-layer statement was not derived here."),
    assumptions=_imb_assume,
    assemble=_imb_assemble,
    # d = 5: the shape of mse.MSE_IMBALANCED's instance (its shape-only compilations are shared)
    instances=lambda: [ufm.UFM(K=3, n=(2, 5, 9), d=5, loss=ufm.MSE(), lam_W=2e-2, lam_H=2e-2, lam_b=0.0),
                       ufm.UFM(K=4, n=(1, 2, 4, 8), d=5, loss=ufm.MSE(), lam_W=3e-2, lam_H=4e-2, lam_b=0.0),
                       # tau = 2.0 between the singular values 1.61 and 2.56 of Yhat: one direction shrunk to 0
                       ufm.UFM(K=3, n=(2, 5, 9), d=5, loss=ufm.MSE(), lam_W=0.125, lam_H=0.125, lam_b=0.0)],
    random_instance=lambda rng: ufm.UFM(K=3, n=tuple(int(v) for v in rng.integers(1, 10, size=3)), d=4,
                                        loss=ufm.MSE(), lam_W=float(rng.uniform(5e-3, 0.1)),
                                        lam_H=float(rng.uniform(5e-3, 0.1)), lam_b=0.0),
    measure=measure_ufm,
    expressions={**SVT_EXPRESSIONS, **GRAM_EXPRESSIONS},
    proofs=PROOFS_SVT + PROOFS_IMB,
    thresholds=(Threshold(_imb_distance, SVT_WHAT + "; Yhat, tau = N sqrt(lam_W lam_H)"),),
    assumed=("the nuclear-norm lemma: min over W H = Z of lam_W/2||W||^2 + lam_H/2||H||^2 is sqrt(lam_W lam_H)||Z||_* (attained for d >= rank Z; Srebro et al. 2005)",
             "the proximal map of mu||.||_* is singular-value soft-thresholding (von Neumann trace inequality; Cai, Candes & Shen 2010)",
             "within-class collapse at every minimizer (Jensen; docs/theory.md#canonical-objective, #lemma-collapse)",
             "||Z'Q||_* <= ||Z'||_* for the orthogonal projector Q (shown: Q^2 = Q for every K)"),
)


# ---- imbalanced L-extended UFM with free bias, linear layers (arXiv 2411.17278), L >= 2 --------
# Per singular value sigma of Yhat the m = L + 1 balanced factors give the scalar problem
# (s - sigma)^2/(2N) + (m/2) Lambda' s^(2/m), Lambda' = (lam_H prod_l lam_l)^(1/m); with s = sigma x it
# is (sigma^2/N) h_m(x) with gamma = N Lambda' sigma^(2/m - 2), the catalog's h_m (deep_reduction).
sg, Lp = sp.symbols("sigma Lambda_p", positive=True)
EXT_EXPRESSIONS = {
    "h(x)": h_sym(ms),
    "gamma": Nn * Lp * sg ** (2 / ms - 2),
    "gamma_c": DNC_EXPRESSIONS["gamma_c"],
}


def _ext_numbers(prob) -> dict:
    lams = np.asarray(prob.lams, float)
    m = prob.L + 1
    return {"N": float(prob.N), "m": float(m),
            "Lambda_p": float((float(prob.lam_H) * np.prod(lams)) ** (1.0 / m))}


def _ext_assemble(prob, ev):
    nvec = np.asarray(prob.counts, dtype=float)
    U, sv, Vt = np.linalg.svd(_yhat(prob), full_matrices=False)
    m, Lam = ev.numbers["m"], ev.numbers["Lambda_p"]
    s_opt, value = np.zeros_like(sv), 0.0
    for i, sigma_i in enumerate(sv):
        if sigma_i <= 1e-12 * sv[0]:
            continue  # Yhat has rank K - 1 (Yhat sqrt(n) = 0)
        sub = Evaluator(ev.expressions, {**ev.numbers, "sigma": float(sigma_i)})
        x_opt, _ = x_star(sub)
        ev.used |= sub.used
        s_opt[i] = sigma_i * x_opt
        value += sigma_i**2 / prob.N * float(sub("h(x)", x=x_opt))
    Zp = (U * s_opt) @ Vt
    Z = Zp / np.sqrt(nvec)
    q = {"value": value, "logit_means": Z, "bias": (nvec - Z @ nvec) / prob.N}
    lams = np.asarray(prob.lams, float)
    root = np.sort(s_opt ** (1.0 / m))[::-1]
    for l in range(prob.L):
        q[f"sigma_W[{l + 1}]"] = np.sqrt(Lam / lams[l]) * root
    Dm = np.diag(1 / np.sqrt(nvec))
    q["Hbar_gram"] = (Lam / float(prob.lam_H)) * Dm @ ((Vt.T * s_opt ** (2.0 / m)) @ Vt) @ Dm
    return q


def _ext_measure(prob, params, names):
    H = np.asarray(params.H)
    lab = prob.labels
    Hbar = np.stack([H[:, lab == k].mean(axis=1) for k in range(prob.K)], axis=1)
    prod = Hbar
    for W in params.Ws:
        prod = np.asarray(W) @ prod
    out = {"value": float(prob.objective(params)), "logit_means": prod, "bias": np.asarray(params.b),
           "Hbar_gram": Hbar.T @ Hbar}
    for l, W in enumerate(params.Ws):
        out[f"sigma_W[{l + 1}]"] = np.linalg.svd(np.asarray(W), compute_uv=False)[: prob.K]
    return {k: out[k] for k in names}


def _ext_distance(prob):
    """``gamma_i/gamma_c - 1`` per nonzero direction of Yhat (positive: collapsed to 0)."""
    ev = Evaluator(EXT_EXPRESSIONS, _ext_numbers(prob))
    return np.array([ev("gamma", sigma=float(sg_)) / ev("gamma_c") - 1
                     for sg_ in np.linalg.svd(_yhat(prob), compute_uv=False)[: prob.K - 1]])


def _ext_assume(prob):
    if not isinstance(prob, ufm.DeepUFM) or prob.activation != "linear" or prob.relu_features:
        return False, "needs a linear ufm.DeepUFM"
    if not isinstance(prob.loss, ufm.MSE) or prob.loss.encoding is not None:
        return False, "one-hot MSE"
    if not (prob.has_bias and float(prob.lam_b) == 0.0):
        return False, "free bias (lam_b=0)"
    if prob.L < 2 or min(prob.widths) < prob.K:
        return False, "L >= 2 layers and every width >= K"
    if float(prob.lam_H) <= 0 or np.any(np.asarray(prob.lams) <= 0):
        return False, "every lam > 0"
    ev = Evaluator(EXT_EXPRESSIONS, _ext_numbers(prob))
    for sigma_i in np.linalg.svd(_yhat(prob), compute_uv=False)[: prob.K - 1]:
        if abs(ev("gamma", sigma=float(sigma_i)) / ev("gamma_c") - 1) < 0.05:
            return False, "a direction within 5% of the jump threshold gamma_c (two global minimizers)"
    return True, ""


IMBALANCED_EXTENDED = Theorem(
    name="Imbalanced deep linear MSE UFM, free bias: per-direction h_m reduction of SVD(Yhat)",
    citation=IMB_EXT,
    tag="derived",
    statement=("One-hot MSE, counts n_k, free bias, L >= 2 linear layers of width >= K, every lam > 0: "
               "with m = L + 1 and Yhat = (I - n1^T/N) diag(sqrt n) = sum_i sigma_i u_i v_i^T, the end-to-end "
               "W_L...W_1 Hbar D^{1/2} = sum_i sigma_i x_i u_i v_i^T, x_i the global minimizer of h_m with "
               "gamma_i = N Lambda' sigma_i^{2/m-2}, Lambda' = (lam_H prod lam_l)^{1/m} (directions with "
               "gamma_i > gamma_c collapse to 0: 'some rows collapse to zero'); W_l has singular values "
               "(Lambda'/lam_l)^{1/2}(sigma_i x_i)^{1/m}; b = (n - Z n)/N. Derived (abstract only)."),
    assumptions=_ext_assume,
    assemble=_ext_assemble,
    variables=_ext_numbers,
    instances=lambda: [ufm.DeepUFM(K=3, n=(2, 5, 9), widths=(3, 3), loss=ufm.MSE(), lam_W=0.055, lam_H=0.055,
                                   lam_b=0.0, activation="linear")],
    random_instance=lambda rng: ufm.DeepUFM(K=3, n=tuple(int(v) for v in rng.integers(1, 10, size=3)),
                                            widths=(3, 3), loss=ufm.MSE(), lam_W=(lam := float(rng.uniform(0.01, 0.08))),
                                            lam_H=lam, lam_b=0.0, activation="linear"),
    measure=_ext_measure,
    solve=solve_deep,
    expressions=EXT_EXPRESSIONS,
    thresholds=(Threshold(_ext_distance, "gamma_i/gamma_c - 1 per direction of Yhat (positive: collapsed to 0)"),),
    proofs=(Proof("per direction: with s = sigma x, (s - sigma)^2/(2N) + (m/2) Lambda' s^(2/m) = (sigma^2/N) h_m(x) "
                  "with gamma = N Lambda' sigma^(2/m - 2)",
                  lambda: sp.expand((s - sig) ** 2 / (2 * Nn) + ms / 2 * Lp * s ** (2 / ms)).subs(
                      s, sig * x) - sp.expand(sig**2 / Nn * h_sym(ms).subs(
                          gam, Nn * Lp * sig ** (2 / ms - 2)))),
            ) + PROOFS_IMB,
    assumed=("balanced factorization: the minimum of sum_i lam_i/2||F_i||^2 over m factors with product Z' is "
             "(m/2) Lambda' sum_j s_j(Z')^(2/m) (AM-GM per singular value; the deep module's reduction)",
             "alignment: for a penalty increasing in each singular value, von Neumann's inequality aligns Z' with "
             "Yhat, and sigma_j(Z'Q) <= sigma_j(Z') for the projector Q",
             "within-class collapse at every minimizer (Jensen)"),
    slow=True,
)

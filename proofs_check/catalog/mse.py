r"""MSE UFM: bias, label encoding and class imbalance, through the class-level convex program.

With collapse, ``Z = W Hbar`` and ``D_n = diag(n_k)``, the nuclear-norm lemma
``min_{W Ht = Z'} lam_W/2 ||W||^2 + lam_H/2 ||Ht||^2 = sqrt(lam_W lam_H) ||Z'||_*``
(``Ht = Hbar D_n^{1/2}``, ``Z' = Z D_n^{1/2}``) turns the MSE UFM into
``min (1/2N)||(Z + b 1^T - E) D_n^{1/2}||^2 + sqrt(lam_W lam_H)||Z D_n^{1/2}||_* + lam_b/2||b||^2``,
solved by singular-value soft-thresholding (SVT). Each theorem's expressions give the shrunk
singular values (or the scalars ``x*``, ``y*``, ``beta*``); :func:`invariants` turns the predicted
``Z' = W Hbar D^{1/2}`` and bias into Grams and the value (the class-level objective at them).
"""

from __future__ import annotations

import numpy as np
import sympy as sp

import ufm
from proofs_check.catalog._common import (
    K, N, P, away_from, kappa, kappa_expr, lam_b, lam_H, lam_W, lams_for, n,
)
from proofs_check.catalog._structured import IJ
from proofs_check.catalog.svt import SVT_WHAT, sv_distance
from proofs_check.measure import measure_ufm
from proofs_check.theorem import Citation, Proof, Theorem, Threshold

TIRER_BRUNA = Citation("Tirer & Bruna", 2022, "ICML", "2202.08087")
ZHOU_BIAS = Citation("Zhou et al.", 2022, "ICML", "2203.01238")
MASSION_ENC = Citation("Massion, Massart & Makhlouf", 2026, "preprint", "2606.00344",
                       what=("the role of the class encoding in the MSE UFM; the SVT closed form for any "
                             "code and class counts is ufm's derivation (only the abstract was read)"))
MASSION = Citation("Massion, Massart & Makhlouf", 2026, "preprint", "2606.00344",
                   what=("one-hot balanced MSE UFM: the class means move from a simplex ETF to an orthogonal "
                         "frame as the bias regularization grows, and the bias centres the labels; the "
                         "threshold lam_b = K kappa/(1-K kappa) and the closed forms are ufm's derivation "
                         "(only the abstract was read)"))
DANG = Citation("Dang, Tran, Osher, Tran-The, Ho & Nguyen", 2023, "ICML", "2301.00437",
                what=("imbalanced MSE without a bias: orthogonal class means with lengths set by the class "
                      "counts; the per-class thresholds in ufm's scaling are derived here"))

kap, x, y, beta, w, h, z, lp = sp.symbols("kappa x y beta w h z lambda'", positive=True)
sv = sp.symbols("s", nonnegative=True)  # a singular value of the fitted code
t = sp.symbols("t", nonnegative=True)  # the matching singular value of the minimizer's Z' (shrunk)

# The nuclear-norm lemma's balanced factors: W W^T = rho_W (Z'Z'^T)^{1/2}, Hbar^T Hbar =
# rho_H D^{-1/2}(Z'^T Z')^{1/2} D^{-1/2} (the lemma below, scalar case: w^2 = sqrt(lam'/lam_W) z).
GRAM_EXPRESSIONS = {"rho_W": sp.sqrt(lam_H / lam_W), "rho_H": sp.sqrt(lam_W / lam_H)}

# ---- the nuclear-norm lemma, scalar case -----------------------------------------------------
w_star = (lp / lam_W) ** sp.Rational(1, 4) * sp.sqrt(z)
h_star = (lam_W / lp) ** sp.Rational(1, 4) * sp.sqrt(z)
LEMMA = (
    Proof("lemma (scalar): at w = (lam'/lam_W)^(1/4) sqrt(z), h = z/w the penalty "
          "lam_W/2 w^2 + lam'/2 h^2 equals sqrt(lam_W lam') z and is stationary along w h = z",
          lambda: ((lam_W / 2 * w_star**2 + lp / 2 * h_star**2) - sp.sqrt(lam_W * lp) * z,
                   w_star * h_star - z,
                   sp.diff(lam_W / 2 * w**2 + lp / 2 * (z / w) ** 2, w).subs(w, w_star))),
)

# ---- bias-free, one-hot, balanced (Tirer & Bruna) ------------------------------------------
red_tb = (x - 1) ** 2 / 2 + K * kap * x  # per class direction: Z = x I
x_tb = 1 - K * kap
PROOFS_TB = LEMMA + (
    Proof("reduced objective (1/2)(x-1)^2 + K kappa x is stationary at x* = 1 - K kappa",
          lambda: sp.diff(red_tb, x).subs(x, x_tb)),
    Proof("value: f* = c_T - c_T^2/2 with c_T = K kappa (Tirer & Bruna's form)",
          lambda: red_tb.subs(x, x_tb) - (K * kap - (K * kap) ** 2 / 2)),
    Proof("the zero solution's value 1/2 meets f* at c_T = 1 (continuous transition)",
          lambda: (red_tb.subs(x, x_tb) - sp.Rational(1, 2)).subs(kap, 1 / K)),
    Proof("scaling: Tirer & Bruna's lam_W^T/(2K), lam_H^T/(2Kn) equal ufm's lam_W/2, lam_H/2 with "
          "lam_W^T = K lam_W, lam_H^T = K n lam_H",
          lambda: ((K * lam_W) / (2 * K) - lam_W / 2, (K * n * lam_H) / (2 * K * n) - lam_H / 2), kind="definition"),
)


def _gram_sqrts(Zp):
    """``((Z Z^T)^{1/2}, (Z^T Z)^{1/2})`` from the SVD of ``Z`` (no square root of round-off)."""
    U, sv, Vt = np.linalg.svd(Zp, full_matrices=False)
    return (U * sv) @ U.T, (Vt.T * sv) @ Vt


def invariants(prob: ufm.UFM, ev, Zp: np.ndarray, value: float, b: np.ndarray | None = None) -> dict:
    r"""Invariants of the minimizer whose collapsed logits are ``Z' = W Hbar D^{1/2}`` (bias ``b``).

    ``W W^T = rho_W (Z'Z'^T)^{1/2}``, ``Hbar^T Hbar = rho_H D^{-1/2} (Z'^T Z')^{1/2} D^{-1/2}``
    (the nuclear-norm lemma's balanced factors; ``rho_W``, ``rho_H`` are the expressions of
    :data:`GRAM_EXPRESSIONS`, evaluated by ``ev``); ``value`` comes from the theorem's expression
    of the reduced objective (this function holds no formula of its own).
    """
    counts = np.asarray(prob.counts, dtype=float)
    Dh = np.sqrt(counts)
    left, right = _gram_sqrts(Zp)
    W_gram = ev("rho_W") * left
    Hbar_gram = ev("rho_H") * right / np.outer(Dh, Dh)
    q = {"value": float(value), "W_gram": W_gram, "Hbar_gram": Hbar_gram, "logit_means": Zp / Dh,
         "w_norm2": np.diag(W_gram).copy(), "h_norm2": np.diag(Hbar_gram).copy(), "within_class_spread": 0.0}
    if b is not None:
        q["bias"] = b
    return q


def _svt_value(ev, s_in, shrunk) -> float:
    """The class-level objective at an SVT minimizer: the sum over singular directions of the
    expression ``f(s, t)`` (input singular value ``s``, the minimizer's ``t``)."""
    return float(np.sum(np.broadcast_to(ev("f(s, t)", s=s_in, t=shrunk), np.shape(s_in))))


def _svt(ev, M):
    """``(U diag(t) V^T, value)`` with ``t = max(sigma*(s), 0)`` for ``M = U diag(s) V^T``: the
    shrinkage is the expression ``sigma*(s)``, the value the sum of ``f(s, t)``."""
    U, sv, Vt = np.linalg.svd(M, full_matrices=False)
    shrunk = np.maximum(np.broadcast_to(np.asarray(ev("sigma*(s)", s=sv), dtype=float), sv.shape), 0.0)
    return (U * shrunk) @ Vt, _svt_value(ev, sv, shrunk)


def _encoding(prob):
    return np.eye(prob.K) if prob.loss.encoding is None else np.asarray(prob.loss.encoding)


def _tb_assemble(prob, ev):
    xs = max(ev("x*"), 0.0)
    return invariants(prob, ev, xs * np.sqrt(prob.n) * np.eye(prob.K), value=ev("f(x)", x=xs))


def _assume(prob, *, bias, onehot=None, balanced=True):
    if not isinstance(prob.loss, ufm.MSE):
        return False, "loss must be MSE"
    if bias == "none" and prob.has_bias:
        return False, "bias-free model (lam_b=None)"
    if bias == "free" and not (prob.has_bias and float(prob.lam_b) == 0.0):
        return False, "free bias (lam_b=0)"
    if bias == "reg" and not (prob.has_bias and float(prob.lam_b) > 0.0):
        return False, "regularized bias (lam_b>0)"
    if onehot is True and prob.loss.encoding is not None:
        return False, "one-hot labels (encoding=None)"
    if balanced and not prob.balanced:
        return False, "balanced classes"
    if prob.nonneg or float(prob.lam_W) <= 0 or float(prob.lam_H) <= 0:
        return False, "signed features and lam_W, lam_H > 0"
    if prob.d < min(prob.D, prob.K):
        return False, f"d >= min(D, K) (got d={prob.d}); otherwise the minimizer is not unique"
    return True, ""


def _singular_values_away(M, tau, what):
    """Every nonzero singular value of ``M`` at least 5% away from the SVT threshold ``tau``."""
    s = np.linalg.svd(M, compute_uv=False)
    s = s[s > 1e-12]
    if np.all(np.abs(s / tau - 1) > 0.05):
        return True, ""
    return False, f"a singular value of {what} within 5% of the threshold {tau:.4g} (degenerate minimizer)"


def _kk_distance(prob) -> float:
    """``K kappa - 1``: positive beyond the threshold (the zero solution)."""
    return prob.K * kappa(prob) - 1


_KK_WHAT = "K kappa - 1 (positive: the zero solution)"


def _tb_assume(prob):
    ok, why = _assume(prob, bias="none", onehot=True)
    return away_from(prob.K * kappa(prob), 1.0, "K kappa") if ok else (ok, why)


def _tb_random(rng):
    frac = float(rng.choice([rng.uniform(0.05, 0.9), rng.uniform(1.1, 1.8)]))
    lw, lh = lams_for(frac / 4, 5, rho=float(np.exp(rng.uniform(-0.7, 0.7))))
    return ufm.UFM(K=4, n=5, d=8, loss=ufm.MSE(), lam_W=lw, lam_H=lh)


MSE_BIAS_FREE = Theorem(
    name="MSE UFM, no bias: orthogonal frame, zero beyond K kappa = 1",
    citation=TIRER_BRUNA,
    tag="paper",
    statement=("Balanced, one-hot, no bias, d >= K: W Hbar = (1-K kappa)_+ I, Hbar^T Hbar = "
               "(1-K kappa) c I, W W^T = (1-K kappa)/c I (orthogonal frame); f* = c_T - c_T^2/2 "
               "(c_T = K kappa <= 1), else the minimizer is 0 (Tirer & Bruna's theorem in ufm's scaling)."),
    assumptions=_tb_assume,
    assemble=_tb_assemble,
    instances=lambda: [ufm.UFM(K=4, n=5, d=8, loss=ufm.MSE(), lam_W=5e-3, lam_H=5e-3),
                       ufm.UFM(K=4, n=5, d=8, loss=ufm.MSE(), lam_W=lams_for(1.2 / 4, 5)[0],
                               lam_H=lams_for(1.2 / 4, 5)[1])],
    random_instance=_tb_random,
    measure=measure_ufm,
    expressions={"kappa": kappa_expr, "x*": x_tb, "f(x)": red_tb, **GRAM_EXPRESSIONS},
    proofs=PROOFS_TB,
    thresholds=(Threshold(_kk_distance, _KK_WHAT),),
    assumed=("the minimizer has collapsed features (zero within-class spread), shown for the regularized "
             "MSE UFM by Tirer & Bruna 2022 (and docs/theory.md#canonical-objective)",),
)

# ---- free bias: simplex ETF (Zhou et al. ICML 2022) -----------------------------------------
red_free = (K - 1) / (2 * K) * (x - 1) ** 2 + kap * (K - 1) * x  # Z = x P, b = 1/K
PROOFS_FREE = (
    Proof("free bias: with Z = x P the optimal b = 1/K 1 leaves residual (x-1)P, and "
          "(K-1)/(2K)(x-1)^2 + (K-1) kappa x is stationary at x* = 1 - K kappa",
          lambda: sp.diff(red_free, x).subs(x, 1 - K * kap)),
)


def _free_assemble(prob, ev):
    E = _encoding(prob)
    Z, value = _svt(ev, E @ P(prob.K))
    return invariants(prob, ev, Z * np.sqrt(prob.n), value, b=E.sum(axis=1) * ev("b*/sum(E)"))


def _free_distance(prob) -> np.ndarray:
    return sv_distance(_encoding(prob) @ P(prob.K), prob.K * kappa(prob))


def _free_assume(prob):
    ok, why = _assume(prob, bias="free")
    if not ok:
        return ok, why
    if prob.loss.encoding is None:
        return away_from(prob.K * kappa(prob), 1.0, "K kappa")
    return _singular_values_away(np.asarray(prob.loss.encoding) @ P(prob.K), prob.K * kappa(prob), "E P")


MSE_FREE_BIAS = Theorem(
    name="MSE UFM, free bias: b = mean code, Z = SVT(E P) (simplex ETF for one-hot)",
    citation=ZHOU_BIAS,
    tag="derived",
    statement=("Balanced, lam_b = 0, any encoding E (D x K), d >= K: b* = E 1/K, W Hbar = "
               "SVT_{K kappa}(E P); for one-hot this is (1-K kappa)_+ P and the class means form a "
               "simplex ETF."),
    assumptions=_free_assume,
    assemble=_free_assemble,
    instances=lambda: [ufm.UFM(K=4, n=5, d=8, loss=ufm.MSE(), lam_W=5e-3, lam_H=5e-3, lam_b=0.0),
                       ufm.UFM(K=4, n=5, d=8, loss=ufm.MSE(np.random.default_rng(0).standard_normal((5, 4))),
                               lam_W=2e-2, lam_H=2e-2, lam_b=0.0),
                       # the same code at K kappa = 1.1, between its singular values 0.81 and 1.45: the
                       # smallest direction is shrunk to 0, the two others kept
                       ufm.UFM(K=4, n=5, d=8, loss=ufm.MSE(np.random.default_rng(0).standard_normal((5, 4))),
                               lam_W=lams_for(1.1 / 4, 5)[0], lam_H=lams_for(1.1 / 4, 5)[1], lam_b=0.0)],
    random_instance=lambda rng: ufm.UFM(K=4, n=5, d=8, loss=ufm.MSE(rng.standard_normal((5, 4))),
                                        lam_W=float(rng.uniform(1e-3, 5e-2)), lam_H=float(rng.uniform(1e-3, 5e-2)), lam_b=0.0),
    measure=measure_ufm,
    # per singular direction of E P (balanced, n/N = 1/K): (1/2N) n (t - s)^2 + sqrt(lam_W lam_H) sqrt(n) t
    expressions={"kappa": kappa_expr, "sigma*(s)": sv - K * kap, "b*/sum(E)": 1 / K,
                 "f(s, t)": (t - sv) ** 2 / (2 * K) + kap * t, **GRAM_EXPRESSIONS},
    proofs=PROOFS_FREE,
    thresholds=(Threshold(_free_distance, SVT_WHAT + "; E P, tau = K kappa"),),
    assumed=("collapsed features at the minimizer and the nuclear-norm lemma's reduction to the class-level "
             "program (its equality case proved for any size in the imbalanced-CE entry); the SVT solves that program "
             "(a standard proximal result, not proved here)",),
)

# ---- regularized bias: ETF-to-orthogonal transition (Massion, Massart & Makhlouf 2026) --------
red_reg = ((K - 1) * (x - 1) ** 2 + (y + K * beta - 1) ** 2) / (2 * K) + kap * ((K - 1) * x + y) \
    + lam_b * K * beta**2 / 2
x_reg = 1 - K * kap
y_reg = 1 - K * kap * (1 + lam_b) / lam_b
beta_reg = (1 - y) / (K * (1 + lam_b))
boundary = K * kap / (1 - K * kap)


def _reg_reduction_residuals():
    """The data term and the nuclear norm of the ansatz, in the family ``a I + b J`` (symbolic K)."""
    Z = IJ(x, -x / K, K) + IJ(0, y / K, K)
    resid = Z + IJ(0, beta, K) - IJ(1, 0, K)
    nuclear = sum(mult * ev for ev, mult in Z.eigenvalues())  # x, y > 0: the eigenvalues are the singular values
    return (resid.frobenius2() - ((K - 1) * (x - 1) ** 2 + (y + K * beta - 1) ** 2),
            sum(mult * ev**2 for ev, mult in resid.eigenvalues()) - resid.frobenius2(),
            nuclear - ((K - 1) * x + y))


PROOFS_REG = (
    Proof("with Z = x P + y J/K and b = beta 1 (every K; Z + b1^T - I = (x-1) I + ((y-x)/K + beta) J): "
          "||Z + b1^T - I||^2 = (K-1)(x-1)^2 + (y+K beta-1)^2 and ||Z||_* = (K-1)x + y (eigenvalues of "
          "a I + b J: a + K b once, a K-1 times)",
          lambda: _reg_reduction_residuals()),
    Proof("grad of the reduced objective vanishes at x* = 1-K kappa, y* = 1-K kappa(1+lam_b)/lam_b, "
          "beta* = (1-y*)/(K(1+lam_b))",
          lambda: tuple(sp.diff(red_reg, v).subs(beta, beta_reg).subs({x: x_reg, y: y_reg}) for v in (x, y, beta))),
    Proof("y* = 0 exactly at lam_b = K kappa/(1-K kappa) (the ETF / non-ETF boundary)",
          lambda: y_reg.subs(lam_b, boundary)),
    Proof("KKT at y = 0: d f/d y = kappa - lam_b/(K(1+lam_b)) >= 0 iff lam_b <= K kappa/(1-K kappa)",
          lambda: (sp.diff(red_reg, y).subs(beta, beta_reg).subs(y, 0) - (kap - lam_b / (K * (1 + lam_b))),
                   (kap - lam_b / (K * (1 + lam_b))).subs(lam_b, boundary))),
    Proof("class-mean cosine (y-x)/((K-1)x+y) is -1/(K-1) at y = 0", lambda: ((y - x) / ((K - 1) * x + y)).subs(y, 0) + 1 / (K - 1)),
)


def _reg_assemble(prob, ev):
    """x*, y*, beta* from the expressions (clipped at 0), then the invariants."""
    K_ = prob.K
    xs, ys = max(ev("x*"), 0.0), max(ev("y*"), 0.0)
    bs = ev("beta*", y=ys)
    q = invariants(prob, ev, (xs * P(K_) + ys * np.ones((K_, K_)) / K_) * np.sqrt(prob.n), b=np.full(K_, bs),
                   value=ev("f(x, y, beta)", x=xs, y=ys, beta=bs))
    if xs + ys > 0:  # the cosine of zero class means is undefined
        q["class_mean_cosine"] = (ys - xs) / ((K_ - 1) * xs + ys)
    return q


def _reg_assume(prob):
    ok, why = _assume(prob, bias="reg", onehot=True)
    if not ok:
        return ok, why
    kk = prob.K * kappa(prob)
    ok, why = away_from(kk, 1.0, "K kappa")
    if not ok or kk > 1:  # beyond K kappa = 1 the minimizer is 0 for every lam_b
        return ok, why
    return away_from(float(prob.lam_b), kk / (1 - kk), "lam_b")


def _lam_b_distance(prob) -> np.ndarray:
    """``lam_b/(K kappa/(1-K kappa)) - 1`` (positive: beyond the ETF, toward orthogonal); none when
    ``K kappa >= 1`` (the minimizer is 0 for every lam_b)."""
    kk = prob.K * kappa(prob)
    return np.array([float(prob.lam_b) / (kk / (1 - kk)) - 1]) if kk < 1 else np.zeros(0)


def _reg_random(rng):
    kv = float(rng.uniform(0.02, 0.2))
    lw, lh = lams_for(kv, 5, rho=float(np.exp(rng.uniform(-0.5, 0.5))))
    bnd = 4 * kv / (1 - 4 * kv)
    lb = bnd * float(rng.choice([rng.uniform(0.2, 0.9), rng.uniform(1.1, 20.0)]))
    return ufm.UFM(K=4, n=5, d=8, loss=ufm.MSE(), lam_W=lw, lam_H=lh, lam_b=lb)


MSE_REG_BIAS = Theorem(
    name="MSE UFM, regularized bias: ETF up to lam_b = K kappa/(1-K kappa), then toward orthogonal",
    citation=MASSION,
    tag="derived",
    statement=("Balanced, one-hot, lam_b > 0, d >= K: W Hbar = x P + y J/K with x = (1-K kappa)_+, "
               "y = (1-K kappa(1+lam_b)/lam_b)_+, b = (1-y)/(K(1+lam_b)) 1; exact simplex ETF for "
               "lam_b <= K kappa/(1-K kappa), beyond it cos(h_k, h_l) = (y-x)/((K-1)x+y) rises toward 0; "
               "for K kappa >= 1, W Hbar = 0 and b = 1/(K(1+lam_b)) 1."),
    assumptions=_reg_assume,
    assemble=_reg_assemble,
    # K kappa = 0.0447, threshold lam_b = 0.0468: 0.02 on the ETF side, 0.5 and 5.0 beyond it; then
    # K kappa = 1.2, beyond the zero-solution threshold
    instances=lambda: [ufm.UFM(K=4, n=5, d=8, loss=ufm.MSE(), lam_W=5e-3, lam_H=5e-3, lam_b=lb)
                       for lb in (0.02, 0.5, 5.0)]
    + [ufm.UFM(K=4, n=5, d=8, loss=ufm.MSE(), lam_W=lams_for(1.2 / 4, 5)[0], lam_H=lams_for(1.2 / 4, 5)[1],
               lam_b=0.5)],
    random_instance=_reg_random,
    measure=measure_ufm,
    expressions={"kappa": kappa_expr, "x*": x_reg, "y*": y_reg, "beta*": beta_reg, "f(x, y, beta)": red_reg,
                 **GRAM_EXPRESSIONS},
    proofs=PROOFS_REG,
    thresholds=(Threshold(_kk_distance, _KK_WHAT),
                Threshold(_lam_b_distance, "lam_b (1-K kappa)/(K kappa) - 1 (positive: beyond the ETF, toward "
                                           "orthogonal means)")),
    assumed=("collapsed features and the class-level reduction (as for the free bias); that the optimal "
             "Z has the form x P + y J/K (symmetry of the balanced one-hot problem, argued in prose)",),
)

# ---- encodings, no bias ---------------------------------------------------------------------
PROOFS_ENC = (
    Proof("the +-1 code E = 2I - J has E^T E = 4I + (K-4)J for every K (products in the family a I + b J), "
          "so at the instance's K = 4 E^T E = 4 I: SVT(E) = (1 - K kappa/2) E and Hbar^T Hbar is "
          "proportional to (Z^T Z)^(1/2) = (2 - K kappa) I: orthogonal class means",
          lambda: (IJ(2, -1, K) @ IJ(2, -1, K) - IJ(4, K - 4, K)).coefficients()),
)


def _enc_distance(prob) -> np.ndarray:
    tau = prob.N * np.sqrt(float(prob.lam_W) * float(prob.lam_H))
    return sv_distance(_encoding(prob) * np.sqrt(np.asarray(prob.counts, float)), tau)


def _enc_assume(prob):
    ok, why = _assume(prob, bias="none")
    if not ok:
        return ok, why
    E = np.eye(prob.K) if prob.loss.encoding is None else np.asarray(prob.loss.encoding)
    tau = prob.N * np.sqrt(float(prob.lam_W) * float(prob.lam_H))
    return _singular_values_away(E * np.sqrt(np.asarray(prob.counts, float)), tau, "E D^1/2")


MSE_ENCODING = Theorem(
    name="MSE UFM, no bias, any encoding and class counts: Z D^1/2 = SVT(E D^1/2)",
    citation=MASSION_ENC,
    tag="derived",
    statement=("No bias, any encoding E (D x K) and counts n_k, d >= min(D, K): W Hbar D^{1/2} = "
               "SVT_tau(E D^{1/2}) with tau = N sqrt(lam_W lam_H); W W^T = sqrt(lam_H/lam_W)(Z'Z'^T)^{1/2}, "
               "Hbar^T Hbar = sqrt(lam_W/lam_H) D^{-1/2}(Z'^T Z')^{1/2} D^{-1/2}."),
    assumptions=_enc_assume,
    assemble=lambda prob, ev: invariants(
        prob, ev, *_svt(ev, _encoding(prob) * np.sqrt(np.asarray(prob.counts, float)))),
    instances=lambda: [ufm.UFM(K=4, n=5, d=8, loss=ufm.MSE(2 * np.eye(4) - 1), lam_W=5e-3, lam_H=5e-3),
                       ufm.UFM(K=4, n=5, d=8, loss=ufm.MSE(np.random.default_rng(1).standard_normal((6, 4))),
                               lam_W=1e-2, lam_H=3e-2),
                       # the same code at tau = 2.2, between its singular values 1.26 and 3.19 (times
                       # sqrt n): the smallest direction is shrunk to 0
                       ufm.UFM(K=4, n=5, d=8, loss=ufm.MSE(np.random.default_rng(1).standard_normal((6, 4))),
                               lam_W=0.11, lam_H=0.11)],
    random_instance=lambda rng: ufm.UFM(K=4, n=5, d=8, loss=ufm.MSE(rng.standard_normal((6, 4))),
                                        lam_W=float(rng.uniform(1e-3, 5e-2)), lam_H=float(rng.uniform(1e-3, 5e-2))),
    measure=measure_ufm,
    expressions={"sigma*(s)": sv - N * sp.sqrt(lam_W * lam_H),
                 "f(s, t)": (t - sv) ** 2 / (2 * N) + sp.sqrt(lam_W * lam_H) * t, **GRAM_EXPRESSIONS},
    proofs=PROOFS_ENC,
    thresholds=(Threshold(_enc_distance, SVT_WHAT + "; E D^1/2, tau = N sqrt(lam_W lam_H)"),),
    assumed=("collapsed features and the class-level reduction (nuclear-norm lemma); the SVT solves "
             "min (1/2N)||Z' - E D^1/2||^2 + tau/N ||Z'||_* (a standard proximal result, not proved here)",),
)

# ---- imbalanced, bias-free, one-hot (Dang et al. 2023) --------------------------------------
nk, s_ = sp.symbols("n_k s", positive=True)
red_dang = (s_ - sp.sqrt(nk)) ** 2 / (2 * N) + sp.sqrt(lam_W * lam_H) * s_
a_dang = sp.sqrt(nk) - N * sp.sqrt(lam_W * lam_H)
PROOFS_DANG = LEMMA + (
    Proof("per class: (1/2N)(s - sqrt(n_k))^2 + sqrt(lam_W lam_H) s is stationary at "
          "s* = a_k = sqrt(n_k) - N sqrt(lam_W lam_H) (so class k collapses to 0 iff a_k <= 0)",
          lambda: sp.diff(red_dang, s_).subs(s_, a_dang)),
)


def _dang_assemble(prob, ev):
    nk_v = np.asarray(prob.counts, float)
    a = np.maximum(ev("a_k", n_k=nk_v), 0.0)
    return invariants(prob, ev, np.diag(a), float(np.sum(ev("f_k(s)", s=a, n_k=nk_v))))


def _dang_distance(prob) -> np.ndarray:
    """``sqrt(n_k)/(N sqrt(lam_W lam_H)) - 1`` per class (positive: kept, negative: collapsed to 0)."""
    return np.sqrt(np.asarray(prob.counts, float)) / (prob.N * np.sqrt(float(prob.lam_W) * float(prob.lam_H))) - 1


def _dang_assume(prob):
    ok, why = _assume(prob, bias="none", onehot=True, balanced=False)
    if not ok:
        return ok, why
    if prob.balanced:
        return False, "imbalanced counts (a balanced problem is the Tirer & Bruna case)"
    tau = prob.N * np.sqrt(float(prob.lam_W) * float(prob.lam_H))
    s = np.sqrt(np.asarray(prob.counts, float))
    return (True, "") if np.all(np.abs(s / tau - 1) > 0.05) else (False, "some sqrt(n_k) within 5% of N sqrt(lam_W lam_H)")


MSE_IMBALANCED = Theorem(
    name="MSE UFM, imbalanced, no bias: per-class norms, minority classes collapse to 0",
    citation=DANG,
    tag="derived",
    statement=("One-hot, no bias, counts n_k, d >= K: class means are orthogonal, ||w_k||^2 = "
               "sqrt(lam_H/lam_W) a_k, ||h_k||^2 = sqrt(lam_W/lam_H) a_k/n_k with "
               "a_k = (sqrt(n_k) - N sqrt(lam_W lam_H))_+; class k collapses to 0 iff "
               "sqrt(n_k) <= N sqrt(lam_W lam_H)."),
    assumptions=_dang_assume,
    assemble=_dang_assemble,
    instances=lambda: [ufm.UFM(K=3, n=(2, 5, 9), d=5, loss=ufm.MSE(), lam_W=2e-2, lam_H=2e-2),
                       ufm.UFM(K=3, n=(2, 5, 9), d=5, loss=ufm.MSE(), lam_W=0.12, lam_H=0.09)],
    random_instance=lambda rng: ufm.UFM(K=3, n=(2, 5, 9), d=5, loss=ufm.MSE(),
                                        lam_W=float(rng.uniform(5e-3, 0.15)), lam_H=float(rng.uniform(5e-3, 0.15))),
    measure=measure_ufm,
    expressions={"a_k": a_dang, "f_k(s)": red_dang, **GRAM_EXPRESSIONS},
    proofs=PROOFS_DANG,
    thresholds=(Threshold(_dang_distance, "sqrt(n_k)/(N sqrt(lam_W lam_H)) - 1 per class (positive: class k kept, "
                                          "negative: collapsed to 0)"),),
    assumed=("collapsed features and the class-level reduction (Dang et al. 2023 for the imbalanced "
             "bias-free model); the per-class problems decouple because E D^1/2 is diagonal",),
)

THEOREMS = [MSE_BIAS_FREE, MSE_FREE_BIAS, MSE_REG_BIAS, MSE_ENCODING, MSE_IMBALANCED]

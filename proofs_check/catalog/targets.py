r"""Per-sample targets: the regression UFM, the multi-label (pick-all-label) UFM, and the imbalanced
MSE UFM with a free bias (one layer, and L >= 2 linear layers through the ``deep`` module's h_m).

Only the abstracts of the three papers could be read here (arXiv 2409.04180, 2310.15903,
2411.17278), so every statement below is **derived** for ufm's canonical objective (theory
reference section 1) and checked against :func:`ufm.minimize`; where a paper's abstract states a
shape of the result, the docstring says how the derived statement matches it.

Two reductions carry everything (both standard, stated here and not re-proved in SymPy):

1. the nuclear-norm lemma ``min_{W H = Z} lam_W/2||W||^2 + lam_H/2||H||^2 = sqrt(lam_W lam_H)||Z||_*``
   (attained when ``d >= rank Z``), with ``W W^T = sqrt(lam_H/lam_W)(Z Z^T)^{1/2}`` and
   ``H^T H = sqrt(lam_W/lam_H)(Z^T Z)^{1/2}``;
2. the proximal map of the nuclear norm is singular-value soft-thresholding (von Neumann's trace
   inequality aligns the singular vectors), so a squared-error problem splits into one scalar
   problem per singular value, ``phi(s) = (s - sigma)^2/(2N) + mu s`` on ``s >= 0``, which SymPy
   solves below; its minimizer ``s* = (sigma - N mu)_+`` and value are the expressions that
   ``predict`` lambdifies.
"""

from __future__ import annotations

from itertools import combinations
from math import comb

import numpy as np
import sympy as sp

import ufm
from proofs_check import closed_forms as cf
from proofs_check.catalog import deep as _deep
from proofs_check.catalog._common import K, lam_H, lam_W
from proofs_check.theorem import Citation, Evaluator, Proof, Theorem, problem_numbers

ANDRIOPOULOS = Citation("Andriopoulos, Dong, Guo, Zhao & Ross", 2024, "NeurIPS", "2409.04180")
LI_MLAB = Citation("Li, Li, Wang & Qu", 2024, "ICML", "2310.15903")
IMB_EXT = Citation("(imbalanced L-extended UFM with bias)", 2024, "preprint", "2411.17278")

# ---- the scalar SVT problem (one singular value) ---------------------------------------------
s, sig, Nn, mu = sp.symbols("s sigma N mu", positive=True)
phi = (s - sig) ** 2 / (2 * Nn) + mu * s
s_pos = sig - Nn * mu
S_STAR = sp.Piecewise((s_pos, sig > Nn * mu), (0, True))
V_STAR = sp.Piecewise((phi.subs(s, s_pos), sig > Nn * mu), (sig**2 / (2 * Nn), True))
MU = sp.sqrt(lam_W * lam_H)

PROOFS_SVT = (
    Proof("phi(s) = (s - sigma)^2/(2N) + mu s is stationary at s* = sigma - N mu",
          lambda: sp.diff(phi, s).subs(s, s_pos)),
    Proof("phi is strictly convex (phi'' = 1/N > 0), so s* is its global minimizer when s* > 0",
          lambda: sp.simplify(sp.diff(phi, s, 2) - 1 / Nn) == 0 and (1 / Nn).is_positive),
    Proof("boundary: phi'(0) = mu - sigma/N >= 0 iff sigma <= N mu, then s* = 0 and the value is sigma^2/(2N)",
          lambda: (sp.diff(phi, s).subs(s, 0) - (mu - sig / Nn), phi.subs(s, 0) - sig**2 / (2 * Nn))),
    Proof("value at s*: phi(s*) = mu sigma - N mu^2/2 (continuous with sigma^2/(2N) at sigma = N mu)",
          lambda: (phi.subs(s, s_pos) - (mu * sig - Nn * mu**2 / 2),
                   (mu * sig - Nn * mu**2 / 2 - sig**2 / (2 * Nn)).subs(sig, Nn * mu))),
    Proof("lemma (scalar): w = (lam_H/lam_W)^(1/4) sqrt(z), h = z/w give lam_W/2 w^2 + lam_H/2 h^2 = "
          "sqrt(lam_W lam_H) z, the minimum over w h = z",
          lambda: (lam_W / 2 * ((lam_H / lam_W) ** sp.Rational(1, 4) * sp.sqrt(s)) ** 2
                   + lam_H / 2 * (s / ((lam_H / lam_W) ** sp.Rational(1, 4) * sp.sqrt(s))) ** 2 - MU * s,
                   sp.diff(lam_W / 2 * sig**2 + lam_H / 2 * (s / sig) ** 2, sig).subs(
                       sig, (lam_H / lam_W) ** sp.Rational(1, 4) * sp.sqrt(s)))),
)

SVT_EXPRESSIONS = {"mu": MU, "s*": S_STAR, "value*": V_STAR}


def svt_prediction(ev, M: np.ndarray) -> dict:
    """Minimizer of ``(1/2N)||Z - M||^2 + mu||Z||_*``: each singular value of ``M`` through the
    expressions ``s*`` and ``value*`` (``ev`` evaluates them), then the factor Grams
    ``(Z Z^T)^{1/2}``, ``(Z^T Z)^{1/2}``."""
    U, sv, Vt = np.linalg.svd(M, full_matrices=False)
    st = np.broadcast_to(ev("s*", sigma=sv), sv.shape)
    vals = np.broadcast_to(ev("value*", sigma=sv), sv.shape)
    return {"Z": (U * st) @ Vt, "value": float(np.sum(vals)),
            "ZZt_sqrt": (U * st) @ U.T, "ZtZ_sqrt": (Vt.T * st) @ Vt}


def _away_from_threshold(sv, tau, what):
    sv = sv[sv > 1e-12 * max(1.0, tau)]
    if np.all(np.abs(sv / tau - 1) > 0.05):
        return True, ""
    return False, f"a singular value of {what} within 5% of the threshold {tau:.4g} (degenerate minimizer)"


# ---- regression UFM (Andriopoulos et al. 2024) ----------------------------------------------
def _centre(Y):
    return Y - Y.mean(axis=1, keepdims=True)


def _reg_assume(prob):
    if not isinstance(prob, ufm.RegressionUFM):
        return False, "needs a ufm.RegressionUFM"
    if prob.has_bias and float(prob.lam_b) != 0.0:
        return False, "no bias or a free bias (lam_b=None or 0); a regularized bias is not covered"
    lw, lh = float(prob.lam_W), float(prob.lam_H)
    if lw <= 0 or lh <= 0:
        return False, "lam_W > 0 and lam_H > 0 (with lam = 0 there is no collapse)"
    if prob.d < min(prob.D, prob.N):
        return False, f"d >= min(D, N) (got d={prob.d})"
    Y = np.asarray(prob.Y)
    M = _centre(Y) if prob.has_bias else Y
    return _away_from_threshold(np.linalg.svd(M, compute_uv=False), prob.N * np.sqrt(lw * lh),
                                "the (centred) targets")


def _reg_assemble(prob, ev):
    Y = np.asarray(prob.Y)
    lw, lh = float(prob.lam_W), float(prob.lam_H)
    M = _centre(Y) if prob.has_bias else Y
    p = svt_prediction(ev, M)
    q = {"value": p["value"], "logits": p["Z"] + (Y.mean(axis=1, keepdims=True) if prob.has_bias else 0.0),
         "W_gram": np.sqrt(lh / lw) * p["ZZt_sqrt"], "H_gram": np.sqrt(lw / lh) * p["ZtZ_sqrt"]}
    if prob.has_bias:
        q["bias"] = Y.mean(axis=1)  # b* = mean target: W H 1 = 0 at the optimum (Z = SVT of centred Y)
    return q


def _reg_measure(prob, params, names):
    W, H = np.asarray(params.W), np.asarray(params.H)
    b = None if params.b is None else np.asarray(params.b)
    table = {"value": lambda: float(prob.objective(params)),
             "logits": lambda: np.asarray(prob.logits(params)),
             "W_gram": lambda: W @ W.T, "H_gram": lambda: H.T @ H, "bias": lambda: b}
    return {k: table[k]() for k in names}


PROOFS_REG_BIAS = (
    Proof("free bias: for fixed Z the optimal b is the mean residual, d/db (1/2N) sum_i (z_i + b - y_i)^2 "
          "= 0 at b = mean(y - z) (N = 3, symbolic entries)",
          kind="sample",
          residual=lambda: (lambda zs, ys, b: sp.diff(sum((zi + b - yi) ** 2 for zi, yi in zip(zs, ys)) / 6, b).subs(
              b, sum(yi - zi for zi, yi in zip(zs, ys)) / 3))(sp.symbols("z1:4"), sp.symbols("y1:4"), sp.Symbol("b"))),
)


def _rand_targets(rng, D, N):
    return rng.standard_normal((D, N)) * np.exp(rng.uniform(-0.5, 0.5, size=(D, 1)))


def _reg_random(rng):
    D, N = int(rng.integers(1, 4)), int(rng.integers(4, 8))
    Y = _rand_targets(rng, D, N)
    lam = float(np.exp(rng.uniform(np.log(1e-3), np.log(5e-2))))
    ratio = float(np.exp(rng.uniform(-1, 1)))
    lam_b = None if rng.random() < 0.5 else 0.0
    return ufm.RegressionUFM(Y=Y, d=N + 1, lam_W=lam * ratio, lam_H=lam / ratio, lam_b=lam_b)


REGRESSION = Theorem(
    name="Regression UFM: W H = SVT of the (centred) targets; Grams from the target covariance",
    citation=ANDRIOPOULOS,
    tag="derived",
    statement=("MSE against real targets Y (D x N), lam_W, lam_H > 0, d >= min(D, N): W H + b 1^T = "
               "SVT_tau(Y_c) + b 1^T with tau = N sqrt(lam_W lam_H), Y_c = Y (no bias) or Y - ybar 1^T "
               "and b = ybar (free bias); W W^T = sqrt(lam_H/lam_W)(Z Z^T)^{1/2} = sqrt(lam_H/lam_W) "
               "sqrt(N)(Sigma^{1/2} - sqrt(N lam_W lam_H) I)_+ with Sigma = Y_c Y_c^T/N the target "
               "covariance (NRC3's 'function of the target covariance'); H^T H = sqrt(lam_W/lam_H)"
               "(Z^T Z)^{1/2}, so the features span at most D directions (NRC1/NRC2). Derived in ufm's "
               "scaling; only the paper's abstract was read."),
    assumptions=_reg_assume,
    assemble=_reg_assemble,
    instances=lambda: [
        ufm.RegressionUFM(Y=_rand_targets(np.random.default_rng(3), 3, 6), d=7, lam_W=1e-2, lam_H=2e-2, lam_b=0.0),
        # the first instance's shape (D = 3, N = 6, d = 7) without a bias (shape-only compilations
        # shared); the threshold N sqrt(lam_W lam_H) = 1.90 removes the smallest direction (s = 1.19)
        ufm.RegressionUFM(Y=_rand_targets(np.random.default_rng(4), 3, 6), d=7, lam_W=0.5, lam_H=0.2),
    ],
    random_instance=_reg_random,
    measure=_reg_measure,
    expressions=SVT_EXPRESSIONS,
    proofs=PROOFS_SVT + PROOFS_REG_BIAS,
    assumed=("the nuclear-norm lemma: min over W H = Z of lam_W/2||W||^2 + lam_H/2||H||^2 is sqrt(lam_W lam_H)||Z||_* (attained for d >= rank Z; Srebro et al. 2005)",
             "the proximal map of mu||.||_* is singular-value soft-thresholding (von Neumann trace inequality; Cai, Candes & Shen 2010)",
             "free bias: ||Z P_N||_* <= ||Z||_* (P_N = I - 11^T/N a projection), so the optimal Z has centred rows"),
)


# ---- multi-label, pick-all-label CE (Li et al. 2024) ----------------------------------------
m_ = sp.symbols("m", positive=True, integer=True)
# PAL-CE of a sample with |S| = m labels at centred logits z = s (1_S - m/K 1):
# m logsumexp(z) - sum_{k in S} z_k, with m entries s(1 - m/K) and K - m entries -s m/K.
pal_at_ansatz = (m_ * sp.log(m_ * sp.exp(s * (1 - m_ / K)) + (K - m_) * sp.exp(-s * m_ / K))
                 - m_ * s * (1 - m_ / K))
ELL = m_ * sp.log(m_ + (K - m_) * sp.exp(-s))  # the reduced per-sample loss of multiplicity m
ELL_1 = sp.diff(ELL, s)
ELL_2 = sp.diff(ELL, s, 2)
kap = sp.symbols("kappa", positive=True)
g_zhu = sp.log((1 - (K - 1) * kap) / kap)  # the CE logit gap of Zhu et al. (catalog zhu2021)

def _set_sum_residual(k: int, m: int):
    """Entries of sum_{|S|=m} P 1_S 1_S^T P - C(k-2, m-1) P (exact rationals)."""
    Pm = sp.eye(k) - sp.ones(k, k) / k
    total = sp.zeros(k, k)
    for S in combinations(range(k), m):
        v = Pm * sp.Matrix([1 if i in S else 0 for i in range(k)])
        total += v * v.T
    return tuple(total - comb(k - 2, m - 1) * Pm)


PROOFS_MLAB = (
    Proof("PAL-CE at z = s(1_S - (m/K)1) equals ell_m(s) = m log(m + (K-m)e^{-s})",
          lambda: sp.expand_log(sp.exp(pal_at_ansatz / m_) - sp.exp(ELL / m_), force=True)),
    Proof("entry counts of sum_{|S|=m} 1_S 1_S^T: diagonal C(K-1,m-1), off-diagonal C(K-2,m-2); after "
          "centring, C(K-1,m-1) - C(K-2,m-2) = C(K-2,m-1), so the sum of P 1_S 1_S^T P is C(K-2,m-1) P",
          lambda: sp.combsimp(sp.binomial(K - 1, m_ - 1) - sp.binomial(K - 2, m_ - 2) - sp.binomial(K - 2, m_ - 1))),
    Proof("sum over the C(K,m) label sets of P 1_S 1_S^T P = C(K-2, m-1) P at K = 5, m = 1..4 (exact matrices)",
          kind="sample",
          residual=lambda: tuple(e for mm in range(1, 5) for e in _set_sum_residual(5, mm))),
    Proof("ell_m is convex: ell_m''(s) = m^2 (K-m) e^{-s} / (m + (K-m)e^{-s})^2 > 0 (for m < K)",
          lambda: ELL_2 - m_**2 * (K - m_) * sp.exp(-s) / (m_ + (K - m_) * sp.exp(-s)) ** 2),
    Proof("zero solution: ell_m'(0) = -m(K-m)/K, so 0 is optimal iff ||(w_m m(K-m)/K)_m||_{c^-1} <= mu (K-1) "
          "(the dual-norm condition for the weighted norm sqrt(sum c_m s_m^2))",
          lambda: ELL_1.subs(s, 0) + m_ * (K - m_) / K),
    Proof("one multiplicity m = 1 (plain CE, c = n): ell_1'(s) + (K-1) kappa = 0 at Zhu et al.'s logit gap "
          "s = log((1-(K-1)kappa)/kappa)",
          lambda: (ELL_1.subs(m_, 1) + (K - 1) * kap).subs(s, g_zhu)),
    Proof("tag-wise average: P 1_S = sum_{k in S} P e_k, so z_S = (s_m/s_1) sum_{k in S} z_{k} and "
          "h_S = (m s_m / s_1) * mean_{k in S} h_{k} (K = 4, S = {0, 2})",
          kind="sample",
          residual=lambda: tuple((sp.eye(4) - sp.ones(4, 4) / 4) * sp.Matrix([1, 0, 1, 0])
                        - ((sp.eye(4) - sp.ones(4, 4) / 4) * sp.Matrix([1, 0, 0, 0])
                           + (sp.eye(4) - sp.ones(4, 4) / 4) * sp.Matrix([0, 0, 1, 0])))),
)

MLAB_EXPRESSIONS = {"mu": MU, "ell": ELL}


def _mlab_structure(prob):
    """``{m: n_m}`` if the label sets are every m-subset, n_m copies each (else None), and the
    label set of each group (in ``prob.labels`` order)."""
    Y = np.asarray(prob.Y)
    labels = prob.labels
    sets = [tuple(np.flatnonzero(Y[:, labels.tolist().index(g)])) for g in range(prob.num_groups)]
    counts = np.bincount(labels)
    by_m = {}
    for S, c in zip(sets, counts):
        by_m.setdefault(len(S), []).append(int(c))
    struct = {}
    for m, cs in by_m.items():
        if len(cs) != comb(prob.K, m) or len(set(cs)) != 1:
            return None, sets
        struct[m] = cs[0]
    return struct, sets


def _mlab_reduced(prob, struct):
    """Weights of the reduced objective F(s) = sum_m w_m ell_m(s_m) + mu (K-1) sqrt(sum_m c_m s_m^2)."""
    K_, N_ = prob.K, prob.N
    ms = sorted(struct)
    w = np.array([struct[m] * comb(K_, m) / N_ for m in ms], dtype=float)
    c = np.array([struct[m] * comb(K_ - 2, m - 1) for m in ms], dtype=float)
    return ms, w, c


def _dual_ratio(ev, K_, ms, w, c):
    """||(w_m ell_m'(0))_m||_{c^-1} / (mu (K-1)): the origin is the minimizer iff <= 1."""
    g0 = w * np.broadcast_to(ev.diff("ell", "s", s=0.0, m=np.asarray(ms, float)), w.shape)
    return float(np.sqrt(np.sum(g0**2 / c)) / (ev("mu") * (K_ - 1)))


def _mlab_solve_reduced(ev, K_, ms, w, c):
    """Global minimizer of the convex reduced objective (damped Newton; F and its gradient are the
    expression ``ell`` and its SymPy derivative, the Hessian a central difference of that gradient).

    Zero when the dual-norm condition holds; otherwise F is smooth and strictly convex on the
    region s != 0 the iterates stay in.
    """
    ma = np.asarray(ms, dtype=float)
    mu_v = ev("mu")
    if _dual_ratio(ev, K_, ms, w, c) <= 1:
        return np.zeros(len(ms))

    def F(x):
        return float(np.sum(w * ev("ell", s=x, m=ma)) + mu_v * (K_ - 1) * np.sqrt(np.sum(c * x**2)))

    def grad_F(x):
        r = np.sqrt(np.sum(c * x**2))
        return w * np.broadcast_to(ev.diff("ell", "s", s=x, m=ma), x.shape) + mu_v * (K_ - 1) * c * x / r

    x = np.ones(len(ms))
    for _ in range(200):
        grad = grad_F(x)
        eps = 1e-6 * np.maximum(1.0, np.abs(x))
        hess = np.stack([(grad_F(x + e) - grad_F(x - e)) / (2 * e[i]) for i, e in enumerate(np.diag(eps))], axis=1)
        step = np.linalg.solve(0.5 * (hess + hess.T), grad)
        t, f0, g0 = 1.0, F(x), np.linalg.norm(grad)
        # Armijo on F, or (near the minimum, where F is flat to rounding) a smaller gradient
        while (F(x - t * step) > f0 - 0.25 * t * grad @ step
               and np.linalg.norm(grad_F(x - t * step)) >= g0) and t > 1e-12:
            t *= 0.5
        x = x - t * step
        if g0 < 1e-15 * max(1.0, abs(f0)) or np.linalg.norm(t * step) <= 1e-16 * np.linalg.norm(x):
            break
    return x


def _mlab_assemble(prob, ev):
    struct, sets = _mlab_structure(prob)
    K_ = prob.K
    ms, w, c = _mlab_reduced(prob, struct)
    mu_v = ev("mu")
    sm = dict(zip(ms, _mlab_solve_reduced(ev, K_, ms, w, c)))
    sigma = float(np.sqrt(sum(ci * sm[m] ** 2 for m, ci in zip(ms, c))))
    P_ = np.eye(K_) - np.ones((K_, K_)) / K_
    Z = np.stack([sm[len(S)] * (P_ @ np.isin(np.arange(K_), S).astype(float)) for S in sets], axis=1)
    lw, lh = float(prob.lam_W), float(prob.lam_H)
    value = float(np.sum(w * ev("ell", s=np.array([sm[m] for m in ms]), m=np.asarray(ms, float)))
                  + mu_v * (K_ - 1) * sigma)
    q = {"value": value, "group_logits": Z, "within_group_spread": 0.0,
         "W_gram": np.sqrt(lh / lw) * sigma * P_,
         "group_mean_gram": (np.sqrt(lw / lh) / sigma) * Z.T @ Z if sigma > 0 else np.zeros((len(sets),) * 2)}
    if 1 in sm and sm[1] > 0 and len(ms) > 1:
        q["tagwise_scale"] = np.array([m * sm[m] / sm[1] for m in ms if m > 1])
    if prob.has_bias:
        q["bias"] = np.zeros(K_)
    return q


def _group_means(prob, H):
    labels = prob.labels
    return np.stack([H[:, labels == g].mean(axis=1) for g in range(prob.num_groups)], axis=1)


def _mlab_measure(prob, params, names):
    W, H = np.asarray(params.W), np.asarray(params.H)
    Hbar = _group_means(prob, H)
    out = {}
    for name in names:
        if name == "value":
            out[name] = float(prob.objective(params))
        elif name == "group_logits":
            out[name] = W @ Hbar
        elif name == "within_group_spread":
            out[name] = float(np.sqrt(np.sum((H - Hbar[:, prob.labels]) ** 2) / H.shape[1]))
        elif name == "W_gram":
            out[name] = W @ W.T
        elif name == "group_mean_gram":
            out[name] = Hbar.T @ Hbar
        elif name == "bias":
            out[name] = np.asarray(params.b)
        elif name == "tagwise_scale":
            # h_S ~ t_m * mean_{k in S} h_{k}: least-squares coefficient, averaged over the sets of size m
            _, sets = _mlab_structure(prob)
            single = {S[0]: Hbar[:, g] for g, S in enumerate(sets) if len(S) == 1}
            ts = {}
            for g, S in enumerate(sets):
                if len(S) > 1:
                    a = np.mean([single[k] for k in S], axis=0)
                    ts.setdefault(len(S), []).append(float(Hbar[:, g] @ a / (a @ a)))
            out[name] = np.array([np.mean(ts[m]) for m in sorted(ts)])
    return out


def _mlab_assume(prob):
    if not isinstance(prob, ufm.MultiLabelUFM):
        return False, "needs a ufm.MultiLabelUFM"
    if prob.has_bias and float(prob.lam_b) == 0.0:
        return False, "no bias or a regularized bias (lam_b=None or > 0); with a free bias b is not unique"
    if float(prob.lam_W) <= 0 or float(prob.lam_H) <= 0:
        return False, "lam_W > 0 and lam_H > 0"
    if prob.d < prob.K:
        return False, f"d >= K (got d={prob.d})"
    struct, _ = _mlab_structure(prob)
    if struct is None:
        return False, "label sets balanced within each multiplicity (every m-subset, the same count)"
    if max(struct) >= prob.K:
        return False, "multiplicities m <= K-1 (the full label set has no centred logit)"
    ms, w, c = _mlab_reduced(prob, struct)
    if abs(_dual_ratio(Evaluator(MLAB_EXPRESSIONS, problem_numbers(prob)), prob.K, ms, w, c) - 1) < 0.05:
        return False, "within 5% of the zero-solution threshold (degenerate minimizer)"
    return True, ""


def _mlab_random(rng):
    K_ = int(rng.integers(3, 6))
    ms = [1] + ([2] if rng.random() < 0.8 else []) + ([3] if K_ >= 5 and rng.random() < 0.3 else [])
    Y = ufm.label_set_targets(K_, {m: int(rng.integers(1, 3)) for m in ms})
    lam = float(np.exp(rng.uniform(np.log(1e-3), np.log(2e-2))))
    ratio = float(np.exp(rng.uniform(-0.7, 0.7)))
    lam_b = None if rng.random() < 0.5 else float(rng.uniform(1e-3, 1e-1))
    return ufm.MultiLabelUFM(Y=Y, d=K_ + 1, lam_W=lam * ratio, lam_H=lam / ratio, lam_b=lam_b)


MULTILABEL = Theorem(
    name="Multi-label PAL-CE UFM: simplex-ETF classifier, tag-wise averaged features",
    citation=LI_MLAB,
    tag="derived",
    statement=("Label sets balanced within each multiplicity m in M (every m-subset, n_m copies; "
               "m <= K-1), lam_W, lam_H > 0, d >= K, no or a regularized bias: features collapse to their "
               "label set, b = 0, the group logits are z_S = s_m P 1_S, W W^T = sqrt(lam_H/lam_W) sigma P "
               "(simplex ETF) with sigma^2 = sum_m n_m C(K-2,m-1) s_m^2, the group means satisfy "
               "Hbar^T Hbar = sqrt(lam_W/lam_H) Z^T Z/sigma, so h_S = (m s_m/s_1) mean_{k in S} h_{k} "
               "(the 'tag-wise average' and its scale), where s minimizes the convex reduced objective "
               "sum_m (n_m C(K,m)/N) m log(m + (K-m)e^{-s_m}) + sqrt(lam_W lam_H)(K-1) sigma. "
               "Derived in ufm's scaling (only the abstract of Li et al. was read); the reduction is "
               "symmetrization + centring (P is a contraction of the nuclear norm) + the nuclear-norm lemma."),
    assumptions=_mlab_assume,
    assemble=_mlab_assemble,
    instances=lambda: [
        ufm.MultiLabelUFM(Y=ufm.label_set_targets(4, {1: 2, 2: 1}), d=5, lam_W=5e-3, lam_H=5e-3),
        ufm.MultiLabelUFM(Y=ufm.label_set_targets(3, {1: 1, 2: 2}), d=4, lam_W=2e-2, lam_H=1e-2, lam_b=1e-2),
    ],
    random_instance=_mlab_random,
    measure=_mlab_measure,
    expressions=MLAB_EXPRESSIONS,
    proofs=PROOFS_MLAB,
    assumed=("the nuclear-norm lemma: min over W H = Z of lam_W/2||W||^2 + lam_H/2||H||^2 is sqrt(lam_W lam_H)||Z||_* (attained for d >= rank Z; Srebro et al. 2005)",
             "collapse onto label sets: averaging the features of samples with the same label set lowers "
             "the (convex) loss and the penalty (Jensen)",
             "symmetrization: the group-level convex program is invariant under class permutations, so "
             "averaging a minimizer over them gives a symmetric one: z_S = s_m P 1_S + (a multiple of 1)",
             "centring: P is a contraction of the nuclear norm and CE is invariant to adding c 1, so the "
             "optimal group logits are centred (strictly: the nuclear norm grows with an orthogonal part)",
             "uniqueness: CE is strictly convex on centred logits and the reduced objective is strictly "
             "convex in s (ell_m'' > 0, shown), so the Grams are unique"),
)


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
    return _away_from_threshold(np.linalg.svd(_yhat(prob), compute_uv=False),
                                prob.N * np.sqrt(float(prob.lam_W) * float(prob.lam_H)), "Yhat")


def _yhat(prob):
    """``Yhat = (I_K - n 1^T/N) diag(sqrt(n))`` of arXiv 2411.17278."""
    nvec = np.asarray(prob.counts, dtype=float)
    return (np.eye(prob.K) - np.outer(nvec, np.ones(prob.K)) / prob.N) @ np.diag(np.sqrt(nvec))


def _imb_assemble(prob, ev):
    nvec = np.asarray(prob.counts, dtype=float)
    lw, lh = float(prob.lam_W), float(prob.lam_H)
    p = svt_prediction(ev, _yhat(prob))
    Z = p["Z"] / np.sqrt(nvec)  # Z = W Hbar from Z' = Z D^{1/2}
    b = (nvec - Z @ nvec) / prob.N
    Dm = np.diag(1 / np.sqrt(nvec))
    return {"value": p["value"], "logit_means": Z, "bias": b,
            "W_gram": np.sqrt(lh / lw) * p["ZZt_sqrt"], "Hbar_gram": np.sqrt(lw / lh) * Dm @ p["ZtZ_sqrt"] @ Dm,
            "within_class_spread": 0.0}


def _imb_residuals():
    """K = 3, symbolic counts and class logits: the optimal bias and the residual it leaves."""
    nv = sp.Matrix(sp.symbols("n1:4", positive=True))
    Nn_ = sum(nv)
    Z = sp.Matrix(3, 3, sp.symbols("z1:10"))
    b = sp.Matrix(sp.symbols("b1:4"))
    f = sum(nv[k] * sum((Z[i, k] + b[i] - (1 if i == k else 0)) ** 2 for i in range(3)) for k in range(3)) / (2 * Nn_)
    b_star = (nv - Z * nv) / Nn_
    stationary = [sp.diff(f, b[i]).subs(dict(zip(b, b_star))) for i in range(3)]
    resid = (Z - sp.eye(3)) * (sp.eye(3) - nv * sp.ones(1, 3) / Nn_) - (Z + b_star * sp.ones(1, 3) - sp.eye(3))
    sq = sp.diag(*[sp.sqrt(v) for v in nv])
    r = sp.Matrix([sp.sqrt(v) for v in nv])
    proj = (sp.eye(3) - nv * sp.ones(1, 3) / Nn_) * sq - sq * (sp.eye(3) - r * r.T / Nn_)
    return tuple(stationary) + tuple(resid) + tuple(proj)


PROOFS_IMB = (
    Proof("free bias, class level: b = (n - Z n)/N leaves residual (Z - I)(I - n 1^T/N), and "
          "(I - n 1^T/N) D^{1/2} = D^{1/2} Q with Q = I - sqrt(n) sqrt(n)^T/N the projector off sqrt(n) "
          "(K = 3, symbolic n_k and Z): so Z' = Z D^{1/2} = SVT_tau(Yhat), Yhat = (I - n1^T/N) D^{1/2}",
          kind="sample",
          residual=lambda: _imb_residuals()),
    Proof("Q is an orthogonal projector (Q^2 = Q, ||sqrt(n)||^2 = N), hence ||Z'Q||_* <= ||Z'||_* and the "
          "optimal Z' lies in the range of Q (K = 3, symbolic n_k)",
          kind="sample",
          residual=lambda: (lambda r: ((sp.eye(3) - r * r.T / sum(v**2 for v in r)) ** 2
                              - (sp.eye(3) - r * r.T / sum(v**2 for v in r))).applyfunc(sp.simplify)
                   == sp.zeros(3, 3))(sp.Matrix([sp.sqrt(v) for v in sp.symbols("n1:4", positive=True)]))),
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
                       ufm.UFM(K=4, n=(1, 2, 4, 8), d=5, loss=ufm.MSE(), lam_W=3e-2, lam_H=4e-2, lam_b=0.0)],
    random_instance=lambda rng: ufm.UFM(K=3, n=tuple(int(v) for v in rng.integers(1, 10, size=3)), d=4,
                                        loss=ufm.MSE(), lam_W=float(rng.uniform(5e-3, 0.1)),
                                        lam_H=float(rng.uniform(5e-3, 0.1)), lam_b=0.0),
    measure=cf.measure,
    expressions=SVT_EXPRESSIONS,
    proofs=PROOFS_SVT + PROOFS_IMB,
    assumed=("the nuclear-norm lemma: min over W H = Z of lam_W/2||W||^2 + lam_H/2||H||^2 is sqrt(lam_W lam_H)||Z||_* (attained for d >= rank Z; Srebro et al. 2005)",
             "the proximal map of mu||.||_* is singular-value soft-thresholding (von Neumann trace inequality; Cai, Candes & Shen 2010)",
             "within-class collapse at every minimizer (Jensen; theory reference section 1, lemma 1)",
             "||Z'Q||_* <= ||Z'||_* for the orthogonal projector Q (shown: Q^2 = Q at K = 3)"),
)

THEOREMS = [REGRESSION, MULTILABEL, IMBALANCED_FREE_BIAS]


# ---- imbalanced L-extended UFM with free bias, linear layers (arXiv 2411.17278), L >= 2 --------
# Per singular value sigma of Yhat the m = L + 1 balanced factors give the scalar problem
# (s - sigma)^2/(2N) + (m/2) Lambda' s^(2/m), Lambda' = (lam_H prod_l lam_l)^(1/m); with s = sigma x it
# is (sigma^2/N) h_m(x) with gamma = N Lambda' sigma^(2/m - 2), the catalog's h_m (module deep).
sg, Lp = sp.symbols("sigma Lambda_p", positive=True)
EXT_EXPRESSIONS = {
    "h(x)": _deep.h_sym(_deep.ms),
    "gamma": Nn * Lp * sg ** (2 / _deep.ms - 2),
    "gamma_c": _deep.DNC_EXPRESSIONS["gamma_c"],
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
        x_opt, _ = _deep._x_star(sub)
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
    solve=_deep.solve_deep,
    expressions=EXT_EXPRESSIONS,
    proofs=(Proof("per direction: with s = sigma x, (s - sigma)^2/(2N) + (m/2) Lambda' s^(2/m) = (sigma^2/N) h_m(x) "
                  "with gamma = N Lambda' sigma^(2/m - 2)",
                  lambda: sp.expand((s - sig) ** 2 / (2 * Nn) + _deep.ms / 2 * Lp * s ** (2 / _deep.ms)).subs(
                      s, sig * _deep.x) - sp.expand(sig**2 / Nn * _deep.h_sym(_deep.ms).subs(
                          _deep.gam, Nn * Lp * sig ** (2 / _deep.ms - 2)))),
            ) + PROOFS_IMB,
    assumed=("balanced factorization: the minimum of sum_i lam_i/2||F_i||^2 over m factors with product Z' is "
             "(m/2) Lambda' sum_j s_j(Z')^(2/m) (AM-GM per singular value; the deep module's reduction)",
             "alignment: for a penalty increasing in each singular value, von Neumann's inequality aligns Z' with "
             "Yhat, and sigma_j(Z'Q) <= sigma_j(Z') for the projector Q",
             "within-class collapse at every minimizer (Jensen)"),
    slow=True,
)

THEOREMS = THEOREMS + [IMBALANCED_EXTENDED]

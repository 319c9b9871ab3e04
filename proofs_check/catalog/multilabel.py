r"""The multi-label UFM with the pick-all-label cross-entropy (Li et al., ICML 2024, arXiv
2310.15903): a simplex-ETF classifier and features that are tag-wise averages.

Only the paper's abstract could be read here, so the statement is **derived** for ufm's canonical
objective (docs/theory.md#canonical-objective) and checked against :func:`ufm.minimize`. The reduction:
collapse onto label sets, symmetrization over class permutations, centring, and the nuclear-norm
lemma (``mu = sqrt(lam_W lam_H)``, :mod:`proofs_check.catalog.svt`) leave a convex objective in one
scale ``s_m`` per label-set size ``m``.
"""

from __future__ import annotations

from itertools import combinations
from math import comb

import numpy as np
import sympy as sp

import ufm
from proofs_check.catalog._common import K
from proofs_check.catalog.mse import GRAM_EXPRESSIONS
from proofs_check.catalog.svt import MU, s
from proofs_check.measure import problem_numbers
from proofs_check.theorem import GTOL, Citation, Evaluator, Proof, Theorem, Threshold

__all__ = ["THEOREMS", "MULTILABEL", "LI_MLAB", "MLAB_EXPRESSIONS"]

LI_MLAB = Citation("Li, Li, Wang & Qu", 2024, "ICML", "2310.15903")


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

MLAB_EXPRESSIONS = {"mu": MU, "ell": ELL, **GRAM_EXPRESSIONS}  # rho_W, rho_H: the nuclear-norm lemma's factors


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


def _reduced_grad(ev, K_, ms, w, c, x):
    """The gradient of the reduced objective at ``x != 0`` (the expression ``ell``'s derivative)."""
    r = np.sqrt(np.sum(c * x**2))
    ma = np.asarray(ms, dtype=float)
    return w * np.broadcast_to(ev.diff("ell", "s", s=x, m=ma), x.shape) + ev("mu") * (K_ - 1) * c * x / r


# The row that says whether the prediction's own Newton solve converged (fails if it did not).
REDUCED_CERTIFICATE = "certificate reduced-objective gradient (the prediction's Newton solve)"


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
        return _reduced_grad(ev, K_, ms, w, c, x)

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
    x = _mlab_solve_reduced(ev, K_, ms, w, c)
    # the zero solution is certified exactly by the dual-norm condition; otherwise the gradient
    # of the smooth reduced objective must vanish (relative GTOL, as the solves' certificates)
    residual = 0.0 if not np.any(x) else float(np.linalg.norm(_reduced_grad(ev, K_, ms, w, c, x)))
    ev.certify(REDUCED_CERTIFICATE, residual, residual <= GTOL * max(1.0, float(np.sum(
        w * ev("ell", s=x, m=np.asarray(ms, float))))))
    sm = dict(zip(ms, x))
    sigma = float(np.sqrt(sum(ci * sm[m] ** 2 for m, ci in zip(ms, c))))
    P_ = np.eye(K_) - np.ones((K_, K_)) / K_
    Z = np.stack([sm[len(S)] * (P_ @ np.isin(np.arange(K_), S).astype(float)) for S in sets], axis=1)
    value = float(np.sum(w * ev("ell", s=np.array([sm[m] for m in ms]), m=np.asarray(ms, float)))
                  + mu_v * (K_ - 1) * sigma)
    q = {"value": value, "group_logits": Z, "within_group_spread": 0.0,
         "W_gram": ev("rho_W") * sigma * P_,
         "group_mean_gram": (ev("rho_H") / sigma) * Z.T @ Z if sigma > 0 else np.zeros((len(sets),) * 2)}
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


def _mlab_distance(prob) -> float:
    """The dual-norm ratio minus 1 (positive: a nonzero minimizer; negative: the zero solution)."""
    ms, w, c = _mlab_reduced(prob, _mlab_structure(prob)[0])
    return _dual_ratio(Evaluator(MLAB_EXPRESSIONS, problem_numbers(prob)), prob.K, ms, w, c) - 1


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
               "sum_m (n_m C(K,m)/N) m log(m + (K-m)e^{-s_m}) + sqrt(lam_W lam_H)(K-1) sigma (s = 0, the zero "
               "solution, when ||(n_m C(K,m)/N ell_m'(0))_m||_{c^-1} <= sqrt(lam_W lam_H)(K-1)). "
               "Derived in ufm's scaling (only the abstract of Li et al. was read); the reduction is "
               "symmetrization + centring (P is a contraction of the nuclear norm) + the nuclear-norm lemma."),
    assumptions=_mlab_assume,
    assemble=_mlab_assemble,
    instances=lambda: [
        ufm.MultiLabelUFM(Y=ufm.label_set_targets(4, {1: 2, 2: 1}), d=5, lam_W=5e-3, lam_H=5e-3),
        ufm.MultiLabelUFM(Y=ufm.label_set_targets(3, {1: 1, 2: 2}), d=4, lam_W=2e-2, lam_H=1e-2, lam_b=1e-2),
        # the same label sets at dual-norm ratio 0.8: the zero solution
        ufm.MultiLabelUFM(Y=ufm.label_set_targets(3, {1: 1, 2: 2}), d=4, lam_W=0.24, lam_H=0.24, lam_b=1e-2),
    ],
    random_instance=_mlab_random,
    measure=_mlab_measure,
    expressions=MLAB_EXPRESSIONS,
    proofs=PROOFS_MLAB,
    thresholds=(Threshold(_mlab_distance, "||(w_m ell_m'(0))_m||_{c^-1}/(mu (K-1)) - 1 (positive: nonzero s; "
                                          "negative: the zero solution)"),),
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

THEOREMS = [MULTILABEL]

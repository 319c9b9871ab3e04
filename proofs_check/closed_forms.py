r"""Closed-form minimizers of the regularized UFM, evaluated numerically in float64 (NumPy).

Every function takes a :class:`ufm.UFM` and returns a :class:`Prediction`: the invariants the
theory predicts (objective value, Gram matrices, norms, bias), never raw ``W`` or ``H``, which are
only defined up to a rotation. The formulas are those of ``shared/theory/README.md``; each
function states its source, tag and assumptions, and :func:`assumptions` tells whether a problem
is inside them (with the reason when it is not).

Notation (balanced classes, ``n`` per class): ``kappa = sqrt(n lam_W lam_H)``,
``c = sqrt(lam_W / (n lam_H))``, ``P = I - 11^T/K``, ``J = 11^T``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

import ufm

__all__ = ["Prediction", "etf_invariants", "ce_family", "mse", "predict", "assumptions"]


@dataclass(frozen=True)
class Prediction:
    """Predicted invariants of the global minimizer.

    ``quantities`` maps a name to a float or a NumPy array; names are read by
    :func:`measure` to compute the same invariant from a solution.
    """

    theorem: str
    source: str
    tag: str
    quantities: dict = field(default_factory=dict)


def _scalars(prob):
    K, n = prob.K, prob.n
    lam_W, lam_H = float(prob.lam_W), float(prob.lam_H)
    kappa = np.sqrt(n * lam_W * lam_H)
    c = np.sqrt(lam_W / (n * lam_H))
    return K, n, lam_W, lam_H, kappa, c


def _P(K):
    return np.eye(K) - np.ones((K, K)) / K


# ---- cross-entropy family: ETF with a 1-D scale ---------------------------------------------

def _ce_logit_gap(prob):
    """Optimal logit gap ``g`` (true minus other logit) of the ETF, 0 for the zero solution."""
    K, n, lam_W, lam_H, kappa, c = _scalars(prob)
    loss = prob.loss
    if isinstance(loss, (ufm.CrossEntropy, ufm.LabelSmoothing)):
        alpha = float(loss.alpha) if isinstance(loss, ufm.LabelSmoothing) else 0.0
        r = alpha / K + kappa  # e^{-g} / (1 + (K-1) e^{-g}) at the optimum
        return float(np.log((1 - (K - 1) * r) / r)) if r < 1.0 / K else 0.0
    return _focal_gap(K, float(loss.gamma), kappa)


def _focal_phi(g, K, gamma, kappa):
    """Focal loss of the ETF with gap ``g`` plus the penalty, ``(K-1) kappa g``."""
    logp = -np.logaddexp(0.0, np.log(K - 1) - g)
    return -(-np.expm1(logp)) ** gamma * logp + (K - 1) * kappa * g


def _focal_dphi(g, K, gamma, kappa):
    """``d phi / d g`` in closed form: with ``p = p_y``, ``dp/dg = p (1 - p)``."""
    logp = -np.logaddexp(0.0, np.log(K - 1) - g)
    p, q = np.exp(logp), -np.expm1(logp)  # q = 1 - p
    dl_dp = gamma * q ** (gamma - 1) * logp - q**gamma / p if gamma > 0 else -1.0 / p
    return dl_dp * p * q + (K - 1) * kappa


def _focal_gap(K, gamma, kappa):
    """Global minimizer of the (possibly nonconvex) 1-D focal objective over ``g >= 0``.

    A dense grid locates the global basin; bisection on the closed-form derivative then refines
    the stationary point to round-off.
    """
    grid = np.concatenate([[0.0], np.geomspace(1e-6, 80.0, 20001)])
    i = int(np.argmin(_focal_phi(grid, K, gamma, kappa)))
    if i == 0:
        return 0.0
    lo, hi = grid[i - 1], grid[min(i + 1, grid.size - 1)]
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if _focal_dphi(mid, K, gamma, kappa) > 0:
            hi = mid
        else:
            lo = mid
    return float(0.5 * (lo + hi))


def etf_invariants(prob, g: float) -> dict:
    r"""Invariants of the simplex-ETF configuration with logit gap ``g`` (0: the zero solution).

    ``||w_k||^2 = a^2 = (K-1) g/(K c)``, ``W W^T = a^2 K/(K-1) P``, ``Hbar^T Hbar = c^2 W W^T``,
    ``h_{k,i} = h_k`` (no within-class spread), ``b = 0`` (centred when ``lam_b = 0``), and the
    objective ``loss(g) + lam_W K a^2`` with the loss of the problem evaluated on the ETF.
    """
    K, n, lam_W, lam_H, kappa, c = _scalars(prob)
    a2 = (K - 1) * g / (K * c)
    P = _P(K)
    logp = -np.logaddexp(0.0, np.log(K - 1) - g)  # log p_y on the ETF
    loss = prob.loss
    if isinstance(loss, ufm.Focal):
        data = -(-np.expm1(logp)) ** float(loss.gamma) * logp
    else:
        alpha = float(loss.alpha) if isinstance(loss, ufm.LabelSmoothing) else 0.0
        data = -logp + alpha * (K - 1) * g / K
    q = {
        "value": data + lam_W * K * a2,
        "W_gram": a2 * K / (K - 1) * P,
        "Hbar_gram": c**2 * a2 * K / (K - 1) * P,
        "w_norm2": np.full(K, a2),
        "h_norm2": np.full(K, c**2 * a2),
        "within_class_spread": 0.0,
    }
    if prob.has_bias:
        q["bias_centred" if float(prob.lam_b) == 0.0 else "bias"] = np.zeros(K)
    return q


def ce_family(prob) -> Prediction:
    r"""Simplex-ETF global minimizer of the CE, label-smoothing and focal UFM.

    With the ETF ansatz (rows ``w_k`` of equal norm ``a``, ``h_k = c w_k``) the objective reduces
    to the logit gap ``g = c a^2 K/(K-1)``:

    .. math:: \phi(g) = \ell\Big(p_y = \frac1{1 + (K-1)e^{-g}}\Big) + (K-1)\kappa g .

    CE: ``g = log((1-(K-1)kappa)/kappa)`` if ``kappa < 1/K`` else 0 (zero solution).
    LS(alpha): ``g = log((K-1)(1-q)/q)``, ``q = (K-1)(alpha/K + kappa)``, nonzero iff
    ``kappa < (1-alpha)/K``. Focal(gamma): ``g`` minimizes ``phi`` numerically (it need not be
    convex). Then ``||w_k||^2 = (K-1) g / (K c)``, ``W W^T = a^2 K/(K-1) P``,
    ``Hbar^T Hbar = c^2 W W^T``, ``b = 0`` (``lam_b > 0``), ``f* = phi(g)``.

    References:
        Zhu et al., NeurIPS 2021 (arXiv 2105.02375) [paper: ETF; derived: explicit scale];
        Zhou et al., NeurIPS 2022 (arXiv 2210.02192) [derived: LS and focal scale].
    """
    g = _ce_logit_gap(prob)
    q = etf_invariants(prob, g)
    loss = prob.loss
    name = {ufm.CrossEntropy: "CE", ufm.LabelSmoothing: "LS", ufm.Focal: "focal"}[type(loss)]
    kind = "simplex ETF" if g > 0 else "zero solution"
    return Prediction(
        theorem=f"{name} UFM global minimizer: {kind}",
        source="Zhu et al. 2021, arXiv 2105.02375" if name == "CE" else "Zhou et al. 2022, arXiv 2210.02192",
        tag="paper" if name == "CE" and g > 0 else "derived",
        quantities=q,
    )


# ---- MSE: singular-value thresholding ----------------------------------------------------------

def _svt(M, tau):
    """Singular-value soft threshold; values within round-off of ``tau`` become exactly 0."""
    U, s, Vt = np.linalg.svd(M, full_matrices=False)
    shrunk = np.where(s - tau > 1e-12 * max(tau, 1.0), s - tau, 0.0)
    return (U * shrunk) @ Vt


def _gram_sqrts(Zp):
    """``((Z Z^T)^{1/2}, (Z^T Z)^{1/2})`` from the SVD of ``Z`` (no square root of round-off)."""
    U, s, Vt = np.linalg.svd(Zp, full_matrices=False)
    return (U * s) @ U.T, (Vt.T * s) @ Vt


def mse(prob) -> Prediction:
    r"""Global minimizer of the MSE UFM through the convex class-level program.

    With ``Z = W Hbar`` (``D x K``) and counts ``D_n = diag(n_k)``, the lemma
    ``min_{W Ht = Z'} lam_W/2||W||^2 + lam_H/2||Ht||^2 = sqrt(lam_W lam_H)||Z'||_*`` gives:

    - no bias (any counts, any encoding ``E``): ``Z' = Z D_n^{1/2} = SVT_tau(E D_n^{1/2})`` with
      ``tau = N sqrt(lam_W lam_H)``; balanced one-hot: ``Z = (1 - K kappa)_+ I`` (orthogonal
      frame, Tirer & Bruna 2022); imbalanced one-hot: ``||w_k||^2 = sqrt(lam_H/lam_W) a_k``,
      ``a_k = (sqrt(n_k) - N sqrt(lam_W lam_H))_+`` (Dang et al. 2023).
    - free bias (``lam_b = 0``, balanced): ``Z = SVT_{K kappa}(E P)``, ``b = E 1/K``; one-hot:
      simplex ETF ``Z = (1-K kappa)_+ P``.
    - regularized bias (``lam_b > 0``, balanced, one-hot): ``Z = x P + y J/K`` with
      ``x = (1-K kappa)_+``, ``y = (1 - K kappa (1+lam_b)/lam_b)_+``,
      ``b = (1-y)/(K(1+lam_b)) 1``.

    Then ``W W^T = sqrt(lam_H/lam_W) (Z' Z'^T)^{1/2}``,
    ``Hbar^T Hbar = sqrt(lam_W/lam_H) D_n^{-1/2} (Z'^T Z')^{1/2} D_n^{-1/2}``, and the value is
    ``(1/2N)||(Z + b 1^T - E) D_n^{1/2}||^2 + sqrt(lam_W lam_H)||Z'||_* + lam_b/2||b||^2``.

    References:
        Tirer & Bruna, ICML 2022 (arXiv 2202.08087) [paper]; Zhou et al., ICML 2022
        (arXiv 2203.01238) [derived, free bias]; Dang et al., ICML 2023 (arXiv 2301.00437)
        [derived, imbalance]; Massion, Makhlouf & Massart 2026 (arXiv 2606.00344) [derived,
        regularized bias and encodings].
    """
    K, N = prob.K, prob.N
    counts = np.asarray(prob.counts, dtype=float)
    lam_W, lam_H = float(prob.lam_W), float(prob.lam_H)
    E = np.eye(K) if prob.loss.encoding is None else np.asarray(prob.loss.encoding)
    sq = np.sqrt(lam_W * lam_H)
    Dh = np.sqrt(counts)
    b = None
    if not prob.has_bias:
        Zp = _svt(E * Dh, N * sq)
        theorem, source, tag = "MSE bias-free: singular-value threshold of E D^1/2", "Tirer & Bruna 2022, arXiv 2202.08087", "paper"
        if not prob.balanced:
            source, tag = "Dang et al. 2023, arXiv 2301.00437", "derived"
    else:
        lam_b = float(prob.lam_b)
        P = _P(K)
        if lam_b == 0.0:
            Z = _svt(E @ P, N * sq / np.sqrt(prob.n))
            b = E.mean(axis=1)
            theorem, source = "MSE free bias: b = mean code, Z = SVT(E P)", "Zhou et al. 2022, arXiv 2203.01238"
        else:
            kk = N * sq / np.sqrt(prob.n)  # = K kappa
            x = max(1.0 - kk, 0.0)
            y = max(1.0 - kk * (1.0 + lam_b) / lam_b, 0.0)
            Z = x * P + y * np.ones((K, K)) / K
            b = np.full(K, (1.0 - y) / (K * (1.0 + lam_b)))
            theorem, source = "MSE regularized bias: ETF-to-orthogonal transition", "Massion et al. 2026, arXiv 2606.00344"
        Zp = Z * Dh
        tag = "derived"
    Z = Zp / Dh
    left, right = _gram_sqrts(Zp)
    W_gram = np.sqrt(lam_H / lam_W) * left
    Hbar_gram = np.sqrt(lam_W / lam_H) * right / np.outer(Dh, Dh)
    resid = Z - E if b is None else Z + b[:, None] - E
    value = np.sum((resid * Dh) ** 2) / (2 * N) + sq * np.sum(np.linalg.svd(Zp, compute_uv=False))
    q = {"value": value, "W_gram": W_gram, "Hbar_gram": Hbar_gram, "logit_means": Z,
         "w_norm2": np.diag(W_gram).copy(), "h_norm2": np.diag(Hbar_gram).copy(), "within_class_spread": 0.0}
    if b is not None:
        q["value"] = value + float(prob.lam_b) * np.sum(b**2) / 2
        q["bias"] = b
    return Prediction(theorem, source, tag, q)


# ---- dispatch ------------------------------------------------------------------------------

def assumptions(prob) -> tuple[bool, str]:
    """Whether :func:`predict` has a closed form for ``prob``, and why not when it has none."""
    if prob.nonneg:
        return False, "nonnegative features: see the positive-feature theorems (section 5)"
    loss = prob.loss
    if isinstance(loss, ufm.MSE):
        if prob.has_bias and not prob.balanced:
            return False, "MSE with a bias needs balanced classes for a closed form"
        if prob.has_bias and float(prob.lam_b) > 0 and loss.encoding is not None:
            return False, "MSE with a regularized bias: closed form only for the one-hot code"
        if float(prob.lam_W) <= 0 or float(prob.lam_H) <= 0:
            return False, "needs lam_W > 0 and lam_H > 0"
        if prob.d < min(prob.D, prob.K):
            return False, f"needs d >= rank of the fitted logits (d={prob.d} < min(D, K)); the minimizer is not unique"
        return True, ""
    if not prob.balanced:
        return False, "cross-entropy closed forms need balanced classes"
    if prob.d < prob.K - 1:
        return False, f"a simplex ETF needs d >= K-1 (d={prob.d}, K={prob.K})"
    if float(prob.lam_W) <= 0 or float(prob.lam_H) <= 0:
        return False, "needs lam_W > 0 and lam_H > 0 (otherwise no minimizer exists)"
    return True, ""


def predict(prob) -> Prediction:
    """The closed form that applies to ``prob`` (raises ``ValueError`` outside the assumptions)."""
    ok, why = assumptions(prob)
    if not ok:
        raise ValueError(f"no closed form for this problem: {why}")
    return mse(prob) if isinstance(prob.loss, ufm.MSE) else ce_family(prob)


# ---- the same invariants measured on a solution --------------------------------------------

def measure(prob, params, names) -> dict:
    """The invariants named in a Prediction, computed from ``params`` (float64 NumPy)."""
    W, H = np.asarray(params.W), np.asarray(params.H)
    labels = prob.labels
    Hbar = np.stack([H[:, labels == k].mean(axis=1) for k in range(prob.K)], axis=1)
    out = {}
    for name in names:
        if name == "value":
            out[name] = float(prob.objective(params))
        elif name == "W_gram":
            out[name] = W @ W.T
        elif name == "Hbar_gram":
            out[name] = Hbar.T @ Hbar
        elif name == "w_norm2":
            out[name] = np.sum(W**2, axis=1)
        elif name == "h_norm2":
            out[name] = np.sum(Hbar**2, axis=0)
        elif name == "logit_means":
            out[name] = W @ Hbar
        elif name == "within_class_spread":
            out[name] = float(np.sqrt(np.sum((H - Hbar[:, labels]) ** 2) / H.shape[1]))
        elif name == "bias":
            out[name] = np.asarray(params.b)
        elif name == "bias_centred":
            b = np.asarray(params.b)
            out[name] = b - b.mean()
        else:
            raise KeyError(f"unknown invariant {name!r}")
    return out


def rel_error(measured, predicted) -> float:
    """``||m - p|| / ||p||`` (Frobenius), or the absolute ``||m - p||`` when ``p = 0``."""
    m, p = np.asarray(measured, dtype=float), np.asarray(predicted, dtype=float)
    scale = np.linalg.norm(p)
    err = np.linalg.norm(m - p)
    return float(err / scale) if scale > 0 else float(err)

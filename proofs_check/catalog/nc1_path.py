r"""Within-class variability along the regularization path: the trace ratio
``Tr Sigma_W / Tr Sigma_B`` of the minimizer's features falls as the regularization grows (after
Tirer, Huang & Niles-Weed, ICML 2023, arXiv 2210.16658).

Tirer, Huang & Niles-Weed study a model whose features must stay near a given feature matrix, so
that its minimizers are not exactly collapsed, and report how the regularization moves them closer
to collapse. Only the abstract and summaries were readable here (not the theorems, nor the exact
model or metric), so the entry is **derived**: the model below is ufm's stand-in, the statement
and its proof are ufm's. In the plain UFM every minimizer is exactly collapsed at every
``lambda`` (the ratio is 0 along the whole path), so the stand-in gives the features something
they cannot collapse without a cost: per-sample targets with a within-class part.

**The model.** :class:`ufm.RegressionUFM` without a bias, targets ``Y = [Y_1; E]`` stacked from a
balanced one-hot block ``Y_1`` (``K`` classes, ``n`` samples each; row ``k`` is the indicator of
class ``k``) and a block ``E`` (``m`` rows) whose class means are 0 (``E A = 0`` with ``A`` the
class-averaging projector, ``A = Y_1^T Y_1 / n``). The classes of the samples are read from
``Y_1``.

**The ratio (any K, n and any such E; the steps with a SymPy row say "proved").** The
regression entry's minimizer has ``W H = Z = SVT_tau(Y)``, ``tau = N sqrt(lam_W lam_H)``, and
``H^T H = rho (Z^T Z)^{1/2}``. Since ``Y_1 E^T = n (class means of E)^T = 0``,
``Y^T Y = Y_1^T Y_1 + E^T E = n A + E^T E`` with ``A (E^T E) = 0``: the right singular vectors of
``Y`` are those of ``A`` (singular value ``sqrt(n)``, ``K`` of them) and those of ``E``
(``sigma_w``, lying in the range of ``I - A``). So
``(Z^T Z)^{1/2} = (sqrt(n) - tau)_+ A + sum_w (sigma_w - tau)_+ v_w v_w^T`` and, with
``N Tr Sigma_W = tr(H^T H (I - A))``, ``N Tr Sigma_B = tr(H^T H (A - J/N))``,
``tr(A (A - J/N)) = K - 1`` (shown) and ``tr(v_w v_w^T (A - J/N)) = 0`` (``A v_w = 0``, so
``1^T v_w = 0``):

    r(tau) = Tr Sigma_W / Tr Sigma_B = sum_w (sigma_w - tau)_+ / ((K - 1)(sqrt(n) - tau))
    for tau < sqrt(n).

**Monotone along the path (proved).** On an interval of ``tau`` where ``p`` within directions are
above the threshold, ``dr/dtau = sum_{active} (sigma_w - sqrt(n)) / ((K-1)(sqrt(n) - tau)^2)``
(SymPy, symbolic ``K``, ``n``, ``p``), negative when every ``sigma_w < sqrt(n)`` (the assumption:
the class signal is stronger than the within-class one). So ``r`` strictly decreases as ``tau``
(``lam_W lam_H``) grows, reaches 0 at ``tau = max sigma_w`` (exact collapse) and stays 0 up to
``sqrt(n)``, where the class means vanish too. The within-class part is orthogonal to the class
means in feature space (different singular directions), so the canonical
``NC1 = Tr(Sigma_W Sigma_B^+)/K`` is 0 at every ``lambda``: the trace ratio is the metric that
sees the spread.

**The check.** ``ufm.minimize`` (certified, float64) at ``lam_W s, lam_H s`` for the path
multipliers ``s`` in :data:`PATH`; rows: the measured ratio (``ufm.metrics.nc1_trace_ratio``) at
each point against the prediction from the SVT expressions; for each consecutive pair whose first
ratio is positive, ``r(s_{i+1}) / r(s_i) <= 1 - margin`` (a strict bound: a tie fails); the
canonical NC1 at the first point (0). The default instance spans both sides of the threshold
``max sigma_w``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy as sp

import ufm
from proofs_check.catalog.svt import MU, PROOFS_SVT, S_STAR, away_from_threshold
from proofs_check.theorem import GTOL, Citation, Proof, Theorem

__all__ = ["THEOREMS", "NC1_PATH", "TIRER_HUANG", "PATH", "target_blocks", "trace_ratio_prediction",
           "structured_targets"]

TIRER_HUANG = Citation(
    "Tirer, Huang & Niles-Weed", 2023, "ICML", "2210.16658",
    what=("a model whose features stay near given features, so that minimizers are not exactly collapsed; "
          "reduced within-class variability and the effect of the regularization on the closeness to "
          "collapse (the abstract and summaries were read); the per-sample-target stand-in, the closed "
          "form of the trace ratio and its monotonicity along the path are ufm's"))

PATH = (1.0, 3.0, 6.0, 9.0, 12.0)  # multipliers of (lam_W, lam_H): tau grows by the same factors
EXPRESSIONS = {"mu": MU, "s*": S_STAR}
MARGIN = (1e-3, "1e-3 relative: the path steps move the predicted ratio by 10% or more, and a certified solve "
                "(KKT 1e-12) reproduces it to 1e-8, so a ratio that does not fall (a tie) fails the row")

# ---- the proofs -----------------------------------------------------------------------------------
K, n, tau = sp.symbols("K n tau", positive=True)
_p = sp.Symbol("p", integer=True, positive=True)
_w = sp.Idx("w")
_sig = sp.IndexedBase("sigma")


def _ratio_active(p=_p):
    """``r(tau)`` on an interval where ``p`` within directions are active (``sigma_w > tau``)."""
    return sp.Sum(_sig[_w] - tau, (_w, 1, p)) / ((K - 1) * (sp.sqrt(n) - tau))


def _derivative_residual():
    slope = sp.Sum(_sig[_w] - sp.sqrt(n), (_w, 1, _p)) / ((K - 1) * (sp.sqrt(n) - tau) ** 2)
    return (sp.diff(_ratio_active(), tau) - slope).doit()


def _projector_residuals():
    """Within a class block, ``A_k = J_n/n``: ``A_k^2 - A_k`` and ``A_k J_n - J_n`` vanish modulo
    ``J_n^2 = n J_n`` (the remainder of the polynomial division in ``J_n``)."""
    j = sp.Symbol("J_n")
    rel = j**2 - n * j
    return (sp.rem(sp.expand(n**2 * ((j / n) ** 2 - j / n)), rel, j), sp.rem(sp.expand(n * (j / n * j - j)), rel, j))


def _between_trace():
    """``tr(A (A - J/N)) = tr A - tr(J)/N = K - 1`` (``A^2 = A``, ``A J = J``, ``tr A = K``,
    ``tr J = N = K n``)."""
    N_ = K * n
    return K - N_ / N_ - (K - 1)


PROOFS = PROOFS_SVT + (
    Proof("every n: a class block of A is J_n/n, and (J_n/n)^2 = J_n/n, (J_n/n) J_n = J_n modulo J_n^2 = n J_n",
          _projector_residuals),
    Proof("tr(A (A - J/N)) = tr A - tr(J)/N = K - 1 with tr A = K, tr J = N = K n (the class directions' "
          "share of Tr Sigma_B; arithmetic on the traces)", _between_trace, kind="definition"),
    Proof("every K, n and any number p of active within directions: d/dtau [sum_w (sigma_w - tau) / "
          "((K-1)(sqrt(n) - tau))] = sum_w (sigma_w - sqrt(n)) / ((K-1)(sqrt(n) - tau)^2), negative when every "
          "sigma_w < sqrt(n): the ratio falls strictly as tau grows", _derivative_residual),
)


# ---- the targets ----------------------------------------------------------------------------------
def target_blocks(Y: Any) -> tuple[int, np.ndarray, np.ndarray] | None:
    """``(K, labels, E)`` when the leading rows of ``Y`` are a one-hot block (``K >= 2`` rows, entries 0 or
    1, one 1 per column) followed by at least one row; else ``None``."""
    Y = np.asarray(Y, dtype=float)
    for k in range(2, Y.shape[0]):
        top = Y[:k]
        if np.all((top == 0) | (top == 1)) and np.all(top.sum(axis=0) == 1):
            return k, np.argmax(top, axis=0), Y[k:]
    return None


def _class_projector(labels: np.ndarray) -> np.ndarray:
    same = labels[:, None] == labels[None, :]
    return same / same.sum(axis=1, keepdims=True)


def trace_ratio_prediction(ev: Any, sigmas: Any, K_: int, n_: int, scale: float) -> float:
    """``sum_w s*(sigma_w) / ((K-1) s*(sqrt(n)))`` at ``(lam_W, lam_H) * scale``: the within-class singular
    values ``sigmas`` of ``E`` and the class one ``sqrt(n)`` shrunk by the expression ``s*`` (``ev``
    evaluates it; the module docstring derives the ratio)."""
    lw, lh = ev.numbers["lambda_W"] * scale, ev.numbers["lambda_H"] * scale
    within = np.broadcast_to(ev("s*", sigma=np.asarray(sigmas, dtype=float), lambda_W=lw, lambda_H=lh),
                             np.shape(sigmas))
    between = ev("s*", sigma=float(np.sqrt(n_)), lambda_W=lw, lambda_H=lh)
    return float(np.sum(within) / ((K_ - 1) * between))


def _q_ratio(s: float) -> str:
    return f"Tr Sigma_W / Tr Sigma_B at lam x {s:g}"


def _q_step(s0: float, s1: float) -> str:
    return f"ratio at lam x {s1:g} over ratio at lam x {s0:g} (< 1: falls along the path)"


_Q_NC1 = "canonical NC1 Tr(Sigma_W Sigma_B^+)/K at lam x 1 (0: the spread is orthogonal to the class means)"


def _assemble(prob: ufm.RegressionUFM, ev: Any) -> dict:
    K_, labels, E = target_blocks(prob.Y)
    sig, n_ = np.linalg.svd(E, compute_uv=False), int(np.sum(labels == 0))
    ratios = {s: trace_ratio_prediction(ev, sig, K_, n_, s) for s in PATH}
    q = {_q_ratio(s): r for s, r in ratios.items()}
    for s0, s1 in zip(PATH[:-1], PATH[1:]):
        if ratios[s0] > 0:
            q[_q_step(s0, s1)] = 1.0  # the tie a strict decrease must beat
    q[_Q_NC1] = 0.0
    return q


def _at(prob: ufm.RegressionUFM, s: float) -> ufm.RegressionUFM:
    return ufm.RegressionUFM(Y=prob.Y, d=prob.d, lam_W=float(prob.lam_W) * s, lam_H=float(prob.lam_H) * s)


def _solve(prob: ufm.RegressionUFM) -> tuple[dict, dict]:
    sols = {s: ufm.minimize(_at(prob, s), gtol=GTOL, starts=2, throw=False) for s in PATH}
    worst = max(sols.values(), key=lambda sol: sol.grad_norm)
    return ({s: sol.params for s, sol in sols.items()},
            {"grad_norm": worst.grad_norm, "converged": all(sol.converged for sol in sols.values())})


def _measure(prob: ufm.RegressionUFM, params: dict, names: Any) -> dict:
    K_, labels, _ = target_blocks(prob.Y)
    ratios = {s: float(ufm.metrics.nc1_trace_ratio(params[s].H, labels, K_)) for s in PATH}
    out = {_q_ratio(s): r for s, r in ratios.items()}
    for s0, s1 in zip(PATH[:-1], PATH[1:]):
        out[_q_step(s0, s1)] = ratios[s1] / ratios[s0] if ratios[s0] > 0 else float("nan")
    out[_Q_NC1] = float(ufm.metrics.nc1(params[PATH[0]].H, labels, K_))
    return {q: out[q] for q in names}


def _assume(prob: Any) -> tuple[bool, str]:
    if not isinstance(prob, ufm.RegressionUFM) or prob.has_bias:
        return False, "needs a ufm.RegressionUFM without a bias"
    blocks = target_blocks(prob.Y)
    if blocks is None:
        return False, "targets Y = [Y_1; E]: a one-hot block (K >= 2 rows) over at least one more row"
    K_, labels, E = blocks
    counts = np.bincount(labels, minlength=K_)
    if np.any(counts != counts[0]) or counts[0] < 2:
        return False, "balanced classes with n >= 2 samples each (a within-class part needs n >= 2)"
    n_ = int(counts[0])
    if np.abs(E @ _class_projector(labels)).max() > 1e-12 * max(1.0, np.abs(E).max()):
        return False, "the within-class block E must have zero class means (E A = 0)"
    sig = np.linalg.svd(E, compute_uv=False)
    if sig.max() >= 0.95 * np.sqrt(n_):
        return False, f"every singular value of E below sqrt(n) = {np.sqrt(n_):.4g} (5% margin; got {sig.max():.4g})"
    if float(prob.lam_W) <= 0 or float(prob.lam_H) <= 0:
        return False, "lam_W > 0 and lam_H > 0"
    if prob.d < np.linalg.matrix_rank(np.asarray(prob.Y)):
        return False, f"d >= rank Y (got d={prob.d})"
    for s in PATH:
        t = prob.N * np.sqrt(float(prob.lam_W) * float(prob.lam_H)) * s
        if t >= 0.95 * np.sqrt(n_):
            return False, f"tau = N sqrt(lam_W lam_H) x {s:g} = {t:.4g} must stay below sqrt(n) (5% margin)"
        ok, why = away_from_threshold(sig, t, "E")
        if not ok:
            return ok, why
    return True, ""


def structured_targets(K_: int, n_: int, sigmas: Any, rng: np.random.Generator | None = None) -> np.ndarray:
    """``[Y_1; E]``: balanced one-hot rows (class-major columns) over ``E = diag(sigmas) V^T`` with
    orthonormal rows of ``V^T`` that have zero class means (random when ``rng`` is given)."""
    sigmas = np.asarray(sigmas, dtype=float)
    N_ = K_ * n_
    labels = np.repeat(np.arange(K_), n_)
    Y1 = (labels[None, :] == np.arange(K_)[:, None]).astype(float)
    G = np.random.default_rng(0).standard_normal((N_, sigmas.size)) if rng is None else rng.standard_normal(
        (N_, sigmas.size))
    G = G - _class_projector(labels) @ G
    V, _ = np.linalg.qr(G)
    return np.vstack([Y1, sigmas[:, None] * V.T])


def _random(rng: np.random.Generator) -> ufm.RegressionUFM:
    K_, n_, m_ = int(rng.integers(2, 4)), int(rng.integers(2, 4)), int(rng.integers(1, 3))
    sig = np.sort(rng.uniform(0.2, 0.9, size=m_) * np.sqrt(n_))[::-1]
    tau0 = float(rng.uniform(0.02, 0.08)) * np.sqrt(n_)
    rho = float(np.exp(rng.uniform(-0.5, 0.5)))
    lam = tau0 / (K_ * n_)
    return ufm.RegressionUFM(Y=structured_targets(K_, n_, sig, rng), d=K_ + m_ + 1, lam_W=lam * rho, lam_H=lam / rho)


def _default_targets() -> np.ndarray:
    """K = 2, n = 3 over one within-class row of singular value 1.2: the shape (D, N, d) = (3, 6, 7)
    of the regression entry's instances, so the solves reuse their compilation."""
    v = np.array([1.0, -1.0, 0.0, 1.0, 0.0, -1.0]) / 2.0  # zero mean in each class, unit norm
    return np.vstack([np.repeat(np.eye(2), 3, axis=1), 1.2 * v[None, :]])


NC1_PATH = Theorem(
    name="Per-sample-target UFM: Tr Sigma_W / Tr Sigma_B falls strictly along the regularization path",
    citation=TIRER_HUANG,
    tag="derived",
    statement=("RegressionUFM without a bias, targets [Y_1; E] (balanced one-hot, K classes of n, over a block "
               "E with zero class means and singular values sigma_w < sqrt(n)): the minimizer's features have "
               "Tr Sigma_W / Tr Sigma_B = sum_w (sigma_w - tau)_+ / ((K-1)(sqrt(n) - tau)), tau = N sqrt(lam_W "
               "lam_H) < sqrt(n), strictly decreasing in tau until it reaches 0 (exact collapse) at tau = "
               "max sigma_w; the canonical NC1 Tr(Sigma_W Sigma_B^+)/K is 0 throughout."),
    assumptions=_assume,
    assemble=_assemble,
    # tau = 6 sqrt(lam_W lam_H) x PATH = 0.12, 0.36, 0.72, 1.08, 1.44: four points below the threshold
    # sigma = 1.2, one above it (ratio 0), all below sqrt(3)
    instances=lambda: [ufm.RegressionUFM(Y=_default_targets(), d=7, lam_W=0.01, lam_H=0.04)],
    random_instance=_random,
    measure=_measure,
    solve=_solve,
    expressions=EXPRESSIONS,
    proofs=PROOFS,
    strict_upper_bounds=tuple(_q_step(s0, s1) for s0, s1 in zip(PATH[:-1], PATH[1:])),
    strict_margin=MARGIN,
    assumed=("the regression entry's minimizer: W H = SVT_tau(Y) with tau = N sqrt(lam_W lam_H) and H^T H = "
             "sqrt(lam_W/lam_H) (Z^T Z)^(1/2) (the nuclear-norm lemma and singular-value thresholding)",
             "that the right singular vectors of Y split into the class directions (range A) and those of E "
             "when A E^T E = 0 (two PSD matrices with orthogonal ranges share an eigenbasis)"),
)

THEOREMS = [NC1_PATH]

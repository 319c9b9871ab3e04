r"""Deep UFM (docs/theory.md#deep-reduction): the m-factor scalar reduction to h_m and the deep neural collapse
(DNC) closed form, shared by the entries of ``deep_linear`` and ``deep_relu`` (listed by ``deep``).

**Reduction** [derived; Dang et al., ICML 2023, arXiv 2301.00437, and Garrod & Keating, arXiv
2404.06106, show the collapse of the deep linear minimizers; the h_m form is ufm's scaling]. MSE,
one-hot, no bias, balanced, ``d_l >= K``. With ``m = L + 1``
factors (``H_1`` and ``W_1 .. W_L``) and collapsed features the logits are ``Zbar = W_L..W_1 Hbar``
(``K x K``); the data term is ``(1/2K)||Zbar - I||^2`` and the penalty, minimized over the
factorizations of ``Zbar`` (each factor ``sqrt(mu_i) A_i`` balanced, ``mu_0 = n lam_H``,
``mu_l = lam_l``), is ``(m/2) Lambda^{1/m} sum_j sigma_j(Zbar)^{2/m}`` with
``Lambda = n lam_H prod_l lam_l``. Hence ``f = (1/K) sum_j h_m(x_j)`` over the singular values
``x_j`` of ``Zbar`` (aligned with ``I`` by von Neumann's trace inequality), with

.. math:: h_m(x) = \tfrac12 (x-1)^2 + \tfrac m2 \gamma x^{2/m}, \qquad
    \gamma = K n^{1/m} (\lambda_H \textstyle\prod_l \lambda_l)^{1/m}.

**DNC closed form** (linear layers, and ReLU layers where DNC is optimal). All ``x_j`` equal the
global minimizer ``x*`` of ``h_m``; every factor has ``K`` equal nonzero singular values,

.. math:: \sigma(W_l) = \frac{\Lambda^{1/(2m)} x_*^{1/m}}{\sqrt{\lambda_l}}, \quad
    \sigma(\bar H) = \frac{\Lambda^{1/(2m)} x_*^{1/m}}{\sqrt{n\lambda_H}},

(balancedness ``lam_{l+1} W_{l+1}^T W_{l+1} = lam_l W_l W_l^T`` and ``lam_1 W_1^T W_1 = lam_H H_1 H_1^T``
at every critical point of the linear model), the class means of layer ``l`` form an orthogonal
frame ``Xbar_l^T Xbar_l = c_l I`` with ``c_1 = sigma(Hbar)^2``, ``c_{l+1} = c_l sigma(W_l)^2``, and
``f* = h_m(x*)``.

**What is determined.** Linear layers: the value, ``x*``, every ``sigma(W_l)`` and every class-mean
Gram. ReLU after ``W_1 .. W_{L-1}`` without ``relu_features``: the value, the post-activation Grams
of layers ``2..L`` and ``sigma(W_l)`` for ``l >= 2``; *not* the pre-activations ``Z_1 = W_1 Hbar``
(``Z_1 = a I - b(J - I)`` with ``0 <= b <= a/(K-1)`` all have ``relu(Z_1) = a I`` and the same
nuclear norm ``K a``), hence not ``Hbar``'s Gram nor ``sigma(W_1)``. These are never compared.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp
from scipy.optimize import minimize_scalar

import ufm
from proofs_check.catalog._common import K
from proofs_check.theorem import GTOL, Citation, Evaluator, Proof
from ufm import DeepParams, DeepUFM
from ufm.solvers import polish_relu

__all__ = [
    "jump_distance",
    "SUKENIK_2023",
    "SUKENIK_2024",
    "DANG_2023",
    "GARROD_KEATING_2024",
    "DEEP_LINEAR_SOURCE",
    "OWN_ANALYSIS",
    "TIRER_BRUNA",
    "x",
    "gam",
    "Lam",
    "ms",
    "mu",
    "h_sym",
    "DNC_EXPRESSIONS",
    "deep_numbers",
    "gamma",
    "h",
    "jump_gamma",
    "x_star",
    "scalar_optimum",
    "check_dnc_instance",
    "dnc_prediction",
    "dnc_params",
    "dnc_value_by_search",
    "layer_grams",
    "measure",
    "dnc_assemble",
    "solve_deep",
    "factor_proofs",
    "REDUCTION",
]

SUKENIK_2023 = Citation("Súkeník, Mondelli & Lampert", 2023, "NeurIPS", "2305.13165")
SUKENIK_2024 = Citation("Súkeník, Mondelli & Lampert", 2024, "NeurIPS", "2405.14468")
DANG_2023 = Citation("Dang, Tran, Osher, Tran-The, Ho & Nguyen", 2023, "ICML", "2301.00437",
                     what=("the global minimizers of the deep linear UFM (MSE and CE) collapse across the "
                           "layers, with closed-form singular values in the paper's scaling"))
GARROD_KEATING_2024 = Citation("Garrod & Keating", 2024, "preprint", "2404.06106",
                               what="deep neural collapse at the global minima of the deep linear MSE UFM")
# the deep linear h_m reduction and its DNC minimizers: Dang et al. 2023 and Garrod & Keating 2024
DEEP_LINEAR_SOURCE = Citation(
    DANG_2023.authors, 2023, "ICML", "2301.00437",
    what=DANG_2023.what + "; ufm restates them as K copies of the scalar function h_m in its own scaling",
    also=(GARROD_KEATING_2024,))
# what follows from h_m and is not in those papers: the jump of x* and the origin as a local minimum
OWN_ANALYSIS = Citation(
    "ufm, own analysis", 2026, "docs/theory.md#deep-jump",
    what=("derived here from the h_m reduction of Dang et al. 2023 and Garrod & Keating 2024; no "
          "published statement is claimed"), also=(DANG_2023, GARROD_KEATING_2024))
TIRER_BRUNA = Citation("Tirer & Bruna", 2022, "ICML", "2202.08087")

x, gam, Lam = sp.symbols("x gamma Lambda", positive=True)
ms, mu = sp.symbols("m mu", positive=True)


def h_sym(m: Any) -> sp.Expr:
    """``h_m(x) = (x-1)^2/2 + (m/2) gamma x^(2/m)`` as a SymPy expression (``m`` a number or symbol)."""
    m = sp.sympify(m)
    return (x - 1) ** 2 / 2 + m / 2 * gam * x ** (2 / m)


# The expressions of every DNC theorem: m = L + 1 and Lambda = n lam_H prod_l lam_l are numbers of
# the problem; gamma resolves by name inside h(x).
DNC_EXPRESSIONS = {
    "gamma": K * Lam ** (1 / ms),
    "h(x)": h_sym(ms),
    "gamma_c": ((ms - 2) ** (ms - 2) / (ms - 1) ** (2 * (ms - 1))) ** (1 / ms),
    "sigma(mu)": Lam ** (1 / (2 * ms)) * x ** (1 / ms) / sp.sqrt(mu),
}


def deep_numbers(prob: DeepUFM) -> dict:
    """``K``, ``n``, ``m = L + 1`` and ``Lambda = n lam_H prod_l lam_l`` of a DeepUFM."""
    lams = np.asarray(prob.lams, float)
    return {"K": float(prob.K), "n": float(prob.n), "m": float(prob.L + 1),
            "Lambda": float(prob.n * float(prob.lam_H) * np.prod(lams))}


def _ev(m: int, g: float) -> Evaluator:
    return Evaluator({k: v for k, v in DNC_EXPRESSIONS.items() if k != "gamma"}, {"m": float(m), "gamma": g})


# ---- numeric evaluators (the expressions above, lambdified) -------------------------------------
def gamma(prob: DeepUFM) -> float:
    """``gamma = K Lambda^{1/m}``, ``m = L + 1`` (the expression ``gamma``)."""
    return Evaluator(DNC_EXPRESSIONS, deep_numbers(prob))("gamma")


def h(xv: Any, m: int, g: float) -> Any:
    """``h_m(x)`` (the expression ``h(x)``)."""
    return _ev(m, g)("h(x)", x=np.asarray(xv, float))


def jump_gamma(m: int) -> float:
    """Critical ``gamma`` of the jump, ``gamma^m = (m-2)^(m-2) / (m-1)^(2(m-1))`` (``1`` at ``m = 2``)."""
    return _ev(m, 0.0)("gamma_c")


def _roots(ev, **extra) -> float:
    """The largest zero of ``h'`` in (0, 1) (bisection on the SymPy derivative), 0 if ``h' > 0``."""
    grid = np.geomspace(1e-12, 1.0, 4001)
    neg = np.flatnonzero(np.asarray(ev.diff("h(x)", "x", x=grid, **extra)) < 0)
    if neg.size == 0:
        return 0.0
    lo, hi = grid[neg[-1]], grid[min(neg[-1] + 1, grid.size - 1)]
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if ev.diff("h(x)", "x", x=mid, **extra) < 0 else (lo, mid)
    return 0.5 * (lo + hi)


def x_star(ev: Evaluator) -> tuple[float, float]:
    """``(x*, x_loc)``: the global minimizer of ``h_m`` (0 when ``gamma >= gamma_c``) and the
    largest critical point."""
    r = _roots(ev)
    return (r if ev("gamma") < ev("gamma_c") else 0.0), r


def scalar_optimum(m: int, g: float) -> tuple[float, float]:
    """``(x*, x_loc)``: the global minimizer of ``h_m`` on ``x >= 0`` and its largest critical point
    (``0`` when there is none): ``x_loc`` the larger root of ``h_m'``, kept when
    ``gamma < gamma_c`` (``m = 2``: ``gamma_c = 1``, ``x* = (1 - gamma)_+``)."""
    ev = _ev(m, g)
    ev.expressions = {**ev.expressions, "gamma": sp.Float(g)}
    return x_star(ev)


def jump_distance(prob: DeepUFM) -> float:
    """``gamma/gamma_c - 1`` (``m >= 3``; ``gamma - 1`` at ``m = 2``): positive beyond the jump, where
    ``x* = 0`` (the zero solution); the assumptions exclude ``|distance| < 0.05``."""
    m = prob.L + 1
    return gamma(prob) / (jump_gamma(m) if m >= 3 else 1.0) - 1


def check_dnc_instance(prob: Any) -> tuple[bool, str]:
    """The assumptions shared by the DNC entries: a DeepUFM, one-hot MSE, no bias, balanced, every
    width ``>= K``, every ``lam > 0``, ``gamma`` at least 5% away from the jump (``m >= 3``) or
    from 1 (``m = 2``)."""
    if not isinstance(prob, DeepUFM):
        return False, "needs a ufm.DeepUFM"
    if not isinstance(prob.loss, ufm.MSE) or prob.loss.encoding is not None:
        return False, "loss must be MSE with one-hot targets"
    if prob.has_bias or not prob.balanced:
        return False, "needs no bias and balanced classes"
    if min(prob.widths) < prob.K:
        return False, f"needs every width >= K={prob.K}"
    if float(prob.lam_H) <= 0 or np.any(np.asarray(prob.lams) <= 0):
        return False, "needs every lam > 0"
    m = prob.L + 1
    if m >= 3 and abs(gamma(prob) / jump_gamma(m) - 1) < 0.05:
        return False, "gamma within 5% of the jump (two global minimizers)"
    if m == 2 and abs(gamma(prob) - 1) < 0.05:
        return False, "gamma within 5% of 1"
    return True, ""


def _dnc_from(prob, ev) -> dict:
    lams = np.asarray(prob.lams, float)
    xs, _ = x_star(ev)
    s_H = ev("sigma(mu)", x=xs, mu=prob.n * float(prob.lam_H))
    s_W = np.asarray([ev("sigma(mu)", x=xs, mu=lv) for lv in lams])
    c = s_H**2 * np.concatenate([[1.0], np.cumprod(s_W[:-1] ** 2)])
    return dict(value=ev("h(x)", x=xs), x=xs, sigma_H=s_H, sigma_W=s_W, gram_scale=c)


def dnc_prediction(prob: DeepUFM) -> dict:
    """Closed forms at the DNC point (module docstring): ``value``, ``x*``, ``sigma_H``,
    ``sigma_W`` (``(L,)``), ``gram_scale`` (``c_1..c_L``, post-activation class-mean Grams)."""
    return _dnc_from(prob, Evaluator(DNC_EXPRESSIONS, deep_numbers(prob)))


def _embed(A, rows, cols):
    out = np.zeros((rows, cols))
    out[: A.shape[0], : A.shape[1]] = A
    return out


def _dnc_params_at(prob: DeepUFM, sigma_H, sigma_W) -> DeepParams:
    d, K_ = prob.dims, prob.K
    Hbar = _embed(sigma_H * np.eye(K_), d[0], K_)
    Ws = tuple(jnp.asarray(_embed(sigma_W[l] * np.eye(K_), d[l + 1], d[l])) for l in range(prob.L))
    return DeepParams(Ws, jnp.asarray(Hbar[:, prob.labels]), None)


def dnc_params(prob: DeepUFM) -> DeepParams:
    """The explicit DNC point: ``Hbar = sigma_H [I_K; 0]`` (each class mean repeated n times) and
    ``W_l = sigma_l [I_K 0; 0 0]``. Nonnegative, so ReLUs act as the identity on it."""
    p = dnc_prediction(prob)
    return _dnc_params_at(prob, p["sigma_H"], p["sigma_W"])


def dnc_value_by_search(prob: DeepUFM) -> float:
    """The best objective over the DNC family, found numerically: ``min_x f(DNC(x))``, where
    ``DNC(x)`` is the point of :func:`dnc_params` with ``x`` in place of ``x*`` (``sigma_H(x)``,
    ``sigma_l(x)`` from the module's expressions). A 601-point grid on ``[0, 1.5]``, then SciPy's
    bounded Brent on the bracket around its best point; ``x = 0`` is the zero point. It uses
    neither ``gamma_c`` nor the roots of ``h'``, so it checks the closed-form DNC value
    ``h_m(x*)``."""
    ev = Evaluator(DNC_EXPRESSIONS, deep_numbers(prob))
    lams = np.asarray(prob.lams, float)
    objective = jax.jit(prob.objective)

    def f(xv):
        s_H = float(ev("sigma(mu)", x=xv, mu=prob.n * float(prob.lam_H)))
        s_W = [float(ev("sigma(mu)", x=xv, mu=lv)) for lv in lams]
        return float(objective(_dnc_params_at(prob, s_H, s_W)))

    grid = np.linspace(0.0, 1.5, 601)
    vals = np.array([f(v) for v in grid])
    i = int(np.argmin(vals))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
    polished = minimize_scalar(f, bounds=(lo, hi), method="bounded", options={"xatol": 1e-12})
    return float(min(vals[i], polished.fun))


def layer_grams(prob: DeepUFM, params: DeepParams) -> list:
    """Uncentred post-activation class-mean Grams ``Xbar_l^T Xbar_l``, ``l = 1..L`` (NumPy)."""
    _, post = prob.layers(params)
    lab = prob.labels
    out = []
    for X in post:
        X = np.asarray(X)
        Xbar = np.stack([X[:, lab == k].mean(axis=1) for k in range(prob.K)], axis=1)
        out.append(Xbar.T @ Xbar)
    return out


def measure(prob: DeepUFM, params: DeepParams, names: Iterable[str]) -> dict:
    """The invariants named ``value``, ``sigma_W[l]`` (top ``K`` singular values of ``W_l``,
    1-based ``l``), ``gram[l]`` (post-activation class-mean Gram of layer ``l``)."""
    out = {}
    grams = layer_grams(prob, params)
    for q in names:
        if q == "value":
            out[q] = float(prob.objective(params))
        elif q.startswith("sigma_W["):
            l = int(q[8:-1])
            out[q] = np.linalg.svd(np.asarray(params.Ws[l - 1]), compute_uv=False)[: prob.K]
        elif q.startswith("gram["):
            out[q] = grams[int(q[5:-1]) - 1]
    return out


def _determined(prob) -> list:
    """Quantities fixed by the DNC theorem for this model (see the module docstring)."""
    first = 1 if prob.activation == "linear" else 2
    return (["value"] + [f"sigma_W[{l}]" for l in range(first, prob.L + 1)]
            + [f"gram[{l}]" for l in range(first, prob.L + 1)])


def dnc_assemble(prob: DeepUFM, ev: Evaluator) -> dict:
    """The DNC entries' ``assemble``: the value, and ``sigma_W[l]`` (``K`` equal values) and
    ``gram[l] = c_l I`` for the layers the model determines (module docstring)."""
    p = _dnc_from(prob, ev)
    q = {"value": p["value"]}
    for name in _determined(prob)[1:]:
        l = int(name.split("[")[1][:-1])
        q[name] = (np.full(prob.K, p["sigma_W"][l - 1]) if name.startswith("sigma")
                   else p["gram_scale"][l - 1] * np.eye(prob.K))
    return q


def solve_deep(prob: DeepUFM, *, starts: int = 8,
               init_scale: float | None = 1.0) -> tuple[DeepParams, dict]:
    """``ufm.minimize`` from several starts (default init: He/LeCun scale, which avoids the basin of the
    origin), then for ReLU models :func:`ufm.solvers.polish_relu` on the activation piece
    (kept when it is consistent with the piece and does not raise the value).
    Returns ``(params, info)`` with the certificate of the (polished) run and ``failed_starts``."""
    sol = ufm.minimize(prob, gtol=GTOL, starts=starts, init_scale=init_scale, throw=False)
    vals = np.asarray(sol.stats.get("start_values", [sol.value]))
    if prob.activation == "relu":
        pol = polish_relu(prob, sol.params, throw=False)
        if (pol.converged and pol.stats["pattern_consistent"]
                and pol.value <= sol.value + 1e-12 * max(1.0, abs(sol.value))):
            sol = pol  # kept only on the same activation piece: its certificate is then the model's
    failed = int(np.sum(vals > sol.value * (1 + 1e-6) + 1e-12))
    return sol.params, {"grad_norm": sol.grad_norm, "converged": sol.converged, "failed_starts": failed,
                        "value": sol.value}


# ---- proofs ------------------------------------------------------------------------------------
def _factor_residuals():
    """Every m (symbolic), one factor i with weight mu_i, Lambda = prod_l mu_l:
    s_i = Lambda^(1/2m) x^(1/m) / sqrt(mu_i). Each of the m factors has log s_i = log(Lambda)/(2m) +
    log(x)/m - log(mu_i)/2, so sum_i log s_i = m (log(Lambda)/(2m) + log(x)/m) - log(Lambda)/2
    (sum_i log mu_i = log Lambda); each term mu_i s_i^2/2 equals Lambda^(1/m) x^(2/m)/2 whatever i,
    so the m terms sum to (m/2) Lambda^(1/m) x^(2/m)."""
    mu_i = sp.Symbol("mu_i", positive=True)
    s_i = Lam ** (1 / (2 * ms)) * x ** (1 / ms) / sp.sqrt(mu_i)
    log_s_i = sp.expand_log(sp.log(s_i), force=True)
    common = log_s_i + sp.log(mu_i) / 2  # the part of log s_i shared by the m factors
    return (sp.expand(ms * common - sp.log(Lam) / 2 - sp.log(x)),
            sp.powsimp(sp.expand(mu_i * s_i**2 / 2 - Lam ** (1 / ms) * x ** (2 / ms) / 2), force=True))


def _stationarity_residual():
    """Every m: phi = (s_i P - 1)^2/2 + K mu_i s_i^2/2 + (the terms of the other factors), P the
    product of the other factors; at the balanced point P = x/s_i and s_i d phi/d s_i = x h_m'(x)
    with gamma = K Lambda^(1/m)."""
    mu_i, S_i, Pr = sp.symbols("mu_i s_i P", positive=True)
    phi = (S_i * Pr - 1) ** 2 / 2 + K * mu_i * S_i**2 / 2
    s_i = Lam ** (1 / (2 * ms)) * x ** (1 / ms) / sp.sqrt(mu_i)
    hp = sp.diff(h_sym(ms), x).subs(gam, K * Lam ** (1 / ms))
    lhs = (S_i * sp.diff(phi, S_i)).subs(Pr, x / S_i).subs(S_i, s_i)
    return sp.powsimp(sp.expand(lhs - x * hp), force=True)


def factor_proofs() -> tuple[Proof, ...]:
    """Balanced factorization (every m, symbolic mu_i): s_i = Lambda^(1/2m) x^(1/m) / sqrt(mu_i)."""
    return (
        Proof("balanced factors (every m, symbolic): prod s_i = x, and the penalty sum mu_i s_i^2/2 equals "
              "(m/2) Lambda^(1/m) x^(2/m), Lambda = prod mu_i (each factor's term is the same)",
              _factor_residuals),
        Proof("stationarity (every m): s_i d phi/d s_i = x h_m'(x) at the balanced point, phi = (prod s - 1)^2/2 "
              "+ sum K mu_i s_i^2/2, so the DNC point is critical iff h_m'(x*) = 0",
              _stationarity_residual),
        Proof("K f = sum_j h_m(x_j): K[(x-1)^2/(2K) + (m/2) Lambda^(1/m) x^(2/m)] = h_m(x) with "
              "gamma = K Lambda^(1/m), Lambda = n lam_H prod lam (every m): the definition of gamma",
              kind="definition", residual=
              lambda: sp.expand(K * ((x - 1) ** 2 / (2 * K) + ms / 2 * Lam ** (1 / ms) * x ** (2 / ms))
                                - h_sym(ms).subs(gam, K * Lam ** (1 / ms)))),
        Proof("m = 2: h_2'(1 - gamma) = 0 and h_2'' = 1 (x* = (1-gamma)_+, Tirer & Bruna's SVT)",
              lambda: (sp.diff(h_sym(2), x).subs(x, 1 - gam), sp.diff(h_sym(2), x, 2) - 1)),
    )


REDUCTION = ("the reduction of the deep UFM to K copies of h_m: the minimum of the penalty over all "
             "factorizations of the logits Zbar is (m/2) Lambda^(1/m) sum_j sigma_j(Zbar)^(2/m) (Súkeník et al. "
             "2023; its m = 2 case is the nuclear-norm lemma, its equality case proved in the imbalanced-CE entry for any size), and "
             "von Neumann's trace inequality aligning Zbar with I; the proofs here show the balanced DNC point "
             "attains it and is critical")

r"""Deep UFM (theory section 7): the m-factor scalar reduction, the jump transition, the origin as
a local minimum, deep neural collapse (DNC) where it is optimal, and the low-rank counterexample.

**Reduction** [derived]. MSE, one-hot, no bias, balanced, ``d_l >= K``. With ``m = L + 1``
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

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp
from scipy.optimize import minimize_scalar

import ufm
from proofs_check.catalog._common import K, grad_norm_at
from proofs_check.theorem import GTOL, Citation, Evaluator, Proof, Theorem
from ufm import DeepParams, DeepUFM, polish_relu

__all__ = [
    "THEOREMS",
    "dnc_params",
    "dnc_prediction",
    "gamma",
    "h",
    "jump_gamma",
    "layer_grams",
    "measure",
    "scalar_optimum",
    "srg_candidate",
    "DNC_EXPRESSIONS",
]

SUKENIK_2023 = Citation("Súkeník, Mondelli & Lampert", 2023, "NeurIPS", "2305.13165")
SUKENIK_2024 = Citation("Súkeník, Mondelli & Lampert", 2024, "preprint", "2405.14468")
TIRER_BRUNA = Citation("Tirer & Bruna", 2022, "ICML", "2202.08087")

x, gam, Lam = sp.symbols("x gamma Lambda", positive=True)
ms, mu = sp.symbols("m mu", positive=True)


def h_sym(m):
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


def deep_numbers(prob) -> dict:
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


def h(xv, m: int, g: float):
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


def _x_star(ev) -> tuple[float, float]:
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
    return _x_star(ev)


def _check_dnc_instance(prob):
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
    xs, _ = _x_star(ev)
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


def measure(prob: DeepUFM, params: DeepParams, names) -> dict:
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


def _dnc_assemble(prob, ev):
    p = _dnc_from(prob, ev)
    q = {"value": p["value"]}
    for name in _determined(prob)[1:]:
        l = int(name.split("[")[1][:-1])
        q[name] = (np.full(prob.K, p["sigma_W"][l - 1]) if name.startswith("sigma")
                   else p["gram_scale"][l - 1] * np.eye(prob.K))
    return q


def solve_deep(prob, *, restarts: int = 8, init_scale=1.0):
    """``ufm.minimize`` with restarts (default init: He/LeCun scale, which avoids the basin of the
    origin), then for ReLU models :func:`ufm.problems._deep.polish_relu` on the activation piece
    (kept when it is consistent with the piece and does not raise the value).
    Returns ``(params, info)`` with the certificate of the (polished) run and ``failed_starts``."""
    sol = ufm.minimize(prob, gtol=GTOL, restarts=restarts, init_scale=init_scale, throw=False)
    vals = np.asarray(sol.stats.get("restart_values", [sol.value]))
    if prob.activation == "relu":
        pol = polish_relu(prob, sol.params, throw=False)
        if (pol.converged and pol.stats["pattern_consistent"]
                and pol.value <= sol.value + 1e-12 * max(1.0, abs(sol.value))):
            sol = pol  # kept only on the same activation piece: its certificate is then the model's
    failed = int(np.sum(vals > sol.value * (1 + 1e-6) + 1e-12))
    return sol.params, {"grad_norm": sol.grad_norm, "converged": sol.converged, "failed_starts": failed,
                        "value": sol.value}


# ---- proofs ------------------------------------------------------------------------------------
def _factor_proofs():
    """Balanced factorization (m = 3, symbolic mu_i): s_i = Lambda^(1/2m) x^(1/m) / sqrt(mu_i)."""
    m = 3
    mus = sp.symbols("mu0:3", positive=True)
    Lm = sp.Mul(*mus)
    s = [Lm ** sp.Rational(1, 2 * m) * x ** sp.Rational(1, m) / sp.sqrt(mu) for mu in mus]
    pen = sum(mu * si**2 / 2 for mu, si in zip(mus, s))
    S = sp.symbols("s0:3", positive=True)
    phi = (sp.Mul(*S) - 1) ** 2 / 2 + sum(K * mu * Si**2 / 2 for mu, Si in zip(mus, S))
    hp = sp.diff(h_sym(m), x).subs(gam, K * Lm ** sp.Rational(1, m))
    return (
        Proof("balanced factors (m=3): prod s_i = x, and the penalty sum mu_i s_i^2/2 equals "
              "(m/2) Lambda^(1/m) x^(2/m), Lambda = prod mu_i",
              lambda: (sp.Mul(*s) - x, pen - sp.Rational(m, 2) * Lm ** sp.Rational(1, m) * x ** sp.Rational(2, m))),
        Proof("stationarity (m=3): s_i d phi/d s_i = x h_m'(x) at the balanced point, phi = (prod s - 1)^2/2 "
              "+ sum K mu_i s_i^2/2, so the DNC point is critical iff h_m'(x*) = 0",
              lambda: tuple(sp.simplify((S[i] * sp.diff(phi, S[i])).subs(dict(zip(S, s)))) - x * hp
                            for i in range(3))),
        Proof("K f = sum_j h_m(x_j): K[(x-1)^2/(2K) + (m/2) Lambda^(1/m) x^(2/m)] = h_m(x) with "
              "gamma = K Lambda^(1/m), Lambda = n lam_H prod lam (m = 3): the definition of gamma",
              kind="definition", residual=
              lambda: sp.expand(K * ((x - 1) ** 2 / (2 * K) + sp.Rational(3, 2) * Lam ** sp.Rational(1, 3)
                                     * x ** sp.Rational(2, 3)) - h_sym(3).subs(gam, K * Lam ** sp.Rational(1, 3)))),
        Proof("m = 2: h_2'(1 - gamma) = 0 and h_2'' = 1 (x* = (1-gamma)_+, Tirer & Bruna's SVT)",
              lambda: (sp.diff(h_sym(2), x).subs(x, 1 - gam), sp.diff(h_sym(2), x, 2) - 1)),
    )


_p = sp.symbols("p", positive=True)  # m = p + 2 > 2
_m_of_p = _p + 2


def _jump_residuals():
    hm = h_sym(_m_of_p)
    gc = DNC_EXPRESSIONS["gamma_c"].subs(ms, _m_of_p)
    xJ = (_m_of_p - 2) / (_m_of_p - 1)
    return (hm.subs({gam: gc, x: xJ}) - sp.Rational(1, 2), sp.diff(hm, x).subs({gam: gc, x: xJ}))


def _origin_residual():
    """(h_m(x) - h_m(0))/x^(2/m) - (m/2) gamma = x^(1-2/m)(x/2 - 1), with 1 - 2/m = p/(p+2) > 0."""
    hm = h_sym(_m_of_p)
    expo = 1 - 2 / _m_of_p
    ok = sp.simplify(sp.powsimp(sp.expand((hm - sp.Rational(1, 2)) / x ** (2 / _m_of_p) - _m_of_p / 2 * gam
                                          - x**expo * (x / 2 - 1)), force=True)) == 0
    return bool(ok and sp.simplify(expo - _p / (_p + 2)) == 0 and (_p / (_p + 2)).is_positive)


def _jump_proofs():
    return (
        Proof("jump, every m > 2 (m = p + 2, p > 0 symbolic): at gamma_c^m = (m-2)^(m-2)/(m-1)^(2(m-1)), "
              "h_m(x_J) = h_m(0) = 1/2 and h_m'(x_J) = 0 with x_J = (m-2)/(m-1)", _jump_residuals),
        Proof("m = 2: gamma_c = 1 (the expression at m = 2) and h_2'(1 - gamma) = 0, h_2'' = 1: "
              "x* = (1 - gamma)_+",
              lambda: (DNC_EXPRESSIONS["gamma_c"].subs(ms, 2) - 1, sp.diff(h_sym(2), x).subs(x, 1 - gam),
                       sp.diff(h_sym(2), x, 2) - 1)),
        Proof("d h_m/d gamma = (m/2) x^(2/m) >= 0 (every m): the optimal value h_m(x*(gamma)) is "
              "nondecreasing in gamma (envelope theorem), so the branches cross h = 1/2 once",
              lambda: sp.diff(h_sym(ms), gam) - ms / 2 * x ** (2 / ms)),
    )


def _origin_proofs():
    return (
        Proof("origin, every m > 2 (m = p + 2 symbolic): h_m'(x) = x - 1 + gamma x^(-p/(p+2)) -> +oo as "
              "x -> 0+", lambda: sp.Eq(sp.limit(sp.diff(h_sym(_m_of_p), x), x, 0, "+"), sp.oo)),
        Proof("origin, every m > 2: (h_m(x) - h_m(0))/x^(2/m) = (m/2) gamma + x^(1-2/m)(x/2 - 1) with "
              "1 - 2/m > 0, so h_m(x) > h_m(0) near 0+: x = 0 is a strict local minimum of h_m",
              _origin_residual),
        Proof("m = 2 is different: h_2'(0+) = gamma - 1 < 0 for gamma < 1 (the origin is a saddle)",
              lambda: sp.limit(sp.diff(h_sym(2), x), x, 0, "+") - (gam - 1)),
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
    return (Proof("SRG construction (r=5, K=10): class {a,b} -> e_a + e_b (rank 5, Gram 2I + A of the "
                  "triangular graph T(5), eigenvalues 6, 1 (x4), -2 (x5)); rows e_c + e_d - 1/2 then "
                  "ReLU give exactly I_10: rank 5 expands to rank 10 without a bias", residual),)


REDUCTION = ("the reduction of the deep UFM to K copies of h_m: the minimum of the penalty over all "
             "factorizations of the logits Zbar is (m/2) Lambda^(1/m) sum_j sigma_j(Zbar)^(2/m) (Súkeník et al. "
             "2023; its m = 2 case is the nuclear-norm lemma, proved in the imbalanced-CE entry for 2 x 2), and "
             "von Neumann's trace inequality aligning Zbar with I; the proofs here show the balanced DNC point "
             "attains it and is critical")


# ---- instances ---------------------------------------------------------------------------------
def _linear(K_=3, L=2, lam=4e-3, n_=2, lam_H=4e-3, width=None):
    width = K_ + 2 if width is None else width
    return DeepUFM(K=K_, n=n_, widths=(width,) * L, loss=ufm.MSE(), lam_W=lam, lam_H=lam_H, activation="linear")


def _lin_assume(prob):
    ok, why = _check_dnc_instance(prob)
    if ok and prob.activation != "linear":
        return False, "activation must be 'linear'"
    return ok, why


def _lin_random(rng):
    L = int(rng.integers(1, 4))
    lams = rng.uniform(1e-3, 2e-2, size=L)
    return DeepUFM(K=3, n=2, widths=(5,) * L, loss=ufm.MSE(), lam_W=lams.tolist(),
                   lam_H=float(rng.uniform(1e-3, 2e-2)), activation="linear")


DEEP_LINEAR = Theorem(
    name="Deep linear MSE UFM: K copies of h_m, DNC with K equal singular values per layer",
    citation=SUKENIK_2023,
    tag="derived",
    statement=("MSE, one-hot, no bias, balanced, linear layers, widths >= K, gamma away from the jump: "
               "f* = h_m(x*) (x* the global minimizer of h_m, m = L+1), sigma(W_l) = Lambda^(1/2m) "
               "x*^(1/m)/sqrt(lam_l) (K equal values), class means of layer l an orthogonal frame "
               "c_l I."),
    assumptions=_lin_assume,
    assemble=_dnc_assemble,
    # shapes shared with other entries (compiled once per run): widths (3, 3) and (3, 3, 3) with the
    # jump transition, the unequal widths (4, 3) with the deep scalar bound (duality)
    instances=lambda: [_linear(3, 2, width=3), _linear(3, 3, lam=[2e-3, 8e-3, 4e-3], width=3),
                       DeepUFM(K=3, n=2, widths=(4, 3), loss=ufm.MSE(), lam_W=[5e-3, 2e-3], lam_H=1e-2,
                               activation="linear")],
    random_instance=_lin_random,
    measure=measure,
    expressions=DNC_EXPRESSIONS,
    variables=deep_numbers,
    proofs=_factor_proofs() + _jump_proofs()[:2],
    solve=solve_deep,
    assumed=(REDUCTION,),
)


def _jump_instances():
    out = []
    for m in (3, 4):
        for f in (0.8, 1.1):
            lam = f * jump_gamma(m) / (3 * 2 ** (1 / m))  # K = 3, n = 2: gamma = K n^(1/m) lam
            out.append(DeepUFM(K=3, n=2, widths=(3,) * (m - 1), loss=ufm.MSE(), lam_W=lam, lam_H=lam,
                               activation="linear"))
    return out


def _jump_solve(prob):
    """Best of starts at a large scale (the nonzero branch) and a small one (the origin's basin)."""
    runs = [ufm.minimize(prob, gtol=GTOL, restarts=r, init_scale=s, throw=False) for s, r in ((1.0, 8), (1e-2, 1))]
    sol = min(runs, key=lambda s: s.value)
    return sol.params, {"grad_norm": sol.grad_norm, "converged": sol.converged}


def _jump_assume(prob):
    if not isinstance(prob, DeepUFM) or prob.activation != "linear" or prob.L < 2:
        return False, "needs a linear DeepUFM with L >= 2"
    return _check_dnc_instance(prob)


JUMP = Theorem(
    name="Deep UFM jump transition: x* jumps from (m-2)/(m-1) to 0 at gamma_c",
    citation=SUKENIK_2023,
    tag="derived",
    statement=("m >= 3: h_m's nonzero minimizer exists up to and beyond gamma_c^m = (m-2)^(m-2)/"
               "(m-1)^(2(m-1)), where h_m(x_J) = h_m(0) = 1/2 with x_J = (m-2)/(m-1); below gamma_c the "
               "solver's value is h_m(x*) < 1/2, above it the zero solution (value 1/2) is global."),
    assumptions=_jump_assume,
    assemble=_dnc_assemble,
    instances=_jump_instances,
    measure=measure,
    expressions=DNC_EXPRESSIONS,
    variables=deep_numbers,
    proofs=_jump_proofs(),
    solve=_jump_solve,
    assumed=(REDUCTION,),
)


def _origin_assemble(prob, ev):
    lams = [float(prob.lam_H)] + list(np.asarray(prob.lams, float))
    return {"hessian lambda_min at 0": min(lams), "hessian lambda_max at 0": max(lams)}


def _origin_measure(prob, params, names):
    lo, hi = ufm.hessian_extreme_eigs(prob, prob.zeros())
    return {"hessian lambda_min at 0": lo, "hessian lambda_max at 0": hi}


def _origin_solve(prob):
    """No optimization: the point is the origin itself; its gradient norm is the certificate (it must
    vanish: the data term's gradient is a product of factors that are all zero there)."""
    zero = prob.zeros()
    g = grad_norm_at(prob, zero)
    return zero, {"grad_norm": g, "converged": g <= 1e-14}


ORIGIN = Theorem(
    name="Deep UFM, m >= 3: the origin is a local minimum (Hessian = diag of the lams)",
    citation=SUKENIK_2023,
    tag="derived",
    statement=("For L >= 2 weight layers without bias the logits are products of >= 3 factors, so the "
               "data term has zero gradient and zero Hessian at 0: the Hessian there is diag(lam_H, "
               "lam_1, ..., lam_L) > 0, a strict local minimum (gradient methods started small stall)."),
    assumptions=lambda p: ((True, "") if isinstance(p, DeepUFM) and p.L >= 2 and not p.has_bias
                           else (False, "needs a DeepUFM with L >= 2 and no bias")),
    assemble=_origin_assemble,
    instances=lambda: [_linear(3, 2), DeepUFM(K=3, n=2, widths=(4, 4, 4), loss=ufm.CrossEntropy(),
                                              lam_W=[1e-3, 2e-3, 3e-3], lam_H=5e-3)],
    measure=_origin_measure,
    proofs=_origin_proofs(),
    solve=_origin_solve,
    no_closed_form=("no SymPy expression: the prediction is read off the problem, the Hessian at 0 being "
                    "diag(lam_H I, lam_1 I, ..., lam_L I) (extreme eigenvalues min and max of the lams); the "
                    "solver side is ufm.hessian_extreme_eigs"),
    assumed=("the data term has zero gradient and zero Hessian at 0 when every logit is a product of >= 3 "
             "factors (argued in the statement; the solve checks the gradient)",),
)


def _relu_assume(prob, *, K2=False, L2=False):
    ok, why = _check_dnc_instance(prob)
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
    citation=SUKENIK_2023,
    tag="paper",
    statement=("Binary MSE deep UFM with ReLU, any L: the global minimizers are DNC points, f* = h_m(x*); "
               "post-ReLU class means of layers >= 2 form an orthogonal frame c_l I and W_l (l >= 2) has "
               "K equal singular values. Pre-activations of layer 1 are not unique (not compared)."),
    assumptions=lambda p: _relu_assume(p, K2=True),
    assemble=_dnc_assemble,
    instances=lambda: [DeepUFM(K=2, n=2, widths=(4, 4, 4), loss=ufm.MSE(), lam_W=5e-3, lam_H=5e-3)],
    measure=measure,
    solve=solve_deep,
    expressions=DNC_EXPRESSIONS,
    variables=deep_numbers,
    proofs=_factor_proofs(),
    assumed=("that the DNC points are the global minimizers of the binary ReLU model (Súkeník et al. 2023, "
             "Theorem for K = 2); the proofs are the linear model's (a DNC point is nonnegative, so the "
             "ReLUs act as the identity on it)", REDUCTION),
)

TWO_LAYER = Theorem(
    name="Extended UFM (L = 2, ReLU): DNC closed form with m = 3",
    citation=TIRER_BRUNA,
    tag="derived",
    statement=("Two weight layers with a ReLU between (Tirer & Bruna's extended UFM), MSE, K classes: "
               "f* = h_3(x*), post-ReLU class means c_2 I, W_2 with K equal singular values "
               "sigma_2 = Lambda^(1/6) x*^(1/3)/sqrt(lam_2); H_1 and W_1 are not unique."),
    assumptions=lambda p: _relu_assume(p, L2=True),
    assemble=_dnc_assemble,
    # one compiled shape (K = 3, widths 5): the instances differ in their lams only, which minimize
    # traces (a ReLU model's compilation dominates this entry's cost)
    instances=lambda: [DeepUFM(K=3, n=2, widths=(5, 5), loss=ufm.MSE(), lam_W=5e-3, lam_H=5e-3),
                       DeepUFM(K=3, n=2, widths=(5, 5), loss=ufm.MSE(), lam_W=[1e-2, 4e-3], lam_H=8e-3)],
    measure=measure,
    solve=solve_deep,
    expressions=DNC_EXPRESSIONS,
    variables=deep_numbers,
    proofs=_factor_proofs(),
    assumed=("that DNC points are the global minimizers of the two-layer ReLU model (derived from Tirer & "
             "Bruna's extended UFM; confirmed numerically by the solves, not proved); the proofs are the "
             "linear model's", REDUCTION),
)


# ---- the low-rank counterexample ---------------------------------------------------------------
def _srg_blocks(r: int):
    edges = list(itertools.combinations(range(r), 2))
    X0 = np.array([[1.0 if a in e else 0.0 for e in edges] for a in range(r)])  # (r, K)
    Bp = X0.T.copy()  # rows e_c + e_d
    return X0, Bp


def srg_candidate(prob: DeepUFM, r: int, *, e: int | None = None, starts: int = 6, seed: int = 0):
    """Optimize the free scalars of :func:`ufm.problems.graph_params` (``ufm.minimize`` from ``starts`` random
    scalar vectors) with the expansion at layer ``e`` (default ``L - 1``, the best: for K = 10,
    lam = 0.004 the values with ``e < L - 1`` were above the DNC value); returns
    ``(value, params, e)`` of the best. The value is ``prob.objective`` at explicit parameters, so
    it is an upper bound on the deep UFM's optimum."""
    if prob.K != r * (r - 1) // 2:
        raise ValueError(f"r must satisfy K = r(r-1)/2, got r={r}, K={prob.K}")
    rng = np.random.default_rng(seed)
    best = (np.inf, None, None)
    for ee in [prob.L - 1 if e is None else e]:
        sp_ = ufm.problems.GraphCandidate(prob, r, ee)
        for i in range(starts):  # the first start: a = 1, c = s = t = 0: H = X0, identities, relu(B X0) = I
            th0 = np.asarray(sp_.init(None)) if i == 0 else np.concatenate(
                [np.exp(rng.normal(0, 0.3, prob.L + 1)), rng.normal(0, 0.3, prob.L),
                 [abs(rng.normal(0, 0.3)), rng.normal(0, 0.1)]])
            # a short fixed-step gradient flow first: L-BFGS's first steps from th0 can jump onto
            # the dead-ReLU plateau (value 1/2); then the certified polish
            flow = ufm.gradient_flow(sp_, t1=100.0, dt=0.02, params0=jnp.asarray(th0),
                                     saveat=ufm.SaveAt(t1=True, params=False), throw=False)
            sol = ufm.minimize(sp_, params0=flow.final, gtol=1e-10, throw=False)
            if np.isfinite(sol.value) and sol.value < best[0]:
                best = (sol.value, sp_.build(sol.params), ee)
    return best


def _lowrank_assemble(prob, ev):
    v = ev("h(x)", x=_x_star(ev)[0])  # the DNC value only: no sigma(mu) in this theorem
    return {"DNC value h_m(x*) = best objective over the DNC family": v,
            "SRG candidate value (<= DNC value)": v, "solver value (<= DNC value)": v}


def _lowrank_measure(prob, params, names):
    return {"DNC value h_m(x*) = best objective over the DNC family": dnc_value_by_search(prob),
            "SRG candidate value (<= DNC value)": srg_candidate(prob, 5, starts=3)[0],
            "solver value (<= DNC value)": float(prob.objective(params))}


LOW_RANK = Theorem(
    name="Deep ReLU UFM, K = 10, L = 4: low-rank solutions beat DNC (never assert equality)",
    citation=SUKENIK_2024,
    tag="paper",
    statement=("K = 10, L = 4, all lam = 0.004, widths 30, n = 1: the strongly-regular-graph candidate "
               "(rank 5 class means in the hidden layers, ReLU expansion to rank 10) and the solver both "
               "reach a value below the DNC value h_5(x*) ~ 0.0992."),
    assumptions=lambda p: _relu_assume(p) if p.K == 10 else (False, "needs K = 10"),
    assemble=_lowrank_assemble,
    # sigma(mu) builds the DNC point; here the DNC point is searched numerically (the measured side)
    expressions={k: v for k, v in DNC_EXPRESSIONS.items() if k != "sigma(mu)"},
    variables=deep_numbers,
    instances=lambda: [DeepUFM(K=10, n=1, widths=(30,) * 4, loss=ufm.MSE(), lam_W=0.004, lam_H=0.004)],
    measure=_lowrank_measure,
    proofs=_srg_proofs(),
    solve=lambda prob: solve_deep(prob, restarts=3, init_scale=None),
    slow=True,
    upper_bounds=("SRG candidate value (<= DNC value)", "solver value (<= DNC value)"),
)

THEOREMS = [DEEP_LINEAR, JUMP, ORIGIN, DNC_BINARY, TWO_LAYER, LOW_RANK]

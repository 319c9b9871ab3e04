"""Derivatives of certified minimizers (``ufm.implicit_invariant``): against SymPy's derivative of
the catalog's closed form, against finite differences of certified solves, and the envelope
theorem (the value's derivative is the objective's partial derivative at the minimizer)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import ufm
from proofs_check import closed_forms as cf

SOLVE = {"order": "second", "gtol": 1e-12}


def w_norm2(prob, x):
    return jnp.sum(x.W**2)


def total(theorem, name: str, **renames: str) -> sp.Expr:
    """The theorem's expression ``name`` with every sub-expression substituted (a closed form in
    the problem's numbers only); ``renames`` maps a symbol to the expression it stands for."""
    ex = {k: sp.sympify(v) for k, v in theorem.expressions.items()}
    names = {**{k: k for k in ex}, **renames}
    e = ex[name]
    for _ in range(10):
        subs = {s: ex[names[s.name]] for s in e.free_symbols if s.name in names and names[s.name] != name}
        if not subs:
            return e
        e = e.subs(subs)
    raise AssertionError(f"{name}: substitution did not terminate")


def sympy_derivative(expr: sp.Expr, var: str, numbers: dict) -> float:
    sym = next(s for s in expr.free_symbols if s.name == var)
    d = sp.diff(expr, sym)
    return float(d.subs({s: numbers[s.name] for s in d.free_symbols}))


@settings(max_examples=4, deadline=None)
@given(st.floats(1e-3, 2e-2), st.floats(1e-3, 2e-2))
def test_ce_etf_scale_derivative_matches_sympy(lam_W, lam_H):
    """d||W*||_F^2 / d lam for the CE simplex ETF (K = 3, n = 2, d = 4): the implicit function
    theorem on the certified solve against SymPy's derivative of K ||w_k||^2 (g* substituted)."""
    prob = ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy(), lam_W=lam_W, lam_H=lam_H)
    th = cf.theorem_for(prob)
    expr = sp.Symbol("K") * total(th, "||w_k||^2", g="g*")
    numbers = {"K": 3, "n": 2, "lambda_W": lam_W, "lambda_H": lam_H}
    if not float(expr.subs({s: numbers[s.name] for s in expr.free_symbols})) > 0:
        return  # the collapsed (zero) branch: the scale is 0 and not differentiable at the threshold
    g = ufm.implicit_invariant(prob, w_norm2, **SOLVE)
    grad = jax.grad(g)({"lam_W": lam_W, "lam_H": lam_H})
    for field, var in (("lam_W", "lambda_W"), ("lam_H", "lambda_H")):
        want = sympy_derivative(expr, var, numbers)
        np.testing.assert_allclose(float(grad[field]), want, rtol=1e-8, atol=0)


def test_mse_gram_derivative_matches_finite_differences():
    """MSE (no bias): d tr(W*^T W*) and d||H*||_F^2 by the implicit function theorem against central
    differences of certified solves (step 1e-5 relative: truncation ~1e-10, solve noise
    gtol / step ~1e-7)."""
    prob = ufm.UFM(K=3, n=2, d=4, loss=ufm.MSE(), lam_W=2e-3, lam_H=1e-3)
    fns = {"W": w_norm2, "H": lambda p, x: jnp.sum(x.H**2)}
    for name, fn in fns.items():
        g = ufm.implicit_invariant(prob, fn, **SOLVE)
        at = {"lam_W": 2e-3, "lam_H": 1e-3}
        jac = jax.jacfwd(g)(at)
        for field in at:
            h = 1e-5 * at[field]
            up, down = g({**at, field: at[field] + h}), g({**at, field: at[field] - h})
            np.testing.assert_allclose(float(jac[field]), float((up - down) / (2 * h)), rtol=1e-6, atol=0,
                                       err_msg=f"d{name}/d{field}")


def test_value_derivative_is_the_envelope():
    """d f* / d lam equals the objective's partial derivative at the minimizer (the theta term
    vanishes since grad_theta f = 0): the two computations share nothing but the solve."""
    prob = ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy(), lam_W=4e-3, lam_H=6e-3, lam_b=1e-3)
    at = {"lam_W": 4e-3, "lam_H": 6e-3, "lam_b": 1e-3}
    g = ufm.implicit_invariant(prob, lambda p, x: p.objective(x), wrt=tuple(at), **SOLVE)
    grad = jax.grad(g)(at)
    theta = ufm.minimize(prob, **SOLVE).params
    partial = jax.grad(lambda q: ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy(), **q).objective(theta))(
        {k: jnp.float64(v) for k, v in at.items()})
    for field in at:  # atol: the balanced bias is 0 at the minimizer, so d f*/d lam_b is ~1e-28
        np.testing.assert_allclose(float(grad[field]), float(partial[field]), rtol=1e-9, atol=1e-14)


@pytest.mark.parametrize("kwargs, match", [
    ({"wrt": ("lam_X",)}, "lam_X"),
    ({"wrt": ("K",)}, "size"),
    ({"wrt": ("lam_b",)}, "lam_b"),
    ({"wrt": ()}, "wrt"),
    ({"wrt": ("lam_W", "lam_W")}, "wrt"),
    ({"cg_tol": 0.0}, "cg_tol"),
    ({"cg_tol": 2.0}, "cg_tol"),
    ({"cg_maxiter": 0}, "cg_maxiter"),
])
def test_bad_arguments_raise_before_any_solve(kwargs, match):
    prob = ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=5e-3)
    with pytest.raises(ValueError, match=match):
        ufm.implicit_invariant(prob, w_norm2, **kwargs)


def test_constrained_problems_are_refused():
    prob = ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=5e-3, nonneg=True)
    with pytest.raises(ValueError, match="inequality constraints"):  # before any solve
        ufm.implicit_invariant(prob, w_norm2)

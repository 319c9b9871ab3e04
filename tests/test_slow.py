"""Larger instances (select with ``pytest -m slow``)."""

import numpy as np
import pytest

import ufm
from proofs_check import closed_forms as cf

pytestmark = pytest.mark.slow


def test_certified_ce_minimizer_at_benchmark_size():
    """K=10, n=100, d=64 (the issue's size): certificate <= 1e-10 and the ETF closed form."""
    prob = ufm.UFM(K=10, n=100, d=64, loss=ufm.CrossEntropy(), lam_W=5e-4, lam_H=5e-4, lam_b=5e-4)
    sol = ufm.minimize(prob, gtol=1e-12)
    assert sol.converged and sol.grad_norm <= 1e-10
    pred = cf.predict(prob)
    measured = cf.measure(prob, sol.params, pred.quantities)
    for name, value in pred.quantities.items():
        assert cf.rel_error(measured[name], value) <= 1e-8, name
    lam_min, lam_max = ufm.hessian_extreme_eigs(prob, sol.params, method="lanczos", num_iters=60)
    assert lam_min >= -1e-8 and lam_max > 0


@pytest.mark.parametrize("d", [2, 3])
def test_generalized_collapse_d_below_K_minus_1(d):
    """d < K-1 is a valid model: the solver certifies a critical point and NC1 still vanishes."""
    prob = ufm.UFM(K=5, n=3, d=d, loss=ufm.CrossEntropy(), lam_W=1e-3, lam_H=1e-3)
    sol = ufm.minimize(prob, starts=3, hessian=True)
    assert sol.converged and sol.hessian_eigs[0] >= -1e-8
    assert float(ufm.metrics.nc1(sol.params.H, prob.labels)) <= 1e-12
    assert np.linalg.matrix_rank(np.asarray(sol.params.W), tol=1e-6) == d


# ---- the mutation test against real solves (every theorem with expressions, --all included) ----
import dataclasses as _dc  # noqa: E402

import sympy as _sp  # noqa: E402

from proofs_check.catalog import all_theorems as _all_theorems  # noqa: E402


@pytest.mark.slow
@pytest.mark.parametrize("theorem", [t for t in _all_theorems() if t.expressions], ids=lambda t: t.name[:40])
def test_mutation_against_solves(theorem):
    """Replacing any expression of a theorem makes some numeric row of a real solve fail."""
    solved = []
    for prob in theorem.instances():
        predicted = theorem.predict(prob)
        measured, info = theorem.solve_and_measure(prob, predicted)
        assert all(r["passed"] for r in theorem.compare(prob, predicted, measured, info))
        solved.append((prob, measured, info))
    with np.errstate(all="ignore"):
        for name, expr in theorem.expressions.items():
            caught = False
            for new in (expr * _sp.Rational(6, 5) + _sp.Rational(1, 5), expr * _sp.Rational(4, 5) - _sp.Rational(1, 5),
                        -expr, expr + 1):
                mutated = _dc.replace(theorem, expressions={**theorem.expressions, name: new})
                for prob, measured, info in solved:
                    try:
                        rows = mutated.compare(prob, mutated.predict(prob), measured, info)
                    except (ValueError, KeyError, ZeroDivisionError, RuntimeError):
                        caught = True
                        continue
                    caught |= any(not r["passed"] for r in rows if r["kind"] in ("numeric", "bound", "strict bound"))
            assert caught, name

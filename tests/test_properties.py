"""Property tests with reach: whole problems drawn over K 2..8, n 1..6 (balanced and imbalanced),
d 1..2K, every loss and bias mode, signed and nonnegative features, checked against every catalog
theorem whose assumptions accept them.

The default (fast) hypothesis profile keeps these cheap; ``UFM_HYPOTHESIS_PROFILE=thorough``
(``tests/conftest.py``) draws 200 examples per property. The solve-based property is marked slow
(every new shape compiles ``ufm.minimize``): run it with
``UFM_HYPOTHESIS_PROFILE=thorough pytest -m slow tests/test_properties.py``.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ufm
import ufm.testing
from proofs_check import closed_forms as cf
from proofs_check.catalog import all_theorems

UFM_THEOREMS = [t for t in all_theorems() if isinstance(t.instances()[0], ufm.UFM)
                and t.instances()[0].lam_W > 0]


def _problems():
    """K in 2..8, then a problem of that K with d in 1..2K (ufm.testing draws n in 1..6, balanced
    or not, the loss, the bias mode and the sign of the features)."""
    return st.integers(2, 8).flatmap(lambda K: ufm.testing.ufm_problems(
        min_K=K, max_K=K, min_d=1, max_d=2 * K, balanced=None, nonneg=None))


def _accepting(prob):
    return [t for t in UFM_THEOREMS if t.assumptions(prob)[0]]


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(prob=_problems())
def test_predictions_of_every_accepting_theorem_are_finite_and_agree(prob):
    """Every theorem whose assumptions accept a drawn problem predicts finite invariants, and
    ``closed_forms.predict`` (which dispatches to the catalog) agrees with it where both apply."""
    for th in _accepting(prob):
        if th.no_closed_form:
            continue
        pred = th.predict(prob)
        assert all(np.all(np.isfinite(np.asarray(v, float))) for v in pred.values()), th.name
        ok, _ = cf.assumptions(prob)
        if ok and cf.theorem_for(prob) is th:
            other = cf.predict(prob).quantities
            assert all(cf.rel_error(other[q], v) == 0.0 for q, v in pred.items())


@pytest.mark.slow
@settings(suppress_health_check=[HealthCheck.too_slow])
@given(prob=_problems())
def test_solver_meets_every_theorem_that_accepts_the_problem(prob):
    """``ufm.minimize`` converges (certificate 1e-10 under the box constraint too), and every
    catalog theorem whose assumptions accept the problem passes all its rows on it."""
    sol = ufm.minimize(prob, gtol=1e-10, starts=2, throw=False)
    assert sol.converged, (prob, sol.result, sol.grad_norm)
    for th in _accepting(prob):
        rows = th.check(prob)
        bad = [(r["quantity"], r["rel_error"]) for r in rows if not r["passed"]]
        assert not bad, (th.name, bad)

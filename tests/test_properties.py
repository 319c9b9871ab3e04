"""Property tests with reach: whole problems drawn over K 2..8, n 1..6 (balanced and imbalanced),
d 1..2K, every loss and bias mode, signed and nonnegative features, checked against every catalog
theorem whose assumptions accept them.

The default (fast) hypothesis profile keeps these cheap; ``UFM_HYPOTHESIS_PROFILE=thorough``
(``tests/conftest.py``) draws 200 examples per property. The solve-based property is marked slow
(every new shape compiles ``ufm.minimize``): run it with
``UFM_HYPOTHESIS_PROFILE=thorough pytest -m slow tests/test_properties.py``.
"""

import jax
import jax.numpy as jnp
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


def _realize(prob, q):
    """A point with the predicted invariants ``q``, built from them alone.

    MSE theorems predict the collapsed logits ``Z = W Hbar``: with ``Z D^{1/2} = U S V^T`` the
    balanced factors are ``W = (lam_H/lam_W)^{1/4} U S^{1/2}`` and ``Hbar D^{1/2} = (lam_W/lam_H)^{1/4}
    S^{1/2} V^T``. The cross-entropy family predicts a simplex ETF: rows of squared norm ``a2 =
    w_norm2`` and ``h_k = c w_k`` with ``c^2 = h_norm2 / w_norm2``. The bias is the predicted one
    (zero for the ETF)."""
    K, d = prob.K, prob.d
    counts = np.asarray(prob.counts, float)
    lw, lh = float(prob.lam_W), float(prob.lam_H)
    if "logit_means" in q:
        U, s, Vt = np.linalg.svd(np.asarray(q["logit_means"]) * np.sqrt(counts), full_matrices=False)
        # a direction the prediction shrinks to zero comes back from the SVD as ~1e-16, whose square
        # root (~1e-8) would be a real displacement: singular values below rounding are zero
        s = np.where(s < 1e-12 * max(float(s.max()), 1e-300), 0.0, s)
        W = (lh / lw) ** 0.25 * U * np.sqrt(s)
        Hbar = (lw / lh) ** 0.25 * np.sqrt(s)[:, None] * Vt / np.sqrt(counts)
    else:
        a2 = float(q["w_norm2"][0])
        c = np.sqrt(float(q["h_norm2"][0]) / a2) if a2 > 0 else 0.0
        W = np.sqrt(a2) * np.asarray(ufm.geometry.simplex_etf(K, d))  # unit rows, scaled
        Hbar = c * W.T
    W = np.pad(W, ((0, 0), (0, d - W.shape[1])))
    Hbar = np.pad(Hbar, ((0, d - Hbar.shape[0]), (0, 0)))
    b = q.get("bias", q.get("bias_centred"))
    b = None if not prob.has_bias else jnp.asarray(np.zeros(K) if b is None else np.asarray(b, float))
    return ufm.Params(jnp.asarray(W), jnp.asarray(Hbar[:, prob.labels]), b), W, Hbar


def _check_closed_form_by_the_objective(prob):
    """The closed form that :mod:`proofs_check.closed_forms` gives for ``prob``, checked against
    ufm's own objective (independent of the catalog's expressions): at the point built from the
    predicted invariants alone (:func:`_realize`) the objective equals the predicted value and its
    gradient vanishes."""
    q = cf.predict(prob).quantities
    params, W, Hbar = _realize(prob, q)
    # the point has the predicted Grams (so it is the predicted minimizer, up to a rotation)
    scale = max(1.0, float(np.max(np.abs(q["W_gram"]))), float(np.max(np.abs(q["Hbar_gram"]))))
    np.testing.assert_allclose(W @ W.T, q["W_gram"], rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(Hbar.T @ Hbar, q["Hbar_gram"], rtol=0, atol=1e-12 * scale)
    value = float(prob.objective(params))
    assert abs(value - q["value"]) <= 1e-11 * max(1.0, abs(q["value"])), (value, q["value"])
    grad = jax.grad(prob.objective)(params)
    grad_norm = float(np.sqrt(sum(np.sum(np.asarray(g) ** 2) for g in jax.tree_util.tree_leaves(grad))))
    assert grad_norm <= 1e-9 * max(1.0, abs(value)), grad_norm


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(prob=_problems())
def test_predictions_of_every_accepting_theorem_are_finite(prob):
    """Every theorem whose assumptions accept a drawn problem predicts finite invariants; where
    the problem has a closed form, that closed form passes :func:`_check_closed_form_by_the_objective`."""
    for th in _accepting(prob):
        if th.no_closed_form:
            continue
        pred = th.predict(prob)
        assert all(np.all(np.isfinite(np.asarray(v, float))) for v in pred.values()), th.name
    if cf.assumptions(prob)[0]:
        _check_closed_form_by_the_objective(prob)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(prob=st.integers(2, 8).flatmap(lambda K: ufm.testing.closed_form_problems(
    min_K=K, max_K=K, max_d=2 * K, balanced=None)))
def test_every_closed_form_is_a_critical_point_with_its_value(prob):
    """Problems drawn inside the closed forms (K 2..8, d up to 2K, every loss, bias mode and
    balance the closed forms cover, both sides of each threshold)."""
    _check_closed_form_by_the_objective(prob)


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

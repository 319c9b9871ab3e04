"""The class-level convex program (proofs_check.convex) and the imbalanced-CE catalog.

The convex program is an independent ground truth: it must reproduce the closed forms where they
exist (balanced CE / LS / focal ETF scales, every MSE case of ``closed_forms.mse``), and the
catalog's theorems built on it must pass their checks against ``ufm.minimize``.
"""

import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ufm
from proofs_check import closed_forms as cf
from proofs_check import convex
from proofs_check.catalog import imbalanced_ce as cat
from proofs_check.theorem import describe
from tests.helpers import examples

TOL = 1e-8


def _closed_form_cases():
    E_pm = 2 * np.eye(4) - np.ones((4, 4))
    base = {"K": 4, "n": 5, "d": 5, "lam_W": 5e-3, "lam_H": 5e-3}
    cases = [
        {"loss": ufm.CrossEntropy(), "lam_b": 5e-3},
        {"loss": ufm.CrossEntropy()},
        {"loss": ufm.CrossEntropy(), "lam_b": 0.0},
        {"loss": ufm.LabelSmoothing(0.1)},
        {"loss": ufm.Focal(2.0), "lam_b": 5e-3},
        {"loss": ufm.MSE()},
        {"loss": ufm.MSE(), "lam_b": 0.0},
        {"loss": ufm.MSE(), "lam_b": 5e-3},
        {
            "loss": ufm.MSE(),
            "lam_b": 5e-3,
            "lam_W": 0.05,
            "lam_H": 0.02,
        },  # beyond the ETF phase boundary
        {"loss": ufm.MSE(E_pm)},
        {
            "loss": ufm.MSE(),
            "n": (6, 4, 2, 1),
            "lam_W": 2e-3,
            "lam_H": 1e-2,
        },  # Dang et al.: one class at 0
    ]
    return [ufm.UFM(**{**base, **c}) for c in cases]


@pytest.mark.parametrize("prob", _closed_form_cases(), ids=describe)
def test_agrees_with_closed_forms(prob):
    sol = convex.solve_class_level(prob)
    assert sol.converged, sol.residual
    predicted = cf.predict(prob).quantities
    mine = sol.quantities(prob)
    for q in ("value", "W_gram", "Hbar_gram", "bias", "bias_centred", "logit_means"):
        if q in predicted:
            assert cf.rel_error(mine[q], predicted[q]) <= TOL, (q, mine[q], predicted[q])


def test_solution_is_consistent():
    """W and Hbar factor Z and reproduce the Grams and the value (a collapsed minority)."""
    prob = ufm.UFM(
        K=4, n=(6, 6, 1, 1), d=5, loss=ufm.CrossEntropy(), lam_W=2e-2, lam_H=5e-3, lam_b=0.1
    )
    sol = convex.solve_class_level(prob)
    np.testing.assert_allclose(sol.W @ sol.Hbar, sol.Z, atol=1e-12)
    np.testing.assert_allclose(sol.W @ sol.W.T, sol.W_gram, atol=1e-12)
    np.testing.assert_allclose(sol.Hbar.T @ sol.Hbar, sol.Hbar_gram, atol=1e-12)
    params = ufm.Params(
        jnp.asarray(sol.W), jnp.asarray(sol.Hbar[:, prob.labels]), jnp.asarray(sol.b)
    )
    assert abs(float(prob.objective(params)) - sol.value) <= 1e-12 * max(1.0, abs(sol.value))
    assert sol.rank == np.count_nonzero(sol.singular_values) < prob.K


def test_rejects_bad_problems():
    with pytest.raises(ValueError, match="lam_W"):
        convex.solve_class_level(ufm.UFM(K=3, n=2, d=3, loss=ufm.CrossEntropy(), lam_W=0.0))
    with pytest.raises(ValueError, match="nonneg"):
        convex.solve_class_level(ufm.UFM(K=3, n=2, d=3, loss=ufm.CrossEntropy(), nonneg=True))


def test_max_iters_reports_not_converged():
    prob = ufm.UFM(K=4, n=(6, 6, 1, 1), d=5, loss=ufm.CrossEntropy(), lam_b=5e-3)
    sol = convex.solve_class_level(prob, max_iters=3)
    assert not sol.converged and sol.iterations == 3 and sol.residual > 1e-13


# ---- minority collapse with the convex program alone (cheap: no ufm.minimize) ------------------

# (K_A, K_B, n_A, n_B); each is a new shape (one compile per loss and bias mode), so the default
# run uses the first and ``-m slow`` the others.
GROUPS = [
    (2, 2, 6, 1),
    pytest.param((3, 2, 5, 2), marks=pytest.mark.slow),
    pytest.param((1, 3, 9, 2), marks=pytest.mark.slow),
]


def _two_groups(KA, KB, nA, nB, loss, lam_b, ratio, rho=1.5):
    counts = (nA,) * KA + (nB,) * KB
    a = float(loss.alpha) if isinstance(loss, ufm.LabelSmoothing) else 0.0
    tau = ratio * (1 - a) * np.sqrt(nB) / sum(counts)
    return ufm.UFM(
        K=KA + KB, n=counts, d=KA + KB + 1, loss=loss, lam_W=tau * rho, lam_H=tau / rho, lam_b=lam_b
    )


def _gap(sol, prob):
    B = cat.minority_classes(prob)
    return max(np.linalg.norm(sol.W[i] - sol.W[j]) for i in B for j in B if i < j) / np.linalg.norm(
        sol.W
    )


@pytest.mark.parametrize("groups", GROUPS)
@pytest.mark.parametrize(
    "loss", [ufm.CrossEntropy(), ufm.LabelSmoothing(0.2), ufm.MSE()], ids=["ce", "ls", "mse"]
)
@pytest.mark.parametrize("lam_b", [None, 0.0, 0.1])
def test_minority_threshold_is_sharp(groups, loss, lam_b):
    """Collapse exactly at (1-alpha) sqrt(n_B) = N sqrt(lam_W lam_H): gap > 0 at 0.999 of it,
    exactly 0 at 1.001."""
    below = _two_groups(*groups, loss, lam_b, 0.999)
    above = _two_groups(*groups, loss, lam_b, 1.001)
    s_below, s_above = convex.solve_class_level(below), convex.solve_class_level(above)
    assert s_below.converged and s_above.converged
    assert _gap(s_below, below) > 1e-3
    assert _gap(s_above, above) <= 1e-12


def test_theory_reference_threshold_is_wrong_for_label_smoothing_and_focal():
    """sqrt(n_B) <= N sqrt(lam_W lam_H) (docs/theory.md#minority-collapse) is not the threshold for
    label smoothing nor for focal."""
    # LS(0.2) at N sqrt(lam_W lam_H) = 1.05 (1-a) sqrt(n_B) = 0.84 sqrt(n_B): below the claim
    ls = _two_groups(2, 2, 6, 1, ufm.LabelSmoothing(0.2), None, 1.05)
    assert _gap(convex.solve_class_level(ls), ls) <= 1e-12  # already collapsed
    focal = _two_groups(2, 2, 6, 1, ufm.Focal(1.0), 0.1, 1.02)
    # focal: still separated past the claimed threshold
    assert _gap(convex.solve_class_level(focal), focal) > 1e-3


# ---- the catalog -----------------------------------------------------------------------------


@pytest.mark.parametrize("theorem", cat.THEOREMS, ids=lambda t: t.name)
def test_proofs(theorem):
    rows = theorem.prove()
    assert rows and all(r["passed"] for r in rows), [r for r in rows if not r["passed"]]


@pytest.mark.parametrize("theorem", cat.THEOREMS, ids=lambda t: t.name)
def test_check_instances(theorem):
    for prob in theorem.instances():
        rows = theorem.check(prob)
        failed = [(r["quantity"], r["rel_error"]) for r in rows if not r["passed"]]
        assert not failed, (describe(prob), failed)


def test_wrong_prediction_fails():
    th = cat.CONVEX_IMBALANCED

    def perturbed(prob, ev):
        q = th.assemble(prob, ev)
        return {**q, "W_gram": q["W_gram"] * (1 + 1e-6)}

    rows = dataclasses.replace(th, assemble=perturbed).check(th.instances()[0])
    status = {r["quantity"]: r["passed"] for r in rows}
    assert status["W_gram"] is False
    assert all(v for q, v in status.items() if q != "W_gram")


def test_minority_predictions_differ_by_side():
    for p in cat.MINORITY_COLLAPSED.instances():
        assert all(v == 0.0 for v in cat.MINORITY_COLLAPSED.predict(p).values())
    for p in cat.MINORITY_SEPARATED.instances():
        assert all(v > 0.1 for v in cat.MINORITY_SEPARATED.predict(p).values())


@pytest.mark.parametrize("theorem", cat.THEOREMS, ids=lambda t: t.name)
@settings(deadline=None, max_examples=examples(10))
@given(seed=st.integers(0, 2**32 - 1))
def test_random_instances_inside_assumptions(theorem, seed):
    prob = theorem.random_instance(np.random.default_rng(seed))
    ok, why = theorem.assumptions(prob)
    assert ok, why


@pytest.mark.parametrize(
    "theorem",
    [cat.CONVEX_IMBALANCED, cat.MINORITY_COLLAPSED, cat.MINORITY_SEPARATED],
    ids=lambda t: t.name,
)
@settings(deadline=None, max_examples=examples(5))
@given(seed=st.integers(0, 2**32 - 1))
def test_check_random_instances(theorem, seed):
    prob = theorem.random_instance(np.random.default_rng(seed))
    rows = theorem.check(prob)
    failed = [(r["quantity"], r["rel_error"]) for r in rows if not r["passed"]]
    assert not failed, failed

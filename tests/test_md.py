"""Memorization-dilation model: validation, labels, dilation measures, the fixed-frame closed
forms and the LS finite margin (to 1e-8 on hypothesis draws), KKT residuals of the radius constraints,
and the qualitative claims on a small grid."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ufm
from proofs_check.catalog import md as cat
from ufm import dilation as dl
from ufm import MemorizationDilation
from ufm import minimize as minimize_md  # the M-D model through the one front door
from tests.helpers import examples

TOL = 1e-8


def _md(**kw):
    base = {"K": 2, "n": 4, "d": 2, "loss": ufm.CrossEntropy(), "lam_W": 5e-3, "lam_H": 5e-3, "lam": 0.5, "eta": 0.25}
    base.update(kw)
    return MemorizationDilation(**base)


# ---- validation (no compilation) ------------------------------------------------------------
@pytest.mark.parametrize("kw,match", [
    ({"eta": 1.0}, "eta"), ({"eta": -0.1}, "eta"), ({"eta": float("nan")}, "eta"),
    ({"variant": "ball"}, "variant"), ({"lam": -1.0}, "lam"), ({"lam_W": -1e-3}, "lam_W"),
    ({"eps": 0.0}, "eps"), ({"n": 1}, "n"), ({"K": 1}, "K"), ({"eta": 0.9}, "clean sample"),
    ({"eta": None, "noise": [[0.5, 0.6], [0.5, 0.5]]}, "noise"),
    ({"noise": [[0.5, 0.5], [0.5, 0.5]]}, "not both"), ({"loss": "ce"}, "loss"),
])
def test_validation_names_the_argument(kw, match):
    with pytest.raises(ValueError, match=match):
        _md(**kw)


@pytest.mark.parametrize("alpha", [1.0, -0.1])
def test_label_smoothing_alpha_range(alpha):
    with pytest.raises(ValueError, match="alpha"):
        _md(loss=ufm.LabelSmoothing(alpha))


def test_labels_are_reproducible_and_uniform_over_other_classes():
    p = MemorizationDilation(K=4, n=7, d=4, loss=ufm.CrossEntropy(), eta=3 / 7)
    C = p.counts_matrix
    assert np.all(np.diag(C) == 4) and np.all(C.sum(1) == 7)
    assert np.all(C - np.diag(np.diag(C)) == 1 - np.eye(4, dtype=int))  # one to each other class
    np.testing.assert_array_equal(p.labels, MemorizationDilation(K=4, n=7, d=4, loss=ufm.CrossEntropy(), eta=3 / 7).labels)
    assert p.num_noisy == 12 and np.all(p.labels[p.noisy_mask] != p.true_labels[p.noisy_mask])
    T = np.full((3, 3), 0.1) + 0.7 * np.eye(3)
    q = MemorizationDilation(K=3, n=10, d=3, loss=ufm.CrossEntropy(), eta=None, noise=T)
    np.testing.assert_array_equal(q.counts_matrix, np.round(10 * T).astype(int))


# ---- dilation measures on constructed features (no solver) -----------------------------------
def test_dilation_measures_on_a_constructed_configuration():
    rho, s = 2.0, 0.3
    # K = 2: class 0 = columns 0..2 (column 2 noisy, labelled 1), class 1 = columns 3..5 (clean)
    H = np.array([[rho, rho, rho * (1 - s), 0, 0, 0], [0, 0, rho * s, rho, rho, rho]])
    y, yt = np.array([0, 0, 0, 1, 1, 1]), np.array([0, 0, 1, 1, 1, 1])
    D = rho * s * np.sqrt(2)
    np.testing.assert_allclose(dl.displacement(H, y, yt), [D], rtol=1e-14)
    np.testing.assert_allclose(dl.relative_displacement(H, y, yt), [s], rtol=1e-14)
    np.testing.assert_allclose(dl.class_spread(H, y, yt), [D / np.sqrt(3), 0.0], atol=1e-14)
    W = np.array([[1.0, -1.0], [-1.0, 1.0]])  # boundary h[0] = h[1]: the segment crosses it iff s > 1/2
    np.testing.assert_allclose(dl.segment_crossing(W, H, y, yt), [0.0], atol=1e-14)
    H2 = H.copy()
    H2[:, 2] = [rho * 0.2, rho * 0.8]  # s = 0.8: crosses at s = 1/2, fraction (0.8 - 0.5)/0.8
    np.testing.assert_allclose(dl.segment_crossing(W, H2, y, yt), [0.375], rtol=1e-14)
    assert float(dl.clean_mean_accuracy(W, H2, y, yt)) == 1.0
    assert float(dl.nc1_noisy(H2, yt)) > 0.0


# ---- symbolic proofs and the LS finite margin -----------------------------------------------
def test_symbolic_proofs():
    for th in cat.THEOREMS:
        for row in th.prove():
            assert row["passed"], (th.name, row["quantity"], row["measured"])


@settings(deadline=None, max_examples=examples(5))
@given(alpha=st.floats(0.02, 0.6))
def test_ls_margin_limit_is_finite(alpha):
    prob = ufm.UFM(K=3, n=2, d=4, loss=ufm.LabelSmoothing(alpha), lam_W=0.0, lam_H=0.0, nonneg=True)
    for row in cat.LS_FINITE_MARGIN.check(prob):
        assert row["passed"], row


# ---- the binary fixed frame to 1e-8 on hypothesis draws --------------------------------------
def _frame_instance(regime, variant, ls, lw, lh, alpha, where):
    loss = ufm.LabelSmoothing(alpha) if ls else ufm.CrossEntropy()
    kw = {"loss": loss, "variant": variant, "M": 1 if variant == "per_sample" else 2, "lw": lw, "lh": lh}
    lo, hi = cat._q_interval(kw, regime)
    return cat._ff(lam_=cat._lam_for(kw, lo + where * (hi - lo)), **kw)


THEOREM_OF = {"line": cat.FF_LINE, "face": cat.FF_FACE, "none": cat.FF_NONE}


@pytest.mark.parametrize("regime", ["line", "face", "none"])
@pytest.mark.parametrize("variant", ["per_sample", "radius"])
@settings(deadline=None, max_examples=examples(5))
@given(ls=st.booleans(), lw=st.floats(2e-3, 2e-2), lh=st.floats(2e-3, 2e-2), alpha=st.floats(0.02, 0.3),
       where=st.floats(0.1, 0.9))
def test_fixed_frame_closed_form(regime, variant, ls, lw, lh, alpha, where):
    prob = _frame_instance(regime, variant, ls, lw, lh, alpha, where)
    ok, why = THEOREM_OF[regime].assumptions(prob)
    assert ok, why
    for row in THEOREM_OF[regime].check(prob):
        assert row["passed"], row


def test_theory_reference_min_formula_is_not_the_minimizer_beyond_the_edge():
    """Regression: D = min((m + delta0)/g, sqrt2 rho) of docs/theory.md#memorization-dilation is wrong for
    q < sigma(-delta0); the minimizer leaves the line and D > sqrt2 rho."""
    prob = _frame_instance("face", "per_sample", False, 5e-3, 5e-3, 0.0, 0.5)
    rho = float(prob.rho)
    params, info = cat._ff_solve(prob)
    measured = cat._ff_measure(prob, params, ["dilation"])["dilation"]
    assert info["converged"] and measured > np.sqrt(2) * rho * (1 + 1e-3)


# ---- the full model: KKT residuals of the radius constraints ---------------------------------
@pytest.mark.parametrize("variant", ["radius", "per_sample"])
def test_full_model_certificate_and_multipliers(variant):
    prob = MemorizationDilation(K=3, n=5, d=3, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=5e-3, lam=2e-2,
                                eta=0.2, variant=variant)
    sol = ufm.minimize(prob, starts=2, gtol=1e-10, ctol=1e-10)
    assert sol.converged
    assert sol.grad_norm <= 1e-10 * max(1.0, abs(sol.value))
    if variant == "radius":
        res = sol.residuals  # signed: primal max_i c_i <= 0, dual min_i y_i >= 0
        assert res["stationarity"] == sol.grad_norm
        assert res["primal"] <= 1e-10 and res["complementarity"] <= 1e-10 and res["dual"] >= 0
        # stationarity in r_k > 0: lam/K = sum of the multipliers of class k's constraints
        y, k = sol.multipliers, prob.true_labels[prob.noisy_index]
        r = np.asarray(sol.params.r)
        for c in range(prob.K):
            if r[c] > 1e-6:
                np.testing.assert_allclose(y[k == c].sum(), float(prob.lam) / prob.K, rtol=1e-6)
        # radii equal the largest (smoothed) distance of the class's noisy features
        dist = np.asarray(prob.distances(sol.params))
        for c in range(prob.K):
            np.testing.assert_allclose(r[c], dist[k == c].max(), atol=1e-9)
    assert np.asarray(sol.params.H).min() >= 0.0


def test_new_lam_reuses_the_compiled_solver():
    prob = _md(variant="per_sample")
    s1 = minimize_md(prob, gtol=1e-10)
    s2 = minimize_md(dataclasses.replace(prob, lam=ufm.problems.as_float_array(0.7)), gtol=1e-10)
    assert s1.converged and s2.converged


# ---- qualitative claims on a small grid ------------------------------------------------------
def _D(prob, ctol=1e-9):
    sol = minimize_md(prob, starts=2, gtol=1e-9, ctol=ctol)
    return float(np.mean(dl.displacement(sol.params.H, prob.true_labels, prob.labels, prob.K)))


@pytest.mark.parametrize("variant", ["radius", "per_sample"])
def test_ls_dilates_less_than_ce(variant):
    for lam in (0.05, 0.5):
        D_ce = _D(_md(variant=variant, lam=lam))
        D_ls = _D(_md(variant=variant, lam=lam, loss=ufm.LabelSmoothing(0.2)))
        assert D_ce > 1e-3 and D_ls < D_ce


def test_radius_dilation_grows_with_noise():
    Ds = [_D(_md(n=4, eta=eta, lam=0.5)) for eta in (0.25, 0.5)]
    assert Ds[0] > 1e-3 and Ds[1] > Ds[0]


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["radius", "per_sample"])
def test_dilation_switches_off_earlier_for_ls(variant):
    lams = np.geomspace(0.05, 30.0, 12)

    def threshold(loss):
        # at D ~ 0 the smoothed norm (eps = 1e-6) stiffens the constraints: the augmented Lagrangian
        # reaches complementarity ~3e-9 there, ample for the question D <= 1e-4
        off = [lam for lam in lams if _D(_md(variant=variant, lam=lam, loss=loss), ctol=1e-8) <= 1e-4]
        return min(off) if off else np.inf

    t_ce, t_ls = threshold(ufm.CrossEntropy()), threshold(ufm.LabelSmoothing(0.2))
    assert np.isfinite(t_ls) and t_ls <= t_ce

"""The implicit-bias entry (Ji et al. 2022) and the d = K landscape entry (Shen & Gu 2024):
properties computed from the formulas and from constructed points, never numbers pasted from a run."""

import dataclasses

import jax
import numpy as np
import pytest
import sympy as sp
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import ufm
from proofs_check.catalog import all_theorems, ce_landscape_square, implicit_bias
from proofs_check.catalog._common import K, n


def _unreg(k, n_, d):
    return ufm.UFM(K=k, n=n_, d=d, loss=ufm.CrossEntropy(), lam_W=0.0, lam_H=0.0)


def _gamma_star(k, n_):
    return float(implicit_bias.GAMMA_STAR.subs({K: k, n: n_}))


def _etf_point(prob, a, c):
    """Rows of W a simplex ETF of norm a (in the first K coordinates, d >= K, or the K-1 coordinates of
    an orthonormal basis of 1-perp when d = K-1); every feature of class k equals c w_k."""
    k = prob.K
    P = np.eye(k) - np.ones((k, k)) / k
    _, U = np.linalg.eigh(P)
    basis = U[:, 1:]  # orthonormal basis of 1-perp, (K, K-1)
    W = np.zeros((k, prob.d))
    W[:, : k - 1] = a * np.sqrt(k / (k - 1)) * basis
    H = c * W[np.asarray(prob.labels)].T
    return W, H


# ---- the max-margin bound and its attainment ---------------------------------------------------


@settings(deadline=None, max_examples=25)
@given(k=st.integers(2, 6), n_=st.integers(1, 4), extra=st.integers(0, 2), seed=st.integers(0, 2**31 - 1),
       scale=st.floats(1e-2, 1e2))
def test_no_point_has_a_normalized_margin_above_gamma_star(k, n_, extra, seed, scale):
    prob = _unreg(k, n_, k - 1 + extra)
    rng = np.random.default_rng(seed)
    W = scale * rng.normal(size=(k, prob.d))
    H = scale * rng.normal(size=(prob.d, prob.N)) + W[np.asarray(prob.labels)].T  # often separating
    assert implicit_bias.normalized_margin(prob, W, H) <= _gamma_star(k, n_) * (1 + 1e-12)


@settings(deadline=None, max_examples=25)
@given(k=st.integers(2, 6), n_=st.integers(1, 4), a=st.floats(0.1, 10.0))
def test_the_etf_at_c_equal_one_over_sqrt_n_attains_gamma_star(k, n_, a):
    prob = _unreg(k, n_, k)
    W, H = _etf_point(prob, a, 1 / np.sqrt(n_))
    assert np.isclose(implicit_bias.normalized_margin(prob, W, H), _gamma_star(k, n_), rtol=1e-12, atol=0)
    # any other feature scale c is strictly below (gamma = 2c/((K-1)(1 + n c^2)))
    W, H = _etf_point(prob, a, 2 / np.sqrt(n_))
    assert implicit_bias.normalized_margin(prob, W, H) < _gamma_star(k, n_) * (1 - 1e-6)


@settings(deadline=None, max_examples=25)
@given(k=st.integers(2, 5), n_=st.integers(1, 3), seed=st.integers(0, 2**31 - 1), scale=st.floats(0.5, 3.0))
def test_the_smoothed_margin_is_below_the_normalized_margin(k, n_, seed, scale):
    prob = _unreg(k, n_, k)
    rng = np.random.default_rng(seed)
    W, H = _etf_point(prob, scale, 1 / np.sqrt(n_))
    W, H = W + 0.1 * rng.normal(size=W.shape), H + 0.1 * rng.normal(size=H.shape)
    params = ufm.Params(W=jax.numpy.asarray(W), H=jax.numpy.asarray(H), b=None)
    value = float(prob.objective(params))
    assume(np.isfinite(np.log(np.expm1(prob.N * value))))  # no underflow of the loss
    gamma = implicit_bias.normalized_margin(prob, W, H)
    assert implicit_bias.smoothed_margin(prob, value, W, H) <= gamma + 1e-12 * max(1.0, abs(gamma))


def test_the_bound_row_fails_when_gamma_star_is_too_small():
    """Mutation of the SymPy expression: gamma* lowered by 10% puts the ETF point above the bound."""
    th = implicit_bias.JI_IMPLICIT_BIAS
    prob = _unreg(3, 2, 3)
    W, H = _etf_point(prob, 3.0, 1 / np.sqrt(2))
    measured = {implicit_bias._Q_BOUND: implicit_bias.normalized_margin(prob, W, H)}
    low = dataclasses.replace(th, expressions={**th.expressions, "gamma*": th.expressions["gamma*"] * sp.Rational(9, 10)})
    ok = th.compare(prob, {implicit_bias._Q_BOUND: th.predict(prob)[implicit_bias._Q_BOUND]}, measured,
                    {"grad_norm": 0.0, "converged": True})
    bad = low.compare(prob, {implicit_bias._Q_BOUND: low.predict(prob)[implicit_bias._Q_BOUND]}, measured,
                      {"grad_norm": 0.0, "converged": True})
    assert all(r["passed"] for r in ok) and not bad[0]["passed"]


# ---- the trajectory measurements can fail ---------------------------------------------------------


def _record(prob, points, times):
    W = np.stack([p[0] for p in points])
    H = np.stack([p[1] for p in points])
    values = []
    for w, h in zip(W, H):
        values.append(float(prob.objective(ufm.Params(W=jax.numpy.asarray(w), H=jax.numpy.asarray(h), b=None))))
    return {"t": np.asarray(times, float), "value": np.asarray(values), "W": W, "H": H}


def test_a_trajectory_that_moves_away_from_the_etf_is_counted():
    prob = _unreg(3, 2, 3)
    th = implicit_bias.JI_IMPLICIT_BIAS
    names = list(th.predict(prob))
    times = implicit_bias.T1 * np.array([1e-2, 1e-1, 1.0])
    W0, H0 = _etf_point(prob, 2.0, 1 / np.sqrt(2))
    toward = [(W0 * s, H0 * s) for s in (1.0, 1.5, 2.0)]
    m = th.measure(prob, _record(prob, toward, times), names)
    assert m[implicit_bias._Q_DIST] == 0 and m[implicit_bias._Q_SMOOTH] == 0
    # tilt one class away from the ETF more and more: the Gram distances grow, the margin gap too
    tilt = np.zeros_like(W0)
    tilt[0, 2] = 1.0
    away = [(W0 * 2 + e * tilt, H0 * 2) for e in (0.0, 0.5, 1.0)]
    m = th.measure(prob, _record(prob, away, times), names)
    assert m[implicit_bias._Q_DIST] >= 1 and m[implicit_bias._Q_GAP] >= 1
    rows = th.compare(prob, th.predict(prob), m, {"grad_norm": 0.0, "converged": True})
    assert not all(r["passed"] for r in rows)


def test_the_implicit_bias_assumptions_name_what_fails():
    th = implicit_bias.JI_IMPLICIT_BIAS
    cases = {"lam_W = lam_H = 0": ufm.UFM(K=3, n=2, d=3, loss=ufm.CrossEntropy(), lam_W=1e-3, lam_H=0.0),
             "no bias": ufm.UFM(K=3, n=2, d=3, loss=ufm.CrossEntropy(), lam_W=0.0, lam_H=0.0, lam_b=0.0),
             "d >= K-1": _unreg(4, 1, 2),
             "balanced": ufm.UFM(K=3, n=(2, 1, 1), d=3, loss=ufm.CrossEntropy(), lam_W=0.0, lam_H=0.0),
             "cross-entropy": ufm.UFM(K=3, n=2, d=3, loss=ufm.MSE(), lam_W=0.0, lam_H=0.0)}
    for words, prob in cases.items():
        ok, why = th.assumptions(prob)
        assert not ok and words in why, (words, why)
    rng = np.random.default_rng(0)
    assert all(th.assumptions(th.random_instance(rng))[0] for _ in range(20))


# ---- the d = K census ---------------------------------------------------------------------------


def _census(kinds, gaps):
    s = len(kinds)
    z = np.zeros(s)
    return ufm.landscape.Census(init_scale=z, value=np.ones(s), kkt=z, min_eig=z, index=np.zeros(s, int),
                                kind=np.asarray(kinds), gap=np.asarray(gaps, float),
                                is_global=np.asarray(gaps) <= 1e-9, f_best=1.0, seconds=0.0, mode="map")


@pytest.mark.parametrize("kinds, gaps, failing", [
    (["minimum", "saddle"], [0.0, 0.3], set()),
    (["minimum", "minimum"], [0.0, 1e-3], {ce_landscape_square._Q_SPURIOUS}),
    (["minimum", "degenerate"], [0.0, 1e-3], {ce_landscape_square._Q_DEGENERATE}),
    (["saddle", "minimum"], [0.2, 1e-3], {ce_landscape_square._Q_SPURIOUS, ce_landscape_square._Q_FOUND}),
])
def test_the_census_rows_fail_exactly_on_a_spurious_or_non_strict_end_point(kinds, gaps, failing):
    th = ce_landscape_square.CE_SQUARE
    prob = th.instances()[0]
    predicted = th.predict(prob)
    measured = th.measure(prob, _census(kinds, gaps), list(predicted))
    rows = th.compare(prob, predicted, measured, {"grad_norm": 0.0, "converged": True})
    assert {r["quantity"] for r in rows if not r["passed"]} == failing


def test_the_d_equals_k_entries_refuse_other_dimensions_with_a_reason():
    for th in ce_landscape_square.THEOREMS:
        loss = ufm.MSE() if "MSE" in th.name else ufm.CrossEntropy()
        ok, why = th.assumptions(ufm.UFM(K=3, n=2, d=4, loss=loss, lam_W=5e-3, lam_H=5e-3))
        assert not ok and "d = K" in why
        assert all(th.assumptions(p)[0] for p in th.instances())
        assert all(p.d == p.K for p in th.instances())


def test_the_new_entries_are_registered_with_honest_tags():
    names = {th.name: th for th in all_theorems()}
    ji = implicit_bias.JI_IMPLICIT_BIAS
    assert ji.name in names and ji.tag == "derived" and "2110.02796" in ji.source and "1906.05890" in ji.source
    assert all(p.kind == "proof" for p in ji.proofs)
    for th in ce_landscape_square.THEOREMS:
        assert th.name in names and th.tag == "paper" and "2407.10702" in th.source
    assert not ce_landscape_square.CE_SQUARE.slow and ce_landscape_square.CE_SQUARE_SLOW.slow


@settings(deadline=None, max_examples=15)
@given(k=st.integers(2, 4), n_=st.integers(1, 3), lw=st.floats(1e-3, 1.0), lh=st.floats(1e-3, 1.0),
       loss=st.sampled_from(["ce", "mse"]), bias=st.booleans())
def test_the_origin_curvature_closed_form_matches_the_dense_hessian(k, n_, lw, lh, loss, bias):
    """The smallest Hessian eigenvalue at the origin is the expression's value, for CE and MSE, with and
    without a regularized bias, on both sides of kappa = 1/K; its sign follows kappa < 1/K."""
    prob = ufm.UFM(K=k, n=n_, d=k, loss=ufm.CrossEntropy() if loss == "ce" else ufm.MSE(), lam_W=lw, lam_H=lh,
                   lam_b=1.0 if bias else None)
    predicted = ce_landscape_square.CE_SQUARE.predict(prob)[ce_landscape_square._Q_ORIGIN]
    lo, _ = ufm.hessian_extreme_eigs(prob, ce_landscape_square._origin(prob), method="dense")
    assert np.isclose(float(lo), predicted, rtol=1e-10, atol=1e-12)
    kappa = np.sqrt(n_ * lw * lh)
    if abs(kappa * k - 1) > 1e-6:
        assert (predicted < 0) == (kappa < 1 / k)

"""The public hypothesis strategies of ``ufm.testing``: they draw valid problems inside their
bounds and regimes, and the solver reaches the closed forms on the problems they draw.

Solver tests use one shape, ``(K, n, d) = (3, 2, 4)``, and at most two loss types, so the jitted
``ufm.minimize`` compiles once per (loss type, bias mode) and is reused by every example.
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ufm
import ufm.testing as ut
from proofs_check import closed_forms as cf
from tests.helpers import class_means, etf_gram, examples, normalized

SIZES = [(3, 2, 4)]
TOL = 1e-8


def _kappa(prob):
    return math.sqrt(prob.n * float(prob.lam_W) * float(prob.lam_H))


def _threshold(prob):
    """Zero-solution threshold from docs/theory.md#ce-etf, #mse-no-bias, #nonnegative (not the module's own code)."""
    K, loss = prob.K, prob.loss
    if isinstance(loss, ufm.MSE):
        E = np.eye(K) if loss.encoding is None else np.asarray(loss.encoding)
        if prob.has_bias:
            E = E @ (np.eye(K) - np.ones((K, K)) / K)
        return np.linalg.svd(E, compute_uv=False)[0] / K  # K kappa = s_max (one-hot: 1)
    alpha = float(loss.alpha) if isinstance(loss, ufm.LabelSmoothing) else 0.0
    if prob.nonneg:
        return (1 - alpha) / K * math.sqrt((K - 1) / K)  # beta = K kappa / kp + alpha (K-1)/K
    return (1 - alpha) / K


def _predicted_zero(prob):
    return float(np.max(cf.predict(prob).quantities["w_norm2"])) == 0.0


# ---------------------------------------------------------------- regimes and validity


@pytest.mark.parametrize("regime", ["nonzero", "zero", "near_threshold"])
@settings(deadline=None, max_examples=examples(8))
@given(data=st.data())
def test_problems_are_valid_and_inside_their_regime(regime, data):
    prob = data.draw(ut.ufm_problems(regime=regime, nonneg=None))
    assert isinstance(prob, ufm.UFM) and prob.balanced and 2 <= prob.K <= 4
    if isinstance(prob.loss, ufm.Focal):  # threshold from the 1-D ETF reduction (section 2)
        ratio = _kappa(prob) / ut.kappa_threshold(prob.loss, prob.K, bias=ut.bias_of(prob),
                                                   nonneg=prob.nonneg)
    else:
        ratio = _kappa(prob) / _threshold(prob)
    if regime == "nonzero":
        assert 0.05 - 1e-12 <= ratio <= 0.9 + 1e-12
    elif regime == "zero":
        assert 1.1 - 1e-12 <= ratio <= 2.0 + 1e-12
    else:
        assert 1e-3 - 1e-12 <= abs(ratio - 1) <= 0.05 + 1e-12
    ok, _ = cf.assumptions(prob)
    if ok and regime != "near_threshold":  # the closed form agrees on which side we are
        assert _predicted_zero(prob) == (regime == "zero")


@settings(deadline=None, max_examples=examples(8))
@given(ut.closed_form_problems(balanced=False, losses=("mse",), regime="nonzero"))
def test_imbalanced_nonzero_regime_keeps_every_class(prob):
    """Dang et al. 2023: class k collapses to 0 iff sqrt(n_k) <= N sqrt(lam_W lam_H)."""
    assert not prob.balanced and len(set(prob.counts)) > 1
    tau = prob.N * math.sqrt(float(prob.lam_W) * float(prob.lam_H))
    assert tau < min(math.sqrt(c) for c in prob.counts)
    assert np.all(cf.predict(prob).quantities["w_norm2"] > 0)


@settings(deadline=None, max_examples=examples(8))
@given(ut.closed_form_problems(balanced=None,
                               losses=lambda K: ut.losses(encodings=True, K=K)))
def test_closed_form_problems_satisfy_the_assumptions(prob):
    ok, why = cf.assumptions(prob)
    assert ok, why
    assert not prob.nonneg


@settings(deadline=None, max_examples=examples(8))
@given(ut.closed_form_problems(losses=lambda K: ut.losses(kinds=("mse",), encodings=True, K=K),
                               regime="nonzero"))
def test_encoded_mse_nonzero_regime_avoids_singular_values(prob):
    """K kappa is at least 10% away from every singular value of the code (no degenerate SVT)."""
    E = np.eye(prob.K) if prob.loss.encoding is None else np.asarray(prob.loss.encoding)
    if prob.has_bias:
        E = E @ (np.eye(prob.K) - np.ones((prob.K, prob.K)) / prob.K)
    s = np.linalg.svd(E, compute_uv=False)
    Kk = prob.K * _kappa(prob)
    assert Kk < 0.9 * s[0] + 1e-12
    assert np.all(np.abs(s - Kk) >= 0.1 * Kk - 1e-12)


# ---------------------------------------------------------------- the solver on drawn problems


@pytest.mark.parametrize("kinds", [("ce", "ls"), ("mse",)])
@settings(deadline=None, max_examples=examples(6))
@given(data=st.data(), seed=st.integers(0, 2**16))
def test_minimize_reaches_closed_form_on_drawn_problems(kinds, data, seed):
    prob = data.draw(ut.closed_form_problems(sizes=SIZES, losses=kinds, regime="nonzero"))
    sol = ufm.minimize(prob, seed=seed, gtol=1e-12, starts=2)
    assert sol.converged, sol.result.message
    pred = cf.predict(prob)
    measured = cf.measure(prob, sol.params, pred.quantities)
    for name, value in pred.quantities.items():
        err = cf.rel_error(measured[name], value)
        assert err <= TOL, f"{pred.theorem}: {name} rel. error {err:.2e} on {prob}"
    if prob.loss.name != "mse":
        W = np.asarray(sol.params.W)
        np.testing.assert_allclose(normalized(W @ W.T), etf_gram(prob.K), atol=TOL)


@settings(deadline=None, max_examples=examples(6))
@given(prob=ut.closed_form_problems(sizes=SIZES, losses=("ce", "mse"), regime="zero"),
       seed=st.integers(0, 2**16))
def test_zero_regime_gives_the_zero_solution(prob, seed):
    sol = ufm.minimize(prob, seed=seed, gtol=1e-12)
    assert sol.converged, sol.result.message
    assert float(np.abs(np.asarray(sol.params.W)).max()) <= TOL
    assert _predicted_zero(prob)


# ---------------------------------------------------------------- bounds of the small strategies


@settings(deadline=None, max_examples=examples(8))
@given(data=st.data())
def test_problem_sizes_respect_bounds(data):
    min_K = data.draw(st.integers(2, 4))
    max_K = data.draw(st.integers(min_K, 5))
    prob = data.draw(ut.ufm_problems(min_K=min_K, max_K=max_K, min_d=2, max_d=5, balanced=None,
                                     bias="none"))
    assert min_K <= prob.K <= max_K and 2 <= prob.d <= 5 and prob.lam_b is None
    assert all(1 <= c <= 6 for c in prob.counts)


@settings(deadline=None, max_examples=examples(8))
@given(prob=ut.ufm_problems(sizes=[(3, 2, 4), (2, (1, 3), 2)], bias=("free", "reg")))
def test_sizes_fix_the_shapes(prob):
    assert (prob.K, prob.n, prob.d) in {(3, 2, 4), (2, (1, 3), 2)}
    assert prob.lam_b is not None and (float(prob.lam_b) == 0.0 or 1e-3 <= float(prob.lam_b) <= 1.0)


@settings(deadline=None, max_examples=examples(25))
@given(loss=ut.losses(max_alpha=0.3, max_gamma=1.5, encodings=True, K=3, max_D=4))
def test_losses_respect_bounds(loss):
    assert isinstance(loss, (ufm.CrossEntropy, ufm.LabelSmoothing, ufm.Focal, ufm.MSE))
    if isinstance(loss, ufm.LabelSmoothing):
        assert 0.0 <= float(loss.alpha) <= 0.3
    if isinstance(loss, ufm.Focal):
        assert 0.0 <= float(loss.gamma) <= 1.5
    if isinstance(loss, ufm.MSE) and loss.encoding is not None:
        assert loss.encoding.shape[1] == 3 and 2 <= loss.encoding.shape[0] <= 4
        loss.check(3)


@settings(deadline=None, max_examples=examples(20))
@given(data=st.data(), K=st.integers(2, 5), balanced=st.sampled_from([True, False, None]))
def test_class_counts_respect_bounds(data, K, balanced):
    counts = data.draw(ut.class_counts(K=K, min_n=2, max_n=4, balanced=balanced))
    if balanced is True:
        assert isinstance(counts, int) and 2 <= counts <= 4
    if balanced is False:
        assert len(counts) == K and len(set(counts)) > 1
    values = (counts,) if isinstance(counts, int) else counts
    assert all(2 <= c <= 4 for c in values)
    ufm.UFM(K=K, n=counts, d=2, loss=ufm.CrossEntropy())


@settings(deadline=None, max_examples=examples(20))
@given(lams=ut.lams(n=3, kappa=ut.kappas(threshold=0.25, regime="zero")))
def test_lams_hit_the_target_kappa(lams):
    lam_W, lam_H = lams
    kappa = math.sqrt(3 * lam_W * lam_H)
    assert 1.1 * 0.25 - 1e-12 <= kappa <= 2.0 * 0.25 + 1e-12
    assert 0.5 - 1e-9 <= math.sqrt(lam_W / lam_H) <= 2.0 + 1e-9


@pytest.mark.parametrize("collapsed", ["etf", "orthogonal"])
@settings(deadline=None, max_examples=examples(5))
@given(data=st.data())
def test_collapsed_features_are_exact_frames(collapsed, data):
    K, n, d = 3, (2, 1, 3), 4
    H, labels = data.draw(ut.features(K=K, n=n, d=d, collapsed=collapsed))
    assert H.shape == (d, 6) and H.dtype == np.float64
    np.testing.assert_array_equal(labels, np.repeat(np.arange(K), n))
    M = class_means(H, labels, K)
    np.testing.assert_allclose(H, M[:, labels], atol=1e-12)  # exact within-class collapse
    target = etf_gram(K) if collapsed == "etf" else np.eye(K) / np.sqrt(K)
    np.testing.assert_allclose(normalized(M.T @ M), target, atol=1e-12)


@settings(deadline=None, max_examples=examples(5))
@given(ut.features(K=3, n=2, d=2))
def test_generic_features_have_distinct_means(HL):
    H, labels = HL
    assert H.shape == (2, 6) and np.all(np.isfinite(H))
    assert np.linalg.matrix_rank(class_means(H, labels, 3)) == 2


def test_focal_threshold_is_one_over_K_only_without_focusing():
    assert ut.kappa_threshold(ufm.Focal(0.0), 3) == pytest.approx(1 / 3, rel=1e-12, abs=0.0)
    # K = 2, gamma = 3: -l'(p = 1/2) / K^2 with l = -(1-p)^3 log p
    p = 0.5
    dl = 3 * (1 - p) ** 2 * math.log(p) - (1 - p) ** 3 / p
    assert ut.kappa_threshold(ufm.Focal(3.0), 2) == pytest.approx(-dl / 4, rel=1e-9, abs=0.0)


@pytest.mark.parametrize("call,name", [
    (lambda: ut.ufm_problems(regime="middle"), "regime"),
    (lambda: ut.ufm_problems(min_K=1), "min_K"),
    (lambda: ut.ufm_problems(bias=("maybe",)), "bias"),
    (lambda: ut.ufm_problems(sizes=[(3, 2)]), "sizes"),
    (lambda: ut.closed_form_problems(nonneg=True), "nonneg"),
    (lambda: ut.losses(kinds=("hinge",)), "kinds"),
    (lambda: ut.losses(max_alpha=1.0), "max_alpha"),
    (lambda: ut.losses(encodings=True), "K"),
    (lambda: ut.class_counts(K=3, min_n=2, max_n=2, balanced=False), "min_n"),
    (lambda: ut.features(K=4, n=1, d=3, collapsed="orthogonal"), "d >= K"),
])
def test_bad_arguments_raise_at_construction(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_public_face_is_the_package():
    """``ufm.testing`` is a package whose face re-exports every public strategy and helper."""
    assert hasattr(ut, "__path__")
    for name in ut.__all__:
        assert getattr(ut, name) is not None, name
    assert ut.BIAS_MODES == ("none", "free", "reg")
    assert ut.bias_of(ufm.UFM(K=3, n=2, d=2, loss=ufm.CrossEntropy(), lam_b=0.0)) == "free"

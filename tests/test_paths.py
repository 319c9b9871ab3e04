"""The regularization-path entry (after Tirer, Huang & Niles-Weed 2023) and the MSE central-path entry
(after Han, Papyan & Donoho 2022): properties computed from the formulas, never numbers pasted from a
run."""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from scipy.integrate import solve_ivp

import ufm
from proofs_check.catalog import central_path, nc1_path

FLOATS = dict(allow_nan=False, allow_infinity=False)


# ---- the trace ratio along the path ---------------------------------------------------------------
def _svt_trace_ratio(Y, labels, tau):
    """``Tr Sigma_W / Tr Sigma_B`` of features with ``H^T H`` proportional to ``(Z^T Z)^{1/2}``, ``Z`` the
    singular-value thresholding of ``Y`` at ``tau`` (plain NumPy, no structure used)."""
    _, sv, Vt = np.linalg.svd(Y, full_matrices=False)
    S = (Vt.T * np.maximum(sv - tau, 0.0)) @ Vt
    same = labels[:, None] == labels[None, :]
    A = same / same.sum(axis=1, keepdims=True)
    N = labels.size
    return np.trace(S @ (np.eye(N) - A)) / np.trace(S @ (A - np.ones((N, N)) / N))


def _ratio_closed_form(sig, k, n_, tau):
    return np.sum(np.maximum(sig - tau, 0.0)) / ((k - 1) * (np.sqrt(n_) - tau))


@st.composite
def _targets(draw):
    k, n_, m = draw(st.integers(2, 4)), draw(st.integers(2, 4)), draw(st.integers(1, 3))
    m = min(m, k * n_ - k)  # at most the dimension of the within-class space
    frac = draw(st.lists(st.floats(0.05, 0.95, **FLOATS), min_size=m, max_size=m))
    sig = np.sort(np.asarray(frac) * np.sqrt(n_))[::-1]
    seed = draw(st.integers(0, 2**16))
    return k, n_, sig, nc1_path.structured_targets(k, n_, sig, np.random.default_rng(seed))


def _evaluator(N, lam_W, lam_H):
    th = nc1_path.NC1_PATH
    from proofs_check.theorem import Evaluator
    return Evaluator(th.expressions, {"N": float(N), "lambda_W": lam_W, "lambda_H": lam_H})


@given(_targets(), st.floats(0.0, 0.93, **FLOATS))
def test_the_closed_form_ratio_is_the_trace_ratio_of_the_thresholded_targets(data, frac):
    """The structured formula (the SymPy ``s*`` per singular value) equals the trace ratio computed from
    the SVT of the whole target matrix, for any K, n, within-class block and tau < sqrt(n)."""
    k, n_, sig, Y = data
    blocks = nc1_path.target_blocks(Y)
    assert blocks is not None and blocks[0] == k
    tau = frac * np.sqrt(n_)
    N = k * n_
    lam = tau / N  # lam_W = lam_H = lam gives tau = N lam
    predicted = nc1_path.trace_ratio_prediction(_evaluator(N, lam, lam), sig, k, n_, 1.0)
    assert np.isclose(predicted, _svt_trace_ratio(Y, blocks[1], tau), rtol=1e-9, atol=1e-12)
    assert np.isclose(predicted, _ratio_closed_form(sig, k, n_, tau), rtol=1e-12, atol=1e-14)


@given(_targets(), st.floats(0.0, 1.0, **FLOATS), st.floats(0.0, 1.0, **FLOATS))
def test_the_ratio_falls_strictly_until_collapse_then_stays_zero(data, u, v):
    k, n_, sig, _ = data
    top = sig.max()
    t1, t2 = sorted((u * top, v * top))
    assume(t2 - t1 > 1e-6 * top)
    r1, r2 = (_ratio_closed_form(sig, k, n_, t) for t in (t1, t2))
    assert r2 < r1
    # beyond the largest within-class singular value (and below sqrt(n)) the features are collapsed
    t3 = top + u * (0.99 * np.sqrt(n_) - top)
    assert _ratio_closed_form(sig, k, n_, max(t3, top)) == 0.0


@given(_targets(), st.floats(0.0, 0.9, **FLOATS))
def test_the_slope_of_the_ratio_is_the_proved_one(data, frac):
    """dr/dtau = sum_active (sigma_w - sqrt(n)) / ((K-1)(sqrt(n) - tau)^2), against a central difference."""
    k, n_, sig, _ = data
    tau = frac * sig.max()
    assume(np.all(np.abs(sig - tau) > 1e-3))
    h = 1e-6
    numeric = (_ratio_closed_form(sig, k, n_, tau + h) - _ratio_closed_form(sig, k, n_, tau - h)) / (2 * h)
    active = sig[sig > tau]
    slope = np.sum(active - np.sqrt(n_)) / ((k - 1) * (np.sqrt(n_) - tau) ** 2)
    assert slope < 0
    assert np.isclose(numeric, slope, rtol=1e-5, atol=1e-8)


def _reg(Y, d=7, lam_W=0.01, lam_H=0.04, lam_b=None):
    return ufm.RegressionUFM(Y=Y, d=d, lam_W=lam_W, lam_H=lam_H, lam_b=lam_b)


def test_the_path_entry_refuses_targets_outside_its_assumptions():
    th = nc1_path.NC1_PATH
    Y = th.instances()[0].Y
    assert th.assumptions(th.instances()[0])[0]
    assert "bias" in th.assumptions(_reg(Y, lam_b=0.0))[1]
    shifted = np.asarray(Y).copy()
    shifted[2] += 0.3  # the within-class row gets a nonzero class mean
    assert "zero class means" in th.assumptions(_reg(shifted))[1]
    strong = np.asarray(Y).copy()
    strong[2] *= 2.0  # singular value 2.4 > sqrt(3)
    assert "below sqrt(n)" in th.assumptions(_reg(strong))[1]
    assert "one-hot block" in th.assumptions(_reg(np.asarray(Y)[::-1]))[1]
    assert "stay below sqrt(n)" in th.assumptions(_reg(Y, lam_W=0.05, lam_H=0.05))[1]


def test_the_default_path_spans_both_sides_of_the_collapse_threshold():
    """The default instance has path points with a positive ratio and one beyond the threshold."""
    th = nc1_path.NC1_PATH
    prob = th.instances()[0]
    pred = th.predict(prob)
    ratios = [pred[nc1_path._q_ratio(s)] for s in nc1_path.PATH]
    assert ratios[0] > 0 and ratios[-1] == 0.0
    assert all(b < a for a, b in zip(ratios, ratios[1:]) if a > 0)


@pytest.mark.slow
@given(st.floats(0.3, 1.5, **FLOATS), st.floats(0.05, 0.6, **FLOATS))
def test_certified_solves_have_the_predicted_trace_ratio(sigma, frac):
    v = np.array([1.0, -1.0, 0.0, 1.0, 0.0, -1.0]) / 2.0
    Y = np.vstack([np.repeat(np.eye(2), 3, axis=1), sigma * v[None, :]])
    tau = frac * np.sqrt(3.0)
    assume(abs(tau / sigma - 1) > 0.05)
    prob = _reg(Y, lam_W=tau / 6, lam_H=tau / 6)
    sol = ufm.minimize(prob, gtol=1e-12, starts=2)
    labels = np.repeat(np.arange(2), 3)
    measured = float(ufm.metrics.nc1_trace_ratio(sol.params.H, labels, 2))
    assert np.isclose(measured, _ratio_closed_form(np.array([sigma]), 2, 3, tau), rtol=1e-7, atol=1e-12)


# ---- the central path ------------------------------------------------------------------------------
@st.composite
def _mse_point(draw):
    k, d, n_ = draw(st.integers(2, 4)), draw(st.integers(2, 5)), draw(st.integers(1, 3))
    lam = draw(st.floats(1e-3, 1.0, **FLOATS))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    N = k * n_
    Y = np.repeat(np.eye(k), n_, axis=1)
    return Y, rng.standard_normal((k, d)), rng.standard_normal((d, N)), lam


def _data_part(W, H, Y, lam):
    N = H.shape[1]
    return np.sum((W @ H - Y) ** 2) / (2 * N) + lam / 2 * np.sum(W**2)


@given(_mse_point())
def test_the_loss_splits_at_the_least_squares_classifier(point):
    Y, W, H, lam = point
    N, d = H.shape[1], H.shape[0]
    Wls = central_path.least_squares_classifier(Y, H, lam)
    S = H @ H.T / N + lam * np.eye(d)
    assert np.allclose(Wls @ S, Y @ H.T / N, rtol=1e-9, atol=1e-10)
    D = W - Wls
    gap = _data_part(W, H, Y, lam) - _data_part(Wls, H, Y, lam)
    assert np.isclose(gap, 0.5 * np.trace(D @ S @ D.T), rtol=1e-8, atol=1e-10)
    # on the path the data part is (lam/2) tr(Y (H^T H + N lam I)^{-1} Y^T) (push-through)
    on_path = lam / 2 * np.trace(Y @ np.linalg.solve(H.T @ H + N * lam * np.eye(N), Y.T))
    assert np.isclose(_data_part(Wls, H, Y, lam), on_path, rtol=1e-8, atol=1e-12)


def _central_velocity(Y, H, lam_W, lam_H):
    """``-grad_H f(W_LS(H), H)`` (the envelope theorem: the flow on the central path)."""
    N = H.shape[1]
    W = central_path.least_squares_classifier(Y, H, lam_W)
    return -(W.T @ (W @ H - Y) / N + lam_H * H)


@given(st.integers(2, 4), st.integers(1, 3), st.floats(0.02, 0.5, **FLOATS), st.floats(0.0, 0.2, **FLOATS),
       st.integers(0, 2**16))
def test_singular_values_of_collapsed_means_follow_the_ode_on_the_central_path(k, n_, lam_W, lam_H, seed):
    """From collapsed features the velocity on the central path is class-constant, moves no singular
    vector, and moves each x_j = m_j^2 at dx/dtau = 2x(lam_W/(n(x + K lam_W)^2) - lam_H)."""
    rng = np.random.default_rng(seed)
    d = k + 1
    Q, _ = np.linalg.qr(rng.standard_normal((d, k)))
    P, _ = np.linalg.qr(rng.standard_normal((k, k)))
    m = rng.uniform(0.2, 2.0, size=k)
    M = Q @ np.diag(m) @ P.T
    Y = np.repeat(np.eye(k), n_, axis=1)
    V = _central_velocity(Y, M @ Y, lam_W, lam_H)
    dM = V @ Y.T / n_
    assert np.allclose(V, dM @ Y, rtol=1e-9, atol=1e-12)  # stays collapsed
    rates = 2 * m * np.einsum("ij,ik,kj->j", Q, dM, P)  # dx_j = 2 m_j u_j^T dM v_j
    x = m**2
    assert np.allclose(rates, 2 * x * (lam_W / (n_ * (x + k * lam_W) ** 2) - lam_H), rtol=1e-8, atol=1e-12)
    off = Q.T @ dM @ P - np.diag(np.diag(Q.T @ dM @ P))
    assert np.allclose(off, 0.0, atol=1e-12)  # the singular vectors do not move


@given(st.integers(2, 5), st.integers(1, 4), st.floats(0.02, 0.5, **FLOATS), st.floats(0.01, 2.0, **FLOATS),
       st.floats(0.5, 50.0, **FLOATS))
def test_the_law_is_the_solution_of_the_ode(k, n_, lam_W, x0, t1):
    """``law_prediction`` (the root of Phi(x) = Phi(x0) + 2 lam_W t/n, from the SymPy expressions) equals
    an independent numerical integration of dx/dtau = 2 lam_W x/(n(x + K lam_W)^2)."""
    th = central_path.CENTRAL_PATH
    prob = ufm.UFM(K=k, n=n_, d=k, loss=ufm.MSE(), lam_W=lam_W, lam_H=0.0)
    x_law = central_path.law_prediction(th.evaluator(prob), np.array([x0]), t1)[0]
    sol = solve_ivp(lambda t, x: 2 * lam_W * x / (n_ * (x + k * lam_W) ** 2), (0.0, t1), [x0], rtol=1e-11,
                    atol=1e-13)
    assert np.isclose(x_law, sol.y[0, -1], rtol=1e-7, atol=1e-12)
    assert x_law > x0


@given(st.floats(2.0, 1e3, **FLOATS), st.floats(0.01, 0.5, **FLOATS), st.floats(0.0, 0.5, **FLOATS),
       st.integers(0, 2**16))
def test_the_time_scaled_ufm_is_the_objective_divided_by_s_squared(S, lam_W, lam_H, seed):
    """f(s W', H) = s^2 F_s(W', H) for F_s the UFM with code I/s and lam_H/s^2 (ufm's objectives)."""
    prob = ufm.UFM(K=3, n=2, d=4, loss=ufm.MSE(), lam_W=lam_W, lam_H=lam_H)
    scaled = central_path._scaled(prob, S)
    rng = np.random.default_rng(seed)
    W, H = rng.standard_normal((3, 4)), rng.standard_normal((4, 6))
    s = np.sqrt(S)
    full = float(prob.objective(ufm.Params(W, H, None)))
    part = float(scaled.objective(ufm.Params(W / s, H, None)))
    assert np.isclose(full, S * part, rtol=1e-10, atol=1e-12)


def test_the_central_path_entry_refuses_models_outside_its_assumptions():
    th = central_path.CENTRAL_PATH
    base = dict(K=3, n=2, d=3, lam_W=0.1)
    assert th.assumptions(ufm.UFM(loss=ufm.MSE(), lam_H=0.0, **base))[0]
    assert "lam_H = 0" in th.assumptions(ufm.UFM(loss=ufm.MSE(), lam_H=0.1, **base))[1]
    assert "one-hot" in th.assumptions(ufm.UFM(loss=ufm.CrossEntropy(), lam_H=0.0, **base))[1]
    assert "bias" in th.assumptions(ufm.UFM(loss=ufm.MSE(), lam_H=0.0, lam_b=0.0, **base))[1]
    assert "d >= K" in th.assumptions(ufm.UFM(K=3, n=2, d=2, loss=ufm.MSE(), lam_W=0.1, lam_H=0.0))[1]


def test_a_wrong_law_fails_the_central_path_rows():
    """The prediction follows the expression: a law with K lam_W in place of 2 K lam_W moves x(tau1) far
    beyond the row's tolerance (compared with the true law's prediction, which the flows match)."""
    import dataclasses
    import sympy as sp
    from proofs_check.catalog._common import K, lam_W
    th = central_path.CENTRAL_PATH
    prob = th.instances()[0]
    x = sp.Symbol("x", positive=True)
    wrong = x**2 / 2 + K * lam_W * x + K**2 * lam_W**2 * sp.log(x)
    mutated = dataclasses.replace(th, expressions={**th.expressions, "Phi(x)": wrong})
    rows = th.compare(prob, mutated.predict(prob), th.predict(prob), {"grad_norm": 0.0, "converged": True})
    assert not next(r for r in rows if r["quantity"] == central_path._Q_LAW)["passed"]

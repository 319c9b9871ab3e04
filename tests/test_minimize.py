"""ufm.minimize reaches the closed forms of docs/theory.md#ce-etf, #mse-no-bias (to 1e-8, compared as invariants),
on instances hypothesis draws inside each theorem's assumptions, on both sides of the thresholds.

The predictions come from ``proofs_check.closed_forms`` (the formulas); a separate test checks
that each predicted configuration is a stationary point of the objective, without the solver.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import ufm
import ufm.testing
from proofs_check import closed_forms as cf
from proofs_check.catalog import zhu2021
from tests.helpers import class_means, etf_gram, examples, normalized

K, n, d = 3, 2, 4
TOL = 1e-8


def _lams(kappa, rho):
    """lam_W, lam_H with n lam_W lam_H = kappa^2 and lam_W / lam_H = rho^2."""
    return kappa * rho / np.sqrt(n), kappa / (rho * np.sqrt(n))


def _assert_matches_closed_form(prob, sol):
    pred = cf.predict(prob)
    measured = cf.measure(prob, sol.params, pred.quantities)
    assert sol.converged, sol.result.message
    for name, value in pred.quantities.items():
        err = cf.rel_error(measured[name], value)
        assert err <= TOL, f"{pred.theorem}: {name} rel. error {err:.2e} on {prob}"


def _threshold(loss):
    """Zero-solution threshold: (1-alpha)/K for CE/LS; computed from the ETF reduction for focal,
    whose 1-D objective is not convex (a jump transition), so its draws stay below 0.8 of it."""
    factor = 0.8 if isinstance(loss, ufm.Focal) else 1.0
    return factor * ufm.testing.kappa_threshold(loss, K)


LOSSES = {
    "ce": lambda alpha, gamma: ufm.CrossEntropy(),
    "ls": lambda alpha, gamma: ufm.LabelSmoothing(alpha),
    "focal": lambda alpha, gamma: ufm.Focal(gamma),
}
CE_CASES = [("ce", None), ("ce", 0.0), ("ce", "reg"), ("ls", "reg"), ("focal", "reg")]


@pytest.mark.parametrize("loss_name,bias", CE_CASES)
@settings(max_examples=examples(6))
@given(frac=st.floats(0.05, 0.85), rho=st.floats(0.5, 2.0), alpha=st.floats(0.0, 0.4),
       gamma=st.floats(0.0, 3.0), lam_b=st.floats(1e-3, 1.0), seed=st.integers(0, 2**16))
def test_cross_entropy_family_reaches_etf(loss_name, bias, frac, rho, alpha, gamma, lam_b, seed):
    loss = LOSSES[loss_name](alpha, gamma)
    lam_W, lam_H = _lams(frac * _threshold(loss), rho)
    prob = ufm.UFM(K=K, n=n, d=d, loss=loss, lam_W=lam_W, lam_H=lam_H,
                   lam_b=lam_b if bias == "reg" else bias)
    sol = ufm.minimize(prob, seed=seed, gtol=1e-12, starts=2)
    _assert_matches_closed_form(prob, sol)
    W = np.asarray(sol.params.W)
    if cf.ce_family(prob).quantities["w_norm2"][0] > 0:
        np.testing.assert_allclose(normalized(W @ W.T), etf_gram(K), atol=1e-8)


@pytest.mark.parametrize("loss_name", ["ce", "ls"])
@settings(max_examples=examples(4))
@given(frac=st.floats(1.1, 2.0), rho=st.floats(0.5, 2.0), alpha=st.floats(0.0, 0.4), seed=st.integers(0, 2**16))
def test_zero_solution_beyond_threshold(loss_name, frac, rho, alpha, seed):
    loss = LOSSES[loss_name](alpha, 0.0)
    lam_W, lam_H = _lams(frac * _threshold(loss), rho)
    prob = ufm.UFM(K=K, n=n, d=d, loss=loss, lam_W=lam_W, lam_H=lam_H, lam_b=0.1)
    sol = ufm.minimize(prob, seed=seed, gtol=1e-12)
    _assert_matches_closed_form(prob, sol)
    assert float(jnp.abs(sol.params.W).max()) <= 1e-8
    np.testing.assert_allclose(sol.value, np.log(K), rtol=1e-12)  # all logits equal: loss log K


MSE_CASES = [(None, "onehot"), (0.0, "onehot"), ("reg", "onehot"), (None, "random"), (0.0, "random")]


@pytest.mark.parametrize("bias,encoding", MSE_CASES)
@settings(max_examples=examples(6))
@given(frac=st.one_of(st.floats(0.05, 0.9), st.floats(1.1, 1.6)), rho=st.floats(0.5, 2.0),
       lam_b=st.floats(1e-3, 2.0), seed=st.integers(0, 2**16))
def test_mse_reaches_svt_closed_form(bias, encoding, frac, rho, lam_b, seed):
    E = None if encoding == "onehot" else np.random.default_rng(seed).standard_normal((K, K))
    # K kappa = frac: both sides of the zero threshold K kappa = 1, away from it (at the threshold
    # the minimizer is degenerate and first-order certificates bound the point only to ~1e-4)
    lam_W, lam_H = _lams(frac / K, rho)
    if E is not None:  # the same margin for every singular value of the (centred) code
        tau = K * n * np.sqrt(lam_W * lam_H)
        code = E if bias is None else E @ (np.eye(K) - 1.0 / K)
        s = np.linalg.svd(code * np.sqrt(n), compute_uv=False)
        assume(np.all(np.abs(s - tau) > 0.1 * tau))
    prob = ufm.UFM(K=K, n=n, d=d, loss=ufm.MSE(E), lam_W=lam_W, lam_H=lam_H,
                   lam_b=lam_b if bias == "reg" else bias)
    sol = ufm.minimize(prob, seed=seed, gtol=1e-12, starts=2)
    _assert_matches_closed_form(prob, sol)


@settings(max_examples=examples(6))
@given(counts=st.sampled_from([(1, 3, 5), (4, 2, 6)]),  # two shapes: each new N recompiles
       scale=st.floats(0.05, 1.5), seed=st.integers(0, 2**16))
def test_imbalanced_mse_per_class_collapse(counts, scale, seed):
    """Dang et al. 2023: ||w_k||^2 = sqrt(lam_H/lam_W) a_k with a_k = (sqrt(n_k) - N sqrt(lam_W lam_H))_+."""
    N = sum(counts)
    lam = scale * np.sqrt(np.median(counts)) / N  # N sqrt(lam_W lam_H) around sqrt(n_median)
    assume(np.all(np.abs(np.sqrt(counts) - N * lam) > 0.1 * np.sqrt(counts)))  # off the thresholds
    prob = ufm.UFM(K=3, n=tuple(counts), d=d, loss=ufm.MSE(), lam_W=lam, lam_H=lam)
    sol = ufm.minimize(prob, seed=seed, gtol=1e-12, starts=2)
    _assert_matches_closed_form(prob, sol)
    a = np.maximum(np.sqrt(counts) - N * lam, 0.0)
    np.testing.assert_allclose(np.sum(np.asarray(sol.params.W) ** 2, axis=1), a, atol=1e-9)


def test_regularized_bias_phase_boundary():
    """Exact ETF for lam_b <= K kappa/(1 - K kappa); beyond it the angle moves toward 0."""
    kappa = 0.1
    lam = kappa / np.sqrt(n)
    boundary = K * kappa / (1 - K * kappa)
    cosines = []
    for lam_b in [0.5 * boundary, 0.99 * boundary, 2 * boundary, 20 * boundary]:
        prob = ufm.UFM(K=K, n=n, d=d, loss=ufm.MSE(), lam_W=lam, lam_H=lam, lam_b=lam_b)
        sol = ufm.minimize(prob, gtol=1e-12)
        M = class_means(sol.params.H, prob.labels, K)
        G = M.T @ M
        cosines.append(G[0, 1] / np.sqrt(G[0, 0] * G[1, 1]))
    np.testing.assert_allclose(cosines[:2], -1 / (K - 1), atol=1e-9)
    assert -1 / (K - 1) + 1e-6 < cosines[2] < cosines[3] < 0


def _etf_point(prob, pred):
    """The predicted minimizer built explicitly: W rows a simplex ETF of the predicted norm,
    h_k = c w_k for every sample of class k, b = 0."""
    a = np.sqrt(pred.quantities["w_norm2"][0])
    c = np.sqrt(float(prob.lam_W) / (prob.n * float(prob.lam_H)))
    W = ufm.geometry.simplex_etf(prob.K, prob.d, scale=a, key_or_seed=3)
    H = c * W.T[:, prob.labels]
    b = None if not prob.has_bias else jnp.zeros(prob.K)
    return ufm.Params(jnp.asarray(W), jnp.asarray(H), b)


@pytest.mark.parametrize("loss", [ufm.CrossEntropy(), ufm.LabelSmoothing(0.15), ufm.Focal(1.5)])
def test_closed_form_point_is_stationary_with_predicted_value(loss):
    prob = ufm.UFM(K=4, n=3, d=5, loss=loss, lam_W=3e-3, lam_H=2e-3, lam_b=1e-2)
    pred = cf.ce_family(prob)
    x = _etf_point(prob, pred)
    g = jax.grad(prob.objective)(x)
    assert float(ufm.solvers.kkt_residual(prob, x, g)) <= 1e-12
    np.testing.assert_allclose(float(prob.objective(x)), pred.quantities["value"], rtol=1e-13)


def test_origin_min_eigenvalue_formula():
    prob = ufm.UFM(K=3, n=2, d=2, loss=ufm.CrossEntropy(), lam_W=2e-2, lam_H=5e-3)
    zero = ufm.Params(jnp.zeros((3, 2)), jnp.zeros((2, 6)), None)
    lam_min, _ = ufm.hessian_extreme_eigs(prob, zero, method="dense")
    predicted = zhu2021.CE_ORIGIN.predict(prob)["hessian_min_eig_at_origin"]  # the SymPy closed form
    np.testing.assert_allclose(lam_min, predicted, rtol=1e-10)


def test_nonnegative_features_orthogonal_frame_and_kkt():
    """Nguyen et al. 2023, sec. 3: with H >= 0 the class means form an orthogonal frame and the
    classifier a simplex ETF; the certificate is the KKT residual."""
    prob = ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=5e-3, nonneg=True)
    sol = ufm.minimize(prob, starts=2, hessian=True)
    assert sol.converged and float(sol.params.H.min()) >= 0.0
    M = class_means(sol.params.H, prob.labels, 3)
    np.testing.assert_allclose(normalized(M.T @ M), np.eye(3) / np.sqrt(3), atol=1e-8)
    W = np.asarray(sol.params.W)
    np.testing.assert_allclose(normalized(W @ W.T), etf_gram(3), atol=1e-8)
    assert sol.hessian_eigs[0] >= -1e-8  # second-order condition on the free components


def test_lanczos_agrees_with_dense_hessian():
    prob = ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=5e-3)
    x = prob.init(jax.random.PRNGKey(0))
    dense = ufm.hessian_extreme_eigs(prob, x, method="dense")
    lanczos = ufm.hessian_extreme_eigs(prob, x, method="lanczos", num_iters=30)
    np.testing.assert_allclose(lanczos, dense, rtol=1e-7, atol=1e-10)


def test_results_enum_and_throw():
    prob = ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=5e-3)
    sol = ufm.minimize(prob, max_steps=2, max_newton=0, throw=False)
    assert sol.result == ufm.RESULTS.max_steps_reached and not sol.converged
    with pytest.raises(ufm.SolveError, match="max_steps"):
        ufm.minimize(prob, max_steps=2, max_newton=0)
    bad = prob.init(jax.random.PRNGKey(0))
    bad = bad._replace(W=bad.W.at[0, 0].set(jnp.nan))
    sol = ufm.minimize(prob, params0=bad, throw=False)
    assert sol.result == ufm.RESULTS.nonfinite


def test_new_lam_does_not_recompile():
    prob = ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=5e-3, lam_b=1e-2)
    ufm.minimize(prob)
    before = ufm.solvers._core.solve._cache_size()
    ufm.minimize(ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy(), lam_W=1e-2, lam_H=2e-3, lam_b=0.5))
    assert ufm.solvers._core.solve._cache_size() == before


@pytest.mark.parametrize("kwargs,name", [(dict(gtol=0.0), "gtol"), (dict(gtol=float("nan")), "gtol"),
                                         (dict(starts=0), "starts"), (dict(restarts=0), "restarts"),
                                         (dict(max_steps=0), "max_steps")])
def test_minimize_rejects_bad_options(kwargs, name):
    prob = ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy())
    with pytest.raises(ValueError, match=name):
        ufm.minimize(prob, **kwargs)

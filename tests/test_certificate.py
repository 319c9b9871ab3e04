"""The certificate means what it says: saddles are escaped, second order is checked on the
directions that are not symmetries, the solver core traces under jit/vmap, blow-ups are reported.

Every expected number comes from a formula: the simplex-ETF reduction (ufm.etf), the origin
Hessian of a deep linear model (the penalty's diagonal), the rotation-orbit dimension.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ufm
from ufm.etf import _reduction as _etf


def _zeros_like(params):
    return jax.tree_util.tree_map(jnp.zeros_like, params)


# ---- second order: the CE saddle at the origin ------------------------------------------------
def test_ce_saddle_start_ends_at_the_etf_minimizer():
    K, n, d, lam = 4, 3, 5, 5e-3
    prob = ufm.UFM(K=K, n=n, d=d, loss=ufm.CrossEntropy(), lam_W=lam, lam_H=lam)
    zero = _zeros_like(prob.init(jax.random.PRNGKey(0)))
    # the origin is a critical point with negative curvature (Zhu et al. 2021): a strict saddle
    w, _ = ufm.hessian_spectrum(prob, zero, k=1)
    assert float(w[0]) < 0
    first = ufm.minimize(prob, params0=zero, order="first")
    assert first.certificate.order == "first" and np.isclose(first.value, np.log(K), rtol=1e-12, atol=0.0)  # stuck at the saddle
    sol = ufm.minimize(prob, params0=zero)
    assert sol.converged and sol.certificate.order == "second" and sol.stats["escapes"] >= 1
    assert sol.certificate.min_eig >= -1e-8 and sol.certificate.global_gap is None
    kappa = np.sqrt(n * lam * lam)
    g = _etf.etf_logit_gap(prob.loss, K, kappa)
    np.testing.assert_allclose(sol.value, float(_etf.etf_phi(prob.loss, K, kappa, g)), rtol=1e-9)
    W = np.asarray(sol.params.W)
    G = W @ W.T
    P = np.eye(K) - np.ones((K, K)) / K
    np.testing.assert_allclose(G, np.trace(G) / (K - 1) * P, atol=1e-8)  # a simplex ETF


def test_saddle_without_escapes_is_reported_not_solved():
    prob = ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=5e-3)
    zero = _zeros_like(prob.init(jax.random.PRNGKey(0)))
    sol = ufm.minimize(prob, params0=zero, max_escapes=0, throw=False)
    assert sol.result == ufm.RESULTS.saddle and not sol.converged
    assert sol.certificate.order == "first" and sol.certificate.min_eig < 0
    with pytest.raises(ufm.SolveError, match="saddle"):
        ufm.minimize(prob, params0=zero, max_escapes=0)


# ---- deep linear: the origin is a true local minimum for m >= 3 factors ------------------------
def test_deep_linear_small_start_stops_at_a_local_not_global_minimum():
    lams = (2e-3, 5e-3)
    lam_H = 1e-3
    prob = ufm.DeepUFM(K=3, n=2, widths=(3, 3), loss=ufm.MSE(), lam_W=list(lams), lam_H=lam_H, activation="linear")
    sol = ufm.minimize(prob, init_scale=1e-3)
    assert sol.converged and sol.certificate.order == "second"
    assert sol.certificate.scope == "local" and sol.certificate.global_gap is None
    # at the origin the data term is 1/2 and the Hessian is the penalty's diagonal
    assert float(max(np.abs(np.asarray(leaf)).max() for leaf in jax.tree_util.tree_leaves(sol.params))) < 1e-8
    np.testing.assert_allclose(sol.value, 0.5, rtol=1e-12)
    np.testing.assert_allclose(sol.certificate.min_eig, min(lam_H, *lams), rtol=1e-8)
    better = ufm.minimize(prob, seed=0)
    assert better.converged and better.value < sol.value  # the origin is not the minimizer


# ---- the symmetry directions --------------------------------------------------------------------
def test_rotation_orbit_dimension_and_zero_curvature():
    K, n, d = 3, 2, 5
    prob = ufm.UFM(K=K, n=n, d=d, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=5e-3)
    sol = ufm.minimize(prob)
    P, s = ufm.symmetry_basis(prob, sol.params)
    r = K - 1  # rank of the ETF class means
    assert int(np.sum(np.asarray(s) > 0)) == d * (d - 1) // 2 - (d - r) * (d - r - 1) // 2
    P = np.asarray(P)[:, np.asarray(s) > 0]
    np.testing.assert_allclose(P.T @ P, np.eye(P.shape[1]), atol=1e-10)
    w_all, _ = ufm.hessian_spectrum(prob, sol.params, exclude_symmetry=False)
    w_free, _ = ufm.hessian_spectrum(prob, sol.params)
    w_all, w_free = np.asarray(w_all), np.asarray(w_free)
    assert np.isfinite(w_free).sum() == w_all.size - P.shape[1]
    assert np.min(np.abs(w_all)) < 1e-9 < np.min(w_free)  # the zeros were the symmetry directions


def test_deep_linear_and_relu_symmetries():
    kw = dict(K=3, n=2, widths=(4, 3), loss=ufm.MSE(), lam_W=3e-3, lam_H=3e-3)
    lin, relu = ufm.DeepUFM(activation="linear", **kw), ufm.DeepUFM(activation="relu", **kw)
    x = lin.init(jax.random.PRNGKey(1))
    # generic point: input rotations O(4) and, for linear layers only, the hidden O(3)
    assert int(np.sum(np.asarray(ufm.symmetry_basis(lin, x)[1]) > 0)) == 6 + 3
    assert int(np.sum(np.asarray(ufm.symmetry_basis(relu, x)[1]) > 0)) == 6
    for prob in (lin, relu):
        f0 = prob.objective(x)
        T = prob.symmetry_tangents(x)
        for i in range(jax.tree_util.tree_leaves(T)[0].shape[0]):
            t = jax.tree_util.tree_map(lambda u: u[i], T)
            df = jax.jvp(prob.objective, (x,), (t,))[1]
            assert abs(float(df)) <= 1e-12 * max(1.0, abs(float(f0)))  # f is constant along the orbit


# ---- the traceable core ------------------------------------------------------------------------
def test_vmap_over_lams_matches_sequential_and_does_not_recompile():
    prob = ufm.UFM(K=3, n=2, d=3, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=5e-3)

    def value(lam):
        return ufm.minimize(dataclasses.replace(prob, lam_W=lam, lam_H=lam), seed=0, throw=False).value

    batched = jax.jit(jax.vmap(value))
    lams = jnp.asarray([2e-3, 8e-3, 2e-2])
    got = np.asarray(batched(lams))
    seq = np.array([ufm.minimize(dataclasses.replace(prob, lam_W=float(l), lam_H=float(l)), seed=0).value
                    for l in np.asarray(lams)])
    np.testing.assert_allclose(got, seq, rtol=0, atol=1e-9)
    size = batched._cache_size()
    batched(lams * 1.5)
    assert batched._cache_size() == size == 1


def test_traced_solution_holds_arrays_and_starts_vmap_over_seeds():
    prob = ufm.UFM(K=3, n=2, d=3, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=5e-3)
    sol = jax.jit(lambda p: ufm.minimize(p, starts=2, throw=False))(prob)
    assert isinstance(sol.value, jax.Array) and sol.certificate.order == "second" and bool(sol.converged)
    host = ufm.minimize(prob, starts=2)
    np.testing.assert_allclose(float(sol.value), host.value, rtol=1e-12)


# ---- metrics on every family, no field read by name ---------------------------------------------
def test_flow_metrics_work_for_deep_models():
    prob = ufm.DeepUFM(K=3, n=2, widths=(4, 4), loss=ufm.MSE(), lam_W=3e-3, lam_H=3e-3, activation="relu")
    traj = ufm.gradient_flow(prob, t1=5.0, metrics=("nc1", "nc2_W", "nc3"))
    W, X = prob.classifier(traj.final)
    np.testing.assert_allclose(traj.metrics["nc2_W"][-1], float(ufm.metrics.nc2_W(W)), rtol=1e-12)
    np.testing.assert_allclose(traj.metrics["nc1"][-1], float(ufm.metrics.nc1(X, prob.labels, K=3)), rtol=1e-12)


# ---- no silent failure ---------------------------------------------------------------------------
def test_blow_up_on_the_last_step_is_not_successful():
    prob = ufm.UFM(K=3, n=2, d=4, loss=ufm.MSE(), lam_W=1e-3, lam_H=1e-3)
    traj = ufm.gradient_flow(prob, t1=100.0, dt=50.0, throw=False)
    assert traj.result in (ufm.RESULTS.diverged, ufm.RESULTS.nonfinite)
    with pytest.raises(ufm.SolveError, match="dt=50"):
        ufm.gradient_flow(prob, t1=100.0, dt=50.0)


def test_nonfinite_start_is_reported():
    prob = ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy())
    x = prob.init(jax.random.PRNGKey(0))
    x = x._replace(W=x.W.at[0, 0].set(jnp.nan))
    sol = ufm.minimize(prob, params0=x, throw=False)
    assert sol.result == ufm.RESULTS.nonfinite and not sol.converged and sol.certificate.order == "none"


# ---- the ETF reduction agrees with the closed forms of the catalog --------------------------------
@pytest.mark.parametrize("K", [2, 3, 5])
def test_etf_threshold_matches_the_closed_forms(K):
    from proofs_check import closed_forms as cf  # noqa: F401  (the closed forms live in the catalog)

    np.testing.assert_allclose(_etf.etf_zero_threshold(ufm.CrossEntropy(), K), 1.0 / K, rtol=1e-10)
    np.testing.assert_allclose(_etf.etf_zero_threshold(ufm.LabelSmoothing(0.2), K), 0.8 / K, rtol=1e-10)
    kappa = 0.3 / K
    np.testing.assert_allclose(_etf.etf_logit_gap(ufm.CrossEntropy(), K, kappa),
                               np.log((1 - (K - 1) * kappa) / kappa), rtol=1e-10)


def test_certificate_is_a_pytree_with_order_names():
    c = ufm.Certificate(kkt=jnp.asarray([1e-12, 1.0]), min_eig=jnp.asarray([1e-3, jnp.nan]),
                       order_code=jnp.asarray([2, 0]))
    assert list(c.order) == ["second", "none"]
    assert len(jax.tree_util.tree_leaves(c)) == 3


# ---- deep ReLU: the K = 10 low-rank regime ----------------------------------------------------------
@pytest.mark.slow
def test_deep_relu_k10_returns_certified_points():
    from proofs_check.catalog import deep

    prob = ufm.DeepUFM(K=10, n=1, widths=(30, 30, 30, 30), loss=ufm.MSE(), lam_W=0.004, lam_H=0.004,
                       activation="relu")
    dnc = deep.dnc_prediction(prob)["value"]
    values = []
    for seed in (0, 1, 2):
        sol = ufm.minimize(prob, seed=seed)  # must not raise
        assert sol.converged
        piece = sol.stats["piece"]
        assert piece["consistent"] and piece["gap"] <= 1e-10 * max(1.0, sol.value)
        if "clarke" in piece:  # a kink point: first order (Clarke), second order on the kink manifold
            c = piece["clarke"]
            assert sol.certificate.order == "first" and c["kkt"] <= 1e-10 * max(1.0, sol.value)
            assert c["min_eig"] >= -1e-8 and c["order"] == "first (Clarke) + second on the kink manifold"
            assert np.all((c["slopes"] >= 0) & (c["slopes"] <= 1)) and len(c["kinks"]) == len(c["slopes"])
        else:
            assert sol.certificate.order == "second"
        values.append(sol.value)
    # the low-rank regime (Súkeník, Mondelli & Lampert 2024): the best certified point is strictly
    # below the DNC value of the h_m reduction (a local point may sit above it: no per-seed bound)
    assert min(values) < dnc * (1 - 1e-6)

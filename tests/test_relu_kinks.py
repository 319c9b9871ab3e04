"""ReLU kinks: a point certified on one activation piece is never reported second order without the
Clarke check, and the check's parts (slope fit, one-sided slopes, kink-manifold curvature) agree
with their definitions.

The constructed point: a solved two-layer ReLU model with one feature column set to zero and
polished on its piece. Every unit is then at a kink on that sample, the piece (where the column is
off) is stationary, and the sample's output is zero: growing the column into a unit whose
outgoing weight points at the sample's class lowers the objective, so the point is not a local
minimizer although every piece-wise check passes.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from jax.flatten_util import ravel_pytree

import ufm
from proofs_check.catalog import deep
from tests.helpers import examples
from ufm import DeepUFM
from ufm.solvers import polish_relu
from ufm.solvers._relu_clarke import (clarke_certificate, kink_jacobian, kink_masks, manifold_min_eig,
                                      one_sided_slopes, slope_fit, with_slopes)

SHAPE = dict(K=3, n=2, widths=(4, 4))  # one shape: the draws vary values only (no recompilation)


def _prob(lam_W=5e-3, lam_H=5e-3):
    return DeepUFM(loss=ufm.MSE(), lam_W=lam_W, lam_H=lam_H, activation="relu", **SHAPE)


def _dead_column_point(prob, seed, j):
    """A solve of ``prob``, column ``j`` of ``H`` set to 0, polished on its piece (throw=False)."""
    sol = ufm.minimize(prob, seed=seed, throw=False)
    x = sol.params._replace(H=sol.params.H.at[:, j].set(0.0))
    return polish_relu(prob, x, throw=False)


def _one_sided_descent(prob, params, j, seed, t=1e-7, draws=64):
    """The smallest one-sided difference quotient ``(f(x + t v) - f(x)) / t`` over random
    directions ``v`` that move only column ``j`` of ``H`` (each its own piece for small ``t``)."""
    rng = np.random.default_rng(seed)
    f0 = float(prob.objective(params))
    out = np.inf
    for _ in range(draws):
        u = rng.standard_normal(params.H.shape[0])
        y = params._replace(H=params.H.at[:, j].add(t * u / np.linalg.norm(u)))
        out = min(out, (float(prob.objective(y)) - f0) / t)
    return out


def _has_kinks(prob, params):
    return any(np.any(k) for k in kink_masks(prob, params)[1])


# ---- a piece-stationary kink point that a neighbouring piece descends from -------------------------
@settings(max_examples=examples(2), deadline=None)
@given(lam=st.floats(2e-3, 1e-2), seed=st.integers(0, 2**10), j=st.integers(0, 5))
def test_piece_stationary_kink_point_is_never_second_order(lam, seed, j):
    prob = _prob(lam, lam)
    pol = _dead_column_point(prob, seed, j)
    assume(pol.stats["pattern_consistent"] and np.all(np.asarray(pol.params.H[:, j]) == 0.0))
    # stationary on its piece, at kinks (every unit on sample j)
    assert pol.grad_norm <= 1e-10 * max(1.0, pol.value) and _has_kinks(prob, pol.params)
    assert pol.certificate.order != "second"
    c = pol.stats["clarke"]
    assert c["kkt"] <= 1e-10 * max(1.0, pol.value)  # Clarke stationary: the piece's vertex is in the box
    descent = _one_sided_descent(prob, pol.params, j, seed)
    if descent < -1e-4:  # a neighbouring piece descends: not a local minimizer, never "successful"
        assert pol.result != ufm.RESULTS.successful and c["descent"]
        assert min(c["one_sided"]) < 0
    # minimize from the point: a point reported second order has no kinks, and nothing rises
    sol = ufm.minimize(prob, params0=pol.params, throw=False)
    assert sol.value <= pol.value + 1e-12 * max(1.0, pol.value)
    if sol.certificate.order == "second":
        assert not _has_kinks(prob, sol.params)
    if descent < -1e-4 and sol.converged:
        assert sol.value < pol.value - 1e-8  # the escape left the point


def test_polish_relu_raises_on_a_descending_kink_point_by_default():
    prob = _prob()
    pol = _dead_column_point(prob, 0, 0)
    assert pol.stats["pattern_consistent"] and _one_sided_descent(prob, pol.params, 0, 0) < -1e-4
    sol = ufm.minimize(prob, seed=0, throw=False)
    with pytest.raises(ufm.SolveError, match="neighbouring piece"):
        polish_relu(prob, sol.params._replace(H=sol.params.H.at[:, 0].set(0.0)))


# ---- the control: a Clarke-stationary kink point earns its order --------------------------------
def test_dnc_kink_point_is_certified_first_order_clarke():
    prob = DeepUFM(K=3, n=2, widths=(5, 5), loss=ufm.MSE(), lam_W=5e-3, lam_H=5e-3)
    x = deep.dnc_params(prob)
    assert _has_kinks(prob, x)
    pol = polish_relu(prob, x)  # must not raise
    c = pol.stats["clarke"]
    assert pol.converged and pol.certificate.order == "first"
    assert c["order"] == "first (Clarke) + second on the kink manifold" and not c["descent"]
    assert pol.certificate.min_eig >= -1e-8 and np.all(c["one_sided"] >= -1e-8 * max(1.0, pol.value))
    assert _one_sided_descent(prob, pol.params, 0, 1) >= -1e-5  # no random direction descends
    sol = ufm.minimize(prob, params0=x)  # the default call: certified, never second order at kinks
    assert sol.converged and (sol.certificate.order == "first") == _has_kinks(prob, sol.params)


# ---- the parts of the check against their definitions ---------------------------------------------
@settings(max_examples=examples(4), deadline=None)
@given(seed=st.integers(0, 2**10), j=st.integers(0, 5), scale=st.floats(0.5, 2.0))
def test_one_sided_slopes_are_the_slope_derivative_of_the_gradient(seed, j, scale):
    """One hidden layer: ``g(s)`` is affine in ``s`` with ``dg/ds_k = delta_k grad Z_k``."""
    prob = _prob()
    x = prob.init(jax.random.PRNGKey(seed))
    x = x._replace(H=x.H.at[:, j].set(0.0), Ws=(x.Ws[0], scale * x.Ws[1]))
    on, kink = kink_masks(prob, x)
    k = int(sum(np.sum(m) for m in kink))
    assert k == prob.widths[1]
    s = np.random.default_rng(seed).uniform(0, 1, k)
    grad_s = jax.jacfwd(lambda v: ravel_pytree(jax.grad(with_slopes(prob, on, kink, v).objective)(x))[0])
    A = np.asarray(grad_s(jnp.asarray(s)))
    J = kink_jacobian(prob, x, kink)
    delta = one_sided_slopes(prob, x, on, kink, s)
    assert np.allclose(A, J.T * delta[None, :], rtol=1e-10, atol=1e-12 * np.max(np.abs(A)))


@settings(max_examples=examples(4), deadline=None)
@given(seed=st.integers(0, 2**10), j=st.integers(0, 5))
def test_slope_fit_is_the_box_least_squares_minimum(seed, j):
    """The fitted slopes satisfy the optimality conditions of ``min ||g(s)||^2`` on ``[0, 1]^S``:
    the gradient ``A^T g`` is ``>= 0`` at slopes 0, ``<= 0`` at slopes 1, ``0`` inside."""
    prob = _prob()
    x = prob.init(jax.random.PRNGKey(seed))
    x = x._replace(H=x.H.at[:, j].set(0.0))
    on, kink = kink_masks(prob, x)
    s, kkt = slope_fit(prob, x, on, kink, method="bvls")
    _, kkt_lbfgsb = slope_fit(prob, x, on, kink)  # the default reaches the same minimum
    assert kkt_lbfgsb <= kkt * (1 + 1e-6) + 1e-12
    g_of = lambda v: ravel_pytree(jax.grad(with_slopes(prob, on, kink, v).objective)(x))[0]  # noqa: E731
    g = np.asarray(g_of(jnp.asarray(s)))
    A = np.asarray(jax.jacfwd(g_of)(jnp.asarray(s)))
    grad = A.T @ g
    tol = 1e-9 * max(1.0, float(np.linalg.norm(A)) * float(np.linalg.norm(g)))
    assert np.isclose(kkt, np.linalg.norm(g), rtol=1e-12, atol=0)
    assert np.all(grad[s <= 0.0] >= -tol) and np.all(grad[s >= 1.0] <= tol)
    assert np.all(np.abs(grad[(s > 0) & (s < 1)]) <= tol)


@settings(max_examples=examples(3), deadline=None)
@given(seed=st.integers(0, 2**10), j=st.integers(0, 5))
def test_manifold_min_eig_matches_the_dense_projected_hessian(seed, j):
    prob = _prob()
    x = prob.init(jax.random.PRNGKey(seed))
    x = x._replace(H=x.H.at[:, j].set(0.0))
    on, kink = kink_masks(prob, x)
    s = np.random.default_rng(seed).uniform(0, 1, int(sum(np.sum(m) for m in kink)))
    flat, unravel = ravel_pytree(x)
    piece = with_slopes(prob, on, kink, jnp.asarray(s))
    H = np.asarray(jax.hessian(lambda v: piece.objective(unravel(v)))(flat))
    P, ps = ufm.solvers.symmetry_basis(prob, x)
    rows = np.concatenate([np.asarray(P)[:, np.asarray(ps) > 0].T, kink_jacobian(prob, x, kink)])
    _, sv, Vt = np.linalg.svd(rows, full_matrices=True)
    N = Vt[int(np.sum(sv > 1e-10 * sv[0])):].T  # null(J_S) without the symmetry directions
    dense = float(np.linalg.eigvalsh(N.T @ (0.5 * (H + H.T)) @ N)[0])
    for method in ("dense", "lanczos"):
        got = manifold_min_eig(prob, x, on, kink, s, method=method)
        assert np.isclose(got, dense, rtol=0, atol=1e-9 * max(1.0, float(np.max(np.abs(H))))), method


def test_clarke_certificate_reports_the_descending_kinks():
    prob = _prob()
    pol = _dead_column_point(prob, 0, 0)
    c = clarke_certificate(prob, pol.params)
    assert len(c["one_sided"]) == len(c["kinks"]) == len(c["slopes"])
    neg = [k for k, d in zip(c["kinks"], c["one_sided"]) if d < -1e-8 * max(1.0, c["value"])]
    assert c["descent"] == neg
    assert (c["order"] == "first (Clarke) + second on the kink manifold") == (not neg and c["min_eig"] >= -1e-8)


@settings(max_examples=examples(20), deadline=None)
@given(seed=st.integers(0, 2**16), n=st.integers(2, 6), scale=st.floats(1e-6, 1.0))
def test_damped_step_decreases_the_residual_of_a_smooth_symmetric_system(seed, n, scale):
    """``F = grad phi`` for ``phi(v) = sum_i a_i v_i^4 / 4 + v^T B v / 2`` (``B`` PSD): ``J`` is
    symmetric and, at a point with ``J F != 0``, the Levenberg-Marquardt step with a large damping is
    a short step along ``-J F``, the gradient of ``|F|^2 / 2``: it lowers ``|F|``."""
    from ufm.solvers._relu_kink import _damped_step

    rng = np.random.default_rng(seed)
    a = rng.uniform(0.1, 2.0, n)
    C = rng.standard_normal((n, n - 1))
    B = C @ C.T  # rank n - 1: a singular quadratic part, as at a degenerate Lagrange point

    def F(v):
        return a * v**3 + B @ v

    v = scale * rng.standard_normal(n)
    J = np.diag(3 * a * v**2) + B
    r = F(v)
    assume(np.linalg.norm(J @ r) > 1e-10 * np.linalg.norm(r))
    best = _damped_step(F, v, r, np.linalg.eigh(J))
    assert best is not None
    norm, v_new, r_new = best
    assert norm < np.linalg.norm(r) and np.isclose(norm, np.linalg.norm(F(v_new)), rtol=1e-12, atol=0.0)
    assert np.allclose(r_new, F(v_new), rtol=1e-12, atol=1e-300)

"""Conversions from other papers' scalings: the objectives agree up to the stated factor."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import ufm
from ufm import conventions as cv

lams = st.floats(1e-4, 1.0)


def _params(prob, seed):
    return prob.init(jax.random.PRNGKey(seed), 0.7)


@given(lw=lams, lh=lams, seed=st.integers(0, 100))
def test_tirer_bruna_objective_equals_ufm(lw, lh, seed):
    K, n = 3, 4
    lam_W, lam_H = cv.from_tirer_bruna(lw, lh, K=K, n=n)
    prob = ufm.UFM(K=K, n=n, d=5, loss=ufm.MSE(), lam_W=lam_W, lam_H=lam_H)
    p = _params(prob, seed)
    W, H = np.asarray(p.W), np.asarray(p.H)
    Y = np.eye(K)[:, prob.labels]
    theirs = (np.sum((W @ H - Y) ** 2) / (2 * K * n) + lw / (2 * K) * np.sum(W**2)
              + lh / (2 * K * n) * np.sum(H**2))
    np.testing.assert_allclose(float(prob.objective(p)), theirs, rtol=1e-12)
    np.testing.assert_allclose(cv.to_tirer_bruna(lam_W, lam_H, K=K, n=n), (lw, lh), rtol=1e-14)


@given(lw=lams, lh=lams, lb=lams, seed=st.integers(0, 100))
def test_sum_loss_objective_is_N_times_ufm(lw, lh, lb, seed):
    base = ufm.UFM(K=3, n=(2, 3, 1), d=4, loss=ufm.CrossEntropy(), lam_W=1.0, lam_H=1.0, lam_b=1.0)
    N = base.N
    lam_W, lam_H, lam_b = cv.from_sum_loss(lw, lh, lb, N=N)
    prob = ufm.UFM(K=3, n=(2, 3, 1), d=4, loss=ufm.CrossEntropy(), lam_W=lam_W, lam_H=lam_H, lam_b=lam_b)
    p = _params(prob, seed)._replace(b=jnp.array([0.3, -0.1, 0.2]))
    loss_sum = float(jnp.sum(prob.loss(prob.logits(p), jnp.asarray(prob.labels))))
    theirs = loss_sum + lw / 2 * np.sum(np.asarray(p.W) ** 2) + lh / 2 * np.sum(np.asarray(p.H) ** 2) \
        + lb / 2 * np.sum(np.asarray(p.b) ** 2)
    np.testing.assert_allclose(theirs, cv.sum_loss_factor(N) * float(prob.objective(p)), rtol=1e-12)
    np.testing.assert_allclose(cv.to_sum_loss(lam_W, lam_H, lam_b, N=N), (lw, lh, lb), rtol=1e-14)


@given(lw=lams, lh=lams, seed=st.integers(0, 100))
def test_no_half_objective_equals_ufm(lw, lh, seed):
    lam_W, lam_H = cv.from_no_half(lw, lh)
    prob = ufm.UFM(K=2, n=3, d=2, loss=ufm.Focal(1.0), lam_W=lam_W, lam_H=lam_H)
    p = _params(prob, seed)
    theirs = float(prob.data_term(p)) + lw * np.sum(np.asarray(p.W) ** 2) + lh * np.sum(np.asarray(p.H) ** 2)
    np.testing.assert_allclose(theirs, float(prob.objective(p)), rtol=1e-12)
    np.testing.assert_allclose(cv.to_no_half(lam_W, lam_H), (lw, lh), rtol=1e-14)


def test_conventions_reject_bad_input():
    with pytest.raises(ValueError, match="K"):
        cv.from_tirer_bruna(0.1, 0.1, K=1, n=3)
    with pytest.raises(ValueError, match="N"):
        cv.from_sum_loss(0.1, N=0)
    with pytest.raises(ValueError, match="lam"):
        cv.from_no_half(-0.1)

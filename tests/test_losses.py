"""Losses: formulas, special cases, stability, jit/vmap friendliness."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import ufm


def _logits(seed, K=4, N=7, scale=3.0):
    rng = np.random.default_rng(seed)
    return jnp.asarray(scale * rng.standard_normal((K, N))), jnp.asarray(rng.integers(0, K, N))


def _np_logsoftmax(Z):
    Z = np.asarray(Z)
    m = Z.max(axis=0)
    return Z - m - np.log(np.exp(Z - m).sum(axis=0))


@given(seed=st.integers(0, 10_000))
def test_cross_entropy_is_minus_log_softmax(seed):
    Z, y = _logits(seed)
    expected = -_np_logsoftmax(Z)[np.asarray(y), np.arange(Z.shape[1])]
    np.testing.assert_allclose(ufm.CrossEntropy()(Z, y), expected, rtol=1e-13)


@given(seed=st.integers(0, 10_000), alpha=st.floats(0.0, 0.99))
def test_label_smoothing_is_cross_entropy_with_smoothed_targets(seed, alpha):
    Z, y = _logits(seed)
    K = Z.shape[0]
    T = (1 - alpha) * np.eye(K)[:, np.asarray(y)] + alpha / K
    expected = -(T * _np_logsoftmax(Z)).sum(axis=0)
    np.testing.assert_allclose(ufm.LabelSmoothing(alpha)(Z, y), expected, rtol=1e-12)


@given(seed=st.integers(0, 10_000), gamma=st.floats(0.0, 5.0))
def test_focal_formula(seed, gamma):
    Z, y = _logits(seed)
    logp = _np_logsoftmax(Z)[np.asarray(y), np.arange(Z.shape[1])]
    expected = -((1 - np.exp(logp)) ** gamma) * logp
    np.testing.assert_allclose(ufm.Focal(gamma)(Z, y), expected, rtol=1e-10, atol=1e-300)


def test_special_cases_recover_cross_entropy():
    Z, y = _logits(0)
    ce = ufm.CrossEntropy()(Z, y)
    np.testing.assert_allclose(ufm.LabelSmoothing(0.0)(Z, y), ce, rtol=1e-14)
    np.testing.assert_allclose(ufm.Focal(0.0)(Z, y), ce, rtol=1e-14)


def test_mse_identity_encoding_equals_one_hot():
    Z, y = _logits(1)
    K = Z.shape[0]
    expected = 0.5 * ((np.asarray(Z) - np.eye(K)[:, np.asarray(y)]) ** 2).sum(axis=0)
    np.testing.assert_allclose(ufm.MSE()(Z, y), expected, rtol=1e-14)
    np.testing.assert_allclose(ufm.MSE(np.eye(K))(Z, y), expected, rtol=1e-14)


def test_mse_general_encoding_targets_columns():
    rng = np.random.default_rng(3)
    E = rng.standard_normal((6, 4))
    Z = jnp.asarray(rng.standard_normal((6, 5)))
    y = jnp.asarray([0, 3, 1, 1, 2])
    expected = 0.5 * ((np.asarray(Z) - E[:, np.asarray(y)]) ** 2).sum(axis=0)
    np.testing.assert_allclose(ufm.MSE(E)(Z, y), expected, rtol=1e-14)


@pytest.mark.parametrize("loss", [ufm.CrossEntropy(), ufm.LabelSmoothing(0.2), ufm.Focal(2.0)])
def test_stable_for_huge_logits(loss):
    Z = jnp.asarray([[1e4, -1e4, 0.0], [-1e4, 1e4, 5e3], [0.0, 0.0, -5e3]])
    y = jnp.asarray([0, 0, 2])
    val, grad = jax.value_and_grad(lambda z: jnp.sum(loss(z, y)))(Z)
    assert np.all(np.isfinite(val)) and np.all(np.isfinite(grad))
    assert float(loss(Z, y)[0]) >= 0.0


def test_jit_and_vmap_over_hyperparameters():
    Z, y = _logits(2)
    alphas = jnp.linspace(0.0, 0.5, 4)
    f = jax.jit(jax.vmap(lambda a: jnp.mean(ufm.LabelSmoothing(a)(Z, y))))
    direct = [float(jnp.mean(ufm.LabelSmoothing(float(a))(Z, y))) for a in alphas]
    np.testing.assert_allclose(f(alphas), direct, rtol=1e-13)


@pytest.mark.parametrize("alpha", [-0.1, 1.0, 1.5, float("nan")])
def test_label_smoothing_rejects_alpha_outside_unit_interval(alpha):
    with pytest.raises(ValueError, match="alpha"):
        ufm.LabelSmoothing(alpha)


@pytest.mark.parametrize("gamma", [-1.0, float("nan")])
def test_focal_rejects_bad_gamma(gamma):
    with pytest.raises(ValueError, match="gamma"):
        ufm.Focal(gamma)


def test_mse_rejects_bad_encoding():
    with pytest.raises(ValueError, match="encoding"):
        ufm.MSE(np.ones(4))
    with pytest.raises(ValueError, match="encoding"):
        ufm.MSE(np.full((3, 3), np.nan))

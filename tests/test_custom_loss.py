"""ufm.CustomLoss: a per-sample loss written by the user behaves like a built-in."""

import dataclasses
import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import ufm


def ce_written_by_hand(z, y):
    return -jax.nn.log_softmax(z)[y]


def poly1(z, y, eps):
    logp = jax.nn.log_softmax(z)[y]
    return -logp + eps * (1.0 - jnp.exp(logp))


def smoothed(z, y, alpha):
    logp = jax.nn.log_softmax(z)
    return -(1.0 - alpha) * logp[y] - alpha * jnp.mean(logp)


def _logits(seed, K=4, N=7):
    rng = np.random.default_rng(seed)
    return jnp.asarray(3.0 * rng.standard_normal((K, N))), jnp.asarray(rng.integers(0, K, N))


@given(seed=st.integers(0, 10_000), alpha=st.floats(0.0, 0.9))
def test_vmapped_per_sample_loss_equals_the_builtin(seed, alpha):
    Z, y = _logits(seed)
    np.testing.assert_allclose(ufm.CustomLoss(ce_written_by_hand)(Z, y), ufm.CrossEntropy()(Z, y), rtol=1e-14)
    np.testing.assert_allclose(ufm.CustomLoss(smoothed, alpha=alpha)(Z, y), ufm.LabelSmoothing(alpha)(Z, y),
                               rtol=1e-12)


def test_parameters_are_leaves_and_fields():
    loss = ufm.CustomLoss(poly1, eps=1.0)
    assert isinstance(loss, ufm.CustomLoss) and isinstance(loss, ufm.Loss)
    assert loss.name == "poly1" and float(loss.eps) == 1.0 and loss.eps.dtype == jnp.float64
    leaves, treedef = jax.tree_util.tree_flatten(loss)
    assert len(leaves) == 1
    other = dataclasses.replace(loss, eps=0.25)
    assert type(other) is type(loss) and float(other.eps) == 0.25
    assert jax.tree_util.tree_structure(other) == treedef
    assert ufm.CustomLoss(poly1, "poly", eps=1.0).name == "poly"
    assert pickle.loads(pickle.dumps(loss)).eps == loss.eps


def test_solves_like_the_builtin_and_new_parameters_do_not_recompile():
    kw = dict(K=3, n=2, d=4, lam_W=5e-3, lam_H=5e-3, lam_b=1e-2)
    builtin = ufm.minimize(ufm.UFM(loss=ufm.LabelSmoothing(0.2), **kw), gtol=1e-12)
    custom = ufm.minimize(ufm.UFM(loss=ufm.CustomLoss(smoothed, alpha=0.2), **kw), gtol=1e-12)
    assert abs(custom.value - builtin.value) <= 1e-10 * builtin.value
    before = ufm.solvers._core.solve._cache_size()
    ufm.minimize(ufm.UFM(loss=ufm.CustomLoss(smoothed, alpha=0.05), **kw))
    assert ufm.solvers._core.solve._cache_size() == before


def test_vmap_over_a_parameter():
    Z, y = _logits(3)
    eps = jnp.array([0.0, 0.5, 2.0])
    out = jax.vmap(lambda e: jnp.mean(ufm.CustomLoss(poly1, eps=e)(Z, y)))(eps)
    for e, v in zip(eps, out):
        assert abs(float(v) - float(jnp.mean(ufm.CustomLoss(poly1, eps=float(e))(Z, y)))) <= 1e-14


@pytest.mark.parametrize("fn,match", [
    (lambda z, y: z, "must return a scalar"),
    (lambda z, y: jnp.log(z[y]), "not finite at the origin"),
    (lambda z, y: jnp.linalg.norm(z), "gradient of fn at z=0"),
    (lambda z, y: z[y] if z[y] > 0 else 0.0, "not traceable"),
    (lambda z, y: float(np.exp(z[y])), "not traceable"),
    (lambda z, y: jnp.sum(z > 0), "floating-point"),
])
def test_bad_definitions_fail_before_any_solve(fn, match):
    with pytest.raises(ValueError, match=match):
        ufm.UFM(K=3, n=2, d=3, loss=ufm.CustomLoss(fn))


@pytest.mark.parametrize("args,kwargs,match", [
    ((), {}, "needs fn"), ((3.0,), {}, "callable"), ((poly1,), {"eps": "big"}, "eps"),
    ((poly1,), {"eps": float("nan")}, "finite"), ((poly1, ""), {"eps": 1.0}, "name"),
])
def test_bad_arguments(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        ufm.CustomLoss(*args, **kwargs)


def mae(z, y):
    return 1.0 - jax.nn.softmax(z)[y]


def brier_true(z, y):
    return (1.0 - jax.nn.softmax(z)[y]) ** 2


def test_parameter_free_losses_do_not_share_a_compiled_solver():
    """Regression: JAX compares dataclass tree structures by their metadata only, so two
    parameter-free custom losses once shared one structure and one compiled solve."""
    a, b = ufm.CustomLoss(mae), ufm.CustomLoss(brier_true)
    assert jax.tree_util.tree_structure(a) != jax.tree_util.tree_structure(b)
    kw = dict(K=3, n=2, d=3, lam_W=1e-2, lam_H=1e-2)
    for loss in (a, b):
        prob = ufm.UFM(loss=loss, **kw)
        sol = ufm.minimize(prob, max_steps=20, max_newton=0, throw=False)
        assert abs(sol.value - float(prob.objective(sol.params))) <= 1e-12

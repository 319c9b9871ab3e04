"""The UFM problem: objective formula, pytree behaviour, and input validation."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import ufm


def _direct_objective(prob, params):
    """The canonical objective written out in NumPy."""
    W, H = np.asarray(params.W), np.asarray(params.H)
    Z = W @ H + (0 if params.b is None else np.asarray(params.b)[:, None])
    loss = np.asarray(prob.loss(jnp.asarray(Z), jnp.asarray(prob.labels)))
    f = loss.mean() + float(prob.lam_W) / 2 * (W**2).sum() + float(prob.lam_H) / 2 * (H**2).sum()
    if params.b is not None:
        f += float(prob.lam_b) / 2 * (np.asarray(params.b) ** 2).sum()
    return f


@given(seed=st.integers(0, 1000), lam_b=st.sampled_from([None, 0.0, 0.3]),
       n=st.sampled_from([3, (1, 2, 4)]))
def test_objective_matches_formula(seed, lam_b, n):
    prob = ufm.UFM(K=3, n=n, d=4, loss=ufm.CrossEntropy(), lam_W=0.1, lam_H=0.2, lam_b=lam_b)
    params = prob.init(jax.random.PRNGKey(seed))
    if params.b is not None:
        params = params._replace(b=jnp.arange(3.0))
    np.testing.assert_allclose(float(prob.objective(params)), _direct_objective(prob, params), rtol=1e-13)


def test_labels_grouped_by_class():
    prob = ufm.UFM(K=3, n=(2, 1, 3), d=2, loss=ufm.MSE())
    np.testing.assert_array_equal(prob.labels, [0, 0, 1, 2, 2, 2])
    assert prob.N == 6 and not prob.balanced
    assert ufm.UFM(K=3, n=(2, 2, 2), d=2, loss=ufm.MSE()).n == 2


def test_shapes_and_bias_modes():
    prob = ufm.UFM(K=4, n=2, d=3, loss=ufm.MSE(np.ones((6, 4))), lam_b=0.0)
    p = prob.init(jax.random.PRNGKey(0))
    assert p.W.shape == (6, 3) and p.H.shape == (3, 8) and p.b.shape == (6,)
    assert ufm.UFM(K=4, n=2, d=3, loss=ufm.CrossEntropy()).init(jax.random.PRNGKey(0)).b is None


def test_hyperparameters_are_float64_leaves_and_vmappable():
    prob = ufm.UFM(K=3, n=2, d=2, loss=ufm.CrossEntropy(), lam_W=0.1, lam_H=0.1, lam_b=0.1)
    assert prob.lam_W.dtype == jnp.float64
    params = prob.init(jax.random.PRNGKey(0))
    lams = jnp.array([0.0, 0.1, 1.0])
    vals = jax.vmap(lambda lw: dataclasses.replace(prob, lam_W=lw).objective(params))(lams)
    direct = [float(dataclasses.replace(prob, lam_W=float(v)).objective(params)) for v in lams]
    np.testing.assert_allclose(vals, direct, rtol=1e-14)


def test_nonneg_projection_and_init():
    prob = ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy(), nonneg=True)
    p = prob.init(jax.random.PRNGKey(1))
    assert float(p.H.min()) >= 0
    q = prob.project(p._replace(H=-p.H))
    assert float(jnp.abs(q.H).max()) == 0.0


BAD = [
    (dict(K=1), "K"),
    (dict(K=2.5), "K"),
    (dict(n=0), "n"),
    (dict(n=(1, 2)), "n"),
    (dict(n=(1, 0, 2)), "n"),
    (dict(d=0), "d"),
    (dict(lam_W=-1e-3), "lam_W"),
    (dict(lam_H=float("nan")), "lam_H"),
    (dict(lam_b=-0.5), "lam_b"),
    (dict(lam_W=float("inf")), "lam_W"),
    (dict(loss="ce"), "loss"),
    (dict(loss=ufm.MSE(np.eye(4))), "encoding"),
]


@pytest.mark.parametrize("kwargs,name", BAD)
def test_bad_input_raises_value_error_naming_argument(kwargs, name):
    base = dict(K=3, n=2, d=2, loss=ufm.CrossEntropy(), lam_W=1e-3, lam_H=1e-3)
    with pytest.raises(ValueError, match=name):
        ufm.UFM(**{**base, **kwargs})


def test_d_below_K_minus_1_is_a_valid_model():
    prob = ufm.UFM(K=5, n=2, d=2, loss=ufm.CrossEntropy())
    assert np.isfinite(float(prob.objective(prob.init(jax.random.PRNGKey(0)))))


def _assert_trees_equal(a, b):
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize("nonneg", [False, True])
def test_lower_bound_is_the_deprecated_name_of_box_lower(nonneg):
    prob = ufm.UFM(K=3, n=2, d=2, loss=ufm.CrossEntropy(), lam_b=0.1, nonneg=nonneg)
    p = prob.init(jax.random.PRNGKey(0))
    with pytest.warns(DeprecationWarning, match="box_lower"):
        old = prob.lower_bound(p)
    new = prob.box_lower(p)
    _assert_trees_equal(old, new)
    assert np.all(np.asarray(new.H) == (0.0 if nonneg else -np.inf))
    assert np.all(np.isneginf(np.asarray(new.W))) and np.all(np.isneginf(np.asarray(new.b)))


def test_problem_written_for_lower_bound_keeps_its_box():
    """A Problem subclass that still defines the old name gets it as box_lower (with a warning), so
    project() and the solvers keep its constraint."""
    with pytest.warns(DeprecationWarning, match="box_lower"):
        class OldStyle(ufm.Problem):
            def init(self, key, scale=None):
                return jnp.ones(3)

            def objective(self, params):
                return jnp.sum(params**2)

            @property
            def constrained(self):
                return True

            def lower_bound(self, params):
                return jnp.full_like(params, 0.5)

    prob, x = OldStyle(), jnp.array([-1.0, 0.2, 2.0])
    np.testing.assert_array_equal(np.asarray(prob.box_lower(x)), [0.5, 0.5, 0.5])
    np.testing.assert_array_equal(np.asarray(prob.project(x)), [0.5, 0.5, 2.0])


def test_package_exports_are_the_model_terms():
    """ufm.problems.affine_logits / weight_decay are the UFM's logits and penalty; normalize_counts
    stores equal counts as the balanced int."""
    prob = ufm.UFM(K=3, n=(1, 2, 2), d=2, loss=ufm.CrossEntropy(), lam_W=0.1, lam_H=0.2, lam_b=0.3)
    p = prob.init(jax.random.PRNGKey(2))
    p = p._replace(b=jnp.arange(3.0))
    np.testing.assert_array_equal(np.asarray(ufm.problems.affine_logits(p.W, p.H, p.b)),
                                  np.asarray(prob.logits(p)))
    assert float(ufm.problems.weight_decay(prob, p)) == float(prob.penalty(p))
    assert ufm.problems.normalize_counts((2, 2, 2), 3) == (2, (2, 2, 2))
    assert ufm.problems.normalize_counts((1, 2, 2), 3) == ((1, 2, 2), (1, 2, 2))

"""Inputs as users write them: Python numbers, lists, tuples, NumPy and JAX values are accepted;
anything else raises a ValueError that names the argument (never AttributeError/TypeError)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ufm
from tests.helpers import examples


def _forms(x):
    """The ways a user may write the same value."""
    return st.sampled_from([
        x, float(x), np.float64(x), np.float32(x), np.asarray(x), jnp.asarray(x),
    ])


_JUNK = st.sampled_from(["a", b"x", [1.0, 2.0], (0.1,), [[0.1]], {"a": 1}, [None], True, ["x"], np.ones(2)])


def _build(name, value):
    kw = dict(K=3, n=2, d=4, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=5e-3, lam_b=None)
    kw[name] = value
    return ufm.UFM(**kw)


@settings(max_examples=examples(25))
@given(name=st.sampled_from(["lam_W", "lam_H", "lam_b"]), data=st.data())
def test_scalar_hyperparameters_take_every_numeric_form(name, data):
    value = data.draw(_forms(data.draw(st.floats(0.0, 1.0))))
    prob = _build(name, value)
    assert jnp.ndim(getattr(prob, name)) == 0


@settings(max_examples=examples(25))
@given(name=st.sampled_from(["lam_W", "lam_H", "lam_b"]), junk=_JUNK)
def test_junk_hyperparameters_raise_a_named_value_error(name, junk):
    with pytest.raises(ValueError, match=name):
        _build(name, junk)


@settings(max_examples=examples(20))
@given(form=st.sampled_from(["list", "tuple", "numpy", "jax"]), D=st.integers(2, 4), K=st.integers(2, 4),
       K_prob=st.integers(2, 4))
def test_mse_encoding_forms_and_shapes(form, D, K, K_prob):
    E = np.random.default_rng(D * 10 + K).standard_normal((D, K))
    E = {"list": E.tolist(), "tuple": tuple(map(tuple, E)), "numpy": E, "jax": jnp.asarray(E)}[form]
    loss = ufm.MSE(encoding=E)
    if K_prob != K:
        with pytest.raises(ValueError, match=rf"encoding.*\(D, K={K_prob}\)"):
            ufm.UFM(K=K_prob, n=2, d=3, loss=loss)
    else:
        prob = ufm.UFM(K=K_prob, n=2, d=3, loss=loss)
        assert prob.D == D


def test_issue_example_wrong_encoding_shape():
    with pytest.raises(ValueError, match="encoding"):
        ufm.UFM(K=3, n=2, d=4, loss=ufm.MSE(encoding=[[1.0, 0.0], [0.0, 1.0]]))


@settings(max_examples=examples(15))
@given(junk=_JUNK, which=st.sampled_from(["alpha", "gamma"]))
def test_loss_parameters(junk, which):
    make = ufm.LabelSmoothing if which == "alpha" else ufm.Focal
    assert jnp.ndim(getattr(make(np.float32(0.25)), which)) == 0
    with pytest.raises(ValueError, match=which):
        make(junk)


@settings(max_examples=examples(15))
@given(form=st.sampled_from(["list", "tuple", "numpy", "jax"]))
def test_params0_forms(form):
    prob = ufm.UFM(K=3, n=2, d=3, loss=ufm.MSE(), lam_W=1e-2, lam_H=1e-2)
    x = prob.init(jax.random.PRNGKey(0))
    conv = {"list": lambda a: np.asarray(a).tolist(), "tuple": lambda a: tuple(map(tuple, np.asarray(a))),
            "numpy": np.asarray, "jax": jnp.asarray}[form]
    traj = ufm.gradient_flow(prob, t1=0.5, dt=0.1, params0=(conv(x.W), conv(x.H), None))
    ref = ufm.gradient_flow(prob, t1=0.5, dt=0.1, params0=x)
    np.testing.assert_allclose(traj.values, ref.values, rtol=1e-14)
    with pytest.raises(ValueError, match="params0"):
        ufm.gradient_flow(prob, t1=0.5, dt=0.1, params0=(conv(x.W)[:1], conv(x.H), None))


@pytest.mark.parametrize("kwargs, name", [
    (dict(seed=-1), "seed"), (dict(seed=1.5), "seed"), (dict(gtol="x"), "gtol"), (dict(init_scale=-1.0), "init_scale"),
    (dict(order="third"), "order"), (dict(starts=0), "starts"), (dict(max_steps=[3]), "max_steps"),
])
def test_solver_arguments_are_named(kwargs, name):
    prob = ufm.UFM(K=3, n=2, d=3, loss=ufm.CrossEntropy())
    with pytest.raises(ValueError, match=name):
        ufm.minimize(prob, **kwargs)


@pytest.mark.parametrize("kwargs, name", [
    (dict(t1="x"), "t1"), (dict(t1=1.0, dt=-1.0), "dt"), (dict(t1=1.0, momentum=1.5), "momentum"),
    (dict(t1=1.0, metrics=("nope",)), "metrics"), (dict(t1=1.0, rtol=0.0), "rtol"),
])
def test_flow_arguments_are_named(kwargs, name):
    prob = ufm.UFM(K=3, n=2, d=3, loss=ufm.CrossEntropy())
    with pytest.raises(ValueError, match=name):
        ufm.gradient_flow(prob, **kwargs)

"""Per-sample target problems (ufm.MultiLabelUFM, ufm.RegressionUFM) and their catalog theorems.

The closed forms are checked without a solver: the predicted minimizer is factored into explicit
(W, H, b), where the objective must equal the predicted value and the gradient must vanish.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ufm
from proofs_check.catalog import dynamics, targets
from tests.helpers import examples

lams = st.floats(1e-3, 5e-2)
# each example is op-by-op JAX work on a fresh shape: half the profile's examples (5 by default,
# 100 under UFM_HYPOTHESIS_PROFILE=thorough)
HALF = examples(max(3, settings.default.max_examples // 2))
bias_modes = st.sampled_from([None, 0.0, 0.05])


# ---- validation -------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, match", [
    (dict(Y=[[1, 0], [0, 2]], d=2), "multi-hot"),
    (dict(Y=[[1, 0], [0, 0]], d=2), "at least one label"),
    (dict(Y=[[1, 1]], d=2), "K >= 2"),
    (dict(Y=[1, 0, 1], d=2), "2-D"),
    (dict(Y=[[1, 0], [0, 1]], d=0), "d must be"),
    (dict(Y=[[1, 0], [0, 1]], d=2, lam_W=-1.0), "lam_W"),
    (dict(Y=[[1, 0], [0, 1]], d=2, lam_H=float("nan")), "lam_H"),
    (dict(Y=[[1, 0], [0, 1]], d=2, lam_b=-0.1), "lam_b"),
    (dict(Y="ab", d=2), "Y must be"),
])
def test_multilabel_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ufm.MultiLabelUFM(**kwargs)


@pytest.mark.parametrize("kwargs, match", [
    (dict(Y=[[np.nan, 0.0]], d=2), "finite"),
    (dict(Y=np.zeros((0, 3)), d=2), "shape"),
    (dict(Y=[[1.0, 2.0]], d=2.5), "d must be"),
    (dict(Y=[[1.0, 2.0]], d=2, lam_W=None), "lam_W"),
])
def test_regression_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ufm.RegressionUFM(**kwargs)


def test_label_set_targets_validation_and_shape():
    Y = ufm.label_set_targets(4, {1: 2, 2: 1})
    assert Y.shape == (4, 4 * 2 + 6)
    assert set(Y.sum(axis=0).tolist()) == {1.0, 2.0}
    for bad, match in [({}, "counts"), ({5: 1}, "multiplicity"), ({1: 0}, "copies"), ([1, 2], "counts")]:
        with pytest.raises(ValueError, match=match):
            ufm.label_set_targets(4, bad)
    with pytest.raises(ValueError, match="K must be"):
        ufm.label_set_targets(1, {1: 1})


def test_inputs_as_lists_numpy_jax():
    Y = [[1, 0, 1], [0, 1, 1]]
    for y in (Y, np.asarray(Y), jnp.asarray(Y, dtype=jnp.float64)):
        p = ufm.MultiLabelUFM(Y=y, d=2, lam_W=np.float64(1e-2), lam_H=jnp.asarray(1e-2))
        assert p.K == 2 and p.N == 3 and p.lam_W.dtype == jnp.float64


# ---- the objectives ---------------------------------------------------------------------------
@settings(max_examples=HALF)
@given(K=st.integers(2, 4), n=st.integers(1, 3), d=st.integers(1, 4), lw=lams, lh=lams, lb=bias_modes,
       seed=st.integers(0, 2**16))
def test_single_label_multilabel_is_the_ce_ufm(K, n, d, lw, lh, lb, seed):
    base = ufm.UFM(K=K, n=n, d=d, loss=ufm.CrossEntropy(), lam_W=lw, lam_H=lh, lam_b=lb)
    Y = np.eye(K)[:, base.labels]
    ml = ufm.MultiLabelUFM(Y=Y, d=d, lam_W=lw, lam_H=lh, lam_b=lb)
    p = base.init(jax.random.PRNGKey(seed), 1.0)
    assert np.isclose(float(ml.objective(p)), float(base.objective(p)), rtol=1e-13, atol=0.0)
    assert np.array_equal(ml.labels, base.labels)


@settings(max_examples=HALF)
@given(K=st.integers(2, 4), n=st.integers(1, 3), d=st.integers(1, 4), lw=lams, lh=lams, lb=bias_modes,
       seed=st.integers(0, 2**16))
def test_onehot_regression_is_the_mse_ufm(K, n, d, lw, lh, lb, seed):
    base = ufm.UFM(K=K, n=n, d=d, loss=ufm.MSE(), lam_W=lw, lam_H=lh, lam_b=lb)
    reg = ufm.RegressionUFM(Y=np.eye(K)[:, base.labels], d=d, lam_W=lw, lam_H=lh, lam_b=lb)
    p = base.init(jax.random.PRNGKey(seed), 1.0)
    assert np.isclose(float(reg.objective(p)), float(base.objective(p)), rtol=1e-13, atol=0.0)


@settings(max_examples=HALF)
@given(K=st.integers(2, 5), N=st.integers(1, 6), seed=st.integers(0, 2**16))
def test_pick_all_label_is_a_sum_of_cross_entropies(K, N, seed):
    rng = np.random.default_rng(seed)
    Y = (rng.random((K, N)) < 0.5).astype(float)
    Y[rng.integers(0, K, size=N), np.arange(N)] = 1.0
    Z = rng.standard_normal((K, N))
    prob = ufm.MultiLabelUFM(Y=Y, d=2)
    ce = ufm.CrossEntropy()
    expected = sum(np.where(Y[k] > 0, np.asarray(ce(jnp.asarray(Z), jnp.full(N, k))), 0.0) for k in range(K))
    np.testing.assert_allclose(np.asarray(prob.sample_losses(jnp.asarray(Z))), expected, rtol=1e-13)


def test_labels_group_identical_targets():
    Y = np.array([[1, 0, 1, 1, 0], [0, 1, 1, 0, 1], [0, 0, 0, 0, 0.0]])
    Y[2, 1] = 0
    prob = ufm.RegressionUFM(Y=Y, d=2)
    assert prob.labels.tolist() == [0, 1, 2, 0, 1] and prob.num_groups == 3
    assert float(ufm.metrics.nc1(jnp.asarray(np.repeat(np.eye(3), [2, 2, 1], axis=1)[:, [0, 2, 4, 1, 3]]),
                                 prob.labels, K=3)) >= 0.0


def test_vmap_over_regularization():
    Y = ufm.label_set_targets(3, {1: 1, 2: 1})
    p0 = ufm.MultiLabelUFM(Y=Y, d=3).init(jax.random.PRNGKey(0))
    vals = jax.vmap(lambda lw: ufm.MultiLabelUFM(Y=Y, d=3, lam_W=lw).objective(p0))(jnp.array([1e-3, 1e-1]))
    one = [float(ufm.MultiLabelUFM(Y=Y, d=3, lam_W=v).objective(p0)) for v in (1e-3, 1e-1)]
    np.testing.assert_allclose(np.asarray(vals), one, rtol=1e-13)


# ---- closed forms checked at an explicit factorization (no solver) ---------------------------
def _factor(Z, lw, lh, d):
    """W, Ht with W Ht = Z, W W^T = sqrt(lh/lw)(Z Z^T)^{1/2}, Ht^T Ht = sqrt(lw/lh)(Z^T Z)^{1/2}."""
    U, s, Vt = np.linalg.svd(Z, full_matrices=False)
    s = np.where(s > 1e-12 * max(s.max(), 1e-300), s, 0.0)  # sqrt of a rounding-level value would be 1e-8
    r = len(s)
    W = np.zeros((Z.shape[0], d))
    Ht = np.zeros((d, Z.shape[1]))
    W[:, :r] = (lh / lw) ** 0.25 * U * np.sqrt(s)
    Ht[:r] = (lw / lh) ** 0.25 * np.sqrt(s)[:, None] * Vt
    return W, Ht


def _stationary(prob, params, value, rtol=1e-10):
    f, g = jax.value_and_grad(prob.objective)(params)
    gn = np.sqrt(sum(float(jnp.sum(x**2)) for x in jax.tree_util.tree_leaves(g)))
    assert np.isclose(float(f), value, rtol=rtol, atol=0.0), (float(f), value)
    assert gn <= 1e-9 * max(1.0, abs(value)), gn


@settings(max_examples=HALF)
@given(D=st.integers(1, 3), N=st.integers(2, 6), lw=lams, lh=lams, free=st.booleans(), seed=st.integers(0, 2**16))
def test_regression_prediction_is_a_stationary_point_with_the_predicted_value(D, N, lw, lh, free, seed):
    Y = np.random.default_rng(seed).standard_normal((D, N))
    prob = ufm.RegressionUFM(Y=Y, d=max(D, N), lam_W=lw, lam_H=lh, lam_b=0.0 if free else None)
    q = targets.REGRESSION.predict(prob)
    b = q.get("bias")
    W, H = _factor(q["logits"] - (0.0 if b is None else b[:, None]), lw, lh, prob.d)
    _stationary(prob, ufm.Params(jnp.asarray(W), jnp.asarray(H), None if b is None else jnp.asarray(b)), q["value"])
    np.testing.assert_allclose(W @ W.T, q["W_gram"], atol=1e-12)


@settings(max_examples=HALF)
@given(K=st.integers(3, 5), n1=st.integers(1, 3), n2=st.integers(0, 2), lw=st.floats(1e-3, 3e-2),
       lh=st.floats(1e-3, 3e-2), reg_bias=st.booleans())
def test_multilabel_prediction_is_a_stationary_point_with_the_predicted_value(K, n1, n2, lw, lh, reg_bias):
    counts = {1: n1, **({2: n2} if n2 else {})}
    prob = ufm.MultiLabelUFM(Y=ufm.label_set_targets(K, counts), d=K, lam_W=lw, lam_H=lh,
                             lam_b=0.05 if reg_bias else None)
    q = targets.MULTILABEL.predict(prob)
    sizes = np.bincount(prob.labels).astype(float)
    W, Ht = _factor(q["group_logits"] * np.sqrt(sizes), lw, lh, prob.d)
    H = (Ht / np.sqrt(sizes))[:, prob.labels]
    b = jnp.zeros(K) if reg_bias else None
    _stationary(prob, ufm.Params(jnp.asarray(W), jnp.asarray(H), b), q["value"])
    if "tagwise_scale" in q:  # h_S = t * mean of its single-label means, exactly
        Hbar = Ht / np.sqrt(sizes)
        S = np.flatnonzero(np.asarray(prob.Y)[:, prob.labels.tolist().index(K)])  # first pair group
        np.testing.assert_allclose(Hbar[:, K], q["tagwise_scale"][0] * Hbar[:, S].mean(axis=1), atol=1e-12)


@settings(max_examples=HALF)
@given(counts=st.lists(st.integers(1, 9), min_size=2, max_size=4), lw=st.floats(5e-3, 0.1), lh=st.floats(5e-3, 0.1))
def test_imbalanced_free_bias_prediction_is_a_stationary_point(counts, lw, lh):
    K = len(counts)
    prob = ufm.UFM(K=K, n=tuple(counts), d=K, loss=ufm.MSE(), lam_W=lw, lam_H=lh, lam_b=0.0)
    q = targets.IMBALANCED_FREE_BIAS.predict(prob)
    nvec = np.asarray(prob.counts, float)
    W, Ht = _factor(q["logit_means"] * np.sqrt(nvec), lw, lh, prob.d)
    H = (Ht / np.sqrt(nvec))[:, prob.labels]
    _stationary(prob, ufm.Params(jnp.asarray(W), jnp.asarray(H), jnp.asarray(q["bias"])), q["value"])


def test_multilabel_zero_solution_beyond_the_threshold():
    # one multiplicity m = 1 is plain CE: zero iff kappa = sqrt(n lam_W lam_H) >= 1/K
    K, n = 4, 2
    lam = 1.2 / (K * np.sqrt(n))
    prob = ufm.MultiLabelUFM(Y=ufm.label_set_targets(K, {1: n}), d=K, lam_W=lam, lam_H=lam)
    q = targets.MULTILABEL.predict(prob)
    assert np.all(q["W_gram"] == 0) and np.all(q["group_logits"] == 0)
    assert np.isclose(q["value"], np.log(K), rtol=1e-14, atol=0.0)


# ---- catalog entries --------------------------------------------------------------------------
@pytest.mark.parametrize("th", targets.THEOREMS + dynamics.THEOREMS, ids=lambda th: th.name[:30])
def test_proofs_pass(th):
    rows = th.prove()
    assert rows and all(r["passed"] for r in rows), [r["quantity"] for r in rows if not r["passed"]]


@pytest.mark.parametrize("th", targets.THEOREMS + dynamics.THEOREMS, ids=lambda th: th.name[:30])
def test_instances_inside_assumptions(th):
    for prob in th.instances():
        assert th.assumptions(prob)[0], th.assumptions(prob)
    rng = np.random.default_rng(0)
    assert any(th.assumptions(th.random_instance(rng))[0] for _ in range(20))


def test_assumptions_reject():
    reg = ufm.RegressionUFM(Y=np.eye(2), d=2, lam_W=1e-2, lam_H=1e-2, lam_b=0.1)
    assert not targets.REGRESSION.assumptions(reg)[0]
    ml = ufm.MultiLabelUFM(Y=np.array([[1, 1, 0], [0, 1, 1], [0, 0, 1.0]]), d=3)
    assert "balanced" in targets.MULTILABEL.assumptions(ml)[1]
    relu = ufm.DeepUFM(K=2, n=1, widths=(2, 2), loss=ufm.MSE(), lam_W=0.1, lam_H=0.1)
    assert not dynamics.DECAY_LAW.assumptions(relu)[0]
    assert not dynamics.DECAY_LAW.assumptions(ufm.UFM(K=2, n=1, d=2, loss=ufm.MSE(), lam_W=0.1, lam_H=0.2))[0]


@pytest.mark.slow
@pytest.mark.parametrize("th", targets.THEOREMS + dynamics.THEOREMS, ids=lambda th: th.name[:30])
def test_theorem_checks_pass_on_a_random_instance(th):
    rng = np.random.default_rng(1)
    prob = next(p for p in (th.random_instance(rng) for _ in range(20)) if th.assumptions(p)[0])
    rows = th.check(prob)
    assert all(r["passed"] for r in rows), [(r["quantity"], r["rel_error"]) for r in rows if not r["passed"]]

"""gradient_flow: collapse along the flow, conservation laws, order of convergence, failures."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ufm
from tests.helpers import examples

PROB = ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=5e-3, lam_b=5e-3)


def _balance(p):
    """W^T W - H H^T (d x d)."""
    return np.asarray(p.W).T @ np.asarray(p.W) - np.asarray(p.H) @ np.asarray(p.H).T


def test_collapse_metrics_decrease_toward_zero():
    ts = np.geomspace(0.1, 3000.0, 40)
    traj = ufm.gradient_flow(PROB, t1=3000.0, saveat=ufm.SaveAt(ts=ts), init_scale=0.05,
                             metrics=("nc1", "nc2_W", "nc2_H", "nc3"), rtol=1e-8, atol=1e-10)
    for name in ("nc1", "nc2_W", "nc2_H", "nc3"):
        m = traj.metrics[name]
        assert m[-1] <= 1e-3 * max(m[0], 1e-3), (name, m[0], m[-1])
        assert m[-10:].max() < m[:10].min(), name  # late values below every early one
    assert traj.metrics["nc1"][-1] >= 0.0
    assert np.all(np.diff(traj.values) <= 1e-12 * np.abs(traj.values[:-1]))  # f decreases along the flow


def test_balance_conserved_without_regularization():
    """With lam = 0, d/dt (W^T W - H H^T) = 0 along the flow of any g(W H + b 1^T)."""
    prob = ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy(), lam_W=0.0, lam_H=0.0, lam_b=0.0)
    traj = ufm.gradient_flow(prob, t1=20.0, saveat=ufm.SaveAt(ts=[0.0, 5.0, 20.0]), rtol=1e-10, atol=1e-12)
    first = jax.tree_util.tree_map(lambda x: x[0], traj.params)
    Q0 = _balance(first)
    assert np.linalg.norm(_balance(traj.final) - Q0) <= 1e-7 * np.linalg.norm(Q0)
    assert np.linalg.norm(np.asarray(traj.final.W) - np.asarray(first.W)) > 0.1  # it did move


def test_balance_decays_exponentially_with_equal_lams():
    """With lam_W = lam_H = a: W^T W - H H^T = e^{-2 a t} (W^T W - H H^T)(0) (docs/theory.md#dynamics)."""
    a = 0.05
    prob = ufm.UFM(K=3, n=2, d=4, loss=ufm.MSE(), lam_W=a, lam_H=a)
    t1 = 10.0
    traj = ufm.gradient_flow(prob, t1=t1, saveat=ufm.SaveAt(t0=True, t1=True), rtol=1e-10, atol=1e-12)
    Q0 = _balance(jax.tree_util.tree_map(lambda x: x[0], traj.params))
    np.testing.assert_allclose(_balance(traj.final), np.exp(-2 * a * t1) * Q0, atol=1e-7 * np.linalg.norm(Q0))


def test_euler_is_first_order():
    """Fixed-step error against a tight adaptive reference scales like dt (log-log slope ~ 1)."""
    prob = ufm.UFM(K=3, n=2, d=4, loss=ufm.MSE(), lam_W=1e-2, lam_H=1e-2, lam_b=0.0)
    x0 = prob.init(jax.random.PRNGKey(1))
    save = ufm.SaveAt(t1=True, params=False)
    ref = ufm.gradient_flow(prob, t1=1.0, params0=x0, saveat=save, rtol=1e-12, atol=1e-14).final
    dts = np.array([0.04, 0.02, 0.01, 0.005])
    errs = []
    for dt in dts:
        fin = ufm.gradient_flow(prob, t1=1.0, dt=dt, params0=x0, saveat=save).final
        errs.append(np.sqrt(sum(np.sum((np.asarray(u) - np.asarray(v)) ** 2)
                                for u, v in zip(jax.tree_util.tree_leaves(fin), jax.tree_util.tree_leaves(ref)))))
    slope = np.polyfit(np.log(dts), np.log(errs), 1)[0]
    assert 0.9 < slope < 1.1, (slope, errs)


def test_fixed_step_is_gradient_descent_and_heavy_ball():
    """dt fixed: theta <- theta - dt grad f; momentum: PyTorch SGD's v <- mu v + g."""
    x0 = PROB.init(jax.random.PRNGKey(2))
    grad = jax.jit(jax.grad(PROB.objective))
    for mu in (0.0, 0.9):
        x, v = x0, jax.tree_util.tree_map(jnp.zeros_like, x0)
        for _ in range(5):
            v = jax.tree_util.tree_map(lambda vi, gi: mu * vi + gi, v, grad(x))
            x = jax.tree_util.tree_map(lambda xi, vi: xi - 0.1 * vi, x, v)
        traj = ufm.gradient_flow(PROB, t1=0.5, dt=0.1, momentum=mu, params0=x0,
                                 saveat=ufm.SaveAt(t1=True, params=False))
        assert traj.stats["num_steps"] == 5
        for u, w in zip(jax.tree_util.tree_leaves(traj.final), jax.tree_util.tree_leaves(x)):
            np.testing.assert_allclose(u, w, rtol=1e-12, atol=1e-14)


def test_records_at_requested_times_and_custom_metric():
    ts = [0.0, 0.3, 1.7, 2.0]
    traj = ufm.gradient_flow(PROB, t1=2.0, saveat=ufm.SaveAt(ts=ts),
                             metrics={"W_norm": lambda prob, p: jnp.sum(p.W**2)})
    np.testing.assert_allclose(traj.times, ts, rtol=0, atol=1e-14)
    for i in range(len(ts)):
        p = jax.tree_util.tree_map(lambda x: x[i], traj.params)
        np.testing.assert_allclose(traj.values[i], float(PROB.objective(p)), rtol=1e-13)
        np.testing.assert_allclose(traj.metrics["W_norm"][i], float(jnp.sum(p.W**2)), rtol=1e-13)
    fixed = ufm.gradient_flow(PROB, t1=2.0, dt=0.25, saveat=ufm.SaveAt(ts=ts))
    np.testing.assert_allclose(fixed.times, np.ceil(np.asarray(ts) / 0.25) * 0.25)  # first grid time >= ts_i


def test_nonneg_flow_stays_feasible_and_decreases():
    prob = ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=5e-3, nonneg=True)
    for dt in (None, 0.2):
        traj = ufm.gradient_flow(prob, t1=30.0, dt=dt, saveat=ufm.SaveAt(ts=np.linspace(0, 30, 7)))
        assert float(jnp.min(traj.params.H)) >= 0.0
        assert np.all(np.diff(traj.values) <= 1e-10)


def test_divergence_raises_with_what_was_tried():
    prob = ufm.UFM(K=3, n=2, d=4, loss=ufm.MSE(), lam_W=1.0, lam_H=1.0)
    with pytest.raises(ufm.SolveError, match="dt=50"):
        ufm.gradient_flow(prob, t1=5000.0, dt=50.0)
    traj = ufm.gradient_flow(prob, t1=5000.0, dt=50.0, throw=False)
    assert traj.result in (ufm.RESULTS.nonfinite, ufm.RESULTS.diverged)


def test_adaptive_max_steps():
    traj = ufm.gradient_flow(PROB, t1=1e4, max_steps=5, throw=False)
    assert traj.result == ufm.RESULTS.max_steps_reached


def test_float32_flow_runs_in_float32():
    traj = ufm.gradient_flow(PROB, t1=1.0, dt=0.1, dtype=jnp.float32, saveat=ufm.SaveAt(t1=True))
    assert traj.final.W.dtype == jnp.float32
    ref = ufm.gradient_flow(PROB, t1=1.0, dt=0.1, saveat=ufm.SaveAt(t1=True))
    np.testing.assert_allclose(traj.values, ref.values, rtol=1e-5)


def test_new_lam_does_not_recompile_flow():
    save = ufm.SaveAt(t1=True, params=False)
    ufm.gradient_flow(PROB, t1=1.0, dt=0.1, saveat=save)
    before = ufm.solvers._flow_loops.fixed_loop._cache_size()
    other = ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy(), lam_W=1e-1, lam_H=2e-3, lam_b=0.3)
    ufm.gradient_flow(other, t1=2.0, dt=0.05, saveat=save)
    assert ufm.solvers._flow_loops.fixed_loop._cache_size() == before


@pytest.mark.parametrize("kwargs,name", [
    (dict(t1=-1.0), "t1"), (dict(t1=1.0, dt=0.0), "dt"), (dict(t1=1.0, dt=float("nan")), "dt"),
    (dict(t1=1.0, momentum=0.9), "momentum"), (dict(t1=1.0, dt=0.1, momentum=1.0), "momentum"),
    (dict(t1=1.0, metrics=("nope",)), "metric"), (dict(t1=1.0, saveat=ufm.SaveAt(ts=[2.0])), "ts"),
    (dict(t1=1.0, rtol=0.0), "rtol"),
])
def test_flow_rejects_bad_options(kwargs, name):
    with pytest.raises(ValueError, match=name):
        ufm.gradient_flow(PROB, **kwargs)


def test_empty_saveat_raises():
    with pytest.raises(ValueError, match="nothing would be saved"):
        ufm.SaveAt()


# ---- the UFM's written-out gradient (the fast fixed-step path) equals autodiff ------------------
LOSSES = [ufm.CrossEntropy(), ufm.LabelSmoothing(0.1), ufm.Focal(2.0), ufm.MSE()]
TOL = {"float64": 1e-12, "float32": 1e-4}


@st.composite
def ufms(draw):
    """Small UFMs: K, n (balanced or not), d, every loss and bias mode, H >= 0 or free."""
    K = draw(st.integers(2, 6))
    n = draw(st.one_of(st.integers(1, 4), st.lists(st.integers(1, 4), min_size=K, max_size=K).map(tuple)))
    return ufm.UFM(K=K, n=n, d=draw(st.integers(1, 8)), loss=draw(st.sampled_from(LOSSES)),
                   lam_W=draw(st.sampled_from([0.0, 5e-3, 0.1])), lam_H=draw(st.sampled_from([0.0, 5e-3, 0.1])),
                   lam_b=draw(st.sampled_from([None, 0.0, 0.05])), nonneg=draw(st.booleans()))


def _rel(a, b):
    """Largest leaf-wise ``max |a - b| / max(max |b|, 1e-6)`` over two parameter pytrees (the floor
    keeps a leaf that stays at zero, a bias say, from dividing by zero)."""
    return max(float(jnp.max(jnp.abs(u - v)) / jnp.maximum(jnp.max(jnp.abs(v)), 1e-6))
               for u, v in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


@settings(max_examples=examples(8))
@given(prob=ufms(), seed=st.integers(0, 2**16))
def test_ufm_written_out_gradient_equals_autodiff(prob, seed):
    from ufm.solvers._flow_loops import value_and_grad as _value_and_grad

    p = prob.init(jax.random.PRNGKey(seed))
    both = jax.jit(lambda p: (_value_and_grad(prob, p), jax.value_and_grad(prob.objective)(p)))
    (value, grad), (ref_value, ref_grad) = both(p)
    assert abs(float(value - ref_value)) <= 1e-13 * abs(float(ref_value))
    assert _rel(grad, ref_grad) <= 1e-13


@settings(max_examples=examples(6))
@given(prob=ufms(), seed=st.integers(0, 2**16), dtype=st.sampled_from(["float64", "float32"]),
       mu=st.sampled_from([0.0, 0.9]))
def test_fixed_step_flow_follows_the_autodiff_loop(prob, seed, dtype, mu):
    """gradient_flow's compiled heavy ball, 25 steps, against the same loop with jax.grad."""
    from ufm.solvers._common import cast_tree

    steps, lr = 25, 0.1
    prob32 = cast_tree(prob, dtype)
    x0 = cast_tree(prob.project(prob.init(jax.random.PRNGKey(seed))), dtype)

    @jax.jit
    def autodiff_loop(x):
        def step(_, c):
            x, v = c
            v = jax.tree_util.tree_map(lambda vi, gi: mu * vi + gi, v, jax.grad(prob32.objective)(x))
            return prob32.project(jax.tree_util.tree_map(lambda xi, vi: xi - lr * vi, x, v)), v
        return jax.lax.fori_loop(0, steps, step, (x, jax.tree_util.tree_map(jnp.zeros_like, x)))[0]

    traj = ufm.gradient_flow(prob, t1=steps * lr, dt=lr, momentum=mu, params0=x0, dtype=dtype,
                             saveat=ufm.SaveAt(t1=True, params=False))
    assert traj.final.H.dtype == jnp.dtype(dtype)
    assert _rel(traj.final, autodiff_loop(x0)) <= TOL[dtype]


@pytest.mark.parametrize("loss", LOSSES, ids=lambda l: l.name)
@pytest.mark.parametrize("scale", [1.0, 300.0])
def test_loss_mean_and_grad_equals_autodiff(loss, scale):
    """Loss.mean_and_grad (written out for cross-entropy) is the mean loss and its jax.grad, also at
    logit scales where an unshifted exp would overflow."""
    K, N = 5, 12
    D = loss.out_dim(K)
    Z = scale * jax.random.normal(jax.random.PRNGKey(3), (D, N))
    y = jnp.asarray(np.arange(N) % K)
    value, G = jax.jit(loss.mean_and_grad)(Z, y)
    ref_value, ref_G = jax.value_and_grad(lambda Z: jnp.mean(loss(Z, y)))(Z)
    assert abs(float(value - ref_value)) <= 1e-14 * abs(float(ref_value))
    assert float(jnp.max(jnp.abs(G - ref_G))) <= 1e-15 * max(1.0, float(jnp.max(jnp.abs(ref_G))))

"""Fixed-step flows above their stability limit are reported (RESULTS.unstable_step), below it not.

Gradient descent ``x <- x - dt grad f`` never raises ``f`` when ``dt < 2/L`` (descent lemma, ``L``
the largest Hessian eigenvalue along the step), and on a quadratic its top mode grows by
``|1 - dt L| > 1`` a step when ``dt > 2/L``. Heavy ball (``v <- mu v + g``, ``x <- x - dt v``)
keeps ``f + (mu dt/2)|v|^2`` non-increasing for ``dt < 2(1 - mu)/L`` and is unstable on a quadratic
for ``dt > 2(1 + mu)/L``. ``L`` is computed here from the dense Hessian of the flattened parameters.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from jax.flatten_util import ravel_pytree

import ufm
from tests.helpers import examples
from ufm.cli import main

# the instance where a flow rose from about 0.5 to 2.2e11 in two steps and ended successful
BLOW_UP = ufm.UFM(K=3, n=2, d=5, loss=ufm.MSE(), lam_W=2e-3, lam_H=1e-3)
BLOW_UP_ARGV = ["flow", "--K", "3", "--n", "2", "--d", "5", "--loss", "mse", "--lam-W", "2e-3", "--lam-H",
                "1e-3", "--dt", "20", "--t1", "40", "--points", "2"]


def _top_eig(prob, params) -> float:
    """The largest eigenvalue of the Hessian of ``prob.objective`` at ``params`` (dense)."""
    flat, unravel = ravel_pytree(params)
    hess = jax.hessian(lambda z: prob.objective(unravel(z)))(flat)
    return float(np.linalg.eigvalsh(np.asarray(hess))[-1])


def _points(traj):
    """The recorded parameters, one pytree per recorded time."""
    n = len(np.asarray(traj.times))
    return [jax.tree_util.tree_map(lambda x: x[i], traj.params) for i in range(n)]


def test_the_blow_up_instance_is_unstable_with_its_step_and_growth():
    traj = ufm.gradient_flow(BLOW_UP, t1=40.0, dt=20.0, saveat=ufm.SaveAt(t0=True, ts=[20.0], t1=True),
                             throw=False)
    values = np.asarray(traj.values)
    assert traj.result == ufm.RESULTS.unstable_step
    k = traj.stats["rise_step"]
    assert 1 <= k <= 2 and values[k] > values[k - 1]  # the recorded step is one that rose
    assert traj.stats["rise_from"] == pytest.approx(values[k - 1], rel=1e-12, abs=0.0)
    assert traj.stats["rise_to"] == pytest.approx(values[k], rel=1e-12, abs=0.0)
    # the instance is far above its limit: dt L(x0) > 2
    assert 20.0 * _top_eig(BLOW_UP, jax.tree_util.tree_map(lambda x: x[0], traj.params)) > 2.0
    with pytest.raises(ufm.SolveError, match=r"unstable step with dt=20.*smaller dt"):
        ufm.gradient_flow(BLOW_UP, t1=40.0, dt=20.0)
    assert "smaller dt" in ufm.RESULTS.unstable_step.message


def test_the_blow_up_instance_on_the_command_line_exits_nonzero_in_one_line(capsys):
    assert main(BLOW_UP_ARGV) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert "unstable step" in err and "dt=20" in err and "smaller dt" in err


@st.composite
def problems(draw, loss=None):
    """Small UFMs over sizes, losses (or the given one) and regularization strengths."""
    K = draw(st.integers(2, 4))
    return ufm.UFM(K=K, n=draw(st.integers(1, 3)), d=draw(st.integers(K - 1, 5)),
                   loss=loss if loss is not None else draw(st.sampled_from([ufm.MSE(), ufm.CrossEntropy()])),
                   lam_W=draw(st.sampled_from([1e-3, 1e-2, 1e-1])), lam_H=draw(st.sampled_from([1e-3, 1e-2, 1e-1])))


def _near_minimizer(prob, seed):
    """``(x* + 1e-3 xi, L)``: a start next to a minimizer ``x*`` (the end of a long adaptive flow)
    and the largest Hessian eigenvalue ``L`` at ``x*``."""
    x_star = ufm.gradient_flow(prob, t1=30.0 / min(float(prob.lam_W), float(prob.lam_H)), seed=seed,
                               rtol=1e-9, atol=1e-12, saveat=ufm.SaveAt(t1=True, params=False)).final
    flat, unravel = ravel_pytree(x_star)
    return unravel(flat + 1e-3 * jax.random.normal(jax.random.PRNGKey(seed + 1), flat.shape)), _top_eig(prob, x_star)


FAILED = (ufm.RESULTS.unstable_step, ufm.RESULTS.diverged, ufm.RESULTS.nonfinite)


@settings(max_examples=examples(2))
@given(prob=problems(loss=ufm.MSE()), seed=st.integers(0, 2**16), mu=st.sampled_from([0.5, 0.9]))
def test_above_the_stability_limit_euler_and_heavy_ball_are_unstable(prob, seed, mu):
    """Near a minimizer the objective is quadratic to first order. Euler at ``dt = 4/L``: the top
    Hessian mode grows by ``|1 - dt L| = 3`` a step while the others decay, so ``f`` must rise
    within a few steps. Heavy ball at twice its quadratic limit, ``dt = 4 (1 + mu)/L``: the top
    mode grows by a factor above ``3 (1 + mu)`` a step, past the growth bound within a few dozen.
    (Far from a minimizer a step above ``2/L`` can land where the loss is flat, for cross-entropy,
    and never raise ``f``; no rule can call that unstable.)"""
    x0, L = _near_minimizer(prob, seed)
    save = ufm.SaveAt(t1=True, params=False)
    euler = ufm.gradient_flow(prob, t1=60 * 4.0 / L, dt=4.0 / L, params0=x0, throw=False, saveat=save)
    assert euler.result in FAILED
    assert euler.result != ufm.RESULTS.unstable_step or euler.stats["rise_to"] > euler.stats["rise_from"]
    dt = 2 * 2 * (1 + mu) / L
    heavy = ufm.gradient_flow(prob, t1=200 * dt, dt=dt, momentum=mu, params0=x0, throw=False, saveat=save)
    assert heavy.result in FAILED


@settings(max_examples=examples(2))
@given(prob=problems(), seed=st.integers(0, 2**16), scale=st.sampled_from([0.5, 1.0, 2.0]),
       mu=st.sampled_from([0.5, 0.9]))
def test_well_below_the_limit_euler_and_heavy_ball_are_not_unstable(prob, seed, scale, mu):
    """Euler at ``dt = 0.2/L`` never raises ``f``; heavy ball at a quarter of ``2 (1 - mu)/L`` never
    raises its energy ``f + (mu dt/2)|v|^2``, so never ``f`` above ``f_0``. ``L`` is checked along
    the path (a draw where it grew past the bound is skipped)."""
    x0 = prob.init(jax.random.PRNGKey(seed), scale)
    L0 = _top_eig(prob, x0)
    steps = 60
    for dt, momentum, bound in [(0.2 / L0, 0.0, 1.0), (0.5 * (1 - mu) / L0, mu, 2 * (1 - mu))]:
        traj = ufm.gradient_flow(prob, t1=steps * dt, dt=dt, momentum=momentum, params0=x0, throw=False,
                                 saveat=ufm.SaveAt(ts=dt * np.arange(0, steps + 1, 10)))
        # the claim holds where the step stays below the bound along the path (the Hessian at the
        # points visited; the sharpness can grow along a flow from a small start)
        assume(dt * max(_top_eig(prob, p) for p in _points(traj)) < bound)
        assert traj.result == ufm.RESULTS.successful and traj.stats["rise_step"] == -1
        if momentum == 0:
            assert np.all(np.diff(traj.values) <= 1e-12 * np.abs(traj.values[:-1]))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_converged_euler_flow_is_not_flagged_by_rounding(dtype):
    """Thousands of steps at a stable dt past convergence, where f changes only by rounding."""
    prob = ufm.UFM(K=3, n=2, d=4, loss=ufm.MSE(), lam_W=1e-2, lam_H=1e-2)
    x0 = prob.init(jax.random.PRNGKey(0))
    probe = ufm.gradient_flow(prob, t1=200.0, dt=0.05, params0=x0, saveat=ufm.SaveAt(ts=[0.0, 5.0, 50.0, 200.0]))
    L = max(_top_eig(prob, p) for p in _points(probe))
    dt = 1.0 / L
    traj = ufm.gradient_flow(prob, t1=5000 * dt, dt=dt, params0=x0, dtype=dtype, throw=False,
                             saveat=ufm.SaveAt(ts=dt * np.array([0, 2500, 5000]), params=False),
                             metrics=("grad_norm",))
    assert traj.result == ufm.RESULTS.successful and traj.stats["rise_step"] == -1
    tiny = {"float64": 1e-9, "float32": 1e-2}[dtype]
    assert traj.metrics["grad_norm"][-1] <= tiny * traj.metrics["grad_norm"][0]  # it did converge


def test_the_unstable_code_survives_jit_and_vmap():
    scales = jnp.array([0.01, 1.0 / np.sqrt(5.0)])  # the second is the blow-up instance's own start

    @jax.jit
    def codes(scales):
        return jax.vmap(lambda s: ufm.gradient_flow(BLOW_UP, t1=40.0, dt=20.0, init_scale=s, throw=False,
                                                    saveat=ufm.SaveAt(t1=True, params=False)).result)(scales)

    seq = [ufm.gradient_flow(BLOW_UP, t1=40.0, dt=20.0, init_scale=float(s), throw=False,
                             saveat=ufm.SaveAt(t1=True, params=False)).result for s in scales]
    assert np.asarray(codes(scales)).tolist() == [int(r) for r in seq]
    assert seq[1] == ufm.RESULTS.unstable_step

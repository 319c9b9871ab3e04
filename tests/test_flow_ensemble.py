"""Flows inside jit/vmap/lax.map: gradient_flow(throw=False) is pure JAX, flow_ensemble runs many
in one call, and every member equals the sequential call."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ufm

PROB = ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=5e-3)
SAVE = ufm.SaveAt(ts=[0.5, 2.0, 4.0])


def _sequential(prob, lam_W, seed, scale, **kw):
    return ufm.gradient_flow(dataclasses.replace(prob, lam_W=float(lam_W)), t1=4.0, seed=int(seed), init_scale=float(scale),
                             throw=False, saveat=SAVE, metrics=("nc1",), **kw)


def _max_diff(a, b) -> float:
    return max(float(np.max(np.abs(np.asarray(u) - np.asarray(v))))
               for u, v in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


@pytest.mark.parametrize("batch", ["vmap", "map"])
@pytest.mark.parametrize("kw", [dict(dt=0.1), dict(dt=0.1, momentum=0.9), dict(dt=None)], ids=["euler", "hb", "adaptive"])
def test_ensemble_members_equal_sequential_calls(batch, kw):
    lams = np.array([1e-3, 1e-2, 5e-2, 0.2])
    seeds = np.array([0, 3, 7, 11])
    scales = np.array([0.1, 0.5, 1.0, 2.0])
    ens = ufm.flow_ensemble(PROB, t1=4.0, lams={"lam_W": lams}, seeds=seeds, scales=scales, saveat=SAVE,
                            metrics=("nc1",), batch=batch, **kw)
    assert np.asarray(ens.values).shape == (4, 3) and ens.params.H.shape == (4, 3, 4, 6)
    for e in range(4):
        seq = _sequential(PROB, lams[e], seeds[e], scales[e], **kw)
        member = jax.tree_util.tree_map(lambda x: x[e], (ens.values, ens.metrics, ens.params, ens.final))
        scale = max(1.0, float(np.max(np.abs(seq.values))))
        assert _max_diff(member, (seq.values, seq.metrics, seq.params, seq.final)) <= 1e-12 * scale
        assert int(ens.result[e]) == int(seq.result)
        assert int(ens.stats["num_steps"][e]) == seq.stats["num_steps"]


def test_user_jit_vmap_of_gradient_flow_reuses_the_program_for_new_values():
    def final_value(lam, seed, scale):
        p = dataclasses.replace(PROB, lam_H=lam)
        traj = ufm.gradient_flow(p, t1=2.0, dt=0.1, seed=seed, init_scale=scale, throw=False,
                                 saveat=ufm.SaveAt(t1=True, params=False))
        return traj.values[-1], traj.result

    run = jax.jit(jax.vmap(final_value))
    lams, seeds, scales = jnp.array([1e-3, 1e-1]), jnp.array([0, 1]), jnp.array([0.3, 0.6])
    values, codes = run(lams, seeds, scales)
    size = run._cache_size()
    values2, _ = run(2 * lams, seeds + 5, 1.5 * scales)  # new values, same shapes: no new program
    assert run._cache_size() == size
    assert np.asarray(codes).dtype == np.int32 and np.all(np.asarray(codes) == ufm.RESULTS.successful)
    for i in range(2):
        seq = ufm.gradient_flow(dataclasses.replace(PROB, lam_H=float(2 * lams[i])), t1=2.0, dt=0.1,
                                seed=int(seeds[i]) + 5, init_scale=float(1.5 * scales[i]),
                                saveat=ufm.SaveAt(t1=True, params=False))
        assert abs(float(values2[i]) - float(seq.values[-1])) <= 1e-12 * abs(float(seq.values[-1]))


def test_flow_ensemble_does_not_recompile_for_new_values():
    kw = dict(t1=1.0, dt=0.1, saveat=ufm.SaveAt(t1=True, params=False))
    ufm.flow_ensemble(PROB, lams={"lam_W": [1e-3, 1e-2]}, seeds=[0, 1], **kw)
    run = ufm.solvers._flow_ensemble._run_cpu if jax.default_backend() == "cpu" else ufm.solvers._flow_ensemble._run_other
    size = run._cache_size()
    ufm.flow_ensemble(PROB, lams={"lam_W": [0.3, 0.02]}, seeds=[5, 9], **kw)
    assert run._cache_size() == size


def test_a_thousand_flows_in_one_call():
    prob = ufm.UFM(K=2, n=2, d=2, loss=ufm.MSE(), lam_W=1e-2, lam_H=1e-2)
    E = 1000
    ens = ufm.flow_ensemble(prob, t1=5.0, dt=0.05, seeds=np.arange(E), scales=np.linspace(0.1, 1.0, E),
                            lams={"lam_H": np.geomspace(1e-3, 1e-1, E)}, saveat=ufm.SaveAt(ts=[0.0, 2.5, 5.0]))
    values = np.asarray(ens.values)
    assert values.shape == (E, 3) and np.asarray(ens.result).shape == (E,)
    assert np.all(np.asarray(ens.result) == ufm.RESULTS.successful)
    assert np.all(np.diff(values, axis=1) <= 1e-12 * np.abs(values[:, :-1]))  # each member descends
    # member e starts where its own seed and scale put it
    for e in (0, 499, 999):
        x0 = prob.init(jax.random.PRNGKey(e), float(np.linspace(0.1, 1.0, E)[e]))
        assert np.allclose(np.asarray(ens.params.H[e, 0]), np.asarray(x0.H), rtol=0, atol=1e-15)


@pytest.mark.parametrize("kwargs, named", [
    (dict(lams={"K": [1, 2]}), "lams"),
    (dict(lams={"lam_W": [1e-3, -1.0]}), "lams"),
    (dict(lams={"lam_W": [1e-3, 1e-2]}, seeds=[0, 1, 2]), "length"),
    (dict(seeds=[0.5, 1.5]), "seeds"),
    (dict(seeds=[0, 1], scales=[0.1, 0.0]), "scales"),
    (dict(seeds=[0, 1], batch="pmap"), "batch"),
    (dict(seeds=[0, 1], momentum=1.5), "momentum"),
])
def test_flow_ensemble_rejects_bad_input(kwargs, named):
    with pytest.raises(ValueError, match=named):
        ufm.flow_ensemble(PROB, t1=1.0, dt=0.1, **kwargs)


def test_throw_true_inside_a_trace_is_a_value_error():
    with pytest.raises(ValueError, match="throw=False"):
        jax.jit(lambda s: ufm.gradient_flow(PROB, t1=1.0, dt=0.1, init_scale=s).values)(0.5)

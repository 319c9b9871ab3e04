"""ufm.DeepUFM: the model, its validation, the closed forms of docs/theory.md#deep-reduction and the
low-rank regime. Inside the DNC-optimal regime the solver matches the closed forms to 1e-8;
outside it only ``solver value < DNC value`` is asserted (strictly: by the catalog theorem's
stated margin, so a solve that lands on the DNC point fails). Only quantities the theorems
determine are compared (never the pre-activations of layer 1 of a ReLU model)."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import ufm
from proofs_check.catalog import deep, deep_relu
from ufm import DeepUFM, layer_metrics
from ufm.solvers import polish_relu
from ufm.solvers._common import grad_norm
from tests.helpers import examples

TOL = 1e-8


def _mse(L, activation="linear", K=3, width=5, lam=4e-3, lam_H=4e-3, **kw):
    return DeepUFM(K=K, n=2, widths=(width,) * L, loss=ufm.MSE(), lam_W=lam, lam_H=lam_H,
                   activation=activation, **kw)


# ---- the model ---------------------------------------------------------------------------------
@settings(max_examples=examples(5))
@given(lam_W=st.floats(0.0, 0.1), lam_H=st.floats(0.0, 0.1), lam_b=st.sampled_from([None, 0.0, 0.3]),
       ce=st.booleans(), seed=st.integers(0, 2**16))
def test_one_layer_is_the_plain_ufm(lam_W, lam_H, lam_b, ce, seed):
    loss = ufm.CrossEntropy() if ce else ufm.MSE()
    dp = DeepUFM(K=3, n=2, widths=(4,), loss=loss, lam_W=lam_W, lam_H=lam_H, lam_b=lam_b)
    up = ufm.UFM(K=3, n=2, d=4, loss=loss, lam_W=lam_W, lam_H=lam_H, lam_b=lam_b)
    x = dp.init(jax.random.PRNGKey(seed))
    b = None if x.b is None else x.b + 0.1
    assert np.isclose(float(dp.objective(x._replace(b=b))), float(up.objective(ufm.Params(x.Ws[0], x.H, b))),
                      rtol=1e-13, atol=0)


def test_objective_formula_and_shapes():
    prob = DeepUFM(K=3, n=2, widths=(4, 5), loss=ufm.MSE(), lam_W=[1e-2, 2e-2], lam_H=3e-2, lam_b=0.5)
    x = prob.init(jax.random.PRNGKey(1))
    assert [W.shape for W in x.Ws] == [(5, 4), (3, 5)] and x.H.shape == (4, 6) and x.b.shape == (3,)
    W1, W2 = (np.asarray(W) for W in x.Ws)
    H, b = np.asarray(x.H), np.asarray(x.b)
    Z = W2 @ np.maximum(W1 @ H, 0) + b[:, None]
    Y = np.eye(3)[:, prob.labels]
    f = (0.5 * np.sum((Z - Y) ** 2) / 6 + 0.5e-2 * np.sum(W1**2) + 1e-2 * np.sum(W2**2)
         + 1.5e-2 * np.sum(H**2) + 0.25 * np.sum(b**2))
    assert np.isclose(float(prob.objective(x)), f, rtol=1e-13, atol=0.0)


@pytest.mark.parametrize("kwargs,match", [
    (dict(widths=()), "widths"), (dict(widths=(3, 0)), "widths"), (dict(widths=(3, 2.5)), "widths"),
    (dict(lam_W=-1e-3), "lam_W"), (dict(lam_W=[1e-3, 1e-3, 1e-3]), "lam_W"), (dict(lam_W=[1e-3, np.nan]), "lam_W"),
    (dict(lam_H=-1.0), "lam_H"), (dict(lam_H=[1e-3, 1e-3]), "lam_H"), (dict(lam_H=None), "lam_H"),
    (dict(lam_b=-0.1), "lam_b"), (dict(activation="tanh"), "activation"), (dict(K=1), "K"),
    (dict(loss="mse"), "loss"), (dict(n=0), "n"), (dict(pattern=(np.ones((2, 2)),)), "pattern"),
])
def test_validation(kwargs, match):
    args = dict(K=3, n=2, widths=(4, 4), loss=ufm.MSE(), lam_W=1e-3, lam_H=1e-3) | kwargs
    with pytest.raises(ValueError, match=match):
        DeepUFM(**args)


def test_per_layer_lams_are_arrays_and_vmappable():
    prob = _mse(2, lam=[1e-3, 2e-3])
    assert prob.lam_W.shape == (2,) and prob.lam_W.dtype == jnp.float64
    x = prob.init(jax.random.PRNGKey(0))
    lams = jnp.array([[1e-3, 2e-3], [3e-3, 4e-3]])
    vals = jax.vmap(lambda lw: dataclasses.replace(prob, lam_W=lw).objective(x))(lams)
    direct = [float(_mse(2, lam=list(map(float, lw))).objective(x)) for lw in lams]
    assert np.allclose(np.asarray(vals), direct, rtol=1e-13, atol=0.0)


def test_relu_features_is_a_constraint():
    prob = _mse(2, activation="relu", relu_features=True)
    x = prob.init(jax.random.PRNGKey(0))
    assert prob.constrained and float(jnp.min(x.H)) >= 0
    lo = prob.box_lower(x)
    assert float(jnp.max(lo.H)) == 0.0 and all(bool(jnp.all(jnp.isinf(L))) for L in lo.Ws)
    assert float(jnp.min(prob.project(x._replace(H=-x.H)).H)) == 0.0


# ---- closed forms without the solver -----------------------------------------------------------
@settings(max_examples=examples(8))
@given(L=st.integers(1, 4), lam=st.floats(1e-3, 3e-2), lam_H=st.floats(1e-3, 3e-2),
       relu=st.booleans())
def test_dnc_point_value_and_balance(L, lam, lam_H, relu):
    """The explicit DNC point has value h_m(x*) and is balanced: lam_{l+1} W^T W = lam_l W W^T."""
    prob = _mse(L, "relu" if relu else "linear", lam=lam, lam_H=lam_H)
    pred, params = deep.dnc_prediction(prob), deep.dnc_params(prob)
    m, g = L + 1, deep.gamma(prob)
    assert np.isclose(float(prob.objective(params)), float(deep.h(pred["x"], m, g)), rtol=1e-12, atol=0.0)
    Ws = [np.asarray(W) for W in params.Ws]
    for l in range(L - 1):
        assert np.allclose(lam * Ws[l + 1].T @ Ws[l + 1], lam * Ws[l] @ Ws[l].T, atol=1e-12)
    Hb = np.asarray(params.H)[:, ::2]
    assert np.allclose(lam * Ws[0].T @ Ws[0], 2 * lam_H * Hb @ Hb.T, atol=1e-12)  # n = 2 copies
    if pred["x"] > 0:  # a critical point (the kinks of a ReLU model see zero data gradient here)
        assert float(grad_norm(prob, params)) <= 1e-12


@settings(max_examples=examples(10))
@given(m=st.integers(2, 6), frac=st.floats(0.05, 1.5))
def test_scalar_optimum(m, frac):
    g = frac * (deep.jump_gamma(m) if m >= 3 else 1.0)
    xs, xloc = deep.scalar_optimum(m, g)
    grid = np.linspace(0, 1.2, 200001)
    assert deep.h(xs, m, g) <= np.min(deep.h(grid, m, g)) + 1e-12
    if xloc > 0:
        assert abs(xloc - 1 + g * xloc ** (2 / m - 1)) < 1e-13
    if m >= 3 and frac < 0.95:
        assert xs >= (m - 2) / (m - 1) - 1e-12  # below the jump the nonzero branch is beyond x_J
    if m >= 3 and frac > 1.05:
        assert xs == 0.0


@pytest.mark.parametrize("theorem", [t for t in deep.THEOREMS if t is not deep.LOW_RANK], ids=lambda t: t.name[:30])
def test_symbolic_proofs(theorem):
    for row in theorem.prove():
        assert row["passed"], row["quantity"]


def test_srg_proof():
    assert all(row["passed"] for row in deep.LOW_RANK.prove())


def test_origin_hessian_is_diag_of_lams():
    prob = DeepUFM(K=3, n=2, widths=(3, 3), loss=ufm.MSE(), lam_W=[2e-3, 5e-3], lam_H=1e-3, activation="linear")
    lo, hi = ufm.hessian_extreme_eigs(prob, prob.zeros())
    assert np.isclose(lo, 1e-3, rtol=1e-10, atol=0.0) and np.isclose(hi, 5e-3, rtol=1e-10, atol=0.0)


# ---- the solver against the closed forms -------------------------------------------------------
def _assert_closed_form(theorem, prob):
    rows = theorem.check(prob)
    for r in rows:
        assert r["passed"], f"{r['quantity']}: rel. error {r['rel_error']} on {r['instance']}"


@pytest.mark.parametrize("lam", [4e-3, [2e-3, 9e-3]])
def test_deep_linear_matches_closed_forms(lam):
    _assert_closed_form(deep.DEEP_LINEAR, _mse(2, lam=lam))


def test_jump_zero_solution_above_threshold():
    g = 1.1 * deep.jump_gamma(3)
    lam = g / (3 * 2 ** (1 / 3))
    _assert_closed_form(deep.JUMP, DeepUFM(K=3, n=2, widths=(3, 3), loss=ufm.MSE(), lam_W=lam, lam_H=lam,
                                           activation="linear"))


def test_two_layer_relu_matches_closed_forms():
    """Tirer & Bruna's extended UFM: value, post-ReLU Gram and W_2's singular values (not W_1, H)."""
    _assert_closed_form(deep.TWO_LAYER, DeepUFM(K=3, n=2, widths=(5, 5), loss=ufm.MSE(), lam_W=5e-3, lam_H=5e-3))


def test_polish_relu_certifies_a_kink_minimizer():
    prob = DeepUFM(K=3, n=2, widths=(5, 5), loss=ufm.MSE(), lam_W=5e-3, lam_H=5e-3)
    near = ufm.minimize(prob, gtol=1e-12, throw=False, init_scale=1.0, seed=1)
    sol = polish_relu(prob, near.params)
    assert sol.converged and sol.grad_norm <= 1e-12 * max(1, sol.value)
    assert sol.value <= near.value + 1e-12
    assert sol.stats["pattern_gap"] <= 1e-12


def test_gradient_flow_and_layer_metrics():
    prob = _mse(2, "relu")
    traj = ufm.gradient_flow(prob, t1=5.0, dt=0.05, init_scale=0.5,
                             metrics={"nc1_layer1": lambda p, x: ufm.metrics.nc1(x.H, p.labels, K=p.K)})
    assert np.all(np.diff(traj.values) <= 1e-12)
    m = layer_metrics(prob, deep.dnc_params(prob))
    assert m["rank"].tolist() == [3, 3] and np.allclose(m["orth"], 0, atol=1e-12)
    assert np.allclose(m["nc1"], 0, atol=1e-20)
    assert [s.shape for s in m["sigma_W"]] == [(5,), (3,)]


# ---- the low-rank regime (K = 10) --------------------------------------------------------------
def _k10():
    return DeepUFM(K=10, n=1, widths=(30,) * 4, loss=ufm.MSE(), lam_W=0.004, lam_H=0.004)


@settings(max_examples=examples(10), deadline=None)
@given(rel=st.floats(-1e-3, 1e-3), certified=st.booleans())
def test_low_rank_rows_fail_on_a_tie_and_without_a_certificate(rel, certified):
    """The theorem's strict rows pass only ``margin`` below the DNC value (a tie, or anything closer,
    fails), and its certificate row fails when no solve was certified; the DNC row is numeric."""
    prob, thm = _k10(), deep_relu.LOW_RANK
    predicted = thm.assemble(prob, thm.evaluator(prob))
    dnc = float(predicted[deep_relu.SRG_BELOW])  # the closed form h_m(x*), the same for both strict rows
    margin = thm.strict_margin[0]
    assume(abs(rel + margin) > 1e-9)  # not at the margin's edge, where rounding decides
    v = dnc * (1 + rel)
    measured = {q: (v if q in thm.strict_upper_bounds else predicted[q]) for q in predicted}
    rows = {r["quantity"]: r for r in thm.compare(prob, predicted, measured,
                                                 {"grad_norm": 1e-12, "converged": certified})}
    for q in (deep_relu.SRG_BELOW, deep_relu.SOLVER_BELOW):
        assert rows[q]["kind"] == "strict bound"
        assert rows[q]["passed"] == (v <= dnc * (1 - margin))
    assert rows["certificate grad_norm"]["passed"] == certified
    assert all(r["passed"] for q, r in rows.items() if r["kind"] == "numeric")


def test_srg_start_is_off_the_kinks():
    """The candidate search's first start: the construction with ``s = t = SRG_OFFSET``; every hidden
    pre-activation is at least ``SRG_OFFSET / (1 + SRG_OFFSET)`` of its layer's largest away from 0,
    with the construction's pattern (the expansion layer's post-activations a multiple of I_K)."""
    prob = _k10()
    gc = ufm.problems.GraphCandidate(prob, 5, prob.L - 1)
    th0 = deep_relu.srg_start(gc)
    assert np.array_equal(th0[: 2 * prob.L + 1], np.asarray(gc.init(None))[: 2 * prob.L + 1])
    pre, _ = prob.layers(gc.build(jnp.asarray(th0)))
    off = deep_relu.SRG_OFFSET / (1 + deep_relu.SRG_OFFSET)
    for Z in pre[:-1]:
        Z = np.asarray(Z)[:, :prob.K]
        live = np.any(Z != 0, axis=1)  # the padding rows of the width-30 layers are 0 by construction
        assert np.min(np.abs(Z[live])) >= off * np.max(np.abs(Z)) * (1 - 1e-12)
    Ze = np.asarray(pre[prob.L - 2])[: prob.K, : prob.K]  # the expansion layer e = L - 1
    assert np.array_equal(Ze > 0, np.eye(prob.K, dtype=bool))


@pytest.mark.slow
def test_low_rank_beats_dnc():
    """Every row of the catalog theorem passes on its instance: the DNC search reproduces h_m(x*),
    the candidate search and the lowest certified solve among ``SOLVER_SEEDS`` are below the DNC value
    by the stated margin (a tie fails), and that solve is certified. The off-kink construction alone
    (start 0 of the search) is below the DNC value too, with hidden class means of rank < K."""
    prob = _k10()
    for r in deep_relu.LOW_RANK.check(prob):
        assert r["passed"], f"{r['quantity']}: measured {r['measured']}, predicted {r['predicted']}"
    dnc = deep.dnc_prediction(prob)["value"]
    margin = deep_relu.LOW_RANK.strict_margin[0]
    srg, params, _ = deep.srg_candidate(prob, 5, starts=1)
    assert srg <= dnc * (1 - margin)
    m = layer_metrics(prob, params, rank_rtol=1e-6)
    assert m["rank"][:3].max() < 10 and m["nc1"].max() <= 1e-20


# ---- the Clarke certificate at kinks -------------------------------------------------------------
def test_clarke_certificate_at_kinks():
    from jax.flatten_util import ravel_pytree

    from ufm.solvers._relu import clarke_certificate, kink_masks

    prob = DeepUFM(K=3, n=2, widths=(5, 5), loss=ufm.MSE(), lam_W=5e-3, lam_H=5e-3)
    x = deep.dnc_params(prob)
    on, kink = kink_masks(prob, x)
    c = clarke_certificate(prob, x)
    # the DNC point of the catalog: at kinks (the zeros of its orthogonal frame), Clarke stationary
    assert len(c["kinks"]) == int(sum(np.sum(k) for k in kink)) > 0
    assert c["kkt"] <= 1e-12 * max(1.0, c["value"]) and c["min_eig"] >= -1e-8
    assert np.all((c["slopes"] >= 0) & (c["slopes"] <= 1))
    assert c["order"] == "first (Clarke) + second on the kink manifold"
    # moving only W_L keeps every pre-activation, hence the kinks, but the W_L-gradient (no slope
    # reaches it) bounds the residual from below; every vertex (an adjacent piece) bounds it from above
    y = x._replace(Ws=x.Ws[:-1] + (1.1 * x.Ws[-1],))
    c = clarke_certificate(prob, y, second=False)
    gWL = float(jnp.linalg.norm(jax.grad(prob.objective)(y).Ws[-1]))
    assert len(c["kinks"]) == len(clarke_certificate(prob, x, second=False)["kinks"])
    assert c["kkt"] >= gWL * (1 - 1e-9) > 1e-6
    for vertex in (0.0, 1.0):
        piece = dataclasses.replace(prob, pattern=tuple(M + vertex * K_ for M, K_ in zip(on, kink)))
        g = ravel_pytree(jax.grad(piece.objective)(y))[0]
        assert c["kkt"] <= float(jnp.linalg.norm(g)) * (1 + 1e-9)


def test_polish_kink_returns_to_a_clarke_point():
    from ufm.solvers._relu import clarke_certificate, polish_kink

    prob = DeepUFM(K=3, n=2, widths=(5, 5), loss=ufm.MSE(), lam_W=5e-3, lam_H=5e-3)
    x = deep.dnc_params(prob)
    y = x._replace(Ws=x.Ws[:-1] + (1.1 * x.Ws[-1],))  # at the same kinks, not stationary
    z, _, res, _ = polish_kink(prob, y, gtol=1e-13)
    c = clarke_certificate(prob, z)
    assert clarke_certificate(prob, y, second=False)["kkt"] > 1e-6
    assert c["kkt"] <= 1e-10 * max(1.0, c["value"]) and c["min_eig"] >= -1e-8
    assert abs(c["value"] - float(prob.objective(x))) <= 1e-9 * max(1.0, c["value"])


@settings(deadline=None)
@given(K=st.integers(2, 4), width=st.integers(2, 5), seed=st.integers(0, 2**16))
def test_dead_units_are_zeroed_without_raising_the_data_term(K, width, seed):
    from ufm.solvers._relu import _dead_units, _frozen_dead, kink_masks

    prob = DeepUFM(K=K, n=2, widths=(width, width, width), loss=ufm.MSE(), lam_W=1e-3, lam_H=1e-3)
    x = prob.init(jax.random.PRNGKey(seed))
    W2 = x.Ws[1].at[0].set(-jnp.abs(x.Ws[1][0]))  # unit 0 of layer 2 reads post-ReLU inputs >= 0: dead
    x = x._replace(Ws=(x.Ws[0], W2) + x.Ws[2:])
    on, _ = kink_masks(prob, x)
    dead = _dead_units(on)
    assert dead[1][0]
    y, fixed = _frozen_dead(x, dead)
    assert abs(float(prob.data_term(y)) - float(prob.data_term(x))) <= 1e-12 * max(1.0, float(prob.data_term(x)))
    assert float(prob.penalty(y)) <= float(prob.penalty(x))
    from jax.flatten_util import ravel_pytree

    assert np.all(np.asarray(ravel_pytree(y)[0])[fixed] == 0.0)
    assert int(fixed.sum()) >= x.Ws[1].shape[1] + x.Ws[2].shape[0]  # the forced unit's row and column

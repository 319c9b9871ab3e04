"""ufm.etf_prediction and ufm.etf_verdict: the ETF ansatz against the catalog and the solver."""

import math
import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import ufm
from proofs_check.catalog import mse as mse_catalog
from proofs_check.catalog import zhou2022, zhu2021
from ufm.etf import _reduction as _etf

BIASES = [None, 0.0, 5e-3]


def poly1(z, y, eps):
    logp = jax.nn.log_softmax(z)[y]
    return -logp + eps * (1.0 - jnp.exp(logp))


def weighted_ce(z, y):  # not symmetric under relabelling: class 0 counts twice
    return -jax.nn.log_softmax(z)[y] * jnp.where(y == 0, 2.0, 1.0)


def _lams(kappa, n, rho=1.0):
    return kappa * rho / math.sqrt(n), kappa / (rho * math.sqrt(n))


def _value_of(expr, prob):
    """A catalog expression at the problem's numbers, by symbol name (K, n, lambda_W, alpha, ...)."""
    names = {"K": prob.K, "n": prob.n, "lambda_W": float(prob.lam_W), "lambda_H": float(prob.lam_H)}
    if isinstance(prob.loss, ufm.LabelSmoothing):
        names["alpha"] = float(prob.loss.alpha)
    return float(expr.subs({s: names[s.name] for s in expr.free_symbols}))


def _rel(a, b):
    return abs(a - b) / max(1e-300, abs(b))


CATALOG = [(zhu2021.CE_ETF, lambda: ufm.CrossEntropy()), (zhou2022.LS_ETF, lambda: ufm.LabelSmoothing(0.2)),
           (zhou2022.FOCAL_ETF, lambda: ufm.Focal(2.0))]


@pytest.mark.parametrize("theorem,make_loss", CATALOG, ids=["ce", "ls", "focal"])
@pytest.mark.parametrize("lam_b", BIASES)
@given(frac=st.floats(0.05, 0.9), rho=st.floats(0.5, 2.0), K=st.sampled_from([2, 4]))
def test_prediction_equals_the_catalog(theorem, make_loss, lam_b, frac, rho, K):
    loss = make_loss()
    top = _etf.etf_zero_threshold(loss, K)
    lw, lh = _lams(frac * top, 5, rho)
    prob = ufm.UFM(K=K, n=5, d=K + 1, loss=loss, lam_W=lw, lam_H=lh, lam_b=lam_b)
    pred, cat = ufm.etf_prediction(prob), theorem.predict(prob)
    assert not pred.zero
    assert _rel(pred.value, cat["value"]) <= 1e-12
    assert _rel(pred.w_norm**2, cat["w_norm2"][0]) <= 1e-12
    assert _rel(pred.h_norm**2, cat["h_norm2"][0]) <= 1e-12
    assert pred.offset == 0.0 and pred.shift_invariant


@pytest.mark.parametrize("theorem,make_loss", [(zhu2021.CE_ZERO, lambda: ufm.CrossEntropy()),
                                               (zhou2022.LS_ETF, lambda: ufm.LabelSmoothing(0.3))])
def test_threshold_equals_the_catalog(theorem, make_loss):
    for K in (2, 4, 7):
        prob = ufm.UFM(K=K, n=3, d=K, loss=make_loss(), lam_W=1e-3, lam_H=1e-3)
        expected = _value_of(theorem.expressions["threshold"], prob)
        assert _rel(ufm.etf_prediction(prob).kappa_threshold, expected) <= 1e-12


def test_zero_side_equals_the_catalog():
    prob = ufm.UFM(K=4, n=5, d=8, loss=ufm.CrossEntropy(), lam_W=_lams(1.3 / 4, 5)[0],
                   lam_H=_lams(1.3 / 4, 5)[1], lam_b=5e-3)
    pred, cat = ufm.etf_prediction(prob), zhu2021.CE_ZERO.predict(prob)
    assert pred.zero and pred.g == 0.0 and pred.w_norm == 0.0
    assert _rel(pred.value, cat["value"]) <= 1e-12 and _rel(pred.value, math.log(4)) <= 1e-14


@pytest.mark.parametrize("theorem,lam_b", [(mse_catalog.MSE_FREE_BIAS, 0.0), (mse_catalog.MSE_REG_BIAS, 0.5)])
def test_mse_with_bias_uses_the_offset_and_equals_the_catalog(theorem, lam_b):
    lw, lh = _lams(0.4 / 4, 5)
    prob = ufm.UFM(K=4, n=5, d=8, loss=ufm.MSE(), lam_W=lw, lam_H=lh, lam_b=lam_b)
    pred = ufm.etf_prediction(prob)
    assert not pred.shift_invariant
    assert _rel(pred.value, theorem.predict(prob)["value"]) <= 1e-12
    assert _rel(pred.offset, 1.0 / (4 * (1 + lam_b))) <= 1e-12  # b = 1/(K(1+lam_b)) on the ETF branch
    assert _rel(pred.g, 1 - 4 * pred.kappa) <= 1e-12


@given(u=st.floats(0.01, 0.5), side=st.sampled_from([-1, 1]), eps=st.floats(-1.0, 3.0))
def test_zero_flag_switches_at_the_threshold(u, side, eps):
    loss = ufm.CustomLoss(poly1, eps=eps)
    top = _etf.etf_zero_threshold(loss, 3)
    lw, lh = _lams(top * (1 + side * u), 2)
    pred = ufm.etf_prediction(ufm.UFM(K=3, n=2, d=3, loss=loss, lam_W=lw, lam_H=lh))
    assert pred.zero == (side > 0)
    phi = _etf.etf_phi(loss, 3, pred.kappa, np.geomspace(1e-3, 50, 2000))
    assert np.min(phi) >= pred.value - 1e-12  # a global minimum: nothing on a fine grid is lower


@given(eps=st.floats(0.0, 2.0), lam_b=st.sampled_from(BIASES), seed=st.integers(0, 100))
def test_the_etf_point_realizes_the_predicted_value(eps, lam_b, seed):
    prob = ufm.UFM(K=3, n=2, d=4, loss=ufm.CustomLoss(poly1, eps=eps), lam_W=4e-3, lam_H=6e-3, lam_b=lam_b)
    pred = ufm.etf_prediction(prob)
    x = ufm.etf_params(prob, pred, seed=seed)
    assert _rel(float(prob.objective(x)), pred.value) <= 1e-12
    assert _rel(float(jnp.linalg.norm(x.W[0])), pred.w_norm) <= 1e-12


def test_new_loss_parameter_does_not_recompile_the_reduction():
    prob = ufm.UFM(K=3, n=2, d=3, loss=ufm.CustomLoss(poly1, eps=0.5), lam_W=4e-3, lam_H=6e-3)
    ufm.etf_prediction(prob)
    sizes = _etf._solve._cache_size(), _etf._threshold._cache_size()
    ufm.etf_prediction(ufm.UFM(K=3, n=2, d=3, loss=ufm.CustomLoss(poly1, eps=1.5), lam_W=1e-3, lam_H=2e-3))
    assert (_etf._solve._cache_size(), _etf._threshold._cache_size()) == sizes


@pytest.mark.parametrize("kwargs,match", [
    (dict(n=(2, 3, 2)), "balanced"), (dict(nonneg=True), "nonneg"), (dict(d=1), "d=1 < K-1"),
    (dict(lam_W=0.0), "lam_W"), (dict(loss=ufm.CustomLoss(weighted_ce)), "relabelling"),
    (dict(loss=ufm.MSE(np.ones((2, 3)) + np.eye(2, 3))), "logits"),
])
def test_outside_the_assumptions(kwargs, match):
    base = dict(K=3, n=2, d=3, loss=ufm.CrossEntropy(), lam_W=1e-3, lam_H=1e-3)
    with pytest.raises(ValueError, match=match):
        ufm.etf_prediction(ufm.UFM(**{**base, **kwargs}))


def test_verdict_custom_loss_etf_optimal_agrees_to_1e8():
    prob = ufm.UFM(K=3, n=2, d=4, loss=ufm.CustomLoss(poly1, eps=1.0), lam_W=5e-3, lam_H=5e-3, lam_b=1e-2)
    v = ufm.etf_verdict(prob, starts=2)
    assert v.verdict == "ETF optimal" and v.optimal
    assert abs(v.solution.value - v.prediction.value) <= 1e-8 * max(1.0, v.prediction.value)
    assert v.rows.kind == "simplex_etf" and v.means.kind == "simplex_etf"
    assert all(abs(x - v.prediction.value) <= 1e-8 for x in v.values if np.isfinite(x))


@pytest.mark.slow
def test_verdict_mse_without_bias_is_not_an_etf():
    prob = ufm.UFM(K=3, n=2, d=4, loss=ufm.MSE(), lam_W=5e-3, lam_H=5e-3)
    v = ufm.etf_verdict(prob, starts=2)
    assert v.verdict == "ETF not optimal"
    assert v.rows.kind == "orthogonal_frame"
    kappa = v.prediction.kappa  # bias-free MSE: Z = (1 - K kappa) I, value (K kappa - K kappa^2 / 2)/K ...
    exact = mse_catalog.MSE_BIAS_FREE.predict(prob)["value"]
    assert _rel(v.solution.value, exact) <= 1e-8 and v.margin > 0 and kappa > 0


@pytest.mark.slow
def test_verdict_on_the_zero_side():
    lw, lh = _lams(1.2 / 3, 2)
    prob = ufm.UFM(K=3, n=2, d=4, loss=ufm.CustomLoss(poly1, eps=1.0), lam_W=lw, lam_H=lh * 2, lam_b=1e-2)
    v = ufm.etf_verdict(prob, starts=2)
    assert v.prediction.zero and v.verdict == "ETF optimal" and v.rows.kind == "zero"


def test_sympy_is_not_needed_by_ufm():
    """A fresh process that imports ufm (and its ETF, metrics and sweep packages) never loads SymPy:
    the closed forms live in proofs_check."""
    code = "import sys, ufm, ufm.etf, ufm.metrics, ufm.sweeps; print('sympy' in sys.modules)"
    env = {k: v for k, v in os.environ.items() if k != "JAX_ENABLE_X64"}
    env["PYTHONPATH"] = str(pathlib.Path(__file__).resolve().parents[1])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"

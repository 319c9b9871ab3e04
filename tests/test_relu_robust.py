"""Deep ReLU solves never raise for slow convergence: the default call ends certified or with a
result code that says what was reached, and what it reports is consistent with the point.

Slow convergence is forced with a tiny ``max_steps``; the draws vary values within two shapes
(every new shape compiles). The K = 10, L = 4 low-rank instance (seeds 0-4) is the slow test.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ufm
from tests.helpers import examples
from ufm import DeepUFM
from ufm.solvers._relu_clarke import kink_masks

OUTCOMES = (ufm.RESULTS.successful, ufm.RESULTS.max_steps_reached, ufm.RESULTS.saddle,
            ufm.RESULTS.linesearch_failed)
SHAPES = (dict(K=2, n=2, widths=(3, 3)), dict(K=3, n=1, widths=(4, 4, 4)))


def _has_kinks(prob, params):
    return any(np.any(k) for k in kink_masks(prob, params)[1])


def _check_report(prob, sol, gtol=1e-10):
    """What a deep ReLU Solution reports agrees with its point."""
    assert sol.result in OUTCOMES
    value = float(prob.objective(sol.params))
    assert np.isclose(sol.value, value, rtol=1e-12, atol=1e-15)
    if sol.certificate.order != "none":
        assert sol.certificate.kkt <= gtol * max(1.0, abs(sol.value))
    if _has_kinks(prob, sol.params):  # at kinks: never second order; the Clarke check says first
        assert sol.certificate.order != "second"
        if sol.converged:
            assert sol.certificate.order == "first" and "clarke" in sol.stats["piece"]
            assert not sol.stats["piece"]["clarke"]["descent"]
    if sol.converged and sol.certificate.order == "second":
        assert sol.certificate.min_eig >= -1e-8


@settings(max_examples=examples(2), deadline=None)
@given(shape=st.sampled_from(SHAPES), lam=st.floats(1e-3, 2e-2), lam_H=st.floats(1e-3, 2e-2),
       seed=st.integers(0, 2**16), max_steps=st.sampled_from([3, 10_000]))
def test_deep_relu_default_call_never_raises_for_slow_convergence(shape, lam, lam_H, seed, max_steps):
    prob = DeepUFM(loss=ufm.MSE(), lam_W=lam, lam_H=lam_H, activation="relu", **shape)
    sol = ufm.minimize(prob, seed=seed, max_steps=max_steps)  # the default throw=True: must not raise
    _check_report(prob, sol)
    assert "piece" in sol.stats  # the polish report says what was reached


def test_nonfinite_still_raises_on_a_relu_model():
    prob = DeepUFM(loss=ufm.MSE(), lam_W=1e-3, lam_H=1e-3, activation="relu", **SHAPES[0])
    x = prob.init(__import__("jax").random.PRNGKey(0))
    bad = x._replace(H=x.H.at[0, 0].set(np.nan))
    with pytest.raises(ufm.SolveError):
        ufm.minimize(prob, params0=bad)


@pytest.mark.slow
def test_deep_relu_k10_seeds_never_raise_and_beat_dnc():
    """K = 10, L = 4 (the low-rank regime), seeds 0-4: the default call never raises, each report
    agrees with its point, and the best certified point is below the DNC value (Súkeník, Mondelli &
    Lampert 2024). Not every seed certifies yet (seed 4, and seed 1 under the fast compile profile,
    end with a result code); the benchmark prints them."""
    from proofs_check.catalog import deep

    prob = DeepUFM(K=10, n=1, widths=(30,) * 4, loss=ufm.MSE(), lam_W=0.004, lam_H=0.004, activation="relu")
    certified = []
    for seed in range(5):
        sol = ufm.minimize(prob, seed=seed)  # must not raise
        _check_report(prob, sol)
        if sol.converged:
            certified.append(sol.value)
    assert certified and min(certified) < deep.dnc_prediction(prob)["value"] * (1 - 1e-6)

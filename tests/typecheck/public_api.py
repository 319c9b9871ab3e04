"""Typical calls of ufm's public API, for a static type checker (never run, never collected).

``mypy tests/typecheck/public_api.py --follow-imports=silent`` checks these calls against the
annotations ufm ships (``py.typed``); tests/test_structure.py runs it when mypy is installed.
"""

from __future__ import annotations

import jax
import numpy as np

import ufm


def first_solve() -> float:
    prob = ufm.UFM(K=4, n=5, d=8, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=5e-3, lam_b=5e-3)
    sol: ufm.Solution = ufm.minimize(prob, seed=0)
    cert: ufm.Certificate = sol.certificate
    print(cert.order, sol.converged, sol.params.W.shape)
    return float(sol.value)


def flow() -> np.ndarray:
    prob = ufm.UFM(K=3, n=2, d=4, loss=ufm.MSE(), lam_W=1e-2, lam_H=1e-2)
    traj: ufm.Trajectory = ufm.gradient_flow(prob, t1=10.0, seed=0)
    return np.asarray(traj.values)


def ensemble() -> np.ndarray:
    prob = ufm.UFM(K=3, n=2, d=4, loss=ufm.MSE(), lam_W=1e-2, lam_H=1e-2)
    traj: ufm.Trajectory = ufm.flow_ensemble(prob, t1=10.0, dt=0.1, lams={"lam_W": [1e-3, 1e-2]}, seeds=[0, 1])
    return np.asarray(traj.result)


def metrics_of_features(H: jax.Array, labels: jax.Array, W: jax.Array) -> float:
    return float(ufm.metrics.nc1(H, labels)) + float(ufm.metrics.nc2_W(W))


def deep() -> None:
    prob = ufm.DeepUFM(K=4, n=5, widths=(8, 8), loss=ufm.MSE(), lam_W=3e-3, lam_H=3e-3, activation="relu")
    sol = ufm.minimize(prob, seed=0, throw=False)
    print(sol.result == ufm.RESULTS.successful)


def verdict() -> bool:
    prob = ufm.UFM(K=3, n=2, d=4, loss=ufm.LabelSmoothing(0.1), lam_W=1e-2, lam_H=1e-2)
    pred: ufm.ETFPrediction = ufm.etf_prediction(prob)
    print(pred)
    v: ufm.ETFVerdict = ufm.etf_verdict(prob)
    return v.optimal


def derivative_of_a_minimizer() -> float:
    prob = ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=5e-3)
    g = ufm.implicit_invariant(prob, lambda p, x: jax.numpy.sum(x.W**2), order="second")
    return float(jax.grad(g)({"lam_W": 5e-3, "lam_H": 5e-3})["lam_W"])

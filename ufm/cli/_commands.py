"""The one-problem commands ``ufm solve`` and ``ufm flow``, and ``ufm plot`` (a sweep store's diagram)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ufm import metrics, plot
from ufm.cli._spec import SpecError, emit, parser, problem_from
from ufm.problems import Problem
from ufm.solvers import SaveAt, gradient_flow, minimize
from ufm.sweeps import gram_signature, open_sweep, phase_of

__all__ = ["cmd_solve", "cmd_flow", "cmd_plot", "describe_solution"]


def describe_solution(prob: Problem, params: Any) -> dict:
    """Atlas phase, Gram signature, squared norms and (for a nonzero solution) the NC metrics of
    ``params``, as plain numbers for a JSON record."""
    Hbar, _ = metrics.class_means(params.H, prob.labels)
    G_H, G_W = np.asarray(Hbar.T @ Hbar), np.asarray(params.W @ params.W.T)
    phase = phase_of(G_H, G_W, prob.counts, prob.d)
    out = {"phase": phase, "gram_signature": gram_signature(G_H),
           "W_norm2": float(np.sum(np.asarray(params.W) ** 2)),
           "H_norm2": float(np.sum(np.asarray(params.H) ** 2))}
    if phase != "zero":
        b = params.b if prob.has_bias else None
        out["metrics"] = {k: float(v) for k, v in
                          metrics.all_metrics(params.W, params.H, prob.labels, b).items()}
    return out


def cmd_solve(argv: Sequence[str]) -> int:
    """``ufm solve``: the certified minimizer of one problem; exit status 1 when not certified."""
    p = parser("solve", (
        "Certified minimizer of one UFM: L-BFGS then Newton-CG to a relative KKT residual gtol; "
        "prints the value, the certificate, the atlas phase and the NC metrics."),
        "example: ufm solve --K 4 --n 5 --d 8 --loss ce --lam-W 5e-3 --lam-H 5e-3")
    p.add_argument("--seed", type=int, default=0, help="random start (default 0)")
    p.add_argument("--restarts", type=int, default=1, help="random starts, keep the best")
    p.add_argument("--gtol", type=float, default=1e-10, help="relative KKT tolerance")
    p.add_argument("--spectrum", metavar="PNG", help="also draw the singular values of W and Hbar")
    args = p.parse_args(argv)
    prob, _ = problem_from(args)
    sol = minimize(prob, seed=args.seed, restarts=args.restarts, gtol=args.gtol, hessian=True, throw=False)
    cert = sol.certificate
    rec = {"problem": repr(prob), "value": sol.value, "kkt": cert.kkt, "min_eig": cert.min_eig,
           "order": cert.order, "hessian_eigs": sol.hessian_eigs, "result": sol.result.name,
           "converged": sol.converged, "steps": sol.iterations, **describe_solution(prob, sol.params)}
    if args.spectrum:
        rec["spectrum"] = plot.spectra(sol.params, prob.labels, args.spectrum, title=repr(prob)[:60])
    lines = [f"{k}: {v}" for k, v in rec.items() if k != "metrics"]
    lines += [f"  {k}: {v:.3e}" for k, v in rec.get("metrics", {}).items()]
    emit(args, rec, lines)
    return 0 if sol.converged else 1


def cmd_flow(argv: Sequence[str]) -> int:
    """``ufm flow``: gradient flow of one problem, objective and NC metrics at log-spaced times."""
    p = parser("flow", (
        "Gradient flow d theta/dt = -grad f of one UFM from a random start; prints the objective "
        "and NC metrics at log-spaced times."),
        "example: ufm flow --K 4 --n 5 --d 8 --loss ce --lam-W 5e-3 --lam-H 5e-3 --t1 1000 --plot flow.png")
    p.add_argument("--t1", type=float, default=100.0, help="final time (default 100)")
    p.add_argument("--dt", type=float, default=None, help="fixed step (default: adaptive)")
    p.add_argument("--points", type=int, default=20, help="recorded times, log-spaced")
    p.add_argument("--seed", type=int, default=0, help="random start")
    p.add_argument("--plot", metavar="PNG", help="draw objective and NC metrics along the flow")
    args = p.parse_args(argv)
    prob, _ = problem_from(args)
    if not (args.t1 > 0):
        raise SpecError(f"--t1 must be > 0, got {args.t1}")
    if args.points < 2:
        raise SpecError(f"--points must be >= 2, got {args.points}")
    ts = np.geomspace(args.t1 * 1e-4, args.t1, args.points)
    names = ("nc1", "nc2_W", "nc2_H", "nc3")
    traj = gradient_flow(prob, t1=args.t1, dt=args.dt, seed=args.seed,
                         saveat=SaveAt(ts=ts, params=False), metrics=names)
    rec = {"problem": repr(prob), "result": traj.result.name, "times": traj.times.tolist(),
           "values": np.asarray(traj.values).tolist(),
           "metrics": {k: np.asarray(v).tolist() for k, v in traj.metrics.items()}}
    if args.plot:
        rec["plot"] = plot.flow_metrics(traj, args.plot, title=repr(prob)[:90])
    lines = [f"{'t':>10} {'f':>14} " + " ".join(f"{n:>10}" for n in names)]
    for i, t in enumerate(rec["times"]):
        lines.append(f"{t:10.3g} {rec['values'][i]:14.8g} "
                     + " ".join(f"{rec['metrics'][n][i]:10.3e}" for n in names))
    emit(args, rec, lines)
    return 0


def _thresholds(items) -> dict:
    """``--threshold FIELD=VALUE`` (a line) or ``X*Y=C`` (the curve ``X = C / Y``)."""
    th = {}
    for item in items or []:
        field, _, val = item.partition("=")
        try:
            c = float(val)
        except ValueError:
            raise SpecError(f"--threshold must look like lam_W=2.5 or lam_W*lam_H=0.0056, "
                            f"got {item!r}") from None
        if "*" in field:  # a product threshold x * y = c, drawn as the curve x = c / y
            fx, fy = field.split("*", 1)
            th[field] = (fx, lambda yv, c=c: c / yv)
        else:
            th[field] = c
    return th


def cmd_plot(argv: Sequence[str]) -> int:
    """``ufm plot``: the phase diagram of a sweep store, with predicted thresholds overlaid."""
    p = parser("plot", (
        "Draw the phase diagram of a sweep store: the atlas phase of every grid point, crosses "
        "where random and warm starts disagree, and predicted thresholds as dashed lines."),
        "example: ufm plot ce.zarr --out ce.png --threshold lam_W*lam_H=0.0055556", problem=False)
    p.add_argument("store", help="a Zarr store written by ufm sweep")
    p.add_argument("--out", default="phase_diagram.png", help="image file (default phase_diagram.png)")
    p.add_argument("--x", help="grid field on the x axis")
    p.add_argument("--y", help="grid field on the y axis")
    p.add_argument("--seed", type=int, default=0, help="which seed to draw")
    p.add_argument("--threshold", action="append", metavar="FIELD=VALUE",
                   help="a predicted threshold to overlay (repeat): lam_b=0.047 is a line, "
                        "lam_W*lam_H=0.0056 the curve lam_W = 0.0056/lam_H (CE: 1/(K^2 n))")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    if not os.path.isdir(args.store):
        raise SpecError(f"store: no sweep store at {args.store!r}")
    ds = open_sweep(args.store)
    th = _thresholds(args.threshold)
    path = plot.phase_diagram(ds, args.out, x=args.x, y=args.y, seed=args.seed, thresholds=th)
    emit(args, {"plot": path}, [f"wrote {path}"])
    return 0

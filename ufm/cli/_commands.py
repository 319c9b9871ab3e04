"""The one-problem commands ``ufm solve`` and ``ufm flow``, and ``ufm plot`` (a sweep store's diagram)."""

from __future__ import annotations

import argparse

import os
import sys
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import jax
import numpy as np

from ufm import metrics, plot
from ufm.cli._families import problem_spec
from ufm.cli._spec import FLOW_KEYS, METRICS, SOLVE_KEYS, SpecError, emit, options, parser, problem_from
from ufm.problems import UFM, Problem
from ufm.solvers import SaveAt, gradient_flow, minimize
from ufm.sweeps import gram_signature, open_sweep, phase_of

__all__ = ["cmd_solve", "cmd_flow", "cmd_plot", "describe_solution", "has_classifier"]


def describe_solution(prob: Any, params: Any) -> dict:
    """Squared norms of the classifier and features (:meth:`Problem.classifier`), the atlas phase
    and Gram signature (the one-layer UFM) and the NC metrics (where ``W`` has one row per class),
    as plain numbers for a JSON record; a deep UFM adds :func:`ufm.metrics.layer_metrics`. A
    family without a classifier (regression, multi-label targets) gets ``{}``."""
    try:
        W, H = (np.asarray(a) for a in prob.classifier(params))
    except NotImplementedError:
        return {}
    labels = np.asarray(prob.labels)
    out: dict[str, Any] = {"W_norm2": float(np.sum(W**2)), "H_norm2": float(np.sum(H**2))}
    phase = None
    if isinstance(prob, UFM):
        Hbar, _ = metrics.class_means(H, labels)
        G_H, G_W = np.asarray(Hbar.T @ Hbar), W @ W.T
        phase = phase_of(G_H, G_W, prob.counts, prob.d)
        out.update(phase=phase, gram_signature=gram_signature(G_H))
    if phase != "zero" and out["H_norm2"] > 0 and W.shape[0] == np.unique(labels).size:
        b = params.b if prob.has_bias else None
        out["metrics"] = {k: float(v) for k, v in metrics.all_metrics(W, H, labels, b).items()}
    if hasattr(params, "Ws"):
        out["layer_metrics"] = metrics.layer_metrics(prob, params)
    return out


def has_classifier(prob: Problem) -> bool:
    """Whether the NC metrics apply to ``prob`` (it exposes a classifier and its features)."""
    try:
        prob.classifier(prob.init(jax.random.PRNGKey(0)))
    except NotImplementedError:
        return False
    return True


def _solve_parser():
    p = parser("solve", (
        "Certified minimizer of one problem (any family: --family ufm, deep, md, multilabel, "
        "regression): L-BFGS then Newton-CG to a relative KKT residual gtol, then the curvature "
        "check; prints the value, the certificate, the atlas phase and the NC metrics. Options "
        "come from flags or the spec's [solve] table. Exit status 1 when not certified."),
        "example: ufm solve --K 4 --n 5 --d 8 --loss ce --lam-W 5e-3 --lam-H 5e-3 --order second")
    p.add_argument("--seed", type=int, help="random start (default 0)")
    p.add_argument("--starts", type=int, help="random starts (seeds seed, seed+1, ...), keep the best (default 1)")
    p.add_argument("--restarts", type=int, help=argparse.SUPPRESS)  # the deprecated name of --starts
    p.add_argument("--gtol", type=float, help="relative KKT tolerance (default 1e-10)")
    p.add_argument("--max-steps", dest="max_steps", type=int,
                   help="first-stage iteration cap (default 10000)")
    p.add_argument("--order", choices=("auto", "first", "second"),
                   help="what to certify: second order where affordable (auto, default), first, second")
    p.add_argument("--certify", choices=("local", "global"),
                   help="local (default): a local minimizer; global: also close the gap to the "
                   "family's proven lower bound (UFM with CE/LS/MSE, deep linear MSE)")
    p.add_argument("--spectrum", metavar="PNG", help="also draw the singular values of W and Hbar")
    return p


_SOLVE_DEFAULTS = {"seed": 0, "starts": 1, "gtol": 1e-10, "max_steps": 10_000, "order": "auto",
                   "certify": "local"}


def cmd_solve(argv: Sequence[str]) -> int:
    """``ufm solve``: the certified minimizer of one problem; exit status 1 when not certified."""
    args = _solve_parser().parse_args(argv)
    prob: Any
    prob, spec = problem_from(args)
    o = options(args, spec, "solve", SOLVE_KEYS, _SOLVE_DEFAULTS)
    if args.spectrum:
        plot.close(plot.figure())  # the plot extra, before the solve: a missing one is named now
        if not has_classifier(prob):
            raise SpecError(f"--spectrum: the {type(prob).__name__} family has no classifier W and "
                            "features H to draw; drop --spectrum")
    sol = minimize(prob, seed=o["seed"], starts=o["starts"], gtol=o["gtol"], max_steps=o["max_steps"],
                   order=o["order"], certify="global" if o["certify"] == "global" else None,
                   hessian=True, throw=False)
    cert = sol.certificate
    rec = {"problem": problem_spec(prob), "value": sol.value, "kkt": cert.kkt, "min_eig": cert.min_eig,
           "order": cert.order, "global_gap": cert.global_gap, "hessian_eigs": sol.hessian_eigs,
           "result": sol.result.name, "converged": sol.converged, "steps": sol.iterations,
           **describe_solution(prob, sol.params)}
    if args.spectrum:
        W, H = prob.classifier(sol.params)
        fig = plot.spectra(SimpleNamespace(W=W, H=H), prob.labels, args.spectrum, title=repr(prob)[:60])
        rec["spectrum"] = args.spectrum
        plot.close(fig)
    lines = [f"{k}: {v}" for k, v in rec.items() if k not in ("metrics", "layer_metrics")]
    lines += [f"  {k}: {v:.3e}" for k, v in rec.get("metrics", {}).items()]
    emit(args, rec, lines)
    if not sol.converged:
        print(f"ufm solve: not certified ({sol.result.name}): {sol.result.message}", file=sys.stderr)
    return 0 if sol.converged else 1


def _flow_parser():
    p = parser("flow", (
        "Gradient flow d theta/dt = -grad f of one problem from a random start (or heavy-ball "
        "descent with --dt and --momentum); prints the objective and NC metrics at log-spaced "
        "times. Options come from flags or the spec's [flow] table."),
        "example: ufm flow --K 4 --n 5 --d 8 --loss ce --lam-W 5e-3 --lam-H 5e-3 --t1 1000 --plot flow.png")
    p.add_argument("--t1", type=float, help="final time (default 100)")
    p.add_argument("--dt", type=float, help="fixed step, the learning rate (default: adaptive)")
    p.add_argument("--momentum", type=float, help="heavy-ball coefficient in [0, 1), with --dt (default 0)")
    p.add_argument("--points", type=int, help="recorded times, log-spaced (default 20)")
    p.add_argument("--seed", type=int, help="random start (default 0)")
    p.add_argument("--max-steps", dest="max_steps", type=int, help="cap on adaptive steps")
    p.add_argument("--metrics", type=lambda s: [m.strip() for m in s.split(",") if m.strip()],
                   help=f"comma-separated metrics to record (default nc1,nc2_W,nc2_H,nc3; known: "
                   f"{', '.join(METRICS)})")
    p.add_argument("--plot", metavar="PNG", help="draw objective and NC metrics along the flow")
    return p


_FLOW_DEFAULTS = {"t1": 100.0, "dt": None, "momentum": 0.0, "points": 20, "seed": 0, "max_steps": None,
                  "metrics": None}
_NC = ["nc1", "nc2_W", "nc2_H", "nc3"]


def cmd_flow(argv: Sequence[str]) -> int:
    """``ufm flow``: gradient flow of one problem, objective and NC metrics at log-spaced times."""
    args = _flow_parser().parse_args(argv)
    prob, spec = problem_from(args)
    o = options(args, spec, "flow", FLOW_KEYS, _FLOW_DEFAULTS)
    if o["momentum"] > 0 and o["dt"] is None:
        raise SpecError(f"flow.momentum (--momentum) = {o['momentum']} > 0 needs a fixed step: "
                        "pass --dt (flow.dt), a finite number > 0")
    if args.plot:
        plot.close(plot.figure())  # the plot extra, before the flow: a missing one is named now
    if o["dt"] is not None and o["dt"] > o["t1"]:
        raise SpecError(f"flow.dt (--dt) = {o['dt']:g} must be <= flow.t1 (--t1) = {o['t1']:g}: "
                        "the steps must fit in [0, t1]")
    first = o["t1"] * 1e-4 if o["dt"] is None else max(o["t1"] * 1e-4, o["dt"])  # fixed steps: t >= dt
    ts = np.geomspace(first, o["t1"], o["points"])
    if not has_classifier(prob):
        if o["metrics"]:
            raise SpecError(f"flow.metrics (--metrics): the {type(prob).__name__} family has no "
                            "classifier for the NC metrics; drop --metrics (flow.metrics)")
        o["metrics"] = []
    names = tuple(o["metrics"] if o["metrics"] is not None else _NC)
    traj = gradient_flow(prob, t1=o["t1"], dt=o["dt"], momentum=o["momentum"], seed=o["seed"],
                         max_steps=o["max_steps"], saveat=SaveAt(ts=ts.tolist(), params=False), metrics=names)
    rec = {"problem": problem_spec(prob), "result": traj.result.name, "times": traj.times.tolist(),
           "values": np.asarray(traj.values).tolist(),
           "metrics": {k: np.asarray(v).tolist() for k, v in traj.metrics.items()}}
    if args.plot:
        plot.close(plot.flow_metrics(traj, args.plot, title=repr(prob)[:90]))
        rec["plot"] = args.plot
    lines = [f"{'t':>10} {'f':>14} " + " ".join(f"{n:>10}" for n in names)]
    for i, t in enumerate(rec["times"]):
        lines.append(f"{t:10.3g} {rec['values'][i]:14.8g} "
                     + " ".join(f"{np.ravel(rec['metrics'][n][i])[0]:10.3e}" for n in names))
    emit(args, rec, lines)
    return 0


def _thresholds(items) -> dict:
    """``--threshold FIELD=VALUE`` (a line) or ``X*Y=C`` (the curve ``X = C / Y``)."""
    th: dict[str, Any] = {}
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
    plot.close(plot.figure())  # the plot extra, before reading the store: a missing one is named now
    if not os.path.isdir(args.store):
        raise SpecError(f"store: no sweep store at {args.store!r}")
    ds = open_sweep(args.store)
    th = _thresholds(args.threshold)
    fig = plot.phase_diagram(ds, args.out, x=args.x, y=args.y, seed=args.seed, thresholds=th)
    plot.close(fig)
    emit(args, {"plot": args.out}, [f"wrote {args.out}"])
    return 0

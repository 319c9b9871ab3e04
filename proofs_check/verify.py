"""Run the closed-form checks against ufm's solvers and report them (``ufm verify``).

Each check solves a representative problem with :func:`ufm.minimize` (float64, certificate
``gtol = 1e-12``), computes the invariants its closed form predicts (objective, Gram matrices,
norms, bias, Hessian eigenvalues) and records one row per quantity:

    theorem, source, instance, quantity, predicted, measured, rel_error, passed

``rel_error`` is ``||measured - predicted|| / ||predicted||`` (Frobenius for matrices), or the
absolute error when the prediction is exactly zero; a row passes when it is ``<= 1e-8``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

import ufm
from proofs_check import closed_forms as cf

__all__ = ["Check", "default_checks", "run", "format_table", "format_markdown"]

TOL = 1e-8
GTOL = 1e-12


@dataclass(frozen=True)
class Check:
    """One theorem applied to one instance: ``run()`` returns the rows of the report."""

    label: str
    prob: ufm.UFM
    kind: str = "minimizer"  # or "origin_saddle"

    def run(self) -> list[dict]:
        if self.kind == "origin_saddle":
            return _check_origin_saddle(self.prob)
        return _check_minimizer(self.prob)


def describe(prob) -> str:
    """A compact, human-readable instance description."""
    loss = prob.loss
    lname = type(loss).__name__
    if isinstance(loss, ufm.LabelSmoothing):
        lname += f"({float(loss.alpha):g})"
    elif isinstance(loss, ufm.Focal):
        lname += f"({float(loss.gamma):g})"
    elif isinstance(loss, ufm.MSE) and loss.encoding is not None:
        lname += f"(E {loss.encoding.shape[0]}x{loss.encoding.shape[1]})"
    bias = "none" if prob.lam_b is None else f"{float(prob.lam_b):g}"
    n = prob.n if prob.balanced else list(prob.counts)
    extra = ", H>=0" if prob.nonneg else ""
    return (f"K={prob.K} n={n} d={prob.d} {lname} lam_W={float(prob.lam_W):g} "
            f"lam_H={float(prob.lam_H):g} lam_b={bias}{extra}")


def _row(pred, prob, quantity, predicted, measured):
    err = cf.rel_error(measured, predicted)
    tolist = lambda v: np.asarray(v, dtype=float).tolist()  # noqa: E731
    return {
        "theorem": pred.theorem,
        "source": pred.source,
        "tag": pred.tag,
        "instance": describe(prob),
        "quantity": quantity,
        "predicted": tolist(predicted),
        "measured": tolist(measured),
        "rel_error": err,
        "passed": bool(err <= TOL),
    }


def _check_minimizer(prob) -> list[dict]:
    pred = cf.predict(prob)
    sol = ufm.minimize(prob, gtol=GTOL, restarts=2, throw=False)
    measured = cf.measure(prob, sol.params, pred.quantities)
    rows = [_row(pred, prob, q, v, measured[q]) for q, v in pred.quantities.items()]
    rows.append({**_row(pred, prob, "certificate grad_norm", 0.0, sol.grad_norm),
                 "passed": bool(sol.converged)})
    return rows


def _check_origin_saddle(prob) -> list[dict]:
    pred = cf.ce_origin_min_eig(prob)
    zero = ufm.Params(jnp.zeros((prob.D, prob.d)), jnp.zeros((prob.d, prob.N)),
                      None if not prob.has_bias else jnp.zeros(prob.D))
    lam_min, _ = ufm.hessian_extreme_eigs(prob, zero, method="dense")
    g = float(ufm.solvers._common.grad_norm(prob, zero))
    q = "hessian_min_eig_at_origin"
    return [_row(pred, prob, q, pred.quantities[q], lam_min),
            {**_row(pred, prob, "grad_norm at origin", 0.0, g), "passed": bool(g <= 1e-14)}]


def default_checks() -> list[Check]:
    """Representative instances, inside each closed form's assumptions and on both sides of
    its thresholds (shapes are shared so the compiled solver is reused)."""
    K, n, d = 4, 5, 8
    lam = 5e-3
    U = lambda loss, **kw: ufm.UFM(**{"K": K, "n": n, "d": d, "loss": loss, "lam_W": lam, "lam_H": lam, **kw})  # noqa: E731
    kappa_zero = 1.2 / (K * np.sqrt(n))  # lam such that kappa = sqrt(n) lam = 1.2/K > 1/K
    return [
        Check("CE ETF, regularized bias", U(ufm.CrossEntropy(), lam_b=lam)),
        Check("CE ETF, no bias, d = K-1", ufm.UFM(K=K, n=n, d=K - 1, loss=ufm.CrossEntropy(), lam_W=lam, lam_H=lam)),
        Check("CE ETF, free bias", U(ufm.CrossEntropy(), lam_b=0.0)),
        Check("CE zero solution (kappa > 1/K)", U(ufm.CrossEntropy(), lam_W=kappa_zero, lam_H=kappa_zero, lam_b=lam)),
        Check("CE origin strict saddle", U(ufm.CrossEntropy(), lam_b=lam), kind="origin_saddle"),
        Check("LS ETF", U(ufm.LabelSmoothing(0.1), lam_b=lam)),
        Check("LS zero solution (kappa > (1-a)/K)", U(ufm.LabelSmoothing(0.3), lam_W=0.8 / (K * np.sqrt(n)), lam_H=0.8 / (K * np.sqrt(n)), lam_b=lam)),
        Check("focal ETF", U(ufm.Focal(2.0), lam_b=lam)),
        Check("MSE orthogonal frame, no bias", U(ufm.MSE())),
        Check("MSE zero solution, no bias (K kappa > 1)", U(ufm.MSE(), lam_W=kappa_zero, lam_H=kappa_zero)),
        Check("MSE ETF, free bias", U(ufm.MSE(), lam_b=0.0)),
        Check("MSE regularized bias, ETF side", U(ufm.MSE(), lam_b=0.5)),
        Check("MSE regularized bias, beyond the ETF boundary", U(ufm.MSE(), lam_b=0.05)),
        Check("MSE +-1 encoding, no bias", U(ufm.MSE(2 * np.eye(K) - 1))),
        Check("MSE imbalanced, no bias", ufm.UFM(K=3, n=(2, 5, 9), d=5, loss=ufm.MSE(), lam_W=2e-2, lam_H=2e-2)),
    ]


def run(checks: list[Check] | None = None, *, progress: Callable[[str], None] | None = None) -> list[dict]:
    """Run the checks and return all rows (see the module docstring)."""
    checks = default_checks() if checks is None else checks
    rows = []
    for i, check in enumerate(checks, 1):
        t = time.perf_counter()
        new = check.run()
        rows += new
        if progress is not None:
            status = "ok" if all(r["passed"] for r in new) else "FAIL"
            progress(f"[{i:2d}/{len(checks)}] {check.label:<48s} {status:4s} {time.perf_counter() - t:5.1f}s")
    return rows


def _summary(value) -> str:
    arr = np.asarray(value, dtype=float)
    if arr.ndim == 0:
        return f"{float(arr):.10g}"
    return f"|.|={np.linalg.norm(arr):.10g}"


def format_table(rows: list[dict]) -> str:
    """A fixed-width text table, one row per checked quantity."""
    head = ("theorem", "source", "instance", "quantity", "predicted", "measured", "rel_error", "pass")
    body = [(r["theorem"], r["source"], r["instance"], r["quantity"], _summary(r["predicted"]),
             _summary(r["measured"]), f"{r['rel_error']:.1e}", "yes" if r["passed"] else "NO") for r in rows]
    widths = [max(len(str(x[i])) for x in [head, *body]) for i in range(len(head))]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(head), line(["-" * w for w in widths]), *map(line, body)])


def format_markdown(rows: list[dict]) -> str:
    """The same table as GitHub-flavoured Markdown."""
    head = "| theorem | source | instance | quantity | predicted | measured | rel. error | pass |"
    sep = "|---|---|---|---|---|---|---|---|"
    body = [f"| {r['theorem']} | {r['source']} | {r['instance']} | {r['quantity']} | {_summary(r['predicted'])} "
            f"| {_summary(r['measured'])} | {r['rel_error']:.1e} | {'yes' if r['passed'] else 'NO'} |" for r in rows]
    return "\n".join([head, sep, *body])


def main(argv=None, out=None) -> int:
    """Command-line entry (``ufm verify`` and ``python -m proofs_check``)."""
    import argparse
    import json

    ap = argparse.ArgumentParser(prog="ufm verify", description="Check ufm's solvers against the closed forms.")
    ap.add_argument("--json", metavar="FILE", help="write the records as a JSON list")
    ap.add_argument("--markdown", metavar="FILE", help="write the table as Markdown")
    ap.add_argument("--quiet", action="store_true", help="no progress lines")
    args = ap.parse_args(argv)
    out = sys.stdout if out is None else out
    t0 = time.perf_counter()
    progress = None if args.quiet else (lambda s: print(s, file=sys.stderr, flush=True))
    rows = run(progress=progress)
    elapsed = time.perf_counter() - t0
    print(format_table(rows), file=out)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write(format_markdown(rows) + "\n")
    failed = sum(not r["passed"] for r in rows)
    print(f"\n{len(rows) - failed}/{len(rows)} quantities passed (tolerance {TOL:g}); "
          f"runtime {elapsed:.1f}s on {jax.default_backend()} ({jax.device_count()} device(s))", file=out)
    return 1 if failed else 0

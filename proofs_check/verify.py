"""Run the theorem catalog against ufm's solvers and report it (``ufm verify``).

For every :class:`proofs_check.theorem.Theorem` of the catalog: its SymPy proofs, then its
representative instances (and ``--random N`` more drawn inside its assumptions), each solved with
:func:`ufm.minimize` (float64, certificate ``1e-12``) and compared quantity by quantity with the
closed form. One row per proof and per quantity:

    theorem, source, instance, quantity, predicted, measured, rel_error, passed

``rel_error`` is ``||measured - predicted|| / ||predicted||`` (Frobenius for matrices), or the
absolute error when the prediction is exactly zero; a row passes when it is ``<= 1e-8`` (a
theorem may set other tolerances per quantity, each with its reason). Every row has a ``kind``:
``proof`` (symbolic), ``definition`` and ``sample`` (shown, not counted as proofs), ``numeric``
(closed form vs solve), ``bound`` (an upper bound at an explicit point; a tie passes),
``strict bound`` (a claim that a value is *below* another: it passes only with a stated margin,
so a tie fails), ``certificate`` (a solve converged), ``count`` (a number reported, never a check:
e.g. the degenerate end points of a census, or how many random instances were checked).

``--random N`` draws N instances per theorem; a draw outside the assumptions is redrawn, up to 20
times. Whatever is not checked is said: each theorem gets a ``count`` row "random instances
checked" (of N), with the reason when it is fewer (no ``random_instance``, or draws rejected 20
times in a row, with the assumption that rejected the last one), and the printed report ends with
a line naming every theorem that checked fewer than N.

By default the printed table has one line per theorem (:func:`format_summary`, at most 100
columns); ``--rows`` prints every row; the JSON and Markdown reports always hold every row.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TextIO

import jax
import numpy as np

import ufm.cli

# float64: proofs_check/__init__.py turns it on, and it runs before this module (its package) is
# imported; importing the package from here instead would make a cycle with its __init__, which
# imports this module for ``main``.
from proofs_check.catalog import all_theorems
from proofs_check.theorem import Theorem

__all__ = ["run", "summarize", "format_summary", "format_table", "format_markdown", "random_shortfall", "main",
           "RANDOM_QUANTITY"]


def _run_one(th, instances, prove):
    t = time.perf_counter()
    rows = th.prove() if prove else []
    for prob in instances:
        rows += th.check(prob)
    return rows, time.perf_counter() - t


def run(theorems: list[Theorem] | None = None, *, random: int = 0, seed: int = 0, prove: bool = True,
        progress: Callable[[str], None] | None = None, workers: int = 2) -> list[dict]:
    """Prove and check every theorem; returns all rows in catalog order (module docstring).

    Args:
        theorems: a list of Theorems (default: the whole catalog).
        random: additional instances per theorem drawn by ``theorem.random_instance`` inside its
            assumptions (instances the assumptions reject are redrawn, up to 20 tries each); with
            ``random > 0`` each theorem gets a ``count`` row saying how many were checked and, when
            fewer, why (:func:`random_shortfall` lists them).
        seed: seed of those draws (drawn up front, so the instances do not depend on ``workers``).
        prove: also run the SymPy proofs.
        progress: called with one line per theorem as it finishes.
        workers: theorems checked concurrently in threads (XLA compiles outside the GIL, and
            compilation dominates the run on a CPU).
    """
    theorems = all_theorems() if theorems is None else theorems
    rng = np.random.default_rng(seed)
    jobs, drawn = [], []
    for th in theorems:
        extra, why = _draw(th, random, rng) if random else ([], "")
        jobs.append((th, list(th.instances()) + extra))
        drawn.append(_random_row(th, random, len(extra), why) if random else None)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [pool.submit(_run_one, th, inst, prove) for th, inst in jobs]
        results = []
        for i, ((th, inst), fut, row) in enumerate(zip(jobs, futures, drawn), 1):
            new, dt = fut.result()
            results.append(new + ([row] if row is not None else []))
            if progress is not None:
                status = "ok" if all(r["passed"] for r in new) else "FAIL"
                progress(f"[{i:2d}/{len(jobs)}] {_short(th.name, 70):<70s} {len(inst)} inst. {status:4s} {dt:5.1f}s")
    return [row for new in results for row in new]


RANDOM_QUANTITY = "random instances checked (of --random N)"
_TRIES = 20


def _draw(th: Theorem, random: int, rng: np.random.Generator) -> tuple[list, str]:
    """Up to ``random`` instances of ``th.random_instance`` inside the assumptions (each draw is
    redrawn up to 20 times), and why fewer ("" when all were drawn)."""
    if th.random_instance is None:
        return [], "the theorem has no random_instance (its claim is measured at fixed instances only)"
    out, rejected, last = [], 0, ""
    for _ in range(random):
        for _try in range(_TRIES):
            prob = th.random_instance(rng)
            ok, last_why = th.assumptions(prob)
            if ok:
                out.append(prob)
                break
            last = last_why
        else:
            rejected += 1
    why = "" if not rejected else (f"{rejected} draw(s) rejected by the assumptions {_TRIES} times in a row "
                                   f"(last reason: {last})")
    return out, why


def _random_row(th: Theorem, requested: int, checked: int, why: str) -> dict:
    """The ``count`` row saying how many random instances of ``th`` were checked, and why fewer."""
    return {"theorem": th.name, "source": th.source, "tag": th.tag, "kind": "count",
            "instance": f"--random {requested}" + (f": {why}" if why else ""), "quantity": RANDOM_QUANTITY,
            "predicted": float(requested), "measured": float(checked), "rel_error": None, "passed": True}


def random_shortfall(rows: list[dict]) -> list[str]:
    """One line per theorem that checked fewer random instances than requested, with the reason."""
    return [f"{r['theorem']}: {int(r['measured'])} of {int(r['predicted'])} "
            f"({r['instance'].split(': ', 1)[-1]})"
            for r in rows if r.get("quantity") == RANDOM_QUANTITY and r["measured"] < r["predicted"]]


def _summary(value) -> str:
    if value is None:
        return "-"
    arr = np.asarray(value, dtype=float)
    if arr.ndim == 0:
        return f"{float(arr):.10g}"
    return f"|.|={np.linalg.norm(arr):.10g}"


def _err(r) -> str:
    return "-" if r["rel_error"] is None else f"{r['rel_error']:.1e}"


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


KIND_COLUMNS = (("proof", "proofs"), ("definition", "defs"), ("sample", "samples"),
                ("numeric", "solves"))


def summarize(rows: list[dict], theorems: list[Theorem] | None = None) -> list[dict]:
    """One record per theorem: instances, proof rows by kind, numeric rows, bound rows (``bound``
    and ``strict bound`` apart), worst relative error of the numeric rows, rows failed, ``count``
    rows (reported, not checks), and what is assumed without proof."""
    assumed = {t.name: list(t.assumed) for t in (theorems or [])}
    out, index = [], {}
    for r in rows:
        if r["theorem"] not in index:
            index[r["theorem"]] = len(out)
            out.append({"theorem": r["theorem"], "source": r["source"], "instances": set(), "failed": 0,
                        "worst_rel_error": None, "assumed": assumed.get(r["theorem"], []),
                        **{k: 0 for k, _ in KIND_COLUMNS}, "bound": 0, "strict bound": 0, "certificate": 0,
                        "count": 0})
        s = out[index[r["theorem"]]]
        kind = r.get("kind", "numeric")
        s[kind] = s.get(kind, 0) + 1
        s["failed"] += not r["passed"]
        if kind in ("numeric", "bound", "strict bound", "certificate"):
            s["instances"].add(r["instance"])
        if kind == "numeric" and r["rel_error"] is not None:
            s["worst_rel_error"] = max(s["worst_rel_error"] or 0.0, float(r["rel_error"]))
    for s in out:
        s["instances"] = len(s["instances"])
    return out


def format_summary(rows: list[dict], theorems: list[Theorem] | None = None, *, width: int = 100) -> str:
    """One line per theorem that fits ``width`` columns: instances solved, checks (closed form vs
    solve, and bounds, strict bounds included), the strict bounds among them, symbolic proofs,
    definitions, sample-point checks, the worst relative error of the numeric checks, the number
    of statements assumed without proof, pass. The assumed statements follow."""
    head = ("theorem", "solves", "checks", "strict", "proofs", "defs", "samples", "max err", "assumed", "pass")
    body = []
    for s in summarize(rows, theorems):
        err = "-" if s["worst_rel_error"] is None else f"{s['worst_rel_error']:.0e}"
        body.append([s["theorem"], str(s["instances"]), str(s["numeric"] + s["bound"] + s["strict bound"]),
                     str(s["strict bound"]), *(str(s[k]) for k, _ in KIND_COLUMNS[:3]), err,
                     str(len(s["assumed"])),
                     "yes" if not s["failed"] else f"NO {s['failed']}"])
    fixed = [max(len(x[i]) for x in [head, *body]) for i in range(1, len(head))]
    name_w = max(20, width - sum(fixed) - 2 * len(fixed))
    line = lambda cells: ("  ".join([_short(cells[0], name_w).ljust(name_w)]  # noqa: E731
                                    + [c.rjust(w) for c, w in zip(cells[1:], fixed)])).rstrip()
    out = [line(head), "-" * min(width, name_w + sum(fixed) + 2 * len(fixed)), *map(line, body)]
    notes = [(s["theorem"], a) for s in summarize(rows, theorems) for a in s["assumed"]]
    if notes:
        out += ["", "assumed without proof:"]
        for name, a in notes:
            out += textwrap.wrap(f"{_short(name, 40)}: {a}", width, initial_indent="- ", subsequent_indent="    ")
    return "\n".join(out)


def format_table(rows: list[dict], *, width: int = 48) -> str:
    """A fixed-width text table, one row per proof and checked quantity (``--rows``)."""
    head = ("theorem", "kind", "instance", "quantity", "predicted", "measured", "rel_error", "pass")
    body = [(_short(r["theorem"], width), r.get("kind", "numeric"), r["instance"], _short(r["quantity"], width),
             _summary(r["predicted"]), _summary(r["measured"]), _err(r), "yes" if r["passed"] else "NO")
            for r in rows]
    widths = [max(len(str(x[i])) for x in [head, *body]) for i in range(len(head))]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(head), line(["-" * w for w in widths]), *map(line, body)])


def format_markdown(rows: list[dict], theorems: list[Theorem] | None = None) -> str:
    """The per-theorem summary, then every row, as GitHub-flavoured Markdown (full names)."""
    out = ["| theorem | instances | proofs | definitions | sample checks | solves | strict bounds "
           "| worst rel. error | assumed without proof | pass |", "|---|---|---|---|---|---|---|---|---|---|"]
    for s in summarize(rows, theorems):
        err = "-" if s["worst_rel_error"] is None else f"{s['worst_rel_error']:.1e}"
        out.append(f"| {s['theorem']} | {s['instances']} | {s['proof']} | {s['definition']} | {s['sample']} "
                   f"| {s['numeric'] + s['bound'] + s['strict bound']} | {s['strict bound']} | {err} "
                   f"| {'; '.join(s['assumed']) or '-'} | {'yes' if not s['failed'] else 'NO'} |")
    out += ["", "| theorem | source | kind | instance | quantity | predicted | measured | rel. error | pass |",
            "|---|---|---|---|---|---|---|---|---|"]
    out += [f"| {r['theorem']} | {r['source']} | {r.get('kind', 'numeric')} | {r['instance']} | {r['quantity']} "
            f"| {_summary(r['predicted'])} | {_summary(r['measured'])} | {_err(r)} "
            f"| {'yes' if r['passed'] else 'NO'} |" for r in rows]
    return "\n".join(out)


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    """Command-line entry (``ufm verify`` and ``python -m proofs_check``)."""
    ap = argparse.ArgumentParser(prog="ufm verify", description="Check ufm's solvers against the theorem catalog.")
    ap.add_argument("--json", metavar="FILE", help="write the records as a JSON list")
    ap.add_argument("--markdown", metavar="FILE", help="write the table as Markdown")
    ap.add_argument("--random", type=int, default=0, metavar="N",
                    help="also check N random instances per theorem, drawn inside its assumptions")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random instances")
    ap.add_argument("--only", metavar="TEXT", help="only theorems whose name contains TEXT")
    ap.add_argument("--all", action="store_true",
                    help="include the slow theorems (larger instances, e.g. the K = 10 deep low-rank regime)")
    ap.add_argument("--rows", action="store_true",
                    help="print every proof and checked quantity (default: one line per theorem)")
    ap.add_argument("--quiet", action="store_true", help="no progress lines")
    args = ap.parse_args(argv)
    if args.random < 0:
        ap.error(f"--random must be >= 0, got {args.random}")
    out = sys.stdout if out is None else out
    theorems = all_theorems()
    skipped = [] if args.all else [t for t in theorems if t.slow]
    theorems = [t for t in theorems if t not in skipped]
    if args.only:
        theorems = [t for t in theorems if args.only.lower() in t.name.lower()]
        if not theorems:
            ap.error(f"--only {args.only!r} matches no theorem")
    t0 = time.perf_counter()
    progress = None if args.quiet else (lambda s: print(s, file=sys.stderr, flush=True))
    rows = run(theorems, random=args.random, seed=args.seed, progress=progress)
    elapsed = time.perf_counter() - t0
    print(format_table(rows) if args.rows else format_summary(rows, theorems), file=out)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write(format_markdown(rows, theorems) + "\n")
    failed = sum(not r["passed"] for r in rows)
    tail = (f"{len(theorems)} theorems, {len(rows) - failed}/{len(rows)} rows passed (tolerance 1e-8 unless "
            f"the theorem lists another with its reason); runtime {elapsed:.1f}s on {jax.default_backend()} "
            f"({jax.device_count()} device(s), {ufm.cli.compile_profile()} compile profile)")
    if skipped:
        tail += f". {len(skipped)} slow theorem(s) not run (use --all): " + "; ".join(t.name for t in skipped)
    short = random_shortfall(rows)
    if short:
        tail += (f". Fewer than --random {args.random} random instances checked for {len(short)} theorem(s): "
                 + "; ".join(short))
    print("\n" + textwrap.fill(tail, 100), file=out)
    return 1 if failed else 0

"""``ufm sweep``: certified solves over a grid from flags or a spec's ``[sweep]`` table."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping, Sequence

import numpy as np

from ufm import plot
from ufm.cli._families import problem_spec
from ufm.cli._spec import SpecError, emit, parser, problem_from
from ufm.sweeps import StoreBusyError, locate_boundary, parse_grid, sweep

__all__ = ["cmd_sweep", "SWEEP_KEYS"]

SWEEP_KEYS = ("grid", "starts", "seeds", "chunk", "store", "boundary", "certify")  # seeds: old name
SCHEDULER_TIMEOUT = 30  # seconds to reach a Dask scheduler


def _sweep_parser() -> argparse.ArgumentParser:
    p = parser("sweep", (
        "Certified solves over a product grid of hyper-parameters (a phase diagram). Results go "
        "chunk by chunk to a Zarr store; run the same command again to resume after an "
        "interruption (nothing finished is recomputed). Uses every CPU core (one JAX host device "
        "per core) or a Dask cluster (--scheduler ADDRESS). One sweep writes a store at a time; a "
        "second is refused with one line naming the first."),
        ("grid fields: lam_W, lam_H, lam_b (problems with a bias), loss.alpha, loss.gamma, and the "
         "sizes K, d, n of a UFM (d alone when imbalanced; each chunk runs padded to its bucket of sizes: one compile per "
         "bucket); values log:LO:HI:NUM, lin:LO:HI:NUM or V1,V2,...\n"
         "example: ufm sweep --K 10 --n 20 --d 32 --loss ce --lam-W 1e-3 --lam-H 1e-3 "
         "--grid lam_W=log:1e-4:1e-1:100 --grid lam_H=log:1e-4:1e-1:100 --store ce.zarr\n"
         "sizes: ufm sweep --K 2 --n 2 --d 1 --loss ce --lam-W 5e-3 --lam-H 5e-3 --lam-b 5e-3 "
         "--grid K=lin:2:11:10 --grid d=1,2,3,4,6,8,11,14,18,22 --plot phases.png"))
    p.add_argument("--grid", action="append", metavar="FIELD=VALUES", help="a grid axis (repeat)")
    p.add_argument("--starts", type=int, help="random starts per point, seeds 0..starts-1 (default 1)")
    p.add_argument("--seeds", type=int, help=argparse.SUPPRESS)  # the deprecated name of --starts
    p.add_argument("--store", help="Zarr store (resumable): a directory, file:// or another fsspec "
                   "URL; default: in memory")
    p.add_argument("--chunk", type=int, help="grid points per compiled call")
    p.add_argument("--scheduler", metavar="ADDRESS", help="run the chunks on the Dask cluster of "
                   "this scheduler (tcp://HOST:PORT, as printed by `dask scheduler`); its workers "
                   "write to --store, which they must all reach")
    p.add_argument("--dask", metavar="ADDRESS", help="a Dask scheduler address (as --scheduler), or "
                   "local:N for a LocalCluster of N worker processes")
    p.add_argument("--boundary", action="append", metavar="FIELD:LO:HI",
                   help="also locate the phase boundary along FIELD in [LO, HI] by bisection")
    p.add_argument("--order", choices=("auto", "first", "second"), default="auto",
                   help="local certificate: second order where affordable (auto), or first/second")
    p.add_argument("--certify", choices=("auto", "global", "local"),
                   help="auto (default): where the family has a proven lower bound (UFM with "
                   "CE/LS/MSE, deep linear MSE), first-order solves whose global gap closes (a "
                   "certified global minimizer; the random start is skipped where the warm start's "
                   "gap closed), with a second-order fallback; local: second order, both starts")
    p.add_argument("--plot", metavar="PNG", help="draw the phase diagram (ufm.plot.phase_diagram; "
                   "with K and d axes, the line d = K - 1 where the simplex ETF starts to fit)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    return p


def _parse_grid_flag(items, spec_grid) -> dict:
    """--grid FIELD=log:LO:HI:NUM | lin:LO:HI:NUM | V1,V2,... over the spec's ``[sweep.grid]``."""
    if not isinstance(spec_grid, Mapping):
        raise SpecError(f"spec [sweep] grid must be a table of FIELD = VALUES (a list of numbers, or "
                        f"{{log = [LO, HI, NUM]}} / {{lin = [LO, HI, NUM]}}), got grid = {spec_grid!r}")
    grid = dict(spec_grid)
    for item in items or []:
        field, sep, rhs = item.partition("=")
        if not sep:
            raise SpecError(f"--grid must look like lam_W=log:1e-4:1e-1:100, got {item!r}")
        kind, _, rest = rhs.partition(":")
        try:
            if kind in ("log", "lin") and rest:
                lo, hi, num = rest.split(":")
                grid[field] = {kind: [float(lo), float(hi), float(num)]}
            else:
                grid[field] = [float(v) for v in rhs.split(",") if v]
        except ValueError:
            raise SpecError(f"--grid {field}: cannot read {rhs!r} (log:LO:HI:NUM, lin:LO:HI:NUM "
                            f"or V1,V2,...)") from None
    if not grid:
        raise SpecError("--grid (or a [sweep.grid] table) is required: e.g. --grid lam_W=log:1e-4:1e-1:20")
    return grid


def _parse_boundaries(items) -> list[tuple[str, float, float]]:
    """``FIELD:LO:HI`` items (flags or the spec's ``boundary`` list): finite ``LO < HI``."""
    if isinstance(items, str) or not isinstance(items, Sequence):
        raise SpecError(f"spec [sweep] boundary must be a list of 'FIELD:LO:HI' strings, e.g. "
                        f"['lam_W:1e-3:1'], got boundary = {items!r}")
    out = []
    for item in items:
        parts = item.split(":") if isinstance(item, str) else []
        try:
            field, lo, hi = parts[0], float(parts[1]), float(parts[2])
        except (IndexError, ValueError):
            raise SpecError(f"boundary must look like lam_W:1e-3:1 (FIELD:LO:HI), got {item!r}") from None
        if len(parts) != 3 or not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise SpecError(f"boundary {item!r}: needs FIELD:LO:HI with finite LO < HI")
        out.append((field, lo, hi))
    return out


def _deprecated(old: str, new: str) -> None:
    print(f"ufm sweep: {old} is deprecated; use {new}", file=sys.stderr)


def _starts(args, sspec) -> int:
    """``--starts`` / ``[sweep] starts`` (default 1); the old name ``seeds`` still works, with a
    printed deprecation line."""
    if args.seeds is not None:
        if args.starts is not None:
            raise SpecError("pass --starts only (--seeds is its deprecated name)")
        _deprecated("--seeds", "--starts")
        return args.seeds
    if args.starts is not None:
        return args.starts
    if "seeds" in sspec:
        if "starts" in sspec:
            raise SpecError("spec [sweep]: give starts only (seeds is its deprecated name)")
        _deprecated("spec [sweep] key 'seeds'", "'starts'")
        return _whole("seeds", sspec["seeds"])
    return _whole("starts", sspec.get("starts", 1))


def _whole(key: str, value) -> int:
    """A ``[sweep]`` count: a whole number >= 1, or a SpecError naming the key."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SpecError(f"spec [sweep] {key} must be a whole number >= 1, got {value!r}")
    return value


def _settings(args, spec) -> dict:
    """The sweep's settings: flags over the spec's ``[sweep]`` table; errors name the key."""
    sspec = dict(spec.get("sweep", {}))
    unknown = sorted(set(sspec) - set(SWEEP_KEYS))
    if unknown:
        raise SpecError(f"spec [sweep]: unknown key(s) {unknown}; known: grid, starts, chunk, store, "
                        f"boundary, certify")
    certify = args.certify or sspec.get("certify", "auto")
    if not isinstance(certify, str) or certify not in ("auto", "global", "local"):
        raise SpecError(f"spec [sweep] certify must be auto, global or local, got {certify!r}")
    store = args.store or sspec.get("store")
    if store is not None and (not isinstance(store, str) or not store.strip()):
        raise SpecError(f"spec [sweep] store must be a path or an fsspec URL (a non-empty string), "
                        f"got store = {store!r}")
    return {"grid": _parse_grid_flag(args.grid, sspec.get("grid", {})), "starts": _starts(args, sspec),
            "store": store,
            "chunk": args.chunk or (_whole("chunk", sspec["chunk"]) if "chunk" in sspec else None),
            "certify": certify,
            "boundaries": _parse_boundaries(args.boundary or sspec.get("boundary", []))}


def _dask_client(address):
    if not address:
        return None, None
    # a missing extra: the ModuleNotFoundError reaches the command line, which names the
    # `pip install 'ufm[sweeps]'` line (exit status 1)
    from distributed import Client, LocalCluster

    if address.startswith("local:"):
        try:
            nw = int(address.split(":", 1)[1])
        except ValueError:
            raise SpecError(f"--dask local:N needs an integer N, got {address!r}") from None
        cluster = LocalCluster(n_workers=nw, threads_per_worker=1, dashboard_address=None)
        return Client(cluster), cluster
    try:
        return Client(address, timeout=SCHEDULER_TIMEOUT), None
    except (OSError, TimeoutError) as e:
        raise SpecError(f"cannot reach the Dask scheduler at {address!r} within "
                        f"{SCHEDULER_TIMEOUT} s ({type(e).__name__}); start it with `dask scheduler` "
                        f"and pass the address it prints") from None


def _run(prob, s, args):
    """The sweep itself, on the Dask cluster of ``--scheduler``/``--dask`` if any; returns
    (Dataset, seconds)."""
    if args.scheduler and args.dask:
        raise SpecError("pass --scheduler or --dask, not both")
    client, cluster = _dask_client(args.scheduler or args.dask)
    t0 = time.perf_counter()
    try:
        ds = sweep(prob, s["grid"], starts=s["starts"], store=s["store"], chunk=s["chunk"],
                   client=client, order=args.order, certify=s["certify"],
                   progress=not args.no_progress and not args.json)
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    return ds, time.perf_counter() - t0


def _report(prob, s, ds, elapsed, found) -> tuple[dict, list[str]]:
    names, counts = np.unique(ds["phase_name"].values.astype(str), return_counts=True)
    starts = s["starts"]
    rec = {"problem": problem_spec(prob), "store": s["store"], "points": int(ds["done"].size),
           "starts": starts, "seeds": starts,  # seeds: the old key, kept for one release
           "seconds": elapsed, "phases": dict(zip(names.tolist(), counts.tolist())),
           "converged": int(ds["converged"].sum()), "disagree": int(ds["disagree"].sum()),
           "global": int(ds["global_ok"].sum()), "random_skipped": int(ds["random_skipped"].sum()),
           "failed": _failed(ds), "boundaries": found}
    lines = [f"{rec['points']} points x {starts} starts in {elapsed:.1f} s "
             f"({rec['points'] * starts / elapsed:.1f} solves/s); store: {s['store'] or '(memory)'}",
             f"certified: {rec['converged']} ({rec['global']} global: gap to the proven lower bound "
             f"closed); random/warm disagree: {rec['disagree']}; random starts skipped: "
             f"{rec['random_skipped']}",
             "phases: " + ", ".join(f"{n} {c}" for n, c in rec["phases"].items())]
    if rec["failed"]:
        lines.append(f"not certified (stored with their result code; `result_name` in the store): "
                     + ", ".join(f"{n} {c}" for n, c in rec["failed"].items()))
    lines += [f"boundary {b['field']}: {b['boundary']:.10g} ({b['phases'][0]} -> {b['phases'][1]})"
              for b in found]
    return rec, lines


def _failed(ds) -> dict[str, int]:
    """Solves (point x start) that did not certify, counted by their ``RESULTS`` name."""
    names = ds["result_name"].values.astype(str)
    bad, counts = np.unique(names[ds["done"].values[..., None] & (names != "successful")],
                            return_counts=True)
    return dict(zip(bad.tolist(), counts.tolist()))


def _draw(ds, path: str, found) -> None:
    """The phase diagram of ``ds`` to ``path``; with ``K`` and ``d`` axes the line ``d = K - 1``
    (below it no simplex ETF fits in ``d`` dimensions) is drawn dashed."""
    fields = [str(f) for f in ds["phase"].dims if f != "seed"]
    x, y = ("K", "d") if {"K", "d"} <= set(fields) else (None, None)
    thresholds = {"d = K - 1": ("K", lambda d: np.asarray(d) + 1.0)} if x else None
    plot.close(plot.phase_diagram(ds, path, x=x, y=y, thresholds=thresholds, boundaries=found))


def cmd_sweep(argv: Sequence[str]) -> int:
    """``ufm sweep``: a resumable certified sweep (and located boundaries); prints a summary."""
    args = _sweep_parser().parse_args(argv)
    prob, spec = problem_from(args)
    s = _settings(args, spec)
    parse_grid(prob, s["grid"])  # every spec error before any solve or any store
    for field, lo, hi in s["boundaries"]:
        try:
            parse_grid(prob, {field: [lo, hi]})
        except ValueError as e:
            raise SpecError(f"boundary {field}:{lo:g}:{hi:g}: {e}") from None
    try:
        ds, elapsed = _run(prob, s, args)
    except (StoreBusyError, OSError) as e:  # a busy, full or read-only store: one line
        print(f"ufm sweep: error: {e}", file=sys.stderr)
        return 2
    found = [locate_boundary(prob, f, lo, hi) for f, lo, hi in s["boundaries"]]
    rec, lines = _report(prob, s, ds, elapsed, found)
    if args.plot:
        _draw(ds, args.plot, found)
        rec["plot"] = args.plot
        lines.append(f"phase diagram: {args.plot}")
    emit(args, rec, lines)
    return 0

"""The ``ufm`` command line: ``ufm solve | flow | sweep | plot | verify`` (``ufm --help``)."""

from __future__ import annotations

import os
import sys


def enable_compilation_cache() -> None:
    """Persist XLA compilations under ~/.cache/ufm/jax so repeated runs skip compiling
    (:func:`ufm.enable_compilation_cache`, entries that took >= 0.5 s to compile; the command line
    only: importing ufm sets nothing). Set ``UFM_NO_COMPILATION_CACHE=1`` to turn it off.
    """
    if os.environ.get("UFM_NO_COMPILATION_CACHE"):
        return
    from ufm._internal.runtime import enable_compilation_cache as enable

    try:
        enable(os.path.join(os.path.expanduser("~"), ".cache", "ufm", "jax"), min_compile_time_secs=0.5)
    except OSError:  # a read-only home: just compile
        pass


_COMMANDS: dict = {}
_GROUP = "ufm.commands"


def register_command(name: str, fn) -> None:
    """Register ``fn(argv) -> int`` as the subcommand ``ufm NAME`` in this process.

    Packages above ufm (``proofs_check`` registers ``verify``) call this when imported, and declare
    the same command in the ``ufm.commands`` entry-point group of their distribution, so that the
    console script finds it without ufm importing them.
    """
    if not callable(fn):
        raise ValueError(f"fn must be callable fn(argv) -> int, got {fn!r}")
    _COMMANDS[str(name)] = fn


def _lookup(name: str):
    """The subcommand ``name``: registered in-process, else an installed entry point, else None."""
    if name in _COMMANDS:
        return _COMMANDS[name]
    from importlib.metadata import entry_points

    for ep in entry_points(group=_GROUP):
        if ep.name == name:
            return ep.load()
    return None


def _run_module_fallback(name: str, argv) -> int | None:
    """Without an installed distribution: run ``python -m proofs_check`` (a separate program, so
    ufm still imports nothing above itself). Returns None when that package is not on the path."""
    import importlib.util
    import subprocess

    if name != "verify" or importlib.util.find_spec("proofs_check") is None:
        return None
    return subprocess.call([sys.executable, "-m", "proofs_check", *argv])


# ---------------------------------------------------------------- problems from flags or TOML

_LOSSES = ("ce", "ls", "focal", "mse")
_PROBLEM_KEYS = ("K", "n", "d", "loss", "alpha", "gamma", "lam_W", "lam_H", "lam_b", "nonneg")

USAGE = """usage: ufm COMMAND [options]      (ufm COMMAND --help for each)

commands:
  solve   certified minimizer of one problem: value, certificate, NC metrics, phase
  flow    gradient flow of one problem: objective and NC metrics along time
  sweep   certified solves over a grid (a phase diagram), resumable Zarr store, every core
  plot    draw the phase diagram of a sweep store
  verify  check the solvers against every closed form of the theorem catalog (proofs_check)

A problem comes from flags (--K 10 --n 20 --d 32 --loss ce --lam-W 5e-3 --lam-H 5e-3) or from a
TOML spec file (see examples/*.toml); flags override the file. Every command takes --json.

environment:
  UFM_COMPILE=fast|optimized   XLA compile profile; solve and verify default to fast (about a third
                               of the compile time, slower code on large arrays), flow and sweep
                               to optimized (XLA's defaults)
  UFM_NO_COMPILATION_CACHE=1   do not keep compilations under ~/.cache/ufm/jax

examples:
  ufm solve --K 4 --n 5 --d 8 --loss ce --lam-W 5e-3 --lam-H 5e-3 --json
  ufm sweep examples/ce_phase.toml --store ce.zarr      (rerun the same line to resume)
  ufm plot ce.zarr --out ce.png
"""


class SpecError(ValueError):
    """A bad flag or spec entry; the message names it."""


def _add_problem_flags(p):
    g = p.add_argument_group("problem (flags override the spec file)")
    g.add_argument("spec", nargs="?", help="TOML spec file with a [problem] table (examples/*.toml)")
    g.add_argument("--K", type=int, help="number of classes, >= 2")
    g.add_argument("--n", help="samples per class: an int, or per-class counts '6,6,1,1'")
    g.add_argument("--d", type=int, help="feature dimension, >= 1")
    g.add_argument("--loss", choices=_LOSSES, help="ce (cross-entropy), ls (label smoothing, "
                   "--alpha), focal (--gamma), mse (one-hot)")
    g.add_argument("--alpha", type=float, help="label-smoothing alpha in [0, 1)")
    g.add_argument("--gamma", type=float, help="focal gamma >= 0")
    g.add_argument("--lam-W", dest="lam_W", type=float, help="weight decay on W, >= 0")
    g.add_argument("--lam-H", dest="lam_H", type=float, help="weight decay on H, >= 0")
    g.add_argument("--lam-b", dest="lam_b", help="bias decay: 'none' (no bias, default), 0 (free), > 0")
    g.add_argument("--nonneg", action="store_true", default=None, help="constrain H >= 0")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def _read_spec(path) -> dict:
    import tomllib

    if path is None:
        return {}
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as e:
        raise SpecError(f"spec: cannot read {path!r}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"spec: {path!r} is not valid TOML: {e}") from None


def _problem_dict(args, spec) -> dict:
    table = dict(spec.get("problem", {}))
    unknown = sorted(set(table) - set(_PROBLEM_KEYS))
    if unknown:
        raise SpecError(f"spec [problem]: unknown key(s) {unknown}; known: {list(_PROBLEM_KEYS)}")
    for key in _PROBLEM_KEYS:
        v = getattr(args, key, None)
        if v is not None:
            table[key] = v
    return table


def _parse_n(value, where):
    if isinstance(value, int):
        return value
    if isinstance(value, list):
        return tuple(value)
    try:
        parts = [int(x) for x in str(value).split(",")]
    except ValueError:
        raise SpecError(f"{where} must be an int or per-class counts like 6,6,1,1, got {value!r}") from None
    return parts[0] if len(parts) == 1 else tuple(parts)


def build_problem(table: dict):
    """A :class:`ufm.UFM` from a ``[problem]`` table; errors name the key (``--K`` / ``problem.K``)."""
    import ufm

    for key in ("K", "n", "d", "lam_W", "lam_H"):
        if key not in table:
            flag = "--" + key.replace("_", "-")
            raise SpecError(f"{flag} (problem.{key}) is required")
    loss_name = str(table.get("loss", "ce")).lower()
    if loss_name not in _LOSSES:
        raise SpecError(f"--loss (problem.loss) must be one of {list(_LOSSES)}, got {loss_name!r}")
    try:
        loss = {"ce": lambda: ufm.CrossEntropy(),
                "ls": lambda: ufm.LabelSmoothing(table.get("alpha", 0.1)),
                "focal": lambda: ufm.Focal(table.get("gamma", 2.0)),
                "mse": lambda: ufm.MSE()}[loss_name]()
    except ValueError as e:
        raise SpecError(f"--alpha/--gamma (problem.alpha/gamma): {e}") from None
    lam_b = table.get("lam_b")
    if isinstance(lam_b, str):
        if lam_b.lower() == "none":
            lam_b = None
        else:
            try:
                lam_b = float(lam_b)
            except ValueError:
                raise SpecError(f"--lam-b must be 'none' or a number >= 0, got {lam_b!r}") from None
    try:
        return ufm.UFM(K=table["K"], n=_parse_n(table["n"], "--n (problem.n)"), d=table["d"],
                       loss=loss, lam_W=table["lam_W"], lam_H=table["lam_H"], lam_b=lam_b,
                       nonneg=bool(table.get("nonneg", False)))
    except ValueError as e:
        raise SpecError(f"problem: {e}") from None


# ---------------------------------------------------------------- subcommands


def _describe(prob, params):
    import numpy as np

    from ufm import metrics
    from ufm.sweeps import _phases

    Hbar, _ = metrics.class_means(params.H, prob.labels)
    G_H, G_W = np.asarray(Hbar.T @ Hbar), np.asarray(params.W @ params.W.T)
    phase = _phases.phase_of(G_H, G_W, prob.counts, prob.d)
    out = {"phase": phase, "gram_signature": _phases.gram_signature(G_H),
           "W_norm2": float(np.sum(np.asarray(params.W) ** 2)),
           "H_norm2": float(np.sum(np.asarray(params.H) ** 2))}
    if phase != "zero":
        b = params.b if prob.has_bias else None
        out["metrics"] = {k: float(v) for k, v in
                          metrics.all_metrics(params.W, params.H, prob.labels, b).items()}
    return out


def _emit(args, record, text_lines):
    import json

    if args.json:
        print(json.dumps(record, indent=1, default=str))
    else:
        print("\n".join(text_lines))


def _parser(name, description, epilog, problem=True):
    import argparse

    p = argparse.ArgumentParser(prog=f"ufm {name}", description=description, epilog=epilog,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    if problem:
        _add_problem_flags(p)
    return p


def cmd_solve(argv) -> int:
    p = _parser("solve", (
        "Certified minimizer of one UFM: L-BFGS then Newton-CG to a relative KKT residual gtol; "
        "prints the value, the certificate, the atlas phase and the NC metrics."),
        "example: ufm solve --K 4 --n 5 --d 8 --loss ce --lam-W 5e-3 --lam-H 5e-3")
    p.add_argument("--seed", type=int, default=0, help="random start (default 0)")
    p.add_argument("--restarts", type=int, default=1, help="random starts, keep the best")
    p.add_argument("--gtol", type=float, default=1e-10, help="relative KKT tolerance")
    p.add_argument("--spectrum", metavar="PNG", help="also draw the singular values of W and Hbar")
    args = p.parse_args(argv)
    import ufm

    prob = build_problem(_problem_dict(args, _read_spec(args.spec)))
    sol = ufm.minimize(prob, seed=args.seed, restarts=args.restarts, gtol=args.gtol,
                       hessian=True, throw=False)
    cert = sol.certificate
    rec = {"problem": repr(prob), "value": sol.value, "kkt": cert.kkt, "min_eig": cert.min_eig,
           "order": cert.order, "hessian_eigs": sol.hessian_eigs, "result": sol.result.name,
           "converged": sol.converged, "steps": sol.iterations, **_describe(prob, sol.params)}
    if args.spectrum:
        from ufm import plot

        rec["spectrum"] = plot.spectra(sol.params, prob.labels, args.spectrum, title=repr(prob)[:60])
    lines = [f"{k}: {v}" for k, v in rec.items() if k != "metrics"]
    lines += [f"  {k}: {v:.3e}" for k, v in rec.get("metrics", {}).items()]
    _emit(args, rec, lines)
    return 0 if sol.converged else 1


def cmd_flow(argv) -> int:
    p = _parser("flow", (
        "Gradient flow d theta/dt = -grad f of one UFM from a random start; prints the objective "
        "and NC metrics at log-spaced times."),
        "example: ufm flow --K 4 --n 5 --d 8 --loss ce --lam-W 5e-3 --lam-H 5e-3 --t1 1000 --plot flow.png")
    p.add_argument("--t1", type=float, default=100.0, help="final time (default 100)")
    p.add_argument("--dt", type=float, default=None, help="fixed step (default: adaptive)")
    p.add_argument("--points", type=int, default=20, help="recorded times, log-spaced")
    p.add_argument("--seed", type=int, default=0, help="random start")
    p.add_argument("--plot", metavar="PNG", help="draw objective and NC metrics along the flow")
    args = p.parse_args(argv)
    import numpy as np

    import ufm

    prob = build_problem(_problem_dict(args, _read_spec(args.spec)))
    if not (args.t1 > 0):
        raise SpecError(f"--t1 must be > 0, got {args.t1}")
    if args.points < 2:
        raise SpecError(f"--points must be >= 2, got {args.points}")
    ts = np.geomspace(args.t1 * 1e-4, args.t1, args.points)
    names = ("nc1", "nc2_W", "nc2_H", "nc3")
    traj = ufm.gradient_flow(prob, t1=args.t1, dt=args.dt, seed=args.seed,
                             saveat=ufm.SaveAt(ts=ts, params=False), metrics=names)
    rec = {"problem": repr(prob), "result": traj.result.name, "times": traj.times.tolist(),
           "values": np.asarray(traj.values).tolist(),
           "metrics": {k: np.asarray(v).tolist() for k, v in traj.metrics.items()}}
    if args.plot:
        from ufm import plot

        rec["plot"] = plot.flow_metrics(traj, args.plot, title=repr(prob)[:90])
    lines = [f"{'t':>10} {'f':>14} " + " ".join(f"{n:>10}" for n in names)]
    for i, t in enumerate(rec["times"]):
        lines.append(f"{t:10.3g} {rec['values'][i]:14.8g} "
                     + " ".join(f"{rec['metrics'][n][i]:10.3e}" for n in names))
    _emit(args, rec, lines)
    return 0


def _parse_grid_flag(items, spec_grid) -> dict:
    """--grid FIELD=log:LO:HI:NUM | lin:LO:HI:NUM | V1,V2,..."""
    grid = dict(spec_grid)
    for item in items or []:
        field, sep, rhs = item.partition("=")
        if not sep:
            raise SpecError(f"--grid must look like lam_W=log:1e-4:1e-1:100, got {item!r}")
        kind, _, rest = rhs.partition(":")
        try:
            if kind in ("log", "lin") and rest:
                lo, hi, num = rest.split(":")
                grid[field] = {kind: [float(lo), float(hi), int(num)]}
            else:
                grid[field] = [float(v) for v in rhs.split(",") if v]
        except ValueError:
            raise SpecError(f"--grid {field}: cannot read {rhs!r} (log:LO:HI:NUM, lin:LO:HI:NUM "
                            f"or V1,V2,...)") from None
    if not grid:
        raise SpecError("--grid (or a [sweep.grid] table) is required: e.g. --grid lam_W=log:1e-4:1e-1:20")
    return grid


def cmd_sweep(argv) -> int:
    p = _parser("sweep", (
        "Certified solves over a product grid of hyper-parameters (a phase diagram). Results go "
        "chunk by chunk to a Zarr store; run the same command again to resume after an "
        "interruption (nothing finished is recomputed). Uses every CPU core (one JAX host device "
        "per core) or a Dask cluster (--dask)."),
        ("grid fields: lam_W, lam_H, lam_b (problems with a bias), loss.alpha, loss.gamma; "
                "values log:LO:HI:NUM, lin:LO:HI:NUM or V1,V2,...\n"
                "example: ufm sweep --K 10 --n 20 --d 32 --loss ce --lam-W 1e-3 --lam-H 1e-3 "
                "--grid lam_W=log:1e-4:1e-1:100 --grid lam_H=log:1e-4:1e-1:100 --store ce.zarr"))
    p.add_argument("--grid", action="append", metavar="FIELD=VALUES", help="a grid axis (repeat)")
    p.add_argument("--seeds", type=int, help="random starts per point (default 1)")
    p.add_argument("--store", help="Zarr store directory (resumable); default: in memory")
    p.add_argument("--chunk", type=int, help="grid points per compiled call")
    p.add_argument("--dask", metavar="ADDRESS", help="a Dask scheduler address, or local:N for a "
                   "LocalCluster of N worker processes")
    p.add_argument("--boundary", action="append", metavar="FIELD:LO:HI",
                   help="also locate the phase boundary along FIELD in [LO, HI] by bisection")
    p.add_argument("--order", choices=("auto", "first", "second"), default="auto",
                   help="local certificate: second order where affordable (auto), or first/second")
    p.add_argument("--certify", choices=("auto", "global", "local"),
                   help="auto (default): where the family has a proven lower bound (UFM with "
                   "CE/LS/MSE, deep linear MSE), first-order solves whose global gap closes (a "
                   "certified global minimizer; the random start is skipped where the warm start's "
                   "gap closed), with a second-order fallback; local: second order, both starts")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    args = p.parse_args(argv)
    import time

    import numpy as np

    from ufm import sweeps as sw

    spec = _read_spec(args.spec)
    prob = build_problem(_problem_dict(args, spec))
    sspec = dict(spec.get("sweep", {}))
    unknown = sorted(set(sspec) - {"grid", "seeds", "chunk", "store", "boundary", "certify"})
    if unknown:
        raise SpecError(f"spec [sweep]: unknown key(s) {unknown}; known: grid, seeds, chunk, store, "
                        f"boundary, certify")
    certify = args.certify or sspec.get("certify", "auto")
    if certify not in ("auto", "global", "local"):
        raise SpecError(f"spec [sweep] certify must be auto, global or local, got {certify!r}")
    grid = _parse_grid_flag(args.grid, sspec.get("grid", {}))
    seeds = args.seeds if args.seeds is not None else int(sspec.get("seeds", 1))
    store = args.store or sspec.get("store")
    chunk = args.chunk or sspec.get("chunk")
    boundaries = _parse_boundaries(args.boundary or sspec.get("boundary", []))
    sw.parse_grid(prob, grid)  # every spec error before any solve or any store
    for b in boundaries:
        sw.parse_grid(prob, {b[0]: [b[1], b[2]]})
    client, cluster = _dask_client(args.dask)
    t0 = time.perf_counter()
    try:
        ds = sw.sweep(prob, grid, seeds=seeds, store=store, chunk=chunk, client=client,
                      order=args.order, certify=certify, progress=not args.no_progress and not args.json)
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    elapsed = time.perf_counter() - t0
    found = [sw.locate_boundary(prob, f, lo, hi) for f, lo, hi in boundaries]
    names, counts = np.unique(ds["phase_name"].values.astype(str), return_counts=True)
    rec = {"problem": repr(prob), "store": store, "points": int(ds["done"].size),
           "seeds": seeds, "seconds": elapsed, "phases": dict(zip(names.tolist(), counts.tolist())),
           "converged": int(ds["converged"].sum()), "disagree": int(ds["disagree"].sum()),
           "global": int(ds["global_ok"].sum()), "random_skipped": int(ds["random_skipped"].sum()),
           "boundaries": found}
    lines = [f"{rec['points']} points x {seeds} seeds in {elapsed:.1f} s "
             f"({rec['points'] * seeds / elapsed:.1f} solves/s); store: {store or '(memory)'}",
             f"certified: {rec['converged']} ({rec['global']} global: gap to the proven lower bound "
             f"closed); random/warm disagree: {rec['disagree']}; random starts skipped: "
             f"{rec['random_skipped']}",
             "phases: " + ", ".join(f"{n} {c}" for n, c in rec["phases"].items())]
    lines += [f"boundary {b['field']}: {b['boundary']:.10g} ({b['phases'][0]} -> {b['phases'][1]})"
              for b in found]
    _emit(args, rec, lines)
    return 0


def _parse_boundaries(items):
    out = []
    for item in items:
        parts = str(item).split(":")
        try:
            field, lo, hi = parts[0], float(parts[1]), float(parts[2])
        except (IndexError, ValueError):
            raise SpecError(f"--boundary must look like lam_W:1e-3:1, got {item!r}") from None
        out.append((field, lo, hi))
    return out


def _dask_client(address):
    if not address:
        return None, None
    from distributed import Client, LocalCluster

    if address.startswith("local:"):
        try:
            nw = int(address.split(":", 1)[1])
        except ValueError:
            raise SpecError(f"--dask local:N needs an integer N, got {address!r}") from None
        cluster = LocalCluster(n_workers=nw, threads_per_worker=1, dashboard_address=None)
        return Client(cluster), cluster
    return Client(address), None


def cmd_plot(argv) -> int:
    p = _parser("plot", (
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
    import os

    from ufm import plot
    from ufm.sweeps import open_sweep

    if not os.path.isdir(args.store):
        raise SpecError(f"store: no sweep store at {args.store!r}")
    ds = open_sweep(args.store)
    th = {}
    for item in args.threshold or []:
        field, _, val = item.partition("=")
        try:
            c = float(val)
        except ValueError:
            raise SpecError(f"--threshold must look like lam_W=2.5 or lam_W*lam_H=0.0056, got {item!r}") from None
        if "*" in field:  # a product threshold x * y = c, drawn as the curve x = c / y
            fx, fy = field.split("*", 1)
            th[field] = (fx, lambda yv, c=c: c / yv)
        else:
            th[field] = c
    path = plot.phase_diagram(ds, args.out, x=args.x, y=args.y, seed=args.seed, thresholds=th)
    _emit(args, {"plot": path}, [f"wrote {path}"])
    return 0


BUILTIN = {"solve": cmd_solve, "flow": cmd_flow, "sweep": cmd_sweep, "plot": cmd_plot}


def _backend_started() -> bool:
    """Whether JAX has created its backends (after that, XLA_FLAGS is no longer read).

    Importing ufm imports jax but starts no backend; the first array or device query does.
    """
    if "jax" not in sys.modules:
        return False
    try:
        from jax._src import xla_bridge

        return bool(xla_bridge.backends_are_initialized())
    except (ImportError, AttributeError):  # another jax layout: assume started, change nothing
        return True


def _add_xla_flags(*flags: str) -> bool:
    """Append ``--name=value`` flags to ``XLA_FLAGS`` in this process, skipping any whose name the
    user's ``XLA_FLAGS`` already sets; only before the backend starts. Returns whether it could."""
    if _backend_started():
        return False
    current = os.environ.get("XLA_FLAGS", "")
    add = [f for f in flags if f.split("=", 1)[0] not in current]
    if add:
        os.environ["XLA_FLAGS"] = " ".join([current, *add]).strip()
    return True


def _host_devices() -> None:
    """One XLA host device per core (sweeps run a chunk per device), unless the user chose."""
    _add_xla_flags(f"--xla_force_host_platform_device_count={os.cpu_count() or 1}")


# The "fast" compile profile: XLA:CPU's classic loop emitters instead of its MLIR fusion emitters,
# LLVM at -O0, and each program's kernels compiled as one LLVM module (no parallel codegen split:
# less CPU on 2 cores, a third fewer memory mappings per executable). Measured on the 2-core
# machine (benchmarks/bench_compile.py; README, "The theorem catalog"): a certified solve compiles
# in about a third of the time; the compiled code runs at 0.7-1.05x the speed on small and medium
# problems (matmul and Lanczos bound) and 3.5-5x slower on elementwise-heavy large ones (CE,
# K=10, n=100, d=64). For one-shot work made of many distinct shapes (``ufm verify``, ``ufm
# solve``) compiling is most of the time; a sweep or a long flow runs one program many times and
# keeps XLA's defaults (the moonshot sweep: 116 s with the fast profile, 23.6 s without).
FAST_COMPILE_FLAGS = ("--xla_cpu_use_fusion_emitters=false", "--xla_backend_optimization_level=0",
                      "--xla_cpu_parallel_codegen_split_count=1")
COMPILE_PROFILES = ("fast", "optimized")


def use_compile_profile(default: str) -> str:
    """Choose this process's XLA compile profile before JAX starts; returns the one in effect.

    ``UFM_COMPILE=fast|optimized`` in the environment overrides ``default``. ``"fast"`` appends
    :data:`FAST_COMPILE_FLAGS` to ``XLA_FLAGS`` (flags the user set win); ``"optimized"`` leaves
    XLA's defaults. A command-line process setting (the ``ufm`` command and ``python -m
    proofs_check`` call it); importing ufm sets nothing. Once JAX has started its backend the
    profile can no longer change. Returns ``"fast"`` when every fast flag is in effect, else
    ``"optimized"`` (XLA's defaults, or the user's own ``XLA_FLAGS``).
    """
    profile = os.environ.get("UFM_COMPILE", "").strip().lower() or default
    if profile not in COMPILE_PROFILES:
        raise SpecError(f"UFM_COMPILE must be one of {', '.join(COMPILE_PROFILES)}, got {profile!r}")
    if profile == "fast":
        _add_xla_flags(*FAST_COMPILE_FLAGS)
    return compile_profile()


def compile_profile() -> str:
    """The compile profile in effect in this process: ``"fast"`` when ``XLA_FLAGS`` holds every
    flag of :data:`FAST_COMPILE_FLAGS`, else ``"optimized"``."""
    current = os.environ.get("XLA_FLAGS", "")
    return "fast" if all(f in current for f in FAST_COMPILE_FLAGS) else "optimized"


# per command: one-shot commands compile fast, commands that run one program many times optimize
_DEFAULT_PROFILE = {"solve": "fast", "verify": "fast", "flow": "optimized", "sweep": "optimized",
                    "plot": "optimized"}


def main(argv=None) -> int:
    """The ``ufm`` console script: ``ufm {solve,flow,sweep,plot,verify} ...`` (``ufm --help``).

    ``verify`` comes from the ``ufm.commands`` entry-point group (owned by ``proofs_check``); the
    CLI turns on float64 (:func:`ufm.enable_x64`) before running any command.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    try:
        use_compile_profile(_DEFAULT_PROFILE.get(argv[0], "optimized"))
    except SpecError as e:
        print(f"ufm {argv[0]}: error: {e}", file=sys.stderr)
        return 2
    if argv[0] == "sweep":
        _host_devices()
    enable_compilation_cache()
    from ufm._internal.precision import enable_x64

    enable_x64()
    fn = BUILTIN.get(argv[0]) or _lookup(argv[0])
    if fn is None:
        code = _run_module_fallback(argv[0], argv[1:])
        if code is not None:
            return code
        known = sorted(set(_COMMANDS) | set(BUILTIN) | {"verify"})
        print(f"ufm: unknown command {argv[0]!r} (known: {', '.join(known)}; 'verify' needs the "
              f"proofs_check package)\n\n{USAGE}", file=sys.stderr)
        return 2
    try:
        return fn(argv[1:])
    except SpecError as e:
        print(f"ufm {argv[0]}: error: {e}", file=sys.stderr)
        return 2
    except ValueError as e:  # validation inside ufm: the message names the argument
        print(f"ufm {argv[0]}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

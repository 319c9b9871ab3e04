"""Heavy-ball gradient descent on the cross-entropy UFM: PyTorch eager vs NumPy vs ufm (compiled).

Model (bias-free, ``docs/theory.md#canonical-objective``), ``W: (K, d)``, ``H: (d, N)``, ``N = K n``,
labels ``np.repeat(arange(K), n)``:

    f(W, H) = (1/N) sum_i CE(W h_i, y_i) + lam_W/2 ||W||_F^2 + lam_H/2 ||H||_F^2

Loop (torch.optim.SGD momentum semantics), from one fixed random start:

    buf <- mu buf + grad f(p);   p <- p - lr buf        (lr = 0.1, mu = 0.9)

K = 10, n = 100 (``--n``), d = 64, lam_W = lam_H = 5e-4, 20,000 full-batch steps, in float32 and
float64.

The float32 flow against its floor (printed side by side, same process): the step's three products
``W H``, ``G H^T``, ``W^T G`` alone in a compiled ``fori_loop`` (no loss, no update, no dispatch;
each product's output read once by a 1e-12 axpy; :func:`products_floor_loop`), compiled with the
flow's own per-``jit`` compiler options. ``floor / flow`` is the share of the flow's time that
the products it cannot avoid take: 100% is the limit, the target is ``>= 80%``
(``FLOOR_TARGET``). It is measured in ``--floor-rounds`` paired rounds after a warm-up (each
round times the floor, the flow and the floor compiled with XLA's default options, which copies
the loop-carried arrays every iteration, one call each for ``--floor-steps`` steps, in
alternating order); the median and quartiles of the per-round ratios are printed, in wall time
and in CPU time of this process (the steadier one on a shared machine). ``--floor-only`` runs
just this; ``--pin-core C`` runs the process on core C alone (then CPU time counts the work
done, without XLA's pool threads spinning on the other core).

Compared, in one process:

1. PyTorch eager: autograd for the gradient, ``torch.optim.SGD(lr, momentum)`` for the update,
   ``torch.set_num_threads`` = cores available (skipped with a message if torch is missing:
   ``pip install -e .[bench]``);
2. NumPy: hand-written gradient (log-sum-exp softmax), in-place update;
3. ufm: ``ufm.gradient_flow(prob, t1=steps*lr, dt=lr, momentum=mu, ...)``, one compiled loop.

Timing: best of ``--repeats`` runs; for ufm a warm-up call on the same shapes and dtype is made
first and excluded (its time is printed as the compile time), and every timed call ends with
``jax.block_until_ready``. The three final objective values must agree (relative 1e-4 in float32,
1e-9 in float64) or the script exits with status 1.

At scale (``--scale-steps``, default 20; 0 skips it), K = 100, n = 50, d = 512, both dtypes: ufm's
step time against the three matrix products of one step timed alone in the same process,

    flops per step = 2 K d N  (Z = W H)  +  2 K d N  (G H^T)  +  2 K d N  (W^T G),

each product a plain jitted ``jnp.dot`` of those shapes with row-major operands (``W^T`` given as
a ``(d, K)`` array), best of ``--repeats`` calls. The flow's "fraction of matmul peak" is
(flops per step / ufm's time per step) / (3 x 2 K d N / the three products' summed time), i.e.
the products' time over ufm's step time. The NumPy loop runs there too.

Run: ``python benchmarks/bench_flow.py`` (``--quick`` for a smoke run, ``--steps N``, ``--n N``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import NamedTuple

import numpy as np
from _common import (
    OtherLoad,
    best_wall_and_cpu,
    cpu_count,
    grad_np,
    labels,
    load_line,
    machine_line,
    objective_np,
    print_table,
    random_start,
)

K, d = 10, 64
SCALE = dict(K=100, n=50, d=512)
LAM_W = LAM_H = 5e-4
LR, MU = 0.1, 0.9
RTOL = {"float32": 1e-4, "float64": 1e-9}
# ufm speed-up wanted over each (torch eager >= 25x in float32; NumPy >= 1.2x in float64)
TARGET = {"torch": {"float32": 25.0, "float64": 8.0}, "numpy": {"float64": 1.2}}
PEAK_TARGET = 0.70  # fraction of the measured matmul rate wanted at scale
FLOOR_TARGET = 0.80  # float32 flow: the floor's time per step over ufm's, wanted at least


# ---- 1. PyTorch eager ---------------------------------------------------------------------------
def torch_or_none(threads: int):
    """The torch module set to ``threads`` threads, or None (with a message) when it is missing."""
    try:
        import torch
    except ImportError:
        print("torch not installed: skipping the PyTorch row (pip install -e .[bench])")
        return None
    torch.set_num_threads(threads)
    return torch


def torch_loop(torch, W0, H0, y, steps: int, dtype: str):
    """``steps`` SGD-momentum steps with autograd; returns the final ``(W, H)`` as NumPy."""
    import torch.nn.functional as F

    W = torch.tensor(W0, dtype=getattr(torch, dtype), requires_grad=True)
    H = torch.tensor(H0, dtype=getattr(torch, dtype), requires_grad=True)
    yt = torch.as_tensor(y)
    opt = torch.optim.SGD([W, H], lr=LR, momentum=MU)
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy((W @ H).T, yt)
        loss = loss + LAM_W / 2 * W.square().sum() + LAM_H / 2 * H.square().sum()
        loss.backward()
        opt.step()
    return W.detach().numpy(), H.detach().numpy()


# ---- 2. NumPy, hand-written gradient ------------------------------------------------------------
def numpy_loop(W0, H0, y, steps: int, dtype: str):
    """``steps`` heavy-ball steps with :func:`_common.grad_np`; returns the final ``(W, H)``."""
    W, H = W0.astype(dtype), H0.astype(dtype)
    bW, bH = np.zeros_like(W), np.zeros_like(H)
    lr, mu = W.dtype.type(LR), W.dtype.type(MU)
    lam_W, lam_H = W.dtype.type(LAM_W), W.dtype.type(LAM_H)
    for _ in range(steps):
        gW, gH = grad_np(W, H, y, lam_W, lam_H)
        bW *= mu
        bW += gW
        bH *= mu
        bH += gH
        W -= lr * bW
        H -= lr * bH
    return W, H


# ---- 3. ufm -------------------------------------------------------------------------------------
def ufm_runner(W0, H0, n: int, steps: int, dtype: str):
    """A zero-argument function running ufm's compiled loop, blocking until it is done."""
    import jax
    import jax.numpy as jnp

    import ufm

    ufm.enable_x64()

    K, d = W0.shape
    prob = ufm.UFM(K=K, n=n, d=d, loss=ufm.CrossEntropy(), lam_W=LAM_W, lam_H=LAM_H, lam_b=None)
    jdtype = getattr(jnp, dtype)
    params0 = ufm.Params(jnp.asarray(W0, jdtype), jnp.asarray(H0, jdtype), None)
    saveat = ufm.SaveAt(t1=True, params=False)

    def run():
        traj = ufm.gradient_flow(
            prob, t1=steps * LR, dt=LR, momentum=MU, params0=params0, saveat=saveat, dtype=jdtype
        )
        return jax.block_until_ready(traj)

    return run


def final_value_ufm(traj) -> float:
    return float(np.asarray(traj.values).reshape(-1)[-1])


# ---- driver -------------------------------------------------------------------------------------
class Row(NamedTuple):
    seconds: float  # best wall time of the repeats
    cpu: float  # best CPU time of this process (all threads) of the repeats
    value: float  # final objective, in the run's dtype
    others: float  # share of the cores other processes used meanwhile (0 on a quiet machine)


def timed(run, repeats: int, value_of) -> Row:
    """Best-of-``repeats`` timing of ``run()``, the final objective ``value_of(result)``."""
    load = OtherLoad().start()
    sec, cpu, out = best_wall_and_cpu(run, repeats)
    return Row(sec, cpu, value_of(out), load.stop())


def bench_dtype(dtype: str, n: int, steps: int, repeats: int, torch, K=K, d=d) -> dict[str, Row]:
    """``{implementation: Row}`` for one dtype, all from the same start."""
    W0, H0 = random_start(K, n, d, seed=0)
    y = labels(K, n)

    def value_np(WH):
        W, H = WH
        return objective_np(W, H, y, W.dtype.type(LAM_W), W.dtype.type(LAM_H))

    out = {}
    if torch is not None:
        out["torch eager"] = timed(
            lambda: torch_loop(torch, W0, H0, y, steps, dtype), repeats, value_np
        )
    out["numpy"] = timed(lambda: numpy_loop(W0, H0, y, steps, dtype), repeats, value_np)
    run = ufm_runner(W0, H0, n, steps, dtype)
    t0 = time.perf_counter()
    run()  # warm-up: compiles for these shapes and this dtype
    first = time.perf_counter() - t0
    out["ufm"] = timed(run, repeats, final_value_ufm)
    print(
        f"[{dtype}] ufm first call (compile + run) {first:.2f} s, "
        f"compile ~ {first - out['ufm'].seconds:.2f} s"
    )
    return out


def check_agreement(dtype: str, res: dict[str, Row]) -> bool:
    """Print the final objectives; True when all agree with ufm's to ``RTOL[dtype]``."""
    ref = res["ufm"].value
    ok = True
    for name, row in res.items():
        rel = abs(row.value - ref) / abs(ref)
        good = rel <= RTOL[dtype]
        ok &= good
        verdict = "ok" if good else f"DISAGREES (tol {RTOL[dtype]:.0e})"
        print(f"  {dtype} {name:>12}: f = {row.value:.15g}  rel. diff to ufm {rel:.1e}  {verdict}")
    return ok


def table_rows(dtype: str, steps: int, res: dict[str, Row]) -> list[list[str]]:
    t_ufm = res["ufm"].seconds
    rows = []
    for name, row in res.items():
        ratio = row.seconds / t_ufm
        target = TARGET.get(name.split()[0], {}).get(dtype)
        rows.append(
            [
                name,
                dtype,
                f"{row.seconds:.3f}",
                f"{steps / row.seconds:,.0f}",
                f"{1e6 * row.seconds / steps:.0f}",
                "" if name == "ufm" else f"{ratio:.1f}x",
                f"{1e6 * row.cpu / steps:.0f}",
                "" if name == "ufm" else f"{row.cpu / res['ufm'].cpu:.1f}x",
                f">= {target:g}x" if target else "",
                "" if not target else "met" if ratio >= target else "NOT met",
                f"{row.others:.0%}",
            ]
        )
    return rows


# ---- at scale: fraction of the measured matmul rate ----------------------------------------------
def matmul_seconds(K: int, n: int, d: int, dtype: str, repeats: int) -> tuple[float, float]:
    """Summed best-of-``repeats`` times of one step's three products, each a plain jitted ``jnp.dot``
    with row-major operands: ``W H`` (K x d by d x N), ``G H^T`` (K x N by N x d), ``W^T G`` (d x K
    by K x N, ``W^T`` stored as its own ``(d, K)`` array); wall and CPU time."""
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(1)
    N = K * n
    W, H, G = (jnp.asarray(rng.standard_normal(s), dtype) for s in [(K, d), (d, N), (K, N)])
    Wt = jnp.asarray(np.ascontiguousarray(np.asarray(W).T))
    wall = cpu = 0.0
    for f, a, b in [(jnp.dot, W, H), (lambda g, h: g @ h.T, G, H), (jnp.dot, Wt, G)]:
        f = jax.jit(f)
        jax.block_until_ready(f(a, b))  # compile
        w, c, _ = best_wall_and_cpu(lambda: jax.block_until_ready(f(a, b)), repeats)
        wall, cpu = wall + w, cpu + c
    return wall, cpu


def products_floor_loop(K: int, n: int, d: int, dtype: str, iters: int, like_flow: bool = True):
    """A zero-argument function running the step's three products alone, ``iters`` times, in one
    compiled ``fori_loop`` (blocking until done): ``Z = W H``, ``G H^T``, ``W^T G`` (``W^T`` a
    row-major ``(d, K)`` array), no loss, no update, no dispatch; each iteration feeds its results
    back through a 1e-12 axpy so that XLA keeps all three (each product's output is read once: the
    least any loop can do with it). A loop doing the flow step's arithmetic cannot beat it.
    ``like_flow``: compiled with the flow's own per-``jit`` options
    (``ufm.solvers._flow_loops.LOOP_COMPILER_OPTIONS`` on CPU: no copy of the loop-carried arrays
    per iteration), the fair floor; else with XLA's defaults, which copy ``H``, ``G`` and ``W`` once
    an iteration (the floor as first defined). Compiled on return."""
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(2)
    N = K * n
    W, H, G = (jnp.asarray(rng.standard_normal(s), dtype) for s in [(K, d), (d, N), (K, N)])
    Wt = jnp.asarray(np.ascontiguousarray(np.asarray(W).T))

    def body(_, c):
        W, H, G, Wt = c
        return (W + 1e-12 * (G @ H.T), H + 1e-12 * (Wt @ G), G + 1e-12 * (W @ H), Wt)

    from ufm.solvers._flow_loops import LOOP_COMPILER_OPTIONS

    opts = LOOP_COMPILER_OPTIONS if like_flow and jax.default_backend() == "cpu" else None
    loop = jax.jit(lambda c: jax.lax.fori_loop(0, iters, body, c), compiler_options=opts)
    loop = loop.lower((W, H, G, Wt)).compile()
    return lambda: jax.block_until_ready(loop((W, H, G, Wt)))


def torch_products_step(torch, K: int, n: int, d: int, dtype: str, iters: int, repeats: int) -> float:
    """Seconds per iteration of the same three products in torch eager (best of ``repeats``)."""
    rng = np.random.default_rng(2)
    tdt = getattr(torch, dtype)
    Wq, Hq, Gq = (torch.as_tensor(rng.standard_normal(s), dtype=tdt) for s in [(K, d), (d, K * n), (K, n * K)])

    def eager():
        for _ in range(iters):
            Wq @ Hq, Gq @ Hq.T, Wq.T @ Gq

    eager()
    return best_wall_and_cpu(eager, repeats)[0] / iters


class FloorRatio(NamedTuple):
    """The flow against its floor, from ``rounds`` paired timings (one call of each per round)."""

    floor_us: float  # median wall microseconds per iteration of the three products alone
    ufm_us: float  # median wall microseconds per flow step
    ratio: float  # median over rounds of floor time / flow time (wall)
    lo: float  # lower quartile of the per-round ratios (wall)
    hi: float  # upper quartile
    floor_cpu_us: float  # the same in CPU time of this process (all threads)
    ufm_cpu_us: float
    ratio_cpu: float
    lo_cpu: float
    hi_cpu: float
    others: float  # share of the cores other processes used meanwhile
    default: tuple  # against the floor compiled with XLA's defaults: (us, ratio, lo, hi, cpu_us, ratio_cpu)


def floor_ratio(n: int, dtype: str, iters: int, rounds: int, warmup: int = 2) -> FloorRatio:
    """Time the float32 (or float64) flow and its floor side by side: all compiled first, then
    ``warmup`` untimed calls of each, then ``rounds`` rounds of one timed call of each (the floor
    compiled like the flow, the flow, the floor with XLA's default options), in alternating order
    (forwards in even rounds, backwards in odd ones, so that a drift in the machine's load falls on
    every side). Each round gives a ratio ``floor / flow`` of times for the same number of steps;
    the median and the quartiles of those ratios are reported, in wall time and in this process's
    CPU time."""
    W0, H0 = random_start(K, n, d, seed=0)
    flow = ufm_runner(W0, H0, n, iters, dtype)
    floor = products_floor_loop(K, n, d, dtype, iters)
    floor_default = products_floor_loop(K, n, d, dtype, iters, like_flow=False)
    flow()
    for _ in range(warmup):
        flow(), floor(), floor_default()
    times: dict[str, list[tuple[float, float]]] = {"floor": [], "flow": [], "default": []}
    load = OtherLoad().start()
    for r in range(rounds):
        order = [("floor", floor), ("flow", flow), ("default", floor_default)]
        for name, fn in order if r % 2 == 0 else order[::-1]:
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t0, time.process_time() - c0))
    others = load.stop()
    f, u, g = np.array(times["floor"]), np.array(times["flow"]), np.array(times["default"])
    q = lambda a: np.percentile(a, [50, 25, 75])  # noqa: E731
    rw, rc = q(f[:, 0] / u[:, 0]), q(f[:, 1] / u[:, 1])
    us = lambda a: 1e6 * float(np.median(a)) / iters  # noqa: E731
    default = (us(g[:, 0]), *q(g[:, 0] / u[:, 0]), us(g[:, 1]), float(np.median(g[:, 1] / u[:, 1])))
    return FloorRatio(us(f[:, 0]), us(u[:, 0]), *rw, us(f[:, 1]), us(u[:, 1]), *rc, others, default)


def floor_line(fr: FloorRatio, dtype: str, iters: int, rounds: int, torch_step: float | None,
               torch_products: float | None) -> str:
    """The flow against the floor of its own arithmetic, side by side: ``floor / flow`` (1 = the
    flow costs only its three products) in wall time and in this process's CPU time (the steadier
    one on a shared machine), and the target ``FLOOR_TARGET`` (stated on wall time)."""
    verdict = "met" if fr.ratio >= FLOOR_TARGET else "NOT met"
    dflt = fr.default
    line = (
        f"\n{dtype} flow against its floor ({rounds} paired rounds of {iters:,} steps, after a "
        f"warm-up; median, [quartiles]):\n  flow {fr.ufm_us:.1f} us/step, the step's three products "
        f"alone {fr.floor_us:.1f} us in a compiled XLA loop with the flow's compiler options: "
        f"floor/flow = {fr.ratio:.0%} [{fr.lo:.0%}-{fr.hi:.0%}] against the limit 100% "
        f"(target >= {FLOOR_TARGET:.0%}: {verdict})\n  in CPU time {fr.ufm_cpu_us:.1f} against "
        f"{fr.floor_cpu_us:.1f} us: {fr.ratio_cpu:.0%} [{fr.lo_cpu:.0%}-{fr.hi_cpu:.0%}]; "
        f"others' cpu {fr.others:.0%}\n  the floor with XLA's default options (copies H, G, W "
        f"each iteration): {dflt[0]:.1f} us, floor/flow = {dflt[1]:.0%} [{dflt[2]:.0%}-{dflt[3]:.0%}]; "
        f"CPU {dflt[4]:.1f} us: {dflt[5]:.0%}"
    )
    if torch_step is not None and torch_products is not None:
        line += (f"\ntorch eager: the three products {torch_products * 1e6:.1f} us, its whole step "
                 f"{torch_step * 1e6:.1f} us, so no loop doing the step's arithmetic here can be more than "
                 f"{torch_step / min(torch_products, fr.floor_us * 1e-6):.1f}x torch eager (target "
                 f"{TARGET['torch']['float32']:g}x needs "
                 f"{torch_step / TARGET['torch']['float32'] * 1e6:.1f} us a step)")
    return line


def scale_rows(steps: int, repeats: int) -> tuple[list[list[str]], bool]:
    """Table rows (one per dtype) for the K=100, n=50, d=512 flow against its three products."""
    K_, n_, d_ = SCALE["K"], SCALE["n"], SCALE["d"]
    flops = 3 * 2 * K_ * d_ * K_ * n_
    rows, ok = [], True
    for dtype in ("float32", "float64"):
        res = bench_dtype(dtype, n_, steps, repeats, None, K=K_, d=d_)
        ok &= check_agreement(dtype, res)
        load = OtherLoad().start()
        mm, mm_cpu = matmul_seconds(K_, n_, d_, dtype, repeats)
        others = load.stop()
        t_ufm, t_np = res["ufm"].seconds / steps, res["numpy"].seconds / steps
        frac = mm / t_ufm
        rows.append(
            [
                dtype,
                f"{1e3 * t_ufm:.2f}",
                f"{flops / t_ufm / 1e9:.1f}",
                f"{1e3 * mm:.2f}",
                f"{flops / mm / 1e9:.1f}",
                f"{frac:.0%}",
                f">= {PEAK_TARGET:.0%}",
                "met" if frac >= PEAK_TARGET else "NOT met",
                f"{mm_cpu / (res['ufm'].cpu / steps):.0%}",
                f"{1e3 * t_np:.2f}",
                f"{t_np / t_ufm:.1f}x",
                f"{max(res['ufm'].others, others):.0%}",
            ]
        )
    return rows, ok


def peer_tables(n: int, steps: int, repeats: int, torch) -> tuple[bool, dict[str, float]]:
    """The K=10 table (torch eager, NumPy, ufm; both dtypes), printed; returns whether the final
    objectives agree and torch's seconds per step by dtype."""
    rows, ok, torch_step = [], True, {}
    for dtype in ("float32", "float64"):
        res = bench_dtype(dtype, n, steps, repeats, torch)
        ok &= check_agreement(dtype, res)
        rows += table_rows(dtype, steps, res)
        if "torch eager" in res:
            torch_step[dtype] = res["torch eager"].seconds / steps
    print()
    print_table(
        ["implementation", "dtype", "best s", "steps/s", "us/step", "ufm speed-up", "cpu us/step", "cpu ratio",
         "target", "", "others' cpu"],
        rows,
    )
    print(
        "'others' cpu': share of the cores used by other processes while that row was timed; "
        "well above 0% means the row is distorted. 'cpu us/step': CPU time of this process (all "
        "threads) per step, and its ratio to ufm's: the steadier measure under load (targets are "
        "stated on wall time)."
    )
    return ok, torch_step


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=20_000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--n", type=int, default=100, help="samples per class (K=10, d=64)")
    p.add_argument(
        "--scale-steps",
        type=int,
        default=20,
        help="steps of the K=100, n=50, d=512 flow timed against its matmuls (0: skip)",
    )
    p.add_argument("--floor-steps", type=int, default=4000, help="steps per timed call against the floor")
    p.add_argument("--floor-rounds", type=int, default=11, help="paired rounds against the floor (median)")
    p.add_argument("--floor-dtypes", default="float32", help="dtypes timed against the floor (comma separated)")
    p.add_argument("--floor-only", action="store_true", help="only the floor measurement (no torch, NumPy, scale)")
    p.add_argument("--pin-core", type=int, default=None,
                   help="run this process on that core alone (os.sched_setaffinity): XLA's threads then "
                   "share one core, and CPU time counts work, not threads spinning for it")
    p.add_argument("--quick", action="store_true", help="smoke run: 500 steps, 1 repeat")
    p.add_argument(
        "--torch-threads",
        type=int,
        default=cpu_count(),
        help="torch.set_num_threads (default: the cores available)",
    )
    args = p.parse_args(argv)
    steps, repeats = (500, 1) if args.quick else (args.steps, args.repeats)
    scale_steps = min(args.scale_steps, 2) if args.quick else args.scale_steps
    floor_steps, floor_rounds = (500, 3) if args.quick else (args.floor_steps, args.floor_rounds)
    n = args.n
    if args.pin_core is not None:
        os.sched_setaffinity(0, {args.pin_core})  # before JAX starts its thread pool

    print(
        f"CE-UFM heavy ball: K={K} n={n} d={d} lam_W=lam_H={LAM_W} lr={LR} mu={MU}, "
        f"{steps} steps, best of {repeats}"
    )
    print(machine_line())
    print(f"start: {load_line()}")
    torch = torch_or_none(args.torch_threads)
    if torch is not None:
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    import jax

    print(f"jax {jax.__version__} on {jax.devices()[0].platform}")

    ok, torch_step = (True, {}) if args.floor_only else peer_tables(n, steps, repeats, torch)
    for dtype in args.floor_dtypes.split(","):
        fr = floor_ratio(n, dtype, floor_steps, floor_rounds)
        tp = torch_products_step(torch, K, n, d, dtype, floor_steps, repeats) if torch is not None else None
        print(floor_line(fr, dtype, floor_steps, floor_rounds, torch_step.get(dtype), tp))
    if scale_steps > 0 and not args.floor_only:
        K_, n_, d_ = SCALE["K"], SCALE["n"], SCALE["d"]
        print(f"\nAt scale: K={K_} n={n_} d={d_}, {scale_steps} steps (NumPy too), best of {repeats}")
        srows, sok = scale_rows(scale_steps, repeats)
        ok &= sok
        print()
        print_table(
            [
                "dtype",
                "ufm ms/step",
                "GFLOP/s",
                "3 matmuls ms",
                "GFLOP/s",
                "fraction of matmul",
                "target",
                "",
                "fraction (cpu time)",
                "numpy ms/step",
                "ufm speed-up",
                "others' cpu",
            ],
            srows,
        )
        print("flops per step: 3 x 2 K d N (W H, G H^T, W^T G); the matmuls are those three products")
    print(f"end: {load_line()}")
    if not ok:
        print("FAIL: the implementations disagree on the final objective", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

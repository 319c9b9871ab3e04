"""Shared pieces of the ufm benchmarks: the reference model in NumPy, timing and table printing.

The model is the bias-free cross-entropy UFM of ``docs/theory.md#canonical-objective``,

    f(W, H) = (1/N) sum_i CE(W h_i, y_i) + lam_W/2 ||W||_F^2 + lam_H/2 ||H||_F^2,

with ``W: (K, d)``, ``H: (d, N)``, ``N = K n`` and labels ``np.repeat(arange(K), n)`` (columns
grouped by class). Nothing here imports ufm or torch, so each benchmark can report cleanly when
one of them is missing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np


def labels(K: int, n: int) -> np.ndarray:
    """Class of each column of ``H``: ``n`` zeros, then ``n`` ones, ... (as ``ufm.UFM.labels``)."""
    return np.repeat(np.arange(K), n)


def random_start(K: int, n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian ``W: (K, d)`` and ``H: (d, K n)`` in float64, entry std ``1/sqrt(d)``."""
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((K, d)) / np.sqrt(d)
    H = rng.standard_normal((d, K * n)) / np.sqrt(d)
    return W, H


def _softmax_and_lse(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column-wise softmax ``P`` and log-sum-exp of logits ``Z: (K, N)`` (max-shifted, stable)."""
    m = Z.max(axis=0, keepdims=True)
    E = np.exp(Z - m)
    s = E.sum(axis=0, keepdims=True)
    return E / s, (m + np.log(s))[0]


def objective_np(W, H, y, lam_W: float, lam_H: float) -> float:
    """``f(W, H)`` in the dtype of ``W`` and ``H``."""
    Z = W @ H
    _, lse = _softmax_and_lse(Z)
    ce = np.mean(lse - Z[y, np.arange(Z.shape[1])])
    return float(ce + lam_W / 2 * np.sum(W * W) + lam_H / 2 * np.sum(H * H))


def grad_np(W, H, y, lam_W: float, lam_H: float) -> tuple[np.ndarray, np.ndarray]:
    """Hand-written gradient: with ``G = (softmax(W H) - Y) / N``,
    ``dW = G H^T + lam_W W`` and ``dH = W^T G + lam_H H``."""
    N = H.shape[1]
    P, _ = _softmax_and_lse(W @ H)
    P[y, np.arange(N)] -= 1.0
    G = P / np.asarray(N, dtype=P.dtype)
    return G @ H.T + lam_W * W, W.T @ G + lam_H * H


def grad_norm_np(W, H, y, lam_W: float, lam_H: float) -> float:
    """Euclidean norm of the full gradient ``(dW, dH)``."""
    dW, dH = grad_np(W, H, y, lam_W, lam_H)
    return float(np.sqrt(np.sum(dW * dW) + np.sum(dH * dH)))


def best_time(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    """Best wall time of ``repeats`` calls of ``fn`` (which must block until done), and the last
    result."""
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def best_wall_and_cpu(fn: Callable[[], object], repeats: int) -> tuple[float, float, object]:
    """Best wall time and best CPU time of this process (all its threads) over ``repeats`` calls of
    ``fn``, and the last result. On a shared machine the CPU time is the steadier measure of the
    work done; the wall time is what the targets are stated in."""
    best, best_cpu, out = float("inf"), float("inf"), None
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    return best, best_cpu, out


class OtherLoad:
    """Share of the machine's cores used by *other* processes between ``start()`` and ``stop()``.

    System-wide busy time from ``/proc/stat`` minus this process's own CPU time (``os.times``),
    divided by wall time x cores. On a shared machine a value well above 0 means the timing of
    that row was distorted; ``nan`` where ``/proc/stat`` is missing.
    """

    def start(self) -> OtherLoad:
        self._t, self._busy, self._own = time.perf_counter(), _busy_seconds(), _own_seconds()
        return self

    def stop(self) -> float:
        wall = time.perf_counter() - self._t
        others = (_busy_seconds() - self._busy) - (_own_seconds() - self._own)
        return max(others, 0.0) / (wall * cpu_count())


def _busy_seconds() -> float:
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except OSError:  # pragma: no cover
        return float("nan")
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    t = os.times()
    return t.user + t.system


def cpu_count() -> int:
    """Cores this process may use (affinity-aware where the OS tells)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover (macOS, Windows)
        return os.cpu_count() or 1


def print_table(header: list[str], rows: list[list[str]]) -> None:
    """Plain-text table with columns right-aligned to their widest cell."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join(f"{h:>{w}}" for h, w in zip(header, widths))
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(f"{c!s:>{w}}" for c, w in zip(r, widths)))


def machine_line() -> str:
    """One line naming the CPU, the cores available and the library versions in use."""
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for ln in f:
                if ln.startswith("model name"):
                    cpu = ln.split(":", 1)[1].strip()
                    break
    except OSError:  # pragma: no cover
        pass
    return f"{cpu}, {cpu_count()} cores available, numpy {np.__version__}"


def load_line() -> str:
    """The 1/5/15-minute load averages: a load above what the benchmark itself puts on the cores
    means other work shared them, and the timings are then unreliable."""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:  # pragma: no cover
        return "load average unavailable"
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} (1/5/15 min, this process included)"


def run_child(script: str, args: tuple, env: dict, timeout: float, cwd: str) -> tuple[dict, float]:
    """Run ``script --child ARGS`` as a fresh process (a cold start: nothing compiled, nothing
    cached in memory) and return the JSON of its last ``RESULT `` line and the share of the cores
    other processes used meanwhile; a failed child raises with the ends of its output."""
    load = OtherLoad().start()
    p = subprocess.run([sys.executable, os.path.abspath(script), "--child", *map(str, args)],
                       capture_output=True, text=True, env=env, timeout=timeout, cwd=cwd)
    others = load.stop()
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")]
    if p.returncode or not lines:
        raise RuntimeError(f"child {args} failed:\n{p.stdout[-2000:]}\n{p.stderr[-4000:]}")
    return json.loads(lines[-1][7:]), others

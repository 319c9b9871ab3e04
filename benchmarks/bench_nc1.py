"""NC1 at scale: the dual form against a covariance-based NC1, and StreamingNC's throughput.

N = 50,000 features of dimension d = 512 in K = 100 classes (float64, Gaussian class means plus
noise), in one process:

1. dual, JAX: ``ufm.metrics.nc1(H, labels, K)``: ``(1/N) ||Mbar^+ Z||_F^2`` with the (K, d)
   pseudo-inverse of the centred means; no d x d matrix;
2. covariance, JAX: ``Sigma_W = Z Z^T / N`` and ``Sigma_B = Mbar Mbar^T / K`` (d x d), then
   ``Tr(Sigma_W pinv(Sigma_B)) / K`` (the textbook formula; pinv of a d x d matrix, cut at the
   same relative tolerance ``1e-10``);
3. dual and covariance in NumPy (the host-side float64 path of ``collapse_report``), with their
   tracemalloc peaks;
4. ``ufm.metrics.StreamingNC.update`` in batches of 1,000: features per second (each batch adds
   a d x d scatter, the cost the streaming form pays to need one pass).

Prints best-of-``--repeats`` wall times, the ratio covariance / dual (target >= 3x), peak memory
(JAX: the compiled program's temporary buffers, from ``memory_analysis()``; NumPy: tracemalloc
peak), the relative difference of the NC1 values, and the load. ``--quick``: N = 5,000.
"""

from __future__ import annotations

import argparse
import sys
import tracemalloc

import jax
import jax.numpy as jnp
import numpy as np

from _common import OtherLoad, best_time, load_line, machine_line, print_table

jax.config.update("jax_enable_x64", True)

import ufm  # noqa: E402
from ufm import metrics  # noqa: E402


def instance(N, d, K, seed=0):
    rng = np.random.default_rng(seed)
    y = np.concatenate([np.arange(K), rng.integers(0, K, N - K)])
    H = rng.standard_normal((d, N)) + 2.0 * rng.standard_normal((d, K))[:, y]
    return H, y


def cov_jax(H, labels, K):
    """Covariance-based NC1 with d x d matrices (the reference)."""
    N = H.shape[1]
    sums = jax.ops.segment_sum(H.T, labels, num_segments=K)
    counts = jax.ops.segment_sum(jnp.ones(N), labels, num_segments=K)
    Hbar = (sums / counts[:, None]).T
    Z = H - Hbar[:, labels]
    Mbar = Hbar - jnp.mean(H, axis=1)[:, None]
    Sigma_W = Z @ Z.T / N
    Sigma_B = Mbar @ Mbar.T / K
    return jnp.trace(Sigma_W @ jnp.linalg.pinv(Sigma_B, rtol=1e-10, hermitian=True)) / K


def dual_np(H, y, K):
    counts = np.bincount(y, minlength=K)
    Hbar = np.stack([np.bincount(y, weights=row, minlength=K) for row in H]) / counts
    Z = H - Hbar[:, y]
    A = np.linalg.pinv(Hbar - H.mean(1, keepdims=True), rcond=1e-10)
    return np.sum((A @ Z) ** 2) / H.shape[1]


def cov_np(H, y, K):
    counts = np.bincount(y, minlength=K)
    Hbar = np.stack([np.bincount(y, weights=row, minlength=K) for row in H]) / counts
    Z = H - Hbar[:, y]
    Mbar = Hbar - H.mean(1, keepdims=True)
    Sigma_W = Z @ Z.T / H.shape[1]
    Sigma_B = Mbar @ Mbar.T / K
    return np.trace(Sigma_W @ np.linalg.pinv(Sigma_B, rcond=1e-10, hermitian=True)) / K


def peak_np(fn):
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def temp_bytes(jitted, *args):
    try:
        return jitted.lower(*args).compile().memory_analysis().temp_size_in_bytes
    except Exception:  # pragma: no cover (backend without memory analysis)
        return float("nan")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--N", type=int, default=50_000)
    ap.add_argument("--d", type=int, default=512)
    ap.add_argument("--K", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args(argv)
    if a.quick:
        a.N, a.repeats = 5_000, 1
    N, d, K = a.N, a.d, a.K
    print(machine_line())
    print(f"N={N}, d={d}, K={K}, float64, jax {jax.__version__}, ufm {ufm.__version__}")
    H, y = instance(N, d, K)
    Hj, yj = jnp.asarray(H), jnp.asarray(y, dtype=jnp.int32)

    dual_j = jax.jit(lambda H, y: metrics.nc1.__wrapped__(H, y, K))
    cov_j = jax.jit(lambda H, y: cov_jax(H, y, K))
    rows, values = [], {}

    def add(name, fn, mem, mem_kind):
        load = OtherLoad().start()
        fn()  # warm (compile for JAX)
        t, v = best_time(fn, a.repeats)
        values[name] = (t, float(v))
        rows.append([name, f"{t * 1e3:.1f}", f"{mem / 2**20:.1f} ({mem_kind})", f"{float(v):.12g}",
                     f"{load.stop():.2f}"])

    add("dual, JAX (ufm.metrics.nc1)", lambda: dual_j(Hj, yj).block_until_ready(),
        temp_bytes(dual_j, Hj, yj), "XLA temp")
    add("covariance d x d, JAX", lambda: cov_j(Hj, yj).block_until_ready(),
        temp_bytes(cov_j, Hj, yj), "XLA temp")
    add("dual, NumPy", lambda: dual_np(H, y, K), peak_np(lambda: dual_np(H, y, K)), "tracemalloc")
    add("covariance d x d, NumPy", lambda: cov_np(H, y, K), peak_np(lambda: cov_np(H, y, K)), "tracemalloc")

    def stream():
        acc = metrics.StreamingNC(K=K, d=d)
        for s in range(0, N, a.batch):
            acc.update(H[:, s:s + a.batch], y[s:s + a.batch])
        return acc.result()["nc1"]

    add(f"StreamingNC, batches of {a.batch}", stream,
        peak_np(lambda: metrics.StreamingNC(K=K, d=d).update(H[:, : a.batch], y[: a.batch])),
        "tracemalloc, 1 batch")
    print_table(["method", "best ms", "peak MiB", "NC1", "other load"], rows)
    ref = values["dual, JAX (ufm.metrics.nc1)"][1]
    print("max relative difference of NC1 values:",
          f"{max(abs(v - ref) / abs(ref) for _, v in values.values()):.2e}")
    t_dual, t_cov = values["dual, JAX (ufm.metrics.nc1)"][0], values["covariance d x d, JAX"][0]
    t_dn, t_cn = values["dual, NumPy"][0], values["covariance d x d, NumPy"][0]
    print(f"covariance / dual time ratio: JAX {t_cov / t_dual:.1f}x, NumPy {t_cn / t_dn:.1f}x "
          f"(target >= 3x)")
    t_s = values[f"StreamingNC, batches of {a.batch}"][0]
    print(f"StreamingNC throughput: {N / t_s:,.0f} features/s (d={d}, K={K})")
    print(load_line())
    return 0


if __name__ == "__main__":
    sys.exit(main())

r"""Size axes of a sweep: ``K``, ``n`` and ``d`` swept like any other field, one compile per bucket.

A grid axis may be a size of a :class:`ufm.UFM` (``"K"``, ``"d"``, and ``"n"`` for a balanced
problem). Each chunk of such a sweep is solved as the :class:`ufm.problems.PaddedUFM` of
its *bucket*: the chunk's largest ``K``, ``n``, ``d`` each rounded up the ladder
``1, 2, 3, 4, 6, 8, 12, 16, 24, ...`` (:func:`ufm.problems.bucket_size`). The true sizes of
a point are then array leaves like ``lam_W``, so every chunk of one bucket runs the same compiled
program: a sweep compiles once per bucket its chunks fall in, not once per shape. The padded
solve is the unpadded one (:mod:`ufm.problems._padded`), so every record (value, certificate,
Grams) is that of the point's own UFM; the stored Grams are ``(K_top, K_top)`` with
``K_top`` the grid's largest ``K``, zero beyond the point's ``K``.

Chunks are grouped by bucket (:func:`bucket_groups`) so that one SPMD call never mixes buckets.
Certification is local (second order): the proven global bound of :mod:`ufm.solvers` has no
padded form.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np

from ufm.metrics import PINV_RTOL
from ufm.problems import UFM, PaddedUFM, Problem, bucket_of, pad, unsupported_reason
from ufm.sweeps._phases import phase_codes

__all__ = ["SIZE_FIELDS", "size_fields", "check_size_axis", "has_sizes", "top_sizes", "chunk_bucket",
           "chunk_problem", "point_sizes", "bucket_groups", "padded_summary", "sized_record", "size_refusal"]

SIZE_FIELDS = ("K", "n", "d")
_LOWEST = {"K": 2, "n": 1, "d": 1}


def size_fields(prob: Problem) -> list[str]:
    """The size axes ``prob`` can sweep: ``K``, ``n`` and ``d`` of a balanced UFM that pads exactly,
    ``d`` alone of an imbalanced one (its per-class counts fix ``K`` and ``n``); none for other
    problems."""
    if not isinstance(prob, UFM) or unsupported_reason(prob) is not None:
        return []
    return ["K", "n", "d"] if prob.balanced else ["d"]


def size_refusal(prob: Problem, path: str) -> str | None:
    """Why ``path`` (a size name) cannot be swept for ``prob``, or ``None`` if it can."""
    if path not in SIZE_FIELDS or path in size_fields(prob):
        return None
    if not isinstance(prob, UFM):
        return f"only a ufm.UFM sweeps its sizes ({type(prob).__name__} has no padded form)"
    why = unsupported_reason(prob)
    if why is not None:
        return f"the problem cannot be padded exactly: {why}"
    return (f"{path} of an imbalanced problem: its per-class counts fix K and n (the counts of other "
            f"sizes are not defined); sweep d, or {path} of a balanced problem")


def check_size_axis(path: str, arr: np.ndarray, fields: Sequence[str]) -> None:
    """A size axis holds whole numbers ``>= 2`` (``K``) or ``>= 1`` (``n``, ``d``), or a
    ValueError naming the axis (and the sweepable ``fields``)."""
    lo = _LOWEST[path]
    if np.any(arr != np.round(arr)) or np.any(arr < lo):
        raise ValueError(f"grid field {path!r} cannot be swept over {arr.tolist()}: grid[{path!r}] must be "
                         f"whole numbers >= {lo} (a size); sweepable fields: {list(fields)}")


def has_sizes(paths: Sequence[str]) -> bool:
    """Whether a grid sweeps a size."""
    return any(p in SIZE_FIELDS for p in paths)


def _base_sizes(prob: UFM) -> dict[str, int]:
    """The base problem's sizes (``n``: its largest count)."""
    return {"K": prob.K, "n": max(prob.counts), "d": prob.d}


def point_sizes(prob: UFM, paths: Sequence[str], vals: np.ndarray) -> dict[str, np.ndarray]:
    """``{"K", "n", "d"}``: the sizes of each point (``vals`` of shape ``(L, len(paths))``); a size
    not swept is the base problem's (``n``: its largest count)."""
    base = _base_sizes(prob)
    L = len(vals)
    return {s: (np.asarray(vals[:, list(paths).index(s)]) if s in paths else np.full(L, base[s])).astype(int)
            for s in SIZE_FIELDS}


def top_sizes(prob: UFM, axes: Mapping[str, np.ndarray]) -> tuple[int, int, int]:
    """The grid's largest ``(K, n, d)``."""
    base = _base_sizes(prob)
    return tuple(int(max(axes[s])) if s in axes else base[s] for s in SIZE_FIELDS)


def chunk_bucket(prob: UFM, paths: Sequence[str], vals: np.ndarray) -> tuple[int, int, int]:
    """The bucket of a chunk: its largest sizes, rounded up the ladder."""
    s = point_sizes(prob, paths, vals)
    return bucket_of(int(s["K"].max()), int(s["n"].max()), int(s["d"].max()))


def chunk_problem(prob: UFM, bucket: tuple[int, int, int]) -> PaddedUFM:
    """The base problem padded to ``bucket`` (the grid values then replace its sizes); an
    imbalanced problem keeps its per-class counts (only its ``d`` is swept)."""
    Km, nm, dm = bucket
    n = min(prob.n, nm) if prob.balanced else prob.counts
    base = UFM(K=min(prob.K, Km), n=n, d=min(prob.d, dm), loss=prob.loss, lam_W=prob.lam_W, lam_H=prob.lam_H,
               lam_b=prob.lam_b, nonneg=prob.nonneg)
    return pad(base, bucket)


def bucket_groups(buckets: Mapping[int, tuple[int, int, int]], todo: Sequence[int],
                  size: int) -> list[list[int]]:
    """``todo`` chunks in groups of at most ``size`` that share a bucket (in first-seen order)."""
    by: dict[tuple[int, int, int], list[int]] = {}
    for c in todo:
        by.setdefault(buckets[c], []).append(c)
    return [cs[i:i + size] for cs in by.values() for i in range(0, len(cs), size)]


def padded_summary(prob: PaddedUFM, x: Any) -> tuple:
    r"""The record's invariants of a padded solution, on the active block:
    ``(||W||^2, ||H||^2, ||b||^2, nc1, G_H = Hbar^T Hbar, G_W = W W^T)`` with class means over the
    active samples and ``nc1 = ||Mbar^+ Z||_F^2 / N`` (:func:`ufm.metrics.nc1`, weighted global
    mean) from the masked deviations ``Z`` and centred means ``Mbar``."""
    a = prob.active(x)
    c, s = prob.class_mask(), prob.sample_mask()
    counts = prob.counts_array()
    Y = (jnp.asarray(prob.labels)[:, None] == jnp.arange(prob.K_max)[None, :]).astype(a.H.dtype)  # (N, K)
    Hbar = (a.H @ Y) / jnp.where(counts > 0, counts, 1.0)[None, :]
    N = jnp.sum(counts)
    h_G = jnp.sum(a.H, axis=1) / N
    Z = (a.H - Hbar[:, prob.labels]) * s[None, :]
    Mbar = (Hbar - h_G[:, None]) * c[None, :]
    nc1 = jnp.sum((jnp.linalg.pinv(Mbar, rtol=PINV_RTOL) @ Z) ** 2) / N
    b2 = jnp.sum(a.b**2) if a.b is not None else jnp.zeros(())
    return (jnp.sum(a.W**2), jnp.sum(a.H**2), b2, nc1, Hbar.T @ Hbar, a.W @ a.W.T)


def sized_record(rec: Any, sizes: Mapping[str, np.ndarray], K_top: int,
                 counts: tuple[int, ...] | None = None) -> tuple[Any, np.ndarray]:
    """A padded chunk's record (NumPy, leading axes ``(L, S)``) with its Grams cut or padded to
    ``(K_top, K_top)`` (zero beyond each point's ``K``), and its phase codes, each point named by
    :func:`ufm.sweeps.phase_of` on its own ``K x K`` Grams, counts and ``d`` (``counts``: the
    per-class counts of an imbalanced base problem, whose ``K`` and ``n`` are not swept; default
    ``n`` for each of the point's ``K`` classes)."""
    def fit(G):
        out = np.zeros(G.shape[:2] + (K_top, K_top))
        k = min(K_top, G.shape[-1])
        out[..., :k, :k] = G[..., :k, :k]
        return out

    rec = rec._replace(G_H=fit(np.asarray(rec.G_H)), G_W=fit(np.asarray(rec.G_W)))
    ok = np.asarray(rec.result) == 0
    phase = np.empty(ok.shape, np.int8)
    keys = np.stack([sizes["K"], sizes["n"], sizes["d"]], axis=1)
    for K, n, d in np.unique(keys, axis=0):
        rows = np.flatnonzero(np.all(keys == (K, n, d), axis=1))
        phase[rows] = phase_codes(rec.G_H[rows][..., :K, :K], rec.G_W[rows][..., :K, :K], ok[rows],
                                  (int(n),) * int(K) if counts is None else counts, int(d))
    return rec, phase

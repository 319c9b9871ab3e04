r"""Phase diagrams: certified solves over a grid of hyper-parameters, resumable, on every core.

:func:`sweep` solves the product grid (times the random seeds) with the certified minimizer and
returns an ``xarray.Dataset``; with ``store=PATH`` the results go to a Zarr store chunk by chunk
as they finish, and a later call with the same arguments resumes where an interrupted one stopped.
:func:`locate_boundary` places a phase boundary by bisection, and :func:`compare_thresholds`
holds measured boundaries against predicted ones.

Layers: ``ufm.sweep`` drives ``ufm.solvers``; it never imports ``proofs_check``. Predicted
thresholds come in as numbers (``proofs_check.boundaries`` computes them from the catalog).

Store layout (Zarr v3 group, format ``ufm.sweep/2``): every variable is a flat array over the
grid points in the reflected order of :func:`snake_order` (consecutive entries are grid
neighbours; :func:`open_sweep` puts them back on the grid), shape ``(P, S, ...)`` with ``P`` the number of grid points and ``S`` the
seeds, chunked by ``(chunk, S, ...)`` so that one sweep chunk is one Zarr chunk; ``done`` (one
entry per sweep chunk) is set after the chunk's data is written, and ``run`` records which call
computed it. Attributes hold the grid axes, seeds, options, the problem description and ufm's
version. A chunk is written at a fixed position, so a chunk interrupted mid-write is recomputed
and overwritten in place: every point is stored exactly once.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
import uuid
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from ufm._internal.runtime import package_version
from ufm.sweeps import _phases
from ufm.sweeps._kernel import (PointRecord, SolveOptions, replace_path, solve_chunk, solve_chunks_spmd,
                               solve_fallback)

__all__ = ["sweep", "open_sweep", "parse_grid", "sweepable_fields", "locate_boundary",
           "compare_thresholds", "PHASES"]

PHASES = _phases.PHASES
FORMAT = "ufm.sweep/2"
_SCALARS = ("value", "kkt", "min_eig", "order", "result", "value_random", "value_warm", "warm_won", "disagree",
            "steps", "W_norm2", "H_norm2", "b_norm2", "nc1", "global_gap", "global_ok", "random_skipped")


# ---------------------------------------------------------------- the grid


def sweepable_fields(prob) -> list[str]:
    """Dotted names of the scalar hyper-parameters of ``prob`` (``lam_W``, ``loss.alpha``, ...)."""
    out = []
    for f in dataclasses.fields(prob):
        if f.metadata.get("static"):
            continue
        v = getattr(prob, f.name)
        if dataclasses.is_dataclass(v):
            out += [f"{f.name}.{sub}" for sub in sweepable_fields(v)]
        elif v is not None and np.ndim(v) == 0 and not isinstance(v, bool):
            out.append(f.name)
    return out


def _check_field(prob, path: str) -> None:
    fields = sweepable_fields(prob)
    if path in fields:
        return
    head = path.split(".")[0]
    names = {f.name: f for f in dataclasses.fields(prob)}
    if head in names and names[head].metadata.get("static"):
        why = "it is a size (static): each value compiles anew; loop over sweeps instead"
    elif head == "lam_b" and prob.lam_b is None:
        why = "the problem has no bias (lam_b=None); build it with lam_b=0.0 to sweep lam_b"
    else:
        why = "it is not a scalar hyper-parameter of this problem"
    raise ValueError(f"grid field {path!r} cannot be swept: {why}; sweepable fields: {fields}")


def _values(path: str, spec) -> np.ndarray:
    """A list of numbers, or ``{"log": [lo, hi, num]}`` / ``{"lin": [lo, hi, num]}``."""
    where = f"grid[{path!r}]"
    if isinstance(spec, Mapping):
        if len(spec) != 1 or next(iter(spec)) not in ("log", "lin"):
            raise ValueError(f"{where} must be a list of values or {{'log'|'lin': [lo, hi, num]}}, "
                             f"got {dict(spec)!r}")
        kind, args = next(iter(spec.items()))
        try:
            lo, hi, num = args
            lo, hi, num = float(lo), float(hi), int(num)
        except (TypeError, ValueError):
            raise ValueError(f"{where}: {kind} needs [lo, hi, num], got {args!r}") from None
        if num < 1:
            raise ValueError(f"{where} is empty: num={num}; give num >= 1")
        if kind == "log" and (lo <= 0 or hi <= 0):
            raise ValueError(f"{where}: a log grid needs lo, hi > 0, got lo={lo}, hi={hi}")
        return np.geomspace(lo, hi, num) if kind == "log" else np.linspace(lo, hi, num)
    try:
        arr = np.atleast_1d(np.asarray(spec, dtype=np.float64))
    except (TypeError, ValueError):
        raise ValueError(f"{where} must be numbers, got {spec!r}") from None
    if arr.ndim != 1:
        raise ValueError(f"{where} must be a 1-D list of values, got shape {arr.shape}")
    return arr


def parse_grid(prob, grid) -> dict[str, np.ndarray]:
    """Validate a grid against ``prob`` before anything is solved.

    Args:
        prob: the base problem; grid values replace its fields.
        grid: mapping from a sweepable field (:func:`sweepable_fields`, e.g. ``"lam_W"``,
            ``"loss.alpha"``) to a list of values or ``{"log": [lo, hi, num]}``.

    Returns:
        ``{field: float64 values}`` in the given order.

    Raises:
        ValueError: naming the field, for an unknown or static field, an empty or non-finite
            list, repeated values, or a value outside the field's range (checked by building the
            problem with that value).
    """
    if not isinstance(grid, Mapping) or not grid:
        raise ValueError(f"grid must be a non-empty mapping field -> values, e.g. "
                         f"{{'lam_W': [1e-3, 1e-2]}}; sweepable fields: {sweepable_fields(prob)}")
    axes = {}
    for path, spec in grid.items():
        _check_field(prob, str(path))
        arr = _values(path, spec)
        if arr.size == 0:
            raise ValueError(f"grid[{path!r}] is empty: give at least one value")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"grid[{path!r}] must be finite numbers, got {arr.tolist()}")
        if np.unique(arr).size != arr.size:
            raise ValueError(f"grid[{path!r}] repeats values: {arr.tolist()}")
        for v in (arr.min(), arr.max()):
            try:
                replace_path(prob, path, float(v))
            except ValueError as e:
                raise ValueError(f"grid[{path!r}]: value {v:g} is out of range: {e}") from None
        axes[path] = arr
    return axes


# ---------------------------------------------------------------- the store


def _meta(prob, axes, seeds, chunk, opts) -> dict:

    return {
        "format": FORMAT,
        "problem": describe(prob),
        "axes": {k: [float(x) for x in v] for k, v in axes.items()},
        "seeds": int(seeds),
        "chunk": int(chunk),
        "options": opts._asdict(),
        "phases": list(PHASES),
        "ufm_version": package_version(),
    }


def describe(prob) -> str:
    """``repr(prob)`` with arrays written as plain numbers (``lam_W=0.001``)."""
    import re

    return re.sub(r"Array\(([^,()]+), dtype=[a-z0-9]+\)", r"\1", repr(prob))


_COMPARED = ("format", "problem", "axes", "seeds", "chunk", "options")


def _open_store(store, meta, P, K, D):
    import zarr

    root = zarr.open_group(store if store is not None else zarr.storage.MemoryStore(), mode="a")
    old = dict(root.attrs)
    if old:
        for key in _COMPARED:
            if old.get(key) != meta[key]:
                raise ValueError(
                    f"store {store!r} holds a different sweep: {key!r} differs (stored "
                    f"{old.get(key)!r}, asked {meta[key]!r}); nothing was changed; use a new store")
        return root
    S, C = meta["seeds"], meta["chunk"]
    nchunks = -(-P // C)
    spec = {name: ("f8", ()) for name in _SCALARS}
    spec.update(result=("i4", ()), order=("i1", ()), steps=("i4", ()), warm_won=("bool", ()), disagree=("bool", ()),
                global_ok=("bool", ()), random_skipped=("bool", ()),
                phase=("i1", ()), G_H=("f8", (K, K)), G_W=("f8", (D, D)))
    for name, (dtype, tail) in spec.items():
        fill = False if dtype == "bool" else (-1 if dtype[0] == "i" else np.nan)
        root.create_array(name, shape=(P, S, *tail), chunks=(C, S, *tail), dtype=dtype,
                          fill_value=fill)
    root.create_array("done", shape=(nchunks,), chunks=(1,), dtype="bool", fill_value=False)
    root.create_array("run", shape=(nchunks,), chunks=(1,), dtype="i8", fill_value=0)
    root.attrs.update(meta)  # last: a store with attributes has all its arrays
    return root


def snake_order(shape) -> np.ndarray:
    """Grid point (C-order index) stored at each position: a reflected (boustrophedon) order.

    Position ``p`` has C-order digits ``c``; digit ``j >= 1`` is reflected (``n_j - 1 - c_j``)
    when the prefix ``c_0 .. c_{j-1}``, read as one C-order number, is odd. Consecutive prefixes
    differ by one, so consecutive positions are grid neighbours (one digit changes by one): a
    chunk's warm starts never jump across the grid (in C order every row start would).
    """
    shape = tuple(int(s) for s in shape)
    c = np.unravel_index(np.arange(int(np.prod(shape))), shape)
    g = [c[0]]
    for j in range(1, len(shape)):
        q = np.ravel_multi_index(c[:j], shape[:j])
        g.append(np.where(q % 2 == 1, shape[j] - 1 - c[j], c[j]))
    return np.ravel_multi_index(tuple(g), shape)


def _chunk_values(axes, start, stop, chunk):
    shape = tuple(len(v) for v in axes.values())
    flat = np.arange(start, start + chunk)
    flat = np.minimum(flat, stop - 1)  # pad a short last chunk by repeating its last point
    idx = np.unravel_index(snake_order(shape)[flat], shape)
    return np.stack([v[i] for v, i in zip(axes.values(), idx)], axis=1)


def _classify(rec, counts, d):
    G_H, G_W = np.asarray(rec.G_H), np.asarray(rec.G_W)
    ok = np.asarray(rec.result) == 0
    L, S = ok.shape
    phase = np.empty((L, S), np.int8)
    etf, orth = _phases.gram_distances(G_H)
    for i in range(L):
        for s in range(S):
            name = (_phases.phase_of(G_H[i, s], G_W[i, s], counts, d, distances=(etf[i, s], orth[i, s]))
                    if ok[i, s] else "uncertified")
            phase[i, s] = _phases.CODE[name]
    return phase


def _solve_points(prob, paths, vals, seeds, opts, n=None):
    """Solve consecutive points (the chunk kernel), then the fallback for the points whose global
    gap stayed open (``opts.certify == "global"``); a :class:`PointRecord` of NumPy arrays."""
    rec, xs = solve_chunk(prob, paths, vals, seeds, opts)
    return _fallback(prob, paths, vals, rec, xs, seeds, opts, len(vals) if n is None else n)


def _fallback(prob, paths, vals, rec, xs, seeds, opts, n):
    """Re-solve (second order, :func:`ufm.sweeps._kernel.solve_fallback`) the first ``n`` points
    whose global gap stayed open; returns the chunk's record as NumPy arrays."""
    rec = PointRecord(*(np.array(a) for a in rec))
    if opts.certify != "global":
        return rec
    for i in np.flatnonzero(~rec.global_ok[:n].all(axis=1)):
        # the warm start is the previous point's kept run; without one, the random start stands
        # in (has_warm is False, so it is not used)
        warm = jax.tree_util.tree_map(lambda a: a[max(i - 1, 0)], xs)
        fb = solve_fallback(prob, paths, vals[i], warm, jnp.asarray(i > 0), seeds, opts)
        redo = ~rec.global_ok[i]
        for name, a in zip(PointRecord._fields, fb):
            getattr(rec, name)[i, redo] = np.asarray(a)[redo]
    return rec


def _write_chunk(root, prob, rec, c, start, stop, run_id):
    n = stop - start
    rec = type(rec)(*(a[:n] for a in rec))
    phase = _classify(rec, prob.counts, prob.d)
    for name in _SCALARS + ("G_H", "G_W"):
        root[name][start:stop] = getattr(rec, name)
    root["phase"][start:stop] = phase
    root["run"][c] = run_id
    root["done"][c] = True
    return n


def _chunk_range(root, axes, c):
    C = int(root.attrs["chunk"])
    P = int(np.prod([len(v) for v in axes.values()]))
    start, stop = c * C, min((c + 1) * C, P)
    return start, stop, _chunk_values(axes, start, stop, C)


def _run_chunk(root, prob, axes, seeds, opts, c, run_id, device=None):
    """Solve sweep chunk ``c`` and write it; returns the number of points written."""
    start, stop, vals = _chunk_range(root, axes, c)
    with jax.default_device(device) if device is not None else _null():
        rec = _solve_points(prob, tuple(axes), vals, seeds, opts, stop - start)
    return _write_chunk(root, prob, rec, c, start, stop, run_id)


def _run_spmd(root, prob, axes, seeds, opts, todo, run_id, devices, bar):
    """Chunks in groups of ``len(devices)``, one SPMD call per group (one compilation)."""
    from jax.sharding import Mesh

    mesh = Mesh(np.asarray(devices), ("d",))
    G = len(devices)
    paths = tuple(axes)
    for g in range(0, len(todo), G):
        group = todo[g:g + G]
        ranges = [_chunk_range(root, axes, c) for c in group]
        vals = np.stack([r[2] for r in ranges] + [ranges[-1][2]] * (G - len(group)))  # pad
        recs, xs = solve_chunks_spmd(prob, paths, vals, seeds, opts, mesh)
        recs = jax.tree_util.tree_map(np.asarray, recs)
        xs = jax.tree_util.tree_map(np.asarray, xs)
        for j, (c, (start, stop, v)) in enumerate(zip(group, ranges)):
            pick = lambda a: a[j]  # noqa: E731
            rec = _fallback(prob, paths, v, jax.tree_util.tree_map(pick, recs),
                            jax.tree_util.tree_map(pick, xs), seeds, opts, stop - start)
            bar.update(_write_chunk(root, prob, rec, c, start, stop, run_id))


class _null:
    def __enter__(self):
        return None

    def __exit__(self, *a):
        return False


def _dask_task(store, prob, axes, seeds, opts, c, run_id):
    """One chunk on a Dask worker: opens the shared store, solves, writes."""
    import zarr

    from ufm._internal import precision as _precision

    _precision.enable_x64()
    return _run_chunk(zarr.open_group(store, mode="r+"), prob, axes, seeds, opts, c, run_id)


# ---------------------------------------------------------------- sweep


def sweep(prob, grid, seeds: int = 1, store=None, *, chunk: int | None = None, client=None,
          progress: bool | None = None, max_chunks: int | None = None, devices=None,
          gtol: float = 1e-10, order: str = "auto", max_steps: int = 10_000,
          max_newton: int = 100, certify: str = "auto"):
    r"""Certified solves over a product grid of hyper-parameters and random seeds.

    Every grid point ``p`` and seed ``s`` is solved from the random start of
    ``ufm.minimize(prob_p, seed=s)`` and from the previous grid point's solution (a warm start);
    the certified run with the lower objective is kept,

    .. math:: \theta^*_{p,s} = \arg\min\{f_p(\theta) : \theta \in \{\theta_{\mathrm{random}},
        \theta_{\mathrm{warm}}\},\ \lVert\nabla f_p(\theta)\rVert \le \mathrm{gtol}\max(1, |f_p|)\},

    and where both are certified but their values differ (two branches), ``disagree`` is set.
    Each solution gets an atlas phase (:data:`PHASES`) from its Gram matrices.

    Certificates (``certify``). ``"local"``: both runs are second-order certified as by
    ``ufm.minimize(order=order)`` (``order`` = 2 in the record, ``min_eig`` the curvature).
    ``"global"`` (families with a proven lower bound :math:`\underline f_p`,
    :func:`ufm.global_certificate`: shallow UFM with CE/LS/MSE, deep linear MSE): first-order
    solves (``order`` = 1, ``min_eig`` NaN: not computed) whose gap
    :math:`f_p(\theta) - \underline f_p \le \mathrm{gtol}\max(1, |f_p|)` proves them global
    minimizers (``global_ok``; a global minimizer satisfies the second-order conditions, so the
    Hessian spectrum would add nothing). The warm start runs first; when its gap closes, the
    random start is skipped (no start can reach a lower value; ``value_random`` is NaN,
    ``random_skipped`` true). Points where no run closes the gap are re-solved by the local path
    (random and warm starts, second order; ``global_gap`` still measured, ``global_ok`` false).
    ``"auto"`` (default): ``"global"`` where the family has a bound, else ``"local"``.

    Main arguments:
        prob: the base problem (for example :class:`ufm.UFM`); grid values replace its fields.
        grid: ``{field: values}``, fields from :func:`sweepable_fields` (``"lam_W"``,
            ``"lam_b"``, ``"loss.alpha"``, ...); values a list or ``{"log": [lo, hi, num]}``.
        seeds: random starts per point (seeds ``0 .. seeds-1``).
        store: a directory path for a Zarr store (resumable), or ``None`` (in memory).

    Other arguments:
        chunk: grid points per compiled call (default: about ``P / (4 devices)``, at most 256).
        client: a ``dask.distributed.Client``; chunks then run on its workers, which write to
            ``store`` (a path every worker can reach). Without it, chunks run on every local JAX
            device, a group of one chunk per device as one SPMD program (``shard_map``, compiled
            once; :data:`LOCAL_MODE` ``"threads"``: a thread per device, each compiling its own
            copy). On CPU, start Python with
            ``XLA_FLAGS=--xla_force_host_platform_device_count=<cores>``; the ``ufm`` command does.
        progress: a tqdm bar on stderr (default: when stderr is a terminal).
        max_chunks: stop after this many new chunks (for tests and for splitting work).
        devices: the JAX devices that run chunks (default ``jax.local_devices()``).
        gtol, order, max_steps, max_newton: certified-solve options as in :func:`ufm.minimize`
            (``order="auto"``: second-order certificates where affordable; with the global
            path, the order of the fallback solves).
        certify: ``"auto"``, ``"global"`` or ``"local"`` (above).

    Returns:
        An ``xarray.Dataset`` (:func:`open_sweep`) with dimensions the grid fields and ``seed``.

    Raises:
        ValueError: a bad grid (naming the field), or a store that holds a different sweep; both
            before anything is solved or written.

    References:
        Zhu et al., NeurIPS 2021 (arXiv 2105.02375), the CE UFM landscape the phase diagrams map.
    """
    from ufm._internal.precision import require_x64

    require_x64("ufm.sweep")
    axes = parse_grid(prob, grid)
    if isinstance(seeds, bool) or not isinstance(seeds, (int, np.integer)) or seeds < 1:
        raise ValueError(f"seeds must be an integer >= 1, got seeds={seeds!r}")
    P = int(np.prod([len(v) for v in axes.values()]))
    devices = list(devices) if devices is not None else jax.local_devices()
    if chunk is None:
        chunk = max(1, min(256, math.ceil(P / (4 * len(devices)))))
    if isinstance(chunk, bool) or not isinstance(chunk, (int, np.integer)) or chunk < 1:
        raise ValueError(f"chunk must be an integer >= 1, got chunk={chunk!r}")
    if client is not None and store is None:
        raise ValueError("store must be a path when client is given: the workers write to it")
    if order not in ("auto", "first", "second"):
        raise ValueError(f"order must be 'auto', 'first' or 'second', got order={order!r}")
    opts = SolveOptions(gtol=float(gtol), max_steps=int(max_steps), max_newton=int(max_newton),
                        order=order, batch=_batch_mode(devices), certify=_certify_mode(prob, certify))
    K = prob.K
    D = prob.D
    store = os.fspath(store) if store is not None else None
    root = _open_store(store, _meta(prob, axes, seeds, chunk, opts), P, K, D)
    done = np.asarray(root["done"][:])
    todo = [int(c) for c in np.flatnonzero(~done)]
    if max_chunks is not None:
        todo = todo[: int(max_chunks)]
    run_id = uuid.uuid4().int >> 66  # a positive int64 naming this call
    bar = _bar(progress, P, int(done.sum()) * chunk, P)
    if client is not None:
        from distributed import as_completed

        futs = [client.submit(_dask_task, store, prob, axes, seeds, opts, c, run_id, pure=False)
                for c in todo]
        for f in as_completed(futs):
            bar.update(f.result())
    else:
        _run_local(root, prob, axes, seeds, opts, todo, run_id, devices, bar)
    bar.close()
    return open_sweep(root)


def _certify_mode(prob, certify) -> str:
    """``"global"`` or ``"local"`` from ``certify`` (``"auto"``: global where the family has a
    proven lower bound)."""
    from ufm.solvers import global_unsupported_reason

    if certify not in ("auto", "global", "local"):
        raise ValueError(f"certify must be 'auto', 'global' or 'local', got certify={certify!r}")
    why = global_unsupported_reason(prob)
    if certify == "global" and why is not None:
        raise ValueError(f"certify='global': {why}")
    if certify == "auto":
        return "global" if why is None else "local"
    return certify


def _batch_mode(devices) -> str:
    """Starts of a point: a compiled loop on CPU (measured faster there), ``vmap`` elsewhere."""
    return "map" if all(d.platform == "cpu" for d in devices) else "vmap"


LOCAL_MODE = "spmd"  # several local devices: "spmd" (one program) or "threads" (one per device)


def _run_local(root, prob, axes, seeds, opts, todo, run_id, devices, bar):
    if len(devices) > 1 and LOCAL_MODE == "spmd":
        return _run_spmd(root, prob, axes, seeds, opts, todo, run_id, devices, bar)
    if len(devices) == 1:
        for c in todo:
            bar.update(_run_chunk(root, prob, axes, seeds, opts, c, run_id))
        return
    from concurrent.futures import ThreadPoolExecutor, as_completed

    queue = list(todo)
    with ThreadPoolExecutor(len(devices)) as pool:
        futs = [pool.submit(_device_worker, root, prob, axes, seeds, opts, queue, run_id, dev, bar)
                for dev in devices]
        for f in as_completed(futs):
            f.result()


def _device_worker(root, prob, axes, seeds, opts, queue, run_id, device, bar):
    prob = jax.device_put(prob, device)
    while True:
        try:
            c = queue.pop(0)  # list.pop is atomic under the GIL
        except IndexError:
            return
        bar.update(_run_chunk(root, prob, axes, seeds, opts, c, run_id, device))


def _bar(progress, total, initial, P):
    from tqdm.auto import tqdm

    disable = (not sys.stderr.isatty()) if progress is None else not progress
    return tqdm(total=total, initial=min(initial, P), unit="pt", desc="ufm sweep",
                disable=disable, file=sys.stderr, smoothing=0.1)


# ---------------------------------------------------------------- reading


def open_sweep(store):
    """Read a sweep store (a path or an open Zarr group) into an ``xarray.Dataset``.

    Dimensions: one per grid field (in grid order, coordinates the values) and ``seed``; Gram
    matrices add ``class_i, class_j`` (``G_H``) and ``row_i, row_j`` (``G_W``). ``done`` marks the
    points already solved (the others hold NaN / -1). ``phase`` holds codes into
    ``attrs["phases"]``; ``phase_name`` the names.
    """
    import xarray as xr
    import zarr

    root = store if isinstance(store, zarr.Group) else zarr.open_group(os.fspath(store), mode="r")
    attrs = dict(root.attrs)
    if attrs.get("format") != FORMAT:
        raise ValueError(f"store {store!r} is not a ufm sweep store (format {attrs.get('format')!r})")
    axes = {k: np.asarray(v) for k, v in attrs["axes"].items()}
    shape = tuple(len(v) for v in axes.values())
    S, C = attrs["seeds"], attrs["chunk"]
    dims = tuple(axes) + ("seed",)
    done_chunks = np.asarray(root["done"][:])
    at = np.argsort(snake_order(shape))  # C-order point -> its storage position

    def grid(a, tail=()):
        return np.asarray(a)[at].reshape(shape + tail)

    done = grid(np.repeat(done_chunks, C)[: int(np.prod(shape))])
    data = {}
    for name in _SCALARS + ("phase",):
        data[name] = (dims, grid(root[name][:], (S,)))
    K, D = root["G_H"].shape[-1], root["G_W"].shape[-1]
    data["G_H"] = (dims + ("class_i", "class_j"), grid(root["G_H"][:], (S, K, K)))
    data["G_W"] = (dims + ("row_i", "row_j"), grid(root["G_W"][:], (S, D, D)))
    data["done"] = (tuple(axes), done)
    codes = data["phase"][1]
    names = np.array(list(PHASES) + ["unsolved"], dtype=object)
    data["phase_name"] = (dims, names[np.where(codes < 0, len(PHASES), codes)])
    data["converged"] = (dims, data["result"][1] == 0)
    coords = dict(axes)
    coords["seed"] = np.arange(S)
    attrs = {k: (str(v) if isinstance(v, (dict, list)) else v) for k, v in attrs.items()}
    attrs["phases"] = ",".join(PHASES)
    return xr.Dataset(data, coords=coords, attrs=attrs)


# ---------------------------------------------------------------- boundaries


def _phase_at(prob, path, x, seeds, opts):
    rec = _solve_points(prob, (path,), np.array([[x]]), seeds, opts)
    rec = jax.tree_util.tree_map(lambda a: np.asarray(a)[0], rec)
    best = int(np.argmin(np.where(rec.result == 0, rec.value, np.inf)))
    if rec.result[best] != 0:
        raise RuntimeError(f"locate_boundary: no certified solve at {path}={x:.17g}")
    G_H, G_W = rec.G_H[best], rec.G_W[best]
    return _phases.phase_of(G_H, G_W, prob.counts, prob.d), G_H


def locate_boundary(prob, field: str, lo: float, hi: float, *, seeds: int = 2, rtol: float = 1e-3,
                    refine: bool = True, gtol: float = 1e-10) -> dict:
    r"""Place the boundary between two phases along one field, by bisection and extrapolation.

    1. Bisection (geometric when ``lo > 0``) on the atlas phase of the certified minimizer
       until the bracket is ``rtol`` wide relative to its centre.
    2. Refinement (``refine=True``): when one side's phase is exact (``zero``, ``simplex_etf``,
       ``orthogonal_frame``), its order parameter :math:`m` (:func:`ufm.sweeps._phases.order_parameter`:
       the largest squared class-mean norm, or the distance to the ETF / frame) vanishes there
       and grows away from the boundary; six certified solves on the other side, at distances
       :math:`j\,\delta` (:math:`\delta` the bracket width), are fitted by a cubic in the field and
       the boundary is its root in the bracket:

       .. math:: m(x) \approx \sum_{i \le 3} c_i (x - x_0)^i, \qquad x^* : m(x^*) = 0.

    Args:
        prob: the base problem.
        field: a sweepable field (:func:`sweepable_fields`).
        lo, hi: the search interval; the phases at its ends must differ.
        seeds: random starts per solve (the lowest certified value is kept).
        rtol: relative bracket width at which bisection stops.
        refine: extrapolate the order parameter (else return the bracket's centre).
        gtol: certified-solve tolerance.

    Returns:
        ``{"field", "boundary", "bracket": (a, b), "phases": (phase_at_a, phase_at_b),
        "method": "bisection" | "bisection+order-parameter fit", "solves"}``.

    Raises:
        ValueError: bad arguments, or equal phases at ``lo`` and ``hi`` (nothing to locate).
    """
    parse_grid(prob, {field: [lo, hi]})
    if not lo < hi:
        raise ValueError(f"lo must be < hi, got lo={lo}, hi={hi}")
    opts = SolveOptions(gtol=float(gtol), batch=_batch_mode(jax.local_devices()),
                        certify=_certify_mode(prob, "auto"))
    pa, _ = _phase_at(prob, field, lo, seeds, opts)
    pb, _ = _phase_at(prob, field, hi, seeds, opts)
    if pa == pb:
        raise ValueError(f"locate_boundary: the phase is {pa!r} at both {field}={lo:g} and "
                         f"{field}={hi:g}; widen the interval")
    a, b, solves = float(lo), float(hi), 2
    geometric = a > 0
    while (b - a) > rtol * abs(0.5 * (a + b)):
        m = math.sqrt(a * b) if geometric else 0.5 * (a + b)
        pm, _ = _phase_at(prob, field, m, seeds, opts)
        solves += 1
        a, b = (m, b) if pm == pa else (a, m)  # invariant: phase(a) == pa != phase(b)
    out = {"field": field, "boundary": 0.5 * (a + b), "bracket": (a, b), "phases": (pa, pb),
           "method": "bisection", "solves": solves}
    exact = [p for p in ("zero", "simplex_etf", "orthogonal_frame") if p in (pa, pb)]
    if refine and exact:
        # the order parameter of the exact phase is fitted where it is nonzero: the other side
        sign = 1.0 if exact[0] == pa else -1.0
        edge, delta = (b, b - a) if sign > 0 else (a, b - a)
        xs = edge + sign * delta * np.arange(1, 7)
        ms = [_phases.order_parameter(exact[0], _phase_at(prob, field, float(x), seeds, opts)[1])
              for x in xs]
        coef = np.polynomial.polynomial.polyfit(xs - edge, ms, 3)
        roots = [r.real + edge for r in np.polynomial.polynomial.polyroots(coef)
                 if abs(r.imag) < 1e-12 * delta]
        inside = [r for r in roots if a - delta <= r <= b + delta]
        if inside:
            out.update(boundary=float(min(inside, key=lambda r: abs(r - 0.5 * (a + b)))),
                       method="bisection+order-parameter fit", solves=solves + 6)
    return out


def compare_thresholds(measured, predicted: Mapping) -> list[dict]:
    r"""Measured boundaries against predicted thresholds.

    .. math:: \mathrm{rel\_error} = \frac{|x_\mathrm{measured} - x_\mathrm{predicted}|}{|x_\mathrm{predicted}|}

    Args:
        measured: a :func:`locate_boundary` result or a list of them.
        predicted: ``{field: predicted threshold}`` (for the theorem catalog's thresholds use
            ``proofs_check.boundaries``; ``ufm`` does not import the catalog).

    Returns:
        One record per measured boundary whose field has a prediction: ``field``, ``measured``,
        ``predicted``, ``rel_error``, ``phases``.
    """
    measured = [measured] if isinstance(measured, Mapping) else list(measured)
    rows = []
    for m in measured:
        if m["field"] not in predicted:
            continue
        p = float(predicted[m["field"]])
        rows.append({"field": m["field"], "measured": m["boundary"], "predicted": p,
                     "rel_error": abs(m["boundary"] - p) / abs(p), "phases": m["phases"]})
    return rows


def _elapsed(t0):  # pragma: no cover - used by the CLI for timing lines
    return time.perf_counter() - t0

r"""The sweep driver: plan the chunks of a grid, run them (locally, SPMD, or on Dask), write them.

:func:`sweep` validates everything (grid, options, store) before any solve, opens the store
(:mod:`ufm.sweeps._store`), and runs the chunks not yet done: on one device in a loop, on several
local devices as one SPMD program per group of chunks (or a thread per device), or as tasks on a
Dask cluster whose workers write to the shared store. Each chunk is solved by the kernel
(:mod:`ufm.sweeps._kernel`) and written as soon as it finishes, so an interrupted call resumes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import sys
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import as_completed as threads_completed
from typing import TYPE_CHECKING, Any

import jax
import numpy as np
from jax.sharding import Mesh

from ufm._internal.deprecation import renamed_keywords
from ufm._internal.precision import enable_x64, require_x64
from ufm._internal.runtime import release_compiled_near_map_limit
from ufm.problems import PaddedUFM, Problem
from ufm.sweeps._grid import MAX_POINTS, GridSpec, chunk_points, grid_size, parse_grid
from ufm.sweeps._kernel import SolveOptions, solve_groups, solve_options, solve_points
from ufm.sweeps._lease import holding
from ufm.sweeps._sizes import bucket_groups, chunk_bucket, chunk_problem, has_sizes, point_sizes, sized_record, top_sizes
from ufm.sweeps._store import done_chunks, open_root, open_store, open_sweep, store_meta, where, write_chunk

if TYPE_CHECKING:
    import xarray

__all__ = ["sweep", "LOCAL_MODES", "ship", "receive"]

MAX_CHUNK = 65_536  # points per compiled call: one call holds its chunk's arrays in memory
LOCAL_MODES = ("spmd", "threads")  # several local devices: one SPMD program, or one per device


@dataclasses.dataclass(frozen=True)
class _Plan:
    """What every chunk of one call shares (picklable: a Dask task carries it)."""

    prob: Problem
    axes: dict[str, np.ndarray]
    starts: int
    chunk: int
    opts: SolveOptions
    run_id: int  # a positive int64 naming this call (the store's ``run``)
    store_name: str = "(memory)"  # the store as messages name it

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(self.axes)

    @property
    def sized(self) -> bool:
        """Whether a grid axis is a size (each chunk then runs padded to its bucket)."""
        return _over_sizes(self.prob, self.paths)

    def bucket(self, c: int) -> tuple[int, int, int] | None:
        """Chunk ``c``'s bucket of sizes (``None`` when no axis is a size)."""
        return chunk_bucket(self.prob, self.paths, chunk_points(self.axes, self.chunk, c)[2]) if self.sized else None

    def problem(self, c: int) -> Problem:
        """The problem chunk ``c`` is solved as: the base one, or it padded to the chunk's bucket."""
        return chunk_problem(self.prob, self.bucket(c)) if self.sized else self.prob

    def finish(self, rec, vals: np.ndarray):
        """``(record, phase codes or None)`` as the store takes them (a sized chunk's Grams made
        ``K_top x K_top`` and its phases named per point, :func:`ufm.sweeps._sizes.sized_record`)."""
        if not self.sized:
            return rec, None
        return sized_record(rec, point_sizes(self.prob, self.paths, vals), top_sizes(self.prob, self.axes)[0],
                            None if self.prob.balanced else self.prob.counts)


def _over_sizes(prob: Problem, paths: tuple[str, ...]) -> bool:
    """Whether a grid over ``paths`` sweeps a size of ``prob`` (its chunks then run padded to their
    buckets; a problem that is already padded keeps its own bucket)."""
    return has_sizes(paths) and not isinstance(prob, PaddedUFM)


@renamed_keywords(seeds="starts")
def sweep(prob: Problem, grid: GridSpec, starts: int = 1, store: str | os.PathLike | Any = None, *,
          chunk: int | None = None, client: Any = None, progress: bool | None = None,
          max_chunks: int | None = None, devices: Sequence[jax.Device] | None = None,
          gtol: float = 1e-10, order: str = "auto", max_steps: int = 10_000, max_newton: int = 100,
          certify: str = "auto", local_mode: str = "spmd") -> xarray.Dataset:
    r"""Certified solves over a product grid of hyper-parameters, from several random starts.

    Every grid point ``p`` and seed ``s < starts`` is solved from the random start of
    ``ufm.minimize(prob_p, seed=s)`` and from the previous grid point's solution (a warm start);
    the certified run with the lower objective is kept,

    .. math:: \theta^*_{p,s} = \arg\min\{f_p(\theta) : \theta \in \{\theta_{\mathrm{random}},
        \theta_{\mathrm{warm}}\},\ \lVert\nabla f_p(\theta)\rVert \le \mathrm{gtol}\max(1, |f_p|)\},

    and where both are certified but their values differ (two branches), ``disagree`` is set.
    Each solution gets an atlas phase (:data:`ufm.sweeps.PHASES`) from its Gram matrices.

    Certificates (``certify``). ``"local"``: both runs second-order certified as by
    ``ufm.minimize(order=order)``. ``"global"`` (families with a proven lower bound
    :math:`\underline f_p`, :func:`ufm.global_certificate`): first-order solves whose gap
    :math:`f_p - \underline f_p \le \mathrm{gtol}\max(1, |f_p|)` proves them global minimizers
    (``global_ok``; ``min_eig`` NaN, not needed); the random start is skipped where the warm run's
    gap closed (``random_skipped``), and points where no gap closes are re-solved by the local
    path. ``"auto"`` (default): ``"global"`` where the family has a bound.

    Main arguments:
        prob: the base problem (for example :class:`ufm.UFM`); grid values replace its fields.
        grid: ``{field: values}`` over :func:`ufm.sweeps.sweepable_fields` (``"lam_W"``, ``"loss.alpha"``,
            sizes ``"K"``, ``"d"``, ``"n"``); values a list or ``{"log": [lo, hi, num]}``.
        starts: random starts per point (seeds ``0 .. starts - 1``; deprecated name ``seeds``).
        store: a Zarr store (resumable): a path, a ``file://`` or other fsspec URL (``memory://``,
            ``s3://``), or a Zarr Store; ``None``: in memory. One call writes a store at a time
            (a lease with a heartbeat); a finished chunk is never written again.

    Other arguments:
        chunk: points per compiled call (default ``P / (4 devices)``, over sizes ``P / (2 devices)``; <= 256).
        client: a ``dask.distributed.Client``; chunks then run on its workers (a chunk whose
            worker dies runs again on another), which write to ``store`` (reachable by all).
            Without it, chunks run on every local JAX device (on CPU, start Python with
            ``XLA_FLAGS=--xla_force_host_platform_device_count=<cores>``; the ``ufm`` command does).
        progress: a tqdm bar on stderr (default: when stderr is a terminal).
        max_chunks: stop after this many new chunks (for tests and for splitting work).
        devices: the JAX devices that run chunks (default ``jax.local_devices()``).
        gtol: as in :func:`ufm.minimize`.
        order: as in :func:`ufm.minimize` (``"auto"``: second order where affordable); with
            ``"global"``, the order of the fallback.
        max_steps: as in :func:`ufm.minimize`.
        max_newton: as in :func:`ufm.minimize`.
        certify: ``"auto"``, ``"global"`` or ``"local"`` (above).
        local_mode: several local devices: ``"spmd"`` (a group of one chunk per device as one
            ``shard_map`` program, compiled once) or ``"threads"`` (a thread per device, each
            compiling its own copy).

    Returns:
        An ``xarray.Dataset`` (:func:`ufm.sweeps.open_sweep`) over the grid fields and ``seed``;
        a failed solve is stored with its :class:`ufm.RESULTS` code (``result``), the sweep goes on.

    Raises:
        ValueError: a bad grid (naming the field) or option, or a store that holds a different
            sweep; all before anything is solved or written.
        StoreBusyError: another call holds the store's lease (named); nothing was solved.
        StoreWriteError: a write failed (disk full, read-only); done chunks intact; resumable.

    References:
        Zhu et al., NeurIPS 2021 (arXiv 2105.02375), the CE UFM landscape the phase diagrams map.
    """
    require_x64("ufm.sweep")
    devices = list(devices) if devices is not None else jax.local_devices()
    plan = _plan(prob, grid, starts, chunk, devices, client is not None and store is None, gtol=gtol,
                 order=order, max_steps=max_steps, max_newton=max_newton, certify=certify)
    if local_mode not in LOCAL_MODES:
        raise ValueError(f"local_mode must be 'spmd' or 'threads', got local_mode={local_mode!r}")
    store, root, plan = _open(plan, store, client)
    P = grid_size(plan.axes)
    with holding(root, plan.run_id, plan.store_name):  # created or checked, then read, under the lease
        done, todo = _todo(root, prob, plan, max_chunks)
        with contextlib.closing(_bar(progress, P, int(done.sum()) * plan.chunk)) as bar:
            _run_dask(client, store, plan, todo, bar) if client is not None else \
                _run_local(root, plan, todo, devices, local_mode, bar)
    return open_sweep(root)


def _open(plan: _Plan, store, client) -> tuple[Any, Any, _Plan]:
    """The store (a path made a str), its group (not yet checked), the plan naming it."""
    if client is not None and not isinstance(store, (str, os.PathLike)):
        raise ValueError(f"store must be a path or URL when client is given (the workers open it), "
                         f"got store={store!r}")
    store = os.fspath(store) if isinstance(store, os.PathLike) else store
    plan = dataclasses.replace(plan, store_name=where(store) if store is not None else "(memory)")
    return store, open_root(store, "a"), plan


def _todo(root, prob, plan: _Plan, max_chunks) -> tuple[np.ndarray, list[int]]:
    """Create or check the store (under its lease), then the chunks done and those to run."""
    K, D = (top_sizes(prob, plan.axes)[0],) * 2 if plan.sized else (prob.K, prob.D)
    open_store(root, store_meta(prob, plan.axes, plan.starts, plan.chunk, plan.opts),
               grid_size(plan.axes), K, D, plan.store_name)
    done = done_chunks(root)
    return done, [int(c) for c in np.flatnonzero(~done)][: None if max_chunks is None else int(max_chunks)]


def _count(name: str, value, most: int = MAX_POINTS) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= most:
        raise ValueError(f"{name} must be an integer >= 1 and <= {most:.0e}, got {name}={value!r}")
    return int(value)


def _plan(prob, grid, starts, chunk, devices, client_without_store, **options) -> _Plan:
    """Validate the grid, the counts, the store and the solver options (in that order); no store
    is opened, nothing is solved."""
    axes = parse_grid(prob, grid)
    starts = _count("starts", starts, MAX_POINTS // grid_size(axes))  # points x starts solves in all
    if chunk is None:  # a sweep over sizes: half as many chunks, so fewer buckets (compiles)
        per = 2 if _over_sizes(prob, tuple(axes)) else 4
        chunk = max(1, min(256, math.ceil(grid_size(axes) / (per * len(devices)))))
    chunk = _count("chunk", chunk, MAX_CHUNK)
    if client_without_store:
        raise ValueError("store must be a path or URL when client is given: the workers write to it")
    plan = _Plan(prob, axes, starts, chunk, None, run_id=uuid.uuid4().int >> 66)
    if plan.sized and options.get("certify") == "global":
        raise ValueError("certify='global' cannot run a sweep over sizes (K, n, d): the proven global bound "
                         "has no padded form; use certify='auto' or 'local' (second order)")
    opts = solve_options(plan.problem(0), devices, **options)
    return dataclasses.replace(plan, opts=opts)


def _run_chunk(root, plan: _Plan, c: int, device=None) -> int:
    """Solve sweep chunk ``c`` and write it; returns the number of points written."""
    start, stop, vals = chunk_points(plan.axes, plan.chunk, c)
    prob = plan.problem(c)
    if device is not None:
        prob = jax.device_put(prob, device)
    with jax.default_device(device) if device is not None else contextlib.nullcontext():
        rec = solve_points(prob, plan.paths, vals, plan.starts, plan.opts, stop - start)
    rec, phase = plan.finish(rec, vals)
    return write_chunk(root, plan.prob, rec, c, start, stop, plan.run_id, plan.store_name, phase)


def _run_local(root, plan: _Plan, todo, devices, local_mode, bar) -> None:
    if len(devices) > 1 and local_mode == "spmd":
        return _run_spmd(root, plan, todo, devices, bar)
    if len(devices) == 1:
        for c in todo:
            bar.update(_run_chunk(root, plan, c))
        return
    queue = list(todo)
    with ThreadPoolExecutor(len(devices)) as pool:
        futs = [pool.submit(_device_worker, root, plan, queue, dev, bar) for dev in devices]
        for f in threads_completed(futs):
            f.result()


def _run_spmd(root, plan: _Plan, todo, devices, bar) -> None:
    """Chunks in groups of ``len(devices)`` that share a bucket, one SPMD call per group (one
    compilation per bucket)."""
    mesh = Mesh(np.asarray(devices), ("d",))
    G = len(devices)
    groups = bucket_groups({c: plan.bucket(c) for c in todo}, todo, G) if plan.sized else \
        [todo[g:g + G] for g in range(0, len(todo), G)]
    for group in groups:
        ranges = [chunk_points(plan.axes, plan.chunk, c) for c in group]
        vals = np.stack([r[2] for r in ranges] + [ranges[-1][2]] * (G - len(group)))  # pad
        recs = solve_groups(plan.problem(group[0]), plan.paths, vals, plan.starts, plan.opts, mesh,
                            [stop - start for start, stop, _ in ranges])
        for c, (start, stop, v), rec in zip(group, ranges, recs):
            rec, phase = plan.finish(rec, v)
            bar.update(write_chunk(root, plan.prob, rec, c, start, stop, plan.run_id,
                                   plan.store_name, phase))


def _device_worker(root, plan: _Plan, queue, device, bar) -> None:
    if not plan.sized:  # a sized plan puts each chunk's padded problem on the device itself
        plan = dataclasses.replace(plan, prob=jax.device_put(plan.prob, device))
    while True:
        try:
            c = queue.pop(0)  # list.pop is atomic under the GIL
        except IndexError:
            return
        bar.update(_run_chunk(root, plan, c, device))


def ship(plan: _Plan) -> bytes:
    """The plan of a sweep as bytes for a Dask worker (cloudpickle: a user's loss function
    travels too). A worker unpickles a task's arguments before it runs the task; a problem
    unpickled then, with float64 still off, would be rebuilt in float32 (``lam_H = 5e-3`` off
    by 2e-8 relative), so the plan travels as bytes and is unpacked by :func:`receive`."""
    import cloudpickle

    return cloudpickle.dumps(plan)


def receive(blob: bytes) -> _Plan:
    """The plan of :func:`ship`, unpacked after float64 is on."""
    import cloudpickle

    enable_x64()
    return cloudpickle.loads(blob)


def _dask_task(store: str, blob: bytes, c: int) -> int:
    """One chunk on a Dask worker: opens the shared store, solves, writes (if still the owner).

    A worker process outlives the sweep and may run many sweeps of other shapes: ufm's compiled
    programs (the chunk kernel's among them) are released before the process reaches the
    kernel's memory-map limit (one read of /proc/self/maps per chunk)."""
    n = _run_chunk(open_root(store, "r+"), receive(blob), c)
    release_compiled_near_map_limit()
    return n


def _run_dask(client, store, plan: _Plan, todo, bar) -> None:
    """Every chunk a task; a task whose worker dies is rerun elsewhere by the scheduler. On the
    first failure the tasks not yet started are cancelled and the failure is raised."""
    from distributed import as_completed

    blob = ship(plan)
    futs = [client.submit(_dask_task, store, blob, c, pure=False, key=f"ufm-sweep-{plan.run_id}-{c}")
            for c in todo]
    try:
        for f in as_completed(futs):
            bar.update(f.result())
    finally:
        client.cancel([f for f in futs if not f.done()])


def _bar(progress, total, initial):
    from tqdm.auto import tqdm

    disable = (not sys.stderr.isatty()) if progress is None else not progress
    return tqdm(total=total, initial=min(initial, total), unit="pt", desc="ufm sweep",
                disable=disable, file=sys.stderr, smoothing=0.1)


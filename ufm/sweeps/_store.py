r"""The Zarr store of a sweep: created or checked, written a chunk at a time, read as a Dataset.

Layout (Zarr v3 group, format ``ufm.sweep/3``): every variable is a flat array over the grid
points in the reflected order of :func:`ufm.sweeps.snake_order` (consecutive entries are grid
neighbours; :func:`open_sweep` puts them back on the grid), shape ``(P, S, ...)`` with ``P`` the
number of grid points and ``S`` the random starts, chunked by ``(chunk, S, ...)`` so that one sweep
chunk is one Zarr chunk; ``done`` (one entry per sweep chunk) is set after the chunk's data is
written, and ``run`` records which call computed it. Attributes hold the grid axes, the number of
starts (under its first name, ``seeds``, so that stores written before the rename still resume),
the options, the problem description and ufm's version. A chunk is written at a fixed position,
so a chunk interrupted mid-write (values written, ``done`` not yet) is recomputed and overwritten
in place, and is never read as done: every point is stored exactly once. A chunk already marked
done is never written again.

Every array names its dimensions (``point``, ``seed``, ``class_i``/``class_j``, ``row_i``/``row_j``,
``chunk``), and each grid field is a coordinate array over ``point`` (``seed`` over ``seed``),
listed in the variables' ``coordinates`` attribute, so ``xarray.open_zarr(store)`` reads a finished
or partial store without ufm (one row per point; ``ds.set_index(point=[fields]).unstack("point")``
puts it on the grid). Stores of format ``ufm.sweep/2`` (no dimension names) are still read and
resumed by ufm; other formats are refused with one line.

A store is a directory path, a ``file://`` URL (the same directory), another fsspec URL that Zarr
opens (``memory://``, ``s3://``, ... with the matching fsspec package), or a ``zarr`` Store.

zarr and xarray (the ``sweeps`` extra) are imported where a store is opened.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from ufm._internal.runtime import package_version
from ufm.problems import Problem
from ufm.sweeps._grid import snake_order
from ufm.solvers import RESULTS
from ufm.sweeps._lease import check_owner
from ufm.sweeps._phases import PHASES, phase_codes

if TYPE_CHECKING:
    import xarray
    import zarr

__all__ = ["FORMAT", "READABLE", "SCALARS", "StoreWriteError", "describe", "store_meta", "open_store",
           "open_root", "where", "done_chunks", "write_chunk", "open_sweep"]

FORMAT = "ufm.sweep/3"
READABLE = ("ufm.sweep/2", FORMAT)  # formats this version reads and resumes
# the per-point, per-start scalars of a record (ufm.sweeps._kernel.PointRecord) that are stored
SCALARS = ("value", "kkt", "min_eig", "order", "result", "value_random", "value_warm", "warm_won",
           "disagree", "steps", "W_norm2", "H_norm2", "b_norm2", "nc1", "global_gap", "global_ok",
           "random_skipped")
# attributes that must match for a call to resume a store (the format: one of READABLE)
_COMPARED = ("problem", "axes", "seeds", "chunk", "options")
_DTYPES = {"result": "i4", "order": "i1", "steps": "i4", "warm_won": "bool", "disagree": "bool",
           "global_ok": "bool", "random_skipped": "bool", "phase": "i1"}  # the others: f8


class StoreWriteError(OSError):
    """A chunk could not be written (disk full, read-only store, ...): one line naming the chunk,
    the cause, how many chunks are done (intact) and the fix; ``errno`` is the cause's."""


def describe(prob: Problem) -> str:
    """``repr(prob)`` with arrays written as plain numbers (``lam_W=0.001``)."""
    return re.sub(r"Array\(([^,()]+), dtype=[a-z0-9]+\)", r"\1", repr(prob))


def store_meta(prob: Problem, axes: Mapping[str, np.ndarray], starts: int, chunk: int,
               opts: NamedTuple) -> dict:
    """The attributes of a sweep's store (the number of starts under the key ``seeds``)."""
    return {
        "format": FORMAT,
        "problem": describe(prob),
        "axes": {k: [float(x) for x in v] for k, v in axes.items()},
        "seeds": int(starts),
        "chunk": int(chunk),
        "options": opts._asdict(),
        "phases": list(PHASES),
        "results": {str(int(r)): r.name for r in RESULTS},
        "ufm_version": package_version(),
    }


def where(store: Any) -> str:
    """How a store is named in messages: its path or URL (a Store object: its ``repr``)."""
    return os.fspath(store) if isinstance(store, (str, os.PathLike)) else repr(store)


def open_root(store: Any, mode: str) -> zarr.Group:
    """The Zarr group at ``store``: a directory path, a ``file://`` URL (the same directory, with
    atomic writes), another fsspec URL (``memory://``, ``s3://``, ...), a Zarr Store, or None (a
    new in-memory store)."""
    import zarr

    if store is None:
        store = zarr.storage.MemoryStore()
    elif isinstance(store, (str, os.PathLike)):
        store = os.fspath(store)
        if store.startswith("file://"):
            store = store[len("file://"):]
    try:
        return zarr.open_group(store, mode=mode)
    except zarr.errors.ContainsGroupError:  # another call created it at this moment: open that
        return zarr.open_group(store, mode=mode)


def open_store(root: zarr.Group, meta: dict, P: int, K: int, D: int, name: str) -> zarr.Group:
    """The arrays of a sweep in group ``root``: created, or checked against ``meta`` if present.

    Call it holding the store's lease (:func:`ufm.sweeps._lease.holding`): two calls that find
    an empty store at the same moment would both create it.

    Args:
        root: the store's group (:func:`open_root`).
        meta: :func:`store_meta` of this call.
        P, K, D: grid points, classes, classifier rows (the Gram shapes).
        name: the store as messages name it.

    Raises:
        ValueError: the store holds a different sweep (naming the attribute that differs), or a
            format this version cannot resume; the store is left as it was.
    """
    old = dict(root.attrs)
    if old:
        if old.get("format") not in READABLE:
            raise ValueError(
                f"store {name!r} has format {old.get('format')!r}, which this ufm "
                f"({package_version()}) cannot resume (it reads {', '.join(READABLE)}); open it with "
                f"the ufm that wrote it ({old.get('ufm_version', '?')}), or use a new store")
        for key in _COMPARED:
            if old.get(key) != meta[key]:
                raise ValueError(
                    f"store {name!r} holds a different sweep: {key!r} differs (stored "
                    f"{old.get(key)!r}, asked {meta[key]!r}); nothing was changed; use a new store")
        return root
    _create_arrays(root, P, meta, K, D)
    root.attrs.update(meta)  # last: a store with attributes has all its arrays
    return root


def _create_arrays(root, P, meta, K, D) -> None:
    """The data arrays (named dimensions, fill values for "not solved"), ``done`` and ``run`` per
    chunk, and the coordinates: each grid field's value at each point, and ``seed``."""
    S, C, axes = meta["seeds"], meta["chunk"], meta["axes"]
    nchunks = -(-P // C)
    coords = " ".join(axes)
    tails = {"G_H": ((K, K), ("class_i", "class_j")), "G_W": ((D, D), ("row_i", "row_j"))}
    for name in SCALARS + ("phase", "G_H", "G_W"):
        dtype = _DTYPES.get(name, "f8")
        tail, tdims = tails.get(name, ((), ()))
        fill = False if dtype == "bool" else (-1 if dtype[0] == "i" else np.nan)
        arr = root.create_array(name, shape=(P, S, *tail), chunks=(C, S, *tail), dtype=dtype,
                                fill_value=fill, dimension_names=("point", "seed", *tdims))
        arr.attrs["coordinates"] = coords
    for name, dtype in (("done", "bool"), ("run", "i8")):
        root.create_array(name, shape=(nchunks,), chunks=(1,), dtype=dtype,
                          fill_value=False if dtype == "bool" else 0, dimension_names=("chunk",))
    shape = tuple(len(v) for v in axes.values())
    idx = np.unravel_index(snake_order(shape), shape)  # the grid point at each position
    for (field, values), i in zip(axes.items(), idx):
        root.create_array(field, shape=(P,), chunks=(P,), dtype="f8", dimension_names=("point",))
        root[field][:] = np.asarray(values)[i]
    root.create_array("seed", shape=(S,), chunks=(S,), dtype="i8", dimension_names=("seed",))
    root["seed"][:] = np.arange(S)


def done_chunks(root: zarr.Group) -> np.ndarray:
    """``(nchunks,)`` bool: the sweep chunks already written."""
    return np.asarray(root["done"][:])


def write_chunk(root: zarr.Group, prob: Problem, rec: NamedTuple, c: int, start: int, stop: int,
                run_id: int, store_name: str = "(memory)", phase: np.ndarray | None = None) -> int:
    """Write sweep chunk ``c`` (positions ``start .. stop - 1``) and its phases, then mark it done.

    The order is the contract: the lease is checked (the call still owns the store), a chunk
    already done is left untouched, the values are written, then ``run``, then ``done``: a chunk
    interrupted anywhere before ``done`` reads as not done and is recomputed in place.

    Args:
        root: the sweep's group (:func:`open_store`).
        prob: the base problem (class counts and ``d`` name the phases).
        rec: the chunk's record (``ufm.sweeps._kernel.PointRecord`` of NumPy arrays, leading axes
            ``(chunk, S)``); rows past ``stop - start`` (padding) are dropped.
        c, start, stop: the chunk and its positions.
        run_id: the call that computed it (it must hold the store's lease).
        store_name: the store as the messages name it.
        phase: the chunk's phase codes when the caller named them (a sweep over sizes, whose
            points differ in ``K``); default: from ``prob``'s counts and ``d``.

    Returns:
        The number of points of the chunk.

    Raises:
        StoreBusyError: the call lost the store's lease (nothing written).
        StoreWriteError: the store refused a write (disk full, read-only, ...).
    """
    n = stop - start
    rec = type(rec)(*(a[:n] for a in rec))
    if phase is None:
        phase = phase_codes(rec.G_H, rec.G_W, np.asarray(rec.result) == 0, prob.counts, prob.d)
    phase = phase[:n]
    try:
        check_owner(root, run_id, store_name)
        if bool(root["done"][c]):
            return n
        for name in SCALARS + ("G_H", "G_W"):
            root[name][start:stop] = getattr(rec, name)
        root["phase"][start:stop] = phase
        root["run"][c] = run_id
        root["done"][c] = True
    except OSError as e:
        raise _write_error(root, e, c, store_name) from e
    return n


def _write_error(root, e: OSError, c: int, store_name: str) -> StoreWriteError:
    try:
        done = done_chunks(root)
        state = f"{int(done.sum())} of {done.size} chunks are done and intact"
    except Exception:  # noqa: BLE001  the store cannot even be read: say so
        state = "the store cannot be read back either"
    cause = e.strerror or str(e) or type(e).__name__
    return StoreWriteError(e.errno, f"writing chunk {c} to store {store_name!r} failed: {cause}; "
                                    f"{state} (chunk {c} is not); free space or make the store "
                                    f"writable, then run the same call again to resume")


def open_sweep(store: str | os.PathLike | zarr.Group) -> xarray.Dataset:
    """Read a sweep store (a path, a URL, a Zarr Store or an open group) into an ``xarray.Dataset``.

    Dimensions: one per grid field (in grid order, coordinates the values) and ``seed`` (which
    random start, ``0 .. starts - 1``); Gram matrices add ``class_i, class_j`` (``G_H``) and
    ``row_i, row_j`` (``G_W``). ``done`` marks the points already solved; the others (chunks not
    done, torn ones included) read as NaN / -1 / False, never as a result. ``result`` holds the
    solver's :class:`ufm.RESULTS` code of each solve and ``result_name`` its name; ``phase``
    holds codes into ``attrs["phases"]``, ``phase_name`` the names. ``attrs`` are the store's
    (the number of starts is ``attrs["seeds"]``).

    Raises:
        ValueError: the store is not a ufm sweep store, or of a format this version cannot read.
    """
    import xarray as xr
    import zarr

    root = store if isinstance(store, zarr.Group) else open_root(store, "r")
    attrs = dict(root.attrs)
    if attrs.get("format") not in READABLE:
        raise ValueError(f"store {where(store)!r} is not a ufm sweep store this version reads "
                         f"(format {attrs.get('format')!r}; readable: {', '.join(READABLE)})")
    axes = {k: np.asarray(v) for k, v in attrs["axes"].items()}
    shape = tuple(len(v) for v in axes.values())
    S, C = attrs["seeds"], attrs["chunk"]
    dims = tuple(axes) + ("seed",)
    at = np.argsort(snake_order(shape))  # C-order point -> its storage position
    solved = np.repeat(done_chunks(root), C)[: int(np.prod(shape))]

    def grid(name, tail=()):
        a = np.asarray(root[name][:])
        a[~solved] = root[name].fill_value  # a chunk not done (or torn) is not a result
        return a[at].reshape(shape + tail)

    data: dict[str, Any] = {name: (dims, grid(name, (S,))) for name in SCALARS + ("phase",)}
    K, D = root["G_H"].shape[-1], root["G_W"].shape[-1]
    data["G_H"] = (dims + ("class_i", "class_j"), grid("G_H", (S, K, K)))
    data["G_W"] = (dims + ("row_i", "row_j"), grid("G_W", (S, D, D)))
    data["done"] = (tuple(axes), solved[at].reshape(shape))
    codes = data["phase"][1]
    names = np.array(list(PHASES) + ["unsolved"], dtype=object)
    data["phase_name"] = (dims, names[np.where(codes < 0, len(PHASES), codes)])
    res = data["result"][1]
    rnames = np.array([r.name for r in RESULTS] + ["unsolved"], dtype=object)
    data["result_name"] = (dims, rnames[np.where((res < 0) | (res >= len(RESULTS)), len(RESULTS), res)])
    data["converged"] = (dims, res == 0)
    coords = dict(axes)
    coords["seed"] = np.arange(S)
    attrs = {k: (str(v) if isinstance(v, (dict, list)) else v) for k, v in attrs.items()}
    attrs["phases"] = ",".join(PHASES)
    return xr.Dataset(data, coords=coords, attrs=attrs)

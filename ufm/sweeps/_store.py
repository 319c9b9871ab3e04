r"""The Zarr store of a sweep: created or checked, written a chunk at a time, read as a Dataset.

Layout (Zarr v3 group, format ``ufm.sweep/2``): every variable is a flat array over the grid
points in the reflected order of :func:`ufm.sweeps.snake_order` (consecutive entries are grid
neighbours; :func:`open_sweep` puts them back on the grid), shape ``(P, S, ...)`` with ``P`` the
number of grid points and ``S`` the random starts, chunked by ``(chunk, S, ...)`` so that one sweep
chunk is one Zarr chunk; ``done`` (one entry per sweep chunk) is set after the chunk's data is
written, and ``run`` records which call computed it. Attributes hold the grid axes, the number of
starts (under its first name, ``seeds``, so that stores written before the rename still resume),
the options, the problem description and ufm's version. A chunk is written at a fixed position,
so a chunk interrupted mid-write is recomputed and overwritten in place: every point is stored
exactly once.

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
from ufm.sweeps._phases import PHASES, phase_codes

if TYPE_CHECKING:
    import xarray
    import zarr

__all__ = ["FORMAT", "SCALARS", "describe", "store_meta", "open_store", "done_chunks", "write_chunk",
           "open_sweep"]

FORMAT = "ufm.sweep/2"
# the per-point, per-start scalars of a record (ufm.sweeps._kernel.PointRecord) that are stored
SCALARS = ("value", "kkt", "min_eig", "order", "result", "value_random", "value_warm", "warm_won",
           "disagree", "steps", "W_norm2", "H_norm2", "b_norm2", "nc1", "global_gap", "global_ok",
           "random_skipped")
# attributes that must match for a call to resume a store
_COMPARED = ("format", "problem", "axes", "seeds", "chunk", "options")


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
        "ufm_version": package_version(),
    }


def open_store(store: str | None, meta: dict, P: int, K: int, D: int) -> zarr.Group:
    """The group of a sweep: created with its arrays, or an existing one checked against ``meta``.

    Args:
        store: a directory path, or None (in memory).
        meta: :func:`store_meta` of this call.
        P, K, D: grid points, classes, classifier rows (the Gram shapes).

    Raises:
        ValueError: the store holds a different sweep (naming the attribute that differs); the
            store is left as it was.
    """
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
    _create_arrays(root, P, meta["seeds"], meta["chunk"], K, D)
    root.attrs.update(meta)  # last: a store with attributes has all its arrays
    return root


def _create_arrays(root, P, S, C, K, D) -> None:
    nchunks = -(-P // C)
    spec = {name: ("f8", ()) for name in SCALARS}
    spec.update(result=("i4", ()), order=("i1", ()), steps=("i4", ()), warm_won=("bool", ()),
                disagree=("bool", ()), global_ok=("bool", ()), random_skipped=("bool", ()),
                phase=("i1", ()), G_H=("f8", (K, K)), G_W=("f8", (D, D)))
    for name, (dtype, tail) in spec.items():
        fill = False if dtype == "bool" else (-1 if dtype[0] == "i" else np.nan)
        root.create_array(name, shape=(P, S, *tail), chunks=(C, S, *tail), dtype=dtype,
                          fill_value=fill)
    root.create_array("done", shape=(nchunks,), chunks=(1,), dtype="bool", fill_value=False)
    root.create_array("run", shape=(nchunks,), chunks=(1,), dtype="i8", fill_value=0)


def done_chunks(root: zarr.Group) -> np.ndarray:
    """``(nchunks,)`` bool: the sweep chunks already written."""
    return np.asarray(root["done"][:])


def write_chunk(root: zarr.Group, prob: Problem, rec: NamedTuple, c: int, start: int, stop: int,
                run_id: int) -> int:
    """Write sweep chunk ``c`` (positions ``start .. stop - 1``) and its phases, then mark it done.

    Args:
        root: the sweep's group (:func:`open_store`).
        prob: the base problem (class counts and ``d`` name the phases).
        rec: the chunk's record (``ufm.sweeps._kernel.PointRecord`` of NumPy arrays, leading axes
            ``(chunk, S)``); rows past ``stop - start`` (padding) are dropped.
        c, start, stop: the chunk and its positions.
        run_id: the call that computed it.

    Returns:
        The number of points written.
    """
    n = stop - start
    rec = type(rec)(*(a[:n] for a in rec))
    phase = phase_codes(rec.G_H, rec.G_W, np.asarray(rec.result) == 0, prob.counts, prob.d)
    for name in SCALARS + ("G_H", "G_W"):
        root[name][start:stop] = getattr(rec, name)
    root["phase"][start:stop] = phase
    root["run"][c] = run_id
    root["done"][c] = True
    return n


def open_sweep(store: str | os.PathLike | zarr.Group) -> xarray.Dataset:
    """Read a sweep store (a path or an open Zarr group) into an ``xarray.Dataset``.

    Dimensions: one per grid field (in grid order, coordinates the values) and ``seed`` (which
    random start, ``0 .. starts - 1``); Gram matrices add ``class_i, class_j`` (``G_H``) and
    ``row_i, row_j`` (``G_W``). ``done`` marks the points already solved (the others hold NaN /
    -1). ``phase`` holds codes into ``attrs["phases"]``; ``phase_name`` the names. ``attrs``
    are the store's (the number of starts is ``attrs["seeds"]``).

    Raises:
        ValueError: the store is not a ufm sweep store.
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
    at = np.argsort(snake_order(shape))  # C-order point -> its storage position

    def grid(a, tail=()):
        return np.asarray(a)[at].reshape(shape + tail)

    data: dict[str, Any] = {name: (dims, grid(root[name][:], (S,))) for name in SCALARS + ("phase",)}
    K, D = root["G_H"].shape[-1], root["G_W"].shape[-1]
    data["G_H"] = (dims + ("class_i", "class_j"), grid(root["G_H"][:], (S, K, K)))
    data["G_W"] = (dims + ("row_i", "row_j"), grid(root["G_W"][:], (S, D, D)))
    data["done"] = (tuple(axes), grid(np.repeat(done_chunks(root), C)[: int(np.prod(shape))]))
    codes = data["phase"][1]
    names = np.array(list(PHASES) + ["unsolved"], dtype=object)
    data["phase_name"] = (dims, names[np.where(codes < 0, len(PHASES), codes)])
    data["converged"] = (dims, data["result"][1] == 0)
    coords = dict(axes)
    coords["seed"] = np.arange(S)
    attrs = {k: (str(v) if isinstance(v, (dict, list)) else v) for k, v in attrs.items()}
    attrs["phases"] = ",".join(PHASES)
    return xr.Dataset(data, coords=coords, attrs=attrs)

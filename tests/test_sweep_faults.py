"""Faults a sweep survives: each test injects one and checks the store afterwards.

Every point present once (``done`` for every chunk after a resume, no point solved twice: the
run ids say which call wrote each chunk), finished chunks untouched (their bytes' SHA-256 before
and after), and a one-line error where the fault stops the call. The cluster faults (a worker
killed, the client killed, two processes at once) are in ``test_sweep_cluster.py``.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
import pathlib
import re
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import ufm

for _extra in ("xarray", "zarr", "tqdm"):  # the sweeps extra
    pytest.importorskip(_extra)
import xarray as xr
import zarr
from zarr.storage import LocalStore, WrapperStore

from proofs_check import closed_forms as cf
from ufm.sweeps import StoreBusyError, StoreWriteError, open_sweep, snake_order, sweep
from ufm.sweeps import _lease, _store

CE = ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=5e-3)
GRID = {"lam_W": [1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0]}  # 7 points: chunks 0, 1 full, 2 short
CHUNK = 3  # the kernel shape test_sweep.py compiles too
NCHUNKS = 3


class Killed(BaseException):
    """What a SIGKILL looks like from inside: nothing after it runs (not an Exception)."""


class FaultyStore(WrapperStore):
    """A local store whose ``set`` runs ``fault(key, n)`` first (``n``: sets so far)."""

    def __init__(self, store, fault):
        super().__init__(store)
        self.fault, self.sets = fault, 0

    async def set(self, key, value, byte_range=None):
        self.sets += 1
        self.fault(key, self.sets)
        await self._store.set(key, value)

    def __reduce__(self):  # pragma: no cover  (never shipped to a worker)
        raise TypeError("FaultyStore stays in its process")


def faulty(path, fault):
    return FaultyStore(LocalStore(str(path)), fault)


def chunk_digests(path, c: int) -> dict[str, str]:
    """SHA-256 of every file of sweep chunk ``c`` (all arrays' Zarr chunk ``c``, ``done``, ``run``)."""
    root, out = pathlib.Path(path), {}
    pat = re.compile(rf"^[^/]+/c/{c}(/|$)")
    for f in sorted(root.rglob("*")):
        rel = f.relative_to(root).as_posix()
        if f.is_file() and pat.match(rel):
            out[rel] = hashlib.sha256(f.read_bytes()).hexdigest()
    assert out, f"no files for chunk {c} under {path}"
    return out


def runs(path) -> np.ndarray:
    return np.asarray(zarr.open_group(str(path), mode="r")["run"][:])


def done(path) -> np.ndarray:
    return np.asarray(zarr.open_group(str(path), mode="r")["done"][:])


def check_values(ds, grid=GRID):
    """Every point solved once and right: the closed-form CE value at each grid point."""
    assert bool(ds.done.all()) and bool(ds.converged.all())
    for i, lw in enumerate(grid["lam_W"]):
        prob = ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy(), lam_W=lw, lam_H=5e-3)
        np.testing.assert_allclose(float(ds.value[i, 0]), cf.ce_family(prob).quantities["value"],
                                   rtol=1e-9, atol=1e-12)


@pytest.fixture
def first_chunk(tmp_path):
    """A store whose chunk 0 is done (by one call); its digests and run id."""
    path = tmp_path / "s.zarr"
    sweep(CE, GRID, store=path, chunk=CHUNK, max_chunks=1)
    assert done(path).tolist() == [True, False, False]
    return path, chunk_digests(path, 0), int(runs(path)[0])


def test_torn_chunk_is_recomputed_and_never_read_as_done(first_chunk):
    """Killed after chunk 1's values are written, before its done flag."""
    path, digest0, run0 = first_chunk

    def kill_before_done(key, n):
        if key == "done/c/1":
            raise Killed

    with pytest.raises(Killed):
        sweep(CE, GRID, store=faulty(path, kill_before_done), chunk=CHUNK)
    raw = zarr.open_group(str(path), mode="r")
    assert np.isfinite(raw["value"][CHUNK:2 * CHUNK]).all()  # the torn chunk's values are there
    assert done(path).tolist() == [True, False, False]  # ... but it is not done
    part = open_sweep(path)  # and it is not read as a result
    assert int(part.done.sum()) == CHUNK and np.isnan(part.value.values[CHUNK:]).all()
    assert (part.result.values[CHUNK:] == -1).all()
    full = sweep(CE, GRID, store=path, chunk=CHUNK)  # resumes: the dead call's lease is stale
    check_values(full)
    r = runs(path)
    assert r[0] == run0 and r[1] == r[2] != run0  # chunk 1 recomputed by the new call
    assert chunk_digests(path, 0) == digest0


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_disk_full_or_read_only_mid_run(first_chunk, code):
    """Every write after the first of chunk 1 fails: one-line OSError, store intact, resumable."""
    path, digest0, run0 = first_chunk

    def fail(key, n):
        if key.startswith("value/c/1") or (code == errno.EROFS and fail.hit):
            fail.hit = True
            raise OSError(code, os.strerror(code))

    fail.hit = False
    with pytest.raises(StoreWriteError) as e:
        sweep(CE, GRID, store=faulty(path, fail), chunk=CHUNK)
    msg = str(e.value)
    assert e.value.errno == code and "\n" not in msg
    assert "chunk 1" in msg and os.strerror(code) in msg and "1 of 3 chunks are done" in msg
    ds = open_sweep(path)  # the store still opens; the finished chunk is intact
    assert int(ds.done.sum()) == CHUNK and chunk_digests(path, 0) == digest0
    full = sweep(CE, GRID, store=path, chunk=CHUNK)
    check_values(full)
    assert runs(path)[0] == run0 and chunk_digests(path, 0) == digest0


def test_cli_store_error_is_one_line(first_chunk, monkeypatch, capsys, tmp_path):
    from ufm.cli._sweep import cmd_sweep
    from ufm.sweeps import _driver

    path, digest0, _ = first_chunk
    real = _store.open_root

    def full_disk(store, mode):
        def fail(key, n):
            if "/c/" in key:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        return real(faulty(store, fail), mode)

    monkeypatch.setattr(_driver, "open_root", full_disk)
    argv = ["--K", "3", "--n", "2", "--d", "4", "--loss", "ce", "--lam-W", "5e-3", "--lam-H", "5e-3",
            "--grid", "lam_W=" + ",".join(map(str, GRID["lam_W"])), "--chunk", str(CHUNK),
            "--store", str(path), "--no-progress"]
    assert cmd_sweep(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("ufm sweep: error:") and "No space left" in err
    monkeypatch.undo()
    assert chunk_digests(path, 0) == digest0 and done(path).tolist() == [True, False, False]


def _lease_of(run, pid, heartbeat, host=None):
    return {"run": run, "pid": pid, "host": host or socket.gethostname(), "heartbeat": heartbeat,
            "started": "2026-01-01T00:00:00Z"}


def _put_lease(path, lease):
    (pathlib.Path(path) / _lease.LEASE_KEY).write_text(json.dumps(lease))


def test_live_lease_refuses_a_second_sweep(first_chunk):
    path, digest0, run0 = first_chunk
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _put_lease(path, _lease_of(4242, other.pid, time.time()))
        with pytest.raises(StoreBusyError) as e:
            sweep(CE, GRID, store=path, chunk=CHUNK)
    finally:
        other.kill()
        other.wait()
    msg = str(e.value)
    assert "\n" not in msg and "run 4242" in msg and f"pid {other.pid}" in msg
    assert done(path).tolist() == [True, False, False] and chunk_digests(path, 0) == digest0
    # the owner is gone (its pid no longer exists on this host): its lease is stale at once
    full = sweep(CE, GRID, store=path, chunk=CHUNK)
    check_values(full)
    r = runs(path)
    assert r[0] == run0 and 4242 not in r and r[1] == r[2]


def test_lease_of_a_silent_host_expires(first_chunk, monkeypatch):
    path, digest0, run0 = first_chunk
    monkeypatch.setattr(_lease, "LEASE_TTL", 30.0)
    _put_lease(path, _lease_of(77, 1, time.time() - 5.0, host="elsewhere"))
    with pytest.raises(StoreBusyError, match="run 77 .*host elsewhere"):
        sweep(CE, GRID, store=path, chunk=CHUNK)
    _put_lease(path, _lease_of(77, 1, time.time() - 31.0, host="elsewhere"))
    sweep(CE, GRID, store=path, chunk=CHUNK)
    assert runs(path)[0] == run0 and 77 not in runs(path) and chunk_digests(path, 0) == digest0


def test_two_sweeps_at_once_one_writes(tmp_path):
    """Two calls start together on a new store: one creates it and computes every chunk, the
    other is refused before creating or solving anything (the run ids are all the winner's)."""
    path = tmp_path / "s.zarr"
    outcome, gate = {}, threading.Barrier(2)

    def one(name):
        gate.wait()
        try:
            outcome[name] = sweep(CE, GRID, store=path, chunk=CHUNK)
        except StoreBusyError as e:
            outcome[name] = e

    threads = [threading.Thread(target=one, args=(n,)) for n in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    refused = [v for v in outcome.values() if isinstance(v, StoreBusyError)]
    won = [v for v in outcome.values() if not isinstance(v, StoreBusyError)]
    assert len(refused) == 1 and len(won) == 1, outcome
    check_values(won[0])
    r = runs(path)
    assert len(set(r.tolist())) == 1 and f"run {r[0]}" in str(refused[0])


def test_fencing_and_done_chunks_are_never_rewritten(first_chunk):
    """A task of a call that lost its lease writes nothing; a done chunk is never written again
    (a rescheduled task after a worker died between ``done`` and its report)."""
    path, digest0, run0 = first_chunk
    root = zarr.open_group(str(path), mode="r+")
    from ufm.sweeps._kernel import PointRecord

    rec = PointRecord(*(np.asarray(root[name][0:CHUNK]) for name in PointRecord._fields))
    with pytest.raises(StoreBusyError, match="lost its lease"):
        _store.write_chunk(root, CE, rec, 1, CHUNK, 2 * CHUNK, 555, str(path))
    assert done(path).tolist() == [True, False, False]
    _lease.acquire(root, 555, str(path))
    try:
        assert _store.write_chunk(root, CE, rec, 0, 0, CHUNK, 555, str(path)) == CHUNK
    finally:
        _lease.release(root, 555)
    assert chunk_digests(path, 0) == digest0 and runs(path)[0] == run0


@pytest.mark.parametrize("kind", ["path", "file", "memory"])
def test_store_anywhere_and_xarray_reads_it(tmp_path, kind):
    url = {"path": str(tmp_path / "s.zarr"), "file": (tmp_path / "s.zarr").as_uri(),
           "memory": f"memory://ufm-test-{os.getpid()}-{time.monotonic_ns()}"}[kind]
    sweep(CE, GRID, store=url, chunk=CHUNK, max_chunks=2)
    part = xr.open_zarr(url, consolidated=False)  # without ufm: named dimensions, coordinates
    assert part["value"].dims == ("point", "seed") and part["G_H"].dims[2:] == ("class_i", "class_j")
    assert set(part.coords) >= {"lam_W", "seed"} and part["done"].dims == ("chunk",)
    order = snake_order([len(GRID["lam_W"])])
    np.testing.assert_array_equal(part["lam_W"].values, np.asarray(GRID["lam_W"])[order])
    assert part["done"].values.tolist() == [True, True, False]
    finished = part.where(part["done"].isel(chunk=part["point"] // part.attrs["chunk"]))  # the guide's recipe
    assert np.isfinite(finished["value"].values[:2 * CHUNK]).all()
    assert np.isnan(finished["value"].values[2 * CHUNK:]).all()
    full = sweep(CE, GRID, store=url, chunk=CHUNK)
    check_values(full)
    whole = xr.open_zarr(url, consolidated=False)
    ours = open_sweep(url)
    np.testing.assert_allclose(whole["value"].values[:, 0],
                               ours.value.sel(lam_W=whole["lam_W"].values).values[:, 0], rtol=0, atol=0)
    grid = whole.swap_dims(point="lam_W")["value"]  # back on the grid
    np.testing.assert_array_equal(grid.sel(lam_W=GRID["lam_W"]).values, ours.value.values)


def _old_store(path, meta, P, K, D):
    """A store in the layout of format ufm.sweep/2: no dimension names, no coordinate arrays."""
    root = zarr.open_group(str(path), mode="w")
    S, C = meta["seeds"], meta["chunk"]
    for name in _store.SCALARS + ("phase", "G_H", "G_W"):
        dtype = _store._DTYPES.get(name, "f8")
        tail = {"G_H": (K, K), "G_W": (D, D)}.get(name, ())
        fill = False if dtype == "bool" else (-1 if dtype[0] == "i" else np.nan)
        root.create_array(name, shape=(P, S, *tail), chunks=(C, S, *tail), dtype=dtype, fill_value=fill)
    root.create_array("done", shape=(-(-P // C),), chunks=(1,), dtype="bool", fill_value=False)
    root.create_array("run", shape=(-(-P // C),), chunks=(1,), dtype="i8", fill_value=0)
    root.attrs.update({**{k: v for k, v in meta.items() if k != "results"}, "format": "ufm.sweep/2"})


def test_stores_of_the_previous_format_resume_others_are_refused(tmp_path):
    first = sweep(CE, GRID, store=tmp_path / "new.zarr", chunk=CHUNK, max_chunks=0)
    meta = dict(zarr.open_group(str(tmp_path / "new.zarr"), mode="r").attrs)
    _old_store(tmp_path / "old.zarr", meta, len(GRID["lam_W"]), 3, first.G_W.shape[-1])
    check_values(sweep(CE, GRID, store=tmp_path / "old.zarr", chunk=CHUNK))
    assert zarr.open_group(str(tmp_path / "old.zarr"), mode="r").attrs["format"] == "ufm.sweep/2"
    zarr.open_group(str(tmp_path / "new.zarr"), mode="r+").attrs["format"] = "ufm.sweep/1"
    with pytest.raises(ValueError, match=r"format 'ufm.sweep/1'.*cannot resume") as e:
        sweep(CE, GRID, store=tmp_path / "new.zarr", chunk=CHUNK)
    assert "\n" not in str(e.value)


def blowup(z, y, c):
    """Cross-entropy, and NaN once the logits' squared norm passes ``c``."""
    import jax
    import jax.numpy as jnp

    return -jax.nn.log_softmax(z)[y] + jnp.where(jnp.sum(z**2) > c, jnp.nan, 0.0)


def test_failed_points_are_stored_and_counted(tmp_path):
    """A user's loss that returns NaN at one grid point: that point is stored as ``nonfinite``,
    the others are solved, and the command's summary counts it."""
    from ufm.cli._sweep import _failed

    prob = ufm.UFM(K=3, n=2, d=4, loss=ufm.CustomLoss(blowup, c=1e9), lam_W=5e-3, lam_H=5e-3)
    ds = sweep(prob, {"loss.c": [1e9, 1e-12, 1e8]}, store=tmp_path / "s.zarr", chunk=3)
    assert bool(ds.done.all())
    names = ds.result_name.values[:, 0].tolist()
    assert names == ["successful", "nonfinite", "successful"]
    assert int(ds.result.values[1, 0]) == int(ufm.RESULTS.nonfinite) and np.isnan(ds.value.values[1, 0])
    assert _failed(ds) == {"nonfinite": 1}
    stored = xr.open_zarr(tmp_path / "s.zarr", consolidated=False)
    assert sorted(stored["result"].values[:, 0].tolist()) == [0, 0, int(ufm.RESULTS.nonfinite)]


def test_problem_travels_to_a_worker_in_float64(tmp_path):
    """A Dask worker unpickles a task before float64 is on: the plan travels as bytes and is
    unpacked after (in a fresh process with JAX's default float32)."""
    from ufm.sweeps._driver import _plan, ship

    import jax

    plan = _plan(CE, GRID, 1, CHUNK, jax.local_devices(), False, gtol=1e-10, order="auto", max_steps=10_000,
                 max_newton=100, certify="auto")
    (tmp_path / "plan.bin").write_bytes(ship(plan))
    code = ("import sys; from ufm.sweeps._driver import receive; "
            "p = receive(open(sys.argv[1], 'rb').read()).prob; print(p.lam_H.dtype, repr(float(p.lam_H)))")
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("JAX_ENABLE_X64", None)
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "plan.bin")], env=env,
                         capture_output=True, text=True, timeout=120, check=True).stdout.split()
    assert out == ["float64", repr(5e-3)]


def test_points_that_cannot_certify_are_stored_with_their_code(tmp_path):
    """A solve that cannot certify within its steps (``max_steps`` far below what the problem needs):
    each point is stored with the ``max_steps_reached`` code and a finite value no lower than the
    global minimum (the closed form), marked done (a finished, honest answer: a resume does not
    rewrite it), not converged, and the summary counts it."""
    from ufm.cli._sweep import _failed

    grid, path = {"lam_W": [1e-3, 1e-2, 1e-1]}, tmp_path / "s.zarr"
    ds = sweep(CE, grid, store=path, chunk=3, max_steps=2, max_newton=0, certify="local", order="first")
    assert bool(ds.done.all()) and not bool(ds.converged.any())
    assert ds.result_name.values[:, 0].tolist() == ["max_steps_reached"] * 3
    minima = [cf.ce_family(dataclasses.replace(CE, lam_W=lw)).quantities["value"] for lw in grid["lam_W"]]
    assert np.all(np.isfinite(ds.value.values[:, 0]))
    assert np.all(ds.value.values[:, 0] >= np.asarray(minima) - 1e-12)  # 1e-12: float64 rounding
    assert _failed(ds) == {"max_steps_reached": 3}
    before = chunk_digests(path, 0)
    again = sweep(CE, grid, store=path, chunk=3, max_steps=2, max_newton=0, certify="local", order="first")
    assert chunk_digests(path, 0) == before
    assert again.result_name.values[:, 0].tolist() == ["max_steps_reached"] * 3

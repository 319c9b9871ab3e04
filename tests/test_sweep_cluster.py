"""A real Dask cluster, started as users start it, and the faults of processes that die.

The fixture runs ``dask scheduler`` and two ``dask worker`` processes (Dask's own command-line
tools, on 127.0.0.1 only, no nanny: a killed worker stays dead), each bounded in time and torn
down by the test. Sweeps reach it as users do: ``ufm sweep SPEC --scheduler ADDRESS`` and
``ufm.sweep(..., client=Client(ADDRESS))``. Every test here compiles the kernel in fresh
processes: slow.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import ufm

for _extra in ("xarray", "zarr", "tqdm", "distributed"):
    pytest.importorskip(_extra)
from distributed import Client

from ufm.sweeps import open_sweep, sweep
from tests.test_sweep_faults import CE, CHUNK, GRID, NCHUNKS, check_values, chunk_digests, done, runs

pytestmark = pytest.mark.slow
ROOT = pathlib.Path(__file__).resolve().parents[1]
BIN = pathlib.Path(sys.executable).parent
LIMIT = 600  # seconds any process of these tests may live
SPEC = f"""
[problem]
K = 3
n = 2
d = 4
loss = "ce"
lam_W = 5e-3
lam_H = 5e-3

[sweep]
chunk = {CHUNK}
grid = {{ lam_W = {GRID["lam_W"]} }}
"""


def _env():
    env = dict(os.environ, PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)
    return env


_SPAWNED: list[subprocess.Popen] = []


def _spawn(args, log, **kw):
    """A process of this test (killed at its end if still running: :func:`_reap`)."""
    p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=_env(), cwd=ROOT, **kw)
    _SPAWNED.append(p)
    return p


@pytest.fixture(autouse=True)
def _reap():
    yield
    _stop(_SPAWNED[::-1])
    _SPAWNED.clear()


def _stop(procs):
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


@pytest.fixture
def cluster(tmp_path):
    """``(address, worker processes)``: a scheduler and two single-threaded workers."""
    sched_file = tmp_path / "scheduler.json"
    log = open(tmp_path / "cluster.log", "w")
    procs = [_spawn([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
                     "--no-dashboard", "--scheduler-file", str(sched_file)], log)]
    try:
        t0 = time.monotonic()
        while not sched_file.exists() or not sched_file.read_text().strip():
            assert time.monotonic() - t0 < 60, "the scheduler did not start"
            time.sleep(0.2)
        address = json.loads(sched_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        workers = [_spawn([str(BIN / "dask"), "worker", address, "--host", "127.0.0.1", "--nthreads",
                           "1", "--no-nanny", "--no-dashboard", "--name", f"w{i}", "--death-timeout",
                           "60"], log, start_new_session=True) for i in range(2)]
        procs += workers
        with Client(address, timeout=30) as c:
            c.wait_for_workers(2, timeout=120)
        yield address, workers
    finally:
        _stop(procs[1:] + procs[:1])
        log.close()


def _ufm_sweep(tmp_path, *args, name="cli"):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC)
    log = open(tmp_path / f"{name}.log", "w")
    return _spawn([sys.executable, "-m", "ufm", "sweep", str(spec), "--no-progress", *args], log), \
        tmp_path / f"{name}.log"


def test_cli_and_client_on_a_real_cluster(cluster, tmp_path):
    address, _ = cluster
    proc, log = _ufm_sweep(tmp_path, "--scheduler", address, "--store", str(tmp_path / "cli.zarr"))
    assert proc.wait(timeout=LIMIT) == 0, log.read_text()
    assert "7 points x 1 starts" in log.read_text()
    with Client(address, timeout=30) as client:
        ds = sweep(CE, GRID, store=tmp_path / "lib.zarr", chunk=CHUNK, client=client)
    check_values(ds)
    check_values(open_sweep(tmp_path / "cli.zarr"))
    for store in ("cli.zarr", "lib.zarr"):
        r = runs(tmp_path / store)
        assert len(set(r.tolist())) == 1 and r[0] != 0  # one call wrote every chunk
    np.testing.assert_array_equal(open_sweep(tmp_path / "cli.zarr").value.values, ds.value.values)


def test_unreachable_scheduler_is_one_line(tmp_path):
    proc, log = _ufm_sweep(tmp_path, "--scheduler", "tcp://127.0.0.1:9", "--store",
                           str(tmp_path / "s.zarr"))
    assert proc.wait(timeout=LIMIT) == 2
    lines = log.read_text().strip().splitlines()
    assert len(lines) == 1 and "cannot reach the Dask scheduler" in lines[0], lines


def _executing(client) -> dict:
    return client.run(lambda dask_worker: dask_worker.state.executing_count)


def test_worker_killed_mid_chunk(cluster, tmp_path):
    """SIGKILL one worker while it runs a chunk: the scheduler reruns it on the other worker."""
    address, workers = cluster
    result = {}
    with Client(address, timeout=30) as client:
        pids = client.run(os.getpid)

        def run():
            result["ds"] = sweep(CE, GRID, store=tmp_path / "s.zarr", chunk=CHUNK, client=client)

        t = threading.Thread(target=run)
        t.start()
        t0 = time.monotonic()
        while True:  # a worker busy with a chunk (compiling or solving it)
            busy = [w for w, n in _executing(client).items() if n > 0]
            if busy:
                break
            assert time.monotonic() - t0 < 120, "no chunk started"
            time.sleep(0.2)
        victim = busy[0]
        before = done(tmp_path / "s.zarr")
        os.kill(pids[victim], signal.SIGKILL)
        t.join(timeout=LIMIT)
    assert not t.is_alive()
    assert not before.all()
    check_values(result["ds"])
    r = runs(tmp_path / "s.zarr")
    assert len(set(r.tolist())) == 1  # one call, every chunk once
    assert sum(p.poll() is not None for p in workers) == 1  # the victim is dead, the other ran on


def test_client_killed_then_resumed(cluster, tmp_path):
    """SIGKILL ``ufm sweep --scheduler`` after its first chunk; the same command resumes and
    computes only the chunks that were not done."""
    address, _ = cluster
    store = tmp_path / "s.zarr"
    grid = {"lam_W": [float(x) for x in np.geomspace(1e-3, 1.0, 4 * CHUNK * 3)]}  # 12 chunks
    spec_grid = SPEC.replace(f'grid = {{ lam_W = {GRID["lam_W"]} }}', f"grid = {{ lam_W = {grid['lam_W']} }}")
    (tmp_path / "spec.toml").write_text(spec_grid)
    cmd = [sys.executable, "-m", "ufm", "sweep", str(tmp_path / "spec.toml"), "--no-progress",
           "--scheduler", address, "--store", str(store)]
    first = _spawn(cmd, open(tmp_path / "first.log", "w"))
    t0 = time.monotonic()
    while not (store.exists() and (store / "done").exists() and done(store).any()):
        assert first.poll() is None, (tmp_path / "first.log").read_text()
        assert time.monotonic() - t0 < 300, "no chunk finished"
        time.sleep(0.1)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    with Client(address, timeout=30) as client:  # tasks already running finish (their writes
        t0 = time.monotonic()                  # are the dead call's), then the cluster is idle
        while any(_executing(client).values()):
            assert time.monotonic() - t0 < 300
            time.sleep(0.2)
    before = done(store)
    assert before.any() and not before.all(), before
    digests = {c: chunk_digests(store, c) for c in np.flatnonzero(before)}
    run1 = set(runs(store)[before].tolist())
    assert len(run1) == 1
    second = _spawn(cmd, open(tmp_path / "second.log", "w"))
    assert second.wait(timeout=LIMIT) == 0, (tmp_path / "second.log").read_text()
    ds = open_sweep(store)
    assert bool(ds.done.all()) and bool(ds.converged.all())
    r = runs(store)
    assert set(r[before].tolist()) == run1 and len(set(r[~before].tolist())) == 1
    assert set(r[~before].tolist()).isdisjoint(run1)  # only what was not done, by the new call
    assert {c: chunk_digests(store, c) for c in np.flatnonzero(before)} == digests


KILL_BEFORE_DONE = """
import os, signal, sys
import jax
jax.config.update("jax_enable_x64", True)
import ufm
from zarr.storage import LocalStore, WrapperStore

class KillBeforeDone(WrapperStore):
    async def set(self, key, value, byte_range=None):
        if key == "done/c/1":
            os.kill(os.getpid(), signal.SIGKILL)
        await self._store.set(key, value)

CE = ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=5e-3)
ufm.sweep(CE, {"lam_W": %r}, store=KillBeforeDone(LocalStore(sys.argv[1])), chunk=%d)
"""


def test_process_killed_between_values_and_done(tmp_path):
    """A real SIGKILL between a chunk's values and its done flag: the lease it leaves behind is
    stale (its process is gone), the torn chunk is recomputed, the finished one untouched."""
    store = tmp_path / "s.zarr"
    script = tmp_path / "kill.py"
    script.write_text(KILL_BEFORE_DONE % (GRID["lam_W"], CHUNK))
    p = _spawn([sys.executable, str(script), str(store)], open(tmp_path / "kill.log", "w"))
    assert p.wait(timeout=LIMIT) == -signal.SIGKILL, (tmp_path / "kill.log").read_text()
    assert done(store).tolist() == [True, False, False]
    assert (store / "ufm_lease.json").exists()  # left by the dead process
    run1, digest0 = int(runs(store)[0]), chunk_digests(store, 0)
    assert int(runs(store)[1]) == run1  # chunk 1: values and run id written, done not
    assert np.isnan(open_sweep(store).value.values[CHUNK:]).all()  # never read as a result
    check_values(sweep(CE, GRID, store=store, chunk=CHUNK))
    r = runs(store)
    assert r[0] == run1 and r[1] == r[2] != run1 and chunk_digests(store, 0) == digest0
    assert not (store / "ufm_lease.json").exists()


def test_two_commands_on_one_store_at_once(tmp_path):
    """Two ``ufm sweep`` processes started together on one store: no chunk is computed twice.
    Either the second is refused with one line naming the first, or (started after the first
    finished) it finds every chunk done and computes nothing."""
    store = tmp_path / "s.zarr"
    procs = [_ufm_sweep(tmp_path, "--store", str(store), name=n) for n in "ab"]
    codes = [p.wait(timeout=LIMIT) for p, _ in procs]
    assert sorted(codes) in ([0, 0], [0, 2]), [log.read_text() for _, log in procs]
    r = runs(store)
    assert done(store).all() and len(set(r.tolist())) == 1 and r.size == NCHUNKS
    for code, (_, log) in zip(codes, procs):
        if code == 2:
            lines = log.read_text().strip().splitlines()
            assert len(lines) == 1 and f"run {r[0]}" in lines[0] and "being written" in lines[0]
    check_values(open_sweep(store))


def test_jobqueue_local_cluster(tmp_path, monkeypatch):
    """dask-jobqueue's own code path (job scripts that start workers), run as local processes
    (its LocalJob runs the script's worker command without a shell: the environment is ours)."""
    local = pytest.importorskip("dask_jobqueue.local")
    for key, value in _env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    with local.LocalCluster(cores=1, processes=1, memory="2GB", log_directory=str(tmp_path),
                            scheduler_options={"host": "127.0.0.1", "dashboard_address": None}) as cluster:
        cluster.scale(jobs=2)
        with Client(cluster) as client:
            client.wait_for_workers(2, timeout=120)
            ds = sweep(CE, GRID, store=tmp_path / "s.zarr", chunk=CHUNK, client=client)
    check_values(ds)
    assert len(set(runs(tmp_path / "s.zarr").tolist())) == 1


def test_thousand_points_cluster_matches_local(cluster, tmp_path):
    """examples/ce_zero_1000.toml on the two-worker cluster and locally: the same store contents
    (docs/guide/scale.md times the same two commands)."""
    address, _ = cluster
    spec = str(ROOT / "examples" / "ce_zero_1000.toml")
    base = [sys.executable, "-m", "ufm", "sweep", spec, "--no-progress"]
    local = _spawn(base + ["--store", str(tmp_path / "l.zarr")], open(tmp_path / "l.log", "w"))
    assert local.wait(timeout=LIMIT) == 0, (tmp_path / "l.log").read_text()
    remote = _spawn(base + ["--store", str(tmp_path / "c.zarr"), "--scheduler", address],
                    open(tmp_path / "c.log", "w"))
    assert remote.wait(timeout=LIMIT) == 0, (tmp_path / "c.log").read_text()
    a, b = open_sweep(tmp_path / "l.zarr"), open_sweep(tmp_path / "c.zarr")
    assert a.sizes["lam_W"] * a.sizes["lam_H"] == 1000 and bool(b.done.all())
    np.testing.assert_allclose(b.value.values, a.value.values, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(b.phase.values, a.phase.values)
    for store in ("l.zarr", "c.zarr"):
        assert len(set(runs(tmp_path / store).tolist())) == 1

"""The ufm command line: solve, flow, sweep, plot."""

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import ufm
from ufm.cli import main

_missing = [m for m in ("xarray", "zarr", "tqdm", "matplotlib") if importlib.util.find_spec(m) is None]
needs_sweeps = pytest.mark.skipif(bool(_missing), reason=f"needs the sweeps and plot extras (missing {_missing})")

ROOT = Path(__file__).resolve().parents[1]
PROBLEM = ["--K", "3", "--n", "2", "--d", "4", "--loss", "ce", "--lam-W", "5e-3", "--lam-H", "5e-3"]


def test_help_teaches_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for cmd in ("solve", "flow", "sweep", "plot", "verify", "examples/", "--json"):
        assert cmd in out


@pytest.mark.parametrize(
    "argv, named",
    [
        (["solve", "--K", "1", "--n", "2", "--d", "4", "--lam-W", "1e-3", "--lam-H", "1e-3"], "K"),
        (["solve", "--n", "2", "--d", "4", "--lam-W", "1e-3", "--lam-H", "1e-3"], "--K"),
        (["solve", *PROBLEM[:-2], "--lam-H", "-1"], "lam_H"),
        (["solve", *PROBLEM, "--lam-b", "free"], "--lam-b"),
        (["sweep", *PROBLEM, "--grid", "lam_Q=1,2"], "lam_Q"),
        (["sweep", *PROBLEM, "--grid", "lam_W=log:1e-3:1e-1"], "--grid"),
        (["sweep", *PROBLEM, "--grid", "lam_W=1e-3,-1"], "lam_W"),
        (["sweep", *PROBLEM], "--grid"),
        (["plot", "/nonexistent/store.zarr"], "store"),
    ],
)
def test_errors_name_the_flag(argv, named, capsys, tmp_path):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert named in err, err


def test_spec_file_unknown_key_is_named(tmp_path, capsys):
    spec = tmp_path / "bad.toml"
    spec.write_text('[problem]\nK = 3\nn = 2\nd = 4\nlam_W = 1e-3\nlam_H = 1e-3\nlamW = 2\n')
    assert main(["solve", str(spec)]) == 2
    assert "lamW" in capsys.readouterr().err


def test_solve_json_is_the_certified_minimizer(capsys):
    assert main(["solve", *PROBLEM, "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    prob = ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=5e-3)
    ref = ufm.minimize(prob, seed=0)
    np.testing.assert_allclose(rec["value"], ref.value, rtol=1e-10)
    assert rec["converged"] and rec["phase"] == "simplex_etf"
    assert rec["kkt"] <= 1e-10 * max(1.0, abs(rec["value"]))


@needs_sweeps
def test_sweep_then_plot_from_the_store(tmp_path, capsys):
    store = str(tmp_path / "s.zarr")
    # a spec file, overridden by a flag; the same kernel shape as tests/test_sweep.py (chunk 3)
    spec = tmp_path / "spec.toml"
    spec.write_text('[problem]\nK = 3\nn = 2\nd = 4\nloss = "ce"\nlam_W = 5e-3\nlam_H = 1.0\n'
                    '[sweep]\nchunk = 3\n[sweep.grid]\nlam_W = [1e-3, 1e-2, 0.1, 0.2, 0.3, 0.4]\n')
    assert main(["sweep", str(spec), "--lam-H", "5e-3", "--store", store, "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["points"] == 6 and rec["converged"] == 6
    # zero solution where sqrt(n lam_W lam_H) >= 1/K, i.e. lam_W >= 1/(K^2 n lam_H)
    lw = np.array([1e-3, 1e-2, 0.1, 0.2, 0.3, 0.4])
    assert rec["phases"].get("zero", 0) == int(np.sum(lw > 1 / (9 * 2 * 5e-3)))
    png = tmp_path / "p.png"
    assert main(["plot", store, "--out", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _done(store):
    import zarr

    try:
        return np.asarray(zarr.open_group(store, mode="r")["done"][:])
    except Exception:  # the store is being created
        return None


@needs_sweeps
@pytest.mark.slow
def test_thousand_point_sweep_survives_a_kill_and_resumes(tmp_path):
    """The acceptance run: kill the command halfway, rerun it, every point stored once."""
    import zarr

    store = str(tmp_path / "ce1000.zarr")
    cmd = [sys.executable, "-m", "ufm.cli", "sweep", str(ROOT / "examples" / "ce_zero_1000.toml"),
           "--store", store, "--no-progress"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 600
    while time.time() < deadline:
        done = _done(store)
        if done is not None and done.sum() >= done.size // 2:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = _done(store)
    assert 0 < done.sum() < done.size, "the kill should land halfway"
    root = zarr.open_group(store, mode="r")
    first = np.flatnonzero(done)
    runs = np.asarray(root["run"][:])[first].copy()
    C = int(root.attrs["chunk"])
    mask = np.repeat(done, C)
    values = np.asarray(root["value"][:])[mask].copy()
    out = subprocess.run(cmd + ["--json"], env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    root = zarr.open_group(store, mode="r")
    assert np.asarray(root["done"][:]).all()
    np.testing.assert_array_equal(np.asarray(root["run"][:])[first], runs)  # nothing recomputed
    np.testing.assert_array_equal(np.asarray(root["value"][:])[mask], values)
    assert np.isfinite(np.asarray(root["value"][:])).all()  # every point, once, at its place
    assert json.loads(out.stdout)["points"] == 1000
    png = tmp_path / "ce1000.png"
    plot = subprocess.run([sys.executable, "-m", "ufm.cli", "plot", store, "--out", str(png),
                           "--threshold", "lam_W*lam_H=0.0055556"], env=env, capture_output=True,
                          text=True, timeout=300)
    assert plot.returncode == 0, plot.stderr
    assert png.read_bytes()[:4] == b"\x89PNG"


@needs_sweeps
def test_flow_json_decreases_the_objective_and_plots(tmp_path, capsys):
    png = tmp_path / "flow.png"
    assert main(["flow", *PROBLEM, "--t1", "50", "--points", "4", "--json", "--plot", str(png)]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert len(rec["times"]) == 4 and set(rec["metrics"]) >= {"nc1", "nc3"}
    assert np.all(np.diff(rec["values"]) <= 1e-12)  # a gradient flow never increases f
    assert png.read_bytes()[:4] == b"\x89PNG"


def _fresh(code: str, **env) -> str:
    """Run ``code`` in a new Python process (JAX's backend not started) and return its stdout."""
    base = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "UFM_COMPILE")}
    out = subprocess.run([sys.executable, "-c", code], env=dict(base, PYTHONPATH=str(ROOT), **env),
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip()


def test_sweep_command_starts_one_host_device_per_core():
    """``ufm sweep`` runs a chunk per device: the command asks XLA for one host device per core
    (after ``import ufm``, which imports jax but starts no backend)."""
    code = "import ufm.cli as c; c._host_devices(); import jax; print(jax.device_count('cpu'))"
    assert int(_fresh(code)) == (os.cpu_count() or 1)
    # a count the user chose wins
    code = "import ufm.cli as c; c._host_devices(); import jax; print(jax.device_count('cpu'))"
    assert int(_fresh(code, XLA_FLAGS="--xla_force_host_platform_device_count=3")) == 3


def test_compile_profile_sets_flags_only_before_the_backend_starts():
    code = ("import os, ufm.cli as c; p = c.use_compile_profile('{d}'); "
            "print(p, '|', os.environ.get('XLA_FLAGS', ''))")
    fast = " ".join(ufm.cli.FAST_COMPILE_FLAGS)
    prof, flags = _fresh(code.format(d="fast")).split("|")
    assert prof.strip() == "fast" and all(f in flags for f in ufm.cli.FAST_COMPILE_FLAGS)
    prof, flags = _fresh(code.format(d="fast"), UFM_COMPILE="optimized").split("|")
    assert prof.strip() == "optimized" and flags.strip() == ""
    prof, flags = _fresh(code.format(d="optimized"), UFM_COMPILE="fast").split("|")
    assert prof.strip() == "fast" and fast in flags
    # a flag the user set is kept, not duplicated
    prof, flags = _fresh(code.format(d="fast"), XLA_FLAGS="--xla_backend_optimization_level=2").split("|")
    assert "--xla_backend_optimization_level=2" in flags and "optimization_level=0" not in flags
    assert prof.strip() == "optimized"
    # after the backend started nothing changes
    late = ("import os, jax, ufm.cli as c; jax.numpy.zeros(1).block_until_ready(); "
            "p = c.use_compile_profile('fast'); print(p, '|', os.environ.get('XLA_FLAGS', ''))")
    prof, flags = _fresh(late).split("|")
    assert prof.strip() == "optimized" and flags.strip() == ""


def test_compile_profile_error_names_the_variable(monkeypatch, capsys):
    monkeypatch.setenv("UFM_COMPILE", "quick")
    assert main(["solve", *PROBLEM]) == 2
    assert "UFM_COMPILE" in capsys.readouterr().err

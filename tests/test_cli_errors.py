"""Every failure a user can cause ends in one line on stderr naming the cause and the fix, exit
status 2 for bad input and 1 for a failed check; ``--debug`` shows the traceback instead."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import ufm
from ufm.cli import main
from ufm.solvers import SolveError

ROOT = Path(__file__).resolve().parents[1]
PROBLEM = ["--K", "3", "--n", "2", "--d", "4", "--loss", "ce", "--lam-W", "5e-3", "--lam-H", "5e-3"]


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"ufm {ufm.__version__}"


def test_console_script_version_and_help_in_a_fresh_process():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-m", "ufm", "--version"], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == f"ufm {ufm.__version__}"


@pytest.mark.parametrize("command", ["solve", "flow", "sweep", "plot"])
def test_every_command_has_help(command, capsys):
    assert main([command, "--help"]) == 0
    assert f"usage: ufm {command}" in capsys.readouterr().out


@pytest.mark.parametrize("argv, named", [
    (["bogus"], "bogus"),
    (["solve", "--K", "x"], "--K"),
    (["solve", *PROBLEM, "--order", "third"], "--order"),
    (["flow", *PROBLEM, "--points", "1"], "points"),
    (["flow", *PROBLEM, "--metrics", "nc1,nc9"], "metrics"),
    (["flow", *PROBLEM, "--momentum", "1.5", "--dt", "0.1"], "momentum"),
    (["solve", *PROBLEM, "--family", "deep"], "problem.d (--d) is not a key of family 'deep'"),
    (["solve", "--family", "deep", "--K", "3", "--n", "2", "--lam-W", "1e-3", "--lam-H", "1e-3"], "widths"),
    (["solve", *PROBLEM, "--certify", "global", "--loss", "focal"], "global"),
])
def test_bad_input_is_one_line_and_exit_2(argv, named, capsys):
    assert main(argv) == 2
    assert named in _one_line(capsys)


def test_a_diverging_flow_is_one_line_and_exit_1(capsys):
    # fixed Euler steps far above 2 / (largest Hessian eigenvalue) blow up
    assert main(["flow", *PROBLEM, "--dt", "100", "--t1", "1000", "--points", "3"]) == 1
    err = _one_line(capsys)
    assert "dt" in err and "smaller dt" in err


def test_debug_shows_the_traceback():
    with pytest.raises(SolveError):
        main(["--debug", "flow", *PROBLEM, "--dt", "100", "--t1", "1000", "--points", "3"])
    with pytest.raises(ValueError):
        main(["solve", *PROBLEM[:-2], "--lam-H", "-1", "--debug"])


def test_an_unbracketable_boundary_is_one_line_and_exit_1(monkeypatch, capsys):
    def no_bracket(*a, **k):
        raise RuntimeError("locate_boundary: no certified solve at lam_W=0.5")

    monkeypatch.setattr("ufm.cli._sweep.locate_boundary", no_bracket)
    monkeypatch.setattr("ufm.cli._sweep._run", lambda prob, s, args: (_FakeDataset(), 1.0))
    assert main(["sweep", *PROBLEM, "--grid", "lam_W=1e-3", "--boundary", "lam_W:1e-3:1"]) == 1
    err = _one_line(capsys)
    assert "lam_W=0.5" in err and "cannot be bracketed" in err and "--boundary" in err


class _FakeDataset(dict):
    """Stands for a sweep Dataset: the boundary runs after the sweep."""


@pytest.mark.parametrize("missing, argv, extra", [
    ("zarr", ["sweep", *PROBLEM, "--grid", "lam_W=1e-3", "--store", "{tmp}/s.zarr", "--no-progress"],
     "sweeps"),
    ("matplotlib.pyplot", ["flow", *PROBLEM, "--plot", "{tmp}/f.png"], "plot"),
    ("matplotlib.pyplot", ["solve", *PROBLEM, "--spectrum", "{tmp}/s.png"], "plot"),
    ("distributed", ["sweep", *PROBLEM, "--grid", "lam_W=1e-3", "--dask", "local:1", "--no-progress"],
     "sweeps"),
])
def test_a_missing_extra_names_the_pip_line(missing, argv, extra, monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, missing, None)  # import of it fails with ModuleNotFoundError

    def no_solve(*a, **k):
        raise AssertionError("the missing extra should be named before solving")

    monkeypatch.setattr("ufm.cli._commands.minimize", no_solve)
    monkeypatch.setattr("ufm.cli._commands.gradient_flow", no_solve)
    assert main([a.format(tmp=tmp_path) for a in argv]) == 1
    assert f"pip install 'ufm[{extra}]'" in _one_line(capsys)


def test_not_certified_is_exit_1_with_the_reason(capsys):
    # a tolerance below float64 resolution cannot be certified: the solve reports it, exit 1
    assert main(["solve", *PROBLEM, "--gtol", "1e-300", "--json"]) == 1
    out = capsys.readouterr()
    assert '"converged": false' in out.out
    assert out.err.count("\n") == 1 and "not certified" in out.err and "max_steps" in out.err

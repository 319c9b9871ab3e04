"""``python -m ufm`` and ``python -m ufm.cli`` run the command cleanly; ``ufm sweep`` takes
``--starts`` / ``starts`` and still reads the old name ``seeds`` with a printed deprecation line."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ufm.cli import main

ROOT = Path(__file__).resolve().parents[1]
PROBLEM = ["--K", "3", "--n", "2", "--d", "4", "--loss", "ce", "--lam-W", "5e-3", "--lam-H", "5e-3"]


@pytest.mark.parametrize("module", ["ufm", "ufm.cli"])
def test_python_dash_m_runs_the_command_without_a_runpy_warning(module):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-W", "always", "-m", module, "--help"], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "usage: ufm COMMAND" in out.stdout
    assert "RuntimeWarning" not in out.stderr, out.stderr


def test_deprecated_seeds_spec_key_prints_a_deprecation_line(tmp_path, capsys):
    spec = tmp_path / "old.toml"
    # a bad grid field stops the command after the settings were read, before any solve
    spec.write_text('[problem]\nK = 3\nn = 2\nd = 4\nlam_W = 1e-3\nlam_H = 1e-3\n'
                    '[sweep]\nseeds = 1\n[sweep.grid]\nlam_Q = [1.0]\n')
    assert main(["sweep", str(spec)]) == 2
    err = capsys.readouterr().err
    assert "'seeds' is deprecated; use 'starts'" in err and "lam_Q" in err


def test_deprecated_seeds_flag_prints_a_deprecation_line(capsys):
    assert main(["sweep", *PROBLEM, "--seeds", "1", "--grid", "lam_Q=1"]) == 2
    err = capsys.readouterr().err
    assert "--seeds is deprecated; use --starts" in err and "lam_Q" in err


def test_starts_and_seeds_together_are_refused(tmp_path, capsys):
    assert main(["sweep", *PROBLEM, "--seeds", "1", "--starts", "1", "--grid", "lam_W=1e-3"]) == 2
    assert "--starts" in capsys.readouterr().err
    spec = tmp_path / "both.toml"
    spec.write_text('[sweep]\nseeds = 1\nstarts = 1\n[sweep.grid]\nlam_W = [1e-3]\n')
    assert main(["sweep", str(spec), *PROBLEM]) == 2
    assert "starts only" in capsys.readouterr().err


def test_starts_is_the_spec_key_without_a_deprecation_line(tmp_path, capsys):
    spec = tmp_path / "new.toml"
    spec.write_text('[sweep]\nstarts = 1\n[sweep.grid]\nlam_Q = [1.0]\n')
    assert main(["sweep", str(spec), *PROBLEM]) == 2
    err = capsys.readouterr().err
    assert "deprecated" not in err and "lam_Q" in err

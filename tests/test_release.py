"""The release: metadata that says what it is, one version, and a wheel that works outside the checkout."""

from __future__ import annotations

import importlib.metadata
import json
import os
import pathlib
import subprocess
import sys
import tomllib
import venv

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_release_files_exist():
    for name in ("LICENSE", "CITATION.cff", "CHANGELOG.md", "README.md", "ufm/py.typed"):
        assert (ROOT / name).is_file(), name
    assert "Apache License" in (ROOT / "LICENSE").read_text()
    cff = (ROOT / "CITATION.cff").read_text()
    assert f"version: {PYPROJECT['project']['version']}" in cff


def test_one_version():
    """The version is written once (pyproject.toml); ufm reads it from the installed metadata."""
    import ufm

    assert ufm.__version__ == importlib.metadata.version("ufm") == PYPROJECT["project"]["version"]
    assert "__version__ =" not in "".join(line for line in (ROOT / "ufm" / "__init__.py").read_text().splitlines()
                                          if not line.startswith("__version__ = _package_version()"))


def test_declared_python_matches_the_code():
    """tomllib (3.11) is imported by the CLI: requires-python says so."""
    assert PYPROJECT["project"]["requires-python"].replace(" ", "") == ">=3.11"
    assert sys.version_info >= (3, 11)


def test_every_imported_third_party_package_is_declared():
    """scipy, optax, sympy, numpy, jax: each top-level import of ufm and proofs_check is a dependency."""
    import ast

    declared = {d.split(">")[0].split("=")[0].split("[")[0].strip().lower()
                for d in PYPROJECT["project"]["dependencies"]}
    optional = {d.split(">")[0].split("=")[0].split("[")[0].strip().lower()
                for deps in PYPROJECT["project"]["optional-dependencies"].values() for d in deps}
    alias = {"yaml": "pyyaml", "sklearn": "scikit-learn", "distributed": "dask", "mpl_toolkits": "matplotlib"}
    stdlib = set(sys.stdlib_module_names)
    seen = set()
    for path in list((ROOT / "ufm").rglob("*.py")) + list((ROOT / "proofs_check").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else []
            for name in names:
                top = name.split(".")[0]
                if top not in stdlib and top not in ("ufm", "proofs_check"):
                    seen.add(alias.get(top, top).lower())
    missing = sorted(p for p in seen if p not in declared | optional | {"jaxlib"})
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


@pytest.mark.slow
def test_wheel_installs_and_runs_outside_the_checkout(tmp_path):
    """Build the wheel, install it (with its dependencies from the index) into a fresh venv in a
    directory outside the checkout, then run `ufm --version` and `ufm verify --only` there."""
    # no PYTHONPATH: the checkout (and the egg-info a build leaves in it) must not be visible
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "JAX_ENABLE_X64")}
    clean["HOME"] = str(tmp_path / "home")
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(dist), str(ROOT)],
                   check=True, capture_output=True, timeout=900, env=clean)
    wheel = next(dist.glob("ufm-*.whl"))
    env_dir = tmp_path / "env"
    venv.create(env_dir, with_pip=True, clear=True)
    py = env_dir / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", str(wheel)], check=True, capture_output=True,
                   timeout=1800, env=clean, cwd=tmp_path)
    run = dict(cwd=tmp_path, env=clean, capture_output=True, text=True, timeout=900)
    out = subprocess.run([str(env_dir / "bin" / "ufm"), "--version"], **run)
    assert out.returncode == 0 and out.stdout.strip() == f"ufm {PYPROJECT['project']['version']}", out
    report = tmp_path / "report.json"
    out = subprocess.run([str(env_dir / "bin" / "ufm"), "verify", "--only", "zero solution beyond",
                          "--json", str(report)], **run)
    assert out.returncode == 0, out.stdout + out.stderr
    records = json.loads(report.read_text())
    assert records and all(r["passed"] for r in records)
    assert {r["theorem"] for r in records} == {r["theorem"] for r in records if "zero solution beyond" in r["theorem"]}
    where = subprocess.run([str(py), "-c", "import ufm; print(ufm.__file__)"], **run).stdout
    assert str(ROOT) not in where and str(env_dir) in where

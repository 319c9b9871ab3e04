"""The documentation site builds with ``mkdocs build --strict`` (warnings are errors).

Broken links, missing anchors, unresolved API references and an executed block that fails all
stop a strict build. The default run builds in ``UFM_DOCS_EXECUTE=cheap`` mode (only the
getting-started blocks run); the slow test executes every tutorial. Both are skipped when the
``docs`` extra (mkdocs-material, mkdocstrings-python) is not installed.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import subprocess
import sys

import pytest

import ufm
from proofs_check.catalog import all_theorems

ROOT = pathlib.Path(__file__).resolve().parents[1]
NEEDED = ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers")

pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in NEEDED),
    reason="the docs extra (mkdocs-material, mkdocstrings-python) is not installed",
)


def _hook_module(name: str):
    spec = importlib.util.spec_from_file_location(f"docs_hooks_{name}", ROOT / "docs_hooks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_api_pages_follow_the_groups_of_all():
    groups = _hook_module("api_pages").groups((ROOT / "ufm" / "__init__.py").read_text())
    assert [name for _, names in groups for name in names] == list(ufm.__all__)
    assert all(title and names for title, names in groups)


def test_rst_pieces_of_docstrings_become_markdown():
    convert = _hook_module("griffe_rst").convert
    docs = [getattr(ufm, name).__doc__ or "" for name in ufm.__all__]
    assert any(".. math::" in d for d in docs)  # the conversion has something to do
    for doc in docs:
        out = convert(doc)
        assert ".. math::" not in out and ":func:`" not in out and ":class:`" not in out
        assert out.count("$$") == 2 * doc.count(".. math::")


def _build(tmp_path: pathlib.Path, mode: str, timeout: int) -> pathlib.Path:
    site = tmp_path / "site"
    env = dict(os.environ, UFM_DOCS_EXECUTE=mode, NO_MKDOCS_2_WARNING="1")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return site


def _text(site: pathlib.Path, page: str) -> str:
    return (site / page / "index.html").read_text()


def test_site_builds_strict_cheap(tmp_path):
    site = _build(tmp_path, "cheap", timeout=600)
    # the generated pages exist and hold what they are generated from
    catalog = _text(site, "catalog")
    assert catalog.count("Default instances") == len(all_theorems())
    cli = _text(site, "cli")
    for cmd in ("solve", "flow", "sweep", "plot", "verify"):
        assert f"usage: ufm {cmd}" in cli
    api = _text(site, "api")
    assert all(f"ufm.{name}" in api for name in ufm.__all__)
    # cheap mode ran the getting-started blocks (output and figure) and skipped the tutorials
    started = _text(site, "getting-started")
    assert "Output:" in started and "<img" in started
    assert "Not executed in this build" in _text(site, "tutorials/landscape")


def test_unknown_execution_mode_is_refused(tmp_path):
    env = dict(os.environ, UFM_DOCS_EXECUTE="sometimes", NO_MKDOCS_2_WARNING="1")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "UFM_DOCS_EXECUTE must be one of all, cheap, none" in proc.stdout + proc.stderr


TUTORIAL_EXTRAS = ("matplotlib", "xarray", "zarr", "sklearn", "optax")


@pytest.mark.slow
@pytest.mark.skipif(any(importlib.util.find_spec(m) is None for m in TUTORIAL_EXTRAS),
                    reason="the tutorials need the sweeps, plot and studies extras")
def test_site_builds_strict_with_every_tutorial_executed(tmp_path):
    site = _build(tmp_path, "all", timeout=7200)
    for page in ("ce-phase", "landscape", "deep", "md", "real-network", "custom-loss"):
        html = _text(site, f"tutorials/{page}")
        assert "Not executed in this build" not in html, page
        assert "<img" in html, page

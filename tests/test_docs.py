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

ROOT = pathlib.Path(__file__).resolve().parents[1]
NEEDED = ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python")

pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(m.split(".")[0]) is None for m in NEEDED)
    or importlib.util.find_spec("mkdocstrings_handlers") is None,
    reason="the docs extra (mkdocs-material, mkdocstrings-python) is not installed",
)


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
    from proofs_check.catalog import all_theorems

    assert catalog.count("Default instances") == len(all_theorems())
    cli = _text(site, "cli")
    for cmd in ("solve", "flow", "sweep", "plot", "verify"):
        assert f"usage: ufm {cmd}" in cli
    import ufm

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


@pytest.mark.slow
def test_site_builds_strict_with_every_tutorial_executed(tmp_path):
    site = _build(tmp_path, "all", timeout=7200)
    for page in ("ce-phase", "landscape", "deep", "md", "real-network", "custom-loss"):
        html = _text(site, f"tutorials/{page}")
        assert "Not executed in this build" not in html, page
        assert "<img" in html, page

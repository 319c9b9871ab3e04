"""MkDocs hooks of ufm's site (``mkdocs.yml``: ``hooks: [docs_hooks/hooks.py]``).

At build time they

- generate the theorem catalog (``catalog.md``, from ``docs_hooks/catalog_page.py``) and the
  command-line reference (``cli.md``, from ``docs_hooks/cli_page.py``), each in its own process,
  side by side;
- generate the API pages from the groups of ``ufm.__all__`` (``docs_hooks/api_pages.py``);
- run the executed blocks of every page (``docs_hooks/execute.py``; ``UFM_DOCS_EXECUTE`` =
  ``all`` | ``cheap`` | ``none``) and add the figures they draw;
- copy the fenced block after a ``<!-- ci:NAME -->`` marker of README.md where a page says
  ``<!-- readme ci:NAME -->`` (the set-up commands have one source);
- add a page with its title only for each page of :data:`PLACEHOLDERS` that is missing.
"""

from __future__ import annotations

import logging
import os
import pathlib
import re
import subprocess
import sys

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import api_pages  # noqa: E402
import execute  # noqa: E402

log = logging.getLogger("mkdocs.hooks.ufm")

GENERATORS = {"catalog.md": "catalog_page.py", "cli.md": "cli_page.py"}
PLACEHOLDERS = {"guide/clusters.md": "Sweeps on clusters", "guide/scale.md": "Sweeps at scale"}
README_MARK = re.compile(r"<!-- readme (ci:[\w-]+) -->")
_BLOCKS: dict[str, list] = {}
_STATE: dict[str, str] = {}


def _root(config) -> pathlib.Path:
    return pathlib.Path(config.config_file_path).resolve().parent


def on_config(config):
    """Check ``UFM_DOCS_EXECUTE`` before anything runs."""
    try:
        _STATE["mode"] = execute.mode()
    except ValueError as e:
        raise PluginError(str(e)) from None
    log.info("executing %s blocks (%s=%s)", _STATE["mode"], execute.ENV, _STATE["mode"])
    return config


def _start_generators(root: pathlib.Path) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]))
    env.pop("XLA_FLAGS", None)
    return {page: subprocess.Popen([sys.executable, str(root / "docs_hooks" / script)], cwd=root, env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for page, script in GENERATORS.items()}


def _finish_generators(procs: dict) -> dict:
    out = {}
    for page, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=600)
        if proc.returncode != 0:
            raise PluginError(f"generating {page} failed (exit {proc.returncode}):\n{stderr[-3000:]}")
        out[page] = stdout
    return out


def _run_pages(files, root: pathlib.Path, config) -> list:
    figures = []
    for f in files.documentation_pages():
        blocks = execute.blocks_of(f.content_string)
        if not blocks:
            continue
        _BLOCKS[f.src_uri] = blocks
        try:
            execute.run_page(blocks, root, f.src_uri, _STATE["mode"])
        except (execute.ExecutionError, OSError, subprocess.TimeoutExpired) as e:
            raise PluginError(str(e)) from None
        for i, block in enumerate(blocks):
            if block.ran:
                log.info("%s: block %d ran in %.1f s", f.src_uri, i, block.seconds)
            for name, data in block.figures:
                figures.append(File.generated(config, execute.figure_uri(f.src_uri, i, name), content=data))
    return figures


def on_files(files, config):
    """Add the generated pages and the executed blocks' figures."""
    root = _root(config)
    procs = _start_generators(root)
    try:
        figures = _run_pages(files, root, config)
    finally:
        generated = _finish_generators(procs)
    for page, text in {**generated, **api_pages.pages(root)}.items():
        files.append(File.generated(config, page, content=text))
    for page, title in PLACEHOLDERS.items():
        if files.get_file_from_path(page) is None:
            files.append(File.generated(config, page, content=f"# {title}\n"))
    for f in figures:
        files.append(f)
    return files


def _readme_block(root: pathlib.Path, mark: str) -> str:
    text = (root / "README.md").read_text()
    m = re.search(rf"<!-- {re.escape(mark)} -->\n(```.*?\n```)", text, re.DOTALL)
    if m is None:
        raise PluginError(f"README.md has no fenced block after '<!-- {mark} -->'")
    return m.group(1)


def on_page_markdown(markdown, page, config, files):
    """Render the executed blocks and the README's set-up commands of a page."""
    root = _root(config)
    markdown = README_MARK.sub(lambda m: _readme_block(root, m.group(1)), markdown)
    blocks = _BLOCKS.get(page.file.src_uri)
    if blocks:
        markdown = execute.substitute(markdown, blocks, page.file.src_uri, root, _STATE["mode"])
    return markdown

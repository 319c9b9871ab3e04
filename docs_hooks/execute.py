"""Executed blocks of the documentation: run at build time, rendered with their real output.

A page holds a block

    <!-- execute cheap
    python examples/landscape_spectra.py
    -->

(``cheap`` or ``expensive``; an optional ``minutes=N`` says how long the expensive one takes), or
``<!-- execute-python cheap`` followed by Python code. The commands run with ``bash`` in a fresh
directory per page (``examples/`` linked into it, so every line reads as typed from the repository
root), in order, with the repository on ``PYTHONPATH``. The page then shows the commands, the
source of every example script they run, their standard output and every PNG they wrote.

``UFM_DOCS_EXECUTE`` chooses what runs: ``all`` (the default: the site shows real outputs), ``cheap`` or ``none``. A block that
does not run is shown with a note saying how to see its output. A command that fails stops the
build with its standard error.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time

MODES = ("all", "cheap", "none")
ENV = "UFM_DOCS_EXECUTE"
BLOCK = re.compile(r"<!-- (execute|execute-python) (cheap|expensive)((?: \w+=\S+)*)\n(.*?)\n-->", re.DOTALL)
SCRIPT = re.compile(r"(examples/[\w/]+\.py)")
MAX_LINES = 120
TIMEOUT_S = 3600


class ExecutionError(RuntimeError):
    """A command of an executed block failed (the message holds its standard error)."""


@dataclasses.dataclass
class Block:
    """One executed block of a page and, once run, what it printed and drew."""

    kind: str  # "execute" (bash lines) or "execute-python"
    cost: str  # "cheap" or "expensive"
    options: dict
    body: str
    ran: bool = False
    stdout: str = ""
    figures: tuple = ()  # (name, bytes) of the PNGs it wrote
    seconds: float = 0.0


def mode() -> str:
    """The execution mode from ``UFM_DOCS_EXECUTE`` (default ``all``); raises on another value."""
    value = os.environ.get(ENV, "all").strip().lower() or "all"
    if value not in MODES:
        raise ValueError(f"{ENV} must be one of {', '.join(MODES)}, got {ENV}={value!r}")
    return value


def blocks_of(markdown: str) -> list[Block]:
    """The executed blocks of a page, in order."""
    out = []
    for m in BLOCK.finditer(markdown):
        opts = dict(item.split("=", 1) for item in m.group(3).split())
        out.append(Block(kind=m.group(1), cost=m.group(2), options=opts, body=m.group(4).strip("\n")))
    return out


def _environment(root: pathlib.Path) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(root)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env["PATH"] = os.pathsep.join([str(pathlib.Path(sys.executable).parent), env.get("PATH", "")])
    env["MPLBACKEND"] = "Agg"
    env.pop("XLA_FLAGS", None)  # each command picks its own compile profile
    return env


def _run_one(block: Block, workdir: pathlib.Path, env: dict, page: str) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in workdir.glob("*.png")}
    if block.kind == "execute-python":
        (workdir / "_snippet.py").write_text(block.body + "\n")
        cmd = [sys.executable, "_snippet.py"]
    else:
        cmd = ["bash", "-euo", "pipefail", "-c", block.body]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    block.seconds = time.perf_counter() - start
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-25:])
        raise ExecutionError(f"{page}: an executed block failed (exit {proc.returncode}):\n{block.body}\n"
                             f"--- stderr (last lines) ---\n{tail}")
    block.stdout = proc.stdout
    new = [p for p in sorted(workdir.glob("*.png")) if before.get(p.name) != p.stat().st_mtime_ns]
    block.figures = tuple((p.name, p.read_bytes()) for p in new)
    block.ran = True


def run_page(blocks: list[Block], root: pathlib.Path, page: str, which: str) -> None:
    """Run the blocks that ``which`` selects, in order, in one fresh directory for the page."""
    chosen = [b for b in blocks if which == "all" or (which == "cheap" and b.cost == "cheap")]
    if not chosen:
        return
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="ufm-docs-"))
    try:
        (workdir / "examples").symlink_to(root / "examples", target_is_directory=True)
        env = _environment(root)
        for block in chosen:
            _run_one(block, workdir, env, page)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def figure_uri(page_src: str, index: int, name: str) -> str:
    """Where a figure of block ``index`` of page ``page_src`` goes in the site (a docs-relative URI)."""
    page = pathlib.PurePosixPath(page_src)
    return str(page.parent / "figures" / f"{page.stem}-{index}-{name}")


def _fence(text: str, lang: str, indent: str = "") -> str:
    ticks = "````" if "```" in text else "```"
    body = "\n".join(indent + line if line else line for line in text.splitlines())
    return f"{indent}{ticks}{lang}\n{body}\n{indent}{ticks}"


def _trim(text: str) -> str:
    lines = text.rstrip().splitlines()
    if len(lines) <= MAX_LINES:
        return "\n".join(lines)
    keep = MAX_LINES // 2
    return "\n".join(lines[:keep] + [f"... ({len(lines) - 2 * keep} lines left out) ..."] + lines[-keep:])


def render(block: Block, index: int, page_src: str, root: pathlib.Path, which: str) -> str:
    """The Markdown that replaces a block: commands, sources, output and figures (or a note)."""
    parts = [_fence(block.body, "python" if block.kind == "execute-python" else "bash")]
    for script in dict.fromkeys(SCRIPT.findall(block.body)):
        source = (root / script).read_text()
        parts.append(f'??? example "Source: `{script}`"\n\n' + _fence(source.rstrip(), "python", "    "))
    if block.ran:
        if block.stdout.strip():
            parts.append("Output:\n\n" + _fence(_trim(block.stdout), "text"))
        for name, _ in block.figures:
            uri = pathlib.PurePosixPath(figure_uri(page_src, index, name)).name
            parts.append(f"![{name}](figures/{uri})")
    else:
        minutes = block.options.get("minutes")
        cost = f" (about {minutes} minutes on 2 CPU cores)" if minutes else ""
        parts.append(f'!!! note "Not executed in this build"\n\n    This block is {block.cost}{cost}; this '
                     f"build ran with `{ENV}={which}`. Run the commands above from the repository root to "
                     f"see its output and figures, or build the site with `{ENV}=all`.")
    return "\n\n".join(parts)


def substitute(markdown: str, blocks: list[Block], page_src: str, root: pathlib.Path, which: str) -> str:
    """Replace every block of ``markdown`` by its rendering (blocks in page order)."""
    it = iter(enumerate(blocks))

    def repl(_m):
        i, block = next(it)
        return render(block, i, page_src, root, which)

    return BLOCK.sub(repl, markdown)

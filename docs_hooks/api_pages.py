"""The API reference pages, generated from the groups of ``ufm.__all__`` (read, never imported).

``ufm/__init__.py`` lists ``__all__`` in groups, each after a comment line (``# losses``). Every
group becomes a section of ``api/index.md`` whose members are rendered by mkdocstrings
(``::: ufm.NAME``); a public module of the group that has a page of its own (``ufm.metrics``,
``ufm.geometry``) is linked there instead. Modules with a page of their own: :data:`MODULE_PAGES`.
"""

from __future__ import annotations

import ast
import pathlib
import re

# public modules documented on a page of their own: (page, module, title)
MODULE_PAGES = (
    ("api/metrics.md", "ufm.metrics", "ufm.metrics"),
    ("api/geometry.md", "ufm.geometry", "ufm.geometry"),
    ("api/sweeps.md", "ufm.sweeps", "ufm.sweeps"),
    ("api/testing.md", "ufm.testing", "ufm.testing"),
    ("api/cli.md", "ufm.cli", "ufm.cli (for programs built on the command line)"),
)
_OWN_PAGE = {module.split(".")[1]: page for page, module, _ in MODULE_PAGES}


def groups(init_source: str) -> list[tuple[str, list[str]]]:
    """``[(group title, [names])]`` from the ``__all__ = [...]`` list of ``ufm/__init__.py``."""
    match = re.search(r"^__all__ = \[\n(.*?)^\]", init_source, re.DOTALL | re.MULTILINE)
    if match is None:
        raise ValueError("ufm/__init__.py: no '__all__ = [' block to read the API groups from")
    out: list[tuple[str, list[str]]] = []
    for line in match.group(1).splitlines():
        text = line.strip()
        if text.startswith("#"):
            out.append((text.lstrip("# ").strip(), []))
        elif text:
            names = ast.literal_eval("[" + text + "]")
            if not out:
                out.append(("top level", []))
            out[-1][1].extend(names)
    return out


def _is_module(root: pathlib.Path, name: str) -> bool:
    return (root / "ufm" / f"{name}.py").exists() or (root / "ufm" / name / "__init__.py").exists()


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def index_page(root: pathlib.Path) -> str:
    """``api/index.md``: every group of ``ufm.__all__`` with its members."""
    source = (root / "ufm" / "__init__.py").read_text()
    lines = ["# API reference", "",
             "Everything a user calls is re-exported by `import ufm`, in the groups below (the order of "
             "`ufm.__all__`). Research internals live in the submodules `ufm.solvers`, `ufm.problems`, "
             "`ufm.etf` and `ufm.sweeps`; the public modules `ufm.metrics`, `ufm.geometry`, "
             "`ufm.sweeps`, `ufm.testing` and `ufm.cli` have pages of their own.", ""]
    for title, names in groups(source):
        lines += [f"## {title[0].upper() + title[1:]} {{#{_slug(title)}}}", ""]
        for name in names:
            if name in _OWN_PAGE:
                page = pathlib.PurePosixPath(_OWN_PAGE[name]).name
                lines += [f"### `ufm.{name}`", "", f"A module; see its page: [ufm.{name}]({page}).", ""]
            elif _is_module(root, name):
                lines += [f"::: ufm.{name}", "    options:", "      heading_level: 3", "      show_root_heading: true",
                          "      members_order: source", ""]
            else:
                lines += [f"::: ufm.{name}", "    options:", "      heading_level: 3", ""]
    return "\n".join(lines)


def module_page(module: str, title: str) -> str:
    """The page of one public module: its docstring and every public member."""
    return "\n".join([f"# {title}", "", f"::: {module}", "    options:", "      show_root_heading: false",
                      "      heading_level: 2", "      members_order: source", ""])


def pages(root: pathlib.Path) -> dict[str, str]:
    """``{docs-relative path: Markdown}`` of every API page."""
    out = {"api/index.md": index_page(root)}
    for page, module, title in MODULE_PAGES:
        out[page] = module_page(module, title)
    return out

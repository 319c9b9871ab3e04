"""A griffe extension: the reStructuredText pieces of ufm's Google docstrings, as Markdown.

ufm's docstrings are Google style with a few reST directives and roles, which read well in
``help()``. For the site they become Markdown before mkdocstrings parses them:

- ``.. math:: expr`` (one line, or an indented block) becomes a ``$$ ... $$`` display;
- ``:math:`expr``` becomes ``$expr$``;
- ``.. warning::`` and ``.. note::`` blocks become admonitions;
- the roles ``:func:``, ``:class:``, ``:meth:``, ``:mod:``, ``:data:``, ``:attr:`` become code.

Configured in ``mkdocs.yml`` (``extensions: [docs_hooks/griffe_rst.py]``); the docstrings in the
source are not changed.
"""

from __future__ import annotations

import re

import griffe

ROLE = re.compile(r":(?:func|class|meth|mod|data|attr|obj|exc):`~?([^`]+)`")
INLINE_MATH = re.compile(r":math:`([^`]+)`")
DIRECTIVE = re.compile(r"^(?P<indent>[ \t]*)\.\. (?P<name>math|warning|note)::[ \t]*(?P<rest>.*)$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _block(lines: list[str], start: int, base: int) -> tuple[list[str], int]:
    """The indented lines after a directive (blank lines inside included), and where they end."""
    body, i = [], start
    while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > base):
        body.append(lines[i])
        i += 1
    while body and not body[-1].strip():
        body.pop()
        i -= 1
    return body, i


def convert(text: str) -> str:
    """The Markdown form of one docstring (see the module docstring)."""
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        m = DIRECTIVE.match(lines[i])
        if m is None:
            out.append(lines[i])
            i += 1
            continue
        pad, name, rest = m.group("indent"), m.group("name"), m.group("rest").strip()
        body, i = _block(lines, i + 1, len(pad))
        content = ([rest] if rest else []) + [b.strip() for b in body]
        if name == "math":
            out += [pad + "$$", *(pad + c for c in content if c), pad + "$$", ""]
        else:
            out += [f'{pad}!!! {name}', ""] + [f"{pad}    {c}" for c in content] + [""]
    text = "\n".join(out)
    text = INLINE_MATH.sub(lambda mm: f"${mm.group(1)}$", text)
    return ROLE.sub(lambda mm: f"`{mm.group(1)}`", text)


class RstToMarkdown(griffe.Extension):
    """Rewrite every docstring with :func:`convert` as griffe loads it."""

    def on_instance(self, *, node, obj, agent, **kwargs) -> None:  # noqa: ARG002 (griffe's hook signature)
        if obj.docstring is not None:
            obj.docstring.value = convert(obj.docstring.value)

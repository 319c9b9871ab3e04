"""Print the theorem catalog page (Markdown) from the Theorem records of ``proofs_check``.

Run by the documentation build in its own process (``python docs_hooks/catalog_page.py``): it
imports the catalog, renders every theorem's statement, source, tag, assumptions (the predicate's
source), SymPy expressions as LaTeX, proofs by kind, what is assumed without proof and its
default instances. Nothing is solved and no proof is run.
"""

from __future__ import annotations

import inspect
import re
import sys
import textwrap

import sympy as sp

from proofs_check.catalog import MODULES
from proofs_check.measure import describe
from proofs_check.theorem import PROOF_KINDS

KIND_TITLE = {"proof": "Symbolic proofs (SymPy residual simplifies to 0)",
              "definition": "Definitions and changes of variables (shown, not counted as proofs)",
              "sample": "Exact checks at sample points"}


def slug(text: str) -> str:
    """A stable anchor from a theorem's name."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:80]


def _md(text: str) -> str:
    """Plain text of a record, safe inside Markdown (no emphasis from ``*`` or ``_``)."""
    text = " ".join(str(text).split()).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"([*_\[\]`])", r"\\\1", text)


def _predicate_source(fn) -> str:
    try:
        return textwrap.dedent(inspect.getsource(fn)).strip()
    except (OSError, TypeError):
        return repr(fn)


def _expressions(th) -> list[str]:
    if not th.expressions:
        return []
    rows = ["| name | closed form |", "|---|---|"]
    for name, expr in th.expressions.items():
        latex = sp.latex(sp.sympify(expr)).replace("|", r"\vert ")
        rows.append(f"| `{name}` | ${latex}$ |")
    return ["**Expressions** (SymPy, rendered as LaTeX; `predict` lambdifies exactly these):", ""] + rows + [""]


def _proofs(th) -> list[str]:
    out = []
    for kind in PROOF_KINDS:
        claims = [p.claim for p in th.proofs if p.kind == kind]
        if claims:
            out += [f"**{KIND_TITLE[kind]}:**", ""] + [f"- {_md(c)}" for c in claims] + [""]
    return out


def _instances(th) -> list[str]:
    out = ["**Default instances** (`ufm verify` solves these; the assumption check on each):", ""]
    for prob in th.instances():
        ok, why = th.assumptions(prob)
        verdict = "inside the assumptions" if ok else f"outside: {_md(why)}"
        out.append(f"- `{describe(prob)}`: {verdict}")
    return out + [""]


def theorem_section(th, module: str, seen: set) -> list[str]:
    """The Markdown section of one theorem."""
    anchor = slug(th.name)
    while anchor in seen:
        anchor += "-x"
    seen.add(anchor)
    slow = " · slow (`ufm verify --all`)" if th.slow else ""
    out = [f"### {_md(th.name)} {{#{anchor}}}", "",
           f"*Source:* {_md(th.citation)} · *tag:* **{th.tag}** · *module:* `proofs_check.catalog.{module}`{slow}",
           "", _md(th.statement), ""]
    out += _expressions(th)
    if th.no_closed_form:
        out += [f"**No closed form:** {_md(th.no_closed_form)}", ""]
    out += _proofs(th)
    if th.assumed:
        out += ["**Assumed without proof here:**", ""] + [f"- {_md(a)}" for a in th.assumed] + [""]
    out += ['??? info "Assumptions (the predicate on the problem)"', "",
            "    ```python", textwrap.indent(_predicate_source(th.assumptions), "    "), "    ```", ""]
    out += _instances(th)
    return out


def page() -> str:
    """The whole catalog page."""
    lines = ["# Theorem catalog", "",
             "Generated when the site is built, from the `Theorem` records of `proofs_check.catalog` "
             "(the same records `ufm verify` checks): nothing here is typed by hand and nothing is "
             "solved to produce it. Tags: **paper**, the published statement in ufm's scaling; "
             "**derived**, derived for ufm's canonical objective and confirmed numerically. "
             "How the rows are checked: [Theory, the catalog's checks](theory.md#catalog-checks).", ""]
    seen: set = set()
    for module in MODULES:
        name = module.__name__.rsplit(".", 1)[1]
        doc = (module.__doc__ or "").strip().split("\n\n")[0]
        lines += [f"## `{name}` {{#module-{name}}}", "", _md(doc), ""]
        for th in module.THEOREMS:
            lines += theorem_section(th, name, seen)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(page())

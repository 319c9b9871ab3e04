"""Print the command-line reference (Markdown): the help of ``ufm`` and of every subcommand.

Run by the documentation build in its own process (``python docs_hooks/cli_page.py``), because the
console script sets process options (compile profile, float64) that the build must not inherit.
Each text is what ``ufm --help`` and ``ufm COMMAND --help`` print, produced by calling the console
script's :func:`ufm.cli.main` in this process; ``verify`` is registered by importing
``proofs_check``.
"""

from __future__ import annotations

import contextlib
import io
import sys

import proofs_check  # noqa: F401  (registers ``ufm verify``)
from ufm.cli import main

COMMANDS = ("solve", "flow", "sweep", "plot", "verify")
SUMMARY = {
    "solve": "A certified minimizer of one problem: value, certificate, NC metrics, phase.",
    "flow": "The gradient flow of one problem: objective and NC metrics along time.",
    "sweep": "Certified solves over a grid of hyper-parameters (a phase diagram), in a resumable store.",
    "plot": "The phase diagram of a sweep store, with predicted thresholds overlaid.",
    "verify": "Every closed form of the theorem catalog against the solvers, one table.",
}


def help_text(argv: list[str]) -> str:
    """What ``ufm ARGV`` prints on standard output (``--help`` exits with status 0)."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        try:
            code = main(argv)
        except SystemExit as e:
            code = e.code
    if code not in (0, None):
        raise RuntimeError(f"ufm {' '.join(argv)} exited with {code}")
    return buf.getvalue().rstrip()


def page() -> str:
    """The whole command-line reference page."""
    lines = ["# Command line", "",
             "Generated when the site is built from the parsers themselves (`ufm --help` and "
             "`ufm COMMAND --help`). `python -m ufm` is the same program. Every failure a user can "
             "cause ends in one line naming the cause and the fix, with exit status 2; an uncertified "
             "solve exits with 1.", "", "## `ufm` {#ufm}", "", "```text", help_text(["--help"]), "```", ""]
    for cmd in COMMANDS:
        lines += [f"## `ufm {cmd}` {{#ufm-{cmd}}}", "", SUMMARY[cmd], "", "```text",
                  help_text([cmd, "--help"]), "```", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    text = page()
    sys.stdout.write(text + "\n")

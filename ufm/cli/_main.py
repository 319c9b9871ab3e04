"""The ``ufm`` console script: the subcommand registry and :func:`main`."""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points

from ufm._internal.precision import enable_x64
from ufm._internal.runtime import package_version
from ufm.cli._commands import cmd_flow, cmd_plot, cmd_solve
from ufm.cli._runtime import enable_compilation_cache, host_devices, use_compile_profile
from ufm.cli._spec import OneLineParser
from ufm.cli._sweep import cmd_sweep
from ufm.solvers import SolveError

__all__ = ["main", "register_command", "USAGE", "BUILTIN"]

Command = Callable[[Sequence[str]], int]

_COMMANDS: dict[str, Command] = {}
_GROUP = "ufm.commands"

USAGE = """usage: ufm [--version] [--debug] COMMAND [options]      (ufm COMMAND --help for each)

commands:
  solve   certified minimizer of one problem: value, certificate, NC metrics, phase
  flow    gradient flow of one problem: objective and NC metrics along time
  sweep   certified solves over a grid (a phase diagram), resumable Zarr store, every core
  plot    draw the phase diagram of a sweep store
  verify  check the solvers against every closed form of the theorem catalog (proofs_check)

A problem comes from flags (--K 10 --n 20 --d 32 --loss ce --lam-W 5e-3 --lam-H 5e-3) or from a
TOML spec file's [problem] table (see examples/*.toml); flags override the file. --family picks
the model: ufm (default), deep (--widths), md (--lam, --eta), multilabel (--counts), regression
(targets Y in the spec file). Booleans switch both ways (--nonneg / --no-nonneg). Every command
takes --json; its record holds the problem as a [problem] table. A failure ends in one line on
stderr (exit 2: bad input, 1: a failed check); --debug shows the traceback instead.

environment:
  UFM_COMPILE=fast|optimized   XLA compile profile; solve and verify default to fast (about a third
                               of the compile time, slower code on large arrays), flow and sweep
                               to optimized (XLA's defaults)
  UFM_NO_COMPILATION_CACHE=1   do not keep compilations under ~/.cache/ufm/jax

examples:
  ufm solve --K 4 --n 5 --d 8 --loss ce --lam-W 5e-3 --lam-H 5e-3 --json
  ufm solve --family deep --K 3 --n 2 --widths 4,4 --loss mse --lam-W 3e-3 --lam-H 3e-3
  ufm flow --K 4 --n 5 --d 8 --lam-W 5e-3 --lam-H 5e-3 --dt 0.5 --momentum 0.9 --t1 200
  ufm sweep examples/ce_phase.toml --store ce.zarr      (rerun the same line to resume)
  ufm plot ce.zarr --out ce.png
"""

_SUMMARY = {"solve": "certified minimizer of one problem", "flow": "gradient flow of one problem",
            "sweep": "certified solves over a grid, resumable", "plot": "phase diagram of a sweep store",
            "verify": "check the solvers against the theorem catalog (proofs_check)"}

BUILTIN: dict[str, Command] = {"solve": cmd_solve, "flow": cmd_flow, "sweep": cmd_sweep, "plot": cmd_plot}

# per command: one-shot commands compile fast, commands that run one program many times optimize
_DEFAULT_PROFILE = {"solve": "fast", "verify": "fast", "flow": "optimized", "sweep": "optimized",
                    "plot": "optimized"}


def register_command(name: str, fn: Command) -> None:
    """Register ``fn(argv) -> int`` as the subcommand ``ufm NAME`` in this process.

    Packages above ufm (``proofs_check`` registers ``verify``) call this when imported, and declare
    the same command in the ``ufm.commands`` entry-point group of their distribution, so that the
    console script finds it without ufm importing them.
    """
    if not callable(fn):
        raise ValueError(f"fn must be callable fn(argv) -> int, got {fn!r}")
    _COMMANDS[str(name)] = fn


def _lookup(name: str) -> Command | None:
    """The subcommand ``name``: built in, registered in-process, else an installed entry point."""
    if name in BUILTIN:
        return BUILTIN[name]
    if name in _COMMANDS:
        return _COMMANDS[name]
    for ep in entry_points(group=_GROUP):
        if ep.name == name:
            return ep.load()
    return None


def _run_module_fallback(name: str, argv) -> int | None:
    """Without an installed distribution: run ``python -m proofs_check`` (a separate program, so
    ufm still imports nothing above itself). Returns None when that package is not on the path."""
    if name != "verify" or importlib.util.find_spec("proofs_check") is None:
        return None
    return subprocess.call([sys.executable, "-m", "proofs_check", *argv])


_EXTRAS = {"zarr": "sweeps", "xarray": "sweeps", "tqdm": "sweeps", "distributed": "sweeps",
           "dask": "sweeps", "pandas": "sweeps", "matplotlib": "plot"}


def _version() -> str:
    return f"ufm {package_version()}"


def _parser(names: Sequence[str]) -> argparse.ArgumentParser:
    """The top-level parser: ``--version``, ``--debug`` and one subparser per command; each
    command parses its own arguments (``ufm COMMAND --help``)."""
    parts = USAGE.split("\n\n")
    p = OneLineParser(prog="ufm", description=parts[2], usage="ufm COMMAND [options] | ufm --version | ufm "
                "--help   (--debug anywhere: the full traceback of an error)", epilog="\n\n".join(parts[3:]),
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=_version())
    p.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name in names:
        sp = sub.add_parser(name, help=_SUMMARY.get(name, ""), add_help=False, prefix_chars="\0")
        sp.add_argument("args", nargs="*")
    return p


def _known() -> list[str]:
    eps = [ep.name for ep in entry_points(group=_GROUP)]
    return list(dict.fromkeys([*BUILTIN, *_COMMANDS, *eps, "verify"]))


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def _failure(command: str, e: Exception) -> tuple[int, str]:
    """Exit status and the one line that names the cause of ``e`` and the fix."""
    if isinstance(e, ModuleNotFoundError):
        root = (e.name or "").split(".")[0]
        extra = _EXTRAS.get(root)
        fix = f"pip install 'ufm[{extra}]'" if extra else f"pip install {root or 'the missing package'}"
        return 1, f"needs the package {root or e.name!r}, which is not installed: {fix}"
    if isinstance(e, ValueError):  # a SpecError, or validation inside ufm: the message names the argument
        return 2, _one_line(e)
    if isinstance(e, SolveError):
        return 1, f"the solve failed: {_one_line(e)}"
    if isinstance(e, RuntimeError) and "locate_boundary" in str(e):
        return 1, (f"{_one_line(e)}: the boundary cannot be bracketed there; move the ends of "
                   "--boundary FIELD:LO:HI (spec [sweep] boundary) to where solves certify")
    if isinstance(e, NotImplementedError):
        return 2, f"{_one_line(e)}; this command does not apply to that family"
    if isinstance(e, RuntimeError):
        return 1, f"{_one_line(e)} (rerun with --debug for where it failed)"
    if isinstance(e, OSError):
        return 1, f"{_one_line(e)} (check the path and its permissions)"
    return 1, (f"unexpected {type(e).__name__}: {_one_line(e)}; rerun with --debug for the traceback "
               "and report it")


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # a stdout without a file descriptor
        pass


def _dispatch(name: str, argv: list[str]) -> int:
    """Run the command ``name`` on ``argv``, or the ``proofs_check`` fallback for ``verify``."""
    fn = _lookup(name)
    if fn is None:
        code = _run_module_fallback(name, argv)
        if code is None:
            print("ufm verify: error: needs the proofs_check package: pip install proofs_check (or run "
                  "from a checkout of the repository)", file=sys.stderr)
            return 2
        return code
    return fn(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """The ``ufm`` console script: ``ufm [--version] [--debug] {solve,flow,sweep,plot,verify} ...``.

    ``verify`` comes from the ``ufm.commands`` entry-point group (owned by ``proofs_check``); the
    CLI turns on float64 (:func:`ufm.enable_x64`) before running any command. Every failure a
    user can cause ends in one line on stderr naming the cause and the fix, with no traceback
    unless ``--debug`` is given. Returns the exit status: 0 success, 1 a failed check (an
    uncertified solve, a diverging flow, a boundary that cannot be bracketed, a missing optional
    package), 2 bad input (the message names the flag or spec key and its valid range).
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:
        argv = ["--help"]
    try:
        top, rest = _parser(_known()).parse_known_args(argv)
    except SystemExit as e:  # --help, --version, or a usage error already printed
        return int(e.code or 0)
    name = top.command
    if name is None:
        print(f"ufm: error: missing COMMAND (one of {', '.join(_known())}; see ufm --help)",
              file=sys.stderr)
        return 2
    cmd_argv = [*top.args, *rest]
    debug = top.debug or "--debug" in cmd_argv
    cmd_argv = [a for a in cmd_argv if a != "--debug"]
    try:
        use_compile_profile(_DEFAULT_PROFILE.get(name, "optimized"))
        if name == "sweep":
            host_devices()
        enable_compilation_cache()
        enable_x64()
        return _dispatch(name, cmd_argv)
    except SystemExit as e:  # a command's --help, or its one-line usage error
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    except BrokenPipeError:  # the reader of stdout left (ufm ... | head): stop quietly
        _silence_stdout()
        return 1
    except KeyboardInterrupt:
        again = " (rerun the same command to resume from the store)" if name == "sweep" else ""
        print(f"ufm {name}: interrupted{again}", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - the command line reports every failure in one line
        if debug:
            raise
        code, line = _failure(name, e)
        print(f"ufm {name}: error: {line}", file=sys.stderr)
        return code

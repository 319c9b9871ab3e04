"""The ``ufm`` console script: the subcommand registry and :func:`main`."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points

from ufm._internal.precision import enable_x64
from ufm.cli._commands import cmd_flow, cmd_plot, cmd_solve
from ufm.cli._runtime import enable_compilation_cache, host_devices, use_compile_profile
from ufm.cli._spec import SpecError
from ufm.cli._sweep import cmd_sweep

__all__ = ["main", "register_command", "USAGE", "BUILTIN"]

Command = Callable[[Sequence[str]], int]

_COMMANDS: dict[str, Command] = {}
_GROUP = "ufm.commands"

USAGE = """usage: ufm COMMAND [options]      (ufm COMMAND --help for each)

commands:
  solve   certified minimizer of one problem: value, certificate, NC metrics, phase
  flow    gradient flow of one problem: objective and NC metrics along time
  sweep   certified solves over a grid (a phase diagram), resumable Zarr store, every core
  plot    draw the phase diagram of a sweep store
  verify  check the solvers against every closed form of the theorem catalog (proofs_check)

A problem comes from flags (--K 10 --n 20 --d 32 --loss ce --lam-W 5e-3 --lam-H 5e-3) or from a
TOML spec file (see examples/*.toml); flags override the file. Every command takes --json.

environment:
  UFM_COMPILE=fast|optimized   XLA compile profile; solve and verify default to fast (about a third
                               of the compile time, slower code on large arrays), flow and sweep
                               to optimized (XLA's defaults)
  UFM_NO_COMPILATION_CACHE=1   do not keep compilations under ~/.cache/ufm/jax

examples:
  ufm solve --K 4 --n 5 --d 8 --loss ce --lam-W 5e-3 --lam-H 5e-3 --json
  ufm sweep examples/ce_phase.toml --store ce.zarr      (rerun the same line to resume)
  ufm plot ce.zarr --out ce.png
"""

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


def _error(command: str, message) -> int:
    print(f"ufm {command}: error: {message}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """The ``ufm`` console script: ``ufm {solve,flow,sweep,plot,verify} ...`` (``ufm --help``).

    ``verify`` comes from the ``ufm.commands`` entry-point group (owned by ``proofs_check``); the
    CLI turns on float64 (:func:`ufm.enable_x64`) before running any command. Returns the exit
    status: 0 success, 1 an uncertified solve, 2 a usage error (the message names the flag).
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    try:
        use_compile_profile(_DEFAULT_PROFILE.get(argv[0], "optimized"))
    except SpecError as e:
        return _error(argv[0], e)
    if argv[0] == "sweep":
        host_devices()
    enable_compilation_cache()
    enable_x64()
    fn = _lookup(argv[0])
    if fn is None:
        code = _run_module_fallback(argv[0], argv[1:])
        if code is not None:
            return code
        known = sorted(set(_COMMANDS) | set(BUILTIN) | {"verify"})
        print(f"ufm: unknown command {argv[0]!r} (known: {', '.join(known)}; 'verify' needs the "
              f"proofs_check package)\n\n{USAGE}", file=sys.stderr)
        return 2
    try:
        return fn(argv[1:])
    except ValueError as e:  # a SpecError, or validation inside ufm: the message names the argument
        return _error(argv[0], e)

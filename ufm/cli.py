"""The ``ufm`` command line: ``ufm verify [--json FILE] [--markdown FILE]``."""

from __future__ import annotations

import os
import sys


def enable_compilation_cache() -> None:
    """Persist XLA compilations under ~/.cache/ufm/jax so repeated runs skip compiling.

    Set ``UFM_NO_COMPILATION_CACHE=1`` to turn it off.
    """
    if os.environ.get("UFM_NO_COMPILATION_CACHE"):
        return
    import jax

    path = os.path.join(os.path.expanduser("~"), ".cache", "ufm", "jax")
    try:
        os.makedirs(path, exist_ok=True)
        jax.config.update("jax_compilation_cache_dir", path)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    except (OSError, AttributeError):  # read-only home or an older jax: just compile
        pass


_COMMANDS: dict = {}
_GROUP = "ufm.commands"


def register_command(name: str, fn) -> None:
    """Register ``fn(argv) -> int`` as the subcommand ``ufm NAME`` in this process.

    Packages above ufm (``proofs_check`` registers ``verify``) call this when imported, and declare
    the same command in the ``ufm.commands`` entry-point group of their distribution, so that the
    console script finds it without ufm importing them.
    """
    if not callable(fn):
        raise ValueError(f"fn must be callable fn(argv) -> int, got {fn!r}")
    _COMMANDS[str(name)] = fn


def _lookup(name: str):
    """The subcommand ``name``: registered in-process, else an installed entry point, else None."""
    if name in _COMMANDS:
        return _COMMANDS[name]
    from importlib.metadata import entry_points

    for ep in entry_points(group=_GROUP):
        if ep.name == name:
            return ep.load()
    return None


def _run_module_fallback(name: str, argv) -> int | None:
    """Without an installed distribution: run ``python -m proofs_check`` (a separate program, so
    ufm still imports nothing above itself). Returns None when that package is not on the path."""
    import importlib.util
    import subprocess

    if name != "verify" or importlib.util.find_spec("proofs_check") is None:
        return None
    return subprocess.call([sys.executable, "-m", "proofs_check", *argv])


def main(argv=None) -> int:
    """The ``ufm`` console script: ``ufm verify [--json FILE] [--markdown FILE] [--quiet]``.

    Subcommands come from the ``ufm.commands`` entry-point group (``verify`` is owned by
    ``proofs_check``); the CLI turns on float64 (:func:`ufm.enable_x64`) before running one.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    usage = "usage: ufm verify [--json FILE] [--markdown FILE] [--quiet]"
    if not argv or argv[0] in ("-h", "--help"):
        print(usage + "\n\nverify: check the solvers against every closed form and print a table.")
        return 0
    enable_compilation_cache()
    from ufm._precision import enable_x64

    enable_x64()
    fn = _lookup(argv[0])
    if fn is None:
        code = _run_module_fallback(argv[0], argv[1:])
        if code is not None:
            return code
        known = sorted(set(_COMMANDS) | {"verify"})
        print(f"ufm: unknown command {argv[0]!r} (known: {', '.join(known)}; 'verify' needs the "
              f"proofs_check package)\n{usage}", file=sys.stderr)
        return 2
    return fn(argv[1:])


if __name__ == "__main__":
    sys.exit(main())

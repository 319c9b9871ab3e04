"""The ``ufm`` command line: ``ufm verify [--json FILE] [--markdown FILE]``."""

from __future__ import annotations

import os
import sys


def _enable_compilation_cache() -> None:
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


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    usage = "usage: ufm verify [--json FILE] [--markdown FILE] [--quiet]"
    if not argv or argv[0] in ("-h", "--help"):
        print(usage + "\n\nverify: check the solvers against every closed form and print a table.")
        return 0
    if argv[0] != "verify":
        print(f"ufm: unknown command {argv[0]!r}\n{usage}", file=sys.stderr)
        return 2
    _enable_compilation_cache()
    import ufm  # noqa: F401  (turns on float64)
    from proofs_check.verify import main as verify_main

    return verify_main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())

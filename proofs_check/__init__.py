"""proofs_check: closed forms of UFM minimizers, checked against ufm's numerics.

``ufm verify`` (or ``python -m proofs_check``) runs every check and prints one table.

Layers, bottom to top: ``symbols`` and ``measure`` (a problem's numbers, a solution's invariants),
``theorem`` (the record type), ``custom`` and ``convex`` (tools of the catalog), ``catalog`` (one
module per paper or topic), ``closed_forms`` (dispatches a problem to its catalog entry),
``boundaries`` (thresholds for sweeps), ``verify`` (runs the catalog). This package's import turns
on float64 before any of them is imported.
"""

import ufm
import ufm.cli

ufm.enable_x64()  # the catalog compares against closed forms to 1e-8: float64

from proofs_check import closed_forms as closed_forms  # noqa: E402
from proofs_check.verify import main as main  # noqa: E402
from proofs_check.verify import run as run  # noqa: E402

ufm.cli.register_command("verify", main)

__all__ = ["closed_forms", "run"]

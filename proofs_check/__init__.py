"""proofs_check: closed forms of UFM minimizers, checked against ufm's numerics.

``ufm verify`` (or ``python -m proofs_check``) runs every check and prints one table.
"""

import ufm
import ufm.cli

ufm.enable_x64()  # the catalog compares against closed forms to 1e-8: float64

from proofs_check import closed_forms as closed_forms  # noqa: E402
from proofs_check.verify import main as main  # noqa: E402
from proofs_check.verify import run as run  # noqa: E402

ufm.cli.register_command("verify", main)

__all__ = ["closed_forms", "run"]

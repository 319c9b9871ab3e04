"""proofs_check: closed forms of UFM minimizers, checked against ufm's numerics.

``ufm verify`` (or ``python -m proofs_check``) runs every check and prints one table.
"""

from proofs_check import closed_forms as closed_forms
from proofs_check.verify import run as run

__all__ = ["closed_forms", "run"]

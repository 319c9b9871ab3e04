"""proofs_check: closed forms of UFM minimizers, checked against ufm's numerics.

``ufm verify`` (or ``python -m proofs_check``) runs every check and prints one line per theorem.
Closed forms meet float64 numbers here, so importing proofs_check turns on JAX's float64
(``jax_enable_x64``); ``ufm`` itself changes no global JAX setting.
"""

import jax

jax.config.update("jax_enable_x64", True)

from proofs_check import closed_forms as closed_forms  # noqa: E402
from proofs_check.verify import run as run  # noqa: E402

__all__ = ["closed_forms", "run"]

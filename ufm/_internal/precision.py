"""Opt-in float64: importing ufm changes no global JAX setting.

Closed forms are checked to 1e-8 and the certified minimizer polishes to a relative KKT residual
of 1e-10, which needs float64. JAX computes in float32 unless ``jax_enable_x64`` is on; that switch
is process-wide, so ufm never flips it by itself. Call :func:`enable_x64` (or set the environment
variable ``JAX_ENABLE_X64=1`` before starting Python) to opt in.
"""

from __future__ import annotations

import jax

__all__ = ["enable_x64", "x64_enabled", "require_x64"]

FIX = "call ufm.enable_x64() (or set JAX_ENABLE_X64=1) before building problems"


def enable_x64(enabled: bool = True) -> None:
    """Turn JAX's 64-bit mode on (``jax.config.update("jax_enable_x64", True)``).

    This is a process-wide JAX setting: every later JAX computation may use float64. Call it once,
    at the top of a script, before building problems (arrays made earlier stay float32).

    Args:
        enabled: ``False`` turns 64-bit mode off again.
    """
    jax.config.update("jax_enable_x64", bool(enabled))


def x64_enabled() -> bool:
    """Whether JAX's 64-bit mode is on."""
    return bool(jax.config.jax_enable_x64)


def require_x64(what: str) -> None:
    """Raise ``ValueError`` naming the fix unless 64-bit mode is on."""
    if not x64_enabled():
        raise ValueError(f"{what} computes in float64, but JAX's 64-bit mode is off; {FIX}")

"""Process settings of the ``ufm`` command: XLA flags chosen before JAX starts, the compilation cache.

Importing ufm sets none of these; the command line (and ``python -m proofs_check``) call them.
"""

from __future__ import annotations

import os

import jax

from ufm._internal.runtime import enable_compilation_cache as _enable_cache
from ufm.cli._spec import SpecError

__all__ = ["enable_compilation_cache", "backend_started", "add_xla_flags", "host_devices",
           "FAST_COMPILE_FLAGS", "COMPILE_PROFILES", "use_compile_profile", "compile_profile"]


def enable_compilation_cache() -> None:
    """Persist XLA compilations under ~/.cache/ufm/jax so repeated runs skip compiling
    (:func:`ufm.enable_compilation_cache`, entries that took >= 0.5 s to compile; the command line
    only: importing ufm sets nothing). Set ``UFM_NO_COMPILATION_CACHE=1`` to turn it off.
    """
    if os.environ.get("UFM_NO_COMPILATION_CACHE"):
        return
    try:
        _enable_cache(os.path.join(os.path.expanduser("~"), ".cache", "ufm", "jax"),
                      min_compile_time_secs=0.5)
    except OSError:  # a read-only home: just compile
        pass


def backend_started() -> bool:
    """Whether JAX has created its backends (after that, XLA_FLAGS is no longer read).

    Importing ufm imports jax but starts no backend; the first array or device query does. JAX
    has no public query for this; its public config does enforce it: ``jax_num_cpu_devices``
    accepts a new value only before the backends start (a RuntimeError after). So the option is
    set to another value and back, which changes nothing before the start.
    """
    try:
        current = jax.config.jax_num_cpu_devices
        jax.config.update("jax_num_cpu_devices", current + 1)
    except RuntimeError:
        return True
    except AttributeError:  # a JAX without the option: assume started, change nothing
        return True
    jax.config.update("jax_num_cpu_devices", current)
    return False


def add_xla_flags(*flags: str) -> bool:
    """Append ``--name=value`` flags to ``XLA_FLAGS`` in this process, skipping any whose name the
    user's ``XLA_FLAGS`` already sets; only before the backend starts. Returns whether it could."""
    if backend_started():
        return False
    current = os.environ.get("XLA_FLAGS", "")
    add = [f for f in flags if f.split("=", 1)[0] not in current]
    if add:
        os.environ["XLA_FLAGS"] = " ".join([current, *add]).strip()
    return True


def host_devices() -> None:
    """One XLA host device per core (sweeps run a chunk per device), unless the user chose."""
    add_xla_flags(f"--xla_force_host_platform_device_count={os.cpu_count() or 1}")


# The "fast" compile profile: XLA:CPU's classic loop emitters instead of its MLIR fusion emitters,
# LLVM at -O0, and each program's kernels compiled as one LLVM module (no parallel codegen split:
# less CPU on 2 cores, a third fewer memory mappings per executable). Measured on the 2-core
# machine (benchmarks/bench_compile.py; README, "The theorem catalog"): a certified solve compiles
# in about a third of the time; the compiled code runs at 0.7-1.05x the speed on small and medium
# problems (matmul and Lanczos bound) and 3.5-5x slower on elementwise-heavy large ones (CE,
# K=10, n=100, d=64). For one-shot work made of many distinct shapes (``ufm verify``, ``ufm
# solve``) compiling is most of the time; a sweep or a long flow runs one program many times and
# keeps XLA's defaults (the moonshot sweep: 116 s with the fast profile, 23.6 s without).
FAST_COMPILE_FLAGS = ("--xla_cpu_use_fusion_emitters=false", "--xla_backend_optimization_level=0",
                      "--xla_cpu_parallel_codegen_split_count=1")
COMPILE_PROFILES = ("fast", "optimized")


def use_compile_profile(default: str) -> str:
    """Choose this process's XLA compile profile before JAX starts; returns the one in effect.

    ``UFM_COMPILE=fast|optimized`` in the environment overrides ``default``. ``"fast"`` appends
    :data:`FAST_COMPILE_FLAGS` to ``XLA_FLAGS`` (flags the user set win); ``"optimized"`` leaves
    XLA's defaults. A command-line process setting (the ``ufm`` command and ``python -m
    proofs_check`` call it); importing ufm sets nothing. Once JAX has started its backend the
    profile can no longer change. Returns ``"fast"`` when every fast flag is in effect, else
    ``"optimized"`` (XLA's defaults, or the user's own ``XLA_FLAGS``).

    Raises:
        SpecError: (a ValueError) ``UFM_COMPILE`` names no profile.
    """
    profile = os.environ.get("UFM_COMPILE", "").strip().lower() or default
    if profile not in COMPILE_PROFILES:
        raise SpecError(f"UFM_COMPILE must be one of {', '.join(COMPILE_PROFILES)}, got {profile!r}")
    if profile == "fast":
        add_xla_flags(*FAST_COMPILE_FLAGS)
    return compile_profile()


def compile_profile() -> str:
    """The compile profile in effect in this process: ``"fast"`` when ``XLA_FLAGS`` holds every
    flag of :data:`FAST_COMPILE_FLAGS`, else ``"optimized"``."""
    current = os.environ.get("XLA_FLAGS", "")
    return "fast" if all(f in current for f in FAST_COMPILE_FLAGS) else "optimized"

"""The ``ufm`` command line: ``ufm solve | flow | sweep | plot | verify`` (``ufm --help``).

The console script is :func:`main` (``ufm.cli:main``); ``python -m ufm`` and ``python -m ufm.cli``
run it too. A problem of any family is a ``[problem]`` table (:func:`build_problem` reads one,
:func:`problem_spec` writes one, :func:`dump_toml` writes a spec file). Packages above ufm add subcommands with :func:`register_command` (``proofs_check``
adds ``verify``). The process settings a command makes before JAX starts (compile profile, one
host device per core, the compilation cache) are public here for other command-line programs.
"""

from ufm.cli._main import USAGE as USAGE
from ufm.cli._main import main as main
from ufm.cli._main import register_command as register_command
from ufm.cli._runtime import COMPILE_PROFILES as COMPILE_PROFILES
from ufm.cli._runtime import FAST_COMPILE_FLAGS as FAST_COMPILE_FLAGS
from ufm.cli._runtime import compile_profile as compile_profile
from ufm.cli._runtime import enable_compilation_cache as enable_compilation_cache
from ufm.cli._runtime import host_devices as host_devices
from ufm.cli._runtime import use_compile_profile as use_compile_profile
from ufm.cli._families import FAMILIES as FAMILIES
from ufm.cli._families import SpecError as SpecError
from ufm.cli._families import build_problem as build_problem
from ufm.cli._families import dump_toml as dump_toml
from ufm.cli._families import problem_spec as problem_spec

_host_devices = host_devices  # the name the tests and earlier releases used

__all__ = ["main", "register_command", "USAGE", "use_compile_profile", "compile_profile",
           "enable_compilation_cache", "host_devices", "FAST_COMPILE_FLAGS", "COMPILE_PROFILES",
           "SpecError", "build_problem", "problem_spec", "dump_toml", "FAMILIES"]

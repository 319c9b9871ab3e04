"""Old names that keep working for one release, each with a DeprecationWarning naming the new one."""

from __future__ import annotations

import importlib
import sys
import types
import warnings


def moved_attribute(owner: str, name: str, module: str, attribute: str | None):
    """``module.attribute`` (the module itself when ``attribute`` is None), after a
    DeprecationWarning that ``owner.name`` moved there."""
    new = module if attribute is None else f"{module}.{attribute}"
    warnings.warn(f"{owner}.{name} is deprecated; use {new}", DeprecationWarning, stacklevel=3)
    target = importlib.import_module(module)
    return target if attribute is None else getattr(target, attribute)


class _ModuleAlias(types.ModuleType):
    """A module name kept as an alias of another: each attribute read warns, then forwards."""

    def __init__(self, old: str, new: str):
        super().__init__(old, f"Deprecated alias of {new}.")
        self._ufm_new = new

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        new = object.__getattribute__(self, "_ufm_new")
        return moved_attribute(self.__name__, name, new, name)


def install_module_alias(old: str, new: str) -> None:
    """Make ``import old`` / ``from old import x`` resolve to ``new`` with a DeprecationWarning.

    Only ufm's own module names are registered in ``sys.modules``; nothing else is touched.
    """
    if not old.startswith("ufm."):
        raise ValueError(f"old must name a ufm module, got old={old!r}")
    sys.modules.setdefault(old, _ModuleAlias(old, new))

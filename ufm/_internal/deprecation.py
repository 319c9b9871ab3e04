"""Old names that keep working for one release, each with a DeprecationWarning naming the new one."""

from __future__ import annotations

import functools
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


def renamed_keywords(**old_to_new: str):
    """Decorator: keyword arguments renamed for one release. A call with an old name warns and
    passes the value under the new name; passing both raises a ValueError naming both."""

    def wrap(fn):
        @functools.wraps(fn)
        def inner(*args, **kwargs):
            for old, new in old_to_new.items():
                if old in kwargs:
                    if new in kwargs:
                        raise ValueError(f"{fn.__name__}: pass {new}= only ({old}= is its deprecated name)")
                    warnings.warn(f"{fn.__name__}({old}=...) is deprecated; use {new}=", DeprecationWarning,
                                  stacklevel=2)
                    kwargs[new] = kwargs.pop(old)
            return fn(*args, **kwargs)

        return inner

    return wrap

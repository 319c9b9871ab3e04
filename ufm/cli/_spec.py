"""A problem from command-line flags or a TOML spec file; the parser and output every command shares."""

from __future__ import annotations

import argparse
import json
import os
import tomllib
from collections.abc import Sequence
from typing import Any

from ufm.losses import MSE, CrossEntropy, Focal, LabelSmoothing
from ufm.problems import UFM

__all__ = ["SpecError", "LOSSES", "PROBLEM_KEYS", "parser", "emit", "read_spec", "problem_dict",
           "build_problem", "problem_from"]

LOSSES = ("ce", "ls", "focal", "mse")
PROBLEM_KEYS = ("K", "n", "d", "loss", "alpha", "gamma", "lam_W", "lam_H", "lam_b", "nonneg")


class SpecError(ValueError):
    """A bad flag or spec entry; the message names it."""


def _add_problem_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("problem (flags override the spec file)")
    g.add_argument("spec", nargs="?", help="TOML spec file with a [problem] table (examples/*.toml)")
    g.add_argument("--K", type=int, help="number of classes, >= 2")
    g.add_argument("--n", help="samples per class: an int, or per-class counts '6,6,1,1'")
    g.add_argument("--d", type=int, help="feature dimension, >= 1")
    g.add_argument("--loss", choices=LOSSES, help="ce (cross-entropy), ls (label smoothing, "
                   "--alpha), focal (--gamma), mse (one-hot)")
    g.add_argument("--alpha", type=float, help="label-smoothing alpha in [0, 1)")
    g.add_argument("--gamma", type=float, help="focal gamma >= 0")
    g.add_argument("--lam-W", dest="lam_W", type=float, help="weight decay on W, >= 0")
    g.add_argument("--lam-H", dest="lam_H", type=float, help="weight decay on H, >= 0")
    g.add_argument("--lam-b", dest="lam_b", help="bias decay: 'none' (no bias, default), 0 (free), > 0")
    g.add_argument("--nonneg", action="store_true", default=None, help="constrain H >= 0")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def parser(name: str, description: str, epilog: str, problem: bool = True) -> argparse.ArgumentParser:
    """The parser of ``ufm NAME``; with ``problem``, the problem flags, a spec file and ``--json``."""
    p = argparse.ArgumentParser(prog=f"ufm {name}", description=description, epilog=epilog,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    if problem:
        _add_problem_flags(p)
    return p


def emit(args: argparse.Namespace, record: dict, text_lines: Sequence[str]) -> None:
    """Print ``record`` as one JSON object (``--json``), else the text lines."""
    if args.json:
        print(json.dumps(record, indent=1, default=str))
    else:
        print("\n".join(text_lines))


def read_spec(path: str | os.PathLike | None) -> dict:
    """The TOML spec file at ``path`` (``{}`` for None); a SpecError names an unreadable file."""
    if path is None:
        return {}
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as e:
        raise SpecError(f"spec: cannot read {path!r}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"spec: {path!r} is not valid TOML: {e}") from None


def problem_dict(args: argparse.Namespace, spec: dict) -> dict:
    """The spec's ``[problem]`` table with the flags that were given written over it."""
    table = dict(spec.get("problem", {}))
    unknown = sorted(set(table) - set(PROBLEM_KEYS))
    if unknown:
        raise SpecError(f"spec [problem]: unknown key(s) {unknown}; known: {list(PROBLEM_KEYS)}")
    for key in PROBLEM_KEYS:
        v = getattr(args, key, None)
        if v is not None:
            table[key] = v
    return table


def _parse_n(value, where):
    if isinstance(value, int):
        return value
    if isinstance(value, list):
        return tuple(value)
    try:
        parts = [int(x) for x in str(value).split(",")]
    except ValueError:
        raise SpecError(f"{where} must be an int or per-class counts like 6,6,1,1, got {value!r}") from None
    return parts[0] if len(parts) == 1 else tuple(parts)


def _loss(table):
    name = str(table.get("loss", "ce")).lower()
    if name not in LOSSES:
        raise SpecError(f"--loss (problem.loss) must be one of {list(LOSSES)}, got {name!r}")
    try:
        return {"ce": lambda: CrossEntropy(),
                "ls": lambda: LabelSmoothing(table.get("alpha", 0.1)),
                "focal": lambda: Focal(table.get("gamma", 2.0)),
                "mse": lambda: MSE()}[name]()
    except ValueError as e:
        raise SpecError(f"--alpha/--gamma (problem.alpha/gamma): {e}") from None


def _lam_b(value):
    if not isinstance(value, str):
        return value
    if value.lower() == "none":
        return None
    try:
        return float(value)
    except ValueError:
        raise SpecError(f"--lam-b must be 'none' or a number >= 0, got {value!r}") from None


def build_problem(table: dict[str, Any]) -> UFM:
    """A :class:`ufm.UFM` from a ``[problem]`` table; errors name the key (``--K`` / ``problem.K``)."""
    for key in ("K", "n", "d", "lam_W", "lam_H"):
        if key not in table:
            flag = "--" + key.replace("_", "-")
            raise SpecError(f"{flag} (problem.{key}) is required")
    loss = _loss(table)
    lam_b = _lam_b(table.get("lam_b"))
    try:
        return UFM(K=table["K"], n=_parse_n(table["n"], "--n (problem.n)"), d=table["d"], loss=loss,
                   lam_W=table["lam_W"], lam_H=table["lam_H"], lam_b=lam_b,
                   nonneg=bool(table.get("nonneg", False)))
    except ValueError as e:
        raise SpecError(f"problem: {e}") from None


def problem_from(args: argparse.Namespace) -> tuple[UFM, dict]:
    """The problem of a command (its spec file, flags written over it) and the spec itself."""
    spec = read_spec(args.spec)
    return build_problem(problem_dict(args, spec)), spec

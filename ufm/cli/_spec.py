"""A problem and a command's options from flags or a TOML spec file; the parser and output every
command shares.

A spec file has a ``[problem]`` table (:mod:`ufm.cli._families`), optionally ``[solve]`` and
``[flow]`` tables with the options of those commands (:data:`SOLVE_KEYS`, :data:`FLOW_KEYS`), and
the ``[sweep]`` table of ``ufm sweep``. Flags override the file. Every value is checked, with
an error naming the key and its valid range, before anything is solved.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tomllib
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

import numpy as np

from ufm.cli._families import FAMILIES, KEYS, LOSSES, Key, SpecError, build_problem, flag_of
from ufm.problems import Problem

__all__ = ["SpecError", "LOSSES", "PROBLEM_KEYS", "TABLES", "SOLVE_KEYS", "FLOW_KEYS", "METRICS",
           "parser", "emit", "read_spec", "problem_dict", "build_problem", "problem_from", "options"]

PROBLEM_KEYS = tuple(sorted({k for keys in KEYS.values() for k in keys}))
TABLES = ("problem", "solve", "flow", "sweep")
METRICS = ("nc1", "nc2_W", "nc2_H", "nc3", "grad_norm")
RENAMED = {"restarts": "starts"}  # old option name -> new, accepted with a deprecation line


def _metric_names(v):
    if isinstance(v, (list, tuple)) and v and all(isinstance(m, str) and m in METRICS for m in v):
        return list(dict.fromkeys(v))
    return None


def _opt(check, doc) -> Key:
    return Key(check, doc)


def _int_ge(lo):
    return _opt(lambda v: v if isinstance(v, int) and not isinstance(v, bool) and v >= lo else None,
                f"an integer >= {lo}")


def _pos():
    def check(v):
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) and v > 0
        return float(v) if ok else None

    return _opt(check, "a finite number > 0")


def _in01():
    def check(v):
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 1
        return float(v) if ok else None

    return _opt(check, "a number in [0, 1)")


def _one_of(*names):
    return _opt(lambda v: v if v in names else None, "one of " + ", ".join(map(repr, names)))


SOLVE_KEYS: dict[str, Key] = {
    "seed": _int_ge(0), "starts": _int_ge(1), "gtol": _pos(), "max_steps": _int_ge(1),
    "order": _one_of("auto", "first", "second"), "certify": _one_of("local", "global")}
FLOW_KEYS: dict[str, Key] = {
    "seed": _int_ge(0), "t1": _pos(), "dt": _pos(), "momentum": _in01(), "points": _int_ge(2),
    "max_steps": _int_ge(1),
    "metrics": _opt(_metric_names, "a non-empty list of " + ", ".join(METRICS))}


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line on stderr (exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_problem_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("problem (flags override the spec file's [problem] table)")
    g.add_argument("spec", nargs="?", help="TOML spec file with a [problem] table (examples/*.toml)")
    g.add_argument("--family", choices=FAMILIES, help="model family (default ufm): ufm, deep (DeepUFM), "
                   "md (MemorizationDilation), multilabel (MultiLabelUFM), regression (RegressionUFM, "
                   "targets Y from the spec file)")
    g.add_argument("--K", type=int, help="number of classes, >= 2")
    g.add_argument("--n", help="samples per class: an int, or per-class counts '6,6,1,1'")
    g.add_argument("--d", type=int, help="feature dimension, >= 1")
    g.add_argument("--widths", help="deep: layer widths d_1,...,d_L, e.g. '8,8'")
    g.add_argument("--loss", choices=LOSSES, help="ce (cross-entropy), ls (label smoothing, "
                   "--alpha), focal (--gamma), mse (one-hot)")
    g.add_argument("--alpha", type=float, help="label-smoothing alpha in [0, 1)")
    g.add_argument("--gamma", type=float, help="focal gamma >= 0")
    g.add_argument("--lam-W", dest="lam_W", help="weight decay on W, >= 0 (deep: one per layer, "
                   "'1e-3,2e-3')")
    g.add_argument("--lam-H", dest="lam_H", type=float, help="weight decay on H, >= 0")
    g.add_argument("--lam-b", dest="lam_b", help="bias decay: 'none' (no bias, default), 0 (free), > 0")
    g.add_argument("--nonneg", action=argparse.BooleanOptionalAction, default=None,
                   help="constrain H >= 0 (ufm)")
    g.add_argument("--activation", choices=("relu", "linear"), help="deep: activation between layers")
    g.add_argument("--relu-features", dest="relu_features", action=argparse.BooleanOptionalAction,
                   default=None, help="deep: a ReLU on H_1 (the constraint H_1 >= 0)")
    g.add_argument("--lam", type=float, help="md: expressivity strength, >= 0")
    g.add_argument("--eta", type=float, help="md: noise rate in [0, 1)")
    g.add_argument("--variant", choices=("radius", "per_sample"), help="md: radius or per_sample")
    g.add_argument("--eps", type=float, help="md: norm smoothing, > 0")
    g.add_argument("--counts", help="multilabel: copies per label-set size, '1:2,2:1'")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def parser(name: str, description: str, epilog: str, problem: bool = True) -> argparse.ArgumentParser:
    """The parser of ``ufm NAME``; with ``problem``, the problem flags, a spec file and ``--json``.
    Its usage errors are one line on stderr with exit status 2."""
    p = OneLineParser(prog=f"ufm {name}", description=description, epilog=epilog,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="show the full traceback of an error")
    if problem:
        _add_problem_flags(p)
    return p


def _plain(v):
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    if hasattr(v, "name") and hasattr(v, "value"):  # an enum member
        return v.name
    return str(v)


def emit(args: argparse.Namespace, record: dict, text_lines: Sequence[str]) -> None:
    """Print ``record`` as one JSON object (``--json``; arrays as lists), else the text lines."""
    if args.json:
        print(json.dumps(record, indent=1, default=_plain))
    else:
        print("\n".join(text_lines))


def read_spec(path: str | os.PathLike | None) -> dict:
    """The TOML spec file at ``path`` (``{}`` for None); a SpecError names an unreadable file or an
    unknown table."""
    if path is None:
        return {}
    try:
        with open(path, "rb") as f:
            spec = tomllib.load(f)
    except OSError as e:
        raise SpecError(f"spec: cannot read {os.fspath(path)!r}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"spec: {os.fspath(path)!r} is not valid TOML: {e}") from None
    for table, body in spec.items():
        if table not in TABLES:
            raise SpecError(f"spec: unknown table or key [{table}]; the tables are "
                            f"{', '.join(f'[{t}]' for t in TABLES)}")
        if not isinstance(body, dict):
            raise SpecError(f"spec: [{table}] must be a table of keys, got {table} = {body!r}")
    return spec


def _split(flag: str, text: str, cast, fmt: str) -> list:
    try:
        return [cast(x) for x in str(text).split(",")]
    except ValueError:
        raise SpecError(f"{flag} must look like {fmt}, got {text!r}") from None


def _from_flag(key: str, text: Any) -> Any:
    """A flag's text as the TOML value of its key (lists from comma-separated values)."""
    if not isinstance(text, str):
        return text
    if key == "n":
        v = _split("--n", text, int, "5 or 6,6,1,1 (integers)")
        return v[0] if len(v) == 1 else v
    if key == "widths":
        return _split("--widths", text, int, "8,8 (integers)")
    if key == "lam_W":
        v = _split("--lam-W", text, float, "1e-3 or 1e-3,2e-3 (numbers)")
        return v[0] if len(v) == 1 else v
    if key == "lam_b":
        return "none" if text.lower() == "none" else _split("--lam-b", text, float,
                                                             "none, 0 or a number > 0")[0]
    if key == "counts":
        try:
            return {m.strip(): int(c) for m, c in (item.split(":") for item in text.split(","))}
        except ValueError:
            raise SpecError(f"--counts must look like 1:2,2:1 (multiplicity:copies), got {text!r}") from None
    return text


def problem_dict(args: argparse.Namespace, spec: Mapping[str, Any]) -> dict:
    """The spec's ``[problem]`` table with the flags that were given written over it."""
    table = dict(spec.get("problem", {}))
    for key in PROBLEM_KEYS:
        v = getattr(args, key, None)
        if v is not None:
            table[key] = _from_flag(key, v)
    return table


def problem_from(args: argparse.Namespace) -> tuple[Problem, dict]:
    """The problem of a command (its spec file, flags written over it) and the spec itself."""
    spec = read_spec(args.spec)
    return build_problem(problem_dict(args, spec)), spec


def options(args: argparse.Namespace, spec: Mapping[str, Any], table: str, keys: Mapping[str, Key],
            defaults: Mapping[str, Any]) -> dict:
    """A command's options: ``defaults``, then the spec's ``[table]``, then the flags given
    (``None`` means not given); each checked against ``keys`` (the error names the key and its
    valid range)."""
    body = dict(spec.get(table, {}))
    for old, new in RENAMED.items():
        if new not in keys:
            continue
        if old in body or getattr(args, old, None) is not None:
            if new in body or getattr(args, new, None) is not None:
                raise SpecError(f"give {new} only ({old} is its deprecated name)")
            print(f"ufm: {table}.{old} / {flag_of(old)} is deprecated; use {new} / {flag_of(new)}",
                  file=sys.stderr)
            if old in body:
                body[new] = body.pop(old)
            else:
                setattr(args, new, getattr(args, old))
    for key in body:
        if key not in keys:
            raise SpecError(f"{table}.{key}: unknown key; the keys of [{table}] are {', '.join(sorted(keys))}")
    out = dict(defaults)
    for key in keys:
        flag = getattr(args, key, None)
        value = flag if flag is not None else body.get(key)
        if value is None:
            continue
        checked = keys[key].check(value)
        if checked is None:
            raise SpecError(f"{table}.{key} ({flag_of(key)}) must be {keys[key].doc}, got {value!r}")
        out[key] = checked
    return out


"""How many compiled solves ``ufm verify`` needs, with and without buckets of sizes.

A compiled solve is keyed by the problem's pytree structure (class, loss, bias mode, static sizes)
and the shapes of its leaves. This script builds every instance of the catalog's theorems that
are solved by the default solver (``proofs_check.theorem.minimize_solver``) and counts

- the distinct keys of the problems as they are (one compile each), and
- the distinct keys after ``ufm.problems.pad`` (one compile per bucket), for the problems that pad;
  the others keep their own key (``ufm.problems.unsupported_reason`` says why).

Buckets pay only where instances differ in size alone. The catalog's instances mostly share one
size per family and differ in loss, bias mode or class counts, so the two counts show whether
routing ``ufm verify`` through buckets would save compiles. Nothing is solved: the script takes
seconds.

    python benchmarks/bench_verify_keys.py          # the default theorems (as ``ufm verify``)
    python benchmarks/bench_verify_keys.py --all    # the slow ones too
"""

from __future__ import annotations

import argparse
import collections
import datetime

import jax
import numpy as np

import proofs_check  # noqa: F401  (turns on float64 for the catalog, as ``ufm verify`` does)
from proofs_check.catalog import all_theorems
from proofs_check.theorem import minimize_solver
from ufm.problems import pad, unsupported_reason


def compile_key(prob) -> tuple:
    """The part of a solve's jit cache key that the problem decides: structure and leaf shapes."""
    leaves, treedef = jax.tree_util.tree_flatten(prob)
    return str(treedef), tuple(np.shape(leaf) for leaf in leaves)


def census(include_slow: bool) -> dict:
    """Counts of the default-solver instances and their distinct compile keys, plain and padded."""
    plain, padded, other = collections.Counter(), collections.Counter(), collections.Counter()
    refused = collections.Counter()
    for th in all_theorems():
        if th.slow and not include_slow:
            continue
        for prob in th.instances():
            if th.solve is not minimize_solver:
                other[type(prob).__name__] += 1
                continue
            plain[compile_key(prob)] += 1
            why = unsupported_reason(prob)
            if why is None:
                padded[("bucket",) + compile_key(pad(prob))] += 1
            else:
                padded[("own",) + compile_key(prob)] += 1
                refused[why.split(":")[0][:70]] += 1
    return dict(solves=sum(plain.values()), plain=len(plain), padded=len(padded), other=other, refused=refused)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--all", action="store_true", help="include the slow theorems (as ufm verify --all)")
    args = ap.parse_args()
    c = census(args.all)
    print(f"{datetime.date.today()}  theorems: {'all' if args.all else 'default'}")
    print(f"default-solver instances: {c['solves']}")
    print(f"distinct compiled solves, as they are: {c['plain']}")
    print(f"distinct compiled solves, padded where they pad: {c['padded']}")
    print("not padded (reason: instances):")
    for why, n in c["refused"].most_common():
        print(f"  {n:3d}  {why}")
    print("instances with their own solver (not counted above):", dict(c["other"]))


if __name__ == "__main__":
    main()

"""Proof rows say what they show: a ``kind="proof"`` row argues with symbols, a ``"sample"`` row says
where it was checked.

A residual computed only from numbers (a matrix of integers at K = 4, a loop over K = 2..6) is a
check at sample points, whatever SymPy prints. The check here watches every value the residual's
Python calls return (``sys.setprofile``), so that a residual whose symbols cancel on construction
(``lam_W K - lam_W K`` is built as ``0``) still counts as symbolic: what matters is that the
expressions it builds have free symbols (sizes, penalties, logits), not the final zero.
"""

from __future__ import annotations

import re
import sys

import pytest
import sympy as sp

from proofs_check.catalog import all_theorems
from proofs_check.theorem import Proof


def _unique_proofs(kind: str) -> list[Proof]:
    seen: dict[int, Proof] = {}
    for th in all_theorems():
        for proof in th.proofs:
            if proof.kind == kind:
                seen.setdefault(id(proof), proof)
    return list(seen.values())


def _free_symbols_of(value) -> set:
    if isinstance(value, sp.MatrixBase):
        return set().union(*(_free_symbols_of(e) for e in value)) if len(value) else set()
    if isinstance(value, sp.Basic):
        return set(value.free_symbols)
    if isinstance(value, (tuple, list)):
        return set().union(set(), *(_free_symbols_of(e) for e in value))
    return set()


def built_symbols(residual) -> set:
    """The free symbols of every SymPy value that a Python-level call returns while ``residual()``
    runs, and of its result."""
    returned: list = []  # read after the run: an object may be returned before it is fully built

    def watch(frame, event, arg):
        if event == "return" and isinstance(arg, (sp.Basic, sp.MatrixBase, tuple)):
            returned.append(arg)

    previous = sys.getprofile()
    sys.setprofile(watch)
    try:
        out = residual()
    finally:
        sys.setprofile(previous)
    return _free_symbols_of(returned) | _free_symbols_of(out)


PROOFS = _unique_proofs("proof")


@pytest.mark.parametrize("proof", PROOFS, ids=[p.claim[:60] for p in PROOFS])
def test_a_proof_builds_symbolic_expressions(proof):
    """Every ``kind="proof"`` residual computes with free symbols (else it is a sample)."""
    assert built_symbols(proof.residual), f"no free symbol in what the residual builds: {proof.claim!r}"


@pytest.mark.parametrize("proof", PROOFS, ids=[p.claim[:60] for p in PROOFS])
def test_a_proof_returns_expressions_or_a_structured_boolean(proof):
    """A proof returns SymPy expressions (after sympify), a tuple of them, or a boolean decided by
    a symbolic computation (a limit, a root count): never a bare float."""
    out = proof.residual()
    parts = out if isinstance(out, tuple) else (out,)
    for part in parts:
        if isinstance(part, bool):
            continue
        expr = sp.sympify(part)
        assert isinstance(expr, (sp.Expr, sp.logic.boolalg.Boolean)), f"{proof.claim!r}: {type(expr)}"
        assert not any(isinstance(a, sp.Float) for a in expr.atoms(sp.Number)), proof.claim


QUANTIFIER = re.compile(r"\b(?:every|all|any)\s+(K|m|n|N)\b")
SIZE_SYMBOLS = {"K": {"K"}, "m": {"m", "p"}, "n": {"n"}, "N": {"N"}}  # m = p + 2 in the m > 2 proofs
STRUCTURED = ("per coordinate", "coordinatewise", "enter only through")


@pytest.mark.parametrize("proof", PROOFS, ids=[p.claim[:60] for p in PROOFS])
def test_a_proof_for_every_size_computes_with_that_size(proof):
    """A claim "for every K" (m, n, N) builds that size as a symbol, or matrices of any size as
    noncommutative symbols, or says which structure removes the size (per coordinate, the other
    entries only through symbols)."""
    sizes = set(QUANTIFIER.findall(proof.claim))
    if not sizes or any(word in proof.claim for word in STRUCTURED):
        return
    built = built_symbols(proof.residual)
    if any(not s.is_commutative for s in built):
        return
    names = {s.name for s in built}
    for size in sizes:
        assert names & SIZE_SYMBOLS[size], f"claims every {size} but builds no such symbol: {proof.claim!r}"


SIZE = re.compile(r"\b[A-Za-z_]\w*\s*=\s*\d|\bin\s+\d+\s*\.\.\s*\d+")


@pytest.mark.parametrize("proof", _unique_proofs("sample"), ids=lambda p: p.claim[:60])
def test_a_sample_says_where_it_was_checked(proof):
    """A sample row names its sizes in the claim (``K = 5``, ``K in 2..6``)."""
    assert SIZE.search(proof.claim), f"a sample row must name its sizes: {proof.claim!r}"


def test_the_check_flags_a_fixed_size_residual():
    """The check can fail: an identity of integer matrices at K = 4 builds no free symbol, the same
    identity in the family a I + b J with symbolic K does."""
    fixed = Proof("(2I - J)^2 = 4I at K = 4", lambda: tuple((2 * sp.eye(4) - sp.ones(4, 4)) ** 2 - 4 * sp.eye(4)))
    assert fixed.run()[0] and not built_symbols(fixed.residual)
    K = sp.Symbol("K", positive=True)
    a, b = 2, -1  # (a I + b J)^2 = a^2 I + (2ab + K b^2) J
    symbolic = Proof("(2I - J)^2 = 4I + (K-4)J", lambda: (a * a - 4, 2 * a * b + K * b * b - (K - 4)))
    assert symbolic.run()[0] and built_symbols(symbolic.residual) == {K}

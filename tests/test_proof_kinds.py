"""Proof rows say what they show: a ``kind="proof"`` row argues with symbols, a ``"sample"`` row says
where it was checked.

A residual computed only from numbers (a matrix of integers at K = 4, a loop over K = 2..6) is a
check at sample points, whatever SymPy prints. The checks here watch (``sys.setprofile``) every
SymPy value that the catalog's code hands to a call or gets back from it, so that a residual whose
symbols cancel on construction (``lam_W K - lam_W K`` is built as ``0``) still counts as symbolic:
what matters is that the expressions it builds have free symbols (sizes, penalties, logits), that
an explicit matrix with a side >= 3 has ``K`` in it, and that a claim "for every K" computes with
``K`` or names the structure that removes it. A residual at a fixed size with symbolic parameters
and no matrix (``m = 3`` factors written out) is not caught: the audit of the catalog is what
labels those.
"""

from __future__ import annotations

import functools
import pathlib
import re
import sys

import pytest
import sympy as sp

import proofs_check
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


PROOF_CODE = (str(pathlib.Path(proofs_check.__file__).parent), __file__)


def built_values(residual) -> list:
    """Every SymPy value (expression, matrix, tuple) that the catalog's own code (a
    ``proofs_check`` frame) hands to a call or gets back from it (an operator, ``diff``, ``subs``,
    ``limit``) while ``residual()`` runs, and its result. SymPy's internals (``count_ops``,
    ``limit``, ``charpoly``) build symbols of their own; those pass between SymPy frames and are
    not seen."""
    seen: list = []  # read after the run: an object may be returned before it is fully built
    kinds = (sp.Basic, sp.MatrixBase, tuple)

    def watch(frame, event, arg):
        caller = frame.f_back
        if caller is None or not caller.f_code.co_filename.startswith(PROOF_CODE):
            return
        if event == "call":  # the arguments handed to SymPy (self of a method: the expression)
            seen.extend(v for v in frame.f_locals.values() if isinstance(v, kinds))
        elif event == "return" and isinstance(arg, kinds):
            seen.append(arg)

    previous = sys.getprofile()
    sys.setprofile(watch)
    try:
        out = residual()
    finally:
        sys.setprofile(previous)
    return seen + [out]


@functools.lru_cache(maxsize=None)
def _built(proof: Proof) -> tuple:
    return tuple(built_values(proof.residual))


def built_symbols(residual) -> set:
    """The free symbols, not SymPy's dummies, of :func:`built_values`."""
    return {s for s in _free_symbols_of(built_values(residual)) if not isinstance(s, sp.Dummy)}


def proof_symbols(proof: Proof) -> set:
    """:func:`built_symbols` of a catalog proof, computed once per proof."""
    return {s for s in _free_symbols_of(list(_built(proof))) if not isinstance(s, sp.Dummy)}


def _matrices(values) -> list:
    out = []
    for v in values:
        if isinstance(v, sp.MatrixBase):
            out.append(v)
        elif isinstance(v, tuple):
            out += _matrices(v)
    return out


PROOFS = _unique_proofs("proof")


@pytest.mark.parametrize("proof", PROOFS, ids=[p.claim[:60] for p in PROOFS])
def test_a_proof_builds_symbolic_expressions(proof):
    """Every ``kind="proof"`` residual computes with free symbols (else it is a sample)."""
    assert proof_symbols(proof), f"no free symbol in what the residual builds: {proof.claim!r}"


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


@pytest.mark.parametrize("proof", PROOFS, ids=[p.claim[:60] for p in PROOFS])
def test_a_proof_builds_no_matrix_of_a_fixed_size(proof):
    """An explicit matrix with a side >= 3 in a proof has the size K in its entries (as the Gram of
    the span of e_i, e_j, 1 does); without it the matrix is a fixed K (4 x 4 at K = 4). 2 x 2
    blocks are structural (the (W, H) block of the origin's Hessian, the binary frame)."""
    for M in _matrices(list(_built(proof))):
        if max(M.shape) >= 3:
            names = {s.name for s in _free_symbols_of(M)}
            assert "K" in names, f"a {M.shape} matrix without K: {proof.claim!r}"


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
    built = proof_symbols(proof)
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
    assert any(max(M.shape) == 4 for M in _matrices(built_values(fixed.residual)))
    K = sp.Symbol("K", positive=True)
    a, b = 2, -1  # (a I + b J)^2 = a^2 I + (2ab + K b^2) J
    symbolic = Proof("(2I - J)^2 = 4I + (K-4)J", lambda: (a * a - 4, 2 * a * b + K * b * b - (K - 4)))
    assert symbolic.run()[0] and built_symbols(symbolic.residual) == {K}

"""ufm verify: records as ARCHITECTURE.md specifies, a wrong constant fails, the CLI works."""

import dataclasses
import json

import numpy as np
import pytest
import sympy as sp

import ufm
from proofs_check import closed_forms as cf
from proofs_check import verify
from proofs_check.catalog import all_theorems, zhu2021
from proofs_check.theorem import Proof

KEYS = {"theorem", "source", "instance", "quantity", "predicted", "measured", "rel_error", "passed"}
PROB = ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=5e-3, lam_b=5e-3)
SMALL = [zhu2021.CE_ETF.__class__(**{**zhu2021.CE_ETF.__dict__, "instances": lambda: [PROB]})]


def test_records_have_the_contract_keys_and_pass():
    rows = verify.run(SMALL)
    assert rows and all(KEYS | {"kind"} <= set(r) for r in rows)
    assert all(r["passed"] for r in rows), [r for r in rows if not r["passed"]]
    json.dumps(rows)
    assert "W_gram" in verify.format_table(rows)
    assert {r["kind"] for r in rows} >= {"proof", "numeric", "certificate"}


def _with(theorem, **changes):
    return dataclasses.replace(theorem, **changes)


def test_a_wrong_constant_makes_the_numeric_check_fail():
    """Break the closed form on purpose (the ETF norm off by 1e-6 in its SymPy expression): the
    prediction follows the expression, and verify reports every quantity built from it."""
    exprs = dict(SMALL[0].expressions)
    exprs["||w_k||^2"] = exprs["||w_k||^2"] * (1 + sp.Rational(1, 10**6))
    rows = verify.run([_with(SMALL[0], expressions=exprs)], prove=False)
    failed = {r["quantity"] for r in rows if not r["passed"]}
    assert failed == {"w_norm2", "h_norm2", "W_gram", "Hbar_gram"}


# ---- one source of truth: every expression feeds the prediction, and a wrong one is caught ------
WITH_EXPRESSIONS = [t for t in all_theorems() if t.expressions and not t.slow]


def _mutations(expr):
    """Replacements of an expression that move any value: up, down, negated, plus one (a threshold
    only selects a branch, and the instances sit at least 5% from it: the negated threshold flips
    the branch of every instance above it, the raised one of many below it)."""
    return (expr * sp.Rational(6, 5) + sp.Rational(1, 5), expr * sp.Rational(4, 5) - sp.Rational(1, 5), -expr, expr + 1)


def _fails(theorem, prob, predicted, reference) -> bool:
    """Whether the rows comparing ``predicted`` with ``reference`` (standing in for a solve that
    matches the unmutated theorem, as the verify run shows it does) fail; raising counts as failing."""
    try:
        rows = theorem.compare(prob, predicted, reference, {"grad_norm": 0.0, "converged": True})
    except (ValueError, KeyError, ZeroDivisionError, RuntimeError):
        return True
    return any(not r["passed"] for r in rows if r["kind"] in ("numeric", "bound", "strict bound"))


@pytest.mark.parametrize("theorem", WITH_EXPRESSIONS, ids=lambda t: t.name[:40])
def test_each_expression_feeds_the_prediction(theorem):
    used = set()
    for prob in theorem.instances():
        used |= theorem.expressions_used(prob)
    assert used == set(theorem.expressions), set(theorem.expressions) - used


@pytest.mark.parametrize("theorem", WITH_EXPRESSIONS, ids=lambda t: t.name[:40])
def test_replacing_an_expression_makes_the_numeric_rows_fail(theorem):
    """Mutation test: for every expression, a replacement (``dataclasses.replace``) changes the
    prediction on some representative instance and the rows comparing it with the unmutated
    prediction (which the solve matches to 1e-8) fail there. The test with real solves is
    ``test_slow.py::test_mutation_against_solves``."""
    instances = theorem.instances()
    reference = [theorem.predict(p) for p in instances]
    with np.errstate(all="ignore"):
        for name, expr in theorem.expressions.items():
            caught = False
            for new in _mutations(expr):
                mutated = dataclasses.replace(theorem, expressions={**theorem.expressions, name: new})
                for prob, ref in zip(instances, reference):
                    try:
                        pred = mutated.predict(prob)
                    except (ValueError, KeyError, ZeroDivisionError, RuntimeError):
                        caught = True
                        continue
                    caught |= _fails(theorem, prob, pred, ref)
            assert caught, f"replacing expression {name!r} changes no checked quantity"


def _by_name(text):
    return next(t for t in all_theorems() if t.name.startswith(text))


# The entries whose value, Gram scales or ETF scale were once NumPy formulas inside ``assemble``:
# each expression that now feeds them, and the quantity a replaced expression must move.
SOURCE_OF_TRUTH = [
    ("PolyLoss-1 UFM", "c", "Hbar_gram"), ("PolyLoss-1 UFM", "||w_k||^2", "w_norm2"),
    ("PolyLoss-1 UFM", "g(p)", "W_gram"), ("PolyLoss-1 UFM", "kappa", "value"),
    ("MSE UFM, free bias", "f(s, t)", "value"), ("MSE UFM, free bias", "rho_W", "W_gram"),
    ("MSE UFM, free bias", "rho_H", "Hbar_gram"),
    ("MSE UFM, no bias, any encoding", "f(s, t)", "value"), ("MSE UFM, no bias, any encoding", "rho_W", "W_gram"),
    ("MSE UFM, no bias, any encoding", "rho_H", "h_norm2"),
    ("MSE UFM, imbalanced, no bias", "f_k(s)", "value"), ("MSE UFM, imbalanced, no bias", "rho_W", "w_norm2"),
    ("MSE UFM, imbalanced, no bias", "rho_H", "Hbar_gram"),
    ("Imbalanced MSE UFM, free bias", "rho_W", "W_gram"), ("Imbalanced MSE UFM, free bias", "rho_H", "Hbar_gram"),
    ("Multi-label PAL-CE UFM", "rho_W", "W_gram"), ("Multi-label PAL-CE UFM", "rho_H", "group_mean_gram"),
]


@pytest.mark.parametrize("entry,name,quantity", SOURCE_OF_TRUTH, ids=lambda v: str(v)[:24])
def test_assemble_reads_value_and_scales_from_the_expressions(entry, name, quantity):
    """One source of truth: replacing the expression moves exactly the quantity built from it, so
    ``assemble`` holds no NumPy copy of the formula (the row of that quantity fails)."""
    theorem = _by_name(entry)
    assert name in theorem.expressions
    caught = False
    for prob in theorem.instances():
        ref = theorem.predict(prob)
        for new in _mutations(theorem.expressions[name]):
            mutated = dataclasses.replace(theorem, expressions={**theorem.expressions, name: new})
            try:
                with np.errstate(all="ignore"):
                    pred = mutated.predict(prob)
            except (ValueError, ZeroDivisionError):  # a mutation off the domain: another one must move it
                continue
            rows = theorem.compare(prob, pred, ref, {"grad_norm": 0.0, "converged": True})
            caught |= any(not r["passed"] for r in rows if r["quantity"] == quantity)
    assert caught, f"replacing {name!r} does not move {quantity!r} of {entry!r}"


def test_every_theorem_has_expressions_or_names_its_independent_solver():
    for th in all_theorems():
        assert th.expressions or th.no_closed_form, th.name


def test_every_tolerance_other_than_the_default_has_a_reason():
    for th in all_theorems():
        for q in th.tolerances:
            tol, reason = th.tolerance(q)
            assert tol != 1e-8 and len(reason) > 20, (th.name, q)


def test_a_proof_residual_with_a_float_is_refused():
    """Floats are never rationalized: 0.1 + 0.2 - 0.3 is not a proof of anything."""
    with pytest.raises(ValueError, match="float"):
        Proof("float arithmetic", lambda: sp.Float(0.1) + sp.Float(0.2) - sp.Float(0.3)).run()


def test_the_certificate_row_fails_when_the_solve_did_not_converge():
    th = SMALL[0]
    pred = th.predict(PROB)
    rows = th.compare(PROB, pred, pred, {"grad_norm": 1.0, "converged": False})
    cert = [r for r in rows if r["kind"] == "certificate"]
    assert len(cert) == 1 and not cert[0]["passed"]


def test_the_summary_fits_a_terminal_and_separates_kinds():
    rows = [dict(r, theorem=t.name) for t in all_theorems()[:3] for r in t.prove()]
    text = verify.format_summary(rows, all_theorems()[:3])
    assert all(len(line) <= 100 for line in text.splitlines())
    head = text.splitlines()[0]
    for col in ("solves", "checks", "proofs", "defs", "samples", "assumed"):
        assert col in head
    assert "assumed without proof" in text


def test_a_wrong_constant_makes_the_symbolic_proof_fail():
    """g* with K instead of K-1 is not stationary: the SymPy proof must fail."""
    K, g, kap = zhu2021.K, zhu2021.g, zhu2021.kap
    wrong = sp.log((1 - K * kap) / kap)
    proof = Proof("phi'(wrong g*) = 0", lambda: sp.diff(zhu2021.phi, g).subs(g, wrong))
    ok, residual = proof.run()
    assert not ok and residual != "0"


@pytest.mark.parametrize("theorem", all_theorems(), ids=lambda t: t.name[:40])
def test_every_symbolic_proof_passes(theorem):
    rows = theorem.prove()
    assert rows, "every theorem carries at least one SymPy proof"
    assert all(r["passed"] for r in rows), [r["quantity"] for r in rows if not r["passed"]]


@pytest.mark.parametrize("theorem", all_theorems(), ids=lambda t: t.name[:40])
def test_representative_instances_are_inside_the_assumptions(theorem):
    for prob in theorem.instances():
        ok, why = theorem.assumptions(prob)
        assert ok, why
    if theorem.random_instance is not None:
        rng = np.random.default_rng(0)
        assert any(theorem.assumptions(theorem.random_instance(rng))[0] for _ in range(20))


def test_outside_assumptions_raises_with_reason():
    with pytest.raises(ValueError, match="kappa < 1/K"):
        zhu2021.CE_ETF.check(ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy(), lam_W=1.0, lam_H=1.0))


def test_cli_writes_json_and_markdown(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("UFM_NO_COMPILATION_CACHE", "1")
    monkeypatch.setattr(verify, "all_theorems", lambda: SMALL)
    out_json, out_md = tmp_path / "r.json", tmp_path / "r.md"
    code = ufm.cli.main(["verify", "--json", str(out_json), "--markdown", str(out_md), "--quiet"])
    assert code == 0
    rows = json.loads(out_json.read_text())
    assert all(KEYS <= set(r) for r in rows)
    value = [r for r in rows if r["quantity"] == "value"][0]
    assert np.isclose(value["predicted"], cf.ce_family(PROB).quantities["value"], rtol=1e-14, atol=0.0)
    assert out_md.read_text().startswith("| theorem |")
    out = capsys.readouterr().out
    assert "runtime" in out and all(len(line) <= 100 for line in out.splitlines())


def test_random_instances_are_drawn_inside_assumptions_and_checked():
    def draw(rng):  # sometimes outside the assumptions (kappa > 1/K): those are redrawn
        lam = float(rng.uniform(1e-3, 0.5))
        return ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy(), lam_W=lam, lam_H=lam, lam_b=5e-3)

    theorem = _with(SMALL[0], random_instance=draw)
    rows = verify.run([theorem], random=3, seed=1, prove=False)
    instances = {r["instance"] for r in rows if r["kind"] != "count"}
    assert len(instances) == 4  # the representative one and three random ones
    assert all(r["passed"] for r in rows)
    count = [r for r in rows if r["quantity"] == verify.RANDOM_QUANTITY]
    assert len(count) == 1 and count[0]["measured"] == count[0]["predicted"] == 3

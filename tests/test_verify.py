"""ufm verify: records as ARCHITECTURE.md specifies, a wrong constant fails, the CLI works."""

import json

import numpy as np
import pytest
import sympy as sp

import ufm
from proofs_check import closed_forms as cf
from proofs_check import verify
from proofs_check.catalog import all_theorems, zhu2021
from proofs_check.theorem import Proof, Theorem

KEYS = {"theorem", "source", "instance", "quantity", "predicted", "measured", "rel_error", "passed"}
PROB = ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=5e-3, lam_b=5e-3)
SMALL = [zhu2021.CE_ETF.__class__(**{**zhu2021.CE_ETF.__dict__, "instances": lambda: [PROB]})]


def test_records_have_the_contract_keys_and_pass():
    rows = verify.run(SMALL)
    assert rows and all(KEYS <= set(r) for r in rows)
    assert all(r["passed"] for r in rows), [r for r in rows if not r["passed"]]
    json.dumps(rows)
    assert "W_gram" in verify.format_table(rows)


def _with(theorem, **changes):
    return Theorem(**{**theorem.__dict__, **changes})


def test_a_wrong_constant_makes_the_numeric_check_fail():
    """Break the closed form on purpose (the ETF norm off by 1e-6): verify must report it."""
    def broken(prob):
        q = dict(cf.ce_family(prob).quantities)
        q["w_norm2"] = q["w_norm2"] * (1 + 1e-6)
        return q

    rows = verify.run([_with(SMALL[0], predict=broken)], prove=False)
    assert [r["quantity"] for r in rows if not r["passed"]] == ["w_norm2"]


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
    assert np.isclose(value["predicted"], cf.ce_family(PROB).quantities["value"])
    assert out_md.read_text().startswith("| theorem |")
    assert "runtime" in capsys.readouterr().out


def test_random_instances_are_drawn_inside_assumptions_and_checked():
    def draw(rng):  # sometimes outside the assumptions (kappa > 1/K): those are redrawn
        lam = float(rng.uniform(1e-3, 0.5))
        return ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy(), lam_W=lam, lam_H=lam, lam_b=5e-3)

    theorem = _with(SMALL[0], random_instance=draw)
    rows = verify.run([theorem], random=3, seed=1, prove=False)
    instances = {r["instance"] for r in rows}
    assert len(instances) == 4  # the representative one and three random ones
    assert all(r["passed"] for r in rows)

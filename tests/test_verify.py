"""ufm verify: records as ARCHITECTURE.md specifies, a wrong closed form fails, the CLI exits."""

import json

import numpy as np

import ufm
from proofs_check import closed_forms as cf
from proofs_check import verify

KEYS = {"theorem", "source", "instance", "quantity", "predicted", "measured", "rel_error", "passed"}
PROB = ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=5e-3, lam_b=5e-3)


def test_records_have_the_contract_keys_and_pass():
    rows = verify.run([verify.Check("CE ETF", PROB), verify.Check("origin", PROB, kind="origin_saddle")])
    assert rows and all(KEYS <= set(r) for r in rows)
    assert all(r["passed"] for r in rows), [r for r in rows if not r["passed"]]
    json.dumps(rows)  # serializable
    table = verify.format_table(rows)
    assert "W_gram" in table and "hessian_min_eig_at_origin" in table


def test_a_wrong_constant_makes_the_check_fail(monkeypatch):
    """Break the closed form on purpose (the ETF norm off by 1e-6): verify must report it."""
    good = cf.ce_family

    def broken(prob):
        pred = good(prob)
        q = dict(pred.quantities)
        q["w_norm2"] = q["w_norm2"] * (1 + 1e-6)
        return cf.Prediction(pred.theorem, pred.source, pred.tag, q)

    monkeypatch.setattr(cf, "ce_family", broken)
    rows = verify.run([verify.Check("CE ETF", PROB)])
    failed = [r["quantity"] for r in rows if not r["passed"]]
    assert failed == ["w_norm2"]


def test_cli_writes_json_and_markdown(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("UFM_NO_COMPILATION_CACHE", "1")
    monkeypatch.setattr(verify, "default_checks", lambda: [verify.Check("CE ETF", PROB)])
    out_json, out_md = tmp_path / "r.json", tmp_path / "r.md"
    code = ufm.cli.main(["verify", "--json", str(out_json), "--markdown", str(out_md), "--quiet"])
    assert code == 0
    rows = json.loads(out_json.read_text())
    assert all(KEYS <= set(r) for r in rows)
    assert np.isclose(rows[0]["predicted"], cf.ce_family(PROB).quantities["value"])
    assert out_md.read_text().startswith("| theorem |")
    assert "runtime" in capsys.readouterr().out


def test_default_catalog_is_inside_assumptions():
    for check in verify.default_checks():
        if check.kind == "minimizer":
            ok, why = cf.assumptions(check.prob)
            assert ok, (check.label, why)

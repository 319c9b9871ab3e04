"""The real-network study (examples/nc_real_network.py) in a seconds-long version; needs scikit-learn."""

import importlib.util
import json
import pathlib

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

from ufm import metrics  # noqa: E402

EXAMPLE = pathlib.Path(__file__).resolve().parents[1] / "examples" / "nc_real_network.py"


@pytest.fixture(scope="module")
def study():
    spec = importlib.util.spec_from_file_location("nc_real_network", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_tiny_study_runs_and_saves_plots(study, tmp_path):
    res = study.main(str(tmp_path), tiny=True, models=False)
    for name in ("nc_real_network.png", "nc_real_network_noise.png", "nc_real_network.json"):
        assert (tmp_path / name).stat().st_size > 0
    rows = json.loads((tmp_path / "nc_real_network.json").read_text())["rows"]
    cfg = study.TINY
    assert [r["step"] for r in rows] == list(range(0, cfg["steps"] + 1, cfg["record"]))
    n_layers = len(cfg["widths"]) + 1  # the input and every hidden layer
    for r in rows:
        assert len(r["layer_nc1_train"]) == n_layers == len(r["layer_nc1_test"])
        # the last hidden layer's NC1 is the penultimate-feature NC1 of the report
        assert r["layer_nc1_train"][-1] == pytest.approx(r["train"]["nc1"], rel=1e-12, abs=0.0)
        for key in ("acc", "ncc_acc", "nc4"):
            assert 0.0 <= r["test"][key] <= 1.0
    # the input layer does not change during training
    assert len({round(r["layer_nc1_train"][0], 12) for r in rows}) == 1
    assert set(res["noise"]) == {"CE", f"LS{cfg['alpha']}"}


def test_report_on_network_features_matches_in_memory_nc1(study):
    Xtr, ytr, Xte, yte = study.digits_split(range(10), 15)
    params = study.init_mlp(study.jax.random.PRNGKey(0), (64, 12, 10))
    (Htr,), _ = study.np_forward(params, Xtr)
    (Hte,), _ = study.np_forward(params, Xte)
    assert Htr.dtype == np.float32
    rep = metrics.collapse_report(Htr, ytr, Hte, yte)
    # NC1 of the features of an untrained network is O(1): relative bounds only (abs=0).
    nc1 = float(metrics.nc1(Htr.astype(np.float64), ytr))
    assert rep["train"]["nc1"] == pytest.approx(nc1, rel=1e-10, abs=0.0)
    acc = metrics.StreamingNC(K=10, d=12)
    for s in range(0, Hte.shape[1], 97):
        acc.update(Hte[:, s:s + 97], yte[s:s + 97])
    train = metrics.StreamingNC(K=10, d=12).update(Htr, ytr)
    streamed = acc.result(reference=train)["nc1_vs_train"]
    assert streamed == pytest.approx(rep["test"]["nc1_vs_train"], rel=1e-10, abs=0.0)

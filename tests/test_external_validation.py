"""crsml evaluate / update and the sample-size check (#25)."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from scipy.special import expit, logit
from sklearn.metrics import roc_auc_score

from crsml.evaluation import sample_size
from crsml.tracking import load_model
from crsml.validation import (
    closed_test,
    evaluate,
    flexible_calibration,
    performance,
    recalibration_tests,
    update,
)


def _calibrated(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = expit(rng.normal(-1.2, 1.1, n))
    return (rng.random(n) < p).astype(int), p


def test_flexible_calibration_of_a_calibrated_predictor_is_flat():
    y, p = _calibrated(20_000, 0)
    ici = np.mean(np.abs(flexible_calibration(y, p) - p))
    assert ici < 0.02


@pytest.mark.parametrize("offset", [-0.8, 0.6])
def test_oe_and_calibration_in_the_large_recover_a_known_offset(offset):
    y, p = _calibrated(20_000, 1)
    shifted = expit(logit(p) - offset)  # the predictor under-states the log odds by `offset`
    t = performance(y, {"model": shifted}, n_boot=50, seed=0).loc["model"]
    assert t["cal_intercept_low"] <= offset <= t["cal_intercept_high"]
    assert abs(t["cal_intercept"] - offset) < 0.06
    assert t["oe"] == pytest.approx(y.sum() / shifted.sum())
    assert (t["oe"] > 1) == (offset > 0)
    calibrated = performance(y, {"model": p}, n_boot=50, seed=0).loc["model"]
    assert calibrated["cal_intercept_low"] <= 0 <= calibrated["cal_intercept_high"]


def test_closed_test_picks_the_update_the_miscalibration_needs():
    y, p = _calibrated(5_000, 2)
    assert closed_test(recalibration_tests(y, p)[0]) == "none"
    assert closed_test(recalibration_tests(y, expit(logit(p) - 0.7))[0]) == "intercept"
    assert closed_test(recalibration_tests(y, expit(2.0 * logit(p)))[0]) == "logistic"
    _, coefs = recalibration_tests(y, expit(logit(p) - 0.7))
    assert coefs["intercept"][0] == pytest.approx(0.7, abs=0.1)


def test_sample_size_matches_pmsampsize_worked_example():
    s = sample_size(0.174, 24, r2_cs=0.288, available_n=500, available_events=87)
    assert (s.n_criterion_1, s.n_criterion_2, s.n_criterion_3, s.required_n) == (623, 662, 221, 662)
    assert not s.enough and "162 more patients" in s.sentence()
    assert sample_size(0.174, 24, r2_cs=0.288, available_n=700).enough


def test_evaluate_on_development_patients_gives_the_apparent_figures(tiny_model):
    model_dir, _, result, cohort = tiny_model
    model = load_model(model_dir)
    ev = evaluate(model, cohort, by=["sex", "age_band"], n_boot=100, curve_boot=20)
    apparent = roc_auc_score(result.y, model.predict_features(result.X)["risk"])
    assert ev.model_row["auroc"] == pytest.approx(apparent)
    assert ev.flow.loc["labelled", "n"] == len(result.y) and ev.flow.loc["with the outcome", "n"] == result.y.sum()
    assert set(ev.subgroups["column"]) == {"sex", "age_band"}
    assert len(ev.table) > 1  # the baselines' development fits predicted the patients
    assert ev.case_mix_summary["available"] and ev.case_mix_summary["membership_c"] < 0.6
    assert ev.model_info["model_digest"]


def test_report_json_and_mlflow_hold_no_patient_identifier(tiny_model, tmp_path):
    import mlflow

    from crsml.reporting import screenshot, write_evaluation_report
    from crsml.tracking import log_evaluation

    model_dir, uri, _, cohort = tiny_model
    ev = evaluate(load_model(model_dir), cohort, by=["sex"], n_boot=50, curve_boot=10)
    html_path = write_evaluation_report(ev, tmp_path / "report")
    run_id = log_evaluation(ev, tmp_path / "report", tracking_uri=uri, log=lambda *a: None)
    ids = set(cohort.patients["patient_id"].astype(str))
    texts = [html_path.read_text(), (tmp_path / "report" / "evaluation.json").read_text()]
    client = mlflow.MlflowClient(uri)
    run = client.get_run(run_id)
    texts.append(json.dumps({"params": run.data.params, "metrics": run.data.metrics, "tags": run.data.tags}))
    assert run.data.tags["crsml.judged_model_digest"] == ev.model_info["model_digest"]
    for text in texts:
        found = set(re.findall(r"SIM\d+", text)) & ids
        assert not found
    page = texts[0]
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 5
    import matplotlib.image as mpimg

    for data in images:
        pixels = mpimg.imread(io.BytesIO(base64.b64decode(data)), format="png")
        assert pixels.std() > 0.01  # a drawn plot, not a blank image
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("headless Chromium not installed (apt-get install chromium) to check rendering")
    png = screenshot(html_path, tmp_path / "report.png")
    shot = mpimg.imread(png)
    assert png.stat().st_size > 50_000 and shot.std() > 0.05


def test_update_recalibrates_keeps_lineage_and_round_trips(tiny_model, tmp_path):
    from crsml.tracking import export_model

    model_dir, _, _, cohort = tiny_model
    parent = load_model(model_dir)
    up = update(parent, cohort, method="intercept", log=lambda *a: None)
    assert up.method == "intercept" and up.chosen_by == "user"
    lineage = up.model.metadata["lineage"][-1]
    assert lineage["parent_digest"] == parent.source["digest"] and lineage["slope"] == 1.0
    export_model(up.model, tmp_path / "updated")
    again = load_model(tmp_path / "updated")
    X = up.model.transform(cohort)
    np.testing.assert_allclose(again.predict_features(X)["risk"], up.model.predict_features(X)["risk"])
    shift = logit(again.predict_features(X)["risk"]) - logit(parent.predict_features(X)["risk"])
    np.testing.assert_allclose(shift, lineage["intercept"], atol=1e-6)
    assert again.metadata["lineage"][-1]["method"] == "intercept"


def test_evaluate_refuses_an_unknown_column(tiny_model):
    from crsml.errors import CrsmlError

    model_dir, _, _, cohort = tiny_model
    with pytest.raises(CrsmlError, match="--by nope"):
        evaluate(load_model(model_dir), cohort, by=["nope"])


def test_cli_evaluate_and_update_write_report_and_updated_model(tiny_model, tmp_path):
    from typer.testing import CliRunner

    from crsml.cli import app

    model_dir, _, _, cohort = tiny_model
    cohort.save(tmp_path / "cohort")
    runner = CliRunner()
    r = runner.invoke(
        app,
        [
            "evaluate",
            "--model",
            str(model_dir),
            "--cohort",
            str(tmp_path / "cohort"),
            "--by",
            "sex",
            "--out",
            str(tmp_path / "eval"),
            "--n-boot",
            "50",
            "--no-mlflow",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "calibration-in-the-large" in r.output and (tmp_path / "eval" / "index.html").exists()
    r = runner.invoke(
        app,
        [
            "update",
            "--model",
            str(model_dir),
            "--cohort",
            str(tmp_path / "cohort"),
            "--method",
            "logistic",
            "--model-out",
            str(tmp_path / "updated"),
            "--no-mlflow",
        ],
    )
    assert r.exit_code == 0, r.output
    assert load_model(tmp_path / "updated").metadata["lineage"][-1]["method"] == "logistic"
    r = runner.invoke(
        app,
        [
            "evaluate",
            "--model",
            str(model_dir),
            "--cohort",
            str(tmp_path / "cohort"),
            "--by",
            "nope",
            "--out",
            str(tmp_path / "eval2"),
            "--no-mlflow",
        ],
    )
    from crsml.errors import CrsmlError

    # crsml's entry point turns this error into one line and exit code 2 (tests/test_hardening.py)
    assert isinstance(r.exception, CrsmlError) and "--by nope" in str(r.exception)


def test_random_effects_pooling_and_prediction_interval():
    from crsml.evaluation import pool

    same = pool(np.full(4, 0.8), np.full(4, 0.2), "logit")
    assert same["tau2"] == pytest.approx(0.0) and same["pooled"] == pytest.approx(0.8)
    spread = pool(np.array([0.70, 0.80, 0.90, 0.75, 0.85]), np.full(5, 0.05), "logit")
    assert spread["tau2"] > 0 and spread["i2"] > 0.5
    assert spread["prediction_low"] < spread["low"] < spread["pooled"] < spread["high"] < spread["prediction_high"]


def test_prediction_instability_summarises_bootstrap_refits(tiny_model):
    from crsml.evaluation import prediction_instability

    model_dir, _, result, _ = tiny_model
    est = result.model.estimator
    summary, P = prediction_instability(est, result.X[result.model.feature_names], result.y, n_boot=5, seed=1)
    assert P.shape == (5, len(result.y)) and summary["mape"] > 0
    assert all(row["patients"] >= 10 for row in summary["by_risk"])
    stored = load_model(model_dir).metadata["instability"]
    assert stored["n_boot"] == 20 and 0 < stored["mape"] < 0.5


def test_an_update_is_registered_as_a_new_version_with_its_lineage(tiny_model):
    import mlflow

    from crsml.tracking import log_update

    _, uri, _, cohort = tiny_model
    client = mlflow.MlflowClient(uri)
    before = max(int(v.version) for v in client.search_model_versions("name='tiny-severe'"))
    parent = load_model(f"models:/tiny-severe/{before}", tracking_uri=uri)
    up = update(parent, cohort, method="logistic", log=lambda *a: None)
    assert up.lineage["parent_registered_name"] == "tiny-severe" and up.lineage["parent_version"] == str(before)
    run_id = log_update(up, tracking_uri=uri, log=lambda *a: None)
    versions = client.search_model_versions("name='tiny-severe'")
    newest = max(versions, key=lambda v: int(v.version))
    assert int(newest.version) == before + 1 and newest.run_id == run_id
    assert client.get_run(run_id).data.tags["crsml.parent_version"] == str(before)
    again = load_model(f"models:/tiny-severe/{newest.version}", tracking_uri=uri)
    assert again.metadata["lineage"][-1]["method"] == "logistic"


def test_internal_external_cross_validation_leaves_each_site_out(tiny_model):
    from crsml.evaluation import internal_external
    from crsml.models import XGBRiskClassifier

    _, _, result, cohort = tiny_model
    X = result.X[result.model.feature_names]
    sites = cohort.patients.set_index(cohort.patients["patient_id"].astype(str))["site"]
    groups = sites.reindex(X.index.get_level_values("patient_id").astype(str))
    per_group, pooled = internal_external(
        X, result.y, groups, lambda: XGBRiskClassifier(n_trials=1, inner_folds=2), n_boot=50, log=lambda *a: None
    )
    assert set(per_group["group"]) <= set(sites.unique()) and len(per_group) >= 2
    assert per_group["n"].sum() <= len(result.y) and (per_group["auroc_se"] > 0).all()
    assert pooled.loc["auroc", "low"] <= pooled.loc["auroc", "pooled"] <= pooled.loc["auroc", "high"]

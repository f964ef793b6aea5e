"""End to end: crsml train on a small simulated cohort, what MLflow receives, the exported
model, reproducibility and a real MLflow tracking server."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import mlflow
import numpy as np
import pytest
from conftest import free_port, run_cli, train_logged, wait_for

import crsml
from crsml import load_model
from crsml.errors import CrsmlError
from crsml.simulation import simulate
from crsml.training import MODEL_NAME, BenefitSettings, TrainSettings

SETTINGS = dict(
    task="severe_crs",
    landmark_h=48.0,
    trials=4,
    cv_folds=3,
    cv_repeats=1,
    n_boot=100,
    n_jobs=1,
    seed=7,
    ensemble_size=3,
    instability_boot=0,  # prediction instability has its own tests (test_external_validation.py)
    learner="tuned",  # the tuned ensemble and its MLflow record; the learner choice has its own tests below
)


@pytest.fixture(scope="module")
def cohort():
    return simulate(300, seed=5, truth_draws=0)


@pytest.fixture(scope="module")
def trained(cohort, tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    old = os.getcwd()
    os.chdir(root)  # the default store is ./mlruns
    try:
        uri = f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"
        (root / "mlruns").mkdir()
        r1 = train_logged(cohort, TrainSettings(**SETTINGS), root / "models" / "sev48", uri)
        r2 = train_logged(cohort, TrainSettings(**SETTINGS), root / "models" / "sev48b", uri)
    finally:
        os.chdir(old)
    return root, uri, r1, r2


def test_evaluation_table_has_model_and_baselines_with_intervals(trained):
    _, _, r, _ = trained
    t = r.table
    assert MODEL_NAME in t.index and "logistic regression (all features)" in t.index
    assert {"m-EASIX (landmark)", "EASIX (landmark)", "current ASTCT grade", "IL-6 maximum"} <= set(t.index)
    for m in ("auroc", "auprc", "brier", "cal_intercept", "cal_slope"):
        assert (t[f"{m}_low"] <= t[m]).all() and (t[m] <= t[f"{m}_high"]).all()
    assert t.loc[MODEL_NAME, "auroc"] > 0.6


def test_same_seed_same_metrics_and_same_booster(trained):
    root, _, r1, r2 = trained
    assert r1.table.equals(r2.table)
    a = sorted((root / "models/sev48/artifacts/crsml/classifier").glob("booster*.json"))
    b = sorted((root / "models/sev48b/artifacts/crsml/classifier").glob("booster*.json"))
    assert len(a) == len(r1.model.estimator.members_) == 3 and [f.name for f in a] == [f.name for f in b]
    assert all(f.read_bytes() == g.read_bytes() for f, g in zip(a, b, strict=True))


def test_mlflow_run_holds_params_metrics_plots_trials_dictionary_and_registered_model(trained):
    _, uri, r, _ = trained
    client = mlflow.MlflowClient(uri)
    run = client.get_run(r.run_id)
    assert run.data.params["task"] == "severe_crs" and run.data.params["trials"] == "4"
    assert len(run.data.params["data_digest"]) == 64
    members = r.model.estimator.members_
    assert run.data.params["ensemble_size"] == "3" and run.data.params["ensemble_members"] == str(len(members))
    assert run.data.params["ensemble_trials"] == ",".join(str(m["trial"]) for m in members)
    for m in ("auroc", "auroc_low", "auroc_high", "brier", "cal_slope", "n_labelled", "n_events"):
        assert m in run.data.metrics
    files = {f.path for f in client.list_artifacts(r.run_id, "evaluation")}
    assert {
        "evaluation/evaluation.csv",
        "evaluation/optuna_trials.csv",
        "evaluation/feature_dictionary.csv",
        "evaluation/counts.json",
        "evaluation/outer_folds.csv",
    } <= files
    plots = {f.path for f in client.list_artifacts(r.run_id, "evaluation/plots")}
    assert {
        "evaluation/plots/roc.png",
        "evaluation/plots/calibration.png",
        "evaluation/plots/decision_curve.png",
    } <= plots
    versions = client.search_model_versions("name='crsml-severe_crs'")
    assert len(versions) == 2
    logged = mlflow.pyfunc.load_model(f"models:/crsml-severe_crs/{versions[0].version}")
    assert logged.metadata.signature is not None and logged.metadata.saved_input_example_info is not None


def test_no_patient_identifier_anywhere_under_mlruns(trained, cohort):
    root, *_ = trained
    ids = [pid.encode() for pid in cohort.patients["patient_id"]]
    assert ids[0].startswith(b"SIM")
    n_files = 0
    for path in (root / "mlruns").rglob("*"):
        if path.is_file():
            n_files += 1
            data = path.read_bytes()
            assert b"SIM0" not in data, f"patient identifier in {path}"
    assert n_files > 10


def test_exported_model_reloads_and_predicts_identically_without_pickles(trained, cohort):
    root, _, r, _ = trained
    model_dir = root / "models" / "sev48"
    assert not [p for p in model_dir.rglob("*") if p.suffix in (".pkl", ".pickle", ".joblib")]
    card = (model_dir / "artifacts" / "crsml" / "model_card.html").read_text()
    assert "crsml model card: severe_crs at L = 48 h" in card and "Not a medical device" in card
    mlmodel = (model_dir / "MLmodel").read_text()
    assert "loader_module: mlflow.pyfunc.loaders.code_model" in mlmodel and "model_code_path" in mlmodel
    X, _ = TrainSettings(**SETTINGS).make_task().dataset(cohort, SETTINGS["landmark_h"])
    expected = r.model.estimator.predict_proba(X)[:, 1]
    bundle = load_model(model_dir)
    np.testing.assert_array_equal(bundle.predict_features(X)["risk"].to_numpy(), expected)
    py = mlflow.pyfunc.load_model(str(model_dir))
    np.testing.assert_array_equal(py.predict(X.reset_index(drop=True))["risk"].to_numpy(), expected)
    meta = json.loads((model_dir / "artifacts/crsml/metadata.json").read_text())
    assert meta["task"] == "severe_crs" and meta["counts"]["labelled"] == len(X)


def test_a_real_tracking_server_receives_the_run(cohort, tmp_path):
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{tmp_path / 'server.db'}",
            "--artifacts-destination",
            str(tmp_path / "artifacts"),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{uri}/health")
        old = os.getcwd()
        os.chdir(tmp_path)
        try:
            r = crsml.train(
                cohort, settings=TrainSettings(**SETTINGS | {"trials": 2}), progress=False, log=lambda *a: None
            )
            r.run_id = crsml.log_training(r, tracking_uri=uri, log=lambda *a: None)
        finally:
            os.chdir(old)
        run = mlflow.MlflowClient(uri).get_run(r.run_id)
        assert "auroc" in run.data.metrics
        assert (tmp_path / "artifacts").exists() and any((tmp_path / "artifacts").rglob("evaluation.csv"))
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.parametrize(
    ("task", "options", "named"),
    [
        ("severe_crs", ["--trim", "0.05"], "--trim does not apply to --task severe_crs"),
        (
            "tocilizumab_benefit",
            ["--storage", "sqlite:///x.db", "--cv-folds", "3"],
            "--cv-folds, --storage do not apply to --task tocilizumab_benefit",
        ),
        (
            "tocilizumab_benefit",
            ["--ensemble-size", "5"],
            "--ensemble-size does not apply to --task tocilizumab_benefit",
        ),
    ],
)
def test_train_refuses_options_its_task_would_ignore(tmp_path, task, options, named, capsys):
    args = ["train", "--task", task, "--cohort", str(tmp_path), "--landmark-h", "48"]
    code, err = _cli([*args, "--model-out", str(tmp_path / "m"), *options], capsys)
    assert code == 2 and named in err
    assert not (tmp_path / "m").exists()


def _cli(args: list[str], capsys) -> tuple[int, str]:
    code, _, err = run_cli(args, capsys)
    return code, err


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--task", "bogus", "--landmark-h", "48"], "expected one of severe_crs, prolonged_crs, tocilizumab_benefit"),
        (
            ["--task", "severe_crs", "--landmark-h", "-5"],
            "--landmark-h must be a number of hours after infusion above 0",
        ),
        (["--task", "tocilizumab_benefit", "--landmark-h", "0"], "--landmark-h must be"),
        (["--task", "severe_crs", "--landmark-h", "48", "--horizon-h", "0"], "--horizon-h must be"),
        (
            ["--task", "severe_crs", "--landmark-h", "48", "--ensemble-size", "0"],
            "--ensemble-size must be an int in the range [1, inf), not 0",
        ),
    ],
)
def test_train_refuses_an_unknown_task_or_a_landmark_at_or_before_infusion(tmp_path, args, named, capsys):
    code, err = _cli(["train", "--cohort", str(tmp_path), *args, "--model-out", str(tmp_path / "m")], capsys)
    assert code == 2 and named in err and err.count("\n") == 1, err
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(
    "make",
    [
        lambda: TrainSettings(task="bogus"),
        lambda: TrainSettings(task="severe_crs", landmark_h=-5.0),
        lambda: TrainSettings(task="severe_crs", landmark_h=float("nan")),
        lambda: TrainSettings(task="prolonged_crs", task_params={"horizon_h": 0.0}),
        lambda: TrainSettings(task="severe_crs", task_params={"min_days": 5.0}),
        lambda: BenefitSettings(landmark_h=0.0),
        lambda: BenefitSettings(task_params={"grace_h": 0.0}),
        lambda: BenefitSettings(trim=0.6),
    ],
)
def test_settings_refuse_what_the_command_line_refuses(make):
    with pytest.raises(CrsmlError):
        make()


def test_who_was_left_out_reads_as_words():
    from crsml.training import left_out

    assert left_out({"severe CRS": 23, "dead by the landmark": 2}) == "23 severe CRS, 2 dead by the landmark"
    assert left_out({}) == "none"


def _oof(y, rng, strength):
    """Out-of-fold risks that rank ``y`` with the given strength (noise otherwise)."""
    return 1 / (1 + np.exp(-(strength * (y - 0.5) + rng.normal(size=len(y)))))


def test_one_standard_error_rule_keeps_the_simpler_learner_unless_tuning_clearly_ranks_better():
    from crsml.training import FIXED_NAME, choose_learner

    rng = np.random.default_rng(0)
    y = (rng.random(150) < 0.3).astype(int)
    s = TrainSettings(n_boot=300)
    same = choose_learner(y, {MODEL_NAME: _oof(y, rng, 2.0), FIXED_NAME: _oof(y, rng, 2.0)}, 239, s)
    assert same["chosen"] == "fixed" and same["available_n"] < same["required_n"]
    assert "one-standard-error rule" in same["why"]
    better = choose_learner(y, {MODEL_NAME: _oof(y, rng, 6.0), FIXED_NAME: _oof(y, rng, 0.5)}, 239, s)
    assert better["chosen"] == "tuned" and better["tuned_minus_fixed_auroc"] > better["standard_error"]
    # at or above Riley's minimum sample size the tuned model is kept, however close
    big = (rng.random(20_000) < 0.3).astype(int)
    enough = choose_learner(big, {MODEL_NAME: _oof(big, rng, 3.0), FIXED_NAME: _oof(big, rng, 3.0)}, 5, s)
    assert enough["chosen"] == "tuned" and enough["available_n"] >= enough["required_n"]


def test_learner_setting_is_recorded_and_the_fixed_configuration_is_not_tuned(tmp_path):
    from crsml.models import FIXED_CONFIG
    from crsml.reporting import write_model_card

    cohort = simulate(150, seed=5, truth_draws=0)
    opts = {k: v for k, v in SETTINGS.items() if k != "learner"} | {"ensemble_size": 1, "n_boot": 50}
    fixed = crsml.train(cohort, settings=TrainSettings(**opts, learner="fixed"), log=lambda *a: None, progress=False)
    assert fixed.model.estimator.fixed == FIXED_CONFIG and len(fixed.model.estimator.members_) == 1
    assert fixed.model.metadata["learner"] == {"setting": "fixed", "chosen": "fixed"}
    auto = crsml.train(cohort, settings=TrainSettings(**opts), log=lambda *a: None, progress=False)
    chosen = auto.model.metadata["learner"]["chosen"]
    other = "xgboost, tuned (not chosen)" if chosen == "fixed" else "xgboost, fixed configuration"
    assert other in auto.table.index and MODEL_NAME in auto.table.index
    assert (auto.model.estimator.fixed is not None) == (chosen == "fixed")
    html = write_model_card(auto.model, tmp_path / "card").read_text()
    assert auto.model.metadata["learner"]["why"].split(":")[0] in html
    with pytest.raises(CrsmlError, match="learner"):
        TrainSettings(learner="biggest")

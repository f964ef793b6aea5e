"""Tasks are objects: a new task registered here (and nowhere else) trains, scores, explains and
gets its model card through the same code paths and the same command line as the built-in ones."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import crsml
from crsml import tasks
from crsml.cli import app
from crsml.errors import CrsmlError
from crsml.tasks import RiskTask


class AnyCRSGrade2Within72h(RiskTask):
    """Toy task: CRS of grade >= 2 within 72 h after the landmark."""

    name = "any_crs_grade2_72h"
    description = "risk of CRS of grade >= 2 within 72 hours after the landmark"

    def __init__(self, horizon_h: float = 72.0) -> None:
        super().__init__(horizon_h)

    def outcome(self, crs: pd.DataFrame, after: pd.DataFrame, ids: pd.Index, landmark_h: float) -> np.ndarray:
        return (after["max_grade"].to_numpy(dtype=float) >= 2).astype(float)


@pytest.fixture
def toy_task():
    tasks.register(AnyCRSGrade2Within72h)
    yield AnyCRSGrade2Within72h.name
    tasks.unregister(AnyCRSGrade2Within72h.name)


def test_the_built_in_tasks_are_registered_objects():
    assert tasks.names() == ("severe_crs", "prolonged_crs", "tocilizumab_benefit")
    assert tasks.get("prolonged_crs", min_days=5).min_days == 5
    assert tasks.get("tocilizumab_benefit").score_columns == (
        "risk",
        "benefit",
        "benefit_low",
        "benefit_high",
        "benefit_basis",
        "benefit_note",
    )
    with pytest.raises(CrsmlError, match="--min-days does not apply to --task severe_crs"):
        tasks.get("severe_crs", min_days=5)
    with pytest.raises(CrsmlError, match="unknown task 'icans'"):
        tasks.get("icans")


def test_labels_of_the_toy_task_see_only_the_window_after_the_landmark(toy_task):
    cohort = crsml.simulate(200, seed=4, truth_draws=0)
    lab = tasks.get(toy_task).labels(cohort, 24.0).droplevel("landmark_h")
    crs = cohort.crs_grades()
    after = crs[(crs["time_h"] > 24.0) & (crs["time_h"] <= 96.0)].groupby("patient_id")["grade"].max()
    labelled = lab["label"].dropna()
    expected = (after.reindex(labelled.index) >= 2).astype(float)
    pd.testing.assert_series_equal(labelled, expected, check_names=False)


def test_a_registered_toy_task_trains_scores_explains_and_reports_through_the_cli(toy_task, tmp_path):
    cohort = crsml.simulate(300, seed=8, truth_draws=0)
    cohort.save(tmp_path / "train")
    crsml.simulate(60, seed=9, truth_draws=0).save(tmp_path / "new", fmt="csv")
    runner = CliRunner()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    r = runner.invoke(
        app,
        [
            "train",
            "--task",
            toy_task,
            "--cohort",
            str(tmp_path / "train"),
            "--landmark-h",
            "24",
            "--trials",
            "2",
            "--cv-folds",
            "3",
            "--cv-repeats",
            "1",
            "--n-jobs",
            "1",
            "--tracking-uri",
            uri,
            "--model-out",
            str(tmp_path / "toy"),
        ],
    )
    assert r.exit_code == 0, r.output
    assert f"{toy_task} at L = 24 h" in r.output
    model = crsml.load_model(tmp_path / "toy")
    assert model.task == AnyCRSGrade2Within72h() and model.landmark_h == 24.0

    r = runner.invoke(
        app,
        [
            "score",
            "--model",
            str(tmp_path / "toy"),
            "--cohort",
            str(tmp_path / "new"),
            "--out",
            str(tmp_path / "scores.csv"),
            "--explain",
            "3",
        ],
    )
    assert r.exit_code == 0, r.output
    scores = pd.read_csv(tmp_path / "scores.csv")
    assert len(scores) == 60 and (scores["task"] == toy_task).all()
    ok = scores[scores["status"] == "ok"]
    assert len(ok) > 0 and ok["risk"].between(0, 1).all() and ok["driver_3"].notna().all()

    r = runner.invoke(
        app,
        [
            "explain",
            "--model",
            str(tmp_path / "toy"),
            "--cohort",
            str(tmp_path / "new"),
            "--out",
            str(tmp_path / "shap"),
            "--patients",
            "1",
        ],
    )
    assert r.exit_code == 0, r.output
    assert (tmp_path / "shap" / "shap_beeswarm.png").exists() and (tmp_path / "shap" / "shap_waterfall_1.png").exists()

    r = runner.invoke(app, ["report", "--model", str(tmp_path / "toy"), "--out", str(tmp_path / "card")])
    assert r.exit_code == 0, r.output
    card = (tmp_path / "card" / "index.html").read_text()
    assert f"crsml model card: {toy_task} at L = 24 h" in card
    assert "risk of CRS of grade &gt;= 2 within 72 hours after the landmark (horizon 3 days)" in card
    assert "Evaluation (out of fold)" in card and "What drives the risk (SHAP, log-odds)" in card

    import mlflow

    versions = mlflow.MlflowClient(uri).search_model_versions(f"name='crsml-{toy_task}'")
    assert len(versions) == 1

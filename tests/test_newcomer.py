"""The four changes docs/architecture.md tells a newcomer how to make, each made here as the
newcomer would make it, touching only the files the document names (#33):

1. an analyte: one line in ``crsml/cohort/_units.py`` (``CANONICAL_UNITS``; a plausible range and
   other units beside it if known);
2. a task with its own parameter: a subclass registered with ``crsml.tasks.register``; settings and
   the command line take the parameter from the task (``--task-param``);
3. a data source: a reader that yields :class:`crsml.adapters.SourceRecords`, and a code map;
   ``crsml.adapters.assemble`` does the rest;
4. a report section: the estimator kind's section registered with
   ``crsml.reporting.estimator_sections`` (or a block in ``reporting/templates/``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import crsml
from crsml import tasks
from crsml.cohort import CANONICAL_UNITS, PLAUSIBLE_RANGES


def test_an_analyte_is_one_line_in_the_unit_table(monkeypatch):
    monkeypatch.setitem(CANONICAL_UNITS, "il8", "pg/mL")
    monkeypatch.setitem(PLAUSIBLE_RANGES, "il8", (0.0, 1e6))
    cohort = crsml.simulate(40, seed=3, truth_draws=0)
    m = cohort.measurements
    il6 = m[m["analyte"] == "il6"]
    raw = {name: getattr(cohort, name) for name in ("patients", "vitals", "treatments", "crs")}
    raw["measurements"] = pd.concat([m, il6.assign(analyte="il8", value=il6["value"] * 2)], ignore_index=True)
    new, report = crsml.Cohort.from_tables(raw)
    assert report.ok and (new.measurements["analyte"] == "il8").sum() == len(il6)
    fb = crsml.LandmarkFeatures(landmark_h=48).fit(new)
    assert "il8" in fb.analytes_ and any(f.startswith("il8_") for f in fb.feature_names_out_)


class _EarlyFever(tasks.RiskTask):
    """A newcomer's task: severe CRS, counted only when it starts within ``within_h`` hours."""

    name = "early_severe_toy"
    description = "risk of severe CRS starting soon after the landmark"

    def __init__(self, horizon_h: float = tasks.DEFAULT_HORIZON_H, within_h: float = 72.0) -> None:
        super().__init__(horizon_h)
        self.within_h = within_h

    def outcome(self, crs: pd.DataFrame, after: pd.DataFrame, ids: pd.Index, landmark_h: float) -> np.ndarray:
        soon = crs[(crs["grade"] >= 3) & (crs["time_h"] > landmark_h) & (crs["time_h"] <= landmark_h + self.within_h)]
        return ids.isin(soon["patient_id"]).astype(float)


@pytest.fixture
def toy_task():
    tasks.register(_EarlyFever)
    yield _EarlyFever
    tasks.unregister(_EarlyFever.name)


def test_a_task_with_its_own_parameter_needs_no_change_to_settings_or_the_command_line(toy_task, tmp_path, capsys):
    from crsml.cli import main
    from crsml.training import settings_for

    s = settings_for(toy_task.name, 48, within_h=24.0, trials=1)
    assert s.make_task() == toy_task(within_h=24.0)
    cohort_dir = tmp_path / "c"
    crsml.simulate(300, seed=5, truth_draws=0).save(cohort_dir)
    import sys

    argv = sys.argv
    sys.argv = [
        "crsml",
        "train",
        "--task",
        toy_task.name,
        "--cohort",
        str(cohort_dir),
        "--landmark-h",
        "48",
        "--task-param",
        "within_h=36",
        "--trials",
        "1",
        "--cv-folds",
        "2",
        "--cv-repeats",
        "1",
        "--instability-boot",
        "0",
        "--model-out",
        str(tmp_path / "m"),
        "--accept-weak-model",
        "--tracking-uri",
        f"sqlite:///{tmp_path / 'mlflow.db'}",
    ]
    try:
        with pytest.raises(SystemExit) as done:
            main()
    finally:
        sys.argv = argv
    assert done.value.code in (0, None), capsys.readouterr()
    model = crsml.load_model(tmp_path / "m")
    assert model.task == toy_task(within_h=36.0)
    # #36: the exported directory is what the run logged and the registry serves (one card, written once)
    registered = crsml.load_model(f"models:/crsml-{toy_task.name}/1", f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert registered.source["digest"] == model.source["digest"]


def _registry_export() -> tuple[pd.DataFrame, pd.DataFrame]:
    """A source crsml has no reader for: a registry's two tables, hours counted from infusion."""
    people = pd.DataFrame({"subject": ["R-1", "R-2"], "age": [54, 61], "gender": ["female", "male"]})
    results = pd.DataFrame(
        {
            "subject": ["R-1", "R-1", "R-2", "R-2"],
            "hour": [-2.0, 20.0, -1.0, 22.0],
            "test": ["IL6_SERUM", "CRP_SERUM", "IL6_SERUM", "CRP_SERUM"],
            "result": [4.0, 12.0, 7.5, 30.0],
            "units": ["pg/mL", "mg/L", "pg/mL", "mg/L"],
        }
    )
    return people, results


def test_a_data_source_is_a_reader_and_a_code_map(tmp_path):
    from crsml.adapters import CodeMap, SourceRecords, assemble

    people, results = _registry_export()
    patients = pd.DataFrame(
        {
            "key": people["subject"],
            "patient_id": people["subject"],
            "age_years": people["age"].astype(float),
            "sex": people["gender"],
            "diagnosis": "B-ALL",
            "src": "people.csv",
            "ref": (people.index + 1).astype(str),
        }
    )
    events = pd.DataFrame(
        {
            "key": results["subject"],
            "time_h": results["hour"],
            "system": "local",
            "code": results["test"],
            "value": results["result"],
            "unit": results["units"],
            "src": "results.csv",
            "ref": (results.index + 1).astype(str),
        }
    )
    records = SourceRecords("registry", patients, events, meta={"created_by": "a newcomer's reader"})
    (tmp_path / "map.csv").write_text(
        "section,target,code\nanalytes,il6,local:IL6_SERUM\nanalytes,crp,local:CRP_SERUM\n"
    )
    cohort, report = assemble(records, CodeMap.load(tmp_path / "map.csv"), days=14)
    m = cohort.measurements.sort_values(["patient_id", "time_h"])
    assert list(m["analyte"]) == ["il6", "crp", "il6", "crp"] and list(m["value"]) == [4.0, 12.0, 7.5, 30.0]
    assert set(cohort.patients["patient_id"]) == {"R-1", "R-2"}


def test_a_report_section_is_registered_for_its_estimator_kind(tiny_model, tmp_path):
    import copy

    from crsml.models import XGBRiskClassifier
    from crsml.reporting import estimator_sections, write_model_card

    class _AuditedRisk(XGBRiskClassifier):
        pass

    @estimator_sections.register(_AuditedRisk)
    def _(estimator):
        return [
            (
                "Audit trail",
                "Reviewed by the centre's model board.",
                [("Reviews", pd.DataFrame({"date": ["2026-11-30"], "outcome": ["approved"]}))],
            )
        ]

    model = copy.deepcopy(crsml.load_model(tiny_model[0]))
    model.estimator.__class__ = _AuditedRisk
    html = write_model_card(model, tmp_path / "card").read_text()
    assert "<h2>Audit trail</h2>" in html and "approved" in html

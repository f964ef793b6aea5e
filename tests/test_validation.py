from __future__ import annotations

import pandas as pd
import pytest

from crsml.cohort import Cohort, validate_tables
from crsml.errors import CohortError


def _good() -> dict[str, pd.DataFrame]:
    return {
        "patients": pd.DataFrame(
            {
                "patient_id": ["p1", "p2", "p3"],
                "age_years": [30, 40, 50],
                "sex": ["female", "male", "male"],
                "marrow_blast_pct": [5.0, 50.0, 0.0],
                "costim": ["cd28", "4-1bb", "4-1bb"],
            }
        ),
        "measurements": pd.DataFrame(
            {
                "patient_id": ["p1", "p1", "p2", "p3"],
                "time_h": [0.0, 24.0, 24.0, 12.0],
                "analyte": ["il6", "crp", "crp", "ferritin"],
                "value": ["<1.5", "2.0", ">300", "900"],
                "unit": ["pg/mL", "mg/dL", "mg/L", "ug/L"],
            }
        ),
        "vitals": pd.DataFrame(
            {
                "patient_id": ["p1"],
                "time_h": [24.0],
                "temp_c": [38.4],
                "hypotension": ["false"],
                "vasopressors": [0],
                "vasopressin": [False],
                "o2_device": ["none"],
                "o2_flow_lpm": [0.0],
            }
        ),
        "treatments": pd.DataFrame(
            {"patient_id": ["p1"], "time_h": [30.0], "drug": ["tocilizumab"], "dose": [8.0], "dose_unit": ["mg/kg"]}
        ),
        "crs": pd.DataFrame({"patient_id": ["p1", "p2"], "time_h": [24.0, 24.0], "grade": [1, 0]}),
    }


def test_good_cohort_is_valid_and_canonical():
    tables, report = validate_tables(_good())
    assert report.ok, [str(p) for p in report.errors]
    m = tables["measurements"]
    assert m["value"].tolist() == [1.5, 20.0, 300.0, 900.0]  # CRP mg/dL -> mg/L
    assert m["unit"].tolist() == ["pg/mL", "mg/L", "mg/L", "ng/mL"]
    assert m["qualifier"].tolist()[:3] == ["<", pd.NA, ">"] or m["qualifier"].isna().tolist() == [
        False,
        True,
        False,
        True,
    ]


def test_every_problem_in_one_run():
    raw = _good()
    raw["patients"] = pd.DataFrame(
        {
            "patient_id": ["p1", "p2", "p2", "p4"],
            "age_years": [-3, 40, 41, "old"],
            "sex": ["female", "male", "male", "Robot"],
            "marrow_blast_pct": [5.0, 150.0, 1.0, 1.0],
        }
    )
    raw["measurements"] = pd.DataFrame(
        {
            "patient_id": ["p1", "p1", "p9", "p1", "p1", "p1"],
            "time_h": ["0", "day two", "3", "4", "5", "6"],
            "analyte": ["il6", "crp", "crp", "unobtainium", "crp", "ferritin"],
            "value": ["1.0", "2.0", "3.0", "4.0", "lots", "-5"],
            "unit": ["pg/mL", "mg/L", "mg/L", "mg/L", "mg/L", "furlongs"],
        }
    )
    raw["vitals"] = pd.DataFrame(
        {
            "patient_id": ["p1", "p1"],
            "time_h": [1.0, 2.0],
            "temp_c": [50.0, 37.0],
            "vasopressors": [-1, 0],
            "o2_device": ["none", "jetpack"],
        }
    )
    raw["crs"] = pd.DataFrame({"patient_id": ["p1"], "time_h": [1.0], "grade": [7]})
    raw["treatments"] = pd.DataFrame({"patient_id": ["p1"], "time_h": [1.0]})  # drug column missing
    _, report = validate_tables(raw)
    lines = [str(p) for p in report.errors]
    text = "\n".join(lines)

    def has(*parts):
        return any(all(part in line for part in parts) for line in lines)

    assert has("table patients", "row 1", "column age_years", "impossible value (allowed 0 to 120)"), text
    assert has("table patients", "row 4", "column age_years", "non-numeric value"), text
    assert has("table patients", "column patient_id", "duplicate"), text
    assert has("table patients", "row 4", "column sex", "not an allowed value"), text
    assert has("table patients", "row 2", "column marrow_blast_pct"), text
    assert has("table measurements", "row 2", "column time_h", "time is not a number"), text
    assert has("table measurements", "row 3", "column patient_id", "not in the patients table"), text
    assert has("table measurements", "row 4", "column analyte", "unknown analyte"), text
    assert has("table measurements", "row 5", "column value", "non-numeric value"), text
    assert has("table measurements", "row 6", "column value", "impossible value"), text
    assert has("table measurements", "row 6", "column unit", "unknown unit for"), text
    assert has("table vitals", "row 1", "column temp_c", "impossible value (allowed 30 to 45)"), text
    assert has("table vitals", "row 1", "column vasopressors"), text
    assert has("table vitals", "row 2", "column o2_device", "not an allowed value"), text
    assert has("table crs", "row 1", "column grade", "not an allowed value (allowed: 0, 1, 2, 3, 4, 5)"), text
    assert has("table patients", "row 4", "column sex", "not an allowed value (allowed: female, male)"), text
    assert has("table measurements", "row 6", "column value", "impossible value (must not be negative)"), text
    assert has("table patients", "row 1", "column age_years", "impossible value (allowed 0 to 120)"), text
    assert has("table treatments", "column drug", "required column is missing"), text
    # the invalid patients are known by id (for marking them in scoring), never printed
    assert "p1" not in text and "p9" not in text
    # no cell of the user's rows is echoed (a shifted column can put an identifier anywhere)
    for content in ("old", "lots", "unobtainium", "furlongs", "Robot", "jetpack", "-3", "-5", "50"):
        assert f"'{content}'" not in text and f"value {content}" not in text


def test_missing_table():
    raw = _good()
    del raw["measurements"]
    _, report = validate_tables(raw)
    assert any("table measurements: required table is missing" in str(p) for p in report.errors)


@pytest.mark.parametrize("column", ["unit", "analyte"])
def test_a_missing_column_is_one_problem_not_one_per_row(column):
    raw = _good()
    raw["measurements"] = raw["measurements"].drop(columns=column)
    _, report = validate_tables(raw)
    lines = [str(p) for p in report.errors]
    assert lines == [f"error: table measurements, column {column}: required column is missing"], lines


def test_a_missing_patients_table_does_not_make_every_row_an_orphan():
    raw = _good()
    del raw["patients"]
    _, report = validate_tables(raw)
    lines = [str(p) for p in report.errors]
    assert lines == ["error: table patients: required table is missing"], lines


def test_drop_marks_only_bad_patients(tmp_path):
    raw = _good()
    raw["measurements"].loc[2, "value"] = "n/a"  # p2's CRP
    with pytest.raises(CohortError, match="row 3, column value"):
        Cohort.from_tables(raw)
    cohort, report = Cohort.from_tables(raw, on_error="drop")
    assert set(cohort.patient_ids) == {"p1", "p3"}
    assert list(cohort.invalid) == ["p2"]
    assert "non-numeric value" in cohort.invalid["p2"]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_save_load_round_trip(tmp_path, fmt):
    cohort, _ = Cohort.from_tables(_good(), meta={"source": "test"})
    cohort.save(tmp_path / fmt, fmt=fmt)
    back = Cohort.load(tmp_path / fmt)
    assert back.meta["source"] == "test" and back.meta["file_format"] == fmt
    assert back.measurements["value"].tolist() == cohort.measurements["value"].tolist()
    assert back.measurements["qualifier"].fillna("").tolist() == ["<", "", ">", ""]
    assert back.patients["patient_id"].tolist() == ["p1", "p2", "p3"]


def test_cohort_format_page_is_generated_from_the_schema():
    from pathlib import Path

    from crsml.cohort import schema_markdown

    doc = Path(__file__).resolve().parents[1] / "docs" / "cohort_format.md"
    assert doc.read_text() == schema_markdown(), (
        "regenerate: .venv/bin/python -c \"import crsml; open('docs/cohort_format.md', 'w').write("
        'crsml.cohort.schema_markdown())"'
    )

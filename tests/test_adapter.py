from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from crsml.adapters import import_daily, summarise
from crsml.errors import CohortError


def test_real_cohort_import(real_csv):
    cohort, report = import_daily(real_csv)
    s = summarise(cohort)
    assert s["patients"] == 139
    # the daily table goes through the importer every source shares, with its report
    assert report.kind == "daily" and report.counts["patients_imported"] == 139
    assert report.counts["rows_read"] == len(cohort.measurements) + len(cohort.crs)
    assert report.counts["rows_converted"] > 0 and report.counts["rows_refused"] == 0
    assert s["patient_days"] == 1024
    assert s["crs_grade_ge3"] == 31
    assert cohort.measurements["time_h"].mod(24).eq(0).all()
    # fractions became percent
    assert cohort.patients["marrow_blast_pct"].max() > 1
    assert cohort.patients["marrow_blast_pct"].max() <= 100
    warnings = [str(p) for p in report.warnings]
    assert any("d_dimer" in w and "suspected fill value 0.43" in w for w in warnings)
    assert any("il6" in w and "suspected fill value 5.2" in w for w in warnings)
    assert any("sodium" in w and "impossible in mmol/L" in w for w in warnings)
    # data are not altered: the fill values are still there
    il6 = cohort.measurements.query("analyte == 'il6'")["value"]
    assert (il6 == 5.2).sum() == 258


def test_broken_copy(real_csv, tmp_path):
    wide = pd.read_csv(real_csv, dtype={"patient_id": "string"})
    broken = wide.drop(columns=["crp"])
    p = tmp_path / "broken.csv"
    broken.to_csv(p, index=False)
    with pytest.raises(CohortError, match="missing columns crp"):
        import_daily(p)
    wide2 = wide.astype({"il6": "object"})
    wide2.loc[5, "il6"] = "haemolysed"
    wide2.loc[0, "age_years"] = -4
    p2 = tmp_path / "broken2.csv"
    wide2.to_csv(p2, index=False)
    with pytest.raises(CohortError) as exc:
        import_daily(p2)
    msg = str(exc.value)
    assert "table broken2.csv, row 6, column il6: non-numeric value" in msg and "haemolysed" not in msg, msg
    assert "table broken2.csv, row 1, column age_years: impossible value (allowed 0 to 120)" in msg, (
        msg
    )  # the user's file


def test_cli_validate_and_errors(real_csv, tmp_path):
    out = tmp_path / "real"
    r = subprocess.run(
        [sys.executable, "-m", "crsml", "import-daily", str(real_csv), "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert '"patients": 139' in r.stdout
    assert json.loads((out / "import_report.json").read_text())["counts"]["patients_imported"] == 139
    r = subprocess.run([sys.executable, "-m", "crsml", "validate", str(out)], capture_output=True, text=True)
    assert r.returncode == 0 and "warning:" in r.stdout and "valid" in r.stderr
    m = pd.read_parquet(out / "measurements.parquet")
    m.loc[3, "unit"] = "bananas"
    m.to_parquet(out / "measurements.parquet")
    r = subprocess.run([sys.executable, "-m", "crsml", "validate", str(out)], capture_output=True, text=True)
    assert r.returncode == 2
    assert "error: table measurements, row 4, column unit: unknown unit for " in r.stdout and "bananas" not in r.stdout
    r = subprocess.run(
        [sys.executable, "-m", "crsml", "validate", str(tmp_path / "nope")], capture_output=True, text=True
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0 and "not found" in r.stderr


def test_cli_bad_options_are_one_line(tmp_path):
    for args in (
        ["simulate", "--n", "0", "--seed", "1", "--out", str(tmp_path / "x")],
        ["simulate", "--n", "5", "--seed", "1", "--out", str(tmp_path / "y"), "--format", "xml"],
    ):
        r = subprocess.run([sys.executable, "-m", "crsml", *args], capture_output=True, text=True)
        assert r.returncode == 2 and r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
    assert not (tmp_path / "y").exists()


@pytest.mark.parametrize(
    ("toml", "named"),
    [
        ("[keys]\npatient = 'patient_id'\n", "keys.patient: Extra inputs are not permitted"),
        ("[measurements]\nil6 = { column = 'il6' }\n", "measurements.il6.unit: Field required"),
        ("[measurements]\nil6 = { column = 'il6', unit = 5 }\n", "measurements.il6.unit"),
        (
            "[measurements]\nil99 = { column = 'il6', unit = 'pg/mL' }\n",
            "measurements.il99: not an analyte crsml knows",
        ),
        ("[measurements]\nil6 = { column = 'il6', unit = 'furlongs' }\n", "unit 'furlongs' is not one crsml converts"),
        (
            "[measurements]\nil6 = { column = 'il6', unit = 'pg/mL' }\nil10 = { column = 'il6', unit = 'pg/mL' }\n",
            "column 'il6' is mapped to both il6 and il10",
        ),
        ("[patient]\nsex = 'sex'\n", "patient: Extra inputs are not permitted"),
    ],
)
def test_a_wrong_mapping_file_is_refused_in_one_line(tmp_path, toml, named):
    from crsml.adapters import DailyMapping

    p = tmp_path / "m.toml"
    p.write_text(toml)
    with pytest.raises(CohortError) as exc:
        DailyMapping.load(p)
    assert named in str(exc.value) and "\n" not in str(exc.value), str(exc.value)


def test_a_repeated_patient_day_is_an_error_in_the_users_file(real_csv, tmp_path):
    wide = pd.read_csv(real_csv, dtype={"patient_id": "string"})
    twice = pd.concat([wide, wide.iloc[[3]].assign(il6=wide["il6"].iloc[3] + 1.0), wide.iloc[[5]]], ignore_index=True)
    p = tmp_path / "twice.csv"
    twice.to_csv(p, index=False)
    with pytest.raises(CohortError) as exc:
        import_daily(p)
    msg = str(exc.value)
    assert (
        f"table twice.csv, row {len(wide) + 1}, column day: this patient's day appears again with different values"
        in msg
    )
    assert "row " + str(len(wide) + 2) not in msg  # the identical repeat is kept once, not an error

"""Importers (#26): round trips through OMOP (DuckDB and PostgreSQL), FHIR and long exports; messy
sources reported with counts and provenance; every patient accounted for; a damaged patient
never changes another's rows."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import crsml
from crsml.adapters import (
    CodeMap,
    export_fhir,
    export_long,
    export_omop,
    import_fhir,
    import_long,
    import_omop,
)
from crsml.errors import CohortError

KEYS = {
    "measurements": ["patient_id", "time_h", "analyte", "value"],
    "vitals": ["patient_id", "time_h"],
    "treatments": ["patient_id", "time_h", "drug"],
    "crs": ["patient_id", "time_h"],
}


def canonical(cohort: crsml.Cohort) -> dict[str, pd.DataFrame]:
    """Every table validated (canonical units and types), rows sorted, times and values rounded."""
    tables, _ = crsml.validate_tables({n: getattr(cohort, n) for n in ("patients", *KEYS)})
    out = {"patients": tables["patients"].sort_values("patient_id").reset_index(drop=True)}
    for name, key in KEYS.items():
        t = tables[name].copy()
        t["time_h"] = t["time_h"].astype(float).round(4)
        out[name] = t.sort_values(key, kind="stable").reset_index(drop=True)
    return out


def assert_same(a: crsml.Cohort, b: crsml.Cohort) -> None:
    ca, cb = canonical(a), canonical(b)
    for name in ca:
        x, y = ca[name], cb[name]
        cols = [c for c in x.columns if c in y.columns]
        assert list(x["patient_id"]) == list(y["patient_id"]), name
        assert len(x) == len(y), name
        for c in cols:
            if pd.api.types.is_float_dtype(x[c]):
                atol = 1e-3 if c == "age_years" else 1e-6
                np.testing.assert_allclose(
                    x[c].to_numpy(float), y[c].to_numpy(float), rtol=1e-9, atol=atol, err_msg=f"{name}.{c}"
                )
            else:
                assert x[c].astype("string").fillna("<NA>").tolist() == y[c].astype("string").fillna("<NA>").tolist(), (
                    f"{name}.{c}"
                )


@pytest.fixture(scope="module")
def sim() -> crsml.Cohort:
    return crsml.simulate(25, seed=26)


def test_omop_round_trip_duckdb(sim, tmp_path):
    written = export_omop(sim, f"duckdb:///{tmp_path / 'cdm.duckdb'}")
    assert written["person"] == 25 and written["measurement"] > len(sim.measurements)
    back, report = import_omop(f"duckdb:///{tmp_path / 'cdm.duckdb'}")
    assert_same(sim, back)
    assert report.counts["patients_imported"] == 25 and report.counts["rows_refused"] == 0
    assert set(report.crs_source) == {"recorded grades"}
    assert back.meta["source"] == "omop" and len(back.meta["code_map_sha256"]) == 64
    short, report = import_omop(f"duckdb:///{tmp_path / 'cdm.duckdb'}", days=5)  # later rows stay in the database
    c = report.counts
    assert c["rows_refused"] == int(report.refused["rows"].sum()) > 0 and len(report.rows) == 0
    assert c["rows_mapped"] + c["rows_unmapped"] + c["rows_refused"] + c["rows_duplicate"] == c["rows_read"]
    assert short.measurements["time_h"].max() <= 120


def test_fhir_round_trip(sim, tmp_path):
    export_fhir(sim, tmp_path / "fhir")
    back, report = import_fhir(tmp_path / "fhir")
    assert_same(sim, back)
    assert report.counts["patients_imported"] == 25


def test_long_round_trip(sim, tmp_path):
    export_long(sim, tmp_path / "long")
    back, report = import_long(tmp_path / "long")
    assert_same(sim, back)
    assert report.counts["rows_unmapped"] == 0


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n=st.integers(1, 6),
    seed=st.integers(0, 10_000),
    fmt=st.sampled_from(["omop", "fhir", "long"]),
    profile=st.sampled_from(["b_all", "mixed_practice", "other_centre"]),
)
def test_round_trip_property(tmp_path_factory, n, seed, fmt, profile):
    cohort = crsml.simulate(n, seed=seed, profile=profile)
    d = tmp_path_factory.mktemp("rt")
    if fmt == "omop":
        export_omop(cohort, f"duckdb:///{d / 'c.duckdb'}")
        back, _ = import_omop(f"duckdb:///{d / 'c.duckdb'}")
    elif fmt == "fhir":
        export_fhir(cohort, d)
        back, _ = import_fhir(d)
    else:
        export_long(cohort, d)
        back, _ = import_long(d)
    assert_same(cohort, back)


# ------------------------------------------------------------------------------------ PostgreSQL


def _pg_bin(name: str) -> str | None:
    for found in [shutil.which(name), *sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)]:
        if found:
            return str(found)
    return None


@pytest.fixture(scope="module")
def postgres(tmp_path_factory):
    """A throwaway PostgreSQL server on loopback (Debian's package; .ci/run installs it)."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    assert initdb and pg_ctl, "PostgreSQL server binaries not found (apt-get install postgresql; .ci/run does)"
    base = Path(tempfile.mkdtemp(prefix="crsml-pg-"))  # outside pytest's 0700 directories: the server runs as postgres
    base.chmod(0o777)
    data = base / "data"
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run(
        [*as_user, initdb, "-D", str(data), "-A", "trust", "-U", "crsml", "--no-sync"], check=True, capture_output=True
    )
    subprocess.run(
        [
            *as_user,
            pg_ctl,
            "-D",
            str(data),
            "-l",
            str(base / "log"),
            "-w",
            "-o",
            f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://crsml@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def test_postgresql_gives_the_duckdb_result(sim, tmp_path, postgres):
    export_omop(sim, postgres, schema="cdm")
    export_omop(sim, f"duckdb:///{tmp_path / 'cdm.duckdb'}")
    from_pg, pg_report = import_omop(postgres, schema="cdm")
    from_duck, duck_report = import_omop(f"duckdb:///{tmp_path / 'cdm.duckdb'}")
    assert_same(from_duck, from_pg)
    assert_same(sim, from_pg)
    assert pg_report.counts == duck_report.counts


# ---------------------------------------------------------------------------------- messy sources


def _messy_long(tmp_path: Path) -> Path:
    d = tmp_path / "ehr"
    d.mkdir()
    pd.DataFrame(
        {
            "patient_id": ["A1", "B2", "C3", "D4"],
            "infusion_datetime": ["2024-10-26 10:00", "2024-10-27 09:00", "2024-03-01 08:00", ""],
            "age_years": [34, 51, 60, 45],
            "sex": ["female", "male", "male", "female"],
        }
    ).to_csv(d / "patients.csv", index=False)
    pd.DataFrame(
        {
            "patient_id": ["A1", "A1", "A1", "A1", "B2", "B2", "B2", "C3", "C3", "D4", "E5", "A1"],
            "datetime": [
                "2024-10-27 10:00",
                "2024-10-27 10:00",
                "2024-10-27 11:00",
                "2024-08-01 10:00",
                "2024-10-27 02:30",
                "2024-10-28 09:00",
                "2024-10-28 09:00",
                "2024-03-02 08:00",
                "2024-03-02 08:00",
                "2024-01-01 00:00",
                "2024-01-01 00:00",
                "not a date",
            ],
            "code": [
                "26881-3",
                "26881-3",
                "1988-5",
                "1988-5",
                "1988-5",
                "LOC-IL6",
                "XYZ-999",
                "2160-0",
                "1988-5",
                "1988-5",
                "1988-5",
                "1988-5",
            ],
            "value": ["12.5", "12.5", "3.1", "4", "<0.5", "88", "1", "1.1", "5", "2", "2", "3"],
            "unit": ["pg/mL", "pg/mL", "mg/dL", "mg/L", "mg/L", "ng/L", "x", "mg/dL", "mmol/L", "mg/L", "mg/L", "mg/L"],
        }
    ).to_csv(d / "results.csv", index=False)
    return d


def test_messy_long_export_is_reported_row_by_row(tmp_path):
    d = _messy_long(tmp_path)
    (tmp_path / "map.toml").write_text('[analytes]\nil6 = ["local:LOC-IL6"]\n')
    with pytest.raises(CohortError, match="no time zone; pass --timezone"):
        import_long(d, CodeMap.load(tmp_path / "map.toml"))
    cohort, report = import_long(d, CodeMap.load(tmp_path / "map.toml"), timezone="Europe/Berlin")
    c = report.counts
    assert c["rows_read"] == 12 and c["patients_read"] == 4
    assert c["patients_imported"] == 3 and c["patients_without_infusion"] == 1
    refused = dict(zip(report.refused["reason"], report.refused["rows"], strict=True))
    assert refused["unit mmol/L is not a unit of crp"] == 1
    assert refused["patient has no CAR-T infusion time"] == 1
    assert refused["patient is not among the source's patients"] == 1
    assert refused["timed more than 30 days before the infusion"] == 1
    assert refused["date or time not readable"] == 1
    assert report.unmapped.set_index("code")["rows"].to_dict() == {"XYZ-999": 1}
    assert c["rows_duplicate"] == 1
    # the local IL-6 code is mapped and converted (ng/L is pg/mL), CRP in mg/dL is converted to mg/L
    m = cohort.measurements.set_index(["patient_id", "analyte"])
    assert m.loc[("B2", "il6"), "value"] == pytest.approx(88.0)
    assert m.loc[("A1", "crp"), "value"] == pytest.approx(31.0)
    assert m.loc[("B2", "crp"), "qualifier"] == "<"
    # 2024-10-27 02:30 in Berlin happened twice (clock change): read as summer time and counted as guessed
    assert sum(report.guessed.values()) == 1
    guessed = report.rows[report.rows["status"] == "guessed"]
    assert guessed[["src", "ref", "column"]].values.tolist() == [["results.csv", "5", "datetime"]]
    # infusion 09:00 CET is 08:00 UTC; 02:30 read as CEST is 00:30 UTC: 7.5 hours before
    assert m.loc[("B2", "crp"), "time_h"] == pytest.approx(-7.5)
    # every refused or duplicated row names its source line; every patient has a status
    assert set(report.rows["src"]) == {"results.csv"}
    unit_row = report.rows[report.rows["reason"] == "unit mmol/L is not a unit of crp"].iloc[0]
    assert (unit_row["ref"], unit_row["column"]) == ("9", "1988-5")  # data row 9 of results.csv, its code
    assert report.patients.set_index("patient_id")["status"].to_dict() == {
        "A1": "imported",
        "B2": "imported",
        "C3": "imported",
        "D4": "not imported",
    }
    # accounting: every row read is mapped, unmapped, refused or a duplicate
    assert c["rows_mapped"] + c["rows_unmapped"] + c["rows_refused"] + c["rows_duplicate"] == c["rows_read"]


def test_damaged_patient_never_changes_another(tmp_path, sim):
    export_long(sim, tmp_path / "clean")
    clean, _ = import_long(tmp_path / "clean")
    shutil.copytree(tmp_path / "clean", tmp_path / "bad")
    results = pd.read_csv(tmp_path / "bad" / "results.csv", dtype=str)
    victim = results["patient_id"].iloc[0]
    rows = results.index[results["patient_id"] == victim][:3]
    results.loc[rows[0], "value"] = "-5"  # impossible: the patient becomes invalid
    results.loc[rows[1], "unit"] = "furlongs"  # a unit no analyte has: refused
    results.loc[rows[2], "datetime"] = "yesterday"  # unreadable: refused
    results.to_csv(tmp_path / "bad" / "results.csv", index=False)
    damaged, report = import_long(tmp_path / "bad")
    assert report.patients.set_index("patient_id").loc[victim, "status"] == "invalid"
    others = [p for p in clean.patients["patient_id"] if p != victim]
    assert_same(clean.subset(others), damaged.subset(others))
    assert victim in damaged.invalid and victim not in set(damaged.patients["patient_id"])
    # the reason names the export's own file, data row and code, not a row of an assembled table
    code = results.loc[rows[0], "code"]
    assert damaged.invalid[victim].startswith(f"table results.csv, row {rows[0] + 1}, column {code}")


def test_messy_fhir_resources(tmp_path, sim):
    small = sim.subset(list(sim.patients["patient_id"][:3]))
    export_fhir(small, tmp_path)
    obs = (tmp_path / "Observation.ndjson").read_text().splitlines()
    first = json.loads(obs[0])
    no_value = {**first, "id": "novalue"}
    no_value.pop("valueQuantity", None)
    no_value["code"] = {"coding": [{"system": "http://loinc.org", "code": "1988-5"}]}
    broken = {"resourceType": "Observation", "id": "broken", "code": {}}  # no status: invalid FHIR
    extra = [
        json.dumps(first),
        json.dumps({**first, "valueQuantity": {**first["valueQuantity"], "value": 999}}),
        json.dumps(no_value),
        json.dumps(broken),
        "{not json",
    ]
    (tmp_path / "Observation.ndjson").write_text("\n".join(obs + extra) + "\n")
    cohort, report = import_fhir(tmp_path)
    refused = dict(zip(report.refused["reason"], report.refused["rows"], strict=True))
    assert refused["no value"] == 1
    assert any(r.startswith("not a valid FHIR R4 resource (at status") for r in refused)
    assert refused["not a FHIR resource (not JSON, or no resourceType)"] == 1
    dup = report.rows[report.rows["status"] == "duplicate"]
    assert sorted(dup["reason"]) == [
        "resource id repeated with different content (the first is kept)",
        "resource repeated (kept once)",
    ]
    assert "Observation/" in set(report.rows["src"])
    assert_same(small, cohort)
    c = report.counts
    assert c["rows_mapped"] + c["rows_unmapped"] + c["rows_refused"] + c["rows_duplicate"] == c["rows_read"]


def test_omop_grades_from_conditions_then_vitals(tmp_path, sim):
    import duckdb

    db = tmp_path / "cdm.duckdb"
    export_omop(sim, f"duckdb:///{db}")
    with duckdb.connect(str(db)) as con:  # a CDM without recorded grades, and one patient without a condition
        con.execute("DELETE FROM observation WHERE observation_source_value = 'ASTCT CRS grade'")
        con.execute(
            "DELETE FROM condition_occurrence WHERE person_id = (SELECT MIN(person_id) FROM condition_occurrence)"
        )
        con.execute(
            "INSERT INTO measurement (measurement_id, person_id, measurement_concept_id, measurement_date, "
            "measurement_type_concept_id, value_as_number) VALUES (999999, 1, 12345, DATE '2024-01-01', 32817, 1)"
        )
        # ETLs often write '=' as the operator of every plain result, and 0 for a unit they could not map
        con.execute("UPDATE measurement SET operator_concept_id = 4172703 WHERE operator_concept_id IS NULL")
        con.execute("UPDATE measurement SET unit_concept_id = 0 WHERE measurement_id <= 50")
    cohort, report = import_omop(f"duckdb:///{db}")
    c = report.counts
    assert c["rows_refused"] == 0 and c["patients_invalid"] == 0
    assert c["rows_mapped"] + c["rows_unmapped"] + c["rows_refused"] + c["rows_duplicate"] == c["rows_read"]
    assert set(cohort.measurements["qualifier"].dropna()) <= {"<", ">"}
    assert report.crs_source["ICD-10-CM conditions"] >= 20
    assert report.crs_source["ASTCT grading of vitals"] >= 1
    assert report.unmapped.set_index("code")["rows"].to_dict() == {"12345": 1}
    truth_max = sim.crs.groupby("patient_id")["grade"].max()
    got_max = cohort.crs.groupby("patient_id")["grade"].max()
    cond = report.patients.set_index("patient_id")["crs_source"] == "ICD-10-CM conditions"
    ids = cond[cond].index
    assert (got_max[ids] == truth_max[ids]).all()


def test_code_map_refuses_a_bad_file(tmp_path):
    (tmp_path / "m.toml").write_text('[analytes]\nil99 = ["local:X"]\n')
    with pytest.raises(CohortError, match=r"code map m.toml: analytes.il99 is not a target"):
        CodeMap.load(tmp_path / "m.toml")
    (tmp_path / "m.csv").write_text("section,target,code\nanalytes,il6,LOCAL-IL6\n")
    with pytest.raises(CohortError, match=r"m.csv line 2: code 'LOCAL-IL6' is not written SYSTEM:CODE"):
        CodeMap.load(tmp_path / "m.csv")
    (tmp_path / "ok.csv").write_text("section,target,code\nanalytes,il6,local:IL6X\n")
    codes = CodeMap.load(tmp_path / "ok.csv")
    found = codes.lookup(pd.Series(["local", None]), pd.Series(["IL6X", "26881-3"]))
    assert list(found["target"]) == ["il6", "il6"]
    (tmp_path / "upper.toml").write_text('[analytes]\nil6 = ["LOCAL:IL6-SEND"]\n')  # systems match in any case
    found = CodeMap.load(tmp_path / "upper.toml").lookup(pd.Series(["local", "Local"]), pd.Series(["IL6-SEND"] * 2))
    assert list(found["target"]) == ["il6", "il6"]


def test_cli_import_and_export(tmp_path, sim):
    sim.save(tmp_path / "sim")
    run = [sys.executable, "-m", "crsml"]
    r = subprocess.run(
        [*run, "export", str(tmp_path / "sim"), "--format", "omop", "--out", str(tmp_path / "c.duckdb")],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    r = subprocess.run(
        [*run, "import-omop", "--db", f"duckdb:///{tmp_path / 'c.duckdb'}", "--out", str(tmp_path / "imported")],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert "25 imported" in r.stdout  # the report is the command's output; "wrote ..." goes to stderr
    assert not any(p in r.stdout + r.stderr for p in sim.patients["patient_id"])  # identifiers stay in the directory
    meta = json.loads((tmp_path / "imported" / "cohort.json").read_text())
    assert meta["import"]["counts"]["patients_imported"] == 25 and meta["adapter"] == "omop"
    assert (tmp_path / "imported" / "import_patients.csv").exists()
    r = subprocess.run(
        [*run, "export", str(tmp_path / "sim"), "--format", "csv", "--out", "x"], capture_output=True, text=True
    )
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "use omop, fhir or long" in r.stderr
    (tmp_path / "empty").mkdir()
    r = subprocess.run(
        [*run, "import-long", str(tmp_path / "empty"), "--out", str(tmp_path / "o")], capture_output=True, text=True
    )
    assert r.returncode == 2 and "no patients file" in r.stderr
    export_long(sim, tmp_path / "ehr")
    r = subprocess.run(
        [*run, "import-long", str(tmp_path / "ehr"), "--timezone", "America/NewYork", "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and r.stderr.startswith("error: --timezone 'America/NewYork': not a time zone")
    results = pd.read_csv(tmp_path / "ehr" / "results.csv").drop(columns="unit")
    results.to_csv(tmp_path / "ehr" / "results.csv", index=False)
    r = subprocess.run(
        [*run, "import-long", str(tmp_path / "ehr"), "--out", str(tmp_path / "o")], capture_output=True, text=True
    )
    assert r.returncode == 2 and "table results: results.csv has no column unit" in r.stderr


def test_importers_page_lists_the_default_map():
    page = (Path(__file__).resolve().parents[1] / "docs" / "importers.md").read_text()
    assert CodeMap.load().markdown() in page


def test_readme_import_tour_runs_as_written(tmp_path, monkeypatch):
    """The README's commands for records as centres keep them, in order, on a small cohort."""
    import re

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text[text.index("## Records as centres keep them") :]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.S).group(1)
    monkeypatch.chdir(tmp_path)
    crsml.simulate(20, seed=2).save("cohorts/new")
    for line in [x.split("#")[0].strip() for x in block.splitlines() if x.strip()]:
        args = line.split()
        assert args[0] == "crsml", line
        r = subprocess.run([sys.executable, "-m", "crsml", *args[1:]], capture_output=True, text=True)
        assert r.returncode == 0, (line, r.stderr)
    for d in ("from_omop", "from_fhir", "from_ehr"):
        assert len(crsml.read_cohort(f"cohorts/{d}")) == 20


def test_fhir_bundle_references_components_codings_and_statuses(tmp_path):
    """A transaction-style Bundle: urn:uuid references, a blood-pressure panel's components, a
    local coding before LOINC, an entered-in-error Observation and a comparator that is no qualifier."""
    loinc, ucum = "http://loinc.org", "http://unitsofmeasure.org"
    pat = "urn:uuid:0f9b6a5e-0000-4000-8000-000000000001"

    def entry(resource, url=None):
        return {"fullUrl": url or f"urn:uuid:{resource['id']}", "resource": resource}

    def obs(oid, code, when, **value):
        return {
            "resourceType": "Observation",
            "id": oid,
            "status": value.pop("status", "final"),
            "code": code,
            "subject": {"reference": pat},
            "effectiveDateTime": when,
            **value,
        }

    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            entry(
                {
                    "resourceType": "Patient",
                    "id": "x1",
                    "identifier": [{"value": "MRN-7"}],
                    "gender": "male",
                    "birthDate": "1970-05-01",
                },
                pat,
            ),
            entry(
                {
                    "resourceType": "Procedure",
                    "id": "pr1",
                    "status": "completed",
                    "subject": {"reference": pat},
                    "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "38228"}]},
                    "performedDateTime": "2024-06-01T08:00:00+02:00",
                }
            ),
            entry(
                obs(
                    "t1",
                    {"coding": [{"system": loinc, "code": "8310-5"}]},
                    "2024-06-02T08:00:00+02:00",
                    valueQuantity={"value": 39.1, "system": ucum, "code": "Cel"},
                )
            ),
            entry(
                obs(
                    "bp1",
                    {"coding": [{"system": loinc, "code": "85354-9"}]},
                    "2024-06-02T08:00:00+02:00",
                    component=[
                        {
                            "code": {"coding": [{"system": loinc, "code": "8480-6"}]},
                            "valueQuantity": {"value": 84, "system": ucum, "code": "mm[Hg]"},
                        },
                        {
                            "code": {"coding": [{"system": loinc, "code": "8462-4"}]},
                            "valueQuantity": {"value": 50, "system": ucum, "code": "mm[Hg]"},
                        },
                    ],
                )
            ),
            entry(
                obs(
                    "i1",
                    {"coding": [{"system": "urn:local", "code": "IL6-LAB"}, {"system": loinc, "code": "26881-3"}]},
                    "2024-06-02T09:00:00+02:00",
                    valueQuantity={"value": 5000, "comparator": "ad", "system": ucum, "code": "pg/mL"},
                )
            ),
            entry(
                obs(
                    "e1",
                    {"coding": [{"system": loinc, "code": "1988-5"}]},
                    "2024-06-02T09:00:00+02:00",
                    status="entered-in-error",
                    valueQuantity={"value": 1, "system": ucum, "code": "mg/L"},
                )
            ),
        ],
    }
    (tmp_path / "bundle.json").write_text(json.dumps(bundle))
    cohort, report = import_fhir(tmp_path)
    assert list(cohort.patients["patient_id"]) == ["MRN-7"]
    v = cohort.vitals.iloc[0]
    assert v["time_h"] == 24.0 and v["temp_c"] == pytest.approx(39.1) and bool(v["hypotension"])
    m = cohort.measurements
    assert list(m["analyte"]) == ["il6"] and pd.isna(m["qualifier"].iloc[0])
    assert dict(zip(report.refused["reason"], report.refused["rows"], strict=True)) == {
        "Observation entered-in-error: did not happen": 1
    }
    assert report.unmapped.set_index("code")["rows"].to_dict() == {"8462-4": 1}  # diastolic: not graded from
    assert int(cohort.crs_grades()["grade"].max()) == 2  # fever with hypotension, no vasopressor


def test_shared_identifier_keeps_both_patients_out(tmp_path, sim):
    small = sim.subset(list(sim.patients["patient_id"][:3]))
    export_long(small, tmp_path)
    p = pd.read_csv(tmp_path / "patients.csv", dtype=str)
    p.loc[1, "patient_id"] = p.loc[0, "patient_id"]  # two people, one identifier: rows of both
    p.to_csv(tmp_path / "patients.csv", index=False)
    cohort, report = import_long(tmp_path)
    assert list(cohort.patients["patient_id"]) == [p.loc[2, "patient_id"]]
    status = report.patients.set_index("patient_id")
    assert (
        status.loc[p.loc[0, "patient_id"], "reason"]
        == "patient identifier not unique in the source (two different records)"
    )
    refused = dict(zip(report.refused["reason"], report.refused["rows"], strict=True))
    assert refused["patient identifier not unique in the source (two different records)"] > 0
    assert refused["patient is not among the source's patients"] > 0  # the renamed patient's own rows


def test_omop_infusion_from_a_product_drug_exposure(tmp_path, sim):
    """Time zero from DRUG_EXPOSURE of a CD19 product (HCPCS Q2041, axicabtagene ciloleucel), whose
    costimulatory domain fills patients.costim where no observation gives it."""
    import duckdb

    db = tmp_path / "cdm.duckdb"
    export_omop(sim, f"duckdb:///{db}")
    with duckdb.connect(str(db)) as con:
        axicel = con.execute(
            "SELECT concept_id FROM concept WHERE vocabulary_id = 'HCPCS' AND concept_code = 'Q2041'"
        ).fetchone()[0]
        con.execute(f"""INSERT INTO drug_exposure (drug_exposure_id, person_id, drug_concept_id,
                        drug_exposure_start_date, drug_exposure_start_datetime, drug_exposure_end_date,
                        drug_type_concept_id)
                        SELECT 100000 + person_id, person_id, {axicel}, procedure_date, procedure_datetime,
                        procedure_date, 32817 FROM procedure_occurrence""")
        con.execute("DELETE FROM procedure_occurrence")
        con.execute("DELETE FROM observation WHERE observation_source_value = 'costim'")
    back, report = import_omop(f"duckdb:///{db}")
    assert report.counts["patients_imported"] == 25
    assert set(back.patients["costim"]) == {"cd28"}
    expected = sim.subset(list(sim.patients["patient_id"]))
    expected.patients = expected.patients.assign(costim="cd28")
    assert_same(expected, back)  # everything else unchanged: the same time zero


def test_long_export_in_parquet(tmp_path, sim):
    export_long(sim, tmp_path / "csv")
    (tmp_path / "pq").mkdir()
    for f in (tmp_path / "csv").glob("*.csv"):
        pd.read_csv(f, dtype={"patient_id": str}).to_parquet(tmp_path / "pq" / f"{f.stem}.parquet")
    back, report = import_long(tmp_path / "pq")
    assert_same(sim, back)

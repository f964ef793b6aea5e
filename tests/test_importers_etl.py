"""Records as hospital ETLs write them (#32): an OMOP CDM v5.4 and a FHIR R4 bulk export built here
from their published specifications, by code that shares nothing with crsml's exporters or its
simulator. Standard concept 0 with local source concepts, ICD-10-CM only as source concepts, SNOMED
oxygen devices, HCPCS under its THO URI and its OID, a local lab system, US and SI units, Decimal
values. Each import must give back every patient, lab row, tocilizumab dose, diagnosis and worst CRS
grade the source holds."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from crsml.adapters import CodeMap, import_fhir, import_omop
from crsml.cli import main
from crsml.errors import CohortError

N = 10
T0 = pd.Timestamp("2024-03-01 10:00")
LAB_HOURS = (-24, 0, 24, 48, 72)
# ICD-10-CM and SNOMED diagnoses as an ETL keeps them; HCPCS CAR-T products
DIAG = {"B-ALL": ("C91.00", "277571004"), "LBCL": ("C83.38", "109969005")}
PRODUCT = {0: "Q2042", 1: "Q2041"}
# the devices an ASTCT grade needs (SNOMED CT physical objects, VSAC 2.16.840.1.113762.1.4.1170.57)
DEVICE = {
    2: ("336623009", "Oxygen nasal cannula"),
    3: ("426854004", "High flow oxygen nasal cannula"),
    4: ("425826004", "Bilevel positive airway pressure oxygen nasal cannula"),
}
CENTRE_MAP = """
[systems]
LAB_LOCAL = "http://hospital.example.org/fhir/CodeSystem/lab-local"

[analytes]
mcp1 = ["LAB_LOCAL:MCP1"]
il10 = ["local:IL10-ELISA"]

[patients]
marrow_blast_pct = ["LAB_LOCAL:BMBLAST"]

[crs]
grade = ["LAB_LOCAL:CRSGRADE"]
"""


def truth() -> dict[str, pd.DataFrame]:
    """Ten patients: worst grade i % 5, labs in US units at even (US) sites and SI at odd ones."""
    rng = np.random.default_rng(32)
    pts, labs, tx, grades, devices, flows, temps, pressors = [], [], [], [], [], [], [], []
    for i in range(N):
        pid, g = f"MRN{1000 + i}", i % 5
        pts.append(
            {
                "patient_id": pid,
                "age": 20 + 3 * i,
                "sex": "female" if i % 2 else "male",
                "diagnosis": "B-ALL" if i % 2 == 0 else "LBCL",
                "weight_kg": 60.0 + i,
                "blasts": 5.0 + i,
                "t0": T0 + pd.Timedelta(days=i),
                "product": PRODUCT[i % 2],
                "worst": g,
                "us": i % 2 == 0,
            }
        )
        for h in LAB_HOURS:
            il6 = round(float(rng.uniform(5, 500)), 2)
            crp = round(float(rng.uniform(1, 200)), 1)  # mg/L
            creat = round(float(rng.uniform(50, 120)), 1)  # umol/L
            labs += [
                (pid, h, "il6", il6),
                (pid, h, "crp", crp),
                (pid, h, "creatinine", creat),
                (pid, h, "mcp1", round(float(rng.uniform(100, 900)), 1)),
                (pid, h, "il10", round(float(rng.uniform(1, 50)), 2)),
            ]
        for h in range(0, 145, 12):
            temps.append((pid, h, 39.0 if (g >= 1 and 30 <= h < 120) else 37.0))
        if g >= 1:
            grades += [(pid, 30, 1), (pid, 60, g), (pid, 120, 0)]
        else:
            grades.append((pid, 30, 0))
        if g >= 2:
            devices.append((pid, 60, 72, *DEVICE[g]))
            tx.append((pid, 62.0, Decimal("8.0") * Decimal(str(60.0 + i))))
        if g == 2:
            flows.append((pid, 60, 2.0))
        if g == 3:
            pressors.append((pid, 60, 72))
    cols = {
        "labs": ["patient_id", "h", "analyte", "value"],
        "tx": ["patient_id", "h", "dose_mg"],
        "grades": ["patient_id", "h", "grade"],
        "devices": ["patient_id", "start", "end", "snomed", "name"],
        "flows": ["patient_id", "h", "lpm"],
        "temps": ["patient_id", "h", "temp_c"],
        "pressors": ["patient_id", "start", "end"],
    }
    out = {
        k: pd.DataFrame(v, columns=cols[k])
        for k, v in [
            ("labs", labs),
            ("tx", tx),
            ("grades", grades),
            ("devices", devices),
            ("flows", flows),
            ("temps", temps),
            ("pressors", pressors),
        ]
    }
    out["patients"] = pd.DataFrame(pts)
    return out


# ------------------------------------------------------------------------------------------- OMOP

CONCEPTS = [  # concept_id, name, domain, vocabulary_id, class, standard, code (Athena-like ids)
    (3015039, "Interleukin 6 [Mass/volume] in Serum or Plasma", "Measurement", "LOINC", "Lab Test", "S", "26881-3"),
    (3020460, "C reactive protein [Mass/volume] in Serum or Plasma", "Measurement", "LOINC", "Lab Test", "S", "1988-5"),
    (3016723, "Creatinine [Mass/volume] in Serum or Plasma", "Measurement", "LOINC", "Lab Test", "S", "2160-0"),
    (3020891, "Body temperature", "Measurement", "LOINC", "Clinical Observation", "S", "8310-5"),
    (3005424, "Body weight", "Measurement", "LOINC", "Clinical Observation", "S", "29463-7"),
    (3004249, "Systolic blood pressure", "Measurement", "LOINC", "Clinical Observation", "S", "8480-6"),
    (3005629, "Inhaled oxygen flow rate", "Measurement", "LOINC", "Clinical Observation", "S", "3151-8"),
    (8840, "milligram per deciliter", "Unit", "UCUM", "Unit", "S", "mg/dL"),
    (8751, "milligram per liter", "Unit", "UCUM", "Unit", "S", "mg/L"),
    (8749, "micromole per liter", "Unit", "UCUM", "Unit", "S", "umol/L"),
    (8845, "picogram per milliliter", "Unit", "UCUM", "Unit", "S", "pg/mL"),
    (586323, "degree Celsius", "Unit", "UCUM", "Unit", "S", "Cel"),
    (9529, "kilogram", "Unit", "UCUM", "Unit", "S", "kg"),
    (8876, "millimeter mercury column", "Unit", "UCUM", "Unit", "S", "mm[Hg]"),
    (8698, "liter per minute", "Unit", "UCUM", "Unit", "S", "L/min"),
    (4172703, "=", "Meas Value Operator", "Meas Value Operator", "Meas Value Operator", "S", "4172703"),
    (4160030, "Oxygen nasal cannula", "Device", "SNOMED", "Physical Object", "S", "336623009"),
    (45768222, "High flow oxygen nasal cannula", "Device", "SNOMED", "Physical Object", "S", "426854004"),
    (
        45768197,
        "Bilevel positive airway pressure oxygen nasal cannula",
        "Device",
        "SNOMED",
        "Physical Object",
        "S",
        "425826004",
    ),
    (1742253, "tocilizumab", "Drug", "RxNorm", "Ingredient", "S", "612865"),
    (1321341, "norepinephrine", "Drug", "RxNorm", "Ingredient", "S", "7512"),
    (35603567, "tisagenlecleucel", "Drug", "RxNorm", "Ingredient", "S", "1999006"),
    (35603568, "axicabtagene ciloleucel", "Drug", "RxNorm", "Ingredient", "S", "1999008"),
    (
        2718876,
        "Tisagenlecleucel, up to 600 million car-positive viable t cells",
        "Drug",
        "HCPCS",
        "HCPCS",
        None,
        "Q2042",
    ),
    (
        2718875,
        "Axicabtagene ciloleucel, up to 200 million autologous anti-cd19 car positive viable t cells",
        "Drug",
        "HCPCS",
        "HCPCS",
        None,
        "Q2041",
    ),
    (37311111, "Cytokine release syndrome", "Condition", "SNOMED", "Clinical Finding", "S", "1144839005"),
    *[
        (
            1569000 + g,
            f"Cytokine release syndrome, grade {g}",
            "Condition",
            "ICD10CM",
            "5-char billing code",
            None,
            f"D89.83{g}",
        )
        for g in range(1, 6)
    ],
    (4082473, "B-cell acute lymphoblastic leukemia", "Condition", "SNOMED", "Clinical Finding", "S", "277571004"),
    (4300704, "Diffuse large B-cell lymphoma", "Condition", "SNOMED", "Clinical Finding", "S", "109969005"),
    (
        35625732,
        "Acute lymphoblastic leukemia not having achieved remission",
        "Condition",
        "ICD10CM",
        "5-char billing code",
        None,
        "C91.00",
    ),
    (
        35625733,
        "Diffuse large B-cell lymphoma, lymph nodes of multiple sites",
        "Condition",
        "ICD10CM",
        "5-char billing code",
        None,
        "C83.38",
    ),
    (2000000101, "Monocyte chemoattractant protein 1", "Measurement", "LAB_LOCAL", "Lab Test", None, "MCP1"),
    (2000000102, "Blasts/100 cells in Bone marrow", "Measurement", "LAB_LOCAL", "Lab Test", None, "BMBLAST"),
    (2000000103, "ASTCT CRS grade", "Observation", "LAB_LOCAL", "Observation", None, "CRSGRADE"),
    (2000000201, "Oxygen nasal cannula (ward stock)", "Device", "DEV_LOCAL", "Device", None, "O2-NC"),
    (2000000202, "High flow oxygen system (ward stock)", "Device", "DEV_LOCAL", "Device", None, "O2-HF"),
    (
        2000000203,
        "Bilevel positive airway pressure mask (ward stock)",
        "Device",
        "DEV_LOCAL",
        "Device",
        None,
        "O2-BIPAP",
    ),
]
CID = {(c[3], c[6]): c[0] for c in CONCEPTS}
LOCAL_DEVICE = {"336623009": "O2-NC", "426854004": "O2-HF", "425826004": "O2-BIPAP"}
US = {"crp": ("mg/dL", 0.1), "creatinine": ("mg/dL", 1 / 88.4)}  # what a US laboratory reports
SI = {"crp": ("mg/L", 1.0), "creatinine": ("umol/L", 1.0)}


def write_cdm(
    path: Path, t: dict[str, pd.DataFrame], grades: bool = True, conditions: bool = True, local_devices: bool = False
) -> str:
    """An OMOP CDM v5.4 the way an ETL writes it (OHDSI DDL subset, DECIMAL values, Athena-like
    concept ids; local tests under standard concept 0 with a local source concept or only a source
    value; CRS and diagnoses as SNOMED standard concepts with ICD-10-CM source concepts)."""
    con = duckdb.connect(str(path))
    con.execute(
        "CREATE TABLE concept (concept_id INTEGER, concept_name VARCHAR, domain_id VARCHAR, "
        "vocabulary_id VARCHAR, concept_class_id VARCHAR, standard_concept VARCHAR, concept_code VARCHAR, "
        "valid_start_date DATE, valid_end_date DATE, invalid_reason VARCHAR)"
    )
    con.executemany(
        "INSERT INTO concept VALUES (?, ?, ?, ?, ?, ?, ?, DATE '1970-01-01', DATE '2099-12-31', NULL)",
        [list(c) for c in CONCEPTS],
    )
    con.execute(
        "CREATE TABLE person (person_id BIGINT, gender_concept_id INTEGER, year_of_birth INTEGER, "
        "month_of_birth INTEGER, day_of_birth INTEGER, birth_datetime TIMESTAMP, race_concept_id INTEGER, "
        "ethnicity_concept_id INTEGER, person_source_value VARCHAR, gender_source_value VARCHAR)"
    )
    con.execute(
        "CREATE TABLE procedure_occurrence (procedure_occurrence_id BIGINT, person_id BIGINT, "
        "procedure_concept_id INTEGER, procedure_date DATE, procedure_datetime TIMESTAMP, "
        "procedure_type_concept_id INTEGER, procedure_source_value VARCHAR, procedure_source_concept_id INTEGER)"
    )
    con.execute(
        "CREATE TABLE drug_exposure (drug_exposure_id BIGINT, person_id BIGINT, drug_concept_id INTEGER, "
        "drug_exposure_start_date DATE, drug_exposure_start_datetime TIMESTAMP, drug_exposure_end_date DATE, "
        "drug_exposure_end_datetime TIMESTAMP, drug_type_concept_id INTEGER, quantity DECIMAL(12, 3), "
        "drug_source_value VARCHAR, drug_source_concept_id INTEGER, dose_unit_source_value VARCHAR)"
    )
    con.execute(
        "CREATE TABLE device_exposure (device_exposure_id BIGINT, person_id BIGINT, device_concept_id INTEGER, "
        "device_exposure_start_date DATE, device_exposure_start_datetime TIMESTAMP, "
        "device_exposure_end_date DATE, device_exposure_end_datetime TIMESTAMP, "
        "device_type_concept_id INTEGER, device_source_value VARCHAR, device_source_concept_id INTEGER)"
    )
    con.execute(
        "CREATE TABLE measurement (measurement_id BIGINT, person_id BIGINT, measurement_concept_id INTEGER, "
        "measurement_date DATE, measurement_datetime TIMESTAMP, measurement_type_concept_id INTEGER, "
        "operator_concept_id INTEGER, value_as_number DECIMAL(18, 4), value_as_concept_id INTEGER, "
        "unit_concept_id INTEGER, measurement_source_value VARCHAR, measurement_source_concept_id INTEGER, "
        "unit_source_value VARCHAR)"
    )
    con.execute(
        "CREATE TABLE observation (observation_id BIGINT, person_id BIGINT, observation_concept_id INTEGER, "
        "observation_date DATE, observation_datetime TIMESTAMP, observation_type_concept_id INTEGER, "
        "value_as_number DECIMAL(18, 4), value_as_string VARCHAR, value_as_concept_id INTEGER, "
        "unit_concept_id INTEGER, observation_source_value VARCHAR, observation_source_concept_id INTEGER)"
    )
    con.execute(
        "CREATE TABLE condition_occurrence (condition_occurrence_id BIGINT, person_id BIGINT, "
        "condition_concept_id INTEGER, condition_start_date DATE, condition_start_datetime TIMESTAMP, "
        "condition_end_date DATE, condition_end_datetime TIMESTAMP, condition_type_concept_id INTEGER, "
        "condition_source_value VARCHAR, condition_source_concept_id INTEGER)"
    )
    P = t["patients"]
    key = {pid: 501 + k for k, pid in enumerate(P["patient_id"])}
    t0 = dict(zip(P["patient_id"], P["t0"], strict=True))
    ids = iter(range(10_001, 10_000_000))

    def at(pid: str, h: float) -> pd.Timestamp:
        return t0[pid] + pd.Timedelta(hours=float(h))

    for r in P.itertuples():
        birth = r.t0 - pd.Timedelta(days=365.25 * r.age)
        con.execute(
            "INSERT INTO person VALUES (?, ?, ?, ?, ?, NULL, 0, 0, ?, ?)",
            [
                key[r.patient_id],
                8532 if r.sex == "female" else 8507,
                birth.year,
                birth.month,
                birth.day,
                r.patient_id,
                r.sex[0].upper(),
            ],
        )
        con.execute(
            "INSERT INTO procedure_occurrence VALUES (?, ?, 0, ?, ?, 32817, ?, ?)",  # HCPCS: non-standard
            [next(ids), key[r.patient_id], r.t0.date(), r.t0, r.product, CID[("HCPCS", r.product)]],
        )
        icd, snomed = DIAG[r.diagnosis]
        dx = r.t0 - pd.Timedelta(days=400)  # diagnosed long before the infusion
        con.execute(
            "INSERT INTO condition_occurrence VALUES (?, ?, ?, ?, ?, NULL, NULL, 32817, ?, ?)",
            [next(ids), key[r.patient_id], CID[("SNOMED", snomed)], dx.date(), dx, icd, CID[("ICD10CM", icd)]],
        )
        w = at(r.patient_id, -2)
        con.execute(
            "INSERT INTO measurement VALUES (?, ?, ?, ?, ?, 32817, NULL, ?, NULL, ?, 'WT', 0, 'kg')",
            [
                next(ids),
                key[r.patient_id],
                CID[("LOINC", "29463-7")],
                w.date(),
                w,
                Decimal(str(r.weight_kg)),
                CID[("UCUM", "kg")],
            ],
        )
        bm = at(r.patient_id, -120)
        con.execute(
            "INSERT INTO measurement VALUES (?, ?, 0, ?, ?, 32817, NULL, ?, NULL, 0, 'BMBLAST', ?, '%')",
            [next(ids), key[r.patient_id], bm.date(), bm, Decimal(str(r.blasts)), CID[("LAB_LOCAL", "BMBLAST")]],
        )
    us = dict(zip(P["patient_id"], P["us"], strict=True))
    loinc = {"il6": "26881-3", "crp": "1988-5", "creatinine": "2160-0"}
    for r in t["labs"].itertuples():
        when = at(r.patient_id, r.h)
        if r.analyte in loinc:
            unit, factor = (US if us[r.patient_id] else SI).get(r.analyte, ("pg/mL", 1.0))
            row = [
                CID[("LOINC", loinc[r.analyte])],
                Decimal(str(round(r.value * factor, 4))),
                CID[("UCUM", unit)],
                r.analyte.upper(),
                0,
                unit,
            ]
        elif r.analyte == "mcp1":  # a local test: standard concept 0, a local source concept
            row = [0, Decimal(str(r.value)), CID[("UCUM", "pg/mL")], "MCP1", CID[("LAB_LOCAL", "MCP1")], "pg/mL"]
        else:  # il10: no concept at all, only the laboratory's own code as source value
            row = [0, Decimal(str(r.value)), 0, "IL10-ELISA", 0, "pg/mL"]
        con.execute(
            "INSERT INTO measurement VALUES (?, ?, ?, ?, ?, 32817, 4172703, ?, NULL, ?, ?, ?, ?)",
            [next(ids), key[r.patient_id], row[0], when.date(), when, row[1], row[2], row[3], row[4], row[5]],
        )
    for table, code, unit, col in (("temps", "8310-5", "Cel", "temp_c"), ("flows", "3151-8", "L/min", "lpm")):
        for r in t[table].itertuples():
            when = at(r.patient_id, r.h)
            con.execute(
                "INSERT INTO measurement VALUES (?, ?, ?, ?, ?, 32817, NULL, ?, NULL, ?, ?, 0, ?)",
                [
                    next(ids),
                    key[r.patient_id],
                    CID[("LOINC", code)],
                    when.date(),
                    when,
                    Decimal(str(getattr(r, col))),
                    CID[("UCUM", unit)],
                    code,
                    unit,
                ],
            )
    for r in t["devices"].itertuples():
        s, e = at(r.patient_id, r.start), at(r.patient_id, r.end)
        concept = CID[("DEV_LOCAL", LOCAL_DEVICE[r.snomed])] if local_devices else CID[("SNOMED", r.snomed)]
        con.execute(
            "INSERT INTO device_exposure VALUES (?, ?, ?, ?, ?, ?, ?, 32817, ?, 0)",
            [next(ids), key[r.patient_id], concept, s.date(), s, e.date(), e, r.name],
        )
    for r in t["pressors"].itertuples():
        s, e = at(r.patient_id, r.start), at(r.patient_id, r.end)
        con.execute(
            "INSERT INTO drug_exposure VALUES (?, ?, ?, ?, ?, ?, ?, 32817, NULL, 'NOREPI', 0, NULL)",
            [next(ids), key[r.patient_id], CID[("RxNorm", "7512")], s.date(), s, e.date(), e],
        )
    for r in t["tx"].itertuples():
        s = at(r.patient_id, r.h)
        con.execute(
            "INSERT INTO drug_exposure VALUES (?, ?, ?, ?, ?, ?, ?, 32817, ?, 'TOCI', 0, 'mg')",
            [next(ids), key[r.patient_id], CID[("RxNorm", "612865")], s.date(), s, s.date(), s, r.dose_mg],
        )
    if grades:  # a recorded grade: standard concept 0, the centre's local source concept
        for r in t["grades"].itertuples():
            when = at(r.patient_id, r.h)
            con.execute(
                "INSERT INTO observation VALUES (?, ?, 0, ?, ?, 32817, ?, NULL, NULL, NULL, 'CRS GRADE', ?)",
                [next(ids), key[r.patient_id], when.date(), when, Decimal(r.grade), CID[("LAB_LOCAL", "CRSGRADE")]],
            )
    if conditions:  # CRS: SNOMED standard concept (no grade), ICD-10-CM D89.83x source concept
        for r in P[P["worst"] >= 1].itertuples():
            s, e = at(r.patient_id, 30), at(r.patient_id, 120)
            icd = f"D89.83{r.worst}"
            con.execute(
                "INSERT INTO condition_occurrence VALUES (?, ?, ?, ?, ?, ?, ?, 32817, ?, ?)",
                [
                    next(ids),
                    key[r.patient_id],
                    CID[("SNOMED", "1144839005")],
                    s.date(),
                    s,
                    e.date(),
                    e,
                    icd,
                    CID[("ICD10CM", icd)],
                ],
            )
    con.close()
    return f"duckdb:///{path}"


@pytest.fixture(scope="module")
def source() -> dict[str, pd.DataFrame]:
    return truth()


@pytest.fixture(scope="module")
def centre_map(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("map") / "centre.toml"
    p.write_text(CENTRE_MAP)
    return p


def check_equal_to_source(cohort, t: dict[str, pd.DataFrame]) -> None:
    """Every patient, lab row (canonical units), tocilizumab dose, diagnosis and worst grade."""
    P = t["patients"].set_index("patient_id")
    got = cohort.patients.set_index("patient_id")
    assert sorted(got.index) == sorted(P.index)
    assert (got["diagnosis"] == P["diagnosis"]).all()
    assert np.allclose(got["weight_kg"].astype(float), P["weight_kg"])
    assert np.allclose(got["marrow_blast_pct"].astype(float), P["blasts"])
    assert (got["costim"] == P["product"].map({"Q2042": "4-1bb", "Q2041": "cd28"})).all()
    m = cohort.measurements.copy()
    m["h"] = m["time_h"].astype(float).round(6)
    want = t["labs"].rename(columns={"value": "want"})
    both = want.merge(m, on=["patient_id", "h", "analyte"], how="outer", indicator=True)
    assert (both["_merge"] == "both").all(), both["_merge"].value_counts()
    np.testing.assert_allclose(both["value"].astype(float), both["want"].astype(float), rtol=2e-3)
    toci = cohort.treatments[cohort.treatments["drug"] == "tocilizumab"]
    assert len(toci) == len(t["tx"])
    np.testing.assert_allclose(np.sort(toci["dose"].astype(float)), np.sort(t["tx"]["dose_mg"].astype(float)))
    worst = cohort.crs_grades().groupby("patient_id")["grade"].max()
    assert worst.reindex(P.index).fillna(0).astype(int).to_dict() == P["worst"].to_dict()


def test_omop_as_an_etl_writes_it(tmp_path, source, centre_map):
    url = write_cdm(tmp_path / "etl.duckdb", source)
    cohort, report = import_omop(url, codes=CodeMap.load(centre_map))
    check_equal_to_source(cohort, source)
    assert report.counts["patients_imported"] == N and report.counts["rows_refused"] == 0
    assert set(report.routes) == {"standard concept", "source concept", "source value"}
    assert report.routes["source value"] == N * len(LAB_HOURS)  # il10, the laboratory's own code
    assert report.crs_source == {"recorded grades": N}
    assert report.counts["patients_grade_lower_bound"] == 0


def test_omop_grades_from_icd10cm_source_concepts_then_snomed_devices(tmp_path, source, centre_map):
    url = write_cdm(tmp_path / "cond.duckdb", source, grades=False)
    cohort, report = import_omop(url, codes=CodeMap.load(centre_map))
    check_equal_to_source(cohort, source)
    assert report.crs_source["ICD-10-CM conditions"] == int((source["patients"]["worst"] >= 1).sum())
    # no recorded grade, no condition: graded from the vitals, oxygen through its SNOMED devices
    url = write_cdm(tmp_path / "vitals.duckdb", source, grades=False, conditions=False)
    cohort, report = import_omop(url, codes=CodeMap.load(centre_map))
    check_equal_to_source(cohort, source)
    assert report.crs_source == {"ASTCT grading of vitals": N}
    rows = report.patients.set_index("patient_id")
    assert rows["oxygen_records"].gt(0).sum() == len(source["devices"])
    assert report.counts["patients_grade_lower_bound"] == 0
    assert "CRS grades derived by crsml from the vitals" in report.summary()


def test_unmapped_devices_give_a_lower_bound_and_require_grades_refuses(tmp_path, source, centre_map):
    url = write_cdm(tmp_path / "local.duckdb", source, grades=False, conditions=False, local_devices=True)
    cohort, report = import_omop(url, codes=CodeMap.load(centre_map))
    rows = report.patients.set_index("patient_id")
    with_device = set(source["devices"]["patient_id"])
    flagged = set(rows.index[rows["grade_warning"].fillna("") != ""])
    assert flagged == with_device
    assert (rows.loc[sorted(with_device), "unmapped_oxygen_records"] == 1).all()
    assert report.counts["patients_grade_lower_bound"] == len(with_device)
    assert "lower bound" in report.summary()
    saved = tmp_path / "out"
    saved.mkdir()
    report.save(saved)
    assert json.loads((saved / "import_report.json").read_text())["counts"]["patients_grade_lower_bound"] == len(
        with_device
    )
    unmapped = pd.read_csv(saved / "import_unmapped.csv", dtype=str, keep_default_na=False)
    devices = unmapped[unmapped["system"] == "DEV_LOCAL"]
    assert set(devices["code"]) == set(LOCAL_DEVICE.values()) and (devices["section"] == "devices").all()
    with pytest.raises(CohortError, match="--require-grades") as exc:
        import_omop(url, codes=CodeMap.load(centre_map), require_grades=True)
    assert "\n" not in str(exc.value) and "MRN" not in str(exc.value)
    # the loop: the centre fills the targets of import_unmapped.csv and passes it back with --map
    filled = unmapped.copy()
    target = {"O2-NC": "nasal_cannula", "O2-HF": "high_flow_nasal_cannula", "O2-BIPAP": "bipap"}
    filled["target"] = filled["code"].map(target).fillna("")
    filled.to_csv(tmp_path / "filled.csv", index=False)
    cohort, report = import_omop(url, codes=CodeMap.load([centre_map, tmp_path / "filled.csv"]))
    assert report.counts["patients_grade_lower_bound"] == 0
    check_equal_to_source(cohort, source)
    worst = cohort.crs_grades().groupby("patient_id")["grade"].max()
    assert (
        worst.reindex(source["patients"]["patient_id"]).fillna(0).astype(int).tolist()
        == source["patients"]["worst"].tolist()
    )


def crsml(args: list[str], capsys, monkeypatch) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.argv", ["crsml", *args])
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_require_grades_is_one_line(tmp_path, source, centre_map, capsys, monkeypatch):
    url = write_cdm(tmp_path / "cli.duckdb", source, grades=False, conditions=False, local_devices=True)
    args = ["import-omop", "--db", url, "--out", str(tmp_path / "c"), "--map", str(centre_map)]
    code, out, err = crsml([*args, "--require-grades"], capsys, monkeypatch)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and "--require-grades" in err
    assert not (tmp_path / "c").exists()
    code, out, err = crsml(args, capsys, monkeypatch)
    assert code == 0, err
    assert "WARNING: 6 of them" in " ".join(out.split()) and "MRN" not in out + err
    assert (tmp_path / "c" / "import_unmapped.csv").is_file()


# ------------------------------------------------------------------------------------------- FHIR

HCPCS_IDS = ("http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets", "urn:oid:2.16.840.1.113883.6.285")
LOINC, SNOMED, UCUM = "http://loinc.org", "http://snomed.info/sct", "http://unitsofmeasure.org"
RXNORM, ICD10CM = "http://www.nlm.nih.gov/research/umls/rxnorm", "http://hl7.org/fhir/sid/icd-10-cm"
LOCAL_LAB = "http://hospital.example.org/fhir/CodeSystem/lab-local"


def write_fhir(directory: Path, t: dict[str, pd.DataFrame]) -> None:
    """A FHIR R4 bulk export as an EHR writes it: a manifest, one NDJSON file per type, HCPCS
    under its THO URI or its OID, a local lab code system, decimals written as JSON numbers, oxygen
    devices as a Device used by the patient (DeviceUseStatement) or an observation valued with it."""
    directory.mkdir(parents=True)
    P = t["patients"]
    t0 = dict(zip(P["patient_id"], P["t0"], strict=True))
    res: dict[str, list[dict]] = {
        k: []
        for k in (
            "Patient",
            "Procedure",
            "Observation",
            "MedicationAdministration",
            "Condition",
            "Device",
            "DeviceUseStatement",
        )
    }
    n = iter(range(1, 10**7))

    def iso(pid: str, h: float) -> str:
        return (t0[pid] + pd.Timedelta(hours=float(h))).strftime("%Y-%m-%dT%H:%M:%S+00:00")

    def subject(pid: str) -> dict:
        return {"reference": f"Patient/pt-{pid[3:]}"}

    def obs(pid: str, h: float, category: str, coding: list[dict], **value) -> dict:
        return {
            "resourceType": "Observation",
            "id": f"obs-{next(n)}",
            "status": "final",
            "category": [
                {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": category}]}
            ],
            "code": {"coding": coding},
            "subject": subject(pid),
            "effectiveDateTime": iso(pid, h),
            **value,
        }

    for i, r in enumerate(P.itertuples()):
        birth = (r.t0 - pd.Timedelta(days=365.25 * r.age)).date().isoformat()
        res["Patient"].append(
            {
                "resourceType": "Patient",
                "id": f"pt-{r.patient_id[3:]}",
                "gender": r.sex,
                "birthDate": birth,
                "identifier": [{"system": "urn:oid:1.2.36.146.595.217.0.1", "value": r.patient_id}],
            }
        )
        res["Procedure"].append(
            {
                "resourceType": "Procedure",
                "id": f"proc-{next(n)}",
                "status": "completed",
                "subject": subject(r.patient_id),
                "performedDateTime": iso(r.patient_id, 0),
                "code": {"coding": [{"system": HCPCS_IDS[i % 2], "code": r.product}]},
            }
        )
        icd, snomed = DIAG[r.diagnosis]
        res["Condition"].append(
            {
                "resourceType": "Condition",
                "id": f"dx-{next(n)}",
                "subject": subject(r.patient_id),
                "code": {"coding": [{"system": ICD10CM, "code": icd}, {"system": SNOMED, "code": snomed}]},
                "onsetDateTime": iso(r.patient_id, -24 * 400),
            }
        )
        if r.worst >= 1:
            res["Condition"].append(
                {
                    "resourceType": "Condition",
                    "id": f"crs-{next(n)}",
                    "subject": subject(r.patient_id),
                    "code": {"coding": [{"system": ICD10CM, "code": f"D89.83{r.worst}"}]},
                    "onsetDateTime": iso(r.patient_id, 30),
                    "abatementDateTime": iso(r.patient_id, 120),
                }
            )
        res["Observation"].append(
            obs(
                r.patient_id,
                -2,
                "vital-signs",
                [{"system": LOINC, "code": "29463-7"}],
                valueQuantity={"value": float(r.weight_kg), "unit": "kg", "system": UCUM, "code": "kg"},
            )
        )
        res["Observation"].append(
            obs(
                r.patient_id,
                -120,
                "laboratory",
                [{"system": LOCAL_LAB, "code": "BMBLAST"}],
                valueQuantity={"value": float(r.blasts), "unit": "%", "system": UCUM, "code": "%"},
            )
        )
    us = dict(zip(P["patient_id"], P["us"], strict=True))
    codes = {
        "il6": (LOINC, "26881-3"),
        "crp": (LOINC, "1988-5"),
        "creatinine": (LOINC, "2160-0"),
        "mcp1": (LOCAL_LAB, "MCP1"),
    }
    for r in t["labs"][t["labs"]["analyte"] != "il10"].itertuples():
        unit, factor = (US if us[r.patient_id] else SI).get(r.analyte, ("pg/mL", 1.0))
        system, code = codes[r.analyte]
        res["Observation"].append(
            obs(
                r.patient_id,
                r.h,
                "laboratory",
                [{"system": system, "code": code, "display": r.analyte.upper()}],
                valueQuantity={"value": round(r.value * factor, 4), "unit": unit, "system": UCUM, "code": unit},
            )
        )
    for r in t["labs"][t["labs"]["analyte"] == "il10"].itertuples():  # LOINC and the lab's own code together
        res["Observation"].append(
            obs(
                r.patient_id,
                r.h,
                "laboratory",
                [{"system": LOCAL_LAB, "code": "IL10-ELISA"}, {"system": LOINC, "code": "26848-2"}],
                valueQuantity={"value": r.value, "unit": "pg/mL", "system": UCUM, "code": "pg/mL"},
            )
        )
    for r in t["temps"].itertuples():
        res["Observation"].append(
            obs(
                r.patient_id,
                r.h,
                "vital-signs",
                [{"system": LOINC, "code": "8310-5"}],
                valueQuantity={"value": r.temp_c, "unit": "C", "system": UCUM, "code": "Cel"},
            )
        )
    for r in t["flows"].itertuples():
        res["Observation"].append(
            obs(
                r.patient_id,
                r.h,
                "vital-signs",
                [{"system": LOINC, "code": "3151-8"}],
                valueQuantity={"value": r.lpm, "unit": "L/min", "system": UCUM, "code": "L/min"},
            )
        )
    for k, r in enumerate(t["devices"].itertuples()):
        if k % 2 == 0:  # a Device the patient used, for a period
            dev = f"dev-{next(n)}"
            res["Device"].append(
                {
                    "resourceType": "Device",
                    "id": dev,
                    "type": {"coding": [{"system": SNOMED, "code": r.snomed, "display": r.name}]},
                }
            )
            res["DeviceUseStatement"].append(
                {
                    "resourceType": "DeviceUseStatement",
                    "id": f"dus-{next(n)}",
                    "status": "completed",
                    "subject": subject(r.patient_id),
                    "device": {"reference": f"Device/{dev}"},
                    "timingPeriod": {"start": iso(r.patient_id, r.start), "end": iso(r.patient_id, r.end)},
                }
            )
        else:  # an observation of the delivery method, valued with the device (charted at each check)
            for h in (r.start, r.end):
                res["Observation"].append(
                    obs(
                        r.patient_id,
                        h,
                        "vital-signs",
                        [{"system": LOINC, "code": "107117-4"}],
                        valueCodeableConcept={"coding": [{"system": SNOMED, "code": r.snomed}]},
                    )
                )
    for r in t["pressors"].itertuples():
        res["MedicationAdministration"].append(
            {
                "resourceType": "MedicationAdministration",
                "id": f"ma-{next(n)}",
                "status": "completed",
                "subject": subject(r.patient_id),
                "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "7512"}]},
                "effectivePeriod": {"start": iso(r.patient_id, r.start), "end": iso(r.patient_id, r.end)},
            }
        )
    for r in t["tx"].itertuples():
        res["MedicationAdministration"].append(
            {
                "resourceType": "MedicationAdministration",
                "id": f"ma-{next(n)}",
                "status": "completed",
                "subject": subject(r.patient_id),
                "effectiveDateTime": iso(r.patient_id, r.h),
                "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "612865"}]},
                "dosage": {"dose": {"value": float(r.dose_mg), "unit": "mg", "system": UCUM, "code": "mg"}},
            }
        )
    output = []
    for rt, items in res.items():
        with (directory / f"{rt}.ndjson").open("w") as f:
            for item in items:
                f.write(json.dumps(item) + "\n")
        output.append({"type": rt, "url": f"https://ehr.example.org/bulk/job-7/{rt}.ndjson", "count": len(items)})
    (directory / "manifest.json").write_text(
        json.dumps(
            {
                "transactionTime": "2024-06-01T00:00:00Z",
                "request": "https://ehr.example.org/fhir/$export",
                "requiresAccessToken": True,
                "output": output,
                "error": [],
            }
        )
    )


def test_fhir_bulk_export_as_an_ehr_writes_it(tmp_path, source, centre_map):
    write_fhir(tmp_path / "bulk", source)
    cohort, report = import_fhir(tmp_path / "bulk", codes=CodeMap.load(centre_map))
    check_equal_to_source(cohort, source)
    assert report.counts["patients_imported"] == N and report.counts["rows_refused"] == 0
    assert not report.refused["reason"].str.contains("not a FHIR resource").any()
    # without conditions the devices grade: both ways FHIR records a device are read
    for f in (tmp_path / "bulk").glob("Condition.ndjson"):
        lines = [ln for ln in f.read_text().splitlines() if "D89.83" not in ln]
        f.write_text("\n".join(lines) + "\n")
    cohort, report = import_fhir(tmp_path / "bulk", codes=CodeMap.load(centre_map))
    assert report.crs_source == {"ASTCT grading of vitals": N}
    check_equal_to_source(cohort, source)


def test_a_product_under_an_unknown_system_is_named_where_time_zero_is_missing(tmp_path, source):
    write_fhir(tmp_path / "bulk", source)
    proc = tmp_path / "bulk" / "Procedure.ndjson"
    text = proc.read_text()
    for system in HCPCS_IDS:
        text = text.replace(system, "http://billing.example.org/codes")
    proc.write_text(text)
    _, report = import_fhir(tmp_path / "bulk")
    assert report.counts["patients_without_infusion"] == N
    summary = report.summary()
    assert "no mapped CAR-T product" in summary and "Q2042" in summary and "Q2041" in summary


def test_fhir_manifest_names_a_missing_file_in_one_line(tmp_path, source):
    write_fhir(tmp_path / "bulk", source)
    (tmp_path / "bulk" / "Device.ndjson").unlink()
    with pytest.raises(CohortError, match="manifest.json: lists Device.ndjson, which is not in"):
        import_fhir(tmp_path / "bulk")


# ------------------------------------------------------------------------- code system identifiers

# HL7 Terminology (THO) naming systems: the preferred URI and the OID of each system of the default map
THO = {
    "LOINC": ("http://loinc.org", "2.16.840.1.113883.6.1"),
    "UCUM": ("http://unitsofmeasure.org", "2.16.840.1.113883.6.8"),
    "RxNorm": ("http://www.nlm.nih.gov/research/umls/rxnorm", "2.16.840.1.113883.6.88"),
    "HCPCS": ("http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets", "2.16.840.1.113883.6.285"),
    "CPT4": ("http://www.ama-assn.org/go/cpt", "2.16.840.1.113883.6.12"),
    "ICD10PCS": ("http://www.cms.gov/Medicare/Coding/ICD10", "2.16.840.1.113883.6.4"),
    "ICD10CM": ("http://hl7.org/fhir/sid/icd-10-cm", "2.16.840.1.113883.6.90"),
    "SNOMED": ("http://snomed.info/sct", "2.16.840.1.113883.6.96"),
}


def test_every_system_is_read_under_its_tho_uri_oid_and_spellings():
    codes = CodeMap.load()
    for short, (uri, oid) in THO.items():
        assert codes.uri(short) == uri, short
        https = uri.replace("http://", "https://")
        spellings = [uri, https, uri + "/", https + "/", uri.upper(), f"urn:oid:{oid}", oid, short, short.lower()]
        assert codes.normalise_system_names(spellings) == [short] * len(spellings), short


def test_default_map_knows_standard_codes_of_a_cart_record():
    codes = CodeMap.load()
    looked = codes.lookup(
        pd.Series([SNOMED, SNOMED, SNOMED, ICD10CM, ICD10CM, SNOMED, HCPCS_IDS[1], ICD10CM]),
        pd.Series(["336623009", "426854004", "425826004", "C9102", "C83.38", "109989006", "Q2053", "D89.834"]),
    )  # ICD-10-CM without its dot, as claims files write it
    assert looked["target"].astype(str).tolist() == [
        "nasal_cannula",
        "high_flow_nasal_cannula",
        "bipap",
        "B-ALL",
        "LBCL",
        "MM",
        "brexucabtagene_autoleucel",
        "crs_condition",
    ]
    assert looked["grade"].iloc[-1] == 4
    assert (
        not (codes.entries["system"] == "crsml")
        .loc[codes.entries["section"] == "devices"]
        .drop(codes.entries.index[(codes.entries["section"] == "devices") & (codes.entries["target"] == "blow_by")])
        .any()
    )


def test_fhir_devices_and_conditions_as_other_ehrs_write_them(tmp_path, source, centre_map):
    """A Device missing or without a type, an oxygen-device value written as text, a Condition whose
    known coding comes second and an ICD-10-CM code without its dot: nothing crashes, nothing of the
    rows' text is printed, and the patients concerned are flagged."""
    write_fhir(tmp_path / "bulk", source)
    d = tmp_path / "bulk"
    (d / "Device.ndjson").write_text("")  # every DeviceUseStatement names a Device that is not there
    obs = []
    for line in (d / "Observation.ndjson").read_text().splitlines():
        r = json.loads(line)
        if r["code"]["coding"][0]["code"] == "107117-4":
            r.pop("valueCodeableConcept")
            r["valueString"] = "HFNC per RN Smith, pt MRN1003"  # free text where a code belongs
        obs.append(json.dumps(r))
    (d / "Observation.ndjson").write_text("\n".join(obs) + "\n")
    cond = []
    for line in (d / "Condition.ndjson").read_text().splitlines():
        r = json.loads(line)
        codings = r["code"]["coding"]
        if codings[0]["code"].startswith("D89.83"):
            r["code"]["coding"] = [
                {"system": SNOMED, "code": "1144839005"},
                {"system": ICD10CM, "code": codings[0]["code"].replace(".", "")},
            ]
        else:
            r["code"]["coding"] = codings[::-1]  # SNOMED first: known, the ICD-10-CM behind it too
        cond.append(json.dumps(r))
    (d / "Condition.ndjson").write_text("\n".join(cond) + "\n")
    cohort, report = import_fhir(d, codes=CodeMap.load(centre_map))
    worst = cohort.crs_grades().groupby("patient_id")["grade"].max()
    P = source["patients"].set_index("patient_id")
    assert worst.reindex(P.index).fillna(0).astype(int).to_dict() == P["worst"].to_dict()
    assert (cohort.patients.set_index("patient_id")["diagnosis"] == P["diagnosis"]).all()
    summary = report.summary()
    assert "MRN" not in summary and "Smith" not in summary
    assert "(Device without a type)" in set(report.unmapped["code"])
    # grades from vitals: every patient whose device went unread is flagged
    lines = [ln for ln in (d / "Condition.ndjson").read_text().splitlines() if "1144839005" not in ln]
    (d / "Condition.ndjson").write_text("\n".join(lines) + "\n")
    _, report = import_fhir(d, codes=CodeMap.load(centre_map))
    rows = report.patients.set_index("patient_id")
    assert set(rows.index[rows["grade_warning"] != ""]) == set(source["devices"]["patient_id"])
    out = tmp_path / "out"
    out.mkdir()
    report.save(out)  # the unfilled map loads as it is written (conditions and all)
    CodeMap.load([centre_map, out / "import_unmapped.csv"])


def test_fhir_manifest_urls_without_an_extension_are_ndjson(tmp_path, source):
    write_fhir(tmp_path / "bulk", source)
    d = tmp_path / "bulk"
    manifest = json.loads((d / "manifest.json").read_text())
    for k, item in enumerate(manifest["output"]):
        name = item["url"].rsplit("/", 1)[-1]
        (d / name).rename(d / f"file{k}")
        item["url"] = f"https://ehr.example.org/Binary/file{k}"
    (d / "manifest.json").write_text(json.dumps(manifest))
    _, report = import_fhir(d)
    assert report.counts["patients_imported"] == N
    (d / "manifest.json").write_text("{not json")
    with pytest.raises(CohortError, match="not a FHIR bulk-data manifest"):
        import_fhir(d)


def test_omop_products_are_time_zero_never_unmapped_rows(tmp_path, source, centre_map):
    url = write_cdm(tmp_path / "p.duckdb", source)
    con = duckdb.connect(url.removeprefix("duckdb:///"))
    # the CAR-T product as an NDC-to-RxNorm ETL writes it too: a DRUG_EXPOSURE, RxNorm standard, HCPCS source
    con.execute(
        "INSERT INTO drug_exposure SELECT procedure_occurrence_id + 900000, person_id, 35603567, procedure_date, "
        "procedure_datetime, procedure_date, procedure_datetime, 32817, NULL, 'KYMRIAH', "
        "procedure_source_concept_id, NULL FROM procedure_occurrence"
    )
    con.close()
    _, report = import_omop(url, codes=CodeMap.load(centre_map))
    assert not report.unmapped["code"].isin(["Q2041", "Q2042", "1999006"]).any(), report.unmapped
    assert report.counts["patients_imported"] == N

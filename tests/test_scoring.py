"""crsml score: every patient once with a status, invalid rows named, Dask equals local, SHAP
equals shap's, schema mismatches refused, and the model under MLflow's own scoring server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import free_port, wait_for

from crsml import load_model
from crsml.cohort import read_raw_tables
from crsml.errors import CrsmlError
from crsml.scoring import score_cohort, score_directory, score_tables
from crsml.simulation import simulate

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """A new simulated batch with a few spoiled rows, written as CSV like a centre's export."""
    d = tmp_path_factory.mktemp("batch")
    simulate(400, seed=77, truth_draws=0).save(d, fmt="csv")
    m = pd.read_csv(d / "measurements.csv", dtype={"value": "string"})
    m.loc[3, "unit"] = "furlongs"  # unknown unit
    m.loc[m.index[m["patient_id"] == "SIM000010"][0], "value"] = "see note"  # text in a numeric field
    m = pd.concat(
        [
            m,
            pd.DataFrame(
                {"patient_id": ["GHOST1"], "time_h": [5.0], "analyte": ["crp"], "value": ["3"], "unit": ["mg/L"]}
            ),
        ],
        ignore_index=True,
    )  # orphan
    m.to_csv(d / "measurements.csv", index=False)
    v = pd.read_csv(d / "vitals.csv")
    v.loc[v["patient_id"] == "SIM000020", "temp_c"] = 61.0  # impossible value
    v.to_csv(d / "vitals.csv", index=False)
    spoiled = {m.loc[3, "patient_id"], "SIM000010", "SIM000020", "GHOST1"}
    return d, spoiled


def test_every_patient_comes_out_once_with_status_and_reasons(tiny_model, batch):
    model_dir, *_ = tiny_model
    d, spoiled = batch
    raw = read_raw_tables(d)
    scores, report = score_tables(load_model(model_dir), raw, explain=3, chunk_patients=150)
    assert scores["patient_id"].is_unique
    assert set(scores["patient_id"]) == set(raw["patients"]["patient_id"]) | {"GHOST1"}
    assert list(scores["patient_id"][:400]) == list(raw["patients"]["patient_id"])  # input order kept
    bad = scores.set_index("patient_id").loc[sorted(spoiled)]
    assert (bad["status"] == "invalid").all() and bad["risk"].isna().all()
    reasons = " | ".join(bad["reason"])
    assert "measurements" in reasons and "unit" in reasons and "vitals" in reasons and "temp_c" in reasons
    assert "not in the patients table" in bad.loc["GHOST1", "reason"]
    # every invalid patient's reason is also in the report the command line prints
    assert any(str(p).endswith(bad.loc["GHOST1", "reason"]) for p in report.errors)
    ok = scores[scores["status"] == "ok"]
    assert ok["risk"].between(0, 1).all() and len(ok) > 300
    assert ok["driver_1"].notna().all() and ok["driver_1_shap"].notna().all()
    # drivers are ordered by absolute SHAP
    assert (ok["driver_1_shap"].abs() >= ok["driver_2_shap"].abs()).all()
    ne = scores[scores["status"] == "not_eligible"]
    assert ne["reason"].str.contains("landmark").all() and ne["risk"].isna().all()


def test_a_cohort_without_vital_signs_is_refused_unless_accepted_and_then_every_row_says_so(tiny_model, batch):
    model_dir, *_ = tiny_model
    raw = read_raw_tables(batch[0])
    raw["vitals"] = raw["vitals"].iloc[0:0]
    raw["measurements"] = raw["measurements"][raw["measurements"]["analyte"] != "mcp1"]
    with pytest.raises(CrsmlError, match="table vitals: no rows, where the model uses .* --allow-missing-table vitals"):
        score_tables(load_model(model_dir), raw, explain=0)
    scores, report = score_tables(load_model(model_dir), raw, explain=0, allow_missing_tables=("vitals",))
    said = [str(w) for w in report.warnings if w.row is None]
    assert any("table vitals: no rows" in w and "missing for every patient" in w for w in said), said
    assert any("column analyte: no rows for 1 of the model's" in w and "(mcp1)" in w for w in said), said
    ok = scores[scores["status"] == "ok"]
    assert len(ok) > 300 and ok["warnings"].str.contains("no_vital_signs").all()


def test_cli_score_refuses_a_cohort_without_vital_signs_in_one_line_and_accepts_it_when_told(
    tiny_model, batch, tmp_path
):
    model_dir, *_ = tiny_model
    d = tmp_path / "novitals"
    shutil.copytree(batch[0], d)
    v = pd.read_csv(d / "vitals.csv")
    v.iloc[0:0].to_csv(d / "vitals.csv", index=False)
    env = {"PATH": str(Path(sys.executable).parent), "HOME": str(tmp_path)}
    args = [
        sys.executable,
        "-m",
        "crsml",
        "score",
        "--model",
        str(model_dir),
        "--cohort",
        str(d),
        "--out",
        str(tmp_path / "s.csv"),
    ]
    r = subprocess.run(args, capture_output=True, text=True, env=env)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "table vitals: no rows" in r.stderr and not (tmp_path / "s.csv").exists()
    r = subprocess.run([*args, "--allow-missing-table", "vitals"], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert "warning: table vitals: no rows" in r.stderr and "missing for every patient" in r.stderr, r.stderr
    s = pd.read_csv(tmp_path / "s.csv", keep_default_na=False)
    assert s.loc[s["status"] == "ok", "warnings"].str.contains("no_vital_signs").all()


def test_warnings_reach_the_row_of_the_patient_they_concern(tiny_model, batch):
    """A value impossible in its unit, conflicting values at one time and a landmark the model was
    not evaluated at: each patient's row names what concerns it, and nobody else's (#33)."""
    model_dir, *_ = tiny_model
    raw = read_raw_tables(batch[0])
    m = raw["measurements"]
    m = m[m["unit"] != "furlongs"]
    crp = m.index[(m["patient_id"] == "SIM000030") & (m["analyte"] == "creatinine") & (m["time_h"] < 24)][0]
    il6 = m.index[(m["patient_id"] == "SIM000040") & (m["analyte"] == "il6") & (m["time_h"] < 24)][0]
    m = m.astype({"value": object})
    m.loc[crp, "value"] = "90000"  # impossible in umol/L
    clash = m.loc[[il6]].assign(value=str(float(m.loc[il6, "value"]) * 3 + 1))
    raw["measurements"] = pd.concat([m, clash], ignore_index=True)
    model = load_model(model_dir)
    scores, _ = score_tables(model, raw, explain=0)
    w = scores.set_index("patient_id")["warnings"]
    assert "implausible_value" in w["SIM000030"] and "implausible_value" not in w["SIM000040"]
    assert "conflicting_values" in w["SIM000040"] and "conflicting_values" not in w["SIM000030"]
    others = w.drop(["SIM000030", "SIM000040"])
    assert not others.str.contains("implausible_value|conflicting_values").any()
    at36, _ = score_tables(model, raw, explain=0, landmark_h=36)
    scored = at36[at36["status"] != "invalid"]
    assert scored["warnings"].str.contains("landmark_not_evaluated").all()


def test_chunk_size_does_not_change_scores(tiny_model, batch):
    model_dir, *_ = tiny_model
    raw = read_raw_tables(batch[0])
    a, _ = score_tables(load_model(model_dir), raw, explain=2, chunk_patients=1000)
    b, _ = score_tables(load_model(model_dir), raw, explain=2, chunk_patients=37)
    pd.testing.assert_frame_equal(a, b)


def test_directory_is_read_a_group_at_a_time_with_the_same_scores_and_file_rows(tiny_model, batch, tmp_path):
    """Streaming the directory group by group (CSV here; Parquet below) gives exactly the
    in-memory result, and a reason names the row of the user's file, not of the group."""
    model_dir, *_ = tiny_model
    d, _ = batch
    bundle = load_model(model_dir)
    whole, _ = score_tables(bundle, read_raw_tables(d), explain=2, chunk_patients=1000)
    streamed, report = score_directory(bundle, d, explain=2, chunk_patients=37)
    pd.testing.assert_frame_equal(whole, streamed)
    m = pd.read_csv(d / "measurements.csv", dtype=str)
    row = int(np.flatnonzero(m["unit"] == "furlongs")[0]) + 1
    assert f"table measurements, row {row}, column unit" in " ".join(map(str, report.errors))
    pq_dir = tmp_path / "pq"
    pq_dir.mkdir()
    for name in ("patients", "measurements", "vitals", "treatments", "crs"):
        pd.read_csv(d / f"{name}.csv", dtype=str).to_parquet(pq_dir / f"{name}.parquet", index=False)
    counts, _ = score_directory(bundle, pq_dir, out=tmp_path / "s.parquet", explain=2, chunk_patients=50)
    from_file = pd.read_parquet(tmp_path / "s.parquet")
    assert counts == whole["status"].value_counts().to_dict() and len(from_file) == len(whole)
    pd.testing.assert_series_equal(from_file["risk"], whole["risk"])
    assert list(from_file["patient_id"]) == list(whole["patient_id"])


def test_dask_engine_on_a_local_cluster_gives_identical_scores(tiny_model, batch):
    model_dir, *_ = tiny_model
    raw = read_raw_tables(batch[0])
    local, _ = score_tables(load_model(model_dir), raw, explain=3, chunk_patients=100)
    dask, _ = score_tables(load_model(model_dir), raw, explain=3, chunk_patients=100, engine="dask")
    pd.testing.assert_frame_equal(local, dask)


def test_xgboost_contributions_equal_shap_tree_explainer(tiny_model):
    import shap

    model_dir, _, result, cohort = tiny_model
    bundle = load_model(model_dir)
    X = bundle.features.transform(cohort)[bundle.feature_names].iloc[:50]
    ours = bundle.estimator.contributions(X)
    # the model averages its members' log odds, so its SHAP values are the members' average
    members = bundle.estimator.boosters_
    theirs = np.mean([shap.TreeExplainer(b).shap_values(X.to_numpy(dtype=np.float32)) for b in members], axis=0)
    np.testing.assert_allclose(ours[:, :-1], theirs, atol=1e-4)
    # contributions add up to the booster's log odds
    raw = bundle.estimator.predict_raw(X)
    np.testing.assert_allclose(ours.sum(axis=1), np.log(raw / (1 - raw)), atol=1e-4)


def test_a_centre_the_model_never_saw_is_warned_about_and_still_scored(tiny_model):
    from crsml.features import LandmarkFeatures
    from crsml.scoring import check_compatible

    bundle = load_model(tiny_model[0])
    cohort = simulate(30, seed=1, truth_draws=0)
    bundle.features = LandmarkFeatures(landmark_h=bundle.landmark_h, extra_patient_columns=("site",)).fit(cohort)
    cohort.patients.loc[[0, 1], "site"] = "new_centre"
    found = [p for p in check_compatible(bundle, cohort) if p.column == "site"]
    assert len(found) == 1 and found[0].table == "patients" and found[0].severity == "warning"
    assert "2 patients" in found[0].message and "new_centre" in found[0].message
    with pytest.warns(UserWarning, match="new_centre"):
        scores = score_cohort(bundle, cohort)
    assert len(scores) == 30 and scores["patient_id"].is_unique


def test_schema_mismatch_is_refused_before_any_work(tiny_model, batch):
    model_dir, *_ = tiny_model
    bundle = load_model(model_dir)
    bundle.features.extra_patient_columns = ("ecog",)
    with pytest.raises(CrsmlError, match="no column ecog"):
        score_tables(bundle, read_raw_tables(batch[0]))
    bundle = load_model(model_dir)
    cohort = simulate(20, seed=1, truth_draws=0)
    cohort.measurements = cohort.measurements[cohort.measurements["analyte"].isin(["crp"])]
    with pytest.raises(CrsmlError, match="analytes"):
        score_cohort(bundle, cohort)


def test_cli_score_writes_one_row_per_patient_and_registry_uri_works(tiny_model, batch, tmp_path):
    model_dir, uri, _, _ = tiny_model
    out = tmp_path / "scores.parquet"
    env = {"PATH": str(Path(sys.executable).parent), "HOME": str(tmp_path)}
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "crsml",
            "score",
            "--model",
            "models:/tiny-severe/1",
            "--tracking-uri",
            uri,
            "--cohort",
            str(batch[0]),
            "--out",
            str(out),
            "--explain",
            "5",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert r.returncode == 0, r.stderr
    s = pd.read_parquet(out)
    assert len(s) == 401 and "invalid 4" in r.stderr
    assert {"driver_5", "driver_5_shap", "driver_5_value"} <= set(s.columns)
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "crsml",
            "score",
            "--model",
            str(model_dir),
            "--cohort",
            str(tmp_path / "nowhere"),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    for missing in ("models:/nothere/1", "models:/tiny-severe/99"):
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "crsml",
                "score",
                "--model",
                missing,
                "--tracking-uri",
                uri,
                "--cohort",
                str(batch[0]),
                "--out",
                str(out),
            ],
            capture_output=True,
            text=True,
            env=env,
        )
        assert r.returncode == 2 and r.stderr.startswith(f"error: model {missing} not found in the registry"), r.stderr
        assert r.stderr.count("\n") == 1


def test_mlflow_models_serve_and_predict(tiny_model, tmp_path):
    model_dir, _, result, cohort = tiny_model
    bundle = load_model(model_dir)
    X = bundle.features.transform(cohort)[bundle.feature_names].iloc[:5].reset_index(drop=True)
    expected = bundle.predict_features(X)["risk"].to_numpy()
    payload = {"dataframe_split": json.loads(X.to_json(orient="split", index=False))}
    (tmp_path / "input.json").write_text(json.dumps(payload))
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlflow",
            "models",
            "predict",
            "-m",
            str(model_dir),
            "-i",
            str(tmp_path / "input.json"),
            "-t",
            "json",
            "-o",
            str(tmp_path / "pred.json"),
            "--env-manager",
            "local",
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    got = pd.DataFrame(json.loads((tmp_path / "pred.json").read_text())["predictions"])
    np.testing.assert_allclose(got["risk"], expected, rtol=1e-6)

    port = free_port()
    # the server execs uvicorn from PATH: put this environment's scripts first
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "models",
            "serve",
            "-m",
            str(model_dir),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "--env-manager",
            "local",
            "-w",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/ping")
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
        )
        body = json.loads(urllib.request.urlopen(req, timeout=30).read())
        np.testing.assert_allclose(pd.DataFrame(body["predictions"])["risk"], expected, rtol=1e-6)
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_report_is_self_contained_and_renders(tiny_model, tmp_path):
    from crsml.reporting import screenshot, write_model_card

    model_dir, *_ = tiny_model
    path = write_model_card(load_model(model_dir), tmp_path / "card")
    page = path.read_text()
    assert "Not a medical device" in page and "data:image/png;base64," in page
    for needle in (
        "Intended use",
        "Training data",
        "Evaluation (out of fold)",
        "Limitations",
        "m-EASIX",
        "SHAP",
        "Sample size (Riley",
        "TRIPOD+AI",
        "Prediction instability",
    ):
        assert needle in page
    assert "SIM0" not in page and 'src="http' not in page
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("headless Chromium not installed (apt-get install chromium) to check rendering")
    png = screenshot(path, tmp_path / "card.png")
    assert png.stat().st_size > 50_000

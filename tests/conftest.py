from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REAL_CSV = REPO.parent / "shared" / "data" / "real" / "bal_daily_cohort.csv"


@pytest.fixture(scope="session")
def real_csv() -> Path:
    if not REAL_CSV.exists():
        pytest.skip("shared real cohort not beside the repository")
    return REAL_CSV


@pytest.fixture(scope="session")
def real_cohort(real_csv, tmp_path_factory):
    from crsml.adapters import import_daily

    cohort, report = import_daily(real_csv)
    return cohort


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A quickly trained severe_crs model (2 trials) on 300 simulated patients, its MLflow store
    and the cohort: (model_dir, tracking_uri, result, cohort)."""
    import os

    from crsml.simulation import simulate
    from crsml.training import TrainSettings

    root = tmp_path_factory.mktemp("tiny_model")
    cohort = simulate(300, seed=21, truth_draws=0)
    old = os.getcwd()
    os.chdir(root)
    try:
        (root / "mlruns").mkdir()
        uri = f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"
        s = TrainSettings(
            task="severe_crs",
            landmark_h=48.0,
            trials=2,
            cv_folds=3,
            cv_repeats=1,
            n_boot=50,
            n_jobs=1,
            seed=3,
            ensemble_size=2,
            learner="tuned",  # an ensemble of tuned trials: what the scoring tests check SHAP and files against
        )
        result = train_logged(cohort, s, root / "models" / "tiny", uri, register_name="tiny-severe")
    finally:
        os.chdir(old)
    return root / "models" / "tiny", uri, result, cohort


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    """The command line run in this process: its exit code, stdout and stderr (a refusal needs no
    fresh interpreter)."""
    import sys

    from crsml.cli import main

    old = sys.argv
    sys.argv = ["crsml", *args]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.argv = old
    out = capsys.readouterr()
    return code, out.out, out.err


def train_logged(cohort, settings, model_out, tracking_uri, register_name=None):
    """What ``crsml train`` does, through the public API: fit, log the MLflow run, export."""
    import crsml

    result = crsml.train(cohort, settings=settings, progress=False, log=lambda *a: None)
    result.model_dir = crsml.export_model(result.model, model_out)
    result.run_id = crsml.log_training(
        result, tracking_uri=tracking_uri, register_name=register_name, log=lambda *a: None, model_dir=model_out
    )
    return result


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, seconds: float = 60.0) -> None:
    """Poll ``url`` until it answers (a server started by a test), or fail the test."""
    import time
    import urllib.request

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"{url} did not answer within {seconds:g} s")

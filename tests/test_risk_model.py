from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crsml.models import XGBRiskClassifier


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    n = 400
    X = pd.DataFrame({"grade_current": rng.integers(0, 3, n).astype(float), "il6_max": rng.lognormal(4, 1, n),
                      "noise": rng.normal(size=n)})
    lp = -2 + 1.2 * X["grade_current"] + 0.5 * np.log(X["il6_max"]) - 2 + rng.normal(0, 0.5, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-lp))).astype(int)
    return X, y


def test_optuna_rdb_storage_lets_a_second_run_continue_the_study(data, tmp_path):
    import optuna

    X, y = data
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    XGBRiskClassifier(n_trials=2, seed=1, storage=url, study_name="shared").fit(X, y)
    m = XGBRiskClassifier(n_trials=4, seed=1, storage=url, study_name="shared").fit(X, y)
    study = optuna.load_study(study_name="shared", storage=url)
    assert len(study.trials) == 4 and len(m.trials_) == 4


def test_save_load_round_trip_and_monotone_grade(data, tmp_path):
    X, y = data
    m = XGBRiskClassifier(n_trials=3, seed=2).fit(X, y)
    m.save(tmp_path / "clf")
    again = XGBRiskClassifier.load(tmp_path / "clf")
    np.testing.assert_array_equal(again.predict_proba(X), m.predict_proba(X))
    assert again.get_params() == m.get_params()
    grid = pd.concat([X.iloc[:50].assign(grade_current=g) for g in (0.0, 1.0, 2.0)])
    raw = m.predict_raw(grid).reshape(3, 50)
    assert (np.diff(raw, axis=0) >= -1e-7).all()


def test_missing_feature_is_named(data):
    X, y = data
    m = XGBRiskClassifier(n_trials=2, seed=0).fit(X, y)
    with pytest.raises(ValueError, match="il6_max"):
        m.predict_proba(X.drop(columns="il6_max"))

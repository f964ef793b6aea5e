from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crsml.models import XGBRiskClassifier


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    n = 400
    X = pd.DataFrame(
        {
            "grade_current": rng.integers(0, 3, n).astype(float),
            "il6_max": rng.lognormal(4, 1, n),
            "noise": rng.normal(size=n),
        }
    )
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


def _folds(data):
    import xgboost as xgb

    X, y = data
    Xa = np.asarray(X, dtype=np.float32)
    dtr = xgb.QuantileDMatrix(Xa[:300], label=y[:300], max_bin=64)
    dva = xgb.DMatrix(Xa[300:], label=y[300:])
    return dtr, dva, y[300:].astype(float)


def test_fold_curve_grows_the_booster_xgb_train_grows(data):
    import xgboost as xgb

    from crsml.models._risk import _fold_curve

    dtr, dva, yva = _folds(data)
    params = {
        "objective": "binary:logistic",
        "eta": 0.1,
        "max_depth": 2,
        "seed": 3,
        "subsample": 0.7,
        "nthread": 1,
        "max_bin": 64,
    }
    curve = _fold_curve(params, dtr, dva, yva, 150)
    b = xgb.train(params, dtr, 150)
    expected = [
        np.mean(-(yva * np.log(p) + (1 - yva) * np.log(1 - p)))
        for k in range(25, 151, 25)
        for p in [np.clip(b.predict(dva, iteration_range=(0, k)), 1e-7, 1 - 1e-7)]
    ]
    np.testing.assert_allclose(curve, expected, rtol=1e-12)


def test_fold_curve_stops_after_patience_checkpoints_without_a_lower_loss(data):
    from crsml.models._risk import _fold_curve

    dtr, dva, yva = _folds(data)
    # deep, fast trees on 300 patients overfit within the first checkpoints
    params = {
        "objective": "binary:logistic",
        "eta": 0.5,
        "max_depth": 6,
        "min_child_weight": 0.1,
        "nthread": 1,
        "max_bin": 64,
    }
    full = _fold_curve(params, dtr, dva, yva, 500)
    stopped = _fold_curve(params, dtr, dva, yva, 500, patience=3)
    assert len(full) == 20
    assert len(stopped) == int(np.argmin(full)) + 1 + 3 < 20
    np.testing.assert_array_equal(stopped, full[: len(stopped)])
    seen = []
    _fold_curve(params, dtr, dva, yva, 100, on_checkpoint=lambda c: seen.append(len(c)))
    assert seen == [1, 2, 3, 4]


def test_the_model_averages_the_log_odds_of_the_best_complete_trials(data, tmp_path):
    import xgboost as xgb
    from scipy.special import logit

    X, y = data
    m = XGBRiskClassifier(n_trials=6, seed=4, ensemble_size=3).fit(X, y)
    done = m.trials_[m.trials_["state"] == "COMPLETE"].sort_values(["value", "number"])
    assert [k["trial"] for k in m.members_] == done["number"].head(3).tolist()
    assert m.best_inner_logloss_ == done["value"].iloc[0] and len(m.boosters_) == 3
    Xa = np.asarray(X, dtype=np.float32)
    margins = [b.predict(xgb.DMatrix(Xa), output_margin=True) for b in m.boosters_]
    np.testing.assert_allclose(logit(m.predict_raw(X)), np.mean(margins, axis=0), atol=1e-5)
    np.testing.assert_allclose(m.contributions(X).sum(axis=1), np.mean(margins, axis=0), atol=1e-4)
    m.save(tmp_path / "ens")
    again = XGBRiskClassifier.load(tmp_path / "ens")
    np.testing.assert_array_equal(again.predict_proba(X), m.predict_proba(X))
    one = XGBRiskClassifier(n_trials=6, seed=4, ensemble_size=1).fit(X, y)
    np.testing.assert_allclose(one.predict_raw(X), m.boosters_[0].inplace_predict(Xa), rtol=1e-5)
    with pytest.raises(ValueError, match="ensemble_size"):
        XGBRiskClassifier(n_trials=2, ensemble_size=0).fit(X, y)

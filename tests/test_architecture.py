"""The shape of the package: layers (import-linter), public names, scikit-learn's own estimator
checks, and experiments that use only the public API."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

import crsml
from crsml.features import LandmarkFeatures
from crsml.models import BenefitModel, XGBRiskClassifier

REPO = Path(__file__).resolve().parents[1]

#: LandmarkFeatures fits a Cohort (tables), and BenefitModel an emulated trial (X with treatment,
#: days and severe outcome), not an (X, y) array: the checks that feed them arrays cannot apply.
#: Those that do (construction, parameters, cloning, tags, repr) are run.
NOT_ARRAY_INPUT = "takes a Cohort of tables (LandmarkFeatures) or an emulated trial (BenefitModel), not an (X, y) array"
_DATA_CHECKS = (
    "check_complex_data",
    "check_dict_unchanged",
    "check_dont_overwrite_parameters",
    "check_dtype_object",
    "check_estimator_sparse_array",
    "check_estimator_sparse_matrix",
    "check_estimator_sparse_tag",
    "check_estimators_dtypes",
    "check_estimators_empty_data_messages",
    "check_estimators_fit_returns_self",
    "check_estimators_nan_inf",
    "check_estimators_overwrite_params",
    "check_estimators_pickle",
    "check_f_contiguous_array_estimator",
    "check_fit1d",
    "check_fit2d_1feature",
    "check_fit2d_1sample",
    "check_fit2d_predict1d",
    "check_fit_check_is_fitted",
    "check_fit_idempotent",
    "check_fit_score_takes_y",
    "check_methods_sample_order_invariance",
    "check_methods_subset_invariance",
    "check_n_features_in",
    "check_n_features_in_after_fitting",
    "check_pipeline_consistency",
    "check_positive_only_tag_during_fit",
    "check_readonly_memmap_input",
    "check_transformer_data_not_an_array",
    "check_transformer_general",
    "check_transformer_preserve_dtypes",
    "check_transformers_unfitted",
)


def _expected_failures(estimator) -> dict[str, str]:
    if isinstance(estimator, XGBRiskClassifier):
        return {}  # every check passes
    expected = dict.fromkeys(_DATA_CHECKS, NOT_ARRAY_INPUT)
    if isinstance(estimator, BenefitModel):  # its predict needs the exported boosters of a fitted trial
        expected["check_estimators_unfitted"] = NOT_ARRAY_INPUT
    return expected


@parametrize_with_checks(
    [XGBRiskClassifier(n_trials=1, inner_folds=2, n_threads=1), LandmarkFeatures(), BenefitModel(trials=1)],
    expected_failed_checks=_expected_failures,
)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def test_import_linter_contracts_hold():
    exe = Path(sys.executable).with_name("lint-imports")
    r = subprocess.run([str(exe)], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stdout[-3000:]
    assert "0 broken" in r.stdout


def test_every_public_name_exists_and_implementation_modules_are_private():
    import importlib
    import pkgutil

    for name in crsml.__all__:
        assert hasattr(crsml, name), name
    for m in pkgutil.walk_packages(crsml.__path__, "crsml."):
        leaf = m.name.rsplit(".", 1)[1]
        if m.ispkg:
            pkg = importlib.import_module(m.name)
            assert pkg.__all__ and all(hasattr(pkg, n) for n in pkg.__all__), m.name
        else:
            # crsml.models.bundle: the old exported models' stored MLflow code imports it
            assert leaf.startswith("_") or m.name in ("crsml.errors", "crsml.models.bundle"), (
                f"{m.name} should be private (_name.py)"
            )


def test_experiments_and_the_cli_use_only_public_names():
    private = re.compile(r"\bcrsml(?:\.\w+)*\._[a-z]\w*")
    offenders = []
    for path in [*REPO.glob("experiments/**/*.py"), *REPO.glob("src/crsml/cli/*.py")]:
        for i, line in enumerate(path.read_text().splitlines(), 1):
            for hit in private.findall(line):
                if path.parent.name == "cli" and hit.startswith("crsml.cli._"):
                    continue  # the command line's own modules
                if hit == "crsml._version":
                    continue
                offenders.append(f"{path.relative_to(REPO)}:{i}: {hit}")
    assert not offenders, "\n".join(offenders)


@pytest.mark.parametrize("command", [["--version"], ["--help"]])
def test_console_script_answers(command):
    r = subprocess.run([sys.executable, "-m", "crsml", *command], capture_output=True, text=True)
    assert r.returncode == 0
    if command == ["--version"]:
        assert r.stdout.strip() == f"crsml {crsml.__version__}"


def test_parameters_are_checked_as_scikit_learn_declares_them():
    """Estimators declare ``_parameter_constraints`` (scikit-learn's own check runs on the one that
    takes (X, y)); the settings objects use the same declarations, with an error naming the option."""
    from sklearn.utils._param_validation import InvalidParameterError
    from sklearn.utils.estimator_checks import check_param_validation

    from crsml.errors import CrsmlError
    from crsml.training import BenefitSettings, TrainSettings

    check_param_validation("XGBRiskClassifier", XGBRiskClassifier(n_trials=1, inner_folds=2, n_threads=1))
    for est in (LandmarkFeatures(), BenefitModel()):
        assert set(est._parameter_constraints) == set(est.get_params())
    with pytest.raises(InvalidParameterError, match="treatments_before_landmark"):
        LandmarkFeatures(treatments_before_landmark="sometimes").fit(crsml.simulate(20, seed=1, truth_draws=0))
    with pytest.raises(CrsmlError, match=r"^--cv-folds must be an int in the range \[2, inf\) or None, not 1$"):
        TrainSettings(cv_folds=1)
    with pytest.raises(CrsmlError, match=r"^--trim must be a float in the range \(0.0, 0.5\), not 0.7$"):
        BenefitSettings(trim=0.7)

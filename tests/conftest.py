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
    from crsml.adapters.daily import import_daily

    cohort, report = import_daily(real_csv)
    return cohort

"""The feature dictionary (name, meaning, unit, source), generated from the code that builds
the features so the documentation cannot drift from them."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from crsml.cohort import CANONICAL_UNITS
from crsml.features._builder import LANDMARK_TIME_FEATURE
from crsml.features._clinical import CLINICAL_FEATURES, category_of
from crsml.features._course import COURSE_FEATURES
from crsml.features._kinetics import KINETIC_STATS
from crsml.features._scores import SCORE_FEATURES


def describe(name: str) -> dict[str, str]:
    """Meaning, unit and source of one feature column."""
    if name == LANDMARK_TIME_FEATURE:
        return {"name": name, "meaning": "hours since infusion at the landmark", "unit": "h", "source": "landmark"}
    if name in SCORE_FEATURES:
        meaning, unit, source = SCORE_FEATURES[name]
        return {"name": name, "meaning": meaning, "unit": unit, "source": source}
    if name in COURSE_FEATURES:
        meaning, unit = COURSE_FEATURES[name]
        return {"name": name, "meaning": meaning, "unit": unit, "source": "vitals, crs, treatments"}
    if name in CLINICAL_FEATURES:
        meaning, unit = CLINICAL_FEATURES[name]
        return {"name": name, "meaning": meaning, "unit": unit, "source": "patients"}
    if (category := category_of(name)) is not None:
        col, value = category
        return {
            "name": name,
            "meaning": f"patients column {col!r} is {value!r}",
            "unit": "indicator",
            "source": "patients",
        }
    if name.startswith("extra_"):
        return {
            "name": name,
            "meaning": f"patients column {name[6:]!r} named by the user",
            "unit": "",
            "source": "patients",
        }
    for stat, (meaning, unit) in KINETIC_STATS.items():
        if name.endswith("_" + stat):
            analyte = name[: -len(stat) - 1]
            if analyte in CANONICAL_UNITS:
                u = CANONICAL_UNITS[analyte] if unit == "analyte unit" else unit
                return {"name": name, "meaning": f"{analyte}: {meaning}", "unit": u, "source": "measurements"}
    raise KeyError(f"no dictionary entry for feature {name!r}")


def feature_dictionary(names: Iterable[str]) -> pd.DataFrame:
    """Dictionary rows for the given feature names, in their order."""
    return pd.DataFrame([describe(n) for n in names])


def markdown(names: Iterable[str]) -> str:
    """The dictionary as a Markdown table."""
    d = feature_dictionary(names)
    lines = ["| name | meaning | unit | source |", "|---|---|---|---|"]
    lines += [f"| `{r.name}` | {r.meaning} | {r.unit} | {r.source} |" for r in d.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def readable_names(names: list[str]) -> np.ndarray:
    """Feature name -> its meaning from the dictionary (e.g. 'il6: maximum up to the landmark'),
    the form in which drivers are shown to people."""
    d = feature_dictionary(names)
    return d["meaning"].where(d["meaning"].astype(bool), d["name"]).to_numpy(dtype=object)

"""Published severe-CRS predictors, used as features and as stand-alone baselines.

- EASIX = LDH (U/L) x creatinine (mg/dL) / platelets (10^9/L) and m-EASIX, which replaces
  creatinine with CRP (mg/dL); both on the log2 scale (Pennisi et al., Blood Adv 2021), before
  infusion (last value at time_h <= 0) and at the landmark (last value up to L).
- Hay rule: fever >= 38.9 C and MCP-1 >= 1343.5 pg/mL within 36 h of infusion (Hay et al.,
  Blood 2017); at a landmark before 36 h only the data up to the landmark are used.
- Teachey et al. (Cancer Discov 2016) signature inputs: log10 peak IFN-gamma, sgp130 and IL-1RA
  up to the landmark (the published coefficients are not reproduced; these are the inputs).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crsml.cohort import conversion_factor

SCORE_ANALYTES = ("ldh", "creatinine", "platelets", "crp", "mcp1", "ifng", "sgp130", "il1ra")
HAY_FEVER_C = 38.9
HAY_MCP1_PG_ML = 1343.5
HAY_WINDOW_H = 36.0
#: the published scores take creatinine and CRP in mg/dL; the cohort holds umol/L and mg/L
CREATININE_MG_DL = conversion_factor("creatinine", "mg/dL")
CRP_MG_DL = conversion_factor("crp", "mg/dL")

SCORE_FEATURES: dict[str, tuple[str, str, str]] = {
    "easix_pre": ("log2 EASIX before infusion", "log2", "Pennisi et al., Blood Adv 2021"),
    "easix_lm": ("log2 EASIX at the landmark (last values)", "log2", "Pennisi et al., Blood Adv 2021"),
    "measix_pre": (
        "log2 m-EASIX (CRP instead of creatinine) before infusion",
        "log2",
        "Pennisi et al., Blood Adv 2021",
    ),
    "measix_lm": ("log2 m-EASIX at the landmark (last values)", "log2", "Pennisi et al., Blood Adv 2021"),
    "hay_rule": (
        "1 when fever >= 38.9 C and MCP-1 >= 1343.5 pg/mL within 36 h (missing without MCP-1 or vitals)",
        "indicator",
        "Hay et al., Blood 2017",
    ),
    "teachey_ifng_log10max": (
        "log10 peak IFN-gamma up to the landmark",
        "log10 pg/mL",
        "Teachey et al., Cancer Discov 2016",
    ),
    "teachey_sgp130_log10max": (
        "log10 peak sgp130 up to the landmark",
        "log10 pg/mL",
        "Teachey et al., Cancer Discov 2016",
    ),
    "teachey_il1ra_log10max": (
        "log10 peak IL-1RA up to the landmark",
        "log10 pg/mL",
        "Teachey et al., Cancer Discov 2016",
    ),
}


def easix(ldh: np.ndarray, creatinine_umol_l: np.ndarray, platelets: np.ndarray) -> np.ndarray:
    """log2 EASIX from canonical units (creatinine converted to mg/dL as published)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        raw = ldh * (creatinine_umol_l / CREATININE_MG_DL) / platelets
        return np.log2(np.where(raw > 0, raw, np.nan))


def m_easix(ldh: np.ndarray, crp_mg_l: np.ndarray, platelets: np.ndarray) -> np.ndarray:
    """log2 m-EASIX from canonical units (CRP converted to mg/dL as published)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        raw = ldh * (crp_mg_l / CRP_MG_DL) / platelets
        return np.log2(np.where(raw > 0, raw, np.nan))


def score_features(kin: pd.DataFrame, hay_temp_max: np.ndarray, hay_mcp1_max: np.ndarray) -> pd.DataFrame:
    """Scores from a kinetic frame holding the SCORE_ANALYTES columns and the Hay-window maxima."""

    def col(name: str) -> np.ndarray:
        return kin[name].to_numpy(dtype=float) if name in kin else np.full(len(kin), np.nan)

    with np.errstate(divide="ignore", invalid="ignore"):
        hay = np.where(
            np.isnan(hay_mcp1_max) | np.isnan(hay_temp_max),
            np.nan,
            ((hay_temp_max >= HAY_FEVER_C) & (hay_mcp1_max >= HAY_MCP1_PG_ML)).astype(float),
        )
        out = {
            "easix_pre": easix(col("ldh_baseline"), col("creatinine_baseline"), col("platelets_baseline")),
            "easix_lm": easix(col("ldh_last"), col("creatinine_last"), col("platelets_last")),
            "measix_pre": m_easix(col("ldh_baseline"), col("crp_baseline"), col("platelets_baseline")),
            "measix_lm": m_easix(col("ldh_last"), col("crp_last"), col("platelets_last")),
            "hay_rule": hay,
            "teachey_ifng_log10max": np.log10(col("ifng_max") + 1.0),
            "teachey_sgp130_log10max": np.log10(col("sgp130_max") + 1.0),
            "teachey_il1ra_log10max": np.log10(col("il1ra_max") + 1.0),
        }
    return pd.DataFrame(out, index=kin.index)

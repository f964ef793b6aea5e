"""Landmark eligibility (DESIGN.md): at ``L`` hours a patient is eligible when alive and
without grade >= 3 CRS so far. Tasks may add rules of their own on top."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from crsml.cohort._codes import has_rows
from crsml.errors import CrsmlError


def landmarks(landmark_h: float | Sequence[float]) -> list[float]:
    """One landmark or several, as a list of floats."""
    if np.ndim(landmark_h) == 0:
        return [float(landmark_h)]  # type: ignore[arg-type]
    return [float(x) for x in landmark_h]  # type: ignore[union-attr]


def eligibility_of(
    patients: pd.DataFrame, vitals: pd.DataFrame, crs: pd.DataFrame, landmark_h: float | Sequence[float]
) -> pd.DataFrame:
    """Every patient at every landmark: ``eligible`` and, when not, the ``reason``.

    Eligible (DESIGN.md): alive and no grade >= 3 CRS by the landmark, judged from the graded
    ``crs`` observations and a ``died`` column of ``vitals`` when there is one.
    """
    ids = patients["patient_id"].to_numpy()
    frames = []
    for L in landmarks(landmark_h):
        seen = crs[crs["time_h"] <= L]
        died = has_rows(seen.loc[seen["grade"] >= 5, "patient_id"], ids)
        if "died" in vitals:
            v = vitals
            died |= has_rows(v.loc[(v["time_h"] <= L) & v["died"].fillna(False).astype(bool), "patient_id"], ids)
        severe = has_rows(seen.loc[seen["grade"] >= 3, "patient_id"], ids)
        reason = np.where(
            died,
            f"died by the landmark ({L:g} h)",
            np.where(severe, f"severe CRS (grade >= 3) by the landmark ({L:g} h)", ""),
        )
        frames.append(pd.DataFrame({"patient_id": ids, "landmark_h": L, "eligible": reason == "", "reason": reason}))
    return pd.concat(frames, ignore_index=True)


#: the latest landmark or horizon, hours (the end of the plausible time window of the tables)
MAX_HOURS = 365 * 24.0


def check_landmark(landmark_h: float) -> None:
    """Refuse a landmark at or before infusion, not a number, or beyond the tables' time window."""
    if not (np.isfinite(landmark_h) and 0 < landmark_h <= MAX_HOURS):
        raise CrsmlError(
            f"--landmark-h must be a number of hours after infusion above 0 and at most {MAX_HOURS:g} "
            f"(365 days), not {landmark_h:g}"
        )


def check_window(landmark_h: float, horizon_h: float) -> None:
    """Refuse a landmark at or before infusion, or an empty outcome window, in one line."""
    check_landmark(landmark_h)
    if not (np.isfinite(horizon_h) and 0 < horizon_h <= MAX_HOURS):
        raise CrsmlError(f"--horizon-h must be a number of hours above 0 and at most {MAX_HOURS:g}, not {horizon_h:g}")


#: most landmarks a grid may hold (a supermodel stacks one row per patient and landmark)
MAX_GRID = 200


def landmark_grid(text: str) -> tuple[float, ...]:
    """A landmark grid from the command line: ``START:STOP:STEP`` (both ends included, as
    ``12:120:12`` for 12, 24, ..., 120 h) or a comma-separated list (``24,48,72``); refused in one
    line when it is neither, or holds fewer than two landmarks."""
    text = text.strip()
    try:
        if ":" in text:
            start, stop, step = (float(x) for x in text.split(":"))
            if not (step > 0 and stop > start):
                raise ValueError(text)
            n = int(np.floor((stop - start) / step + 1e-9)) + 1
            if n > MAX_GRID:
                raise CrsmlError(f"--landmarks {text}: {n} landmarks; a grid holds at most {MAX_GRID}")
            grid = tuple(float(start + i * step) for i in range(n))
        else:
            grid = tuple(sorted({float(x) for x in text.split(",") if x.strip()}))
    except ValueError:
        raise CrsmlError(
            f"--landmarks {text}: write START:STOP:STEP in hours (12:120:12) or a list (24,48,72)"
        ) from None
    if len(grid) < 2:
        raise CrsmlError(f"--landmarks {text}: a landmark supermodel needs at least two landmarks")
    for L in grid:
        check_landmark(L)
    return grid

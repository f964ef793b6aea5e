"""Score a batch: validate, split by patient into chunks, build features, predict, explain.

Every input patient comes out exactly once per task, with ``status``:
``ok`` (scored), ``not_eligible`` (dead or already severe at the landmark, with the reason) or
``invalid`` (a bad row, with the table, row, column and what is wrong).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from crsml.cohort import (
    Cohort,
    ValidationProblem,
    ValidationReport,
    atomic_file,
    has_rows,
    index_in,
    require_columns,
    validate_tables,
)
from crsml.errors import CrsmlError
from crsml.explanation import readable_names, top_drivers
from crsml.features import VITAL_SIGN_FEATURES
from crsml.models import Model
from crsml.scoring._source import TABLES, PatientChunks, RawChunk, patient_ids

STATUSES = ("ok", "not_eligible", "invalid")
UNUSABLE = "missing for every patient"


def check_compatible(model: Model, cohort: Cohort) -> list[ValidationProblem]:
    """Refuse, before any work, a cohort that cannot yield the model's features; return
    warnings for whole tables or analytes the model uses that this cohort lacks (their
    features are missing for every patient, so the scores lean on the rest)."""
    fb = model.features
    require_columns(cohort.patients, "patients", fb.extra_patient_columns, "the model uses it as a feature")
    model.check_features()
    present = set(cohort.measurements["analyte"].dropna().unique())
    absent = [a for a in fb.analytes_ if a not in present]
    if len(cohort.patients) and fb.analytes_ and cohort.measurements.empty:
        raise CrsmlError(
            f"table measurements: no rows, where the model uses {len(fb.analytes_)} analytes "
            f"({', '.join(fb.analytes_[:8])}{' ...' if len(fb.analytes_) > 8 else ''}); give the cohort "
            "its laboratory results"
        )
    if len(cohort.patients) and len(absent) > len(fb.analytes_) / 2:
        raise CrsmlError(
            f"the cohort has none of {len(absent)} of the model's {len(fb.analytes_)} analytes "
            f"({', '.join(absent[:8])}{' ...' if len(absent) > 8 else ''}); this model was trained "
            f"on other measurements: train one on data like this cohort"
        )
    found = []
    if len(cohort.patients) and absent:
        found.append(
            ValidationProblem(
                "measurements",
                None,
                "analyte",
                f"no rows for {len(absent)} of the model's {len(fb.analytes_)} analytes "
                f"({', '.join(absent)}): their features are {UNUSABLE}",
                "warning",
            )
        )
    for col, values in fb.extra_categories_.items():
        seen = cohort.patients[col].dropna().astype("string")
        unseen = seen[~seen.isin(values)]
        new = sorted(set(unseen))
        if new:
            found.append(
                ValidationProblem(
                    "patients",
                    None,
                    col,
                    f"{len(unseen)} patients have values the model never saw in "
                    f"training ({', '.join(new[:5])}{' ...' if len(new) > 5 else ''}; it knows "
                    f"{', '.join(values)}): their {col} indicators are treated as not recorded",
                    "warning",
                )
            )
    vital = [f for f in model.feature_names if f in VITAL_SIGN_FEATURES]
    if len(cohort.patients) and vital and cohort.vitals.empty:
        found.append(
            ValidationProblem(
                "vitals",
                None,
                None,
                "no rows: the model's temperature, blood-pressure and oxygen "
                f"features are {UNUSABLE} (accepted with --allow-missing-table vitals; each patient's "
                "row says no_vital_signs)",
                "warning",
            )
        )
    return found


def check_tables(model: Model, empty: set[str], allow_missing: Sequence[str] = ()) -> None:
    """Refuse, before any work, a cohort whose whole table of vital signs is empty or absent when
    the model uses features built from it, unless ``allow_missing`` names the table: a clinician
    reading a score must not take a risk computed without the vital signs for one computed with
    them. Accepted, every patient's row then carries the warning ``no_vital_signs``.
    (An empty ``measurements`` table is refused by :func:`check_compatible`; an empty
    ``treatments`` table is what a cohort no one was treated in looks like.)"""
    unknown = sorted(set(allow_missing) - set(TABLES))
    if unknown:
        raise CrsmlError(f"--allow-missing-table {unknown[0]}: not a table crsml reads ({', '.join(TABLES)})")
    vital = [f for f in model.feature_names if f in VITAL_SIGN_FEATURES]
    if vital and "vitals" in empty and "vitals" not in allow_missing:
        raise CrsmlError(
            f"table vitals: no rows, where the model uses {len(vital)} vital-sign features "
            f"({', '.join(vital[:4])}{' ...' if len(vital) > 4 else ''}); give the cohort its vital signs, "
            "or pass --allow-missing-table vitals to score without them (each patient's row then "
            "says no_vital_signs)"
        )


def patient_warnings(model: Model, cohort: Cohort, patient_ids: pd.Series, landmark_h: float) -> np.ndarray:
    """The ``warnings`` column: for each patient, the kinds of warning that concern that patient's
    score, ``"; "``-separated (``""`` when none).

    Validation's kinds (``implausible_value``, ``suspected_fill_value``, ``conflicting_values``)
    come first; then ``no_vital_signs`` (none recorded by the landmark, where the model uses
    them), ``no_laboratory_values`` (none of the model's analytes by the landmark),
    ``unseen_<column>`` (a value of a patients column the model never saw in training) and
    ``landmark_not_evaluated`` (scored at a landmark other than the model's)."""
    pids = pd.Series(np.asarray(patient_ids, dtype=object))
    L = float(landmark_h)
    fb = model.features
    flags: dict[str, np.ndarray] = {}
    if any(f in VITAL_SIGN_FEATURES for f in model.feature_names):
        v = cohort.vitals
        # has_rows (Arrow's index_in): Series.isin of an Arrow string column walked its million rows in
        # Python (55 of 125 s of crsml score on 20,000 patients; issue #36)
        flags["no_vital_signs"] = ~has_rows(v.loc[v["time_h"].to_numpy(dtype=float) <= L, "patient_id"], pids)
    if fb.analytes_:
        m = cohort.measurements
        used = (m["time_h"].to_numpy(dtype=float) <= L) & m["analyte"].isin(fb.analytes_).to_numpy(dtype=bool)
        flags["no_laboratory_values"] = ~has_rows(m.loc[used, "patient_id"], pids)
    if fb.extra_categories_:
        by_id = cohort.patients.drop_duplicates("patient_id").set_index("patient_id")
        for col, values in fb.extra_categories_.items():
            seen = by_id[col].reindex(pids.to_numpy()).astype("string")
            flags[f"unseen_{col}"] = (seen.notna() & ~seen.isin(values)).to_numpy(dtype=bool)
    grid = model.landmarks
    if (not (min(grid) <= L <= max(grid))) if grid else L != float(model.landmark_h):
        flags["landmark_not_evaluated"] = np.ones(len(pids), dtype=bool)
    base = pd.Series(cohort.warnings_of(pids), dtype=object)
    if not flags:
        return base.to_numpy(dtype=object)
    names = list(flags)
    mask = np.zeros(len(pids), dtype=np.int64)
    for i, name in enumerate(names):
        mask |= flags[name].astype(np.int64) << i
    text = {int(k): "; ".join(n for i, n in enumerate(names) if int(k) >> i & 1) for k in np.unique(mask)}
    extra = pd.Series(mask).map(text)
    both = (base != "") & (extra != "")
    return np.where(both, base + "; " + extra, np.where(base != "", base, extra)).astype(object)


def chunks(cohort: Cohort, chunk_patients: int) -> Iterator[Cohort]:
    """The cohort split into consecutive groups of at most ``chunk_patients`` patients (one
    sort per table, then slices: no pass over the whole table per chunk)."""
    pids = pd.Index(cohort.patients["patient_id"].to_numpy())
    n_chunks = max(1, -(-len(pids) // chunk_patients))
    parts: dict[str, list[pd.DataFrame]] = {}
    for name in TABLES:
        t = getattr(cohort, name)
        chunk_of = index_in(t["patient_id"], pids) // chunk_patients
        order = np.argsort(chunk_of, kind="stable")
        bounds = np.searchsorted(chunk_of[order], np.arange(n_chunks + 1))
        parts[name] = [t.iloc[order[bounds[i] : bounds[i + 1]]] for i in range(n_chunks)]
    for i in range(n_chunks):
        yield Cohort(
            patients=cohort.patients.iloc[i * chunk_patients : (i + 1) * chunk_patients],
            **{name: parts[name][i] for name in TABLES},
            meta=cohort.meta,
            warnings=cohort.warnings,
        )


def last_record_h(cohort: Cohort, patient_ids: pd.Series) -> np.ndarray:
    """Each patient's last recorded time (any table's ``time_h``; NaN for a patient with none)."""
    pids = pd.Index(np.asarray(patient_ids, dtype=object))
    last = np.full(len(pids), -np.inf)
    for name in ("measurements", "vitals", "crs", "treatments"):
        t = getattr(cohort, name)
        if t.empty:
            continue
        codes = index_in(t["patient_id"], pids)
        times = t["time_h"].to_numpy(dtype=float)
        use = (codes >= 0) & np.isfinite(times)
        np.maximum.at(last, codes[use], times[use])
    return np.where(np.isfinite(last), last, np.nan)


def _trajectory_rows(model: Model, cohort: Cohort, elig: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Which (patient, grid time) rows a trajectory keeps, those at or before the patient's last
    record, and for a patient with none of them the first grid time kept with the reason."""
    at = elig["landmark_h"].to_numpy(dtype=float)
    codes, ids = pd.factorize(elig["patient_id"])
    last = last_record_h(cohort, pd.Series(ids))[codes]
    keep = at <= np.nan_to_num(last, nan=-np.inf)
    has_any = np.bincount(codes, weights=keep, minlength=codes.max() + 1 if len(codes) else 0) > 0
    first = (at == min(model.landmarks)) & ~has_any[codes]
    reason = np.where(
        first,
        np.where(
            np.isnan(last),
            "no record of this patient",
            f"no record at or after the first landmark of the grid ({min(model.landmarks):g} h)",
        ),
        "",
    )
    return keep | first, reason.astype(object)


def score_chunk(
    model: Model, cohort: Cohort, landmark_h: float, explain: int, trajectory: bool = False
) -> pd.DataFrame:
    """Rows for every patient of one chunk (``ok`` or ``not_eligible``); with ``trajectory``
    (a landmark supermodel), one row per patient and grid time up to the patient's last record."""
    # a supermodel's own builder is at its grid; Model.at builds at one landmark
    fb = model.features if trajectory else model.at(landmark_h).features
    times = list(model.landmarks) if trajectory else [float(landmark_h)]
    X, elig = fb.build(cohort)
    elig = model.task.eligibility(cohort, times if trajectory else landmark_h, base=elig)
    at = elig["landmark_h"].to_numpy(dtype=float)
    warned = np.empty(len(elig), dtype=object)
    for L in times:
        sel = at == L
        warned[sel] = patient_warnings(model, cohort, elig["patient_id"][sel], L)
    ok = elig["eligible"].to_numpy(dtype=bool)
    reason = elig["reason"].to_numpy(dtype=object)
    if trajectory:
        rows, none_scorable = _trajectory_rows(model, cohort, elig)
        ok = ok & (none_scorable == "")
        reason = np.where(none_scorable != "", none_scorable, reason)
        elig, X, at, warned, ok, reason = elig[rows], X[rows], at[rows], warned[rows], ok[rows], reason[rows]
    out = pd.DataFrame(
        {
            "patient_id": elig["patient_id"].to_numpy(),
            "task": model.task.name,
            "landmark_h": at,
            "status": np.where(ok, "ok", "not_eligible"),
            "reason": reason,
            "warnings": warned,
            **{c: np.nan for c in model.score_columns},
        }
    )
    pos = np.flatnonzero(ok)
    Xe = X.iloc[pos][model.feature_names]
    explained = np.zeros(len(out), dtype=bool)
    contribs = None
    if len(Xe):
        pred, contribs, inside = model.estimator.score_rows(Xe, contributions=explain > 0)
        for c in model.score_columns:
            values = pred[c].to_numpy()
            if values.dtype.kind not in "fiub":  # a text column (a note): not a float column
                out[c] = out[c].astype(object)
            out.loc[pos, c] = values
        if "reason" in pred:  # outside the estimator's domain (a benefit model's overlap)
            outside = pred["reason"].to_numpy() != ""
            out.loc[pos[outside], "status"] = "not_eligible"
            out.loc[pos[outside], "reason"] = pred["reason"].to_numpy()[outside]
        explained[pos[inside]] = True
    if explain > 0:
        labels = readable_names(model.feature_names)
        k = min(explain, len(labels))
        drivers = pd.DataFrame(
            index=out.index,
            columns=top_drivers(np.zeros((0, len(labels) + 1)), np.zeros((0, len(labels))), labels, k).columns,
        )
        if contribs is not None:
            values = Xe.to_numpy(dtype=np.float32)[explained[pos]]
            drivers.loc[explained] = top_drivers(contribs, values, labels, k).to_numpy()
        for c in drivers.columns:
            drivers[c] = drivers[c].astype(float) if not c[-1].isdigit() else drivers[c].astype("string")
        out = pd.concat([out, drivers], axis=1)
    if trajectory:  # each patient's times together, in order
        order = np.argsort(pd.factorize(out["patient_id"])[0], kind="stable")
        out = out.iloc[order].reset_index(drop=True)
    return out


def _invalid_rows(model: Model, invalid: dict[str, str], landmark_h: float, trajectory: bool = False) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "patient_id": list(invalid),
            "task": model.task.name,
            "landmark_h": np.nan if trajectory else float(landmark_h),
            "status": "invalid",
            "reason": list(invalid.values()),
            "warnings": "",
            "risk": np.nan,
        }
    )


def score_cohort(
    model: Model,
    cohort: Cohort,
    landmark_h: float | None = None,
    explain: int = 5,
    chunk_patients: int = 20_000,
    engine: str = "local",
    scheduler: str | None = None,
    progress: bool = False,
    allow_missing_tables: Sequence[str] = (),
    trajectory: bool = False,
) -> pd.DataFrame:
    """Score a validated cohort (its ``invalid`` patients come out as ``invalid``)."""
    _check_settings(engine, chunk_patients)
    check_tables(model, {n for n in TABLES if getattr(cohort, n).empty}, allow_missing_tables)
    L = _scoring_time(model, landmark_h, trajectory)
    for w in check_compatible(model, cohort):
        warnings.warn(str(w).removeprefix("warning: "), UserWarning, stacklevel=2)
    parts = chunks(cohort, chunk_patients)
    if engine == "dask":
        from crsml.scoring._dask import dask_map

        results = dask_map(score_chunk, model, parts, L, explain, trajectory, scheduler=scheduler)
    else:
        results = (score_chunk(model, part, L, explain, trajectory) for part in parts)
    n_chunks = max(1, -(-len(cohort.patients) // chunk_patients))
    frames = list(_advancing(results, n_chunks, f"scoring {len(cohort.patients):,} patients ({engine})", progress))
    frames.append(_invalid_rows(model, cohort.invalid, L, trajectory))
    return pd.concat([f for f in frames if len(f)], ignore_index=True) if any(len(f) for f in frames) else frames[-1]


def score(
    model: Model,
    cohort: Cohort,
    landmark_h: float | None = None,
    explain: int = 5,
    progress: bool = False,
    **kwargs: object,
) -> pd.DataFrame:
    """Score every patient of ``cohort`` with ``model``: one row per patient.

    Parameters
    ----------
    model : a :class:`~crsml.models.Model` (``crsml.load_model("models/NAME")``).
    cohort : the new patients (``crsml.read_cohort(dir, on_error="drop")`` keeps patients with
        a bad row as ``invalid`` instead of refusing the cohort).
    landmark_h : landmark to score at (default: the model's); for a landmark supermodel any
        time in its grid's range (``model.landmarks``), refused outside it.
    explain : top SHAP drivers per patient (0: none).
    progress : show a progress bar.
    **kwargs : ``chunk_patients``, ``engine`` (``"local"`` or ``"dask"``), ``scheduler``,
        ``allow_missing_tables`` (``("vitals",)`` scores a cohort without vital signs, each row
        warned; refused otherwise), ``trajectory`` (a landmark supermodel: one row per patient
        and grid time up to the patient's last record, see :func:`score_trajectory`).

    Returns
    -------
    pandas.DataFrame
        ``patient_id``, ``task``, ``landmark_h``, ``status`` (ok / not_eligible / invalid),
        ``reason``, ``warnings`` (the kinds of warning that concern the patient, see
        :func:`patient_warnings`), the task's score columns (``risk``; a benefit model adds ``benefit``,
        ``benefit_low``, ``benefit_high``) and ``driver_i``, ``driver_i_shap``, ``driver_i_value``.
    """
    return score_cohort(model, cohort, landmark_h=landmark_h, explain=explain, progress=progress, **kwargs)


def score_trajectory(model: Model, cohort: Cohort, explain: int = 5, **kwargs: object) -> pd.DataFrame:
    """Each patient's risk trajectory from a landmark supermodel: one row per patient and grid
    time up to the patient's last record (``patient_id``, ``landmark_h``, ``status``,
    ``reason``, ``risk`` and the top drivers at that time). A patient with no scorable time
    still gets one row, with the reason; an invalid patient one row with ``landmark_h`` empty."""
    return score_cohort(model, cohort, explain=explain, trajectory=True, **kwargs)


def _scoring_time(model: Model, landmark_h: float | None, trajectory: bool) -> float:
    """The landmark scores are made at (the model's by default), refused in one line where the
    model cannot score there or cannot give a trajectory."""
    if trajectory and not model.landmarks:
        raise CrsmlError(
            f"--trajectory needs a landmark supermodel; this model was trained at one landmark "
            f"({model.landmark_h:g} h): train one with crsml train --landmarks 12:120:12"
        )
    if landmark_h is not None and model.landmarks:
        model.check_time(float(landmark_h))
    return float(model.landmark_h if landmark_h is None else landmark_h)


def _advancing(items: Iterator, total: int, label: str, show: bool) -> Iterator:
    """``items`` as they come, with a rich progress bar over ``total`` when ``show`` and more than one."""
    if not show or total <= 1:
        yield from items
        return
    from crsml._progress import StageProgress

    with StageProgress(label, total) as bar:
        for item in items:
            yield item
            bar.advance()


def score_raw_chunk(
    model: Model, chunk: RawChunk, landmark_h: float, explain: int, trajectory: bool = False, check: bool = False
) -> tuple[pd.DataFrame, list[ValidationProblem]]:
    """Validate one group of patients, mark bad ones ``invalid`` and score the rest; rows come
    out in the order of the group's patients table."""
    tables, report = validate_tables(chunk.tables, chunk.rows)
    cohort = Cohort.from_validated(tables, report, on_error="drop")
    found = check_compatible(model, cohort) if check else []
    out = pd.concat(
        [
            score_chunk(model, cohort, landmark_h, explain, trajectory),
            _invalid_rows(model, cohort.invalid, landmark_h, trajectory),
        ],
        ignore_index=True,
    )
    order = patient_ids(chunk.tables["patients"])
    if len(order) and len(out):
        out = out.iloc[np.argsort(order.get_indexer(out["patient_id"].astype("string")), kind="stable")]
    return _typed(out.reset_index(drop=True)), found + report.problems


def _typed(out: pd.DataFrame) -> pd.DataFrame:
    """The same column types in every group (so groups can be appended to one Parquet file)."""
    for c in out.columns:
        if c in ("risk", "benefit", "benefit_low", "benefit_high") or c.endswith(("_shap", "_value")):
            out[c] = out[c].astype(float)
        elif c == "warnings":
            out[c] = out[c].fillna("").astype("string")
        elif c != "landmark_h":
            out[c] = out[c].astype("string")
    return out


def iter_scores(
    model: Model,
    source: PatientChunks,
    landmark_h: float | None = None,
    explain: int = 5,
    engine: str = "local",
    scheduler: str | None = None,
    progress: bool = False,
    problems: list[ValidationProblem] | None = None,
    allow_missing_tables: Sequence[str] = (),
    trajectory: bool = False,
) -> Iterator[pd.DataFrame]:
    """Scores group by group, in input order, then the patients named only in other tables.

    The first group is validated and checked against the model before anything else is sent
    out. Problems found by validation are appended to ``problems``.
    """
    _check_settings(engine, source.chunk_patients)
    check_tables(model, source.empty_tables(), allow_missing_tables)
    L = _scoring_time(model, landmark_h, trajectory)
    problems = [] if problems is None else problems
    if engine == "dask":
        from functools import partial

        from crsml.scoring._dask import dask_map

        results = dask_map(
            score_raw_chunk,
            model,
            source,
            L,
            explain,
            trajectory,
            scheduler=scheduler,
            first=partial(score_raw_chunk, check=True),
        )
    else:
        results = (score_raw_chunk(model, c, L, explain, trajectory, check=i == 0) for i, c in enumerate(source))
    label = f"scoring {len(source.ids):,} patients ({engine})"
    for frame, found in _advancing(results, source.n_chunks, label, progress):
        problems.extend(found)
        yield frame
    orphans = ValidationReport(list(source.orphans.values()))
    problems.extend(orphans.problems)
    yield _typed(_invalid_rows(model, orphans.invalid_patients(), L, trajectory))


def score_tables(
    model: Model, raw: dict[str, pd.DataFrame | None], chunk_patients: int = 20_000, **kwargs: object
) -> tuple[pd.DataFrame, ValidationReport]:
    """Validate raw tables, mark bad patients ``invalid`` and score the rest. Every patient id
    named in any table comes out exactly once (ids only in other tables: ``invalid``)."""
    _check_settings(kwargs.get("engine", "local"), chunk_patients)
    problems: list[ValidationProblem] = []
    frames = list(iter_scores(model, PatientChunks.from_tables(raw, chunk_patients), problems=problems, **kwargs))
    return pd.concat(frames, ignore_index=True), ValidationReport(problems)


def score_directory(
    model: Model,
    directory: str | Path,
    out: str | Path | None = None,
    chunk_patients: int = 20_000,
    **kwargs: object,
) -> tuple[pd.DataFrame | dict[str, int], ValidationReport]:
    """Score a cohort directory group by group, reading only one group's rows at a time.

    With ``out`` (``.csv`` or ``.parquet``) scores are appended to that file as they come, so
    memory stays bounded for any input size, and the status counts are returned instead of
    the scores. The file appears only when every patient has been written.
    """
    _check_settings(kwargs.get("engine", "local"), chunk_patients)
    problems: list[ValidationProblem] = []
    with PatientChunks.from_directory(directory, chunk_patients) as source:
        frames = iter_scores(model, source, problems=problems, **kwargs)
        if out is None:
            return pd.concat(list(frames), ignore_index=True), ValidationReport(problems)
        return write_scores(frames, Path(out)), ValidationReport(problems)


def write_scores(frames: Iterator[pd.DataFrame], out: Path) -> dict[str, int]:
    """Append score frames to ``out`` (written under a temporary name, renamed at the end)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if out.suffix not in (".csv", ".parquet"):
        raise CrsmlError(f"--out must end in .csv or .parquet, not {out.suffix!r}")
    counts = dict.fromkeys(STATUSES, 0)
    writer = None
    columns = None
    with atomic_file(out) as part:
        try:
            for i, f in enumerate(frames):
                columns = f.columns if columns is None else columns
                f = _typed(f.reindex(columns=columns))
                for s, n in f["status"].value_counts().items():
                    counts[str(s)] += int(n)
                if out.suffix == ".csv":
                    f.to_csv(part, mode="w" if i == 0 else "a", header=i == 0, index=False)
                    continue
                table = pa.Table.from_pandas(f, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(part, table.schema)
                writer.write_table(table.cast(writer.schema))
        finally:
            if writer is not None:
                writer.close()
    return counts


def _check_settings(engine: object, chunk_patients: int) -> None:
    """Refuse bad settings before any input is read."""
    if engine not in ("local", "dask"):
        raise CrsmlError(f"--engine must be local or dask, not {engine!r}")
    if chunk_patients < 1:
        raise CrsmlError("--chunk-patients must be at least 1")

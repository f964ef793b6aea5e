"""Score a batch: validate, split by patient into chunks, build features, predict, explain.

Every input patient comes out exactly once per task, with ``status``:
``ok`` (scored), ``not_eligible`` (dead or already severe at the landmark, with the reason) or
``invalid`` (a bad row, with the table, row, column and what is wrong).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from crsml.cohort import Cohort, read_raw_tables
from crsml.errors import CrsmlError
from crsml.features.builder import features_from_dict, features_to_dict
from crsml.features.codes import index_in
from crsml.models.bundle import ModelBundle, load_bundle
from crsml.scoring.explain import readable_names, top_drivers
from crsml.validation import validate_tables

STATUSES = ("ok", "not_eligible", "invalid")
TABLES = ("measurements", "vitals", "treatments", "crs")


def resolve_model(model: str | Path, tracking_uri: str | None = None) -> ModelBundle:
    """``models/NAME`` or ``models:/NAME/VERSION`` (downloaded from the registry)."""
    s = str(model)
    if s.startswith("models:/"):
        import mlflow

        from crsml import tracking

        tracking.quiet()
        mlflow.set_tracking_uri(tracking_uri or tracking.default_tracking_uri())
        with tempfile.TemporaryDirectory() as tmp:
            local = mlflow.artifacts.download_artifacts(artifact_uri=s, dst_path=tmp)
            return load_bundle(local)
    if not Path(s).exists():
        raise CrsmlError(f"model {s} not found (give models/NAME or models:/NAME/VERSION)")
    return load_bundle(s)


def check_compatible(bundle: ModelBundle, cohort: Cohort) -> None:
    """Refuse, before any work, a cohort that cannot yield the model's features."""
    fb = bundle.features
    missing_cols = [c for c in fb.extra_patient_columns if c not in cohort.patients]
    if missing_cols:
        raise CrsmlError(f"table patients: no column {', '.join(missing_cols)}, which the model uses as features")
    unknown = [f for f in bundle.feature_names if f not in set(fb.feature_names_out_)]
    if unknown:
        raise CrsmlError(f"model is inconsistent: features {unknown[:5]} are not built by its feature settings")
    present = set(cohort.measurements["analyte"].dropna().unique())
    absent = [a for a in fb.analytes_ if a not in present]
    if len(cohort.patients) and len(absent) > len(fb.analytes_) / 2:
        raise CrsmlError(f"the cohort has none of {len(absent)} of the model's {len(fb.analytes_)} analytes "
                         f"({', '.join(absent[:8])}{' ...' if len(absent) > 8 else ''}); this model was trained "
                         f"on other measurements: train one on data like this cohort")


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
        parts[name] = [t.iloc[order[bounds[i]:bounds[i + 1]]] for i in range(n_chunks)]
    for i in range(n_chunks):
        yield Cohort(patients=cohort.patients.iloc[i * chunk_patients:(i + 1) * chunk_patients],
                     **{name: parts[name][i] for name in TABLES}, meta=cohort.meta)


def score_chunk(bundle: ModelBundle, cohort: Cohort, landmark_h: float, explain: int) -> pd.DataFrame:
    """Rows for every patient of one chunk (``ok`` or ``not_eligible``)."""
    fb = bundle.features
    if float(landmark_h) != float(np.atleast_1d(fb.landmark_h)[0]):
        settings = features_to_dict(fb)
        settings["params"]["landmark_h"] = float(landmark_h)
        fb = features_from_dict(settings)  # the same fitted builder at another landmark
    X, elig = fb.build(cohort)
    ok = elig["eligible"].to_numpy(dtype=bool)
    out = pd.DataFrame({
        "patient_id": elig["patient_id"].to_numpy(), "task": bundle.task, "landmark_h": float(landmark_h),
        "status": np.where(ok, "ok", "not_eligible"), "reason": elig["reason"].to_numpy(dtype=object),
        "risk": np.nan,
    })
    Xe = X.iloc[np.flatnonzero(ok)][bundle.feature_names]
    if len(Xe) and explain <= 0:
        out.loc[ok, "risk"] = bundle.classifier.predict_proba(Xe)[:, 1]
    if explain > 0:
        labels = readable_names(bundle.feature_names)
        k = min(explain, len(labels))
        drivers = pd.DataFrame(index=out.index, columns=top_drivers(np.zeros((0, len(labels) + 1)),
                               np.zeros((0, len(labels))), labels, k).columns)
        if len(Xe):
            risk, contribs = bundle.classifier.predict_with_contributions(Xe)
            out.loc[ok, "risk"] = risk
            d = top_drivers(contribs, Xe.to_numpy(dtype=np.float32), labels, k)
            drivers.loc[ok] = d.to_numpy()
        for c in drivers.columns:
            drivers[c] = drivers[c].astype(float) if not c[-1].isdigit() else drivers[c].astype("string")
        out = pd.concat([out, drivers], axis=1)
    return out


def _invalid_rows(bundle: ModelBundle, invalid: dict[str, str], landmark_h: float) -> pd.DataFrame:
    return pd.DataFrame({
        "patient_id": list(invalid), "task": bundle.task, "landmark_h": float(landmark_h), "status": "invalid",
        "reason": list(invalid.values()), "risk": np.nan,
    })


def score_cohort(
    bundle: ModelBundle,
    cohort: Cohort,
    landmark_h: float | None = None,
    explain: int = 5,
    chunk_patients: int = 20_000,
    engine: str = "local",
    scheduler: str | None = None,
    progress: bool = False,
    input_order: list[str] | None = None,
) -> pd.DataFrame:
    """Score a validated cohort (its ``invalid`` patients come out as ``invalid``)."""
    if engine not in ("local", "dask"):
        raise CrsmlError(f"--engine must be local or dask, not {engine!r}")
    if chunk_patients < 1:
        raise CrsmlError("--chunk-patients must be at least 1")
    L = float(bundle.landmark_h if landmark_h is None else landmark_h)
    check_compatible(bundle, cohort)
    parts = list(chunks(cohort, chunk_patients))
    if engine == "dask":
        from crsml.scoring.dask_engine import score_chunks_dask

        frames = score_chunks_dask(bundle, parts, L, explain, scheduler, progress)
    else:
        frames = []
        bar = None
        if progress and len(parts) > 1:
            from rich.progress import Progress

            bar = Progress(transient=True)
            bar.start()
            task = bar.add_task(f"scoring {len(cohort.patients):,} patients", total=len(parts))
        try:
            for part in parts:
                frames.append(score_chunk(bundle, part, L, explain))
                if bar:
                    bar.advance(task)
        finally:
            if bar:
                bar.stop()
    frames.append(_invalid_rows(bundle, cohort.invalid, L))
    out = pd.concat([f for f in frames if len(f)], ignore_index=True) if any(len(f) for f in frames) else frames[-1]
    if input_order is not None:
        pos = pd.Series(np.arange(len(input_order)), index=pd.Index(input_order).drop_duplicates(keep="first"))
        key = out["patient_id"].map(pos).fillna(len(input_order)).to_numpy()
        out = out.iloc[np.argsort(key, kind="stable")].reset_index(drop=True)
    return out


def score_tables(
    bundle: ModelBundle, raw: dict[str, pd.DataFrame | None], **kwargs: object
) -> tuple[pd.DataFrame, object]:
    """Validate raw tables, mark bad patients ``invalid`` and score the rest. Every patient id
    named in any table comes out exactly once (ids only in other tables: ``invalid``)."""
    tables, report = validate_tables(raw)
    cohort = Cohort.from_validated(tables, report, on_error="drop")
    order: list[str] = []
    seen: set[str] = set()
    for name in ("patients", *TABLES):
        t = raw.get(name)
        if t is None or "patient_id" not in t:
            continue
        ids = pd.unique(t["patient_id"].dropna().astype(str))
        new = [i for i in ids if i not in seen] if name != "patients" else list(ids)
        seen.update(new)
        order.extend(new)
    known = set(cohort.patients["patient_id"]) | set(cohort.invalid)
    for pid in order:
        if pid not in known:
            cohort.invalid[pid] = "not in the patients table"
    return score_cohort(bundle, cohort, input_order=order, **kwargs), report  # type: ignore[arg-type]


def score_directory(bundle: ModelBundle, directory: str | Path, **kwargs: object):
    return score_tables(bundle, read_raw_tables(directory), **kwargs)

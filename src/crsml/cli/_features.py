"""``crsml features`` and ``crsml features-dictionary``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from crsml.errors import CrsmlError


def features_command(
    directory: Annotated[Path, typer.Argument(help="cohort directory")],
    landmark_h: Annotated[list[float], typer.Option("--landmark-h", help="landmark in hours; repeat for several")],
    out: Annotated[Path, typer.Option("--out", help="feature file (.parquet or .csv)")],
    extra: Annotated[
        list[str] | None,
        typer.Option(
            "--extra", help="extra patients column (numeric, true/false, or text: one indicator per value); repeatable"
        ),
    ] = None,
    keep_fill_values: Annotated[bool, typer.Option(help="use suspected fill values as real draws")] = False,
) -> None:
    """Landmark features: one row per eligible patient and landmark; ineligible ones beside."""
    import pandas as pd
    from rich.console import Console

    from crsml.cli._console import print_quality
    from crsml.cohort import Cohort, atomic_file, check_landmark, check_output, refuse_inside
    from crsml.features import LandmarkFeatures

    check_output(out, "file", example="features.parquet")
    if out.suffix not in (".parquet", ".csv"):
        raise CrsmlError(f"--out must end in .parquet or .csv, not {out.suffix!r}")
    for L in landmark_h:
        check_landmark(L)
    refuse_inside(out, directory)
    cohort, report = Cohort.load_with_report(directory)
    fb = LandmarkFeatures(
        landmark_h=landmark_h, extra_patient_columns=tuple(extra or ()), mask_fill_values=not keep_fill_values
    ).fit(cohort)
    X, elig = fb.build(cohort)
    eligible = elig.set_index(["patient_id", "landmark_h"])
    X = X[eligible["eligible"].reindex(X.index).to_numpy(dtype=bool)].reset_index()
    # the kinds of validation warning that concern each patient (its values, not the model's)
    X.insert(2, "warnings", pd.array(cohort.warnings_of(X["patient_id"]), dtype="string"))
    with atomic_file(out) as tmp:
        X.to_parquet(tmp, index=False) if out.suffix == ".parquet" else X.to_csv(tmp, index=False)
    inel = elig[~elig["eligible"]].drop(columns="eligible")
    inel_path = out.with_name(out.stem + ".ineligible.csv")
    with atomic_file(inel_path) as tmp:
        inel.to_csv(tmp, index=False)
    con = Console(stderr=True, highlight=False, soft_wrap=True)
    print_quality(con, report, directory)
    con.print(f"wrote {out}: {len(X)} rows x {X.shape[1] - 3} features")
    con.print(f"wrote {inel_path}: {len(inel)} ineligible patient-landmarks with their reason")


def dictionary_command(
    out: Annotated[Path, typer.Option("--out", help="Markdown file to write")] = Path("docs/features.md"),
) -> None:
    """Write the feature dictionary (every analyte crsml knows) as Markdown."""
    from crsml.cohort import atomic_file, check_output
    from crsml.features import dictionary_markdown

    check_output(out, "file", example="features.md")
    with atomic_file(out) as tmp:
        tmp.write_text(dictionary_markdown())
    typer.echo(f"wrote {out}")

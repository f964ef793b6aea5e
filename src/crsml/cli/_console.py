"""Consoles and printing shared by the commands (no library logic)."""

from __future__ import annotations

from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


WARNINGS_FILE = "validation_warnings.txt"


def write_warnings(directory, warnings: list) -> None:
    """Every warning of an import, one line per distinct problem, into the cohort directory (read
    by later commands, which then print a count and this file's path instead of the list)."""
    from pathlib import Path

    from crsml.cohort import atomic_file, grouped_lines

    path = Path(directory) / WARNINGS_FILE
    if not warnings:
        path.unlink(missing_ok=True)
        return
    with atomic_file(path) as tmp:
        tmp.write_text("\n".join(grouped_lines(warnings)) + "\n")


def print_quality(con: Console, report: Any, directory) -> None:
    """One line for a cohort's data-quality warnings: how many, of which kinds, about how many
    patients, and where the full list is (the import's file, or ``crsml validate``). Printed by
    every command that reads a cohort, instead of the list each time."""
    from collections import Counter
    from pathlib import Path

    warnings = [w for w in report.warnings if w.kind]
    if not warnings:
        return
    kinds = Counter(w.kind.replace("_", " ") for w in warnings)
    patients = len(report.patient_warnings())
    listed = Path(directory) / WARNINGS_FILE
    where = f"listed in {listed}" if listed.is_file() else f"crsml validate {directory} lists them"
    con.print(
        f"note: {len(warnings)} data-quality warnings ({', '.join(f'{k} {n}' for k, n in kinds.most_common())}) "
        f"concern {patients:,} patients; {where}; each patient's row in the scores and features names "
        "those that concern it",
        markup=False,
    )


def check_model_out(path, option: str = "--model-out") -> None:
    """Refuse, before any work, a model path crsml could not write: under a file, a file, or a
    folder that holds something other than a crsml model (it would be replaced)."""
    from pathlib import Path

    from crsml.cohort import check_output
    from crsml.errors import CrsmlError

    p = Path(path)
    check_output(p, "dir", option)
    if p.is_dir() and any(p.iterdir()) and not (p / "MLmodel").is_file():
        raise CrsmlError(f"{option} {p} is a folder that holds no crsml model; give a new path (models/NAME)")


def print_problems(problems: list, limit: int) -> None:
    """One line per distinct problem (the same problem in many rows is one line naming the first
    rows), at most ``limit`` lines."""
    from crsml.cohort import grouped_lines

    lines = grouped_lines(problems)
    for line in lines[:limit]:
        out.print(line, markup=False)
    if len(lines) > limit:
        out.print(f"... and {len(lines) - limit} more (raise --max-problems to see them)")


def print_table(con: Console, table: pd.DataFrame, title: str) -> None:
    """A DataFrame of strings as a rich table (one row per model), wide enough not to wrap."""
    t = Table(title=title, title_justify="left")
    t.add_column("model")
    for c in table.columns:
        t.add_column(str(c))
    for name, row in table.iterrows():
        t.add_row(str(name), *[str(v) for v in row.tolist()])
    Console(width=max(con.width, 180), highlight=False).print(t)


def print_result(con: Console, result: Any) -> None:
    """The summary table of a :class:`~crsml.training.TrainingResult`, with its caption."""
    print_table(con, result.formatted(), result.caption)

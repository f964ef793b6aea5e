"""Consoles and printing shared by the commands (no library logic)."""

from __future__ import annotations

from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def print_problems(problems: list, limit: int) -> None:
    """One line per validation problem, at most ``limit``."""
    for p in problems[:limit]:
        out.print(str(p), markup=False)
    if len(problems) > limit:
        out.print(f"... and {len(problems) - limit} more (raise --max-problems to see them)")


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
    """The summary table of a :class:`~crsml.evaluation.TrainingResult`, with its caption."""
    print_table(con, result.formatted(), result.caption)

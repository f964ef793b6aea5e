"""Problems found in a cohort and the report that collects them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ValidationProblem:
    """One problem: where it is (table, 1-based data row, column) and what is wrong.

    ``patient_id`` lets callers mark the patient invalid; it is never printed, so reports can
    go to logs without patient identifiers. A warning that concerns some patients names them in
    ``patients`` (never printed either) and its ``kind``, a short name that reaches each of
    those patients' rows in the scores and features (``warnings`` column).
    """

    table: str
    row: int | None
    column: str | None
    message: str
    severity: str = "error"
    patient_id: str | None = field(default=None, compare=False)
    kind: str | None = field(default=None, compare=False)
    patients: tuple[str, ...] = field(default=(), compare=False, repr=False)

    def __str__(self) -> str:
        where = [f"table {self.table}"]
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column {self.column}")
        return f"{self.severity}: {', '.join(where)}: {self.message}"


def grouped_lines(problems: Iterable[ValidationProblem], rows_shown: int = 5) -> list[str]:
    """One line per distinct problem: a problem repeated exactly is printed once, and the same
    problem in several rows of a table is one line listing the first rows, then "and N more"
    (a blank patient id seen by every table built from one daily row is one line, not 17)."""
    groups: dict[tuple, list[int | None]] = {}
    for p in problems:
        rows = groups.setdefault((p.severity, p.table, p.column, p.message), [])
        if p.row not in rows:
            rows.append(p.row)
    lines = []
    for (severity, table, column, message), rows in groups.items():
        numbered = sorted(r for r in rows if r is not None)
        where = [f"table {table}"]
        if numbered:
            shown = ", ".join(str(r) for r in numbered[:rows_shown])
            more = f" and {len(numbered) - rows_shown} more" if len(numbered) > rows_shown else ""
            where.append(f"row{'s' if len(numbered) > 1 else ''} {shown}{more}")
        if column is not None:
            where.append(f"column {column}")
        lines.append(f"{severity}: {', '.join(where)}: {message}")
    return lines


@dataclass
class ValidationReport:
    """Every problem found, errors and warnings together."""

    problems: list[ValidationProblem] = field(default_factory=list)

    def extend(self, problems: Iterable[ValidationProblem]) -> None:
        self.problems.extend(problems)

    @property
    def errors(self) -> list[ValidationProblem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[ValidationProblem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def invalid_patients(self) -> dict[str, str]:
        """Patient id -> reason (the first error found for that patient)."""
        out: dict[str, str] = {}
        for p in self.errors:
            if p.patient_id is not None and p.patient_id not in out:
                out[p.patient_id] = str(p).removeprefix("error: ")
        return out

    def patient_warnings(self) -> dict[str, tuple[str, ...]]:
        """Patient id -> the kinds of warning that concern that patient (sorted, each once)."""
        out: dict[str, set[str]] = {}
        for p in self.warnings:
            ids = p.patients or ((p.patient_id,) if p.patient_id is not None else ())
            for pid in ids:
                out.setdefault(pid, set()).add(p.kind or "data_quality")
        return {k: tuple(sorted(v)) for k, v in out.items()}

    def table_errors(self) -> list[ValidationProblem]:
        """Errors that concern a whole table or column rather than a patient's row."""
        return [p for p in self.errors if p.patient_id is None and p.row is None]

    def unattributed(self) -> list[ValidationProblem]:
        """Errors of rows that name no patient (a blank patient_id): they cannot be used, and stop nobody."""
        return [p for p in self.errors if p.patient_id is None and p.row is not None]

"""Problems found in a cohort and the report that collects them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ValidationProblem:
    """One problem: where it is (table, 1-based data row, column) and what is wrong.

    ``patient_id`` lets callers mark the patient invalid; it is never printed, so reports can
    go to logs without patient identifiers.
    """

    table: str
    row: int | None
    column: str | None
    message: str
    severity: str = "error"
    patient_id: str | None = field(default=None, compare=False)

    def __str__(self) -> str:
        where = [f"table {self.table}"]
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column {self.column}")
        return f"{self.severity}: {', '.join(where)}: {self.message}"


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

    def table_errors(self) -> list[ValidationProblem]:
        """Errors that concern a whole table or column rather than a patient's row."""
        return [p for p in self.errors if p.patient_id is None and p.row is None]

    def unattributed(self) -> list[ValidationProblem]:
        """Errors of rows that name no patient (a blank patient_id): they cannot be used, and stop nobody."""
        return [p for p in self.errors if p.patient_id is None and p.row is not None]

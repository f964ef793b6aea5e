"""Adapters that turn records as centres keep them into a crsml cohort, and write cohorts back out.

Every importer shares one design (:func:`assemble`): a source reader yields rows with their
provenance, the :class:`CodeMap` resolves codes (LOINC, RxNorm, HCPCS, ICD-10-CM, local codes),
units become canonical, times become hours since the patient's CAR-T infusion, and the result is
validated like any cohort, with an :class:`ImportReport` of what was mapped, converted, guessed,
refused or left unmapped.

>>> from crsml.adapters import export_omop, import_omop          # doctest: +SKIP
>>> cohort, report = import_omop("duckdb:///cdm.duckdb")         # doctest: +SKIP
>>> print(report.summary())                                      # doctest: +SKIP
"""

from crsml.adapters._daily import DEFAULT_CONFIG, DailyMapping, import_daily, summarise
from crsml.adapters._fhir import export_fhir, fhir_resources, import_fhir, read_fhir
from crsml.adapters._importer import DEFAULT_DAYS, ImportReport, SourceRecords, assemble
from crsml.adapters._long import export_long, import_long, read_long
from crsml.adapters._omop import CDM_TABLES, export_omop, import_omop, omop_tables, read_omop
from crsml.adapters._vocabulary import CodeMap

__all__ = [
    "CDM_TABLES",
    "DEFAULT_CONFIG",
    "DEFAULT_DAYS",
    "CodeMap",
    "DailyMapping",
    "ImportReport",
    "SourceRecords",
    "assemble",
    "export_fhir",
    "export_long",
    "export_omop",
    "fhir_resources",
    "import_daily",
    "import_fhir",
    "import_long",
    "import_omop",
    "omop_tables",
    "read_fhir",
    "read_long",
    "read_omop",
    "summarise",
]

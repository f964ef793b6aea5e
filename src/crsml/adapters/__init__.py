"""Adapters that turn records as centres keep them into a crsml cohort. ``import_daily`` reads
one-row-per-patient-day tables (such as the shared B-ALL cohort) through a TOML column mapping."""

from crsml.adapters._daily import DEFAULT_CONFIG, DailyMapping, import_daily, summarise

__all__ = ["DEFAULT_CONFIG", "DailyMapping", "import_daily", "summarise"]

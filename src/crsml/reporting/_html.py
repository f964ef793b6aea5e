"""The pages' HTML: Jinja2 templates (``templates/``) filled from plain values; tables and
figures are made here, so a template holds layout and wording only."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from crsml.cohort import atomic_file

_ENV = Environment(
    loader=PackageLoader("crsml.reporting", "templates"),
    autoescape=select_autoescape(["html"]),
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
)


def table(df: pd.DataFrame, index: bool = True) -> Markup:
    """A DataFrame as an HTML table in the pages' style (cells escaped; no pandas row numbers
    when ``index`` is False)."""
    return Markup(df.to_html(classes="t", border=0, escape=True, na_rep="", index=index))


def figure(path: Path, caption: str) -> dict[str, str]:
    """A PNG embedded in the page (base64), with its caption."""
    return {"data": base64.b64encode(Path(path).read_bytes()).decode(), "caption": caption}


def render(template: str, out: Path, **context: Any) -> Path:
    """``out/index.html`` from ``template`` (written atomically); return its path."""
    path = out / "index.html"
    with atomic_file(path) as tmp:
        tmp.write_text(_ENV.get_template(template).render(**context))
    return path

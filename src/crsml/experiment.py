"""Config-driven training runs for ``experiments/train_*.py``: one small TOML file says which
cohort (a directory, or a simulated one), which task and landmark, and where the model goes.

```toml
[cohort]
path = "out/demo/sim"          # a cohort directory, or
simulate = { n = 2000, seed = 1 } # a simulated cohort
[train]
task = "severe_crs"
landmark_h = 48
trials = 40
seed = 0
[output]
model_out = "models/severe_crs_L48"
```
Every ``[train]`` key is a :class:`~crsml.training.TrainSettings` field.
"""

from __future__ import annotations

import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any

from crsml.cohort import Cohort
from crsml.errors import CrsmlError
from crsml.training import TrainResult, TrainSettings, train


def load_config(path: str | Path) -> dict[str, Any]:
    cfg = tomllib.loads(Path(path).read_text())
    known = {f.name for f in fields(TrainSettings)}
    unknown = set(cfg.get("train", {})) - known
    if unknown:
        raise CrsmlError(f"{path}: unknown [train] keys {sorted(unknown)}; known: {sorted(known)}")
    if "cohort" not in cfg or not ({"path", "simulate"} & set(cfg["cohort"])):
        raise CrsmlError(f"{path}: [cohort] needs path = DIR or simulate = {{ n = N, seed = S }}")
    return cfg


def cohort_from_config(cfg: dict[str, Any], base: Path) -> Cohort:
    c = cfg["cohort"]
    if "path" in c:
        return Cohort.load(base / c["path"])
    from crsml.simulate import simulate

    return simulate(int(c["simulate"]["n"]), seed=int(c["simulate"].get("seed", 0)),
                    truth_draws=int(c["simulate"].get("truth_draws", 0)))


def run_config(path: str | Path, base: str | Path = ".", log: Any = print) -> TrainResult:
    """Train as the config says; relative paths are taken from ``base`` (the repository root)."""
    base = Path(base)
    cfg = load_config(path)
    s = cfg.get("train", {})
    if "extra_patient_columns" in s:
        s["extra_patient_columns"] = tuple(s["extra_patient_columns"])
    settings = TrainSettings(**s)
    out = cfg.get("output", {}).get("model_out")
    return train(cohort_from_config(cfg, base), settings, model_out=base / out if out else None,
                 tracking_uri=cfg.get("output", {}).get("tracking_uri"), log=log)


def main(default_config: str | Path, argv: list[str] | None = None) -> int:
    """Entry point of ``experiments/train_*.py``: train as ``argv[0]`` (or the default) says and
    print the out-of-fold evaluation table."""
    import sys

    from rich.console import Console

    from crsml.tracking import quiet
    from crsml.training import format_table
    from crsml.training_cli import print_table

    quiet()
    argv = sys.argv[1:] if argv is None else argv
    config = Path(argv[0]) if argv else Path(default_config)
    repo = Path(default_config).resolve().parents[2]
    con = Console(highlight=False, soft_wrap=True)
    result = run_config(config, base=repo, log=con.print)
    print_table(con, format_table(result.table),
                f"{result.bundle.task} at L = {result.bundle.landmark_h:g} h (out-of-fold, 95% CI)")
    return 0

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
Every ``[train]`` key is a :class:`~crsml.training.TrainSettings` field or a parameter of the task
(``min_days = 5`` for ``prolonged_crs``).
"""

from __future__ import annotations

import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any

from crsml import tasks
from crsml.cli._console import print_result
from crsml.cohort import Cohort, read_cohort
from crsml.errors import CrsmlError
from crsml.simulation import simulate
from crsml.tracking import export_model, log_training, quiet
from crsml.training import TrainingResult, TrainSettings, settings_for, train


def load_config(path: str | Path) -> dict[str, Any]:
    """The TOML config, its ``[train]`` keys checked against :class:`~crsml.training.TrainSettings`."""
    cfg = tomllib.loads(Path(path).read_text())
    task = cfg.get("train", {}).get("task", "severe_crs")
    known = {f.name for f in fields(TrainSettings)} | set(tasks.get(task).param_names())
    unknown = set(cfg.get("train", {})) - known
    if unknown:
        raise CrsmlError(f"{path}: unknown [train] keys {sorted(unknown)}; known: {sorted(known)}")
    if "cohort" not in cfg or not ({"path", "simulate"} & set(cfg["cohort"])):
        raise CrsmlError(f"{path}: [cohort] needs path = DIR or simulate = {{ n = N, seed = S }}")
    return cfg


def cohort_from_config(cfg: dict[str, Any], base: Path) -> Cohort:
    c = cfg["cohort"]
    if "path" in c:
        return read_cohort(base / c["path"])
    return simulate(
        int(c["simulate"]["n"]),
        seed=int(c["simulate"].get("seed", 0)),
        truth_draws=int(c["simulate"].get("truth_draws", 0)),
    )


def run_config(path: str | Path, base: str | Path = ".", log: Any = print) -> TrainingResult:
    """Train as the config says, log the run and export the model; relative paths are taken
    from ``base`` (the repository root)."""
    base = Path(base)
    cfg = load_config(path)
    s = cfg.get("train", {})
    if "extra_patient_columns" in s:
        s["extra_patient_columns"] = tuple(s["extra_patient_columns"])
    settings = settings_for(s.pop("task", "severe_crs"), s.pop("landmark_h", 48.0), **s)
    result = train(cohort_from_config(cfg, base), settings=settings, log=log)
    output = cfg.get("output", {})
    model_dir = None
    if output.get("model_out"):
        model_dir = export_model(result.model, base / output["model_out"])
        log(f"model written to {model_dir}")
    log_training(result, tracking_uri=output.get("tracking_uri"), log=log, model_dir=model_dir)
    return result


def run_experiment_config(default_config: str | Path, argv: list[str] | None = None) -> int:
    """Entry point of ``experiments/train_*.py``: train as ``argv[0]`` (or the default) says and
    print the out-of-fold evaluation table."""
    import sys

    from rich.console import Console

    quiet()
    argv = sys.argv[1:] if argv is None else argv
    config = Path(argv[0]) if argv else Path(default_config)
    repo = Path(default_config).resolve().parents[2]
    con = Console(highlight=False, soft_wrap=True)
    print_result(con, run_config(config, base=repo, log=con.print))
    return 0

"""Train the prolonged_crs model as experiments/configs/prolonged_crs.toml says (copy and edit it for your cohort).

    .venv/bin/python experiments/train_prolonged_crs.py [CONFIG]
"""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console

from crsml.experiment import run_config
from crsml.tracking import quiet
from crsml.training import format_table
from crsml.training_cli import print_table

REPO = Path(__file__).resolve().parents[1]

if __name__ == "__main__":
    quiet()
    config = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "experiments" / "configs" / "prolonged_crs.toml"
    con = Console(highlight=False, soft_wrap=True)
    result = run_config(config, base=REPO, log=con.print)
    print_table(con, format_table(result.table), f"{result.bundle.task} at L = {result.bundle.landmark_h:g} h (out-of-fold, 95% CI)")

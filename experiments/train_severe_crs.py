"""Train the severe_crs model as experiments/configs/severe_crs.toml says (copy and edit it for your cohort).

.venv/bin/python experiments/train_severe_crs.py [CONFIG]
"""

import sys
from pathlib import Path

from crsml.cli import run_experiment_config as main

if __name__ == "__main__":
    sys.exit(main(Path(__file__).resolve().parent / "configs" / "severe_crs.toml"))
